//! The egress hub: every subscriber leg as a sans-IO `rtc` peer connection,
//! all driven by one run-to-completion loop on **one shared UDP socket**.
//!
//! Why: with one webrtc-rs `PeerConnection` per subscription, every forwarded
//! packet hopped through a per-subscriber queue and writer task, a channel into
//! that connection's driver task, and its own `sendmsg`; a profile at 200
//! subscribers put 92 % of the server's CPU in those drivers (see
//! `docs/PERFORMANCE.md` §3). Here the hub loop owns the `rtc` cores directly:
//!
//! * An ingress forward task hands each packet to the hub **once**
//!   ([`HubPacket`], bounded channel [`HUB_MEDIA_CAPACITY`]). The hub rewrites
//!   it per subscriber and writes it into each subscriber's core in the same
//!   loop iteration: no per-subscriber task, queue or wake-up.
//! * Outgoing datagrams of all legs are collected and flushed with `sendmmsg`
//!   ([`SEND_BATCH`] messages per syscall) on the shared socket; a run of
//!   same-size datagrams to one subscriber (a video frame's fragments) is one
//!   UDP GSO message (`UDP_SEGMENT`), so it crosses the IP stack once.
//!   `HUDDLE_EGRESS_GSO=0` turns GSO off.
//! * Inbound datagrams are demultiplexed by source address. A source seen for
//!   the first time is matched either because a leg already sent to it (our own
//!   connectivity checks) or, for a STUN request, by the ICE ufrag in its
//!   USERNAME attribute (RFC 8445 §7.2.2: `ours:theirs`).
//! * Once a leg is connected, the hub seals its media itself with the leg's
//!   SRTP key (recovered by [`KeyCapture`], sealed by [`DirectEgress`]) and the
//!   core sees no media at all: it keeps ICE, DTLS and RTCP. The hub answers
//!   NACKs from its own history and writes sender reports into the core
//!   (`super::direct`). A leg whose key is not recovered, or every leg with
//!   `HUDDLE_EGRESS_SRTP=core`, writes media through the core instead.
//! * Each leg registers only what an egress needs: NACK responder and sender
//!   reports (used by the fallback only) and [`RtcpTap`] (so PLI/FIR and NACKs
//!   reach us). No TWCC, no simulcast header extensions, no NACK generator or
//!   receiver reports (an egress receives no media), and no `RtcpStats` (the
//!   server never reads an egress leg's RTT/loss; the client still computes
//!   its own).
//! * A panic while the loop works on one leg drops that leg only
//!   ([`HubLoop::step`]).
//!
//! The hub runs on its own OS thread with a single-threaded tokio runtime
//! (`HUDDLE_HUB_THREAD=0`: a task on the caller's runtime instead); it ends
//! when the `Sfu` and every leg's handle are gone.
//!
//! Invariants: a leg is in a fan-out list only while it is connected (DTLS up)
//! and answered (payload types known), exactly as in the per-link design,
//! because packets written earlier would leave sequence gaps the subscriber
//! NACKs forever. A leg's `peer_connections` gauge lives inside the leg, so it
//! falls only when the hub has really dropped the connection. A slow subscriber
//! cannot stall others: nothing here waits on a subscriber (a datagram the
//! kernel refuses is dropped and counted), and a subscriber that does not drain
//! its socket loses its own packets in its own receive buffer.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{NackResponderBuilder, Registry, SenderReportBuilder, Slot};
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp::Packet;
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::rtp_transceiver::rtp_sender::{RTCPFeedback, RTCRtpCodecParameters, RtpCodecKind};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use tokio::sync::{mpsc, oneshot};

use super::direct::{DirectEgress, SendReport, SentHistory};
use super::media::PublishedMedia;
use super::rewrite::Rewriter;
use super::srtp_keys::KeyCapture;
use super::{SfuError, is_keyframe_request, random_ssrc, tell};
use crate::link::rtcp_tap::{RTCP_TAP_SLOT, RtcpTap};
use crate::link::{
    H264_PAYLOAD_TYPE, LinkError, OPUS_PAYLOAD_TYPE, h264_codec, opus_codec, track_description,
};
use crate::protocol::{IceCandidate, LinkId};
use crate::server::metrics::{GaugeGuard, Metrics};
use crate::server::inbox::{LinkState, SessionInbox};

/// Packets queued from all ingress forward tasks to the hub (about 1 s of
/// 40 streams of 720p video). When full, the newest packet is dropped for all
/// subscribers of its stream: the hub itself is behind.
pub const HUB_MEDIA_CAPACITY: usize = 8192;

/// Commands queued from sessions to the hub (create, answer, close...). Senders
/// await when it is full, except `set_forwarding`, which is synchronous and
/// logs a dropped command (it needs 1024 commands queued in front of it).
const HUB_COMMAND_CAPACITY: usize = 1024;

/// Ingress packets the hub takes off its queue per wake-up.
const MEDIA_BATCH: usize = 64;

/// Datagrams per `sendmmsg` call.
const SEND_BATCH: usize = 64;

/// Inbound datagrams read per wake-up before the loop looks at its other inputs.
const READ_BATCH: usize = 256;

/// Socket buffers asked for on the shared socket (the kernel caps them at
/// `net.core.{w,r}mem_max`). One socket now carries what 200 sockets did.
const SOCKET_BUFFER_BYTES: usize = 8 << 20;

/// Most datagrams in one GSO message (the kernel's `UDP_MAX_SEGMENTS` is 64
/// on older kernels, 128 on newer).
const GSO_MAX_SEGMENTS: usize = 64;

/// Most bytes in one GSO message (a UDP datagram's payload limit).
const GSO_MAX_BYTES: usize = 65_000;

/// Largest datagram we expect to receive.
const RECV_BUFFER_BYTES: usize = 2048;

/// ICE settings as in `link::PeerLink::new` (see there for why).
const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(10);
const ICE_MAX_BINDING_REQUESTS: u16 = 140;

/// A timer that is already due is handled at most once per this interval per
/// leg, so a core whose deadline does not advance cannot spin the loop.
const MIN_TIMER_INTERVAL: Duration = Duration::from_millis(1);

/// How often the hub looks for sender reports due on directly sending tracks.
const REPORT_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// One ingress RTP packet for the hub to fan out.
pub struct HubPacket {
    /// [`PublishedMedia::id`] of the stream.
    pub media: u64,
    /// Video (else audio).
    pub video: bool,
    /// The packet, header extensions already stripped.
    pub packet: Packet,
}

/// A leg's id inside the hub.
pub type LegId = u64;

/// What a session asks of the hub.
enum Command {
    Create(
        Box<CreateLeg>,
        oneshot::Sender<Result<(LegId, String), SfuError>>,
    ),
    Answer(LegId, String, oneshot::Sender<Result<(), SfuError>>),
    Candidate(LegId, IceCandidate, oneshot::Sender<Result<(), SfuError>>),
    Forwarding(LegId, bool, bool),
    Close(LegId, oneshot::Sender<()>),
    /// Makes the hub panic while working on a leg (tests of [`HubLoop::step`]).
    #[cfg(test)]
    Panic(LegId),
}

/// Everything needed to create a leg.
pub struct CreateLeg {
    /// The subscription's link id (for events to the session).
    pub link_id: LinkId,
    /// The stream to forward.
    pub media: Arc<PublishedMedia>,
    /// SDP stream label (msid).
    pub stream_label: String,
    /// Offer a video track.
    pub video: bool,
    /// Offer an audio track.
    pub audio: bool,
    /// Forward audio from the start.
    pub want_audio: bool,
    /// Forward video from the start.
    pub want_video: bool,
    /// Where link events go.
    pub inbox: SessionInbox,
    /// The leg's `peer_connections` gauge: dropped with the leg.
    pub counted: GaugeGuard,
}

/// Handle to the hub. Cheap to clone; the hub ends when every handle is
/// gone.
#[derive(Clone)]
pub struct Hub {
    commands: mpsc::Sender<Command>,
    media: mpsc::Sender<HubPacket>,
}

fn internal(what: &'static str) -> impl FnOnce(rtc::shared::error::Error) -> SfuError {
    move |e| {
        SfuError::Internal(LinkError::Rtc {
            what,
            detail: e.to_string(),
        })
    }
}

fn hub_gone() -> SfuError {
    SfuError::Internal(LinkError::Rtc {
        what: "egress hub",
        detail: "stopped".into(),
    })
}

