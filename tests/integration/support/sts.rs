//! Starts the real router over real HTTP on 127.0.0.1:0, with a development IdP
//! serving discovery and JWKS, an injected clock and an audit tap.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use base64::Engine;
use mcp_sts::audit::AuditLog;
use mcp_sts::clock::ManualClock;
use mcp_sts::config::Config;
use mcp_sts::dev_idp::DevIdp;
use mcp_sts::service::Sts;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Time the test clock starts at.
pub const T0: u64 = 1_900_000_000;

/// Secrets of the test clients (their SHA-256 is in the config).
pub const ORDERS_MCP_SECRET: &str = "orders-mcp-secret";
pub const ORDERS_API_SECRET: &str = "orders-api-secret";
pub const BILLING_API_SECRET: &str = "billing-api-secret";
pub const LEDGER_API_SECRET: &str = "ledger-api-secret";
pub const WATCHER_SECRET: &str = "watcher-secret";

pub const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
pub const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

fn sha(secret: &str) -> String {
    mcp_sts::client_auth::hash_secret(secret)
}

/// The test configuration: one IdP, five audiences, a hop chain of clients.
pub fn config_toml(issuer: &str, idp: &DevIdp, keys_dir: &str, extra_clients: &str) -> String {
    config_toml_with(issuer, idp, keys_dir, extra_clients, "backend = \"memory\"", None)
}

/// The test configuration with a chosen `[revocation]` body and admin credential.
pub fn config_toml_with(
    issuer: &str,
    idp: &DevIdp,
    keys_dir: &str,
    extra_clients: &str,
    revocation: &str,
    admin_token: Option<&str>,
) -> String {
    let admin = admin_token
        .map(|t| format!("[admin]\ntoken_sha256 = \"{}\"\n", sha(t)))
        .unwrap_or_default();
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
issuer = "{issuer}"

[keys]
dir = "{keys_dir}"

[tokens]
default_ttl_seconds = 300
max_delegation_depth = 3

[revocation]
{revocation}

{admin}
[[issuers]]
issuer = "{idp_issuer}"
audience = "mcp-sts"
roles_claim = "roles"
tenant_claim = "tenant"

[[clients]]
client_id = "orders-mcp"
secret_sha256 = "{orders_mcp}"
audiences = ["orders-api", "inventory-api", "legacy-api"]

[[clients]]
client_id = "orders-api"
secret_sha256 = "{orders_api}"
audiences = ["billing-api"]

[[clients]]
client_id = "billing-api"
secret_sha256 = "{billing_api}"
audiences = ["ledger-api"]

[[clients]]
client_id = "ledger-api"
secret_sha256 = "{ledger_api}"
audiences = ["archive-api"]

[[clients]]
client_id = "watcher"
secret_sha256 = "{watcher}"
audiences = []
{extra_clients}

[[audiences]]
id = "orders-api"
resource = "https://orders.example.com/api"
mode = "on_behalf_of"
scopes = ["orders:read", "orders:write", "orders:admin"]
[audiences.role_scopes]
developer = ["orders:read"]
order-admin = ["orders:read", "orders:write", "orders:admin"]

[[audiences]]
id = "inventory-api"
mode = "service_identity"
scopes = ["inventory:read", "inventory:write"]

[[audiences]]
id = "legacy-api"
mode = "restricted_user"
scopes = ["legacy:read"]
[audiences.role_scopes]
developer = ["legacy:read"]

[[audiences]]
id = "billing-api"
mode = "on_behalf_of"
scopes = ["orders:read", "orders:write"]
ttl_seconds = 120

[[audiences]]
id = "ledger-api"
mode = "on_behalf_of"
scopes = ["orders:read", "orders:write"]

[[audiences]]
id = "archive-api"
mode = "on_behalf_of"
scopes = ["orders:read"]
"#,
        idp_issuer = idp.issuer(),
        orders_mcp = sha(ORDERS_MCP_SECRET),
        orders_api = sha(ORDERS_API_SECRET),
        billing_api = sha(BILLING_API_SECRET),
        ledger_api = sha(LEDGER_API_SECRET),
        watcher = sha(WATCHER_SECRET),
    )
}

/// The admin credential used by tests that enable the admin API.
pub const ADMIN_TOKEN: &str = "test-admin-credential";

