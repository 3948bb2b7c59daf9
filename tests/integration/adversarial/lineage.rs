//! Revocation lineage at every door. A minted token answers for everything it came
//! from: its `jti`, user, session, the client it was issued to and every actor in its
//! chain (`act`, nested, or `user.agent`). After any of these is revoked, the token
//! is refused as subject and as actor of a further exchange, is inactive at
//! introspection, and `/revoke` of it neither fails nor undoes anything.
//!
//! Only a minted token naming nobody but its own subject may be an actor token (a
//! `service_identity` token obtained without an actor token), so the actor door is
//! tried with such a token.

use serde_json::json;

use super::arena::*;
use crate::support::attack::*;
use crate::support::sts::*;

/// Two minted tokens of one user and session, and a further subject for the actor door.
struct Lineage {
    arena: Arena,
    /// `on_behalf_of`, second hop: issued to `orders-api` for `billing-api`,
    /// act = {orders-api, act: {agent-a}}.
    hop2: String,
    /// `service_identity`: issued to `gateway` for `relay-service`, user.agent = agent-s.
    service: String,
    /// `service_identity` without an actor token: `gateway` acting as itself.
    service_alone: String,
    /// A user token `relay-service` may exchange for `billing-api` with `service` as actor.
    bob: String,
}

async fn setup() -> Result<Lineage, String> {
    let arena = Arena::start().await;
    let alice = arena.user_with("alice", &["order-admin"], json!({"sid": "sess-alice"}));
    let agent_a = arena.sts.agent_token("agent-a");
    let agent_s = arena.sts.agent_token("agent-s");
    let hop1 = arena.exchange(ORDERS_MCP, &alice, "orders-api", Some(&agent_a)).await;
    minted(&hop1).map_err(|e| format!("setup hop1: {e}"))?;
    let hop2 = arena.exchange(ORDERS_API, &hop1.token(), "billing-api", None).await;
    minted(&hop2).map_err(|e| format!("setup hop2: {e}"))?;
    let alice_dev = arena.user_with("alice", &["developer"], json!({"sid": "sess-alice"}));
    let service = arena
        .exchange(GATEWAY, &alice_dev, "relay-service", Some(&agent_s))
        .await;
    minted(&service).map_err(|e| format!("setup service: {e}"))?;
    let service_alone = arena.exchange(GATEWAY, &alice_dev, "relay-service", None).await;
    minted(&service_alone).map_err(|e| format!("setup service alone: {e}"))?;
    let bob = arena.user_with("bob", &[], json!({"scope": "orders:read"}));
    Ok(Lineage {
        hop2: hop2.token(),
        service: service.token(),
        service_alone: service_alone.token(),
        bob,
        arena,
    })
}

/// Every door is open before anything is revoked.
async fn controls(l: &Lineage) -> Outcome {
    let a = &l.arena;
    minted(&a.exchange(BILLING_API, &l.hop2, "ledger-api", None).await).map_err(|e| format!("hop2 as subject: {e}"))?;
    minted(&a.exchange(RELAY_SERVICE, &l.service, "billing-api", None).await)
        .map_err(|e| format!("service token as subject: {e}"))?;
    minted(
        &a.exchange(RELAY_SERVICE, &l.bob, "billing-api", Some(&l.service_alone))
            .await,
    )
    .map_err(|e| format!("service token acting alone as actor: {e}"))?;
    for (client, token, name) in [(BILLING_API, &l.hop2, "hop2"), (RELAY_SERVICE, &l.service, "service")] {
        if a.introspect(client, token).await.body["active"] != true {
            return Err(format!("{name} is not active at introspection"));
        }
    }
    Ok(())
}

async fn refused_at_token(a: &Arena, reply: impl std::future::Future<Output = Reply>) -> Outcome {
    let watch = Watch::take(&a.sts).await;
    let reply = reply.await;
    refused(&reply, 400, "invalid_request")?;
    watch.unchanged(&a.sts).await
}

async fn inactive(a: &Arena, client: (&str, &str), token: &str) -> Outcome {
    let reply = a.introspect(client, token).await;
    if reply.status == 200 && reply.body == json!({"active": false}) {
        Ok(())
    } else {
        Err(format!("introspection answered {} {}", reply.status, clip(&reply.text)))
    }
}

async fn revoke_door(a: &Arena, client: (&str, &str), token: &str, revoked: &[(&str, String)]) -> Outcome {
    let reply = a.revoke_token(client, token).await;
    if reply.status != 200 {
        return Err(format!("/revoke answered {} {}", reply.status, clip(&reply.text)));
    }
    inactive(a, client, token).await?;
    for (kind, value) in revoked {
        if !in_force(&a.sts, kind, value).await {
            return Err(format!("{kind}:{value} is no longer in force after /revoke"));
        }
    }
    Ok(())
}

fn jti(token: &str) -> String {
    decode_claims(token)["jti"].as_str().unwrap_or_default().to_owned()
}

/// Which tokens a scenario's revocation reaches.
#[derive(Clone, Copy)]
struct Reach {
    hop2: bool,
    service: bool,
    service_alone: bool,
}

