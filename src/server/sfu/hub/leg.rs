//! One subscriber leg: its `rtc` core and the state machine that says what
//! the hub may do with it.
//!
//! ```text
//!  Offered ──answer──▶ Answered ──DTLS up──▶ Connected{Direct | Core}
//!     │                   │                        │
//!     └───────────────────┴────ICE/DTLS failed─────┴──▶ Failed
//!  (closing, from any state, removes the leg from the hub)
//! ```
//!
//! * [`LegState::Offered`]: the offer went out; the tracks have their SSRCs
//!   but no payload types yet.
//! * [`LegState::Answered`]: the answer fixed the payload types, so each
//!   track has its [`Rewriter`]; ICE and DTLS are under way.
//! * [`LegState::Connected`]: DTLS is up and the leg is in the fan-out.
//!   [`Egress::Direct`]: the hub seals the media with the leg's SRTP key and
//!   sends it to the remote end of the ICE-selected pair.
//!   [`Egress::Core`]: the key could not be had (the library changed how it
//!   derives keys): media goes through the core's pipeline, slower but
//!   correct; counted in `/metrics` and logged as an error.
//! * [`LegState::Failed`]: reported to the session once, out of the fan-out;
//!   the session closes it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::{Registry, SenderReportBuilder, Slot};
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::{RTCConfigurationBuilder, RTCOfferOptions};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCDtlsRole, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp_transceiver::rtp_sender::{RTCPFeedback, RTCRtpCodecParameters, RtpCodecKind};
use rtc::rtp_transceiver::{RTCRtpSenderId, RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use std::time::Duration;

use super::direct::{DirectEgress, Resend, SendReport, SentHistory};
use super::srtp_keys::KeyCapture;
use super::{CreateLeg, LegSource};
use crate::link::nack::BoundedNackResponder;
use crate::link::rtcp_tap::{RTCP_TAP_SLOT, RtcpTap};
use crate::link::rtx::RtxSender;
use crate::link::{
    H264_PAYLOAD_TYPE, LinkError, OPUS_CLOCK_RATE, OPUS_PAYLOAD_TYPE, VIDEO_CLOCK_RATE, h264_codec,
    opus_codec, track_description_with_rtx,
};
use crate::protocol::LinkId;
use crate::server::inbox::{LinkState, SessionInbox};
use crate::server::metrics::{GaugeGuard, Metrics};
use crate::server::sfu::error::SfuError;
use crate::server::sfu::rewrite::Rewriter;

/// Most STUN checks a leg holds while it waits for the answer (see
/// [`Leg::hold_early_check`]); later ones are dropped (the peer retries).
pub const EARLY_CHECKS_MAX: usize = 16;

/// ICE settings as in `link::PeerLink::new` (see there for why).
const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(10);
const ICE_MAX_BINDING_REQUESTS: u16 = 140;

/// The SRTP protection profiles an egress leg offers in its DTLS handshake:
/// the AEAD AES-GCM ones only (RFC 7714; every browser has them), so the
/// key the hub seals with is always one [`KeyCapture`] recognises.
///
/// A WHEP leg whose player asked for it (`aes_cm_too`,
/// [`CreateLeg::aes_cm`]) also offers `SRTP_AES128_CM_HMAC_SHA1_80`, for
/// players that have nothing else (GStreamer 1.22's DTLS). Browsers pick it
/// too when it is offered (Chromium lists it first), so it is opt-in: such
/// a leg always sends through its core ([`Egress::Core`]), slower but
/// correct whichever profile was chosen.
pub fn srtp_profiles(aes_cm_too: bool) -> Vec<SrtpProtectionProfile> {
    let mut profiles = vec![
        SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
        SrtpProtectionProfile::Srtp_Aead_Aes_256_Gcm,
    ];
    if aes_cm_too {
        profiles.push(SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80);
    }
    profiles
}

/// Egress SSRCs are ours to choose; random per track so two subscriptions in one
/// client never collide.
fn random_ssrc() -> u32 {
    rand::random::<u32>() | 1
}

fn internal(what: &'static str) -> impl FnOnce(rtc::shared::error::Error) -> SfuError {
    move |e| {
        SfuError::Internal(LinkError::Rtc {
            what,
            detail: e.to_string(),
        })
    }
}

/// A track as offered: its sender and SSRC, no payload type yet.
pub struct OfferedTrack {
    sender: RTCRtpSenderId,
    ssrc: u32,
    /// The RTX SSRC offered with a video track (`a=ssrc-group:FID`).
    rtx_ssrc: Option<u32>,
    enabled: bool,
}

/// A forwarded track of an answered leg.
pub struct LegTrack {
    pub ssrc: u32,
    pub clock_rate: u32,
    pub rewriter: Rewriter,
    pub enabled: bool,
    /// Held back by `auto` (video only; `auto.rs`), whatever `enabled` says.
    pub paused: bool,
    /// Sent packets for NACKs (video sent directly).
    pub history: Option<SentHistory>,
    /// Where resends go when the answer kept RTX (video; `link::rtx`);
    /// `None`: resent as the original packets.
    pub rtx: Option<RtxSender>,
    /// Sender-report state (sent directly).
    pub report: SendReport,
}

impl LegTrack {
    fn set_enabled(&mut self, on: bool) {
        if self.enabled && !on {
            self.rewriter.pause();
        }
        self.enabled = on;
    }
}

/// The tracks of an answered leg.
pub struct Tracks {
    pub video: Option<LegTrack>,
    pub audio: Option<LegTrack>,
    /// A top-N leg's audio slots (`topn::SLOTS`); empty on other legs.
    pub slots: Vec<LegTrack>,
}

impl Tracks {
    pub fn get_mut(&mut self, video: bool) -> Option<&mut LegTrack> {
        if video {
            self.video.as_mut()
        } else {
            self.audio.as_mut()
        }
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut LegTrack> {
        [self.video.as_mut(), self.audio.as_mut()]
            .into_iter()
            .flatten()
            .chain(self.slots.iter_mut())
    }
}

/// How a connected leg's media leaves.
pub enum Egress {
    /// Sealed by the hub, sent to `dest` (the remote end of the selected
    /// candidate pair) without the core.
    Direct {
        srtp: Box<DirectEgress>,
        dest: SocketAddr,
        _counted: GaugeGuard,
    },
    /// Through the core's pipeline (its NACK responder and reports).
    Core,
}

/// Where a leg is in its life (module docs).
pub enum LegState {
    Offered {
        video: Option<OfferedTrack>,
        audio: Option<OfferedTrack>,
        slots: Vec<OfferedTrack>,
    },
    Answered(Tracks),
    Connected(Tracks, Egress),
    Failed,
}

/// Where the leg's ICE negotiation stands, apart from [`LegState`]: an ICE
/// restart (new credentials, same DTLS and SRTP) does not interrupt the
/// media state, so it is a state of its own.
///
/// ```text
///  Stable ──restart offer──▶ RestartOffered ──answer──▶ Stable
///               ▲                  │ (another restart offer: a new one replaces it)
///               └──────────────────┘
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Negotiation {
    /// No offer of ours is waiting for an answer beyond the first
    /// ([`LegState::Offered`] covers that one).
    Stable,
    /// A restart offer went out; the subscriber's answer is due.
    RestartOffered,
}

/// How much of a leg the loop must look at in its next service pass; each
/// level includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Work {
    /// Nothing.
    None,
    /// Sealed datagrams to send; the core has nothing new.
    Send,
    /// Media went into the core: poll its writes too.
    Writes,
    /// Something else went into the core (a read, a timer, a command): poll
    /// its events, reads and timer too.
    All,
}

/// One subscriber connection.
pub struct Leg {
    pub link_id: LinkId,
    pub pc: RTCPeerConnection,
    /// What the leg forwards: one stream, or a top-N mix.
    pub source: LegSource,
    /// The session this leg reports to.
    pub inbox: SessionInbox,
    /// One of the leg's senders: the way to its (bundled) transport.
    pub(super) any_sender: RTCRtpSenderId,
    pub state: LegState,
    /// The simulcast layer forwarded on the video track (slot 0 for a
    /// stream without layers).
    pub layers: crate::server::sfu::layers::LayerSelect,
    /// The hub chooses the layer (`auto`, `auto.rs`).
    pub auto: Option<crate::server::sfu::downlink::AutoLayer>,
    /// `auto` paused the video: not even the smallest layer fits.
    pub video_paused: bool,
    /// ICE restarts under way (see [`Negotiation`]).
    pub negotiation: Negotiation,
    /// ICE restarts offered so far (logs and tests).
    pub restarts: u32,
    /// Next time the core wants `handle_timeout`.
    pub deadline: Option<Instant>,
    pub last_timer: Option<Instant>,
    /// What the next service pass must do (the leg is in the loop's work
    /// list iff this is not `Work::None`).
    pub work: Work,
    /// Records the SRTP key derivation of this leg's handshake.
    keys: Arc<KeyCapture>,
    /// Sealed datagrams for the selected address, sent at the next flush.
    pub pending: Vec<BytesMut>,
    /// STUN checks that arrived before the answer, with their source.
    early_checks: Vec<(SocketAddr, BytesMut)>,
    /// Early checks handed to the core once the answer was applied.
    pub early_checks_replayed: usize,
    /// Replays the core's last DTLS flight when its handshake stalls under
    /// loss ([`crate::link::dtls_replay`]).
    pub dtls_replay: crate::link::dtls_replay::DtlsReplay,
    /// Whether the leg offered AES-CM too (a WHEP leg that asked,
    /// [`srtp_profiles`]): then sending through the core is expected, not a
    /// failure.
    aes_cm_allowed: bool,
    #[cfg(test)]
    keys_unrecognised: bool,
    /// What it forwarded and was asked for (`leg_counters`).
    pub counters: super::LegCounters,
    /// Transport-wide numbering and the downlink estimate (`twcc_leg.rs`),
    /// once connected sealing directly with the extension negotiated.
    pub twcc: Option<Box<super::twcc_leg::LegTwcc>>,
    /// The RFC 6464 audio level id a WHEP player's offer negotiated: the
    /// hub writes the publisher's levels back under it (`fanout`), so
    /// another node relaying this play (`server::cluster::relay`) has them
    /// for its top-N. `None` on the legs the hub offers.
    pub audio_level_ext: Option<u8>,
    /// The capture time id a WHEP player's offer negotiated
    /// (`link::capture_time`): the hub writes each video packet's capture
    /// time back under it, so a relay node lines the layers of a stream it
    /// pulls over several links up by capture, as the owner does
    /// (`sfu::layers`). `None` on the legs the hub offers.
    pub capture_time_ext: Option<u8>,
    _counted: GaugeGuard,
}

impl Leg {
    /// Builds the core, its tracks and its offer, with one host candidate:
    /// the hub's socket at `local_addr`. Returns the leg, its ICE ufrag and
    /// the SDP offer.
    pub fn offer(
        request: CreateLeg,
        local_addr: SocketAddr,
        now: Instant,
    ) -> Result<(Self, String, String), SfuError> {
        let (mut pc, keys) = core(now, false, false)?;
        let (video, audio, slots) = add_tracks(&mut pc, &request)?;
        let offer = pc
            .create_offer(None)
            .map_err(internal("creating the offer"))?;
        pc.set_local_description(now, offer)
            .map_err(internal("applying the local offer"))?;
        let sdp = finish_local(&mut pc, local_addr)?;
        let ufrag = sdp_ufrag(&sdp)?;
        let any_sender = video
            .as_ref()
            .or(audio.as_ref())
            .or(slots.first())
            .map(|t| t.sender);
        let leg = Leg::new(
            request,
            pc,
            keys,
            any_sender,
            LegState::Offered {
                video,
                audio,
                slots,
            },
        )?;
        Ok((leg, ufrag, sdp))
    }

    /// The other way round (WHEP, `server::whep`): the subscriber offered,
    /// the leg answers. The tracks are added first, so the offer's
    /// `recvonly` sections take them; the leg starts `Answered`, since the
    /// answer fixed the payload types. Returns the leg, its ICE ufrag and
    /// the SDP answer (with the host candidate: no trickle needed).
    pub fn answer_offer(
        request: CreateLeg,
        offer: String,
        local_addr: SocketAddr,
        now: Instant,
    ) -> Result<(Self, String, String), SfuError> {
        let bad_offer = |e: rtc::shared::error::Error| {
            SfuError::PlayOffer(LinkError::InvalidSdp(e.to_string()))
        };
        let (mut pc, keys) = core(now, true, request.aes_cm)?;
        // WHEP plays one stream: never a top-N leg, so no slots.
        let (video, audio, _) = add_tracks(&mut pc, &request)?;
        let offer = RTCSessionDescription::offer(offer).map_err(bad_offer)?;
        pc.set_remote_description(now, offer).map_err(bad_offer)?;
        let answer = pc
            .create_answer(None)
            .map_err(internal("creating the answer"))?;
        pc.set_local_description(now, answer)
            .map_err(internal("applying the local answer"))?;
        let sdp = finish_local(&mut pc, local_addr)?;
        let ufrag = sdp_ufrag(&sdp)?;
        let negotiated = |pc: &mut RTCPeerConnection, track: &Option<OfferedTrack>, video| {
            track
                .as_ref()
                .map(|t| answered_track(pc, t, video))
                .transpose()
                .map_err(|e| SfuError::PlayOffer(LinkError::InvalidSdp(e.to_string())))
        };
        let tracks = Tracks {
            video: negotiated(&mut pc, &video, true)?,
            audio: negotiated(&mut pc, &audio, false)?,
            slots: Vec::new(),
        };
        let any_sender = video.as_ref().or(audio.as_ref()).map(|t| t.sender);
        let aes_cm = request.aes_cm;
        let mut leg = Leg::new(request, pc, keys, any_sender, LegState::Answered(tracks))?;
        leg.aes_cm_allowed = aes_cm;
        leg.audio_level_ext = crate::link::audio_level::ext_id_in_sdp(&sdp);
        leg.capture_time_ext = crate::link::capture_time::ext_id_in_sdp(&sdp);
        Ok((leg, ufrag, sdp))
    }

    fn new(
        request: CreateLeg,
        pc: RTCPeerConnection,
        keys: Arc<KeyCapture>,
        any_sender: Option<RTCRtpSenderId>,
        state: LegState,
    ) -> Result<Self, SfuError> {
        let any_sender = any_sender.ok_or_else(|| {
            SfuError::Internal(LinkError::InvalidSdp("a leg without tracks".into()))
        })?;
        Ok(Leg {
            link_id: request.link_id,
            pc,
            source: request.source,
            inbox: request.inbox,
            any_sender,
            state,
            layers: Default::default(),
            auto: None,
            video_paused: false,
            negotiation: Negotiation::Stable,
            restarts: 0,
            deadline: None,
            last_timer: None,
            work: Work::None,
            keys,
            pending: Vec::new(),
            early_checks: Vec::new(),
            early_checks_replayed: 0,
            dtls_replay: Default::default(),
            aes_cm_allowed: false,
            counters: super::LegCounters::default(),
            twcc: None,
            audio_level_ext: None,
            capture_time_ext: None,
            #[cfg(test)]
            keys_unrecognised: request.keys_unrecognised,
            _counted: request.counted,
        })
    }

    /// Holds a STUN check that arrived while the leg is `Offered`: the
    /// subscriber starts ICE as soon as it has made its answer, before the
    /// answer reaches us, and the core cannot check a request's integrity
    /// without the subscriber's password, which only the answer brings
    /// (browsers then wait up to ~65 ms to retry). Returns whether the
    /// datagram was held; [`Leg::take_early_checks`] hands them back once the
    /// answer is applied. At most [`EARLY_CHECKS_MAX`] are held.
    pub fn hold_early_check(&mut self, from: SocketAddr, datagram: &[u8]) -> bool {
        if !matches!(self.state, LegState::Offered { .. })
            || super::demux::classify(datagram) != super::demux::Kind::Stun
        {
            return false;
        }
        if self.early_checks.len() < EARLY_CHECKS_MAX {
            self.early_checks.push((from, BytesMut::from(datagram)));
        }
        true
    }

    /// How many early checks are held.
    #[cfg(test)]
    pub fn early_checks_held(&self) -> usize {
        self.early_checks.len()
    }

    /// The checks held by [`Leg::hold_early_check`], to be read now.
    pub fn take_early_checks(&mut self) -> Vec<(SocketAddr, BytesMut)> {
        self.early_checks_replayed += self.early_checks.len();
        std::mem::take(&mut self.early_checks)
    }

    /// Offers an ICE restart on an answered leg: new ICE credentials, the
    /// same host candidate, DTLS and SRTP kept (the media state does not
    /// change; media goes to the new selected pair once ICE picks one).
    /// Returns the new local ufrag and the offer.
    pub fn restart(
        &mut self,
        local_addr: SocketAddr,
        now: Instant,
    ) -> Result<(String, String), SfuError> {
        match self.state {
            LegState::Offered { .. } => {
                return Err(SfuError::Restart(
                    "the link's first offer is not answered yet".into(),
                ));
            }
            LegState::Failed => return Err(SfuError::Restart("the link failed".into())),
            LegState::Answered(_) | LegState::Connected(..) => {}
        }
        let offer = self
            .pc
            .create_offer(restart_options())
            .map_err(internal("creating the restart offer"))?;
        self.pc
            .set_local_description(now, offer)
            .map_err(internal("applying the restart offer"))?;
        let sdp = finish_local(&mut self.pc, local_addr)?;
        let ufrag = sdp_ufrag(&sdp)?;
        self.negotiation = Negotiation::RestartOffered;
        self.restarts += 1;
        Ok((ufrag, sdp))
    }

    /// Applies the subscriber's answer: `Offered` → `Answered`, or the
    /// answer to a restart offer (`RestartOffered` → `Stable`).
    pub fn answer(&mut self, sdp: String, now: Instant) -> Result<(), SfuError> {
        if self.negotiation == Negotiation::RestartOffered {
            let answer = RTCSessionDescription::answer(sdp)
                .map_err(|e| SfuError::Answer(LinkError::InvalidSdp(e.to_string())))?;
            self.pc
                .set_remote_description(now, answer)
                .map_err(|e| SfuError::Answer(LinkError::InvalidSdp(e.to_string())))?;
            self.negotiation = Negotiation::Stable;
            return Ok(());
        }
        let LegState::Offered {
            video,
            audio,
            slots,
        } = &self.state
        else {
            return Err(SfuError::Answer(LinkError::InvalidSdp(
                "this link was already answered".into(),
            )));
        };
        let answer = RTCSessionDescription::answer(sdp)
            .map_err(|e| SfuError::Answer(LinkError::InvalidSdp(e.to_string())))?;
        self.pc
            .set_remote_description(now, answer)
            .map_err(|e| SfuError::Answer(LinkError::InvalidSdp(e.to_string())))?;
        let pc = &mut self.pc;
        let mut negotiated = |track: &Option<OfferedTrack>, video: bool| {
            track
                .as_ref()
                .map(|t| answered_track(pc, t, video))
                .transpose()
        };
        let tracks = Tracks {
            video: negotiated(video, true)?,
            audio: negotiated(audio, false)?,
            slots: slots
                .iter()
                .map(|t| answered_track(pc, t, false))
                .collect::<Result<Vec<_>, _>>()?,
        };
        self.state = LegState::Answered(tracks);
        Ok(())
    }
}

/// A leg's core: codecs, feedback, interceptors, DTLS and ICE settings
/// (SRTP profiles: [`srtp_profiles`]). Returns it with the key capture.
/// The ICE credentials are not pinned in the setting engine: the core draws
/// them, and draws new ones at each ICE restart (pinned ones would be
/// reused), so the routes learn each ufrag from the local description.
fn core(
    now: Instant,
    answering: bool,
    aes_cm_too: bool,
) -> Result<(RTCPeerConnection, Arc<KeyCapture>), SfuError> {
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
    // Resends on their own stream, if the subscriber takes it (`link::rtx`).
    crate::link::rtx::register(&mut media_engine).map_err(internal("registering RTX"))?;
    // The subscriber NACKs and asks for keyframes; we answer NACKs and
    // relay PLIs.
    for parameter in ["", "pli"] {
        media_engine.register_feedback(
            RTCPFeedback {
                typ: "nack".to_owned(),
                parameter: parameter.to_owned(),
            },
            RtpCodecKind::Video,
        );
    }
    // Transport-wide cc: the hub numbers what it seals and reads the
    // subscriber's feedback itself (`twcc_leg.rs`); no TWCC interceptor.
    super::twcc_leg::register(&mut media_engine).map_err(internal("registering TWCC"))?;
    if answering {
        // A WHEP player that offers the audio level (another node's relay
        // link) gets the publisher's levels (`Leg::audio_level_ext`).
        media_engine
            .register_header_extension(
                rtc::rtp_transceiver::rtp_sender::RTCRtpHeaderExtensionCapability {
                    uri: crate::link::audio_level::AUDIO_LEVEL_URI.to_owned(),
                },
                RtpCodecKind::Audio,
                None,
            )
            .map_err(internal("registering the audio level"))?;
        // And the capture time of video (another node's relay link of one
        // layer: `Leg::capture_time_ext`).
        media_engine
            .register_header_extension(
                rtc::rtp_transceiver::rtp_sender::RTCRtpHeaderExtensionCapability {
                    uri: crate::link::capture_time::ABS_CAPTURE_TIME_URI.to_owned(),
                },
                RtpCodecKind::Video,
                None,
            )
            .map_err(internal("registering the capture time"))?;
    }
    let registry = Registry::new()
        .with(Slot::NackResponder, BoundedNackResponder::default())
        .with(Slot::SenderReport, SenderReportBuilder::new().build())
        .with(Slot::from(RTCP_TAP_SLOT), RtcpTap::with_nacks());
    let keys = KeyCapture::new().map_err(|e| {
        SfuError::Internal(LinkError::Rtc {
            what: "crypto provider",
            detail: e.to_string(),
        })
    })?;
    let mut settings = SettingEngineBuilder::new();
    if answering {
        // Answering a player's offer: stay the DTLS server, as on every
        // other leg (the subscriber answers `active` to our `actpass`), so
        // the key capture sees the handshake it knows.
        settings = settings.with_answering_dtls_role(RTCDtlsRole::Server);
    }
    let settings = settings
        .with_crypto_provider(keys.clone())
        .with_srtp_protection_profiles(srtp_profiles(aes_cm_too))
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .with_ice_connection_attempts(Some(ICE_CHECK_INTERVAL), Some(ICE_MAX_BINDING_REQUESTS))
        .build();
    let pc = RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(media_engine)
        .with_setting_engine(settings)
        .with_interceptor_registry(registry)
        .build(now)
        .map_err(internal("building the peer connection"))?;
    Ok((pc, keys))
}

/// Adds the leg's tracks as `sendonly` transceivers: (video, audio).
/// The leg's video and audio tracks, and a top-N leg's audio slots.
type AddedTracks = (
    Option<OfferedTrack>,
    Option<OfferedTrack>,
    Vec<OfferedTrack>,
);

fn add_tracks(pc: &mut RTCPeerConnection, request: &CreateLeg) -> Result<AddedTracks, SfuError> {
    let mut add = |kind: RtpCodecKind, id: &str, enabled: bool| {
        let ssrc = random_ssrc();
        // Video offers RTX on its own SSRC (`link::rtx`); it stays if the
        // answer keeps the RTX codec.
        let rtx_ssrc = (kind == RtpCodecKind::Video).then(|| {
            loop {
                let rtx = random_ssrc();
                if rtx != ssrc {
                    break rtx;
                }
            }
        });
        let description =
            track_description_with_rtx(kind, ssrc, rtx_ssrc, &request.stream_label, id);
        // The server only sends on a subscription leg: `sendonly`
        // sections (browsers answer a `sendrecv` one with `recvonly` but
        // expect the offer to say what the server does).
        let init = RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Sendonly,
            streams: vec![],
            send_encodings: vec![],
        };
        pc.add_transceiver_from_track(description, Some(init))
            .map(|transceiver| OfferedTrack {
                sender: RTCRtpSenderId::from(transceiver),
                ssrc,
                rtx_ssrc,
                enabled,
            })
            .map_err(internal("adding an egress track"))
    };
    let video = request
        .video
        .then(|| add(RtpCodecKind::Video, "video", request.want_video))
        .transpose()?;
    let audio = request
        .audio
        .then(|| add(RtpCodecKind::Audio, "audio", request.want_audio))
        .transpose()?;
    let slots = match &request.source {
        LegSource::TopN(_) => (0..crate::server::sfu::topn::SLOTS)
            .map(|i| add(RtpCodecKind::Audio, &format!("slot{i}"), true))
            .collect::<Result<Vec<_>, _>>()?,
        LegSource::Stream(_) => Vec::new(),
    };
    Ok((video, audio, slots))
}

