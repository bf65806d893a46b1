//! Forgetting idempotency keys older than the retention, every `purge_every`, on the owner's
//! first connection (the only server, or the Citus coordinator); the task ends with the ledger.

use crate::store::postgres::node::Node;
use crate::store::postgres::sql::PURGE_KEYS;
use crate::store::{KeyPolicy, Purges};

/// Every `keys.purge_every`, forgets keys older than the retention; ends with the ledger.
pub(super) async fn purge_keys(
    owner: std::sync::Weak<Node>,
    keys: KeyPolicy,
    purges: std::sync::Arc<Purges>,
) {
    loop {
        tokio::time::sleep(keys.purge_every).await;
        let Some(node) = owner.upgrade() else { return };
        let lane = node.any_lane();
        drop(node);
        if let Some(lane) = lane {
            let secs = keys.retention.as_secs_f64();
            match lane.conn.query_text(PURGE_KEYS, &[&secs]).await {
                Ok(_) => {
                    purges.ran();
                    tracing::debug!("expired idempotency keys purged");
                }
                Err(e) => tracing::warn!(error = %e, "purging idempotency keys failed"),
            }
        }
    }
}
