//! JWS header and crypto tricks, each tried as the subject token and as the actor
//! token: every one must be `invalid_request` with nothing minted.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use mcp_sts::config::SigningAlgorithm;
use mcp_sts::keys::SigningKey;
use mcp_sts_demo::dev_idp::b64_json;
use serde_json::{Value, json};

use super::arena::Arena;
use crate::support::attack::*;
use crate::support::sts::*;

/// Where a forged token is presented.
#[derive(Debug, Clone, Copy)]
pub enum Position {
    Subject,
    Actor,
}

impl Position {
    pub fn name(self) -> &'static str {
        match self {
            Position::Subject => "subject",
            Position::Actor => "actor",
        }
    }
}

/// Present `token` in `position` for `orders-api`, by `orders-mcp`.
pub async fn present(arena: &Arena, position: Position, token: &str) -> Reply {
    match position {
        Position::Subject => arena.obo(token).await,
        Position::Actor => {
            let subject = arena.user("alice", &["developer"]);
            arena
                .exchange(super::arena::ORDERS_MCP, &subject, "orders-api", Some(token))
                .await
        }
    }
}

/// Present every token in both positions; each must be refused with nothing minted.
pub async fn expect_all_refused(arena: &Arena, verdicts: &mut Verdicts, tokens: &[(String, String)]) {
    for (name, token) in tokens {
        for position in [Position::Subject, Position::Actor] {
            let watch = Watch::take(&arena.sts).await;
            let reply = present(arena, position, token).await;
            let outcome = match refused(&reply, 400, "invalid_request") {
                Ok(()) => watch.unchanged(&arena.sts).await,
                Err(e) => Err(e),
            };
            verdicts.record(format!("{}/{name}", position.name()), outcome);
        }
    }
}

fn raw_point(jwk: &Value) -> Vec<u8> {
    let mut point = vec![0x04];
    for c in ["x", "y"] {
        point.extend(URL_SAFE_NO_PAD.decode(jwk[c].as_str().unwrap()).unwrap());
    }
    point
}

/// A header whose base64url form holds `-` or `_`, re-encoded with `+` and `/`.
fn standard_alphabet(segment_json: &Value) -> Option<String> {
    for pad in ["", "~", "~~", "~~~", "?>", "?>?"] {
        let mut value = segment_json.clone();
        value["x"] = json!(format!("{pad}~~~??>>"));
        let encoded = b64_json(&value);
        if encoded.contains('-') || encoded.contains('_') {
            return Some(encoded.replace('-', "+").replace('_', "/"));
        }
    }
    None
}

