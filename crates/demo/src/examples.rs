//! What the demo provisions so the kit's examples run against it: the example MCP
//! server `notes-mcp` (a client authenticating with `private_key_jwt`) and the example
//! downstream API `notes-api` (an audience with a resource URI), at fixed loopback
//! addresses the examples use by default.

use mcp_sts_contract::jose::SigningAlgorithm;
use mcp_sts_contract::jose::SigningKey;
use mcp_sts_downstream::client::Secret;

use super::DemoError;

/// The example MCP server's client id at mcp-sts.
pub const NOTES_MCP_CLIENT_ID: &str = "notes-mcp";
/// Where the `mcp_server` example listens by default: its canonical resource URI.
pub const NOTES_MCP_RESOURCE: &str = "http://127.0.0.1:8402/mcp";
/// The example downstream API's audience id at mcp-sts.
pub const NOTES_API_AUDIENCE: &str = "notes-api";
/// The example downstream API's resource URI (the `downstream_api` example serves it).
pub const NOTES_API_RESOURCE: &str = "http://127.0.0.1:8403/api";

/// A fresh P-256 client key: the private half for the client, the public half for
/// mcp-sts's configuration.
pub struct ClientKey {
    /// The private key, PKCS#8 PEM.
    pub pem: Secret,
    /// The public key as a JWK (with its RFC 7638 `kid`).
    pub public_jwk: serde_json::Value,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey")
            .field("public_jwk", &self.public_jwk)
            .finish_non_exhaustive()
    }
}

impl ClientKey {
    /// Generate a key.
    pub fn generate() -> Result<Self, DemoError> {
        let (key, der) = SigningKey::generate(SigningAlgorithm::ES256, 0).map_err(crate::dev_idp::DevIdpError::Key)?;
        Ok(Self {
            pem: Secret::new(pem::encode(&pem::Pem::new("PRIVATE KEY", der))),
            public_jwk: key.public_jwk,
        })
    }

    /// The client's `jwks` as an inline TOML table.
    pub fn jwks_toml(&self) -> Result<String, DemoError> {
        let jwks = serde_json::json!({ "keys": [self.public_jwk] });
        toml::Value::try_from(jwks)
            .map(|v| v.to_string())
            .map_err(|e| DemoError::Sts(format!("client JWKS: {e}")))
    }
}
