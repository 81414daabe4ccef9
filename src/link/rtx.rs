//! RTX (RFC 4588): retransmissions on a stream of their own.
//!
//! Without RTX a retransmission is the original packet sent again with the
//! same SSRC, payload type and sequence number, so a receiver cannot tell
//! it from the original: its loss and jitter statistics and its bandwidth
//! estimate count repairs as media, and padding probes cannot be sent on
//! their own. With RTX each video stream has a second SSRC (grouped with it
//! by `a=ssrc-group:FID <media> <rtx>`, RFC 5576) and a second payload type
//! (`a=rtpmap:103 rtx/90000`, `a=fmtp:103 apt=102`), and a retransmission
//! is a new packet on that stream (RFC 4588 §4):
//!
//! ```text
//!  RTP header: SSRC = RTX SSRC, PT = RTX PT, seq = the RTX stream's own,
//!              timestamp and marker as the original
//!  payload:    OSN (original sequence number, 2 bytes, big-endian)
//!              then the original payload
//! ```
//!
//! Who does what:
//!
//! * Sender: only the egress hub's subscriber legs (downlink) negotiate RTX,
//!   when the subscriber's answer keeps it ([`RtxSender`] wraps the packet
//!   the leg's history resends, `server::sfu::hub::leg`). A subscriber that
//!   declines gets plain resends, as before.
//! * Receiver: a subscriber link ([`super::PeerLink::subscriber`]) registers
//!   [`rtx_codec`]; rtc 0.21.1 maps an RTX packet back to its stream
//!   (`deencapsulate_rtx`), after the interceptors. Our NACK generator sees
//!   it before that, as a packet of the RTX SSRC: it checks it
//!   ([`RtxVerdict`]), counts it ([`RtxCounters`]) and lets through only a
//!   repair of a packet it is missing. A malformed RTX packet, or one that
//!   repairs nothing (a duplicate, an OSN never missing), is dropped there
//!   and counted: it never reaches the reorder buffer, whose sequence
//!   tracking a stray OSN would disturb.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{BufMut, BytesMut};
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::rtp::Packet;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};

use super::{H264_PAYLOAD_TYPE, VIDEO_CLOCK_RATE};

/// Payload type of RTX for H.264 on every link that negotiates it.
pub const RTX_PAYLOAD_TYPE: u8 = 103;

/// The MIME type of RTX (case-insensitive on the wire).
pub const RTX_MIME_TYPE: &str = "video/rtx";

/// The RTX codec for H.264 (`apt` = [`H264_PAYLOAD_TYPE`]).
pub fn rtx_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: RTX_MIME_TYPE.into(),
        clock_rate: VIDEO_CLOCK_RATE,
        channels: 0,
        sdp_fmtp_line: format!("apt={H264_PAYLOAD_TYPE}"),
        rtcp_feedback: vec![],
    }
}

/// Registers [`rtx_codec`] as [`RTX_PAYLOAD_TYPE`] (after H.264).
pub fn register(media: &mut MediaEngine) -> rtc::shared::error::Result<()> {
    media.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: rtx_codec(),
            payload_type: RTX_PAYLOAD_TYPE,
        },
        RtpCodecKind::Video,
    )
}

/// The RTX payload type that repairs `primary` among negotiated `codecs`.
pub fn negotiated_payload_type(codecs: &[RTCRtpCodecParameters], primary: u8) -> Option<u8> {
    codecs
        .iter()
        .find(|c| {
            c.rtp_codec.mime_type.eq_ignore_ascii_case(RTX_MIME_TYPE)
                && apt(&c.rtp_codec.sdp_fmtp_line) == Some(primary)
        })
        .map(|c| c.payload_type)
}

/// Whether the server's side of a publish link may accept RTX for `offer`:
/// not for a browser's simulcast (`a=simulcast` / `a=rid:` lines). Its
/// layers share one media section and have no signalled SSRCs; a browser
/// names the layer an RTX packet repairs with the `rrid` header extension,
/// which rtc 0.21.1 does not read, so repairs would be lost. Without RTX
/// the browser resends on the layer's own SSRC, as before.
pub fn offer_allows(offer: &str) -> bool {
    !offer
        .lines()
        .any(|l| l.starts_with("a=simulcast:") || l.starts_with("a=rid:"))
}

/// Whether an SDP (an answer) kept RTX for some media section.
pub fn in_sdp(sdp: &str) -> bool {
    sdp.lines().any(|l| {
        l.starts_with("a=rtpmap:")
            && l.split_whitespace()
                .nth(1)
                .is_some_and(|codec| codec.to_ascii_lowercase().starts_with("rtx/"))
    })
}

