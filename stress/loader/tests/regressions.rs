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
