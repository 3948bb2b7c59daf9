//! Verification keys and the one signature check every door uses.

use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey};

/// A public key parsed once, with the algorithms it may verify.
///
/// Key sources hand these out: a [`super::JwksCache`] (an issuer's or a client's keys)
/// or the server's own key ring, which builds one per signing key.
#[derive(Clone)]
pub struct VerificationKey {
    /// The key's `kid`, if it has one.
    pub kid: Option<String>,
    /// The algorithms this key may verify: fixed by its type, narrowed by its JWK `alg`
    /// and by the allowlist of the source it came from. Never empty.
    pub algorithms: Vec<Algorithm>,
    /// The parsed key.
    pub key: DecodingKey,
}

impl std::fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

/// Why a signature could not be verified. Each door maps these to its own answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    /// The keys could not be fetched and none usable are cached: fail closed.
    #[error("keys unavailable: {0}")]
    KeysUnavailable(String),
    /// No key has the token's `kid` (or, without a `kid`, none fits its `alg`), even
    /// after any refetch the rate limit allowed.
    #[error("no key matches the token's kid")]
    UnknownKey,
    /// A key has the token's `kid` but may not verify the token's `alg`.
    #[error("the token's algorithm does not fit its key")]
    AlgorithmMismatch,
    /// No candidate key verifies the signature.
    #[error("signature does not verify")]
    BadSignature,
}

/// The keys among `keys` that may verify a signature by `alg` under `kid`.
///
/// With a `kid`, only keys carrying exactly that `kid` are candidates; without one,
/// every key is. Candidates that exist but do not fit `alg` are an
/// [`JwsError::AlgorithmMismatch`] when a `kid` named them, else [`JwsError::UnknownKey`].
pub fn select<'k>(
    keys: impl IntoIterator<Item = &'k Arc<VerificationKey>>,
    kid: Option<&str>,
    alg: Algorithm,
) -> Result<Vec<Arc<VerificationKey>>, JwsError> {
    let mut named = false;
    let mut fitting = Vec::new();
    for key in keys {
        if kid.is_some_and(|kid| key.kid.as_deref() != Some(kid)) {
            continue;
        }
        named = true;
        if key.algorithms.contains(&alg) {
            fitting.push(Arc::clone(key));
        }
    }
    match (fitting.is_empty(), named && kid.is_some()) {
        (false, _) => Ok(fitting),
        (true, true) => Err(JwsError::AlgorithmMismatch),
        (true, false) => Err(JwsError::UnknownKey),
    }
}

/// The one signature check: `token` (a compact JWS whose header said `alg`) verifies
/// with one of `keys` that may use `alg`.
///
/// The algorithm is the caller's, already checked against its allowlist; a key that may
/// not use it is never tried, so an RSA public key can never act as an HMAC secret.
pub fn verify_signature(token: &str, alg: Algorithm, keys: &[Arc<VerificationKey>]) -> Result<(), JwsError> {
    verifying_key(token, alg, keys).map(drop)
}

/// [`verify_signature`], naming the key that verified.
pub(crate) fn verifying_key<'k>(
    token: &str,
    alg: Algorithm,
    keys: &'k [Arc<VerificationKey>],
) -> Result<&'k Arc<VerificationKey>, JwsError> {
    let (message, signature) = token.rsplit_once('.').ok_or(JwsError::BadSignature)?;
    keys.iter()
        .filter(|k| k.algorithms.contains(&alg))
        .find(|k| jsonwebtoken::crypto::verify(signature, message.as_bytes(), &k.key, alg).unwrap_or(false))
        .ok_or(JwsError::BadSignature)
}

#[cfg(test)]
pub(super) mod tests {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    pub(crate) fn es256(kid: &str) -> (EcdsaKeyPair, Arc<VerificationKey>) {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let point = pair.public_key().as_ref();
        let key = DecodingKey::from_ec_components(
            &URL_SAFE_NO_PAD.encode(&point[1..33]),
            &URL_SAFE_NO_PAD.encode(&point[33..65]),
        )
        .unwrap();
        let key = VerificationKey {
            kid: Some(kid.into()),
            algorithms: vec![Algorithm::ES256],
            key,
        };
        (pair, Arc::new(key))
    }

    pub(crate) fn sign(pair: &EcdsaKeyPair, header: &str) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(r#"{"sub":"a"}"#)
        );
        let signature = pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }

    #[test]
    fn select_by_kid_then_algorithm() {
        let (_, a) = es256("a");
        let (_, b) = es256("b");
        let keys = [a, b];
        assert_eq!(select(&keys, Some("a"), Algorithm::ES256).unwrap().len(), 1);
        assert_eq!(select(&keys, None, Algorithm::ES256).unwrap().len(), 2);
        assert_eq!(
            select(&keys, Some("c"), Algorithm::ES256).unwrap_err(),
            JwsError::UnknownKey
        );
        assert_eq!(
            select(&keys, Some("a"), Algorithm::RS256).unwrap_err(),
            JwsError::AlgorithmMismatch
        );
        assert_eq!(select(&keys, None, Algorithm::RS256).unwrap_err(), JwsError::UnknownKey);
    }

    #[test]
    fn a_signature_verifies_with_its_key_only() {
        let (pair, key) = es256("a");
        let (_, other) = es256("b");
        let token = sign(&pair, r#"{"alg":"ES256","kid":"a"}"#);
        assert_eq!(verify_signature(&token, Algorithm::ES256, &[Arc::clone(&key)]), Ok(()));
        assert_eq!(
            verify_signature(&token, Algorithm::ES256, &[Arc::clone(&other), Arc::clone(&key)]),
            Ok(())
        );
        assert_eq!(
            verify_signature(&token, Algorithm::ES256, &[other]),
            Err(JwsError::BadSignature)
        );
        // A key never verifies under an algorithm it may not use.
        assert_eq!(
            verify_signature(&token, Algorithm::ES384, &[Arc::clone(&key)]),
            Err(JwsError::BadSignature)
        );
        let mut tampered = token.clone();
        tampered.push('A');
        assert_eq!(
            verify_signature(&tampered, Algorithm::ES256, &[Arc::clone(&key)]),
            Err(JwsError::BadSignature)
        );
        let unsigned = token.rsplit_once('.').unwrap().0.to_owned() + ".";
        assert_eq!(
            verify_signature(&unsigned, Algorithm::ES256, &[key]),
            Err(JwsError::BadSignature)
        );
    }
}
