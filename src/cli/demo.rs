//! `mcp-sts demo [--keep-running]`: the whole flow in one process, narrated.

use std::process::ExitCode;

use mcp_sts::demo::story::{self, Narrator};
use mcp_sts::demo::users::{ALICE, BOB, CAROL};
use mcp_sts::demo::{Demo, DemoOutcome};
use serde_json::Value;

/// Start everything, play the story, print the audit trails; optionally stay up.
pub async fn run(keep_running: bool) -> anyhow::Result<ExitCode> {
    let demo = Demo::start().await?;
    let narrator = Narrator::stdout();
    narrator.say("mcp-sts demo: a development IdP, mcp-sts, an MCP server and three APIs on loopback");
    print_urls(&demo);
    let outcome = story::play(&demo, narrator).await?;
    print_trails(&outcome);
    if keep_running {
        print_examples(&demo)?;
        println!("\nEverything stays up; press Ctrl-C to stop.");
        tokio::signal::ctrl_c().await?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_urls(demo: &Demo) {
    let u = &demo.urls;
    println!("  development IdP   {}", u.idp);
    println!("  mcp-sts           {}", u.sts);
    println!("  MCP server        {}   (client orders-mcp)", u.mcp);
    println!("  orders-api        {}   (on_behalf_of)", u.orders);
    println!("  inventory-api     {}   (service_identity)", u.inventory);
    println!("  legacy-api        {}   (restricted_user)", u.legacy);
}

fn text(event: &Value, field: &str) -> String {
    event.get(field).and_then(Value::as_str).unwrap_or("-").to_owned()
}

fn print_trails(outcome: &DemoOutcome) {
    println!("\n== Audit trail of the downstream services ==");
    for entry in &outcome.trail {
        println!("  [{:<13}] {}  (mode {})", entry.service, entry.line, entry.mode);
    }
    println!("\n== Audit trail of mcp-sts ==");
    for event in &outcome.sts_audit {
        let actor = event
            .get("actor_chain")
            .and_then(Value::as_array)
            .and_then(|chain| chain.first())
            .and_then(Value::as_str)
            .unwrap_or("-");
        let reason = event
            .get("reason")
            .and_then(Value::as_str)
            .map(|r| format!("  reason={r}"));
        let target = event
            .get("target")
            .and_then(Value::as_str)
            .map(|t| format!("  target={t}"));
        println!(
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
    println!("\nDelegation modes seen downstream: {}", modes.join(", "));
}

/// Write fresh user tokens to the demo directory and print commands that use them.
fn print_examples(demo: &Demo) -> anyhow::Result<()> {
    let now = demo.now();
    for user in [ALICE, BOB, CAROL] {
        std::fs::write(
            demo.dir().join(format!("{}.jwt", user.name)),
            user.token(&demo.idp, now)?,
        )?;
    }
    let secret_file = demo.dir().join("orders-mcp.secret");
    std::fs::write(&secret_file, demo.orders_mcp_secret.expose())?;
    let dir = demo.dir().display();
    let sts = &demo.urls.sts;
    println!("\n== Try it ==");
    println!("User tokens (valid one hour) are in {dir}/{{alice,bob,carol}}.jwt");
    println!("\n# Exchange alice's token for an orders-api token:");
    println!(
        "mcp-sts token exchange --sts {sts} --client-id orders-mcp --client-secret-file {} \\\n    --subject-token \"$(cat {dir}/alice.jwt)\" --audience orders-api --scope orders:read",
        secret_file.display()
    );
    println!("\n# The same with curl:");
    println!(
        "curl -s -u \"orders-mcp:$(cat {})\" {sts}/token \\\n    -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange \\\n    -d subject_token_type=urn:ietf:params:oauth:token-type:access_token \\\n    -d subject_token=\"$(cat {dir}/alice.jwt)\" -d audience=orders-api",
        secret_file.display()
    );
    println!("\n# Verify a minted token as orders-api would:");
    println!(
        "mcp-sts token verify <ACCESS_TOKEN> --jwks-uri {sts}/.well-known/jwks.json --issuer {sts} --audience orders-api"
    );
    println!("\n# Call the orders API with it:");
    println!(
        "curl -s -H \"Authorization: Bearer <ACCESS_TOKEN>\" {}/orders/42",
        demo.urls.orders
    );
    println!("\n# Public keys and metadata:");
    println!("curl -s {sts}/.well-known/jwks.json");
    println!("curl -s {sts}/.well-known/oauth-authorization-server");
    Ok(())
}
