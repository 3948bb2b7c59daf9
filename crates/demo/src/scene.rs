//! The stage of the story: the narrator, one scene's bookkeeping, and the requests a
//! scene makes (through the agent and the MCP server, or directly).

use serde_json::Value;

use super::agent::AgentSession;
use super::outcome::{CallOutcome, DemoOutcome, Denial, ToolCall};
use super::users::{self, DemoUser};
use super::{Demo, DemoError};
use mcp_sts_downstream::client::{ExchangeRequest, Secret, StsError};

/// Tells the story as it happens (or stays quiet, for tests).
#[derive(Debug, Clone, Copy)]
pub struct Narrator {
    print: Option<fn(&str)>,
}

impl Narrator {
    /// A narrator that hands each line to `print` (the command's way of writing output).
    pub fn printing(print: fn(&str)) -> Self {
        Self { print: Some(print) }
    }

    /// A narrator that says nothing.
    pub fn quiet() -> Self {
        Self { print: None }
    }

    /// Tell one line.
    pub fn say(&self, line: &str) {
        if let Some(print) = self.print {
            print(line);
        }
    }
}

/// One user's session plus the bookkeeping of the story.
pub(super) struct Scene<'a> {
    pub(super) demo: &'a Demo,
    pub(super) narrator: Narrator,
    pub(super) outcome: &'a mut DemoOutcome,
}

impl Scene<'_> {
    pub(super) async fn connect(&self, user: DemoUser) -> Result<AgentSession, DemoError> {
        let now = self.demo.now();
        let key = self.demo.agent_key.clone();
        let token = user.bound_token_for(&self.demo.idp, &self.demo.urls.mcp, now, key.thumbprint())?;
        self.narrator.say(&format!(
            "\n== {} ({}, roles: {}) opens a session with agent {} (its token bound to the agent's DPoP key, a proof on every request) ==",
            user.name,
            user.sub,
            if user.roles.is_empty() {
                "none".to_owned()
            } else {
                user.roles.join(", ")
            },
            users::AGENT
        ));
        AgentSession::connect_bound(&self.demo.urls.mcp, &token, key).await
    }

    pub(super) async fn call(
        &mut self,
        session: &AgentSession,
        user: DemoUser,
        step: &'static str,
        what: &str,
        tool: &'static str,
        arguments: Value,
    ) -> Result<(), DemoError> {
        self.narrator.say(&format!("-> {} {what}  [tool {tool}]", user.name));
        let seen = self.demo.trail.entries().len();
        let outcome = session.call(tool, arguments).await?;
        self.record(step, user, tool, outcome, seen);
        Ok(())
    }

    /// `session`'s token copied (say, from a log) and replayed at the MCP server as a
    /// bearer token by someone without the agent's key.
    pub(super) async fn replay_copied(&mut self, session: &AgentSession, user: DemoUser, step: &'static str) {
        self.narrator.say(&format!(
            "-> {}'s token copied from the agent (say, from a log) and replayed as a bearer token at the MCP server",
            user.name
        ));
        let seen = self.demo.trail.entries().len();
        let outcome = match session.replay_as_bearer().await {
            Some(denial) => CallOutcome::Denied(denial),
            None => CallOutcome::Allowed(Value::String("the MCP server accepted a copied token".into())),
        };
        self.record(step, user, "-", outcome, seen);
    }

    /// A request that does not go through the MCP server: what a holder of `token`
    /// (the MCP server's client credentials, or a token it was handed) could try.
    pub(super) async fn direct(
        &mut self,
        user: DemoUser,
        step: &'static str,
        what: &str,
        request: Direct<'_>,
    ) -> Result<(), DemoError> {
        self.narrator.say(&format!("-> {what}"));
        let seen = self.demo.trail.entries().len();
        let outcome = match request {
            Direct::OrdersApi { token, path } => call_orders_api(&self.demo.urls.orders, token, path).await,
            Direct::Exchange { token, audience } => exchange_as_mcp_server(self.demo, token, audience).await,
        };
        self.record(step, user, "-", outcome, seen);
        Ok(())
    }

    pub(super) fn record(
        &mut self,
        step: &'static str,
        user: DemoUser,
        tool: &'static str,
        outcome: CallOutcome,
        seen: usize,
    ) {
        let trail: Vec<_> = self.demo.trail.entries().into_iter().skip(seen).collect();
        match &outcome {
            CallOutcome::Allowed(value) => self.narrator.say(&format!("   allowed: {value}")),
            CallOutcome::Denied(d) => self.narrator.say(&format!(
                "   DENIED by {}: HTTP {} {}{}",
                d.by,
                d.status,
                d.code,
                if d.description.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", d.description)
                }
            )),
        }
        for entry in &trail {
            self.narrator.say(&format!(
                "   {} audit: {}  [mode {}]",
                entry.service, entry.line, entry.mode
            ));
        }
        self.outcome.calls.push(ToolCall {
            step,
            user: user.sub,
            tool,
            outcome,
            trail,
        });
    }
}

