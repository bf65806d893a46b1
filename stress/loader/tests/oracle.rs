//! The checker against an exhaustive oracle, on histories of simulated servers.
//!
//! The oracle tries, for one client, every subset of the unknown POSTs applied and every
//! order of the operations real time allows, checking each answer where it stands: no cache,
//! no reduction, nothing of the checker's. Small histories only (up to eight POSTs and three
//! statements), which is where a search's corner cases are.
//!
//! The simulated server applies each request at a point of its window, one at a time;
//! releases answers the way group commit does (a batch answered together, after its last
//! member); applies an unknown outcome (504) or not; shows each statement the prefix at its
//! point. A wrong server is the same with one bug planted: a lost update, a stale statement, a
//! refused debit applied, a reordered statement, a transaction applied twice, the limit
//! broken. Whatever it made, the checker must agree with the oracle, in both modes: given the
//! server's rows (the ledger mode) and from the answers alone (the black-box mode). A
//! disagreement is shrunk by proptest to the smallest history that shows it.

use crebito_loader::history::{Ledger, Op, Tx};
use crebito_loader::{blackbox, check, rfc3339};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bug {
    None,
    LostUpdate,
    StaleStatement,
    RefusedApplied,
    Reordered,
    DoubleApplied,
    LimitBroken,
}

const BUGS: [Bug; 6] = [
    Bug::LostUpdate,
    Bug::StaleStatement,
    Bug::RefusedApplied,
    Bug::Reordered,
    Bug::DoubleApplied,
    Bug::LimitBroken,
];

#[derive(Debug, Clone)]
struct PostPlan {
    credit: bool,
    valor: i64,
    invoke: u64,
    /// When it is applied, after it was invoked.
    apply: u64,
    /// When its answer comes, after its batch was released (or after it was invoked, for a
    /// 503 or a 504).
    answer: u64,
    /// 0..=6 answered, 7 a 504 applied, 8 a 504 not applied, 9 a 503.
    fate: u8,
    /// Its batch ends with it.
    cut: bool,
}

#[derive(Debug, Clone)]
struct ReadPlan {
    invoke: u64,
    at: u64,
    answer: u64,
}

#[derive(Debug, Clone)]
struct Plan {
    limite: i64,
    posts: Vec<PostPlan>,
    reads: Vec<ReadPlan>,
    bug: Bug,
    /// Which of the eligible operations gets the bug.
    target: usize,
    /// Transactions made before the run (credit?, valor): the server is not fresh, the
    /// bracket's first statement says where each client starts.
    before: Vec<(bool, i64)>,
}

fn post_plan() -> impl Strategy<Value = PostPlan> {
    (
        any::<bool>(),
        1i64..=120,
        0u64..30,
        0u64..6,
        0u64..6,
        0u8..10,
        any::<bool>(),
    )
        .prop_map(
            |(credit, valor, invoke, apply, answer, fate, cut)| PostPlan {
                credit,
                valor,
                invoke,
                apply,
                answer,
                fate,
                cut,
            },
        )
}

fn read_plan() -> impl Strategy<Value = ReadPlan> {
    (0u64..34, 0u64..4, 0u64..4).prop_map(|(invoke, at, answer)| ReadPlan { invoke, at, answer })
}

fn plan(bug: impl Strategy<Value = Bug>) -> impl Strategy<Value = Plan> {
    (
        prop_oneof![Just(0i64), Just(50), Just(100)],
        proptest::collection::vec(post_plan(), 1..=8),
        proptest::collection::vec(read_plan(), 0..=3),
        bug,
        0usize..8,
        prop_oneof![
            3 => Just(Vec::new()),
            1 => proptest::collection::vec((any::<bool>(), 1i64..=120), 1..=12),
        ],
    )
        .prop_map(|(limite, posts, reads, bug, target, before)| Plan {
            limite,
            posts,
            reads,
            bug,
            target,
            before,
        })
}

fn any_server() -> impl Strategy<Value = Plan> {
    plan(prop_oneof![
        6 => Just(Bug::None),
        1 => Just(Bug::LostUpdate),
        1 => Just(Bug::StaleStatement),
        1 => Just(Bug::RefusedApplied),
        1 => Just(Bug::Reordered),
        1 => Just(Bug::DoubleApplied),
        1 => Just(Bug::LimitBroken),
    ])
}

