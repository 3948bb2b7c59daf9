//! HTTP Basic client credentials (RFC 6749 §2.3.1), as every caller of mcp-sts sends
//! them: the client id and secret are form-urlencoded, joined by `:`, then base64.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The `Authorization` header value for `client_secret_basic`.
pub fn basic_authorization(client_id: &str, secret: &str) -> String {
    let id: String = form_urlencoded::byte_serialize(client_id.as_bytes()).collect();
    let secret: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_and_secret_are_form_urlencoded_before_base64() {
        let expected = STANDARD.encode("orders%3Amcp:p%40ss+word%2F%C3%A9");
        assert_eq!(
            basic_authorization("orders:mcp", "p@ss word/é"),
            format!("Basic {expected}")
        );
    }
}
