//! Fixtures for the verifier unit-level tests: signing keys generated per test, and a small HTTP
//! server that plays the STS's JWKS and introspection endpoints on 127.0.0.1:0.
//!
//! Tokens are built by hand (not with jsonwebtoken) so tests can forge any header:
//! `alg: none`, HS256, wrong `typ`, `crit`, a tampered signature.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

pub const ISSUER: &str = "https://sts.test";
pub const AUDIENCE: &str = "orders-api";
pub const NOW: u64 = 1_800_000_000;

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

enum Signer {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// A signing key with its `kid`.
pub struct TestKey {
    pub kid: String,
    signer: Signer,
}

impl TestKey {
    pub fn ec(kid: &str) -> Self {
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        Self {
            kid: kid.into(),
            signer: Signer::Ec(key),
        }
    }

    pub fn rsa(kid: &str) -> Self {
        let key = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        Self {
            kid: kid.into(),
            signer: Signer::Rsa(key),
        }
    }

    pub fn alg(&self) -> &'static str {
        match self.signer {
            Signer::Ec(_) => "ES256",
            Signer::Rsa(_) => "RS256",
        }
    }

    /// The public JWK, as the STS's JWKS would publish it.
    pub fn jwk(&self) -> Value {
        match &self.signer {
            Signer::Ec(k) => {
                let point = k.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid,
                       "x": b64(&point[1..33]), "y": b64(&point[33..65])})
            }
            Signer::Rsa(k) => {
                let public = k.public_key();
                json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
                       "n": b64(public.modulus().big_endian_without_leading_zero()),
                       "e": b64(public.exponent().big_endian_without_leading_zero())})
            }
        }
    }

    /// The standard header for this key: its alg, `typ` `at+jwt`, its kid.
    pub fn header(&self) -> Value {
        json!({"alg": self.alg(), "typ": "at+jwt", "kid": self.kid})
    }

    /// Sign `header`.`claims` with this key, whatever the header says.
    pub fn sign_with(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = match &self.signer {
            Signer::Ec(k) => k
                .sign(&SystemRandom::new(), input.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
            Signer::Rsa(k) => {
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut sig)
                    .unwrap();
                sig
            }
        };
        format!("{input}.{}", b64(&signature))
    }

    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with(&self.header(), claims)
    }
}

/// Claims of an `on_behalf_of` token per docs/token.md, valid around [`NOW`].
pub fn obo_claims(now: u64) -> Value {
    json!({
        "iss": ISSUER,
        "sub": "alice@example.com",
        "aud": AUDIENCE,
        "exp": now + 300,
        "iat": now,
        "nbf": now,
        "jti": "tok-1",
        "client_id": "orders-mcp",
        "scope": "orders:read orders:write",
        "delegation_mode": "on_behalf_of",
        "sid": "sess-1",
        "txn": "4bf92f3577b34da6a3ce929d0e0e4736",
        "tenant": "acme",
        "act": {"sub": "claude-desktop", "iss": "https://agents.test"}
    })
}

/// Shared state of the fake STS endpoints.
#[derive(Default)]
pub struct Sts {
    pub keys: Mutex<Vec<Value>>,
    pub jwks_hits: AtomicUsize,
    pub jwks_down: AtomicBool,
    pub active: AtomicBool,
    pub introspect_hits: AtomicUsize,
    pub introspect_requests: Mutex<Vec<(Option<String>, String)>>,
}

impl Sts {
    pub fn publish(&self, keys: &[&TestKey]) {
        *self.keys.lock().unwrap() = keys.iter().map(|k| k.jwk()).collect();
    }

    pub fn hits(&self) -> usize {
        self.jwks_hits.load(Ordering::SeqCst)
    }
}

async fn jwks(State(sts): State<Arc<Sts>>) -> Response {
    sts.jwks_hits.fetch_add(1, Ordering::SeqCst);
    if sts.jwks_down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let keys = sts.keys.lock().unwrap().clone();
    axum::Json(json!({ "keys": keys })).into_response()
}

async fn introspect(State(sts): State<Arc<Sts>>, headers: HeaderMap, body: String) -> Response {
    sts.introspect_hits.fetch_add(1, Ordering::SeqCst);
    let auth = headers.get("authorization").map(|v| v.to_str().unwrap().to_owned());
    sts.introspect_requests.lock().unwrap().push((auth, body));
    if sts.active.load(Ordering::SeqCst) {
        axum::Json(json!({"active": true, "sub": "alice@example.com"})).into_response()
    } else {
        axum::Json(json!({"active": false})).into_response()
    }
}

/// Start the fake STS; returns its state and base URL.
pub async fn start_sts() -> (Arc<Sts>, String) {
    let sts = Arc::new(Sts {
        active: AtomicBool::new(true),
        ..Sts::default()
    });
    let app = Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route("/introspect", post(introspect))
        .with_state(Arc::clone(&sts));
    let base = serve(app).await;
    (sts, base)
}

/// Serve `app` on 127.0.0.1:0 in the background; returns `http://addr`.
pub async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("http://{addr}")
}

/// A URL nobody listens on: bind a port, then let it go.
pub async fn dead_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}