/// `realizada_em` for the instant `ms` after the run's start, in one of the shapes servers
/// write: six digits and Z, trimmed zeros (as Go writes them), an offset.
fn realizada_em(ms: u64) -> String {
    let (s, frac) = (ms / 1000, ms % 1000);
    match ms % 3 {
        0 => format!("2024-01-17T02:34:{s:02}.{frac:03}000Z"),
        1 => {
            let f = format!("{frac:03}");
            let f = f.trim_end_matches('0');
            if f.is_empty() {
                format!("2024-01-17T02:34:{s:02}Z")
            } else {
                format!("2024-01-17T02:34:{s:02}.{f}Z")
            }
        }
        _ => format!("2024-01-16T23:34:{s:02}.{frac:03}-03:00"),
    }
}

/// A stored transaction: (valor, tipo, descricao, realizada_em).
type Row = (i64, String, String, String);

/// What the simulated server made: the history, the rows from before the run and its own,
/// and the final balance.
struct Made {
    history: Vec<Op>,
    before: Vec<Row>,
    rows: Vec<Row>,
    saldo: i64,
}

fn statement_body(rows: &[Row], saldo: i64, limite: i64) -> serde_json::Value {
    let list: Vec<_> = rows
        .iter()
        .rev()
        .take(10)
        .map(|(v, t, d, at)| json!({"valor": v, "tipo": t, "descricao": d, "realizada_em": at}))
        .collect();
    json!({"saldo": {"total": saldo, "limite": limite, "data_extrato": "x"}, "ultimas_transacoes": list})
}

fn simulate(p: &Plan) -> Made {
    const MS: u64 = 1_000_000;
    let limite = p.limite;
    // The events, in the order the server runs them: (point, is_read, index).
    let mut events: Vec<(u64, bool, usize)> = p
        .posts
        .iter()
        .enumerate()
        .filter(|(_, q)| q.fate != 8 && q.fate != 9)
        .map(|(i, q)| (q.invoke + q.apply, false, i))
        .chain(
            p.reads
                .iter()
                .enumerate()
                .map(|(i, r)| (r.invoke + r.at, true, i)),
        )
        .collect();
    events.sort();
    // What was there before the run (a debit that would break the limit was refused).
    let mut saldo = 0i64;
    let mut rows: Vec<Row> = Vec::new();
    for (k, &(credit, valor)) in p.before.iter().enumerate() {
        let delta = if credit { valor } else { -valor };
        if saldo + delta >= -limite {
            saldo += delta;
            let tipo = if credit { "c" } else { "d" };
            rows.push((
                valor,
                tipo.into(),
                format!("b{k}"),
                "2024-01-17T02:00:00Z".into(),
            ));
        }
    }
    let before = rows.clone();
    let start = (rows.clone(), saldo);
    // The state after each event, for a stale statement.
    let mut states: Vec<(Vec<Row>, i64)> = vec![start.clone()];
    let mut post_saldo: Vec<Option<i64>> = vec![None; p.posts.len()];
    let mut refused = vec![false; p.posts.len()];
    let mut read_body: Vec<serde_json::Value> = vec![json!(null); p.reads.len()];
    let (mut posts_seen, mut refusals_seen, mut reads_seen) = (0usize, 0usize, 0usize);
    for &(point, is_read, i) in &events {
        if is_read {
            let (mut shown, mut total) = (rows.clone(), saldo);
            if p.bug == Bug::StaleStatement && reads_seen == p.target % 3 {
                let back = states.len().saturating_sub(3);
                (shown, total) = states[back].clone();
            }
            let mut body = statement_body(&shown, total, limite);
            if p.bug == Bug::Reordered && reads_seen == p.target % 3 {
                let list = body["ultimas_transacoes"].as_array_mut().expect("a list");
                if list.len() >= 2 {
                    list.swap(0, 1);
                }
            }
            read_body[i] = body;
            reads_seen += 1;
        } else {
            let q = &p.posts[i];
            let (tipo, delta) = if q.credit {
                ("c", q.valor)
            } else {
                ("d", -q.valor)
            };
            let row = (
                q.valor,
                tipo.to_string(),
                format!("p{i}"),
                realizada_em(point),
            );
            if saldo + delta < -limite {
                let planted = refusals_seen == p.target % 2;
                refusals_seen += 1;
                match p.bug {
                    Bug::RefusedApplied if planted => {
                        saldo += delta;
                        rows.push(row);
                        refused[i] = true;
                    }
                    Bug::LimitBroken if planted => {
                        saldo += delta;
                        rows.push(row);
                        post_saldo[i] = Some(saldo);
                    }
                    _ => refused[i] = true,
                }
            } else {
                let planted = posts_seen == p.target;
                posts_seen += 1;
                match p.bug {
                    Bug::LostUpdate if planted && !rows.is_empty() => {
                        // Read before the previous transaction, written after it.
                        let (pv, pt, _, _) = rows.last().expect("a row");
                        let previous = if pt == "c" { *pv } else { -*pv };
                        saldo = saldo - previous + delta;
                    }
                    Bug::DoubleApplied if planted => {
                        saldo += delta;
                        rows.push(row.clone());
                        saldo += delta;
                    }
                    _ => saldo += delta,
                }
                rows.push(row);
                post_saldo[i] = Some(saldo);
            }
        }
        states.push((rows.clone(), saldo));
    }
    // Group commit: in the order they were applied, POSTs are released in batches, each
    // after its last member.
    let mut release = vec![0u64; p.posts.len()];
    let mut batch: Vec<usize> = Vec::new();
    let applied: Vec<(u64, usize)> = events
        .iter()
        .filter(|e| !e.1)
        .map(|&(point, _, i)| (point, i))
        .collect();
    for (k, &(point, i)) in applied.iter().enumerate() {
        batch.push(i);
        if p.posts[i].cut || k + 1 == applied.len() {
            for j in batch.drain(..) {
                release[j] = point;
            }
        }
    }
    // The bracket's first statement (crebito-loader --bracket), read before anything was
    // sent: the client's limit and starting balance. Every other instant is one later.
    let mut history = vec![Op {
        client: 1,
        invoke_ns: 0,
        complete_ns: 0,
        tx: None,
        status: 200,
        unknown: false,
        body: Some(statement_body(&start.0, start.1, limite)),
        attempts: Vec::new(),
    }];
    for (i, q) in p.posts.iter().enumerate() {
        let tx = Tx {
            tipo: if q.credit { "c" } else { "d" }.into(),
            valor: q.valor,
            descricao: format!("p{i}"),
        };
        let (status, complete, body) = match q.fate {
            7 | 8 => (504, q.invoke + q.answer, None),
            9 => (503, q.invoke + q.answer, None),
            _ if refused[i] => (422, release[i] + q.answer, None),
            _ => (
                200,
                release[i] + q.answer,
                post_saldo[i].map(|s| json!({"limite": limite, "saldo": s})),
            ),
        };
        history.push(Op {
            client: 1,
            invoke_ns: (q.invoke + 1) * MS,
            complete_ns: (complete + 1) * MS,
            tx: Some(tx),
            status,
            unknown: false,
            body,
            attempts: Vec::new(),
        });
    }
    for (i, r) in p.reads.iter().enumerate() {
        history.push(Op {
            client: 1,
            invoke_ns: (r.invoke + 1) * MS,
            complete_ns: (r.invoke + r.at + r.answer + 1) * MS,
            tx: None,
            status: 200,
            unknown: false,
            body: Some(read_body[i].clone()),
            attempts: Vec::new(),
        });
    }
    let rows = rows[before.len()..].to_vec();
    Made {
        history,
        before,
        rows,
        saldo,
    }
}

