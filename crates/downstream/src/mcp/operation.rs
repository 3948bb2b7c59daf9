//! What an MCP request asks for (`tools/call` of which tool), read before rmcp sees it
//! so that a caller lacking a tool's scope gets the HTTP scope challenge a client can
//! step up from. The `Mcp-Method`/`Mcp-Name` headers (SEP-2243) say it without the body;
//! a client that does not send them has its JSON-RPC body read instead.
//!
//! A client whose headers disagree with its body only misleads its own challenge: the
//! scope check of [`super::ScopedTools::call`] still runs on the body, and rmcp refuses
//! mismatched headers itself.

use axum::body::{Body, Bytes, HttpBody};
use axum::http::{HeaderMap, Method, Request};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

/// The largest JSON-RPC body read to find the method; larger ones are refused with 413.
pub(crate) const BODY_LIMIT: usize = 4 * 1024 * 1024;

/// The JSON-RPC method and, when the method names one, its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Operation {
    pub(crate) method: String,
    pub(crate) name: Option<String>,
}

impl Operation {
    /// The tool a `tools/call` names.
    pub(crate) fn tool(&self) -> Option<&str> {
        (self.method == "tools/call").then_some(self.name.as_deref()).flatten()
    }
}

/// The body was larger than [`BODY_LIMIT`] or could not be read.
#[derive(Debug)]
pub(crate) struct Unreadable;

/// Find the operation of `request`; the request comes back whole (its body re-made when
/// it had to be read).
pub(crate) async fn read<B>(request: Request<B>) -> Result<(Request<Body>, Option<Operation>), Unreadable>
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    if let Some(operation) = from_headers(request.headers()) {
        return Ok((request.map(Body::new), Some(operation)));
    }
    if request.method() != Method::POST {
        return Ok((request.map(Body::new), None));
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(Body::new(body), BODY_LIMIT)
        .await
        .map_err(|_| Unreadable)?;
    let operation = from_body(&bytes);
    Ok((Request::from_parts(parts, Body::from(bytes)), operation))
}

/// `Mcp-Method` and `Mcp-Name`, the name decoded from its `=?base64?...?=` form.
fn from_headers(headers: &HeaderMap) -> Option<Operation> {
    let method = headers.get("mcp-method")?.to_str().ok()?.to_owned();
    let name = headers
        .get("mcp-name")
        .and_then(|value| value.to_str().ok())
        .and_then(decode_header_value);
    Some(Operation { method, name })
}

/// SEP-2243's encoding of a header value that is not plain printable ASCII.
fn decode_header_value(value: &str) -> Option<String> {
    match value.strip_prefix("=?base64?").and_then(|rest| rest.strip_suffix("?=")) {
        Some(encoded) => STANDARD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok()),
        None => Some(value.to_owned()),
    }
}

/// The method and `params.name` of a single JSON-RPC request.
fn from_body(bytes: &[u8]) -> Option<Operation> {
    let message: Value = serde_json::from_slice(bytes).ok()?;
    let method = message.get("method")?.as_str()?.to_owned();
    let name = message
        .get("params")
        .and_then(|params| params.get("name"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Some(Operation { method, name })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_name_the_operation_and_a_base64_name_is_decoded() {
        let mut headers = HeaderMap::new();
        headers.insert("mcp-method", "tools/call".parse().unwrap());
        headers.insert("mcp-name", "=?base64?w6ljaG8=?=".parse().unwrap());
        let operation = from_headers(&headers).unwrap();
        assert_eq!(operation.tool(), Some("écho"));
        headers.insert("mcp-name", "update_order".parse().unwrap());
        assert_eq!(from_headers(&headers).unwrap().tool(), Some("update_order"));
    }

    #[test]
    fn the_body_names_the_tool_of_a_call_only() {
        let call = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"update_order"}}"#;
        assert_eq!(from_body(call).unwrap().tool(), Some("update_order"));
        let get = br#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"x"}}"#;
        assert_eq!(from_body(get).unwrap().tool(), None);
        assert_eq!(from_body(b"[1,2]"), None);
        assert_eq!(from_body(b"not json"), None);
    }
}
