//! What acknowledged-means-durable costs: admin revocation latency (p50, p99) of the
//! release `mcp-sts` binary on real Redis set-ups it starts itself, one server with an
//! append-only file (no replica to wait for), Sentinel (master, replica, three
//! sentinels: `WAIT 1`) and a Cluster of three masters with a replica each (`WAIT 1`
//! on the key's master); then exchange throughput on the Sentinel set with the
//! acknowledgement machinery (`min_replicas_acked = "auto"`) and without (`0`), two
//! services on the same Redis, phases alternated in one run (reads never wait).
//!
//! `cargo run --release --example durable_acks -- --bin target/release/mcp-sts`

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use mcp_sts_contract::clock::{Clock, SystemClock};
use mcp_sts_demo::dev_idp::DevIdp;
use serde_json::json;

#[derive(Debug, Parser)]
struct Args {
    /// Path of the mcp-sts binary.
    #[arg(long)]
    bin: PathBuf,
    /// Admin revocations per topology.
    #[arg(long, default_value_t = 300)]
    revocations: usize,
    /// Seconds of each exchange phase (four phases).
    #[arg(long, default_value_t = 8)]
    seconds: u64,
    /// Concurrent exchange requests.
    #[arg(long, default_value_t = 16)]
    connections: usize,
}

const ADMIN: &str = "acks-admin";
const SECRET: &str = "orders-mcp-secret";

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One redis-server on a free port in its own folder.
struct Redis {
    port: u16,
    _proc: Proc,
}

impl Redis {
    fn start(dir: &Path, args: &[String]) -> anyhow::Result<Self> {
        Self::start_conf(dir, None, args)
    }

