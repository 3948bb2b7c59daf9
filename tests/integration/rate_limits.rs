//! Rate limits per client and per subject over real HTTP: 429 with `Retry-After` in
//! the OAuth error shape, nothing minted, and the refusals (with store latency and
//! keys in use) on `/metrics`.

use crate::support::sts::*;

async fn limited(tables: &str) -> TestSts {
    TestSts::start_opts(Options {
        extra_tables: tables.to_owned(),
        ..Options::default()
    })
    .await
}

async fn metrics(sts: &TestSts) -> String {
    sts.http
        .get(format!("{}/metrics", sts.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_client_over_its_burst_gets_429_with_retry_after() {
    let sts = limited("\n[limits]\nclient_per_second = 1\nclient_burst = 3\n").await;
    let alice = sts.user_token("alice", &["developer"]);
    for _ in 0..3 {
        assert_eq!(sts.exchange(&alice, &[("audience", "orders-api")]).await.status, 200);
    }
    let refused = sts.exchange(&alice, &[("audience", "orders-api")]).await;
    refused.assert_error(429, "too_many_requests");
    let retry: u64 = refused.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert_eq!(retry, 1, "one token per second");
    assert!(refused.body.get("access_token").is_none());
    let denial = sts.audit_events().pop().unwrap();
    assert_eq!(denial["reason"], "too_many_requests:rate_limit.client");

    // Another client has its own bucket.
    let bob = sts.user_token("bob", &["developer"]);
    let other = sts
        .exchange_as(
            ("orders-api", ORDERS_API_SECRET),
            &bob,
            ACCESS_TOKEN,
            &[("audience", "billing-api")],
        )
        .await;
    assert_ne!(other.status, 429, "{}", other.text);

    let text = metrics(&sts).await;
    assert!(
        text.contains("mcp_sts_rate_limited_total{limit=\"client\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("mcp_sts_revocation_store_duration_seconds_count{operation=\"check\",outcome=\"ok\"}"),
        "{text}"
    );
    assert!(text.contains("mcp_sts_signing_keys_published 1"), "{text}");
}

#[tokio::test]
async fn a_subject_is_limited_across_clients() {
    let sts = limited("\n[limits]\nsubject_per_second = 1\nsubject_burst = 2\n").await;
    let alice = sts.user_token("alice", &["developer"]);
    for _ in 0..2 {
        assert_eq!(sts.exchange(&alice, &[("audience", "orders-api")]).await.status, 200);
    }
    sts.exchange(&alice, &[("audience", "inventory-api")])
        .await
        .assert_error(429, "too_many_requests");
    let bob = sts.user_token("bob", &["developer"]);
    assert_eq!(sts.exchange(&bob, &[("audience", "orders-api")]).await.status, 200);
    assert!(
        metrics(&sts)
            .await
            .contains("mcp_sts_rate_limited_total{limit=\"subject\"} 1")
    );
}

#[tokio::test]
async fn no_limits_by_default() {
    let sts = TestSts::start().await;
    let alice = sts.user_token("alice", &["developer"]);
    for _ in 0..50 {
        assert_eq!(sts.exchange(&alice, &[("audience", "orders-api")]).await.status, 200);
    }
}
