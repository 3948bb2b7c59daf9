//! The script: alice, bob and carol use the same agent and MCP server; each call is
//! exchanged at mcp-sts and decided downstream on the verified identity.

use std::time::Duration;

use serde_json::{Value, json};

use super::agent::AgentSession;
use super::outcome::{CallOutcome, DemoOutcome, Denial, StreamDelivery, ToolCall};
use super::users::{self, ALICE, BOB, CAROL, DemoUser};
use super::{Demo, DemoError};
use crate::client::{ExchangeRequest, Secret, StsError};
use crate::contract::revocation::RevocationKind;

/// Prints the story as it happens (or stays quiet, for tests).
#[derive(Debug, Clone, Copy)]
pub struct Narrator {
    quiet: bool,
}

impl Narrator {
    /// A narrator that prints to stdout.
    pub fn stdout() -> Self {
        Self { quiet: false }
    }

    /// A narrator that prints nothing.
    pub fn quiet() -> Self {
        Self { quiet: true }
    }

    /// Print one line.
    pub fn say(&self, line: &str) {
        if !self.quiet {
            crate::say!("{line}");
        }
    }
}

/// One user's session plus the bookkeeping of the story.
pub(super) struct Scene<'a> {
    pub(super) demo: &'a Demo,
    pub(super) narrator: Narrator,
    pub(super) outcome: &'a mut DemoOutcome,
}

impl Scene<'_> {
    async fn connect(&self, user: DemoUser) -> Result<AgentSession, DemoError> {
        let now = self.demo.now();
        let token = user.token_for(&self.demo.idp, &self.demo.urls.mcp, "", now)?;
        self.narrator.say(&format!(
            "\n== {} ({}, roles: {}) opens a session with agent {} ==",
            user.name,
            user.sub,
            if user.roles.is_empty() {
                "none".to_owned()
            } else {
                user.roles.join(", ")
            },
            users::AGENT
        ));
        AgentSession::connect(&self.demo.urls.mcp, &token).await
    }

    pub(super) async fn call(
        &mut self,
        session: &AgentSession,
        user: DemoUser,
        step: &'static str,
        what: &str,
        tool: &'static str,
        arguments: Value,
    ) -> Result<(), DemoError> {
        self.narrator.say(&format!("-> {} {what}  [tool {tool}]", user.name));
        let seen = self.demo.trail.entries().len();
        let outcome = session.call(tool, arguments).await?;
        self.record(step, user, tool, outcome, seen);
        Ok(())
    }

    /// A request that does not go through the MCP server: what a holder of `token`
    /// (the MCP server's client credentials, or a token it was handed) could try.
    pub(super) async fn direct(
        &mut self,
        user: DemoUser,
        step: &'static str,
        what: &str,
        request: Direct<'_>,
    ) -> Result<(), DemoError> {
        self.narrator.say(&format!("-> {what}"));
        let seen = self.demo.trail.entries().len();
        let outcome = match request {
            Direct::OrdersApi { token, path } => call_orders_api(&self.demo.urls.orders, token, path).await,
            Direct::Exchange { token, audience } => exchange_as_mcp_server(self.demo, token, audience).await,
        };
        self.record(step, user, "-", outcome, seen);
        Ok(())
    }

    fn record(&mut self, step: &'static str, user: DemoUser, tool: &'static str, outcome: CallOutcome, seen: usize) {
        let trail: Vec<_> = self.demo.trail.entries().into_iter().skip(seen).collect();
        match &outcome {
            CallOutcome::Allowed(value) => self.narrator.say(&format!("   allowed: {value}")),
            CallOutcome::Denied(d) => self.narrator.say(&format!(
                "   DENIED by {}: HTTP {} {}{}",
                d.by,
                d.status,
                d.code,
                if d.description.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", d.description)
                }
            )),
        }
        for entry in &trail {
            self.narrator.say(&format!(
                "   {} audit: {}  [mode {}]",
                entry.service, entry.line, entry.mode
            ));
        }
        self.outcome.calls.push(ToolCall {
            step,
            user: user.sub,
            tool,
            outcome,
            trail,
        });
    }
}

