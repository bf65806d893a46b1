//! Is every answer a client got explained by one serial order of the transactions that is
//! consistent with real time (strict serializability)?
//!
//! The ledger makes an exact, fast check possible, where Knossos or Porcupine would have to
//! search: each client's transactions are serialized on its row, so the database's final
//! rows, in `seq` order (the client's counter), *are* the order per client (a stored row is matched to its request by
//! its `descricao`, unique within a run). Every answer is then checked against that order:
//!
//! - (a) every 200 POST is in the order exactly once; every "not applied" answer (4xx, 503)
//!   is not; an unknown outcome (no answer, 502, 504) may be either; no row without a request;
//!   a keyed retry answered as a replay follows an attempt that could have stored it (an
//!   ambiguous one), never only refusals;
//! - (b) each 200 POST's `saldo` is the sum of the order's prefix ending at it, its `limite`
//!   the client's;
//! - (c) real time: a transaction acknowledged before another was invoked comes first;
//! - (d) each statement is a prefix of the order: `saldo.total` the prefix's sum, the ten
//!   newest transactions of the prefix, newest first, `realizada_em` non-increasing; the prefix
//!   holds every transaction acknowledged before the statement was invoked and none invoked
//!   after it completed, and is no shorter than what a read (a statement, a refusal)
//!   answered before it was invoked saw; `realizada_em` compared as RFC 3339 instants;
//! - (e) `saldo >= -limite` after every prefix (and the final `saldo` is the sum of all);
//! - and a 422 "over the limit" is explained: at some point of the order inside its real-time
//!   window (and no earlier than a read answered before it saw) the debit did not fit.
//!
//! Both modes apply these rules: the ledger mode to the database's rows, the black-box mode
//! ([`crate::blackbox`]) to the order its search found, through [`check_refs`]. A finding is
//! of one of two kinds ([`ORDER`], [`CONTRACT`]); the report is [`crate::report`]'s.
//!
//! Everything is O(n log n) per client (prefix sums, prefix/suffix extrema, binary searches,
//! a sparse table for range minima).

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::history::{self, Fate, Ledger, Op, Row};
use crate::rfc3339;

use crate::report::KEEP;
pub use crate::report::{CONTRACT, ORDER, RULES, Report, Violation, describe};

/// Range minima over a fixed array, in O(1) per query.
struct SparseMin {
    levels: Vec<Vec<i64>>,
}

impl SparseMin {
    fn new(values: &[i64]) -> SparseMin {
        let mut levels = vec![values.to_vec()];
        let mut width = 1;
        while width * 2 <= values.len() {
            let prev = levels.last().unwrap();
            let next = (0..=values.len() - width * 2)
                .map(|i| prev[i].min(prev[i + width]))
                .collect();
            levels.push(next);
            width *= 2;
        }
        SparseMin { levels }
    }

    /// The minimum of `values[lo..=hi]` (`lo <= hi`).
    fn min(&self, lo: usize, hi: usize) -> i64 {
        let level = (usize::BITS - 1 - (hi - lo + 1).leading_zeros()) as usize;
        self.levels[level][lo].min(self.levels[level][hi + 1 - (1 << level)])
    }
}

/// Collects violations, keeping the first [`KEEP`].
struct Found {
    total: usize,
    kept: Vec<Violation>,
}

impl Found {
    fn add(&mut self, client: u32, rule: &'static str, what: String, ops: &[&Op]) {
        self.push(client, rule, ORDER, what, ops);
    }

    fn contract(&mut self, client: u32, rule: &'static str, what: String, ops: &[&Op]) {
        self.push(client, rule, CONTRACT, what, ops);
    }

    fn push(
        &mut self,
        client: u32,
        rule: &'static str,
        kind: &'static str,
        what: String,
        ops: &[&Op],
    ) {
        self.total += 1;
        if self.kept.len() < KEEP {
            self.kept.push(Violation {
                client,
                rule,
                kind,
                what,
                requests: ops.iter().map(|op| describe(op)).collect(),
            });
        }
    }
}

/// Checks `history` against the final `ledger`.
pub fn check(history: &[Op], ledger: &Ledger) -> Report {
    check_with(history, ledger, &HashSet::new())
}

/// As [`check`], where the ledger's rows with a description in `background` were there
/// before the run (no request of the history made them).
pub fn check_with(history: &[Op], ledger: &Ledger, background: &HashSet<String>) -> Report {
    check_refs(&history.iter().collect::<Vec<_>>(), ledger, background)
}

