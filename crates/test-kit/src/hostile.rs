//! Peers that misbehave, on 127.0.0.1:0: an HTTP server that streams a huge JSON body
//! in chunks without `Content-Length`, and one that takes requests and never answers.

#![allow(dead_code)]

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::Response;
use tokio::net::TcpSocket;
use tokio::sync::oneshot;

/// Size of each chunk the flood writes.
pub const CHUNK: usize = 16 * 1024;

/// A server answering every GET with a chunked JSON body of `total` bytes (the start of
/// a JWK set, then filler), counting what it hands to the connection.
pub struct Flood {
    pub url: String,
    state: Arc<FloodState>,
    finished: Option<oneshot::Receiver<()>>,
}

struct FloodState {
    total: usize,
    written: AtomicUsize,
    requests: AtomicUsize,
    on_drop: Mutex<Option<oneshot::Sender<()>>>,
}

/// Held by the body stream: dropped when the server stops sending (client gone or done).
struct Finished(Option<oneshot::Sender<()>>);

impl Flood {
    /// Start a flood of `total` bytes per request.
    pub async fn start(total: usize) -> Self {
        let (tx, rx) = oneshot::channel();
        let state = Arc::new(FloodState {
            total,
            written: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            on_drop: Mutex::new(Some(tx)),
        });
        let app = Router::new().fallback(flood).with_state(Arc::clone(&state));
        let url = serve_small_buffers(app).await;
        Self {
            url,
            state,
            finished: Some(rx),
        }
    }

    /// Bytes the server has produced so far.
    pub fn written(&self) -> usize {
        self.state.written.load(Ordering::SeqCst)
    }

    /// Requests received.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Wait until the first response body is dropped: the client hung up (or all was sent).
    pub async fn finished(&mut self) {
        if let Some(rx) = self.finished.take() {
            let _ = rx.await;
        }
    }
}

async fn flood(State(state): State<Arc<FloodState>>) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let guard = Finished(state.on_drop.lock().unwrap().take());
    let opening = Bytes::from_static(br#"{"keys":[{"kty":"oct","k":""#);
    let filler = Bytes::from(vec![b'A'; CHUNK]);
    let stream = futures_util::stream::unfold((state, guard, true), move |(state, guard, first)| {
        let chunk = if first { opening.clone() } else { filler.clone() };
        async move {
            let sent = state.written.load(Ordering::SeqCst);
            if sent >= state.total {
                return None;
            }
            state.written.fetch_add(chunk.len(), Ordering::SeqCst);
            Some((Ok::<_, Infallible>(chunk), (state, guard, false)))
        }
    });
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap()
}

/// A server whose every request waits forever for an answer.
pub async fn silent() -> String {
    let app = Router::new().fallback(std::future::pending::<Response>);
    serve_small_buffers(app).await
}

/// Serve `app` on 127.0.0.1:0 with small socket send buffers, so what the server has
/// produced is close to what the client has been sent; returns `http://addr`.
async fn serve_small_buffers(app: Router) -> String {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(CHUNK as u32 * 4).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(16).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}
