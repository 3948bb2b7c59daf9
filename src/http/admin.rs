//! `/admin/revocations`: revoke, list and reinstate, under the admin Bearer credential.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::outcome::{header_str, respond};
use crate::admin::{self, AdminError, RevokeRequest};
use crate::audit::AuditEvent;
use crate::service::Sts;

fn authorize(sts: &Sts, headers: &HeaderMap) -> Result<(), AdminError> {
    admin::authorize(sts.admin(), header_str(headers, header::AUTHORIZATION.as_str()))
}

/// `POST /admin/revocations`.
#[tracing::instrument(name = "admin_revoke", skip_all)]
pub(crate) async fn create(State(sts): State<Arc<Sts>>, headers: HeaderMap, body: Bytes) -> Response {
    let now = sts.clock().now();
    let mut audit = AuditEvent::new("admin_revoke", now);
    let result = async {
        authorize(&sts, &headers)?;
        let request: RevokeRequest = serde_json::from_slice(&body)
            .map_err(|_| {
                AdminError::BadRequest(
                    "body must be a JSON object with kind, value and reason (and optionally issuer, expires_in and revoked_by), nothing else".into(),
                )
            })?;
        let entry = admin::revoke(sts.admin(), request, now, &mut audit).await?;
        Ok::<_, AdminError>((StatusCode::CREATED, Json(entry)).into_response())
    }
    .await;
    respond(&sts, audit, result)
}

/// `GET /admin/revocations`.
pub(crate) async fn list(State(sts): State<Arc<Sts>>, headers: HeaderMap) -> Response {
    let now = sts.clock().now();
    let audit = AuditEvent::new("admin_list", now);
    let result = async {
        authorize(&sts, &headers)?;
        let entries = admin::list(sts.admin(), now).await?;
        Ok::<_, AdminError>(Json(json!({ "revocations": entries })).into_response())
    }
    .await;
    respond(&sts, audit, result)
}

/// `DELETE /admin/revocations/{kind}/{value}[?issuer=...]`: a user's or session's
/// revocation for that issuer, or, without one, the one for every issuer.
#[tracing::instrument(name = "admin_reinstate", skip_all)]
pub(crate) async fn reinstate(
    State(sts): State<Arc<Sts>>,
    headers: HeaderMap,
    Path((kind, value)): Path<(String, String)>,
    query: RawQuery,
) -> Response {
    let now = sts.clock().now();
    let mut audit = AuditEvent::new("admin_reinstate", now);
    let result = async {
        authorize(&sts, &headers)?;
        let issuer = issuer_param(query.0.as_deref())?;
        let key = admin::scope_key(admin::parse_key(&kind, &value)?, issuer)?;
        admin::reinstate(sts.admin(), &key, now, &mut audit).await?;
        let mut reinstated = json!({ "kind": key.kind, "value": key.value });
        if let (Some(covers), Some(map)) = (key.covers(), reinstated.as_object_mut()) {
            if let Some(issuer) = &key.issuer {
                map.insert("issuer".into(), json!(issuer));
            }
            map.insert("covers".into(), json!(covers));
        }
        Ok::<_, AdminError>(Json(json!({ "reinstated": reinstated })).into_response())
    }
    .await;
    respond(&sts, audit, result)
}

/// The one query parameter reinstatement takes, `issuer`; anything else, or it twice,
/// is refused.
fn issuer_param(query: Option<&str>) -> Result<Option<String>, AdminError> {
    let mut issuer = None;
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if name != "issuer" || issuer.is_some() {
            return Err(AdminError::BadRequest(
                "the only query parameter is issuer, once".into(),
            ));
        }
        issuer = Some(value.into_owned());
    }
    Ok(issuer)
}
