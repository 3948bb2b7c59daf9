//! The downstream orders API: verifies mcp-sts tokens (revocations heard on mcp-sts's
//! Shared Signals stream, so an offboarding is refused locally) and filters per user. A developer or customer sees only
//! their own orders; `orders:admin` sees every order; changing one needs `orders:write`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::trail::{ApiError, AuditTrail};
use mcp_sts_downstream::verify::{Authenticated, Verifier};

/// The audience id of this service at mcp-sts.
pub const AUDIENCE: &str = "orders-api";
const SERVICE: &str = AUDIENCE;

/// One order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Order number.
    pub id: u32,
    /// The user who placed it (their `sub`).
    pub owner: String,
    /// What was ordered.
    pub item: String,
    /// Where it stands.
    pub status: String,
}

/// The service's state: its verifier, its orders, its audit trail.
#[derive(Clone)]
pub struct OrdersState {
    verifier: Arc<Verifier>,
    orders: Arc<Mutex<BTreeMap<u32, Order>>>,
    trail: AuditTrail,
}

impl FromRef<OrdersState> for Arc<Verifier> {
    fn from_ref(state: &OrdersState) -> Self {
        Arc::clone(&state.verifier)
    }
}

/// The demo's orders: 42 is alice's, 43 bob's, 77 carol's.
pub fn sample_orders() -> BTreeMap<u32, Order> {
    let order = |id, owner: &str, item: &str| Order {
        id,
        owner: owner.to_owned(),
        item: item.to_owned(),
        status: "placed".to_owned(),
    };
    BTreeMap::from([
        (42, order(42, super::users::ALICE.sub, "mechanical keyboard")),
        (43, order(43, super::users::BOB.sub, "standing desk")),
        (77, order(77, super::users::CAROL.sub, "noise-cancelling headphones")),
    ])
}

/// The router: `GET /orders/{id}`, `PATCH /orders/{id}`, `GET /activity`.
pub fn router(verifier: Arc<Verifier>, trail: AuditTrail) -> Router {
    let state = OrdersState {
        verifier,
        orders: Arc::new(Mutex::new(sample_orders())),
        trail,
    };
    Router::new()
        .route("/orders/{id}", get(get_order).patch(update_order))
        .route("/activity", get(activity))
        .with_state(state)
}

fn orders_lock(state: &OrdersState) -> Result<std::sync::MutexGuard<'_, BTreeMap<u32, Order>>, ApiError> {
    state.orders.lock().map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "order store unavailable",
        )
    })
}

/// The order, if this caller may see it. Someone else's order is answered exactly like a
/// missing one, so its existence does not leak.
fn visible(orders: &BTreeMap<u32, Order>, id: u32, user: &str, admin: bool) -> Result<Order, ApiError> {
    orders
        .get(&id)
        .filter(|o| admin || o.owner == user)
        .cloned()
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "order_not_found",
                format!("no order {id} for you"),
            )
        })
}

async fn get_order(
    State(state): State<OrdersState>,
    auth: Authenticated,
    Path(id): Path<u32>,
) -> Result<Json<Order>, axum::response::Response> {
    use axum::response::IntoResponse;
    let identity = auth.require_scope("orders:read").map_err(IntoResponse::into_response)?;
    let admin = identity.has_scope("orders:admin");
    let found = {
        let orders = orders_lock(&state).map_err(IntoResponse::into_response)?;
        visible(&orders, id, identity.user(), admin)
    };
    match found {
        Ok(order) => {
            state.trail.record(SERVICE, identity, &format!("read order {id}"));
            Ok(Json(order))
        }
        Err(error) => {
            state
                .trail
                .record(SERVICE, identity, &format!("was refused order {id} ({})", error.code));
            Err(error.into_response())
        }
    }
}

/// `PATCH /orders/{id}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    /// The new status.
    pub status: String,
}

async fn update_order(
    State(state): State<OrdersState>,
    auth: Authenticated,
    Path(id): Path<u32>,
    Json(change): Json<StatusChange>,
) -> Result<Json<Order>, axum::response::Response> {
    use axum::response::IntoResponse;
    let identity = auth
        .require_scope("orders:write")
        .map_err(IntoResponse::into_response)?;
    let admin = identity.has_scope("orders:admin");
    let updated = {
        let mut orders = orders_lock(&state).map_err(IntoResponse::into_response)?;
        visible(&orders, id, identity.user(), admin).map(|mut order| {
            order.status = change.status.clone();
            orders.insert(id, order.clone());
            order
        })
    };
    match updated {
        Ok(order) => {
            let action = format!("updated order {id} to {}", order.status);
            state.trail.record(SERVICE, identity, &action);
            Ok(Json(order))
        }
        Err(error) => {
            state
                .trail
                .record(SERVICE, identity, &format!("was refused update of order {id}"));
            Err(error.into_response())
        }
    }
}

/// The answer of `GET /activity`: for whom, taken from the verified token only.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Activity {
    /// The user the token is for.
    pub user: String,
    /// The agent application acting for them, if any.
    pub agent: Option<String>,
    /// The client that obtained the token.
    pub client_id: String,
    /// The user's recent audit lines at this service.
    pub recent: Vec<String>,
}

async fn activity(
    State(state): State<OrdersState>,
    auth: Authenticated,
) -> Result<Json<Activity>, axum::response::Response> {
    use axum::response::IntoResponse;
    let identity = auth.require_scope("orders:read").map_err(IntoResponse::into_response)?;
    let recent = state
        .trail
        .entries()
        .into_iter()
        .filter(|e| e.service == SERVICE && e.user == identity.user())
        .map(|e| e.line)
        .collect();
    state.trail.record(SERVICE, identity, "listed their recent activity");
    Ok(Json(Activity {
        user: identity.user().to_owned(),
        agent: identity.agent_application().map(str::to_owned),
        client_id: identity.client_id().to_owned(),
        recent,
    }))
}
