//! Client authentication on `/token`, `/revoke` and `/introspect` (RFC 6749 §2.3,
//! RFC 7523 §3): `client_secret_basic`, `client_secret_post` and `private_key_jwt`.
//!
//! Secrets are stored as SHA-256 digests and compared in constant time; an unknown
//! client is compared against a dummy digest so timing does not reveal which
//! client ids exist. Every failure is `invalid_client` (401); using more than one
//! method at once is `invalid_request`. A `client_id` that is a URL names its own
//! registration (`url_client`).

mod document_cache;
mod url_client;
mod workload;

pub use url_client::DocumentRefusal;

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::clock::UnixTime;
use crate::config::ClientConfig;
use crate::contract::{Actor, SubProfile};
use crate::error::OAuthError;
use crate::inbound::Issuers;
use crate::jose::compact::{audiences, str_claim};
use crate::jose::{
    JwksCache, JwksConfig, JwksSource, KeySource, NO_MEMORY, Profile, Refusal, Types, Unverified, VerificationKey, read,
};
use crate::request::ClientCredentials;
use crate::revocation::RevocationGate;

/// Longest client assertion lifetime we accept: bounds how long a `jti` is remembered.
const MAX_ASSERTION_LIFETIME: u64 = 600;

/// A configured client with its credentials in usable form.
#[derive(Debug)]
pub struct RegisteredClient {
    /// The configuration entry.
    pub config: ClientConfig,
    secret_sha256: Option<[u8; 32]>,
    jwks: Option<JwksCache>,
    /// Who the client is as an actor: a configured client is a service acting as
    /// itself; a workload is its SPIFFE ID or account, vouched for by its issuer.
    acting: Actor,
}

impl RegisteredClient {
    /// The client as the actor of a token it obtains with no actor token.
    pub fn as_actor(&self) -> Actor {
        self.acting.clone()
    }

    /// The client's id.
    pub fn id(&self) -> &str {
        &self.config.client_id
    }

    /// Whether this client may request tokens for `audience`.
    pub fn may_reach(&self, audience: &str) -> bool {
        self.config.audiences.iter().any(|a| a == audience)
    }
}

/// Every configured client, by id.
#[derive(Debug, Default)]
pub struct Clients {
    by_id: HashMap<String, Arc<RegisteredClient>>,
    /// The trusted issuers whose workloads may authenticate by `[[workloads]]` rule.
    workload_issuers: Option<Arc<Issuers>>,
    /// URL clients, when `[[cimd.allow]]` lists any host.
    url_clients: Option<url_client::UrlClients>,
}

impl Clients {
    /// Build from configuration (already validated); `keys` gives the rules of the
    /// `private_key_jwt` key caches.
    pub fn new(configs: &[ClientConfig], http: &reqwest::Client, keys: &JwksConfig) -> Self {
        let by_id = configs
            .iter()
            .map(|config| {
                let secret_sha256 = config.secret_sha256.as_deref().and_then(|h| {
                    let bytes = hex::decode(h).ok()?;
                    <[u8; 32]>::try_from(bytes.as_slice()).ok()
                });
                let source = match (&config.jwks, &config.jwks_uri) {
                    (Some(inline), _) => Some(JwksSource::Inline(inline.clone())),
                    (None, Some(uri)) => Some(JwksSource::Uri(uri.clone())),
                    (None, None) => None,
                };
                let jwks = source.map(|source| JwksCache::new(source, keys.clone(), http.clone()));
                (
                    config.client_id.clone(),
                    Arc::new(RegisteredClient {
                        config: config.clone(),
                        secret_sha256,
                        jwks,
                        acting: Actor::new(config.client_id.clone(), None).with_profile(SubProfile::Service),
                    }),
                )
            })
            .collect();
        Self {
            by_id,
            workload_issuers: None,
            url_clients: None,
        }
    }

