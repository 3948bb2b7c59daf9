//! The downstream side against the REAL mcp-sts: the verifier, the exchange client and
//! the `token` CLI, with the service started in-process on 127.0.0.1:0.

use std::process::Command;
use std::time::Duration;

use crate::support::sts::{ORDERS_API_SECRET, ORDERS_MCP_SECRET, Options, TestSts, decode_header};
use mcp_sts::config::SigningAlgorithm;
use mcp_sts::keys::{KeyDir, KeyRing};
use mcp_sts_contract::clock::{Clock, ManualClock, SystemClock};
use mcp_sts_downstream::client::{
    ErrorCode, ExchangeRequest, JWT_TOKEN_TYPE, OAuthErrorCode, StsClient, StsClientConfig, StsError,
};
use mcp_sts_downstream::verify::{DelegationMode, IntrospectionConfig, Verifier, VerifierConfig, VerifyError};

/// A verifier for `audience` at the test STS; optionally checking revocation by introspection.
fn verifier(sts: &TestSts, audience: &str, introspect: bool) -> Verifier {
    let mut config = VerifierConfig::new(&sts.url, audience);
    config.jwks_min_refresh_interval = Duration::ZERO;
    if introspect {
        let mut introspection =
            IntrospectionConfig::new(format!("{}/introspect", sts.url), "orders-api", ORDERS_API_SECRET);
        introspection.cache_ttl = Duration::ZERO;
        config.introspection = Some(introspection);
    }
    Verifier::new(config).unwrap()
}