/// A request the story makes without the MCP server.
pub(super) enum Direct<'a> {
    /// `GET {orders-api}{path}` with `token`.
    OrdersApi {
        /// The bearer token.
        token: &'a str,
        /// The path, e.g. `/orders/77`.
        path: &'a str,
    },
    /// Exchange `token` at mcp-sts for `audience` with the MCP server's credentials and
    /// its DPoP key.
    Exchange {
        /// The subject token.
        token: &'a str,
        /// The downstream audience.
        audience: &'a str,
    },
}

/// The orders API's answer to `token`, as the demo reports outcomes.
async fn call_orders_api(base: &str, token: &str, path: &str) -> CallOutcome {
    let response = match reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
    {
        Ok(response) => response,
        Err(error) => {
            return CallOutcome::Denied(Denial {
                by: super::orders_api::AUDIENCE.into(),
                status: 502,
                code: "unreachable".into(),
                description: error.without_url().to_string(),
            });
        }
    };
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if (200..300).contains(&status) {
        return CallOutcome::Allowed(body);
    }
    let param = |name: &str| {
        let start = challenge.find(&format!("{name}=\""))? + name.len() + 2;
        challenge.get(start..)?.split('"').next().map(str::to_owned)
    };
    CallOutcome::Denied(Denial {
        by: super::orders_api::AUDIENCE.into(),
        status,
        code: param("error")
            .or_else(|| body.get("error").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| format!("http_{status}")),
        description: param("error_description").unwrap_or_default(),
    })
}

/// Exchange `token` for `audience` as the MCP server (`orders-mcp`) would, proving
/// possession of its key; the minted token's claims when granted.
async fn exchange_as_mcp_server(demo: &Demo, token: &str, audience: &str) -> CallOutcome {
    let exchanged = async {
        let client = demo.mcp_server_bound_client()?;
        let request = ExchangeRequest::new(Secret::new(token)).audience(audience);
        Ok::<_, DemoError>(client.exchange_uncached(&request).await)
    }
    .await;
    match exchanged {
        Ok(Ok(minted)) => CallOutcome::Allowed(
            mcp_sts_contract::jose::compact::claims(minted.access_token.expose())
                .map(Value::Object)
                .unwrap_or(Value::Null),
        ),
        Ok(Err(StsError::OAuth {
            status,
            code,
            description,
        })) => CallOutcome::Denied(Denial {
            by: "mcp-sts".into(),
            status,
            code: code.as_str().to_owned(),
            description: description.unwrap_or_default(),
        }),
        Ok(Err(other)) => CallOutcome::Denied(Denial {
            by: "mcp-sts".into(),
            status: 0,
            code: "unreachable".into(),
            description: other.to_string(),
        }),
        Err(error) => CallOutcome::Denied(Denial {
            by: "mcp-sts".into(),
            status: 0,
            code: "unreachable".into(),
            description: error.to_string(),
        }),
    }
}
