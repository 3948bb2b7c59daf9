//! The kit's two error types: start-up mistakes ([`McpAuthError`]) and a downstream
//! token that could not be had ([`TokenError`]), which a tool returns as an MCP tool
//! error the agent can read.

use rmcp::handler::server::tool::IntoCallToolResult;
use rmcp::model::{CallToolResponse, CallToolResult};
use serde_json::json;

use crate::client::{OAuthErrorCode, StsError};
use mcp_sts_contract::ErrorCode;

/// Why the kit could not be built; reported at start-up, never per request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum McpAuthError {
    /// The resource is not an absolute http(s) URI without query or fragment.
    #[error("MCP resource {0}")]
    InvalidResource(String),
    /// No authorization server is trusted, so no token could ever be accepted.
    #[error("no trusted issuer: call McpAuthBuilder::trust at least once")]
    NoIssuer,
    /// An issuer identifier is not an http(s) URL (RFC 8414 §2).
    #[error("issuer {0}")]
    InvalidIssuer(String),
    /// An issuer's metadata could not be read, or names another issuer.
    #[error("discovery of issuer {issuer} failed: {reason}")]
    Discovery {
        /// The issuer.
        issuer: String,
        /// What went wrong at each metadata URL.
        reason: String,
    },
    /// Another unusable setting.
    #[error("MCP kit configuration: {0}")]
    Config(String),
}

/// Why [`super::Caller::token_for`] produced no downstream token. As a tool's error it
/// becomes a tool result with `isError: true` and `{"error", "error_description",
/// "audience"}` as structured content; the raw token never appears in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// mcp-sts refused the exchange (`invalid_scope`, `invalid_target`, a revoked user
    /// or agent, ...): retrying will not help.
    #[error("mcp-sts refused a token for {audience}: {code}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        /// The downstream audience or resource asked for.
        audience: String,
        /// The OAuth error code.
        code: OAuthErrorCode,
        /// mcp-sts's `error_description`.
        description: Option<String>,
    },
    /// mcp-sts could not be reached or could not decide now; retrying later may help.
    #[error("mcp-sts is unavailable for {audience}: {detail}")]
    Unavailable {
        /// The downstream audience or resource asked for.
        audience: String,
        /// What failed.
        detail: String,
    },
    /// This server has no exchange client (see `McpAuthBuilder::exchange_with`), or its
    /// client configuration is unusable.
    #[error("this MCP server cannot exchange tokens: {0}")]
    NotConfigured(String),
}

impl TokenError {
    /// Classify an exchange failure for `audience`.
    pub(crate) fn from_sts(audience: &str, error: StsError) -> Self {
        match error {
            StsError::OAuth { code, description, .. } if code.is_retryable() => TokenError::Unavailable {
                audience: audience.to_owned(),
                detail: description.unwrap_or_else(|| "temporarily unavailable".into()),
            },
            StsError::OAuth { code, description, .. } => TokenError::Refused {
                audience: audience.to_owned(),
                code,
                description,
            },
            StsError::InvalidInput(why) => TokenError::NotConfigured(why),
            other => TokenError::Unavailable {
                audience: audience.to_owned(),
                detail: other.to_string(),
            },
        }
    }

    /// The short code a tool error carries: the OAuth code of a refusal,
    /// `temporarily_unavailable`, or `not_configured`.
    pub fn code(&self) -> &str {
        match self {
            TokenError::Refused { code, .. } => code.as_str(),
            TokenError::Unavailable { .. } => ErrorCode::TemporarilyUnavailable.as_str(),
            TokenError::NotConfigured(_) => "not_configured",
        }
    }

    /// Whether the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, TokenError::Unavailable { .. })
    }

    /// The MCP tool error for this failure.
    pub fn to_tool_result(&self) -> CallToolResult {
        let audience = match self {
            TokenError::Refused { audience, .. } | TokenError::Unavailable { audience, .. } => Some(audience.as_str()),
            TokenError::NotConfigured(_) => None,
        };
        CallToolResult::structured_error(json!({
            "error": self.code(),
            "error_description": self.to_string(),
            "audience": audience,
        }))
    }
}

/// A tool may return `Result<_, TokenError>` and use `?` on [`super::Caller::token_for`].
impl IntoCallToolResult for TokenError {
    fn into_call_tool_result(self) -> Result<CallToolResponse, rmcp::ErrorData> {
        tracing::info!(code = self.code(), error = %self, "downstream token refused to a tool");
        Ok(self.to_tool_result().into())
    }
}