/// As [`check_with`], on the history's operations by reference (the black-box mode hands
/// over the clients it found an order for, without copying them).
pub fn check_refs(history: &[&Op], ledger: &Ledger, background: &HashSet<String>) -> Report {
    let mut found = Found {
        total: 0,
        kept: Vec::new(),
    };
    let mut by_desc: HashMap<&str, &Op> = HashMap::new();
    for &op in history {
        let Some(tx) = &op.tx else { continue };
        if by_desc.insert(tx.descricao.as_str(), op).is_some() {
            found.add(
                op.client,
                "a",
                format!(
                    "two requests carry descricao {:?}: their rows cannot be told apart",
                    tx.descricao
                ),
                &[op],
            );
        }
    }
    let mut rows: BTreeMap<u32, Vec<&Row>> = BTreeMap::new();
    for row in &ledger.transacoes {
        rows.entry(row.0).or_default().push(row);
    }
    let mut ops: BTreeMap<u32, Vec<&Op>> = BTreeMap::new();
    for &op in history {
        ops.entry(op.client).or_default().push(op);
    }
    let clients: BTreeMap<u32, (i64, i64)> = ledger
        .clientes
        .iter()
        .map(|&(id, limite, saldo)| (id, (limite, saldo)))
        .collect();
    for (&client, client_ops) in &ops {
        if !clients.contains_key(&client) {
            found.add(
                client,
                "a",
                "requests for a client the ledger does not have".into(),
                &client_ops[..1],
            );
        }
    }
    for (&client, &(limite, saldo)) in &clients {
        let mut client_rows = rows.remove(&client).unwrap_or_default();
        client_rows.sort_by_key(|r| r.1);
        let client_ops = ops.remove(&client).unwrap_or_default();
        Client::new(
            client,
            limite,
            &client_rows,
            &by_desc,
            background,
            &mut found,
        )
        .check(saldo, &client_ops, &mut found);
    }
    for (client, orphans) in rows {
        found.add(
            client,
            "a",
            format!(
                "{} stored rows of a client the ledger does not have",
                orphans.len()
            ),
            &[],
        );
    }

    let posts = history.iter().filter(|op| op.tx.is_some());
    let fates: Vec<Fate> = posts.clone().map(|op| op.fate()).collect();
    let mut report = Report {
        mode: "ledger",
        operations: history.len(),
        posts: fates.len(),
        statements: history.len() - fates.len(),
        applied: fates.iter().filter(|f| **f == Fate::Applied).count(),
        not_applied: fates.iter().filter(|f| **f == Fate::NotApplied).count(),
        unknown: fates.iter().filter(|f| **f == Fate::Unknown).count(),
        rows: ledger.transacoes.len(),
        verdict: "yes",
        strict_serializable: true,
        rules: RULES.to_vec(),
        violations_total: found.total,
        no_serial_order: 0,
        contract: 0,
        violations: found.kept,
        undecided: Vec::new(),
    };
    report.settle();
    report
}

/// One client's order (positions 1..=n; 0 is the empty prefix) and what is derived from it.
struct Client<'a> {
    id: u32,
    limite: i64,
    /// `sum[k]`: the balance after the first k transactions.
    sum: Vec<i64>,
    /// The request of the transaction at each position, when there is one.
    op_at: Vec<Option<&'a Op>>,
    /// The stored row at each position (1..=n at index p − 1).
    rows: Vec<&'a Row>,
    /// `invoked_max[k]`: the latest invocation among positions 1..=k, and where it is.
    invoked_max: Vec<(u64, usize)>,
    /// Acknowledged (200) transactions by completion: (completed, position), and the running
    /// maximum of the positions.
    acked: Vec<(u64, usize)>,
    acked_max: Vec<usize>,
    position: HashMap<&'a str, usize>,
    minima: SparseMin,
}

