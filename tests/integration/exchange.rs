//! The token exchange over real HTTP: every rule of DESIGN.md's exchange, each
//! checked by its exact status and `error` code.

use crate::support::sts::*;
use mcp_sts::config::SigningAlgorithm;
use serde_json::{Value, json};

#[tokio::test]
async fn on_behalf_of_mints_a_narrow_token_naming_user_and_agent() {
    let sts = TestSts::start().await;
    let alice = sts.user_token_with(
        "alice@example.com",
        &["developer"],
        json!({"sid": "sess-1", "tenant": "acme"}),
    );
    let agent = sts.agent_token("claude-desktop");
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", EXCHANGE),
            ("subject_token", alice.as_str()),
            ("subject_token_type", ACCESS_TOKEN),
            ("actor_token", agent.as_str()),
            ("actor_token_type", JWT),
            ("audience", "orders-api"),
        ])
        .finish();
    let response = sts
        .http
        .post(format!("{}/token", sts.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", basic_header("orders-mcp", ORDERS_MCP_SECRET))
        .header("traceparent", traceparent)
        .body(body)
        .send()
        .await
        .unwrap();
    let reply = Reply::from(response).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.headers["cache-control"], "no-store");
    assert_eq!(reply.headers["pragma"], "no-cache");
    assert_eq!(reply.body["issued_token_type"], ACCESS_TOKEN);
    assert_eq!(reply.body["token_type"], "Bearer");
    assert_eq!(reply.body["expires_in"], 300);
    assert_eq!(reply.body["scope"], "orders:read");

    let token = reply.token();
    let header = decode_header(&token);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    let kid = sts.sts.keys().current().signing_key(T0).kid.clone();
    assert_eq!(header["kid"], kid.as_str());

    let claims = reply.claims();
    assert_eq!(claims["iss"], sts.url.as_str());
    assert_eq!(claims["sub"], "alice@example.com");
    assert_eq!(claims["aud"], "orders-api");
    assert_eq!(claims["client_id"], "orders-mcp");
    assert_eq!(claims["scope"], "orders:read");
    assert_eq!(claims["delegation_mode"], "on_behalf_of");
    assert_eq!(
        claims["act"],
        json!({"sub": "claude-desktop", "iss": sts.idp.issuer(), "sub_profile": "ai_agent"})
    );
    assert_eq!(claims["sid"], "sess-1");
    assert_eq!(claims["tenant"], "acme");
    assert_eq!(claims["txn"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(claims["iat"], T0);
    assert_eq!(claims["nbf"], T0);
    assert_eq!(claims["exp"], T0 + 300);
    assert_eq!(claims["jti"].as_str().unwrap().len(), 32);
    assert!(
        !token.contains(&alice) && !reply.text.contains(&alice),
        "raw subject token never copied"
    );
    for forbidden in ["roles", "may_act", "user"] {
        assert!(claims.get(forbidden).is_none(), "{forbidden} must not be copied");
    }

    let events = sts.audit_events();
    let event = events.last().unwrap();
    assert_eq!(event["decision"], "allow");
    assert_eq!(event["event"], "token_exchange");
    assert_eq!(event["client_id"], "orders-mcp");
    assert_eq!(event["sub"], "alice@example.com");
    assert_eq!(event["actor_chain"], json!(["claude-desktop"]));
    assert_eq!(event["audience"], "orders-api");
    assert_eq!(event["mode"], "on_behalf_of");
    assert_eq!(event["scope"], "orders:read");
    assert_eq!(event["jti"], claims["jti"]);
    assert_eq!(event["sid"], "sess-1");
    assert_eq!(event["txn"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert!(!event.to_string().contains(&alice) && !event.to_string().contains(&agent));
}

#[tokio::test]
async fn without_an_actor_token_the_client_is_the_actor() {
    let sts = TestSts::start().await;
    let alice = sts.user_token("alice", &["developer"]);
    let claims = sts.exchange(&alice, &[("audience", "orders-api")]).await.claims();
    assert_eq!(claims["act"], json!({"sub": "orders-mcp", "sub_profile": "service"}));
    assert_eq!(claims["txn"].as_str().unwrap().len(), 32, "a trace id is generated");
}

#[tokio::test]
async fn service_identity_names_the_client_and_carries_the_user_as_context() {
    let sts = TestSts::start().await;
    let alice = sts.user_token_with("alice", &[], json!({"tenant": "acme"}));
    let agent = sts.agent_token("agent-7");
    let reply = sts
        .exchange(
            &alice,
            &[
                ("audience", "inventory-api"),
                ("actor_token", &agent),
                ("actor_token_type", JWT),
            ],
        )
        .await;
    let claims = reply.claims();
    assert_eq!(claims["sub"], "orders-mcp");
    assert_eq!(claims["delegation_mode"], "service_identity");
    assert_eq!(
        claims["user"],
        json!({"sub": "alice", "tenant": "acme", "agent": "agent-7", "iss": sts.idp.issuer()}),
        "the user's issuer is recorded with the user"
    );
    assert!(claims.get("sub_id").is_none(), "sub is the client here");
    assert_eq!(
        claims["scope"], "inventory:read inventory:write",
        "the audience's scopes"
    );
    assert!(claims.get("act").is_none());
}

#[tokio::test]
async fn restricted_user_has_no_actor_and_a_short_life_but_the_audit_names_the_agent() {
    let sts = TestSts::start().await;
    let alice = sts.user_token("alice", &["developer"]);
    let claims = sts.exchange(&alice, &[("audience", "legacy-api")]).await.claims();
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["delegation_mode"], "restricted_user");
    assert!(claims.get("act").is_none());
    assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), 60);
    let event = sts.audit_events().pop().unwrap();
    assert_eq!(event["actor_chain"], json!(["orders-mcp"]));
    assert_eq!(event["mode"], "restricted_user");
}

#[tokio::test]
async fn scopes_are_requested_intersect_audience_intersect_entitlement() {
    let sts = TestSts::start().await;
    let bob = sts.user_token("bob", &["order-admin"]);
    assert_eq!(
        sts.exchange(&bob, &[("audience", "orders-api")]).await.body["scope"],
        "orders:read orders:write orders:admin"
    );
    let reply = sts
        .exchange(&bob, &[("audience", "orders-api"), ("scope", "orders:write")])
        .await;
    assert_eq!(reply.body["scope"], "orders:write");
    // The token's own scope does not entitle: the issuer's entitlement is its roles.
    let carol = sts.user_token_with("carol", &[], json!({"scope": "orders:write openid"}));
    sts.exchange(&carol, &[("audience", "orders-api")])
        .await
        .assert_error(400, "invalid_scope");
    // Asking for more than the entitlement: no silent narrowing.
    let alice = sts.user_token("alice", &["developer"]);
    sts.exchange(
        &alice,
        &[("audience", "orders-api"), ("scope", "orders:read orders:write")],
    )
    .await
    .assert_error(400, "invalid_scope");
    sts.exchange(&alice, &[("audience", "orders-api"), ("scope", "unknown:scope")])
        .await
        .assert_error(400, "invalid_scope");
    // No entitlement at all.
    let nobody = sts.user_token("nobody", &[]);
    sts.exchange(&nobody, &[("audience", "orders-api")])
        .await
        .assert_error(400, "invalid_scope");
    // An empty scope parameter asks for nothing in particular.
    assert_eq!(
        sts.exchange(&alice, &[("audience", "orders-api"), ("scope", "")])
            .await
            .body["scope"],
        "orders:read"
    );
}

#[tokio::test]
async fn targets_must_be_configured_and_allowed_for_the_client() {
    let sts = TestSts::start().await;
    let alice = sts.user_token("alice", &["developer"]);
    sts.exchange(&alice, &[("audience", "nope")])
        .await
        .assert_error(400, "invalid_target");
    sts.exchange(&alice, &[("audience", "billing-api")])
        .await
        .assert_error(400, "invalid_target");
    sts.exchange(&alice, &[("resource", "https://unknown.example.com/")])
        .await
        .assert_error(400, "invalid_target");
    sts.exchange(&alice, &[("resource", "not a uri")])
        .await
        .assert_error(400, "invalid_target");
    sts.exchange(&alice, &[("resource", "https://orders.example.com/api#frag")])
        .await
        .assert_error(400, "invalid_target");
    sts.exchange(&alice, &[("audience", "orders-api"), ("audience", "inventory-api")])
        .await
        .assert_error(400, "invalid_target");
    sts.exchange(&alice, &[("audience", "orders-api"), ("audience", "orders-api")])
        .await
        .assert_error(400, "invalid_target");
    sts.exchange(
        &alice,
        &[
            ("audience", "inventory-api"),
            ("resource", "https://orders.example.com/api"),
        ],
    )
    .await
    .assert_error(400, "invalid_target");
    sts.exchange(&alice, &[]).await.assert_error(400, "invalid_request");
    // By resource: the token's aud is the resource URI (RFC 9068 §3).
    let claims = sts
        .exchange(&alice, &[("resource", "https://orders.example.com/api")])
        .await
        .claims();
    assert_eq!(claims["aud"], "https://orders.example.com/api");
    let claims = sts
        .exchange(
            &alice,
            &[
                ("audience", "orders-api"),
                ("resource", "https://orders.example.com/api"),
            ],
        )
        .await
        .claims();
    assert_eq!(claims["aud"], "https://orders.example.com/api");
}

#[tokio::test]
async fn request_shape_rules() {
    let sts = TestSts::start().await;
    let alice = sts.user_token("alice", &["developer"]);
    let client = Some(("orders-mcp", ORDERS_MCP_SECRET));
    let reply = sts
        .post_form("/token", client, &[("grant_type", "client_credentials")])
        .await;
    reply.assert_error(400, "unsupported_grant_type");
    sts.post_form("/token", client, &[("audience", "orders-api")])
        .await
        .assert_error(400, "invalid_request");
    let base = [("grant_type", EXCHANGE), ("audience", "orders-api")];
    let mut missing_type = base.to_vec();
    missing_type.push(("subject_token", &alice));
    sts.post_form("/token", client, &missing_type)
        .await
        .assert_error(400, "invalid_request");
    sts.exchange(&alice, &[("audience", "orders-api"), ("scope", "a"), ("scope", "b")])
        .await
        .assert_error(400, "invalid_request");
    sts.exchange_as(
        ("orders-mcp", ORDERS_MCP_SECRET),
        &alice,
        "urn:ietf:params:oauth:token-type:saml2",
        &[("audience", "orders-api")],
    )
    .await
    .assert_error(400, "invalid_request");
    sts.exchange(&alice, &[("audience", "orders-api"), ("actor_token_type", JWT)])
        .await
        .assert_error(400, "invalid_request");
    sts.exchange(&alice, &[("audience", "orders-api"), ("actor_token", &alice)])
        .await
        .assert_error(400, "invalid_request");
    let reply = sts
        .exchange(
            &alice,
            &[
                ("audience", "orders-api"),
                ("requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token"),
            ],
        )
        .await;
    reply.assert_error(400, "invalid_request");
    let reply = sts
        .exchange(&alice, &[("audience", "orders-api"), ("requested_token_type", JWT)])
        .await;
    assert_eq!(reply.body["issued_token_type"], JWT);
    // Unknown parameters are ignored.
    assert_eq!(
        sts.exchange(&alice, &[("audience", "orders-api"), ("color", "blue")])
            .await
            .status,
        200
    );
    // Not a form.
    let response = sts
        .http
        .post(format!("{}/token", sts.url))
        .header("content-type", "application/json")
        .header("authorization", basic_header("orders-mcp", ORDERS_MCP_SECRET))
        .body("{}")
        .send()
        .await
        .unwrap();
    Reply::from(response).await.assert_error(400, "invalid_request");
}

#[tokio::test]
async fn client_authentication_rules() {
    let sts = TestSts::start().await;
    let alice = sts.user_token("alice", &["developer"]);
    let form = [
        ("grant_type", EXCHANGE),
        ("subject_token", alice.as_str()),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", "orders-api"),
    ];
    // No credentials, wrong secret, unknown client: 401 invalid_client with a challenge.
    for client in [None, Some(("orders-mcp", "wrong")), Some(("ghost", "x"))] {
        let reply = sts.post_form("/token", client, &form).await;
        reply.assert_error(401, "invalid_client");
        assert!(reply.headers.contains_key("www-authenticate"));
    }
    // client_secret_post works.
    let mut post = form.to_vec();
    post.extend([("client_id", "orders-mcp"), ("client_secret", ORDERS_MCP_SECRET)]);
    assert_eq!(sts.post_form("/token", None, &post).await.status, 200);
    // Two methods at once.
    sts.post_form("/token", Some(("orders-mcp", ORDERS_MCP_SECRET)), &post)
        .await
        .assert_error(400, "invalid_request");
    // A client that may not exchange at all.
    sts.post_form("/token", Some(("watcher", WATCHER_SECRET)), &form)
        .await
        .assert_error(400, "unauthorized_client");
    // Denials are audited with the reason.
    let denied = sts
        .audit_events()
        .into_iter()
        .filter(|e| e["decision"] == "deny")
        .count();
    assert!(denied >= 5);
}

#[tokio::test]
async fn basic_credentials_are_form_urlencoded() {
    let odd_secret = "p@ss word:+/%";
    let extra = format!(
        "\n[[clients]]\nclient_id = \"odd client:1\"\nsecret_sha256 = \"{}\"\naudiences = [\"orders-api\"]\n",
        mcp_sts::client_auth::hash_secret(odd_secret)
    );
    let sts = TestSts::start_with(&extra).await;
    let alice = sts.user_token("alice", &["developer"]);
    let reply = sts
        .exchange_as(
            ("odd client:1", odd_secret),
            &alice,
            ACCESS_TOKEN,
            &[("audience", "orders-api")],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.claims()["client_id"], "odd client:1");
}

#[tokio::test]
async fn invalid_subject_tokens_are_invalid_request_never_invalid_grant() {
    let sts = TestSts::start().await;
    let aud = [("audience", "orders-api")];
    let now = T0;
    let idp = &sts.idp;
    let token = |claims: Value| idp.sign(SigningAlgorithm::ES256, Some("JWT"), &claims).unwrap();
    let good = json!({"iss": idp.issuer(), "sub": "alice", "aud": "mcp-sts", "exp": now + 600, "iat": now, "roles": ["developer"]});
    assert_eq!(sts.exchange(&token(good.clone()), &aud).await.status, 200);
    let with = |key: &str, value: Value| {
        let mut c = good.clone();
        c[key] = value;
        token(c)
    };
    let without = |key: &str| {
        let mut c = good.clone();
        c.as_object_mut().unwrap().remove(key);
        token(c)
    };
    let cases: Vec<(&str, String)> = vec![
        ("expired", with("exp", json!(now - 31))),
        ("no exp", without("exp")),
        ("nbf in future", with("nbf", json!(now + 120))),
        ("iat in future", with("iat", json!(now + 120))),
        ("wrong issuer", with("iss", json!("https://evil.example.com"))),
        ("no issuer", without("iss")),
        ("wrong audience", with("aud", json!("someone-else"))),
        ("no sub", without("sub")),
        ("garbage", "not.a.jwt".to_owned()),
        ("two parts", "abc.def".to_owned()),
        ("jwe", "a.b.c.d.e".to_owned()),
    ];
    for (name, subject) in cases {
        let reply = sts.exchange(&subject, &aud).await;
        assert_eq!(
            (reply.status, reply.error()),
            (400, "invalid_request"),
            "{name}: {}",
            reply.text
        );
    }
    // Clock skew within the leeway is fine for nbf and iat; an exp in the past leaves
    // no remaining life to hand on, so it is refused even within the leeway.
    assert_eq!(sts.exchange(&with("nbf", json!(now + 20)), &aud).await.status, 200);
    assert_eq!(sts.exchange(&with("iat", json!(now + 20)), &aud).await.status, 200);
    sts.exchange(&with("exp", json!(now - 10)), &aud)
        .await
        .assert_error(400, "invalid_request");
    // aud may be an array that includes us.
    assert_eq!(
        sts.exchange(&with("aud", json!(["x", "mcp-sts"])), &aud).await.status,
        200
    );
    // The description names the rule and never echoes the token.
    let expired = with("exp", json!(now - 100));
    let reply = sts.exchange(&expired, &aud).await;
    assert!(reply.body["error_description"].as_str().unwrap().contains("expired"));
    assert!(!reply.text.contains(&expired));
}

#[tokio::test]
async fn header_rules_alg_none_hmac_crit_typ_and_key_headers() {
    let sts = TestSts::start().await;
    let aud = [("audience", "orders-api")];
    let idp = &sts.idp;
    let claims =
        json!({"iss": idp.issuer(), "sub": "alice", "aud": "mcp-sts", "exp": T0 + 600, "roles": ["developer"]});
    let es_kid = decode_header(&idp.sign(SigningAlgorithm::ES256, None, &claims).unwrap())["kid"].clone();

    // alg none: header claims none, no signature.
    let none = format!(
        "{}.{}.",
        mcp_sts_demo::dev_idp::b64_json(&json!({"alg": "none"})),
        mcp_sts_demo::dev_idp::b64_json(&claims)
    );
    sts.exchange(&none, &aud).await.assert_error(400, "invalid_request");
    // HS256 with the public key as the secret.
    let hs_header = json!({"alg": "HS256", "kid": es_kid});
    let signed = idp
        .sign_with_header(SigningAlgorithm::ES256, &hs_header, &claims)
        .unwrap();
    sts.exchange(&signed, &aud).await.assert_error(400, "invalid_request");
    // alg swapped to RS256 on an EC key.
    let swapped = idp
        .sign_with_header(
            SigningAlgorithm::ES256,
            &json!({"alg": "RS256", "kid": es_kid}),
            &claims,
        )
        .unwrap();
    sts.exchange(&swapped, &aud).await.assert_error(400, "invalid_request");
    // Unknown crit extension.
    let crit = idp
        .sign_with_header(
            SigningAlgorithm::ES256,
            &json!({"alg": "ES256", "kid": es_kid, "crit": ["exp"], "exp": 1}),
            &claims,
        )
        .unwrap();
    sts.exchange(&crit, &aud).await.assert_error(400, "invalid_request");
    // jku / x5u / jwk are never followed: a token signed by a key the IdP does not
    // publish, pointing at it, stays refused.
    let (rogue, _) = mcp_sts::keys::SigningKey::generate(SigningAlgorithm::ES256, 0).unwrap();
    let rogue_header =
        json!({"alg": "ES256", "kid": rogue.kid, "jwk": rogue.public_jwk, "jku": "http://127.0.0.1:9/jwks"});
    let rogue_token = rogue.sign_raw(&rogue_header, &claims).unwrap();
    sts.exchange(&rogue_token, &aud)
        .await
        .assert_error(400, "invalid_request");
    // A rogue key's signature under the IdP's kid.
    let forged = rogue
        .sign_raw(&json!({"alg": "ES256", "kid": es_kid}), &claims)
        .unwrap();
    sts.exchange(&forged, &aud).await.assert_error(400, "invalid_request");
    // typ rules (RFC 8725 §3.11).
    for typ in ["dpop+jwt", "secevent+jwt", "logout+jwt", "txntoken+jwt"] {
        let t = idp.sign(SigningAlgorithm::ES256, Some(typ), &claims).unwrap();
        sts.exchange(&t, &aud).await.assert_error(400, "invalid_request");
    }
    let at = idp.sign(SigningAlgorithm::ES256, Some("at+jwt"), &claims).unwrap();
    assert_eq!(sts.exchange(&at, &aud).await.status, 200);
    let reply = sts
        .exchange_as(("orders-mcp", ORDERS_MCP_SECRET), &at, ID_TOKEN, &aud)
        .await;
    reply.assert_error(400, "invalid_request");
    let plain = idp.sign(SigningAlgorithm::ES256, None, &claims).unwrap();
    assert_eq!(
        sts.exchange_as(("orders-mcp", ORDERS_MCP_SECRET), &plain, ID_TOKEN, &aud)
            .await
            .status,
        200
    );
    // RS256 from the same IdP is fine.
    let rs = idp.sign(SigningAlgorithm::RS256, Some("JWT"), &claims).unwrap();
    assert_eq!(sts.exchange(&rs, &aud).await.status, 200);
    // Oversized tokens are refused before any parsing.
    let huge = "a".repeat(20_000);
    sts.exchange(&huge, &aud).await.assert_error(400, "invalid_request");
}

#[tokio::test]
async fn lifetime_never_exceeds_the_subject_tokens_remaining_life() {
    let sts = TestSts::start().await;
    let short = sts
        .idp
        .user_token("alice", "mcp-sts", &["developer"], T0, 90, &json!({}))
        .unwrap();
    let reply = sts.exchange(&short, &[("audience", "orders-api")]).await;
    assert_eq!(reply.body["expires_in"], 90);
    assert_eq!(reply.claims()["exp"], T0 + 90);
    sts.clock.advance(80);
    assert_eq!(
        sts.exchange(&short, &[("audience", "orders-api")]).await.body["expires_in"],
        10
    );
    sts.clock.advance(40);
    sts.exchange(&short, &[("audience", "orders-api")])
        .await
        .assert_error(400, "invalid_request");
}

#[tokio::test]
async fn may_act_must_name_the_actor() {
    let sts = TestSts::start().await;
    let aud = ("audience", "orders-api");
    let alice = sts.user_token_with("alice", &["developer"], json!({"may_act": {"sub": "claude-desktop"}}));
    let good_agent = sts.agent_token("claude-desktop");
    let bad_agent = sts.agent_token("rogue-agent");
    let ok = sts
        .exchange(&alice, &[aud, ("actor_token", &good_agent), ("actor_token_type", JWT)])
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    sts.exchange(&alice, &[aud, ("actor_token", &bad_agent), ("actor_token_type", JWT)])
        .await
        .assert_error(400, "invalid_request");
    // Without an actor token the client is the actor, and may_act does not name it.
    sts.exchange(&alice, &[aud]).await.assert_error(400, "invalid_request");
    // An invalid actor token is invalid_request too.
    let expired_agent = sts
        .idp
        .user_token("claude-desktop", "mcp-sts", &[], T0 - 7200, 3600, &json!({}))
        .unwrap();
    let reply = sts
        .exchange(
            &alice,
            &[aud, ("actor_token", &expired_agent), ("actor_token_type", JWT)],
        )
        .await;
    reply.assert_error(400, "invalid_request");
    assert!(
        reply.body["error_description"]
            .as_str()
            .unwrap()
            .contains("actor_token")
    );
}

#[tokio::test]
async fn hops_nest_act_narrow_scopes_require_the_audience_client_and_are_depth_limited() {
    let sts = TestSts::start().await;
    let bob = sts.user_token_with("bob", &["order-admin"], json!({"sid": "s-9"}));
    let agent = sts.agent_token("claude-desktop");
    let first = sts
        .exchange(
            &bob,
            &[
                ("audience", "orders-api"),
                ("scope", "orders:read orders:write"),
                ("actor_token", &agent),
                ("actor_token_type", JWT),
            ],
        )
        .await;
    let hop1 = first.token();

    // Only orders-api (the token's audience) may exchange it further.
    sts.exchange_as(
        ("orders-mcp", ORDERS_MCP_SECRET),
        &hop1,
        ACCESS_TOKEN,
        &[("audience", "orders-api")],
    )
    .await
    .assert_error(400, "invalid_request");
    let second = sts
        .exchange_as(
            ("orders-api", ORDERS_API_SECRET),
            &hop1,
            ACCESS_TOKEN,
            &[("audience", "billing-api")],
        )
        .await;
    let claims = second.claims();
    assert_eq!(claims["sub"], "bob");
    assert_eq!(
        claims["act"],
        json!({"sub": "orders-api", "sub_profile": "service",
               "act": {"sub": "claude-desktop", "iss": sts.idp.issuer(), "sub_profile": "ai_agent"}})
    );
    assert_eq!(claims["scope"], "orders:read orders:write");
    assert_eq!(claims["sid"], "s-9");
    assert_eq!(claims["txn"], first.claims()["txn"], "the trace follows the chain");
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        120,
        "billing-api's ttl_seconds"
    );
    assert_eq!(second.body["expires_in"], 120);
    let hop2 = second.token();

    // Scopes only narrow: billing-api cannot widen beyond hop2's scope.
    let narrowed = sts
        .exchange_as(
            ("billing-api", BILLING_API_SECRET),
            &hop2,
            ACCESS_TOKEN,
            &[("audience", "ledger-api"), ("scope", "orders:read")],
        )
        .await;
    assert_eq!(narrowed.body["scope"], "orders:read");
    let hop3 = narrowed.token();
    assert_eq!(narrowed.claims()["act"]["act"]["act"]["sub"], "claude-desktop");
    sts.exchange_as(
        ("ledger-api", LEDGER_API_SECRET),
        &hop3,
        ACCESS_TOKEN,
        &[("audience", "archive-api")],
    )
    .await
    .assert_error(400, "invalid_request");
    assert_eq!(
        sts.audit_events().last().unwrap()["reason"],
        "invalid_request:delegation.too_deep"
    );

    // A narrowed hop cannot ask for a scope it lost.
    let mut from_read_only = sts
        .exchange(&bob, &[("audience", "orders-api"), ("scope", "orders:read")])
        .await
        .token();
    let reply = sts
        .exchange_as(
            ("orders-api", ORDERS_API_SECRET),
            &from_read_only,
            ACCESS_TOKEN,
            &[("audience", "billing-api"), ("scope", "orders:write")],
        )
        .await;
    reply.assert_error(400, "invalid_scope");
    // A tampered minted token is refused.
    let signature_at = from_read_only.rfind('.').unwrap() + 5;
    let flipped = if &from_read_only[signature_at..signature_at + 1] == "A" {
        "B"
    } else {
        "A"
    };
    from_read_only.replace_range(signature_at..signature_at + 1, flipped);
    sts.exchange_as(
        ("orders-api", ORDERS_API_SECRET),
        &from_read_only,
        ACCESS_TOKEN,
        &[("audience", "billing-api")],
    )
    .await
    .assert_error(400, "invalid_request");
}

