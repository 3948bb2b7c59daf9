//! Readiness that means it: every issuer's keys are fetched at start; `/readyz` and
//! `/metrics` say per issuer whether they are held; `config check --online` performs
//! the discovery and key fetches and says what it found. Against a real HTTP IdP the
//! test starts and an issuer nobody answers for.

use std::path::Path;
use std::process::Command;

use crate::operations::Serving;
use crate::support::redis_server::free_port;
use crate::support::sts::{ADMIN_TOKEN, TestSts, config_toml_with};
use mcp_sts_demo::dev_idp::DevIdp;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-sts");

/// The test configuration with a second issuer whose JWKS endpoint nobody serves.
fn write_config(dir: &Path, idp: &DevIdp, port: u16, dead: &str) -> std::path::PathBuf {
    let url = format!("http://127.0.0.1:{port}");
    let keys = dir.join("keys");
    let unreachable = format!(
        "\n[[issuers]]\nissuer = \"https://unreachable.example\"\naudience = \"mcp-sts\"\njwks_uri = \"{dead}/jwks.json\"\n"
    );
    let toml = config_toml_with(
        &url,
        idp,
        keys.to_str().unwrap(),
        &unreachable,
        "backend = \"memory\"",
        Some(ADMIN_TOKEN),
    )
    .replace("listen = \"127.0.0.1:0\"", &format!("listen = \"127.0.0.1:{port}\""));
    let path = dir.join("mcp-sts.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_fetched_at_start_and_readiness_names_the_issuer_without_them() {
    let idp = DevIdp::start_local().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let dead = format!("http://127.0.0.1:{}", free_port());
    let config = write_config(dir.path(), &idp, port, &dead);
    let serving = Serving::start(&config, port, &["--log-format", "json"]);
    let lines = serving.lines_until("mcp-sts listening");
    let line = |needle: &str| -> Value {
        let text = lines
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle}: {lines:#?}"));
        serde_json::from_str(text).unwrap()
    };
    let fetched = line("issuer keys fetched");
    assert_eq!(fetched["fields"]["issuer"], idp.issuer());
    let published = reqwest::get(idp.jwks_uri())
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["keys"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(fetched["fields"]["keys"], published);
    let missing = line("issuer keys unavailable");
    assert_eq!(missing["level"], "WARN");
    assert_eq!(missing["fields"]["issuer"], "https://unreachable.example");
    assert!(
        missing["fields"]["error"]
            .as_str()
            .unwrap()
            .contains(&format!("{dead}/jwks.json"))
    );
    assert!(idp.jwks_requests() >= 1, "fetched before any token arrived");

    let ready = reqwest::get(format!("{}/readyz", serving.url)).await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(
        ready.json::<Value>().await.unwrap(),
        json!({
            "keys": true,
            "revocation_store": true,
            "issuers": {idp.issuer(): true, "https://unreachable.example": false}
        })
    );

    let metrics = reqwest::get(format!("{}/metrics", serving.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dev = idp.issuer();
    for expected in [
        format!("mcp_sts_issuer_keys_available{{issuer=\"{dev}\"}} 1"),
        "mcp_sts_issuer_keys_available{issuer=\"https://unreachable.example\"} 0".to_owned(),
        "mcp_sts_issuer_key_fetch_failures_total{issuer=\"https://unreachable.example\"} 1".to_owned(),
        format!("mcp_sts_issuer_key_fetch_failures_total{{issuer=\"{dev}\"}} 0"),
        "mcp_sts_ready 0".to_owned(),
        "mcp_sts_revocation_store_up 1".to_owned(),
    ] {
        assert!(metrics.contains(&expected), "{expected} missing from:\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_check_online_says_what_each_issuer_serves() {
    let idp = DevIdp::start_local().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dead = format!("http://127.0.0.1:{}", free_port());
    let config = write_config(dir.path(), &idp, free_port(), &dead);
    let config = config.to_str().unwrap().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["config", "check", "--online", "--config", &config])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let jwks: Value = reqwest::get(idp.jwks_uri()).await.unwrap().json().await.unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    let line = text
        .lines()
        .find(|l| l.starts_with("online: `issuers[0]`"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.starts_with(&format!(
            "online: `issuers[0]` {}: discovery: {} usable keys (kid ",
            idp.issuer(),
            kids.len()
        )),
        "{line}"
    );
    for kid in kids {
        assert!(line.contains(kid), "{kid} missing: {line}");
    }
    assert!(
        text.contains(&format!(
            "error: `issuers[1]`: https://unreachable.example via JWKS {dead}/jwks.json: no usable key: JWKS endpoint {dead}/jwks.json"
        )),
        "{text}"
    );
    assert!(text.contains(": 1 error, 0 warnings"), "{text}");

    // Offline, the same file has nothing wrong: the fetches are what --online adds.
    let offline = Command::new(BIN)
        .args([
            "config",
            "check",
            "--config",
            dir.path().join("mcp-sts.toml").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        offline.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&offline.stdout)
    );
}

#[tokio::test]
async fn readiness_reports_an_issuer_not_fetched_yet_as_null_and_fetched_as_true() {
    let sts = TestSts::start().await;
    let get = || async { reqwest::get(format!("{}/readyz", sts.url)).await.unwrap() };
    let before = get().await;
    assert_eq!(before.status(), 200);
    assert_eq!(
        before.json::<Value>().await.unwrap()["issuers"],
        json!({sts.idp.issuer(): null})
    );
    let alice = sts.user_token("alice", &["developer"]);
    assert_eq!(sts.exchange(&alice, &[("audience", "orders-api")]).await.status, 200);
    let after = get().await;
    assert_eq!(after.status(), 200);
    assert_eq!(
        after.json::<Value>().await.unwrap()["issuers"],
        json!({sts.idp.issuer(): true})
    );
}