/// The `apt` of an RTX fmtp line (`apt=102`, maybe with `;rtx-time=…`).
fn apt(fmtp: &str) -> Option<u8> {
    fmtp.split(';')
        .filter_map(|p| p.trim().strip_prefix("apt="))
        .find_map(|v| v.trim().parse().ok())
}

/// One RTX stream of a sender: its SSRC, payload type and sequence numbers.
#[derive(Debug, Clone)]
pub struct RtxSender {
    ssrc: u32,
    payload_type: u8,
    next_seq: u16,
}

/// Padding bytes of [`RtxSender::padding`]'s packets are the caller's: the
/// RTP padding count is one octet (RFC 3550 §5.1).
pub const MAX_PADDING: usize = 255;

impl RtxSender {
    /// An RTX stream on `ssrc` with `payload_type`, its sequence numbers
    /// starting at random (RFC 3550 §5.1).
    pub fn new(ssrc: u32, payload_type: u8) -> Self {
        Self {
            ssrc,
            payload_type,
            next_seq: rand::random(),
        }
    }

    /// The RTX stream's next packet as a padding-only probe (RFC 4588 §4:
    /// no OSN, nothing but padding; receivers drop it). `padding` is the
    /// padding itself, its last octet its length (at most [`MAX_PADDING`]);
    /// the packet's P bit is the sealer's to set (`rtp::Packet`'s marshal
    /// would pad the padding again), so the header says `padding: false`.
    pub fn padding(&mut self, padding: bytes::Bytes) -> Packet {
        let header = rtc::rtp::Header {
            version: 2,
            ssrc: self.ssrc,
            payload_type: self.payload_type,
            sequence_number: self.next_seq,
            ..Default::default()
        };
        self.next_seq = self.next_seq.wrapping_add(1);
        Packet {
            header,
            payload: padding,
        }
    }

    /// The RTX stream's SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// `original` as the RTX stream's next packet (RFC 4588 §4): the OSN
    /// and the original payload, the timestamp, marker and CSRCs as they
    /// were; no padding, and no header extension (the caller stamps its own).
    pub fn wrap(&mut self, original: &Packet) -> Packet {
        let mut payload = BytesMut::with_capacity(2 + original.payload.len());
        payload.put_u16(original.header.sequence_number);
        payload.put_slice(&original.payload);
        let mut header = original.header.clone();
        header.ssrc = self.ssrc;
        header.payload_type = self.payload_type;
        header.sequence_number = self.next_seq;
        header.padding = false;
        header.extension = false;
        header.extensions.clear();
        header.extension_profile = 0;
        self.next_seq = self.next_seq.wrapping_add(1);
        Packet {
            header,
            payload: payload.freeze(),
        }
    }
}

/// What a receiver makes of a packet on an RTX SSRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtxVerdict {
    /// It repairs the missing packet with this sequence number: let it
    /// through (rtc restores the original from it).
    Repair(u16),
    /// Padding only, no OSN (a bandwidth probe, RFC 4588 §4): dropped.
    Probe,
    /// A payload too short for an OSN without the padding flag: dropped and
    /// counted in [`RtxCounters::malformed`].
    Malformed,
    /// Well formed, but the OSN is not a packet the receiver misses (a
    /// duplicate repair, a packet it gave up on, an OSN never sent): dropped
    /// and counted in [`RtxCounters::unrequested`].
    Unrequested,
}

/// The OSN of an RTX packet, or why it has none: [`RtxVerdict::Probe`] or
/// [`RtxVerdict::Malformed`].
pub fn osn(packet: &Packet) -> Result<u16, RtxVerdict> {
    match packet.payload.get(..2) {
        Some(&[hi, lo]) => Ok(u16::from_be_bytes([hi, lo])),
        _ if packet.payload.is_empty() && packet.header.padding => Err(RtxVerdict::Probe),
        _ => Err(RtxVerdict::Malformed),
    }
}

/// RTX packets a receiving link has seen, by verdict. Shared between the
/// link's NACK generator (which counts) and its owner (which reads).
#[derive(Debug, Default)]
pub struct RtxCounters {
    repaired: AtomicU64,
    probes: AtomicU64,
    malformed: AtomicU64,
    unrequested: AtomicU64,
}

/// A copy of [`RtxCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RtxCount {
    /// RTX packets that repaired a missing packet (let through).
    pub repaired: u64,
    /// Padding-only RTX packets (probes), dropped.
    pub probes: u64,
    /// RTX packets too short to carry an OSN, dropped.
    pub malformed: u64,
    /// Well-formed RTX packets that repaired nothing, dropped.
    pub unrequested: u64,
}

