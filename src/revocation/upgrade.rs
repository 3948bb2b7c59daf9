//! Bringing stored revocations up to this release's rules, once per start.
//!
//! Earlier releases gave subject, agent and client revocations the retention of their
//! day as an end (and, in Redis, an expiry), so an offboarding would lapse after 30
//! days. Reads already hold such entries until reinstated; this pass also rewrites them
//! in storage, so a Redis key is no longer dropped when its old expiry comes. It runs at
//! every start (a pass that finds nothing writes nothing) and from
//! `mcp-sts store migrate`.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::{KeptOffboardings, RevocationStore, StoreError};

/// How long to wait before another pass when the store could not be rewritten (down,
/// not trusted, or a write not confirmed by a replica).
const RETRY_EVERY: Duration = Duration::from_secs(5);

/// One pass now; if the store cannot take it now, again in the background until a pass
/// succeeds (or the store is dropped).
pub(crate) async fn keep_offboardings_at_start(store: Arc<dyn RevocationStore>) {
    if pass(store.as_ref()).await.is_ok() {
        return;
    }
    let store: Weak<dyn RevocationStore> = Arc::downgrade(&store);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(RETRY_EVERY).await;
            let Some(store) = store.upgrade() else { return };
            // The first failure was logged; the store's own outage log tells the rest.
            if reported(store.keep_offboardings().await, false).is_ok() {
                return;
            }
        }
    });
}

/// One pass, logged: how many entries were kept, or why none could be.
pub async fn pass(store: &dyn RevocationStore) -> Result<KeptOffboardings, StoreError> {
    reported(store.keep_offboardings().await, true)
}

/// Log a pass's outcome; a failure at WARN only when `loud`.
fn reported(result: Result<KeptOffboardings, StoreError>, loud: bool) -> Result<KeptOffboardings, StoreError> {
    match result {
        Ok(done) => {
            tracing::info!(
                kept = done.kept,
                changed_meanwhile = done.changed_meanwhile,
                unreadable = done.unreadable,
                "offboardings written by earlier releases with an end now hold until reinstated: {} rewritten",
                done.kept
            );
            Ok(done)
        }
        Err(error) if !loud => {
            tracing::debug!(%error, "offboardings not rewritten yet; trying again");
            Err(error)
        }
        Err(error) => {
            tracing::warn!(
                %error,
                "could not yet rewrite offboardings written by earlier releases (they are read as held \
                 until reinstated meanwhile); trying again in {} s",
                RETRY_EVERY.as_secs()
            );
            Err(error)
        }
    }
}
