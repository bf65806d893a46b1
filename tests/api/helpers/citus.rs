//! A throwaway Citus cluster for the test run: a coordinator and two workers.
//!
//! Started once per test binary by `deploy/native/cluster up` with `DB_ONLY=1` (the
//! databases of the cluster stack, without nginx or crebito: the tests start their own
//! instances), on free ports, in a temporary directory; a reaper takes it down with
//! `deploy/native/cluster down` when the test binary exits, however it exits. Citus is
//! installed (built from `CITUS_TARBALL` or the shared vendor tarball) if PostgreSQL lacks
//! it: never skipped.
//!
//! Each test gets its own schema on the coordinator (its `search_path`), where crebito
//! creates and distributes its tables: a fresh database per test would need a Citus
//! maintenance daemon and node registration per database on every node.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use tokio_postgres::NoTls;

pub struct Cluster {
    /// The coordinator's URL (database `rinha`).
    pub url: String,
    pub port: u16,
    pub dir: PathBuf,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(start)
}

fn script() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/native/cluster")
}

fn start() -> Cluster {
    let mut last = String::new();
    for _ in 0..3 {
        let port = crate::common::free_port_block();
        let dir = std::env::temp_dir().join(format!("crebito-test-cluster-{port}"));
        let out = Command::new(script())
            .arg("up")
            .env("PORT", port.to_string())
            .env("STACK_DIR", &dir)
            .env("DB_ONLY", "1")
            .env("CITUS_WORKERS", "2")
            .env("STACK_LIMITS", "off")
            // `migrate` runs the binary under test (else the launcher builds a release one).
            .env("CREBITO_BIN", env!("CARGO_BIN_EXE_crebito"))
            .stdin(Stdio::null())
            .output()
            .expect("deploy/native/cluster runs");
        if out.status.success() {
            spawn_reaper(port, &dir);
            let url = String::from_utf8_lossy(&out.stdout)
                .lines()
                .last()
                .expect("cluster up prints the database URL")
                .trim()
                .to_string();
            return Cluster { url, port, dir };
        }
        last = String::from_utf8_lossy(&out.stderr).into_owned();
        let _ = Command::new(script())
            .arg("down")
            .env("PORT", port.to_string())
            .env("STACK_DIR", &dir)
            .output();
    }
    panic!(
        "the Citus cluster did not start (deploy/native/cluster up; Citus is built from \
         CITUS_TARBALL if PostgreSQL has none):\n{last}"
    );
}

/// Once this test process has ended, takes the cluster down.
fn spawn_reaper(port: u16, dir: &std::path::Path) {
    super::after_this_process(&format!(
        "PORT={port} STACK_DIR={dir} {cluster} down",
        dir = dir.display(),
        cluster = script(),
    ));
}

/// A schema of its own for one test, on the cluster's coordinator.
pub struct Database {
    pub url: String,
    schema: String,
}

impl Database {
    pub async fn create() -> Database {
        let c = tokio::task::spawn_blocking(cluster).await.unwrap();
        let schema = super::unique_name();
        let (admin, conn) = tokio_postgres::connect(&c.url, NoTls).await.unwrap();
        tokio::spawn(conn);
        admin
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .unwrap();
        // Eight shards per table rather than Citus's 32: enough to spread five clients over
        // both workers, and quicker to create for every test.
        let url = format!(
            "{}&options=-c%20search_path%3D{schema}%20-c%20citus.shard_count%3D8",
            c.url
        );
        Database { url, schema }
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }
}
