//! URL clients (client ID metadata documents) over real HTTP: the documents, their
//! keys, redirects and oversized bodies are served by a server this test runs on
//! loopback. Loopback is plain http, which mcp-sts allows only for a loopback host
//! listed by name in `[[cimd.allow]]`; every other URL client must be https.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use mcp_sts::config::SigningAlgorithm;
use mcp_sts::keys::SigningKey;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::support::sts::*;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// One response the document server gives for a path.
#[derive(Clone)]
struct Page {
    status: StatusCode,
    headers: Vec<(header::HeaderName, String)>,
    body: Vec<u8>,
}

#[derive(Default)]
struct Pages {
    by_path: Mutex<HashMap<String, Page>>,
    hits: Mutex<HashMap<String, usize>>,
}

async fn page(State(pages): State<Arc<Pages>>, uri: Uri) -> Response {
    let path = uri.path().to_owned();
    *pages.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let Some(page) = pages.by_path.lock().unwrap().get(&path).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut headers = HeaderMap::new();
    for (name, value) in page.headers {
        headers.insert(name, HeaderValue::from_str(&value).unwrap());
    }
    (page.status, headers, page.body).into_response()
}

/// The web server URL clients' documents and keys live on.
struct DocumentServer {
    base: String,
    pages: Arc<Pages>,
}

impl DocumentServer {
    async fn start() -> Self {
        let pages = Arc::new(Pages::default());
        let app = Router::new().fallback(page).with_state(Arc::clone(&pages));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base, pages }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn serve(&self, path: &str, page: Page) {
        self.pages.by_path.lock().unwrap().insert(path.to_owned(), page);
    }

    fn serve_json(&self, path: &str, body: &Value, cache_control: Option<&str>) {
        let mut headers = vec![(header::CONTENT_TYPE, "application/json".to_owned())];
        headers.extend(cache_control.map(|c| (header::CACHE_CONTROL, c.to_owned())));
        self.serve(
            path,
            Page {
                status: StatusCode::OK,
                headers,
                body: serde_json::to_vec(body).unwrap(),
            },
        );
    }

    fn hits(&self, path: &str) -> usize {
        self.pages.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    fn all_hits(&self) -> usize {
        self.pages.hits.lock().unwrap().values().sum()
    }
}

/// A loopback port that counts the connections made to it and answers none: proof
/// that a guarded fetch never even connected.
struct Knocks {
    port: u16,
    count: Arc<AtomicUsize>,
}

impl Knocks {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let count = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&count);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                drop(socket);
            }
        });
        Self { port, count }
    }

    fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

fn new_key() -> SigningKey {
    SigningKey::generate(SigningAlgorithm::ES256, 0).unwrap().0
}

fn document(client_id: &str, key: &SigningKey) -> Value {
    json!({
        "client_id": client_id,
        "client_name": "Planner agent",
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [key.public_jwk]},
    })
}

struct World {
    sts: TestSts,
    docs: DocumentServer,
    jti: AtomicUsize,
}

const PLANNER: &str = "/agents/planner";

async fn world() -> World {
    let docs = DocumentServer::start().await;
    let sts = TestSts::start_opts(Options {
        admin: true,
        extra_tables: "\n[[cimd.allow]]\nhost = \"127.0.0.1\"\naudiences = [\"orders-api\"]\n\
             \n[[cimd.allow]]\nhost = \"*.agents.example.com\"\naudiences = [\"orders-api\"]\n\
             \n[[cimd.allow]]\nhost = \"*.localhost\"\naudiences = [\"orders-api\"]\n\
             \n[[cimd.allow]]\nhost = \"agents.example.com\"\naudiences = [\"orders-api\"]\n"
            .into(),
        ..Options::default()
    })
    .await;
    World {
        sts,
        docs,
        jti: AtomicUsize::new(0),
    }
}

impl World {
    /// A `private_key_jwt` assertion for `client_id`, signed by `key`, fresh now.
    fn assertion(&self, client_id: &str, key: &SigningKey) -> String {
        let now = self.sts.clock_now();
        let jti = format!("u-{}", self.jti.fetch_add(1, Ordering::SeqCst));
        let claims =
            json!({"iss": client_id, "sub": client_id, "aud": self.sts.url, "iat": now, "exp": now + 60, "jti": jti});
        key.sign_raw(&json!({"alg": "ES256", "kid": key.kid, "typ": "JWT"}), &claims)
            .unwrap()
    }

