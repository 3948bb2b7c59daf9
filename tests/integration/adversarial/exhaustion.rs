//! Exhaustion: floods of unknown `kid`s, and key servers that never answer or never
//! stop talking (slow clients have their own group, `slow_clients`). The service must stay responsive, fetch keys
//! sparingly, and fail closed (503) within the fetch timeout with bounded memory.

use std::time::{Duration, Instant};

use mcp_sts::config::SigningAlgorithm;
use serde_json::json;

use super::arena::*;
use crate::support::attack::*;
use crate::support::sts::*;

/// Longest a fetch may take before the exchange answers 503 (the key fetch timeout, 5 s,
/// plus slack for a loaded machine).
const FETCH_DEADLINE: Duration = Duration::from_secs(8);
/// Most a peer may get to send us before we stop reading (document cap plus socket buffers).
const READ_BOUND: usize = 16 * 1024 * 1024;

/// POST many exchange bodies at once; the statuses they got.
async fn burst(sts: &TestSts, bodies: Vec<String>, basic: Option<String>) -> Vec<(u16, String)> {
    let mut tasks = tokio::task::JoinSet::new();
    for body in bodies {
        let (http, url, basic) = (sts.http.clone(), format!("{}/token", sts.url), basic.clone());
        tasks.spawn(async move {
            let mut request = http
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
            if let Some(basic) = basic {
                request = request.header("authorization", basic);
            }
            let reply = Reply::from(request.send().await.unwrap()).await;
            (reply.status, reply.error().to_owned())
        });
    }
    let mut out = Vec::new();
    while let Some(result) = tasks.join_next().await {
        out.push(result.unwrap());
    }
    out
}

fn all_are(results: &[(u16, String)], status: u16, code: &str) -> Outcome {
    match results.iter().find(|(s, c)| (*s, c.as_str()) != (status, code)) {
        None => Ok(()),
        Some((s, c)) => Err(format!("one request got {s} {c}, expected {status} {code}")),
    }
}

fn unknown_kid_bodies(sts: &TestSts, n: usize) -> Vec<String> {
    let claims = json!({"iss": sts.idp.issuer(), "sub": "flood", "aud": "mcp-sts", "exp": sts.clock_now() + 900});
    (0..n)
        .map(|i| {
            let token = sts
                .idp
                .sign_with_header(
                    SigningAlgorithm::ES256,
                    &json!({"alg": "ES256", "kid": format!("flood-{i}")}),
                    &claims,
                )
                .unwrap();
            form(&[
                ("grant_type", EXCHANGE),
                ("subject_token", &token),
                ("subject_token_type", ACCESS_TOKEN),
                ("audience", "orders-api"),
            ])
        })
        .collect()
}

