//! The event queue behind every backend: the same contract for memory, embedded
//! (across a reopen, as after a restart) and a real Redis (across a kill with
//! append-only persistence).

use std::sync::Arc;

use crate::support::redis_server::{RedisOptions, RedisServer};
use mcp_sts::revocation::embedded::EmbeddedStore;
use mcp_sts::revocation::memory::MemoryStore;
use mcp_sts::revocation::redis::{DEFAULT_TIMEOUT, RedisStore};
use mcp_sts::revocation::{
    Delivery, EventQueue, Publication, QueuedEvent, Revocation, RevocationKey, RevocationKind, RevocationStore,
    StreamRecord, StreamStatus,
};

const NOW: u64 = 1_900_000_000;

fn stream(id: &str) -> StreamRecord {
    StreamRecord {
        stream_id: id.into(),
        owner: "orders-api".into(),
        delivery: Delivery::Poll,
        events_requested: vec!["e".into()],
        events_delivered: vec!["e".into()],
        status: StreamStatus::Enabled,
        status_reason: None,
        description: None,
        created_at: NOW,
    }
}

fn event(stream: &str, jti: &str) -> QueuedEvent {
    QueuedEvent {
        stream_id: stream.into(),
        jti: jti.into(),
        set: format!("set-{jti}"),
    }
}

fn entry(value: &str) -> Revocation {
    Revocation {
        kind: RevocationKind::Subject,
        value: value.into(),
        issuer: None,
        reason: "r".into(),
        revoked_by: "t".into(),
        revoked_at: NOW,
        expires_at: NOW + 3600,
        expiry_requested: true,
    }
}

/// Write a revocation with SETs for two streams, and a once-only publication.
async fn fill<Q: EventQueue + RevocationStore>(queue: &Q) {
    queue.put_stream(&stream("s1")).await.unwrap();
    queue.put_stream(&stream("s2")).await.unwrap();
    let written = queue
        .publish(Publication {
            once: None,
            revocation: Some(entry("carol")),
            events: vec![event("s1", "a"), event("s2", "b"), event("s1", "c")],
        })
        .await
        .unwrap();
    assert!(written);
    let once = Publication {
        once: Some(("ssf:idp:j1".into(), NOW + 60)),
        revocation: Some(entry("dave")),
        events: vec![event("s1", "d")],
    };
    assert!(queue.publish(once.clone()).await.unwrap());
    let mut replay = once;
    replay.revocation = Some(entry("mallory"));
    assert!(!queue.publish(replay).await.unwrap(), "a used once-id writes nothing");
}

/// What `fill` wrote, read back, then acknowledged and deleted.
async fn check<Q: EventQueue + RevocationStore>(queue: &Q) {
    let keys = ["carol", "dave", "mallory"].map(|v| RevocationKey::new(RevocationKind::Subject, v));
    let found = queue.check(&keys, NOW).await.unwrap();
    assert_eq!(
        found.iter().map(Option::is_some).collect::<Vec<_>>(),
        [true, true, false]
    );
    assert_eq!(queue.streams().await.unwrap(), vec![stream("s1"), stream("s2")]);
    let page = queue.pending("s1", 2).await.unwrap();
    let jtis: Vec<&str> = page.events.iter().map(|e| e.jti.as_str()).collect();
    assert_eq!((jtis, page.more), (vec!["a", "c"], true));
    assert_eq!(page.events[0].set, "set-a");
    queue.acknowledge("s1", &["a".into(), "unknown".into()]).await.unwrap();
    let page = queue.pending("s1", 10).await.unwrap();
    let jtis: Vec<&str> = page.events.iter().map(|e| e.jti.as_str()).collect();
    assert_eq!((jtis, page.more), (vec!["c", "d"], false));
    assert_eq!(queue.pending("s2", 10).await.unwrap().events, vec![event("s2", "b")]);
    assert!(queue.delete_stream("s2").await.unwrap());
    assert!(!queue.delete_stream("s2").await.unwrap());
    assert!(queue.pending("s2", 10).await.unwrap().events.is_empty());
    assert_eq!(queue.stream("s2").await.unwrap(), None);
}

#[tokio::test]
async fn memory_queue() {
    let store = MemoryStore::new();
    fill(&store).await;
    check(&store).await;
}

#[tokio::test]
async fn embedded_queue_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rev.redb");
    {
        let store = EmbeddedStore::open(&path).unwrap();
        fill(&store).await;
    }
    let store = Arc::new(EmbeddedStore::open(&path).unwrap());
    check(store.as_ref()).await;
}

#[tokio::test]
async fn redis_queue_survives_a_kill_with_append_only_persistence() {
    let mut server = RedisServer::start_with(RedisOptions {
        appendonly: true,
        ..RedisOptions::default()
    });
    {
        let store = RedisStore::connect(&server.url(), "q:", DEFAULT_TIMEOUT).await.unwrap();
        fill(&store).await;
    }
    server.stop();
    server.start_again();
    let store = RedisStore::connect(&server.url(), "q:", DEFAULT_TIMEOUT).await.unwrap();
    check(&store).await;
}
