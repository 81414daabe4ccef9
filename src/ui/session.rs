//! One joined room as the UI sees it: the SDK [`Client`], the subscribed
//! remote streams, the local preview, and the replies of SDK calls in flight.
//!
//! Invariants: the UI thread never awaits. Every SDK call is spawned onto the
//! runtime and its result comes back as a [`SessionReply`] over a bounded
//! channel that [`RoomSession::poll`] drains with `try_recv` (as it drains the
//! SDK's event channel), at most [`MAX_MESSAGES_PER_POLL`] each per pass.
//! `streams` is the source of truth for what exists (and its mute flags);
//! `tiles` only holds streams that are both subscribed and still announced.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use tokio::runtime::Handle;

use crate::client::{
    Client, ClientError, ClientResult, ConnectionState, Credential, JoinConfig, JoinInfo,
    LocalStream, RemoteStream, Role, RoomEvent, StreamId, StreamInfo, UserId, UserInfo, VideoSlot,
};

use crate::media::{AudioProfile, AudioSource, SourceSwitch, VideoProfile, VideoSource};

use super::audio_tap::AudioTap;
use super::device_preview::LevelMeter;
use super::devices::DeviceCatalog;
use super::error_text::{self, HumanError, Notice};
use super::remote_tile::RemoteTile;
use super::signature::{self, SignatureRenewal};
use super::speaking::Speaking;

/// Capacity of the reply channel (runtime tasks → UI). Replies are rare (one
/// per SDK call); when it is full the reply is dropped and logged.
pub const REPLY_CHANNEL_CAPACITY: usize = 256;

/// Most events (and, separately, replies) handled per UI pass, so a burst
/// cannot stall a frame; the rest wait for the next pass.
pub const MAX_MESSAGES_PER_POLL: usize = 64;

/// New video frames ask for a repaint this far ahead, so frames of many
/// streams arriving close together share one UI pass (≤ ~30 passes/s for
/// video, whatever the number of streams).
pub const VIDEO_REPAINT_DELAY: std::time::Duration = std::time::Duration::from_millis(30);

/// Stream state detection interval of the app (seed 001's recommended 3 s): a
/// remote video without a frame for this long shows as interrupted.
pub const STREAM_STATE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3);

/// Results of SDK calls (runtime → UI).
pub enum SessionReply {
    /// The join finished (or why not, for the lobby).
    Joined(Result<JoinInfo, Box<HumanError>>),
    /// The local stream is published (or not).
    Published(ClientResult<StreamId>),
    /// A subscription finished.
    Subscribed(StreamId, Box<ClientResult<RemoteStream>>),
    /// A mute change finished; on failure the flags to restore.
    MuteFailed(ClientError, bool, bool),
    /// Our name change finished: the name asked for, or why not.
    Renamed(ClientResult<String>),
    /// A role switch finished: the role held now, or why not.
    RoleSwitched(ClientResult<Role>),
    /// A renewal from the signature URL failed (why, for the user).
    RenewalFailed(String),
    /// Top-N audio was switched (the slots when on), or not.
    TopN(ClientResult<Option<crate::client::TopNAudio>>),
    /// A director's request (`director.rs`) finished: what it was, and how.
    Directed(&'static str, ClientResult<()>),
    /// An unsubscription (a kiosk's source off air) finished.
    Unsubscribed(StreamId, ClientResult<()>),
    /// A kiosk's pause (`true`) or resume of a subscription finished (`standby.rs`).
    Standby(StreamId, bool, ClientResult<()>),
    /// Our screen share is published (its id, label and end flag), or why not.
    ScreenShared(ClientResult<(StreamId, String)>),
    /// Unpublishing our screen share failed.
    ScreenShareStopFailed(ClientError),
    /// Sending the screen audio with our camera stream failed.
    ScreenAudioFailed(ClientError),
}

/// How the credential is obtained when joining.
#[derive(Debug, Clone)]
pub enum CredentialSource {
    /// Ready to use.
    Ready(Credential),
    /// Fetched from a signature server first.
    Fetch {
        /// Endpoint.
        url: String,
        /// X-AUTH-TOKEN.
        token: String,
    },
}

/// Where the session stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Connecting and joining.
    Joining,
    /// In the room.
    Joined,
    /// The join failed (message for the user).
    Failed(String),
    /// The connection dropped or we were removed.
    Disconnected(String),
}

impl Phase {
    /// The SDK's connection state changed. Returns whether the room was lost
    /// (the caller forgets its users, streams and tiles). A drop while still
    /// joining is remembered in `lost_while_joining` for [`Phase::on_joined`].
    fn on_connection_state(
        &mut self,
        current: ConnectionState,
        lost_while_joining: &mut bool,
    ) -> bool {
        if current != ConnectionState::Disconnected {
            return false;
        }
        match self {
            Phase::Joined => {
                *self = Phase::Disconnected("The connection to the server was lost.".into());
                true
            }
            Phase::Joining => {
                *lost_while_joining = true;
                false
            }
            Phase::Failed(_) | Phase::Disconnected(_) => false,
        }
    }

