//! Helpers shared by the test binaries that drive whole processes and stacks.

#![allow(dead_code)] // each test binary uses its own subset

pub mod api;
pub mod checks;
pub mod launched;
pub mod nginx;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A port free for a public listener (below 60000, so that PORT+N stays valid).
/// A base port P such that P..=P+12 are all free and below the kernel's ephemeral range
/// (32768–60999 by default), where outgoing connections of a busy test run would take them:
/// for launchers that derive further ports from PORT (deploy/native/cluster: PORT+1,
/// PORT+11, PORT+12).
#[allow(dead_code)]
pub fn free_port_block() -> u16 {
    use std::time::{SystemTime, UNIX_EPOCH};
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        ^ std::process::id();
    loop {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let base = 20_000 + (seed >> 8) % 12_000;
        let base = u16::try_from(base).unwrap();
        let all_free =
            (0..=12).all(|k| std::net::TcpListener::bind(("127.0.0.1", base + k)).is_ok());
        if all_free {
            return base;
        }
    }
}

pub fn free_port() -> u16 {
    loop {
        let p = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if p < 60000 {
            return p;
        }
    }
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// deploy/.env (the contest split and settings) as a map.
pub fn deploy_env() -> BTreeMap<String, String> {
    read("deploy/.env")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').expect("KEY=VALUE");
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// Runs a command to completion and returns its stdout, trimmed; fails the test with the
/// command's stderr if it did not succeed.
pub fn succeed(cmd: &mut std::process::Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Raises this process's open-file limit to its hard limit (tests that hold thousands of
/// sockets at once).
pub fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    lim.rlim_cur
}

/// A memory cgroup (v1 or v2) with a hard limit and no swap on top, like Docker's
/// `deploy.resources.limits.memory`. Removed on drop (its processes must be gone by then).
pub struct MemCgroup {
    dir: PathBuf,
    v2: bool,
}

impl MemCgroup {
    pub fn create(name: &str, limit_mb: u64) -> MemCgroup {
        let bytes = (limit_mb * 1024 * 1024).to_string();
        let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        let dir = if v2 {
            let _ = std::fs::write("/sys/fs/cgroup/cgroup.subtree_control", "+memory");
            PathBuf::from("/sys/fs/cgroup").join(name)
        } else {
            PathBuf::from("/sys/fs/cgroup/memory").join(name)
        };
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| {
            panic!(
                "cannot create the memory cgroup {}: {e}. This test needs root and a writable \
                 cgroup (v1 or v2), as the native stack does.",
                dir.display()
            )
        });
        let (limit, swap) = if v2 {
            ("memory.max", "memory.swap.max")
        } else {
            ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes")
        };
        std::fs::write(dir.join(limit), &bytes).unwrap();
        // Swap must not let a process past the limit: bounded too, or there is none.
        if let Err(e) = std::fs::write(dir.join(swap), if v2 { "0" } else { &bytes }) {
            let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
            assert!(
                swaps.lines().count() <= 1,
                "cannot bound swap in {} ({e}) on a machine with swap: the memory limit \
                 would not hold",
                dir.display()
            );
        }
        MemCgroup { dir, v2 }
    }

    /// The file a process writes its pid to, to enter the cgroup.
    pub fn procs(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// One of this cgroup's files, by its name under v1 or v2.
    fn read(&self, v1: &str, v2: &str) -> std::io::Result<String> {
        std::fs::read_to_string(self.dir.join(if self.v2 { v2 } else { v1 }))
    }

    /// Processes the kernel killed here for exceeding the limit.
    pub fn oom_kills(&self) -> u64 {
        self.read("memory.oom_control", "memory.events")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .map(|n| n.trim().parse().unwrap())
            .expect("the kernel reports oom_kill (Linux >= 4.13)")
    }

    /// Highest memory use so far, in bytes (v2 kernels before 5.19 lack memory.peak: 0).
    pub fn peak(&self) -> u64 {
        self.read("memory.max_usage_in_bytes", "memory.peak")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for MemCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

#[allow(dead_code)]
/// Every metric name a dashboard query uses (crebito_…, pg_…, nginx_…, up).
pub fn dashboard_metrics(dash: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            let mut word = String::new();
            for ch in expr.chars().chain([' ']) {
                if ch.is_ascii_alphanumeric() || ch == '_' {
                    word.push(ch);
                } else {
                    let w = std::mem::take(&mut word);
                    let inside_braces = expr[..expr.find(&w).unwrap_or(0)].matches('{').count()
                        > expr[..expr.find(&w).unwrap_or(0)].matches('}').count();
                    if (w.starts_with("crebito_")
                        || w.starts_with("pg_")
                        || w.starts_with("nginx_")
                        || w == "up")
                        && !inside_braces
                        && !out.contains(&w)
                    {
                        out.push(w);
                    }
                }
            }
        }
    }
    out
}

/// `scripts/submission DIR`: the contest submission folder, generated into a temporary
/// directory (removed with the returned guard). The folder is `<tmp>/participantes/crebito`.
pub fn submission() -> (tempfile::TempDir, PathBuf) {
    submission_with(&[])
}

/// `scripts/submission FLAGS… participantes/crebito`, e.g. `&["--contest"]`.
pub fn submission_with(flags: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("participantes").join("crebito");
    succeed(
        std::process::Command::new(repo().join("scripts/submission"))
            .args(flags)
            .arg(&dir),
    );
    (tmp, dir)
}

/// What PostgreSQL is started with by a Compose `db` service's `command` (after Compose's
/// interpolation), as the postgres image runs it: the command is handed to the image's
/// `docker-entrypoint.sh`, which starts `postgres ARGS…` itself or execs anything else. A
/// plain `postgres …` string gives its words; anything else (the profile-selecting `sh -c`
/// script of deploy/docker-compose*.yml) is run for real, `$$` unescaped as Compose does,
/// with a `docker-entrypoint.sh` on PATH that prints what it was asked to start. `Err` with
/// the script's stderr when it refuses to start.
pub fn postgres_args(command: &serde_yaml::Value) -> Result<Vec<String>, String> {
    let argv: Vec<String> = match command {
        serde_yaml::Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        serde_yaml::Value::Sequence(seq) => seq
            .iter()
            .map(|v| v.as_str().expect("a string argument").replace("$$", "$"))
            .collect(),
        other => panic!("a command is a string or a list: {other:?}"),
    };
    if argv[0] == "postgres" {
        return Ok(argv[1..].to_vec());
    }
    let bin = tempfile::tempdir().unwrap();
    let stub = bin.path().join("docker-entrypoint.sh");
    std::fs::write(&stub, "#!/bin/sh\nprintf '%s\\n' \"$@\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .env("PATH", path)
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines[0], "postgres", "the entrypoint starts postgres");
    Ok(lines[1..].to_vec())
}

/// PostgreSQL's `-c NAME=VALUE` settings among its arguments, as a map.
pub fn pg_settings(args: &[String]) -> BTreeMap<String, String> {
    args.windows(2)
        .filter(|w| w[0] == "-c")
        .map(|w| {
            let (k, v) = w[1].split_once('=').expect("-c name=value");
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// The major version of the PostgreSQL server the tests and the native stack run
/// (`deploy/native/stack pg-bin`).
pub fn local_postgres_major() -> u32 {
    let bin = succeed(std::process::Command::new(repo().join("deploy/native/stack")).arg("pg-bin"));
    let version =
        succeed(std::process::Command::new(Path::new(&bin).join("postgres")).arg("--version"));
    // "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
    version
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("unexpected `postgres --version`: {version}"))
}

/// A Python tool of the project (scripts/requirements.txt): the one in the project's .venv
/// (scripts/pytools), else whatever PATH has.
pub fn python_tool(name: &str) -> PathBuf {
    let local = repo().join(".venv/bin").join(name);
    if local.exists() {
        local
    } else {
        PathBuf::from(name)
    }
}

/// A child process that is killed (and reaped) when the handle is dropped, unless it has
/// already exited: a failing test never leaves a server behind. Derefs to the `Child`.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}
