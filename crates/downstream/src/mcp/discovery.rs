//! Where a trusted authorization server keeps its keys: its OpenID Connect discovery
//! document, or its RFC 8414 metadata, read once at start-up. The document must name
//! the issuer exactly (RFC 8414 §3.3), else it is not that issuer's.

use std::time::Duration;

use reqwest::Url;

use mcp_sts_contract::fetch::FetchLimits;

use super::error::McpAuthError;

/// Largest metadata document read; real ones are a few KiB.
const MAX_METADATA_BYTES: usize = 256 * 1024;

/// An issuer identifier must be an http(s) URL without query or fragment (RFC 8414 §2),
/// as RFC 9728 lists it in `authorization_servers`.
pub(crate) fn check_issuer(issuer: &str) -> Result<(), McpAuthError> {
    let invalid = |why: &str| McpAuthError::InvalidIssuer(format!("{issuer:?} {why}"));
    let url = Url::parse(issuer).map_err(|_| invalid("is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("is not an http(s) URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("has a query or fragment"));
    }
    Ok(())
}

/// The metadata URLs to try, in order: OpenID Connect discovery (path appended), then
/// RFC 8414 (well-known segment inserted before the issuer's path).
fn candidates(issuer: &str) -> Result<Vec<String>, McpAuthError> {
    let url = Url::parse(issuer).map_err(|_| McpAuthError::InvalidIssuer(issuer.to_owned()))?;
    let origin = url.origin().ascii_serialization();
    let path = url.path().trim_end_matches('/');
    Ok(vec![
        format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/')),
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
    ])
}

/// Fetch `url` as a JSON object through the one bounded fetch (byte cap, deadline).
async fn fetch(http: &reqwest::Client, url: &str, timeout: Duration) -> Result<serde_json::Value, String> {
    let request = http.get(url).header(reqwest::header::ACCEPT, "application/json");
    let limits = FetchLimits {
        timeout,
        max_bytes: MAX_METADATA_BYTES,
    };
    let fetched = mcp_sts_contract::fetch::fetch(request, limits)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !fetched.status.is_success() {
        return Err(format!("{url} answered HTTP {}", fetched.status.as_u16()));
    }
    serde_json::from_slice(&fetched.body).map_err(|_| format!("{url} is not JSON"))
}

/// The issuer's `jwks_uri`, from the first metadata document that names the issuer.
pub(crate) async fn jwks_uri(http: &reqwest::Client, issuer: &str, timeout: Duration) -> Result<String, McpAuthError> {
    let mut failures = Vec::new();
    for url in candidates(issuer)? {
        let document = match fetch(http, &url, timeout).await {
            Ok(document) => document,
            Err(why) => {
                failures.push(why);
                continue;
            }
        };
        let named = document.get("issuer").and_then(|v| v.as_str());
        if named != Some(issuer) {
            failures.push(format!("{url} names issuer {named:?}, not {issuer:?}"));
            continue;
        }
        match document.get("jwks_uri").and_then(|v| v.as_str()) {
            Some(jwks) if !jwks.is_empty() => return Ok(jwks.to_owned()),
            _ => failures.push(format!("{url} has no jwks_uri")),
        }
    }
    Err(McpAuthError::Discovery {
        issuer: issuer.to_owned(),
        reason: failures.join("; "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_cover_oidc_and_rfc_8414_forms() {
        assert_eq!(
            candidates("https://idp.example.com/realms/acme").unwrap(),
            [
                "https://idp.example.com/realms/acme/.well-known/openid-configuration",
                "https://idp.example.com/.well-known/oauth-authorization-server/realms/acme",
            ]
        );
        assert!(check_issuer("teleport.example.local").is_err());
        assert!(check_issuer("https://idp.example.com?x=1").is_err());
        assert!(check_issuer("https://idp.example.com").is_ok());
    }
}
