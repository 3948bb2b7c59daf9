//! One algorithm list on both sides of the wire: an IdP that signs with PS256, ES384
//! and EdDSA (served over HTTP: discovery and JWKS), mcp-sts trusting it, the MCP kit
//! trusting it and exchanging the caller's token at mcp-sts, and the downstream verifier
//! checking what mcp-sts minted. The kit and mcp-sts also read the token's scopes
//! (`scope` and `scp`) the same way.

use std::collections::BTreeSet;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PSS_SHA256, RsaKeyPair,
};
use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_sts_downstream::client::{StsClient, StsClientConfig};
use mcp_sts_downstream::mcp::{Caller, McpAuth, Protected, ScopedTools, TokenError, ToolGate, TrustedIssuer};
use mcp_sts_downstream::verify::{Verifier, VerifierConfig};
use rmcp::model::{CallToolRequestParams, ListToolsResult, PaginatedRequestParams};
use rmcp::service::RequestContext;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::support::sts::{ORDERS_MCP_SECRET, Options, TestSts};

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A key of one of the algorithms the dev IdP does not sign with.
enum Key {
    Ps256(RsaKeyPair),
    Es384(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

impl Key {
    fn alg(&self) -> &'static str {
        match self {
            Key::Ps256(_) => "PS256",
            Key::Es384(_) => "ES384",
            Key::EdDsa(_) => "EdDSA",
        }
    }

    fn jwk(&self) -> Value {
        let kid = self.alg().to_lowercase();
        match self {
            Key::Ps256(k) => {
                let public = k.public_key();
                json!({"kty": "RSA", "use": "sig", "alg": "PS256", "kid": kid,
                       "n": b64(public.modulus().big_endian_without_leading_zero()),
                       "e": b64(public.exponent().big_endian_without_leading_zero())})
            }
            Key::Es384(k) => {
                let point = k.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-384", "use": "sig", "alg": "ES384", "kid": kid,
                       "x": b64(&point[1..49]), "y": b64(&point[49..97])})
            }
            Key::EdDsa(k) => json!({"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": kid,
                                    "x": b64(k.public_key().as_ref())}),
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": self.alg(), "typ": "JWT", "kid": self.alg().to_lowercase()});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = match self {
            Key::Ps256(k) => {
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(&RSA_PSS_SHA256, &SystemRandom::new(), input.as_bytes(), &mut sig)
                    .unwrap();
                sig
            }
            Key::Es384(k) => k
                .sign(&SystemRandom::new(), input.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
            Key::EdDsa(k) => k.sign(input.as_bytes()).as_ref().to_vec(),
        };
        format!("{input}.{}", b64(&signature))
    }
}

/// An IdP with one key of each algorithm, its discovery document and JWKS on 127.0.0.1.
struct AlgorithmIdp {
    issuer: String,
    keys: Vec<Key>,
}

impl AlgorithmIdp {
    async fn start() -> Self {
        let keys = vec![
            Key::Ps256(RsaKeyPair::generate(KeySize::Rsa2048).unwrap()),
            Key::Es384(EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).unwrap()),
            Key::EdDsa(Ed25519KeyPair::generate().unwrap()),
        ];
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let discovery = json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")});
        let jwks = json!({"keys": keys.iter().map(Key::jwk).collect::<Vec<_>>()});
        let app = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || async move { axum::Json(discovery) }),
            )
            .route("/jwks", get(move || async move { axum::Json(jwks) }));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { issuer, keys }
    }
}

/// One tool: the caller's scopes as the kit read them, and a token for the orders API.
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

    #[tool(description = "The caller's scopes and a token for the orders API")]
    async fn orders_token(&self, caller: Caller) -> Result<String, TokenError> {
        let minted = caller.token_for("orders-api").await?;
        Ok(json!({"scopes": caller.scopes(), "token": minted.access_token.expose()}).to_string())
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ps256_es384_and_eddsa_subject_tokens_pass_the_kit_mcp_sts_and_the_verifier() {
    let idp = AlgorithmIdp::start().await;
    // The IdP's tokens carry no roles (`roles_claim = ""`): the user's entitlement is the
    // token's own scopes.
    let sts = TestSts::start_opts(Options {
        extra_clients: format!(
            "[[issuers]]\nissuer = \"{}\"\naudience = \"mcp-sts\"\nagent_claim = \"client_id\"\nroles_claim = \"\"\n",
            idp.issuer
        ),
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
    let auth = McpAuth::builder(&resource)
        .trust(TrustedIssuer::discover(&idp.issuer))
        .exchange_with(exchange)
        .clock(Arc::new(sts.clock.clone()))
        .build()
        .await
        .unwrap();
    let app = auth.serve(OrdersTools::new);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut verifier = VerifierConfig::new(&sts.url, "orders-api");
    verifier.clock = Arc::new(sts.clock.clone());
    let verifier = Verifier::new(verifier).unwrap();

    let now = sts.clock_now();
    for key in &idp.keys {
        // `scp` as a list: each item is one scope, so "orders:admin extra" grants
        // neither orders:admin nor extra, at the kit or at mcp-sts.
        let claims = json!({
            "iss": idp.issuer, "sub": "alice@example.com", "aud": [resource, "mcp-sts"],
            "client_id": "claude-desktop", "iat": now, "exp": now + 600, "jti": format!("t-{}", key.alg()),
            "scope": "orders:read", "scp": ["orders:write", "orders:admin extra"],
        });
        let token = key.sign(&claims);
        let config = StreamableHttpClientTransportConfig::with_uri(resource.as_str()).auth_header(&token);
        let client = ().serve(StreamableHttpClientTransport::from_config(config)).await;
        let client = client.unwrap_or_else(|e| panic!("{}: the kit refused the token: {e}", key.alg()));
        let result = client
            .call_tool(CallToolRequestParams::new("orders_token"))
            .await
            .unwrap();
        assert_ne!(result.is_error, Some(true), "{}: {result:?}", key.alg());
        let text = result.content.first().and_then(|c| c.as_text()).unwrap().text.clone();
        let answer: Value = serde_json::from_str(&text).unwrap();
        let minted = answer["token"].as_str().unwrap();

        let identity = verifier.verify_at(minted, now).await.unwrap();
        assert_eq!(identity.user(), "alice@example.com", "{}", key.alg());
        let actors: Vec<&str> = identity.actors().iter().map(|a| a.sub.as_str()).collect();
        assert_eq!(actors, ["orders-mcp", "claude-desktop"], "{}", key.alg());

        let at_kit: BTreeSet<String> = serde_json::from_value(answer["scopes"].clone()).unwrap();
        assert_eq!(
            at_kit,
            BTreeSet::from(["orders:read".into(), "orders:write".into(), "orders:admin extra".into()]),
            "{}",
            key.alg()
        );
        // Every scope the audience knows is held at the kit exactly when mcp-sts grants it.
        for scope in ["orders:read", "orders:write", "orders:admin"] {
            assert_eq!(
                at_kit.contains(scope),
                identity.scopes().contains(scope),
                "{}: {scope}",
                key.alg()
            );
        }
        client.cancel().await.unwrap();
    }
}
