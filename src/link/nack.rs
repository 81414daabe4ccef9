//! Bounded NACK: what a link asks to have resent, and what it resends.
//!
//! rtc-interceptor 0.21.1's defaults are unbounded on both sides: its NACK
//! generator asks for every missing packet of its 512-packet log every 100 ms
//! until it arrives, and its responder resends everything asked for. On a
//! path narrower than the stream that is a retransmission storm: the resends
//! fill the path, cause more loss, which causes more NACKs (measured: a
//! publisher behind a 500 kbit/s uplink had ~3,800 packets/s dropped at the
//! cap, some 30 Mbit/s offered; see docs/PERFORMANCE.md, issue 10). Here:
//!
//! * the generator ([`super::nack_generator`]) asks for a missing packet at
//!   once, again only after a measured round trip, and a few times at most;
//! * the responder ([`BoundedNackResponder`]) resends a packet at most once per
//!   [`RESEND_MIN_INTERVAL`], never one older than [`RESEND_MAX_AGE`], and only
//!   within a byte budget ([`ResendBudget`]): retransmissions may add at most
//!   [`RESEND_SHARE`] to the media rate actually sent, as libwebrtc counts
//!   retransmissions against the target rate.
//!
//! Packets from before the latest keyframe are resent too. The receiver's
//! reorder buffer holds that keyframe behind the gap (`client::jitter`: it
//! only skips to a keyframe when its decoder already waits for one), so a
//! refused resend does not let it recover from the keyframe: it waits its
//! whole wait, gives the packet up and asks for another keyframe. A loss in
//! the last round trip before each keyframe was never repaired that way
//! (measured in `client::subscribe`'s lossy-link test: every packet it gave
//! up on had been refused "before the keyframe"; the egress hub,
//! `server::sfu::hub::direct`, dropped the rule earlier for the same reason,
//! docs/PERFORMANCE.md §6, second pass).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::interceptor::{
    Attribute, AttributedPacket, Interceptor, Packet, Registry, Slot, StreamInfo, TaggedPacket,
};
use rtc::peer_connection::configuration::interceptor_registry;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp_transceiver::rtp_sender::{RTCPFeedback, RtpCodecKind};
use rtc::sansio::Protocol;
use rtc::shared::TransportContext;
use rtc::shared::error::Error;
use rtc::shared::marshal::MarshalSize;

use super::nack_generator::NackGenerator;
use super::probe_padding::{self, PaddingClock, PaddingRequest};
use super::rtx::{RtxCounters, RtxSender};

/// A packet is resent at most once per this interval, however often it is
/// NACKed (a NACK repeated before the resend could have arrived).
pub const RESEND_MIN_INTERVAL: Duration = Duration::from_millis(50);

/// Packets older than this are not resent: the receiver has given up on them
/// (its reorder buffer waits at most `JitterConfig::max_wait`) and asked for
/// a keyframe.
pub const RESEND_MAX_AGE: Duration = Duration::from_millis(1000);

/// Retransmitted bytes allowed per media byte sent (over about a second).
pub const RESEND_SHARE: f64 = 0.5;

/// Retransmitted bytes that may go out at once, whatever the rate (a burst of
/// loss on a low-rate stream still gets repaired).
pub const RESEND_BURST_BYTES: f64 = 24_000.0;

/// Sent packets kept per stream for resending (a power of two).
pub const RESEND_HISTORY: usize = 1024;

/// Where the NACK generator sits: above the TWCC receiver
/// ([`Slot::TwccReceiver`]), not in the library's [`Slot::NackGenerator`]
/// below it. The generator drops RTX packets that repair nothing (probe
/// padding, [`super::probe_padding`]); the TWCC receiver must have recorded
/// their arrival first, or the sender's estimate counts every probe packet
/// as lost.
pub const NACK_GENERATOR_SLOT: usize = 8_500;

