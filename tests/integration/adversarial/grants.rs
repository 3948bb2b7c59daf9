//! Identity assertion grants (draft-ietf-oauth-identity-assertion-authz-grant),
//! attacked: subjects not bound to the caller, grants bound to a key redeemed as
//! bearer grants, grants for resources not served here, replays, and one user's
//! grants outrunning the per-user rate limit. Every refusal has its exact code, and
//! nothing is minted or changed.

use mcp_sts::config::SigningAlgorithm;
use serde_json::{Value, json};

use crate::support::attack::*;
use crate::support::sts::*;

const GROUP: &str = "grants";
const ASSISTANT: (&str, &str) = ("assistant", "assistant-secret");
const ORDERS_MCP_URL: &str = "https://orders.example.com/mcp";
const ID_JAG: &str = "urn:ietf:params:oauth:token-type:id-jag";
const ID_JAG_TYP: &str = "oauth-id-jag+jwt";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// An agent (`assistant`) that obtains grants from this service for the orders MCP
/// server (this service is its authorization server), and an IdP trusted for grants.
async fn start(tables: &str) -> TestSts {
    let extra = format!(
        r#"
[[clients]]
client_id = "assistant"
secret_sha256 = "{assistant}"
audiences = ["orders-mcp"]
authorization_servers = ["$ISSUER"]

[[audiences]]
id = "orders-mcp"
resource = "{ORDERS_MCP_URL}"
mode = "on_behalf_of"
scopes = ["orders:read", "orders:write"]

[[authorization_servers]]
issuer = "$ISSUER"
[[authorization_servers.resources]]
resource = "{ORDERS_MCP_URL}"
scopes = ["orders:read", "orders:write"]
[authorization_servers.resources.role_scopes]
developer = ["orders:read"]
"#,
        assistant = mcp_sts::client_auth::hash_secret(ASSISTANT.1),
    );
    TestSts::start_opts(Options {
        extra_clients: extra,
        admin: true,
        issuer_extra: "accept_id_jag = true".into(),
        extra_tables: tables.to_owned(),
        ..Options::default()
    })
    .await
}

/// A token from the IdP with these claims over the usual ones, and this `typ`.
fn idp_token(sts: &TestSts, typ: &str, overrides: Value) -> String {
    let now = sts.clock_now();
    let mut claims = json!({
        "iss": sts.idp.issuer(), "sub": "alice", "aud": "assistant", "iat": now, "nbf": now,
        "exp": now + 3600, "jti": uuid_like(), "roles": ["developer"], "sid": "alice-sso",
    });
    merge(&mut claims, overrides);
    sts.idp.sign(SigningAlgorithm::ES256, Some(typ), &claims).unwrap()
}

/// A grant the IdP (trusted for grants) addresses to this service for `user`.
fn idp_grant(sts: &TestSts, user: &str, overrides: Value) -> String {
    let now = sts.clock_now();
    let mut claims = json!({
        "iss": sts.idp.issuer(), "sub": user, "aud": sts.url, "client_id": "assistant",
        "jti": uuid_like(), "iat": now, "exp": now + 120, "resource": ORDERS_MCP_URL,
        "scope": "orders:read",
    });
    merge(&mut claims, overrides);
    sts.idp
        .sign(SigningAlgorithm::ES256, Some(ID_JAG_TYP), &claims)
        .unwrap()
}

fn merge(claims: &mut Value, overrides: Value) {
    if let (Some(map), Some(extra)) = (claims.as_object_mut(), overrides.as_object()) {
        for (k, v) in extra {
            if v.is_null() {
                map.remove(k);
            } else {
                map.insert(k.clone(), v.clone());
            }
        }
    }
}

fn uuid_like() -> String {
    let mut bytes = [0u8; 12];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    b64(&bytes)
}

/// Ask for a grant for the orders MCP server with `subject` of `subject_type`.
async fn ask(sts: &TestSts, subject: &str, subject_type: &str) -> Reply {
    let issuer = sts.url.clone();
    sts.post_form(
        "/token",
        Some(ASSISTANT),
        &[
            ("grant_type", EXCHANGE),
            ("requested_token_type", ID_JAG),
            ("subject_token", subject),
            ("subject_token_type", subject_type),
            ("audience", &issuer),
            ("resource", ORDERS_MCP_URL),
        ],
    )
    .await
}

