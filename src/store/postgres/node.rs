//! One PostgreSQL server's connections: a few slots, each one prepared connection, used in
//! turn. A dead slot is reopened in the background while the others carry the load (on the
//! coordinator, or the only server, the schema and seed are applied again first); what a
//! failed query means for the client is decided here, once. The store has one node per
//! server it talks to: the only server, or a Citus coordinator and each worker
//! (`route.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use tokio_postgres::{Client, Config, NoTls, Statement as Prepared};

use super::shard::{Kind, Shard};
use super::{Layout, LedgerError, Options};

const CITUS_APPLY: &str = include_str!("../../../sql/postgres/citus/apply.sql");
const CITUS_APPLY_ONCE: &str = include_str!("../../../sql/postgres/citus/apply_once.sql");

/// How long start-up keeps trying to reach the server (it may still be starting).
const CONNECT_PATIENCE: Duration = Duration::from_secs(15);

pub(super) struct Conn {
    pub(super) client: Client,
    apply: Prepared,
    apply_once: Prepared,
    statement: Prepared,
    /// The Citus direct path's statements (shard.rs), by shard and kind, each prepared on
    /// this connection the first time it is needed.
    shards: RwLock<HashMap<(i64, Kind), Prepared>>,
}

impl Conn {
    /// The statement of this kind, prepared when the connection opened.
    pub(super) fn prepared(&self, kind: Kind) -> &Prepared {
        match kind {
            Kind::Apply => &self.apply,
            Kind::ApplyOnce => &self.apply_once,
            Kind::Statement => &self.statement,
        }
    }

    /// The statement of this kind on `shard`'s own tables, prepared on first use (one extra
    /// round trip per shard, kind and connection, then none).
    pub(super) async fn on_shard(
        &self,
        shard: &Shard,
        kind: Kind,
    ) -> Result<Prepared, tokio_postgres::Error> {
        let key = (shard.id, kind);
        if let Some(p) = self.shards.read().expect("not poisoned").get(&key) {
            return Ok(p.clone());
        }
        let p = self.client.prepare(shard.sql(kind)).await?;
        self.shards
            .write()
            .expect("not poisoned")
            .insert(key, p.clone());
        Ok(p)
    }
}

struct Slot {
    conn: RwLock<Option<Arc<Conn>>>,
    reconnecting: AtomicBool,
}

/// What the node is to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// The only server, or the Citus coordinator: migrations run here, and again before a
    /// reconnected slot is used (a crashed contest-profile server lost its UNLOGGED tables).
    Owner,
    /// A Citus worker: requests only; its schema is the coordinator's business.
    Worker,
}

pub(super) struct Node {
    /// host:port, for logs and metrics.
    pub(super) name: String,
    config: Config,
    options: Options,
    role: Role,
    slots: Vec<Slot>,
    next: AtomicUsize,
}

impl Node {
    /// A node whose slots are being opened in the background (a worker that could not be
    /// reached when it was first seen): requests get `Unavailable` until one is open.
    pub(super) fn connecting(
        name: String,
        config: Config,
        options: Options,
        role: Role,
    ) -> Arc<Node> {
        let n = usize::from(options.connections.max(1));
        let node = Arc::new(Node {
            name,
            config,
            options,
            role,
            slots: (0..n).map(|_| Slot::new(None)).collect(),
            next: AtomicUsize::new(0),
        });
        for i in 0..n {
            tokio::spawn(reconnect(Arc::downgrade(&node), i));
        }
        node
    }

    /// A node opened now: `first` (already connected, migrated if the role asks) and the
    /// other slots connected and prepared before this returns.
    pub(super) async fn open(
        name: String,
        config: Config,
        options: Options,
        role: Role,
        first: Client,
    ) -> Result<Arc<Node>, tokio_postgres::Error> {
        let mut slots = vec![Slot::new(Some(prepare(first, options.layout).await?))];
        for _ in 1..options.connections {
            let client = connect_raw(&config).await?;
            slots.push(Slot::new(Some(prepare(client, options.layout).await?)));
        }
        Ok(Arc::new(Node {
            name,
            config,
            options,
            role,
            slots,
            next: AtomicUsize::new(0),
        }))
    }

