//! Workloads as actors: JWT-SVIDs from a SPIFFE trust domain whose bundle endpoint the
//! test serves, and Kubernetes service-account tokens from a cluster whose discovery
//! the test serves, through the real router over real HTTP.

use crate::support::sts::{JWT, Options, Reply, TestSts};
use crate::support::workload::{TrustDomain, bundle_of};
use mcp_sts::dev_idp::DevIdp;
use mcp_sts::verify::{SubProfile, Verifier, VerifierConfig};
use serde_json::{Value, json};

const PLANNER: &str = "spiffe://example.org/agents/planner";
const ACCOUNT: &str = "system:serviceaccount:agents:planner";

struct World {
    sts: TestSts,
    domain: TrustDomain,
    other: TrustDomain,
    cluster: DevIdp,
}

async fn world() -> World {
    world_with("").await
}

async fn world_with(extra: &str) -> World {
    let domain = TrustDomain::start("example.org").await;
    let other = TrustDomain::start("other.org").await;
    let cluster = DevIdp::start_local().await.unwrap();
    let toml = format!(
        r#"
{domain}
{other}
[[issuers]]
kind = "kubernetes"
issuer = "{cluster}"

[[workloads]]
pattern = "spiffe://example.org/agents/*"
actor = true

[[workloads]]
pattern = "spiffe://other.org/agents/*"
actor = true

[[workloads]]
pattern = "spiffe://example.org/tools/*"
client = {{ audiences = ["orders-api"] }}

[[workloads]]
pattern = "system:serviceaccount:agents:*"
issuer = "{cluster}"
actor = true
sub_profile = "service"
{extra}
"#,
        domain = domain.issuer_toml(),
        other = other.issuer_toml(),
        cluster = cluster.issuer(),
    );
    let sts = TestSts::start_opts(Options {
        extra_clients: toml,
        admin: true,
        ..Options::default()
    })
    .await;
    World {
        sts,
        domain,
        other,
        cluster,
    }
}

impl World {
    fn alice(&self) -> String {
        self.sts.user_token("alice@example.com", &["developer"])
    }

    fn now(&self) -> u64 {
        self.sts.clock_now()
    }

    fn svid(&self, sub: &str) -> String {
        self.domain.svid(sub, &self.sts.url, self.now(), 300)
    }

    fn service_account_token(&self, sub: &str, aud: &str) -> String {
        let now = self.now();
        let claims = json!({
            "iss": self.cluster.issuer(), "sub": sub, "aud": [aud],
            "iat": now, "nbf": now, "exp": now + 600,
            "kubernetes.io": {"namespace": "agents", "serviceaccount": {"name": "planner", "uid": "u-1"},
                              "pod": {"name": "planner-7d9", "uid": "p-1"}},
        });
        self.cluster
            .sign(mcp_sts::config::SigningAlgorithm::ES256, Some("JWT"), &claims)
            .unwrap()
    }

    async fn exchange_with_actor(&self, subject: &str, actor: &str) -> Reply {
        self.sts
            .exchange(
                subject,
                &[
                    ("audience", "orders-api"),
                    ("actor_token", actor),
                    ("actor_token_type", JWT),
                ],
            )
            .await
    }

    fn allows(&self) -> usize {
        self.sts.allows()
    }

    fn last_denial(&self) -> String {
        self.sts.last_denial()
    }

    /// Refused with `invalid_request` for `rule`, and nothing minted.
    async fn assert_actor_refused(&self, subject: &str, actor: &str, rule: &str) {
        let before = self.allows();
        let reply = self.exchange_with_actor(subject, actor).await;
        reply.assert_error(400, "invalid_request");
        assert_eq!(self.last_denial(), format!("invalid_request:{rule}"));
        assert_eq!(self.allows(), before, "nothing minted");
    }
}

