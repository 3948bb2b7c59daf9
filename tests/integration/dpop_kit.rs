//! The MCP kit with a DPoP-bound inbound token, end to end over real HTTP: the agent
//! presents its bound token to a kit-protected rmcp server with a fresh proof on every
//! request; a tool's `token_for` exchanges it at the real mcp-sts with the kit's own
//! key, which is a delegation to another key and so must be named (the token's
//! `may_act`, or the issuer's `dpop_delegates`); the downstream token is bound to the
//! kit's key. A call short of a tool's scope is challenged in the `DPoP` scheme.

use std::sync::Arc;
use std::time::Duration;

use crate::dpop_downstream::challenge;
use crate::support::sts::{ORDERS_MCP_SECRET, Options, TestSts, decode_claims};
use mcp_sts_demo::dpop_transport::DpopHttpClient;
use mcp_sts_downstream::client::{DpopKey, StsClient, StsClientConfig};
use mcp_sts_downstream::mcp::{
    Caller, McpAuth, McpAuthBuilder, Protected, ScopedTools, TokenError, ToolGate, TrustedIssuer, requires_scope,
};
use mcp_sts_downstream::verify::dpop::challenge_algs;
use rmcp::model::{CallToolRequestParams, CallToolResult, ListToolsResult, PaginatedRequestParams};
use rmcp::service::{RequestContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ErrorData, RoleClient, RoleServer, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The agent application, as the IdP registered it.
const AGENT: &str = "claude-desktop";

/// An orders MCP server written with the kit.
#[derive(Clone)]
struct BoundTools {
    tools: ScopedTools<Self>,
}

#[tool_router]
impl BoundTools {
    fn new(gate: ToolGate) -> Self {
        Self {
            tools: gate.tools(Self::tool_router()),
        }
    }

    #[tool(description = "A token for the orders API", meta = requires_scope("orders:read"))]
    async fn orders_token(&self, caller: Caller) -> Result<String, TokenError> {
        let minted = caller.token_for("orders-api").await?;
        Ok(json!({
            "token_type": minted.token_type,
            "claims": decode_claims(minted.access_token.expose()),
            "inbound_key": caller.key_thumbprint(),
        })
        .to_string())
    }

    #[tool(description = "Change an order", meta = requires_scope("orders:write"))]
    async fn update_order(&self, caller: Caller) -> String {
        caller.user().to_owned()
    }
}

#[tool_handler(router = self.tools)]
impl ServerHandler for BoundTools {
    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.tools.list(&context)
    }
}

impl Protected for BoundTools {
    fn tools(&self) -> &ScopedTools<Self> {
        &self.tools
    }
}

/// mcp-sts, and the kit-protected MCP server exchanging as `orders-mcp` with its key.
struct World {
    sts: TestSts,
    resource: String,
    kit_key: DpopKey,
}

impl World {
    async fn start(issuer_extra: &str, configure: impl FnOnce(McpAuthBuilder) -> McpAuthBuilder) -> Self {
        let sts = TestSts::start_opts(Options {
            issuer_extra: format!("agent_claim = \"client_id\"\n{issuer_extra}"),
            ..Options::default()
        })
        .await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let resource = format!("http://{}/mcp", listener.local_addr().unwrap());
        let kit_key = DpopKey::generate().unwrap();
        let exchange = StsClient::new(
            StsClientConfig::new(format!("{}/token", sts.url), "orders-mcp", ORDERS_MCP_SECRET)
                .with_dpop(kit_key.clone()),
        )
        .unwrap()
        .with_clock(Arc::new(sts.clock.clone()));
        let builder = McpAuth::builder(&resource)
            .trust(TrustedIssuer::discover(sts.idp.issuer()))
            .scopes_supported(["orders:read", "orders:write"])
            .exchange_with(exchange)
            .clock(Arc::new(sts.clock.clone()))
            .jwks_min_refresh_interval(Duration::ZERO);
        let auth = configure(builder).build().await.unwrap();
        let app = auth.serve(BoundTools::new);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { sts, resource, kit_key }
    }

