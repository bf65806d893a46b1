"""Tables and plots for the saturation runs and the bench scripts: the saturation plot and
page (stress/run.sh --saturate), the per-hop table (bench/hops.sh), one row per topology
variant (bench/topology.sh)."""

import csv
import json
import os
import re
import statistics

from .charts import DualAxes, scale_svg
from .pages import write_saturation_page
from .quantiles import histogram_quantile, nearest_rank
from .server import load_samples, phases_of, server_panels
from .summary import read_json


def step_passed(s):
    return s["passed"] and s["sla_pct"] >= 98


def profiles_plot(args):
    """One SVG of p99 against SCALE for several profiles, each from its saturation.json
    (`report.py saturation`'s): NAME=PATH arguments, in the legend's order."""
    series = {}
    for arg in args.profiles:
        name, _, path = arg.partition("=")
        steps = read_json(path)["steps"]
        series[name] = [(st["scale"], st["p99_ms"], st["passed"]) for st in steps]
    svg = scale_svg(args.title, series)
    with open(args.out, "w") as f:
        f.write(svg + "\n")
    print(args.out)


def plot(args):
    """An SVG of p99 and achieved throughput per SCALE step, from step summaries."""
    steps = []
    for path in args.summaries:
        s = read_json(path)
        cpu = s["cpu_seconds"] or {}
        steps.append(
            (
                s["scale"],
                s["latency_ms"]["p99"],
                s["throughput_rps"] or 0,
                step_passed(s),
                s["sla_pct"],
                cpu.get("loader", cpu.get("k6")),
            )
        )
    steps.sort()
    max_scale = max(x[0] for x in steps)
    # p99 on a log scale (1 ms … the largest decade seen): the interesting steps are small.
    ax = DualAxes(
        args.title,
        max_scale,
        [x[1] for x in steps],
        max(x[2] for x in steps),
        "SCALE (× official arrival rates)",
        "achieved req/s",
        h=420,
        pad=70,
        log_min=1,
    )
    X, Y1, Y2, h, pad, out = ax.x, ax.y1, ax.y2, ax.h, ax.pad, ax.out
    for sc, *_ in steps:
        out.append(f'<text x="{X(sc)}" y="{h - pad + 16}" text-anchor="middle">{sc:g}</text>')
    ax.line([(X(s[0]), Y1(s[1])) for s in steps], "#c0392b")
    ax.line([(X(s[0]), Y2(s[2])) for s in steps], "#2471a3", dashed=True)
    for sc, p99, rps, ok, sla, loader_cpu in steps:
        color = "#1e8449" if ok else "#c0392b"
        out.append(
            f'<circle cx="{X(sc)}" cy="{Y1(p99)}" r="5" fill="{color}"><title>SCALE {sc:g}: p99 {p99} ms, SLA {sla} %, {"pass" if ok else "FAIL"}, loader CPU {loader_cpu} s</title></circle>'
        )
        out.append(f'<rect x="{X(sc) - 3}" y="{Y2(rps) - 3}" width="6" height="6" fill="#2471a3"/>')
    out.append(
        f'<text x="{pad + 10}" y="{pad - 8}">● green: passed (0 KO, 0 inconsistencies, SLA ≥ 98 %) · red: failed</text>'
    )
    with open(args.out, "w") as f:
        f.write(ax.svg() + "\n")
    return 0


