//! The egress hub: every subscriber leg as a sans-IO `rtc` peer connection,
//! all driven by one run-to-completion loop on **one shared UDP socket**.
//!
//! Why: with one webrtc-rs `PeerConnection` per subscription, every forwarded
//! packet hopped through a per-subscriber queue and writer task, a channel into
//! that connection's driver task, and its own `sendmsg`; a profile at 200
//! subscribers put 92 % of the server's CPU in those drivers (see
//! `docs/PERFORMANCE.md` §3). Here the loop owns the `rtc` cores directly.
//!
//! | file | job |
//! |---|---|
//! | `mod.rs` | the [`Hub`] handle: commands from sessions, the media input |
//! | [`leg`] | one subscriber leg, its core, and its [`leg::LegState`] machine |
//! | [`event_loop`] | the loop: commands, reads, timers, servicing legs, panic isolation |
//! | [`demux`] | which leg an inbound datagram belongs to (ICE-verified addresses) |
//! | [`fanout`] | who gets which stream, and writing each packet to each leg |
//! | [`direct`] | sealing a leg's media with its SRTP key, NACK history, sender reports |
//! | [`srtp_keys`] | recovering that key from the leg's DTLS-SRTP handshake |
//! | [`udp`] | the shared socket: GSO batches out, GRO batches in (quinn-udp) |
//! | [`topn_leg`] | a top-N leg's sources, slot timelines and `volume-indicator` |
//! | [`twcc`] | a leg's transport-wide numbers, their send ring, its feedback as send/arrival pairs |
//! | [`twcc_leg`] | negotiating TWCC on a leg, its feedback into the downlink estimate and `auto` |
//! | [`probe_leg`] | a leg's downlink probes: RTX padding paced out until its feedback says |
//! | [`leg_counters`] | each leg's packet/byte/NACK/PLI counts and the snapshot `GET /rooms/{id}` reads |
//! | `auto.rs` | a leg's simulcast layer: subscriber requests, `auto` reports, the layers it wants |
//!
//! * An ingress forward task hands each packet to the hub **once**
//!   ([`IngressPacket`], bounded channel [`HUB_MEDIA_CAPACITY`]). The hub
//!   rewrites it per subscriber and seals it in the same loop pass: no
//!   per-subscriber task, queue or wake-up.
//! * Once a leg is connected, the hub seals its media itself with the leg's
//!   SRTP key and the core sees no media: it keeps ICE, DTLS and RTCP. A leg
//!   whose key cannot be had sends through its core instead (a state of the
//!   leg, [`leg::Egress::Core`], counted and logged loudly).
//! * Each core registers only what an egress needs: NACK responder and sender
//!   reports (for [`leg::Egress::Core`] only) and `RtcpTap` (so PLI/FIR and
//!   NACKs reach us).
//! * A panic while the loop works on one leg drops that leg only.
//!
//! The hub runs on its own OS thread with a single-threaded tokio runtime
//! (measured ~15 % less CPU per forwarded packet than a task on the shared
//! runtime, `docs/PERFORMANCE.md` §3); it ends when the `Sfu` and every leg's
//! handle are gone.
//!
//! Invariants: a leg is in a fan-out list exactly while it is
//! [`leg::LegState::Connected`] (answered and DTLS up), because packets
//! written earlier would leave sequence gaps the subscriber NACKs forever. A
//! leg's `peer_connections` gauge lives inside the leg, so it falls only when
//! the hub has really dropped the connection. A slow subscriber cannot stall
//! others: nothing here waits on a subscriber (a datagram the kernel refuses
//! is dropped and counted), and a subscriber that does not drain its socket
//! loses its own packets in its own receive buffer.

mod audio_loss;
mod auto;
#[cfg(test)]
mod auto_tests;
mod demux;
mod direct;
mod event_loop;
mod fanout;
mod leg;
mod leg_counters;
mod probe_leg;
mod srtp_keys;
#[cfg(test)]
mod tests;
mod topn_leg;
mod twcc;
mod twcc_leg;
mod udp;

pub use auto::LayerTarget;
pub use leg_counters::{LegCounters, LegPhase, LegSnapshot};
pub use topn_leg::{SourceChange, TopNLeg};

use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::error::SfuError;
use super::media::{IngressPacket, PublishedMedia};
use crate::link::LinkError;
use crate::protocol::{IceCandidate, LinkId};
use crate::server::inbox::SessionInbox;
use crate::server::metrics::{GaugeGuard, Metrics};

/// Packets queued from all ingress forward tasks to the hub (about 1 s of
/// 40 streams of 720p video). When full, the newest packet is dropped for all
/// subscribers of its stream: the hub itself is behind.
pub const HUB_MEDIA_CAPACITY: usize = 8192;

