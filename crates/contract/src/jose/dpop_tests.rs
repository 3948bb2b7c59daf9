use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::json;

use super::*;

const NOW: UnixTime = 1_900_000_000;

fn pair() -> (EcdsaKeyPair, Value) {
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let point = pair.public_key().as_ref();
    let jwk = json!({
        "kty": "EC", "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    });
    (pair, jwk)
}

fn sign(pair: &EcdsaKeyPair, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
}

fn claims() -> Value {
    json!({"jti": "p-1", "htm": "POST", "htu": "https://sts.example.com/token", "iat": NOW})
}

fn header(jwk: &Value) -> Value {
    json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk})
}

#[tokio::test]
async fn a_proof_is_read_with_its_own_key() {
    let (key, jwk) = pair();
    let proof = read_proof(&sign(&key, &header(&jwk), &claims()), NOW).await.unwrap();
    let expected: Jwk = serde_json::from_value(jwk).unwrap();
    assert_eq!(proof.jkt, expected.thumbprint(ThumbprintHash::SHA256).unwrap());
    assert_eq!((proof.jti.as_str(), proof.iat), ("p-1", NOW));
    assert_eq!(
        proof.check_request("POST", "https://STS.example.com:443/./token?x#y"),
        Ok(())
    );
    assert_eq!(
        proof.check_request("GET", "https://sts.example.com/token"),
        Err(ProofError::Method)
    );
    assert_eq!(
        proof.check_request("POST", "https://sts.example.com/other"),
        Err(ProofError::Target)
    );
    assert_eq!(proof.marker(), format!("dpop:{}:p-1", proof.jkt));
    assert_eq!(proof.remember_until(), NOW + IAT_WINDOW + 1);
}

#[tokio::test]
async fn the_embedded_key_must_be_public_asymmetric_and_the_signer() {
    let (key, jwk) = pair();
    let (_, other) = pair();
    let refused = |token: String| async move { read_proof(&token, NOW).await.unwrap_err() };
    // Signed by another key than the one it carries.
    assert_eq!(
        refused(sign(&key, &header(&other), &claims())).await,
        ProofError::Jws(Refusal::BadSignature)
    );
    // Private key material in the header.
    let mut private = jwk.clone();
    private["d"] = json!("AAAA");
    assert!(matches!(
        refused(sign(&key, &header(&private), &claims())).await,
        ProofError::Jws(Refusal::EmbeddedKey(_))
    ));
    // No key at all, or a symmetric one.
    let no_jwk = json!({"typ": "dpop+jwt", "alg": "ES256"});
    assert!(matches!(
        refused(sign(&key, &no_jwk, &claims())).await,
        ProofError::Jws(Refusal::EmbeddedKey(_))
    ));
    let oct = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": {"kty": "oct", "k": "c2VjcmV0"}});
    assert!(matches!(
        refused(sign(&key, &oct, &claims())).await,
        ProofError::Jws(Refusal::EmbeddedKey(_))
    ));
    // HMAC and none never reach a key.
    for alg in ["HS256", "none"] {
        let header = json!({"typ": "dpop+jwt", "alg": alg, "jwk": jwk});
        assert!(matches!(
            refused(sign(&key, &header, &claims())).await,
            ProofError::Jws(Refusal::Algorithm(_))
        ));
    }
    // An algorithm the key cannot use.
    let header384 = json!({"typ": "dpop+jwt", "alg": "ES384", "jwk": jwk});
    assert_eq!(
        refused(sign(&key, &header384, &claims())).await,
        ProofError::Jws(Refusal::AlgorithmMismatch)
    );
    // Another typ.
    let jwt = json!({"typ": "JWT", "alg": "ES256", "jwk": jwk});
    assert_eq!(
        refused(sign(&key, &jwt, &claims())).await,
        ProofError::Jws(Refusal::Type)
    );
}

#[tokio::test]
async fn iat_must_be_within_the_window_and_claims_present() {
    let (key, jwk) = pair();
    let at = |iat: UnixTime| {
        let mut c = claims();
        c["iat"] = json!(iat);
        sign(&key, &header(&jwk), &c)
    };
    assert!(read_proof(&at(NOW - IAT_WINDOW), NOW).await.is_ok());
    assert!(read_proof(&at(NOW + IAT_WINDOW), NOW).await.is_ok());
    assert_eq!(
        read_proof(&at(NOW - IAT_WINDOW - 1), NOW).await,
        Err(ProofError::Jws(Refusal::TooOld))
    );
    assert_eq!(
        read_proof(&at(NOW + IAT_WINDOW + 1), NOW).await,
        Err(ProofError::Jws(Refusal::IssuedInFuture))
    );
    for name in ["jti", "htm", "htu", "iat"] {
        let mut c = claims();
        c.as_object_mut().unwrap().remove(name);
        let result = read_proof(&sign(&key, &header(&jwk), &c), NOW).await;
        assert!(
            matches!(
                result,
                Err(ProofError::Claim(_) | ProofError::Jws(Refusal::MissingClaim("iat")))
            ),
            "{name}: {result:?}"
        );
    }
}

#[tokio::test]
async fn ath_binds_the_proof_to_one_token() {
    let (key, jwk) = pair();
    let mut c = claims();
    c["ath"] = json!(token_hash("token-a"));
    let proof = read_proof(&sign(&key, &header(&jwk), &c), NOW).await.unwrap();
    assert_eq!(proof.check_token("token-a"), Ok(()));
    assert_eq!(proof.check_token("token-b"), Err(ProofError::TokenHash));
    assert_eq!(proof.check_key("another"), Err(ProofError::KeyMismatch));
    assert_eq!(proof.check_key(&proof.jkt.clone()), Ok(()));
}

#[test]
fn urls_are_compared_after_normalisation() {
    let same = [
        ("https://sts.example.com/token", "HTTPS://STS.EXAMPLE.COM:443/token"),
        ("http://127.0.0.1:8080/a/b", "http://127.0.0.1:8080/a/./c/../b"),
        ("https://x.example/%7euser/%2f", "https://x.example/~user/%2F"),
        ("https://x.example", "https://x.example/"),
        ("https://x.example/t", "https://x.example/t?q=1#f"),
    ];
    for (a, b) in same {
        assert_eq!(normalise_url(a), normalise_url(b), "{a} {b}");
        assert!(normalise_url(a).is_some());
    }
    for (a, b) in [
        ("https://x.example/t", "http://x.example/t"),
        ("https://x.example/t", "https://x.example:8443/t"),
        ("https://x.example/t", "https://x.example/T"),
    ] {
        assert_ne!(normalise_url(a), normalise_url(b), "{a} {b}");
    }
    assert_eq!(normalise_url("urn:x:y"), None);
    assert_eq!(normalise_url("/token"), None);
}