impl<'a> Client<'a> {
    fn new(
        id: u32,
        limite: i64,
        rows: &[&'a Row],
        by_desc: &HashMap<&'a str, &'a Op>,
        background: &HashSet<String>,
        found: &mut Found,
    ) -> Client<'a> {
        let n = rows.len();
        let mut sum = vec![0i64; n + 1];
        let mut op_at = vec![None; n + 1];
        let mut position = HashMap::with_capacity(n);
        for (i, (_, _, valor, tipo, descricao)) in rows.iter().map(|r| &**r).enumerate() {
            let p = i + 1;
            let delta = if tipo == "c" { *valor } else { -*valor };
            sum[p] = sum[p - 1] + delta;
            if let Some(first) = position.insert(descricao.as_str(), p) {
                found.add(
                    id,
                    "a",
                    format!("{descricao:?} is stored twice (positions {first} and {p})"),
                    &[],
                );
            }
            match by_desc.get(descricao.as_str()) {
                None if background.contains(descricao) => {}
                None => found.add(
                    id,
                    "a",
                    format!("row {p} ({tipo} {valor} {descricao:?}) was never requested"),
                    &[],
                ),
                Some(op) => {
                    let tx = op.tx.as_ref().expect("by_desc holds POSTs");
                    if op.client != id || tx.valor != *valor || tx.tipo != *tipo {
                        found.add(
                            id,
                            "a",
                            format!("row {p} ({tipo} {valor}) is not what its request asked for"),
                            &[op],
                        );
                    }
                    op_at[p] = Some(*op);
                }
            }
            if sum[p] < -limite {
                found.add(
                    id,
                    "e",
                    format!("saldo {} < -limite {limite} after position {p}", sum[p]),
                    op_at[p].as_slice(),
                );
            }
        }
        let mut invoked_max = vec![(0u64, 0usize); n + 1];
        for p in 1..=n {
            let invoked = op_at[p].map_or(0, |op| op.invoke_ns);
            invoked_max[p] = if invoked >= invoked_max[p - 1].0 {
                (invoked, p)
            } else {
                invoked_max[p - 1]
            };
        }
        let mut acked: Vec<(u64, usize)> = (1..=n)
            .filter_map(|p| {
                op_at[p]
                    .filter(|op| op.fate() == Fate::Applied)
                    .map(|op| (op.complete_ns, p))
            })
            .collect();
        acked.sort_unstable();
        let acked_max = acked
            .iter()
            .scan(0, |m, &(_, p)| {
                *m = p.max(*m);
                Some(*m)
            })
            .collect();
        let minima = SparseMin::new(&sum);
        Client {
            id,
            limite,
            sum,
            op_at,
            rows: rows.to_vec(),
            invoked_max,
            acked,
            acked_max,
            position,
            minima,
        }
    }

    fn n(&self) -> usize {
        self.sum.len() - 1
    }

    /// The smallest prefix a request invoked at `t` may see: it holds every transaction
    /// acknowledged before `t`. (Its position, and the request that set it.)
    fn lower_bound(&self, t: u64) -> (usize, Option<&'a Op>) {
        let i = self.acked.partition_point(|&(c, _)| c < t);
        if i == 0 {
            return (0, None);
        }
        let p = self.acked_max[i - 1];
        (p, self.op_at[p])
    }

    /// The largest prefix a request completed at `t` may see: none of its transactions was
    /// invoked after `t` (an instant equal to `t` is concurrent, as everywhere: one operation
    /// precedes another only when it completed strictly before the other was invoked).
    fn upper_bound(&self, t: u64) -> usize {
        self.invoked_max
            .partition_point(|&(m, _)| m <= t)
            .saturating_sub(1)
    }

    /// The first prefix in `lo..=hi` whose balance is below `threshold`.
    fn first_below(&self, lo: usize, hi: usize, threshold: i64) -> Option<usize> {
        if self.minima.min(lo, hi) >= threshold {
            return None;
        }
        let (mut a, mut b) = (lo, hi);
        while a < b {
            let m = (a + b) / 2;
            if self.minima.min(lo, m) < threshold {
                b = m;
            } else {
                a = m + 1;
            }
        }
        Some(a)
    }

