//! The agent side: an MCP client over streamable HTTP that presents the access token it
//! holds for the user: as `Authorization: Bearer`, or, for a token mcp-sts bound to the
//! agent's key, as `Authorization: DPoP` with a fresh proof on every request
//! ([`super::dpop_transport`]). The token names the agent in `client_id`, so nothing
//! else identifies the agent (MCP's own model: the agent application is the OAuth client).

use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::{StreamableHttpClient, StreamableHttpClientTransportConfig};
use rmcp::{RoleClient, ServiceExt};
use serde_json::Value;

use super::DemoError;
use super::dpop_transport::DpopHttpClient;
use super::outcome::{CallOutcome, Denial};
use mcp_sts_contract::clock::{Clock, SystemClock};
use mcp_sts_downstream::client::{DpopKey, Secret};

/// One user's conversation with the MCP server through the agent.
pub struct AgentSession {
    client: RunningService<RoleClient, ()>,
    url: String,
    access_token: Secret,
    key: Option<DpopKey>,
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
        Self::open(reqwest::Client::default(), config, access_token, None).await
    }

    /// Connect with an access token bound to `key`: every request carries it as
    /// `DPoP` with a proof for that request, so the token alone opens nothing.
    pub async fn connect_bound(url: &str, access_token: &str, key: DpopKey) -> Result<Self, DemoError> {
        let http = DpopHttpClient::new(key.clone(), access_token, std::sync::Arc::new(SystemClock));
        let config = StreamableHttpClientTransportConfig::with_uri(url);
        Self::open(http, config, access_token, Some(key)).await
    }

    async fn open<C: StreamableHttpClient>(
        http: C,
        config: StreamableHttpClientTransportConfig,
        access_token: &str,
        key: Option<DpopKey>,
    ) -> Result<Self, DemoError> {
        let url = config.uri.to_string();
        let client = ()
            .serve(StreamableHttpClientTransport::with_client(http, config))
            .await
            .map_err(|e| DemoError::Mcp(format!("cannot initialise the MCP session: {e}")))?;
        Ok(Self {
            client,
            url,
            access_token: Secret::new(access_token),
            key,
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
        let token = self.access_token.expose();
        let presentation = match &self.key {
            Some(key) => {
                let proof = key
                    .proof("POST", &self.url, SystemClock.now(), Some(token), None)
                    .ok()?;
                vec![("authorization", format!("DPoP {token}")), ("dpop", proof)]
            }
            None => vec![("authorization", format!("Bearer {token}"))],
        };
        mcp_refusal(&self.url, &presentation).await
    }

    /// What a copy of this session's token gets from the MCP server replayed as a
    /// bearer token, without the key: its refusal, or `None` when it was accepted.
    pub async fn replay_as_bearer(&self) -> Option<Denial> {
        let copied = format!("Bearer {}", self.access_token.expose());
        mcp_refusal(&self.url, &[("authorization", copied)]).await
    }

    /// End the session.
    pub async fn close(self) {
        let _ = self.client.cancel().await;
    }
}

/// The MCP server at `url`'s answer to a plain request presented with `presentation`
/// (the `Authorization` and `DPoP` headers): its refusal, read from the status and the
/// `WWW-Authenticate` challenge, or `None` when it accepts the request.
pub async fn mcp_refusal(url: &str, presentation: &[(&str, String)]) -> Option<Denial> {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .json(&serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "tools/list"}));
    for (name, value) in presentation {
        request = request.header(*name, value);
    }
    let response = request.send().await.ok()?;
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
