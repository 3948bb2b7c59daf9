//! Revocation end to end over real HTTP: `/revoke`, `/introspect`, the admin API,
//! lineage, replicas sharing a real Redis, and failing closed when Redis is down.

use std::time::Duration;

use crate::support::redis_server::{RedisOptions, RedisServer};
use crate::support::sts::*;
use reqwest::Method;
use serde_json::json;

const ORDERS_MCP: (&str, &str) = ("orders-mcp", ORDERS_MCP_SECRET);
const ORDERS_API: (&str, &str) = ("orders-api", ORDERS_API_SECRET);
const BILLING_API: (&str, &str) = ("billing-api", BILLING_API_SECRET);

async fn with_admin() -> TestSts {
    TestSts::start_opts(Options {
        admin: true,
        ..Options::default()
    })
    .await
}

fn redis_revocation(redis: &RedisServer) -> String {
    format!(
        "backend = \"redis\"\nurl = \"{}\"\ntimeout_ms = 100",
        redis.url_with_db(2)
    )
}

#[tokio::test]
async fn introspection_answers_only_the_audience_or_client_and_only_while_active() {
    let sts = with_admin().await;
    let alice = sts.user_token_with("alice", &["developer"], json!({"sid": "s-1"}));
    let minted = sts.exchange(&alice, &[("audience", "orders-api")]).await;
    let token = minted.token();
    let claims = minted.claims();

    let reply = sts.introspect(ORDERS_API, &token).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["cache-control"], "no-store");
    let body = &reply.body;
    assert_eq!(body["active"], true);
    for field in [
        "iss",
        "sub",
        "aud",
        "scope",
        "client_id",
        "exp",
        "iat",
        "jti",
        "sid",
        "act",
        "delegation_mode",
    ] {
        assert_eq!(body[field], claims[field], "{field}");
    }
    assert_eq!(
        sts.introspect(ORDERS_MCP, &token).await.body["active"],
        true,
        "the client it was issued to"
    );
    assert_eq!(
        sts.introspect(BILLING_API, &token).await.body,
        json!({"active": false}),
        "another client learns nothing"
    );
    assert_eq!(
        sts.introspect(ORDERS_API, "garbage").await.body,
        json!({"active": false})
    );
    assert_eq!(
        sts.introspect(ORDERS_API, &alice).await.body,
        json!({"active": false}),
        "upstream tokens are not ours"
    );
    sts.post_form("/introspect", Some(ORDERS_API), &[])
        .await
        .assert_error(400, "invalid_request");
    sts.post_form("/introspect", None, &[("token", &token)])
        .await
        .assert_error(401, "invalid_client");
    sts.post_form("/introspect", Some(("orders-api", "wrong")), &[("token", &token)])
        .await
        .assert_error(401, "invalid_client");
    sts.clock.advance(301);
    assert_eq!(
        sts.introspect(ORDERS_API, &token).await.body,
        json!({"active": false}),
        "expired"
    );
}

