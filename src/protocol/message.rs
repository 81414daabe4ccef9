//! The signalling messages, one enum per direction.
//!
//! * [`ClientMessage`]: client → server. Every request carries a [`RequestId`]; the
//!   server answers each one exactly once with [`ServerMessage::Reply`] or
//!   [`ServerMessage::Error`].
//! * [`ServerMessage`]: server → client. Replies, errors and pushed [`Event`]s.
//!
//! Field names are camelCase on the wire (the seeds' JavaScript spelling); message
//! kinds are kebab-case, the seeds' event names. `docs/protocol.md` has examples.

use serde::{Deserialize, Serialize};

use super::error_code::{ErrorCode, LeaveReason};
use super::ids::{AppId, LinkId, RequestId, RoomId, StreamId, UserId};
use super::program::Program;

/// A user's role in a room (seed 001 `join`, `role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Role {
    /// Publishes and subscribes (wire value 0).
    #[default]
    Joiner,
    /// Only subscribes; publishing is refused with 90100022 (wire value 2).
    Player,
}

impl Role {
    /// The seed's numeric value.
    pub const fn code(self) -> u8 {
        match self {
            Role::Joiner => 0,
            Role::Player => 2,
        }
    }

    /// Parses the seed's numeric value.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Role::Joiner),
            2 => Some(Role::Player),
            _ => None,
        }
    }

    /// Whether this role may publish.
    pub const fn can_publish(self) -> bool {
        matches!(self, Role::Joiner)
    }
}

impl Serialize for Role {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.code())
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = u8::deserialize(d)?;
        Role::from_code(code).ok_or_else(|| {
            serde::de::Error::custom(format!("unknown role {code} (0 joiner, 2 player)"))
        })
    }
}

/// A user as others in the room see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    /// The user's id.
    pub user_id: UserId,
    /// Display name, ≤ 256 bytes; may be empty.
    #[serde(default)]
    pub user_name: String,
    /// The user's role.
    pub role: Role,
}

/// One talker's loudness in `volume-indicator` (seed `UserVolumeInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserVolume {
    /// Who.
    pub user_id: UserId,
    /// 0 (silent, −90 dBov or less) to 100 (0 dBov), linear in dB.
    pub volume: u8,
}

/// The video a stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoInfo {
    /// Encoded width in pixels.
    pub width: u32,
    /// Encoded height in pixels.
    pub height: u32,
    /// Nominal frame rate.
    pub frame_rate: u32,
}

/// A published stream as others in the room see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamInfo {
    /// Server-assigned id.
    pub stream_id: StreamId,
    /// The publisher.
    pub user_id: UserId,
    /// Whether the stream has an audio track.
    pub audio: bool,
    /// The video track, if any.
    pub video: Option<VideoInfo>,
    /// The publisher muted its audio (the track stays, packets stop).
    #[serde(default)]
    pub audio_muted: bool,
    /// The publisher muted its video.
    #[serde(default)]
    pub video_muted: bool,
    /// A presentation (screen sharing) stream, not a camera's (seed
    /// `UserList.isScreen`; `getType` "auxiliary"). Absent: `false`.
    #[serde(default)]
    pub is_screen: bool,
    /// The video's simulcast layers, largest first (`protocol::layers`);
    /// empty for a stream of one encoding.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolutions: Vec<super::VideoResolution>,
}

/// A trickled ICE candidate (RFC 8839 `candidate` attribute value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidate {
    /// `candidate:...` line, without the `a=` prefix.
    pub candidate: String,
    /// Media stream identification tag, if known.
    #[serde(default)]
    pub sdp_mid: Option<String>,
    /// Index of the m-line, if known (`sdpMLineIndex`, the browsers' spelling).
    #[serde(default, rename = "sdpMLineIndex")]
    pub sdp_mline_index: Option<u16>,
}

/// A client → server message: a request with its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientMessage {
    /// Echoed in the reply.
    pub id: RequestId,
    /// What is asked.
    #[serde(flatten)]
    pub request: Request,
}

