//! What error responses give away: never a token, a piece of one, a secret or an
//! assertion; descriptions in the RFC 6749 §5.2 character set; `Cache-Control:
//! no-store` and `Pragma: no-cache` on every error; a challenge with `invalid_client`.

use reqwest::Method;
use serde_json::json;

use super::arena::*;
use crate::support::attack::*;
use crate::support::sts::*;

/// The response must not contain `secret`, nor any of its 12-character windows
/// (a token's segments and signature pieces count).
fn no_echo(reply: &Reply, secret: &str) -> Outcome {
    let text = &reply.text;
    let header_text: String = reply
        .headers
        .iter()
        .map(|(k, v)| format!("{k}: {}\n", v.to_str().unwrap_or("")))
        .collect();
    let chars: Vec<char> = secret.chars().collect();
    let windows: Vec<String> = if chars.len() <= 12 {
        vec![secret.to_owned()]
    } else {
        chars.windows(12).map(|w| w.iter().collect()).collect()
    };
    // A token's header segment is shared by every token of its issuer: not secret.
    let header_segment = segments(secret).0;
    for window in windows {
        if secret.contains('.') && header_segment.contains(&window) {
            continue;
        }
        if text.contains(&window) || header_text.contains(&window) {
            return Err(format!("the response echoes {window:?}: {}", clip(text)));
        }
    }
    Ok(())
}