#[tokio::test]
async fn a_jwt_svid_actor_is_named_by_its_spiffe_id_and_trust_domain() {
    let w = world().await;
    let reply = w.exchange_with_actor(&w.alice(), &w.svid(PLANNER)).await;
    let claims = reply.claims();
    assert_eq!(claims["sub"], "alice@example.com");
    assert_eq!(
        claims["act"],
        json!({"sub": PLANNER, "iss": "spiffe://example.org", "sub_profile": "ai_agent"})
    );
    let allowed = w
        .sts
        .audit_events()
        .into_iter()
        .rfind(|e| e["decision"] == "allow")
        .unwrap();
    assert_eq!(allowed["actor_chain"], json!([PLANNER]));
    assert_eq!(w.domain.requests(), 1, "the bundle was fetched once");

    // The verifier's execution identity names the workload and its profile.
    let mut config = VerifierConfig::new(w.sts.url.clone(), "orders-api");
    config.jwks_uri = format!("{}/.well-known/jwks.json", w.sts.url);
    let identity = Verifier::new(config)
        .unwrap()
        .verify_at(&reply.token(), w.now())
        .await
        .unwrap();
    assert_eq!(identity.agent(), Some(PLANNER));
    assert_eq!(identity.agent_profile(), Some(SubProfile::AiAgent));
    assert_eq!(identity.actors()[0].iss.as_deref(), Some("spiffe://example.org"));
}

#[tokio::test]
async fn an_agent_revoked_by_its_spiffe_id_is_refused_everywhere() {
    let w = world().await;
    let minted = w.exchange_with_actor(&w.alice(), &w.svid(PLANNER)).await.token();
    w.sts.admin_revoke("agent", PLANNER).await;
    w.assert_actor_refused(&w.alice(), &w.svid(PLANNER), "revoked.agent")
        .await;
    let introspected = w
        .sts
        .introspect(("orders-api", crate::support::sts::ORDERS_API_SECRET), &minted)
        .await;
    assert_eq!(introspected.body, json!({"active": false}));
    // Another agent of the same trust domain still acts.
    let other = w.svid("spiffe://example.org/agents/reviewer");
    assert_eq!(w.exchange_with_actor(&w.alice(), &other).await.status, 200);
}

#[tokio::test]
async fn a_service_account_token_from_the_cluster_acts_with_its_rule_profile() {
    let w = world().await;
    let token = w.service_account_token(ACCOUNT, &w.sts.url);
    let claims = w.exchange_with_actor(&w.alice(), &token).await.claims();
    assert_eq!(
        claims["act"],
        json!({"sub": ACCOUNT, "iss": w.cluster.issuer(), "sub_profile": "service"})
    );
    w.sts.admin_revoke("agent", ACCOUNT).await;
    w.assert_actor_refused(&w.alice(), &token, "revoked.agent").await;
}

#[tokio::test]
async fn a_service_account_token_that_names_no_service_account_is_refused() {
    let w = world().await;
    let token = w.service_account_token("alice", &w.sts.url);
    w.assert_actor_refused(&w.alice(), &token, "actor_token.claims").await;
    let elsewhere = w.service_account_token("system:serviceaccount:other:planner", &w.sts.url);
    w.assert_actor_refused(&w.alice(), &elsewhere, "actor_token.workload")
        .await;
    let wrong_audience = w.service_account_token(ACCOUNT, "https://kubernetes.default.svc");
    w.assert_actor_refused(&w.alice(), &wrong_audience, "actor_token.audience")
        .await;
}

