//! The binary as a user runs it: flags, environment, exit codes, start-up line, signals.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_crebito");

/// A child process that is killed if the test fails before it exits by itself.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl std::ops::Deref for Guard {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Guard {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

/// Starts `crebito` with the given extra env on a random port; returns the child and the
/// address from its start-up line.
fn start(dir: &std::path::Path, extra: &[(&str, &str)]) -> (Guard, String) {
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
    let mut child = Guard(cmd.spawn().unwrap());
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
        ("--workers", "0"),
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
    std::thread::sleep(Duration::from_millis(300));
    sigterm(&child);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "still draining the request in flight"
    );
    // New connections are no longer accepted.
    assert!(
        TcpStream::connect(&address).is_err() || child.try_wait().unwrap().is_none(),
        "listener closed"
    );
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
    let mut child = Guard(
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
    let conn = rusqlite::Connection::open(&db).unwrap();
    let clients: i64 = conn
        .query_row("SELECT count(*) FROM clientes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(clients, 5);
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
}