/// A request the story makes without the MCP server.
pub(super) enum Direct<'a> {
    /// `GET {orders-api}{path}` with `token`.
    OrdersApi {
        /// The bearer token.
        token: &'a str,
        /// The path, e.g. `/orders/77`.
        path: &'a str,
    },
    /// Exchange `token` at mcp-sts for `audience` with the MCP server's credentials.
    Exchange {
        /// The subject token.
        token: &'a str,
        /// The downstream audience.
        audience: &'a str,
    },
}

/// The orders API's answer to `token`, as the demo reports outcomes.
async fn call_orders_api(base: &str, token: &str, path: &str) -> CallOutcome {
    let response = match reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
    {
        Ok(response) => response,
        Err(error) => {
            return CallOutcome::Denied(Denial {
                by: super::orders_api::AUDIENCE.into(),
                status: 502,
                code: "unreachable".into(),
                description: error.without_url().to_string(),
            });
        }
    };
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if (200..300).contains(&status) {
        return CallOutcome::Allowed(body);
    }
    let param = |name: &str| {
        let start = challenge.find(&format!("{name}=\""))? + name.len() + 2;
        challenge.get(start..)?.split('"').next().map(str::to_owned)
    };
    CallOutcome::Denied(Denial {
        by: super::orders_api::AUDIENCE.into(),
        status,
        code: param("error")
            .or_else(|| body.get("error").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| format!("http_{status}")),
        description: param("error_description").unwrap_or_default(),
    })
}

/// Exchange `token` for `audience` as the MCP server (`orders-mcp`) would; the minted
/// token's claims when granted.
async fn exchange_as_mcp_server(demo: &Demo, token: &str, audience: &str) -> CallOutcome {
    let exchanged = async {
        let client = demo.mcp_server_client()?;
        let request = ExchangeRequest::new(Secret::new(token)).audience(audience);
        Ok::<_, DemoError>(client.exchange_uncached(&request).await)
    }
    .await;
    match exchanged {
        Ok(Ok(minted)) => CallOutcome::Allowed(
            crate::jose::compact::claims(minted.access_token.expose())
                .map(Value::Object)
                .unwrap_or(Value::Null),
        ),
        Ok(Err(StsError::OAuth {
            status,
            code,
            description,
        })) => CallOutcome::Denied(Denial {
            by: "mcp-sts".into(),
            status,
            code: code.as_str().to_owned(),
            description: description.unwrap_or_default(),
        }),
        Ok(Err(other)) => CallOutcome::Denied(Denial {
            by: "mcp-sts".into(),
            status: 0,
            code: "unreachable".into(),
            description: other.to_string(),
        }),
        Err(error) => CallOutcome::Denied(Denial {
            by: "mcp-sts".into(),
            status: 0,
            code: "unreachable".into(),
            description: error.to_string(),
        }),
    }
}

/// The offboarding travels to the orders API and to the MCP server as a Shared Signals
/// event (a CAEP `session-revoked` SET on each one's poll stream); from then on each
/// refuses the user's tokens by itself, without asking mcp-sts.
fn offboarding_reaches_services(scene: &mut Scene<'_>, user: DemoUser, heard: &[(&'static str, Duration)]) {
    for (service, after) in heard {
        scene.narrator.say(&format!(
            "   {service} heard it on its Shared Signals stream after {} ms: a signed CAEP session-revoked \
             event naming {} (RFC 8936 poll); it now refuses her tokens locally, without introspection",
            after.as_millis(),
            user.sub
        ));
        scene.outcome.stream_deliveries.push(StreamDelivery {
            service,
            revoked: format!("{}:{}", RevocationKind::Subject, user.sub),
            after_ms: after.as_millis(),
        });
    }
}

