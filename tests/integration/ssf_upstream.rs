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
use mcp_sts::ssf::upstream::UpstreamReceiver;
use mcp_sts_demo::dev_idp::DevIdp;
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

    let receiver = UpstreamReceiver::for_issuer(mcp_sts::ssf::upstream::Upstream::of(&sts.sts), &iss).unwrap();
    assert_eq!(
        receiver
            .poll_once(mcp_sts::ssf::upstream::Upstream::of(&sts.sts), sts.clock_now())
            .await
            .unwrap(),
        3
    );

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
    assert!(subjects.contains(&json!({
        "format": "complex",
        "session": {"format": "opaque", "id": "idp-sess-1"},
        "tenant": {"format": "uri", "uri": iss},
    })));
    let acks: Vec<String> = sets.keys().cloned().collect();
    downstream.poll_now(&our_poll, &acks).await;

    // The transmitter sends e2 again (a replay): acknowledged, not applied again, and
    // not re-announced. carol is reinstated first, so a second application would show.
    let reinstate = format!(
        "/subject/carol?issuer={}",
        form_urlencoded::byte_serialize(iss.as_bytes()).collect::<String>()
    );
    assert_eq!(sts.admin(Method::DELETE, &reinstate, None).await.status, 200);
    upstream.lock().unwrap().queued.push(("e2".into(), good[1].1.clone()));
    assert_eq!(
        receiver
            .poll_once(mcp_sts::ssf::upstream::Upstream::of(&sts.sts), sts.clock_now())
            .await
            .unwrap(),
        0
    );
    assert!(downstream.poll_now(&our_poll, &[]).await.is_empty());
    assert_eq!(audited(&sts).len(), 3, "a replay is not audited as a revocation");
    let listed = sts.admin(Method::GET, "", None).await;
    assert!(
        !listed.text.contains("\"carol\""),
        "a replayed SET is not applied twice"
    );
}

/// mcp-sts trusting the IdP `idp` (with its transmitter at `transmitter`) and a second
/// IdP `other`, with the admin API on.
async fn two_issuers(idp: &DevIdp, transmitter: &str, other: &DevIdp) -> TestSts {
    TestSts::start_opts(Options {
        admin: true,
        idp: Some(idp.clone()),
        issuer_extra: format!(
            "[issuers.ssf]\nconfiguration = \"{transmitter}/.well-known/ssf-configuration\"\nclient_id = \"mcp-sts\"\nclient_secret = \"upstream-secret\"\n"
        ),
        extra_tables: format!(
            "\n[[issuers]]\nissuer = \"{}\"\naudience = \"mcp-sts\"\nroles_claim = \"roles\"\n",
            other.issuer()
        ),
        ..Options::default()
    })
    .await
}

/// `(kind, value, issuer)` of every revocation in force.
async fn listed(sts: &TestSts) -> Vec<(String, String, Option<String>)> {
    let listed = sts.admin(Method::GET, "", None).await;
    let mut all: Vec<_> = listed.body["revocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["value"].as_str().unwrap().to_owned(),
                e["issuer"].as_str().map(str::to_owned),
            )
        })
        .collect();
    all.sort();
    all
}

