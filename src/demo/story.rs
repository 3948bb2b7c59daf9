//! The script: alice, bob and carol use the same agent and MCP server; each call is
//! exchanged at mcp-sts and decided downstream on the verified identity.

use std::time::Duration;

use serde_json::json;

use super::outcome::{DemoOutcome, StreamDelivery};
use super::users::{ALICE, BOB, CAROL, DemoUser};
use super::{Demo, DemoError};
use crate::client::{ExchangeRequest, Secret};
use crate::contract::revocation::RevocationKind;

pub use super::scene::Narrator;
use super::scene::{Direct, Scene};

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

    super::workload::play(&mut scene).await?;
    super::enterprise::play(&mut scene).await?;

    outcome.trail = demo.trail.entries();
    outcome.sts_audit = demo.sts_audit();
    Ok(outcome)
}
