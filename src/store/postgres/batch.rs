//! A lane: one connection and the queue of writes waiting for it, with group commit — the
//! writes waiting leave together, one transaction (one WAL flush) for many.
//!
//! Why: in the durable profile a commit waits for its WAL flush, the disk's time (0.1–0.2 ms
//! on this project's machines), with the client's row locked; one flush per write caps the
//! stack at the disk's flush rate times its few connections (docs/src/performance.md, "Group
//! commit"). PostgreSQL groups the flushes of concurrent backends, but crebito keeps few
//! backends, so that has little to group. Every fast durable engine pays one flush for many
//! writes; here the writes waiting on one connection share one.
//!
//! How, per connection, with no timer:
//! - a write that finds no write in flight on its connection goes at once, alone, as the
//!   single autocommit statement it is without batching: an idle server waits for nothing;
//! - writes that arrive while one is in flight queue; when it is answered they leave
//!   together, at most the bound (`--pg-batch`) per transaction: BEGIN, the members sorted
//!   by client (arrival order kept within a client), COMMIT, pipelined in one round trip;
//!   when a member carries an idempotency key, a lock of every client of the batch in that
//!   order comes first (sql/postgres/lock.sql); one that waited alone leaves as its own
//!   statement;
//! - at most `--pg-queue` writes wait per connection: one more is refused at once, 503, never
//!   sent. A frozen server thus leaves a bounded backlog, a few transactions' worth, that
//!   drains at once when it answers again, instead of one that grows for as long as it is
//!   frozen and that every new write then waits behind (and times out behind);
//! - a member whose caller is gone (its deadline passed: it was answered 504 "outcome
//!   unknown") is dropped unsent when its turn comes: nobody waits for it, and sending it
//!   would only delay the writes somebody does wait for;
//! - no member is answered before the COMMIT is.
//!
//! What a member is told is what happened to it ([`Done`]):
//! - committed: its own statement's answer, exactly as if it had run alone (the statements
//!   raise no error for a refusal, an unknown client or a replay: they answer it in a row);
//! - the transaction rolled back because a statement failed (a shard moved away on the
//!   Citus direct path; a key stored meanwhile by a statement that took no lock): nothing of
//!   it was applied, so each member runs again alone ([`Done::Again`]): one member's failure
//!   never becomes another's answer;
//! - the connection failed, or the COMMIT got no answer, or got a FATAL or PANIC (which may
//!   come after the commit record reached the disk: 53100 from the WAL writer): every
//!   member's outcome is unknown (504; a keyed retry settles each exactly once) — never 503,
//!   and never run again; never sent: not applied (503).
//!
//! No deadlock: a batch takes client row locks in one global order (by shard, then client
//! id) and every other writer locks one row, so no two transactions wait on each other in a
//! cycle.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use bytes::BytesMut;
use tokio::sync::oneshot;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Row, Statement as Prepared};

use crate::domain::{ClientId, Description, IdempotencyKey, Transaction};
use crate::store::LedgerError;
use crate::store::postgres::conn::{Conn, classify};

/// Debug builds only, a fault for the tests: a batch carrying a write with this description
/// panics in its task before anything is sent (tests/api/batch.rs shows that the task's drop
/// guard, [`Running`], frees the lane). Release builds have no such path, and abort on a
/// panic anyway (Cargo.toml); the guard serves them when the task is dropped.
#[cfg(debug_assertions)]
const PANIC_MARK: &str = "(panic)";

/// Upper bounds of the batch-size histogram (`crebito_pg_batch_size`).
const SIZES: [usize; 11] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/// One write's parameters, owned: it may run on another task, in another's batch.
#[derive(Debug)]
pub(super) struct Write {
    id: i32,
    delta: i64,
    amount: i32,
    kind: &'static str,
    description: Text,
    /// The idempotency key and the request's fingerprint (apply_once.sql's $6 and $7).
    key: Option<(String, String)>,
}