impl RtxCount {
    /// Every RTX packet dropped (probes, malformed, unrequested).
    pub fn dropped(&self) -> u64 {
        self.probes + self.malformed + self.unrequested
    }
}

impl RtxCounters {
    /// Counts one packet with `verdict`.
    pub fn count(&self, verdict: RtxVerdict) {
        let counter = match verdict {
            RtxVerdict::Repair(_) => &self.repaired,
            RtxVerdict::Probe => &self.probes,
            RtxVerdict::Malformed => &self.malformed,
            RtxVerdict::Unrequested => &self.unrequested,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts so far.
    pub fn get(&self) -> RtxCount {
        RtxCount {
            repaired: self.repaired.load(Ordering::Relaxed),
            probes: self.probes.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
            unrequested: self.unrequested.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtp::Header;

    #[test]
    fn rtx_is_accepted_from_any_offer_but_a_browsers_simulcast() {
        let native = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102 103\r\na=rtpmap:103 rtx/90000\r\n\
                      a=ssrc-group:FID 1 2\r\n";
        assert!(offer_allows(native));
        let browser = "m=video 9 UDP/TLS/RTP/SAVPF 102 103\r\na=rid:h send\r\na=rid:l send\r\n\
                       a=simulcast:send h;l\r\n";
        assert!(!offer_allows(browser));
        assert!(!offer_allows("a=rid:h send\r\n"));
        assert!(offer_allows(""));
        assert!(in_sdp(native));
        assert!(in_sdp("a=rtpmap:97 RTX/90000\r\n"));
        assert!(!in_sdp("a=rtpmap:102 H264/90000\r\na=fmtp:103 apt=102\r\n"));
    }

    fn packet(seq: u16, payload: &'static [u8]) -> Packet {
        Packet {
            header: Header {
                version: 2,
                marker: true,
                payload_type: H264_PAYLOAD_TYPE,
                sequence_number: seq,
                timestamp: 9000,
                ssrc: 7,
                csrc: vec![42],
                ..Default::default()
            },
            payload: bytes::Bytes::from_static(payload),
        }
    }

    /// RFC 4588 §4: own SSRC, PT and sequence; OSN then the payload; the
    /// timestamp, marker and CSRCs kept; `osn` reads it back.
    #[test]
    fn a_wrapped_packet_carries_the_osn_then_the_payload() {
        let mut rtx = RtxSender::new(99, RTX_PAYLOAD_TYPE);
        let first = rtx.wrap(&packet(0xBEEF, &[1, 2, 3]));
        let second = rtx.wrap(&packet(5, &[4]));
        assert_eq!(first.header.ssrc, 99);
        assert_eq!(first.header.payload_type, RTX_PAYLOAD_TYPE);
        assert_eq!(&first.payload[..], &[0xBE, 0xEF, 1, 2, 3]);
        assert_eq!(osn(&first), Ok(0xBEEF));
        assert_eq!((first.header.timestamp, first.header.marker), (9000, true));
        assert_eq!(first.header.csrc, vec![42]);
        assert_eq!(
            second.header.sequence_number,
            first.header.sequence_number.wrapping_add(1),
            "the RTX stream's own sequence"
        );
        assert_eq!(osn(&second), Ok(5));
    }

    #[test]
    fn short_payloads_are_probes_or_malformed() {
        let mut probe = packet(1, &[]);
        probe.header.padding = true;
        assert_eq!(osn(&probe), Err(RtxVerdict::Probe));
        assert_eq!(osn(&packet(1, &[])), Err(RtxVerdict::Malformed));
        assert_eq!(osn(&packet(1, &[7])), Err(RtxVerdict::Malformed));
    }

    #[test]
    fn the_rtx_payload_type_is_found_by_its_apt() {
        let codec = |pt, mime: &str, fmtp: &str| RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: mime.into(),
                sdp_fmtp_line: fmtp.into(),
                ..Default::default()
            },
            payload_type: pt,
        };
        let codecs = [
            codec(102, "video/H264", "packetization-mode=1"),
            codec(97, "video/rtx", "apt=96"),
            codec(103, "video/RTX", "apt=102;rtx-time=3000"),
        ];
        assert_eq!(negotiated_payload_type(&codecs, 102), Some(103));
        assert_eq!(negotiated_payload_type(&codecs, 96), Some(97));
        assert_eq!(negotiated_payload_type(&codecs[..2], 102), None);
    }
}
