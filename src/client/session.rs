//! The room-session actor: one task owning a client's signalling socket, its
//! peer connections and its media pipelines.
//!
//! It handles one [`RoomCommand`] at a time, in order; between commands it
//! handles pushed events from the server and state changes of its links. Every
//! command gets exactly one reply on its oneshot. Events go to the application
//! with `try_send` on a bounded channel: a UI that stops draining loses events
//! (logged), it never stalls the session.

mod cross_room;
mod detection;
mod ice_restart;
mod layers;
mod quality;
mod renewal;
mod screen_audio;
mod screen_end;
mod standby;
mod stats;
mod top_n;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::peer_connection::RTCPeerConnectionState;
use webrtc::rtp_transceiver::RtpSender;

// The reconnection state machine: a child module, so it works on the
// session's own state.
pub(super) mod reconnect;
// Servers of several nodes: redirects, and which node to try next.
mod nodes;

use super::publish::{PublishPipeline, TrackOut};
use super::signal::{SignalConnection, SignalEvent};
use super::stream::{LocalStream, RemoteStream};
use super::stream_state::{DETECTION_TICK, StreamStateDetector};
use super::subscribe::Receiver;
use super::{
    ClientError, ClientResult, ConnectionState, Credential, JoinConfig, JoinInfo, RoomCommand,
    RoomEvent, SharedState, SubscribeOptions,
};
use crate::auth;
use crate::link::{LinkSignal, LinkSignals, PeerLink};
use crate::protocol::{
    AppId, Event, LeaveReason, LinkId, PROTOCOL_VERSION, Reply, Request, Role, RoomId, StreamId,
    StreamInfo, UserId, UserInfo, VideoInfo,
};

/// Pushed events queued from the socket reader to the actor. The reader waits
/// when it is full, which in turn stops reading the socket: back-pressure to the
/// server rather than an unbounded queue.
const SIGNAL_EVENT_CAPACITY: usize = 256;

/// Link signals from all links, merged for the actor.
const LINK_EVENT_CAPACITY: usize = 256;

/// How often the client pings the server when idle.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);

struct Publication {
    link_id: LinkId,
    link: PeerLink,
    pipeline: PublishPipeline,
    link_task: tokio::task::JoinHandle<()>,
    /// What the `publish` request declared, and the tracks the pipeline
    /// writes to: enough to publish the stream again on a new link.
    audio: bool,
    video: Option<VideoInfo>,
    /// Published as a screen share (`isScreen`).
    is_screen: bool,
    tracks: Vec<(RtpCodecKind, Arc<TrackLocalStaticSample>)>,
    /// The congestion control its link was built with (a new link gets the
    /// same).
    congestion: crate::link::congestion::CongestionConfig,
    /// When it was published: where its statistics' rates start.
    published_at: Instant,
    /// Its simulcast layers, largest first (`protocol::layers`); empty for
    /// one encoding. Each is a video track with its `resolutionId` as id.
    resolutions: Vec<crate::protocol::VideoResolution>,
    /// Its audio's mixing stage (files, a bound screen audio).
    mixing: Option<crate::media::AudioMixing>,
    /// The screen share whose audio it carries (`screen_audio.rs`).
    screen_audio_of: Option<StreamId>,
}

