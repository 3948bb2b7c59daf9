//! Revocation reaching every verifier through Shared Signals, with real components:
//! two mcp-sts replicas on one real redis-server (append-only), two downstream
//! verifiers subscribed by poll. Polls are driven on demand, so "within the poll
//! interval" means "after the next poll".

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::redis_server::{RedisOptions, RedisServer};
use crate::support::ssf::{Receiver, all_events};
use crate::support::sts::{ACCESS_TOKEN, BILLING_API_SECRET, JWT, ORDERS_API_SECRET, Options, TestSts};
use mcp_sts_downstream::verify::{RevocationStream, RevocationStreamConfig, Verifier, VerifierConfig, VerifyError};
use reqwest::Method;
use serde_json::json;

/// A downstream service: its verifier and its subscription.
struct Downstream {
    verifier: Verifier,
    stream: Arc<RevocationStream>,
}

fn downstream(issuer: &str, client: &str, secret: &str, fallback: bool) -> Downstream {
    let mut config = RevocationStreamConfig::new(issuer, client, secret);
    config.introspection_fallback = fallback;
    let stream = Arc::new(RevocationStream::new(config).unwrap());
    let mut verifier = VerifierConfig::new(issuer, client);
    verifier.revocation_stream = Some(stream.clone());
    Downstream {
        verifier: Verifier::new(verifier).unwrap(),
        stream,
    }
}

fn redis_revocation(redis: &RedisServer) -> String {
    format!("backend = \"redis\"\nurl = \"{}\"\ntimeout_ms = 200", redis.url())
}

/// Replica B is started first (its URL is the deployment's issuer); replica A shares
/// issuer, keys, IdP and Redis.
async fn replica_of(first: &TestSts, redis: &RedisServer) -> TestSts {
    TestSts::start_opts(Options {
        admin: true,
        revocation: redis_revocation(redis),
        idp: Some(first.idp.clone()),
        replica_of: Some((first.url.clone(), first.keys_dir.clone())),
        ..Options::default()
    })
    .await
}

