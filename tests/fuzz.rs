//! Fuzzing on stable Rust, bounded in cases and time: the parsers that see untrusted input
//! (`Transaction::parse_json` for POST bodies, `ClientId::parse` for path segments) against
//! independent oracles, over a million generated inputs each (`FUZZ_CASES`, default
//! 1 000 000; `FUZZ_SECONDS`, default 60 per target, whichever comes first). A failure
//! prints the seed and the input; `FUZZ_SEED` replays a run.
//!
//! Inputs are mostly near-valid (the interesting edge: a valid body with one field off,
//! wrong types, boundary numbers, duplicates, escapes, non-ASCII), plus raw random bytes.

use std::time::{Duration, Instant};

use crebito::domain::{ClientId, Kind, Transaction};
use serde_json::Value;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

fn budget() -> (u64, Duration, u64) {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let seed = env(
        "FUZZ_SEED",
        0x5eed_c0de_2024_0001 ^ std::process::id() as u64,
    );
    (
        env("FUZZ_CASES", 1_000_000),
        Duration::from_secs(env("FUZZ_SECONDS", 60)),
        seed | 1,
    )
}

const VALORES: &[&str] = &[
    "1",
    "0",
    "-1",
    "10000",
    "2147483647",
    "2147483648",
    "1.0",
    "1.5",
    "1e3",
    "-0",
    "01",
    "99999999999999999999",
    "\"1\"",
    "null",
    "true",
    "[]",
    "{}",
    "9223372036854775807",
];
const TIPOS: &[&str] = &[
    "\"c\"",
    "\"d\"",
    "\"C\"",
    "\"x\"",
    "\"\"",
    "null",
    "1",
    "\"cd\"",
    "\"\\u0063\"",
];
const DESCRICOES: &[&str] = &[
    "\"a\"",
    "\"descricao\"",
    "\"0123456789\"",
    "\"01234567890\"",
    "\"\"",
    "null",
    "1",
    "\"çãéíóúâêôà\"",
    "\"çãéíóúâêôàx\"",
    "\"\\u00e7\"",
    "\"a\\\"b\"",
    "\"🦀🦀🦀🦀🦀🦀🦀🦀🦀🦀\"",
    "\"tab\\there\"",
    "[\"a\"]",
];
const KEYS: &[&str] = &["valor", "tipo", "descricao", "Valor", "extra", "valor ", ""];

/// A near-valid body: some of the three fields (maybe renamed, duplicated or extra), each
/// with a value drawn from the edge cases, in any order; sometimes cut or corrupted.
fn body(rng: &mut Rng) -> Vec<u8> {
    if rng.below(10) == 0 {
        return (0..rng.below(64)).map(|_| rng.next() as u8).collect();
    }
    let mut fields: Vec<String> = Vec::new();
    for _ in 0..rng.below(5) {
        let key = if rng.below(4) == 0 {
            rng.pick(KEYS)
        } else {
            ["valor", "tipo", "descricao"][rng.below(3)]
        };
        let value = match key {
            "valor" => rng.pick(VALORES),
            "tipo" => rng.pick(TIPOS),
            _ => rng.pick(DESCRICOES),
        };
        fields.push(format!("\"{key}\": {value}"));
    }
    if rng.below(2) == 0 {
        // The common case: exactly the three fields.
        fields = vec![
            format!("\"valor\": {}", rng.pick(VALORES)),
            format!("\"tipo\": {}", rng.pick(TIPOS)),
            format!("\"descricao\": {}", rng.pick(DESCRICOES)),
        ];
        let i = rng.below(3);
        fields.swap(0, i);
    }
    let text = format!("{}{{{}}}", [" ", "", "\n"][rng.below(3)], fields.join(", "));
    let mut bytes = text.into_bytes();
    if rng.below(20) == 0 {
        bytes.truncate(rng.below(bytes.len() + 1));
    }
    if rng.below(20) == 0 && !bytes.is_empty() {
        let i = rng.below(bytes.len());
        bytes[i] = rng.next() as u8;
    }
    bytes
}

