//! Acknowledged means durable: on real Sentinel and Cluster set-ups, a revocation or a
//! once-only grant marker answered 2xx survives the master's death; one no replica
//! confirmed is answered 503 `temporarily_unavailable` (the admin CLI says so plainly),
//! nothing is claimed, and the retry succeeds once a replica is back.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::id_jag::{ASSISTANT, alice_login, extras, orders_grant, redeem};
use crate::support::redis_topologies::{MASTER_NAME, RedisCluster, SentinelSet, wait_for};
use crate::support::sts::*;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_mcp-sts");

/// Detection (down-after 1 s), agreement, promotion and our reconnection.
const FAILOVER: Duration = Duration::from_secs(30);

/// A short replication timeout keeps the unconfirmed path quick.
const ACKS: &str = "timeout_ms = 200\nreplication_timeout_ms = 500";

fn replicas_of(server: &crate::support::redis_server::RedisServer) -> String {
    redis::cmd("INFO")
        .arg("replication")
        .query(&mut server.connection())
        .unwrap_or_default()
}

/// The admin answer to revoking a subject.
async fn revoke(sts: &TestSts, user: &str) -> Reply {
    let body = json!({"kind": "subject", "value": user, "reason": "offboarded", "revoked_by": "tester"});
    sts.admin(reqwest::Method::POST, "", Some(body)).await
}

#[track_caller]
fn assert_unconfirmed(reply: &Reply) {
    reply.assert_error(503, "temporarily_unavailable");
    let description = reply.body["error_description"].as_str().unwrap_or_default();
    assert!(description.starts_with("not confirmed by a replica"), "{}", reply.text);
    assert!(reply.headers.contains_key("retry-after"));
}

