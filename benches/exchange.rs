//! Microbenchmarks of the exchange hot path: signing, inbound validation, the whole
//! decision in process (memory and embedded stores), and the whole exchange over
//! loopback HTTP, and the downstream verifier. "first sight" runs check every signature
//! (no memory of verified tokens); "seen before" runs present the same token again, as
//! an MCP server does on every tool call. Run with `cargo bench --bench exchange`;
//! numbers go in BENCHMARKS.md.

use std::sync::Arc;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use mcp_sts::audit::AuditEvent;
use mcp_sts::config::{Config, SigningAlgorithm};
use mcp_sts::dpop::ProofHeader;
use mcp_sts::inbound::validate::{DeclaredType, Limits, validate};
use mcp_sts::keys::SigningKey;
use mcp_sts::mint::sign;
use mcp_sts::request::{RawRequest, TokenRequest};
use mcp_sts::service::Sts;
use mcp_sts::token_endpoint::answer;
use mcp_sts_contract::clock::{Clock, SystemClock};
use mcp_sts_contract::jose::VerifiedTokens;
use mcp_sts_contract::jose::dpop::read_proof;
use mcp_sts_contract::{AccessClaims, Actor, Audience};
use mcp_sts_demo::dev_idp::DevIdp;
use mcp_sts_downstream::client::DpopKey;
use mcp_sts_downstream::verify::dpop::Scheme;
use mcp_sts_downstream::verify::{Verifier, VerifierConfig};
use serde_json::json;

const SECRET: &str = "bench-secret";

fn config(issuer: &str, idp: &DevIdp, keys: &str, revocation: &str, remembered: usize) -> Config {
    Config::from_toml(&format!(
        r#"
[server]
listen = "127.0.0.1:0"
issuer = "{issuer}"
verified_token_cache = {remembered}
[keys]
dir = "{keys}"
[revocation]
{revocation}
[[issuers]]
issuer = "{idp}"
audience = "mcp-sts"
[[clients]]
client_id = "orders-mcp"
secret_sha256 = "{hash}"
audiences = ["orders-api"]
[[audiences]]
id = "orders-api"
mode = "on_behalf_of"
scopes = ["orders:read", "orders:write"]
[audiences.role_scopes]
developer = ["orders:read"]
"#,
        idp = idp.issuer(),
        hash = mcp_sts::client_auth::hash_secret(SECRET),
    ))
    .expect("bench config")
}

