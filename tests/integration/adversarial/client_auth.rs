//! Client authentication: secrets (Basic and post), `private_key_jwt` assertions
//! (RFC 7523 §3) and mixtures. Every failure is 401 `invalid_client` with a
//! challenge; two methods at once is `invalid_request`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mcp_sts::config::SigningAlgorithm;
use serde_json::{Value, json};

use super::arena::*;
use crate::support::attack::*;
use crate::support::sts::*;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// (name, Authorization, extra form fields, status, error code).
type SecretCase = (
    &'static str,
    Option<String>,
    Vec<(&'static str, &'static str)>,
    u16,
    &'static str,
);
/// (name, assertion, extra form fields).
type AssertionCase = (&'static str, String, Vec<(&'static str, &'static str)>);

fn basic_raw(text: &str) -> String {
    format!("Basic {}", STANDARD.encode(text))
}

/// An exchange for `orders-api` with the given Authorization header and extra form fields.
async fn attempt(arena: &Arena, authorization: Option<&str>, extra: &[(&str, &str)]) -> Reply {
    let alice = arena.user("alice", &["developer"]);
    let mut pairs = vec![
        ("grant_type", EXCHANGE),
        ("subject_token", alice.as_str()),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", "orders-api"),
    ];
    pairs.extend_from_slice(extra);
    let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
    if let Some(value) = authorization {
        headers.push(("authorization", value));
    }
    post_raw(&arena.sts, "/token", &headers, form(&pairs)).await
}

async fn with_assertion(arena: &Arena, assertion: &str, extra: &[(&str, &str)]) -> Reply {
    let mut pairs = vec![("client_assertion_type", JWT_BEARER), ("client_assertion", assertion)];
    pairs.extend_from_slice(extra);
    attempt(arena, None, &pairs).await
}

#[tokio::test]
async fn client_authentication_cannot_be_tricked() {
    let arena = Arena::start().await;
    let sts = &arena.sts;
    let now = arena.now();
    let mut verdicts = Verdicts::new("client authentication");
    let issuer = sts.url.clone();
    let endpoint = format!("{issuer}/token");
    let secret_hash = mcp_sts::client_auth::hash_secret(ORDERS_MCP_SECRET);

    // Secrets.
    let good_basic = basic_header("orders-mcp", ORDERS_MCP_SECRET);
    let secret_cases: Vec<SecretCase> = vec![
        (
            "basic_wrong_secret",
            Some(basic_header("orders-mcp", "wrong")),
            vec![],
            401,
            "invalid_client",
        ),
        (
            "basic_unknown_client",
            Some(basic_header("ghost", ORDERS_MCP_SECRET)),
            vec![],
            401,
            "invalid_client",
        ),
        (
            "basic_empty_secret",
            Some(basic_header("orders-mcp", "")),
            vec![],
            401,
            "invalid_client",
        ),
        (
            "basic_client_id_in_other_case",
            Some(basic_header("Orders-MCP", ORDERS_MCP_SECRET)),
            vec![],
            401,
            "invalid_client",
        ),
        (
            "basic_secret_with_trailing_newline",
            Some(basic_header("orders-mcp", &format!("{ORDERS_MCP_SECRET}\n"))),
            vec![],
            401,
            "invalid_client",
        ),
        (
            "basic_secret_hash_as_secret",
            Some(basic_header("orders-mcp", &secret_hash)),
            vec![],
            401,
            "invalid_client",
        ),
        (
            "basic_secret_with_unencoded_colon",
            Some(basic_raw(&format!("orders-mcp:{ORDERS_MCP_SECRET}:x"))),
            vec![],
            401,
            "invalid_client",
        ),
        (
            "basic_client_id_with_unencoded_colon",
            Some(basic_raw(&format!("orders:mcp:{ORDERS_MCP_SECRET}"))),
            vec![],
            401,
            "invalid_client",
        ),
        (
            "basic_not_base64",
            Some("Basic !!!not-base64!!!".into()),
            vec![],
            401,
            "invalid_client",
        ),
        (
            "basic_without_colon",
            Some(basic_raw("orders-mcp")),
            vec![],
            401,
            "invalid_client",
        ),
        ("basic_empty", Some("Basic ".into()), vec![], 401, "invalid_client"),
        (
            "basic_bad_percent_encoding",
            Some(basic_raw("orders-mcp:%ZZ")),
            vec![],
            401,
            "invalid_client",
        ),
        (
            "bearer_scheme_with_the_secret",
            Some(format!("Bearer {ORDERS_MCP_SECRET}")),
            vec![],
            401,
            "invalid_client",
        ),
        ("no_credentials_at_all", None, vec![], 401, "invalid_client"),
        (
            "no_credentials_only_a_client_id",
            None,
            vec![("client_id", "orders-mcp")],
            401,
            "invalid_client",
        ),
        (
            "post_wrong_secret",
            None,
            vec![("client_id", "orders-mcp"), ("client_secret", "wrong")],
            401,
            "invalid_client",
        ),
        (
            "post_unknown_client",
            None,
            vec![("client_id", "ghost"), ("client_secret", "x")],
            401,
            "invalid_client",
        ),
        (
            "post_secret_without_client_id",
            None,
            vec![("client_secret", ORDERS_MCP_SECRET)],
            401,
            "invalid_client",
        ),
        (
            "basic_with_client_id_naming_another_client",
            Some(good_basic.clone()),
            vec![("client_id", "orders-api")],
            401,
            "invalid_client",
        ),
        (
            "basic_and_post_secret_at_once",
            Some(good_basic.clone()),
            vec![("client_id", "orders-mcp"), ("client_secret", ORDERS_MCP_SECRET)],
            400,
            "invalid_request",
        ),
        (
            "jwt_client_presenting_a_secret",
            None,
            vec![("client_id", "jwt-inline"), ("client_secret", "")],
            401,
            "invalid_client",
        ),
        (
            "jwt_client_presenting_a_made_up_secret",
            None,
            vec![("client_id", "jwt-inline"), ("client_secret", "guess")],
            401,
            "invalid_client",
        ),
        (
            "client_without_audiences_may_not_exchange",
            Some(basic_header("watcher", WATCHER_SECRET)),
            vec![],
            400,
            "unauthorized_client",
        ),
    ];
    for (name, authorization, extra, status, code) in secret_cases {
        let watch = Watch::take(sts).await;
        let reply = attempt(&arena, authorization.as_deref(), &extra).await;
        let outcome = match refused(&reply, status, code) {
            Ok(()) => watch.unchanged(sts).await,
            Err(e) => Err(e),
        };
        verdicts.record(name, outcome);
    }

    // Assertions.
    let key = &arena.client_key;
    let claims = |jti: &str| json!({"iss": "jwt-inline", "sub": "jwt-inline", "aud": issuer, "exp": now + 60, "iat": now, "jti": jti});
    let sign = |c: &Value| {
        key.sign_raw(&json!({"alg": "ES256", "kid": key.kid, "typ": "JWT"}), c)
            .unwrap()
    };
    let variant = |jti: &str, field: &str, value: Value| {
        let mut c = claims(jti);
        if value.is_null() {
            c.as_object_mut().unwrap().remove(field);
        } else {
            c[field] = value;
        }
        sign(&c)
    };
    let pem = public_pem(&p256_spki_der(&key.public_jwk));
    let remote_signed = arena
        .remote_keys
        .sign(SigningAlgorithm::ES256, None, &claims("x-remote-key"))
        .unwrap();
    let ring = sts.sts.keys().current();
    let own = ring.signing_key(now).clone();
    let (h, p, _) = segments(&sign(&claims("x-none")));
    let user_token = arena.user("jwt-inline", &[]);
    let minted_token = arena.obo(&arena.user("sam", &["developer"])).await.token();
    let mut padded = claims("x-big");
    padded["pad"] = json!("x".repeat(17_000));

    let assertion_cases: Vec<AssertionCase> = vec![
        (
            "aud_array_with_an_extra_value",
            variant("x-1", "aud", json!([issuer, "https://other.example"])),
            vec![],
        ),
        (
            "aud_another_url",
            variant("x-2", "aud", json!("https://other.example/token")),
            vec![],
        ),
        (
            "aud_token_endpoint_with_trailing_slash",
            variant("x-3", "aud", json!(format!("{endpoint}/"))),
            vec![],
        ),
        (
            "aud_issuer_with_trailing_slash",
            variant("x-4", "aud", json!(format!("{issuer}/"))),
            vec![],
        ),
        ("aud_missing", variant("x-5", "aud", Value::Null), vec![]),
        ("aud_object", variant("x-6", "aud", json!({"aud": issuer})), vec![]),
        ("exp_missing", variant("x-7", "exp", Value::Null), vec![]),
        (
            "exp_far_in_the_future",
            variant("x-8", "exp", json!(now + 86_400)),
            vec![],
        ),
        ("exp_in_the_past", variant("x-9", "exp", json!(now - 120)), vec![]),
        (
            "exp_as_string",
            variant("x-10", "exp", json!((now + 60).to_string())),
            vec![],
        ),
        ("nbf_in_the_future", variant("x-11", "nbf", json!(now + 3600)), vec![]),
        ("iat_in_the_future", variant("x-12", "iat", json!(now + 3600)), vec![]),
        ("jti_missing", variant("x-13", "jti", Value::Null), vec![]),
        ("jti_empty", variant("", "jti", json!("")), vec![]),
        (
            "iss_differs_from_sub",
            variant("x-14", "sub", json!("jwt-remote")),
            vec![],
        ),
        ("sub_missing", variant("x-15", "sub", Value::Null), vec![]),
        (
            "iss_and_sub_name_a_secret_client",
            {
                let mut c = claims("x-16");
                c["iss"] = json!("orders-mcp");
                c["sub"] = json!("orders-mcp");
                sign(&c)
            },
            vec![],
        ),
        (
            "iss_and_sub_name_an_unknown_client",
            {
                let mut c = claims("x-17");
                c["iss"] = json!("ghost");
                c["sub"] = json!("ghost");
                sign(&c)
            },
            vec![],
        ),
        (
            "hs256_keyed_with_the_clients_public_key",
            hmac_token(
                "HS256",
                &json!({"alg": "HS256", "kid": key.kid}),
                &claims("x-18"),
                pem.as_bytes(),
            ),
            vec![],
        ),
        ("alg_none", format!("{}.{p}.", b64(br#"{"alg":"none"}"#)), vec![]),
        ("signature_stripped", format!("{h}.{p}."), vec![]),
        ("signed_by_another_clients_key", remote_signed, vec![]),
        (
            "signed_by_another_key_under_the_clients_kid",
            {
                let (other, _) = mcp_sts::keys::SigningKey::generate(SigningAlgorithm::ES256, 0).unwrap();
                other
                    .sign_raw(&json!({"alg": "ES256", "kid": key.kid}), &claims("x-19"))
                    .unwrap()
            },
            vec![],
        ),
        (
            "signed_by_the_sts_own_key",
            own.sign_raw(&json!({"alg": "ES256", "kid": own.kid}), &claims("x-20"))
                .unwrap(),
            vec![],
        ),
        (
            "signed_by_the_user_idp",
            sts.idp.sign(SigningAlgorithm::ES256, None, &claims("x-21")).unwrap(),
            vec![],
        ),
        (
            "crit_header",
            key.sign_raw(
                &json!({"alg": "ES256", "kid": key.kid, "crit": ["exp"], "exp": 1}),
                &claims("x-22"),
            )
            .unwrap(),
            vec![],
        ),
        (
            "jwe",
            "eyJhbGciOiJkaXIiLCJlbmMiOiJBMTI4R0NNIn0..AAAA.BBBB.CCCC".into(),
            vec![],
        ),
        ("oversized", sign(&padded), vec![]),
        (
            "client_id_parameter_naming_another_client",
            sign(&claims("x-23")),
            vec![("client_id", "jwt-remote")],
        ),
        ("a_user_token_as_assertion", user_token, vec![]),
        ("a_minted_token_as_assertion", minted_token, vec![]),
        (
            "wrong_assertion_type",
            sign(&claims("x-24")),
            vec![(
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
            )],
        ),
    ];
    for (name, assertion, extra) in assertion_cases {
        let watch = Watch::take(sts).await;
        let reply = if extra.iter().any(|(k, _)| *k == "client_assertion_type") {
            let mut pairs = vec![("client_assertion", assertion.as_str())];
            pairs.extend_from_slice(&extra);
            attempt(&arena, None, &pairs).await
        } else {
            with_assertion(&arena, &assertion, &extra).await
        };
        let outcome = match refused(&reply, 401, "invalid_client") {
            Ok(()) => watch.unchanged(sts).await,
            Err(e) => Err(e),
        };
        verdicts.record(format!("assertion/{name}"), outcome);
    }
    verdicts.record("assertion/type_without_assertion", {
        refused(
            &attempt(&arena, None, &[("client_assertion_type", JWT_BEARER)]).await,
            401,
            "invalid_client",
        )
    });
    verdicts.record("assertion/assertion_without_type", {
        refused(
            &attempt(&arena, None, &[("client_assertion", &sign(&claims("x-25")))]).await,
            401,
            "invalid_client",
        )
    });
    for (name, extra) in [
        ("assertion/and_basic_secret_at_once", Some(good_basic.as_str())),
        ("assertion/and_post_secret_at_once", None),
    ] {
        let assertion = sign(&claims(&format!("x-{name}")));
        let mut pairs = vec![
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion.as_str()),
        ];
        if extra.is_none() {
            pairs.extend([("client_id", "orders-mcp"), ("client_secret", ORDERS_MCP_SECRET)]);
        }
        verdicts.record(
            name,
            refused(&attempt(&arena, extra, &pairs).await, 400, "invalid_request"),
        );
    }

    // Single use: a replay fails, whichever accepted audience it names the second time.
    let once = sign(&claims("r-1"));
    verdicts.record(
        "control/assertion_is_accepted_once",
        minted(&with_assertion(&arena, &once, &[]).await).map(|_| ()),
    );
    verdicts.record("assertion/replayed", {
        let watch = Watch::take(sts).await;
        match refused(&with_assertion(&arena, &once, &[]).await, 401, "invalid_client") {
            Ok(()) => watch.unchanged(sts).await,
            Err(e) => Err(e),
        }
    });
    verdicts.record("assertion/replayed_with_the_token_endpoint_as_audience", {
        let again = variant("r-1", "aud", json!(endpoint));
        refused(&with_assertion(&arena, &again, &[]).await, 401, "invalid_client")
    });
    verdicts.finish();
}
