//! Whether the Redis store can be trusted to keep what it was given: its eviction
//! policy must be `noeviction`, and the store marker (`<prefix>store-id`, a random id
//! written once) must still be the one this replica knows. Checked when a connection
//! is opened and every few seconds; on one server or Sentinel every revocation check
//! also reads the marker, in the same round trip.
//!
//! The rule for the marker:
//! - present and known (or this replica knows none yet): trusted, and remembered;
//! - present but another id: trusted only when an operator adopted it
//!   (`mcp-sts store adopt`), otherwise the store was replaced (lost);
//! - missing while this replica knows an id: the store lost its data;
//! - missing and no id known: a new deployment, so it is written (`SET NX`).
//!
//! What a replica knows survives its restarts in a record file beside the signing
//! keys (`store-id` in `[keys] dir`, shared by replicas that share the keys), so a
//! replica restarted against an emptied store fails closed too; where that file
//! cannot be written the id is kept in memory only, and a fresh replica cannot tell an
//! emptied store from a new one.
//!
//! In a Cluster the marker also has copies under hash tags spread over the slots, so
//! a shard restarted empty is noticed as well.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::Value;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::super::StoreError;
use super::route::{RecoveryCheck, Router, key_slot};

/// Why the store is not trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Distrust {
    /// `maxmemory-policy` is not `noeviction`: Redis may drop revocations.
    Evicting(String),
    /// `CONFIG` is refused, so the policy cannot be read, and the configuration does
    /// not accept that.
    PolicyHidden(String),
    /// The store marker is gone or replaced: the store lost its data.
    Lost(String),
}

impl Distrust {
    /// A sentence for logs, errors and the status command.
    pub fn describe(&self) -> String {
        match self {
            Distrust::Evicting(policy) => format!(
                "Redis maxmemory-policy is {policy:?}: it may evict revocations; set maxmemory-policy noeviction"
            ),
            Distrust::PolicyHidden(error) => format!(
                "Redis refuses CONFIG ({error}), so its maxmemory-policy cannot be checked; make sure it is \
                 noeviction and set revocation.accept_unknown_eviction_policy = true"
            ),
            Distrust::Lost(why) => format!(
                "the revocation store lost its data ({why}); revocations made before may be gone. \
                 Refusing until an operator runs `mcp-sts store adopt --config PATH` (docs/deployment.md)"
            ),
        }
    }
}

/// What the guard concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Not checked yet (Redis not reached since start).
    Unchecked,
    /// Safe to use.
    Trusted,
    /// Every operation is refused.
    Untrusted(Distrust),
}

/// Who wrote the marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// The first replica of a new deployment.
    Created,
    /// An operator, after a loss (`mcp-sts store adopt`).
    Adopted,
}

/// The marker's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// A random id.
    pub id: String,
    /// Who wrote it.
    pub origin: Origin,
}

impl Marker {
    fn new(origin: Origin) -> Self {
        Self {
            id: uuid::Uuid::new_v4().simple().to_string(),
            origin,
        }
    }
}

/// What the marker keys held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    /// Every copy present, all the same marker.
    Present(Marker),
    /// No copy at all.
    Missing,
    /// Some copies missing or different (a shard lost its data), or unreadable.
    Damaged(String),
}

/// What to do after a reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Trust the store, remembering this marker.
    Trust(Marker),
    /// A new deployment: write a marker.
    Create,
    /// Do not trust it.
    Refuse(Distrust),
}

/// Decide from the marker reading and the id this replica knows.
pub(crate) fn judge(reading: Reading, known: Option<&str>) -> Verdict {
    match (reading, known) {
        (Reading::Present(marker), None) => Verdict::Trust(marker),
        (Reading::Present(marker), Some(id)) if marker.id == id || marker.origin == Origin::Adopted => {
            Verdict::Trust(marker)
        }
        (Reading::Present(_), Some(_)) => Verdict::Refuse(Distrust::Lost(
            "the store marker was replaced by one nobody adopted".into(),
        )),
        (Reading::Missing, None) => Verdict::Create,
        (Reading::Missing, Some(_)) => Verdict::Refuse(Distrust::Lost("the store marker is gone".into())),
        (Reading::Damaged(why), _) => Verdict::Refuse(Distrust::Lost(why)),
    }
}

/// How many marker copies a Cluster keeps: one per window of 128 slots, so every
/// master serving 256 or more slots in a row holds at least one.
const COPIES: u16 = 128;

