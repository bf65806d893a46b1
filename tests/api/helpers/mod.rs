//! Test support: spawn the real application on a random port against a fresh store.
//!
//! Every test gets its own database: a new SQLite file in a temporary directory, a new
//! database on the throwaway PostgreSQL server that [`pg`] starts once per test run, or a
//! new schema on the throwaway Citus cluster that [`citus`] starts once per test run.

pub mod citus;
pub mod pg;

use crebito::configuration::{DatabaseUrl, PgLayout, PgProfile, ServeArgs};
use crebito::startup::Application;
use tokio::sync::oneshot;

use crate::common::api::Api;

/// A name no other test of this run (or of another test process) uses: for a database or
/// a schema.
pub fn unique_name() -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("t{}_{n}", std::process::id())
}

/// Runs the shell command `cleanup` once this test process has ended, however it ends (a
/// detached shell polls for the process): the throwaway servers never outlive the run.
pub fn after_this_process(cleanup: &str) {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.2; done; {cleanup}",
        pid = std::process::id()
    );
    #[allow(clippy::zombie_processes)]
    std::process::Command::new("setsid")
        .args(["sh", "-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sh runs");
}

/// Which store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    /// PostgreSQL with `--pg-layout citus`, on a coordinator and two workers.
    Citus,
}

/// A fresh, empty store; dropping it removes it.
pub enum TestStore {
    /// A new SQLite file in its own temporary directory.
    Sqlite(tempfile::TempDir),
    /// A new database on the throwaway PostgreSQL server.
    Postgres(pg::Database),
    /// A new schema on the throwaway Citus cluster.
    Citus(citus::Database),
}

impl TestStore {
    pub async fn fresh(backend: Backend) -> TestStore {
        match backend {
            Backend::Sqlite => TestStore::Sqlite(tempfile::tempdir().unwrap()),
            Backend::Postgres => TestStore::Postgres(pg::Database::create().await),
            Backend::Citus => TestStore::Citus(citus::Database::create().await),
        }
    }

    pub fn url(&self) -> DatabaseUrl {
        match self {
            TestStore::Sqlite(dir) => DatabaseUrl::Sqlite(dir.path().join("crebito.db")),
            TestStore::Postgres(db) => DatabaseUrl::Postgres(db.url.clone()),
            TestStore::Citus(db) => DatabaseUrl::Postgres(db.url.clone()),
        }
    }
}

/// A running instance: an [`Api`] on it (`app.post_json(…)`, `app.extrato(…)`, …). Dropping
/// it shuts the server down and then removes its store.
pub struct TestApp {
    pub api: Api,
    pub database_url: DatabaseUrl,
    stop: Option<oneshot::Sender<()>>,
    _store: Option<TestStore>,
}

impl std::ops::Deref for TestApp {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Spawns an app with adjusted settings (timeouts, limits).
pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut ServeArgs)) -> TestApp {
    let store = TestStore::fresh(backend).await;
    let citus = backend == Backend::Citus;
    let mut app = spawn_on(store.url(), |args| {
        if citus {
            args.store.pg_layout = PgLayout::Citus;
        }
        tweak(args)
    })
    .await;
    app._store = Some(store);
    app
}

/// Spawns another instance on an existing store (several instances, one database).
pub async fn spawn_on(database_url: DatabaseUrl, tweak: impl FnOnce(&mut ServeArgs)) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        crebito::telemetry::init_tracing();
    }
    let mut args = ServeArgs::new("127.0.0.1:0".parse().unwrap(), database_url.clone());
    args.store.pg_profile = PgProfile::Durable;
    tweak(&mut args);
    let app = Application::build(args)
        .await
        .expect("the application starts");
    let api = Api::new(app.address());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    TestApp {
        api,
        database_url,
        stop: Some(stop),
        _store: None,
    }
}

/// Generates one `#[tokio::test]` per store for each listed `async fn(TestApp)`, in modules
/// `sqlite`, `postgres` and `citus`: the whole suite runs unchanged against every store.
#[macro_export]
macro_rules! for_each_store {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::spawn_app($crate::helpers::Backend::Sqlite).await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::spawn_app($crate::helpers::Backend::Postgres).await).await
                }
            )*
        }
        mod citus {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::spawn_app($crate::helpers::Backend::Citus).await).await
                }
            )*
        }
    };
}

/// One client's state as the database has it, read directly (not through the API).
#[derive(Debug, PartialEq, Eq)]
pub struct Audit {
    pub id: i64,
    pub limite: i64,
    pub saldo: i64,
    /// Credits minus debits over every stored transaction.
    pub sum: i64,
    pub rows: i64,
}

const AUDIT_SQL: &str = include_str!("../../../sql/audit.sql");

pub async fn audit(url: &DatabaseUrl) -> Vec<Audit> {
    match url {
        DatabaseUrl::Sqlite(path) => {
            let conn = rusqlite::Connection::open(path).unwrap();
            let mut stmt = conn.prepare(AUDIT_SQL).unwrap();
            stmt.query_map([], |r| {
                Ok(Audit {
                    id: r.get(0)?,
                    limite: r.get(1)?,
                    saldo: r.get(2)?,
                    sum: r.get(3)?,
                    rows: r.get(4)?,
                })
            })
            .unwrap()
            .map(Result::unwrap)
            .collect()
        }
        DatabaseUrl::Postgres(url) => {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client
                .query(AUDIT_SQL, &[])
                .await
                .unwrap()
                .iter()
                .map(|r| Audit {
                    id: r.get(0),
                    limite: r.get(1),
                    saldo: r.get(2),
                    sum: r.get(3),
                    rows: r.get(4),
                })
                .collect()
        }
    }
}

/// Reads one HTTP/1.1 response from a kept-alive connection: its status and its body (by
/// `Content-Length`), leaving the connection ready for the next request.
pub async fn read_response(conn: &mut tokio::net::TcpStream) -> (u16, String) {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 1024];
        let n = conn.read(&mut chunk).await.expect("reading a response");
        assert!(
            n > 0,
            "connection closed before a complete response: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status: u16 = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .expect("Content-Length");
    while buf.len() < head_end + length {
        let mut chunk = [0u8; 1024];
        let n = conn.read(&mut chunk).await.expect("reading a body");
        assert!(n > 0, "connection closed inside a body");
        buf.extend_from_slice(&chunk[..n]);
    }
    (
        status,
        String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned(),
    )
}

/// Sets a client's balance directly in the database (not through the API): for states the
/// API cannot reach in a test's time, such as a balance next to the largest integer.
pub async fn set_saldo(url: &DatabaseUrl, client: i32, saldo: i64) {
    const SQL: &str = "UPDATE clientes SET saldo = $2 WHERE id = $1";
    match url {
        DatabaseUrl::Sqlite(path) => {
            let conn = rusqlite::Connection::open(path).unwrap();
            conn.busy_timeout(std::time::Duration::from_secs(5))
                .unwrap();
            let n = conn
                .execute(&SQL.replace('$', "?"), rusqlite::params![client, saldo])
                .unwrap();
            assert_eq!(n, 1);
        }
        DatabaseUrl::Postgres(url) => {
            let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            assert_eq!(c.execute(SQL, &[&client, &saldo]).await.unwrap(), 1);
        }
    }
}
