//! Server nonces (RFC 9449 §8) that any replica can check without sharing state: a
//! nonce is the time window it was issued in and a MAC of it under a key derived from
//! the signing key (every replica loads the same key files). A nonce is accepted in its
//! window and the next one, so one issued just before a window ends still works; after
//! that, or when the keys rotate past it, the client is sent a fresh one.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

use crate::clock::UnixTime;
use crate::keys::{KeyRing, SigningKey};

/// Length of a nonce window, in seconds.
pub const WINDOW_SECONDS: u64 = 60;

/// Bytes of MAC kept in a nonce.
const TAG_BYTES: usize = 16;

/// A fresh nonce at `now`, under the current signing key.
pub fn issue(keys: &KeyRing, now: UnixTime) -> String {
    let window = now / WINDOW_SECONDS;
    let mut bytes = window.to_be_bytes().to_vec();
    bytes.extend_from_slice(&tag(keys.signing_key(now), window));
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `nonce` was issued by a replica sharing these keys, in this window or the
/// one before.
pub fn is_current(keys: &KeyRing, nonce: &str, now: UnixTime) -> bool {
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(nonce) else {
        return false;
    };
    let (Some(window), Some(presented)) = (bytes.get(..8), bytes.get(8..)) else {
        return false;
    };
    let Ok(window) = <[u8; 8]>::try_from(window).map(u64::from_be_bytes) else {
        return false;
    };
    let current = now / WINDOW_SECONDS;
    if window != current && window.saturating_add(1) != current {
        return false;
    }
    keys.published(now)
        .any(|key| bool::from(tag(key, window).as_slice().ct_eq(presented)))
}

/// The MAC of `window` under `key`, cut to [`TAG_BYTES`].
fn tag(key: &SigningKey, window: u64) -> [u8; TAG_BYTES] {
    let mut out = [0u8; TAG_BYTES];
    let full = key.nonce_tag(&window.to_be_bytes());
    for (slot, byte) in out.iter_mut().zip(full.as_ref()) {
        *slot = *byte;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SigningAlgorithm;

    fn ring() -> KeyRing {
        let (key, _) = SigningKey::generate(SigningAlgorithm::ES256, 0).unwrap();
        KeyRing::new(vec![key], SigningAlgorithm::ES256, 3600).unwrap()
    }

    #[test]
    fn a_nonce_holds_for_its_window_and_the_next_only() {
        let keys = ring();
        let now = 1_900_000_020;
        let nonce = issue(&keys, now);
        assert!(is_current(&keys, &nonce, now));
        assert!(is_current(&keys, &nonce, now + WINDOW_SECONDS));
        assert!(!is_current(&keys, &nonce, now + 2 * WINDOW_SECONDS));
        assert!(!is_current(&keys, &nonce, now - WINDOW_SECONDS));
        // Another key set (another deployment), garbage, a tampered tag.
        assert!(!is_current(&ring(), &nonce, now));
        assert!(!is_current(&keys, "not-a-nonce", now));
        let mut bytes = URL_SAFE_NO_PAD.decode(&nonce).unwrap();
        if let Some(last) = bytes.last_mut() {
            *last ^= 1;
        }
        assert!(!is_current(&keys, &URL_SAFE_NO_PAD.encode(bytes), now));
    }

    #[test]
    fn replicas_loading_the_same_key_agree() {
        let (key, der) = SigningKey::generate(SigningAlgorithm::ES256, 0).unwrap();
        let twin = SigningKey::from_pkcs8(&der, 0).unwrap();
        let a = KeyRing::new(vec![key], SigningAlgorithm::ES256, 3600).unwrap();
        let b = KeyRing::new(vec![twin], SigningAlgorithm::ES256, 3600).unwrap();
        let now = 1_900_000_000;
        assert!(is_current(&b, &issue(&a, now), now));
    }
}