#[tokio::test]
async fn a_burst_of_unknown_kids_costs_at_most_a_couple_of_jwks_fetches() {
    let arena = Arena::start().await;
    let sts = &arena.sts;
    let mut verdicts = Verdicts::new("unknown kid bursts");
    let basic = Some(basic_header("orders-mcp", ORDERS_MCP_SECRET));

    let results = burst(sts, unknown_kid_bodies(sts, 200), basic.clone()).await;
    let fetches = sts.idp.jwks_requests();
    verdicts.record(
        "cold_cache_burst_of_200",
        all_are(&results, 400, "invalid_request").and_then(|()| {
            if fetches <= 2 {
                Ok(())
            } else {
                Err(format!("{fetches} JWKS fetches"))
            }
        }),
    );

    sts.clock.advance(31);
    let before = sts.idp.jwks_requests();
    let results = burst(sts, unknown_kid_bodies(sts, 200), basic.clone()).await;
    let fetches = sts.idp.jwks_requests() - before;
    verdicts.record(
        "warm_cache_burst_of_200_after_the_refresh_interval",
        all_are(&results, 400, "invalid_request").and_then(|()| {
            if fetches <= 2 {
                Ok(())
            } else {
                Err(format!("{fetches} JWKS fetches"))
            }
        }),
    );

    // The same for a private_key_jwt client's jwks_uri.
    let claims = json!({"iss": "jwt-remote", "sub": "jwt-remote", "aud": sts.url, "exp": sts.clock_now() + 60});
    let alice = arena.user("alice", &["developer"]);
    let bodies = (0..200)
        .map(|i| {
            let mut c = claims.clone();
            c["jti"] = json!(format!("flood-{i}"));
            let assertion = arena
                .remote_keys
                .sign_with_header(
                    SigningAlgorithm::RS256,
                    &json!({"alg": "RS256", "kid": format!("flood-{i}")}),
                    &c,
                )
                .unwrap();
            form(&[
                ("grant_type", EXCHANGE),
                ("subject_token", &alice),
                ("subject_token_type", ACCESS_TOKEN),
                ("audience", "orders-api"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &assertion),
            ])
        })
        .collect();
    let results = burst(sts, bodies, None).await;
    let fetches = arena.remote_keys.jwks_requests();
    verdicts.record(
        "client_jwks_uri_burst_of_200",
        all_are(&results, 401, "invalid_client").and_then(|()| {
            if fetches <= 2 {
                Ok(())
            } else {
                Err(format!("{fetches} client JWKS fetches"))
            }
        }),
    );
    verdicts.finish();
}

/// Exchange a token claiming an issuer whose key server misbehaves.
async fn against_hostile_issuer(hostility: Hostility, discovery: bool) -> Outcome {
    let peer = HostilePeer::start(hostility).await;
    let extra = if discovery {
        format!("\n[[issuers]]\nissuer = \"{}\"\naudience = \"mcp-sts\"\n", peer.url)
    } else {
        format!(
            "\n[[issuers]]\nissuer = \"{}\"\naudience = \"mcp-sts\"\njwks_uri = \"{}/jwks.json\"\n",
            peer.url, peer.url
        )
    };
    let arena = Arena::start_with(&extra).await;
    let mut claims = arena.forge.claims("hostile-user", arena.now());
    claims["iss"] = json!(peer.url);
    let token = arena.forge.sign(&arena.forge.header(), &claims);
    let watch = Watch::take(&arena.sts).await;
    let started = Instant::now();
    let reply = arena.obo(&token).await;
    let took = started.elapsed();
    refused(&reply, 503, "temporarily_unavailable")?;
    if !reply.headers.contains_key("retry-after") {
        return Err("503 without Retry-After".into());
    }
    if peer.bytes_sent() > READ_BOUND {
        return Err(format!(
            "kept reading a document that never ends: {} MiB taken in (memory unbounded), answered after {took:?}",
            peer.bytes_sent() / (1024 * 1024)
        ));
    }
    if took > FETCH_DEADLINE {
        return Err(format!("answered after {took:?}"));
    }
    watch.unchanged(&arena.sts).await?;
    // Retrying at once does not hammer the peer.
    let before = peer.requests();
    for _ in 0..10 {
        refused(&arena.obo(&token).await, 503, "temporarily_unavailable")?;
    }
    if peer.requests() > before + 1 {
        return Err(format!("{} more fetches for 10 retries", peer.requests() - before));
    }
    Ok(())
}