/// The admin CLI against `sts`, revoking `user`.
fn cli_revoke(sts: &TestSts, user: &str) -> std::process::Output {
    Command::new(BIN)
        .args(["revoke", "--subject", user, "--url", &sts.url])
        .env("MCP_STS_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .expect("run mcp-sts revoke")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_loses_no_acknowledged_revocation_or_grant() {
    let mut set = SentinelSet::start_relayed(true);
    let sentinels: Vec<String> = set.urls().iter().map(|u| format!("{u:?}")).collect();
    let sts = TestSts::start_opts(Options {
        admin: true,
        extra_clients: extras(),
        revocation: format!(
            "backend = \"redis\"\nsentinels = [{}]\nmaster_name = \"{MASTER_NAME}\"\n{ACKS}",
            sentinels.join(", ")
        ),
        ..Options::default()
    })
    .await;
    let stayer = sts.user_token("stayer@example.com", &["developer"]);
    let kept = sts.user_token("kept@example.com", &["developer"]);
    let late = sts.user_token("late@example.com", &["developer"]);

    // Confirmed by the replica: acknowledged.
    assert_eq!(revoke(&sts, "kept@example.com").await.status, 201);
    let redeemed = orders_grant(&sts, &alice_login(&sts)).await;
    assert_eq!(redeem(&sts, ASSISTANT, &redeemed, &[]).await.status, 200);
    let retried = orders_grant(&sts, &alice_login(&sts)).await;

    // Cut the replication link; the master keeps answering.
    set.relay.as_ref().expect("a relayed set").cut();
    wait_for("the master sees its replica gone", Duration::from_secs(10), || {
        replicas_of(&set.master).contains("connected_slaves:0")
    });

    // Not confirmed: 503, saying so, and the CLI says plainly what happened.
    assert_unconfirmed(&revoke(&sts, "late@example.com").await);
    let cli = cli_revoke(&sts, "late@example.com");
    assert!(!cli.status.success());
    let said = String::from_utf8_lossy(&cli.stderr);
    assert!(
        said.contains("NOT CONFIRMED") && said.contains("retrying is safe"),
        "{said}"
    );
    // A grant redeemed now is not confirmed either, and its marker is withdrawn.
    let reply = redeem(&sts, ASSISTANT, &retried, &[]).await;
    assert_unconfirmed(&reply);
    assert!(reply.body.get("access_token").is_none());
    let jti = decode_claims(&retried)["jti"].as_str().unwrap().to_owned();
    let iss = decode_claims(&retried)["iss"].as_str().unwrap().to_owned();
    let marker: Option<String> = redis::cmd("GET")
        .arg(format!("mcp-sts:once:id-jag:{iss}:{jti}"))
        .query(&mut set.master.connection())
        .unwrap();
    assert_eq!(marker, None, "an unconfirmed once-only marker is withdrawn");

    // The master dies; Sentinel promotes the replica that never saw the cut writes.
    set.master.stop();
    let started = Instant::now();
    loop {
        let reply = sts.exchange(&kept, &[("audience", "orders-api")]).await;
        assert_ne!(reply.status, 200, "an acknowledged revocation was lost in the failover");
        if sts.exchange(&stayer, &[("audience", "orders-api")]).await.status == 200 {
            break;
        }
        assert!(started.elapsed() < FAILOVER, "no service within {FAILOVER:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(set.master_port(), set.replica.port(), "Sentinel promoted the replica");

    // Everything acknowledged survived: the revocation and the spent grant.
    sts.exchange(&kept, &[("audience", "orders-api")])
        .await
        .assert_error(400, "invalid_request");
    redeem(&sts, ASSISTANT, &redeemed, &[])
        .await
        .assert_error(400, "invalid_grant");
    // The unconfirmed revocation was never promised, and it is indeed gone.
    assert_eq!(sts.exchange(&late, &[("audience", "orders-api")]).await.status, 200);

    // With a replica again, the retries succeed: the revocation, and the grant (its
    // earlier attempt is not mistaken for a replay), once.
    set.rejoin_old_master();
    // (A loaded machine may need a few tries for the fresh replica to confirm in time;
    // every try in between is the same unconfirmed 503, and retrying stays safe.)
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = revoke(&sts, "late@example.com").await;
        if reply.status == 201 {
            break;
        }
        assert_unconfirmed(&reply);
        assert!(Instant::now() < deadline, "the retried revocation was never confirmed");
    }
    sts.exchange(&late, &[("audience", "orders-api")])
        .await
        .assert_error(400, "invalid_request");
    loop {
        let reply = redeem(&sts, ASSISTANT, &retried, &[]).await;
        if reply.status == 200 {
            break;
        }
        assert_unconfirmed(&reply);
        assert!(Instant::now() < deadline, "the retried grant was never confirmed");
    }
    redeem(&sts, ASSISTANT, &retried, &[])
        .await
        .assert_error(400, "invalid_grant");
}

/// Which master (by index) serves `key`'s slot, from each node's own view.
pub fn shard_of(cluster: &RedisCluster, key: &str) -> usize {
    let slot: u16 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query(&mut cluster.nodes[0].connection())
        .unwrap();
    (0..3)
        .find(|i| {
            let nodes: String = redis::cmd("CLUSTER")
                .arg("NODES")
                .query(&mut cluster.nodes[*i].connection())
                .unwrap();
            let mine = nodes.lines().find(|l| l.contains("myself")).unwrap_or_default();
            mine.split_whitespace().skip(8).any(|range| {
                let (a, b) = range.split_once('-').unwrap_or((range, range));
                matches!((a.parse::<u16>(), b.parse::<u16>()), (Ok(a), Ok(b)) if a <= slot && slot <= b)
            })
        })
        .expect("a master serves every slot")
}

/// A user whose subject entry lands on master `shard`.
pub fn user_on(cluster: &RedisCluster, shard: usize, tag: &str) -> String {
    (0..)
        .map(|i| format!("{tag}-{i}@example.com"))
        .find(|user| shard_of(cluster, &format!("mcp-sts:rev:subject:{user}")) == shard)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_shards_with_a_replica_wait_for_it_and_keep_revocations_through_failover() {
    let mut cluster = RedisCluster::start_with_replica();
    let nodes: Vec<String> = cluster.urls().iter().map(|u| format!("{u:?}")).collect();
    let sts = TestSts::start_opts(Options {
        admin: true,
        revocation: format!("backend = \"redis\"\ncluster = [{}]\n{ACKS}", nodes.join(", ")),
        ..Options::default()
    })
    .await;
    let replicated = user_on(&cluster, 0, "kept");
    let unreplicated = user_on(&cluster, 1, "plain");
    let stalled = user_on(&cluster, 0, "stalled");

    // Shard 0 has a replica: acknowledged after it confirms. Shard 1 has none: at once.
    assert_eq!(revoke(&sts, &replicated).await.status, 201);
    assert_eq!(revoke(&sts, &unreplicated).await.status, 201);

    // The replica stops answering: shard 0's writes are not confirmed; shard 1's still are.
    cluster.nodes[3].freeze();
    assert_unconfirmed(&revoke(&sts, &stalled).await);
    assert_eq!(revoke(&sts, &user_on(&cluster, 2, "other")).await.status, 201);
    cluster.nodes[3].thaw();

    // Shard 0's master dies; the cluster promotes its replica, which has the entry.
    cluster.nodes[0].stop();
    let token = sts.user_token(&replicated, &["developer"]);
    let stayer = sts.user_token("stayer@example.com", &["developer"]);
    let started = Instant::now();
    loop {
        let reply = sts.exchange(&token, &[("audience", "orders-api")]).await;
        assert_ne!(reply.status, 200, "an acknowledged revocation was lost in the failover");
        if reply.status == 400 && sts.exchange(&stayer, &[("audience", "orders-api")]).await.status == 200 {
            break;
        }
        assert!(started.elapsed() < FAILOVER, "no service within {FAILOVER:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    reply_refused(&sts, &unreplicated).await;
}

async fn reply_refused(sts: &TestSts, user: &str) {
    let token = sts.user_token(user, &["developer"]);
    sts.exchange(&token, &[("audience", "orders-api")])
        .await
        .assert_error(400, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsync_acked_waits_for_the_masters_append_only_file_where_the_server_can() {
    use crate::support::redis_server::{RedisOptions, RedisServer, valkey_binary};
    use mcp_sts::revocation::redis::{AckPolicy, MinReplicas, RedisOptions as StoreOptions, RedisStore, RedisTopology};

    let valkey = RedisServer::start_with(RedisOptions {
        appendonly: true,
        binary: Some(valkey_binary()),
        ..RedisOptions::default()
    });
    let sts = TestSts::start_opts(Options {
        admin: true,
        revocation: format!(
            "backend = \"redis\"\nurl = \"{}\"\nfsync_acked = true\n{ACKS}",
            valkey.url()
        ),
        ..Options::default()
    })
    .await;
    assert_eq!(revoke(&sts, "fsynced@example.com").await.status, 201);
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut valkey.connection())
        .unwrap();
    assert!(stats.contains("cmdstat_waitaof:calls="), "WAITAOF was sent: {stats}");

    // Without an append-only file there is no fsync to wait for: not confirmed.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("appendonly")
        .arg("no")
        .query(&mut valkey.connection())
        .unwrap();
    assert_unconfirmed(&revoke(&sts, "unsynced@example.com").await);

    // Redis 7.0 has no WAITAOF: the store says so (start-up warns with it), and writes
    // are acknowledged on the other promises.
    let redis = RedisServer::start();
    let policy = AckPolicy {
        min_replicas: MinReplicas::Auto,
        replication_timeout: Duration::from_millis(300),
        fsync: true,
    };
    for (server, supported) in [(&redis, false), (&valkey, true)] {
        let mut options = StoreOptions::new("mcp-sts:", Duration::from_millis(200));
        options.acks = policy;
        let store = RedisStore::open(RedisTopology::Single(server.url()), options)
            .await
            .unwrap();
        store.wait_ready(Duration::from_secs(2)).await.unwrap();
        let report = store.durability().await.unwrap();
        assert_eq!(report.len(), 1);
        assert_eq!((report[0].waitaof, report[0].required), (supported, 0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_durable_write_after_a_master_restart_is_acknowledged() {
    use crate::support::redis_server::{RedisOptions, RedisServer};

    let mut master = RedisServer::start_with(RedisOptions {
        appendonly: true,
        ..RedisOptions::default()
    });
    let replica = RedisServer::start_with(RedisOptions {
        replica_of: Some(master.port()),
        ..RedisOptions::default()
    });
    let linked = |replica: &RedisServer| replicas_of(replica).contains("master_link_status:up");
    wait_for("replica linked", Duration::from_secs(20), || linked(&replica));
    let sts = TestSts::start_opts(Options {
        admin: true,
        revocation: format!(
            "backend = \"redis\"\nurl = \"{}\"\nmin_replicas_acked = 1\n{ACKS}",
            master.url()
        ),
        ..Options::default()
    })
    .await;
    assert_eq!(revoke(&sts, "before@example.com").await.status, 201);

    // The master restarts from its append-only file; its writer's connection is stale.
    master.stop();
    master.start_again();
    wait_for("replica linked again", Duration::from_secs(20), || linked(&replica));
    // The replica says "up" once it loaded the master's snapshot; the master streams
    // to it, and counts it for WAIT, only after its first acknowledgement (sent once a
    // second). Until then a write is rightly "not confirmed"; this test is about the
    // writer's stale connection, so it waits until the master can confirm a write.
    wait_for("the master's replica confirms writes", Duration::from_secs(20), || {
        let mut conn = master.connection();
        let _: redis::RedisResult<()> = redis::cmd("SET").arg("probe").arg("1").query(&mut conn);
        redis::cmd("WAIT").arg(1).arg(100).query::<i64>(&mut conn).unwrap_or(0) >= 1
    });
    let stayer = sts.user_token("stayer@example.com", &["developer"]);
    let started = Instant::now();
    while sts.exchange(&stayer, &[("audience", "orders-api")]).await.status != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no service after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reply = revoke(&sts, "after@example.com").await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply_refused(&sts, "before@example.com").await;
}
