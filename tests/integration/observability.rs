//! `/metrics` as an operator's dashboard reads it: every endpoint counted and timed
//! (not only exchanges), the signing key's age, and each Shared Signals receiver's
//! backlog and last delivery.

use crate::support::ssf::{Receiver, all_events};
use crate::support::sts::{ORDERS_API_SECRET, Options, TestSts};
use serde_json::json;

async fn metrics(sts: &TestSts) -> String {
    reqwest::get(format!("{}/metrics", sts.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_endpoint_is_counted_and_timed_by_route_method_and_status() {
    let sts = TestSts::start_opts(Options {
        admin: true,
        ..Options::default()
    })
    .await;
    let get = |path: &str| reqwest::get(format!("{}{path}", sts.url));
    assert_eq!(get("/.well-known/jwks.json").await.unwrap().status(), 200);
    assert_eq!(get("/.well-known/jwks.json").await.unwrap().status(), 200);
    assert_eq!(
        get("/.well-known/oauth-authorization-server").await.unwrap().status(),
        200
    );
    assert_eq!(get("/.well-known/ssf-configuration").await.unwrap().status(), 200);
    assert_eq!(get("/no/such/path").await.unwrap().status(), 404);
    let introspected = sts.introspect(("orders-api", ORDERS_API_SECRET), "not-a-token").await;
    assert_eq!(introspected.status, 200);
    assert_eq!(sts.admin(reqwest::Method::GET, "", None).await.status, 200);
    let alice = sts.user_token("alice", &["developer"]);
    assert_eq!(sts.exchange(&alice, &[("audience", "orders-api")]).await.status, 200);
    let receiver = Receiver::new(&sts.url, "orders-api", ORDERS_API_SECRET);
    let stream = receiver.create_poll_stream(&all_events(&sts.url)).await;
    let endpoint = stream["delivery"]["endpoint_url"].as_str().unwrap().to_owned();
    sts.admin_revoke("subject", "carol@example.com").await;
    let sets = receiver
        .poll(&endpoint, json!({"maxEvents": 1, "returnImmediately": true}))
        .await;
    assert_eq!(sets.status, 200, "{}", sets.text);

    let text = metrics(&sts).await;
    let count = |route: &str, method: &str, status: &str| {
        format!(
            "mcp_sts_http_request_duration_seconds_count{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}}"
        )
    };
    for (line, value) in [
        (count("/.well-known/jwks.json", "GET", "2xx"), 2),
        (count("/.well-known/oauth-authorization-server", "GET", "2xx"), 1),
        (count("/.well-known/ssf-configuration", "GET", "2xx"), 1),
        (count("(unknown path)", "GET", "4xx"), 1),
        (count("/introspect", "POST", "2xx"), 1),
        (count("/admin/revocations", "GET", "2xx"), 1),
        (count("/admin/revocations", "POST", "2xx"), 1),
        (count("/token", "POST", "2xx"), 1),
        (count("/ssf/streams", "POST", "2xx"), 1),
        (count("/ssf/poll/{stream_id}", "POST", "2xx"), 1),
    ] {
        assert!(
            text.contains(&format!("{line} {value}\n")),
            "{line} {value} missing from:\n{text}"
        );
    }
    // The histogram has buckets, not only a count.
    assert!(
        text.contains("mcp_sts_http_request_duration_seconds_bucket{le=\"0.0005\",route=\"/token\",method=\"POST\",status=\"2xx\"}")
            || text.contains("mcp_sts_http_request_duration_seconds_bucket{route=\"/token\",method=\"POST\",status=\"2xx\",le=\"0.0005\"}"),
        "{text}"
    );
    // The receiver's backlog: the SET handed over with maxEvents 1, and the one behind
    // it (a subject revocation queues one per covered event type, at least one).
    let backlog = text
        .lines()
        .find(|l| l.starts_with("mcp_sts_ssf_stream_backlog{receiver=\"orders-api\",delivery=\"poll\"}"))
        .unwrap_or_else(|| panic!("no backlog line:\n{text}"));
    assert!(backlog.ends_with(" 1") || backlog.ends_with(" 2"), "{backlog}");
    assert!(
        text.contains(&format!(
            "mcp_sts_ssf_stream_last_delivery_timestamp_seconds{{receiver=\"orders-api\",delivery=\"poll\"}} {}\n",
            sts.clock_now()
        )),
        "{text}"
    );
}

#[tokio::test]
async fn the_signing_keys_age_follows_the_clock() {
    let sts = TestSts::start().await;
    assert!(metrics(&sts).await.contains("mcp_sts_signing_key_age_seconds 0\n"));
    sts.clock.advance(3_600);
    assert!(
        metrics(&sts).await.contains("mcp_sts_signing_key_age_seconds 3600\n"),
        "{}",
        metrics(&sts).await
    );
}

/// Every `mcp_sts_*` name in `text`, without the histogram and counter suffixes.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("mcp_sts_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let mut name = &tail[..end];
        for suffix in ["_bucket", "_count", "_sum", "_total"] {
            name = name.strip_suffix(suffix).unwrap_or(name);
        }
        names.insert(name.to_owned());
        rest = &tail[end..];
    }
    names
}

/// The metrics the service registers (a family appears on `/metrics` from its first
/// sample on, so the registry, not one scrape, is the list).
fn registered() -> std::collections::BTreeSet<String> {
    let source = std::fs::read_to_string("src/metrics.rs").unwrap();
    source
        .split("registry.register(")
        .skip(1)
        .filter_map(|call| call.split('"').nth(1))
        .map(|name| format!("mcp_sts_{name}"))
        .collect()
}

#[tokio::test]
async fn the_alert_rules_and_the_dashboard_read_metrics_the_service_exports() {
    let exported = registered();
    assert!(
        exported.contains("mcp_sts_http_request_duration_seconds"),
        "{exported:?}"
    );
    // What one scrape shows is registered too (the list above is the real one).
    let sts = TestSts::start().await;
    let alice = sts.user_token("alice", &["developer"]);
    assert_eq!(sts.exchange(&alice, &[("audience", "orders-api")]).await.status, 200);
    let scraped = metric_names(&metrics(&sts).await);
    let unregistered: Vec<&String> = scraped.difference(&exported).collect();
    assert!(unregistered.is_empty(), "{unregistered:?}");
    for file in ["deploy/prometheus/mcp-sts.rules.yml", "deploy/grafana/mcp-sts.json"] {
        let used = metric_names(&std::fs::read_to_string(file).unwrap());
        assert!(used.len() >= 5, "{file}: {used:?}");
        let unknown: Vec<&String> = used.difference(&exported).collect();
        assert!(unknown.is_empty(), "{file} reads metrics nobody exports: {unknown:?}");
    }
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("deploy/grafana/mcp-sts.json").unwrap()).unwrap();
    assert_eq!(dashboard["uid"], "mcp-sts");
    for panel in dashboard["panels"].as_array().unwrap() {
        assert!(!panel["targets"].as_array().unwrap().is_empty(), "{panel}");
    }
}

/// `[telemetry]` is optional and checked: the example configuration with an OTLP
/// endpoint passes `config check`; a non-http(s) endpoint or an unknown key is an error
/// naming the key.
#[test]
fn the_telemetry_section_is_optional_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mcp-sts.toml");
    let example = std::fs::read_to_string("config/mcp-sts.toml").unwrap();
    let run = |text: String| {
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-sts"))
            .args(["config", "check", "--config", path.to_str().unwrap()])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };
    let with = |section: &str| format!("{example}\n[telemetry]\n{section}\n");
    let (code, out) = run(example.clone());
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = run(with(
        "otlp_endpoint = \"http://127.0.0.1:4318\"\nservice_name = \"sts-eu\"",
    ));
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = run(with("otlp_endpoint = \"ftp://collector:4318\""));
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("telemetry.otlp_endpoint"), "{out}");
    let (code, out) = run(with("otlp_url = \"http://127.0.0.1:4318\""));
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("otlp_url"), "{out}");
}
