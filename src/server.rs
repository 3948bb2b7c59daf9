//! Starting the service: configuration in, a running server out.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use tokio::net::TcpListener;

use crate::audit::{AuditEvent, AuditLog};
use crate::config::{Config, RevocationBackend, RevocationConfig};
use crate::keys::{KeyDir, KeyRing, SharedKeyRing};
use crate::revocation::embedded::EmbeddedStore;
use crate::revocation::memory::MemoryStore;
use crate::revocation::redis::{Distrust, RedisOptions, RedisStore, RedisTopology, Trust};
use crate::revocation::{EventQueue, RevocationStore};
use crate::service::Sts;
use mcp_sts_contract::clock::Clock;
use mcp_sts_contract::fetch::http_client;

pub(crate) use crate::revocation::backend::{Backend, ack_policy};

/// Connect timeout of outbound fetches; each fetch also has its own deadline.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long start-up waits for the revocation store to answer before warning.
const STARTUP_STORE_WAIT: Duration = Duration::from_secs(1);

/// How long start-up waits for the first check of the store's eviction policy and marker.
const STARTUP_STORE_CHECK: Duration = Duration::from_secs(5);

/// Load (generating on first start) the signing keys named by the configuration.
pub(crate) fn load_keys(config: &Config, now: u64) -> anyhow::Result<KeyRing> {
    let dir = KeyDir::new(&config.keys.dir);
    let hint = || {
        format!(
            "keys.dir {}: make sure the directory exists (or can be created) and this user may read and write it",
            config.keys.dir.display()
        )
    };
    if dir.ensure(config.keys.algorithm, now).with_context(hint)? {
        tracing::info!(dir = %config.keys.dir.display(), "generated a new signing key");
    }
    Ok(ring_from(config, dir.load().with_context(hint)?)?)
}

/// The ring the configuration describes for these keys.
pub fn ring_from(config: &Config, keys: Vec<crate::keys::SigningKey>) -> Result<KeyRing, crate::keys::KeyError> {
    KeyRing::with_activation_delay(
        keys,
        config.keys.algorithm,
        publish_grace(config),
        config.keys.activate_after_seconds,
    )
}

/// How long a retired key stays published: the longest token life plus leeway.
pub fn publish_grace(config: &Config) -> u64 {
    config.max_token_ttl() + config.tokens.leeway_seconds
}

fn backend<T: RevocationStore + EventQueue>(backend: Arc<T>) -> Backend {
    Backend {
        store: backend.clone(),
        events: backend,
        trust: None,
    }
}

/// Open the configured revocation store.
pub(crate) async fn open_store(config: &Config) -> anyhow::Result<Backend> {
    Ok(match config.revocation.backend {
        RevocationBackend::Memory => backend(Arc::new(MemoryStore::new())),
        RevocationBackend::Embedded => {
            let path = &config.revocation.path;
            backend(Arc::new(EmbeddedStore::open(path).with_context(|| {
                format!(
                    "revocation.path {}: make sure its folder is writable by this user and no other \
                     mcp-sts process has the file open",
                    path.display()
                )
            })?))
        }
        RevocationBackend::Redis => {
            let store = RedisStore::open(redis_topology(&config.revocation), redis_options(config)).await?;
            // Report an unreachable store now, not at the first request; keep starting
            // (answering 503, /readyz included) so the service recovers with Redis.
            match store.wait_ready(STARTUP_STORE_WAIT).await {
                Ok(()) => {
                    tracing::info!(redis = %store.describe(), "revocation store reachable");
                    check_store_at_start(&store).await?;
                }
                Err(error) => tracing::warn!(
                    redis = %store.describe(),
                    %error,
                    "revocation store unreachable at start; answering 503 until it is"
                ),
            }
            let trust = Some(store.trust_changes());
            let store = Arc::new(store);
            Backend {
                store: store.clone(),
                events: store,
                trust,
            }
        }
    })
}

/// The Redis options `[revocation]` and `[keys]` describe.
pub fn redis_options(config: &Config) -> RedisOptions {
    let r = &config.revocation;
    RedisOptions {
        prefix: r.key_prefix.clone(),
        timeout: Duration::from_millis(r.timeout_ms),
        acks: ack_policy(r),
        accept_unknown_eviction_policy: r.accept_unknown_eviction_policy,
        marker_record: Some(config.keys.dir.join(STORE_MARKER_RECORD)),
        watch: true,
    }
}

