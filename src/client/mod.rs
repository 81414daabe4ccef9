//! The client SDK: the seeds' Client / LocalStream / RemoteStream in Rust idiom.
//!
//! ```text
//!  Client (handle, Clone) ──RoomCommand──▶ session::run (actor task on tokio)
//!        ▲                                   │ owns: signalling socket, peer connections
//!        └──── RoomEvent (crossbeam) ◀───────┘
//!  LocalStream ─ media threads (capture → encode) ─▶ publish leg
//!  subscription leg ─▶ depacketize ─▶ decode thread ─▶ RemoteStream (latest frame, PCM)
//! ```
//!
//! The actor owns all state; the handle only sends commands and gets replies back
//! over a oneshot. Events reach the application over a bounded crossbeam channel so
//! a non-async UI can drain it each frame with `try_recv`. The actor converts wire
//! messages into [`RoomEvent`]s; no wire type is forwarded as is except the small
//! descriptive structs ([`StreamInfo`], [`UserInfo`]).
//!
//! ## Signature expiry and renewal
//!
//! The server warns [`RoomEvent::SignatureExpired`] some time (its
//! `signature_expiry_notice`, 60 s by default) before the signature the
//! session joined with runs out, and removes the session
//! ([`RoomEvent::ClientBanned`] with [`LeaveReason::SignatureExpired`], 6)
//! once it has. With a [`Credential::AppKey`] the SDK renews by itself (the
//! event says `renewing: true`; a failed renewal comes as [`RoomEvent::Error`]).
//! Its `valid_for` must outlast the server's notice, or each renewal is
//! warned about at once again; one that would not end after the current
//! signature is not sent (an error says so).
//! With a [`Credential::Signature`] the application fetches a new one and
//! calls [`Client::renew_signature`].
//!
//! ## Stream state detection and mute events
//!
//! [`Client::enable_stream_state_detection`] (off by default) watches every
//! subscribed video the server forwards and the publisher has not muted:
//! no decoded frame for the interval is [`RoomEvent::StreamInterrupted`], and
//! frames again [`RoomEvent::StreamRecovered`]. A mute change in
//! `stream-updated` also comes as [`RoomEvent::MuteAudio`],
//! [`RoomEvent::UnmuteAudio`], [`RoomEvent::MuteVideo`] or
//! [`RoomEvent::UnmuteVideo`] (after [`RoomEvent::StreamUpdated`]).
//! [`LocalStream::frame_pause`] stops a stream's pictures without muting it,
//! as a stalled camera would.

pub mod audio_fec;
pub mod congestion;
pub mod cross_room;
mod director;
pub mod frame_log;
pub mod jitter;
mod layers;
pub mod media_status;
mod media_tap;
pub mod network_quality;
pub mod path_ceiling;
pub mod playout;
mod publish;
pub mod rtc_stats;
mod screen;
mod screen_audio;
mod session;
mod signal;
pub mod signal_log;
pub mod stats;
mod stream;
mod stream_state;
mod subscribe;
mod tls;
mod top_n;
mod turn;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

pub use crate::VERSION;
pub use crate::link::rtcp_stats::RemoteReport;
/// Changes what the SDK logs from now on (seed `setLogLevel`); see
/// [`crate::logging::filter_for`] for what `spec` may be.
pub use crate::logging::set_level as set_log_level;
pub use crate::media::mixing::{AudioMixOption, AudioMixing, MixingEvent};
pub use crate::protocol::{
    ErrorCode, LeaveReason, Program, ProgramLayout, Role, StreamId, StreamInfo, UserId, UserInfo,
    UserVolume,
};
pub use congestion::SendRateStats;
pub use cross_room::CrossRoomInfo;
pub use frame_log::{DropReason, FrameLog, FrameLogs, FrameOutcome, FrameRecord, PacketRecord};
pub use media_status::{MediaStatusAction, MediaStatusNotifyInfo, MediaStatusReason};
pub use media_tap::{MediaTap, TAP_CAPACITY, TappedMedia};
pub use network_quality::{NETWORK_QUALITY_INTERVAL, NetworkQuality};
pub use rtc_stats::{
    AllLocalVideoStats, AllRemoteVideoStats, LocalAudioStats, LocalVideoStats, MediaType,
    RTC_STATS_INTERVAL_RANGE, RemoteAudioStats, RemoteVideoStats, RtcStatsInfo, StatsReport,
    TransportStats,
};
#[cfg(feature = "devices")]
pub use screen::is_screen_share_supported;
pub use session::reconnect::Backoff;
pub use signal_log::{SIGNAL_LOG_CAPACITY, SignalLog, SignalRecord};
pub use stats::{LatencySummary, StreamStats};
pub use stream::{FramePause, LocalStream, RemoteStream, VideoSlot};
pub use stream_state::{DEFAULT_DETECTION_INTERVAL, DETECTION_INTERVAL_RANGE};
pub use tls::ProxyConfig;
pub use top_n::TopNAudio;
pub use turn::TurnConfig;

pub use crate::link::ice::{CandidateEnd, CandidateKind, SelectedPair};
pub use crate::protocol::IceServer;

use crate::protocol::{AppId, RoomId};

/// Capacity of the event channel (actor → application). When it is full the
/// actor drops the newest event and logs it: an application that stops draining
/// must not stall media or signalling.
pub const EVENT_CHANNEL_CAPACITY: usize = 1024;

/// How long the client tries to get back into its room after its connection
/// dropped, by default ([`JoinConfig::reconnect_window`]): the server's
/// default resume window.
pub const DEFAULT_RECONNECT_WINDOW: Duration = Duration::from_secs(30);

