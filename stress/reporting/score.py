"""The contest's arithmetic and the ledger audit rule, each written once.

Payout (../shared/spec, the official rules): USD 100 000, minus USD 1 000 per percentage
point of requests not answered OK within 250 ms beyond 2 % (an SLA of 98 %), minus
USD 803.01 per balance inconsistency the client saw.
"""

INCONSISTENCY_FINE = 803.01
SLA_TARGET_PCT = 98


def sla_pct(ok_under_250ms, requests):
    return round(ok_under_250ms / requests * 100, 2) if requests else 0.0


def fines(sla, inconsistencies):
    """(SLA fine, inconsistency fine) in USD."""
    return max(0.0, (SLA_TARGET_PCT - sla) * 1000), INCONSISTENCY_FINE * inconsistencies


def payout(sla, inconsistencies):
    sla_fine, inc_fine = fines(sla, inconsistencies)
    return max(0.0, 100000 - sla_fine - inc_fine)


def balance_violations(audit_rows):
    """The audit rule over sql/audit.sql's rows: each client's saldo equals the sum of its
    stored transactions and never goes below -limite."""
    out = []
    for r in audit_rows:
        if r["saldo"] != r["soma"]:
            out.append(f"client {r['id']}: saldo {r['saldo']} != sum of its transactions {r['soma']}")
        if r["saldo"] < -r["limite"]:
            out.append(f"client {r['id']}: saldo {r['saldo']} below -limite {-r['limite']}")
    return out


def audit(audit_rows, posts_answered_200):
    """The audit of a run: the balance rule, and every POST answered 200 stored (no more)."""
    problems = balance_violations(audit_rows)
    stored = sum(r["linhas"] for r in audit_rows)
    if stored != posts_answered_200:
        problems.append(f"{stored} stored transactions != {posts_answered_200} POSTs answered 200")
    return {
        "ok": not problems,
        "problems": problems,
        "stored_transactions": stored,
        "posts_answered_200": posts_answered_200,
        "clients": audit_rows,
    }
