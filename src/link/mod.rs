//! A link: one WebRTC peer connection, set up the way huddle uses them.
//!
//! Both ends of every media path (the client SDK and the SFU) build their peer
//! connections here, so they agree on codecs and payload types, on NACK and RTCP
//! handling, and on the loopback-friendly socket setup:
//!
//! * UDP bound to one concrete IP (`127.0.0.1:0` by default): the ICE agent skips
//!   loopback candidates on a wildcard bind. mDNS disabled. STUN/TURN servers,
//!   relay-only and an advertised (NAT) address come from an [`ice::IcePolicy`];
//!   by default there are none.
//! * Codecs: H.264 constrained baseline (packetization-mode 1) as payload type
//!   [`H264_PAYLOAD_TYPE`] and Opus as [`OPUS_PAYLOAD_TYPE`], nothing else;
//!   RTX for H.264 ([`rtx`]) on a subscriber link ([`PeerLink::subscriber`],
//!   the egress hub sends its retransmissions on it), on a publish link
//!   ([`PeerLink::publisher`]: its retransmissions and its probe padding,
//!   [`probe_padding`]) and on the server's side of a publish link whose
//!   offer is not a browser's simulcast ([`PeerLink::ingress`]).
//! * Header extensions: the RFC 6464 audio level on audio ([`audio_level`]),
//!   besides what the interceptors register (TWCC).
//! * Interceptors: the library's defaults (sender and receiver reports, TWCC)
//!   with NACK bounded by [`nack`] (no retransmission storms), plus [`rtcp_tap::RtcpTap`], which marks PLI/FIR and
//!   reports for delivery to the application; without it the library never shows
//!   inbound RTCP to us. A publish link ([`PeerLink::publisher`]) adds send-side
//!   congestion control ([`congestion`]: TWCC sender, GCC, pacer).
//! * Signalling is non-trickle by default: [`PeerLink::local_description`]
//!   waits for ICE gathering to complete (host candidates only: milliseconds), so
//!   the SDP carries the candidates. Trickled candidates are still accepted.
//!
//! Callbacks from the library run on its driver task and must not block; the
//! handler only forwards them into a channel that the link's owner drains.

pub mod acked_rate;
pub mod audio_level;
pub mod capture_time;
pub mod congestion;
pub mod counters;
pub mod dtls_replay;
pub mod ice;
pub mod nack;
pub mod nack_generator;
pub mod probe_padding;
pub mod rtcp_stats;
pub mod rtcp_tap;
pub mod rtx;
#[doc(hidden)]
pub mod testing;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::Slot;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateInit, RTCIceConnectionState, RTCIceGatheringState,
    RTCIceTransportPolicy, RTCPeerConnectionIceEvent, RTCPeerConnectionState, RTCSdpType,
    RTCSessionDescription, Registry, SettingEngineBuilder,
};

use crate::protocol::IceCandidate;

/// Payload type of H.264 on every link.
pub const H264_PAYLOAD_TYPE: u8 = 102;
/// Payload type of Opus on every link.
pub const OPUS_PAYLOAD_TYPE: u8 = 111;
/// H.264 RTP clock rate.
pub const VIDEO_CLOCK_RATE: u32 = 90_000;
/// Opus RTP clock rate (always 48 kHz, RFC 7587).
pub const OPUS_CLOCK_RATE: u32 = 48_000;

/// ICE connectivity-check interval while connecting (see [`PeerLink::new`]).
const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(10);
/// Binding requests per candidate pair before it fails: 140 × 10 ms = 1.4 s.
const ICE_MAX_BINDING_REQUESTS: u16 = 140;

/// How long [`PeerLink::local_description`] waits for ICE gathering.
const GATHER_TIMEOUT: Duration = Duration::from_secs(2);

/// The link layer's error. Every variant is a local WebRTC failure; the SDP ones
/// are not retryable with the same input.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LinkError {
    /// The library refused an operation (bad SDP, closed connection...).
    #[error("{what}: {detail}")]
    Rtc {
        /// The operation.
        what: &'static str,
        /// The library's message.
        detail: String,
    },
    /// An SDP of the wrong type or without the expected media.
    #[error("invalid session description: {0}")]
    InvalidSdp(String),
    /// A relay-only link gathered no relay candidate (see [`ice::check_relay`]).
    /// Retrying helps only once the TURN configuration is fixed.
    #[error("{0}")]
    NoRelayCandidate(String),
}

