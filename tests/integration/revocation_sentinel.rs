//! Revocations on a Sentinel-watched Redis (master, replica, three sentinels): the
//! master is killed mid-run, Sentinel promotes the replica, and mcp-sts follows it
//! without a restart; revocations made before the failover still hold.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::redis_topologies::{MASTER_NAME, SentinelSet};
use crate::support::sts::*;
use reqwest::Method;
use serde_json::json;

/// Detection (down-after 1 s), agreement, promotion and our reconnection.
const FAILOVER: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_keeps_revocations_and_service_resumes_without_restart() {
    let mut set = SentinelSet::start();
    let sentinels: Vec<String> = set.urls().iter().map(|u| format!("{u:?}")).collect();
    let revocation = format!(
        "backend = \"redis\"\nsentinels = [{}]\nmaster_name = \"{MASTER_NAME}\"\ntimeout_ms = 200",
        sentinels.join(", ")
    );
    let sts = TestSts::start_opts(Options {
        admin: true,
        revocation,
        ..Options::default()
    })
    .await;
    let leaver = sts.user_token("leaver@example.com", &["developer"]);
    let stayer = sts.user_token("stayer@example.com", &["developer"]);
    assert_eq!(sts.exchange(&stayer, &[("audience", "orders-api")]).await.status, 200);
    sts.admin_revoke("subject", "leaver@example.com").await;
    sts.exchange(&leaver, &[("audience", "orders-api")])
        .await
        .assert_error(400, "invalid_request");
    set.sync_replica();

    let old_master = set.master.port();
    set.master.stop();

    // Through the failover: the revoked subject is never allowed, and the stayer is
    // served again once the replica is promoted, by the same running service.
    let mut statuses = BTreeMap::<u16, usize>::new();
    let started = Instant::now();
    let mut resumed = false;
    while started.elapsed() < FAILOVER {
        let revoked = sts.exchange(&leaver, &[("audience", "orders-api")]).await;
        assert_ne!(revoked.status, 200, "a revoked subject was allowed during the failover");
        *statuses.entry(revoked.status).or_default() += 1;
        let reply = sts.exchange(&stayer, &[("audience", "orders-api")]).await;
        if reply.status == 200 {
            resumed = true;
            break;
        }
        reply.assert_error(503, "temporarily_unavailable");
        // Poll interval of a deadline-bounded wait on a real Sentinel failover.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        resumed,
        "no service within {FAILOVER:?} after the master died; {statuses:?}"
    );
    eprintln!(
        "served again {:?} after the master was killed; during the failover: {statuses:?}",
        started.elapsed()
    );
    assert!(statuses.contains_key(&503), "the outage was seen: {statuses:?}");
    assert_eq!(set.master_port(), set.replica.port(), "Sentinel promoted the replica");
    assert_ne!(set.master_port(), old_master);

    // The revocation made before the failover survived it, and new ones land on the
    // new master once it has a replica again to confirm them.
    sts.exchange(&leaver, &[("audience", "orders-api")])
        .await
        .assert_error(400, "invalid_request");
    set.rejoin_old_master();
    sts.admin_revoke("session", "after-failover").await;
    let listed = sts.admin(Method::GET, "", None).await;
    let values: Vec<&str> = listed.body["revocations"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|e| e["value"].as_str())
        .collect();
    assert_eq!(values, ["leaver@example.com", "after-failover"]);
    let held: Option<String> = redis::cmd("GET")
        .arg("mcp-sts:rev:session:after-failover")
        .query(&mut set.replica.connection())
        .unwrap();
    assert!(held.is_some_and(|json| json.contains("after-failover")));
    let ready = sts.http.get(format!("{}/readyz", sts.url)).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<serde_json::Value>().await.unwrap()["revocation_store"],
        json!(true)
    );
}
