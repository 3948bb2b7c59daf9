//! mcp-sts as a receiver of its upstream IdP's Shared Signals: a small transmitter on
//! a real socket serves SETs signed with the IdP's keys; mcp-sts subscribes, verifies,
//! applies each SET exactly once, refuses forged ones, and re-announces what it
//! applied to its own receivers.

use std::sync::{Arc, Mutex};

use crate::support::ssf::{Receiver, SESSION_REVOKED, all_events, verify_set};
use crate::support::sts::{ORDERS_API_SECRET, Options, TestSts};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use mcp_sts::config::SigningAlgorithm;
use mcp_sts::dev_idp::DevIdp;
use mcp_sts::ssf::upstream::UpstreamReceiver;
use reqwest::Method;
use serde_json::{Value, json};

const CREDENTIAL_CHANGE: &str = "https://schemas.openid.net/secevent/caep/event-type/credential-change";
const ACCOUNT_DISABLED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-disabled";

/// What the fake transmitter holds: SETs waiting, and what the receiver said.
#[derive(Default)]
struct Upstream {
    queued: Vec<(String, String)>,
    acked: Vec<String>,
    errors: Vec<(String, String)>,
    auth: Vec<String>,
}

type Shared = Arc<Mutex<Upstream>>;

async fn start_transmitter(idp_issuer: String) -> (String, Shared) {
    let state: Shared = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = json!({
        "issuer": idp_issuer,
        "configuration_endpoint": format!("{base}/streams"),
        "delivery_methods_supported": ["urn:ietf:rfc:8936"],
    });
    let created =
        json!({"stream_id": "s1", "delivery": {"method": "urn:ietf:rfc:8936", "endpoint_url": format!("{base}/poll")}});
    let app = axum::Router::new()
        .route(
            "/.well-known/ssf-configuration",
            get(move || async move { Json(config) }),
        )
        .route(
            "/streams",
            get(|| async { Json(json!([])) }).post(move || async move { (StatusCode::CREATED, Json(created)) }),
        )
        .route(
            "/poll",
            post(
                |State(state): State<Shared>, headers: axum::http::HeaderMap, Json(body): Json<Value>| async move {
                    let mut s = state.lock().unwrap();
                    s.auth.push(headers["authorization"].to_str().unwrap().to_owned());
                    for jti in body["ack"].as_array().unwrap() {
                        let jti = jti.as_str().unwrap().to_owned();
                        s.queued.retain(|(j, _)| *j != jti);
                        s.acked.push(jti);
                    }
                    for (jti, err) in body["setErrs"].as_object().unwrap() {
                        s.queued.retain(|(j, _)| j != jti);
                        s.errors
                            .push((jti.clone(), err["description"].as_str().unwrap_or("").to_owned()));
                    }
                    let max = body["maxEvents"].as_u64().unwrap() as usize;
                    let sets: serde_json::Map<String, Value> = s
                        .queued
                        .iter()
                        .take(max)
                        .map(|(j, set)| (j.clone(), json!(set)))
                        .collect();
                    Json(json!({"sets": sets, "moreAvailable": false}))
                },
            ),
        )
        .with_state(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, state)
}

/// A SET from the IdP, signed with its key (or another IdP's, for forgeries).
fn set(idp: &DevIdp, typ: &str, jti: &str, aud: &str, event: &str, sub_id: Value) -> String {
    let claims = json!({
        "iss": idp.issuer(), "aud": aud, "jti": jti, "iat": crate::support::sts::T0,
        "sub_id": sub_id, "events": {event: {"event_timestamp": crate::support::sts::T0}},
    });
    idp.sign(SigningAlgorithm::ES256, Some(typ), &claims).unwrap()
}

