//! Server nonces at `/token` (RFC 9449 §8) that any replica can check: the stateless
//! nonces of [`mcp_sts_contract::jose::nonce`] under a key derived from the signing key, which
//! every replica loads from the same key directory. Issued under the current signing
//! key; accepted under any published one, so a rotation does not void them.

use crate::keys::KeyRing;
use mcp_sts_contract::clock::UnixTime;
use mcp_sts_contract::jose::nonce;

/// A fresh nonce at `now`.
pub(crate) fn issue(keys: &KeyRing, now: UnixTime) -> String {
    nonce::issue(keys.signing_key(now).nonce_key(), now)
}

/// Whether `presented` was issued by a replica sharing these keys, in this window or
/// the one before.
pub(crate) fn is_current(keys: &KeyRing, presented: &str, now: UnixTime) -> bool {
    nonce::is_current(keys.published(now).map(|key| key.nonce_key()), presented, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SigningAlgorithm;
    use crate::keys::SigningKey;

    #[test]
    fn replicas_loading_the_same_key_agree_and_others_do_not() {
        let (key, der) = SigningKey::generate(SigningAlgorithm::ES256, 0).unwrap();
        let twin = SigningKey::from_pkcs8(&der, 0).unwrap();
        let (stranger, _) = SigningKey::generate(SigningAlgorithm::ES256, 0).unwrap();
        let ring = |key| KeyRing::new(vec![key], SigningAlgorithm::ES256, 3600).unwrap();
        let (a, b, c) = (ring(key), ring(twin), ring(stranger));
        let now = 1_900_000_000;
        let nonce = issue(&a, now);
        assert!(is_current(&b, &nonce, now));
        assert!(!is_current(&c, &nonce, now));
    }
}