#[tokio::test]
async fn upstream_events_reach_only_their_own_issuers_users_and_sessions_never_a_client() {
    let idp = DevIdp::start_local().await.unwrap();
    let other = DevIdp::start_local().await.unwrap();
    let (transmitter, upstream) = start_transmitter(idp.issuer().to_owned()).await;
    let sts = two_issuers(&idp, &transmitter, &other).await;
    let (iss, me) = (idp.issuer().to_owned(), sts.url.clone());
    let now = sts.clock_now();
    // The same names at both IdPs: users alice and bob, a session id, and a user of the
    // first IdP whose sub is the id of mcp-sts's client orders-mcp.
    let token_of = |issuer: &DevIdp, sub: &str, sid: &str| {
        issuer
            .user_token(sub, "mcp-sts", &["developer"], now, 3600, &json!({"sid": sid}))
            .unwrap()
    };
    let minted_before = |subject: String| {
        let sts = &sts;
        async move {
            let reply = sts.exchange(&subject, &[("audience", "orders-api")]).await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            reply.token()
        }
    };
    let alice_here = minted_before(token_of(&idp, "alice", "s-a1")).await;
    let alice_there = minted_before(token_of(&other, "alice", "s-b1")).await;
    assert_eq!(
        crate::support::sts::decode_claims(&alice_here)["sub_id"],
        json!({"format": "iss_sub", "iss": iss, "sub": "alice"}),
        "the minted token records the user's issuer"
    );

    let events = [
        (
            "d1",
            set(
                &idp,
                "secevent+jwt",
                "d1",
                &me,
                ACCOUNT_DISABLED,
                json!({"format": "iss_sub", "iss": iss, "sub": "alice"}),
            ),
        ),
        (
            "d2",
            set(
                &idp,
                "secevent+jwt",
                "d2",
                &me,
                SESSION_REVOKED,
                json!({"format": "opaque", "id": "shared-session"}),
            ),
        ),
        (
            "d3",
            set(
                &idp,
                "secevent+jwt",
                "d3",
                &me,
                ACCOUNT_DISABLED,
                json!({"format": "iss_sub", "iss": iss, "sub": "orders-mcp"}),
            ),
        ),
    ];
    upstream
        .lock()
        .unwrap()
        .queued
        .extend(events.iter().map(|(j, s)| (j.to_string(), s.clone())));
    let receiver = UpstreamReceiver::for_issuer(mcp_sts::ssf::upstream::Upstream::of(&sts.sts), &iss).unwrap();
    assert_eq!(
        receiver
            .poll_once(mcp_sts::ssf::upstream::Upstream::of(&sts.sts), now)
            .await
            .unwrap(),
        3
    );

    // Every entry names the IdP the event came from; none is an agent or a client, and
    // users stay revoked until reinstated while a session lasts the retention.
    let scoped = Some(iss.clone());
    assert_eq!(
        listed(&sts).await,
        [
            ("session".to_owned(), "shared-session".to_owned(), scoped.clone()),
            ("subject".to_owned(), "alice".to_owned(), scoped.clone()),
            ("subject".to_owned(), "orders-mcp".to_owned(), scoped.clone()),
        ]
    );
    let entries = sts.admin(Method::GET, "", None).await.body["revocations"].clone();
    for entry in entries.as_array().unwrap() {
        assert_eq!(entry["covers"], format!("issuer {iss}"), "{entry}");
        let expires = entry["expires_at"].as_u64().unwrap();
        match entry["kind"].as_str().unwrap() {
            "subject" => assert_eq!(expires, mcp_sts::revocation::NEVER, "{entry}"),
            _ => assert_eq!(expires, now + 30 * 86_400, "{entry}"),
        }
    }

    let exchange = |subject: String| {
        let sts = &sts;
        async move { sts.exchange(&subject, &[("audience", "orders-api")]).await }
    };
    // alice of this IdP is offboarded; alice of the other IdP is not.
    let refused = exchange(token_of(&idp, "alice", "s-a2")).await;
    refused.assert_error(400, "invalid_request");
    assert!(refused.text.contains("subject"), "{}", refused.text);
    assert_eq!(exchange(token_of(&other, "alice", "s-b2")).await.status, 200);
    // The session of this IdP is over; the same session id at the other IdP is not.
    let refused = exchange(token_of(&idp, "bob", "shared-session")).await;
    refused.assert_error(400, "invalid_request");
    assert!(refused.text.contains("session"), "{}", refused.text);
    assert_eq!(exchange(token_of(&other, "bob", "shared-session")).await.status, 200);
    // A user named like the client: the client still exchanges for everyone, and
    // tokens naming it as actor are still good.
    assert_eq!(exchange(token_of(&idp, "carol", "s-c")).await.status, 200);
    let hop = sts
        .exchange_as(
            ("orders-api", ORDERS_API_SECRET),
            &alice_there,
            crate::support::sts::ACCESS_TOKEN,
            &[("audience", "billing-api")],
        )
        .await;
    assert_eq!(hop.status, 200, "{}", hop.text);

    // Tokens minted before: this IdP's alice is inactive at introspection and cannot
    // hop further; the other IdP's alice is active.
    let active = |token: String| {
        let sts = &sts;
        async move {
            sts.introspect(("orders-api", ORDERS_API_SECRET), &token).await.body["active"]
                .as_bool()
                .unwrap()
        }
    };
    assert!(!active(alice_here.clone()).await);
    assert!(active(alice_there).await);
    let hop = sts
        .exchange_as(
            ("orders-api", ORDERS_API_SECRET),
            &alice_here,
            crate::support::sts::ACCESS_TOKEN,
            &[("audience", "billing-api")],
        )
        .await;
    hop.assert_error(400, "invalid_request");
}

