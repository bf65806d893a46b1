//! Configuration: flags, each with an environment variable (12-factor), parsed into types
//! that cannot be wrong. A value that does not parse or is out of range is a usage error:
//! clap prints it and the process exits with code 2. clap is the one place where defaults
//! and ranges live; `startup` turns these values into the HTTP layer's and the stores' own
//! types, so this module depends on nothing else of ours.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use clap::builder::RangedU64ValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "crebito",
    version,
    about = "The Rinha de Backend 2024/Q1 bank API (crébitos)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default when no command is given).
    Serve(ServeArgs),
    /// Create or update the schema and seed the five clients, then exit.
    Migrate(StoreArgs),
    /// Ask a running instance's /healthz; exit 0 if it answers 200, 1 otherwise (for
    /// container health checks: the image has no shell or curl).
    Healthcheck(HealthcheckArgs),
}

#[derive(Debug, Clone, Args)]
pub struct HealthcheckArgs {
    /// The address the instance listens on: `HOST:PORT` or `unix:/path/to.sock`.
    #[arg(long, env = "CREBITO_LISTEN", default_value = "127.0.0.1:9999")]
    pub listen: ListenAddr,
}

#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Where balances live: `sqlite://PATH` (a file, created on first start; `sqlite:///abs`
    /// for an absolute path) or `postgres://…` / `postgresql://…`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://crebito.db")]
    pub database_url: DatabaseUrl,

    /// SQLite only: `full` (each group commit is fsynced before its answers leave: a power
    /// cut takes nothing answered 200) or `normal` (WAL synced at checkpoints only: a crash of
    /// the process loses nothing, a power cut may lose the last commits).
    #[arg(long, env = "CREBITO_SQLITE_SYNC", value_enum, default_value_t = SqliteSync::Full)]
    pub sqlite_sync: SqliteSync,

    /// PostgreSQL only: `durable` (logged tables, the server's own durability) or `contest`
    /// (UNLOGGED tables, for a server run with fsync/synchronous_commit off).
    #[arg(long, env = "CREBITO_PG_PROFILE", value_enum, default_value_t = PgProfile::Durable)]
    pub pg_profile: PgProfile,

    /// PostgreSQL only: connections this instance keeps open. Each one pipelines many
    /// concurrent queries; more than a few only adds lock contention on five hot rows.
    #[arg(long, env = "CREBITO_PG_CONNECTIONS", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub pg_connections: u16,

    /// PostgreSQL only: the most writes one transaction carries (group commit). A write that
    /// finds its connection idle goes at once, alone; writes that arrive while one is in
    /// flight leave together, one COMMIT and one WAL flush for all. 1 turns batching off.
    /// Default: 32 with `--pg-profile durable` (it shares the WAL flushes), 1 with `contest`
    /// (no flush to share; batches only hold rows locked longer: docs/reports/durability/batching).
    #[arg(long, env = "CREBITO_PG_BATCH", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub pg_batch: Option<u16>,

    /// PostgreSQL only: the most writes waiting for one connection's next transaction (group
    /// commit). A write that would wait beyond it is refused at once with 503 (never sent: not
    /// applied), so a frozen or saturated server leaves a bounded backlog, drained within a few
    /// transactions once it answers again, instead of one that new writes queue behind.
    #[arg(long, env = "CREBITO_PG_QUEUE", default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..=65535))]
    pub pg_queue: u16,

    /// PostgreSQL only, with `--pg-connections` above 1: the first connection carries the
    /// writes and their group commit; the others only take a request that finds it busy with
    /// a write while they are idle (a lone write then overlaps the other's WAL flush instead
    /// of waiting for it), or that finds its queue full. Without batching (`--pg-batch 1`,
    /// the contest profile's default) no write makes the first busy: the others are then its
    /// standby, used while it reconnects. Off: every connection is used alike.
    #[arg(long, env = "CREBITO_PG_SPILL", default_value_t = false, action = clap::ArgAction::Set)]
    pub pg_spill: bool,

    /// PostgreSQL only: `single` (one server) or `citus` (a Citus coordinator: the tables are
    /// distributed by client and each request runs on the one worker that owns the client;
    /// docs: "Scaling out").
    #[arg(long, env = "CREBITO_PG_LAYOUT", value_enum, default_value_t = PgLayout::Single)]
    pub pg_layout: PgLayout,

    /// `--pg-layout citus` only: `direct` (each client's requests go straight to the worker
    /// holding it) or `coordinator` (every request through the coordinator, which delegates
    /// it to that worker: for instances that can reach only the coordinator, and the path
    /// `direct` falls back to after a shard move).
    #[arg(long, env = "CREBITO_PG_ROUTE", value_enum, default_value_t = PgRoute::Direct)]
    pub pg_route: PgRoute,

    /// Clients seeded after the contest's five: ids 6 to 5 + N, each with the limit of
    /// `--extra-clients-limit`. Off by default, so the contest data set stays exact; a
    /// sharded run needs more clients than five to spread over its shards.
    #[arg(long, env = "CREBITO_EXTRA_CLIENTS", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub extra_clients: u32,

    /// The limit (in cents) of each extra client.
    #[arg(long, env = "CREBITO_EXTRA_CLIENTS_LIMIT", default_value_t = 100_000,
          value_parser = clap::value_parser!(i64).range(0..=1_000_000_000_000))]
    pub extra_clients_limit: i64,

    /// Seconds an `Idempotency-Key` is remembered at least (a retry within it is answered
    /// from the stored answer); older keys are purged and may be used again.
    #[arg(long, env = "CREBITO_KEY_RETENTION", default_value_t = 86_400,
          value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub key_retention: u64,

    /// How often, in seconds, each instance purges the keys older than the retention.
    #[arg(long, env = "CREBITO_KEY_PURGE_EVERY", default_value_t = 600,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub key_purge_every: u64,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on: `HOST:PORT` or `unix:/path/to.sock`.
    #[arg(long, env = "CREBITO_LISTEN", default_value = "127.0.0.1:9999")]
    pub listen: ListenAddr,

    #[command(flatten)]
    pub store: StoreArgs,

    /// Most client connections open at once; further clients wait in the kernel's accept
    /// queue. Each costs ~20 KiB with a request pending, so the default fits a 60 MB
    /// container with room to spare (docs/src/performance.md, "Overload").
    #[arg(long, env = "CREBITO_MAX_CONNECTIONS", default_value_t = 1024,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub max_connections: usize,

    /// Largest request body accepted, in bytes (413 above).
    #[arg(long, env = "CREBITO_MAX_BODY", default_value_t = 4096,
          value_parser = RangedU64ValueParser::<usize>::new().range(64..=1_048_576))]
    pub max_body: usize,

    /// Seconds a client gets to send the request head (and that an idle keep-alive
    /// connection is kept), and then to send the body.
    #[arg(long, env = "CREBITO_REQUEST_TIMEOUT", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_timeout: u64,

    /// Seconds the store gets to answer a request; after that the client gets 504 ("outcome
    /// unknown: retry with the same Idempotency-Key") instead of waiting for its own timeout.
    #[arg(long, env = "CREBITO_STORE_TIMEOUT", default_value_t = 3,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub store_timeout: u64,

    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT before the remaining
    /// connections are closed.
    #[arg(long, env = "CREBITO_SHUTDOWN_GRACE", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub shutdown_grace: u64,

    /// Runtime threads serving requests (default: one per core; 1 runs a single-threaded
    /// runtime). Until 0.2.0 `--workers`/`CREBITO_WORKERS`; the old flag is still accepted.
    #[arg(long, alias = "workers", env = "CREBITO_THREADS",
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=1024))]
    pub threads: Option<usize>,
}