fn claims() -> AccessClaims {
    AccessClaims {
        iss: "https://sts.example.com".into(),
        sub: "alice@example.com".into(),
        aud: Audience::One("orders-api".into()),
        exp: 2_000_000_300,
        iat: Some(2_000_000_000),
        nbf: Some(2_000_000_000),
        jti: mcp_sts::mint::new_jti(),
        client_id: "orders-mcp".into(),
        scope: "orders:read".into(),
        delegation_mode: mcp_sts::config::DelegationMode::OnBehalfOf,
        act: Some(Actor::new("claude-desktop", Some("https://idp.example.com".into()))),
        delegation_chain: None,
        sid: "sess-1".into(),
        txn: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        tenant: None,
        user: None,
        sub_id: Some(mcp_sts_contract::set::SubjectId::IssSub {
            iss: "https://idp.example.com".into(),
            sub: "alice@example.com".into(),
        }),
        cnf: None,
    }
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (es, _) = SigningKey::generate(SigningAlgorithm::ES256, 0).expect("key");
    let (rs, _) = SigningKey::generate(SigningAlgorithm::RS256, 0).expect("key");
    let minted = claims();
    c.bench_function("mint/sign_es256", |b| b.iter(|| sign(&es, &minted).expect("sign")));
    c.bench_function("mint/sign_rs256", |b| b.iter(|| sign(&rs, &minted).expect("sign")));

    let keys = tempfile::tempdir().expect("tempdir");
    let (idp, sts_memory, sts_memory_first_sight, sts_embedded, url) = runtime.block_on(async {
        let idp = DevIdp::start_local().await.expect("idp");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let keys_dir = keys.path().to_str().expect("path").to_owned();
        let memory = config(&url, &idp, &keys_dir, "backend = \"memory\"", 100_000);
        let memory_first_sight = config(&url, &idp, &keys_dir, "backend = \"memory\"", 0);
        let db = keys.path().join("revocations.db");
        let embedded = config(
            &url,
            &idp,
            &keys_dir,
            &format!("backend = \"embedded\"\npath = \"{}\"", db.display()),
            100_000,
        );
        let build = |config| mcp_sts::server::build(config, Arc::new(SystemClock), mcp_sts::audit::AuditLog::new());
        let sts_memory = build(memory).await.expect("build");
        let sts_memory_first_sight = build(memory_first_sight).await.expect("build");
        let sts_embedded = build(embedded).await.expect("build");
        let served = sts_memory.clone();
        tokio::spawn(async move { mcp_sts::http::serve(listener, served, std::future::pending()).await });
        (idp, sts_memory, sts_memory_first_sight, sts_embedded, url)
    });
    let now = SystemClock.now();
    let subject = idp
        .user_token(
            "alice@example.com",
            "mcp-sts",
            &["developer"],
            now,
            3600,
            &json!({"sid": "s-1"}),
        )
        .expect("token");

    let ring = sts_memory.keys().current();
    let limits = Limits {
        max_token_bytes: 16 * 1024,
        leeway: 30,
    };
    for (name, remembered) in [
        (
            "inbound/validate_es256_upstream_first_sight",
            VerifiedTokens::disabled(),
        ),
        ("inbound/validate_es256_upstream_seen_before", VerifiedTokens::new(1000)),
    ] {
        c.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| async {
                validate(
                    &subject,
                    DeclaredType::AccessToken,
                    sts_memory.issuers(),
                    (sts_memory.issuer(), &ring),
                    limits,
                    &remembered,
                    now,
                )
                .await
                .expect("valid")
            })
        });
    }

    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
            ("subject_token", subject.as_str()),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
            ("audience", "orders-api"),
            ("client_id", "orders-mcp"),
            ("client_secret", SECRET),
        ])
        .finish();
    let decide = |sts: Arc<Sts>| {
        let body = body.clone();
        move || {
            let sts = sts.clone();
            let body = body.clone();
            async move {
                let request = TokenRequest::parse(RawRequest {
                    content_type: Some("application/x-www-form-urlencoded"),
                    authorization: None,
                    traceparent: None,
                    body: body.as_bytes(),
                })
                .expect("request");
                let mut audit = AuditEvent::new("token_exchange", now);
                let ring = sts.keys().current();
                answer(sts.exchanger(&ring), request, now, &mut audit)
                    .await
                    .expect("exchange")
            }
        }
    };
    c.bench_function("exchange/decision_memory_store_first_sight", |b| {
        b.to_async(&runtime).iter(decide(sts_memory_first_sight.clone()))
    });
    c.bench_function("exchange/decision_memory_store_seen_before", |b| {
        b.to_async(&runtime).iter(decide(sts_memory.clone()))
    });
    c.bench_function("exchange/decision_embedded_store", |b| {
        b.to_async(&runtime).iter(decide(sts_embedded.clone()))
    });

    let http = reqwest::Client::new();
    c.bench_function("exchange/http_loopback", |b| {
        b.to_async(&runtime).iter(|| async {
            let response = http
                .post(format!("{url}/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.clone())
                .send()
                .await
                .expect("send");
            assert_eq!(response.status(), 200);
            response.bytes().await.expect("body")
        })
    });

    // The downstream side: a service verifying the same minted token on every request.
    let minted_token = runtime.block_on(decide(sts_memory.clone())()).access_token;
    for (name, remembered) in [
        ("verifier/verify_first_sight", 0),
        ("verifier/verify_seen_before", 10_000),
    ] {
        let mut config = VerifierConfig::new(url.clone(), "orders-api");
        config.verified_token_cache = remembered;
        let verifier = Verifier::new(config).expect("verifier");
        c.bench_function(name, |b| {
            b.to_async(&runtime)
                .iter(|| async { verifier.verify(&minted_token).await.expect("verified") })
        });
    }

    // DPoP (RFC 9449): a proof read through the one pipeline with its own key, a proof
    // signed by the client, and the exchange and the verifier with a fresh proof each.
    let key = DpopKey::generate().expect("key");
    let token_endpoint = sts_memory.token_endpoint().to_owned();
    let proof = key.proof("POST", &token_endpoint, now, None, None).expect("proof");
    c.bench_function("dpop/read_proof_es256", |b| {
        b.to_async(&runtime)
            .iter(|| async { read_proof(&proof, now).await.expect("proof") })
    });
    c.bench_function("dpop/client_signs_proof_es256", |b| {
        b.iter(|| key.proof("POST", &token_endpoint, now, None, None).expect("proof"))
    });
    let bound_request = || {
        let mut request = TokenRequest::parse(RawRequest {
            content_type: Some("application/x-www-form-urlencoded"),
            authorization: None,
            traceparent: None,
            body: body.as_bytes(),
        })
        .expect("request");
        request.dpop = ProofHeader::One(key.proof("POST", &token_endpoint, now, None, None).expect("proof"));
        request
    };
    c.bench_function("exchange/decision_memory_store_seen_before_dpop", |b| {
        b.to_async(&runtime).iter_batched(
            bound_request,
            |request| {
                let sts = sts_memory.clone();
                async move {
                    let mut audit = AuditEvent::new("token_exchange", now);
                    let ring = sts.keys().current();
                    answer(sts.exchanger(&ring), request, now, &mut audit)
                        .await
                        .expect("exchange")
                }
            },
            BatchSize::SmallInput,
        )
    });
    let bound_token = runtime
        .block_on(async {
            let mut audit = AuditEvent::new("token_exchange", now);
            let ring = sts_memory.keys().current();
            answer(sts_memory.exchanger(&ring), bound_request(), now, &mut audit).await
        })
        .expect("bound exchange")
        .access_token;
    let api = "https://orders.example.com";
    let mut config = VerifierConfig::new(url.clone(), "orders-api").public_url(api);
    config.dpop_replay_capacity = 10_000_000;
    let verifier = Verifier::new(config).expect("verifier");
    c.bench_function("verifier/verify_dpop_seen_before", |b| {
        b.to_async(&runtime).iter_batched(
            || {
                key.proof(
                    "GET",
                    &format!("{api}/orders"),
                    SystemClock.now(),
                    Some(&bound_token),
                    None,
                )
                .expect("proof")
            },
            |proof| {
                let (verifier, token) = (&verifier, &bound_token);
                async move {
                    verifier
                        .verify_request(token, Scheme::Dpop, Some(&proof), "GET", "/orders")
                        .await
                        .expect("verified")
                }
            },
            BatchSize::SmallInput,
        )
    });

    // Memory of a full memory of verified tokens: the default bound, filled.
    let filled = VerifiedTokens::new(100_000);
    let before = resident_kib();
    for n in 0..100_000u64 {
        let token = idp
            .user_token(
                "alice@example.com",
                "mcp-sts",
                &["developer"],
                now,
                3600,
                &json!({"n": n}),
            )
            .expect("token");
        runtime.block_on(async {
            validate(
                &token,
                DeclaredType::AccessToken,
                sts_memory.issuers(),
                (sts_memory.issuer(), &ring),
                limits,
                &filled,
                now,
            )
            .await
            .expect("valid")
        });
    }
    let grown = resident_kib().saturating_sub(before);
    println!(
        "verified_tokens/memory: {} entries, resident memory grew {grown} KiB ({} bytes per entry)",
        filled.stats().entries,
        grown * 1024 / filled.stats().entries.max(1)
    );
}

/// Resident memory of this process, from /proc.
fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4)
}

criterion_group!(benches, bench);
criterion_main!(benches);
