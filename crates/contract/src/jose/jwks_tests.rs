use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use super::*;
use crate::clock::{Clock, ManualClock};

fn ec_jwk(kid: &str) -> Value {
    let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let point = key.public_key().as_ref();
    json!({"kty": "EC", "crv": "P-256", "kid": kid,
           "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])})
}

/// A JWKS and discovery endpoint on 127.0.0.1:0 that counts its JWKS fetches.
#[derive(Default)]
struct Idp {
    keys: Mutex<Vec<Value>>,
    claimed_issuer: Mutex<Option<String>>,
    jwks_hits: AtomicUsize,
    down: AtomicBool,
    base: Mutex<String>,
}

impl Idp {
    async fn start() -> (Arc<Self>, String) {
        async fn jwks(State(idp): State<Arc<Idp>>) -> Response {
            idp.jwks_hits.fetch_add(1, Ordering::SeqCst);
            if idp.down.load(Ordering::SeqCst) {
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
            axum::Json(json!({"keys": idp.keys.lock().unwrap().clone()})).into_response()
        }
        async fn discovery(State(idp): State<Arc<Idp>>) -> Response {
            let base = idp.base.lock().unwrap().clone();
            let issuer = idp.claimed_issuer.lock().unwrap().clone().unwrap_or(base.clone());
            axum::Json(json!({"issuer": issuer, "jwks_uri": format!("{base}/jwks")})).into_response()
        }
        let idp = Arc::new(Self::default());
        let app = Router::new()
            .route("/jwks", get(jwks))
            .route("/.well-known/openid-configuration", get(discovery))
            .with_state(Arc::clone(&idp));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        *idp.base.lock().unwrap() = base.clone();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (idp, base)
    }

    fn publish(&self, keys: &[&Value]) {
        *self.keys.lock().unwrap() = keys.iter().map(|k| (*k).clone()).collect();
    }

    fn hits(&self) -> usize {
        self.jwks_hits.load(Ordering::SeqCst)
    }
}

fn cache(source: JwksSource, config: JwksConfig) -> JwksCache {
    JwksCache::new(source, config, reqwest::Client::new())
}

fn downstream_config() -> JwksConfig {
    JwksConfig {
        kid_required: true,
        algorithms: vec![Algorithm::ES256, Algorithm::RS256],
        max_stale: 0,
        ..JwksConfig::default()
    }
}

#[tokio::test]
async fn inline_keys_match_by_kid_and_algorithm() {
    let cache = cache(
        JwksSource::Inline(json!({"keys": [ec_jwk("a")]})),
        JwksConfig::default(),
    );
    assert_eq!(cache.keys_for(Some("a"), Algorithm::ES256, 0).await.unwrap().len(), 1);
    assert_eq!(
        cache.keys_for(Some("b"), Algorithm::ES256, 0).await.unwrap_err(),
        JwsError::UnknownKey
    );
    assert_eq!(
        cache.keys_for(Some("a"), Algorithm::RS256, 0).await.unwrap_err(),
        JwsError::AlgorithmMismatch
    );
    assert_eq!(cache.keys_for(None, Algorithm::ES256, 0).await.unwrap().len(), 1);
    assert_eq!(cache.stats(), JwksStats::default(), "inline keys are never fetched");
}

#[tokio::test]
async fn unreachable_keys_fail_as_unavailable_and_are_not_refetched_in_a_loop() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}/jwks", listener.local_addr().unwrap());
    drop(listener);
    let cache = cache(JwksSource::Uri(dead), JwksConfig::default());
    let clock = ManualClock::new(100);
    let err = cache
        .keys_for(Some("a"), Algorithm::ES256, clock.now())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, JwsError::KeysUnavailable(why) if why.contains("unreachable")),
        "{err:?}"
    );
    clock.advance(29);
    assert!(matches!(
        cache.keys_for(Some("a"), Algorithm::ES256, clock.now()).await,
        Err(JwsError::KeysUnavailable(_))
    ));
    assert_eq!(
        cache.stats(),
        JwksStats {
            fetches: 1,
            failures: 1
        }
    );
    clock.advance(1);
    assert!(matches!(
        cache.keys_for(Some("a"), Algorithm::ES256, clock.now()).await,
        Err(JwsError::KeysUnavailable(_))
    ));
    assert_eq!(
        cache.stats(),
        JwksStats {
            fetches: 2,
            failures: 2
        },
        "retried after the interval"
    );
}

#[test]
fn keeps_signing_keys_and_infers_their_algorithm() {
    let keys = parse_jwks(&json!({"keys": [ec_jwk("a")]}), &downstream_config()).unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].kid.as_deref(), Some("a"));
    assert_eq!(keys[0].algorithms, [Algorithm::ES256]);
}