impl Write {
    pub(super) fn new(client: ClientId, t: &Transaction, key: Option<&IdempotencyKey>) -> Write {
        Write {
            id: client.get(),
            delta: t.delta(),
            amount: t.amount.get(),
            kind: t.kind.as_str(),
            description: Text(t.description),
            key: key.map(|k| (k.as_str().to_string(), t.fingerprint())),
        }
    }

    /// apply.sql's five parameters, or apply_once.sql's seven.
    pub(super) fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        let mut p: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(7);
        p.extend_from_slice(&[
            &self.id,
            &self.delta,
            &self.amount,
            &self.kind,
            &self.description,
        ]);
        if let Some((key, fingerprint)) = &self.key {
            p.push(key);
            p.push(fingerprint);
        }
        p
    }
}

/// A description as a text parameter, without copying it out of the transaction.
#[derive(Debug)]
struct Text(Description);

impl ToSql for Text {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.0.as_str().to_sql(ty, out)
    }

    fn accepts(ty: &Type) -> bool {
        <&str as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

/// What became of a write.
pub(super) enum Done {
    /// Committed (alone, or with its batch): its statement's rows.
    Rows(Vec<Row>),
    /// It ran alone and failed: the statement's own error, for the caller to read as it
    /// reads any single statement's.
    Error(tokio_postgres::Error),
    /// Its batch rolled back whole (a statement failed): nothing applied; run it again alone.
    Again,
    /// Its batch's outcome: unknown (the connection failed, the COMMIT got no answer) or not
    /// applied (never sent).
    Lost(LedgerError),
}

/// A write waiting for its connection's next transaction.
struct Member {
    /// Where its client's row sits in the global lock order: (shard, client).
    order: (i64, i32),
    statement: Prepared,
    /// The lock statement of its client's table (the node's, or its shard's).
    lock: Prepared,
    write: Write,
    reply: oneshot::Sender<Done>,
}

#[derive(Default)]
struct Queue {
    busy: bool,
    waiting: VecDeque<Member>,
}

impl Member {
    /// Its caller is gone: its deadline passed and it was answered 504 "outcome unknown".
    /// Sent now, it would apply a write nobody waits for, ahead of writes somebody does.
    fn gone(&self) -> bool {
        self.reply.is_closed()
    }
}

/// One connection and its group commit.
pub(super) struct Lane {
    /// The wire: every request of the lane goes on it.
    pub(super) conn: Conn,
    /// The most writes per transaction; 1: none wait, every write is sent at once, alone.
    limit: usize,
    /// The most writes waiting (`--pg-queue`); one more is refused at once, never sent.
    bound: usize,
    /// Mirrors `queue.busy`, for [`Lane::idle`] without the lock.
    busy: AtomicBool,
    /// Mirrors `queue.waiting.len()`, for [`Lane::waiting`] without the lock.
    len: AtomicUsize,
    queue: Mutex<Queue>,
    stats: Arc<Stats>,
}

/// Transactions by number of writes, rollbacks, writes waiting and refused (shared by a
/// node's connections).
#[derive(Default)]
pub(super) struct Stats {
    sizes: [AtomicU64; SIZES.len()],
    writes: AtomicU64,
    transactions: AtomicU64,
    rolled_back: AtomicU64,
    waiting: AtomicI64,
    /// The most writes seen waiting at once, since the start.
    waiting_max: AtomicI64,
    /// Writes that found their connection's previous transaction in flight and waited for
    /// the next: in the durable profile, behind another transaction's flush.
    queued: AtomicU64,
    /// Writes refused because their connection's queue was full.
    full: AtomicU64,
    /// Writes dropped from a queue unsent because their caller had gone.
    abandoned: AtomicU64,
}

impl Lane {
    pub(super) fn new(conn: Conn, limit: usize, bound: usize, stats: Arc<Stats>) -> Lane {
        Lane {
            conn,
            limit: limit.max(1),
            bound: bound.max(1),
            busy: AtomicBool::new(false),
            len: AtomicUsize::new(0),
            queue: Mutex::new(Queue::default()),
            stats,
        }
    }

    /// No write of this connection is in flight: a write sent now goes at once.
    pub(super) fn idle(&self) -> bool {
        !self.busy.load(Ordering::Relaxed)
    }

    /// Writes waiting for this connection's next transaction.
    pub(super) fn waiting(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// As many writes wait as the bound allows: one more would be refused.
    pub(super) fn full(&self) -> bool {
        self.waiting() >= self.bound
    }

    /// The lane's batch task ended without finishing. Its members in flight learn it from
    /// their dropped reply (504: they may have been sent); the connection may hold a
    /// half-sent transaction, so it is ended (its slot reconnects); every write still waiting
    /// was never sent and is told so (503); and the lane is free again.
    fn stall(&self) {
        self.conn.end();
        let waiting: Vec<Member> = {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.busy = false;
            self.busy.store(false, Ordering::Relaxed);
            queue.waiting.drain(..).collect()
        };
        self.taken(waiting.len());
        for m in waiting {
            let _ = m.reply.send(Done::Lost(LedgerError::Unavailable));
        }
    }

    /// Counts `n` writes out of the queue.
    fn taken(&self, n: usize) {
        self.stats.waiting.fetch_sub(n as i64, Ordering::Relaxed);
        self.len.fetch_sub(n, Ordering::Relaxed);
    }

    /// Drops the members whose caller is gone (a full queue makes room before refusing).
    fn forget_gone(&self, queue: &mut Queue) {
        let before = queue.waiting.len();
        queue.waiting.retain(|m| !m.gone());
        let gone = before - queue.waiting.len();
        self.stats
            .abandoned
            .fetch_add(gone as u64, Ordering::Relaxed);
        self.taken(gone);
    }
}

impl Stats {
    fn observe(&self, size: usize) {
        if let Some(bucket) = SIZES.iter().position(|&b| size <= b) {
            self.sizes[bucket].fetch_add(1, Ordering::Relaxed);
        }
        self.writes.fetch_add(size as u64, Ordering::Relaxed);
        self.transactions.fetch_add(1, Ordering::Relaxed);
    }
}

/// The group commit's Prometheus metrics, each family with one series per node.
pub(super) fn render(out: &mut String, nodes: &[(&str, &Stats)]) {
    use std::fmt::Write;
    out.push_str(
        "# HELP crebito_pg_batch_size Writes per PostgreSQL transaction (group commit; 1: sent alone).\n\
         # TYPE crebito_pg_batch_size histogram\n",
    );
    for (node, stats) in nodes {
        let mut cumulative = 0;
        for (i, le) in SIZES.iter().enumerate() {
            cumulative += stats.sizes[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "crebito_pg_batch_size_bucket{{node=\"{node}\",le=\"{le}\"}} {cumulative}"
            );
        }
        let count = stats.transactions.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "crebito_pg_batch_size_bucket{{node=\"{node}\",le=\"+Inf\"}} {count}\n\
             crebito_pg_batch_size_sum{{node=\"{node}\"}} {}\n\
             crebito_pg_batch_size_count{{node=\"{node}\"}} {count}",
            stats.writes.load(Ordering::Relaxed)
        );
    }
    family(
        out,
        "crebito_pg_batch_rollbacks_total",
        "Batches rolled back whole by a failing statement, their writes then run alone.",
        "counter",
        nodes,
        |s| s.rolled_back.load(Ordering::Relaxed) as i64,
    );
    family(
        out,
        "crebito_pg_batch_queued_total",
        "Writes that found their connection's previous transaction in flight and waited for the next one (in the durable profile, behind its flush); of crebito_pg_batch_size_sum.",
        "counter",
        nodes,
        |s| s.queued.load(Ordering::Relaxed) as i64,
    );
    family(
        out,
        "crebito_pg_batch_waiting",
        "Writes waiting for their connection's next transaction.",
        "gauge",
        nodes,
        |s| s.waiting.load(Ordering::Relaxed),
    );
    family(
        out,
        "crebito_pg_batch_waiting_max",
        "The most writes seen waiting at once since the start (high-water mark; at most --pg-queue per connection).",
        "gauge",
        nodes,
        |s| s.waiting_max.load(Ordering::Relaxed),
    );
    family(
        out,
        "crebito_pg_batch_abandoned_total",
        "Writes dropped from a queue unsent because their caller had gone (answered 504 at its deadline).",
        "counter",
        nodes,
        |s| s.abandoned.load(Ordering::Relaxed) as i64,
    );
    family(
        out,
        "crebito_pg_batch_queue_full_total",
        "Writes refused at once with 503, never sent, because their connection's queue was full (--pg-queue).",
        "counter",
        nodes,
        |s| s.full.load(Ordering::Relaxed) as i64,
    );
}

/// One metric family, a series per node.
fn family(
    out: &mut String,
    name: &str,
    help: &str,
    kind: &str,
    nodes: &[(&str, &Stats)],
    value: impl Fn(&Stats) -> i64,
) {
    use std::fmt::Write;
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (node, stats) in nodes {
        let _ = writeln!(out, "{name}{{node=\"{node}\"}} {}", value(stats));
    }
}

/// Sends `write` on `lane`: at once and alone when no write is in flight there (or batching
/// is off, or `alone`), else with the next batch. `order` places its client in the global
/// lock order; `lock` is the lock statement for its client's table.
pub(super) async fn write(
    lane: &Arc<Lane>,
    order: (i64, i32),
    statement: Prepared,
    lock: &Prepared,
    write: Write,
    alone: bool,
) -> Done {
    if alone || lane.limit == 1 {
        lane.stats.observe(1);
        return single(&lane.conn, &statement, &write).await;
    }
    let waiting = {
        let mut queue = lane.queue.lock().expect("not poisoned");
        if queue.busy && queue.waiting.len() >= lane.bound {
            lane.forget_gone(&mut queue);
        }
        if queue.busy && queue.waiting.len() >= lane.bound {
            // Full: refused now, never sent, rather than queued behind a backlog that a
            // frozen server would leave for every later write to wait behind.
            lane.stats.full.fetch_add(1, Ordering::Relaxed);
            return Done::Lost(LedgerError::Unavailable);
        }
        if queue.busy {
            let (reply, answer) = oneshot::channel();
            lane.stats.queued.fetch_add(1, Ordering::Relaxed);
            let now = lane.stats.waiting.fetch_add(1, Ordering::Relaxed) + 1;
            lane.stats.waiting_max.fetch_max(now, Ordering::Relaxed);
            lane.len.fetch_add(1, Ordering::Relaxed);
            queue.waiting.push_back(Member {
                order,
                statement,
                lock: lock.clone(),
                write,
                reply,
            });
            Err(answer)
        } else {
            queue.busy = true;
            lane.busy.store(true, Ordering::Relaxed);
            Ok((statement, write))
        }
    };
    match waiting {
        Err(answer) => answer
            .await
            // The batch's task ended without answering (the runtime shutting down): it may
            // have been sent.
            .unwrap_or(Done::Lost(LedgerError::Unknown)),
        Ok((statement, write)) => {
            // Whether this request is answered or abandoned (its deadline passed), the
            // writes queued meanwhile leave next.
            let _next = PassOn(lane);
            lane.stats.observe(1);
            single(&lane.conn, &statement, &write).await
        }
    }
}

async fn single(conn: &Conn, statement: &Prepared, write: &Write) -> Done {
    match conn.query(statement, &write.params()).await {
        Ok(rows) => Done::Rows(rows),
        Err(e) => Done::Error(e),
    }
}

/// On drop, hands the connection to the writes that queued behind the one in flight.
struct PassOn<'a>(&'a Arc<Lane>);

