//! The black-box check: is a run's history strictly serializable, judged from what the
//! clients saw alone — no database, so any implementation of the contract can be checked.
//!
//! The ledger mode ([`crate::check`]) reads each client's serial order from the database's
//! rows. Here the order is searched for (`infer.rs`), then handed to the same rules:
//!
//! - every POST answered 200 says the balance right after it (`saldo`), so the balance right
//!   before it was `saldo − delta`: it is placed where the order stands on that balance;
//! - each statement lists its ten newest transactions, newest first, and its total: it is
//!   placed where the order's balance and ten newest are those (descriptions are unique
//!   within a run, so each entry names one request);
//! - a 422 is placed where the debit does not fit;
//! - real time: an operation answered before another was invoked comes first;
//! - a POST whose outcome is unknown (no answer, 502, 504) may be applied anywhere after it
//!   was invoked, or never.
//!
//! The order starts from the client's first statement when it precedes every POST of the
//! client (`crebito-loader --bracket` reads one before the load and one after it has
//! drained), else from balance 0 with no transactions (a fresh server). When no order
//! explains every answer, the deepest attempt names the operation it could not place, and
//! why (a lost update, a stale statement, a refusal applied, a transaction applied twice).
//! When one does, the order becomes a ledger and every rule of the ledger mode is checked
//! against it, the contract's own rules among them (`realizada_em`, `limite`). When the
//! search runs out of its budget the client is undecided: neither passed nor failed.
//!
//! What it cannot see, where the ledger mode can: a transaction applied but never answered
//! and never listed, nor counted in a later statement's total (the ledger has its row); an
//! unknown outcome of the right amount standing in for what really happened — a lost update
//! or a double application of the same amount as an unanswered POST is explained by that
//! POST; which of two orders that explain every answer equally the server actually took.

use std::collections::{HashMap, HashSet};

use crate::check;
use crate::history::{Fate, Ledger, Op, Row};
use crate::infer::{self, Definite, Kind, Maybe, NOMATCH, Outcome, Problem, UNLISTED};
pub use crate::report::Undecided;
use crate::report::{KEEP, Report, Violation};

/// Description of the row that stands for every transaction before the run's visible ones.
const GENESIS: &str = "\u{b7}genesis\u{b7}";

/// The most work (steps and candidates examined) the search may do per client before it
/// gives up: the client is then undecided.
pub const BUDGET: usize = 20_000_000;

/// Checks `history` with no ledger.
pub fn check(history: &[Op]) -> Report {
    check_within(history, BUDGET)
}

/// As [`check()`], giving up on a client after `budget` steps (or 200 per operation of the
/// client, when that is more).
pub fn check_within(history: &[Op], budget: usize) -> Report {
    let mut by_client: HashMap<u32, Vec<&Op>> = HashMap::new();
    for op in history {
        by_client.entry(op.client).or_default().push(op);
    }
    let mut clients: Vec<u32> = by_client.keys().copied().collect();
    clients.sort_unstable();
    let mut ledger = Ledger::default();
    let mut background = HashSet::new();
    let mut failed: Vec<Violation> = Vec::new();
    let mut undecided: Vec<Undecided> = Vec::new();
    let mut checked: Vec<&Op> = Vec::new();
    for id in clients {
        let ops = &by_client[&id];
        // The budget grows with the client's history: a long correct one is never cut short.
        match infer_client(id, ops, budget.max(ops.len().saturating_mul(200))) {
            Inferred::Order(order) => {
                ledger
                    .clientes
                    .push((id, order.limite.unwrap_or(0), order.saldo));
                ledger.transacoes.extend(order.rows);
                background.extend(order.background);
                // No answer said the limit: a refusal cannot be judged.
                checked.extend(
                    ops.iter()
                        .filter(|op| order.limite.is_some() || op.status != 422),
                );
            }
            Inferred::Violation(v) => failed.push(v),
            Inferred::GaveUp(steps) => undecided.push(Undecided { client: id, steps }),
        }
    }
    let mut report = check::check_refs(&checked, &ledger, &background);
    report.mode = "black-box";
    report.operations = history.len();
    let posts = history.iter().filter(|op| op.tx.is_some());
    report.posts = posts.clone().count();
    report.statements = history.len() - report.posts;
    report.applied = posts
        .clone()
        .filter(|op| op.fate() == Fate::Applied)
        .count();
    report.not_applied = posts
        .clone()
        .filter(|op| op.fate() == Fate::NotApplied)
        .count();
    report.unknown = posts.filter(|op| op.fate() == Fate::Unknown).count();
    report.rows = ledger.transacoes.len();
    report.violations_total += failed.len();
    failed.extend(report.violations);
    failed.truncate(KEEP);
    report.violations = failed;
    report.undecided = undecided;
    report.settle();
    report
}

