"""Unit tests of stress/reporting: the arithmetic every report rests on."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "stress"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))

import flush  # noqa: E402  (bench/flush.py)
import stalls  # noqa: E402  (bench/stalls.py)
from reporting import bench, charts, faults, pages, quantiles, score, summary  # noqa: E402


class NearestRank(unittest.TestCase):
    def test_matches_the_loader(self):
        # stress/loader's own test: 1..100 ms gives p50 50, p99 99, max 100.
        xs = list(range(1, 101))
        self.assertEqual(quantiles.nearest_rank(xs, 0.5), 50)
        self.assertEqual(quantiles.nearest_rank(xs, 0.99), 99)
        self.assertEqual(quantiles.nearest_rank(xs, 1.0), 100)

    def test_is_always_an_observed_value(self):
        self.assertEqual(quantiles.nearest_rank([7.5], 0.99), 7.5)
        self.assertEqual(quantiles.nearest_rank([3, 1, 2], 0.5), 2)
        self.assertEqual(quantiles.nearest_rank([1, 2, 3, 4], 0.99), 4)
        self.assertIsNone(quantiles.nearest_rank([], 0.5))


class HistogramQuantile(unittest.TestCase):
    def test_interpolates_inside_the_bucket(self):
        # 100 requests: 50 under 1 ms, 50 between 1 and 2 ms.
        b = {0.001: 50, 0.002: 100, float("inf"): 100}
        self.assertAlmostEqual(quantiles.histogram_quantile(b, 0.5), 0.001)
        self.assertAlmostEqual(quantiles.histogram_quantile(b, 0.99), 0.00198)

    def test_rank_in_inf_gives_the_highest_finite_bound(self):
        b = {0.001: 10, 0.01: 50, float("inf"): 100}
        self.assertEqual(quantiles.histogram_quantile(b, 0.99), 0.01)

    def test_difference_of_two_readings(self):
        prev = {"0.001": 10, "+Inf": 10}
        cur = {"0.001": 30, "+Inf": 40}
        d = quantiles.bucket_difference(prev, cur)
        self.assertEqual(d, {0.001: 20, float("inf"): 30})
        self.assertIsNone(quantiles.histogram_quantile(quantiles.bucket_difference(cur, cur), 0.99))


class Score(unittest.TestCase):
    def test_sla_fine_counts_only_below_98_percent(self):
        self.assertEqual(score.fines(99.0, 0), (0.0, 0.0))
        self.assertEqual(score.fines(97.0, 0), (1000.0, 0.0))
        self.assertAlmostEqual(score.fines(97.5, 2)[1], 1606.02)

    def test_payout_never_negative(self):
        self.assertEqual(score.payout(100.0, 0), 100000)
        self.assertAlmostEqual(score.payout(96.0, 1), 100000 - 2000 - 803.01)
        self.assertEqual(score.payout(0.0, 0), 2000.0)
        self.assertEqual(score.payout(0.0, 10), 0.0)

    def test_sla_pct(self):
        self.assertEqual(score.sla_pct(98, 100), 98.0)
        self.assertEqual(score.sla_pct(0, 0), 0.0)

    def test_audit_rule(self):
        ok = {"id": 1, "saldo": -100, "soma": -100, "limite": 100, "linhas": 2}
        self.assertTrue(score.audit([ok], 2)["ok"])
        self.assertFalse(score.audit([ok], 3)["ok"], "a 200 not stored")
        below = dict(ok, saldo=-101, soma=-101)
        self.assertIn("below -limite", score.audit([below], 2)["problems"][0])
        drift = dict(ok, soma=-50)
        self.assertIn("!= sum", score.balance_violations([drift])[0])


class FaultsAudit(unittest.TestCase):
    def test_recovery_after_a_thaw_is_the_first_window_of_normal_answers(self):
        # One POST every 50 ms from 0 to 20 s; the thaw at 10 s. Until 11.5 s the POSTs sent
        # wait behind the backlog (600 ms, or 504 at the deadline); from 11.5 s they are served
        # in 5 ms.
        def post(i):
            at = i * 50.0
            slow = 10_000 <= at < 11_500
            status = 504 if slow and i % 2 else 200
            return {"at_ms": str(at), "first_status": str(status), "first_ms": "600.0" if slow else "5.0"}

        posts = [post(i) for i in range(400)]
        r = faults.recovery(posts, 10.0)
        self.assertEqual(r["recovered_s"], 1.5)
        self.assertEqual(r["window"], {"posts": 20, "served_normally": 20})
        self.assertEqual(r["first_2s"], {"posts": 40, "served_normally": 10})
        # One slow answer in a window of 20 is over the 1 %: the window after it decides.
        posts[235] = dict(posts[235], first_ms="300.0")  # sent at 11.75 s
        self.assertEqual(faults.recovery(posts, 10.0)["recovered_s"], 1.8)
        # Never normal again within the horizon: None.
        self.assertIsNone(faults.recovery([post(i) | {"first_status": "503"} for i in range(400)], 10.0)["recovered_s"])

    def test_the_queue_from_the_instances_metrics(self):
        text = (
            'crebito_pg_batch_waiting_max{node="owner"} 180\n'
            'crebito_pg_batch_queue_full_total{node="owner"} 7\n'
            'crebito_pg_batch_waiting_max{node="owner"} 512\n'
            'crebito_pg_batch_queue_full_total{node="owner"} 40\n'
        )
        self.assertEqual(faults.queue_metrics(text), {"waiting_max": 512.0, "queue_full": 47.0})
        self.assertEqual(faults.queue_metrics(""), {"waiting_max": None, "queue_full": None})

    def post(self, d, status, first=None, **kw):
        return {
            "descricao": d,
            "status": str(status),
            "first_status": str(first if first is not None else status),
            "attempts": "1" if first is None else "2",
            "replayed": "false",
            **kw,
        }

    def test_the_ledger_rules(self):
        posts = [
            self.post("a", 200),
            self.post("b", 200),
            self.post("c", 422),
            self.post("d", 503),
            self.post("e", 200, first=504),
            self.post("f", 0),
        ]
        stored = {"a": 1, "c": 1, "e": 2, "z": 1}
        r = faults.audit_posts(posts, stored)
        self.assertEqual(r["lost"], 1)  # b: 200, not stored
        self.assertEqual(r["dup"], 1)  # e: twice
        self.assertEqual(r["refused_stored"], 1)  # c: 422, stored
        self.assertEqual(r["unexplained_stored"], 1)  # z: nobody sent it
        self.assertEqual(r["ambiguous_first_attempt"], 2)
        self.assertEqual(r["ambiguous_first_attempt_by_status"], {"no answer": 1, "504": 1})
        self.assertEqual(r["ambiguous"], 1)  # f: still unknown

    def test_503_is_not_applied_not_ambiguous(self):
        r = faults.audit_posts([self.post("d", 503)], {})
        self.assertEqual((r["ambiguous"], r["ambiguous_first_attempt"], r["refused_503_first_attempt"]), (0, 0, 1))
        r = faults.audit_posts([self.post("d", 503)], {"d": 1})
        self.assertEqual(r["refused_stored"], 1)

    def test_503_after_an_ambiguous_attempt_is_still_ambiguous(self):
        # 504 first (applied, as it turned out), then 503s until the retries ran out.
        post = self.post("d", 503, first=504, unknown="true")
        r = faults.audit_posts([post], {"d": 1})
        self.assertEqual((r["refused_stored"], r["ambiguous"], r["ambiguous_first_attempt_applied"]), (0, 1, 1))
        # Reported, not failed: what the keyed retries are for.
        self.assertTrue(faults.scenario_passed(self.passing() | {k: r[k] for k in faults.RULES if k in r}))
        r = faults.audit_posts([dict(post, unknown="false")], {"d": 1})
        self.assertEqual(r["refused_stored"], 1)

    def test_a_replay_is_judged_by_the_attempt_that_stored_it(self):
        # First 503 (not applied), then a 504 (stored, as it turned out), then the replay:
        # the 504 explains it. Counted for the record, not failed.
        explained = self.post(
            "d", 200, first=503, replayed="true", answers="503@10.0+1.2 504@210.0+3000.1 200r@3610.5+2.0"
        )
        r = faults.audit_posts([explained], {"d": 1})
        self.assertEqual((r["first_503_replayed"], r["replayed_after_refusals"]), (1, 0))
        self.assertTrue(faults.scenario_passed(self.passing() | {k: r[k] for k in faults.RULES if k in r}))
        # 503, 503, replay: a "not applied" answer was false.
        lied = dict(explained, answers="503@10.0+1.2 503@210.0+0.9 200r@610.5+2.0")
        r = faults.audit_posts([lied], {"d": 1})
        self.assertEqual(r["replayed_after_refusals"], 1)
        self.assertFalse(faults.scenario_passed(self.passing() | {k: r[k] for k in faults.RULES if k in r}))
        # A replay of a refused debit (422) after a lost connection is explained too.
        r = faults.audit_posts(
            [self.post("e", 422, first=0, replayed="true", answers="0@1.0+60000.0 422r@60201.0+1.0")], {}
        )
        self.assertEqual(r["replayed_after_refusals"], 0)
        # A log without `answers` falls back to the first and last answers.
        old = self.post("d", 200, first=503, replayed="true")
        self.assertEqual(faults.audit_posts([old], {"d": 1})["replayed_after_refusals"], 1)
        with self.assertRaises(ValueError):
            faults.attempts(dict(old, answers="503@x"))

    def passing(self, **overrides):
        r = {k: 0 for k in faults.RULES} | {
            "strict_serializable": True,
            "database_recovered": True,
            "faults_fired": ["pg-freeze"],
            "faults_expected": ["pg-freeze"],
        }
        return r | overrides

    def test_absent_is_not_passed(self):
        self.assertTrue(faults.scenario_passed(self.passing()))
        for missing in ("strict_serializable", "database_recovered", "faults_fired", "faults_expected", *faults.RULES):
            r = self.passing()
            del r[missing]
            self.assertFalse(faults.scenario_passed(r), f"passed without {missing}")
        self.assertFalse(faults.scenario_passed(self.passing(database_recovered=False)), "the database never came back")
        self.assertFalse(faults.scenario_passed(self.passing(strict_serializable=None)), "no verdict")
        self.assertFalse(faults.scenario_passed(self.passing(faults_fired=[])), "the fault never fired")
        self.assertFalse(faults.scenario_passed(self.passing(faults_fired=[], faults_expected=[])), "nothing scheduled")

    def test_failed_first_attempt_times_are_nearest_rank(self):
        posts = [self.post(str(i), 200, first=504, first_ms=str(i), at_ms=str(i * 10)) for i in range(1, 101)]
        posts.append(self.post("late", 200, first_ms="1", at_ms="5000"))
        r = faults.audit_posts(posts, {p["descricao"]: 1 for p in posts})
        self.assertEqual(r["first_attempt_failed_ms"], {"max": 100.0, "p99": 99.0})
        self.assertEqual((r["last_failed_first_attempt_s"], r["first_attempt_200_after_it"]), (1.0, 1))


class GroupCommitPanel(unittest.TestCase):
    def test_writes_per_transaction_per_interval(self):
        from reporting import server

        def sample(t, writes, tx):
            return {"t": t, "crebito": {"api1": {"writes": writes, "transactions": tx}}}

        samples = [sample(0, 0, 0), sample(1, 10, 10), sample(2, 40, 20), sample(3, 40, 20)]
        pairs = list(zip(samples, samples[1:], strict=False))
        self.assertEqual(
            server.writes_per_transaction(pairs, lambda s: s["t"], "api1"),
            [(1, 1.0), (2, 3.0), (3, None)],  # alone, then batches of 3, then nothing sent
        )


class Ticks(unittest.TestCase):
    def test_nice_steps(self):
        self.assertEqual(charts.nice_step(0.716), 0.2)
        self.assertEqual(charts.nice_step(5923), 2000)
        self.assertEqual(charts.nice_step(10), 2.5)
        self.assertEqual(charts.nice_step(4), 1)

    def test_ticks_cover_the_maximum_and_read_well(self):
        for v in (0.716, 1, 3.7, 59, 5923, 123456):
            ticks = charts.nice_ticks(v)
            self.assertEqual(ticks[0], 0)
            self.assertGreaterEqual(ticks[-1], v)
            self.assertLessEqual(len(ticks), 6)
            for t in ticks:  # at most two significant digits: 0.2, 2.5, 2000
                self.assertLessEqual(len(f"{t:g}".replace(".", "").strip("0")), 2, ticks)

    def test_chart_labels_are_the_ticks(self):
        svg = charts.chart("t", {"a": [(0, 0.1), (1, 0.716)]}, "cores", [], 1)
        self.assertIn(">0.8<", svg)
        self.assertNotIn("0.179", svg)


class Summary(unittest.TestCase):
    def client(self, **kw):
        lat = {q: 1.0 for q in ("p50", "p75", "p95", "p99", "max", "avg")}
        return {
            "loader": "crebito-loader",
            "requests": 1000,
            "ko": 0,
            "ok_under_250ms": 990,
            "inconsistencies": 0,
            "posts_ok": 2,
            "latency_ms": lat,
            "per_scenario": {},
            "loader_cpu_seconds": 1.5,
        } | kw

    def rendered(self):
        """What render_text needs beyond build()."""
        return {"commit": "c", "date": "d", "machine": {"cpu": "x", "cores": 2, "kernel": "k"}, "passed": False}

    def test_score_and_audit_in_the_summary(self):
        rows = [{"id": 1, "saldo": 5, "soma": 5, "limite": 100, "linhas": 2}]
        s = summary.build(self.client(), rows, {"db": 1.0}, 1.0, 0.1, 10.0)
        self.assertEqual((s["sla_pct"], s["payout_usd"], s["throughput_rps"]), (99.0, 100000.0, 100.0))
        self.assertTrue(s["audit"]["ok"])
        self.assertTrue(summary.passed(s))
        s = summary.build(self.client(ko=3, ok_under_250ms=960, inconsistencies=1), rows, {}, 1.0, 0.1, 10.0)
        self.assertEqual(s["fines_usd"], {"sla": 2000.0, "inconsistencies": 803.01})
        self.assertFalse(summary.passed(s))

    def test_no_audit_fails_the_run(self):
        s = summary.build(self.client(), None, {}, 1.0, 0.1, 10.0)
        self.assertFalse(s["audit"]["ok"])
        self.assertFalse(summary.passed(s))

    def test_a_history_that_is_not_serializable_fails_the_run(self):
        rows = [{"id": 1, "saldo": 5, "soma": 5, "limite": 100, "linhas": 2}]
        s = summary.build(self.client(), rows, {}, 1.0, 0.1, 10.0) | {"history": {"strict_serializable": False}}
        self.assertFalse(summary.passed(s))

    def test_a_history_without_a_verdict_fails_the_run_and_none_recorded_does_not(self):
        rows = [{"id": 1, "saldo": 5, "soma": 5, "limite": 100, "linhas": 2}]
        s = summary.build(self.client(), rows, {}, 1.0, 0.1, 10.0)
        self.assertTrue(summary.passed(s), "k6 records no history: nothing to check")
        missing = s | {
            "history": {"operations": 0, "strict_serializable": None, "violations_total": None, "seconds": None}
        }
        self.assertFalse(summary.passed(missing), "recorded, never checked")
        self.assertIn(
            "strict serializable: no verdict (the checker wrote no check.json)",
            summary.render_text(missing | self.rendered()),
        )

    def test_medians_and_ratios_over_runs(self):
        def run(p99, floor):
            lat = {q: p99 for q in ("p50", "p75", "p95", "p99", "max")}
            return {
                "commit": "c",
                "machine": {},
                "loader": "k6",
                "scale": 1,
                "duration_scale": 1,
                "passed": True,
                "ko": 0,
                "sla_pct": 100,
                "latency_ms": lat,
                "floor": {"latency_ms": {q: floor for q in lat}},
                "cpu_seconds": {"db": 1.0, "lb": 1.0, "loader": 9.0},
                "requests": 1000,
            }

        m = summary.medians_of([run(3.0, 1.0), run(2.0, 1.0), run(9.0, 3.0)])
        self.assertEqual((m["stack_p99_ms"], m["floor_p99_ms"], m["ratio_p99"]), (3.0, 1.0, 3.0))
        self.assertEqual(m["stack_cpu_us_per_request"], 2000.0)  # the loader left out
        self.assertIn("stack/floor", summary.medians_text(m))


class CheckPage(unittest.TestCase):
    """check.html: the three verdicts, and the two kinds of finding named apart."""

    LOADER = {"target": "127.0.0.1:9999", "scale": 1.0, "load_seconds": 10.0}

    def report(self, verdict, violations=(), undecided=()):
        return {
            "verdict": verdict,
            "strict_serializable": verdict == "yes",
            "operations": 10,
            "posts": 8,
            "applied": 6,
            "not_applied": 1,
            "unknown": 1,
            "statements": 2,
            "violations_total": len(violations),
            "violations": list(violations),
            "undecided": list(undecided),
            "rules": ["a: every 200 POST applied exactly once"],
        }

    def render(self, report):
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "check.html")
            pages.write_check_page(report, self.LOADER, path)
            with open(path) as f:
                return f.read()

    def test_the_three_verdicts(self):
        self.assertIn(": strictly serializable</h1>", self.render(self.report("yes")))
        undecided = self.render(self.report("undecided", undecided=[{"client": 3, "steps": 20000001}]))
        self.assertIn("undecided — gave up after 20000001 steps</h1>", undecided)
        self.assertNotIn("NOT strictly serializable", undecided)
        self.assertIn("Client 3: undecided", undecided)
        v = {"client": 1, "rule": "d", "kind": "no-serial-order", "what": "a stale statement", "requests": ["GET"]}
        self.assertIn("NOT strictly serializable", self.render(self.report("no", [v])))

    def test_the_two_kinds_are_named_apart(self):
        stale = {"client": 1, "rule": "d", "kind": "no-serial-order", "what": "a stale statement", "requests": []}
        times = {"client": 2, "rule": "d", "kind": "contract", "what": "realizada_em increases", "requests": []}
        page = self.render(self.report("no", [stale, times]))
        self.assertIn("No serial order exists: 1</h2>", page)
        self.assertIn("An order exists, but an answer breaks the contract: 1</h2>", page)
        self.assertLess(page.index("a stale statement"), page.index("An order exists"))
        self.assertGreater(page.index("realizada_em increases"), page.index("An order exists"))
        only_contract = self.render(self.report("no", [times]))
        self.assertNotIn("No serial order exists", only_contract)
        # Reports older than the kinds: every finding is of the first.
        old = dict(stale)
        del old["kind"]
        self.assertIn("No serial order exists: 1</h2>", self.render(self.report("no", [old])))


class Cost(unittest.TestCase):
    def test_cpu_per_request_by_tier(self):
        import argparse
        import contextlib
        import io
        import json
        import tempfile

        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(
                {
                    "scale": 6,
                    "requests": 1000,
                    "cpu_seconds": {"db": 0.2, "w1": 0.3, "w2": 0.1, "api1": 0.05, "lb": 0.1, "loader": 5.0},
                },
                f,
            )
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            bench.cost(argparse.Namespace(summaries=[f.name]))
        os.unlink(f.name)
        row = out.getvalue().splitlines()[-1].split(" | ")
        self.assertEqual(row[4:7], ["200", "400", "150"])  # db, the workers, instances + lb
        self.assertEqual(row[7], "**750** |")  # the loader left out


class TopologyRow(unittest.TestCase):
    def test_the_balancers_cpu_per_request(self):
        import argparse
        import contextlib
        import io
        import json
        import tempfile

        loader = {
            "ko": 0,
            "sla_pct": 100.0,
            "latency_ms": {"p50": 1.0, "p99": 2.0, "max": 3.0},
            "throughput_rps": 4000.0,
            "requests": 200000,
        }
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(loader, f)
        out = io.StringIO()
        args = argparse.Namespace(loader=f.name, label="-", cpu="48.0", throttled="1 / 0 / 0 / 9", lb_cpu=17.0)
        with contextlib.redirect_stdout(out):
            bench.row(args)
        os.unlink(f.name)
        cells = out.getvalue().strip().split(" | ")
        self.assertEqual(cells[7:9], ["48.0", "85"])  # 17 s over 200 000 requests: 85 µs each


class RenderText(unittest.TestCase):
    def test_the_sampler_cost_is_shown(self):
        s = Summary.client(Summary(), posts_ok=0)
        s = summary.build(s, [], {"db": 1.0}, 1.0, 0.25, 60.0)
        s |= {"commit": "c", "date": "d", "machine": {"cpu": "x", "cores": 2, "kernel": "k"}, "passed": True}
        self.assertNotIn("sampler", summary.render_text(s))
        s["sampler"] = {"cpu_s": 0.6, "seconds": 60.0, "cores": 0.01}
        self.assertIn("the sampler itself: 0.6 CPU-s over 60.0 s (1.0 % of a core)", summary.render_text(s))

    def test_a_given_server_binary_is_named_by_version_and_digest(self):
        import hashlib
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "crebito")
            with open(path, "w") as f:
                f.write("#!/bin/sh\necho crebito 0.1.9\n")
            os.chmod(path, 0o755)
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()[:16]
            b = summary.binary(path)
        self.assertEqual(b, {"version": "crebito 0.1.9", "sha256": digest})
        self.assertNotIn(d, str(b))  # never this machine's path
        s = Summary.client(Summary(), posts_ok=0)
        s = summary.build(s, [], {"db": 1.0}, 1.0, 0.25, 60.0)
        s |= {"commit": "c", "date": "d", "machine": {"cpu": "x", "cores": 2, "kernel": "k"}, "passed": True}
        self.assertNotIn("given binary", summary.render_text(s))
        s["server_binary"] = b
        self.assertIn(f"(server: a given binary, crebito 0.1.9, sha256 {digest})", summary.render_text(s))


if __name__ == "__main__":
    unittest.main()


class DiskFlush(unittest.TestCase):
    """bench/flush.py: one 8 kB write + fdatasync per operation, paced or back to back."""

    def run_flush(self, *args):
        import json
        import subprocess
        import tempfile

        script = os.path.join(os.path.dirname(__file__), "..", "..", "bench", "flush.py")
        with tempfile.TemporaryDirectory() as d:
            out = subprocess.run(
                [sys.executable, script, d, "--json", *args], capture_output=True, text=True, check=True
            ).stdout
            self.assertEqual(os.listdir(d), [], "the segment is removed")
        return json.loads(out)

    def test_the_distribution_is_ordered_and_observed(self):
        r = self.run_flush("--seconds", "0.3")
        self.assertEqual(r["mode"], "back-to-back")
        self.assertGreater(r["n"], 0)
        keys = ["p50_us", "p90_us", "p99_us", "p999_us", "max_us"]
        values = [r[k] for k in keys]
        self.assertEqual(values, sorted(values))
        self.assertGreater(r["p50_us"], 0)

    def test_paced_never_runs_ahead_of_its_rate(self):
        # 50/s for 0.5 s: operations are due at 0, 20, …, 500 ms, so at most 26 happen, however
        # fast the disk; a back-to-back loop on any disk does far more in the same time.
        r = self.run_flush("--rate", "50", "--seconds", "0.5")
        self.assertEqual(r["mode"], "paced")
        self.assertGreaterEqual(r["n"], 1)
        self.assertLessEqual(r["n"], 26)
        # Paced, no write is due past the window: at most one per due instant.
        self.assertLessEqual(r["commits"], 26)

    def test_writes_due_during_a_stalled_flush_wait_for_it_then_share_the_next(self):

        # 100 writes a second, due at 0, 10, 20 … ms. The flush for the write due at 10 ms
        # stalls for 50 ms; the writes due at 20 … 60 ms wait for it, then one flush makes
        # them all durable (PostgreSQL's next WAL flush covers every commit inserted before it).
        flushes = [(0.0, 0.001), (0.010, 0.0605), (0.0605, 0.0615), (0.070, 0.071)]
        waits = [round(w / 1000, 3) for w in flush.commits_met(flushes, 0.0, 100)]
        self.assertEqual(waits, [1.0, 50.5, 41.5, 31.5, 21.5, 11.5, 1.5, 1.0])
        # Per flush, the stall is one sample of four; as the commits meet it, five writes of
        # eight waited more than ten milliseconds.
        self.assertEqual(sum(w > 10 for w in waits), 5)

    def test_writes_due_while_the_disk_was_idle_are_timed_from_their_flush(self):

        # 1 000 writes a second. The first flush ends at 0.5 ms; the loop then wakes late, at
        # 3.5 ms, with the writes due at 1, 2 and 3 ms waiting: the disk was idle, so each is
        # timed from that flush's start (the loop's lateness is not the disk's).
        flushes = [(0.0, 0.0005), (0.0035, 0.0045)]
        waits = [round(w, 1) for w in flush.commits_met(flushes, 0.0, 1000)]
        self.assertEqual(waits, [500.0, 1000.0, 1000.0, 1000.0])

    def test_a_stall_past_a_second_reads_back_as_itself(self):
        import tempfile

        r = {"mode": "paced", "rate": 250, "seconds": 30, "n": 10, "fs": "ext4", "commits": 12}
        r |= {k: 500.0 for k in ("p50_us", "p90_us", "p99_us", "p999_us", "max_us", "mean_us")}
        r |= {"commit_p50_us": 600.0, "commit_p99_us": 1234567.8, "commit_p999_us": 2e6, "commit_max_us": 2e6}
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "flush-1.txt")
            with open(path, "w") as f:
                f.write(f"disk flush distribution: {flush.line(r)}\n")
            self.assertEqual(bench.flush_of(path)["commits"], (600.0, 1234567.8))


class ProfilesPlot(unittest.TestCase):
    def test_a_line_per_profile_and_a_dot_per_step_filled_when_passed(self):
        svg = charts.scale_svg(
            "p99",
            {
                "durable": [(8, 3.1, True), (16, 300.0, False)],
                "contest": [(8, 1.4, True), (12, 2.7, True), (16, 44.7, True)],
            },
        )
        self.assertEqual(svg.count("<polyline"), 2)
        self.assertEqual(svg.count("<circle"), 5)
        self.assertEqual(svg.count('fill="white" stroke='), 1, "one failed step, hollow")
        self.assertIn("durable 16×: p99 300 ms, failed", svg)
        self.assertIn(">contest</text>", svg)
        # The axis reaches the decade above the worst p99.
        self.assertIn(">1 000</text>", svg)


class Sitting(unittest.TestCase):
    """report.py sitting: official rounds side by side, medians over the rounds a variant ran,
    each round's flush read back from bench/lib.sh's flush-N.txt."""

    def test_medians_per_variant_and_the_flush_per_round(self):
        import argparse
        import contextlib
        import io
        import json
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            official = os.path.join(d, "official")
            for name, p99s in {"durable": [3.0, 2.0, 5.0], "contest": [1.5, 1.0]}.items():
                for r, p99 in enumerate(p99s, 1):
                    os.makedirs(os.path.join(official, name, f"run-{r}"))
                    with open(os.path.join(official, name, f"run-{r}", "summary.json"), "w") as f:
                        json.dump(
                            {
                                "latency_ms": {"p50": p99 / 4, "p99": p99, "max": 10 * p99},
                                "floor": {"latency_ms": {"p99": 1.0}},
                                "requests": 1000,
                                "ko": 0,
                                "cpu_seconds": {"db": 0.3, "api1": 0.1, "lb": 0.1, "loader": 9.0},
                            },
                            f,
                        )
            for r in (1, 2, 3):
                with open(os.path.join(official, f"flush-{r}.txt"), "w") as f:
                    f.write(
                        f"disk flush (pg_test_fsync, one 8 kB write + fdatasync, on x): {100 * r} µs\n"
                        "disk flush distribution: one 8 kB write + fdatasync, paced at 250/s for 10 s (2501 on ext4): "
                        f"p50 {200 * r}, p90 1, p99 {900 * r}, p99.9 1, max 1, mean 1 µs"
                        # Round 1 from before the commits' view was reported: shown "–", left out
                        # of the median.
                        + (
                            f"; as the commits meet it (2600 writes): p50 {250 * r}, p99 {5000 * r}, p99.9 1, max 1 µs"
                            if r > 1
                            else ""
                        )
                        + "\n"
                        "disk flush distribution: one 8 kB write + fdatasync, back to back for 10 s (9 on ext4): "
                        "p50 150, p90 1, p99 450.5, p99.9 1, max 1, mean 1 µs\n"
                    )
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                bench.sitting(argparse.Namespace(dir=d, variants=["durable", "contest"]))
        rows = [line.split(" | ") for line in out.getvalue().splitlines() if line.startswith("| ")]
        durable = next(r for r in rows if r[0] == "| durable")
        self.assertEqual(durable[1:5], ["3.00 · 2.00 · 5.00", "0.75", "**3.00**", "30.00"])
        self.assertEqual(durable[6:8], ["300", "500"])  # PostgreSQL, the stack without the loader
        contest = next(r for r in rows if r[0] == "| contest")
        self.assertEqual(contest[1:3], ["1.50 · 1.00 · –", "0.31"])  # round 3 missing; median of two
        self.assertIn("| 1 | 100 µs | 200.0 / 900.0 µs | – | 150.0 / 450.5 µs |", out.getvalue())
        self.assertIn("| 2 | 200 µs | 400.0 / 1800.0 µs | 500.0 / 10000.0 µs | 150.0 / 450.5 µs |", out.getvalue())
        self.assertIn("| median | 200 µs | 400.0 / 1800.0 µs | 625.0 / 12500.0 µs | 150.0 / 450.5 µs |", out.getvalue())


class Knee(unittest.TestCase):
    """report.py knee: repeated saturations side by side (bench/knee.sh), the median over the
    rounds a variant ran, a round whose first step failed counted as below it."""

    def test_median_knee_per_variant_and_where_each_round_failed(self):
        import argparse
        import contextlib
        import io
        import json
        import tempfile

        def step(scale, passed, ko=0, sla=100.0):
            return {"scale": scale, "passed": passed, "sla_pct": sla, "ko": ko}

        rounds = {
            "durable": [
                [step(12, True), step(14, True), step(16, False, 551, 97.1)],
                [step(12, True), step(14, False, 20, 98.5)],  # 20 KO: failed
                [step(12, True), step(14, True), step(16, True), step(18, False, 9000, 80.0)],
            ],
            "contest": [
                [step(12, False, 3, 99.0)],
                [step(12, True), step(14, True), step(16, True), step(18, True), step(20, True), step(24, True)],
            ],
        }
        with tempfile.TemporaryDirectory() as d:
            for name, runs in rounds.items():
                for r, steps in enumerate(runs, 1):
                    best = max([s["scale"] for s in steps if s["passed"]], default=0)
                    os.makedirs(os.path.join(d, f"round-{r}", name))
                    with open(os.path.join(d, f"round-{r}", name, "saturation.json"), "w") as f:
                        json.dump({"highest_passing_scale": best, "steps": steps}, f)
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                bench.knee(argparse.Namespace(out=d, variants=["durable", "contest"]))
            with open(os.path.join(d, "knee.json")) as f:
                written = json.load(f)
        rows = {
            line.split(" | ")[0]: line.split(" | ") for line in out.getvalue().splitlines() if line.startswith("| ")
        }
        self.assertEqual(rows["| durable"][1:3], ["14 · 12 · 16", "**14**"])
        self.assertEqual(rows["| durable"][3], "16 (551, 97.1) · 14 (20, 98.5) · 18 (9000, 80.0) |")
        # Round 1's first step failed: "< 12", counted as 0; round 3 not run.
        self.assertEqual(rows["| contest"][1:3], ["< 12 · 24 · –", "**12**"])
        self.assertEqual(rows["| contest"][3], "12 (3, 99.0) · none · – |")
        self.assertEqual(written["rounds"], [1, 2, 3])
        self.assertEqual(written["variants"]["durable"]["median"], 14)
        self.assertEqual(written["variants"]["contest"]["first_failing"], [12, None, None])

    def test_a_median_below_the_first_step_reads_as_below_it(self):
        import argparse
        import contextlib
        import io
        import json
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            for r in (1, 2):
                os.makedirs(os.path.join(d, f"round-{r}", "durable"))
                with open(os.path.join(d, f"round-{r}", "durable", "saturation.json"), "w") as f:
                    steps = [{"scale": 12, "passed": False, "sla_pct": 75.2, "ko": 9}]
                    json.dump({"highest_passing_scale": 0, "steps": steps}, f)
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                bench.knee(argparse.Namespace(out=d, variants=["durable"]))
        self.assertIn("| durable | < 12 · < 12 | **< 12** |", out.getvalue())


class Stalls(unittest.TestCase):
    """bench/stalls.py place: the slowest requests against the disk's stalls in the same run."""

    def test_slow_requests_held_by_one_stalled_flush_form_one_cluster_inside_the_stall(self):
        import csv
        import tempfile

        # 1 000 requests of 1 ms, one every 10 ms from t = 0; the disk holds one flush from
        # 5 000 to 5 100 ms and the 10 writes that arrive meanwhile end with it.
        requests = []
        for i in range(1000):
            s = i * 10.0
            e = 5100.0 + 1 if 5000 <= s < 5100 else s + 1
            requests.append((s, e, "POST"))
        requests.append((9000.0, 9060.0, "GET"))  # slow on its own, the disk idle
        samples = []
        writes = flushes = 0
        for t in range(0, 10_010, 10):
            held = 5000 < t < 5100
            if not held:
                writes, flushes = writes + 1, flushes + 1
            samples.append((float(t), writes, flushes, 0, 1 if held or t == 5000 else 0))
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "k6.csv")
            with open(path, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["metric_name", "timestamp", "metric_value", "check", "method"])
                for s, e, m in requests:
                    w.writerow(["http_reqs", int(e), 1, "", m])
                    w.writerow(["http_req_duration", int(e), e - s, "", m])
            r = stalls.place(stalls.requests_of(path), samples)
        self.assertEqual(r["requests"], 1001)
        self.assertEqual(r["slow"], 11)  # p99 of 1 001 is the 991st: the held ones and the GET
        self.assertEqual(r["slow_by_method"], {"POST": 10, "GET": 1})
        self.assertEqual(r["largest_clusters"], [10, 1])
        self.assertEqual(r["slow_in_clusters_of_5_or_more"], 10)
        self.assertEqual(r["stall_ms"], [90])
        self.assertEqual((r["stalled_ms"], r["watched_ms"]), (90, 10_000))
        self.assertEqual(r["slow_overlapping_a_stall"], 10)

    def test_one_io_seen_in_flight_once_after_an_idle_spell_is_no_stall(self):

        # Idle from 0 to 100 ms (nothing in flight, nothing completing), then one sample with
        # an I/O in flight, then it completes.
        samples = [(float(t), 5, 5, 0, 0) for t in range(0, 110, 10)]
        samples += [(110.0, 5, 5, 0, 1), (120.0, 6, 6, 0, 0)]
        self.assertEqual(stalls.stalls(samples, 10), [])
        # In flight over two samples with nothing completing: a 10 ms stall.
        samples[-1] = (120.0, 5, 5, 0, 1)
        samples.append((130.0, 6, 6, 0, 0))
        self.assertEqual(stalls.stalls(samples, 10), [(110.0, 120.0)])
