//! The PostgreSQL store: PostgreSQL owns the invariant, crebito holds a few connections and
//! groups the writes waiting on each into one transaction.
//!
//! `apply` is the single statement in `sql/postgres/apply.sql` (conditional `UPDATE …
//! RETURNING` + `INSERT`), `apply_once` its keyed twin, `statement` the single query in
//! `sql/postgres/statement.sql`, all prepared once per connection. A read is one round trip.
//! A write that finds its connection idle is one round trip too; writes that arrive while one
//! is in flight wait in that connection's queue and leave together, one transaction
//! and one WAL flush for many (group commit, [`batch`]).
//!
//! A few connections, not a pool: tokio-postgres pipelines concurrent queries on one
//! connection, and more than a handful of sessions fighting over five hot rows only adds
//! lock waits. Requests are spread round-robin over the slots. When a connection is lost,
//! the slot is marked dead and a background task reconnects with backoff; meanwhile the
//! other slots carry the traffic. A query is never re-sent, so nothing is applied twice,
//! and the caller is told what is known: no live connection, or a statement
//! the server refused, is `Unavailable` (certainly not applied); a connection that broke
//! after the query was sent is `Unknown` (maybe applied; a retry with an idempotency key
//! tells). Two exceptions re-ask what the server has rolled back as a whole: `apply_once`
//! after a unique violation on its key, and the members of a batch that rolled back, each
//! run again alone.
//!
//! By job, each file depending only on those after it: this file answers requests;
//! [`route`] sends each client's requests to the Citus worker holding it, where [`shard`]'s
//! statements run on the shard's own tables; [`node`] owns one server's lanes (round robin,
//! reconnect, what a failure means); [`batch`] is a lane: a connection and its queue, group
//! commit; [`conn`] is the wire; [`migrate`] sets the database up; [`purge`] forgets expired
//! idempotency keys; [`options`] is what the store is asked to be; [`sql`] holds every SQL
//! text, each a file in `sql/postgres/`.

mod batch;
mod conn;
mod migrate;
mod node;
mod options;
mod purge;
mod route;
mod shard;
mod sql;

use std::sync::Arc;

use tokio_postgres::error::SqlState;
use tokio_postgres::{Config, Row};

use crate::domain::{Balance, ClientId, IdempotencyKey, Statement, Transaction};
use crate::store::postgres::batch::{Done, Write};
use crate::store::postgres::conn::{Conn, connect_with_patience};
use crate::store::postgres::node::{Node, Role};
use crate::store::postgres::route::Router;
use crate::store::postgres::shard::Shard;
use crate::store::postgres::sql::Kind;
use crate::store::{Ledger, LedgerError, Once, Purges, StatementRows};

pub use crate::store::postgres::options::{Layout, Options, Persistence};

/// Handle to the connections. Dropping it lets the background tasks end.
pub struct PgLedger {
    /// The only server, or the Citus coordinator.
    owner: Arc<Node>,
    /// The Citus layout's routes to the workers.
    router: Option<Arc<Router>>,
    purges: Arc<Purges>,
}

impl PgLedger {
    /// Connects, applies the schema (once, under an advisory lock) with the profile's
    /// persistence and the layout, seeds the clients, and opens the prepared connections;
    /// in the Citus layout, also the workers' (route.rs).
    pub async fn connect(url: &str, options: Options) -> Result<PgLedger, tokio_postgres::Error> {
        let mut config: Config = url.parse()?;
        // Statements are prepared once, when a connection opens, and PostgreSQL keeps their
        // plan until the table's statistics change. Prepared on a fresh, empty `transacoes`,
        // statement.sql got a bitmap scan of *every* transaction of the client plus a sort:
        // 1.76 ms and 275 buffers after a 20 s run at 6x, growing with history, against
        // 0.03 ms for the ordered index scan it gets on a full table (bench/hops.sh;
        // docs/src/performance.md, "Where the tail comes from"). Every query of crebito's
        // has an index that answers it directly, so its sessions rule out sequential and
        // bitmap scans: the plan no longer depends on when it was made.
        let planner = "-c enable_seqscan=off -c enable_bitmapscan=off";
        let session = match config.get_options() {
            Some(o) => format!("{o} {planner}"),
            None => planner.to_string(),
        };
        config.options(&session);
        let first = connect_with_patience(&config).await?;
        migrate::migrate(&first, &options).await?;
        let owner = Node::open("owner".into(), config.clone(), options, Role::Owner, first).await?;
        let purges = Arc::new(Purges::default());
        tokio::spawn(purge::purge_keys(
            Arc::downgrade(&owner),
            options.keys,
            purges.clone(),
        ));
        let router = match options.layout {
            Layout::Single => None,
            Layout::Citus if options.direct => {
                Some(Router::start(owner.clone(), config, options).await?)
            }
            Layout::Citus => None,
        };
        Ok(PgLedger {
            owner,
            router,
            purges,
        })
    }

