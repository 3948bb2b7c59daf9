use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use super::{Claims, check_header, check_times};
use crate::verify::VerifyError;

fn token(header: Value) -> String {
    format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(header.to_string()))
}

fn claims(value: Value) -> Claims {
    serde_json::from_value(value).unwrap()
}

#[test]
fn header_checks_need_no_key() {
    let ok = check_header(&token(json!({"alg": "RS256", "typ": "at+jwt", "kid": "k"}))).unwrap();
    assert_eq!((ok.alg, ok.kid.as_str()), (Algorithm::RS256, "k"));
    let no_kid = check_header(&token(json!({"alg": "ES256", "typ": "at+jwt"})));
    assert!(matches!(no_kid, Err(VerifyError::Malformed(_))));
    let hostile = check_header(&token(json!({"alg": "\"none\\\r\n", "typ": "at+jwt", "kid": "k"})));
    assert_eq!(hostile.unwrap_err(), VerifyError::AlgorithmNotAllowed("none".into()));
}

#[test]
fn times_use_the_given_now_and_leeway() {
    let c = claims(json!({"exp": 100, "nbf": 50, "iat": 50}));
    assert_eq!(check_times(&c, 20, 30), Ok(()));
    assert_eq!(check_times(&c, 19, 30), Err(VerifyError::NotYetValid));
    assert_eq!(check_times(&c, 129, 30), Ok(()));
    assert_eq!(check_times(&c, 130, 30), Err(VerifyError::Expired));
    let no_exp = claims(json!({}));
    assert_eq!(
        check_times(&no_exp, 0, 30),
        Err(VerifyError::MissingClaim("exp".into()))
    );
    let far = claims(json!({"exp": u64::MAX}));
    assert_eq!(check_times(&far, u64::MAX - 1, 30), Ok(()));
}

#[test]
fn deep_actor_chains_are_refused() {
    let mut act = json!({"sub": "hop-0"});
    for i in 1..40 {
        act = json!({"sub": format!("hop-{i}"), "act": act});
    }
    let c = claims(json!({
        "iss": "i", "sub": "u", "aud": "a", "exp": 1, "jti": "j", "client_id": "c", "sid": "s",
        "txn": "t", "delegation_mode": "on_behalf_of", "act": act
    }));
    assert!(matches!(c.into_identity("a"), Err(VerifyError::Malformed(_))));
}