impl Drop for PassOn<'_> {
    fn drop(&mut self) {
        let Some(batch) = next_batch(self.0) else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(run(self.0.clone(), batch))),
            // No runtime left to send them on (the process is stopping): never sent.
            Err(_) => {
                for m in batch {
                    let _ = m.reply.send(Done::Lost(LedgerError::Unavailable));
                }
                self.0.stall();
            }
        }
    }
}

/// The next batch, or none (and the connection idle again).
/// Members whose caller is gone are dropped unsent on the way.
fn next_batch(lane: &Lane) -> Option<Vec<Member>> {
    let mut queue = lane.queue.lock().expect("not poisoned");
    let mut batch = Vec::with_capacity(queue.waiting.len().min(lane.limit));
    let mut taken = 0;
    while batch.len() < lane.limit {
        let Some(m) = queue.waiting.pop_front() else {
            break;
        };
        taken += 1;
        if m.gone() {
            lane.stats.abandoned.fetch_add(1, Ordering::Relaxed);
        } else {
            batch.push(m);
        }
    }
    lane.taken(taken);
    if batch.is_empty() {
        queue.busy = false;
        lane.busy.store(false, Ordering::Relaxed);
        return None;
    }
    Some(batch)
}

/// Sends batches until nothing more is waiting.
async fn run(lane: Arc<Lane>, mut batch: Vec<Member>) {
    let mut running = Running {
        lane: &lane,
        done: false,
    };
    loop {
        lane.stats.observe(batch.len());
        commit(&lane, batch).await;
        match next_batch(&lane) {
            Some(next) => batch = next,
            None => {
                running.done = true;
                return;
            }
        }
    }
}