/// The file beside the signing keys where a replica remembers the store marker.
pub(crate) const STORE_MARKER_RECORD: &str = "store-id";

/// At start: a store that may evict (or hides whether it does) stops the service; a
/// store that lost its data is served 503 until adopted; and the log says what an
/// acknowledged write is worth on this topology.
async fn check_store_at_start(store: &RedisStore) -> anyhow::Result<()> {
    match store.checked(STARTUP_STORE_CHECK).await {
        Trust::Untrusted(why @ (Distrust::Evicting(_) | Distrust::PolicyHidden(_))) => {
            anyhow::bail!("revocation store refused: {}", why.describe())
        }
        Trust::Untrusted(why @ Distrust::Lost(_)) => {
            tracing::error!(
                "starting, but refusing every decision that needs the store: {}",
                why.describe()
            );
        }
        Trust::Trusted | Trust::Unchecked => {}
    }
    let policy = store.ack_policy();
    match store.durability().await {
        Ok(masters) => {
            for master in masters {
                if master.required == 0 {
                    tracing::warn!(
                        master = %master.address,
                        persistence = master.persistence.as_deref().unwrap_or("unknown: CONFIG refused"),
                        "writes to this master are acknowledged without a replica: only its own persistence \
                         (shown) keeps them, and only appendonly yes with appendfsync always loses none"
                    );
                } else {
                    tracing::info!(
                        master = %master.address,
                        replicas = master.required,
                        timeout_ms = policy.replication_timeout.as_millis(),
                        "revocations and once-only markers are acknowledged after WAIT confirms them"
                    );
                }
                if policy.fsync {
                    if master.waitaof {
                        tracing::info!(master = %master.address, "fsync_acked: WAITAOF 1 0 follows every durable write");
                    } else {
                        tracing::warn!(
                            master = %master.address,
                            "fsync_acked is set but this Redis has no WAITAOF (it needs 7.2 or later): \
                             the master's fsync is not waited for"
                        );
                    }
                }
            }
        }
        Err(error) => tracing::warn!(%error, "cannot read how this Redis keeps writes"),
    }
    Ok(())
}

/// Which Redis the `[revocation]` table names: `cluster`, `sentinels`, or one `url`.
pub fn redis_topology(revocation: &RevocationConfig) -> RedisTopology {
    if !revocation.cluster.is_empty() {
        RedisTopology::Cluster(revocation.cluster.clone())
    } else if !revocation.sentinels.is_empty() {
        RedisTopology::Sentinel {
            sentinels: revocation.sentinels.clone(),
            master_name: revocation.master_name.clone().unwrap_or_default(),
        }
    } else {
        RedisTopology::Single(revocation.redis_url())
    }
}

/// Build the shared state from configuration.
pub async fn build(config: Config, clock: Arc<dyn Clock>, audit: AuditLog) -> anyhow::Result<Arc<Sts>> {
    let ring = load_keys(&config, clock.now())?;
    let backend = open_store(&config).await?;
    if let Some(trust) = backend.trust.clone() {
        tokio::spawn(audit_store_trust(trust, audit.clone(), clock.clone()));
    }
    let sts = Arc::new(Sts::new(
        config,
        SharedKeyRing::new(ring),
        backend,
        clock,
        audit,
        http_client(CONNECT_TIMEOUT).context("cannot build the HTTP client for key fetches")?,
    ));
    sts.keep_offboardings_at_start().await;
    Ok(sts)
}

