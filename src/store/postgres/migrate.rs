//! Setting the database up: the schema, the profile's persistence, the Citus layout and the
//! seed, under an advisory lock so that instances starting together take turns. Run at
//! start and again before a reconnected slot is used (a crashed contest-profile server
//! comes back with empty UNLOGGED tables).

use tokio_postgres::Client;

use crate::store::postgres::options::{Layout, Options, Persistence};
use crate::store::postgres::sql::{
    CITUS_DISTRIBUTE, CITUS_EXTENSION, CITUS_FUNCTIONS, MIGRATION_LOCK as LOCK,
    MIGRATION_UNLOCK as UNLOCK, PERSISTENCE, SCHEMA, SEED, SET_LOGGED, SET_UNLOGGED,
};

/// Key of the advisory lock that serialises schema changes between instances starting
/// at the same moment ("crebito" in ASCII, as a number).
const MIGRATION_KEY: i64 = 0x63_72_65_62_69_74_6f;

/// Applies the schema, the profile's persistence, the layout and the seed. Two instances
/// starting together take turns on the advisory lock; the second finds everything in place.
pub(super) async fn migrate(
    client: &Client,
    options: &Options,
) -> Result<(), tokio_postgres::Error> {
    client.execute(LOCK, &[&MIGRATION_KEY]).await?;
    let result = async {
        if options.layout == Layout::Citus {
            client.batch_execute(CITUS_EXTENSION).await?;
        }
        client.batch_execute(SCHEMA).await?;
        // Before distributing: Citus creates the shards with the tables' persistence.
        set_persistence(client, options.persistence).await?;
        if options.layout == Layout::Citus {
            client.batch_execute(CITUS_DISTRIBUTE).await?;
        }
        let extra = i32::try_from(options.seed.extra).unwrap_or(i32::MAX);
        client
            .execute(SEED, &[&extra, &options.seed.extra_limit])
            .await?;
        if options.layout == Layout::Citus {
            client.batch_execute(CITUS_FUNCTIONS).await?;
        }
        Ok(())
    }
    .await;
    client.execute(UNLOCK, &[&MIGRATION_KEY]).await?;
    result
}

async fn set_persistence(
    client: &Client,
    persistence: Persistence,
) -> Result<(), tokio_postgres::Error> {
    let wanted = match persistence {
        Persistence::Logged => "p",
        Persistence::Unlogged => "u",
    };
    let mismatched = client
        .query(PERSISTENCE, &[])
        .await?
        .iter()
        .any(|r| r.get::<_, &str>(1) != wanted);
    if mismatched {
        tracing::info!(?persistence, "setting the tables' persistence");
        client
            .batch_execute(if wanted == "u" {
                SET_UNLOGGED
            } else {
                SET_LOGGED
            })
            .await?;
    }
    Ok(())
}
