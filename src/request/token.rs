//! `POST /token`, parsed once: the token exchange grant (RFC 8693 §2.1), which also
//! issues identity assertion grants, and the JWT bearer grant (RFC 7523 §2.1) that
//! redeems them.

use super::RawRequest;
use super::credentials::ClientCredentials;
use super::form::Form;
use crate::error::{ErrorCode, OAuthError};
use crate::inbound::validate::DeclaredType;
use crate::policy::parse_scope;
use mcp_sts_contract::secret::Secret;
use mcp_sts_contract::urn::{
    ACCESS_TOKEN_TYPE, ID_JAG_TOKEN_TYPE, JWT_BEARER_GRANT, JWT_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT,
};

/// A token request. Failures that must wait until the caller is authenticated (so an
/// unauthenticated caller learns nothing about its parameters) are kept as results
/// and read in that order.
#[derive(Debug)]
pub struct TokenRequest {
    /// The client id the caller claims, for the audit line before authentication.
    pub claimed_client_id: Option<String>,
    /// The credentials, or why they are unusable.
    pub credentials: Result<ClientCredentials, OAuthError>,
    /// The W3C `traceparent` header.
    pub traceparent: Option<String>,
    /// The grant and its parameters.
    pub grant: Grant,
    /// The `DPoP` header (RFC 9449), set by the HTTP layer.
    pub dpop: crate::dpop::ProofHeader,
}

/// The grants `/token` answers, told apart by `grant_type` (and, for token exchange,
/// `requested_token_type`) before anything else is read.
#[derive(Debug)]
pub enum Grant {
    /// RFC 8693 token exchange for an access token.
    TokenExchange(Result<ExchangeParams, OAuthError>),
    /// RFC 8693 token exchange for an identity assertion grant (ID-JAG): we act as the
    /// enterprise's token service.
    IdJag(Result<IdJagParams, OAuthError>),
    /// RFC 7523 JWT bearer grant: an ID-JAG redeemed for an access token; we act as
    /// the MCP server's authorization server.
    JwtBearer(Result<AssertionParams, OAuthError>),
}

/// The parameters of a request for an ID-JAG (draft-ietf-oauth-identity-assertion-authz-grant §4.3).
#[derive(Debug)]
pub struct IdJagParams {
    /// `subject_token`: the user's ID token (or an access token meant for us).
    pub subject_token: Secret,
    /// `subject_token_type`.
    pub subject_type: DeclaredType,
    /// `audience`: the authorization server's issuer identifier.
    pub audience: String,
    /// `resource`: the MCP server (required by MCP's profile).
    pub resource: String,
    /// `scope`, split and de-duplicated.
    pub scopes: Vec<String>,
}

/// The parameters of a JWT bearer grant (RFC 7523 §2.1).
#[derive(Debug)]
pub struct AssertionParams {
    /// `assertion`: the ID-JAG.
    pub assertion: Secret,
    /// `scope`, split and de-duplicated: a narrowing of the grant's scopes.
    pub scopes: Vec<String>,
}

/// The parameters of an exchange.
#[derive(Debug)]
pub struct ExchangeParams {
    /// `subject_token`.
    pub subject_token: Secret,
    /// `subject_token_type`.
    pub subject_type: DeclaredType,
    /// `actor_token` with its `actor_token_type`.
    pub actor: Option<(Secret, DeclaredType)>,
    /// `audience`.
    pub audience: Option<String>,
    /// `resource` (RFC 8707).
    pub resource: Option<String>,
    /// `scope`, split and de-duplicated.
    pub scopes: Vec<String>,
    /// The `issued_token_type` to answer with.
    pub issued_type: &'static str,
}

impl TokenRequest {
    /// Parse a request; the form's shape and the grant type are judged at once.
    pub fn parse(raw: RawRequest<'_>) -> Result<Self, OAuthError> {
        let form = raw.form()?;
        let grant = match form.get("grant_type") {
            None => {
                return Err(OAuthError::invalid_request(
                    "request.missing_parameter",
                    "parameter grant_type is required",
                ));
            }
            Some(TOKEN_EXCHANGE_GRANT) if form.get("requested_token_type") == Some(ID_JAG_TOKEN_TYPE) => {
                Grant::IdJag(IdJagParams::from_form(&form))
            }
            Some(TOKEN_EXCHANGE_GRANT) => Grant::TokenExchange(ExchangeParams::from_form(&form)),
            Some(JWT_BEARER_GRANT) => Grant::JwtBearer(AssertionParams::from_form(&form)),
            Some(_) => {
                return Err(OAuthError::new(
                    ErrorCode::UnsupportedGrantType,
                    "grant.unsupported",
                    "only the token exchange and JWT bearer grants are supported",
                ));
            }
        };
        Ok(Self {
            claimed_client_id: form.get("client_id").map(String::from),
            credentials: ClientCredentials::from_request(raw.authorization, &form),
            traceparent: raw.traceparent.map(String::from),
            grant,
            dpop: crate::dpop::ProofHeader::Absent,
        })
    }
}