/// A client's inferred order, as ledger rows.
struct Order {
    /// The client's limit, when an answer said it.
    limite: Option<i64>,
    saldo: i64,
    rows: Vec<Row>,
    /// Rows that stand for what was there before the run.
    background: Vec<String>,
}

enum Inferred {
    Order(Order),
    Violation(Violation),
    GaveUp(usize),
}

fn violation(client: u32, rule: &'static str, what: String, ops: &[&Op]) -> Violation {
    Violation {
        client,
        rule,
        kind: check::ORDER,
        what,
        requests: ops.iter().map(|op| check::describe(op)).collect(),
    }
}

/// A statement's entry: (descricao, valor, tipo).
type Entry = (String, i64, String);

/// A statement's total and its entries, newest first.
fn statement_list(op: &Op) -> Option<(i64, Vec<Entry>)> {
    let body = op.body.as_ref()?;
    let total = body["saldo"]["total"].as_i64()?;
    let list = body["ultimas_transacoes"]
        .as_array()?
        .iter()
        .map(|t| {
            Some((
                t["descricao"].as_str()?.to_string(),
                t["valor"].as_i64()?,
                t["tipo"].as_str()?.to_string(),
            ))
        })
        .collect::<Option<Vec<_>>>()?;
    Some((total, list))
}

fn delta(tipo: &str, valor: i64) -> i64 {
    if tipo == "c" { valor } else { -valor }
}

fn infer_client(client: u32, ops: &[&Op], budget: usize) -> Inferred {
    match prepare(client, ops) {
        Err(v) => Inferred::Violation(v),
        Ok(mut prepared) => {
            let found = infer::search(&prepared.problem, budget);
            let found = match found {
                Outcome::NoOrder(deepest)
                    if prepared
                        .problem
                        .definite
                        .iter()
                        .any(|d| matches!(d.kind, Kind::Refusal { .. })) =>
                {
                    // A refusal of a debit that ends on exactly -limite explains this
                    // history: the order stands, and the rules name that refusal.
                    prepared.problem.strict = false;
                    match infer::search(&prepared.problem, budget) {
                        Outcome::Order(o) => Outcome::Order(o),
                        _ => Outcome::NoOrder(deepest),
                    }
                }
                other => other,
            };
            match found {
                Outcome::Order(order) => Inferred::Order(prepared.rows(client, &order)),
                Outcome::GaveUp(steps) => Inferred::GaveUp(steps),
                Outcome::NoOrder(deepest) => {
                    Inferred::Violation(prepared.explain(client, ops, &deepest))
                }
            }
        }
    }
}

struct Prepared<'a> {
    /// The client's limit, when an answer said it.
    limite: Option<i64>,
    problem: Problem<'a>,
    /// The initial statement's entries (newest first) and total.
    visible: Vec<Entry>,
    requested: HashMap<&'a str, &'a Op>,
    statements: Vec<&'a Op>,
}

