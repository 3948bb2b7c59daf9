//! The one-command demo, run in-process: every step of the story over the real
//! protocols (MCP over streamable HTTP, RFC 8693 exchange, JWKS, Shared Signals, admin API).

use mcp_sts::demo::outcome::TokenStep;
use mcp_sts::demo::story::{self, Narrator};
use mcp_sts::demo::{Demo, DemoOutcome, Denial};
use serde_json::json;

const PLANNER: &str = "spiffe://demo.example/agents/planner";

async fn play() -> DemoOutcome {
    let demo = Demo::start().await.expect("demo starts");
    story::play(&demo, Narrator::quiet()).await.expect("story plays")
}

fn denial<'a>(outcome: &'a DemoOutcome, step: &str) -> &'a Denial {
    let call = outcome.call(step).unwrap_or_else(|| panic!("no step {step}"));
    call.denied().unwrap_or_else(|| panic!("{step} was allowed: {call:?}"))
}

fn token_step<'a>(outcome: &'a DemoOutcome, step: &str) -> &'a TokenStep {
    outcome
        .token_step(step)
        .unwrap_or_else(|| panic!("no token step {step}"))
}

/// The agent's token request of `step` was refused by mcp-sts with this status and code.
#[track_caller]
fn assert_token_refused(outcome: &DemoOutcome, step: &str, status: u16, code: &str) {
    let request = token_step(outcome, step);
    let refused = request
        .denied()
        .unwrap_or_else(|| panic!("{step} was granted: {request:?}"));
    assert_eq!(
        (refused.by.as_str(), refused.status, refused.code.as_str()),
        ("mcp-sts", status, code),
        "{step}: {refused:?}"
    );
}

fn granted<'a>(outcome: &'a DemoOutcome, step: &str) -> &'a serde_json::Value {
    let request = token_step(outcome, step);
    request
        .allowed()
        .unwrap_or_else(|| panic!("{step} was refused: {request:?}"))
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

    // A token the MCP server holds is bound to its DPoP key: copied and replayed as a
    // bearer token, the orders API refuses it.
    let copied = denial(&outcome, "copied_token_refused");
    assert_eq!(
        (copied.by.as_str(), copied.status, copied.code.as_str()),
        ("orders-api", 401, "invalid_token")
    );
    assert!(copied.description.contains("bound to a key"), "{copied:?}");

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

    // Offboarded mid-session: the revocation reaches the orders API and the MCP server
    // as Shared Signals events. The MCP server refuses her next tool call itself; the
    // orders-api token minted for her before is refused by the orders API locally; a
    // new exchange is refused by mcp-sts.
    assert_eq!(outcome.offboarded[0], "carol@example.com");
    let delivered: Vec<(&str, &str)> = outcome
        .stream_deliveries
        .iter()
        .map(|d| (d.service, d.revoked.as_str()))
        .collect();
    assert_eq!(
        delivered,
        [
            ("orders-api", "subject:carol@example.com"),
            ("orders-mcp", "subject:carol@example.com")
        ]
    );
    assert!(
        outcome.stream_deliveries.iter().all(|d| d.after_ms < 10_000),
        "{:?}",
        outcome.stream_deliveries
    );
    let revoked = denial(&outcome, "carol_after_offboarding");
    assert_eq!(
        (revoked.by.as_str(), revoked.status, revoked.code.as_str()),
        ("orders-mcp", 401, "invalid_token")
    );
    assert!(revoked.description.contains("revoked"), "{revoked:?}");
    assert!(outcome.call("carol_after_offboarding").unwrap().trail.is_empty());
    let revoked = denial(&outcome, "carol_held_token_after_offboarding");
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
    let (by_workload, by_claude): (Vec<&&serde_json::Value>, Vec<_>) = exchanges
        .iter()
        .partition(|e| e["actor_chain"] == serde_json::json!([PLANNER]));
    assert_eq!(by_workload.len(), 1, "{exchanges:?}");
    assert!(
        by_claude
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
    assert_workload_agent_story(&outcome);
    // No raw token in any audit event.
    let audit = serde_json::to_string(&outcome.sts_audit).unwrap();
    assert!(!audit.contains("eyJ"), "a token leaked into the audit trail");
}

