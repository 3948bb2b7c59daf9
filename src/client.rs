//! A token-exchange client for MCP servers: trade the user's token for a short-lived,
//! single-audience token from mcp-sts (RFC 8693), with caching.
//!
//! The form is posted by hand (the `oauth2` crate sends `grant_type` twice for this
//! grant). Tokens and secrets live in [`Secret`], so they never show in `Debug` output
//! or logs.

#![warn(missing_docs)]

mod cache;
mod error;
mod request;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use tokio::time::Instant;

pub use crate::secret::Secret;
use cache::{CacheKey, TokenCache};
pub use error::{OAuthErrorCode, StsError};
pub use request::{ACCESS_TOKEN_TYPE, ExchangeRequest, ID_TOKEN_TYPE, JWT_TOKEN_TYPE, MintedToken};

pub use crate::contract::urn::TOKEN_EXCHANGE_GRANT;

/// How the client proves its identity to the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// HTTP Basic with the form-urlencoded id and secret (the RFC's preferred method).
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` as form fields.
    ClientSecretPost,
}

/// Where the STS is and who this client is.
#[derive(Debug, Clone)]
pub struct StsClientConfig {
    /// The STS's token endpoint, e.g. `https://sts.example.com/token`.
    pub token_endpoint: String,
    /// This MCP server's client id at the STS.
    pub client_id: String,
    /// This MCP server's client secret.
    pub client_secret: Secret,
    /// How to send the credentials (default `client_secret_basic`).
    pub auth: ClientAuth,
    /// Timeout of each call to the STS (default 10 s).
    pub http_timeout: Duration,
    /// Most minted tokens cached (default 1024; 0 disables caching).
    pub cache_capacity: usize,
}

impl StsClientConfig {
    /// A config with the defaults.
    pub fn new(
        token_endpoint: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
    ) -> Self {
        Self {
            token_endpoint: token_endpoint.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            auth: ClientAuth::ClientSecretBasic,
            http_timeout: Duration::from_secs(10),
            cache_capacity: 1024,
        }
    }
}

/// The token endpoint's success body (RFC 8693 §2.2.1).
#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    issued_token_type: String,
    token_type: String,
    expires_in: Option<u64>,
    scope: Option<String>,
}

/// The token endpoint's error body (RFC 6749 §5.2).
#[derive(serde::Deserialize)]
struct ErrorResponse {
    error: String,
    error_description: Option<String>,
}

/// Exchanges tokens at mcp-sts; share one per process (it is cheap to clone the `Arc`).
pub struct StsClient {
    http: reqwest::Client,
    config: StsClientConfig,
    cache: TokenCache,
}

impl std::fmt::Debug for StsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StsClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// `client_secret_basic` (RFC 6749 §2.3.1): form-urlencode id and secret, then base64.
fn basic_authorization(client_id: &str, secret: &str) -> String {
    let id: String = form_urlencoded::byte_serialize(client_id.as_bytes()).collect();
    let secret: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

impl StsClient {
    /// A client for `config`; fails only when no HTTP client can be built.
    pub fn new(config: StsClientConfig) -> Result<Self, StsError> {
        let http = reqwest::Client::builder()
            .timeout(config.http_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| StsError::InvalidInput(format!("HTTP client: {e}")))?;
        let cache = TokenCache::new(config.cache_capacity);
        Ok(Self { http, config, cache })
    }

    /// Exchange, reusing a cached token for the same subject, actor, target and scopes
    /// while it is not close to expiry.
    pub async fn exchange(&self, request: &ExchangeRequest) -> Result<MintedToken, StsError> {
        let key = CacheKey::of(request);
        if let Some(token) = self.cache.get(&key) {
            return Ok(token);
        }
        let requested_at = Instant::now();
        let token = self.exchange_uncached(request).await?;
        self.cache.put(key, &token, requested_at);
        Ok(token)
    }

    /// How many minted tokens are cached now.
    pub fn cached_tokens(&self) -> usize {
        self.cache.len()
    }

    /// Exchange without looking at or filling the cache.
    pub async fn exchange_uncached(&self, request: &ExchangeRequest) -> Result<MintedToken, StsError> {
        if request.subject_token.expose().is_empty() {
            return Err(StsError::InvalidInput("subject token is empty".into()));
        }
        let mut http = self
            .http
            .post(&self.config.token_endpoint)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json");
        if let Some(traceparent) = &request.traceparent {
            http = http.header("traceparent", traceparent);
        }
        if self.config.auth == ClientAuth::ClientSecretBasic {
            http = http.header(
                AUTHORIZATION,
                basic_authorization(&self.config.client_id, self.config.client_secret.expose()),
            );
        }
        let response = http
            .body(self.form(request))
            .send()
            .await
            .map_err(|e| StsError::Transport(e.without_url().to_string()))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| StsError::Transport(e.without_url().to_string()))?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<ErrorResponse>(&body) {
                Ok(e) => StsError::OAuth {
                    status: status.as_u16(),
                    code: OAuthErrorCode::parse(&e.error),
                    description: e.error_description,
                },
                Err(_) => StsError::UnexpectedStatus {
                    status: status.as_u16(),
                },
            });
        }
        let ok: TokenResponse = serde_json::from_slice(&body)
            .map_err(|_| StsError::InvalidResponse("not an RFC 8693 token response".into()))?;
        if ok.access_token.is_empty() {
            return Err(StsError::InvalidResponse("empty access_token".into()));
        }
        tracing::debug!(
            audience = request.audience.as_deref().unwrap_or_default(),
            expires_in = ok.expires_in,
            "token exchanged"
        );
        Ok(MintedToken {
            access_token: Secret::new(ok.access_token),
            issued_token_type: ok.issued_token_type,
            token_type: ok.token_type,
            expires_in: ok.expires_in.map(Duration::from_secs),
            scope: ok.scope,
        })
    }

    /// The RFC 8693 §2.1 form; empty optional parameters are left out.
    fn form(&self, request: &ExchangeRequest) -> String {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", TOKEN_EXCHANGE_GRANT)
            .append_pair("subject_token", request.subject_token.expose())
            .append_pair("subject_token_type", &request.subject_token_type);
        if let Some((token, token_type)) = &request.actor {
            form.append_pair("actor_token", token.expose())
                .append_pair("actor_token_type", token_type);
        }
        if let Some(audience) = request.audience.as_deref().filter(|a| !a.is_empty()) {
            form.append_pair("audience", audience);
        }
        if let Some(resource) = request.resource.as_deref().filter(|r| !r.is_empty()) {
            form.append_pair("resource", resource);
        }
        let scope = request.scope_param();
        if !scope.is_empty() {
            form.append_pair("scope", &scope);
        }
        if self.config.auth == ClientAuth::ClientSecretPost {
            form.append_pair("client_id", &self.config.client_id)
                .append_pair("client_secret", self.config.client_secret.expose());
        }
        form.finish()
    }
}
