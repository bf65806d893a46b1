"""The fault suite's audit: the client's own log of every POST (unique descricao) against
the ledger the database kept, and what each final answer claimed.

Vocabulary (docs/src/architecture.md, "Glossary"): an answer is "not applied" (4xx, and
503: refused before reaching the store) or "ambiguous" (outcome unknown: no answer, 500,
502, 504); only ambiguous answers can hide a lost or doubled transaction. A POST whose
keyed retries ended on a 503 after an ambiguous attempt is still ambiguous: that 503 says
only that its own attempt was refused (the loader's `unknown` column).

Every attempt's answer is in the log (`answers`), so a replay is judged by the attempt that
stored it: a keyed retry answered as a replay says an earlier attempt was stored, which only
an ambiguous attempt may have been. A replay whose earlier attempts were all refused (503 or
4xx) means one of those "not applied" answers was false: `replayed_after_refusals`, a rule of
the audit. (A first 503 followed by a 504 that stored it, then a replay, is explained:
`first_503_replayed` counts those, for the record.)"""

import bisect
import csv
import json
import re

from .quantiles import nearest_rank
from .score import balance_violations

NOT_APPLIED = {400, 404, 408, 413, 422, 503}  # certainly not applied
RULES = ("lost", "dup", "refused_stored", "unexplained_stored", "balance_violations", "replayed_after_refusals")
ATTEMPT = re.compile(r"^(\d+)(r?)@([0-9.]+)\+([0-9.]+)$")


def ambiguous(status):
    """The loader's rule (crebito_loader::history::ambiguous): no answer, or a 5xx but 503."""
    return status == 0 or (500 <= status < 600 and status != 503)


def attempts(p):
    """A POST's attempts from the log's `answers` column: [(status, replayed, sent_ms,
    took_ms)], in order; None for logs older than the column."""
    if not p.get("answers"):
        return None
    out = []
    for token in p["answers"].split():
        m = ATTEMPT.match(token)
        if not m:
            raise ValueError(f"{p['descricao']}: unreadable attempt {token!r}")
        out.append((int(m[1]), m[2] == "r", float(m[3]), float(m[4])))
    return out


def replayed_after_refusals(p):
    """Whether the POST's first replayed answer came after nothing but refusals (the loader's
    crebito_loader::history::replay_of_refused). Logs without `answers` can only be judged by
    the first and last answers: a first 503 and a final replay."""
    tries = attempts(p)
    if tries is None:
        return int(p["first_status"]) == 503 and p.get("replayed") == "true"
    first = next((i for i, (_, replayed, _, _) in enumerate(tries) if replayed), None)
    return first is not None and not any(ambiguous(s) for s, _, _, _ in tries[:first])


def audit_posts(posts, stored):
    """The ledger rules over the POST log [{descricao, status, first_status, …}] and the
    stored descricao counts {descricao: n}."""
    # What the client finally knows; an unknown POST counts as having no answer (older POST
    # logs lack the column: their final status is all there is).
    status = lambda p: 0 if p.get("unknown") == "true" else int(p["status"])
    first = lambda p: int(p["first_status"])
    amb_first = [p for p in posts if ambiguous(first(p))]
    by_first = {}
    for p in amb_first:
        by_first[first(p)] = by_first.get(first(p), 0) + 1
    out = {
        "posts": len(posts),
        "answered_200": sum(1 for p in posts if status(p) == 200),
        "answered_422": sum(1 for p in posts if status(p) == 422),
        "lost": sum(1 for p in posts if status(p) == 200 and p["descricao"] not in stored),
        "dup": sum(1 for n in stored.values() if n > 1),
        "refused_stored": sum(1 for p in posts if status(p) in NOT_APPLIED and p["descricao"] in stored),
        "unexplained_stored": len(set(stored) - {p["descricao"] for p in posts}),
        "refused_503_first_attempt": sum(1 for p in posts if first(p) == 503),
        # A first 503 whose keyed retries ended in a replay: stored by a later, ambiguous
        # attempt (explained) or by a refused one (the rule below).
        "first_503_replayed": sum(1 for p in posts if first(p) == 503 and p.get("replayed") == "true"),
        # A replay after nothing but refusals: a "not applied" answer was false.
        "replayed_after_refusals": sum(1 for p in posts if replayed_after_refusals(p)),
        "ambiguous_first_attempt": len(amb_first),
        "ambiguous_first_attempt_by_status": {
            ("no answer" if k == 0 else str(k)): v for k, v in sorted(by_first.items())
        },
        "ambiguous_first_attempt_applied": sum(1 for p in amb_first if p["descricao"] in stored),
        "retried": sum(1 for p in posts if int(p["attempts"]) > 1),
        "ambiguous": sum(1 for p in posts if ambiguous(status(p))),
    }
    # Never a hang: how long the first attempts that were refused or left unknown took to be
    # answered; and the stack healed by itself: first attempts answered 200 after the last one
    # that was not (older POST logs lack the timing columns).
    if posts and "first_ms" in posts[0]:
        failed = [p for p in posts if ambiguous(first(p)) or first(p) == 503]
        times = [float(p["first_ms"]) for p in failed]
        out["first_attempt_failed_ms"] = {
            "max": round(max(times), 1) if times else None,
            "p99": round(nearest_rank(times, 0.99), 1) if times else None,
        }
        last = max((float(p["at_ms"]) for p in failed), default=0.0)
        out["last_failed_first_attempt_s"] = round(last / 1000, 2)
        out["first_attempt_200_after_it"] = sum(1 for p in posts if first(p) == 200 and float(p["at_ms"]) > last)
    return out


