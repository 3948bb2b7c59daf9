//! The token endpoint's form body: parsing and the repeated-parameter rule, the typed
//! `/token` and `/introspect`/`/revoke` requests built from it (with and without Basic
//! credentials), and the readers that take values straight from it (scope, traceparent,
//! resource, identifiers, the admin API's kind and value).

#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_sts::request::{Form, RawRequest, TokenQuery, TokenRequest};

const NAMES: [&str; 16] = [
    "grant_type",
    "subject_token",
    "subject_token_type",
    "actor_token",
    "actor_token_type",
    "audience",
    "resource",
    "scope",
    "requested_token_type",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "token",
    "kind",
    "value",
];

fuzz_target!(|data: &[u8]| {
    let form = Form::parse(data);
    let _ = form.refuse_repeats();
    for name in NAMES {
        if let Some(value) = form.get(name) {
            let _ = mcp_sts_contract::Identifier::parse(value);
        }
    }
    let _ = mcp_sts::policy::parse_scope(form.get("scope"));
    if let Some(resource) = form.get("resource") {
        let _ = mcp_sts::config::check_resource_uri(resource);
    }
    if let (Some(kind), Some(value)) = (form.get("kind"), form.get("value")) {
        let _ = mcp_sts::admin::parse_key(kind, value);
    }
    let text = std::str::from_utf8(data).ok();
    let _ = mcp_sts::request::trace_id(text);

    // The whole request, once without credentials and once with the first line of the
    // input as the Authorization header.
    let authorization = text.and_then(|t| t.lines().next());
    for authorization in [None, authorization] {
        let raw = RawRequest {
            content_type: Some("application/x-www-form-urlencoded"),
            authorization,
            traceparent: text,
            body: data,
        };
        let _ = TokenRequest::parse(raw);
        let _ = TokenQuery::parse(raw);
    }
});