/// What `register_default_interceptors` registers, with bounded NACK
/// ([`NackGenerator`], [`BoundedNackResponder`]) in place of the library's: NACK and PLI feedback, the NACK
/// pair, the simulcast header extensions, TWCC receiving, RTCP reports. The
/// generator counts the RTX packets it receives in `rtx` ([`super::rtx`]);
/// the responder sends the probe padding `padding` asks for, if given.
pub fn register_interceptors(
    registry: Registry,
    media: &mut MediaEngine,
    rtx: Arc<RtxCounters>,
    padding: Option<PaddingRequest>,
) -> rtc::shared::error::Result<Registry> {
    for parameter in ["", "pli"] {
        media.register_feedback(
            RTCPFeedback {
                typ: "nack".to_owned(),
                parameter: parameter.to_owned(),
            },
            RtpCodecKind::Video,
        );
    }
    let responder = BoundedNackResponder {
        padding: padding.map(|request| (request, PaddingClock::default())),
        ..BoundedNackResponder::default()
    };
    let registry = registry.with(Slot::NackResponder, responder).with(
        Slot::from(NACK_GENERATOR_SLOT),
        NackGenerator::with_rtx_counters(rtx),
    );
    interceptor_registry::configure_simulcast_extension_headers(media)?;
    let registry = interceptor_registry::configure_twcc_receiver_only(registry, media)?;
    Ok(interceptor_registry::configure_rtcp_reports(registry))
}

/// A byte budget for retransmissions that refills at [`RESEND_SHARE`] of the
/// media rate sent, holding at most [`RESEND_BURST_BYTES`] or a quarter second
/// of refill. The rate is measured over [`RATE_WINDOW`]s and smoothed over
/// about a second; counting a sent packet is an addition and a comparison (the
/// egress hub does it for every packet it forwards).
#[derive(Debug, Clone)]
pub struct ResendBudget {
    /// Media bytes/s, smoothed.
    rate: f64,
    window_start: Option<Instant>,
    window_bytes: u64,
    tokens: f64,
    refilled_at: Option<Instant>,
}

/// Window over which the media rate is measured.
pub const RATE_WINDOW: Duration = Duration::from_millis(250);

impl Default for ResendBudget {
    fn default() -> Self {
        Self {
            rate: 0.0,
            window_start: None,
            window_bytes: 0,
            tokens: RESEND_BURST_BYTES,
            refilled_at: None,
        }
    }
}

impl ResendBudget {
    /// Closes the rate window if it is over at `now`.
    fn roll(&mut self, now: Instant) {
        let start = *self.window_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= RATE_WINDOW {
            let sample = self.window_bytes as f64 / elapsed.as_secs_f64();
            // A quarter per 250 ms window: about a second's memory.
            self.rate += (sample - self.rate) / 4.0;
            self.window_start = Some(now);
            self.window_bytes = 0;
        }
    }

    /// Counts `bytes` of media (not a resend) sent at `now`.
    pub fn on_sent(&mut self, now: Instant, bytes: usize) {
        self.window_bytes += bytes as u64;
        self.roll(now);
    }

    /// Takes `bytes` from the budget for a resend at `now`, if it holds them.
    pub fn try_spend(&mut self, now: Instant, bytes: usize) -> bool {
        self.roll(now);
        if let Some(at) = self.refilled_at {
            let dt = now.saturating_duration_since(at).as_secs_f64();
            let cap = RESEND_BURST_BYTES.max(self.rate * RESEND_SHARE * 0.25);
            self.tokens = (self.tokens + self.rate * RESEND_SHARE * dt).min(cap);
        }
        if self.refilled_at.is_none_or(|at| now > at) {
            self.refilled_at = Some(now);
        }
        if self.tokens < bytes as f64 {
            return false;
        }
        self.tokens -= bytes as f64;
        true
    }

    /// The media rate the budget follows, bytes/s.
    pub fn media_rate(&self) -> f64 {
        self.rate
    }
}

/// Whether an H.264 RTP payload (RFC 6184) starts an IDR picture or carries
/// its parameter sets: the first packet of a keyframe.
pub fn starts_keyframe(payload: &[u8]) -> bool {
    const IDR: u8 = 5;
    const SPS: u8 = 7;
    const STAP_A: u8 = 24;
    const FU_A: u8 = 28;
    let Some(&first) = payload.first() else {
        return false;
    };
    match first & 0x1f {
        IDR | SPS => true,
        // STAP-A: 1 byte header, then 2-byte size and the first NAL.
        STAP_A => payload
            .get(3)
            .is_some_and(|nal| matches!(nal & 0x1f, IDR | SPS)),
        // FU-A: the FU header's start bit and type.
        FU_A => payload
            .get(1)
            .is_some_and(|fu| fu & 0x80 != 0 && fu & 0x1f == IDR),
        _ => false,
    }
}

