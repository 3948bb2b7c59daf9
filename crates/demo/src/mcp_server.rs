//! The MCP server: tools over streamable HTTP, protected by the MCP server kit
//! ([`mcp_sts_downstream::mcp`]). The kit validates the agent's access token (issued by the IdP for
//! this server, naming the agent in `client_id`) and hands each tool the [`Caller`];
//! a tool asks for a narrow token for one downstream service with
//! [`Caller::token_for`] and calls that service. The raw user token never reaches a
//! tool, let alone a downstream service.

use std::sync::Arc;

use axum::Router;
use reqwest::header::WWW_AUTHENTICATE;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::StreamableHttpServerConfig;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::{ErrorData, RoleServer, ServerHandler, schemars, tool, tool_handler, tool_router};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::orders_api;
use super::outcome::Denial;
use super::services::{INVENTORY_AUDIENCE, LEGACY_AUDIENCE};
use mcp_sts_downstream::client::StsClient;
use mcp_sts_downstream::mcp::{Caller, McpAuth, Protected, ScopedTools, TokenError, ToolGate};
use mcp_sts_downstream::verify::RevocationStreamConfig;

/// The client id of the MCP server at mcp-sts.
pub const CLIENT_ID: &str = "orders-mcp";

/// Where the downstream services are.
#[derive(Debug, Clone)]
pub struct Downstreams {
    /// Base URL of the orders API.
    pub orders: String,
    /// Base URL of the inventory API.
    pub inventory: String,
    /// Base URL of the legacy profile API.
    pub legacy: String,
}

/// What every tool call shares: the downstream addresses and an HTTP client.
#[derive(Debug)]
pub struct Backend {
    http: reqwest::Client,
    downstreams: Downstreams,
}

impl Backend {
    /// A backend calling `downstreams`.
    pub fn new(downstreams: Downstreams) -> Self {
        Self {
            http: reqwest::Client::new(),
            downstreams,
        }
    }
}

/// The orders tools ask for no particular scope: mcp-sts then grants the user's whole
/// entitlement for orders-api (a developer `orders:read`; an order admin also
/// `orders:write` and `orders:admin`), and orders-api decides per operation.
const ORDERS_SCOPES: &[&str] = &[];

/// One downstream call a tool makes.
struct Call<'a> {
    audience: &'a str,
    scopes: &'a [&'a str],
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
}

/// `get_order` arguments.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct OrderRef {
    /// The order number.
    pub order_id: u32,
}

/// `update_order` arguments.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct OrderUpdate {
    /// The order number.
    pub order_id: u32,
    /// The new status, e.g. `shipped`.
    pub status: String,
}

/// `check_stock` arguments.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct StockQuery {
    /// The product's SKU.
    pub sku: String,
}

/// The MCP server's tools.
#[derive(Debug, Clone)]
pub struct OrdersMcp {
    backend: Arc<Backend>,
    tools: ScopedTools<Self>,
}

#[tool_router]
impl OrdersMcp {
    /// A handler sharing `backend`, its tools made through the kit's `gate`.
    pub fn new(backend: Arc<Backend>, gate: &ToolGate) -> Self {
        Self {
            backend,
            tools: gate.tools(Self::tool_router()),
        }
    }

    #[tool(description = "Read one order. Users see their own orders; order admins see all.")]
    async fn get_order(
        &self,
        Parameters(OrderRef { order_id }): Parameters<OrderRef>,
        caller: Caller,
    ) -> Result<CallToolResult, ErrorData> {
        let url = format!("{}/orders/{order_id}", self.backend.downstreams.orders);
        Ok(self
            .run(&caller, Call::get(orders_api::AUDIENCE, ORDERS_SCOPES, url))
            .await)
    }

    #[tool(description = "Change an order's status (needs the right to write orders).")]
    async fn update_order(
        &self,
        Parameters(OrderUpdate { order_id, status }): Parameters<OrderUpdate>,
        caller: Caller,
    ) -> Result<CallToolResult, ErrorData> {
        let call = Call {
            audience: orders_api::AUDIENCE,
            scopes: ORDERS_SCOPES,
            method: reqwest::Method::PATCH,
            url: format!("{}/orders/{order_id}", self.backend.downstreams.orders),
            body: Some(json!({ "status": status })),
        };
        Ok(self.run(&caller, call).await)
    }

    #[tool(
        description = "Your recent order activity. The user is the one whose token is presented; it takes no user argument."
    )]
    async fn get_recent_activity(&self, caller: Caller) -> Result<CallToolResult, ErrorData> {
        let url = format!("{}/activity", self.backend.downstreams.orders);
        Ok(self
            .run(&caller, Call::get(orders_api::AUDIENCE, ORDERS_SCOPES, url))
            .await)
    }

    #[tool(description = "Check stock of a product at the internal inventory service.")]
    async fn check_stock(
        &self,
        Parameters(StockQuery { sku }): Parameters<StockQuery>,
        caller: Caller,
    ) -> Result<CallToolResult, ErrorData> {
        let sku: String = form_urlencoded::byte_serialize(sku.as_bytes()).collect();
        let url = format!("{}/stock/{sku}", self.backend.downstreams.inventory);
        Ok(self
            .run(&caller, Call::get(INVENTORY_AUDIENCE, &["inventory:read"], url))
            .await)
    }

    #[tool(description = "Read your profile from the legacy profile service.")]
    async fn legacy_profile(&self, caller: Caller) -> Result<CallToolResult, ErrorData> {
        let url = format!("{}/profile", self.backend.downstreams.legacy);
        Ok(self
            .run(&caller, Call::get(LEGACY_AUDIENCE, &["legacy:read"], url))
            .await)
    }
}

