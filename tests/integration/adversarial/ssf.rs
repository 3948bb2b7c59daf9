//! Shared Signals, attacked: a receiver racing the stream quota on every backend,
//! piling up verification events, or stalling its push endpoint while another waits
//! for a revocation; a transmitter upstream (or mcp-sts as the verifier sees it)
//! answering with a flood or never answering at all.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::routing::{get, post};
use mcp_sts::ssf::upstream::{Upstream, UpstreamReceiver};
use mcp_sts_downstream::verify::{RevocationStream, RevocationStreamConfig};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::support::attack::*;
use crate::support::hostile::Flood;
use crate::support::redis_server::RedisServer;
use crate::support::ssf::{Receiver, SESSION_REVOKED, VERIFICATION, all_events};
use crate::support::sts::*;

/// The group every case here reports under.
const GROUP: &str = "shared signals";

/// Streams one client may hold in the test configuration (the default).
const QUOTA: usize = 4;

/// Far more than any cap: a client reading it whole has no cap.
const HUGE: usize = 64 * 1024 * 1024;
/// What a capped read may let a flooding peer write: the 4 MiB cap, chunks in flight
/// and socket buffers; reading the 64 MiB whole would take all of it.
const WRITTEN_BOUND: usize = 6 * 1024 * 1024;

/// `count` simultaneous stream creations by one client; the statuses answered.
async fn create_at_once(sts: &TestSts, count: usize) -> Vec<u16> {
    let receiver = Receiver::new(&sts.url, "orders-api", ORDERS_API_SECRET);
    let body = json!({"delivery": {"method": "urn:ietf:rfc:8936"}, "events_requested": all_events(&sts.url)});
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..count {
        let (receiver, body) = (receiver.clone(), body.clone());
        tasks.spawn(async move { receiver.call(Method::POST, "/ssf/streams", Some(body)).await.status });
    }
    let mut statuses = Vec::new();
    while let Some(status) = tasks.join_next().await {
        statuses.push(status.unwrap_or(0));
    }
    statuses
}