struct Subscription {
    link_id: LinkId,
    link: PeerLink,
    /// What was asked for, to subscribe again on a new link.
    options: SubscribeOptions,
    stream: RemoteStream,
    /// Paused by `pause_subscription` (`standby.rs`).
    paused: bool,
    /// Starts a receive task for each track as the link reports it.
    receiver: Receiver,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// A link state change, tagged with the link.
struct LinkUpdate {
    link_id: LinkId,
    signal: LinkSignal,
}

/// Who this client is in its room, once joined: what a role switch signs.
struct Identity {
    app_id: AppId,
    room_id: RoomId,
    /// Kept in step with the server's view (role switches, name changes).
    me: UserInfo,
    /// What signs again (renewals; `renewal.rs` keeps it current).
    credential: Credential,
}

struct Session {
    events: crossbeam_channel::Sender<RoomEvent>,
    signal: Option<Arc<SignalConnection>>,
    /// Set by a successful join; cleared with `signal`.
    identity: Option<Identity>,
    state: ConnectionState,
    rtc_ip: IpAddr,
    /// Whether subscriptions decode (`JoinConfig::decode`).
    decode: bool,
    /// What the application set with `set_turn_server`.
    turn: super::TurnConfig,
    /// Signalling proxy and TLS roots (`set_proxy_server`).
    proxy: super::ProxyConfig,
    /// What this session's links use: settled at join (`turn` module).
    ice: crate::link::ice::IcePolicy,
    streams: BTreeMap<StreamId, StreamInfo>,
    publications: BTreeMap<StreamId, Publication>,
    subscriptions: BTreeMap<StreamId, Subscription>,
    link_tx: mpsc::Sender<LinkUpdate>,
    /// Everyone else in the room, as last known (diffed on reconnecting).
    users: BTreeMap<UserId, UserInfo>,
    /// Read by [`super::Client::connection_state`].
    shared_state: SharedState,
    /// How to get back into the room; set by a successful join.
    rejoin: Option<reconnect::Rejoin>,
    /// Set while [`ConnectionState::Reconnecting`].
    reconnecting: Option<reconnect::Reconnecting>,
    /// Subscriptions lost with a server restart, restored when their
    /// publisher's stream comes back.
    restore: Vec<reconnect::LostSubscription>,
    /// Where the keepalive reports a connection that stopped answering.
    stall_tx: mpsc::Sender<usize>,
    /// Stream state detection (`detection.rs`), off until enabled.
    detector: StreamStateDetector,
    /// Cap on each publication, bit/s (`Client::set_network_bandwidth`).
    network_bandwidth: Option<u32>,
    /// The top-N audio link, once enabled (`top_n.rs`).
    top_n: Option<top_n::TopNLink>,
    /// Relays of this client's streams into other rooms (`cross_room.rs`).
    cross_rooms: cross_room::CrossRooms,
    /// Links being brought back with ICE restarts (`ice_restart.rs`).
    recovery: ice_restart::Links,
    /// `rtc-stats` and the statistics' rate meters (`stats.rs`).
    rtc_stats: stats::RtcStatsState,
    /// What the last network-quality sample saw (`quality.rs`).
    quality: quality::QualityState,
    /// Every signalling frame, when enabled (`signal_log.rs`).
    signal_log: super::SignalLog,
    /// Every received video frame per stream, when enabled (`frame_log.rs`).
    frame_logs: super::FrameLogs,
    /// Notified when a publication's capture ends by itself (`screen_end.rs`).
    capture_ended: Arc<tokio::sync::Notify>,
}

/// The actor's main loop.
pub(crate) async fn run(
    mut commands: mpsc::Receiver<RoomCommand>,
    events: crossbeam_channel::Sender<RoomEvent>,
    shared_state: SharedState,
    signal_log: super::SignalLog,
    frame_logs: super::FrameLogs,
) {
    let (signal_tx, mut signal_rx) = mpsc::channel(SIGNAL_EVENT_CAPACITY);
    let (link_tx, mut link_rx) = mpsc::channel(LINK_EVENT_CAPACITY);
    let (stall_tx, mut stall_rx) = mpsc::channel(reconnect::STALL_CAPACITY);
    let mut session = Session {
        events,
        signal: None,
        identity: None,
        state: ConnectionState::Disconnected,
        rtc_ip: IpAddr::from([127, 0, 0, 1]),
        decode: true,
        turn: super::TurnConfig::default(),
        proxy: super::ProxyConfig::default(),
        ice: crate::link::ice::IcePolicy::default(),
        streams: BTreeMap::new(),
        publications: BTreeMap::new(),
        subscriptions: BTreeMap::new(),
        link_tx,
        users: BTreeMap::new(),
        shared_state,
        rejoin: None,
        reconnecting: None,
        restore: Vec::new(),
        stall_tx,
        detector: StreamStateDetector::default(),
        network_bandwidth: None,
        top_n: None,
        cross_rooms: cross_room::CrossRooms::default(),
        recovery: ice_restart::Links::default(),
        rtc_stats: stats::RtcStatsState::default(),
        quality: quality::QualityState::default(),
        signal_log,
        frame_logs,
        capture_ended: Arc::default(),
    };
    let capture_ended = Arc::clone(&session.capture_ended);
    let mut keepalive = tokio::time::interval(KEEPALIVE_INTERVAL);
    let mut detection_tick = tokio::time::interval(DETECTION_TICK);
    // Rebuilt whenever `enable_rtc_stats` changes the interval.
    let mut rtc_stats_tick = stats::RtcStatsTick::default();
    let mut quality_tick = tokio::time::interval(super::network_quality::NETWORK_QUALITY_INTERVAL);
    loop {
        rtc_stats_tick.follow(session.rtc_stats.interval);
        tokio::select! {
            command = commands.recv() => match command {
                Some(command) => session.on_command(command, &signal_tx).await,
                None => break, // every handle dropped
            },
            Some(event) = signal_rx.recv() => session.on_signal(event).await,
            Some(update) = link_rx.recv() => session.on_link(update).await,
            Some(connection) = stall_rx.recv() => session.on_stall(connection).await,
            () = reconnect::due(session.next_attempt()) => session.reconnect_attempt(&signal_tx).await,
            () = ice_restart::due(session.next_recovery()) => session.on_recovery_due().await,
            () = capture_ended.notified() => session.on_capture_ended().await,
            _ = keepalive.tick() => session.keepalive(),
            _ = detection_tick.tick(), if session.detector.enabled() => {
                session.detect_stream_states()
            }
            () = rtc_stats_tick.tick() => session.emit_rtc_stats().await,
            _ = quality_tick.tick(), if session.identity.is_some() => {
                session.emit_network_quality().await
            }
        }
    }
    session.shutdown().await;
}

/// The IP our UDP sockets bind to: loopback for a loopback server (the ICE agent
/// skips loopback on a wildcard bind), the wildcard otherwise.
fn rtc_ip_for(url: &str) -> IpAddr {
    let host = url
        .split("://")
        .nth(1)
        .unwrap_or(url)
        .split(['/', '?'])
        .next()
        .unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback {
        IpAddr::from([127, 0, 0, 1])
    } else {
        IpAddr::from([0, 0, 0, 0])
    }
}

impl Session {
    fn emit(&self, event: RoomEvent) {
        if let Err(crossbeam_channel::TrySendError::Full(event)) = self.events.try_send(event) {
            tracing::warn!("event channel full; dropping {event:?}");
        }
    }

    fn set_state(&mut self, state: ConnectionState) {
        self.set_state_because(state, None);
    }