/// How the hub runs; [`HubConfig::from_env`] reads the switches kept for A/B
/// measurements.
#[derive(Debug, Clone, Copy)]
pub struct HubConfig {
    /// Its own OS thread (`HUDDLE_HUB_THREAD=0`: a task on the caller's runtime).
    pub own_thread: bool,
    /// UDP GSO for runs of datagrams (`HUDDLE_EGRESS_GSO=0`: off).
    pub gso: bool,
    /// Legs seal their own media when their keys are recovered
    /// (`HUDDLE_EGRESS_SRTP=core`: all media through the `rtc` pipeline).
    pub direct: bool,
}

impl HubConfig {
    /// The defaults, unless the environment says otherwise.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok();
        Self {
            own_thread: var("HUDDLE_HUB_THREAD").as_deref() != Some("0"),
            gso: var("HUDDLE_EGRESS_GSO").as_deref() != Some("0"),
            direct: var("HUDDLE_EGRESS_SRTP").as_deref() != Some("core"),
        }
    }
}

impl Hub {
    /// [`Hub::start_with`] the configuration from the environment.
    pub fn start(ip: IpAddr, metrics: Arc<Metrics>) -> std::io::Result<Self> {
        Self::start_with(ip, metrics, HubConfig::from_env())
    }

    /// Binds the shared socket on `ip` and starts the hub (on its own thread
    /// unless told otherwise, which needs a tokio runtime to spawn on).
    pub fn start_with(
        ip: IpAddr,
        metrics: Arc<Metrics>,
        config: HubConfig,
    ) -> std::io::Result<Self> {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(SocketAddr::new(ip, 0)),
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )?;
        // Best effort: the kernel caps these at its maxima.
        socket.set_send_buffer_size(SOCKET_BUFFER_BYTES).ok();
        socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES).ok();
        socket.set_nonblocking(true)?;
        socket.bind(&SocketAddr::new(ip, 0).into())?;
        let socket: std::net::UdpSocket = socket.into();
        let local_addr = socket.local_addr()?;
        tracing::debug!(%local_addr, "egress hub listening");
        let (commands, command_rx) = mpsc::channel(HUB_COMMAND_CAPACITY);
        let (media, media_rx) = mpsc::channel(HUB_MEDIA_CAPACITY);
        let hub = Hub { commands, media };
        let media_open = hub.media.clone();
        let start = move |socket: tokio::net::UdpSocket| HubLoop {
            fd: socket.as_raw_fd(),
            socket,
            local_addr,
            legs: HashMap::new(),
            next_leg: 1,
            by_addr: HashMap::new(),
            by_ufrag: HashMap::new(),
            fanouts: HashMap::new(),
            dirty: Vec::new(),
            out: Vec::new(),
            stats: HubStats::default(),
            gso: config.gso,
            direct: config.direct,
            next_reports: Instant::now(),
            current: None,
            metrics,
            _media_open: media_open,
        };
        // Its own OS thread and single-threaded runtime by default: measured
        // ~15 % less CPU per forwarded packet than a task on the shared
        // multi-threaded runtime (PERFORMANCE.md §3). `HUDDLE_HUB_THREAD=0`
        // runs it as a task instead.
        if config.own_thread {
            std::thread::Builder::new()
                .name("egress-hub".into())
                .spawn(move || {
                    let runtime = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(runtime) => runtime,
                        Err(e) => {
                            tracing::error!("egress hub runtime: {e}");
                            return;
                        }
                    };
                    runtime.block_on(async move {
                        match tokio::net::UdpSocket::from_std(socket) {
                            Ok(socket) => start(socket).run(command_rx, media_rx).await,
                            Err(e) => tracing::error!("egress hub socket: {e}"),
                        }
                    });
                })?;
        } else {
            let socket = tokio::net::UdpSocket::from_std(socket)?;
            tokio::spawn(start(socket).run(command_rx, media_rx));
        }
        Ok(hub)
    }

    /// Where ingress forward tasks put packets.
    pub fn media_input(&self) -> mpsc::Sender<HubPacket> {
        self.media.clone()
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, SfuError>>) -> Command,
    ) -> Result<T, SfuError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.map_err(|_| hub_gone())?;
        rx.await.map_err(|_| hub_gone())?
    }

    /// Creates a leg and returns it with its SDP offer.
    pub async fn create(&self, leg: CreateLeg) -> Result<(LegId, String), SfuError> {
        self.ask(|tx| Command::Create(Box::new(leg), tx)).await
    }

    /// Applies the subscriber's answer.
    pub async fn apply_answer(&self, leg: LegId, sdp: String) -> Result<(), SfuError> {
        self.ask(|tx| Command::Answer(leg, sdp, tx)).await
    }

    /// Adds a trickled remote candidate.
    pub async fn add_candidate(&self, leg: LegId, c: IceCandidate) -> Result<(), SfuError> {
        self.ask(|tx| Command::Candidate(leg, c, tx)).await
    }

    /// Starts/stops forwarding audio and video to a leg.
    pub fn set_forwarding(&self, leg: LegId, audio: bool, video: bool) {
        if self
            .commands
            .try_send(Command::Forwarding(leg, audio, video))
            .is_err()
        {
            tracing::warn!(leg, "egress hub busy or gone: forwarding change dropped");
        }
    }

    /// Closes a leg without waiting (for `Drop` paths).
    pub fn close_soon(&self, leg: LegId) {
        let (tx, _) = oneshot::channel();
        if self.commands.try_send(Command::Close(leg, tx)).is_err() {
            tracing::warn!(leg, "egress hub busy or gone: leg not closed on drop");
        }
    }

    /// Closes a leg; returns once the hub has dropped it.
    pub async fn close(&self, leg: LegId) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Close(leg, tx)).await.is_ok() {
            // Err: the hub stopped, and with it every leg.
            rx.await.ok();
        }
    }
}

/// How the hub's work batches up, logged at debug level every
/// [`HubStats::PERIOD`]: loop wake-ups, ingress packets, datagrams, GSO/plain
/// messages and `sendmmsg` calls.
#[derive(Default)]
struct HubStats {
    since: Option<Instant>,
    wakes: u64,
    ingress: u64,
    datagrams: u64,
    messages: u64,
    syscalls: u64,
}

impl HubStats {
    const PERIOD: Duration = Duration::from_secs(10);

    fn maybe_log(&mut self, legs: usize) {
        let now = Instant::now();
        let since = *self.since.get_or_insert(now);
        if now.duration_since(since) < Self::PERIOD {
            return;
        }
        tracing::debug!(
            legs,
            wakes = self.wakes,
            ingress = self.ingress,
            datagrams = self.datagrams,
            messages = self.messages,
            syscalls = self.syscalls,
            "egress hub batching over the last {:?}",
            Self::PERIOD
        );
        *self = HubStats {
            since: Some(now),
            ..HubStats::default()
        };
    }
}

/// One forwarded track of a leg.
struct LegTrack {
    sender: RTCRtpSenderId,
    ssrc: u32,
    clock_rate: u32,
    rewriter: Option<Rewriter>,
    enabled: bool,
    /// Sent packets for NACKs (video, sent directly: see [`Leg::direct`]).
    history: Option<SentHistory>,
    /// Sender-report state (sent directly).
    report: SendReport,
}

/// One subscriber connection.
struct Leg {
    link_id: LinkId,
    pc: RTCPeerConnection,
    ufrag: String,
    media: Arc<PublishedMedia>,
    inbox: SessionInbox,
    video: Option<LegTrack>,
    audio: Option<LegTrack>,
    connected: bool,
    registered: bool,
    failed: bool,
    /// Next time the core wants `handle_timeout`.
    deadline: Option<Instant>,
    last_timer: Option<Instant>,
    /// In `HubLoop::dirty` (has writes to flush).
    dirty: bool,
    /// Needs its events and reads polled (something other than media went in).
    poll_all: bool,
    /// Its core may have writes (something went into it).
    core_writes: bool,
    addrs: Vec<SocketAddr>,
    /// Records the SRTP key derivation of this leg's handshake.
    keys: Arc<KeyCapture>,
    /// Media is sealed by the hub and bypasses the core (module docs); set
    /// when the leg connects, if its keys were recovered.
    direct: Option<DirectEgress>,
    /// Where the core sends DTLS and RTCP: the selected candidate pair.
    media_dest: Option<SocketAddr>,
    /// Sealed datagrams for `media_dest`, sent at the next flush.
    pending: Vec<BytesMut>,
    _direct_counted: Option<GaugeGuard>,
    _counted: GaugeGuard,
}

