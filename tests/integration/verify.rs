//! The downstream verifier against a fake STS served over real HTTP on 127.0.0.1:0.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::downstream::{AUDIENCE, ISSUER, NOW, TestKey, b64, dead_url, obo_claims, serve, start_sts};
use axum::Router;
use axum::routing::{get, post};
use base64::Engine;
use mcp_sts_contract::clock::{Clock, ManualClock, SystemClock};
use mcp_sts_downstream::verify::{
    AuthRejection, Authenticated, BearerAuthLayer, DelegationMode, ExecutionIdentity, IntrospectionConfig, Verifier,
    VerifierConfig, VerifyError,
};
use serde_json::{Value, json};

fn config(base: &str) -> VerifierConfig {
    let mut config = VerifierConfig::new(ISSUER, AUDIENCE);
    config.jwks_uri = format!("{base}/.well-known/jwks.json");
    config
}

fn verifier(base: &str) -> Verifier {
    Verifier::new(config(base)).unwrap()
}

/// A config whose caches keep time by a clock the test moves.
fn config_on(base: &str, clock: &ManualClock) -> VerifierConfig {
    let mut config = config(base);
    config.clock = Arc::new(clock.clone());
    config
}

/// A fake STS publishing one EC key, and a verifier for it.
async fn setup() -> (Arc<crate::support::downstream::Sts>, String, TestKey, Verifier) {
    let (sts, base) = start_sts().await;
    let key = TestKey::ec("ec-1");
    sts.publish(&[&key]);
    let verifier = verifier(&base);
    (sts, base, key, verifier)
}

fn with(claims: Value, field: &str, value: Value) -> Value {
    let mut claims = claims;
    claims[field] = value;
    claims
}

fn without(claims: Value, field: &str) -> Value {
    let mut claims = claims;
    claims.as_object_mut().unwrap().remove(field);
    claims
}

