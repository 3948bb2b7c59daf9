//! Redis-only behaviour: authentication and database selection, prefixes, and what
//! happens when Redis goes away and comes back (fail with an error, never hang, then
//! recover without restarting the service and keep acknowledged revocations).

use std::future::Future;
use std::time::{Duration, Instant};

use crate::support::redis_server::{RedisOptions, RedisServer};
use mcp_sts::revocation::redis::{DEFAULT_TIMEOUT, RedisStore};
use mcp_sts::revocation::{Revocation, RevocationKind, RevocationStore, StoreError};
use mcp_sts_contract::clock::UnixTime;

/// Longer than any single operation may take: past this, the store is hanging.
const HANG: Duration = Duration::from_secs(2);
/// How long the store may take to notice that Redis is back.
const RECOVERY: Duration = Duration::from_secs(5);

fn wall_now() -> UnixTime {
    mcp_sts_contract::clock::Clock::now(&mcp_sts_contract::clock::SystemClock)
}

fn entry(kind: RevocationKind, value: &str) -> Revocation {
    let now = wall_now();
    Revocation {
        kind,
        value: value.into(),
        issuer: None,
        reason: "test".into(),
        revoked_by: "admin".into(),
        revoked_at: now,
        expires_at: now + 3600,
        expiry_requested: true,
    }
}

/// Await `op`, failing the test if it takes longer than [`HANG`].
async fn bounded<T>(what: &str, op: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let out = tokio::time::timeout(HANG, op)
        .await
        .unwrap_or_else(|_| panic!("{what} hung for {HANG:?}"));
    assert!(started.elapsed() < HANG, "{what} took {:?}", started.elapsed());
    out
}

/// Every operation fails, each within [`HANG`].
async fn assert_all_fail(store: &RedisStore, e: &Revocation) {
    let now = wall_now();
    let errors: Vec<StoreError> = vec![
        bounded("ping", store.ping()).await.unwrap_err(),
        bounded("check", store.check(&[e.key()], now)).await.unwrap_err(),
        bounded("revoke", store.revoke(e.clone())).await.unwrap_err(),
        bounded("reinstate", store.reinstate(&e.key())).await.unwrap_err(),
        bounded("list", store.list(now)).await.unwrap_err(),
        bounded("use_once", store.use_once("jti-x", now + 60, now))
            .await
            .unwrap_err(),
    ];
    for err in errors {
        assert!(
            matches!(err, StoreError::Timeout | StoreError::Unavailable(_)),
            "{err:?}"
        );
    }
}

