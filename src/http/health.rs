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
    let published = sts.keys.current().published(sts.clock.now()).count();
    sts.metrics.keys_published(published);
    sts.metrics.verified_tokens(sts.verified_tokens.stats());
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

/// Ready to serve: a signing key is loaded and the revocation store answers.
pub async fn readyz(State(sts): State<Arc<Sts>>) -> Response {
    let keys_ok = !sts.keys.current().signing_key(sts.clock.now()).kid.is_empty();
    let store_ok = sts.store_call(sts.store.ping()).await.is_ok();
    let status = if keys_ok && store_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    // A 503 here is the probe's answer, not a refused request.
    super::edge::answered((status, Json(json!({ "keys": keys_ok, "revocation_store": store_ok }))).into_response())
}
