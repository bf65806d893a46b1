//! `crebito-loader`: the official simulation's three load scenarios (débitos, créditos,
//! extratos) as an open model, cheap enough to saturate a stack on the same two cores.
//!
//! - Arrivals are precomputed ([`schedule`]) and released by a dispatcher thread that sleeps
//!   with the kernel's high-resolution timers (tokio's timer wheel has 1 ms granularity,
//!   which would add up to 1 ms to every latency counted from the schedule).
//! - Latency is counted from each request's *scheduled* arrival, not from when it was sent,
//!   so a loader or a stack that falls behind cannot hide it (no coordinated omission); how
//!   late requests started is reported on its own as `start_lag_ms`.
//! - Each user opens a new TCP connection, as Gatling's do; answers are judged by Gatling's
//!   checks ([`request::judge`]); KOs are broken down by cause.
//! - `--post-log` writes every POST and what it got back, for a ledger audit against the
//!   client's own view; `--idempotent` sends an `Idempotency-Key` and retries ambiguous
//!   answers (outcome unknown) and 503s (not applied) with it.
//! - `--history` writes every request with its invocation and completion instants and its
//!   whole answer, for `crebito-check` ([`crebito_loader::check`]). The answers are kept in
//!   memory during the run (the buffers each request reads into anyway) and written after it,
//!   so the load itself is not slowed.

mod budget;
mod request;
mod schedule;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;

use crebito_loader::history::{self, Attempt, Op, Tx};
use crebito_loader::rng::Rng;
use request::{Outcome, Post};
use schedule::Scenario;

#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where to send the load: a loopback address only (127.0.0.1:PORT).
    #[arg(long, default_value = "127.0.0.1:9999")]
    target: SocketAddr,
    /// Multiplies the official arrival rates (220 + 110 + 10 requests/s at the plateau).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Multiplies the 2-minute ramp and the 2-minute plateau.
    #[arg(long, default_value_t = 1.0)]
    duration_scale: f64,
    /// Seconds a request may take before it counts as a timeout (Gatling's default: 60).
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Write the JSON summary here (also printed on stdout).
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    /// Write every POST (descricao, client, tipo, valor, final status, outcome, attempts, the
    /// first attempt's status, whether the final answer was a keyed replay, when the first
    /// attempt was sent and how long it took to be answered, in ms, and every attempt's
    /// answer: `answers`, see `write_post_log`) as CSV.
    #[arg(long)]
    post_log: Option<std::path::PathBuf>,
    /// Write the history (every request: client, invocation and completion instants, the
    /// transaction, the final status and a 200's body) as JSON lines, for crebito-check.
    #[arg(long)]
    history: Option<std::path::PathBuf>,
    /// Send an Idempotency-Key (the descricao) with every POST, and retry ambiguous answers
    /// (timeout, broken connection, a 5xx other than 503) and 503s with the same key, up to
    /// --retries times within --retry-for seconds of the first attempt. Before each retry it
    /// waits a random time from one to one and a half times the longer of the answer's
    /// Retry-After (in seconds, never sooner) and a back-off of 200 ms doubling to 4 s,
    /// so that POSTs refused together do not all come back together.
    #[arg(long)]
    idempotent: bool,
    /// With --idempotent: the retry budget. A POST refused outright (503: not applied) is
    /// sent again only while the budget allows, this share of first attempts plus a reserve
    /// of 100 (`budget.rs`); `off`: always. Retries that settle an unknown outcome are never
    /// budgeted.
    #[arg(long, default_value = "0.2", value_parser = budget::parse_share)]
    retry_budget: budget::Share,
    #[arg(long, default_value_t = 5)]
    retries: u32,
    /// Seconds after a POST's first attempt past which it is not retried any more: how long a
    /// client keeps asking before it gives up with the outcome unknown.
    #[arg(long, default_value_t = 60.0)]
    retry_for: f64,
    /// Clients to spread the load over: ids 1 to N (the contest's five by default; more for
    /// a stack seeded with `crebito migrate --extra-clients N-5`, e.g. a sharded cluster).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    clients: u32,
    /// Seed of the random clients, amounts and descriptions, and of the retries' jitter (the
    /// schedule is deterministic).
    #[arg(long, default_value_t = 2024)]
    seed: u64,
    /// With --history: read one statement per client before the load and one after it has
    /// drained, into the history only (not the summary): where a black-box check
    /// (`crebito-check` without --ledger) starts each client from and ends it on.
    #[arg(long)]
    bracket: bool,
}

