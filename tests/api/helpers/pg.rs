//! A throwaway PostgreSQL server for the test run.
//!
//! Started once per test binary from the server binaries on this machine (`initdb`,
//! `postgres`: `$PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`, else `PATH`), in a
//! temporary directory, listening only on its own Unix socket, with fsync off. Each test
//! creates its own database. A small reaper process removes the server and its directory
//! when the test binary exits, however it exits.
//!
//! Without the binaries the tests fail with the command that installs them: they never
//! skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio_postgres::NoTls;

pub struct Server {
    pub socket_dir: PathBuf,
    pub port: u16,
}

static SERVER: OnceLock<Server> = OnceLock::new();

pub fn server() -> &'static Server {
    SERVER.get_or_init(start)
}

/// The directory holding `initdb` and `postgres`, as the native launcher chooses it
/// (`deploy/native/stack pg-bin`: one owner for that choice).
pub fn find_bin() -> Option<PathBuf> {
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/native/stack"))
        .arg("pg-bin")
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// initdb and postgres refuse to run as root: use the `postgres` (or `nobody`) account then.
fn run_as() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    for user in ["postgres", "nobody"] {
        let out = Command::new("id").args(["-u", user]).output().ok()?;
        let gid = Command::new("id").args(["-g", user]).output().ok()?;
        if out.status.success() {
            let uid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
            let gid = String::from_utf8_lossy(&gid.stdout).trim().parse().ok()?;
            return Some((uid, gid));
        }
    }
    None
}

fn command(bin: &Path, name: &str, user: Option<(u32, u32)>) -> Command {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(bin.join(name));
    if let Some((uid, gid)) = user {
        c.uid(uid).gid(gid);
    }
    c
}

fn start() -> Server {
    let bin = find_bin().unwrap_or_else(|| {
        panic!(
            "PostgreSQL server binaries (initdb, postgres) not found: install them with \
             `sudo apt-get install postgresql` (Debian/Ubuntu) or set PG_BIN to their directory. \
             The PostgreSQL half of the suite cannot run without them."
        )
    });
    let user = run_as();
    let root = tempfile::Builder::new()
        .prefix("crebito-pg-")
        .tempdir()
        .unwrap()
        .keep();
    let data = root.join("data");
    let socket_dir = root.join("sock");
    std::fs::create_dir_all(&socket_dir).unwrap();
    if let Some((uid, gid)) = user {
        for p in [&root, &socket_dir] {
            std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
        }
    }
    // Once a reaper watches our pid, the directory goes away whatever happens next.
    spawn_reaper(&root, &data);

    let out = command(&bin, "initdb", user)
        .args(["-D"])
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C",
        ])
        .stdout(Stdio::null())
        .output()
        .expect("initdb runs");
    assert!(
        out.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let port = 15432 + (std::process::id() % 20000) as u16;
    let log = std::fs::File::create(root.join("postgres.log")).unwrap();
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(root.join("postgres.log"), Some(uid), Some(gid)).unwrap();
    }
    // The server outlives this call on purpose; the reaper ends it.
    #[allow(clippy::zombie_processes)]
    command(&bin, "postgres", user)
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-c", "listen_addresses="])
        .arg("-k")
        .arg(&socket_dir)
        .args([
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=300",
            "-c",
            "shared_buffers=64MB",
        ])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("postgres starts");

    let server = Server { socket_dir, port };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server.socket_dir.join(format!(".s.PGSQL.{port}")).exists() {
        assert!(
            Instant::now() < deadline,
            "postgres did not start; see {}",
            root.join("postgres.log").display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The socket exists before the server accepts queries: ask it, as `pg_isready` does.
    let ready = bin.join("pg_isready");
    while !Command::new(&ready)
        .arg("-q")
        .arg("-h")
        .arg(&server.socket_dir)
        .arg("-p")
        .arg(port.to_string())
        .status()
        .is_ok_and(|s| s.success())
    {
        assert!(
            Instant::now() < deadline,
            "postgres did not accept connections"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// Once this test process has ended, stops the server and removes its directory.
fn spawn_reaper(root: &Path, data: &Path) {
    // SIGQUIT is PostgreSQL's immediate shutdown; root may signal the server's user.
    super::after_this_process(&format!(
        "pm=$(head -n1 {data}/postmaster.pid 2>/dev/null) && kill -QUIT \"$pm\" 2>/dev/null; \
         for i in $(seq 50); do kill -0 \"$pm\" 2>/dev/null || break; sleep 0.1; done; rm -rf {root}",
        data = data.display(),
        root = root.display()
    ));
}

/// A database of its own for one test.
pub struct Database {
    pub url: String,
}

impl Database {
    pub async fn create() -> Database {
        let s = tokio::task::spawn_blocking(server).await.unwrap();
        let name = super::unique_name();
        let admin = admin(s).await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let url = format!(
            "postgres://postgres@localhost:{}/{name}?host={}",
            s.port,
            s.socket_dir.display()
        );
        Database { url }
    }

    /// A direct connection, for auditing or sabotaging the database under test.
    pub async fn connect(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.url, NoTls).await.unwrap();
        tokio::spawn(conn);
        client
    }
}

pub async fn admin(s: &Server) -> tokio_postgres::Client {
    let url = format!(
        "host={} port={} user=postgres dbname=postgres",
        s.socket_dir.display(),
        s.port
    );
    let (client, conn) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}