/// Adds the one host candidate (the hub's socket at `local_addr`), ends
/// gathering, and returns the local description's SDP.
fn finish_local(pc: &mut RTCPeerConnection, local_addr: SocketAddr) -> Result<String, SfuError> {
    add_host_candidate(pc, local_addr)?;
    pc.local_description()
        .map(|d| d.sdp)
        .ok_or_else(|| SfuError::Internal(LinkError::InvalidSdp("no local description".into())))
}

/// The ICE ufrag of a local description.
fn sdp_ufrag(sdp: &str) -> Result<String, SfuError> {
    crate::link::ice_ufrag(sdp)
        .map(str::to_owned)
        .ok_or_else(|| SfuError::Internal(LinkError::InvalidSdp("no ice-ufrag".into())))
}

/// Adds the leg's one host candidate, the hub's socket at `local_addr`, and
/// ends gathering (the description then carries it).
fn add_host_candidate(pc: &mut RTCPeerConnection, local_addr: SocketAddr) -> Result<(), SfuError> {
    let host = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: local_addr.ip().to_string(),
            port: local_addr.port(),
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
    Ok(())
}

/// An offer with new ICE credentials.
fn restart_options() -> Option<RTCOfferOptions> {
    Some(RTCOfferOptions { ice_restart: true })
}