    /// alice's token from the IdP to the agent, for this server and mcp-sts, bound to
    /// `agent_key`, with `extra` claims (`null` removes one).
    fn bound_token(&self, agent_key: &DpopKey, scope: &str, extra: Value) -> String {
        let mut claims = json!({
            "aud": [&self.resource, "mcp-sts"],
            "client_id": AGENT,
            "scope": scope,
            "cnf": {"jkt": agent_key.thumbprint()},
        });
        for (name, value) in extra.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(name);
            } else {
                claims[name] = value.clone();
            }
        }
        self.sts
            .idp
            .user_token(
                "alice@example.com",
                "mcp-sts",
                &["developer"],
                self.sts.clock_now(),
                3600,
                &claims,
            )
            .unwrap()
    }

    /// The agent's MCP session: every request carries the token as `DPoP` and a proof.
    async fn connect(&self, agent_key: &DpopKey, token: &str) -> RunningService<RoleClient, ()> {
        let http = DpopHttpClient::new(agent_key.clone(), token, Arc::new(self.sts.clock.clone()));
        let transport = StreamableHttpClientTransport::with_client(
            http,
            StreamableHttpClientTransportConfig::with_uri(&*self.resource),
        );
        ().serve(transport).await.unwrap()
    }

    fn metadata(&self) -> String {
        format!(
            "resource_metadata=\"{}\"",
            self.resource
                .replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
        )
    }

    /// A raw `tools/call` of `tool`, presented as `presentation` gives it.
    async fn post_tool_call(&self, tool: &str, presentation: Vec<(&'static str, String)>) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .post(&self.resource)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-method", "tools/call")
            .header("mcp-name", tool)
            .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                          "params": {"name": tool, "arguments": {}}}));
        for (name, value) in presentation {
            request = request.header(name, value);
        }
        request.send().await.unwrap()
    }

    /// `token` as `DPoP` with a fresh proof by `key` for a POST to this server.
    fn dpop(&self, key: &DpopKey, token: &str) -> Vec<(&'static str, String)> {
        let proof = key
            .proof("POST", &self.resource, self.sts.clock_now(), Some(token), None)
            .unwrap();
        vec![("authorization", format!("DPoP {token}")), ("dpop", proof)]
    }
}

async fn call(client: &RunningService<RoleClient, ()>, tool: &'static str) -> CallToolResult {
    client.call_tool(CallToolRequestParams::new(tool)).await.unwrap()
}

fn text(result: &CallToolResult) -> String {
    result.content.first().and_then(|c| c.as_text()).unwrap().text.clone()
}

