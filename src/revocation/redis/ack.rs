//! Durable acknowledgement: a write that carries a promise goes, followed by `WAIT`
//! (and `WAITAOF` when asked), over a connection of its own to the master that owns
//! its key, and is acknowledged only when enough replicas confirmed it.
//!
//! `WAIT` blocks the connection it is sent on and only covers writes made on that
//! connection, so each master gets one dedicated connection, owned by a task that
//! writes in batches: the writes queued meanwhile go out together, pipelined, followed
//! by one `WAIT` that confirms all of them (a replica acknowledges a replication
//! offset, which covers every earlier write). The shared connection that serves reads
//! never waits.
//!
//! A write the master took but the replicas did not confirm is answered
//! [`StoreError::Unconfirmed`]. Revocation entries and their events are safe to write
//! again. A once-only marker is withdrawn before the answer (deleted only if it still
//! holds this attempt's own random value), so the caller's retry finds it unused; if
//! the withdrawal cannot be made now it is retried in the background until it lands
//! or the marker expires.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, Weak};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Cmd, ConnectionInfo, Value};
use tokio::sync::{mpsc, oneshot};

use super::super::StoreError;
use super::topology::unavailable;

/// How many replicas must confirm, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinReplicas {
    /// One under Sentinel and for every Cluster shard with replicas; none for one
    /// server or a shard without replicas.
    Auto,
    /// This many for every write.
    Exactly(u32),
}

/// What acknowledging a write requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckPolicy {
    /// Replicas that must confirm.
    pub min_replicas: MinReplicas,
    /// How long `WAIT` (and `WAITAOF`) may block.
    pub replication_timeout: Duration,
    /// Also wait for the master's fsync of its append-only file, where supported.
    pub fsync: bool,
}

impl Default for AckPolicy {
    fn default() -> Self {
        Self {
            min_replicas: MinReplicas::Auto,
            replication_timeout: Duration::from_millis(1_000),
            fsync: false,
        }
    }
}

impl AckPolicy {
    /// How long one batch may take at most: the write, `WAIT` and `WAITAOF`, plus
    /// opening the connection.
    pub(crate) fn batch_bound(&self, op_timeout: Duration, connect_timeout: Duration) -> Duration {
        let waits = if self.fsync { 2 } else { 1 };
        connect_timeout + op_timeout + self.replication_timeout * waits
    }
}

/// Most writes sent in one batch.
const MAX_BATCH: usize = 256;

/// How long an undeliverable withdrawal is retried at most (a marker lives no longer
/// than its assertion or grant, a few minutes at most).
const WITHDRAW_FOR: Duration = Duration::from_secs(600);

/// Pause between attempts of a withdrawal that failed.
const WITHDRAW_RETRY: Duration = Duration::from_millis(500);

/// Delete a once-only marker only if it still holds this attempt's value.
const WITHDRAW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// A once-only marker to withdraw if its write is not confirmed.
#[derive(Debug, Clone)]
pub(crate) struct Withdrawal {
    /// The marker's key.
    pub key: String,
    /// The random value this attempt wrote.
    pub attempt: String,
    /// The write's answer when the marker was already there: a refusal (a replay),
    /// which changed nothing and so needs no replica to confirm it.
    pub already_used: Value,
}

impl Withdrawal {
    fn command(&self) -> Cmd {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(WITHDRAW).arg(1).arg(&self.key).arg(&self.attempt);
        cmd
    }
}

/// One write waiting for its batch.
struct Job {
    write: Cmd,
    replicas: u32,
    withdrawal: Option<Withdrawal>,
    reply: oneshot::Sender<Result<Value, StoreError>>,
}

/// Where a withdrawal that could not be made at once is retried from (the master of
/// its key may have changed by then).
pub(crate) trait Rewrite: Send + Sync + 'static {
    /// Send `cmd` (no waiting for replicas) to the master that owns `key` now.
    fn send(&self, key: String, cmd: Cmd) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + '_>>;
}

/// The dedicated connections, one writer task per master address.
pub(crate) struct Acks {
    policy: AckPolicy,
    op_timeout: Duration,
    connect_timeout: Duration,
    writers: Mutex<HashMap<String, mpsc::Sender<Job>>>,
}

impl Acks {
    /// No connection is opened until the first write to a master.
    pub(crate) fn new(policy: AckPolicy, op_timeout: Duration, connect_timeout: Duration) -> Self {
        Self {
            policy,
            op_timeout,
            connect_timeout,
            writers: Mutex::new(HashMap::new()),
        }
    }

    /// The configured policy.
    pub(crate) fn policy(&self) -> AckPolicy {
        self.policy
    }

    /// Replicas a write to a master must reach: the configured number, or for
    /// `auto` one where the topology gives the master replicas.
    pub(crate) fn required(&self, topology_has_replicas: bool) -> u32 {
        match self.policy.min_replicas {
            MinReplicas::Exactly(n) => n,
            MinReplicas::Auto => u32::from(topology_has_replicas),
        }
    }

