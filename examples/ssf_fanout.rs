//! What 100 subscribed Shared Signals streams cost the transmitter: the release
//! `mcp-sts` binary on a real `redis-server`, one receiver client per stream.
//!
//! Phases: admin revocations with no stream (baseline), then with every stream
//! subscribed (the revocation and one SET per stream are written in one script, so the
//! `201` means every queue holds it); after each, all receivers poll at once until each
//! holds the new SET (revoke -> every receiver has it in hand). Then the idle cost of
//! every receiver polling once a second (the verifier's default), and the saturated
//! rate of empty polls. Prints medians, mcp-sts CPU time and memory. Run it against an
//! empty Redis database: streams other runs left behind would receive events too.
//!
//! `cargo run --release --example ssf_fanout -- --bin target/release/mcp-sts --redis redis://127.0.0.1:6379/0`

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use mcp_sts::client_auth::hash_secret;
use mcp_sts_demo::dev_idp::DevIdp;
use serde_json::{Value, json};

#[derive(Debug, Parser)]
struct Args {
    /// Path of the mcp-sts binary.
    #[arg(long)]
    bin: PathBuf,
    /// The redis URL mcp-sts uses for revocation and the event queues.
    #[arg(long)]
    redis: String,
    /// Subscribed streams (one receiver client each).
    #[arg(long, default_value_t = 100)]
    streams: usize,
    /// Revocations per phase.
    #[arg(long, default_value_t = 50)]
    revocations: usize,
    /// Seconds of the idle (one poll per second per stream) and saturated poll phases.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

const ADMIN: &str = "fanout-admin";
const SECRET: &str = "receiver-secret";

/// CPU seconds (user + system) the process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let ticks = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime is the 12th, stime the 13th.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (field(11) + field(12)) / ticks
}

/// Resident memory now and at its peak, in MiB.
fn memory_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let read = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (read("VmRSS:"), read("VmHWM:"))
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

