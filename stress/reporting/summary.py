"""A run's summary: the client's view (k6 or the fast loader), the contest's score, the
ledger audit, the server's side; as summary.json, summary.txt and report.html. Also the
medians over repeated runs and the pass/fail check stress/run.sh asks for."""

import datetime
import hashlib
import json
import os
import platform
import statistics
import subprocess

from . import k6, score
from .pages import write_run_page
from .server import load_samples, phases_of, server_panels, server_summary

LATENCY_KEYS = ("p50", "p75", "p95", "p99", "max", "avg")


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit(repo):
    try:
        out = subprocess.run(["git", "-C", repo, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        )
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def binary(path):
    """A server binary the run did not build from the tree: its version and sha256 (never
    its path, which is this machine's)."""
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    out = subprocess.run([path, "--version"], capture_output=True, text=True)
    return {"version": out.stdout.strip() or "unknown", "sha256": digest}


def read_json(path):
    with open(path) as f:
        return json.load(f)


def read_cpu(path):
    """`stack cpu`'s output ("svc seconds" lines) to a dict."""
    out = {}
    if not path:
        return out
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2:
                try:
                    out[parts[0]] = float(parts[1])
                except ValueError:
                    pass
    return out


def client_view_fast(path):
    """What crebito-loader saw (it already writes the neutral shape, and more)."""
    v = read_json(path)
    v["per_scenario"] = {
        k: {**s, "latency_ms": s["latency_ms"] or {q: 0 for q in LATENCY_KEYS}} for k, s in v["per_scenario"].items()
    }
    return v


def build(client, audit_rows, cpu, scale, duration_scale, load_seconds):
    """The summary's core from the client's view: score, audit, verdict inputs."""
    requests, inconsistencies = client["requests"], client["inconsistencies"]
    sla = score.sla_pct(client["ok_under_250ms"], requests)
    sla_fine, inc_fine = score.fines(sla, inconsistencies)
    audit = (
        score.audit(audit_rows, client["posts_ok"])
        if audit_rows is not None
        else {"ok": False, "problems": ["no audit"]}
    )
    out = {
        "loader": client["loader"],
        "scale": scale,
        "duration_scale": duration_scale,
        "requests": requests,
        "ko": client["ko"],
        "ok_under_250ms": client["ok_under_250ms"],
        "sla_pct": sla,
        "inconsistencies": inconsistencies,
        "latency_ms": client["latency_ms"],
        "per_scenario": client["per_scenario"],
        "throughput_rps": round(requests / load_seconds, 1) if load_seconds else None,
        "http_reqs_rate": client.get("http_reqs_rate", client.get("throughput_rps")),
        "audit": audit,
        "fines_usd": {"sla": round(sla_fine, 2), "inconsistencies": round(inc_fine, 2)},
        "payout_usd": round(score.payout(sla, inconsistencies), 2),
        "cpu_seconds": {**cpu, "loader": client["loader_cpu_seconds"]},
    }
    for extra in ("ko_by_cause", "start_lag_ms", "loader_cpu_us_per_request", "ambiguous", "timeline"):
        if extra in client:
            out[extra] = client[extra]
    return out


def passed(s):
    """A run passes with 0 KO, 0 inconsistencies, a clean audit and, when it recorded a
    history (the fast loader), a strict-serializable one — by each check it was given (the
    ledger's, and the black-box one's): a history the checker left no verdict for fails it."""
    histories = [s[k] for k in ("history", "history_blackbox") if k in s]
    return (
        s["ko"] == 0
        and s["inconsistencies"] == 0
        and s["audit"]["ok"]
        and all(h.get("strict_serializable") is True for h in histories)
    )


def history_of(path):
    """crebito-check's verdict from its report; a missing report is no verdict."""
    if os.path.exists(path):
        c = read_json(path)
        h = {k: c[k] for k in ("operations", "strict_serializable", "violations_total", "seconds")}
        # "undecided": the black-box search gave up (not passed, not a violation).
        h["verdict"] = c.get("verdict") or ("yes" if c["strict_serializable"] else "no")
        return h
    # A history was recorded but the checker left no verdict (it crashed, or the ledger could
    # not be read): not strict serializable as far as anyone knows.
    return {"operations": 0, "strict_serializable": None, "violations_total": None, "seconds": None}


def summarize(args):
    client = client_view_fast(args.loader_summary) if args.loader_summary else k6.client_view(args.k6, args.k6_cpu)
    audit_rows = read_json(args.audit) if os.path.exists(args.audit) else None
    before, after = read_cpu(args.cpu_before), read_cpu(args.cpu_after)
    cpu = {k: round(after.get(k, 0) - before.get(k, 0), 3) for k in after}
    summary = build(client, audit_rows, cpu, float(args.scale), float(args.duration_scale), float(args.load_seconds))
    summary |= {
        "commit": git_commit(args.repo),
        **({"server_binary": binary(args.crebito_bin)} if getattr(args, "crebito_bin", None) else {}),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "kernel": platform.release()},
    }
    if args.floor and os.path.exists(args.floor):
        f = read_json(args.floor)
        if "metrics" in f:  # k6's own summary
            f = k6.client_view(args.floor)
        summary["floor"] = {"latency_ms": f["latency_ms"], "ko": f["ko"], "requests": f["requests"]}
    if args.check:
        summary["history"] = history_of(args.check)
    if getattr(args, "check_blackbox", None):
        summary["history_blackbox"] = history_of(args.check_blackbox)
    summary["passed"] = passed(summary)
    panels = []
    samples = load_samples(args.server)
    if samples and args.load_start:
        marks, x_max = phases_of(float(args.duration_scale), client["loader"] == "k6")
        panels = server_panels(samples, float(args.load_start), x_max, marks)
        summary["server"] = server_summary(samples, float(args.load_start), x_max)
    if args.sampler and os.path.exists(args.sampler):
        c = read_json(args.sampler)
        summary["sampler"] = c | {"cores": round(c["cpu_s"] / max(c["seconds"], 1e-9), 4)}
    k6_report = "k6-report.html" if os.path.exists(os.path.join(args.out, "k6-report.html")) else None
    text = render_text(summary)
    write_run_page(summary, text, os.path.join(args.out, "report.html"), panels, k6_report)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    with open(os.path.join(args.out, "summary.txt"), "w") as f:
        f.write(text)
    print(text, end="")
    return 0