impl StoreArgs {
    /// The group-commit bound in force: `--pg-batch` if given, else the profile's (see the flag).
    pub fn pg_batch(&self) -> u16 {
        self.pg_batch.unwrap_or(match self.pg_profile {
            PgProfile::Durable => 32,
            PgProfile::Contest => 1,
        })
    }
}

impl ServeArgs {
    /// The defaults, listening on `listen` with the given store: for tests and embedding.
    pub fn new(listen: ListenAddr, database_url: DatabaseUrl) -> ServeArgs {
        let mut args = match Cli::parse_from(["crebito", "serve"]).command {
            Some(Command::Serve(a)) => a,
            _ => unreachable!("`serve` parses to Serve"),
        };
        args.listen = listen;
        args.store.database_url = database_url;
        args
    }
}

/// PostgreSQL only: how much a crash may cost (docs: README, "Profiles").
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PgProfile {
    /// Logged tables.
    Durable,
    /// UNLOGGED tables, for a server run with fsync and synchronous_commit off.
    Contest,
}

/// PostgreSQL only: one server, or a Citus cluster reached through its coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PgLayout {
    /// Plain tables on one server.
    Single,
    /// Tables distributed by client id on a Citus cluster, co-located.
    Citus,
}

/// SQLite only: when a commit reaches the disk (SQLite's `synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SqliteSync {
    /// `FULL`: every commit fsynced before it is answered.
    Full,
    /// `NORMAL`: in WAL mode, synced at checkpoints.
    Normal,
}

