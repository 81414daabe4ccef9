//! The SFU: receives each publisher's RTP on an ingress link and forwards it to
//! every subscriber's egress link, untouched but for the header fields that must
//! match the egress leg (see [`rewrite`]).
//!
//! One peer connection per publish and one per subscription. Publishers get a
//! webrtc-rs `PeerConnection` each. Subscriptions are, by default, legs of the
//! egress [`hub`]: sans-IO `rtc` cores driven by one thread on one shared UDP
//! socket, whose media the hub seals itself once it has the leg's SRTP key
//! (`srtp_keys`, `direct`); `HUDDLE_EGRESS=links` selects the older design,
//! one webrtc-rs `PeerConnection` (socket, driver task, writer task) per
//! subscription.
//!
//! The session that created a link owns it ([`IngressLink`], [`EgressLink`])
//! and closes it; every task a link spawns is aborted when the link is closed or
//! dropped, and every link and task is counted in [`Metrics`], so leaks show up
//! in tests.

mod direct;
pub mod hub;
mod media;
pub mod rewrite;
mod srtp_keys;

use std::net::IpAddr;
use std::sync::Arc;

use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::task::JoinHandle;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::peer_connection::RTCPeerConnectionState;
use webrtc::rtp_transceiver::RtpSender;

pub use media::{EgressTrack, KEYFRAME_MIN_INTERVAL, PublishedMedia};

use super::metrics::{GaugeGuard, Metrics};
use super::inbox::{LinkEvent, LinkState, SessionEvent, SessionInbox};
use crate::link::{LinkError, LinkSignal, LinkSignals, PeerLink};
use crate::protocol::{ErrorCode, IceCandidate, LinkId};

/// Why the SFU could not set up or change a link.
#[derive(Debug, thiserror::Error)]
pub enum SfuError {
    /// The publisher's offer was unusable. Not retryable with the same offer.
    #[error("invalid publish offer: {0}")]
    PublishOffer(LinkError),
    /// The subscriber's answer was unusable. Not retryable with the same answer.
    #[error("invalid answer: {0}")]
    Answer(LinkError),
    /// A trickled candidate was unusable.
    #[error("invalid candidate: {0}")]
    Candidate(LinkError),
    /// Creating a peer connection failed (e.g. no UDP port). Retryable.
    #[error("SFU failure: {0}")]
    Internal(LinkError),
}

impl SfuError {
    /// The seed error code for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            SfuError::PublishOffer(_) => ErrorCode::InvalidPushed,
            SfuError::Answer(_) => ErrorCode::AnswerSdpInvalid,
            SfuError::Candidate(_) => ErrorCode::InvalidParameter,
            SfuError::Internal(_) => ErrorCode::SfuFail,
        }
    }
}

/// How subscriber (egress) legs are built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EgressMode {
    /// Sans-IO legs on the shared socket of the egress [`hub::Hub`] (default).
    Hub,
    /// One webrtc-rs `PeerConnection` (own socket, own driver task) per
    /// subscription, as before the hub existed.
    PerLink,
}

impl EgressMode {
    /// The mode named by `HUDDLE_EGRESS` (`hub` or `links`), else [`EgressMode::Hub`].
    pub fn from_env() -> Self {
        match std::env::var("HUDDLE_EGRESS").as_deref() {
            Ok("links") => EgressMode::PerLink,
            _ => EgressMode::Hub,
        }
    }
}

/// Builds links. One per server.
pub struct Sfu {
    ip: IpAddr,
    metrics: Arc<Metrics>,
    mode: EgressMode,
    /// Started on first use (it needs a runtime); lives as long as the SFU or
    /// its last leg.
    hub: std::sync::Mutex<Option<hub::Hub>>,
}

/// Tasks of a link, aborted when it is closed or dropped.
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// A publisher's link: receives one stream.
pub struct IngressLink {
    link: PeerLink,
    media: Arc<PublishedMedia>,
    _tasks: Tasks,
    _counted: GaugeGuard,
}

impl IngressLink {
    /// Adds a trickled candidate from the client.
    pub async fn add_candidate(&self, candidate: IceCandidate) -> Result<(), SfuError> {
        self.link
            .add_candidate(candidate)
            .await
            .map_err(SfuError::Candidate)
    }