def latency_row(name, lat, ko, requests):
    return (
        f"{name:<20}{lat['p50']:>8.2f}{lat['p75']:>8.2f}{lat['p95']:>8.2f}{lat['p99']:>8.2f}{lat['max']:>9.2f}"
        f"{ko:>6}{requests or '':>10}"
    )


def render_text(s):
    lat, a = s["latency_ms"], s["audit"]
    lines = [
        f"crebito stress run — commit {s['commit']}, {s['date']}"
        + (
            f" (server: a given binary, {s['server_binary']['version']}, sha256 {s['server_binary']['sha256']})"
            if "server_binary" in s
            else ""
        ),
        f"machine: {s['machine']['cpu']}, {s['machine']['cores']} cores, kernel {s['machine']['kernel']}",
        f"profile: SCALE={s['scale']} DURATION_SCALE={s['duration_scale']}, loader {s.get('loader', 'k6')}",
        "",
        f"requests        {s['requests']}  ({s['throughput_rps']} req/s over the run)",
        f"KOs             {s['ko']}" + (f"  by cause: {s['ko_by_cause']}" if s.get("ko_by_cause") else ""),
        f"SLA (<250 ms)   {s['sla_pct']} %",
        f"inconsistencies {s['inconsistencies']}",
        f"audit           {'OK' if a['ok'] else 'FAILED: ' + '; '.join(a['problems'])}"
        + (
            f" ({a.get('stored_transactions')} stored = {a.get('posts_answered_200')} POSTs answered 200)"
            if a["ok"]
            else ""
        ),
        f"payout          USD {s['payout_usd']:,.2f}  (fines: SLA {s['fines_usd']['sla']}, inconsistencies {s['fines_usd']['inconsistencies']})",
    ]
    for key, label, file in (
        ("history", "history", "check.json"),
        ("history_blackbox", "history (black-box)", "check-blackbox.json"),
    ):
        if not s.get(key):
            continue
        h = s[key]
        lines.append(
            f"{label}: {h['operations']} operations, strict serializable: {'no verdict' if h['strict_serializable'] is None else 'yes' if h['strict_serializable'] else h.get('verdict', 'no')}"
            + (
                ""
                if h["strict_serializable"]
                else f" (the checker wrote no {file})"
                if h["strict_serializable"] is None
                else f" (the search gave up: {file})"
                if h.get("verdict") == "undecided"
                else f" ({h['violations_total']} violations: {file})"
            )
        )
    lines += [
        "",
        f"{'latency (ms)':<20}{'p50':>8}{'p75':>8}{'p95':>8}{'p99':>8}{'max':>9}{'KO':>6}{'requests':>10}",
        latency_row("all", lat, s["ko"], s["requests"]),
    ]
    for name, sc in s["per_scenario"].items():
        lines.append(latency_row(name, sc["latency_ms"], sc["ko"], sc["requests"]))
    if s.get("floor"):
        fl = s["floor"]["latency_ms"]
        lines.append(latency_row("floor (constant nginx)", fl, s["floor"]["ko"], s["floor"]["requests"]))
        lines.append(
            f"stack vs floor: p99 {lat['p99'] / max(fl['p99'], 1e-9):.2f}x, max {lat['max'] / max(fl['max'], 1e-9):.2f}x"
        )
    if s.get("start_lag_ms"):
        lines.append(
            f"loader start lag: p99 {s['start_lag_ms']['p99']} ms, max {s['start_lag_ms']['max']} ms; "
            f"loader CPU {s.get('loader_cpu_us_per_request')} µs per request"
        )
    lines += [
        "",
        "CPU seconds used during the run: "
        + ", ".join(f"{k} {v}" for k, v in s["cpu_seconds"].items() if v is not None),
    ]
    if s.get("server"):
        lines.append(
            "server side (stress/sample.py, 1/s): peak cores · throttled periods · peak MiB of limit · OOM kills"
        )
        for svc, v in s["server"].items():
            lines.append(
                f"  {svc:<5} {v['peak_cores']} cores · {v['throttled_periods']} throttled · "
                f"{v['peak_mem_mb']} of {v['mem_limit_mb']} MiB · {v['oom_kills']} OOM kills"
            )
    if s.get("sampler"):
        c = s["sampler"]
        lines.append(
            f"the sampler itself: {c['cpu_s']} CPU-s over {c['seconds']} s ({c['cores'] * 100:.1f} % of a core)"
        )
    lines.append(
        f"result: {'PASSED' if s['passed'] else 'FAILED'} (KO {s['ko']}, inconsistencies {s['inconsistencies']}, "
        f"audit {'OK' if a['ok'] else 'FAILED'}; a run passes with 0 KO, 0 inconsistencies, a clean audit "
        "and, with a history, a strict-serializable one)"
    )
    return "\n".join(lines) + "\n"