    /// Runs `request` where its client's data lives: on its worker's shard tables in the
    /// Citus layout (if the shard has just moved away, nothing was applied there and it is
    /// re-sent through the coordinator), else on the only server or the coordinator. Writes
    /// go through the connection's group commit (batch.rs); one whose batch rolled back runs
    /// again alone.
    async fn query(&self, request: Request<'_>) -> Result<Vec<Row>, Failed> {
        let client = request.client();
        let routed = self.router.as_ref().map(|r| (r, r.route(client)));
        if let Some((router, Some((node, shard)))) = &routed {
            let mut step = self.run_on(node, Some(shard), request, false).await;
            if matches!(step, Step::Again) {
                step = self.run_on(node, Some(shard), request, true).await;
            }
            match step {
                Step::Done(result) => return result,
                Step::Moved => router.shard_moved(node, shard),
                // Not reached: a write run alone has no batch to roll back.
                Step::Again => return Err(Failed::Ledger(LedgerError::Unavailable)),
            }
        }
        let mut step = self.run_on(&self.owner, None, request, false).await;
        if matches!(step, Step::Again) {
            step = self.run_on(&self.owner, None, request, true).await;
        }
        let rows = match step {
            Step::Done(result) => result?,
            Step::Moved | Step::Again => return Err(Failed::Ledger(LedgerError::Unavailable)),
        };
        // A client the routes miss but the coordinator knows: the routes are out of date.
        if let Some((router, None)) = routed
            && client_exists(request.kind(), &rows)
        {
            router.client_found();
        }
        Ok(rows)
    }

    /// Runs `request` on one of `node`'s connections, on `shard`'s own tables when given.
    async fn run_on(
        &self,
        node: &Arc<Node>,
        shard: Option<&Shard>,
        request: Request<'_>,
        alone: bool,
    ) -> Step {
        let (slot, lane) = match node.lane() {
            Ok(c) => c,
            Err(e) => return Step::Done(Err(e.into())),
        };
        let conn = &lane.conn;
        let kind = request.kind();
        let statement = match prepared(conn, shard, kind).await {
            Ok(p) => p,
            Err(e) if shard::is_moved(&e) => return Step::Moved,
            Err(e) => {
                // Not prepared, so not run: certainly not applied.
                let _ = node.failed(slot, conn, e);
                return Step::Done(Err(Failed::Ledger(LedgerError::Unavailable)));
            }
        };
        let done = match request {
            Request::Statement(client) => match conn.query(&statement, &[&client.get()]).await {
                Ok(rows) => Done::Rows(rows),
                Err(e) => Done::Error(e),
            },
            Request::Write(client, t, key) => {
                let lock = match prepared(conn, shard, Kind::Lock).await {
                    Ok(p) => p,
                    Err(e) if shard::is_moved(&e) => return Step::Moved,
                    Err(e) => {
                        let _ = node.failed(slot, conn, e);
                        return Step::Done(Err(Failed::Ledger(LedgerError::Unavailable)));
                    }
                };
                let order = (shard.map_or(0, |s| s.id), client.get());
                let write = Write::new(client, t, key);
                batch::write(&lane, order, statement, &lock, write, alone).await
            }
        };
        match done {
            Done::Rows(rows) => Step::Done(Ok(rows)),
            Done::Error(e) if shard.is_some() && shard::is_moved(&e) => Step::Moved,
            Done::Error(e) => Step::Done(Err(Failed::new(node, slot, conn, e))),
            Done::Again => Step::Again,
            // A closed connection's slot is retired by the next `lane()`.
            Done::Lost(e) => Step::Done(Err(Failed::Ledger(e))),
        }
    }
}

/// The statement of this kind on `conn`: the node's own, or `shard`'s (prepared on first use).
async fn prepared(
    conn: &Conn,
    shard: Option<&Shard>,
    kind: Kind,
) -> Result<tokio_postgres::Statement, tokio_postgres::Error> {
    match shard {
        None => Ok(conn.prepared(kind).clone()),
        Some(shard) => conn.on_shard(shard, kind).await,
    }
}

/// One request of the API, as the store runs it.
#[derive(Clone, Copy)]
enum Request<'a> {
    /// A client's statement (statement.sql).
    Statement(ClientId),
    /// A transaction, with its idempotency key if it has one (apply.sql, apply_once.sql).
    Write(ClientId, &'a Transaction, Option<&'a IdempotencyKey>),
}

impl Request<'_> {
    fn client(&self) -> ClientId {
        match self {
            Request::Statement(c) | Request::Write(c, ..) => *c,
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Request::Statement(_) => Kind::Statement,
            Request::Write(_, _, None) => Kind::Apply,
            Request::Write(_, _, Some(_)) => Kind::ApplyOnce,
        }
    }
}

