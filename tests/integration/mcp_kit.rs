//! The MCP server kit in a real rmcp streamable-HTTP server on 127.0.0.1:0, called by
//! rmcp's own client with access tokens from the development IdP that name the agent
//! application in `client_id`, exchanging at the real mcp-sts.

use std::sync::Arc;
use std::time::Duration;

use crate::support::sts::{ORDERS_MCP_SECRET, Options, TestSts, decode_claims};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use mcp_sts_demo::dev_idp::{AgentGrant, DevIdp};
use mcp_sts_downstream::client::{StsClient, StsClientConfig};
use mcp_sts_downstream::mcp::{
    Caller, McpAuth, McpAuthError, Protected, ScopedTools, TokenError, ToolGate, TrustedIssuer, requires_scope,
};
use mcp_sts_downstream::verify::{RevocationStream, RevocationStreamConfig};
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolRequestParams, CallToolResult, ListToolsResult, PaginatedRequestParams};
use rmcp::service::{RequestContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ErrorData, RoleClient, RoleServer, ServerHandler, ServiceExt, schemars, tool, tool_handler, tool_router};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The agent application, as the IdP registered it.
const AGENT: &str = "claude-desktop";

/// `update_order` arguments.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct OrderRef {
    /// The order number.
    order_id: u32,
}

/// A small orders MCP server written with the kit.
#[derive(Clone)]
struct OrdersTools {
    tools: ScopedTools<Self>,
}

#[tool_router]
impl OrdersTools {
    fn new(gate: ToolGate) -> Self {
        Self {
            tools: gate.tools(Self::tool_router()),
        }
    }

    /// Everything a tool can see of its request: the caller, and the HTTP parts rmcp
    /// hands over (headers and extensions), so the test can look for the raw token.
    #[tool(description = "Who is calling")]
    async fn whoami(&self, caller: Caller, Extension(parts): Extension<Parts>) -> String {
        json!({
            "caller": caller,
            "caller_debug": format!("{caller:?}"),
            "parts_debug": format!("{parts:?}"),
            "has_authorization": parts.headers.contains_key(AUTHORIZATION),
            "describe": caller.describe(),
        })
        .to_string()
    }

    #[tool(description = "A token for the orders API", meta = requires_scope("orders:read"))]
    async fn orders_token(&self, caller: Caller) -> Result<String, TokenError> {
        let minted = caller.token_for("orders-api").await?;
        Ok(decode_claims(minted.access_token.expose()).to_string())
    }

    #[tool(description = "Change an order", meta = requires_scope("orders:write"))]
    async fn update_order(&self, caller: Caller, Parameters(OrderRef { order_id }): Parameters<OrderRef>) -> String {
        format!("{} updated order {order_id}", caller.user())
    }

    #[tool(description = "A token for an API this server may not reach")]
    async fn payroll_token(&self, caller: Caller) -> Result<String, TokenError> {
        caller.token_for("payroll-api").await?;
        Ok("unexpected".into())
    }
}

#[tool_handler(router = self.tools)]
impl ServerHandler for OrdersTools {
    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.tools.list(&context)
    }
}

impl Protected for OrdersTools {
    fn tools(&self) -> &ScopedTools<Self> {
        &self.tools
    }
}

/// mcp-sts (taking the agent from `client_id`), and the kit-protected MCP server.
struct World {
    sts: TestSts,
    resource: String,
}

impl World {
    async fn start() -> Self {
        Self::start_with(|builder| builder).await
    }

    async fn start_with(
        configure: impl FnOnce(mcp_sts_downstream::mcp::McpAuthBuilder) -> mcp_sts_downstream::mcp::McpAuthBuilder,
    ) -> Self {
        Self::start_full(false, |_, builder| configure(builder)).await.0
    }