#[tokio::test]
async fn es256_token_yields_the_execution_identity() {
    let (_sts, _base, key, verifier) = setup().await;
    let id = verifier.verify_at(&key.sign(&obo_claims(NOW)), NOW).await.unwrap();

    assert_eq!(id.user(), "alice@example.com");
    assert_eq!(id.subject(), "alice@example.com");
    assert_eq!(id.tenant(), Some("acme"));
    assert_eq!(id.agent(), Some("claude-desktop"));
    assert_eq!(id.actors().len(), 1);
    assert_eq!(id.actors()[0].iss.as_deref(), Some("https://agents.test"));
    assert_eq!(id.service(), None);
    assert_eq!(id.delegation_mode(), DelegationMode::OnBehalfOf);
    assert!(id.has_scope("orders:read"));
    assert!(id.has_scope("orders:write"));
    assert!(!id.has_scope("orders:admin"));
    assert_eq!(id.scopes().len(), 2);
    assert_eq!(id.session_id(), "sess-1");
    assert_eq!(id.transaction_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(id.audience(), AUDIENCE);
    assert_eq!(id.client_id(), "orders-mcp");
    assert_eq!(id.expires_at(), NOW + 300);
    assert_eq!(id.issued_at(), Some(NOW));
    assert_eq!(id.token_id(), "tok-1");
    assert_eq!(id.issuer(), ISSUER);
    assert_eq!(id.describe(), "alice@example.com via agent claude-desktop (orders-mcp)");
    assert_eq!(id.to_string(), id.describe());
}

#[tokio::test]
async fn rs256_token_with_nested_actor_chain_lists_current_actor_first() {
    let (sts, base) = start_sts().await;
    let key = TestKey::rsa("rsa-1");
    sts.publish(&[&key]);
    let verifier = verifier(&base);
    let claims = with(
        obo_claims(NOW),
        "act",
        json!({"sub": "hop-2", "act": {"sub": "hop-1", "iss": "https://sts.test", "act": {"sub": "hop-0"}}}),
    );
    let claims = with(claims, "aud", json!(["billing-api", AUDIENCE]));
    let id = verifier.verify_at(&key.sign(&claims), NOW).await.unwrap();

    let chain: Vec<&str> = id.actors().iter().map(|a| a.sub.as_str()).collect();
    assert_eq!(chain, ["hop-2", "hop-1", "hop-0"]);
    assert_eq!(id.actors()[1].iss.as_deref(), Some("https://sts.test"));
    assert_eq!(id.agent(), Some("hop-2"));
    assert_eq!(id.audience(), AUDIENCE);
}

#[tokio::test]
async fn an_mcp_server_acting_for_an_agent_application_is_described_by_the_agent() {
    let (_sts, _base, key, verifier) = setup().await;
    // The chain mcp-sts builds when the user's token names the agent in client_id.
    let claims = with(
        obo_claims(NOW),
        "act",
        json!({"sub": "orders-mcp", "act": {"sub": "claude-desktop", "iss": "https://idp.test"}}),
    );
    let id = verifier.verify_at(&key.sign(&claims), NOW).await.unwrap();
    assert_eq!(
        id.agent(),
        Some("orders-mcp"),
        "the current actor still drives decisions"
    );
    assert_eq!(id.agent_application(), Some("claude-desktop"));
    assert_eq!(id.describe(), "alice@example.com via agent claude-desktop (orders-mcp)");

    // An actor token's agent, acting alone, is the agent application itself.
    let id = verifier.verify_at(&key.sign(&obo_claims(NOW)), NOW).await.unwrap();
    assert_eq!(id.agent_application(), Some("claude-desktop"));
    // A client naming only itself is described as before.
    let alone = with(obo_claims(NOW), "act", json!({"sub": "orders-mcp"}));
    let id = verifier.verify_at(&key.sign(&alone), NOW).await.unwrap();
    assert_eq!(id.agent_application(), Some("orders-mcp"));
    assert_eq!(id.describe(), "alice@example.com via agent orders-mcp (orders-mcp)");
}

#[tokio::test]
async fn service_identity_takes_the_user_from_the_user_claim() {
    let (_sts, _base, key, verifier) = setup().await;
    let claims = json!({
        "iss": ISSUER, "sub": "orders-mcp", "aud": AUDIENCE, "exp": NOW + 60, "iat": NOW,
        "nbf": NOW, "jti": "tok-s", "client_id": "orders-mcp", "scope": "orders:read",
        "delegation_mode": "service_identity", "sid": "sess-9", "txn": "t-9",
        "user": {"sub": "bob@example.com", "tenant": "globex", "agent": "cursor"}
    });
    let id = verifier.verify_at(&key.sign(&claims), NOW).await.unwrap();

    assert_eq!(id.delegation_mode(), DelegationMode::ServiceIdentity);
    assert_eq!(id.user(), "bob@example.com");
    assert_eq!(id.tenant(), Some("globex"));
    assert_eq!(id.service(), Some("orders-mcp"));
    assert_eq!(id.subject(), "orders-mcp");
    assert_eq!(id.agent(), Some("cursor"));
    assert_eq!(id.describe(), "service orders-mcp for bob@example.com via agent cursor");

    let no_user = without(claims, "user");
    let err = verifier.verify_at(&key.sign(&no_user), NOW).await.unwrap_err();
    assert_eq!(err, VerifyError::MissingClaim("user".into()));
}

#[tokio::test]
async fn restricted_user_has_no_agent() {
    let (_sts, _base, key, verifier) = setup().await;
    let claims = without(
        with(obo_claims(NOW), "delegation_mode", json!("restricted_user")),
        "act",
    );
    let id = verifier.verify_at(&key.sign(&claims), NOW).await.unwrap();
    assert_eq!(id.delegation_mode(), DelegationMode::RestrictedUser);
    assert_eq!(id.agent(), None);
    assert_eq!(id.describe(), "alice@example.com (restricted, via orders-mcp)");
}

#[tokio::test]
async fn typ_variants_of_at_jwt_are_accepted_case_insensitively() {
    let (_sts, _base, key, verifier) = setup().await;
    for typ in ["at+jwt", "application/at+jwt", "AT+JWT", "Application/At+Jwt"] {
        let header = json!({"alg": "ES256", "typ": typ, "kid": key.kid});
        let token = key.sign_with(&header, &obo_claims(NOW));
        assert!(verifier.verify_at(&token, NOW).await.is_ok(), "typ {typ}");
    }
}

#[tokio::test]
async fn other_typ_values_are_wrong_type() {
    let (_sts, _base, key, verifier) = setup().await;
    for typ in [json!("JWT"), json!("dpop+jwt"), json!("secevent+jwt"), Value::Null] {
        let mut header = json!({"alg": "ES256", "kid": key.kid});
        if !typ.is_null() {
            header["typ"] = typ.clone();
        }
        let token = key.sign_with(&header, &obo_claims(NOW));
        assert_eq!(
            verifier.verify_at(&token, NOW).await.unwrap_err(),
            VerifyError::WrongType,
            "typ {typ}"
        );
    }
}

#[tokio::test]
async fn key_rotation_is_survived_with_one_refetch_for_concurrent_requests() {
    let (sts, base) = start_sts().await;
    let old = TestKey::ec("old");
    let new = TestKey::ec("new");
    sts.publish(&[&old]);
    let verifier = Arc::new(verifier(&base));

    verifier.verify_at(&old.sign(&obo_claims(NOW)), NOW).await.unwrap();
    assert_eq!(sts.hits(), 1);

    sts.publish(&[&old, &new]);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let verifier = Arc::clone(&verifier);
        let token = new.sign(&obo_claims(NOW));
        tasks.push(tokio::spawn(async move { verifier.verify_at(&token, NOW).await }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().user(), "alice@example.com");
    }
    assert_eq!(sts.hits(), 2, "concurrent unknown kid must cause a single fetch");

    // The old key still works until it leaves the JWKS.
    verifier.verify_at(&old.sign(&obo_claims(NOW)), NOW).await.unwrap();
    assert_eq!(sts.hits(), 2);
}

#[tokio::test]
async fn unknown_kid_is_unknown_key_and_refetches_are_rate_limited() {
    let (sts, base) = start_sts().await;
    let known = TestKey::ec("known");
    sts.publish(&[&known]);
    let clock = ManualClock::new(NOW);
    let mut config = config_on(&base, &clock);
    config.jwks_min_refresh_interval = Duration::from_secs(10);
    let verifier = Verifier::new(config).unwrap();
    verifier.verify_at(&known.sign(&obo_claims(NOW)), NOW).await.unwrap();
    assert_eq!(sts.hits(), 1);

    let ghost = TestKey::ec("ghost");
    let err = verifier
        .verify_at(&ghost.sign(&obo_claims(NOW)), NOW)
        .await
        .unwrap_err();
    assert_eq!(err, VerifyError::UnknownKey("ghost".into()));
    assert_eq!(sts.hits(), 2);

    for i in 0..5 {
        let other = TestKey::ec(&format!("ghost-{i}"));
        let err = verifier
            .verify_at(&other.sign(&obo_claims(NOW)), NOW)
            .await
            .unwrap_err();
        assert!(matches!(err, VerifyError::UnknownKey(_)), "{err:?}");
    }
    assert_eq!(sts.hits(), 2, "refetch on unknown kid is rate-limited");

    clock.advance(9);
    let err = verifier
        .verify_at(&ghost.sign(&obo_claims(NOW)), NOW)
        .await
        .unwrap_err();
    assert_eq!(err, VerifyError::UnknownKey("ghost".into()));
    assert_eq!(sts.hits(), 2, "still within the interval");

    clock.advance(1);
    let err = verifier
        .verify_at(&ghost.sign(&obo_claims(NOW)), NOW)
        .await
        .unwrap_err();
    assert_eq!(err, VerifyError::UnknownKey("ghost".into()));
    assert_eq!(sts.hits(), 3, "after the interval one more refetch is allowed");
}

#[tokio::test]
async fn wrong_audience_is_refused() {
    let (_sts, _base, key, verifier) = setup().await;
    for aud in [json!("billing-api"), json!(["billing-api", "hr-api"]), json!([])] {
        let token = key.sign(&with(obo_claims(NOW), "aud", aud.clone()));
        assert_eq!(
            verifier.verify_at(&token, NOW).await.unwrap_err(),
            VerifyError::WrongAudience,
            "aud {aud}"
        );
    }
    let token = key.sign(&without(obo_claims(NOW), "aud"));
    assert_eq!(
        verifier.verify_at(&token, NOW).await.unwrap_err(),
        VerifyError::MissingClaim("aud".into())
    );
}

#[tokio::test]
async fn wrong_issuer_is_refused_by_exact_match() {
    let (_sts, _base, key, verifier) = setup().await;
    for iss in ["https://evil.test", "https://sts.test/", "HTTPS://STS.TEST"] {
        let token = key.sign(&with(obo_claims(NOW), "iss", json!(iss)));
        assert_eq!(
            verifier.verify_at(&token, NOW).await.unwrap_err(),
            VerifyError::WrongIssuer,
            "iss {iss}"
        );
    }
}

#[tokio::test]
async fn expiry_is_checked_with_leeway() {
    let (_sts, _base, key, verifier) = setup().await;
    let claims = obo_claims(NOW - 600);
    let token = key.sign(&with(claims.clone(), "exp", json!(NOW - 31)));
    assert_eq!(verifier.verify_at(&token, NOW).await.unwrap_err(), VerifyError::Expired);
    let token = key.sign(&with(claims.clone(), "exp", json!(NOW - 30)));
    assert_eq!(verifier.verify_at(&token, NOW).await.unwrap_err(), VerifyError::Expired);
    let token = key.sign(&with(claims.clone(), "exp", json!(NOW - 29)));
    assert!(verifier.verify_at(&token, NOW).await.is_ok());
    let token = key.sign(&without(claims, "exp"));
    assert_eq!(
        verifier.verify_at(&token, NOW).await.unwrap_err(),
        VerifyError::MissingClaim("exp".into())
    );
}

#[tokio::test]
async fn not_yet_valid_is_checked_with_leeway() {
    let (_sts, _base, key, verifier) = setup().await;
    let token = key.sign(&with(obo_claims(NOW), "nbf", json!(NOW + 31)));
    assert_eq!(
        verifier.verify_at(&token, NOW).await.unwrap_err(),
        VerifyError::NotYetValid
    );
    let token = key.sign(&with(obo_claims(NOW), "iat", json!(NOW + 120)));
    assert_eq!(
        verifier.verify_at(&token, NOW).await.unwrap_err(),
        VerifyError::NotYetValid
    );
    let token = key.sign(&with(obo_claims(NOW), "nbf", json!(NOW + 29)));
    assert!(verifier.verify_at(&token, NOW).await.is_ok());
}

#[tokio::test]
async fn algorithm_is_taken_from_the_key_and_none_or_hmac_are_refused() {
    let (sts, base) = start_sts().await;
    let ec = TestKey::ec("ec-1");
    let rsa = TestKey::rsa("rsa-1");
    sts.publish(&[&ec, &rsa]);
    let verifier = verifier(&base);
    let claims = obo_claims(NOW);

    // RS256 signature presented under the EC key's kid.
    let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": "ec-1"});
    let token = rsa.sign_with(&header, &claims);
    assert_eq!(
        verifier.verify_at(&token, NOW).await.unwrap_err(),
        VerifyError::AlgorithmMismatch
    );

    // ES256 claimed for the RSA key.
    let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": "rsa-1"});
    let token = ec.sign_with(&header, &claims);
    assert_eq!(
        verifier.verify_at(&token, NOW).await.unwrap_err(),
        VerifyError::AlgorithmMismatch
    );

    // alg none, unsigned.
    let header = json!({"alg": "none", "typ": "at+jwt", "kid": "ec-1"});
    let token = format!(
        "{}.{}.",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    assert_eq!(
        verifier.verify_at(&token, NOW).await.unwrap_err(),
        VerifyError::AlgorithmNotAllowed("none".into())
    );

    // HS256 keyed with the public key (the classic confusion attack).
    let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": "ec-1"});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let secret = ec.jwk()["x"].as_str().unwrap().to_owned();
    let mac_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = aws_lc_rs::hmac::sign(&mac_key, input.as_bytes());
    let token = format!("{input}.{}", b64(tag.as_ref()));
    assert_eq!(
        verifier.verify_at(&token, NOW).await.unwrap_err(),
        VerifyError::AlgorithmNotAllowed("HS256".into())
    );

    // Every asymmetric algorithm mcp-sts accepts is on the list; the key decides which
    // one it verifies, so a P-256 key never verifies under another algorithm.
    for alg in ["ES384", "PS256", "EdDSA"] {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": "ec-1"});
        let token = ec.sign_with(&header, &claims);
        assert_eq!(
            verifier.verify_at(&token, NOW).await.unwrap_err(),
            VerifyError::AlgorithmMismatch
        );
    }
}

#[tokio::test]
async fn crit_is_refused_and_embedded_key_headers_are_ignored() {
    let (_sts, _base, key, verifier) = setup().await;
    let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": key.kid, "crit": ["exp"], "exp": 1});
    let token = key.sign_with(&header, &obo_claims(NOW));
    assert_eq!(
        verifier.verify_at(&token, NOW).await.unwrap_err(),
        VerifyError::CriticalHeader
    );

    // An attacker's own key, offered through jwk/jku/x5u under the real kid.
    let attacker = TestKey::ec(&key.kid);
    let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": key.kid, "jwk": attacker.jwk(),
                        "jku": "http://127.0.0.1:1/jwks", "x5u": "http://127.0.0.1:1/cert"});
    let token = attacker.sign_with(&header, &obo_claims(NOW));
    assert_eq!(
        verifier.verify_at(&token, NOW).await.unwrap_err(),
        VerifyError::BadSignature
    );
}

