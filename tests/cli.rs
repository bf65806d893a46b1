//! The binary as a user runs it: flags, environment, exit codes, start-up line, signals.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_crebito");

/// A child process that is killed if the test fails before it exits by itself.
use common::KillOnDrop;

/// Starts `crebito` with the given extra env on a random port; returns the child and the
/// address from its start-up line.
fn start(dir: &std::path::Path, extra: &[(&str, &str)]) -> (KillOnDrop, String) {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env("CREBITO_LISTEN", "127.0.0.1:0")
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut child = KillOnDrop(cmd.spawn().unwrap());
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let line = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|l| l.contains("listening"))
        .expect("a start-up line");
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    assert!(line.contains("store=sqlite"), "{line}");
    let address = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("address=http://"))
        .expect("the line names the address")
        .to_string();
    (child, address)
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<i32> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    panic!("did not exit within {within:?}");
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

#[test]
fn version_and_help() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("crebito {}", env!("CARGO_PKG_VERSION"))
    );
    let out = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--listen",
        "--database-url",
        "CREBITO_LISTEN",
        "DATABASE_URL",
        "--pg-profile",
    ] {
        assert!(help.contains(flag), "{flag} documented");
    }
}

#[test]
fn an_unknown_database_url_is_a_usage_error_with_exit_code_2() {
    for (k, v) in [
        ("DATABASE_URL", "mysql://localhost/db"),
        ("CREBITO_LISTEN", "localhost"),
    ] {
        let out = Command::new(BIN).arg("serve").env(k, v).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{k}={v}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains("error"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn out_of_range_settings_are_usage_errors_with_exit_code_2() {
    for (flag, value) in [
        ("--max-connections", "0"),
        ("--request-timeout", "0"),
        ("--threads", "0"),
        ("--max-body", "1"),
    ] {
        let out = Command::new(BIN)
            .args(["serve", flag, value])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag) && err.contains("not in"), "{err}");
    }
}

#[test]
fn no_arguments_serves_from_a_sqlite_file_created_in_the_current_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, address) = start(dir.path(), &[]);
    assert!(dir.path().join("crebito.db").exists());
    let mut s = TcpStream::connect(&address).unwrap();
    s.write_all(b"GET /clientes/1/extrato HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("\"limite\":100000"), "{resp}");
    sigterm(&child);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)), Some(0));
}

/// Polls `condition` every 10 ms for up to 10 s.
fn poll(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within 10 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Once the server holds our connection (open connections: ours and the one asking), SIGTERM;
/// then the listener refuses new connections at once while the process, still alive, drains
/// the request in flight.
fn sigterm_while_draining(child: &mut Child, address: &str) {
    poll("the request in flight accepted", || {
        metric(address, "crebito_connections_open").is_some_and(|n| n >= 2.0)
    });
    sigterm(child);
    poll("the listener closed", || {
        TcpStream::connect(address).is_err()
    });
    assert!(
        child.try_wait().unwrap().is_none(),
        "still draining the request in flight"
    );
}

/// One sample of crebito's `/metrics` (on a connection of its own), if it answers.
fn metric(address: &str, name: &str) -> Option<f64> {
    let mut s = TcpStream::connect(address).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn sigterm_lets_the_request_in_flight_finish_then_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, address) = start(dir.path(), &[]);
    let body = br#"{"valor": 7, "tipo": "c", "descricao": "em voo"}"#;
    let mut s = TcpStream::connect(&address).unwrap();
    write!(
        s,
        "POST /clientes/1/transacoes HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(&body[..10]).unwrap();
    // The process stays, waiting for the rest of the body.
    sigterm_while_draining(&mut child, &address);
    s.write_all(&body[10..]).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.ends_with(r#"{"limite":100000,"saldo":7}"#), "{resp}");
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)), Some(0));
}

#[test]
fn listens_on_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("api.sock");
    let mut child = KillOnDrop(
        Command::new(BIN)
            .current_dir(dir.path())
            .args(["serve", "--listen", &format!("unix:{}", sock.display())])
            .env_remove("DATABASE_URL")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut s = loop {
        if let Ok(s) = std::os::unix::net::UnixStream::connect(&sock) {
            break s;
        }
        assert!(Instant::now() < deadline, "socket never appeared");
        std::thread::sleep(Duration::from_millis(20));
    };
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(
        resp.starts_with("HTTP/1.1 200") && resp.ends_with("Healthy"),
        "{resp}"
    );
    sigterm(&child);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)), Some(0));
    assert!(!sock.exists(), "the socket file is removed on exit");
}

#[test]
fn migrate_creates_and_seeds_the_store_then_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    for _ in 0..2 {
        // Twice: applying the schema is idempotent.
        common::succeed(Command::new(BIN).args([
            "migrate",
            "--database-url",
            &format!("sqlite://{}", db.display()),
        ]));
    }
    // The contest's five clients, exactly (the challenge's seed: id, limite, saldo 0).
    let conn = rusqlite::Connection::open(&db).unwrap();
    let clients: Vec<(i64, i64, i64)> = conn
        .prepare("SELECT id, limite, saldo FROM clientes ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        clients,
        [
            (1, 100_000, 0),
            (2, 80_000, 0),
            (3, 1_000_000, 0),
            (4, 10_000_000, 0),
            (5, 500_000, 0)
        ]
    );
}