/// The drop guard of a lane's batch task. The task owns the lane while it runs (the lane is
/// busy, later writes queue for it); should it end any other way than by finding the queue
/// empty — a panic, or the task dropped — the lane would stay busy for ever, and every later
/// write on it would wait in its queue until its deadline and get 504, though never sent.
struct Running<'a> {
    lane: &'a Lane,
    done: bool,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if !self.done {
            tracing::error!("postgres batch task ended before its queue did; connection retired");
            self.lane.stall();
        }
    }
}

/// One transaction for the members, each answered once it is over.
async fn commit(lane: &Lane, mut members: Vec<Member>) {
    let conn = &lane.conn;
    #[cfg(debug_assertions)]
    if members
        .iter()
        .any(|m| m.write.description.0.as_str() == PANIC_MARK)
    {
        panic!("a batch carries {PANIC_MARK}: its task panics (debug builds only)");
    }
    // Stable: a client's writes keep their arrival order.
    members.sort_by_key(|m| m.order);
    if conn.is_closed() {
        for m in members {
            let _ = m.reply.send(Done::Lost(LedgerError::Unavailable));
        }
        return;
    }
    // One write waited alone: its own statement, as it would have gone had the connection
    // been idle (no BEGIN, no COMMIT, no lock to add).
    if members.len() == 1 {
        let m = members.pop().expect("one member");
        let _ = m.reply.send(single(conn, &m.statement, &m.write).await);
        return;
    }
    // The locks, when a member carries a key: one statement per table, with its clients'
    // ids in order (the members are sorted by table, then client).
    let keyed = members.iter().any(|m| m.write.key.is_some());
    let mut locks: Vec<(i64, &Prepared, Vec<i32>)> = Vec::new();
    if keyed {
        for m in &members {
            let (table, client) = m.order;
            match locks.last_mut() {
                Some((t, _, ids)) if *t == table => {
                    if ids.last() != Some(&client) {
                        ids.push(client);
                    }
                }
                _ => locks.push((table, &m.lock, vec![client])),
            }
        }
    }
    let (begin, end) = conn.transaction();
    let member_params: Vec<Vec<&(dyn ToSql + Sync)>> =
        members.iter().map(|m| m.write.params()).collect();
    let lock_params: Vec<[&(dyn ToSql + Sync); 1]> = locks
        .iter()
        .map(|(_, _, ids)| [ids as &(dyn ToSql + Sync)])
        .collect();
    let mut requests: Vec<(&Prepared, &[&(dyn ToSql + Sync)])> =
        Vec::with_capacity(members.len() + locks.len() + 2);
    requests.push((begin, &[]));
    for ((_, lock, _), params) in locks.iter().zip(&lock_params) {
        requests.push((lock, params));
    }
    for (m, params) in members.iter().zip(&member_params) {
        requests.push((&m.statement, params));
    }
    requests.push((end, &[]));
    let sent = conn.send_together(&requests).await;
    drop(requests);
    drop(member_params);
    drop(lock_params);
    let Some(mut results) = sent else {
        for m in members {
            let _ = m.reply.send(Done::Lost(LedgerError::Unavailable));
        }
        return;
    };

    let committed = results.pop().expect("the COMMIT's result");
    let opened = results.remove(0);
    let answers: Vec<Result<Vec<Row>, tokio_postgres::Error>> = results.split_off(locks.len());
    let locked = results;
    let outcome = settle(&opened, &locked, &answers, &committed);
    if outcome == Settled::RolledBack {
        lane.stats.rolled_back.fetch_add(1, Ordering::Relaxed);
    }
    for (m, answer) in members.into_iter().zip(answers) {
        let done = match (outcome, answer) {
            (Settled::Committed, Ok(rows)) => Done::Rows(rows),
            // Each statement ran in its own transaction (BEGIN failed): its own result.
            (Settled::Each, Ok(rows)) => Done::Rows(rows),
            (Settled::Each, Err(e)) => Done::Error(e),
            (Settled::RolledBack, _) | (Settled::Committed, Err(_)) => Done::Again,
            (Settled::Lost(e), _) => Done::Lost(e),
        };
        let _ = m.reply.send(done);
    }
}

