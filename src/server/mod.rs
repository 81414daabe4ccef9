//! The room server: WebSocket signalling plus an SFU that forwards RTP.
//!
//! ```text
//!  client ──ws──▶ signalling::run_session ──▶ room::Rooms (who is where)
//!                        │
//!                        └──▶ sfu::Sfu ── ingress link (publisher's PC) ──▶ PublishedMedia
//!                                            │ fan-out of RTP per track
//!                                            ▼
//!                     egress legs (one per subscription): sans-IO cores in the
//!                     egress hub on one shared UDP socket
//! ```
//!
//! Inside, imports run one way: `signalling` → `room` → `sfu` → `inbox`
//! (`inbox` is a leaf: the session inbox and the events that go into it, so
//! the SFU can report to a session without knowing rooms).
//!
//! [`Server::run`] takes an already-bound listener and a shutdown future, so the
//! binary, the desktop app's embedded server and the tests share one entry point.
//! Its accept loop (`listener`) admits connections within [`Limits`], times
//! out those that never finish their HTTP request, and waits at shutdown until
//! every session has said goodbye.
//! HTTP routes on the same port: `/` and `/ws` (WebSocket upgrade; a plain
//! `GET /` gets the web client, `web`), `GET /signature` (the seed's signature
//! distribution server), `GET /metrics` (Prometheus text), `GET /metrics.json`,
//! `GET /healthz`, `GET /rooms` and `GET /rooms/{id}` (`rooms_api`, guarded
//! by the `/signature` token), and WHIP/WHEP (`POST /whip/{room}`,
//! `POST /whep/{room}/{stream}` and their resources: `whip`, `whep`,
//! `media_resource`). With a certificate (`ServerConfig::tls`) all of them are
//! served over TLS (`https://`, `wss://`) on the same port.
//! With `ServerConfig::cluster` (`--redis`) the server is one node of several
//! sharing a Redis (`cluster`): rooms are claimed there and a join for a room
//! on another node is answered with a redirect to it.

pub mod cluster;
pub mod config;
pub mod cors;
pub mod inbox;
mod listener;
mod media_resource;
pub mod metrics;
mod prometheus_text;
pub mod recording;
pub mod resume;
pub mod room;
pub mod rooms_api;
pub mod sdp_checks;
pub mod sfu;
pub mod signalling;
pub mod tls;
mod web;
mod whep;
mod whip;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Extension;
use axum::Router;
use axum::extract::{State, WebSocketUpgrade};
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use tokio::net::TcpListener;

pub use config::{Limits, ServerConfig};
pub use metrics::{Metrics, MetricsSnapshot};

use crate::protocol::{LinkId, MAX_MESSAGE_BYTES, StreamId};
use inbox::SessionId;
use room::Rooms;

/// Largest WebSocket message the transport layer buffers. Frames between
/// [`MAX_MESSAGE_BYTES`] and this size are read and answered with a numbered error;
/// only frames above it close the connection.
const TRANSPORT_MAX_MESSAGE_BYTES: usize = 16 * MAX_MESSAGE_BYTES;

/// Bytes each WebSocket reads from its socket at a time. tungstenite allocates
/// its read buffer up front, 128 KiB by default, which was most of an idle
/// connection's memory (159 KiB each, 2,000 connections: 318 MiB). Requests
/// are a few hundred bytes and an SDP a few KiB; a larger message just takes
/// more reads (the frame buffer grows for it).
const WS_READ_BUFFER_BYTES: usize = 8 * 1024;