    /// mcp-sts with its admin API, and the kit subscribed to its revocation stream as
    /// `orders-mcp` (no leeway: one clock; a long staleness bound, since the test moves
    /// the clock in jumps between polls).
    async fn start_subscribed() -> (Self, McpAuth) {
        Self::start_full(true, |sts_url, builder| {
            let mut stream = RevocationStreamConfig::new(sts_url, "orders-mcp", ORDERS_MCP_SECRET);
            stream.leeway = Duration::ZERO;
            stream.max_staleness = Duration::from_secs(3600);
            stream.poll_interval = Duration::from_millis(200);
            builder.revocations(stream)
        })
        .await
    }

    async fn start_full(
        admin: bool,
        configure: impl FnOnce(&str, mcp_sts_downstream::mcp::McpAuthBuilder) -> mcp_sts_downstream::mcp::McpAuthBuilder,
    ) -> (Self, McpAuth) {
        let sts = TestSts::start_opts(Options {
            issuer_extra: "agent_claim = \"client_id\"".into(),
            admin,
            ..Options::default()
        })
        .await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let resource = format!("http://{}/mcp", listener.local_addr().unwrap());
        let exchange = StsClient::new(StsClientConfig::new(
            format!("{}/token", sts.url),
            "orders-mcp",
            ORDERS_MCP_SECRET,
        ))
        .unwrap();
        let builder = McpAuth::builder(&resource)
            .trust(TrustedIssuer::discover(sts.idp.issuer()))
            .scopes_supported(["orders:read", "orders:write"])
            .resource_name("Orders MCP")
            .exchange_with(exchange)
            .clock(Arc::new(sts.clock.clone()))
            .jwks_min_refresh_interval(Duration::ZERO);
        let auth = configure(&sts.url, builder).build().await.unwrap();
        let app = auth.serve(OrdersTools::new);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (Self { sts, resource }, auth)
    }

    /// An access token the IdP issued to the agent for `user`, for `audiences`.
    fn token(&self, user: &str, roles: &[&str], scope: &str, audiences: &[&str]) -> String {
        let grant = AgentGrant {
            user,
            roles,
            agent: AGENT,
            agent_claim: "client_id",
            audiences,
            scope,
        };
        self.sts.idp.agent_token(&grant, self.sts.clock_now(), 3600).unwrap()
    }

    /// alice (developer), allowed to read orders through this MCP server.
    fn alice(&self) -> String {
        self.alice_at(self.sts.clock_now())
    }

    /// alice's token as issued at `iat`.
    fn alice_at(&self, iat: u64) -> String {
        let grant = AgentGrant {
            user: "alice@example.com",
            roles: &["developer"],
            agent: AGENT,
            agent_claim: "client_id",
            audiences: &[&self.resource, "mcp-sts"],
            scope: "orders:read",
        };
        self.sts.idp.agent_token(&grant, iat, 3600).unwrap()
    }

    fn metadata_url(&self) -> String {
        self.resource
            .replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
    }

    async fn connect(&self, token: &str) -> Result<RunningService<RoleClient, ()>, String> {
        self.connect_traced(token, None).await
    }

    /// Connect, sending a W3C `traceparent` on every request when given.
    async fn connect_traced(
        &self,
        token: &str,
        traceparent: Option<&'static str>,
    ) -> Result<RunningService<RoleClient, ()>, String> {
        let mut config = StreamableHttpClientTransportConfig::with_uri(self.resource.as_str()).auth_header(token);
        if let Some(traceparent) = traceparent {
            config = config.custom_headers(std::collections::HashMap::from([(
                HeaderName::from_static("traceparent"),
                HeaderValue::from_static(traceparent),
            )]));
        }
        ().serve(StreamableHttpClientTransport::from_config(config))
            .await
            .map_err(|e| e.to_string())
    }