def saturation(args):
    """saturation.json from the step summaries, one page (the plot, then each step's
    server side), and a one-line-per-step table on stdout."""
    steps = [(read_json(p), os.path.dirname(os.path.abspath(p))) for p in args.summaries]
    rows = [
        {
            k: s[k]
            for k in ("scale", "requests", "ko", "sla_pct", "inconsistencies", "throughput_rps", "payout_usd", "passed")
        }
        | {"p99_ms": s["latency_ms"]["p99"], "max_ms": s["latency_ms"]["max"], "cpu_seconds": s["cpu_seconds"]}
        for s, _ in steps
    ]
    best = float(args.best)
    with open(os.path.join(args.out, "saturation.json"), "w") as f:
        json.dump(
            {
                "highest_passing_scale": best,
                "steps": rows,
                "commit": steps[0][0]["commit"],
                "machine": steps[0][0]["machine"],
            },
            f,
            indent=2,
        )
    sections = []
    for sm, d in steps:
        samples = load_samples(os.path.join(d, "server.jsonl"))
        start = os.path.join(d, "load-start.txt")
        if samples and os.path.exists(start):
            with open(start) as f:
                t0 = float(f.read())
            marks, x_max = phases_of(sm["duration_scale"], sm["loader"] == "k6")
            panels = server_panels(samples, t0, x_max, marks)[:3]
            sections.append(
                f"<h2>SCALE {sm['scale']:g}: {'passed' if step_passed(sm) else 'FAILED'}, p99 {sm['latency_ms']['p99']} ms, "
                f'SLA {sm["sla_pct"]} %, KO {sm["ko"]} (<a href="{os.path.basename(d)}/report.html">step report</a>)</h2>'
                + "".join(f"<div>{p}</div>" for p in panels)
            )
    svg_path = os.path.join(args.out, "saturation.svg")
    plot_svg = ""
    if os.path.exists(svg_path):
        with open(svg_path) as f:
            plot_svg = f.read()
    write_saturation_page(os.path.join(args.out, "saturation.html"), best, plot_svg, sections)
    print(f"highest passing SCALE: {best:g}")
    for r in rows:
        print(
            f"  SCALE {r['scale']:>5g}: {r['throughput_rps']:>8} req/s  p99 {r['p99_ms']:>8.2f} ms  max {r['max_ms']:>8.2f} ms  "
            f"SLA {r['sla_pct']:>6} %  KO {r['ko']:>5}  inconsistencies {r['inconsistencies']}  "
            f"loader CPU {r['cpu_seconds'].get('loader', r['cpu_seconds'].get('k6'))} s"
        )
    return 0


def histogram_buckets(texts, metric, route):
    """Cumulative buckets {bound: count} of a Prometheus histogram, summed over instances."""
    buckets = {}
    for text in texts:
        for m in re.finditer(rf'^{metric}_bucket{{route="{route}",le="([^"]+)"}} (\d+)$', text, re.M):
            le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
            buckets[le] = buckets.get(le, 0) + int(m.group(2))
    return buckets


def ms3(v):
    return None if v is None else round(v * 1e3, 3)


def hops(args):
    """One table: each hop's p50 / p99 / max (ms) for a run of bench/hops.sh."""
    loader = read_json(args.loader)
    req, up = [], []
    with open(args.access) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 5 or not parts[2][0].isdigit():
                continue
            req.append(float(parts[1]) * 1e3)
            up.append(sum(float(x) for x in parts[2].split(",") if x[0].isdigit()) * 1e3)

    def pct(xs):
        if not xs:
            return (None, None, None)
        return (round(nearest_rank(xs, 0.5), 3), round(nearest_rank(xs, 0.99), 3), round(max(xs), 3))

    texts = []
    for m in args.metrics:
        with open(m) as f:
            texts.append(f.read())
    lat = loader["latency_ms"]
    rows = [
        ("client (loader, from schedule)", lat["p50"], lat["p99"], lat["max"]),
        ("nginx $request_time (1 ms resolution)",) + pct(req),
        ("nginx $upstream_response_time (1 ms res.)",) + pct(up),
    ]
    for route in ("transacoes", "extrato"):
        for metric, what in (
            ("crebito_http_request_duration_seconds", "crebito request"),
            ("crebito_store_duration_seconds", "crebito waiting for the store"),
        ):
            b = histogram_buckets(texts, metric, route)
            rows.append(
                (
                    f"{what}, {route} (histogram estimate)" if what == "crebito request" else f"{what}, {route}",
                    ms3(histogram_quantile(b, 0.5)),
                    ms3(histogram_quantile(b, 0.99)),
                    None,
                )
            )
    with open(args.pgss) as f:
        for r in csv.reader(f):
            kind = "apply" if "update clientes" in r[0].lower() else "statement"
            rows.append(
                (
                    f"PostgreSQL {kind} execution ({r[1]} calls; mean, -, max)",
                    round(float(r[2]), 3),
                    None,
                    round(float(r[3]), 3),
                )
            )
    print(
        f"\n### SCALE {args.scale}: {loader['requests']} requests, {loader['ko']} KO, throughput {loader['throughput_rps']} req/s\n"
    )
    print("| hop | p50 ms | p99 ms | max ms |\n|---|---|---|---|")
    fmt = lambda v: "–" if v is None else f"{v:g}"
    for name, *v in rows:
        print(f"| {name} | " + " | ".join(fmt(x) for x in v) + " |")
    status = read_json(args.status)  # `stack status --json`
    print(
        "\nthrottled periods: "
        + ", ".join(f"{s['name']} {s['throttled_periods']}/{s['periods']}" for s in status["services"])
    )
    return 0


