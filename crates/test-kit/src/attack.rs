//! Tools for attack tests: a verdict collector that runs every case and reports all
//! failures at once, refusal checks, a watch that proves nothing was minted or
//! changed, a trusted issuer whose key signs any bytes we like, JWS surgery (ECDSA
//! twins, DER signatures, HMAC with a public key), and hostile HTTP peers.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::sts::{Reply, TestSts};

/// What one case found: `Ok` or a reason.
pub type Outcome = Result<(), String>;

/// Runs named cases, keeps every failure, and fails once at the end with all of them.
pub struct Verdicts {
    group: &'static str,
    names: std::collections::BTreeSet<String>,
    failed: Vec<String>,
}

impl Verdicts {
    pub fn new(group: &'static str) -> Self {
        Self {
            group,
            names: Default::default(),
            failed: Vec::new(),
        }
    }

    /// Record the outcome of case `name`.
    pub fn record(&mut self, name: impl Into<String>, outcome: Outcome) {
        let name = name.into();
        assert!(self.names.insert(name.clone()), "case {name} is listed twice");
        if let Err(reason) = outcome {
            self.failed.push(format!("{name}: {reason}"));
        }
    }

    /// How many cases ran.
    pub fn count(&self) -> usize {
        self.names.len()
    }

    /// Fail with every failed case's name and reason; `ATTACK_CASES=list` prints every name.
    #[track_caller]
    pub fn finish(self) {
        if std::env::var("ATTACK_CASES").as_deref() == Ok("list") {
            for name in &self.names {
                eprintln!("case {}: {name}", self.group);
            }
        }
        eprintln!(
            "{}: {} cases, {} failed",
            self.group,
            self.names.len(),
            self.failed.len()
        );
        assert!(
            self.failed.is_empty(),
            "{} of {} {} cases failed:\n  {}",
            self.failed.len(),
            self.names.len(),
            self.group,
            self.failed.join("\n  ")
        );
    }
}

/// Check a protocol refusal: exact status and code, no-store headers, a description
/// in the RFC 6749 §5.2 character set, and a challenge with `invalid_client`.
pub fn refused(reply: &Reply, status: u16, code: &str) -> Outcome {
    if (reply.status, reply.error()) != (status, code) {
        return Err(format!(
            "expected {status} {code}, got {} {}",
            reply.status,
            clip(&reply.text)
        ));
    }
    error_hygiene(reply)?;
    if code == "invalid_client" && !reply.headers.contains_key("www-authenticate") {
        return Err("invalid_client without WWW-Authenticate".into());
    }
    Ok(())
}

/// Headers and description every error response must have.
pub fn error_hygiene(reply: &Reply) -> Outcome {
    let header = |name: &str| reply.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    if header("cache-control") != "no-store" || header("pragma") != "no-cache" {
        return Err(format!(
            "error {} without Cache-Control: no-store and Pragma: no-cache",
            reply.status
        ));
    }
    let description = reply.body["error_description"].as_str().unwrap_or("");
    if let Some(c) = description
        .chars()
        .find(|c| !matches!(c, '\u{20}'..='\u{21}' | '\u{23}'..='\u{5B}' | '\u{5D}'..='\u{7E}'))
    {
        return Err(format!("error_description has {c:?}: {description}"));
    }
    Ok(())
}

/// Expect a successful exchange.
pub fn minted(reply: &Reply) -> Result<Value, String> {
    if reply.status != 200 {
        return Err(format!("expected 200, got {} {}", reply.status, clip(&reply.text)));
    }
    Ok(super::sts::decode_claims(
        reply.body["access_token"].as_str().ok_or("no access_token")?,
    ))
}

