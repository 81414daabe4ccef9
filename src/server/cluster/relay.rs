//! Node relay (issue 15 §2): a room's players served by a node that does
//! not own the room (`--relay-subscribers`), so a room can have more
//! players than its owner node carries.
//!
//! A player's `join` that would be redirected (the room is claimed by another
//! live node) is served here instead: this node opens a **mirror** of the
//! room. The mirror joins the room on the owner node over the ordinary
//! signalling, as player `node-relay-<this node>`, signed with the app's key
//! (the node credential: every node of a cluster holds the apps' keys), and
//! copies what the owner tells it into a local room of the same id: each
//! remote user becomes a local member (its own [`SessionId`], a shared inbox
//! that nobody reads) and each remote stream a local stream with a media of
//! its own (`Sfu::relay_media`). While some local leg watches the stream,
//! a [`RelayIngress`] feeds that media: ONE WHEP play of the stream from the
//! owner node, as user `node-relay-<this node>-<stream id>`, whatever the
//! number of local subscribers; it closes [`LINK_GRACE`] after the last one
//! left, and one that fails (ICE/DTLS, or the owner drops its member) is
//! reopened with a backoff (`LinkState`). Local players subscribe to the
//! stream like to any local stream; RTP is forwarded as it arrived, and
//! their keyframe requests travel back as PLIs. Name and role changes of
//! remote users are applied to their local members, and the owner's program
//! (`joined`, `program-changed`) to the local room (`Rooms::mirror_program`;
//! a director's requests on a mirror are refused, [`check_director`]). A
//! link whose path dies silently is found by a watchdog on what it receives
//! (`Heard`, [`SILENCE_LIMIT`]). The owner is reached over TLS when its URL
//! is `wss://` (`owner_link`), and the mirror's session renews its node
//! credential before the owner would expire it (`credential`).
//!
//! A layered stream (simulcast) is mirrored with the owner's `resolutions`,
//! and its local players choose a layer or `auto` as on the owner; it comes
//! over one link per layer some local leg needs ([`links_wanted`]): a WHEP
//! play with `&layer=<resolutionId>`, pinned to its slot here
//! (`RelayedTrack`), of which one forwards the stream's audio
//! ([`carry_audio`]). The owner's URL may have a path (a proxy's prefix):
//! WHEP requests keep it (`OwnerLink::path`).
//!
//! Joiners (who may publish) are still redirected to the owner, also while a
//! mirror is open, so every stream is published on the owner node.
//!
//! The mirror ends (the remote members leave, the relay links close) when no
//! local member is left for [`LINGER`], at shutdown, or when the owner's
//! socket goes away; in the last case the local players are told to leave
//! ([`LeaveReason::ServiceUnavailable`], on which clients come back) and rejoin through routing again (the
//! failover of `cluster`). Users whose id starts with [`RELAY_USER_PREFIX`]
//! are other nodes' relays and are not mirrored.
//!
//! Invariant: at most one mirror per room per node ([`Mirrors`] holds it
//! while its task runs), and a mirror's stream has at most one link per
//! layer slot (`LinkState::Open`, closed before the next is opened), so at
//! most one relay link per stream (per layer of a layered one) per node.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use super::credential::{Answer, Credential, Renewal};
use super::owner_link::OwnerLink;
use crate::protocol::layers::MAX_RESOLUTIONS;
use crate::protocol::{
    AppId, ClientMessage, ErrorCode, Event, LeaveReason, PROTOCOL_VERSION, Reply, Request,
    RequestId, Role, RoomId, ServerMessage, StreamId, StreamInfo, UserId, UserInfo,
};
use crate::server::Shared;
use crate::server::inbox::{SessionId, SessionInbox};
use crate::server::sfu::{PublishedMedia, RelayIngress};

/// User ids starting with this are node relays (never mirrored).
pub const RELAY_USER_PREFIX: &str = "node-relay-";
/// How long opening a mirror (connect, join) or a relay link may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);
/// Keeps the mirror's socket from the owner's idle timeout (30 s default).
const PING_EVERY: Duration = Duration::from_secs(10);
/// How often the mirror looks for local members.
const CHECK_EVERY: Duration = Duration::from_millis(250);
/// How long a mirror stays without local members before it ends (a player
/// rejoining within it finds its relay links still up).
pub const LINGER: Duration = Duration::from_secs(2);

type Socket = tokio_tungstenite::WebSocketStream<super::owner_link::Stream>;

/// Why a mirror or a relay link could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The owner node could not be reached or answered out of protocol.
    /// Retry: the join falls back to a `redirect`.
    #[error("owner node {url}: {why}")]
    Owner {
        /// Its signalling URL.
        url: String,
        /// What went wrong.
        why: String,
    },
    /// The owner refused the node credential or the request (its code).
    #[error("owner node refused the relay: {code:?} {message}")]
    Refused {
        /// The owner's numbered error.
        code: ErrorCode,
        /// Its message.
        message: String,
    },
}

/// The relay links of a mirror open now: each one's stream, the owner's
/// `resolutionId` it plays (a layered stream's), and the stream's media here
/// (shared by the mirror's task and [`Mirrors::view`]).
type RelayLinks = Arc<Mutex<Vec<(StreamId, Option<String>, Arc<PublishedMedia>)>>>;

/// How long a relay link stays open after the last local leg watching its
/// stream ended (a player that resubscribes or rejoins finds it still up).
pub const LINK_GRACE: Duration = Duration::from_secs(2);
/// The wait before the first try to reopen a failed relay link; it doubles
/// with each failure in a row, up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(250);
/// The longest wait between two tries to reopen a relay link.
const RETRY_MAX: Duration = Duration::from_secs(5);
/// How long an open link that has carried RTP may receive nothing at all
/// before it counts as failed (its path died without an ICE or DTLS close):
/// the owner's hub sends it a sender report every second (`hub::direct`),
/// so three in a row went missing. ICE alone would see it after 5 s
/// (disconnected) or 30 s (failed).
const SILENCE_LIMIT: Duration = Duration::from_secs(3);

