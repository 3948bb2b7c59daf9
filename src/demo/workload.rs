//! A workload-identified agent: the demo runs its own SPIFFE trust domain
//! (`demo.example`: a signing key and a bundle endpoint publishing it as a `jwt-svid`
//! key), and an agent running as `spiffe://demo.example/agents/planner` proves who it is
//! with a JWT-SVID, no secret and no registration. A `[[workloads]]` rule lets it act;
//! the MCP server exchanges alice's token with the SVID as `actor_token`, the orders API
//! sees the SPIFFE ID in the verified identity, and mcp-sts's audit line names it. Then
//! security revokes the agent by its SPIFFE ID.

use std::time::Instant;

use axum::Json;
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::outcome::{CallOutcome, Denial};
use super::scene::{Direct, Scene};
use super::users::{ALICE, STS_AUDIENCE};
use super::{DemoError, bind};
use crate::client::{ExchangeRequest, Secret, StsError};
use crate::config::SigningAlgorithm;
use crate::contract::revocation::RevocationKind;
use crate::contract::urn::JWT_TOKEN_TYPE;
use crate::keys::SigningKey;

/// The demo's SPIFFE trust domain.
pub const TRUST_DOMAIN: &str = "demo.example";
/// The workload agent's SPIFFE ID.
pub const PLANNER: &str = "spiffe://demo.example/agents/planner";
/// How long an SVID lives (SPIRE's default is five minutes).
const SVID_TTL: u64 = 300;

/// The trust domain the demo runs: its key, and where its bundle is served.
pub struct DemoTrustDomain {
    key: SigningKey,
    /// The SPIFFE bundle endpoint (loopback http).
    pub bundle_endpoint: String,
}

impl std::fmt::Debug for DemoTrustDomain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoTrustDomain")
            .field("bundle_endpoint", &self.bundle_endpoint)
            .finish_non_exhaustive()
    }
}

impl DemoTrustDomain {
    /// Generate the trust domain's key and serve its bundle until `stop`.
    pub async fn start(stop: watch::Receiver<bool>) -> Result<Self, DemoError> {
        let (key, _) =
            SigningKey::generate(SigningAlgorithm::ES256, 0).map_err(|e| DemoError::Workload(e.to_string()))?;
        let mut jwk = key.public_jwk.clone();
        if let Some(fields) = jwk.as_object_mut() {
            fields.insert("use".into(), json!("jwt-svid"));
        }
        let bundle = json!({"keys": [jwk], "spiffe_sequence": 1, "spiffe_refresh_hint": 300});
        let (listener, base) = bind().await?;
        let app = axum::Router::new().route("/bundle", get(move || std::future::ready(Json(bundle.clone()))));
        super::trail::spawn_server(listener, app, stop, "spiffe-bundle");
        Ok(Self {
            key,
            bundle_endpoint: format!("{base}/bundle"),
        })
    }

    /// A JWT-SVID for `spiffe_id`, in SPIRE's shape, for mcp-sts at `audience`.
    pub fn svid(&self, spiffe_id: &str, audience: &str, now: u64) -> Result<String, DemoError> {
        let header = json!({"alg": "ES256", "kid": self.key.kid, "typ": "JWT"});
        let claims = json!({"sub": spiffe_id, "aud": [audience], "iat": now, "exp": now + SVID_TTL});
        self.key
            .sign_raw(&header, &claims)
            .map_err(|e| DemoError::Workload(e.to_string()))
    }

    /// mcp-sts's configuration of the trust domain and of what its agents may do.
    pub fn toml(&self) -> String {
        format!(
            r#"
[[issuers]]
kind = "spiffe"
trust_domain = "{TRUST_DOMAIN}"
bundle_endpoint = "{}"

[[workloads]]
pattern = "spiffe://{TRUST_DOMAIN}/agents/*"
actor = true
"#,
            self.bundle_endpoint
        )
    }
}

