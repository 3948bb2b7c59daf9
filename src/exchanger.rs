//! The narrow view of the service that a decision at the token endpoint needs (an
//! exchange, an identity assertion grant issued or redeemed), the authenticated call
//! each starts from, the final steps each ends with (`finish`), and the answer each
//! gives: what `exchange` and `grant` share, so neither reaches into the other.

mod finish;

use std::sync::Arc;

use serde::Serialize;

pub(crate) use finish::{Decision, Minted, Presented};

use crate::client_auth::{AuthContext, Clients, RegisteredClient};
use crate::config::TokensConfig;
use crate::dpop::TokenEndpoint;
use crate::grant::AuthorizationServers;
use crate::inbound::Issuers;
use crate::inbound::validate::Limits;
use crate::keys::KeyRing;
use crate::policy::Audiences;
use crate::revocation::RevocationGate;
use mcp_sts_contract::clock::UnixTime;
use mcp_sts_contract::jose::VerifiedTokens;
use mcp_sts_contract::jose::dpop::Proof;

/// What the exchange needs of the service, and nothing more.
#[derive(Clone, Copy)]
pub struct Exchanger<'a> {
    /// Our issuer URL: `iss` of what we mint, and how we recognise our own tokens.
    pub issuer: &'a str,
    /// The registered callers.
    pub clients: &'a Clients,
    /// The downstream audiences and their policy.
    pub audiences: &'a Audiences,
    /// The authorization servers we issue identity assertion grants for.
    pub authorization_servers: &'a AuthorizationServers,
    /// The trusted upstream issuers.
    pub issuers: &'a Issuers,
    /// The key ring of this request: verifies our own tokens, signs the new one.
    pub keys: &'a KeyRing,
    /// The revocation store, behind its deadline.
    pub revocations: &'a RevocationGate,
    /// Lifetimes and the delegation depth limit.
    pub tokens: &'a TokensConfig,
    /// Size and clock-skew limits of inbound tokens.
    pub limits: Limits,
    /// Signatures of inbound tokens already verified.
    pub verified: &'a VerifiedTokens,
    /// What client authentication needs.
    pub auth: AuthContext<'a>,
    /// Per-client and per-subject rate limits.
    pub rate_limits: &'a crate::rate_limit::RateLimits,
    /// `[dpop]`: whether proofs must carry server nonces.
    pub dpop: crate::config::DpopConfig,
}

impl Exchanger<'_> {
    /// What checking a DPoP proof at `/token` needs.
    pub(crate) fn token_endpoint(&self) -> TokenEndpoint<'_> {
        TokenEndpoint {
            url: self.auth.token_endpoint,
            nonce: self.dpop.nonce,
            keys: self.keys,
        }
    }
}

/// One call at `/token` once the front has authenticated the caller and checked its
/// DPoP proof (not yet spent): what every grant's decision starts from.
pub(crate) struct Call<'a> {
    /// The service as the decision sees it.
    pub ctx: Exchanger<'a>,
    /// The authenticated caller.
    pub client: Arc<RegisteredClient>,
    /// The request's DPoP proof, checked but not spent; `None` when there is none.
    pub proof: Option<Proof>,
    /// The W3C `traceparent` header.
    pub traceparent: Option<&'a str>,
    /// The time the request is judged at.
    pub now: UnixTime,
}

impl Call<'_> {
    /// The thumbprint of the key what this call mints is bound to: the proof's.
    pub(crate) fn bound_key(&self) -> Option<String> {
        self.proof.as_ref().map(|p| p.jkt.clone())
    }
}

/// RFC 8693 §2.2.1 (and RFC 6749 §5.1) successful response.
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    /// The minted token (or, for an identity assertion grant, the grant).
    pub access_token: String,
    /// What kind of token it is (token exchange only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
    /// `Bearer`, `DPoP` for a token bound to the caller's key (RFC 9449 §5), or `N_A`
    /// for an identity assertion grant.
    pub token_type: &'static str,
    /// Seconds until expiry.
    pub expires_in: u64,
    /// Granted scopes.
    pub scope: String,
}
