//! `POST /introspect` (RFC 7662) and `POST /revoke` (RFC 7009).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::no_store;
use super::token::{audited, form_body, header_str};
use crate::audit::AuditEvent;
use crate::client_auth::{RegisteredClient, authenticate};
use crate::error::OAuthError;
use crate::exchange::Form;
use crate::service::Sts;

async fn authenticated(
    sts: &Sts,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Form, Arc<RegisteredClient>), OAuthError> {
    let form = form_body(headers, body)?;
    form.refuse_repeats()?;
    let now = sts.clock.now();
    let authorization = header_str(headers, header::AUTHORIZATION.as_str());
    let client = authenticate(
        &sts.clients,
        authorization,
        &form,
        sts.auth_context(),
        sts.store.as_ref(),
        now,
    )
    .await?;
    Ok((form, client))
}

/// Introspect a token this service issued, for its audience or its client.
#[tracing::instrument(name = "introspect", skip_all)]
pub async fn introspect(State(sts): State<Arc<Sts>>, headers: HeaderMap, body: Bytes) -> Response {
    let now = sts.clock.now();
    let result = async {
        let (form, client) = authenticated(&sts, &headers, &body).await?;
        let token = form.require("token")?;
        crate::introspect::introspect(&sts, &client, token, now).await
    }
    .await;
    match result {
        Ok(answer) => {
            let mut response = Json(answer).into_response();
            no_store(response.headers_mut());
            response
        }
        Err(error) => error.into_response(),
    }
}

/// Revoke a token this service issued (RFC 7009); unknown tokens still get 200.
#[tracing::instrument(name = "revoke", skip_all)]
pub async fn revoke(State(sts): State<Arc<Sts>>, headers: HeaderMap, body: Bytes) -> Response {
    let now = sts.clock.now();
    let mut audit = AuditEvent::new("revoke", now);
    let result = async {
        let (form, client) = authenticated(&sts, &headers, &body).await?;
        audit.client_id = Some(client.id().to_owned());
        let token = form.require("token")?;
        crate::introspect::revoke(&sts, &client, token, now, &mut audit).await
    }
    .await;
    audited(&sts, audit, result.map(|()| StatusCode::OK.into_response()))
}
