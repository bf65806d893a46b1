//! Building the application: open the store, bind the listener, serve.
//!
//! Tests use exactly this path (`Application::build` on `127.0.0.1:0` with a fresh
//! database), so what they exercise is what `crebito serve` runs.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};

use crate::configuration::{
    DatabaseUrl, ListenAddr, PgLayout, PgProfile, PgRoute, ServeArgs, SqliteSync, StoreArgs,
};
use crate::http::{App, ConnLimits, Limits, Listener, Metrics, serve};
use crate::store::postgres::{Layout, Options, Persistence, PgLedger};
use crate::store::sqlite::SqliteLedger;
use crate::store::{KeyPolicy, Ledger, Seed};

/// Why the service could not start. Messages name the thing that failed and never
/// include a password.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the SQLite database {path}: {source}")]
    Sqlite {
        path: String,
        source: crate::store::sqlite::OpenError,
    },
    #[error("cannot prepare PostgreSQL at {url}: {source}")]
    Postgres {
        url: String,
        source: tokio_postgres::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: io::Error },
}

/// An open store, one variant per [`crate::store::Ledger`] implementation. The server is
/// generic over the ledger, so each store gets its own monomorphised, dispatch-free path.
pub enum Store {
    Sqlite(SqliteLedger),
    Postgres(PgLedger),
}

impl Store {
    /// Opens the store named by the URL, creating and seeding its schema if needed.
    pub async fn open(args: &StoreArgs) -> Result<Store, StartError> {
        let seed = Seed {
            extra: args.extra_clients,
            extra_limit: args.extra_clients_limit,
        };
        let keys = KeyPolicy {
            retention: std::time::Duration::from_secs(args.key_retention),
            purge_every: std::time::Duration::from_secs(args.key_purge_every),
        };
        match &args.database_url {
            DatabaseUrl::Sqlite(path) => {
                let path = path.clone();
                let durable = args.sqlite_sync == SqliteSync::Full;
                let opened = tokio::task::spawn_blocking(move || {
                    SqliteLedger::open(&path, seed, keys, durable).map_err(|e| (path, e))
                })
                .await
                .expect("opening SQLite does not panic");
                opened
                    .map(Store::Sqlite)
                    .map_err(|(path, source)| StartError::Sqlite {
                        path: path.display().to_string(),
                        source,
                    })
            }
            DatabaseUrl::Postgres(url) => {
                let options = Options {
                    persistence: match args.pg_profile {
                        PgProfile::Durable => Persistence::Logged,
                        PgProfile::Contest => Persistence::Unlogged,
                    },
                    layout: match args.pg_layout {
                        PgLayout::Single => Layout::Single,
                        PgLayout::Citus => Layout::Citus,
                    },
                    direct: args.pg_route == PgRoute::Direct,
                    seed,
                    connections: args.pg_connections,
                    batch: args.pg_batch(),
                    queue: args.pg_queue,
                    spill: args.pg_spill,
                    keys,
                };
                PgLedger::connect(url, options)
                    .await
                    .map(Store::Postgres)
                    .map_err(|source| StartError::Postgres {
                        url: args.database_url.redacted(),
                        source,
                    })
            }
        }
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }
}

/// A bound, ready-to-serve instance.
pub struct Application {
    listener: Listener,
    store: Store,
    args: ServeArgs,
}

impl Application {
    pub async fn build(args: ServeArgs) -> Result<Application, StartError> {
        let store = Store::open(&args.store).await?;
        let listener = bind(&args.listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: match &args.listen {
                    ListenAddr::Tcp(a) => a.to_string(),
                    ListenAddr::Unix(p) => format!("unix:{}", p.display()),
                },
                source,
            })?;
        Ok(Application {
            listener,
            store,
            args,
        })
    }

    /// `http://127.0.0.1:PORT` or `unix:/path`.
    pub fn address(&self) -> String {
        self.listener.describe()
    }

    /// Serves until `shutdown` resolves and in-flight requests have finished.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        tracing::info!(
            address = %self.listener.describe(),
            store = %self.store.describe(),
            database = %self.args.store.database_url.redacted(),
            "crebito {} listening",
            env!("CARGO_PKG_VERSION"),
        );
        match self.store {
            Store::Sqlite(ledger) => serve_with(ledger, self.listener, &self.args, shutdown).await,
            Store::Postgres(ledger) => {
                serve_with(ledger, self.listener, &self.args, shutdown).await
            }
        }
    }
}

async fn serve_with<L: Ledger>(
    ledger: L,
    listener: Listener,
    args: &ServeArgs,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let app = Arc::new(App {
        ledger,
        limits: Limits {
            max_body: args.max_body,
            body_timeout: Duration::from_secs(args.request_timeout),
            store_timeout: Duration::from_secs(args.store_timeout),
        },
        metrics: Metrics::default(),
    });
    let conn_limits = ConnLimits {
        max_connections: args.max_connections,
        header_timeout: Duration::from_secs(args.request_timeout),
        shutdown_grace: Duration::from_secs(args.shutdown_grace),
    };
    serve(listener, app, conn_limits, shutdown).await
}

/// Clients beyond `--max-connections` wait in the kernel's accept queue, which costs this
/// process no memory (a socket is charged to its cgroup only once accepted); the runtime's
/// default queue of 1 024 would turn the rest away. The kernel caps it at `somaxconn`.
const LISTEN_BACKLOG: i32 = 4096;

async fn bind(addr: &ListenAddr) -> io::Result<Listener> {
    use socket2::{Domain, SockAddr, Socket, Type};
    let (socket, at) = match addr {
        ListenAddr::Tcp(a) => {
            let s = Socket::new(Domain::for_address(*a), Type::STREAM, None)?;
            s.set_reuse_address(true)?;
            (s, SockAddr::from(*a))
        }
        ListenAddr::Unix(path) => {
            remove_stale_socket(path)?;
            (
                Socket::new(Domain::UNIX, Type::STREAM, None)?,
                SockAddr::unix(path)?,
            )
        }
    };
    socket.bind(&at)?;
    socket.listen(LISTEN_BACKLOG)?;
    socket.set_nonblocking(true)?;
    match addr {
        ListenAddr::Tcp(_) => Ok(Listener::Tcp(TcpListener::from_std(socket.into())?)),
        ListenAddr::Unix(path) => {
            // The load balancer may run as another user.
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
            Ok(Listener::Unix(
                UnixListener::from_std(socket.into())?,
                path.clone(),
            ))
        }
    }
}

/// A socket file left by a killed instance would make `bind` fail; anything that is not
/// a socket is left alone.
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "path exists and is not a socket",
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