/// An operation, as the oracle sees it.
enum Item {
    /// A POST: its effect, its entry, the saldo it was answered (200), or none (unknown).
    Post {
        delta: i64,
        entry: (String, i64, String),
        saldo: Option<i64>,
    },
    Refusal {
        valor: i64,
    },
    Statement {
        total: i64,
        list: Vec<(String, i64, String)>,
    },
}

struct Oracle<'a> {
    limite: i64,
    /// Where the client starts: its balance and its transactions, oldest first.
    start: (i64, Vec<(String, i64, String)>),
    ops: Vec<(&'a Op, Item)>,
    /// The POSTs of the rows, in order (the ledger mode), as indices into `ops`.
    rows: Option<Vec<usize>>,
}

impl Oracle<'_> {
    /// Whether some order of `chosen` (a bit set of `ops`) explains every answer.
    fn explains(&self, chosen: u32) -> bool {
        let mut entries = self.start.1.clone();
        self.dfs(chosen, 0, self.start.0, &mut entries, 0)
    }

    fn dfs(
        &self,
        chosen: u32,
        placed: u32,
        balance: i64,
        entries: &mut Vec<(String, i64, String)>,
        next_row: usize,
    ) -> bool {
        if placed == chosen {
            return true;
        }
        'candidates: for x in 0..self.ops.len() {
            let bit = 1u32 << x;
            if chosen & bit == 0 || placed & bit != 0 {
                continue;
            }
            let (op, item) = &self.ops[x];
            // Real time: nothing that must come first (answered before it was invoked, its
            // outcome known) is still to place.
            for (y, (other, it)) in self.ops.iter().enumerate() {
                let unknown = matches!(it, Item::Post { saldo: None, .. });
                if y != x
                    && chosen & (1 << y) != 0
                    && placed & (1 << y) == 0
                    && !unknown
                    && other.complete_ns < op.invoke_ns
                {
                    continue 'candidates;
                }
            }
            match item {
                Item::Post {
                    delta,
                    saldo,
                    entry,
                } => {
                    let after = balance + delta;
                    if saldo.is_some_and(|s| s != after) || after < -self.limite {
                        continue;
                    }
                    let mut row = next_row;
                    if let Some(rows) = &self.rows {
                        if rows.get(next_row) != Some(&x) {
                            continue;
                        }
                        row += 1;
                    }
                    entries.push(entry.clone());
                    let ok = self.dfs(chosen, placed | bit, after, entries, row);
                    entries.pop();
                    if ok {
                        return true;
                    }
                }
                Item::Refusal { valor } => {
                    if balance - valor < -self.limite
                        && self.dfs(chosen, placed | bit, balance, entries, next_row)
                    {
                        return true;
                    }
                }
                Item::Statement { total, list } => {
                    let newest: Vec<&(String, i64, String)> =
                        entries.iter().rev().take(10).collect();
                    if *total == balance
                        && list.len() == newest.len()
                        && list.iter().zip(&newest).all(|(a, b)| a == *b)
                        && self.dfs(chosen, placed | bit, balance, entries, next_row)
                    {
                        return true;
                    }
                }
            }
        }
        false
    }
}

