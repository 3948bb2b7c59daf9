//! The enterprise-managed authorization step (MCP's extension, built on the Identity
//! Assertion JWT Authorization Grant draft): alice signs in once at the company IdP;
//! the agent trades her ID token at mcp-sts for an ID-JAG addressed to the orders MCP
//! server's authorization server (mcp-sts again), redeems it there for an access token
//! to the MCP server, and calls a tool whose downstream call still names alice and the
//! agent. After alice is offboarded, new grants, redemptions and exchanges are refused.

use serde_json::{Value, json};

use super::DemoError;
use super::agent::AgentSession;
use super::outcome::{CallOutcome, Denial, TokenStep};
use super::scene::{Direct, Scene};
use super::users::{AGENT, ALICE};
use mcp_sts_contract::jose::compact::peek;
use mcp_sts_downstream::client::{ExchangeRequest, MintedToken, Secret, StsError};

/// The grant types as the outcome names them.
const TOKEN_EXCHANGE: &str = "token-exchange";
const JWT_BEARER: &str = "jwt-bearer";

/// What the agent asks the grant for: reading orders is all this task needs.
const GRANT_SCOPES: [&str; 1] = ["orders:read"];

/// Play the step on `scene`; it ends with alice offboarded.
pub(super) async fn play(scene: &mut Scene<'_>) -> Result<(), DemoError> {
    let demo = scene.demo;
    let (sts, mcp) = (demo.urls.sts.clone(), demo.urls.mcp.clone());
    let agent = demo.agent_client()?;
    scene.narrator.say(&format!(
        "\n== Enterprise-managed authorization: {} signs in once; mcp-sts is both her company's token service and the authorization server of the orders MCP server ==",
        ALICE.name
    ));
    let session = format!("sso-{}", uuid::Uuid::new_v4().simple());
    let id_token = Secret::new(ALICE.id_token(&demo.idp, &session, demo.now())?);
    scene.narrator.say(&format!(
        "-> the development IdP logs {} in: an ID token for agent {AGENT} (aud {AGENT}, sid {session})",
        ALICE.name
    ));

    let ask = || ExchangeRequest::id_jag(id_token.clone(), &sts, &mcp).scopes(GRANT_SCOPES);
    scene.narrator.say(&format!(
        "-> {AGENT} trades her ID token at mcp-sts for an ID-JAG (token exchange, requested_token_type id-jag, audience {sts}, resource {mcp})"
    ));
    let grant = scene
        .token_step("alice_gets_grant", TOKEN_EXCHANGE, agent.exchange_uncached(&ask()))
        .await;
    let Some(grant) = grant else {
        return Ok(());
    };
    scene.narrator.say(&format!(
        "-> {AGENT} redeems the ID-JAG at mcp-sts as the MCP server's authorization server (RFC 7523 jwt-bearer)"
    ));
    let access = scene
        .token_step("alice_redeems_grant", JWT_BEARER, agent.redeem_grant(&grant, &[]))
        .await;
    scene.narrator.say(&format!(
        "-> {AGENT} presents the same ID-JAG again (grants are single use)"
    ));
    scene
        .token_step("alice_replays_grant", JWT_BEARER, agent.redeem_grant(&grant, &[]))
        .await;
    let Some(access) = access else {
        return Ok(());
    };

    scene.narrator.say(&format!(
        "\n== {} opens a session with agent {AGENT}, presenting the redeemed token (issuer mcp-sts, bound to the agent's key) with a DPoP proof on every request ==",
        ALICE.name
    ));
    let mcp_session = AgentSession::connect_bound(&mcp, access.expose(), demo.agent_key.clone()).await?;
    scene
        .call(
            &mcp_session,
            ALICE,
            "alice_grant_reads_order",
            "reads her order 42 through the granted access",
            "get_order",
            json!({ "order_id": 42 }),
        )
        .await?;

    // What that token is worth without the agent's key.
    scene
        .replay_copied(&mcp_session, ALICE, "alice_copied_mcp_token_refused")
        .await;

    // A grant obtained before the offboarding and not yet redeemed.
    scene
        .narrator
        .say(&format!("-> {AGENT} obtains a second ID-JAG and keeps it for later"));
    let held = scene
        .token_step(
            "alice_gets_second_grant",
            TOKEN_EXCHANGE,
            agent.exchange_uncached(&ask()),
        )
        .await;

    demo.offboard(ALICE.sub).await?;
    scene.narrator.say(&format!(
        "\n!! security offboards {} (POST /admin/revocations, kind subject) while her grant-based session is open",
        ALICE.sub
    ));
    scene.outcome.offboarded.push(ALICE.sub.to_owned());
    scene
        .call(
            &mcp_session,
            ALICE,
            "alice_grant_after_offboarding",
            "reads order 42 again (the MCP server refuses the token mcp-sts minted for her)",
            "get_order",
            json!({ "order_id": 42 }),
        )
        .await?;
    mcp_session.close().await;
    scene
        .direct(
            ALICE,
            "alice_grant_exchange_after_offboarding",
            "her redeemed token exchanged at mcp-sts with the MCP server's credentials (for inventory-api)",
            Direct::Exchange {
                token: access.expose(),
                audience: super::services::INVENTORY_AUDIENCE,
            },
        )
        .await?;
    scene
        .narrator
        .say(&format!("-> {AGENT} asks for a new ID-JAG with her ID token"));
    scene
        .token_step(
            "alice_grant_after_offboarding_refused",
            TOKEN_EXCHANGE,
            agent.exchange_uncached(&ask()),
        )
        .await;
    if let Some(held) = held {
        scene.narrator.say(&format!("-> {AGENT} redeems the ID-JAG it kept"));
        scene
            .token_step(
                "alice_redemption_after_offboarding_refused",
                JWT_BEARER,
                agent.redeem_grant(&held, &[]),
            )
            .await;
    }
    Ok(())
}

