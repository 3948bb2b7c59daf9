//! mcp-sts's upstream receiver and the verifier's revocation stream are one Shared
//! Signals receiver: held against the same transmitter on a real socket, with the same
//! bad SETs, they refuse alike and tell the transmitter alike (`setErrs` code and rule),
//! and apply nothing.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use mcp_sts::config::SigningAlgorithm;
use mcp_sts::ssf::upstream::{Upstream, UpstreamReceiver};
use mcp_sts_demo::dev_idp::DevIdp;
use mcp_sts_downstream::verify::{RevocationStream, RevocationStreamConfig};
use serde_json::{Value, json};

use crate::support::sts::{Options, T0, TestSts};

const ACCOUNT_DISABLED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-disabled";

/// What the transmitter holds: SETs waiting, and what the receiver said of each.
#[derive(Default)]
struct Transmitter {
    queued: Vec<(String, String)>,
    acked: Vec<String>,
    /// (jti, `err`, `description`) of every `setErrs` entry.
    errors: Vec<(String, String, String)>,
}

type Shared = Arc<Mutex<Transmitter>>;

/// A transmitter for `issuer` on a real socket: metadata, one poll stream, RFC 8936 poll.
async fn start_transmitter(issuer: String) -> (String, Shared) {
    let state: Shared = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = json!({ "issuer": issuer, "configuration_endpoint": format!("{base}/streams") });
    let created = json!({
        "stream_id": "s1",
        "delivery": {"method": "urn:ietf:rfc:8936", "endpoint_url": format!("{base}/poll")},
    });
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
            post(|State(state): State<Shared>, Json(body): Json<Value>| async move {
                let mut s = state.lock().unwrap();
                for jti in body["ack"].as_array().unwrap() {
                    let jti = jti.as_str().unwrap().to_owned();
                    s.queued.retain(|(j, _)| *j != jti);
                    s.acked.push(jti);
                }
                for (jti, err) in body["setErrs"].as_object().unwrap() {
                    s.queued.retain(|(j, _)| j != jti);
                    let text = |name: &str| err[name].as_str().unwrap_or_default().to_owned();
                    s.errors.push((jti.clone(), text("err"), text("description")));
                }
                let max = body["maxEvents"].as_u64().unwrap() as usize;
                let sets: serde_json::Map<String, Value> = s
                    .queued
                    .iter()
                    .take(max)
                    .map(|(j, set)| (j.clone(), json!(set)))
                    .collect();
                Json(json!({"sets": sets, "moreAvailable": false}))
            }),
        )
        .with_state(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, state)
}

/// Four SETs addressed to `aud`, each breaking one rule, and what a receiver must say
/// of each: (jti, SET, `err`, `description`).
fn bad_sets(idp: &DevIdp, forger: &DevIdp, aud: &str) -> Vec<(String, String, &'static str, &'static str)> {
    let claims = |jti: &str, iss: &str, aud: &str| {
        json!({
            "iss": iss, "aud": aud, "jti": jti, "iat": T0,
            "sub_id": {"format": "iss_sub", "iss": idp.issuer(), "sub": "mallory"},
            "events": {ACCOUNT_DISABLED: {"event_timestamp": T0}},
        })
    };
    let sign =
        |signer: &DevIdp, typ: &str, claims: Value| signer.sign(SigningAlgorithm::ES256, Some(typ), &claims).unwrap();
    let iss = idp.issuer();
    vec![
        (
            "forged".into(),
            sign(forger, "secevent+jwt", claims("forged", iss, aud)),
            "invalid_key",
            "signature",
        ),
        (
            "typed".into(),
            sign(idp, "JWT", claims("typed", iss, aud)),
            "invalid_request",
            "typ",
        ),
        (
            "misaddressed".into(),
            sign(idp, "secevent+jwt", claims("misaddressed", iss, "https://someone-else")),
            "invalid_request",
            "aud",
        ),
        (
            "impostor".into(),
            sign(idp, "secevent+jwt", claims("impostor", "https://other-idp", aud)),
            "invalid_request",
            "iss",
        ),
    ]
}

fn queue(transmitter: &Shared, sets: &[(String, String, &str, &str)]) {
    let mut t = transmitter.lock().unwrap();
    t.queued
        .extend(sets.iter().map(|(jti, set, _, _)| (jti.clone(), set.clone())));
}

/// What the transmitter was told, in the order the SETs were queued.
fn told(transmitter: &Shared, sets: &[(String, String, &str, &str)]) -> Vec<(String, String, String)> {
    let t = transmitter.lock().unwrap();
    assert!(t.acked.is_empty(), "a bad SET was acknowledged: {:?}", t.acked);
    assert!(t.queued.is_empty(), "a SET was left unanswered");
    sets.iter()
        .map(|(jti, ..)| t.errors.iter().find(|(j, ..)| j == jti).cloned().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn both_receivers_refuse_bad_sets_alike_and_apply_nothing() {
    let idp = DevIdp::start_local().await.unwrap();
    let forger = DevIdp::start_local().await.unwrap();
    let expected = |sets: &[(String, String, &str, &str)]| -> Vec<(String, String, String)> {
        sets.iter()
            .map(|(jti, _, err, rule)| (jti.clone(), (*err).to_owned(), (*rule).to_owned()))
            .collect()
    };

    // mcp-sts receiving its IdP's events.
    let (upstream_url, upstream) = start_transmitter(idp.issuer().to_owned()).await;
    let sts = TestSts::start_opts(Options {
        admin: true,
        idp: Some(idp.clone()),
        issuer_extra: format!(
            "[issuers.ssf]\nconfiguration = \"{upstream_url}/.well-known/ssf-configuration\"\nbearer_token = \"t\"\n"
        ),
        ..Options::default()
    })
    .await;
    let sets = bad_sets(&idp, &forger, &sts.url);
    queue(&upstream, &sets);
    let receiver = UpstreamReceiver::for_issuer(Upstream::of(&sts.sts), idp.issuer()).unwrap();
    assert_eq!(
        receiver
            .poll_once(Upstream::of(&sts.sts), sts.clock_now())
            .await
            .unwrap(),
        0
    );
    assert_eq!(told(&upstream, &sets), expected(&sets));
    let listed = sts.admin(reqwest::Method::GET, "", None).await;
    assert_eq!(listed.body["revocations"], json!([]), "nothing is revoked");

    // A downstream service receiving the same transmitter's events.
    let (downstream_url, downstream) = start_transmitter(idp.issuer().to_owned()).await;
    let mut config = RevocationStreamConfig::new(idp.issuer(), "orders-api", "orders-api-secret");
    config.configuration_url = format!("{downstream_url}/.well-known/ssf-configuration");
    config.jwks_uri = idp.jwks_uri();
    let stream = RevocationStream::new(config).unwrap();
    let sets = bad_sets(&idp, &forger, "orders-api");
    queue(&downstream, &sets);
    assert_eq!(stream.poll_once(T0).await.unwrap(), 0);
    assert_eq!(told(&downstream, &sets), expected(&sets));
    assert_eq!(
        stream.heard(mcp_sts_contract::revocation::RevocationKind::Subject, "mallory"),
        None
    );
}
