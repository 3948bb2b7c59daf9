//! What an operator meets running the real binary: `config check`, start-up errors that
//! name the address and the key, an unreachable store reported at start, logs without
//! colour codes off a terminal (or JSON), SIGTERM finishing requests in flight, paths
//! relative to the config file, and key commands printing RFC 3339 times.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::redis_server::free_port;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mcp-sts");

pub(crate) fn example() -> String {
    std::fs::read_to_string("config/mcp-sts.toml").unwrap()
}

/// The example configuration on `port`, with its relative paths, written to `dir`.
pub(crate) fn write_config(dir: &Path, port: u16, revocation: &str) -> PathBuf {
    let text = example()
        .replace("listen = \"127.0.0.1:8400\"", &format!("listen = \"127.0.0.1:{port}\""))
        .replace(
            "backend = \"embedded\"         # one node: a file on disk. Replicas: \"redis\".",
            revocation,
        );
    let path = dir.join("mcp-sts.toml");
    std::fs::write(&path, text).unwrap();
    path
}

pub(crate) fn run(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).current_dir(cwd).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `mcp-sts serve` with its stderr lines collected.
pub(crate) struct Serving {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    pub(crate) url: String,
}

impl Serving {
    pub(crate) fn start(config: &Path, port: u16, extra: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(["serve", "--config", config.to_str().unwrap()])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self {
            child,
            lines,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Every stderr line up to and including the first containing `needle`, within 20 s.
    pub(crate) fn lines_until(&self, needle: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let done = line.contains(needle);
                    lines.push(line);
                    if done {
                        return lines;
                    }
                }
                Err(_) => panic!("no log line with {needle:?} after {lines:#?}"),
            }
        }
    }

    /// The first stderr line containing `needle`, within 20 s.
    pub(crate) fn line_with(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("no log line with {needle:?}"),
            }
        }
    }

    pub(crate) fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub(crate) fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "mcp-sts did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn config_check_prints_every_problem_and_fails_only_on_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let broken = example()
        .replace("default_ttl_seconds = 300", "default_ttl_seconds = 0")
        .replace("listen = \"127.0.0.1:8400\"", "listen = \"nowhere\"")
        .replace("secret_sha256 = \"", "secret_sha256 = \"zz")
        .replace(
            "mode = \"on_behalf_of\"        # or",
            "mode = \"service_identity\" # or",
        );
    std::fs::write(&path, broken).unwrap();
    let (code, out, _) = run(&["config", "check", "--config", path.to_str().unwrap()], dir.path());
    assert_ne!(code, 0, "{out}");
    for key in [
        "server.listen",
        "tokens.default_ttl_seconds",
        "clients[0].secret_sha256",
        "audiences[0].role_scopes",
    ] {
        assert!(out.contains(key), "{key} missing from:\n{out}");
    }
    assert!(out.contains("warning: `audiences[0].role_scopes`: has no effect in service_identity mode"));
    assert!(out.contains("3 errors, 1 warning"), "{out}");

    // Warnings alone do not fail the check.
    let only_warning = example().replace(
        "mode = \"on_behalf_of\"        # or",
        "mode = \"service_identity\" # or",
    );
    std::fs::write(&path, only_warning).unwrap();
    let (code, out, _) = run(&["config", "check", "--config", path.to_str().unwrap()], dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 errors, 1 warning"), "{out}");

    // Both `url` and `cluster`: the key is named.
    let both = example().replace(
        "url = \"redis://127.0.0.1:6379/0\"",
        "url = \"redis://127.0.0.1:6379/0\"\ncluster = [\"redis://127.0.0.1:7000\"]",
    );
    std::fs::write(&path, both).unwrap();
    let (code, out, _) = run(&["config", "check", "--config", path.to_str().unwrap()], dir.path());
    assert_ne!(code, 0);
    assert!(
        out.contains("`revocation.url`: set only one of url, cluster and sentinels"),
        "{out}"
    );
}

