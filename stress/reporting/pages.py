"""The self-contained HTML pages: a run's report and a saturation's (inline SVG, no script
but k6's own dashboard, embedded by reference when k6 made one)."""

import html

from .charts import timeline_svg

STYLE = "body{font-family:sans-serif;max-width:900px;margin:2em auto}pre{background:#f6f6f6;padding:1em}"


def page(title, body):
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head>\n<body>{body}</body></html>\n"
    )


def write_run_page(s, text, path, panels=None, k6_report=None):
    """The run's report: the client's view (the fast loader's timeline, or k6's own
    dashboard embedded), the server's view (one panel per series of stress/sample.py, load
    phases marked) and the text summary."""
    client = timeline_svg(s.get("timeline") or [], f"SCALE {s['scale']:g}: p99 and load per second (client's view)")
    if k6_report:
        client = (
            f'<p>k6\'s own dashboard (<a href="{k6_report}">open it alone</a>):</p>'
            f'<iframe src="{k6_report}" style="width:100%;height:900px;border:1px solid #ccc"></iframe>'
        )
    server_html = (
        ("<h2>Server side, once a second</h2>" + "\n".join(f"<div>{p}</div>" for p in panels))
        if panels
        else "<p>(no server-side samples)</p>"
    )
    body = (
        f"<h1>crebito stress run, SCALE {s['scale']:g} ({'PASSED' if s['passed'] else 'FAILED'})</h1>\n"
        f"<h2>Client side</h2>\n{client}\n{server_html}\n<h2>Summary</h2>\n<pre>{html.escape(text)}</pre>"
    )
    with open(path, "w") as f:
        f.write(page(f"crebito stress SCALE {s['scale']:g}", body))


def write_saturation_page(path, best, plot_svg, step_sections):
    body = (
        f"<h1>crebito saturation: highest passing SCALE {best:g}</h1>{plot_svg}\n"
        "<p>Each step: a fresh stack, the official profile × SCALE; below, the server's side of each step, once a second.</p>\n"
        + "".join(step_sections)
    )
    with open(path, "w") as f:
        f.write(page("crebito saturation", body))


# The two kinds of finding (crebito_loader::check::ORDER, CONTRACT), as the page names them.
KINDS = {
    "no-serial-order": (
        "No serial order exists",
        "no order of the transactions consistent with real time explains these answers: a lost update, "
        "a stale or torn statement, a transaction applied twice, a refusal applied",
    ),
    "contract": (
        "An order exists, but an answer breaks the contract",
        "timestamps that go backwards in a statement, a debit to exactly -limite refused, another limite, "
        "a body that is not the contract's JSON",
    ),
}


def check_verdict(report):
    """The check's verdict in words: strictly serializable, NOT, or undecided (the search
    gave up: neither passed nor a violation). Reports older than the verdict field have only
    strict_serializable."""
    verdict = report.get("verdict") or ("yes" if report["strict_serializable"] else "no")
    if verdict == "yes":
        return "strictly serializable"
    if verdict == "undecided":
        steps = max((u["steps"] for u in report.get("undecided", [])), default=0)
        return f"undecided — gave up after {steps} steps"
    return "NOT strictly serializable"


def write_check_page(report, loader, path):
    """The black-box check's page (stress/check.sh): the verdict, what was sent, and each
    violation with the requests that show it, grouped by kind."""
    verdict = check_verdict(report)
    more = report["violations_total"] - len(report["violations"])
    body = (
        f"<h1>{html.escape(loader['target'])}: {html.escape(verdict)}</h1>\n"
        f"<p>{report['operations']} operations ({report['posts']} POSTs: {report['applied']} applied, "
        f"{report['not_applied']} not, {report['unknown']} unknown; {report['statements']} statements), "
        f"official profile × {loader['scale']:g} over {loader['load_seconds']:g} s, "
        f"checked in {report.get('seconds', 0):g} s from the answers alone (black-box: "
        f"each client's order inferred, no database read).</p>\n"
    )
    for kind, (title, means) in KINDS.items():
        found = [v for v in report["violations"] if v.get("kind", "no-serial-order") == kind]
        if not found:
            continue
        rows = "".join(
            f"<tr><td>{html.escape(str(v['client']))}</td><td>{html.escape(v['rule'])}</td>"
            f"<td>{html.escape(v['what'])}</td><td><ul>"
            + "".join(f"<li><code>{html.escape(r)}</code></li>" for r in v["requests"])
            + "</ul></td></tr>"
            for v in found
        )
        body += (
            f"<h2>{html.escape(title)}: {len(found)}</h2><p>{html.escape(means)}.</p>"
            "<table border=1 cellpadding=4><tr><th>client</th><th>rule</th><th>what</th><th>requests</th></tr>"
            + rows
            + "</table>"
        )
    if report["violations"]:
        body += f"<p>{report['violations_total']} violations in all" + (
            f"; … and {more} more (check.json).</p>" if more > 0 else ".</p>"
        )
    for u in report.get("undecided", []):
        body += (
            f"<p>Client {html.escape(str(u['client']))}: undecided — the search gave up after {u['steps']} steps; "
            "neither passed nor a violation.</p>"
        )
    if not report["violations"] and not report.get("undecided"):
        body += "<p>One serial order per client, consistent with real time, explains every answer.</p>"
    if report.get("rules"):
        body += (
            "<h2>Rules each client's order was checked against</h2><ul>"
            + "".join(f"<li>{html.escape(r)}</li>" for r in report["rules"])
            + "</ul>"
        )
    with open(path, "w") as f:
        f.write(page("crebito-check: " + loader["target"], body))
