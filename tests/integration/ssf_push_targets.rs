//! Push delivery cannot be aimed at internal addresses: a registered client chooses the
//! endpoint, so by default an internal IP literal is refused when the stream is created
//! (400, nothing stored) and a host name resolving to an internal address is never
//! connected to (its SETs stay queued). `[ssf] push_allowed_hosts` or
//! `push_allow_private_networks` lets an operator allow them. Real mcp-sts, real sockets.

use std::time::Duration;

use crate::support::ssf::{Receiver, all_events, push_receiver};
use crate::support::sts::{ORDERS_API_SECRET, Options, TestSts};
use mcp_sts::ssf::push::{Pusher, Pushing};
use mcp_sts::ssf::push_target::PushTargets;
use reqwest::Method;
use serde_json::json;

async fn start(ssf: &str) -> TestSts {
    TestSts::start_opts(Options {
        admin: true,
        extra_tables: format!("[ssf]\n{ssf}\n"),
        ..Options::default()
    })
    .await
}

fn push_stream(endpoint: &str, issuer: &str) -> serde_json::Value {
    json!({
        "delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": endpoint},
        "events_requested": all_events(issuer),
    })
}

fn pusher(sts: &TestSts) -> Pusher {
    Pusher::new(Duration::ZERO, PushTargets::from_config(&sts.sts.config().ssf))
}

#[tokio::test]
async fn internal_push_endpoints_are_refused_by_default() {
    let sts = start("").await;
    let receiver = Receiver::new(&sts.url, "orders-api", ORDERS_API_SECRET);
    let (url, seen) = push_receiver(vec![]).await;
    let port = url.trim_start_matches("http://127.0.0.1:").trim_end_matches("/events");
    for endpoint in [
        url.clone(),
        format!("http://[::1]:{port}/events"),
        "http://10.0.0.7/events".to_owned(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://[::ffff:192.168.1.1]/events".to_owned(),
        "http://0.0.0.0/events".to_owned(),
    ] {
        let refused = receiver
            .call(Method::POST, "/ssf/streams", Some(push_stream(&endpoint, &sts.url)))
            .await;
        refused.assert_error(400, "invalid_request");
        assert!(
            !refused.text.contains(&endpoint),
            "the URL is not echoed: {}",
            refused.text
        );
    }
    // Nothing was stored.
    let listed = receiver.call(Method::GET, "/ssf/streams", None).await;
    assert_eq!(listed.body, json!([]));

    // An update cannot sneak one in either.
    let poll = receiver.create_poll_stream(&all_events(&sts.url)).await;
    let id = poll["stream_id"].as_str().unwrap();
    let patch = json!({"stream_id": id, "delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": url}});
    let refused = receiver.call(Method::PATCH, "/ssf/streams", Some(patch)).await;
    refused.assert_error(400, "invalid_request");
    let read = receiver
        .call(Method::GET, &format!("/ssf/streams?stream_id={id}"), None)
        .await;
    assert_eq!(read.body, poll, "the stream is unchanged");

    // A name that resolves to loopback is accepted as a URL but never connected to:
    // the SET stays queued and the receiver sees nothing.
    let by_name = format!("http://localhost:{port}/events");
    let created = receiver
        .call(Method::POST, "/ssf/streams", Some(push_stream(&by_name, &sts.url)))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    sts.admin_revoke("session", "s-internal").await;
    let mut pusher = pusher(&sts);
    assert_eq!(pusher.deliver_once(&Pushing::of(&sts.sts)).await, 0);
    assert_eq!(pusher.deliver_once(&Pushing::of(&sts.sts)).await, 0);
    assert!(seen.lock().unwrap().is_empty(), "nothing reached the internal address");
}

#[tokio::test]
async fn an_operator_can_allow_internal_receivers() {
    for rule in [
        "push_allowed_hosts = [\"localhost\"]",
        "push_allow_private_networks = true",
    ] {
        let sts = start(rule).await;
        let receiver = Receiver::new(&sts.url, "orders-api", ORDERS_API_SECRET);
        let (url, seen) = push_receiver(vec![]).await;
        let by_name = url.replace("127.0.0.1", "localhost");
        let created = receiver
            .call(Method::POST, "/ssf/streams", Some(push_stream(&by_name, &sts.url)))
            .await;
        assert_eq!(created.status, 201, "{rule}: {}", created.text);
        sts.admin_revoke("session", "s-allowed").await;
        assert_eq!(pusher(&sts).deliver_once(&Pushing::of(&sts.sts)).await, 1, "{rule}");
        assert_eq!(seen.lock().unwrap().len(), 1, "{rule}");
    }
    // With a list, hosts off the list are refused, public or not.
    let sts = start("push_allowed_hosts = [\"receiver.internal\"]").await;
    let receiver = Receiver::new(&sts.url, "orders-api", ORDERS_API_SECRET);
    receiver
        .call(
            Method::POST,
            "/ssf/streams",
            Some(push_stream("https://receiver.example.com/events", &sts.url)),
        )
        .await
        .assert_error(400, "invalid_request");
}
