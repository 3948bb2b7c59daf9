//! `private_key_jwt` client authentication (RFC 7523 §3) over real HTTP.

mod support;

use mcp_sts::config::SigningAlgorithm;
use mcp_sts::dev_idp::DevIdp;
use mcp_sts::keys::SigningKey;
use serde_json::{Value, json};
use support::sts::*;

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
