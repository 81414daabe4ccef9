//! One WebSocket connection: the signalling session of one client.
//!
//! A session is a task that owns everything its client created: its membership of
//! a room, its publish legs and its subscription legs. It runs one loop that
//! selects between frames from the socket and events in its inbox (from the room
//! and from its SFU links) and handles each to completion before taking the next,
//! so its state needs no lock. When the loop ends, for whatever reason, the
//! session removes itself from the room and closes every link it owns: nothing it
//! created outlives it. One exception to "the loop ends": a joined session whose
//! socket drops (an error, or end of stream without a close frame) parks for
//! the resume window, keeping its room membership and links, until its client
//! takes it back with `resume` on a new connection (see `resume`).
//!
//! Writes to the client never hold a session hostage: each races the
//! session's stop signals (a kick from the room, the server's shutdown) and is
//! bounded by `send_timeout`. A session the server ends leaves its room first
//! and says goodbye (`client-banned`, close frame) after, so the room never
//! waits for a client that does not read.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{Message, WebSocket};
use tokio::sync::{mpsc, watch};

mod cross_room;
mod expiry;
mod ice_restart;
pub(crate) mod layers;
mod program;
mod screen;
mod standby;
mod top_n;

use super::Shared;
use super::inbox::{
    LinkEvent, LinkState, SessionEvent, SessionId, SessionInbox, SessionInboxReceiver,
};
use super::resume::{self, Claim, HANDOFF_CAPACITY, Handoff, ResumeError};
use super::sdp_checks::{
    CandidateError, OfferError, check_candidate, check_layered_publish_offer,
    usable_candidates_only,
};
use super::sfu::{EgressLink, IngressLink, SfuError};
use crate::auth::{self, AuthError};
use crate::protocol::{
    self, AppId, ClientMessage, ErrorCode, ErrorReply, Event, IceCandidate, LeaveReason, LinkId,
    PROTOCOL_VERSION, ProtocolError, Reply, Request, RequestId, Role, RoomId, ServerMessage,
    StreamId, StreamInfo, UserId, UserInfo, VideoInfo,
};
use expiry::SignatureClock;

