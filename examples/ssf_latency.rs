//! Revocation latency through Shared Signals: how long from an admin revocation to a
//! downstream verifier refusing the token, with the verifier polling every second.
//!
//! Starts a development IdP and mcp-sts (in this process, memory backend, loopback
//! only) and a verifier subscribed to the revocation stream; then, for each sample,
//! mints a token for a fresh user, revokes that user through the admin API and
//! measures until `verify` refuses the token. Prints p50, p99 and max.
//!
//! `cargo run --example ssf_latency -- --samples 100 --poll-ms 1000`

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use mcp_sts::audit::AuditLog;
use mcp_sts::client_auth::hash_secret;
use mcp_sts::clock::{Clock, SystemClock};
use mcp_sts::config::Config;
use mcp_sts::dev_idp::DevIdp;
use mcp_sts::verify::{RevocationStream, RevocationStreamConfig, Verifier, VerifierConfig, VerifyError};
use serde_json::{Value, json};

#[derive(Debug, Parser)]
struct Args {
    /// Revocations to measure.
    #[arg(long, default_value_t = 100)]
    samples: usize,
    /// The verifier's poll interval, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    poll_ms: u64,
}

const ADMIN: &str = "latency-admin";
const MCP_SECRET: &str = "mcp-secret";
const API_SECRET: &str = "api-secret";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let idp = DevIdp::start_local().await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let toml = format!(
        r#"
[server]
listen = "127.0.0.1:0"
issuer = "{url}"
[keys]
dir = "{keys}"
[revocation]
backend = "memory"
[admin]
token_sha256 = "{admin}"
[[issuers]]
issuer = "{idp}"
audience = "mcp-sts"
[[clients]]
client_id = "orders-mcp"
secret_sha256 = "{mcp}"
audiences = ["orders-api"]
[[clients]]
client_id = "orders-api"
secret_sha256 = "{api}"
[[audiences]]
id = "orders-api"
mode = "on_behalf_of"
scopes = ["orders:read"]
[audiences.role_scopes]
developer = ["orders:read"]
"#,
        keys = dir.path().display(),
        admin = hash_secret(ADMIN),
        idp = idp.issuer(),
        mcp = hash_secret(MCP_SECRET),
        api = hash_secret(API_SECRET),
    );
    let sts = mcp_sts::server::build(Config::from_toml(&toml)?, Arc::new(SystemClock), AuditLog::new()).await?;
    tokio::spawn(mcp_sts::http::serve(listener, sts, std::future::pending()));

    let mut stream = RevocationStreamConfig::new(&url, "orders-api", API_SECRET);
    stream.poll_interval = Duration::from_millis(args.poll_ms);
    // One process, one clock: no skew to allow for.
    stream.leeway = Duration::ZERO;
    let stream = Arc::new(RevocationStream::new(stream)?);
    stream.poll_once(SystemClock.now()).await?;
    // The stream vouches for tokens issued after its coverage start; mint after it.
    let covered_since = stream.covered_since().unwrap_or_default();
    while SystemClock.now() <= covered_since {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let poller = stream.clone().spawn();
    let mut config = VerifierConfig::new(&url, "orders-api");
    config.revocation_stream = Some(stream);
    let verifier = Verifier::new(config)?;
    let http = reqwest::Client::new();

    let mut samples = Vec::with_capacity(args.samples);
    for i in 0..args.samples {
        let user = format!("user-{i}");
        let subject = idp.user_token(&user, "mcp-sts", &["developer"], SystemClock.now(), 600, &json!({}))?;
        let minted: Value = http
            .post(format!("{url}/token"))
            .basic_auth("orders-mcp", Some(MCP_SECRET))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                form_urlencoded::Serializer::new(String::new())
                    .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange")
                    .append_pair("subject_token", &subject)
                    .append_pair("subject_token_type", "urn:ietf:params:oauth:token-type:access_token")
                    .append_pair("audience", "orders-api")
                    .finish(),
            )
            .send()
            .await?
            .json()
            .await?;
        let token = minted["access_token"].as_str().unwrap_or_default().to_owned();
        verifier.verify_at(&token, SystemClock.now()).await?;
        // A random phase against the poll timer, so samples are not locked to it.
        let jitter = u64::try_from(uuid::Uuid::new_v4().as_u128() % u128::from(args.poll_ms.max(1))).unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(jitter)).await;
        let started = Instant::now();
        let answer = http
            .post(format!("{url}/admin/revocations"))
            .bearer_auth(ADMIN)
            .json(&json!({"kind": "subject", "value": user}))
            .send()
            .await?;
        anyhow::ensure!(answer.status().as_u16() == 201, "revocation failed");
        loop {
            match verifier.verify_at(&token, SystemClock.now()).await {
                Err(VerifyError::Revoked) => break,
                Ok(_) => tokio::time::sleep(Duration::from_millis(2)).await,
                Err(other) => anyhow::bail!("unexpected refusal: {other}"),
            }
            anyhow::ensure!(started.elapsed() < Duration::from_secs(30), "never refused");
        }
        samples.push(started.elapsed());
    }
    poller.abort();
    samples.sort();
    let at = |q: f64| {
        let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(index).copied().unwrap_or_default()
    };
    println!(
        "revocation -> refused by verifier, poll every {} ms, {} samples: p50 {:?}  p99 {:?}  max {:?}",
        args.poll_ms,
        samples.len(),
        at(0.50),
        at(0.99),
        samples.last().copied().unwrap_or_default()
    );
    Ok(())
}
