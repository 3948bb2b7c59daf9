//! `private_key_jwt` client authentication (RFC 7523 §3) over real HTTP.

use crate::support::sts::*;
use mcp_sts::config::SigningAlgorithm;
use mcp_sts::keys::SigningKey;
use mcp_sts_demo::dev_idp::DevIdp;
use serde_json::{Value, json};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

struct Setup {
    sts: TestSts,
    inline_key: SigningKey,
    remote_keys: DevIdp,
}

async fn setup() -> Setup {
    let (inline_key, _) = SigningKey::generate(SigningAlgorithm::ES256, 0).unwrap();
    let remote_keys = DevIdp::start_local().await.unwrap();
    let inline_jwks = toml::Value::try_from(json!({"keys": [inline_key.public_jwk]})).unwrap();
    let extra = format!(
        "\n[[clients]]\nclient_id = \"jwt-inline\"\naudiences = [\"orders-api\"]\njwks = {inline_jwks}\n\
         \n[[clients]]\nclient_id = \"jwt-remote\"\naudiences = [\"orders-api\"]\njwks_uri = \"{}\"\n",
        remote_keys.jwks_uri()
    );
    let sts = TestSts::start_with(&extra).await;
    Setup {
        sts,
        inline_key,
        remote_keys,
    }
}

fn claims(client: &str, aud: Value, jti: &str) -> Value {
    json!({"iss": client, "sub": client, "aud": aud, "exp": T0 + 60, "iat": T0, "jti": jti})
}

fn sign_inline(setup: &Setup, claims: &Value) -> String {
    let header = json!({"alg": "ES256", "kid": setup.inline_key.kid, "typ": "JWT"});
    setup.inline_key.sign_raw(&header, claims).unwrap()
}

async fn exchange_with(setup: &Setup, assertion: &str, extra: &[(&str, &str)]) -> Reply {
    let sts = &setup.sts;
    let alice = sts.user_token("alice", &["developer"]);
    let mut form = vec![
        ("grant_type", EXCHANGE),
        ("subject_token", alice.as_str()),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", "orders-api"),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", assertion),
    ];
    form.extend_from_slice(extra);
    sts.post_form("/token", None, &form).await
}

#[tokio::test]
async fn valid_assertions_authenticate_once() {
    let setup = setup().await;
    let issuer = setup.sts.url.clone();
    let assertion = sign_inline(&setup, &claims("jwt-inline", json!(issuer), "a-1"));
    let reply = exchange_with(&setup, &assertion, &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.claims()["client_id"], "jwt-inline");
    // Replayed: the jti is single-use.
    exchange_with(&setup, &assertion, &[])
        .await
        .assert_error(401, "invalid_client");
    // The token endpoint URL is an accepted audience too, as a one-element array.
    let to_endpoint = sign_inline(&setup, &claims("jwt-inline", json!([format!("{issuer}/token")]), "a-2"));
    assert_eq!(
        exchange_with(&setup, &to_endpoint, &[("client_id", "jwt-inline")])
            .await
            .status,
        200
    );
    // Keys fetched from a jwks_uri.
    let remote = setup
        .remote_keys
        .sign(
            SigningAlgorithm::RS256,
            None,
            &claims("jwt-remote", json!(issuer), "r-1"),
        )
        .unwrap();
    assert_eq!(exchange_with(&setup, &remote, &[]).await.status, 200);
}

#[tokio::test]
async fn invalid_assertions_are_invalid_client() {
    let setup = setup().await;
    let issuer = setup.sts.url.clone();
    let base = claims("jwt-inline", json!(issuer), "x");
    let variant = |key: &str, value: Value, jti: &str| {
        let mut c = base.clone();
        c["jti"] = json!(jti);
        if value.is_null() {
            c.as_object_mut().unwrap().remove(key);
        } else {
            c[key] = value;
        }
        sign_inline(&setup, &c)
    };
    let cases = vec![
        (
            "aud with another value",
            variant("aud", json!([issuer, "https://other.example.com"]), "b-1"),
        ),
        (
            "aud elsewhere",
            variant("aud", json!("https://other.example.com"), "b-2"),
        ),
        ("sub is not the client", variant("sub", json!("someone"), "b-3")),
        ("expired", variant("exp", json!(T0 - 60), "b-4")),
        ("no exp", variant("exp", Value::Null, "b-5")),
        ("lives too long", variant("exp", json!(T0 + 86_400), "b-6")),
        ("no jti", variant("jti", Value::Null, "b-7")),
        ("unknown client", {
            let mut c = base.clone();
            c["iss"] = json!("ghost");
            c["sub"] = json!("ghost");
            sign_inline(&setup, &c)
        }),
        ("signed by another key", {
            let (other, _) = SigningKey::generate(SigningAlgorithm::ES256, 0).unwrap();
            other
                .sign_raw(&json!({"alg": "ES256", "kid": setup.inline_key.kid}), &base)
                .unwrap()
        }),
    ];
    for (name, assertion) in cases {
        let reply = exchange_with(&setup, &assertion, &[]).await;
        assert_eq!(
            (reply.status, reply.error()),
            (401, "invalid_client"),
            "{name}: {}",
            reply.text
        );
    }
    let good = sign_inline(&setup, &claims("jwt-inline", json!(issuer), "c-1"));
    // A client_id parameter naming someone else.
    exchange_with(&setup, &good, &[("client_id", "orders-mcp")])
        .await
        .assert_error(401, "invalid_client");
    // Two methods at once.
    exchange_with(&setup, &good, &[("client_secret", "x"), ("client_id", "jwt-inline")])
        .await
        .assert_error(400, "invalid_request");
    // The wrong assertion type.
    let sts = &setup.sts;
    let alice = sts.user_token("alice", &["developer"]);
    let form = [
        ("grant_type", EXCHANGE),
        ("subject_token", alice.as_str()),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", "orders-api"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
        ),
        ("client_assertion", good.as_str()),
    ];
    sts.post_form("/token", None, &form)
        .await
        .assert_error(401, "invalid_client");
    // None of the refusals consumed the good assertion.
    assert_eq!(exchange_with(&setup, &good, &[]).await.status, 200);
}