#[tokio::test]
async fn error_responses_leak_nothing_and_are_never_cached() {
    let arena = Arena::start().await;
    let sts = &arena.sts;
    let mut verdicts = Verdicts::new("leaks");

    // Upstream keys unreachable and never fetched: a clean 503 that says when to retry.
    sts.idp.set_available(false);
    let reply = arena.obo(&arena.user("alice", &["developer"])).await;
    verdicts.record(
        "no_store/token_upstream_keys_unavailable",
        refused(&reply, 503, "temporarily_unavailable").and_then(|()| {
            if reply.headers.contains_key("retry-after") {
                Ok(())
            } else {
                Err("503 without Retry-After".into())
            }
        }),
    );
    sts.idp.set_available(true);
    sts.clock.advance(31);
    let now = arena.now();
    let aud = ("audience", "orders-api");

    // A refused subject token whose claims would be worth stealing.
    let expired = sts
        .idp
        .user_token(
            "leak-victim",
            "mcp-sts",
            &["order-admin"],
            now - 7200,
            3600,
            &json!({"secret_note": "s3cr3t-claim-value"}),
        )
        .unwrap();
    let reply = sts.exchange(&expired, &[aud]).await;
    verdicts.record(
        "expired_subject_token_is_not_echoed",
        refused(&reply, 400, "invalid_request").and_then(|()| no_echo(&reply, &expired)),
    );
    let agent = sts.agent_token("claude");
    let bad_actor = with_signature(&agent, &[1u8; 64]);
    let reply = sts
        .exchange(
            &arena.user("alice", &["developer"]),
            &[aud, ("actor_token", &bad_actor), ("actor_token_type", JWT)],
        )
        .await;
    verdicts.record(
        "bad_actor_token_is_not_echoed",
        refused(&reply, 400, "invalid_request").and_then(|()| no_echo(&reply, &bad_actor)),
    );
    let garbage = "not-a-jwt-but-a-secret-looking-value-0123456789";
    let reply = sts.exchange(garbage, &[aud]).await;
    verdicts.record(
        "garbage_subject_token_is_not_echoed",
        refused(&reply, 400, "invalid_request").and_then(|()| no_echo(&reply, garbage)),
    );

    // Secrets and assertions.
    let wrong_secret = "wrong-secret-with-a-recognisable-tail-42";
    let reply = sts
        .post_form(
            "/token",
            Some(("orders-mcp", wrong_secret)),
            &[("grant_type", EXCHANGE)],
        )
        .await;
    verdicts.record(
        "wrong_basic_secret_is_not_echoed",
        refused(&reply, 401, "invalid_client").and_then(|()| no_echo(&reply, wrong_secret)),
    );
    let reply = sts
        .post_form(
            "/token",
            None,
            &[
                ("grant_type", EXCHANGE),
                ("client_id", "orders-mcp"),
                ("client_secret", wrong_secret),
            ],
        )
        .await;
    verdicts.record(
        "wrong_post_secret_is_not_echoed",
        refused(&reply, 401, "invalid_client").and_then(|()| no_echo(&reply, wrong_secret)),
    );
    let key = &arena.client_key;
    let assertion = key
        .sign_raw(
            &json!({"alg": "ES256", "kid": key.kid}),
            &json!({"iss": "jwt-inline", "sub": "jwt-inline", "aud": "https://elsewhere", "exp": now + 60, "jti": "leak-1"}),
        )
        .unwrap();
    let reply = sts
        .post_form(
            "/token",
            None,
            &[
                ("grant_type", EXCHANGE),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &assertion),
            ],
        )
        .await;
    verdicts.record(
        "bad_client_assertion_is_not_echoed",
        refused(&reply, 401, "invalid_client").and_then(|()| no_echo(&reply, &assertion)),
    );
    let reply = sts
        .http
        .get(format!("{}/admin/revocations", sts.url))
        .bearer_auth("admin-guess-with-a-recognisable-tail")
        .send()
        .await
        .unwrap();
    let reply = Reply::from(reply).await;
    verdicts.record(
        "wrong_admin_credential_is_not_echoed",
        refused(&reply, 401, "invalid_token").and_then(|()| no_echo(&reply, "admin-guess-with-a-recognisable-tail")),
    );

    // Attacker-chosen names and values that error messages might quote.
    let minted_token = arena.obo(&arena.user("alice", &["developer"])).await.token();
    let signature = segments(&minted_token).2;
    let repeated = format!("{signature}=1&{signature}=2");
    let reply = post_raw(
        sts,
        "/token",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("authorization", &basic_header("orders-mcp", ORDERS_MCP_SECRET)),
        ],
        repeated,
    )
    .await;
    verdicts.record(
        "repeated_parameter_named_like_a_token_is_not_echoed",
        refused(&reply, 400, "invalid_request").and_then(|()| no_echo(&reply, &signature)),
    );
    for (name, body) in [
        (
            "admin_unknown_kind_holding_a_token",
            json!({"kind": signature, "value": "x", "reason": "r"}),
        ),
        (
            "admin_unknown_field_named_like_a_token",
            json!({"kind": "subject", "value": "x", signature.clone(): 1}),
        ),
        (
            "admin_value_holding_a_token_and_a_control",
            json!({"kind": "subject", "value": format!("{signature}\u{1}"), "reason": "r"}),
        ),
    ] {
        let reply = sts.admin(Method::POST, "", Some(body)).await;
        verdicts.record(
            name,
            refused(&reply, 400, "invalid_request").and_then(|()| no_echo(&reply, &signature)),
        );
    }
    for (name, form_body) in [
        (
            "quotes_and_backslashes_in_a_repeated_name",
            "a\"\\b=1&a\"\\b=2".to_owned(),
        ),
        ("quotes_in_an_unknown_grant_type", form(&[("grant_type", "x\"y\\z")])),
        (
            "quotes_in_a_resource",
            form(&[
                ("grant_type", EXCHANGE),
                ("subject_token", &minted_token),
                ("subject_token_type", ACCESS_TOKEN),
                ("resource", "https://x\"\\/"),
            ]),
        ),
    ] {
        let reply = post_raw(
            sts,
            "/token",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("authorization", &basic_header("orders-mcp", ORDERS_MCP_SECRET)),
            ],
            form_body,
        )
        .await;
        verdicts.record(
            format!("description_charset/{name}"),
            if reply.status >= 400 {
                error_hygiene(&reply)
            } else {
                Err(format!("accepted: {}", reply.status))
            },
        );
    }
    let reply = sts
        .admin(
            Method::POST,
            "",
            Some(json!({"kind": "x\"y\\z", "value": "v", "reason": "r"})),
        )
        .await;
    verdicts.record(
        "description_charset/admin_kind_with_quotes",
        refused(&reply, 400, "invalid_request"),
    );

    // Every error, at every endpoint, is no-store; invalid_client carries a challenge.
    let alice = arena.user("alice", &["developer"]);
    let reply = post_raw(sts, "/token", &[("content-type", "application/json")], "{}".into()).await;
    verdicts.record(
        "no_store/token_wrong_content_type",
        refused(&reply, 400, "invalid_request"),
    );
    let reply = sts
        .post_form("/token", Some(ORDERS_MCP), &[("grant_type", "password")])
        .await;
    verdicts.record(
        "no_store/token_unsupported_grant_type",
        refused(&reply, 400, "unsupported_grant_type"),
    );
    let reply = sts
        .exchange(&alice, &[("audience", "orders-api"), ("scope", "orders:admin")])
        .await;
    verdicts.record("no_store/token_invalid_scope", refused(&reply, 400, "invalid_scope"));
    let reply = sts.exchange(&alice, &[("audience", "nowhere")]).await;
    verdicts.record("no_store/token_invalid_target", refused(&reply, 400, "invalid_target"));
    let reply = sts
        .post_form("/token", Some(("orders-mcp", "x")), &[("grant_type", EXCHANGE)])
        .await;
    verdicts.record("no_store/token_invalid_client", refused(&reply, 401, "invalid_client"));
    let reply = sts
        .post_form("/introspect", Some(("orders-mcp", "x")), &[("token", "t")])
        .await;
    verdicts.record(
        "no_store/introspect_invalid_client",
        refused(&reply, 401, "invalid_client"),
    );
    let reply = sts.post_form("/introspect", Some(ORDERS_API), &[]).await;
    verdicts.record(
        "no_store/introspect_missing_token",
        refused(&reply, 400, "invalid_request"),
    );
    let reply = sts.post_form("/revoke", None, &[("token", "t")]).await;
    verdicts.record("no_store/revoke_invalid_client", refused(&reply, 401, "invalid_client"));
    let reply = sts
        .post_form("/revoke", Some(BILLING_API), &[("token", &minted_token)])
        .await;
    verdicts.record(
        "no_store/revoke_unauthorized_client",
        refused(&reply, 400, "unauthorized_client"),
    );
    let reply = sts
        .post_form("/token", Some(ORDERS_MCP), &[("padding", &"x".repeat(70 * 1024))])
        .await;
    verdicts.record("no_store/token_body_too_large", refused(&reply, 413, "invalid_request"));
    let reply = sts.admin(Method::DELETE, "/subject/nobody", None).await;
    verdicts.record("no_store/admin_not_found", refused(&reply, 404, "not_found"));
    verdicts.finish();
}