/// What a client can ask. Each is answered by one [`Reply`] or one error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum Request {
    /// Enter a room. Must be the first request on a connection; answered by
    /// [`Reply::Joined`].
    Join {
        /// Must equal [`super::PROTOCOL_VERSION`] (else 90100240).
        protocol_version: u32,
        /// The application whose key signed `signature`.
        app_id: AppId,
        /// The room, created on first join.
        room_id: RoomId,
        /// The user, unique in the room: a second join kicks the first.
        user_id: UserId,
        /// Display name, ≤ 256 bytes.
        #[serde(default)]
        user_name: String,
        /// Joiner (0) or player (2).
        #[serde(default)]
        role: Role,
        /// Signature expiry, Unix seconds.
        ctime: u64,
        /// Lower-case hex HMAC-SHA256 (seed 001 chapter 4).
        signature: String,
    },
    /// Take a dropped session back on a new connection, instead of a join:
    /// must be the first request on the connection. `resumeToken` is the one
    /// the session's `joined` reply carried, and it is valid only for the
    /// app, room and user it was issued to, while the server still keeps the
    /// session (its resume window after the old connection dropped).
    /// Answered by [`Reply::Resumed`]; refused with 90100013 when the server
    /// does not know the token (expired, or the server restarted: join
    /// again), 90100031 when it belongs to another app, room or user.
    Resume {
        /// The app of the session.
        app_id: AppId,
        /// The room of the session.
        room_id: RoomId,
        /// The user of the session.
        user_id: UserId,
        /// 32 lower-case hex digits (128 random bits) from `joined`.
        resume_token: String,
    },
    /// Leave the room; the server closes the connection after replying.
    Leave,
    /// Publish a stream: `sdp` is the client's offer with send-only tracks.
    /// Answered by [`Reply::Published`] with the server's answer.
    Publish {
        /// Whether the offer carries an audio track.
        audio: bool,
        /// The video track, if any.
        video: Option<VideoInfo>,
        /// SDP offer.
        sdp: String,
        /// A screen or window share (seed `createStream({screen: true})`):
        /// an auxiliary stream of the user, beside its camera's. At most
        /// one per user (else 90100250). Absent: `false`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        is_screen: bool,
        /// Simulcast layers, largest first, one video section each
        /// (`protocol::layers`); absent or empty: one encoding.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        resolutions: Vec<super::VideoResolution>,
    },
    /// Stop publishing; everyone else gets `stream-removed`.
    Unpublish {
        /// The stream to remove; must be the caller's.
        stream_id: StreamId,
    },
    /// Change what a published stream carries (mute/unmute); others get
    /// `stream-updated`.
    UpdateStream {
        /// The caller's stream.
        stream_id: StreamId,
        /// Audio muted.
        audio_muted: bool,
        /// Video muted.
        video_muted: bool,
    },
    /// Subscribe to a stream, or change which of its media are forwarded. The
    /// first subscribe of a stream is answered by [`Reply::SubscribeOffer`] (the
    /// server's SDP offer, to be answered with [`Request::Answer`]); later ones by
    /// [`Reply::Ok`]. `stream-subscribed` follows once the subscription's link is
    /// connected, and after every later change.
    Subscribe {
        /// The stream.
        stream_id: StreamId,
        /// Forward audio.
        audio: bool,
        /// Forward video.
        video: bool,
        /// Which layer of a layered stream: a `resolutionId`, `"auto"`
        /// (the server picks), or absent (the largest). Ignored for a stream
        /// without layers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resolution_id: Option<String>,
    },
    /// Stop forwarding media of a stream. With both flags set the subscription
    /// and its peer connection are closed.
    Unsubscribe {
        /// The stream.
        stream_id: StreamId,
        /// Stop audio.
        audio: bool,
        /// Stop video.
        video: bool,
    },
    /// Keeps a subscription's link up but forwards nothing on it (`paused`
    /// true), or forwards again what `subscribe` asked for (`paused` false;
    /// the server asks the publisher for a keyframe). A kiosk's standby
    /// (protocol.md §3c). Answered by [`Reply::Ok`].
    PauseSubscription {
        /// A stream the caller is subscribed to.
        stream_id: StreamId,
        /// Pause (true) or resume (false).
        paused: bool,
    },
    /// The client's SDP answer to a server offer.
    Answer {
        /// The link the offer was for.
        link_id: LinkId,
        /// SDP answer.
        sdp: String,
    },
    /// A trickled ICE candidate for one of the caller's links.
    Candidate {
        /// The link.
        link_id: LinkId,
        /// The candidate.
        candidate: IceCandidate,
    },
    /// Ask the publisher of a subscribed stream for a keyframe.
    RequestKeyframe {
        /// The stream.
        stream_id: StreamId,
    },
    /// Switch the caller's role while in the room (seed `switchRole`), with a
    /// fresh signature checked exactly like a join's. Answered by
    /// [`Reply::RoleSwitched`]. Going to player unpublishes every stream of the
    /// caller (the others get `stream-removed`, then `peer-role-changed`);
    /// switching to the role the caller already has changes nothing and
    /// announces nothing.
    SwitchRole {
        /// The new role: joiner (0) or player (2).
        role: Role,
        /// Signature expiry, Unix seconds.
        ctime: u64,
        /// Lower-case hex HMAC-SHA256 over the join's fields (seed 001 chapter 4).
        signature: String,
    },
    /// Change the caller's display name (seed `changeUserName`); answered by
    /// [`Reply::Ok`]. The others get `remote-user-name-changed` unless the name
    /// is the one the caller already has.
    ChangeUserName {
        /// The new name, ≤ 256 bytes; may be empty.
        user_name: String,
    },
    /// Keep-alive; answered with [`Reply::Pong`].
    Ping,
    /// Replace the session's signature before it expires (seed `renewSignature`),
    /// usually after [`Event::SignatureExpired`]. Checked exactly like a join's
    /// (same fields signed, same codes); answered by [`Reply::Ok`]. A refused
    /// renewal changes nothing: the old `ctime` still ends the session.
    RenewSignature {
        /// The new signature's expiry, Unix seconds.
        ctime: u64,
        /// Lower-case hex HMAC-SHA256 over the join's fields (seed 001 chapter 4).
        signature: String,
        /// A room the caller relays into ([`Request::StartCrossRoomRelay`]):
        /// the signature is that room's, and renews that relay's. Absent:
        /// the caller's own room.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room_id: Option<RoomId>,
    },
    /// Hear the room's three loudest talkers on one link instead of
    /// subscribing to each stream (seed `enableTopThreeAudioMode`). `true` is
    /// answered by [`Reply::TopNOffer`] (answer it with [`Request::Answer`]);
    /// `volume-indicator` events follow. `false` closes that link
    /// ([`Reply::Ok`], also when it was off).
    EnableTopNAudio {
        /// On or off.
        enable: bool,
    },
    /// Restart ICE on one of the caller's links (its ICE disconnected or
    /// failed, e.g. the client's address changed), keeping the link, its
    /// stream and its DTLS/SRTP. On a publish link `sdp` is the client's
    /// offer with new ICE credentials and the reply carries the server's
    /// answer; on a subscription link `sdp` is absent and the reply carries
    /// the server's new offer, to be answered with [`Request::Answer`].
    /// Answered by [`Reply::IceRestarted`].
    RestartIce {
        /// The link.
        link_id: LinkId,
        /// The client's restart offer (publish links only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp: Option<String>,
    },
    /// Start recording one stream of the caller's room, or every stream
    /// published in it now (no `streamId`), into MP4 files on the server
    /// (docs/protocol.md "Recording"). Answered by [`Reply::RecordingStarted`].
    /// Needs a server with `record_dir` set and the joiner role.
    StartRecording {
        /// The stream; absent: the whole room.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stream_id: Option<StreamId>,
        /// The id to give the recording (TRTC `recordId`, int32); absent:
        /// the server picks one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        record_id: Option<i32>,
    },
    /// Stop a recording of the caller's room and close its files. Answered
    /// by [`Reply::RecordingStopped`].
    StopRecording {
        /// What [`Reply::RecordingStarted`] returned.
        record_id: i32,
    },
    /// Send one of the caller's stream's layers again after a
    /// [`Request::RemoveResolution`] (seed `addResolution`): it must be one
    /// the stream was published with. Answered by [`Reply::Ok`]; the others
    /// get `stream-updated`.
    AddResolution {
        /// The caller's stream.
        stream_id: StreamId,
        /// The layer.
        resolution: super::VideoResolution,
    },
    /// Stop one layer of the caller's stream (seed `removeResolution`);
    /// subscribers on it move to another. A stream keeps at least one.
    /// Answered by [`Reply::Ok`]; the others get `stream-updated`.
    RemoveResolution {
        /// The caller's stream.
        stream_id: StreamId,
        /// The layer.
        resolution_id: String,
    },
    /// Put streams on air (issue 14 §2, docs/protocol.md "Broadcast
    /// console"): the room's program becomes `program` and every member gets
    /// [`Event::ProgramChanged`]. Directors only (a director signature,
    /// else 90100022); a stream count that does not fit the layout or a stream
    /// named twice → 90000005, a stream not published in the room → 90100213.
    /// Answered by [`Reply::Ok`].
    SetProgram {
        /// What goes on air.
        program: Program,
    },
    /// Remove a user from the room (seed leave reason 9): it gets
    /// `client-banned` (9), the others `peer-leave` (9). Directors only
    /// (90100022); a user not in the room → 90100222, the caller itself →
    /// 90100001. Answered by [`Reply::Ok`].
    RemoveUser {
        /// Who.
        user_id: UserId,
    },
    /// End the room for everyone (seed leave reason 10): every member, the
    /// caller included, gets `client-banned` (10) after this request's
    /// [`Reply::Ok`]. Directors only (90100022).
    DismissRoom,
    /// Cross-room co-hosting (seed 001 chapter 1 "Cross-room"): relay one of
    /// the caller's published streams into another room, where the caller
    /// becomes a player (2) member carrying that stream (a user is a joiner
    /// in one room only). `signature` is made for `roomId` exactly as a join
    /// of the caller's app and user id would be. At most
    /// [`super::MAX_CROSS_ROOMS`] rooms in all (the caller's own included).
    /// Answered by [`Reply::CrossRoomRelayStarted`]; the other room's events
    /// then reach the caller as [`Event::CrossRoom`]. See docs/protocol.md
    /// "Cross-room co-hosting".
    StartCrossRoomRelay {
        /// The other room.
        room_id: RoomId,
        /// The caller's stream to relay.
        stream_id: StreamId,
        /// Signature expiry, Unix seconds.
        ctime: u64,
        /// Lower-case hex HMAC-SHA256 over app, `roomId`, user and `ctime`.
        signature: String,
    },
    /// End the relay into `roomId`: the caller leaves that room (its users
    /// see `stream-removed`, then `peer-leave` 0). Answered by [`Reply::Ok`].
    StopCrossRoomRelay {
        /// The other room.
        room_id: RoomId,
    },
}