/// What became of one user.
struct Record {
    client: u32,
    /// When its first attempt started and its final answer ended, in ns since the start.
    invoke_ns: u64,
    complete_ns: u64,
    /// The final answer, kept only for --history.
    response: Option<Vec<u8>>,
    scheduled_us: u64,
    start_lag_us: u32,
    latency_us: u64,
    scenario: Scenario,
    outcome: Outcome,
    status: u16,
    /// Every attempt's answer, in order (at least one).
    answers: Vec<Attempt>,
    /// The POST's outcome is still unknown after its last attempt: an attempt was ambiguous
    /// and no later answer settled it (a 503 does not: `history::unknown_after`).
    unknown: bool,
    post: Option<Post>,
}

const ALNUM: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// Ten alphanumeric characters: three of the run, seven of the sequence number, so every
/// POST of a run is unique (36⁷ ≈ 78 billion).
fn descricao(run: u64, seq: u64) -> [u8; 10] {
    let mut d = [0u8; 10];
    let (mut r, mut s) = (run, seq);
    for c in d[..3].iter_mut() {
        *c = ALNUM[(r % 36) as usize];
        r /= 36;
    }
    for c in d[3..].iter_mut().rev() {
        *c = ALNUM[(s % 36) as usize];
        s /= 36;
    }
    d
}

