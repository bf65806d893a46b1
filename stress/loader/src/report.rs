//! The report both modes end with: the verdict (yes, no, undecided), the findings of each
//! kind with the requests that show them, the rules the orders were checked against. The
//! rules are [`crate::check`]'s; the black-box search is `infer.rs`'s.

use serde::Serialize;

use crate::history::Op;

/// A client the search gave up on.
#[derive(Debug, Clone, Serialize)]
pub struct Undecided {
    pub client: u32,
    pub steps: usize,
}

/// A finding that no serial order consistent with real time explains the answers (a lost
/// update, a stale or torn statement, a transaction applied twice or refused yet applied).
pub const ORDER: &str = "no-serial-order";
/// A finding that an order exists, but an answer breaks the contract all the same
/// (`realizada_em` going backwards in a statement, a debit to exactly `-limite` refused, a
/// credit refused, another `limite`, a body that is not the contract's JSON).
pub const CONTRACT: &str = "contract";

/// The rules each client's order is checked against, in both modes (the module's list).
pub const RULES: [&str; 7] = [
    "a: every 200 POST applied exactly once, no refused one applied, no row without a request",
    "b: each 200 POST's saldo is the balance right after it in the order, its limite the client's",
    "c: real time: an operation answered before another was invoked comes first",
    "d: each statement shows the order's prefix at one point: its total, its ten newest newest first, realizada_em non-increasing; no earlier point than a statement answered before it showed",
    "e: saldo >= -limite after every transaction",
    "refusal: a 422 is a debit that did not fit at a point of the order its real time allows",
    "contract: the answers' JSON, limite, realizada_em as RFC 3339",
];

/// One broken rule, with the requests involved.
#[derive(Debug, Clone, Serialize)]
pub struct Violation {
    pub client: u32,
    /// Which rule of the module's list: "a", "b", "c", "d", "e", "refusal", or "order" (the
    /// black-box search found no order).
    pub rule: &'static str,
    /// [`ORDER`] or [`CONTRACT`]: which kind of finding it is.
    pub kind: &'static str,
    pub what: String,
    pub requests: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    /// "ledger" (the order read from the database's rows) or "black-box" (inferred from the
    /// answers alone, [`crate::blackbox`]).
    pub mode: &'static str,
    pub operations: usize,
    pub posts: usize,
    pub statements: usize,
    pub applied: usize,
    pub not_applied: usize,
    pub unknown: usize,
    pub rows: usize,
    /// "yes", "no", or "undecided" (the black-box search gave up on a client, and nothing
    /// else was found: neither passed nor failed).
    pub verdict: &'static str,
    /// `verdict == "yes"`.
    pub strict_serializable: bool,
    /// The rules each client's order was checked against.
    pub rules: Vec<&'static str>,
    pub violations_total: usize,
    /// How many of them are of each kind: no serial order ([`ORDER`]), or an order with an
    /// answer that breaks the contract ([`CONTRACT`]).
    pub no_serial_order: usize,
    pub contract: usize,
    /// The first violations (all of them are counted in `violations_total`).
    pub violations: Vec<Violation>,
    /// The clients the black-box search gave up on, with the steps it took.
    pub undecided: Vec<Undecided>,
}

impl Report {
    /// Sets the verdict from the violations and the undecided clients.
    pub fn settle(&mut self) {
        self.verdict = if self.violations_total > 0 {
            "no"
        } else if !self.undecided.is_empty() {
            "undecided"
        } else {
            "yes"
        };
        self.strict_serializable = self.verdict == "yes";
        self.no_serial_order = self.violations.iter().filter(|v| v.kind == ORDER).count();
        self.contract = self
            .violations
            .iter()
            .filter(|v| v.kind == CONTRACT)
            .count();
    }

    /// The exit code `crebito-check` ends with: 0 yes, 1 no, 2 undecided.
    pub fn exit_code(&self) -> i32 {
        match self.verdict {
            "yes" => 0,
            "undecided" => 2,
            _ => 1,
        }
    }

    /// The line the stress and fault reports carry.
    pub fn line(&self) -> String {
        let undecided = match self.undecided.iter().map(|u| u.steps).max() {
            Some(steps) if self.verdict == "undecided" => {
                format!("undecided — gave up after {steps} steps")
            }
            _ => self.verdict.to_string(),
        };
        format!(
            "history: {} operations, strict serializable: {undecided}{}",
            self.operations,
            if self.mode == "black-box" {
                " (black-box)"
            } else {
                ""
            }
        )
    }
}

/// How many violations a report keeps (all are counted).
pub(crate) const KEEP: usize = 200;

fn seconds(ns: u64) -> String {
    format!("{:.6} s", ns as f64 / 1e9)
}

/// A request, in words, for a violation's report.
pub fn describe(op: &Op) -> String {
    let answer = match op.status {
        0 => "no answer".to_string(),
        s => s.to_string(),
    };
    let mut when = format!(
        "invoked {} completed {} -> {answer}",
        seconds(op.invoke_ns),
        seconds(op.complete_ns)
    );
    if !op.attempts.is_empty() {
        let each: Vec<String> = op
            .attempts
            .iter()
            .map(|a| {
                let status = match a.status {
                    0 => "no answer".to_string(),
                    s => s.to_string(),
                };
                let replay = if a.replayed { " replayed" } else { "" };
                format!("{status}{replay} at {}", seconds(a.sent_ns))
            })
            .collect();
        when.push_str(&format!(" (attempts: {})", each.join(", ")));
    }
    match &op.tx {
        Some(tx) => format!(
            "POST client {} {} {} {:?}, {when}",
            op.client, tx.tipo, tx.valor, tx.descricao
        ),
        None => format!("GET statement of client {}, {when}", op.client),
    }
}