/// Capacity of the command channel (handle → actor). Senders wait when full.
pub const COMMAND_CHANNEL_CAPACITY: usize = 64;

/// The client layer's error. [`ClientError::code`] gives the seed's number.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The server refused a request; `code` says why. Retrying the same request
    /// fails the same way, except for 90100108 (rate limit).
    #[error("server error {}: {message}", code.code())]
    Server {
        /// The seed error code.
        code: ErrorCode,
        /// The server's detail.
        message: String,
    },
    /// The WebSocket could not be opened. Retryable.
    #[error("websocket connect error: {0}")]
    Connect(String),
    /// The WebSocket did not open in time. Retryable.
    #[error("websocket connect timed out: {0}")]
    ConnectTimeout(String),
    /// The connection closed while the request was in flight. Rejoin to retry.
    #[error("disconnected: {0}")]
    Disconnected(String),
    /// No reply within [`signal::REPLY_TIMEOUT`]. Retryable.
    #[error("no reply from the server in time")]
    Timeout,
    /// The call needs a joined room (or must not have one).
    #[error("invalid operation: {0}")]
    InvalidOperation(String),
    /// A parameter is invalid (an id's syntax, an unknown stream).
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// WebRTC failed locally (SDP, ICE, DTLS).
    #[error("webrtc: {0}")]
    Rtc(String),
    /// Relay-only, and the link got no relay from any TURN server (wrong
    /// credentials, server unreachable). Retrying helps only once the TURN
    /// configuration ([`Client::set_turn_server`]) or the server is fixed.
    #[error("no TURN relay: {0}")]
    NoRelay(String),
    /// Encoding or decoding failed.
    #[error("media: {0}")]
    Media(String),
    /// The room-session actor has stopped.
    #[error("the client has shut down")]
    Closed,
    /// A capture device is missing (90100019, 90100005) or cannot be opened
    /// (90100020). Retrying helps once the device is there.
    #[error("device: {message}")]
    Device {
        /// The seed error code.
        code: ErrorCode,
        /// What went wrong.
        message: String,
    },
}

impl ClientError {
    /// The seed error code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            ClientError::Server { code, .. } => *code,
            ClientError::Connect(_) => ErrorCode::WebsocketConnectError,
            ClientError::ConnectTimeout(_) => ErrorCode::WebsocketConnectTimeout,
            ClientError::Disconnected(_) => ErrorCode::WebsocketNotConnected,
            ClientError::Timeout => ErrorCode::WaitRspTimeout,
            ClientError::InvalidOperation(_) => ErrorCode::InvalidOperation,
            ClientError::InvalidParameter(_) => ErrorCode::InvalidParameter,
            ClientError::Rtc(_) => ErrorCode::RtcSdkError,
            // The code of every media link that cannot connect.
            ClientError::NoRelay(_) => ErrorCode::SubscribedUserConnectError,
            ClientError::Media(_) => ErrorCode::InvalidEncoding,
            ClientError::Closed => ErrorCode::InvalidOperation,
            ClientError::Device { code, .. } => *code,
        }
    }

    /// A device that could not be opened, with the seed code it carries.
    pub fn from_device(e: &crate::media::MediaError) -> Self {
        ClientError::Device {
            code: ErrorCode::from_code(e.seed_code())
                .unwrap_or(ErrorCode::CaptureDeviceNotReadable),
            message: e.to_string(),
        }
    }
}

/// Result alias of the client layer.
pub type ClientResult<T> = Result<T, ClientError>;

/// How the client proves it may join (seed 001 chapter 4).
#[derive(Debug, Clone)]
pub enum Credential {
    /// A signature made elsewhere (e.g. by the app's own server).
    Signature {
        /// Expiry, Unix seconds.
        ctime: u64,
        /// Lower-case hex HMAC-SHA256.
        signature: String,
    },
    /// The app key itself: the client signs locally (dev and trusted setups only).
    AppKey {
        /// The key.
        key: String,
        /// How long the signature it makes stays valid.
        valid_for: Duration,
    },
    /// The app key, making director signatures (issue 14 §2, `director.rs`):
    /// the client may set the program, remove users and dismiss the room.
    DirectorKey {
        /// The key.
        key: String,
        /// How long the signature it makes stays valid.
        valid_for: Duration,
    },
}

/// Who joins where.
#[derive(Debug, Clone)]
pub struct JoinConfig {
    /// Signalling URL, `ws://host:port`.
    pub server_url: String,
    /// The application.
    pub app_id: AppId,
    /// The room.
    pub room_id: RoomId,
    /// The user.
    pub user_id: UserId,
    /// Display name.
    pub user_name: String,
    /// Joiner or player.
    pub role: Role,
    /// Signature or key.
    pub credential: Credential,
    /// Decode what subscriptions receive (the normal case). `false` is a
    /// receive-only client for load tests: packets, bytes, sequence gaps,
    /// loss and jitter are counted, nothing is depacketized or decoded, so
    /// one process can hold hundreds of subscriptions.
    pub decode: bool,
    /// When the connection drops, how long the client keeps trying to get back
    /// ([`ConnectionState::Reconnecting`]) before it gives up
    /// ([`ConnectionState::Disconnected`], reason 7). Zero: it gives up at once.
    /// [`DEFAULT_RECONNECT_WINDOW`] unless set.
    pub reconnect_window: Duration,
}