    /// The join reply arrived (success). The SDK's events and the join reply
    /// travel on two channels, so a `Disconnected` event can be handled first;
    /// then the room is already gone. Returns whether the room is joined.
    fn on_joined(&mut self, lost_while_joining: bool) -> bool {
        *self = if lost_while_joining {
            Phase::Disconnected("The connection to the server was lost.".into())
        } else {
            Phase::Joined
        };
        !lost_while_joining
    }
}

/// What the user did, collected during a pass and applied after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionAction {
    /// Mute/unmute the microphone.
    ToggleMic,
    /// Mute/unmute the camera.
    ToggleCamera,
    /// Mute (true) or unmute the microphone: push-to-talk.
    SetMicMuted(bool),
}

/// Which device a picker chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// The camera (published video).
    Camera,
    /// The microphone (published audio).
    Microphone,
    /// Where remote audio is played.
    Speaker,
}

/// What the app builds to publish: the stream plus the handles the room keeps.
pub struct LocalMedia {
    /// Handed to `Client::publish`.
    pub stream: LocalStream,
    /// The captured picture, for the self tile.
    pub slot: Arc<VideoSlot>,
    /// Replaces the camera while publishing.
    pub camera: SourceSwitch<dyn VideoSource>,
    /// Replaces the microphone while publishing.
    pub microphone: SourceSwitch<dyn AudioSource>,
    /// The published microphone's level.
    pub meter: Arc<LevelMeter>,
    /// The camera's profile (a new camera opens at the same size).
    pub video_profile: VideoProfile,
    /// The microphone's profile.
    pub audio_profile: AudioProfile,
    /// Join with the microphone muted (lobby choice).
    pub start_audio_muted: bool,
    /// Join with the camera off (lobby choice).
    pub start_video_muted: bool,
}

impl LocalMedia {
    /// Splits into the stream to publish and what the UI keeps of it.
    fn into_preview(self, ctx: &egui::Context) -> (LocalStream, LocalPreview) {
        let mixing = self.stream.audio_mixing();
        let c = ctx.clone();
        self.slot
            .set_on_frame(move || c.request_repaint_after(VIDEO_REPAINT_DELAY));
        (
            self.stream,
            LocalPreview {
                slot: self.slot,
                camera: self.camera,
                microphone: self.microphone,
                meter: self.meter,
                video_profile: self.video_profile,
                audio_profile: self.audio_profile,
                stream_id: None,
                audio_muted: self.start_audio_muted,
                video_muted: self.start_video_muted,
                mixing,
                mix_playback: None,
            },
        )
    }
}

/// The local stream as the UI shows it.
pub struct LocalPreview {
    /// Fed by the capture thread (see `PreviewSource`).
    pub slot: Arc<VideoSlot>,
    camera: SourceSwitch<dyn VideoSource>,
    microphone: SourceSwitch<dyn AudioSource>,
    /// The published microphone's level (what the others hear).
    pub meter: Arc<LevelMeter>,
    video_profile: VideoProfile,
    audio_profile: AudioProfile,
    /// Set once published.
    pub stream_id: Option<StreamId>,
    /// Microphone muted.
    pub audio_muted: bool,
    /// Camera muted.
    pub video_muted: bool,
    /// Plays audio files into what we publish (the "Music" menu).
    pub mixing: Option<crate::client::AudioMixing>,
    /// Plays those files on our speaker too, when the menu asks for it.
    mix_playback: Option<super::mix_playback::MixPlayback>,
}

