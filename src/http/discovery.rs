//! `GET /.well-known/jwks.json` and `GET /.well-known/oauth-authorization-server`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::service::Sts;
use mcp_sts_contract::urn::{ID_JAG_GRANT_PROFILE, ID_JAG_TOKEN_TYPE, JWT_BEARER_GRANT, TOKEN_EXCHANGE_GRANT};

/// The public keys that can still have live tokens.
pub(crate) async fn jwks(State(sts): State<Arc<Sts>>) -> Response {
    let now = sts.clock().now();
    let mut response = Json(sts.keys().current().jwks(now)).into_response();
    // Short: verifiers also refetch on an unknown kid, so rotation stays seamless.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
    response
}

/// RFC 8414 authorization server metadata.
pub(crate) async fn metadata(State(sts): State<Arc<Sts>>) -> Response {
    let issuer = sts.issuer();
    let auth_methods = ["client_secret_basic", "client_secret_post", "private_key_jwt"];
    let signing_algs: Vec<&str> = mcp_sts_contract::jose::algorithm::asymmetric_names().collect();
    let mut metadata = json!({
        "issuer": issuer,
        "token_endpoint": sts.token_endpoint(),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "grant_types_supported": [TOKEN_EXCHANGE_GRANT, JWT_BEARER_GRANT],
        // draft-ietf-oauth-identity-assertion-authz-grant §7.2: we redeem ID-JAGs
        // (which issuers are trusted is policy, never disclosed here).
        "authorization_grant_profiles_supported": [ID_JAG_GRANT_PROFILE],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": signing_algs,
        "revocation_endpoint": format!("{issuer}/revoke"),
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_signing_alg_values_supported": signing_algs,
        "introspection_endpoint": format!("{issuer}/introspect"),
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_signing_alg_values_supported": signing_algs,
        "scopes_supported": sts.audiences().all_scopes(),
        // RFC 9449 §5.1: proofs are accepted with the one asymmetric list.
        "dpop_signing_alg_values_supported": signing_algs,
        // A client_id may be the URL of its metadata document ([cimd] says which hosts).
        "client_id_metadata_document_supported": true,
    });
    // §7.1: as the enterprise's token service we issue ID-JAGs, when configured to.
    if !sts.authorization_servers().is_empty()
        && let Some(map) = metadata.as_object_mut()
    {
        map.insert(
            "identity_chaining_requested_token_types_supported".into(),
            json!([ID_JAG_TOKEN_TYPE]),
        );
    }
    Json(metadata).into_response()
}
