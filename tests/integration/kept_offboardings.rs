//! Upgrading keeps every offboarding: subject, agent and client revocations written by
//! an earlier release (an end 30 days on and, in Redis, an expiry at it) still refuse
//! after that end, in the embedded file, on one Redis and on every master of a
//! Cluster, where the rewrite waits for the shard's replica. An end asked for with
//! `expires_in` still lapses, and a reinstated entry is never written back, even when
//! the reinstatement lands between the rewrite's read and its write.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use crate::durable_acks::user_on;
use crate::support::redis_server::RedisServer;
use crate::support::redis_topologies::{RedisCluster, wait_for};
use crate::support::sts::{JWT, Options, T0, TestSts, WATCHER_SECRET, config_toml_with};
use mcp_sts::revocation::redis::RedisStore;
use mcp_sts::revocation::{KeptOffboardings, NEVER, RevocationStore};
use mcp_sts_contract::clock::ManualClock;
use reqwest::Method;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-sts");
const DAY: u64 = 86_400;
/// When the earlier release revoked, and the end (and Redis expiry) it gave: its 30-day
/// retention. Both lie ahead of Redis's own (real) clock, as they did on the day.
const REVOKED: u64 = T0 - 20 * DAY;
const OLD_END: u64 = REVOKED + 30 * DAY;
/// The upgraded service starts after that end.
const UPGRADED: u64 = OLD_END + DAY;

/// An entry exactly as earlier releases stored it.
fn earlier(kind: &str, value: &str) -> String {
    json!({
        "kind": kind, "value": value, "reason": "offboarded", "revoked_by": "admin",
        "revoked_at": REVOKED, "expires_at": OLD_END,
    })
    .to_string()
}

/// The offboardings every test writes the earlier way, and a session revocation.
const EARLIER: [(&str, &str); 5] = [
    ("subject", "alice"),
    ("agent", "rogue-agent"),
    ("client", "watcher"),
    ("subject", "carol"),
    ("session", "s-old"),
];

async fn start(revocation: String) -> TestSts {
    TestSts::start_opts(Options {
        admin: true,
        revocation,
        clock: Some(ManualClock::new(UPGRADED)),
        ..Options::default()
    })
    .await
}

async fn exchange_status(sts: &TestSts, sub: &str) -> (u16, String) {
    let token = sts.user_token(sub, &["developer"]);
    let reply = sts.exchange(&token, &[("audience", "orders-api")]).await;
    let why = reply.body["error_description"].as_str().unwrap_or_default().to_owned();
    (reply.status, why)
}

#[track_caller]
fn assert_offboarded((status, why): (u16, String)) {
    assert_eq!((status, why.contains("subject")), (400, true), "{why}");
}

/// Past their old end: the user, the agent and the client stay refused; the session
/// revocation lapsed as it always did.
async fn earlier_offboardings_still_refuse(sts: &TestSts) {
    assert_offboarded(exchange_status(sts, "alice").await);
    let via_agent = sts
        .exchange(
            &sts.user_token("erin", &["developer"]),
            &[
                ("audience", "orders-api"),
                ("actor_token", &sts.agent_token("rogue-agent")),
                ("actor_token_type", JWT),
            ],
        )
        .await;
    via_agent.assert_error(400, "invalid_request");
    assert_eq!(
        sts.introspect(("watcher", WATCHER_SECRET), "x").await.status,
        401,
        "the offboarded client stays shut out"
    );
    let in_old_session = sts.user_token_with("frank", &["developer"], json!({"sid": "s-old"}));
    assert_eq!(
        sts.exchange(&in_old_session, &[("audience", "orders-api")])
            .await
            .status,
        200
    );
}