    /// Stops forwarding and closes the peer connection.
    pub async fn close(self) {
        self.media.close();
        self.link.close().await;
    }
}

/// A subscriber's link: sends one remote stream.
pub struct EgressLink {
    inner: Egress,
}

enum Egress {
    PerLink(PerLinkEgress),
    Hub(HubEgress),
}

/// A subscription leg inside the egress hub.
struct HubEgress {
    hub: hub::Hub,
    leg: hub::LegId,
    media: Arc<PublishedMedia>,
    has_video: bool,
    has_audio: bool,
    want: std::sync::Mutex<(bool, bool)>,
    /// Set by [`EgressLink::close`]; otherwise dropping closes the leg.
    closed: bool,
}

impl Drop for HubEgress {
    fn drop(&mut self) {
        if !self.closed {
            self.hub.close_soon(self.leg);
        }
    }
}

/// A subscription leg with its own webrtc-rs peer connection.
struct PerLinkEgress {
    link: PeerLink,
    media: Arc<PublishedMedia>,
    video: Option<(Arc<TrackLocalStaticRTP>, Arc<dyn RtpSender>)>,
    audio: Option<(Arc<TrackLocalStaticRTP>, Arc<dyn RtpSender>)>,
    /// The egress tracks and whether they are in the fan-out yet.
    state: Arc<std::sync::Mutex<EgressState>>,
    want: std::sync::Mutex<(bool, bool)>,
    tasks: std::sync::Mutex<Tasks>,
    _counted: GaugeGuard,
}

/// Egress SSRCs are ours to choose; random per track so two subscriptions in one
/// client never collide.
fn random_ssrc() -> u32 {
    rand::random::<u32>() | 1
}

fn spawn_counted(
    metrics: &Metrics,
    future: impl std::future::Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    let guard = metrics.tasks.enter();
    tokio::spawn(async move {
        let _guard = guard;
        future.await;
    })
}

impl Sfu {
    /// An SFU binding its links to `ip`, egress legs as `HUDDLE_EGRESS` says.
    pub fn new(ip: IpAddr, metrics: Arc<Metrics>) -> Self {
        Self::with_mode(ip, metrics, EgressMode::from_env())
    }

    /// An SFU binding its links to `ip` with the given egress design.
    pub fn with_mode(ip: IpAddr, metrics: Arc<Metrics>, mode: EgressMode) -> Self {
        Self {
            ip,
            metrics,
            mode,
            hub: std::sync::Mutex::new(None),
        }
    }

    /// The egress hub, started on first use; `None` in per-link mode.
    fn hub(&self) -> Result<Option<hub::Hub>, SfuError> {
        if self.mode != EgressMode::Hub {
            return Ok(None);
        }
        let mut hub = self.hub.lock().unwrap_or_else(|e| e.into_inner());
        if hub.is_none() {
            *hub = Some(
                hub::Hub::start(self.ip, Arc::clone(&self.metrics)).map_err(|e| {
                    SfuError::Internal(LinkError::Rtc {
                        what: "starting the egress hub",
                        detail: e.to_string(),
                    })
                })?,
            );
        }
        Ok(hub.clone())
    }

    /// Answers a publisher's offer. Returns the link, the stream's media (to
    /// register in the room) and the SDP answer.
    pub async fn publish(
        &self,
        link_id: LinkId,
        offer: String,
        inbox: SessionInbox,
    ) -> Result<(IngressLink, Arc<PublishedMedia>, String), SfuError> {
        let (link, signals) = PeerLink::new(self.ip).await.map_err(SfuError::Internal)?;
        let counted = self.metrics.peer_connections.enter();
        let answer = match link.answer(offer).await {
            Ok(answer) => answer,
            Err(e) => {
                link.close().await;
                return Err(SfuError::PublishOffer(e));
            }
        };
        let hub_input = match self.hub() {
            Ok(hub) => hub.map(|h| h.media_input()),
            Err(e) => {
                link.close().await;
                return Err(e);
            }
        };
        let media = PublishedMedia::new(Arc::clone(&self.metrics), hub_input);
        let task = spawn_counted(
            &self.metrics,
            ingress_signals(
                link_id,
                signals,
                Arc::clone(&media),
                inbox,
                Arc::clone(&self.metrics),
            ),
        );
        Ok((
            IngressLink {
                link,
                media: Arc::clone(&media),
                _tasks: Tasks(vec![task]),
                _counted: counted,
            },
            media,
            answer,
        ))
    }

