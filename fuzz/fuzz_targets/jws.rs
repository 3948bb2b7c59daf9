//! Compact JWS tokens before and during validation: the shape reader, every claim
//! reader, the minted-token contract and its lineage, verification of our own tokens,
//! and the full inbound validation against one upstream issuer (whose keys are
//! unreachable) and our own key ring.
//!
//! The key ring holds a fixed test key, so seeds signed with it (fuzz/corpus/jws)
//! reach the claim rules; nothing here is a real secret.

#![no_main]

use std::sync::OnceLock;

use base64::Engine;
use libfuzzer_sys::fuzz_target;
use mcp_sts::config::{Config, SigningAlgorithm};
use mcp_sts_contract::AccessClaims;
use mcp_sts::inbound::Issuers;
use mcp_sts::inbound::jwt::{audiences, str_claim, string_at, time_claim, token_scopes};
use mcp_sts_contract::jose::peek;
use mcp_sts::inbound::validate::{DeclaredType, Limits, validate};
use mcp_sts_contract::jose::{JwksConfig, VerifiedTokens};
use mcp_sts::keys::{KeyRing, SigningKey};
use mcp_sts::lineage::Lineage;

/// Our issuer in this harness; seeds use it as `iss`.
const ISSUER: &str = "https://sts.fuzz";
/// A fixed "now" (2030-03-17): the JWKS refetch rate limit then holds forever.
const NOW: u64 = 1_900_000_000;
/// A P-256 PKCS#8 test key, base64 DER.
const TEST_KEY: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg52hqUFrG+E8xvPmZB0J2nHAzmEBOAeVXKDwbif+FM/yhRANCAARqh5VK+ckc11/WUVo2L20dyHAxBGEBxSEn60iOyHQ2wS23FzsMag7VGtWY3Er5lXga504dUOBmFIuiCdcjJ9a6";
/// One upstream issuer whose JWKS is on a closed loopback port.
const CONFIG: &str = r#"
[server]
listen = "127.0.0.1:0"
issuer = "https://sts.fuzz"
[[issuers]]
issuer = "https://idp.fuzz"
audience = "mcp-sts"
jwks_uri = "http://127.0.0.1:9/jwks.json"
"#;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    issuers: Issuers,
    ring: KeyRing,
    verified: VerifiedTokens,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let der = base64::engine::general_purpose::STANDARD.decode(TEST_KEY).unwrap();
        let key = SigningKey::from_pkcs8(&der, 0).unwrap();
        let ring = KeyRing::new(vec![key], SigningAlgorithm::ES256, 600).unwrap();
        let config = Config::from_toml(CONFIG).unwrap();
        let http = mcp_sts_contract::fetch::http_client(std::time::Duration::from_millis(200)).unwrap();
        let issuers = Issuers::new(&config.issuers, &http, &JwksConfig::default());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // A small memory of verified tokens, so inputs that verify also exercise it.
        let verified = VerifiedTokens::new(64);
        Fixture {
            runtime,
            issuers,
            ring,
            verified,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(jwt) = peek(token) {
        for name in ["alg", "kid", "typ"] {
            let _ = str_claim(&jwt.header, name);
        }
        for name in ["exp", "nbf", "iat"] {
            let _ = time_claim(&jwt.claims, name);
        }
        let _ = audiences(&jwt.claims);
        let _ = token_scopes(&jwt.claims);
        let _ = string_at(&jwt.claims, "tenant");
        // The minted-token contract and the revocation lineage it implies.
        if let Ok(claims) = AccessClaims::from_claims(jwt.claims) {
            let _ = Lineage::for_caller("fuzz", &["https://idp.example"])
                .minted(&claims)
                .keys();
            let _ = claims.user_sub();
            let _ = claims.scopes();
        }
    }
    let f = fixture();
    let _ = f
        .runtime
        .block_on(mcp_sts::issued::read(token, ISSUER, &f.ring, 16 * 1024, NOW));
    let limits = Limits {
        max_token_bytes: 16 * 1024,
        leeway: 30,
    };
    for declared in [DeclaredType::AccessToken, DeclaredType::IdToken] {
        let _ = f.runtime.block_on(validate(
            token,
            declared,
            &f.issuers,
            (ISSUER, &f.ring),
            limits,
            &f.verified,
            NOW,
        ));
    }
});
