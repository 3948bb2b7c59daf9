//! What the demo produced, in a shape tests can assert on.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::trail::TrailEntry;

/// A refused tool call: who refused it and with which HTTP status and error code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Denial {
    /// The party that refused: `mcp-sts`, `orders-api`, `inventory-api`, `legacy-api`, `orders-mcp`.
    pub by: String,
    /// The HTTP status of the refusal.
    pub status: u16,
    /// The error code (`invalid_scope`, `invalid_token`, `order_not_found`, ...).
    pub code: String,
    /// The refusal's description.
    #[serde(default)]
    pub description: String,
}

/// How one tool call ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    /// The tool answered with this value.
    Allowed(Value),
    /// The tool call was refused.
    Denied(Denial),
}

impl CallOutcome {
    /// The answer, when allowed.
    pub fn allowed(&self) -> Option<&Value> {
        match self {
            CallOutcome::Allowed(value) => Some(value),
            CallOutcome::Denied(_) => None,
        }
    }

    /// The refusal, when denied.
    pub fn denied(&self) -> Option<&Denial> {
        match self {
            CallOutcome::Denied(denial) => Some(denial),
            CallOutcome::Allowed(_) => None,
        }
    }
}

/// One tool call of the story.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCall {
    /// A stable id of the step, e.g. `alice_reads_own_order`.
    pub step: &'static str,
    /// The user whose token the agent sent.
    pub user: &'static str,
    /// The tool called.
    pub tool: &'static str,
    /// How it ended.
    pub outcome: CallOutcome,
    /// What the downstream services recorded during the call.
    pub trail: Vec<TrailEntry>,
}

impl ToolCall {
    /// The answer, when the call was allowed.
    pub fn allowed(&self) -> Option<&Value> {
        self.outcome.allowed()
    }

    /// The refusal, when the call was denied.
    pub fn denied(&self) -> Option<&Denial> {
        self.outcome.denied()
    }
}

/// One request the agent itself made at mcp-sts's token endpoint (enterprise-managed
/// authorization): asking for an identity assertion grant, or redeeming one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenStep {
    /// A stable id of the step, e.g. `alice_gets_grant`.
    pub step: &'static str,
    /// The user the request was for.
    pub user: &'static str,
    /// The grant used: `token-exchange` (for an ID-JAG) or `jwt-bearer` (redeeming one).
    pub grant_type: &'static str,
    /// Allowed: the response's `token_type`, `issued_token_type`, `scope`, and the
    /// issued token's JOSE `header` and `claims` (decoded, never the token itself).
    /// Denied: who refused and with which code.
    pub outcome: CallOutcome,
}

impl TokenStep {
    /// The answer, when the request was granted.
    pub fn allowed(&self) -> Option<&Value> {
        self.outcome.allowed()
    }

    /// The refusal, when it was denied.
    pub fn denied(&self) -> Option<&Denial> {
        self.outcome.denied()
    }
}

/// A revocation a downstream service heard on its Shared Signals stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamDelivery {
    /// The service that heard it.
    pub service: &'static str,
    /// What was revoked, as `kind:value` (e.g. `subject:carol@example.com`).
    pub revoked: String,
    /// From the admin's revocation to the service holding it, in milliseconds.
    pub after_ms: u128,
}

/// Everything the demo did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DemoOutcome {
    /// Every tool call, in order.
    pub calls: Vec<ToolCall>,
    /// Every token request the agent made itself, in order.
    pub token_steps: Vec<TokenStep>,
    /// Subjects revoked during the story.
    pub offboarded: Vec<String>,
    /// Revocations that reached a service through Shared Signals.
    pub stream_deliveries: Vec<StreamDelivery>,
    /// The downstream services' audit trail.
    pub trail: Vec<TrailEntry>,
    /// The STS's audit events (JSON, as emitted).
    pub sts_audit: Vec<Value>,
}

impl DemoOutcome {
    /// The call of step `step`.
    pub fn call(&self, step: &str) -> Option<&ToolCall> {
        self.calls.iter().find(|c| c.step == step)
    }

    /// The token request of step `step`.
    pub fn token_step(&self, step: &str) -> Option<&TokenStep> {
        self.token_steps.iter().find(|t| t.step == step)
    }

    /// The delegation modes downstream services saw in verified tokens.
    pub fn modes_used(&self) -> BTreeSet<String> {
        self.trail.iter().map(|e| e.mode.clone()).collect()
    }
}