#[tokio::test]
async fn svids_outside_the_trust_domain_or_for_another_audience_are_refused() {
    let w = world().await;
    let alice = w.alice();
    // A SPIFFE ID of a trust domain nobody configured.
    let foreign = w.svid("spiffe://evil.org/agents/planner");
    w.assert_actor_refused(&alice, &foreign, "actor_token.issuer").await;
    // Malformed SPIFFE IDs name no trust domain at all.
    for bad in [
        "spiffe://example.org/agents/../admin",
        "spiffe://example.org:8443/agents/planner",
        "spiffe://example.org/agents/planner?x=1",
    ] {
        w.assert_actor_refused(&alice, &w.svid(bad), "actor_token.issuer").await;
    }
    // An SVID for another audience.
    let elsewhere = w.domain.svid(PLANNER, "https://other.example", w.now(), 300);
    w.assert_actor_refused(&alice, &elsewhere, "actor_token.audience").await;
    // Matching no rule that lets it act.
    w.assert_actor_refused(&alice, &w.svid("spiffe://example.org/tools/x"), "actor_token.workload")
        .await;
    w.assert_actor_refused(
        &alice,
        &w.svid("spiffe://example.org/agents/a/b"),
        "actor_token.workload",
    )
    .await;
    // Longer-lived than a workload token may be.
    let long = w.domain.svid(PLANNER, &w.sts.url, w.now(), 7_200);
    w.assert_actor_refused(&alice, &long, "actor_token.lifetime").await;
}

#[tokio::test]
async fn keys_count_only_for_the_trust_domain_whose_bundle_serves_them() {
    let w = world().await;
    let alice = w.alice();
    // other.org's key signing an SVID that claims an example.org SPIFFE ID.
    let forged = w.other.svid(PLANNER, &w.sts.url, w.now(), 300);
    w.assert_actor_refused(&alice, &forged, "actor_token.unknown_key").await;
    // example.org's key signing an SVID for other.org.
    let crossed = w
        .domain
        .svid("spiffe://other.org/agents/planner", &w.sts.url, w.now(), 300);
    w.assert_actor_refused(&alice, &crossed, "actor_token.unknown_key")
        .await;
    // The genuine other.org SVID is its own trust domain's actor.
    let genuine = w
        .other
        .svid("spiffe://other.org/agents/planner", &w.sts.url, w.now(), 300);
    let claims = w.exchange_with_actor(&alice, &genuine).await.claims();
    assert_eq!(claims["act"]["iss"], "spiffe://other.org");
}

#[tokio::test]
async fn a_bundle_key_not_marked_for_jwt_svids_is_never_used() {
    let w = world().await;
    let x509 = w.domain.key();
    let jwt = w.domain.rotate(300);
    let mut bundle = bundle_of(&[&x509, &jwt], 300);
    bundle["keys"][0]["use"] = json!("x509-svid");
    w.domain.serve(bundle);
    let header = json!({"alg": "ES256", "kid": x509.kid, "typ": "JWT"});
    let claims = json!({"sub": PLANNER, "aud": [w.sts.url], "iat": w.now(), "exp": w.now() + 300});
    let by_x509_root = x509.sign_raw(&header, &claims).unwrap();
    w.assert_actor_refused(&w.alice(), &by_x509_root, "actor_token.unknown_key")
        .await;
    assert_eq!(w.exchange_with_actor(&w.alice(), &w.svid(PLANNER)).await.status, 200);
}

#[tokio::test]
async fn the_bundle_is_refreshed_by_its_hint_and_a_retired_key_stops_counting() {
    let w = world().await;
    let old = w.svid(PLANNER);
    assert_eq!(w.exchange_with_actor(&w.alice(), &old).await.status, 200);
    // The trust domain rotates; a new SVID's unknown kid makes us refetch at once.
    w.domain.rotate(60);
    let new = w.svid(PLANNER);
    assert_eq!(w.exchange_with_actor(&w.alice(), &new).await.status, 200);
    assert_eq!(w.domain.requests(), 2);
    // The retired key is gone from what we hold.
    w.assert_actor_refused(&w.alice(), &old, "actor_token.unknown_key")
        .await;
    // Past the bundle's refresh hint (60 s, shorter than our TTL) it is read again.
    w.sts.clock.advance(61);
    assert_eq!(w.exchange_with_actor(&w.alice(), &w.svid(PLANNER)).await.status, 200);
    assert_eq!(w.domain.requests(), 3, "refetched once the hint passed");
}