def row(args):
    """One markdown table row from a fast-loader summary (bench/topology.sh), with the
    balancer's CPU per request (its cgroup's seconds over the run / the run's requests)."""
    s = read_json(args.loader)
    lat = s["latency_ms"]
    ko = f"{s['ko']}" + (f" {s['ko_by_cause']}" if s["ko"] else "")
    lb_us = round(args.lb_cpu * 1e6 / max(s["requests"], 1))
    print(
        f"| {args.label} | {s['sla_pct']} % | {ko} | {lat['p50']} | {lat['p99']} | {lat['max']} | "
        f"{s['throughput_rps']} | {args.cpu} | {lb_us} | {args.throttled} |"
    )
    return 0


def cost(args):
    """CPU per request, per service and per tier, from step summaries (their cgroup CPU
    seconds over the run / requests): one markdown row per summary. Tiers: the database
    (db: the only server, or the Citus coordinator), the Citus workers (w1…), the instances
    and the balancer (api1, api2, lb); the stack's total leaves the loader out."""
    lines = [
        "| summary | SCALE | requests | CPU µs per request, by service | db | Citus workers | instances + lb | stack |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for path in args.summaries:
        s = read_json(path)
        per = {k: v * 1e6 / max(s["requests"], 1) for k, v in s["cpu_seconds"].items() if v is not None}
        tier = lambda pred, per=per: round(sum(v for k, v in per.items() if pred(k)))
        workers = tier(lambda k: k.startswith("w"))
        by = ", ".join(f"{k} {round(v)}" for k, v in per.items())
        lines.append(
            f"| {path} | {s['scale']:g} | {s['requests']} | {by} | {tier(lambda k: k == 'db')} | "
            f"{workers if workers else '–'} | {tier(lambda k: k.startswith('api') or k == 'lb')} | "
            f"**{tier(lambda k: k not in ('loader', 'k6'))}** |"
        )
    print("\n".join(lines))
    return 0


FLUSH_LINE = re.compile(r"(paced at [\d.]+/s|back to back)[^:]*: p50 ([\d.]+), p90 [\d.]+, p99 ([\d.]+)")
COMMITS_LINE = re.compile(r"as the commits meet it [^:]*: p50 ([\d.]+), p99 ([\d.]+)")


def flush_of(path):
    """A round's flush-N.txt (bench/lib.sh disk_flush): {"paced": (p50, p99), "back to back":
    (p50, p99), "commits": (p50, p99)} in µs (commits: the paced writes as they met the flush,
    bench/flush.py; absent from rounds measured before it was reported), and pg_test_fsync's
    mean."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = FLUSH_LINE.search(line)
            if m:
                out["paced" if m.group(1).startswith("paced") else "back to back"] = (
                    float(m.group(2)),
                    float(m.group(3)),
                )
                c = COMMITS_LINE.search(line)
                if c:
                    out["commits"] = (float(c.group(1)), float(c.group(2)))
            elif line.startswith("disk flush (pg_test_fsync"):
                out["pg_test_fsync"] = float(line.rsplit(":", 1)[1].split()[0])
    return out


def median(xs):
    """statistics.median, None for no values (a variant that ran no round)."""
    return statistics.median(xs) if xs else None


def sitting(args):
    """One sitting of official rounds (bench/lib.sh official_rounds: OUT/official/VARIANT/run-N,
    OUT/official/flush-N.txt): per variant each round's p99, the medians of p50, p99, max and of
    the floor's p99, PostgreSQL's and the stack's CPU per request, KOs; then each round's flush.
    Variants in the order given (default: as found)."""
    root = os.path.join(args.dir, "official")
    variants = args.variants or sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    rounds = sorted(int(m.group(1)) for f in os.listdir(root) for m in [re.fullmatch(r"flush-(\d+)\.txt", f)] if m)
    fmt = lambda v, nd=2: "–" if v is None else f"{v:.{nd}f}"
    lines = [
        "| variant | p99 by round (ms) | p50 | **p99** | max | floor p99 | PostgreSQL CPU µs/req | stack CPU µs/req | KO |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for v in variants:
        runs = []
        for r in rounds:
            path = os.path.join(root, v, f"run-{r}", "summary.json")
            runs.append(read_json(path) if os.path.exists(path) else None)
        done = [s for s in runs if s]
        lat = lambda q, done=done: median([s["latency_ms"][q] for s in done])
        per = lambda s, pick: (
            sum(x for k, x in s["cpu_seconds"].items() if x is not None and pick(k)) * 1e6 / max(s["requests"], 1)
        )
        lines.append(
            f"| {v} | {' · '.join(fmt(s['latency_ms']['p99']) if s else '–' for s in runs)} | {fmt(lat('p50'))} | "
            f"**{fmt(lat('p99'))}** | {fmt(lat('max'))} | "
            f"{fmt(median([s['floor']['latency_ms']['p99'] for s in done if s.get('floor')]))} | "
            f"{fmt(median([per(s, lambda k: k == 'db') for s in done]), 0)} | "
            f"{fmt(median([per(s, lambda k: k not in ('loader', 'k6')) for s in done]), 0)} | "
            f"{', '.join(str(s['ko']) for s in done) or '–'} |"
        )
    lines += [
        "",
        "| round | pg_test_fsync mean | flush paced p50 / p99 | as the commits meet it p50 / p99 | flush back to back p50 / p99 |",
        "|---|---|---|---|---|",
    ]
    flushes = [flush_of(os.path.join(root, f"flush-{r}.txt")) for r in rounds]
    for r, f in zip(rounds, flushes, strict=True):
        pair = lambda k, f=f: " / ".join(fmt(x, 1) for x in f[k]) + " µs" if k in f else "–"
        lines.append(
            f"| {r} | {fmt(f.get('pg_test_fsync'), 0)} µs | {pair('paced')} | {pair('commits')} | {pair('back to back')} |"
        )
    if len(flushes) > 1:
        mid = lambda k, i: median([f[k][i] for f in flushes if k in f])
        both = lambda k: f"{fmt(mid(k, 0), 1)} / {fmt(mid(k, 1), 1)} µs"
        fsync = fmt(median([f["pg_test_fsync"] for f in flushes if "pg_test_fsync" in f]), 0)
        lines.append(f"| median | {fsync} µs | {both('paced')} | {both('commits')} | {both('back to back')} |")
    lines += inside_the_database(root, variants, rounds)
    print("\n".join(lines))
    return 0


def run_metrics(d):
    """The instances' /metrics kept in a traced run's folder (metrics-api1.txt, …), as texts."""
    texts = []
    for f in sorted(os.listdir(d)):
        if re.fullmatch(r"metrics-api\d+\.txt", f):
            with open(os.path.join(d, f)) as fh:
                texts.append(fh.read())
    return texts


def post_p99_ms(texts, metric):
    """The p99 in ms of a crebito histogram for POST /transacoes, over the instances; None
    when there is none (an entry without metrics)."""
    q = histogram_quantile(histogram_buckets(texts, metric, "transacoes"), 0.99) if texts else None
    return None if q is None else q * 1e3


def inside_the_database(root, variants, rounds):
    """The sitting's second table when its runs were traced (STRESS_TRACE_PG=1: pgtrace.json
    and the instances' metrics-api*.txt in each run): per variant the medians over rounds of
    the p99 at each hop inward — the client, crebito's POST and its wait for the store,
    PostgreSQL's time on a request (stress/reporting/pgtrace.py), the flush — and the share of
    flushed requests that met another backend's flush. [] when no run was traced."""
    fmt = lambda v, nd=2: "–" if v is None else f"{v:.{nd}f}"
    rows = []
    for v in variants:
        runs = [os.path.join(root, v, f"run-{r}") for r in rounds]
        traced = [
            (d, read_json(os.path.join(d, "pgtrace.json")))
            for d in runs
            if os.path.exists(os.path.join(d, "pgtrace.json"))
        ]
        if not traced:
            continue

        client = median([read_json(os.path.join(d, "summary.json"))["latency_ms"]["p99"] for d, _ in traced])
        texts = [run_metrics(d) for d, _ in traced]
        request = median(
            [x for t in texts if (x := post_p99_ms(t, "crebito_http_request_duration_seconds")) is not None]
        )
        store = median([x for t in texts if (x := post_p99_ms(t, "crebito_store_duration_seconds")) is not None])
        pg = lambda key, q="p99", traced=traced: median([t[key][q] for _, t in traced if t[key][q] is not None])
        met = median([100 * t["met_a_flush"] / t["requests_with_flush"] for _, t in traced if t["requests_with_flush"]])
        rows.append(
            f"| {v} | {len(traced)} | {fmt(client)} | {fmt(request)} | {fmt(store)} | {fmt(pg('served_us'), 0)} | "
            f"{fmt(pg('before_flush_us'), 0)} | {fmt(pg('flush_us'), 0)} | {fmt(pg('flush_us', 'p50'), 0)} | "
            f"{fmt(met, 1)} | {fmt(pg('served_met_us'), 0)} | {fmt(pg('served_alone_us'), 0)} |"
        )
    if not rows:
        return []
    return [
        "",
        "Inside the database (STRESS_TRACE_PG=1; stress/reporting/pgtrace.py), medians over the traced rounds, p99",
        "unless said: the client (every request), crebito's request and store wait (POST /transacoes, its",
        "histograms), PostgreSQL's time on a request (every request; then the flushed ones that met another",
        "backend's flush, and those that did not), the flush itself, and the share of flushed requests that met one:",
        "",
        "| variant | rounds | client ms | crebito, a write ms | its store wait ms | in PostgreSQL µs | "
        "before the flush µs | flush µs | flush p50 µs | met another's flush % | in PostgreSQL, met µs | alone µs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]


def knee_shown(sat):
    """A round's highest passing SCALE as the table shows it: "< FIRST" when its first step
    failed, "–" when the round did not run."""
    if sat is None:
        return "–"
    if sat["highest_passing_scale"]:
        return f"{sat['highest_passing_scale']:g}"
    return f"< {sat['steps'][0]['scale']:g}" if sat["steps"] else "–"


def knee(args):
    """bench/knee.sh's table: each variant's highest passing SCALE per round (its
    OUT/round-N/VARIANT/saturation.json), the median over the rounds it ran, and the step
    each round failed at with its KOs. A round whose first step failed counts as 0 ("below
    the first step") in the median. OUT/knee.md and OUT/knee.json."""
    rounds = sorted(int(m.group(1)) for f in os.listdir(args.out) for m in [re.fullmatch(r"round-(\d+)", f)] if m)
    result = {}
    lines = [
        "| variant | highest passing SCALE by round | **median** | first failing step by round (KO, SLA %) |",
        "|---|---|---|---|",
    ]
    for v in args.variants:
        runs = []
        for r in rounds:
            path = os.path.join(args.out, f"round-{r}", v, "saturation.json")
            runs.append(read_json(path) if os.path.exists(path) else None)
        failed = [next((st for st in s["steps"] if not step_passed(st)), None) if s else None for s in runs]
        mid = median([s["highest_passing_scale"] for s in runs if s])
        result[v] = {
            "highest_passing_scale": [None if s is None else s["highest_passing_scale"] for s in runs],
            "median": mid,
            "first_failing": [None if st is None else st["scale"] for st in failed],
        }
        fails = [
            "–" if s is None else "none" if st is None else f"{st['scale']:g} ({st['ko']}, {st['sla_pct']})"
            for s, st in zip(runs, failed, strict=True)
        ]
        firsts = [s["steps"][0]["scale"] for s in runs if s and s["steps"]]
        shown_mid = "–" if mid is None else f"< {min(firsts):g}" if firsts and mid < min(firsts) else f"{mid:g}"
        lines.append(f"| {v} | {' · '.join(knee_shown(s) for s in runs)} | **{shown_mid}** | {' · '.join(fails)} |")
    with open(os.path.join(args.out, "knee.json"), "w") as f:
        json.dump({"rounds": rounds, "variants": result}, f, indent=2)
    with open(os.path.join(args.out, "knee.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0
