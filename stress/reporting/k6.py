"""k6: running it with its CPU time measured, and its end-of-test summary read into the
loader-neutral shape the summaries use (the fast loader writes that shape itself)."""

import json
import os
import resource
import subprocess

SCENARIOS = ["debitos", "creditos", "extratos", "validacoes", "criterios_clientes"]
QUANTILES = [("p50", "p(50)"), ("p75", "p(75)"), ("p95", "p(95)"), ("p99", "p(99)"), ("max", "max"), ("avg", "avg")]


def run(cmd, log_path, cpu_out):
    """Runs k6 (cmd), its output to log_path; saves its CPU seconds and exit code to cpu_out."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(log_path, "w") as log:
        code = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    with open(cpu_out, "w") as f:
        json.dump({"k6_cpu_seconds": round(cpu, 3), "k6_exit_code": code}, f)
    return code


def metric(m, name, key, default=0):
    return m.get(name, {}).get("values", {}).get(key, default)


def client_view(k6_summary, k6_cpu=None):
    """What the k6 client saw (rinha.js's counters and trends). Its percentiles are k6's
    own, computed by k6 from its trend; everything else in the toolkit is nearest-rank
    (quantiles.py)."""
    with open(k6_summary) as f:
        m = json.load(f)["metrics"]
    k6cpu = {}
    if k6_cpu and os.path.exists(k6_cpu):
        with open(k6_cpu) as f:
            k6cpu = json.load(f)

    def latency(name):
        v = m.get(name, {}).get("values", {})
        return {k: round(v.get(src, 0), 3) for k, src in QUANTILES}

    return {
        "loader": "k6",
        "requests": int(metric(m, "rinha_requests", "count")),
        "ko": int(metric(m, "rinha_ko", "count")),
        "ok_under_250ms": int(metric(m, "rinha_ok_under_250ms", "count")),
        "inconsistencies": int(metric(m, "rinha_inconsistencies", "count")),
        "posts_ok": int(metric(m, "rinha_posts_ok", "count")),
        "latency_ms": latency("rinha_response_time"),
        "per_scenario": {
            s: {
                "requests": int(metric(m, f"rinha_requests{{scenario:{s}}}", "count")) or None,
                "ko": int(metric(m, f"rinha_ko{{scenario:{s}}}", "count")),
                "latency_ms": latency(f"rinha_response_time{{scenario:{s}}}"),
            }
            for s in SCENARIOS
        },
        "http_reqs_rate": round(metric(m, "http_reqs", "rate"), 1),
        "loader_cpu_seconds": k6cpu.get("k6_cpu_seconds"),
    }