    /// With a configuration file first (a sentinel's).
    fn start_conf(dir: &Path, conf: Option<&Path>, args: &[String]) -> anyhow::Result<Self> {
        let port = free_port()?;
        let dir = dir.join(format!("redis-{port}"));
        std::fs::create_dir_all(&dir)?;
        let mut cmd = Command::new("redis-server");
        if let Some(conf) = conf {
            cmd.arg(conf);
        }
        cmd.current_dir(&dir)
            .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", ""])
            .args(["--logfile", "redis.log", "--daemonize", "no"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = Proc(cmd.spawn().context("run redis-server")?);
        let redis = Self { port, _proc: child };
        wait("redis answers", || {
            redis.query::<String>(&mut redis::cmd("PING")).is_ok()
        })?;
        Ok(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn query<T: redis::FromRedisValue>(&self, cmd: &mut redis::Cmd) -> anyhow::Result<T> {
        let mut conn = redis::Client::open(self.url())?.get_connection_with_timeout(Duration::from_secs(1))?;
        Ok(cmd.query(&mut conn)?)
    }

    fn info(&self, section: &str) -> String {
        self.query(redis::cmd("INFO").arg(section)).unwrap_or_default()
    }
}

/// Poll a real process's state until it holds (30 s at most).
fn wait(what: &str, mut ready: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        anyhow::ensure!(Instant::now() < deadline, "{what}: not within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn aof() -> Vec<String> {
    ["--appendonly", "yes", "--appendfsync", "always"]
        .map(String::from)
        .to_vec()
}

/// A master, its replica and three sentinels.
fn sentinel_set(dir: &Path) -> anyhow::Result<(Vec<Redis>, String)> {
    let master = Redis::start(dir, &aof())?;
    let mut replica_args = aof();
    replica_args.extend(["--replicaof".into(), "127.0.0.1".into(), master.port.to_string()]);
    let replica = Redis::start(dir, &replica_args)?;
    wait("replica in sync", || {
        replica.info("replication").contains("master_link_status:up")
    })?;
    let mut all = vec![master, replica];
    let mut urls = Vec::new();
    for i in 0..3 {
        let conf = dir.join(format!("sentinel-{i}.conf"));
        std::fs::write(
            &conf,
            format!(
                "sentinel monitor acks 127.0.0.1 {} 2\nsentinel down-after-milliseconds acks 1000\n",
                all[0].port
            ),
        )?;
        let sentinel = Redis::start_conf(dir, Some(&conf), &["--sentinel".into()])?;
        urls.push(format!("{:?}", sentinel.url()));
        all.push(sentinel);
    }
    wait("sentinels know the replica", || {
        all[2..].iter().all(|s| {
            s.query::<Vec<redis::Value>>(redis::cmd("SENTINEL").arg("REPLICAS").arg("acks"))
                .is_ok_and(|r| r.len() == 1)
        })
    })?;
    Ok((
        all,
        format!("sentinels = [{}]\nmaster_name = \"acks\"", urls.join(", ")),
    ))
}

/// Three masters with a replica each.
fn cluster(dir: &Path) -> anyhow::Result<(Vec<Redis>, String)> {
    let mut nodes = Vec::new();
    for _ in 0..6 {
        let mut args = aof();
        let bus = free_port()?;
        args.extend(
            [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "1000",
                "--cluster-port",
            ]
            .map(String::from),
        );
        args.push(bus.to_string());
        nodes.push(Redis::start(dir, &args)?);
    }
    let status = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)))
        .args(["--cluster-replicas", "1", "--cluster-yes"])
        .stdout(Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "redis-cli --cluster create failed");
    wait("cluster ok with three replicas in sync", || {
        let ok = nodes.iter().all(|n| {
            n.query::<String>(redis::cmd("CLUSTER").arg("INFO"))
                .is_ok_and(|i| i.contains("cluster_state:ok"))
        });
        let synced = nodes
            .iter()
            .filter(|n| n.info("replication").contains("master_link_status:up"))
            .count();
        ok && synced == 3
    })?;
    let urls: Vec<String> = nodes.iter().take(3).map(|n| format!("{:?}", n.url())).collect();
    Ok((nodes, format!("cluster = [{}]", urls.join(", "))))
}

/// A running mcp-sts.
struct Service {
    url: String,
    _proc: Proc,
}

async fn start_service(bin: &Path, dir: &Path, idp: &DevIdp, redis: &str, extra: &str) -> anyhow::Result<Service> {
    let port = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let own = dir.join(format!("sts-{port}"));
    std::fs::create_dir_all(&own)?;
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nissuer = \"{url}\"\n[keys]\ndir = \"{keys}\"\n\
         [revocation]\nbackend = \"redis\"\n{redis}\n{extra}\n[admin]\ntoken_sha256 = \"{admin}\"\n\
         [audit]\nfile = \"{audit}\"\n\
         [[issuers]]\nissuer = \"{iss}\"\naudience = \"mcp-sts\"\n\
         [[clients]]\nclient_id = \"orders-mcp\"\nsecret_sha256 = \"{hash}\"\naudiences = [\"orders-api\"]\n\
         [[audiences]]\nid = \"orders-api\"\nmode = \"on_behalf_of\"\nscopes = [\"orders:read\"]\n\
         [audiences.role_scopes]\ndeveloper = [\"orders:read\"]\n",
        keys = own.join("keys").display(),
        admin = mcp_sts::client_auth::hash_secret(ADMIN),
        audit = own.join("audit.jsonl").display(),
        iss = idp.issuer(),
        hash = mcp_sts::client_auth::hash_secret(SECRET),
    );
    let path = own.join("mcp-sts.toml");
    std::fs::write(&path, config)?;
    let child = Command::new(bin)
        .args(["serve", "--config"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start mcp-sts")?;
    let service = Service {
        url,
        _proc: Proc(child),
    };
    let http = reqwest::Client::new();
    for _ in 0..400 {
        if let Ok(r) = http.get(format!("{}/readyz", service.url)).send().await
            && r.status() == 200
        {
            return Ok(service);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("mcp-sts did not become ready on {redis}")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

/// Sequential admin revocations: p50 and p99 in ms.
async fn revocation_latency(http: &reqwest::Client, url: &str, count: usize, tag: &str) -> anyhow::Result<(f64, f64)> {
    let mut samples = Vec::with_capacity(count);
    for i in 0..count {
        let started = Instant::now();
        let answer = http
            .post(format!("{url}/admin/revocations"))
            .bearer_auth(ADMIN)
            .json(&json!({"kind": "subject", "value": format!("{tag}-{i}@example.com"), "reason": "bench"}))
            .send()
            .await?;
        anyhow::ensure!(answer.status() == 201, "revocation answered {}", answer.status());
        samples.push(started.elapsed());
    }
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Ok((ms(percentile(&samples, 0.5)), ms(percentile(&samples, 0.99))))
}

/// Exchanges per second over `seconds`, `connections` at a time.
async fn exchange_rate(
    http: &reqwest::Client,
    url: &str,
    tokens: &Arc<Vec<String>>,
    args: &Args,
) -> anyhow::Result<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(args.seconds);
    let mut workers = Vec::new();
    let step = args.connections;
    for w in 0..args.connections {
        let (http, url, tokens, done, failed) = (
            http.clone(),
            url.to_owned(),
            tokens.clone(),
            done.clone(),
            failed.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut i = w;
            while Instant::now() < until {
                let token = &tokens[i % tokens.len()];
                i += step;
                let body = form_urlencoded::Serializer::new(String::new())
                    .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange")
                    .append_pair("subject_token", token)
                    .append_pair("subject_token_type", "urn:ietf:params:oauth:token-type:access_token")
                    .append_pair("audience", "orders-api")
                    .finish();
                let answer = http
                    .post(format!("{url}/token"))
                    .basic_auth("orders-mcp", Some(SECRET))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await;
                match answer {
                    Ok(a) if a.status() == 200 => done.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    for w in workers {
        w.await?;
    }
    anyhow::ensure!(
        failed.load(Ordering::Relaxed) == 0,
        "{} exchanges failed",
        failed.load(Ordering::Relaxed)
    );
    Ok(done.load(Ordering::Relaxed) as f64 / args.seconds as f64)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let work = tempfile::tempdir()?;
    let dir = work.path();
    let idp = DevIdp::start_local().await?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;

    println!("| topology | acknowledged after | p50 ms | p99 ms |");
    println!("|---|---|---|---|");
    let single = Redis::start(dir, &aof())?;
    let service = start_service(&args.bin, dir, &idp, &format!("url = {:?}", single.url()), "").await?;
    let (p50, p99) = revocation_latency(&http, &service.url, args.revocations, "single").await?;
    println!("| one server, AOF always | the master (min_replicas 0) | {p50:.2} | {p99:.2} |");
    drop((service, single));

    let (cluster_nodes, cluster_config) = cluster(dir)?;
    let service = start_service(&args.bin, dir, &idp, &cluster_config, "").await?;
    let (p50, p99) = revocation_latency(&http, &service.url, args.revocations, "cluster").await?;
    println!("| Cluster, 3 masters with a replica each | WAIT 1 on the key's master | {p50:.2} | {p99:.2} |");
    drop((service, cluster_nodes));

    let (sentinel_nodes, sentinel_config) = sentinel_set(dir)?;
    let acked = start_service(&args.bin, dir, &idp, &sentinel_config, "").await?;
    let (p50, p99) = revocation_latency(&http, &acked.url, args.revocations, "sentinel").await?;
    println!("| Sentinel, master and replica | WAIT 1 | {p50:.2} | {p99:.2} |");
    let unacked = start_service(&args.bin, dir, &idp, &sentinel_config, "min_replicas_acked = 0").await?;
    let (p50, p99) = revocation_latency(&http, &unacked.url, args.revocations, "sentinel-0").await?;
    println!("| Sentinel, master and replica | the master (min_replicas_acked = 0) | {p50:.2} | {p99:.2} |");

    let now = SystemClock.now();
    let tokens: Vec<String> = (0..2000)
        .map(|i| {
            idp.user_token(
                &format!("user-{i}@example.com"),
                "mcp-sts",
                &["developer"],
                now,
                3600,
                &json!({"sid": format!("s-{i}")}),
            )
        })
        .collect::<Result<_, _>>()?;
    let tokens = Arc::new(tokens);
    let mut with = Vec::new();
    let mut without = Vec::new();
    for _ in 0..2 {
        with.push(exchange_rate(&http, &acked.url, &tokens, &args).await?);
        without.push(exchange_rate(&http, &unacked.url, &tokens, &args).await?);
    }
    let mean = |v: &[f64]| (v.iter().sum::<f64>()) / v.len() as f64;
    println!();
    println!(
        "exchanges/s on Sentinel, {} connections, {} s phases alternated: auto {:?} (mean {:.0}), 0 {:?} (mean {:.0}), ratio {:.3}",
        args.connections,
        args.seconds,
        with.iter().map(|r| r.round()).collect::<Vec<_>>(),
        mean(&with),
        without.iter().map(|r| r.round()).collect::<Vec<_>>(),
        mean(&without),
        mean(&with) / mean(&without)
    );
    drop((acked, unacked, sentinel_nodes));
    Ok(())
}