    /// The same clients, and URL clients as `[cimd]` allows.
    pub fn with_url_clients(mut self, config: &crate::config::CimdConfig, keys: &JwksConfig) -> Self {
        self.url_clients = url_client::UrlClients::new(config, keys);
        self
    }

    /// The same clients, and workloads of these issuers as `[[workloads]]` rules say.
    pub fn with_workload_issuers(mut self, issuers: Arc<Issuers>) -> Self {
        self.workload_issuers = Some(issuers);
        self
    }

    /// A client by id.
    pub fn get(&self, id: &str) -> Option<&Arc<RegisteredClient>> {
        self.by_id.get(id)
    }
}

/// Hex SHA-256 of a secret, the form `secret_sha256` takes in configuration.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// What client authentication needs besides the request.
#[derive(Debug, Clone, Copy)]
pub struct AuthContext<'a> {
    /// This service's issuer: an accepted assertion audience.
    pub issuer: &'a str,
    /// The token endpoint URL: the other accepted assertion audience.
    pub token_endpoint: &'a str,
    /// Clock skew allowed.
    pub leeway: u64,
    /// Largest assertion accepted.
    pub max_token_bytes: usize,
}

fn failed(rule: &'static str, text: &'static str) -> OAuthError {
    OAuthError::invalid_client(rule, text)
}

/// Authenticate the caller, or say why not. A failure is also logged (the claimed
/// client id, escaped and bounded, and the rule), so a misconfigured caller shows up
/// in the operational log, not only in the audit trail.
pub async fn authenticate(
    clients: &Clients,
    credentials: &ClientCredentials,
    ctx: AuthContext<'_>,
    revocations: &RevocationGate,
    now: UnixTime,
) -> Result<Arc<RegisteredClient>, OAuthError> {
    let result = check_credentials(clients, credentials, ctx, revocations, now).await;
    if let Err(error) = &result
        && error.code == crate::error::ErrorCode::InvalidClient
    {
        tracing::warn!(
            client_id = %credentials.claimed_id().map(crate::audit::loggable).unwrap_or_else(|| "(none)".into()),
            rule = error.rule,
            "client authentication failed"
        );
    }
    result
}

async fn check_credentials(
    clients: &Clients,
    credentials: &ClientCredentials,
    ctx: AuthContext<'_>,
    revocations: &RevocationGate,
    now: UnixTime,
) -> Result<Arc<RegisteredClient>, OAuthError> {
    match credentials {
        ClientCredentials::Secret { id, secret } => {
            let client = clients.get(id);
            let expected = client.and_then(|c| c.secret_sha256).unwrap_or([0u8; 32]);
            let given: [u8; 32] = Sha256::digest(secret.expose().as_bytes()).into();
            let matches: bool = given.ct_eq(&expected).into();
            match client {
                Some(client) if matches && client.secret_sha256.is_some() => Ok(client.clone()),
                _ => Err(failed("client.authentication", "client authentication failed")),
            }
        }
        ClientCredentials::Svid { svid, claimed_id } => {
            let issuers = clients
                .workload_issuers
                .as_deref()
                .ok_or_else(|| failed("client.assertion_type", "unsupported client_assertion_type"))?;
            workload::authenticate(
                issuers,
                svid.expose(),
                workload::Declared::Svid,
                claimed_id.as_deref(),
                ctx,
                now,
            )
            .await
        }
        // An assertion from a URL no client is configured as: a URL client.
        ClientCredentials::Assertion { assertion, claimed_id }
            if let Some(id) = url_client_id(clients, assertion.expose(), claimed_id.as_deref()) =>
        {
            let urls = clients.url_clients.as_ref().ok_or(DocumentRefusal::HostNotAllowed)?;
            let client = urls.resolve(&id, now).await?;
            verify_assertion(
                &OneClient(&client),
                refused_url_client_assertion,
                assertion.expose(),
                claimed_id.as_deref(),
                ctx,
                revocations,
                now,
            )
            .await
        }
        // A jwt-bearer assertion from no configured client may be a cluster's
        // service-account token.
        ClientCredentials::Assertion { assertion, claimed_id }
            if let Some(issuers) = clients.workload_issuers.as_deref()
                && !names_client(clients, assertion.expose()) =>
        {
            workload::authenticate(
                issuers,
                assertion.expose(),
                workload::Declared::ServiceAccount,
                claimed_id.as_deref(),
                ctx,
                now,
            )
            .await
        }
        ClientCredentials::Assertion { assertion, claimed_id } => {
            verify_assertion(
                &AssertionKeys(clients),
                refused_assertion,
                assertion.expose(),
                claimed_id.as_deref(),
                ctx,
                revocations,
                now,
            )
            .await
        }
    }
}

