//! An MCP server (rmcp, streamable HTTP) protected by the mcp-sts kit: the notes tools.
//!
//! The kit validates every request's access token (issued by the IdP for this server's
//! URI, naming the agent application in `client_id`), serves the protected resource
//! metadata, strips the token before rmcp sees the request, and gives each tool the
//! `Caller`. A tool asks for a narrow token for the notes API with `token_for`; mcp-sts
//! mints it naming the user, the agent and this server. Tools declare the scope they
//! need; callers without it neither see nor run them.
//!
//! Run against `mcp-sts demo --keep-running` (it prints the values to use):
//!
//! ```sh
//! MCP_STS_URL=http://127.0.0.1:<port> IDP_ISSUER=http://127.0.0.1:<port> \
//! NOTES_MCP_KEY_FILE=/tmp/mcp-sts-demo-.../notes-mcp.key.pem cargo run -p mcp-sts-downstream --features mcp-server --example mcp_server
//! ```
//!
//! Settings (environment): `MCP_STS_URL` and `IDP_ISSUER` (required); the client
//! credential, `NOTES_MCP_KEY_FILE` (PEM private key, `private_key_jwt`) or
//! `NOTES_MCP_SECRET_FILE` (a client secret); with a secret, `NOTES_MCP_REVOCATION_STATE`
//! (a state file) makes the kit subscribe to mcp-sts's revocation stream and refuse
//! offboarded users itself (tokens issued before its first poll are refused with 503); `NOTES_MCP_CLIENT_ID` (default `notes-mcp`);
//! `NOTES_MCP_LISTEN` (default `127.0.0.1:8402`; the resource is `http://<listen>/mcp`);
//! `NOTES_API_URL` (default `http://127.0.0.1:8403/api`) and `NOTES_API_AUDIENCE`
//! (default `notes-api`).

use std::sync::Arc;

use anyhow::Context;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use mcp_sts_downstream::client::{AssertionKey, StsClient, StsClientConfig};
use mcp_sts_downstream::mcp::{
    Caller, McpAuth, Protected, ScopedTools, TokenError, ToolGate, TrustedIssuer, requires_scope,
};
use mcp_sts_downstream::verify::RevocationStreamConfig;
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ListToolsResult, PaginatedRequestParams};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, schemars, tool, tool_handler, tool_router};
use serde_json::{Value, json};

/// Where the notes API is, and what it is called at mcp-sts.
struct NotesApi {
    url: String,
    audience: String,
    http: reqwest::Client,
}

/// `add_note` arguments. No user argument anywhere: the user is the token's.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct NewNote {
    /// The note's text.
    text: String,
}

/// The tools, filtered by scope through the kit.
#[derive(Clone)]
struct NotesMcp {
    api: Arc<NotesApi>,
    tools: ScopedTools<Self>,
}

#[tool_router]
impl NotesMcp {
    fn new(api: Arc<NotesApi>, gate: &ToolGate) -> Self {
        Self {
            api,
            tools: gate.tools(Self::tool_router()),
        }
    }

    #[tool(description = "Who is calling: the user, the agent and this server, from the verified token")]
    async fn whoami(&self, caller: Caller, Extension(parts): Extension<Parts>) -> String {
        json!({
            "caller": caller,
            // The kit removed the token before rmcp saw the request.
            "authorization_header_seen": parts.headers.contains_key(AUTHORIZATION),
        })
        .to_string()
    }

    #[tool(description = "Your notes", meta = requires_scope("notes:read"))]
    async fn list_notes(&self, caller: Caller) -> Result<CallToolResult, TokenError> {
        let token = caller.token_for(&self.api.audience).await?;
        let request = self
            .api
            .http
            .get(format!("{}/notes", self.api.url))
            .bearer_auth(token.access_token.expose());
        Ok(downstream(request).await)
    }

    #[tool(description = "Add a note", meta = requires_scope("notes:write"))]
    async fn add_note(
        &self,
        caller: Caller,
        Parameters(NewNote { text }): Parameters<NewNote>,
    ) -> Result<CallToolResult, TokenError> {
        // Ask for exactly what this call needs.
        let token = caller.token_for_scopes(&self.api.audience, &["notes:write"]).await?;
        let request = self
            .api
            .http
            .post(format!("{}/notes", self.api.url))
            .bearer_auth(token.access_token.expose())
            .json(&json!({ "text": text }));
        Ok(downstream(request).await)
    }
}

