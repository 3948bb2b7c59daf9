//! A downstream API protected by mcp-sts tokens: a small notes service in plain axum.
//!
//! It trusts one issuer (mcp-sts) and answers to two names, its audience id `notes-api`
//! and its resource URI: a token's `aud` is the id when the MCP server asked mcp-sts with
//! `audience`, the URI when it asked with `resource`. Handlers get the verified
//! `ExecutionIdentity` (user, agent, client, scopes) and key every decision on it, never
//! on request arguments.
//!
//! It hears revocations on mcp-sts's Shared Signals stream (as the client `notes-api`)
//! and refuses a revoked user's, session's or agent's token locally, without asking
//! mcp-sts per request; its state file keeps what it heard across restarts.
//!
//! Run against `mcp-sts demo --keep-running` (it prints the values to use):
//!
//! ```sh
//! MCP_STS_URL=http://127.0.0.1:<port> NOTES_API_SECRET_FILE=/tmp/mcp-sts-demo-.../notes-api.secret \
//!     cargo run -p mcp-sts-downstream --example downstream_api
//! ```
//!
//! Settings (environment): `MCP_STS_URL` and `NOTES_API_SECRET_FILE` (the client
//! secret of `notes-api` at mcp-sts) required; `NOTES_API_LISTEN` (default
//! `127.0.0.1:8403`), `NOTES_API_RESOURCE` (default `http://127.0.0.1:8403/api`),
//! `NOTES_API_STATE` (the stream's state file; default `notes-api.revocations.json` in
//! the system's temporary directory).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::extract::{FromRef, State};
use axum::routing::get;
use axum::{Json, Router};
use mcp_sts_downstream::verify::{
    AuthRejection, Authenticated, RevocationStream, RevocationStreamConfig, Verifier, VerifierConfig,
};
use serde::{Deserialize, Serialize};

/// This service's audience id at mcp-sts.
const AUDIENCE: &str = "notes-api";

/// One note, owned by the user who wrote it.
#[derive(Debug, Clone, Serialize)]
struct Note {
    id: usize,
    text: String,
    /// The agent application that wrote it on the user's behalf.
    via: Option<String>,
}

/// The service's state: the verifier and everyone's notes, by user.
#[derive(Clone)]
struct AppState {
    verifier: Arc<Verifier>,
    notes: Arc<Mutex<BTreeMap<String, Vec<Note>>>>,
}

/// The `Authenticated` extractor finds the verifier in the state; without it a route
/// asking for an identity does not compile.
impl FromRef<AppState> for Arc<Verifier> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.verifier)
    }
}

/// `GET /api/notes`: the caller's own notes (`notes:read`).
async fn list(State(state): State<AppState>, auth: Authenticated) -> Result<Json<Vec<Note>>, AuthRejection> {
    let identity = auth.require_scope("notes:read")?;
    let notes = state
        .notes
        .lock()
        .map(|all| all.get(identity.user()).cloned().unwrap_or_default())
        .unwrap_or_default();
    println!("{} listed their notes", identity.describe());
    Ok(Json(notes))
}

/// `POST /api/notes` body.
#[derive(Debug, Deserialize)]
struct NewNote {
    text: String,
}

/// `POST /api/notes`: add a note for the caller (`notes:write`).
async fn add(
    State(state): State<AppState>,
    auth: Authenticated,
    Json(new): Json<NewNote>,
) -> Result<Json<Note>, AuthRejection> {
    let identity = auth.require_scope("notes:write")?;
    let mut all = state.notes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let notes = all.entry(identity.user().to_owned()).or_default();
    let note = Note {
        id: notes.len() + 1,
        text: new.text.chars().take(500).collect(),
        via: identity.agent_application().map(str::to_owned),
    };
    notes.push(note.clone());
    println!("{} added note {}", identity.describe(), note.id);
    Ok(Json(note))
}

fn setting(name: &str, default: Option<&str>) -> anyhow::Result<String> {
    match (std::env::var(name), default) {
        (Ok(value), _) => Ok(value),
        (Err(_), Some(default)) => Ok(default.to_owned()),
        (Err(_), None) => anyhow::bail!("set {name}"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let issuer = setting("MCP_STS_URL", None)?;
    let listen = setting("NOTES_API_LISTEN", Some("127.0.0.1:8403"))?;
    let resource = setting("NOTES_API_RESOURCE", Some("http://127.0.0.1:8403/api"))?;
    let secret_file = setting("NOTES_API_SECRET_FILE", None)?;
    let secret = std::fs::read_to_string(&secret_file).with_context(|| format!("cannot read {secret_file}"))?;
    let default_state = std::env::temp_dir().join("notes-api.revocations.json");
    let state = setting("NOTES_API_STATE", default_state.to_str())?;

    // Revocations arrive on mcp-sts's Shared Signals stream (polled every second) and
    // are checked locally; tokens issued before the stream covers them, or while it
    // is stale, are refused with 503 rather than trusted blindly.
    let mut stream = RevocationStreamConfig::new(&issuer, AUDIENCE, secret.trim_end());
    stream.state_path = Some(state.into());
    // mcp-sts runs on this machine (the demo): no clock skew to allow for. Keep the
    // default (30 s) across machines.
    stream.leeway = std::time::Duration::from_secs(2);
    let stream = Arc::new(RevocationStream::new(stream)?);
    stream.clone().spawn();

    // Keys come from mcp-sts's JWKS (cached, refetched on an unknown kid).
    let mut config = VerifierConfig::new(&issuer, AUDIENCE).also_accept(&resource);
    config.revocation_stream = Some(stream);
    let state = AppState {
        verifier: Arc::new(Verifier::new(config)?),
        notes: Arc::default(),
    };
    let app = Router::new().route("/api/notes", get(list).post(add)).with_state(state);
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!(
        "notes-api on http://{}/api (audience {AUDIENCE} or {resource})",
        listener.local_addr()?
    );
    axum::serve(listener, app).await?;
    Ok(())
}