struct SentPacket {
    packet: rtc::rtp::Packet,
    sent_at: Instant,
    resent_at: Option<Instant>,
}

/// One local stream's history and budget.
struct SendStream {
    slots: Vec<Option<SentPacket>>,
    budget: ResendBudget,
    /// Resends go on this RTX stream when the stream negotiated one.
    rtx: Option<RtxSender>,
    /// The newest sequence number sent, and how many packets back from it
    /// the next padding packet is ([`probe_padding`]).
    latest: Option<u16>,
    pad_back: u16,
}

impl SendStream {
    fn new() -> Self {
        Self {
            slots: std::iter::repeat_with(|| None)
                .take(RESEND_HISTORY)
                .collect(),
            budget: ResendBudget::default(),
            rtx: None,
            latest: None,
            pad_back: 0,
        }
    }

    fn on_sent(&mut self, now: Instant, packet: &rtc::rtp::Packet) {
        let seq = packet.header.sequence_number;
        self.latest = Some(seq);
        self.pad_back = 0;
        self.budget.on_sent(now, packet.payload.len());
        if let Some(slot) = self.slots.get_mut(usize::from(seq) % RESEND_HISTORY) {
            *slot = Some(SentPacket {
                packet: packet.clone(),
                sent_at: now,
                resent_at: None,
            });
        }
    }

    /// The packet to resend for a NACK of `seq` at `now`, if the rules allow.
    fn resend(&mut self, seq: u16, now: Instant) -> Option<rtc::rtp::Packet> {
        let at = usize::from(seq) % RESEND_HISTORY;
        let Some(sent) = self
            .slots
            .get(at)
            .and_then(Option::as_ref)
            .filter(|s| s.packet.header.sequence_number == seq)
        else {
            tracing::debug!(seq, why = "not kept", "nack: resend refused");
            return None;
        };
        let refused = if now.saturating_duration_since(sent.sent_at) > RESEND_MAX_AGE {
            Some("too old")
        } else if sent
            .resent_at
            .is_some_and(|t| now.saturating_duration_since(t) < RESEND_MIN_INTERVAL)
        {
            Some("just resent")
        } else if !self.budget.try_spend(now, sent.packet.payload.len() + 12) {
            Some("byte budget")
        } else {
            None
        };
        if let Some(why) = refused {
            tracing::debug!(seq, why, "nack: resend refused");
            return None;
        }
        let sent = self.slots.get_mut(at)?.as_mut()?;
        sent.resent_at = Some(now);
        Some(sent.packet.clone())
    }

    /// The next packet to send again as probe padding, wrapped as RTX: the
    /// newest packets first, going back [`PAD_FROM_LAST`] at most (then
    /// from the newest again); none on a stream without RTX or with
    /// nothing sent within [`probe_padding::MAX_AGE`].
    fn padding(&mut self, now: Instant) -> Option<rtc::rtp::Packet> {
        let latest = self.latest?;
        let rtx = self.rtx.as_mut()?;
        for _ in 0..PAD_FROM_LAST {
            let seq = latest.wrapping_sub(self.pad_back);
            self.pad_back = (self.pad_back + 1) % PAD_FROM_LAST;
            let Some(sent) = self
                .slots
                .get(usize::from(seq) % RESEND_HISTORY)
                .and_then(Option::as_ref)
                .filter(|s| s.packet.header.sequence_number == seq)
            else {
                continue;
            };
            if now.saturating_duration_since(sent.sent_at) > probe_padding::MAX_AGE {
                // Older still going back: start from the newest next time.
                self.pad_back = 0;
                return None;
            }
            return Some(rtx.wrap(&sent.packet));
        }
        None
    }
}

/// Probe padding resends the newest packets, going back this many at most.
pub const PAD_FROM_LAST: u16 = 16;

/// The NACK responder of every [`super::PeerLink`], in the library's
/// `Slot::NackResponder` (see the module docs for its bounds). It resends
/// the original packets, or RTX packets ([`super::rtx`]) for a stream bound
/// with an RTX SSRC and payload type (an egress hub leg that sends through
/// its core and whose answer kept RTX; links built here have none).
#[derive(Default)]
pub struct BoundedNackResponder {
    streams: HashMap<u32, SendStream>,
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
    /// Resends refused by the bounds so far (tests, logs).
    refused: u64,
    resent: u64,
    /// Probe padding asked for by the application, and its clock
    /// ([`probe_padding`]; publish links only).
    padding: Option<(PaddingRequest, PaddingClock)>,
    /// When padding is next due (set from the first instant seen).
    next_pad: Option<Instant>,
}