/// Call the notes API; its refusals become tool errors the agent can read.
async fn downstream(request: reqwest::RequestBuilder) -> CallToolResult {
    match request.send().await {
        Ok(response) if response.status().is_success() => {
            CallToolResult::structured(json!({ "result": response.json::<Value>().await.unwrap_or(Value::Null) }))
        }
        Ok(response) => {
            let challenge = response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            CallToolResult::structured_error(json!({
                "error": "downstream_refused",
                "status": response.status().as_u16(),
                "challenge": challenge,
            }))
        }
        Err(error) => CallToolResult::structured_error(json!({
            "error": "downstream_unreachable",
            "error_description": error.without_url().to_string(),
        })),
    }
}

#[tool_handler(router = self.tools)]
impl ServerHandler for NotesMcp {
    /// Only the tools this caller's scopes allow.
    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.tools.list(&context)
    }
}

/// What lets tools take a `Caller`: the handler is served through the kit.
impl Protected for NotesMcp {
    fn tools(&self) -> &ScopedTools<Self> {
        &self.tools
    }
}

fn setting(name: &str, default: Option<&str>) -> anyhow::Result<String> {
    match (std::env::var(name), default) {
        (Ok(value), _) => Ok(value),
        (Err(_), Some(default)) => Ok(default.to_owned()),
        (Err(_), None) => anyhow::bail!("set {name}"),
    }
}

/// The exchange client: `private_key_jwt` with a key file, else a client secret. With a
/// secret and `NOTES_MCP_REVOCATION_STATE`, also the subscription to mcp-sts's
/// revocation stream (a Shared Signals receiver authenticates with its client secret).
fn sts_client(sts: &str) -> anyhow::Result<(StsClient, Option<RevocationStreamConfig>)> {
    let token_endpoint = format!("{}/token", sts.trim_end_matches('/'));
    let client_id = setting("NOTES_MCP_CLIENT_ID", Some("notes-mcp"))?;
    let (config, stream) = match (
        std::env::var("NOTES_MCP_KEY_FILE"),
        std::env::var("NOTES_MCP_SECRET_FILE"),
    ) {
        (Ok(path), _) => {
            let pem = std::fs::read(&path).with_context(|| format!("cannot read {path}"))?;
            let key = AssertionKey::from_pem(&pem, None)?;
            (StsClientConfig::private_key_jwt(token_endpoint, client_id, key), None)
        }
        (Err(_), Ok(path)) => {
            let secret = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
            let secret = secret.trim_end();
            let stream = std::env::var("NOTES_MCP_REVOCATION_STATE").ok().map(|state| {
                let mut stream = RevocationStreamConfig::new(sts, &client_id, secret);
                stream.state_path = Some(state.into());
                // mcp-sts and the IdP run on this machine (the demo): no clock skew to
                // allow for. Keep the default (30 s) across machines.
                stream.leeway = std::time::Duration::from_secs(2);
                stream
            });
            (StsClientConfig::new(token_endpoint, client_id, secret), stream)
        }
        _ => anyhow::bail!("set NOTES_MCP_KEY_FILE or NOTES_MCP_SECRET_FILE"),
    };
    Ok((StsClient::new(config)?, stream))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let sts = setting("MCP_STS_URL", None)?;
    let idp = setting("IDP_ISSUER", None)?;
    let listen = setting("NOTES_MCP_LISTEN", Some("127.0.0.1:8402"))?;
    let api = Arc::new(NotesApi {
        url: setting("NOTES_API_URL", Some("http://127.0.0.1:8403/api"))?,
        audience: setting("NOTES_API_AUDIENCE", Some("notes-api"))?,
        http: reqwest::Client::new(),
    });

    let listener = tokio::net::TcpListener::bind(&listen).await?;
    let resource = format!("http://{}/mcp", listener.local_addr()?);
    // Every mistake here (a bad URI, an IdP whose metadata cannot be read) stops the
    // server now, not at the first request.
    let (exchange, stream) = sts_client(&sts)?;
    let mut builder = McpAuth::builder(&resource)
        .trust(TrustedIssuer::discover(&idp))
        .scopes_supported(["notes:read", "notes:write"])
        .resource_name("Notes MCP (mcp-sts example)")
        .exchange_with(exchange);
    if let Some(stream) = stream {
        // The kit refuses offboarded users' tokens itself, from the next poll on.
        builder = builder.revocations(stream);
    }
    let auth = builder.build().await?;
    let app = auth.serve(move |gate| NotesMcp::new(Arc::clone(&api), &gate));
    println!("notes-mcp on {resource}; metadata at {}", auth.metadata_url());
    axum::serve(listener, app).await?;
    Ok(())
}
