//! Several server nodes coordinated through Redis (`huddle serve --redis`).
//!
//! Each node registers itself (`keys::NodeRecord`: its public signalling URL
//! and its load) under a key that expires after [`ClusterConfig::ttl`] unless
//! the node rewrites it, which it does every third of that (`heartbeat`). A
//! room lives on one node at a time: the first join for a room that no node
//! holds claims it atomically (`keys::CLAIM`, a key with the same TTL that
//! the owner refreshes while the room exists and deletes when it is empty).
//! A join that reaches a node for a room held by another live node is
//! answered with `redirect` and that node's URL (docs/protocol.md); the SDK
//! and the web client follow it.
//!
//! ```text
//!  join(room) ─▶ room here? ── yes ──▶ join locally (no Redis: a call in progress never waits on it)
//!                   │ no
//!                   ▼
//!               CLAIM(room) ──▶ mine ──▶ join locally
//!                   │       └──▶ node B (alive) ──▶ reply `redirect {url of B}`
//!                   └── Redis down / slow ──▶ 90100211 (new room refused)
//! ```
//!
//! A node that dies stops refreshing: its node key and its claims expire
//! within `ttl`, and [`keys::CLAIM`] also takes a room whose owner's node key
//! is gone, so the next join recreates the room on the node it reaches. Its
//! clients, whose sockets dropped, reconnect through the other nodes the
//! `joined` reply listed (`nodes`).
//!
//! Redis going away (`Link::Down`): rooms a node holds carry on, with new
//! members too; a join that would create a room is refused with 90100211
//! (`SaveRoomError`, retryable). The heartbeat reconnects every tick and, once
//! Redis answers again, registers the node and re-claims its rooms.
//!
//! Without `--redis` there is no `Cluster` at all and nothing here runs.

pub(crate) mod credential;
mod heartbeat;
pub(crate) mod http;
pub mod keys;
pub(crate) mod owner_link;
pub mod relay;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;

use crate::protocol::{ErrorCode, Reply, RoomId};
use keys::{Owner, Placement};

pub(crate) use heartbeat::{leave, run as heartbeat};

/// How a node joins a cluster (`huddle serve --redis …`, `huddle.toml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The Redis server, `redis://host:port[/db]`.
    pub redis_url: String,
    /// The signalling URL clients are sent to for this node's rooms
    /// (`ws://host:port` or `wss://…`). `None`: the listening address as
    /// bound, which is right only when clients reach that address (not for
    /// a wildcard such as `0.0.0.0`).
    pub public_url: Option<String>,
    /// How long a node's registration and its room claims live without a
    /// refresh: how long a dead node's rooms stay unreachable, at most. The
    /// node refreshes every third of it.
    pub ttl: Duration,
    /// How long one Redis request (connect, claim) may take before Redis
    /// counts as unavailable.
    pub redis_timeout: Duration,
    /// Serve players of rooms owned by other nodes here, relaying their
    /// streams (`--relay-subscribers`, `relay::`); off: redirect them.
    pub relay_subscribers: bool,
    /// Where a new room goes (`--balance-margin`): `Here` (default), the
    /// node the first join reached; `LeastUsers`, the least loaded node.
    pub placement: keys::Placement,
    /// How long the node credential of a relay (its mirror's session at
    /// the owner, its WHEP plays) is valid from when it is made
    /// (`--relay-credential-secs`, default 11 h, at most the 12 h a server
    /// accepts); the mirror renews it at half of that (`credential`).
    pub relay_credential: Duration,
    /// PEM certificates a relay trusts for `wss://` owners (`--relay-ca`);
    /// `None`: the system's CAs (`owner_link::SYSTEM_CAS`).
    pub relay_ca_pem: Option<Vec<u8>>,
}

impl ClusterConfig {
    /// A node of the cluster on this Redis, with the default timings (`ttl`
    /// 10 s, `redis_timeout` 1 s).
    pub fn new(redis_url: impl Into<String>) -> Self {
        Self {
            redis_url: redis_url.into(),
            public_url: None,
            ttl: Duration::from_secs(10),
            redis_timeout: Duration::from_secs(1),
            relay_subscribers: false,
            placement: keys::Placement::Here,
            relay_credential: credential::DEFAULT_LIFETIME,
            relay_ca_pem: None,
        }
    }

