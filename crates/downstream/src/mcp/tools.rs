//! Tools filtered by scope: a tool declares what it needs in its `_meta`
//! ([`requires_scope`]), callers without it do not see it in `tools/list` and are
//! refused on `tools/call`.
//!
//! [`ScopedTools`] wraps rmcp's `ToolRouter`. It is made from a [`ToolGate`], which only
//! [`super::McpAuth::serve`] (or an [`super::McpAuthLayer`]) hands out, so a handler
//! holding one is served behind the layer; [`Protected`] states that at the type level
//! and is what lets tools take a [`Caller`].

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, PoisonError, RwLock};

use rmcp::handler::server::common::FromContextPart;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CacheScope, CallToolResponse, CallToolResult, ListToolsResult, MetaObject, ProtocolVersion, ResultType, Tool,
};
use rmcp::service::{MaybeSend, RequestContext};
use rmcp::{ErrorData, RoleServer};
use serde_json::{Value, json};

use super::caller::Caller;

/// The `_meta` key under which a tool lists the scopes it needs (a JSON array).
pub const REQUIRED_SCOPES_META: &str = "mcp-sts/required_scopes";

/// `_meta` for a tool that needs `scope`: `#[tool(meta = requires_scope("orders:write"))]`.
pub fn requires_scope(scope: &str) -> MetaObject {
    requires_scopes(&[scope])
}

/// `_meta` for a tool that needs every scope of `scopes`.
pub fn requires_scopes(scopes: &[&str]) -> MetaObject {
    let mut meta = MetaObject::default();
    meta.0.insert(REQUIRED_SCOPES_META.into(), json!(scopes));
    meta
}

/// The scopes `tool` declares, from its `_meta`.
fn required_scopes(tool: &Tool) -> BTreeSet<&str> {
    tool.meta
        .as_ref()
        .and_then(|meta| meta.0.get(REQUIRED_SCOPES_META))
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The scopes `tool` needs that `caller` lacks, empty when it may be used.
fn missing_scopes<'t>(tool: &'t Tool, caller: &Caller) -> Vec<&'t str> {
    required_scopes(tool)
        .into_iter()
        .filter(|scope| !caller.has_scope(scope))
        .collect()
}

/// The protocol error when a request reached a handler without passing the layer:
/// only possible when a gate was taken from a layer that is not in front of the service.
pub(crate) fn not_behind_layer() -> ErrorData {
    tracing::error!("an MCP request reached a protected handler without passing McpAuthLayer");
    ErrorData::internal_error("the request was not authenticated by the MCP auth layer", None)
}

/// The scopes each tool of the server declares, as its [`ScopedTools`] were made: what
/// the layer names in the scope challenge of a `tools/call` before rmcp runs it.
#[derive(Debug, Default)]
pub(crate) struct ToolScopes {
    by_tool: RwLock<HashMap<String, Vec<String>>>,
}

impl ToolScopes {
    /// Remember the scopes of every tool of `router`.
    fn learn<S: MaybeSend + 'static>(&self, router: &ToolRouter<S>) {
        let mut by_tool = self.by_tool.write().unwrap_or_else(PoisonError::into_inner);
        for tool in router.list_all() {
            let scopes = required_scopes(&tool).into_iter().map(str::to_owned).collect();
            by_tool.insert(tool.name.to_string(), scopes);
        }
    }

    /// The scopes `tool` declares; empty for a tool that declares none or is unknown.
    pub(crate) fn of(&self, tool: &str) -> Vec<String> {
        self.by_tool
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tool)
            .cloned()
            .unwrap_or_default()
    }
}

/// Proof that requests reach the handler through the kit's layer; the only way to make
/// [`ScopedTools`].
#[derive(Debug, Clone)]
pub struct ToolGate {
    scopes: Arc<ToolScopes>,
}

impl ToolGate {
    /// Only the kit makes gates; the layer reads what its tools declare.
    pub(crate) fn new(scopes: Arc<ToolScopes>) -> Self {
        Self { scopes }
    }

