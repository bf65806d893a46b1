//! No death by overload: one crebito instance, inside the memory limit the contest stack
//! gives it (deploy/.env), held by thousands of clients at once that never finish their
//! request. Its connection bound (`CREBITO_MAX_CONNECTIONS`) must keep it under the limit:
//! the kernel kills nothing, and once the crowd leaves it answers as before.
//! The stack-wide version (nginx's bound, PostgreSQL frozen) is in tests/stack.rs.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use common::KillOnDrop;

async fn get(addr: &str, path: &str) -> reqwest::StatusCode {
    reqwest::Client::new()
        .get(format!("http://{addr}{path}"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("the instance answers")
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_under_its_contest_memory_limit_survives_thousands_of_connections() {
    const CROWD: usize = 4000;
    let env = common::deploy_env();
    let limit_mb: u64 = env["API_MEMORY_MB"].parse().unwrap();
    let max_connections = &env["CREBITO_MAX_CONNECTIONS"];
    assert!(
        common::raise_nofile() > CROWD as u64 + 100,
        "ulimit -n too low"
    );

    let cgroup = common::MemCgroup::create(
        &format!("crebito-overload-{}", std::process::id()),
        limit_mb,
    );
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", common::free_port());
    let db = format!("sqlite://{}", dir.path().join("c.db").display());
    let mut child = KillOnDrop(
        Command::new("sh")
            .args(["-c", r#"echo $$ > "$0" && exec "$@""#])
            .arg(cgroup.procs())
            .args([env!("CARGO_BIN_EXE_crebito"), "serve", "--threads", "1"])
            .args(["--listen", &addr, "--database-url", &db])
            .args(["--max-connections", max_connections])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "crebito did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Each client sends most of a request head and then nothing: the instance must hold
    // or queue every one of them (hyper keeps a read buffer per accepted connection).
    let mut crowd = Vec::with_capacity(CROWD);
    for _ in 0..CROWD {
        let mut s = TcpStream::connect(&addr).await.expect("connect (queued)");
        s.write_all(b"GET /clientes/1/extrato HTTP/1.1\r\nHost: x\r\nUser-Agent: slow")
            .await
            .unwrap();
        crowd.push(s);
    }
    // The instance holds as many as it may (its listener and one socket a connection; the
    // rest wait in the kernel's accept queue): polled from its open sockets.
    let want = max_connections.parse::<usize>().unwrap().min(CROWD) + 1;
    let sockets = |pid: u32| {
        std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |fds| {
            fds.filter_map(Result::ok)
                .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                .filter(|l| l.to_string_lossy().starts_with("socket:"))
                .count()
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while sockets(child.0.id()) < want {
        assert!(
            Instant::now() < deadline && child.0.try_wait().unwrap().is_none(),
            "crebito holds {} sockets of {want}",
            sockets(child.0.id())
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "crebito died while {CROWD} clients held it"
    );
    assert_eq!(cgroup.oom_kills(), 0, "the kernel killed the instance");
    // And not the crowd: the rest waits in the kernel's accept queue. (A few more sockets
    // than the bound can be the start-up probes' connections, closed but not yet released.)
    assert!(
        sockets(child.0.id()) <= want + 8,
        "crebito holds {} sockets: more than its {max_connections} connections",
        sockets(child.0.id())
    );
    // Memory stays well inside the limit (~20 KiB per held connection: ~26 MiB), not at it.
    let peak_mb = cgroup.peak() / (1024 * 1024);
    assert!(peak_mb > 0, "the cgroup reports its peak");
    assert!(
        peak_mb * 4 < limit_mb * 3,
        "peak {peak_mb} MiB with {CROWD} clients: not under three quarters of {limit_mb}"
    );
    drop(crowd);

    // Answering again, on new connections, once the crowd has gone.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout(Duration::from_secs(5), get(&addr, "/healthz")).await {
            Ok(s) if s == 200 => break,
            other => assert!(Instant::now() < deadline, "not answering: {other:?}"),
        }
    }
    assert_eq!(get(&addr, "/clientes/1/extrato").await, 200);
    assert!(child.0.try_wait().unwrap().is_none());
    assert_eq!(cgroup.oom_kills(), 0);
    eprintln!("peak memory with {CROWD} clients: {peak_mb} MiB of {limit_mb}");
    drop(child);
}