/// A response body shortened for a failure message; a minted token is summarised by
/// the claims that matter instead of being printed.
pub fn clip(text: &str) -> String {
    if let Ok(body) = serde_json::from_str::<Value>(text)
        && let Some(token) = body["access_token"].as_str()
        && token.split('.').count() == 3
    {
        let claims = super::sts::decode_claims(token);
        return format!(
            "a token for sub {} act {} user {} sid {} scope {}",
            claims["sub"],
            claims["act"],
            claims["user"],
            clip(claims["sid"].as_str().unwrap_or("")),
            claims["scope"]
        );
    }
    let mut out: String = text.chars().take(200).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// A snapshot proving, later, that nothing was minted or changed.
pub struct Watch {
    events: usize,
    revocations: Value,
}

impl Watch {
    /// Take the snapshot: audit events so far and the revocations in force.
    pub async fn take(sts: &TestSts) -> Self {
        Self {
            events: sts.audit_events().len(),
            revocations: revocations(sts).await,
        }
    }

    /// No event since the snapshot allowed anything, and the revocations are as they were.
    pub async fn unchanged(&self, sts: &TestSts) -> Outcome {
        let events = sts.audit_events();
        // Listing revocations (which the watch itself does) is an observation, not a change.
        if let Some(allowed) = events
            .iter()
            .skip(self.events)
            .find(|e| e["decision"] == "allow" && e["event"] != "admin_list")
        {
            return Err(format!("something was allowed: {allowed}"));
        }
        let now = revocations(sts).await;
        if now != self.revocations {
            return Err(format!("revocations changed: {} -> {now}", self.revocations));
        }
        Ok(())
    }
}

/// The revocations listed by the admin API (the test STS must have it on).
pub async fn revocations(sts: &TestSts) -> Value {
    let reply = sts.admin(reqwest::Method::GET, "", None).await;
    assert_eq!(reply.status, 200, "admin listing: {}", reply.text);
    let mut list: Vec<Value> = reply.body["revocations"].as_array().cloned().unwrap_or_default();
    list.sort_by_key(|e| format!("{}:{}", e["kind"], e["value"]));
    Value::Array(list)
}

/// Whether a revocation of `kind` and `value` is listed.
pub async fn in_force(sts: &TestSts, kind: &str, value: &str) -> bool {
    revocations(sts)
        .await
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| e["kind"] == kind && e["value"] == value)
}

/// POST a body with chosen headers (for requests `TestSts::post_form` cannot make).
pub async fn post_raw(sts: &TestSts, path: &str, headers: &[(&str, &str)], body: String) -> Reply {
    let mut request = sts.http.post(format!("{}{path}", sts.url)).body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    Reply::from(request.send().await.unwrap()).await
}

/// A form body.
pub fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

// ---------------------------------------------------------------------------------
// JWS surgery

/// base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The three segments of a compact JWS.
pub fn segments(token: &str) -> (String, String, String) {
    let mut parts = token.splitn(3, '.');
    let h = parts.next().unwrap_or_default().to_owned();
    let p = parts.next().unwrap_or_default().to_owned();
    let s = parts.next().unwrap_or_default().to_owned();
    (h, p, s)
}

/// The token with its signature replaced by `signature`.
pub fn with_signature(token: &str, signature: &[u8]) -> String {
    let (h, p, _) = segments(token);
    format!("{h}.{p}.{}", b64(signature))
}

/// The raw `r || s` of an ES256 token.
pub fn ecdsa_parts(token: &str) -> ([u8; 32], [u8; 32]) {
    let raw = URL_SAFE_NO_PAD.decode(segments(token).2).unwrap();
    assert_eq!(raw.len(), 64, "not an ES256 signature");
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    r.copy_from_slice(&raw[..32]);
    s.copy_from_slice(&raw[32..]);
    (r, s)
}

/// The order n of the P-256 group, big-endian.
pub const P256_ORDER: [u8; 32] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xBC, 0xE6, 0xFA,
    0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
];

/// `a - b` for 256-bit big-endian numbers with `a >= b`.
pub fn sub_256(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(a[i]) - i16::from(b[i]) - borrow;
        borrow = 0;
        if d < 0 {
            d += 256;
            borrow = 1;
        }
        out[i] = d as u8;
    }
    assert_eq!(borrow, 0, "a < b");
    out
}