#[tokio::test]
async fn revoke_endpoint_ends_one_token_for_its_client_or_audience_only() {
    let sts = with_admin().await;
    let bob = sts.user_token("bob", &["order-admin"]);
    let token = sts.exchange(&bob, &[("audience", "orders-api")]).await.token();
    let other = sts.exchange(&bob, &[("audience", "orders-api")]).await.token();

    // A client the token was neither issued to nor for: refused, nothing changed.
    let reply = sts.post_form("/revoke", Some(BILLING_API), &[("token", &token)]).await;
    reply.assert_error(400, "unauthorized_client");
    assert_eq!(sts.introspect(ORDERS_API, &token).await.body["active"], true);
    // Unknown or invalid tokens: 200 (RFC 7009 §2.2), and the hint is only a hint.
    let reply = sts
        .post_form(
            "/revoke",
            Some(ORDERS_MCP),
            &[("token", "nonsense"), ("token_type_hint", "refresh_token")],
        )
        .await;
    assert_eq!(reply.status, 200);
    sts.post_form("/revoke", Some(ORDERS_MCP), &[])
        .await
        .assert_error(400, "invalid_request");
    sts.post_form("/revoke", None, &[("token", &token)])
        .await
        .assert_error(401, "invalid_client");

    // Revoked by its audience (our extension).
    let reply = sts
        .post_form(
            "/revoke",
            Some(ORDERS_API),
            &[("token", &token), ("token_type_hint", "access_token")],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(sts.introspect(ORDERS_API, &token).await.body, json!({"active": false}));
    assert_eq!(
        sts.introspect(ORDERS_API, &other).await.body["active"],
        true,
        "only that token"
    );
    // A further hop with the revoked token is refused.
    sts.exchange_as(ORDERS_API, &token, ACCESS_TOKEN, &[("audience", "billing-api")])
        .await
        .assert_error(400, "invalid_request");
    assert_eq!(
        sts.exchange_as(ORDERS_API, &other, ACCESS_TOKEN, &[("audience", "billing-api")])
            .await
            .status,
        200
    );
    let event = sts
        .audit_events()
        .into_iter()
        .rfind(|e| e["event"] == "revoke" && e["decision"] == "allow")
        .unwrap();
    assert_eq!(event["client_id"], "orders-api");
}

#[tokio::test]
async fn offboarding_a_subject_refuses_exchanges_and_ends_tokens_already_minted() {
    let sts = with_admin().await;
    let carol = sts.user_token("carol@example.com", &["developer"]);
    let before = sts.exchange(&carol, &[("audience", "orders-api")]).await.token();
    let hop = sts
        .exchange_as(ORDERS_API, &before, ACCESS_TOKEN, &[("audience", "billing-api")])
        .await
        .token();
    sts.admin_revoke("subject", "carol@example.com").await;

    let reply = sts.exchange(&carol, &[("audience", "orders-api")]).await;
    reply.assert_error(400, "invalid_request");
    assert!(reply.body["error_description"].as_str().unwrap().contains("revoked"));
    assert_eq!(sts.introspect(ORDERS_API, &before).await.body, json!({"active": false}));
    assert_eq!(
        sts.introspect(BILLING_API, &hop).await.body,
        json!({"active": false}),
        "lineage covers hops"
    );
    sts.exchange_as(ORDERS_API, &before, ACCESS_TOKEN, &[("audience", "billing-api")])
        .await
        .assert_error(400, "invalid_request");
    // A fresh login does not escape an offboarding: it holds until reinstated.
    sts.clock.advance(60);
    let fresh = sts.user_token("carol@example.com", &["developer"]);
    sts.exchange(&fresh, &[("audience", "orders-api")])
        .await
        .assert_error(400, "invalid_request");
    // Other users are unaffected.
    let alice = sts.user_token("alice", &["developer"]);
    assert_eq!(sts.exchange(&alice, &[("audience", "orders-api")]).await.status, 200);
    // As an actor, too.
    let as_agent = sts
        .idp
        .user_token("carol@example.com", "mcp-sts", &[], sts.clock_now(), 600, &json!({}))
        .unwrap();
    let reply = sts
        .exchange(
            &alice,
            &[
                ("audience", "orders-api"),
                ("actor_token", &as_agent),
                ("actor_token_type", JWT),
            ],
        )
        .await;
    reply.assert_error(400, "invalid_request");

    // Reinstated: exchanges work again.
    let reply = sts.admin(Method::DELETE, "/subject/carol@example.com", None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(sts.exchange(&fresh, &[("audience", "orders-api")]).await.status, 200);
    let actions: Vec<String> = sts
        .audit_events()
        .into_iter()
        .filter(|e| e["event"].as_str().unwrap().starts_with("admin_"))
        .map(|e| format!("{} {}", e["event"].as_str().unwrap(), e["target"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        vec![
            "admin_revoke subject:carol@example.com",
            "admin_reinstate subject:carol@example.com"
        ]
    );
}

#[tokio::test]
async fn session_agent_and_client_revocations() {
    let sts = with_admin().await;
    let alice = sts.user_token_with("alice", &["developer"], json!({"sid": "sess-a"}));
    let alice_other_session = sts.user_token_with("alice", &["developer"], json!({"sid": "sess-b"}));
    let agent = sts.agent_token("rogue-agent");
    let via_agent = [
        ("audience", "orders-api"),
        ("actor_token", agent.as_str()),
        ("actor_token_type", JWT),
    ];
    let agent_token = sts.exchange(&alice_other_session, &via_agent).await.token();

    sts.admin_revoke("session", "sess-a").await;
    sts.exchange(&alice, &[("audience", "orders-api")])
        .await
        .assert_error(400, "invalid_request");
    assert_eq!(
        sts.exchange(&alice_other_session, &[("audience", "orders-api")])
            .await
            .status,
        200
    );

    sts.admin_revoke("agent", "rogue-agent").await;
    sts.exchange(&alice_other_session, &via_agent)
        .await
        .assert_error(400, "invalid_request");
    assert_eq!(
        sts.introspect(ORDERS_API, &agent_token).await.body,
        json!({"active": false})
    );
    assert_eq!(
        sts.exchange(&alice_other_session, &[("audience", "orders-api")])
            .await
            .status,
        200
    );

    sts.admin_revoke("client", "orders-mcp").await;
    let reply = sts.exchange(&alice_other_session, &[("audience", "orders-api")]).await;
    reply.assert_error(401, "invalid_client");
    sts.post_form("/introspect", Some(ORDERS_MCP), &[("token", "x")])
        .await
        .assert_error(401, "invalid_client");
}

#[tokio::test]
async fn admin_api_is_closed_by_default_and_checks_its_input() {
    let closed = TestSts::start().await;
    let reply = closed.admin(Method::GET, "", None).await;
    assert_eq!(reply.status, 404, "no credential configured: no admin API");

    let sts = with_admin().await;
    let anonymous = sts
        .http
        .get(format!("{}/admin/revocations", sts.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(
        anonymous.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let wrong = sts
        .http
        .get(format!("{}/admin/revocations", sts.url))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    for bad in [
        json!({"kind": "planet", "value": "x", "reason": "r"}),
        json!({"kind": "subject", "value": "", "reason": "r"}),
        json!({"kind": "subject"}),
        json!({"kind": "subject", "value": "x", "reason": "r", "extra": 1}),
    ] {
        let reply = sts.admin(Method::POST, "", Some(bad.clone())).await;
        assert_eq!((reply.status, reply.error()), (400, "invalid_request"), "{bad}");
    }
    assert_eq!(
        sts.admin(Method::GET, "", None).await.body,
        json!({"revocations": []}),
        "nothing was changed"
    );
    assert_eq!(sts.admin(Method::DELETE, "/subject/nobody", None).await.status, 404);

    sts.admin_revoke("agent", "agent-x").await;
    let listed = sts.admin(Method::GET, "", None).await.body;
    let entry = &listed["revocations"][0];
    assert_eq!(entry["kind"], "agent");
    assert_eq!(entry["value"], "agent-x");
    assert_eq!(entry["reason"], "test");
    assert_eq!(entry["revoked_by"], "tester");
    assert_eq!(entry["revoked_at"], T0);
    assert!(
        entry["expires_at"].as_u64().unwrap() >= T0 + 86_400,
        "kept at least a day"
    );
}

#[tokio::test]
async fn replicas_sharing_redis_agree_at_once() {
    let redis = RedisServer::start_with(RedisOptions {
        password: Some("s3cret".into()),
        appendonly: true,
        ..RedisOptions::default()
    });
    let revocation = redis_revocation(&redis);
    let a = TestSts::start_opts(Options {
        admin: true,
        revocation: revocation.clone(),
        ..Options::default()
    })
    .await;
    let b = TestSts::start_opts(Options {
        admin: true,
        revocation,
        idp: Some(a.idp.clone()),
        replica_of: Some((a.url.clone(), a.keys_dir.clone())),
        ..Options::default()
    })
    .await;
    let dave = a.user_token_with("dave", &["developer"], json!({"sid": "sess-d"}));
    let agent = a.agent_token("agent-d");
    let from_a = a.exchange(&dave, &[("audience", "orders-api")]).await.token();
    let with_agent = [
        ("audience", "orders-api"),
        ("actor_token", agent.as_str()),
        ("actor_token_type", JWT),
    ];
    let from_a_via_agent = a.exchange(&dave, &with_agent).await.token();
    assert_eq!(
        b.introspect(ORDERS_API, &from_a).await.body["active"],
        true,
        "B verifies A's tokens"
    );
    assert_eq!(b.exchange(&dave, &[("audience", "orders-api")]).await.status, 200);

    for (kind, value, extra) in [
        ("session", "sess-d", false),
        ("agent", "agent-d", true),
        ("subject", "dave", false),
    ] {
        a.admin_revoke(kind, value).await;
        let params: Vec<(&str, &str)> = if extra {
            vec![
                ("audience", "orders-api"),
                ("actor_token", agent.as_str()),
                ("actor_token_type", JWT),
            ]
        } else {
            vec![("audience", "orders-api")]
        };
        let affected = if extra { &from_a_via_agent } else { &from_a };
        b.exchange(&dave, &params).await.assert_error(400, "invalid_request");
        assert_eq!(
            b.introspect(ORDERS_API, affected).await.body,
            json!({"active": false}),
            "{kind}"
        );
        let reply = b.admin(Method::DELETE, &format!("/{kind}/{value}"), None).await;
        assert_eq!(reply.status, 200, "reinstated through B: {}", reply.text);
        assert_eq!(
            a.introspect(ORDERS_API, affected).await.body["active"],
            true,
            "{kind} reinstated for A too"
        );
    }
}

#[tokio::test]
async fn redis_down_fails_closed_and_recovers_without_restart() {
    let mut redis = RedisServer::start_with(RedisOptions {
        password: None,
        appendonly: true,
        ..RedisOptions::default()
    });
    let sts = TestSts::start_opts(Options {
        admin: true,
        revocation: redis_revocation(&redis),
        ..Options::default()
    })
    .await;
    let erin = sts.user_token("erin", &["developer"]);
    let alice = sts.user_token("alice", &["developer"]);
    let minted = sts.exchange(&alice, &[("audience", "orders-api")]).await.token();
    sts.admin_revoke("subject", "erin").await;

    // Exchanges for the revoked subject keep running through the outage and the
    // restart: none of them may ever be allowed.
    let (first_answer, answered) = tokio::sync::oneshot::channel::<()>();
    let hammer = {
        let (url, http, erin) = (sts.url.clone(), sts.http.clone(), erin.clone());
        let mut first_answer = Some(first_answer);
        tokio::spawn(async move {
            let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
            let body = form_urlencoded::Serializer::new(String::new())
                .extend_pairs([
                    ("grant_type", EXCHANGE),
                    ("subject_token", erin.as_str()),
                    ("subject_token_type", ACCESS_TOKEN),
                    ("audience", "orders-api"),
                    ("client_id", "orders-mcp"),
                    ("client_secret", ORDERS_MCP_SECRET),
                ])
                .finish();
            let until = std::time::Instant::now() + Duration::from_secs(3);
            while std::time::Instant::now() < until {
                let response = http
                    .post(format!("{url}/token"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                *statuses.entry(response.status().as_u16()).or_default() += 1;
                if let Some(tell) = first_answer.take() {
                    let _ = tell.send(());
                }
            }
            statuses
        })
    };
    // Stop Redis once the hammer has had an answer with the store up.
    answered.await.unwrap();
    redis.stop();
    for _ in 0..5 {
        for subject in [&erin, &alice] {
            let reply = sts.exchange(subject, &[("audience", "orders-api")]).await;
            reply.assert_error(503, "temporarily_unavailable");
            assert!(reply.headers.contains_key("retry-after"));
        }
        sts.introspect(ORDERS_API, &minted)
            .await
            .assert_error(503, "temporarily_unavailable");
    }
    // A revocation cannot be acknowledged while the store is down.
    let reply = sts
        .admin(
            Method::POST,
            "",
            Some(json!({"kind": "subject", "value": "frank", "reason": "r"})),
        )
        .await;
    assert_eq!((reply.status, reply.error()), (503, "temporarily_unavailable"));
    let ready = sts.http.get(format!("{}/readyz", sts.url)).send().await.unwrap();
    assert_eq!(ready.status(), 503);

    redis.start_again();
    let mut recovered = false;
    for _ in 0..50 {
        if sts.exchange(&alice, &[("audience", "orders-api")]).await.status == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "exchanges resume once Redis is back");
    let statuses = hammer.await.unwrap();
    assert!(
        !statuses.contains_key(&200),
        "a revoked subject was allowed: {statuses:?}"
    );
    assert!(statuses.keys().all(|s| *s == 400 || *s == 503), "{statuses:?}");
    assert!(
        statuses.contains_key(&503) && statuses.contains_key(&400),
        "{statuses:?}"
    );
    // The revocation acknowledged before the outage survived the restart.
    sts.exchange(&erin, &[("audience", "orders-api")])
        .await
        .assert_error(400, "invalid_request");
    assert_eq!(sts.introspect(ORDERS_API, &minted).await.body["active"], true);
}