#[tokio::test]
async fn a_workload_token_is_never_a_subject() {
    let w = world().await;
    let before = w.allows();
    let reply = w.sts.exchange(&w.svid(PLANNER), &[("audience", "orders-api")]).await;
    reply.assert_error(400, "invalid_request");
    assert_eq!(w.last_denial(), "invalid_request:subject_token.issuer");
    assert_eq!(w.allows(), before);
}

#[tokio::test]
async fn the_subject_token_cannot_set_any_actor_profile() {
    let w = world_with("").await;
    let spoofing = w.sts.user_token_with(
        "alice@example.com",
        &["developer"],
        json!({"sub_profile": "service", "act_profile": "user",
               "may_act": {"sub": PLANNER, "sub_profile": "service"}}),
    );
    let claims = w.exchange_with_actor(&spoofing, &w.svid(PLANNER)).await.claims();
    assert_eq!(claims["act"]["sub_profile"], "ai_agent");
    // Without an actor token the calling client acts, as a service.
    let spoofing = w.sts.user_token_with(
        "alice@example.com",
        &["developer"],
        json!({"sub_profile": "ai_agent", "act_profile": "user"}),
    );
    let claims = w.sts.exchange(&spoofing, &[("audience", "orders-api")]).await.claims();
    assert_eq!(claims["act"], json!({"sub": "orders-mcp", "sub_profile": "service"}));
    assert!(claims.get("sub_profile").is_none());
}

#[tokio::test]
async fn an_upstream_actor_keeps_the_profile_its_issuer_gave_and_others_are_marked() {
    let w = world().await;
    let subject = w.sts.user_token_with(
        "alice@example.com",
        &["developer"],
        json!({"act": {"sub": "svc-a", "sub_profile": "service", "act": {"sub": "bot-b"}}}),
    );
    let claims = w.exchange_with_actor(&subject, &w.svid(PLANNER)).await.claims();
    let act: &Value = &claims["act"];
    assert_eq!(act["sub_profile"], "ai_agent");
    assert_eq!(act["act"]["sub"], "svc-a");
    assert_eq!(act["act"]["sub_profile"], "service");
    assert_eq!(act["act"]["act"]["sub_profile"], "ai_agent");
    // An OIDC actor token is an AI agent by default.
    let agent = w.sts.agent_token("cursor");
    let claims = w.exchange_with_actor(&w.alice(), &agent).await.claims();
    assert_eq!(claims["act"]["sub_profile"], "ai_agent");
}

const JWT_SPIFFE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-spiffe";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const TOOL: &str = "spiffe://example.org/tools/indexer";

impl World {
    /// An exchange authenticated by a workload credential, no secret.
    async fn exchange_as_workload(&self, assertion_type: &str, assertion: &str, audience: &str) -> Reply {
        let alice = self.alice();
        self.sts
            .post_form(
                "/token",
                None,
                &[
                    ("grant_type", crate::support::sts::EXCHANGE),
                    ("subject_token", &alice),
                    ("subject_token_type", JWT),
                    ("audience", audience),
                    ("client_assertion_type", assertion_type),
                    ("client_assertion", assertion),
                ],
            )
            .await
    }

    /// Refused with 401 `invalid_client` for `rule`, and nothing minted.
    async fn assert_client_refused(&self, assertion_type: &str, assertion: &str, rule: &str) {
        let before = self.allows();
        let reply = self.exchange_as_workload(assertion_type, assertion, "orders-api").await;
        reply.assert_error(401, "invalid_client");
        assert_eq!(self.last_denial(), format!("invalid_client:{rule}"));
        assert_eq!(self.allows(), before, "nothing minted");
    }
}

const ACCOUNT_CLIENT_RULE: &str = r#"
[[workloads]]
pattern = "system:serviceaccount:tools:*"
client = { audiences = ["orders-api"] }
sub_profile = "service"
"#;