/// A joined (or joining) room.
pub struct RoomSession {
    rt: Handle,
    ctx: egui::Context,
    client: Client,
    me: UserId,
    /// Our display name as the room knows it.
    my_name: String,
    speaker: String,
    devices: DeviceCatalog,
    replies_tx: Sender<SessionReply>,
    replies: Receiver<SessionReply>,
    /// Where it stands.
    pub phase: Phase,
    /// Everyone else in the room.
    pub users: BTreeMap<UserId, UserInfo>,
    /// Every announced remote stream.
    pub streams: BTreeMap<StreamId, StreamInfo>,
    /// Subscribed remote streams.
    pub tiles: BTreeMap<StreamId, RemoteTile>,
    subscribing: BTreeSet<StreamId>,
    /// Unsubscriptions in flight (`reception.rs`).
    unsubscribing: BTreeSet<StreamId>,
    /// Which remote streams we receive (`reception.rs`).
    reception: crate::ui::console::reception::Reception,
    /// The program on screen (a kiosk's, one cut behind the room's).
    shown: crate::client::Program,
    /// A kiosk's paused subscriptions and its calls in flight (`standby.rs`).
    flows: standby::Flows,
    /// The local stream, when publishing.
    pub local: Option<LocalPreview>,
    /// Errors for the user since the last call to [`RoomSession::take_errors`].
    errors: Vec<Notice>,
    /// The connection dropped before the join reply was handled: the SDK's
    /// `Disconnected` event can overtake the reply (two channels), and the
    /// reply must not then bring the phase back to `Joined`.
    lost_while_joining: bool,
    /// Where a signature from a URL is renewed from; `None` with an app key
    /// (the SDK renews by itself) or a fixed signature (nothing to renew with).
    renewal: Option<SignatureRenewal>,
    /// How we proved who we are at join; a role switch proves it again.
    credential: CredentialSource,
    /// Our role in the room (joiner publishes, player only watches).
    pub role: Role,
    /// A role switch is under way (its control is disabled meanwhile).
    pub switching_role: bool,
    /// App id and room id, for fetching a signature.
    client_ids: (String, String),
    /// Top-N audio: the toggle, its slots, the indicator (`top_n.rs`).
    pub top_n: super::top_n::TopNMode,
    /// Why the join failed, for the lobby (set with [`Phase::Failed`]).
    pub failure: Option<HumanError>,
    /// Who speaks (fed each poll from the levels of everyone's audio).
    pub speaking: Speaking,
    /// Our uplink and downlink quality (seed `network-quality`, 0–6), as
    /// last reported; shown on the tiles.
    pub network_quality: Option<(u8, u8)>,
    /// The room's program and our director grant (`director.rs`).
    pub program: ProgramView,
    /// Our screen share and the "Share screen" menu (`screen_share.rs`).
    pub screen_share: super::screen_share::ScreenShare,
}

impl RoomSession {
    /// Starts joining (with `turn` set on the client first); publishes
    /// `publish` once joined.
    #[allow(clippy::too_many_arguments)] // each is one of the join's inputs; TODO(turn): a struct
    pub fn join(
        rt: &Handle,
        ctx: &egui::Context,
        mut config: JoinConfig,
        credential: CredentialSource,
        publish: Option<LocalMedia>,
        devices: DeviceCatalog,
        speaker: String,
        turn: crate::client::TurnConfig,
    ) -> Self {
        let client = {
            // `Client::new` spawns its actor on the current runtime.
            let _guard = rt.enter();
            Client::new()
        };
        let (replies_tx, replies) = crossbeam_channel::bounded(REPLY_CHANNEL_CAPACITY);
        let me = config.user_id.clone();
        let my_name = config.user_name.clone();
        let start_muted = publish.as_ref().map_or((false, false), |m| {
            (m.start_audio_muted, m.start_video_muted)
        });
        let (local_stream, local) = match publish {
            Some(media) => {
                let (stream, mut preview) = media.into_preview(ctx);
                // Frames come only for a file played with `play_locally`.
                preview.mix_playback = preview.mixing.as_ref().and_then(|mixing| {
                    super::mix_playback::MixPlayback::start(mixing, devices.open_playout(&speaker))
                        .inspect_err(|e| tracing::warn!("music playback thread: {e}"))
                        .ok()
                });
                (Some(stream), Some(preview))
            }
            None => (None, None),
        };
        let role = config.role;
        let kept_credential = credential.clone();
        let client_ids = (config.app_id.0.clone(), config.room_id.0.clone());
        let renewal = match &credential {
            CredentialSource::Fetch { url, token } => Some(SignatureRenewal {
                url: url.clone(),
                token: token.clone(),
                app_id: config.app_id.0.clone(),
                room_id: config.room_id.0.clone(),
                user_id: config.user_id.0.clone(),
            }),
            CredentialSource::Ready(_) => None,
        };
        let task_client = client.clone();
        let tx = replies_tx.clone();
        let task_ctx = ctx.clone();
        rt.spawn(async move {
            let send = |reply| send_reply(&tx, &task_ctx, reply);
            // The seed's recommended interval; shown on the tiles.
            task_client
                .enable_stream_state_detection(true, STREAM_STATE_INTERVAL)
                .await
                .ok(); // only fails for an interval out of range
            config.credential = match credential {
                CredentialSource::Ready(c) => c,
                CredentialSource::Fetch { url, token } => {
                    match signature::fetch(
                        &url,
                        &token,
                        &config.app_id.0,
                        &config.room_id.0,
                        &config.user_id.0,
                    )
                    .await
                    {
                        Ok((signature, ctime)) => Credential::Signature { ctime, signature },
                        Err(e) => {
                            return send(SessionReply::Joined(Err(Box::new(
                                error_text::from_signature_fetch(&e),
                            ))));
                        }
                    }
                }
            };
            if let Err(e) = task_client.set_turn_server(turn).await {
                return send(SessionReply::Joined(Err(Box::new(
                    error_text::from_client(&e),
                ))));
            }
            let joined = task_client.join(config).await;
            let ok = joined.is_ok();
            send(SessionReply::Joined(
                joined.map_err(|e| Box::new(error_text::from_client(&e))),
            ));
            if let (true, Some(stream)) = (ok, local_stream) {
                publish_muted(&task_client, stream, start_muted, &send).await;
            }
        });
        Self {
            rt: rt.clone(),
            ctx: ctx.clone(),
            client,
            me,
            my_name,
            speaker,
            devices,
            replies_tx,
            replies,
            phase: Phase::Joining,
            users: BTreeMap::new(),
            streams: BTreeMap::new(),
            tiles: BTreeMap::new(),
            subscribing: BTreeSet::new(),
            unsubscribing: BTreeSet::new(),
            reception: Default::default(),
            flows: Default::default(),
            shown: crate::client::Program::off(),
            local,
            errors: Vec::new(),
            lost_while_joining: false,
            renewal,
            credential: kept_credential,
            role,
            switching_role: false,
            client_ids,
            top_n: super::top_n::TopNMode::default(),
            failure: None,
            speaking: Speaking::default(),
            network_quality: None,
            program: ProgramView::default(),
            screen_share: super::screen_share::ScreenShare::default(),
        }
    }

