//! One PostgreSQL server's lanes: a few slots, each one lane (a prepared connection and its
//! group commit, batch.rs), used in turn. A dead slot is reopened in the background while the
//! others carry the load (on the coordinator, or the only server, the schema and seed are
//! applied again first); what a failed query means for the client is decided here, once. The
//! store has one node per server it talks to: the only server, or a Citus coordinator and
//! each worker (`route.rs`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use tokio_postgres::{Client, Config};

use crate::store::LedgerError;
use crate::store::postgres::batch::{Lane, Stats};
use crate::store::postgres::conn::{Conn, classify, connect_raw};
use crate::store::postgres::migrate;
use crate::store::postgres::options::{Layout, Options};

struct Slot {
    lane: RwLock<Option<Arc<Lane>>>,
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
            open_lane(first, &options, role, &stats).await?,
        ))];
        for _ in 1..options.connections {
            let client = connect_raw(&config).await?;
            slots.push(Slot::new(Some(
                open_lane(client, &options, role, &stats).await?,
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

    /// A live lane and its slot, starting from the next slot in turn: the first one with no
    /// write in flight (a request sent there waits for nobody's commit), else the live one
    /// with the fewest writes waiting. With `spill` the first slot is always tried first and
    /// the others only take what finds it busy while they are idle: everything else queues
    /// for the first (its next batch) until its queue is full, then for the one with the
    /// fewest waiting. Without batching (a bound of 1: no write ever marks a lane busy) the
    /// first slot is then always taken while it lives: the others are its standby, taking the
    /// load while it reconnects (one connection's pipeline, as measured for the contest
    /// profile, with no reconnect gap). Dead slots start reconnecting.
    pub(super) fn lane(self: &Arc<Self>) -> Result<(usize, Arc<Lane>), LedgerError> {
        let n = self.slots.len();
        let spill = self.options.spill;
        let start = if spill {
            0
        } else {
            self.next.fetch_add(1, Ordering::Relaxed)
        };
        let mut live = None;
        for k in 0..n {
            let i = (start + k) % n;
            let current = self.slots[i].lane.read().expect("not poisoned").clone();
            match current {
                Some(c) if !c.conn.is_closed() => {
                    if c.idle() {
                        return Ok((i, c));
                    }
                    if live.as_ref().is_none_or(|(_, l): &(usize, Arc<Lane>)| {
                        (!spill || l.full()) && c.waiting() < l.waiting()
                    }) {
                        live = Some((i, c));
                    }
                }
                _ => self.mark_dead(i),
            }
        }
        live.ok_or(LedgerError::Unavailable)
    }

    /// The first slot's lane if it is open (background work: purges).
    pub(super) fn any_lane(&self) -> Option<Arc<Lane>> {
        self.slots[0].lane.read().expect("not poisoned").clone()
    }

    fn mark_dead(self: &Arc<Self>, i: usize) {
        let slot = &self.slots[i];
        *slot.lane.write().expect("not poisoned") = None;
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

impl Slot {
    /// A slot with its connection, or an empty one whose reconnect is already running.
    fn new(lane: Option<Lane>) -> Slot {
        let empty = lane.is_none();
        Slot {
            lane: RwLock::new(lane.map(Arc::new)),
            reconnecting: AtomicBool::new(empty),
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

/// A lane on `client`: its statements prepared, its queue empty.
async fn open_lane(
    client: Client,
    options: &Options,
    role: Role,
    stats: &Arc<Stats>,
) -> Result<Lane, tokio_postgres::Error> {
    let conn = Conn::open(client, options.layout).await?;
    let bound = usize::from(options.queue.max(1));
    Ok(Lane::new(
        conn,
        batch_limit(options, role),
        bound,
        stats.clone(),
    ))
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
                migrate::migrate(&client, &n.options).await?;
            }
            open_lane(client, &n.options, n.role, &n.stats).await
        };
        match reopened.await {
            Ok(lane) => {
                *n.slots[i].lane.write().expect("not poisoned") = Some(Arc::new(lane));
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
