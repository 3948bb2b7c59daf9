//! Delegation and lineage through the real router: every minted token answers for
//! everything it came from at every door, chains keep their depth whatever the mode,
//! identifiers follow one rule, and the agent named in a user's token joins the chain.

use crate::support::sts::{ACCESS_TOKEN, JWT, ORDERS_API_SECRET, Options, Reply, TestSts};
use serde_json::{Value, json};

const GATEWAY: (&str, &str) = ("gateway", "gateway-secret");
const LEGACY_ORDERS: (&str, &str) = ("legacy-orders", "legacy-orders-secret");
const OPS_ORDERS: (&str, &str) = ("ops-orders", "ops-orders-secret");
const INVENTORY: (&str, &str) = ("inventory-api", "inventory-secret");
const ORDERS_API: (&str, &str) = ("orders-api", ORDERS_API_SECRET);
const BILLING: (&str, &str) = ("billing-api", crate::support::sts::BILLING_API_SECRET);
const LEDGER: (&str, &str) = ("ledger-api", crate::support::sts::LEDGER_API_SECRET);

/// Clients and audiences beyond the shared test configuration: a restricted_user and
/// a service_identity audience whose services exchange further.
fn extras() -> String {
    let sha = mcp_sts::client_auth::hash_secret;
    format!(
        r#"
[[clients]]
client_id = "gateway"
secret_sha256 = "{gateway}"
audiences = ["legacy-orders", "ops-orders"]

[[clients]]
client_id = "legacy-orders"
secret_sha256 = "{legacy}"
audiences = ["billing-api"]

[[clients]]
client_id = "ops-orders"
secret_sha256 = "{ops}"
audiences = ["billing-api", "ops-orders"]

[[clients]]
client_id = "inventory-api"
secret_sha256 = "{inventory}"
audiences = ["inventory-api"]

[[audiences]]
id = "legacy-orders"
mode = "restricted_user"
scopes = ["orders:read"]
[audiences.role_scopes]
developer = ["orders:read"]
"Finance Admin" = ["orders:read"]

[[audiences]]
id = "ops-orders"
mode = "service_identity"
scopes = ["orders:read"]
"#,
        gateway = sha(GATEWAY.1),
        legacy = sha(LEGACY_ORDERS.1),
        ops = sha(OPS_ORDERS.1),
        inventory = sha(INVENTORY.1),
    )
}

async fn start() -> TestSts {
    start_with_issuer("").await
}

async fn start_with_issuer(issuer_extra: &str) -> TestSts {
    TestSts::start_opts(Options {
        extra_clients: extras(),
        admin: true,
        issuer_extra: issuer_extra.to_owned(),
        ..Options::default()
    })
    .await
}

/// An exchange by `client` of `subject` (minted tokens are access tokens) for `audience`.
async fn hop(sts: &TestSts, client: (&str, &str), subject: &str, audience: &str, extra: &[(&str, &str)]) -> Reply {
    let mut params = vec![("audience", audience)];
    params.extend_from_slice(extra);
    sts.exchange_as(client, subject, ACCESS_TOKEN, &params).await
}

fn rule_of_last_denial(sts: &TestSts) -> String {
    sts.audit_events()
        .iter()
        .rev()
        .find(|e| e["decision"] == "deny")
        .and_then(|e| e["reason"].as_str().map(String::from))
        .unwrap_or_default()
}

fn allows(sts: &TestSts) -> usize {
    sts.audit_events().iter().filter(|e| e["decision"] == "allow").count()
}

#[tokio::test]
async fn a_hop_refuses_a_token_whose_client_was_revoked_and_introspection_agrees() {
    let sts = start().await;
    let alice = sts.user_token("alice@example.com", &["developer"]);
    let orders = sts.exchange(&alice, &[("audience", "orders-api")]).await.token();
    hop(&sts, ORDERS_API, &orders, "billing-api", &[]).await.claims();

    sts.admin_revoke("client", "orders-mcp").await;
    let before = allows(&sts);
    let reply = hop(&sts, ORDERS_API, &orders, "billing-api", &[]).await;
    reply.assert_error(400, "invalid_request");
    assert_eq!(rule_of_last_denial(&sts), "invalid_request:revoked.client");
    assert_eq!(allows(&sts), before, "nothing minted");
    let introspected = sts.introspect(ORDERS_API, &orders).await;
    assert_eq!(introspected.body, json!({"active": false}));
}

