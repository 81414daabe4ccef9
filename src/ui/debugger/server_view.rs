//! The debugger's Server tab: the server's own view of the room
//! (`GET /rooms/{id}`, docs/protocol.md HTTP section) next to the client's.
//!
//! ```text
//!  fetch task (tokio, every 2 s) ── GET {origin}/rooms/{room} + X-AUTH-TOKEN ──▶ server
//!        │ bounded channel (try_send: never waits)
//!        ▼
//!  ServerView::poll (UI thread, non-blocking) ─▶ ServerState ─▶ panel's Server tab
//! ```
//!
//! The origin is the signalling URL's (`ws://h:p/x` → `http://h:p`,
//! `wss://` → `https://`, TLS verified against the system's roots). The
//! token comes from `--server-token` or the tab's text field. Every failure
//! is a numbered line in the tab (401/404/400: the server's code and
//! message; unreachable or timed out: 90000004), never a panic. The task
//! ends when the [`ServerView`] is dropped (its channel closes).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::runtime::Handle;

use crate::protocol::ErrorCode;

/// How often the task fetches.
pub const REFRESH: Duration = Duration::from_secs(2);
/// Connect + request + reply deadline of one fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest reply read, bytes.
const MAX_REPLY_BYTES: u64 = 4 * 1024 * 1024;

/// `GET /rooms/{id}` as the server sends it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RoomView {
    /// Room id.
    pub id: String,
    /// Members.
    pub users: Vec<UserView>,
    /// Streams.
    pub streams: Vec<StreamView>,
    /// Publish links, then subscription legs.
    pub links: Vec<LinkView>,
}

/// One member.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UserView {
    /// User id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// 0 joiner, 2 player.
    pub role: u8,
}

/// One stream.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamView {
    /// Stream id.
    pub id: u64,
    /// Publisher.
    pub publisher: String,
    /// Has audio.
    pub audio: bool,
    /// Video size and rate, if any.
    pub video: Option<serde_json::Value>,
    /// Audio muted.
    pub audio_muted: bool,
    /// Video muted.
    pub video_muted: bool,
    /// Relayed from another room.
    pub relayed: bool,
}

/// One link and its counters.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkView {
    /// `publish` or `subscription`.
    pub kind: String,
    /// Link id.
    pub link_id: u64,
    /// Stream carried (`None`: top-N audio leg).
    pub stream_id: Option<u64>,
    /// Publisher or subscriber in this room.
    pub user_id: Option<String>,
    /// `connecting`, `connected` or `failed`.
    pub state: String,
    /// RTP packets.
    pub packets: u64,
    /// Their bytes.
    pub bytes: u64,
    /// NACKs.
    pub nacks: u64,
    /// PLIs (and FIRs).
    pub plis: u64,
    /// Packets resent for NACKs.
    pub retransmitted: u64,
}

impl LinkView {
    /// The row shown in the tab.
    pub fn row(&self) -> String {
        let stream = self
            .stream_id
            .map_or_else(|| "top-N audio".to_owned(), |s| format!("stream {s}"));
        let user = self.user_id.as_deref().unwrap_or("(outside the room)");
        format!(
            "link {} · {} · {stream} · {user} · {} · packets {} · bytes {} · NACK {} · PLI {} · retransmitted {}",
            self.link_id,
            self.kind,
            self.state,
            self.packets,
            self.bytes,
            self.nacks,
            self.plis,
            self.retransmitted
        )
    }
}

/// What the tab shows.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerState {
    /// No answer yet.
    Waiting,
    /// The last answer, and when it came.
    Shown {
        /// The server's view.
        view: RoomView,
        /// When it arrived.
        at: Instant,
    },
    /// The last fetch failed: the numbered error text.
    Failed {
        /// `"<code> <NAME>: <detail>"`.
        text: String,
        /// When.
        at: Instant,
    },
}

/// The Server tab's data source of one live debugger.
pub struct ServerView {
    /// `http(s)://host:port`, or why the signalling URL has none.
    pub origin: Result<String, String>,
    /// The X-AUTH-TOKEN the tab's field edits.
    pub token: String,
    /// What the tab shows.
    pub state: ServerState,
    shared_token: Arc<Mutex<String>>,
    rx: Receiver<Result<RoomView, String>>,
}

impl ServerView {
    /// Starts fetching `room` every [`REFRESH`] on `rt`; `wake` asks the UI
    /// to repaint after each answer.
    pub fn start(
        rt: &Handle,
        signalling_url: &str,
        room: &str,
        token: String,
        wake: impl Fn() + Send + 'static,
    ) -> Self {
        let origin = http_origin(signalling_url);
        let shared_token = Arc::new(Mutex::new(token.clone()));
        let (tx, rx) = crossbeam_channel::bounded(4);
        let state = match &origin {
            Ok(origin) => {
                let url = format!("{origin}/rooms/{room}");
                rt.spawn(fetch_loop(url, shared_token.clone(), tx, wake));
                ServerState::Waiting
            }
            Err(e) => ServerState::Failed {
                text: numbered(ErrorCode::InvalidParameter, e),
                at: Instant::now(),
            },
        };
        Self {
            origin,
            token,
            state,
            shared_token,
            rx,
        }
    }

    /// Takes in the task's answers and hands it the token field (non-blocking).
    pub fn poll(&mut self) {
        if let Ok(mut shared) = self.shared_token.try_lock()
            && *shared != self.token
        {
            shared.clone_from(&self.token);
        }
        for answer in self.rx.try_iter() {
            let at = Instant::now();
            self.state = match answer {
                Ok(view) => ServerState::Shown { view, at },
                Err(text) => ServerState::Failed { text, at },
            };
        }
    }
}

