//! End to end: the native contest stack (PostgreSQL + 2 crebito + nginx, in cgroups) brought
//! up with deploy/native/stack on a free port, the official validation sequence through
//! nginx, traffic on both instances, then `stack down` leaves nothing behind.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};

use common::api::Api;
use common::checks;
use serde_json::Value;
use std::path::{Path, PathBuf};

use common::launched::Launched as Stack;

fn pids(stack: &Stack) -> Vec<u32> {
    ["db", "api1", "api2", "lb"]
        .iter()
        .map(|s| stack.pid(s))
        .collect()
}

/// Every service up, none OOM-killed or restarted (`status --json`).
fn assert_all_up_nothing_killed(stack: &Stack) {
    let status = stack.status();
    let services = status["services"].as_array().unwrap();
    assert_eq!(services.len(), 4, "{status}");
    for s in services {
        assert_eq!(s["up"], true, "{status}");
        assert_eq!(s["oom_kills"], 0, "OOM kills: {status}");
        assert_eq!(s["restarts"], 0, "restarts: {status}");
    }
}

/// GET /metrics straight from one instance's Unix socket.
fn instance_metrics(sock: &Path) -> String {
    let mut s = std::os::unix::net::UnixStream::connect(sock).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Where instance I listens (`stack env`: STACK_API1, STACK_API2; Unix sockets by default).
fn socket(stack: &Stack, i: u8) -> PathBuf {
    let listen = stack.fact(&format!("STACK_API{i}"));
    PathBuf::from(listen.strip_prefix("unix:").expect("a Unix socket"))
}

/// The directory the instances' sockets share (nginx.conf's /run/crebito, moved).
fn socket_dir(stack: &Stack) -> String {
    socket(stack, 1).parent().unwrap().display().to_string()
}

fn posts_answered(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("crebito_http_requests_total{route=\"transacoes\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

/// The profile a running stack has, as PostgreSQL and crebito report it: durable = every
/// durability setting on, logged tables, crebito's `--pg-profile durable`; contest = all
/// three off, UNLOGGED tables.
fn assert_durability(stack: &Stack, profile: &str) {
    let (setting, persistence) = match profile {
        "durable" => ("on", "p"),
        "contest" => ("off", "u"),
        other => panic!("no profile {other}"),
    };
    for name in ["fsync", "synchronous_commit", "full_page_writes"] {
        assert_eq!(
            stack.psql(&format!("SHOW {name}")),
            setting,
            "{profile}: {name}"
        );
    }
    assert_eq!(
        stack.psql(
            "SELECT string_agg(relname || '=' || relpersistence::text, ',' ORDER BY relname) \
             FROM pg_class WHERE relname IN ('clientes', 'transacoes')"
        ),
        format!("clientes={persistence},transacoes={persistence}"),
        "{profile}: the tables' persistence"
    );
    for pid in &pids(stack)[1..3] {
        let args = cmdline(*pid);
        let at = args.iter().position(|a| a == "--pg-profile").unwrap();
        assert_eq!(args[at + 1], profile, "crebito's profile");
    }
}

fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap()
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// The native stack runs the configuration the contest submission describes
/// (`scripts/submission FLAGS…`'s folder, literal values): PostgreSQL's flags, crebito's
/// settings, each service's CPU quota and memory limit, and nginx's configuration directive
/// for directive (but the socket directory, the ports and the pid file, which the launcher
/// moves).
fn assert_stack_runs_the_submission(stack: &Stack, submission_flags: &[&str]) {
    let (_tmp, folder) = common::submission_with(submission_flags);
    let mut compose: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(folder.join("docker-compose.yml")).unwrap())
            .unwrap();
    compose.apply_merge().unwrap();
    let svc = |name: &str| compose["services"][name].clone();
    let [db, api1, api2, _] = pids(stack)[..] else {
        panic!("four services")
    };
    // PostgreSQL's settings, parsed into name → value maps and compared both ways: what the
    // submission sets, the native server runs, and nothing else but what the launcher must
    // set for itself (its own port, socket directory and data directory, flags not `-c`).
    let submitted = common::postgres_args(&svc("db")["command"]).unwrap();
    assert_eq!(
        common::pg_settings(&cmdline(db)),
        common::pg_settings(&submitted),
        "the native PostgreSQL runs exactly the submission's settings"
    );
    for (pid, name) in [(api1, "api1"), (api2, "api2")] {
        // crebito's settings: each CREBITO_* variable the submission sets, as the native
        // command line's flag of the same name (clap reads one or the other), both ways.
        let args = cmdline(pid);
        let env = svc(name)["environment"].clone();
        let submitted: std::collections::BTreeMap<String, String> = env
            .as_mapping()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().unwrap().to_string(),
                    v.as_str().unwrap().to_string(),
                )
            })
            .filter(|(k, _)| k.starts_with("CREBITO_"))
            .collect();
        let flag_of = |key: &str| {
            format!(
                "--{}",
                key.trim_start_matches("CREBITO_")
                    .to_lowercase()
                    .replace('_', "-")
            )
        };
        let native: std::collections::BTreeMap<String, String> = submitted
            .keys()
            .filter_map(|key| {
                let at = args.iter().position(|a| *a == flag_of(key))?;
                Some((key.clone(), args[at + 1].clone()))
            })
            .collect();
        assert_eq!(
            native, submitted,
            "{name}: every submitted setting, as the native flag"
        );
        let flags: Vec<&String> = args.iter().filter(|a| a.starts_with("--")).collect();
        // The native launcher's own: where to listen and which database (Compose gives
        // the same through the command and DATABASE_URL), the layout and the extra clients
        // (the contest's defaults, given explicitly).
        let own = [
            "--listen",
            "--database-url",
            "--pg-layout",
            "--extra-clients",
        ];
        for f in flags {
            assert!(
                own.contains(&f.as_str()) || submitted.keys().any(|k| flag_of(k) == *f),
                "{name}: {f} is not in the submission"
            );
        }
    }
    let v2 = stack.status()["cgroup_version"] == 2;
    for (native, submitted) in [
        ("db", "db"),
        ("api1", "api1"),
        ("api2", "api2"),
        ("lb", "nginx"),
    ] {
        let limits = &svc(submitted)["deploy"]["resources"]["limits"];
        let mb: u64 = limits["memory"]
            .as_str()
            .unwrap()
            .trim_end_matches("MB")
            .parse()
            .unwrap();
        let cpus: f64 = limits["cpus"].as_str().unwrap().parse().unwrap();
        let bytes = mb * 1024 * 1024;
        let quota = (cpus * 100_000.0).round() as u64;
        // The kernel's own files, in the directories the stack reports.
        let cgroups = stack.service(native)["cgroups"].clone();
        let read = |dir: &Value, file: &str| {
            let p = Path::new(dir.as_str().unwrap()).join(file);
            std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        };
        let (mem_limit, cpu_quota) = if v2 {
            let max = read(&cgroups["cpu"], "cpu.max");
            (
                read(&cgroups["memory"], "memory.max"),
                max.split(' ').next().unwrap().to_string(),
            )
        } else {
            (
                read(&cgroups["memory"], "memory.limit_in_bytes"),
                read(&cgroups["cpu"], "cpu.cfs_quota_us"),
            )
        };
        assert_eq!(mem_limit.trim(), bytes.to_string(), "{native} memory limit");
        assert_eq!(cpu_quota.trim(), quota.to_string(), "{native} CPU quota");
    }
    let moved = |conf: &str, run: &str| -> Vec<common::nginx::Directive> {
        common::nginx::directives(&conf.replace(run, "/run/crebito"))
            .into_iter()
            .filter(|d| !["listen", "pid"].contains(&d.name()))
            .collect()
    };
    let running = std::fs::read_to_string(stack.fact("STACK_LB_CONF")).unwrap();
    let submitted = std::fs::read_to_string(folder.join("nginx.conf")).unwrap();
    assert_eq!(
        moved(&running, &socket_dir(stack)),
        moved(&submitted, "/run/crebito"),
        "the native nginx runs the submitted nginx.conf"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_stack_is_durable_and_passes_the_official_validations_through_nginx() {
    let mut stack = Stack::stack(&[], &[]);
    assert_stack_runs_the_submission(&stack, &[]);
    assert_durability(&stack, "durable");
    // Like Gatling: a new connection per request.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let api = Api::with_client(client, stack.url());
    checks::official_validation_sequence(std::slice::from_ref(&api)).await;

    let (a, b) = (
        posts_answered(&instance_metrics(&socket(&stack, 1))),
        posts_answered(&instance_metrics(&socket(&stack, 2))),
    );
    assert_eq!(
        a + b,
        25 + 25 + 5 * 8,
        "every POST reached exactly one instance"
    );
    assert!(
        a > 0 && b > 0,
        "round robin spread the POSTs over both instances: {a} + {b}"
    );

    // Nothing internal on the public port: /metrics only through the loopback operations
    // server, where Prometheus scrapes it.
    for path in ["/metrics", "/metrics?format=text", "/metrics/api1"] {
        let r = reqwest::get(format!("{}{path}", stack.url()))
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path} on the public port");
        assert!(!r.text().await.unwrap().contains("crebito_"), "{path}");
    }
    let ops = reqwest::get(format!("{}/metrics/api1", stack.fact("STACK_OPS_URL")))
        .await
        .unwrap();
    assert_eq!(ops.status(), 200);
    assert!(
        ops.text()
            .await
            .unwrap()
            .contains("crebito_http_requests_total")
    );

    // `status` for people and `status --json` for programs say the same.
    let table = stack.ok(&["status"]);
    assert_eq!(
        table.lines().filter(|l| l.contains(" up ")).count(),
        4,
        "{table}"
    );
    assert_all_up_nothing_killed(&stack);

    // Supervision: an instance killed outright comes back by itself, on the same socket.
    let old = pids(&stack)[1];
    stack.ok(&["signal", "api1", "KILL"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let back = pids(&stack)[1] != old
            && std::os::unix::net::UnixStream::connect(socket(&stack, 1)).is_ok();
        if back {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "api1 did not come back"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(instance_metrics(&socket(&stack, 1)).contains("crebito_connections_total"));
    assert_eq!(stack.service("api1")["restarts"], 1, "one restart");

    let pids = pids(&stack);
    let cgroups: Vec<String> = stack.status()["services"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            ["cpu", "cpuacct", "memory"].map(|c| s["cgroups"][c].as_str().unwrap().to_string())
        })
        .collect();
    let out = stack.down();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} still running after down"
        );
    }
    assert!(!stack.dir.exists(), "state directory removed");
    for dir in &cgroups {
        assert!(!Path::new(dir).exists(), "cgroup {dir} removed");
    }
}

