//! One behaviour suite, run against every revocation backend: the in-memory reference,
//! the embedded redb file and a real Redis. A backend that passes behaves like the others.

use std::any::Any;
use std::time::Duration;

use crate::support::redis_server::RedisServer;
use mcp_sts::revocation::embedded::EmbeddedStore;
use mcp_sts::revocation::memory::MemoryStore;
use mcp_sts::revocation::redis::{DEFAULT_TIMEOUT, RedisStore};
use mcp_sts::revocation::{KeptOffboardings, NEVER, Revocation, RevocationKey, RevocationKind, RevocationStore};
use mcp_sts_contract::clock::UnixTime;

/// A store plus whatever must outlive it (a temp dir, a redis-server).
struct Backend {
    store: Box<dyn RevocationStore>,
    _keep: Box<dyn Any>,
}

async fn memory() -> Backend {
    Backend {
        store: Box::new(MemoryStore::new()),
        _keep: Box::new(()),
    }
}

async fn embedded() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("revocations.redb")).unwrap();
    Backend {
        store: Box::new(store),
        _keep: Box::new(dir),
    }
}

async fn redis() -> Backend {
    let server = RedisServer::start();
    let store = RedisStore::connect(&server.url(), "mcp-sts:", DEFAULT_TIMEOUT)
        .await
        .unwrap();
    Backend {
        store: Box::new(store),
        _keep: Box::new(server),
    }
}

/// Real time: Redis expires keys by its own clock, so logical times must be near it.
fn wall_now() -> UnixTime {
    mcp_sts_contract::clock::Clock::now(&mcp_sts_contract::clock::SystemClock)
}

fn entry(kind: RevocationKind, value: &str, expires_at: UnixTime) -> Revocation {
    Revocation {
        kind,
        value: value.into(),
        issuer: None,
        reason: format!("reason for {value}"),
        revoked_by: "admin".into(),
        revoked_at: expires_at.saturating_sub(3600),
        expires_at,
        expiry_requested: true,
    }
}

fn key(kind: RevocationKind, value: &str) -> RevocationKey {
    RevocationKey::new(kind, value)
}

mod behaviour {
    use super::*;
    use RevocationKind::*;

    pub async fn revoke_check_reinstate(store: &dyn RevocationStore) {
        let now = wall_now();
        let alice = entry(Subject, "alice", now + 3600);
        store.revoke(alice.clone()).await.unwrap();
        let keys = [key(Subject, "alice"), key(Subject, "bob")];
        assert_eq!(store.check(&keys, now).await.unwrap(), vec![Some(alice.clone()), None]);
        assert!(store.reinstate(&keys[0]).await.unwrap());
        assert_eq!(store.check(&keys, now).await.unwrap(), vec![None, None]);
        assert!(
            !store.reinstate(&keys[0]).await.unwrap(),
            "second reinstate finds nothing"
        );
        store.ping().await.unwrap();
    }

    pub async fn check_many_keys_in_order(store: &dyn RevocationStore) {
        let now = wall_now();
        let revoked = [
            entry(Subject, "x", now + 100),
            entry(Client, "c1", now + 200),
            entry(Token, "jti-9", now + 300),
        ];
        for e in &revoked {
            store.revoke(e.clone()).await.unwrap();
        }
        let keys = [
            key(Token, "jti-9"),
            key(Agent, "x"), // same value, other kind
            key(Subject, "x"),
            key(Session, "s1"),
            key(Client, "c1"),
            key(Client, "c2"),
        ];
        let found = store.check(&keys, now).await.unwrap();
        let expected = vec![
            Some(revoked[2].clone()),
            None,
            Some(revoked[0].clone()),
            None,
            Some(revoked[1].clone()),
            None,
        ];
        assert_eq!(found, expected);
        assert!(store.check(&[], now).await.unwrap().is_empty());
    }

    pub async fn expired_entries_are_not_in_force(store: &dyn RevocationStore) {
        let now = wall_now();
        let e = entry(Session, "sid-1", now + 100);
        store.revoke(e.clone()).await.unwrap();
        store.revoke(entry(Session, "already-gone", now - 10)).await.unwrap();
        let keys = [key(Session, "sid-1"), key(Session, "already-gone")];
        assert_eq!(store.check(&keys, now).await.unwrap(), vec![Some(e.clone()), None]);
        assert_eq!(store.check(&keys, now + 99).await.unwrap(), vec![Some(e.clone()), None]);
        assert_eq!(
            store.check(&keys, now + 100).await.unwrap(),
            vec![None, None],
            "expires_at == now is over"
        );
        assert_eq!(store.check(&keys, now + 500).await.unwrap(), vec![None, None]);
        assert_eq!(store.list(now).await.unwrap(), vec![e]);
        assert!(store.list(now + 100).await.unwrap().is_empty());
    }

