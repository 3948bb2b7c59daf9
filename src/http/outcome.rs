//! The one place every endpoint's outcome is recorded: an audit event and a decision
//! counter per request, then the answer, never cached (RFC 6749 §5.1).

use axum::http::HeaderMap;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::edge::answered;
use super::error::no_store;
use crate::admin::AdminError;
use crate::audit::AuditEvent;
use crate::error::OAuthError;
use crate::request::RawRequest;
use crate::service::Sts;

/// A refusal an endpoint can answer with, as the audit log and metrics name it.
pub(crate) trait Refusal: IntoResponse {
    /// The audit `reason`, or `None` when the request is not worth an audit line.
    fn audit_reason(&self) -> Option<String>;
    /// The `outcome` label of the decision counter.
    fn outcome(&self) -> &'static str;
    /// The requested scopes refused, for the audit line of an `invalid_scope`.
    fn refused_scope(&self) -> Option<String> {
        None
    }
}

impl Refusal for OAuthError {
    fn audit_reason(&self) -> Option<String> {
        Some(self.reason())
    }

    fn outcome(&self) -> &'static str {
        self.code.as_str()
    }

    fn refused_scope(&self) -> Option<String> {
        self.refused_scope.clone()
    }
}

impl Refusal for AdminError {
    fn audit_reason(&self) -> Option<String> {
        // With no admin credential configured the API does not exist: nothing to audit.
        (*self != AdminError::Disabled).then(|| format!("admin:{self}"))
    }

    fn outcome(&self) -> &'static str {
        self.code()
    }
}

impl Refusal for crate::ssf::SsfError {
    fn audit_reason(&self) -> Option<String> {
        Some(match self {
            crate::ssf::SsfError::OAuth(e) => e.reason(),
            other => format!("{}:{other}", other.code()),
        })
    }

    fn outcome(&self) -> &'static str {
        self.code()
    }
}

/// Audit and count an outcome, then answer with it.
pub(crate) fn respond<E: Refusal>(sts: &Sts, mut audit: AuditEvent, result: Result<Response, E>) -> Response {
    match result {
        Ok(mut response) => {
            sts.metrics().decision(audit.event, "allow");
            crate::spans::record_outcome(&audit, "allow");
            audit.decision = "allow";
            sts.audit().emit(&audit);
            no_store(response.headers_mut());
            answered(response)
        }
        Err(refusal) => {
            sts.metrics().decision(audit.event, refusal.outcome());
            crate::spans::record_outcome(&audit, refusal.outcome());
            if let Some(reason) = refusal.audit_reason() {
                audit.reason = Some(reason);
                audit.refused_scope = refusal.refused_scope();
                sts.audit().emit(&audit);
            }
            answered(refusal.into_response())
        }
    }
}

/// A header as text, when present and valid.
pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The parts of an HTTP request the parsers read.
pub(crate) fn raw_request<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> RawRequest<'a> {
    RawRequest {
        content_type: header_str(headers, header::CONTENT_TYPE.as_str()),
        authorization: header_str(headers, header::AUTHORIZATION.as_str()),
        traceparent: header_str(headers, "traceparent"),
        body,
    }
}
