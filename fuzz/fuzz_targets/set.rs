//! Security Event Tokens as a receiver reads them (the verifier's revocation stream and
//! mcp-sts's upstream receiver): the compact shape and header readers, the signature
//! against a fixed key, the SET claims (`sub_id` formats, exactly one event, event
//! time), the revocation a SET announces, and the identifier rule on what it names.
//!
//! The key is a fixed test key, so seeds signed with it (fuzz/corpus/set) reach the
//! claim rules; nothing here is a real secret.

#![no_main]

use std::sync::{Arc, OnceLock};

use base64::Engine;
use jsonwebtoken::Algorithm;
use libfuzzer_sys::fuzz_target;
use mcp_sts_contract::identifier;
use mcp_sts_contract::set::{SetClaims, read_revocation};
use mcp_sts_contract::jose::compact::{audiences, claims, header, str_claim, time_claim};
use mcp_sts_contract::jose::{JwksCache, JwksConfig, JwksSource, VerificationKey, verify_signature};
use mcp_sts::keys::SigningKey;
use serde_json::{Value, json};

/// The transmitter in this harness; seeds use it as `iss`.
const ISSUER: &str = "https://sts.fuzz";
/// A fixed "now" (2030-03-17).
const NOW: u64 = 1_900_000_000;
/// The P-256 PKCS#8 test key of the `jws` target, base64 DER.
const TEST_KEY: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg52hqUFrG+E8xvPmZB0J2nHAzmEBOAeVXKDwbif+FM/yhRANCAARqh5VK+ckc11/WUVo2L20dyHAxBGEBxSEn60iOyHQ2wS23FzsMag7VGtWY3Er5lXga504dUOBmFIuiCdcjJ9a6";

struct Fixture {
    runtime: tokio::runtime::Runtime,
    keys: JwksCache,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let der = base64::engine::general_purpose::STANDARD.decode(TEST_KEY).unwrap();
        let key = SigningKey::from_pkcs8(&der, 0).unwrap();
        let config = JwksConfig {
            kid_required: true,
            ..JwksConfig::default()
        };
        let keys = JwksCache::new(
            JwksSource::Inline(json!({"keys": [key.public_jwk]})),
            config,
            reqwest::Client::new(),
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Fixture { runtime, keys }
    })
}

/// The signature, as a receiver checks it: `alg` from the header, the key by `kid`.
fn signed(set: &str, head: &serde_json::Map<String, Value>) -> bool {
    let alg = match str_claim(head, "alg") {
        Some("ES256") => Algorithm::ES256,
        Some("RS256") => Algorithm::RS256,
        _ => return false,
    };
    let f = fixture();
    let keys: Result<Vec<Arc<VerificationKey>>, _> =
        f.runtime.block_on(f.keys.keys_for(str_claim(head, "kid"), alg, NOW));
    keys.and_then(|keys| verify_signature(set, alg, &keys)).is_ok()
}

fuzz_target!(|data: &[u8]| {
    let Ok(set) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(head) = header(set) else {
        return;
    };
    for name in ["alg", "kid", "typ"] {
        let _ = str_claim(&head, name);
    }
    let _ = head.contains_key("crit");
    let _ = signed(set, &head);
    let Ok(body) = claims(set) else {
        return;
    };
    let _ = time_claim(&body, "iat");
    let _ = audiences(&body);
    let Ok(parsed) = serde_json::from_value::<SetClaims>(Value::Object(body)) else {
        return;
    };
    let _ = identifier::check(&parsed.jti);
    let _ = parsed.single_event();
    let _ = parsed.subject();
    let _ = parsed.event_time();
    for issuer in [ISSUER, parsed.iss.as_str()] {
        if let Ok(Some(event)) = read_revocation(issuer, &parsed) {
            let _ = identifier::check(&event.value);
        }
    }
    // What a receiver may re-serialise (the verifier's state file keeps what it heard).
    let _ = serde_json::to_string(&parsed);
});
