//! `crebito-check`: is every answer of a run's history explained by one serial order of the
//! transactions, consistent with real time? (`crebito_loader::check` says how.)
//!
//!   crebito-check --history history.jsonl [--ledger ledger.json] [--out check.json]
//!
//! The history is what `crebito-loader --history` wrote; the ledger the database's final rows
//! as `stress/ledger.sql` exports them. Without a ledger the order is inferred from the
//! answers alone (`crebito_loader::blackbox`): any implementation of the contract can be
//! checked. Prints "history: N operations, strict serializable: yes|no|undecided …" and
//! each violation with the requests involved. Exit code 0 yes, 1 on any violation, 2
//! undecided (the black-box search gave up on a client: neither passed nor failed), 3 when
//! the history or the ledger cannot be read.

use std::io::BufRead;
use std::path::PathBuf;

use clap::Parser;
use crebito_loader::history::{Ledger, Op};
use crebito_loader::{blackbox, check};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Checks a load run's history: is every answer the clients got explained by one serial order of the transactions, consistent with real time (strict serializability)?"
)]
struct Args {
    /// The history: one JSON object a line (crebito-loader --history).
    #[arg(long)]
    history: PathBuf,
    /// The final rows: {"clientes": [[id, limite, saldo]…], "transacoes": [[cliente_id, seq, valor, tipo, descricao]…]}.
    /// Without it, the black-box check: each client's order inferred from the answers.
    #[arg(long)]
    ledger: Option<PathBuf>,
    /// Write the report (counts, verdict, violations) as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The black-box search's budget per client, in steps (it grows with the client's
    /// history: at least 200 per operation). Past it the client is undecided.
    #[arg(long, default_value_t = blackbox::BUDGET)]
    budget: usize,
}

fn main() {
    let args = Args::parse();
    let started = std::time::Instant::now();
    let fail = |what: &str, e: &dyn std::fmt::Display| -> ! {
        eprintln!("crebito-check: {what}: {e}");
        std::process::exit(3)
    };
    let file = std::fs::File::open(&args.history).unwrap_or_else(|e| fail("history", &e));
    let mut history = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.unwrap_or_else(|e| fail("history", &e));
        let op: Op = serde_json::from_str(&line)
            .unwrap_or_else(|e| fail(&format!("history line {}", i + 1), &e));
        history.push(op);
    }
    let report = match &args.ledger {
        Some(path) => {
            let text = std::fs::read_to_string(path).unwrap_or_else(|e| fail("ledger", &e));
            let ledger: Ledger = serde_json::from_str(&text).unwrap_or_else(|e| fail("ledger", &e));
            check::check(&history, &ledger)
        }
        None => blackbox::check_within(&history, args.budget),
    };
    let mut json = serde_json::to_value(&report).expect("json");
    json["seconds"] =
        serde_json::json!((started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0);
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&json).expect("json"))
            .unwrap_or_else(|e| fail("--out", &e));
    }
    for v in &report.violations {
        eprintln!("client {} ({}, {}): {}", v.client, v.rule, v.kind, v.what);
        for r in &v.requests {
            eprintln!("    {r}");
        }
    }
    if report.violations_total > report.violations.len() {
        eprintln!(
            "… and {} more",
            report.violations_total - report.violations.len()
        );
    }
    for u in &report.undecided {
        eprintln!(
            "client {}: undecided — gave up after {} steps",
            u.client, u.steps
        );
    }
    println!(
        "{} ({:.2} s to check)",
        report.line(),
        started.elapsed().as_secs_f64()
    );
    std::process::exit(report.exit_code());
}
