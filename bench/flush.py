#!/usr/bin/env python3
"""The disk's flush, the way a commit meets it: one 8 kB write then fdatasync, timed together.

    bench/flush.py DIR [--rate R] [--seconds S] [--json]

A durable commit waits for one WAL flush: PostgreSQL writes the WAL page(s) it filled, then
fdatasyncs the segment. This does the same on a file under DIR (a 16 MiB segment written and
synced first, like a recycled WAL segment, then 8 kB at consecutive offsets) and reports the
distribution of (write + fdatasync) per flush: p50, p90, p99, p99.9, max, mean, in µs.

  --rate R     paced at R writes a second, each due at its own instant on a fixed schedule
               (the load's commit rate: a lone flush is slower than back to back, the disk
               having gone idle in between); 0 (the default) back to back
  --seconds S  how long (default 10)
  --json       one JSON object instead of a line of text

Paced, it also reports the flush as the commits meet it (`commit_*`): each write's wait from
the instant it was due to the end of the flush that made it durable (a write that fell due
with the disk idle is timed from its flush's start instead: how late this loop wakes is not
the disk's). A flush that stalls does
not stop the load: the writes due meanwhile wait for it to end, then share the next flush, as
PostgreSQL's next WAL flush covers every commit record inserted before it starts. So one
stalled flush of 100 ms is one sample of the per-flush distribution but delays every write
due in those 100 ms (25 at 250/s): the per-flush figures alone would hide it (coordinated
omission). A stall is rare, so a window of a few seconds may miss it; longer windows see it.

pg_test_fsync reports only the mean of back-to-back flushes; bench/lib.sh's disk_flush
quotes both beside it, so that every durability figure carries the distribution at the rate
its load flushed.
"""

import argparse
import json
import math
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
    """Flushes on a file under directory for `seconds`: [(start, end)] in seconds (the
    perf_counter clock), and the loop's start. Paced (rate > 0), a flush starts when the next
    write not yet flushed is due, or at once if it already is; back to back, one after another."""
    fd, path = tempfile.mkstemp(prefix="flush.", dir=directory)
    try:
        os.write(fd, b"\0" * SEGMENT)
        os.fsync(fd)
        page = os.urandom(PAGE)
        flushes = []
        start = time.perf_counter()
        end = start + seconds
        offset = 0
        done = 0  # paced: the writes made durable so far
        while True:
            if rate > 0:
                due = start + done / rate
                if due >= end:
                    break
                now = time.perf_counter()
                if due > now:
                    time.sleep(due - now)
            t0 = time.perf_counter()
            os.pwrite(fd, page, offset)
            os.fdatasync(fd)
            flushes.append((t0, time.perf_counter()))
            offset = (offset + PAGE) % SEGMENT
            if rate > 0:
                done = covered(done, t0 - start, rate)
            if flushes[-1][1] >= end:
                break
        return flushes, start
    finally:
        os.close(fd)
        os.unlink(path)


def covered(done, t, rate):
    """The writes durable after a flush that started t seconds into a paced run: every write
    due by then (the first is due at 0), and at least the one after the `done` before it."""
    return max(math.floor(t * rate + 1e-9) + 1, done + 1)


def commits_met(flushes, start, rate):
    """Each paced write's wait in µs until the end of the flush that made it durable: the
    first flush to start at or after its instant. A write due while the previous flush still
    ran waited from its own instant; one due with the disk idle is timed from its flush's
    start (the loop's own wake-up is not the disk's)."""
    waits, done, idle_since = [], 0, start
    for t0, t1 in flushes:
        upto = covered(done, t0 - start, rate)
        for k in range(done, upto):
            due = start + k / rate
            waits.append((t1 - due if due < idle_since else t1 - t0) * 1e6)
        done, idle_since = upto, t1
    return waits


def summary(flushes, start, rate, seconds, directory):
    s = sorted((t1 - t0) * 1e6 for t0, t1 in flushes)
    q = lambda xs, p: round(nearest_rank(xs, p), 1)  # noqa: E731
    r = {
        "mode": "paced" if rate > 0 else "back-to-back",
        "rate": rate,
        "seconds": seconds,
        "n": len(s),
        "p50_us": q(s, 0.50),
        "p90_us": q(s, 0.90),
        "p99_us": q(s, 0.99),
        "p999_us": q(s, 0.999),
        "max_us": round(s[-1], 1),
        "mean_us": round(statistics.fmean(s), 1),
        "fs": fs_type(directory),
    }
    if rate > 0:
        w = sorted(commits_met(flushes, start, rate))
        r |= {
            "commits": len(w),
            "commit_p50_us": q(w, 0.50),
            "commit_p99_us": q(w, 0.99),
            "commit_p999_us": q(w, 0.999),
            "commit_max_us": round(w[-1], 1),
        }
    return r


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
        f"p50 {r['p50_us']:.1f}, p90 {r['p90_us']:.1f}, p99 {r['p99_us']:.1f}, "
        f"p99.9 {r['p999_us']:.1f}, max {r['max_us']:.1f}, mean {r['mean_us']:.1f} µs"
        + (
            f"; as the commits meet it ({r['commits']} writes): p50 {r['commit_p50_us']:.1f}, "
            f"p99 {r['commit_p99_us']:.1f}, p99.9 {r['commit_p999_us']:.1f}, max {r['commit_max_us']:.1f} µs"
            if "commits" in r
            else ""
        )
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
    r = summary(*measure(a.dir, a.rate, a.seconds), a.rate, a.seconds, a.dir)
    print(json.dumps(r) if a.json else line(r))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
