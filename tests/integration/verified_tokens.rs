//! The memory of verified tokens: a token exchanged (or verified downstream) again
//! costs no second signature check, and nothing else is skipped. Revocation, the
//! lifetime rules, policy and the issuer's current keys still decide every request.

use std::time::Duration;

use crate::support::sts::{ACCESS_TOKEN, JWT, ORDERS_API_SECRET, Options, TestSts, decode_header};
use mcp_sts::config::SigningAlgorithm;
use mcp_sts_contract::clock::Clock;
use mcp_sts_downstream::verify::{IntrospectionConfig, Verifier, VerifierConfig, VerifyError};

const ORDERS_API: (&str, &str) = ("orders-api", ORDERS_API_SECRET);

async fn with_admin() -> TestSts {
    TestSts::start_opts(Options {
        admin: true,
        ..Options::default()
    })
    .await
}

fn hits(sts: &TestSts) -> u64 {
    sts.sts.verified_tokens().stats().hits
}

#[tokio::test]
async fn a_token_seen_before_is_still_refused_once_its_user_or_agent_is_revoked() {
    let sts = with_admin().await;
    let carol = sts.user_token("carol@example.com", &["developer"]);
    let agent = sts.agent_token("rogue-agent");
    let with_agent = [
        ("audience", "orders-api"),
        ("actor_token", agent.as_str()),
        ("actor_token_type", JWT),
    ];
    for _ in 0..2 {
        assert_eq!(sts.exchange(&carol, &[("audience", "orders-api")]).await.status, 200);
    }
    assert_eq!(sts.exchange(&carol, &with_agent).await.status, 200);
    assert!(hits(&sts) >= 2, "the second exchanges reused the verdicts");
    let metrics = sts.http.get(format!("{}/metrics", sts.url)).send().await.unwrap();
    let text = metrics.text().await.unwrap();
    let hits_line = format!("mcp_sts_verified_tokens_hits_total {}", hits(&sts));
    assert!(text.contains(&hits_line), "{text}");
    assert!(text.contains("mcp_sts_verified_tokens_entries 2"), "{text}");

    sts.admin_revoke("agent", "rogue-agent").await;
    let reply = sts.exchange(&carol, &with_agent).await;
    reply.assert_error(400, "invalid_request");
    assert!(reply.body["error_description"].as_str().unwrap().contains("revoked"));
    assert_eq!(sts.exchange(&carol, &[("audience", "orders-api")]).await.status, 200);

    sts.admin_revoke("subject", "carol@example.com").await;
    let reply = sts.exchange(&carol, &[("audience", "orders-api")]).await;
    reply.assert_error(400, "invalid_request");
    assert!(reply.body["error_description"].as_str().unwrap().contains("revoked"));
}

#[tokio::test]
async fn a_token_seen_before_expires_on_time() {
    let sts = TestSts::start().await;
    let alice = sts.user_token("alice@example.com", &["developer"]);
    let exp = mcp_sts_contract::jose::compact::claims(&alice).unwrap()["exp"]
        .as_u64()
        .unwrap();
    assert_eq!(sts.exchange(&alice, &[("audience", "orders-api")]).await.status, 200);
    assert_eq!(sts.exchange(&alice, &[("audience", "orders-api")]).await.status, 200);
    let leeway = sts.sts.config().tokens.leeway_seconds;
    sts.clock.advance(exp + leeway - sts.clock.now());
    let reply = sts.exchange(&alice, &[("audience", "orders-api")]).await;
    reply.assert_error(400, "invalid_request");
    assert_eq!(
        reply.body["error_description"].as_str().unwrap(),
        "subject_token has expired"
    );
}

#[tokio::test]
async fn policy_still_decides_for_a_token_seen_before() {
    let sts = TestSts::start().await;
    let alice = sts.user_token("alice@example.com", &["developer"]);
    assert_eq!(sts.exchange(&alice, &[("audience", "orders-api")]).await.status, 200);
    // The same token, asking for more than its roles allow, or for an audience this
    // client may not reach: refused as on first sight.
    sts.exchange(&alice, &[("audience", "orders-api"), ("scope", "orders:admin")])
        .await
        .assert_error(400, "invalid_scope");
    sts.exchange(&alice, &[("audience", "ledger-api")])
        .await
        .assert_error(400, "invalid_target");
}