/// Result alias of the link layer.
pub type LinkResult<T> = Result<T, LinkError>;

fn rtc_err(what: &'static str) -> impl FnOnce(webrtc::error::Error) -> LinkError {
    move |e| LinkError::Rtc {
        what,
        detail: e.to_string(),
    }
}

/// The H.264 codec as every link offers it.
pub fn h264_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: "video/H264".into(),
        clock_rate: VIDEO_CLOCK_RATE,
        channels: 0,
        sdp_fmtp_line: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
            .into(),
        rtcp_feedback: vec![],
    }
}

/// The Opus codec as every link offers it.
pub fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: "audio/opus".into(),
        clock_rate: OPUS_CLOCK_RATE,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
        rtcp_feedback: vec![],
    }
}

/// A track description for a local track of `kind` with a fixed SSRC.
pub fn track_description(
    kind: RtpCodecKind,
    ssrc: u32,
    stream: &str,
    id: &str,
) -> MediaStreamTrack {
    track_description_with_rtx(kind, ssrc, None, stream, id)
}

/// [`track_description`] with an RTX SSRC (`a=ssrc-group:FID ssrc rtx`),
/// which stays only if the answer keeps RTX ([`rtx`]).
pub fn track_description_with_rtx(
    kind: RtpCodecKind,
    ssrc: u32,
    rtx: Option<u32>,
    stream: &str,
    id: &str,
) -> MediaStreamTrack {
    let codec = match kind {
        RtpCodecKind::Video => h264_codec(),
        _ => opus_codec(),
    };
    MediaStreamTrack::new(
        stream.to_owned(),
        id.to_owned(),
        id.to_owned(),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                rtx: rtx.map(|ssrc| rtc::rtp_transceiver::rtp_sender::RTCRtpRtxParameters { ssrc }),
                ..Default::default()
            },
            codec,
            ..Default::default()
        }],
    )
}

/// What a link reports to its owner.
pub enum LinkSignal {
    /// A local ICE candidate to trickle to the other side.
    Candidate(IceCandidate),
    /// The connection state changed.
    State(RTCPeerConnectionState),
    /// The remote side's track arrived.
    Track(Arc<dyn TrackRemote>),
}

/// Receives [`LinkSignal`]s. Unbounded because the library's callbacks must not
/// block or fail; what flows here is bounded by nature: a handful of candidates,
/// state changes and tracks per link.
pub type LinkSignals = mpsc::UnboundedReceiver<LinkSignal>;

struct Handler {
    signals: mpsc::UnboundedSender<LinkSignal>,
    gathered: watch::Sender<bool>,
    /// The ICE connection state (it can come back to connected after an
    /// ICE restart without the peer connection's state saying so).
    ice: watch::Sender<RTCIceConnectionState>,
    /// Trickled host candidates name this address (`IcePolicy::advertised_ip`).
    advertise: Option<IpAddr>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            // Every huddle link bundles its media on one transport, so a
            // candidate belongs to the first m-line. The library leaves the
            // mid empty (`""`), which no peer can look up: say "index 0"
            // instead, which every WebRTC stack accepts (W3C
            // `addIceCandidate`: `sdpMid` null, `sdpMLineIndex` used).
            let candidate = IceCandidate {
                candidate: match self.advertise {
                    Some(public) => ice::advertise_candidate(&init.candidate, public),
                    None => init.candidate,
                },
                sdp_mid: init.sdp_mid.filter(|mid| !mid.is_empty()),
                sdp_mline_index: init.sdp_mline_index.or(Some(0)),
            };
            self.signals.send(LinkSignal::Candidate(candidate)).ok(); // owner gone: link closing
        }
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        // Gathering starts again at an ICE restart.
        self.gathered
            .send_replace(state == RTCIceGatheringState::Complete);
    }

    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        self.ice.send_replace(state);
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.signals.send(LinkSignal::State(state)).ok(); // owner gone: link closing
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        self.signals.send(LinkSignal::Track(track)).ok(); // owner gone: link closing
    }
}

