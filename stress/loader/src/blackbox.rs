//! The black-box check: is a run's history strictly serializable, judged from what the
//! clients saw alone — no database, so any implementation of the contract can be checked.
//!
//! The ledger mode ([`crate::check`]) reads each client's serial order from the database's
//! rows. Here the order is inferred from the answers, then handed to the same rules:
//!
//! - every POST answered 200 says the balance right after it (`saldo`), so the balance right
//!   before it was `saldo − delta`: in one serial order, each acknowledged transaction starts
//!   from the balance the previous one ended on. The acknowledged transactions are the edges
//!   of a walk over balances, from the client's first balance;
//! - each statement lists its ten newest transactions, newest first: those are consecutive in
//!   the order, and its total is the balance right after the newest (descriptions are unique
//!   within a run, so each entry names one request);
//! - real time: a transaction acknowledged before another was invoked comes first;
//! - a POST whose outcome is unknown (no answer, 502, 504) may be in the order or not: it is
//!   placed where it bridges two balances, where a statement lists it, or to reach the final
//!   statement's total.
//!
//! The walk starts from the client's first statement when it precedes every POST of the
//! client (`crebito-loader --bracket` reads one before the load and one after it has
//! drained), else from balance 0 with no transactions (a fresh server). It follows statement
//! adjacencies first, else the acknowledged transactions that start from the current balance
//! and real time allows, earliest answered first, backtracking when a choice leads nowhere.
//! When no walk places every acknowledged transaction, the smallest evidence is reported: two
//! acknowledged POSTs that both started from one balance (a lost update), or the POST no
//! order reaches. When one does, the order becomes a ledger and every rule of the ledger
//! mode is checked against it: statements as prefixes, refusals, `saldo >= −limite`.
//!
//! What it cannot see, where the ledger mode can: a transaction applied but never answered
//! and never listed, nor counted in a later statement's total (the ledger has its row); which
//! of two orders that explain every answer equally the server actually took. What it sees
//! all the same: lost updates, stale or reordered statements, a refused debit that was
//! applied (listed, or counted in a total), a transaction applied twice (listed twice, or
//! counted twice in a total), a balance outside its limit.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::check::{self, Report, Violation};
use crate::history::{Fate, Ledger, Op, Row};

/// Description of the row that stands for every transaction before the run's visible ones.
const GENESIS: &str = "\u{b7}genesis\u{b7}";

/// The most steps the walk may take per client before it gives up (a history no order
/// explains is usually found stuck long before).
const BUDGET: usize = 2_000_000;

/// Checks `history` with no ledger.
pub fn check(history: &[Op]) -> Report {
    let mut by_client: HashMap<u32, Vec<&Op>> = HashMap::new();
    for op in history {
        by_client.entry(op.client).or_default().push(op);
    }
    let mut clients: Vec<u32> = by_client.keys().copied().collect();
    clients.sort_unstable();
    let mut ledger = Ledger::default();
    let mut background = HashSet::new();
    let mut failed: Vec<Violation> = Vec::new();
    let mut checked: Vec<Op> = Vec::new();
    for id in clients {
        let ops = &by_client[&id];
        match infer(id, ops) {
            Ok(order) => {
                ledger.clientes.push((id, order.limite, order.saldo));
                ledger.transacoes.extend(order.rows);
                background.extend(order.background);
                checked.extend(ops.iter().map(|op| (*op).clone()));
            }
            Err(v) => failed.push(v),
        }
    }
    let mut report = check::check_with(&checked, &ledger, &background);
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
    report.violations_total += failed.len();
    failed.extend(report.violations);
    failed.truncate(check::KEEP);
    report.violations = failed;
    report.strict_serializable = report.violations_total == 0;
    report
}

/// A client's inferred order, as ledger rows.
struct Order {
    limite: i64,
    saldo: i64,
    rows: Vec<Row>,
    /// Rows that stand for what was there before the run.
    background: Vec<String>,
}

/// A transaction the walk may place.
struct Edge<'a> {
    op: &'a Op,
    delta: i64,
    /// The balance before and after it, when it was acknowledged.
    before: Option<i64>,
    invoke: u64,
    complete: u64,
    acked: bool,
    /// Listed by a statement: applied, whatever its answer said.
    listed: bool,
}

