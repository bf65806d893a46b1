//! A synthetic history of the official profile's size, from a simulated correct server, to
//! time crebito-check on (docs/reports/history/checker-speed.md):
//!
//!   cargo run --release -p crebito-loader --example synthetic_history -- DIR [SCALE] [UNKNOWN‰]
//!
//! writes DIR/history.jsonl and DIR/ledger.json: 61 380 × SCALE operations over five clients
//! (the official limits), 3 % statements, requests overlapping by up to two milliseconds,
//! answers released in group-commit batches, and UNKNOWN‰ (default 5) of the POSTs answered
//! 504, half of them applied.

use std::io::Write;

use crebito_loader::history::{Ledger, Op, Tx};
use crebito_loader::rng::Rng;
use serde_json::json;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(args.get(1).expect("DIR"));
    let scale: u64 = args.get(2).map_or(1, |s| s.parse().expect("SCALE"));
    let unknown_permille: u64 = args.get(3).map_or(5, |s| s.parse().expect("UNKNOWN"));
    std::fs::create_dir_all(&dir).expect("DIR");
    let limits = [100_000i64, 80_000, 1_000_000, 10_000_000, 500_000];
    let n = 61_380 * scale;
    let span_us = 240_000_000u64; // the official profile's four minutes
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    // (client, invoke µs, apply µs, kind): kind 0 credit, 1 debit, 2 statement.
    struct Plan {
        client: usize,
        invoke: u64,
        point: u64,
        kind: u8,
        valor: i64,
        unknown: bool,
        applied_if_unknown: bool,
    }
    let mut plans: Vec<Plan> = (0..n)
        .map(|i| {
            let invoke = i * span_us / n + rng.below(200);
            let kind = match rng.below(100) {
                0..=2 => 2,
                3..=50 => 0,
                _ => 1,
            };
            Plan {
                client: rng.below(5) as usize,
                invoke,
                point: invoke + rng.below(2000),
                kind,
                valor: 1 + rng.below(if kind == 1 { 100_000 } else { 10_000 }) as i64,
                unknown: kind != 2 && rng.below(1000) < unknown_permille,
                applied_if_unknown: rng.below(2) == 0,
            }
        })
        .collect();
    let mut order: Vec<usize> = (0..plans.len()).collect();
    order.sort_by_key(|&i| plans[i].point);
    let mut saldo = [0i64; 5];
    let mut rows: Vec<Vec<(i64, String, String, u64)>> = vec![Vec::new(); 5];
    let mut answer: Vec<(u16, Option<serde_json::Value>)> = vec![(0, None); plans.len()];
    let mut release = vec![0u64; plans.len()];
    let mut batch: Vec<usize> = Vec::new();
    for (k, &i) in order.iter().enumerate() {
        let p = &plans[i];
        let c = p.client;
        if p.kind == 2 {
            let list: Vec<_> = rows[c]
                .iter()
                .rev()
                .take(10)
                .map(|(v, t, d, at)| {
                    json!({"valor": v, "tipo": t, "descricao": d,
                       "realizada_em": format!("2024-01-17T02:{:02}:{:02}.{:06}Z", at / 60_000_000, at / 1_000_000 % 60, at % 1_000_000)})
                })
                .collect();
            answer[i] = (
                200,
                Some(
                    json!({"saldo": {"total": saldo[c], "limite": limits[c], "data_extrato": "x"}, "ultimas_transacoes": list}),
                ),
            );
            release[i] = p.point;
            continue;
        }
        let delta = if p.kind == 0 { p.valor } else { -p.valor };
        let (tipo, d) = (if p.kind == 0 { "c" } else { "d" }, format!("r{i}"));
        if p.unknown && !p.applied_if_unknown {
            answer[i] = (504, None);
        } else if saldo[c] + delta < -limits[c] {
            answer[i] = (if p.unknown { 504 } else { 422 }, None);
        } else {
            saldo[c] += delta;
            rows[c].push((p.valor, tipo.into(), d, p.point));
            answer[i] = if p.unknown {
                (504, None)
            } else {
                (200, Some(json!({"limite": limits[c], "saldo": saldo[c]})))
            };
        }
        batch.push(i);
        if rng.below(4) == 0 || k + 1 == order.len() {
            for j in batch.drain(..) {
                release[j] = p.point;
            }
        }
    }
    for &j in &batch {
        release[j] = plans[j].point;
    }
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(dir.join("history.jsonl")).expect("history.jsonl"),
    );
    for (i, p) in plans.iter_mut().enumerate() {
        let (status, body) = answer[i].clone();
        let complete = if status == 504 {
            p.invoke + rng.below(3000)
        } else {
            release[i] + rng.below(500)
        };
        let op = Op {
            client: p.client as u32 + 1,
            invoke_ns: p.invoke * 1000,
            complete_ns: complete * 1000,
            tx: (p.kind != 2).then(|| Tx {
                tipo: if p.kind == 0 { "c" } else { "d" }.into(),
                valor: p.valor,
                descricao: format!("r{i}"),
            }),
            status,
            unknown: false,
            body,
            attempts: Vec::new(),
        };
        serde_json::to_writer(&mut out, &op).expect("write");
        out.write_all(b"\n").expect("write");
    }
    let ledger = Ledger {
        clientes: (0..5)
            .map(|c| (c as u32 + 1, limits[c], saldo[c]))
            .collect(),
        transacoes: (0..5)
            .flat_map(|c| {
                rows[c].iter().enumerate().map(move |(k, (v, t, d, _))| {
                    (c as u32 + 1, k as i64 + 1, *v, t.clone(), d.clone())
                })
            })
            .collect(),
    };
    std::fs::write(
        dir.join("ledger.json"),
        serde_json::to_string(&ledger).expect("json"),
    )
    .expect("ledger.json");
}
