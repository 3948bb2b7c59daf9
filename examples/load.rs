//! Load generator: starts a development IdP in this process and the real `mcp-sts`
//! binary as a child process, then runs concurrent token exchanges over loopback for a
//! fixed time and prints throughput and latency percentiles.
//!
//! With `--mode dpop` each worker holds its own DPoP key and every request carries a
//! fresh proof (RFC 9449), so each minted token is bound; `--mode dpop-nonce` also has
//! mcp-sts demand server nonces, which each worker follows (the nonce of the last answer,
//! one retry on `use_dpop_nonce`).
//!
//! `scripts/load` builds everything in release mode and runs it (optionally against a
//! redis-server it starts). Bounded in time and requests; loopback only.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use mcp_sts_contract::clock::{Clock, SystemClock};
use mcp_sts_demo::dev_idp::DevIdp;
use mcp_sts_downstream::client::DpopKey;
use serde_json::json;

#[derive(Debug, Parser)]
struct Args {
    /// Path of the mcp-sts binary.
    #[arg(long)]
    bin: String,
    /// `memory`, `embedded` or a redis URL.
    #[arg(long, default_value = "embedded")]
    backend: String,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Upper bound on requests, so a run always ends.
    #[arg(long, default_value_t = 2_000_000)]
    max_requests: usize,
    /// Write mcp-sts's `/metrics` at the end of the run to this file (what a dashboard
    /// scraping it would show).
    #[arg(long)]
    metrics_out: Option<std::path::PathBuf>,
    /// How tokens are asked for: bearer, or bound with a proof per request.
    #[arg(long, value_enum, default_value_t = Mode::Bearer)]
    mode: Mode,
}

/// How each request asks for its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// No proof: a bearer token.
    Bearer,
    /// A fresh DPoP proof by the worker's key on every request: a bound token.
    Dpop,
    /// The same, with mcp-sts demanding server nonces (`[dpop] nonce = true`).
    DpopNonce,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Bearer => "bearer",
            Mode::Dpop => "dpop",
            Mode::DpopNonce => "dpop-nonce",
        }
    }
}

/// One worker's DPoP state: its key and the last server nonce it was given.
struct Prover {
    key: DpopKey,
    nonce: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let idp = DevIdp::start_local().await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let url = format!("http://127.0.0.1:{port}");
    let secret = "load-secret";
    let revocation = match args.backend.as_str() {
        "memory" => "backend = \"memory\"".to_owned(),
        "embedded" => format!(
            "backend = \"embedded\"\npath = \"{}\"",
            dir.path().join("rev.db").display()
        ),
        redis => format!("backend = \"redis\"\nurl = \"{redis}\""),
    };
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nissuer = \"{url}\"\n[keys]\ndir = \"{keys}\"\n[revocation]\n{revocation}\n\
         [audit]\nfile = \"{audit}\"\n\
         [[issuers]]\nissuer = \"{iss}\"\naudience = \"mcp-sts\"\n\
         [[clients]]\nclient_id = \"orders-mcp\"\nsecret_sha256 = \"{hash}\"\naudiences = [\"orders-api\"]\n\
         [[audiences]]\nid = \"orders-api\"\nmode = \"on_behalf_of\"\nscopes = [\"orders:read\", \"orders:write\"]\n\
         [audiences.role_scopes]\ndeveloper = [\"orders:read\"]\n\
         [dpop]\nnonce = {nonce}\n",
        nonce = args.mode == Mode::DpopNonce,
        keys = dir.path().join("keys").display(),
        audit = dir.path().join("audit.jsonl").display(),
        iss = idp.issuer(),
        hash = mcp_sts::client_auth::hash_secret(secret),
    );
    let config_path = dir.path().join("mcp-sts.toml");
    std::fs::write(&config_path, config)?;
    let mut child = Command::new(&args.bin)
        .args(["serve", "--config"])
        .arg(&config_path)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let ready = Instant::now() + Duration::from_secs(15);
    while http
        .get(format!("{url}/readyz"))
        .send()
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        anyhow::ensure!(Instant::now() < ready, "mcp-sts did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let now = SystemClock.now();
    let subject = idp.user_token(
        "alice@example.com",
        "mcp-sts",
        &["developer"],
        now,
        3600,
        &json!({"sid": "s"}),
    )?;
    let body = Arc::new(
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                ("subject_token", subject.as_str()),
                ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
                ("audience", "orders-api"),
                ("client_id", "orders-mcp"),
                ("client_secret", secret),
            ])
            .finish(),
    );
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let per_task = args.max_requests / args.concurrency.max(1);
    let mut tasks = Vec::new();
    let token_endpoint = format!("{url}/token");
    for _ in 0..args.concurrency {
        let (http, body, token_endpoint) = (http.clone(), body.clone(), token_endpoint.clone());
        let mut prover = match args.mode {
            Mode::Bearer => None,
            Mode::Dpop | Mode::DpopNonce => Some(Prover {
                key: DpopKey::generate()?,
                nonce: None,
            }),
        };
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0usize;
            while Instant::now() < deadline && latencies.len() + failures < per_task {
                let t = Instant::now();
                // A nonce demanded (or renewed) by mcp-sts is followed once.
                let mut ok = false;
                for _attempt in 0..2 {
                    let mut request = http
                        .post(&token_endpoint)
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(body.as_str().to_owned());
                    if let Some(prover) = &prover {
                        let Ok(proof) = prover.key.proof(
                            "POST",
                            &token_endpoint,
                            SystemClock.now(),
                            None,
                            prover.nonce.as_deref(),
                        ) else {
                            break;
                        };
                        request = request.header("dpop", proof);
                    }
                    let Ok(response) = request.send().await else {
                        break;
                    };
                    let status = response.status();
                    if let Some(prover) = &mut prover
                        && let Some(nonce) = response.headers().get("dpop-nonce").and_then(|v| v.to_str().ok())
                    {
                        prover.nonce = Some(nonce.to_owned());
                    }
                    let answer = response.bytes().await;
                    if status == 200 {
                        // A bound token is what DPoP mode measures; anything else fails.
                        let bound = |a: &[u8]| a.windows(6).any(|w| w == b"\"DPoP\"");
                        ok = answer.is_ok_and(|a| prover.is_none() || bound(&a));
                        break;
                    }
                    let asked_for_nonce =
                        status == 400 && answer.is_ok_and(|a| a.windows(14).any(|w| w == b"use_dpop_nonce"));
                    if !asked_for_nonce {
                        break;
                    }
                }
                if ok {
                    latencies.push(t.elapsed());
                } else {
                    failures += 1;
                }
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    for task in tasks {
        let (l, f) = task.await?;
        latencies.extend(l);
        failures += f;
    }
    let elapsed = started.elapsed();
    if let Some(path) = &args.metrics_out {
        let scraped = http.get(format!("{url}/metrics")).send().await?.text().await?;
        std::fs::write(path, scraped)?;
    }
    let _ = child.kill();
    let _ = child.wait();
    latencies.sort();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(i).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(f64::NAN)
    };
    println!(
        "mode={} backend={} concurrency={} seconds={:.1} ok={} failed={} throughput={:.0}/s p50={:.2}ms p90={:.2}ms p99={:.2}ms",
        args.mode.name(),
        args.backend,
        args.concurrency,
        elapsed.as_secs_f64(),
        latencies.len(),
        failures,
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.90),
        pct(0.99)
    );
    Ok(())
}