/// What the room looked like on joining.
#[derive(Debug, Clone)]
pub struct JoinInfo {
    /// Everyone else, sorted by user id.
    pub users: Vec<UserInfo>,
    /// Streams already published, sorted by id.
    pub streams: Vec<StreamInfo>,
    /// What is on air in the room (issue 14 §2).
    pub program: Program,
    /// The server granted this session director powers (a director
    /// signature): [`Client::set_program`] and the others are allowed.
    pub director: bool,
}

/// The client's connection state (seed 001 `connection-state-changed`,
/// `getConnectionState`: `DISCONNECTED`, `CONNECTING`, `CONNECTED`,
/// `RECONNECTING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Not in a room: before joining, after leaving, after being removed, or
    /// after reconnecting failed.
    Disconnected,
    /// Opening the socket and joining.
    Connecting,
    /// In the room.
    Connected,
    /// The connection dropped; the client is getting back into the room
    /// (resuming its session, or joining again and restoring its
    /// publications and subscriptions). Requests fail with 90100008 meanwhile.
    Reconnecting,
}

impl ConnectionState {
    /// The seed's name, e.g. `"RECONNECTING"`.
    pub const fn name(self) -> &'static str {
        match self {
            ConnectionState::Disconnected => "DISCONNECTED",
            ConnectionState::Connecting => "CONNECTING",
            ConnectionState::Connected => "CONNECTED",
            ConnectionState::Reconnecting => "RECONNECTING",
        }
    }

    const fn to_u8(self) -> u8 {
        match self {
            ConnectionState::Disconnected => 0,
            ConnectionState::Connecting => 1,
            ConnectionState::Connected => 2,
            ConnectionState::Reconnecting => 3,
        }
    }

    const fn from_u8(n: u8) -> Self {
        match n {
            1 => ConnectionState::Connecting,
            2 => ConnectionState::Connected,
            3 => ConnectionState::Reconnecting,
            _ => ConnectionState::Disconnected,
        }
    }
}

/// The actor's current [`ConnectionState`], readable by every handle without
/// a round trip to the actor (which may be busy reconnecting).
#[derive(Clone, Default)]
pub(crate) struct SharedState(Arc<AtomicU8>);

impl SharedState {
    pub(crate) fn get(&self) -> ConnectionState {
        ConnectionState::from_u8(self.0.load(Ordering::Acquire))
    }

    pub(crate) fn set(&self, state: ConnectionState) {
        self.0.store(state.to_u8(), Ordering::Release);
    }
}

/// What subscribing asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscribeOptions {
    /// Receive audio.
    pub audio: bool,
    /// Receive video.
    pub video: bool,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        Self {
            audio: true,
            video: true,
        }
    }
}

