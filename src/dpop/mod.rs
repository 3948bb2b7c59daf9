//! DPoP at the token endpoint (RFC 9449 §5): a proof read by the one pipeline
//! ([`mcp_sts_contract::jose::dpop`]), made for `POST` on our token endpoint, carrying a current
//! server nonce when `[dpop] nonce` demands one, and never seen before on any replica
//! (its `jti`, scoped by its key, is a once-only marker in the revocation store, spent
//! just before a token is minted so a refusal does not use it up). What it binds: the
//! minted token's `cnf.jkt` (and, for identity assertion grants, the grant's).

pub(crate) mod nonce;

use crate::client_auth::RegisteredClient;
use crate::config::{AudienceConfig, DpopMode};
use crate::error::OAuthError;
use crate::keys::KeyRing;
use crate::revocation::RevocationGate;
use mcp_sts_contract::clock::UnixTime;
use mcp_sts_contract::jose::dpop::{Proof, ProofError, read_proof};

/// The `DPoP` request header as received (RFC 9449 §4.3: at most one).
#[derive(Debug, Clone, Default)]
pub enum ProofHeader {
    /// No proof.
    #[default]
    Absent,
    /// One proof.
    One(String),
    /// More than one `DPoP` header: refused.
    Many,
}

/// What checking a proof at `/token` needs of the service.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokenEndpoint<'a> {
    /// Our token endpoint URL, as metadata publishes it: what `htu` must name.
    pub url: &'a str,
    /// Demand server nonces.
    pub nonce: bool,
    /// The key ring nonces are derived from.
    pub keys: &'a KeyRing,
}

/// The proof of a `/token` request by `client`, checked but not yet spent; `None`
/// when there is none (allowed unless the client requires one) or the client's
/// tokens are never bound (`dpop = "off"` ignores a proof).
pub(crate) async fn token_proof(
    endpoint: TokenEndpoint<'_>,
    header: &ProofHeader,
    client: &RegisteredClient,
    now: UnixTime,
) -> Result<Option<Proof>, OAuthError> {
    let mode = client.config.dpop;
    let text = match header {
        _ if mode == DpopMode::Off => return Ok(None),
        ProofHeader::Absent if mode == DpopMode::Required => {
            return Err(OAuthError::invalid_dpop_proof(
                "dpop.required_by_client",
                "this client must send a DPoP proof",
            ));
        }
        ProofHeader::Absent => return Ok(None),
        ProofHeader::Many => {
            return Err(OAuthError::invalid_dpop_proof("dpop.many", "more than one DPoP header"));
        }
        ProofHeader::One(text) => text,
    };
    let proof = read_proof(text, now).await.map_err(refused)?;
    proof.check_request("POST", endpoint.url).map_err(refused)?;
    if endpoint.nonce
        && !proof
            .nonce
            .as_deref()
            .is_some_and(|presented| nonce::is_current(endpoint.keys, presented, now))
    {
        return Err(OAuthError::use_dpop_nonce(
            "dpop.nonce",
            nonce::issue(endpoint.keys, now),
        ));
    }
    Ok(Some(proof))
}

/// An audience with `require_dpop` never receives a bearer token.
pub(crate) fn required_by_audience(proof: Option<&Proof>, audience: &AudienceConfig) -> Result<(), OAuthError> {
    if audience.require_dpop && proof.is_none() {
        return Err(OAuthError::invalid_dpop_proof(
            "dpop.required_by_audience",
            "tokens for this audience are issued only with a DPoP proof",
        ));
    }
    Ok(())
}

/// Spend the proof: its `jti` is refused if any replica saw it within the window.
pub(crate) async fn spend(
    proof: Option<&Proof>,
    revocations: &RevocationGate,
    now: UnixTime,
) -> Result<(), OAuthError> {
    let Some(proof) = proof else {
        return Ok(());
    };
    if revocations
        .use_once(&proof.marker(), proof.remember_until(), now)
        .await?
    {
        Ok(())
    } else {
        Err(OAuthError::invalid_dpop_proof(
            "dpop.replay",
            "the DPoP proof has already been used",
        ))
    }
}

/// A proof's refusal as `invalid_dpop_proof`, naming the rule.
pub(crate) fn refused(error: ProofError) -> OAuthError {
    let rule = match &error {
        ProofError::Jws(_) => "dpop.invalid",
        ProofError::Claim(_) => "dpop.claims",
        ProofError::Method => "dpop.htm",
        ProofError::Target => "dpop.htu",
        ProofError::TokenHash => "dpop.ath",
        ProofError::KeyMismatch => "dpop.key",
    };
    OAuthError::invalid_dpop_proof(rule, format!("invalid DPoP proof: {error}"))
}