fn violation(client: u32, rule: &'static str, what: String, ops: &[&Op]) -> Violation {
    Violation {
        client,
        rule,
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

fn infer(client: u32, ops: &[&Op]) -> Result<Order, Violation> {
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
        .next()
        .unwrap_or(0);

    // Where the walk starts: the last statement answered before any POST was sent.
    let first_post = posts
        .iter()
        .map(|op| op.invoke_ns)
        .min()
        .unwrap_or(u64::MAX);
    let initial = statements
        .iter()
        .filter(|op| op.complete_ns <= first_post)
        .max_by_key(|op| op.complete_ns)
        .and_then(|op| statement_list(op));
    let (s0, visible) = initial.unwrap_or((0, Vec::new()));
    let requested: HashMap<&str, &Op> = posts
        .iter()
        .map(|op| (op.tx.as_ref().expect("a POST").descricao.as_str(), *op))
        .collect();

    // Statement adjacencies: each list's entries are consecutive, newest first.
    let mut next_of: HashMap<String, String> = HashMap::new();
    let mut prev_of: HashMap<String, String> = HashMap::new();
    let mut listed: HashSet<String> = HashSet::new();
    // A POST retried after an ambiguous answer: the likely culprit when one description is
    // seen in two places of the order.
    let retried = |d: &str| {
        requested.get(d).is_some_and(|op| {
            op.attempts
                .iter()
                .any(|a| crate::history::ambiguous(a.status))
        })
    };
    for st in &statements {
        let Some((_, list)) = statement_list(st) else {
            continue;
        };
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
            let (newer, older) = (&w[0].0, &w[1].0);
            let conflict = match next_of.insert(older.clone(), newer.clone()) {
                Some(other) if other != *newer => Some(format!(
                    "two statements disagree on what followed {older:?}: {other:?} and {newer:?}"
                )),
                _ => match prev_of.insert(newer.clone(), older.clone()) {
                    Some(other) if other != *older => Some(format!(
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
                        involved.extend(requested.get(d.as_str()));
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
        listed.extend(list.iter().map(|(d, _, _)| d.clone()));
    }

    let mut edges: Vec<Edge> = Vec::with_capacity(posts.len());
    let mut index: HashMap<&str, usize> = HashMap::new();
    for op in &posts {
        let tx = op.tx.as_ref().expect("a POST");
        let fate = op.fate();
        let is_listed = listed.contains(&tx.descricao);
        if fate == Fate::NotApplied && !is_listed {
            continue;
        }
        let before = match fate {
            Fate::Applied => Some(
                op.body
                    .as_ref()
                    .and_then(|b| b["saldo"].as_i64())
                    .ok_or_else(|| {
                        violation(client, "b", "answered 200 without a saldo".into(), &[op])
                    })?
                    - tx.delta(),
            ),
            _ => None,
        };
        index.insert(tx.descricao.as_str(), edges.len());
        edges.push(Edge {
            op,
            delta: tx.delta(),
            before,
            invoke: op.invoke_ns,
            complete: op.complete_ns,
            acked: fate == Fate::Applied,
            listed: is_listed,
        });
    }
    // A refused request a statement lists was applied: the ledger rules name it (rule a) once
    // it is in the order, so it is walked as an applied one of unknown balance.
    let mut from: HashMap<i64, Vec<usize>> = HashMap::new();
    for (i, e) in edges.iter().enumerate() {
        if let Some(b) = e.before {
            from.entry(b).or_default().push(i);
        }
    }
    for v in from.values_mut() {
        v.sort_by_key(|&i| (edges[i].complete, edges[i].invoke));
    }
    // The final statement, when one was read after every POST was answered: its total is
    // where the walk must end.
    let last_post_done = posts.iter().map(|op| op.complete_ns).max().unwrap_or(0);
    let final_total = statements
        .iter()
        .filter(|op| op.invoke_ns >= last_post_done && !posts.is_empty())
        .max_by_key(|op| op.invoke_ns)
        .and_then(|op| statement_list(op))
        .map(|(t, _)| t);
    let visible_desc: HashSet<&str> = visible.iter().map(|(d, _, _)| d.as_str()).collect();
    let start_last = visible.first().map(|(d, _, _)| d.clone());

    let unknown: Vec<usize> = (0..edges.len()).filter(|&i| !edges[i].acked).collect();
    let walk = Walk {
        edges: &edges,
        from: &from,
        next_of: &next_of,
        prev_of: &prev_of,
        index: &index,
        unknown: &unknown,
        limite,
        final_total,
    };
    let refused: Vec<&Op> = posts
        .iter()
        .copied()
        .filter(|op| op.fate() == Fate::NotApplied)
        .collect();
    let order = match walk.run(s0, start_last.clone()) {
        Ok(order) => order,
        // Every acknowledged POST placed, but the final statement's total out of reach: the
        // order stands without it, and the ledger rules judge that statement as any other
        // (a stale one is named so).
        Err(stuck) if stuck.wanted.is_none() && final_total.is_some() => {
            let relaxed = Walk {
                final_total: None,
                ..walk
            };
            relaxed
                .run(s0, start_last)
                .map_err(|stuck| stuck.explain(client, &edges, &refused))?
        }
        Err(stuck) => return Err(stuck.explain(client, &edges, &refused)),
    };

    // The rows: the visible history before the run (and one row standing for everything
    // older, when the balance needs it), then the walk.
    let mut rows: Vec<Row> = Vec::new();
    let mut background = Vec::new();
    let visible_sum: i64 = visible
        .iter()
        .map(|(_, v, t)| if t == "c" { *v } else { -*v })
        .sum();
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
    for (d, v, t) in visible.iter().rev() {
        if requested.contains_key(d.as_str()) {
            continue; // not before the run after all: the ledger rules will say so
        }
        rows.push((client, 0, *v, t.clone(), d.clone()));
        background.push(d.clone());
    }
    let mut saldo = s0;
    for &i in &order {
        let tx = edges[i].op.tx.as_ref().expect("a POST");
        rows.push((client, 0, tx.valor, tx.tipo.clone(), tx.descricao.clone()));
        saldo += edges[i].delta;
    }
    for (seq, row) in rows.iter_mut().enumerate() {
        row.1 = seq as i64 + 1;
    }
    let _ = visible_desc;
    Ok(Order {
        limite,
        saldo,
        rows,
        background,
    })
}

struct Walk<'a> {
    edges: &'a [Edge<'a>],
    /// Acknowledged edges by the balance they start from, earliest answered first.
    from: &'a HashMap<i64, Vec<usize>>,
    /// Statement adjacencies, by description: what came right after, right before.
    next_of: &'a HashMap<String, String>,
    prev_of: &'a HashMap<String, String>,
    index: &'a HashMap<&'a str, usize>,
    /// The edges whose answer did not say the balance (unknown, or listed though refused).
    unknown: &'a [usize],
    limite: i64,
    final_total: Option<i64>,
}

/// Where the deepest walk stopped.
struct Stuck {
    balance: i64,
    placed: usize,
    last: Option<usize>,
    /// The acknowledged edge real time asked for next, not placeable.
    wanted: Option<usize>,
    budget: bool,
}

impl Stuck {
    fn explain(&self, client: u32, edges: &[Edge], refused: &[&Op]) -> Violation {
        let describe = |i: usize| edges[i].op;
        if self.budget {
            return violation(
                client,
                "order",
                format!(
                    "no serial order found within {BUDGET} steps (deepest: {} placed, at saldo {})",
                    self.placed, self.balance
                ),
                &self.wanted.map(describe).into_iter().collect::<Vec<_>>(),
            );
        }
        let Some(w) = self.wanted else {
            return violation(
                client,
                "order",
                format!(
                    "every acknowledged POST is placed, but no order ends on the final statement's total (stopped at saldo {})",
                    self.balance
                ),
                &self.last.map(describe).into_iter().collect::<Vec<_>>(),
            );
        };
        // A lost update: another acknowledged POST started from the same balance and was
        // placed, and nothing brought the balance back to it.
        let before = edges[w].before;
        if let Some(other) = (0..edges.len())
            .find(|&j| j != w && edges[j].acked && edges[j].before == before && before.is_some())
        {
            return violation(
                client,
                "order",
                format!(
                    "two acknowledged POSTs both started from saldo {} (a lost update): no serial order has both",
                    before.unwrap_or_default()
                ),
                &[describe(other), describe(w)],
            );
        }
        // The gap between where the walk stands and where the POST started, when one request
        // explains it: a refusal that was applied, or the POST itself applied twice.
        if let Some(b) = before {
            let gap = b - self.balance;
            let window = |op: &Op| op.invoke_ns <= edges[w].complete;
            if let Some(r) = refused
                .iter()
                .find(|op| op.tx.as_ref().is_some_and(|tx| tx.delta() == gap) && window(op))
            {
                return violation(
                    client,
                    "order",
                    format!(
                        "saldo moved by {gap} with nothing acknowledged to move it: exactly the amount of a request told \"not applied\" ({}), applied after all",
                        r.status
                    ),
                    &[r, describe(w)],
                );
            }
            if edges[w].delta == gap {
                return violation(
                    client,
                    "order",
                    format!("started from saldo {b}: its own amount counted twice (applied twice)"),
                    &[describe(w)],
                );
            }
        }
        let mut involved = vec![describe(w)];
        involved.extend(self.last.map(describe));
        violation(
            client,
            "order",
            match before {
                Some(b) => format!(
                    "no order reaches saldo {b}, where this POST started (the walk stopped at saldo {} after {} transactions)",
                    self.balance, self.placed
                ),
                None => format!(
                    "no order places this POST (stopped at saldo {})",
                    self.balance
                ),
            },
            &involved,
        )
    }
}

impl Walk<'_> {
    /// The order of edges placed (indices), or where the deepest attempt stopped.
    fn run(&self, s0: i64, start_last: Option<String>) -> Result<Vec<usize>, Stuck> {
        let n = self.edges.len();
        let acked_total = self.edges.iter().filter(|e| e.acked || e.listed).count();
        let mut placed = vec![false; n];
        // Unplaced acknowledged edges by completion: real time allows an edge next only if
        // none of them completed before it was invoked.
        let mut pending: BTreeSet<(u64, usize)> = self
            .edges
            .iter()
            .enumerate()
            .filter(|(_, e)| e.acked)
            .map(|(i, e)| (e.complete, i))
            .collect();
        // The DFS: each frame is a placed edge and the alternatives still to try there.
        let mut order: Vec<usize> = Vec::new();
        let mut alternatives: Vec<Vec<usize>> = Vec::new();
        let mut balance = s0;
        let mut required_placed = 0usize;
        let mut steps = 0usize;
        let mut deepest = Stuck {
            balance: s0,
            placed: 0,
            last: None,
            wanted: pending.first().map(|&(_, i)| i),
            budget: false,
        };
        let mut choices = self.choices(
            balance,
            order.last().copied(),
            start_last.as_deref(),
            &placed,
            &pending,
        );
        loop {
            steps += 1;
            if steps > BUDGET {
                deepest.budget = true;
                return Err(deepest);
            }
            if required_placed == acked_total
                && self.final_total.is_none_or(|t| t == balance)
                && pending.is_empty()
            {
                return Ok(order);
            }
            if let Some(next) = choices.pop() {
                // Place it.
                let e = &self.edges[next];
                placed[next] = true;
                if e.acked {
                    pending.remove(&(e.complete, next));
                }
                if e.acked || e.listed {
                    required_placed += 1;
                }
                balance += e.delta;
                order.push(next);
                alternatives.push(choices);
                if order.len() > deepest.placed {
                    deepest = Stuck {
                        balance,
                        placed: order.len(),
                        last: Some(next),
                        wanted: pending.first().map(|&(_, i)| i),
                        budget: false,
                    };
                }
                choices = self.choices(balance, Some(next), None, &placed, &pending);
            } else {
                // Dead end: undo the last placement, try its next alternative.
                let Some(last) = order.pop() else {
                    return Err(deepest);
                };
                let e = &self.edges[last];
                placed[last] = false;
                if e.acked {
                    pending.insert((e.complete, last));
                }
                if e.acked || e.listed {
                    required_placed -= 1;
                }
                balance -= e.delta;
                choices = alternatives.pop().expect("one frame per placed edge");
            }
        }
    }

    /// What may come next, the preferred last (popped first).
    fn choices(
        &self,
        balance: i64,
        last: Option<usize>,
        start_last: Option<&str>,
        placed: &[bool],
        pending: &BTreeSet<(u64, usize)>,
    ) -> Vec<usize> {
        let last_desc = last
            .map(|i| {
                self.edges[i]
                    .op
                    .tx
                    .as_ref()
                    .expect("a POST")
                    .descricao
                    .as_str()
            })
            .or(start_last);
        let desc = |i: usize| {
            self.edges[i]
                .op
                .tx
                .as_ref()
                .expect("a POST")
                .descricao
                .as_str()
        };
        // Real time: nothing invoked after an unplaced acknowledged edge completed.
        let in_time = |i: usize| {
            pending
                .iter()
                .find(|&&(_, j)| j != i)
                .is_none_or(|&(c, _)| self.edges[i].invoke <= c)
        };
        let fits = |i: usize| {
            let e = &self.edges[i];
            !placed[i]
                && e.before.is_none_or(|b| b == balance)
                && balance + e.delta >= -self.limite
                // A statement saw it right after another: only after that one.
                && self.prev_of.get(desc(i)).is_none_or(|p| Some(p.as_str()) == last_desc)
                && in_time(i)
        };
        // A statement said what came right after the last one: nothing else may (unless it
        // names nothing this run requested, which the ledger rules report).
        if let Some(&i) = last_desc
            .and_then(|d| self.next_of.get(d))
            .and_then(|n| self.index.get(n.as_str()))
        {
            return if fits(i) { vec![i] } else { Vec::new() };
        }
        let mut out: Vec<usize> = Vec::new();
        // Outcomes the answers did not tell, tried last: one a statement listed, one that
        // bridges to an acknowledged edge's start, or (every acknowledged edge placed) one
        // toward the final total.
        let done = pending.is_empty();
        let toward_end = done && self.final_total.is_some_and(|t| t != balance);
        for &i in self.unknown {
            let e = &self.edges[i];
            if (e.listed || toward_end || self.from.contains_key(&(balance + e.delta))) && fits(i) {
                out.push(i);
            }
        }
        // Acknowledged edges from this balance, earliest answered tried first (popped last).
        if let Some(candidates) = self.from.get(&balance) {
            out.extend(candidates.iter().rev().copied().filter(|&i| fits(i)));
        }
        out
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