    /// Changes the state; `reason` goes with [`ConnectionState::Disconnected`].
    fn set_state_because(&mut self, state: ConnectionState, reason: Option<LeaveReason>) {
        if self.state != state {
            let previous = std::mem::replace(&mut self.state, state);
            self.shared_state.set(state);
            self.emit(RoomEvent::ConnectionStateChanged {
                previous,
                current: state,
                reason: reason.filter(|_| state == ConnectionState::Disconnected),
            });
        }
    }

    fn signal(&self) -> ClientResult<Arc<SignalConnection>> {
        if self.reconnecting.is_some() {
            return Err(ClientError::Disconnected(
                "reconnecting to the server".into(),
            ));
        }
        self.signal
            .clone()
            .ok_or_else(|| ClientError::InvalidOperation("join a room first".into()))
    }

    async fn on_command(&mut self, command: RoomCommand, signal_tx: &mpsc::Sender<SignalEvent>) {
        match command {
            RoomCommand::Join(config, reply) => {
                let result = self.join(config, signal_tx).await;
                reply.send(result).ok(); // the caller may have given up waiting
            }
            RoomCommand::Leave(reply) => {
                let result = self.leave().await;
                reply.send(result).ok();
            }
            RoomCommand::StartCrossRoomRelay {
                room_id,
                stream_id,
                credential,
                reply,
            } => {
                let result = self
                    .start_cross_room_relay(room_id, stream_id, &credential)
                    .await;
                reply.send(result).ok(); // the caller may have given up waiting
            }
            RoomCommand::FailPublishLink(stream_id, reply) => {
                let result = match self.publications.get(&stream_id) {
                    Some(p) => {
                        let link_id = p.link_id;
                        Ok(self
                            .link_broke(link_id, RTCPeerConnectionState::Failed)
                            .await)
                    }
                    None => Err(ClientError::InvalidParameter(format!(
                        "stream {stream_id} is not published here"
                    ))),
                };
                reply.send(result).ok();
            }
            RoomCommand::RenewCrossRoomSignature {
                room_id,
                ctime,
                signature,
                reply,
            } => {
                let result = self
                    .renew_cross_room_signature(room_id, ctime, signature)
                    .await;
                reply.send(result).ok();
            }
            RoomCommand::StopCrossRoomRelay(room_id, reply) => {
                let result = self.stop_cross_room_relay(room_id).await;
                reply.send(result).ok();
            }
            RoomCommand::Publish(stream, reply) => {
                let result = self.publish(*stream).await;
                reply.send(result).ok();
            }
            RoomCommand::Unpublish(stream_id, reply) => {
                let result = self.unpublish(stream_id).await;
                reply.send(result).ok();
            }
            RoomCommand::BindScreenAudio(binding, reply) => {
                reply.send(self.bind_screen_audio(*binding)).ok();
            }
            RoomCommand::UnbindScreenAudio(bind, reply) => {
                reply.send(self.unbind_screen_audio(bind)).ok();
            }
            RoomCommand::SetMuted {
                stream_id,
                audio_muted,
                video_muted,
                reply,
            } => {
                let result = self.set_muted(stream_id, audio_muted, video_muted).await;
                reply.send(result).ok();
            }
            RoomCommand::Subscribe(stream_id, options, reply) => {
                let result = self.subscribe(stream_id, options).await;
                reply.send(result).ok();
            }
            RoomCommand::Unsubscribe(stream_id, stop, reply) => {
                let result = self.unsubscribe(stream_id, stop).await;
                reply.send(result).ok();
            }
            RoomCommand::PauseSubscription(stream_id, paused, reply) => {
                let result = self.pause_subscription(stream_id, paused).await;
                reply.send(result).ok();
            }
            RoomCommand::PublishStats(stream_id, reply) => {
                let result = self
                    .publications
                    .get(&stream_id)
                    .map(|p| p.link.rtcp_stats().all())
                    .ok_or_else(|| ClientError::InvalidOperation("not published".into()));
                reply.send(result).ok();
            }
            RoomCommand::SendRate(stream_id, reply) => {
                let result = self
                    .publications
                    .get(&stream_id)
                    .map(|p| p.pipeline.send_rate())
                    .ok_or_else(|| ClientError::InvalidOperation("not published".into()));
                reply.send(result).ok();
            }
            RoomCommand::SetNetworkBandwidth(cap_bps, reply) => {
                self.network_bandwidth = cap_bps;
                for p in self.publications.values() {
                    p.pipeline.set_cap(cap_bps);
                }
                reply.send(Ok(())).ok();
            }
            RoomCommand::SwitchRole(role, credential, reply) => {
                let result = self.switch_role(role, &credential).await;
                reply.send(result).ok();
            }
            RoomCommand::Direct(request, reply) => {
                let result = match self.signal() {
                    Ok(signal) => signal.request(request.into_request()).await.map(|_| ()),
                    Err(e) => Err(e),
                };
                reply.send(result).ok();
            }
            RoomCommand::ChangeUserName(user_name, reply) => {
                let result = self.change_user_name(user_name).await;
                reply.send(result).ok();
            }
            RoomCommand::Me(reply) => {
                let result = self.identity().map(|i| i.me.clone());
                reply.send(result).ok();
            }
            RoomCommand::SetTurnServer(config, reply) => {
                let result = if self.signal.is_some() {
                    Err(ClientError::InvalidOperation(
                        "set the TURN server before joining".into(),
                    ))
                } else {
                    config.check().map(|()| self.turn = config)
                };
                reply.send(result).ok();
            }
            RoomCommand::SetProxyServer(config, reply) => {
                let result = if self.signal.is_some() {
                    Err(ClientError::InvalidOperation(
                        "set the proxy server before joining".into(),
                    ))
                } else {
                    config.check().map(|()| self.proxy = config)
                };
                reply.send(result).ok();
            }
            RoomCommand::SelectedPair(stream_id, reply) => {
                let link = self
                    .publications
                    .get(&stream_id)
                    .map(|p| &p.link)
                    .or_else(|| self.subscriptions.get(&stream_id).map(|s| &s.link));
                let result = match link {
                    Some(link) => Ok(link.selected_pair().await),
                    None => Err(ClientError::InvalidParameter(format!(
                        "stream {stream_id} is neither published nor subscribed here"
                    ))),
                };
                reply.send(result).ok();
            }
            RoomCommand::RenewSignature(ctime, signature, reply) => {
                let result = self.renew_signature(ctime, signature).await;
                reply.send(result).ok();
            }
            RoomCommand::Stats(reply) => {
                let result = self.stats_report().await;
                reply.send(Ok(result)).ok();
            }
            RoomCommand::Layer(command) => self.on_layer_command(command).await,
            RoomCommand::RtcStats(interval, reply) => {
                self.set_rtc_stats(interval);
                reply.send(Ok(())).ok();
            }
            RoomCommand::StreamStateDetection(interval, reply) => {
                self.set_stream_state_detection(interval);
                reply.send(Ok(())).ok();
            }
            RoomCommand::TopN(enable, reply) => {
                let result = self.enable_top_n(enable).await;
                reply.send(result).ok();
            }
            RoomCommand::RawFrame(text, reply) => {
                let result = match self.signal() {
                    Ok(signal) => signal.send_raw(text).await,
                    Err(e) => Err(e),
                };
                reply.send(result).ok();
            }
        }
    }