/// An offered track with the payload type the answer gave it.
fn answered_track(
    pc: &mut RTCPeerConnection,
    offered: &OfferedTrack,
    video: bool,
) -> Result<LegTrack, SfuError> {
    let (payload_type, rtx) = pc
        .rtp_sender(offered.sender)
        .and_then(|mut s| {
            let parameters = s.get_parameters();
            let payload_type = parameters.rtp_parameters.codecs.first()?.payload_type;
            // RTX stays if the answer kept its codec (with our `apt`) and
            // the library kept the RTX SSRC on the encoding.
            let kept = parameters
                .encodings
                .first()
                .is_some_and(|e| e.rtp_coding_parameters.rtx.is_some());
            let rtx = crate::link::rtx::negotiated_payload_type(
                &parameters.rtp_parameters.codecs,
                payload_type,
            )
            .filter(|_| kept && video)
            .zip(offered.rtx_ssrc)
            .map(|(rtx_pt, rtx_ssrc)| RtxSender::new(rtx_ssrc, rtx_pt));
            Some((payload_type, rtx))
        })
        .ok_or_else(|| {
            SfuError::Answer(LinkError::InvalidSdp(format!(
                "no codec negotiated for {}",
                if video { "video" } else { "audio" }
            )))
        })?;
    if video {
        tracing::debug!(
            ssrc = offered.ssrc,
            rtx_ssrc = rtx.as_ref().map(RtxSender::ssrc),
            "egress leg video answered; resends {}",
            if rtx.is_some() {
                "as RTX"
            } else {
                "plain (RTX declined)"
            }
        );
    }
    Ok(LegTrack {
        ssrc: offered.ssrc,
        clock_rate: if video {
            VIDEO_CLOCK_RATE
        } else {
            OPUS_CLOCK_RATE
        },
        rewriter: Rewriter::new(offered.ssrc, payload_type),
        enabled: offered.enabled,
        paused: false,
        history: video.then(SentHistory::default),
        rtx,
        report: SendReport::default(),
    })
}