/// alice's token for orders-api, with claude-desktop as the acting agent.
async fn orders_token(sts: &TestSts) -> String {
    let subject = sts.user_token("alice@example.com", &["developer"]);
    let agent = sts.user_token("claude-desktop", &[]);
    let reply = sts
        .exchange(
            &subject,
            &[
                ("audience", "orders-api"),
                ("actor_token", &agent),
                ("actor_token_type", JWT_TOKEN_TYPE),
            ],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.token()
}

#[tokio::test]
async fn verifier_accepts_a_token_minted_by_the_real_service() {
    let sts = TestSts::start().await;
    let token = orders_token(&sts).await;
    let identity = verifier(&sts, "orders-api", true)
        .verify_at(&token, sts.clock_now())
        .await
        .unwrap();
    assert_eq!(identity.user(), "alice@example.com");
    assert_eq!(identity.agent(), Some("claude-desktop"));
    assert_eq!(identity.client_id(), "orders-mcp");
    assert_eq!(identity.delegation_mode(), DelegationMode::OnBehalfOf);
    assert_eq!(identity.audience(), "orders-api");
    assert_eq!(identity.issuer(), sts.url);
    assert!(identity.has_scope("orders:read"));
    assert!(!identity.has_scope("orders:write"));
    assert_eq!(
        identity.describe(),
        "alice@example.com via agent claude-desktop (orders-mcp)"
    );
}

#[tokio::test]
async fn rotation_while_verifying_keeps_old_tokens_and_accepts_new_ones() {
    let sts = TestSts::start().await;
    let verifier = verifier(&sts, "orders-api", false);
    let old = orders_token(&sts).await;
    verifier.verify_at(&old, sts.clock_now()).await.unwrap();

    // Rotate as the server's reloader would: a new key in the directory, the ring reloaded.
    sts.clock.advance(10);
    let dir = KeyDir::new(&sts.keys_dir);
    dir.generate(SigningAlgorithm::ES256, sts.clock_now()).unwrap();
    let grace = mcp_sts::server::publish_grace(sts.sts.config());
    let ring = KeyRing::new(dir.load().unwrap(), SigningAlgorithm::ES256, grace).unwrap();
    sts.sts.keys().replace(ring);

    let new = orders_token(&sts).await;
    assert_ne!(
        decode_header(&new)["kid"],
        decode_header(&old)["kid"],
        "the new key signs"
    );
    let now = sts.clock_now();
    assert_eq!(verifier.verify_at(&new, now).await.unwrap().user(), "alice@example.com");
    assert_eq!(verifier.verify_at(&old, now).await.unwrap().user(), "alice@example.com");
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let sts = TestSts::start().await;
    let token = orders_token(&sts).await;
    let error = verifier(&sts, "inventory-api", false)
        .verify_at(&token, sts.clock_now())
        .await
        .unwrap_err();
    assert_eq!(error, VerifyError::WrongAudience);
}

#[tokio::test]
async fn a_service_accepts_its_audience_id_and_its_resource_uri() {
    let sts = TestSts::start().await;
    let subject = sts.user_token("alice@example.com", &["developer"]);
    let by_id = sts.exchange(&subject, &[("audience", "orders-api")]).await.token();
    let resource = "https://orders.example.com/api";
    let by_resource = sts.exchange(&subject, &[("resource", resource)]).await.token();
    let now = sts.clock_now();

    let both = Verifier::new(VerifierConfig::new(&sts.url, "orders-api").also_accept(resource)).unwrap();
    let identity = both.verify_at(&by_id, now).await.unwrap();
    assert_eq!(identity.audience(), "orders-api");
    let identity = both.verify_at(&by_resource, now).await.unwrap();
    assert_eq!(identity.audience(), resource, "the audience that matched is reported");
    assert_eq!(identity.user(), "alice@example.com");

    // A verifier that knows only the id refuses the token asked for by resource.
    let id_only = Verifier::new(VerifierConfig::new(&sts.url, "orders-api")).unwrap();
    assert_eq!(
        id_only.verify_at(&by_resource, now).await.unwrap_err(),
        VerifyError::WrongAudience
    );
    // An empty audience in the set is a configuration error, not an open door.
    let empty = Verifier::new(VerifierConfig::new(&sts.url, "orders-api").also_accept(""));
    assert!(matches!(empty, Err(VerifyError::Config(_))), "{empty:?}");
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let sts = TestSts::start().await;
    let token = orders_token(&sts).await;
    let verifier = verifier(&sts, "orders-api", false);
    let later = sts.clock_now() + 300 + 31;
    assert_eq!(
        verifier.verify_at(&token, later).await.unwrap_err(),
        VerifyError::Expired
    );
}

#[tokio::test]
async fn a_revoked_token_is_refused_through_introspection() {
    let sts = TestSts::start().await;
    let token = orders_token(&sts).await;
    let verifier = verifier(&sts, "orders-api", true);
    verifier.verify_at(&token, sts.clock_now()).await.unwrap();

    let reply = sts
        .post_form("/revoke", Some(("orders-mcp", ORDERS_MCP_SECRET)), &[("token", &token)])
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);

    let error = verifier.verify_at(&token, sts.clock_now()).await.unwrap_err();
    assert_eq!(error, VerifyError::Revoked);
    // Without introspection the signature alone still passes: short TTLs bound that.
    let plain = self::verifier(&sts, "orders-api", false);
    assert!(plain.verify_at(&token, sts.clock_now()).await.is_ok());
}

fn client(sts: &TestSts, secret: &str) -> StsClient {
    StsClient::new(StsClientConfig::new(format!("{}/token", sts.url), "orders-mcp", secret)).unwrap()
}

fn oauth_code(error: &StsError) -> (u16, OAuthErrorCode) {
    match error {
        StsError::OAuth { status, code, .. } => (*status, code.clone()),
        other => panic!("expected an OAuth error, got {other:?}"),
    }
}