/// One open mirror, as routing and `GET /rooms/{id}` see it.
#[derive(Clone)]
struct MirrorHandle {
    owner_node: String,
    owner_url: String,
    /// Streams with a relay link now, and their media here.
    links: RelayLinks,
    /// Relay links opened again after one failed.
    reopened: Arc<AtomicU64>,
    /// Links found silent ([`SILENCE_LIMIT`]) and reopened.
    silent: Arc<AtomicU64>,
    /// Renewals of the mirror's credential the owner accepted.
    renewed: Arc<AtomicU64>,
}

/// What `GET /rooms/{id}` shows of a mirrored room.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayView {
    /// The node that owns the room.
    pub owner_node: String,
    /// The streams relayed to this node now: those some local subscriber
    /// watches (or did within [`LINK_GRACE`]). One link each, or one per
    /// watched layer of a layered stream ([`RelayView::layer_links`]).
    pub relay_links: Vec<StreamId>,
    /// The links of layered streams open now, one per layer watched here.
    pub layer_links: Vec<LayerLink>,
    /// Relay links opened again after one failed (ICE/DTLS failure, or the
    /// owner dropped it), since the mirror opened.
    pub links_reopened: u64,
    /// Links that received nothing for [`SILENCE_LIMIT`] after carrying
    /// media (a path that died silently), counted as failed and reopened.
    pub links_silent: u64,
    /// Renewals of the node credential of the mirror's session at the
    /// owner that the owner accepted (one per half lifetime).
    pub credentials_renewed: u64,
    /// Keyframe requests (PLI) sent to the owner over these links so far:
    /// local subscribers' requests, coalesced, on their way to the publisher.
    pub plis_sent: u64,
}

/// One relay link of a layered stream, as `GET /rooms/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerLink {
    /// The stream.
    pub stream_id: StreamId,
    /// The owner's layer the link plays.
    pub resolution_id: String,
}

