"""The server's side of a run, from stress/sample.py's lines (one JSON object a second):
per-service CPU, throttling and memory against their limits, crebito's own counters and
histograms, PostgreSQL's and nginx's; as chart panels and as peaks for summary.json."""

import json
import os
from itertools import pairwise

from .charts import chart
from .quantiles import bucket_difference, histogram_quantile


def load_samples(path):
    if not path or not os.path.exists(path):
        return []
    out = []
    with open(path) as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def phases_of(dscale, k6):
    """The official simulation's phases: a ramp, then the plateau (both 120 s × dscale)."""
    p = max(1, int(120 * dscale + 0.5))
    marks = [(0, "ramp"), (p, "plateau"), (2 * p, "end of load")]
    return marks, 2 * p + (10 if k6 else 4)


def interval_p99_ms(prev, cur):
    """p99 (ms) of the requests answered between two readings of a cumulative histogram."""
    if not prev or not cur:
        return None
    q = histogram_quantile(bucket_difference(prev["buckets"], cur["buckets"]), 0.99)
    return None if q is None else q * 1000


def server_panels(samples, t0, x_max, phases):
    """SVG panels from the sampler's lines, t0 = when the load started (epoch seconds)."""
    if len(samples) < 2:
        return []
    rel = lambda s: s["t"] - t0
    pairs = list(pairwise(samples))
    svcs = list(samples[-1]["services"].keys())
    dt = lambda a, b: max(b["t"] - a["t"], 1e-6)

    def per_svc(f):
        return {
            svc: [(rel(b), f(a["services"].get(svc), b["services"].get(svc), dt(a, b))) for a, b in pairs]
            for svc in svcs
        }

    def rate(section, name, key):
        return [
            (rel(y), (y[section][name][key] - x[section][name][key]) / dt(x, y))
            if x[section].get(name) and y[section].get(name)
            else (rel(y), None)
            for x, y in pairs
        ]

    def level(section, name, key):
        return [(rel(s), (s[section].get(name) or {}).get(key)) for s in samples]

    cpu = per_svc(lambda a, b, d: (b["cpu_s"] - a["cpu_s"]) / d if a and b else None)
    thr = per_svc(lambda a, b, d: (b["throttled"] - a["throttled"]) / d if a and b else None)
    mem = {svc: [(rel(s), (s["services"].get(svc) or {}).get("mem_mb")) for s in samples] for svc in svcs}
    quota = {svc: samples[-1]["services"][svc].get("quota_cpus") for svc in svcs}
    mlim = {svc: samples[-1]["services"][svc].get("mem_limit_mb") for svc in svcs}
    panel = lambda title, series, unit, limits=None: chart(title, series, unit, phases, x_max, limits)
    panels = [
        panel("CPU used per service (cores)", cpu, "cores", quota),
        panel("CFS periods throttled per second", thr, "periods/s"),
        panel("Memory per service (MiB)", mem, "MiB", mlim),
    ]
    apis = list(samples[-1].get("crebito", {}))
    if apis:
        p99 = {a: [(rel(y), interval_p99_ms(x["crebito"].get(a), y["crebito"].get(a))) for x, y in pairs] for a in apis}
        panels += [
            panel("crebito: requests answered per second", {a: rate("crebito", a, "requests") for a in apis}, "req/s"),
            panel("crebito: p99 of its own request time, per second (estimated from its histogram)", p99, "ms"),
            panel(
                "crebito: client connections open (nginx's, kept alive)",
                {a: level("crebito", a, "connections") for a in apis},
                "connections",
            ),
        ]
        if any((s["crebito"].get(a) or {}).get("transactions") for s in samples for a in apis):
            panels.append(
                panel(
                    "crebito: writes per PostgreSQL transaction, per second (group commit)",
                    {a: writes_per_transaction(pairs, rel, a) for a in apis},
                    "writes",
                )
            )
    nodes = list(samples[-1].get("postgres", {}))
    if nodes:
        backends = {f"{n} backends": level("postgres", n, "backends") for n in nodes}
        active = {f"{n} active": level("postgres", n, "active") for n in nodes}
        panels += [
            panel(
                "PostgreSQL: transactions per second (pg_stat_database)",
                {n: rate("postgres", n, "xacts") for n in nodes},
                "xact/s",
            ),
            panel(
                "PostgreSQL: lock waits (pg_locks not granted)",
                {n: level("postgres", n, "lock_waits") for n in nodes},
                "waiting",
            ),
            panel("PostgreSQL: client backends, active ones (pg_stat_activity)", backends | active, "backends"),
        ]
    if any(s.get("nginx") for s in samples):
        act = {"active connections": [(rel(s), (s.get("nginx") or {}).get("active")) for s in samples]}
        req = {
            "requests/s": [
                (rel(b), (b["nginx"]["requests"] - a["nginx"]["requests"]) / dt(a, b))
                if a.get("nginx") and b.get("nginx")
                else (rel(b), None)
                for a, b in pairs
            ]
        }
        panels += [
            panel("nginx: active connections (stub_status)", act, "connections"),
            panel("nginx: requests per second (stub_status)", req, "req/s"),
        ]
    return panels


def writes_per_transaction(pairs, rel, api):
    """An instance's writes per transaction over each interval: the group commit's batch size
    (1 when every write went alone; none when it sent nothing)."""
    out = []
    for x, y in pairs:
        a, b = x["crebito"].get(api) or {}, y["crebito"].get(api) or {}
        tx = b.get("transactions", 0) - a.get("transactions", 0)
        out.append((rel(y), (b.get("writes", 0) - a.get("writes", 0)) / tx if tx > 0 else None))
    return out


def server_summary(samples, t0, x_max):
    """Peaks per service over the load: cores, throttled periods, MiB (for summary.json)."""
    during = [x for x in samples if 0 <= x["t"] - t0 <= x_max]
    out = {}
    for svc in during[-1]["services"] if during else {}:
        first, last = during[0]["services"].get(svc), during[-1]["services"].get(svc)
        mems = [x["services"][svc]["mem_mb"] for x in during if x["services"].get(svc)]
        peak_cpu = max(
            (
                (b["services"][svc]["cpu_s"] - a["services"][svc]["cpu_s"]) / max(b["t"] - a["t"], 1e-6)
                for a, b in pairwise(during)
                if a["services"].get(svc) and b["services"].get(svc)
            ),
            default=None,
        )
        out[svc] = {
            "peak_cores": round(peak_cpu, 3) if peak_cpu is not None else None,
            "throttled_periods": (last["throttled"] - first["throttled"]) if first and last else None,
            "peak_mem_mb": round(max(mems), 1) if mems else None,
            "mem_limit_mb": last.get("mem_limit_mb") if last else None,
            "oom_kills": last.get("oom_kills") if last else None,
        }
    return out
