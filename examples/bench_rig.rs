//! Benchmark rig for `scripts/bench`: runs the release `mcp-sts` binary against a real
//! `redis-server`, drives `POST /token` with independent load generators (wrk for
//! saturation, oha for a fixed rate), and prints one table: exchanges/s, latency
//! percentiles, errors and the server's memory, next to the crypto ceiling (ES256
//! verify + sign on two threads) measured in the same run.
//!
//! Loopback only; every phase is bounded in time.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use mcp_sts::config::SigningAlgorithm;
use mcp_sts::keys::SigningKey;
use mcp_sts_contract::clock::{Clock, SystemClock};
use mcp_sts_demo::dev_idp::DevIdp;
use serde_json::{Value, json};

#[derive(Debug, Parser)]
struct Args {
    /// Path of the mcp-sts binary.
    #[arg(long)]
    bin: PathBuf,
    /// The redis URL mcp-sts uses for revocation.
    #[arg(long)]
    redis: String,
    /// Seconds of each load phase.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Keep-alive connections of the load generators.
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// Users re-exchanging in the warm phase.
    #[arg(long, default_value_t = 3000)]
    warm_users: usize,
    /// Distinct subject tokens prepared for the cold phase.
    #[arg(long, default_value_t = 200_000)]
    cold_tokens: usize,
    /// Where the token files and the wrk script go.
    #[arg(long)]
    work_dir: PathBuf,
}

const SECRET: &str = "bench-secret";

/// One load phase's figures, as wrk's `done` hook or oha report them.
#[derive(Debug, Default)]
struct Phase {
    name: String,
    requests: u64,
    seconds: f64,
    errors: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    rss_kib: u64,
}