/// Where a request got on one node.
enum Step {
    Done(Result<Vec<Row>, Failed>),
    /// Its shard is no longer on that worker: nothing applied there.
    Moved,
    /// Its batch rolled back: nothing applied; run it again alone.
    Again,
}

/// Whether a statement's rows show its client exists: the statement has a row per entry
/// (none for an unknown client); both applies answer one row, which [`decode_apply`] reads
/// as "unknown client" for exactly that case.
fn client_exists(kind: Kind, rows: &[Row]) -> bool {
    match kind {
        Kind::Statement => !rows.is_empty(),
        Kind::Lock => false,
        Kind::Apply | Kind::ApplyOnce => rows
            .first()
            .is_some_and(|row| !matches!(decode_apply(row), Err(LedgerError::UnknownClient))),
    }
}

/// Why [`PgLedger::query`] failed.
enum Failed {
    /// A unique violation: for `apply_once`, a racing request stored the key first.
    Unique,
    Ledger(LedgerError),
}

impl Failed {
    fn new(node: &Arc<Node>, slot: usize, conn: &Conn, e: tokio_postgres::Error) -> Failed {
        if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
            return Failed::Unique;
        }
        Failed::Ledger(node.failed(slot, conn, e))
    }
}

impl From<LedgerError> for Failed {
    fn from(e: LedgerError) -> Failed {
        Failed::Ledger(e)
    }
}

impl From<Failed> for LedgerError {
    /// A unique violation rolled the statement back whole: not applied.
    fn from(f: Failed) -> LedgerError {
        match f {
            Failed::Unique => LedgerError::Unavailable,
            Failed::Ledger(e) => e,
        }
    }
}

impl Ledger for PgLedger {
    async fn apply(&self, client: ClientId, t: &Transaction) -> Result<Balance, LedgerError> {
        let rows = self.query(Request::Write(client, t, None)).await?;
        decode_apply(one(&rows)?)
    }

    async fn apply_once(&self, client: ClientId, t: &Transaction, key: &IdempotencyKey) -> Once {
        let request = Request::Write(client, t, Some(key));
        // Twice at most: a unique violation on the key means a racing request with the same
        // key committed first, and this statement was rolled back whole; asked again, it finds
        // the key and replays that request's answer.
        let mut rows = self.query(request).await;
        if matches!(rows, Err(Failed::Unique)) {
            rows = self.query(request).await;
        }
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => return Once::fresh(Err(e.into())),
        };
        let row = match one(&rows) {
            Ok(row) => row,
            Err(e) => return Once::fresh(Err(e)),
        };
        if let Some(pedido) = row.get::<_, Option<&str>>(3) {
            let balance = row
                .get::<_, Option<i64>>(5)
                .zip(row.get::<_, Option<i64>>(6))
                .map(|(saldo, limite)| Balance { saldo, limite });
            return Once::stored(pedido == t.fingerprint(), row.get(4), balance);
        }
        Once::fresh(decode_apply(row))
    }

    async fn statement(&self, client: ClientId) -> Result<Statement, LedgerError> {
        let rows = self.query(Request::Statement(client)).await?;
        let mut statement = StatementRows::new(client);
        for row in &rows {
            let balance = Balance {
                saldo: row.get(0),
                limite: row.get(1),
            };
            let entry = row
                .get::<_, Option<i64>>(2)
                .map(|valor| (valor, row.get(3), row.get(4), row.get(5)));
            statement.push(balance, entry)?;
        }
        statement.finish()
    }

    async fn ping(&self) -> Result<(), LedgerError> {
        let (slot, lane) = self.owner.lane()?;
        lane.conn
            .ping()
            .await
            .map_err(|e| self.owner.failed(slot, &lane.conn, e))
    }

    fn render_metrics(&self, out: &mut String) {
        let workers = self.router.as_ref().map(|r| r.nodes()).unwrap_or_default();
        let mut nodes = vec![(self.owner.name.as_str(), &*self.owner.stats)];
        nodes.extend(workers.iter().map(|n| (n.name.as_str(), &*n.stats)));
        batch::render(out, &nodes);
        self.purges.render(out);
        if let Some(router) = &self.router {
            router.render_metrics(out);
        }
    }
}

/// The one row apply.sql and apply_once.sql return.
fn one(rows: &[Row]) -> Result<&Row, LedgerError> {
    rows.first().ok_or(LedgerError::Unavailable)
}

/// The first three columns of apply.sql and apply_once.sql: the new balance, or why not.
fn decode_apply(row: &tokio_postgres::Row) -> Result<Balance, LedgerError> {
    let saldo: Option<i64> = row.get(0);
    let limite: Option<i64> = row.get(1);
    match (saldo, limite) {
        (Some(saldo), Some(limite)) => Ok(Balance { saldo, limite }),
        _ if row.get::<_, Option<bool>>(2) == Some(true) => Err(LedgerError::LimitExceeded),
        _ => Err(LedgerError::UnknownClient),
    }
}
