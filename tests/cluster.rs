//! End to end on a Citus cluster: `deploy/native/cluster up` (a coordinator, two workers,
//! two crebito instances with `--pg-layout citus`, nginx) on free ports; the official
//! validations through nginx; a worker killed mid-load (every process of it, SIGKILL)
//! loses nothing that was answered 200 and stores nothing that was refused, and every answer
//! the clients got meanwhile, statements included, is explained by one serial order in real
//! time (`crebito_loader::check`); a shard moved under load (the direct path's guard makes
//! the requests that met the old copy re-sent, not lost); the coordinator frozen costs
//! nobody; a worker frozen costs only its clients, each told "outcome unknown" (504) and
//! settled exactly once by a keyed retry after the thaw; `down` leaves nothing behind.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::api::Api;
use common::checks;
use crebito_loader::history::{Ledger, Op, Tx};
use serde_json::json;

const EXTRA_CLIENTS: u32 = 20;

use common::launched::{Launched as Cluster, text};

/// What each request was answered, by (client, descricao): descriptions are unique.
#[derive(Default)]
struct Answers {
    by_status: HashMap<u16, Vec<(u32, String)>>,
    /// Every answer, POST or statement, with its load phase: (phase, client, status).
    every: Vec<(&'static str, u32, u16)>,
    /// Every request of the load, for the strict-serializability check.
    history: Vec<Op>,
}

impl Answers {
    /// The answers of one phase that `allowed(client, status)` refuses.
    fn outside(&self, phase: &str, allowed: impl Fn(u32, u16) -> bool) -> Vec<(u32, u16)> {
        self.every
            .iter()
            .filter(|(p, c, s)| *p == phase && !allowed(*c, *s))
            .map(|(_, c, s)| (*c, *s))
            .collect()
    }
}

/// Whether every process of a service is stopped (SIGSTOP: state T), read from the kernel.
fn all_stopped(cluster: &Cluster, service: &str) -> bool {
    let dir = cluster.service(service)["cgroups"]["cpu"]
        .as_str()
        .unwrap()
        .to_string();
    let procs = std::fs::read_to_string(Path::new(&dir).join("cgroup.procs")).unwrap();
    let mut any = false;
    for pid in procs.lines() {
        any = true;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit(')').next().unwrap_or_default().trim_start();
        if !state.starts_with('T') {
            return false;
        }
    }
    any
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_stack_passes_the_validations_and_survives_a_worker_crash() {
    let mut cluster = Cluster::cluster(&[]);
    let api = Api::new(cluster.url());

    // Every service up, in its own cgroup: a coordinator, two workers, two instances, nginx.
    for svc in ["db", "w1", "w2", "api1", "api2", "lb"] {
        assert_eq!(cluster.service(svc)["up"], true, "{svc} up");
    }
    // The contest's data set, exactly (client 6 does not exist).
    checks::official_validation_sequence(std::slice::from_ref(&api)).await;

    // Extra clients added to the running cluster (`migrate` is idempotent), and spread with
    // the contest's five over both workers.
    let db_url = cluster.ok(&["db-url"]);
    let out = Command::new(env!("CARGO_BIN_EXE_crebito"))
        .args([
            "migrate",
            "--database-url",
            db_url.trim(),
            "--pg-layout",
            "citus",
        ])
        .args([
            "--pg-profile",
            "durable",
            "--extra-clients",
            &EXTRA_CLIENTS.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "migrate --extra-clients:\n{}",
        text(&out)
    );
    let shards = cluster.ok(&["shards"]);
    let placement: HashMap<u32, String> = shards
        .lines()
        .map(|l| {
            let (id, node) = l.split_once('|').unwrap();
            (id.parse().unwrap(), node.to_string())
        })
        .collect();
    assert_eq!(placement.len(), 5 + EXTRA_CLIENTS as usize, "{shards}");
    let mut nodes: Vec<&String> = placement.values().collect();
    nodes.sort();
    nodes.dedup();
    assert_eq!(nodes.len(), 2, "two workers hold clients:\n{shards}");
    let t0 = Instant::now();
    let ns = move || t0.elapsed().as_nanos() as u64;
    let invoked = ns();
    let (status, body) = api
        .post_json(
            5 + EXTRA_CLIENTS,
            json!({"valor": 1, "tipo": "c", "descricao": "extra"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let extra = Op {
        client: 5 + EXTRA_CLIENTS,
        invoke_ns: invoked,
        complete_ns: ns(),
        tx: Some(Tx {
            tipo: "c".into(),
            valor: 1,
            descricao: "extra".into(),
        }),
        status: 200,
        unknown: false,
        body: Some(body),
        attempts: Vec::new(),
    };

    // Load on every client while worker 1 is killed (all its processes, SIGKILL) and
    // restarted by the supervisor; each request's description is unique. Every fourth
    // request reads the client's statement, through either instance.
    let answers = Arc::new(Mutex::new(Answers {
        history: vec![extra],
        ..Answers::default()
    }));
    let deadline = Instant::now() + Duration::from_secs(8);
    let tasks = load(&api, &answers, "a", deadline, ns);
    // Kill the worker once the load is well under way (polled: 200 answers recorded).
    while answers.lock().unwrap().history.len() < 200 {
        assert!(Instant::now() < deadline, "the load did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.ok(&["signal", "w1", "KILL", "all"]);
    for t in tasks {
        t.await.unwrap();
    }
    {
        let answers = answers.lock().unwrap();
        let count = |s: u16| answers.by_status.get(&s).map_or(0, Vec::len);
        assert!(count(200) > 100, "load ran: {:?}", answers.by_status.keys());
    }
    // The clients added after the instances started were found through the coordinator and
    // joined the routes: each instance now sends every client straight to its worker.
    let routed = metric(&cluster, "crebito_pg_routed_clients{").await;
    assert_eq!(
        routed,
        [u64::from(5 + EXTRA_CLIENTS); 2],
        "routed clients per instance"
    );
    // A client that does not exist is a 404, not news: probing unknown ids for over two
    // polls of the routes reloads nothing.
    // First the reloads the load itself asked for settle (a request that met a client
    // between a reload's start and its end asks for one more, at the next poll).
    let reloads_now = || metric(&cluster, "crebito_pg_route_reloads_total ");
    let settled = Instant::now() + Duration::from_secs(15);
    let mut reloads = reloads_now().await;
    loop {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let now = reloads_now().await;
        if now == reloads {
            break;
        }
        assert!(
            Instant::now() < settled,
            "the routes kept reloading: {now:?}"
        );
        reloads = now;
    }
    for id in 0..25 {
        let (status, _) = api.extrato(9000 + id).await;
        assert_eq!(status, 404);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = reloads_now().await;
    assert_eq!(after, reloads, "unknown clients made the routes reload");
    let w1 = cluster.service("w1");
    assert!(
        w1["up"] == true && w1["restarts"] == 1,
        "w1 was killed and restarted once: {w1}"
    );

    // A worker down costs only its own clients: every answer of the load, POST or statement,
    // was 200 (422 for a debit over the limit) but for clients whose shard lives on w1, which
    // could also get 503 (not applied) or 504 (outcome unknown); w2's clients were served
    // straight by w2 throughout. And the kill bit: some of w1's clients did get one.
    let w1_addr = format!("127.0.0.1:{}", cluster.fact("STACK_PG_PORT_W1"));
    {
        let answers = answers.lock().unwrap();
        let on_w1 = |c: u32| placement[&c] == w1_addr;
        let outside = answers.outside("a", |c, s| {
            matches!(s, 200 | 422) || (matches!(s, 503 | 504) && on_w1(c))
        });
        assert!(
            outside.is_empty(),
            "answers outside the allowed set: {outside:?}"
        );
        let refused_on_w1 = answers
            .every
            .iter()
            .filter(|(p, c, s)| *p == "a" && *s >= 500 && on_w1(*c))
            .count();
        assert!(
            refused_on_w1 > 0,
            "killing w1 cost its clients nothing: did it die?"
        );
    }

    // The worker is back: its clients answer again.
    let w1 = placement
        .iter()
        .find(|(_, n)| *n == nodes[0])
        .map(|(id, _)| *id);
    let back = Instant::now() + Duration::from_secs(30);
    for id in placement.keys().copied().chain(w1) {
        loop {
            let (status, _) = api.extrato(id).await;
            if status == 200 {
                break;
            }
            assert!(Instant::now() < back, "client {id} still answers {status}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // No coordinator on the request path: with the coordinator frozen (every process of it
    // stopped), every client's POST and statement are still answered, by its own worker.
    {
        // (POSTs for the contest's clients only: the load's clients are audited below
        // against the load's own history.)
        let _thaw = Frozen::new(&cluster, "db");
        assert!(all_stopped(&cluster, "db"), "the coordinator is frozen");
        for &id in placement.keys() {
            if id <= 5 {
                let (status, _) = api
                    .post_json(id, json!({"valor": 1, "tipo": "c", "descricao": "frozen"}))
                    .await;
                assert_eq!(
                    status, 200,
                    "client {id}'s POST with the coordinator frozen"
                );
            }
            let (status, _) = api.extrato(id).await;
            assert_eq!(
                status, 200,
                "client {id}'s statement with the coordinator frozen"
            );
        }
    }

    // A worker frozen (every process of w2 stopped): the direct path's failure semantics on
    // its clients. A POST is sent and not answered in time: 504 "outcome unknown" (never a
    // 503, which would promise it was not applied); a statement is 504 too; worker 1's
    // clients are served meanwhile. After the thaw a keyed retry settles the POST: 200, and
    // stored exactly once whether the frozen attempt applied or not.
    {
        let on_w2 = (1..=5)
            .find(|id| placement[id] != w1_addr)
            .expect("a contest client on worker 2");
        let on_w1 = (1..=5)
            .find(|id| placement[id] == w1_addr)
            .expect("a contest client on worker 1");
        let body = json!({"valor": 1, "tipo": "c", "descricao": "wfrozen"});
        {
            let _thaw = Frozen::new(&cluster, "w2");
            assert!(all_stopped(&cluster, "w2"), "worker 2 is frozen");
            let (status, answer, _) = api.post_keyed(on_w2, body.clone(), "wfrozen-1").await;
            assert_eq!(
                (status.as_u16(), answer.as_str()),
                (
                    504,
                    Some(
                        "outcome unknown: retry with the same Idempotency-Key to apply it at most once"
                    )
                ),
                "client {on_w2}'s POST with its worker frozen"
            );
            let (status, _) = api.extrato(on_w2).await;
            assert_eq!(
                status, 504,
                "client {on_w2}'s statement with its worker frozen"
            );
            let (status, _) = api
                .post_json(
                    on_w1,
                    json!({"valor": 1, "tipo": "c", "descricao": "w1alive"}),
                )
                .await;
            assert_eq!(status, 200, "client {on_w1} on worker 1, served meanwhile");
        }
        let back = Instant::now() + Duration::from_secs(30);
        let settled = loop {
            let (status, answer, replayed) = api.post_keyed(on_w2, body.clone(), "wfrozen-1").await;
            if status == 200 {
                break (answer, replayed);
            }
            assert!(
                Instant::now() < back,
                "the keyed retry after the thaw still answers {status}: {answer}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let stored = cluster.psql(&format!(
            "SELECT count(*) FROM transacoes WHERE cliente_id = {on_w2} AND descricao = 'wfrozen'"
        ));
        assert_eq!(stored.trim(), "1", "settled as {settled:?}: stored once");
    }

    // A shard moved under load: one of the load's clients on worker 2 moved to worker 1
    // (`block_writes`: Citus blocks writes to it while it copies) while every client takes
    // requests. Requests that reached worker 2 during the move waited on the guard's lock,
    // found the shard gone and were re-sent through the coordinator (counted by
    // `crebito_pg_shard_moved_total`); the audit below covers these answers too.
    let (w1_port, w2_port) = (
        cluster.fact("STACK_PG_PORT_W1"),
        cluster.fact("STACK_PG_PORT_W2"),
    );
    let w2 = format!("127.0.0.1:{w2_port}");
    let busy = (6..=5 + EXTRA_CLIENTS)
        .find(|id| placement[id] == w2)
        .expect("a load client on worker 2");
    let moved_before = metric(&cluster, "crebito_pg_shard_moved_total ")
        .await
        .iter()
        .sum::<u64>();
    let deadline = Instant::now() + Duration::from_secs(6);
    let tasks = load(&api, &answers, "b", deadline, ns);
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.psql(&format!(
        "SELECT citus_move_shard_placement(get_shard_id_for_distribution_column('clientes', {busy}),
                '127.0.0.1', {w2_port}, '127.0.0.1', {w1_port}, shard_transfer_mode := 'block_writes')"
    ));
    for t in tasks {
        t.await.unwrap();
    }
    let refused = metric(&cluster, "crebito_pg_shard_moved_total ")
        .await
        .iter()
        .sum::<u64>()
        - moved_before;
    assert!(
        refused > 0,
        "no request met the moved shard on worker 2 (client {busy})"
    );
    let answers = Arc::try_unwrap(answers).ok().unwrap().into_inner().unwrap();
    // During the move every answer was 200 (or 422 for a debit over the limit): the guard
    // re-sent what met the old copy, nothing was refused; only the clients of the moved shard,
    // whose writes Citus blocked while it copied, may have waited past the store's deadline
    // (504, outcome unknown).
    let after_move = cluster.ok(&["shards"]);
    let moved_clients: Vec<u32> = after_move
        .lines()
        .filter_map(|l| l.split_once('|'))
        .filter(|(id, node)| {
            let id: u32 = id.parse().unwrap();
            placement[&id] == w2 && *node != w2
        })
        .map(|(id, _)| id.parse().unwrap())
        .collect();
    assert!(moved_clients.contains(&busy), "{after_move}");
    let outside = answers.outside("b", |c, s| {
        matches!(s, 200 | 422) || (s == 504 && moved_clients.contains(&c))
    });
    assert!(
        outside.is_empty(),
        "answers outside the allowed set during the move: {outside:?}"
    );

    // Every 200 stored exactly once; every 422 and 503 not at all; 504 at most once.
    let stored: HashMap<String, i64> = cluster
        .psql("SELECT descricao, count(*) FROM transacoes WHERE descricao LIKE 'k%n%' GROUP BY 1")
        .lines()
        .map(|l| {
            let (d, c) = l.split_once('|').unwrap();
            (d.to_string(), c.parse().unwrap())
        })
        .collect();
    for (status, expected) in [
        (200u16, Some(1)),
        (422, Some(0)),
        (503, Some(0)),
        (504, None),
    ] {
        for (client, d) in answers.by_status.get(&status).into_iter().flatten() {
            let n = stored.get(d).copied().unwrap_or(0);
            match expected {
                Some(e) => assert_eq!(n, e, "{status} for client {client} {d}: stored {n} times"),
                None => assert!(n <= 1, "{status} for {d}: stored {n} times"),
            }
        }
    }
    let other: Vec<u16> = answers
        .by_status
        .keys()
        .copied()
        .filter(|s| ![200, 422, 503, 504].contains(s))
        .collect();
    assert!(
        other.is_empty(),
        "only 200/422/503/504 answers, got {other:?}"
    );
    // Every answer the clients got meanwhile, against the final rows of the clients they used.
    let ledger: Ledger =
        serde_json::from_str(&cluster.psql(include_str!("../stress/ledger.sql"))).unwrap();
    let ours = |id: u32| id > 5 && id <= 5 + EXTRA_CLIENTS;
    let ledger = Ledger {
        clientes: ledger.clientes.into_iter().filter(|c| ours(c.0)).collect(),
        transacoes: ledger
            .transacoes
            .into_iter()
            .filter(|t| ours(t.0))
            .collect(),
    };
    let report = crebito_loader::check::check(&answers.history, &ledger);
    eprintln!("{}", report.line());
    assert!(report.statements > 0 && report.applied > 100);
    assert!(report.strict_serializable, "{:#?}", report.violations);
    // The black-box check, with no ledger (each client's order inferred from the answers,
    // from balance 0: the load's clients were fresh), agrees.
    let inferred = crebito_loader::blackbox::check(&answers.history);
    eprintln!("{}", inferred.line());
    assert!(inferred.strict_serializable, "{:#?}", inferred.violations);

    // And the balances are exactly the sums of what is stored, within their limits.
    let audit = cluster.psql(include_str!("../sql/audit.sql"));
    for row in audit.lines() {
        let f: Vec<i64> = row.split('|').map(|v| v.parse().unwrap()).collect();
        let (limite, saldo, sum) = (f[1], f[2], f[3]);
        assert_eq!(saldo, sum, "client {}: {row}", f[0]);
        assert!(saldo >= -limite, "client {}: {row}", f[0]);
    }
    eprintln!(
        "answers: {:?}",
        answers
            .by_status
            .iter()
            .map(|(s, v)| (s, v.len()))
            .collect::<Vec<_>>()
    );

    // "Newest first" across a shard move: a contest client on worker 2 (whose identity range
    // is above worker 1's) moved to worker 1 with citus_move_shard_placement; transactions
    // applied after the move are still listed before the older ones.
    let moved = (1..=5)
        .find(|id| placement[id] == w2)
        .expect("a contest client on worker 2");
    for d in ["m1", "m2"] {
        let (status, _) = api
            .post_json(moved, json!({"valor": 1, "tipo": "c", "descricao": d}))
            .await;
        assert_eq!(status, 200);
    }
    let on_w1 = format!("crebito_pg_routed_clients{{node=\"127.0.0.1:{w1_port}\"}}");
    let before_move = metric(&cluster, &on_w1).await;
    cluster.psql(&format!(
        "SELECT citus_move_shard_placement(get_shard_id_for_distribution_column('clientes', {moved}),
                '127.0.0.1', {w2_port}, '127.0.0.1', {w1_port}, shard_transfer_mode := 'block_writes')"
    ));
    // Both instances see the move in their routes (Citus's placements polled every second)
    // and send the client to worker 1 from then on: with the coordinator frozen and worker 2
    // frozen too, the moved client is still served.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = metric(&cluster, &on_w1).await;
        if now.iter().zip(&before_move).all(|(n, b)| n > b) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the routes did not follow the move: {on_w1} {before_move:?} -> {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    {
        let _thaw = (Frozen::new(&cluster, "db"), Frozen::new(&cluster, "w2"));
        assert!(
            all_stopped(&cluster, "db") && all_stopped(&cluster, "w2"),
            "both frozen"
        );
        let (status, _) = api
            .post_json(moved, json!({"valor": 1, "tipo": "c", "descricao": "m2b"}))
            .await;
        assert_eq!(status, 200, "the moved client, served by worker 1 alone");
    }
    let now_on = cluster.ok(&["shards"]);
    assert!(
        now_on
            .lines()
            .any(|l| l == format!("{moved}|127.0.0.1:{w1_port}")),
        "client {moved} moved to worker 1:\n{now_on}"
    );
    for d in ["m3", "m4"] {
        let (status, _) = api
            .post_json(moved, json!({"valor": 1, "tipo": "c", "descricao": d}))
            .await;
        assert_eq!(status, 200);
    }
    let (status, body) = api.extrato(moved).await;
    assert_eq!(status, 200);
    let newest: Vec<&str> = body["ultimas_transacoes"]
        .as_array()
        .unwrap()
        .iter()
        .take(4)
        .map(|t| t["descricao"].as_str().unwrap())
        .collect();
    assert_eq!(newest, ["m4", "m3", "m2b", "m2"], "{body:#}");

    // Down leaves nothing: no directory, no cgroup, no process.
    let status = cluster.status();
    let left: Vec<(u64, String)> = status["services"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            let pid = s["pid"].as_u64().unwrap();
            ["cpu", "cpuacct", "memory"]
                .map(|c| (pid, s["cgroups"][c].as_str().unwrap().to_string()))
        })
        .collect();
    let out = cluster.down();
    assert!(out.status.success(), "{}", text(&out));
    assert!(!cluster.dir.exists());
    for (pid, cgroup) in left {
        assert!(!Path::new(&cgroup).exists(), "{cgroup} removed");
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} stopped"
        );
    }
}

/// Every process of a service stopped (SIGSTOP) until dropped (SIGCONT), however the test
/// ends.
struct Frozen<'a> {
    cluster: &'a Cluster,
    service: &'static str,
}

impl<'a> Frozen<'a> {
    fn new(cluster: &'a Cluster, service: &'static str) -> Frozen<'a> {
        cluster.ok(&["signal", service, "STOP", "all"]);
        Frozen { cluster, service }
    }
}

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        let _ = self.cluster.run(&["signal", self.service, "CONT", "all"]);
    }
}

/// Each instance's value of the metric lines starting with `line` (through nginx's
/// operations server), summed: e.g. its `crebito_pg_routed_clients` for one node, or (with
/// `{` as the end of the prefix) for all of them.
async fn metric(cluster: &Cluster, line: &str) -> Vec<u64> {
    let ops = cluster.fact("STACK_OPS_URL");
    let mut out = Vec::new();
    for api in ["api1", "api2"] {
        let text = reqwest::get(format!("{ops}/metrics/{api}"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let n = text
            .lines()
            .filter_map(|l| l.strip_prefix(line))
            .map(|v| v.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum();
        out.push(n);
    }
    out
}

/// Requests on every load client until `deadline`, from 8 tasks: POSTs with unique
/// descriptions (tagged `phase`), and every fourth request a statement; every answer is
/// recorded in `answers`.
fn load(
    api: &Api,
    answers: &Arc<Mutex<Answers>>,
    phase: &'static str,
    deadline: Instant,
    ns: impl Fn() -> u64 + Copy + Send + 'static,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for task in 0..8u32 {
        let (api, answers) = (api.clone(), answers.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u32;
            while Instant::now() < deadline {
                n += 1;
                let client = 6 + (task * 7 + n) % EXTRA_CLIENTS;
                let invoke_ns = ns();
                if n.is_multiple_of(4) {
                    let (status, body) = api.extrato(client).await;
                    let op = Op {
                        client,
                        invoke_ns,
                        complete_ns: ns(),
                        tx: None,
                        status: status.as_u16(),
                        unknown: false,
                        body: (status == 200).then_some(body),
                        attempts: Vec::new(),
                    };
                    let mut answers = answers.lock().unwrap();
                    answers.every.push((phase, client, status.as_u16()));
                    answers.history.push(op);
                    continue;
                }
                let descricao = format!("k{task}n{n}{phase}");
                let tipo = if n.is_multiple_of(3) { "c" } else { "d" };
                let valor = 1 + n % 700;
                let (status, body) = api
                    .post_json(
                        client,
                        json!({"valor": valor, "tipo": tipo, "descricao": descricao}),
                    )
                    .await;
                let op = Op {
                    client,
                    invoke_ns,
                    complete_ns: ns(),
                    tx: Some(Tx {
                        tipo: tipo.into(),
                        valor: i64::from(valor),
                        descricao: descricao.clone(),
                    }),
                    status: status.as_u16(),
                    unknown: false,
                    body: (status == 200).then_some(body),
                    attempts: Vec::new(),
                };
                let mut answers = answers.lock().unwrap();
                answers.history.push(op);
                answers.every.push((phase, client, status.as_u16()));
                answers
                    .by_status
                    .entry(status.as_u16())
                    .or_default()
                    .push((client, descricao));
            }
        }));
    }
    tasks
}