#[tokio::test]
async fn unreachable_upstream_keys_fail_closed_with_503() {
    let sts = TestSts::start().await;
    let alice = sts.user_token("alice", &["developer"]);
    sts.idp.set_available(false);
    let reply = sts.exchange(&alice, &[("audience", "orders-api")]).await;
    reply.assert_error(503, "temporarily_unavailable");
    assert!(reply.headers.contains_key("retry-after"));
    sts.idp.set_available(true);
    sts.clock.advance(31);
    assert_eq!(
        sts.exchange(&alice, &[("audience", "orders-api")]).await.status,
        200,
        "recovers after the retry interval"
    );
    // Cached keys keep working while the IdP is down.
    sts.idp.set_available(false);
    assert_eq!(sts.exchange(&alice, &[("audience", "orders-api")]).await.status, 200);
}

#[tokio::test]
async fn unknown_kid_refetches_once_per_interval_and_survives_idp_rotation() {
    let sts = TestSts::start().await;
    let alice = sts.user_token("alice", &["developer"]);
    assert_eq!(sts.exchange(&alice, &[("audience", "orders-api")]).await.status, 200);
    let fetches = sts.idp.jwks_requests();
    // The IdP rotates: the new kid is fetched once.
    sts.clock.advance(31);
    sts.idp.rotate(SigningAlgorithm::ES256).unwrap();
    let rotated = sts.user_token("alice", &["developer"]);
    assert_eq!(sts.exchange(&rotated, &[("audience", "orders-api")]).await.status, 200);
    assert_eq!(sts.idp.jwks_requests(), fetches + 1);
    // A flood of unknown kids does not cause a flood of fetches.
    let claims = json!({"iss": sts.idp.issuer(), "sub": "a", "aud": "mcp-sts", "exp": T0 + 900});
    for i in 0..20 {
        let t = sts
            .idp
            .sign_with_header(
                SigningAlgorithm::ES256,
                &json!({"alg": "ES256", "kid": format!("nope-{i}")}),
                &claims,
            )
            .unwrap();
        sts.exchange(&t, &[("audience", "orders-api")])
            .await
            .assert_error(400, "invalid_request");
    }
    assert!(
        sts.idp.jwks_requests() <= fetches + 2,
        "fetches: {}",
        sts.idp.jwks_requests() - fetches
    );
}