/// The ECDSA twin of an ES256 token: `s` replaced by `n - s`. It verifies too.
pub fn high_s_twin(token: &str) -> String {
    let (r, s) = ecdsa_parts(token);
    let twin_s = sub_256(&P256_ORDER, &s);
    with_signature(token, &[r.as_slice(), twin_s.as_slice()].concat())
}

/// An ES256 token's signature re-encoded as ASN.1 DER (what X.509 uses, not JWS).
pub fn der_signature(token: &str) -> String {
    let (r, s) = ecdsa_parts(token);
    let integer = |v: &[u8; 32]| {
        let trimmed: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
        let mut body = if trimmed.first().is_some_and(|b| b & 0x80 != 0) {
            vec![0u8]
        } else {
            Vec::new()
        };
        body.extend(trimmed);
        let mut out = vec![0x02, body.len() as u8];
        out.extend(body);
        out
    };
    let mut content = integer(&r);
    content.extend(integer(&s));
    let mut der = vec![0x30, content.len() as u8];
    der.extend(content);
    with_signature(token, &der)
}

/// HMAC-sign `header.claims` with `secret` (the algorithm-confusion attack).
pub fn hmac_token(alg: &str, header: &Value, claims: &Value, secret: &[u8]) -> String {
    use aws_lc_rs::hmac;
    let algorithm = match alg {
        "HS384" => hmac::HMAC_SHA384,
        "HS512" => hmac::HMAC_SHA512,
        _ => hmac::HMAC_SHA256,
    };
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let tag = hmac::sign(&hmac::Key::new(algorithm, secret), input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

/// The SubjectPublicKeyInfo DER of a P-256 public JWK.
pub fn p256_spki_der(jwk: &Value) -> Vec<u8> {
    let coordinate = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
    let mut der = hex_bytes("3059301306072a8648ce3d020106082a8648ce3d030107034200");
    der.push(0x04);
    der.extend(coordinate("x"));
    der.extend(coordinate("y"));
    der
}

/// PEM text of a DER public key, with a trailing newline.
pub fn public_pem(der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    )
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

// ---------------------------------------------------------------------------------
// A trusted issuer that signs whatever bytes a test hands it

/// An issuer with one P-256 key, served as a JWKS on 127.0.0.1. Configured as trusted,
/// it lets tests sign raw header and claims text (duplicate members, huge numbers);
/// left untrusted, it plays the attacker's key server and counts who came to look.
pub struct ForgeIdp {
    pub url: String,
    pub kid: String,
    pub public_jwk: Value,
    pair: EcdsaKeyPair,
    rng: SystemRandom,
    hits: Arc<AtomicUsize>,
}

impl ForgeIdp {
    pub async fn start(kid: &str) -> Self {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let point = pair.public_key().as_ref().to_vec();
        let public_jwk = json!({
            "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
            "x": b64(&point[1..33]), "y": b64(&point[33..65]),
        });
        let hits = Arc::new(AtomicUsize::new(0));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let jwks = json!({"keys": [public_jwk.clone()]});
        let app = Router::new()
            .fallback(get(
                |State((jwks, hits)): State<(Value, Arc<AtomicUsize>)>| async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    axum::Json(jwks)
                },
            ))
            .with_state((jwks, hits.clone()));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url,
            kid: kid.to_owned(),
            public_jwk,
            pair,
            rng: SystemRandom::new(),
            hits,
        }
    }

    /// Its JWKS URL (any path answers with the JWKS).
    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks.json", self.url)
    }

    /// How many requests it has answered.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Raw `r || s` over a JWS signing input.
    pub fn signature(&self, signing_input: &str) -> Vec<u8> {
        self.pair
            .sign(&self.rng, signing_input.as_bytes())
            .unwrap()
            .as_ref()
            .to_vec()
    }

    /// Sign base64url segments as they are.
    pub fn sign_segments(&self, header_b64: &str, payload_b64: &str) -> String {
        let input = format!("{header_b64}.{payload_b64}");
        let signature = self.signature(&input);
        format!("{input}.{}", b64(&signature))
    }

    /// Sign raw JSON texts (they may hold duplicate members or odd numbers).
    pub fn sign_text(&self, header: &str, claims: &str) -> String {
        self.sign_segments(&b64(header.as_bytes()), &b64(claims.as_bytes()))
    }

    /// Sign JSON values.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        self.sign_text(&header.to_string(), &claims.to_string())
    }

    /// The usual header: ES256 with its kid.
    pub fn header(&self) -> Value {
        json!({"alg": "ES256", "kid": self.kid, "typ": "JWT"})
    }

    /// Claims of a user token from this issuer, valid an hour from `now`.
    pub fn claims(&self, sub: &str, now: u64) -> Value {
        json!({
            "iss": self.url, "sub": sub, "aud": "mcp-sts", "iat": now, "nbf": now,
            "exp": now + 3600, "jti": format!("forge-{sub}-{}", uuid_like()), "roles": ["developer"],
        })
    }

    /// A user token from this issuer.
    pub fn user_token(&self, sub: &str, now: u64) -> String {
        self.sign(&self.header(), &self.claims(sub, now))
    }
}