/// 24 creations at once: exactly the quota is created, the rest are 409, and the
/// receiver holds exactly the quota afterwards.
async fn quota_holds(sts: &TestSts) -> Outcome {
    let statuses = create_at_once(sts, 24).await;
    let created = statuses.iter().filter(|s| **s == 201).count();
    let refused = statuses.iter().filter(|s| **s == 409).count();
    let receiver = Receiver::new(&sts.url, "orders-api", ORDERS_API_SECRET);
    let held = receiver.call(Method::GET, "/ssf/streams", None).await;
    let held = held.body.as_array().map_or(0, Vec::len);
    if (created, refused, held) != (QUOTA, 24 - QUOTA, QUOTA) {
        return Err(format!(
            "{created} created, {refused} refused with 409, {held} held (quota {QUOTA}); statuses {statuses:?}"
        ));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_stream_quota_holds_under_simultaneous_creations_on_every_backend() {
    let mut verdicts = Verdicts::new(GROUP);
    let memory = TestSts::start().await;
    verdicts.record("quota/memory/24_creations_at_once", quota_holds(&memory).await);

    let dir = tempfile::tempdir().unwrap();
    let embedded = TestSts::start_opts(Options {
        revocation: format!(
            "backend = \"embedded\"\npath = \"{}\"\ntimeout_ms = 2000",
            dir.path().join("revocations.db").display()
        ),
        ..Options::default()
    })
    .await;
    verdicts.record("quota/embedded/24_creations_at_once", quota_holds(&embedded).await);

    let redis = RedisServer::start();
    let on_redis = TestSts::start_opts(Options {
        revocation: format!("backend = \"redis\"\nurl = \"{}\"\ntimeout_ms = 2000", redis.url()),
        ..Options::default()
    })
    .await;
    verdicts.record("quota/redis/24_creations_at_once", quota_holds(&on_redis).await);
    verdicts.finish();
}

/// Ask for a verification event on `stream_id`; the status.
async fn verify(receiver: &Receiver, stream_id: &str) -> Reply {
    receiver
        .call(
            Method::POST,
            "/ssf/verify",
            Some(json!({"stream_id": stream_id, "state": "are-you-there"})),
        )
        .await
}

#[tokio::test]
async fn verification_events_waiting_in_a_stream_are_bounded() {
    let sts = TestSts::start().await;
    let mut verdicts = Verdicts::new(GROUP);
    let receiver = Receiver::new(&sts.url, "orders-api", ORDERS_API_SECRET);
    let stream = receiver.create_poll_stream(&all_events(&sts.url)).await;
    let id = stream["stream_id"].as_str().unwrap_or_default().to_owned();
    let poll = stream["delivery"]["endpoint_url"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(verify(&receiver, &id).await);
    }
    let accepted = statuses.iter().filter(|r| r.status == 204).count();
    let over = statuses.iter().find(|r| r.status != 204);
    verdicts.record(
        "verification/a_flood_of_requests_queues_a_bounded_number",
        match over {
            _ if accepted != 4 => Err(format!("{accepted} of 20 verification requests queued, expected 4")),
            Some(reply) => refused(reply, 429, "too_many_requests").and_then(|()| {
                if reply.headers.contains_key("retry-after") {
                    Ok(())
                } else {
                    Err("429 without Retry-After".into())
                }
            }),
            None => Err("no request was refused".into()),
        },
    );
    let sets = receiver.poll_now(&poll, &[]).await;
    verdicts.record(
        "verification/only_the_bounded_number_waits",
        if sets.len() == 4 {
            Ok(())
        } else {
            Err(format!("{} SETs waiting", sets.len()))
        },
    );
    // Collected and acknowledged, they make room again.
    let acks: Vec<String> = sets.keys().cloned().collect();
    receiver.poll_now(&poll, &acks).await;
    let again = verify(&receiver, &id).await;
    verdicts.record(
        "verification/acknowledged_events_make_room_again",
        if again.status == 204 {
            Ok(())
        } else {
            Err(format!("got {} {}", again.status, clip(&again.text)))
        },
    );
    verdicts.finish();
}

/// A push receiver on a real socket that answers 202 and hands each SET to a channel.
async fn good_push_receiver() -> (String, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/events",
        post(move |body: String| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body);
                axum::http::StatusCode::ACCEPTED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, rx)
}

/// The session a pushed SET names, if it is a session revocation.
fn pushed_session(set: &str) -> Option<String> {
    let claims = decode_claims(set);
    claims["events"].get(SESSION_REVOKED)?;
    claims["sub_id"]["id"].as_str().map(String::from)
}

/// Wait for the SET revoking `session`, up to `deadline`.
async fn arrives(rx: &mut mpsc::UnboundedReceiver<String>, session: &str, deadline: Duration) -> Outcome {
    let started = std::time::Instant::now();
    let wait = async {
        while let Some(set) = rx.recv().await {
            if pushed_session(&set).as_deref() == Some(session) {
                return true;
            }
        }
        false
    };
    match tokio::time::timeout(deadline, wait).await {
        Ok(true) => {
            eprintln!(
                "push: {session} reached the good receiver after {:?}",
                started.elapsed()
            );
            Ok(())
        }
        Ok(false) => Err("the receiver stopped".into()),
        Err(_) => Err(format!("the revocation of {session} took longer than {deadline:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_push_receiver_cannot_delay_another_receivers_revocation() {
    let sts = TestSts::start_opts(Options {
        admin: true,
        extra_tables: "[ssf]\npush_allowed_hosts = [\"127.0.0.1\"]\npush_interval_ms = 200\n".into(),
        ..Options::default()
    })
    .await;
    let mut verdicts = Verdicts::new(GROUP);
    // Accepts every push and never answers.
    let hostile = HostilePeer::start(Hostility::Silent).await;
    let push_to = |url: &str| json!({"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": url}, "events_requested": all_events(&sts.url)});
    let mut refused_verifications = 0;
    let mut hostile_streams = 0;
    for (client, secret) in [
        ("orders-mcp", ORDERS_MCP_SECRET),
        ("billing-api", BILLING_API_SECRET),
        ("ledger-api", LEDGER_API_SECRET),
        ("watcher", WATCHER_SECRET),
    ] {
        let receiver = Receiver::new(&sts.url, client, secret);
        for _ in 0..QUOTA {
            let created = receiver
                .call(
                    Method::POST,
                    "/ssf/streams",
                    Some(push_to(&format!("{}/events", hostile.url))),
                )
                .await;
            let Some(id) = created.body["stream_id"].as_str() else {
                continue;
            };
            hostile_streams += 1;
            // As many verification events as it is allowed to queue, and then some.
            for _ in 0..10 {
                if verify(&receiver, id).await.status == 429 {
                    refused_verifications += 1;
                }
            }
        }
    }
    verdicts.record(
        "push/hostile_receivers_registered_and_capped",
        if hostile_streams == 16 && refused_verifications == 16 * 6 {
            Ok(())
        } else {
            Err(format!(
                "{hostile_streams} hostile streams, {refused_verifications} verification requests refused"
            ))
        },
    );
    let (good_url, mut pushed) = good_push_receiver().await;
    let good = Receiver::new(&sts.url, "orders-api", ORDERS_API_SECRET);
    let created = good.call(Method::POST, "/ssf/streams", Some(push_to(&good_url))).await;
    assert_eq!(created.status, 201, "{}", created.text);

    let worker = mcp_sts::ssf::push::spawn(mcp_sts::ssf::push::Pushing::of(&sts.sts));
    // The push interval is 200 ms; 3 s is the same bound with room for a loaded machine
    // (a stalled receiver used to hold every other stream 5 s per stream and event).
    let deadline = Duration::from_secs(3);
    for (n, session) in ["pushed-1", "pushed-2", "pushed-3"].iter().enumerate() {
        sts.admin_revoke("session", session).await;
        verdicts.record(
            format!("push/revocation_{}_reaches_the_good_receiver_in_time", n + 1),
            arrives(&mut pushed, session, deadline).await,
        );
    }
    worker.abort();
    verdicts.finish();
}

/// A verifier subscribed to `base` (a transmitter that is not mcp-sts).
fn stream_at(base: &str, http_timeout: Duration) -> RevocationStream {
    let mut config = RevocationStreamConfig::new(base, "orders-api", "orders-api-secret");
    config.http_timeout = http_timeout;
    RevocationStream::new(config).unwrap()
}

/// A transmitter whose metadata and stream are fine and whose poll endpoint never answers.
async fn stalling_transmitter() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (config, stream) = (
        json!({"issuer": base, "configuration_endpoint": format!("{base}/streams")}),
        json!({"stream_id": "s1", "description": "mcp-sts verifier default",
               "delivery": {"method": "urn:ietf:rfc:8936", "endpoint_url": format!("{base}/poll")}}),
    );
    let listed = stream.clone();
    let app = axum::Router::new()
        .route(
            "/.well-known/ssf-configuration",
            get(move || async move { Json(config) }),
        )
        .route(
            "/streams",
            get(move || async move { Json(Value::Array(vec![listed])) })
                .post(move || async move { (axum::http::StatusCode::CREATED, Json(stream)) }),
        )
        .route("/poll", post(std::future::pending::<axum::response::Response>));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

#[tokio::test]
async fn transmitters_that_flood_or_stall_cost_bounded_memory_and_time() {
    let mut verdicts = Verdicts::new(GROUP);

    // Upstream: the IdP's transmitter answers its configuration with 64 MiB.
    let mut flood = Flood::start(HUGE).await;
    let sts = TestSts::start_opts(Options {
        issuer_extra: format!(
            "[issuers.ssf]\nconfiguration = \"{}/.well-known/ssf-configuration\"\nbearer_token = \"t\"\n",
            flood.url
        ),
        ..Options::default()
    })
    .await;
    let outcome = async {
        let receiver = UpstreamReceiver::for_issuer(Upstream::of(&sts.sts), sts.idp.issuer()).ok_or("no receiver")?;
        let polled = tokio::time::timeout(
            Duration::from_secs(30),
            receiver.poll_once(Upstream::of(&sts.sts), sts.clock_now()),
        )
        .await
        .map_err(|_| "the poll did not end")?;
        if polled.is_ok() {
            return Err("a 64 MiB answer was accepted".to_owned());
        }
        tokio::time::timeout(Duration::from_secs(30), flood.finished())
            .await
            .map_err(|_| "the receiver never hung up")?;
        let written = flood.written();
        eprintln!("upstream flood: {written} bytes written before mcp-sts hung up");
        match written {
            n if n < WRITTEN_BOUND => Ok(()),
            n => Err(format!("{} MiB read before the size check", n / (1024 * 1024))),
        }
    }
    .await;
    verdicts.record("upstream/a_64_mib_answer_is_cut_off_at_the_cap", outcome);

    // The verifier's stream: mcp-sts's address answers with 64 MiB.
    let mut flood = Flood::start(HUGE).await;
    let stream = stream_at(&flood.url, Duration::from_secs(10));
    let outcome = async {
        let polled = tokio::time::timeout(Duration::from_secs(30), stream.poll_once(T0))
            .await
            .map_err(|_| "the poll did not end")?;
        if polled.is_ok() {
            return Err("a 64 MiB answer was accepted".to_owned());
        }
        tokio::time::timeout(Duration::from_secs(30), flood.finished())
            .await
            .map_err(|_| "the verifier never hung up")?;
        let written = flood.written();
        eprintln!("verifier flood: {written} bytes written before the verifier hung up");
        match written {
            n if n < WRITTEN_BOUND => Ok(()),
            n => Err(format!("{} MiB read before the size check", n / (1024 * 1024))),
        }
    }
    .await;
    verdicts.record("verifier/a_64_mib_answer_is_cut_off_at_the_cap", outcome);

    // The verifier's stream: the poll endpoint never answers. Each poll ends at its
    // deadline, and a second poll is not held behind the first for ever.
    let base = stalling_transmitter().await;
    let stream = Arc::new(stream_at(&base, Duration::from_millis(300)));
    let outcome = async {
        let first = tokio::spawn({
            let stream = stream.clone();
            async move { stream.poll_once(T0).await }
        });
        let second = tokio::time::timeout(Duration::from_secs(10), stream.poll_once(T0))
            .await
            .map_err(|_| "a second poll waited more than 10 s behind a stalled one".to_owned())?;
        let first = tokio::time::timeout(Duration::from_secs(10), first)
            .await
            .map_err(|_| "a stalled poll ran more than 10 s".to_owned())?
            .map_err(|e| e.to_string())?;
        match (first, second) {
            (Err(a), Err(b)) if a.is_unavailable() && b.is_unavailable() => Ok(()),
            other => Err(format!("expected both polls unavailable, got {other:?}")),
        }
    }
    .await;
    verdicts.record("verifier/a_stalled_poll_ends_and_never_blocks_the_next", outcome);
    verdicts.finish();
}

/// Verification events fill only their own share of a queue.
#[tokio::test]
async fn verification_events_are_not_confused_with_revocations() {
    let sts = TestSts::start_opts(Options {
        admin: true,
        ..Options::default()
    })
    .await;
    let mut verdicts = Verdicts::new(GROUP);
    let receiver = Receiver::new(&sts.url, "orders-api", ORDERS_API_SECRET);
    let stream = receiver.create_poll_stream(&all_events(&sts.url)).await;
    let id = stream["stream_id"].as_str().unwrap_or_default().to_owned();
    let poll = stream["delivery"]["endpoint_url"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for _ in 0..4 {
        verify(&receiver, &id).await;
    }
    // The verification cap never holds back a revocation.
    sts.admin_revoke("session", "after-verifications").await;
    let sets = receiver.poll_now(&poll, &[]).await;
    let kinds: Vec<&str> = sets
        .values()
        .filter_map(Value::as_str)
        .map(|set| {
            let claims = decode_claims(set);
            if claims["events"].get(VERIFICATION).is_some() {
                "verification"
            } else if claims["events"].get(SESSION_REVOKED).is_some() {
                "revocation"
            } else {
                "other"
            }
        })
        .collect();
    verdicts.record(
        "verification/a_full_verification_queue_never_holds_back_a_revocation",
        if kinds.iter().filter(|k| **k == "verification").count() == 4 && kinds.contains(&"revocation") {
            Ok(())
        } else {
            Err(format!("queued: {kinds:?}"))
        },
    );
    verdicts.finish();
}
