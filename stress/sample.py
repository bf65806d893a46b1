#!/usr/bin/env python3
"""The server's side of a stress run: once a second, every service of a native stack or
cluster (deploy/native/stack, deploy/native/cluster), as raw counters on one JSON line.

    stress/sample.py --stack deploy/native/stack --out server.jsonl [--interval 1]

What to sample comes from the stack itself, read once at start: `stack env` (the operations
URL, PostgreSQL's socket directory and ports) and `stack status --json` (the services and
their cgroup directories); PORT/STACK_DIR in the environment select the stack, as for every
stack command.

Per service, from its cgroup: CPU time used and the CPU quota, CFS periods and throttled
periods, memory used and the memory limit. Per crebito instance, from its /metrics (through
nginx's loopback operations server, STACK_OPS_URL: the instances listen on Unix sockets): requests
answered, the latency histogram, open connections. Per PostgreSQL node: transactions
(pg_stat_database), lock waits (pg_locks, not granted), client backends and active ones
(pg_stat_activity). nginx: stub_status (active connections, requests).

Rates and quantiles are computed afterwards (report.py), from differences between lines. The
sampler runs outside the stack's cgroups (one python process, one long-lived psql per node,
two HTTP GETs a second); with --cost-out it records its own CPU time at exit, which every
report shows. Stops on SIGTERM/SIGINT.
"""

import argparse
import json
import os
import re
import resource
import select
import signal
import subprocess
import sys
import time
import urllib.request

PG_QUERY = (
    "SELECT (SELECT sum(xact_commit + xact_rollback) FROM pg_stat_database), "
    "(SELECT count(*) FROM pg_locks WHERE NOT granted), "
    "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'), "
    "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND state = 'active' "
    "AND pid <> pg_backend_pid())"
)
LINE = re.compile(r"^(\w+)(?:\{([^}]*)\})? ([0-9.eE+-]+|NaN|\+Inf)$")


def read(path, default=None):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def sample_cgroup(d, version):
    """d: the service's cgroup directories, from `stack status --json`."""
    out = {}
    stat = read(os.path.join(d["cpu"], "cpu.stat"), "")
    fields = dict(line.split() for line in stat.splitlines() if len(line.split()) == 2)
    out["periods"] = int(fields.get("nr_periods", 0))
    out["throttled"] = int(fields.get("nr_throttled", 0))
    if version == 1:
        out["cpu_s"] = int(read(os.path.join(d["cpuacct"], "cpuacct.usage"), "0")) / 1e9
        quota = int(read(os.path.join(d["cpu"], "cpu.cfs_quota_us"), "-1"))
        period = int(read(os.path.join(d["cpu"], "cpu.cfs_period_us"), "100000"))
        out["quota_cpus"] = quota / period if quota > 0 else None
        out["mem_mb"] = int(read(os.path.join(d["memory"], "memory.usage_in_bytes"), "0")) / 1048576
        limit = int(read(os.path.join(d["memory"], "memory.limit_in_bytes"), "0"))
    else:
        out["cpu_s"] = int(fields.get("usage_usec", 0)) / 1e6
        q = (read(os.path.join(d["cpu"], "cpu.max"), "max") or "max").split()
        out["quota_cpus"] = int(q[0]) / int(q[1]) if q[0] != "max" else None
        out["mem_mb"] = int(read(os.path.join(d["memory"], "memory.current"), "0")) / 1048576
        m = (read(os.path.join(d["memory"], "memory.max"), "max") or "max").strip()
        limit = int(m) if m != "max" else 0
    out["mem_limit_mb"] = limit / 1048576 if 0 < limit < 1 << 50 else None
    out["oom_kills"] = None
    events = read(os.path.join(d["memory"], "memory.oom_control" if version == 1 else "memory.events"), "")
    for line in events.splitlines():
        if line.startswith("oom_kill "):
            out["oom_kills"] = int(line.split()[1])
    return out


