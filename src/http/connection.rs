//! The server's edges: accepting connections and what one connection may cost.
//!
//! Each connection is served by hyper (HTTP/1.1) and watched by one deadline that
//! depends on where the connection is: a new connection, and a request head that has
//! begun, must finish the head within `header_read_timeout_ms` (from accept, or from
//! the head's first byte on a kept-alive connection); between requests a kept-alive
//! connection is closed after `keep_alive_timeout_ms`; while a request is answered,
//! the body deadline (`edge`) and each handler's own deadlines apply. At most
//! `max_connections` are served at once; further clients wait in the listen backlog.
//! On shutdown the listener closes, idle connections close, requests in flight get
//! `shutdown_timeout_ms`, and what is left after that is abandoned.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;

use crate::audit::AuditEvent;
use crate::service::Sts;

pub(crate) use super::limits::EdgeLimits;

/// Pause after a failed `accept` (out of file descriptors, say) before trying again.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Serve `app` on `listener` until `shutdown` resolves, then give requests in flight
/// their deadline and abandon the rest.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    sts: Arc<Sts>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = EdgeLimits::from_config(&sts.config().server);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        // A permit first: at the cap, new clients wait in the backlog, not in memory.
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "cannot accept a connection; retrying");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            },
        };
        while connections.try_join_next().is_some() {}
        let connection = Connection {
            app: app.clone(),
            sts: sts.clone(),
            limits,
            stop: stopped.clone(),
            _permit: permit,
        };
        connections.spawn(connection.serve(stream));
    }
    drop(listener);
    let _ = stop.send(true);
    let drained = tokio::time::timeout(limits.shutdown, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_ok() {
        tracing::info!("every connection finished");
    } else {
        tracing::warn!(
            abandoned = connections.len(),
            deadline_ms = limits.shutdown.as_millis(),
            "shutdown deadline passed (server.shutdown_timeout_ms); abandoning connections still in flight"
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// Where a connection is; each phase but `Busy` has its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Accepted at this moment, not a byte yet.
    Fresh(Instant),
    /// A request head has begun; its deadline counts from this moment.
    Head(Instant),
    /// Kept alive since this moment, waiting for the next request.
    Idle(Instant),
    /// A request is being answered.
    Busy,
}

/// Why a watched connection was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    /// A request head did not arrive whole in time: a refusal, audited.
    HeaderTimeout,
    /// Nothing was sent, or nothing more after the last answer: closed quietly.
    Idle,
}

/// The phase of one connection, shared by its reader, its service and its watchdog.
/// Nothing wakes the watchdog: it never sleeps past the earliest deadline any phase
/// change could bring, and looks again when it wakes (see [`ConnectionState::next`]).
struct ConnectionState {
    phase: Mutex<Phase>,
}

impl ConnectionState {
    fn new(now: Instant) -> Self {
        Self {
            phase: Mutex::new(Phase::Fresh(now)),
        }
    }

    fn update(&self, next: impl FnOnce(Phase) -> Phase) {
        let mut phase = match self.phase.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *phase = next(*phase);
    }

    fn phase(&self) -> Phase {
        match self.phase.lock() {
            Ok(guard) => *guard,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    /// Bytes arrived: between requests they start a head.
    fn bytes_in(&self) {
        self.update(|phase| match phase {
            Phase::Fresh(accepted) => Phase::Head(accepted),
            Phase::Idle(_) => Phase::Head(Instant::now()),
            other => other,
        });
    }

    /// At `now`: what has expired, or when to look again. A head begun later than
    /// now ends no sooner than `now + header_read`, and an idle spell begun later no
    /// sooner than `now + keep_alive`, so waking by then misses no deadline.
    fn next(&self, limits: &EdgeLimits, now: Instant) -> Result<Instant, Expiry> {
        let (header, idle) = (limits.header_read, limits.keep_alive);
        let by = |deadline: Instant, expiry| if now >= deadline { Err(expiry) } else { Ok(deadline) };
        match self.phase() {
            // A connection that never sent a byte is closed quietly.
            Phase::Fresh(since) => by(since + header, Expiry::Idle),
            Phase::Head(since) => by(since + header, Expiry::HeaderTimeout),
            Phase::Idle(since) => by(since + idle, Expiry::Idle).map(|close| close.min(now + header)),
            Phase::Busy => Ok(now + header.min(idle)),
        }
    }
}

/// The socket, telling the connection's state when bytes arrive.
struct Watched {
    stream: TcpStream,
    state: Arc<ConnectionState>,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.bytes_in();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// One accepted connection and what it needs.
struct Connection {
    app: Router,
    sts: Arc<Sts>,
    limits: EdgeLimits,
    stop: watch::Receiver<bool>,
    /// Returned to the cap when the connection ends.
    _permit: OwnedSemaphorePermit,
}

impl Connection {
    async fn serve(mut self, stream: TcpStream) {
        let state = Arc::new(ConnectionState::new(Instant::now()));
        let io = TokioIo::new(Watched {
            stream,
            state: state.clone(),
        });
        let service = {
            let (app, state) = (self.app.clone(), state.clone());
            hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                state.update(|_| Phase::Busy);
                let (app, state) = (app.clone(), state.clone());
                async move {
                    let response = app.oneshot(request.map(Body::new)).await;
                    state.update(|_| Phase::Idle(Instant::now()));
                    response
                }
            })
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        // Head deadlines are ours (from the head's first byte, apart from keep-alive).
        builder.header_read_timeout(None);
        let mut connection = pin!(builder.serve_connection(io, service));
        let mut stopping = *self.stop.borrow();
        if stopping {
            connection.as_mut().graceful_shutdown();
        }
        // One timer, reset each time it fires: the request path never touches it.
        let watchdog = tokio::time::sleep(self.limits.header_read);
        let mut watchdog = pin!(watchdog);
        loop {
            tokio::select! {
                served = connection.as_mut() => {
                    if let Err(error) = served {
                        self.report_error(&error);
                    }
                    return;
                }
                () = &mut watchdog => match state.next(&self.limits, Instant::now()) {
                    Ok(next) => watchdog.as_mut().reset(next),
                    Err(expiry) => {
                        self.report_expiry(expiry);
                        return;
                    }
                },
                _ = self.stop.changed(), if !stopping => {
                    stopping = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }

    /// A head that never completed is a refusal like any other: audited and counted.
    fn report_expiry(&self, expiry: Expiry) {
        match expiry {
            Expiry::HeaderTimeout => refused_at_the_edge(
                &self.sts,
                "request.header_timeout",
                "the request head was not complete within server.header_read_timeout_ms",
            ),
            Expiry::Idle => self.sts.metrics().connection_closed("idle"),
        }
    }

    /// hyper answered a malformed head itself (400 or 431); audit it as ours.
    fn report_error(&self, error: &hyper::Error) {
        if error.is_parse_too_large() {
            refused_at_the_edge(&self.sts, "request.head_too_large", "the request head is too large");
        } else if error.is_parse() {
            refused_at_the_edge(&self.sts, "request.malformed_head", "the request head is malformed");
        }
    }
}

/// Audit and count a refusal made before any endpoint saw the request.
pub(super) fn refused_at_the_edge(sts: &Sts, rule: &str, detail: &str) {
    let mut audit = AuditEvent::new(super::edge::EVENT, sts.clock().now());
    audit.reason = Some(format!("invalid_request:{rule}"));
    audit.detail = Some(detail.to_owned());
    sts.metrics().decision(super::edge::EVENT, "invalid_request");
    sts.audit().emit(&audit);
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: EdgeLimits = EdgeLimits {
        header_read: Duration::from_secs(10),
        body_read: Duration::from_secs(10),
        keep_alive: Duration::from_secs(60),
        max_connections: 1,
        shutdown: Duration::from_secs(10),
        max_body_bytes: 1024,
    };

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_never_sleeps_past_a_deadline_and_never_closes_early() {
        let t0 = Instant::now();
        let state = ConnectionState::new(t0);
        // A new connection: its first head is due 10 s after accept, bytes or not.
        assert_eq!(state.next(&LIMITS, t0), Ok(t0 + s(10)));
        assert_eq!(state.next(&LIMITS, t0 + s(10)), Err(Expiry::Idle));
        state.bytes_in();
        assert_eq!(state.next(&LIMITS, t0 + s(9)), Ok(t0 + s(10)));
        assert_eq!(state.next(&LIMITS, t0 + s(10)), Err(Expiry::HeaderTimeout));
        // Answering: no deadline, but a look again before any later one could fall.
        state.update(|_| Phase::Busy);
        assert_eq!(state.next(&LIMITS, t0 + s(30)), Ok(t0 + s(40)));
        // Kept alive from t0+32: closed at +60, looked at every 10 s meanwhile.
        state.update(|_| Phase::Idle(t0 + s(32)));
        assert_eq!(state.next(&LIMITS, t0 + s(32)), Ok(t0 + s(42)));
        assert_eq!(state.next(&LIMITS, t0 + s(90)), Ok(t0 + s(92)));
        assert_eq!(state.next(&LIMITS, t0 + s(92)), Err(Expiry::Idle));
        // A head begun while kept alive has its own 10 s from its first byte.
        tokio::time::advance(s(50)).await;
        let began = Instant::now();
        state.bytes_in();
        assert_eq!(state.next(&LIMITS, began + s(5)), Ok(began + s(10)));
        assert_eq!(state.next(&LIMITS, began + s(10)), Err(Expiry::HeaderTimeout));
    }
}