    /// A live connection and its slot, starting from the next slot in turn; dead slots
    /// start reconnecting.
    pub(super) fn conn(self: &Arc<Self>) -> Result<(usize, Arc<Conn>), LedgerError> {
        let n = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for k in 0..n {
            let i = (start + k) % n;
            let current = self.slots[i].conn.read().expect("not poisoned").clone();
            match current {
                Some(c) if !c.client.is_closed() => return Ok((i, c)),
                _ => self.mark_dead(i),
            }
        }
        Err(LedgerError::Unavailable)
    }

    /// The first slot's connection if it is open (background work: purges, route checks).
    pub(super) fn any_conn(&self) -> Option<Arc<Conn>> {
        self.slots[0].conn.read().expect("not poisoned").clone()
    }

    fn mark_dead(self: &Arc<Self>, i: usize) {
        let slot = &self.slots[i];
        *slot.conn.write().expect("not poisoned") = None;
        if !slot.reconnecting.swap(true, Ordering::AcqRel) {
            tokio::spawn(reconnect(Arc::downgrade(self), i));
        }
    }

    /// What a failed query means for the client, and retires slot `i` if its connection
    /// is gone. The server refusing a statement (an error it reports, other than its own
    /// shutdown) means the statement rolled back: `Unavailable`. Anything else — the
    /// connection broke, the server went away mid-statement — may have committed: `Unknown`.
    pub(super) fn failed(
        self: &Arc<Self>,
        i: usize,
        conn: &Conn,
        e: tokio_postgres::Error,
    ) -> LedgerError {
        tracing::error!(node = %self.name, error = %e, db = ?e.as_db_error().map(|d| d.message()), "postgres query failed");
        if conn.client.is_closed() {
            self.mark_dead(i);
        }
        match e.as_db_error() {
            Some(db) if !matches!(&db.code().code()[..2], "57" | "08" | "58" | "XX") => {
                LedgerError::Unavailable
            }
            _ => LedgerError::Unknown,
        }
    }
}

impl Slot {
    /// A slot with its connection, or an empty one whose reconnect is already running.
    fn new(conn: Option<Conn>) -> Slot {
        let empty = conn.is_none();
        Slot {
            conn: RwLock::new(conn.map(Arc::new)),
            reconnecting: AtomicBool::new(empty),
        }
    }
}

pub(super) async fn connect_raw(config: &Config) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "postgres connection lost");
        }
    });
    Ok(client)
}

pub(super) async fn connect_with_patience(
    config: &Config,
) -> Result<Client, tokio_postgres::Error> {
    let deadline = tokio::time::Instant::now() + CONNECT_PATIENCE;
    loop {
        match connect_raw(config).await {
            Ok(c) => return Ok(c),
            Err(e) if tokio::time::Instant::now() < deadline && e.as_db_error().is_none() => {
                tracing::info!(error = %e, "postgres not reachable yet, retrying");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn prepare(client: Client, layout: Layout) -> Result<Conn, tokio_postgres::Error> {
    let (apply, apply_once) = match layout {
        Layout::Single => (Kind::Apply.sql(), Kind::ApplyOnce.sql()),
        Layout::Citus => (CITUS_APPLY, CITUS_APPLY_ONCE),
    };
    let apply = client.prepare(apply).await?;
    let apply_once = client.prepare(apply_once).await?;
    let statement = client.prepare(Kind::Statement.sql()).await?;
    Ok(Conn {
        client,
        apply,
        apply_once,
        statement,
        shards: RwLock::new(HashMap::new()),
    })
}

/// Reopens slot `i`, retrying every 50–250 ms (a restarted server is usually back within a
/// second); on the owner, the schema and the seed are applied again first: a crash of a
/// server running the contest profile empties its UNLOGGED tables, clients included, and
/// the ledger must come back consistent (five clients at saldo 0, no transactions) rather
/// than all 404s. Ends when the node is dropped.
async fn reconnect(node: Weak<Node>, i: usize) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(n) = node.upgrade() else { return };
        let reopened = async {
            let client = connect_raw(&n.config).await?;
            if n.role == Role::Owner {
                super::migrate::migrate(&client, &n.options).await?;
            }
            prepare(client, n.options.layout).await
        };
        match reopened.await {
            Ok(conn) => {
                *n.slots[i].conn.write().expect("not poisoned") = Some(Arc::new(conn));
                n.slots[i].reconnecting.store(false, Ordering::Release);
                tracing::info!(node = %n.name, slot = i, "postgres connection established");
                return;
            }
            Err(e) => {
                tracing::warn!(node = %n.name, slot = i, error = %e, "postgres connect failed");
            }
        }
        drop(n);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_millis(250));
    }
}
