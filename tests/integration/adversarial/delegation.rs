//! Delegation: who may present a minted token, how deep a chain may grow (whatever
//! the modes it passes through), `may_act`, minted tokens as actor tokens, and
//! policy that a request cannot override.

use serde_json::json;

use super::arena::*;
use crate::support::attack::*;
use crate::support::sts::*;

/// Present `token` and expect `status`/`code` with nothing minted or changed.
async fn refused_quietly(
    arena: &Arena,
    status: u16,
    code: &str,
    reply: impl std::future::Future<Output = Reply>,
) -> Outcome {
    let watch = Watch::take(&arena.sts).await;
    let reply = reply.await;
    refused(&reply, status, code)?;
    watch.unchanged(&arena.sts).await
}

/// A minted token, or why not.
fn token(reply: &Reply) -> Result<String, String> {
    minted(reply)?;
    Ok(reply.token())
}

#[tokio::test]
async fn delegation_rules_hold_against_every_trick() {
    let arena = Arena::start().await;
    let sts = &arena.sts;
    let mut verdicts = Verdicts::new("delegation");
    let aud = |a: &'static str| ("audience", a);
    // A user whose token's own scope entitles it at billing-api (which has no role_scopes).
    let scoped = |sub: &str| arena.user_with(sub, &[], json!({"scope": "orders:read"}));

    let bob = arena.user_with("bob", &["order-admin"], json!({"sid": "sess-bob"}));
    let agent = sts.agent_token("claude-desktop");
    let hop1 = arena.exchange(ORDERS_MCP, &bob, "orders-api", Some(&agent)).await;
    let Ok(hop1) = token(&hop1) else {
        panic!("setup: first exchange failed: {}", hop1.text)
    };
    let by_resource = sts
        .exchange(&bob, &[("resource", "https://orders.example.com/api")])
        .await
        .token();
    let read_only = sts
        .exchange(&bob, &[aud("orders-api"), ("scope", "orders:read")])
        .await
        .token();

    // Who may present a minted token.
    verdicts.record(
        "hop_presented_by_the_client_it_was_issued_to",
        refused_quietly(
            &arena,
            400,
            "invalid_request",
            arena.exchange(ORDERS_MCP, &hop1, "orders-api", None),
        )
        .await,
    );
    verdicts.record(
        "hop_presented_by_an_unrelated_client",
        refused_quietly(
            &arena,
            400,
            "invalid_request",
            arena.exchange(BILLING_API, &hop1, "ledger-api", None),
        )
        .await,
    );
    verdicts.record(
        "hop_minted_for_a_resource_presented_by_another_client",
        refused_quietly(
            &arena,
            400,
            "invalid_request",
            arena.exchange(BILLING_API, &by_resource, "ledger-api", None),
        )
        .await,
    );
    verdicts.record(
        "hop_as_actor_presented_by_an_unrelated_client",
        refused_quietly(
            &arena,
            400,
            "invalid_request",
            arena.exchange(
                BILLING_API,
                &arena.user("carol", &["developer"]),
                "ledger-api",
                Some(&hop1),
            ),
        )
        .await,
    );
    verdicts.record(
        "hop_declared_as_an_id_token",
        refused_quietly(
            &arena,
            400,
            "invalid_request",
            sts.exchange_as(ORDERS_API, &hop1, ID_TOKEN, &[aud("billing-api")]),
        )
        .await,
    );
    verdicts.record(
        "hop_to_an_audience_the_client_may_not_reach",
        refused_quietly(
            &arena,
            400,
            "invalid_target",
            arena.exchange(ORDERS_API, &hop1, "orders-api", None),
        )
        .await,
    );
    verdicts.record(
        "hop_widening_its_scope",
        refused_quietly(
            &arena,
            400,
            "invalid_scope",
            sts.exchange_as(
                ORDERS_API,
                &read_only,
                ACCESS_TOKEN,
                &[aud("billing-api"), ("scope", "orders:write")],
            ),
        )
        .await,
    );

    // Depth: max_delegation_depth = 3 in the test configuration.
    let chain = async {
        let h2 = token(&arena.exchange(ORDERS_API, &hop1, "billing-api", None).await)?;
        let h3 = token(&arena.exchange(BILLING_API, &h2, "ledger-api", None).await)?;
        Ok::<_, String>(h3)
    }
    .await;
    verdicts.record(
        "fourth_actor_is_refused",
        match &chain {
            Ok(h3) => {
                refused_quietly(
                    &arena,
                    400,
                    "invalid_request",
                    arena.exchange(LEDGER_API, h3, "archive-api", None),
                )
                .await
            }
            Err(e) => Err(format!("setup: {e}")),
        },
    );
    let deep_act = arena.user_with(
        "dave",
        &["developer"],
        json!({"act": {"sub": "a3", "act": {"sub": "a2", "act": {"sub": "a1"}}}}),
    );
    verdicts.record(
        "upstream_act_counts_toward_the_depth",
        refused_quietly(&arena, 400, "invalid_request", arena.obo(&deep_act)).await,
    );
    let two_prior = arena.user_with(
        "erin",
        &["developer"],
        json!({"act": {"sub": "a2", "act": {"sub": "a1"}}}),
    );
    verdicts.record("upstream_act_then_a_hop_exceeds_the_depth", {
        match token(&arena.obo(&two_prior).await) {
            Ok(first) => {
                refused_quietly(
                    &arena,
                    400,
                    "invalid_request",
                    arena.exchange(ORDERS_API, &first, "billing-api", None),
                )
                .await
            }
            Err(e) => Err(format!("setup: {e}")),
        }
    });

    // Depth belongs to the chain, not to the mode.
    for (name, first_audience, hop_client) in [
        ("restricted_user", "relay-restricted", RELAY_RESTRICTED),
        ("service_identity", "relay-service", RELAY_SERVICE),
    ] {
        let user = arena.user("frank", &["developer"]);
        let outcome = async {
            let t1 = token(&arena.exchange(GATEWAY, &user, first_audience, None).await)?;
            let t2 = token(&arena.exchange(hop_client, &t1, "billing-api", None).await)?;
            let t3 = token(&arena.exchange(BILLING_API, &t2, "ledger-api", None).await)?;
            Ok::<_, String>(t3)
        }
        .await;
        verdicts.record(
            format!("{name}_hop_does_not_reset_the_depth"),
            match outcome {
                Ok(t3) => {
                    refused_quietly(
                        &arena,
                        400,
                        "invalid_request",
                        arena.exchange(LEDGER_API, &t3, "archive-api", None),
                    )
                    .await
                }
                Err(e) => Err(format!("setup: {e}")),
            },
        );
        let with_act = arena.user_with("grace", &["developer"], json!({"act": {"sub": "upstream-agent"}}));
        let outcome = async {
            let t1 = token(&arena.exchange(GATEWAY, &with_act, first_audience, None).await)?;
            let t2 = token(&arena.exchange(hop_client, &t1, "billing-api", None).await)?;
            Ok::<_, String>(t2)
        }
        .await;
        verdicts.record(
            format!("{name}_hop_keeps_upstream_actors_in_the_depth"),
            match outcome {
                Ok(t2) => {
                    refused_quietly(
                        &arena,
                        400,
                        "invalid_request",
                        arena.exchange(BILLING_API, &t2, "ledger-api", None),
                    )
                    .await
                }
                Err(e) => Err(format!("setup: {e}")),
            },
        );
    }

    // A minted token with a chain of its own is no actor token: it would erase the chain.
    verdicts.record(
        "delegated_minted_token_as_actor_token",
        refused_quietly(
            &arena,
            400,
            "invalid_request",
            arena.exchange(ORDERS_API, &scoped("carol"), "billing-api", Some(&hop1)),
        )
        .await,
    );
    let client_acted = arena.obo(&arena.user("heidi", &["order-admin"])).await.token();
    verdicts.record(
        "first_hop_token_with_client_as_actor_as_actor_token",
        refused_quietly(
            &arena,
            400,
            "invalid_request",
            arena.exchange(ORDERS_API, &scoped("ivan"), "billing-api", Some(&client_acted)),
        )
        .await,
    );

    // may_act (RFC 8693 §4.4).
    let good = sts.agent_token("good-agent");
    let rogue = sts.agent_token("rogue-agent");
    let restricted = arena.user_with("judy", &["developer"], json!({"may_act": {"sub": "good-agent"}}));
    verdicts.record(
        "may_act_names_another_agent",
        refused_quietly(
            &arena,
            400,
            "invalid_request",
            arena.exchange(ORDERS_MCP, &restricted, "orders-api", Some(&rogue)),
        )
        .await,
    );
    verdicts.record(
        "may_act_without_actor_token_the_client_is_not_named",
        refused_quietly(&arena, 400, "invalid_request", arena.obo(&restricted)).await,
    );
    let wrong_iss = arena.user_with(
        "kim",
        &["developer"],
        json!({"may_act": {"sub": "good-agent", "iss": "https://elsewhere.example"}}),
    );
    verdicts.record(
        "may_act_issuer_mismatch",
        refused_quietly(
            &arena,
            400,
            "invalid_request",
            arena.exchange(ORDERS_MCP, &wrong_iss, "orders-api", Some(&good)),
        )
        .await,
    );
    let client_with_iss = arena.user_with(
        "lee",
        &["developer"],
        json!({"may_act": {"sub": "orders-mcp", "iss": sts.idp.issuer()}}),
    );
    verdicts.record(
        "may_act_with_issuer_is_not_met_by_the_client",
        refused_quietly(&arena, 400, "invalid_request", arena.obo(&client_with_iss)).await,
    );
    let forged_agent = arena.forge.user_token("good-agent", arena.now());
    verdicts.record(
        "may_act_agent_from_another_issuer",
        refused_quietly(
            &arena,
            400,
            "invalid_request",
            arena.exchange(
                ORDERS_MCP,
                &arena.user_with(
                    "mia",
                    &["developer"],
                    json!({"may_act": {"sub": "good-agent", "iss": sts.idp.issuer()}}),
                ),
                "orders-api",
                Some(&forged_agent),
            ),
        )
        .await,
    );

    // Request shape around the actor.
    let alice = arena.user("alice", &["developer"]);
    verdicts.record(
        "actor_token_type_without_actor_token",
        refused_quietly(
            &arena,
            400,
            "invalid_request",
            sts.exchange(&alice, &[aud("orders-api"), ("actor_token_type", JWT)]),
        )
        .await,
    );
    verdicts.record(
        "actor_token_without_type",
        refused_quietly(
            &arena,
            400,
            "invalid_request",
            sts.exchange(&alice, &[aud("orders-api"), ("actor_token", &agent)]),
        )
        .await,
    );
    verdicts.record(
        "actor_token_of_an_unsupported_type",
        refused_quietly(
            &arena,
            400,
            "invalid_request",
            sts.exchange(
                &alice,
                &[
                    aud("orders-api"),
                    ("actor_token", &agent),
                    ("actor_token_type", "urn:ietf:params:oauth:token-type:saml2"),
                ],
            ),
        )
        .await,
    );
    verdicts.record(
        "requested_token_type_refresh_token",
        refused_quietly(
            &arena,
            400,
            "invalid_request",
            sts.exchange(
                &alice,
                &[
                    aud("orders-api"),
                    ("requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token"),
                ],
            ),
        )
        .await,
    );

    // Targets: one audience per token, only those the client lists.
    for (name, params) in [
        (
            "audience_and_resource_naming_different_targets",
            vec![aud("orders-api"), ("resource", "https://billing.example.com")],
        ),
        ("audience_repeated", vec![aud("orders-api"), aud("inventory-api")]),
        (
            "resource_with_fragment",
            vec![("resource", "https://orders.example.com/api#admin")],
        ),
        ("resource_relative", vec![("resource", "/api")]),
        ("audience_unknown", vec![aud("payroll-api")]),
        ("audience_of_another_client", vec![aud("billing-api")]),
        ("audience_differing_in_case", vec![aud("Orders-API")]),
    ] {
        verdicts.record(
            name,
            refused_quietly(&arena, 400, "invalid_target", sts.exchange(&alice, &params)).await,
        );
    }

    // Policy chooses the mode, never the request.
    verdicts.record("mode_and_actor_parameters_are_ignored", {
        let reply = sts
            .exchange(
                &alice,
                &[
                    aud("orders-api"),
                    ("delegation_mode", "restricted_user"),
                    ("act", "root"),
                    ("sub", "admin"),
                ],
            )
            .await;
        match minted(&reply) {
            Ok(c)
                if c["delegation_mode"] == "on_behalf_of"
                    && c["sub"] == "alice"
                    && c["act"] == json!({"sub": "orders-mcp", "sub_profile": "service"}) =>
            {
                Ok(())
            }
            Ok(c) => Err(format!("request parameters changed the token: {c}")),
            Err(e) => Err(e),
        }
    });
    verdicts.finish();
}