#[test]
fn a_taken_address_is_named_with_its_key_once_without_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let config = write_config(dir.path(), port, "backend = \"memory\"");
    let (code, _, err) = run(&["serve", "--config", config.to_str().unwrap()], dir.path());
    assert_ne!(code, 0);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.contains(&format!("127.0.0.1:{port}")) && last.contains("server.listen"),
        "{err}"
    );
    assert_eq!(last.matches("in use").count(), 1, "the cause once: {last}");
    assert!(
        !err.contains('\u{1b}'),
        "no colour codes when stderr is not a terminal: {err:?}"
    );
}

#[tokio::test]
async fn an_unreachable_store_is_reported_at_start_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let dead = free_port();
    let config = write_config(dir.path(), port, "backend = \"redis\"");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("redis://127.0.0.1:6379/0", &format!("redis://127.0.0.1:{dead}/0"));
    std::fs::write(&config, text).unwrap();
    let mut serving = Serving::start(&config, port, &["--log-format", "json"]);
    let warning: Value = serde_json::from_str(&serving.line_with("revocation store unreachable")).unwrap();
    assert_eq!(warning["level"], "WARN");
    assert_eq!(warning["fields"]["redis"], format!("127.0.0.1:{dead}"));
    let error = warning["fields"]["error"].as_str().unwrap().to_lowercase();
    assert!(error.contains("refused"), "{error}");
    serving.line_with("mcp-sts listening");
    let ready = reqwest::get(format!("{}/readyz", serving.url)).await.unwrap();
    assert_eq!(ready.status(), 503);

    serving.terminate();
    serving.line_with("shutting down");
    assert!(serving.wait().success());
}

#[test]
fn sigterm_lets_a_request_in_flight_finish() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // The upstream JWKS endpoint is ours: the exchange waits on it, so the request is
    // provably in flight when SIGTERM arrives.
    let jwks = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = write_config(dir.path(), port, "backend = \"memory\"");
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        "roles_claim = \"roles\"",
        &format!(
            "roles_claim = \"roles\"\njwks_uri = \"http://{}/jwks\"",
            jwks.local_addr().unwrap()
        ),
        1,
    );
    std::fs::write(&config, text).unwrap();
    let mut serving = Serving::start(&config, port, &[]);
    // The start-up key fetch finds keys under another kid, so the exchange below must
    // fetch again.
    let (mut warm_up, _) = jwks.accept().unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && warm_up.read(&mut byte).unwrap() == 1 {
        head.push(byte[0]);
    }
    let (other, _) = mcp_sts::keys::SigningKey::generate(mcp_sts::config::SigningAlgorithm::ES256, 0).unwrap();
    let document = serde_json::json!({"keys": [other.public_jwk]}).to_string();
    write!(
        warm_up,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{document}",
        document.len()
    )
    .unwrap();
    drop(warm_up);
    serving.line_with("mcp-sts listening");

    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let subject = format!(
        "{}.{}.c2ln",
        b64(serde_json::json!({"alg": "ES256", "kid": "k1", "typ": "JWT"})),
        b64(
            serde_json::json!({"iss": "https://idp.example.com", "sub": "alice", "aud": "mcp-sts", "exp": 4_000_000_000_u64})
        )
    );
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
            ("subject_token", subject.as_str()),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
            ("audience", "orders-api"),
            ("client_id", "orders-mcp"),
            ("client_secret", "orders-mcp-dev-secret"),
        ])
        .finish();
    let request = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            stream,
            "POST /token HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    });
    let (mut fetch, _) = jwks.accept().unwrap();
    serving.terminate();
    serving.line_with("shutting down");
    // Now let the refetch fail: the exchange still answers, from the keys it holds
    // (none under the token's kid).
    fetch
        .write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n")
        .unwrap();
    drop(fetch);
    let response = request.join().unwrap();
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(response.contains("signed with an unknown key"), "{response}");
    serving.line_with("mcp-sts stopped");
    assert!(serving.wait().success());
}