/// The mirrors of this node.
#[derive(Default)]
pub(crate) struct Mirrors {
    open: Mutex<HashMap<RoomId, MirrorHandle>>,
    /// Serializes opening (two players arriving at once open one mirror).
    opening: tokio::sync::Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Critical sections are single inserts/removes/clones.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Mirrors {
    fn get(&self, room_id: &RoomId) -> Option<MirrorHandle> {
        lock(&self.open).get(room_id).cloned()
    }

    /// The relay state of a mirrored room.
    pub(crate) fn view(&self, room_id: &RoomId) -> Option<RelayView> {
        self.get(room_id).map(|h| {
            let links = lock(&h.links);
            let mut streams: Vec<(StreamId, &Arc<PublishedMedia>)> =
                links.iter().map(|(id, _, media)| (*id, media)).collect();
            streams.dedup_by_key(|(id, _)| *id);
            RelayView {
                owner_node: h.owner_node.clone(),
                relay_links: streams.iter().map(|(id, _)| *id).collect(),
                layer_links: links
                    .iter()
                    .filter_map(|(id, layer, _)| {
                        layer.as_ref().map(|l| LayerLink {
                            stream_id: *id,
                            resolution_id: l.clone(),
                        })
                    })
                    .collect(),
                plis_sent: streams.iter().map(|(_, media)| media.plis_sent()).sum(),
                links_reopened: h.reopened.load(Ordering::Relaxed),
                links_silent: h.silent.load(Ordering::Relaxed),
                credentials_renewed: h.renewed.load(Ordering::Relaxed),
            }
        })
    }
}

/// Where a `join` goes in a cluster: `Ok(None)` to join here (the room is
/// here, was just claimed, or is mirrored for a player), `Ok(Some(redirect))`
/// to send the client to the owner node.
pub(crate) async fn route_join(
    shared: &Arc<Shared>,
    room_id: &RoomId,
    app_id: &AppId,
    role: Role,
) -> Result<Option<Reply>, super::ClusterError> {
    let Some(cluster) = &shared.cluster else {
        return Ok(None);
    };
    if let Some(mirror) = cluster.relays.get(room_id) {
        if role.can_publish() {
            return Ok(Some(Reply::Redirect {
                room_id: room_id.clone(),
                node_id: mirror.owner_node,
                url: mirror.owner_url,
            }));
        }
        return Ok(None);
    }
    if shared.rooms.exists(room_id) {
        return Ok(None);
    }
    let Some(redirect) = cluster.route(room_id).await? else {
        return Ok(None);
    };
    let Reply::Redirect { node_id, url, .. } = &redirect else {
        return Ok(Some(redirect));
    };
    if !cluster.config.relay_subscribers || role.can_publish() {
        return Ok(Some(redirect));
    }
    let _opening = cluster.relays.opening.lock().await;
    if cluster.relays.get(room_id).is_some() {
        return Ok(None);
    }
    match open(shared, room_id, app_id, node_id, url).await {
        Ok(handle) => {
            lock(&cluster.relays.open).insert(room_id.clone(), handle);
            Ok(None)
        }
        Err(e) => {
            // The player still gets the room, on its owner.
            tracing::warn!(room = %room_id, "no relay, redirecting: {e}");
            Ok(Some(redirect))
        }
    }
}

fn mirrored(shared: &Shared, room_id: &RoomId) -> bool {
    shared
        .cluster
        .as_ref()
        .is_some_and(|c| c.relays.get(room_id).is_some())
}

/// A director's request (`set-program`, `remove-user`, `dismiss-room`) on
/// a mirrored room would change this node's copy only: refused with
/// 90100001 (`INVALID_OPERATION`); a director joins the room's node. The
/// program reaches this node's players from there.
pub(crate) fn check_director(
    shared: &Shared,
    room_id: &RoomId,
) -> Result<(), crate::server::signalling::RequestError> {
    if mirrored(shared, room_id) {
        return Err(crate::server::signalling::RequestError::InvalidOperation(
            format!(
                "room {room_id} is relayed to this node for players: a director joins its node"
            ),
        ));
    }
    Ok(())
}

/// A player of a mirrored room may not become a joiner here: its streams
/// would be published on this node, not on the owner. Refused with 90100001
/// (`INVALID_OPERATION`); the client joins the owner as a joiner instead.
pub(crate) fn check_switch(
    shared: &Shared,
    room_id: &RoomId,
    role: Role,
) -> Result<(), crate::server::signalling::RequestError> {
    if mirrored(shared, room_id) && role.can_publish() {
        return Err(crate::server::signalling::RequestError::InvalidOperation(
            format!("room {room_id} is relayed to this node for players: join its node to publish"),
        ));
    }
    Ok(())
}

/// The member of one relay link at the owner: `node-relay-<node>-<stream>`,
/// and `-l<slot>` after it for a layer of a layered stream (one link each).
fn link_user(node_id: &str, stream: StreamId, layer: Option<u8>) -> UserId {
    let user = relay_user(node_id, Some(stream));
    match layer {
        Some(slot) => UserId::from(format!("{user}-l{slot}")),
        None => user,
    }
}

/// `node-relay-<node>[-<stream>]`, with the node id's dots (allowed in node
/// ids, not in user ids) made `_`.
fn relay_user(node_id: &str, stream: Option<StreamId>) -> UserId {
    let node: String = node_id
        .chars()
        .map(|c| if c == '.' { '_' } else { c })
        .collect();
    let id = match stream {
        Some(s) => format!("{RELAY_USER_PREFIX}{node}-{s}"),
        None => format!("{RELAY_USER_PREFIX}{node}"),
    };
    UserId::from(id)
}

fn is_relay(user: &UserId) -> bool {
    user.as_str().starts_with(RELAY_USER_PREFIX)
}

/// Opens the mirror: joins the owner, copies its room here, starts a relay
/// link per stream, and leaves the rest to [`run`].
async fn open(
    shared: &Arc<Shared>,
    room_id: &RoomId,
    app_id: &AppId,
    owner_node: &str,
    owner_url: &str,
) -> Result<MirrorHandle, RelayError> {
    let owner_err = |why: String| RelayError::Owner {
        url: owner_url.to_owned(),
        why,
    };
    let key = shared
        .config
        .apps
        .get(app_id.as_str())
        .ok_or_else(|| owner_err(format!("app {app_id} has no key here")))?;
    let credential = Credential {
        app_id: app_id.clone(),
        key: key.to_owned(),
        lifetime: shared
            .cluster
            .as_ref()
            .map_or(super::credential::DEFAULT_LIFETIME, |c| {
                c.config.relay_credential
            }),
    };
    let me = relay_user(&shared.config.node_id, None);
    let (ctime, signature) = credential.sign(room_id, &me);
    let credential_lifetime = credential.lifetime;
    let join = ClientMessage {
        id: RequestId(1),
        request: Request::Join {
            protocol_version: PROTOCOL_VERSION,
            app_id: app_id.clone(),
            room_id: room_id.clone(),
            user_id: me,
            user_name: format!("relay to {}", shared.config.node_id),
            role: Role::Player,
            ctime,
            signature,
        },
    };
    let ca_pem = shared
        .cluster
        .as_ref()
        .and_then(|c| c.config.relay_ca_pem.as_deref());
    let owner = OwnerLink::new(owner_url, ca_pem).map_err(&owner_err)?;
    let joined = async {
        let stream = owner.connect().await.map_err(&owner_err)?;
        let (mut socket, _) = tokio_tungstenite::client_async(owner_url, stream)
            .await
            .map_err(|e| owner_err(e.to_string()))?;
        let text = serde_json::to_string(&join).map_err(|e| owner_err(e.to_string()))?;
        socket
            .send(Message::text(text))
            .await
            .map_err(|e| owner_err(e.to_string()))?;
        loop {
            let Some(frame) = socket.next().await else {
                return Err(owner_err("closed before joined".into()));
            };
            let frame = frame.map_err(|e| owner_err(e.to_string()))?;
            let Message::Text(text) = frame else {
                continue;
            };
            match serde_json::from_str::<ServerMessage>(text.as_str()) {
                Ok(ServerMessage::Reply {
                    reply:
                        Reply::Joined {
                            users,
                            streams,
                            program,
                            ..
                        },
                    ..
                }) => return Ok((socket, users, streams, program)),
                Ok(ServerMessage::Error(e)) => {
                    return Err(RelayError::Refused {
                        code: e.code,
                        message: e.message,
                    });
                }
                Ok(other) => return Err(owner_err(format!("answered {other:?}"))),
                Err(e) => return Err(owner_err(e.to_string())),
            }
        }
    };
    let (socket, users, streams, program) = tokio::time::timeout(OPEN_TIMEOUT, joined)
        .await
        .map_err(|_| owner_err(format!("no joined within {OPEN_TIMEOUT:?}")))??;
    let handle = MirrorHandle {
        owner_node: owner_node.to_owned(),
        owner_url: owner_url.to_owned(),
        links: Arc::default(),
        reopened: Arc::default(),
        silent: Arc::default(),
        renewed: Arc::default(),
    };
    let (inbox, inbox_rx) = SessionInbox::new();
    let mut mirror = Mirror {
        shared: Arc::clone(shared),
        room_id: room_id.clone(),
        credential,
        owner,
        inbox,
        members: HashMap::new(),
        relays: HashMap::new(),
        links: Arc::clone(&handle.links),
        reopened: Arc::clone(&handle.reopened),
        silent: Arc::clone(&handle.silent),
        renewed: Arc::clone(&handle.renewed),
        renewal: Renewal::new(credential_lifetime, tokio::time::Instant::now()),
    };
    for user in users {
        mirror.peer_join(user);
    }
    for stream in streams {
        mirror.stream_added(stream).await;
    }
    // Before any local player joins: `joined` here carries it.
    shared.rooms.mirror_program(room_id, program, None);
    tracing::info!(room = %room_id, owner = owner_node, "mirroring the room for local players");
    tokio::spawn(mirror.run(socket, inbox_rx));
    Ok(handle)
}

/// One relayed stream: its media here, and its links from the owner while
/// local legs watch it: one for a stream without layers, one per layer
/// watched here for a layered one ([`links_wanted`]).
struct Relay {
    owner: UserId,
    media: Arc<PublishedMedia>,
    /// The owner's `resolutionId` of each layer slot here (its active
    /// layers when the stream was mirrored, largest first); empty: a stream
    /// without layers.
    layers: Vec<String>,
    /// Its links by layer slot (slot 0 alone without layers); no entry: `Idle`.
    links: std::collections::BTreeMap<u8, LinkState>,
}

impl Relay {
    fn open_links(&self) -> impl Iterator<Item = (u8, &OpenLink)> {
        self.links.iter().filter_map(|(slot, state)| match state {
            LinkState::Open(link) => Some((*slot, &**link)),
            _ => None,
        })
    }
}

/// The layer slots of a relayed stream that need a link now (bit `n`: slot
/// `n`): none while no local leg watches it (`video` + `audio` legs); for a
/// stream without layers (`layers` = 0), slot 0; for a layered one, the
/// slots local legs need (`watched`, `PublishedMedia::watched_layers`: a
/// fixed leg its current and target layer, an `auto` leg every layer, so
/// the downlink estimate here chooses among them all), or the top layer
/// while watching legs name none (an audio-only or top-N leg).
fn links_wanted(video: usize, audio: usize, layers: usize, watched: u8) -> u8 {
    if video + audio == 0 {
        return 0;
    }
    let all = u8::try_from((1u16 << layers.min(MAX_RESOLUTIONS)) - 1).unwrap_or(u8::MAX);
    match watched & all {
        0 => 1,
        some => some,
    }
}

/// A relayed stream's link from the owner node, as a state machine (tended
/// every [`CHECK_EVERY`], `Mirror::tend`):
///
/// ```text
///  Idle ──a local leg watches──▶ Open ──nobody watches for LINK_GRACE──▶ Idle
///   ▲                             │ failed: ICE/DTLS failed or disconnected, the owner
///   │                             │ dropped its member, or silent for SILENCE_LIMIT
///   │ nobody watches              ▼
///   └──────────────────────── Retry{failures, at} ──at──▶ Open, or Retry{failures + 1}
/// ```
enum LinkState {
    /// No local leg watches the stream: no link.
    Idle,
    /// A link is up (or connecting). Boxed: the other states are small.
    Open(Box<OpenLink>),
    /// Watched, without a link: opening failed `failures` times in a row
    /// (or the link failed); the next try is at `at`.
    Retry { failures: u32, at: Instant },
}

/// An open relay link and the owner's WHEP resource.
struct OpenLink {
    ingress: RelayIngress,
    /// The WHEP resource's path on the owner (`DELETE` ends it there).
    location: Option<String>,
    /// The credential the resource was made with.
    bearer: String,
    /// The owner announced this link's member (`peer-join`): a `peer-leave`
    /// of it from now on means the owner dropped this link (the leave of a
    /// link closed before comes before this join on the owner's socket).
    announced: bool,
    /// The owner dropped its member: the link carries nothing any more.
    dropped: bool,
    /// Since when no local leg watches the stream.
    unwatched_since: Option<Instant>,
    /// What the link received, as the watchdog last saw it.
    heard: Heard,
    /// The failures in a row before it was opened (0: the first link).
    after_failures: u32,
}

/// The silent-path watchdog of one link, read every [`CHECK_EVERY`]: the
/// link's received bytes and since when they have not grown. It bites only
/// once RTP came (before that, the owner's hub sends nothing periodic: the
/// publisher may not send yet), after [`SILENCE_LIMIT`].
#[derive(Debug, Clone, Copy)]
struct Heard {
    bytes: u64,
    since: Instant,
    rtp: bool,
}

impl Heard {
    fn new(now: Instant) -> Self {
        Self {
            bytes: 0,
            since: now,
            rtp: false,
        }
    }

