//! The one-command demo, run in-process: every step of the story over the real
//! protocols (MCP over streamable HTTP, RFC 8693 exchange, JWKS, Shared Signals, admin API).

use mcp_sts::demo::story::{self, Narrator};
use mcp_sts::demo::{Demo, DemoOutcome, Denial};

async fn play() -> DemoOutcome {
    let demo = Demo::start().await.expect("demo starts");
    story::play(&demo, Narrator::quiet()).await.expect("story plays")
}

fn denial<'a>(outcome: &'a DemoOutcome, step: &str) -> &'a Denial {
    let call = outcome.call(step).unwrap_or_else(|| panic!("no step {step}"));
    call.denied().unwrap_or_else(|| panic!("{step} was allowed: {call:?}"))
}

fn allowed<'a>(outcome: &'a DemoOutcome, step: &str) -> &'a serde_json::Value {
    let call = outcome.call(step).unwrap_or_else(|| panic!("no step {step}"));
    call.allowed().unwrap_or_else(|| panic!("{step} was denied: {call:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_story_plays_out_over_the_real_protocols() {
    let outcome = play().await;

    // alice (developer) reads her own order, not bob's.
    let order = allowed(&outcome, "alice_reads_own_order");
    assert_eq!(order["id"], 42);
    assert_eq!(order["owner"], "alice@example.com");
    let refused = denial(&outcome, "alice_reads_bobs_order");
    assert_eq!(
        (refused.by.as_str(), refused.status, refused.code.as_str()),
        ("orders-api", 404, "order_not_found")
    );

    // The audit line names the user, the agent and the MCP server (the agent comes from
    // the client_id of the agent's token, through the issuer's agent_claim).
    let read = outcome.call("alice_reads_own_order").unwrap();
    assert_eq!(read.trail.len(), 1);
    assert_eq!(
        read.trail[0].line,
        "alice@example.com via agent claude-desktop (orders-mcp) read order 42"
    );
    assert_eq!(read.trail[0].mode, "on_behalf_of");

    // "For whom" comes from the verified token, not from an argument.
    let activity = allowed(&outcome, "alice_recent_activity");
    assert_eq!(activity["user"], "alice@example.com");
    assert_eq!(activity["agent"], "claude-desktop");
    assert_eq!(activity["client_id"], "orders-mcp");

    // bob (order-admin) reads any order and updates one.
    assert_eq!(
        allowed(&outcome, "bob_reads_alices_order")["owner"],
        "alice@example.com"
    );
    let updated = allowed(&outcome, "bob_updates_order");
    assert_eq!(
        (updated["id"].as_u64(), updated["status"].as_str()),
        (Some(42), Some("shipped"))
    );

    // carol reads her own order but may change nothing.
    assert_eq!(allowed(&outcome, "carol_reads_own_order")["owner"], "carol@example.com");
    let refused = denial(&outcome, "carol_update_denied");
    assert_eq!(
        (refused.by.as_str(), refused.status, refused.code.as_str()),
        ("orders-api", 403, "insufficient_scope")
    );

    // Offboarded mid-session: the revocation reaches the orders API as a Shared Signals
    // event, and her already-minted token is refused there locally; a new exchange is
    // refused by mcp-sts.
    assert_eq!(outcome.offboarded, ["carol@example.com"]);
    assert_eq!(outcome.stream_deliveries.len(), 1, "{:?}", outcome.stream_deliveries);
    let delivery = &outcome.stream_deliveries[0];
    assert_eq!(
        (delivery.service, delivery.revoked.as_str()),
        ("orders-api", "subject:carol@example.com")
    );
    assert!(delivery.after_ms < 10_000, "{delivery:?}");
    let revoked = denial(&outcome, "carol_after_offboarding");
    assert_eq!(
        (revoked.by.as_str(), revoked.status, revoked.code.as_str()),
        ("orders-api", 401, "invalid_token")
    );
    assert!(revoked.description.contains("revoked"), "{revoked:?}");
    // No service asked mcp-sts about any token: the refusal was decided locally.
    assert!(
        !outcome.sts_audit.iter().any(|e| e["event"] == "introspect"),
        "{:?}",
        outcome.sts_audit
    );
    let refused = denial(&outcome, "carol_new_exchange_after_offboarding");
    assert_eq!(
        (refused.by.as_str(), refused.status, refused.code.as_str()),
        ("mcp-sts", 400, "invalid_request")
    );

    // All three delegation modes were used, each by the service configured for it.
    let modes: Vec<String> = outcome.modes_used().into_iter().collect();
    assert_eq!(modes, ["on_behalf_of", "restricted_user", "service_identity"]);
    let stock = outcome.call("alice_checks_stock").unwrap();
    assert_eq!(
        (stock.trail[0].service, stock.trail[0].mode.as_str()),
        ("inventory-api", "service_identity")
    );
    assert_eq!(allowed(&outcome, "alice_checks_stock")["caller"], "orders-mcp");
    assert_eq!(
        allowed(&outcome, "alice_checks_stock")["on_behalf_of"],
        "alice@example.com"
    );
    let legacy = outcome.call("alice_legacy_profile").unwrap();
    assert_eq!(
        (legacy.trail[0].service, legacy.trail[0].mode.as_str()),
        ("legacy-api", "restricted_user")
    );

    // mcp-sts audited every exchange with the MCP server acting for the agent (named
    // by the user token's client_id), and the offboarding.
    let exchanges: Vec<_> = outcome
        .sts_audit
        .iter()
        .filter(|e| e["event"] == "token_exchange" && e["decision"] == "allow")
        .collect();
    assert!(!exchanges.is_empty());
    assert!(
        exchanges
            .iter()
            .all(|e| e["actor_chain"] == serde_json::json!(["orders-mcp", "claude-desktop"])),
        "{exchanges:?}"
    );
    assert!(
        outcome
            .sts_audit
            .iter()
            .any(|e| e["event"] == "admin_revoke" && e["target"] == "subject:carol@example.com"),
        "{:?}",
        outcome.sts_audit
    );
    // No raw token in any audit event.
    let audit = serde_json::to_string(&outcome.sts_audit).unwrap();
    assert!(!audit.contains("eyJ"), "a token leaked into the audit trail");
}