#[tokio::test]
async fn an_event_older_than_the_replay_memory_is_refused_and_never_applied_twice() {
    let idp = DevIdp::start_local().await.unwrap();
    let other = DevIdp::start_local().await.unwrap();
    let (transmitter, upstream) = start_transmitter(idp.issuer().to_owned()).await;
    let sts = two_issuers(&idp, &transmitter, &other).await;
    let (iss, me) = (idp.issuer().to_owned(), sts.url.clone());
    let receiver = UpstreamReceiver::for_issuer(mcp_sts::ssf::upstream::Upstream::of(&sts.sts), &iss).unwrap();
    let disable = |jti: &str, sub: &str, iat: u64| {
        let claims = json!({
            "iss": iss, "aud": me, "jti": jti, "iat": iat,
            "sub_id": {"format": "iss_sub", "iss": iss, "sub": sub}, "events": {ACCOUNT_DISABLED: {}},
        });
        idp.sign(SigningAlgorithm::ES256, Some("secevent+jwt"), &claims)
            .unwrap()
    };
    let retention = 30 * 86_400;

    // carol is disabled upstream, then reinstated by an admin.
    let first = disable("o1", "carol", sts.clock_now());
    upstream.lock().unwrap().queued.push(("o1".into(), first.clone()));
    assert_eq!(
        receiver
            .poll_once(mcp_sts::ssf::upstream::Upstream::of(&sts.sts), sts.clock_now())
            .await
            .unwrap(),
        1
    );
    let path = format!(
        "/subject/carol?issuer={}",
        form_urlencoded::byte_serialize(iss.as_bytes()).collect::<String>()
    );
    assert_eq!(sts.admin(Method::DELETE, &path, None).await.status, 200);

    // Past the replay memory the once-only marker is forgotten: the same SET sent again
    // is refused by its age, not applied a second time.
    sts.clock.advance(retention + 3_600);
    upstream.lock().unwrap().queued.push(("o1".into(), first));
    // So is an event that was already older than the memory when it first arrived.
    let stale = disable("o2", "dave", sts.clock_now() - retention);
    upstream.lock().unwrap().queued.push(("o2".into(), stale));
    assert_eq!(
        receiver
            .poll_once(mcp_sts::ssf::upstream::Upstream::of(&sts.sts), sts.clock_now())
            .await
            .unwrap(),
        0
    );
    {
        let u = upstream.lock().unwrap();
        let mut errors = u.errors.clone();
        errors.sort();
        assert_eq!(
            errors,
            [
                ("o1".to_owned(), "iat_too_old".to_owned()),
                ("o2".to_owned(), "iat_too_old".to_owned())
            ]
        );
        assert!(u.queued.is_empty());
    }
    assert!(listed(&sts).await.is_empty(), "nothing was applied");
    let carol = idp
        .user_token("carol", "mcp-sts", &["developer"], sts.clock_now(), 3600, &json!({}))
        .unwrap();
    assert_eq!(
        sts.exchange(&carol, &[("audience", "orders-api")]).await.status,
        200,
        "the reinstated user stays reinstated"
    );

    // A fresh event is still applied.
    let fresh = disable("o3", "erin", sts.clock_now());
    upstream.lock().unwrap().queued.push(("o3".into(), fresh));
    assert_eq!(
        receiver
            .poll_once(mcp_sts::ssf::upstream::Upstream::of(&sts.sts), sts.clock_now())
            .await
            .unwrap(),
        1
    );
}