impl Leg {
    /// Moves the sealed datagrams to `out`, addressed to the selected pair (a
    /// leg only seals once it knows that address).
    fn send_pending(&mut self, out: &mut Vec<(SocketAddr, BytesMut)>) {
        match self.media_dest {
            Some(dest) => out.extend(self.pending.drain(..).map(|d| (dest, d))),
            None => self.pending.clear(),
        }
    }
}

#[derive(Default)]
struct Fanout {
    video: Vec<LegId>,
    audio: Vec<LegId>,
}

struct HubLoop {
    socket: tokio::net::UdpSocket,
    fd: RawFd,
    local_addr: SocketAddr,
    legs: HashMap<LegId, Leg>,
    next_leg: LegId,
    by_addr: HashMap<SocketAddr, LegId>,
    by_ufrag: HashMap<String, LegId>,
    fanouts: HashMap<u64, Fanout>,
    dirty: Vec<LegId>,
    out: Vec<(SocketAddr, BytesMut)>,
    /// Counters for the periodic debug line (see [`HubStats`]).
    stats: HubStats,
    /// Whether runs to one destination go as one UDP GSO message; turned off
    /// for good if the kernel refuses one.
    gso: bool,
    /// Whether legs seal their media themselves when they can.
    direct: bool,
    /// When directly sending tracks are next checked for due sender reports.
    next_reports: Instant,
    /// The leg being worked on, for [`HubLoop::step`] to blame on a panic.
    current: Option<LegId>,
    metrics: Arc<Metrics>,
    /// Keeps the media channel open while the hub runs, so `recv_many` never
    /// returns "closed" in a loop.
    _media_open: mpsc::Sender<HubPacket>,
}

