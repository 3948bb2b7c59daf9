//! A development identity provider: OIDC discovery, a JWKS and signed user tokens.
//!
//! It stands in for Okta, Keycloak or Teleport in the demo and in tests: it serves
//! real discovery and JWKS documents over HTTP and signs real JWTs (ES256 and RS256),
//! including deliberately malformed ones for tests of the refusal rules. Never use
//! it to authenticate real users.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

use mcp_sts_contract::jose::SigningAlgorithm;
use mcp_sts_contract::jose::SigningKey;

struct Inner {
    issuer: String,
    keys: RwLock<Vec<Arc<SigningKey>>>,
    available: AtomicBool,
    jwks_requests: AtomicUsize,
}

/// A running development IdP.
#[derive(Clone)]
pub struct DevIdp {
    inner: Arc<Inner>,
    addr: SocketAddr,
}

impl std::fmt::Debug for DevIdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIdp").field("issuer", &self.inner.issuer).finish()
    }
}

/// Why the IdP could not start or sign.
#[derive(Debug, thiserror::Error)]
pub enum DevIdpError {
    /// Binding or serving failed.
    #[error("dev IdP: {0}")]
    Io(#[from] std::io::Error),
    /// Key generation or signing failed.
    #[error("dev IdP key: {0}")]
    Key(#[from] mcp_sts_contract::jose::SigningKeyError),
}

impl DevIdp {
    /// Start on `listener` with one ES256 and one RS256 key. The issuer is its URL.
    pub async fn start(listener: TcpListener) -> Result<Self, DevIdpError> {
        let addr = listener.local_addr()?;
        let issuer = format!("http://{addr}");
        let es = SigningKey::generate(SigningAlgorithm::ES256, 0)?.0;
        let rs = SigningKey::generate(SigningAlgorithm::RS256, 0)?.0;
        let inner = Arc::new(Inner {
            issuer,
            keys: RwLock::new(vec![Arc::new(es), Arc::new(rs)]),
            available: AtomicBool::new(true),
            jwks_requests: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/.well-known/jwks.json", get(jwks))
            .with_state(inner.clone());
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "dev IdP stopped");
            }
        });
        Ok(Self { inner, addr })
    }

    /// Start on a free loopback port.
    pub async fn start_local() -> Result<Self, DevIdpError> {
        Self::start(TcpListener::bind("127.0.0.1:0").await?).await
    }

    /// The issuer URL (`iss` of its tokens).
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The JWKS URL.
    pub fn jwks_uri(&self) -> String {
        format!("{}/.well-known/jwks.json", self.inner.issuer)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many times the JWKS was fetched.
    pub fn jwks_requests(&self) -> usize {
        self.inner.jwks_requests.load(Ordering::SeqCst)
    }

    /// Make discovery and JWKS answer 503 (false) or serve again (true).
    pub fn set_available(&self, available: bool) {
        self.inner.available.store(available, Ordering::SeqCst);
    }

    /// Add a new key of `algorithm`; it signs from now on. Returns its kid.
    pub fn rotate(&self, algorithm: SigningAlgorithm) -> Result<String, DevIdpError> {
        let key = Arc::new(SigningKey::generate(algorithm, 0)?.0);
        let kid = key.kid.clone();
        if let Ok(mut keys) = self.inner.keys.write() {
            keys.insert(0, key);
        }
        Ok(kid)
    }

    /// Stop publishing (and signing with) the key `kid`, as an IdP retiring a key does.
    /// Returns whether it was there.
    pub fn retire(&self, kid: &str) -> bool {
        let Ok(mut keys) = self.inner.keys.write() else {
            return false;
        };
        let before = keys.len();
        keys.retain(|k| k.kid != kid);
        keys.len() != before
    }

    fn key(&self, algorithm: SigningAlgorithm) -> Option<Arc<SigningKey>> {
        self.inner
            .keys
            .read()
            .ok()?
            .iter()
            .find(|k| k.algorithm == algorithm)
            .cloned()
    }

    /// Sign `claims` with the newest key of `algorithm` and header `typ` (none when `None`).
    pub fn sign(&self, algorithm: SigningAlgorithm, typ: Option<&str>, claims: &Value) -> Result<String, DevIdpError> {
        let key = self
            .key(algorithm)
            .ok_or(DevIdpError::Key(mcp_sts_contract::jose::SigningKeyError::Unsupported))?;
        let mut header = Map::new();
        header.insert(
            "alg".into(),
            serde_json::to_value(key.jwt_algorithm()).unwrap_or(Value::Null),
        );
        header.insert("kid".into(), json!(key.kid));
        if let Some(typ) = typ {
            header.insert("typ".into(), json!(typ));
        }
        self.sign_with_header(algorithm, &Value::Object(header), claims)
    }

    /// Sign with a caller-built header (for tests of header rules: `crit`, `jku`, ...).
    pub fn sign_with_header(
        &self,
        algorithm: SigningAlgorithm,
        header: &Value,
        claims: &Value,
    ) -> Result<String, DevIdpError> {
        let key = self
            .key(algorithm)
            .ok_or(DevIdpError::Key(mcp_sts_contract::jose::SigningKeyError::Unsupported))?;
        Ok(key.sign_raw(header, claims)?)
    }

    /// A user token: `sub`, `aud`, roles and optional extra claims, valid for `ttl` from `now`.
    pub fn user_token(
        &self,
        sub: &str,
        audience: &str,
        roles: &[&str],
        now: u64,
        ttl: u64,
        extra: &Value,
    ) -> Result<String, DevIdpError> {
        let mut claims = json!({
            "iss": self.inner.issuer,
            "sub": sub,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": uuid::Uuid::new_v4().simple().to_string(),
            "roles": roles,
        });
        if let (Some(map), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                map.insert(k.clone(), v.clone());
            }
        }
        self.sign(SigningAlgorithm::ES256, Some("JWT"), &claims)
    }
}