    /// Checks the URLs and timings.
    pub fn check(&self) -> Result<(), String> {
        // Not echoed: it may carry a password.
        redis::Client::open(self.redis_url.as_str())
            .map_err(|e| format!("the redis URL does not parse: {e}"))?;
        if let Some(url) = &self.public_url
            && !(url.starts_with("ws://") || url.starts_with("wss://"))
        {
            return Err(format!(
                "public_url {url:?} must start with ws:// or wss://"
            ));
        }
        if self.ttl < Duration::from_secs(1) {
            return Err("cluster ttl must be at least 1 s".into());
        }
        if self.redis_timeout.is_zero() || self.redis_timeout >= self.ttl {
            return Err("redis timeout must be above 0 and below the ttl".into());
        }
        if let Some(pem) = &self.relay_ca_pem {
            owner_link::certificates(pem)?;
        }
        let max = Duration::from_secs(crate::auth::MAX_SIGNATURE_LIFETIME_SECS);
        if self.relay_credential < credential::MIN_LIFETIME || self.relay_credential > max {
            return Err(format!(
                "relay credential lifetime must be {} s to {} s, got {} s",
                credential::MIN_LIFETIME.as_secs(),
                max.as_secs(),
                self.relay_credential.as_secs()
            ));
        }
        Ok(())
    }
}

/// Why the cluster could not place a room.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Redis is unreachable or did not answer within `redis_timeout`: the
    /// room cannot be claimed, so it is not created. Rooms this node holds
    /// are unaffected. Retry later.
    #[error("new rooms are refused while the room registry (Redis) is unavailable: {0}")]
    Unavailable(String),
    /// Another node holds the room but has not published where clients reach
    /// it. Retry later.
    #[error("room is on node {0}, whose address is not known yet")]
    OwnerUnknown(String),
}

impl ClusterError {
    /// The seed code: 90100211 (`SAVE_ROOM_ERROR`, "save room fail").
    pub fn code(&self) -> ErrorCode {
        ErrorCode::SaveRoomError
    }
}

/// The connection to Redis, as a state machine: requests go out only while
/// `Up`; any failure drops to `Down`, and the heartbeat connects again.
enum Link {
    Down {
        /// Since when (for the log line when it is back).
        since: Instant,
    },
    Up(MultiplexedConnection),
}

/// One node's membership of the cluster (in `Shared`).
pub(crate) struct Cluster {
    config: ClusterConfig,
    node_id: String,
    /// `None` when the URL did not parse ([`ClusterConfig::check`] catches
    /// that first): then the link stays down and new rooms are refused.
    client: Option<redis::Client>,
    link: Mutex<Link>,
    /// The URL registered for this node (set when the server starts).
    public_url: Mutex<String>,
    /// Rooms this node claimed and when: the heartbeat refreshes those that
    /// exist here and releases the others.
    claims: Mutex<HashMap<RoomId, Instant>>,
    /// The live nodes' URLs, from the last heartbeat, sorted (for `joined`).
    nodes: Mutex<Vec<String>>,
    /// Rooms of other nodes mirrored here for local players (`relay`).
    pub(crate) relays: relay::Mirrors,
}

impl Cluster {
    /// A node that is not connected yet (the heartbeat connects).
    pub(crate) fn new(config: ClusterConfig, node_id: String) -> Self {
        let client = match redis::Client::open(config.redis_url.as_str()) {
            Ok(client) => Some(client),
            Err(e) => {
                tracing::error!("redis URL: {e}; new rooms will be refused");
                None
            }
        };
        Self {
            public_url: Mutex::new(config.public_url.clone().unwrap_or_default()),
            config,
            node_id,
            client,
            link: Mutex::new(Link::Down {
                since: Instant::now(),
            }),
            claims: Mutex::new(HashMap::new()),
            nodes: Mutex::new(Vec::new()),
            relays: relay::Mirrors::default(),
        }
    }

    /// The URL registered for this node: the configured one, else `bound`.
    pub(crate) fn set_bound_url(&self, bound: String) {
        let mut url = lock(&self.public_url);
        if url.is_empty() {
            *url = bound;
        }
    }

    /// The live nodes' signalling URLs (this one included), sorted.
    pub(crate) fn node_urls(&self) -> Vec<String> {
        lock(&self.nodes).clone()
    }