/// Whether one serial order of the client's operations, consistent with real time, explains
/// every answer (and, given the rows, is the rows' order); and the contract is kept.
fn oracle(h: &[Op], limite: i64, before: &[Row], ledger: Option<(&[Row], i64)>) -> bool {
    let start = (
        before
            .iter()
            .map(|(v, t, _, _)| if t == "c" { *v } else { -*v })
            .sum(),
        before
            .iter()
            .map(|(v, t, d, _)| (d.clone(), *v, t.clone()))
            .collect(),
    );
    let mut ops = Vec::new();
    let mut unknown = 0u32;
    for op in h {
        let item = match (&op.tx, op.status) {
            (Some(tx), 200) => Item::Post {
                delta: tx.delta(),
                entry: (tx.descricao.clone(), tx.valor, tx.tipo.clone()),
                saldo: Some(
                    op.body.as_ref().expect("a body")["saldo"]
                        .as_i64()
                        .expect("saldo"),
                ),
            },
            (Some(tx), 504) => {
                unknown |= 1 << ops.len();
                Item::Post {
                    delta: tx.delta(),
                    entry: (tx.descricao.clone(), tx.valor, tx.tipo.clone()),
                    saldo: None,
                }
            }
            (Some(tx), 422) if tx.tipo == "d" => Item::Refusal { valor: tx.valor },
            (Some(_), 422) => return false,
            (Some(_), _) => continue,
            (None, _) => {
                let body = op.body.as_ref().expect("a body");
                let entries = body["ultimas_transacoes"].as_array().expect("a list");
                // realizada_em never increases down the list.
                let times: Vec<i128> = entries
                    .iter()
                    .map(|e| {
                        rfc3339::parse(e["realizada_em"].as_str().expect("a time"))
                            .expect("RFC 3339")
                    })
                    .collect();
                if times.windows(2).any(|w| w[1] > w[0]) {
                    return false;
                }
                Item::Statement {
                    total: body["saldo"]["total"].as_i64().expect("a total"),
                    list: entries
                        .iter()
                        .map(|e| {
                            (
                                e["descricao"].as_str().expect("descricao").to_string(),
                                e["valor"].as_i64().expect("valor"),
                                e["tipo"].as_str().expect("tipo").to_string(),
                            )
                        })
                        .collect(),
                }
            }
        };
        ops.push((op, item));
    }
    let all = (1u32 << ops.len()) - 1;
    let definite = all & !unknown;
    match ledger {
        None => {
            let mut o = Oracle {
                limite,
                start,
                ops,
                rows: None,
            };
            o.rows = None;
            // Every subset of the unknown outcomes applied.
            let mut subset = unknown;
            loop {
                if o.explains(definite | subset) {
                    return true;
                }
                if subset == 0 {
                    return false;
                }
                subset = (subset - 1) & unknown;
            }
        }
        Some((rows, saldo)) => {
            let mut order = Vec::new();
            for (v, t, d, _) in rows {
                let found = ops.iter().position(|(op, item)| {
                    matches!(item, Item::Post { .. })
                        && op
                            .tx
                            .as_ref()
                            .is_some_and(|tx| tx.descricao == *d && tx.valor == *v && tx.tipo == *t)
                });
                match found {
                    Some(x) if !order.contains(&x) => order.push(x),
                    // A row no POST that may be applied asked for, or one stored twice.
                    _ => return false,
                }
            }
            let sum: i64 = rows
                .iter()
                .map(|(v, t, _, _)| if t == "c" { *v } else { -*v })
                .sum();
            if start.0 + sum != saldo {
                return false;
            }
            let stored: u32 = order.iter().map(|&x| 1u32 << x).sum();
            if definite & !stored & posts_bits(&ops) != 0 {
                return false; // an acknowledged POST not stored
            }
            let chosen = (definite & !posts_bits(&ops)) | stored;
            Oracle {
                limite,
                start,
                ops,
                rows: Some(order),
            }
            .explains(chosen)
        }
    }
}

