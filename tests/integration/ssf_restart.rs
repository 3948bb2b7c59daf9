//! A downstream service restarts after its revocation stream heard and acknowledged an
//! offboarding. mcp-sts never resends an acknowledged event, so the restarted verifier
//! must still refuse the offboarded user's unexpired token: from its state file, or,
//! without one, by not vouching for tokens older than its first poll (fail closed, or
//! introspection when configured). Real mcp-sts, real HTTP, polls driven on demand.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::support::ssf::Receiver;
use crate::support::sts::{ORDERS_API_SECRET, Options, TestSts};
use mcp_sts_contract::revocation::RevocationKind;
use mcp_sts_downstream::verify::{
    IntrospectionConfig, RevocationStream, RevocationStreamConfig, Verifier, VerifierConfig, VerifyError,
};
use reqwest::Method;

/// How one orders-api instance keeps (or does not keep) what it heard.
#[derive(Clone)]
struct Instance {
    name: &'static str,
    state_path: Option<PathBuf>,
    introspection_fallback: bool,
}

struct Downstream {
    verifier: Verifier,
    stream: Arc<RevocationStream>,
}

fn start(sts: &TestSts, instance: &Instance) -> Result<Downstream, VerifyError> {
    let mut config = RevocationStreamConfig::new(&sts.url, "orders-api", ORDERS_API_SECRET);
    config.instance = instance.name.into();
    config.state_path = instance.state_path.clone();
    config.introspection_fallback = instance.introspection_fallback;
    let stream = Arc::new(RevocationStream::new(config)?);
    let mut verifier = VerifierConfig::new(&sts.url, "orders-api");
    verifier.revocation_stream = Some(stream.clone());
    if instance.introspection_fallback {
        let mut introspection =
            IntrospectionConfig::new(format!("{}/introspect", sts.url), "orders-api", ORDERS_API_SECRET);
        introspection.cache_ttl = Duration::ZERO;
        verifier.introspection = Some(introspection);
    }
    Ok(Downstream {
        verifier: Verifier::new(verifier)?,
        stream,
    })
}

fn stale(error: VerifyError) {
    assert!(matches!(error, VerifyError::RevocationStreamStale(_)), "{error:?}");
    assert!(error.is_unavailable(), "a stale answer is a 503, never a 401");
}