#[tokio::test]
async fn upstream_events_become_revocations_exactly_once_and_forgeries_are_refused() {
    let idp = DevIdp::start_local().await.unwrap();
    let (transmitter, upstream) = start_transmitter(idp.issuer().to_owned()).await;
    let sts = TestSts::start_opts(Options {
        admin: true,
        idp: Some(idp.clone()),
        issuer_extra: format!(
            "[issuers.ssf]\nconfiguration = \"{transmitter}/.well-known/ssf-configuration\"\nclient_id = \"mcp-sts\"\nclient_secret = \"upstream-secret\"\n"
        ),
        ..Options::default()
    })
    .await;
    // Our own receiver, to see what mcp-sts re-announces.
    let downstream = Receiver::new(&sts.url, "orders-api", ORDERS_API_SECRET);
    let stream = downstream.create_poll_stream(&all_events(&sts.url)).await;
    let our_poll = stream["delivery"]["endpoint_url"].as_str().unwrap().to_owned();

    let iss = idp.issuer().to_owned();
    let forger = DevIdp::start_local().await.unwrap();
    let me = sts.url.clone();
    let good = [
        (
            "e1",
            set(
                &idp,
                "secevent+jwt",
                "e1",
                &me,
                SESSION_REVOKED,
                json!({"format": "opaque", "id": "idp-sess-1"}),
            ),
        ),
        (
            "e2",
            set(
                &idp,
                "secevent+jwt",
                "e2",
                &me,
                ACCOUNT_DISABLED,
                json!({"format": "iss_sub", "iss": iss, "sub": "carol"}),
            ),
        ),
        (
            "e3",
            set(
                &idp,
                "secevent+jwt",
                "e3",
                &me,
                CREDENTIAL_CHANGE,
                json!({"format": "iss_sub", "iss": iss, "sub": "dave"}),
            ),
        ),
    ];
    // A forged SET claims the IdP's issuer but is signed by another key; the others
    // break one rule each.
    let forged = {
        let claims = json!({"iss": iss, "aud": me, "jti": "f1", "iat": crate::support::sts::T0,
            "sub_id": {"format": "iss_sub", "iss": iss, "sub": "mallory"}, "events": {ACCOUNT_DISABLED: {}}});
        forger
            .sign(SigningAlgorithm::ES256, Some("secevent+jwt"), &claims)
            .unwrap()
    };
    let bad = [
        ("f1", forged, "signature"),
        (
            "f2",
            set(
                &idp,
                "JWT",
                "f2",
                &me,
                ACCOUNT_DISABLED,
                json!({"format": "iss_sub", "iss": iss, "sub": "mallory"}),
            ),
            "typ",
        ),
        (
            "f3",
            set(
                &idp,
                "secevent+jwt",
                "f3",
                "https://someone-else",
                ACCOUNT_DISABLED,
                json!({"format": "iss_sub", "iss": iss, "sub": "mallory"}),
            ),
            "aud",
        ),
        (
            "f4",
            set(
                &idp,
                "secevent+jwt",
                "f4",
                &me,
                ACCOUNT_DISABLED,
                json!({"format": "iss_sub", "iss": "https://other-idp", "sub": "mallory"}),
            ),
            "subject",
        ),
    ];
    {
        let mut u = upstream.lock().unwrap();
        u.queued.extend(good.iter().map(|(j, s)| (j.to_string(), s.clone())));
        u.queued.extend(bad.iter().map(|(j, s, _)| (j.to_string(), s.clone())));
    }

    let receiver = UpstreamReceiver::for_issuer(&sts.sts, &iss).unwrap();
    assert_eq!(receiver.poll_once(&sts.sts, sts.clock_now()).await.unwrap(), 3);

    let listed = sts.admin(Method::GET, "", None).await;
    let mut revoked: Vec<(String, String)> = listed.body["revocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    revoked.sort();
    let expected: Vec<(String, String)> = [("session", "idp-sess-1"), ("subject", "carol"), ("subject", "dave")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(revoked, expected, "only the good SETs were applied");
    let audited = |sts: &TestSts| {
        let mut targets: Vec<String> = sts
            .audit_events()
            .iter()
            .filter(|e| e["event"] == "upstream_revoke" && e["decision"] == "allow")
            .map(|e| e["target"].as_str().unwrap_or_default().to_owned())
            .collect();
        targets.sort();
        targets
    };
    assert_eq!(
        audited(&sts),
        ["session:idp-sess-1", "subject:carol", "subject:dave"],
        "each applied upstream revocation is audited"
    );
    {
        let u = upstream.lock().unwrap();
        assert_eq!(u.acked, vec!["e1", "e2", "e3"]);
        let mut errors = u.errors.clone();
        errors.sort();
        let want: Vec<(String, String)> = bad
            .iter()
            .map(|(j, _, rule)| (j.to_string(), rule.to_string()))
            .collect();
        assert_eq!(errors, want);
        assert!(u.queued.is_empty());
        assert!(u.auth.iter().all(|a| a.starts_with("Basic ")));
    }

    // Our receivers heard each applied revocation, as our own signed SETs.
    let sets = downstream.poll_now(&our_poll, &[]).await;
    assert_eq!(sets.len(), 3);
    let mut subjects = Vec::new();
    for set in sets.values() {
        let claims = verify_set(&sts.url, set.as_str().unwrap(), &sts.url, "orders-api").await;
        subjects.push(claims["sub_id"].clone());
    }
    assert!(subjects.contains(&json!({"format": "iss_sub", "iss": iss, "sub": "carol"})));
    assert!(subjects.contains(&json!({"format": "opaque", "id": "idp-sess-1"})));
    let acks: Vec<String> = sets.keys().cloned().collect();
    downstream.poll_now(&our_poll, &acks).await;

    // The transmitter sends e2 again (a replay): acknowledged, not applied again, and
    // not re-announced. carol is reinstated first, so a second application would show.
    sts.admin(Method::DELETE, "/subject/carol", None).await;
    upstream.lock().unwrap().queued.push(("e2".into(), good[1].1.clone()));
    assert_eq!(receiver.poll_once(&sts.sts, sts.clock_now()).await.unwrap(), 0);
    assert!(downstream.poll_now(&our_poll, &[]).await.is_empty());
    assert_eq!(audited(&sts).len(), 3, "a replay is not audited as a revocation");
    let listed = sts.admin(Method::GET, "", None).await;
    assert!(
        !listed.text.contains("\"carol\""),
        "a replayed SET is not applied twice"
    );
}