/// Whether an assertion's (unverified) `iss` is a configured client: then it is a
/// `private_key_jwt` assertion, never a workload's token.
fn names_client(clients: &Clients, assertion: &str) -> bool {
    crate::jose::compact::claims(assertion)
        .ok()
        .and_then(|claims| str_claim(&claims, "iss").map(|iss| clients.get(iss).is_some()))
        .unwrap_or(true)
}

/// The URL client an assertion claims to come from: the `client_id` parameter, else
/// the assertion's (unverified) `iss` when its `sub` is the same; never a configured id.
fn url_client_id(clients: &Clients, assertion: &str, claimed_id: Option<&str>) -> Option<String> {
    let id = match claimed_id {
        Some(id) => id.to_owned(),
        None => {
            let claims = crate::jose::compact::claims(assertion).ok()?;
            let iss = str_claim(&claims, "iss")?;
            (str_claim(&claims, "sub") == Some(iss)).then(|| iss.to_owned())?
        }
    };
    (url_client::looks_like_url(&id) && clients.get(&id).is_none()).then_some(id)
}

/// The keys of one URL client, resolved from its document before the assertion is read.
struct OneClient<'a>(&'a Arc<RegisteredClient>);

impl KeySource for OneClient<'_> {
    type Signer = Arc<RegisteredClient>;

    async fn keys(
        &self,
        jws: &Unverified<'_>,
        now: UnixTime,
    ) -> Result<(Arc<RegisteredClient>, Vec<Arc<VerificationKey>>), Refusal> {
        if jws.issuer()? != self.0.id() {
            return Err(Refusal::UntrustedIssuer);
        }
        keys_of(self.0, jws, now).await
    }
}

/// The keys of the client an assertion names as its issuer: its inline JWKS or its
/// `jwks_uri`, never keys the assertion names itself.
struct AssertionKeys<'a>(&'a Clients);

impl KeySource for AssertionKeys<'_> {
    type Signer = Arc<RegisteredClient>;

    async fn keys(
        &self,
        jws: &Unverified<'_>,
        now: UnixTime,
    ) -> Result<(Arc<RegisteredClient>, Vec<Arc<VerificationKey>>), Refusal> {
        let client = self.0.get(jws.issuer()?).ok_or(Refusal::UntrustedIssuer)?;
        keys_of(client, jws, now).await
    }
}

/// A client's `private_key_jwt` keys (inline or from its `jwks_uri`), never keys the
/// assertion names itself.
async fn keys_of(
    client: &Arc<RegisteredClient>,
    jws: &Unverified<'_>,
    now: UnixTime,
) -> Result<(Arc<RegisteredClient>, Vec<Arc<VerificationKey>>), Refusal> {
    let jwks = client.jwks.as_ref().ok_or(Refusal::UntrustedIssuer)?;
    let ((), keys) = jwks.keys(jws, now).await?;
    Ok((Arc::clone(client), keys))
}

