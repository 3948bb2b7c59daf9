use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::json;

use super::parse_jwks;

fn ec_jwk(kid: &str) -> serde_json::Value {
    let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let point = key.public_key().as_ref();
    json!({"kty": "EC", "crv": "P-256", "kid": kid,
           "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])})
}

#[test]
fn keeps_signing_keys_and_infers_their_algorithm() {
    let doc = json!({"keys": [ec_jwk("a")]});
    let keys = parse_jwks(doc.to_string().as_bytes()).unwrap();
    assert_eq!(keys.get("a").map(|k| k.alg), Some(Algorithm::ES256));
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
    let doc = json!({"keys": [
        enc, es384, no_kid, small_rsa,
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        {"kty": "weird", "kid": "weird"},
        ec_jwk("good"),
    ]});
    let keys = parse_jwks(doc.to_string().as_bytes()).unwrap();
    let kids: Vec<&str> = keys.keys().map(String::as_str).collect();
    assert_eq!(kids, ["good"]);
}

#[test]
fn refuses_documents_that_are_not_jwk_sets() {
    assert!(parse_jwks(b"{}").is_err());
    assert!(parse_jwks(b"not json").is_err());
}
