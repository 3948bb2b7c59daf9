//! The real `mcp-sts` binary: configuration errors, `serve`, key rotation through
//! `keys rotate`, `revoke` through the admin API, and embedded revocations that
//! survive a restart.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::sts::{ADMIN_TOKEN, ORDERS_MCP_SECRET, Reply, basic_header, config_toml_with, decode_header};
use mcp_sts_demo::dev_idp::DevIdp;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-sts");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A config file for the binary: the test config with a real listen address.
fn write_config(dir: &Path, idp: &DevIdp, port: u16, revocation: &str) -> std::path::PathBuf {
    let url = format!("http://127.0.0.1:{port}");
    let keys = dir.join("keys");
    let toml = config_toml_with(&url, idp, keys.to_str().unwrap(), "", revocation, Some(ADMIN_TOKEN))
        .replace("listen = \"127.0.0.1:0\"", &format!("listen = \"127.0.0.1:{port}\""))
        .replace("[keys]\n", "[keys]\nreload_seconds = 1\n");
    let path = dir.join("mcp-sts.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

struct Server {
    child: Child,
    url: String,
    audit: std::sync::mpsc::Receiver<String>,
}

impl Server {
    async fn start(config: &Path, port: u16) -> Self {
        let mut child = Command::new(BIN)
            .args(["serve", "--config", config.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, audit) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = reqwest::get(format!("{url}/healthz")).await
                && r.status() == 200
            {
                break;
            }
            assert!(Instant::now() < deadline, "mcp-sts did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { child, url, audit }
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn cli(args: &[&str], url: &str) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("MCP_STS_URL", url)
        .env("MCP_STS_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("USER", "secops")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn exchange(url: &str, subject: &str) -> Reply {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", crate::support::sts::EXCHANGE),
            ("subject_token", subject),
            ("subject_token_type", crate::support::sts::ACCESS_TOKEN),
            ("audience", "orders-api"),
        ])
        .finish();
    let response = reqwest::Client::new()
        .post(format!("{url}/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", basic_header("orders-mcp", ORDERS_MCP_SECRET))
        .body(body)
        .send()
        .await
        .unwrap();
    Reply::from(response).await
}

fn now() -> u64 {
    mcp_sts_contract::clock::Clock::now(&mcp_sts_contract::clock::SystemClock)
}

#[test]
fn configuration_mistakes_stop_the_service_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string("config/mcp-sts.toml").unwrap();
    let cases = [
        (good.replace("[tokens]\n", "[tokens]\ncolour = \"blue\"\n"), "colour"),
        (
            good.replace("default_ttl_seconds = 300", "default_ttl_seconds = 0"),
            "tokens.default_ttl_seconds",
        ),
        (
            good.replace("audiences = [\"orders-api\"]", "audiences = []"),
            "audiences[0].id",
        ),
        (
            good.replace("issuer = \"https://idp.example.com\"", "issuer = \"teleport.local\""),
            "issuers[0].jwks_uri",
        ),
        (
            good.replace("listen = \"127.0.0.1:8400\"", "listen = \"nowhere\""),
            "server.listen",
        ),
        (
            good.replace("roles_claim = \"roles\"", "roles_claim = \"roles\"\nagent_claim = \"\""),
            "issuers[0].agent_claim",
        ),
        (
            good.replace("secret_sha256 = \"", "secret_sha256 = \"zz"),
            "clients[0].secret_sha256",
        ),
        (
            good.replace("backend = \"embedded\"", "backend = \"floppy\""),
            "backend",
        ),
    ];
    for (text, key) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let out = Command::new(BIN)
            .args(["serve", "--config", path.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{key}: started anyway");
        assert!(stderr.contains(key), "{key}: {stderr}");
    }
    let out = Command::new(BIN)
        .args(["serve", "--config", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[tokio::test]
async fn serve_generates_a_private_key_and_rotation_keeps_old_tokens_verifiable() {
    let dir = tempfile::tempdir().unwrap();
    let idp = DevIdp::start_local().await.unwrap();
    let port = free_port();
    let config = write_config(dir.path(), &idp, port, "backend = \"memory\"");
    let server = Server::start(&config, port).await;

    let keys: Vec<_> = std::fs::read_dir(dir.path().join("keys"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(keys.len(), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&keys[0]).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let alice = idp
        .user_token("alice", "mcp-sts", &["developer"], now(), 600, &json!({}))
        .unwrap();
    let first = exchange(&server.url, &alice).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let old_kid = decode_header(&first.token())["kid"].as_str().unwrap().to_owned();
    // The audit event is a JSON line on stdout.
    let line = server.audit.recv_timeout(Duration::from_secs(5)).unwrap();
    let event: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["decision"], "allow");
    assert!(!line.contains(&alice));

    // --now: the new key signs at once, without the default pre-publication delay.
    let (ok, out, err) = cli(
        &["keys", "rotate", "--now", "--config", config.to_str().unwrap()],
        &server.url,
    );
    assert!(ok, "{err}");
    assert!(out.contains("it signs now"), "{out}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let new_kid = loop {
        let reply = exchange(&server.url, &alice).await;
        let kid = decode_header(&reply.token())["kid"].as_str().unwrap().to_owned();
        if kid != old_kid {
            break kid;
        }
        assert!(Instant::now() < deadline, "the rotation was not picked up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let jwks: Value = reqwest::get(format!("{}/.well-known/jwks.json", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()),
        "{kids:?}"
    );
    let (ok, out, _) = cli(&["keys", "list", "--config", config.to_str().unwrap()], &server.url);
    assert!(
        ok && out.contains("signing") && out.contains("published until"),
        "{out}"
    );
    server.stop();
}

#[tokio::test]
async fn revoke_cli_and_embedded_revocations_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let idp = DevIdp::start_local().await.unwrap();
    let port = free_port();
    let db = dir.path().join("var").join("revocations.db");
    let config = write_config(
        dir.path(),
        &idp,
        port,
        &format!("backend = \"embedded\"\npath = \"{}\"", db.display()),
    );
    let server = Server::start(&config, port).await;
    let carol = idp
        .user_token("carol@example.com", "mcp-sts", &["developer"], now(), 600, &json!({}))
        .unwrap();
    assert_eq!(exchange(&server.url, &carol).await.status, 200);

    let (ok, out, err) = cli(
        &["revoke", "--subject", "carol@example.com", "--reason", "offboarding"],
        &server.url,
    );
    assert!(ok, "{err}");
    let entry: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(entry["revoked_by"], "secops");
    assert_eq!(entry["reason"], "offboarding");
    exchange(&server.url, &carol).await.assert_error(400, "invalid_request");
    let (ok, _, err) = cli(
        &["revoke", "--agent", "claude desktop+1", "--reason", "rogue"],
        &server.url,
    );
    assert!(ok, "{err}");
    server.stop();

    let server = Server::start(&config, port).await;
    exchange(&server.url, &carol).await.assert_error(400, "invalid_request");
    let (ok, out, _) = cli(&["revoke", "--list"], &server.url);
    assert!(
        ok && out.contains("carol@example.com") && out.contains("offboarding") && out.contains("claude desktop+1"),
        "{out}"
    );
    let (ok, _, err) = cli(&["revoke", "--reinstate", "--agent", "claude desktop+1"], &server.url);
    assert!(ok, "{err}");
    let (ok, _, err) = cli(
        &["revoke", "--reinstate", "--subject", "carol@example.com"],
        &server.url,
    );
    assert!(ok, "{err}");
    assert_eq!(exchange(&server.url, &carol).await.status, 200);
    let (ok, out, _) = cli(&["revoke", "--list"], &server.url);
    assert!(ok && !out.contains("carol") && !out.contains("claude"), "{out}");
    // A wrong credential is refused and nothing is changed.
    let out = Command::new(BIN)
        .args(["revoke", "--subject", "alice"])
        .env("MCP_STS_URL", &server.url)
        .env("MCP_STS_ADMIN_TOKEN", "wrong")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let (_, out, _) = cli(&["revoke", "--list"], &server.url);
    assert!(!out.contains("alice"));
    server.stop();
}