    async fn exchange_as(&self, assertion: &str, extra: &[(&str, &str)]) -> Reply {
        let alice = self.sts.user_token("alice", &["developer"]);
        let mut form = vec![
            ("grant_type", EXCHANGE),
            ("subject_token", alice.as_str()),
            ("subject_token_type", ACCESS_TOKEN),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
        ];
        if !extra.iter().any(|(k, _)| *k == "audience") {
            form.push(("audience", "orders-api"));
        }
        form.extend_from_slice(extra);
        self.sts.post_form("/token", None, &form).await
    }

    /// Exchange as `client_id`, signing with `key`.
    async fn exchange(&self, client_id: &str, key: &SigningKey) -> Reply {
        self.exchange_as(&self.assertion(client_id, key), &[]).await
    }

    fn allows(&self) -> usize {
        self.sts.allows()
    }

    fn last_denial(&self) -> String {
        self.sts.last_denial()
    }

    /// `client_id` signing with `key` is refused with 401 `invalid_client` for `rule`,
    /// and nothing is minted.
    async fn assert_refused(&self, client_id: &str, key: &SigningKey, rule: &str) {
        let before = self.allows();
        let reply = self.exchange(client_id, key).await;
        reply.assert_error(401, "invalid_client");
        assert_eq!(self.last_denial(), format!("invalid_client:{rule}"), "{client_id}");
        assert_eq!(self.allows(), before, "nothing minted for {client_id}");
    }
}