#[tokio::test]
async fn a_token_whose_issuer_key_is_retired_stops_validating_at_the_next_key_refresh() {
    let sts = TestSts::start().await;
    let alice = sts.user_token("alice@example.com", &["developer"]);
    let old_kid = decode_header(&alice)["kid"].as_str().unwrap().to_owned();
    assert_eq!(sts.exchange(&alice, &[("audience", "orders-api")]).await.status, 200);
    assert_eq!(sts.exchange(&alice, &[("audience", "orders-api")]).await.status, 200);

    sts.idp.rotate(SigningAlgorithm::ES256).unwrap();
    assert!(sts.idp.retire(&old_kid));
    let fetches = sts.idp.jwks_requests();
    // Past the issuer's key cache lifetime, the next exchange refreshes the keys and
    // the retired key vouches for nothing, however often it verified before.
    sts.clock.advance(601);
    let alice_again = sts.user_token("alice@example.com", &["developer"]);
    let reply = sts.exchange(&alice, &[("audience", "orders-api")]).await;
    reply.assert_error(400, "invalid_request");
    assert_eq!(
        reply.body["error_description"].as_str().unwrap(),
        "subject_token is signed with an unknown key"
    );
    assert!(sts.idp.jwks_requests() > fetches, "the keys were refreshed");
    // A token signed by the new key is fine.
    assert_eq!(
        sts.exchange(&alice_again, &[("audience", "orders-api")]).await.status,
        200
    );
}

#[tokio::test]
async fn the_memory_can_be_turned_off() {
    let sts = TestSts::start().await;
    assert!(sts.sts.config().server.verified_token_cache > 0, "on by default");

    let off = TestSts::start_opts(Options {
        server_extra: "verified_token_cache = 0\n".into(),
        ..Options::default()
    })
    .await;
    let alice = off.user_token("alice@example.com", &["developer"]);
    for _ in 0..3 {
        assert_eq!(off.exchange(&alice, &[("audience", "orders-api")]).await.status, 200);
    }
    let stats = off.sts.verified_tokens().stats();
    assert_eq!((stats.hits, stats.entries), (0, 0));
}

/// A downstream verifier with the test clock, asking introspection for revocation.
fn verifier(sts: &TestSts) -> Verifier {
    let mut config = VerifierConfig::new(&sts.url, "orders-api");
    let mut introspection = IntrospectionConfig::new(format!("{}/introspect", sts.url), ORDERS_API.0, ORDERS_API.1);
    introspection.cache_ttl = Duration::ZERO;
    config.introspection = Some(introspection);
    config.clock = std::sync::Arc::new(sts.clock.clone());
    Verifier::new(config).unwrap()
}

#[tokio::test]
async fn the_verifier_checks_a_signature_once_and_still_refuses_revoked_and_expired_tokens() {
    let sts = with_admin().await;
    let carol = sts.user_token("carol@example.com", &["developer"]);
    let minted = sts.exchange(&carol, &[("audience", "orders-api")]).await.token();
    let verifier = verifier(&sts);
    for _ in 0..3 {
        assert_eq!(verifier.verify(&minted).await.unwrap().user(), "carol@example.com");
    }
    let stats = verifier.verified_stats();
    assert_eq!((stats.misses, stats.hits), (1, 2));

    // Tampered bytes are never taken for the token seen before.
    let mut tampered = minted.clone();
    tampered.pop();
    tampered.push(if minted.ends_with('A') { 'B' } else { 'A' });
    assert!(matches!(
        verifier.verify(&tampered).await,
        Err(VerifyError::BadSignature | VerifyError::Malformed(_))
    ));

    sts.admin_revoke("subject", "carol@example.com").await;
    assert!(matches!(verifier.verify(&minted).await, Err(VerifyError::Revoked)));

    let alice = sts.user_token("alice@example.com", &["developer"]);
    let minted = sts.exchange(&alice, &[("audience", "orders-api")]).await.token();
    assert!(verifier.verify(&minted).await.is_ok());
    assert!(verifier.verify(&minted).await.is_ok());
    let exp = mcp_sts_contract::jose::compact::claims(&minted).unwrap()["exp"]
        .as_u64()
        .unwrap();
    sts.clock.advance(exp + 30 - sts.clock.now());
    assert!(matches!(verifier.verify(&minted).await, Err(VerifyError::Expired)));
}

#[tokio::test]
async fn a_subject_token_of_our_own_seen_before_is_checked_against_its_lineage() {
    let sts = with_admin().await;
    let carol = sts.user_token("carol@example.com", &["developer"]);
    let minted = sts.exchange(&carol, &[("audience", "orders-api")]).await.token();
    for _ in 0..2 {
        let reply = sts
            .exchange_as(ORDERS_API, &minted, ACCESS_TOKEN, &[("audience", "billing-api")])
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    sts.admin_revoke("client", "orders-mcp").await;
    sts.exchange_as(ORDERS_API, &minted, ACCESS_TOKEN, &[("audience", "billing-api")])
        .await
        .assert_error(400, "invalid_request");
}