#[tokio::test]
async fn a_hop_refuses_a_service_identity_token_whose_agent_was_revoked() {
    let sts = start().await;
    let alice = sts.user_token("alice@example.com", &["developer"]);
    let agent = sts.agent_token("cursor");
    let inventory = sts
        .exchange(
            &alice,
            &[
                ("audience", "inventory-api"),
                ("actor_token", &agent),
                ("actor_token_type", JWT),
            ],
        )
        .await;
    assert_eq!(inventory.claims()["user"]["agent"], "cursor");
    let inventory = inventory.token();
    hop(&sts, INVENTORY, &inventory, "inventory-api", &[]).await.claims();

    sts.admin_revoke("agent", "cursor").await;
    hop(&sts, INVENTORY, &inventory, "inventory-api", &[])
        .await
        .assert_error(400, "invalid_request");
    assert_eq!(rule_of_last_denial(&sts), "invalid_request:revoked.agent");
}

#[tokio::test]
async fn a_delegated_token_cannot_be_presented_as_an_actor() {
    let sts = start().await;
    let alice = sts.user_token("alice@example.com", &["developer"]);
    let bob = sts.user_token("bob@example.com", &["order-admin"]);
    let delegated = sts.exchange(&alice, &[("audience", "orders-api")]).await.token();
    let reply = hop(
        &sts,
        ORDERS_API,
        &bob,
        "billing-api",
        &[("actor_token", &delegated), ("actor_token_type", ACCESS_TOKEN)],
    )
    .await;
    reply.assert_error(400, "invalid_request");
    assert_eq!(rule_of_last_denial(&sts), "invalid_request:actor_token.delegated");
}

#[tokio::test]
async fn a_minted_actor_token_answers_for_its_whole_lineage() {
    let sts = start().await;
    let alice = sts.user_token("alice@example.com", &["developer"]);
    let bob = sts.user_token("bob@example.com", &["order-admin"]);
    // A service_identity token: orders-mcp acting as itself, carrying alice as context.
    let service = sts.exchange(&alice, &[("audience", "inventory-api")]).await;
    let sid = service.claims()["sid"].as_str().unwrap().to_owned();
    let service = service.token();
    let as_actor = [("actor_token", service.as_str()), ("actor_token_type", ACCESS_TOKEN)];
    let minted = hop(&sts, INVENTORY, &bob, "inventory-api", &as_actor).await.claims();
    assert_eq!(minted["user"]["agent"], "orders-mcp");

    sts.admin_revoke("session", &sid).await;
    hop(&sts, INVENTORY, &bob, "inventory-api", &as_actor)
        .await
        .assert_error(400, "invalid_request");
    assert_eq!(rule_of_last_denial(&sts), "invalid_request:revoked.session");
}

#[tokio::test]
async fn depth_is_counted_through_restricted_user_tokens() {
    let sts = start().await;
    let alice = sts.user_token("alice@example.com", &["developer"]);
    let legacy = hop(&sts, GATEWAY, &alice, "legacy-orders", &[]).await;
    let legacy_claims = legacy.claims();
    assert!(
        legacy_claims.get("act").is_none(),
        "restricted_user tokens name no actor"
    );
    assert_eq!(
        legacy_claims["delegation_chain"],
        json!({"sub": "gateway", "sub_profile": "service"})
    );
    let billing = hop(&sts, LEGACY_ORDERS, &legacy.token(), "billing-api", &[]).await;
    assert_eq!(
        billing.claims()["act"],
        json!({"sub": "legacy-orders", "sub_profile": "service",
               "act": {"sub": "gateway", "sub_profile": "service"}})
    );
    let ledger = hop(&sts, BILLING, &billing.token(), "ledger-api", &[]).await.token();
    // Depth 4 against a limit of 3.
    hop(&sts, LEDGER, &ledger, "archive-api", &[])
        .await
        .assert_error(400, "invalid_request");
    assert_eq!(rule_of_last_denial(&sts), "invalid_request:delegation.too_deep");
}