/// The audit's last event.
fn last_refusal(sts: &TestSts) -> Value {
    sts.audit_events().pop().unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_for_rebinds_a_bound_inbound_token_to_the_kits_key_when_may_act_names_it() {
    let world = World::start("", |builder| builder).await;
    let agent_key = DpopKey::generate().unwrap();

    // may_act names this server's client: the delegation to its key is allowed.
    let named = world.bound_token(&agent_key, "orders:read", json!({"may_act": {"sub": "orders-mcp"}}));
    let agent = world.connect(&agent_key, &named).await;
    let result = call(&agent, "orders_token").await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let answer: Value = serde_json::from_str(&text(&result)).unwrap();
    assert_eq!(answer["inbound_key"], agent_key.thumbprint());
    assert_eq!(answer["token_type"], "DPoP");
    let claims = &answer["claims"];
    assert_eq!(claims["aud"], "orders-api");
    assert_eq!(claims["sub"], "alice@example.com");
    // Bound to the kit's key, never the agent's, and never unbound.
    assert_eq!(claims["cnf"]["jkt"], world.kit_key.thumbprint());
    assert_ne!(claims["cnf"]["jkt"], agent_key.thumbprint());
    // The chain records the agent's binding on the agent's entry.
    assert_eq!(claims["act"]["sub"], "orders-mcp");
    assert_eq!(claims["act"]["act"]["sub"], AGENT);
    assert_eq!(claims["act"]["act"]["cnf_jkt"], agent_key.thumbprint());
    agent.cancel().await.unwrap();

    // Not named: the exchange is refused, the tool reads a refusal, nothing is minted.
    let unnamed = world.bound_token(&agent_key, "orders:read", json!({}));
    let agent = world.connect(&agent_key, &unnamed).await;
    let minted_before = world
        .sts
        .audit_events()
        .iter()
        .filter(|e| e["decision"] == "allow")
        .count();
    let refused = call(&agent, "orders_token").await;
    assert_eq!(refused.is_error, Some(true), "{refused:?}");
    let error = refused.structured_content.clone().unwrap();
    assert_eq!(error["error"], "invalid_request", "{error}");
    assert_eq!(error["audience"], "orders-api");
    assert_eq!(
        last_refusal(&world.sts)["reason"],
        "invalid_request:subject_token.dpop_delegation"
    );
    assert_eq!(
        world
            .sts
            .audit_events()
            .iter()
            .filter(|e| e["decision"] == "allow")
            .count(),
        minted_before
    );

    // may_act naming another client does not name this one.
    let elsewhere = world.bound_token(&agent_key, "orders:read", json!({"may_act": {"sub": "notes-mcp"}}));
    let agent2 = world.connect(&agent_key, &elsewhere).await;
    let refused = call(&agent2, "orders_token").await;
    assert_eq!(refused.structured_content.unwrap()["error"], "invalid_request");
    agent.cancel().await.unwrap();
    agent2.cancel().await.unwrap();

    // The session's token copied and sent as Bearer: refused at the kit.
    let copied = world
        .post_tool_call("orders_token", vec![("authorization", format!("Bearer {named}"))])
        .await;
    assert_eq!(copied.status(), 401);
    assert!(challenge(&copied).starts_with("DPoP error=\"invalid_token\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_for_rebinds_when_the_issuer_names_the_kit_as_a_dpop_delegate() {
    let world = World::start("dpop_delegates = [\"orders-mcp\"]", |builder| builder).await;
    let agent_key = DpopKey::generate().unwrap();
    let token = world.bound_token(&agent_key, "orders:read", json!({}));
    let agent = world.connect(&agent_key, &token).await;
    let result = call(&agent, "orders_token").await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let answer: Value = serde_json::from_str(&text(&result)).unwrap();
    assert_eq!(answer["token_type"], "DPoP");
    assert_eq!(answer["claims"]["cnf"]["jkt"], world.kit_key.thumbprint());
    assert_eq!(answer["claims"]["act"]["act"]["cnf_jkt"], agent_key.thumbprint());
    agent.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_token_short_of_a_scope_is_challenged_in_the_dpop_scheme() {
    let world = World::start("", |builder| builder.require_scopes(["orders:read"])).await;
    let agent_key = DpopKey::generate().unwrap();
    let algs = challenge_algs();
    let metadata = world.metadata();

    // A session makes the server's tools known to the layer.
    let token = world.bound_token(&agent_key, "orders:read", json!({"may_act": {"sub": "orders-mcp"}}));
    let agent = world.connect(&agent_key, &token).await;

    // A tool whose scope the bound token lacks: step up, in the DPoP scheme.
    let response = world
        .post_tool_call("update_order", world.dpop(&agent_key, &token))
        .await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        challenge(&response),
        format!("DPoP error=\"insufficient_scope\", scope=\"orders:read orders:write\", algs=\"{algs}\", {metadata}")
    );

    // Short of the server-wide scope: the same scheme.
    let no_scope = world.bound_token(&agent_key, "orders:write", json!({}));
    let response = world
        .post_tool_call("update_order", world.dpop(&agent_key, &no_scope))
        .await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        challenge(&response),
        format!("DPoP error=\"insufficient_scope\", scope=\"orders:read\", algs=\"{algs}\", {metadata}")
    );

    // An unbound token short of the same scopes keeps the Bearer scheme.
    let unbound = world.bound_token(&agent_key, "orders:read", json!({"cnf": null}));
    let response = world
        .post_tool_call("update_order", vec![("authorization", format!("Bearer {unbound}"))])
        .await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        challenge(&response),
        format!("Bearer error=\"insufficient_scope\", scope=\"orders:read orders:write\", {metadata}")
    );
    agent.cancel().await.unwrap();
}
