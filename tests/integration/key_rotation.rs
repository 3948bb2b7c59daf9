//! Rotating the signing key under load never fails a downstream verification.
//!
//! Two replicas share a key directory; a downstream `Verifier` (default cache and
//! refetch cooldown) fetches the JWKS from replica B while replica A mints. A rotation
//! reaches the replicas at different moments (each re-reads the directory on its own
//! timer). With the default activation delay the new key is published everywhere
//! before it signs, so not one verification fails; with no delay, A signs with a key
//! B does not publish yet and the verifier refuses tokens until its cooldown ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::support::sts::*;
use mcp_sts::keys::KeyDir;
use mcp_sts_contract::clock::Clock;
use mcp_sts_downstream::verify::{Verifier, VerifierConfig};
use tokio::task::JoinHandle;

/// Tallies of the load loop.
#[derive(Default)]
struct Tally {
    verified: AtomicUsize,
    failed: AtomicUsize,
    stop: AtomicBool,
}

impl Tally {
    fn verified(&self) -> usize {
        self.verified.load(Ordering::SeqCst)
    }
}

/// Mint at `a` and verify continuously until told to stop.
fn load(a: &TestSts, verifier: Arc<Verifier>, tally: Arc<Tally>) -> JoinHandle<Vec<String>> {
    let (url, http, idp, clock) = (a.url.clone(), a.http.clone(), a.idp.clone(), a.clock.clone());
    tokio::spawn(async move {
        let mut kids = Vec::new();
        while !tally.stop.load(Ordering::SeqCst) {
            let now = clock.now();
            let subject = idp
                .user_token(
                    "alice@example.com",
                    "mcp-sts",
                    &["developer"],
                    now,
                    3600,
                    &serde_json::json!({}),
                )
                .unwrap();
            let body = form_urlencoded::Serializer::new(String::new())
                .extend_pairs([
                    ("grant_type", EXCHANGE),
                    ("subject_token", subject.as_str()),
                    ("subject_token_type", ACCESS_TOKEN),
                    ("audience", "orders-api"),
                ])
                .finish();
            let reply = http
                .post(format!("{url}/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("authorization", basic_header("orders-mcp", ORDERS_MCP_SECRET))
                .body(body)
                .send()
                .await
                .unwrap();
            let reply = Reply::from(reply).await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            let token = reply.token();
            let kid = decode_header(&token)["kid"].as_str().unwrap().to_owned();
            if kids.last() != Some(&kid) {
                kids.push(kid);
            }
            // Verified as of its minting time: the test clock may jump meanwhile.
            let minted_at = decode_claims(&token)["iat"].as_u64().unwrap();
            match verifier.verify_at(&token, minted_at).await {
                Ok(_) => tally.verified.fetch_add(1, Ordering::SeqCst),
                Err(error) => {
                    eprintln!("verification failed: {error}");
                    tally.failed.fetch_add(1, Ordering::SeqCst)
                }
            };
        }
        kids
    })
}

/// Let the load run for `n` more verifications (or failures).
async fn run_for(tally: &Tally, n: usize) {
    let target = tally.verified() + tally.failed.load(Ordering::SeqCst) + n;
    while tally.verified() + tally.failed.load(Ordering::SeqCst) < target {
        tokio::task::yield_now().await;
    }
}

/// Rotate under load with `delay`; returns (failed, verified, kids seen in order).
async fn rotate_under_load(delay: Option<u64>) -> (usize, usize, Vec<String>) {
    let a = TestSts::start_opts(Options {
        activate_after_seconds: delay,
        ..Options::default()
    })
    .await;
    let b = TestSts::start_opts(Options {
        activate_after_seconds: delay,
        idp: Some(a.idp.clone()),
        replica_of: Some((a.url.clone(), a.keys_dir.clone())),
        clock: Some(a.clock.clone()),
        ..Options::default()
    })
    .await;
    let mut config = VerifierConfig::new(&a.url, "orders-api");
    config.jwks_uri = format!("{}/.well-known/jwks.json", b.url);
    let verifier = Arc::new(Verifier::new(config).unwrap());
    let tally = Arc::new(Tally::default());
    let worker = load(&a, verifier, tally.clone());
    run_for(&tally, 20).await;

    // `mcp-sts keys rotate` (a second after the first key was made), then A's
    // reloader notices first; B's a little later.
    a.clock.advance(1);
    let algorithm = a.sts.config().keys.algorithm;
    KeyDir::new(&a.keys_dir).generate(algorithm, a.clock_now()).unwrap();
    mcp_sts::server::reload_keys(&a.sts).unwrap();
    run_for(&tally, 20).await;
    mcp_sts::server::reload_keys(&b.sts).unwrap();
    run_for(&tally, 20).await;

    // The activation delay passes; the new key signs.
    a.clock.advance(a.sts.config().keys.activate_after_seconds + 1);
    run_for(&tally, 50).await;
    tally.stop.store(true, Ordering::SeqCst);
    let kids = worker.await.unwrap();
    (tally.failed.load(Ordering::SeqCst), tally.verified(), kids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_delay_rotates_with_zero_failed_verifications() {
    let (failed, verified, kids) = rotate_under_load(None).await;
    assert_eq!(failed, 0, "{verified} verified");
    assert_eq!(kids.len(), 2, "the old key signed, then the new one: {kids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_delay_the_same_rotation_fails_verifications() {
    let (failed, _, kids) = rotate_under_load(Some(0)).await;
    assert!(failed > 0, "the hazard the default delay removes");
    assert_eq!(kids.len(), 2, "{kids:?}");
}
