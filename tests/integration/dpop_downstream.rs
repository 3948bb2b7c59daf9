//! DPoP on the downstream side against the real mcp-sts, over real HTTP: the exchange
//! client holds a key and sends proofs (following server nonces), the verifier's axum
//! layer and the MCP kit accept a bound token only as `DPoP` with a proof by its key for
//! this very request, answer RFC 9449 §7.1 challenges, and refuse a copied token sent
//! as `Bearer`.

use std::sync::Arc;
use std::time::Duration;

use crate::dpop::{header, new_key, sign};
use crate::support::sts::{ORDERS_MCP_SECRET, Options, TestSts, decode_claims};
use axum::routing::get;
use axum::{Extension, Router};
use mcp_sts_contract::jose::dpop::token_hash;
use mcp_sts_downstream::client::{DpopKey, ExchangeRequest, StsClient, StsClientConfig};
use mcp_sts_downstream::mcp::{McpAuth, TrustedIssuer};
use mcp_sts_downstream::verify::{Authenticated, BearerAuthLayer, ExecutionIdentity, Verifier, VerifierConfig};
use serde_json::json;
use tokio::net::TcpListener;

/// A downstream API for `orders-api` behind the verifier's layer, at its public URL.
async fn orders_api(sts: &TestSts) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut config = VerifierConfig::new(&sts.url, "orders-api").public_url(&base);
    config.jwks_min_refresh_interval = Duration::ZERO;
    config.clock = Arc::new(sts.clock.clone());
    let verifier = Arc::new(Verifier::new(config).unwrap());
    let app = Router::new()
        .route(
            "/orders",
            get(|Extension(identity): Extension<ExecutionIdentity>| async move { identity.user().to_owned() }),
        )
        .layer(BearerAuthLayer::new(verifier));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

fn sts_client(sts: &TestSts, key: Option<DpopKey>) -> StsClient {
    let mut config = StsClientConfig::new(format!("{}/token", sts.url), "orders-mcp", ORDERS_MCP_SECRET);
    config.dpop = key;
    StsClient::new(config).unwrap().with_clock(Arc::new(sts.clock.clone()))
}

async fn get_with(url: &str, headers: &[(&str, String)]) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(url);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.send().await.unwrap()
}

/// Every `WWW-Authenticate` value of `response`, joined with ` | `.
pub(crate) fn challenge(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join(" | ")
}

#[tokio::test]
async fn the_exchange_client_binds_tokens_and_the_verifier_demands_the_proof() {
    let sts = TestSts::start().await;
    let api = orders_api(&sts).await;
    let url = format!("{api}/orders");
    let key = DpopKey::generate().unwrap();
    let client = sts_client(&sts, Some(key.clone()));
    let alice = sts.user_token("alice@example.com", &["developer"]);
    let token = client
        .exchange(&ExchangeRequest::new(alice.clone()).audience("orders-api"))
        .await
        .unwrap();
    assert_eq!(token.token_type, "DPoP");
    let access = token.access_token.expose().to_owned();
    assert_eq!(decode_claims(&access)["cnf"]["jkt"], key.thumbprint());

    // Presented as the client presents it: accepted.
    let headers = client.authorization(&token, "GET", &url).unwrap();
    let ok = get_with(&url, &headers).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "alice@example.com");

    // The same proof again: a replay.
    let replay = get_with(&url, &headers).await;
    assert_eq!(replay.status(), 401);
    assert!(
        challenge(&replay).starts_with("DPoP error=\"invalid_dpop_proof\""),
        "{}",
        challenge(&replay)
    );

    // A copied token sent as Bearer: refused with a DPoP challenge.
    let copied = get_with(&url, &[("authorization", format!("Bearer {access}"))]).await;
    assert_eq!(copied.status(), 401);
    let value = challenge(&copied);
    assert!(value.starts_with("DPoP error=\"invalid_token\""), "{value}");
    assert!(value.contains("algs=\"ES256"), "{value}");
    assert!(!value.contains(&access));

    let dpop = |proof: String| vec![("authorization", format!("DPoP {access}")), ("dpop", proof)];
    let now = sts.clock_now();
    let thief = DpopKey::generate().unwrap();
    let proof_claims = |htm: &str, htu: &str, iat: u64, ath: &str, jti: &str| json!({"jti": jti, "htm": htm, "htu": htu, "iat": iat, "ath": ath});
    let signer = new_key();
    let cases = [
        ("no proof", vec![("authorization", format!("DPoP {access}"))]),
        (
            "a proof by another key",
            dpop(thief.proof("GET", &url, now, Some(&access), None).unwrap()),
        ),
        (
            "wrong htm",
            dpop(key.proof("POST", &url, now, Some(&access), None).unwrap()),
        ),
        (
            "wrong htu",
            dpop(
                key.proof("GET", &format!("{api}/other"), now, Some(&access), None)
                    .unwrap(),
            ),
        ),
        (
            "ath of another token",
            dpop(key.proof("GET", &url, now, Some("another"), None).unwrap()),
        ),
        ("no ath", dpop(key.proof("GET", &url, now, None, None).unwrap())),
        (
            "stale iat",
            dpop(key.proof("GET", &url, now - 61, Some(&access), None).unwrap()),
        ),
        (
            "future iat",
            dpop(key.proof("GET", &url, now + 61, Some(&access), None).unwrap()),
        ),
        (
            "a foreign key's proof claiming the token's hash",
            dpop(sign(
                &signer,
                &header(&signer),
                &proof_claims("GET", &url, now, &token_hash(&access), "foreign"),
            )),
        ),
    ];
    for (name, headers) in cases {
        let response = get_with(&url, &headers).await;
        assert_eq!(response.status(), 401, "{name}");
        let value = challenge(&response);
        assert!(
            value.starts_with("DPoP error=\"invalid_dpop_proof\""),
            "{name}: {value}"
        );
    }

    // An unbound token still works as Bearer, and is refused under the DPoP scheme.
    let bearer = sts_client(&sts, None)
        .exchange(&ExchangeRequest::new(alice).audience("orders-api"))
        .await
        .unwrap();
    assert_eq!(bearer.token_type, "Bearer");
    let plain = bearer.access_token.expose().to_owned();
    let ok = get_with(&url, &[("authorization", format!("Bearer {plain}"))]).await;
    assert_eq!(ok.status(), 200);
    let wrong = get_with(
        &url,
        &[
            ("authorization", format!("DPoP {plain}")),
            ("dpop", key.proof("GET", &url, now, Some(&plain), None).unwrap()),
        ],
    )
    .await;
    assert_eq!(wrong.status(), 401);
    assert!(challenge(&wrong).starts_with("DPoP error=\"invalid_token\""));

    // No token: both schemes are offered.
    let none = get_with(&url, &[]).await;
    assert_eq!(none.status(), 401);
    let value = challenge(&none);
    assert!(value.contains("Bearer") && value.contains("DPoP algs=\""), "{value}");
}

