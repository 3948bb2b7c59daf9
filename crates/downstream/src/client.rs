//! A token-exchange client for MCP servers: trade the user's token for a short-lived,
//! single-audience token from mcp-sts (RFC 8693), with caching. Agent applications use
//! it too, for enterprise-managed authorization: an ID token for an identity assertion
//! grant ([`ExchangeRequest::id_jag`]), and the grant for an access token
//! ([`StsClient::redeem_grant`]).
//!
//! The form is posted by hand (the `oauth2` crate sends `grant_type` twice for this
//! grant). Tokens and secrets live in [`Secret`], so they never show in `Debug` output
//! or logs. The client authenticates with a secret (`client_secret_basic`/`_post`) or
//! with a signed assertion (`private_key_jwt`, [`AssertionKey`]).

#![warn(missing_docs)]

mod assertion;
mod cache;
mod dpop;
mod error;
mod request;

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};

pub use assertion::{AssertionKey, JWT_BEARER_CLIENT_ASSERTION};
use cache::{CacheKey, TokenCache};
pub use dpop::DpopKey;
pub use error::{OAuthErrorCode, StsError};
use mcp_sts_contract::AccessClaims;
pub use mcp_sts_contract::ErrorCode;
use mcp_sts_contract::basic::basic_authorization;
use mcp_sts_contract::clock::{Clock, SystemClock};
use mcp_sts_contract::fetch::{FetchError, FetchLimits, fetch, http_client};
pub use mcp_sts_contract::secret::Secret;
pub use request::{ACCESS_TOKEN_TYPE, ExchangeRequest, ID_JAG_TOKEN_TYPE, ID_TOKEN_TYPE, JWT_TOKEN_TYPE, MintedToken};

pub use mcp_sts_contract::urn::{JWT_BEARER_GRANT, TOKEN_EXCHANGE_GRANT};

/// Largest token endpoint answer read; a real one is a few KiB.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// How the client proves its identity to the token endpoint (RFC 6749 §2.3).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum ClientAuth {
    /// HTTP Basic with the form-urlencoded id and secret (the RFC's preferred method).
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` as form fields.
    ClientSecretPost,
    /// A JWT signed with the client's private key on every request (RFC 7523 §2.2); the
    /// STS holds only the public key. `client_secret` is not used.
    PrivateKeyJwt(AssertionKey),
}

/// Where the STS is and who this client is.
#[derive(Clone)]
pub struct StsClientConfig {
    /// The STS's token endpoint, e.g. `https://sts.example.com/token`.
    pub token_endpoint: String,
    /// This MCP server's client id at the STS.
    pub client_id: String,
    /// This MCP server's client secret (empty with `private_key_jwt`).
    pub client_secret: Secret,
    /// How to send the credentials (default `client_secret_basic`).
    pub auth: ClientAuth,
    /// Deadline of each call to the STS, answer included (default 10 s).
    pub http_timeout: Duration,
    /// Most minted tokens cached (default 1024; 0 disables caching).
    pub cache_capacity: usize,
    /// The time source of the token cache (default [`SystemClock`]); tests inject a
    /// [`mcp_sts_contract::clock::ManualClock`].
    pub clock: Arc<dyn Clock>,
    /// The key to prove possession of (RFC 9449): with one, every request carries a
    /// proof and the tokens mcp-sts mints are bound to it (`token_type` `DPoP`).
    pub dpop: Option<DpopKey>,
}

impl std::fmt::Debug for StsClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StsClientConfig")
            .field("token_endpoint", &self.token_endpoint)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("auth", &self.auth)
            .field("http_timeout", &self.http_timeout)
            .field("cache_capacity", &self.cache_capacity)
            .field("dpop", &self.dpop)
            .finish_non_exhaustive()
    }
}

impl StsClientConfig {
    /// A config authenticating with `private_key_jwt`: no secret, the assertions are
    /// signed with `key`.
    pub fn private_key_jwt(token_endpoint: impl Into<String>, client_id: impl Into<String>, key: AssertionKey) -> Self {
        let mut config = Self::new(token_endpoint, client_id, "");
        config.auth = ClientAuth::PrivateKeyJwt(key);
        config
    }

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
            clock: Arc::new(SystemClock),
            dpop: None,
        }
    }

    /// Bind the tokens obtained to `key` (a configured key, or
    /// [`DpopKey::generate`] for one per process).
    pub fn with_dpop(mut self, key: DpopKey) -> Self {
        self.dpop = Some(key);
        self
    }
}

/// The token endpoint's success body (RFC 8693 §2.2.1).
#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    /// RFC 8693 answers carry it; a JWT bearer grant's (RFC 6749) answer does not.
    issued_token_type: Option<String>,
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
    /// The last server nonce mcp-sts gave, for the next proof.
    nonce: std::sync::Mutex<Option<String>>,
}