    async fn join(
        &mut self,
        config: JoinConfig,
        signal_tx: &mpsc::Sender<SignalEvent>,
    ) -> ClientResult<JoinInfo> {
        if self.signal.is_some() || self.reconnecting.is_some() {
            return Err(ClientError::InvalidOperation(
                "already joined; leave first".into(),
            ));
        }
        self.set_state(ConnectionState::Connecting);
        let result = self.try_join(config, signal_tx).await;
        if result.is_err() {
            if let Some(signal) = self.signal.take() {
                close_signal(signal).await;
            }
            self.set_state(ConnectionState::Disconnected);
        }
        result
    }

    async fn try_join(
        &mut self,
        config: JoinConfig,
        signal_tx: &mpsc::Sender<SignalEvent>,
    ) -> ClientResult<JoinInfo> {
        let (ctime, signature) = signed(
            &config.credential,
            &config.app_id,
            &config.room_id,
            &config.user_id,
        );
        self.rtc_ip = rtc_ip_for(&config.server_url);
        self.decode = config.decode;
        let url = self.proxy.url_for(&config.server_url).to_owned();
        let tls = self.proxy.connector(&url)?;
        let signal = Arc::new(
            SignalConnection::connect(&url, tls, signal_tx.clone(), self.signal_log.clone())
                .await?,
        );
        self.signal = Some(Arc::clone(&signal));
        let join = Request::Join {
            protocol_version: PROTOCOL_VERSION,
            app_id: config.app_id.clone(),
            room_id: config.room_id.clone(),
            user_id: config.user_id.clone(),
            user_name: config.user_name.clone(),
            role: config.role,
            ctime,
            signature,
        };
        // A node of a cluster may send us to the room's node.
        let (node_url, reply) = self.join_following(signal, url, join, signal_tx).await?;
        let Reply::Joined {
            room_id,
            me,
            users,
            streams,
            resume_token,
            ice_servers,
            program,
            director,
            nodes,
            ..
        } = reply
        else {
            return Err(unexpected(&reply));
        };
        self.ice = self.turn.policy(ice_servers);
        self.identity = Some(Identity {
            app_id: config.app_id.clone(),
            room_id,
            me,
            credential: config.credential.clone(),
        });
        self.streams = streams.iter().map(|s| (s.stream_id, s.clone())).collect();
        self.users = users
            .iter()
            .map(|u| (u.user_id.clone(), u.clone()))
            .collect();
        self.rejoin = Some(reconnect::Rejoin {
            route: nodes::NodeRoute::new(&node_url, &config.server_url, &nodes),
            config,
            resume_token,
        });
        self.set_state(ConnectionState::Connected);
        Ok(JoinInfo {
            users,
            streams,
            program,
            director,
        })
    }

    async fn leave(&mut self) -> ClientResult<()> {
        self.rejoin = None;
        self.restore.clear();
        let Some(signal) = self.signal.clone() else {
            if self.reconnecting.take().is_some() {
                self.close_all().await;
                self.set_state_because(ConnectionState::Disconnected, Some(LeaveReason::UserExit));
            }
            return Ok(());
        };
        // Best effort: the server cleans up on disconnect anyway.
        let result = signal.request(Request::Leave).await.map(|_| ());
        self.close_all().await;
        if let Some(signal) = self.signal.take() {
            close_signal(signal).await;
        }
        self.set_state_because(ConnectionState::Disconnected, Some(LeaveReason::UserExit));
        match result {
            Err(ClientError::Disconnected(_)) => Ok(()),
            other => other,
        }
    }

