//! One PostgreSQL server's connections: a few slots, each one prepared connection, used in
//! turn. A dead slot is reopened in the background while the others carry the load (on the
//! coordinator, or the only server, the schema and seed are applied again first); what a
//! failed query means for the client is decided here, once. The store has one node per
//! server it talks to: the only server, or a Citus coordinator and each worker
//! (`route.rs`).
//!
//! A connection is also the wire: every request goes through [`Conn`]'s methods, never the
//! client itself, because a group commit (batch.rs) sends BEGIN, its members and COMMIT as
//! several requests, and nothing else may land between them — a statement that did would run
//! inside that transaction and could see, or spoil, writes that are not committed. Each
//! method enqueues its request under [`Conn`]'s gate, and the batch enqueues all of its under
//! it at once ([`Conn::send_together`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::task::Poll;
use std::time::Duration;

use tokio_postgres::error::Severity;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls, Row, Statement as Prepared};

use super::batch::{Stats, Writes};
use super::shard::{Kind, Shard};
use super::{Layout, LedgerError, Options};

const CITUS_APPLY: &str = include_str!("../../../sql/postgres/citus/apply.sql");
const CITUS_APPLY_ONCE: &str = include_str!("../../../sql/postgres/citus/apply_once.sql");

/// How long start-up keeps trying to reach the server (it may still be starting).
const CONNECT_PATIENCE: Duration = Duration::from_secs(15);

pub(super) struct Conn {
    /// Private: requests go through the methods below, under the gate.
    client: Client,
    /// Held while a request is enqueued on the connection (see the module's doc).
    gate: Mutex<()>,
    /// The server ended the session (a FATAL error): nothing sent now would run, although
    /// the socket may not have closed yet.
    ended: AtomicBool,
    apply: Prepared,
    apply_once: Prepared,
    statement: Prepared,
    lock: Prepared,
    begin: Prepared,
    commit: Prepared,
    /// The Citus direct path's statements (shard.rs), by shard and kind, each prepared on
    /// this connection the first time it is needed.
    shards: RwLock<HashMap<(i64, Kind), Prepared>>,
    /// This connection's group commit (batch.rs).
    pub(super) writes: Writes,
}