/// Hash tags whose slots fall one in each window of `SLOTS / COPIES` slots.
fn copy_tags() -> Vec<String> {
    let window = 16_384 / COPIES;
    let mut tags: Vec<Option<String>> = vec![None; usize::from(COPIES)];
    let mut missing = tags.len();
    let mut candidate: u32 = 0;
    while missing > 0 {
        let tag = candidate.to_string();
        let index = usize::from(key_slot(tag.as_bytes()) / window);
        if let Some(slot @ None) = tags.get_mut(index) {
            *slot = Some(tag);
            missing -= 1;
        }
        candidate += 1;
    }
    tags.into_iter().flatten().collect()
}

/// The store's trust, kept up to date.
pub(crate) struct Guard {
    prefix: String,
    accept_unknown_policy: bool,
    record: Option<PathBuf>,
    known: Mutex<Option<String>>,
    state: watch::Sender<Trust>,
    warned_hidden: AtomicBool,
    warned_record: AtomicBool,
}

impl Guard {
    /// A guard for the keys under `prefix`, remembering marker ids in `record`.
    pub(crate) fn new(prefix: &str, accept_unknown_policy: bool, record: Option<PathBuf>) -> Self {
        let known = record.as_ref().and_then(|path| read_record(path).remove(prefix));
        Self {
            prefix: prefix.to_owned(),
            accept_unknown_policy,
            record,
            known: Mutex::new(known),
            state: watch::Sender::new(Trust::Unchecked),
            warned_hidden: AtomicBool::new(false),
            warned_record: AtomicBool::new(false),
        }
    }

    /// The main marker key.
    pub(crate) fn marker_key(&self) -> String {
        format!("{}store-id", self.prefix)
    }

    /// Every marker key: the main one, plus the copies in a Cluster.
    fn marker_keys(&self, cluster: bool) -> Vec<String> {
        let mut keys = vec![self.marker_key()];
        if cluster {
            keys.extend(
                copy_tags()
                    .into_iter()
                    .map(|tag| format!("{}store-id:{{{tag}}}", self.prefix)),
            );
        }
        keys
    }