    async fn close_all(&mut self) {
        self.close_top_n().await;
        for (_, p) in std::mem::take(&mut self.publications) {
            close_publication(p).await;
        }
        for (_, s) in std::mem::take(&mut self.subscriptions) {
            close_subscription(s).await;
        }
        self.streams.clear();
        self.users.clear();
        self.clear_cross_rooms();
        self.identity = None;
    }

    async fn shutdown(&mut self) {
        if self.signal.is_some() || self.reconnecting.is_some() {
            self.leave().await.ok(); // nobody is left to tell
        }
        self.close_all().await;
    }

    fn keepalive(&self) {
        if let Some(signal) = self.signal.clone() {
            let stalled = self.stall_tx.clone();
            tokio::spawn(async move {
                // A socket that failed surfaces as a closed socket on the
                // reader side; one that stopped answering (a network
                // blackout) only as this ping's timeout.
                if let Err(ClientError::Timeout) = signal.request(Request::Ping).await {
                    // Full: a stall is already reported.
                    stalled.try_send(reconnect::connection_key(&signal)).ok();
                }
            });
        }
    }

    fn spawn_link_task(
        &self,
        link_id: LinkId,
        mut signals: LinkSignals,
    ) -> tokio::task::JoinHandle<()> {
        let tx = self.link_tx.clone();
        tokio::spawn(async move {
            while let Some(signal) = signals.recv().await {
                if tx.send(LinkUpdate { link_id, signal }).await.is_err() {
                    break;
                }
            }
        })
    }

    async fn publish(&mut self, stream: LocalStream) -> ClientResult<StreamId> {
        let signal = self.signal()?;
        if !stream.has_video() && !stream.has_audio() {
            return Err(ClientError::InvalidParameter(
                "the stream has no source".into(),
            ));
        }
        let cap_bps = self.network_bandwidth.or(stream.max_bandwidth_bps);
        let mixing = stream.audio_mixing();
        let congestion = super::congestion::link_config_for(&stream, cap_bps);
        let (link, signals) = PeerLink::publisher(self.rtc_ip, &self.ice, congestion)
            .await
            .map_err(ClientError::from)?;
        let video_info = stream.video.as_ref().map(|v| {
            let (width, height) = v.size();
            VideoInfo {
                width,
                height,
                frame_rate: v.frame_rate(),
            }
        });
        let add = async |kind: RtpCodecKind,
                         id: &str|
               -> ClientResult<(
            Arc<TrackLocalStaticSample>,
            Arc<dyn RtpSender>,
            u32,
        )> {
            let ssrc = rand::random::<u32>() | 1;
            // Video retransmits and pads on an RTX stream of its own
            // (`link::probe_padding`) where the server's answer keeps it.
            let rtx = (kind == RtpCodecKind::Video).then(|| rand::random::<u32>() & !1);
            let description =
                crate::link::track_description_with_rtx(kind, ssrc, rtx, "huddle", id);
            let track = Arc::new(
                TrackLocalStaticSample::new(Instant::now(), description)
                    .map_err(|e| ClientError::Rtc(e.to_string()))?,
            );
            let sender = link
                .pc()
                .add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
                .await
                .map_err(|e| ClientError::Rtc(e.to_string()))?;
            Ok((track, sender, ssrc))
        };
        let resolutions = stream.resolutions();
        crate::protocol::layers::check_resolutions(&resolutions)
            .map_err(|e| ClientError::InvalidParameter(e.to_string()))?;
        // A layered stream names each video track by its resolutionId, which
        // is how the server tells the layers apart.
        let video = if stream.has_video() {
            let id = resolutions
                .first()
                .map_or("video", |r| r.resolution_id.as_str());
            Some(add(RtpCodecKind::Video, id).await?)
        } else {
            None
        };
        let mut lower = Vec::new();
        for r in resolutions.iter().skip(1) {
            lower.push(add(RtpCodecKind::Video, &r.resolution_id).await?);
        }
        let audio = if stream.has_audio() {
            Some(add(RtpCodecKind::Audio, "audio").await?)
        } else {
            None
        };
        let tracks: Vec<_> = [
            video
                .as_ref()
                .map(|v| (RtpCodecKind::Video, Arc::clone(&v.0))),
            audio
                .as_ref()
                .map(|a| (RtpCodecKind::Audio, Arc::clone(&a.0))),
        ]
        .into_iter()
        .flatten()
        .chain(
            lower
                .iter()
                .map(|l| (RtpCodecKind::Video, Arc::clone(&l.0))),
        )
        .collect();
        let declares_audio = audio.is_some();
        let is_screen = stream.is_screen;
        let result = offer_publication(
            &signal,
            &link,
            declares_audio,
            video_info,
            is_screen,
            &resolutions,
        )
        .await;
        let (stream_id, link_id) = match result {
            Ok(ids) => ids,
            Err(e) => {
                link.close().await;
                return Err(e);
            }
        };
        let track_out =
            async |slot: Option<(Arc<TrackLocalStaticSample>, Arc<dyn RtpSender>, u32)>| {
                let (track, sender, ssrc) = slot?;
                let parameters = sender.get_parameters().await.ok()?;
                let payload_type = parameters.rtp_parameters.codecs.first()?.payload_type;
                Some(TrackOut {
                    track,
                    ssrc,
                    payload_type,
                })
            };
        let video_out = track_out(video).await;
        let audio_out = track_out(audio).await;
        let mut lower_out = Vec::new();
        for (slot, profile) in lower.into_iter().zip(stream.lower_resolutions.iter()) {
            if let Some(out) = track_out(Some(slot)).await {
                lower_out.push((*profile, out));
            }
        }
        let estimate = link.send_estimate().cloned();
        let pipeline = match PublishPipeline::start(
            stream,
            video_out,
            audio_out,
            estimate,
            cap_bps,
            lower_out,
            Arc::clone(&self.capture_ended),
        ) {
            Ok(p) => p,
            Err(e) => {
                link.close().await;
                signal.request(Request::Unpublish { stream_id }).await.ok(); // best effort
                return Err(ClientError::Media(e.to_string()));
            }
        };
        let link_task = self.spawn_link_task(link_id, signals);
        self.publications.insert(
            stream_id,
            Publication {
                link_id,
                link,
                pipeline,
                link_task,
                audio: declares_audio,
                video: video_info,
                is_screen,
                tracks,
                congestion,
                published_at: Instant::now(),
                resolutions,
                mixing,
                screen_audio_of: None,
            },
        );
        Ok(stream_id)
    }