impl Leg {
    /// Starts/stops forwarding audio and video, in any state.
    pub fn set_forwarding(&mut self, audio: bool, video: bool) {
        match &mut self.state {
            LegState::Offered {
                video: offered_video,
                audio: offered_audio,
                ..
            } => {
                for (track, on) in [(offered_audio, audio), (offered_video, video)] {
                    if let Some(t) = track {
                        t.enabled = on;
                    }
                }
            }
            LegState::Answered(tracks) | LegState::Connected(tracks, _) => {
                for (track, on) in [
                    (tracks.audio.as_mut(), audio),
                    (tracks.video.as_mut(), video),
                ] {
                    if let Some(t) = track {
                        t.set_enabled(on);
                    }
                }
            }
            LegState::Failed => {}
        }
    }

    /// Which kinds this leg carries (video, audio), once answered.
    pub fn kinds(&self) -> (bool, bool) {
        match &self.state {
            LegState::Offered { video, audio, .. } => (video.is_some(), audio.is_some()),
            LegState::Answered(t) | LegState::Connected(t, _) => {
                (t.video.is_some(), t.audio.is_some())
            }
            LegState::Failed => (false, false),
        }
    }

    /// The remote address of the ICE-selected candidate pair, if any.
    pub fn selected_remote(&mut self) -> Option<SocketAddr> {
        // Under bundling every sender shares the one transport.
        let sender = self.pc.rtp_sender(self.any_sender)?;
        let pair = sender
            .transport()?
            .ice_transport()
            .get_selected_candidate_pair()?;
        let remote = pair.remote();
        Some(SocketAddr::new(remote.address.parse().ok()?, remote.port))
    }