/// The MCP server exchanges `subject` for the orders API with `svid` as the actor.
async fn exchange_with_workload_actor(scene: &Scene<'_>, subject: &str, svid: &str) -> Result<CallOutcome, DemoError> {
    let request = ExchangeRequest::new(Secret::new(subject))
        .audience(super::orders_api::AUDIENCE)
        .actor(Secret::new(svid), JWT_TOKEN_TYPE);
    Ok(
        match scene.demo.mcp_server_client()?.exchange_uncached(&request).await {
            Ok(minted) => CallOutcome::Allowed(json!({"access_token": minted.access_token.expose()})),
            Err(StsError::OAuth {
                status,
                code,
                description,
            }) => CallOutcome::Denied(Denial {
                by: "mcp-sts".into(),
                status,
                code: code.as_str().to_owned(),
                description: description.unwrap_or_default(),
            }),
            Err(other) => return Err(other.into()),
        },
    )
}

/// The workload agent's part of the story.
pub(super) async fn play(scene: &mut Scene<'_>) -> Result<(), DemoError> {
    let demo = scene.demo;
    scene.narrator.say(&format!(
        "\n== agent {PLANNER} runs as a workload: a JWT-SVID from trust domain {TRUST_DOMAIN} \
         (bundle at {}), no secret, no registration; it acts for {} ==",
        demo.trust_domain.bundle_endpoint, ALICE.sub
    ));
    let now = demo.now();
    let alice = demo
        .idp
        .user_token(ALICE.sub, STS_AUDIENCE, ALICE.roles, now, SVID_TTL, &json!({}))?;
    let svid = demo.trust_domain.svid(PLANNER, &demo.urls.sts, now)?;
    scene.narrator.say(&format!(
        "-> the MCP server exchanges {}'s token with the agent's SVID as actor_token (for orders-api)",
        ALICE.name
    ));
    let exchanged = exchange_with_workload_actor(scene, &alice, &svid).await?;
    let Some(token) = exchanged
        .allowed()
        .and_then(|v| v["access_token"].as_str())
        .map(str::to_owned)
    else {
        scene.record(
            "workload_agent_exchange",
            ALICE,
            "-",
            exchanged,
            demo.trail.entries().len(),
        );
        return Ok(());
    };
    let act = crate::jose::compact::claims(&token)
        .ok()
        .and_then(|c| c.get("act").cloned())
        .unwrap_or(Value::Null);
    scene.narrator.say(&format!("   minted: act = {act}"));
    if let Some(line) = demo.sts_audit().iter().rev().find(|e| e["decision"] == "allow") {
        let text = |key: &str| line[key].as_str().unwrap_or("-").to_owned();
        let chain: Vec<&str> = line["actor_chain"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        scene.narrator.say(&format!(
            "   mcp-sts audit: allow {} for {}, actor chain {}, client {}",
            text("audience"),
            text("sub"),
            chain.join(" > "),
            text("client_id")
        ));
    }
    scene
        .direct(
            ALICE,
            "workload_agent_reads_order",
            "the token, presented to orders-api: GET /orders/42",
            Direct::OrdersApi {
                token: &token,
                path: "/orders/42",
            },
        )
        .await?;

    let started = Instant::now();
    demo.revoke(RevocationKind::Agent, PLANNER, "agent decommissioned")
        .await?;
    let after = demo
        .orders_signals
        .heard(RevocationKind::Agent, PLANNER, started)
        .await?;
    scene.narrator.say(&format!(
        "\n!! security revokes agent {PLANNER} by its SPIFFE ID (POST /admin/revocations, kind agent); \
         orders-api heard it on its Shared Signals stream after {} ms",
        after.as_millis()
    ));
    scene
        .direct(
            ALICE,
            "workload_agent_token_after_revocation",
            "the token minted before the revocation, presented to orders-api again",
            Direct::OrdersApi {
                token: &token,
                path: "/orders/42",
            },
        )
        .await?;
    let fresh = demo.trust_domain.svid(PLANNER, &demo.urls.sts, demo.now())?;
    scene
        .narrator
        .say("-> the MCP server exchanges alice's token again, with a fresh SVID of the agent");
    let seen = demo.trail.entries().len();
    let refused = exchange_with_workload_actor(scene, &alice, &fresh).await?;
    scene.record("workload_agent_refused_after_revocation", ALICE, "-", refused, seen);
    Ok(())
}
