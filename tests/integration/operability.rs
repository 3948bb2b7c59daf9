//! What the real binary tells an operator: a store outage as one WARN with its cause
//! and a count when it ends, the audit file's folder made like the store's, command
//! output that survives a reader going away (`| head`).

use std::process::Command;
use std::time::{Duration, Instant};

use crate::operations::{Serving, example, write_config};
use crate::support::redis_server::{RedisServer, free_port};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mcp-sts");

#[tokio::test]
async fn a_store_outage_is_one_warning_with_its_cause_and_a_count_when_it_ends() {
    let mut redis = RedisServer::start();
    redis.stop();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port, "backend = \"redis\"");
    // The issuer's keys come from a real local IdP, so readiness waits on the store only.
    let idp = mcp_sts_demo::dev_idp::DevIdp::start_local().await.unwrap();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("redis://127.0.0.1:6379/0", &redis.url())
        .replacen(
            "roles_claim = \"roles\"",
            &format!("roles_claim = \"roles\"\njwks_uri = \"{}\"", idp.jwks_uri()),
            1,
        );
    std::fs::write(&config, text).unwrap();
    let serving = Serving::start(&config, port, &["--log-format", "json"]);
    serving.line_with("mcp-sts listening");
    let http = reqwest::Client::new();
    for _ in 0..5 {
        let ready = http.get(format!("{}/readyz", serving.url)).send().await.unwrap();
        assert_eq!(ready.status(), 503);
    }
    redis.start_again();
    // Poll until the store answers: the interval of a wait on a real external process.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = http.get(format!("{}/readyz", serving.url)).send().await.unwrap();
        if ready.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the store never answered again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lines = serving.lines_until("revocation store answers again");
    let failing: Vec<Value> = lines
        .iter()
        .filter(|l| l.contains("revocation store failing"))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(failing.len(), 1, "one warning for the whole outage: {lines:#?}");
    assert_eq!(failing[0]["level"], "WARN");
    let cause = failing[0]["fields"]["cause"].as_str().unwrap().to_lowercase();
    assert!(
        cause.contains("connection refused"),
        "the cause, not only a timeout: {cause}"
    );
    let recovered: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(recovered["level"], "INFO");
    let failed_calls = recovered["fields"]["failed_calls"].as_u64().unwrap();
    assert!(failed_calls >= 5, "every refused readiness probe counted: {recovered}");
}

#[test]
fn the_audit_files_folder_is_created_and_a_bad_one_is_named_on_its_own_line() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port, "backend = \"memory\"");
    let with_audit = |file: &str| {
        let text = example()
            .replace("listen = \"127.0.0.1:8400\"", &format!("listen = \"127.0.0.1:{port}\""))
            .replace(
                "backend = \"embedded\"         # one node: a file on disk. Replicas: \"redis\".",
                "backend = \"memory\"",
            );
        std::fs::write(&config, format!("{text}\n[audit]\nfile = \"{file}\"\n")).unwrap();
    };
    with_audit("logs/audit/mcp-sts.jsonl");
    let serving = Serving::start(&config, port, &[]);
    serving.line_with("mcp-sts listening");
    assert!(dir.path().join("logs/audit/mcp-sts.jsonl").is_file());
    drop(serving);

    // A folder that cannot be made (a file is in the way): the key, the path, one line.
    std::fs::write(dir.path().join("blocked"), "").unwrap();
    with_audit("blocked/audit.jsonl");
    let out = Command::new(BIN)
        .args(["serve", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("audit.file") && err.contains("blocked/audit.jsonl"),
        "{err}"
    );
    assert!(err.ends_with('\n'), "the error ends its line: {err:?}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn printing_commands_end_quietly_when_the_reader_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), 8400, "backend = \"memory\"");
    let config = config.to_str().unwrap();
    let commands: [&[&str]; 5] = [
        &["keys", "generate", "--config", config],
        &["keys", "rotate", "--now", "--config", config],
        &["keys", "list", "--config", config],
        &["config", "check", "--config", config],
        &["secret", "generate"],
    ];
    for args in commands {
        // The read end is closed before the command starts: its first write fails.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(BIN)
            .args(args)
            .current_dir(dir.path())
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(
            out.status.code(),
            Some(141),
            "{args:?} ends like a tool killed by SIGPIPE: {err}"
        );
    }
}

#[test]
fn the_demo_prints_commands_that_reuse_this_build_and_work() {
    use std::io::{BufRead, BufReader};
    let mut demo = Command::new(BIN)
        .args(["demo", "--keep-running"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = demo.stdout.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut printed = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("the demo did not finish its story:\n{}", printed.join("\n")));
        let done = line.contains("Everything stays up");
        printed.push(line);
        if done {
            break;
        }
    }
    let text = printed.join("\n");
    // This test's binary is a debug build: the examples run in that profile, and the
    // CLI commands name the very binary that runs.
    assert!(!text.contains("--release"), "{text}");
    assert!(
        text.contains("cargo run -p mcp-sts-downstream --example downstream_api"),
        "{text}"
    );
    assert!(
        text.contains("cargo run -p mcp-sts-downstream --features mcp-server --example mcp_server"),
        "{text}"
    );
    let bin = std::fs::canonicalize(BIN).unwrap();
    let bin = bin.display().to_string();
    assert!(text.contains(&format!("{bin} token exchange --sts ")), "{text}");
    assert!(text.contains(&format!("{bin} token verify <ACCESS_TOKEN>")), "{text}");

    // The printed exchange runs as printed.
    let start = printed
        .iter()
        .position(|l| l.starts_with(&format!("{bin} token exchange")))
        .unwrap();
    let command = format!("{}\n{}", printed[start], printed[start + 1]);
    let out = Command::new("bash").args(["-c", &command]).output().unwrap();
    let _ = demo.kill();
    let _ = demo.wait();
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["scope"], "orders:read");
    assert_eq!(answer["token_type"], "Bearer");
}
