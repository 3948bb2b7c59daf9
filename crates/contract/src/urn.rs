//! Protocol identifiers: grant types, token types, assertion types and JWS `typ` values
//! (lower-case, without `application/`: how [`crate::jose::Types`] compares them).

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

/// draft-ietf-oauth-spiffe-client-auth: a JWT-SVID as the client's credential.
pub const JWT_SPIFFE_CLIENT_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe";

/// RFC 9068 §2.1: the JWS `typ` of minted access tokens.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The JWS `typ` of an ID-JAG (RFC 8725 §3.11 explicit typing).
pub const ID_JAG_TYP: &str = "oauth-id-jag+jwt";

/// The `token_type` answered with an ID-JAG: it is a grant, not an access token.
pub const NOT_APPLICABLE_TOKEN_TYPE: &str = "N_A";
