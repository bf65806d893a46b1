//! Test support: spawn the real application on a random port against a fresh store.
//!
//! Every test gets its own database: a new SQLite file in a temporary directory, or a new
//! database on the throwaway PostgreSQL server that [`pg`] starts once per test run.

pub mod pg;

use std::time::Duration;

use crebito::configuration::{DatabaseUrl, PgProfile, ServeArgs};
use crebito::startup::Application;
use tokio::sync::oneshot;

/// Which store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A running instance. Dropping it shuts the server down and removes its database.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub database_url: DatabaseUrl,
    stop: Option<oneshot::Sender<()>>,
    _dir: Option<tempfile::TempDir>,
    _db: Option<pg::Database>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(64)
        .build()
        .unwrap()
}

/// A fresh store for `backend`: its URL plus what keeps it alive.
pub async fn fresh_store(
    backend: Backend,
) -> (DatabaseUrl, Option<tempfile::TempDir>, Option<pg::Database>) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = DatabaseUrl::Sqlite(dir.path().join("crebito.db"));
            (url, Some(dir), None)
        }
        Backend::Postgres => {
            let db = pg::Database::create().await;
            (DatabaseUrl::Postgres(db.url.clone()), None, Some(db))
        }
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Spawns an app with adjusted settings (timeouts, limits).
pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut ServeArgs)) -> TestApp {
    let (url, dir, db) = fresh_store(backend).await;
    let mut app = spawn_on(url, tweak).await;
    app._dir = dir;
    app._db = db;
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
    let address = app.address();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        client: http_client(),
        database_url,
        stop: Some(stop),
        _dir: None,
        _db: None,
    }
}

/// Generates one `#[tokio::test]` per store for each listed `async fn(TestApp)`, in modules
/// `sqlite` and `postgres`: the whole suite runs unchanged against both stores.
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

const AUDIT_SQL: &str = "SELECT CAST(c.id AS BIGINT), CAST(c.limite AS BIGINT), CAST(c.saldo AS BIGINT), \
    CAST(COALESCE(SUM(CASE WHEN t.tipo = 'c' THEN t.valor ELSE -t.valor END), 0) AS BIGINT), \
    CAST(COUNT(t.cliente_id) AS BIGINT) \
    FROM clientes c LEFT JOIN transacoes t ON t.cliente_id = c.id GROUP BY c.id, c.limite, c.saldo ORDER BY c.id";

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