    /// Takes a reading; whether the link is silent now.
    fn read(&mut self, now: Instant, bytes: u64, rtp: bool) -> bool {
        if bytes != self.bytes {
            self.bytes = bytes;
            self.since = now;
        }
        self.rtp |= rtp;
        self.rtp && now.saturating_duration_since(self.since) >= SILENCE_LIMIT
    }
}

/// The wait before the next try after `failures` failures in a row.
fn retry_delay(failures: u32) -> Duration {
    let doubled = RETRY_FIRST.saturating_mul(1 << failures.saturating_sub(1).min(8));
    doubled.min(RETRY_MAX)
}

/// A mirror's state (owned by its task).
struct Mirror {
    shared: Arc<Shared>,
    room_id: RoomId,
    credential: Credential,
    /// The owner's address (its HTTP side, for WHEP, is the same: `https`
    /// for a `wss://` owner).
    owner: OwnerLink,
    /// The inbox of every remote member here (drained, never read).
    inbox: SessionInbox,
    /// Remote users and their local sessions.
    members: HashMap<UserId, SessionId>,
    relays: HashMap<StreamId, Relay>,
    links: RelayLinks,
    reopened: Arc<AtomicU64>,
    silent: Arc<AtomicU64>,
    renewed: Arc<AtomicU64>,
    /// When the mirror's session renews its credential at the owner.
    renewal: Renewal,
}

/// Why a mirror ended.
enum End {
    /// No local member left, or shutdown: a quiet end.
    Idle,
    /// The owner's socket went away: local players must route again.
    OwnerLost,
}

impl Mirror {
    async fn run(
        mut self,
        mut socket: Socket,
        mut inbox_rx: crate::server::inbox::SessionInboxReceiver,
    ) {
        let mut shutdown = self.shared.shutdown.subscribe();
        let mut check = tokio::time::interval(CHECK_EVERY);
        let mut ping = tokio::time::interval(PING_EVERY);
        let mut alone_since: Option<Instant> = None;
        let end = loop {
            tokio::select! {
                frame = socket.next() => match frame {
                    Some(Ok(Message::Text(text))) => {
                        match serde_json::from_str(text.as_str()) {
                            Ok(ServerMessage::Event { event }) => self.on_event(event).await,
                            Ok(ServerMessage::Reply { id, .. }) => self.renewal_answered(id, None),
                            Ok(ServerMessage::Error(e)) => {
                                if let Some(id) = e.id {
                                    self.renewal_answered(id, Some(&e));
                                }
                            }
                            Err(_) => {} // a message of a newer owner
                        }
                    }
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break End::OwnerLost,
                    Some(Ok(_)) => {}
                },
                // Events for the remote members: they are told on the owner.
                Some(_) = inbox_rx.events.recv() => {}
                _ = tokio::time::sleep_until(self.renewal.wake_at()) => {
                    if self.renew(&mut socket).await.is_err() {
                        break End::OwnerLost;
                    }
                }
                _ = ping.tick() => {
                    if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                        break End::OwnerLost;
                    }
                }
                _ = check.tick() => {
                    self.tend_links().await;
                    if self.local_members() > 0 {
                        alone_since = None;
                    } else if alone_since.get_or_insert_with(Instant::now).elapsed() >= LINGER {
                        break End::Idle;
                    }
                }
                _ = shutdown.changed() => break End::Idle,
            }
        };
        self.end(end).await;
        socket.close(None).await.ok(); // the owner may be gone already
    }