fn uuid_like() -> String {
    let mut bytes = [0u8; 12];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    b64(&bytes)
}

// ---------------------------------------------------------------------------------
// Hostile HTTP peers for outbound fetches

/// How a hostile peer misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostility {
    /// Accepts the connection and never says a word.
    Silent,
    /// Sends the status line and headers, then nothing.
    HeadersOnly,
    /// A chunked body that never ends (no Content-Length).
    EndlessChunked,
    /// A body delimited by connection close that never closes (no Content-Length).
    EndlessUntilClose,
    /// Declares a body of a terabyte.
    HugeContentLength,
}

/// A server that answers every request in one hostile way and counts what it sent.
pub struct HostilePeer {
    pub url: String,
    requests: Arc<AtomicUsize>,
    sent: Arc<AtomicUsize>,
}

/// Body bytes a streaming peer sends at most before it just holds the connection.
pub const HOSTILE_BUDGET: usize = 32 * 1024 * 1024;

impl HostilePeer {
    pub async fn start(hostility: Hostility) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let sent = Arc::new(AtomicUsize::new(0));
        let (r, s) = (requests.clone(), sent.clone());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                r.fetch_add(1, Ordering::SeqCst);
                let s = s.clone();
                held.push(tokio::spawn(misbehave(socket, hostility, s)));
            }
        });
        Self { url, requests, sent }
    }

    /// Connections accepted.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Body bytes written to peers that were still reading.
    pub fn bytes_sent(&self) -> usize {
        self.sent.load(Ordering::SeqCst)
    }
}

async fn misbehave(mut socket: tokio::net::TcpStream, hostility: Hostility, sent: Arc<AtomicUsize>) {
    // Read the request head so the client is waiting for us, not still writing.
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let chunk = vec![b' '; 64 * 1024];
    match hostility {
        Hostility::Silent => {}
        Hostility::HeadersOnly => {
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n")
                .await;
        }
        Hostility::HugeContentLength => {
            let head =
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1099511627776\r\n\r\n{\"keys\":[";
            let _ = socket.write_all(head.as_bytes()).await;
        }
        Hostility::EndlessChunked => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
            if socket.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let frame = [format!("{:x}\r\n", chunk.len()).into_bytes(), chunk, b"\r\n".to_vec()].concat();
            while sent.load(Ordering::SeqCst) < HOSTILE_BUDGET {
                if socket.write_all(&frame).await.is_err() {
                    return;
                }
                sent.fetch_add(frame.len(), Ordering::SeqCst);
            }
        }
        Hostility::EndlessUntilClose => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n";
            if socket.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            while sent.load(Ordering::SeqCst) < HOSTILE_BUDGET {
                if socket.write_all(&chunk).await.is_err() {
                    return;
                }
                sent.fetch_add(chunk.len(), Ordering::SeqCst);
            }
        }
    }
    // Hold the connection open until the peer gives up.
    while let Ok(n) = socket.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}