    async fn post(&self, token: Option<&str>) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .post(&self.resource)
            .header("accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }
}

async fn call(client: &RunningService<RoleClient, ()>, tool: &'static str, arguments: Value) -> CallToolResult {
    let mut params = CallToolRequestParams::new(tool);
    if let Value::Object(arguments) = arguments {
        params = params.with_arguments(arguments);
    }
    client.call_tool(params).await.unwrap()
}

fn text(result: &CallToolResult) -> String {
    result
        .content
        .first()
        .and_then(|c| c.as_text())
        .map(|t| t.text.clone())
        .unwrap_or_default()
}

fn challenge(response: &reqwest::Response) -> String {
    response.headers()["www-authenticate"].to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_see_the_user_and_the_agent_never_the_token() {
    let world = World::start().await;
    let token = world.alice();
    let client = world.connect(&token).await.unwrap();

    let result = call(&client, "whoami", json!({})).await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let seen: Value = serde_json::from_str(&text(&result)).unwrap();
    assert_eq!(seen["caller"]["user"], "alice@example.com");
    assert_eq!(seen["caller"]["agent"], AGENT);
    assert_eq!(seen["caller"]["client"], "orders-mcp");
    assert_eq!(seen["caller"]["issuer"], world.sts.idp.issuer());
    assert_eq!(seen["caller"]["scopes"], json!(["orders:read"]));
    assert_eq!(seen["caller"]["trace_id"].as_str().unwrap().len(), 32);
    assert!(seen["caller"]["mcp_session"].is_string(), "{seen}");
    assert_eq!(
        seen["describe"],
        "alice@example.com via agent claude-desktop (orders-mcp)"
    );

    // The token is nowhere a tool can look: not in the headers rmcp passes on, not in
    // the caller (as JSON or Debug), not in the whole answer.
    assert_eq!(seen["has_authorization"], false);
    let signature = token.rsplit('.').next().unwrap();
    let payload = token.split('.').nth(1).unwrap();
    for fragment in [token.as_str(), signature, payload] {
        assert!(!text(&result).contains(fragment), "the raw token reached a tool");
    }
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_may_be_named_by_azp() {
    let world = World::start().await;
    let grant = AgentGrant {
        user: "alice@example.com",
        roles: &["developer"],
        agent: "cursor",
        agent_claim: "azp",
        audiences: &[&world.resource],
        scope: "",
    };
    let token = world.sts.idp.agent_token(&grant, world.sts.clock_now(), 600).unwrap();
    let client = world.connect(&token).await.unwrap();
    let seen: Value = serde_json::from_str(&text(&call(&client, "whoami", json!({})).await)).unwrap();
    assert_eq!(
        (seen["caller"]["user"].as_str(), seen["caller"]["agent"].as_str()),
        (Some("alice@example.com"), Some("cursor"))
    );
    assert_eq!(seen["caller"]["scopes"], json!([]));
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_list_and_call_are_filtered_by_scope() {
    let world = World::start().await;
    let alice = world.connect(&world.alice()).await.unwrap();
    let names = |tools: Vec<rmcp::model::Tool>| tools.into_iter().map(|t| t.name.to_string()).collect::<Vec<_>>();

    // alice holds orders:read only: update_order is hidden, and when called anyway the
    // call never reaches the tool: rmcp's client reads the 403 scope challenge.
    let listed = names(alice.list_all_tools().await.unwrap());
    assert_eq!(listed, ["orders_token", "payroll_token", "whoami"]);
    let refused = alice
        .call_tool(
            CallToolRequestParams::new("update_order")
                .with_arguments(json!({"order_id": 42}).as_object().unwrap().clone()),
        )
        .await
        .unwrap_err();
    let challenged = format!("{refused:?}");
    assert!(
        challenged.contains("insufficient_scope") && challenged.contains("scope=\\\"orders:write\\\""),
        "{challenged}"
    );

    // bob holds both scopes and sees, and may use, every tool; the declared scope is
    // published in the tool's _meta.
    let bob_token = world.token(
        "bob@example.com",
        &["order-admin"],
        "orders:read orders:write",
        &[&world.resource, "mcp-sts"],
    );
    let bob = world.connect(&bob_token).await.unwrap();
    let tools = bob.list_all_tools().await.unwrap();
    let update = tools.iter().find(|t| t.name == "update_order").unwrap();
    assert_eq!(
        update.meta.as_ref().unwrap().0["mcp-sts/required_scopes"],
        json!(["orders:write"])
    );
    assert_eq!(
        names(tools),
        ["orders_token", "payroll_token", "update_order", "whoami"]
    );
    let done = call(&bob, "update_order", json!({"order_id": 42})).await;
    assert_ne!(done.is_error, Some(true), "{done:?}");
    assert_eq!(text(&done), "bob@example.com updated order 42");
    bob.cancel().await.unwrap();
}

/// A JSON-RPC `tools/call` of `tool` with `token`, sent as a client of protocol
/// 2026-07-28 would when `with_headers` (naming the call in `Mcp-Method`/`Mcp-Name`),
/// else as an older client that only has the body.
async fn post_tool_call(world: &World, token: &str, tool: &str, with_headers: bool) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(&world.resource)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                      "params": {"name": tool, "arguments": {"order_id": 42}}}));
    if with_headers {
        request = request.header("mcp-method", "tools/call").header("mcp-name", tool);
    }
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_call_without_the_tools_scope_is_challenged_with_only_that_scope() {
    let world = World::start().await;
    let metadata = format!("resource_metadata=\"{}\"", world.metadata_url());
    // A session makes the server's tools known to the layer.
    let alice = world.connect(&world.alice()).await.unwrap();
    let token = world.alice();

    for with_headers in [true, false] {
        let response = post_tool_call(&world, &token, "update_order", with_headers).await;
        assert_eq!(response.status(), 403, "headers: {with_headers}");
        assert_eq!(
            challenge(&response),
            format!("Bearer error=\"insufficient_scope\", scope=\"orders:write\", {metadata}"),
            "headers: {with_headers}"
        );
    }
    // SEP-2243 sends a name that is not plain ASCII base64-wrapped; the layer decodes it.
    let named = reqwest::Client::new()
        .post(&world.resource)
        .bearer_auth(&token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "=?base64?dXBkYXRlX29yZGVy?=")
        .json(&json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"name": "update_order"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(named.status(), 403, "a base64-encoded Mcp-Name is decoded");

    // A tool alice's scope covers, and a tool that declares none, pass the layer.
    for tool in ["orders_token", "whoami"] {
        let response = post_tool_call(&world, &token, tool, true).await;
        assert_ne!(response.status(), 403, "{tool}");
        assert!(response.headers().get("www-authenticate").is_none(), "{tool}");
    }
    assert_ne!(
        call(&alice, "whoami", json!({})).await.is_error,
        Some(true),
        "the session still works"
    );
    alice.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_challenge_adds_the_server_wide_scopes_and_never_offline_access() {
    let world = World::start_with(|b| {
        b.require_scopes(["orders:read", "offline_access"]).scopes_supported([
            "orders:read",
            "orders:write",
            "offline_access",
        ])
    })
    .await;
    let metadata = format!("resource_metadata=\"{}\"", world.metadata_url());
    let alice = world.connect(&world.alice()).await.unwrap();

    let response = post_tool_call(&world, &world.alice(), "update_order", true).await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        challenge(&response),
        format!("Bearer error=\"insufficient_scope\", scope=\"orders:read orders:write\", {metadata}")
    );
    assert_eq!(
        challenge(&world.post(None).await),
        format!("Bearer {metadata}, scope=\"orders:read\"")
    );
    let document: Value = reqwest::get(world.metadata_url()).await.unwrap().json().await.unwrap();
    assert_eq!(document["scopes_supported"], json!(["orders:read", "orders:write"]));
    alice.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_for_exchanges_at_mcp_sts_and_refusals_are_tool_errors() {
    let world = World::start().await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let client = world.connect_traced(&world.alice(), Some(traceparent)).await.unwrap();

    let result = call(&client, "orders_token", json!({})).await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let claims: Value = serde_json::from_str(&text(&result)).unwrap();
    assert_eq!(claims["sub"], "alice@example.com");
    // The agent's trace reaches the downstream token.
    assert_eq!(claims["txn"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(claims["aud"], "orders-api");
    assert_eq!(claims["client_id"], "orders-mcp");
    assert_eq!(claims["scope"], "orders:read");
    assert_eq!(claims["act"]["sub"], "orders-mcp");

    // An audience mcp-sts does not allow this server: a readable tool error, no token.
    let refused = call(&client, "payroll_token", json!({})).await;
    assert_eq!(refused.is_error, Some(true));
    let error = refused.structured_content.unwrap();
    assert_eq!(error["error"], "invalid_target");
    assert_eq!(error["audience"], "payroll-api");
    assert!(!error.to_string().contains("eyJ"), "{error}");
    client.cancel().await.unwrap();
}

/// With `agent_claim = "client_id"` on the issuer and no actor token, mcp-sts names the
/// agent behind the MCP server in the downstream token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downstream_token_names_the_agent_behind_the_mcp_server() {
    let world = World::start().await;
    let client = world.connect(&world.alice()).await.unwrap();
    let result = call(&client, "orders_token", json!({})).await;
    let claims: Value = serde_json::from_str(&text(&result)).unwrap();
    assert_eq!(
        claims["act"],
        json!({"sub": "orders-mcp", "sub_profile": "service",
               "act": {"sub": AGENT, "iss": world.sts.idp.issuer(), "sub_profile": "ai_agent"}}),
        "{claims}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_challenge_with_the_resource_metadata() {
    let world = World::start().await;
    let metadata = format!("resource_metadata=\"{}\"", world.metadata_url());

    let none = world.post(None).await;
    assert_eq!(none.status(), 401);
    assert_eq!(challenge(&none), format!("Bearer {metadata}"));

    // A token for another resource (no token passthrough: it is not ours to accept).
    let other = world.token(
        "alice@example.com",
        &["developer"],
        "orders:read",
        &["http://127.0.0.1:1/mcp", "mcp-sts"],
    );
    let expired = world
        .sts
        .idp
        .agent_token(
            &AgentGrant {
                user: "alice@example.com",
                roles: &[],
                agent: AGENT,
                agent_claim: "client_id",
                audiences: &[&world.resource],
                scope: "",
            },
            world.sts.clock_now() - 7200,
            3600,
        )
        .unwrap();
    let stranger = DevIdp::start_local().await.unwrap();
    let untrusted = stranger
        .agent_token(
            &AgentGrant {
                user: "alice@example.com",
                roles: &[],
                agent: AGENT,
                agent_claim: "client_id",
                audiences: &[&world.resource],
                scope: "orders:read",
            },
            world.sts.clock_now(),
            3600,
        )
        .unwrap();
    let cases = [
        (other.as_str(), "token audience is not this service"),
        (expired.as_str(), "token has expired"),
        (untrusted.as_str(), "token issuer is not trusted"),
        ("not.a.jwt", "malformed token"),
    ];
    for (token, why) in cases {
        let response = world.post(Some(token)).await;
        assert_eq!(response.status(), 401, "{why}");
        let value = challenge(&response);
        assert!(
            value.starts_with("Bearer error=\"invalid_token\", error_description=\"") && value.contains(why),
            "{value}"
        );
        assert!(value.ends_with(&metadata), "{value}");
        assert!(!value.contains(token), "the challenge echoes the token");
    }
    // rmcp's client cannot even initialise with a token for another resource.
    assert!(world.connect(&other).await.is_err());

    let malformed = reqwest::Client::new()
        .post(&world.resource)
        .header("authorization", "Bearer a b")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    assert!(challenge(&malformed).starts_with("Bearer error=\"invalid_request\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_resource_metadata_is_served_at_both_well_known_uris() {
    let world = World::start().await;
    let http = reqwest::Client::new();
    let origin = world.resource.trim_end_matches("/mcp");
    for url in [
        world.metadata_url(),
        format!("{origin}/.well-known/oauth-protected-resource"),
    ] {
        let response = http.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
        let document: Value = response.json().await.unwrap();
        assert_eq!(
            document,
            json!({
                "resource": world.resource,
                "authorization_servers": [world.sts.idp.issuer()],
                "scopes_supported": ["orders:read", "orders:write"],
                "bearer_methods_supported": ["header"],
                "resource_name": "Orders MCP",
            })
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_wide_scopes_answer_403_with_the_scope_to_ask_for() {
    let world = World::start_with(|b| b.require_scopes(["orders:read"])).await;
    let metadata = format!("resource_metadata=\"{}\"", world.metadata_url());

    let none = world.post(None).await;
    assert_eq!(challenge(&none), format!("Bearer {metadata}, scope=\"orders:read\""));

    let no_scope = world.token("carol@example.com", &[], "", &[&world.resource]);
    let response = world.post(Some(&no_scope)).await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        challenge(&response),
        format!("Bearer error=\"insufficient_scope\", scope=\"orders:read\", {metadata}")
    );
    assert!(world.connect(&world.alice()).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuer_keys_unreachable_fail_closed_with_503() {
    let world = World::start().await;
    world.sts.idp.set_available(false);
    let response = world.post(Some(&world.alice())).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    assert!(response.headers().get("www-authenticate").is_none());
}

#[tokio::test]
async fn mistakes_are_start_up_errors() {
    let idp = DevIdp::start_local().await.unwrap();
    let build = |resource: &str, issuer: Option<TrustedIssuer>| {
        let mut builder = McpAuth::builder(resource);
        if let Some(issuer) = issuer {
            builder = builder.trust(issuer);
        }
        builder.build()
    };
    let trusted = || Some(TrustedIssuer::discover(idp.issuer()));
    assert!(matches!(
        build("/mcp", trusted()).await,
        Err(McpAuthError::InvalidResource(_))
    ));
    assert!(matches!(
        build("http://127.0.0.1:1/mcp#x", trusted()).await,
        Err(McpAuthError::InvalidResource(_))
    ));
    assert_eq!(
        build("http://127.0.0.1:1/mcp", None).await.unwrap_err(),
        McpAuthError::NoIssuer
    );
    assert!(matches!(
        build(
            "http://127.0.0.1:1/mcp",
            Some(TrustedIssuer::discover("teleport.local"))
        )
        .await,
        Err(McpAuthError::InvalidIssuer(_))
    ));
    // Discovery that finds nothing, and a document naming another issuer.
    let wrong = format!("{}/", idp.issuer());
    let error = build("http://127.0.0.1:1/mcp", Some(TrustedIssuer::discover(&wrong)))
        .await
        .unwrap_err();
    assert!(matches!(&error, McpAuthError::Discovery { .. }), "{error}");
    idp.set_available(false);
    let error = build("http://127.0.0.1:1/mcp", trusted()).await.unwrap_err();
    assert!(error.to_string().contains("HTTP 503"), "{error}");
    // An explicit JWKS needs no discovery.
    let auth = build(
        "http://127.0.0.1:1/mcp",
        Some(TrustedIssuer::with_jwks_uri(idp.issuer(), idp.jwks_uri())),
    )
    .await
    .unwrap();
    assert_eq!(
        auth.metadata_url(),
        "http://127.0.0.1:1/.well-known/oauth-protected-resource/mcp"
    );
}

/// Wait (bounded) until the kit's stream has applied a revocation beyond `seen`.
async fn heard_more(stream: &RevocationStream, seen: u64) -> u64 {
    let mut applied = stream.applied();
    tokio::time::timeout(Duration::from_secs(20), async {
        while *applied.borrow_and_update() <= seen {
            applied.changed().await.unwrap();
        }
    })
    .await
    .expect("the kit's stream did not hear the revocation in time");
    *applied.borrow()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offboarded_user_is_refused_by_the_kit_itself_and_cached_tokens_are_dropped() {
    let (world, auth) = World::start_subscribed().await;
    let stream = auth.revocation_stream().unwrap().clone();
    // The first poll subscribes; tokens issued after it are covered by what it hears.
    stream.poll_once(world.sts.clock_now()).await.unwrap();
    let covered = stream.covered_since().unwrap();
    world.sts.clock.advance(covered + 5 - world.sts.clock_now());
    let seen = *stream.applied().borrow();

    let alice = world.connect(&world.alice()).await.unwrap();
    let jti = |result: &CallToolResult| {
        let claims: Value = serde_json::from_str(&text(result)).unwrap();
        claims["jti"].as_str().unwrap().to_owned()
    };
    let first = jti(&call(&alice, "orders_token", json!({})).await);
    assert_eq!(
        jti(&call(&alice, "orders_token", json!({})).await),
        first,
        "a warm token_for cache"
    );

    // The cached downstream token itself is revoked (as its API would through /revoke):
    // alice is not, so she still gets in, but never that token again.
    let revoked = json!({"kind": "token", "value": first, "reason": "leaked"});
    assert_eq!(
        world.sts.admin(reqwest::Method::POST, "", Some(revoked)).await.status,
        201
    );
    let seen = heard_more(&stream, seen).await;
    let fresh = jti(&call(&alice, "orders_token", json!({})).await);
    assert_ne!(fresh, first, "the revoked token was dropped from the cache");

    // Offboarding alice of this IdP: her next request is refused by the kit itself,
    // although her MCP token and a cached downstream token are still good otherwise.
    let offboard = json!({"kind": "subject", "value": "alice@example.com", "reason": "left",
        "issuer": world.sts.idp.issuer()});
    assert_eq!(
        world.sts.admin(reqwest::Method::POST, "", Some(offboard)).await.status,
        201
    );
    heard_more(&stream, seen).await;
    let response = world.post(Some(&world.alice())).await;
    assert_eq!(response.status(), 401);
    assert!(
        challenge(&response).contains("token has been revoked"),
        "{}",
        challenge(&response)
    );
    let mut params = CallToolRequestParams::new("orders_token");
    params = params.with_arguments(serde_json::Map::new());
    assert!(
        alice.call_tool(params).await.is_err(),
        "the open session is refused too"
    );

    // Another user of the same IdP is untouched.
    let bob_token = world.token(
        "bob@example.com",
        &["developer"],
        "orders:read",
        &[&world.resource, "mcp-sts"],
    );
    let bob = world.connect(&bob_token).await.unwrap();
    let result = call(&bob, "orders_token", json!({})).await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    bob.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kit_fails_closed_on_tokens_its_stream_cannot_vouch_for() {
    let (world, auth) = World::start_subscribed().await;
    let stream = auth.revocation_stream().unwrap().clone();
    stream.poll_once(world.sts.clock_now()).await.unwrap();
    // Issued before the stream existed: a revocation made then was never heard.
    let early = world.alice_at(world.sts.clock_now() - 60);
    let response = world.post(Some(&early)).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().get("www-authenticate").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kit_refuses_an_offboarded_users_fresh_tokens_until_reinstated() {
    let (world, auth) = World::start_subscribed().await;
    let stream = auth.revocation_stream().unwrap().clone();
    stream.poll_once(world.sts.clock_now()).await.unwrap();
    world.sts.clock.advance(5);
    let seen = *stream.applied().borrow();

    // Offboarded at mcp-sts only: the IdP goes on issuing her tokens.
    let offboard = json!({"kind": "subject", "value": "alice@example.com", "issuer": world.sts.idp.issuer()});
    assert_eq!(
        world.sts.admin(reqwest::Method::POST, "", Some(offboard)).await.status,
        201
    );
    let seen = heard_more(&stream, seen).await;
    world.sts.clock.advance(60);
    let fresh = world.alice();
    let response = world.post(Some(&fresh)).await;
    assert_eq!(response.status(), 401, "a token issued after the offboarding");
    assert!(challenge(&response).contains("token has been revoked"));

    // Reinstated: the kit hears it and lets her in again.
    let path = format!(
        "/subject/alice@example.com?issuer={}",
        form_urlencoded::byte_serialize(world.sts.idp.issuer().as_bytes()).collect::<String>()
    );
    assert_eq!(world.sts.admin(reqwest::Method::DELETE, &path, None).await.status, 200);
    heard_more(&stream, seen).await;
    let client = world.connect(&fresh).await.unwrap();
    let result = call(&client, "orders_token", json!({})).await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    client.cancel().await.unwrap();
}
