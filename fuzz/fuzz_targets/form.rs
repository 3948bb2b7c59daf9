//! The token endpoint's form body: parsing, the repeated-parameter rule, and the
//! readers that take values straight from it (scope, traceparent, resource, the
//! admin API's kind and value).

#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_sts::exchange::Form;

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
        let _ = form.get(name);
    }
    let _ = form.require("subject_token");
    let _ = mcp_sts::policy::parse_scope(form.get("scope"));
    if let Some(resource) = form.get("resource") {
        let _ = mcp_sts::config::check_resource_uri(resource);
    }
    if let (Some(kind), Some(value)) = (form.get("kind"), form.get("value")) {
        let _ = mcp_sts::admin::parse_key(kind, value);
    }
    let _ = mcp_sts::exchange::trace_id(std::str::from_utf8(data).ok());
});