impl std::fmt::Debug for StsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StsClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl StsClient {
    /// A client for `config`; fails only when no HTTP client can be built.
    pub fn new(config: StsClientConfig) -> Result<Self, StsError> {
        let http = http_client(config.http_timeout).map_err(|e| StsError::InvalidInput(format!("HTTP client: {e}")))?;
        if config.client_id.is_empty() {
            return Err(StsError::InvalidInput("client_id is empty".into()));
        }
        let cache = TokenCache::new(config.cache_capacity);
        Ok(Self {
            http,
            config,
            cache,
            nonce: std::sync::Mutex::new(None),
        })
    }

    /// Read time from `clock` (the token cache and the `iat`/`exp` of
    /// `private_key_jwt` assertions); tests pass a manual clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.config.clock = clock;
        self
    }

    /// The client id this client authenticates as.
    pub fn client_id(&self) -> &str {
        &self.config.client_id
    }

    /// Exchange, reusing a cached token for the same subject, actor, target and scopes
    /// while it is not close to expiry.
    pub async fn exchange(&self, request: &ExchangeRequest) -> Result<MintedToken, StsError> {
        self.exchange_unless_revoked(request, &|_| false).await
    }

    /// [`StsClient::exchange`], never reusing a cached token whose claims `revoked`
    /// refuses (it is dropped and a new one asked for, which mcp-sts refuses in turn
    /// when the revocation reaches the request).
    pub async fn exchange_unless_revoked(
        &self,
        request: &ExchangeRequest,
        revoked: &(dyn Fn(&AccessClaims) -> bool + Sync),
    ) -> Result<MintedToken, StsError> {
        let key = CacheKey::of(request);
        if let Some(token) = self.cache.get(&key, self.config.clock.now(), revoked) {
            return Ok(token);
        }
        let requested_at = self.config.clock.now();
        let token = self.exchange_uncached(request).await?;
        self.cache.put(key, &token, requested_at, self.config.clock.now());
        Ok(token)
    }

    /// The headers that present `token` to the service it is for, on a `method`
    /// request to `url`: `Authorization: DPoP` and a fresh proof bound to the token
    /// (`ath`) when the token is bound to this client's key, else `Authorization: Bearer`.
    pub fn authorization(
        &self,
        token: &MintedToken,
        method: &str,
        url: &str,
    ) -> Result<Vec<(&'static str, String)>, StsError> {
        let access = token.access_token.expose();
        match &self.config.dpop {
            Some(key) if token.token_type.eq_ignore_ascii_case("dpop") => {
                let proof = key.proof(method, url, self.config.clock.now(), Some(access), None)?;
                Ok(vec![("authorization", format!("DPoP {access}")), ("dpop", proof)])
            }
            _ => Ok(vec![("authorization", format!("Bearer {access}"))]),
        }
    }

    /// How many minted tokens are cached now.
    pub fn cached_tokens(&self) -> usize {
        self.cache.len()
    }

    /// Drop every cached token whose claims `revoked` refuses (a revocation heard on
    /// a Shared Signals stream reaches its lineage); returns how many were dropped.
    pub fn forget_revoked(&self, revoked: &dyn Fn(&AccessClaims) -> bool) -> usize {
        self.cache.forget(revoked)
    }

    /// Exchange without looking at or filling the cache.
    pub async fn exchange_uncached(&self, request: &ExchangeRequest) -> Result<MintedToken, StsError> {
        if request.subject_token.expose().is_empty() {
            return Err(StsError::InvalidInput("subject token is empty".into()));
        }
        let token = self
            .post(&|| self.form(request), request.traceparent.as_deref())
            .await?;
        if token.issued_token_type.is_empty() {
            return Err(StsError::InvalidResponse("not an RFC 8693 token response".into()));
        }
        tracing::debug!(
            audience = request.audience.as_deref().unwrap_or_default(),
            expires_in = token.expires_in.map(|d| d.as_secs()),
            "token exchanged"
        );
        Ok(token)
    }

    /// Redeem an authorization grant (an ID-JAG) with the JWT bearer grant (RFC 7523
    /// §2.1), asking for `scopes` (none: everything the grant holds). Never cached: a
    /// grant is redeemed once.
    pub async fn redeem_grant(&self, grant: &Secret, scopes: &[&str]) -> Result<MintedToken, StsError> {
        if grant.expose().is_empty() {
            return Err(StsError::InvalidInput("grant is empty".into()));
        }
        let form = || {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", JWT_BEARER_GRANT)
                .append_pair("assertion", grant.expose());
            let scope = scopes.join(" ");
            if !scope.is_empty() {
                form.append_pair("scope", &scope);
            }
            self.authenticate(&mut form)?;
            Ok(form.finish())
        };
        let token = self.post(&form, None).await?;
        tracing::debug!(expires_in = token.expires_in.map(|d| d.as_secs()), "grant redeemed");
        Ok(token)
    }

    /// Post the form `form` builds to the token endpoint and read the answer (RFC 6749
    /// §5.1, §5.2). With a DPoP key, each attempt carries a fresh proof, and a
    /// `use_dpop_nonce` answer is retried once with the nonce it gave (the form is
    /// built again: a client assertion is never sent twice).
    async fn post(
        &self,
        form: &(dyn Fn() -> Result<String, StsError> + Sync),
        traceparent: Option<&str>,
    ) -> Result<MintedToken, StsError> {
        match self.post_once(form()?, traceparent).await {
            Err(error)
                if self.config.dpop.is_some()
                    && error.code().and_then(OAuthErrorCode::known) == Some(ErrorCode::UseDpopNonce) =>
            {
                self.post_once(form()?, traceparent).await
            }
            other => other,
        }
    }

    /// The last nonce mcp-sts gave.
    fn nonce(&self) -> Option<String> {
        self.nonce
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    async fn post_once(&self, form: String, traceparent: Option<&str>) -> Result<MintedToken, StsError> {
        let mut http = self
            .http
            .post(&self.config.token_endpoint)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json");
        if let Some(traceparent) = traceparent {
            http = http.header("traceparent", traceparent);
        }
        if let Some(key) = &self.config.dpop {
            let nonce = self.nonce();
            let proof = key.proof(
                "POST",
                &self.config.token_endpoint,
                self.config.clock.now(),
                None,
                nonce.as_deref(),
            )?;
            http = http.header("dpop", proof);
        }
        if matches!(self.config.auth, ClientAuth::ClientSecretBasic) {
            http = http.header(
                AUTHORIZATION,
                basic_authorization(&self.config.client_id, self.config.client_secret.expose()),
            );
        }
        let limits = FetchLimits {
            timeout: self.config.http_timeout,
            max_bytes: MAX_ANSWER_BYTES,
        };
        let fetched = fetch(http.body(form), limits).await.map_err(|e| match e {
            FetchError::TooLarge(_) => StsError::InvalidResponse(e.to_string()),
            FetchError::Unreachable => StsError::Transport("connection failed".into()),
            FetchError::Failed | FetchError::TimedOut => StsError::Transport(e.to_string()),
        })?;
        if let Some(nonce) = fetched.dpop_nonce {
            *self.nonce.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(nonce);
        }
        let (status, body) = (fetched.status, fetched.body);
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
            .map_err(|_| StsError::InvalidResponse("not an OAuth token response".into()))?;
        if ok.access_token.is_empty() {
            return Err(StsError::InvalidResponse("empty access_token".into()));
        }
        Ok(MintedToken {
            access_token: Secret::new(ok.access_token),
            issued_token_type: ok.issued_token_type.unwrap_or_default(),
            token_type: ok.token_type,
            expires_in: ok.expires_in.map(Duration::from_secs),
            scope: ok.scope,
        })
    }

    /// The RFC 8693 §2.1 form; empty optional parameters are left out.
    fn form(&self, request: &ExchangeRequest) -> Result<String, StsError> {
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
        if let Some(requested) = request.requested_token_type.as_deref().filter(|t| !t.is_empty()) {
            form.append_pair("requested_token_type", requested);
        }
        let scope = request.scope_param();
        if !scope.is_empty() {
            form.append_pair("scope", &scope);
        }
        self.authenticate(&mut form)?;
        Ok(form.finish())
    }

    /// Add the form fields of the client authentication method (none for
    /// `client_secret_basic`, which is a header).
    fn authenticate(&self, form: &mut form_urlencoded::Serializer<'_, String>) -> Result<(), StsError> {
        match &self.config.auth {
            ClientAuth::ClientSecretBasic => {}
            ClientAuth::ClientSecretPost => {
                form.append_pair("client_id", &self.config.client_id)
                    .append_pair("client_secret", self.config.client_secret.expose());
            }
            ClientAuth::PrivateKeyJwt(key) => {
                let assertion = key.assertion(
                    &self.config.client_id,
                    &self.config.token_endpoint,
                    self.config.clock.now(),
                )?;
                form.append_pair("client_id", &self.config.client_id)
                    .append_pair("client_assertion_type", JWT_BEARER_CLIENT_ASSERTION)
                    .append_pair("client_assertion", assertion.expose());
            }
        }
        Ok(())
    }
}