    fn check(&self, saldo: i64, ops: &[&'a Op], found: &mut Found) {
        let (id, n) = (self.id, self.n());
        if self.sum[n] != saldo {
            found.add(
                id,
                "e",
                format!(
                    "final saldo {saldo} is not the sum of the stored transactions, {}",
                    self.sum[n]
                ),
                &[],
            );
        }
        // (c) Real time: no transaction completed (200) before another was invoked, yet
        // stands after it. A suffix minimum of completions finds the earliest one after p.
        let mut later: (u64, usize) = (u64::MAX, 0);
        for p in (1..=n).rev() {
            let Some(op) = self.op_at[p] else { continue };
            if later.0 < op.invoke_ns {
                let earlier = self.op_at[later.1].expect("acknowledged rows have requests");
                found.add(
                    id,
                    "c",
                    format!("position {} was acknowledged before position {p} was invoked, yet comes after it", later.1),
                    &[earlier, op],
                );
            }
            if op.fate() == Fate::Applied && op.complete_ns < later.0 {
                later = (op.complete_ns, p);
            }
        }
        // The reads (statements, refusals) each see the order at one point. Real time
        // orders them among themselves too: a read invoked after another completed sees no
        // earlier point than that one did. Each is given the earliest point it can have, in
        // order of invocation (that leaves the most room to the reads after it).
        let mut reads: Vec<&'a Op> = Vec::new();
        for op in ops {
            match &op.tx {
                Some(tx) => {
                    self.check_post(op, found);
                    if op.fate() == Fate::NotApplied
                        && op.status == 422
                        && !self.position.contains_key(tx.descricao.as_str())
                    {
                        reads.push(op);
                    }
                }
                None if op.status == 200 => reads.push(op),
                None => {}
            }
        }
        reads.sort_by_key(|op| (op.invoke_ns, op.complete_ns));
        let mut answered: std::collections::BinaryHeap<std::cmp::Reverse<(u64, usize, usize)>> =
            std::collections::BinaryHeap::new();
        let mut floor: (usize, Option<&'a Op>) = (0, None);
        for (r, op) in reads.iter().enumerate() {
            while answered
                .peek()
                .is_some_and(|std::cmp::Reverse((c, _, _))| *c < op.invoke_ns)
            {
                let std::cmp::Reverse((_, point, by)) = answered.pop().expect("peeked");
                if point > floor.0 || floor.1.is_none() {
                    floor = (point, Some(reads[by]));
                }
            }
            let point = match &op.tx {
                Some(_) => self.check_refusal(op, floor, found),
                None => self.check_statement(op, floor, found),
            };
            if let Some(point) = point {
                answered.push(std::cmp::Reverse((op.complete_ns, point, r)));
            }
        }
    }

    fn check_post(&self, op: &'a Op, found: &mut Found) {
        let tx = op.tx.as_ref().expect("a POST");
        let at = self.position.get(tx.descricao.as_str()).copied();
        if let Some(i) = history::replay_of_refused(&op.attempts) {
            found.add(
                self.id,
                "a",
                format!(
                    "attempt {} was a replay, but every attempt before it was told \"not applied\"",
                    i + 1
                ),
                &[op],
            );
        }
        match (op.fate(), at) {
            (Fate::Applied, None) => found.add(
                self.id,
                "a",
                "acknowledged (200) but not stored".into(),
                &[op],
            ),
            (Fate::Applied, Some(p)) => {
                let body = op.body.as_ref();
                let saldo = body.and_then(|b| b["saldo"].as_i64());
                let limite = body.and_then(|b| b["limite"].as_i64());
                if saldo != Some(self.sum[p]) || limite != Some(self.limite) {
                    found.add(
                        self.id,
                        "b",
                        format!(
                            "answered saldo {saldo:?} limite {limite:?}; at its position {p} the order gives saldo {} limite {}",
                            self.sum[p], self.limite
                        ),
                        &[op],
                    );
                }
            }
            (Fate::NotApplied, Some(p)) => found.add(
                self.id,
                "a",
                format!(
                    "told \"not applied\" ({}) but stored at position {p}",
                    op.status
                ),
                &[op],
            ),
            (Fate::NotApplied, None) | (Fate::Unknown, _) => {}
        }
    }

    /// A 422 is explained when, at some prefix inside its real-time window (and no earlier
    /// than `floor`, what a read answered before it was invoked saw), the debit did not fit.
    /// The point it is given, when it has one.
    fn check_refusal(
        &self,
        op: &'a Op,
        floor: (usize, Option<&'a Op>),
        found: &mut Found,
    ) -> Option<usize> {
        let tx = op.tx.as_ref().expect("a POST");
        let (lo, set_by) = self.lower_bound(op.invoke_ns);
        let (lo, set_by) = if floor.1.is_some() && floor.0 > lo {
            floor
        } else {
            (lo, set_by)
        };
        let hi = self.upper_bound(op.complete_ns);
        // sum[p] - valor < -limite
        let threshold = tx.valor - self.limite;
        if tx.tipo != "d" {
            found.contract(
                self.id,
                "refusal",
                "a credit refused with 422".into(),
                &[op],
            );
            return None;
        }
        if lo <= hi {
            if let Some(p) = self.first_below(lo, hi, threshold) {
                return Some(p);
            }
            if let Some(p) = self.first_below(lo, hi, threshold + 1) {
                found.contract(
                    self.id,
                    "refusal",
                    format!(
                        "refused as over the limit, but the debit of {} ends on exactly -limite ({}) at prefix {p}: it fits",
                        tx.valor, -self.limite
                    ),
                    &[op],
                );
                return Some(p);
            }
        }
        if lo > hi {
            let mut involved = vec![op];
            involved.extend(set_by);
            found.add(
                self.id,
                "c",
                format!("no point of the order fits its real-time window (prefix {lo}..={hi})"),
                &involved,
            );
        } else {
            found.add(
                self.id,
                "refusal",
                format!(
                    "refused as over the limit, but the debit fit at every prefix {lo}..={hi} of its window (lowest saldo {})",
                    self.minima.min(lo, hi)
                ),
                &[op],
            );
        }
        None
    }

    /// Checks a statement; the point it shows, when it names one.
    fn check_statement(
        &self,
        op: &'a Op,
        floor: (usize, Option<&'a Op>),
        found: &mut Found,
    ) -> Option<usize> {
        let id = self.id;
        let body = op.body.as_ref();
        let total = body.and_then(|b| b["saldo"]["total"].as_i64());
        let limite = body.and_then(|b| b["saldo"]["limite"].as_i64());
        let list = body.and_then(|b| b["ultimas_transacoes"].as_array());
        let (Some(total), Some(limite), Some(list)) = (total, limite, list) else {
            found.contract(
                id,
                "d",
                "the statement is not the contract's JSON".into(),
                &[op],
            );
            return None;
        };
        if limite != self.limite {
            found.contract(
                id,
                "d",
                format!("saldo.limite {limite}, the client's is {}", self.limite),
                &[op],
            );
        }
        // The prefix it shows ends at its newest transaction.
        let k = match list.first() {
            None => 0,
            Some(newest) => match newest["descricao"]
                .as_str()
                .and_then(|d| self.position.get(d))
            {
                Some(&p) => p,
                None => {
                    found.add(
                        id,
                        "d",
                        format!(
                            "lists {} that the ledger does not hold",
                            newest["descricao"]
                        ),
                        &[op],
                    );
                    return None;
                }
            },
        };
        if total != self.sum[k] {
            found.add(id, "d", format!("saldo.total {total}, but the prefix ending at its newest transaction (position {k}) sums to {}", self.sum[k]), &[op]);
        }
        let expected = k.min(10);
        if list.len() != expected {
            found.add(
                id,
                "d",
                format!(
                    "{} transactions listed; the prefix of {k} has {expected} newest",
                    list.len()
                ),
                &[op],
            );
        }
        let mut previous: Option<(&str, i128)> = None;
        for (j, entry) in list.iter().enumerate().take(expected) {
            let p = k - j;
            let row_op = self.op_at[p];
            let shown = (
                entry["valor"].as_i64(),
                entry["tipo"].as_str(),
                entry["descricao"].as_str(),
            );
            let matches = match row_op.and_then(|o| o.tx.as_ref()) {
                Some(tx) => {
                    shown
                        == (
                            Some(tx.valor),
                            Some(tx.tipo.as_str()),
                            Some(tx.descricao.as_str()),
                        )
                }
                // A row from before the run (no request made it): the row itself.
                None => {
                    let (_, _, valor, tipo, descricao) = self.rows[p - 1];
                    shown == (Some(*valor), Some(tipo.as_str()), Some(descricao.as_str()))
                }
            };
            if !matches {
                found.add(
                    id,
                    "d",
                    format!(
                        "ultimas_transacoes[{j}] is {entry}, position {p} of the order is not that"
                    ),
                    &[op],
                );
            }
            let Some(at) = entry["realizada_em"].as_str() else {
                continue;
            };
            let Some(instant) = rfc3339::parse(at) else {
                found.contract(
                    id,
                    "d",
                    format!("ultimas_transacoes[{j}].realizada_em {at:?} is not RFC 3339"),
                    &[op],
                );
                continue;
            };
            if let Some((prev, before)) = previous
                && instant > before
            {
                found.contract(
                    id,
                    "d",
                    format!("realizada_em increases at ultimas_transacoes[{j}]: {at} after {prev}"),
                    &[op],
                );
            }
            previous = Some((at, instant));
        }
        let (lo, set_by) = self.lower_bound(op.invoke_ns);
        if k < lo {
            let mut involved = vec![op];
            involved.extend(set_by);
            found.add(id, "d", format!("stale: shows {k} transactions, misses position {lo}, acknowledged before it was asked for"), &involved);
        } else if let (point, Some(earlier)) = floor
            && k < point
        {
            found.add(
                id,
                "d",
                format!("stale: shows {k} transactions, but a read answered before it was asked for saw {point}"),
                &[op, earlier],
            );
        }
        let (invoked, at) = self.invoked_max[k];
        if k > 0 && invoked > op.complete_ns {
            let mut involved = vec![op];
            involved.extend(self.op_at[at]);
            found.add(
                id,
                "d",
                format!("shows position {at}, invoked after the statement completed"),
                &involved,
            );
        }
        Some(k)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::history::fixtures::{LIMIT, post, statement};

    /// The ledger: client 1 (limit 1000) with these rows in order, its saldo their sum.
    fn ledger(rows: &[(&str, i64, &str)]) -> Ledger {
        let saldo = rows
            .iter()
            .map(|(t, v, _)| if *t == "c" { *v } else { -v })
            .sum();
        Ledger {
            clientes: vec![(1, LIMIT, saldo)],
            transacoes: rows
                .iter()
                .enumerate()
                .map(|(i, (t, v, d))| (1, i as i64 + 1, *v, t.to_string(), d.to_string()))
                .collect(),
        }
    }

    /// A history every rule explains: two overlapping credits stored in either order, a debit,
    /// a refusal, an unknown outcome stored and one not, a 503 not stored, statements.
    fn good() -> (Vec<Op>, Ledger) {
        let history = vec![
            post("c", 100, "a", 0, 10, 200, Some(150)),
            post("c", 50, "b", 1, 5, 200, Some(50)),
            statement(11, 12, 150, &[("c", 100, "a"), ("c", 50, "b")]),
            post("d", 1100, "c", 13, 15, 200, Some(-950)),
            post("d", 100, "x", 16, 17, 422, None),
            post("c", 7, "u", 18, 30, 504, None),
            post("c", 9, "v", 18, 30, 0, None),
            post("c", 3, "n", 19, 20, 503, None),
            statement(
                31,
                32,
                -943,
                &[
                    ("c", 7, "u"),
                    ("d", 1100, "c"),
                    ("c", 100, "a"),
                    ("c", 50, "b"),
                ],
            ),
        ];
        (
            history,
            ledger(&[
                ("c", 50, "b"),
                ("c", 100, "a"),
                ("d", 1100, "c"),
                ("c", 7, "u"),
            ]),
        )
    }

    fn rules(history: &[Op], ledger: &Ledger) -> Vec<&'static str> {
        let r = check(history, ledger);
        assert_eq!(r.strict_serializable, r.violations.is_empty());
        r.violations.iter().map(|v| v.rule).collect()
    }

    #[test]
    fn a_history_the_order_explains_passes() {
        let (h, l) = good();
        let r = check(&h, &l);
        assert!(r.strict_serializable, "{:#?}", r.violations);
        assert_eq!(
            (
                r.operations,
                r.posts,
                r.statements,
                r.applied,
                r.not_applied,
                r.unknown
            ),
            (9, 7, 2, 3, 2, 2)
        );
        assert_eq!(r.line(), "history: 9 operations, strict serializable: yes");
    }

    #[test]
    fn an_acknowledged_transaction_lost_is_caught() {
        let (h, _) = good();
        let l = ledger(&[("c", 50, "b"), ("d", 1100, "c"), ("c", 7, "u")]);
        assert!(rules(&h, &l).contains(&"a"));
    }

    #[test]
    fn a_refused_transaction_stored_is_caught() {
        let (mut h, l) = good();
        h[7].status = 503; // "n" is stored below
        let l2 = ledger(&[
            ("c", 50, "b"),
            ("c", 100, "a"),
            ("d", 1100, "c"),
            ("c", 7, "u"),
            ("c", 3, "n"),
        ]);
        assert!(rules(&h, &l2).contains(&"a"), "503 stored");
        assert!(rules(&h, &l).is_empty());
        // A 503 that ended the retries of an attempt answered 504 says nothing of that
        // attempt: the POST is unknown, and stored or not, both ledgers are explained.
        h[7].unknown = true;
        assert_eq!(h[7].fate(), Fate::Unknown);
        assert!(rules(&h, &l2).is_empty(), "{:?}", rules(&h, &l2));
        assert!(rules(&h, &l).is_empty());
    }

    fn attempt(status: u16, replayed: bool) -> history::Attempt {
        history::Attempt {
            sent_ns: 0,
            took_ns: 0,
            status,
            replayed,
        }
    }

    #[test]
    fn a_replay_after_nothing_but_refusals_is_caught_and_after_an_ambiguous_attempt_is_not() {
        // "a" (stored, answered 200) was in fact retried: 503, 504, then a replay.
        let (mut h, l) = good();
        h[0].attempts = vec![attempt(503, false), attempt(504, false), attempt(200, true)];
        assert!(rules(&h, &l).is_empty(), "{:?}", check(&h, &l).violations);
        // 503, 503, replay: the store says a 503 attempt stored it.
        h[0].attempts = vec![attempt(503, false), attempt(503, false), attempt(200, true)];
        let r = check(&h, &l);
        assert_eq!(rules(&h, &l), ["a"]);
        assert!(r.violations[0].what.contains("attempt 3 was a replay"));
        assert!(
            r.violations[0].requests[0].contains("(attempts: 503 at 0.000000 s, 503 at"),
            "{:?}",
            r.violations[0].requests
        );
    }

    #[test]
    fn a_transaction_stored_twice_or_never_requested_is_caught() {
        let (h, _) = good();
        let twice = ledger(&[
            ("c", 50, "b"),
            ("c", 100, "a"),
            ("c", 100, "a"),
            ("d", 1100, "c"),
            ("c", 7, "u"),
        ]);
        assert!(rules(&h, &twice).contains(&"a"));
        let phantom = ledger(&[
            ("c", 50, "b"),
            ("c", 100, "a"),
            ("d", 1100, "c"),
            ("c", 7, "u"),
            ("c", 1, "zz"),
        ]);
        assert!(rules(&h, &phantom).contains(&"a"));
    }

    #[test]
    fn a_post_answered_with_a_balance_no_prefix_has_is_caught() {
        let (mut h, l) = good();
        h[3].body = Some(json!({"limite": LIMIT, "saldo": -900}));
        assert_eq!(rules(&h, &l), ["b"]);
    }

    #[test]
    fn an_order_against_real_time_is_caught() {
        // "b" was acknowledged (at 5 ms) before "c" was invoked (13 ms), but the ledger has
        // "c" first.
        let (h, _) = good();
        let l = ledger(&[
            ("d", 1100, "c"),
            ("c", 50, "b"),
            ("c", 100, "a"),
            ("c", 7, "u"),
        ]);
        let r = rules(&h, &l);
        assert!(r.contains(&"c"), "{r:?}");
    }

    #[test]
    fn a_stale_statement_is_caught() {
        // Asked for at 16 ms, after "c" was acknowledged at 15 ms, it shows the prefix before "c".
        let (mut h, l) = good();
        h.push(statement(16, 17, 150, &[("c", 100, "a"), ("c", 50, "b")]));
        assert_eq!(rules(&h, &l), ["d"]);
    }

    #[test]
    fn a_statement_from_the_future_is_caught() {
        // Completed at 12 ms, it shows "c", invoked at 13 ms.
        let (mut h, l) = good();
        h[2] = statement(
            11,
            12,
            -950,
            &[("d", 1100, "c"), ("c", 100, "a"), ("c", 50, "b")],
        );
        assert_eq!(rules(&h, &l), ["d"]);
    }

    #[test]
    fn a_statement_that_is_no_prefix_is_caught() {
        let (mut h, l) = good();
        // Wrong total for the prefix it lists.
        h[8] = statement(
            31,
            32,
            -900,
            &[
                ("c", 7, "u"),
                ("d", 1100, "c"),
                ("c", 100, "a"),
                ("c", 50, "b"),
            ],
        );
        assert_eq!(rules(&h, &l), ["d"]);
        // A transaction missing from the middle of the list.
        h[8] = statement(
            31,
            32,
            -943,
            &[("c", 7, "u"), ("c", 100, "a"), ("c", 50, "b")],
        );
        assert!(rules(&h, &l).iter().all(|r| *r == "d") && !rules(&h, &l).is_empty());
        // Times that increase.
        let mut s = statement(
            31,
            32,
            -943,
            &[
                ("c", 7, "u"),
                ("d", 1100, "c"),
                ("c", 100, "a"),
                ("c", 50, "b"),
            ],
        );
        s.body.as_mut().unwrap()["ultimas_transacoes"][1]["realizada_em"] =
            json!("2027-01-01T00:00:00.000000Z");
        h[8] = s;
        assert_eq!(rules(&h, &l), ["d"]);
    }

    #[test]
    fn two_instances_disagreeing_about_the_newest_transaction_are_caught() {
        // Two statements at once after "c" was acknowledged: one shows "c" newest, the
        // other the prefix without it.
        let (mut h, l) = good();
        h.push(statement(
            16,
            17,
            -950,
            &[("d", 1100, "c"), ("c", 100, "a"), ("c", 50, "b")],
        ));
        h.push(statement(16, 17, 150, &[("c", 100, "a"), ("c", 50, "b")]));
        assert_eq!(rules(&h, &l), ["d"]);
    }

    /// The violations' (rule, text), for asserting exactly which rule fired and why.
    fn found(history: &[Op], ledger: &Ledger) -> Vec<(&'static str, String)> {
        check(history, ledger)
            .violations
            .into_iter()
            .map(|v| (v.rule, v.what))
            .collect()
    }

    fn only(history: &[Op], ledger: &Ledger, rule: &str, text: &str) {
        let f = found(history, ledger);
        assert!(
            !f.is_empty() && f.iter().all(|(r, w)| *r == rule && w.contains(text)),
            "expected only rule {rule} ({text:?}): {f:?}"
        );
    }

    #[test]
    fn two_requests_with_one_descricao_are_caught() {
        // Reported first; the rows then cannot be matched to their requests, and the rules
        // that follow from that fire too.
        let (mut h, l) = good();
        h.push(post("c", 3, "a", 40, 41, 503, None));
        let f = found(&h, &l);
        assert_eq!(f[0].0, "a");
        assert!(
            f[0].1.contains("two requests carry descricao \"a\""),
            "{f:?}"
        );
        assert!(rules(&good().0, &l).is_empty());
    }

    #[test]
    fn requests_or_rows_of_a_client_the_ledger_lacks_are_caught() {
        let (mut h, l) = good();
        let mut stranger = post("c", 3, "s", 40, 41, 503, None);
        stranger.client = 9;
        h.push(stranger);
        only(
            &h,
            &l,
            "a",
            "requests for a client the ledger does not have",
        );
        let (h, mut l) = good();
        l.transacoes.push((9, 1, 3, "c".into(), "s".into()));
        let f = found(&h, &l);
        assert!(
            f.iter().any(|(r, w)| *r == "a"
                && w.contains("stored rows of a client the ledger does not have")),
            "{f:?}"
        );
    }

    #[test]
    fn a_stored_row_unlike_its_request_is_caught() {
        let (h, mut l) = good();
        // "a" was a credit of 100; the row says 101 (the saldo follows the rows).
        l.transacoes[1].2 = 101;
        l.clientes[0].2 += 1;
        let f = found(&h, &l);
        assert!(
            f.iter()
                .any(|(r, w)| *r == "a" && w.contains("is not what its request asked for")),
            "{f:?}"
        );
        assert!(
            f.iter().all(|(r, _)| *r == "a" || *r == "b" || *r == "d"),
            "{f:?}"
        );
    }

    #[test]
    fn a_credit_refused_with_422_is_caught() {
        let (mut h, l) = good();
        h.push(post("c", 5, "r", 40, 41, 422, None));
        only(&h, &l, "refusal", "a credit refused with 422");
    }

    #[test]
    fn a_refusal_no_point_of_the_order_explains_is_caught() {
        // Stored as [y, x]: x was acknowledged (5 ms) before the refusal was invoked (10 ms),
        // so the refusal saw at least position 2; y, at position 1, was invoked (12 ms) after
        // the refusal completed (11 ms), so it saw position 0 at most.
        let h = vec![
            post("c", 100, "x", 0, 5, 200, Some(150)),
            post("d", 5000, "r", 10, 11, 422, None),
            post("c", 50, "y", 12, 13, 200, Some(50)),
        ];
        let l = ledger(&[("c", 50, "y"), ("c", 100, "x")]);
        let f = found(&h, &l);
        assert!(f.iter().all(|(r, _)| *r == "c"), "{f:?}");
        assert!(
            f.iter()
                .any(|(_, w)| w.contains("no point of the order fits its real-time window")),
            "{f:?}"
        );
    }

    #[test]
    fn a_statement_that_is_not_the_contracts_json_is_caught() {
        let (mut h, l) = good();
        h[8].body = Some(json!({"saldo": -943, "ultimas_transacoes": []}));
        only(&h, &l, "d", "not the contract's JSON");
        h[8].body = None;
        only(&h, &l, "d", "not the contract's JSON");
    }

    #[test]
    fn a_statement_with_another_limit_is_caught() {
        let (mut h, l) = good();
        h[8].body.as_mut().unwrap()["saldo"]["limite"] = json!(LIMIT + 1);
        only(&h, &l, "d", "saldo.limite 1001, the client's is 1000");
    }

    #[test]
    fn a_statement_listing_a_transaction_the_ledger_lacks_is_caught() {
        let (mut h, l) = good();
        h[8].body.as_mut().unwrap()["ultimas_transacoes"][0]["descricao"] = json!("ghost");
        only(&h, &l, "d", "that the ledger does not hold");
    }

    #[test]
    fn a_balance_below_the_limit_is_caught() {
        let h = vec![post("d", 1001, "a", 0, 1, 200, Some(-1001))];
        let r = rules(&h, &ledger(&[("d", 1001, "a")]));
        assert!(r.contains(&"e"), "{r:?}");
    }

    #[test]
    fn an_unexplained_refusal_is_caught() {
        // Refused while the balance was 150 at every point of its window: 100 fits.
        let (mut h, l) = good();
        h[4] = post("d", 100, "x", 11, 12, 422, None);
        assert_eq!(rules(&h, &l), ["refusal"]);
    }

    #[test]
    fn the_final_balance_must_be_the_sum() {
        let (h, mut l) = good();
        l.clientes[0].2 += 1;
        assert_eq!(rules(&h, &l), ["e"]);
    }

    #[test]
    fn range_minima() {
        let v = [5, 3, 8, -2, 7, 7, 0, 9];
        let s = SparseMin::new(&v);
        for lo in 0..v.len() {
            for hi in lo..v.len() {
                assert_eq!(
                    s.min(lo, hi),
                    *v[lo..=hi].iter().min().unwrap(),
                    "{lo}..={hi}"
                );
            }
        }
    }
}
