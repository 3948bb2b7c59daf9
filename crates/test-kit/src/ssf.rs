//! Shared Signals helpers for tests: a receiver's view of mcp-sts's transmitter over
//! real HTTP, and strict SET verification against the published JWKS.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Value, json};

use super::sts::{Reply, basic_header};

pub const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
pub const VERIFICATION: &str = "https://schemas.openid.net/secevent/ssf/event-type/verification";

/// Every event type mcp-sts supports at `issuer`.
pub fn all_events(issuer: &str) -> Vec<String> {
    vec![
        SESSION_REVOKED.to_owned(),
        format!("{issuer}/ssf/event-type/agent-revoked"),
        format!("{issuer}/ssf/event-type/client-revoked"),
    ]
}

/// A receiver: a registered client talking to one mcp-sts base URL.
#[derive(Clone)]
pub struct Receiver {
    pub base: String,
    pub client: (String, String),
    pub http: reqwest::Client,
}

impl Receiver {
    pub fn new(base: &str, id: &str, secret: &str) -> Self {
        Self {
            base: base.to_owned(),
            client: (id.to_owned(), secret.to_owned()),
            http: reqwest::Client::new(),
        }
    }

    fn auth(&self) -> String {
        basic_header(&self.client.0, &self.client.1)
    }

    /// Any request with this receiver's credentials.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Reply {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let mut request = self.http.request(method, url).header("authorization", self.auth());
        if let Some(body) = body {
            request = request.json(&body);
        }
        Reply::from(request.send().await.unwrap()).await
    }

    /// Create a poll stream for `events` and expect 201.
    pub async fn create_poll_stream(&self, events: &[String]) -> Value {
        let body = json!({"delivery": {"method": "urn:ietf:rfc:8936"}, "events_requested": events});
        let reply = self.call(reqwest::Method::POST, "/ssf/streams", Some(body)).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        reply.body
    }

    /// Poll a stream's endpoint (a full URL from its delivery) with `body`.
    pub async fn poll(&self, endpoint: &str, body: Value) -> Reply {
        self.call(reqwest::Method::POST, endpoint, Some(body)).await
    }

    /// Poll with returnImmediately and expect 200; the `sets` map.
    pub async fn poll_now(&self, endpoint: &str, ack: &[String]) -> serde_json::Map<String, Value> {
        let reply = self
            .poll(endpoint, json!({"ack": ack, "returnImmediately": true}))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.body["sets"].as_object().cloned().unwrap()
    }
}

/// Verify a SET strictly: header typ, our JWKS, iss, aud; returns its claims.
pub async fn verify_set(base: &str, set: &str, issuer: &str, audience: &str) -> Value {
    let header = jsonwebtoken::decode_header(set).unwrap();
    assert_eq!(header.typ.as_deref(), Some("secevent+jwt"));
    let jwks: JwkSet = reqwest::get(format!("{base}/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.validate_exp = false;
    validation.required_spec_claims = ["iss", "aud"].into_iter().map(String::from).collect();
    let claims = jsonwebtoken::decode::<Value>(set, &key, &validation).unwrap().claims;
    assert!(claims["jti"].is_string() && claims["iat"].is_u64(), "{claims}");
    assert_eq!(claims["events"].as_object().unwrap().len(), 1, "{claims}");
    assert!(claims.get("sub").is_none(), "SSF SETs carry sub_id, not sub");
    claims
}

/// A push receiver (RFC 8935) on a real socket: records each SET and the
/// Authorization header it came with, and answers with the next status in `script`.
pub async fn push_receiver(
    script: Vec<u16>,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<(Option<String>, String)>>>) {
    use axum::http::HeaderMap;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let script = std::sync::Arc::new(std::sync::Mutex::new(script));
    let (seen2, script2) = (seen.clone(), script.clone());
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let (seen, script) = (seen2.clone(), script2.clone());
            async move {
                let auth = headers.get("authorization").map(|v| v.to_str().unwrap().to_owned());
                assert_eq!(headers["content-type"], "application/secevent+jwt");
                seen.lock().unwrap().push((auth, body));
                let mut script = script.lock().unwrap();
                let status = if script.is_empty() { 202 } else { script.remove(0) };
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}
