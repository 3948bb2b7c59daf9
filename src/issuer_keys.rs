//! Upstream issuers' keys before the first token needs them: fetched at start (and
//! by `config check --online`), fetched again in the background while an issuer has
//! none, and reported per issuer to `/readyz` and `/metrics`. A mistyped or
//! unreachable IdP shows at deployment, not as a 503 on the first exchange.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::inbound::Issuers;
use crate::inbound::issuers::TrustedIssuer;
use mcp_sts_contract::clock::{Clock, UnixTime};
use mcp_sts_contract::jose::JwsError;

/// How often an issuer without keys is tried again (its cache also spaces failed
/// fetches by its own minimum interval).
const RETRY_EVERY: Duration = Duration::from_secs(10);

/// What one fetch of an issuer's keys found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The issuer's `iss`.
    pub issuer: String,
    /// The `kid`s of the usable keys (an empty string for a key without one), or why
    /// there are none.
    pub keys: Result<Vec<String>, String>,
}

/// Fetch (unless fresh keys are held) the keys of every issuer at once, in the
/// order of their names.
pub async fn fetch_all(issuers: &Issuers, now: UnixTime) -> Vec<Found> {
    let mut fetches = tokio::task::JoinSet::new();
    for iss in issuers.names() {
        if let Some(issuer) = issuers.get(iss) {
            let issuer = Arc::clone(issuer);
            fetches.spawn(async move { fetch_one(&issuer, now).await });
        }
    }
    let mut found: Vec<Found> = fetches.join_all().await;
    found.sort_by(|a, b| a.issuer.cmp(&b.issuer));
    found
}

/// Ask the issuer's cache for keys once, as a token would: it fetches, counts and
/// rate-limits exactly as it does then. One lookup only: another, for a key it
/// lacks, would spend the refetch an unknown `kid` may force.
async fn fetch_one(issuer: &TrustedIssuer, now: UnixTime) -> Found {
    let failure = match issuer.algorithms.first() {
        None => Some("no algorithm is configured".to_owned()),
        Some(alg) => match issuer.jwks.keys_for(None, *alg, now).await {
            Err(JwsError::KeysUnavailable(why)) => Some(why),
            // Keys held (perhaps none for this algorithm): listed below.
            _ => None,
        },
    };
    let kids: Vec<String> = issuer
        .jwks
        .held(now)
        .iter()
        .map(|key| key.kid.clone().unwrap_or_default())
        .collect();
    let keys = match failure {
        Some(why) => Err(why),
        None if kids.is_empty() => Err("the JWKS holds no usable key".to_owned()),
        None => Ok(kids),
    };
    Found {
        issuer: issuer.config.issuer.clone(),
        keys,
    }
}

/// Per issuer: `Some(true)` keys held, `Some(false)` fetched without success and none
/// held, `None` not fetched yet (no start-up fetch ran, as in an embedded router).
pub(crate) fn availability(issuers: &Issuers, now: UnixTime) -> BTreeMap<String, Option<bool>> {
    issuers
        .names()
        .into_iter()
        .filter_map(|iss| issuers.get(iss))
        .map(|issuer| {
            let state = if !issuer.jwks.held(now).is_empty() {
                Some(true)
            } else if issuer.jwks.stats().fetches > 0 {
                Some(false)
            } else {
                None
            };
            (issuer.config.issuer.clone(), state)
        })
        .collect()
}

/// At start: fetch every issuer's keys and log what was found.
pub(crate) async fn fetch_at_start(issuers: &Issuers, now: UnixTime) {
    for found in fetch_all(issuers, now).await {
        match &found.keys {
            Ok(kids) => tracing::info!(issuer = %found.issuer, keys = kids.len(), "issuer keys fetched"),
            Err(error) => tracing::warn!(
                issuer = %found.issuer,
                %error,
                "issuer keys unavailable: its tokens are refused (503) and /readyz answers 503 until they are fetched"
            ),
        }
    }
}

/// Try again, in the background, the issuers that hold no keys.
pub(crate) fn spawn_refresher(issuers: Arc<Issuers>, clock: Arc<dyn Clock>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(RETRY_EVERY).await;
            let now = clock.now();
            for (iss, state) in availability(&issuers, now) {
                if state == Some(true) {
                    continue;
                }
                let Some(issuer) = issuers.get(&iss) else { continue };
                if let Found { keys: Ok(kids), .. } = fetch_one(issuer, now).await {
                    tracing::info!(issuer = %iss, keys = kids.len(), "issuer keys fetched");
                }
            }
        }
    })
}
