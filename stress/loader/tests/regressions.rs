//! The three histories issue 34 found the checker wrong on, as JSONL files
//! (tests/histories/), checked in both modes: the black-box one (the order searched for) and
//! the ledger one (the order given, as the server's rows).

use std::path::Path;

use crebito_loader::history::{Ledger, Op};
use crebito_loader::{blackbox, check};

fn history(name: &str) -> Vec<Op> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/histories")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).expect("an operation"))
        .collect()
}

/// Client 1 (limite 100 000) with these rows in order, its saldo their sum.
fn ledger(rows: &[(&str, i64, &str)]) -> Ledger {
    let saldo = rows
        .iter()
        .map(|(t, v, _)| if *t == "c" { *v } else { -v })
        .sum();
    Ledger {
        clientes: vec![(1, 100_000, saldo)],
        transacoes: rows
            .iter()
            .enumerate()
            .map(|(i, (t, v, d))| (1, i as i64 + 1, *v, t.to_string(), d.to_string()))
            .collect(),
    }
}

fn found(r: &check::Report) -> Vec<String> {
    r.violations
        .iter()
        .map(|v| format!("({}) {}", v.rule, v.what))
        .collect()
}

/// Answers released together (group commit): a, b, the statement, x, y explains every answer;
/// a walk that tries x, y first and never comes back said no.
#[test]
fn answers_released_together_are_explained() {
    let h = history("1-released-together.jsonl");
    let r = blackbox::check(&h);
    assert!(r.strict_serializable, "{:#?}", found(&r));
    let l = ledger(&[
        ("c", 100, "a"),
        ("d", 100, "b"),
        ("c", 50, "x"),
        ("d", 50, "y"),
    ]);
    let r = check::check(&h, &l);
    assert!(r.strict_serializable, "{:#?}", found(&r));
}

/// A statement read after another finished has lost what that one showed: a stale replica.
#[test]
fn a_statement_older_than_one_answered_before_it_is_stale() {
    let h = history("2-stale-after-a-statement.jsonl");
    for r in [
        blackbox::check(&h),
        check::check(&h, &ledger(&[("c", 100, "a"), ("c", 5, "u")])),
    ] {
        assert!(!r.strict_serializable, "{} passed", r.mode);
        let f = found(&r);
        assert!(
            f.iter()
                .any(|v| v.starts_with("(d)") && v.contains("stale")),
            "{}: {f:#?}",
            r.mode
        );
    }
    // Without the second statement, nothing is wrong.
    let r = blackbox::check(&h[..3]);
    assert!(r.strict_serializable, "{:#?}", found(&r));
}

/// Two unanswered credits bridge two hops: a, u1, u2, b.
#[test]
fn unknown_outcomes_bridge_any_number_of_hops() {
    let h = history("3-two-unknown-hops.jsonl");
    let r = blackbox::check(&h);
    assert!(r.strict_serializable, "{:#?}", found(&r));
    let l = ledger(&[
        ("c", 100, "a"),
        ("c", 5, "u1"),
        ("c", 7, "u2"),
        ("d", 10, "b"),
    ]);
    let r = check::check(&h, &l);
    assert!(r.strict_serializable, "{:#?}", found(&r));
}

fn op(invoke_ns: u64, complete_ns: u64, tx: Option<(&str, i64, &str)>, status: u16) -> Op {
    Op {
        client: 1,
        invoke_ns,
        complete_ns,
        tx: tx.map(|(tipo, valor, d)| crebito_loader::history::Tx {
            tipo: tipo.into(),
            valor,
            descricao: d.into(),
        }),
        status,
        unknown: false,
        body: None,
        attempts: Vec::new(),
    }
}

/// A statement with no transactions listed (or a bracket's first one).
fn empty_statement(invoke_ns: u64, complete_ns: u64, total: i64) -> Op {
    let mut s = op(invoke_ns, complete_ns, None, 200);
    s.body = Some(
        serde_json::json!({"saldo": {"total": total, "limite": 100_000, "data_extrato": "x"}, "ultimas_transacoes": []}),
    );
    s
}

fn acked(invoke_ns: u64, complete_ns: u64, tx: (&str, i64, &str), saldo: i64) -> Op {
    let mut o = op(invoke_ns, complete_ns, Some(tx), 200);
    o.body = Some(serde_json::json!({"limite": 100_000, "saldo": saldo}));
    o
}

