//! Enterprise-managed authorization through the real router: an agent trades the
//! user's ID token for an identity assertion grant (ID-JAG), redeems it with the JWT
//! bearer grant for an access token to an MCP server, and the MCP server exchanges that
//! token further. Revocations, replays and every malformed grant are refused with the
//! exact code, and nothing is minted.

use crate::support::sts::{
    ACCESS_TOKEN, EXCHANGE, ID_TOKEN, ORDERS_MCP_SECRET, Options, Reply, TestSts, decode_header,
};
use mcp_sts::config::SigningAlgorithm;
use serde_json::{Value, json};

pub(crate) const ASSISTANT: (&str, &str) = ("assistant", "assistant-secret");
const INTRUDER: (&str, &str) = ("intruder", "intruder-secret");
const ORDERS_MCP: (&str, &str) = ("orders-mcp", ORDERS_MCP_SECRET);
pub(crate) const ORDERS_MCP_URL: &str = "https://orders.example.com/mcp";
const CRM_AS: &str = "https://auth.crm.example";
const CRM_MCP_URL: &str = "https://crm.example/mcp";
const ID_JAG: &str = "urn:ietf:params:oauth:token-type:id-jag";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Two agents, the orders MCP server as an audience, and two authorization servers:
/// this service (for the orders MCP server) and an outside one (for a CRM MCP server).
pub(crate) fn extras() -> String {
    let sha = mcp_sts::client_auth::hash_secret;
    format!(
        r#"
[[clients]]
client_id = "assistant"
secret_sha256 = "{assistant}"
audiences = ["orders-mcp"]
authorization_servers = ["$ISSUER", "{CRM_AS}"]

[[clients]]
client_id = "intruder"
secret_sha256 = "{intruder}"
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
order-admin = ["orders:read", "orders:write"]

[[authorization_servers]]
issuer = "{CRM_AS}"
ttl_seconds = 120
[[authorization_servers.resources]]
resource = "{CRM_MCP_URL}"
scopes = ["crm:read"]
[authorization_servers.resources.role_scopes]
developer = ["crm:read"]
"#,
        assistant = sha(ASSISTANT.1),
        intruder = sha(INTRUDER.1),
    )
}

async fn start() -> TestSts {
    start_with_issuer("").await
}

async fn start_with_issuer(issuer_extra: &str) -> TestSts {
    TestSts::start_opts(Options {
        extra_clients: extras(),
        admin: true,
        issuer_extra: issuer_extra.to_owned(),
        ..Options::default()
    })
    .await
}

/// Alice's ID token from the IdP, issued to the assistant (its `aud`) at single sign-on.
pub(crate) fn alice_login(sts: &TestSts) -> String {
    sts.idp
        .user_token(
            "alice",
            "assistant",
            &["developer"],
            sts.clock_now(),
            3600,
            &json!({"email": "alice@example.com", "amr": ["pwd", "otp"], "sid": "alice-sso-1"}),
        )
        .unwrap()
}

/// Ask for a grant as `client`.
async fn request_grant(sts: &TestSts, client: (&str, &str), id_token: &str, extra: &[(&str, &str)]) -> Reply {
    let mut form = vec![
        ("grant_type", EXCHANGE),
        ("requested_token_type", ID_JAG),
        ("subject_token", id_token),
        ("subject_token_type", ID_TOKEN),
    ];
    form.extend_from_slice(extra);
    sts.post_form("/token", Some(client), &form).await
}

