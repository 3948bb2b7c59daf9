//! A SPIFFE trust domain for tests: a bundle endpoint served over real HTTP on a free
//! loopback port, and JWT-SVIDs signed with the trust domain's real key.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use mcp_sts::config::SigningAlgorithm;
use mcp_sts::keys::SigningKey;
use serde_json::{Value, json};
use tokio::net::TcpListener;

struct Served {
    document: Mutex<Value>,
    requests: AtomicUsize,
}

/// One trust domain's signing key and the bundle endpoint publishing it.
pub struct TrustDomain {
    pub name: String,
    pub url: String,
    key: Mutex<Arc<SigningKey>>,
    served: Arc<Served>,
}

/// A SPIFFE bundle holding `keys` as JWT-SVID keys, refreshed after `hint` seconds.
pub fn bundle_of(keys: &[&SigningKey], hint: u64) -> Value {
    let keys: Vec<Value> = keys
        .iter()
        .map(|key| {
            let mut jwk = key.public_jwk.clone();
            jwk["use"] = json!("jwt-svid");
            jwk
        })
        .collect();
    json!({"keys": keys, "spiffe_sequence": 1, "spiffe_refresh_hint": hint})
}

impl TrustDomain {
    /// Start a bundle endpoint for `name` with one fresh ES256 key.
    pub async fn start(name: &str) -> Self {
        let key = Arc::new(SigningKey::generate(SigningAlgorithm::ES256, 0).unwrap().0);
        let served = Arc::new(Served {
            document: Mutex::new(bundle_of(&[&key], 300)),
            requests: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/bundle", get(bundle))
            .with_state(Arc::clone(&served));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/bundle", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            name: name.to_owned(),
            url,
            key: Mutex::new(key),
            served,
        }
    }

    /// The key SVIDs are signed with now.
    pub fn key(&self) -> Arc<SigningKey> {
        Arc::clone(&self.key.lock().unwrap())
    }

    /// Serve `document` as the bundle from now on.
    pub fn serve(&self, document: Value) {
        *self.served.document.lock().unwrap() = document;
    }

    /// Rotate: a new key signs and the bundle publishes only it.
    pub fn rotate(&self, hint: u64) -> Arc<SigningKey> {
        let key = Arc::new(SigningKey::generate(SigningAlgorithm::ES256, 0).unwrap().0);
        self.serve(bundle_of(&[&key], hint));
        *self.key.lock().unwrap() = Arc::clone(&key);
        key
    }

    /// How many times the bundle was fetched.
    pub fn requests(&self) -> usize {
        self.served.requests.load(Ordering::SeqCst)
    }

    /// The `[[issuers]]` entry trusting this domain.
    pub fn issuer_toml(&self) -> String {
        format!(
            "[[issuers]]\nkind = \"spiffe\"\ntrust_domain = \"{}\"\nbundle_endpoint = \"{}\"\n",
            self.name, self.url
        )
    }

    /// A JWT-SVID (SPIRE's shape: `sub`, `aud`, `exp`, `iat`; `kid` and `typ` JWT).
    pub fn svid(&self, sub: &str, aud: &str, now: u64, ttl: u64) -> String {
        self.sign(&json!({"sub": sub, "aud": [aud], "iat": now, "exp": now + ttl}))
    }

    /// Sign any claims with the current key.
    pub fn sign(&self, claims: &Value) -> String {
        let key = self.key();
        let header = json!({"alg": "ES256", "kid": key.kid, "typ": "JWT"});
        key.sign_raw(&header, claims).unwrap()
    }
}

async fn bundle(State(served): State<Arc<Served>>) -> Json<Value> {
    served.requests.fetch_add(1, Ordering::SeqCst);
    Json(served.document.lock().unwrap().clone())
}