/// What a refused assertion is answered with: `invalid_client` naming the rule, or 503
/// when the client's keys are unreachable.
fn refused_assertion(refusal: Refusal) -> OAuthError {
    match refusal {
        Refusal::KeysUnavailable(_) => {
            OAuthError::unavailable("client.keys_unavailable", "client keys are unavailable; retry later")
        }
        Refusal::Expired => failed("client.assertion_expired", "client assertion has expired"),
        Refusal::LivesTooLong => failed("client.assertion_lifetime", "client assertion lives too long"),
        _ => failed("client.assertion_invalid", "client assertion is invalid"),
    }
}

/// What refuses a URL client: always `invalid_client`, naming the rule.
impl From<DocumentRefusal> for OAuthError {
    fn from(refusal: DocumentRefusal) -> Self {
        let rule = match refusal {
            DocumentRefusal::BadClientId => "client.url_client_id",
            DocumentRefusal::HostNotAllowed => "client.url_client_host",
            DocumentRefusal::Unavailable => "client.metadata_document_unavailable",
            DocumentRefusal::Invalid => "client.metadata_document_invalid",
        };
        failed(
            rule,
            match refusal {
                DocumentRefusal::BadClientId => "client_id is not a usable client ID metadata document URL",
                DocumentRefusal::HostNotAllowed => "this host may not be a URL client",
                DocumentRefusal::Unavailable => "the client's metadata document could not be fetched",
                DocumentRefusal::Invalid => "the client's metadata document is invalid",
            },
        )
    }
}

/// What a refused URL client assertion is answered with: as any assertion, except that
/// keys its document names and that cannot be fetched make it `invalid_client`.
fn refused_url_client_assertion(refusal: Refusal) -> OAuthError {
    match refusal {
        Refusal::KeysUnavailable(_) => DocumentRefusal::Unavailable.into(),
        other => refused_assertion(other),
    }
}

async fn verify_assertion(
    keys: &impl KeySource<Signer = Arc<RegisteredClient>>,
    refused: fn(Refusal) -> OAuthError,
    assertion: &str,
    claimed_id: Option<&str>,
    ctx: AuthContext<'_>,
    revocations: &RevocationGate,
    now: UnixTime,
) -> Result<Arc<RegisteredClient>, OAuthError> {
    let bad = || failed("client.assertion_invalid", "client assertion is invalid");
    // RFC 7523 names no `typ`; `exp` is required and bounds how long the `jti` is kept.
    let profile = Profile::new(Types::Any, ctx.max_token_bytes, now, ctx.leeway).max_lifetime(MAX_ASSERTION_LIFETIME);
    let jws = read(assertion, &profile, keys, NO_MEMORY).await.map_err(refused)?;
    let claims = jws.claims().map_err(refused)?;
    let iss = str_claim(claims, "iss").ok_or_else(bad)?;
    if str_claim(claims, "sub") != Some(iss) || claimed_id.is_some_and(|c| c != iss) {
        return Err(failed(
            "client.assertion_subject",
            "client assertion iss and sub must both be the client_id",
        ));
    }
    // RFC 7523 §3: the audience is this server, and nothing else.
    let aud = audiences(claims);
    if aud.len() != 1 || !aud.iter().all(|a| *a == ctx.issuer || *a == ctx.token_endpoint) {
        return Err(failed(
            "client.assertion_audience",
            "client assertion audience must be this issuer or its token endpoint",
        ));
    }
    let jti = str_claim(claims, "jti").filter(|j| !j.is_empty()).ok_or_else(bad)?;
    let exp = jws.times.exp.ok_or_else(bad)?;
    let client = &jws.signer;
    let once_id = format!("assertion:{}:{jti}", client.id());
    // Single use across replicas: the store remembers the jti until the assertion expires.
    let first_use = revocations
        .use_once(&once_id, exp.saturating_add(ctx.leeway), now)
        .await?;
    if first_use {
        Ok(Arc::clone(client))
    } else {
        Err(failed(
            "client.assertion_replay",
            "client assertion has already been used",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_hex_sha256() {
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