#[tokio::test]
async fn tampered_tokens_fail_the_signature() {
    let (_sts, _base, key, verifier) = setup().await;
    let token = key.sign(&obo_claims(NOW));
    let parts: Vec<&str> = token.split('.').collect();

    let forged = with(obo_claims(NOW), "scope", json!("orders:read orders:write orders:admin"));
    let swapped = format!("{}.{}.{}", parts[0], b64(forged.to_string().as_bytes()), parts[2]);
    assert_eq!(
        verifier.verify_at(&swapped, NOW).await.unwrap_err(),
        VerifyError::BadSignature
    );

    let mut sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[2])
        .unwrap();
    sig[10] ^= 0x01;
    let flipped = format!("{}.{}.{}", parts[0], parts[1], b64(&sig));
    assert_eq!(
        verifier.verify_at(&flipped, NOW).await.unwrap_err(),
        VerifyError::BadSignature
    );
}

#[tokio::test]
async fn malformed_and_empty_tokens_are_refused() {
    let (_sts, _base, _key, verifier) = setup().await;
    assert_eq!(verifier.verify_at("", NOW).await.unwrap_err(), VerifyError::Missing);
    for bad in ["abc", "a.b", "a.b.c.d", "!!!.e30.sig", &"x".repeat(10_000)] {
        let err = verifier.verify_at(bad, NOW).await.unwrap_err();
        assert!(matches!(err, VerifyError::Malformed(_)), "{bad:.20}: {err:?}");
    }
}

