//! End to end: the native contest stack (PostgreSQL + 2 crebito + nginx, in cgroups) brought
//! up with deploy/native/stack on a free port, the official validation sequence through
//! nginx, traffic on both instances, then `stack down` leaves nothing behind.

#[path = "api/checks.rs"]
mod checks;

use std::io::{Read, Write};
mod common;

use common::free_port;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Stack {
    port: u16,
    dir: PathBuf,
    up: bool,
}

fn launcher(port: u16, dir: &Path, cmd: &str) -> std::process::Output {
    Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/native/stack"))
        .arg(cmd)
        .env("PORT", port.to_string())
        .env("STACK_DIR", dir)
        .env("CREBITO_BIN", env!("CARGO_BIN_EXE_crebito"))
        .output()
        .expect("the launcher runs")
}

impl Stack {
    fn up() -> Stack {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("crebito-stack-test-{port}"));
        let out = launcher(port, &dir, "up");
        let stack = Stack {
            port,
            dir,
            up: true,
        };
        assert!(
            out.status.success(),
            "stack up failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("http://127.0.0.1:{port}")
        );
        stack
    }

    fn pids(&self) -> Vec<u32> {
        ["db", "api1", "api2", "lb"]
            .iter()
            .map(|s| {
                std::fs::read_to_string(self.dir.join("pid").join(s))
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap()
            })
            .collect()
    }

    fn down(&mut self) -> std::process::Output {
        self.up = false;
        launcher(self.port, &self.dir, "down")
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if self.up {
            let _ = self.down();
        }
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

fn posts_answered(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("crebito_http_requests_total{route=\"transacoes\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contest_stack_passes_the_official_validations_through_nginx() {
    let mut stack = Stack::up();
    let base = format!("http://127.0.0.1:{}", stack.port);
    // Like Gatling: a new connection per request.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    checks::official_validation_sequence(&client, std::slice::from_ref(&base)).await;

    let (a, b) = (
        posts_answered(&instance_metrics(&stack.dir.join("run/api1.sock"))),
        posts_answered(&instance_metrics(&stack.dir.join("run/api2.sock"))),
    );
    assert_eq!(
        a + b,
        25 + 25 + 5 * 8,
        "every POST reached exactly one instance"
    );
    assert!(
        a > 0 && b > 0,
        "least_conn spread the POSTs over both instances: {a} + {b}"
    );

    let status = launcher(stack.port, &stack.dir, "status");
    let table = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{table}");
    assert_eq!(
        table.lines().filter(|l| l.contains(" up ")).count(),
        4,
        "{table}"
    );

    let pids = stack.pids();
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
    let cg = format!("crebito-{}", stack.port);
    for h in ["cpu", "cpuacct", "memory"] {
        assert!(
            !Path::new("/sys/fs/cgroup").join(h).join(&cg).exists(),
            "cgroup {h}/{cg} removed"
        );
    }
    assert!(
        !Path::new("/sys/fs/cgroup").join(&cg).exists(),
        "cgroup v2 {cg} removed"
    );
}
