//! The loader's retry budget, end to end: the real binary against a server that refuses every
//! request, counting what reaches it. A refusal (503, not applied) is retried only within the
//! budget; an unknown outcome (504) is always retried with its key, budget or not.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A server on 127.0.0.1 answering every request `status` with `Retry-After: 1`, and the
/// count of POSTs it received.
fn refusing(status: &'static str) -> (std::net::SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let posts = Arc::new(AtomicU64::new(0));
    let counted = posts.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let counted = counted.clone();
            std::thread::spawn(move || answer(stream, status, &counted));
        }
    });
    (addr, posts)
}

/// Reads one request's head (and its body, by content-length) and answers it.
fn answer(mut stream: TcpStream, status: &str, posts: &AtomicU64) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let head_end = loop {
        let Ok(n) = stream.read(&mut chunk) else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    while buf.len() < head_end + length {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    if head.starts_with("post ") {
        posts.fetch_add(1, Ordering::SeqCst);
    }
    let _ = stream.write_all(
        format!(
            "HTTP/1.1 {status}\r\nretry-after: 1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
}

struct Run {
    /// POSTs the loader made (first attempts).
    posts: u64,
    /// POSTs the server received.
    received: u64,
    /// Retries the budget refused, as the loader reports it.
    denied: Option<u64>,
}

/// The loader against a server answering `status`, each POST retried at most once.
fn run(status: &'static str, budget: &str) -> Run {
    let (addr, received) = refusing(status);
    let dir = tempfile_dir();
    let out = dir.join(format!("{budget}.json"));
    let status_ok = Command::new(env!("CARGO_BIN_EXE_crebito-loader"))
        .args(["--target", &addr.to_string()])
        .args([
            "--scale",
            "0.5",
            "--duration-scale",
            "0.02",
            "--timeout",
            "5",
        ])
        .args(["--idempotent", "--retries", "1", "--retry-for", "10"])
        .args(["--retry-budget", budget])
        .arg("--out")
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status_ok.success());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let scenarios = &summary["per_scenario"];
    let posts = scenarios["debitos"]["requests"].as_u64().unwrap()
        + scenarios["creditos"]["requests"].as_u64().unwrap();
    Run {
        posts,
        received: received.load(Ordering::SeqCst),
        denied: summary["retry_budget"]["denied"].as_u64(),
    }
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "crebito-loader-budget-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
static COUNTER: AtomicU64 = AtomicU64::new(0);

#[test]
fn refusals_are_retried_within_the_budget_and_unknown_outcomes_always() {
    // Without a budget every refused POST comes back once.
    let off = run("503 Service Unavailable", "off");
    assert!(
        off.posts > 300,
        "enough POSTs to outrun the reserve: {}",
        off.posts
    );
    assert_eq!(off.received, 2 * off.posts, "each POST and its one retry");

    // A share of 0: the reserve of 100 retries, then none; the rest are counted as denied.
    let none = run("503 Service Unavailable", "0");
    assert_eq!(none.received, none.posts + 100, "the reserve only");
    assert_eq!(none.denied, Some(none.posts - 100));

    // A share of 0.2: the reserve plus a fifth of the first attempts before each retry.
    let fifth = run("503 Service Unavailable", "0.2");
    let retries = fifth.received - fifth.posts;
    assert!(
        retries > 100 && retries <= 100 + fifth.posts / 5,
        "{retries} retries of {} POSTs",
        fifth.posts
    );

    // An unknown outcome is settled whatever the budget: every 504 is retried.
    let unknown = run("504 Gateway Timeout", "0");
    assert_eq!(unknown.received, 2 * unknown.posts);
    assert_eq!(unknown.denied, Some(0));
}
