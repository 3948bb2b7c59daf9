//! `/admin/revocations`: revoke, list and reinstate, under the admin Bearer credential.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::outcome::{header_str, respond};
use crate::admin::{self, AdminError, RevokeRequest};
use crate::audit::AuditEvent;
use crate::service::Sts;

fn authorize(sts: &Sts, headers: &HeaderMap) -> Result<(), AdminError> {
    admin::authorize(sts, header_str(headers, header::AUTHORIZATION.as_str()))
}

/// `POST /admin/revocations`.
#[tracing::instrument(name = "admin_revoke", skip_all)]
pub async fn create(State(sts): State<Arc<Sts>>, headers: HeaderMap, body: Bytes) -> Response {
    let now = sts.clock.now();
    let mut audit = AuditEvent::new("admin_revoke", now);
    let result = async {
        authorize(&sts, &headers)?;
        let request: RevokeRequest = serde_json::from_slice(&body)
            .map_err(|e| AdminError::BadRequest(format!("body must be JSON with kind, value and reason: {e}")))?;
        let entry = admin::revoke(&sts, request, now, &mut audit).await?;
        Ok::<_, AdminError>((StatusCode::CREATED, Json(entry)).into_response())
    }
    .await;
    respond(&sts, audit, result)
}

/// `GET /admin/revocations`.
pub async fn list(State(sts): State<Arc<Sts>>, headers: HeaderMap) -> Response {
    let now = sts.clock.now();
    let audit = AuditEvent::new("admin_list", now);
    let result = async {
        authorize(&sts, &headers)?;
        let entries = admin::list(&sts, now).await?;
        Ok::<_, AdminError>(Json(json!({ "revocations": entries })).into_response())
    }
    .await;
    respond(&sts, audit, result)
}

/// `DELETE /admin/revocations/{kind}/{value}`.
#[tracing::instrument(name = "admin_reinstate", skip_all)]
pub async fn reinstate(
    State(sts): State<Arc<Sts>>,
    headers: HeaderMap,
    Path((kind, value)): Path<(String, String)>,
) -> Response {
    let now = sts.clock.now();
    let mut audit = AuditEvent::new("admin_reinstate", now);
    let result = async {
        authorize(&sts, &headers)?;
        let key = admin::parse_key(&kind, &value)?;
        admin::reinstate(&sts, &key, &mut audit).await?;
        Ok::<_, AdminError>(Json(json!({ "reinstated": { "kind": key.kind, "value": key.value } })).into_response())
    }
    .await;
    respond(&sts, audit, result)
}
