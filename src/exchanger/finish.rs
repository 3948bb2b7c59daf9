//! The final steps every grant at `/token` ends with, written once: nothing the
//! request answers for is revoked (one store round trip), the scopes are decided, the
//! trace id is chosen, the proof is spent, the token is signed and the answer written.

use super::{Call, TokenResponse};
use crate::audit::AuditEvent;
use crate::config::AudienceConfig;
use crate::dpop::spend;
use crate::error::OAuthError;
use crate::lineage::Lineage;
use crate::mint::{NewToken, new_jti, sign, sign_id_jag};
use crate::policy::{Entitlement, decide_scopes, grantable};
use crate::request::trace_id;
use mcp_sts_contract::IdJagClaims;
use mcp_sts_contract::urn::{ID_JAG_TOKEN_TYPE, NOT_APPLICABLE_TOKEN_TYPE};

/// What the request presented, which decides how a revoked entry in its lineage reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presented {
    /// A subject token: a revoked lineage makes it unacceptable (`invalid_request`,
    /// RFC 8693 §2.2.2).
    Token,
    /// An authorization grant being redeemed: a revoked lineage makes the grant
    /// unusable (`invalid_grant`, RFC 6749 §5.2).
    Grant,
}

/// What a grant's decision found before its final steps: who and what the request
/// answers for, and what it may be granted under which policy.
pub(crate) struct Decision<'d> {
    /// Every revocation entry that can end the request.
    pub lineage: Lineage,
    /// How a revoked entry reads.
    pub presented: Presented,
    /// The scopes asked for (`scope`).
    pub requested: &'d [String],
    /// What the user may be granted.
    pub entitlement: &'d Entitlement,
    /// The scope policy of the audience or resource.
    pub policy: &'d AudienceConfig,
}

/// What is signed at the end: an access token, or an identity assertion grant.
pub(crate) enum Minted {
    /// An access token.
    Access {
        /// What it says, before its audience's mode decides how.
        token: NewToken,
        /// `issued_token_type` of the answer (token exchange only).
        issued_token_type: Option<&'static str>,
    },
    /// An identity assertion grant.
    IdJag {
        /// Its claims.
        claims: IdJagClaims,
        /// Seconds until it expires.
        expires_in: u64,
        /// The granted scopes, space-separated (empty when none).
        scope: String,
    },
}

impl Call<'_> {
    /// Nothing in the lineage is revoked, then the scopes granted (space-separated,
    /// recorded in the audit event).
    pub(crate) async fn settle(&self, decision: Decision<'_>, audit: &mut AuditEvent) -> Result<String, OAuthError> {
        let verdict = decision.lineage.check(self.ctx.revocations, self.now).await?;
        match decision.presented {
            Presented::Token => verdict.into_exchange_result()?,
            Presented::Grant => verdict.into_grant_result()?,
        }
        let grantable = grantable(decision.policy, decision.entitlement);
        let scope = decide_scopes(decision.requested, &grantable, decision.policy)?.join(" ");
        audit.scope = Some(scope.clone());
        Ok(scope)
    }

    /// The new token's trace id: the request's `traceparent`, else the one `carried`
    /// by the subject, else the current span's, else a fresh one (recorded in the
    /// audit event).
    pub(crate) fn txn(&self, carried: Option<String>, audit: &mut AuditEvent) -> String {
        let txn = trace_id(self.traceparent)
            .or(carried)
            .or_else(crate::spans::current_trace_id)
            .unwrap_or_else(new_jti);
        audit.txn = Some(txn.clone());
        txn
    }

    /// Spend the proof (once across replicas, so a refusal before this point leaves it
    /// unspent), sign with the current key, and answer (RFC 8693 §2.2.1).
    pub(crate) async fn mint(&self, minted: Minted, audit: &mut AuditEvent) -> Result<TokenResponse, OAuthError> {
        spend(self.proof.as_ref(), self.ctx.revocations, self.now).await?;
        let key = self.ctx.keys.signing_key(self.now);
        match minted {
            Minted::Access {
                token,
                issued_token_type,
            } => {
                let (expires_in, scope) = (token.ttl, token.scope.clone());
                let claims = token.into_claims();
                audit.jti = Some(claims.jti.clone());
                Ok(TokenResponse {
                    access_token: sign(key, &claims)?,
                    issued_token_type,
                    token_type: claims.token_type(),
                    expires_in,
                    scope,
                })
            }
            Minted::IdJag {
                claims,
                expires_in,
                scope,
            } => {
                audit.jti = Some(claims.jti.clone());
                Ok(TokenResponse {
                    access_token: sign_id_jag(key, &claims)?,
                    issued_token_type: Some(ID_JAG_TOKEN_TYPE),
                    token_type: NOT_APPLICABLE_TOKEN_TYPE,
                    expires_in,
                    scope,
                })
            }
        }
    }
}
