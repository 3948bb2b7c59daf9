//! The token-exchange client against a scripted token endpoint on 127.0.0.1:0.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use mcp_sts_contract::clock::ManualClock;
use mcp_sts_downstream::client::{
    ClientAuth, ErrorCode, ExchangeRequest, JWT_TOKEN_TYPE, OAuthErrorCode, StsClient, StsClientConfig, StsError,
    TOKEN_EXCHANGE_GRANT,
};
use serde_json::json;

/// One request as the endpoint saw it.
#[derive(Debug, Clone)]
struct Seen {
    authorization: Option<String>,
    content_type: Option<String>,
    traceparent: Option<String>,
    form: Vec<(String, String)>,
}

impl Seen {
    fn field(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Endpoint {
    hits: AtomicUsize,
    expires_in: AtomicU64,
    seen: Mutex<Vec<Seen>>,
    scripted: Mutex<VecDeque<(u16, String)>>,
}

impl Endpoint {
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn script(&self, status: u16, body: &str) {
        self.scripted.lock().unwrap().push_back((status, body.to_owned()));
    }

    fn last(&self) -> Seen {
        self.seen.lock().unwrap().last().cloned().unwrap()
    }
}

async fn token(State(ep): State<Arc<Endpoint>>, headers: HeaderMap, body: String) -> Response {
    let n = ep.hits.fetch_add(1, Ordering::SeqCst) + 1;
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
    ep.seen.lock().unwrap().push(Seen {
        authorization: header("authorization"),
        content_type: header("content-type"),
        traceparent: header("traceparent"),
        form: form_urlencoded::parse(body.as_bytes()).into_owned().collect(),
    });
    if let Some((status, body)) = ep.scripted.lock().unwrap().pop_front() {
        let status = StatusCode::from_u16(status).unwrap();
        return (status, [("content-type", "application/json")], body).into_response();
    }
    let mut answer = json!({
        "access_token": format!("minted-{n}"),
        "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "token_type": "Bearer",
        "scope": "orders:read",
    });
    match ep.expires_in.load(Ordering::SeqCst) {
        0 => {}
        secs => answer["expires_in"] = json!(secs),
    }
    axum::Json(answer).into_response()
}

async fn start() -> (Arc<Endpoint>, String) {
    let ep = Arc::new(Endpoint {
        expires_in: AtomicU64::new(300),
        ..Endpoint::default()
    });
    let app = Router::new().route("/token", post(token)).with_state(Arc::clone(&ep));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (ep, format!("http://{addr}/token"))
}

fn client(url: &str) -> StsClient {
    StsClient::new(StsClientConfig::new(url, "orders:mcp", "p@ss word/é")).unwrap()
}

#[tokio::test]
async fn basic_auth_and_form_fields_are_sent_as_rfc_8693_asks() {
    let (ep, url) = start().await;
    let client = client(&url);
    let request = ExchangeRequest::new("user-jwt")
        .actor("agent-jwt", JWT_TOKEN_TYPE)
        .audience("orders-api")
        .scopes(["orders:read", "orders:write"])
        .traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    let minted = client.exchange(&request).await.unwrap();

    assert_eq!(minted.access_token.expose(), "minted-1");
    assert_eq!(minted.token_type, "Bearer");
    assert_eq!(
        minted.issued_token_type,
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert_eq!(minted.expires_in, Some(Duration::from_secs(300)));
    assert_eq!(minted.scope.as_deref(), Some("orders:read"));
    let debug = format!("{minted:?} {request:?}");
    assert!(
        !debug.contains("minted-1") && !debug.contains("user-jwt") && !debug.contains("agent-jwt"),
        "{debug}"
    );

    let seen = ep.last();
    // RFC 6749 §2.3.1: id and secret are form-urlencoded before base64.
    let expected = base64::engine::general_purpose::STANDARD.encode("orders%3Amcp:p%40ss+word%2F%C3%A9");
    assert_eq!(
        seen.authorization.as_deref(),
        Some(format!("Basic {expected}").as_str())
    );
    assert_eq!(seen.content_type.as_deref(), Some("application/x-www-form-urlencoded"));
    assert_eq!(
        seen.traceparent.as_deref(),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    );
    let expected_form = [
        ("grant_type", TOKEN_EXCHANGE_GRANT),
        ("subject_token", "user-jwt"),
        ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
        ("actor_token", "agent-jwt"),
        ("actor_token_type", "urn:ietf:params:oauth:token-type:jwt"),
        ("audience", "orders-api"),
        ("scope", "orders:read orders:write"),
    ];
    let expected_form: Vec<(String, String)> = expected_form
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(seen.form, expected_form);
}

#[tokio::test]
async fn client_secret_post_puts_credentials_in_the_form() {
    let (ep, url) = start().await;
    let mut config = StsClientConfig::new(&url, "orders-mcp", "s3cret");
    config.auth = ClientAuth::ClientSecretPost;
    let client = StsClient::new(config).unwrap();
    let request = ExchangeRequest::new("user-jwt").resource("https://orders.example.com/api");
    client.exchange(&request).await.unwrap();

    let seen = ep.last();
    assert_eq!(seen.authorization, None);
    assert_eq!(seen.traceparent, None);
    assert_eq!(seen.field("client_id"), Some("orders-mcp"));
    assert_eq!(seen.field("client_secret"), Some("s3cret"));
    assert_eq!(seen.field("resource"), Some("https://orders.example.com/api"));
    assert_eq!(seen.field("audience"), None);
    assert_eq!(seen.field("scope"), None);
    assert_eq!(seen.field("actor_token"), None);
    assert_eq!(seen.field("actor_token_type"), None);
}

#[tokio::test]
async fn minted_tokens_are_cached_per_subject_actor_audience_and_scope() {
    let (ep, url) = start().await;
    let client = client(&url);
    let request = ExchangeRequest::new("user-jwt")
        .audience("orders-api")
        .scopes(["b", "a"]);

    let first = client.exchange(&request).await.unwrap();
    let second = client.exchange(&request).await.unwrap();
    assert_eq!(ep.hits(), 1, "second call is served from the cache");
    assert_eq!(first, second);

    let reordered = ExchangeRequest::new("user-jwt")
        .audience("orders-api")
        .scopes(["a", "b"]);
    client.exchange(&reordered).await.unwrap();
    assert_eq!(ep.hits(), 1, "scope order does not matter");

    client.exchange(&request.clone().audience("billing-api")).await.unwrap();
    assert_eq!(ep.hits(), 2);
    client
        .exchange(
            &ExchangeRequest::new("other-user")
                .audience("orders-api")
                .scopes(["a", "b"]),
        )
        .await
        .unwrap();
    assert_eq!(ep.hits(), 3);
    client
        .exchange(&request.clone().actor("agent-jwt", JWT_TOKEN_TYPE))
        .await
        .unwrap();
    assert_eq!(ep.hits(), 4);
    client.exchange(&request.clone().scopes(["a"])).await.unwrap();
    assert_eq!(ep.hits(), 5);
    assert_eq!(client.cached_tokens(), 5);

    client.exchange_uncached(&request).await.unwrap();
    assert_eq!(ep.hits(), 6);
}

#[tokio::test]
async fn cached_tokens_are_dropped_shortly_before_expiry() {
    let (ep, url) = start().await;
    let clock = ManualClock::new(1_900_000_000);
    let mut config = StsClientConfig::new(&url, "orders:mcp", "p@ss word/é");
    config.clock = Arc::new(clock.clone());
    let client = StsClient::new(config).unwrap();
    let request = ExchangeRequest::new("user-jwt").audience("orders-api");

    ep.expires_in.store(100, Ordering::SeqCst);
    client.exchange(&request).await.unwrap();
    client.exchange(&request).await.unwrap();
    assert_eq!(ep.hits(), 1);
    clock.advance(89);
    client.exchange(&request).await.unwrap();
    assert_eq!(ep.hits(), 1, "reused for the first 90 % of the lifetime");
    clock.advance(1);
    client.exchange(&request).await.unwrap();
    assert_eq!(ep.hits(), 2, "refetched within the last 10 % of the lifetime");

    // Long lifetimes keep at most a 30 s margin.
    let long = ExchangeRequest::new("user-jwt").audience("inventory-api");
    ep.expires_in.store(3600, Ordering::SeqCst);
    client.exchange(&long).await.unwrap();
    clock.advance(3569);
    client.exchange(&long).await.unwrap();
    assert_eq!(ep.hits(), 3);
    clock.advance(1);
    client.exchange(&long).await.unwrap();
    assert_eq!(ep.hits(), 4, "refetched 30 s before expiry");

    // Without expires_in the lifetime is unknown: nothing is cached.
    ep.expires_in.store(0, Ordering::SeqCst);
    let other = ExchangeRequest::new("user-jwt").audience("billing-api");
    client.exchange(&other).await.unwrap();
    client.exchange(&other).await.unwrap();
    assert_eq!(ep.hits(), 6);
}

#[tokio::test]
async fn cache_is_bounded() {
    let (_ep, url) = start().await;
    let mut config = StsClientConfig::new(&url, "orders-mcp", "s3cret");
    config.cache_capacity = 2;
    let client = StsClient::new(config).unwrap();
    for aud in ["a", "b", "c", "d"] {
        client
            .exchange(&ExchangeRequest::new("user-jwt").audience(aud))
            .await
            .unwrap();
    }
    assert_eq!(client.cached_tokens(), 2);
}

#[tokio::test]
async fn sts_errors_are_typed_with_code_description_and_status() {
    let (ep, url) = start().await;
    let client = client(&url);
    let request = ExchangeRequest::new("user-jwt").audience("orders-api");
    let cases = [
        (400, "invalid_request", OAuthErrorCode::Known(ErrorCode::InvalidRequest)),
        (401, "invalid_client", OAuthErrorCode::Known(ErrorCode::InvalidClient)),
        (
            400,
            "unauthorized_client",
            OAuthErrorCode::Known(ErrorCode::UnauthorizedClient),
        ),
        (
            400,
            "unsupported_grant_type",
            OAuthErrorCode::Known(ErrorCode::UnsupportedGrantType),
        ),
        (400, "invalid_scope", OAuthErrorCode::Known(ErrorCode::InvalidScope)),
        (400, "invalid_target", OAuthErrorCode::Known(ErrorCode::InvalidTarget)),
        (
            503,
            "temporarily_unavailable",
            OAuthErrorCode::Known(ErrorCode::TemporarilyUnavailable),
        ),
        (500, "server_error", OAuthErrorCode::Known(ErrorCode::ServerError)),
        (400, "invalid_grant", OAuthErrorCode::Known(ErrorCode::InvalidGrant)),
        (
            429,
            "too_many_requests",
            OAuthErrorCode::Known(ErrorCode::TooManyRequests),
        ),
        (400, "access_denied", OAuthErrorCode::Other("access_denied".into())),
    ];
    let count = cases.len();
    for (status, code, expected) in cases {
        ep.script(
            status,
            &json!({"error": code, "error_description": "subject token expired"}).to_string(),
        );
        let err = client.exchange(&request).await.unwrap_err();
        assert_eq!(
            err,
            StsError::OAuth {
                status,
                code: expected.clone(),
                description: Some("subject token expired".into())
            }
        );
        assert_eq!(err.code(), Some(&expected));
        assert_eq!(expected.as_str(), code);
    }
    assert_eq!(ep.hits(), count, "errors are never cached");

    ep.script(400, r#"{"error":"invalid_target"}"#);
    let err = client.exchange(&request).await.unwrap_err();
    assert_eq!(
        err,
        StsError::OAuth {
            status: 400,
            code: OAuthErrorCode::Known(ErrorCode::InvalidTarget),
            description: None
        }
    );
    assert!(!err.is_retryable());

    ep.script(503, r#"{"error":"temporarily_unavailable"}"#);
    assert!(client.exchange(&request).await.unwrap_err().is_retryable());

    // mcp-sts's rate limit: a code of its own, and worth retrying after Retry-After.
    ep.script(429, r#"{"error":"too_many_requests"}"#);
    let limited = client.exchange(&request).await.unwrap_err();
    assert_eq!(limited.code(), Some(&OAuthErrorCode::Known(ErrorCode::TooManyRequests)));
    assert!(limited.is_retryable());

    ep.script(502, "<html>bad gateway</html>");
    assert_eq!(
        client.exchange(&request).await.unwrap_err(),
        StsError::UnexpectedStatus { status: 502 }
    );

    ep.script(200, r#"{"token":"nope"}"#);
    assert!(matches!(
        client.exchange(&request).await.unwrap_err(),
        StsError::InvalidResponse(_)
    ));
}

#[tokio::test]
async fn unreachable_sts_is_a_transport_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = client(&format!("http://{addr}/token"));
    let err = client
        .exchange(&ExchangeRequest::new("user-jwt").audience("a"))
        .await
        .unwrap_err();
    assert!(matches!(err, StsError::Transport(_)), "{err:?}");
    assert!(err.is_retryable());
    assert!(!err.to_string().contains("user-jwt"));
}
