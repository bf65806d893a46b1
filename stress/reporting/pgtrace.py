"""The database's side of each request, from the kernel's record of PostgreSQL's system calls.

crebito's histograms say how long an instance waited for the store; PostgreSQL's statistics
say how long a statement executed. Neither says where the rest of the wait went: the WAL's
flush, a commit waiting for another backend's flush, or the backend waiting for a lock or a
core. `perf record` on the database's processes (stress/run.sh with STRESS_TRACE_PG=1,
stress/pgtrace.sh) records, per backend, when a request's bytes were read (`recvfrom`
returning data), when its WAL was flushed (`fdatasync` entered and returned) and when its
answers were written (`sendto`); this module turns `perf script -F tid,time,event,trace`
text into those spans:

  served        first byte read -> last answer written: the backend's whole time on a request
                (statement, commit, flush, any wait for a row lock, the WAL lock or a core),
                what crebito waits for minus the two socket hops and the wake-ups at both ends
  flush         one fdatasync, as the commit met it under the load
  before_flush  first byte read -> fdatasync entered: the statement, its commit record, and
                any wait for the WAL lock (a backend flushing first holds it)
  after_flush   fdatasync returned -> last answer written
  met           flushed requests during whose before_flush another backend was inside its
                own fdatasync: they waited, or could have, for that flush before their own.
                A commit that another's flush covered calls no fdatasync: it is in `served`,
                not here.

A request is one read burst: it starts when a read returns data with none open, and ends
when, after an answer was written, the backend's next read finds nothing (EAGAIN: PostgreSQL's
idle loop) or returns the next request's bytes. A read that brought several pipelined
requests at once (a group commit's BEGIN, writes and COMMIT) makes one request of them all.
A wait inside a request (a row lock, in `epoll_wait` on the backend's latch) does not end it.
"""

import bisect
import json
import re
import sys

from .quantiles import nearest_rank

LINE = re.compile(r"^\s*(\d+)\s+(\d+\.\d+):\s+syscalls:sys_(enter|exit)_(\w+):\s*(.*)$")
LOST = re.compile(r"PERF_RECORD_LOST.*?lost (\d+)")
QS = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("p999", 0.999))
EAGAIN = -11


def events(lines, lost=None):
    """(tid, seconds, 'enter'|'exit', syscall, rest) for each perf script line it knows; the
    events the kernel dropped (perf script --show-lost-events) are added to lost[0]."""
    for line in lines:
        m = LINE.match(line)
        if m:
            yield int(m.group(1)), float(m.group(2)), m.group(3), m.group(4), m.group(5).strip()
        elif lost is not None and (m := LOST.search(line)):
            lost[0] += int(m.group(1))


def returned(rest):
    """A syscall's return value from its exit line (perf prints it in hex, a negative errno
    as a 64-bit two's complement); None when unreadable."""
    try:
        v = int(rest, 16)
    except ValueError:
        return None
    return v - (1 << 64) if v >= 1 << 63 else v


def spans(lines, lost=None):
    """Per request and per flush, the spans in seconds: {'requests': [{tid, read, flushes:
    [(start, end)], sent}], 'flushes': [(tid, start, end)], 'backends': tids that served}."""
    state = {}  # tid -> the open request
    flush_open = {}  # tid -> fdatasync entry time
    requests, flushes, backends = [], [], set()

    def close(tid):
        r = state.pop(tid)
        if r["sent"] is not None:
            requests.append({"tid": tid, **r})

    for tid, t, kind, call, rest in events(lines, lost):
        if call == "recvfrom" and kind == "exit":
            v = returned(rest)
            r = state.get(tid)
            if r is not None and r["sent"] is not None and v is not None and (v == EAGAIN or v >= 0):
                close(tid)  # answered, and the next read found nothing, the next request or the end
                r = None
            if r is None and v is not None and v > 0:
                backends.add(tid)
                state[tid] = {"read": t, "flushes": [], "sent": None}
        elif call == "fdatasync" and kind == "enter":
            flush_open[tid] = t
        elif call == "fdatasync" and kind == "exit" and tid in flush_open:
            start = flush_open.pop(tid)
            flushes.append((tid, start, t))
            if tid in state:
                state[tid]["flushes"].append((start, t))
        elif call == "sendto" and kind == "enter" and tid in state:
            state[tid]["sent"] = t
    for tid in list(state):
        close(tid)
    return {"requests": requests, "flushes": flushes, "backends": backends}


def quantiles(xs):
    """p50, p90, p99, p99.9 and max of microsecond samples (nearest rank), rounded to 0.1."""
    out = {k: (None if not xs else round(nearest_rank(xs, q), 1)) for k, q in QS}
    out["max"] = round(max(xs), 1) if xs else None
    return out


def summarize(lines):
    """The trace's summary (what stress/run.sh keeps as pgtrace.json)."""
    lost = [0]
    s = spans(lines, lost)
    reqs, flushes, backends = s["requests"], s["flushes"], s["backends"]
    us = lambda a, b: (b - a) * 1e6
    # The backends' flushes by start time, to ask "was another backend flushing meanwhile?":
    # only those that started before the span ended and less than the longest flush before it
    # began. (The WAL writer's flushes hold the WAL lock too, but run on their own schedule.)
    by_start = sorted((f for f in flushes if f[0] in backends), key=lambda f: f[1])
    starts = [f[1] for f in by_start]
    longest = max((b - a for _, a, b in flushes), default=0.0)

    def met(r):
        end = r["flushes"][0][0]
        i = bisect.bisect_left(starts, end) - 1
        while i >= 0 and starts[i] >= r["read"] - longest:
            tid, _, stop = by_start[i]
            if tid != r["tid"] and stop > r["read"]:
                return True
            i -= 1
        return False

    flushed = [r for r in reqs if r["flushes"]]
    met_reqs, alone = [], []
    for r in flushed:
        (met_reqs if met(r) else alone).append(r)
    served = lambda rs: [us(r["read"], r["sent"]) for r in rs]
    return {
        "lost_events": lost[0],
        "requests": len(reqs),
        "requests_with_flush": len(flushed),
        "flushes": len(flushes),
        "flushes_outside_requests": sum(1 for tid, _, _ in flushes if tid not in backends),
        "met_a_flush": len(met_reqs),
        "served_us": quantiles(served(reqs)),
        "served_flushed_us": quantiles(served(flushed)),
        "served_met_us": quantiles(served(met_reqs)),
        "served_alone_us": quantiles(served(alone)),
        "flush_us": quantiles([us(a, b) for _, a, b in flushes]),
        "before_flush_us": quantiles([us(r["read"], r["flushes"][0][0]) for r in flushed]),
        "after_flush_us": quantiles([us(r["flushes"][-1][1], r["sent"]) for r in flushed]),
    }


def command(args):
    """report.py pgtrace: the summary of a perf script's text, written to --out."""
    src = sys.stdin if args.script == "-" else open(args.script)
    with src:
        out = summarize(src)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(
        f"pgtrace: {out['requests']} requests, {out['flushes']} flushes (p99 {out['flush_us']['p99']} µs), "
        f"served p99 {out['served_us']['p99']} µs, {out['met_a_flush']} met another's flush",
        file=sys.stderr,
    )
    return 0
