//! The admin API: its credential, its paths, its input, and one identifier rule
//! shared with the exchange (what one door accepts as a user, the other can revoke).

use reqwest::Method;
use serde_json::{Value, json};

use super::arena::*;
use crate::support::attack::*;
use crate::support::sts::*;

/// Send an admin request with a chosen Authorization header (or none).
async fn admin_call(
    sts: &TestSts,
    method: Method,
    path_and_query: &str,
    authorization: Option<&str>,
    body: Option<String>,
) -> Reply {
    let mut request = sts
        .http
        .request(method, format!("{}/admin/revocations{path_and_query}", sts.url));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body);
    }
    Reply::from(request.send().await.unwrap()).await
}

/// (name, method, path and query, Authorization, body).
type CredentialCase = (&'static str, Method, String, Option<String>, Option<String>);

fn revoke_body(kind: &str, value: &str) -> String {
    json!({"kind": kind, "value": value, "reason": "attack"}).to_string()
}

#[tokio::test]
async fn the_admin_api_holds_against_credential_path_and_input_tricks() {
    let arena = Arena::start().await;
    let sts = &arena.sts;
    let mut verdicts = Verdicts::new("admin");
    sts.admin_revoke("subject", "victim").await;
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let credential_hash = mcp_sts::client_auth::hash_secret(ADMIN_TOKEN);

    // Credentials: every wrong one is 401 invalid_token with a Bearer challenge.
    let wrong: Vec<CredentialCase> = vec![
        ("list_without_credential", Method::GET, String::new(), None, None),
        (
            "list_with_wrong_credential",
            Method::GET,
            String::new(),
            Some("Bearer nope".into()),
            None,
        ),
        (
            "list_with_credential_prefix",
            Method::GET,
            String::new(),
            Some("Bearer test-admin".into()),
            None,
        ),
        (
            "list_with_credential_suffix",
            Method::GET,
            String::new(),
            Some(format!("{bearer}x")),
            None,
        ),
        (
            "list_with_the_stored_hash",
            Method::GET,
            String::new(),
            Some(format!("Bearer {credential_hash}")),
            None,
        ),
        (
            "list_with_lowercase_scheme_wrong_credential",
            Method::GET,
            String::new(),
            Some("bearer nope".into()),
            None,
        ),
        (
            "list_with_basic_scheme",
            Method::GET,
            String::new(),
            Some(basic_header("admin", ADMIN_TOKEN)),
            None,
        ),
        (
            "list_with_credential_but_no_scheme",
            Method::GET,
            String::new(),
            Some(ADMIN_TOKEN.into()),
            None,
        ),
        (
            "list_with_empty_bearer",
            Method::GET,
            String::new(),
            Some("Bearer ".into()),
            None,
        ),
        (
            "list_with_credential_in_query",
            Method::GET,
            format!("?access_token={ADMIN_TOKEN}"),
            None,
            None,
        ),
        (
            "list_with_credential_in_query_as_token",
            Method::GET,
            format!("?token={ADMIN_TOKEN}"),
            None,
            None,
        ),
        (
            "revoke_with_credential_in_body",
            Method::POST,
            String::new(),
            None,
            Some(json!({"kind": "subject", "value": "x", "reason": "r", "access_token": ADMIN_TOKEN}).to_string()),
        ),
        (
            "revoke_without_credential",
            Method::POST,
            String::new(),
            None,
            Some(revoke_body("subject", "mallory")),
        ),
        (
            "revoke_with_wrong_credential",
            Method::POST,
            String::new(),
            Some("Bearer nope".into()),
            Some(revoke_body("subject", "mallory")),
        ),
        (
            "reinstate_without_credential",
            Method::DELETE,
            "/subject/victim".into(),
            None,
            None,
        ),
        (
            "reinstate_with_wrong_credential",
            Method::DELETE,
            "/subject/victim".into(),
            Some("Bearer nope".into()),
            None,
        ),
        (
            "reinstate_with_credential_in_query",
            Method::DELETE,
            format!("/subject/victim?access_token={ADMIN_TOKEN}"),
            None,
            None,
        ),
    ];
    for (name, method, path, authorization, body) in wrong {
        let watch = Watch::take(sts).await;
        let reply = admin_call(sts, method, &path, authorization.as_deref(), body).await;
        let outcome = async {
            refused(&reply, 401, "invalid_token")?;
            let challenge = reply
                .headers
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !challenge.starts_with("Bearer") {
                return Err(format!("challenge {challenge:?}"));
            }
            if reply.text.contains(ADMIN_TOKEN) {
                return Err("the credential is echoed".into());
            }
            watch.unchanged(sts).await
        }
        .await;
        verdicts.record(format!("credential/{name}"), outcome);
    }
    // Scheme names are case-insensitive (RFC 9110 §11.1): still the same credential check.
    verdicts.record("credential/lowercase_scheme_with_the_right_credential", {
        let reply = admin_call(sts, Method::GET, "", Some(&format!("bearer {ADMIN_TOKEN}")), None).await;
        if reply.status == 200 {
            Ok(())
        } else {
            Err(format!("{} {}", reply.status, clip(&reply.text)))
        }
    });

    // Paths: encoded slashes and dots never reach another entry.
    for (name, path) in [
        ("encoded_slash_traversal", "/subject/x%2F..%2Fvictim"),
        ("encoded_dot_dot_into_another_kind", "/agent/%2E%2E%2Fsubject%2Fvictim"),
        ("double_encoded_slash", "/subject/x%252F..%252Fvictim"),
        ("encoded_slash_in_kind", "/subject%2Fvictim/x"),
        ("trailing_slash_value", "/subject/victim%2F"),
        ("value_with_encoded_nul", "/subject/victim%00"),
        ("value_with_encoded_newline", "/subject/victim%0A"),
        ("unknown_kind", "/planet/victim"),
        ("kind_in_upper_case", "/SUBJECT/victim"),
        ("kind_with_trailing_space", "/subject%20/victim"),
    ] {
        let watch = Watch::take(sts).await;
        let reply = admin_call(sts, Method::DELETE, path, Some(&bearer), None).await;
        let outcome = async {
            if reply.status == 200 {
                return Err(format!("reinstated something: {}", reply.text));
            }
            if ![400, 404].contains(&reply.status) {
                return Err(format!("unexpected {} {}", reply.status, clip(&reply.text)));
            }
            if !in_force(sts, "subject", "victim").await {
                return Err("the victim's revocation was lifted".into());
            }
            watch.unchanged(sts).await
        }
        .await;
        verdicts.record(format!("path/{name}"), outcome);
    }
    verdicts.record("path/oversized_value", {
        let reply = admin_call(
            sts,
            Method::DELETE,
            &format!("/subject/{}", "v".repeat(1025)),
            Some(&bearer),
            None,
        )
        .await;
        refused(&reply, 400, "invalid_request")
    });

    // Input: each is 400 invalid_request and nothing is recorded.
    let bad_bodies: Vec<(&str, String)> = vec![
        ("unknown_kind", revoke_body("planet", "x")),
        ("kind_in_upper_case", revoke_body("Subject", "x")),
        (
            "kind_as_number",
            json!({"kind": 1, "value": "x", "reason": "r"}).to_string(),
        ),
        (
            "value_as_number",
            json!({"kind": "subject", "value": 5, "reason": "r"}).to_string(),
        ),
        ("value_missing", json!({"kind": "subject", "reason": "r"}).to_string()),
        ("value_empty", revoke_body("subject", "")),
        ("value_whitespace_only", revoke_body("subject", "   ")),
        ("value_over_1024_bytes", revoke_body("subject", &"v".repeat(1025))),
        ("value_600_chars_1200_bytes", revoke_body("subject", &"é".repeat(600))),
        ("value_with_nul", revoke_body("subject", "a\u{0}b")),
        ("value_with_newline", revoke_body("agent", "a\nb")),
        ("value_with_escape", revoke_body("session", "a\u{1b}[2Jb")),
        ("value_with_delete", revoke_body("client", "a\u{7f}")),
        ("value_with_c1_control", revoke_body("subject", "a\u{85}")),
        (
            "reason_over_1024_bytes",
            json!({"kind": "subject", "value": "x", "reason": "r".repeat(1025)}).to_string(),
        ),
        (
            "unknown_field",
            json!({"kind": "subject", "value": "x", "reason": "r", "expires_at": 1}).to_string(),
        ),
        (
            "duplicate_value_member",
            r#"{"kind":"subject","value":"x","value":"victim2","reason":"r"}"#.into(),
        ),
        (
            "duplicate_kind_member",
            r#"{"kind":"subject","kind":"planet","value":"x","reason":"r"}"#.into(),
        ),
        ("body_not_json", "kind=subject&value=x".into()),
        ("body_json_array", r#"[{"kind":"subject","value":"x"}]"#.into()),
        ("body_empty", String::new()),
    ];
    for (name, body) in bad_bodies {
        let watch = Watch::take(sts).await;
        let reply = admin_call(sts, Method::POST, "", Some(&bearer), Some(body)).await;
        let outcome = match refused(&reply, 400, "invalid_request") {
            Ok(()) => watch.unchanged(sts).await,
            Err(e) => Err(e),
        };
        verdicts.record(format!("input/{name}"), outcome);
    }
    verdicts.record("input/body_over_the_size_limit", {
        let watch = Watch::take(sts).await;
        let body = revoke_body("subject", &"v".repeat(100 * 1024));
        let reply = admin_call(sts, Method::POST, "", Some(&bearer), Some(body)).await;
        match refused(&reply, 413, "invalid_request") {
            Ok(()) => watch.unchanged(sts).await,
            Err(e) => Err(e),
        }
    });

    verdicts.finish();
}

/// One identifier rule at both doors: what the exchange accepts as a user the admin
/// API can revoke, and a `sub` the admin API could never name is refused at the exchange.
#[tokio::test]
async fn the_exchange_and_the_admin_api_share_one_identifier_rule() {
    let arena = Arena::start().await;
    let (sts, forge) = (&arena.sts, &arena.forge);
    let now = arena.now();
    let mut verdicts = Verdicts::new("identifier parity");
    let token_for = |sub: &str| {
        let mut claims = forge.claims("x", now);
        claims["sub"] = Value::String(sub.to_owned());
        forge.sign(&forge.header(), &claims)
    };

    for (name, sub) in [
        ("sub_of_1100_bytes", "u".repeat(1100)),
        ("sub_of_600_chars_1200_bytes", "ü".repeat(600)),
        ("sub_with_control_character", "alice\u{1}".to_owned()),
        ("sub_with_line_break", "alice\r\nx-injected: 1".to_owned()),
        ("sub_whitespace_only", " \t ".to_owned()),
    ] {
        let watch = Watch::take(sts).await;
        let reply = arena.obo(&token_for(&sub)).await;
        let outcome = match refused(&reply, 400, "invalid_request") {
            Ok(()) => watch.unchanged(sts).await,
            Err(e) => Err(format!("{e} (the admin API cannot revoke this sub)")),
        };
        verdicts.record(format!("exchange_refuses/{name}"), outcome);
    }

    for (name, sub) in [
        ("sub_of_1024_bytes", "w".repeat(1024)),
        ("sub_of_256_four_byte_chars", "😀".repeat(256)),
        (
            "sub_with_spaces_and_symbols",
            "CN=Alice Smith, O=Example / #1".to_owned(),
        ),
    ] {
        let token = token_for(&sub);
        let outcome = async {
            minted(&arena.obo(&token).await).map_err(|e| format!("not accepted: {e}"))?;
            let reply = admin_call(
                sts,
                Method::POST,
                "",
                Some(&format!("Bearer {ADMIN_TOKEN}")),
                Some(revoke_body("subject", &sub)),
            )
            .await;
            if reply.status != 201 {
                return Err(format!(
                    "the admin API refused to revoke it: {} {}",
                    reply.status,
                    clip(&reply.text)
                ));
            }
            refused(&arena.obo(&token).await, 400, "invalid_request")
        }
        .await;
        verdicts.record(format!("admin_revokes_what_the_exchange_accepts/{name}"), outcome);
    }
    verdicts.finish();
}
