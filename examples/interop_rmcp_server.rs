//! An MCP server built with the Rust SDK (`rmcp`, streamable HTTP) that accepts only
//! tokens minted by mcp-sts for it, verified in an axum middleware with `jsonwebtoken`
//! against the STS's JWKS. It is a peer of the interoperability suite (tests/interop):
//! written the way a downstream team would, without mcp-sts's own verifier module.
//!
//! Usage: `interop_rmcp_server <listen addr> <sts issuer URL> <audience>`

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::Extension;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, tool, tool_handler, tool_router};
use serde_json::{Value, json};
use tokio::sync::RwLock;

/// The verified claims of the caller's token, put in the request extensions.
#[derive(Debug, Clone)]
struct Caller(Value);

struct Verifier {
    jwks_uri: String,
    issuer: String,
    audience: String,
    keys: RwLock<JwkSet>,
    http: reqwest::Client,
}

impl Verifier {
    async fn refresh(&self) -> Result<(), String> {
        let set: JwkSet = self
            .http
            .get(&self.jwks_uri)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        *self.keys.write().await = set;
        Ok(())
    }

    async fn key(&self, kid: &str) -> Option<DecodingKey> {
        let find = |set: &JwkSet| set.find(kid).and_then(|jwk| DecodingKey::from_jwk(jwk).ok());
        if let Some(key) = find(&*self.keys.read().await) {
            return Some(key);
        }
        // Unknown kid: the STS may have rotated its key; fetch the JWKS again once.
        self.refresh().await.ok()?;
        find(&*self.keys.read().await)
    }

    async fn verify(&self, token: &str) -> Result<Value, String> {
        let header = decode_header(token).map_err(|e| e.to_string())?;
        if !matches!(header.typ.as_deref(), Some("at+jwt" | "application/at+jwt")) {
            return Err("typ is not at+jwt".into());
        }
        if !matches!(header.alg, Algorithm::ES256 | Algorithm::RS256) {
            return Err("algorithm not allowed".into());
        }
        let kid = header.kid.ok_or("no kid")?;
        let key = self.key(&kid).await.ok_or("unknown kid")?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        decode::<Value>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| e.to_string())
    }
}

async fn require_token(State(verifier): State<Arc<Verifier>>, mut request: Request, next: Next) -> Response {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let Some(token) = bearer else {
        return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")]).into_response();
    };
    match verifier.verify(&token).await {
        Ok(claims) => {
            request.extensions_mut().insert(Caller(claims));
            next.run(request).await
        }
        Err(reason) => {
            eprintln!("token refused: {reason}");
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, r#"Bearer error="invalid_token""#)],
            )
                .into_response()
        }
    }
}

#[derive(Debug, Clone)]
struct Whoami {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Whoami {
    fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    /// The caller's execution identity, from the verified mcp-sts token.
    #[tool(description = "Return the caller's identity (sub, act, scope) from its mcp-sts token")]
    async fn whoami(&self, Extension(parts): Extension<axum::http::request::Parts>) -> Result<String, String> {
        let Caller(claims) = parts.extensions.get::<Caller>().ok_or("no verified caller")?;
        Ok(json!({
            "sub": claims.get("sub"),
            "act": claims.get("act"),
            "scope": claims.get("scope"),
            "client_id": claims.get("client_id"),
            "delegation_mode": claims.get("delegation_mode"),
            "server": "rust-rmcp",
        })
        .to_string())
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Whoami {}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, issuer, audience] = args.as_slice() else {
        anyhow::bail!("usage: interop_rmcp_server <listen addr> <sts issuer URL> <audience>");
    };
    let verifier = Arc::new(Verifier {
        jwks_uri: format!("{issuer}/.well-known/jwks.json"),
        issuer: issuer.clone(),
        audience: audience.clone(),
        keys: RwLock::new(JwkSet { keys: Vec::new() }),
        http: reqwest::Client::new(),
    });
    let service = StreamableHttpService::new(
        || Ok(Whoami::new()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let app = axum::Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(verifier, require_token));
    let listener = tokio::net::TcpListener::bind(listen.as_str()).await?;
    println!("rmcp server listening on http://{}/mcp", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