    /// The current conclusion, and its changes.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Trust> {
        self.state.subscribe()
    }

    /// The current conclusion.
    pub(crate) fn trust(&self) -> Trust {
        self.state.borrow().clone()
    }

    /// The marker id this replica knows.
    pub(crate) fn known(&self) -> Option<String> {
        self.known.lock().ok().and_then(|known| known.clone())
    }

    /// Ok when trusted; waits up to `within` for the first check.
    pub(crate) async fn ensure(&self, within: Duration) -> Result<(), StoreError> {
        let mut changes = self.state.subscribe();
        let checked = tokio::time::timeout(within, changes.wait_for(|t| *t != Trust::Unchecked)).await;
        match self.trust() {
            Trust::Trusted => Ok(()),
            Trust::Untrusted(why) => Err(StoreError::Untrusted(why.describe())),
            Trust::Unchecked => Err(match checked {
                Err(_) => StoreError::Timeout,
                Ok(_) => StoreError::Unavailable("the revocation store has not been checked yet".into()),
            }),
        }
    }

    /// A read found the marker missing: refuse from now on.
    pub(crate) fn marker_missing_on_read(&self) -> StoreError {
        let why = Distrust::Lost("the store marker is gone".into());
        self.set(Trust::Untrusted(why.clone()));
        StoreError::Untrusted(why.describe())
    }

    fn set(&self, trust: Trust) {
        let previous = self.state.send_replace(trust.clone());
        if previous == trust {
            return;
        }
        match &trust {
            Trust::Untrusted(why) => tracing::error!(
                "REVOCATION STORE NOT TRUSTED, refusing every decision that needs it: {}",
                why.describe()
            ),
            Trust::Trusted => tracing::info!("revocation store checked: eviction policy and store marker are sound"),
            Trust::Unchecked => {}
        }
    }

    fn remember(&self, marker: &Marker) {
        let changed = match self.known.lock() {
            Ok(mut known) => {
                let changed = known.as_deref() != Some(marker.id.as_str());
                *known = Some(marker.id.clone());
                changed
            }
            Err(_) => false,
        };
        if !changed {
            return;
        }
        let Some(path) = &self.record else { return };
        let mut record = read_record(path);
        record.insert(self.prefix.clone(), marker.id.clone());
        let written = serde_json::to_vec_pretty(&record)
            .map_err(std::io::Error::other)
            .and_then(|json| std::fs::write(path, json));
        if let Err(error) = written
            && !self.warned_record.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                path = %path.display(),
                %error,
                "cannot record the store marker beside the keys; it is kept in memory only, so a \
                 restarted replica cannot tell an emptied store from a new one"
            );
        }
    }

    /// Check the eviction policy and the marker, and update the conclusion. A store
    /// that cannot be reached leaves the conclusion as it was.
    pub(crate) async fn check_trust(&self, router: &Router) -> Result<Trust, StoreError> {
        if let Some(distrust) = self.check_policy(router).await? {
            self.set(Trust::Untrusted(distrust));
            return Ok(self.trust());
        }
        let keys = self.marker_keys(router.is_cluster());
        let mut verdict = judge(read_markers(router, &keys).await?, self.known().as_deref());
        if verdict == Verdict::Create {
            let marker = Marker::new(Origin::Created);
            write_markers(router, &keys, &marker, true).await?;
            // Another replica starting at the same moment may have won: read again.
            verdict = judge(read_markers(router, &keys).await?, self.known().as_deref());
            if let Verdict::Trust(found) = &verdict
                && found == &marker
            {
                tracing::info!(key = %self.marker_key(), "store marker written: the first start of this deployment");
            }
        }
        match verdict {
            Verdict::Trust(marker) => {
                let adopted = self.known().is_some_and(|id| id != marker.id);
                self.remember(&marker);
                if adopted {
                    tracing::warn!("the revocation store was adopted by an operator; serving again");
                }
                self.set(Trust::Trusted);
            }
            Verdict::Refuse(distrust) => self.set(Trust::Untrusted(distrust)),
            Verdict::Create => {}
        }
        Ok(self.trust())
    }

    /// `None` when the policy is `noeviction` (or hidden and that is accepted).
    async fn check_policy(&self, router: &Router) -> Result<Option<Distrust>, StoreError> {
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("GET").arg("maxmemory-policy");
        let answers = match read_config(router, cmd).await? {
            Ok(answers) => answers,
            Err(refused) => {
                if !self.accept_unknown_policy {
                    return Ok(Some(Distrust::PolicyHidden(refused)));
                }
                if !self.warned_hidden.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        %refused,
                        "Redis refuses CONFIG: its eviction policy cannot be checked; accepted because \
                         revocation.accept_unknown_eviction_policy = true (it must be noeviction)"
                    );
                }
                return Ok(None);
            }
        };
        for (node, policy) in answers {
            if policy != "noeviction" {
                tracing::error!(%node, %policy, "Redis maxmemory-policy is not noeviction");
                return Ok(Some(Distrust::Evicting(policy)));
            }
        }
        Ok(None)
    }

    /// Write a new marker as an operator's adoption of the store as it is now.
    pub(crate) async fn adopt(&self, router: &Router) -> Result<Marker, StoreError> {
        let marker = Marker::new(Origin::Adopted);
        write_markers(router, &self.marker_keys(router.is_cluster()), &marker, false).await?;
        self.remember(&marker);
        self.set(Trust::Trusted);
        Ok(marker)
    }

    /// What the marker keys hold now.
    pub(crate) async fn read(&self, router: &Router) -> Result<Reading, StoreError> {
        read_markers(router, &self.marker_keys(router.is_cluster())).await
    }
}

/// Each master's value of a `CONFIG GET` of one setting; `Err` with Redis's words when
/// the server refuses `CONFIG`.
pub(crate) async fn read_config(
    router: &Router,
    cmd: redis::Cmd,
) -> Result<Result<Vec<(String, String)>, String>, StoreError> {
    let answers = match router.on_every_master(cmd).await {
        Ok(answers) => answers,
        Err(StoreError::Unavailable(why)) if refused(&why) => return Ok(Err(why)),
        Err(error) => return Err(error),
    };
    let mut values = Vec::new();
    for (node, answer) in answers {
        if let Value::ServerError(error) = &answer {
            return Ok(Err(format!("{error:?}")));
        }
        let pairs: Vec<String> = redis::from_redis_value(answer).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let value = pairs.get(1).cloned().unwrap_or_default();
        values.push((node, value));
    }
    Ok(Ok(values))
}

/// A server error that means "CONFIG is not available to us" rather than "down".
fn refused(why: &str) -> bool {
    let lower = why.to_ascii_lowercase();
    lower.contains("unknown command") || lower.contains("noperm") || lower.contains("no permissions")
}

