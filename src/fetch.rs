//! Every outbound HTTP read goes through [`fetch`]: a hard byte cap and a deadline.
//!
//! A peer we fetch from (an IdP's discovery document or JWKS, a client's `jwks_uri`,
//! the STS's JWKS or introspection answer) is not trusted to be small or quick. The
//! body is read chunk by chunk and the read stops as soon as the running total passes
//! the cap, whether or not `Content-Length` was sent; the whole exchange (connect,
//! headers, body) must finish within the timeout. Memory stays bounded by the cap plus
//! one chunk, whatever the peer sends.

use std::time::Duration;

use reqwest::StatusCode;

/// How much and how long one fetch may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchLimits {
    /// Deadline for the whole fetch: connecting, the response head and the body.
    pub timeout: Duration,
    /// Largest body accepted, in bytes.
    pub max_bytes: usize,
}

/// A response read whole, within its limits.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The HTTP status; callers decide what a non-success means to them.
    pub status: StatusCode,
    /// The body, at most `max_bytes` long.
    pub body: Vec<u8>,
    /// A server nonce the answer carried (RFC 9449 §8, `DPoP-Nonce`), for a token
    /// client's next proof.
    pub dpop_nonce: Option<String>,
    /// The `Cache-Control` header, for callers that cache what they fetched.
    pub cache_control: Option<String>,
}

/// Why a fetch gave nothing usable. Messages never carry the URL or the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// No connection could be made.
    #[error("unreachable (connection failed)")]
    Unreachable,
    /// The request failed after connecting (reset, protocol error).
    #[error("request failed")]
    Failed,
    /// The deadline passed before the body was complete.
    #[error("timed out")]
    TimedOut,
    /// The body is larger than the cap (announced, or counted while streaming).
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
}

/// Send `request` and read its body under `limits`.
///
/// Dropping the response half-read closes the connection, so a peer streaming an
/// endless body is cut off as soon as the cap is passed.
pub async fn fetch(request: reqwest::RequestBuilder, limits: FetchLimits) -> Result<Fetched, FetchError> {
    match tokio::time::timeout(limits.timeout, read_capped(request, limits.max_bytes)).await {
        Ok(result) => result,
        Err(_) => Err(FetchError::TimedOut),
    }
}

async fn read_capped(request: reqwest::RequestBuilder, max_bytes: usize) -> Result<Fetched, FetchError> {
    let mut response = request.send().await.map_err(classify)?;
    let status = response.status();
    let dpop_nonce = response
        .headers()
        .get("dpop-nonce")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let cache_control = response
        .headers()
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let announced = response.content_length();
    if announced.is_some_and(|n| n > max_bytes as u64) {
        return Err(FetchError::TooLarge(max_bytes));
    }
    let capacity = announced.map_or(0, |n| usize::try_from(n).unwrap_or(max_bytes).min(max_bytes));
    let mut body = Vec::with_capacity(capacity);
    while let Some(chunk) = response.chunk().await.map_err(classify)? {
        if chunk.len() > max_bytes.saturating_sub(body.len()) {
            return Err(FetchError::TooLarge(max_bytes));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched {
        status,
        body,
        dpop_nonce,
        cache_control,
    })
}

fn classify(error: reqwest::Error) -> FetchError {
    if error.is_timeout() {
        FetchError::TimedOut
    } else if error.is_connect() {
        FetchError::Unreachable
    } else {
        FetchError::Failed
    }
}

/// Whether `url` would be read in clear text from somewhere other than this machine
/// (plain http to a host that is not `localhost` or a loopback address).
pub fn plain_http_off_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback =
        host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    url.scheme() == "http" && !loopback
}

/// The HTTP client for outbound fetches: no redirects (a redirect could point a key
/// fetch anywhere), a bounded connect time. Per-fetch deadlines come from [`FetchLimits`].
pub fn http_client(connect_timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use axum::Router;
    use axum::body::{Body, Bytes};
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;

    use super::*;

    const LIMITS: FetchLimits = FetchLimits {
        timeout: Duration::from_secs(5),
        max_bytes: 1024,
    };

    async fn serve(app: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    /// 100-byte chunks, `count` of them, with no Content-Length.
    fn chunked(count: usize) -> Response {
        let chunks = (0..count).map(|_| Ok::<_, Infallible>(Bytes::from(vec![b'x'; 100])));
        Body::from_stream(futures_util::stream::iter(chunks)).into_response()
    }

    async fn get_from(url: &str) -> Result<Fetched, FetchError> {
        fetch(reqwest::Client::new().get(url), LIMITS).await
    }

    #[tokio::test]
    async fn bodies_within_the_cap_are_read_whole_whatever_the_status() {
        let app = Router::new()
            .route("/small", get(|| async { chunked(10) }))
            .route("/exact", get(|| async { vec![b'y'; 1024] }))
            .route("/missing", get(|| async { (StatusCode::NOT_FOUND, "nope") }));
        let url = serve(app).await;
        let small = get_from(&format!("{url}/small")).await.unwrap();
        assert_eq!((small.status, small.body.len()), (StatusCode::OK, 1000));
        assert_eq!(get_from(&format!("{url}/exact")).await.unwrap().body.len(), 1024);
        let missing = get_from(&format!("{url}/missing")).await.unwrap();
        assert_eq!(
            (missing.status, missing.body.as_slice()),
            (StatusCode::NOT_FOUND, &b"nope"[..])
        );
    }

    #[tokio::test]
    async fn a_body_past_the_cap_is_refused_with_or_without_content_length() {
        let app = Router::new()
            .route("/announced", get(|| async { vec![b'y'; 1025] }))
            .route("/streamed", get(|| async { chunked(11) }));
        let url = serve(app).await;
        for path in ["announced", "streamed"] {
            assert_eq!(
                get_from(&format!("{url}/{path}")).await.unwrap_err(),
                FetchError::TooLarge(1024),
                "{path}"
            );
        }
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        drop(listener);
        assert_eq!(get_from(&url).await.unwrap_err(), FetchError::Unreachable);
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_never_answers_hits_the_deadline() {
        let url = serve(Router::new().fallback(std::future::pending::<Response>)).await;
        let started = tokio::time::Instant::now();
        assert_eq!(get_from(&url).await.unwrap_err(), FetchError::TimedOut);
        assert_eq!(started.elapsed().as_secs(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_never_ends_hits_the_deadline() {
        let drip = || async {
            let first = futures_util::stream::iter([Ok::<_, Infallible>(Bytes::from_static(b"{"))]);
            let rest = futures_util::stream::pending::<Result<Bytes, Infallible>>();
            Body::from_stream(futures_util::StreamExt::chain(first, rest)).into_response()
        };
        let url = serve(Router::new().route("/", get(drip))).await;
        assert_eq!(get_from(&format!("{url}/")).await.unwrap_err(), FetchError::TimedOut);
    }
}
