//! `huddle serve --redis` processes for the several-nodes tests (a real
//! binary, its stderr drained), and what Redis says about them.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use huddle::client::JoinConfig;
use huddle::protocol::Role;

use super::redis::Redis;
use super::{APP_ID, APP_KEY, StderrLines, wait_for};

/// Registration and claims live this long without a refresh (the smallest
/// the CLI takes), so a dead node's room moves within seconds.
pub const TTL_SECS: &str = "3";

/// One `huddle serve --redis` process; killed on drop.
pub struct Node {
    /// The process.
    pub child: Child,
    /// Its signalling URL (`ws://127.0.0.1:port`).
    pub url: String,
    /// Its stderr lines.
    pub lines: StderrLines,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.child.kill().ok(); // already gone: fine
        self.child.wait().ok();
    }
}

impl Node {
    /// Starts node `id` (with `extra` flags) on a free port and waits for its
    /// listening line.
    pub fn start(id: &str, redis: &Redis, extra: &[&str]) -> Self {
        Self::start_on(id, redis, "127.0.0.1:0", extra)
    }

    /// Starts node `id` listening on `listen` (`host:port`).
    pub fn start_on(id: &str, redis: &Redis, listen: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_huddle"))
            .args([
                "serve",
                "--listen",
                listen,
                "--app-id",
                APP_ID,
                "--app-key",
                APP_KEY,
                "--redis",
                &redis.url(),
                "--node-id",
                id,
                "--cluster-ttl-secs",
                TTL_SECS,
                "--log-level",
                "info",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start huddle serve");
        let lines = StderrLines::of(&mut child);
        let url = lines.listening_url();
        Self { child, url, lines }
    }

    /// `kill -9`: no goodbye, no release of its claims.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill -9 the node");
        self.child.wait().ok();
    }

    /// Its stderr so far (for failure messages).
    pub fn log(&self) -> Vec<String> {
        self.lines.so_far()
    }
}

/// How the several-nodes tests join through node `url`: the app key, a
/// 30 s reconnection window (a killed node's users come back within it).
pub fn config(url: &str, room: &str, user: &str, role: Role) -> JoinConfig {
    JoinConfig {
        server_url: url.to_owned(),
        app_id: huddle::protocol::AppId(APP_ID.into()),
        room_id: huddle::protocol::RoomId(room.into()),
        user_id: huddle::protocol::UserId(user.into()),
        user_name: user.into(),
        role,
        credential: huddle::client::Credential::AppKey {
            key: APP_KEY.into(),
            valid_for: Duration::from_secs(3600),
        },
        decode: true,
        reconnect_window: Duration::from_secs(30),
    }
}

/// Starts two nodes (id and extra flags each) and waits until Redis lists
/// both as alive.
pub async fn pair(redis: &Redis, a: (&str, &[&str]), b: (&str, &[&str])) -> (Node, Node) {
    let (a_node, b_node) = (Node::start(a.0, redis, a.1), Node::start(b.0, redis, b.1));
    registered(redis, a.0).await;
    registered(redis, b.0).await;
    (a_node, b_node)
}

/// One HTTP/1.1 request to the node at `url`: status, head and body.
pub async fn http(url: &str, method: &str, path: &str, bearer: &str, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("ws://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/sdp\r\nAuthorization: Bearer {bearer}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut raw))
        .await
        .expect("a reply within 10 s")
        .expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, text)
}

/// Waits until Redis lists node `id` as alive.
pub async fn registered(redis: &Redis, id: &str) {
    let key = format!("huddle:node:{id}");
    wait_for(Duration::from_secs(10), "the node's registration", || {
        (redis.command(&["EXISTS", &key]).as_deref() == Some(":1")).then_some(())
    })
    .await;
}

/// The room's owner in Redis (`None`: unclaimed or Redis away).
pub fn owner(redis: &Redis, room: &str) -> Option<String> {
    redis
        .command(&["GET", &format!("huddle:room:{room}")])
        .filter(|v| v != "$-1")
}
