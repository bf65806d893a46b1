"""The stress toolkit's reports (stress/report.py is the command line over this package).

Modules, one concern each:
  quantiles  the one percentile definition (nearest rank, as crebito-loader) and the one
             estimate from Prometheus histograms
  score      the contest's arithmetic (SLA, fines, payout) and the ledger audit rule
  summary    a run's summary (k6's or the fast loader's view), its text, repeated runs' medians
  charts     hand-drawn SVG: axes with readable ticks, line charts
  server     the server's side of a run (stress/sample.py's samples) as panels and peaks
  pages      the self-contained HTML pages
  faults     the fault suite: the client's log of every POST audited against the ledger
  bench      tables and plots for the bench scripts (saturation, hops, topology rows)
  k6         running k6 and reading its summary

Standard library only, so that the runner needs nothing but python3.
"""
