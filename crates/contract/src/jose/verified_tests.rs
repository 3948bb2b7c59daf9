use std::sync::Arc;

use jsonwebtoken::Algorithm;

use super::*;
use crate::jose::JwsError;
use crate::jose::key::tests::{es256, sign};
use crate::jose::key::verifying_key;

/// Recall, else check the signature and keep the verdict: what [`crate::jose::read`]
/// does around the memory.
trait Verify {
    fn verify(
        &self,
        token: &str,
        alg: Algorithm,
        keys: &[Arc<VerificationKey>],
        expires: UnixTime,
        now: UnixTime,
    ) -> Result<(), JwsError>;
}

impl Verify for VerifiedTokens {
    fn verify(
        &self,
        token: &str,
        alg: Algorithm,
        keys: &[Arc<VerificationKey>],
        expires: UnixTime,
        now: UnixTime,
    ) -> Result<(), JwsError> {
        if self.recall(token, alg, keys, now, 0).is_some() {
            return Ok(());
        }
        let key = verifying_key(token, alg, keys)?;
        if now < expires {
            let times = Times {
                exp: Some(expires),
                ..Times::default()
            };
            self.keep(token, key, alg, times, ());
        }
        Ok(())
    }
}

const HEADER: &str = r#"{"alg":"ES256","kid":"a"}"#;

#[test]
fn a_token_seen_again_is_not_checked_again() {
    let (pair, key) = es256("a");
    let token = sign(&pair, HEADER);
    let memory = VerifiedTokens::new(16);
    let keys = [key];
    assert_eq!(memory.verify(&token, Algorithm::ES256, &keys, 200, 100), Ok(()));
    assert_eq!(memory.verify(&token, Algorithm::ES256, &keys, 200, 101), Ok(()));
    let stats = memory.stats();
    assert_eq!((stats.misses, stats.hits, stats.entries), (1, 1, 1));
}

#[test]
fn a_key_no_longer_offered_vouches_for_nothing() {
    let (pair, key) = es256("a");
    let (_, other) = es256("a");
    let token = sign(&pair, HEADER);
    let memory = VerifiedTokens::new(16);
    assert_eq!(memory.verify(&token, Algorithm::ES256, &[key], 200, 100), Ok(()));
    // The issuer's JWKS now holds another key under the same kid.
    assert_eq!(
        memory.verify(&token, Algorithm::ES256, &[other], 200, 101),
        Err(JwsError::BadSignature)
    );
    assert_eq!(memory.stats().entries, 0);
}

#[test]
fn a_refreshed_key_set_checks_the_signature_once_more() {
    let (pair, key) = es256("a");
    let token = sign(&pair, HEADER);
    let memory = VerifiedTokens::new(16);
    assert_eq!(
        memory.verify(&token, Algorithm::ES256, &[Arc::clone(&key)], 200, 100),
        Ok(())
    );
    // A refetch parses the same key into a new object: one more check, then hits again.
    let refreshed = [Arc::new((*key).clone())];
    assert_eq!(memory.verify(&token, Algorithm::ES256, &refreshed, 200, 101), Ok(()));
    assert_eq!(memory.verify(&token, Algorithm::ES256, &refreshed, 200, 102), Ok(()));
    let stats = memory.stats();
    assert_eq!((stats.misses, stats.hits), (2, 1));
}

#[test]
fn other_bytes_algorithms_and_expired_verdicts_are_checked() {
    let (pair, key) = es256("a");
    let token = sign(&pair, HEADER);
    let memory = VerifiedTokens::new(16);
    let keys = [key];
    assert_eq!(memory.verify(&token, Algorithm::ES256, &keys, 200, 100), Ok(()));
    let tampered = format!("{token}A");
    assert_eq!(
        memory.verify(&tampered, Algorithm::ES256, &keys, 200, 100),
        Err(JwsError::BadSignature)
    );
    assert_eq!(
        memory.verify(&token, Algorithm::ES384, &keys, 200, 100),
        Err(JwsError::BadSignature)
    );
    // The algorithm mismatch dropped the verdict; the next use checks again.
    assert_eq!(memory.verify(&token, Algorithm::ES256, &keys, 200, 100), Ok(()));
    assert_eq!(memory.verify(&token, Algorithm::ES256, &keys, 200, 200), Ok(()));
    let stats = memory.stats();
    assert_eq!((stats.misses, stats.hits), (5, 0));
}

#[test]
fn expired_tokens_are_not_remembered() {
    let (pair, key) = es256("a");
    let token = sign(&pair, HEADER);
    let memory = VerifiedTokens::new(16);
    assert_eq!(memory.verify(&token, Algorithm::ES256, &[key], 100, 100), Ok(()));
    assert_eq!(memory.stats().entries, 0);
}

#[test]
fn the_memory_is_bounded() {
    let (pair, key) = es256("a");
    let memory = VerifiedTokens::new(8);
    let keys = [key];
    for n in 0..100 {
        let token = sign(&pair, &format!(r#"{{"alg":"ES256","kid":"a","n":{n}}}"#));
        assert_eq!(memory.verify(&token, Algorithm::ES256, &keys, 200, 100), Ok(()));
    }
    assert!(memory.stats().entries <= 8, "{:?}", memory.stats());
}

#[test]
fn a_disabled_memory_checks_every_time() {
    let (pair, key) = es256("a");
    let token = sign(&pair, HEADER);
    let memory = VerifiedTokens::disabled();
    let keys = [key];
    assert_eq!(memory.verify(&token, Algorithm::ES256, &keys, 200, 100), Ok(()));
    assert_eq!(
        memory.verify(&format!("{token}A"), Algorithm::ES256, &keys, 200, 100),
        Err(JwsError::BadSignature)
    );
    assert_eq!(memory.stats().entries, 0);
}

#[test]
fn times_are_kept_small_and_given_back() {
    let (pair, key) = es256("a");
    let token = sign(&pair, HEADER);
    let memory = VerifiedTokens::new(16);
    let times = Times {
        exp: Some(4_000_000_000),
        nbf: None,
        iat: Some(1_000),
    };
    memory.keep(&token, &key, Algorithm::ES256, times, 7);
    assert_eq!(
        memory.recall(&token, Algorithm::ES256, std::slice::from_ref(&key), 1_000, 0),
        Some((times, 7))
    );
    // Past exp plus leeway the verdict is gone.
    assert_eq!(
        memory.recall(&token, Algorithm::ES256, std::slice::from_ref(&key), 4_000_000_030, 30),
        None
    );
    // A time past 32 bits is not remembered: such a token is checked every time.
    for far in [
        Times {
            exp: Some(5_000_000_000),
            ..times
        },
        Times {
            iat: Some(5_000_000_000),
            ..times
        },
    ] {
        memory.keep(&token, &key, Algorithm::ES256, far, 7);
        assert_eq!(memory.stats().entries, 0);
    }
}

#[test]
fn a_verdict_is_no_larger_than_a_key_handle_an_algorithm_and_one_time() {
    assert!(
        std::mem::size_of::<Verdict<()>>() <= 24,
        "{}",
        std::mem::size_of::<Verdict<()>>()
    );
}