    /// Switches our role (seed `switchRole`), proving it again with the
    /// join's credential (a fresh signature from the URL, or the app key).
    /// To joiner: `publish` is published once the room agreed; to player:
    /// our stream ends (the server unpublishes it). The result comes back as
    /// [`SessionReply::RoleSwitched`].
    pub fn switch_role(&mut self, role: Role, publish: Option<LocalMedia>) {
        if role == self.role || self.switching_role {
            return;
        }
        self.switching_role = true;
        let start_muted = publish.as_ref().map_or((false, false), |m| {
            (m.start_audio_muted, m.start_video_muted)
        });
        let stream = publish.map(|media| {
            let (stream, preview) = media.into_preview(&self.ctx);
            self.local = Some(preview);
            stream
        });
        let client = self.client.clone();
        let tx = self.replies_tx.clone();
        let ctx = self.ctx.clone();
        let source = self.credential.clone();
        let ids = (
            self.client_ids.0.clone(),
            self.client_ids.1.clone(),
            self.me.0.clone(),
        );
        self.rt.spawn(async move {
            let send = |reply| send_reply(&tx, &ctx, reply);
            let credential = match source {
                CredentialSource::Ready(c) => c,
                CredentialSource::Fetch { url, token } => {
                    match signature::fetch(&url, &token, &ids.0, &ids.1, &ids.2).await {
                        Ok((signature, ctime)) => Credential::Signature { ctime, signature },
                        Err(e) => {
                            return send(SessionReply::RoleSwitched(Err(
                                ClientError::InvalidOperation(format!(
                                    "no fresh signature for the role switch: {e}"
                                )),
                            )));
                        }
                    }
                }
            };
            let switched = client.switch_role(role, credential).await;
            let publish_now = switched.as_ref().is_ok_and(|r| r.can_publish());
            send(SessionReply::RoleSwitched(switched));
            if let (true, Some(stream)) = (publish_now, stream) {
                publish_muted(&client, stream, start_muted, &send).await;
            }
        });
    }

    /// Handles pending SDK events and replies (non-blocking).
    pub fn poll(&mut self) {
        for _ in 0..MAX_MESSAGES_PER_POLL {
            match self.client.events().try_recv() {
                Ok(event) => self.on_event(event),
                Err(_) => break,
            }
        }
        for _ in 0..MAX_MESSAGES_PER_POLL {
            match self.replies.try_recv() {
                Ok(reply) => self.on_reply(reply),
                Err(_) => break,
            }
        }
        let now = Instant::now();
        for tile in self.tiles.values_mut() {
            tile.sample(now);
        }
        self.feed_speaking(now);
    }

    /// One level per user: the loudest of their audio streams (muted = 0).
    fn feed_speaking(&mut self, now: Instant) {
        for tile in self.tiles.values() {
            if tile.audio.is_some() {
                let level = if tile.info.audio_muted {
                    0.0
                } else if self.top_n.is_on() {
                    // Top-N mode: who speaks is what `volume-indicator` says.
                    self.top_n.level(&tile.info.user_id, now)
                } else {
                    tile.level()
                };
                self.speaking.feed(&tile.info.user_id.0, level, now);
            }
        }
        if let Some(local) = &self.local {
            let level = if local.audio_muted {
                0.0
            } else {
                local.meter.level()
            };
            self.speaking.feed(&self.me.0, level, now);
        }
        self.speaking.forget_stale(now);
    }

    /// The SDK client of this session (the stream debugger reads its stats
    /// and signalling log).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Our user id.
    pub fn me(&self) -> &UserId {
        &self.me
    }

