"""Unit tests of stress/reporting/pgtrace.py: PostgreSQL's side of each request, from a
perf script's text (stress/pgtrace.sh)."""

import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "stress"))

from reporting import bench, pgtrace  # noqa: E402

# Two backends and the WAL writer, as `perf script -F tid,time,event,trace` prints them.
# Backend 100 flushes a write alone; backend 200 reads a write while 100 is flushing, flushes
# its own after it, then finds the next request already there (a read: no flush, no
# epoll_wait between the two); the WAL writer flushes outside any request; backend 400 waits
# for a row lock (in epoll_wait, on its latch) inside a request, which does not end it. The
# kernel dropped 7 events.
TRACE = """\
   100 1.000000:  syscalls:sys_exit_recvfrom: 0x59
   100 1.000200:  syscalls:sys_enter_fdatasync: fd: 0x00000016
   200 1.000300:  syscalls:sys_exit_recvfrom: 0x59
   100 1.000700:  syscalls:sys_exit_fdatasync: 0x0
   100 1.000750:  syscalls:sys_enter_sendto: fd: 0x00000006, buff: 0x5, len: 0x0000003c, flags: 0x00000000
   100 1.000755:  syscalls:sys_exit_recvfrom: 0xfffffffffffffff5
   100 1.000760:  syscalls:sys_enter_epoll_wait: epfd: 0x00000004, events: 0x5, maxevents: 0x00000001
   200 1.000800:  syscalls:sys_enter_fdatasync: fd: 0x00000016
   200 1.001200:  syscalls:sys_exit_fdatasync: 0x0
   200 1.001250:  syscalls:sys_enter_sendto: fd: 0x00000006, buff: 0x5, len: 0x0000003c, flags: 0x00000000
   200 1.001300:  syscalls:sys_exit_recvfrom: 0x2a
   200 1.001400:  syscalls:sys_enter_sendto: fd: 0x00000006, buff: 0x5, len: 0x00000100, flags: 0x00000000
   200 1.001410:  syscalls:sys_exit_recvfrom: 0xfffffffffffffff5
   200 1.001420:  syscalls:sys_enter_epoll_wait: epfd: 0x00000004, events: 0x5, maxevents: 0x00000001
   300 1.002000:  syscalls:sys_enter_fdatasync: fd: 0x00000003
   300 1.002100:  syscalls:sys_exit_fdatasync: 0x0
   400 1.003000:  syscalls:sys_exit_recvfrom: 0x59
   400 1.003010:  syscalls:sys_enter_epoll_wait: epfd: 0x00000009, events: 0x5, maxevents: 0x00000001
   400 1.004000:  syscalls:sys_enter_sendto: fd: 0x00000006, buff: 0x5, len: 0x0000003c, flags: 0x00000000
   400 1.004010:  syscalls:sys_exit_recvfrom: 0xfffffffffffffff5
not a perf line
     0     0.000000: PERF_RECORD_LOST lost 7
"""


class Spans(unittest.TestCase):
    def setUp(self):
        self.s = pgtrace.summarize(TRACE.splitlines())

    def test_counts_requests_flushes_and_meetings(self):
        s = self.s
        self.assertEqual(s["requests"], 4)  # the read found waiting is a request of its own
        self.assertEqual(s["requests_with_flush"], 2)
        self.assertEqual(s["flushes"], 3)
        self.assertEqual(s["flushes_outside_requests"], 1)  # the WAL writer's
        self.assertEqual(s["met_a_flush"], 1)  # backend 200's write, read during 100's flush
        self.assertEqual(s["lost_events"], 7)

    def test_spans_in_microseconds(self):
        s = self.s
        self.assertEqual(s["served_us"]["max"], 1000.0)  # 400's, its lock wait included
        self.assertEqual(pgtrace.quantiles([100.0, 750.0, 950.0, 1000.0]), s["served_us"])
        self.assertEqual(s["served_flushed_us"]["max"], 950.0)  # 200's write: read 1.000300, answered 1.001250
        self.assertEqual(s["served_flushed_us"]["p50"], 750.0)  # 100's write
        self.assertEqual(s["flush_us"]["max"], 500.0)
        self.assertEqual(s["flush_us"]["p50"], 400.0)
        self.assertEqual(s["before_flush_us"]["max"], 500.0)  # 200 waited out 100's flush
        self.assertEqual(s["after_flush_us"]["max"], 50.0)
        self.assertEqual(s["served_met_us"]["max"], 950.0)
        self.assertEqual(s["served_alone_us"]["max"], 750.0)

    def test_a_failed_read_opens_nothing(self):
        s = pgtrace.summarize(TRACE.splitlines()[5:7])  # EAGAIN, then epoll_wait
        self.assertEqual(s["requests"], 0)
        self.assertIsNone(s["served_us"]["p99"])

    def test_the_wal_writer_s_flush_is_not_met(self):
        # Backend 500 reads a write while only the WAL writer (300) is flushing.
        lines = TRACE.splitlines()[14:16] + [
            "   500 1.002050:  syscalls:sys_exit_recvfrom: 0x59",
            "   500 1.002200:  syscalls:sys_enter_fdatasync: fd: 0x00000016",
            "   500 1.002400:  syscalls:sys_exit_fdatasync: 0x0",
            "   500 1.002450:  syscalls:sys_enter_sendto: fd: 0x00000006, buff: 0x5, len: 0x0000003c",
        ]
        s = pgtrace.summarize(lines)
        self.assertEqual((s["requests_with_flush"], s["met_a_flush"]), (1, 0))


class InsideTheDatabase(unittest.TestCase):
    def test_a_traced_round_gets_its_row_and_an_untraced_one_none(self):
        with tempfile.TemporaryDirectory() as root:
            for v in ["traced", "plain"]:
                run = os.path.join(root, v, "run-1")
                os.makedirs(run)
                with open(os.path.join(run, "summary.json"), "w") as f:
                    json.dump({"latency_ms": {"p99": 4.5}}, f)
            run = os.path.join(root, "traced", "run-1")
            with open(os.path.join(run, "pgtrace.json"), "w") as f:
                json.dump(pgtrace.summarize(TRACE.splitlines()), f)
            buckets = [("0.001", 0), ("0.002", 100), ("+Inf", 100)]
            with open(os.path.join(run, "metrics-api1.txt"), "w") as f:
                for le, n in buckets:
                    for m in ["crebito_http_request_duration_seconds", "crebito_store_duration_seconds"]:
                        f.write(f'{m}_bucket{{route="transacoes",le="{le}"}} {n}\n')
            lines = bench.inside_the_database(root, ["traced", "plain"], [1])
        rows = [x for x in lines if x.startswith("| traced") or x.startswith("| plain")]
        self.assertEqual(len(rows), 1, lines)
        cells = [c.strip() for c in rows[0].strip("|").split("|")]
        # variant, rounds, client, crebito (1.99 ms: 99 % of the way through 1-2 ms), store
        # wait, in PostgreSQL (every request), before the flush, flush p99 and p50, met %, met, alone
        self.assertEqual(
            cells, ["traced", "1", "4.50", "1.99", "1.99", "1000", "500", "500", "400", "50.0", "950", "750"]
        )
        self.assertEqual(bench.inside_the_database(root, ["plain"], [1]), [])


if __name__ == "__main__":
    unittest.main()