fn main() {
    let args = Args::parse();
    if !args.target.ip().is_loopback() {
        eprintln!(
            "crebito-loader: refusing to load {}: only loopback targets",
            args.target
        );
        std::process::exit(2);
    }
    raise_nofile();
    let plan = schedule::official(args.scale, args.duration_scale);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let records = Arc::new(Mutex::new(Vec::with_capacity(plan.len())));
    let budget = Arc::new(budget::Budget::new(args.retry_budget.0));
    let in_flight = Arc::new(tokio::sync::Semaphore::new(0));
    let bracket = args.bracket && args.history.is_some();
    let timeout = Duration::from_secs(args.timeout);
    let before_load = if bracket {
        rt.block_on(statements(args.target, args.clients, timeout, None))
    } else {
        Vec::new()
    };
    let start = Instant::now() + Duration::from_millis(100);
    // The same instant on the wall clock: what a fault script's own timestamps (a thaw, a
    // restart) are placed against on the run's time line (stress/reporting/faults.py).
    let start_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1e3)
        + 100.0;
    let cpu0 = cpu_seconds();

    // The dispatcher: releases each user at its instant, from its own thread.
    let handle = rt.handle().clone();
    let dispatcher = {
        let (records, in_flight) = (records.clone(), in_flight.clone());
        let (target, timeout) = (args.target, Duration::from_secs(args.timeout));
        let (idempotent, retries) = (args.idempotent, args.retries);
        let budget = budget.clone();
        let retry_for = Duration::from_secs_f64(args.retry_for.max(0.0));
        let keep = args.history.is_some();
        let clients = args.clients;
        let mut rng = Rng(args.seed | 1);
        let run = rng.next_u64();
        // Each user's own generator for its retries' jitter, seeded from a second one, so
        // that the clients and amounts drawn from `rng` stay what the seed gave before.
        let mut jitters = Rng((args.seed ^ 0x9E37_79B9_7F4A_7C15) | 1);
        std::thread::spawn(move || {
            let total = plan.len();
            for (seq, (offset, scenario)) in plan.into_iter().enumerate() {
                let at = start + Duration::from_secs_f64(offset);
                let now = Instant::now();
                if at > now {
                    std::thread::sleep(at - now);
                }
                let client = 1 + rng.below(u64::from(clients)) as u32;
                let post = (scenario != Scenario::Extratos).then(|| Post {
                    client,
                    credit: scenario == Scenario::Creditos,
                    valor: 1 + rng.below(10_000) as u32,
                    descricao: descricao(run, seq as u64),
                });
                let mut jitter = Rng(jitters.next_u64() | 1);
                let records = records.clone();
                let in_flight = in_flight.clone();
                let budget = budget.clone();
                handle.spawn(async move {
                    let since_start =
                        |t: Instant| t.saturating_duration_since(start).as_nanos() as u64;
                    let started = Instant::now();
                    let req = request::render(scenario, client, post.as_ref(), idempotent);
                    let mut answers = Vec::with_capacity(1);
                    let mut unknown = false;
                    if post.is_some() {
                        budget.sent();
                    }
                    let mut answer = loop {
                        let sent = Instant::now();
                        let answer = request::send(target, &req, scenario, timeout, keep).await;
                        answers.push(Attempt {
                            sent_ns: since_start(sent),
                            took_ns: sent.elapsed().as_nanos() as u64,
                            status: answer.status,
                            replayed: answer.replayed,
                        });
                        unknown = history::unknown_after(unknown, answer.status);
                        let tried = answers.len() as u32;
                        let pause = pause(tried, answer.retry_after, &mut jitter);
                        // Settling an unknown outcome is never budgeted; a refusal is.
                        if !(idempotent
                            && post.is_some()
                            && answer.outcome.retryable(answer.status)
                            && tried <= retries
                            && started.elapsed() + pause <= retry_for
                            && (unknown || budget.retry()))
                        {
                            break answer;
                        }
                        tokio::time::sleep(pause).await;
                    };
                    let record = Record {
                        client,
                        invoke_ns: since_start(started),
                        complete_ns: since_start(Instant::now()),
                        response: answer.response.take(),
                        scheduled_us: (at - start).as_micros() as u64,
                        start_lag_us: started.saturating_duration_since(at).as_micros() as u32,
                        latency_us: at.elapsed().as_micros() as u64,
                        scenario,
                        outcome: answer.outcome,
                        status: answer.status,
                        answers,
                        unknown,
                        post,
                    };
                    records.lock().expect("not poisoned").push(record);
                    in_flight.add_permits(1);
                });
            }
            total
        })
    };

    let total = rt.block_on(async {
        let total = tokio::task::spawn_blocking(move || dispatcher.join().expect("dispatcher"))
            .await
            .expect("join");
        // Every user answered (or timed out).
        let _ = in_flight.acquire_many(total as u32).await.expect("open");
        total
    });
    let load_seconds = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let after_load = if bracket {
        rt.block_on(statements(args.target, args.clients, timeout, Some(start)))
    } else {
        Vec::new()
    };
    let records = std::mem::take(&mut *records.lock().expect("not poisoned"));
    assert_eq!(records.len(), total);

    if let Some(path) = &args.post_log {
        write_post_log(path, &records).expect("writing the POST log");
    }
    if let Some(path) = &args.history {
        write_history(path, &records, &before_load, &after_load).expect("writing the history");
    }
    let mut summary = summarize(&args, &records, load_seconds, cpu);
    // With --idempotent only: without it nothing is retried.
    summary["retry_budget"] = json!(args.idempotent.then(|| json!({
        "share": budget.share(),
        "denied": budget.denied(),
    })));
    summary["started_unix_ms"] = json!((start_unix_ms * 1e3).round() / 1e3);
    let text = serde_json::to_string_pretty(&summary).expect("json");
    if let Some(path) = &args.out {
        std::fs::write(path, &text).expect("writing the summary");
    }
    println!("{text}");
}

impl Record {
    fn first(&self) -> &Attempt {
        &self.answers[0]
    }

    fn last(&self) -> &Attempt {
        self.answers.last().expect("at least one attempt")
    }
}

/// The POST log: one CSV line per POST. `answers` holds every attempt, in order, separated
/// by spaces, each `STATUS[r]@SENT+TOOK`: the status (0: no answer), `r` when it was a keyed
/// replay, when it was sent and how long it took, in ms since the run's start (e.g.
/// `503@25012.345+1.203 504@25213.9+3001.2 200r@28415.0+2.1`).
fn write_post_log(path: &std::path::Path, records: &[Record]) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        f,
        "descricao,client,tipo,valor,status,outcome,attempts,first_ambiguous,first_status,replayed,unknown,at_ms,first_ms,answers"
    )?;
    for r in records {
        let Some(p) = &r.post else { continue };
        let answers: Vec<String> = r
            .answers
            .iter()
            .map(|a| {
                format!(
                    "{}{}@{:.3}+{:.3}",
                    a.status,
                    if a.replayed { "r" } else { "" },
                    a.sent_ns as f64 / 1e6,
                    a.took_ns as f64 / 1e6
                )
            })
            .collect();
        writeln!(
            f,
            "{},{},{},{},{},{},{},{},{},{},{},{:.3},{:.3},{}",
            std::str::from_utf8(&p.descricao).expect("ascii"),
            p.client,
            if p.credit { 'c' } else { 'd' },
            p.valor,
            r.status,
            serde_json::to_value(r.outcome)
                .expect("json")
                .as_str()
                .expect("str"),
            r.answers.len(),
            history::ambiguous(r.first().status),
            r.first().status,
            r.last().replayed,
            r.unknown,
            r.invoke_ns as f64 / 1e6,
            r.first().took_ns as f64 / 1e6,
            answers.join(" ")
        )?;
    }
    f.flush()
}

