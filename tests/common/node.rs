//! `huddle serve --redis` processes for the several-nodes tests (a real
//! binary, its stderr drained), and what Redis says about them.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::redis::Redis;
use super::{APP_ID, APP_KEY, wait_for};

/// Registration and claims live this long without a refresh (the smallest
/// the CLI takes), so a dead node's room moves within seconds.
pub const TTL_SECS: &str = "3";

/// One `huddle serve --redis` process; killed on drop.
pub struct Node {
    /// The process.
    pub child: Child,
    /// Its signalling URL (`ws://127.0.0.1:port`).
    pub url: String,
    /// Its stderr lines, drained by a thread (a full pipe would block it).
    pub lines: mpsc::Receiver<String>,
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
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("node {id} printed no listening line"));
            if let Some((_, url)) = line.split_once("listening on ") {
                break url.trim().to_owned();
            }
        };
        Self { child, url, lines }
    }

    /// `kill -9`: no goodbye, no release of its claims.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill -9 the node");
        self.child.wait().ok();
    }

    /// Its stderr so far (for failure messages).
    pub fn log(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }
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