#[test]
fn paths_resolve_against_the_config_folder_and_key_times_are_rfc3339() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf");
    std::fs::create_dir(&conf).unwrap();
    let config = write_config(&conf, 8400, "backend = \"memory\"");
    let config = config.to_str().unwrap();
    // Run from the parent folder: the keys still land next to the config.
    let (code, out, err) = run(&["keys", "generate", "--config", config], dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&conf.join("keys").display().to_string()), "{out}");
    assert_eq!(std::fs::read_dir(conf.join("keys")).unwrap().count(), 1);
    assert!(!dir.path().join("keys").exists());

    let (code, out, err) = run(&["keys", "rotate", "--config", config], &conf);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("published now, signs from 20"), "{out}");
    assert!(out.contains("activate_after_seconds = 600"), "{out}");
    let (code, out, _) = run(&["keys", "list", "--config", config], Path::new("/"));
    assert_eq!(code, 0);
    let rfc3339 = |s: &str| s.len() == 20 && s.ends_with('Z') && s.as_bytes()[10] == b'T';
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{out}");
    for row in &rows {
        let created = row.split_whitespace().nth(2).unwrap();
        assert!(rfc3339(created), "{row}");
    }
    assert!(
        out.contains("signing") && out.contains("published, signs from 20"),
        "{out}"
    );
}

/// The keys `config check` prints for `severity` ("error" or "warning").
fn checked_keys(out: &str, severity: &str) -> std::collections::BTreeSet<String> {
    out.lines()
        .filter_map(|line| line.strip_prefix(&format!("{severity}: `")))
        .filter_map(|rest| rest.split('`').next())
        .map(String::from)
        .collect()
}

#[test]
fn serve_refuses_with_every_error_config_check_reports() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let broken = example()
        .replace("default_ttl_seconds = 300", "default_ttl_seconds = 0")
        .replace("listen = \"127.0.0.1:8400\"", "listen = \"nowhere\"")
        .replace("secret_sha256 = \"", "secret_sha256 = \"zz")
        .replace(
            "issuer = \"https://idp.example.com\"",
            "issuer = \"http://idp.example.com\"",
        );
    std::fs::write(&path, broken).unwrap();
    let (code, out, _) = run(&["config", "check", "--config", path.to_str().unwrap()], dir.path());
    assert_ne!(code, 0);
    let errors = checked_keys(&out, "error");
    assert!(errors.contains("issuers[0].issuer"), "keys over plain http: {out}");
    assert_eq!(errors.len(), 4, "{out}");

    let (code, _, err) = run(&["serve", "--config", path.to_str().unwrap()], dir.path());
    assert_ne!(code, 0);
    for key in &errors {
        assert!(err.contains(&format!("`{key}`")), "serve did not name {key}: {err}");
    }
}

#[test]
fn serve_logs_exactly_the_warnings_config_check_reports() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port, "backend = \"memory\"");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(
            "issuer = \"http://127.0.0.1:8400\"",
            "issuer = \"http://sts.internal.example:8400\"",
        )
        .replace(
            "mode = \"on_behalf_of\"        # or",
            "mode = \"service_identity\" # or",
        )
        .replace("# [ssf]\n", "[ssf]\npush_allow_private_networks = true\n");
    std::fs::write(&config, text).unwrap();
    let (code, out, _) = run(&["config", "check", "--config", config.to_str().unwrap()], dir.path());
    assert_eq!(code, 0, "{out}");
    let checked = checked_keys(&out, "warning");
    assert!(checked.contains("server.issuer"), "{out}");
    assert_eq!(checked.len(), 3, "{out}");

    let serving = Serving::start(&config, port, &["--log-format", "json"]);
    let mut logged = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let line = serving
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("mcp-sts listening");
        if line.contains("mcp-sts listening") {
            break;
        }
        let Ok(event) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        // The example's IdP is not reachable from a test: a runtime state, not a setting.
        let unreachable_idp = event["target"] == "mcp_sts_contract::jose::jwks"
            || event["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("issuer keys unavailable"));
        if event["level"] == "WARN" && !unreachable_idp {
            let key = event["fields"]["key"].as_str();
            assert!(key.is_some(), "a start-up warning config check does not report: {line}");
            logged.insert(key.unwrap_or_default().to_owned());
        }
    }
    assert_eq!(logged, checked, "serve and config check disagree");
}
