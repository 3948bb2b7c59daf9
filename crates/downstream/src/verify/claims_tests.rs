use serde_json::{Value, json};

use super::Claims;
use crate::verify::VerifyError;
use mcp_sts_contract::jose::Refusal;

fn claims(value: Value) -> Claims {
    serde_json::from_value(value).unwrap()
}

#[test]
fn refusals_print_nothing_hostile() {
    let hostile = VerifyError::from(Refusal::Algorithm(Some("\"none\\\r\n".into())));
    assert_eq!(hostile, VerifyError::AlgorithmNotAllowed("none".into()));
    assert_eq!(
        VerifyError::from(Refusal::Algorithm(None)),
        VerifyError::AlgorithmNotAllowed("none".into())
    );
    assert_eq!(
        VerifyError::from(Refusal::UnknownKey(Some("k\r\n1".into()))),
        VerifyError::UnknownKey("k1".into())
    );
    assert!(matches!(
        VerifyError::from(Refusal::MissingKid),
        VerifyError::Malformed(_)
    ));
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

#[test]
fn the_identity_continues_the_tokens_trace() {
    let identity = |txn: &str| {
        claims(json!({
            "iss": "i", "sub": "u", "aud": "a", "exp": 1, "jti": "j", "client_id": "c", "sid": "s",
            "txn": txn, "delegation_mode": "on_behalf_of"
        }))
        .into_identity("a")
        .unwrap()
    };
    let traced = identity("4bf92f3577b34da6a3ce929d0e0e4736").traceparent().unwrap();
    assert!(traced.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{traced}");
    assert_eq!(identity("a-jti-not-a-trace").traceparent(), None);
}
