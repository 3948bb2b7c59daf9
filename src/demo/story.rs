//! The script: alice, bob and carol use the same agent and MCP server; each call is
//! exchanged at mcp-sts and decided downstream on the verified identity.

use std::time::Instant;

use serde_json::{Value, json};

use super::agent::AgentSession;
use super::outcome::{CallOutcome, DemoOutcome, StreamDelivery, ToolCall};
use super::users::{self, ALICE, BOB, CAROL, DemoUser};
use super::{Demo, DemoError};
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
            println!("{line}");
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
        Ok(())
    }
}

/// The offboarding travels to the orders API as a Shared Signals event (a CAEP
/// `session-revoked` SET on its poll stream); from then on the orders API refuses the
/// user's token by itself, without asking mcp-sts.
async fn offboarding_reaches_orders_api(
    scene: &mut Scene<'_>,
    user: DemoUser,
    since: Instant,
) -> Result<(), DemoError> {
    let signals = &scene.demo.orders_signals;
    let after = signals.heard(RevocationKind::Subject, user.sub, since).await?;
    scene.narrator.say(&format!(
        "   orders-api heard it on its Shared Signals stream after {} ms: a signed CAEP session-revoked \
         event naming {} (RFC 8936 poll); it now refuses her token locally, without introspection",
        after.as_millis(),
        user.sub
    ));
    scene.outcome.stream_deliveries.push(StreamDelivery {
        service: super::orders_api::AUDIENCE,
        revoked: format!("{}:{}", RevocationKind::Subject, user.sub),
        after_ms: after.as_millis(),
    });
    Ok(())
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

    let offboarded_at = Instant::now();
    demo.offboard(CAROL.sub).await?;
    scene.narrator.say(&format!(
        "\n!! security offboards {} (POST /admin/revocations, kind subject) while her session is open",
        CAROL.sub
    ));
    scene.outcome.offboarded.push(CAROL.sub.to_owned());
    offboarding_reaches_orders_api(&mut scene, CAROL, offboarded_at).await?;
    scene
        .call(
            &carol,
            CAROL,
            "carol_after_offboarding",
            "reads order 77 again",
            "get_order",
            order(77),
        )
        .await?;
    let sku = json!({"sku": "HP-77"});
    scene
        .call(
            &carol,
            CAROL,
            "carol_new_exchange_after_offboarding",
            "checks stock of HP-77",
            "check_stock",
            sku,
        )
        .await?;
    carol.close().await;

    super::enterprise::play(&mut scene).await?;

    outcome.trail = demo.trail.entries();
    outcome.sts_audit = demo.sts_audit();
    Ok(outcome)
}
