//! The review page: a local web server that shows flagged images and records a
//! person's decision on each (keep, relabel, remove) in a journal, one line per
//! decision, written through at once, so a reload or a crash loses nothing.
//!
//! Security: only the manifest's images are served, and only when their real path
//! (symlinks resolved) lies inside the dataset's root; requests must name the server's
//! own host (no DNS rebinding); state-changing requests need the page's per-session
//! token and are refused from another origin. The server binds to loopback unless told
//! otherwise.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, io_err};
use crate::manifest::Manifest;

/// The largest request body accepted: a decision is a few dozen bytes.
const MAX_BODY_BYTES: usize = 4096;

/// What a person decided about one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Decision {
    /// The image is right as it is and stays in the dataset.
    Keep,
    /// The image does not belong in the dataset: applying the review moves it to the
    /// quarantine folder.
    Remove,
    /// The image carries the wrong label: applying the review gives it `class`.
    Relabel {
        /// The name of the image's right class, one of the dataset's classes.
        class: String,
    },
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Path relative to the dataset's root.
    pub image: String,
    /// What the person decided about the image.
    #[serde(flatten)]
    pub decision: Decision,
}

/// The largest journal read.
const MAX_JOURNAL_BYTES: u64 = 256 << 20;

/// The latest decision per image of a journal (later lines win). A missing journal is
/// an empty one; a torn last line (a crash mid-write) is ignored. A journal that is a
/// symbolic link or larger than 256 MiB is refused.
pub fn read_journal(path: &Path) -> Result<HashMap<String, Decision>> {
    let mut out = HashMap::new();
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(out);
    }
    vista_data::refuse_symlink(path)?;
    let bytes = vista_data::read_limited(path, MAX_JOURNAL_BYTES)?;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str::<JournalEntry>(line) {
            Ok(e) => {
                out.insert(e.image, e.decision);
            }
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => {}
            Err(source) => {
                return Err(Error::Json {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    }
    Ok(out)
}

/// Cuts a torn last line (a crash mid-write) off the journal, so the next decision
/// starts on a line of its own instead of gluing onto the fragment. The fragment was
/// never acknowledged to the page. Returns the bytes cut.
pub fn repair_journal(path: &Path) -> Result<u64> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(0);
    }
    vista_data::refuse_symlink(path)?;
    let bytes = vista_data::read_limited(path, MAX_JOURNAL_BYTES)?;
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        return Ok(0);
    }
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err(path))?;
    f.set_len(keep as u64).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))?;
    Ok((bytes.len() - keep) as u64)
}

/// Appends one entry and flushes it to disk before returning. The journal is opened
/// without following a symbolic link.
pub fn append_journal(path: &Path, entry: &JournalEntry) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut line = serde_json::to_string(entry).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        source,
    })?;
    line.push('\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(io_err(path))?;
    vista_data::fault_point("write").map_err(io_err(path))?;
    f.write_all(line.as_bytes()).map_err(io_err(path))?;
    vista_data::fault_point("fsync").map_err(io_err(path))?;
    f.sync_data().map_err(io_err(path))
}

/// The real path of `rel` below `root` (itself canonical), or `None` when `rel` is
/// absolute, climbs with `..`, does not exist, or resolves (through a symlink) outside.
pub fn resolve_inside(root: &Path, rel: &str) -> Option<PathBuf> {
    let p = Path::new(rel);
    if p.components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return None;
    }
    let real = root.join(p).canonicalize().ok()?;
    (real.starts_with(root) && real.is_file()).then_some(real)
}

/// One image on the page.
#[derive(Debug, Clone, Serialize)]
struct Item {
    image: String,
    given: String,
    predicted: String,
    probability: f32,
    reason: &'static str,
    decision: Option<Decision>,
}

#[derive(Debug)]
struct AppState {
    root: PathBuf,
    manifest: Manifest,
    journal: PathBuf,
    token: String,
    /// The `Host` values the server answers to.
    hosts: Vec<String>,
    decisions: Mutex<HashMap<String, Decision>>,
}

/// A review session, ready to serve.
#[derive(Debug, Clone)]
pub struct Review {
    root: PathBuf,
    manifest: Manifest,
    journal: PathBuf,
    token: String,
    decisions: HashMap<String, Decision>,
}

impl Review {
    /// A session over `manifest`'s images with its decisions in `journal` (replayed).
    pub fn new(manifest: Manifest, journal: PathBuf) -> Result<Review> {
        let root = manifest
            .dataset
            .canonicalize()
            .map_err(io_err(&manifest.dataset))?;
        repair_journal(&journal)?;
        let decisions = read_journal(&journal)?;
        let mut rng = rand::rng();
        let token = (0..32)
            .map(|_| format!("{:x}", rng.random_range(0..16u8)))
            .collect();
        Ok(Review {
            root,
            manifest,
            journal,
            token,
            decisions,
        })
    }

    /// The token state-changing requests must carry.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The app, answering only to `Host: <addr>` (and `localhost:<port>` for loopback).
    pub fn router(&self, addr: std::net::SocketAddr) -> Router {
        let mut hosts = vec![addr.to_string()];
        if addr.ip().is_loopback() {
            hosts.push(format!("localhost:{}", addr.port()));
        }
        let state = Arc::new(AppState {
            root: self.root.clone(),
            manifest: self.manifest.clone(),
            journal: self.journal.clone(),
            token: self.token.clone(),
            hosts,
            decisions: Mutex::new(self.decisions.clone()),
        });
        Router::new()
            .route("/", get(page))
            .route("/api/items", get(items))
            .route("/image/{index}", get(image))
            .route("/api/decide", post(decide))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(state)
    }