    /// Sends a renewal of the mirror's credential if one is due.
    async fn renew(&mut self, socket: &mut Socket) -> Result<(), ()> {
        let Some(id) = self.renewal.due(tokio::time::Instant::now()) else {
            return Ok(());
        };
        let me = relay_user(&self.shared.config.node_id, None);
        let (ctime, signature) = self.credential.sign(&self.room_id, &me);
        let renew = ClientMessage {
            id,
            request: Request::RenewSignature {
                ctime,
                signature,
                room_id: None,
            },
        };
        let text = serde_json::to_string(&renew).map_err(|_| ())?;
        socket.send(Message::text(text)).await.map_err(|_| ())
    }

    /// A reply (`error`: `Some`) that may answer a renewal.
    fn renewal_answered(&mut self, id: RequestId, error: Option<&crate::protocol::ErrorReply>) {
        let now = tokio::time::Instant::now();
        match self.renewal.answered(id, error.is_none(), now) {
            Answer::Renewed => {
                self.renewed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(room = %self.room_id, "node credential renewed at the owner");
            }
            Answer::Refused => {
                if let Some(e) = error {
                    tracing::warn!(room = %self.room_id, code = ?e.code, "the owner refused to renew the node credential: {}", e.message);
                }
            }
            Answer::NotMine => {}
        }
    }

    /// Members of the local room that are not mirrored.
    fn local_members(&self) -> usize {
        self.shared
            .rooms
            .member_sessions(&self.room_id)
            .iter()
            .filter(|s| !self.members.values().any(|m| m == *s))
            .count()
    }

    async fn end(mut self, end: End) {
        if let Some(cluster) = &self.shared.cluster {
            // First, so a join from now on routes again.
            let _opening = cluster.relays.opening.lock().await;
            lock(&cluster.relays.open).remove(&self.room_id);
        }
        for (user, session) in std::mem::take(&mut self.members) {
            self.shared
                .rooms
                .leave(&self.room_id, &user, session, LeaveReason::UserExit);
        }
        for (_, relay) in std::mem::take(&mut self.relays) {
            relay.media.close();
            for (_, state) in relay.links {
                if let LinkState::Open(link) = state {
                    self.close_link(*link).await;
                }
            }
        }
        lock(&self.links).clear();
        if let End::OwnerLost = end {
            tracing::warn!(room = %self.room_id, "owner node gone: local players rejoin");
            self.shared
                .rooms
                .kick_all(&self.room_id, LeaveReason::ServiceUnavailable);
        } else {
            tracing::info!(room = %self.room_id, "mirror ended: no local member left");
        }
    }

    async fn on_event(&mut self, event: Event) {
        match event {
            Event::PeerJoin { user } if is_relay(&user.user_id) => {
                self.link_member(&user.user_id, true);
            }
            Event::PeerJoin { user } => self.peer_join(user),
            Event::PeerLeave { user_id, .. } if is_relay(&user_id) => {
                self.link_member(&user_id, false);
            }
            Event::PeerLeave { user_id, reason } => {
                if let Some(session) = self.members.remove(&user_id) {
                    self.shared
                        .rooms
                        .leave(&self.room_id, &user_id, session, reason);
                    let gone: Vec<StreamId> = self
                        .relays
                        .iter()
                        .filter(|(_, r)| r.owner == user_id)
                        .map(|(id, _)| *id)
                        .collect();
                    for id in gone {
                        self.stream_removed(id).await;
                    }
                }
            }
            Event::StreamAdded { stream } => self.stream_added(stream).await,
            Event::StreamRemoved { stream_id, .. } => self.stream_removed(stream_id).await,
            Event::StreamUpdated { stream } => self.stream_updated(stream),
            // The owner sends its streams' `stream-removed` first when a
            // role may no longer publish, so nothing is left to remove.
            Event::PeerRoleChanged { user_id, role } => {
                if let Some(&session) = self.members.get(&user_id) {
                    self.shared
                        .rooms
                        .switch_role(&self.room_id, &user_id, session, role)
                        .ok(); // it left meanwhile
                }
            }
            Event::RemoteUserNameChanged { user_id, user_name } => {
                if let Some(&session) = self.members.get(&user_id) {
                    self.shared
                        .rooms
                        .change_user_name(&self.room_id, &user_id, session, user_name)
                        .ok(); // it left meanwhile
                }
            }
            // After the stream events before it, as the owner sent them:
            // a stream that went took itself off air here already.
            // Renewed at half life anyway; the owner warning first (its
            // notice is longer than that) means now.
            Event::SignatureExpired { .. } => self.renewal.warned(tokio::time::Instant::now()),
            Event::ProgramChanged { program, by } => {
                self.shared.rooms.mirror_program(&self.room_id, program, by);
            }
            // Events for one session of the owner (the mirror's own: its
            // signature, top-N, subscriptions): this node makes its own
            // for its sessions (volume indications come from this node's
            // top-N legs, fed by the relayed audio).
            _ => {}
        }
    }

    /// The owner's `stream-updated`: mutes, and the active layers of a
    /// layered stream (`add-`/`remove-resolution`), which local players'
    /// subscriptions follow as on the owner (one on a removed layer moves
    /// to the largest left). Only layers this node has a slot for are
    /// listed: those the stream had when it was mirrored.
    fn stream_updated(&mut self, stream: StreamInfo) {
        let Some(&session) = self.members.get(&stream.user_id) else {
            return;
        };
        let slots = self
            .relays
            .get(&stream.stream_id)
            .map(|r| r.layers.clone())
            .unwrap_or_default();
        let resolutions: Vec<_> = stream
            .resolutions
            .into_iter()
            .filter(|r| slots.contains(&r.resolution_id))
            .collect();
        self.shared
            .rooms
            .change_stream(&self.room_id, session, stream.stream_id, |info| {
                info.audio_muted = stream.audio_muted;
                info.video_muted = stream.video_muted;
                if !slots.is_empty() && !resolutions.is_empty() {
                    info.resolutions = resolutions;
                }
                Ok::<(), crate::server::room::RoomError>(())
            })
            .ok(); // a stream not relayed here: nothing to update
    }

