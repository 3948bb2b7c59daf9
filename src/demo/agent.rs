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

/// One user's conversation with the MCP server through the agent.
pub struct AgentSession {
    client: RunningService<RoleClient, ()>,
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
        Ok(Self { client })
    }

    /// Call `tool` with `arguments` (a JSON object) and read how it ended.
    pub async fn call(&self, tool: &'static str, arguments: Value) -> Result<CallOutcome, DemoError> {
        let mut params = CallToolRequestParams::new(tool);
        if let Value::Object(arguments) = arguments {
            params = params.with_arguments(arguments);
        }
        let result = self
            .client
            .call_tool(params)
            .await
            .map_err(|e| DemoError::Mcp(format!("tool {tool} failed at the protocol level: {e}")))?;
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

    /// End the session.
    pub async fn close(self) {
        let _ = self.client.cancel().await;
    }
}
