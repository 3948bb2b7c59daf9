//! Claims of the wrong type or range, honestly signed by a trusted issuer: times,
//! audiences, issuers, identifiers (one rule for what the exchange and the admin API
//! accept), `act`, `may_act` and roles.

use serde_json::Value;

use super::arena::Arena;
use super::jws::{Position, present};
use crate::support::attack::*;

/// What a case expects.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// This exact refusal, with nothing minted or changed.
    Refused(u16, &'static str),
    /// Refused as `invalid_request`, or a token whose life is within the default TTL
    /// (RFC 7519 allows any JSON number as a date; what matters is no overflow).
    RefusedOrCapped,
}

/// Claims as JSON text with `name` replaced by a raw JSON literal (or removed).
fn with_raw(claims: &Value, name: &str, literal: Option<&str>) -> String {
    let mut map = claims.as_object().unwrap().clone();
    map.remove(name);
    let rest = Value::Object(map).to_string();
    match literal {
        None => rest,
        Some(literal) => {
            let inner = rest.trim_start_matches('{').trim_end_matches('}');
            let sep = if inner.is_empty() { "" } else { "," };
            format!("{{{inner}{sep}\"{name}\":{literal}}}")
        }
    }
}

async fn judge(arena: &Arena, position: Position, token: &str, expect: Expect, extra_scope: Option<&str>) -> Outcome {
    let watch = Watch::take(&arena.sts).await;
    let reply = match (position, extra_scope) {
        (Position::Subject, Some(scope)) => {
            arena
                .sts
                .exchange(token, &[("audience", "orders-api"), ("scope", scope)])
                .await
        }
        _ => present(arena, position, token).await,
    };
    match expect {
        Expect::Refused(status, code) => {
            refused(&reply, status, code)?;
            watch.unchanged(&arena.sts).await
        }
        Expect::RefusedOrCapped => {
            if reply.status != 200 {
                refused(&reply, 400, "invalid_request")?;
                return watch.unchanged(&arena.sts).await;
            }
            let claims = minted(&reply)?;
            let now = arena.now();
            let life = reply.body["expires_in"].as_u64().unwrap_or(u64::MAX);
            if life > 300 || claims["exp"].as_u64().unwrap_or(u64::MAX) > now + 300 {
                return Err(format!("minted a token living {life} s, exp {}", claims["exp"]));
            }
            Ok(())
        }
    }
}

