#!/usr/bin/env python3
"""The stress toolkit's reports, on the command line (the work is in stress/reporting/).

  report.py k6 --log F --cpu-out F -- k6 run …     run k6, its CPU seconds measured
  report.py summarize …                            a run's summary.json/.txt and report.html
  report.py check [--sla] SUMMARY                  exit 0 when the run passed
  report.py medians --out DIR SUMMARY…             medians over repeated runs
  report.py plot --out SVG SUMMARY…                p99 and throughput per SCALE step
  report.py profiles-plot --out SVG NAME=SAT.json…  p99 against SCALE, a line per profile
  report.py saturation --out DIR --best S SUMMARY… saturation.json and saturation.html
  report.py faults …                               one fault scenario's ledger audit
  report.py faults-table [--out F] SUMMARY…        the fault suite's table
  report.py hops …                                 bench/hops.sh's per-hop table
  report.py row …                                  one bench/topology.sh row
  report.py cost SUMMARY…                          CPU per request per service, a table
  report.py sitting DIR [VARIANT…]                 official rounds side by side, with each round's flush
  report.py knee --out DIR VARIANT…                 repeated saturations: each variant's median knee
  report.py check-page --check F --loader F --out F   the black-box check's page (stress/check.sh)
  report.py pgtrace --out F [SCRIPT]              PostgreSQL's side of each request (stress/pgtrace.sh)

Standard library only, so that the runner needs nothing but python3.
"""

import argparse
import sys

from reporting import bench, faults, k6, pages, pgtrace, summary


def parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    s.add_argument("--sampler", help="stress/sample.py's own cost (sampler.json)")
    s.add_argument("--load-start", help="epoch seconds when the load started")
    s.add_argument("--check", help="crebito-check's report on the run's history (check.json)")
    s.add_argument(
        "--check-blackbox",
        help="crebito-check's report on the same history without the ledger (the order inferred from the answers)",
    )
    s.add_argument("--crebito-bin", help="the server binary, when the caller chose it (CREBITO_BIN)")
    pl = sub.add_parser("plot")
    pl.add_argument("--out", required=True)
    pl.add_argument("--title", default="crebito saturation")
    pl.add_argument("summaries", nargs="+")
    pp = sub.add_parser("profiles-plot", help="p99 against SCALE, one line per profile")
    pp.add_argument("--out", required=True, help="the SVG to write")
    pp.add_argument("--title", default="p99 against SCALE")
    pp.add_argument("profiles", nargs="+", help="NAME=saturation.json")
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
    fa.add_argument(
        "--db-down", action="store_true", help="the database never came back: nothing could be read (every 200 lost)"
    )
    fa.add_argument(
        "--loss-expected",
        action="store_true",
        help="a run that measures a loss (the contest profile's power cut): reported, not failed",
    )
    fa.add_argument("--expected", default="", help="the faults that were scheduled")
    fa.add_argument("--restarts", default="")
    fa.add_argument("--thaw", help="pg-freeze: the thaw's wall-clock instant in ms, last word of the file (faults.sh)")
    fa.add_argument("--metrics", help="the instances' /metrics after the load (the group commit's queue)")
    ft = sub.add_parser("faults-table")
    ft.add_argument("--out")
    ft.add_argument("summaries", nargs="+")
    h = sub.add_parser("hops")
    for a in ["--scale", "--loader", "--access", "--pgss"]:
        h.add_argument(a, required=True)
    h.add_argument("--status", required=True, help="`stack status --json`, saved after the run")
    h.add_argument("--metrics", nargs="+", required=True)
    cp = sub.add_parser("check-page")
    cp.add_argument("--check", required=True, help="crebito-check's report (check.json)")
    cp.add_argument("--loader", required=True, help="the loader's summary")
    cp.add_argument("--out", required=True)
    co = sub.add_parser("cost")
    co.add_argument("summaries", nargs="+")
    si = sub.add_parser("sitting", help="official rounds side by side (bench/lib.sh official_rounds)")
    si.add_argument("dir")
    si.add_argument("variants", nargs="*")
    kn = sub.add_parser("knee", help="repeated saturations side by side (bench/knee.sh)")
    kn.add_argument("--out", required=True, help="bench/knee.sh's OUT: round-N/VARIANT/saturation.json")
    kn.add_argument("variants", nargs="+")
    pg = sub.add_parser("pgtrace", help="PostgreSQL's side of each request, from `perf script` text")
    pg.add_argument("--out", required=True, help="the summary to write (pgtrace.json)")
    pg.add_argument("script", nargs="?", default="-", help="`perf script -F tid,time,event,trace` text (- for stdin)")
    rw = sub.add_parser("row")
    for a in ["--loader", "--label", "--cpu", "--throttled"]:
        rw.add_argument(a, required=True)
    rw.add_argument("--lb-cpu", type=float, required=True, help="the balancer's CPU seconds over the run")
    return p


def main():
    a = parser().parse_args()
    if a.cmd_name == "k6":
        cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
        return k6.run(cmd, a.log, a.cpu_out)
    return {
        "summarize": summary.summarize,
        "plot": bench.plot,
        "profiles-plot": bench.profiles_plot,
        "check": summary.check,
        "medians": summary.medians,
        "saturation": bench.saturation,
        "faults": faults.faults,
        "faults-table": faults.faults_table,
        "hops": bench.hops,
        "row": bench.row,
        "cost": bench.cost,
        "sitting": bench.sitting,
        "knee": bench.knee,
        "check-page": check_page,
        "pgtrace": pgtrace.command,
    }[a.cmd_name](a)


def check_page(a):
    pages.write_check_page(summary.read_json(a.check), summary.read_json(a.loader), a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
