//! Liveness and readiness.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::service::Sts;

/// The process is up.
pub(crate) async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// Prometheus text exposition.
pub(crate) async fn metrics(State(sts): State<Arc<Sts>>) -> Response {
    let now = sts.clock().now();
    let ring = sts.keys().current();
    sts.metrics().keys_published(ring.published(now).count());
    sts.metrics()
        .signing_key_age(now.saturating_sub(ring.signing_key(now).created));
    sts.metrics().verified_tokens(sts.verified_tokens().stats());
    let ready = readiness(&sts).await;
    for (issuer, stats) in sts.issuers().jwks_stats() {
        let held = ready.issuers.get(issuer).copied().flatten();
        sts.metrics().issuer_keys(issuer, stats, held);
    }
    sts.metrics().readiness(ready.ready(), ready.store);
    let body = sts.metrics().render();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// What readiness checks, as `/readyz` and `/metrics` report it.
struct Readiness {
    keys: bool,
    store: bool,
    issuers: BTreeMap<String, Option<bool>>,
}

impl Readiness {
    /// Ready to serve: a signing key is loaded, the revocation store answers, and no
    /// upstream issuer is known to be without keys.
    fn ready(&self) -> bool {
        self.keys && self.store && self.issuers.values().all(|state| *state != Some(false))
    }
}

async fn readiness(sts: &Sts) -> Readiness {
    let now = sts.clock().now();
    Readiness {
        keys: !sts.keys().current().signing_key(now).kid.is_empty(),
        store: sts.revocations().ping().await.is_ok(),
        issuers: crate::issuer_keys::availability(sts.issuers(), now),
    }
}

/// Ready to serve (see [`Readiness::ready`]); `issuers` says, per issuer, whether its
/// keys are held (`null`: not fetched yet).
pub(crate) async fn readyz(State(sts): State<Arc<Sts>>) -> Response {
    let ready = readiness(&sts).await;
    let status = if ready.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({ "keys": ready.keys, "revocation_store": ready.store, "issuers": ready.issuers });
    // A 503 here is the probe's answer, not a refused request.
    super::edge::answered((status, Json(body)).into_response())
}