    async fn unpublish(&mut self, stream_id: StreamId) -> ClientResult<()> {
        let signal = self.signal()?;
        let publication = self.publications.remove(&stream_id).ok_or_else(|| {
            ClientError::InvalidParameter(format!("stream {stream_id} is not published here"))
        })?;
        close_publication(publication).await;
        self.end_suspended_relays_of(stream_id).await;
        self.screen_audio_ended(stream_id);
        signal.request(Request::Unpublish { stream_id }).await?;
        Ok(())
    }

    async fn set_muted(
        &mut self,
        stream_id: StreamId,
        audio_muted: bool,
        video_muted: bool,
    ) -> ClientResult<()> {
        let signal = self.signal()?;
        let publication = self.publications.get(&stream_id).ok_or_else(|| {
            ClientError::InvalidParameter(format!("stream {stream_id} is not published here"))
        })?;
        publication
            .pipeline
            .audio_muted
            .store(audio_muted, Ordering::Release);
        publication
            .pipeline
            .video_muted
            .store(video_muted, Ordering::Release);
        signal
            .request(Request::UpdateStream {
                stream_id,
                audio_muted,
                video_muted,
            })
            .await?;
        Ok(())
    }

    fn identity(&self) -> ClientResult<&Identity> {
        self.identity
            .as_ref()
            .ok_or_else(|| ClientError::InvalidOperation("join a room first".into()))
    }

    async fn switch_role(&mut self, role: Role, credential: &Credential) -> ClientResult<Role> {
        let signal = self.signal()?;
        let identity = self.identity()?;
        let (ctime, signature) = signed(
            credential,
            &identity.app_id,
            &identity.room_id,
            &identity.me.user_id,
        );
        let reply = signal
            .request(Request::SwitchRole {
                role,
                ctime,
                signature,
            })
            .await?;
        let Reply::RoleSwitched { role } = reply else {
            return Err(unexpected(&reply));
        };
        if !role.can_publish() {
            // The server has unpublished them and closed their links.
            for (_, p) in std::mem::take(&mut self.publications) {
                close_publication(p).await;
            }
        }
        if let Some(identity) = &mut self.identity {
            identity.me.role = role;
            // The server renewed the session's signature with this one.
            identity.credential = credential.clone();
        }
        Ok(role)
    }

    async fn change_user_name(&mut self, user_name: String) -> ClientResult<()> {
        let signal = self.signal()?;
        self.identity()?;
        signal
            .request(Request::ChangeUserName {
                user_name: user_name.clone(),
            })
            .await?;
        if let Some(identity) = &mut self.identity {
            identity.me.user_name = user_name;
        }
        Ok(())
    }

    async fn subscribe(
        &mut self,
        stream_id: StreamId,
        options: SubscribeOptions,
    ) -> ClientResult<RemoteStream> {
        self.subscribe_into(stream_id, options, None).await
    }

    /// Subscribes; a new link feeds `into` when given (the same
    /// [`RemoteStream`] the application holds), else a new receiver.
    async fn subscribe_into(
        &mut self,
        stream_id: StreamId,
        options: SubscribeOptions,
        into: Option<Receiver>,
    ) -> ClientResult<RemoteStream> {
        let signal = self.signal()?;
        if !options.audio && !options.video {
            return Err(ClientError::InvalidParameter(
                "subscribe to audio, video or both".into(),
            ));
        }
        let subscribed_at = Instant::now();
        let reply = signal
            .request(Request::Subscribe {
                stream_id,
                audio: options.audio,
                video: options.video,
                resolution_id: None,
            })
            .await?;
        let (link_id, offer) = match reply {
            Reply::Ok => {
                // Already subscribed: the server changed what it forwards.
                return self
                    .subscriptions
                    .get(&stream_id)
                    .map(|s| s.stream.clone())
                    .ok_or_else(|| {
                        ClientError::InvalidOperation("subscription state out of sync".into())
                    });
            }
            Reply::SubscribeOffer { link_id, sdp, .. } => (link_id, sdp),
            other => return Err(unexpected(&other)),
        };
        let (link, signals) = PeerLink::subscriber(self.rtc_ip, &self.ice)
            .await
            .map_err(ClientError::from)?;
        let answer = match link.answer(offer).await {
            Ok(answer) => answer,
            Err(e) => {
                link.close().await;
                // Best effort: the server drops its leg, so a retry starts afresh.
                let stop = Request::Unsubscribe {
                    stream_id,
                    audio: true,
                    video: true,
                };
                signal.request(stop).await.ok();
                return Err(ClientError::from(e));
            }
        };
        let mut receiver = into.unwrap_or_else(|| Receiver::new(self.decode));
        receiver
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .subscribed_at = Some(subscribed_at);
        let info = self
            .streams
            .get(&stream_id)
            .cloned()
            .or_else(|| self.cross_rooms.stream(stream_id))
            .unwrap_or_else(|| StreamInfo {
                stream_id,
                user_id: crate::protocol::UserId(String::new()),
                audio: options.audio,
                video: None,
                audio_muted: false,
                video_muted: false,
                is_screen: false,
                resolutions: Vec::new(),
            });
        receiver.frames = self.frame_logs.attach(stream_id, &info.user_id.0);
        let stream = RemoteStream {
            frames: receiver.frames.clone(),
            info,
            video: Arc::clone(&receiver.video),
            audio_rx: receiver.audio_rx.clone(),
            stats: Arc::clone(&receiver.stats),
            ended: Arc::clone(&receiver.ended),
            tap: Arc::clone(&receiver.tap),
        };
        let tasks = vec![self.spawn_link_task(link_id, signals)];
        self.subscriptions.insert(
            stream_id,
            Subscription {
                link_id,
                link,
                options,
                paused: false,
                stream: stream.clone(),
                receiver,
                tasks,
            },
        );
        if let Err(e) = signal
            .request(Request::Answer {
                link_id,
                sdp: answer,
            })
            .await
        {
            if let Some(s) = self.subscriptions.remove(&stream_id) {
                close_subscription(s).await;
            }
            return Err(e);
        }
        Ok(stream)
    }