/// A grant for the orders MCP server at this service, as the assistant.
pub(crate) async fn orders_grant(sts: &TestSts, id_token: &str) -> String {
    let issuer = sts.url.clone();
    let reply = request_grant(
        sts,
        ASSISTANT,
        id_token,
        &[
            ("audience", &issuer),
            ("resource", ORDERS_MCP_URL),
            ("scope", "orders:read"),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.token()
}

/// Redeem a grant as `client`.
pub(crate) async fn redeem(sts: &TestSts, client: (&str, &str), grant: &str, extra: &[(&str, &str)]) -> Reply {
    let mut form = vec![("grant_type", JWT_BEARER), ("assertion", grant)];
    form.extend_from_slice(extra);
    sts.post_form("/token", Some(client), &form).await
}

/// The last audit event's decision and reason.
fn last_audit(sts: &TestSts) -> (String, String, String) {
    let events = sts.audit_events();
    let last = events.last().cloned().unwrap_or(Value::Null);
    let text = |k: &str| last[k].as_str().unwrap_or_default().to_owned();
    (text("event"), text("decision"), text("reason"))
}

/// A refusal with this status and code that minted nothing.
#[track_caller]
fn assert_refused(reply: &Reply, status: u16, code: &str) {
    reply.assert_error(status, code);
    assert!(reply.body.get("access_token").is_none(), "{}", reply.text);
}

#[tokio::test]
async fn alice_logs_in_the_agent_gets_a_grant_redeems_it_and_the_mcp_server_exchanges_further() {
    let sts = start().await;
    let now = sts.clock_now();
    let issuer = sts.url.clone();

    // 1. The agent trades alice's ID token for a grant to the orders MCP server.
    let reply = request_grant(
        &sts,
        ASSISTANT,
        &alice_login(&sts),
        &[
            ("audience", &issuer),
            ("resource", ORDERS_MCP_URL),
            ("scope", "orders:read"),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["issued_token_type"], ID_JAG);
    assert_eq!(reply.body["token_type"], "N_A");
    assert_eq!(reply.body["expires_in"], 300);
    assert_eq!(reply.body["scope"], "orders:read");
    assert_eq!(reply.headers["cache-control"], "no-store");
    let grant = reply.token();
    let header = decode_header(&grant);
    assert_eq!(header["typ"], "oauth-id-jag+jwt");
    assert!(header["kid"].is_string());
    let claims = reply.claims();
    for (claim, expected) in [
        ("iss", json!(issuer)),
        ("sub", json!("alice")),
        ("aud", json!(issuer)),
        ("client_id", json!("assistant")),
        ("resource", json!(ORDERS_MCP_URL)),
        ("scope", json!("orders:read")),
        ("iat", json!(now)),
        ("exp", json!(now + 300)),
        ("sid", json!("alice-sso-1")),
        ("email", json!("alice@example.com")),
        ("amr", json!(["pwd", "otp"])),
    ] {
        assert_eq!(claims[claim], expected, "{claim}");
    }
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));

    // 2. The agent redeems it for an access token to the orders MCP server.
    let reply = redeem(&sts, ASSISTANT, &grant, &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["token_type"], "Bearer");
    assert!(reply.body.get("issued_token_type").is_none());
    let access = reply.token();
    assert_eq!(decode_header(&access)["typ"], "at+jwt");
    let claims = reply.claims();
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], ORDERS_MCP_URL);
    assert_eq!(claims["client_id"], "assistant");
    assert_eq!(claims["act"], json!({"sub": "assistant", "sub_profile": "ai_agent"}));
    assert_eq!(claims["scope"], "orders:read");
    assert_eq!(claims["sid"], "alice-sso-1");
    assert_eq!(claims["delegation_mode"], "on_behalf_of");

    // 3. The orders MCP server exchanges it for the downstream orders API.
    let reply = sts
        .exchange_as(ORDERS_MCP, &access, ACCESS_TOKEN, &[("audience", "orders-api")])
        .await;
    let claims = reply.claims();
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], "orders-api");
    assert_eq!(claims["scope"], "orders:read");
    assert_eq!(
        claims["act"],
        json!({"sub": "orders-mcp", "sub_profile": "service",
               "act": {"sub": "assistant", "sub_profile": "ai_agent"}})
    );

    let decisions: Vec<(String, String)> = sts
        .audit_events()
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap_or_default().to_owned(),
                e["decision"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        decisions,
        [
            ("id_jag_issue", "allow"),
            ("id_jag_redeem", "allow"),
            ("token_exchange", "allow")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let audit_text = serde_json::to_string(&sts.audit_events()).unwrap();
    assert!(!audit_text.contains(&grant) && !audit_text.contains(&access));
}

#[tokio::test]
async fn metadata_advertises_issuing_and_redeeming_grants() {
    let sts = start().await;
    let metadata: Value = sts
        .http
        .get(format!("{}/.well-known/oauth-authorization-server", sts.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["grant_types_supported"], json!([EXCHANGE, JWT_BEARER]));
    assert_eq!(
        metadata["authorization_grant_profiles_supported"],
        json!(["urn:ietf:params:oauth:grant-profile:id-jag"])
    );
    assert_eq!(
        metadata["identity_chaining_requested_token_types_supported"],
        json!([ID_JAG])
    );
}

#[tokio::test]
async fn offboarding_alice_stops_new_grants_redemptions_and_exchanges() {
    let sts = start().await;
    let login = alice_login(&sts);
    let redeemed = orders_grant(&sts, &login).await;
    let access = redeem(&sts, ASSISTANT, &redeemed, &[]).await.token();
    let pending = orders_grant(&sts, &login).await;

    sts.admin_revoke("subject", "alice").await;
    let issuer = sts.url.clone();
    let reply = request_grant(
        &sts,
        ASSISTANT,
        &login,
        &[("audience", &issuer), ("resource", ORDERS_MCP_URL)],
    )
    .await;
    assert_refused(&reply, 400, "invalid_request");
    assert_eq!(
        last_audit(&sts),
        (
            "id_jag_issue".into(),
            "deny".into(),
            "invalid_request:revoked.subject".into()
        )
    );
    let reply = redeem(&sts, ASSISTANT, &pending, &[]).await;
    assert_refused(&reply, 400, "invalid_grant");
    assert_eq!(last_audit(&sts).2, "invalid_grant:revoked.subject");
    let reply = sts
        .exchange_as(ORDERS_MCP, &access, ACCESS_TOKEN, &[("audience", "orders-api")])
        .await;
    assert_refused(&reply, 400, "invalid_request");
    assert_eq!(last_audit(&sts).2, "invalid_request:revoked.subject");
}

#[tokio::test]
async fn revoking_the_session_or_the_agent_stops_grants_and_a_revoked_client_fails_authentication() {
    let sts = start().await;
    let login = alice_login(&sts);
    let grant = orders_grant(&sts, &login).await;
    sts.admin_revoke("session", "alice-sso-1").await;
    assert_refused(&redeem(&sts, ASSISTANT, &grant, &[]).await, 400, "invalid_grant");
    assert_eq!(last_audit(&sts).2, "invalid_grant:revoked.session");

    let sts = start().await;
    let login = alice_login(&sts);
    let grant = orders_grant(&sts, &login).await;
    sts.admin_revoke("agent", "assistant").await;
    let issuer = sts.url.clone();
    let reply = request_grant(
        &sts,
        ASSISTANT,
        &login,
        &[("audience", &issuer), ("resource", ORDERS_MCP_URL)],
    )
    .await;
    assert_refused(&reply, 400, "invalid_request");
    assert_eq!(last_audit(&sts).2, "invalid_request:revoked.agent");
    assert_refused(&redeem(&sts, ASSISTANT, &grant, &[]).await, 400, "invalid_grant");
    assert_eq!(last_audit(&sts).2, "invalid_grant:revoked.agent");

    sts.admin_revoke("client", "assistant").await;
    assert_refused(&redeem(&sts, ASSISTANT, &grant, &[]).await, 401, "invalid_client");
}

#[tokio::test]
async fn a_replayed_grant_is_refused() {
    let sts = start().await;
    let grant = orders_grant(&sts, &alice_login(&sts)).await;
    assert_eq!(redeem(&sts, ASSISTANT, &grant, &[]).await.status, 200);
    let reply = redeem(&sts, ASSISTANT, &grant, &[]).await;
    assert_refused(&reply, 400, "invalid_grant");
    assert_eq!(
        last_audit(&sts),
        (
            "id_jag_redeem".into(),
            "deny".into(),
            "invalid_grant:assertion.replay".into()
        )
    );
}

#[tokio::test]
async fn grants_for_another_server_client_time_or_type_are_refused_and_nothing_is_spent() {
    let sts = start().await;
    let login = alice_login(&sts);

    // A grant addressed to another authorization server.
    let reply = request_grant(
        &sts,
        ASSISTANT,
        &login,
        &[("audience", CRM_AS), ("resource", CRM_MCP_URL)],
    )
    .await;
    assert_eq!(reply.body["expires_in"], 120, "{}", reply.text);
    assert_eq!(reply.claims()["aud"], CRM_AS);
    assert_refused(
        &redeem(&sts, ASSISTANT, &reply.token(), &[]).await,
        400,
        "invalid_grant",
    );
    assert_eq!(last_audit(&sts).2, "invalid_grant:assertion.audience");

    // Another client presenting the assistant's grant; the grant stays usable.
    let grant = orders_grant(&sts, &login).await;
    assert_refused(&redeem(&sts, INTRUDER, &grant, &[]).await, 400, "invalid_grant");
    assert_eq!(last_audit(&sts).2, "invalid_grant:assertion.client_id");

    // A narrower scope may be asked for; a wider one is invalid_scope, nothing spent.
    assert_refused(
        &redeem(&sts, ASSISTANT, &grant, &[("scope", "orders:write")]).await,
        400,
        "invalid_scope",
    );
    let reply = redeem(&sts, ASSISTANT, &grant, &[("scope", "orders:read")]).await;
    assert_eq!(reply.claims()["scope"], "orders:read");

    // Our own access token is not a grant, nor is a plain JWT from the IdP.
    assert_refused(
        &redeem(&sts, ASSISTANT, &reply.token(), &[]).await,
        400,
        "invalid_grant",
    );
    assert_eq!(last_audit(&sts).2, "invalid_grant:assertion.typ");
    assert_refused(&redeem(&sts, ASSISTANT, &login, &[]).await, 400, "invalid_grant");
    assert_eq!(last_audit(&sts).2, "invalid_grant:assertion.typ");

    // An expired grant.
    let grant = orders_grant(&sts, &login).await;
    sts.clock.advance(300 + 30);
    assert_refused(&redeem(&sts, ASSISTANT, &grant, &[]).await, 400, "invalid_grant");
    assert_eq!(last_audit(&sts).2, "invalid_grant:assertion.expired");

    // A grant presented as the subject of an ordinary exchange.
    let grant = orders_grant(&sts, &alice_login(&sts)).await;
    let reply = sts
        .exchange_as(ORDERS_MCP, &grant, ACCESS_TOKEN, &[("audience", "orders-api")])
        .await;
    assert_refused(&reply, 400, "invalid_request");
    assert_eq!(last_audit(&sts).2, "invalid_request:subject_token.typ");
}

/// One refused grant request.
struct Case<'a> {
    name: &'a str,
    client: (&'a str, &'a str),
    extra: Vec<(&'a str, &'a str)>,
    status: u16,
    code: &'a str,
    rule: &'a str,
}

#[tokio::test]
async fn issuing_refuses_unknown_targets_foreign_id_tokens_and_excess_scope() {
    let sts = start().await;
    let login = alice_login(&sts);
    let issuer = sts.url.clone();
    let orders = [("audience", issuer.as_str()), ("resource", ORDERS_MCP_URL)];
    let cases: Vec<Case> = vec![
        Case {
            name: "a client with no authorization servers",
            client: ORDERS_MCP,
            extra: orders.to_vec(),
            status: 400,
            code: "unauthorized_client",
            rule: "client.no_id_jag",
        },
        Case {
            name: "no audience",
            client: ASSISTANT,
            extra: vec![("resource", ORDERS_MCP_URL)],
            status: 400,
            code: "invalid_request",
            rule: "request.missing_parameter",
        },
        Case {
            name: "no resource",
            client: ASSISTANT,
            extra: vec![("audience", issuer.as_str())],
            status: 400,
            code: "invalid_request",
            rule: "request.missing_parameter",
        },
        Case {
            name: "an unknown authorization server",
            client: ASSISTANT,
            extra: vec![("audience", "https://as.unknown.example"), ("resource", ORDERS_MCP_URL)],
            status: 400,
            code: "invalid_target",
            rule: "grant.unknown_audience",
        },
        Case {
            name: "a resource the server does not front",
            client: ASSISTANT,
            extra: vec![("audience", issuer.as_str()), ("resource", CRM_MCP_URL)],
            status: 400,
            code: "invalid_target",
            rule: "grant.unknown_resource",
        },
        Case {
            name: "an authorization server the client may not reach",
            client: INTRUDER,
            extra: vec![("audience", CRM_AS), ("resource", CRM_MCP_URL)],
            status: 400,
            code: "invalid_target",
            rule: "grant.not_allowed",
        },
        Case {
            name: "an ID token issued to another client",
            client: INTRUDER,
            extra: orders.to_vec(),
            status: 400,
            code: "invalid_request",
            rule: "subject_token.audience",
        },
        Case {
            name: "a scope beyond alice's roles",
            client: ASSISTANT,
            extra: vec![
                ("audience", issuer.as_str()),
                ("resource", ORDERS_MCP_URL),
                ("scope", "orders:write"),
            ],
            status: 400,
            code: "invalid_scope",
            rule: "scope.exceeds_grantable",
        },
        Case {
            name: "an actor token",
            client: ASSISTANT,
            extra: vec![
                ("audience", issuer.as_str()),
                ("resource", ORDERS_MCP_URL),
                ("actor_token", login.as_str()),
                ("actor_token_type", ID_TOKEN),
            ],
            status: 400,
            code: "invalid_request",
            rule: "request.actor_token",
        },
    ];
    for Case {
        name,
        client,
        extra,
        status,
        code,
        rule,
    } in cases
    {
        let reply = request_grant(&sts, client, &login, &extra).await;
        assert_eq!((reply.status, reply.error()), (status, code), "{name}: {}", reply.text);
        assert!(reply.body.get("access_token").is_none(), "{name}");
        assert_eq!(last_audit(&sts).2, format!("{code}:{rule}"), "{name}");
    }
}

/// An independent issuer's grant, signed by the IdP, with `overrides` applied.
fn foreign_grant(sts: &TestSts, typ: &str, overrides: Value) -> String {
    let now = sts.clock_now();
    let mut claims = json!({
        "iss": sts.idp.issuer(), "sub": "bob", "aud": sts.url, "client_id": "assistant",
        "jti": uuid::Uuid::new_v4().simple().to_string(), "iat": now, "exp": now + 120,
        "resource": ORDERS_MCP_URL, "scope": "orders:read orders:write",
    });
    if let (Some(map), Some(extra)) = (claims.as_object_mut(), overrides.as_object()) {
        for (k, v) in extra {
            map.insert(k.clone(), v.clone());
        }
    }
    sts.idp.sign(SigningAlgorithm::ES256, Some(typ), &claims).unwrap()
}

#[tokio::test]
async fn a_grant_from_an_independent_issuer_is_redeemed_only_when_that_issuer_is_trusted_for_grants() {
    let sts = start().await;
    let grant = foreign_grant(&sts, "oauth-id-jag+jwt", json!({}));
    assert_refused(&redeem(&sts, ASSISTANT, &grant, &[]).await, 400, "invalid_grant");
    assert_eq!(last_audit(&sts).2, "invalid_grant:assertion.issuer");

    let sts = start_with_issuer("accept_id_jag = true").await;
    let grant = foreign_grant(&sts, "oauth-id-jag+jwt", json!({"act": {"sub": "planner"}}));
    let reply = redeem(&sts, ASSISTANT, &grant, &[]).await;
    let claims = reply.claims();
    assert_eq!(claims["sub"], "bob");
    assert_eq!(claims["scope"], "orders:read orders:write");
    let idp = sts.idp.issuer().to_owned();
    assert_eq!(
        claims["act"],
        json!({"sub": "assistant", "sub_profile": "ai_agent",
               "act": {"sub": "planner", "iss": idp, "sub_profile": "ai_agent"}})
    );
    assert!(claims["sid"].as_str().is_some_and(|s| s.starts_with("derived-")));

    let cases = [
        ("typ", foreign_grant(&sts, "JWT", json!({})), "assertion.typ"),
        (
            "aud as a list of two",
            foreign_grant(
                &sts,
                "oauth-id-jag+jwt",
                json!({"aud": [sts.url, "https://other.example"]}),
            ),
            "assertion.audience",
        ),
        (
            "no iat",
            foreign_grant(&sts, "oauth-id-jag+jwt", json!({"iat": null})),
            "assertion.claims",
        ),
        (
            "no jti",
            foreign_grant(&sts, "oauth-id-jag+jwt", json!({"jti": null})),
            "assertion.claims",
        ),
        (
            "two resources",
            foreign_grant(
                &sts,
                "oauth-id-jag+jwt",
                json!({"resource": [ORDERS_MCP_URL, "https://other.example/mcp"]}),
            ),
            "assertion.resource",
        ),
        (
            "a day to live",
            foreign_grant(&sts, "oauth-id-jag+jwt", json!({"exp": sts.clock_now() + 86_400})),
            "assertion.lifetime",
        ),
    ];
    for (name, grant, rule) in cases {
        let reply = redeem(&sts, ASSISTANT, &grant, &[]).await;
        assert_refused(&reply, 400, "invalid_grant");
        assert_eq!(last_audit(&sts).2, format!("invalid_grant:{rule}"), "{name}");
    }

    // A grant naming an MCP server we do not serve is no grant here (MCP's profile).
    let grant = foreign_grant(
        &sts,
        "oauth-id-jag+jwt",
        json!({"resource": "https://nowhere.example/mcp"}),
    );
    assert_refused(&redeem(&sts, ASSISTANT, &grant, &[]).await, 400, "invalid_grant");
    assert_eq!(last_audit(&sts).2, "invalid_grant:assertion.resource_unknown");
}

#[tokio::test]
async fn the_client_library_obtains_and_redeems_a_grant_once() {
    use mcp_sts_downstream::client::{
        ErrorCode, ExchangeRequest, OAuthErrorCode, StsClient, StsClientConfig, StsError,
    };
    let sts = start().await;
    let mut config = StsClientConfig::new(format!("{}/token", sts.url), ASSISTANT.0, ASSISTANT.1);
    config.cache_capacity = 0;
    let agent = StsClient::new(config).unwrap();

    let ask = ExchangeRequest::id_jag(alice_login(&sts), &sts.url, ORDERS_MCP_URL).scopes(["orders:read"]);
    let grant = agent.exchange_uncached(&ask).await.unwrap();
    assert_eq!(
        (grant.token_type.as_str(), grant.issued_token_type.as_str()),
        ("N_A", ID_JAG)
    );
    assert_eq!(decode_header(grant.access_token.expose())["typ"], "oauth-id-jag+jwt");

    let access = agent.redeem_grant(&grant.access_token, &["orders:read"]).await.unwrap();
    assert_eq!(
        (access.token_type.as_str(), access.issued_token_type.as_str()),
        ("Bearer", "")
    );
    assert_eq!(access.scope.as_deref(), Some("orders:read"));
    assert_eq!(decode_header(access.access_token.expose())["typ"], "at+jwt");

    let again = agent.redeem_grant(&grant.access_token, &[]).await.unwrap_err();
    assert!(
        matches!(
            &again,
            StsError::OAuth {
                status: 400,
                code: OAuthErrorCode::Known(ErrorCode::InvalidGrant),
                ..
            }
        ),
        "{again:?}"
    );
    assert_eq!(last_audit(&sts).2, "invalid_grant:assertion.replay");
}
