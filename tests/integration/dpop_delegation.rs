//! A bound token stays bound through every hop, over real HTTP: a subject or actor
//! token with `cnf.jkt` is exchanged only with a proof; a delegation to another key
//! must be named (`may_act`, the issuer's `dpop_delegates`, a minted token's audience)
//! and the earlier key is recorded on the earlier holder's `act` entry; identity
//! assertion grants carry and demand the binding.

use crate::dpop::{new_key, post_token, proof};
use crate::id_jag::{ASSISTANT, ORDERS_MCP_URL, alice_login, extras};
use crate::support::attack::Watch;
use crate::support::sts::*;
use mcp_sts::keys::SigningKey;
use serde_json::{Value, json};

const ORDERS_MCP: (&str, &str) = ("orders-mcp", ORDERS_MCP_SECRET);
const ORDERS_API: (&str, &str) = ("orders-api", ORDERS_API_SECRET);
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const ID_JAG: &str = "urn:ietf:params:oauth:token-type:id-jag";

async fn start(issuer_extra: &str) -> TestSts {
    TestSts::start_opts(Options {
        issuer_extra: format!("agent_claim = \"client_id\"\n{issuer_extra}"),
        extra_clients: format!(
            "\n[[clients]]\nclient_id = \"bearer-agent\"\nsecret_sha256 = \"{}\"\naudiences = [\"orders-api\"]\ndpop = \"off\"\n",
            mcp_sts::client_auth::hash_secret("bearer-agent-secret")
        ),
        admin: true,
        ..Options::default()
    })
    .await
}

/// Alice's upstream token, obtained by the agent `claude`, bound to `key`.
fn bound_user_token(sts: &TestSts, key: &SigningKey, extra: Value) -> String {
    let mut claims = json!({"client_id": "claude", "cnf": {"jkt": key.kid}});
    if let (Some(map), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            if v.is_null() {
                map.remove(k);
            } else {
                map.insert(k.clone(), v.clone());
            }
        }
    }
    sts.user_token_with("alice", &["developer"], claims)
}