struct Server {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_server(args: &Args, idp: &DevIdp) -> anyhow::Result<Server> {
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let url = format!("http://127.0.0.1:{port}");
    let mut config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nissuer = \"{url}\"\n[keys]\ndir = \"{keys}\"\n\
         [revocation]\nbackend = \"redis\"\nurl = \"{redis}\"\n[admin]\ntoken_sha256 = \"{admin}\"\n\
         [audit]\nfile = \"{audit}\"\n\
         [[issuers]]\nissuer = \"{iss}\"\naudience = \"mcp-sts\"\n",
        keys = dir.path().join("keys").display(),
        redis = args.redis,
        admin = hash_secret(ADMIN),
        audit = dir.path().join("audit.jsonl").display(),
        iss = idp.issuer(),
    );
    let hash = hash_secret(SECRET);
    for i in 0..args.streams {
        config.push_str(&format!(
            "[[clients]]\nclient_id = \"svc-{i}\"\nsecret_sha256 = \"{hash}\"\naudiences = []\n"
        ));
    }
    let path = dir.path().join("mcp-sts.toml");
    std::fs::write(&path, config)?;
    let child = Command::new(&args.bin)
        .args(["serve", "--config"])
        .arg(&path)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting mcp-sts")?;
    let server = Server { child, url, _dir: dir };
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(r) = http.get(format!("{}/readyz", server.url)).send().await
            && r.status() == 200
        {
            return Ok(server);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("mcp-sts did not become ready")
}

/// One receiver: its client id and its poll endpoint.
struct Receiver {
    client: String,
    poll: String,
}

/// The jti and size of each SET the poll returned.
async fn poll(http: &reqwest::Client, r: &Receiver, ack: &[String]) -> anyhow::Result<Vec<(String, usize)>> {
    let answer: Value = http
        .post(&r.poll)
        .basic_auth(&r.client, Some(SECRET))
        .json(&json!({"ack": ack, "maxEvents": 100, "returnImmediately": true}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let sets = answer["sets"].as_object().cloned().unwrap_or_default();
    Ok(sets
        .into_iter()
        .map(|(jti, set)| (jti, set.as_str().map_or(0, str::len)))
        .collect())
}

async fn revoke(http: &reqwest::Client, url: &str, value: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let answer = http
        .post(format!("{url}/admin/revocations"))
        .bearer_auth(ADMIN)
        .json(&json!({"kind": "session", "value": value, "reason": "bench"}))
        .send()
        .await?;
    anyhow::ensure!(
        answer.status().as_u16() == 201,
        "revocation answered {}",
        answer.status()
    );
    Ok(started.elapsed())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let idp = DevIdp::start_local().await?;
    let server = start_server(&args, &idp).await?;
    let (url, pid) = (server.url.clone(), server.child.id());
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.streams)
        .build()?;

    // Baseline: no stream subscribed.
    let mut baseline = Vec::new();
    for i in 0..args.revocations {
        baseline.push(revoke(&http, &url, &format!("base-{i}")).await?);
    }

    let (rss_before, _) = memory_mib(pid);
    let mut receivers = Vec::new();
    for i in 0..args.streams {
        let client = format!("svc-{i}");
        let stream: Value = http
            .post(format!("{url}/ssf/streams"))
            .basic_auth(&client, Some(SECRET))
            .json(&json!({
                "delivery": {"method": "urn:ietf:rfc:8936"},
                "events_requested": ["https://schemas.openid.net/secevent/caep/event-type/session-revoked"],
                "description": "bench",
            }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let poll = stream["delivery"]["endpoint_url"]
            .as_str()
            .context("no poll endpoint")?
            .to_owned();
        receivers.push(Receiver { client, poll });
    }
    let receivers = Arc::new(receivers);

    // Fan-out: each revocation, then every receiver polls (acknowledging) until it has it.
    let cpu_before = cpu_seconds(pid);
    let (mut stored, mut in_hand) = (Vec::new(), Vec::new());
    let set_bytes = Arc::new(AtomicU64::new(0));
    for i in 0..args.revocations {
        let started = Instant::now();
        stored.push(revoke(&http, &url, &format!("fan-{i}")).await?);
        let mut polls = Vec::new();
        for index in 0..receivers.len() {
            let (http, receivers, set_bytes) = (http.clone(), receivers.clone(), set_bytes.clone());
            polls.push(tokio::spawn(async move {
                let r = &receivers[index];
                let got = poll(&http, r, &[]).await?;
                anyhow::ensure!(got.len() == 1, "{} holds {} SETs, not 1", r.client, got.len());
                set_bytes.fetch_max(got.iter().map(|(_, n)| *n as u64).sum(), Ordering::Relaxed);
                let ack: Vec<String> = got.into_iter().map(|(jti, _)| jti).collect();
                poll(&http, r, &ack).await.map(|_| ())
            }));
        }
        for p in polls {
            p.await??;
        }
        in_hand.push(started.elapsed());
    }
    let fan_cpu = cpu_seconds(pid) - cpu_before;

    // Idle: every receiver polls once a second, nothing to deliver.
    let seconds = Duration::from_secs(args.seconds);
    let cpu_before = cpu_seconds(pid);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for index in 0..receivers.len() {
        let (http, receivers) = (http.clone(), receivers.clone());
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            while started.elapsed() < seconds {
                tick.tick().await;
                poll(&http, &receivers[index], &[]).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let idle_cpu = (cpu_seconds(pid) - cpu_before) / started.elapsed().as_secs_f64();

    // Saturated: every receiver polls back to back.
    let count = Arc::new(AtomicU64::new(0));
    let cpu_before = cpu_seconds(pid);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for index in 0..receivers.len() {
        let (http, receivers, count) = (http.clone(), receivers.clone(), count.clone());
        tasks.push(tokio::spawn(async move {
            while started.elapsed() < seconds {
                poll(&http, &receivers[index], &[]).await?;
                count.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let saturated_cpu = (cpu_seconds(pid) - cpu_before) / elapsed;
    let polls_per_second = count.load(Ordering::Relaxed) as f64 / elapsed;
    let (rss, peak) = memory_mib(pid);
    // Leave the store as found: an abandoned stream would keep every later event.
    for r in receivers.iter() {
        let id = r.poll.rsplit('/').next().unwrap_or_default();
        http.delete(format!("{url}/ssf/streams?stream_id={id}"))
            .basic_auth(&r.client, Some(SECRET))
            .send()
            .await?
            .error_for_status()?;
    }

    println!(
        "streams: {}, revocations per phase: {}, SET size {} bytes",
        args.streams,
        args.revocations,
        set_bytes.load(Ordering::Relaxed)
    );
    println!(
        "admin revocation answered (revocation + SETs stored), median: no stream {:.2} ms, {} streams {:.2} ms",
        median(baseline).as_secs_f64() * 1e3,
        args.streams,
        median(stored).as_secs_f64() * 1e3
    );
    println!(
        "revoke -> all {} receivers hold the SET (one poll each, then ack), median: {:.1} ms",
        args.streams,
        median(in_hand).as_secs_f64() * 1e3
    );
    println!(
        "mcp-sts CPU per revocation incl. {} polls + {} acks: {:.1} ms",
        args.streams,
        args.streams,
        fan_cpu * 1e3 / args.revocations as f64
    );
    println!(
        "idle, {} receivers polling every 1 s: mcp-sts CPU {:.1}% of one core",
        args.streams,
        idle_cpu * 100.0
    );
    println!(
        "saturated empty polls: {polls_per_second:.0}/s, mcp-sts CPU {:.0}% of one core",
        saturated_cpu * 100.0
    );
    println!("mcp-sts RSS: {rss_before:.1} MiB before streams, {rss:.1} MiB after (peak {peak:.1} MiB)");
    Ok(())
}
