//! Forgetting idempotency keys older than the retention, every `purge_every`, on the first
//! slot's connection; the task ends with the ledger.

use super::KeyPolicy;
use super::slots::Shared;

const PURGE_KEYS: &str = include_str!("../../../sql/postgres/purge_keys.sql");

/// Every `keys.purge_every`, forgets keys older than the retention; ends with the ledger.
pub(super) async fn purge_keys(shared: std::sync::Weak<Shared>, keys: KeyPolicy) {
    loop {
        tokio::time::sleep(keys.purge_every).await;
        let Some(s) = shared.upgrade() else { return };
        let conn = s.slots[0].conn.read().expect("not poisoned").clone();
        drop(s);
        if let Some(conn) = conn {
            let secs = keys.retention.as_secs_f64();
            match conn.client.execute(PURGE_KEYS, &[&secs]).await {
                Ok(n) => tracing::debug!(purged = n, "expired idempotency keys"),
                Err(e) => tracing::warn!(error = %e, "purging idempotency keys failed"),
            }
        }
    }
}