#[tokio::test]
async fn required_claims_of_the_token_format_are_enforced() {
    let (_sts, _base, key, verifier) = setup().await;
    for claim in ["sub", "jti", "client_id", "delegation_mode", "sid", "txn", "iss"] {
        let token = key.sign(&without(obo_claims(NOW), claim));
        assert_eq!(
            verifier.verify_at(&token, NOW).await.unwrap_err(),
            VerifyError::MissingClaim(claim.into()),
            "{claim}"
        );
    }
    let token = key.sign(&with(obo_claims(NOW), "delegation_mode", json!("god_mode")));
    assert!(matches!(
        verifier.verify_at(&token, NOW).await.unwrap_err(),
        VerifyError::Malformed(_)
    ));
}

#[tokio::test]
async fn cached_keys_keep_working_while_the_jwks_endpoint_is_down() {
    let (sts, base) = start_sts().await;
    let key = TestKey::ec("ec-1");
    sts.publish(&[&key]);
    let clock = ManualClock::new(NOW);
    let mut config = config_on(&base, &clock);
    config.jwks_cache_ttl = Duration::from_secs(60);
    config.jwks_min_refresh_interval = Duration::from_secs(1);
    let verifier = Verifier::new(config).unwrap();
    verifier.verify_at(&key.sign(&obo_claims(NOW)), NOW).await.unwrap();

    sts.jwks_down.store(true, Ordering::SeqCst);
    verifier.verify_at(&key.sign(&obo_claims(NOW)), NOW).await.unwrap();
    let ghost = TestKey::ec("ghost");
    let err = verifier
        .verify_at(&ghost.sign(&obo_claims(NOW)), NOW)
        .await
        .unwrap_err();
    assert_eq!(err, VerifyError::UnknownKey("ghost".into()));
    verifier.verify_at(&key.sign(&obo_claims(NOW)), NOW).await.unwrap();

    // Past the cache lifetime the keys are no longer trusted: fail closed.
    clock.advance(59);
    verifier.verify_at(&key.sign(&obo_claims(NOW)), NOW).await.unwrap();
    clock.advance(1);
    let err = verifier.verify_at(&key.sign(&obo_claims(NOW)), NOW).await.unwrap_err();
    assert!(
        matches!(&err, VerifyError::JwksUnavailable(why) if why.contains("HTTP 503")),
        "{err:?}"
    );
    assert!(err.is_unavailable());

    // And once it is back, verification recovers.
    sts.jwks_down.store(false, Ordering::SeqCst);
    let err = verifier.verify_at(&key.sign(&obo_claims(NOW)), NOW).await.unwrap_err();
    assert!(err.is_unavailable(), "no retry within the interval: {err:?}");
    clock.advance(1);
    verifier.verify_at(&key.sign(&obo_claims(NOW)), NOW).await.unwrap();
}