impl BoundedNackResponder {
    fn handle_nack(&mut self, now: Instant, nack: &TransportLayerNack) {
        let Some(stream) = self.streams.get_mut(&nack.media_ssrc) else {
            return;
        };
        for pair in &nack.nacks {
            for seq in pair.packet_list() {
                match stream.resend(seq, now) {
                    Some(packet) => {
                        let packet = match stream.rtx.as_mut() {
                            Some(rtx) => rtx.wrap(&packet),
                            None => packet,
                        };
                        self.resent += 1;
                        count_written(&mut self.padding, packet.marshal_size());
                        self.write.push_back(TaggedPacket {
                            now,
                            transport: TransportContext::default(),
                            message: AttributedPacket::new(Packet::Rtp(packet))
                                .with(Attribute::Retransmission),
                        });
                    }
                    None => self.refused += 1,
                }
            }
        }
    }
}

impl BoundedNackResponder {
    fn start_padding_clock(&mut self, now: Instant) {
        if self.padding.is_some() && self.next_pad.is_none() {
            self.next_pad = Some(now + probe_padding::TICK);
        }
    }

    fn note_can_pad(&self) {
        if let Some((request, _)) = &self.padding {
            request.set_can_pad(self.streams.values().any(|s| s.rtx.is_some()));
        }
    }

    /// Pads what the media left of the fill rate at `now` ([`probe_padding`]).
    fn pad(&mut self, now: Instant) {
        let Self {
            streams,
            write,
            padding: Some((request, clock)),
            ..
        } = self
        else {
            return;
        };
        let mut owed = clock.owed(now, request.fill_bps());
        // Video streams with RTX and a packet sent lately pad in turn: the
        // first until it has nothing fresh, then the next (a publisher of
        // one layer has one).
        for stream in streams.values_mut() {
            while owed > 0.0 {
                let Some(packet) = stream.padding(now) else {
                    break;
                };
                let bytes = packet.marshal_size();
                clock.sent(bytes, true);
                owed -= bytes as f64;
                request.count(bytes);
                write.push_back(TaggedPacket {
                    now,
                    transport: TransportContext::default(),
                    message: AttributedPacket::new(Packet::Rtp(packet))
                        .with(Attribute::Retransmission),
                });
            }
        }
    }
}

