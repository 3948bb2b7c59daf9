//! Identity assertion grants (ID-JAG) and the identity assertions they are issued
//! for, as mcp-sts verifies them: the one verification of a grant at redemption (ours
//! and an upstream issuer's, whose keys are unreachable), the claims contract, and the
//! ID token check when a grant is asked for.
//!
//! The key ring holds the fixed test key of the `jws` target, so seeds signed with it
//! (fuzz/corpus/grant) reach the claim rules; nothing here is a real secret.

#![no_main]

use std::sync::OnceLock;

use base64::Engine;
use libfuzzer_sys::fuzz_target;
use mcp_sts::config::{Config, SigningAlgorithm};
use mcp_sts_contract::IdJagClaims;
use mcp_sts::grant::assertions::{id_jag, identity_assertion};
use mcp_sts::inbound::Issuers;
use mcp_sts::inbound::validate::{DeclaredType, Limits};
use mcp_sts_contract::jose::JwksConfig;
use mcp_sts_contract::jose::compact::claims;
use mcp_sts::keys::{KeyRing, SigningKey};

/// Our issuer in this harness; seeds use it as `iss` and `aud`.
const ISSUER: &str = "https://sts.fuzz";
/// A fixed "now" (2030-03-17): the JWKS refetch rate limit then holds forever.
const NOW: u64 = 1_900_000_000;
/// A P-256 PKCS#8 test key, base64 DER.
const TEST_KEY: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg52hqUFrG+E8xvPmZB0J2nHAzmEBOAeVXKDwbif+FM/yhRANCAARqh5VK+ckc11/WUVo2L20dyHAxBGEBxSEn60iOyHQ2wS23FzsMag7VGtWY3Er5lXga504dUOBmFIuiCdcjJ9a6";
/// One upstream issuer trusted for grants, whose JWKS is on a closed loopback port.
const CONFIG: &str = r#"
[server]
listen = "127.0.0.1:0"
issuer = "https://sts.fuzz"
[[issuers]]
issuer = "https://idp.fuzz"
audience = "mcp-sts"
jwks_uri = "http://127.0.0.1:9/jwks.json"
accept_id_jag = true
"#;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    issuers: Issuers,
    ring: KeyRing,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let der = base64::engine::general_purpose::STANDARD.decode(TEST_KEY).unwrap();
        let key = SigningKey::from_pkcs8(&der, 0).unwrap();
        let ring = KeyRing::new(vec![key], SigningAlgorithm::ES256, 600).unwrap();
        let config = Config::parse(CONFIG).unwrap();
        let http = mcp_sts_contract::fetch::http_client(std::time::Duration::from_millis(200)).unwrap();
        let issuers = Issuers::new(&config.issuers, &http, &JwksConfig::default());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Fixture { runtime, issuers, ring }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(map) = claims(token)
        && let Ok(grant) = IdJagClaims::from_claims(map)
    {
        let _ = grant.resources();
        let _ = grant.scopes();
    }
    let f = fixture();
    let limits = Limits {
        max_token_bytes: 16 * 1024,
        leeway: 30,
    };
    for accept_own in [true, false] {
        let redeemed = f
            .runtime
            .block_on(id_jag(token, (ISSUER, &f.ring), accept_own, &f.issuers, limits, NOW));
        if let Ok(grant) = redeemed {
            let _ = grant.claims.resources();
        }
    }
    for declared in [DeclaredType::IdToken, DeclaredType::Jwt, DeclaredType::AccessToken] {
        let _ = f.runtime.block_on(identity_assertion(
            token,
            declared,
            "assistant",
            &f.issuers,
            limits,
            NOW,
        ));
    }
});
