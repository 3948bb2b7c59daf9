use serde_json::{Value, json};

use super::Claims;
use crate::jose::Refusal;
use crate::verify::VerifyError;

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