/// Delivered to the application (actor → UI), seed 001 Table 3-5 names.
#[derive(Debug, Clone)]
pub enum RoomEvent {
    /// The connection state changed.
    ConnectionStateChanged {
        /// Before.
        previous: ConnectionState,
        /// Now.
        current: ConnectionState,
        /// Why, when `current` is [`ConnectionState::Disconnected`] (seed
        /// Table 3-6): 0 left, 7 reconnection timed out, or the reason the
        /// server removed this client with. `None` otherwise.
        reason: Option<LeaveReason>,
    },
    /// After the client joined again (the server had lost its session, e.g.
    /// it restarted), one of its own publications is published again, under a
    /// new id; the old id is gone. Use `stream_id` from now on.
    LocalStreamRepublished {
        /// The id it had.
        previous: StreamId,
        /// The id it has now.
        stream_id: StreamId,
    },
    /// A remote user joined.
    PeerJoin(UserInfo),
    /// A remote user left.
    PeerLeave {
        /// Who.
        user_id: UserId,
        /// Why.
        reason: LeaveReason,
    },
    /// Our screen share stopped by itself (seed `screen-sharing-stopped`):
    /// its capture ended (the shared window was closed, the display went
    /// away) and the SDK has unpublished it. Not sent for an explicit
    /// [`Client::unpublish`].
    ScreenSharingStopped {
        /// The share that was unpublished.
        stream_id: StreamId,
    },
    /// A remote stream can be subscribed to.
    StreamAdded(StreamInfo),
    /// A remote stream is gone; its [`RemoteStream`] stops receiving.
    StreamRemoved {
        /// The stream.
        stream_id: StreamId,
        /// Its publisher.
        user_id: UserId,
    },
    /// A remote stream's mute state changed.
    StreamUpdated(StreamInfo),
    /// A subscription now forwards these media.
    StreamSubscribed {
        /// The stream.
        stream_id: StreamId,
        /// Audio forwarded.
        audio: bool,
        /// Video forwarded.
        video: bool,
    },
    /// A remote user switched its role (seed `switchRole` on its side). When it
    /// became a player, its streams' [`RoomEvent::StreamRemoved`] came first.
    PeerRoleChanged {
        /// Who.
        user_id: UserId,
        /// Its role now.
        role: Role,
    },
    /// A remote user changed its display name (seed `remote-user-name-changed`).
    RemoteUserNameChanged {
        /// Who.
        user_id: UserId,
        /// Its name now.
        user_name: String,
    },
    /// This client was removed from the room (e.g. the same user joined elsewhere).
    ClientBanned {
        /// Why.
        reason: LeaveReason,
    },
    /// The signature this session holds expires soon (seed
    /// `signature-expired`); once `ctime` has passed without a renewal the
    /// server removes the session ([`RoomEvent::ClientBanned`], reason 6).
    SignatureExpired {
        /// 90100030 (`SIGNATURE_EXPIRED`).
        code: ErrorCode,
        /// The server's detail.
        message: String,
        /// When the signature runs out, Unix seconds.
        ctime: u64,
        /// The SDK is renewing by itself (the credential is an app key).
        /// Otherwise call [`Client::renew_signature`] before `ctime`.
        renewing: bool,
    },
    /// A subscribed, unmuted remote video delivered no decodable frame for
    /// the detection interval (seed `stream-interrupted`; see
    /// [`Client::enable_stream_state_detection`]).
    StreamInterrupted {
        /// The stream.
        stream_id: StreamId,
        /// Its publisher.
        user_id: UserId,
        /// Whether it is a screen share (`StreamInfo::is_screen`).
        is_screen: bool,
    },
    /// Frames of an interrupted stream flow again (seed `stream-recovered`).
    StreamRecovered {
        /// The stream.
        stream_id: StreamId,
        /// Its publisher.
        user_id: UserId,
        /// Whether it is a screen share.
        is_screen: bool,
    },
    /// A remote stream's audio was muted (seed `mute-audio`).
    MuteAudio(MediaStatusNotifyInfo),
    /// A remote stream's audio was unmuted (seed `unmute-audio`).
    UnmuteAudio(MediaStatusNotifyInfo),
    /// A remote stream's video was muted (seed `mute-video`).
    MuteVideo(MediaStatusNotifyInfo),
    /// A remote stream's video was unmuted (seed `unmute-video`).
    UnmuteVideo(MediaStatusNotifyInfo),
    /// Who is heard in top-N audio and how loud, loudest first, about every
    /// 500 ms (seed `volume-indicator`; see
    /// [`Client::enable_top_three_audio_mode`]).
    VolumeIndicator(Vec<UserVolume>),
    /// Audio and video statistics of every stream, sent and received (seed
    /// `rtc-stats`), at the interval set by [`Client::enable_rtc_stats`].
    RtcStats(Vec<RtcStatsInfo>),
    /// This client's uplink and downlink quality (seed `network-quality`,
    /// `NetworkQualityInfo`), every [`NETWORK_QUALITY_INTERVAL`] while in a
    /// room; see [`network_quality`] for how it is graded.
    NetworkQuality {
        /// What this client sends (`uplinkNetworkQuality`).
        uplink: NetworkQuality,
        /// What it receives (`downlinkNetworkQuality`).
        downlink: NetworkQuality,
    },
    /// The room's program changed (issue 14 §2): a director's
    /// [`Client::set_program`], or an on-air stream went away (`by` is
    /// `None`). Also sent after a rejoin or resume with the program then.
    ProgramChanged {
        /// What is on air now.
        program: Program,
        /// The director who set it.
        by: Option<UserId>,
    },
    /// Something failed outside a request.
    Error {
        /// The seed code.
        code: ErrorCode,
        /// Detail.
        message: String,
    },
    /// Something happened in another room this client relays its stream
    /// into ([`Client::start_cross_room_relay`]): `event` is what a member
    /// of that room sees (`PeerJoin`, `PeerLeave`, `StreamAdded`,
    /// `StreamRemoved`, `StreamUpdated`, `PeerRoleChanged`,
    /// `RemoteUserNameChanged`).
    CrossRoom {
        /// The other room.
        room_id: RoomId,
        /// Its event.
        event: Box<RoomEvent>,
    },
    /// A relay into another room ended without this client stopping it: its
    /// stream was unpublished or its link failed (reason 0), or the same
    /// user id joined that room (reason 5). Subscriptions to that room's
    /// streams have ended.
    CrossRoomRelayStopped {
        /// The other room.
        room_id: RoomId,
        /// Why.
        reason: LeaveReason,
    },
}

/// Commands the handle sends to the actor (UI → client). Each carries the
/// oneshot its result comes back on.
pub(crate) enum RoomCommand {
    Join(JoinConfig, oneshot::Sender<ClientResult<JoinInfo>>),
    Leave(oneshot::Sender<ClientResult<()>>),
    Publish(Box<LocalStream>, oneshot::Sender<ClientResult<StreamId>>),
    Unpublish(StreamId, oneshot::Sender<ClientResult<()>>),
    BindScreenAudio(
        Box<screen_audio::ScreenAudioBinding>,
        oneshot::Sender<ClientResult<()>>,
    ),
    UnbindScreenAudio(StreamId, oneshot::Sender<ClientResult<()>>),
    SetMuted {
        stream_id: StreamId,
        audio_muted: bool,
        video_muted: bool,
        reply: oneshot::Sender<ClientResult<()>>,
    },
    Subscribe(
        StreamId,
        SubscribeOptions,
        oneshot::Sender<ClientResult<RemoteStream>>,
    ),
    Unsubscribe(
        StreamId,
        SubscribeOptions,
        oneshot::Sender<ClientResult<()>>,
    ),
    /// Pause (true) or resume a subscription (`session/standby.rs`).
    PauseSubscription(StreamId, bool, oneshot::Sender<ClientResult<()>>),
    SwitchRole(Role, Credential, oneshot::Sender<ClientResult<Role>>),
    ChangeUserName(String, oneshot::Sender<ClientResult<()>>),
    Me(oneshot::Sender<ClientResult<UserInfo>>),
    RawFrame(String, oneshot::Sender<ClientResult<()>>),
    PublishStats(StreamId, oneshot::Sender<ClientResult<Vec<RemoteReport>>>),
    SetTurnServer(TurnConfig, oneshot::Sender<ClientResult<()>>),
    SetProxyServer(ProxyConfig, oneshot::Sender<ClientResult<()>>),
    SelectedPair(
        StreamId,
        oneshot::Sender<ClientResult<Option<SelectedPair>>>,
    ),
    RenewSignature(u64, String, oneshot::Sender<ClientResult<()>>),
    StreamStateDetection(Option<Duration>, oneshot::Sender<ClientResult<()>>),
    SendRate(StreamId, oneshot::Sender<ClientResult<SendRateStats>>),
    SetNetworkBandwidth(Option<u32>, oneshot::Sender<ClientResult<()>>),
    TopN(bool, oneshot::Sender<ClientResult<Option<TopNAudio>>>),
    Stats(oneshot::Sender<ClientResult<StatsReport>>),
    RtcStats(Option<Duration>, oneshot::Sender<ClientResult<()>>),
    Direct(director::DirectorRequest, oneshot::Sender<ClientResult<()>>),
    StartCrossRoomRelay {
        room_id: RoomId,
        stream_id: StreamId,
        credential: Credential,
        reply: oneshot::Sender<ClientResult<CrossRoomInfo>>,
    },
    StopCrossRoomRelay(RoomId, oneshot::Sender<ClientResult<()>>),
    FailPublishLink(StreamId, oneshot::Sender<ClientResult<bool>>),
    RenewCrossRoomSignature {
        room_id: RoomId,
        ctime: u64,
        signature: String,
        reply: oneshot::Sender<ClientResult<()>>,
    },
    Layer(LayerCommand),
}

