//! The agent side: an MCP client over streamable HTTP that presents the access token the
//! IdP issued it for the user as `Authorization: Bearer`. The token names the agent in
//! `client_id`, so nothing else identifies the agent (MCP's own model: the agent
//! application is the OAuth client).

use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt};
use serde_json::Value;

use super::DemoError;
use super::outcome::{CallOutcome, Denial};
use mcp_sts_downstream::client::Secret;

/// One user's conversation with the MCP server through the agent.
pub struct AgentSession {
    client: RunningService<RoleClient, ()>,
    url: String,
    access_token: Secret,
}

impl std::fmt::Debug for AgentSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentSession").finish_non_exhaustive()
    }
}

impl AgentSession {
    /// Connect to the MCP endpoint `url` with the agent's access token for a user.
    pub async fn connect(url: &str, access_token: &str) -> Result<Self, DemoError> {
        let config = StreamableHttpClientTransportConfig::with_uri(url).auth_header(access_token);
        let transport = StreamableHttpClientTransport::from_config(config);
        let client = ()
            .serve(transport)
            .await
            .map_err(|e| DemoError::Mcp(format!("cannot initialise the MCP session: {e}")))?;
        Ok(Self {
            client,
            url: url.to_owned(),
            access_token: Secret::new(access_token),
        })
    }

    /// Call `tool` with `arguments` (a JSON object) and read how it ended.
    pub async fn call(&self, tool: &'static str, arguments: Value) -> Result<CallOutcome, DemoError> {
        let mut params = CallToolRequestParams::new(tool);
        if let Value::Object(arguments) = arguments {
            params = params.with_arguments(arguments);
        }
        let result = match self.client.call_tool(params).await {
            Ok(result) => result,
            Err(error) => {
                // The MCP server itself may have refused the request (its kit answers
                // with an HTTP challenge, not a tool result): ask it what it says.
                return match self.refusal().await {
                    Some(denial) => Ok(CallOutcome::Denied(denial)),
                    None => Err(DemoError::Mcp(format!(
                        "tool {tool} failed at the protocol level: {error}"
                    ))),
                };
            }
        };
        let structured = result.structured_content.unwrap_or(Value::Null);
        if result.is_error == Some(true) {
            let denial: Denial = serde_json::from_value(structured)
                .map_err(|_| DemoError::Mcp(format!("tool {tool} returned an unreadable error")))?;
            return Ok(CallOutcome::Denied(denial));
        }
        Ok(CallOutcome::Allowed(
            structured.get("result").cloned().unwrap_or(Value::Null),
        ))
    }

    /// The MCP server's refusal of this session's token, read from a plain request's
    /// status and `WWW-Authenticate` challenge; `None` when it accepts the token.
    async fn refusal(&self) -> Option<Denial> {
        let response = reqwest::Client::new()
            .post(&self.url)
            .bearer_auth(self.access_token.expose())
            .header("accept", "application/json, text/event-stream")
            .json(&serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "tools/list"}))
            .send()
            .await
            .ok()?;
        let status = response.status().as_u16();
        if !matches!(status, 400 | 401 | 403 | 503) {
            return None;
        }
        let challenge = response
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let param = |name: &str| {
            let start = challenge.find(&format!("{name}=\""))? + name.len() + 2;
            challenge.get(start..)?.split('"').next().map(str::to_owned)
        };
        Some(Denial {
            by: super::mcp_server::CLIENT_ID.into(),
            status,
            code: param("error").unwrap_or_else(|| "temporarily_unavailable".into()),
            description: param("error_description").unwrap_or_default(),
        })
    }

    /// End the session.
    pub async fn close(self) {
        let _ = self.client.cancel().await;
    }
}