/// One file a stopped recording wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedFile {
    /// The stream recorded.
    pub stream_id: StreamId,
    /// The file on the server.
    pub path: String,
    /// Video frames in it.
    pub video_frames: u64,
    /// Audio packets in it (received ones, without filled silence).
    pub audio_packets: u64,
}

impl Request {
    /// The message kind as it appears on the wire (for logs and errors).
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Join { .. } => "join",
            Request::Resume { .. } => "resume",
            Request::Leave => "leave",
            Request::Publish { .. } => "publish",
            Request::Unpublish { .. } => "unpublish",
            Request::UpdateStream { .. } => "update-stream",
            Request::Subscribe { .. } => "subscribe",
            Request::Unsubscribe { .. } => "unsubscribe",
            Request::PauseSubscription { .. } => "pause-subscription",
            Request::Answer { .. } => "answer",
            Request::Candidate { .. } => "candidate",
            Request::RequestKeyframe { .. } => "request-keyframe",
            Request::SwitchRole { .. } => "switch-role",
            Request::ChangeUserName { .. } => "change-user-name",
            Request::Ping => "ping",
            Request::RenewSignature { .. } => "renew-signature",
            Request::EnableTopNAudio { .. } => "enable-top-n-audio",
            Request::RestartIce { .. } => "restart-ice",
            Request::StartRecording { .. } => "start-recording",
            Request::StopRecording { .. } => "stop-recording",
            Request::AddResolution { .. } => "add-resolution",
            Request::RemoveResolution { .. } => "remove-resolution",
            Request::SetProgram { .. } => "set-program",
            Request::RemoveUser { .. } => "remove-user",
            Request::DismissRoom => "dismiss-room",
            Request::StartCrossRoomRelay { .. } => "start-cross-room-relay",
            Request::StopCrossRoomRelay { .. } => "stop-cross-room-relay",
        }
    }
}