# After a thaw: a POST is served normally when its first attempt is answered 200 or 422 within
# the loader's own SLA line (the `ok_under_250` of loader.json), and the stack serves new
# requests normally again from the start of the first one-second window, slid over the thaw's
# time line in steps of STEP_S, in which at least NORMAL_SHARE of the POSTs first sent in it
# were served normally (a window in which none was sent does not count).
NORMAL_MS = 250.0
NORMAL_SHARE = 0.99
WINDOW_S = 1.0
STEP_S = 0.1


def served_normally(p):
    return int(p["first_status"]) in (200, 422) and float(p["first_ms"]) <= NORMAL_MS


def recovery(posts, thaw_s, horizon_s=30.0):
    """How long after the thaw (`thaw_s`, seconds on the loader's time line) new requests were
    served normally again (module comment above), from the POST log alone: `recovered_s`, None
    if not within `horizon_s`; with the window that decided it, and what the first two seconds
    after the thaw looked like."""
    sent = sorted((float(p["at_ms"]) / 1000, served_normally(p)) for p in posts)
    times = [t for t, _ in sent]

    def window(t0, t1):
        lo, hi = bisect.bisect_left(times, t0), bisect.bisect_left(times, t1)
        part = [ok for _, ok in sent[lo:hi]]
        return len(part), sum(part)

    out = {"thaw_s": round(thaw_s, 3), "normal_ms": NORMAL_MS, "normal_share": NORMAL_SHARE, "recovered_s": None}
    k = 0
    while k * STEP_S <= horizon_s:
        t = thaw_s + k * STEP_S
        n, ok = window(t, t + WINDOW_S)
        if n and ok >= NORMAL_SHARE * n:
            out["recovered_s"] = round(k * STEP_S, 1)
            out["window"] = {"posts": n, "served_normally": ok}
            break
        k += 1
    n, ok = window(thaw_s, thaw_s + 2.0)
    out["first_2s"] = {"posts": n, "served_normally": ok}
    # Second by second, from 5 s before the thaw to 20 s after it: the POSTs first sent in
    # each second, how many were served normally, and their first answers by status.
    by = {}
    for p in posts:
        k = int((float(p["at_ms"]) / 1000 - thaw_s) // 1)
        if -5 <= k < 20:
            row = by.setdefault(k, {"s": k, "posts": 0, "served_normally": 0, "first_status": {}})
            row["posts"] += 1
            row["served_normally"] += served_normally(p)
            row["first_status"][p["first_status"]] = row["first_status"].get(p["first_status"], 0) + 1
    out["timeline"] = [by[k] for k in sorted(by)]
    return out


def queue_metrics(text):
    """The group commit's queue from the instances' /metrics text (concatenated): the highest
    high-water mark of any instance's node, and the refusals of a full queue, summed."""
    top, full = None, 0
    for line in text.splitlines():
        if line.startswith("crebito_pg_batch_waiting_max{"):
            v = float(line.rsplit(" ", 1)[1])
            top = v if top is None else max(top, v)
        elif line.startswith("crebito_pg_batch_queue_full_total{"):
            full += float(line.rsplit(" ", 1)[1])
    return {"waiting_max": top, "queue_full": full if top is not None else None}


def scenario_passed(r):
    """Every rule at 0, a history checked and strictly serializable, the database back by
    itself, and every scheduled fault fired. Absent is not passed: a rule, a verdict or a
    fault list the run did not produce fails it."""
    return (
        all(r.get(k) == 0 for k in RULES)
        and r.get("strict_serializable") is True
        and r.get("database_recovered") is True
        and bool(r.get("faults_expected"))
        and r.get("faults_fired") == r.get("faults_expected")
    )


def faults(args):
    """One scenario's summary (faults.sh): lost = answered 200 but not stored; dup = stored
    more than once; refused_stored = told "not applied" but stored; balance violations from
    audit.sql; ambiguous = still unknown after the client's keyed retries."""
    with open(args.posts) as f:
        posts = list(csv.DictReader(f))
    stored = {}
    with open(args.ledger) as f:
        for line in f:
            d, n = line.strip().rsplit(",", 1)
            stored[d] = int(n)
    with open(args.audit) as f:
        violations = balance_violations(json.load(f))
    with open(args.loader) as f:
        loader = json.load(f)
    result = {"scenario": args.scenario} | audit_posts(posts, stored)
    result |= {
        "balance_violations": len(violations),
        "violations": violations,
        "requests": loader["requests"],
        "ko_by_cause": loader["ko_by_cause"],
        # The clients' retry budget (crebito-loader --retry-budget): its share, and the
        # refused POSTs it did not send again (they ended refused, not applied).
        "retry_budget": loader.get("retry_budget"),
        "restarts": args.restarts,
        "profile": args.profile,
    }
    if args.fired:
        with open(args.fired) as f:
            result["faults_fired"] = f.read().split()
        result["faults_expected"] = args.expected.split()
    result["database_recovered"] = not args.db_down
    if args.check:
        with open(args.check) as f:
            c = json.load(f)
        result |= {
            "history_operations": c["operations"],
            "strict_serializable": c["strict_serializable"],
            "history_violations": c["violations_total"],
        }
    if getattr(args, "thaw", None):
        # The wall-clock instant of the thaw (faults.sh), on the loader's time line.
        with open(args.thaw) as f:
            thaw_unix_ms = float(f.read().split()[-1])
        result["after_thaw"] = recovery(posts, (thaw_unix_ms - loader["started_unix_ms"]) / 1000)
    if getattr(args, "metrics", None):
        with open(args.metrics) as f:
            result["queue"] = queue_metrics(f.read())
    result["passed"] = scenario_passed(result)
    # A run made to measure a loss (the contest profile's power cut): reported, never failed,
    # as long as its faults fired.
    result["loss_expected"] = args.loss_expected
    result["lost_pct"] = round(100 * result["lost"] / result["answered_200"], 2) if result["answered_200"] else 0.0
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(
        f"{args.scenario}: {result['posts']} POSTs, lost {result['lost']}, dup {result['dup']}, refused_stored {result['refused_stored']}, "
        f"balance violations {result['balance_violations']}, ambiguous {result['ambiguous_first_attempt']} -> {result['ambiguous']} after retries "
        f"({result['ambiguous_first_attempt_applied']} of them applied); "
        + (
            f"history: {result['history_operations']} operations, strict serializable: {'yes' if result['strict_serializable'] else 'no'} "
            if "strict_serializable" in result
            else ""
        )
        + verdict_of(result)
    )
    if args.loss_expected:
        return 0 if result.get("faults_fired") == result.get("faults_expected") else 1
    return 0 if result["passed"] else 1


def verdict_of(r):
    down = "" if r.get("database_recovered", True) else "; the database did not start again"
    if r.get("loss_expected"):
        return f"MEASURED (lost {r['lost']} of {r['answered_200']} answered 200, {r['lost_pct']} %{down})"
    if down:
        return f"FAILED ({down[2:]})"
    return "PASSED" if r["passed"] else "FAILED"


def faults_table(args):
    """The per-fault summary table (markdown) from faults summaries."""
    rows = []
    for p in args.summaries:
        with open(p) as f:
            rows.append(json.load(f))
    out = [
        "| fault | POSTs | 200 | 422 | 1st attempt 503 (not applied; of those later replayed; replayed after refusals only: a false 503) | 1st attempt ambiguous (by status) | of those, stored in the end | ambiguous after keyed retries | lost | dup | refused but stored | balance violations | history (operations, strict serializable) | 1st-attempt 503/504 answered in (p99 / max ms) | 1st-attempt 200s after the last 503/504 (at s) | restarts | result |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        by = ", ".join(f"{v} × {k}" for k, v in r["ambiguous_first_attempt_by_status"].items()) or "–"
        out.append(
            f"| {r['scenario']} | {r['posts']} | {r['answered_200']} | {r['answered_422']} | {r['refused_503_first_attempt']} ({r.get('first_503_replayed', '–')}; {r.get('replayed_after_refusals', '–')}) | {r['ambiguous_first_attempt']} ({by}) | "
            f"{r['ambiguous_first_attempt_applied']} | {r['ambiguous']} | {r['lost']} | {r['dup']} | {r['refused_stored']} | "
            f"{r['balance_violations']} | "
            + (
                f"{r['history_operations']}, {'yes' if r['strict_serializable'] else 'no'}"
                if "strict_serializable" in r
                else "–"
            )
            + (
                f" | {r['first_attempt_failed_ms']['p99']} / {r['first_attempt_failed_ms']['max']} | {r['first_attempt_200_after_it']} ({r['last_failed_first_attempt_s']})"
                if "first_attempt_failed_ms" in r
                else " | – | –"
            )
            + f" | {r['restarts']} | {verdict_of(r)} |"
        )
    text = "\n".join(out) + "\n"
    print(text, end="")
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0