    /// Errors to show since the last call.
    pub fn take_errors(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.errors)
    }

    fn on_event(&mut self, event: RoomEvent) {
        match event {
            RoomEvent::ConnectionStateChanged {
                previous, current, ..
            } => {
                // The SDK reconnects by itself: say so, the room stays.
                match (previous, current) {
                    (_, ConnectionState::Reconnecting) => {
                        self.errors.push("Connection lost — reconnecting…".into())
                    }
                    (ConnectionState::Reconnecting, ConnectionState::Connected) => {
                        self.errors.push("Reconnected.".into())
                    }
                    _ => {}
                }
                if self
                    .phase
                    .on_connection_state(current, &mut self.lost_while_joining)
                {
                    self.forget_room();
                }
            }
            RoomEvent::PeerJoin(user) => {
                self.users.insert(user.user_id.clone(), user);
            }
            RoomEvent::PeerLeave { user_id, .. } => {
                self.users.remove(&user_id);
            }
            // Tiles read names from `users` each pass: the new name shows at once.
            RoomEvent::RemoteUserNameChanged { user_id, user_name } => {
                if let Some(user) = self.users.get_mut(&user_id) {
                    user.user_name = user_name;
                }
            }
            RoomEvent::PeerRoleChanged { user_id, role } => {
                if let Some(user) = self.users.get_mut(&user_id) {
                    user.role = role;
                }
            }
            RoomEvent::StreamAdded(info) => self.on_stream(info),
            RoomEvent::ScreenSharingStopped { stream_id } => {
                self.on_screen_sharing_stopped(stream_id);
            }
            RoomEvent::StreamRemoved { stream_id, .. } => {
                self.streams.remove(&stream_id);
                self.tiles.remove(&stream_id);
                // A kiosk may hold another source on standby now.
                self.reconcile_reception();
            }
            RoomEvent::StreamUpdated(info) => {
                if let Some(tile) = self.tiles.get_mut(&info.stream_id) {
                    // A muted camera is not an interrupted one.
                    tile.interrupted &= !info.video_muted;
                    tile.info = info.clone();
                }
                self.streams.insert(info.stream_id, info);
            }
            RoomEvent::StreamSubscribed { .. } => {}
            RoomEvent::LocalStreamRepublished { stream_id, .. } => {
                if let Some(local) = &mut self.local {
                    local.stream_id = Some(stream_id);
                }
            }
            RoomEvent::StreamInterrupted { stream_id, .. }
            | RoomEvent::StreamRecovered { stream_id, .. } => {
                let interrupted = matches!(event, RoomEvent::StreamInterrupted { .. });
                if let Some(tile) = self.tiles.get_mut(&stream_id) {
                    tile.interrupted = interrupted;
                }
            }
            // Already reflected by the StreamUpdated that precedes them.
            RoomEvent::MuteAudio(_)
            | RoomEvent::UnmuteAudio(_)
            | RoomEvent::MuteVideo(_)
            | RoomEvent::UnmuteVideo(_) => {}
            RoomEvent::SignatureExpired {
                renewing, ctime, ..
            } => self.on_signature_expired(renewing, ctime),
            RoomEvent::ClientBanned { reason } => {
                self.program.banned = Some(reason);
                let message = format!(
                    "You were removed from the room ({}).",
                    reason.description().trim_end_matches('.')
                );
                self.errors.push(message.clone().into());
                self.phase = Phase::Disconnected(message);
                self.tiles.clear();
            }
            RoomEvent::VolumeIndicator(speakers) => {
                self.top_n.on_indicator(speakers, Instant::now());
                self.ctx.request_repaint();
            }
            // The app does not turn `rtc-stats` on; its tiles read the
            // counters directly.
            RoomEvent::RtcStats(_) => {}
            RoomEvent::NetworkQuality { uplink, downlink } => {
                self.network_quality = Some((uplink.code(), downlink.code()));
            }
            RoomEvent::Error { code, message } => {
                self.errors.push(error_text::human(code, &message).into());
            }
            RoomEvent::ProgramChanged { program, .. } => {
                self.program.program = program;
                // A kiosk subscribes the new sources now; the old ones go at the cut.
                self.reconcile_reception();
                self.ctx.request_repaint();
            }
            // The app starts no cross-room relays.
            RoomEvent::CrossRoom { .. } | RoomEvent::CrossRoomRelayStopped { .. } => {}
        }
    }

    fn forget_room(&mut self) {
        self.tiles.clear();
        self.streams.clear();
        self.users.clear();
        // The SDK closed the top-N link with the session.
        self.top_n = super::top_n::TopNMode::default();
    }

    fn on_stream(&mut self, info: StreamInfo) {
        let id = info.stream_id;
        let mine = info.user_id == self.me;
        self.streams.insert(id, info);
        if mine || self.tiles.contains_key(&id) {
            return;
        }
        if !self.wants_stream(id) {
            // A kiosk may hold it on standby.
            self.reconcile_reception();
            return;
        }
        self.start_subscribe(id);
    }

    fn on_reply(&mut self, reply: SessionReply) {
        match reply {
            SessionReply::Joined(Ok(_)) if !self.phase.on_joined(self.lost_while_joining) => {}
            SessionReply::Joined(Ok(info)) => {
                self.program.program = info.program;
                self.program.director = info.director;
                for user in info.users {
                    self.users.insert(user.user_id.clone(), user);
                }
                for stream in info.streams {
                    self.on_stream(stream);
                }
            }
            // Not a toast: the lobby (or the kiosk's centred line) shows it.
            SessionReply::Joined(Err(failure)) => {
                self.phase = Phase::Failed(failure.sentence.clone());
                self.failure = Some(*failure);
            }
            SessionReply::Published(Ok(id)) => {
                if let Some(local) = &mut self.local {
                    local.stream_id = Some(id);
                }
            }
            SessionReply::Published(Err(e)) => {
                self.errors.push(Notice::failed("Publishing", &e));
            }
            SessionReply::Subscribed(id, result) => {
                self.subscribing.remove(&id);
                match *result {
                    Ok(stream) => {
                        self.add_tile(id, stream);
                        // Off air while it was subscribing: it goes again.
                        self.reconcile_reception();
                    }
                    // A stream removed while subscribing fails here; not news.
                    Err(_) if !self.streams.contains_key(&id) => {}
                    Err(e) => self.errors.push(Notice::failed("Receiving a stream", &e)),
                }
            }
            SessionReply::MuteFailed(e, audio, video) => {
                if let Some(local) = &mut self.local {
                    local.audio_muted = audio;
                    local.video_muted = video;
                }
                self.errors.push(Notice::failed("Mute", &e));
            }
            SessionReply::Renamed(Ok(name)) => self.my_name = name,
            SessionReply::RoleSwitched(result) => {
                self.switching_role = false;
                match result {
                    Ok(role) => self.role = role,
                    Err(e) => {
                        self.errors.push(Notice::failed("Role switch", &e));
                    }
                }
                if !self.role.can_publish() {
                    self.local = None; // a player shows and sends nothing
                }
            }
            SessionReply::Renamed(Err(e)) => {
                self.errors.push(Notice::failed("Rename", &e));
            }
            SessionReply::RenewalFailed(e) => {
                self.errors
                    .push(format!("Signature renewal failed: {e}").into());
            }
            SessionReply::TopN(result) => self.top_n_switched(result),
            SessionReply::Directed(what, result) => self.on_directed(what, result),
            SessionReply::ScreenShared(result) => self.on_screen_shared(result),
            SessionReply::Unsubscribed(id, result) => self.on_unsubscribed(id, result),
            SessionReply::Standby(id, paused, result) => self.on_standby(id, paused, result),
            SessionReply::ScreenShareStopFailed(e) => {
                self.errors.push(Notice::failed("Stopping the share", &e));
            }
            SessionReply::ScreenAudioFailed(e) => {
                self.errors
                    .push(Notice::failed("Sharing the screen's sound", &e));
            }
        }
    }

    /// The server warned that our signature runs out at `ctime`: renew it
    /// from the signature URL in the background, unless the SDK already does
    /// (app key). A fixed signature cannot be renewed: the user is told.
    fn on_signature_expired(&mut self, sdk_renews: bool, ctime: u64) {
        if sdk_renews {
            return;
        }
        let Some(renewal) = self.renewal.clone() else {
            self.errors.push(
                format!(
                    "The signature expires at {ctime} and there is no signature URL to renew it \
                     from — rejoin with a fresh one."
                )
                .into(),
            );
            return;
        };
        let client = self.client.clone();
        let tx = self.replies_tx.clone();
        let ctx = self.ctx.clone();
        self.rt.spawn(async move {
            if let Err(e) = renewal.renew(&client).await {
                send_reply(&tx, &ctx, SessionReply::RenewalFailed(e));
            }
        });
    }

    /// Asks the room to call us `name` (in the background); [`Self::my_name`]
    /// changes once the server has accepted it.
    pub fn rename(&mut self, name: String) {
        if name == self.my_name {
            return;
        }
        let client = self.client.clone();
        let tx = self.replies_tx.clone();
        let ctx = self.ctx.clone();
        self.rt.spawn(async move {
            let result = client.change_user_name(name.clone()).await.map(|()| name);
            send_reply(&tx, &ctx, SessionReply::Renamed(result));
        });
    }

    /// Turns top-N audio on or off (the toggle).
    pub fn set_top_n(&mut self, on: bool) {
        if !self.top_n.begin(on) {
            return;
        }
        let client = self.client.clone();
        let tx = self.replies_tx.clone();
        let ctx = self.ctx.clone();
        self.rt.spawn(async move {
            let result = client.enable_top_three_audio_mode(on).await;
            send_reply(&tx, &ctx, SessionReply::TopN(result));
        });
    }

    fn top_n_switched(&mut self, result: ClientResult<Option<crate::client::TopNAudio>>) {
        let (devices, speaker, ctx) = (&self.devices, &self.speaker, &self.ctx);
        let outcome = self.top_n.finish(result, |slot| {
            let ctx = ctx.clone();
            AudioTap::start(slot, devices.open_playout(speaker), 1.0, move || {
                ctx.request_repaint()
            })
            .map_err(|e| tracing::warn!("audio tap for a top-N slot: {e}"))
            .ok()
        });
        if let Err(e) = outcome {
            self.errors.push(e.into());
        }
        let volume = self.top_n.tile_volume();
        for audio in self.tiles.values().filter_map(|t| t.audio.as_ref()) {
            audio.shared().set_volume(volume);
        }
    }

    /// Our display name, or our user id when it is empty.
    pub fn my_name(&self) -> &str {
        if self.my_name.is_empty() {
            self.me.0.as_str()
        } else {
            &self.my_name
        }
    }

    fn add_tile(&mut self, id: StreamId, stream: RemoteStream) {
        let Some(info) = self.streams.get(&id).cloned() else {
            return; // removed while subscribing: dropping the stream ends it
        };
        let ctx = self.ctx.clone();
        stream
            .video()
            .set_on_frame(move || ctx.request_repaint_after(VIDEO_REPAINT_DELAY));
        let audio = if info.audio {
            let ctx = self.ctx.clone();
            let playout = self.devices.open_playout(&self.speaker);
            let volume = self.top_n.tile_volume();
            match AudioTap::start(&stream, playout, volume, move || ctx.request_repaint()) {
                Ok(tap) => Some(tap),
                Err(e) => {
                    tracing::warn!("audio tap for stream {}: {e}", id.0);
                    None
                }
            }
        } else {
            None
        };
        let mut tile = RemoteTile::new(stream, audio);
        tile.info = info;
        self.tiles.insert(id, tile);
    }

    /// Applies a user action (after the pass).
    pub fn apply(&mut self, action: SessionAction) {
        let Some(local) = &mut self.local else {
            return;
        };
        let Some(stream_id) = local.stream_id else {
            self.errors
                .push("Not published yet — wait a moment.".into());
            return;
        };
        let (old_audio, old_video) = (local.audio_muted, local.video_muted);
        match action {
            SessionAction::ToggleMic => local.audio_muted = !local.audio_muted,
            SessionAction::ToggleCamera => local.video_muted = !local.video_muted,
            SessionAction::SetMicMuted(muted) => local.audio_muted = muted,
        }
        let (audio, video) = (local.audio_muted, local.video_muted);
        if (audio, video) == (old_audio, old_video) {
            return;
        }
        let client = self.client.clone();
        let tx = self.replies_tx.clone();
        let ctx = self.ctx.clone();
        self.rt.spawn(async move {
            if let Err(e) = client.set_muted(stream_id, audio, video).await {
                send_reply(&tx, &ctx, SessionReply::MuteFailed(e, old_audio, old_video));
            }
        });
    }

    /// The speaker remote audio plays on.
    pub fn speaker(&self) -> &str {
        &self.speaker
    }

    /// Switches a device while in the room (the seeds' `switchDevice`). The
    /// new camera or microphone opens on its media thread, so this returns at
    /// once; one that fails to open falls back to the synthetic source there.
    ///
    /// # Errors
    /// A readable message when there is nothing to switch (watching only) or
    /// the new source does not fit the stream.
    pub fn switch_device(&mut self, kind: DeviceKind, id: &str) -> Result<(), String> {
        match kind {
            DeviceKind::Speaker => {
                self.speaker = id.to_owned();
                for tile in self.tiles.values() {
                    if let Some(tap) = &tile.audio {
                        tap.set_playout(self.devices.open_playout(id));
                    }
                }
                if let Some(playback) = self.local.as_ref().and_then(|l| l.mix_playback.as_ref()) {
                    playback.set_playout(self.devices.open_playout(id));
                }
                Ok(())
            }
            DeviceKind::Camera | DeviceKind::Microphone => {
                let Some(local) = &self.local else {
                    return Err("switch device: not publishing (player role)".into());
                };
                let result = if kind == DeviceKind::Camera {
                    let camera = self.devices.open_camera(id, &local.video_profile);
                    local.camera.switch_to(camera)
                } else {
                    let mic = self.devices.open_microphone(id, &local.audio_profile);
                    local.microphone.switch_to(mic)
                };
                result.map_err(|e| format!("switch device: {e}"))
            }
        }
    }

    /// Leaves the room in the background; the session is done.
    pub fn leave(self) {
        let client = self.client.clone();
        self.rt.spawn(async move {
            // Leaving a room that already closed is fine.
            client.leave().await.ok();
        });
    }

    /// Display name of `user`.
    pub fn name_of<'a>(&'a self, user: &'a UserId) -> &'a str {
        self.users
            .get(user)
            .map(|u| u.user_name.as_str())
            .filter(|n| !n.is_empty())
            .unwrap_or(user.0.as_str())
    }
}