#[tokio::test]
async fn metadata_and_jwks_are_published() {
    let sts = TestSts::start().await;
    let meta = Reply::from(
        sts.http
            .get(format!("{}/.well-known/oauth-authorization-server", sts.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(meta.status, 200);
    assert_eq!(meta.body["issuer"], sts.url.as_str());
    assert_eq!(meta.body["token_endpoint"], format!("{}/token", sts.url));
    assert_eq!(meta.body["jwks_uri"], format!("{}/.well-known/jwks.json", sts.url));
    assert_eq!(
        meta.body["grant_types_supported"],
        json!([EXCHANGE, "urn:ietf:params:oauth:grant-type:jwt-bearer"])
    );
    // No authorization servers configured: this service issues no ID-JAGs.
    assert!(
        meta.body
            .get("identity_chaining_requested_token_types_supported")
            .is_none()
    );
    assert!(
        meta.body["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("private_key_jwt"))
    );
    assert!(
        meta.body["token_endpoint_auth_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("ES256"))
    );
    assert!(
        meta.body["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("orders:read"))
    );
    for field in ["revocation_endpoint", "introspection_endpoint"] {
        assert!(meta.body[field].as_str().unwrap().starts_with(&sts.url));
    }
    let oidc = sts
        .http
        .get(format!("{}/.well-known/openid-configuration", sts.url))
        .send()
        .await
        .unwrap();
    assert_eq!(oidc.status(), 404, "not an OpenID provider");

    let jwks = Reply::from(
        sts.http
            .get(format!("{}/.well-known/jwks.json", sts.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let key = &jwks.body["keys"][0];
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["crv"], "P-256");
    assert_eq!(key["alg"], "ES256");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["kid"].as_str().unwrap(), mcp_sts::keys::thumbprint(key).unwrap());
    assert!(key.get("d").is_none(), "never a private member");
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let sts = TestSts::start().await;
    let alice = sts.user_token("alice", &["developer"]);
    assert_eq!(sts.exchange(&alice, &[("audience", "orders-api")]).await.status, 200);
    sts.exchange(&alice, &[("audience", "nope")])
        .await
        .assert_error(400, "invalid_target");
    let get = |path: &str| sts.http.get(format!("{}{path}", sts.url)).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    let ready = Reply::from(get("/readyz").await.unwrap()).await;
    assert_eq!(
        (ready.status, ready.body.clone()),
        (
            200,
            json!({"keys": true, "revocation_store": true, "issuers": {sts.idp.issuer(): true}})
        )
    );
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(r#"mcp_sts_decisions_total{endpoint="token_exchange",outcome="allow"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"mcp_sts_decisions_total{endpoint="token_exchange",outcome="invalid_target"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("mcp_sts_exchange_duration_seconds_count 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_rs256_deployment_signs_with_rs256_and_publishes_an_rsa_key() {
    let sts = TestSts::start_opts(Options {
        rs256: true,
        ..Options::default()
    })
    .await;
    let alice = sts.user_token("alice", &["developer"]);
    let reply = sts.exchange(&alice, &[("audience", "orders-api")]).await;
    let token = reply.token();
    let header = decode_header(&token);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "at+jwt");
    let jwks = Reply::from(
        sts.http
            .get(format!("{}/.well-known/jwks.json", sts.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let key = &jwks.body["keys"][0];
    assert_eq!((key["kty"].as_str(), key["alg"].as_str()), (Some("RSA"), Some("RS256")));
    assert_eq!(key["kid"], header["kid"]);
    // Its own tokens verify for a further hop and for introspection.
    let hop = sts
        .exchange_as(
            ("orders-api", ORDERS_API_SECRET),
            &token,
            ACCESS_TOKEN,
            &[("audience", "billing-api")],
        )
        .await;
    assert_eq!(hop.status, 200, "{}", hop.text);
}

#[tokio::test]
async fn a_token_without_sid_gets_a_stable_derived_session_that_can_be_revoked() {
    let sts = TestSts::start_opts(Options {
        admin: true,
        ..Options::default()
    })
    .await;
    let with_jti = sts.user_token("alice", &["developer"]);
    let first = sts.exchange(&with_jti, &[("audience", "orders-api")]).await.claims();
    let again = sts.exchange(&with_jti, &[("audience", "orders-api")]).await.claims();
    let sid = first["sid"].as_str().unwrap().to_owned();
    assert!(sid.starts_with("derived-"), "{sid}");
    assert_eq!(again["sid"], sid.as_str(), "same token, same session");
    let other = sts
        .exchange(&sts.user_token("alice", &["developer"]), &[("audience", "orders-api")])
        .await
        .claims();
    assert_ne!(other["sid"], sid.as_str(), "another login, another session");
    // Without a jti the session comes from the token itself.
    let no_jti = sts
        .idp
        .sign(
            SigningAlgorithm::ES256,
            None,
            &json!({"iss": sts.idp.issuer(), "sub": "alice", "aud": "mcp-sts", "exp": T0 + 600, "roles": ["developer"]}),
        )
        .unwrap();
    let derived = sts.exchange(&no_jti, &[("audience", "orders-api")]).await.claims()["sid"].clone();
    assert!(derived.as_str().unwrap().starts_with("derived-"));
    // The derived session can be revoked like any other.
    sts.admin_revoke("session", &sid).await;
    sts.exchange(&with_jti, &[("audience", "orders-api")])
        .await
        .assert_error(400, "invalid_request");
    assert_eq!(sts.exchange(&no_jti, &[("audience", "orders-api")]).await.status, 200);
}

#[tokio::test]
async fn oversized_bodies_are_refused_as_oauth_errors() {
    let sts = TestSts::start().await;
    let huge = "x".repeat(70 * 1024);
    let reply = sts
        .post_form("/token", Some(("orders-mcp", ORDERS_MCP_SECRET)), &[("padding", &huge)])
        .await;
    assert_eq!(
        (reply.status, reply.error()),
        (413, "invalid_request"),
        "{}",
        reply.text
    );
    assert_eq!(reply.headers["cache-control"], "no-store");
    // Refused before the exchange: audited as such, never as an exchange.
    let events = sts.audit_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (&events[0]["event"], &events[0]["decision"], &events[0]["reason"]),
        (
            &json!("request"),
            &json!("deny"),
            &json!("invalid_request:request.too_large")
        )
    );
}