impl IdJagParams {
    fn from_form(form: &Form) -> Result<Self, OAuthError> {
        let subject_token = form.require("subject_token")?;
        let subject_type = token_type(form.require("subject_token_type")?, "subject_token_type")?;
        if form.get("actor_token").is_some() || form.get("actor_token_type").is_some() {
            return Err(OAuthError::invalid_request(
                "request.actor_token",
                "actor_token is not supported when requesting an identity assertion grant",
            ));
        }
        Ok(Self {
            subject_token: Secret::new(subject_token),
            subject_type,
            audience: form.require("audience")?.to_owned(),
            resource: form.require("resource")?.to_owned(),
            scopes: parse_scope(form.get("scope"))?,
        })
    }
}

impl AssertionParams {
    fn from_form(form: &Form) -> Result<Self, OAuthError> {
        Ok(Self {
            assertion: Secret::new(form.require("assertion")?),
            scopes: parse_scope(form.get("scope"))?,
        })
    }
}

impl ExchangeParams {
    fn from_form(form: &Form) -> Result<Self, OAuthError> {
        let subject_token = form.require("subject_token")?;
        let subject_type = token_type(form.require("subject_token_type")?, "subject_token_type")?;
        let actor = match (form.get("actor_token"), form.get("actor_token_type")) {
            (None, None) => None,
            (Some(token), Some(declared)) => Some((Secret::new(token), token_type(declared, "actor_token_type")?)),
            (Some(_), None) => {
                return Err(OAuthError::invalid_request(
                    "request.actor_token_type",
                    "actor_token_type is required with actor_token",
                ));
            }
            (None, Some(_)) => {
                return Err(OAuthError::invalid_request(
                    "request.actor_token",
                    "actor_token_type was sent without actor_token",
                ));
            }
        };
        let issued_type = match form.get("requested_token_type") {
            None | Some(ACCESS_TOKEN_TYPE) => ACCESS_TOKEN_TYPE,
            Some(JWT_TOKEN_TYPE) => JWT_TOKEN_TYPE,
            Some(_) => {
                return Err(OAuthError::invalid_request(
                    "request.requested_token_type",
                    "requested_token_type is not supported; this service issues JWT access tokens",
                ));
            }
        };
        Ok(Self {
            subject_token: Secret::new(subject_token),
            subject_type,
            actor,
            audience: form.get("audience").map(String::from),
            resource: form.get("resource").map(String::from),
            scopes: parse_scope(form.get("scope"))?,
            issued_type,
        })
    }
}

fn token_type(uri: &str, param: &'static str) -> Result<DeclaredType, OAuthError> {
    DeclaredType::parse(uri).ok_or_else(|| {
        OAuthError::invalid_request(
            "request.unsupported_token_type",
            format!("{param} is not a supported JWT token type"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(body: &[u8]) -> RawRequest<'_> {
        RawRequest {
            content_type: Some("application/x-www-form-urlencoded"),
            authorization: None,
            traceparent: None,
            body,
        }
    }

    #[test]
    fn the_form_and_grant_are_judged_at_once_and_parameters_after_authentication() {
        let wrong_type = RawRequest {
            content_type: Some("application/json"),
            ..raw(b"")
        };
        assert_eq!(
            TokenRequest::parse(wrong_type).unwrap_err().rule,
            "request.content_type"
        );
        assert_eq!(
            TokenRequest::parse(raw(b"grant_type=password")).unwrap_err().code,
            ErrorCode::UnsupportedGrantType
        );
        let body = format!("grant_type={}&client_id=a&client_secret=b", TOKEN_EXCHANGE_GRANT);
        let request = TokenRequest::parse(raw(body.as_bytes())).unwrap();
        assert!(request.credentials.is_ok());
        let Grant::TokenExchange(params) = request.grant else {
            panic!("not an exchange")
        };
        assert_eq!(params.unwrap_err().rule, "request.missing_parameter");
    }

    #[test]
    fn the_grant_is_told_apart_by_grant_type_and_requested_token_type() {
        let body = format!(
            "grant_type={TOKEN_EXCHANGE_GRANT}&requested_token_type={ID_JAG_TOKEN_TYPE}&subject_token=t\
             &subject_token_type={}&audience=https://as.example&resource=https://mcp.example",
            mcp_sts_contract::urn::ID_TOKEN_TYPE
        );
        let request = TokenRequest::parse(raw(body.as_bytes())).unwrap();
        assert!(matches!(request.grant, Grant::IdJag(Ok(_))));
        let body = format!("grant_type={TOKEN_EXCHANGE_GRANT}&requested_token_type={ID_JAG_TOKEN_TYPE}&audience=x");
        let Grant::IdJag(params) = TokenRequest::parse(raw(body.as_bytes())).unwrap().grant else {
            panic!("not an ID-JAG request")
        };
        assert_eq!(params.unwrap_err().rule, "request.missing_parameter");
        let body = format!("grant_type={JWT_BEARER_GRANT}&assertion=a.b.c&scope=x");
        let Grant::JwtBearer(params) = TokenRequest::parse(raw(body.as_bytes())).unwrap().grant else {
            panic!("not a JWT bearer grant")
        };
        assert_eq!(params.unwrap().scopes, vec!["x"]);
    }
}