/// One peer connection and the means to signal it. A clone is another
/// handle to the same connection (closing either closes it).
#[derive(Clone)]
pub struct PeerLink {
    pc: Arc<dyn PeerConnection>,
    gathered: watch::Receiver<bool>,
    ice: watch::Receiver<RTCIceConnectionState>,
    rtcp_stats: rtcp_stats::RtcpStats,
    policy: ice::IcePolicy,
    /// The uplink estimate, on a link built with congestion control.
    send_estimate: Option<congestion::SendEstimate>,
    /// RTX packets received, by verdict (zero on a link without RTX).
    rtx: Arc<rtx::RtxCounters>,
}

impl PeerLink {
    /// Builds a peer connection bound to `ip` (port chosen by the OS).
    pub async fn new(ip: IpAddr) -> LinkResult<(Self, LinkSignals)> {
        Self::build(ip, None, ice::IcePolicy::default(), None, false).await
    }

    /// [`PeerLink::new`] with STUN/TURN servers, relay-only or an advertised
    /// address (see [`ice`]).
    pub async fn with_policy(
        ip: IpAddr,
        policy: &ice::IcePolicy,
    ) -> LinkResult<(Self, LinkSignals)> {
        Self::build(ip, None, policy.clone(), None, false).await
    }

    /// [`PeerLink::with_policy`] for receiving a subscription from the
    /// egress hub: it also accepts RTX for H.264 ([`rtx`]), so the hub's
    /// retransmissions arrive on their own stream ([`PeerLink::rtx_count`]).
    pub async fn subscriber(
        ip: IpAddr,
        policy: &ice::IcePolicy,
    ) -> LinkResult<(Self, LinkSignals)> {
        Self::build(ip, None, policy.clone(), None, true).await
    }

    /// [`PeerLink::with_policy`] with send-side congestion control: what this
    /// link sends is numbered (transport-wide-cc), the remote's feedback
    /// drives a GCC estimate ([`PeerLink::send_estimate`]) and a pacer. It
    /// offers RTX for H.264 (video tracks described with an RTX SSRC,
    /// [`track_description_with_rtx`]): retransmissions and probe padding
    /// ([`probe_padding`]) go on it where the answer keeps it.
    pub async fn publisher(
        ip: IpAddr,
        policy: &ice::IcePolicy,
        congestion: congestion::CongestionConfig,
    ) -> LinkResult<(Self, LinkSignals)> {
        Self::build(ip, None, policy.clone(), Some(congestion), true).await
    }

    /// The server's side of a publish link, built for `offer`: it accepts
    /// RTX ([`rtx`]) unless the offer is a browser's simulcast
    /// ([`rtx::offer_allows`]: rtc 0.21.1 cannot tell which layer an RTX
    /// packet repairs there), so a native publisher's retransmissions and
    /// probe padding arrive on a stream of their own.
    pub async fn ingress(
        ip: IpAddr,
        policy: &ice::IcePolicy,
        offer: &str,
    ) -> LinkResult<(Self, LinkSignals)> {
        Self::build(ip, None, policy.clone(), None, rtx::offer_allows(offer)).await
    }

    /// [`PeerLink::new`] offering only these SRTP protection profiles in its
    /// DTLS handshake (tests of peers that lack the usual ones).
    #[doc(hidden)]
    pub async fn with_srtp_profiles(
        ip: IpAddr,
        profiles: Vec<rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile>,
    ) -> LinkResult<(Self, LinkSignals)> {
        Self::build(ip, Some(profiles), ice::IcePolicy::default(), None, false).await
    }

