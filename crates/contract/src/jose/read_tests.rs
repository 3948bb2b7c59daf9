use std::sync::Mutex;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::Jwk;
use serde_json::json;

use super::*;
use crate::jose::algorithm::algorithms_for_key;
use crate::jose::profile::Types;

const NOW: UnixTime = 1_000;

/// A P-256 key pair with its public JWK.
pub(crate) struct TestKey {
    pair: EcdsaKeyPair,
    pub(crate) jwk: Value,
}

impl TestKey {
    pub(crate) fn new(kid: &str) -> Self {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let point = pair.public_key().as_ref();
        let jwk = json!({"kty": "EC", "crv": "P-256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])});
        Self { pair, jwk }
    }

    pub(crate) fn verification(&self) -> Arc<VerificationKey> {
        let jwk: Jwk = serde_json::from_value(self.jwk.clone()).unwrap();
        Arc::new(VerificationKey {
            kid: jwk.common.key_id.clone(),
            algorithms: algorithms_for_key(&jwk),
            key: DecodingKey::from_jwk(&jwk).unwrap(),
        })
    }

    pub(crate) fn sign(&self, header: Value, claims: Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }
}

/// Keys a test hands out; replaced to model a refetch or a removed key.
pub(crate) struct Offered(pub(crate) Mutex<Vec<Arc<VerificationKey>>>);

impl KeySource for Offered {
    type Signer = ();

    async fn keys(&self, jws: &Unverified<'_>, _now: UnixTime) -> Result<((), Vec<Arc<VerificationKey>>), Refusal> {
        let keys = self.0.lock().unwrap().clone();
        let chosen = crate::jose::select(&keys, jws.kid(), jws.alg()).map_err(|e| Refusal::keys(e, jws.kid()))?;
        Ok(((), chosen))
    }
}

fn profile() -> Profile<'static> {
    Profile::new(Types::Exactly(&["at+jwt"]), 4096, NOW, 30).kid_required()
}

fn header() -> Value {
    json!({"alg": "ES256", "typ": "at+jwt", "kid": "k"})
}

fn claims() -> Value {
    json!({"iss": "https://issuer", "sub": "alice", "exp": NOW + 60, "iat": NOW})
}

async fn refusal(token: &str, profile: &Profile<'_>, source: &Offered) -> Refusal {
    read(token, profile, source, NO_MEMORY).await.unwrap_err()
}

#[tokio::test]
async fn a_good_token_reads_with_its_claims_and_times() {
    let key = TestKey::new("k");
    let source = Offered(Mutex::new(vec![key.verification()]));
    let token = key.sign(header(), claims());
    let jws = read(&token, &profile(), &source, NO_MEMORY).await.unwrap();
    assert_eq!(jws.typ(), Some("at+jwt"));
    let media = key.sign(
        json!({"alg": "ES256", "typ": "application/AT+JWT", "kid": "k"}),
        claims(),
    );
    let jws = read(&media, &profile(), &source, NO_MEMORY).await.unwrap();
    assert_eq!(jws.typ(), Some("AT+JWT"));
    assert_eq!(jws.kid(), Some("k"));
    assert_eq!(jws.times.exp, Some(NOW + 60));
    assert_eq!(jws.claims().unwrap()["sub"], "alice");
}

#[tokio::test]
async fn each_rule_refuses_in_order() {
    let key = TestKey::new("k");
    let source = Offered(Mutex::new(vec![key.verification()]));
    let p = profile();
    let with = |name: &str, value: Value| {
        let mut h = header();
        h[name] = value;
        key.sign(h, claims())
    };
    assert_eq!(refusal(&"a".repeat(5000), &p, &source).await, Refusal::TooLarge);
    assert_eq!(refusal("a.b.c.d.e", &p, &source).await, Refusal::Encrypted);
    assert_eq!(refusal("a.b", &p, &source).await, Refusal::Malformed);
    assert_eq!(
        refusal(&with("crit", json!(["exp"])), &p, &source).await,
        Refusal::CriticalHeader
    );
    assert_eq!(
        refusal(&with("crit", json!(null)), &p, &source).await,
        Refusal::CriticalHeader
    );
    // A member given twice is not resolved by guessing which one counts.
    let twice = format!(
        "{}.{}.c2ln",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","alg":"ES256","typ":"at+jwt","kid":"k"}"#),
        URL_SAFE_NO_PAD.encode(claims().to_string())
    );
    assert_eq!(refusal(&twice, &p, &source).await, Refusal::Malformed);
    let array = format!(
        "{}.{}.c2ln",
        URL_SAFE_NO_PAD.encode(r#"["ES256","at+jwt","k"]"#),
        URL_SAFE_NO_PAD.encode(claims().to_string())
    );
    assert_eq!(refusal(&array, &p, &source).await, Refusal::Malformed);
    assert_eq!(
        refusal(&with("alg", json!("none")), &p, &source).await,
        Refusal::Algorithm(Some("none".into()))
    );
    assert_eq!(
        refusal(&with("alg", json!("HS256")), &p, &source).await,
        Refusal::Algorithm(Some("HS256".into()))
    );
    assert_eq!(
        refusal(&with("alg", json!(7)), &p, &source).await,
        Refusal::Algorithm(None)
    );
    assert_eq!(refusal(&with("typ", json!("JWT")), &p, &source).await, Refusal::Type);
    assert_eq!(refusal(&with("typ", json!(1)), &p, &source).await, Refusal::Malformed);
    assert_eq!(refusal(&with("kid", json!("")), &p, &source).await, Refusal::MissingKid);
    assert_eq!(
        refusal(&with("kid", json!("other")), &p, &source).await,
        Refusal::UnknownKey(Some("other".into()))
    );
    let unsigned = key.sign(header(), claims()).rsplit_once('.').unwrap().0.to_owned() + ".";
    assert_eq!(refusal(&unsigned, &p, &source).await, Refusal::Malformed);
    let forged = TestKey::new("k").sign(header(), claims());
    assert_eq!(refusal(&forged, &p, &source).await, Refusal::BadSignature);
    let mut expired = claims();
    expired["exp"] = json!(NOW - 30);
    assert_eq!(
        refusal(&key.sign(header(), expired), &p, &source).await,
        Refusal::Expired
    );
    // Media-type form and case do not matter; `jku`/`x5u`/`jwk` are ignored.
    let token = key.sign(
        json!({"alg": "ES256", "typ": "Application/AT+JWT", "kid": "k", "jku": "https://evil/jwks",
               "jwk": TestKey::new("k").jwk}),
        claims(),
    );
    assert!(read(&token, &p, &source, NO_MEMORY).await.is_ok());
}

#[tokio::test]
async fn a_remembered_token_skips_the_signature_but_not_the_time_rule() {
    let key = TestKey::new("k");
    let source = Offered(Mutex::new(vec![key.verification()]));
    let memory: VerifiedTokens<&str> = VerifiedTokens::new(16);
    let token = key.sign(header(), claims());
    let first = read(&token, &profile(), &source, Some(&memory)).await.unwrap();
    assert!(first.recalled().is_none());
    first.remember("checked");
    let again = read(&token, &profile(), &source, Some(&memory)).await.unwrap();
    assert_eq!(again.recalled(), Some(&"checked"));
    assert_eq!(again.times.exp, Some(NOW + 60));
    // Past exp (plus leeway) the remembered times refuse it.
    let mut later = profile();
    later.times.now = NOW + 90;
    assert_eq!(
        read(&token, &later, &source, Some(&memory)).await.unwrap_err(),
        Refusal::Expired
    );
    // A key no longer offered vouches for nothing.
    *source.0.lock().unwrap() = vec![TestKey::new("k").verification()];
    assert_eq!(
        read(&token, &profile(), &source, Some(&memory)).await.unwrap_err(),
        Refusal::BadSignature
    );
}

/// A proof of possession names its own key in the header (RFC 9449): a key source the
/// door chose on purpose, with a profile of its own. Nothing else reads `jwk`.
struct HeaderJwk;

impl KeySource for HeaderJwk {
    type Signer = Value;

    async fn keys(&self, jws: &Unverified<'_>, _now: UnixTime) -> Result<(Value, Vec<Arc<VerificationKey>>), Refusal> {
        let value = jws.header()?.get("jwk").cloned().ok_or(Refusal::UnknownKey(None))?;
        let jwk: Jwk = serde_json::from_value(value.clone()).map_err(|_| Refusal::Malformed)?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| Refusal::Malformed)?;
        let algorithms = algorithms_for_key(&jwk);
        Ok((
            value,
            vec![Arc::new(VerificationKey {
                kid: None,
                algorithms,
                key,
            })],
        ))
    }
}

#[tokio::test]
async fn a_proof_with_its_own_key_fits_the_same_pipeline() {
    let key = TestKey::new("k");
    let proof_profile = Profile::new(Types::Exactly(&["dpop+jwt"]), 4096, NOW, 60)
        .exp_optional()
        .iat_required()
        .max_age(60);
    let header = json!({"alg": "ES256", "typ": "dpop+jwt", "jwk": key.jwk});
    let proof = key.sign(header.clone(), json!({"htm": "POST", "jti": "p1", "iat": NOW - 10}));
    let jws = read(&proof, &proof_profile, &HeaderJwk, NO_MEMORY).await.unwrap();
    assert_eq!(jws.signer, key.jwk);
    let stale = key.sign(header.clone(), json!({"htm": "POST", "jti": "p2", "iat": NOW - 61}));
    assert_eq!(
        read(&stale, &proof_profile, &HeaderJwk, NO_MEMORY).await.unwrap_err(),
        Refusal::TooOld
    );
    let undated = key.sign(header, json!({"htm": "POST", "jti": "p3"}));
    assert_eq!(
        read(&undated, &proof_profile, &HeaderJwk, NO_MEMORY).await.unwrap_err(),
        Refusal::MissingClaim("iat")
    );
}