/// Retry `ping` until it succeeds, for at most [`RECOVERY`].
async fn wait_until_ready(store: &RedisStore) {
    let started = Instant::now();
    loop {
        match bounded("ping", store.ping()).await {
            Ok(()) => return,
            Err(e) if started.elapsed() > RECOVERY => {
                panic!("store did not recover within {RECOVERY:?}: {e}")
            }
            // Poll interval of a deadline-bounded wait on a real redis-server restart.
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

#[tokio::test]
async fn password_and_database_number_in_url() {
    let server = RedisServer::start_with(RedisOptions {
        password: Some("s3cret-pass".into()),
        ..Default::default()
    });
    let store = RedisStore::connect(&server.url_with_db(3), "mcp-sts:", DEFAULT_TIMEOUT)
        .await
        .unwrap();
    let e = entry(RevocationKind::Subject, "alice@example.com");
    store.revoke(e.clone()).await.unwrap();
    assert_eq!(
        store.check(&[e.key()], wall_now()).await.unwrap(),
        vec![Some(e.clone())]
    );

    // The entry really is in database 3, under the prefix, with an expiry.
    let client = redis::Client::open(server.url_with_db(3)).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let name = "mcp-sts:rev:subject:alice@example.com";
    let json: String = redis::cmd("GET").arg(name).query_async(&mut raw).await.unwrap();
    assert_eq!(serde_json::from_str::<Revocation>(&json).unwrap(), e);
    let expire_at: i64 = redis::cmd("EXPIRETIME").arg(name).query_async(&mut raw).await.unwrap();
    assert_eq!(expire_at, i64::try_from(e.expires_at).unwrap());
    let db0 = redis::Client::open(server.url_with_db(0)).unwrap();
    let mut raw0 = db0.get_multiplexed_async_connection().await.unwrap();
    let in_db0: i64 = redis::cmd("EXISTS").arg(name).query_async(&mut raw0).await.unwrap();
    assert_eq!(in_db0, 0);

    // A wrong password is an error, not a hang.
    let wrong = format!("redis://:wrong@127.0.0.1:{}/3", server.port());
    let bad = RedisStore::connect(&wrong, "mcp-sts:", DEFAULT_TIMEOUT).await.unwrap();
    assert!(bounded("ping", bad.ping()).await.is_err());
}

#[tokio::test]
async fn prefixes_keep_stores_apart() {
    let server = RedisServer::start();
    let a = RedisStore::connect(&server.url(), "tenant-a:", DEFAULT_TIMEOUT)
        .await
        .unwrap();
    let b = RedisStore::connect(&server.url(), "tenant-b:", DEFAULT_TIMEOUT)
        .await
        .unwrap();
    let e = entry(RevocationKind::Client, "shared-client");
    a.revoke(e.clone()).await.unwrap();
    let now = wall_now();
    assert_eq!(a.list(now).await.unwrap(), vec![e.clone()]);
    assert!(b.list(now).await.unwrap().is_empty());
    assert_eq!(b.check(&[e.key()], now).await.unwrap(), vec![None]);
    assert!(a.use_once("jti", now + 60, now).await.unwrap());
    assert!(b.use_once("jti", now + 60, now).await.unwrap());
}

#[tokio::test]
async fn list_pages_through_many_entries() {
    let server = RedisServer::start();
    let store = RedisStore::connect(&server.url(), "p:", Duration::from_secs(1))
        .await
        .unwrap();
    let mut expected: Vec<Revocation> = (0..1200)
        .map(|i| entry(RevocationKind::Token, &format!("jti-{i:05}")))
        .collect();
    for e in &expected {
        store.revoke(e.clone()).await.unwrap();
    }
    expected.sort_by_key(Revocation::key);
    assert_eq!(store.list(wall_now()).await.unwrap(), expected);
}

#[tokio::test]
async fn survives_a_redis_restart_and_keeps_acknowledged_entries() {
    let mut server = RedisServer::start_with(RedisOptions {
        appendonly: true,
        ..Default::default()
    });
    let store = RedisStore::connect(&server.url(), "mcp-sts:", DEFAULT_TIMEOUT)
        .await
        .unwrap();
    let acked = entry(RevocationKind::Subject, "leaver@example.com");
    store.revoke(acked.clone()).await.unwrap();

    server.stop();
    assert_all_fail(&store, &acked).await;
    // Still failing, still bounded, after the first round of reconnection attempts.
    assert_all_fail(&store, &acked).await;

    server.start_again();
    wait_until_ready(&store).await;
    let now = wall_now();
    assert_eq!(
        store.check(&[acked.key()], now).await.unwrap(),
        vec![Some(acked.clone())]
    );
    let after = entry(RevocationKind::Agent, "bot");
    store.revoke(after.clone()).await.unwrap();
    assert_eq!(store.list(now).await.unwrap(), vec![acked, after]);
}

#[tokio::test]
async fn starts_while_redis_is_down_and_works_once_it_is_up() {
    let mut server = RedisServer::start();
    server.stop();
    let store = RedisStore::connect(&server.url(), "mcp-sts:", DEFAULT_TIMEOUT)
        .await
        .unwrap();
    let e = entry(RevocationKind::Session, "sid-1");
    assert_all_fail(&store, &e).await;

    server.start_again();
    wait_until_ready(&store).await;
    store.revoke(e.clone()).await.unwrap();
    assert_eq!(store.check(&[e.key()], wall_now()).await.unwrap(), vec![Some(e)]);
}

#[tokio::test]
async fn a_frozen_redis_times_out_and_recovers() {
    let server = RedisServer::start();
    let timeout = Duration::from_millis(100);
    let store = RedisStore::connect(&server.url(), "mcp-sts:", timeout).await.unwrap();
    store.ping().await.unwrap();

    server.freeze();
    for _ in 0..5 {
        let started = Instant::now();
        let err = bounded("ping", store.ping()).await.unwrap_err();
        assert!(matches!(err, StoreError::Timeout), "{err:?}");
        assert!(started.elapsed() < timeout * 5, "took {:?}", started.elapsed());
    }
    server.thaw();
    wait_until_ready(&store).await;
}