/// State shared by all sessions of one server.
pub(crate) struct Shared {
    pub(crate) config: ServerConfig,
    pub(crate) rooms: Rooms,
    pub(crate) sfu: sfu::Sfu,
    pub(crate) metrics: Arc<Metrics>,
    /// Flips to true when the server shuts down; every session then ends.
    pub(crate) shutdown: tokio::sync::watch::Sender<bool>,
    /// Open TCP connections, in total and per address (`Limits`).
    pub(crate) connections: Arc<listener::ConnectionLimits>,
    /// Resume tokens of live sessions (`resume`).
    pub(crate) resumes: resume::Resumes,
    /// Running server-side recordings (`start-recording`).
    pub(crate) recordings: recording::Recordings,
    /// Live WHIP/WHEP resources (`media_resource`).
    pub(crate) media_resources: media_resource::Resources,
    /// This node's part in a cluster (`--redis`); `None`: a single node.
    pub(crate) cluster: Option<cluster::Cluster>,
    next_id: AtomicU64,
}

impl Shared {
    fn next(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn next_stream_id(&self) -> StreamId {
        StreamId(self.next())
    }

    pub(crate) fn next_link_id(&self) -> LinkId {
        LinkId(self.next())
    }
}

/// A room server. Cheap to clone; clones share the same rooms.
#[derive(Clone)]
pub struct Server {
    shared: Arc<Shared>,
}

impl Server {
    /// Creates a server with the given configuration.
    pub fn new(config: ServerConfig) -> Self {
        let metrics = Arc::new(Metrics::default());
        let sfu = sfu::Sfu::new(config.rtc_ip, Arc::clone(&metrics)).advertising(config.public_ip);
        let connections = Arc::new(listener::ConnectionLimits::new(&config.limits));
        let cluster = config
            .cluster
            .clone()
            .map(|c| cluster::Cluster::new(c, config.node_id.clone()));
        Self {
            shared: Arc::new(Shared {
                connections,
                rooms: Rooms::default(),
                resumes: resume::Resumes::default(),
                recordings: recording::Recordings::new(config.record_dir.clone()),
                media_resources: media_resource::Resources::default(),
                cluster,
                sfu,
                metrics,
                shutdown: tokio::sync::watch::Sender::new(false),
                next_id: AtomicU64::new(1),
                config,
            }),
        }
    }

    /// A snapshot of the live counters.
    pub fn metrics(&self) -> MetricsSnapshot {
        let m = &self.shared.metrics;
        let (rooms, users) = self.shared.rooms.counts();
        MetricsSnapshot {
            rooms,
            users,
            sessions: m.sessions.get(),
            peer_connections: m.peer_connections.get(),
            tasks: m.tasks.get(),
            forwarded_packets: m.forwarded_packets.load(Ordering::Relaxed),
            forwarded_bytes: m.forwarded_bytes.load(Ordering::Relaxed),
            nacks_received: m.nacks_received.load(Ordering::Relaxed),
            keyframe_requests: m.keyframe_requests.load(Ordering::Relaxed),
            retransmitted_packets: m.retransmitted_packets.load(Ordering::Relaxed),
            direct_egress_legs: m.direct_egress_legs.get(),
            egress_panics: m.egress_panics.load(Ordering::Relaxed),
            egress_datagrams_dropped: m.egress_datagrams_dropped.load(Ordering::Relaxed),
            egress_key_failures: m.egress_key_failures.load(Ordering::Relaxed),
            stale_packets_dropped: m.stale_packets_dropped.load(Ordering::Relaxed),
            padding_packets_dropped: m.padding_packets_dropped.load(Ordering::Relaxed),
            connections: self.shared.connections.open(),
            connections_refused: m.connections_refused.load(Ordering::Relaxed),
            ingress_tracks: m.ingress_tracks.get(),
            cross_room_relays: m.cross_room_relays.get(),
        }
    }

