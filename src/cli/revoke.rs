//! `mcp-sts revoke`: the admin API from the command line.
//!
//! The admin credential is read from an environment variable (never a flag, which
//! would land in shell history and process listings).

use mcp_sts::say;
use std::process::ExitCode;

use anyhow::Context;
use clap::{ArgGroup, Args};
use serde_json::{Value, json};

/// Revoke, list or reinstate subjects, sessions, agents, clients or tokens.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").args(["subject", "session", "agent", "client", "token"])))]
#[command(group(ArgGroup::new("action").args(["list", "reinstate"])))]
pub struct RevokeArgs {
    /// A user to offboard (`sub`): refused as subject and as actor until reinstated.
    #[arg(long)]
    subject: Option<String>,
    /// A session id (`sid`).
    #[arg(long)]
    session: Option<String>,
    /// An agent (an actor's `sub`).
    #[arg(long)]
    agent: Option<String>,
    /// A calling client (`client_id`).
    #[arg(long)]
    client: Option<String>,
    /// One minted token by its `jti`.
    #[arg(long)]
    token: Option<String>,
    /// With --subject or --session: the trusted issuer whose user or session it is;
    /// the revocation then covers that issuer's users only (without it, every
    /// issuer's). With --reinstate, names which of the revocations to remove.
    #[arg(long)]
    issuer: Option<String>,
    /// Let the revocation lapse after this many seconds (without it, subjects, agents
    /// and clients stay revoked until reinstated).
    #[arg(long)]
    expires_in: Option<u64>,
    /// Why (recorded and audited).
    #[arg(long, default_value = "")]
    reason: String,
    /// Who is acting (recorded and audited); defaults to $USER.
    #[arg(long, env = "USER", default_value = "admin")]
    by: String,
    /// List revocations in force instead.
    #[arg(long)]
    list: bool,
    /// Remove the named revocation instead of adding it.
    #[arg(long)]
    reinstate: bool,
    /// Base URL of mcp-sts.
    #[arg(long, env = "MCP_STS_URL", default_value = "http://127.0.0.1:8400")]
    url: String,
    /// Environment variable holding the admin credential.
    #[arg(long, default_value = "MCP_STS_ADMIN_TOKEN")]
    admin_token_env: String,
}

impl RevokeArgs {
    fn target(&self) -> Option<(&'static str, &str)> {
        [
            ("subject", &self.subject),
            ("session", &self.session),
            ("agent", &self.agent),
            ("client", &self.client),
            ("token", &self.token),
        ]
        .into_iter()
        .find_map(|(kind, value)| value.as_deref().map(|v| (kind, v)))
    }
}

/// Largest answer read from the admin API (a long revocation list fits).
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// What a 503 means for the operator, in plain words.
fn explain(status: u16, description: &str, read_only: bool) -> Option<&'static str> {
    if status != 503 {
        return None;
    }
    if description.starts_with("not confirmed by a replica") && !read_only {
        return Some(
            "NOT CONFIRMED: the Redis master recorded the revocation, but no replica confirmed it in time,\n\
             so a failover could still lose it. It is in force now; run the same command again until it\n\
             succeeds (retrying is safe), and check the replicas (`mcp-sts store status`).",
        );
    }
    if description.contains("adopts it") {
        return Some(
            "STORE NOT TRUSTED: the revocation store lost its data or may evict it; mcp-sts refuses every\n\
             decision until an operator acts (docs/deployment.md, `mcp-sts store status`).",
        );
    }
    Some(
        "NOT ACKNOWLEDGED: the revocation store did not answer in time; the revocation may or may not be\nrecorded. Retry (retrying is safe).",
    )
}

/// Run the command.
pub async fn run(args: RevokeArgs) -> anyhow::Result<ExitCode> {
    let credential = std::env::var(&args.admin_token_env)
        .with_context(|| format!("set {} to the admin credential", args.admin_token_env))?;
    let base = format!("{}/admin/revocations", args.url.trim_end_matches('/'));
    let http = mcp_sts_contract::fetch::http_client(std::time::Duration::from_secs(5))?;
    let request = if args.list {
        http.get(&base)
    } else {
        let (kind, value) = args
            .target()
            .context("name what to revoke: --subject, --session, --agent, --client or --token")?;
        if args.issuer.is_some() && !matches!(kind, "subject" | "session") {
            anyhow::bail!("--issuer applies only to --subject and --session");
        }
        if args.reinstate {
            let encode = |s: &str| {
                form_urlencoded::byte_serialize(s.as_bytes())
                    .collect::<String>()
                    .replace('+', "%20")
            };
            let query = args
                .issuer
                .as_deref()
                .map(|issuer| format!("?issuer={}", encode(issuer)))
                .unwrap_or_default();
            http.delete(format!("{base}/{kind}/{}{query}", encode(value)))
        } else {
            let mut body = json!({"kind": kind, "value": value, "reason": args.reason, "revoked_by": args.by});
            if let Some(map) = body.as_object_mut() {
                if let Some(issuer) = &args.issuer {
                    map.insert("issuer".into(), json!(issuer));
                }
                if let Some(seconds) = args.expires_in {
                    map.insert("expires_in".into(), json!(seconds));
                }
            }
            http.post(&base).json(&body)
        }
    };
    // Read like every outbound answer: streamed under a cap, within a deadline.
    let limits = mcp_sts_contract::fetch::FetchLimits {
        timeout: std::time::Duration::from_secs(30),
        max_bytes: MAX_ANSWER_BYTES,
    };
    let answer = mcp_sts_contract::fetch::fetch(request.bearer_auth(credential), limits)
        .await
        .context("cannot reach mcp-sts")?;
    let status = answer.status;
    let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    if !status.is_success() {
        let description = body
            .get("error_description")
            .and_then(Value::as_str)
            .unwrap_or("request failed");
        eprintln!("mcp-sts revoke: HTTP {}: {description}", status.as_u16());
        if let Some(meaning) = explain(status.as_u16(), description, args.list || args.reinstate) {
            eprintln!("{meaning}");
        }
        return Ok(ExitCode::FAILURE);
    }
    if args.list {
        let entries = body
            .get("revocations")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        say!(
            "{:<8} {:<40} {:<32} {:<20} {:<20} {:<16} reason",
            "kind",
            "value",
            "covers",
            "revoked_at",
            "expires_at",
            "by"
        );
        for e in entries {
            let field = |k: &str| {
                e.get(k)
                    .map(|v| v.as_str().map(String::from).unwrap_or_else(|| v.to_string()))
                    .unwrap_or_default()
            };
            let time = |k: &str| {
                e.get(k)
                    .and_then(Value::as_u64)
                    .map(super::time::rfc3339)
                    .unwrap_or_default()
            };
            let covers = e
                .get("covers")
                .and_then(Value::as_str)
                .unwrap_or("-")
                .trim_start_matches("issuer ")
                .to_owned();
            say!(
                "{:<8} {:<40} {:<32} {:<20} {:<20} {:<16} {}",
                field("kind"),
                field("value"),
                covers,
                time("revoked_at"),
                time("expires_at"),
                field("revoked_by"),
                field("reason")
            );
        }
    } else {
        say!("{}", serde_json::to_string_pretty(&super::time::readable_times(body))?);
    }
    Ok(ExitCode::SUCCESS)
}