    /// DTLS is up: `Answered` → `Connected`, sealing directly if the keys
    /// were recovered and ICE has selected a pair, else through the core
    /// (loudly). Returns whether the leg entered `Connected` now.
    pub fn connect(&mut self, metrics: &Metrics) -> bool {
        let LegState::Answered(_) = &self.state else {
            return false;
        };
        let direct = if self.aes_cm_allowed {
            // AES-CM was on offer: whichever profile the player took, the
            // core seals it. (The key capture recognises GCM only, and must
            // not be asked to tell the two apart.)
            Err("the player asked for AES-CM".to_owned())
        } else {
            self.direct_egress(metrics)
        };
        let egress = direct.unwrap_or_else(|why| {
            if self.aes_cm_allowed {
                tracing::debug!(
                    link = self.link_id.0,
                    "WHEP leg sends through the rtc pipeline ({why})"
                );
                return Egress::Core;
            }
            metrics
                .egress_key_failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::error!(
                link = self.link_id.0,
                "egress leg cannot seal its own media ({why}); sending through the \
                 rtc pipeline instead (slower). Was rtc upgraded?"
            );
            Egress::Core
        });
        self.keys.forget();
        if matches!(egress, Egress::Direct { .. }) {
            self.twcc = self.negotiated_twcc();
        }
        if let LegState::Answered(tracks) = std::mem::replace(&mut self.state, LegState::Failed) {
            self.state = LegState::Connected(tracks, egress);
        }
        true
    }