    async fn unsubscribe(
        &mut self,
        stream_id: StreamId,
        stop: SubscribeOptions,
    ) -> ClientResult<()> {
        let signal = self.signal()?;
        signal
            .request(Request::Unsubscribe {
                stream_id,
                audio: stop.audio,
                video: stop.video,
            })
            .await?;
        if stop.audio
            && stop.video
            && let Some(s) = self.subscriptions.remove(&stream_id)
        {
            close_subscription(s).await;
        }
        Ok(())
    }

    async fn on_signal(&mut self, event: SignalEvent) {
        match event {
            SignalEvent::Event(event) => self.on_server_event(event).await,
            SignalEvent::Error(err) => self.emit(RoomEvent::Error {
                code: err.code,
                message: err.message,
            }),
            SignalEvent::Closed(why) => {
                // A late report about a connection already replaced is not
                // about the current one.
                if self.signal.as_ref().is_some_and(|s| s.is_closed()) {
                    tracing::info!("signalling closed: {why}");
                    self.connection_lost().await;
                }
            }
        }
    }

    async fn on_server_event(&mut self, event: Event) {
        match event {
            Event::LayersWanted {
                stream_id,
                resolution_ids,
            } => self.on_layers_wanted(stream_id, &resolution_ids),
            Event::DownlinkLoss {
                stream_id,
                loss_percent,
            } => {
                // Unknown streams are ignored; the value is bounded there.
                if let Some(publication) = self.publications.get(&stream_id) {
                    publication.pipeline.set_downlink_loss(loss_percent);
                }
            }
            Event::PeerJoin { user } => {
                self.users.insert(user.user_id.clone(), user.clone());
                self.emit(RoomEvent::PeerJoin(user))
            }
            Event::PeerLeave { user_id, reason } => {
                self.users.remove(&user_id);
                self.emit(RoomEvent::PeerLeave { user_id, reason })
            }
            Event::StreamAdded { stream } => {
                self.streams.insert(stream.stream_id, stream.clone());
                self.restore_subscription(&stream).await;
                self.emit(RoomEvent::StreamAdded(stream));
            }
            Event::StreamRemoved { stream_id, user_id } => {
                self.streams.remove(&stream_id);
                if let Some(s) = self.subscriptions.remove(&stream_id) {
                    close_subscription(s).await;
                }
                self.emit(RoomEvent::StreamRemoved { stream_id, user_id });
            }
            Event::StreamUpdated { stream } => {
                let before = self.streams.insert(stream.stream_id, stream.clone());
                self.emit(RoomEvent::StreamUpdated(stream.clone()));
                self.emit_mute_changes(before.as_ref(), &stream);
            }
            Event::StreamSubscribed {
                stream_id,
                audio,
                video,
                ..
            } => {
                self.on_video_forwarded(stream_id, video);
                self.emit(RoomEvent::StreamSubscribed {
                    stream_id,
                    audio,
                    video,
                })
            }
            Event::PeerRoleChanged { user_id, role } => {
                if let Some(user) = self.users.get_mut(&user_id) {
                    user.role = role;
                }
                self.emit(RoomEvent::PeerRoleChanged { user_id, role })
            }
            Event::RemoteUserNameChanged { user_id, user_name } => {
                if let Some(user) = self.users.get_mut(&user_id) {
                    user.user_name.clone_from(&user_name);
                }
                self.emit(RoomEvent::RemoteUserNameChanged { user_id, user_name })
            }
            Event::ClientBanned { reason } => {
                if reconnect::comes_back(reason) && self.may_reconnect() {
                    // The server is going down (restarting): get back in
                    // once it is up again.
                    if let Some(signal) = self.signal.take() {
                        drop(signal); // its reader reports the close: ignored
                    }
                    self.connection_lost().await;
                    return;
                }
                self.signal = None;
                self.rejoin = None;
                self.close_all().await;
                self.emit(RoomEvent::ClientBanned { reason });
                self.set_state_because(ConnectionState::Disconnected, Some(reason));
            }
            Event::ProgramChanged { program, by } => {
                self.emit(RoomEvent::ProgramChanged { program, by });
            }
            Event::NodesChanged { nodes } => self.nodes_changed(&nodes),
            Event::VolumeIndicator { user_volume_infos } => {
                self.emit(RoomEvent::VolumeIndicator(user_volume_infos));
            }
            Event::CrossRoom { room_id, event } => self.on_cross_room_event(room_id, *event).await,
            Event::CrossRoomRelayStopped {
                room_id,
                reason,
                stream_id,
            } => self.on_cross_room_stopped(room_id, reason, stream_id).await,
            Event::SignatureExpired {
                code,
                message,
                ctime,
            } => self.on_signature_expired(code, message, ctime),
            Event::Candidate { link_id, candidate } => {
                let link = self
                    .publications
                    .values()
                    .find(|p| p.link_id == link_id)
                    .map(|p| &p.link)
                    .or_else(|| {
                        self.subscriptions
                            .values()
                            .find(|s| s.link_id == link_id)
                            .map(|s| &s.link)
                    })
                    .or_else(|| self.top_n_link(link_id));
                if let Some(link) = link
                    && let Err(e) = link.add_candidate(candidate).await
                {
                    tracing::debug!("remote candidate refused: {e}");
                }
            }
        }
    }