    async fn build(
        ip: IpAddr,
        srtp_profiles: Option<Vec<rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile>>,
        policy: ice::IcePolicy,
        congestion: Option<congestion::CongestionConfig>,
        with_rtx: bool,
    ) -> LinkResult<(Self, LinkSignals)> {
        ice::check_servers(&policy)?;
        let mut media = MediaEngine::default();
        for (codec, payload_type, kind) in [
            (h264_codec(), H264_PAYLOAD_TYPE, RtpCodecKind::Video),
            (opus_codec(), OPUS_PAYLOAD_TYPE, RtpCodecKind::Audio),
        ] {
            media
                .register_codec(
                    RTCRtpCodecParameters {
                        rtp_codec: codec,
                        payload_type,
                    },
                    kind,
                )
                .map_err(rtc_err("registering codecs"))?;
        }
        // Publishers send their level in every audio packet (RFC 6464); the
        // SFU picks a top-N subscriber's talkers by it (`audio_level`).
        media
            .register_header_extension(
                rtc::rtp_transceiver::rtp_sender::RTCRtpHeaderExtensionCapability {
                    uri: audio_level::AUDIO_LEVEL_URI.to_owned(),
                },
                RtpCodecKind::Audio,
                None,
            )
            .map_err(rtc_err("registering the audio level extension"))?;
        // Publishers stamp each video packet with its capture time; the SFU
        // lines simulcast layers up by it (`capture_time`).
        media
            .register_header_extension(
                rtc::rtp_transceiver::rtp_sender::RTCRtpHeaderExtensionCapability {
                    uri: capture_time::ABS_CAPTURE_TIME_URI.to_owned(),
                },
                RtpCodecKind::Video,
                None,
            )
            .map_err(rtc_err("registering the capture time extension"))?;
        // A browser's simulcast sends its layers in one media section, told
        // apart by the mid and rid header extensions (RFC 8852): the server's
        // publish link must accept them to receive the layers
        // (`server::sfu::rid_layers`).
        rtc::peer_connection::configuration::interceptor_registry::configure_simulcast_extension_headers(
            &mut media,
        )
        .map_err(rtc_err("registering the simulcast extensions"))?;
        if with_rtx {
            rtx::register(&mut media).map_err(rtc_err("registering RTX"))?;
        }
        let rtx_counters = Arc::new(rtx::RtxCounters::default());
        let padding = congestion.map(|_| probe_padding::PaddingRequest::default());
        let registry = nack::register_interceptors(
            Registry::new(),
            &mut media,
            Arc::clone(&rtx_counters),
            padding.clone(),
        )
        .map_err(rtc_err("registering interceptors"))?
        .with(
            Slot::from(rtcp_tap::RTCP_TAP_SLOT),
            rtcp_tap::RtcpTap::default(),
        );
        let rtcp_stats = rtcp_stats::RtcpStats::default();
        let registry = registry.with(
            Slot::from(rtcp_stats::RTCP_STATS_SLOT),
            rtcp_stats.interceptor(),
        );
        let (registry, send_estimate) = match (congestion, padding) {
            (Some(config), Some(padding)) => {
                let (registry, estimate) = congestion::register(registry, config, padding);
                (registry, Some(estimate))
            }
            _ => (registry, None),
        };
        let mut settings = SettingEngineBuilder::new();
        if let Some(profiles) = srtp_profiles {
            settings = settings.with_srtp_protection_profiles(profiles);
        }
        let settings = settings
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            // The DTLS client's first flight only leaves on the ICE agent's next
            // tick, which is the check interval (200 ms by default) while
            // connecting: every link paid ~200 ms between ICE connected and
            // connected. A 10 ms interval during setup (the agent switches to its
            // keepalive interval once connected) cuts that to ~10 ms; 140 checks
            // keep the 1.4 s a pair gets before it is declared failed.
            .with_ice_connection_attempts(Some(ICE_CHECK_INTERVAL), Some(ICE_MAX_BINDING_REQUESTS))
            .with_discard_local_candidates_during_ice_restart(
                policy.on_restart == ice::RestartSockets::Rebind,
            )
            .build();
        let (signals, signal_rx) = mpsc::unbounded_channel();
        let (gathered, gathered_rx) = watch::channel(false);
        let (ice, ice_rx) = watch::channel(RTCIceConnectionState::New);
        let mut configuration =
            RTCConfigurationBuilder::new().with_ice_servers(policy.rtc_servers());
        if policy.relay_only {
            configuration = configuration.with_ice_transport_policy(RTCIceTransportPolicy::Relay);
        }
        let advertise = policy.advertised_ip;
        let pc = PeerConnectionBuilder::new()
            .with_configuration(configuration.build())
            .with_media_engine(media)
            .with_setting_engine(settings)
            .with_interceptor_registry(registry)
            .with_handler(Arc::new(Handler {
                signals,
                gathered,
                ice,
                advertise,
            }))
            .with_udp_addrs(vec![std::net::SocketAddr::new(ip, 0)])
            .build()
            .await
            .map_err(rtc_err("building the peer connection"))?;
        Ok((
            Self {
                pc: Arc::new(pc),
                gathered: gathered_rx,
                ice: ice_rx,
                rtcp_stats,
                policy,
                send_estimate,
                rtx: rtx_counters,
            },
            signal_rx,
        ))
    }