    /// Serves on `listener` until the task is dropped.
    pub async fn serve(&self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        let addr = listener.local_addr()?;
        axum::serve(listener, self.router(addr)).await
    }
}

fn host_ok(state: &AppState, headers: &HeaderMap) -> bool {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| state.hosts.iter().any(|ok| ok == h))
}

/// Whether a read may see the dataset's images and flags: it carries the page's token
/// (the `X-Vista-Token` header, or `t=` in the query for `<img>` requests), or the
/// browser says it comes from our own page (`Sec-Fetch-Site: same-origin`). Another
/// site's page can make a browser send neither.
fn read_allowed(state: &AppState, headers: &HeaderMap, query: Option<&str>) -> bool {
    let header_token = headers.get("x-vista-token").and_then(|t| t.to_str().ok());
    let query_token = query.and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("t=")));
    let same_origin = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "same-origin");
    same_origin
        || header_token == Some(state.token.as_str())
        || query_token == Some(state.token.as_str())
}

fn refuse(status: StatusCode, why: &'static str) -> Response {
    (status, why).into_response()
}

async fn page(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if !host_ok(&s, &headers) {
        return refuse(StatusCode::MISDIRECTED_REQUEST, "unknown host");
    }
    let html = include_str!("review.html").replace("{{TOKEN}}", &s.token);
    (
        [
            (header::CONTENT_SECURITY_POLICY, "default-src 'self'; img-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; frame-ancestors 'none'"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        Html(html),
    )
        .into_response()
}

async fn items(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if !host_ok(&s, &headers) {
        return refuse(StatusCode::MISDIRECTED_REQUEST, "unknown host");
    }
    if !read_allowed(&s, &headers, None) {
        return refuse(StatusCode::FORBIDDEN, "missing or wrong session token");
    }
    let decisions = s.decisions.lock().expect("not poisoned");
    let items: Vec<Item> = s
        .manifest
        .flags
        .iter()
        .map(|f| Item {
            image: f.image.clone(),
            given: f.given.clone(),
            predicted: f.predicted.clone(),
            probability: f.probability,
            reason: f.reason.name(),
            decision: decisions.get(&f.image).cloned(),
        })
        .collect();
    axum::Json(serde_json::json!({ "classes": s.manifest.classes, "items": items })).into_response()
}

async fn image(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    UrlPath(index): UrlPath<usize>,
    RawQuery(query): RawQuery,
) -> Response {
    if !host_ok(&s, &headers) {
        return refuse(StatusCode::MISDIRECTED_REQUEST, "unknown host");
    }
    if !read_allowed(&s, &headers, query.as_deref()) {
        return refuse(StatusCode::FORBIDDEN, "missing or wrong session token");
    }
    let Some(flag) = s.manifest.flags.get(index) else {
        return refuse(StatusCode::NOT_FOUND, "no such image");
    };
    let Some(real) = resolve_inside(&s.root, &flag.image) else {
        return refuse(StatusCode::FORBIDDEN, "outside the dataset");
    };
    let mime = match real
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
    {
        Some(e) if e == "png" => "image/png",
        Some(e) if e == "jpg" || e == "jpeg" => "image/jpeg",
        _ => return refuse(StatusCode::FORBIDDEN, "not an image"),
    };
    match tokio::fs::read(&real).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, mime),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::CACHE_CONTROL, "no-store"),
                (
                    header::HeaderName::from_static("cross-origin-resource-policy"),
                    "same-origin",
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => refuse(StatusCode::NOT_FOUND, "unreadable"),
    }
}

#[derive(Debug, Deserialize)]
struct DecideRequest {
    index: usize,
    #[serde(flatten)]
    decision: Decision,
}

async fn decide(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !host_ok(&s, &headers) {
        return refuse(StatusCode::MISDIRECTED_REQUEST, "unknown host");
    }
    // A browser names the page's origin on every POST; another site's page cannot
    // pretend to be ours, and without the token (which only our page can read) the
    // request is refused anyway.
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        let ours = s.hosts.iter().any(|h| origin == format!("http://{h}"));
        if !ours {
            return refuse(StatusCode::FORBIDDEN, "cross-origin request refused");
        }
    }
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site")
    {
        return refuse(StatusCode::FORBIDDEN, "cross-site request refused");
    }
    let token = headers.get("x-vista-token").and_then(|t| t.to_str().ok());
    if token != Some(s.token.as_str()) {
        return refuse(StatusCode::FORBIDDEN, "missing or wrong session token");
    }
    let Ok(req) = serde_json::from_slice::<DecideRequest>(&body) else {
        return refuse(StatusCode::BAD_REQUEST, "expected {index, action[, class]}");
    };
    let Some(flag) = s.manifest.flags.get(req.index) else {
        return refuse(StatusCode::NOT_FOUND, "no such image");
    };
    if let Decision::Relabel { class } = &req.decision
        && !s.manifest.classes.contains(class)
    {
        return refuse(StatusCode::BAD_REQUEST, "unknown class");
    }
    let entry = JournalEntry {
        image: flag.image.clone(),
        decision: req.decision,
    };
    let mut decisions = s.decisions.lock().expect("not poisoned");
    if append_journal(&s.journal, &entry).is_err() {
        return refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot write the journal",
        );
    }
    decisions.insert(entry.image, entry.decision);
    StatusCode::NO_CONTENT.into_response()
}
