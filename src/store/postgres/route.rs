//! Shard-aware routing, the Citus layout: each client's requests go straight to the worker
//! holding its shard, where they run on the shard's own tables (shard.rs) — no coordinator
//! on the request path, no second hop, no Citus planning. The coordinator is only asked
//! what must go there: the migration, and where the shards are (`client_nodes.sql`).
//!
//! The routes are loaded at start and reloaded when Citus says something moved (a
//! fingerprint of its placements and nodes, `placement_version.sql`, polled every
//! [`POLL`]), when the coordinator finds a client the routes do not know, or when a worker
//! says a shard is no longer there. Stale routes are slower, never wrong: the guard of every
//! direct statement refuses a shard that has moved (rolled back, re-sent through the
//! coordinator, which routes it through Citus), and a client the routes do not know is sent
//! to the coordinator. A worker that is down costs its own clients a quick `Unavailable`
//! (its connections are gone) or `Unknown` (lost mid-request), nobody else's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use tokio_postgres::Config;

use crate::domain::ClientId;
use crate::store::postgres::conn::{Conn, connect_raw};
use crate::store::postgres::node::{Node, Role};
use crate::store::postgres::options::Options;
use crate::store::postgres::shard::Shard;
use crate::store::postgres::sql::{CLIENT_NODES, PLACEMENT_VERSION};

/// How often the coordinator is asked whether shards or nodes changed.
const POLL: Duration = Duration::from_secs(1);

/// How long a route check may take before it is abandoned until the next poll (a frozen
/// coordinator must not stall the routes, and requests never wait on it).
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

struct Routes {
    version: String,
    /// Each client's worker and shard.
    clients: HashMap<i32, (Arc<Node>, Arc<Shard>)>,
    /// Every worker seen, by host:port: kept across reloads, so a reload reuses open
    /// connections.
    nodes: HashMap<String, Arc<Node>>,
}

pub(super) struct Router {
    coordinator: Arc<Node>,
    base: Config,
    options: Options,
    routes: RwLock<Arc<Routes>>,
    stale: AtomicBool,
    reloads: AtomicU64,
    /// Requests a worker refused because their shard had moved (re-sent via the coordinator).
    moved: AtomicU64,
}

impl Router {
    /// Loads the routes through the coordinator and opens each worker's connections (a
    /// worker that cannot be reached now is connected in the background); then keeps them
    /// current until the router is dropped.
    pub(super) async fn start(
        coordinator: Arc<Node>,
        base: Config,
        options: Options,
    ) -> Result<Arc<Router>, tokio_postgres::Error> {
        let router = Arc::new(Router {
            coordinator,
            base,
            options,
            routes: RwLock::new(Arc::new(Routes {
                version: String::new(),
                clients: HashMap::new(),
                nodes: HashMap::new(),
            })),
            stale: AtomicBool::new(false),
            reloads: AtomicU64::new(0),
            moved: AtomicU64::new(0),
        });
        router.reload().await?;
        tokio::spawn(keep_current(Arc::downgrade(&router)));
        Ok(router)
    }

    /// The worker and shard of `client`; none for a client the routes do not know (the
    /// store asks the coordinator).
    pub(super) fn route(&self, client: ClientId) -> Option<(Arc<Node>, Arc<Shard>)> {
        self.routes
            .read()
            .expect("not poisoned")
            .clients
            .get(&client.get())
            .cloned()
    }

    /// The coordinator found a client the routes do not know (created since they were
    /// loaded): a reload is due at the next poll. A client that does not exist (a 404)
    /// is not news, so probing unknown ids never makes the routes reload.
    pub(super) fn client_found(&self) {
        self.stale.store(true, Ordering::Relaxed);
    }

    /// A worker refused a request because the client's shard is no longer there: the routes
    /// are reloaded at the next poll.
    pub(super) fn shard_moved(&self, node: &Node, shard: &Shard) {
        tracing::info!(node = %node.name, shard = shard.id, "shard no longer on its routed worker; re-sent through the coordinator");
        self.moved.fetch_add(1, Ordering::Relaxed);
        self.stale.store(true, Ordering::Relaxed);
    }

    /// Prometheus lines: reloads so far, and how many clients each node serves.
    /// Every worker's node, by name.
    pub(super) fn nodes(&self) -> Vec<Arc<Node>> {
        let routes = self.routes.read().expect("not poisoned").clone();
        let mut nodes: Vec<Arc<Node>> = routes.nodes.values().cloned().collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        nodes
    }