/// Commands queued from sessions to the hub (create, answer, close...). Senders
/// await when it is full, except `set_forwarding`, which is synchronous and
/// logs a dropped command (it needs 1024 commands queued in front of it).
const HUB_COMMAND_CAPACITY: usize = 1024;

/// A leg's id inside the hub.
pub type LegId = u64;

/// What a session asks of the hub.
enum Command {
    Create(
        Box<CreateLeg>,
        oneshot::Sender<Result<(LegId, String), SfuError>>,
    ),
    Answer(LegId, String, oneshot::Sender<Result<(), SfuError>>),
    /// An ICE restart offer for the leg (its new SDP offer).
    RestartIce(LegId, oneshot::Sender<Result<String, SfuError>>),
    Candidate(LegId, IceCandidate, oneshot::Sender<Result<(), SfuError>>),
    Forwarding(LegId, bool, bool),
    Layer(LegId, LayerTarget),
    /// A top-N leg's sources change.
    TopNSource(LegId, SourceChange),
    Close(LegId, oneshot::Sender<()>),
    /// Every leg's counters (`GET /rooms/{id}`).
    Snapshot(oneshot::Sender<Vec<LegSnapshot>>),
    /// Makes the hub panic while working on a leg (tests of panic isolation).
    #[cfg(test)]
    Panic(LegId),
    /// Seals this packet as it is and sends it on a leg that seals its own
    /// media (tests of what a subscriber makes of odd packets).
    #[cfg(test)]
    Inject(LegId, Box<rtc::rtp::Packet>),
    /// Replies once every packet queued on the media input before it was
    /// sent has been fanned out (tests that order media and commands).
    #[cfg(test)]
    Barrier(oneshot::Sender<()>),
    /// Early STUN checks the leg holds and has replayed (tests).
    #[cfg(test)]
    EarlyChecks(LegId, oneshot::Sender<(usize, usize)>),
    /// Starts a downlink probe on the leg as `auto` would (tests).
    #[cfg(test)]
    Probe(LegId, crate::server::sfu::downlink::ProbeRequest),
    /// The leg's downlink estimate and its probes (started, passed, failed)
    /// (tests).
    #[cfg(test)]
    Estimate(
        LegId,
        oneshot::Sender<Option<(crate::server::sfu::downlink_gcc::DownlinkEstimate, [u64; 3])>>,
    ),
    /// The remote end of the leg's selected pair, and its restarts (tests).
    #[cfg(test)]
    Selected(LegId, oneshot::Sender<(Option<std::net::SocketAddr>, u32)>),
}

/// What a leg forwards.
pub enum LegSource {
    /// One published stream, on a video and/or an audio track.
    Stream(Arc<PublishedMedia>),
    /// The loudest talkers of the room on `topn::SLOTS` audio tracks
    /// (`video` and `audio` of [`CreateLeg`] are then false).
    TopN(Box<TopNLeg>),
}

/// Everything needed to create a leg.
pub struct CreateLeg {
    /// The subscription's link id (for events to the session).
    pub link_id: LinkId,
    /// What to forward.
    pub source: LegSource,
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
    /// The subscriber's offer, when it made one (WHEP): the leg answers it
    /// instead of offering ([`leg::Leg::answer_offer`]).
    pub remote_offer: Option<String>,
    /// Offer AES-CM SRTP besides AES-GCM (a WHEP player that has nothing
    /// else, [`leg::srtp_profiles`]); only with `remote_offer`.
    pub aes_cm: bool,
    /// Tests only: pretend the leg's SRTP keys were not recognised, so it
    /// sends through its core ([`leg::Egress::Core`]).
    #[cfg(test)]
    pub keys_unrecognised: bool,
}

/// Handle to the hub. Cheap to clone; the hub ends when every handle is
/// gone.
#[derive(Clone)]
pub struct Hub {
    commands: mpsc::Sender<Command>,
    media: mpsc::Sender<IngressPacket>,
}

fn hub_gone() -> SfuError {
    SfuError::Internal(LinkError::Rtc {
        what: "egress hub",
        detail: "stopped".into(),
    })
}