    /// Creates a subscription leg for `media` and returns it with the SDP offer.
    pub async fn subscribe(
        &self,
        link_id: LinkId,
        media: &Arc<PublishedMedia>,
        stream: &crate::protocol::StreamInfo,
        want_audio: bool,
        want_video: bool,
        inbox: SessionInbox,
    ) -> Result<(EgressLink, String), SfuError> {
        if let Some(hub) = self.hub()? {
            let (leg, offer) = hub
                .create(hub::CreateLeg {
                    link_id,
                    media: Arc::clone(media),
                    stream_label: format!("huddle-{link_id}"),
                    video: stream.video.is_some(),
                    audio: stream.audio,
                    want_audio,
                    want_video,
                    inbox,
                    counted: self.metrics.peer_connections.enter(),
                })
                .await?;
            let egress = HubEgress {
                hub,
                leg,
                media: Arc::clone(media),
                has_video: stream.video.is_some(),
                has_audio: stream.audio,
                want: std::sync::Mutex::new((want_audio, want_video)),
                closed: false,
            };
            return Ok((
                EgressLink {
                    inner: Egress::Hub(egress),
                },
                offer,
            ));
        }
        let (link, signals) = PeerLink::new(self.ip).await.map_err(SfuError::Internal)?;
        let counted = self.metrics.peer_connections.enter();
        let stream_label = format!("huddle-{link_id}");
        let add = async |kind: RtpCodecKind, id: &str| -> Result<_, SfuError> {
            let description =
                crate::link::track_description(kind, random_ssrc(), &stream_label, id);
            let track = Arc::new(TrackLocalStaticRTP::new(description));
            let sender = link
                .pc()
                .add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
                .await
                .map_err(|e| {
                    SfuError::Internal(LinkError::Rtc {
                        what: "adding an egress track",
                        detail: e.to_string(),
                    })
                })?;
            Ok((track, sender))
        };
        let video = if stream.video.is_some() {
            Some(add(RtpCodecKind::Video, "video").await?)
        } else {
            None
        };
        let audio = if stream.audio {
            Some(add(RtpCodecKind::Audio, "audio").await?)
        } else {
            None
        };
        let offer = match link.create_offer().await {
            Ok(offer) => offer,
            Err(e) => {
                link.close().await;
                return Err(SfuError::Internal(e));
            }
        };
        let media = Arc::clone(media);
        let state = Arc::new(std::sync::Mutex::new(EgressState::default()));
        let mut tasks = vec![spawn_counted(
            &self.metrics,
            egress_signals(
                link_id,
                signals,
                Arc::clone(&media),
                Arc::clone(&state),
                inbox,
            ),
        )];
        // Keyframe requests from the subscriber go to the publisher.
        if let Some((track, _)) = &video {
            let track = Arc::clone(track);
            let media = Arc::clone(&media);
            tasks.push(spawn_counted(&self.metrics, async move {
                while let Some(event) = track.poll().await {
                    let TrackLocalEvent::OnRtcpPacket(packets) = event else {
                        continue;
                    };
                    if packets.iter().any(|p| is_keyframe_request(p.as_ref())) {
                        media.request_keyframe();
                    }
                }
            }));
        }
        Ok((
            EgressLink {
                inner: Egress::PerLink(PerLinkEgress {
                    link,
                    media,
                    video,
                    audio,
                    state,
                    want: std::sync::Mutex::new((want_audio, want_video)),
                    tasks: std::sync::Mutex::new(Tasks(tasks)),
                    _counted: counted,
                }),
            },
            offer,
        ))
    }
}