    pub(super) fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let routes = self.routes.read().expect("not poisoned").clone();
        let _ = writeln!(
            out,
            "# HELP crebito_pg_route_reloads_total Times the client-to-worker routes were (re)loaded from Citus's metadata.\n\
             # TYPE crebito_pg_route_reloads_total counter\n\
             crebito_pg_route_reloads_total {}\n\
             # HELP crebito_pg_shard_moved_total Requests a worker refused because their shard had moved away, re-sent through the coordinator.\n\
             # TYPE crebito_pg_shard_moved_total counter\n\
             crebito_pg_shard_moved_total {}\n\
             # HELP crebito_pg_routed_clients Clients whose requests go straight to this Citus node.\n\
             # TYPE crebito_pg_routed_clients gauge",
            self.reloads.load(Ordering::Relaxed),
            self.moved.load(Ordering::Relaxed)
        );
        let mut names: Vec<&String> = routes.nodes.keys().collect();
        names.sort();
        for name in names {
            let node = &routes.nodes[name];
            let n = routes
                .clients
                .values()
                .filter(|(c, _)| Arc::ptr_eq(c, node))
                .count();
            let _ = writeln!(out, "crebito_pg_routed_clients{{node=\"{name}\"}} {n}");
        }
    }

    /// Reads where every client lives and swaps the routes in, reusing the connections of
    /// workers already known and opening the others. Without a live coordinator connection
    /// nothing changes (the next poll tries again).
    async fn reload(&self) -> Result<(), tokio_postgres::Error> {
        let Ok((_, lane)) = self.coordinator.lane() else {
            self.stale.store(true, Ordering::Relaxed);
            return Ok(());
        };
        let version = placement_version(&lane.conn).await?;
        let rows = lane.conn.query_text(CLIENT_NODES, &[]).await?;
        let current = self.routes.read().expect("not poisoned").clone();
        let mut nodes = current.nodes.clone();
        let mut clients = HashMap::with_capacity(rows.len());
        let mut shards: HashMap<i64, Arc<Shard>> = HashMap::new();
        for row in &rows {
            let (id, host, port): (i32, String, i32) = (row.get(0), row.get(1), row.get(2));
            let name = format!("{host}:{port}");
            if !nodes.contains_key(&name) {
                let node = self.open_worker(&name, &host, port).await;
                nodes.insert(name.clone(), node);
            }
            let shard_id: i64 = row.get(3);
            let shard = shards
                .entry(shard_id)
                .or_insert_with(|| {
                    Arc::new(Shard::new(shard_id, [row.get(4), row.get(5), row.get(6)]))
                })
                .clone();
            clients.insert(id, (nodes[&name].clone(), shard));
        }
        tracing::info!(
            clients = clients.len(),
            nodes = nodes.len(),
            "citus routes loaded"
        );
        *self.routes.write().expect("not poisoned") = Arc::new(Routes {
            version,
            clients,
            nodes,
        });
        self.reloads.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Whether the placements changed since the routes were loaded (asked of the
    /// coordinator; without a live connection to it, no).
    async fn moved(&self) -> Result<bool, tokio_postgres::Error> {
        let Ok((_, lane)) = self.coordinator.lane() else {
            return Ok(false);
        };
        let version = placement_version(&lane.conn).await?;
        Ok(version != self.routes.read().expect("not poisoned").version)
    }

    /// A worker's node: the coordinator's connection settings (user, database, session
    /// options such as the search_path) at the worker's address.
    async fn open_worker(&self, name: &str, host: &str, port: i32) -> Arc<Node> {
        let mut config = Config::new();
        if let Some(user) = self.base.get_user() {
            config.user(user);
        }
        if let Some(password) = self.base.get_password() {
            config.password(password);
        }
        if let Some(db) = self.base.get_dbname() {
            config.dbname(db);
        }
        if let Some(options) = self.base.get_options() {
            config.options(options);
        }
        if let Some(app) = self.base.get_application_name() {
            config.application_name(app);
        }
        config.host(host).port(u16::try_from(port).unwrap_or(5432));
        let first = connect_raw(&config).await;
        let opened = match first {
            Ok(client) => {
                Node::open(
                    name.to_string(),
                    config.clone(),
                    self.options,
                    Role::Worker,
                    client,
                )
                .await
            }
            Err(e) => Err(e),
        };
        opened.unwrap_or_else(|e| {
            tracing::warn!(node = name, error = %e, "citus worker not reachable yet; connecting in the background");
            Node::connecting(name.to_string(), config, self.options, Role::Worker)
        })
    }
}

/// The fingerprint of Citus's placements and nodes (placement_version.sql: one row).
async fn placement_version(conn: &Conn) -> Result<String, tokio_postgres::Error> {
    let rows = conn.query_text(PLACEMENT_VERSION, &[]).await?;
    Ok(rows.first().map(|r| r.get(0)).unwrap_or_default())
}

/// Every [`POLL`], reloads the routes if the placements changed or the coordinator found a
/// client they do not know; ends with the ledger.
async fn keep_current(router: Weak<Router>) {
    loop {
        tokio::time::sleep(POLL).await;
        let Some(r) = router.upgrade() else { return };
        let check = async {
            if r.stale.swap(false, Ordering::Relaxed) || r.moved().await? {
                r.reload().await?;
            }
            Ok::<_, tokio_postgres::Error>(())
        };
        match tokio::time::timeout(CHECK_TIMEOUT, check).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "checking the citus routes failed"),
            Err(_) => tracing::warn!("checking the citus routes timed out"),
        }
    }
}
