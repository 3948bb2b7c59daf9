//! Offboarding latency at every door: how long from an admin revocation of a user until
//! mcp-sts refuses to exchange the user's token, until an MCP server built with the kit
//! refuses the user's MCP token, and until a downstream verifier refuses a token minted
//! for the user, the kit and the verifier each polling mcp-sts's Shared Signals stream
//! (every second by default, as shipped).
//!
//! Starts a development IdP and mcp-sts (in this process, memory backend, loopback
//! only), a kit-protected MCP server and a verifier, both subscribed to the revocation
//! stream; then, for each sample, gets tokens for a fresh user, revokes that user
//! through the admin API at a random phase of the poll timer, and probes the three
//! doors at once until each refuses. Prints p50, p99 and max per door.
//!
//! `cargo run --release --example ssf_latency -- --samples 100 --poll-ms 1000`

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use mcp_sts::audit::AuditLog;
use mcp_sts::client_auth::hash_secret;
use mcp_sts::config::Config;
use mcp_sts_contract::clock::{Clock, SystemClock};
use mcp_sts_demo::dev_idp::{AgentGrant, DevIdp};
use mcp_sts_downstream::client::{StsClient, StsClientConfig};
use mcp_sts_downstream::mcp::{McpAuth, TrustedIssuer};
use mcp_sts_downstream::verify::{RevocationStream, RevocationStreamConfig, Verifier, VerifierConfig, VerifyError};
use serde_json::{Value, json};

#[derive(Debug, Parser)]
struct Args {
    /// Revocations to measure.
    #[arg(long, default_value_t = 100)]
    samples: usize,
    /// The poll interval of the kit's and the verifier's streams, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    poll_ms: u64,
}

/// An MCP server with no tools: the kit's layer in front of it is what is measured.
struct NoTools;

impl rmcp::ServerHandler for NoTools {}

/// Poll `refused` every 2 ms until it says yes; how long from `started`.
async fn until_refused<F, Fut>(started: Instant, mut refused: F) -> anyhow::Result<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    loop {
        if refused().await? {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(30), "never refused");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// p50, p99 and max of `samples`, sorted in place.
fn summary(samples: &mut [Duration]) -> String {
    samples.sort();
    let at = |q: f64| {
        let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(index).copied().unwrap_or_default()
    };
    format!(
        "p50 {:?}  p99 {:?}  max {:?}",
        at(0.50),
        at(0.99),
        samples.last().copied().unwrap_or_default()
    )
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
agent_claim = "client_id"
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

    // The downstream API's verifier, subscribed as orders-api.
    let mut stream = RevocationStreamConfig::new(&url, "orders-api", API_SECRET);
    stream.poll_interval = Duration::from_millis(args.poll_ms);
    // One process, one clock: no skew to allow for.
    stream.leeway = Duration::ZERO;
    let stream = Arc::new(RevocationStream::new(stream)?);
    let poller = stream.clone().spawn();
    let mut config = VerifierConfig::new(&url, "orders-api");
    config.revocation_stream = Some(stream.clone());
    let verifier = Verifier::new(config)?;

    // The MCP server, its kit subscribed as orders-mcp.
    let mcp_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let resource = format!("http://{}/mcp", mcp_listener.local_addr()?);
    let mut kit_stream = RevocationStreamConfig::new(&url, "orders-mcp", MCP_SECRET);
    kit_stream.poll_interval = Duration::from_millis(args.poll_ms);
    kit_stream.leeway = Duration::ZERO;
    let exchange = StsClient::new(StsClientConfig::new(format!("{url}/token"), "orders-mcp", MCP_SECRET))?;
    let auth = McpAuth::builder(&resource)
        .trust(TrustedIssuer::discover(idp.issuer()))
        .exchange_with(exchange)
        .revocations(kit_stream)
        .build()
        .await?;
    let kit = auth
        .revocation_stream()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no stream"))?;
    let app = auth.serve(|_| NoTools);
    tokio::spawn(async move { axum::serve(mcp_listener, app).await });

    // Both streams vouch for tokens issued after their coverage start; mint after it.
    for subscribed in [&stream, &kit] {
        subscribed.poll_once(SystemClock.now()).await?;
    }
    let covered_since = [&stream, &kit]
        .iter()
        .filter_map(|s| s.covered_since())
        .max()
        .unwrap_or_default();
    while SystemClock.now() <= covered_since {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let http = reqwest::Client::new();
    let exchange = |subject: String| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let answer = http
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
                .await?;
            let status = answer.status().as_u16();
            let body: Value = answer.json().await?;
            anyhow::Ok((status, body))
        }
    };
    let mcp_status = |token: String| {
        let http = http.clone();
        let resource = resource.clone();
        async move {
            let answer = http
                .post(&resource)
                .bearer_auth(token)
                .header("accept", "application/json, text/event-stream")
                .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
                .send()
                .await?;
            anyhow::Ok(answer.status().as_u16())
        }
    };

    let (mut at_sts, mut at_kit, mut at_api) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..args.samples {
        let user = format!("user-{i}");
        let now = SystemClock.now();
        let grant = AgentGrant {
            user: &user,
            roles: &["developer"],
            agent: "claude-desktop",
            agent_claim: "client_id",
            audiences: &[&resource, "mcp-sts"],
            scope: "",
        };
        let subject = idp.agent_token(&grant, now, 600)?;
        let (status, minted) = exchange(subject.clone()).await?;
        anyhow::ensure!(status == 200, "exchange refused before the revocation: {minted}");
        let token = minted["access_token"].as_str().unwrap_or_default().to_owned();
        verifier.verify_at(&token, SystemClock.now()).await?;
        anyhow::ensure!(
            mcp_status(subject.clone()).await? != 401,
            "the kit refused before the revocation"
        );
        // A random phase against the poll timers, so samples are not locked to them.
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
        let sts_door = until_refused(started, || {
            let subject = subject.clone();
            async { Ok(exchange(subject).await?.0 == 400) }
        });
        let kit_door = until_refused(started, || {
            let subject = subject.clone();
            async { Ok(mcp_status(subject).await? == 401) }
        });
        let api_door = until_refused(started, || async {
            match verifier.verify_at(&token, SystemClock.now()).await {
                Err(VerifyError::Revoked) => Ok(true),
                Ok(_) => Ok(false),
                Err(other) => anyhow::bail!("unexpected refusal: {other}"),
            }
        });
        let (sts, kit, api) = tokio::try_join!(sts_door, kit_door, api_door)?;
        at_sts.push(sts);
        at_kit.push(kit);
        at_api.push(api);
    }
    poller.abort();
    println!(
        "offboarding -> refused, streams polled every {} ms, {} samples:",
        args.poll_ms, args.samples
    );
    println!("  mcp-sts exchange         {}", summary(&mut at_sts));
    println!("  MCP server (kit)         {}", summary(&mut at_kit));
    println!("  downstream API verifier  {}", summary(&mut at_api));
    Ok(())
}