/// Publishes `stream` and, when asked (the lobby's "join with microphone /
/// camera off"), mutes it at once; the preview already shows it muted.
async fn publish_muted(
    client: &Client,
    stream: LocalStream,
    (audio, video): (bool, bool),
    send: &impl Fn(SessionReply),
) {
    let published = client.publish(stream).await;
    if let (Ok(id), true) = (&published, audio || video)
        && let Err(e) = client.set_muted(*id, audio, video).await
    {
        send(SessionReply::MuteFailed(e, false, false));
    }
    send(SessionReply::Published(published));
}

fn send_reply(tx: &Sender<SessionReply>, ctx: &egui::Context, reply: SessionReply) {
    if tx.try_send(reply).is_err() {
        tracing::warn!("UI reply channel full or closed; reply dropped");
    }
    ctx.request_repaint();
}

mod director;
pub use director::{DirectorAction, ProgramView};
mod reception;
mod screen;
mod standby;

#[cfg(test)]
pub mod test_support;

#[cfg(test)]
mod renewal_and_interruption_tests;

#[cfg(test)]
mod role_switch_tests;

#[cfg(test)]
mod join_muted_tests;

#[cfg(test)]
mod screen_stop_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_name_and_role_changes_reach_the_user_list_tiles_read() {
        // Never driven: the join task (and the SDK's actor) never run, and
        // the test feeds the session's events itself.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let config = JoinConfig {
            server_url: "ws://127.0.0.1:9".into(),
            app_id: crate::protocol::AppId("app".into()),
            room_id: crate::protocol::RoomId("room".into()),
            user_id: UserId("me".into()),
            user_name: "Me".into(),
            role: crate::client::Role::Joiner,
            credential: Credential::AppKey {
                key: "key".into(),
                valid_for: std::time::Duration::from_secs(60),
            },
            decode: true,
            reconnect_window: crate::client::DEFAULT_RECONNECT_WINDOW,
        };
        let mut session = RoomSession::join(
            rt.handle(),
            &egui::Context::default(),
            config,
            CredentialSource::Ready(Credential::AppKey {
                key: "key".into(),
                valid_for: std::time::Duration::from_secs(60),
            }),
            None,
            DeviceCatalog::synthetic(),
            String::new(),
            crate::client::TurnConfig::default(),
        );
        assert_eq!(session.my_name(), "Me");
        let alice = UserId("alice".into());
        session.on_event(RoomEvent::PeerJoin(UserInfo {
            user_id: alice.clone(),
            user_name: "Alice".into(),
            role: crate::client::Role::Joiner,
        }));
        assert_eq!(session.name_of(&alice), "Alice");
        session.on_event(RoomEvent::RemoteUserNameChanged {
            user_id: alice.clone(),
            user_name: "Alice Liddell".into(),
        });
        assert_eq!(session.name_of(&alice), "Alice Liddell");
        session.on_event(RoomEvent::PeerRoleChanged {
            user_id: alice.clone(),
            role: crate::client::Role::Player,
        });
        assert_eq!(session.users[&alice].role, crate::client::Role::Player);
        // An event about someone not (or no longer) listed adds no one.
        session.on_event(RoomEvent::RemoteUserNameChanged {
            user_id: UserId("ghost".into()),
            user_name: "Boo".into(),
        });
        assert_eq!(session.users.len(), 1);
        // Our own rename shows once the room has accepted it.
        session.on_reply(SessionReply::Renamed(Ok("Me Too".into())));
        assert_eq!(session.my_name(), "Me Too");
    }

    #[test]
    fn a_drop_seen_before_the_join_reply_ends_in_disconnected() {
        let mut phase = Phase::Joining;
        let mut lost = false;
        assert!(!phase.on_connection_state(ConnectionState::Connected, &mut lost));
        assert!(!phase.on_connection_state(ConnectionState::Disconnected, &mut lost));
        assert!(lost);
        assert!(!phase.on_joined(lost));
        assert!(matches!(phase, Phase::Disconnected(_)), "{phase:?}");
    }

    #[test]
    fn a_drop_after_joining_is_a_lost_room() {
        let mut phase = Phase::Joining;
        let mut lost = false;
        assert!(!phase.on_connection_state(ConnectionState::Connected, &mut lost));
        assert!(phase.on_joined(lost));
        assert_eq!(phase, Phase::Joined);
        assert!(phase.on_connection_state(ConnectionState::Disconnected, &mut lost));
        assert!(matches!(phase, Phase::Disconnected(_)), "{phase:?}");
        // A second notice changes nothing.
        assert!(!phase.on_connection_state(ConnectionState::Disconnected, &mut lost));
    }
}