/// The link wrote `bytes` of media or resends: what the padding need not.
fn count_written(padding: &mut Option<(PaddingRequest, PaddingClock)>, bytes: usize) {
    if let Some((request, clock)) = padding {
        clock.sent(bytes, request.fill_bps() > 0);
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for BoundedNackResponder {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        self.start_padding_clock(msg.now);
        if let Packet::Rtcp(packets) = &msg.message.packet {
            for nack in packets
                .iter()
                .filter_map(|p| p.as_any().downcast_ref::<TransportLayerNack>())
            {
                self.handle_nack(msg.now, nack);
            }
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        self.start_padding_clock(msg.now);
        if let Packet::Rtp(packet) = &msg.message.packet {
            count_written(&mut self.padding, packet.marshal_size());
        }
        if let Packet::Rtp(packet) = &msg.message.packet
            && !msg.message.has(&Attribute::Retransmission)
            && let Some(stream) = self.streams.get_mut(&packet.header.ssrc)
        {
            stream.on_sent(msg.now, packet);
        }
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        if self.next_pad.is_some_and(|at| now >= at) {
            self.pad(now);
            self.next_pad = Some(now + probe_padding::TICK);
        }
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        // Ticks only while padding is asked for (the chain asks again after
        // every packet, so a rate set later is picked up at the next one).
        let (request, _) = self.padding.as_ref()?;
        self.next_pad.filter(|_| request.fill_bps() > 0)
    }
}

impl Interceptor for BoundedNackResponder {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        let nack = info
            .rtcp_feedback
            .iter()
            .any(|fb| fb.typ == "nack" && fb.parameter.is_empty());
        if nack {
            let mut stream = SendStream::new();
            if let (Some(ssrc), Some(payload_type)) = (info.ssrc_rtx, info.payload_type_rtx) {
                stream.rtx = Some(RtxSender::new(ssrc, payload_type));
            }
            self.streams.insert(info.ssrc, stream);
        }
        self.note_can_pad();
    }

    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.streams.remove(&info.ssrc);
        self.note_can_pad();
    }

    fn bind_remote_stream(&mut self, _: &StreamInfo) {}

    fn unbind_remote_stream(&mut self, _: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtp::Header;

    fn packet(seq: u16, timestamp: u32, payload: &'static [u8]) -> rtc::rtp::Packet {
        rtc::rtp::Packet {
            header: Header {
                version: 2,
                sequence_number: seq,
                timestamp,
                ..Default::default()
            },
            payload: bytes::Bytes::from_static(payload),
        }
    }

    const P_SLICE: &[u8] = &[0x41, 0, 0, 0];
    const IDR_FU_START: &[u8] = &[0x7c, 0x85, 0, 0];

    #[test]
    fn keyframe_starts_are_recognised() {
        assert!(starts_keyframe(&[0x67, 0x42])); // SPS
        assert!(starts_keyframe(&[0x65, 0x88])); // IDR slice
        assert!(starts_keyframe(&[0x78, 0, 4, 0x67, 1, 2])); // STAP-A with SPS
        assert!(starts_keyframe(IDR_FU_START));
        assert!(!starts_keyframe(&[0x7c, 0x05])); // FU-A middle of an IDR
        assert!(!starts_keyframe(P_SLICE));
        assert!(!starts_keyframe(&[]));
    }

    /// The budget: a burst, then refills at a share of the media rate only.
    #[test]
    fn resends_are_bounded_by_a_share_of_the_media_rate() {
        let t0 = Instant::now();
        let mut budget = ResendBudget::default();
        // 10 s of 100 kB/s media, in 1 kB packets every 10 ms.
        let mut now = t0;
        for _ in 0..1000 {
            now += Duration::from_millis(10);
            budget.on_sent(now, 1000);
        }
        assert!((budget.media_rate() - 100_000.0).abs() < 10_000.0);
        // Someone NACKs everything: what goes out over the next second is
        // about the share of the rate, plus the burst.
        let mut resent = 0usize;
        for _ in 0..1000 {
            now += Duration::from_millis(1);
            while budget.try_spend(now, 1000) {
                resent += 1000;
            }
            if now.duration_since(t0).as_millis().is_multiple_of(10) {
                budget.on_sent(now, 1000);
            }
        }
        let allowed = RESEND_SHARE * 100_000.0 + RESEND_BURST_BYTES;
        assert!(resent as f64 <= allowed * 1.1, "{resent} > {allowed}");
        assert!(resent as f64 >= RESEND_SHARE * 100_000.0 * 0.8, "{resent}");
    }

    /// Too old or just resent: not resent. From before the latest keyframe:
    /// resent (the receiver holds that keyframe behind the gap).
    #[test]
    fn packets_too_old_or_just_resent_are_not_resent_those_before_a_keyframe_are() {
        let t0 = Instant::now();
        let mut stream = SendStream::new();
        stream.on_sent(t0, &packet(10, 1, P_SLICE));
        stream.on_sent(t0, &packet(11, 1, P_SLICE));
        assert!(stream.resend(10, t0).is_some());
        assert!(
            stream.resend(10, t0 + Duration::from_millis(10)).is_none(),
            "just resent"
        );
        assert!(stream.resend(10, t0 + RESEND_MIN_INTERVAL).is_some());
        assert!(stream.resend(12, t0).is_none(), "never sent");
        // A keyframe in two packets: they and what came before stay resendable.
        stream.on_sent(t0, &packet(12, 2, &[0x67, 0x42]));
        stream.on_sent(t0, &packet(13, 2, IDR_FU_START));
        assert!(stream.resend(11, t0).is_some(), "before the keyframe");
        assert!(stream.resend(12, t0).is_some());
        assert!(stream.resend(13, t0).is_some());
        assert!(
            stream
                .resend(13, t0 + RESEND_MAX_AGE + Duration::from_millis(60))
                .is_none(),
            "too old"
        );
    }

    fn video_info(rtx: Option<u32>) -> StreamInfo {
        StreamInfo {
            ssrc: 7,
            ssrc_rtx: rtx,
            payload_type: 102,
            payload_type_rtx: rtx.map(|_| 103),
            rtcp_feedback: vec![rtc::interceptor::RTCPFeedback {
                typ: "nack".into(),
                parameter: String::new(),
            }],
            ..StreamInfo::default()
        }
    }

    fn sent(seq: u16, now: Instant) -> TaggedPacket {
        let mut p = packet(seq, 90 * u32::from(seq), &[0x41; 1000]);
        p.header.ssrc = 7;
        TaggedPacket {
            now,
            transport: TransportContext::default(),
            message: AttributedPacket::new(Packet::Rtp(p)),
        }
    }

    /// Runs `responder` for `ticks` padding ticks from `from`; returns the
    /// packets it wrote that it generated (RTX), and the instant after.
    fn tick(
        responder: &mut BoundedNackResponder,
        from: Instant,
        ticks: u32,
    ) -> Vec<rtc::rtp::Packet> {
        let mut out = Vec::new();
        for i in 1..=ticks {
            let now = from + probe_padding::TICK * i;
            if let Some(at) = responder.poll_timeout() {
                assert!(at <= now, "due within a tick");
                responder.handle_timeout(now).expect("timeout");
            }
            while let Some(msg) = responder.poll_write() {
                if let Packet::Rtp(p) = msg.message.packet
                    && p.header.ssrc != 7
                {
                    out.push(p);
                }
            }
        }
        out
    }

    /// Probe padding: what the media leaves of the fill rate, paid with the
    /// newest packets resent as RTX (OSN = theirs); nothing without RTX,
    /// without a rate or from packets older than `MAX_AGE`.
    #[test]
    fn padding_is_the_newest_packets_resent_as_rtx_at_the_rate_asked() {
        let t0 = Instant::now();
        let request = PaddingRequest::default();
        let mut responder = BoundedNackResponder {
            padding: Some((request.clone(), PaddingClock::default())),
            ..BoundedNackResponder::default()
        };
        responder.bind_local_stream(&video_info(Some(9)));
        assert!(request.can_pad(), "a stream with RTX can pad");
        for seq in 100..120 {
            responder.handle_write(sent(seq, t0)).expect("write");
        }
        while responder.poll_write().is_some() {}
        assert!(
            tick(&mut responder, t0, 20).is_empty(),
            "no rate, no padding"
        );

        // 400 kbit/s for 100 ms: 5 kB, in ~1 kB packets.
        request.fill_to(400_000);
        let padding = tick(&mut responder, t0, 20);
        let bytes: usize = padding.iter().map(MarshalSize::marshal_size).sum();
        assert!((4_000..=7_500).contains(&bytes), "{bytes} bytes");
        assert_eq!(request.sent().bytes, bytes as u64);
        let osns: Vec<u16> = padding
            .iter()
            .map(|p| {
                assert_eq!((p.header.ssrc, p.header.payload_type), (9, 103));
                super::super::rtx::osn(p).expect("an OSN")
            })
            .collect();
        assert_eq!(&osns[..3], &[119, 118, 117], "newest first");
        assert!(osns.iter().all(|&o| o > 119 - PAD_FROM_LAST));

        // Media sent meanwhile is what the padding need not: 6 kB of media
        // against 50 ms of a 400 kbit/s fill (2.5 kB) leaves nothing to pad.
        let t1 = t0 + probe_padding::TICK * 20;
        for seq in 120..126 {
            responder.handle_write(sent(seq, t1)).expect("write");
        }
        while responder.poll_write().is_some() {}
        assert!(
            tick(&mut responder, t1, 10).is_empty(),
            "the media filled it"
        );

        // The media stopped: nothing older than MAX_AGE pads.
        let late = t1 + probe_padding::MAX_AGE + Duration::from_millis(10);
        assert!(tick(&mut responder, late, 10).is_empty());

        // A stream without RTX never pads.
        let request = PaddingRequest::default();
        let mut plain = BoundedNackResponder {
            padding: Some((request.clone(), PaddingClock::default())),
            ..BoundedNackResponder::default()
        };
        plain.bind_local_stream(&video_info(None));
        assert!(!request.can_pad());
        for seq in 100..120 {
            plain.handle_write(sent(seq, t0)).expect("write");
        }
        while plain.poll_write().is_some() {}
        request.fill_to(400_000);
        assert!(tick(&mut plain, t0, 20).is_empty());
    }
}