/// A successful answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "result",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum Reply {
    /// Done, nothing to return.
    Ok,
    /// Keep-alive answer.
    Pong,
    /// The caller is in the room.
    Joined {
        /// The room.
        room_id: RoomId,
        /// The caller as others see it.
        me: UserInfo,
        /// Everyone else already in the room, sorted by user id.
        users: Vec<UserInfo>,
        /// Streams already published in the room, sorted by stream id.
        streams: Vec<StreamInfo>,
        /// Server name and version, for logs.
        server: String,
        /// STUN/TURN servers this server hands out (`huddle.toml` `[[ice_servers]]`);
        /// a client with none of its own uses them. Absent when none are configured.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ice_servers: Vec<super::IceServer>,
        /// Presented in [`Request::Resume`] to take this session back on a
        /// new connection after this one drops. Empty from a server that
        /// keeps no dropped sessions.
        #[serde(default)]
        resume_token: String,
        /// What is on air in the room now; absent: nothing.
        #[serde(default, skip_serializing_if = "Program::is_off")]
        program: Program,
        /// The join's signature was a director's: this session may
        /// `set-program`, `remove-user` and `dismiss-room`. Absent: no.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        director: bool,
        /// The signalling URLs of the live nodes of the server's cluster
        /// (this one included), sorted: where a client whose node went away
        /// joins again. Absent from a single server.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        nodes: Vec<String>,
    },
    /// The room of a [`Request::Join`] lives on another node of the
    /// server's cluster: join there (a new connection to `url`) instead.
    /// Nothing changed here; this connection may be closed.
    Redirect {
        /// The room asked for.
        room_id: RoomId,
        /// The node that holds it.
        node_id: String,
        /// That node's signalling URL (`ws://…` or `wss://…`).
        url: String,
    },
    /// The session is back on this connection after a [`Request::Resume`]:
    /// the room as it is now (the client diffs it against what it knew) and
    /// which of the caller's publications and subscriptions the server still
    /// holds, with their links and ids unchanged.
    Resumed {
        /// The room.
        room_id: RoomId,
        /// The caller as others see it.
        me: UserInfo,
        /// Everyone else in the room now, sorted by user id.
        users: Vec<UserInfo>,
        /// Streams published in the room now, sorted by stream id.
        streams: Vec<StreamInfo>,
        /// The caller's streams still published, sorted.
        publications: Vec<StreamId>,
        /// The streams the caller is still subscribed to, sorted.
        subscriptions: Vec<StreamId>,
        /// What is on air in the room now; absent: nothing.
        #[serde(default, skip_serializing_if = "Program::is_off")]
        program: Program,
    },
    /// The stream is published; `sdp` is the server's answer.
    Published {
        /// The new stream's id.
        stream_id: StreamId,
        /// The publish leg.
        link_id: LinkId,
        /// SDP answer.
        sdp: String,
    },
    /// The server's offer for a new subscription leg.
    SubscribeOffer {
        /// The stream subscribed to.
        stream_id: StreamId,
        /// The new link; answer with [`Request::Answer`].
        link_id: LinkId,
        /// SDP offer.
        sdp: String,
    },
    /// The server's offer for the top-N audio link ([`Request::EnableTopNAudio`]):
    /// three send-only audio tracks, the slots the loudest talkers play on.
    TopNOffer {
        /// The new link; answer with [`Request::Answer`].
        link_id: LinkId,
        /// SDP offer.
        sdp: String,
    },
    /// The caller's role after a [`Request::SwitchRole`].
    RoleSwitched {
        /// The role the caller has now.
        role: Role,
    },
    /// The server's side of a [`Request::RestartIce`]: its answer (publish
    /// link) or its new offer (subscription link), with new ICE credentials.
    IceRestarted {
        /// The link restarted.
        link_id: LinkId,
        /// SDP answer (publish link) or offer (subscription link).
        sdp: String,
    },
    /// A recording runs (after [`Request::StartRecording`]).
    RecordingStarted {
        /// Its id, for [`Request::StopRecording`].
        record_id: i32,
        /// The streams it records.
        stream_ids: Vec<StreamId>,
    },
    /// A recording stopped and its files are complete.
    RecordingStopped {
        /// Its id.
        record_id: i32,
        /// One per stream; a stream that delivered nothing has none.
        files: Vec<RecordedFile>,
    },
    /// A relay runs into another room (after [`Request::StartCrossRoomRelay`]).
    CrossRoomRelayStarted {
        /// The other room.
        room_id: RoomId,
        /// The stream relayed there.
        stream_id: StreamId,
        /// The other room's users (the caller not included), sorted by id.
        users: Vec<UserInfo>,
        /// The other room's streams (the relayed one not included), sorted:
        /// subscribe to them like the own room's.
        streams: Vec<StreamInfo>,
    },
}