#[test]
fn skips_keys_it_must_not_use() {
    let mut enc = ec_jwk("enc");
    enc["use"] = json!("enc");
    let mut es384 = ec_jwk("es384");
    es384["alg"] = json!("ES384");
    let mut no_kid = ec_jwk("x");
    no_kid.as_object_mut().unwrap().remove("kid");
    let small_rsa = json!({"kty": "RSA", "kid": "small", "n": URL_SAFE_NO_PAD.encode([0xc5u8; 128]), "e": "AQAB"});
    let document = json!({"keys": [
        enc, es384, no_kid, small_rsa,
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        {"kty": "weird", "kid": "weird"},
        ec_jwk("good"),
    ]});
    let keys = parse_jwks(&document, &downstream_config()).unwrap();
    let kids: Vec<&str> = keys.iter().filter_map(|k| k.kid.as_deref()).collect();
    assert_eq!(kids, ["good"]);

    // Upstream, without a required kid and with EdDSA allowed, more keys are usable.
    let keys = parse_jwks(&document, &JwksConfig::default()).unwrap();
    assert_eq!(keys.len(), 3, "no-kid EC, Ed25519 and good: {keys:?}");
}

#[test]
fn refuses_documents_that_are_not_jwk_sets() {
    assert!(parse_jwks(&json!({}), &JwksConfig::default()).is_err());
    assert!(parse_jwks(&json!("keys"), &JwksConfig::default()).is_err());
    assert!(parse_jwks(&json!({"keys": {}}), &JwksConfig::default()).is_err());
}

#[tokio::test]
async fn fresh_keys_are_served_from_memory_and_refetched_after_the_ttl() {
    let (idp, base) = Idp::start().await;
    let a = ec_jwk("a");
    idp.publish(&[&a]);
    let cache = cache(JwksSource::Uri(format!("{base}/jwks")), JwksConfig::default());
    let clock = ManualClock::new(1_000);
    for _ in 0..3 {
        cache.keys_for(Some("a"), Algorithm::ES256, clock.now()).await.unwrap();
    }
    assert_eq!(idp.hits(), 1);
    clock.advance(599);
    cache.keys_for(Some("a"), Algorithm::ES256, clock.now()).await.unwrap();
    assert_eq!(idp.hits(), 1, "still fresh");
    clock.advance(1);
    cache.keys_for(Some("a"), Algorithm::ES256, clock.now()).await.unwrap();
    assert_eq!(idp.hits(), 2, "refetched once the TTL is over");
    assert_eq!(
        cache.stats(),
        JwksStats {
            fetches: 2,
            failures: 0
        }
    );
}

#[tokio::test]
async fn an_unknown_kid_forces_one_refetch_per_interval() {
    let (idp, base) = Idp::start().await;
    let (a, b) = (ec_jwk("a"), ec_jwk("b"));
    idp.publish(&[&a]);
    let cache = cache(JwksSource::Uri(format!("{base}/jwks")), JwksConfig::default());
    let clock = ManualClock::new(1_000);
    cache.keys_for(Some("a"), Algorithm::ES256, clock.now()).await.unwrap();

    // The issuer rotates: the new kid is fetched at once.
    idp.publish(&[&a, &b]);
    cache.keys_for(Some("b"), Algorithm::ES256, clock.now()).await.unwrap();
    assert_eq!(idp.hits(), 2);

    // Made-up kids do not make us fetch again within the interval.
    for i in 0..10 {
        let kid = format!("ghost-{i}");
        assert_eq!(
            cache
                .keys_for(Some(&kid), Algorithm::ES256, clock.now())
                .await
                .unwrap_err(),
            JwsError::UnknownKey
        );
    }
    clock.advance(29);
    assert!(
        cache
            .keys_for(Some("ghost"), Algorithm::ES256, clock.now())
            .await
            .is_err()
    );
    assert_eq!(idp.hits(), 2);
    clock.advance(1);
    assert!(
        cache
            .keys_for(Some("ghost"), Algorithm::ES256, clock.now())
            .await
            .is_err()
    );
    assert_eq!(idp.hits(), 3, "one more refetch once the interval is over");

    // A known kid under the wrong algorithm is refused without any fetch.
    assert_eq!(
        cache
            .keys_for(Some("a"), Algorithm::RS256, clock.now())
            .await
            .unwrap_err(),
        JwsError::AlgorithmMismatch
    );
    assert_eq!(idp.hits(), 3);
}

#[tokio::test]
async fn concurrent_lookups_share_one_fetch() {
    let (idp, base) = Idp::start().await;
    let (a, b) = (ec_jwk("a"), ec_jwk("b"));
    idp.publish(&[&a]);
    let cache = Arc::new(cache(JwksSource::Uri(format!("{base}/jwks")), JwksConfig::default()));
    let now = 1_000;
    cache.keys_for(Some("a"), Algorithm::ES256, now).await.unwrap();
    idp.publish(&[&a, &b]);
    let lookups: Vec<_> = (0..8)
        .map(|_| {
            let cache = Arc::clone(&cache);
            tokio::spawn(async move { cache.keys_for(Some("b"), Algorithm::ES256, now).await })
        })
        .collect();
    for lookup in lookups {
        assert_eq!(lookup.await.unwrap().unwrap().len(), 1);
    }
    assert_eq!(idp.hits(), 2, "eight lookups of a new kid, one fetch");
}