/// The client's problem for the search, or a violation the answers show on their own.
fn prepare<'a>(client: u32, ops: &[&'a Op]) -> Result<Prepared<'a>, Violation> {
    let posts: Vec<&Op> = ops.iter().copied().filter(|op| op.tx.is_some()).collect();
    let statements: Vec<&Op> = ops
        .iter()
        .copied()
        .filter(|op| op.tx.is_none() && op.status == 200)
        .collect();
    // The client's limit, from any answer that carries it (the rules check they agree).
    let limite = posts
        .iter()
        .filter_map(|op| op.body.as_ref()?["limite"].as_i64())
        .chain(
            statements
                .iter()
                .filter_map(|op| op.body.as_ref()?["saldo"]["limite"].as_i64()),
        )
        .next();
    let requested: HashMap<&str, &Op> = posts
        .iter()
        .map(|op| (op.tx.as_ref().expect("a POST").descricao.as_str(), *op))
        .collect();

    // Where the order starts: the last statement answered before any POST was sent.
    let first_post = posts
        .iter()
        .map(|op| op.invoke_ns)
        .min()
        .unwrap_or(u64::MAX);
    let initial = statements
        .iter()
        .filter(|op| op.complete_ns < first_post)
        .max_by_key(|op| op.complete_ns)
        .and_then(|op| statement_list(op));
    let (s0, visible) = initial.unwrap_or((0, Vec::new()));
    let lists: Vec<(&Op, i64, Vec<Entry>)> = statements
        .iter()
        .filter_map(|op| statement_list(op).map(|(t, l)| (*op, t, l)))
        .collect();

    // What the answers show on their own, named better here than by a failed search.
    adjacencies(client, &lists, &requested)?;
    let mut listed: HashSet<&str> = HashSet::new();
    for (st, _, list) in &lists {
        for (d, _, _) in list {
            listed.insert(d.as_str());
            if let Some(op) = requested.get(d.as_str())
                && op.fate() == Fate::NotApplied
            {
                return Err(violation(
                    client,
                    "a",
                    format!(
                        "told \"not applied\" ({}) but stored: a statement lists {d:?}",
                        op.status
                    ),
                    &[op, st],
                ));
            }
        }
    }

    // Entry ids: a POST's index when a statement lists it; the initial statement's
    // entries the run did not request after them.
    let mut ids: HashMap<Entry, u32> = HashMap::new();
    let mut post_entry = Vec::with_capacity(posts.len());
    for (i, op) in posts.iter().enumerate() {
        let tx = op.tx.as_ref().expect("a POST");
        if listed.contains(tx.descricao.as_str()) {
            ids.insert((tx.descricao.clone(), tx.valor, tx.tipo.clone()), i as u32);
            post_entry.push(i as u32);
        } else {
            post_entry.push(UNLISTED);
        }
    }
    for e in &visible {
        if !requested.contains_key(e.0.as_str()) {
            let next = (posts.len() + ids.len()) as u32;
            ids.entry(e.clone()).or_insert(next);
        }
    }
    let id_of = |e: &Entry| ids.get(e).copied().unwrap_or(NOMATCH);

    let mut definite = Vec::new();
    let mut maybe = Vec::new();
    // Without a limit from the answers, no refusal can be judged, nor a debit found below it.
    let known = limite.is_some();
    let limite = limite.unwrap_or(i64::MAX / 4);
    for (i, op) in posts.iter().enumerate() {
        let tx = op.tx.as_ref().expect("a POST");
        match op.fate() {
            Fate::Applied => {
                let saldo = op.body.as_ref().and_then(|b| b["saldo"].as_i64());
                let Some(saldo) = saldo else {
                    return Err(violation(
                        client,
                        "b",
                        "answered 200 without a saldo".into(),
                        &[op],
                    ));
                };
                if known && saldo < -limite {
                    return Err(violation(
                        client,
                        "e",
                        format!("answered saldo {saldo}, below -limite {}", -limite),
                        &[op],
                    ));
                }
                definite.push(Definite {
                    op,
                    kind: Kind::Post {
                        before: saldo - tx.delta(),
                        delta: tx.delta(),
                        entry: post_entry[i],
                    },
                });
            }
            Fate::Unknown => maybe.push(Maybe {
                op,
                delta: tx.delta(),
                entry: post_entry[i],
            }),
            // A credit refused with 422 is the rules' to report; it changes nothing.
            Fate::NotApplied if known && op.status == 422 && tx.tipo == "d" => {
                definite.push(Definite {
                    op,
                    kind: Kind::Refusal { valor: tx.valor },
                })
            }
            Fate::NotApplied => {}
        }
    }
    for (op, total, list) in &lists {
        definite.push(Definite {
            op,
            kind: Kind::Statement {
                total: *total,
                list: list.iter().map(id_of).collect(),
            },
        });
    }
    let tail = visible.iter().map(id_of).collect();
    Ok(Prepared {
        limite: known.then_some(limite),
        problem: Problem {
            limite,
            balance: s0,
            tail,
            definite,
            maybe,
            strict: true,
        },
        visible,
        requested,
        statements,
    })
}

