//! RFC 9728 protected resource metadata: what this MCP server is, and which
//! authorization servers issue its tokens. Clients find it from the `resource_metadata`
//! parameter of a `401` challenge, or at the well-known URI built from the resource
//! (`/.well-known/oauth-protected-resource` plus the resource's path, RFC 9728 §3.1).

use axum::Router;
use axum::http::HeaderValue;
use axum::http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, CACHE_CONTROL};
use axum::response::IntoResponse;
use axum::routing::get;
use reqwest::Url;
use serde_json::{Value, json};

use super::error::McpAuthError;

/// The well-known path of RFC 9728 §3.
const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The resource, its metadata document, and where the document is served.
#[derive(Debug, Clone)]
pub(crate) struct ResourceMetadata {
    resource: String,
    path: String,
    host: Option<String>,
    url: String,
    document: Value,
}

impl ResourceMetadata {
    /// Check `resource` (an absolute http(s) URI without fragment) and build the document.
    pub(crate) fn new(
        resource: &str,
        authorization_servers: Vec<String>,
        scopes_supported: Vec<String>,
        resource_name: Option<String>,
    ) -> Result<Self, McpAuthError> {
        let invalid = |why: &str| McpAuthError::InvalidResource(format!("{resource:?} {why}"));
        let parsed = Url::parse(resource).map_err(|_| invalid("is not an absolute URI"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(invalid("is not an http(s) URI"));
        }
        if parsed.fragment().is_some() || resource.contains('#') {
            return Err(invalid("has a fragment"));
        }
        if parsed.query().is_some() {
            return Err(invalid("has a query; a canonical resource URI has none"));
        }
        let path = parsed.path().trim_end_matches('/').to_owned();
        let origin = parsed.origin().ascii_serialization();
        let url = format!("{origin}{WELL_KNOWN}{path}");
        let mut document = json!({
            "resource": resource,
            "authorization_servers": authorization_servers,
            "bearer_methods_supported": ["header"],
        });
        if let Some(map) = document.as_object_mut() {
            if !scopes_supported.is_empty() {
                map.insert("scopes_supported".into(), json!(scopes_supported));
            }
            if let Some(name) = resource_name {
                map.insert("resource_name".into(), json!(name));
            }
        }
        Ok(Self {
            resource: resource.to_owned(),
            path,
            host: parsed.host_str().map(str::to_owned),
            url,
            document,
        })
    }

    /// The canonical resource URI.
    pub(crate) fn resource(&self) -> &str {
        &self.resource
    }

    /// The resource's path without a trailing slash (`/mcp`), empty for the root.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// Where the document is served, as sent in `resource_metadata`.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// `Host` values rmcp's DNS-rebinding check should accept: loopback, and the
    /// resource's own host.
    pub(crate) fn allowed_hosts(&self) -> Vec<String> {
        let mut hosts = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
        if let Some(host) = &self.host
            && !hosts.contains(host)
        {
            hosts.push(host.clone());
        }
        hosts
    }

    /// The metadata routes: the root well-known URI and, with a path, the suffixed one.
    pub(crate) fn router(&self) -> Router {
        let document = self.document.clone();
        let serve = move || {
            let document = document.clone();
            async move {
                (
                    [
                        (CACHE_CONTROL, HeaderValue::from_static("max-age=300")),
                        // Public metadata: browser-based MCP clients read it cross-origin.
                        (ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")),
                    ],
                    axum::Json(document),
                )
                    .into_response()
            }
        };
        let router = Router::new().route(WELL_KNOWN, get(serve.clone()));
        if self.path.is_empty() {
            router
        } else {
            router.route(&format!("{WELL_KNOWN}{}", self.path), get(serve))
        }
    }

    /// The document itself (tests and logs).
    #[cfg(test)]
    pub(crate) fn document(&self) -> &Value {
        &self.document
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_url_follows_rfc_9728_section_3_1() {
        let m = ResourceMetadata::new(
            "https://mcp.example.com/tools/mcp",
            vec!["https://idp".into()],
            vec![],
            None,
        )
        .unwrap();
        assert_eq!(
            m.url(),
            "https://mcp.example.com/.well-known/oauth-protected-resource/tools/mcp"
        );
        assert_eq!(m.path(), "/tools/mcp");
        let root = ResourceMetadata::new("http://127.0.0.1:8402", vec![], vec!["a".into()], Some("n".into())).unwrap();
        assert_eq!(root.url(), "http://127.0.0.1:8402/.well-known/oauth-protected-resource");
        assert_eq!(root.document()["scopes_supported"], json!(["a"]));
        assert_eq!(root.document()["resource_name"], "n");
    }

    #[test]
    fn resource_must_be_an_absolute_uri_without_fragment_or_query() {
        for bad in [
            "/mcp",
            "ftp://x/mcp",
            "https://x/mcp#frag",
            "https://x/mcp?tenant=1",
            "not a uri",
        ] {
            assert!(
                matches!(
                    ResourceMetadata::new(bad, vec![], vec![], None),
                    Err(McpAuthError::InvalidResource(_))
                ),
                "{bad}"
            );
        }
    }
}