    fn peer_join(&mut self, user: UserInfo) {
        if is_relay(&user.user_id) || self.members.contains_key(&user.user_id) {
            return;
        }
        let session = SessionId(self.shared.next());
        let joined = self.shared.rooms.join(
            &self.room_id,
            session,
            user.clone(),
            self.inbox.clone(),
            usize::MAX,
            usize::MAX,
        );
        if joined.is_ok() {
            self.members.insert(user.user_id, session);
        }
    }

    /// A stream of the owner's room: mirrored here at once (local players
    /// see it and may subscribe), relayed only once a local leg watches it
    /// ([`Mirror::tend`]).
    async fn stream_added(&mut self, stream: StreamInfo) {
        let Some(&session) = self.members.get(&stream.user_id) else {
            return;
        };
        if self.relays.contains_key(&stream.stream_id) {
            return;
        }
        let media = match self.shared.sfu.relay_media() {
            Ok(media) => media,
            Err(e) => {
                tracing::warn!(room = %self.room_id, stream = %stream.stream_id, "no relay media: {e}");
                return;
            }
        };
        let stream_id = stream.stream_id;
        let owner = stream.user_id.clone();
        // Local players choose among the owner's layers by their ids, as
        // there (`resolutionId`, `auto`); each layer comes over a link of
        // its own, `?layer=` on the owner's WHEP.
        let layers: Vec<String> = stream
            .resolutions
            .iter()
            .map(|r| r.resolution_id.clone())
            .collect();
        media.set_layers(layers.clone());
        if self
            .shared
            .rooms
            .add_stream(&self.room_id, session, stream, Arc::clone(&media))
            .is_ok()
        {
            self.relays.insert(
                stream_id,
                Relay {
                    owner,
                    media,
                    layers,
                    links: std::collections::BTreeMap::new(),
                },
            );
        } else {
            media.close();
        }
    }

    async fn stream_removed(&mut self, stream_id: StreamId) {
        let Some(relay) = self.relays.remove(&stream_id) else {
            return;
        };
        if let Some(&session) = self.members.get(&relay.owner) {
            self.shared
                .rooms
                .remove_stream(&self.room_id, session, stream_id)
                .ok(); // already gone with its member
        }
        relay.media.close();
        for (_, state) in relay.links {
            if let LinkState::Open(link) = state {
                self.close_link(*link).await;
            }
        }
        self.publish_links();
    }

    /// Opens, keeps, closes or reopens each stream's link by who watches it
    /// here (`LinkState`).
    async fn tend_links(&mut self) {
        let ids: Vec<StreamId> = self.relays.keys().copied().collect();
        for id in ids {
            self.tend(id).await;
        }
        self.publish_links();
    }

    /// Tends each link of stream `id`: those [`links_wanted`] and those
    /// open or retrying; then which of them carries the audio.
    async fn tend(&mut self, id: StreamId) {
        let Some(relay) = self.relays.get(&id) else {
            return;
        };
        let (video, audio) = relay.media.subscriber_counts();
        let wanted = links_wanted(
            video,
            audio,
            relay.layers.len(),
            relay.media.watched_layers(),
        );
        let mut slots: Vec<u8> = relay.links.keys().copied().collect();
        slots.extend((0..MAX_RESOLUTIONS as u8).filter(|s| wanted & (1 << s) != 0));
        slots.sort_unstable();
        slots.dedup();
        for slot in slots {
            self.tend_link(id, slot, wanted & (1 << slot) != 0).await;
        }
        if let Some(relay) = self.relays.get(&id) {
            carry_audio(relay);
        }
    }

    /// Link `slot` of stream `id` (`LinkState`); `watched`: a local leg
    /// needs it.
    async fn tend_link(&mut self, id: StreamId, slot: u8, watched: bool) {
        let Some(relay) = self.relays.get_mut(&id) else {
            return;
        };
        let media = Arc::clone(&relay.media);
        let layer = relay
            .layers
            .get(usize::from(slot))
            .cloned()
            .map(|l| (slot, l));
        let mut state = relay.links.remove(&slot).unwrap_or(LinkState::Idle);
        let now = Instant::now();
        let mut silent = false;
        if let LinkState::Open(link) = &mut state {
            let (bytes, rtp) = link.ingress.received().await;
            silent = link.heard.read(now, bytes, rtp);
        }
        let next = match state {
            LinkState::Idle if watched => self.open_or_retry(id, layer.clone(), &media, 0).await,
            LinkState::Idle => LinkState::Idle,
            LinkState::Open(link) if link.dropped || link.ingress.is_failed() || silent => {
                let why = if link.dropped {
                    "the owner dropped it"
                } else if link.ingress.is_failed() {
                    "ICE/DTLS failed or disconnected"
                } else {
                    self.silent.fetch_add(1, Ordering::Relaxed);
                    "nothing received for 3 s"
                };
                // A link that carried media failed: try again at once. One
                // that never did (its path is down from the start) counts
                // as one more failure in a row: the backoff grows.
                let (failures, at) = if link.heard.rtp {
                    (1, now)
                } else {
                    let failures = link.after_failures.saturating_add(1);
                    (failures, now + retry_delay(failures))
                };
                tracing::warn!(room = %self.room_id, stream = %id, "relay link lost ({why}): reopening in {:?}", at - now);
                self.close_link(*link).await;
                if watched {
                    LinkState::Retry { failures, at }
                } else {
                    LinkState::Idle
                }
            }
            LinkState::Open(mut link) => {
                if watched {
                    link.unwatched_since = None;
                    LinkState::Open(link)
                } else if link.unwatched_since.get_or_insert(now).elapsed() >= LINK_GRACE {
                    self.close_link(*link).await;
                    LinkState::Idle
                } else {
                    LinkState::Open(link)
                }
            }
            LinkState::Retry { .. } if !watched => LinkState::Idle,
            LinkState::Retry { failures, at } if now >= at => {
                let next = self
                    .open_or_retry(id, layer.clone(), &media, failures)
                    .await;
                if matches!(next, LinkState::Open(_)) {
                    self.reopened.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(room = %self.room_id, stream = %id, "relay link reopened");
                }
                next
            }
            retry => retry,
        };
        match (self.relays.get_mut(&id), next) {
            (_, LinkState::Idle) => {}
            (Some(relay), next) => {
                relay.links.insert(slot, next);
            }
            (None, LinkState::Open(link)) => self.close_link(*link).await,
            (None, _) => {}
        }
    }