/// Statement adjacencies: each list's entries are consecutive, newest first, so in one
/// order each transaction has one successor and one predecessor.
fn adjacencies(
    client: u32,
    lists: &[(&Op, i64, Vec<Entry>)],
    requested: &HashMap<&str, &Op>,
) -> Result<(), Violation> {
    let mut next_of: HashMap<&str, &str> = HashMap::new();
    let mut prev_of: HashMap<&str, &str> = HashMap::new();
    // A POST retried after an ambiguous answer: the likely culprit when one description is
    // seen in two places of the order.
    let retried = |d: &str| {
        requested.get(d).is_some_and(|op| {
            op.attempts
                .iter()
                .any(|a| crate::history::ambiguous(a.status))
        })
    };
    for (st, _, list) in lists {
        let mut seen = HashSet::new();
        if let Some((d, _, _)) = list.iter().find(|(d, _, _)| !seen.insert(d.as_str())) {
            let mut involved = vec![*st];
            involved.extend(requested.get(d.as_str()));
            return Err(violation(
                client,
                "a",
                format!("{d:?} is listed twice by one statement: applied twice"),
                &involved,
            ));
        }
        for w in list.windows(2) {
            let (newer, older) = (w[0].0.as_str(), w[1].0.as_str());
            let conflict = match next_of.insert(older, newer) {
                Some(other) if other != newer => Some(format!(
                    "two statements disagree on what followed {older:?}: {other:?} and {newer:?}"
                )),
                _ => match prev_of.insert(newer, older) {
                    Some(other) if other != older => Some(format!(
                        "two statements disagree on what preceded {newer:?}: {other:?} and {older:?}"
                    )),
                    _ => None,
                },
            };
            if let Some(what) = conflict {
                let twice = [older, newer].into_iter().find(|d| retried(d));
                return Err(match twice {
                    Some(d) => {
                        let mut involved = vec![*st];
                        involved.extend(requested.get(d));
                        violation(
                            client,
                            "a",
                            format!(
                                "{what}; {d:?} was retried after an ambiguous answer: applied twice"
                            ),
                            &involved,
                        )
                    }
                    None => violation(client, "d", what, &[st]),
                });
            }
        }
    }
    Ok(())
}

impl<'a> Prepared<'a> {
    /// The rows: the visible history before the run (and one row standing for everything
    /// older, when the balance needs it), then the order.
    fn rows(&self, client: u32, order: &[&Op]) -> Order {
        let mut rows: Vec<Row> = Vec::new();
        let mut background = Vec::new();
        let s0 = self.problem.balance;
        let visible_sum: i64 = self.visible.iter().map(|(_, v, t)| delta(t, *v)).sum();
        if s0 != visible_sum {
            let g = s0 - visible_sum;
            rows.push((
                client,
                0,
                g.abs(),
                if g > 0 { "c" } else { "d" }.into(),
                GENESIS.into(),
            ));
            background.push(GENESIS.to_string());
        }
        for (d, v, t) in self.visible.iter().rev() {
            if self.requested.contains_key(d.as_str()) {
                continue; // not before the run after all: the ledger rules will say so
            }
            rows.push((client, 0, *v, t.clone(), d.clone()));
            background.push(d.clone());
        }
        let mut saldo = s0;
        for op in order {
            let tx = op.tx.as_ref().expect("a POST");
            rows.push((client, 0, tx.valor, tx.tipo.clone(), tx.descricao.clone()));
            saldo += tx.delta();
        }
        for (seq, row) in rows.iter_mut().enumerate() {
            row.1 = seq as i64 + 1;
        }
        Order {
            limite: self.limite,
            saldo,
            rows,
            background,
        }
    }

