//! `mcp-sts demo [--keep-running]`: the whole flow in one process, narrated.

use mcp_sts::demo_host::InProcess;
use mcp_sts::say;
use std::process::ExitCode;

use mcp_sts_demo::examples::{NOTES_API_RESOURCE, NOTES_MCP_RESOURCE};
use mcp_sts_demo::story::{self, Narrator};
use mcp_sts_demo::users::{AGENT, ALICE, BOB, CAROL};
use mcp_sts_demo::{Demo, DemoOutcome};
use serde_json::Value;

/// Start everything, play the story, print the audit trails; optionally stay up.
pub async fn run(keep_running: bool) -> anyhow::Result<ExitCode> {
    let demo = Demo::start(&InProcess).await?;
    let narrator = Narrator::printing(|line| say!("{line}"));
    narrator.say("mcp-sts demo: a development IdP, mcp-sts, an MCP server and three APIs on loopback");
    print_urls(&demo);
    let outcome = story::play(&demo, narrator).await?;
    print_trails(&outcome);
    if keep_running {
        print_examples(&demo)?;
        say!("\nEverything stays up; press Ctrl-C to stop.");
        tokio::signal::ctrl_c().await?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_urls(demo: &Demo) {
    let u = &demo.urls;
    say!("  development IdP   {}", u.idp);
    say!("  mcp-sts           {}", u.sts);
    say!("  MCP server        {}   (client orders-mcp)", u.mcp);
    say!("  orders-api        {}   (on_behalf_of)", u.orders);
    say!("  inventory-api     {}   (service_identity)", u.inventory);
    say!("  legacy-api        {}   (restricted_user)", u.legacy);
}

fn text(event: &Value, field: &str) -> String {
    event.get(field).and_then(Value::as_str).unwrap_or("-").to_owned()
}

fn print_trails(outcome: &DemoOutcome) {
    say!("\n== Audit trail of the downstream services ==");
    for entry in &outcome.trail {
        say!("  [{:<13}] {}  (mode {})", entry.service, entry.line, entry.mode);
    }
    say!("\n== Audit trail of mcp-sts ==");
    for event in &outcome.sts_audit {
        // Current actor first: the MCP server, then the agent it acts for.
        let chain: Vec<&str> = event
            .get("actor_chain")
            .and_then(Value::as_array)
            .map(|chain| chain.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let actor = if chain.is_empty() {
            "-".to_owned()
        } else {
            chain.join(">")
        };
        let reason = event
            .get("reason")
            .and_then(Value::as_str)
            .map(|r| format!("  reason={r}"));
        let target = event
            .get("target")
            .and_then(Value::as_str)
            .map(|t| format!("  target={t}"));
        say!(
            "  {:<14} {:<5} client={} sub={} actor={} audience={} mode={} scope={:?}{}{}",
            text(event, "event"),
            text(event, "decision"),
            text(event, "client_id"),
            text(event, "sub"),
            actor,
            text(event, "audience"),
            text(event, "mode"),
            text(event, "scope"),
            reason.unwrap_or_default(),
            target.unwrap_or_default(),
        );
    }
    let modes: Vec<String> = outcome.modes_used().into_iter().collect();
    say!("\nDelegation modes seen downstream: {}", modes.join(", "));
}

/// Write fresh tokens and the example client key to the demo directory (0600), and
/// print commands that use them.
fn print_examples(demo: &Demo) -> anyhow::Result<()> {
    let now = demo.now();
    let dir = demo.dir();
    for user in [ALICE, BOB, CAROL] {
        write_private(
            &dir.join(format!("{}.jwt", user.name)),
            &user.token_for(&demo.idp, &demo.urls.mcp, "", now)?,
        )?;
        let scope = if user.roles.contains(&"customer") {
            "notes:read"
        } else {
            "notes:read notes:write"
        };
        write_private(
            &dir.join(format!("{}.notes-mcp.jwt", user.name)),
            &user.token_for(&demo.idp, NOTES_MCP_RESOURCE, scope, now)?,
        )?;
    }
    let secret_file = dir.join("orders-mcp.secret");
    write_private(&secret_file, demo.orders_mcp_secret.expose())?;
    let key_file = dir.join("notes-mcp.key.pem");
    write_private(&key_file, demo.notes_mcp_key.expose())?;
    let notes_api_secret = dir.join("notes-api.secret");
    write_private(&notes_api_secret, demo.notes_api_secret.expose())?;
    let dir = dir.display();
    let (mcp_sts, cargo_run) = reuse_this_build();
    let sts = &demo.urls.sts;
    let idp = &demo.urls.idp;
    say!("\n== Try it ==");
    say!(
        "The agent's access tokens for alice, bob and carol (valid one hour, aud = the MCP server and mcp-sts,\nclient_id = {AGENT}) are in {dir}/{{alice,bob,carol}}.jwt;\nthe story offboarded alice and carol, so theirs are refused: the commands below use bob's"
    );
    say!("\n# Exchange bob's token for an orders-api token, as the MCP server does:");
    say!(
        "{mcp_sts} token exchange --sts {sts} --client-id orders-mcp --client-secret-file {} \\\n    --subject-token \"$(cat {dir}/bob.jwt)\" --audience orders-api --scope orders:read",
        secret_file.display()
    );
    say!("\n# The same with curl:");
    say!(
        "curl -s -u \"orders-mcp:$(cat {})\" {sts}/token \\\n    -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange \\\n    -d subject_token_type=urn:ietf:params:oauth:token-type:access_token \\\n    -d subject_token=\"$(cat {dir}/bob.jwt)\" -d audience=orders-api",
        secret_file.display()
    );
    say!("\n# Verify a minted token as orders-api would (repeat --audience to accept several names):");
    say!(
        "{mcp_sts} token verify <ACCESS_TOKEN> --jwks-uri {sts}/.well-known/jwks.json --issuer {sts} --audience orders-api"
    );
    say!("\n# Call the orders API with it:");
    say!(
        "curl -s -H \"Authorization: Bearer <ACCESS_TOKEN>\" {}/orders/42",
        demo.urls.orders
    );
    say!("\n# The MCP server's protected resource metadata (RFC 9728), and its challenge without a token:");
    say!(
        "curl -s {}",
        demo.urls
            .mcp
            .replacen("/mcp", "/.well-known/oauth-protected-resource/mcp", 1)
    );
    say!("curl -si -X POST {} | grep -i www-authenticate", demo.urls.mcp);
    say!("\n# Public keys and metadata:");
    say!("curl -s {sts}/.well-known/jwks.json");
    say!("curl -s {sts}/.well-known/oauth-authorization-server");
    say!("\n== The MCP server kit's examples, against this demo ==");
    say!("# A downstream API using the verifier (notes-api, {NOTES_API_RESOURCE}):");
    say!(
        "MCP_STS_URL={sts} NOTES_API_SECRET_FILE={} {cargo_run} -p mcp-sts-downstream --example downstream_api",
        notes_api_secret.display()
    );
    say!("# An MCP server protected by the kit ({NOTES_MCP_RESOURCE}, private_key_jwt as notes-mcp):");
    say!(
        "MCP_STS_URL={sts} IDP_ISSUER={idp} NOTES_MCP_KEY_FILE={} {cargo_run} -p mcp-sts-downstream --features mcp-server --example mcp_server",
        key_file.display()
    );
    say!("# Then, as the agent, with bob's token for it ({dir}/{{alice,bob,carol}}.notes-mcp.jwt):");
    say!("{}", mcp_curl(NOTES_MCP_RESOURCE, &format!("{dir}/bob.notes-mcp.jwt")));
    Ok(())
}

/// How the printed commands reach this build: the `mcp-sts` binary that is running
/// (not one on `PATH`, which may be another release or none), and `cargo run` with
/// this build's profile, so an example compiles against the dependencies already
/// built instead of starting a second cold build in the other profile.
fn reuse_this_build() -> (String, &'static str) {
    let binary = std::env::current_exe()
        .map(|path| path.display().to_string())
        .unwrap_or_else(|_| "mcp-sts".to_owned());
    let cargo_run = if cfg!(debug_assertions) {
        "cargo run"
    } else {
        "cargo run --release"
    };
    (binary, cargo_run)
}

/// A streamable-HTTP MCP session in three curl calls: initialize (keeping the session
/// id), the initialized notification, one tool call.
fn mcp_curl(url: &str, token_file: &str) -> String {
    let headers = format!(
        "-H \"Authorization: Bearer $(cat {token_file})\" -H 'Accept: application/json, text/event-stream' -H 'Content-Type: application/json'"
    );
    format!(
        "S=$(curl -si {headers} {url} -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{{\"protocolVersion\":\"2025-11-25\",\"capabilities\":{{}},\"clientInfo\":{{\"name\":\"curl\",\"version\":\"1\"}}}}}}' | tr -d '\\r' | sed -n 's/^mcp-session-id: //Ip')\n\
curl -s {headers} -H \"Mcp-Session-Id: $S\" {url} -d '{{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}}'\n\
curl -s {headers} -H \"Mcp-Session-Id: $S\" {url} -d '{{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{{\"name\":\"add_note\",\"arguments\":{{\"text\":\"hello\"}}}}}}'"
    )
}

/// Write `contents` readable by the owner only: these are tokens and keys.
fn write_private(path: &std::path::Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}