/// Play the story against a started [`Demo`].
pub async fn play(demo: &Demo, narrator: Narrator) -> Result<DemoOutcome, DemoError> {
    let mut outcome = DemoOutcome::default();
    let mut scene = Scene {
        demo,
        narrator,
        outcome: &mut outcome,
    };

    let alice = scene.connect(ALICE).await?;
    let order = |id: u32| json!({ "order_id": id });
    scene
        .call(
            &alice,
            ALICE,
            "alice_reads_own_order",
            "reads her order 42",
            "get_order",
            order(42),
        )
        .await?;
    scene
        .call(
            &alice,
            ALICE,
            "alice_reads_bobs_order",
            "tries bob's order 43",
            "get_order",
            order(43),
        )
        .await?;
    scene
        .call(
            &alice,
            ALICE,
            "alice_checks_stock",
            "checks stock of KB-42",
            "check_stock",
            json!({"sku": "KB-42"}),
        )
        .await?;
    scene
        .call(
            &alice,
            ALICE,
            "alice_legacy_profile",
            "reads her legacy profile",
            "legacy_profile",
            json!({}),
        )
        .await?;
    scene
        .call(
            &alice,
            ALICE,
            "alice_recent_activity",
            "asks for her recent activity",
            "get_recent_activity",
            json!({}),
        )
        .await?;
    alice.close().await;

    // What a copied token is worth: one the MCP server holds for alice, bound to its
    // DPoP key, replayed by someone who read it from a log but has no key.
    let alice_token = ALICE.token_for(&demo.idp, &demo.urls.mcp, "", demo.now())?;
    let copied = demo
        .mcp_server_bound_client()?
        .exchange_uncached(&ExchangeRequest::new(Secret::new(alice_token)).audience(super::orders_api::AUDIENCE))
        .await?
        .access_token;
    scene
        .direct(
            ALICE,
            "copied_token_refused",
            "an orders-api token the MCP server holds for alice, copied and replayed as a bearer token",
            Direct::OrdersApi {
                token: copied.expose(),
                path: "/orders/42",
            },
        )
        .await?;

    let bob = scene.connect(BOB).await?;
    scene
        .call(
            &bob,
            BOB,
            "bob_reads_alices_order",
            "reads order 42 (alice's)",
            "get_order",
            order(42),
        )
        .await?;
    let ship = json!({ "order_id": 42, "status": "shipped" });
    scene
        .call(
            &bob,
            BOB,
            "bob_updates_order",
            "marks order 42 shipped",
            "update_order",
            ship,
        )
        .await?;
    bob.close().await;

    let carol = scene.connect(CAROL).await?;
    scene
        .call(
            &carol,
            CAROL,
            "carol_reads_own_order",
            "reads her order 77",
            "get_order",
            order(77),
        )
        .await?;
    let cancel = json!({ "order_id": 77, "status": "cancelled" });
    scene
        .call(
            &carol,
            CAROL,
            "carol_update_denied",
            "tries to cancel order 77",
            "update_order",
            cancel,
        )
        .await?;

    // What the MCP server holds for carol: an orders-api token minted before the
    // offboarding (the story obtains one with the MCP server's credentials, to show
    // what the orders API does with it afterwards).
    let carol_token = CAROL.token_for(&demo.idp, &demo.urls.mcp, "", demo.now())?;
    let held = demo
        .mcp_server_client()?
        .exchange_uncached(
            &ExchangeRequest::new(Secret::new(carol_token.clone())).audience(super::orders_api::AUDIENCE),
        )
        .await?
        .access_token;

    let heard = demo.offboard(CAROL.sub).await?;
    scene.narrator.say(&format!(
        "\n!! security offboards {} (POST /admin/revocations, kind subject) while her session is open",
        CAROL.sub
    ));
    scene.outcome.offboarded.push(CAROL.sub.to_owned());
    offboarding_reaches_services(&mut scene, CAROL, &heard);
    scene
        .call(
            &carol,
            CAROL,
            "carol_after_offboarding",
            "reads order 77 again (the MCP server refuses her token itself)",
            "get_order",
            order(77),
        )
        .await?;
    carol.close().await;
    scene
        .direct(
            CAROL,
            "carol_held_token_after_offboarding",
            "the orders-api token minted for carol before the offboarding, presented to orders-api",
            Direct::OrdersApi {
                token: held.expose(),
                path: "/orders/77",
            },
        )
        .await?;
    scene
        .direct(
            CAROL,
            "carol_new_exchange_after_offboarding",
            "carol's token exchanged at mcp-sts with the MCP server's credentials (for inventory-api)",
            Direct::Exchange {
                token: &carol_token,
                audience: super::services::INVENTORY_AUDIENCE,
            },
        )
        .await?;

    super::enterprise::play(&mut scene).await?;

    outcome.trail = demo.trail.entries();
    outcome.sts_audit = demo.sts_audit();
    Ok(outcome)
}