#[tokio::test]
async fn a_jwt_svid_authenticates_its_workload_as_a_client_by_pattern() {
    let w = world().await;
    let reply = w.exchange_as_workload(JWT_SPIFFE, &w.svid(TOOL), "orders-api").await;
    let claims = reply.claims();
    assert_eq!(claims["client_id"], TOOL);
    assert_eq!(
        claims["act"],
        json!({"sub": TOOL, "iss": "spiffe://example.org", "sub_profile": "ai_agent"})
    );
    // Reused, as SPIRE reuses SVIDs: no single-use jti.
    let svid = w.svid(TOOL);
    assert_eq!(
        w.exchange_as_workload(JWT_SPIFFE, &svid, "orders-api").await.status,
        200
    );
    assert_eq!(
        w.exchange_as_workload(JWT_SPIFFE, &svid, "orders-api").await.status,
        200
    );
    // Only the rule's audiences.
    let before = w.allows();
    let reply = w.exchange_as_workload(JWT_SPIFFE, &svid, "billing-api").await;
    reply.assert_error(400, "invalid_target");
    assert_eq!(w.allows(), before);
}

#[tokio::test]
async fn workload_clients_outside_their_rules_are_invalid_client() {
    let w = world().await;
    // An agent rule allows acting, not authenticating.
    w.assert_client_refused(JWT_SPIFFE, &w.svid(PLANNER), "client.workload")
        .await;
    // Another audience than this service.
    let elsewhere = w.domain.svid(TOOL, "https://other.example", w.now(), 300);
    w.assert_client_refused(JWT_SPIFFE, &elsewhere, "client.assertion_audience")
        .await;
    // A SPIFFE ID of an unconfigured trust domain.
    let foreign = w.svid("spiffe://evil.org/tools/indexer");
    w.assert_client_refused(JWT_SPIFFE, &foreign, "client.assertion_invalid")
        .await;
    // Signed by another trust domain's key.
    let forged = w.other.svid(TOOL, &w.sts.url, w.now(), 300);
    w.assert_client_refused(JWT_SPIFFE, &forged, "client.assertion_invalid")
        .await;
    // Longer-lived than an hour.
    let long = w.domain.svid(TOOL, &w.sts.url, w.now(), 7_200);
    w.assert_client_refused(JWT_SPIFFE, &long, "client.assertion_lifetime")
        .await;
    // A service-account token declared as an SVID.
    let account = w.service_account_token("system:serviceaccount:tools:indexer", &w.sts.url);
    w.assert_client_refused(JWT_SPIFFE, &account, "client.assertion_type")
        .await;
    // client_id naming someone else.
    let before = w.allows();
    let alice = w.alice();
    let reply = w
        .sts
        .post_form(
            "/token",
            None,
            &[
                ("grant_type", crate::support::sts::EXCHANGE),
                ("subject_token", &alice),
                ("subject_token_type", JWT),
                ("audience", "orders-api"),
                ("client_id", "spiffe://example.org/tools/other"),
                ("client_assertion_type", JWT_SPIFFE),
                ("client_assertion", &w.svid(TOOL)),
            ],
        )
        .await;
    reply.assert_error(401, "invalid_client");
    assert_eq!(w.allows(), before);
}

#[tokio::test]
async fn a_service_account_token_authenticates_with_jwt_bearer_and_can_be_revoked() {
    let w = world_with(ACCOUNT_CLIENT_RULE).await;
    let account = "system:serviceaccount:tools:indexer";
    let token = w.service_account_token(account, &w.sts.url);
    let claims = w.exchange_as_workload(JWT_BEARER, &token, "orders-api").await.claims();
    assert_eq!(claims["client_id"], account);
    assert_eq!(
        claims["act"],
        json!({"sub": account, "iss": w.cluster.issuer(), "sub_profile": "service"})
    );
    // An SVID is not a jwt-bearer credential.
    w.assert_client_refused(JWT_BEARER, &w.svid(TOOL), "client.assertion_invalid")
        .await;
    // Revoked as a client by its account name: 401.
    w.sts.admin_revoke("client", account).await;
    w.assert_client_refused(JWT_BEARER, &token, "client.revoked").await;
}