impl<'a> Call<'a> {
    fn get(audience: &'a str, scopes: &'a [&'a str], url: String) -> Self {
        Self {
            audience,
            scopes,
            method: reqwest::Method::GET,
            url,
            body: None,
        }
    }
}

#[tool_handler(router = self.tools)]
impl ServerHandler for OrdersMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_instructions("Orders tools. Every call acts for the user whose access token the agent presents.")
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.tools.list(&context)
    }
}

impl Protected for OrdersMcp {
    fn tools(&self) -> &ScopedTools<Self> {
        &self.tools
    }
}

/// A quoted parameter of a `WWW-Authenticate` challenge, e.g. `error`.
fn challenge_param(challenge: &str, name: &str) -> Option<String> {
    let start = challenge.find(&format!("{name}=\""))? + name.len() + 2;
    let rest = challenge.get(start..)?;
    Some(rest.split('"').next()?.to_owned())
}

fn denied(denial: Denial) -> CallToolResult {
    CallToolResult::structured_error(serde_json::to_value(denial).unwrap_or(Value::Null))
}

impl OrdersMcp {
    /// Get a token for `call.audience` from mcp-sts, then make the call.
    async fn run(&self, caller: &Caller, call: Call<'_>) -> CallToolResult {
        let minted = match caller.token_for_scopes(call.audience, call.scopes).await {
            Ok(minted) => minted,
            Err(error) => return denied(sts_denial(&error)),
        };
        // Bound to the MCP server's key: presented with a fresh proof for this request.
        let headers = match caller.authorization(&minted, call.method.as_str(), &call.url) {
            Ok(headers) => headers,
            Err(error) => return denied(sts_denial(&error)),
        };
        let mut http = self.backend.http.request(call.method, &call.url);
        for (name, value) in headers {
            http = http.header(name, value);
        }
        if let Some(body) = call.body {
            http = http.json(&body);
        }
        let response = match http.send().await {
            Ok(response) => response,
            Err(error) => return denied(unreachable(call.audience, &error.without_url().to_string())),
        };
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return CallToolResult::structured(json!({ "audience": call.audience, "result": body }));
        }
        let from_challenge = |name| challenge.as_deref().and_then(|c| challenge_param(c, name));
        let code = from_challenge("error")
            .or_else(|| body.get("error").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| match status {
                503 => "temporarily_unavailable".to_owned(),
                other => format!("http_{other}"),
            });
        let description = from_challenge("error_description")
            .or_else(|| body.get("error_description").and_then(Value::as_str).map(str::to_owned))
            .or_else(|| from_challenge("scope").map(|scope| format!("needs scope {scope}")))
            .unwrap_or_default();
        denied(Denial {
            by: call.audience.into(),
            status,
            code,
            description,
        })
    }
}

fn sts_denial(error: &TokenError) -> Denial {
    let status = match error {
        TokenError::Refused { code, .. } if code.as_str() == "invalid_client" => 401,
        TokenError::Refused { .. } => 400,
        _ => 503,
    };
    let description = match error {
        TokenError::Refused { description, .. } => description.clone().unwrap_or_default(),
        other => other.to_string(),
    };
    Denial {
        by: "mcp-sts".into(),
        status,
        code: error.code().to_owned(),
        description,
    }
}

fn unreachable(service: &str, why: &str) -> Denial {
    Denial {
        by: service.into(),
        status: 502,
        code: "unreachable".into(),
        description: why.into(),
    }
}

/// The MCP endpoint (at the kit's resource path) and its protected resource metadata,
/// stopping its sessions on `shutdown`.
pub fn router(auth: &McpAuth, backend: Arc<Backend>, mut shutdown: watch::Receiver<bool>) -> Router {
    let config = StreamableHttpServerConfig::default().with_sse_keep_alive(None);
    let cancel = config.cancellation_token.clone();
    tokio::spawn(async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
        cancel.cancel();
    });
    auth.serve_with(config, Arc::new(LocalSessionManager::default()), move |gate| {
        OrdersMcp::new(Arc::clone(&backend), &gate)
    })
}

/// The kit for the demo's MCP server at `resource`, trusting the access tokens of
/// `issuers` (the demo's IdP, and mcp-sts as the authorization server that redeems
/// identity assertion grants for it), exchanging at mcp-sts with `sts` and hearing its
/// revocations on the stream `revocations` describes.
pub async fn auth(
    resource: &str,
    issuers: &[&str],
    sts: StsClient,
    revocations: RevocationStreamConfig,
) -> Result<McpAuth, mcp_sts_downstream::mcp::McpAuthError> {
    let mut builder = McpAuth::builder(resource);
    for issuer in issuers {
        builder = builder.trust(mcp_sts_downstream::mcp::TrustedIssuer::discover(*issuer));
    }
    builder
        .resource_name("Orders MCP (mcp-sts demo)")
        .exchange_with(sts)
        .revocations(revocations)
        .build()
        .await
}
