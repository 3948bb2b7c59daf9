//! The service every attack runs against: the test configuration plus a second
//! trusted issuer whose key signs raw bytes, a `gateway` client whose audiences are
//! `restricted_user` and `service_identity` relays that hop on to `billing-api`, and
//! two `private_key_jwt` clients.

use mcp_sts::config::SigningAlgorithm;
use mcp_sts::keys::SigningKey;
use mcp_sts_demo::dev_idp::DevIdp;
use serde_json::json;

use crate::support::attack::ForgeIdp;
use crate::support::sts::*;

/// Secret of the `gateway` client (reaches the two relays).
pub const GATEWAY_SECRET: &str = "gateway-secret";
/// Secret of `relay-restricted` (a `restricted_user` audience that hops on).
pub const RELAY_RESTRICTED_SECRET: &str = "relay-restricted-secret";
/// Secret of `relay-service` (a `service_identity` audience that hops on).
pub const RELAY_SERVICE_SECRET: &str = "relay-service-secret";

pub const ORDERS_MCP: (&str, &str) = ("orders-mcp", ORDERS_MCP_SECRET);
pub const ORDERS_API: (&str, &str) = ("orders-api", ORDERS_API_SECRET);
pub const BILLING_API: (&str, &str) = ("billing-api", BILLING_API_SECRET);
pub const LEDGER_API: (&str, &str) = ("ledger-api", LEDGER_API_SECRET);
pub const GATEWAY: (&str, &str) = ("gateway", GATEWAY_SECRET);
pub const RELAY_RESTRICTED: (&str, &str) = ("relay-restricted", RELAY_RESTRICTED_SECRET);
pub const RELAY_SERVICE: (&str, &str) = ("relay-service", RELAY_SERVICE_SECRET);

pub struct Arena {
    pub sts: TestSts,
    /// A second trusted issuer whose key signs whatever the test hands it.
    pub forge: ForgeIdp,
    /// The key of the `jwt-inline` client.
    pub client_key: SigningKey,
    /// The key server of the `jwt-remote` client.
    pub remote_keys: DevIdp,
}

impl Arena {
    pub async fn start() -> Self {
        Self::start_with("").await
    }

    /// Start with more configuration appended (issuers or clients).
    pub async fn start_with(extra: &str) -> Self {
        let forge = ForgeIdp::start("forge-1").await;
        let (client_key, _) = SigningKey::generate(SigningAlgorithm::ES256, 0).unwrap();
        let remote_keys = DevIdp::start_local().await.unwrap();
        let inline_jwks = toml::Value::try_from(json!({"keys": [client_key.public_jwk]})).unwrap();
        let sha = mcp_sts::client_auth::hash_secret;
        let extra = format!(
            r#"
[[issuers]]
issuer = "{forge}"
audience = "mcp-sts"
jwks_uri = "{forge_jwks}"

[[clients]]
client_id = "gateway"
secret_sha256 = "{gateway}"
audiences = ["relay-restricted", "relay-service"]

[[clients]]
client_id = "relay-restricted"
secret_sha256 = "{relay_restricted}"
audiences = ["billing-api"]

[[clients]]
client_id = "relay-service"
secret_sha256 = "{relay_service}"
audiences = ["billing-api"]

[[clients]]
client_id = "jwt-inline"
audiences = ["orders-api"]
jwks = {inline_jwks}

[[clients]]
client_id = "jwt-remote"
audiences = ["orders-api"]
jwks_uri = "{remote}"

[[audiences]]
id = "relay-service"
mode = "service_identity"
scopes = ["orders:read"]

[[audiences]]
id = "relay-restricted"
mode = "restricted_user"
scopes = ["orders:read"]
[audiences.role_scopes]
developer = ["orders:read"]
{extra}
"#,
            forge = forge.url,
            forge_jwks = forge.jwks_uri(),
            gateway = sha(GATEWAY_SECRET),
            relay_restricted = sha(RELAY_RESTRICTED_SECRET),
            relay_service = sha(RELAY_SERVICE_SECRET),
            remote = remote_keys.jwks_uri(),
        );
        let sts = TestSts::start_opts(Options {
            extra_clients: extra,
            admin: true,
            // Some users here are entitled by their token's own scope (bob), some by roles.
            issuer_extra: "entitlement = \"both\"".into(),
            ..Options::default()
        })
        .await;
        Self {
            sts,
            forge,
            client_key,
            remote_keys,
        }
    }

    pub fn now(&self) -> u64 {
        self.sts.clock_now()
    }

    /// A user token from the dev IdP.
    pub fn user(&self, sub: &str, roles: &[&str]) -> String {
        self.sts.user_token(sub, roles)
    }

    /// A user token from the dev IdP with extra claims.
    pub fn user_with(&self, sub: &str, roles: &[&str], extra: serde_json::Value) -> String {
        self.sts.user_token_with(sub, roles, extra)
    }

    /// An exchange by `client` for `audience`, with an optional actor token.
    pub async fn exchange(&self, client: (&str, &str), subject: &str, audience: &str, actor: Option<&str>) -> Reply {
        let mut extra = vec![("audience", audience)];
        if let Some(actor) = actor {
            extra.push(("actor_token", actor));
            extra.push(("actor_token_type", JWT));
        }
        self.sts.exchange_as(client, subject, ACCESS_TOKEN, &extra).await
    }

    /// `orders-mcp` exchanges `subject` for `orders-api`.
    pub async fn obo(&self, subject: &str) -> Reply {
        self.exchange(ORDERS_MCP, subject, "orders-api", None).await
    }

    /// Introspect as a client.
    pub async fn introspect(&self, client: (&str, &str), token: &str) -> Reply {
        self.sts.introspect(client, token).await
    }

    /// RFC 7009 revocation as a client.
    pub async fn revoke_token(&self, client: (&str, &str), token: &str) -> Reply {
        self.sts.post_form("/revoke", Some(client), &[("token", token)]).await
    }
}