#[tokio::test]
async fn jwks_unreachable_from_the_start_is_a_clear_unavailable_error() {
    let key = TestKey::ec("ec-1");
    let verifier = verifier(&dead_url().await);
    let err = verifier.verify_at(&key.sign(&obo_claims(NOW)), NOW).await.unwrap_err();
    assert!(
        matches!(&err, VerifyError::JwksUnavailable(why) if why.contains("unreachable")),
        "{err:?}"
    );
    assert!(err.is_unavailable());
    assert!(err.to_string().starts_with("signing keys unavailable"));

    let (sts, base) = start_sts().await;
    sts.publish(&[]);
    let verifier = self::verifier(&base);
    let err = verifier.verify_at(&key.sign(&obo_claims(NOW)), NOW).await.unwrap_err();
    assert!(
        matches!(&err, VerifyError::JwksUnavailable(why) if why.contains("no usable")),
        "{err:?}"
    );
}

fn introspecting(base: &str, introspection_base: &str) -> Verifier {
    let mut config = config(base);
    config.introspection = Some(IntrospectionConfig::new(
        format!("{introspection_base}/introspect"),
        "orders api",
        "s3cret:+",
    ));
    Verifier::new(config).unwrap()
}

#[tokio::test]
async fn introspection_active_passes_and_is_cached_inactive_is_revoked() {
    let (sts, base, key, _) = setup().await;
    let verifier = introspecting(&base, &base);
    let token = key.sign(&obo_claims(NOW));
    verifier.verify_at(&token, NOW).await.unwrap();
    verifier.verify_at(&token, NOW).await.unwrap();
    assert_eq!(sts.introspect_hits.load(Ordering::SeqCst), 1, "answer is cached");

    let (auth, body) = sts.introspect_requests.lock().unwrap()[0].clone();
    let expected = base64::engine::general_purpose::STANDARD.encode("orders+api:s3cret%3A%2B");
    assert_eq!(auth.as_deref(), Some(format!("Basic {expected}").as_str()));
    let form: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    assert!(form.contains(&("token".to_owned(), token.clone())));

    sts.active.store(false, Ordering::SeqCst);
    let other = key.sign(&with(obo_claims(NOW), "jti", json!("tok-2")));
    assert_eq!(verifier.verify_at(&other, NOW).await.unwrap_err(), VerifyError::Revoked);
}