/// `ws://host:port/path` → `http://host:port` (`wss` → `https`).
pub fn http_origin(signalling_url: &str) -> Result<String, String> {
    let (scheme, rest) = if let Some(rest) = signalling_url.strip_prefix("ws://") {
        ("http", rest)
    } else if let Some(rest) = signalling_url.strip_prefix("wss://") {
        ("https", rest)
    } else {
        return Err(format!(
            "the signalling URL is not ws:// or wss://: {signalling_url}"
        ));
    };
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("the signalling URL has no host: {signalling_url}"));
    }
    Ok(format!("{scheme}://{host}"))
}

fn numbered(code: ErrorCode, detail: &str) -> String {
    format!("{} {}: {detail}", code.code(), code.name())
}

async fn fetch_loop(
    url: String,
    token: Arc<Mutex<String>>,
    tx: Sender<Result<RoomView, String>>,
    wake: impl Fn() + Send + 'static,
) {
    loop {
        let token = token.lock().map(|t| t.clone()).unwrap_or_default();
        let answer = match tokio::time::timeout(FETCH_TIMEOUT, fetch(&url, &token)).await {
            Ok(answer) => answer,
            Err(_) => Err(numbered(
                ErrorCode::WaitRspTimeout,
                &format!("{url}: no answer within {} s", FETCH_TIMEOUT.as_secs()),
            )),
        };
        match tx.try_send(answer) {
            Ok(()) | Err(TrySendError::Full(_)) => wake(),
            Err(TrySendError::Disconnected(_)) => return,
        }
        tokio::time::sleep(REFRESH).await;
    }
}

/// One `GET` of `url` (`http(s)://host[:port]/path`).
async fn fetch(url: &str, token: &str) -> Result<RoomView, String> {
    let unreachable = |e: std::io::Error| {
        numbered(
            ErrorCode::WaitRspTimeout,
            &format!("server unreachable ({url}): {e}"),
        )
    };
    let (tls, rest) = match url.strip_prefix("https://") {
        Some(rest) => (true, rest),
        None => (false, url.strip_prefix("http://").unwrap_or(url)),
    };
    let (host_port, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr = if host_port.contains(':') && !host_port.ends_with(']') {
        host_port.to_owned()
    } else {
        format!("{host_port}:{}", if tls { 443 } else { 80 })
    };
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host_port}\r\nConnection: close\r\nAccept: application/json\r\n"
    );
    if !token.is_empty() {
        request.push_str(&format!("X-AUTH-TOKEN: {token}\r\n"));
    }
    request.push_str("\r\n");
    let tcp = tokio::net::TcpStream::connect(&addr)
        .await
        .map_err(unreachable)?;
    let reply = if tls {
        let host = host_port
            .rsplit_once(':')
            .map_or(host_port, |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']');
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|e| numbered(ErrorCode::InvalidParameter, &format!("{host}: {e}")))?;
        let stream = tls_connector()
            .connect(name, tcp)
            .await
            .map_err(unreachable)?;
        exchange(stream, &request).await.map_err(unreachable)?
    } else {
        exchange(tcp, &request).await.map_err(unreachable)?
    };
    parse_reply(&reply)
}

fn tls_connector() -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn exchange(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    request: &str,
) -> std::io::Result<Vec<u8>> {
    stream.write_all(request.as_bytes()).await?;
    let mut reply = Vec::new();
    (&mut stream)
        .take(MAX_REPLY_BYTES)
        .read_to_end(&mut reply)
        .await?;
    Ok(reply)
}

#[derive(Deserialize)]
struct ErrorReply {
    code: u32,
    message: String,
}

/// The status and body of a reply: the room, or the numbered error.
fn parse_reply(reply: &[u8]) -> Result<RoomView, String> {
    let text = String::from_utf8_lossy(reply);
    let bad = |what: &str| numbered(ErrorCode::RtcSdkError, &format!("unreadable reply: {what}"));
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| bad("no header end"))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        crate::ui::signature::dechunk(body)
    } else {
        body.to_owned()
    };
    if status != 200 {
        return Err(match serde_json::from_str::<ErrorReply>(body.trim()) {
            Ok(e) => match ErrorCode::from_code(e.code) {
                Some(code) => numbered(code, &format!("{} (HTTP {status})", e.message)),
                None => format!("{}: {} (HTTP {status})", e.code, e.message),
            },
            Err(_) => numbered(
                ErrorCode::RtcSdkError,
                &format!("HTTP {status}: {}", body.trim()),
            ),
        });
    }
    serde_json::from_str(body.trim()).map_err(|e| bad(&e.to_string()))
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn origins_and_bad_replies() {
        assert_eq!(
            http_origin("ws://127.0.0.1:8080/ws").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            http_origin("wss://h.example/x?y").unwrap(),
            "https://h.example"
        );
        assert!(http_origin("http://h").is_err());
        assert!(http_origin("ws:///x").is_err());
        let denied = b"HTTP/1.1 401 Unauthorized\r\n\r\n{\"code\":90000005,\"message\":\"no\"}";
        let e = parse_reply(denied).expect_err("401");
        assert!(e.starts_with("90000005 ") && e.contains("HTTP 401"), "{e}");
        let e = parse_reply(b"HTTP/1.1 200 OK\r\n\r\n{").expect_err("bad json");
        assert!(e.starts_with("90000001 "), "{e}");
        assert!(parse_reply(b"garbage").is_err());
    }
}