impl Conn {
    /// The statement of this kind, prepared when the connection opened.
    pub(super) fn prepared(&self, kind: Kind) -> &Prepared {
        match kind {
            Kind::Apply => &self.apply,
            Kind::ApplyOnce => &self.apply_once,
            Kind::Statement => &self.statement,
            Kind::Lock => &self.lock,
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
        let p = self.prepare(shard.sql(kind)).await?;
        self.shards
            .write()
            .expect("not poisoned")
            .insert(key, p.clone());
        Ok(p)
    }

    /// BEGIN and COMMIT, prepared.
    pub(super) fn transaction(&self) -> (&Prepared, &Prepared) {
        (&self.begin, &self.commit)
    }

    /// Whether the connection can no longer run anything: closed, or its session ended by
    /// the server.
    pub(super) fn is_closed(&self) -> bool {
        self.client.is_closed() || self.ended.load(Ordering::Relaxed)
    }

    /// Notes a request's error: one that ended the session ends the connection.
    fn noted<T>(
        &self,
        result: Result<T, tokio_postgres::Error>,
    ) -> Result<T, tokio_postgres::Error> {
        if let Err(e) = &result {
            let fatal = match e.as_db_error() {
                Some(db) => matches!(
                    db.parsed_severity(),
                    Some(Severity::Fatal | Severity::Panic)
                ),
                None => e.is_closed(),
            };
            if fatal {
                self.ended.store(true, Ordering::Relaxed);
            }
        }
        result
    }

    /// Runs a prepared statement.
    pub(super) async fn query(
        &self,
        statement: &Prepared,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        self.noted(self.gated(self.client.query(statement, params)).await)
    }

    /// Prepares a statement (one request: its parameters are built-in types).
    pub(super) async fn prepare(&self, sql: &str) -> Result<Prepared, tokio_postgres::Error> {
        self.noted(self.gated(self.client.prepare(sql)).await)
    }

    /// Prepares `sql` and runs it: two requests, each enqueued whole.
    pub(super) async fn query_text(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        let statement = self.prepare(sql).await?;
        self.query(&statement, params).await
    }

    /// An empty query: whether the server answers at all.
    pub(super) async fn ping(&self) -> Result<(), tokio_postgres::Error> {
        self.noted(self.gated(self.client.simple_query("")).await)
            .map(drop)
    }

    /// Runs the prepared statements in order as consecutive requests, nothing else between
    /// them, pipelined (one round trip); each one's result, in order. `None` when the first
    /// could not even be sent (the connection was closed): then none was.
    pub(super) async fn send_together(
        &self,
        requests: &[(&Prepared, &[&(dyn ToSql + Sync)])],
    ) -> Option<Vec<Result<Vec<Row>, tokio_postgres::Error>>> {
        let mut pending: Vec<_> = requests
            .iter()
            .map(|(statement, params)| Some(Box::pin(self.client.query(*statement, params))))
            .collect();
        let mut results: Vec<Option<Result<Vec<Row>, tokio_postgres::Error>>> =
            (0..requests.len()).map(|_| None).collect();
        let mut first = true;
        let mut unsent = false;
        std::future::poll_fn(|cx| {
            // The first poll of each enqueues its request; all of them under the gate. One
            // that fails on its first poll, before any answer can have come, was not sent;
            // requests are sent in order, so when the first was not, none was.
            let _gate = first.then(|| self.gate.lock().expect("not poisoned"));
            let mut done = true;
            for (i, (slot, result)) in pending.iter_mut().zip(results.iter_mut()).enumerate() {
                if let Some(f) = slot {
                    match f.as_mut().poll(cx) {
                        Poll::Ready(r) => {
                            if first && i == 0 && r.is_err() {
                                unsent = true;
                            }
                            *result = Some(r);
                            *slot = None;
                        }
                        Poll::Pending => done = false,
                    }
                }
            }
            first = false;
            if done { Poll::Ready(()) } else { Poll::Pending }
        })
        .await;
        if unsent {
            if let Some(Some(first)) = results.into_iter().next() {
                let _ = self.noted(first);
            }
            return None;
        }
        Some(
            results
                .into_iter()
                .map(|r| self.noted(r.expect("every request answered")))
                .collect(),
        )
    }

    /// Polls `request` for the first time under the gate. tokio-postgres enqueues a request
    /// on that first poll, before it waits for anything (`query::start`, `prepare`,
    /// `simple_query`): the gate orders it against a batch's.
    async fn gated<F: Future>(&self, request: F) -> F::Output {
        let mut request = std::pin::pin!(request);
        let mut first = true;
        std::future::poll_fn(|cx| {
            if first {
                first = false;
                let _gate = self.gate.lock().expect("not poisoned");
                return request.as_mut().poll(cx);
            }
            request.as_mut().poll(cx)
        })
        .await
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
    /// Its connections' group commits (batch.rs), counted together.
    pub(super) stats: Arc<Stats>,
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
            stats: Arc::default(),
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
        let stats = Arc::<Stats>::default();
        let mut slots = vec![Slot::new(Some(
            prepare(first, &options, role, &stats).await?,
        ))];
        for _ in 1..options.connections {
            let client = connect_raw(&config).await?;
            slots.push(Slot::new(Some(
                prepare(client, &options, role, &stats).await?,
            )));
        }
        Ok(Arc::new(Node {
            name,
            config,
            options,
            role,
            slots,
            next: AtomicUsize::new(0),
            stats,
        }))
    }

    /// A live connection and its slot, starting from the next slot in turn: the first one
    /// with no write in flight (a request sent there waits for nobody's commit), else the
    /// first live one. Dead slots start reconnecting.
    pub(super) fn conn(self: &Arc<Self>) -> Result<(usize, Arc<Conn>), LedgerError> {
        let n = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut live = None;
        for k in 0..n {
            let i = (start + k) % n;
            let current = self.slots[i].conn.read().expect("not poisoned").clone();
            match current {
                Some(c) if !c.is_closed() => {
                    if c.writes.idle() {
                        return Ok((i, c));
                    }
                    live.get_or_insert((i, c));
                }
                _ => self.mark_dead(i),
            }
        }
        live.ok_or(LedgerError::Unavailable)
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

    /// What a failed query means for the client ([`classify`]), and retires slot `i` if its
    /// connection is gone.
    pub(super) fn failed(
        self: &Arc<Self>,
        i: usize,
        conn: &Conn,
        e: tokio_postgres::Error,
    ) -> LedgerError {
        tracing::error!(node = %self.name, error = %e, db = ?e.as_db_error().map(|d| d.message()), "postgres query failed");
        if conn.is_closed() {
            self.mark_dead(i);
        }
        classify(&e)
    }
}

/// What a failed request means for the client. The server refusing a statement (an error it
/// reports, other than its own shutdown) means the statement rolled back: `Unavailable`.
/// Anything else — the connection broke, the server went away mid-statement — may have
/// committed: `Unknown`.
pub(super) fn classify(e: &tokio_postgres::Error) -> LedgerError {
    match e.as_db_error() {
        Some(db) if !matches!(&db.code().code()[..2], "57" | "08" | "58" | "XX") => {
            LedgerError::Unavailable
        }
        _ => LedgerError::Unknown,
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

/// The most writes one transaction of this node's connections carries: the store's bound,
/// except on a Citus coordinator, which only sees what the routes miss, through Citus's own
/// functions (a transaction block there would run them step by step from the coordinator).
fn batch_limit(options: &Options, role: Role) -> usize {
    match (options.layout, role) {
        (Layout::Citus, Role::Owner) => 1,
        _ => usize::from(options.batch.max(1)),
    }
}

async fn prepare(
    client: Client,
    options: &Options,
    role: Role,
    stats: &Arc<Stats>,
) -> Result<Conn, tokio_postgres::Error> {
    let batch = batch_limit(options, role);
    let (apply, apply_once) = match options.layout {
        Layout::Single => (Kind::Apply.sql(), Kind::ApplyOnce.sql()),
        Layout::Citus => (CITUS_APPLY, CITUS_APPLY_ONCE),
    };
    let apply = client.prepare(apply).await?;
    let apply_once = client.prepare(apply_once).await?;
    let statement = client.prepare(Kind::Statement.sql()).await?;
    let lock = client.prepare(Kind::Lock.sql()).await?;
    let begin = client.prepare("BEGIN").await?;
    let commit = client.prepare("COMMIT").await?;
    Ok(Conn {
        client,
        gate: Mutex::new(()),
        ended: AtomicBool::new(false),
        apply,
        apply_once,
        statement,
        lock,
        begin,
        commit,
        shards: RwLock::new(HashMap::new()),
        writes: Writes::new(batch, stats.clone()),
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
            prepare(client, &n.options, n.role, &n.stats).await
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