/// One statement per client, one after the other, as history operations: `since` the run's
/// start (None: before it, at instant 0).
async fn statements(
    target: SocketAddr,
    clients: u32,
    timeout: Duration,
    since: Option<Instant>,
) -> Vec<Op> {
    let at = |t: Instant| since.map_or(0, |s| t.saturating_duration_since(s).as_nanos() as u64);
    let mut ops = Vec::with_capacity(clients as usize);
    for client in 1..=clients {
        let req = request::render(Scenario::Extratos, client, None, false);
        let invoked = Instant::now();
        let answer = request::send(target, &req, Scenario::Extratos, timeout, true).await;
        let body = json_body(answer.status, answer.response.as_deref());
        ops.push(Op {
            client,
            invoke_ns: at(invoked),
            complete_ns: at(Instant::now()),
            tx: None,
            status: answer.status,
            unknown: false,
            body,
            attempts: Vec::new(),
        });
    }
    ops
}

/// A 200's JSON body, for the history (a refusal's text body is not kept).
fn json_body(status: u16, response: Option<&[u8]>) -> Option<serde_json::Value> {
    (status == 200)
        .then(|| response.and_then(request::body))
        .flatten()
        .and_then(|b| serde_json::from_slice(b).ok())
}

/// One JSON line per request, in invocation order (crebito_loader::history::Op): the
/// statements read before the load, the load, the statements read after it.
fn write_history(
    path: &std::path::Path,
    records: &[Record],
    before: &[Op],
    after: &[Op],
) -> std::io::Result<()> {
    let mut order: Vec<&Record> = records.iter().collect();
    order.sort_by_key(|r| r.invoke_ns);
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    for op in before {
        serde_json::to_writer(&mut f, op)?;
        f.write_all(b"\n")?;
    }
    for r in order {
        let body = json_body(r.status, r.response.as_deref());
        let op = Op {
            client: r.client,
            invoke_ns: r.invoke_ns,
            complete_ns: r.complete_ns,
            tx: r.post.map(|p| Tx {
                tipo: if p.credit { "c" } else { "d" }.to_string(),
                valor: i64::from(p.valor),
                descricao: std::str::from_utf8(&p.descricao)
                    .expect("ascii")
                    .to_string(),
            }),
            status: r.status,
            unknown: r.unknown,
            body,
            attempts: if r.answers.len() > 1 {
                r.answers.clone()
            } else {
                Vec::new()
            },
        };
        serde_json::to_writer(&mut f, &op)?;
        f.write_all(b"\n")?;
    }
    for op in after {
        serde_json::to_writer(&mut f, op)?;
        f.write_all(b"\n")?;
    }
    f.flush()
}

/// p50…max of latencies in µs, reported in ms.
fn percentiles(mut us: Vec<u64>) -> serde_json::Value {
    if us.is_empty() {
        return json!(null);
    }
    us.sort_unstable();
    let at =
        |q: f64| us[((us.len() as f64 * q).ceil() as usize).clamp(1, us.len()) - 1] as f64 / 1e3;
    let avg = us.iter().sum::<u64>() as f64 / us.len() as f64 / 1e3;
    json!({"p50": at(0.50), "p75": at(0.75), "p95": at(0.95), "p99": at(0.99),
           "max": *us.last().unwrap() as f64 / 1e3, "avg": (avg * 1e3).round() / 1e3})
}