#[tokio::test]
async fn a_restarted_verifier_still_refuses_an_acknowledged_offboarding() {
    let sts = TestSts::start_opts(Options {
        admin: true,
        ..Options::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let with_state = Instance {
        name: "with-state",
        state_path: Some(dir.path().join("orders-api.stream.json")),
        introspection_fallback: false,
    };
    let in_memory = Instance {
        name: "in-memory",
        state_path: None,
        introspection_fallback: false,
    };
    let with_fallback = Instance {
        name: "in-memory-fallback",
        state_path: None,
        introspection_fallback: true,
    };
    let instances = [&with_state, &in_memory, &with_fallback];

    // First life: subscribe, then mint past the coverage start (first poll + leeway).
    let subscribed = sts.clock_now();
    let first: Vec<Downstream> = instances.iter().map(|i| start(&sts, i).unwrap()).collect();
    for d in &first {
        assert_eq!(d.stream.poll_once(subscribed).await.unwrap(), 0);
    }
    let now = subscribed + 60;
    sts.clock.set(now);
    let carol = sts
        .exchange(&sts.user_token("carol", &["developer"]), &[("audience", "orders-api")])
        .await
        .token();
    let bob = sts
        .exchange(&sts.user_token("bob", &["developer"]), &[("audience", "orders-api")])
        .await
        .token();
    for d in &first {
        assert_eq!(d.stream.poll_once(now).await.unwrap(), 0);
        d.verifier.verify_at(&carol, now).await.unwrap();
        d.verifier.verify_at(&bob, now).await.unwrap();
    }

    // carol is offboarded; each instance hears it, acknowledges it, refuses her token.
    sts.admin_revoke("subject", "carol").await;
    for d in &first {
        assert_eq!(d.stream.poll_once(now).await.unwrap(), 1);
        assert_eq!(d.stream.poll_once(now).await.unwrap(), 0, "acknowledged");
        assert_eq!(
            d.verifier.verify_at(&carol, now).await.unwrap_err(),
            VerifyError::Revoked
        );
    }
    drop(first);

    // Second life: new RevocationStream instances, same instance names, same streams
    // at mcp-sts (which hold nothing more: the offboarding was acknowledged).
    let later = now + 5;
    sts.clock.set(later);
    let [again_with_state, again_in_memory, again_with_fallback]: [Downstream; 3] = instances
        .iter()
        .map(|i| start(&sts, i).unwrap())
        .collect::<Vec<_>>()
        .try_into()
        .unwrap_or_else(|_| unreachable!());

    // With the state file, carol is refused even before the first poll, and after it.
    assert_eq!(
        again_with_state.stream.heard(RevocationKind::Subject, "carol"),
        Some(now)
    );
    assert_eq!(
        again_with_state.verifier.verify_at(&carol, later).await.unwrap_err(),
        VerifyError::Revoked
    );
    for d in [&again_with_state, &again_in_memory, &again_with_fallback] {
        assert_eq!(d.stream.poll_once(later).await.unwrap(), 0, "nothing is resent");
    }
    assert_eq!(
        again_with_state.verifier.verify_at(&carol, later).await.unwrap_err(),
        VerifyError::Revoked
    );
    // Coverage went on across the restart: bob's older token is vouched for.
    again_with_state.verifier.verify_at(&bob, later).await.unwrap();

    // Without one, the restarted stream heard nothing of carol and cannot vouch for any
    // token issued before its first poll: it fails closed, bob's old token included.
    assert_eq!(again_in_memory.stream.heard(RevocationKind::Subject, "carol"), None);
    stale(again_in_memory.verifier.verify_at(&carol, later).await.unwrap_err());
    stale(again_in_memory.verifier.verify_at(&bob, later).await.unwrap_err());
    // ... or asks introspection, which knows carol is revoked and bob is not.
    assert_eq!(
        again_with_fallback.verifier.verify_at(&carol, later).await.unwrap_err(),
        VerifyError::Revoked
    );
    again_with_fallback.verifier.verify_at(&bob, later).await.unwrap();

    // A fresh token of a user still employed is accepted by every instance once it is
    // issued after the restarted streams' coverage start; carol gets no fresh token.
    let fresh_at = later + 40;
    sts.clock.set(fresh_at);
    let fresh_bob = sts
        .exchange(&sts.user_token("bob", &["developer"]), &[("audience", "orders-api")])
        .await
        .token();
    sts.exchange(&sts.user_token("carol", &["developer"]), &[("audience", "orders-api")])
        .await
        .assert_error(400, "invalid_request");
    for d in [&again_with_state, &again_in_memory, &again_with_fallback] {
        assert_eq!(d.stream.poll_once(fresh_at).await.unwrap(), 0);
        d.verifier.verify_at(&fresh_bob, fresh_at).await.unwrap();
    }
    // carol's old token stays refused by the instance with a state file until it expires.
    assert_eq!(
        again_with_state.verifier.verify_at(&carol, fresh_at).await.unwrap_err(),
        VerifyError::Revoked
    );
    stale(again_in_memory.verifier.verify_at(&carol, fresh_at).await.unwrap_err());
}

#[tokio::test]
async fn a_new_stream_at_the_transmitter_restarts_coverage_even_with_a_state_file() {
    let sts = TestSts::start_opts(Options {
        admin: true,
        ..Options::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let instance = Instance {
        name: "orders-1",
        state_path: Some(dir.path().join("state.json")),
        introspection_fallback: false,
    };
    let subscribed = sts.clock_now();
    let first = start(&sts, &instance).unwrap();
    first.stream.poll_once(subscribed).await.unwrap();
    let now = subscribed + 60;
    sts.clock.set(now);
    let dave = sts
        .exchange(&sts.user_token("dave", &["developer"]), &[("audience", "orders-api")])
        .await
        .token();
    first.stream.poll_once(now).await.unwrap();
    first.verifier.verify_at(&dave, now).await.unwrap();
    drop(first);

    // While the service is down its stream is deleted (and dave offboarded): nothing
    // will ever deliver that revocation to this instance.
    let admin = Receiver::new(&sts.url, "orders-api", ORDERS_API_SECRET);
    let streams = admin.call(Method::GET, "/ssf/streams", None).await;
    let id = streams.body[0]["stream_id"].as_str().unwrap().to_owned();
    let deleted = admin
        .call(Method::DELETE, &format!("/ssf/streams?stream_id={id}"), None)
        .await;
    assert_eq!(deleted.status, 204);
    sts.admin_revoke("subject", "dave").await;

    // The restarted instance creates a new stream; its state file remembers another
    // one, so dave's token, older than the new stream, is not vouched for.
    let restarted = start(&sts, &instance).unwrap();
    assert_eq!(restarted.stream.poll_once(now + 1).await.unwrap(), 0);
    stale(restarted.verifier.verify_at(&dave, now + 1).await.unwrap_err());
}

#[tokio::test]
async fn a_revocation_that_cannot_be_saved_is_not_acknowledged() {
    let sts = TestSts::start_opts(Options {
        admin: true,
        ..Options::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let working = Instance {
        name: "orders-1",
        state_path: Some(dir.path().join("state.json")),
        introspection_fallback: false,
    };
    // A state file in a directory that does not exist: nothing can be saved there, so
    // the first poll stops before settling (or acknowledging) anything.
    let unsaveable = Instance {
        state_path: Some(dir.path().join("missing").join("state.json")),
        ..working.clone()
    };
    let now = sts.clock_now();
    let refused = start(&sts, &unsaveable)
        .unwrap()
        .stream
        .poll_once(now)
        .await
        .unwrap_err();
    assert!(refused.is_unavailable(), "{refused:?}");

    // The instance subscribes and saves its coverage, then erin is offboarded.
    assert_eq!(start(&sts, &working).unwrap().stream.poll_once(now).await.unwrap(), 0);
    sts.admin_revoke("subject", "erin").await;

    // A copy of that state whose directory disappears after start-up: erin's
    // revocation is heard but cannot be saved, so it is not acknowledged.
    let moved = dir.path().join("moved");
    std::fs::create_dir(&moved).unwrap();
    std::fs::copy(dir.path().join("state.json"), moved.join("state.json")).unwrap();
    let vanishing = Instance {
        state_path: Some(moved.join("state.json")),
        ..working.clone()
    };
    let third = start(&sts, &vanishing).unwrap();
    std::fs::remove_dir_all(&moved).unwrap();
    let refused = third.stream.poll_once(now).await.unwrap_err();
    assert!(refused.is_unavailable(), "{refused:?}");
    drop(third);

    // It comes again to an instance that can save it.
    let fourth = start(&sts, &working).unwrap();
    assert_eq!(fourth.stream.poll_once(now).await.unwrap(), 1);
    assert_eq!(fourth.stream.heard(RevocationKind::Subject, "erin"), Some(now));
    let saved = std::fs::read_to_string(dir.path().join("state.json")).unwrap();
    assert!(saved.contains("\"erin\""), "{saved}");
    drop(fourth);

    // A damaged state file stops the verifier at start-up instead of forgetting.
    std::fs::write(dir.path().join("state.json"), b"{not json").unwrap();
    let damaged = start(&sts, &working).err().expect("a damaged state file is refused");
    assert!(matches!(damaged, VerifyError::Config(_)), "{damaged:?}");
}