/// Overload without death: PostgreSQL frozen (SIGSTOP) while 5 000 clients each send one
/// POST at once, then thawed. nginx lets at most its in-flight bound through and refuses the
/// rest at once with a 503 that never reached crebito; those let in are answered 200, or
/// 504 "outcome unknown" past crebito's store deadline; every 503 and 504 says `Retry-After:
/// 1`; every process stays within its memory limit; the ledger matches what each client was
/// told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_against_a_frozen_database_queues_or_refuses_and_kills_nothing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const CLIENTS: usize = 5000;
    assert!(
        common::raise_nofile() > CLIENTS as u64 + 100,
        "ulimit -n too low"
    );
    // A store deadline longer than the freeze: nothing admitted leaves before PostgreSQL is
    // back, so the in-flight bound is the only thing deciding who gets in.
    let mut stack = Stack::stack(&[], &[("CREBITO_STORE_TIMEOUT", "60")]);
    let db_cgroup = stack.service("db")["cgroups"]["memory"].clone();
    let db_procs =
        std::fs::read_to_string(Path::new(db_cgroup.as_str().unwrap()).join("cgroup.procs"))
            .expect("PostgreSQL's cgroup");
    let pg: Vec<i32> = db_procs.lines().map(|l| l.parse().unwrap()).collect();
    let signal = |sig| {
        for &pid in &pg {
            // SAFETY: kill(2) on pids of processes this stack started.
            unsafe { libc::kill(pid, sig) };
        }
    };

    signal(libc::SIGSTOP);
    // The freeze bit: every PostgreSQL process is stopped (state T) before the flood.
    let stopped = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit(')')
                    .next()
                    .map(|rest| rest.trim_start().starts_with('T'))
            })
            .unwrap_or(false)
    };
    let frozen_by = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !pg.iter().all(|&p| stopped(p)) {
        assert!(
            std::time::Instant::now() < frozen_by,
            "PostgreSQL was not frozen"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut clients = tokio::task::JoinSet::new();
    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let thawed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for i in 0..CLIENTS {
        let port = stack.port;
        let (written, answered, thawed) = (written.clone(), answered.clone(), thawed.clone());
        clients.spawn(async move {
            let body = format!(r#"{{"valor": 1, "tipo": "c", "descricao": "o{i:07}"}}"#);
            let req = format!(
                "POST /clientes/{}/transacoes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                i % 5 + 1,
                body.len()
            );
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
            s.write_all(req.as_bytes()).await?;
            written.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut answer = String::new();
            s.read_to_string(&mut answer).await?;
            let while_frozen = !thawed.load(std::sync::atomic::Ordering::SeqCst);
            answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok::<_, std::io::Error>((format!("o{i:07}"), answer, while_frozen))
        });
    }
    // Every request written, and every one beyond the bound refused while PostgreSQL is
    // still frozen (polled, up to 30 s; a bound that admits more never gets there).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while written.load(std::sync::atomic::Ordering::SeqCst) < CLIENTS
        || answered.load(std::sync::atomic::Ordering::SeqCst) + 512 < CLIENTS
    {
        assert!(
            std::time::Instant::now() < deadline,
            "within 30 s of a frozen PostgreSQL: {} of {CLIENTS} written, {} answered; \
             the bound admits at most 512",
            written.load(std::sync::atomic::Ordering::SeqCst),
            answered.load(std::sync::atomic::Ordering::SeqCst)
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        pg.iter().all(|&p| stopped(p)),
        "still frozen when the refusals were counted"
    );
    thawed.store(true, std::sync::atomic::Ordering::SeqCst);
    signal(libc::SIGCONT);

    // What each client was told, by its unique descricao. Every refusal says when to retry.
    let retry_after = |answer: &str| {
        let head = answer.split("\r\n\r\n").next().unwrap_or_default();
        // Line by line: nginx writes its added headers last, with no CRLF after them here.
        head.split("\r\n")
            .skip(1)
            .any(|line| line.eq_ignore_ascii_case("retry-after: 1"))
    };
    let (mut ok, mut refused, mut unknown) = (HashSet::new(), HashSet::new(), HashSet::new());
    let mut refused_frozen = 0;
    while let Some(answer) = clients.join_next().await {
        let (descricao, answer, while_frozen) =
            answer.unwrap().expect("every client gets an answer");
        if while_frozen {
            // Nothing but the bound can answer while the store is frozen.
            assert_eq!(answer.get(9..12), Some("503"), "{answer}");
            refused_frozen += 1;
        }
        match &answer.get(9..12) {
            Some("200") => ok.insert(descricao),
            Some("503") => {
                assert!(
                    answer.ends_with("overloaded: not applied, retry\n") && retry_after(&answer),
                    "{answer}"
                );
                refused.insert(descricao)
            }
            // Queued past crebito's store deadline while PostgreSQL was frozen; its
            // Retry-After passed on by nginx.
            Some("504") => {
                assert!(
                    answer.contains("outcome unknown") && retry_after(&answer),
                    "{answer}"
                );
                unknown.insert(descricao)
            }
            _ => panic!("unexpected answer: {answer}"),
        };
    }
    assert_eq!(ok.len() + refused.len() + unknown.len(), CLIENTS);
    assert!(
        refused_frozen + 512 >= CLIENTS,
        "the bound refused at once, while PostgreSQL was frozen: {refused_frozen} then"
    );
    assert!(
        ok.len() + unknown.len() <= 512,
        "at most 512 in flight: {} admitted, {} refused",
        ok.len() + unknown.len(),
        refused.len()
    );

    // The ledger against the clients' own view: every 200 stored, no 503 stored, nothing
    // stored that nobody was told about (a 504 may or may not have been applied).
    let stored: HashSet<String> = stack
        .psql("SELECT descricao FROM transacoes WHERE descricao LIKE 'o%'")
        .lines()
        .map(str::to_string)
        .collect();
    assert!(
        ok.is_subset(&stored),
        "an answered 200 is missing from the ledger"
    );
    assert!(
        stored.is_disjoint(&refused),
        "a refused request was applied"
    );
    assert!(stored.iter().all(|d| ok.contains(d) || unknown.contains(d)));
    eprintln!(
        "flood: {} × 200, {} × 503, {} × 504 (of which {} applied)",
        ok.len(),
        refused.len(),
        unknown.len(),
        stored.intersection(&unknown).count()
    );
    assert_all_up_nothing_killed(&stack);
    assert!(stack.down().status.success());
}

/// Hostile clients against the contest stack, all at once: 2 000 idle connections, 200
/// slowloris clients dribbling a header one byte every 300 ms, oversized headers, pipelined
/// garbage and random bytes. While they hold, normal traffic (a new connection per request,
/// as in the contest) is served; no answer is a 5xx; nothing is killed or restarted; and an
/// idle connection is closed by nginx's header timeout: every connection is bounded in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_clients_do_not_stop_normal_traffic() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    assert!(common::raise_nofile() > 4000, "ulimit -n too low");
    let mut stack = Stack::stack(&[], &[]);
    let addr = ("127.0.0.1", stack.port);

    let mut idle = Vec::new();
    for _ in 0..2000 {
        idle.push(TcpStream::connect(addr).await.expect("connect"));
    }
    let mut slow = tokio::task::JoinSet::new();
    for _ in 0..200 {
        slow.spawn(async move {
            let mut s = TcpStream::connect(addr).await?;
            s.write_all(b"GET /clientes/1/extrato HTTP/1.1\r\nX-Slow: ")
                .await?;
            for _ in 0..50 {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                s.write_all(b"a").await?;
            }
            Ok::<_, std::io::Error>(())
        });
    }
    // One exchange on its own connection; the status line, if any.
    async fn exchange(addr: (&str, u16), bytes: Vec<u8>) -> Vec<u16> {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let _ = s.write_all(&bytes).await;
        let mut out = Vec::new();
        let _ =
            tokio::time::timeout(std::time::Duration::from_secs(15), s.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out)
            .match_indices("HTTP/1.1 ")
            .filter_map(|(i, _)| out.get(i + 9..i + 12))
            .filter_map(|c| std::str::from_utf8(c).ok()?.parse().ok())
            .collect()
    }
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let codes = exchange(addr, big.into_bytes()).await;
    assert!(
        !codes.is_empty() && codes.iter().all(|c| (400..500).contains(c)),
        "oversized header: one 4xx answer, got {codes:?}"
    );
    let pipelined =
        b"GET /clientes/1/extrato HTTP/1.1\r\nHost: x\r\n\r\n\x00\x01GARBAGE\r\n\r\n".to_vec();
    let codes = exchange(addr, pipelined).await;
    assert_eq!(
        codes,
        [200, 400],
        "the valid request answered, then the garbage refused"
    );
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..20 {
        let noise: Vec<u8> = (0..1024)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let codes = exchange(addr, noise).await;
        assert_eq!(codes, [400], "random bytes: one 400");
    }

    // Normal traffic while all of that holds.
    let api = Api::with_client(
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap(),
        stack.url(),
    );
    for i in 0..100 {
        let (status, _) = api
            .post_json(
                i % 5 + 1,
                serde_json::json!({"valor": 1, "tipo": "c", "descricao": "ok"}),
            )
            .await;
        assert_eq!(status, 200, "request {i} while hostile clients hold");
        let (status, _) = api.extrato(i % 5 + 1).await;
        assert_eq!(status, 200);
    }
    assert_eq!(api.saldo(1).await, 20);

    // Still holding: the idle connections were not simply dropped...
    let mut probe = [0u8; 1];
    assert!(
        idle[0]
            .try_read(&mut probe)
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "idle connections are still open while normal traffic is served"
    );
    // ...but none is kept forever: nginx closes it at its header timeout (10 s).
    let closed =
        tokio::time::timeout(std::time::Duration::from_secs(20), idle[0].read(&mut probe)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "idle connection closed: {closed:?}"
    );
    drop(idle);
    slow.abort_all();

    assert_all_up_nothing_killed(&stack);
    assert!(stack.down().status.success());
}

/// `stack up --observe`: Prometheus (Debian's package) scrapes both instances (through
/// nginx's operations server), the PostgreSQL exporter and the nginx exporter; every metric
/// the Grafana dashboard queries has series; `down` stops the observers too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observed_stack_gives_prometheus_every_series_the_dashboard_uses() {
    let mut stack = Stack::stack(&["--observe"], &[]);
    let api = Api::new(stack.url());
    for i in 0..20u32 {
        let body = serde_json::json!({"valor": 1, "tipo": "c", "descricao": "obs"});
        assert_eq!(api.post_json(1 + i % 5, body).await.0, 200);
        assert_eq!(api.extrato(1 + i % 5).await.0, 200);
    }
    let prom = stack.fact("STACK_PROM_URL");
    let http = reqwest::Client::new();
    let query = |q: String| {
        let (http, prom) = (http.clone(), prom.clone());
        async move {
            let v: serde_json::Value = http
                .get(format!("{prom}/api/v1/query?query={}", urlencode(&q)))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["data"]["result"].as_array().cloned().unwrap_or_default()
        }
    };
    let dash: serde_json::Value =
        serde_json::from_str(&common::read("deploy/observability/grafana/crebito.json")).unwrap();
    let metrics = common::dashboard_metrics(&dash);
    assert!(metrics.len() >= 8, "{metrics:?}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    loop {
        let up = query("up == 1".into()).await;
        let mut missing = Vec::new();
        for m in &metrics {
            if query(format!("count({m})")).await.is_empty() {
                missing.push(m.clone());
            }
        }
        let crebito_instances = query("crebito_connections_total".into()).await.len();
        if up.len() == 4 && missing.is_empty() && crebito_instances == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "targets up: {up:?}; series missing: {missing:?}; crebito instances: {crebito_instances}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let posts =
        query("sum(crebito_http_requests_total{route=\"transacoes\",status=\"200\"})".into()).await;
    assert_eq!(
        posts[0]["value"][1], "20",
        "both instances' counters, summed"
    );
    let observers: Vec<u32> = ["obs-prom", "obs-pgexp", "obs-ngexp"]
        .iter()
        .map(|s| stack.pid(s))
        .collect();
    let out = stack.down();
    assert!(out.status.success());
    for pid in observers {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "observer {pid} stopped"
        );
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The contest opt-in (`CREBITO_PG_PROFILE=contest`, the one variable) runs what
/// `scripts/submission --contest` describes, without durability; after a PostgreSQL crash, as
/// documented, crash recovery empties the UNLOGGED tables (clients included), and the
/// instances' reconnect re-applies the schema and seeds the five clients again — every client
/// answers with its limit and a zero balance, by itself, without a restart of crebito.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contest_opt_in_runs_without_durability_and_starts_over_after_a_crash() {
    let stack = Stack::stack(&[], &[("CREBITO_PG_PROFILE", "contest")]);
    assert_stack_runs_the_submission(&stack, &["--contest"]);
    assert_durability(&stack, "contest");
    let api = Api::new(stack.url());
    let (status, _) = api
        .post_json(
            1,
            serde_json::json!({"valor": 500, "tipo": "d", "descricao": "antes"}),
        )
        .await;
    assert_eq!(status, 200);
    let apis_before = [pids(&stack)[1], pids(&stack)[2]];

    // Every PostgreSQL process SIGKILLed: the supervisor restarts it, with crash recovery.
    stack.ok(&["signal", "db", "KILL", "all"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    for (id, limite) in checks::CLIENTS {
        loop {
            let (status, e) = api.extrato(id).await;
            if status == 200 {
                assert_eq!(e["saldo"]["limite"], limite, "client {id} re-seeded");
                assert_eq!(
                    e["saldo"]["total"], 0,
                    "client {id}: the UNLOGGED history is gone"
                );
                assert_eq!(e["ultimas_transacoes"], serde_json::json!([]));
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "client {id} answers {status} 30 s after the crash"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    assert_eq!(
        stack.psql("SELECT count(*) FROM transacoes"),
        "0",
        "crash recovery emptied the UNLOGGED tables"
    );
    assert_eq!(
        [pids(&stack)[1], pids(&stack)[2]],
        apis_before,
        "the instances reconnected by themselves, not restarted"
    );
    let (status, body) = api
        .post_json(
            1,
            serde_json::json!({"valor": 1, "tipo": "c", "descricao": "depois"}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), &body["saldo"]),
        (200, &serde_json::json!(1))
    );
}

/// `DB_WRITE_IOPS` (bench/durability.sh's slower disk, on purpose): every process of the
/// database service sits in a blkio cgroup limited to that many writes a second on the disk
/// holding the stack, its durable commits' writes are the ones counted (and so throttled)
/// there, and `down` removes the cgroup even when its own environment does not name the knob.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_write_iops_throttles_the_databases_own_writes_and_down_removes_the_limit() {
    let mut stack = Stack::stack(&[], &[("DB_WRITE_IOPS", "5000")]);
    let cg = PathBuf::from(format!("/sys/fs/cgroup/blkio/crebito-{}", stack.port));
    let read = |f: &str| std::fs::read_to_string(cg.join("db").join(f)).unwrap();
    let limit = read("blkio.throttle.write_iops_device");
    assert!(limit.trim_end().ends_with(" 5000"), "{limit:?}");
    let device = limit.split_whitespace().next().unwrap().to_string();
    let procs: HashSet<u32> = read("cgroup.procs")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert!(procs.contains(&stack.pid("db")), "{procs:?}");
    let writes = || {
        read("blkio.throttle.io_serviced")
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{device} Write ")))
            .map_or(0, |n| n.parse::<u64>().unwrap())
    };
    let before = writes();
    let api = Api::new(stack.url());
    for i in 0..20 {
        let (status, _) = api
            .post_json(
                1 + i % 5,
                serde_json::json!({"valor": 1, "tipo": "c", "descricao": "flush"}),
            )
            .await;
        assert_eq!(status, 200);
    }
    assert!(
        writes() >= before + 20,
        "20 durable commits, each a WAL flush, counted in the db's blkio cgroup: {before} -> {}",
        writes()
    );
    // `down` with only the port and the directory, as a later shell would have them.
    stack.env.clear();
    assert!(stack.down().status.success());
    assert!(!cg.exists(), "{} removed", cg.display());
}

/// Writes an executable shell script.
fn script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\nset -e\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// STACK_ENTRY (how bench/reference.sh runs another contest entry in crebito's place): the
/// entry's `setup` instead of crebito's migration, its `serve` per instance on loopback TCP,
/// the database it names, its nginx.conf with LB=entry. The entry here is crebito itself,
/// started by those scripts, so that what runs can be told apart only by where it came from.
/// And a stack up with another split keeps it: `status` reads the limits from the cgroups,
/// not from the environment of whoever asks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_entry_runs_in_crebitos_place_with_its_database_and_its_nginx() {
    let entry = tempfile::tempdir().unwrap();
    let crebito = env!("CARGO_BIN_EXE_crebito");
    let url = r#"postgres://$PGUSER@localhost:$PGPORT/$PGDATABASE?host=$PGHOST"#;
    std::fs::write(entry.path().join("database"), "ledger\n").unwrap();
    script(
        &entry.path().join("setup"),
        &format!(r#"exec "{crebito}" migrate --database-url "{url}" --pg-profile durable"#),
    );
    script(
        &entry.path().join("serve"),
        &format!(
            r#"exec "{crebito}" serve --listen "127.0.0.1:$PORT" --database-url "{url}" --pg-profile durable --threads 1"#
        ),
    );
    std::fs::write(
        entry.path().join("nginx.conf"),
        "error_log stderr;\nevents {}\nhttp {\n  upstream api { server @API1@; server @API2@; keepalive 8; }\n  \
         server {\n    listen 127.0.0.1:@PORT@;\n    add_header X-Entry-Conf yes;\n    \
         location / { proxy_pass http://api; proxy_http_version 1.1; proxy_set_header Connection \"\"; }\n  }\n}\n",
    )
    .unwrap();
    let entry_dir = entry.path().to_str().unwrap();
    let mut stack = Stack::stack(
        &[],
        &[
            ("STACK_ENTRY", entry_dir),
            ("LB", "entry"),
            ("DB_CPUS", "0.5"),
        ],
    );
    assert_eq!(stack.fact("STACK_ENTRY"), entry_dir);
    assert_eq!(stack.fact("STACK_DB_NAME"), "ledger");

    let api = Api::new(stack.url());
    for id in 1..=5 {
        let (status, body) = api
            .post_json(
                id,
                serde_json::json!({"valor": 7, "tipo": "c", "descricao": "entry"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let r = reqwest::get(format!("{}/clientes/1/extrato", stack.url()))
        .await
        .unwrap();
    assert_eq!(
        r.headers().get("x-entry-conf").map(|v| v.to_str().unwrap()),
        Some("yes"),
        "nginx runs the entry's own nginx.conf"
    );
    for i in 1..=2 {
        let args = cmdline(stack.pid(&format!("api{i}")));
        let at = args.iter().position(|a| a == "--listen").unwrap();
        assert_eq!(
            args[at + 1],
            format!("127.0.0.1:{}", stack.port + 1 + i),
            "instance {i} on loopback TCP, from the entry's serve"
        );
    }

    // A later shell, with only the port and the directory: the entry's database, the split
    // the stack was brought up with.
    stack.env.clear();
    assert_eq!(
        stack.psql("SELECT current_database() || ' ' || sum(saldo) FROM clientes"),
        "ledger 35"
    );
    assert_eq!(stack.service("db")["cpus"], serde_json::json!(0.5));
    assert_eq!(stack.service("api1")["cpus"], serde_json::json!(0.2));
    assert!(stack.down().status.success());
}