#[tokio::test]
async fn jws_header_and_crypto_tricks_are_refused() {
    let arena = Arena::start().await;
    let (sts, idp, forge) = (&arena.sts, &arena.sts.idp, &arena.forge);
    let now = arena.now();
    let mut verdicts = Verdicts::new("jws");

    let base = json!({
        "iss": idp.issuer(), "sub": "mallory", "aud": "mcp-sts", "iat": now, "nbf": now,
        "exp": now + 600, "roles": ["order-admin"],
    });
    let valid = idp.sign(SigningAlgorithm::ES256, Some("JWT"), &base).unwrap();
    let es_kid = decode_header(&valid)["kid"].as_str().unwrap().to_owned();
    let rs_valid = idp.sign(SigningAlgorithm::RS256, Some("JWT"), &base).unwrap();
    let rs_kid = decode_header(&rs_valid)["kid"].as_str().unwrap().to_owned();
    let idp_jwks: Value = reqwest::get(idp.jwks_uri()).await.unwrap().json().await.unwrap();
    let jwk_of = |kid: &str| {
        idp_jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
            .unwrap()
            .clone()
    };
    let es_jwk = jwk_of(&es_kid);
    let rs_jwk = jwk_of(&rs_kid);
    let fbase = forge.claims("mallory", now);
    let fvalid = forge.sign(&forge.header(), &fbase);
    let (h, p, s) = segments(&valid);
    let (r_raw, s_raw) = ecdsa_parts(&valid);
    let ring = sts.sts.keys().current();
    let own = ring.signing_key(now).clone();
    let (rogue, _) = SigningKey::generate(SigningAlgorithm::ES256, 0).unwrap();
    let lure = ForgeIdp::start("lure-1").await;
    let minted_like = json!({
        "iss": sts.url, "sub": "mallory", "aud": "orders-api", "iat": now, "nbf": now, "exp": now + 300,
        "jti": "forged-jti", "client_id": "orders-mcp", "scope": "orders:admin",
        "delegation_mode": "on_behalf_of", "act": {"sub": "orders-mcp"}, "sid": "s", "txn": "t",
    });

    // Controls: the same issuers, honestly signed, are accepted in both positions.
    for (name, token) in [("dev_idp", &valid), ("forge", &fvalid)] {
        for position in [Position::Subject, Position::Actor] {
            let reply = present(&arena, position, token).await;
            verdicts.record(
                format!("control/{}/{name}_token_is_accepted", position.name()),
                minted(&reply).map(|_| ()),
            );
        }
    }

    let spki = p256_spki_der(&es_jwk);
    let pem = public_pem(&spki);
    let hs_header = |alg: &str, kid: &str| json!({"alg": alg, "kid": kid, "typ": "JWT"});
    let mut t: Vec<(String, String)> = Vec::new();
    let mut add = |name: &str, token: String| t.push((name.to_owned(), token));

    // alg: none in every spelling, missing, odd types.
    for alg in ["none", "None", "NONE", "nOnE"] {
        add(
            &format!("alg_{alg}_unsigned"),
            format!("{}.{}.", b64_json(&json!({"alg": alg})), p),
        );
    }
    add(
        "alg_none_keeping_a_real_signature",
        format!(
            "{}.{p}.{s}",
            b64_json(&json!({"alg": "none", "kid": es_kid, "typ": "JWT"}))
        ),
    );
    add("alg_missing", forge.sign(&json!({"kid": forge.kid}), &fbase));
    add(
        "alg_as_array",
        forge.sign(&json!({"alg": ["ES256"], "kid": forge.kid}), &fbase),
    );
    add("alg_empty", forge.sign(&json!({"alg": "", "kid": forge.kid}), &fbase));
    add(
        "alg_lowercase",
        forge.sign(&json!({"alg": "es256", "kid": forge.kid}), &fbase),
    );
    add(
        "alg_trailing_space",
        forge.sign(&json!({"alg": "ES256 ", "kid": forge.kid}), &fbase),
    );

    // Algorithm confusion: HMAC keyed with the issuer's public key, swapped families.
    add(
        "hs256_public_key_pem_as_secret",
        hmac_token("HS256", &hs_header("HS256", &es_kid), &base, pem.as_bytes()),
    );
    add(
        "hs256_public_key_pem_without_newline_as_secret",
        hmac_token("HS256", &hs_header("HS256", &es_kid), &base, pem.trim_end().as_bytes()),
    );
    add(
        "hs256_public_key_der_as_secret",
        hmac_token("HS256", &hs_header("HS256", &es_kid), &base, &spki),
    );
    add(
        "hs256_public_jwk_json_as_secret",
        hmac_token(
            "HS256",
            &hs_header("HS256", &es_kid),
            &base,
            es_jwk.to_string().as_bytes(),
        ),
    );
    add(
        "hs256_public_point_as_secret",
        hmac_token("HS256", &hs_header("HS256", &es_kid), &base, &raw_point(&es_jwk)),
    );
    add(
        "hs384_public_key_pem_as_secret",
        hmac_token("HS384", &hs_header("HS384", &es_kid), &base, pem.as_bytes()),
    );
    add(
        "hs512_public_key_pem_as_secret",
        hmac_token("HS512", &hs_header("HS512", &es_kid), &base, pem.as_bytes()),
    );
    add(
        "hs256_rsa_jwk_json_as_secret",
        hmac_token(
            "HS256",
            &hs_header("HS256", &rs_kid),
            &base,
            rs_jwk.to_string().as_bytes(),
        ),
    );
    add(
        "hs256_without_kid_public_key_pem_as_secret",
        hmac_token("HS256", &json!({"alg": "HS256"}), &base, pem.as_bytes()),
    );
    let swap = |alg: &str, key: SigningAlgorithm, kid: &str| {
        idp.sign_with_header(key, &json!({"alg": alg, "kid": kid}), &base)
            .unwrap()
    };
    add(
        "rs256_header_on_ec_key",
        swap("RS256", SigningAlgorithm::ES256, &es_kid),
    );
    add(
        "ps256_header_on_rsa_pkcs1_signature",
        swap("PS256", SigningAlgorithm::RS256, &rs_kid),
    );
    add(
        "es256_header_with_rsa_kid",
        swap("ES256", SigningAlgorithm::ES256, &rs_kid),
    );
    add(
        "es384_header_on_p256_key",
        swap("ES384", SigningAlgorithm::ES256, &es_kid),
    );
    add(
        "eddsa_header_on_p256_key",
        swap("EdDSA", SigningAlgorithm::ES256, &es_kid),
    );
    add(
        "rs256_header_on_ec_kid_with_rsa_signature",
        swap("RS256", SigningAlgorithm::RS256, &es_kid),
    );

    // Signatures: stripped, re-encoded, degenerate, out of range, spliced.
    add("signature_empty", format!("{h}.{p}."));
    add("signature_segment_missing", format!("{h}.{p}"));
    add("signature_der_encoded", der_signature(&valid));
    add("signature_all_zero", with_signature(&valid, &[0u8; 64]));
    add(
        "signature_r_zero",
        with_signature(&valid, &[[0u8; 32].as_slice(), s_raw.as_slice()].concat()),
    );
    add(
        "signature_s_zero",
        with_signature(&valid, &[r_raw.as_slice(), [0u8; 32].as_slice()].concat()),
    );
    add(
        "signature_r_equals_n",
        with_signature(&valid, &[P256_ORDER.as_slice(), s_raw.as_slice()].concat()),
    );
    add(
        "signature_s_equals_n",
        with_signature(&valid, &[r_raw.as_slice(), P256_ORDER.as_slice()].concat()),
    );
    add("signature_all_ones", with_signature(&valid, &[0xFFu8; 64]));
    add(
        "signature_truncated_to_63_bytes",
        with_signature(&valid, &[r_raw.as_slice(), &s_raw[..31]].concat()),
    );
    add(
        "signature_extended_to_65_bytes",
        with_signature(&valid, &[r_raw.as_slice(), s_raw.as_slice(), &[0u8]].concat()),
    );
    let other = idp
        .sign(
            SigningAlgorithm::ES256,
            Some("JWT"),
            &json!({"iss": idp.issuer(), "sub": "x", "aud": "mcp-sts", "exp": now + 600}),
        )
        .unwrap();
    add(
        "signature_from_another_token",
        format!("{h}.{p}.{}", segments(&other).2),
    );
    let mut admin_claims = base.clone();
    admin_claims["sub"] = json!("admin");
    add(
        "payload_swapped_after_signing",
        format!("{h}.{}.{s}", b64_json(&admin_claims)),
    );
    add(
        "header_swapped_after_signing",
        format!(
            "{}.{p}.{s}",
            b64_json(&json!({"alg": "ES256", "kid": es_kid, "typ": "at+jwt"}))
        ),
    );
    add("rsa_signature_truncated", {
        let (rh, rp, rsig) = segments(&rs_valid);
        format!("{rh}.{rp}.{}", &rsig[..rsig.len() - 8])
    });

    // Keys of the wrong issuer, and our own key.
    add("forge_key_signs_dev_idp_iss", forge.sign(&forge.header(), &base));
    add(
        "forge_key_under_dev_idp_kid",
        forge.sign(&json!({"alg": "ES256", "kid": es_kid}), &base),
    );
    let mut forge_iss = base.clone();
    forge_iss["iss"] = json!(forge.url);
    add(
        "dev_idp_key_signs_forge_iss",
        idp.sign(SigningAlgorithm::ES256, Some("JWT"), &forge_iss).unwrap(),
    );
    add(
        "dev_idp_key_under_forge_kid",
        idp.sign_with_header(
            SigningAlgorithm::ES256,
            &json!({"alg": "ES256", "kid": forge.kid}),
            &forge_iss,
        )
        .unwrap(),
    );
    add(
        "sts_key_signs_upstream_iss",
        own.sign_raw(&json!({"alg": "ES256", "kid": own.kid, "typ": "JWT"}), &base)
            .unwrap(),
    );
    add(
        "upstream_key_signs_sts_iss",
        idp.sign(SigningAlgorithm::ES256, Some("at+jwt"), &minted_like).unwrap(),
    );
    add(
        "rogue_key_under_sts_kid",
        rogue
            .sign_raw(&json!({"alg": "ES256", "kid": own.kid, "typ": "at+jwt"}), &minted_like)
            .unwrap(),
    );

    // Key headers pointing at the attacker: never followed.
    add(
        "jwk_header_with_attacker_key",
        rogue
            .sign_raw(
                &json!({"alg": "ES256", "kid": rogue.kid, "jwk": rogue.public_jwk}),
                &base,
            )
            .unwrap(),
    );
    add(
        "jwk_header_with_attacker_key_under_idp_kid",
        rogue
            .sign_raw(&json!({"alg": "ES256", "kid": es_kid, "jwk": rogue.public_jwk}), &base)
            .unwrap(),
    );
    add(
        "jku_header_at_attacker_jwks",
        lure.sign(&json!({"alg": "ES256", "kid": lure.kid, "jku": lure.jwks_uri()}), &base),
    );
    add(
        "jku_header_at_attacker_jwks_under_idp_kid",
        lure.sign(&json!({"alg": "ES256", "kid": es_kid, "jku": lure.jwks_uri()}), &base),
    );
    add(
        "x5u_header_at_attacker_certificate",
        lure.sign(
            &json!({"alg": "ES256", "kid": lure.kid, "x5u": format!("{}/cert.pem", lure.url)}),
            &base,
        ),
    );
    add(
        "x5c_header_with_attacker_certificate",
        lure.sign(
            &json!({"alg": "ES256", "x5c": [STANDARD.encode(p256_spki_der(&lure.public_jwk))]}),
            &base,
        ),
    );
    add(
        "kid_path_traversal",
        forge.sign(&json!({"alg": "ES256", "kid": "../../../../etc/passwd"}), &fbase),
    );

    // crit and b64 (RFC 7515 §4.1.11, RFC 7797).
    add(
        "crit_unknown_header",
        forge.sign(
            &json!({"alg": "ES256", "kid": forge.kid, "crit": ["exp"], "exp": 1}),
            &fbase,
        ),
    );
    add(
        "crit_unregistered_extension",
        forge.sign(
            &json!({"alg": "ES256", "kid": forge.kid, "crit": ["urn:x:ext"], "urn:x:ext": true}),
            &fbase,
        ),
    );
    add(
        "crit_b64_false",
        forge.sign(
            &json!({"alg": "ES256", "kid": forge.kid, "crit": ["b64"], "b64": false}),
            &fbase,
        ),
    );
    add(
        "crit_empty_array",
        forge.sign(&json!({"alg": "ES256", "kid": forge.kid, "crit": []}), &fbase),
    );
    add(
        "crit_not_an_array",
        forge.sign(&json!({"alg": "ES256", "kid": forge.kid, "crit": "b64"}), &fbase),
    );
    let b64_header = b64_json(&json!({"alg": "ES256", "kid": forge.kid, "b64": false, "crit": ["b64"]}));
    let raw_claims = fbase.to_string();
    let detached = forge.signature(&format!("{b64_header}.{raw_claims}"));
    add(
        "b64_false_detached_payload",
        format!("{b64_header}..{}", b64(&detached)),
    );
    let lax_header = b64_json(&json!({"alg": "ES256", "kid": forge.kid, "b64": false}));
    let lax_sig = forge.signature(&format!("{lax_header}.{raw_claims}"));
    add(
        "b64_false_without_crit_raw_payload",
        format!("{lax_header}.{raw_claims}.{}", b64(&lax_sig)),
    );

    // JWE and nesting.
    add(
        "jwe_rsa_oaep_five_segments",
        format!(
            "{}.{}.{}.{}.{}",
            b64_json(&json!({"alg": "RSA-OAEP", "enc": "A256GCM", "kid": es_kid})),
            b64(&[7u8; 256]),
            b64(&[1u8; 12]),
            p,
            b64(&[2u8; 16])
        ),
    );
    add(
        "jwe_dir_five_segments",
        format!(
            "{}..{}.{p}.{}",
            b64_json(&json!({"alg": "dir", "enc": "A128GCM"})),
            b64(&[1u8; 12]),
            b64(&[2u8; 16])
        ),
    );
    add(
        "nested_jwt_with_cty",
        forge.sign_segments(
            &b64_json(&json!({"alg": "ES256", "kid": forge.kid, "cty": "JWT"})),
            &b64(fvalid.as_bytes()),
        ),
    );

    // Size.
    let mut padded = fbase.clone();
    padded["pad"] = json!("x".repeat(17_000));
    add("oversized_claims", forge.sign(&forge.header(), &padded));
    add(
        "oversized_header",
        forge.sign(
            &json!({"alg": "ES256", "kid": forge.kid, "pad": "x".repeat(17_000)}),
            &fbase,
        ),
    );

    // Encoding: other alphabets, padding, junk, broken JSON.
    let fh = b64_json(&forge.header());
    let fp = b64_json(&fbase);
    add(
        "header_with_base64_padding",
        forge.sign_segments(&format!("{fh}="), &fp),
    );
    add(
        "payload_with_base64_padding",
        forge.sign_segments(&fh, &format!("{fp}==")),
    );
    if let Some(header) = standard_alphabet(&forge.header()) {
        add("header_in_standard_base64_alphabet", forge.sign_segments(&header, &fp));
    }
    if let Some(payload) = standard_alphabet(&fbase) {
        add(
            "payload_in_standard_base64_alphabet",
            forge.sign_segments(&fh, &payload),
        );
    }
    add("signature_with_invalid_character", {
        let (fh2, fp2, fs2) = segments(&fvalid);
        format!("{fh2}.{fp2}.*{}", &fs2[1..])
    });
    add("header_not_json", forge.sign_segments(&b64(b"not json"), &fp));
    add("header_json_array", forge.sign_segments(&b64(b"[\"ES256\"]"), &fp));
    add("payload_json_string", forge.sign_segments(&fh, &b64(b"\"claims\"")));
    add(
        "payload_not_utf8",
        forge.sign_segments(&fh, &b64(&[0xFF, 0xFE, b'{', b'}'])),
    );
    add(
        "payload_json_with_trailing_garbage",
        forge.sign_segments(&fh, &b64(format!("{fbase}xyz").as_bytes())),
    );
    add(
        "payload_json_with_byte_order_mark",
        forge.sign_segments(&fh, &b64(format!("\u{feff}{fbase}").as_bytes())),
    );
    add(
        "typ_not_a_string",
        forge.sign(&json!({"alg": "ES256", "kid": forge.kid, "typ": 1}), &fbase),
    );

    // Dots and whitespace.
    add("trailing_dot", format!("{valid}."));
    add("leading_dot", format!(".{valid}"));
    add("empty_segment_inside", format!("{h}..{p}.{s}"));
    add("only_dots", "..".to_owned());
    add("leading_space", format!(" {valid}"));
    add("trailing_space", format!("{valid} "));
    add("trailing_newline", format!("{valid}\n"));
    add("space_after_a_dot", format!("{h}. {p}.{s}"));
    add("tab_inside_signature", format!("{h}.{p}.{}\t{}", &s[..10], &s[10..]));
    add("nul_appended", format!("{valid}\0"));

    expect_all_refused(&arena, &mut verdicts, &t).await;
    verdicts.record(
        "jku_x5u_x5c_are_never_fetched",
        if lure.hits() == 0 {
            Ok(())
        } else {
            Err(format!("the attacker's key server was asked {} times", lure.hits()))
        },
    );
    verdicts.finish();
}