    /// Why no order exists, from where the deepest attempt stopped: the operation real time
    /// asked for next, which it could not place.
    fn explain(&self, client: u32, ops: &[&Op], deepest: &infer::Deepest) -> Violation {
        let defs = &self.problem.definite;
        let last = deepest.last.map(|i| defs[i].op);
        let Some(w) = deepest.wanted else {
            return violation(
                client,
                "order",
                "no serial order explains these answers".into(),
                &last.into_iter().collect::<Vec<_>>(),
            );
        };
        let wanted = defs[w].op;
        let placed = deepest.placed;
        let balance = deepest.balance;
        match &defs[w].kind {
            Kind::Post { before, delta, .. } => {
                // A lost update: another acknowledged POST started from the same balance.
                if let Some(other) = defs.iter().find(|d| {
                    !std::ptr::eq(d.op, wanted)
                        && matches!(d.kind, Kind::Post { before: b, .. } if b == *before)
                }) {
                    return violation(
                        client,
                        "order",
                        format!(
                            "two acknowledged POSTs both started from saldo {before} (a lost update): no serial order has both"
                        ),
                        &[other.op, wanted],
                    );
                }
                let gap = before - balance;
                let refused = ops.iter().find(|op| {
                    op.fate() == Fate::NotApplied
                        && op.invoke_ns <= wanted.complete_ns
                        && op.tx.as_ref().is_some_and(|tx| tx.delta() == gap)
                });
                if let Some(r) = refused {
                    return violation(
                        client,
                        "order",
                        format!(
                            "saldo moved by {gap} with nothing acknowledged to move it: exactly the amount of a request told \"not applied\" ({}), applied after all",
                            r.status
                        ),
                        &[r, wanted],
                    );
                }
                if *delta == gap {
                    return violation(
                        client,
                        "order",
                        format!(
                            "started from saldo {before}: its own amount counted twice (applied twice)"
                        ),
                        &[wanted],
                    );
                }
                let mut involved = vec![wanted];
                involved.extend(last);
                violation(
                    client,
                    "order",
                    format!(
                        "no order reaches saldo {before}, where this POST started (the deepest order stopped at saldo {balance} after {placed} operations)"
                    ),
                    &involved,
                )
            }
            Kind::Refusal { valor } => violation(
                client,
                "refusal",
                format!(
                    "refused as over the limit, but no order consistent with real time has a point where the debit of {valor} did not fit (the deepest stopped at saldo {balance})"
                ),
                &[wanted],
            ),
            Kind::Statement { total, .. } => {
                self.explain_statement(client, wanted, *total, deepest)
            }
        }
    }