fn posts_bits(ops: &[(&Op, Item)]) -> u32 {
    ops.iter()
        .enumerate()
        .filter(|(_, (_, item))| matches!(item, Item::Post { .. }))
        .map(|(x, _)| 1u32 << x)
        .sum()
}

/// The history, its rows as the ledger mode reads them, the oracle's and the checker's
/// verdicts in both modes.
fn judge(p: &Plan) -> Result<(), TestCaseError> {
    let made = simulate(p);
    let h = &made.history;
    let ledger = Ledger {
        clientes: vec![(1, p.limite, made.saldo)],
        transacoes: made
            .before
            .iter()
            .chain(&made.rows)
            .enumerate()
            .map(|(i, (v, t, d, _))| (1, i as i64 + 1, *v, t.clone(), d.clone()))
            .collect(),
    };
    let show = |r: &check::Report| {
        r.violations
            .iter()
            .map(|v| format!("({}) {}", v.rule, v.what))
            .collect::<Vec<_>>()
    };
    let expected = oracle(h, p.limite, &made.before, None);
    let r = blackbox::check(h);
    prop_assert_ne!(
        r.verdict,
        "undecided",
        "the search gave up on a small history"
    );
    prop_assert_eq!(
        r.strict_serializable,
        expected,
        "black-box: {:?}\nhistory: {:#?}",
        show(&r),
        h
    );
    let expected = oracle(h, p.limite, &made.before, Some((&made.rows, made.saldo)));
    // The rows from before the run are the ledger's too, made by no request of the history.
    let background = made.before.iter().map(|(_, _, d, _)| d.clone()).collect();
    let r = check::check_with(h, &ledger, &background);
    prop_assert_eq!(
        r.strict_serializable,
        expected,
        "ledger: {:?}\nrows: {:?}\nhistory: {:#?}",
        show(&r),
        made.rows,
        h
    );
    Ok(())
}

#[test]
fn the_checker_agrees_with_the_oracle_in_both_modes() {
    // ORACLE_CASES=N for a longer hunt (10 000 by default: a few seconds).
    let cases = std::env::var("ORACLE_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    if let Err(e) = runner.run(&any_server(), |p| judge(&p)) {
        panic!("{e}");
    }
}

/// The simulated servers are what they claim: the oracle passes every correct one, and
/// fails some of each wrong one (a bug is not always visible: a lost update of an unanswered
/// request, a statement stale by nothing).
#[test]
fn the_simulated_servers_are_correct_or_wrong_as_planted() {
    let mut runner = TestRunner::deterministic();
    let correct = plan(Just(Bug::None));
    for _ in 0..500 {
        let p = correct.new_tree(&mut runner).expect("a plan").current();
        let made = simulate(&p);
        assert!(
            oracle(&made.history, p.limite, &made.before, None),
            "{p:#?}"
        );
        assert!(
            oracle(
                &made.history,
                p.limite,
                &made.before,
                Some((&made.rows, made.saldo))
            ),
            "{p:#?}"
        );
    }
    for bug in BUGS {
        let wrong = plan(Just(bug));
        let caught = (0..500)
            .filter(|_| {
                let p = wrong.new_tree(&mut runner).expect("a plan").current();
                let made = simulate(&p);
                !oracle(
                    &made.history,
                    p.limite,
                    &made.before,
                    Some((&made.rows, made.saldo)),
                )
            })
            .count();
        assert!(caught > 25, "{bug:?}: only {caught} of 500 wrong");
    }
}