#[tokio::test]
async fn a_failed_refresh_keeps_cached_keys_as_configured() {
    let (idp, base) = Idp::start().await;
    let a = ec_jwk("a");
    idp.publish(&[&a]);
    let keep = cache(JwksSource::Uri(format!("{base}/jwks")), JwksConfig::default());
    let strict = cache(JwksSource::Uri(format!("{base}/jwks")), downstream_config());
    let clock = ManualClock::new(1_000);
    keep.keys_for(Some("a"), Algorithm::ES256, clock.now()).await.unwrap();
    strict.keys_for(Some("a"), Algorithm::ES256, clock.now()).await.unwrap();

    idp.down.store(true, Ordering::SeqCst);
    // Within the TTL both keep working, and an unknown kid is just unknown.
    for cache in [&keep, &strict] {
        assert_eq!(
            cache
                .keys_for(Some("ghost"), Algorithm::ES256, clock.now())
                .await
                .unwrap_err(),
            JwsError::UnknownKey
        );
        cache.keys_for(Some("a"), Algorithm::ES256, clock.now()).await.unwrap();
    }
    // Past the TTL the refresh fails: one cache keeps its keys, the other fails closed.
    clock.advance(600);
    keep.keys_for(Some("a"), Algorithm::ES256, clock.now()).await.unwrap();
    let err = strict
        .keys_for(Some("a"), Algorithm::ES256, clock.now())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, JwsError::KeysUnavailable(why) if why.contains("HTTP 503")),
        "{err:?}"
    );
    assert_eq!(
        keep.stats(),
        JwksStats {
            fetches: 3,
            failures: 2
        }
    );

    // Back up: the next attempt after the interval recovers.
    idp.down.store(false, Ordering::SeqCst);
    clock.advance(30);
    strict.keys_for(Some("a"), Algorithm::ES256, clock.now()).await.unwrap();
}

#[tokio::test]
async fn discovery_must_name_the_same_issuer() {
    let (idp, base) = Idp::start().await;
    let a = ec_jwk("a");
    idp.publish(&[&a]);
    let cache = cache(JwksSource::Discovery(base.clone()), JwksConfig::default());
    cache.keys_for(Some("a"), Algorithm::ES256, 1_000).await.unwrap();
    assert_eq!(idp.hits(), 1);

    *idp.claimed_issuer.lock().unwrap() = Some("https://evil.example".into());
    let cache = self::cache(JwksSource::Discovery(base), JwksConfig::default());
    let err = cache.keys_for(Some("a"), Algorithm::ES256, 1_000).await.unwrap_err();
    assert!(
        matches!(&err, JwsError::KeysUnavailable(why) if why.contains("different issuer")),
        "{err:?}"
    );
    assert_eq!(idp.hits(), 1, "the JWKS of a mismatched issuer is never fetched");
}

#[tokio::test]
async fn a_required_kid_is_required_of_keys_and_lookups() {
    let (idp, base) = Idp::start().await;
    let mut anonymous = ec_jwk("x");
    anonymous.as_object_mut().unwrap().remove("kid");
    idp.publish(&[&anonymous]);
    let cache = cache(JwksSource::Uri(format!("{base}/jwks")), downstream_config());
    assert_eq!(
        cache.keys_for(None, Algorithm::ES256, 1_000).await.unwrap_err(),
        JwsError::UnknownKey
    );
    assert_eq!(idp.hits(), 0, "a lookup without kid never fetches");
    let err = cache.keys_for(Some("x"), Algorithm::ES256, 1_000).await.unwrap_err();
    assert!(
        matches!(&err, JwsError::KeysUnavailable(why) if why.contains("no usable")),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_oversized_jwks_is_refused_within_the_cap() {
    let (idp, base) = Idp::start().await;
    let keys: Vec<Value> = (0..64).map(|i| ec_jwk(&format!("k{i}"))).collect();
    idp.publish(&keys.iter().collect::<Vec<_>>());
    let mut config = JwksConfig::default();
    config.fetch.max_bytes = 1024;
    let cache = cache(JwksSource::Uri(format!("{base}/jwks")), config);
    let err = cache.keys_for(Some("k0"), Algorithm::ES256, 1_000).await.unwrap_err();
    assert!(
        matches!(&err, JwsError::KeysUnavailable(why) if why.contains("larger than 1024")),
        "{err:?}"
    );
}
