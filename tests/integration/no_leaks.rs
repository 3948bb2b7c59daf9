//! The real binary, logging at `trace`, never writes a secret: a whole run (exchanges,
//! a hop, introspection, `/revoke`, admin revocations, and failures of every kind) is
//! driven through `mcp-sts serve`, then all of its stdout (audit) and stderr (logs) is
//! searched for every presented or minted token, their payloads and signatures, every
//! client assertion, client secret and the admin credential.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::attack::{high_s_twin, segments, with_signature};
use crate::support::sts::*;
use mcp_sts::config::SigningAlgorithm;
use mcp_sts::keys::SigningKey;
use mcp_sts_demo::dev_idp::DevIdp;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-sts");
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Everything the run presented or received that must never be written down.
#[derive(Default)]
struct Secrets(Vec<(String, String)>);

impl Secrets {
    fn text(&mut self, what: &str, value: &str) {
        self.0.push((what.to_owned(), value.to_owned()));
    }

    /// A JWT, its payload segment and its signature segment (the header segment is
    /// shared by every token of one key, and says nothing).
    fn token(&mut self, what: &str, token: &str) {
        self.text(what, token);
        let (_, payload, signature) = segments(token);
        if payload.len() >= 16 {
            self.text(&format!("{what} payload"), &payload);
        }
        if signature.len() >= 16 {
            self.text(&format!("{what} signature"), &signature);
        }
    }
}

/// Drain a pipe into a shared buffer on a thread of its own, waking `more` each time.
fn collect(
    mut pipe: impl Read + Send + 'static,
    into: Arc<Mutex<Vec<u8>>>,
    more: Arc<tokio::sync::Notify>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock().unwrap().extend_from_slice(&buf[..n]);
            more.notify_one();
        }
        more.notify_one();
    })
}

struct Running {
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Running {
    async fn start(config: &std::path::Path) -> Self {
        let mut child = Command::new(BIN)
            .args(["serve", "--config", config.to_str().unwrap()])
            .env("RUST_LOG", "trace")
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let logged = Arc::new(tokio::sync::Notify::new());
        let readers = vec![
            collect(
                child.stdout.take().unwrap(),
                stdout.clone(),
                Arc::new(tokio::sync::Notify::new()),
            ),
            collect(child.stderr.take().unwrap(), stderr.clone(), logged.clone()),
        ];
        let running = Self {
            child,
            stdout,
            stderr,
            readers,
        };
        // Ready once it logs that it listens (the listener is bound before that line).
        let ready = async {
            loop {
                let text = String::from_utf8_lossy(&running.stderr.lock().unwrap()).into_owned();
                if text.contains("mcp-sts listening") {
                    return;
                }
                assert!(
                    running.readers.iter().all(|r| !r.is_finished()),
                    "mcp-sts exited: {text}"
                );
                logged.notified().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), ready)
            .await
            .expect("mcp-sts did not start");
        running
    }

    /// Interrupt (graceful shutdown, logs flushed) and return stdout and stderr.
    async fn stop(mut self) -> (String, String) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let mut child = self.child;
        let waited = tokio::task::spawn_blocking(move || {
            let status = child.wait();
            (child, status)
        });
        match tokio::time::timeout(Duration::from_secs(15), waited).await {
            Ok(Ok((_, status))) => assert!(status.is_ok()),
            _ => panic!("mcp-sts did not stop on SIGINT"),
        }
        for reader in self.readers.drain(..) {
            reader.join().unwrap();
        }
        let text = |b: &Arc<Mutex<Vec<u8>>>| String::from_utf8_lossy(&b.lock().unwrap()).into_owned();
        (text(&self.stdout), text(&self.stderr))
    }
}