impl RecoveryCheck for Guard {
    fn check<'a>(
        &'a self,
        router: &'a Router,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), StoreError>> + Send + 'a>> {
        Box::pin(async move { self.check_trust(router).await.map(|_| ()) })
    }
}

async fn read_markers(router: &Router, keys: &[String]) -> Result<Reading, StoreError> {
    let values: Vec<Option<Vec<u8>>> = if router.is_cluster() {
        // One GET per copy (each in its own slot): a multi-slot MGET of this size is
        // split by the cluster client, whose reassembly fails for a while after a
        // failover changes the slot map.
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            values.push(router.run_check(redis::cmd("GET").arg(key)).await?);
        }
        values
    } else {
        router.run_check(redis::cmd("MGET").arg(keys)).await?
    };
    let present: Vec<&Vec<u8>> = values.iter().flatten().collect();
    if present.is_empty() {
        return Ok(Reading::Missing);
    }
    if present.len() != keys.len() {
        return Ok(Reading::Damaged(format!(
            "{} of {} store marker copies are gone (a shard lost its data)",
            keys.len() - present.len(),
            keys.len()
        )));
    }
    let mut markers = present.into_iter().map(|bytes| serde_json::from_slice::<Marker>(bytes));
    let first = match markers.next() {
        Some(Ok(marker)) => marker,
        _ => return Ok(Reading::Damaged("the store marker is unreadable".into())),
    };
    if markers.any(|other| other.ok().as_ref() != Some(&first)) {
        return Ok(Reading::Damaged("the store marker copies disagree".into()));
    }
    Ok(Reading::Present(first))
}

async fn write_markers(router: &Router, keys: &[String], marker: &Marker, only_new: bool) -> Result<(), StoreError> {
    let json = serde_json::to_vec(marker).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    // Copies first, the main key last: a start interrupted half-way leaves a damaged
    // marker (refused), never a complete-looking one over missing copies.
    for key in keys.iter().rev() {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(&json);
        if only_new {
            cmd.arg("NX");
        }
        router.run_check::<Value>(&cmd).await?;
    }
    Ok(())
}

fn read_record(path: &PathBuf) -> BTreeMap<String, String> {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Keep the conclusion fresh: check at once, after every reconnection and every
/// `period`, until the store is dropped.
pub(crate) async fn watch(router: std::sync::Weak<Router>, guard: std::sync::Weak<Guard>, period: Duration) {
    let mut attempts = match router.upgrade() {
        Some(router) => router.link().attempts(),
        None => return,
    };
    loop {
        let (Some(router), Some(guard)) = (router.upgrade(), guard.upgrade()) else {
            return;
        };
        if let Err(error) = guard.check_trust(&router).await {
            tracing::debug!(%error, "revocation store check did not complete");
        }
        drop((router, guard));
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            changed = attempts.changed() => if changed.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker(id: &str, origin: Origin) -> Marker {
        Marker { id: id.into(), origin }
    }

    #[test]
    fn the_marker_rule() {
        let created = marker("a", Origin::Created);
        assert_eq!(
            judge(Reading::Present(created.clone()), None),
            Verdict::Trust(created.clone())
        );
        assert_eq!(
            judge(Reading::Present(created.clone()), Some("a")),
            Verdict::Trust(created.clone())
        );
        assert!(matches!(
            judge(Reading::Present(marker("b", Origin::Created)), Some("a")),
            Verdict::Refuse(Distrust::Lost(_))
        ));
        let adopted = marker("b", Origin::Adopted);
        assert_eq!(
            judge(Reading::Present(adopted.clone()), Some("a")),
            Verdict::Trust(adopted)
        );
        assert_eq!(judge(Reading::Missing, None), Verdict::Create);
        assert!(matches!(
            judge(Reading::Missing, Some("a")),
            Verdict::Refuse(Distrust::Lost(_))
        ));
        assert!(matches!(
            judge(Reading::Damaged("x".into()), None),
            Verdict::Refuse(Distrust::Lost(_))
        ));
    }

    #[test]
    fn copies_cover_every_window() {
        let tags = copy_tags();
        assert_eq!(tags.len(), usize::from(COPIES));
        let mut windows: Vec<u16> = tags
            .iter()
            .map(|t| key_slot(t.as_bytes()) / (16_384 / COPIES))
            .collect();
        windows.sort_unstable();
        windows.dedup();
        assert_eq!(windows.len(), usize::from(COPIES));
    }
}