/// How to start a test service.
#[derive(Default)]
pub struct Options {
    /// Extra `[[clients]]` TOML (any TOML tables; `$ISSUER` becomes the service's issuer).
    pub extra_clients: String,
    /// The `[revocation]` body; memory when empty.
    pub revocation: String,
    /// Enable the admin API with [`ADMIN_TOKEN`].
    pub admin: bool,
    /// Share an IdP (replicas, restarts).
    pub idp: Option<DevIdp>,
    /// Share an issuer URL and a key directory with another instance (replicas).
    pub replica_of: Option<(String, std::path::PathBuf)>,
    /// Start the clock here instead of [`T0`].
    pub clock: Option<ManualClock>,
    /// Sign with RS256 keys instead of ES256.
    pub rs256: bool,
    /// `[keys] activate_after_seconds`; the service's default when `None`.
    pub activate_after_seconds: Option<u64>,
    /// Extra top-level TOML tables (e.g. `[limits]`), appended to the config.
    pub extra_tables: String,
    /// Extra keys for the trusted issuer's `[[issuers]]` entry.
    pub issuer_extra: String,
    /// Extra keys for `[server]`.
    pub server_extra: String,
}

/// A running service for one test.
pub struct TestSts {
    pub url: String,
    pub idp: DevIdp,
    pub clock: ManualClock,
    pub audit: Arc<Mutex<Vec<Value>>>,
    pub sts: Arc<Sts>,
    pub http: reqwest::Client,
    pub keys_dir: std::path::PathBuf,
    _keys: Option<tempfile::TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl TestSts {
    /// Start with the default test configuration.
    pub async fn start() -> Self {
        Self::start_with("").await
    }

    /// Start with extra `[[clients]]` TOML appended.
    pub async fn start_with(extra_clients: &str) -> Self {
        Self::start_opts(Options {
            extra_clients: extra_clients.to_owned(),
            ..Options::default()
        })
        .await
    }

    /// Start with full options.
    pub async fn start_opts(options: Options) -> Self {
        let idp = match options.idp {
            Some(idp) => idp,
            None => DevIdp::start_local().await.unwrap(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let own_url = format!("http://{}", listener.local_addr().unwrap());
        let (url, keys_dir, keys) = match options.replica_of {
            Some((issuer, dir)) => (issuer, dir, None),
            None => {
                let keys = tempfile::tempdir().unwrap();
                (own_url.clone(), keys.path().to_owned(), Some(keys))
            }
        };
        let revocation = if options.revocation.is_empty() {
            "backend = \"memory\"".to_owned()
        } else {
            options.revocation
        };
        let admin = options.admin.then_some(ADMIN_TOKEN);
        let mut toml = config_toml_with(
            &url,
            &idp,
            keys_dir.to_str().unwrap(),
            &options.extra_clients,
            &revocation,
            admin,
        );
        if !options.issuer_extra.is_empty() {
            toml = toml.replace(
                "tenant_claim = \"tenant\"\n",
                &format!("tenant_claim = \"tenant\"\n{}\n", options.issuer_extra),
            );
        }
        // Extra TOML may name this service's own issuer, known only once bound.
        toml = toml.replace("$ISSUER", &url);
        if options.rs256 {
            toml = toml.replace("[keys]\n", "[keys]\nalgorithm = \"RS256\"\n");
        }
        if let Some(delay) = options.activate_after_seconds {
            toml = toml.replace("[keys]\n", &format!("[keys]\nactivate_after_seconds = {delay}\n"));
        }
        if !options.server_extra.is_empty() {
            toml = toml.replacen("[server]\n", &format!("[server]\n{}", options.server_extra), 1);
        }
        toml.push_str(&options.extra_tables);
        let config = Config::from_toml(&toml).unwrap();
        let url = own_url;
        let clock = options.clock.unwrap_or_else(|| ManualClock::new(T0));
        let (audit_log, audit) = AuditLog::with_tap();
        let sts = mcp_sts::server::build(config, Arc::new(clock.clone()), audit_log)
            .await
            .unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let served = sts.clone();
        tokio::spawn(async move {
            mcp_sts::http::serve(listener, served, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Self {
            url,
            idp,
            clock,
            audit,
            sts,
            http: reqwest::Client::new(),
            keys_dir,
            _keys: keys,
            shutdown: Some(tx),
        }
    }

    /// A user token from the IdP, valid for an hour from the test clock's now.
    pub fn user_token(&self, sub: &str, roles: &[&str]) -> String {
        self.idp
            .user_token(sub, "mcp-sts", roles, self.clock_now(), 3600, &serde_json::json!({}))
            .unwrap()
    }

    /// An actor token naming an agent, valid for an hour from the test clock's now.
    pub fn agent_token(&self, agent: &str) -> String {
        self.user_token(agent, &[])
    }

    /// Same, with extra claims.
    pub fn user_token_with(&self, sub: &str, roles: &[&str], extra: Value) -> String {
        self.idp
            .user_token(sub, "mcp-sts", roles, self.clock_now(), 3600, &extra)
            .unwrap()
    }

    pub fn clock_now(&self) -> u64 {
        use mcp_sts::clock::Clock;
        self.clock.now()
    }

    /// POST a form to `path` with optional Basic credentials.
    pub async fn post_form(&self, path: &str, basic: Option<(&str, &str)>, form: &[(&str, &str)]) -> Reply {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut request = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some((id, secret)) = basic {
            request = request.header("authorization", basic_header(id, secret));
        }
        Reply::from(request.send().await.unwrap()).await
    }

    /// An exchange by `orders-mcp` (client_secret_basic) with these extra parameters.
    pub async fn exchange(&self, subject: &str, extra: &[(&str, &str)]) -> Reply {
        self.exchange_as(("orders-mcp", ORDERS_MCP_SECRET), subject, ACCESS_TOKEN, extra)
            .await
    }

    /// An exchange by any client.
    pub async fn exchange_as(
        &self,
        client: (&str, &str),
        subject: &str,
        subject_type: &str,
        extra: &[(&str, &str)],
    ) -> Reply {
        let mut form = vec![
            ("grant_type", EXCHANGE),
            ("subject_token", subject),
            ("subject_token_type", subject_type),
        ];
        form.extend_from_slice(extra);
        self.post_form("/token", Some(client), &form).await
    }

    /// Call the admin API.
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Reply {
        let mut request = self
            .http
            .request(method, format!("{}/admin/revocations{path}", self.url))
            .header("authorization", format!("Bearer {ADMIN_TOKEN}"));
        if let Some(body) = body {
            request = request.json(&body);
        }
        Reply::from(request.send().await.unwrap()).await
    }

    /// Revoke through the admin API and expect success.
    pub async fn admin_revoke(&self, kind: &str, value: &str) {
        let body = serde_json::json!({"kind": kind, "value": value, "reason": "test", "revoked_by": "tester"});
        let reply = self.admin(reqwest::Method::POST, "", Some(body)).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
    }

    /// Introspect as a client.
    pub async fn introspect(&self, client: (&str, &str), token: &str) -> Reply {
        self.post_form("/introspect", Some(client), &[("token", token)]).await
    }

    /// Audit events so far.
    pub fn audit_events(&self) -> Vec<Value> {
        self.audit.lock().unwrap().clone()
    }

    /// How many decisions the audit trail records as allowed: unchanged when nothing was minted.
    pub fn allows(&self) -> usize {
        self.audit_events().iter().filter(|e| e["decision"] == "allow").count()
    }

    /// The `reason` (`code:rule`) of the latest refusal in the audit trail.
    pub fn last_denial(&self) -> String {
        self.audit_events()
            .iter()
            .rev()
            .find(|e| e["decision"] == "deny")
            .and_then(|e| e["reason"].as_str().map(String::from))
            .unwrap_or_default()
    }
}

impl Drop for TestSts {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// RFC 6749 §2.3.1 Basic credentials (form-urlencoded, then base64).
pub fn basic_header(id: &str, secret: &str) -> String {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub async fn from(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            body,
            text,
        }
    }

    /// The `error` code.
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }

    /// Assert a refusal with this status and code, the no-store headers, and a clean description.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!((self.status, self.error()), (status, code), "body: {}", self.text);
        assert_eq!(self.headers["cache-control"], "no-store");
        assert_eq!(self.headers["pragma"], "no-cache");
        let description = self.body["error_description"].as_str().unwrap_or("");
        assert!(!description.contains('"') && !description.contains('\\'));
    }

    /// The minted token's claims (unverified decode; tests verify separately).
    #[track_caller]
    pub fn claims(&self) -> Value {
        assert_eq!(self.status, 200, "body: {}", self.text);
        decode_claims(self.body["access_token"].as_str().unwrap())
    }

    pub fn token(&self) -> String {
        self.body["access_token"].as_str().unwrap().to_owned()
    }
}

/// Decode a JWT's claims without verifying.
pub fn decode_claims(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// Decode a JWT's header without verifying.
pub fn decode_header(token: &str) -> Value {
    let part = token.split('.').next().unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}