fn summarize(args: &Args, records: &[Record], load_seconds: f64, cpu: f64) -> serde_json::Value {
    let n = records.len();
    let ok = |r: &&Record| r.outcome == Outcome::Ok;
    let ko = records.iter().filter(|r| r.outcome != Outcome::Ok).count();
    let mut by_cause: BTreeMap<Outcome, usize> = BTreeMap::new();
    for r in records.iter().filter(|r| r.outcome != Outcome::Ok) {
        *by_cause.entry(r.outcome).or_default() += 1;
    }
    let ok_under_250 = records
        .iter()
        .filter(ok)
        .filter(|r| r.latency_us < 250_000)
        .count();
    let sla_pct = if n > 0 {
        (ok_under_250 as f64 / n as f64 * 10_000.0).round() / 100.0
    } else {
        0.0
    };
    let per_scenario: BTreeMap<&str, serde_json::Value> = Scenario::ALL
        .iter()
        .map(|&s| {
            let rs: Vec<&Record> = records.iter().filter(|r| r.scenario == s).collect();
            (
                s.name(),
                json!({
                    "requests": rs.len(),
                    "ko": rs.iter().filter(|r| r.outcome != Outcome::Ok).count(),
                    "latency_ms": percentiles(rs.iter().map(|r| r.latency_us).collect()),
                }),
            )
        })
        .collect();
    // One row per second of the schedule: what was due then, and how it went.
    let seconds = records
        .iter()
        .map(|r| r.scheduled_us / 1_000_000)
        .max()
        .map_or(0, |m| m + 1);
    let mut buckets: Vec<Vec<&Record>> = (0..seconds).map(|_| Vec::new()).collect();
    for r in records {
        buckets[(r.scheduled_us / 1_000_000) as usize].push(r);
    }
    let timeline: Vec<serde_json::Value> = buckets
        .iter()
        .enumerate()
        .map(|(t, rs)| {
            let lat = percentiles(rs.iter().map(|r| r.latency_us).collect());
            json!({"t": t, "requests": rs.len(),
                   "ko": rs.iter().filter(|r| r.outcome != Outcome::Ok).count(),
                   "p50_ms": lat["p50"], "p99_ms": lat["p99"], "max_ms": lat["max"]})
        })
        .collect();
    let posts: Vec<&Record> = records.iter().filter(|r| r.post.is_some()).collect();
    json!({
        "loader": "crebito-loader",
        "target": args.target.to_string(),
        "scale": args.scale,
        "duration_scale": args.duration_scale,
        "requests": n,
        "ok": n - ko,
        "ko": ko,
        "ko_by_cause": by_cause,
        "ok_under_250ms": ok_under_250,
        "sla_pct": sla_pct,
        "inconsistencies": by_cause.get(&Outcome::Inconsistent).copied().unwrap_or(0),
        "posts_ok": posts.iter().filter(|r| r.status == 200).count(),
        "latency_ms": percentiles(records.iter().map(|r| r.latency_us).collect()),
        "start_lag_ms": percentiles(records.iter().map(|r| u64::from(r.start_lag_us)).collect()),
        "per_scenario": per_scenario,
        "load_seconds": (load_seconds * 1000.0).round() / 1000.0,
        "throughput_rps": ((n as f64 / load_seconds) * 10.0).round() / 10.0,
        "loader_cpu_seconds": (cpu * 1000.0).round() / 1000.0,
        "loader_cpu_us_per_request": if n > 0 { (cpu * 1e6 / n as f64 * 10.0).round() / 10.0 } else { 0.0 },
        "idempotent": args.idempotent,
        "clients": args.clients,
        "ambiguous_first_attempt": posts.iter().filter(|r| history::ambiguous(r.first().status)).count(),
        "ambiguous": posts.iter().filter(|r| r.unknown).count(),
        "retried": posts.iter().filter(|r| r.answers.len() > 1).count(),
        "timeline": timeline,
    })
}

/// How long to wait before retrying a POST tried `tried` times: a random time from one to one
/// and a half times ([`jitter`]) the longer of what the last answer asked for (`Retry-After`:
/// never retried sooner; at most an hour is believed) and [`backoff`]. Without the jitter
/// every POST refused in the same instant (thousands, while the database is frozen) would
/// retry in the same instant too, again and again, and that herd would crowd out new
/// requests for seconds after the stack heals.
fn pause(tried: u32, retry_after: Option<Duration>, rng: &mut Rng) -> Duration {
    let asked = retry_after
        .unwrap_or_default()
        .min(Duration::from_secs(3600));
    jitter(backoff(tried).max(asked), rng)
}