#[tokio::test]
async fn the_exchange_client_follows_server_nonces() {
    let sts = TestSts::start_opts(Options {
        extra_tables: "\n[dpop]\nnonce = true\n".into(),
        ..Options::default()
    })
    .await;
    let key = DpopKey::generate().unwrap();
    let client = sts_client(&sts, Some(key.clone()));
    let alice = sts.user_token("alice@example.com", &["developer"]);
    for audience in ["orders-api", "inventory-api"] {
        let token = client
            .exchange(&ExchangeRequest::new(alice.clone()).audience(audience))
            .await
            .unwrap();
        assert_eq!(token.token_type, "DPoP");
        assert_eq!(
            decode_claims(token.access_token.expose())["cnf"]["jkt"],
            key.thumbprint()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_kit_accepts_a_bound_token_only_with_a_proof_for_its_resource() {
    let sts = TestSts::start_opts(Options {
        issuer_extra: "agent_claim = \"client_id\"".into(),
        ..Options::default()
    })
    .await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let resource = format!("http://{}/mcp", listener.local_addr().unwrap());
    let auth = McpAuth::builder(&resource)
        .trust(TrustedIssuer::discover(sts.idp.issuer()))
        .scopes_supported(["orders:read"])
        .clock(Arc::new(sts.clock.clone()))
        .build()
        .await
        .unwrap();
    let app = auth.serve(|_gate| Kit);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let key = DpopKey::generate().unwrap();
    let now = sts.clock_now();
    let token = sts
        .idp
        .user_token(
            "alice@example.com",
            &resource,
            &["developer"],
            now,
            3600,
            &json!({"client_id": "claude-desktop", "scope": "orders:read", "cnf": {"jkt": key.thumbprint()}}),
        )
        .unwrap();
    let post = |headers: Vec<(&'static str, String)>| {
        let resource = resource.clone();
        async move {
            let mut request = reqwest::Client::new()
                .post(&resource)
                .header("accept", "application/json, text/event-stream")
                .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                    "protocolVersion": "2025-06-18", "capabilities": {},
                    "clientInfo": {"name": "test", "version": "1"}}}));
            for (name, value) in headers {
                request = request.header(name, value);
            }
            request.send().await.unwrap()
        }
    };
    let with_proof = |proof: String| vec![("authorization", format!("DPoP {token}")), ("dpop", proof)];

    let ok = post(with_proof(
        key.proof("POST", &resource, now, Some(&token), None).unwrap(),
    ))
    .await;
    assert_eq!(ok.status(), 200, "{:?}", ok.headers());

    let copied = post(vec![("authorization", format!("Bearer {token}"))]).await;
    assert_eq!(copied.status(), 401);
    let value = challenge(&copied);
    assert!(value.starts_with("DPoP error=\"invalid_token\""), "{value}");
    assert!(value.contains("resource_metadata="), "{value}");

    let proof = key.proof("POST", &resource, now, Some(&token), None).unwrap();
    assert_eq!(post(with_proof(proof.clone())).await.status(), 200);
    for (name, headers) in [
        ("replayed", with_proof(proof)),
        (
            "for GET",
            with_proof(key.proof("GET", &resource, now, Some(&token), None).unwrap()),
        ),
        (
            "by another key",
            with_proof(
                DpopKey::generate()
                    .unwrap()
                    .proof("POST", &resource, now, Some(&token), None)
                    .unwrap(),
            ),
        ),
    ] {
        let response = post(headers).await;
        assert_eq!(response.status(), 401, "{name}");
        assert!(
            challenge(&response).starts_with("DPoP error=\"invalid_dpop_proof\""),
            "{name}"
        );
    }
    let none = post(vec![]).await;
    assert!(challenge(&none).contains("DPoP algs=\""));
}