async fn post(url: &str, path: &str, basic: Option<(&str, &str)>, form: &[(&str, &str)]) -> Reply {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut request = reqwest::Client::new()
        .post(format!("{url}{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some((id, secret)) = basic {
        request = request.header("authorization", basic_header(id, secret));
    }
    Reply::from(request.send().await.unwrap()).await
}

async fn exchange(url: &str, client: (&str, &str), subject: &str, extra: &[(&str, &str)]) -> Reply {
    let mut form = vec![
        ("grant_type", EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN),
    ];
    form.extend_from_slice(extra);
    post(url, "/token", Some(client), &form).await
}

async fn admin(url: &str, method: reqwest::Method, path: &str, credential: &str, body: Option<Value>) -> u16 {
    let mut request = reqwest::Client::new()
        .request(method, format!("{url}/admin/revocations{path}"))
        .bearer_auth(credential);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap().status().as_u16()
}

fn now() -> u64 {
    mcp_sts_contract::clock::Clock::now(&mcp_sts_contract::clock::SystemClock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_run_at_trace_level_writes_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let idp = DevIdp::start_local().await.unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let (client_key, _) = SigningKey::generate(SigningAlgorithm::ES256, 0).unwrap();
    let jwks = toml::Value::try_from(json!({"keys": [client_key.public_jwk]})).unwrap();
    let extra = format!("\n[[clients]]\nclient_id = \"jwt-inline\"\naudiences = [\"orders-api\"]\njwks = {jwks}\n");
    let revocation = format!(
        "backend = \"embedded\"\ntimeout_ms = 5000\npath = \"{}\"",
        dir.path().join("revocations.db").display()
    );
    let toml = config_toml_with(
        &url,
        &idp,
        dir.path().join("keys").to_str().unwrap(),
        &extra,
        &revocation,
        Some(ADMIN_TOKEN),
    )
    .replace("listen = \"127.0.0.1:0\"", &format!("listen = \"127.0.0.1:{port}\""));
    let config = dir.path().join("mcp-sts.toml");
    std::fs::write(&config, toml).unwrap();

    let sts = Running::start(&config).await;
    let mut secrets = Secrets::default();
    for (what, secret) in [
        ("orders-mcp secret", ORDERS_MCP_SECRET),
        ("orders-api secret", ORDERS_API_SECRET),
        ("billing-api secret", BILLING_API_SECRET),
        ("admin credential", ADMIN_TOKEN),
    ] {
        secrets.text(what, secret);
    }
    let t = now();
    let orders_mcp = ("orders-mcp", ORDERS_MCP_SECRET);
    let orders_api = ("orders-api", ORDERS_API_SECRET);
    let billing_api = ("billing-api", BILLING_API_SECRET);
    let aud = ("audience", "orders-api");

    // Successful exchanges: on behalf of, with an actor, service identity, restricted.
    let alice = idp
        .user_token(
            "alice",
            "mcp-sts",
            &["order-admin", "developer"],
            t,
            3600,
            &json!({"sid": "sess-a"}),
        )
        .unwrap();
    let agent = idp
        .user_token("claude-desktop", "mcp-sts", &[], t, 3600, &json!({}))
        .unwrap();
    secrets.token("subject token", &alice);
    secrets.token("actor token", &agent);
    let first = exchange(
        &url,
        orders_mcp,
        &alice,
        &[aud, ("actor_token", &agent), ("actor_token_type", JWT)],
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.text);
    let hop1 = first.token();
    secrets.token("minted token", &hop1);
    for audience in ["inventory-api", "legacy-api"] {
        let reply = exchange(&url, orders_mcp, &alice, &[("audience", audience)]).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        secrets.token("minted token", &reply.token());
    }
    // A hop, introspection, and /revoke.
    let second = exchange(&url, orders_api, &hop1, &[("audience", "billing-api")]).await;
    assert_eq!(second.status, 200, "{}", second.text);
    let hop2 = second.token();
    secrets.token("hop token", &hop2);
    let introspected = post(&url, "/introspect", Some(billing_api), &[("token", &hop2)]).await;
    assert_eq!(introspected.body["active"], true, "{}", introspected.text);
    let revoked = post(&url, "/revoke", Some(orders_api), &[("token", &hop1)]).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    let again = exchange(&url, orders_api, &hop1, &[("audience", "billing-api")]).await;
    assert_eq!(again.error(), "invalid_request", "{}", again.text);

    // Client assertions: one good, one replayed, one for the wrong audience.
    let assertion = |jti: &str, aud: &str| {
        client_key
            .sign_raw(
                &json!({"alg": "ES256", "kid": client_key.kid}),
                &json!({"iss": "jwt-inline", "sub": "jwt-inline", "aud": aud, "exp": t + 60, "iat": t, "jti": jti}),
            )
            .unwrap()
    };
    let good = assertion("a-1", &url);
    let wrong_audience = assertion("a-2", "https://elsewhere.example");
    for (a, expected) in [(&good, 200), (&good, 401), (&wrong_audience, 401)] {
        secrets.token("client assertion", a);
        let reply = post(
            &url,
            "/token",
            None,
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &alice),
                ("subject_token_type", ACCESS_TOKEN),
                aud,
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", a),
            ],
        )
        .await;
        assert_eq!(reply.status, expected, "{}", reply.text);
        if expected == 200 {
            secrets.token("minted token", &reply.token());
        }
    }

    // Failures of every kind.
    let wrong_secrets = ["wrong-secret-one-7f3a9c", "orders-mcp-secreT"];
    for wrong in wrong_secrets {
        secrets.text("wrong client secret", wrong);
        let reply = exchange(&url, ("orders-mcp", wrong), &alice, &[aud]).await;
        assert_eq!(reply.status, 401);
        let reply = post(
            &url,
            "/token",
            None,
            &[
                ("grant_type", EXCHANGE),
                ("client_id", "orders-mcp"),
                ("client_secret", wrong),
            ],
        )
        .await;
        assert_eq!(reply.status, 401);
        assert_eq!(
            post(&url, "/introspect", Some(("billing-api", wrong)), &[("token", &hop2)])
                .await
                .status,
            401
        );
        assert_eq!(
            post(&url, "/revoke", Some(("orders-api", wrong)), &[("token", &hop2)])
                .await
                .status,
            401
        );
    }
    assert_eq!(
        exchange(&url, ("ghost", "ghost-secret-91b2"), &alice, &[aud])
            .await
            .status,
        401
    );
    secrets.text("unknown client secret", "ghost-secret-91b2");
    let expired = idp
        .user_token("alice", "mcp-sts", &["developer"], t - 7200, 3600, &json!({}))
        .unwrap();
    let tampered = with_signature(&alice, &[7u8; 64]);
    let twin = high_s_twin(&alice);
    let unsigned = format!(
        "{}.{}.",
        mcp_sts_demo::dev_idp::b64_json(&json!({"alg": "none"})),
        segments(&alice).1
    );
    let foreign = idp
        .user_token("alice", "someone-else", &[], t, 3600, &json!({}))
        .unwrap();
    for (what, bad) in [
        ("expired token", &expired),
        ("tampered token", &tampered),
        ("twin token", &twin),
        ("unsigned token", &unsigned),
        ("foreign audience token", &foreign),
    ] {
        secrets.token(what, bad);
        let reply = exchange(&url, orders_mcp, bad, &[aud]).await;
        assert!(reply.status == 400 || reply.status == 200, "{what}: {}", reply.text);
        if reply.status == 200 {
            secrets.token("minted token", &reply.token());
        }
        let reply = exchange(
            &url,
            orders_mcp,
            &alice,
            &[aud, ("actor_token", bad), ("actor_token_type", JWT)],
        )
        .await;
        if reply.status == 200 {
            secrets.token("minted token", &reply.token());
        }
        assert_eq!(
            post(&url, "/introspect", Some(billing_api), &[("token", bad)])
                .await
                .status,
            200
        );
    }
    let reply = exchange(&url, orders_mcp, &alice, &[("audience", "nowhere")]).await;
    assert_eq!(reply.error(), "invalid_target");
    let reply = exchange(&url, orders_mcp, &alice, &[aud, ("scope", "orders:root")]).await;
    assert_eq!(reply.error(), "invalid_scope");

    // Admin: revoke, list, reinstate, and wrong credentials (in the header and the query).
    use reqwest::Method;
    let body = |kind: &str, value: &str| Some(json!({"kind": kind, "value": value, "reason": "offboarding"}));
    assert_eq!(
        admin(&url, Method::POST, "", ADMIN_TOKEN, body("subject", "bob")).await,
        201
    );
    assert_eq!(
        admin(&url, Method::POST, "", ADMIN_TOKEN, body("session", "sess-a")).await,
        201
    );
    assert_eq!(
        admin(&url, Method::POST, "", ADMIN_TOKEN, body("agent", "claude-desktop")).await,
        201
    );
    assert_eq!(admin(&url, Method::GET, "", ADMIN_TOKEN, None).await, 200);
    assert_eq!(
        admin(&url, Method::DELETE, "/agent/claude-desktop", ADMIN_TOKEN, None).await,
        200
    );
    let wrong_admin = "admin-guess-5d1e77";
    secrets.text("wrong admin credential", wrong_admin);
    assert_eq!(admin(&url, Method::GET, "", wrong_admin, None).await, 401);
    let in_query = reqwest::get(format!("{url}/admin/revocations?access_token={ADMIN_TOKEN}"))
        .await
        .unwrap();
    assert_eq!(in_query.status(), 401);
    let reply = exchange(&url, orders_mcp, &alice, &[aud]).await;
    assert_eq!(
        reply.error(),
        "invalid_request",
        "the session is revoked: {}",
        reply.text
    );

    let (stdout, stderr) = sts.stop().await;
    // The run really was logged: audit lines on stdout, trace logs on stderr.
    assert!(
        stdout.contains("\"event\":\"token_exchange\""),
        "no audit lines: {stdout}"
    );
    assert!(stdout.contains("\"event\":\"admin_revoke\""));
    assert!(stderr.contains("TRACE") || stderr.contains("DEBUG"), "no debug logs");
    let mut leaks = Vec::new();
    for (what, secret) in &secrets.0 {
        for (stream, text) in [("stdout", &stdout), ("stderr", &stderr)] {
            if let Some(at) = text.find(secret.as_str()) {
                let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
                let line: String = text[line_start..]
                    .lines()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(300)
                    .collect();
                leaks.push(format!("{what} in {stream}: {line}"));
            }
        }
    }
    leaks.sort();
    leaks.dedup();
    assert!(
        leaks.is_empty(),
        "{} secrets were written ({} bytes of stdout, {} of stderr searched):\n  {}",
        leaks.len(),
        stdout.len(),
        stderr.len(),
        leaks.join("\n  ")
    );
}
