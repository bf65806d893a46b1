//! `crebito-check`: is every answer of a run's history explained by one serial order of the
//! transactions, consistent with real time? (`crebito_loader::check` says how.)
//!
//!   crebito-check --history history.jsonl --ledger ledger.json [--out check.json]
//!
//! The history is what `crebito-loader --history` wrote; the ledger the database's final rows
//! as `stress/ledger.sql` exports them. Prints "history: N operations, strict serializable:
//! yes|no" and each violation with the requests involved; exit code 1 on any violation.

use std::io::BufRead;
use std::path::PathBuf;

use clap::Parser;
use crebito_loader::check;
use crebito_loader::history::{Ledger, Op};

#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The history: one JSON object a line (crebito-loader --history).
    #[arg(long)]
    history: PathBuf,
    /// The final rows: {"clientes": [[id, limite, saldo]…], "transacoes": [[cliente_id, id, valor, tipo, descricao]…]}.
    #[arg(long)]
    ledger: PathBuf,
    /// Write the report (counts, strict_serializable, violations) as JSON here.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() {
    let args = Args::parse();
    let started = std::time::Instant::now();
    let fail = |what: &str, e: &dyn std::fmt::Display| -> ! {
        eprintln!("crebito-check: {what}: {e}");
        std::process::exit(2)
    };
    let file = std::fs::File::open(&args.history).unwrap_or_else(|e| fail("history", &e));
    let mut history = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.unwrap_or_else(|e| fail("history", &e));
        let op: Op = serde_json::from_str(&line)
            .unwrap_or_else(|e| fail(&format!("history line {}", i + 1), &e));
        history.push(op);
    }
    let ledger_text = std::fs::read_to_string(&args.ledger).unwrap_or_else(|e| fail("ledger", &e));
    let ledger: Ledger = serde_json::from_str(&ledger_text).unwrap_or_else(|e| fail("ledger", &e));
    let report = check::check(&history, &ledger);
    let mut json = serde_json::to_value(&report).expect("json");
    json["seconds"] =
        serde_json::json!((started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0);
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&json).expect("json"))
            .unwrap_or_else(|e| fail("--out", &e));
    }
    for v in &report.violations {
        eprintln!("client {} ({}): {}", v.client, v.rule, v.what);
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
    println!(
        "{} ({:.2} s to check)",
        report.line(),
        started.elapsed().as_secs_f64()
    );
    std::process::exit(if report.strict_serializable { 0 } else { 1 });
}