def check(args):
    """Exit status 0 when the run passed (and, with --sla, met the 98 % SLA too)."""
    s = read_json(args.summary)
    return 0 if s["passed"] and (not args.sla or s["sla_pct"] >= score.SLA_TARGET_PCT) else 1


def medians(args):
    """medians.json / medians.txt over repeated runs: each latency figure of the stack and
    of its floor, the stack-vs-floor ratios, KOs, SLA and CPU per request."""
    runs = [read_json(p) for p in args.summaries]
    out = medians_of(runs)
    with open(os.path.join(args.out, "medians.json"), "w") as f:
        json.dump(out, f, indent=2)
    text = medians_text(out)
    with open(os.path.join(args.out, "medians.txt"), "w") as f:
        f.write(text)
    print(text, end="")
    return 0


def medians_of(runs):
    med = lambda xs: round(statistics.median(xs), 3) if xs else None
    out = {
        "runs": len(runs),
        "commit": runs[0]["commit"],
        "machine": runs[0]["machine"],
        "loader": runs[0]["loader"],
        "scale": runs[0]["scale"],
        "duration_scale": runs[0]["duration_scale"],
        "passed": all(r["passed"] for r in runs),
        "ko": [r["ko"] for r in runs],
        "sla_pct": [r["sla_pct"] for r in runs],
    }
    for q in ("p50", "p75", "p95", "p99", "max"):
        out[f"stack_{q}_ms"] = med([r["latency_ms"][q] for r in runs])
        out[f"stack_{q}_ms_each"] = [r["latency_ms"][q] for r in runs]
        floors = [r["floor"]["latency_ms"][q] for r in runs if r.get("floor")]
        if floors:
            out[f"floor_{q}_ms"] = med(floors)
            out[f"floor_{q}_ms_each"] = floors
            out[f"ratio_{q}"] = med(
                [r["latency_ms"][q] / max(r["floor"]["latency_ms"][q], 1e-9) for r in runs if r.get("floor")]
            )
    stack_cpu = [
        sum(v for k, v in r["cpu_seconds"].items() if k not in ("loader", "k6") and v) / max(r["requests"], 1) * 1e6
        for r in runs
    ]
    out["stack_cpu_us_per_request"] = med(stack_cpu)
    return out


def medians_text(out):
    qs = ("p50", "p75", "p95", "p99")
    lines = [
        f"medians over {out['runs']} runs — commit {out['commit']}, loader {out['loader']}, SCALE {out['scale']:g}, "
        f"DURATION_SCALE {out['duration_scale']:g}; {'all passed' if out['passed'] else 'NOT all passed'}; "
        f"KO {out['ko']}, SLA {out['sla_pct']}",
        f"{'':<12}{'p50':>8}{'p75':>8}{'p95':>8}{'p99':>8}{'max':>9}   (ms; each run's value in medians.json)",
        f"{'stack':<12}" + "".join(f"{out[f'stack_{q}_ms']:>8.2f}" for q in qs) + f"{out['stack_max_ms']:>9.2f}",
    ]
    if "floor_p99_ms" in out:
        lines.append(
            f"{'floor':<12}" + "".join(f"{out[f'floor_{q}_ms']:>8.2f}" for q in qs) + f"{out['floor_max_ms']:>9.2f}"
        )
        lines.append(
            f"{'stack/floor':<12}" + "".join(f"{out[f'ratio_{q}']:>7.2f}x" for q in qs) + f"{out['ratio_max']:>8.2f}x"
        )
    lines.append(f"stack CPU per request (median): {out['stack_cpu_us_per_request']} µs")
    return "\n".join(lines) + "\n"
