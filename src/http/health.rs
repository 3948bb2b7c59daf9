//! Liveness and readiness.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::service::Sts;

/// The process is up.
pub async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// Prometheus text exposition.
pub async fn metrics(State(sts): State<Arc<Sts>>) -> Response {
    let now = sts.clock.now();
    let ring = sts.keys.current();
    sts.metrics.keys_published(ring.published(now).count());
    sts.metrics
        .signing_key_age(now.saturating_sub(ring.signing_key(now).created));
    sts.metrics.verified_tokens(sts.verified_tokens.stats());
    let available = crate::issuer_keys::availability(&sts.issuers, now);
    for (issuer, stats) in sts.issuers.jwks_stats() {
        let held = available.get(issuer).copied().flatten();
        sts.metrics.issuer_keys(issuer, stats, held);
    }
    let body = sts.metrics.render();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Ready to serve: a signing key is loaded, the revocation store answers, and no
/// upstream issuer is known to be without keys. `issuers` says, per issuer, whether
/// its keys are held (`null`: not fetched yet).
pub async fn readyz(State(sts): State<Arc<Sts>>) -> Response {
    let now = sts.clock.now();
    let keys_ok = !sts.keys.current().signing_key(now).kid.is_empty();
    let store_ok = sts.store_call(sts.store.ping()).await.is_ok();
    let issuers = crate::issuer_keys::availability(&sts.issuers, now);
    let issuers_ok = issuers.values().all(|state| *state != Some(false));
    let status = if keys_ok && store_ok && issuers_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({ "keys": keys_ok, "revocation_store": store_ok, "issuers": issuers });
    // A 503 here is the probe's answer, not a refused request.
    super::edge::answered((status, Json(body)).into_response())
}