/// A client key as a deployment would keep it: PKCS#8 PEM, with the public half in
/// the client's inline JWKS at mcp-sts.
fn client_key(algorithm: SigningAlgorithm) -> (SigningKey, String) {
    let (key, der) = SigningKey::generate(algorithm, 0).unwrap();
    (key, pem::encode(&pem::Pem::new("PRIVATE KEY", der)))
}

#[tokio::test]
async fn the_exchange_client_authenticates_with_private_key_jwt() {
    use std::sync::Arc;

    use mcp_sts_downstream::client::{
        AssertionKey, ErrorCode, ExchangeRequest, OAuthErrorCode, StsClient, StsClientConfig, StsError,
    };

    let (ec, ec_pem) = client_key(SigningAlgorithm::ES256);
    let (rsa, rsa_pem) = client_key(SigningAlgorithm::RS256);
    let jwks = |key: &SigningKey| toml::Value::try_from(json!({"keys": [key.public_jwk]})).unwrap();
    let extra = format!(
        "\n[[clients]]\nclient_id = \"kit-ec\"\naudiences = [\"orders-api\"]\njwks = {}\n\
         \n[[clients]]\nclient_id = \"kit-rsa\"\naudiences = [\"orders-api\"]\njwks = {}\n",
        jwks(&ec),
        jwks(&rsa)
    );
    let sts = TestSts::start_with(&extra).await;
    let token_endpoint = format!("{}/token", sts.url);
    let client = |id: &str, key: AssertionKey| {
        StsClient::new(StsClientConfig::private_key_jwt(&token_endpoint, id, key))
            .unwrap()
            .with_clock(Arc::new(sts.clock.clone()))
    };
    let request = ExchangeRequest::new(sts.user_token("alice", &["developer"])).audience("orders-api");

    // ES256 with the key's kid; each request signs a fresh assertion (a new jti), so
    // the second uncached exchange is not a replay.
    let ec_key = AssertionKey::from_pem(ec_pem.as_bytes(), Some(ec.kid.clone())).unwrap();
    assert_eq!(ec_key.algorithm(), jsonwebtoken::Algorithm::ES256);
    let kit_ec = client("kit-ec", ec_key.clone());
    for _ in 0..2 {
        let minted = kit_ec.exchange_uncached(&request).await.unwrap();
        let claims = decode_claims(minted.access_token.expose());
        assert_eq!(claims["client_id"], "kit-ec");
    }
    // Addressed to the issuer instead of the token endpoint.
    let to_issuer = client("kit-ec", ec_key.audience(&sts.url));
    assert!(to_issuer.exchange_uncached(&request).await.is_ok());

    // RS256, no kid: the STS tries the client's keys of that type.
    let rsa_key = AssertionKey::from_pem(rsa_pem.as_bytes(), None).unwrap();
    assert_eq!(rsa_key.algorithm(), jsonwebtoken::Algorithm::RS256);
    let minted = client("kit-rsa", rsa_key).exchange_uncached(&request).await.unwrap();
    assert_eq!(decode_claims(minted.access_token.expose())["client_id"], "kit-rsa");

    // Refusals: another client's key, and a clock far ahead (an expired assertion as
    // the STS sees it) are invalid_client; nothing was minted.
    let wrong_key = AssertionKey::from_pem(rsa_pem.as_bytes(), None).unwrap();
    let refused = client("kit-ec", wrong_key)
        .exchange_uncached(&request)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &refused,
            StsError::OAuth {
                status: 401,
                code: OAuthErrorCode::Known(ErrorCode::InvalidClient),
                ..
            }
        ),
        "{refused:?}"
    );
    let stale = StsClient::new(StsClientConfig::private_key_jwt(
        &token_endpoint,
        "kit-ec",
        AssertionKey::from_pem(ec_pem.as_bytes(), None).unwrap(),
    ))
    .unwrap()
    .with_clock(Arc::new(mcp_sts_contract::clock::ManualClock::new(T0 - 3600)));
    let refused = stale.exchange_uncached(&request).await.unwrap_err();
    assert_eq!(
        refused.code(),
        Some(&OAuthErrorCode::Known(ErrorCode::InvalidClient)),
        "{refused:?}"
    );

    // The key is never printed.
    let shown = format!("{:?}", AssertionKey::from_pem(ec_pem.as_bytes(), None).unwrap());
    assert!(
        !shown.contains("PRIVATE") && !shown.contains(&ec_pem[40..80]),
        "{shown}"
    );
    // Not a key at all.
    assert!(matches!(
        AssertionKey::from_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", None),
        Err(StsError::InvalidInput(_))
    ));
}