/// The back-off after `tried` attempts: 200 ms, then twice as long each time, at most 4 s.
fn backoff(tried: u32) -> Duration {
    Duration::from_millis((100u64 << tried.min(6)).min(4000))
}

/// A uniform pick in `[base, 1.5 × base]` (to the nanosecond): a wait is never shorter than
/// its base (a server's `Retry-After` is a floor, RFC 9110 §10.2.3), and the waits of POSTs
/// refused together spread over half of it.
fn jitter(base: Duration, rng: &mut Rng) -> Duration {
    let span = (base / 2).as_nanos() as u64;
    base + Duration::from_nanos(rng.below(span + 1))
}

/// CPU seconds (user + system) this process has used.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// Thousands of connections may be open at once when the stack falls behind.
fn raise_nofile() {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_are_ten_alphanumerics_and_unique() {
        let a = descricao(12345, 0);
        let b = descricao(12345, 1);
        assert_ne!(a, b);
        assert!(a.iter().all(|c| c.is_ascii_alphanumeric()) && a.len() == 10);
        let mut all: Vec<[u8; 10]> = (0..100_000).map(|s| descricao(7, s)).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 100_000);
    }

    #[test]
    fn retries_back_off_from_200_ms_doubling_to_four_seconds() {
        let waits: Vec<u64> = (1..=8).map(|t| backoff(t).as_millis() as u64).collect();
        assert_eq!(waits, [200, 400, 800, 1600, 3200, 4000, 4000, 4000]);
        assert_eq!(backoff(u32::MAX), Duration::from_secs(4), "no overflow");
    }

    #[test]
    fn jitter_picks_between_its_base_and_half_as_much_again_and_spreads() {
        let mut rng = Rng(2024 | 1);
        for base in [0, 1, 2, 3, 200, 1_000_000_000, 4_000_000_001] {
            let base = Duration::from_nanos(base);
            let picks: Vec<Duration> = (0..10_000).map(|_| jitter(base, &mut rng)).collect();
            let (lo, hi) = (picks.iter().min().unwrap(), picks.iter().max().unwrap());
            assert!(
                *lo >= base && *hi <= base + base / 2,
                "{base:?}: {lo:?}..{hi:?}"
            );
            if base >= Duration::from_millis(1) {
                // Uniform over the whole half: both ends reached within 1 %, and the picks
                // of POSTs refused together are not one instant.
                let span = base.as_secs_f64() / 2.0;
                assert!(
                    (*lo - base).as_secs_f64() < span * 0.01,
                    "{base:?}: from {lo:?}"
                );
                assert!(
                    (base + base / 2 - *hi).as_secs_f64() < span * 0.01,
                    "{base:?}: to {hi:?}"
                );
                let mean = picks.iter().map(Duration::as_secs_f64).sum::<f64>() / 1e4;
                assert!(
                    (mean / base.as_secs_f64() - 1.25).abs() < 0.01,
                    "mean {mean}"
                );
            }
        }
    }

    #[test]
    fn a_retry_waits_for_the_longer_of_retry_after_and_the_back_off_jittered() {
        let mut rng = Rng(7);
        let within = |d: Duration, lo: u64, hi: u64| {
            (Duration::from_millis(lo)..=Duration::from_millis(hi)).contains(&d)
        };
        let one_second = Some(Duration::from_secs(1));
        for _ in 0..1_000 {
            // No Retry-After: the back-off alone.
            assert!(within(pause(1, None, &mut rng), 200, 300));
            assert!(within(pause(6, None, &mut rng), 4000, 6000));
            // Retry-After longer than the back-off: it decides, never sooner; shorter: the
            // back-off does.
            assert!(within(pause(1, one_second, &mut rng), 1000, 1500));
            assert!(within(pause(3, one_second, &mut rng), 1000, 1500));
            assert!(within(pause(4, one_second, &mut rng), 1600, 2400));
            let long = Some(Duration::from_secs(30));
            assert!(within(pause(9, long, &mut rng), 30_000, 45_000));
            // An absurd one is believed up to an hour, and overflows nothing.
            let absurd = Some(Duration::MAX);
            assert!(within(pause(1, absurd, &mut rng), 3_600_000, 5_400_000));
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let p = percentiles((1..=100).map(|ms| ms * 1000).collect());
        assert_eq!(p["p50"], 50.0);
        assert_eq!(p["p99"], 99.0);
        assert_eq!(p["max"], 100.0);
    }
}