/// Revoke through the admin API (or `/revoke` for tokens) and check every door.
async fn scenario(verdicts: &mut Verdicts, name: &str, reach: Reach) {
    let l = match setup().await {
        Ok(l) => l,
        Err(e) => {
            verdicts.record(format!("{name}/setup"), Err(e));
            return;
        }
    };
    verdicts.record(format!("{name}/control_doors_open_before"), controls(&l).await);
    let a = &l.arena;
    let revoked: Vec<(&str, String)> = match name {
        "token" => {
            for (client, token) in [
                (BILLING_API, &l.hop2),
                (RELAY_SERVICE, &l.service),
                (RELAY_SERVICE, &l.service_alone),
            ] {
                let reply = a.revoke_token(client, token).await;
                assert_eq!(reply.status, 200, "{}", reply.text);
            }
            vec![
                ("token", jti(&l.hop2)),
                ("token", jti(&l.service)),
                ("token", jti(&l.service_alone)),
            ]
        }
        "subject" => vec![("subject", "alice".into())],
        "session" => vec![("session", "sess-alice".into())],
        "issued_to_client" => vec![("client", "orders-api".into()), ("client", "gateway".into())],
        "agent" => vec![("agent", "agent-a".into()), ("agent", "agent-s".into())],
        "agent_as_subject" => vec![("subject", "agent-a".into()), ("subject", "agent-s".into())],
        "hop_actor" => vec![("agent", "orders-api".into())],
        "service_itself_as_agent" => vec![("agent", "gateway".into())],
        other => panic!("unknown scenario {other}"),
    };
    if name != "token" {
        for (kind, value) in &revoked {
            a.sts.admin_revoke(kind, value).await;
        }
    }

    if reach.hop2 {
        verdicts.record(
            format!("{name}/hop2_as_subject_at_token"),
            refused_at_token(a, a.exchange(BILLING_API, &l.hop2, "ledger-api", None)).await,
        );
    }
    if reach.service {
        verdicts.record(
            format!("{name}/service_token_as_subject_at_token"),
            refused_at_token(a, a.exchange(RELAY_SERVICE, &l.service, "billing-api", None)).await,
        );
        verdicts.record(
            format!("{name}/service_token_at_introspect"),
            inactive(a, RELAY_SERVICE, &l.service).await,
        );
    }
    if reach.service_alone {
        let actor = Some(l.service_alone.as_str());
        verdicts.record(
            format!("{name}/service_token_as_actor_at_token"),
            refused_at_token(a, a.exchange(RELAY_SERVICE, &l.bob, "billing-api", actor)).await,
        );
        verdicts.record(
            format!("{name}/service_token_acting_alone_at_introspect"),
            inactive(a, RELAY_SERVICE, &l.service_alone).await,
        );
    }
    if reach.hop2 {
        verdicts.record(
            format!("{name}/hop2_at_introspect"),
            inactive(a, BILLING_API, &l.hop2).await,
        );
        verdicts.record(
            format!("{name}/hop2_at_revoke"),
            revoke_door(a, BILLING_API, &l.hop2, &revoked).await,
        );
    }
    if reach.service {
        verdicts.record(
            format!("{name}/service_token_at_revoke"),
            revoke_door(a, RELAY_SERVICE, &l.service, &revoked).await,
        );
    }
}

#[tokio::test]
async fn revoking_any_part_of_a_lineage_closes_every_door() {
    let mut verdicts = Verdicts::new("lineage");
    let all = Reach {
        hop2: true,
        service: true,
        service_alone: true,
    };
    let delegated = Reach {
        service_alone: false,
        ..all
    };
    let only = |hop2, service, service_alone| Reach {
        hop2,
        service,
        service_alone,
    };
    for (name, reach) in [
        ("token", all),
        ("subject", all),
        ("session", all),
        ("issued_to_client", all),
        ("agent", delegated),
        ("agent_as_subject", delegated),
        ("hop_actor", only(true, false, false)),
        ("service_itself_as_agent", only(false, false, true)),
    ] {
        scenario(&mut verdicts, name, reach).await;
    }
    verdicts.finish();
}

/// A revoked caller is refused at every door with `invalid_client`, whatever it presents.
#[tokio::test]
async fn a_revoked_presenter_fails_authentication_at_every_door() {
    let mut verdicts = Verdicts::new("revoked presenter");
    let l = match setup().await {
        Ok(l) => l,
        Err(e) => panic!("{e}"),
    };
    let a = &l.arena;
    a.sts.admin_revoke("client", "billing-api").await;
    let watch = Watch::take(&a.sts).await;
    verdicts.record(
        "token_exchange",
        refused(
            &a.exchange(BILLING_API, &l.hop2, "ledger-api", None).await,
            401,
            "invalid_client",
        ),
    );
    verdicts.record(
        "introspect",
        refused(&a.introspect(BILLING_API, &l.hop2).await, 401, "invalid_client"),
    );
    verdicts.record(
        "revoke",
        refused(&a.revoke_token(BILLING_API, &l.hop2).await, 401, "invalid_client"),
    );
    verdicts.record("nothing_changed", watch.unchanged(&a.sts).await);
    verdicts.record(
        "still_in_force",
        if in_force(&a.sts, "client", "billing-api").await {
            Ok(())
        } else {
            Err("the client revocation vanished".into())
        },
    );
    verdicts.finish();
}