#[tokio::test]
async fn sts_client_against_the_real_token_endpoint() {
    let sts = TestSts::start().await;
    let subject = sts.user_token("alice@example.com", &["developer"]);
    let good = client(&sts, ORDERS_MCP_SECRET);

    let minted = good
        .exchange(
            &ExchangeRequest::new(subject.as_str())
                .audience("orders-api")
                .scopes(["orders:read"]),
        )
        .await
        .unwrap();
    assert_eq!(minted.scope.as_deref(), Some("orders:read"));
    assert_eq!(minted.token_type, "Bearer");
    let identity = verifier(&sts, "orders-api", false)
        .verify_at(minted.access_token.expose(), sts.clock_now())
        .await
        .unwrap();
    assert_eq!(identity.user(), "alice@example.com");

    let unknown = ExchangeRequest::new(subject.as_str()).audience("payroll-api");
    let error = good.exchange(&unknown).await.unwrap_err();
    assert_eq!(
        oauth_code(&error),
        (400, OAuthErrorCode::Known(ErrorCode::InvalidTarget))
    );

    let too_much = ExchangeRequest::new(subject.as_str())
        .audience("orders-api")
        .scopes(["orders:write"]);
    let error = good.exchange(&too_much).await.unwrap_err();
    assert_eq!(
        oauth_code(&error),
        (400, OAuthErrorCode::Known(ErrorCode::InvalidScope))
    );

    let wrong_secret = client(&sts, "not-the-secret");
    let request = ExchangeRequest::new(subject.as_str()).audience("orders-api");
    let error = wrong_secret.exchange(&request).await.unwrap_err();
    assert_eq!(
        oauth_code(&error),
        (401, OAuthErrorCode::Known(ErrorCode::InvalidClient))
    );
    assert!(!error.is_retryable());
}

/// A service whose clock is the real one, so the binary (which reads the system
/// clock) sees its tokens as current.
async fn sts_on_system_time() -> TestSts {
    TestSts::start_opts(Options {
        clock: Some(ManualClock::new(SystemClock.now())),
        ..Options::default()
    })
    .await
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mcp-sts"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_verify_cli_prints_the_identity_or_fails_with_exit_code_1() {
    let sts = sts_on_system_time().await;
    let token = orders_token(&sts).await;
    let jwks = format!("{}/.well-known/jwks.json", sts.url);
    let run = |audiences: &'static [&'static str]| {
        let (token, jwks, issuer) = (token.clone(), jwks.clone(), sts.url.clone());
        tokio::task::spawn_blocking(move || {
            let mut command = bin();
            command.args(["token", "verify", &token, "--jwks-uri", &jwks, "--issuer", &issuer]);
            for audience in audiences {
                command.args(["--audience", audience]);
            }
            command.output().unwrap()
        })
    };

    let ok = run(&["orders-api"]).await.unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let identity: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(identity["user"]["sub"], "alice@example.com");
    assert_eq!(identity["delegation_mode"], "on_behalf_of");
    assert_eq!(identity["actors"][0]["sub"], "claude-desktop");
    // Times a person reads are RFC 3339, issued_at like expires_at.
    let rfc3339 = |v: &serde_json::Value| {
        v.as_str()
            .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok() && s.ends_with('Z'))
    };
    assert!(rfc3339(&identity["issued_at"]), "{identity}");
    assert!(rfc3339(&identity["expires_at"]), "{identity}");

    // --audience repeats: a service accepting its id and its resource URI.
    let either = run(&["https://orders.example.com/api", "orders-api"]).await.unwrap();
    assert!(either.status.success(), "{}", String::from_utf8_lossy(&either.stderr));
    let identity: serde_json::Value = serde_json::from_slice(&either.stdout).unwrap();
    assert_eq!(identity["audience"], "orders-api");

    let refused = run(&["inventory-api"]).await.unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(refused.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("audience"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_exchange_cli_prints_the_json_answer() {
    let sts = sts_on_system_time().await;
    let subject = sts.user_token("alice@example.com", &["developer"]);
    let run = |audience: &'static str| {
        let (subject, url) = (subject.clone(), sts.url.clone());
        tokio::task::spawn_blocking(move || {
            bin()
                .env("DEMO_CLIENT_SECRET", ORDERS_MCP_SECRET)
                .args(["token", "exchange", "--sts", &url, "--client-id", "orders-mcp"])
                .args(["--client-secret-env", "DEMO_CLIENT_SECRET", "--subject-token", &subject])
                .args(["--audience", audience, "--scope", "orders:read"])
                .output()
                .unwrap()
        })
    };

    let ok = run("orders-api").await.unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(answer["scope"], "orders:read");
    assert_eq!(
        answer["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    let minted = answer["access_token"].as_str().unwrap();
    let identity = verifier(&sts, "orders-api", false)
        .verify_at(minted, sts.clock_now())
        .await
        .unwrap();
    assert_eq!(identity.user(), "alice@example.com");

    let refused = run("payroll-api").await.unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let answer: serde_json::Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(answer["error"], "invalid_target");
}