/// The contract, decided independently of crebito's parser: a JSON object whose keys are
/// exactly valor, tipo, descricao (once each); valor an integer 1..=2³¹−1 written without
/// fraction or exponent; tipo "c" or "d"; descricao a string of 1 to 10 characters.
fn oracle(bytes: &[u8]) -> Option<(i64, &'static str, String)> {
    let Entries(entries) = serde_json::from_slice(bytes).ok()?;
    let mut keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    if keys != ["descricao", "tipo", "valor"] {
        return None; // missing, unknown or duplicated keys
    }
    let obj: serde_json::Map<String, Value> = entries.into_iter().collect();
    let valor = obj.get("valor")?;
    let valor = valor
        .as_i64()
        .filter(|_| valor.is_i64() || valor.is_u64())?;
    if !(1..=i64::from(i32::MAX)).contains(&valor) {
        return None;
    }
    let tipo = match obj.get("tipo")?.as_str()? {
        "c" => "c",
        "d" => "d",
        _ => return None,
    };
    let descricao = obj.get("descricao")?.as_str()?;
    let chars = descricao.chars().count();
    if !(1..=10).contains(&chars) {
        return None;
    }
    Some((valor, tipo, descricao.to_string()))
}

/// A JSON object's entries in order, duplicates kept (a map would silently keep one).
struct Entries(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Entries;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Entries, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = m.next_entry::<String, Value>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        d.deserialize_map(Visit)
    }
}

#[test]
fn transaction_bodies_match_the_contract_oracle() {
    let (cases, time, seed) = budget();
    let mut rng = Rng(seed);
    let started = Instant::now();
    let (mut n, mut accepted) = (0u64, 0u64);
    while n < cases && started.elapsed() < time {
        let input = body(&mut rng);
        let parsed = Transaction::parse_json(&input);
        let expected = oracle(&input);
        match (&parsed, &expected) {
            (Ok(t), Some((valor, tipo, descricao))) => {
                accepted += 1;
                assert_eq!(i64::from(t.amount.get()), *valor, "seed {seed}: {input:?}");
                assert_eq!(t.kind.as_str(), *tipo);
                assert_eq!(t.description.as_str(), descricao);
                assert_eq!(t.delta().abs(), *valor);
                assert_eq!(t.kind == Kind::Debit, t.delta() < 0);
            }
            (Err(_), None) => {}
            _ => panic!(
                "seed {seed}: parser {} but the contract says {}: {:?}",
                if parsed.is_ok() {
                    "accepted"
                } else {
                    "refused"
                },
                if expected.is_some() {
                    "accept"
                } else {
                    "refuse"
                },
                String::from_utf8_lossy(&input)
            ),
        }
        n += 1;
    }
    eprintln!(
        "{n} bodies in {:?}, {accepted} valid (seed {seed})",
        started.elapsed()
    );
    assert!(n >= cases.min(100_000), "too few cases ran: {n}");
    assert!(
        accepted > n / 200,
        "the generator must reach valid bodies too"
    );
}

#[test]
fn path_ids_match_the_contract_oracle() {
    let (cases, time, seed) = budget();
    let mut rng = Rng(seed);
    let pieces = [
        "0",
        "1",
        "5",
        "6",
        "9",
        "00",
        "-",
        "+",
        " ",
        "a",
        "é",
        "٣",
        "2147483647",
        "2147483648",
        ".",
    ];
    let started = Instant::now();
    let mut n = 0u64;
    while n < cases && started.elapsed() < time {
        let segment: String = (0..rng.below(5)).map(|_| rng.pick(&pieces)).collect();
        let expected = (!segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()))
            .then(|| segment.parse::<u64>().ok())
            .flatten()
            .filter(|v| (1..=i32::MAX as u64).contains(v));
        let parsed = ClientId::parse(&segment).map(|c| c.get() as u64);
        assert_eq!(parsed, expected, "seed {seed}: {segment:?}");
        n += 1;
    }
    eprintln!("{n} path segments in {:?} (seed {seed})", started.elapsed());
}