#[tokio::test]
async fn introspection_answers_and_verify_follow_the_configured_clock() {
    let (sts, base, key, _) = setup().await;
    let clock = ManualClock::new(NOW);
    let mut config = config_on(&base, &clock);
    config.introspection = Some(IntrospectionConfig::new(
        format!("{base}/introspect"),
        "orders-api",
        "s",
    ));
    let verifier = Verifier::new(config).unwrap();
    let token = key.sign(&obo_claims(NOW));

    // `verify` judges the token by the configured clock, not the wall clock.
    verifier.verify(&token).await.unwrap();
    clock.advance(4);
    verifier.verify(&token).await.unwrap();
    assert_eq!(sts.introspect_hits.load(Ordering::SeqCst), 1, "answer reused for 5 s");
    clock.advance(1);
    sts.active.store(false, Ordering::SeqCst);
    assert_eq!(verifier.verify(&token).await.unwrap_err(), VerifyError::Revoked);
    assert_eq!(sts.introspect_hits.load(Ordering::SeqCst), 2, "asked again after 5 s");
    clock.advance(300 + 30);
    assert_eq!(verifier.verify(&token).await.unwrap_err(), VerifyError::Expired);
}

#[tokio::test]
async fn introspection_down_fails_closed() {
    let (_sts, base, key, _) = setup().await;
    let verifier = introspecting(&base, &dead_url().await);
    let err = verifier.verify_at(&key.sign(&obo_claims(NOW)), NOW).await.unwrap_err();
    assert!(matches!(err, VerifyError::IntrospectionUnavailable(_)), "{err:?}");
    assert!(err.is_unavailable());
}

// ---- axum extractor and layer over real HTTP ----