/// An error answer: `{id, code, message}` (never a bare string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// The request it answers; `None` when the request could not be parsed far
    /// enough to read its id, or for an error not caused by a request.
    pub id: Option<RequestId>,
    /// The seed's numeric code.
    pub code: ErrorCode,
    /// Human-readable detail.
    pub message: String,
}

/// A server → client message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ServerMessage {
    /// Answer to request `id`.
    Reply {
        /// The request answered.
        id: RequestId,
        /// The answer.
        #[serde(flatten)]
        reply: Reply,
    },
    /// A failed request, or an error the server pushes.
    Error(ErrorReply),
    /// Something happened in the room.
    Event {
        /// What happened.
        event: Event,
    },
}

/// Pushed by the server (seed 001 Table 3-5 names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum Event {
    /// A remote user joined.
    PeerJoin {
        /// Who.
        user: UserInfo,
    },
    /// A remote user left.
    PeerLeave {
        /// Who.
        user_id: UserId,
        /// Why (Table 3-6).
        reason: LeaveReason,
    },
    /// A remote user published a stream.
    StreamAdded {
        /// The stream.
        stream: StreamInfo,
    },
    /// A remote stream is gone (unpublished, or its publisher left).
    StreamRemoved {
        /// The stream.
        stream_id: StreamId,
        /// Its publisher.
        user_id: UserId,
    },
    /// A remote stream changed (mute state).
    StreamUpdated {
        /// The stream as it is now.
        stream: StreamInfo,
    },
    /// To a publisher: the layers of its layered stream that some subscriber
    /// receives or is switching to (the largest always); the others need not
    /// be encoded (docs/protocol.md §8, "Simulcast layers").
    LayersWanted {
        /// The publisher's stream.
        stream_id: StreamId,
        /// The wanted layers, largest first.
        resolution_ids: Vec<String>,
    },
    /// To a publisher: the worst audio loss its stream's subscribers report
    /// (receiver reports of their downlinks), for Opus in-band FEC
    /// (docs/protocol.md §6, `downlink-loss`).
    DownlinkLoss {
        /// The publisher's stream.
        stream_id: StreamId,
        /// Percent of audio packets lost on the worst subscriber's downlink
        /// (0–100; a client clamps what it applies).
        loss_percent: u8,
    },
    /// A subscription now forwards these media.
    StreamSubscribed {
        /// The stream.
        stream_id: StreamId,
        /// Audio is forwarded.
        audio: bool,
        /// Video is forwarded.
        video: bool,
        /// The layer forwarded now, for a layered stream (also pushed again
        /// when the server switches layers).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resolution_id: Option<String>,
    },
    /// A remote user switched its role. When it became a player, its streams'
    /// `stream-removed` events came first.
    PeerRoleChanged {
        /// Who.
        user_id: UserId,
        /// The role it has now.
        role: Role,
    },
    /// A remote user changed its display name (seed `remote-user-name-changed`).
    RemoteUserNameChanged {
        /// Who.
        user_id: UserId,
        /// The name it has now.
        user_name: String,
    },
    /// The caller was removed from the room; the server closes the connection.
    ClientBanned {
        /// Why (Table 3-6), e.g. 5 when the same user id joined again.
        reason: LeaveReason,
    },
    /// A trickled ICE candidate from the server for one of the caller's links.
    Candidate {
        /// The link.
        link_id: LinkId,
        /// The candidate.
        candidate: IceCandidate,
    },
    /// The talkers a top-N subscriber hears now, loudest first (seed
    /// `volume-indicator`), about every 500 ms while they send.
    VolumeIndicator {
        /// Who and how loud.
        user_volume_infos: Vec<UserVolume>,
    },
    /// The live nodes of the server's cluster changed (a node started,
    /// stopped or died): where the client may join again if its node goes
    /// away. Same list as [`Reply::Joined`]'s `nodes`; never from a single
    /// server.
    NodesChanged {
        /// The live nodes' signalling URLs, sorted.
        nodes: Vec<String>,
    },
    /// The session's signature expires soon (seed `signature-expired`): send
    /// [`Request::RenewSignature`] before `ctime` passes, or the session is
    /// removed (`client-banned`, reason 6).
    SignatureExpired {
        /// 90100030 (`SIGNATURE_EXPIRED`).
        code: ErrorCode,
        /// Human-readable detail.
        message: String,
        /// The expiry of the signature the session holds, Unix seconds.
        ctime: u64,
    },
    /// The room's program changed (a director's `set-program`, or an on-air
    /// stream was unpublished). Sent to every member, the director included.
    ProgramChanged {
        /// What is on air now.
        program: Program,
        /// The director who set it; absent when the server changed it
        /// because an on-air stream went away.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<UserId>,
    },
    /// Something happened in another room the caller relays into
    /// ([`Request::StartCrossRoomRelay`]): `event` is what a member of that
    /// room gets (`peer-join`, `peer-leave`, `stream-added`, ...).
    CrossRoom {
        /// The other room.
        room_id: RoomId,
        /// Its event.
        event: Box<Event>,
    },
    /// The relay into another room ended without the caller asking: its
    /// stream was unpublished or its link failed (reason 0), the same user
    /// id joined that room itself (reason 5), or that room's signature ran
    /// out (reason 6).
    CrossRoomRelayStopped {
        /// The other room.
        room_id: RoomId,
        /// Why (Table 3-6).
        reason: LeaveReason,
        /// The stream that was relayed (absent from servers before it was
        /// added): a client that already relays a republished stream into
        /// the room again tells a late stop of the old one by it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stream_id: Option<StreamId>,
    },
}