#[tokio::test]
async fn depth_is_counted_through_service_identity_tokens() {
    let sts = start().await;
    let alice = sts.user_token("alice@example.com", &["developer"]);
    let first = hop(&sts, GATEWAY, &alice, "ops-orders", &[]).await.token();
    let second = hop(&sts, OPS_ORDERS, &first, "ops-orders", &[]).await;
    assert_eq!(
        second.claims()["delegation_chain"],
        json!({"sub": "ops-orders", "sub_profile": "service",
               "act": {"sub": "gateway", "sub_profile": "service"}})
    );
    let billing = hop(&sts, OPS_ORDERS, &second.token(), "billing-api", &[]).await.token();
    hop(&sts, BILLING, &billing, "ledger-api", &[])
        .await
        .assert_error(400, "invalid_request");
    assert_eq!(rule_of_last_denial(&sts), "invalid_request:delegation.too_deep");
}

#[tokio::test]
async fn identifiers_the_admin_api_cannot_revoke_are_never_accepted() {
    let sts = start().await;
    let long = "a".repeat(1100);
    let cases: [(&str, &str); 4] = [
        ("1,100 bytes", long.as_str()),
        ("blank", "   "),
        ("control character", "alice\u{7}@example.com"),
        ("newline", "alice\n@example.com"),
    ];
    let mut failures = Vec::new();
    for (name, sub) in cases {
        let before = allows(&sts);
        let subject = sts.user_token(sub, &["developer"]);
        let reply = sts.exchange(&subject, &[("audience", "orders-api")]).await;
        if (reply.status, reply.error()) != (400, "invalid_request") || allows(&sts) != before {
            failures.push(format!("subject {name}: {} {}", reply.status, reply.text));
        }
        let alice = sts.user_token("alice@example.com", &["developer"]);
        let actor = sts.agent_token(sub);
        let reply = sts
            .exchange(
                &alice,
                &[
                    ("audience", "orders-api"),
                    ("actor_token", &actor),
                    ("actor_token_type", JWT),
                ],
            )
            .await;
        if (reply.status, reply.error()) != (400, "invalid_request") {
            failures.push(format!("actor {name}: {} {}", reply.status, reply.text));
        }
        let admin = sts
            .admin(
                reqwest::Method::POST,
                "",
                Some(json!({"kind": "subject", "value": sub, "reason": "test"})),
            )
            .await;
        if admin.status != 400 {
            failures.push(format!("admin {name}: {}", admin.status));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // And a value at the limit is accepted at both doors.
    let edge = format!("{}@example.com", "a".repeat(1000));
    let subject = sts.user_token(&edge, &["developer"]);
    sts.exchange(&subject, &[("audience", "orders-api")]).await.claims();
    sts.admin_revoke("subject", &edge).await;
    sts.exchange(&subject, &[("audience", "orders-api")])
        .await
        .assert_error(400, "invalid_request");
}

#[tokio::test]
async fn a_string_roles_claim_is_one_role_unless_a_delimiter_is_configured() {
    let sts = start().await;
    let finance = sts.user_token_with("fin@example.com", &[], json!({"roles": "Finance Admin"}));
    let granted = hop(&sts, GATEWAY, &finance, "legacy-orders", &[]).await.claims();
    assert_eq!(granted["scope"], "orders:read");
    // Two role names in one string are not two roles.
    let smuggled = sts.user_token_with("eve@example.com", &[], json!({"roles": "developer order-admin"}));
    sts.exchange(&smuggled, &[("audience", "orders-api")])
        .await
        .assert_error(400, "invalid_scope");

    let delimited = start_with_issuer("roles_delimiter = \" \"").await;
    let token = delimited.user_token_with("eve@example.com", &[], json!({"roles": "developer order-admin"}));
    let claims = delimited.exchange(&token, &[("audience", "orders-api")]).await.claims();
    assert_eq!(claims["scope"], "orders:read orders:write orders:admin");
}

#[tokio::test]
async fn the_agent_named_in_the_users_token_joins_the_chain() {
    let sts = start_with_issuer("agent_claim = \"client_id\"").await;
    let idp = sts.idp.issuer().to_owned();
    let alice = sts.user_token_with(
        "alice@example.com",
        &["developer"],
        json!({"client_id": "claude-desktop"}),
    );
    let claims = sts.exchange(&alice, &[("audience", "orders-api")]).await.claims();
    assert_eq!(
        claims["act"],
        json!({"sub": "orders-mcp", "sub_profile": "service",
               "act": {"sub": "claude-desktop", "iss": idp, "sub_profile": "ai_agent"}})
    );
    // An actor token still wins.
    let agent = sts.agent_token("cursor");
    let claims = sts
        .exchange(
            &alice,
            &[
                ("audience", "orders-api"),
                ("actor_token", &agent),
                ("actor_token_type", JWT),
            ],
        )
        .await
        .claims();
    assert_eq!(
        claims["act"],
        json!({"sub": "cursor", "iss": idp, "sub_profile": "ai_agent"})
    );
    // In service_identity the agent rides along as context.
    let service = sts.exchange(&alice, &[("audience", "inventory-api")]).await.claims();
    assert_eq!(service["user"]["agent"], "claude-desktop");
    // And it can be revoked like any agent.
    sts.admin_revoke("agent", "claude-desktop").await;
    sts.exchange(&alice, &[("audience", "orders-api")])
        .await
        .assert_error(400, "invalid_request");
    assert_eq!(rule_of_last_denial(&sts), "invalid_request:revoked.agent");
}

#[tokio::test]
async fn an_upstream_act_claim_is_kept_marked_with_its_issuer_and_counted() {
    let sts = start().await;
    let idp = sts.idp.issuer().to_owned();
    let alice = sts.user_token_with(
        "alice@example.com",
        &["developer"],
        json!({"act": {"sub": "upstream-gateway", "act": {"sub": "upstream-agent"}}}),
    );
    let claims: Value = sts.exchange(&alice, &[("audience", "orders-api")]).await.claims();
    assert_eq!(
        claims["act"],
        json!({"sub": "orders-mcp", "sub_profile": "service",
               "act": {"sub": "upstream-gateway", "iss": idp, "sub_profile": "ai_agent",
               "act": {"sub": "upstream-agent", "iss": idp, "sub_profile": "ai_agent"}}})
    );
    // Three actors already: one hop more is past the limit of 3.
    let orders = sts.exchange(&alice, &[("audience", "orders-api")]).await.token();
    hop(&sts, ORDERS_API, &orders, "billing-api", &[])
        .await
        .assert_error(400, "invalid_request");
    assert_eq!(rule_of_last_denial(&sts), "invalid_request:delegation.too_deep");
}

#[tokio::test]
async fn every_endpoint_is_audited_and_counted_in_one_place() {
    let sts = start().await;
    let alice = sts.user_token("alice@example.com", &["developer"]);
    let token = sts.exchange(&alice, &[("audience", "orders-api")]).await.token();
    assert_eq!(sts.introspect(ORDERS_API, &token).await.body["active"], true);
    sts.introspect(("orders-api", "wrong"), &token)
        .await
        .assert_error(401, "invalid_client");
    let revoked = sts.post_form("/revoke", Some(ORDERS_API), &[("token", &token)]).await;
    assert_eq!(revoked.status, 200);
    sts.admin_revoke("agent", "rogue").await;
    let listed = sts.admin(reqwest::Method::GET, "", None).await;
    assert_eq!(listed.status, 200);

    let events = sts.audit_events();
    let seen = |event: &str, decision: &str| events.iter().any(|e| e["event"] == event && e["decision"] == decision);
    for (event, decision) in [
        ("token_exchange", "allow"),
        ("introspect", "allow"),
        ("introspect", "deny"),
        ("revoke", "allow"),
        ("admin_revoke", "allow"),
        ("admin_list", "allow"),
    ] {
        assert!(seen(event, decision), "no {decision} event for {event}: {events:#?}");
    }
    let metrics = sts
        .http
        .get(format!("{}/metrics", sts.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"mcp_sts_decisions_total{endpoint="introspect",outcome="allow"} 1"#,
        r#"mcp_sts_decisions_total{endpoint="introspect",outcome="invalid_client"} 1"#,
        r#"mcp_sts_decisions_total{endpoint="revoke",outcome="allow"} 1"#,
        r#"mcp_sts_decisions_total{endpoint="admin_revoke",outcome="allow"} 1"#,
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
    // No token ever reaches an audit event.
    let all = serde_json::to_string(&events).unwrap();
    assert!(!all.contains(&token) && !all.contains(&alice));
}