    /// RTX packets this link received so far, by verdict ([`rtx::RtxVerdict`]).
    pub fn rtx_count(&self) -> rtx::RtxCount {
        self.rtx.get()
    }

    /// The counters behind [`PeerLink::rtx_count`] (to read after the link
    /// is handed on).
    pub fn rtx_counters(&self) -> Arc<rtx::RtxCounters> {
        Arc::clone(&self.rtx)
    }

    /// RTT, loss and jitter the remote reports about what this link sends.
    pub fn rtcp_stats(&self) -> &rtcp_stats::RtcpStats {
        &self.rtcp_stats
    }

    /// The RTP and transport counters the library keeps for this link.
    pub async fn counters(&self) -> counters::LinkCounters {
        counters::read(self.pc.as_ref()).await
    }

    /// The uplink estimate of a link built by [`PeerLink::publisher`].
    pub fn send_estimate(&self) -> Option<&congestion::SendEstimate> {
        self.send_estimate.as_ref()
    }

    /// The underlying peer connection.
    pub fn pc(&self) -> &Arc<dyn PeerConnection> {
        &self.pc
    }

    /// The candidate pair ICE selected, once it has one: whether media goes
    /// directly or through a TURN relay.
    pub async fn selected_pair(&self) -> Option<ice::SelectedPair> {
        ice::selected_pair(&self.pc).await
    }

    /// Waits (bounded) for gathering to complete, then returns the local SDP with
    /// its candidates, as the peer must see them (advertised address), or
    /// [`LinkError::NoRelayCandidate`] for a relay-only link without a relay.
    async fn local_description(&self) -> LinkResult<String> {
        let sdp = self.gathered_description().await?;
        ice::check_relay(&sdp, &self.policy)?;
        Ok(match self.policy.advertised_ip {
            Some(public) => ice::advertise(&sdp, public),
            None => sdp,
        })
    }

    async fn gathered_description(&self) -> LinkResult<String> {
        let mut gathered = self.gathered.clone();
        // On timeout send what we have: trickled candidates follow as messages.
        tokio::time::timeout(GATHER_TIMEOUT, gathered.wait_for(|done| *done))
            .await
            .ok();
        self.pc
            .local_description()
            .await
            .map(|d| d.sdp)
            .ok_or_else(|| LinkError::InvalidSdp("no local description".into()))
    }

    /// Creates an offer, applies it locally and returns it (with candidates).
    pub async fn create_offer(&self) -> LinkResult<String> {
        let offer = self
            .pc
            .create_offer(None)
            .await
            .map_err(rtc_err("creating the offer"))?;
        self.pc
            .set_local_description(offer)
            .await
            .map_err(rtc_err("applying the local offer"))?;
        self.local_description().await
    }

    /// Creates an offer that restarts ICE (new ufrag and password, RFC 8445
    /// §9), applies it locally and returns it. DTLS and SRTP stay: only the
    /// candidate pairs are checked again. The host candidates are kept.
    pub async fn restart_offer(&self) -> LinkResult<String> {
        let mut gathered = self.gathered.clone();
        gathered.borrow_and_update();
        let offer = self
            .pc
            .create_offer(Some(rtc::peer_connection::configuration::RTCOfferOptions {
                ice_restart: true,
            }))
            .await
            .map_err(rtc_err("creating the restart offer"))?;
        self.pc
            .set_local_description(offer)
            .await
            .map_err(rtc_err("applying the restart offer"))?;
        self.regathered_description(gathered).await
    }