    /// Opens the stream's link (of `layer`: its slot here and the owner's
    /// `resolutionId`); after `failures` failures in a row.
    async fn open_or_retry(
        &self,
        id: StreamId,
        layer: Option<(u8, String)>,
        media: &Arc<PublishedMedia>,
        failures: u32,
    ) -> LinkState {
        match self.open_link(id, layer, media).await {
            Ok(mut link) => {
                link.after_failures = failures;
                LinkState::Open(Box::new(link))
            }
            Err(e) => {
                let failures = failures.saturating_add(1);
                let wait = retry_delay(failures);
                tracing::warn!(room = %self.room_id, stream = %id, "relay link refused ({failures} in a row, next try in {wait:?}): {e}");
                LinkState::Retry {
                    failures,
                    at: Instant::now() + wait,
                }
            }
        }
    }

    /// What [`Mirrors::view`] shows: the open links, by stream id and slot.
    fn publish_links(&self) {
        let mut open: Vec<_> = self
            .relays
            .iter()
            .flat_map(|(id, r)| {
                r.open_links().map(move |(slot, _)| {
                    let layer = r.layers.get(usize::from(slot)).cloned();
                    (*id, slot, layer, Arc::clone(&r.media))
                })
            })
            .collect();
        open.sort_by_key(|(id, slot, _, _)| (id.0, *slot));
        *lock(&self.links) = open
            .into_iter()
            .map(|(id, _, layer, media)| (id, layer, media))
            .collect();
    }

    /// The owner's `peer-join`/`peer-leave` of one of this node's link
    /// members (`node-relay-<node>-<stream>`): the link is announced, or the
    /// owner dropped it.
    fn link_member(&mut self, user_id: &UserId, joined: bool) {
        let node = &self.shared.config.node_id;
        for (id, relay) in &mut self.relays {
            let layered = !relay.layers.is_empty();
            for (slot, state) in &mut relay.links {
                if link_user(node, *id, layered.then_some(*slot)) != *user_id {
                    continue;
                }
                if let LinkState::Open(link) = state {
                    if joined {
                        link.announced = true;
                    } else if link.announced {
                        link.dropped = true;
                    }
                }
            }
        }
    }

    /// Plays stream `id` from the owner over WHEP into `media`: one link
    /// for this node, or one per `layer` (its slot here, the owner's
    /// `resolutionId`: `?layer=`) of a layered stream.
    async fn open_link(
        &self,
        id: StreamId,
        layer: Option<(u8, String)>,
        media: &Arc<PublishedMedia>,
    ) -> Result<OpenLink, RelayError> {
        let authority = self.owner.authority().to_owned();
        let owner_err = |why: String| RelayError::Owner {
            url: authority.clone(),
            why,
        };
        let (ingress, offer) = self
            .shared
            .sfu
            .relay_ingress(media, layer.as_ref().map(|(slot, _)| *slot))
            .await
            .map_err(|e| owner_err(e.to_string()))?;
        let user = link_user(
            &self.shared.config.node_id,
            id,
            layer.as_ref().map(|(slot, _)| *slot),
        );
        let (ctime, signature) = self.credential.sign(&self.room_id, &user);
        let path = self.owner.path(&whep_path(
            &self.room_id,
            id,
            &self.credential.app_id,
            &user,
            ctime,
            layer.as_ref().map(|(_, id)| id.as_str()),
        ));
        let reply = match http(&self.owner, "POST", &path, &signature, Some(&offer)).await {
            Ok(reply) => reply,
            Err(why) => {
                ingress.close().await;
                return Err(owner_err(why));
            }
        };
        if reply.status != 201 {
            ingress.close().await;
            let body: Option<crate::auth::ErrorBody> = serde_json::from_str(&reply.body).ok();
            return Err(match body {
                Some(b) => RelayError::Refused {
                    code: b.code,
                    message: b.message,
                },
                None => owner_err(format!("WHEP answered {}", reply.status)),
            });
        }
        let link = OpenLink {
            ingress,
            location: reply.location,
            bearer: signature,
            announced: false,
            dropped: false,
            unwatched_since: None,
            heard: Heard::new(Instant::now()),
            after_failures: 0,
        };
        if let Err(e) = link.ingress.apply_answer(reply.body).await {
            self.close_link(link).await;
            return Err(owner_err(e.to_string()));
        }
        Ok(link)
    }

    async fn close_link(&self, link: OpenLink) {
        link.ingress.close().await;
        if let Some(location) = &link.location {
            // The owner also ends the resource when the link fails.
            let path = self.owner.resource(location);
            if let Err(e) = http(&self.owner, "DELETE", &path, &link.bearer, None).await {
                tracing::debug!("relay DELETE {location}: {e}");
            }
        }
    }
}

/// Of a layered stream's open links, one forwards the stream's audio (each
/// link carries it): the one that did, while a local leg still needs its
/// layer; else a needed one (the lowest slot), so a player's switch to
/// another layer does not leave the audio on a link about to close.
fn carry_audio(relay: &Relay) {
    if relay.layers.is_empty() {
        return; // the one link carries it
    }
    let open: Vec<&OpenLink> = relay.open_links().map(|(_, link)| link).collect();
    let needed = |link: &OpenLink| link.unwatched_since.is_none();
    let carrier = open.iter().find(|l| l.ingress.carries_audio());
    if carrier.is_some_and(|c| needed(c)) {
        return;
    }
    let Some(next) = open.iter().find(|l| needed(l)).or(carrier).or(open.first()) else {
        return;
    };
    for link in &open {
        link.ingress.carry_audio(std::ptr::eq(*link, *next));
    }
}

/// The owner's WHEP path for one relay link (before a proxy's prefix,
/// `OwnerLink::path`).
fn whep_path(
    room: &RoomId,
    stream: StreamId,
    app: &AppId,
    user: &UserId,
    ctime: u64,
    layer: Option<&str>,
) -> String {
    let mut path = format!("/whep/{room}/{stream}?appid={app}&userid={user}&ctime={ctime}&role=2");
    if let Some(layer) = layer {
        path.push_str(&format!("&layer={layer}"));
    }
    path
}