fn is_keyframe_request(packet: &dyn rtc::rtcp::Packet) -> bool {
    use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
    use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
    let any = packet.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

fn link_failed(state: RTCPeerConnectionState) -> bool {
    matches!(
        state,
        RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
    )
}

fn tell(inbox: &SessionInbox, link_id: LinkId, state: LinkState) {
    // If the inbox is full the session is being closed for slowness anyway.
    inbox
        .try_send(SessionEvent::Link(LinkEvent { link_id, state }))
        .ok();
}

async fn ingress_signals(
    link_id: LinkId,
    mut signals: LinkSignals,
    media: Arc<PublishedMedia>,
    inbox: SessionInbox,
    metrics: Arc<Metrics>,
) {
    let mut forwarders = Tasks(Vec::new());
    while let Some(signal) = signals.recv().await {
        match signal {
            LinkSignal::Track(track) => {
                let media = Arc::clone(&media);
                forwarders
                    .0
                    .push(spawn_counted(&metrics, media.forward(track)));
            }
            LinkSignal::Candidate(c) => tell(&inbox, link_id, LinkState::Candidate(c)),
            LinkSignal::State(RTCPeerConnectionState::Connected) => {
                tell(&inbox, link_id, LinkState::Connected);
            }
            LinkSignal::State(state) if link_failed(state) => {
                tell(&inbox, link_id, LinkState::Failed);
                break;
            }
            LinkSignal::State(_) => {}
        }
    }
    // Dropping `forwarders` aborts the forwarding tasks.
}

/// Egress tracks join the fan-out only when both the answer fixed their payload
/// types and DTLS is up: packets written earlier are dropped by the library (with
/// a warning each) and, worse, leave sequence gaps the subscriber NACKs forever.
#[derive(Default)]
struct EgressState {
    connected: bool,
    registered: bool,
    sinks: Vec<(RtpCodecKind, Arc<EgressTrack>)>,
}

impl EgressState {
    fn register_if_ready(&mut self, media: &PublishedMedia) {
        if self.connected && !self.registered && !self.sinks.is_empty() {
            self.registered = true;
            for (kind, sink) in &self.sinks {
                media.add_sink(*kind, Arc::clone(sink));
            }
            // A new subscriber needs a keyframe to start decoding.
            media.request_keyframe();
        }
    }
}

fn lock_state(state: &std::sync::Mutex<EgressState>) -> std::sync::MutexGuard<'_, EgressState> {
    // Plain flags and a list: consistent even after a panic elsewhere.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

async fn egress_signals(
    link_id: LinkId,
    mut signals: LinkSignals,
    media: Arc<PublishedMedia>,
    state: Arc<std::sync::Mutex<EgressState>>,
    inbox: SessionInbox,
) {
    while let Some(signal) = signals.recv().await {
        match signal {
            LinkSignal::Candidate(c) => tell(&inbox, link_id, LinkState::Candidate(c)),
            LinkSignal::State(RTCPeerConnectionState::Connected) => {
                let mut state = lock_state(&state);
                state.connected = true;
                state.register_if_ready(&media);
                drop(state);
                tell(&inbox, link_id, LinkState::Connected);
            }
            LinkSignal::State(state) if link_failed(state) => {
                tell(&inbox, link_id, LinkState::Failed);
                break;
            }
            LinkSignal::State(_) | LinkSignal::Track(_) => {}
        }
    }
}

impl EgressLink {
    /// Applies the subscriber's answer and starts forwarding.
    pub async fn apply_answer(&self, answer: String) -> Result<(), SfuError> {
        match &self.inner {
            Egress::PerLink(e) => e.apply_answer(answer).await,
            Egress::Hub(e) => e.hub.apply_answer(e.leg, answer).await,
        }
    }

    /// Which media are forwarded now (audio, video).
    pub fn forwarding(&self) -> (bool, bool) {
        match &self.inner {
            Egress::PerLink(e) => e.forwarding(),
            Egress::Hub(e) => {
                let (want_audio, want_video) = *e.want.lock().unwrap_or_else(|p| p.into_inner());
                (want_audio && e.has_audio, want_video && e.has_video)
            }
        }
    }

    /// Starts/stops forwarding audio and video.
    pub fn set_forwarding(&self, audio: bool, video: bool) {
        match &self.inner {
            Egress::PerLink(e) => e.set_forwarding(audio, video),
            Egress::Hub(e) => {
                let (_, was_video) = std::mem::replace(
                    &mut *e.want.lock().unwrap_or_else(|p| p.into_inner()),
                    (audio, video),
                );
                e.hub.set_forwarding(e.leg, audio, video);
                if video && !was_video {
                    e.media.request_keyframe();
                }
            }
        }
    }

    /// Asks the publisher for a keyframe on this subscriber's behalf.
    pub fn request_keyframe(&self) {
        match &self.inner {
            Egress::PerLink(e) => e.media.request_keyframe(),
            Egress::Hub(e) => e.media.request_keyframe(),
        }
    }

    /// Adds a trickled candidate from the client.
    pub async fn add_candidate(&self, candidate: IceCandidate) -> Result<(), SfuError> {
        match &self.inner {
            Egress::PerLink(e) => e.add_candidate(candidate).await,
            Egress::Hub(e) => e.hub.add_candidate(e.leg, candidate).await,
        }
    }

    /// Stops forwarding and closes the peer connection.
    pub async fn close(self) {
        match self.inner {
            Egress::PerLink(e) => e.close().await,
            Egress::Hub(mut e) => {
                e.hub.close(e.leg).await;
                e.closed = true;
            }
        }
    }
}

impl PerLinkEgress {
    /// Applies the subscriber's answer and starts forwarding.
    pub async fn apply_answer(&self, answer: String) -> Result<(), SfuError> {
        self.link
            .apply_answer(answer)
            .await
            .map_err(SfuError::Answer)?;
        let (want_audio, want_video) = *self.want.lock().unwrap_or_else(|e| e.into_inner());
        for (kind, slot, enabled) in [
            (RtpCodecKind::Video, &self.video, want_video),
            (RtpCodecKind::Audio, &self.audio, want_audio),
        ] {
            let Some((track, sender)) = slot else {
                continue;
            };
            let parameters = sender.get_parameters().await.map_err(|e| {
                SfuError::Answer(LinkError::Rtc {
                    what: "reading negotiated parameters",
                    detail: e.to_string(),
                })
            })?;
            let payload_type = parameters
                .rtp_parameters
                .codecs
                .first()
                .map(|c| c.payload_type)
                .ok_or_else(|| {
                    SfuError::Answer(LinkError::InvalidSdp(format!(
                        "no codec negotiated for {kind}"
                    )))
                })?;
            let ssrc = parameters
                .encodings
                .first()
                .and_then(|e| e.rtp_coding_parameters.ssrc)
                .unwrap_or_default();
            let sink = Arc::new(EgressTrack::new(
                Arc::clone(track),
                ssrc,
                payload_type,
                enabled,
                &self.media,
            ));
            lock_state(&self.state).sinks.push((kind, sink));
        }
        lock_state(&self.state).register_if_ready(&self.media);
        Ok(())
    }

    /// Which media are forwarded now (audio, video).
    pub fn forwarding(&self) -> (bool, bool) {
        let (want_audio, want_video) = *self.want.lock().unwrap_or_else(|e| e.into_inner());
        (
            want_audio && self.audio.is_some(),
            want_video && self.video.is_some(),
        )
    }

    /// Starts/stops forwarding audio and video.
    pub fn set_forwarding(&self, audio: bool, video: bool) {
        let (_, was_video) = {
            let mut want = self.want.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::replace(&mut *want, (audio, video))
        };
        for (kind, sink) in lock_state(&self.state).sinks.iter() {
            sink.set_enabled(if *kind == RtpCodecKind::Video {
                video
            } else {
                audio
            });
        }
        if video && !was_video {
            self.media.request_keyframe();
        }
    }

    /// Adds a trickled candidate from the client.
    pub async fn add_candidate(&self, candidate: IceCandidate) -> Result<(), SfuError> {
        self.link
            .add_candidate(candidate)
            .await
            .map_err(SfuError::Candidate)
    }

    /// Stops forwarding and closes the peer connection.
    pub async fn close(self) {
        for (kind, sink) in lock_state(&self.state).sinks.drain(..) {
            self.media.remove_sink(kind, &sink);
        }
        drop(std::mem::replace(
            &mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()),
            Tasks(Vec::new()),
        ));
        self.link.close().await;
    }
}
