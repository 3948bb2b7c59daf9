//! HTTP: routing and adapters. Handlers are thin; decisions live in the modules below.

mod admin;
pub(crate) mod connection;
mod discovery;
pub(crate) mod edge;
pub(crate) mod error;
mod health;
mod introspect;
pub(crate) mod limits;
pub(crate) mod outcome;
mod revoke;
mod ssf;
mod token;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio::net::TcpListener;

use crate::service::Sts;

/// The full router.
pub(crate) fn router(sts: Arc<Sts>) -> Router {
    let max_body = sts.config().server.max_body_bytes;
    Router::new()
        .route("/token", post(token::token))
        .route("/introspect", post(introspect::introspect))
        .route("/revoke", post(revoke::revoke))
        .route("/admin/revocations", post(admin::create).get(admin::list))
        .route(
            "/admin/revocations/{kind}/{value}",
            axum::routing::delete(admin::reinstate),
        )
        .route("/.well-known/jwks.json", get(discovery::jwks))
        .route("/.well-known/oauth-authorization-server", get(discovery::metadata))
        .route(crate::ssf::CONFIGURATION_PATH, get(ssf::configuration))
        .route(
            crate::ssf::STREAMS_PATH,
            post(ssf::create)
                .get(ssf::read)
                .patch(ssf::patch)
                .put(ssf::put)
                .delete(ssf::delete),
        )
        .route(crate::ssf::STATUS_PATH, get(ssf::status).post(ssf::set_status))
        .route(crate::ssf::VERIFY_PATH, post(ssf::request_verification))
        .route("/ssf/poll/{stream_id}", post(ssf::poll))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(sts.clone(), edge::edge))
        .with_state(sts)
}

/// Serve on a listener the caller bound (tests bind port 0) until `shutdown` resolves,
/// with the `[server]` limits on every connection (`connection`); requests still in
/// flight `shutdown_timeout_ms` after `shutdown` are abandoned.
pub async fn serve(
    listener: TcpListener,
    sts: Arc<Sts>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    connection::serve(listener, router(sts.clone()), sts, shutdown).await
}