/// Redeem `grant` as the assistant, with extra headers.
async fn redeem(sts: &TestSts, grant: &str, headers: &[(&str, &str)]) -> Reply {
    let basic = basic_header(ASSISTANT.0, ASSISTANT.1);
    let mut all = vec![
        ("content-type", "application/x-www-form-urlencoded"),
        ("authorization", basic.as_str()),
    ];
    all.extend_from_slice(headers);
    post_raw(
        sts,
        "/token",
        &all,
        form(&[("grant_type", JWT_BEARER), ("assertion", grant)]),
    )
    .await
}

/// A refusal with this code whose audit reason names `rule`, with nothing minted or changed.
async fn refused_for(
    sts: &TestSts,
    reply: impl std::future::Future<Output = Reply>,
    code: &str,
    rule: &str,
) -> Outcome {
    let watch = Watch::take(sts).await;
    let reply = reply.await;
    refused(&reply, 400, code)?;
    let reason = sts
        .audit_events()
        .last()
        .and_then(|e| e["reason"].as_str().map(String::from))
        .unwrap_or_default();
    if reason != format!("{code}:{rule}") {
        return Err(format!("audited as {reason}, expected {code}:{rule}"));
    }
    watch.unchanged(sts).await
}

#[tokio::test]
async fn a_grant_request_needs_an_identity_assertion_bound_to_the_caller() {
    let sts = start("").await;
    let mut verdicts = Verdicts::new(GROUP);
    let control = idp_token(&sts, "JWT", json!({}));
    verdicts.record(
        "issue/control/an_id_token_issued_to_the_caller_gets_a_grant",
        match ask(&sts, &control, ID_TOKEN).await {
            r if r.status == 200 => Ok(()),
            r => Err(format!("{} {}", r.status, clip(&r.text))),
        },
    );
    let other_app_access = idp_token(&sts, "at+jwt", json!({"aud": "mcp-sts", "client_id": "other-app"}));
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "issue/an_access_token_issued_to_another_client",
            other_app_access.clone(),
            ACCESS_TOKEN,
            "subject_token.not_identity_assertion",
        ),
        (
            "issue/that_access_token_declared_as_a_jwt",
            other_app_access,
            JWT,
            "subject_token.typ",
        ),
        (
            "issue/a_jwt_addressed_to_mcp_sts_not_to_the_caller",
            idp_token(&sts, "JWT", json!({"aud": "mcp-sts"})),
            JWT,
            "subject_token.audience",
        ),
        (
            "issue/an_id_token_issued_to_another_client",
            idp_token(&sts, "JWT", json!({"aud": "other-app"})),
            ID_TOKEN,
            "subject_token.audience",
        ),
        (
            "issue/an_id_token_whose_authorized_party_is_another_client",
            idp_token(
                &sts,
                "JWT",
                json!({"aud": ["assistant", "other-app"], "azp": "other-app"}),
            ),
            ID_TOKEN,
            "subject_token.audience",
        ),
        (
            "issue/an_access_token_declared_as_an_id_token",
            idp_token(&sts, "at+jwt", json!({})),
            ID_TOKEN,
            "subject_token.typ",
        ),
    ];
    for (name, subject, subject_type, rule) in cases {
        verdicts.record(
            name,
            refused_for(&sts, ask(&sts, &subject, subject_type), "invalid_request", rule).await,
        );
    }
    verdicts.finish();
}

/// A name, a grant, extra headers and the rule that must refuse it.
type RedeemCase<'a> = (&'a str, String, Vec<(&'a str, String)>, &'a str);