    fn direct_egress(&mut self, metrics: &Metrics) -> Result<Egress, String> {
        #[cfg(test)]
        if self.keys_unrecognised {
            return Err("keys not recognised (forced by a test)".into());
        }
        let keys = self
            .keys
            .local_keys()
            .ok_or("SRTP keys not recognised in the handshake")?;
        let dest = self.selected_remote().ok_or("no selected candidate pair")?;
        let srtp = DirectEgress::new(&keys, self.keys.inner())
            .map_err(|e| format!("own SRTP context: {e}"))?;
        Ok(Egress::Direct {
            srtp: Box::new(srtp),
            dest,
            _counted: metrics.direct_egress_legs.enter(),
        })
    }

    /// ICE or DTLS failed, or the core closed: → `Failed`. Returns whether
    /// it was not failed before (then the session has been told).
    pub fn fail(&mut self) -> bool {
        if matches!(self.state, LegState::Failed) {
            return false;
        }
        self.state = LegState::Failed;
        self.report(LinkState::Failed);
        true
    }

    /// Tells the session about this link.
    pub fn report(&self, state: LinkState) {
        self.inbox.link_event(self.link_id, state);
    }

    /// The session to tell about this leg, and its link id.
    pub fn owner(&self) -> (SessionInbox, LinkId) {
        (self.inbox.clone(), self.link_id)
    }