/// Simulcast layer commands (`session/layers.rs`).
pub(crate) enum LayerCommand {
    Add(StreamId, String, oneshot::Sender<ClientResult<()>>),
    Remove(StreamId, String, oneshot::Sender<ClientResult<()>>),
    Choose(
        StreamId,
        crate::protocol::LayerChoice,
        oneshot::Sender<ClientResult<()>>,
    ),
}

/// A handle on one room session. Cheap to clone; the session ends when the last
/// handle is dropped or [`Client::leave`] is called.
#[derive(Clone)]
pub struct Client {
    commands: mpsc::Sender<RoomCommand>,
    events: crossbeam_channel::Receiver<RoomEvent>,
    state: SharedState,
    signal_log: SignalLog,
    frame_logs: FrameLogs,
}

impl Client {
    /// Starts a room-session actor on the current tokio runtime. Nothing is
    /// connected until [`Client::join`].
    pub fn new() -> Self {
        let (commands, command_rx) = mpsc::channel(COMMAND_CHANNEL_CAPACITY);
        let (event_tx, events) = crossbeam_channel::bounded(EVENT_CHANNEL_CAPACITY);
        let state = SharedState::default();
        let signal_log = SignalLog::default();
        let frame_logs = FrameLogs::default();
        tokio::spawn(session::run(
            command_rx,
            event_tx,
            state.clone(),
            signal_log.clone(),
            frame_logs.clone(),
        ));
        Self {
            commands,
            events,
            state,
            signal_log,
            frame_logs,
        }
    }

    /// Every signalling frame in and out, once enabled with
    /// [`SignalLog::set_enabled`] (the app's stream debugger); bounded.
    pub fn signal_log(&self) -> &SignalLog {
        &self.signal_log
    }

    /// Every received video frame with its RTP packets, one log per
    /// subscribed stream, once enabled with [`FrameLogs::set_enabled`] (the
    /// stream debugger's timeline); bounded.
    pub fn frame_logs(&self) -> &FrameLogs {
        &self.frame_logs
    }

    /// The frames of `stream_id` received so far (oldest first, bounded),
    /// empty when it was never subscribed or the logs are off.
    pub fn frame_log(&self, stream_id: StreamId) -> Vec<FrameRecord> {
        self.frame_logs
            .get(stream_id)
            .map_or_else(Vec::new, |log| log.snapshot())
    }

    /// The connection state now (seed `getConnectionState`); every change is
    /// also a [`RoomEvent::ConnectionStateChanged`].
    pub fn connection_state(&self) -> ConnectionState {
        self.state.get()
    }

