//! Slow clients and the server's edges, over real sockets: a client stalled mid-head
//! or mid-body, one that connects and says nothing, an idle kept-alive connection,
//! more connections than the cap, a SIGTERM with an upload stalled (the real binary);
//! and requests refused before any endpoint (too large, wrong method, unknown path,
//! malformed head) audited and counted like every other refusal.

use std::io::{BufRead, BufReader, Read, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::arena::*;
use crate::support::attack::*;
use crate::support::redis_server::free_port;
use crate::support::sts::*;

const GROUP: &str = "slow clients";
const EDGE_GROUP: &str = "refused at the edge";

/// Short deadlines, so a test sees them pass; the assertions allow far more.
const EDGES: &str = "header_read_timeout_ms = 500\nbody_read_timeout_ms = 500\nkeep_alive_timeout_ms = 800\n";
/// How long a test waits for a deadline of 0.5-0.8 s to close a connection.
const CLOSED_WITHIN: Duration = Duration::from_secs(5);

async fn with_edges(extra: &str) -> TestSts {
    TestSts::start_opts(Options {
        admin: true,
        server_extra: format!("{EDGES}{extra}"),
        ..Options::default()
    })
    .await
}

async fn connect(sts: &TestSts) -> TcpStream {
    let stream = TcpStream::connect(sts.url.trim_start_matches("http://")).await.unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Read until the server closes the connection (end of stream or reset) within
/// `deadline`; what it sent.
async fn until_closed(stream: &mut TcpStream, deadline: Duration) -> Result<Vec<u8>, String> {
    let mut seen = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    };
    match tokio::time::timeout(deadline, read).await {
        Ok(()) => Ok(seen),
        Err(_) => Err(format!("the connection was still open after {deadline:?}")),
    }
}

/// The reason of the last audit event of `event`, if any.
fn last_reason(sts: &TestSts, event: &str) -> Option<String> {
    sts.audit_events()
        .iter()
        .rev()
        .find(|e| e["event"] == event)
        .and_then(|e| e["reason"].as_str().map(String::from))
}

fn audited_as(sts: &TestSts, reason: &str) -> Outcome {
    match last_reason(sts, "request") {
        Some(r) if r == reason => Ok(()),
        other => Err(format!("audited as {other:?}, expected {reason}")),
    }
}

/// The same, for an audit line the server may write just after the socket closes:
/// other tasks are let run until it shows, for at most `CLOSED_WITHIN`.
async fn audited_soon(sts: &TestSts, reason: &str) -> Outcome {
    let started = Instant::now();
    loop {
        let outcome = audited_as(sts, reason);
        if outcome.is_ok() || started.elapsed() > CLOSED_WITHIN {
            return outcome;
        }
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn stalled_heads_bodies_and_idle_connections_are_closed_at_their_deadlines() {
    let sts = with_edges("").await;
    let mut verdicts = Verdicts::new(GROUP);

    let mut stalled = connect(&sts).await;
    stalled
        .write_all(b"POST /token HTTP/1.1\r\nhost: x\r\ncontent-le")
        .await
        .unwrap();
    let outcome = until_closed(&mut stalled, CLOSED_WITHIN)
        .await
        .and_then(|_| audited_as(&sts, "invalid_request:request.header_timeout"));
    verdicts.record("header/a_client_stalled_mid_head_is_closed_and_audited", outcome);

    let mut silent = connect(&sts).await;
    verdicts.record(
        "header/a_client_that_connects_and_says_nothing_is_closed",
        until_closed(&mut silent, CLOSED_WITHIN).await.map(|_| ()),
    );

    let alice = sts.user_token("alice", &["developer"]);
    let body = form(&[
        ("grant_type", EXCHANGE),
        ("subject_token", &alice),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", "orders-api"),
    ]);
    let mut upload = connect(&sts).await;
    let head = format!(
        "POST /token HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\n\
         authorization: {}\r\ncontent-length: {}\r\n\r\n",
        basic_header("orders-mcp", ORDERS_MCP_SECRET),
        body.len()
    );
    upload.write_all(head.as_bytes()).await.unwrap();
    upload.write_all(&body.as_bytes()[..10]).await.unwrap();
    let outcome = until_closed(&mut upload, CLOSED_WITHIN).await.and_then(|answer| {
        let answer = String::from_utf8_lossy(&answer);
        if !answer.starts_with("HTTP/1.1 408") || !answer.contains("invalid_request") {
            return Err(format!("answered {}", clip(&answer)));
        }
        audited_as(&sts, "invalid_request:request.body_timeout")
    });
    verdicts.record("body/a_client_stalled_mid_body_gets_408_and_is_closed", outcome);

    let mut kept = connect(&sts).await;
    kept.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    let answered = kept.read_exact(&mut first).await.is_ok() && first.starts_with(b"HTTP/1.1 200");
    let outcome = if answered {
        until_closed(&mut kept, CLOSED_WITHIN).await.map(|_| ())
    } else {
        Err("the first request was not answered".into())
    };
    verdicts.record("keep_alive/an_idle_kept_alive_connection_is_closed", outcome);

    verdicts.record(
        "control/an_exchange_after_all_that_is_served",
        minted(&sts.exchange(&alice, &[("audience", "orders-api")]).await).map(|_| ()),
    );
    verdicts.finish();
}

#[tokio::test]
async fn connections_past_the_cap_wait_for_one_to_close() {
    // Heads may take long here, so held connections stay held.
    let sts = TestSts::start_opts(Options {
        server_extra: "max_connections = 3\nheader_read_timeout_ms = 60000\n".into(),
        ..Options::default()
    })
    .await;
    let mut verdicts = Verdicts::new(GROUP);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect(&sts).await);
    }
    let mut fourth = connect(&sts).await;
    fourth
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    let early = tokio::time::timeout(Duration::from_secs(1), fourth.read_exact(&mut first)).await;
    verdicts.record(
        "cap/a_connection_past_the_cap_is_not_served",
        match early {
            Err(_) => Ok(()),
            Ok(_) => Err(format!(
                "served while 3 of 3 connections were held: {}",
                String::from_utf8_lossy(&first)
            )),
        },
    );
    drop(held.pop());
    let late = tokio::time::timeout(CLOSED_WITHIN, fourth.read_exact(&mut first)).await;
    verdicts.record(
        "cap/it_is_served_once_one_closes",
        match late {
            Ok(Ok(_)) if first.starts_with(b"HTTP/1.1 200") => Ok(()),
            other => Err(format!("{other:?}: {}", String::from_utf8_lossy(&first))),
        },
    );
    verdicts.finish();
}

/// A request head with a body still to come.
async fn slow_request(sts: &TestSts, body: &str) -> TcpStream {
    let address = sts.url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let head = format!(
        "POST /token HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/x-www-form-urlencoded\r\n\
         authorization: {}\r\ncontent-length: {}\r\n\r\n",
        basic_header("orders-mcp", ORDERS_MCP_SECRET),
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

#[tokio::test]
async fn slow_clients_do_not_hold_up_others() {
    let arena = Arena::start().await;
    let sts = &arena.sts;
    let mut verdicts = Verdicts::new(GROUP);
    let alice = arena.user("alice", &["developer"]);
    let body = form(&[
        ("grant_type", EXCHANGE),
        ("subject_token", &alice),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", "orders-api"),
    ]);

    // Fifty clients stall mid-body and ten mid-head while others are served.
    let mut stalled = Vec::new();
    for _ in 0..50 {
        let mut stream = slow_request(sts, &body).await;
        stream.write_all(&body.as_bytes()[..10]).await.unwrap();
        stalled.push(stream);
    }
    for _ in 0..10 {
        let mut stream = TcpStream::connect(sts.url.trim_start_matches("http://")).await.unwrap();
        stream
            .write_all(b"POST /token HTTP/1.1\r\nhost: x\r\ncontent-le")
            .await
            .unwrap();
        stalled.push(stream);
    }
    let served = tokio::time::timeout(Duration::from_secs(5), arena.obo(&alice)).await;
    verdicts.record(
        "stalled_bodies_and_heads_do_not_block_an_exchange",
        match served {
            Ok(reply) => minted(&reply).map(|_| ()),
            Err(_) => Err("an exchange waited more than 5 s behind stalled clients".into()),
        },
    );

    // One client sends its body a byte at a time while others are served.
    let mut trickle = slow_request(sts, &body).await;
    let trickling = async {
        for byte in body.as_bytes() {
            trickle.write_all(&[*byte]).await.unwrap();
            trickle.flush().await.unwrap();
            tokio::task::yield_now().await;
        }
    };
    let others = async {
        let started = Instant::now();
        for _ in 0..20 {
            let reply = arena.obo(&alice).await;
            if reply.status != 200 {
                return Err(format!("an exchange got {}", reply.status));
            }
        }
        if started.elapsed() > Duration::from_secs(5) {
            return Err(format!(
                "20 exchanges took {:?} beside a trickling client",
                started.elapsed()
            ));
        }
        Ok(())
    };
    let ((), outcome) = tokio::join!(trickling, others);
    verdicts.record("a_body_sent_byte_by_byte_does_not_block_others", outcome);
    drop(stalled);
    verdicts.finish();
}

/// Send raw bytes as one request on a fresh connection; the answer until closed.
async fn raw(sts: &TestSts, request: &[u8]) -> String {
    let mut stream = connect(sts).await;
    // The server may answer (and close) before it has read everything.
    let _ = stream.write_all(request).await;
    let answer = until_closed(&mut stream, CLOSED_WITHIN).await.unwrap_or_default();
    String::from_utf8_lossy(&answer).into_owned()
}

/// The answer starts with `status`, carries the OAuth error shape with `code`, is
/// never cached, and was audited with `rule`.
fn refused_at_the_edge(sts: &TestSts, answer: &str, status: &str, code: &str, rule: &str) -> Outcome {
    if !answer.starts_with(&format!("HTTP/1.1 {status}")) {
        return Err(format!("answered {}", clip(answer)));
    }
    let lower = answer.to_ascii_lowercase();
    if !lower.contains("cache-control: no-store") {
        return Err("no Cache-Control: no-store".into());
    }
    if !answer.contains(&format!("\"error\":\"{code}\"")) {
        return Err(format!("no error {code}: {}", clip(answer)));
    }
    audited_as(sts, &format!("{code}:{rule}"))
}

#[tokio::test]
async fn requests_refused_before_any_endpoint_are_audited_and_counted() {
    let sts = with_edges("").await;
    let mut verdicts = Verdicts::new(EDGE_GROUP);

    let huge = "a".repeat(70 * 1024);
    let answer = raw(
        &sts,
        format!(
            "POST /token HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{huge}",
            huge.len()
        )
        .as_bytes(),
    )
    .await;
    verdicts.record(
        "a_body_larger_than_allowed_is_413",
        refused_at_the_edge(&sts, &answer, "413", "invalid_request", "request.too_large"),
    );

    let chunked = format!(
        "POST /token HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{huge}\r\n0\r\n\r\n",
        huge.len()
    );
    let answer = raw(&sts, chunked.as_bytes()).await;
    verdicts.record(
        "a_chunked_body_larger_than_allowed_is_413",
        refused_at_the_edge(&sts, &answer, "413", "invalid_request", "request.too_large"),
    );

    let answer = raw(&sts, b"GET /token HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await;
    verdicts.record(
        "a_wrong_method_is_405_with_allow",
        refused_at_the_edge(&sts, &answer, "405", "invalid_request", "request.method_not_allowed").and_then(|()| {
            if answer.to_ascii_lowercase().contains("allow: post") {
                Ok(())
            } else {
                Err("405 without Allow".into())
            }
        }),
    );

    let token_in_path = sts.user_token("alice", &["developer"]);
    let answer = raw(
        &sts,
        format!("GET /oops/{token_in_path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    let leaked = sts
        .audit_events()
        .iter()
        .any(|e| e.to_string().contains(&token_in_path));
    verdicts.record(
        "an_unknown_path_is_404_and_its_path_never_logged",
        refused_at_the_edge(&sts, &answer, "404", "not_found", "request.unknown_path").and_then(|()| {
            if leaked {
                Err("the path (a token) reached the audit log".into())
            } else {
                Ok(())
            }
        }),
    );

    let answer = raw(
        &sts,
        b"DELETE /admin/revocations/subject/%FF HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    verdicts.record(
        "a_path_that_is_not_utf8_is_400",
        refused_at_the_edge(&sts, &answer, "400", "invalid_request", "request.malformed"),
    );

    let big_header = format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\nx-padding: {}\r\n\r\n",
        "p".repeat(600 * 1024)
    );
    let answer = raw(&sts, big_header.as_bytes()).await;
    let outcome = if answer.is_empty() || answer.starts_with("HTTP/1.1 431") {
        audited_soon(&sts, "invalid_request:request.head_too_large").await
    } else {
        Err(format!("answered {}", clip(&answer)))
    };
    verdicts.record("a_head_larger_than_hyper_reads_is_refused_and_audited", outcome);

    let metrics = reqwest::get(format!("{}/metrics", sts.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counted = |outcome: &str| {
        metrics
            .lines()
            .find(|l| {
                l.starts_with("mcp_sts_decisions_total") && l.contains("endpoint=\"request\"") && l.contains(outcome)
            })
            .map(String::from)
    };
    verdicts.record(
        "edge_refusals_are_counted",
        match (counted("outcome=\"invalid_request\""), counted("outcome=\"not_found\"")) {
            (Some(_), Some(_)) => Ok(()),
            other => Err(format!("decision counters: {other:?}")),
        },
    );
    verdicts.finish();
}

/// The binary on `port` with `config`, its stderr lines collected.
struct Serving {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Serving {
    fn start(config: &std::path::Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-sts"))
            .args(["serve", "--config", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self { child, lines }
    }

    fn line_with(&self, needle: &str, within: Duration) -> Result<String, String> {
        let deadline = Instant::now() + within;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) if line.contains(needle) => return Ok(line),
                Ok(_) => {}
                Err(_) => return Err(format!("no log line with {needle:?}")),
            }
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn sigterm_with_an_upload_stalled_exits_by_the_shutdown_deadline() {
    let mut verdicts = Verdicts::new(GROUP);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = std::fs::read_to_string("config/mcp-sts.toml")
        .unwrap()
        .replace("listen = \"127.0.0.1:8400\"", &format!("listen = \"127.0.0.1:{port}\""))
        .replace(
            "backend = \"embedded\"         # one node: a file on disk. Replicas: \"redis\".",
            "backend = \"memory\"",
        )
        .replacen(
            "[server]\n",
            "[server]\nbody_read_timeout_ms = 120000\nshutdown_timeout_ms = 1000\n",
            1,
        );
    let config = dir.path().join("mcp-sts.toml");
    std::fs::write(&config, text).unwrap();
    let mut serving = Serving::start(&config);
    let outcome = (|| {
        serving.line_with("mcp-sts listening", Duration::from_secs(30))?;
        let mut upload = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        upload
            .write_all(
                b"POST /token HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\n\
                  content-length: 1000\r\n\r\ngrant_type=",
            )
            .map_err(|e| e.to_string())?;
        // A request answered on another connection: the stalled one has been read by now.
        let mut probe = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        probe
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .map_err(|e| e.to_string())?;
        let mut answer = String::new();
        probe.read_to_string(&mut answer).map_err(|e| e.to_string())?;
        let status = Command::new("kill")
            .args(["-TERM", &serving.child.id().to_string()])
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err("kill failed".into());
        }
        let signalled = Instant::now();
        serving.line_with("shutting down", Duration::from_secs(10))?;
        // 1 s deadline; 15 s leaves room for a loaded machine, far short of the 120 s body deadline.
        loop {
            if let Some(exit) = serving.child.try_wait().map_err(|e| e.to_string())? {
                if !exit.success() {
                    return Err(format!("exited with {exit}"));
                }
                break;
            }
            if signalled.elapsed() > Duration::from_secs(15) {
                return Err("still running 15 s after SIGTERM with a stalled upload".into());
            }
            // Poll interval of a deadline-bounded wait on the real child process.
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(upload);
        let abandoned = serving.line_with("abandoning", Duration::from_secs(1)).is_ok();
        if abandoned {
            Ok(())
        } else {
            Err("exited without saying it abandoned the stalled upload".to_owned())
        }
    })();
    verdicts.record("shutdown/sigterm_with_a_stalled_upload_exits_by_the_deadline", outcome);
    verdicts.finish();
}