/// Retry an admin revocation until the store answers again (Redis reconnecting), for
/// at most ten seconds; each attempt is bounded by the store's deadline.
async fn revoke_when_ready(sts: &TestSts, kind: &str, value: &str) {
    let started = Instant::now();
    loop {
        let body = json!({"kind": kind, "value": value, "reason": "test"});
        let reply = sts.admin(Method::POST, "", Some(body)).await;
        if reply.status == 201 {
            return;
        }
        assert_eq!(reply.status, 503, "{}", reply.text);
        assert!(started.elapsed() < Duration::from_secs(10), "store did not come back");
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn revocations_reach_both_verifiers_across_replica_and_redis_restarts() {
    let mut redis = RedisServer::start_with(RedisOptions {
        appendonly: true,
        ..RedisOptions::default()
    });
    let b = TestSts::start_opts(Options {
        admin: true,
        revocation: redis_revocation(&redis),
        ..Options::default()
    })
    .await;
    let mut a = replica_of(&b, &redis).await;
    let issuer = b.url.clone();
    let orders = downstream(&issuer, "orders-api", ORDERS_API_SECRET, false);
    let billing = downstream(&issuer, "billing-api", BILLING_API_SECRET, false);
    // Each stream covers tokens issued after its first poll (plus leeway): move past it.
    let subscribed = b.clock_now();
    for d in [&orders, &billing] {
        assert_eq!(d.stream.poll_once(subscribed).await.unwrap(), 0);
    }
    let now = subscribed + 60;
    a.clock.set(now);
    b.clock.set(now);
    for d in [&orders, &billing] {
        assert_eq!(d.stream.poll_once(now).await.unwrap(), 0);
    }

    // alice's token for orders-api, and the hop orders-api makes for billing-api.
    let alice = a
        .exchange(&a.user_token("alice", &["developer"]), &[("audience", "orders-api")])
        .await
        .token();
    let alice_hop = a
        .exchange_as(
            ("orders-api", ORDERS_API_SECRET),
            &alice,
            ACCESS_TOKEN,
            &[("audience", "billing-api")],
        )
        .await
        .token();
    let bob = a
        .exchange(&a.user_token("bob", &["developer"]), &[("audience", "orders-api")])
        .await
        .token();
    let agent = a.agent_token("agent-x");
    let via_agent = a
        .exchange(
            &a.user_token("dora", &["developer"]),
            &[
                ("audience", "orders-api"),
                ("actor_token", &agent),
                ("actor_token_type", JWT),
            ],
        )
        .await
        .token();
    for token in [&alice, &bob, &via_agent] {
        orders.verifier.verify_at(token, now).await.unwrap();
    }
    billing.verifier.verify_at(&alice_hop, now).await.unwrap();

    // Offboard alice through replica A: after one poll, both verifiers refuse her
    // tokens locally, by lineage (the hop names her as user too).
    a.admin_revoke("subject", "alice").await;
    for d in [&orders, &billing] {
        assert_eq!(d.stream.poll_once(now).await.unwrap(), 1);
    }
    assert_eq!(
        orders.verifier.verify_at(&alice, now).await.unwrap_err(),
        VerifyError::Revoked
    );
    assert_eq!(
        billing.verifier.verify_at(&alice_hop, now).await.unwrap_err(),
        VerifyError::Revoked
    );
    orders.verifier.verify_at(&bob, now).await.unwrap();
    // Acknowledged: nothing comes again.
    assert_eq!(orders.stream.poll_once(now).await.unwrap(), 0);

    // Revoke an agent and do not poll yet; then restart Redis and replica A.
    a.admin_revoke("agent", "agent-x").await;
    redis.stop();
    // While Redis is down a revocation is refused with 503 and nothing changes, and a
    // verifier that cannot poll goes stale and fails closed.
    let refused = a
        .admin(
            Method::POST,
            "",
            Some(json!({"kind": "subject", "value": "bob", "reason": "t"})),
        )
        .await;
    refused.assert_error(503, "temporarily_unavailable");
    assert!(orders.stream.poll_once(now + 40).await.is_err());
    let stale = orders.verifier.verify_at(&bob, now + 40).await.unwrap_err();
    assert!(matches!(stale, VerifyError::RevocationStreamStale(_)), "{stale:?}");
    assert!(stale.is_unavailable());

    redis.start_again();
    drop(a);
    a = replica_of(&b, &redis).await;
    revoke_when_ready(&a, "session", "unrelated-session").await;

    // The agent revocation queued before both restarts is delivered now.
    assert_eq!(orders.stream.poll_once(now + 41).await.unwrap(), 2);
    assert_eq!(billing.stream.poll_once(now + 41).await.unwrap(), 2);
    assert_eq!(
        orders.verifier.verify_at(&via_agent, now + 41).await.unwrap_err(),
        VerifyError::Revoked
    );
    orders.verifier.verify_at(&bob, now + 41).await.unwrap();
    // bob was never revoked: the refused request changed nothing.
    let listed = a.admin(Method::GET, "", None).await;
    let values: Vec<&str> = listed.body["revocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["value"].as_str().unwrap())
        .collect();
    assert!(!values.contains(&"bob"), "{values:?}");
}

#[tokio::test]
async fn every_replica_serves_every_stream() {
    let redis = RedisServer::start();
    let b = TestSts::start_opts(Options {
        admin: true,
        revocation: redis_revocation(&redis),
        ..Options::default()
    })
    .await;
    let a = replica_of(&b, &redis).await;
    let on_a = Receiver::new(&a.url, "orders-api", ORDERS_API_SECRET);
    let on_b = Receiver::new(&b.url, "orders-api", ORDERS_API_SECRET);
    let stream = on_a.create_poll_stream(&all_events(&b.url)).await;
    let id = stream["stream_id"].as_str().unwrap();
    // Created on A, read on B.
    let read = on_b
        .call(Method::GET, &format!("/ssf/streams?stream_id={id}"), None)
        .await;
    assert_eq!(read.body, stream);
    // Revoked on A, polled on B; not acknowledged, so polled again on A.
    a.admin_revoke("session", "s-7").await;
    let path = format!("/ssf/poll/{id}");
    let first = on_b.poll_now(&format!("{}{path}", b.url), &[]).await;
    assert_eq!(first.len(), 1);
    let again = on_a.poll_now(&format!("{}{path}", a.url), &[]).await;
    assert_eq!(again, first);
    let jti = first.keys().next().unwrap().clone();
    assert!(on_b.poll_now(&format!("{}{path}", b.url), &[jti]).await.is_empty());
    assert!(on_a.poll_now(&format!("{}{path}", a.url), &[]).await.is_empty());
}

#[tokio::test]
async fn a_stale_stream_falls_back_to_introspection_when_configured() {
    let sts = TestSts::start_opts(Options {
        admin: true,
        ..Options::default()
    })
    .await;
    let mut config = RevocationStreamConfig::new(&sts.url, "orders-api", ORDERS_API_SECRET);
    config.introspection_fallback = true;
    let stream = Arc::new(RevocationStream::new(config).unwrap());
    let mut verifier = VerifierConfig::new(&sts.url, "orders-api");
    verifier.revocation_stream = Some(stream.clone());
    let mut introspection = mcp_sts_downstream::verify::IntrospectionConfig::new(
        format!("{}/introspect", sts.url),
        "orders-api",
        ORDERS_API_SECRET,
    );
    introspection.cache_ttl = Duration::ZERO;
    verifier.introspection = Some(introspection);
    let verifier = Verifier::new(verifier).unwrap();
    let now = sts.clock_now();
    let token = sts
        .exchange(&sts.user_token("erin", &["developer"]), &[("audience", "orders-api")])
        .await
        .token();
    // Never polled: stale, so introspection answers (active).
    verifier.verify_at(&token, now).await.unwrap();
    // Revoked but not yet heard: introspection still catches it while stale.
    sts.admin_revoke("subject", "erin").await;
    assert_eq!(verifier.verify_at(&token, now).await.unwrap_err(), VerifyError::Revoked);
}

#[tokio::test]
async fn a_verifier_and_its_stream_share_one_key_cache() {
    let sts = TestSts::start_opts(Options {
        admin: true,
        ..Options::default()
    })
    .await;
    let shared = downstream(&sts.url, "orders-api", ORDERS_API_SECRET, false);
    // A verifier asking for other cache rules keeps a cache of its own.
    let mut own = VerifierConfig::new(&sts.url, "orders-api");
    own.jwks_cache_ttl = Duration::from_secs(60);
    own.revocation_stream = Some(shared.stream.clone());
    let own = Verifier::new(own).unwrap();

    let subscribed = sts.clock_now();
    assert_eq!(shared.stream.poll_once(subscribed).await.unwrap(), 0);
    let now = subscribed + 60;
    sts.clock.set(now);
    sts.admin_revoke("session", "s-elsewhere").await;
    // Verifying the SET fetched the STS's keys once, into the cache both use.
    assert_eq!(shared.stream.poll_once(now).await.unwrap(), 1);
    assert_eq!(shared.verifier.jwks_stats().fetches, 1);
    assert_eq!(own.jwks_stats().fetches, 0);

    let token = sts
        .exchange(&sts.user_token("frank", &["developer"]), &[("audience", "orders-api")])
        .await
        .token();
    shared.verifier.verify_at(&token, now).await.unwrap();
    assert_eq!(
        shared.verifier.jwks_stats().fetches,
        1,
        "no second fetch for the verifier"
    );
    own.verify_at(&token, now).await.unwrap();
    assert_eq!(own.jwks_stats().fetches, 1);
}
