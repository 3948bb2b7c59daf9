//! `mcp-sts store status|adopt|migrate --config PATH`: the operator's view of the Redis
//! revocation store, the decision that takes it back into service after it lost its
//! data (docs/deployment.md, "When the store lost its data"), and the rewrite of
//! offboardings written by earlier releases (docs/deployment.md, "Upgrading").

use mcp_sts::say;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use mcp_sts::audit::{AuditEvent, AuditLog};
use mcp_sts::config::{Config, RevocationBackend};
use mcp_sts::revocation::redis::{Reading, RedisStore, Trust};
use mcp_sts::server::{redis_options, redis_topology};
use mcp_sts::telemetry::LogFormat;
use mcp_sts_contract::clock::{Clock, SystemClock};

/// Store actions.
#[derive(Debug, Subcommand)]
pub enum StoreAction {
    /// Show the store marker, the eviction policy and how writes are acknowledged.
    Status {
        /// Configuration file.
        #[arg(long, default_value = "config/mcp-sts.toml")]
        config: PathBuf,
    },
    /// Take the store as it is now into service after a loss: write a new store
    /// marker (audited). Every replica serves again within seconds.
    Adopt {
        /// Configuration file.
        #[arg(long, default_value = "config/mcp-sts.toml")]
        config: PathBuf,
        /// Who is acting (audited); defaults to $USER.
        #[arg(long, env = "USER", default_value = "admin")]
        by: String,
        /// Why (audited).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Rewrite subject, agent and client revocations written by earlier releases (which
    /// gave them an end) to hold until reinstated. Every start does it too; run it once
    /// the last replica of an earlier release is gone. Safe to repeat.
    Migrate {
        /// Configuration file.
        #[arg(long, default_value = "config/mcp-sts.toml")]
        config: PathBuf,
    },
}

/// How long the commands wait for Redis.
const REACH: Duration = Duration::from_secs(3);

/// Run a store action.
pub async fn run(action: StoreAction) -> anyhow::Result<ExitCode> {
    let path = match &action {
        StoreAction::Status { config } | StoreAction::Adopt { config, .. } | StoreAction::Migrate { config } => {
            config.clone()
        }
    };
    let config = Config::load(&path)?;
    let _logs = mcp_sts::telemetry::init(config.audit.file.as_deref(), LogFormat::Text)?;
    if config.revocation.backend != RevocationBackend::Redis {
        eprintln!(
            "mcp-sts store: {} uses the {:?} backend; these commands are for Redis{}",
            path.display(),
            config.revocation.backend,
            if matches!(action, StoreAction::Migrate { .. }) {
                " (mcp-sts rewrites an embedded file itself whenever it starts)"
            } else {
                ""
            }
        );
        return Ok(ExitCode::FAILURE);
    }
    let mut options = redis_options(&config);
    options.watch = false;
    let store = RedisStore::open(redis_topology(&config.revocation), options).await?;
    store
        .wait_ready(REACH)
        .await
        .with_context(|| format!("cannot reach Redis at {}", store.describe()))?;
    match action {
        StoreAction::Status { .. } => status(&store).await,
        StoreAction::Adopt { by, reason, .. } => adopt(&store, &by, &reason).await,
        StoreAction::Migrate { .. } => migrate(&store).await,
    }
}

async fn migrate(store: &RedisStore) -> anyhow::Result<ExitCode> {
    if let Trust::Untrusted(why) = store.check_trust().await? {
        eprintln!("NOT DONE: the revocation store is not trusted: {}", why.describe());
        return Ok(ExitCode::FAILURE);
    }
    match mcp_sts::revocation::upgrade::pass(store).await {
        Ok(done) => {
            say!(
                "{} offboarding(s) written by an earlier release now hold until reinstated \
                 ({} changed meanwhile and left as they are, {} unreadable) in {}",
                done.kept,
                done.changed_meanwhile,
                done.unreadable,
                store.describe()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!(
                "NOT DONE: {error}. Entries not yet rewritten still hold until reinstated for this \
                 release, but Redis may drop them when their old expiry comes; run this again (it is safe)."
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn status(store: &RedisStore) -> anyhow::Result<ExitCode> {
    let mut sound = true;
    say!("store:             {}", store.describe());
    let (reading, known) = store.marker().await?;
    let known = known.unwrap_or_else(|| "none recorded here".into());
    match reading {
        Reading::Present(marker) => {
            say!(
                "store marker:      {} ({:?}); known here: {known}",
                marker.id,
                marker.origin
            );
        }
        Reading::Missing => {
            say!("store marker:      MISSING; known here: {known}");
            sound = false;
        }
        Reading::Damaged(why) => {
            say!("store marker:      DAMAGED: {why}; known here: {known}");
            sound = false;
        }
    }
    match store.eviction_policies().await? {
        Ok(policies) => {
            for (node, policy) in policies {
                let verdict = if policy == "noeviction" {
                    "ok"
                } else {
                    "MAY EVICT REVOCATIONS"
                };
                sound &= policy == "noeviction";
                say!("eviction policy:   {node}: {policy} ({verdict})");
            }
        }
        Err(refused) => say!("eviction policy:   unknown, CONFIG refused: {refused}"),
    }
    let policy = store.ack_policy();
    for master in store.durability().await? {
        say!(
            "acknowledged by:   {}: {} replica(s) within {} ms{}{}",
            master.address,
            master.required,
            policy.replication_timeout.as_millis(),
            match (policy.fsync, master.waitaof) {
                (true, true) => ", and the master's fsync (WAITAOF)",
                (true, false) => ", fsync_acked set but WAITAOF unsupported (Redis < 7.2)",
                (false, _) => "",
            },
            master.persistence.map(|p| format!("; {p}")).unwrap_or_default()
        );
    }
    Ok(if sound { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn adopt(store: &RedisStore, by: &str, reason: &str) -> anyhow::Result<ExitCode> {
    let (before, _) = store.marker().await?;
    let marker = store.adopt().await?;
    let was = match before {
        Reading::Present(old) => format!("replacing marker {}", old.id),
        Reading::Missing => "the marker was missing".to_owned(),
        Reading::Damaged(why) => format!("the marker was damaged: {why}"),
    };
    let mut event = AuditEvent::new("revocation_store_adopted", SystemClock.now());
    event.decision = "allow";
    event.client_id = Some(by.to_owned());
    event.target = Some(format!("store {}", store.describe()));
    event.detail = Some(format!("new store marker {}; {was}; {reason}", marker.id));
    AuditLog::new().emit(&event);
    eprintln!(
        "adopted the revocation store at {} with marker {} ({was}).\n\
         Every replica serves again within seconds. Revocations lost with the data are NOT back:\n\
         revoke again whoever must stay refused (docs/deployment.md).",
        store.describe(),
        marker.id
    );
    Ok(ExitCode::SUCCESS)
}