fn random_token(len: usize) -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// The ICE ufrag of the receiver (us) in a STUN binding request's USERNAME
/// (`ours:theirs`, RFC 8445 §7.2.2), if `datagram` is one.
fn stun_local_ufrag(datagram: &[u8]) -> Option<&str> {
    const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
    const USERNAME: u16 = 0x0006;
    if datagram.len() < 20 || datagram[0] & 0xC0 != 0 || datagram.get(4..8)? != MAGIC_COOKIE {
        return None;
    }
    let mut at = 20;
    while let Some(head) = datagram.get(at..at + 4) {
        let kind = u16::from_be_bytes([head[0], head[1]]);
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let value = datagram.get(at + 4..at + 4 + len)?;
        if kind == USERNAME {
            return std::str::from_utf8(value).ok()?.split(':').next();
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

fn leg_track(leg: &mut Leg, video: bool) -> Option<&mut LegTrack> {
    if video {
        leg.video.as_mut()
    } else {
        leg.audio.as_mut()
    }
}

/// Something went into the leg's core: poll its writes (and, with
/// `poll_all`, its events, reads and timer) at the next service.
fn mark(dirty: &mut Vec<LegId>, id: LegId, leg: &mut Leg, poll_all: bool) {
    leg.poll_all |= poll_all;
    leg.core_writes = true;
    mark_pending(dirty, id, leg);
}

/// The leg has sealed datagrams to send; its core has nothing new.
fn mark_pending(dirty: &mut Vec<LegId>, id: LegId, leg: &mut Leg) {
    if !leg.dirty {
        leg.dirty = true;
        dirty.push(id);
    }
}

impl HubLoop {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut media: mpsc::Receiver<HubPacket>,
    ) {
        let mut batch = Vec::with_capacity(MEDIA_BATCH);
        let mut buf = vec![0u8; RECV_BUFFER_BYTES];
        loop {
            let reports = (self.metrics.direct_egress_legs.get() > 0).then_some(self.next_reports);
            let deadline = self
                .legs
                .values()
                .filter_map(|l| l.deadline)
                .chain(reports)
                .min()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.step("a command", |hub| hub.command(command)),
                    None => break,
                },
                n = media.recv_many(&mut batch, MEDIA_BATCH) => {
                    self.stats.ingress += n as u64;
                    if n > 0 {
                        self.step("fan-out", |hub| hub.fan_out(&mut batch));
                        batch.clear();
                    }
                }
                ready = self.socket.readable() => {
                    if ready.is_ok() {
                        self.step("a read", |hub| hub.read_socket(&mut buf));
                    }
                }
                () = tokio::time::sleep_until(deadline.into()) => {
                    self.step("a timer", Self::timeouts);
                }
            }
            self.stats.wakes += 1;
            self.step("service", Self::service);
            self.stats.maybe_log(self.legs.len());
        }
        // Every handle is gone: close what is left (its gauges fall with it).
        let ids: Vec<LegId> = self.legs.keys().copied().collect();
        for id in ids {
            self.close_leg(id);
        }
        self.flush();
    }

    /// Runs one step of the loop. A panic in it (an `rtc` core fed something
    /// it did not expect, or a bug of ours) costs only the leg being worked on
    /// (`self.current`), which is dropped and reported failed; every other leg
    /// carries on.
    fn step(&mut self, what: &'static str, f: impl FnOnce(&mut Self)) {
        self.current = None;
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)));
        if let Err(panic) = run {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            self.recover(what, &message);
        }
        self.current = None;
    }

    fn recover(&mut self, what: &'static str, message: &str) {
        self.metrics.egress_panics.fetch_add(1, Ordering::Relaxed);
        match self.current.take() {
            Some(id) => {
                tracing::error!(
                    leg = id,
                    "egress leg panicked in {what}: {message}; dropping it"
                );
                self.drop_poisoned(id);
            }
            None => tracing::error!("egress hub panicked in {what}: {message}"),
        }
        // The step stopped midway: look at every leg again.
        self.dirty.clear();
        for (&id, leg) in self.legs.iter_mut() {
            leg.dirty = false;
            mark(&mut self.dirty, id, leg, true);
        }
    }

    /// Forgets a leg whose core panicked, without calling into it again.
    fn drop_poisoned(&mut self, id: LegId) {
        let Some(mut leg) = self.legs.remove(&id) else {
            return;
        };
        unregister(&mut self.fanouts, id, &mut leg);
        self.forget_routes(id, &leg);
        let report = (!leg.failed).then(|| (leg.inbox.clone(), leg.link_id));
        // Its state may be half-updated: do not run its destructor's code
        // unguarded either. Dropped (gauges released) before it is reported.
        let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(leg)));
        if dropped.is_err() {
            tracing::error!(leg = id, "egress leg panicked while being dropped");
        }
        if let Some((inbox, link_id)) = report {
            tell(&inbox, link_id, LinkState::Failed);
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Create(request, reply) => {
                let result = self.create(*request);
                if let Err(Ok((id, _))) = reply.send(result) {
                    // The requester gave up waiting: nobody owns the leg.
                    self.close_leg(id);
                }
            }
            Command::Answer(id, sdp, reply) => {
                let result = self.answer(id, sdp);
                reply.send(result).ok(); // requester gone: nothing to report to
            }
            Command::Candidate(id, candidate, reply) => {
                self.current = Some(id);
                let result = match self.legs.get_mut(&id) {
                    Some(leg) => {
                        let r = leg
                            .pc
                            .add_remote_candidate(RTCIceCandidateInit {
                                candidate: candidate.candidate,
                                sdp_mid: candidate.sdp_mid,
                                sdp_mline_index: candidate.sdp_mline_index,
                                ..Default::default()
                            })
                            .map_err(|e| SfuError::Candidate(LinkError::InvalidSdp(e.to_string())));
                        mark(&mut self.dirty, id, leg, true);
                        r
                    }
                    None => Err(hub_gone()),
                };
                reply.send(result).ok(); // requester gone: nothing to report to
            }
            Command::Forwarding(id, audio, video) => {
                if let Some(leg) = self.legs.get_mut(&id) {
                    for (track, on) in [(leg.audio.as_mut(), audio), (leg.video.as_mut(), video)] {
                        if let Some(track) = track {
                            if track.enabled
                                && !on
                                && let Some(r) = track.rewriter.as_mut()
                            {
                                r.pause();
                            }
                            track.enabled = on;
                        }
                    }
                }
            }
            #[cfg(test)]
            Command::Panic(id) => {
                self.current = Some(id);
                panic!("injected by a test");
            }
            Command::Close(id, reply) => {
                self.close_leg(id);
                self.flush();
                reply.send(()).ok(); // requester gone: it was closing anyway
            }
        }
    }

    fn create(&mut self, request: CreateLeg) -> Result<(LegId, String), SfuError> {
        let now = Instant::now();
        let mut media_engine = MediaEngine::default();
        for (codec, payload_type, kind) in [
            (h264_codec(), H264_PAYLOAD_TYPE, RtpCodecKind::Video),
            (opus_codec(), OPUS_PAYLOAD_TYPE, RtpCodecKind::Audio),
        ] {
            media_engine
                .register_codec(
                    RTCRtpCodecParameters {
                        rtp_codec: codec,
                        payload_type,
                    },
                    kind,
                )
                .map_err(internal("registering codecs"))?;
        }
        // The subscriber NACKs and asks for keyframes; we answer NACKs from the
        // responder's history and relay PLIs.
        for parameter in ["", "pli"] {
            media_engine.register_feedback(
                RTCPFeedback {
                    typ: "nack".to_owned(),
                    parameter: parameter.to_owned(),
                },
                RtpCodecKind::Video,
            );
        }
        let registry = Registry::new()
            .with(Slot::NackResponder, NackResponderBuilder::new().build())
            .with(Slot::SenderReport, SenderReportBuilder::new().build())
            .with(Slot::from(RTCP_TAP_SLOT), RtcpTap::with_nacks());
        let ufrag = random_token(16);
        let keys = KeyCapture::new().map_err(|e| {
            SfuError::Internal(LinkError::Rtc {
                what: "crypto provider",
                detail: e.to_string(),
            })
        })?;
        let settings = SettingEngineBuilder::new()
            .with_crypto_provider(keys.clone())
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .with_ice_connection_attempts(Some(ICE_CHECK_INTERVAL), Some(ICE_MAX_BINDING_REQUESTS))
            .with_ice_credentials(ufrag.clone(), random_token(32))
            .build();
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(media_engine)
            .with_setting_engine(settings)
            .with_interceptor_registry(registry)
            .build(now)
            .map_err(internal("building the peer connection"))?;
        let mut add = |kind: RtpCodecKind, id: &str| -> Result<LegTrack, SfuError> {
            let ssrc = random_ssrc();
            let description = track_description(kind, ssrc, &request.stream_label, id);
            let sender = pc
                .add_track(description)
                .map_err(internal("adding an egress track"))?;
            let video = kind == RtpCodecKind::Video;
            Ok(LegTrack {
                sender,
                ssrc,
                clock_rate: if video {
                    h264_codec().clock_rate
                } else {
                    opus_codec().clock_rate
                },
                rewriter: None,
                enabled: false,
                history: video.then(SentHistory::default),
                report: SendReport::default(),
            })
        };
        let mut video = request
            .video
            .then(|| add(RtpCodecKind::Video, "video"))
            .transpose()?;
        let mut audio = request
            .audio
            .then(|| add(RtpCodecKind::Audio, "audio"))
            .transpose()?;
        if let Some(t) = video.as_mut() {
            t.enabled = request.want_video;
        }
        if let Some(t) = audio.as_mut() {
            t.enabled = request.want_audio;
        }
        let offer = pc
            .create_offer(None)
            .map_err(internal("creating the offer"))?;
        pc.set_local_description(now, offer)
            .map_err(internal("applying the local offer"))?;
        let host = CandidateHostConfig {
            base_config: CandidateConfig {
                network: "udp".to_owned(),
                address: self.local_addr.ip().to_string(),
                port: self.local_addr.port(),
                component: 1,
                ..Default::default()
            },
            ..Default::default()
        }
        .new_candidate_host()
        .map_err(|e| internal("making the host candidate")(e))?;
        let init = RTCIceCandidate::from(&host)
            .to_json()
            .map_err(internal("making the host candidate"))?;
        pc.add_local_candidate(init)
            .map_err(internal("adding the host candidate"))?;
        pc.add_local_candidate(RTCIceCandidateInit::default())
            .map_err(internal("ending gathering"))?;
        let sdp = pc
            .local_description()
            .map(|d| d.sdp)
            .ok_or_else(|| SfuError::Internal(LinkError::InvalidSdp("no local offer".into())))?;
        let id = self.next_leg;
        self.next_leg += 1;
        self.by_ufrag.insert(ufrag.clone(), id);
        let mut leg = Leg {
            link_id: request.link_id,
            pc,
            ufrag,
            media: request.media,
            inbox: request.inbox,
            video,
            audio,
            connected: false,
            registered: false,
            failed: false,
            deadline: None,
            last_timer: None,
            dirty: false,
            poll_all: false,
            core_writes: false,
            addrs: Vec::new(),
            keys,
            direct: None,
            media_dest: None,
            pending: Vec::new(),
            _direct_counted: None,
            _counted: request.counted,
        };
        mark(&mut self.dirty, id, &mut leg, true);
        self.legs.insert(id, leg);
        Ok((id, sdp))
    }

    fn answer(&mut self, id: LegId, sdp: String) -> Result<(), SfuError> {
        self.current = Some(id);
        let leg = self.legs.get_mut(&id).ok_or_else(hub_gone)?;
        let answer = RTCSessionDescription::answer(sdp)
            .map_err(|e| SfuError::Answer(LinkError::InvalidSdp(e.to_string())))?;
        leg.pc
            .set_remote_description(Instant::now(), answer)
            .map_err(|e| SfuError::Answer(LinkError::InvalidSdp(e.to_string())))?;
        for video in [true, false] {
            let Some(track) = leg_track(leg, video) else {
                continue;
            };
            let sender = track.sender;
            let ssrc = track.ssrc;
            let payload_type = leg
                .pc
                .rtp_sender(sender)
                .and_then(|mut s| {
                    s.get_parameters()
                        .rtp_parameters
                        .codecs
                        .first()
                        .map(|c| c.payload_type)
                })
                .ok_or_else(|| {
                    SfuError::Answer(LinkError::InvalidSdp(format!(
                        "no codec negotiated for {}",
                        if video { "video" } else { "audio" }
                    )))
                })?;
            if let Some(track) = leg_track(leg, video) {
                track.rewriter = Some(Rewriter::new(ssrc, payload_type));
            }
        }
        mark(&mut self.dirty, id, leg, true);
        register_if_ready(&mut self.fanouts, id, leg);
        Ok(())
    }

    fn close_leg(&mut self, id: LegId) {
        self.current = Some(id);
        let Some(mut leg) = self.legs.remove(&id) else {
            return;
        };
        unregister(&mut self.fanouts, id, &mut leg);
        if let Err(e) = leg.pc.close() {
            tracing::debug!("closing egress leg: {e}");
        }
        // close_notify to the subscriber, if DTLS was up.
        while let Some(w) = leg.pc.poll_write() {
            self.out.push((w.transport.peer_addr, w.message));
        }
        self.forget_routes(id, &leg);
        self.dirty.retain(|d| *d != id);
    }

    /// Removes what routes inbound datagrams to a leg that is gone.
    fn forget_routes(&mut self, id: LegId, leg: &Leg) {
        for addr in &leg.addrs {
            if self.by_addr.get(addr) == Some(&id) {
                self.by_addr.remove(addr);
            }
        }
        self.by_ufrag.remove(&leg.ufrag);
    }

    /// Writes each packet of `batch` into every subscribed leg's core: video
    /// first, then audio (each in arrival order; they are separate RTP
    /// streams), so a frame's packets to one leg stay adjacent for GSO.
    fn fan_out(&mut self, batch: &mut Vec<HubPacket>) {
        let now = Instant::now();
        let mut forwarded = 0u64;
        let ordered = batch
            .iter()
            .filter(|p| p.video)
            .chain(batch.iter().filter(|p| !p.video));
        for &HubPacket {
            media,
            video,
            ref packet,
        } in ordered
        {
            let Some(fanout) = self.fanouts.get(&media) else {
                continue;
            };
            let list = if video { &fanout.video } else { &fanout.audio };
            for &id in list {
                self.current = Some(id);
                let Some(leg) = self.legs.get_mut(&id) else {
                    continue;
                };
                let Leg {
                    pc,
                    video: video_track,
                    audio: audio_track,
                    direct,
                    pending,
                    ..
                } = leg;
                let Some(track) = (if video { video_track } else { audio_track }).as_mut() else {
                    continue;
                };
                if !track.enabled {
                    continue;
                }
                let Some(rewriter) = track.rewriter.as_mut() else {
                    continue;
                };
                // Extensions were stripped by the forwarder, so this clone only
                // bumps the payload's refcount.
                let mut packet = packet.clone();
                rewriter.rewrite(&mut packet);
                if let Some(direct) = direct.as_mut() {
                    // Sealed here, sent at the next flush; the core never sees it.
                    if let Some(datagram) = direct.seal(&packet) {
                        pending.push(datagram);
                        track.report.on_sent(now, &packet);
                        if let Some(history) = track.history.as_mut() {
                            history.push(packet);
                        }
                        forwarded += 1;
                    }
                    mark_pending(&mut self.dirty, id, leg);
                } else {
                    // Straight into the pipeline: `RTCRtpSender::write_rtp` would
                    // rebuild the sender's parameters (allocating) for every packet
                    // to check what `Rewriter` already guarantees (our SSRC, the
                    // negotiated payload type, no extensions). The track id is
                    // unused on this path.
                    let written = pc.handle_write(TaggedRTCMessage {
                        now,
                        message: RTCMessage::RtpPacket(String::new(), packet),
                    });
                    if written.is_ok() {
                        forwarded += 1;
                    }
                    mark(&mut self.dirty, id, leg, false);
                }
            }
        }
        batch.clear();
        self.metrics
            .forwarded_packets
            .fetch_add(forwarded, Ordering::Relaxed);
    }

    fn read_socket(&mut self, buf: &mut [u8]) {
        let now = Instant::now();
        for _ in 0..READ_BATCH {
            let (n, from) = match self.socket.try_recv_from(buf) {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    // e.g. ECONNREFUSED from an ICMP for a closed subscriber port.
                    tracing::trace!("egress hub recv: {e}");
                    continue;
                }
            };
            let datagram = &buf[..n];
            let id = match self.by_addr.get(&from) {
                Some(id) => *id,
                None => {
                    let Some(id) = stun_local_ufrag(datagram)
                        .and_then(|ufrag| self.by_ufrag.get(ufrag))
                        .copied()
                    else {
                        continue; // not for any leg we know
                    };
                    self.by_addr.insert(from, id);
                    if let Some(leg) = self.legs.get_mut(&id) {
                        leg.addrs.push(from);
                    }
                    id
                }
            };
            self.current = Some(id);
            let Some(leg) = self.legs.get_mut(&id) else {
                continue;
            };
            let read = leg.pc.handle_read(TaggedBytesMut {
                now,
                transport: TransportContext {
                    local_addr: self.local_addr,
                    peer_addr: from,
                    ecn: None,
                    transport_protocol: TransportProtocol::UDP,
                },
                message: BytesMut::from(datagram),
            });
            if let Err(e) = read {
                tracing::trace!("egress leg read: {e}");
            }
            mark(&mut self.dirty, id, leg, true);
        }
    }

    fn timeouts(&mut self) {
        let now = Instant::now();
        if now >= self.next_reports {
            self.next_reports = now + REPORT_CHECK_INTERVAL;
            self.sender_reports(now);
        }
        for (&id, leg) in self.legs.iter_mut() {
            self.current = Some(id);
            if leg.deadline.is_some_and(|d| d <= now) {
                leg.deadline = None;
                leg.last_timer = Some(now);
                if let Err(e) = leg.pc.handle_timeout(now) {
                    tracing::trace!("egress leg timeout: {e}");
                }
                mark(&mut self.dirty, id, leg, true);
            }
        }
    }

    /// Writes the sender reports due on directly sending tracks into their
    /// cores (which encrypt them with their SRTCP state).
    fn sender_reports(&mut self, now: Instant) {
        for (&id, leg) in self.legs.iter_mut() {
            self.current = Some(id);
            if leg.direct.is_none() {
                continue;
            }
            let due: Vec<Box<dyn rtc::rtcp::Packet>> = [leg.video.as_mut(), leg.audio.as_mut()]
                .into_iter()
                .flatten()
                .filter_map(|t| t.report.due(now, t.ssrc, t.clock_rate))
                .map(|sr| Box::new(sr) as Box<dyn rtc::rtcp::Packet>)
                .collect();
            if due.is_empty() {
                continue;
            }
            let written = leg.pc.handle_write(TaggedRTCMessage {
                now,
                message: RTCMessage::RtcpPacket(String::new(), due),
            });
            if let Err(e) = written {
                tracing::debug!("egress sender report: {e}");
            }
            mark(&mut self.dirty, id, leg, false);
        }
    }

    /// Polls every leg something went into: events, reads (RTCP for us),
    /// writes (into `out`), next deadline; then sends.
    fn service(&mut self) {
        let now = Instant::now();
        let dirty = std::mem::take(&mut self.dirty);
        for &id in &dirty {
            self.current = Some(id);
            let Some(leg) = self.legs.get_mut(&id) else {
                continue;
            };
            leg.dirty = false;
            if !std::mem::take(&mut leg.core_writes) {
                // Only sealed media: the core has nothing new to say.
                leg.send_pending(&mut self.out);
                continue;
            }
            if std::mem::take(&mut leg.poll_all) {
                while let Some(event) = leg.pc.poll_event() {
                    if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) = event {
                        if state == RTCPeerConnectionState::Connected && self.direct {
                            go_direct(leg, &self.metrics);
                        }
                        on_state(&mut self.fanouts, id, leg, state);
                    }
                }
                while let Some(message) = leg.pc.poll_read() {
                    if let RTCMessage::RtcpPacket(_, packets) = message.message {
                        if packets.iter().any(|p| is_keyframe_request(p.as_ref())) {
                            leg.media.request_keyframe();
                        }
                        for nack in packets
                            .iter()
                            .filter_map(|p| p.as_any().downcast_ref::<TransportLayerNack>())
                        {
                            let resent = retransmit(leg, nack, now);
                            self.metrics
                                .retransmitted_packets
                                .fetch_add(resent, Ordering::Relaxed);
                        }
                    }
                }
                let next = leg.pc.poll_timeout();
                // A deadline already due right after a timer: wait a little.
                leg.deadline = next.map(|d| match leg.last_timer {
                    Some(t) => d.max(t + MIN_TIMER_INTERVAL),
                    None => d,
                });
            } else if leg.deadline.is_none() {
                // Writing media can arm a timer that was idle (reports).
                leg.deadline = leg.pc.poll_timeout();
            }
            while let Some(w) = leg.pc.poll_write() {
                let peer = w.transport.peer_addr;
                if let std::collections::hash_map::Entry::Vacant(e) = self.by_addr.entry(peer) {
                    // Our own checks go here first; the answers come from there.
                    e.insert(id);
                    leg.addrs.push(peer);
                }
                // DTLS (first byte 20..=63) and SRTCP (128..=191) go to the
                // selected pair; STUN checks (0..=3) may go anywhere.
                if w.message.first().is_some_and(|b| *b >= 20) {
                    leg.media_dest = Some(peer);
                }
                self.out.push((peer, w.message));
            }
            leg.send_pending(&mut self.out);
        }
        // Keep the allocation.
        let mut dirty = dirty;
        dirty.clear();
        if self.dirty.is_empty() {
            self.dirty = dirty;
        }
        self.flush();
    }

    /// Sends `out`: consecutive datagrams to one destination that have the
    /// same size (the last may be shorter) go as one UDP GSO message
    /// (`UDP_SEGMENT`, one trip through the IP stack for the whole run), and up
    /// to [`SEND_BATCH`] messages go per `sendmmsg` call.
    fn flush(&mut self) {
        if self.out.is_empty() {
            return;
        }
        let runs = gso_runs(self.out.iter().map(|(dest, m)| (*dest, m.len())), self.gso);
        let iovecs: Vec<libc::iovec> = self
            .out
            .iter()
            .map(|(_, m)| libc::iovec {
                iov_base: m.as_ptr() as *mut libc::c_void,
                iov_len: m.len(),
            })
            .collect();
        self.stats.datagrams += self.out.len() as u64;
        self.stats.messages += runs.len() as u64;
        let mut dropped = 0usize;
        for chunk in runs.chunks(SEND_BATCH) {
            let addrs: Vec<socket2::SockAddr> = chunk
                .iter()
                .map(|&(first, _, _)| socket2::SockAddr::from(self.out[first].0))
                .collect();
            let mut controls: Vec<GsoControl> =
                chunk.iter().map(|_| GsoControl::default()).collect();
            let mut headers: Vec<libc::mmsghdr> = chunk
                .iter()
                .zip(&addrs)
                .zip(controls.iter_mut())
                .map(|((&(first, end, segment), addr), control)| {
                    // SAFETY: all-zero is a valid mmsghdr (null pointers, zero lengths).
                    let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                    h.msg_hdr.msg_name = addr.as_ptr() as *mut libc::c_void;
                    h.msg_hdr.msg_namelen = addr.len();
                    h.msg_hdr.msg_iov = iovecs[first..end].as_ptr() as *mut libc::iovec;
                    h.msg_hdr.msg_iovlen = end - first;
                    if segment > 0 {
                        control.set_segment(&mut h.msg_hdr, segment);
                    }
                    h
                })
                .collect();
            let mut sent = 0;
            while sent < headers.len() {
                let rest = &mut headers[sent..];
                // SAFETY: `rest` holds initialised headers whose name, iov and
                // control pointers refer to `addrs`, `iovecs` (and through it
                // `self.out`) and `controls`, all alive and unmoved for the
                // duration of the call; `fd` is our socket.
                let n = unsafe {
                    libc::sendmmsg(self.fd, rest.as_mut_ptr(), rest.len() as libc::c_uint, 0)
                };
                self.stats.syscalls += 1;
                if n > 0 {
                    sent += n as usize;
                    continue;
                }
                let e = std::io::Error::last_os_error();
                match e.kind() {
                    std::io::ErrorKind::Interrupted => continue,
                    std::io::ErrorKind::WouldBlock => {
                        // The send buffer is full: drop the rest of this batch
                        // rather than stall every subscriber.
                        dropped += chunk[sent..].iter().map(|r| r.1 - r.0).sum::<usize>();
                        break;
                    }
                    _ => {}
                }
                let (first, end, segment) = chunk[sent];
                if segment > 0 && e.raw_os_error() == Some(libc::EIO) {
                    // The kernel or route cannot segment: no GSO from now on.
                    tracing::warn!("egress hub: UDP GSO refused ({e}); sending datagrams singly");
                    self.gso = false;
                }
                // This message failed (e.g. unreachable destination): skip it.
                tracing::trace!("egress hub send: {e}");
                dropped += end - first;
                sent += 1;
            }
        }
        if dropped > 0 {
            tracing::debug!(dropped, "egress hub: datagrams not sent");
        }
        self.out.clear();
    }
}