    /// After an ICE restart: waits (bounded) for the gathering it started
    /// (on new sockets, with [`ice::RestartSockets::Rebind`]) to complete,
    /// so the SDP names the addresses the host has now; then as
    /// [`PeerLink::local_description`]. `gathered` was marked seen before
    /// the restart.
    async fn regathered_description(
        &self,
        mut gathered: watch::Receiver<bool>,
    ) -> LinkResult<String> {
        if self.policy.on_restart == ice::RestartSockets::Rebind {
            let fresh = async {
                while gathered.changed().await.is_ok() {
                    if *gathered.borrow_and_update() {
                        break;
                    }
                }
            };
            // On timeout send what we have: trickled candidates follow.
            tokio::time::timeout(GATHER_TIMEOUT, fresh).await.ok();
        }
        self.local_description().await
    }

    /// Whether ICE is connected now (a pair works).
    pub fn ice_connected(&self) -> bool {
        matches!(
            *self.ice.borrow(),
            RTCIceConnectionState::Connected | RTCIceConnectionState::Completed
        )
    }

    /// The ICE ufrag of the local description now applied (changes with
    /// every ICE restart).
    pub async fn local_ufrag(&self) -> Option<String> {
        let sdp = self.pc.local_description().await?.sdp;
        ice_ufrag(&sdp).map(str::to_owned)
    }

    /// Applies a remote offer and returns the local answer (with candidates).
    /// An offer with new ICE credentials on a connected link restarts ICE
    /// (the answerer's side of a restart).
    pub async fn answer(&self, offer_sdp: String) -> LinkResult<String> {
        let restarts = match self.pc.current_remote_description().await {
            Some(current) => ice_ufrag(&current.sdp) != ice_ufrag(&offer_sdp),
            None => false,
        };
        let mut gathered = self.gathered.clone();
        gathered.borrow_and_update();
        let offer = RTCSessionDescription::offer(offer_sdp)
            .map_err(|e| LinkError::InvalidSdp(e.to_string()))?;
        self.pc
            .set_remote_description(offer)
            .await
            .map_err(|e| LinkError::InvalidSdp(e.to_string()))?;
        let answer = self
            .pc
            .create_answer(None)
            .await
            .map_err(rtc_err("creating the answer"))?;
        self.pc
            .set_local_description(answer)
            .await
            .map_err(rtc_err("applying the local answer"))?;
        if restarts {
            return self.regathered_description(gathered).await;
        }
        self.local_description().await
    }

    /// Applies the remote answer to our offer.
    pub async fn apply_answer(&self, answer_sdp: String) -> LinkResult<()> {
        let answer = RTCSessionDescription::answer(answer_sdp)
            .map_err(|e| LinkError::InvalidSdp(e.to_string()))?;
        if answer.sdp_type != RTCSdpType::Answer {
            return Err(LinkError::InvalidSdp("expected an answer".into()));
        }
        self.pc
            .set_remote_description(answer)
            .await
            .map_err(|e| LinkError::InvalidSdp(e.to_string()))
    }

    /// Adds a trickled remote candidate.
    pub async fn add_candidate(&self, candidate: IceCandidate) -> LinkResult<()> {
        self.pc
            .add_ice_candidate(RTCIceCandidateInit {
                candidate: candidate.candidate,
                sdp_mid: candidate.sdp_mid,
                sdp_mline_index: candidate.sdp_mline_index,
                ..Default::default()
            })
            .await
            .map_err(|e| LinkError::InvalidSdp(e.to_string()))
    }

    /// Closes the connection: its sockets and driver task end.
    pub async fn close(&self) {
        if let Err(e) = self.pc.close().await {
            tracing::debug!("closing peer connection: {e}");
        }
    }
}

/// The first `a=ice-ufrag` of an SDP (huddle links bundle everything on one
/// transport, so there is one).
pub fn ice_ufrag(sdp: &str) -> Option<&str> {
    sdp.lines()
        .find_map(|line| line.trim_end().strip_prefix("a=ice-ufrag:"))
}

/// Milliseconds since `start`, for timing logs.
pub fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}