    async fn on_link(&mut self, update: LinkUpdate) {
        let LinkUpdate { link_id, signal } = update;
        match signal {
            LinkSignal::Track(track) => {
                if self.top_n_track(link_id, Arc::clone(&track)) {
                    return;
                }
                if let Some(s) = self
                    .subscriptions
                    .values_mut()
                    .find(|s| s.link_id == link_id)
                {
                    s.tasks
                        .push(tokio::spawn(s.receiver.clone().run_track(track)));
                }
            }
            LinkSignal::Candidate(candidate) => {
                if let Some(signal) = self.signal.clone() {
                    tokio::spawn(async move {
                        // Non-trickle SDP already carries our candidates; a late
                        // one that fails to arrive is not fatal.
                        signal
                            .request(Request::Candidate { link_id, candidate })
                            .await
                            .ok();
                    });
                }
            }
            LinkSignal::State(state) => {
                tracing::debug!(link = link_id.0, "link state {state}");
                self.signal_log
                    .note_link_state(link_id.0, &state.to_string());
                if state == RTCPeerConnectionState::Connected
                    && let Some(p) = self.publications.values().find(|p| p.link_id == link_id)
                {
                    p.pipeline.set_connected();
                }
                // Disconnected or failed: an ICE restart brings it back
                // (`ice_restart.rs`), a rebuild only if restarts do not.
                self.recovery_on_state(link_id, state).await;
            }
        }
    }
}

/// Offers `link` to the server as a publication of these media (`publish`)
/// and applies the server's answer; returns the stream's and the link's ids.
async fn offer_publication(
    signal: &SignalConnection,
    link: &PeerLink,
    audio: bool,
    video: Option<VideoInfo>,
    is_screen: bool,
    resolutions: &[crate::protocol::VideoResolution],
) -> ClientResult<(StreamId, LinkId)> {
    let offer = link.create_offer().await.map_err(ClientError::from)?;
    let reply = signal
        .request(Request::Publish {
            audio,
            video,
            sdp: offer,
            is_screen,
            resolutions: resolutions.to_vec(),
        })
        .await?;
    let Reply::Published {
        stream_id,
        link_id,
        sdp,
    } = reply
    else {
        return Err(unexpected(&reply));
    };
    link.apply_answer(sdp)
        .await
        .map_err(|e| ClientError::Rtc(e.to_string()))?;
    Ok((stream_id, link_id))
}

async fn close_publication(p: Publication) {
    p.pipeline.stop().await;
    p.link_task.abort();
    p.link.close().await;
}

async fn close_subscription(s: Subscription) {
    for task in s.tasks {
        task.abort();
    }
    s.link.close().await;
    s.stream.ended.store(true, Ordering::Release);
}

async fn close_signal(signal: Arc<SignalConnection>) {
    match Arc::try_unwrap(signal) {
        Ok(signal) => signal.close().await,
        Err(shared) => drop(shared), // a ping in flight holds it; Drop aborts the tasks
    }
}

/// The `(ctime, signature)` a join or a role switch presents: the given
/// signature, or one made now with the app key.
fn signed(
    credential: &Credential,
    app_id: &AppId,
    room_id: &RoomId,
    user_id: &crate::protocol::UserId,
) -> (u64, String) {
    match credential {
        Credential::Signature { ctime, signature } => (*ctime, signature.clone()),
        Credential::AppKey { key, valid_for } => {
            let ctime = auth::now_unix() + valid_for.as_secs();
            let signature = auth::sign(
                key,
                app_id.as_str(),
                room_id.as_str(),
                user_id.as_str(),
                ctime,
            );
            (ctime, signature)
        }
        Credential::DirectorKey { key, valid_for } => {
            let ctime = auth::now_unix() + valid_for.as_secs();
            let signature = auth::sign_grant(
                key,
                app_id.as_str(),
                room_id.as_str(),
                user_id.as_str(),
                ctime,
                auth::Grant::Director,
            );
            (ctime, signature)
        }
    }
}

fn unexpected(reply: &Reply) -> ClientError {
    ClientError::Rtc(format!("unexpected reply from the server: {reply:?}"))
}