/// Splits datagrams `(destination, length)`, in send order, into messages
/// `(first, end, segment)`: a maximal run of consecutive datagrams to one
/// destination, all `segment` bytes long except a possibly shorter last one,
/// within the kernel's GSO limits, is one message; `segment` is 0 for a
/// message of a single datagram (always the case without `gso`).
fn gso_runs(
    datagrams: impl Iterator<Item = (SocketAddr, usize)>,
    gso: bool,
) -> Vec<(usize, usize, u16)> {
    let mut runs = Vec::new();
    let mut rest = datagrams.enumerate().peekable();
    while let Some((first, (dest, size))) = rest.next() {
        let mut end = first + 1;
        let mut total = size;
        while gso && end - first < GSO_MAX_SEGMENTS && size > 0 {
            let Some(&(_, (d, len))) = rest.peek() else {
                break;
            };
            if d != dest || len > size || len == 0 || total + len > GSO_MAX_BYTES {
                break;
            }
            rest.next();
            total += len;
            end += 1;
            if len < size {
                break; // a shorter datagram can only end a run
            }
        }
        let segment = if end - first > 1 { size as u16 } else { 0 };
        runs.push((first, end, segment));
    }
    runs
}

/// Room for one `UDP_SEGMENT` control message (a `cmsghdr` and a `u16`).
#[derive(Default)]
#[repr(C, align(8))]
struct GsoControl([u8; 32]);