def get(url, timeout=0.5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read().decode()
    except Exception:
        return None


def sample_crebito(text):
    """Requests, the request-latency histogram (all routes), open connections, and the
    PostgreSQL store's group commit: writes and transactions sent (every node summed)."""
    if text is None:
        return None
    requests, buckets, conns = 0, {}, None
    writes, transactions = 0, 0
    for line in text.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        if name == "crebito_http_requests_total":
            requests += int(float(value))
        elif name == "crebito_http_request_duration_seconds_bucket":
            le = re.search(r'le="([^"]+)"', labels).group(1)
            buckets[le] = buckets.get(le, 0) + int(float(value))
        elif name == "crebito_connections_open":
            conns = int(float(value))
        elif name == "crebito_pg_batch_size_sum":
            writes += int(float(value))
        elif name == "crebito_pg_batch_size_count":
            transactions += int(float(value))
    return {
        "requests": requests,
        "buckets": buckets,
        "connections": conns,
        "writes": writes,
        "transactions": transactions,
    }


def sample_nginx(text):
    if text is None:
        return None
    m = re.search(r"Active connections:\s*(\d+).*?\n\s*(\d+)\s+(\d+)\s+(\d+)", text, re.S)
    if not m:
        return None
    return {"active": int(m.group(1)), "accepts": int(m.group(2)), "requests": int(m.group(4))}


class Pg:
    """One long-lived psql per node, fed a query a second: spawning psql every second cost
    a few milliseconds of CPU each time, on the cores the stack runs on. A node that does not
    answer within a second (restarting, frozen) gets a fresh psql at the next tick."""

    def __init__(self, psql, host, port):
        self.cmd = [psql, "-h", host, "-p", str(port), "-U", "postgres", "-d", "rinha", "-XAtq"]
        self.proc, self.buf = None, b""

    def _start(self):
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.buf = b""

    def _stop(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def sample(self):
        try:
            if self.proc is None or self.proc.poll() is not None:
                self._start()
            self.proc.stdin.write((PG_QUERY + ";\n").encode())
            self.proc.stdin.flush()
            deadline = time.monotonic() + 1.0
            while b"\n" not in self.buf:
                left = deadline - time.monotonic()
                ready = select.select([self.proc.stdout], [], [], max(left, 0))[0] if left > 0 else []
                chunk = os.read(self.proc.stdout.fileno(), 4096) if ready else b""
                if not chunk:
                    self._stop()
                    return None
                self.buf += chunk
            line, self.buf = self.buf.split(b"\n", 1)
            xacts, waits, backends, active = (int(x or 0) for x in line.decode().strip().split("|"))
            return {"xacts": xacts, "lock_waits": waits, "backends": backends, "active": active}
        except (OSError, ValueError):
            self._stop()
            return None


def stack_facts(stack):
    """(stack.env as a dict, `stack status --json`) of the running stack."""
    env = {}
    text = subprocess.run([stack, "env"], capture_output=True, text=True, check=True).stdout
    for line in text.splitlines():
        key, _, value = line.partition("=")
        env[key] = value.strip('"')
    status = json.loads(subprocess.run([stack, "status", "--json"], capture_output=True, text=True, check=True).stdout)
    return env, status


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stack", required=True, help="deploy/native/stack (PORT, STACK_DIR from the environment)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--psql", default="psql")
    ap.add_argument("--cost-out", help="at exit: the sampler's own CPU seconds (its psql included) and wall seconds")
    args = ap.parse_args()
    started = time.monotonic()
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    env, status = stack_facts(args.stack)
    ops, host, version = env["STACK_OPS_URL"], env["STACK_PG_HOST"], status["cgroup_version"]
    cgroups = {s["name"]: s["cgroups"] for s in status["services"]}
    svcs = list(cgroups)
    nodes = {
        svc: Pg(args.psql, host, env[f"STACK_PG_PORT_{svc.upper()}"])
        for svc in svcs
        if f"STACK_PG_PORT_{svc.upper()}" in env
    }
    with open(args.out, "a") as out:
        next_at = time.monotonic()
        while not stop:
            line = {"t": round(time.time(), 3), "services": {}, "crebito": {}, "postgres": {}}
            for svc in svcs:
                if cgroups[svc]:
                    line["services"][svc] = sample_cgroup(cgroups[svc], version)
                if svc.startswith("api"):
                    line["crebito"][svc] = sample_crebito(get(f"{ops}/metrics/{svc}"))
                elif svc in nodes:
                    line["postgres"][svc] = nodes[svc].sample()
            line["nginx"] = sample_nginx(get(f"{ops}/nginx_status")) if "lb" in svcs else None
            out.write(json.dumps(line, separators=(",", ":")) + "\n")
            out.flush()
            next_at += args.interval
            time.sleep(max(0.0, next_at - time.monotonic()))
    for node in nodes.values():
        node._stop()
    if args.cost_out:
        # What observing cost: this process and its psql children (reaped above), on the
        # cores the stack runs on.
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
        with open(args.cost_out, "w") as f:
            json.dump({"cpu_s": round(cpu, 3), "seconds": round(time.monotonic() - started, 3)}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