async fn downstream(verifier: Arc<Verifier>) -> String {
    let app = Router::new()
        .route(
            "/whoami",
            get(|Authenticated(id): Authenticated| async move {
                axum::Json(json!({"user": id.user(), "agent": id.agent(), "describe": id.describe()}))
            }),
        )
        .route(
            "/orders",
            post(|auth: Authenticated| async move {
                auth.require_scope("orders:admin")?;
                Ok::<_, AuthRejection>("created")
            }),
        )
        .with_state(Arc::clone(&verifier))
        .merge(
            Router::new()
                .route("/layered", get(|id: ExecutionIdentity| async move { id.describe() }))
                .layer(BearerAuthLayer::new(Arc::clone(&verifier)).require_scope("orders:read"))
                // The extractor needs the verifier in the state (the layer alone is not
                // enough), so a route without it is a compile error, not a 500.
                .with_state(verifier),
        );
    serve(app).await
}

fn live_claims() -> Value {
    obo_claims(SystemClock.now())
}

fn challenge(response: &reqwest::Response) -> String {
    response.headers()["www-authenticate"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn extractor_answers_per_rfc_6750() {
    let (_sts, _base, key, verifier) = setup().await;
    let url = downstream(Arc::new(verifier)).await;
    let http = reqwest::Client::new();

    let r = http.get(format!("{url}/whoami")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(challenge(&r), "Bearer");

    let r = http
        .get(format!("{url}/whoami"))
        .header("authorization", "Basic YTpi")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(challenge(&r), "Bearer");

    let r = http
        .get(format!("{url}/whoami"))
        .bearer_auth("not.a.jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        challenge(&r).starts_with("Bearer error=\"invalid_token\", error_description=\""),
        "{}",
        challenge(&r)
    );

    let expired = key.sign(&obo_claims(SystemClock.now() - 1000));
    let r = http
        .get(format!("{url}/whoami"))
        .bearer_auth(&expired)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        challenge(&r),
        "Bearer error=\"invalid_token\", error_description=\"token has expired\""
    );

    let r = http
        .get(format!("{url}/whoami"))
        .header("authorization", "Bearer ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(challenge(&r).starts_with("Bearer error=\"invalid_request\""));

    let token = key.sign(&live_claims());
    let r = http
        .get(format!("{url}/whoami"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"user": "alice@example.com", "agent": "claude-desktop",
               "describe": "alice@example.com via agent claude-desktop (orders-mcp)"})
    );

    let r = http
        .post(format!("{url}/orders"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        challenge(&r),
        "Bearer error=\"insufficient_scope\", scope=\"orders:admin\""
    );

    let admin = key.sign(&with(live_claims(), "scope", json!("orders:admin")));
    let r = http
        .post(format!("{url}/orders"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "created");
}

#[tokio::test]
async fn layer_verifies_and_requires_its_scope() {
    let (_sts, _base, key, verifier) = setup().await;
    let url = downstream(Arc::new(verifier)).await;
    let http = reqwest::Client::new();

    let r = http.get(format!("{url}/layered")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(challenge(&r), "Bearer");

    let wrong_aud = key.sign(&with(live_claims(), "aud", json!("billing-api")));
    let r = http
        .get(format!("{url}/layered"))
        .bearer_auth(&wrong_aud)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        challenge(&r),
        "Bearer error=\"invalid_token\", error_description=\"token audience is not this service\""
    );

    let write_only = key.sign(&with(live_claims(), "scope", json!("orders:write")));
    let r = http
        .get(format!("{url}/layered"))
        .bearer_auth(&write_only)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        challenge(&r),
        "Bearer error=\"insufficient_scope\", scope=\"orders:read\""
    );

    let r = http
        .get(format!("{url}/layered"))
        .bearer_auth(key.sign(&live_claims()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.text().await.unwrap(),
        "alice@example.com via agent claude-desktop (orders-mcp)"
    );
}

#[tokio::test]
async fn verifier_dependency_down_is_503() {
    let key = TestKey::ec("ec-1");
    let verifier = Arc::new(verifier(&dead_url().await));
    let url = downstream(verifier).await;
    let http = reqwest::Client::new();
    for path in ["/whoami", "/layered"] {
        let r = http
            .get(format!("{url}{path}"))
            .bearer_auth(key.sign(&live_claims()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503, "{path}");
        assert!(r.headers().get("www-authenticate").is_none());
    }
}