impl GsoControl {
    /// Points `header` at this buffer, holding `UDP_SEGMENT = segment`.
    fn set_segment(&mut self, header: &mut libc::msghdr, segment: u16) {
        header.msg_control = self.0.as_mut_ptr() as *mut libc::c_void;
        // SAFETY: CMSG_SPACE is a pure size computation.
        header.msg_controllen = unsafe { libc::CMSG_SPACE(2) } as usize;
        // SAFETY: msg_control points at 32 aligned bytes, at least
        // CMSG_SPACE(2) (24 on 64-bit Linux), so CMSG_FIRSTHDR returns a
        // pointer inside the buffer with room for the header and a u16.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(header);
            (*cmsg).cmsg_level = libc::SOL_UDP;
            (*cmsg).cmsg_type = libc::UDP_SEGMENT;
            (*cmsg).cmsg_len = libc::CMSG_LEN(2) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut u16, segment);
        }
    }
}

/// Switches a leg that just connected to sealing its own media, if its SRTP
/// keys were recovered and the core has shown where it sends.
fn go_direct(leg: &mut Leg, metrics: &Metrics) {
    if leg.direct.is_some() || leg.connected {
        return;
    }
    let keys = leg.keys.local_keys();
    leg.keys.forget();
    let Some(keys) = keys else {
        tracing::debug!("egress leg: SRTP keys not recovered; media goes through the core");
        return;
    };
    if leg.media_dest.is_none() {
        tracing::debug!("egress leg: no selected address yet; media goes through the core");
        return;
    }
    match DirectEgress::new(&keys, leg.keys.inner()) {
        Ok(direct) => {
            leg.direct = Some(direct);
            leg._direct_counted = Some(metrics.direct_egress_legs.enter());
        }
        Err(e) => tracing::debug!("egress leg: own SRTP context: {e}"),
    }
}

/// Answers a NACK from a directly sending leg's history; returns how many
/// packets went again. (Legs that send through the core leave NACKs to its
/// responder, which has the history.)
fn retransmit(leg: &mut Leg, nack: &TransportLayerNack, now: Instant) -> u64 {
    let Leg {
        video,
        audio,
        direct: Some(direct),
        pending,
        ..
    } = leg
    else {
        return 0;
    };
    let Some(track) = [video.as_mut(), audio.as_mut()]
        .into_iter()
        .flatten()
        .find(|t| t.ssrc == nack.media_ssrc)
    else {
        return 0;
    };
    let Some(history) = track.history.as_mut() else {
        return 0;
    };
    let mut resent = 0;
    for pair in &nack.nacks {
        for seq in pair.packet_list() {
            if let Some(datagram) = history.resend(seq, now).and_then(|p| direct.seal(p)) {
                pending.push(datagram);
                resent += 1;
            }
        }
    }
    resent
}

fn on_state(
    fanouts: &mut HashMap<u64, Fanout>,
    id: LegId,
    leg: &mut Leg,
    state: RTCPeerConnectionState,
) {
    match state {
        RTCPeerConnectionState::Connected if !leg.connected => {
            leg.connected = true;
            register_if_ready(fanouts, id, leg);
            tell(&leg.inbox, leg.link_id, LinkState::Connected);
        }
        RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed if !leg.failed => {
            leg.failed = true;
            unregister(fanouts, id, leg);
            tell(&leg.inbox, leg.link_id, LinkState::Failed);
        }
        _ => {}
    }
}

fn register_if_ready(fanouts: &mut HashMap<u64, Fanout>, id: LegId, leg: &mut Leg) {
    let answered = [leg.video.as_ref(), leg.audio.as_ref()]
        .into_iter()
        .flatten()
        .all(|t| t.rewriter.is_some());
    if !leg.connected || leg.failed || leg.registered || !answered || leg.media.is_closed() {
        return;
    }
    leg.registered = true;
    let fanout = fanouts.entry(leg.media.id()).or_default();
    if leg.video.is_some() {
        fanout.video.push(id);
        leg.media.hub_legs_changed(RtpCodecKind::Video, 1);
    }
    if leg.audio.is_some() {
        fanout.audio.push(id);
        leg.media.hub_legs_changed(RtpCodecKind::Audio, 1);
    }
    // A new subscriber needs a keyframe to start decoding.
    leg.media.request_keyframe();
}

fn unregister(fanouts: &mut HashMap<u64, Fanout>, id: LegId, leg: &mut Leg) {
    if !std::mem::take(&mut leg.registered) {
        return;
    }
    let key = leg.media.id();
    if let Some(fanout) = fanouts.get_mut(&key) {
        fanout.video.retain(|l| *l != id);
        fanout.audio.retain(|l| *l != id);
        if fanout.video.is_empty() && fanout.audio.is_empty() {
            fanouts.remove(&key);
        }
    }
    if leg.video.is_some() {
        leg.media.hub_legs_changed(RtpCodecKind::Video, -1);
    }
    if leg.audio.is_some() {
        leg.media.hub_legs_changed(RtpCodecKind::Audio, -1);
    }
}

