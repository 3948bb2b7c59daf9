//! Every outbound fetch is bounded: a peer streaming an endless body is cut off at the
//! byte cap, and one that never answers at the deadline. Driven through the real
//! exchange and the real verifier, against misbehaving servers on 127.0.0.1:0.

use std::time::Duration;

use crate::support::downstream::{AUDIENCE, ISSUER, NOW, TestKey, obo_claims, start_sts};
use crate::support::hostile::{Flood, silent};
use crate::support::sts::{Options, TestSts};
use mcp_sts_downstream::verify::{IntrospectionConfig, Verifier, VerifierConfig, VerifyError};

/// Far more than any cap: a client that reads it whole has no cap.
const HUGE: usize = 64 * 1024 * 1024;

/// What a bounded client may let the server write: the 512 KiB cap, the chunks in
/// flight, and socket buffers; an unbounded read would take the whole 64 MiB.
const WRITTEN_BOUND: usize = 2 * 1024 * 1024;

async fn sts_with_issuer_keys_at(uri: String) -> TestSts {
    TestSts::start_opts(Options {
        issuer_extra: format!("jwks_uri = \"{uri}\""),
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn an_endless_chunked_jwks_is_cut_off_at_the_cap_and_the_exchange_fails_closed() {
    let mut flood = Flood::start(HUGE).await;
    let sts = sts_with_issuer_keys_at(format!("{}/jwks", flood.url)).await;
    let alice = sts.user_token("alice", &["developer"]);

    let reply = tokio::time::timeout(
        Duration::from_secs(30),
        sts.exchange(&alice, &[("audience", "orders-api")]),
    )
    .await
    .expect("the exchange answers");
    reply.assert_error(503, "temporarily_unavailable");
    assert!(reply.headers.contains_key("retry-after"));
    // Refused at the cap, not at the deadline: the flood writes without pause, so a
    // read that ran until the deadline would have taken far more than the bound below.

    tokio::time::timeout(Duration::from_secs(30), flood.finished())
        .await
        .expect("the client hung up");
    let written = flood.written();
    assert!(
        written < WRITTEN_BOUND,
        "the server wrote {written} bytes before the client hung up"
    );
    assert!(written > 512 * 1024, "the cap was reached: {written}");
    assert_eq!(flood.requests(), 1);

    // Nothing was cached: the next exchange (after the retry interval) fails closed too.
    sts.clock.advance(31);
    sts.exchange(&alice, &[("audience", "orders-api")])
        .await
        .assert_error(503, "temporarily_unavailable");
    assert_eq!(flood.requests(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_jwks_endpoint_that_never_answers_is_bounded_by_the_fetch_deadline() {
    let url = silent().await;
    let sts = sts_with_issuer_keys_at(format!("{url}/jwks")).await;
    let alice = sts.user_token("alice", &["developer"]);

    // Paused time: the runtime's clock jumps to the next timer once everything waits.
    let started = tokio::time::Instant::now();
    let reply = sts.exchange(&alice, &[("audience", "orders-api")]).await;
    reply.assert_error(503, "temporarily_unavailable");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(6),
        "bounded by the 5 s deadline: {waited:?}"
    );
}

fn verifier(jwks_base: &str, introspection: Option<String>) -> Verifier {
    let mut config = VerifierConfig::new(ISSUER, AUDIENCE);
    config.jwks_uri = format!("{jwks_base}/.well-known/jwks.json");
    config.introspection = introspection.map(|url| IntrospectionConfig::new(url, "orders-api", "secret"));
    Verifier::new(config).unwrap()
}

#[tokio::test]
async fn the_verifier_cuts_off_an_endless_jwks() {
    let mut flood = Flood::start(HUGE).await;
    let key = TestKey::ec("ec-1");
    let err = verifier(&flood.url, None)
        .verify_at(&key.sign(&obo_claims(NOW)), NOW)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, VerifyError::JwksUnavailable(why) if why.contains("larger than")),
        "{err:?}"
    );
    flood.finished().await;
    assert!(flood.written() < WRITTEN_BOUND, "{}", flood.written());
}

#[tokio::test]
async fn the_verifier_cuts_off_an_endless_introspection_answer() {
    let (sts, base) = start_sts().await;
    let key = TestKey::ec("ec-1");
    sts.publish(&[&key]);
    let mut flood = Flood::start(HUGE).await;
    let err = verifier(&base, Some(format!("{}/introspect", flood.url)))
        .verify_at(&key.sign(&obo_claims(NOW)), NOW)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, VerifyError::IntrospectionUnavailable(why) if why.contains("larger than")),
        "{err:?}"
    );
    assert!(err.is_unavailable());
    flood.finished().await;
    assert!(flood.written() < WRITTEN_BOUND, "{}", flood.written());
}

#[tokio::test(start_paused = true)]
async fn the_verifier_gives_up_on_a_silent_jwks_at_its_deadline() {
    let url = silent().await;
    let mut config = VerifierConfig::new(ISSUER, AUDIENCE);
    config.jwks_uri = format!("{url}/.well-known/jwks.json");
    config.http_timeout = Duration::from_secs(2);
    let verifier = Verifier::new(config).unwrap();
    let key = TestKey::ec("ec-1");
    let started = tokio::time::Instant::now();
    let err = verifier.verify_at(&key.sign(&obo_claims(NOW)), NOW).await.unwrap_err();
    assert!(
        matches!(&err, VerifyError::JwksUnavailable(why) if why.contains("timed out")),
        "{err:?}"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}