/// What became of a batch's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    /// BEGIN, every statement and COMMIT succeeded.
    Committed,
    /// A statement failed inside the transaction: the server rolled it back whole (a COMMIT
    /// in a failed transaction is a ROLLBACK), or the COMMIT itself was refused.
    RolledBack,
    /// BEGIN failed, so each statement ran (or failed) as its own transaction.
    Each,
    /// No telling, or not sent.
    Lost(LedgerError),
}

fn settle(
    opened: &Result<Vec<Row>, tokio_postgres::Error>,
    locked: &[Result<Vec<Row>, tokio_postgres::Error>],
    answers: &[Result<Vec<Row>, tokio_postgres::Error>],
    committed: &Result<Vec<Row>, tokio_postgres::Error>,
) -> Settled {
    let statements = || locked.iter().chain(answers);
    // A failure the server did not report (the connection broke) says nothing of what ran.
    let unreported = std::iter::once(opened)
        .chain(statements())
        .chain(std::iter::once(committed))
        .find_map(|r| r.as_ref().err().filter(|e| e.as_db_error().is_none()));
    if let Some(e) = unreported {
        tracing::error!(error = %e, "postgres batch lost");
        return Settled::Lost(classify(e));
    }
    if let Err(e) = opened {
        tracing::error!(error = %e, "postgres batch could not begin");
        return Settled::Each;
    }
    match committed {
        Err(e) => match classify(e) {
            // Refused with an ERROR: rolled back. (A FATAL or PANIC is `Unknown`: conn.rs.)
            LedgerError::Unavailable => {
                tracing::warn!(error = %e, "postgres batch commit refused");
                Settled::RolledBack
            }
            unknown => {
                tracing::error!(error = %e, "postgres batch commit unanswered");
                Settled::Lost(unknown)
            }
        },
        Ok(_) => match statements().find_map(|r| r.as_ref().err()) {
            None => Settled::Committed,
            Some(e) => {
                tracing::warn!(error = %e, db = ?e.as_db_error().map(|d| d.message()), "postgres batch rolled back; its writes run again alone");
                Settled::RolledBack
            }
        },
    }
}
