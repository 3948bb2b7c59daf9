//! Two more downstream services, one per remaining delegation mode: an internal
//! inventory API that trusts the MCP server as itself (`service_identity`, the user as
//! context) and a legacy profile API that expects a user token (`restricted_user`).

use std::sync::Arc;

use axum::extract::{FromRef, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::trail::AuditTrail;
use mcp_sts_downstream::verify::{Authenticated, Verifier};

/// Audience id of the inventory API.
pub const INVENTORY_AUDIENCE: &str = "inventory-api";
/// Audience id of the legacy profile API.
pub const LEGACY_AUDIENCE: &str = "legacy-api";

/// State of either service.
#[derive(Clone)]
pub struct ServiceState {
    verifier: Arc<Verifier>,
    trail: AuditTrail,
}

impl FromRef<ServiceState> for Arc<Verifier> {
    fn from_ref(state: &ServiceState) -> Self {
        Arc::clone(&state.verifier)
    }
}

/// The inventory API: `GET /stock/{sku}`, needs `inventory:read`.
pub fn inventory_router(verifier: Arc<Verifier>, trail: AuditTrail) -> Router {
    Router::new()
        .route("/stock/{sku}", get(stock))
        .with_state(ServiceState { verifier, trail })
}

/// The legacy API: `GET /profile`, needs `legacy:read`; answers for the token's user.
pub fn legacy_router(verifier: Arc<Verifier>, trail: AuditTrail) -> Router {
    Router::new()
        .route("/profile", get(profile))
        .with_state(ServiceState { verifier, trail })
}

async fn stock(State(state): State<ServiceState>, auth: Authenticated, Path(sku): Path<String>) -> Response {
    let identity = match auth.require_scope("inventory:read") {
        Ok(identity) => identity,
        Err(rejection) => return rejection.into_response(),
    };
    let sku: String = sku
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(32)
        .collect();
    let in_stock = sku.bytes().map(u32::from).sum::<u32>() % 17;
    state
        .trail
        .record(INVENTORY_AUDIENCE, identity, &format!("checked stock of {sku}"));
    Json(json!({
        "sku": sku,
        "in_stock": in_stock,
        "caller": identity.subject(),
        "on_behalf_of": identity.user(),
    }))
    .into_response()
}

async fn profile(State(state): State<ServiceState>, auth: Authenticated) -> Response {
    let identity = match auth.require_scope("legacy:read") {
        Ok(identity) => identity,
        Err(rejection) => return rejection.into_response(),
    };
    state
        .trail
        .record(LEGACY_AUDIENCE, identity, "read their legacy profile");
    let user = identity.user();
    let display_name: Value = user.split('@').next().map_or(Value::Null, |n| json!(n));
    Json(json!({ "user": user, "display_name": display_name, "plan": "standard" })).into_response()
}
