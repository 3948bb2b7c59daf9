//! The kit as a Shared Signals receiver: with mcp-sts client credentials it subscribes
//! to mcp-sts's revocation stream through the verifier's receiver
//! ([`RevocationStream`], with its staleness and coverage rules), refuses MCP tokens
//! whose lineage a heard revocation reaches (by the contract's one lineage and issuer
//! rules), and drops cached downstream tokens of a revoked lineage.

use std::sync::Arc;

use crate::client::StsClient;
use crate::verify::{RevocationStream, RevocationStreamConfig, StreamVerdict, VerifyError};
use mcp_sts_contract::AccessClaims;
use mcp_sts_contract::clock::{Clock, UnixTime};
use mcp_sts_contract::revocation::{derived_session_id, lineage, upstream_lineage};
use mcp_sts_contract::{Actor, claims};

use super::bearer::BearerToken;

/// The subscription and the task polling it; the task ends with the kit.
pub(crate) struct Revocations {
    stream: Arc<RevocationStream>,
    poller: tokio::task::JoinHandle<()>,
}

impl Drop for Revocations {
    fn drop(&mut self) {
        self.poller.abort();
    }
}

impl Revocations {
    /// Subscribe with `config` and poll at its interval by `clock`; after each poll that
    /// applied something, drop `sts`'s cached tokens that a heard revocation reaches.
    pub(crate) fn start(
        config: RevocationStreamConfig,
        clock: Arc<dyn Clock>,
        sts: Option<Arc<StsClient>>,
    ) -> Result<Self, VerifyError> {
        let stream = Arc::new(RevocationStream::new(config)?);
        let heard = Arc::clone(&stream);
        let poller = Arc::clone(&stream).spawn_with(clock, move |applied| {
            if let (true, Some(sts)) = (applied > 0, &sts) {
                let dropped = sts.forget_revoked(&|claims| revokes(&heard, claims));
                if dropped > 0 {
                    tracing::info!(dropped, "dropped cached downstream tokens of a revoked lineage");
                }
            }
        });
        Ok(Self { stream, poller })
    }

    /// The stream, for callers that want to watch or poll it.
    pub(crate) fn stream(&self) -> &Arc<RevocationStream> {
        &self.stream
    }

    /// Refuse an MCP token a heard revocation reaches, or one the stream cannot vouch
    /// for (stale, or issued before what it covers: the kit has no introspection to
    /// fall back on, so that fails closed).
    pub(crate) fn check(&self, token: &BearerToken, now: UnixTime) -> Result<(), VerifyError> {
        let verdict = if token.issuer == self.stream.issuer() {
            // A token mcp-sts minted for this server (enterprise-managed authorization).
            let claims = AccessClaims::from_claims(token.claims.clone())
                .map_err(|e| VerifyError::Malformed(format!("not an mcp-sts access token: {e}")))?;
            self.stream.check(&claims, now)?
        } else {
            let session = token
                .session
                .clone()
                .unwrap_or_else(|| derived_session_id(&token.issuer, token.token_id.as_deref(), &token.claims));
            let chain = upstream_chain(token);
            let actors = chain.iter().map(|sub| (sub.as_str(), Some(token.issuer.as_str())));
            let keys = upstream_lineage(&token.issuer, &token.user, &session, actors);
            self.stream.check_foreign(&keys, token.issued_at, now)?
        };
        match verdict {
            StreamVerdict::Clear => Ok(()),
            StreamVerdict::AskIntrospection => Err(VerifyError::RevocationStreamStale(
                "the MCP server kit has no introspection to fall back on".into(),
            )),
        }
    }

    /// Whether a heard revocation reaches a downstream token with these claims.
    pub(crate) fn revokes(&self, claims: &AccessClaims) -> bool {
        revokes(&self.stream, claims)
    }
}

fn revokes(stream: &RevocationStream, claims: &AccessClaims) -> bool {
    stream.revokes(&lineage(claims), claims.iat)
}

/// The actors an identity provider's token names, each its issuer's: the agent
/// application (the kit's agent claim) and any `act` chain it carries (an unreadable
/// one adds nothing here; mcp-sts refuses it at exchange).
fn upstream_chain(token: &BearerToken) -> Vec<String> {
    let mut chain: Vec<String> = token.agent.iter().cloned().collect();
    if let Some(act) = token.claims.get("act")
        && let Ok(act) = serde_json::from_value::<Actor>(act.clone())
        && act.depth() <= claims::MAX_CHAIN_DEPTH
    {
        chain.extend(act.chain());
    }
    chain
}