#[tokio::test]
async fn a_grant_is_redeemed_only_as_what_it_is() {
    let sts = start("").await;
    let mut verdicts = Verdicts::new(GROUP);
    let control = idp_grant(&sts, "bob", json!({}));
    verdicts.record(
        "redeem/control/a_bearer_grant_is_redeemed",
        minted(&redeem(&sts, &control, &[]).await).map(|_| ()),
    );
    let thumbprint = b64(&[7u8; 32]);
    let bound = idp_grant(&sts, "bob", json!({"cnf": {"jkt": thumbprint}}));
    // A DPoP proof from a key that is not the one the grant is bound to.
    let stranger = ForgeIdp::start("dpop").await;
    let proof = stranger.sign(
        &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": stranger.public_jwk}),
        &json!({"jti": uuid_like(), "htm": "POST", "htu": format!("{}/token", sts.url), "iat": sts.clock_now()}),
    );
    let cases: Vec<RedeemCase> = vec![
        (
            "redeem/a_key_bound_grant_without_a_proof",
            bound.clone(),
            vec![],
            "assertion.cnf",
        ),
        (
            "redeem/a_key_bound_grant_with_a_proof_by_another_key",
            bound,
            vec![("dpop", proof)],
            "assertion.cnf",
        ),
        (
            "redeem/a_grant_bound_to_a_certificate",
            idp_grant(&sts, "bob", json!({"cnf": {"x5t#S256": thumbprint}})),
            vec![],
            "assertion.cnf",
        ),
        (
            "redeem/a_grant_for_a_resource_not_served_here",
            idp_grant(&sts, "bob", json!({"resource": "https://nowhere.example/mcp"})),
            vec![],
            "assertion.resource_unknown",
        ),
        (
            "redeem/a_grant_naming_no_resource",
            idp_grant(&sts, "bob", json!({"resource": null})),
            vec![],
            "assertion.resource",
        ),
        ("redeem/a_grant_replayed", control, vec![], "assertion.replay"),
        (
            "redeem/a_grant_issued_to_another_client",
            idp_grant(&sts, "bob", json!({"client_id": "intruder"})),
            vec![],
            "assertion.client_id",
        ),
        (
            "redeem/a_grant_addressed_to_two_servers",
            idp_grant(&sts, "bob", json!({"aud": [sts.url, "https://as.example"]})),
            vec![],
            "assertion.audience",
        ),
        (
            "redeem/an_id_token_as_a_grant",
            idp_token(&sts, "JWT", json!({"aud": sts.url, "client_id": "assistant"})),
            vec![],
            "assertion.typ",
        ),
    ];
    for (name, grant, headers, rule) in cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        verdicts.record(
            name,
            refused_for(&sts, redeem(&sts, &grant, &headers), "invalid_grant", rule).await,
        );
    }
    verdicts.finish();
}

/// The statuses of `replies`, and whether the refusals were the user's rate limit.
fn limited_after_two(replies: &[Reply]) -> Outcome {
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    if statuses != [200, 200, 429, 429] {
        return Err(format!("statuses {statuses:?}, expected [200, 200, 429, 429]"));
    }
    for reply in &replies[2..] {
        refused(reply, 429, "too_many_requests")?;
        if reply.body.get("access_token").is_some() {
            return Err("a refused request carried a token".into());
        }
    }
    Ok(())
}

#[tokio::test]
async fn the_per_user_rate_limit_covers_grants() {
    let limits = "\n[limits]\nsubject_per_second = 1\nsubject_burst = 2\n";
    let mut verdicts = Verdicts::new(GROUP);

    let sts = start(limits).await;
    let login = idp_token(&sts, "JWT", json!({}));
    let mut replies = Vec::new();
    for _ in 0..4 {
        replies.push(ask(&sts, &login, ID_TOKEN).await);
    }
    verdicts.record(
        "limits/four_grants_issued_in_a_row_for_one_user",
        limited_after_two(&replies),
    );

    let sts = start(limits).await;
    let mut replies = Vec::new();
    for _ in 0..4 {
        let grant = idp_grant(&sts, "rita", json!({}));
        replies.push(redeem(&sts, &grant, &[]).await);
    }
    verdicts.record(
        "limits/four_grants_redeemed_in_a_row_for_one_user",
        limited_after_two(&replies),
    );
    let reason = sts
        .audit_events()
        .last()
        .and_then(|e| e["reason"].as_str().map(String::from))
        .unwrap_or_default();
    verdicts.record(
        "limits/the_refusal_is_audited_as_the_user_limit",
        if reason == "too_many_requests:rate_limit.subject" {
            Ok(())
        } else {
            Err(format!("audited as {reason}"))
        },
    );
    verdicts.finish();
}
