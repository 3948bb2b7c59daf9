//! Eviction and loss are detected: a Redis that may evict refuses the start (or, at
//! run time, every decision), a Redis that hides `CONFIG` needs the explicit
//! acknowledgement, and a store that restarted empty fails closed at every replica,
//! audited, until `mcp-sts store adopt` takes it back.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use mcp_sts::audit::AuditLog;
use mcp_sts::config::Config;
use mcp_sts_contract::clock::ManualClock;
use mcp_sts_demo::dev_idp::DevIdp;

use crate::support::redis_server::{RedisOptions, RedisServer};
use crate::support::redis_topologies::wait_for;
use crate::support::sts::*;

const BIN: &str = env!("CARGO_BIN_EXE_mcp-sts");

/// Detection takes at most the check period (2 s) plus a round trip; generous for a
/// loaded machine.
const NOTICED: Duration = Duration::from_secs(15);

fn redis_with(args: &[&str]) -> RedisServer {
    RedisServer::start_with(RedisOptions {
        extra_args: args.iter().map(|a| (*a).to_owned()).collect(),
        ..RedisOptions::default()
    })
}

/// Build the service on `server` with `extra` `[revocation]` keys; the error text when
/// it refuses to start.
async fn build(server: &RedisServer, extra: &str) -> Result<(), String> {
    let idp = DevIdp::start_local().await.unwrap();
    let keys = tempfile::tempdir().unwrap();
    let revocation = format!("backend = \"redis\"\nurl = \"{}\"\n{extra}", server.url());
    let toml = config_toml_with(
        "http://127.0.0.1:1",
        &idp,
        keys.path().to_str().unwrap(),
        "",
        &revocation,
        None,
    );
    let config = Config::from_toml(&toml).unwrap();
    mcp_sts::server::build(config, Arc::new(ManualClock::new(T0)), AuditLog::new())
        .await
        .map(|_| ())
        .map_err(|e| format!("{e:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicting_redis_refuses_the_start_naming_the_setting() {
    let server = redis_with(&["--maxmemory-policy", "allkeys-lru"]);
    let error = build(&server, "").await.unwrap_err();
    assert!(
        error.contains("maxmemory-policy") && error.contains("allkeys-lru"),
        "{error}"
    );
    // The acknowledgement is for a policy nobody can read, not for a known bad one.
    let error = build(&server, "accept_unknown_eviction_policy = true")
        .await
        .unwrap_err();
    assert!(error.contains("noeviction"), "{error}");
    // Nothing was written to the refused store.
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut server.connection()).unwrap();
    assert!(keys.is_empty(), "{keys:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_hiding_config_needs_the_explicit_acknowledgement() {
    let server = redis_with(&["--rename-command", "CONFIG", ""]);
    let error = build(&server, "").await.unwrap_err();
    assert!(
        error.contains("CONFIG") && error.contains("accept_unknown_eviction_policy"),
        "{error}"
    );
    build(&server, "accept_unknown_eviction_policy = true").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_changed_at_run_time_fails_closed_until_it_is_noeviction_again() {
    let server = RedisServer::start();
    let sts = TestSts::start_opts(Options {
        revocation: format!("backend = \"redis\"\nurl = \"{}\"", server.url()),
        ..Options::default()
    })
    .await;
    let stayer = sts.user_token("stayer@example.com", &["developer"]);
    assert_eq!(sts.exchange(&stayer, &[("audience", "orders-api")]).await.status, 200);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("volatile-lru")
        .query(&mut server.connection())
        .unwrap();
    let deadline = std::time::Instant::now() + NOTICED;
    loop {
        let reply = sts.exchange(&stayer, &[("audience", "orders-api")]).await;
        if reply.status == 503 {
            reply.assert_error(503, "temporarily_unavailable");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the evicting policy was not noticed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ready(&sts).await, 503);
    assert!(
        sts.audit_events()
            .iter()
            .any(|e| e["event"] == "revocation_store_untrusted"
                && e["reason"] == "temporarily_unavailable:revocation_store.evicting")
    );
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("noeviction")
        .query(&mut server.connection())
        .unwrap();
    wait_until_status(&sts, &stayer, 200).await;
}

async fn ready(sts: &TestSts) -> u16 {
    sts.http
        .get(format!("{}/readyz", sts.url))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn wait_until_status(sts: &TestSts, token: &str, status: u16) {
    let deadline = std::time::Instant::now() + NOTICED;
    loop {
        let reply = sts.exchange(token, &[("audience", "orders-api")]).await;
        if reply.status == status {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {} instead of {status}: {}",
            reply.status,
            reply.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A configuration file for the operator's commands, on the same store and keys.
fn operator_config(sts: &TestSts, server: &RedisServer, dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("mcp-sts.toml");
    let revocation = format!("backend = \"redis\"\nurl = \"{}\"", server.url());
    let toml = config_toml_with(
        &sts.url,
        &sts.idp,
        sts.keys_dir.to_str().unwrap(),
        "",
        &revocation,
        None,
    );
    std::fs::write(&path, toml).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_restarted_empty_fails_closed_everywhere_until_adopted() {
    let mut server = RedisServer::start();
    let revocation = format!("backend = \"redis\"\nurl = \"{}\"", server.url());
    let a = TestSts::start_opts(Options {
        admin: true,
        revocation: revocation.clone(),
        ..Options::default()
    })
    .await;
    let leaver = a.user_token("leaver@example.com", &["developer"]);
    let stayer = a.user_token("stayer@example.com", &["developer"]);
    a.admin_revoke("subject", "leaver@example.com").await;
    a.exchange(&leaver, &[("audience", "orders-api")])
        .await
        .assert_error(400, "invalid_request");

    // Redis restarts without its data (no persistence).
    server.stop();
    server.start_again();

    // The very next check notices: every decision is 503, the revoked user included.
    wait_until_status(&a, &stayer, 503).await;
    a.exchange(&leaver, &[("audience", "orders-api")])
        .await
        .assert_error(503, "temporarily_unavailable");
    let reply = a.exchange(&stayer, &[("audience", "orders-api")]).await;
    assert!(
        reply.body["error_description"].as_str().unwrap().contains("adopts it"),
        "{}",
        reply.text
    );
    assert_eq!(ready(&a).await, 503);
    assert!(
        a.audit_events()
            .iter()
            .any(|e| e["event"] == "revocation_store_untrusted"
                && e["reason"] == "temporarily_unavailable:revocation_store.lost"),
        "the loss is audited"
    );
    // A replica started now (sharing the keys, and so the record of the marker) fails
    // closed too, instead of taking the empty store for a new one.
    let b = TestSts::start_opts(Options {
        revocation,
        idp: Some(a.idp.clone()),
        replica_of: Some((a.url.clone(), a.keys_dir.clone())),
        ..Options::default()
    })
    .await;
    b.exchange(&stayer, &[("audience", "orders-api")])
        .await
        .assert_error(503, "temporarily_unavailable");

    // The operator looks, then adopts the store as it is.
    let dir = tempfile::tempdir().unwrap();
    let config = operator_config(&a, &server, dir.path());
    let status = Command::new(BIN)
        .args(["store", "status", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!status.status.success());
    let said = String::from_utf8_lossy(&status.stdout);
    assert!(
        said.contains("MISSING"),
        "{said}{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let adopt = Command::new(BIN)
        .args([
            "store",
            "adopt",
            "--by",
            "oncall",
            "--reason",
            "redis volume lost",
            "--config",
        ])
        .arg(&config)
        .output()
        .unwrap();
    assert!(adopt.status.success(), "{}", String::from_utf8_lossy(&adopt.stderr));
    let audit = String::from_utf8_lossy(&adopt.stdout);
    assert!(
        audit.contains("\"event\":\"revocation_store_adopted\"") && audit.contains("oncall"),
        "the adoption is audited: {audit}"
    );

    // Every replica serves again; what the loss took is gone until revoked again.
    wait_until_status(&a, &stayer, 200).await;
    wait_until_status(&b, &stayer, 200).await;
    assert_eq!(ready(&a).await, 200);
    assert!(
        a.audit_events()
            .iter()
            .any(|e| e["event"] == "revocation_store_trusted")
    );
    assert_eq!(a.exchange(&leaver, &[("audience", "orders-api")]).await.status, 200);
    a.admin_revoke("subject", "leaver@example.com").await;
    b.exchange(&leaver, &[("audience", "orders-api")])
        .await
        .assert_error(400, "invalid_request");
    wait_for("status is sound", NOTICED, || {
        Command::new(BIN)
            .args(["store", "status", "--config"])
            .arg(&config)
            .output()
            .is_ok_and(|o| o.status.success())
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_shard_back_without_its_data_is_never_served() {
    use crate::support::redis_topologies::RedisCluster;

    let mut cluster = RedisCluster::start();
    let nodes: Vec<String> = cluster.urls().iter().map(|u| format!("{u:?}")).collect();
    let sts = TestSts::start_opts(Options {
        admin: true,
        revocation: format!(
            "backend = \"redis\"\ncluster = [{}]\ntimeout_ms = 200",
            nodes.join(", ")
        ),
        ..Options::default()
    })
    .await;
    sts.admin_revoke("subject", "leaver@example.com").await;
    let leaver = sts.user_token("leaver@example.com", &["developer"]);
    let victim = cluster.holder_of("mcp-sts:rev:subject:leaver@example.com");

    // The shard holding the entry restarts empty (no persistence).
    cluster.nodes[victim].stop();
    cluster.nodes[victim].start_again();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let reply = sts.exchange(&leaver, &[("audience", "orders-api")]).await;
        assert_ne!(reply.status, 200, "the revoked user was allowed by the emptied shard");
        let untrusted = reply.body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("adopts it"));
        if untrusted {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the emptied shard was not noticed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ready(&sts).await, 503);
}
