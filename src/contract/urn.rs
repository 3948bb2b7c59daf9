//! Protocol identifiers: grant types, token types, assertion types and JWS `typ` values.

/// RFC 8693 §2.1: the token exchange grant.
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// RFC 8693 §3: an OAuth access token (ours are JWTs, RFC 9068).
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// RFC 8693 §3: a JWT of no more specific type.
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
/// RFC 8693 §3: an OpenID Connect ID token.
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";

/// RFC 8693 §3 as profiled by the Identity Assertion JWT Authorization Grant draft
/// (draft-ietf-oauth-identity-assertion-authz-grant): an ID-JAG, asked for as
/// `requested_token_type` and answered as `issued_token_type`.
pub const ID_JAG_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id-jag";

/// RFC 7523 §2.1: a JWT used as an authorization grant (how an ID-JAG is redeemed).
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The ID-JAG draft's grant profile, advertised in `authorization_grant_profiles_supported`.
pub const ID_JAG_GRANT_PROFILE: &str = "urn:ietf:params:oauth:grant-profile:id-jag";

/// RFC 7523 §2.2: the only client assertion type accepted (`private_key_jwt`).
pub const JWT_BEARER_CLIENT_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// RFC 9068 §2.1: the JWS `typ` of minted access tokens.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The JWS `typ` of an ID-JAG (RFC 8725 §3.11 explicit typing).
pub const ID_JAG_TYP: &str = "oauth-id-jag+jwt";

/// The `token_type` answered with an ID-JAG: it is a grant, not an access token.
pub const NOT_APPLICABLE_TOKEN_TYPE: &str = "N_A";

/// Whether a JWS `typ` header names an ID-JAG, in either form, case-insensitively.
pub fn is_id_jag_typ(typ: &str) -> bool {
    let lower = typ.to_ascii_lowercase();
    lower.strip_prefix("application/").unwrap_or(&lower) == ID_JAG_TYP
}

/// Whether a JWS `typ` header names a JWT access token: `at+jwt` or its media type
/// form, compared case-insensitively (RFC 7515 §4.1.9).
pub fn is_access_token_typ(typ: &str) -> bool {
    let lower = typ.to_ascii_lowercase();
    lower.strip_prefix("application/").unwrap_or(&lower) == ACCESS_TOKEN_TYP
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_token_typ_forms() {
        for typ in ["at+jwt", "AT+JWT", "application/at+jwt", "Application/At+Jwt"] {
            assert!(is_access_token_typ(typ), "{typ}");
        }
        for typ in ["jwt", "JWT", "application/jwt", "dpop+jwt", "at+jwt2", ""] {
            assert!(!is_access_token_typ(typ), "{typ}");
        }
    }

    #[test]
    fn id_jag_typ_forms() {
        for typ in ["oauth-id-jag+jwt", "OAuth-ID-JAG+JWT", "application/oauth-id-jag+jwt"] {
            assert!(is_id_jag_typ(typ), "{typ}");
        }
        for typ in ["jwt", "at+jwt", "id-jag+jwt", "oauth-id-jag", ""] {
            assert!(!is_id_jag_typ(typ), "{typ}");
        }
    }
}