    /// Whether a write with `replicas` required needs the dedicated connection at all.
    pub(crate) fn waits(&self, replicas: u32) -> bool {
        replicas > 0 || self.policy.fsync
    }

    /// Write `cmd` on `master`'s dedicated connection and wait for `replicas` of them
    /// (and the fsync when configured). `withdrawal` names a once-only marker the
    /// write sets, removed again if the write is not confirmed.
    pub(crate) async fn write(
        &self,
        master: &ConnectionInfo,
        replicas: u32,
        cmd: Cmd,
        withdrawal: Option<Withdrawal>,
        rewrite: Weak<dyn Rewrite>,
    ) -> Result<Value, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            write: cmd,
            replicas,
            withdrawal,
            reply,
        };
        self.writer(master, rewrite)?
            .send(job)
            .await
            .map_err(|_| StoreError::Unavailable("the Redis write connection closed".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the Redis write connection closed".into()))?
    }

    fn writer(&self, master: &ConnectionInfo, rewrite: Weak<dyn Rewrite>) -> Result<mpsc::Sender<Job>, StoreError> {
        let address = master.addr().to_string();
        let mut writers = self
            .writers
            .lock()
            .map_err(|_| StoreError::Unavailable("Redis writer lock poisoned".into()))?;
        if let Some(writer) = writers.get(&address)
            && !writer.is_closed()
        {
            return Ok(writer.clone());
        }
        let client = Client::open(master.clone()).map_err(unavailable)?;
        let (sender, jobs) = mpsc::channel(MAX_BATCH * 4);
        let worker = Writer {
            client,
            address: address.clone(),
            conn: None,
            stale: false,
            waitaof: None,
            policy: self.policy,
            op_timeout: self.op_timeout,
            connect_timeout: self.connect_timeout,
            rewrite,
        };
        tokio::spawn(worker.run(jobs));
        writers.insert(address, sender.clone());
        Ok(sender)
    }
}

/// The task that owns one master's dedicated connection.
struct Writer {
    client: Client,
    address: String,
    conn: Option<MultiplexedConnection>,
    /// The last send failed on a connection that had been open: it may simply be
    /// stale (the server restarted), worth one more try on a new one.
    stale: bool,
    /// Whether this master has `WAITAOF` (learned on connecting).
    waitaof: Option<bool>,
    policy: AckPolicy,
    op_timeout: Duration,
    connect_timeout: Duration,
    rewrite: Weak<dyn Rewrite>,
}

/// What a batch's waits reported.
struct Confirmation {
    confirmed: bool,
    why: String,
}