    /// Events from the room. Drain it with `try_recv` (UI) or `recv` (threads).
    pub fn events(&self) -> &crossbeam_channel::Receiver<RoomEvent> {
        &self.events
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<ClientResult<T>>) -> RoomCommand,
    ) -> ClientResult<T> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| ClientError::Closed)?;
        rx.await.map_err(|_| ClientError::Closed)?
    }

    /// Connects and joins a room (seed `Client.join`).
    pub async fn join(&self, config: JoinConfig) -> ClientResult<JoinInfo> {
        self.call(|tx| RoomCommand::Join(config, tx)).await
    }

    /// Relays a published stream into another room (seed 001 chapter 1
    /// "Cross-room" co-hosting): this user enters `room_id` as a player
    /// carrying that stream, without a second upload. `credential` signs
    /// for `room_id` (as a join of this app and user there would). At most
    /// three other rooms ([`crate::protocol::MAX_CROSS_ROOMS`] in all).
    /// The other room's events then arrive as [`RoomEvent::CrossRoom`] and
    /// its streams can be subscribed to. Refused, changing nothing, with
    /// [`ClientError::Server`]: 90100022 as a player, 90100213 for a stream
    /// not published here, 90100031/90100030 for a bad signature, 90100204
    /// for the own room or one already relayed into (or where this user
    /// is), 90100246 for a fifth room.
    pub async fn start_cross_room_relay(
        &self,
        room_id: RoomId,
        stream_id: StreamId,
        credential: Credential,
    ) -> ClientResult<CrossRoomInfo> {
        self.call(|reply| RoomCommand::StartCrossRoomRelay {
            room_id,
            stream_id,
            credential,
            reply,
        })
        .await
    }

    /// Ends the relay into `room_id`: this user leaves that room (its users
    /// see the stream removed and the user leave, reason 0); the own room
    /// and the other relays carry on.
    pub async fn stop_cross_room_relay(&self, room_id: RoomId) -> ClientResult<()> {
        self.call(|tx| RoomCommand::StopCrossRoomRelay(room_id, tx))
            .await
    }

    /// Handles the publish link of `stream_id` as failed, as when its ICE
    /// gives up: the stream is published again on a new link (and its
    /// cross-room relays follow). For tests of that path; `false` when
    /// nothing was done (not connected, or reconnecting).
    #[doc(hidden)]
    pub async fn fail_publish_link(&self, stream_id: StreamId) -> ClientResult<bool> {
        self.call(|tx| RoomCommand::FailPublishLink(stream_id, tx))
            .await
    }

    /// Renews the signature of a room relayed into (seed `renewSignature`,
    /// per room): the server warns `ctime` ahead as
    /// [`RoomEvent::CrossRoom`] carrying [`RoomEvent::SignatureExpired`],
    /// and ends the relay (reason 6, [`RoomEvent::CrossRoomRelayStopped`])
    /// when it runs out; the own room and the other relays carry on. With
    /// an app-key credential the SDK renews by itself. Refused, changing
    /// nothing, with 90100031/90100030 for a bad signature and 90100001
    /// for a room without a relay.
    pub async fn renew_cross_room_signature(
        &self,
        room_id: RoomId,
        ctime: u64,
        signature: String,
    ) -> ClientResult<()> {
        self.call(|reply| RoomCommand::RenewCrossRoomSignature {
            room_id,
            ctime,
            signature,
            reply,
        })
        .await
    }

    /// Leaves the room, closing every stream (seed `Client.leave`).
    pub async fn leave(&self) -> ClientResult<()> {
        self.call(RoomCommand::Leave).await
    }

    /// Publishes a local stream (seed `Client.publish`); its media threads start.
    pub async fn publish(&self, stream: LocalStream) -> ClientResult<StreamId> {
        self.call(|tx| RoomCommand::Publish(Box::new(stream), tx))
            .await
    }

    /// Stops publishing (seed `Client.unpublish`).
    pub async fn unpublish(&self, stream_id: StreamId) -> ClientResult<()> {
        self.call(|tx| RoomCommand::Unpublish(stream_id, tx)).await
    }

    /// Mutes or unmutes a published stream's audio/video (seed `muteAudio` etc.).
    pub async fn set_muted(
        &self,
        stream_id: StreamId,
        audio_muted: bool,
        video_muted: bool,
    ) -> ClientResult<()> {
        self.call(|reply| RoomCommand::SetMuted {
            stream_id,
            audio_muted,
            video_muted,
            reply,
        })
        .await
    }

    /// Subscribes to a remote stream, or changes what is received of it (seed
    /// `Client.subscribe`). Returns the stream's receiving end.
    pub async fn subscribe(
        &self,
        stream_id: StreamId,
        options: SubscribeOptions,
    ) -> ClientResult<RemoteStream> {
        self.call(|tx| RoomCommand::Subscribe(stream_id, options, tx))
            .await
    }

    /// Sends a layer of a published stream again after
    /// [`Client::remove_resolution`] (seed `addResolution`); the stream must
    /// have been published with it ([`LocalStream::with_lower_resolutions`]).
    /// Subscribers get `stream-updated`.
    pub async fn add_resolution(
        &self,
        stream_id: StreamId,
        resolution_id: impl Into<String>,
    ) -> ClientResult<()> {
        let id = resolution_id.into();
        self.call(|tx| RoomCommand::Layer(LayerCommand::Add(stream_id, id, tx)))
            .await
    }

    /// Stops sending one layer of a published stream (seed
    /// `removeResolution`); its subscribers move to the largest layer left.
    /// The last layer cannot be removed (90100001).
    pub async fn remove_resolution(
        &self,
        stream_id: StreamId,
        resolution_id: impl Into<String>,
    ) -> ClientResult<()> {
        let id = resolution_id.into();
        self.call(|tx| RoomCommand::Layer(LayerCommand::Remove(stream_id, id, tx)))
            .await
    }

    /// Picks the layer a subscription to a layered stream receives: a
    /// `resolutionId`, the largest ([`crate::protocol::LayerChoice::Top`], the
    /// default) or the server's choice (`Auto`). The switch happens at the
    /// layer's next keyframe, with no gap in the stream.
    pub async fn set_resolution(
        &self,
        stream_id: StreamId,
        choice: crate::protocol::LayerChoice,
    ) -> ClientResult<()> {
        self.call(|tx| RoomCommand::Layer(LayerCommand::Choose(stream_id, choice, tx)))
            .await
    }

    /// Stops receiving the flagged media of a stream (seed `Client.unsubscribe`);
    /// with both set, the subscription ends.
    pub async fn unsubscribe(
        &self,
        stream_id: StreamId,
        stop: SubscribeOptions,
    ) -> ClientResult<()> {
        self.call(|tx| RoomCommand::Unsubscribe(stream_id, stop, tx))
            .await
    }

    /// Keeps a subscription's link up but has the server forward nothing on
    /// it (a kiosk's standby for off-air sources): the stream's video and
    /// audio stop, its [`RemoteStream`] stays. Resume with
    /// [`Client::resume_subscription`]. Not subscribed: [`ClientError::Server`]
    /// with 90000005.
    pub async fn pause_subscription(&self, stream_id: StreamId) -> ClientResult<()> {
        self.call(|tx| RoomCommand::PauseSubscription(stream_id, true, tx))
            .await
    }

    /// Forwards a paused subscription again, over the link it kept: the
    /// server asks the publisher for a keyframe, and the stream's video shows
    /// again only from a keyframe sent after the resume (never a picture
    /// decoded against one from before the pause).
    pub async fn resume_subscription(&self, stream_id: StreamId) -> ClientResult<()> {
        self.call(|tx| RoomCommand::PauseSubscription(stream_id, false, tx))
            .await
    }

    /// Switches this user's role in the room (seed `switchRole`), proving it
    /// with a fresh signature or the app key, as for [`Client::join`]. Going to
    /// [`Role::Player`] ends every local publication (the server has
    /// unpublished them); switching to the current role changes nothing.
    /// Returns the role now held. A refused signature is
    /// [`ClientError::Server`] with the join's code (90100030/90100031), and
    /// nothing changes.
    pub async fn switch_role(&self, role: Role, credential: Credential) -> ClientResult<Role> {
        self.call(|tx| RoomCommand::SwitchRole(role, credential, tx))
            .await
    }

    /// Changes this user's display name (seed `changeUserName`); the others
    /// get [`RoomEvent::RemoteUserNameChanged`]. Over 256 bytes is
    /// [`ClientError::Server`] with 90000005, and nothing changes.
    pub async fn change_user_name(&self, user_name: impl Into<String>) -> ClientResult<()> {
        let user_name = user_name.into();
        self.call(|tx| RoomCommand::ChangeUserName(user_name, tx))
            .await
    }

    /// This user as the room sees it: id, name and role, kept up to date by
    /// [`Client::switch_role`] and [`Client::change_user_name`].
    /// [`ClientError::InvalidOperation`] when not in a room.
    pub async fn me(&self) -> ClientResult<UserInfo> {
        self.call(RoomCommand::Me).await
    }

    /// What the server reports (RTCP receiver reports) about a published
    /// stream's tracks: RTT, loss and jitter, one entry per track that has been
    /// reported on (tell video from audio by `clock_rate`).
    pub async fn publish_stats(&self, stream_id: StreamId) -> ClientResult<Vec<RemoteReport>> {
        self.call(|tx| RoomCommand::PublishStats(stream_id, tx))
            .await
    }

    /// Sets the STUN/TURN servers and the relay policy of this client's media
    /// links (seed `setTurnServer`). Call it before [`Client::join`]; it
    /// applies to every later join. Without servers of its own the client
    /// uses those the room server hands out. A malformed server is
    /// [`ClientError::InvalidParameter`] (90000005); while joined,
    /// [`ClientError::InvalidOperation`].
    pub async fn set_turn_server(&self, config: TurnConfig) -> ClientResult<()> {
        self.call(|tx| RoomCommand::SetTurnServer(config, tx)).await
    }

    /// Sends signalling through a reverse proxy and/or trusts more CAs for
    /// `wss://` (seed `setProxyServer`, `tls` module). Call it before
    /// [`Client::join`]; it applies to every later join. A bad URL scheme or
    /// PEM is [`ClientError::InvalidParameter`] (90000005); while joined,
    /// [`ClientError::InvalidOperation`]. A certificate that does not verify
    /// fails the join with [`ClientError::Connect`] (90100016).
    pub async fn set_proxy_server(&self, config: ProxyConfig) -> ClientResult<()> {
        self.call(|tx| RoomCommand::SetProxyServer(config, tx))
            .await
    }

    /// The candidate pair ICE selected for a published or subscribed stream's
    /// link (`None` while it has none): shows whether media goes through a
    /// TURN relay. [`ClientError::InvalidParameter`] for a stream that is
    /// neither published nor subscribed here.
    pub async fn selected_pair(&self, stream_id: StreamId) -> ClientResult<Option<SelectedPair>> {
        self.call(|tx| RoomCommand::SelectedPair(stream_id, tx))
            .await
    }

    /// Replaces the session's signature before it expires (seed
    /// `renewSignature`), usually on [`RoomEvent::SignatureExpired`]. `ctime`
    /// and `signature` are made as for a join of the same app, room and user.
    /// A refused signature is [`ClientError::Server`] with the join's code
    /// (90100031 wrong, 90100030 already expired), and the old one still
    /// holds. Later rejoins use the new signature.
    pub async fn renew_signature(
        &self,
        ctime: u64,
        signature: impl Into<String>,
    ) -> ClientResult<()> {
        let signature = signature.into();
        self.call(|tx| RoomCommand::RenewSignature(ctime, signature, tx))
            .await
    }

    /// Turns stream state detection on or off (seed
    /// `enableStreamStateDetection`; off by default). On, every subscribed
    /// remote video that the server forwards and its publisher has not muted,
    /// and that decodes no frame for `interval`, fires
    /// [`RoomEvent::StreamInterrupted`], and [`RoomEvent::StreamRecovered`]
    /// when frames come again. `interval` must be within
    /// [`DETECTION_INTERVAL_RANGE`] (1–60 s; the seed recommends 3 s), or
    /// [`ClientError::InvalidParameter`]. May be called before or after
    /// joining; it holds until changed.
    pub async fn enable_stream_state_detection(
        &self,
        enable: bool,
        interval: Duration,
    ) -> ClientResult<()> {
        if enable && !DETECTION_INTERVAL_RANGE.contains(&interval) {
            return Err(ClientError::InvalidParameter(format!(
                "stream state detection interval {interval:?} is outside 1..=60 s"
            )));
        }
        let interval = enable.then_some(interval);
        self.call(|tx| RoomCommand::StreamStateDetection(interval, tx))
            .await
    }

    /// Send-side congestion control of a published stream: the uplink
    /// estimate (GCC over TWCC feedback), the cap, the encoders' targets and
    /// the ladder rung (size, frame rate) they run at.
    pub async fn send_rate(&self, stream_id: StreamId) -> ClientResult<SendRateStats> {
        self.call(|tx| RoomCommand::SendRate(stream_id, tx)).await
    }

    /// Caps what each published stream sends (audio + video), in kbit/s, below
    /// whatever the uplink estimate allows (seed `setNetworkBandwidth`,
    /// `maxBandwidth`); `None` lifts the cap. Applies to current and later
    /// publications and overrides [`LocalStream::with_max_bandwidth_kbps`].
    /// The seed's range is 3072..=51200; huddle accepts from
    /// [`congestion::MIN_NETWORK_BANDWIDTH_KBPS`] so a narrow path can be
    /// emulated. Outside the range: [`ClientError::InvalidParameter`]
    /// (90000005), and nothing changes.
    pub async fn set_network_bandwidth(&self, max_kbps: Option<u32>) -> ClientResult<()> {
        let range = congestion::MIN_NETWORK_BANDWIDTH_KBPS..=congestion::MAX_NETWORK_BANDWIDTH_KBPS;
        if let Some(kbps) = max_kbps
            && !range.contains(&kbps)
        {
            return Err(ClientError::InvalidParameter(format!(
                "maxBandwidth {kbps} kbit/s not in {}..={}",
                range.start(),
                range.end()
            )));
        }
        self.call(|tx| RoomCommand::SetNetworkBandwidth(max_kbps.map(|k| k * 1000), tx))
            .await
    }

    /// Hears the room's three loudest talkers on one link (seed
    /// `enableTopThreeAudioMode`), instead of subscribing to each stream's
    /// audio; `false` stops it. Call after joining. Returns the slots to play
    /// (`Some` when enabled); [`RoomEvent::VolumeIndicator`] follows every
    /// ~500 ms. Volume and mute (seed `setVolume4TopThree`,
    /// `muteAudio4TopThree`) are on the returned [`TopNAudio`]. Enabling it
    /// twice is refused (90100001).
    pub async fn enable_top_three_audio_mode(
        &self,
        enable: bool,
    ) -> ClientResult<Option<TopNAudio>> {
        self.call(|tx| RoomCommand::TopN(enable, tx)).await
    }

    /// Every statistic at once: what the five `get_*_stats` calls return,
    /// gathered in one pass over the links (see [`rtc_stats`] for sources
    /// and units).
    pub async fn stats_report(&self) -> ClientResult<StatsReport> {
        self.call(RoomCommand::Stats).await
    }

    /// Network transmission statistics over all media links (seed
    /// `getTransportStats`): bytes, datagrams, send and receive bit rates
    /// (kbit/s), RTT (ms), the uplink estimate and the encoders' target.
    pub async fn get_transport_stats(&self) -> ClientResult<TransportStats> {
        Ok(self.stats_report().await?.transport)
    }

    /// Statistics of the audio this client sends, by its user id (seed
    /// `getLocalAudioStats`); empty until something is published.
    pub async fn get_local_audio_stats(
        &self,
    ) -> ClientResult<std::collections::BTreeMap<UserId, LocalAudioStats>> {
        Ok(self.stats_report().await?.local_audio)
    }

    /// Statistics of the video this client sends, by its user id (seed
    /// `getLocalVideoStats`): one `mainStream` entry per published stream.
    pub async fn get_local_video_stats(
        &self,
    ) -> ClientResult<std::collections::BTreeMap<UserId, AllLocalVideoStats>> {
        Ok(self.stats_report().await?.local_video)
    }

    /// Statistics of received audio, by publisher (seed
    /// `getRemoteAudioStats`); a publisher's several streams add up.
    pub async fn get_remote_audio_stats(
        &self,
    ) -> ClientResult<std::collections::BTreeMap<UserId, RemoteAudioStats>> {
        Ok(self.stats_report().await?.remote_audio)
    }

    /// Statistics of received video, by publisher (seed
    /// `getRemoteVideoStats`): one `mainStream` entry per subscribed stream.
    pub async fn get_remote_video_stats(
        &self,
    ) -> ClientResult<std::collections::BTreeMap<UserId, AllRemoteVideoStats>> {
        Ok(self.stats_report().await?.remote_video)
    }

    /// Turns the [`RoomEvent::RtcStats`] event on or off (seed
    /// `enableRtcStats`; off by default). On, it comes every `interval`
    /// while in a room, the first one interval after this call.
    /// `interval` must be within [`RTC_STATS_INTERVAL_RANGE`] (200 ms –
    /// 60 s), or [`ClientError::InvalidParameter`] (90000005) and nothing
    /// changes. May be called before or after joining; it holds until
    /// changed.
    pub async fn enable_rtc_stats(&self, enable: bool, interval: Duration) -> ClientResult<()> {
        let interval = if enable {
            Some(rtc_stats::check_interval(interval).map_err(ClientError::InvalidParameter)?)
        } else {
            None
        };
        self.call(|tx| RoomCommand::RtcStats(interval, tx)).await
    }

    /// Sends a raw text frame on the signalling socket. For tests of the server's
    /// handling of bad input; the server's error arrives as [`RoomEvent::Error`].
    #[doc(hidden)]
    pub async fn send_raw_frame(&self, text: String) -> ClientResult<()> {
        self.call(|tx| RoomCommand::RawFrame(text, tx)).await
    }
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}
