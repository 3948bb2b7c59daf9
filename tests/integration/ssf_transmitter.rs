//! The Shared Signals transmitter over real HTTP: metadata, stream management owned
//! by each receiver, every kind of revocation as a signed SET, RFC 8936 ack
//! semantics and long polling.

use crate::support::ssf::{Receiver, SESSION_REVOKED, VERIFICATION, all_events, push_receiver, verify_set};
use crate::support::sts::{BILLING_API_SECRET, ORDERS_API_SECRET, Options, TestSts};
use reqwest::Method;
use serde_json::{Value, json};

async fn start() -> TestSts {
    TestSts::start_opts(Options {
        admin: true,
        ..Options::default()
    })
    .await
}

fn endpoint(stream: &Value) -> String {
    stream["delivery"]["endpoint_url"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn configuration_document_names_every_endpoint() {
    let sts = start().await;
    let doc: Value = reqwest::get(format!("{}/.well-known/ssf-configuration", sts.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], sts.url);
    assert_eq!(doc["jwks_uri"], format!("{}/.well-known/jwks.json", sts.url));
    assert_eq!(
        doc["delivery_methods_supported"],
        json!(["urn:ietf:rfc:8936", "urn:ietf:rfc:8935"])
    );
    for (field, path) in [
        ("configuration_endpoint", "/ssf/streams"),
        ("status_endpoint", "/ssf/status"),
        ("verification_endpoint", "/ssf/verify"),
    ] {
        assert_eq!(doc[field], format!("{}{path}", sts.url), "{field}");
    }
}

#[tokio::test]
async fn every_revocation_kind_reaches_the_stream_as_one_signed_set() {
    let sts = start().await;
    let receiver = Receiver::new(&sts.url, "orders-api", ORDERS_API_SECRET);
    let stream = receiver.create_poll_stream(&all_events(&sts.url)).await;
    assert_eq!(stream["aud"], "orders-api");
    assert_eq!(stream["events_delivered"], json!(all_events(&sts.url)));
    let idp = sts.idp.issuer().to_owned();
    let cases = [
        (
            "subject",
            "carol@example.com",
            SESSION_REVOKED.to_owned(),
            json!({"format": "iss_sub", "iss": idp, "sub": "carol@example.com"}),
        ),
        (
            "session",
            "sess-9",
            SESSION_REVOKED.to_owned(),
            json!({"format": "opaque", "id": "sess-9"}),
        ),
        (
            "token",
            "jti-1",
            SESSION_REVOKED.to_owned(),
            json!({"format": "jwt_id", "iss": sts.url, "jti": "jti-1"}),
        ),
        (
            "agent",
            "rogue-agent",
            format!("{}/ssf/event-type/agent-revoked", sts.url),
            json!({"format": "opaque", "id": "rogue-agent"}),
        ),
        (
            "client",
            "watcher",
            format!("{}/ssf/event-type/client-revoked", sts.url),
            json!({"format": "opaque", "id": "watcher"}),
        ),
    ];
    for (kind, value, event_type, sub_id) in cases {
        sts.admin_revoke(kind, value).await;
        let sets = receiver.poll_now(&endpoint(&stream), &[]).await;
        assert_eq!(sets.len(), 1, "{kind}: {sets:?}");
        let (jti, set) = sets.iter().next().unwrap();
        let claims = verify_set(&sts.url, set.as_str().unwrap(), &sts.url, "orders-api").await;
        assert_eq!(&claims["jti"], jti);
        assert_eq!(claims["sub_id"], sub_id, "{kind}");
        let body = &claims["events"][&event_type];
        assert_eq!(body["event_timestamp"], sts.clock_now(), "{kind}: {claims}");
        assert_eq!(body["initiating_entity"], "admin");
        let ack = receiver.poll_now(&endpoint(&stream), std::slice::from_ref(jti)).await;
        assert!(ack.is_empty(), "{kind}: acked SET came back");
    }
}

#[tokio::test]
async fn an_unacknowledged_set_comes_back_until_acked() {
    let sts = start().await;
    let receiver = Receiver::new(&sts.url, "orders-api", ORDERS_API_SECRET);
    let stream = receiver.create_poll_stream(&all_events(&sts.url)).await;
    let url = endpoint(&stream);
    sts.admin_revoke("session", "s-1").await;
    sts.admin_revoke("session", "s-2").await;
    let first = receiver
        .poll(&url, json!({"maxEvents": 1, "returnImmediately": true}))
        .await;
    assert_eq!(first.body["sets"].as_object().unwrap().len(), 1);
    assert_eq!(first.body["moreAvailable"], true);
    let first_jti = first.body["sets"].as_object().unwrap().keys().next().unwrap().clone();
    // Not acknowledged: the next poll hands out the same SET again, then the other.
    let again = receiver.poll_now(&url, &[]).await;
    assert_eq!(again.len(), 2);
    assert!(again.contains_key(&first_jti));
    // Acknowledge one: only the other stays.
    let rest = receiver.poll_now(&url, std::slice::from_ref(&first_jti)).await;
    assert_eq!(rest.len(), 1);
    assert!(!rest.contains_key(&first_jti));
    // An error report counts as an answer too: the SET is not sent again.
    let other = rest.keys().next().unwrap().clone();
    let reply = receiver
        .poll(
            &url,
            json!({"setErrs": {other.clone(): {"err": "invalid_key", "description": "x"}}, "returnImmediately": true}),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert!(reply.body["sets"].as_object().unwrap().is_empty());
}

#[tokio::test]
async fn streams_get_only_what_they_asked_for() {
    let sts = start().await;
    let agents_only = Receiver::new(&sts.url, "orders-api", ORDERS_API_SECRET);
    let agent_event = format!("{}/ssf/event-type/agent-revoked", sts.url);
    let stream = agents_only
        .create_poll_stream(&[agent_event.clone(), "https://unknown/event".into()])
        .await;
    assert_eq!(stream["events_delivered"], json!([agent_event]));
    sts.admin_revoke("subject", "dave").await;
    assert!(agents_only.poll_now(&endpoint(&stream), &[]).await.is_empty());
    sts.admin_revoke("agent", "bad-agent").await;
    assert_eq!(agents_only.poll_now(&endpoint(&stream), &[]).await.len(), 1);
}

#[tokio::test]
async fn a_receiver_cannot_see_or_touch_another_receivers_stream() {
    let sts = start().await;
    let owner = Receiver::new(&sts.url, "orders-api", ORDERS_API_SECRET);
    let other = Receiver::new(&sts.url, "billing-api", BILLING_API_SECRET);
    let stream = owner.create_poll_stream(&all_events(&sts.url)).await;
    let id = stream["stream_id"].as_str().unwrap();
    sts.admin_revoke("session", "s-1").await;

    let attempts = [
        other
            .call(Method::GET, &format!("/ssf/streams?stream_id={id}"), None)
            .await,
        other
            .call(
                Method::PATCH,
                "/ssf/streams",
                Some(json!({"stream_id": id, "events_requested": []})),
            )
            .await,
        other
            .call(Method::PUT, "/ssf/streams", Some(json!({"stream_id": id})))
            .await,
        other
            .call(Method::DELETE, &format!("/ssf/streams?stream_id={id}"), None)
            .await,
        other
            .call(Method::GET, &format!("/ssf/status?stream_id={id}"), None)
            .await,
        other
            .call(
                Method::POST,
                "/ssf/status",
                Some(json!({"stream_id": id, "status": "disabled"})),
            )
            .await,
        other
            .call(Method::POST, "/ssf/verify", Some(json!({"stream_id": id})))
            .await,
        other.poll(&endpoint(&stream), json!({"returnImmediately": true})).await,
    ];
    for reply in attempts {
        reply.assert_error(404, "not_found");
    }
    assert_eq!(
        other.call(Method::GET, "/ssf/streams", None).await.body,
        json!([]),
        "the other receiver lists no streams"
    );
    // Nothing changed: the owner still has its stream, its events and its status.
    let read = owner
        .call(Method::GET, &format!("/ssf/streams?stream_id={id}"), None)
        .await;
    assert_eq!(read.body, stream);
    let status = owner
        .call(Method::GET, &format!("/ssf/status?stream_id={id}"), None)
        .await;
    assert_eq!(status.body["status"], "enabled");
    assert_eq!(owner.poll_now(&endpoint(&stream), &[]).await.len(), 1);
}

#[tokio::test]
async fn unauthenticated_or_wrong_credentials_are_invalid_client() {
    let sts = start().await;
    let stranger = Receiver::new(&sts.url, "orders-api", "wrong-secret");
    let body = json!({"delivery": {"method": "urn:ietf:rfc:8936"}});
    stranger
        .call(Method::POST, "/ssf/streams", Some(body.clone()))
        .await
        .assert_error(401, "invalid_client");
    let reply = reqwest::Client::new()
        .post(format!("{}/ssf/streams", sts.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    crate::support::sts::Reply::from(reply)
        .await
        .assert_error(401, "invalid_client");
    let owner = Receiver::new(&sts.url, "orders-api", ORDERS_API_SECRET);
    assert_eq!(
        owner.call(Method::GET, "/ssf/streams", None).await.body,
        json!([]),
        "nothing was created"
    );
}

#[tokio::test]
async fn malformed_stream_requests_are_refused_and_change_nothing() {
    let sts = start().await;
    let receiver = Receiver::new(&sts.url, "orders-api", ORDERS_API_SECRET);
    let bad = [
        json!({"delivery": {"method": "urn:example:carrier-pigeon"}}),
        json!({"delivery": {"method": "urn:ietf:rfc:8935"}}),
        json!({"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": "ftp://x/"}}),
        json!({"delivery": {"method": "urn:ietf:rfc:8936", "endpoint_url": "https://x/"}}),
        json!({"stream_id": "chosen-by-me"}),
        json!({"events_requested": "not a list"}),
    ];
    for body in bad {
        receiver
            .call(Method::POST, "/ssf/streams", Some(body.clone()))
            .await
            .assert_error(400, "invalid_request");
    }
    assert_eq!(receiver.call(Method::GET, "/ssf/streams", None).await.body, json!([]));
}

#[tokio::test]
async fn stream_lifecycle_update_status_verify_delete() {
    let sts = start().await;
    let receiver = Receiver::new(&sts.url, "orders-api", ORDERS_API_SECRET);
    let stream = receiver.create_poll_stream(&[]).await;
    let id = stream["stream_id"].as_str().unwrap().to_owned();
    assert_eq!(stream["events_delivered"], json!([]));

    let patched = receiver
        .call(
            Method::PATCH,
            "/ssf/streams",
            Some(json!({"stream_id": id, "events_requested": [SESSION_REVOKED], "description": "orders"})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.body["events_delivered"], json!([SESSION_REVOKED]));
    assert_eq!(patched.body["description"], "orders");

    // Verification events arrive whatever was requested, with the state echoed.
    let reply = receiver
        .call(
            Method::POST,
            "/ssf/verify",
            Some(json!({"stream_id": id, "state": "abc"})),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    let sets = receiver.poll_now(&endpoint(&stream), &[]).await;
    let (jti, set) = sets.iter().next().unwrap();
    let claims = verify_set(&sts.url, set.as_str().unwrap(), &sts.url, "orders-api").await;
    assert_eq!(claims["events"][VERIFICATION]["state"], "abc");
    assert_eq!(claims["sub_id"], json!({"format": "opaque", "id": id}));
    receiver.poll_now(&endpoint(&stream), std::slice::from_ref(jti)).await;

    // Paused: events are held, then delivered once enabled again.
    let paused = receiver
        .call(
            Method::POST,
            "/ssf/status",
            Some(json!({"stream_id": id, "status": "paused", "reason": "maintenance"})),
        )
        .await;
    assert_eq!(
        paused.body,
        json!({"stream_id": id, "status": "paused", "reason": "maintenance"})
    );
    sts.admin_revoke("session", "held").await;
    assert!(receiver.poll_now(&endpoint(&stream), &[]).await.is_empty());
    receiver
        .call(
            Method::POST,
            "/ssf/status",
            Some(json!({"stream_id": id, "status": "enabled"})),
        )
        .await;
    assert_eq!(receiver.poll_now(&endpoint(&stream), &[]).await.len(), 1);

    // Disabled: nothing queued any more.
    receiver
        .call(
            Method::POST,
            "/ssf/status",
            Some(json!({"stream_id": id, "status": "disabled"})),
        )
        .await;
    sts.admin_revoke("session", "dropped").await;

    let deleted = receiver
        .call(Method::DELETE, &format!("/ssf/streams?stream_id={id}"), None)
        .await;
    assert_eq!(deleted.status, 204);
    receiver
        .call(Method::GET, &format!("/ssf/streams?stream_id={id}"), None)
        .await
        .assert_error(404, "not_found");
    receiver
        .poll(&endpoint(&stream), json!({"returnImmediately": true}))
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn a_waiting_poll_is_woken_by_a_revocation() {
    let sts = start().await;
    let receiver = Receiver::new(&sts.url, "orders-api", ORDERS_API_SECRET);
    let stream = receiver.create_poll_stream(&all_events(&sts.url)).await;
    let url = endpoint(&stream);
    let waiting = {
        let receiver = receiver.clone();
        tokio::spawn(async move { receiver.poll(&url, json!({"returnImmediately": false})).await })
    };
    // The poll is parked (default long poll is 20 s); a revocation wakes it.
    tokio::task::yield_now().await;
    sts.admin_revoke("subject", "erin").await;
    let started = std::time::Instant::now();
    let reply = waiting.await.unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["sets"].as_object().unwrap().len(), 1);
}

#[tokio::test]
async fn revocation_through_revoke_endpoint_is_announced_as_jwt_id() {
    let sts = start().await;
    let receiver = Receiver::new(&sts.url, "orders-api", ORDERS_API_SECRET);
    let stream = receiver.create_poll_stream(&all_events(&sts.url)).await;
    let minted = sts
        .exchange(&sts.user_token("alice", &["developer"]), &[("audience", "orders-api")])
        .await;
    let jti = minted.claims()["jti"].as_str().unwrap().to_owned();
    let reply = sts
        .post_form(
            "/revoke",
            Some(("orders-api", ORDERS_API_SECRET)),
            &[("token", &minted.token())],
        )
        .await;
    assert_eq!(reply.status, 200);
    let sets = receiver.poll_now(&endpoint(&stream), &[]).await;
    let set = sets.values().next().unwrap().as_str().unwrap();
    let claims = verify_set(&sts.url, set, &sts.url, "orders-api").await;
    assert_eq!(
        claims["sub_id"],
        json!({"format": "jwt_id", "iss": sts.url, "jti": jti})
    );
    assert_eq!(claims["events"][SESSION_REVOKED]["initiating_entity"], "user");
}

#[tokio::test]
async fn revocation_issuer_must_be_trusted_and_only_for_users_and_sessions() {
    let sts = start().await;
    let cases = [
        json!({"kind": "subject", "value": "x", "issuer": "https://not-trusted"}),
        json!({"kind": "session", "value": "x", "issuer": "https://not-trusted"}),
        json!({"kind": "agent", "value": "x", "issuer": sts.idp.issuer()}),
        json!({"kind": "client", "value": "x", "issuer": sts.idp.issuer()}),
        json!({"kind": "token", "value": "x", "issuer": sts.idp.issuer()}),
    ];
    for body in cases {
        sts.admin(Method::POST, "", Some(body))
            .await
            .assert_error(400, "invalid_request");
    }
    let listed = sts.admin(Method::GET, "", None).await;
    assert_eq!(listed.body["revocations"], json!([]), "nothing was revoked");
    let named = sts
        .admin(
            Method::POST,
            "",
            Some(json!({"kind": "subject", "value": "x", "issuer": sts.idp.issuer()})),
        )
        .await;
    assert_eq!(named.status, 201, "{}", named.text);
}

#[tokio::test]
async fn push_delivery_sends_each_set_with_the_receivers_authorization_and_retries() {
    // The receiver listens on loopback, which push may reach only when listed.
    let sts = TestSts::start_opts(Options {
        admin: true,
        extra_tables: "[ssf]\npush_allowed_hosts = [\"127.0.0.1\"]\n".into(),
        ..Options::default()
    })
    .await;
    let (url, seen) = push_receiver(vec![503]).await;
    let receiver = Receiver::new(&sts.url, "orders-api", ORDERS_API_SECRET);
    let body = json!({
        "delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": url, "authorization_header": "Bearer push-secret"},
        "events_requested": all_events(&sts.url),
    });
    let created = receiver.call(Method::POST, "/ssf/streams", Some(body)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert!(
        !created.text.contains("push-secret"),
        "the authorization header is never echoed"
    );
    sts.admin_revoke("session", "pushed").await;

    // First attempt fails (503): nothing is lost, and the next round after the
    // backoff delivers it. A zero base backoff makes the retry immediate.
    let targets = mcp_sts::ssf::push_target::PushTargets::from_config(&sts.sts.config().ssf);
    let mut pusher = mcp_sts::ssf::push::Pusher::new(std::time::Duration::ZERO, targets);
    assert_eq!(pusher.deliver_once(&mcp_sts::ssf::push::Pushing::of(&sts.sts)).await, 0);
    assert_eq!(pusher.deliver_once(&mcp_sts::ssf::push::Pushing::of(&sts.sts)).await, 1);
    assert_eq!(
        pusher.deliver_once(&mcp_sts::ssf::push::Pushing::of(&sts.sts)).await,
        0,
        "acknowledged by the 202"
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0], seen[1], "the same SET was retried");
    assert_eq!(seen[1].0.as_deref(), Some("Bearer push-secret"));
    let claims = verify_set(&sts.url, &seen[1].1, &sts.url, "orders-api").await;
    assert_eq!(claims["sub_id"], json!({"format": "opaque", "id": "pushed"}));
}