    /// Where a join for a room that does not exist here goes: `None` here
    /// (the room is claimed for this node), else the `redirect` to answer: to
    /// the node that holds it, or to the one a new room is placed on
    /// ([`ClusterConfig::placement`]).
    pub(crate) async fn route(&self, room_id: &RoomId) -> Result<Option<Reply>, ClusterError> {
        let owner = self.claim(room_id, self.config.placement).await?;
        match owner {
            Owner::Me => Ok(None),
            Owner::Node {
                node_id,
                record: Some(record),
            } => Ok(Some(Reply::Redirect {
                room_id: room_id.clone(),
                node_id,
                url: record.url,
            })),
            Owner::Node { node_id, .. } => Err(ClusterError::OwnerUnknown(node_id)),
        }
    }

    /// Claims the room (or keeps the claim), unless another live node holds
    /// it: for this node, or with [`Placement::LeastUsers`] perhaps for a
    /// less loaded one.
    async fn claim(&self, room_id: &RoomId, placement: Placement) -> Result<Owner, ClusterError> {
        let mut conn = self.connection()?;
        let script = redis::Script::new(keys::CLAIM);
        let mut invocation = script.key(keys::room_key(room_id));
        invocation
            .key(keys::NODES)
            .arg(&self.node_id)
            .arg(ttl_ms(self.config.ttl))
            .arg(keys::NODE_PREFIX)
            .arg(placement.margin_arg());
        let answer: Result<(String, Option<String>), _> = self
            .timed(invocation.invoke_async(&mut conn))
            .await
            .and_then(|r| r.map_err(|e| e.to_string()));
        let (owner, record) = answer.map_err(|e| self.went_down(e))?;
        let owner = keys::read_claim(&self.node_id, &owner, record.as_deref());
        if owner == Owner::Me {
            lock(&self.claims)
                .entry(room_id.clone())
                .or_insert_with(Instant::now);
        }
        Ok(owner)
    }

    /// Deletes the claim if this node still owns it.
    async fn release(&self, room_id: &RoomId) -> Result<(), ClusterError> {
        let mut conn = self.connection()?;
        let script = redis::Script::new(keys::RELEASE);
        let mut invocation = script.key(keys::room_key(room_id));
        invocation.arg(&self.node_id);
        let answer: Result<i64, _> = self
            .timed(invocation.invoke_async(&mut conn))
            .await
            .and_then(|r| r.map_err(|e| e.to_string()));
        answer.map(|_| ()).map_err(|e| self.went_down(e))
    }

    /// The connection, if up.
    fn connection(&self) -> Result<MultiplexedConnection, ClusterError> {
        match &*lock(&self.link) {
            Link::Up(conn) => Ok(conn.clone()),
            Link::Down { since } => Err(ClusterError::Unavailable(format!(
                "no connection to Redis for {:.1?}",
                since.elapsed()
            ))),
        }
    }

    /// Runs a Redis request within `redis_timeout`.
    async fn timed<T>(&self, request: impl Future<Output = T>) -> Result<T, String> {
        tokio::time::timeout(self.config.redis_timeout, request)
            .await
            .map_err(|_| format!("no answer within {:?}", self.config.redis_timeout))
    }

    /// A request failed: the link is down until the heartbeat reconnects.
    fn went_down(&self, why: String) -> ClusterError {
        let mut link = lock(&self.link);
        if let Link::Up(_) = *link {
            tracing::warn!(
                node = %self.node_id,
                "lost Redis ({why}); rooms here carry on, new rooms are refused until it is back"
            );
            *link = Link::Down {
                since: Instant::now(),
            };
        }
        ClusterError::Unavailable(why)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section here is a single assignment or clone: a
    // poisoned lock still holds a consistent value.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_checked() {
        let ok = ClusterConfig::new("redis://127.0.0.1:6379");
        assert_eq!(ok.check(), Ok(()));
        assert!(ClusterConfig::new("http://x").check().is_err());
        let mut bad_url = ok.clone();
        bad_url.public_url = Some("http://node-a:7880".into());
        assert!(bad_url.check().is_err());
        let mut short = ok.clone();
        short.ttl = Duration::from_millis(500);
        assert!(short.check().is_err());
        let mut slow = ok.clone();
        slow.redis_timeout = Duration::from_secs(10);
        assert!(slow.check().is_err());
        // The relay credential lives 2 s to 12 h.
        for (secs, valid) in [(1, false), (2, true), (43_200, true), (43_201, false)] {
            let mut relay = ok.clone();
            relay.relay_credential = Duration::from_secs(secs);
            assert_eq!(relay.check().is_ok(), valid, "{secs} s");
        }
    }
}