    pub async fn list_is_sorted_by_kind_then_value(store: &dyn RevocationStore) {
        let now = wall_now();
        let live = [
            entry(Token, "t", now + 50),
            entry(Subject, "zed", now + 60),
            entry(Client, "cli", now + 70),
            entry(Subject, "amy", now + 80),
            entry(Agent, "bot", now + 90),
            entry(Session, "s", now + 100),
            entry(Agent, "aardvark", now + 110),
        ];
        for e in &live {
            store.revoke(e.clone()).await.unwrap();
        }
        store.revoke(entry(Subject, "expired", now + 5)).await.unwrap();
        let mut expected = live.to_vec();
        expected.sort_by_key(Revocation::key);
        let listed = store.list(now + 10).await.unwrap();
        assert_eq!(listed, expected);
        let kinds: Vec<RevocationKind> = listed.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [Subject, Subject, Session, Agent, Agent, Client, Token]);
    }

    pub async fn revoke_overwrites(store: &dyn RevocationStore) {
        let now = wall_now();
        store.revoke(entry(Agent, "rogue", now + 100)).await.unwrap();
        let mut second = entry(Agent, "rogue", now + 900);
        second.reason = "second thoughts".into();
        second.revoked_by = "someone else".into();
        store.revoke(second.clone()).await.unwrap();
        assert_eq!(
            store.check(&[key(Agent, "rogue")], now + 500).await.unwrap(),
            vec![Some(second.clone())]
        );
        assert_eq!(store.list(now).await.unwrap(), vec![second]);
    }

    pub async fn use_once_refuses_replay_until_expiry(store: &dyn RevocationStore) {
        let now = wall_now();
        assert!(store.use_once("jti-a", now + 600, now).await.unwrap(), "first use");
        assert!(!store.use_once("jti-a", now + 600, now).await.unwrap(), "replay");
        assert!(
            !store.use_once("jti-a", now + 900, now + 10).await.unwrap(),
            "replay with another expiry"
        );
        assert!(store.use_once("jti-b", now + 600, now).await.unwrap(), "another id");

        // Expiry is real time for Redis, so wait for the marker to lapse on the wall clock.
        let short = wall_now() + 1;
        assert!(store.use_once("jti-short", short, wall_now()).await.unwrap());
        assert!(!store.use_once("jti-short", short, wall_now()).await.unwrap());
        while wall_now() <= short {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let later = wall_now();
        assert!(
            store.use_once("jti-short", later + 600, later).await.unwrap(),
            "usable again after expiry"
        );
        assert!(!store.use_once("jti-short", later + 600, later).await.unwrap());
    }

    pub async fn values_with_special_characters(store: &dyn RevocationStore) {
        let now = wall_now();
        let values = [
            "alice@example.com",
            "https://mcp.example.com/tools?x=1&y=a:b",
            "with space",
            "ünïcødé ✓ 日本",
            "a:b:c",
            "session:x",
            "*",
            "[glob]?\\",
            "",
        ];
        let entries: Vec<Revocation> = values.iter().map(|v| entry(Subject, v, now + 100)).collect();
        for e in &entries {
            store.revoke(e.clone()).await.unwrap();
        }
        let keys: Vec<RevocationKey> = values.iter().map(|v| key(Subject, v)).collect();
        let found = store.check(&keys, now).await.unwrap();
        assert_eq!(found, entries.iter().cloned().map(Some).collect::<Vec<_>>());
        // No value leaks into a neighbour's key.
        let near_misses = [
            key(Session, "x"),
            key(Subject, "a"),
            key(Subject, "a:b"),
            key(Subject, "session"),
            key(Agent, "*"),
        ];
        assert_eq!(
            store.check(&near_misses, now).await.unwrap(),
            vec![None; near_misses.len()]
        );
        let mut expected = entries.clone();
        expected.sort_by_key(Revocation::key);
        assert_eq!(store.list(now).await.unwrap(), expected);
        assert!(store.reinstate(&key(Subject, "a:b:c")).await.unwrap());
        assert!(store.check(&[key(Subject, "a:b:c")], now).await.unwrap()[0].is_none());
        assert!(store.use_once("urn:jti:ü @x", now + 100, now).await.unwrap());
        assert!(!store.use_once("urn:jti:ü @x", now + 100, now).await.unwrap());
    }

    /// Entries as earlier releases wrote them (an end nobody asked for; in Redis its
    /// expiry too) hold until reinstated, are rewritten once, and only they are.
    pub async fn offboardings_from_earlier_releases_hold_until_reinstated(store: &dyn RevocationStore) {
        let now = wall_now();
        let earlier = |kind, value| Revocation {
            expiry_requested: false,
            ..entry(kind, value, now + 100)
        };
        let offboardings = [
            earlier(Subject, "leaver"),
            earlier(Agent, "rogue"),
            earlier(Client, "ex"),
        ];
        for e in offboardings
            .iter()
            .chain([&earlier(Session, "s-old"), &earlier(Subject, "back")])
        {
            store.revoke(e.clone()).await.unwrap();
        }
        store.revoke(entry(Subject, "temp", now + 100)).await.unwrap();
        assert!(store.reinstate(&key(Subject, "back")).await.unwrap());
        let held: Vec<Revocation> = offboardings
            .iter()
            .map(|e| Revocation {
                expires_at: NEVER,
                ..e.clone()
            })
            .collect();
        let keys = [
            key(Subject, "leaver"),
            key(Agent, "rogue"),
            key(Client, "ex"),
            key(Session, "s-old"),
            key(Subject, "temp"),
            key(Subject, "back"),
        ];
        let expected: Vec<Option<Revocation>> = held.iter().cloned().map(Some).chain([None, None, None]).collect();
        // Past their old end, before and after the rewrite, which happens once.
        assert_eq!(store.check(&keys, now + 500).await.unwrap(), expected);
        assert_eq!(
            store.keep_offboardings().await.unwrap(),
            KeptOffboardings {
                kept: 3,
                ..KeptOffboardings::default()
            }
        );
        assert_eq!(store.keep_offboardings().await.unwrap(), KeptOffboardings::default());
        assert_eq!(store.check(&keys, now + 500).await.unwrap(), expected);
        assert_eq!(store.list(now + 500).await.unwrap(), held);
        assert!(store.reinstate(&key(Agent, "rogue")).await.unwrap());
        assert_eq!(store.keep_offboardings().await.unwrap(), KeptOffboardings::default());
        assert_eq!(store.check(&[key(Agent, "rogue")], now).await.unwrap(), vec![None]);
    }

    pub async fn reinstate_of_missing_key_is_false(store: &dyn RevocationStore) {
        let now = wall_now();
        assert!(!store.reinstate(&key(Client, "never")).await.unwrap());
        store.revoke(entry(Client, "present", now + 100)).await.unwrap();
        assert!(
            !store.reinstate(&key(Agent, "present")).await.unwrap(),
            "same value, other kind"
        );
        assert_eq!(store.list(now).await.unwrap().len(), 1);
    }
}

