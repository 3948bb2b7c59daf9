//! Refusals that explain themselves: a failed client authentication names the client
//! id that was claimed (escaped and bounded) in the audit line and the operational
//! log; `invalid_scope` names the requested scopes it refused.

use crate::operations::{Serving, write_config};
use crate::support::redis_server::free_port;
use crate::support::sts::{ACCESS_TOKEN, EXCHANGE, TestSts, basic_header};

#[tokio::test]
async fn a_wrong_secret_is_audited_with_the_claimed_client_id() {
    let sts = TestSts::start().await;
    let alice = sts.user_token("alice", &["developer"]);
    let reply = sts
        .exchange_as(
            ("orders-mcp", "not-the-secret"),
            &alice,
            ACCESS_TOKEN,
            &[("audience", "orders-api")],
        )
        .await;
    reply.assert_error(401, "invalid_client");
    let event = sts.audit_events().pop().unwrap();
    assert_eq!(event["decision"], "deny");
    assert_eq!(event["reason"], "invalid_client:client.authentication");
    assert_eq!(event["client_id"], "orders-mcp");
    assert!(event.get("jti").is_none() && event.get("sub").is_none(), "{event}");
}

#[tokio::test]
async fn a_hostile_claimed_client_id_is_escaped_and_bounded() {
    let sts = TestSts::start().await;
    let alice = sts.user_token("alice", &["developer"]);
    let claimed = format!("evil\"\nid{}", "x".repeat(500));
    let reply = sts
        .exchange_as(
            (&claimed, "whatever"),
            &alice,
            ACCESS_TOKEN,
            &[("audience", "orders-api")],
        )
        .await;
    reply.assert_error(401, "invalid_client");
    let event = sts.audit_events().pop().unwrap();
    // The first 128 characters, the quote and the newline escaped, the cut marked.
    let expected = format!("evil\\\"\\nid{}...", "x".repeat(128 - 8));
    assert_eq!(event["client_id"], expected.as_str());
}

#[tokio::test]
async fn introspection_audits_the_claimed_client_of_a_failed_authentication() {
    let sts = TestSts::start().await;
    let reply = sts.introspect(("orders-api", "wrong"), "not-a-token").await;
    assert_eq!(reply.status, 401, "{}", reply.text);
    let event = sts.audit_events().pop().unwrap();
    assert_eq!(event["client_id"], "orders-api");
    assert_eq!(event["reason"], "invalid_client:client.authentication");
}

#[tokio::test]
async fn invalid_scope_names_the_refused_requested_scopes() {
    let sts = TestSts::start().await;
    let alice = sts.user_token("alice", &["developer"]);
    let reply = sts
        .exchange(
            &alice,
            &[
                ("audience", "orders-api"),
                ("scope", "orders:read orders:admin unknown:scope"),
            ],
        )
        .await;
    reply.assert_error(400, "invalid_scope");
    assert_eq!(
        reply.body["error_description"],
        "requested scope refused: not entitled to orders:admin; unknown to the audience unknown:scope"
    );
    let event = sts.audit_events().pop().unwrap();
    assert_eq!(event["reason"], "invalid_scope:scope.exceeds_grantable");
    assert_eq!(event["refused_scope"], "orders:admin unknown:scope");
    assert_eq!(event["client_id"], "orders-mcp");
    assert_eq!(event["sub"], "alice");
    assert!(event.get("jti").is_none(), "nothing minted: {event}");
}

#[tokio::test]
async fn the_operational_log_names_a_failed_client_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port, "backend = \"memory\"");
    let serving = Serving::start(&config, port, &["--log-format", "json"]);
    serving.line_with("mcp-sts listening");
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", EXCHANGE),
            ("subject_token", "a.b.c"),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", "orders-api"),
        ])
        .finish();
    let response = reqwest::Client::new()
        .post(format!("{}/token", serving.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", basic_header("orders-mcp\u{1b}[31m", "wrong"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let line: serde_json::Value = serde_json::from_str(&serving.line_with("client authentication failed")).unwrap();
    assert_eq!(line["level"], "WARN");
    assert_eq!(line["fields"]["client_id"], "orders-mcp\\u{1b}[31m");
    assert_eq!(line["fields"]["rule"], "client.authentication");
}