    /// Wrap `router` so its tools are filtered by the caller's scopes.
    pub fn tools<S: MaybeSend + 'static>(&self, router: ToolRouter<S>) -> ScopedTools<S> {
        self.scopes.learn(&router);
        ScopedTools { router }
    }
}

/// A handler served behind the kit: it holds [`ScopedTools`], so its tools may take a
/// [`Caller`].
pub trait Protected: Sized {
    /// The handler's scope-filtered tools.
    fn tools(&self) -> &ScopedTools<Self>;
}

/// rmcp's `ToolRouter`, filtered by the caller's scopes. Use it as the router of
/// `#[tool_handler(router = self.tools)]` and write `list_tools` with
/// [`ScopedTools::list`]: the macro's own `list_tools` would list every tool, so this
/// type offers no `list_all` and a handler that forgets does not compile.
pub struct ScopedTools<S> {
    router: ToolRouter<S>,
}

impl<S> std::fmt::Debug for ScopedTools<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopedTools").field("router", &self.router).finish()
    }
}

impl<S> Clone for ScopedTools<S> {
    fn clone(&self) -> Self {
        Self {
            router: self.router.clone(),
        }
    }
}

impl<S: MaybeSend + 'static> ScopedTools<S> {
    /// `tools/list` for the caller of `context`: the tools whose scopes it holds. Not
    /// cacheable across users.
    pub fn list(&self, context: &RequestContext<RoleServer>) -> Result<ListToolsResult, ErrorData> {
        let caller = Caller::from_request_context(context).ok_or_else(not_behind_layer)?;
        let tools = self
            .router
            .list_all()
            .into_iter()
            .filter(|tool| missing_scopes(tool, &caller).is_empty())
            .collect();
        let cache_hints = context
            .protocol_version()
            .is_some_and(|version| version >= ProtocolVersion::V_2026_07_28);
        Ok(ListToolsResult {
            result_type: Some(ResultType::COMPLETE),
            tools,
            meta: None,
            next_cursor: None,
            ttl_ms: cache_hints.then_some(0),
            cache_scope: cache_hints.then_some(CacheScope::Private),
        })
    }

    /// `tools/call`: run the tool when the caller holds its scopes; otherwise a tool
    /// error `insufficient_scope` naming them, and the tool never runs. The layer
    /// answers such a call with an HTTP scope challenge first; this is the check of
    /// last resort, on the body rmcp parsed.
    pub async fn call(&self, context: ToolCallContext<'_, S>) -> Result<CallToolResponse, ErrorData> {
        let caller = Caller::from_request_context(context.request_context()).ok_or_else(not_behind_layer)?;
        if let Some(tool) = self.router.get(context.name()) {
            let missing = missing_scopes(tool, &caller);
            if !missing.is_empty() {
                tracing::info!(
                    user = caller.user(),
                    agent = caller.agent().unwrap_or("-"),
                    tool = context.name(),
                    "tool refused: insufficient scope"
                );
                let scope = missing.join(" ");
                return Ok(CallToolResult::structured_error(json!({
                    "error": "insufficient_scope",
                    "scope": scope,
                    "error_description": format!("this tool needs the scope {scope}"),
                }))
                .into());
            }
        }
        self.router.call(context).await
    }

    /// The tool named `name`, for rmcp's argument checks (`get_tool`).
    pub fn get(&self, name: &str) -> Option<&Tool> {
        self.router.get(name)
    }
}

/// `caller: Caller` as a tool parameter of a [`Protected`] handler.
impl<S: Protected> FromContextPart<ToolCallContext<'_, S>> for Caller {
    fn from_context_part(context: &mut ToolCallContext<'_, S>) -> Result<Self, rmcp::ErrorData> {
        Caller::from_request_context(context.request_context()).ok_or_else(not_behind_layer)
    }
}