/// A `private_key_jwt` client whose `jwks_uri` misbehaves.
async fn against_hostile_client_keys(hostility: Hostility) -> Outcome {
    let peer = HostilePeer::start(hostility).await;
    let extra = format!(
        "\n[[clients]]\nclient_id = \"jwt-hostile\"\naudiences = [\"orders-api\"]\njwks_uri = \"{}/jwks.json\"\n",
        peer.url
    );
    let arena = Arena::start_with(&extra).await;
    let now = arena.now();
    let assertion = arena.client_key.sign_raw(
        &json!({"alg": "ES256", "kid": "k"}),
        &json!({"iss": "jwt-hostile", "sub": "jwt-hostile", "aud": arena.sts.url, "exp": now + 60, "jti": "h-1"}),
    );
    let alice = arena.user("alice", &["developer"]);
    let started = Instant::now();
    let reply = arena
        .sts
        .post_form(
            "/token",
            None,
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &alice),
                ("subject_token_type", ACCESS_TOKEN),
                ("audience", "orders-api"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &assertion.unwrap()),
            ],
        )
        .await;
    let took = started.elapsed();
    refused(&reply, 503, "temporarily_unavailable")?;
    if peer.bytes_sent() > READ_BOUND {
        return Err(format!(
            "kept reading a document that never ends: {} MiB taken in (memory unbounded), answered after {took:?}",
            peer.bytes_sent() / (1024 * 1024)
        ));
    }
    if took > FETCH_DEADLINE {
        return Err(format!("answered after {took:?}"));
    }
    Ok(())
}

/// The hostile tests take turns: one's streaming peers must not starve the other's clocks.
static ONE_HOSTILE_TEST_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One hostile case, ready to run on its own task.
type HostileCase = std::pin::Pin<Box<dyn std::future::Future<Output = Outcome> + Send>>;

/// Run named hostile cases side by side (each waits on its own peer).
async fn side_by_side(verdicts: &mut Verdicts, cases: Vec<(String, HostileCase)>) {
    let mut tasks = tokio::task::JoinSet::new();
    for (name, case) in cases {
        tasks.spawn(async move { (name, case.await) });
    }
    let mut results = Vec::new();
    while let Some(result) = tasks.join_next().await {
        results.push(result.unwrap());
    }
    results.sort();
    for (name, outcome) in results {
        verdicts.record(name, outcome);
    }
}

/// Key servers that never answer: 503 within the fetch timeout, never a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_servers_that_never_answer_fail_closed_in_time() {
    let _turn = ONE_HOSTILE_TEST_AT_A_TIME.lock().await;
    let mut verdicts = Verdicts::new("silent key servers");
    side_by_side(
        &mut verdicts,
        vec![
            (
                "issuer/jwks_never_answers".into(),
                Box::pin(against_hostile_issuer(Hostility::Silent, false)),
            ),
            (
                "issuer/jwks_sends_headers_then_nothing".into(),
                Box::pin(against_hostile_issuer(Hostility::HeadersOnly, false)),
            ),
            (
                "issuer/discovery_never_answers".into(),
                Box::pin(against_hostile_issuer(Hostility::Silent, true)),
            ),
            (
                "client/jwks_never_answers".into(),
                Box::pin(against_hostile_client_keys(Hostility::Silent)),
            ),
        ],
    )
    .await;
    verdicts.finish();
}

/// Key servers that never stop talking: read up to a cap, then 503, memory bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_servers_that_never_stop_talking_are_cut_off() {
    let _turn = ONE_HOSTILE_TEST_AT_A_TIME.lock().await;
    let mut verdicts = Verdicts::new("endless key servers");
    side_by_side(
        &mut verdicts,
        vec![
            (
                "issuer/jwks_chunked_body_never_ends".into(),
                Box::pin(against_hostile_issuer(Hostility::EndlessChunked, false)),
            ),
            (
                "issuer/jwks_body_until_close_never_ends".into(),
                Box::pin(against_hostile_issuer(Hostility::EndlessUntilClose, false)),
            ),
            (
                "issuer/jwks_declares_a_terabyte".into(),
                Box::pin(against_hostile_issuer(Hostility::HugeContentLength, false)),
            ),
            (
                "issuer/discovery_chunked_body_never_ends".into(),
                Box::pin(against_hostile_issuer(Hostility::EndlessChunked, true)),
            ),
            (
                "client/jwks_chunked_body_never_ends".into(),
                Box::pin(against_hostile_client_keys(Hostility::EndlessChunked)),
            ),
            (
                "client/jwks_body_until_close_never_ends".into(),
                Box::pin(against_hostile_client_keys(Hostility::EndlessUntilClose)),
            ),
        ],
    )
    .await;
    verdicts.finish();
}