/// Duplicate member names (RFC 7515 §4, RFC 7519 §4): a token must be refused, or read
/// with the lexically last value everywhere; the second value may never slip past a
/// check that the first one passed.
#[tokio::test]
async fn duplicate_json_members_never_bypass_a_check() {
    let arena = Arena::start().await;
    let (sts, forge) = (&arena.sts, &arena.forge);
    let now = arena.now();
    let mut verdicts = Verdicts::new("duplicate members");
    let kid = forge.kid.clone();
    let iss = forge.url.clone();
    let claims = |sub_part: &str, extra: &str| {
        format!(
            r#"{{"iss":"{iss}",{sub_part},"aud":"mcp-sts","iat":{now},"exp":{}{extra},"roles":["developer"]}}"#,
            now + 600
        )
    };
    let plain = claims(r#""sub":"alice""#, "");

    // Must be refused: the last value is unacceptable.
    let must_refuse = [
        (
            "header_alg_last_none",
            format!(r#"{{"alg":"ES256","kid":"{kid}","alg":"none"}}"#),
            plain.clone(),
        ),
        (
            "header_alg_last_hs256",
            format!(r#"{{"alg":"ES256","kid":"{kid}","alg":"HS256"}}"#),
            plain.clone(),
        ),
        (
            "header_crit_last",
            format!(r#"{{"alg":"ES256","kid":"{kid}","crit":[],"crit":["exp"],"exp":1}}"#),
            plain.clone(),
        ),
        (
            "header_kid_last_unknown",
            format!(r#"{{"alg":"ES256","kid":"{kid}","kid":"nope"}}"#),
            plain.clone(),
        ),
        (
            "claims_aud_last_foreign",
            format!(r#"{{"alg":"ES256","kid":"{kid}"}}"#),
            claims(r#""sub":"alice""#, r#","aud":"elsewhere""#),
        ),
        (
            "claims_exp_last_past",
            format!(r#"{{"alg":"ES256","kid":"{kid}"}}"#),
            claims(r#""sub":"alice""#, &format!(r#","exp":{}"#, now - 600)),
        ),
        (
            "claims_iss_last_other_issuer",
            format!(r#"{{"alg":"ES256","kid":"{kid}"}}"#),
            claims(r#""sub":"alice""#, &format!(r#","iss":"{}""#, sts.idp.issuer())),
        ),
        (
            "claims_sub_last_empty",
            format!(r#"{{"alg":"ES256","kid":"{kid}"}}"#),
            claims(r#""sub":"alice","sub":"""#, ""),
        ),
    ];
    for (name, header, body) in must_refuse {
        let token = forge.sign_text(&header, &body);
        for position in [Position::Subject, Position::Actor] {
            let watch = Watch::take(sts).await;
            let reply = present(&arena, position, &token).await;
            let outcome = match refused(&reply, 400, "invalid_request") {
                Ok(()) => watch.unchanged(sts).await,
                Err(e) => Err(e),
            };
            verdicts.record(format!("{}/{name}", position.name()), outcome);
        }
    }

    // May be accepted, but only as the last value, and then revocable as that value.
    let last_sub = forge.sign_text(
        &format!(r#"{{"alg":"ES256","kid":"{kid}"}}"#),
        &claims(r#""sub":"revocable-first","sub":"revocable-last""#, ""),
    );
    verdicts.record("subject/claims_sub_refused_or_last_and_revocable", {
        let reply = arena.obo(&last_sub).await;
        match reply.status {
            400 => refused(&reply, 400, "invalid_request"),
            200 => {
                let claims = minted(&reply).unwrap_or_default();
                if claims["sub"] != "revocable-last" {
                    Err(format!("minted for {} instead of the last sub", claims["sub"]))
                } else {
                    sts.admin_revoke("subject", "revocable-last").await;
                    refused(&arena.obo(&last_sub).await, 400, "invalid_request")
                }
            }
            _ => Err(format!("unexpected {} {}", reply.status, clip(&reply.text))),
        }
    });
    let last_sid = forge.sign_text(
        &format!(r#"{{"alg":"ES256","kid":"{kid}"}}"#),
        &claims(r#""sub":"sid-user","sid":"sid-first","sid":"sid-last""#, ""),
    );
    verdicts.record("subject/claims_sid_refused_or_last_and_revocable", {
        let reply = arena.obo(&last_sid).await;
        match reply.status {
            400 => refused(&reply, 400, "invalid_request"),
            200 => {
                let claims = minted(&reply).unwrap_or_default();
                if claims["sid"] != "sid-last" {
                    Err(format!("minted with sid {} instead of the last", claims["sid"]))
                } else {
                    sts.admin_revoke("session", "sid-last").await;
                    refused(&arena.obo(&last_sid).await, 400, "invalid_request")
                }
            }
            _ => Err(format!("unexpected {} {}", reply.status, clip(&reply.text))),
        }
    });
    let alg_last_good = forge.sign_text(&format!(r#"{{"alg":"none","kid":"{kid}","alg":"ES256"}}"#), &plain);
    verdicts.record("subject/header_alg_refused_or_last_verified", {
        let reply = arena.obo(&alg_last_good).await;
        match reply.status {
            400 => refused(&reply, 400, "invalid_request"),
            200 => Ok(()), // the last alg (ES256) was the one verified
            _ => Err(format!("unexpected {} {}", reply.status, clip(&reply.text))),
        }
    });
    verdicts.finish();
}