/// A thousand unanswered credits of one amount are interchangeable: k of them applied is one
/// state, not k! orders, and the search ends with a verdict either way.
#[test]
fn a_thousand_unknowns_of_one_amount_end_with_a_verdict() {
    let names: Vec<String> = (0..1000).map(|i| format!("u{i}")).collect();
    let mut h = vec![empty_statement(0, 0, 0)];
    h.extend(names.iter().map(|d| op(1, 10, Some(("c", 1, d)), 504)));
    // A debit that started from 700: seven hundred of them applied.
    h.push(acked(20, 21, ("d", 1, "z"), 699));
    let r = blackbox::check(&h);
    assert_eq!(r.verdict, "yes", "{:#?}", found(&r));
    // A total no subset reaches (1500, with nothing listed): no order.
    h.pop();
    h.push(empty_statement(20, 21, 1500));
    let r = blackbox::check(&h);
    assert_eq!(r.verdict, "no", "{:#?}", found(&r));
    assert_eq!(r.exit_code(), 1);
}

/// Forty unanswered credits of distinct even amounts, and a debit that started from an odd
/// balance: every subset would be tried. Past its budget the search says so: undecided, exit
/// code 2, neither passed nor a violation.
#[test]
fn a_search_past_its_budget_is_undecided() {
    let names: Vec<String> = (0..40).map(|i| format!("u{i}")).collect();
    let mut h = vec![empty_statement(0, 0, 0)];
    h.extend(
        names
            .iter()
            .enumerate()
            .map(|(i, d)| op(1, 10, Some(("c", 2 * (i as i64 + 1), d)), 504)),
    );
    h.push(acked(20, 21, ("d", 1, "z"), 0));
    let r = blackbox::check_within(&h, 200_000);
    assert_eq!(r.verdict, "undecided");
    assert!(!r.strict_serializable);
    assert_eq!(r.exit_code(), 2);
    assert!(r.violations.is_empty() && r.violations_total == 0);
    assert_eq!(r.undecided.len(), 1);
    assert!(
        r.line()
            .contains("strict serializable: undecided — gave up after"),
        "{}",
        r.line()
    );
}

/// `crebito-check` on the three histories, and on a search past a small budget: its exit
/// code is the verdict's (0 yes, 1 no, 2 undecided), its last line says which.
#[test]
fn the_exit_code_is_the_verdict() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/histories");
    let run = |file: &Path, extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_crebito-check"))
            .arg("--history")
            .arg(file)
            .args(extra)
            .output()
            .expect("crebito-check runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, line) = run(&dir.join("1-released-together.jsonl"), &[]);
    assert_eq!(code, Some(0), "{line}");
    assert!(line.contains("strict serializable: yes"), "{line}");
    let (code, line) = run(&dir.join("2-stale-after-a-statement.jsonl"), &[]);
    assert_eq!(code, Some(1), "{line}");
    assert!(line.contains("strict serializable: no"), "{line}");
    assert_eq!(run(&dir.join("3-two-unknown-hops.jsonl"), &[]).0, Some(0));
    // Forty unanswered credits of distinct even amounts, a debit from an odd balance.
    let tmp = std::env::temp_dir().join(format!(
        "crebito-check-undecided-{}.jsonl",
        std::process::id()
    ));
    let mut h = vec![empty_statement(0, 0, 0)];
    let names: Vec<String> = (0..40).map(|i| format!("u{i}")).collect();
    h.extend(
        names
            .iter()
            .enumerate()
            .map(|(i, d)| op(1, 10, Some(("c", 2 * (i as i64 + 1), d)), 504)),
    );
    h.push(acked(20, 21, ("d", 1, "z"), 0));
    let text: String = h
        .iter()
        .map(|o| serde_json::to_string(o).expect("json") + "\n")
        .collect();
    std::fs::write(&tmp, text).expect("a temporary history");
    let (code, line) = run(&tmp, &["--budget", "100000"]);
    let _ = std::fs::remove_file(&tmp);
    assert_eq!(code, Some(2), "{line}");
    assert!(
        line.contains("strict serializable: undecided — gave up after"),
        "{line}"
    );
}
