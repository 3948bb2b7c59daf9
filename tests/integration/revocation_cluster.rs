//! Revocations in a real 3-master Redis Cluster behind two mcp-sts replicas: entries
//! spread over the shards, both replicas see every revocation, and a stopped master
//! never lets a revoked subject through (503 or 400, never 200).

use std::collections::{BTreeMap, BTreeSet};

use crate::support::redis_topologies::RedisCluster;
use crate::support::sts::*;
use reqwest::Method;

/// Users to revoke; their keys hash to slots on all three masters.
const LEAVERS: [&str; 9] = [
    "ann@example.com",
    "bo@example.com",
    "cy@example.com",
    "di@example.com",
    "ed@example.com",
    "flo@example.com",
    "gus@example.com",
    "hal@example.com",
    "ivy@example.com",
];

fn cluster_revocation(cluster: &RedisCluster) -> String {
    let nodes: Vec<String> = cluster.urls().iter().map(|u| format!("{u:?}")).collect();
    format!(
        "backend = \"redis\"\ncluster = [{}]\ntimeout_ms = 200",
        nodes.join(", ")
    )
}

async fn replicas(cluster: &RedisCluster) -> (TestSts, TestSts) {
    let revocation = cluster_revocation(cluster);
    let a = TestSts::start_opts(Options {
        admin: true,
        revocation: revocation.clone(),
        ..Options::default()
    })
    .await;
    let b = TestSts::start_opts(Options {
        admin: true,
        revocation,
        idp: Some(a.idp.clone()),
        replica_of: Some((a.url.clone(), a.keys_dir.clone())),
        ..Options::default()
    })
    .await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_spread_over_shards_and_every_replica_sees_them() {
    let cluster = RedisCluster::start();
    let (a, b) = replicas(&cluster).await;
    let stayer = a.user_token("stayer@example.com", &["developer"]);
    assert_eq!(b.exchange(&stayer, &[("audience", "orders-api")]).await.status, 200);

    for (i, user) in LEAVERS.iter().enumerate() {
        // Alternate the replica that revokes: each must see the other's entries.
        let (writer, reader) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        writer.admin_revoke("subject", user).await;
        let token = reader.user_token(user, &["developer"]);
        reader
            .exchange(&token, &[("audience", "orders-api")])
            .await
            .assert_error(400, "invalid_request");
    }
    let holders: BTreeSet<usize> = LEAVERS
        .iter()
        .map(|user| cluster.holder_of(&format!("mcp-sts:rev:subject:{user}")))
        .collect();
    assert_eq!(holders.len(), 3, "entries on every master, not one hash-tagged shard");

    // Listing walks every master.
    let listed = b.admin(Method::GET, "", None).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let values: BTreeSet<&str> = listed.body["revocations"]
        .as_array()
        .expect("a list of revocations")
        .iter()
        .filter_map(|e| e["value"].as_str())
        .collect();
    assert_eq!(values, LEAVERS.into_iter().collect::<BTreeSet<_>>());

    // Reinstating through one replica frees the user for the other.
    let reply = a.admin(Method::DELETE, &format!("/subject/{}", LEAVERS[0]), None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let token = b.user_token(LEAVERS[0], &["developer"]);
    assert_eq!(b.exchange(&token, &[("audience", "orders-api")]).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_master_never_turns_a_revoked_subject_into_a_200() {
    let mut cluster = RedisCluster::start();
    let (a, b) = replicas(&cluster).await;
    for user in LEAVERS {
        a.admin_revoke("subject", user).await;
    }
    let tokens: Vec<String> = LEAVERS.iter().map(|u| a.user_token(u, &["developer"])).collect();
    let victim = cluster.holder_of(&format!("mcp-sts:rev:subject:{}", LEAVERS[0]));
    cluster.nodes[victim].stop();

    // Keep asking through the outage, past the cluster noticing the failure
    // (cluster-node-timeout is 1 s): before and after, nothing revoked is allowed.
    let mut statuses = BTreeMap::<u16, usize>::new();
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(3) {
        for sts in [&a, &b] {
            for token in &tokens {
                let reply = sts.exchange(token, &[("audience", "orders-api")]).await;
                *statuses.entry(reply.status).or_default() += 1;
                if reply.status == 503 {
                    reply.assert_error(503, "temporarily_unavailable");
                    assert!(reply.headers.contains_key("retry-after"));
                }
            }
        }
    }
    eprintln!("statuses during the outage: {statuses:?}");
    assert!(
        !statuses.contains_key(&200),
        "a revoked subject was allowed: {statuses:?}"
    );
    assert!(statuses.keys().all(|s| *s == 400 || *s == 503), "{statuses:?}");
    assert!(
        statuses.contains_key(&503),
        "the lost shard must fail closed: {statuses:?}"
    );
    let ready = a.http.get(format!("{}/readyz", a.url)).send().await.unwrap();
    assert_eq!(ready.status(), 503, "not ready while a master is down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_restarted_from_its_aof_serves_every_request_after_the_first_success() {
    let mut cluster = RedisCluster::start_with(crate::support::redis_server::RedisOptions {
        appendonly: true,
        ..Default::default()
    });
    let (a, b) = replicas(&cluster).await;
    for user in LEAVERS {
        a.admin_revoke("subject", user).await;
    }
    let stayers: Vec<String> = (0..12)
        .map(|i| a.user_token(&format!("stayer-{i}@example.com"), &["developer"]))
        .collect();
    let revoked = a.user_token(LEAVERS[0], &["developer"]);
    let victim = cluster.holder_of(&format!("mcp-sts:rev:subject:{}", LEAVERS[0]));
    cluster.nodes[victim].stop();
    // Down long enough for the other masters to mark it failed, as a real crash is.
    let witness = (victim + 1) % cluster.nodes.len();
    crate::support::redis_topologies::wait_for(
        "the cluster notices the dead master",
        std::time::Duration::from_secs(20),
        || {
            let info: String = redis::cmd("CLUSTER")
                .arg("INFO")
                .query(&mut cluster.nodes[witness].connection())
                .unwrap_or_default();
            info.contains("cluster_state:fail")
        },
    );
    cluster.nodes[victim].start_again();

    // At each replica: wait for the first success (the bounded recovery time); from
    // then on, every request is answered, no trickle of 503s.
    let recovery = std::time::Duration::from_secs(30);
    for sts in [&a, &b] {
        let started = std::time::Instant::now();
        loop {
            let reply = sts.exchange(&stayers[0], &[("audience", "orders-api")]).await;
            if reply.status == 200 {
                break;
            }
            reply.assert_error(503, "temporarily_unavailable");
            assert!(started.elapsed() < recovery, "no success within {recovery:?}");
            // Poll interval of a deadline-bounded wait on real redis-server processes.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        eprintln!("first success {:?} after the restart began", started.elapsed());
        let mut statuses = BTreeMap::<u16, usize>::new();
        for i in 0..60 {
            let reply = sts
                .exchange(&stayers[i % stayers.len()], &[("audience", "orders-api")])
                .await;
            if reply.status != 200 {
                eprintln!("request {i}: {} {}", reply.status, reply.text);
            }
            *statuses.entry(reply.status).or_default() += 1;
        }
        assert_eq!(statuses, BTreeMap::from([(200, 60)]), "after the first success");
    }
    a.exchange(&revoked, &[("audience", "orders-api")])
        .await
        .assert_error(400, "invalid_request");
}