/// What an agent application (an MCP client such as Claude Desktop) got from the IdP
/// after the user signed in: an access token for one or more resources, naming the
/// user in `sub` and the agent in `client_id` (RFC 9068) or `azp` (OpenID Connect).
#[derive(Debug, Clone, Copy)]
pub struct AgentGrant<'a> {
    /// The user (`sub`).
    pub user: &'a str,
    /// The user's roles (`roles`).
    pub roles: &'a [&'a str],
    /// The agent application's client id.
    pub agent: &'a str,
    /// The claim naming the agent: `client_id` (an RFC 9068 `at+jwt`) or `azp`.
    pub agent_claim: &'a str,
    /// `aud`: the resources the token is for (an MCP server's URI, mcp-sts, ...).
    pub audiences: &'a [&'a str],
    /// The granted scopes, space-separated (`scope`); empty leaves the claim out.
    pub scope: &'a str,
}

impl DevIdp {
    /// An access token for `grant`, valid for `ttl` from `now`. With `client_id` as the
    /// agent claim it has the RFC 9068 shape (`typ` `at+jwt`); with `azp`, `typ` `JWT`.
    pub fn agent_token(&self, grant: &AgentGrant<'_>, now: u64, ttl: u64) -> Result<String, DevIdpError> {
        let aud = match grant.audiences {
            [one] => json!(one),
            many => json!(many),
        };
        let mut claims = json!({
            "iss": self.inner.issuer,
            "sub": grant.user,
            "aud": aud,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": uuid::Uuid::new_v4().simple().to_string(),
            "roles": grant.roles,
        });
        if let Some(map) = claims.as_object_mut() {
            map.insert(grant.agent_claim.to_owned(), json!(grant.agent));
            if !grant.scope.is_empty() {
                map.insert("scope".into(), json!(grant.scope));
            }
        }
        let typ = if grant.agent_claim == "client_id" {
            "at+jwt"
        } else {
            "JWT"
        };
        self.sign(SigningAlgorithm::ES256, Some(typ), &claims)
    }
}

/// base64url of a JSON value, for hand-built tokens.
pub fn b64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string().as_bytes())
}

async fn discovery(State(inner): State<Arc<Inner>>) -> Response {
    if !inner.available.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    Json(json!({
        "issuer": inner.issuer,
        "jwks_uri": format!("{}/.well-known/jwks.json", inner.issuer),
        "id_token_signing_alg_values_supported": ["ES256", "RS256"],
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
    }))
    .into_response()
}

async fn jwks(State(inner): State<Arc<Inner>>) -> Response {
    inner.jwks_requests.fetch_add(1, Ordering::SeqCst);
    if !inner.available.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let keys: Vec<Value> = inner
        .keys
        .read()
        .map(|k| k.iter().map(|k| k.public_jwk.clone()).collect())
        .unwrap_or_default();
    Json(json!({ "keys": keys })).into_response()
}
