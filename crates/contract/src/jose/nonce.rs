//! Server nonces (RFC 9449 §8, §9) that need no shared state: a nonce is the time
//! window it was issued in and a MAC of that window. Whoever holds the MAC key checks
//! it (every mcp-sts replica derives the key from the signing key it loads; a resource
//! shares a configured secret among its replicas). A nonce is accepted in its window
//! and the next, so one issued just before a window ends still works; after that the
//! client is sent a fresh one.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::clock::UnixTime;

/// Length of a nonce window, in seconds.
pub const WINDOW_SECONDS: u64 = 60;

/// A MAC key for nonces, from secret bytes.
pub fn key(secret: &[u8]) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, secret)
}

/// A fresh nonce at `now` under `key`.
pub fn issue(key: &hmac::Key, now: UnixTime) -> String {
    let window = (now / WINDOW_SECONDS).to_be_bytes();
    let mut bytes = window.to_vec();
    bytes.extend_from_slice(hmac::sign(key, &window).as_ref());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `nonce` was issued under one of `keys`, in this window or the one before
/// (the MAC is checked in constant time).
pub fn is_current<'k>(keys: impl IntoIterator<Item = &'k hmac::Key>, nonce: &str, now: UnixTime) -> bool {
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(nonce) else {
        return false;
    };
    let (Some(window), Some(tag)) = (bytes.get(..8), bytes.get(8..)) else {
        return false;
    };
    let Ok(issued) = <[u8; 8]>::try_from(window).map(u64::from_be_bytes) else {
        return false;
    };
    let current = now / WINDOW_SECONDS;
    if issued != current && issued.saturating_add(1) != current {
        return false;
    }
    keys.into_iter().any(|key| hmac::verify(key, window, tag).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_holds_for_its_window_and_the_next_only() {
        let k = key(b"one secret");
        let now = 1_900_000_020;
        let nonce = issue(&k, now);
        assert!(is_current([&k], &nonce, now));
        assert!(is_current([&k], &nonce, now + WINDOW_SECONDS));
        assert!(!is_current([&k], &nonce, now + 2 * WINDOW_SECONDS));
        assert!(!is_current([&k], &nonce, now - WINDOW_SECONDS));
        assert!(!is_current([&key(b"another secret")], &nonce, now));
        assert!(is_current([&key(b"another secret"), &k], &nonce, now));
        assert!(!is_current([&k], "not-a-nonce", now));
        let mut bytes = URL_SAFE_NO_PAD.decode(&nonce).unwrap();
        if let Some(last) = bytes.last_mut() {
            *last ^= 1;
        }
        assert!(!is_current([&k], &URL_SAFE_NO_PAD.encode(bytes), now));
    }
}