impl Phase {
    fn rate(&self) -> f64 {
        if self.seconds > 0.0 {
            self.requests as f64 / self.seconds
        } else {
            0.0
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    std::fs::create_dir_all(&args.work_dir)?;
    let idp = runtime.block_on(DevIdp::start_local())?;
    let (mut child, url) = start_server(&args, &idp, &runtime, 100_000)?;
    let jwks = runtime.block_on(async { reqwest::get(idp.jwks_uri()).await?.json::<Value>().await })?;
    let outcome = run(&args, &idp, &url, &child, jwks, &runtime);
    let _ = child.kill();
    let _ = child.wait();
    outcome
}

fn run(
    args: &Args,
    idp: &DevIdp,
    url: &str,
    child: &Child,
    jwks: Value,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<()> {
    let now = SystemClock.now();
    let cold = args.work_dir.join("cold.tokens");
    let warm = args.work_dir.join("warm.tokens");
    write_tokens(idp, &cold, args.cold_tokens, now, |i| {
        format!("cold-user-{i}@example.com")
    })?;
    write_tokens(idp, &warm, args.warm_users, now, |i| {
        format!("warm-user-{i}@example.com")
    })?;
    let script = args.work_dir.join("exchange.lua");
    std::fs::write(&script, WRK_SCRIPT)?;

    let ceiling = crypto_ceiling(idp, jwks, now, Duration::from_secs(3))?;
    let pid = child.id();
    let mut phases = Vec::new();
    // Warm-up so connection setup and first-fetch costs are not measured.
    wrk(args, url, &script, &warm, 3, "warm-up", pid)?;
    phases.push(wrk(
        args,
        url,
        &script,
        &cold,
        args.seconds,
        "cold (every subject token new)",
        pid,
    )?);
    phases.push(wrk(
        args,
        url,
        &script,
        &warm,
        args.seconds,
        "warm (3,000 users re-exchanging)",
        pid,
    )?);
    let best = phases.iter().map(Phase::rate).fold(0.0, f64::max);
    let warm_rate = phases.last().map(Phase::rate).unwrap_or(0.0);
    phases.push(oha_fixed_rate(args, url, &warm, warm_rate / 2.0, pid)?);
    // The same warm load on a second server that remembers no verified token.
    let (mut forgetful, forgetful_url) = start_server(args, idp, runtime, 0)?;
    let forgetful_pid = forgetful.id();
    let outcome = wrk(args, &forgetful_url, &script, &warm, 3, "warm-up", forgetful_pid).and_then(|_| {
        wrk(
            args,
            &forgetful_url,
            &script,
            &warm,
            args.seconds,
            "warm, verified_token_cache = 0",
            forgetful_pid,
        )
    });
    let _ = forgetful.kill();
    let _ = forgetful.wait();
    phases.push(outcome?);

    println!();
    println!("crypto ceiling (ES256 verify + sign, 2 threads): {ceiling:.0}/s");
    println!(
        "| phase | exchanges/s | % of ceiling | p50 | p99 | max | errors | mcp-sts RSS |\n|---|---|---|---|---|---|---|---|"
    );
    for phase in &phases {
        println!(
            "| {} | {:.0} | {:.0}% | {:.2} ms | {:.2} ms | {:.2} ms | {} | {:.1} MiB |",
            phase.name,
            phase.rate(),
            100.0 * phase.rate() / ceiling,
            phase.p50_ms,
            phase.p99_ms,
            phase.max_ms,
            phase.errors,
            phase.rss_kib as f64 / 1024.0
        );
    }
    println!("best saturated rate: {best:.0}/s ({:.0} per vCPU)", best / 2.0);
    Ok(())
}

/// Start `mcp-sts serve` remembering at most `verified_token_cache` verified tokens.
fn start_server(
    args: &Args,
    idp: &DevIdp,
    runtime: &tokio::runtime::Runtime,
    verified_token_cache: usize,
) -> anyhow::Result<(Child, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let url = format!("http://127.0.0.1:{port}");
    let dir = &args.work_dir;
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nissuer = \"{url}\"\nverified_token_cache = {verified_token_cache}\n[keys]\ndir = \"{keys}\"\n\
         [revocation]\nbackend = \"redis\"\nurl = \"{redis}\"\n\
         [audit]\nfile = \"{audit}\"\n\
         [[issuers]]\nissuer = \"{iss}\"\naudience = \"mcp-sts\"\n\
         [[clients]]\nclient_id = \"orders-mcp\"\nsecret_sha256 = \"{hash}\"\naudiences = [\"orders-api\"]\n\
         [[audiences]]\nid = \"orders-api\"\nmode = \"on_behalf_of\"\nscopes = [\"orders:read\", \"orders:write\"]\n\
         [audiences.role_scopes]\ndeveloper = [\"orders:read\"]\n",
        keys = dir.join("keys").display(),
        redis = args.redis,
        audit = dir.join("audit.jsonl").display(),
        iss = idp.issuer(),
        hash = mcp_sts::client_auth::hash_secret(SECRET),
    );
    let config_path = dir.join(format!("mcp-sts-{port}.toml"));
    std::fs::write(&config_path, config)?;
    let child = Command::new(&args.bin)
        .args(["serve", "--config"])
        .arg(&config_path)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting mcp-sts")?;
    let ready = runtime.block_on(async {
        let http = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(r) = http.get(format!("{url}/readyz")).send().await
                && r.status() == 200
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    });
    anyhow::ensure!(ready, "mcp-sts did not become ready");
    Ok((child, url))
}

/// One subject token per line, each for a distinct user with its own `jti`.
fn write_tokens(
    idp: &DevIdp,
    path: &Path,
    count: usize,
    now: u64,
    user: impl Fn(usize) -> String,
) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for i in 0..count {
        let token = idp.user_token(
            &user(i),
            "mcp-sts",
            &["developer"],
            now,
            3600,
            &json!({"sid": format!("s-{i}")}),
        )?;
        writeln!(out, "{token}")?;
    }
    out.flush()?;
    Ok(())
}

/// What two cores can do of the exchange's unavoidable work: verify the subject
/// token's ES256 signature and sign the new token, on two threads at once.
fn crypto_ceiling(idp: &DevIdp, jwks: Value, now: u64, run: Duration) -> anyhow::Result<f64> {
    let (key, _) = SigningKey::generate(SigningAlgorithm::ES256, now)?;
    let key = std::sync::Arc::new(key);
    let token = idp.user_token("alice@example.com", "mcp-sts", &["developer"], now, 3600, &json!({}))?;
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks)?;
    let jwk = set.keys.first().context("the IdP publishes a key")?;
    let decoding = std::sync::Arc::new(jsonwebtoken::DecodingKey::from_jwk(jwk)?);
    let claims = json!({"iss": "https://sts", "sub": "alice@example.com", "aud": "orders-api", "exp": now + 300,
        "iat": now, "jti": "0123456789abcdef0123456789abcdef", "scope": "orders:read", "sid": "s",
        "txn": "4bf92f3577b34da6a3ce929d0e0e4736", "client_id": "orders-mcp", "delegation_mode": "on_behalf_of",
        "act": {"sub": "orders-mcp"}});
    let deadline = Instant::now() + run;
    let started = Instant::now();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (key, decoding, token, claims) = (key.clone(), decoding.clone(), token.clone(), claims.clone());
            std::thread::spawn(move || {
                let mut done = 0u64;
                let (message, signature) = token.rsplit_once('.').unwrap_or_default();
                while Instant::now() < deadline {
                    let verified = jsonwebtoken::crypto::verify(
                        signature,
                        message.as_bytes(),
                        &decoding,
                        jsonwebtoken::Algorithm::ES256,
                    )
                    .unwrap_or(false);
                    let signed = key.sign_jwt("at+jwt", &claims).is_ok();
                    done += u64::from(verified && signed);
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for thread in threads {
        total += thread.join().map_err(|_| anyhow::anyhow!("ceiling thread failed"))?;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn wrk(
    args: &Args,
    url: &str,
    script: &Path,
    tokens: &Path,
    seconds: u64,
    name: &str,
    pid: u32,
) -> anyhow::Result<Phase> {
    eprintln!("== {name}: wrk, {} connections, {seconds} s", args.connections);
    let output = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{}", args.connections),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(script)
        .arg(url)
        .arg("--")
        .arg(tokens)
        .arg(SECRET)
        .output()
        .context("running wrk")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("{\"requests\""))
        .with_context(|| format!("wrk printed no summary: {stdout}"))?;
    let summary: Value = serde_json::from_str(line)?;
    let us = |field: &str| summary[field].as_f64().unwrap_or(0.0) / 1000.0;
    Ok(Phase {
        name: name.to_owned(),
        requests: summary["requests"].as_u64().unwrap_or(0),
        seconds: summary["duration_us"].as_f64().unwrap_or(0.0) / 1e6,
        errors: summary["errors"].as_u64().unwrap_or(0),
        p50_ms: us("p50_us"),
        p99_ms: us("p99_us"),
        max_ms: us("max_us"),
        rss_kib: rss_kib(pid),
    })
}

/// Latency at a fixed rate: oha holds `rate` requests per second; one warm user.
fn oha_fixed_rate(args: &Args, url: &str, warm: &Path, rate: f64, pid: u32) -> anyhow::Result<Phase> {
    let rate = rate.max(1.0).round();
    eprintln!("== fixed rate: oha at {rate}/s, {} s", args.seconds);
    let token = std::fs::read_to_string(warm)?
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    let body = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token={token}\
         &subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token&audience=orders-api\
         &client_id=orders-mcp&client_secret={SECRET}"
    );
    let output = Command::new("oha")
        .args([
            "--no-tui",
            "--output-format",
            "json",
            "--wait-ongoing-requests-after-deadline",
            "-z",
            &format!("{}s", args.seconds),
        ])
        .args([
            "-c",
            &args.connections.to_string(),
            "-q",
            &rate.to_string(),
            "-m",
            "POST",
        ])
        .args(["-H", "content-type: application/x-www-form-urlencoded", "-d", &body])
        .arg(format!("{url}/token"))
        .output()
        .context("running oha")?;
    let report: Value = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("oha printed no JSON: {}", String::from_utf8_lossy(&output.stderr)))?;
    let ms = |v: &Value| v.as_f64().unwrap_or(0.0) * 1000.0;
    let ok = report["statusCodeDistribution"]["200"].as_u64().unwrap_or(0);
    let all: u64 = report["statusCodeDistribution"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    let failed = report["errorDistribution"].as_object();
    if let Some(kinds) = failed.filter(|m| !m.is_empty()) {
        eprintln!("oha errors: {kinds:?}");
    }
    let errors = all.saturating_sub(ok) + failed.map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
    Ok(Phase {
        name: format!("fixed rate {rate}/s (half the warm maximum)"),
        requests: ok,
        seconds: report["summary"]["total"].as_f64().unwrap_or(0.0),
        errors,
        p50_ms: ms(&report["latencyPercentiles"]["p50"]),
        p99_ms: ms(&report["latencyPercentiles"]["p99"]),
        max_ms: ms(&report["summary"]["slowest"]),
        rss_kib: rss_kib(pid),
    })
}

/// wrk script: each thread walks its share of the token file, one exchange per token,
/// and the main state prints one JSON summary line.
const WRK_SCRIPT: &str = r#"
local counter = 0
local threads = {}
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local tokens = {}
local i = 0
local body_head = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token&audience=orders-api&client_id=orders-mcp"
local secret = ""
function init(args)
  secret = args[2]
  local n = 0
  for line in io.lines(args[1]) do
    if n % 2 == id then table.insert(tokens, line) end
    n = n + 1
  end
end

function request()
  i = i + 1
  local token = tokens[((i - 1) % #tokens) + 1]
  return wrk.format("POST", "/token", {["Content-Type"] = "application/x-www-form-urlencoded"},
    body_head .. "&client_secret=" .. secret .. "&subject_token=" .. token)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"#;