impl Hub {
    /// Binds the shared socket on `ip` and starts the hub on its own thread;
    /// legs advertise `public_ip` (a 1:1 NAT) when given.
    pub fn start(
        ip: IpAddr,
        public_ip: Option<IpAddr>,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        let socket = udp::bind(ip)?;
        tracing::debug!(local_addr = %socket.local_addr()?, "egress hub listening");
        let (commands, command_rx) = mpsc::channel(HUB_COMMAND_CAPACITY);
        let (media, media_rx) = mpsc::channel(HUB_MEDIA_CAPACITY);
        let hub = Hub { commands, media };
        let media_open = hub.media.clone();
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
                    match udp::UdpIo::new(socket, public_ip) {
                        Ok(io) => {
                            event_loop::HubLoop::new(io, metrics, media_open)
                                .run(command_rx, media_rx)
                                .await;
                        }
                        Err(e) => tracing::error!("egress hub socket: {e}"),
                    }
                });
            })?;
        Ok(hub)
    }

    /// Where ingress forward tasks put packets.
    pub fn media_input(&self) -> mpsc::Sender<IngressPacket> {
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

    /// Creates a leg and returns it with its SDP offer (or, given the
    /// subscriber's offer in [`CreateLeg::remote_offer`], its answer).
    pub async fn create(&self, leg: CreateLeg) -> Result<(LegId, String), SfuError> {
        self.ask(|tx| Command::Create(Box::new(leg), tx)).await
    }

    /// Applies the subscriber's answer.
    pub async fn apply_answer(&self, leg: LegId, sdp: String) -> Result<(), SfuError> {
        self.ask(|tx| Command::Answer(leg, sdp, tx)).await
    }

    /// Offers an ICE restart on the leg; returns the new SDP offer, to be
    /// answered like the first ([`Hub::apply_answer`]).
    pub async fn restart_ice(&self, leg: LegId) -> Result<String, SfuError> {
        self.ask(|tx| Command::RestartIce(leg, tx)).await
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

    /// Adds or removes a source of a top-N leg (nothing on other legs).
    /// Forwards a simulcast layer on `leg` from its next keyframe on.
    pub fn set_layer(&self, leg: LegId, target: LayerTarget) {
        if self.commands.try_send(Command::Layer(leg, target)).is_err() {
            tracing::warn!(leg, "egress hub busy or gone: layer change dropped");
        }
    }

    pub async fn change_top_n_source(&self, leg: LegId, change: SourceChange) {
        // Err: the hub stopped, and with it every leg.
        self.commands
            .send(Command::TopNSource(leg, change))
            .await
            .ok();
    }

    /// Closes a leg without waiting (for `Drop` paths).
    pub fn close_soon(&self, leg: LegId) {
        let (tx, _) = oneshot::channel();
        if self.commands.try_send(Command::Close(leg, tx)).is_err() {
            tracing::warn!(leg, "egress hub busy or gone: leg not closed on drop");
        }
    }

    /// Returns once the hub has handled every command and every media
    /// packet given to it before this call.
    #[cfg(test)]
    pub async fn barrier(&self) {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Barrier(tx)).await.ok();
        rx.await.ok();
    }

    /// Starts a downlink probe on `leg` (tests).
    #[cfg(test)]
    pub async fn probe(&self, leg: LegId, request: crate::server::sfu::downlink::ProbeRequest) {
        self.commands.send(Command::Probe(leg, request)).await.ok();
    }

    /// `leg`'s downlink estimate and its probes started, passed, failed (tests).
    #[cfg(test)]
    pub async fn estimate(
        &self,
        leg: LegId,
    ) -> Option<(crate::server::sfu::downlink_gcc::DownlinkEstimate, [u64; 3])> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Estimate(leg, tx)).await.ok()?;
        rx.await.ok().flatten()
    }

    /// Seals `packet` as it is on `leg` and sends it (a leg sealing its own
    /// media; nothing otherwise), after what was queued before.
    #[cfg(test)]
    pub async fn inject(&self, leg: LegId, packet: rtc::rtp::Packet) {
        self.commands
            .send(Command::Inject(leg, Box::new(packet)))
            .await
            .ok();
        self.barrier().await;
    }

    /// STUN checks that came before the leg's answer: `(held now,
    /// replayed after the answer)`.
    #[cfg(test)]
    pub async fn early_checks(&self, leg: LegId) -> (usize, usize) {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::EarlyChecks(leg, tx)).await.ok();
        rx.await.unwrap_or_default()
    }

    /// The remote end of the leg's ICE-selected pair (none while a restart
    /// has not found one) and how many restarts it was offered.
    #[cfg(test)]
    pub async fn selected(&self, leg: LegId) -> (Option<std::net::SocketAddr>, u32) {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Selected(leg, tx)).await.ok();
        rx.await.unwrap_or_default()
    }

    /// Every leg with its counters, copied by the hub loop between two
    /// passes (empty if the hub stopped).
    pub async fn snapshot(&self) -> Vec<LegSnapshot> {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Snapshot(tx)).await.is_err() {
            return Vec::new(); // the hub stopped, and with it every leg
        }
        rx.await.unwrap_or_default()
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