async fn exchange(sts: &TestSts, client: (&str, &str), subject: &str, audience: &str, proofs: &[&str]) -> Reply {
    let pairs = [
        ("grant_type", EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", audience),
    ];
    post_token(sts, client, &pairs, proofs).await
}

/// A refusal with this code and rule, nothing minted or changed.
async fn refused(sts: &TestSts, reply: impl std::future::Future<Output = Reply>, code: &str, rule: &str) {
    let watch = Watch::take(sts).await;
    let reply = reply.await;
    reply.assert_error(400, code);
    watch.unchanged(sts).await.unwrap();
    // The watch's own listing is audited too: the refusal is the last other event.
    let events = sts.audit_events();
    let last = events
        .iter()
        .rev()
        .find(|e| e["event"] != "admin_list")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(last["reason"], format!("{code}:{rule}"), "{}", reply.text);
}

#[tokio::test]
async fn an_upstream_bound_subject_is_exchanged_only_with_a_proof_by_a_named_key() {
    let sts = start("").await;
    let (k1, k2) = (new_key(), new_key());
    let subject = bound_user_token(&sts, &k1, json!({}));

    // Its own key: bound to it, nothing to record.
    let reply = exchange(&sts, ORDERS_MCP, &subject, "orders-api", &[&proof(&sts, &k1, "u-1")]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["token_type"], "DPoP");
    let claims = reply.claims();
    assert_eq!(claims["cnf"]["jkt"], k1.kid);
    assert_eq!(claims["act"]["sub"], "orders-mcp");
    assert_eq!(claims["act"]["act"]["sub"], "claude");
    assert!(claims["act"]["act"].get("cnf_jkt").is_none());

    // No proof: never an unbound token from a bound subject, whatever the client.
    refused(
        &sts,
        exchange(&sts, ORDERS_MCP, &subject, "orders-api", &[]),
        "invalid_dpop_proof",
        "subject_token.bound",
    )
    .await;
    refused(
        &sts,
        exchange(
            &sts,
            ("bearer-agent", "bearer-agent-secret"),
            &subject,
            "orders-api",
            &[&proof(&sts, &k1, "u-off")],
        ),
        "invalid_dpop_proof",
        "subject_token.bound",
    )
    .await;

    // Another key, not named by may_act: refused.
    refused(
        &sts,
        exchange(&sts, ORDERS_MCP, &subject, "orders-api", &[&proof(&sts, &k2, "u-2")]),
        "invalid_request",
        "subject_token.dpop_delegation",
    )
    .await;
    // may_act naming another client: refused.
    let elsewhere = bound_user_token(&sts, &k1, json!({"may_act": {"sub": "someone-else"}}));
    refused(
        &sts,
        exchange(&sts, ORDERS_MCP, &elsewhere, "orders-api", &[&proof(&sts, &k2, "u-3")]),
        "invalid_request",
        "subject_token.dpop_delegation",
    )
    .await;

    // may_act names the caller: bound to the caller's key, the agent's key recorded.
    let delegated = bound_user_token(&sts, &k1, json!({"may_act": {"sub": "orders-mcp"}}));
    let reply = exchange(&sts, ORDERS_MCP, &delegated, "orders-api", &[&proof(&sts, &k2, "u-4")]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let claims = reply.claims();
    assert_eq!(claims["cnf"]["jkt"], k2.kid);
    assert_eq!(claims["act"]["act"]["sub"], "claude");
    assert_eq!(claims["act"]["act"]["cnf_jkt"], k1.kid);

    // Named, but no agent held it: only its own key may present it.
    let no_agent = bound_user_token(&sts, &k1, json!({"client_id": null, "may_act": {"sub": "orders-mcp"}}));
    refused(
        &sts,
        exchange(&sts, ORDERS_MCP, &no_agent, "orders-api", &[&proof(&sts, &k2, "u-5")]),
        "invalid_dpop_proof",
        "subject_token.dpop_key",
    )
    .await;

    // Bound by a certificate: cannot be proven here.
    let certificate = sts.user_token_with("alice", &["developer"], json!({"cnf": {"x5t#S256": k1.kid}}));
    refused(
        &sts,
        exchange(
            &sts,
            ORDERS_MCP,
            &certificate,
            "orders-api",
            &[&proof(&sts, &k1, "u-6")],
        ),
        "invalid_request",
        "subject_token.cnf",
    )
    .await;
}

#[tokio::test]
async fn the_issuer_may_name_the_clients_its_bound_tokens_are_delegated_to() {
    let sts = start("dpop_delegates = [\"orders-mcp\"]").await;
    let (k1, k2) = (new_key(), new_key());
    let subject = bound_user_token(&sts, &k1, json!({}));
    let reply = exchange(&sts, ORDERS_MCP, &subject, "orders-api", &[&proof(&sts, &k2, "d-1")]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.claims()["cnf"]["jkt"], k2.kid);
    assert_eq!(reply.claims()["act"]["act"]["cnf_jkt"], k1.kid);
}

#[tokio::test]
async fn a_minted_bound_token_stays_bound_at_the_next_hop() {
    let sts = start("").await;
    let (k1, k2) = (new_key(), new_key());
    let user = sts.user_token_with("alice", &["developer"], json!({"client_id": "claude"}));
    let first = exchange(&sts, ORDERS_MCP, &user, "orders-api", &[&proof(&sts, &k1, "m-1")]).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let hop = first.token();

    // The audience presents it without a proof: refused, as any bound token sent as Bearer.
    refused(
        &sts,
        exchange(&sts, ORDERS_API, &hop, "billing-api", &[]),
        "invalid_dpop_proof",
        "subject_token.bound",
    )
    .await;
    // With its own key: bound to it; the earlier holder's key is recorded on its entry.
    let reply = exchange(&sts, ORDERS_API, &hop, "billing-api", &[&proof(&sts, &k2, "m-2")]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let claims = reply.claims();
    assert_eq!(claims["cnf"]["jkt"], k2.kid);
    assert_eq!(claims["act"]["sub"], "orders-api");
    assert!(claims["act"].get("cnf_jkt").is_none());
    assert_eq!(claims["act"]["act"]["sub"], "orders-mcp");
    assert_eq!(claims["act"]["act"]["cnf_jkt"], k1.kid);
    let seen = sts
        .introspect(("billing-api", BILLING_API_SECRET), &reply.token())
        .await;
    assert_eq!(seen.body["cnf"]["jkt"], k2.kid, "{}", seen.text);
    assert_eq!(seen.body["act"]["act"]["cnf_jkt"], k1.kid);
}

#[tokio::test]
async fn a_bound_actor_token_must_be_bound_to_the_proof_key() {
    let sts = start("").await;
    let (k1, k2) = (new_key(), new_key());
    let user = sts.user_token("alice", &["developer"]);
    let actor = sts.user_token_with("claude", &[], json!({"cnf": {"jkt": k1.kid}}));
    let with_actor = |proofs: Vec<String>| {
        let (user, actor) = (user.clone(), actor.clone());
        let sts = &sts;
        async move {
            let pairs = [
                ("grant_type", EXCHANGE),
                ("subject_token", user.as_str()),
                ("subject_token_type", ACCESS_TOKEN),
                ("actor_token", actor.as_str()),
                ("actor_token_type", ACCESS_TOKEN),
                ("audience", "orders-api"),
            ];
            let refs: Vec<&str> = proofs.iter().map(String::as_str).collect();
            post_token(sts, ORDERS_MCP, &pairs, &refs).await
        }
    };
    refused(&sts, with_actor(vec![]), "invalid_dpop_proof", "actor_token.dpop_key").await;
    refused(
        &sts,
        with_actor(vec![proof(&sts, &k2, "a-1")]),
        "invalid_dpop_proof",
        "actor_token.dpop_key",
    )
    .await;
    let reply = with_actor(vec![proof(&sts, &k1, "a-2")]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.claims()["cnf"]["jkt"], k1.kid);
}

#[tokio::test]
async fn identity_assertion_grants_carry_and_demand_the_binding() {
    let sts = TestSts::start_opts(Options {
        extra_clients: extras(),
        admin: true,
        ..Options::default()
    })
    .await;
    let (k1, k2) = (new_key(), new_key());
    let issuer = sts.url.clone();
    let ask = |proofs: Vec<String>| {
        let (sts, issuer) = (&sts, issuer.clone());
        async move {
            let login = alice_login(sts);
            let pairs = [
                ("grant_type", EXCHANGE),
                ("requested_token_type", ID_JAG),
                ("subject_token", login.as_str()),
                ("subject_token_type", ID_TOKEN),
                ("audience", issuer.as_str()),
                ("resource", ORDERS_MCP_URL),
                ("scope", "orders:read"),
            ];
            let refs: Vec<&str> = proofs.iter().map(String::as_str).collect();
            post_token(sts, ASSISTANT, &pairs, &refs).await
        }
    };
    let issued = ask(vec![proof(&sts, &k1, "g-1")]).await;
    assert_eq!(issued.status, 200, "{}", issued.text);
    assert_eq!(issued.body["token_type"], "N_A");
    let grant = issued.token();
    assert_eq!(decode_claims(&grant)["cnf"]["jkt"], k1.kid);

    let redeem = |proofs: Vec<String>| {
        let (sts, grant) = (&sts, grant.clone());
        async move {
            let refs: Vec<&str> = proofs.iter().map(String::as_str).collect();
            post_token(
                sts,
                ASSISTANT,
                &[("grant_type", JWT_BEARER), ("assertion", &grant)],
                &refs,
            )
            .await
        }
    };
    refused(&sts, redeem(vec![]), "invalid_grant", "assertion.cnf").await;
    refused(
        &sts,
        redeem(vec![proof(&sts, &k2, "g-2")]),
        "invalid_grant",
        "assertion.cnf",
    )
    .await;
    let reply = redeem(vec![proof(&sts, &k1, "g-3")]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["token_type"], "DPoP");
    assert_eq!(reply.claims()["cnf"]["jkt"], k1.kid);

    // Issued without a proof, a grant is a bearer grant, as before.
    let bearer = ask(vec![]).await;
    assert!(decode_claims(&bearer.token()).get("cnf").is_none());
}
