//! Session escape. ECDSA signatures are malleable: with `s` replaced by `n - s` a
//! token verifies as well as the original, and the issuer can sign the same claims
//! again with a fresh nonce. A session id derived from the token's bytes would give
//! each twin a session of its own, escaping a session revocation; it must come from
//! the claims, so every twin shares the revoked session.

use mcp_sts::config::SigningAlgorithm;
use serde_json::{Value, json};

use super::arena::*;
use crate::support::attack::*;

async fn refused_quietly(
    arena: &Arena,
    reply: impl std::future::Future<Output = crate::support::sts::Reply>,
) -> Outcome {
    let watch = Watch::take(&arena.sts).await;
    let reply = reply.await;
    refused(&reply, 400, "invalid_request")?;
    watch.unchanged(&arena.sts).await
}

/// The session a token gets, from a first exchange.
async fn session_of(arena: &Arena, token: &str) -> Result<String, String> {
    let claims = minted(&arena.obo(token).await)?;
    claims["sid"].as_str().map(String::from).ok_or("no sid".into())
}

#[tokio::test]
async fn a_twin_or_resigned_token_cannot_escape_a_session_revocation() {
    let arena = Arena::start().await;
    let (sts, idp) = (&arena.sts, &arena.sts.idp);
    let now = arena.now();
    let mut verdicts = Verdicts::new("session");
    let user = |sub: &str, extra: Value| {
        let mut claims = json!({
            "iss": idp.issuer(), "sub": sub, "aud": "mcp-sts", "iat": now, "nbf": now,
            "exp": now + 600, "roles": ["developer"],
        });
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        claims
    };

    // No sid, no jti: the session is derived.
    let bare = user("nina", json!({}));
    let original = idp.sign(SigningAlgorithm::ES256, None, &bare).unwrap();
    let twin = high_s_twin(&original);
    verdicts.record(
        "control/the_high_s_twin_verifies",
        minted(&arena.obo(&twin).await).map(|_| ()),
    );
    let olga = idp
        .sign(SigningAlgorithm::ES256, None, &user("olga", json!({})))
        .unwrap();
    match session_of(&arena, &original).await {
        Ok(sid) => {
            sts.admin_revoke("session", &sid).await;
            verdicts.record(
                "original_without_sid_or_jti",
                refused_quietly(&arena, arena.obo(&original)).await,
            );
            verdicts.record(
                "high_s_twin_without_sid_or_jti",
                refused_quietly(&arena, arena.obo(&twin)).await,
            );
            let resigned = idp.sign(SigningAlgorithm::ES256, None, &bare).unwrap();
            verdicts.record(
                "resigned_copy_without_sid_or_jti",
                refused_quietly(&arena, arena.obo(&resigned)).await,
            );
            let retyped = idp.sign(SigningAlgorithm::ES256, Some("JWT"), &bare).unwrap();
            verdicts.record(
                "resigned_with_another_header",
                refused_quietly(&arena, arena.obo(&retyped)).await,
            );
            let rsa = idp.sign(SigningAlgorithm::RS256, None, &bare).unwrap();
            verdicts.record(
                "resigned_with_the_issuers_rsa_key",
                refused_quietly(&arena, arena.obo(&rsa)).await,
            );
            verdicts.record(
                "twin_as_subject_of_a_service_identity_exchange",
                refused_quietly(&arena, arena.exchange(GATEWAY, &twin, "relay-service", None)).await,
            );
            verdicts.record(
                "another_users_derived_session_is_untouched",
                minted(&arena.obo(&olga).await).map(|_| ()),
            );
        }
        Err(e) => verdicts.record("setup/derived_session", Err(e)),
    }

    // With a jti, and with a sid.
    for (name, extra, sid) in [
        ("high_s_twin_with_jti", json!({"jti": "login-7"}), None),
        ("high_s_twin_with_sid", json!({"sid": "sess-paul"}), Some("sess-paul")),
    ] {
        let token = idp.sign(SigningAlgorithm::ES256, None, &user("paul", extra)).unwrap();
        let twin = high_s_twin(&token);
        let outcome = async {
            let sid = match sid {
                Some(sid) => sid.to_owned(),
                None => session_of(&arena, &token).await?,
            };
            sts.admin_revoke("session", &sid).await;
            refused_quietly(&arena, arena.obo(&twin)).await
        }
        .await;
        verdicts.record(name, outcome);
    }

    // Our own ES256 tokens: a twin has the same jti, so it shares every revocation.
    let minted_token = arena.obo(&arena.user("quinn", &["developer"])).await.token();
    let minted_twin = high_s_twin(&minted_token);
    verdicts.record("control/minted_twin_is_active", {
        let reply = arena.introspect(ORDERS_API, &minted_twin).await;
        if reply.body["active"] == true {
            Ok(())
        } else {
            Err(format!("twin not active: {}", reply.text))
        }
    });
    let reply = arena.revoke_token(ORDERS_API, &minted_token).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    verdicts.record("minted_twin_after_its_jti_is_revoked_at_introspect", {
        let reply = arena.introspect(ORDERS_API, &minted_twin).await;
        if reply.body == json!({"active": false}) {
            Ok(())
        } else {
            Err(format!("twin still answers {}", reply.text))
        }
    });
    verdicts.record(
        "minted_twin_after_its_jti_is_revoked_at_token",
        refused_quietly(&arena, arena.exchange(ORDERS_API, &minted_twin, "billing-api", None)).await,
    );
    let other = arena.obo(&arena.user("rita", &["developer"])).await.token();
    let reply = arena.revoke_token(ORDERS_API, &high_s_twin(&other)).await;
    verdicts.record("revoking_a_minted_twin_ends_the_original", {
        let answer = arena.introspect(ORDERS_API, &other).await;
        if reply.status == 200 && answer.body == json!({"active": false}) {
            Ok(())
        } else {
            Err(format!("/revoke {} then introspection {}", reply.status, answer.text))
        }
    });
    verdicts.finish();
}