/// An audit event whenever the store stops (or starts again) being trusted: lost data
/// and an evicting policy are security events, not only log lines.
async fn audit_store_trust(mut trust: tokio::sync::watch::Receiver<Trust>, audit: AuditLog, clock: Arc<dyn Clock>) {
    let mut previous = trust.borrow_and_update().clone();
    while trust.changed().await.is_ok() {
        let now = trust.borrow_and_update().clone();
        let event = match (&previous, &now) {
            (_, Trust::Untrusted(why)) if previous != now => {
                let mut event = AuditEvent::new("revocation_store_untrusted", clock.now());
                event.reason = Some(match why {
                    Distrust::Lost(_) => "temporarily_unavailable:revocation_store.lost".into(),
                    Distrust::Evicting(_) => "temporarily_unavailable:revocation_store.evicting".into(),
                    Distrust::PolicyHidden(_) => "temporarily_unavailable:revocation_store.policy_hidden".into(),
                });
                event.detail = Some(why.describe());
                Some(event)
            }
            (Trust::Untrusted(_), Trust::Trusted) => {
                let mut event = AuditEvent::new("revocation_store_trusted", clock.now());
                event.decision = "allow";
                event.detail = Some("the revocation store is trusted again (adopted or repaired)".into());
                Some(event)
            }
            _ => None,
        };
        if let Some(event) = event {
            audit.emit(&event);
        }
        previous = now;
    }
}

/// Load the key directory again and swap the ring in (what the reloader does when the
/// directory changes, and what a test does to play a replica picking up a rotation).
pub fn reload_keys(sts: &Sts) -> anyhow::Result<()> {
    let dir = KeyDir::new(&sts.config().keys.dir);
    let ring = ring_from(sts.config(), dir.load()?)?;
    let now = sts.clock().now();
    tracing::info!(
        signing = %ring.signing_key(now).kid,
        published = ring.published(now).count(),
        "signing keys reloaded"
    );
    sts.keys().replace(ring);
    Ok(())
}

/// Re-read the key directory now and then, so a rotation done by `mcp-sts keys rotate`
/// (on any replica sharing the directory) takes effect without a restart.
pub(crate) fn spawn_key_reloader(sts: Arc<Sts>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let dir = KeyDir::new(&sts.config().keys.dir);
        let mut listing = dir.listing().unwrap_or_default();
        let period = Duration::from_secs(sts.config().keys.reload_seconds.max(1));
        loop {
            tokio::time::sleep(period).await;
            let Ok(now_listing) = dir.listing() else {
                continue;
            };
            if now_listing == listing {
                continue;
            }
            match reload_keys(&sts) {
                Ok(()) => listing = now_listing,
                Err(error) => {
                    tracing::error!(%error, "key directory changed but could not be loaded; keeping current keys")
                }
            }
        }
    })
}

/// Bind the configured address and serve until SIGTERM or Ctrl-C; requests in flight
/// get `server.shutdown_timeout_ms` to finish before it returns.
pub async fn run(sts: Arc<Sts>) -> anyhow::Result<()> {
    // Watch for the signals before announcing readiness, so an early SIGTERM is
    // handled like any other.
    let shutdown = shutdown_signal()?;
    // Before listening, so readiness knows every issuer's keys from the first probe.
    crate::issuer_keys::fetch_at_start(sts.issuers(), sts.clock().now()).await;
    let listen = sts.config().server.listen.clone();
    let listener = TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (server.listen)"))?;
    tracing::info!(listen = %listener.local_addr()?, issuer = %sts.issuer(), "mcp-sts listening");
    let reloader = spawn_key_reloader(sts.clone());
    let mut workers = crate::ssf::spawn_workers(sts.clone());
    workers.push(crate::issuer_keys::spawn_refresher(
        Arc::clone(sts.issuers()),
        Arc::clone(sts.clock()),
    ));
    crate::http::serve(listener, sts, shutdown).await?;
    reloader.abort();
    for worker in workers {
        worker.abort();
    }
    tracing::info!("mcp-sts stopped");
    Ok(())
}

/// A future that resolves on SIGTERM (what container runtimes send) or Ctrl-C and
/// logs which; the handlers are installed before it is returned.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch for SIGTERM")?;
    Ok(async move {
        #[cfg(unix)]
        let terminate = terminate.recv();
        #[cfg(not(unix))]
        let terminate = std::future::pending::<Option<()>>();
        let signal = tokio::select! {
            _ = tokio::signal::ctrl_c() => "interrupt",
            _ = terminate => "SIGTERM",
        };
        tracing::info!(
            signal,
            "shutting down: no new connections, finishing requests in flight until the shutdown deadline"
        );
    })
}