impl Scene<'_> {
    /// Record and narrate one token request of the agent; the issued token when granted.
    async fn token_step(
        &mut self,
        step: &'static str,
        grant_type: &'static str,
        request: impl Future<Output = Result<MintedToken, StsError>>,
    ) -> Option<Secret> {
        let (outcome, token) = match request.await {
            Ok(minted) => {
                let answer = describe(&minted);
                let text = |pointer: &str| answer.pointer(pointer).and_then(Value::as_str).unwrap_or("-");
                let aud = answer.pointer("/claims/aud").map(Value::to_string).unwrap_or_default();
                self.narrator.say(&format!(
                    "   granted: token_type {}, typ {}, sub {}, aud {aud}, {}, scope {:?}",
                    text("/token_type"),
                    text("/header/typ"),
                    text("/claims/sub"),
                    acting(&answer),
                    text("/scope"),
                ));
                (CallOutcome::Allowed(answer), Some(minted.access_token))
            }
            Err(error) => {
                let denial = refusal(&error);
                self.narrator.say(&format!(
                    "   REFUSED by {}: HTTP {} {} ({})",
                    denial.by, denial.status, denial.code, denial.description
                ));
                (CallOutcome::Denied(denial), None)
            }
        };
        self.outcome.token_steps.push(TokenStep {
            step,
            user: ALICE.sub,
            grant_type,
            outcome,
        });
        token
    }
}

/// The response and the decoded token (header and claims), without the token itself.
fn describe(minted: &MintedToken) -> Value {
    let (header, claims) = match peek(minted.access_token.expose()) {
        Ok(jwt) => (Value::Object(jwt.header), Value::Object(jwt.claims)),
        Err(_) => (Value::Null, Value::Null),
    };
    json!({
        "token_type": minted.token_type,
        "issued_token_type": minted.issued_token_type,
        "scope": minted.scope,
        "expires_in": minted.expires_in.map(|d| d.as_secs()),
        "header": header,
        "claims": claims,
    })
}

/// `act <agent>` for an access token, `client_id <agent>` for a grant.
fn acting(answer: &Value) -> String {
    let claim = |pointer: &str| answer.pointer(pointer).and_then(Value::as_str);
    match (claim("/claims/act/sub"), claim("/claims/client_id")) {
        (Some(actor), _) => format!("act {actor}"),
        (None, Some(client)) => format!("client_id {client}"),
        (None, None) => "no agent".to_owned(),
    }
}

/// A refused token request, as the demo reports refusals.
fn refusal(error: &StsError) -> Denial {
    match error {
        StsError::OAuth {
            status,
            code,
            description,
        } => Denial {
            by: "mcp-sts".into(),
            status: *status,
            code: code.as_str().to_owned(),
            description: description.clone().unwrap_or_default(),
        },
        other => Denial {
            by: "mcp-sts".into(),
            status: 0,
            code: "unreachable".into(),
            description: other.to_string(),
        },
    }
}