/// One test per behaviour for one backend.
macro_rules! backend_suite {
    ($backend:ident) => {
        mod $backend {
            use super::*;

            backend_suite!(@tests $backend:
                revoke_check_reinstate,
                check_many_keys_in_order,
                expired_entries_are_not_in_force,
                list_is_sorted_by_kind_then_value,
                revoke_overwrites,
                use_once_refuses_replay_until_expiry,
                values_with_special_characters,
                reinstate_of_missing_key_is_false,
                offboardings_from_earlier_releases_hold_until_reinstated,
            );
        }
    };
    (@tests $backend:ident: $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let backend = super::$backend().await;
                behaviour::$name(backend.store.as_ref()).await;
            }
        )+
    };
}

backend_suite!(memory);
backend_suite!(embedded);
backend_suite!(redis);

#[tokio::test]
async fn embedded_entries_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/revocations.redb");
    let now = wall_now();
    let e = entry(RevocationKind::Subject, "leaver@example.com", now + 3600);
    {
        let store = EmbeddedStore::open(&path).unwrap();
        store.revoke(e.clone()).await.unwrap();
        assert!(store.use_once("jti-1", now + 3600, now).await.unwrap());
    }
    let store = EmbeddedStore::open(&path).unwrap();
    assert_eq!(store.check(&[e.key()], now).await.unwrap(), vec![Some(e.clone())]);
    assert_eq!(store.list(now).await.unwrap(), vec![e]);
    assert!(
        !store.use_once("jti-1", now + 3600, now).await.unwrap(),
        "one-time marks persist too"
    );
}