#[test]
fn healthcheck_exits_0_for_a_live_instance_and_1_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let (_child, address) = start(dir.path(), &[]);
    let run = |listen: &str| {
        Command::new(BIN)
            .args(["healthcheck", "--listen", listen])
            .output()
            .unwrap()
    };
    let ok = run(&address);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let dead = format!("127.0.0.1:{}", common::free_port());
    let down = run(&dead);
    assert_eq!(down.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&down.stderr).contains("unhealthy"));
    let no_socket = run("unix:/nonexistent/crebito.sock");
    assert_eq!(no_socket.status.code(), Some(1));

    // An instance that answers 503 (its store down) is unhealthy, and says why.
    let refusing = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let at = refusing.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in refusing.incoming() {
            let mut s = s.unwrap();
            let _ = s.read(&mut [0u8; 1024]);
            let _ = s.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 17\r\n\r\nstore unavailable",
            );
        }
    });
    let refused = run(&at);
    assert_eq!(refused.status.code(), Some(1));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("HTTP/1.1 503 Service Unavailable"), "{said}");

    // One that accepts and never answers is unhealthy too, once the check's own 2 s are up:
    // a hung instance must not hang its health check.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let at = hung.local_addr().unwrap().to_string();
    let started = std::time::Instant::now();
    let silent = run(&at);
    assert_eq!(silent.status.code(), Some(1));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "the health check waited {:?} on a silent instance",
        started.elapsed()
    );
    drop(hung);
}

/// `--shutdown-grace` is a bound: a request still unfinished when it runs out is cut off
/// (its connection closed, no answer), and the process exits 0 all the same.
#[test]
fn a_request_still_in_flight_when_the_grace_runs_out_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    // The body would be waited for 60 s: the grace, 1 s, is what ends it.
    let (mut child, address) = start(
        dir.path(),
        &[
            ("CREBITO_SHUTDOWN_GRACE", "1"),
            ("CREBITO_REQUEST_TIMEOUT", "60"),
        ],
    );
    let mut s = TcpStream::connect(&address).unwrap();
    s.write_all(
        b"POST /clientes/1/transacoes HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{\"valor\":",
    )
    .unwrap();
    poll("the request in flight accepted", || {
        metric(&address, "crebito_connections_open").is_some_and(|n| n >= 2.0)
    });
    let signalled = Instant::now();
    sigterm(&child);
    // Within the grace and then some (a busy machine), well before the body's 60 s.
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(20)),
        Some(0),
        "not out {:?} after SIGTERM with a 1 s grace",
        signalled.elapsed()
    );
    // It waited for the grace (1 s), not for the body timeout (60 s): still, it waited.
    assert!(
        signalled.elapsed() >= Duration::from_millis(900),
        "{:?}",
        signalled.elapsed()
    );
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    assert_eq!(resp, "", "cut off without an answer");
    let conn = rusqlite::Connection::open(dir.path().join("crebito.db")).unwrap();
    let stored: i64 = conn
        .query_row("SELECT count(*) FROM transacoes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 0);
}

/// SIGTERM while a request waits on the store (SQLite's write lock held by another
/// connection): the request is answered once the store moves, and only then the process exits.
#[test]
fn sigterm_while_a_request_waits_on_the_store_answers_it_then_exits() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, address) = start(dir.path(), &[("CREBITO_STORE_TIMEOUT", "30")]);
    let blocker = rusqlite::Connection::open(dir.path().join("crebito.db")).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let body = br#"{"valor": 3, "tipo": "c", "descricao": "espera"}"#;
    let mut s = TcpStream::connect(&address).unwrap();
    write!(
        s,
        "POST /clientes/1/transacoes HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    // The whole request is in, waiting on the store.
    sigterm_while_draining(&mut child, &address);
    blocker.execute_batch("COMMIT").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.ends_with(r#"{"limite":100000,"saldo":3}"#), "{resp}");
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)), Some(0));
}

/// The configuration table (the book's operating page, its one home) is `crebito serve`'s
/// flags, both ways: every flag with its environment variable and default, none
/// missing and none invented (a flag without a default is written with words, e.g. "one per
/// core", never as a value). clap owns the facts; the docs are checked against it.
#[test]
fn the_configuration_table_is_every_flag_of_serve_with_its_default() {
    configuration_table_matches_clap("docs/src/operating.md");
}

fn configuration_table_matches_clap(page: &str) {
    use clap::CommandFactory;
    let cli = crebito::configuration::Cli::command();
    let serve = cli.find_subcommand("serve").expect("serve");
    let mut flags = std::collections::BTreeMap::new();
    for arg in serve.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if long == "help" {
            continue;
        }
        let env = arg
            .get_env()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_default();
        let default: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        flags.insert(format!("--{long}"), (env, default.first().cloned()));
    }
    let readme = std::fs::read_to_string(format!("{}/{page}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let table = readme
        .split("## Configuration")
        .nth(1)
        .expect("a Configuration section")
        .split("\n\n")
        .find(|block| block.trim_start().starts_with("| flag |"))
        .expect("the table");
    let code = |cell: &str| {
        cell.trim()
            .strip_prefix('`')
            .and_then(|c| c.strip_suffix('`'))
            .map(str::to_owned)
    };
    let mut documented = std::collections::BTreeMap::new();
    for row in table.lines().skip(2) {
        let cells: Vec<&str> = row.split('|').collect();
        let (flag, env, default) = (cells[1].trim(), cells[2], cells[3]);
        if flag.is_empty() {
            continue; // RUST_LOG: an environment variable of tracing's, no flag
        }
        let flag = code(flag).unwrap_or_else(|| panic!("{row}"));
        documented.insert(flag, (code(env).unwrap_or_default(), code(default)));
    }
    assert_eq!(
        documented.keys().collect::<Vec<_>>(),
        flags.keys().collect::<Vec<_>>(),
        "{page}: the same flags"
    );
    for (flag, (env, default)) in &flags {
        let (doc_env, doc_default) = &documented[flag];
        assert_eq!(doc_env, env, "{page}: {flag}'s environment variable");
        assert_eq!(doc_default, default, "{page}: {flag}'s default");
    }
}
