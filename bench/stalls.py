#!/usr/bin/env python3
"""Where the slowest requests of a run fall in time, against the disk's stalls in the same run.

    bench/stalls.py record DIR OUT [--seconds S] [--every MS]
    bench/stalls.py place K6_CSV DISK_LOG [--json]

`record` samples /proc/diskstats for the disk holding DIR (the stacks' data) every MS
milliseconds (default 10) for S seconds (default 330, an official run and its stack's start):
one line per sample, `ms writes flushes flush_ms in_flight` (the clock in milliseconds since
the epoch, then the disk's counters). It reads one small file a sample, so the run it watches
keeps its cores.

`place` reads k6's per-request samples (`K6_OUT=csv=FILE K6_CSV_TIME_FORMAT=unix_milli`; keep
the file on a tmpfs such as /dev/shm, or its own writes become part of what is measured) and
such a log, and says:
- the requests at or above the run's p99 (http_req_duration), by method;
- how they group in time: slow requests whose spans overlap or lie within 20 ms of each other
  form one cluster; many in few clusters means a common cause, a pause, not many slow paths;
- the disk's stalls: spans of at least 30 ms (--stall-ms) with an I/O in flight and no write
  and no flush completed, their share of the time watched, and how many slow requests overlap
  one (or lie within a sampling interval of one).

A durable commit waits for its flush: a flush the disk holds for 100 ms holds every write that
arrives meanwhile (docs/src/performance.md, "Where durable's slowest requests fall").
"""

import argparse
import collections
import csv
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "stress"))
from reporting.quantiles import nearest_rank  # noqa: E402

GAP_MS = 20  # slow requests this close belong to one cluster
STALL_MS = 30  # by default, an I/O in flight this long with nothing completed is a stall


def device_of(directory):
    """/proc/diskstats' name for the block device holding directory."""
    dev = os.stat(directory).st_dev
    major, minor = os.major(dev), os.minor(dev)
    with open("/proc/diskstats") as f:
        for line in f:
            p = line.split()
            if int(p[0]) == major and int(p[1]) == minor:
                return p[2]
    raise SystemExit(f"stalls.py: no disk in /proc/diskstats holds {directory}")


def record(directory, out, seconds, every_ms):
    name = device_of(directory)
    end = time.time() + seconds
    with open(out, "w") as log:
        while time.time() < end:
            with open("/proc/diskstats") as f:
                for line in f:
                    p = line.split()
                    if p[2] == name:
                        if len(p) < 20:
                            raise SystemExit("stalls.py: /proc/diskstats counts no flushes here (Linux < 5.5)")
                        # writes completed, flushes completed, ms flushing, I/Os in flight (reads too)
                        log.write(f"{time.time() * 1000:.1f} {p[7]} {p[18]} {p[19]} {p[11]}\n")
                        break
            time.sleep(every_ms / 1000)


def requests_of(k6_csv):
    """[(start_ms, end_ms, method)] of every request k6 timed, in start order."""
    out = []
    with open(k6_csv, newline="") as f:
        rows = csv.reader(f)
        head = next(rows)
        name, at, value, method = (head.index(k) for k in ("metric_name", "timestamp", "metric_value", "method"))
        for r in rows:
            if r[name] == "http_req_duration":
                end, took = float(r[at]), float(r[value])
                out.append((end - took, end, r[method]))
    return sorted(out)


def samples_of(disk_log):
    with open(disk_log) as f:
        return [tuple(float(x) for x in line.split()) for line in f if line.strip()]


def stalls(samples, at_least=STALL_MS):
    """[(start_ms, end_ms)]: spans of at least `at_least` ms from one sample to a later one,
    every sample of them with an I/O in flight, and no write and no flush completed in between.
    Known to a sampling interval either side: sampled every 10 ms, a 10 ms stall is two
    consecutive samples."""
    out, i = [], 0
    while i < len(samples):
        j = i
        if samples[i][4] == 0:
            i += 1
            continue
        while (
            j + 1 < len(samples)
            and samples[j + 1][4] > 0
            and samples[j + 1][1] == samples[i][1]
            and samples[j + 1][2] == samples[i][2]
        ):
            j += 1
        if samples[j][0] - samples[i][0] >= at_least:
            out.append((samples[i][0], samples[j][0]))
        i = j + 1
    return out


def clusters(spans):
    """Spans (start order) merged when they overlap or lie within GAP_MS: [(start, end, n)]."""
    out = []
    for s, e in spans:
        if out and s <= out[-1][1] + GAP_MS:
            out[-1] = (out[-1][0], max(out[-1][1], e), out[-1][2] + 1)
        else:
            out.append((s, e, 1))
    return out


def place(requests, samples, stall_ms=STALL_MS):
    took = sorted(e - s for s, e, _ in requests)
    p99 = nearest_rank(took, 0.99)
    slow = [(s, e, m) for s, e, m in requests if e - s >= p99]
    groups = clusters([(s, e) for s, e, _ in slow])
    sizes = sorted((n for _, _, n in groups), reverse=True)
    held = stalls(samples, stall_ms)
    # Sampled every ~10 ms: a stall's bounds are known to a sample either side.
    slack = 10
    in_stall = sum(1 for s, e, _ in slow if any(a - slack <= e and s <= b + slack for a, b in held))
    return {
        "requests": len(requests),
        "p99_ms": round(p99, 2),
        "slow": len(slow),
        "slow_by_method": dict(collections.Counter(m for _, _, m in slow)),
        "clusters": len(groups),
        "largest_clusters": sizes[:10],
        "slow_in_clusters_of_5_or_more": sum(n for n in sizes if n >= 5),
        "stall_at_least_ms": stall_ms,
        "stalls": len(held),
        "stalled_ms": round(sum(b - a for a, b in held)),
        "watched_ms": round(samples[-1][0] - samples[0][0]) if samples else 0,
        "stall_ms": [round(b - a) for a, b in held],
        "slow_overlapping_a_stall": in_stall,
    }


def text(r):
    return "\n".join(
        [
            f"requests {r['requests']}, p99 {r['p99_ms']} ms: {r['slow']} at or above it "
            f"({', '.join(f'{k} {v}' for k, v in sorted(r['slow_by_method'].items()))})",
            f"in time: {r['clusters']} clusters (within {GAP_MS} ms), the largest {r['largest_clusters']}; "
            f"{r['slow_in_clusters_of_5_or_more']} of {r['slow']} in clusters of 5 or more",
            f"disk stalls (an I/O in flight, no write or flush completed, >= {r['stall_at_least_ms']:g} ms): {r['stalls']}, "
            f"{r['stalled_ms']} ms of the {r['watched_ms']} watched, the longest "
            f"{sorted(r['stall_ms'], reverse=True)[:10]} ms; "
            f"{r['slow_overlapping_a_stall']} of {r['slow']} slow requests overlap one",
        ]
    )


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("dir")
    rec.add_argument("out")
    rec.add_argument("--seconds", type=float, default=330)
    rec.add_argument("--every", type=float, default=10, help="milliseconds between samples")
    pl = sub.add_parser("place")
    pl.add_argument("k6_csv")
    pl.add_argument("disk_log")
    pl.add_argument("--stall-ms", type=float, default=STALL_MS, help="the shortest stall counted")
    pl.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    if a.cmd == "record":
        record(a.dir, a.out, a.seconds, a.every)
        return 0
    r = place(requests_of(a.k6_csv), samples_of(a.disk_log), a.stall_ms)
    print(json.dumps(r) if a.json else text(r))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