    fn explain_statement(
        &self,
        client: u32,
        st: &'a Op,
        total: i64,
        deepest: &infer::Deepest,
    ) -> Violation {
        let (_, list) = statement_list(st).unwrap_or_default();
        let shown: HashSet<&str> = list.iter().map(|(d, _, _)| d.as_str()).collect();
        // Torn: on a fresh server, a list of fewer than ten is everything, and the total
        // must be its sum.
        let fresh = self.visible.is_empty() && self.problem.balance == 0;
        let sum: i64 = list.iter().map(|(_, v, t)| delta(t, *v)).sum();
        if fresh && list.len() < 10 && sum != total {
            return violation(
                client,
                "d",
                format!(
                    "a torn statement: saldo.total {total}, but the transactions it lists (all of them: fewer than ten) sum to {sum}"
                ),
                &[st],
            );
        }
        // Stale, with a full list too: a statement answered before this one was asked for
        // showed something after this one's newest; or a POST sent after its newest was
        // answered, and acknowledged before it was asked for, is not in it.
        if let Some((newest, _, _)) = list.first() {
            for other in &self.statements {
                if other.complete_ns >= st.invoke_ns {
                    continue;
                }
                let Some((_, earlier)) = statement_list(other) else {
                    continue;
                };
                if let Some(j) = earlier.iter().position(|(d, _, _)| d == newest)
                    && j > 0
                {
                    return violation(
                        client,
                        "d",
                        format!(
                            "a stale statement: its newest is {newest:?}, but a statement answered before it was asked for showed {:?} after that",
                            earlier[0].0
                        ),
                        &[st, other],
                    );
                }
            }
            if let Some(p0) = self.requested.get(newest.as_str()) {
                let missed = self.requested.values().find(|op| {
                    op.fate() == Fate::Applied
                        && op.complete_ns < st.invoke_ns
                        && op.invoke_ns > p0.complete_ns
                        && !shown.contains(op.tx.as_ref().expect("a POST").descricao.as_str())
                });
                if let Some(op) = missed {
                    return violation(
                        client,
                        "d",
                        format!(
                            "a stale statement: its newest is {newest:?}, but it misses a POST sent after that one was answered and acknowledged before it was asked for"
                        ),
                        &[st, op, p0],
                    );
                }
            }
        }
        // Stale: it misses what was acknowledged, or shown by an earlier statement, before
        // it was asked for.
        if list.len() < 10 {
            for other in &self.statements {
                if other.complete_ns >= st.invoke_ns {
                    continue;
                }
                let Some((_, earlier)) = statement_list(other) else {
                    continue;
                };
                if let Some((d, _, _)) =
                    earlier.iter().find(|(d, _, _)| !shown.contains(d.as_str()))
                {
                    return violation(
                        client,
                        "d",
                        format!(
                            "a stale statement: it misses {d:?}, which a statement answered before it was asked for already showed"
                        ),
                        &[st, other],
                    );
                }
            }
            let acked = self.requested.values().find(|op| {
                op.fate() == Fate::Applied
                    && op.complete_ns < st.invoke_ns
                    && !shown.contains(op.tx.as_ref().expect("a POST").descricao.as_str())
            });
            if let Some(op) = acked {
                return violation(
                    client,
                    "d",
                    "a stale statement: it misses a transaction acknowledged before it was asked for".into(),
                    &[st, op],
                );
            }
        }
        violation(
            client,
            "d",
            format!(
                "no point of an order consistent with real time shows this statement (total {total}; the deepest order stopped at saldo {} after {} operations)",
                deepest.balance, deepest.placed
            ),
            &[st],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::fixtures::{LIMIT, post, statement};

    /// A serial history with overlapping requests, a balance revisited (0 → 100 → 0 → 100),
    /// a refusal, an unknown outcome applied and one not, statements, and the bracket's
    /// first and last statements.
    fn good() -> Vec<Op> {
        vec![
            statement(0, 0, 0, &[]),
            post("c", 100, "a", 1, 10, 200, Some(100)),
            post("d", 100, "b", 2, 12, 200, Some(0)),
            post("c", 100, "c", 11, 20, 200, Some(100)),
            statement(
                21,
                22,
                100,
                &[("c", 100, "c"), ("d", 100, "b"), ("c", 100, "a")],
            ),
            post("d", 2000, "x", 23, 24, 422, None),
            post("c", 7, "u", 25, 40, 504, None),
            post("c", 9, "v", 25, 40, 0, None),
            post("d", 50, "e", 41, 42, 200, Some(57)),
            statement(
                50,
                51,
                57,
                &[
                    ("d", 50, "e"),
                    ("c", 7, "u"),
                    ("c", 100, "c"),
                    ("d", 100, "b"),
                    ("c", 100, "a"),
                ],
            ),
        ]
    }

    fn rules(h: &[Op]) -> Vec<(&'static str, String)> {
        let r = check(h);
        assert_eq!(r.mode, "black-box");
        assert_eq!(r.strict_serializable, r.violations.is_empty());
        r.violations.into_iter().map(|v| (v.rule, v.what)).collect()
    }

    #[test]
    fn a_serial_history_is_explained_without_a_ledger() {
        let r = check(&good());
        assert!(r.strict_serializable, "{:#?}", r.violations);
        assert_eq!((r.operations, r.applied, r.unknown), (10, 4, 2));
        assert_eq!(
            r.line(),
            "history: 10 operations, strict serializable: yes (black-box)"
        );
    }

    #[test]
    fn the_two_modes_agree_on_a_serial_history() {
        let h = good();
        let ledger = Ledger {
            clientes: vec![(1, LIMIT, 57)],
            transacoes: [
                ("c", 100, "a"),
                ("d", 100, "b"),
                ("c", 100, "c"),
                ("c", 7, "u"),
                ("d", 50, "e"),
            ]
            .iter()
            .enumerate()
            .map(|(i, (t, v, d))| (1, i as i64 + 1, *v, t.to_string(), d.to_string()))
            .collect(),
        };
        assert!(crate::check::check(&h, &ledger).strict_serializable);
        assert!(check(&h).strict_serializable);
    }

    #[test]
    fn a_lost_update_is_named_by_the_two_posts_that_started_from_one_balance() {
        // Two debits of 10 and 20, overlapping, both answered as if from 100.
        let h = vec![
            statement(0, 0, 0, &[]),
            post("c", 100, "a", 1, 2, 200, Some(100)),
            post("d", 10, "p", 3, 8, 200, Some(90)),
            post("d", 20, "q", 4, 9, 200, Some(80)),
        ];
        let r = check(&h);
        let v = &r.violations[0];
        assert_eq!(v.rule, "order");
        assert!(
            v.what
                .contains("both started from saldo 100 (a lost update)"),
            "{v:?}"
        );
        assert_eq!(v.requests.len(), 2);
        assert!(
            v.requests.iter().any(|d| d.contains("\"p\""))
                && v.requests.iter().any(|d| d.contains("\"q\""))
        );
    }

    #[test]
    fn a_stale_statement_is_caught() {
        // Asked for at 21 ms, after "c" was acknowledged at 20 ms: shows the prefix before it.
        let mut h = good();
        h[4] = statement(21, 22, 0, &[("d", 100, "b"), ("c", 100, "a")]);
        let r = rules(&h);
        assert!(
            !r.is_empty() && r.iter().all(|(rule, _)| *rule == "d" || *rule == "order"),
            "{r:?}"
        );
    }

    #[test]
    fn a_statement_in_another_order_than_the_balances_is_caught() {
        // The balances say a, b, c; the statement lists b before a.
        let mut h = good();
        h[4] = statement(
            21,
            22,
            100,
            &[("c", 100, "c"), ("c", 100, "a"), ("d", 100, "b")],
        );
        assert!(!rules(&h).is_empty());
    }

    #[test]
    fn a_refused_debit_that_was_applied_is_caught() {
        // "x" was answered 422, yet the last statement lists it (and counts it).
        let mut h = good();
        h[5] = post("d", 20, "x", 43, 44, 422, None);
        h[9] = statement(
            50,
            51,
            37,
            &[
                ("d", 20, "x"),
                ("d", 50, "e"),
                ("c", 7, "u"),
                ("c", 100, "c"),
                ("d", 100, "b"),
                ("c", 100, "a"),
            ],
        );
        let r = rules(&h);
        assert!(
            r.iter()
                .any(|(rule, w)| *rule == "a" && w.contains("told \"not applied\"")),
            "{r:?}"
        );
    }

    #[test]
    fn a_transaction_applied_twice_is_caught() {
        // "e" answered 200 once, but its debit counted twice: the last statement's total and
        // list say so.
        let mut h = good();
        h[9] = statement(
            50,
            51,
            7,
            &[
                ("d", 50, "e"),
                ("d", 50, "e"),
                ("c", 7, "u"),
                ("c", 100, "c"),
            ],
        );
        assert!(!rules(&h).is_empty());
    }

    #[test]
    fn an_answer_no_balance_leads_to_is_caught() {
        // "e" says 57, but nothing leads to its starting balance 107 (nor to 100 + 7 without "u").
        let mut h = good();
        h[8] = post("d", 50, "e", 41, 42, 200, Some(58));
        h.truncate(9);
        let r = rules(&h);
        assert!(
            r.iter()
                .any(|(rule, w)| *rule == "order" && w.contains("no order reaches saldo 108")),
            "{r:?}"
        );
    }
}
