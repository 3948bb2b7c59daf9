//! How a caller authenticates (RFC 6749 §2.3, RFC 7523 §3), read from the
//! `Authorization` header and the form, before anything is verified.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::form::Form;
use crate::error::OAuthError;
use mcp_sts_contract::secret::Secret;
use mcp_sts_contract::urn::{JWT_BEARER_CLIENT_ASSERTION, JWT_SPIFFE_CLIENT_ASSERTION};

/// The credentials a request presents, exactly one method.
#[derive(Debug, Clone)]
pub enum ClientCredentials {
    /// `client_secret_basic` or `client_secret_post`.
    Secret {
        /// The claimed client id.
        id: String,
        /// The presented secret.
        secret: Secret,
    },
    /// `private_key_jwt`: a signed assertion, and the `client_id` parameter if sent.
    Assertion {
        /// The assertion (a JWT).
        assertion: Secret,
        /// The `client_id` parameter, which must then name the assertion's issuer.
        claimed_id: Option<String>,
    },
    /// A workload's JWT-SVID (draft-ietf-oauth-spiffe-client-auth, `jwt-spiffe`).
    Svid {
        /// The JWT-SVID.
        svid: Secret,
        /// The `client_id` parameter, which must then be the SVID's SPIFFE ID.
        claimed_id: Option<String>,
    },
}

impl ClientCredentials {
    /// The client id the caller claims, for the audit line of a refused request.
    pub(crate) fn claimed_id(&self) -> Option<&str> {
        match self {
            ClientCredentials::Secret { id, .. } => Some(id),
            ClientCredentials::Assertion { claimed_id, .. } | ClientCredentials::Svid { claimed_id, .. } => {
                claimed_id.as_deref()
            }
        }
    }

    /// Read the credentials; more than one method is `invalid_request`, none or a
    /// malformed one `invalid_client`.
    pub(crate) fn from_request(authorization: Option<&str>, form: &Form) -> Result<Self, OAuthError> {
        let basic = authorization.map(parse_basic).transpose()?;
        let post_secret = form.get("client_secret");
        let assertion = form.get("client_assertion");
        let assertion_type = form.get("client_assertion_type");
        let methods = [
            basic.is_some(),
            post_secret.is_some(),
            assertion.is_some() || assertion_type.is_some(),
        ];
        if methods.iter().filter(|m| **m).count() > 1 {
            return Err(OAuthError::invalid_request(
                "client.multiple_methods",
                "more than one client authentication method was used",
            ));
        }
        let form_id = form.get("client_id");
        if let Some((id, secret)) = basic {
            if form_id.is_some_and(|f| f != id) {
                return Err(failed(
                    "client.id_mismatch",
                    "client_id does not match the authenticated client",
                ));
            }
            return Ok(Self::Secret { id, secret });
        }
        if let Some(secret) = post_secret {
            let id = form_id.ok_or_else(|| failed("client.missing_id", "client_id is required with client_secret"))?;
            return Ok(Self::Secret {
                id: id.to_owned(),
                secret: Secret::new(secret),
            });
        }
        if assertion.is_some() || assertion_type.is_some() {
            let spiffe = assertion_type == Some(JWT_SPIFFE_CLIENT_ASSERTION);
            if assertion_type != Some(JWT_BEARER_CLIENT_ASSERTION) && !spiffe {
                return Err(failed("client.assertion_type", "unsupported client_assertion_type"));
            }
            let assertion =
                assertion.ok_or_else(|| failed("client.assertion_missing", "client_assertion is required"))?;
            if spiffe {
                return Ok(Self::Svid {
                    svid: Secret::new(assertion),
                    claimed_id: form_id.map(String::from),
                });
            }
            return Ok(Self::Assertion {
                assertion: Secret::new(assertion),
                claimed_id: form_id.map(String::from),
            });
        }
        Err(failed("client.unauthenticated", "client authentication is required"))
    }
}

fn failed(rule: &'static str, text: &'static str) -> OAuthError {
    OAuthError::invalid_client(rule, text)
}

/// RFC 6749 §2.3.1: id and secret are form-urlencoded before base64.
fn parse_basic(header: &str) -> Result<(String, Secret), OAuthError> {
    let bad = || failed("client.basic_malformed", "malformed Basic credentials");
    let (scheme, rest) = header.trim().split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(failed("client.auth_scheme", "unsupported Authorization scheme"));
    }
    let decoded = STANDARD.decode(rest.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let id = form_decode(id).ok_or_else(bad)?;
    let secret = form_decode(secret).ok_or_else(bad)?;
    if id.is_empty() {
        return Err(bad());
    }
    Ok((id, Secret::new(secret)))
}

fn form_decode(value: &str) -> Option<String> {
    let spaced = value.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let header = format!("Basic {}", STANDARD.encode("my%3Aclient:p%40ss+word%2B"));
        let (id, secret) = parse_basic(&header).unwrap();
        assert_eq!(id, "my:client");
        assert_eq!(secret.expose(), "p@ss word+");
    }

    #[test]
    fn two_methods_at_once_are_invalid_request() {
        let form = Form::parse(b"client_id=a&client_secret=b");
        let header = format!("Basic {}", STANDARD.encode("a:b"));
        let err = ClientCredentials::from_request(Some(&header), &form).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn no_credentials_is_invalid_client() {
        let err = ClientCredentials::from_request(None, &Form::parse(b"client_id=a")).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidClient);
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let form = Form::parse(b"client_id=a&client_secret=hunter2");
        let credentials = ClientCredentials::from_request(None, &form).unwrap();
        assert!(!format!("{credentials:?}").contains("hunter2"));
    }
}