    /// The HTTP/WebSocket routes of this server.
    pub fn router(&self) -> Router {
        let mut signature = crate::auth::signature_router(
            Arc::new(self.shared.config.apps.clone()),
            self.shared.config.signature_token.clone(),
        );
        if let Some(cors) = cors::layer(&self.shared.config.cors_origins) {
            signature = signature.layer(cors);
        }
        Router::new()
            .route("/", get(root))
            .route("/ws", get(ws_upgrade))
            .route("/metrics", get(metrics_prometheus))
            .route("/metrics.json", get(metrics_json))
            .route("/healthz", get(|| async { "ok" }))
            .with_state(self.clone())
            .merge(web::assets())
            .merge(media_resource::router(self.clone()))
            .merge(rooms_api::router(self.clone()))
            .merge(signature)
    }

    /// Serves on `listener` until `shutdown` completes. Then it stops
    /// accepting, every session is told to end (`client-banned`, reason 3:
    /// service unavailable), leaves its room, closes its links and its socket,
    /// and `run` returns once every connection is closed, or after
    /// [`ServerConfig::shutdown_grace`] at the latest.
    ///
    /// Connections are admitted and timed as [`Limits`] says: at most
    /// `max_connections` (`max_connections_per_ip` from one address), each
    /// with `header_timeout` to send its HTTP request head.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        if self.shared.config.signature_token.is_none() {
            tracing::warn!(
                "GET /signature has no token configured: anyone who can reach this server gets valid join signatures for every room and user of the configured apps, and sees every room on GET /rooms; set signature_token (or --signature-token) outside development"
            );
        }
        let router = self.router();
        let shared = Arc::clone(&self.shared);
        if let Some(cluster) = &shared.cluster {
            let scheme = if shared.config.tls.is_some() {
                "wss"
            } else {
                "ws"
            };
            cluster.set_bound_url(format!("{scheme}://{}", listener.local_addr()?));
            tokio::spawn(cluster::heartbeat(
                Arc::downgrade(&shared),
                shared.shutdown.subscribe(),
            ));
        }
        listener::serve(self.shared, router, listener, shutdown).await;
        // Its rooms are free to move at once, not after the claims' TTL.
        cluster::leave(&shared).await;
        // Recordings nobody stopped get their files completed.
        shared.recordings.stop_all().await;
        Ok(())
    }
}

/// `GET /`: the WebSocket of a client that asks for one, the web client's
/// page for anyone else (a browser opening the server's address).
async fn root(
    headers: axum::http::HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
    state: State<Server>,
    connection: Option<Extension<listener::ConnectionToken>>,
) -> axum::response::Response {
    if !web::wants_websocket(&headers) {
        return web::page();
    }
    match ws {
        Ok(ws) => ws_upgrade(ws, state, connection).await.into_response(),
        Err(rejection) => rejection.into_response(),
    }
}

async fn ws_upgrade(
    ws: WebSocketUpgrade,
    State(server): State<Server>,
    connection: Option<Extension<listener::ConnectionToken>>,
) -> impl IntoResponse {
    let shared = Arc::clone(&server.shared);
    let id = SessionId(shared.next());
    // The write buffer is allocated as messages are written; every send
    // flushes, so its 128 KiB threshold never holds anything back.
    ws.max_message_size(TRANSPORT_MAX_MESSAGE_BYTES)
        .max_frame_size(TRANSPORT_MAX_MESSAGE_BYTES)
        .read_buffer_size(WS_READ_BUFFER_BYTES)
        .on_upgrade(move |socket| async move {
            // The connection stays open in the server's books (limits,
            // shutdown) until the session has said goodbye. (`None` when the
            // router is served by something other than `Server::run`.)
            let _connection = connection;
            signalling::run_session(socket, shared, id).await;
        })
}

async fn metrics_json(State(server): State<Server>) -> Json<MetricsSnapshot> {
    Json(server.metrics())
}

async fn metrics_prometheus(State(server): State<Server>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let snapshot = server.metrics();
    match prometheus_text::encode(&snapshot, &server.shared.config.node_id) {
        Ok(text) => (
            [(
                axum::http::header::CONTENT_TYPE,
                prometheus_text::CONTENT_TYPE,
            )],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::error!("encoding /metrics: {e}");
            axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