/// The workload agent: a JWT-SVID from the demo's own trust domain acts for alice; the
/// orders API and mcp-sts's audit name its SPIFFE ID; revoked by that ID, its earlier
/// token is refused downstream and a new exchange at mcp-sts.
#[track_caller]
fn assert_workload_agent_story(outcome: &DemoOutcome) {
    let read = allowed(outcome, "workload_agent_reads_order");
    assert_eq!(
        (read["id"].clone(), read["owner"].clone()),
        (json!(42), json!("alice@example.com"))
    );
    let call = outcome.call("workload_agent_reads_order").unwrap();
    assert_eq!(call.trail.len(), 1, "{:?}", call.trail);
    assert_eq!(
        call.trail[0].line,
        format!("alice@example.com via agent {PLANNER} (orders-mcp) read order 42")
    );
    let allowed_exchange = outcome
        .sts_audit
        .iter()
        .find(|e| e["event"] == "token_exchange" && e["actor_chain"] == json!([PLANNER]) && e["decision"] == "allow")
        .expect("mcp-sts audited the workload agent's exchange");
    assert_eq!(
        (&allowed_exchange["sub"], &allowed_exchange["client_id"]),
        (&json!("alice@example.com"), &json!("orders-mcp"))
    );
    assert!(
        outcome
            .sts_audit
            .iter()
            .any(|e| e["event"] == "admin_revoke" && e["target"] == format!("agent:{PLANNER}")),
        "{:?}",
        outcome.sts_audit
    );
    let held = denial(outcome, "workload_agent_token_after_revocation");
    assert_eq!(
        (held.by.as_str(), held.status, held.code.as_str()),
        ("orders-api", 401, "invalid_token")
    );
    let fresh = denial(outcome, "workload_agent_refused_after_revocation");
    assert_eq!(
        (fresh.by.as_str(), fresh.status, fresh.code.as_str()),
        ("mcp-sts", 400, "invalid_request")
    );
    assert!(
        outcome.sts_audit.iter().any(|e| e["event"] == "token_exchange"
            && e["actor_chain"] == json!([PLANNER])
            && e["reason"] == "invalid_request:revoked.agent"),
        "{:?}",
        outcome.sts_audit
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enterprise_managed_authorization_plays_out_and_offboarding_stops_it() {
    let demo = Demo::start().await.expect("demo starts");
    let outcome = story::play(&demo, Narrator::quiet()).await.expect("story plays");
    let (sts, mcp) = (demo.urls.sts.as_str(), demo.urls.mcp.as_str());

    // The agent traded alice's ID token for an ID-JAG addressed to the MCP server's
    // authorization server (mcp-sts), for the MCP server, naming alice and the agent.
    let grant = granted(&outcome, "alice_gets_grant");
    assert_eq!(token_step(&outcome, "alice_gets_grant").grant_type, "token-exchange");
    assert_eq!(grant["issued_token_type"], "urn:ietf:params:oauth:token-type:id-jag");
    assert_eq!(grant["token_type"], "N_A");
    assert_eq!(grant["scope"], "orders:read");
    assert_eq!(grant["header"]["typ"], "oauth-id-jag+jwt");
    let claims = &grant["claims"];
    assert_eq!(
        (&claims["iss"], &claims["sub"], &claims["aud"]),
        (&json!(sts), &json!("alice@example.com"), &json!(sts))
    );
    assert_eq!(
        (&claims["client_id"], &claims["resource"], &claims["scope"]),
        (&json!("claude-desktop"), &json!(mcp), &json!("orders:read"))
    );
    assert!(
        claims["sid"].as_str().is_some_and(|s| s.starts_with("sso-")),
        "{claims}"
    );

    // Redeemed at mcp-sts (jwt-bearer): an access token to the MCP server for alice,
    // with the agent acting; presenting the same grant again is refused.
    let access = granted(&outcome, "alice_redeems_grant");
    assert_eq!(token_step(&outcome, "alice_redeems_grant").grant_type, "jwt-bearer");
    assert_eq!(
        (&access["token_type"], &access["header"]["typ"]),
        (&json!("Bearer"), &json!("at+jwt"))
    );
    let claims = &access["claims"];
    assert_eq!(
        (&claims["sub"], &claims["aud"], &claims["client_id"]),
        (&json!("alice@example.com"), &json!(mcp), &json!("claude-desktop"))
    );
    assert_eq!(
        claims["act"],
        json!({"sub": "claude-desktop", "sub_profile": "ai_agent"})
    );
    assert_eq!(claims["scope"], "orders:read");
    assert_eq!(claims["sid"], grant["claims"]["sid"]);
    assert_token_refused(&outcome, "alice_replays_grant", 400, "invalid_grant");

    // With that token the tool ran, and its downstream call carried alice and the agent
    // (the MCP server exchanged the redeemed token as itself).
    let read = allowed(&outcome, "alice_grant_reads_order");
    assert_eq!(
        (read["id"].as_u64(), read["owner"].as_str()),
        (Some(42), Some("alice@example.com"))
    );
    let call = outcome.call("alice_grant_reads_order").unwrap();
    assert_eq!(call.trail.len(), 1, "{:?}", call.trail);
    assert_eq!(
        (
            call.trail[0].service,
            call.trail[0].user.as_str(),
            call.trail[0].mode.as_str()
        ),
        ("orders-api", "alice@example.com", "on_behalf_of")
    );
    assert_eq!(
        call.trail[0].line,
        "alice@example.com via agent claude-desktop (orders-mcp) read order 42"
    );
    granted(&outcome, "alice_gets_second_grant");

    // Offboarded: the MCP server refuses the token mcp-sts minted for her itself, and
    // an exchange of it, a new grant and the redemption of the grant the agent kept
    // are refused by mcp-sts, each with its protocol's code.
    assert_eq!(outcome.offboarded, ["carol@example.com", "alice@example.com"]);
    let revoked = denial(&outcome, "alice_grant_after_offboarding");
    assert_eq!(
        (revoked.by.as_str(), revoked.status, revoked.code.as_str()),
        ("orders-mcp", 401, "invalid_token")
    );
    assert!(revoked.description.contains("revoked"), "{revoked:?}");
    let refused = denial(&outcome, "alice_grant_exchange_after_offboarding");
    assert_eq!(
        (refused.by.as_str(), refused.status, refused.code.as_str()),
        ("mcp-sts", 400, "invalid_request")
    );
    for step in [
        "alice_grant_after_offboarding",
        "alice_grant_exchange_after_offboarding",
    ] {
        assert!(outcome.call(step).unwrap().trail.is_empty(), "{step}");
    }
    assert_token_refused(
        &outcome,
        "alice_grant_after_offboarding_refused",
        400,
        "invalid_request",
    );
    assert_token_refused(
        &outcome,
        "alice_redemption_after_offboarding_refused",
        400,
        "invalid_grant",
    );

    // mcp-sts's audit: who asked, for whom, and which rule refused.
    let events = |event: &str, decision: &str| -> Vec<&serde_json::Value> {
        outcome
            .sts_audit
            .iter()
            .filter(|e| e["event"] == event && e["decision"] == decision && e["sub"] == "alice@example.com")
            .collect()
    };
    let issued = events("id_jag_issue", "allow");
    assert_eq!(issued.len(), 2, "{issued:?}");
    assert!(
        issued
            .iter()
            .all(|e| e["client_id"] == "claude-desktop" && e["audience"] == sts)
    );
    let redeemed = events("id_jag_redeem", "allow");
    assert_eq!(redeemed.len(), 1, "{redeemed:?}");
    assert_eq!(redeemed[0]["actor_chain"], json!(["claude-desktop"]));
    let reasons = |event: &str| -> Vec<String> {
        events(event, "deny")
            .iter()
            .map(|e| e["reason"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(reasons("id_jag_issue"), ["invalid_request:revoked.subject"]);
    let exchanges = events("token_exchange", "deny");
    let exchange = exchanges.last().expect("the refused exchange is audited");
    assert_eq!(
        (&exchange["client_id"], &exchange["reason"], &exchange["actor_chain"]),
        (
            &json!("orders-mcp"),
            &json!("invalid_request:revoked.subject"),
            &json!(["orders-mcp", "claude-desktop"])
        )
    );
    assert_eq!(
        reasons("id_jag_redeem"),
        ["invalid_grant:assertion.replay", "invalid_grant:revoked.subject"]
    );
    let audit = serde_json::to_string(&outcome.sts_audit).unwrap();
    assert!(!audit.contains("eyJ"), "a token leaked into the audit trail");
}