impl Writer {
    async fn run(mut self, mut jobs: mpsc::Receiver<Job>) {
        while let Some(first) = jobs.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let mut outcome = self.bounded_send(&batch).await;
            if outcome.is_err() && self.stale {
                // The connection died under us (the master restarted, or failed over):
                // send the batch once more on a fresh one. Every write is safe to
                // repeat: entries are overwritten, and a once-only marker holding this
                // attempt's own value counts as this attempt's.
                self.conn = None;
                outcome = self.bounded_send(&batch).await;
            }
            if outcome.is_err() {
                // Whatever state the connection is in, the next batch starts afresh.
                self.conn = None;
            }
            self.deliver(batch, outcome).await;
        }
    }

    async fn bounded_send(&mut self, batch: &[Job]) -> Result<(Vec<Value>, Confirmation), StoreError> {
        self.stale = false;
        let bound = self.policy.batch_bound(self.op_timeout, self.connect_timeout);
        match tokio::time::timeout(bound, self.send(batch)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(StoreError::Timeout),
        }
    }

    async fn connection(&mut self) -> Result<MultiplexedConnection, StoreError> {
        if let Some(conn) = &self.conn {
            return Ok(conn.clone());
        }
        // WAIT may block for the whole replication timeout: the batch's own bound is
        // the deadline, not a per-response one.
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(None);
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(unavailable)?;
        if self.waitaof.is_none() {
            self.waitaof = Some(supports_waitaof(&mut conn).await?);
        }
        self.conn = Some(conn.clone());
        Ok(conn)
    }

    /// The batch's writes, then the waits, in one round trip. Each write's own answer,
    /// and whether the waits confirmed them.
    async fn send(&mut self, batch: &[Job]) -> Result<(Vec<Value>, Confirmation), StoreError> {
        let mut conn = self.connection().await?;
        let replicas = batch.iter().map(|job| job.replicas).max().unwrap_or(0);
        let fsync = self.policy.fsync && self.waitaof == Some(true);
        let timeout_ms = u64::try_from(self.policy.replication_timeout.as_millis()).unwrap_or(u64::MAX);
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for job in batch {
            pipe.add_command(job.write.clone());
        }
        if replicas > 0 {
            pipe.cmd("WAIT").arg(replicas).arg(timeout_ms);
        }
        if fsync {
            pipe.cmd("WAITAOF").arg(1).arg(0).arg(timeout_ms);
        }
        let was_open = self.conn.is_some();
        let mut answers: Vec<Value> = pipe.query_async(&mut conn).await.map_err(|error| {
            self.stale = was_open && (error.is_io_error() || error.is_connection_dropped());
            unavailable(error)
        })?;
        let mut confirmation = Confirmation {
            confirmed: true,
            why: String::new(),
        };
        if fsync {
            let fsynced = match answers.pop() {
                Some(Value::Array(counts)) if matches!(counts.first(), Some(Value::Int(n)) if *n >= 1) => None,
                Some(Value::ServerError(error)) => Some(format!("WAITAOF failed: {error:?}")),
                _ => Some(format!(
                    "the master did not fsync its append-only file within {timeout_ms} ms"
                )),
            };
            if let Some(why) = fsynced {
                confirmation = Confirmation { confirmed: false, why };
            }
        }
        if replicas > 0 {
            let reached = match answers.pop() {
                Some(Value::Int(n)) => n,
                _ => 0,
            };
            if reached < i64::from(replicas) {
                confirmation = Confirmation {
                    confirmed: false,
                    why: format!("{reached} of {replicas} replica(s) confirmed within {timeout_ms} ms"),
                };
            }
        }
        if answers.len() != batch.len() {
            return Err(StoreError::Corrupt("a pipelined write answered out of step".into()));
        }
        Ok((answers, confirmation))
    }

    /// Answer every job; withdraw the markers of writes that are not acknowledged.
    async fn deliver(&mut self, batch: Vec<Job>, outcome: Result<(Vec<Value>, Confirmation), StoreError>) {
        let mut withdrawals = Vec::new();
        match outcome {
            Ok((answers, confirmation)) => {
                for (job, answer) in batch.into_iter().zip(answers) {
                    let refusal = job.withdrawal.as_ref().is_some_and(|w| w.already_used == answer);
                    let result = match answer {
                        Value::ServerError(error) => Err(StoreError::Unavailable(format!("{error:?}"))),
                        answer if refusal => Ok(answer),
                        _ if !confirmation.confirmed => {
                            tracing::warn!(master = %self.address, "{}; the write is not acknowledged", confirmation.why);
                            withdrawals.extend(job.withdrawal.clone());
                            Err(StoreError::Unconfirmed(confirmation.why.clone()))
                        }
                        answer => Ok(answer),
                    };
                    let acknowledged = result.is_ok();
                    // A caller that gave up (its deadline passed) was answered 503:
                    // its marker must not stay spent either.
                    if job.reply.send(result).is_err() && acknowledged {
                        withdrawals.extend(job.withdrawal);
                    }
                }
            }
            Err(error) => {
                tracing::warn!(master = %self.address, %error, "a write to Redis failed; it is not acknowledged");
                for job in batch {
                    // The write may or may not have happened: withdraw its marker.
                    withdrawals.extend(job.withdrawal);
                    let _ = job.reply.send(Err(error.clone()));
                }
            }
        }
        if withdrawals.is_empty() {
            return;
        }
        if let Err(error) = self.withdraw_now(&withdrawals).await {
            tracing::warn!(master = %self.address, %error, "withdrawing unconfirmed once-only markers failed; retrying in the background");
            self.conn = None;
            for withdrawal in withdrawals {
                tokio::spawn(withdraw_later(self.rewrite.clone(), withdrawal));
            }
        }
    }

    async fn withdraw_now(&mut self, withdrawals: &[Withdrawal]) -> Result<(), StoreError> {
        let bound = self.connect_timeout + self.op_timeout;
        let attempt = async {
            let mut conn = self.connection().await?;
            let mut pipe = redis::pipe();
            for withdrawal in withdrawals {
                pipe.add_command(withdrawal.command());
            }
            pipe.query_async::<()>(&mut conn).await.map_err(unavailable)
        };
        match tokio::time::timeout(bound, attempt).await {
            Ok(outcome) => outcome,
            Err(_) => Err(StoreError::Timeout),
        }
    }
}

/// Retry a withdrawal through whichever master owns its key now, until it lands or
/// the marker can no longer matter.
async fn withdraw_later(rewrite: Weak<dyn Rewrite>, withdrawal: Withdrawal) {
    let deadline = tokio::time::Instant::now() + WITHDRAW_FOR;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(WITHDRAW_RETRY).await;
        let Some(target) = rewrite.upgrade() else { return };
        if target.send(withdrawal.key.clone(), withdrawal.command()).await.is_ok() {
            tracing::info!("an unconfirmed once-only marker was withdrawn");
            return;
        }
    }
    tracing::error!(
        "an unconfirmed once-only marker could not be withdrawn; a retry of its request is refused as a replay until it expires"
    );
}

/// Whether the server knows `WAITAOF` (Redis 7.2 and later).
async fn supports_waitaof(conn: &mut MultiplexedConnection) -> Result<bool, StoreError> {
    let info: Vec<Value> = redis::cmd("COMMAND")
        .arg("INFO")
        .arg("WAITAOF")
        .query_async(conn)
        .await
        .map_err(unavailable)?;
    Ok(matches!(info.first(), Some(Value::Array(_))))
}

/// A random value identifying one attempt at a once-only write.
pub(crate) fn attempt_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