#[cfg(test)]
mod tests {
    use super::{
        CreateLeg, GSO_MAX_SEGMENTS, Hub, HubConfig, HubPacket, gso_runs, stun_local_ufrag,
    };
    use crate::link::testing::{candidate_port, rtp_seq, with_candidate_port};
    use crate::link::{LinkSignal, PeerLink};
    use crate::protocol::LinkId;
    use crate::server::metrics::Metrics;
    use crate::server::inbox::{LinkState, SessionEvent, SessionInbox, SessionInboxReceiver};
    use crate::server::sfu::PublishedMedia;
    use bytes::Bytes;
    use rtc::rtcp::sender_report::SenderReport;
    use rtc::rtp::{Header, Packet};
    use std::collections::HashSet;
    use std::net::{IpAddr, SocketAddr};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;
    use tokio::net::UdpSocket;
    use webrtc::media_stream::track_remote::TrackRemoteEvent;

    /// RTP packets fed to the hub, 5 ms apart.
    const PACKETS: u16 = 300;
    /// The proxy drops the first copy of every packet whose sequence number is
    /// a multiple of this; retransmissions pass.
    const DROP_EVERY: u16 = 10;

    /// Reads on `from`, forwards from `via` to `to`; if `lossy`, drops the
    /// first copy of every DROP_EVERY-th RTP packet.
    fn pump(
        from: Arc<UdpSocket>,
        via: Arc<UdpSocket>,
        to: SocketAddr,
        lossy: bool,
        dropped: Arc<AtomicU64>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut seen = HashSet::new();
            let mut buf = vec![0u8; 2048];
            while let Ok((n, _)) = from.recv_from(&mut buf).await {
                if lossy
                    && let Some(seq) = rtp_seq(&buf[..n])
                    && seq % DROP_EVERY == 0
                    && seen.insert(seq)
                {
                    dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                via.send_to(&buf[..n], to).await.ok(); // test ending
            }
        })
    }

    /// A subscriber behind a lossy path: the hub (sealing media itself)
    /// resends what the path dropped, inbound datagrams reach the leg although
    /// they come from an address the offer never named (demux by STUN ufrag /
    /// by our own sends), and closing the leg releases its gauge.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_leg_behind_a_lossy_path_gets_every_packet_through_nack() {
        tokio::time::timeout(Duration::from_secs(30), lossy_leg(true))
            .await
            .expect("test timed out");
    }

    /// The same through the `rtc` pipeline (the fallback when a leg's SRTP
    /// keys are not recovered): its NACK responder resends.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn through_the_core_too_every_packet_gets_through_nack() {
        tokio::time::timeout(Duration::from_secs(30), lossy_leg(false))
            .await
            .expect("test timed out");
    }

    async fn lossy_leg(direct: bool) {
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let metrics = Arc::new(Metrics::default());
        let config = HubConfig {
            direct,
            ..HubConfig::from_env()
        };
        let hub = Hub::start_with(ip, Arc::clone(&metrics), config).expect("hub");
        let media = PublishedMedia::new(Arc::clone(&metrics), Some(hub.media_input()));
        let (leg, offer, mut inbox_rx) = create_video_leg(&hub, &media, &metrics, 1).await;
        let hub_addr = SocketAddr::new(ip, candidate_port(&offer));

        // `facing_sub` stands in for the hub (the subscriber sends to it),
        // `facing_hub` for the subscriber (the hub sends to it).
        let facing_sub = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
        let facing_hub = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
        let (sub, mut sub_signals) = PeerLink::new(ip).await.expect("subscriber");
        let port = |s: &UdpSocket| s.local_addr().expect("addr").port();
        let answer = sub
            .answer(with_candidate_port(&offer, port(&facing_sub)))
            .await
            .expect("answer");
        let sub_addr = SocketAddr::new(ip, candidate_port(&answer));
        let dropped = Arc::new(AtomicU64::new(0));
        let proxy = [
            pump(
                Arc::clone(&facing_hub),
                Arc::clone(&facing_sub),
                sub_addr,
                true,
                Arc::clone(&dropped),
            ),
            pump(
                Arc::clone(&facing_sub),
                Arc::clone(&facing_hub),
                hub_addr,
                false,
                Arc::clone(&dropped),
            ),
        ];
        hub.apply_answer(leg, with_candidate_port(&answer, port(&facing_hub)))
            .await
            .expect("apply answer");
        until_both_connected(&mut inbox_rx, &mut sub_signals).await;
        let receiver = tokio::spawn(async move {
            let track = loop {
                match sub_signals.recv().await {
                    Some(LinkSignal::Track(track)) => break track,
                    Some(_) => {}
                    None => panic!("subscriber closed before a track arrived"),
                }
            };
            let mut got = HashSet::new();
            let mut ssrc = None;
            let mut reports = Vec::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while let Ok(Some(event)) = tokio::time::timeout_at(deadline, track.poll()).await {
                match event {
                    TrackRemoteEvent::OnRtpPacket(p) if p.header.sequence_number <= PACKETS => {
                        ssrc = Some(p.header.ssrc);
                        got.insert(p.header.sequence_number);
                    }
                    TrackRemoteEvent::OnRtcpPacket(packets) => reports.extend(
                        packets
                            .iter()
                            .filter_map(|p| p.as_any().downcast_ref::<SenderReport>())
                            .cloned(),
                    ),
                    _ => {}
                }
                if got.len() == usize::from(PACKETS) && !reports.is_empty() {
                    break;
                }
            }
            (got, ssrc, reports)
        });

        // One packet more than checked: a loss is only noticed (and NACKed)
        // when a later packet arrives.
        feed(&hub, &media, 1, PACKETS + 1, 300).await;
        let (got, ssrc, reports) = receiver.await.expect("receiver");
        let dropped = dropped.load(Ordering::Relaxed);
        // Sender reports reach the subscriber, for the track's SSRC, with
        // counts that add up (every payload is 300 bytes) and the wall clock.
        let sr = reports.last().expect("a sender report");
        assert_eq!(Some(sr.ssrc), ssrc, "report for the media SSRC");
        assert!(
            sr.packet_count > 0 && u64::from(sr.packet_count) <= u64::from(PACKETS) + 1 + dropped,
            "{sr:?}"
        );
        assert_eq!(sr.octet_count, sr.packet_count * 300, "{sr:?}");
        let unix_now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        assert!(
            ((sr.ntp_time >> 32) - 2_208_988_800).abs_diff(unix_now) <= 5,
            "NTP time {sr:?}"
        );
        assert!(
            dropped >= u64::from(PACKETS / DROP_EVERY) - 1,
            "dropped {dropped}"
        );
        let missing: Vec<u16> = (1..=PACKETS).filter(|s| !got.contains(s)).collect();
        assert!(missing.is_empty(), "never arrived: {missing:?}");
        assert!(
            metrics.forwarded_packets.load(Ordering::Relaxed) >= u64::from(PACKETS),
            "forwarded"
        );
        assert_eq!(
            metrics.direct_egress_legs.get(),
            usize::from(direct),
            "who sealed the media"
        );
        let resent = metrics.retransmitted_packets.load(Ordering::Relaxed);
        if direct {
            assert!(resent >= dropped, "resent {resent} of {dropped} dropped");
        } else {
            assert_eq!(resent, 0, "the core's responder resends, uncounted");
        }

        hub.close(leg).await;
        assert_eq!(metrics.peer_connections.get(), 0, "leg released");
        assert_eq!(metrics.direct_egress_legs.get(), 0, "direct gauge released");
        for task in proxy {
            task.abort();
        }
        sub.close().await;
    }

    /// A subscriber connected to a new leg of `media`.
    struct Subscriber {
        leg: super::LegId,
        inbox: SessionInboxReceiver,
        link: PeerLink,
        signals: crate::link::LinkSignals,
    }

    /// A video-only leg of `media`: its id, the offer and its session inbox.
    async fn create_video_leg(
        hub: &Hub,
        media: &Arc<PublishedMedia>,
        metrics: &Arc<Metrics>,
        link: u64,
    ) -> (super::LegId, String, SessionInboxReceiver) {
        let (inbox, inbox_rx) = SessionInbox::new();
        let (leg, offer) = hub
            .create(CreateLeg {
                link_id: LinkId(link),
                media: Arc::clone(media),
                stream_label: format!("s{link}"),
                video: true,
                audio: false,
                want_audio: false,
                want_video: true,
                inbox,
                counted: metrics.peer_connections.enter(),
            })
            .await
            .expect("create leg");
        (leg, offer, inbox_rx)
    }

    /// Until the hub reports the leg connected and the subscriber's side is
    /// connected too: it may finish DTLS a moment after ours, and a packet
    /// that arrives before its SRTP keys is lost for good (nothing earlier to
    /// NACK it against).
    async fn until_both_connected(
        inbox: &mut SessionInboxReceiver,
        signals: &mut crate::link::LinkSignals,
    ) {
        loop {
            match inbox.events.recv().await {
                Some(SessionEvent::Link(e)) if matches!(e.state, LinkState::Connected) => break,
                Some(SessionEvent::Link(e)) if matches!(e.state, LinkState::Failed) => {
                    panic!("leg failed")
                }
                Some(_) => {}
                None => panic!("inbox closed"),
            }
        }
        loop {
            match signals.recv().await {
                Some(LinkSignal::State(
                    webrtc::peer_connection::RTCPeerConnectionState::Connected,
                )) => break,
                Some(_) => {}
                None => panic!("subscriber closed before connecting"),
            }
        }
    }

    async fn subscribe(
        hub: &Hub,
        media: &Arc<PublishedMedia>,
        metrics: &Arc<Metrics>,
        link: u64,
    ) -> Subscriber {
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let (leg, offer, mut inbox_rx) = create_video_leg(hub, media, metrics, link).await;
        let (sub, mut signals) = PeerLink::new(ip).await.expect("subscriber");
        let answer = sub.answer(offer).await.expect("answer");
        hub.apply_answer(leg, answer).await.expect("apply answer");
        until_both_connected(&mut inbox_rx, &mut signals).await;
        Subscriber {
            leg,
            inbox: inbox_rx,
            link: sub,
            signals,
        }
    }

    /// Feeds `count` video packets of `size` bytes from `first` on, 5 ms apart.
    async fn feed(hub: &Hub, media: &PublishedMedia, first: u16, count: u16, size: usize) {
        for seq in first..first + count {
            let packet = Packet {
                header: Header {
                    version: 2,
                    payload_type: 96, // the hub rewrites it to the leg's
                    sequence_number: seq,
                    timestamp: u32::from(seq) * 450,
                    ssrc: 42,
                    marker: true,
                    ..Default::default()
                },
                payload: Bytes::from(vec![0x41u8; size]),
            };
            hub.media_input()
                .send(HubPacket {
                    media: media.id(),
                    video: true,
                    packet,
                })
                .await
                .expect("hub input");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// How many packets arrive within `wait` (on the track the first packet
    /// announces).
    async fn count_packets(mut signals: crate::link::LinkSignals, wait: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + wait;
        let track = loop {
            match tokio::time::timeout_at(deadline, signals.recv()).await {
                Ok(Some(LinkSignal::Track(track))) => break track,
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return 0,
            }
        };
        let mut n = 0;
        while let Ok(Some(event)) = tokio::time::timeout_at(deadline, track.poll()).await {
            if let TrackRemoteEvent::OnRtpPacket(_) = event {
                n += 1;
            }
        }
        n
    }

    /// A panic while the hub works on one leg costs that leg only: it is
    /// reported failed and released, and the other subscriber keeps receiving.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_leg_is_dropped_and_the_others_carry_on() {
        tokio::time::timeout(Duration::from_secs(30), async {
            let ip: IpAddr = "127.0.0.1".parse().expect("ip");
            let metrics = Arc::new(Metrics::default());
            let hub = Hub::start(ip, Arc::clone(&metrics)).expect("hub");
            let media = PublishedMedia::new(Arc::clone(&metrics), Some(hub.media_input()));
            let mut doomed = subscribe(&hub, &media, &metrics, 1).await;
            let mut healthy = subscribe(&hub, &media, &metrics, 2).await;
            assert_eq!(metrics.peer_connections.get(), 2);

            hub.commands
                .send(super::Command::Panic(doomed.leg))
                .await
                .expect("hub running");
            loop {
                match doomed.inbox.events.recv().await {
                    Some(SessionEvent::Link(e)) if matches!(e.state, LinkState::Failed) => break,
                    Some(_) => {}
                    None => panic!("inbox closed before the failure was reported"),
                }
            }
            assert_eq!(metrics.egress_panics.load(Ordering::Relaxed), 1);
            assert_eq!(
                metrics.peer_connections.get(),
                1,
                "the panicked leg released"
            );

            let signals = std::mem::replace(
                &mut healthy.signals,
                tokio::sync::mpsc::unbounded_channel().1,
            );
            let counting =
                tokio::spawn(async move { count_packets(signals, Duration::from_secs(3)).await });
            feed(&hub, &media, 1, 100, 200).await;
            let got = counting.await.expect("counter");
            assert!(got >= 95, "the other subscriber got {got} of 100 packets");

            hub.close(healthy.leg).await;
            assert_eq!(metrics.peer_connections.get(), 0);
            healthy.link.close().await;
            doomed.link.close().await;
        })
        .await
        .expect("test timed out");
    }

    fn runs(datagrams: &[(u16, usize)], gso: bool) -> Vec<(usize, usize, u16)> {
        let with_addrs: Vec<(SocketAddr, usize)> = datagrams
            .iter()
            .map(|&(port, len)| (SocketAddr::from(([127, 0, 0, 1], port)), len))
            .collect();
        gso_runs(with_addrs.into_iter(), gso)
    }

    #[test]
    fn a_frame_to_one_subscriber_is_one_gso_message() {
        // Two subscribers, each: three full fragments, a short last one, then audio.
        let out = [
            (1, 1200),
            (1, 1200),
            (1, 1200),
            (1, 700),
            (1, 90),
            (2, 1200),
            (2, 1200),
            (2, 1200),
            (2, 700),
        ];
        assert_eq!(
            runs(&out, true),
            vec![(0, 4, 1200), (4, 5, 0), (5, 9, 1200)]
        );
        // Without GSO every datagram is its own message.
        assert_eq!(runs(&out, false).len(), out.len());
    }

    #[test]
    fn a_larger_datagram_starts_a_new_run_and_limits_hold() {
        assert_eq!(
            runs(&[(1, 500), (1, 1200), (1, 1200)], true),
            vec![(0, 1, 0), (1, 3, 1200)]
        );
        let many = vec![(1, 100); GSO_MAX_SEGMENTS + 1];
        assert_eq!(
            runs(&many, true),
            vec![
                (0, GSO_MAX_SEGMENTS, 100),
                (GSO_MAX_SEGMENTS, GSO_MAX_SEGMENTS + 1, 0)
            ]
        );
        let big = vec![(1, 1200); 60]; // 72,000 bytes: over one datagram's limit
        let r = runs(&big, true);
        assert_eq!(r.len(), 2);
        assert!(r.iter().all(|&(a, b, _)| (b - a) * 1200 <= 65_000));
    }

    fn binding_request(username: &[u8]) -> Vec<u8> {
        let mut d = vec![0x00, 0x01, 0, 0, 0x21, 0x12, 0xA4, 0x42];
        d.extend_from_slice(&[7; 12]); // transaction id
        // A PRIORITY attribute first, then USERNAME (odd length: padded).
        d.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4]);
        d.extend_from_slice(&[0x00, 0x06, 0x00, username.len() as u8]);
        d.extend_from_slice(username);
        while d.len() % 4 != 0 {
            d.push(0);
        }
        let len = (d.len() - 20) as u16;
        d[2..4].copy_from_slice(&len.to_be_bytes());
        d
    }

    #[test]
    fn finds_our_ufrag_in_a_binding_request() {
        assert_eq!(
            stun_local_ufrag(&binding_request(b"ours:theirs1")),
            Some("ours")
        );
        assert_eq!(stun_local_ufrag(&binding_request(b"abc:d")), Some("abc"));
    }

    #[test]
    fn ignores_what_is_not_stun() {
        assert_eq!(stun_local_ufrag(&[0x80; 40]), None); // RTP/SRTP
        assert_eq!(stun_local_ufrag(&[22; 40]), None); // DTLS
        assert_eq!(stun_local_ufrag(&[0, 1, 0, 0]), None); // truncated
        let mut truncated = binding_request(b"ours:theirs");
        truncated.truncate(30);
        assert_eq!(stun_local_ufrag(&truncated), None);
    }
}