#[tokio::test]
async fn claims_of_the_wrong_type_or_range_are_refused() {
    let arena = Arena::start().await;
    let forge = &arena.forge;
    let now = arena.now();
    let mut verdicts = Verdicts::new("claims");
    let base = forge.claims("mallory", now);
    let bad = Expect::Refused(400, "invalid_request");
    let capped = Expect::RefusedOrCapped;
    let big = u64::MAX;
    let long_sub = "a".repeat(1100);
    let multibyte_sub = "é".repeat(600);

    // (name, claim, raw literal or None to remove, expectation, also as actor)
    let exp_future = (now + 600).to_string();
    let string = |s: &str| Value::String(s.to_owned()).to_string();
    let cases: Vec<(&str, &str, Option<String>, Expect, bool)> = vec![
        // Times.
        ("exp_string", "exp", Some(string(&exp_future)), bad, true),
        ("exp_negative", "exp", Some("-1".into()), bad, true),
        ("exp_null", "exp", Some("null".into()), bad, true),
        ("exp_bool", "exp", Some("true".into()), bad, true),
        ("exp_array", "exp", Some(format!("[{exp_future}]")), bad, true),
        ("exp_object", "exp", Some(format!("{{\"at\":{exp_future}}}")), bad, true),
        ("exp_missing", "exp", None, bad, true),
        ("exp_past", "exp", Some((now - 600).to_string()), bad, true),
        ("exp_zero", "exp", Some("0".into()), bad, true),
        (
            "exp_beyond_u64",
            "exp",
            Some("18446744073709551616".into()),
            capped,
            true,
        ),
        ("exp_u64_max", "exp", Some(big.to_string()), capped, true),
        ("exp_huge_float", "exp", Some("1e30".into()), capped, true),
        ("exp_beyond_f64", "exp", Some("1e400".into()), bad, true),
        ("nbf_string", "nbf", Some(string(&now.to_string())), bad, true),
        ("nbf_negative", "nbf", Some("-1".into()), bad, true),
        ("nbf_future", "nbf", Some((now + 3600).to_string()), bad, true),
        ("nbf_beyond_u64", "nbf", Some("18446744073709551616".into()), bad, true),
        ("nbf_beyond_f64", "nbf", Some("1e400".into()), bad, true),
        ("iat_string", "iat", Some(string(&now.to_string())), bad, true),
        ("iat_negative", "iat", Some("-1".into()), bad, true),
        ("iat_future", "iat", Some((now + 3600).to_string()), bad, true),
        ("iat_beyond_u64", "iat", Some("18446744073709551616".into()), bad, true),
        // Audience.
        ("aud_other", "aud", Some(string("elsewhere")), bad, true),
        ("aud_array_without_us", "aud", Some(r#"["a","b"]"#.into()), bad, true),
        ("aud_object", "aud", Some(r#"{"mcp-sts":true}"#.into()), bad, true),
        ("aud_number", "aud", Some("1".into()), bad, true),
        ("aud_empty_array", "aud", Some("[]".into()), bad, true),
        ("aud_null", "aud", Some("null".into()), bad, true),
        ("aud_missing", "aud", None, bad, true),
        ("aud_uppercase", "aud", Some(string("MCP-STS")), bad, true),
        ("aud_trailing_space", "aud", Some(string("mcp-sts ")), bad, true),
        ("aud_prefix_match", "aud", Some(string("mcp-sts-evil")), bad, true),
        ("aud_nested_array", "aud", Some(r#"[["mcp-sts"]]"#.into()), bad, true),
        (
            "aud_array_of_objects",
            "aud",
            Some(r#"[{"mcp-sts":1}]"#.into()),
            bad,
            true,
        ),
        // Issuer.
        (
            "iss_trailing_slash",
            "iss",
            Some(string(&format!("{}/", forge.url))),
            bad,
            true,
        ),
        (
            "iss_uppercase_scheme",
            "iss",
            Some(string(&forge.url.replacen("http", "HTTP", 1))),
            bad,
            true,
        ),
        (
            "iss_with_path",
            "iss",
            Some(string(&format!("{}/tenant", forge.url))),
            bad,
            true,
        ),
        (
            "iss_leading_space",
            "iss",
            Some(string(&format!(" {}", forge.url))),
            bad,
            true,
        ),
        ("iss_missing", "iss", None, bad, true),
        ("iss_number", "iss", Some("1".into()), bad, true),
        ("iss_array", "iss", Some(format!("[{}]", string(&forge.url))), bad, true),
        (
            "iss_other_trusted_issuer",
            "iss",
            Some(string(arena.sts.idp.issuer())),
            bad,
            true,
        ),
        // The subject (a user, or an agent as actor): 1 to 1024 bytes, no controls, not blank.
        ("sub_missing", "sub", None, bad, true),
        ("sub_null", "sub", Some("null".into()), bad, true),
        ("sub_empty", "sub", Some(string("")), bad, true),
        ("sub_whitespace_only", "sub", Some(string("   ")), bad, true),
        ("sub_over_1024_bytes", "sub", Some(string(&long_sub)), bad, true),
        (
            "sub_600_chars_1200_bytes",
            "sub",
            Some(string(&multibyte_sub)),
            bad,
            true,
        ),
        ("sub_with_nul", "sub", Some(string("alice\u{0}admin")), bad, true),
        ("sub_with_newline", "sub", Some(string("alice\nadmin")), bad, true),
        ("sub_with_delete", "sub", Some(string("alice\u{7f}")), bad, true),
        ("sub_with_c1_control", "sub", Some(string("alice\u{85}")), bad, true),
        ("sub_number", "sub", Some("42".into()), bad, true),
        ("sub_array", "sub", Some(r#"["alice"]"#.into()), bad, true),
        ("sub_object", "sub", Some(r#"{"id":"alice"}"#.into()), bad, true),
        // jti and sid.
        ("jti_number", "jti", Some("7".into()), bad, false),
        ("jti_empty", "jti", Some(string("")), bad, false),
        ("jti_object", "jti", Some("{}".into()), bad, false),
        ("sid_over_1024_bytes", "sid", Some(string(&long_sub)), bad, false),
        ("sid_with_control", "sid", Some(string("sess\u{1b}[2J")), bad, false),
        ("sid_whitespace_only", "sid", Some(string("  ")), bad, false),
        // act (RFC 8693 §4.1) and may_act (§4.4).
        ("act_string", "act", Some(string("agent")), bad, false),
        ("act_empty_object", "act", Some("{}".into()), bad, false),
        ("act_sub_number", "act", Some(r#"{"sub":1}"#.into()), bad, false),
        ("act_array", "act", Some(r#"[{"sub":"agent"}]"#.into()), bad, false),
        (
            "act_inner_malformed",
            "act",
            Some(r#"{"sub":"a","act":"b"}"#.into()),
            bad,
            false,
        ),
        ("act_sub_empty", "act", Some(r#"{"sub":""}"#.into()), bad, false),
        (
            "act_sub_with_control",
            "act",
            Some(r#"{"sub":"agent\u0000x"}"#.into()),
            bad,
            false,
        ),
        (
            "act_chain_too_deep",
            "act",
            Some(r#"{"sub":"a3","act":{"sub":"a2","act":{"sub":"a1"}}}"#.into()),
            bad,
            false,
        ),
        (
            "act_nested_beyond_parser_depth",
            "act",
            Some(format!(
                r#"{}{{"sub":"z"}}{}"#,
                r#"{"sub":"a","act":"#.repeat(200),
                "}".repeat(200)
            )),
            bad,
            false,
        ),
        ("may_act_string", "may_act", Some(string("orders-mcp")), bad, false),
        ("may_act_empty_object", "may_act", Some("{}".into()), bad, false),
        ("may_act_sub_number", "may_act", Some(r#"{"sub":1}"#.into()), bad, false),
        ("may_act_null", "may_act", Some("null".into()), bad, false),
        (
            "may_act_array",
            "may_act",
            Some(r#"[{"sub":"orders-mcp"}]"#.into()),
            bad,
            false,
        ),
        (
            "may_act_other_agent",
            "may_act",
            Some(r#"{"sub":"someone-else"}"#.into()),
            bad,
            false,
        ),
        // Roles: a string is one role (group names contain spaces), never a list.
        (
            "roles_string_with_space_is_one_role",
            "roles",
            Some(string("guest developer")),
            Expect::Refused(400, "invalid_scope"),
            false,
        ),
        (
            "roles_string_with_comma_is_one_role",
            "roles",
            Some(string("guest,developer")),
            Expect::Refused(400, "invalid_scope"),
            false,
        ),
        (
            "roles_nested_array",
            "roles",
            Some(r#"[["developer"]]"#.into()),
            Expect::Refused(400, "invalid_scope"),
            false,
        ),
        (
            "roles_object",
            "roles",
            Some(r#"{"developer":true}"#.into()),
            Expect::Refused(400, "invalid_scope"),
            false,
        ),
    ];
    for (name, claim, literal, expect, as_actor) in &cases {
        let token = forge.sign_text(&forge.header().to_string(), &with_raw(&base, claim, literal.as_deref()));
        let outcome = judge(&arena, Position::Subject, &token, *expect, None).await;
        verdicts.record(format!("subject/{name}"), outcome);
        if *as_actor {
            let outcome = judge(&arena, Position::Actor, &token, *expect, None).await;
            verdicts.record(format!("actor/{name}"), outcome);
        }
    }

    // A two-word role string asking for the admin scope: one unknown role, no scope.
    let two_words = forge.sign_text(
        &forge.header().to_string(),
        &with_raw(&base, "roles", Some(&string("developer order-admin"))),
    );
    verdicts.record(
        "subject/roles_string_never_grants_a_second_role",
        judge(
            &arena,
            Position::Subject,
            &two_words,
            Expect::Refused(400, "invalid_scope"),
            Some("orders:admin"),
        )
        .await,
    );

    // Controls: the base claims are accepted, and a 1024-byte identifier is fine.
    let control = forge.sign(&forge.header(), &base);
    verdicts.record(
        "control/base_claims_are_accepted",
        minted(&arena.obo(&control).await).map(|_| ()),
    );
    let edge = forge.sign_text(
        &forge.header().to_string(),
        &with_raw(&base, "sub", Some(&string(&"b".repeat(1024)))),
    );
    verdicts.record(
        "control/sub_of_1024_bytes_is_accepted",
        minted(&arena.obo(&edge).await).map(|_| ()),
    );
    verdicts.finish();
}
