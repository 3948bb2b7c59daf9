//! Requests parsed once, at the edge: the HTTP layer hands the decision modules a
//! typed `/token`, `/introspect` or `/revoke` request with typed client credentials,
//! and nothing below it reads the raw form again.

pub(crate) mod credentials;
pub(crate) mod form;
pub(crate) mod token;
pub(crate) mod token_query;
mod traceparent;

pub(crate) use credentials::ClientCredentials;
pub use form::Form;
pub use token::{AssertionParams, ExchangeParams, Grant, IdJagParams, TokenRequest};
pub use token_query::TokenQuery;
pub use traceparent::trace_id;

use crate::error::OAuthError;

/// What the HTTP layer knows of a request before parsing: the headers that matter and
/// the body.
#[derive(Debug, Clone, Copy)]
pub struct RawRequest<'a> {
    /// The `Content-Type` header, if any.
    pub content_type: Option<&'a str>,
    /// The `Authorization` header, if any.
    pub authorization: Option<&'a str>,
    /// The W3C `traceparent` header, if any.
    pub traceparent: Option<&'a str>,
    /// The body.
    pub body: &'a [u8],
}

impl RawRequest<'_> {
    /// RFC 6749 §3.2: token endpoint requests (and RFC 7009/7662 requests) are
    /// `application/x-www-form-urlencoded`; a parameter sent twice is refused.
    fn form(&self) -> Result<Form, OAuthError> {
        let media_type = self
            .content_type
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim();
        if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(OAuthError::invalid_request(
                "request.content_type",
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let form = Form::parse(self.body);
        form.refuse_repeats()?;
        Ok(form)
    }
}