/// `--pg-layout citus` only: where a request is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PgRoute {
    /// To the worker holding the client, from Citus's shard metadata.
    Direct,
    /// To the coordinator, which delegates it.
    Coordinator,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl FromStr for ListenAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a socket path, e.g. unix:/tmp/crebito.sock".into());
            }
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        s.parse().map(ListenAddr::Tcp).map_err(|_| {
            format!("`{s}` is neither HOST:PORT (e.g. 127.0.0.1:9999) nor unix:/path.sock")
        })
    }
}

#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl DatabaseUrl {
    /// The URL without any password, for logs.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
            DatabaseUrl::Postgres(url) => {
                if let Some((scheme, rest)) = url.split_once("://")
                    && let Some((auth, host)) = rest.rsplit_once('@')
                    && let Some((user, _password)) = auth.split_once(':')
                {
                    return format!("{scheme}://{user}:***@{host}");
                }
                url.clone()
            }
        }
    }
}

impl FromStr for DatabaseUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(rest) = s
            .strip_prefix("sqlite://")
            .or_else(|| s.strip_prefix("sqlite:"))
        {
            if rest.is_empty() {
                return Err("sqlite: needs a file path, e.g. sqlite://crebito.db".into());
            }
            return Ok(DatabaseUrl::Sqlite(PathBuf::from(rest)));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(s.to_string()));
        }
        Err(format!(
            "unsupported database URL `{}`: use sqlite://PATH or postgres://USER@HOST/DB",
            s.split("://").next().unwrap_or(s)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(
            "127.0.0.1:9999".parse(),
            Ok(ListenAddr::Tcp("127.0.0.1:9999".parse().unwrap()))
        );
        assert_eq!(
            "unix:/tmp/a.sock".parse(),
            Ok(ListenAddr::Unix("/tmp/a.sock".into()))
        );
        assert!("unix:".parse::<ListenAddr>().is_err());
        assert!("localhost".parse::<ListenAddr>().is_err());
    }

    #[test]
    fn database_urls() {
        assert_eq!(
            "sqlite://crebito.db".parse(),
            Ok(DatabaseUrl::Sqlite("crebito.db".into()))
        );
        assert_eq!(
            "sqlite:///var/lib/c.db".parse(),
            Ok(DatabaseUrl::Sqlite("/var/lib/c.db".into()))
        );
        assert_eq!(
            "postgres://u@h/db".parse(),
            Ok(DatabaseUrl::Postgres("postgres://u@h/db".into()))
        );
        assert!("mysql://x".parse::<DatabaseUrl>().is_err());
        assert!("sqlite://".parse::<DatabaseUrl>().is_err());
    }

    #[test]
    fn passwords_never_reach_logs() {
        let url: DatabaseUrl = "postgres://rinha:s3cret@db:5432/rinha".parse().unwrap();
        assert_eq!(url.redacted(), "postgres://rinha:***@db:5432/rinha");
        assert!(!format!("{url:?}").contains("s3cret"));
        let plain: DatabaseUrl = "postgres://rinha@db/rinha".parse().unwrap();
        assert_eq!(plain.redacted(), "postgres://rinha@db/rinha");
    }

    #[test]
    fn no_arguments_means_serve_with_defaults() {
        let cli = Cli::try_parse_from(["crebito"]).unwrap();
        assert!(cli.command.is_none());
        let args = ServeArgs::new(
            "127.0.0.1:0".parse().unwrap(),
            "sqlite://x.db".parse().unwrap(),
        );
        assert_eq!(args.max_body, 4096);
    }

    #[test]
    fn group_commit_follows_the_profile_unless_given() {
        let store = |argv: &[&str]| match Cli::try_parse_from(argv).unwrap().command {
            Some(Command::Serve(a)) => a.store,
            _ => unreachable!(),
        };
        assert_eq!(store(&["crebito", "serve"]).pg_batch(), 32);
        assert_eq!(
            store(&["crebito", "serve", "--pg-profile", "contest"]).pg_batch(),
            1
        );
        let given = [
            "crebito",
            "serve",
            "--pg-profile",
            "contest",
            "--pg-batch",
            "8",
        ];
        assert_eq!(store(&given).pg_batch(), 8);
        let given = ["crebito", "serve", "--pg-batch", "1"];
        assert_eq!(store(&given).pg_batch(), 1);
        assert!(Cli::try_parse_from(["crebito", "serve", "--pg-batch", "0"]).is_err());
    }
}