    /// Moves the sealed datagrams to `out`, addressed to the selected pair.
    pub fn send_pending(&mut self, out: &mut Vec<(SocketAddr, BytesMut)>) {
        match &self.state {
            LegState::Connected(_, Egress::Direct { dest, .. }) => {
                let dest = *dest;
                out.extend(self.pending.drain(..).map(|d| (dest, d)));
            }
            _ => self.pending.clear(),
        }
    }
}

impl Leg {
    /// Sends directly sealed media to `dest` from now on (the ICE-selected
    /// pair changed). No effect on other states.
    pub fn set_media_dest(&mut self, to: SocketAddr) {
        if let LegState::Connected(_, Egress::Direct { dest, .. }) = &mut self.state
            && *dest != to
        {
            tracing::debug!(link = self.link_id.0, %to, "egress leg: selected pair moved");
            *dest = to;
        }
    }

    /// Answers a NACK from the leg's history, if it seals its own media;
    /// returns how many packets went again (of them, as RTX packets: the
    /// leg's `retransmitted_rtx`). (A leg that sends through its core
    /// leaves NACKs to the core's responder, which has the history and
    /// resends plain packets.)
    pub fn retransmit(&mut self, nack: &TransportLayerNack, now: Instant) -> u64 {
        let LegState::Connected(tracks, Egress::Direct { srtp, .. }) = &mut self.state else {
            return 0;
        };
        let Some(LegTrack {
            history: Some(history),
            rtx,
            ..
        }) = tracks.iter_mut().find(|t| t.ssrc == nack.media_ssrc)
        else {
            return 0;
        };
        let mut resent = 0;
        for pair in &nack.nacks {
            for seq in pair.packet_list() {
                let Some(Resend {
                    packet,
                    twcc: number,
                    again,
                }) = history.resend(seq, now)
                else {
                    continue;
                };
                // NACKed again: the first resend or the NACK was lost. It
                // goes on both paths (RTX and the original's; the original's
                // twice without RTX), so that one more loss does not cost
                // the subscriber another round trip.
                let copies: &[bool] = match (rtx.is_some(), again) {
                    (true, true) => &[true, false],
                    (true, false) => &[true],
                    (false, true) => &[false, false],
                    (false, false) => &[false],
                };
                self.counters.retransmitted_again += copies.len() as u64 - 1;
                for &as_rtx in copies {
                    let (mut packet, stamp) = match rtx.as_mut().filter(|_| as_rtx) {
                        // A new packet on the RTX stream (its own sequence
                        // number, so its own SRTP nonce): a new transport-wide
                        // number too, counted by the estimate like any packet.
                        Some(rtx) => {
                            let packet = rtx.wrap(packet);
                            let len = 12 + 4 * packet.header.csrc.len() + packet.payload.len();
                            let stamp = self
                                .twcc
                                .as_mut()
                                .map(|twcc| twcc.stamp(now, len + super::fanout::TWCC_OVERHEAD));
                            (packet, stamp)
                        }
                        // The same bytes as the first time: the same
                        // transport-wide number too (one SRTP nonce, one
                        // header; `twcc.rs`).
                        None => {
                            let stamp = self
                                .twcc
                                .as_mut()
                                .zip(number)
                                .map(|(twcc, n)| twcc.resent(n, now));
                            (packet.clone(), stamp)
                        }
                    };
                    if let Some(datagram) = srtp.seal_stamped(&mut packet, stamp) {
                        self.pending.push(datagram);
                        resent += 1;
                        if as_rtx {
                            self.counters.retransmitted_rtx += 1;
                        }
                    }
                }
            }
        }
        resent
    }

    /// The sender reports due at `now` on a leg that seals its own media
    /// (the core reports for the media it sends itself).
    pub fn due_reports(&mut self, now: Instant) -> Vec<Box<dyn rtc::rtcp::Packet>> {
        let LegState::Connected(tracks, Egress::Direct { .. }) = &mut self.state else {
            return Vec::new();
        };
        tracks
            .iter_mut()
            .filter_map(|t| t.report.due(now, t.ssrc, t.clock_rate))
            .map(|sr| Box::new(sr) as Box<dyn rtc::rtcp::Packet>)
            .collect()
    }
}