/// Why a request failed, split by fault; [`RequestError::code`] maps each to the
/// number the client sees.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The frame was not a valid message.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The signature of a join or a role switch was refused.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The room refused the change.
    #[error(transparent)]
    Room(#[from] super::room::RoomError),
    /// The SFU could not set up or change a link.
    #[error(transparent)]
    Sfu(#[from] SfuError),
    /// A field has a value the server does not accept (id syntax, name length...).
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// The request is not allowed in the session's current state (e.g. publish
    /// before join).
    #[error("invalid operation: {0}")]
    InvalidOperation(String),
    /// The caller's role forbids the request (a player publishing).
    #[error("role {0:?} has no permission to {1}")]
    RoleNoPermission(protocol::Role, &'static str),
    /// A second join on one connection.
    #[error("already joined room {0}")]
    AlreadyJoined(RoomId),
    /// The client speaks another protocol version.
    #[error("protocol version {got} is not supported (server speaks {PROTOCOL_VERSION})")]
    Version {
        /// What the client sent.
        got: u32,
    },
    /// The connection sent more requests than its rate limit allows. Retry later.
    #[error("too many requests: limit is {0} per second")]
    TooFrequent(u32),
    /// The caller already publishes its maximum number of streams.
    #[error("already publishing {0} streams")]
    TooManyStreams(usize),
    /// The caller already shares its screen (`isScreen`); one share per user.
    /// Not retryable until that share is unpublished.
    #[error("already sharing {0} screen stream(s)")]
    TooManyScreens(usize),
    /// The publish offer can never carry media to the server. Not retryable
    /// with the same offer.
    #[error("unusable publish offer: {0}")]
    Offer(#[from] OfferError),
    /// A trickled candidate no link could use. Not retryable as sent.
    #[error("invalid parameter: {0}")]
    Candidate(#[from] CandidateError),
    /// A `resume` was refused; nothing of any session changed.
    #[error(transparent)]
    Resume(#[from] ResumeError),
    /// A recording request was refused (`super::recording`).
    #[error(transparent)]
    Recording(#[from] super::recording::RecordingError),
    /// A simulcast layer request was refused (`protocol::layers`). Not
    /// retryable as sent.
    #[error(transparent)]
    Layer(crate::protocol::LayerError),
    /// A director's request was refused (`program.rs`).
    #[error(transparent)]
    Director(#[from] super::room::DirectorError),
    /// A cross-room relay request was refused (`cross_room`).
    #[error(transparent)]
    CrossRoom(#[from] cross_room::CrossRoomError),
    /// The cluster could not place a new room (`super::cluster`).
    #[error(transparent)]
    Cluster(#[from] super::cluster::ClusterError),
}

impl RequestError {
    /// The one place that maps internal errors to seed error codes.
    pub fn code(&self) -> ErrorCode {
        match self {
            RequestError::Protocol(e) => e.code(),
            RequestError::Auth(e) => e.code(),
            RequestError::Room(e) => e.code(),
            RequestError::Sfu(e) => e.code(),
            RequestError::InvalidParameter(_) => ErrorCode::InvalidParameter,
            RequestError::InvalidOperation(_) => ErrorCode::InvalidOperation,
            RequestError::RoleNoPermission(..) => ErrorCode::RoleNoPermission,
            RequestError::AlreadyJoined(_) => ErrorCode::AlreadyJoined,
            RequestError::Version { .. } => ErrorCode::VersionNotCompatible,
            RequestError::TooFrequent(_) => ErrorCode::RequestFrequently,
            RequestError::TooManyStreams(_) => ErrorCode::StreamAlreadyPushed,
            RequestError::TooManyScreens(_) => ErrorCode::DesktopNumberOutOfRange,
            RequestError::Offer(_) => ErrorCode::InvalidPushed,
            RequestError::Candidate(_) => ErrorCode::InvalidParameter,
            RequestError::Resume(e) => e.code(),
            RequestError::Recording(e) => e.code(),
            RequestError::Layer(e) => e.code(),
            RequestError::Director(e) => e.code(),
            RequestError::CrossRoom(e) => e.code(),
            RequestError::Cluster(e) => e.code(),
        }
    }
}

/// A token bucket: `burst` requests at once, refilled at `rate` per second.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    tokens: f64,
    burst: f64,
    rate: f64,
    last: Instant,
}

impl RateLimiter {
    pub(crate) fn new(rate: u32, burst: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(burst),
            burst: f64::from(burst),
            rate: f64::from(rate),
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub(crate) fn allow(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Membership of a room, once joined.
struct Joined {
    /// The app that signed the join; a role switch is signed for it too.
    app_id: AppId,
    room_id: RoomId,
    /// Kept in step with the room's copy (role switches, name changes).
    me: UserInfo,
    /// When the signature the session holds runs out (join, renewals).
    signature: SignatureClock,
    /// What that signature grants (a director's console: `program.rs`).
    grant: crate::auth::Grant,
}

/// How the loop should go on after handling something.
enum Flow {
    Continue,
    /// The client left (`leave`, a close frame) or went idle:
    /// leave the room with this reason, then send a close frame.
    Close(LeaveReason),
    /// The socket failed or ended without a close frame: park for the
    /// resume window (`resume`), then leave the room (reason 7).
    Lost,
    /// The client stopped reading (`send_timeout`): leave the room (reason 7)
    /// and say nothing more.
    Stuck,
    /// The resume window of a dropped session ran out: leave the room
    /// (reason 7) and say nothing more.
    Expired,
    /// A `resume` on a fresh connection: hand this socket to the session it
    /// names (see `resume`).
    Resume(Box<ResumeRequest>),
    /// The server ends the session (a kick, the shutdown): leave the room with
    /// this reason first, then send `client-banned` and a close frame.
    Ban(LeaveReason),
}

/// Why a write to the client did not complete.
enum WriteError {
    /// The session was told to end while the write waited: go and say goodbye.
    Stopped(LeaveReason),
    /// The socket failed.
    Lost,
    /// The client did not read for `send_timeout`.
    Stuck,
}

impl From<WriteError> for Flow {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Stopped(reason) => Flow::Ban(reason),
            WriteError::Lost => Flow::Lost,
            WriteError::Stuck => Flow::Stuck,
        }
    }
}

/// What ends a session from outside, even while it waits on its socket: a
/// kick from the room (its reason) or the server's shutdown (reason 3).
#[derive(Clone)]
struct Stop {
    kick: watch::Receiver<Option<LeaveReason>>,
    shutdown: watch::Receiver<bool>,
}

impl Stop {
    /// Completes once the session must end, with the reason its client is told.
    async fn signalled(&mut self) -> LeaveReason {
        let Stop { kick, shutdown } = self;
        // A closed channel never signals: its sender lives as long as we do.
        let kicked = async {
            let kicked = kick.wait_for(Option::is_some).await.map(|reason| *reason);
            match kicked {
                Ok(reason) => reason.unwrap_or(LeaveReason::ServerException),
                Err(_) => std::future::pending().await,
            }
        };
        let down = async {
            let down = shutdown.wait_for(|down| *down).await.is_ok();
            if !down {
                std::future::pending::<()>().await;
            }
            LeaveReason::ServiceUnavailable
        };
        tokio::select! {
            reason = kicked => reason,
            reason = down => reason,
        }
    }
}

/// What a link that failed carried, for the 90100226 its owner gets.
enum DroppedLink {
    /// The publish link of this stream: the stream is unpublished.
    Publish(StreamId),
    /// The subscription link to this stream: the subscription has ended.
    Subscription(StreamId),
}

impl DroppedLink {
    fn failure_message(&self, link_id: LinkId) -> String {
        match self {
            DroppedLink::Publish(stream_id) => format!(
                "publish link {link_id} of stream {stream_id} failed (ICE/DTLS) and was dropped; the stream is unpublished"
            ),
            DroppedLink::Subscription(stream_id) => format!(
                "subscription link {link_id} to stream {stream_id} failed (ICE/DTLS) and was dropped; the subscription has ended"
            ),
        }
    }
}

/// A subscription: the egress link carrying one remote stream to this client.
struct Subscription {
    link_id: LinkId,
    link: EgressLink,
    /// What the subscriber asked of a layered stream (`layers.rs`).
    layer: protocol::LayerChoice,
    /// The stream's layer slots by `resolutionId`; empty without layers.
    slots: Vec<String>,
    /// The slot the leg forwards (or switches to); `None` without layers.
    slot: Option<u8>,
}

impl Subscription {
    /// The `resolutionId` forwarded, for a layered stream.
    fn resolution_id(&self) -> Option<String> {
        self.slot
            .and_then(|slot| self.slots.get(usize::from(slot)))
            .cloned()
    }
}

/// A stream this client publishes.
struct Publication {
    link_id: LinkId,
    link: IngressLink,
}

struct Session {
    id: SessionId,
    shared: Arc<Shared>,
    inbox_tx: SessionInbox,
    joined: Option<Joined>,
    publications: BTreeMap<StreamId, Publication>,
    subscriptions: BTreeMap<StreamId, Subscription>,
    /// The top-N audio link, once enabled (`top_n.rs`).
    top_n: Option<top_n::TopN>,
    /// Streams relayed into other rooms (`cross_room.rs`).
    cross_rooms: cross_room::CrossRooms,
    limiter: RateLimiter,
    /// Interrupts a write that waits on a client that does not read.
    stop: Stop,
    send_timeout: Duration,
    /// Where a `resume` on another connection hands its socket to us.
    handoff_tx: mpsc::Sender<Handoff>,
    /// Ours once joined, registered in `Shared::resumes` until teardown.
    resume_token: Option<String>,
    /// A `signature-expired` warning due while parked, sent after `resumed`.
    missed_expiry_warning: Option<u64>,
    /// Relay signature warnings and relay ends that happened while parked,
    /// sent after `resumed` (`cross_room.rs`).
    missed_relay_events: Vec<Event>,
}

/// A `resume` request read on a fresh connection.
struct ResumeRequest {
    id: RequestId,
    app_id: AppId,
    room_id: RoomId,
    user_id: UserId,
    token: String,
}

/// How a parked session's wait ended.
enum Parked {
    /// The client is back on this socket.
    Back(Box<Handoff>),
    /// It ends without its client (window over, a kick, the shutdown).
    Ended(Flow),
}

/// Runs one client's session on an upgraded WebSocket until it ends.
pub(crate) async fn run_session(mut socket: WebSocket, shared: Arc<Shared>, id: SessionId) {
    let (handoff_tx, mut handoff_rx) = mpsc::channel(HANDOFF_CAPACITY);
    let _alive = shared.metrics.sessions.enter();
    let (inbox_tx, receiver) = SessionInbox::new();
    let SessionInboxReceiver {
        events: mut inbox,
        kick,
    } = receiver;
    let limits = shared.config.limits.clone();
    let mut stop = Stop {
        kick,
        shutdown: shared.shutdown.subscribe(),
    };
    let mut session = Session {
        id,
        shared,
        inbox_tx,
        joined: None,
        publications: BTreeMap::new(),
        subscriptions: BTreeMap::new(),
        top_n: None,
        cross_rooms: cross_room::CrossRooms::default(),
        limiter: RateLimiter::new(
            limits.requests_per_second,
            limits.request_burst,
            Instant::now(),
        ),
        stop: stop.clone(),
        send_timeout: limits.send_timeout,
        handoff_tx,
        resume_token: None,
        missed_expiry_warning: None,
        missed_relay_events: Vec::new(),
    };
    let idle = tokio::time::sleep(limits.idle_timeout);
    tokio::pin!(idle);
    // Handling a request or an event, and the teardown, are boxed: inline,
    // their futures (link set-up among them) made every idle session's task
    // about 21 KiB larger (2,000 idle sessions: 42 MiB). A box per request
    // is nothing beside the request's own parsing.
    let ending = loop {
        let expiry_due = session.expiry_due();
        let flow = tokio::select! {
            frame = socket.recv() => {
                idle.as_mut().reset(tokio::time::Instant::now() + limits.idle_timeout);
                match frame {
                    Some(Ok(Message::Text(text))) => Box::pin(session.on_frame(&mut socket, Ok(text.as_str()))).await,
                    Some(Ok(Message::Binary(_))) => Box::pin(session.on_frame(&mut socket, Err(ProtocolError::Binary))).await,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => Flow::Continue,
                    Some(Ok(Message::Close(_))) => Flow::Close(LeaveReason::UserExit),
                    // No close frame: the connection dropped under the client.
                    None => Flow::Lost,
                    Some(Err(e)) => {
                        tracing::debug!(session = id.0, "socket error: {e}");
                        Flow::Lost
                    }
                }
            }
            Some(event) = inbox.recv() => Box::pin(session.on_event(&mut socket, event)).await,
            Some(handoff) = handoff_rx.recv() => {
                // The client is back on a new connection before this one
                // failed under us: the old socket is dropped unsaid.
                idle.as_mut().reset(tokio::time::Instant::now() + limits.idle_timeout);
                socket = handoff.socket;
                Box::pin(session.resumed(&mut socket, handoff.id)).await
            }
            reason = stop.signalled() => Flow::Ban(reason),
            () = expiry::until(expiry_due) => Box::pin(session.on_expiry(&mut socket)).await,
            () = &mut idle => {
                // Silent for the whole timeout: its network is gone (or it
                // hangs). Close the socket, and keep the session for a
                // resume like any dropped one.
                tracing::info!(session = id.0, "closing idle connection");
                session.goodbye(&mut socket, None).await;
                Flow::Lost
            }
        };
        let flow = match flow {
            Flow::Lost => {
                let flow =
                    Box::pin(session.ride_out(&mut socket, &mut inbox, &mut stop, &mut handoff_rx))
                        .await;
                idle.as_mut()
                    .reset(tokio::time::Instant::now() + limits.idle_timeout);
                flow
            }
            Flow::Resume(request) => {
                let ResumeRequest {
                    id: request_id,
                    app_id,
                    room_id,
                    user_id,
                    token,
                } = *request;
                let claim = Claim {
                    app_id: &app_id,
                    room_id: &room_id,
                    user_id: &user_id,
                    token: &token,
                };
                let handoff = Handoff {
                    socket,
                    id: request_id,
                };
                match session.shared.resumes.claim(&claim, handoff) {
                    // The session we resumed carries on with our socket;
                    // this connection never joined: nothing to tear down.
                    Ok(()) => return,
                    Err((e, handoff)) => {
                        socket = handoff.socket;
                        tracing::debug!(session = id.0, "resume refused: {e}");
                        let e = RequestError::Resume(e);
                        Box::pin(session.reply_error(&mut socket, Some(request_id), &e)).await
                    }
                }
            }
            flow => flow,
        };
        if !matches!(flow, Flow::Continue) {
            break flow;
        }
    };
    // Leave first: the others must not wait for a client that is not reading.
    let (reason, banned) = match ending {
        Flow::Ban(reason) => (reason, Some(reason)),
        Flow::Close(reason) => (reason, None),
        Flow::Lost | Flow::Stuck | Flow::Expired | Flow::Continue | Flow::Resume(_) => {
            (LeaveReason::ReconnectTimeout, None)
        }
    };
    Box::pin(session.teardown(reason)).await;
    if !matches!(ending, Flow::Lost | Flow::Stuck | Flow::Expired) {
        session.goodbye(&mut socket, banned).await;
    }
}

impl Session {
    /// Writes one message. Gives up when the client has not taken it within
    /// `send_timeout`, or as soon as the session is told to end (the frame
    /// stays queued whole in the socket's buffer, ahead of the goodbye).
    async fn send(
        &self,
        socket: &mut WebSocket,
        message: &ServerMessage,
    ) -> Result<(), WriteError> {
        let frame = Message::Text(protocol::encode(message).into());
        let mut stop = self.stop.clone();
        tokio::select! {
            biased;
            sent = tokio::time::timeout(self.send_timeout, socket.send(frame)) => match sent {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => {
                    tracing::debug!(session = self.id.0, "socket write failed: {e}");
                    Err(WriteError::Lost)
                }
                Err(_) => {
                    tracing::info!(session = self.id.0, "client did not read for {:?}; closing", self.send_timeout);
                    Err(WriteError::Stuck)
                }
            },
            reason = stop.signalled() => Err(WriteError::Stopped(reason)),
        }
    }

    /// The last words of a session that has left its room: `client-banned`
    /// when the server ended it, then a close frame, both within one
    /// `send_timeout` (a client that does not read gets neither).
    async fn goodbye(&self, socket: &mut WebSocket, banned: Option<LeaveReason>) {
        let deadline = tokio::time::Instant::now() + self.send_timeout;
        if let Some(reason) = banned {
            let event = Event::ClientBanned { reason };
            let frame = Message::Text(protocol::encode(&ServerMessage::Event { event }).into());
            if !matches!(
                tokio::time::timeout_at(deadline, socket.send(frame)).await,
                Ok(Ok(()))
            ) {
                return; // gone, or not reading
            }
        }
        // The peer may already be gone.
        tokio::time::timeout_at(deadline, socket.send(Message::Close(None)))
            .await
            .ok();
    }

    async fn on_frame(
        &mut self,
        socket: &mut WebSocket,
        frame: Result<&str, ProtocolError>,
    ) -> Flow {
        if !self.limiter.allow(Instant::now()) {
            // Not run, but answered under its id when the frame has one.
            let id = frame.ok().and_then(protocol::peek_request_id);
            let limit = self.shared.config.limits.requests_per_second;
            return self
                .reply_error(socket, id, &RequestError::TooFrequent(limit))
                .await;
        }
        let message = match frame
            .map_err(|e| (None, e))
            .and_then(protocol::parse_client_message)
        {
            Ok(message) => message,
            Err((id, e)) => {
                return self
                    .reply_error(socket, id, &RequestError::Protocol(e))
                    .await;
            }
        };
        let ClientMessage { id, request } = message;
        if let Request::Resume {
            app_id,
            room_id,
            user_id,
            resume_token,
        } = request
        {
            return match self.check_resume(&app_id, &room_id, &user_id) {
                Ok(()) => Flow::Resume(Box::new(ResumeRequest {
                    id,
                    app_id,
                    room_id,
                    user_id,
                    token: resume_token,
                })),
                Err(e) => self.reply_error(socket, Some(id), &e).await,
            };
        }
        let leaving = matches!(request, Request::Leave);
        let dismissing = matches!(request, Request::DismissRoom);
        let kind = request.kind();
        match self.handle(request).await {
            Ok(reply) => {
                if let Err(e) = self.send(socket, &ServerMessage::Reply { id, reply }).await {
                    return e.into();
                }
                if leaving {
                    return Flow::Close(LeaveReason::UserExit);
                }
                if dismissing {
                    return Flow::Ban(LeaveReason::RoomDismissed);
                }
                Flow::Continue
            }
            Err(e) => {
                tracing::debug!(
                    session = self.id.0,
                    request = kind,
                    code = e.code().code(),
                    "refused: {e}"
                );
                self.reply_error(socket, Some(id), &e).await
            }
        }
    }

    async fn reply_error(
        &self,
        socket: &mut WebSocket,
        id: Option<RequestId>,
        e: &RequestError,
    ) -> Flow {
        let message = ServerMessage::Error(ErrorReply {
            id,
            code: e.code(),
            message: e.to_string(),
        });
        match self.send(socket, &message).await {
            Ok(()) => Flow::Continue,
            Err(e) => e.into(),
        }
    }

    async fn on_event(&mut self, socket: &mut WebSocket, event: SessionEvent) -> Flow {
        match event {
            SessionEvent::Send(message) => {
                self.follow_top_n(&message).await;
                self.follow_layers(&message);
                if let Err(e) = self.send(socket, &message).await {
                    return e.into();
                }
            }
            SessionEvent::StreamGone(stream_id) => {
                if let Some(sub) = self.subscriptions.remove(&stream_id) {
                    sub.link.close().await;
                }
            }
            SessionEvent::CrossRoomEnded { room_id, reason } => {
                if let Some(message) = self.cross_room_ended(room_id, reason).await
                    && let Err(e) = self.send(socket, &message).await
                {
                    return e.into();
                }
            }
            SessionEvent::Link(LinkEvent { link_id, state }) => match state {
                LinkState::Candidate(candidate) => {
                    let event = Event::Candidate { link_id, candidate };
                    if let Err(e) = self.send(socket, &ServerMessage::Event { event }).await {
                        return e.into();
                    }
                }
                LinkState::Connected => {
                    tracing::debug!(session = self.id.0, link = link_id.0, "link connected");
                    // A subscription's link is up: forwarding starts now.
                    let subscribed = self
                        .subscriptions
                        .iter()
                        .find(|(_, s)| s.link_id == link_id)
                        .map(|(stream_id, s)| subscribed(*stream_id, &s.link, s.resolution_id()));
                    if let Some(message) = subscribed
                        && let Err(e) = self.send(socket, &message).await
                    {
                        return e.into();
                    }
                }
                LinkState::Layer(slot) => {
                    if let Some(message) = self.auto_layer_moved(link_id, slot)
                        && let Err(e) = self.send(socket, &message).await
                    {
                        return e.into();
                    }
                }
                LinkState::Failed => {
                    if self.drop_top_n(link_id).await {
                        let message = ServerMessage::Error(ErrorReply {
                            id: None,
                            code: ErrorCode::SubscribedUserConnectError,
                            message: format!("top-N audio link {link_id} failed; dropped it"),
                        });
                        if let Err(e) = self.send(socket, &message).await {
                            return e.into();
                        }
                        return Flow::Continue;
                    }
                    // A link we closed ourselves may still report its end: only
                    // a link we still hold failed under the client.
                    let Some(dropped) = self.drop_link(link_id).await else {
                        return Flow::Continue;
                    };
                    tracing::info!(
                        session = self.id.0,
                        link = link_id.0,
                        "link failed; dropped it"
                    );
                    let message = ServerMessage::Error(ErrorReply {
                        id: None,
                        code: ErrorCode::SubscribedUserConnectError,
                        message: dropped.failure_message(link_id),
                    });
                    if let Err(e) = self.send(socket, &message).await {
                        return e.into();
                    }
                }
            },
        }
        Flow::Continue
    }

    /// Drops a failed link: a failed publish leg unpublishes its stream; a failed
    /// subscription leg ends that subscription. Returns what the link carried,
    /// or `None` when the link is not (or no longer) ours.
    async fn drop_link(&mut self, link_id: LinkId) -> Option<DroppedLink> {
        let published = self
            .publications
            .iter()
            .find(|(_, p)| p.link_id == link_id)
            .map(|(id, _)| *id);
        if let Some(stream_id) = published {
            if let Some(joined) = &self.joined {
                self.shared
                    .rooms
                    .remove_stream(&joined.room_id, self.id, stream_id)
                    .ok(); // already gone from the room: nothing to announce
            }
            if let Some(p) = self.publications.remove(&stream_id) {
                p.link.close().await;
            }
            self.end_relays_of(stream_id).await;
            return Some(DroppedLink::Publish(stream_id));
        }
        let subscribed = self
            .subscriptions
            .iter()
            .find(|(_, s)| s.link_id == link_id)
            .map(|(id, _)| *id)?;
        let s = self.subscriptions.remove(&subscribed)?;
        s.link.close().await;
        Some(DroppedLink::Subscription(subscribed))
    }

    async fn teardown(&mut self, reason: LeaveReason) {
        if let Some(token) = self.resume_token.take() {
            self.shared.resumes.unregister(&token);
        }
        self.end_all_relays(reason).await;
        if let Some(joined) = self.joined.take() {
            self.shared
                .rooms
                .leave(&joined.room_id, &joined.me.user_id, self.id, reason);
        }
        for (_, p) in std::mem::take(&mut self.publications) {
            p.link.close().await;
        }
        for (_, s) in std::mem::take(&mut self.subscriptions) {
            s.link.close().await;
        }
        if let Some(top_n) = self.top_n.take() {
            top_n.link.close().await;
        }
    }

    /// The checks of a `resume` this connection can make itself: it has not
    /// joined, and the ids have their syntax. (The token is checked by the
    /// registry when the socket is handed over.)
    fn check_resume(
        &self,
        app_id: &AppId,
        room_id: &RoomId,
        user_id: &UserId,
    ) -> Result<(), RequestError> {
        if let Some(joined) = &self.joined {
            return Err(RequestError::AlreadyJoined(joined.room_id.clone()));
        }
        for (name, id) in [
            ("appId", app_id.as_str()),
            ("roomId", room_id.as_str()),
            ("userId", user_id.as_str()),
        ] {
            if !auth::validate_id(id) {
                return Err(RequestError::InvalidParameter(format!(
                    "{name} must match [A-Za-z0-9_-]{{1,64}}"
                )));
            }
        }
        Ok(())
    }

    /// After the socket dropped: a joined session with a resume token parks
    /// until its client is back (then carries on with the new socket), or
    /// until the window runs out. A session that never joined just ends.
    async fn ride_out(
        &mut self,
        socket: &mut WebSocket,
        inbox: &mut mpsc::Receiver<SessionEvent>,
        stop: &mut Stop,
        handoff_rx: &mut mpsc::Receiver<Handoff>,
    ) -> Flow {
        loop {
            if self.resume_token.is_none() {
                return Flow::Lost;
            }
            match self.park(inbox, stop, handoff_rx).await {
                Parked::Back(handoff) => {
                    *socket = handoff.socket;
                    match self.resumed(socket, handoff.id).await {
                        Flow::Lost => continue, // dropped again at once
                        flow => return flow,
                    }
                }
                Parked::Ended(flow) => return flow,
            }
        }
    }

    /// Waits without a socket for the resume window. Links, publications and
    /// subscriptions stay; the room's messages are dropped (`resumed` carries
    /// the room as it is then), its stream removals and link failures are
    /// acted on as usual.
    async fn park(
        &mut self,
        inbox: &mut mpsc::Receiver<SessionEvent>,
        stop: &mut Stop,
        handoff_rx: &mut mpsc::Receiver<Handoff>,
    ) -> Parked {
        let window = self.shared.config.limits.resume_window;
        tracing::info!(
            session = self.id.0,
            "connection dropped; keeping the session for {window:?}"
        );
        let deadline = tokio::time::sleep(window);
        tokio::pin!(deadline);
        loop {
            let expiry_due = self.expiry_due();
            tokio::select! {
                () = expiry::until(expiry_due) => {
                    if let Some(flow) = Box::pin(self.expire_parked()).await {
                        return Parked::Ended(flow);
                    }
                }
                Some(handoff) = handoff_rx.recv() => return Parked::Back(Box::new(handoff)),
                Some(event) = inbox.recv() => Box::pin(self.absorb(event)).await,
                reason = stop.signalled() => return Parked::Ended(Flow::Ban(reason)),
                () = &mut deadline => {
                    if let Some(token) = &self.resume_token {
                        self.shared.resumes.unregister(token);
                    }
                    // A claim that came in before the token was removed.
                    return match handoff_rx.try_recv() {
                        Ok(handoff) => Parked::Back(Box::new(handoff)),
                        Err(_) => {
                            tracing::info!(session = self.id.0, "resume window over");
                            Parked::Ended(Flow::Expired)
                        }
                    };
                }
            }
        }
    }

    /// The signature clock while parked: a warning is kept for `resumed`, an
    /// expiry ends the session (reason 6) as it would a connected one.
    /// Relays' steps are kept for `resumed` too; a relay whose signature ran
    /// out ends now.
    async fn expire_parked(&mut self) -> Option<Flow> {
        let notice = self.shared.config.signature_expiry_notice;
        let joined = self.joined.as_mut()?;
        match joined.signature.fire(expiry::unix_time(), notice) {
            Some(expiry::ExpiryStep::Warn { ctime }) => self.missed_expiry_warning = Some(ctime),
            Some(expiry::ExpiryStep::Expire) => {
                return Some(Flow::Ban(LeaveReason::SignatureExpired));
            }
            None => {}
        }
        let missed = self.relays_expiry_events().await;
        self.missed_relay_events.extend(missed);
        None
    }

    /// An inbox event while parked.
    async fn absorb(&mut self, event: SessionEvent) {
        match event {
            // The client diffs the room on resume; the top-N link follows now.
            SessionEvent::Send(message) => {
                self.follow_top_n(&message).await;
                self.follow_layers(&message);
            }
            SessionEvent::StreamGone(stream_id) => {
                if let Some(sub) = self.subscriptions.remove(&stream_id) {
                    sub.link.close().await;
                }
            }
            // The relay ends now; the client hears of it after `resumed`.
            SessionEvent::CrossRoomEnded { room_id, reason } => {
                if let Some(ServerMessage::Event { event }) =
                    self.cross_room_ended(room_id, reason).await
                {
                    self.missed_relay_events.push(event);
                }
            }
            SessionEvent::Link(LinkEvent { link_id, state }) => {
                if let LinkState::Failed = state
                    && self.drop_link(link_id).await.is_some()
                {
                    tracing::info!(
                        session = self.id.0,
                        link = link_id.0,
                        "link failed while parked; dropped it"
                    );
                }
            }
        }
    }

    /// Answers a `resume` on the socket the session now has: the room now, and
    /// what of the caller's the server still holds.
    async fn resumed(&mut self, socket: &mut WebSocket, id: RequestId) -> Flow {
        let Some(joined) = &self.joined else {
            return Flow::Expired;
        };
        let snapshot = self
            .shared
            .rooms
            .snapshot(&joined.room_id, &joined.me.user_id, self.id);
        let Ok((me, room)) = snapshot else {
            // Replaced by a newer join of the same user: nothing to resume.
            let e = RequestError::Resume(ResumeError::Unknown);
            self.reply_error(socket, Some(id), &e).await;
            return Flow::Expired;
        };
        let room_id = joined.room_id.clone();
        if let Some(token) = &self.resume_token {
            // Again: the window's end may have unregistered it just after
            // this claim came in.
            self.shared.resumes.register(
                token,
                joined.app_id.clone(),
                room_id.clone(),
                me.user_id.clone(),
                self.handoff_tx.clone(),
            );
        }
        tracing::info!(session = self.id.0, "resumed");
        let reply = Reply::Resumed {
            room_id,
            me,
            users: room.users,
            streams: room.streams,
            publications: self.publications.keys().copied().collect(),
            subscriptions: self.subscriptions.keys().copied().collect(),
            program: room.program,
        };
        if let Err(e) = self.send(socket, &ServerMessage::Reply { id, reply }).await {
            return e.into();
        }
        if let Some(ctime) = self.missed_expiry_warning.take() {
            let event = Event::SignatureExpired {
                code: ErrorCode::SignatureExpired,
                message: format!("the signature expires at {ctime}; renew it before then"),
                ctime,
            };
            if let Err(e) = self.send(socket, &ServerMessage::Event { event }).await {
                return e.into();
            }
        }
        for event in std::mem::take(&mut self.missed_relay_events) {
            if let Err(e) = self.send(socket, &ServerMessage::Event { event }).await {
                return e.into();
            }
        }
        Flow::Continue
    }

    fn joined(&self) -> Result<&Joined, RequestError> {
        self.joined
            .as_ref()
            .ok_or_else(|| RequestError::InvalidOperation("join a room first".into()))
    }

    /// Runs one request: one function per request type. Each checks the
    /// session's state first (joined? allowed?), then the request's fields
    /// (`validate_*`, pure), and only then changes anything.
    async fn handle(&mut self, request: Request) -> Result<Reply, RequestError> {
        match request {
            Request::Join {
                protocol_version,
                app_id,
                room_id,
                user_id,
                user_name,
                role,
                ctime,
                signature,
            } => {
                self.join(JoinFields {
                    protocol_version,
                    app_id,
                    room_id,
                    user_id,
                    user_name,
                    role,
                    ctime,
                    signature,
                })
                .await
            }
            // Taken by `on_frame`: it moves the socket.
            Request::Resume { .. } => Err(RequestError::InvalidOperation(
                "resume must be the first request on a connection".into(),
            )),
            Request::Leave => Ok(Reply::Ok),
            Request::Ping => Ok(Reply::Pong),
            Request::Publish {
                audio,
                video,
                sdp,
                is_screen,
                resolutions,
            } => {
                self.publish(audio, video, sdp, is_screen, resolutions)
                    .await
            }
            Request::Unpublish { stream_id } => self.unpublish(stream_id).await,
            Request::UpdateStream {
                stream_id,
                audio_muted,
                video_muted,
            } => self.update_stream(stream_id, audio_muted, video_muted),
            Request::Subscribe {
                stream_id,
                audio,
                video,
                resolution_id,
            } => self.subscribe(stream_id, audio, video, resolution_id).await,
            Request::Unsubscribe {
                stream_id,
                audio,
                video,
            } => self.unsubscribe(stream_id, audio, video).await,
            Request::PauseSubscription { stream_id, paused } => {
                self.pause_subscription(stream_id, paused)
            }
            Request::Answer { link_id, sdp } => self.answer(link_id, sdp).await,
            Request::Candidate { link_id, candidate } => self.candidate(link_id, candidate).await,
            Request::RequestKeyframe { stream_id } => self.request_keyframe(stream_id),
            Request::SwitchRole {
                role,
                ctime,
                signature,
            } => self.switch_role(role, ctime, &signature).await,
            Request::ChangeUserName { user_name } => self.change_user_name(user_name),
            Request::RenewSignature {
                ctime,
                signature,
                room_id,
            } => self.renew_signature(ctime, &signature, room_id),
            Request::EnableTopNAudio { enable } => self.enable_top_n(enable).await,
            Request::RestartIce { link_id, sdp } => self.restart_ice(link_id, sdp).await,
            Request::StartRecording {
                stream_id,
                record_id,
            } => self.start_recording(stream_id, record_id),
            Request::StopRecording { record_id } => self.stop_recording(record_id).await,
            Request::AddResolution {
                stream_id,
                resolution,
            } => self.add_resolution(stream_id, resolution),
            Request::RemoveResolution {
                stream_id,
                resolution_id,
            } => self.remove_resolution(stream_id, resolution_id),
            Request::SetProgram { program } => self.set_program(program),
            Request::RemoveUser { user_id } => self.remove_user(user_id),
            Request::DismissRoom => self.dismiss_room(),
            Request::StartCrossRoomRelay {
                room_id,
                stream_id,
                ctime,
                signature,
            } => {
                self.start_cross_room_relay(room_id, stream_id, ctime, &signature)
                    .await
            }
            Request::StopCrossRoomRelay { room_id } => self.stop_cross_room_relay(room_id).await,
        }
    }

    async fn join(&mut self, join: JoinFields) -> Result<Reply, RequestError> {
        if let Some(joined) = &self.joined {
            return Err(RequestError::AlreadyJoined(joined.room_id.clone()));
        }
        join.validate()?;
        let JoinFields {
            app_id,
            room_id,
            user_id,
            user_name,
            role,
            ctime,
            signature,
            ..
        } = join;
        let grant = auth::verify_grant(
            &self.shared.config.apps,
            app_id.as_str(),
            room_id.as_str(),
            user_id.as_str(),
            ctime,
            &signature,
            unix_now(),
        )?;
        // A room not here may live on another node (`--redis`).
        // (`--relay-subscribers`: a player may stay, see `cluster::relay`.)
        if let Some(redirect) =
            super::cluster::relay::route_join(&self.shared, &room_id, &app_id, role).await?
        {
            tracing::info!(session = self.id.0, room = %room_id, "redirected");
            return Ok(redirect);
        }
        let me = UserInfo {
            user_id,
            user_name,
            role,
        };
        let limits = &self.shared.config.limits;
        let outcome = self.shared.rooms.join(
            &room_id,
            self.id,
            me.clone(),
            self.inbox_tx.clone(),
            limits.max_rooms,
            limits.max_users_per_room,
        )?;
        tracing::info!(session = self.id.0, room = %room_id, user = %me.user_id, "joined");
        let resume_token = if limits.resume_window.is_zero() {
            String::new()
        } else {
            let token = resume::new_token();
            self.shared.resumes.register(
                &token,
                app_id.clone(),
                room_id.clone(),
                me.user_id.clone(),
                self.handoff_tx.clone(),
            );
            self.resume_token = Some(token.clone());
            token
        };
        self.joined = Some(Joined {
            app_id,
            room_id: room_id.clone(),
            me: me.clone(),
            signature: SignatureClock::new(ctime),
            grant,
        });
        Ok(Reply::Joined {
            room_id,
            me,
            users: outcome.users,
            streams: outcome.streams,
            server: format!("huddle {}", env!("CARGO_PKG_VERSION")),
            ice_servers: self.shared.config.ice_servers.clone(),
            resume_token,
            program: outcome.program,
            director: grant.is_director(),
            nodes: self
                .shared
                .cluster
                .as_ref()
                .map(|c| c.node_urls())
                .unwrap_or_default(),
        })
    }

    /// Checks the fresh signature exactly as `join` does (same fields, same
    /// codes), then switches. Going to a role that may not publish closes the
    /// caller's publish links; the room has already told the others.
    async fn switch_role(
        &mut self,
        role: Role,
        ctime: u64,
        signature: &str,
    ) -> Result<Reply, RequestError> {
        let (joined, grant) = self.verify_fresh(ctime, signature)?;
        super::cluster::relay::check_switch(&self.shared, &joined.room_id, role)?;
        let removed =
            self.shared
                .rooms
                .switch_role(&joined.room_id, &joined.me.user_id, self.id, role)?;
        if let Some(joined) = &mut self.joined {
            joined.me.role = role;
            joined.signature.renew(ctime);
            joined.grant = grant;
        }
        tracing::info!(session = self.id.0, role = role.code(), "switched role");
        for stream_id in removed {
            if let Some(p) = self.publications.remove(&stream_id) {
                p.link.close().await;
            }
            self.end_relays_of(stream_id).await;
        }
        Ok(Reply::RoleSwitched { role })
    }

    fn change_user_name(&mut self, user_name: String) -> Result<Reply, RequestError> {
        let joined = self.joined()?;
        validate_user_name(&user_name)?;
        self.shared.rooms.change_user_name(
            &joined.room_id,
            &joined.me.user_id,
            self.id,
            user_name.clone(),
        )?;
        if let Some(joined) = &mut self.joined {
            joined.me.user_name = user_name;
        }
        Ok(Reply::Ok)
    }

    async fn publish(
        &mut self,
        audio: bool,
        video: Option<VideoInfo>,
        sdp: String,
        is_screen: bool,
        resolutions: Vec<protocol::VideoResolution>,
    ) -> Result<Reply, RequestError> {
        let joined = self.joined()?;
        if !joined.me.role.can_publish() {
            return Err(RequestError::RoleNoPermission(joined.me.role, "publish"));
        }
        layers::check_publish_layers(video, &resolutions)?;
        validate_publish(audio, video, &sdp, resolutions.len())?;
        let (sdp, _) = usable_candidates_only(&sdp);
        let max = self.shared.config.limits.max_streams_per_user;
        if self.publications.len() >= max {
            return Err(RequestError::TooManyStreams(max));
        }
        if is_screen {
            self.check_screen_limit(&joined.room_id)?;
        }
        let room_id = joined.room_id.clone();
        let user_id = joined.me.user_id.clone();
        let stream_id = self.shared.next_stream_id();
        let link_id = self.shared.next_link_id();
        let (link, media, answer) = self
            .shared
            .sfu
            .publish(link_id, sdp, self.inbox_tx.clone())
            .await?;
        media.set_layers(
            resolutions
                .iter()
                .map(|r| r.resolution_id.clone())
                .collect(),
        );
        let info = StreamInfo {
            stream_id,
            user_id,
            audio,
            video,
            audio_muted: false,
            video_muted: false,
            is_screen,
            resolutions,
        };
        let recorded = (info.clone(), Arc::clone(&media));
        let announced = Arc::clone(&media);
        let loss_announced = Arc::clone(&media);
        if let Err(e) = self.shared.rooms.add_stream(&room_id, self.id, info, media) {
            link.close().await;
            return Err(e.into());
        }
        self.announce_layers_wanted(stream_id, announced);
        // Its subscribers' audio loss, for the publisher's Opus FEC.
        tokio::spawn(crate::server::sfu::announce_downlink_loss(
            loss_announced,
            stream_id,
            self.inbox_tx.clone(),
        ));
        // A running whole-room recording takes the new stream too.
        self.shared
            .recordings
            .add_published(&room_id, recorded.0, recorded.1);
        self.publications
            .insert(stream_id, Publication { link_id, link });
        Ok(Reply::Published {
            stream_id,
            link_id,
            sdp: answer,
        })
    }

    async fn unpublish(&mut self, stream_id: StreamId) -> Result<Reply, RequestError> {
        let room_id = self.joined()?.room_id.clone();
        self.shared
            .rooms
            .remove_stream(&room_id, self.id, stream_id)?;
        if let Some(p) = self.publications.remove(&stream_id) {
            p.link.close().await;
        }
        self.end_relays_of(stream_id).await;
        Ok(Reply::Ok)
    }

    fn update_stream(
        &mut self,
        stream_id: StreamId,
        audio_muted: bool,
        video_muted: bool,
    ) -> Result<Reply, RequestError> {
        let room_id = self.joined()?.room_id.clone();
        self.shared
            .rooms
            .update_stream(&room_id, self.id, stream_id, audio_muted, video_muted)?;
        self.update_relays_of(stream_id, audio_muted, video_muted);
        Ok(Reply::Ok)
    }

    async fn subscribe(
        &mut self,
        stream_id: StreamId,
        audio: bool,
        video: bool,
        resolution_id: Option<String>,
    ) -> Result<Reply, RequestError> {
        let joined = self.joined()?;
        let room_id = joined.room_id.clone();
        let (info, media) = match self.shared.rooms.stream(&room_id, stream_id) {
            Ok(found) => found,
            // A host of a room this session relays into.
            Err(e) => self.cross_room_stream(stream_id).ok_or(e)?,
        };
        if info.user_id == joined.me.user_id {
            return Err(RequestError::InvalidOperation(
                "cannot subscribe to your own stream".into(),
            ));
        }
        // Checked before anything changes: a refused layer loses nothing.
        let choice = protocol::LayerChoice::from_wire(resolution_id.as_deref());
        let slots = media.layers();
        let slot = layers::resolve(&choice, &info.resolutions, &slots, false)?;
        if let Some(sub) = self.subscriptions.get_mut(&stream_id) {
            sub.link.set_forwarding(audio, video);
            if let Some(slot) = slot.filter(|s| sub.slot != Some(*s) || choice != sub.layer) {
                sub.link
                    .set_layer(slot, choice == protocol::LayerChoice::Auto);
            }
            (sub.layer, sub.slot) = (choice, slot);
            let sub = &self.subscriptions[&stream_id];
            self.push_subscribed(stream_id, sub);
            return Ok(Reply::Ok);
        }
        let link_id = self.shared.next_link_id();
        let (link, offer) = self
            .shared
            .sfu
            .subscribe(link_id, &media, &info, audio, video, self.inbox_tx.clone())
            .await?;
        if let Some(slot) = slot {
            link.set_layer(slot, choice == protocol::LayerChoice::Auto);
        }
        self.subscriptions.insert(
            stream_id,
            Subscription {
                link_id,
                link,
                layer: choice,
                slots,
                slot,
            },
        );
        Ok(Reply::SubscribeOffer {
            stream_id,
            link_id,
            sdp: offer,
        })
    }

    async fn unsubscribe(
        &mut self,
        stream_id: StreamId,
        audio: bool,
        video: bool,
    ) -> Result<Reply, RequestError> {
        self.joined()?;
        let sub = self.subscription(stream_id)?;
        // Paused or not: what it asked for.
        let (keep_audio, keep_video) = sub.link.wanted();
        let (keep_audio, keep_video) = (keep_audio && !audio, keep_video && !video);
        if !keep_audio && !keep_video {
            if let Some(sub) = self.subscriptions.remove(&stream_id) {
                sub.link.close().await;
            }
        } else {
            sub.link.set_forwarding(keep_audio, keep_video);
            self.push_subscribed(stream_id, sub);
        }
        Ok(Reply::Ok)
    }

    async fn answer(&mut self, link_id: LinkId, sdp: String) -> Result<Reply, RequestError> {
        self.joined()?;
        if let Some(top_n) = self.top_n_link(link_id) {
            let (sdp, _) = usable_candidates_only(&sdp);
            top_n.apply_answer(sdp).await?;
            return Ok(Reply::Ok);
        }
        let sub = self
            .subscriptions
            .values()
            .find(|s| s.link_id == link_id)
            .ok_or_else(|| {
                RequestError::InvalidParameter(format!("no pending offer on link {link_id}"))
            })?;
        // `stream-subscribed` follows when the link connects.
        let (sdp, _) = usable_candidates_only(&sdp);
        sub.link.apply_answer(sdp).await?;
        Ok(Reply::Ok)
    }

    async fn candidate(
        &mut self,
        link_id: LinkId,
        candidate: IceCandidate,
    ) -> Result<Reply, RequestError> {
        self.joined()?;
        // An unusable candidate never reaches the ICE agent, which would try
        // it on every check (and log each failed send).
        check_candidate(&candidate.candidate)?;
        if let Some(p) = self.publications.values().find(|p| p.link_id == link_id) {
            p.link.add_candidate(candidate).await?;
        } else if let Some(s) = self.subscriptions.values().find(|s| s.link_id == link_id) {
            s.link.add_candidate(candidate).await?;
        } else if let Some(top_n) = self.top_n_link(link_id) {
            top_n.add_candidate(candidate).await?;
        } else {
            return Err(RequestError::InvalidParameter(format!("no link {link_id}")));
        }
        Ok(Reply::Ok)
    }

    fn start_recording(
        &mut self,
        stream_id: Option<StreamId>,
        record_id: Option<i32>,
    ) -> Result<Reply, RequestError> {
        let joined = self.joined()?;
        if joined.me.role != protocol::Role::Joiner {
            return Err(RequestError::RoleNoPermission(joined.me.role, "record"));
        }
        let room_id = joined.room_id.clone();
        let streams = match stream_id {
            Some(id) => vec![self.shared.rooms.stream(&room_id, id)?],
            None => self.shared.rooms.streams(&room_id)?,
        };
        let (record_id, stream_ids) =
            self.shared
                .recordings
                .start(&room_id, streams, stream_id.is_none(), record_id)?;
        Ok(Reply::RecordingStarted {
            record_id,
            stream_ids,
        })
    }

    async fn stop_recording(&mut self, record_id: i32) -> Result<Reply, RequestError> {
        let joined = self.joined()?;
        if joined.me.role != protocol::Role::Joiner {
            return Err(RequestError::RoleNoPermission(joined.me.role, "record"));
        }
        let room_id = joined.room_id.clone();
        let files = self.shared.recordings.stop(&room_id, record_id).await?;
        Ok(Reply::RecordingStopped { record_id, files })
    }

    fn request_keyframe(&mut self, stream_id: StreamId) -> Result<Reply, RequestError> {
        self.joined()?;
        self.subscription(stream_id)?.link.request_keyframe();
        Ok(Reply::Ok)
    }

    fn subscription(&self, stream_id: StreamId) -> Result<&Subscription, RequestError> {
        self.subscriptions.get(&stream_id).ok_or_else(|| {
            RequestError::InvalidParameter(format!("not subscribed to stream {stream_id}"))
        })
    }

    /// Queues `stream-subscribed` with what the link forwards now.
    fn push_subscribed(&self, stream_id: StreamId, sub: &Subscription) {
        // Our own inbox: if it is full the session is already being closed.
        self.inbox_tx
            .try_send(SessionEvent::Send(Box::new(subscribed(
                stream_id,
                &sub.link,
                sub.resolution_id(),
            ))))
            .ok();
    }
}

/// `stream-subscribed` with what `link` forwards now.
fn subscribed(
    stream_id: StreamId,
    link: &EgressLink,
    resolution_id: Option<String>,
) -> ServerMessage {
    let (audio, video) = link.forwarding();
    ServerMessage::Event {
        event: Event::StreamSubscribed {
            stream_id,
            audio,
            video,
            resolution_id,
        },
    }
}

/// The fields of a `join`, checked by [`JoinFields::validate`].
struct JoinFields {
    protocol_version: u32,
    app_id: AppId,
    room_id: RoomId,
    user_id: UserId,
    user_name: String,
    role: Role,
    ctime: u64,
    signature: String,
}

impl JoinFields {
    /// The checks that need no state, in the documented order: version, ids,
    /// user name. (The signature and the room limits come after.)
    fn validate(&self) -> Result<(), RequestError> {
        if self.protocol_version != PROTOCOL_VERSION {
            return Err(RequestError::Version {
                got: self.protocol_version,
            });
        }
        for (name, id) in [
            ("appId", self.app_id.as_str()),
            ("roomId", self.room_id.as_str()),
            ("userId", self.user_id.as_str()),
        ] {
            if !auth::validate_id(id) {
                return Err(RequestError::InvalidParameter(format!(
                    "{name} must match [A-Za-z0-9_-]{{1,64}}"
                )));
            }
        }
        validate_user_name(&self.user_name)
    }
}

/// A `userName`, in `join` and `change-user-name` alike: at most 256 bytes
/// (90000005 otherwise).
fn validate_user_name(user_name: &str) -> Result<(), RequestError> {
    if auth::validate_user_name(user_name) {
        Ok(())
    } else {
        Err(RequestError::InvalidParameter(
            "userName must be at most 256 bytes".into(),
        ))
    }
}

/// The checks of a `publish` that need no state: it has media, the video size
/// and rate are in range, the declared media are the offer's `m=` sections
/// (90000005 otherwise), and the offer can carry them
/// ([`check_publish_offer`], 90100214 otherwise).
fn validate_publish(
    audio: bool,
    video: Option<VideoInfo>,
    sdp: &str,
    layers: usize,
) -> Result<(), RequestError> {
    if !audio && video.is_none() {
        return Err(RequestError::InvalidParameter(
            "a stream needs audio, video or both".into(),
        ));
    }
    if let Some(v) = video
        && (v.width == 0
            || v.height == 0
            || v.width > 7680
            || v.height > 4320
            || v.frame_rate == 0
            || v.frame_rate > 120)
    {
        return Err(RequestError::InvalidParameter(format!(
            "video {}x{}@{} is out of range (up to 7680x4320@120)",
            v.width, v.height, v.frame_rate
        )));
    }
    for (declared, media, m_line) in [
        (audio, "audio", "m=audio "),
        (video.is_some(), "video", "m=video "),
    ] {
        let offered = sdp.lines().any(|l| l.starts_with(m_line));
        if declared != offered {
            return Err(RequestError::InvalidParameter(format!(
                "the request {} {media} but the offer {}",
                if declared {
                    "declares"
                } else {
                    "does not declare"
                },
                if offered {
                    "carries it"
                } else {
                    "does not carry it"
                },
            )));
        }
    }
    check_layered_publish_offer(sdp, layers)?;
    Ok(())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limiter_allows_burst_then_refills() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(10, 3, t0);
        assert!(limiter.allow(t0));
        assert!(limiter.allow(t0));
        assert!(limiter.allow(t0));
        assert!(!limiter.allow(t0));
        assert!(limiter.allow(t0 + Duration::from_millis(110)));
        assert!(!limiter.allow(t0 + Duration::from_millis(110)));
    }
}