/// `(kind, value, expires_at)` of every entry the admin API lists.
async fn listed(sts: &TestSts) -> Vec<(String, String, u64)> {
    let body = sts.admin(Method::GET, "", None).await.body;
    body["revocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["value"].as_str().unwrap().to_owned(),
                e["expires_at"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Reinstated after the upgrade: tokens again, and no later rewrite brings it back.
async fn a_reinstated_offboarding_stays_reinstated(sts: &TestSts) {
    assert_offboarded(exchange_status(sts, "carol").await);
    assert_eq!(sts.admin(Method::DELETE, "/subject/carol", None).await.status, 200);
    assert_eq!(exchange_status(sts, "carol").await.0, 200);
    assert_eq!(
        sts.sts.revocations().shared_store().keep_offboardings().await.unwrap(),
        KeptOffboardings::default()
    );
    assert_eq!(exchange_status(sts, "carol").await.0, 200);
}

/// An end asked for now lapses; a client cannot set the flag that records it.
async fn an_asked_for_end_still_lapses(sts: &TestSts) -> Value {
    let smuggled = json!({"kind": "subject", "value": "dave", "reason": "r", "expiry_requested": false});
    sts.admin(Method::POST, "", Some(smuggled))
        .await
        .assert_error(400, "invalid_request");
    assert_eq!(exchange_status(sts, "dave").await.0, 200, "nothing was recorded");
    let reply = sts
        .admin(
            Method::POST,
            "",
            Some(json!({"kind": "subject", "value": "dave", "reason": "contract ends", "expires_in": 3600})),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(
        (&reply.body["expires_at"], &reply.body["expiry_requested"]),
        (&json!(UPGRADED + 3600), &json!(true))
    );
    assert_offboarded(exchange_status(sts, "dave").await);
    reply.body
}

async fn after_two_hours(sts: &TestSts) {
    sts.clock.advance(2 * 3600);
    assert_eq!(exchange_status(sts, "dave").await.0, 200, "the asked-for end lapsed");
    assert_offboarded(exchange_status(sts, "alice").await);
}

#[tokio::test]
async fn offboardings_from_an_earlier_release_hold_past_their_old_end_in_the_embedded_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("revocations.redb");
    drop(mcp_sts::revocation::embedded::EmbeddedStore::open(&path).unwrap());
    {
        let db = redb::Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let table: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("revocations");
            let mut table = tx.open_table(table).unwrap();
            for (kind, value) in EARLIER {
                table
                    .insert(format!("{kind}:{value}").as_str(), earlier(kind, value).as_bytes())
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let sts = start(format!(
        "backend = \"embedded\"\npath = {:?}",
        path.display().to_string()
    ))
    .await;

    earlier_offboardings_still_refuse(&sts).await;
    // The start rewrote them: another pass finds nothing left to do.
    assert_eq!(
        sts.sts.revocations().shared_store().keep_offboardings().await.unwrap(),
        KeptOffboardings::default()
    );
    let held: Vec<(String, String, u64)> = [
        ("subject", "alice"),
        ("subject", "carol"),
        ("agent", "rogue-agent"),
        ("client", "watcher"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned(), NEVER))
    .collect();
    assert_eq!(listed(&sts).await, held);
    a_reinstated_offboarding_stays_reinstated(&sts).await;
    an_asked_for_end_still_lapses(&sts).await;
    after_two_hours(&sts).await;

    // The file is rewritten by the service itself; the command says so and does nothing.
    let config = operator_config(
        &sts,
        &format!("backend = \"embedded\"\npath = {:?}", path.display().to_string()),
        dir.path(),
    );
    let (ok, _, err) = store_cli("migrate", &config);
    assert!(
        !ok && err.contains("rewrites an embedded file itself whenever it starts"),
        "{err}"
    );
}

fn raw(conn: &mut redis::Connection, key: &str) -> (i64, Option<Value>) {
    let ttl: i64 = redis::cmd("TTL").arg(key).query(conn).unwrap();
    let json: Option<String> = redis::cmd("GET").arg(key).query(conn).unwrap();
    (ttl, json.map(|j| serde_json::from_str(&j).unwrap()))
}

/// Write `(kind, value)` as an earlier release did: its JSON, expiring at its end.
fn write_earlier(conn: &mut redis::Connection, kind: &str, value: &str) {
    let _: () = redis::cmd("SET")
        .arg(format!("mcp-sts:rev:{kind}:{value}"))
        .arg(earlier(kind, value))
        .arg("EXAT")
        .arg(OLD_END)
        .query(conn)
        .unwrap();
}

/// A key rewritten to hold until reinstated: no expiry, `expires_at` never, the rest as it was.
#[track_caller]
fn assert_held(conn: &mut redis::Connection, key: &str) {
    let (ttl, json) = raw(conn, key);
    let json = json.unwrap_or_else(|| panic!("{key} is gone"));
    assert_eq!((ttl, &json["expires_at"]), (-1, &json!(NEVER)), "{key}: {json}");
    assert_eq!(json["revoked_at"], REVOKED);
    assert!(json.get("expiry_requested").is_none(), "{json}");
}

/// The operator's configuration file for `sts` with `revocation`.
fn operator_config(sts: &TestSts, revocation: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("mcp-sts.toml");
    let toml = config_toml_with(&sts.url, &sts.idp, sts.keys_dir.to_str().unwrap(), "", revocation, None);
    std::fs::write(&path, toml).unwrap();
    path
}

fn store_cli(action: &str, config: &std::path::Path) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(["store", action, "--config"])
        .arg(config)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offboardings_from_an_earlier_release_lose_their_redis_expiry_and_hold_until_reinstated() {
    let redis = RedisServer::start();
    let mut conn = redis.connection();
    for (kind, value) in EARLIER {
        write_earlier(&mut conn, kind, value);
    }
    let revocation = format!("backend = \"redis\"\nurl = \"{}\"\ntimeout_ms = 500", redis.url());
    let sts = start(revocation.clone()).await;

    // Rewritten at start: no expiry left to drop them; the session keeps its own.
    for key in ["subject:alice", "agent:rogue-agent", "client:watcher", "subject:carol"] {
        assert_held(&mut conn, &format!("mcp-sts:rev:{key}"));
    }
    let (ttl, session) = raw(&mut conn, "mcp-sts:rev:session:s-old");
    assert!(ttl > 0 && session.unwrap()["expires_at"] == OLD_END);
    earlier_offboardings_still_refuse(&sts).await;
    a_reinstated_offboarding_stays_reinstated(&sts).await;
    an_asked_for_end_still_lapses(&sts).await;
    let (ttl, _) = raw(&mut conn, "mcp-sts:rev:subject:dave");
    assert!(ttl > 0, "an asked-for end keeps its Redis expiry");
    after_two_hours(&sts).await;

    // A replica of the earlier release, still running, offboards two more users. Read
    // as held at once; one is reinstated between a rewrite's read and its write.
    write_earlier(&mut conn, "subject", "gina");
    write_earlier(&mut conn, "subject", "hank");
    assert_offboarded(exchange_status(&sts, "gina").await);
    let store = RedisStore::connect(&redis.url(), "mcp-sts:", Duration::from_millis(500))
        .await
        .unwrap();
    let (found, unreadable) = store.offboardings_to_keep().await.unwrap();
    let values: BTreeSet<&str> = found.iter().map(|f| f.entry().value.as_str()).collect();
    assert_eq!((values, unreadable), (BTreeSet::from(["gina", "hank"]), 0));
    assert_eq!(sts.admin(Method::DELETE, "/subject/gina", None).await.status, 200);
    assert_eq!(
        store.keep(&found).await.unwrap(),
        KeptOffboardings {
            kept: 1,
            changed_meanwhile: 1,
            unreadable: 0
        }
    );
    assert_eq!(
        raw(&mut conn, "mcp-sts:rev:subject:gina"),
        (-2, None),
        "never written back"
    );
    assert_eq!(exchange_status(&sts, "gina").await.0, 200);
    assert_held(&mut conn, "mcp-sts:rev:subject:hank");

    // Several replicas at once: each entry is rewritten exactly once.
    let crowd: Vec<String> = (0..60).map(|i| format!("leaver-{i}")).collect();
    for user in &crowd {
        write_earlier(&mut conn, "subject", user);
    }
    let other = RedisStore::connect(&redis.url(), "mcp-sts:", Duration::from_millis(500))
        .await
        .unwrap();
    let (a, b) = tokio::join!(store.keep_offboardings(), other.keep_offboardings());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.kept + b.kept, 60, "{a:?} {b:?}");
    for user in &crowd {
        assert_held(&mut conn, &format!("mcp-sts:rev:subject:{user}"));
    }

    // An entry no release can read is left alone, and counted.
    let _: () = redis::cmd("SET")
        .arg("mcp-sts:rev:subject:garbled")
        .arg("{not json")
        .query(&mut conn)
        .unwrap();
    assert_eq!(
        store.keep_offboardings().await.unwrap(),
        KeptOffboardings {
            unreadable: 1,
            ..KeptOffboardings::default()
        }
    );
    let _: () = redis::cmd("DEL")
        .arg("mcp-sts:rev:subject:garbled")
        .query(&mut conn)
        .unwrap();

    // The operator's command rewrites what is left; twice is harmless.
    write_earlier(&mut conn, "subject", "ivan");
    let dir = tempfile::tempdir().unwrap();
    let config = operator_config(&sts, &revocation, dir.path());
    let (ok, said, err) = store_cli("migrate", &config);
    assert!(ok, "{said}{err}");
    assert!(
        said.starts_with("1 offboarding(s) written by an earlier release now hold"),
        "{said}"
    );
    assert_held(&mut conn, "mcp-sts:rev:subject:ivan");
    let (ok, said, _) = store_cli("migrate", &config);
    assert!(ok && said.starts_with("0 offboarding(s)"), "{said}");

    // A store that lost its data is not rewritten: refused, and nothing changed.
    write_earlier(&mut conn, "subject", "judy");
    let _: () = redis::cmd("DEL").arg("mcp-sts:store-id").query(&mut conn).unwrap();
    let (ok, _, err) = store_cli("migrate", &config);
    assert!(
        !ok && err.contains("NOT DONE: the revocation store is not trusted"),
        "{err}"
    );
    let (ttl, json) = raw(&mut conn, "mcp-sts:rev:subject:judy");
    assert!(ttl > 0 && json.unwrap()["expires_at"] == OLD_END);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_cluster_every_master_keeps_its_offboardings_once_its_replica_confirms() {
    let cluster = RedisCluster::start_with_replica();
    // One earlier offboarding on each master; shard 0 has the replica.
    let users: Vec<String> = (0..3).map(|shard| user_on(&cluster, shard, "leaver")).collect();
    for (shard, user) in users.iter().enumerate() {
        write_earlier(&mut cluster.nodes[shard].connection(), "subject", user);
    }
    let masters: Vec<String> = cluster.urls().iter().take(3).map(|u| format!("{u:?}")).collect();
    let revocation = format!(
        "backend = \"redis\"\ncluster = [{}]\ntimeout_ms = 200\nreplication_timeout_ms = 500",
        masters.join(", ")
    );
    let sts = start(revocation.clone()).await;

    for (shard, user) in users.iter().enumerate() {
        assert_held(
            &mut cluster.nodes[shard].connection(),
            &format!("mcp-sts:rev:subject:{user}"),
        );
        assert_offboarded(exchange_status(&sts, user).await);
    }
    // Acknowledged only once the replica had it.
    let mut replica = cluster.nodes[3].connection();
    let _: () = redis::cmd("READONLY").query(&mut replica).unwrap();
    assert_held(&mut replica, &format!("mcp-sts:rev:subject:{}", users[0]));

    // With shard 0's replica not answering, a rewrite there is not confirmed: the
    // command says so and fails; once the replica is back it succeeds.
    let late = user_on(&cluster, 0, "late");
    write_earlier(&mut cluster.nodes[0].connection(), "subject", &late);
    let dir = tempfile::tempdir().unwrap();
    let config = operator_config(&sts, &revocation, dir.path());
    cluster.nodes[3].freeze();
    let (ok, said, err) = store_cli("migrate", &config);
    cluster.nodes[3].thaw();
    assert!(!ok, "{said}");
    assert!(
        err.contains("NOT DONE") && err.contains("not confirmed") && err.contains("run this again"),
        "{err}"
    );
    assert_offboarded(exchange_status(&sts, &late).await);
    let (ok, said, err) = store_cli("migrate", &config);
    assert!(ok, "{said}{err}");
    let key = format!("mcp-sts:rev:subject:{late}");
    assert_held(&mut cluster.nodes[0].connection(), &key);
    wait_for("the replica has the rewrite", Duration::from_secs(10), || {
        raw(&mut replica, &key).0 == -1
    });
}