#[tokio::test]
async fn a_url_client_is_resolved_from_its_document_and_acts_as_an_ai_agent() {
    let w = world().await;
    let key = new_key();
    let planner = w.docs.url(PLANNER);
    w.docs.serve_json(PLANNER, &document(&planner, &key), None);

    let reply = w.exchange(&planner, &key).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let claims = reply.claims();
    assert_eq!(claims["client_id"], planner);
    assert_eq!(claims["act"], json!({"sub": planner, "sub_profile": "ai_agent"}));
    let allowed = w
        .sts
        .audit_events()
        .into_iter()
        .rfind(|e| e["decision"] == "allow")
        .unwrap();
    assert_eq!(allowed["client_id"], planner);

    // Keys named by jwks_uri are fetched the same way; client_id may be sent too.
    let remote_key = new_key();
    let indexer = w.docs.url("/agents/indexer");
    w.docs
        .serve_json("/keys/indexer", &json!({"keys": [remote_key.public_jwk]}), None);
    w.docs.serve_json(
        "/agents/indexer",
        &json!({"client_id": indexer, "jwks_uri": w.docs.url("/keys/indexer")}),
        None,
    );
    let assertion = w.assertion(&indexer, &remote_key);
    let reply = w.exchange_as(&assertion, &[("client_id", &indexer)]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(w.docs.hits("/keys/indexer"), 1);

    // The metadata says URL clients are accepted.
    let metadata: Value = reqwest::get(format!("{}/.well-known/oauth-authorization-server", w.sts.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["client_id_metadata_document_supported"], true);
}

#[tokio::test]
async fn a_document_is_cached_per_cache_control_within_the_bounds() {
    let w = world().await;
    let key = new_key();
    let planner = w.docs.url(PLANNER);
    // Asks for 5 seconds: the 60-second floor holds.
    w.docs.serve_json(PLANNER, &document(&planner, &key), Some("max-age=5"));
    assert_eq!(w.exchange(&planner, &key).await.status, 200);
    w.sts.clock.advance(30);
    assert_eq!(w.exchange(&planner, &key).await.status, 200);
    assert_eq!(w.docs.hits(PLANNER), 1, "the second request used the cache");
    w.sts.clock.advance(31);
    assert_eq!(w.exchange(&planner, &key).await.status, 200);
    assert_eq!(w.docs.hits(PLANNER), 2, "refetched after the floor");

    // Asks for a day: the hour ceiling holds.
    w.docs
        .serve_json(PLANNER, &document(&planner, &key), Some("public, max-age=86400"));
    w.sts.clock.advance(61);
    assert_eq!(w.exchange(&planner, &key).await.status, 200);
    assert_eq!(w.docs.hits(PLANNER), 3);
    w.sts.clock.advance(3599);
    assert_eq!(w.exchange(&planner, &key).await.status, 200);
    assert_eq!(w.docs.hits(PLANNER), 3, "kept within the hour");
    w.sts.clock.advance(2);
    assert_eq!(w.exchange(&planner, &key).await.status, 200);
    assert_eq!(w.docs.hits(PLANNER), 4, "refetched after the hour");
}

#[tokio::test]
async fn a_document_that_changes_its_keys_or_names_another_client_is_refused() {
    let w = world().await;
    let (old, new) = (new_key(), new_key());
    let planner = w.docs.url(PLANNER);
    w.docs.serve_json(PLANNER, &document(&planner, &old), None);
    assert_eq!(w.exchange(&planner, &old).await.status, 200);

    // The document now publishes another key: once refetched, the old key is refused.
    w.docs.serve_json(PLANNER, &document(&planner, &new), None);
    w.sts.clock.advance(61);
    w.assert_refused(&planner, &old, "client.assertion_invalid").await;
    assert_eq!(w.exchange(&planner, &new).await.status, 200);

    // The document names another client: no key of it counts.
    w.docs
        .serve_json(PLANNER, &document(&w.docs.url("/agents/other"), &new), None);
    w.sts.clock.advance(61);
    w.assert_refused(&planner, &new, "client.metadata_document_invalid")
        .await;

    // Other unusable documents: a shared secret, another method, both key forms, no keys, not JSON.
    let unusable = [
        json!({"client_id": planner, "jwks": {"keys": [new.public_jwk]}, "client_secret": "s"}),
        json!({"client_id": planner, "jwks": {"keys": [new.public_jwk]}, "token_endpoint_auth_method": "none"}),
        json!({"client_id": planner, "jwks": {"keys": [new.public_jwk]}, "jwks_uri": w.docs.url("/keys")}),
        json!({"client_id": planner}),
        json!({"client_id": planner, "jwks_uri": "https://user@keys.agents.example.com/jwks"}),
    ];
    for body in unusable {
        w.docs.serve_json(PLANNER, &body, None);
        w.assert_refused(&planner, &new, "client.metadata_document_invalid")
            .await;
    }
    w.docs.serve(
        PLANNER,
        Page {
            status: StatusCode::OK,
            headers: vec![],
            body: b"<html>not a document</html>".to_vec(),
        },
    );
    w.assert_refused(&planner, &new, "client.metadata_document_invalid")
        .await;
    // Gone: not 200.
    w.docs.serve(
        PLANNER,
        Page {
            status: StatusCode::NOT_FOUND,
            headers: vec![],
            body: serde_json::to_vec(&document(&planner, &new)).unwrap(),
        },
    );
    w.assert_refused(&planner, &new, "client.metadata_document_unavailable")
        .await;
}

#[tokio::test]
async fn url_clients_outside_their_hosts_or_audiences_are_refused() {
    let w = world().await;
    let key = new_key();
    // No [[cimd.allow]] covers these hosts: nothing is fetched.
    for id in [
        "https://agents.example.org/planner",
        "https://example.com/planner",
        "https://evilagents.example.com/planner",
        "https://10.0.0.7/planner",
        "https://[::1]/planner",
    ] {
        w.assert_refused(id, &key, "client.url_client_host").await;
    }
    // A URL client reaches only its host's audiences.
    let planner = w.docs.url(PLANNER);
    w.docs.serve_json(PLANNER, &document(&planner, &key), None);
    let before = w.allows();
    let assertion = w.assertion(&planner, &key);
    w.exchange_as(&assertion, &[("audience", "billing-api")])
        .await
        .assert_error(400, "invalid_target");
    assert_eq!(w.allows(), before, "nothing minted");

    // Without [[cimd.allow]] there are no URL clients at all.
    let fetched = w.docs.hits(PLANNER);
    let bare = TestSts::start().await;
    let claims = json!({"iss": planner, "sub": planner, "aud": bare.url, "iat": T0, "exp": T0 + 60, "jti": "x"});
    let assertion = key.sign_raw(&json!({"alg": "ES256", "kid": key.kid}), &claims).unwrap();
    let alice = bare.user_token("alice", &[]);
    bare.post_form(
        "/token",
        None,
        &[
            ("grant_type", EXCHANGE),
            ("subject_token", &alice),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", "orders-api"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &assertion),
        ],
    )
    .await
    .assert_error(401, "invalid_client");
    assert_eq!(w.docs.hits(PLANNER), fetched, "no document was fetched without a rule");
}

#[tokio::test]
async fn url_client_ids_that_break_the_url_rules_are_invalid_client() {
    let w = world().await;
    let key = new_key();
    let planner = w.docs.url(PLANNER);
    w.docs.serve_json(PLANNER, &document(&planner, &key), None);
    let port = planner
        .trim_start_matches("http://127.0.0.1:")
        .trim_end_matches(PLANNER);
    for id in [
        // Userinfo.
        format!("http://user@127.0.0.1:{port}{PLANNER}"),
        format!("http://user:pass@127.0.0.1:{port}{PLANNER}"),
        // A fragment (even an empty one).
        format!("{planner}#x"),
        format!("{planner}#"),
        // Not https: plain http off loopback, other schemes.
        "http://agents.example.com/planner".to_owned(),
        "http://a.agents.example.com/planner".to_owned(),
        format!("ftp://127.0.0.1:{port}{PLANNER}"),
        // Dot segments, which parsing would quietly remove.
        format!("http://127.0.0.1:{port}/agents/../agents/planner"),
        format!("http://127.0.0.1:{port}/./agents/planner"),
        format!("http://127.0.0.1:{port}/agents/%2e%2e/agents/planner"),
        // No path.
        format!("http://127.0.0.1:{port}"),
        format!("http://127.0.0.1:{port}/"),
    ] {
        w.assert_refused(&id, &key, "client.url_client_id").await;
    }
    assert_eq!(w.docs.all_hits(), 0, "nothing was fetched");

    // `none` (a client_id and no credential) and a secret get no token for a URL client.
    let before = w.allows();
    let alice = w.sts.user_token("alice", &[]);
    let base = [
        ("grant_type", EXCHANGE),
        ("subject_token", alice.as_str()),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", "orders-api"),
    ];
    let mut none = base.to_vec();
    none.push(("client_id", planner.as_str()));
    w.sts
        .post_form("/token", None, &none)
        .await
        .assert_error(401, "invalid_client");
    w.sts
        .post_form("/token", Some((&planner, "a-guess")), &base)
        .await
        .assert_error(401, "invalid_client");
    assert_eq!(w.allows(), before, "nothing minted");
}

#[tokio::test]
async fn documents_on_internal_addresses_redirected_or_oversized_are_refused() {
    let w = world().await;
    let key = new_key();
    let knocks = Knocks::start().await;

    // A document redirecting to an internal address: redirects are never followed.
    let planner = w.docs.url(PLANNER);
    let internal = format!("http://localhost:{}/agents/planner", knocks.port);
    w.docs.serve(
        PLANNER,
        Page {
            status: StatusCode::FOUND,
            headers: vec![(header::LOCATION, internal)],
            body: vec![],
        },
    );
    w.assert_refused(&planner, &key, "client.metadata_document_unavailable")
        .await;
    assert_eq!(w.docs.hits(PLANNER), 1);

    // A document naming keys on an internal address its host list does not vouch for:
    // the name resolves to loopback, so it is never connected to.
    let keys_at_internal = format!("https://localhost:{}/jwks", knocks.port);
    w.docs.serve_json(
        PLANNER,
        &json!({"client_id": planner, "jwks_uri": keys_at_internal}),
        None,
    );
    w.assert_refused(&planner, &key, "client.metadata_document_unavailable")
        .await;

    // A client under a wildcard whose name resolves to loopback (where the resolver
    // knows `*.localhost`): a wildcard host is never internal.
    let wildcard = format!("https://planner.localhost:{}/agents/planner", knocks.port);
    w.assert_refused(&wildcard, &key, "client.metadata_document_unavailable")
        .await;
    assert_eq!(knocks.count(), 0, "nothing connected to the internal address");

    // A document larger than the cap (64 KiB).
    let mut big = document(&planner, &key);
    big["client_name"] = json!("x".repeat(70 * 1024));
    w.docs.serve_json(PLANNER, &big, None);
    w.sts.clock.advance(61);
    w.assert_refused(&planner, &key, "client.metadata_document_unavailable")
        .await;
}

#[tokio::test]
async fn a_url_client_revoked_as_a_client_is_refused() {
    let w = world().await;
    let key = new_key();
    let planner = w.docs.url(PLANNER);
    w.docs.serve_json(PLANNER, &document(&planner, &key), None);
    let reply = w.exchange(&planner, &key).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    w.sts.admin_revoke("client", &planner).await;
    w.assert_refused(&planner, &key, "client.revoked").await;
}