#[tokio::test]
async fn a_bound_token_short_of_a_scope_is_challenged_in_the_dpop_scheme() {
    let sts = TestSts::start().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut config = VerifierConfig::new(&sts.url, "orders-api").public_url(&base);
    config.clock = Arc::new(sts.clock.clone());
    let verifier = Arc::new(Verifier::new(config).unwrap());
    let layered = Router::new()
        .route("/admin", get(|| async { "admin" }))
        .layer(BearerAuthLayer::new(Arc::clone(&verifier)).require_scope("orders:admin"));
    let app = Router::new()
        .route(
            "/extracted",
            get(|auth: Authenticated| async move { auth.require_scope("orders:admin").map(|_| "admin") }),
        )
        .with_state(verifier)
        .merge(layered);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let key = DpopKey::generate().unwrap();
    let alice = sts.user_token("alice@example.com", &["developer"]);
    let bound = sts_client(&sts, Some(key.clone()))
        .exchange(&ExchangeRequest::new(alice.clone()).audience("orders-api"))
        .await
        .unwrap();
    let unbound = sts_client(&sts, None)
        .exchange(&ExchangeRequest::new(alice).audience("orders-api"))
        .await
        .unwrap();
    let algs = mcp_sts_downstream::verify::dpop::challenge_algs();
    for path in ["/admin", "/extracted"] {
        let url = format!("{base}{path}");
        let access = bound.access_token.expose();
        let proof = key.proof("GET", &url, sts.clock_now(), Some(access), None).unwrap();
        let response = get_with(&url, &[("authorization", format!("DPoP {access}")), ("dpop", proof)]).await;
        assert_eq!(response.status(), 403, "{path}");
        assert_eq!(
            challenge(&response),
            format!("DPoP error=\"insufficient_scope\", scope=\"orders:admin\", algs=\"{algs}\""),
            "{path}"
        );
        let plain = unbound.access_token.expose();
        let response = get_with(&url, &[("authorization", format!("Bearer {plain}"))]).await;
        assert_eq!(response.status(), 403, "{path}");
        assert_eq!(
            challenge(&response),
            "Bearer error=\"insufficient_scope\", scope=\"orders:admin\"",
            "{path}"
        );
    }
}

/// An MCP server with no tools: the layer is what is under test.
#[derive(Clone)]
struct Kit;

impl rmcp::ServerHandler for Kit {}

#[tokio::test]
async fn a_resource_may_demand_its_own_server_nonces() {
    let sts = TestSts::start().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut config = VerifierConfig::new(&sts.url, "orders-api").public_url(&base);
    config.clock = Arc::new(sts.clock.clone());
    config.dpop_nonce_secret = Some("orders-api nonce secret".into());
    let verifier = Arc::new(Verifier::new(config).unwrap());
    let app = Router::new()
        .route(
            "/orders",
            get(|Extension(identity): Extension<ExecutionIdentity>| async move { identity.user().to_owned() }),
        )
        .layer(BearerAuthLayer::new(verifier));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let url = format!("{base}/orders");

    let key = DpopKey::generate().unwrap();
    let client = sts_client(&sts, Some(key.clone()));
    let alice = sts.user_token("alice@example.com", &["developer"]);
    let token = client
        .exchange(&ExchangeRequest::new(alice).audience("orders-api"))
        .await
        .unwrap();
    let access = token.access_token.expose().to_owned();
    let now = sts.clock_now();
    let present = |nonce: Option<&str>| {
        vec![
            ("authorization", format!("DPoP {access}")),
            ("dpop", key.proof("GET", &url, now, Some(&access), nonce).unwrap()),
        ]
    };
    let asked = get_with(&url, &present(None)).await;
    assert_eq!(asked.status(), 401);
    assert!(
        challenge(&asked).starts_with("DPoP error=\"use_dpop_nonce\""),
        "{}",
        challenge(&asked)
    );
    let nonce = asked.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    let made_up = get_with(&url, &present(Some("made-up"))).await;
    assert_eq!(made_up.status(), 401);
    assert!(made_up.headers().get("dpop-nonce").is_some());
    let ok = get_with(&url, &present(Some(&nonce))).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "alice@example.com");
}