/// An HTTP reply, as much as the relay reads of it.
struct HttpReply {
    status: u16,
    location: Option<String>,
    body: String,
}

/// One HTTP/1.1 request on its own connection (`Connection: close`), the
/// body an SDP. Enough for the owner's WHEP endpoint.
async fn http(
    owner: &OwnerLink,
    method: &str,
    path: &str,
    bearer: &str,
    sdp: Option<&str>,
) -> Result<HttpReply, String> {
    let exchange = async {
        let authority = owner.authority();
        let mut conn = owner.connect().await?;
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {bearer}\r\nConnection: close\r\n"
        );
        let body = sdp.unwrap_or("");
        if sdp.is_some() {
            request.push_str(&format!(
                "Content-Type: application/sdp\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        request.push_str("\r\n");
        request.push_str(body);
        conn.write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        // A TLS peer that closes without close_notify still sent its
        // whole reply (`Connection: close`): parse what came.
        if let Err(e) = conn.read_to_end(&mut raw).await
            && raw.is_empty()
        {
            return Err(e.to_string());
        }
        parse_reply(&String::from_utf8_lossy(&raw))
    };
    tokio::time::timeout(OPEN_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no HTTP answer within {OPEN_TIMEOUT:?}"))?
}

fn parse_reply(raw: &str) -> Result<HttpReply, String> {
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .ok_or_else(|| "no end of headers".to_owned())?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| "no status line".to_owned())?;
    let location = lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("location")
            .then(|| value.trim().to_owned())
    });
    Ok(HttpReply {
        status,
        location,
        body: body.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_users_are_valid_ids_and_recognised() {
        let user = relay_user("node-1.eu", Some(StreamId(7)));
        assert_eq!(user.as_str(), "node-relay-node-1_eu-7");
        assert!(crate::auth::validate_id(user.as_str()));
        assert!(is_relay(&user));
        assert!(!is_relay(&UserId::from("alice".to_owned())));
    }

    /// Which links a relayed stream needs: none unwatched, the one link of
    /// a stream without layers, the layers local legs need of a layered one
    /// (all of them for an `auto` leg: the downlink estimate here chooses
    /// among what it measures), the top one for legs that name none.
    #[test]
    fn links_follow_the_layers_local_legs_watch() {
        use crate::server::sfu::wanted::leg_wants;
        assert_eq!(links_wanted(0, 0, 2, 0b11), 0, "nobody watches");
        assert_eq!(links_wanted(1, 1, 0, 0), 0b1, "no layers: one link");
        assert_eq!(links_wanted(1, 1, 0, 0b100), 0b1);
        // A player on the smallest of three layers, one on the top.
        assert_eq!(links_wanted(1, 1, 3, leg_wants(2, 2, false)), 0b100);
        assert_eq!(
            links_wanted(2, 2, 3, leg_wants(2, 2, false) | leg_wants(0, 0, false)),
            0b101
        );
        // Switching from the smallest to the top: both until the switch.
        assert_eq!(links_wanted(1, 1, 3, leg_wants(2, 0, false)), 0b101);
        // `auto` pulls every layer the stream has, no more.
        assert_eq!(links_wanted(1, 1, 2, leg_wants(1, 1, true)), 0b11);
        assert_eq!(links_wanted(1, 1, 3, leg_wants(0, 0, true)), 0b111);
        // Watched, no layer named (audio only): the top.
        assert_eq!(links_wanted(0, 1, 3, 0), 0b1);
    }

    #[test]
    fn layer_links_have_members_and_paths_of_their_own() {
        let room = RoomId::from("room_1".to_owned());
        let app = AppId::from("demo".to_owned());
        let plain = link_user("node-b", StreamId(7), None);
        let small = link_user("node-b", StreamId(7), Some(1));
        assert_eq!(plain.as_str(), "node-relay-node-b-7");
        assert_eq!(small.as_str(), "node-relay-node-b-7-l1");
        assert!(crate::auth::validate_id(small.as_str()));
        assert!(is_relay(&small));
        assert_eq!(
            whep_path(&room, StreamId(7), &app, &small, 99, Some("180p_2")),
            "/whep/room_1/7?appid=demo&userid=node-relay-node-b-7-l1&ctime=99&role=2&layer=180p_2"
        );
        assert_eq!(
            whep_path(&room, StreamId(7), &app, &plain, 99, None),
            "/whep/room_1/7?appid=demo&userid=node-relay-node-b-7&ctime=99&role=2"
        );
    }

    #[test]
    fn relay_links_are_retried_sooner_first() {
        assert_eq!(retry_delay(1), Duration::from_millis(250));
        assert_eq!(retry_delay(2), Duration::from_millis(500));
        assert_eq!(retry_delay(5), Duration::from_secs(4));
        assert_eq!(retry_delay(6), RETRY_MAX);
        assert_eq!(retry_delay(u32::MAX), RETRY_MAX);
    }

    #[test]
    fn a_link_is_silent_only_after_media_and_three_quiet_seconds() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut heard = Heard::new(start);
        // ICE and DTLS but no RTP yet: never silent, however long.
        assert!(!heard.read(at(0), 300, false));
        assert!(!heard.read(at(10_000), 300, false));
        // RTP came; reports keep the bytes growing.
        assert!(!heard.read(at(10_250), 5_000, true));
        assert!(!heard.read(at(12_000), 5_100, false));
        assert!(!heard.read(at(14_999), 5_100, false));
        // Nothing for SILENCE_LIMIT since the last growth.
        assert!(heard.read(at(15_000), 5_100, false));
        // It comes back: not silent.
        assert!(!heard.read(at(15_250), 5_200, false));
    }

    #[test]
    fn replies_and_authorities_parse() {
        let reply = parse_reply(
            "HTTP/1.1 201 Created\r\nlocation: /whep/r/1/abc\r\ncontent-length: 3\r\n\r\nv=0",
        )
        .expect("parses");
        assert_eq!(reply.status, 201);
        assert_eq!(reply.location.as_deref(), Some("/whep/r/1/abc"));
        assert_eq!(reply.body, "v=0");
        assert!(parse_reply("garbage").is_err());
    }
}
