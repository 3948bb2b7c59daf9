//! The current connection and its upkeep: counted failures, and a background
//! reconnection that callers wait on for at most their own deadline.
//!
//! The connections reconnect by themselves after I/O errors, but not after timeouts on
//! a half-open socket, a failed handshake (`LOADING`), a demoted Sentinel master
//! (`READONLY`) or a master that moved. After a few failures in a row the connection
//! is dropped and a new one is opened in the background (for Sentinel: the master is
//! asked for again), so the service never needs a restart.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::watch;

use super::super::StoreError;
use super::topology::{Conn, Connector};

/// Consecutive failures after which the connection is replaced.
const RESET_AFTER_FAILURES: u32 = 3;

/// First pause between connection attempts; doubles up to `MAX_RECONNECT_DELAY`.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(50);

/// A connection that replaces itself when it keeps failing.
pub(crate) struct Link {
    connector: Arc<Connector>,
    connect_timeout: Duration,
    state: Mutex<State>,
    /// Bumped whenever a connection attempt ends, so waiters look again.
    attempts: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    conn: Option<Conn>,
    /// The master `conn` reaches (one server or the Sentinel master), for the
    /// dedicated connections that wait for replicas.
    master: Option<redis::ConnectionInfo>,
    failures: u32,
    connecting: bool,
    /// Why the last connection attempt failed, while no connection is up.
    last_error: Option<String>,
}

impl Link {
    /// A link with no connection yet; the first call (or [`Link::start`]) opens one.
    pub(crate) fn new(connector: Arc<Connector>, connect_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            connector,
            connect_timeout,
            state: Mutex::new(State::default()),
            attempts: watch::Sender::new(0),
        })
    }

    /// How connections are opened (for diagnostics).
    pub(crate) fn connector(&self) -> &Connector {
        &self.connector
    }

    /// Begin connecting in the background.
    pub(crate) fn start(self: &Arc<Self>) {
        if let Ok(mut state) = self.state.lock() {
            self.reconnect_locked(&mut state);
        }
    }

    /// The current connection, waiting for one being opened. A caller bounds the wait
    /// with its own deadline; when an attempt has already failed it gets that error
    /// at once instead of waiting.
    pub(crate) async fn conn(self: &Arc<Self>) -> Result<Conn, StoreError> {
        let mut attempts = self.attempts.subscribe();
        loop {
            {
                let mut state = self.state.lock().map_err(poisoned)?;
                if let Some(conn) = &state.conn {
                    return Ok(conn.clone());
                }
                self.reconnect_locked(&mut state);
                if let Some(error) = &state.last_error {
                    return Err(StoreError::Unavailable(error.clone()));
                }
                attempts.borrow_and_update();
            }
            if attempts.changed().await.is_err() {
                return Err(StoreError::Unavailable("the Redis link was closed".into()));
            }
        }
    }

    /// The master the current connection reaches (none for a cluster or while down).
    pub(crate) fn master(&self) -> Option<redis::ConnectionInfo> {
        self.state.lock().ok().and_then(|state| state.master.clone())
    }

    /// A receiver that changes whenever a connection attempt ends.
    pub(crate) fn attempts(&self) -> watch::Receiver<u64> {
        self.attempts.subscribe()
    }

    /// Count a failure; after several in a row, drop the connection and open another.
    pub(crate) fn failed(self: &Arc<Self>) {
        self.failed_with(false);
    }

    /// A failure that shows the connection itself is confused (its view of a Cluster
    /// no longer matches the answers): replace it now.
    pub(crate) fn broken(self: &Arc<Self>) {
        self.failed_with(true);
    }

    fn failed_with(self: &Arc<Self>, now: bool) {
        let Ok(mut state) = self.state.lock() else { return };
        state.failures = state.failures.saturating_add(1);
        if (!now && state.failures < RESET_AFTER_FAILURES) || state.conn.is_none() {
            return;
        }
        tracing::debug!("replacing the Redis connection after repeated failures");
        state.conn = None;
        state.master = None;
        state.failures = 0;
        self.reconnect_locked(&mut state);
    }

    /// A command succeeded: the failure streak is over.
    pub(crate) fn succeeded(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.failures = 0;
        }
    }

    fn reconnect_locked(self: &Arc<Self>, state: &mut State) {
        if state.connecting || state.conn.is_some() {
            return;
        }
        state.connecting = true;
        tokio::spawn(reconnect(Arc::downgrade(self)));
    }
}

/// Try until a connection is open (or the store is gone), pausing between attempts.
async fn reconnect(link: Weak<Link>) {
    let mut delay = FIRST_RETRY_DELAY;
    loop {
        let Some(strong) = link.upgrade() else { return };
        let outcome = match tokio::time::timeout(strong.connect_timeout, strong.connector.connect()).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(error)) => Err(super::topology::unavailable(error).to_string()),
            Err(_) => Err(StoreError::Timeout.to_string()),
        };
        let done = match strong.state.lock() {
            Ok(mut state) => match outcome {
                Ok((conn, master)) => {
                    state.conn = Some(conn);
                    state.master = master;
                    state.connecting = false;
                    state.failures = 0;
                    state.last_error = None;
                    true
                }
                Err(error) => {
                    state.last_error = Some(error);
                    false
                }
            },
            Err(_) => true,
        };
        strong.attempts.send_modify(|n| *n = n.wrapping_add(1));
        if done {
            return;
        }
        drop(strong);
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(super::MAX_RECONNECT_DELAY);
    }
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Unavailable("Redis connection lock poisoned".into())
}
