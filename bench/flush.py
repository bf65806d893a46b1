#!/usr/bin/env python3
"""The disk's flush, the way a commit meets it: one 8 kB write then fdatasync, timed together.

    bench/flush.py DIR [--rate R] [--seconds S] [--json]

A durable commit waits for one WAL flush: PostgreSQL writes the WAL page(s) it filled, then
fdatasyncs the segment. This does the same on a file under DIR (a 16 MiB segment written and
synced first, like a recycled WAL segment, then 8 kB at consecutive offsets) and reports the
distribution of (write + fdatasync) per operation: p50, p90, p99, p99.9, max, mean, in µs.

  --rate R     paced at R operations a second, one at a time, each at its own instant on a
               fixed schedule (the load's commit rate: a lone flush is slower than back to
               back, the disk having gone idle in between); 0 (the default) back to back
  --seconds S  how long (default 10)
  --json       one JSON object instead of a line of text

pg_test_fsync reports only the mean of back-to-back flushes; bench/lib.sh's disk_flush
quotes both beside it, so that every durability figure carries the distribution at the rate
its load flushed.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "stress"))
from reporting.quantiles import nearest_rank  # noqa: E402

PAGE = 8192
SEGMENT = 16 * 1024 * 1024


def measure(directory, rate, seconds):
    fd, path = tempfile.mkstemp(prefix="flush.", dir=directory)
    try:
        os.write(fd, b"\0" * SEGMENT)
        os.fsync(fd)
        page = os.urandom(PAGE)
        samples = []
        start = time.perf_counter()
        end = start + seconds
        offset = 0
        i = 0
        while True:
            if rate > 0:
                due = start + i / rate
                now = time.perf_counter()
                if due > now:
                    time.sleep(due - now)
                i += 1
            t0 = time.perf_counter_ns()
            os.pwrite(fd, page, offset)
            os.fdatasync(fd)
            samples.append((time.perf_counter_ns() - t0) / 1000)
            offset = (offset + PAGE) % SEGMENT
            if time.perf_counter() >= end:
                break
        return samples
    finally:
        os.close(fd)
        os.unlink(path)


def summary(samples, rate, seconds, directory):
    s = sorted(samples)
    q = lambda p: round(nearest_rank(s, p), 1)  # noqa: E731
    return {
        "mode": "paced" if rate > 0 else "back-to-back",
        "rate": rate,
        "seconds": seconds,
        "n": len(s),
        "p50_us": q(0.50),
        "p90_us": q(0.90),
        "p99_us": q(0.99),
        "p999_us": q(0.999),
        "max_us": round(s[-1], 1),
        "mean_us": round(statistics.fmean(s), 1),
        "fs": fs_type(directory),
    }


def fs_type(directory):
    """The file system type of DIR, from /proc/self/mounts (the longest mount point prefix)."""
    path = os.path.realpath(directory)
    best, kind = "", "unknown"
    try:
        with open("/proc/self/mounts") as mounts:
            for line in mounts:
                fields = line.split()
                mnt = fields[1]
                inside = path == mnt or path.startswith(mnt.rstrip("/") + "/")
                if inside and len(mnt) > len(best):
                    best, kind = mnt, fields[2]
    except OSError:
        pass
    return kind


def line(r):
    how = f"paced at {r['rate']:g}/s" if r["mode"] == "paced" else "back to back"
    return (
        f"one 8 kB write + fdatasync, {how} for {r['seconds']:g} s ({r['n']} on {r['fs']}): "
        f"p50 {r['p50_us']:g}, p90 {r['p90_us']:g}, p99 {r['p99_us']:g}, "
        f"p99.9 {r['p999_us']:g}, max {r['max_us']:g}, mean {r['mean_us']:g} µs"
    )


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--rate", type=float, default=0.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    if a.rate < 0 or a.seconds <= 0:
        ap.error("--rate must be >= 0 and --seconds > 0")
    if not os.path.isdir(a.dir):
        ap.error(f"{a.dir} is not a directory")
    r = summary(measure(a.dir, a.rate, a.seconds), a.rate, a.seconds, a.dir)
    print(json.dumps(r) if a.json else line(r))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
