//! Sending a leg's media around the `rtc` core, sans-IO.
//!
//! With the leg's SRTP keys recovered ([`super::srtp_keys`]), the hub seals
//! each rewritten packet itself ([`DirectEgress`]) and puts the datagram
//! straight on its socket; the core no longer sees media and is left with ICE,
//! DTLS and RTCP. What the core's interceptors did for that media moves here:
//!
//! * [`SentHistory`]: the last packets of a track, to answer the subscriber's
//!   NACKs (the NACK responder's job), within the bounds of
//!   [`crate::link::nack`] (a byte budget against the send rate, nothing older
//!   than [`RESEND_MAX_AGE`]; packets from before the latest keyframe too:
//!   the frames before it still decode, and a subscriber that lost one stops
//!   waiting for it once the keyframe arrives, `client::jitter`); a packet
//!   NACKed again after a resend ([`Resend::again`]) goes out on both paths,
//!   RTX and plain (`Leg::retransmit`);
//! * [`SendReport`]: packet and octet counts and the RTP/NTP clock mapping for
//!   RTCP sender reports (the SR generator's job). The hub writes the report
//!   into the core, which encrypts it with its own SRTCP state.
//!
//! The core never sends SRTP for these SSRCs and we never send SRTCP, so the
//! two never share a nonce space.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use rtc::crypto::RTCCrypto;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtp::Packet;
use rtc::rtp::header::{EXTENSION_PROFILE_ONE_BYTE, Extension};
use rtc::shared::marshal::{Marshal, MarshalSize};
use rtc::srtp::context::Context;

use super::srtp_keys::MasterKeys;
use crate::link::nack::{RESEND_MAX_AGE, ResendBudget};

/// Packets kept per video track for retransmission (about 3 s of 720p at
/// 1.5 Mbit/s; the subscriber NACKs within a round trip or two).
pub const HISTORY_PACKETS: usize = 512;

/// How often each track sends a sender report (as the library's generator).
pub const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// RFC 6464 level bytes (V bit clear), one per level 0..=127, so that
/// [`set_audio_level`] allocates nothing.
static LEVELS: [u8; 128] = {
    let mut levels = [0u8; 128];
    let mut i = 0;
    while i < 128 {
        levels[i] = i as u8;
        i += 1;
    }
    levels
};

/// Puts the RFC 6464 audio level `level` (−dBov) under extension `id` on an
/// egress packet (the rewriter stripped the publisher's): for a leg whose
/// subscriber negotiated the extension (a WHEP play that offered it, such
/// as another node's relay link, whose hub reads it for top-N).
pub fn set_audio_level(packet: &mut Packet, id: u8, level: u8) {
    let level = usize::from(level.min(127));
    let header = &mut packet.header;
    header.extensions.clear();
    header.extensions.push(Extension {
        id,
        payload: Bytes::from_static(&LEVELS[level..=level]),
    });
    header.extension = true;
    header.extension_profile = EXTENSION_PROFILE_ONE_BYTE;
    header.extensions_padding = 0;
}

/// Writes capture time `ntp` (NTP 32.32, `link::capture_time`) into
/// `packet` as its one header extension, under id `id`.
pub fn set_capture_time(packet: &mut Packet, id: u8, ntp: u64) {
    let header = &mut packet.header;
    header.extensions.clear();
    header.extensions.push(Extension {
        id,
        payload: Bytes::copy_from_slice(&ntp.to_be_bytes()),
    });
    header.extension = true;
    header.extension_profile = EXTENSION_PROFILE_ONE_BYTE;
    header.extensions_padding = 0;
}

/// A leg's own SRTP sending context.
pub struct DirectEgress {
    srtp: Context,
    scratch: Vec<u8>,
    /// The one header extension a stamped packet carries (transport-wide
    /// cc), lent to each packet while it is sealed so stamping allocates
    /// nothing.
    twcc_ext: Vec<Extension>,
}

impl DirectEgress {
    pub fn new(keys: &MasterKeys, crypto: &dyn RTCCrypto) -> rtc::shared::error::Result<Self> {
        Ok(Self {
            srtp: Context::new(&keys.key, &keys.salt, keys.profile, None, None, crypto)?,
            scratch: Vec::with_capacity(1500),
            twcc_ext: Vec::with_capacity(1),
        })
    }

    /// [`DirectEgress::seal`], with the transport-wide-cc extension
    /// `(id, number)` in the header when given (`hub::twcc`). The packet is
    /// left as it came (the history keeps it without the extension).
    pub fn seal_stamped(
        &mut self,
        packet: &mut Packet,
        twcc: Option<(u8, u16)>,
    ) -> Option<BytesMut> {
        self.seal_with(packet, twcc, false)
    }

    /// [`DirectEgress::seal_stamped`] for a padding-only packet whose
    /// payload is the padding (`link::rtx::RtxSender::padding`): the P bit
    /// is set on the wire, so the receiver removes the whole payload.
    pub fn seal_padded(
        &mut self,
        packet: &mut Packet,
        twcc: Option<(u8, u16)>,
    ) -> Option<BytesMut> {
        self.seal_with(packet, twcc, true)
    }

    fn seal_with(
        &mut self,
        packet: &mut Packet,
        twcc: Option<(u8, u16)>,
        padded: bool,
    ) -> Option<BytesMut> {
        let Some((id, number)) = twcc else {
            return self.seal_marked(packet, padded);
        };
        let ext = Extension {
            id,
            payload: Bytes::from_static(super::twcc::seq_bytes(number)),
        };
        match self.twcc_ext.first_mut() {
            Some(slot) => *slot = ext,
            None => self.twcc_ext.push(ext),
        }
        let header = &mut packet.header;
        // The rewriter removed every ingress extension: only the hub's go
        // out (the audio level a WHEP leg negotiated, `set_audio_level`).
        let level = std::mem::take(&mut header.extensions);
        std::mem::swap(&mut header.extensions, &mut self.twcc_ext);
        header.extensions.extend(level.iter().cloned());
        header.extension = true;
        header.extension_profile = EXTENSION_PROFILE_ONE_BYTE;
        header.extensions_padding = 0;
        let sealed = self.seal_marked(packet, padded);
        let header = &mut packet.header;
        std::mem::swap(&mut header.extensions, &mut self.twcc_ext);
        self.twcc_ext.truncate(1);
        header.extension = false;
        header.extension_profile = 0;
        sealed
    }

    /// `packet` as an SRTP datagram, or `None` if it cannot be encoded (logged).
    #[cfg(test)]
    pub fn seal(&mut self, packet: &Packet) -> Option<BytesMut> {
        self.seal_marked(packet, false)
    }

    /// [`DirectEgress::seal`], with the P bit set on the wire if `padded`
    /// (the header's length does not change, and GCM authenticates the
    /// header as written).
    fn seal_marked(&mut self, packet: &Packet, padded: bool) -> Option<BytesMut> {
        self.scratch.resize(packet.marshal_size(), 0);
        let sealed = packet.marshal_to(&mut self.scratch).and_then(|n| {
            if padded && let Some(first) = self.scratch.first_mut() {
                *first |= 0x20;
            }
            self.srtp
                .encrypt_rtp_with_header(&self.scratch[..n], &packet.header)
        });
        match sealed {
            Ok(datagram) => Some(datagram),
            Err(e) => {
                tracing::debug!("egress SRTP: {e}");
                None
            }
        }
    }
}

/// A packet is resent at most once per this interval, however often it is
/// NACKed (a subscriber repeats its NACK until the packet arrives; a resend
/// needs a round trip to show).
pub const RESEND_MIN_INTERVAL: Duration = Duration::from_millis(20);

/// Resends per second a track allows, and the burst above that: enough for
/// heavy loss on a high-rate stream (10 % of 1,000 packets/s is 100), while a
/// subscriber that NACKs everything cannot make the hub resend without limit.
pub const RESEND_RATE: f64 = 400.0;
pub const RESEND_BURST: f64 = 200.0;

struct Sent {
    packet: Packet,
    /// The transport-wide number it went out with (a resend reuses it).
    twcc: Option<u16>,
    sent_at: Instant,
    resent_at: Option<Instant>,
}

/// The last [`HISTORY_PACKETS`] packets sent on a track, by sequence number,
/// and the budgets for resending them: packets per second, and bytes against
/// the track's own send rate ([`ResendBudget`], as on every link).
pub struct SentHistory {
    slots: Vec<Option<Sent>>,
    tokens: f64,
    refilled_at: Option<Instant>,
    bytes: ResendBudget,
}

impl Default for SentHistory {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            tokens: RESEND_BURST,
            refilled_at: None,
            bytes: ResendBudget::default(),
        }
    }
}

impl SentHistory {
    pub fn push(&mut self, now: Instant, packet: Packet, twcc: Option<u16>) {
        if self.slots.is_empty() {
            self.slots.resize_with(HISTORY_PACKETS, || None);
        }
        let header = &packet.header;
        self.bytes.on_sent(now, packet.payload.len());
        let at = usize::from(header.sequence_number) % HISTORY_PACKETS;
        self.slots[at] = Some(Sent {
            packet,
            twcc,
            sent_at: now,
            resent_at: None,
        });
    }

    /// The packet to send again for a NACK of `seq` at `now`: `None` if it is
    /// no longer kept, older than [`RESEND_MAX_AGE`], was resent less than
    /// [`RESEND_MIN_INTERVAL`] ago, or the track's resend budgets
    /// ([`RESEND_RATE`], [`RESEND_BURST`]; bytes: [`ResendBudget`]) are spent.
    ///
    /// `again` in the answer: the packet was resent before (its first resend
    /// or the NACK that asked was lost): the leg sends it on both paths
    /// (`Leg::retransmit`).
    pub fn resend(&mut self, seq: u16, now: Instant) -> Option<Resend<'_>> {
        if let Some(at) = self.refilled_at {
            let earned = now.saturating_duration_since(at).as_secs_f64() * RESEND_RATE;
            self.tokens = (self.tokens + earned).min(RESEND_BURST);
        }
        self.refilled_at = Some(now);
        let Some(sent) = self
            .slots
            .get_mut(usize::from(seq) % HISTORY_PACKETS)
            .and_then(Option::as_mut)
            .filter(|s| s.packet.header.sequence_number == seq)
        else {
            tracing::debug!(seq, why = "not kept", "hub: resend refused");
            return None;
        };
        let refused = if sent
            .resent_at
            .is_some_and(|t| now.saturating_duration_since(t) < RESEND_MIN_INTERVAL)
        {
            Some("just resent")
        } else if now.saturating_duration_since(sent.sent_at) > RESEND_MAX_AGE {
            Some("too old")
        } else if self.tokens < 1.0 {
            Some("packet budget")
        } else if !self.bytes.try_spend(now, sent.packet.payload.len() + 12) {
            Some("byte budget")
        } else {
            None
        };
        if let Some(why) = refused {
            tracing::debug!(seq, why, "hub: resend refused");
            return None;
        }
        self.tokens -= 1.0;
        let again = sent.resent_at.replace(now).is_some();
        Some(Resend {
            packet: &sent.packet,
            twcc: sent.twcc,
            again,
        })
    }
}

/// A packet [`SentHistory::resend`] lets go out again.
pub struct Resend<'a> {
    pub packet: &'a Packet,
    /// The transport-wide number it first went out with.
    pub twcc: Option<u16>,
    /// It was resent before.
    pub again: bool,
}

/// What a sender report needs to know about a track's sent packets.
#[derive(Default)]
pub struct SendReport {
    packets: u32,
    octets: u32,
    /// RTP timestamp of the latest frame and when its first packet went out.
    last_timestamp: u32,
    last_timestamp_at: Option<Instant>,
    next_report: Option<Instant>,
}

impl SendReport {
    pub fn on_sent(&mut self, now: Instant, packet: &Packet) {
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(packet.payload.len() as u32);
        if self.last_timestamp_at.is_none() || packet.header.timestamp != self.last_timestamp {
            self.last_timestamp = packet.header.timestamp;
            self.last_timestamp_at = Some(now);
        }
        self.next_report.get_or_insert(now + REPORT_INTERVAL);
    }

    /// A sender report for `ssrc` if one is due at `now` (the next is then
    /// due [`REPORT_INTERVAL`] later). Nothing before the first packet.
    pub fn due(&mut self, now: Instant, ssrc: u32, clock_rate: u32) -> Option<SenderReport> {
        let next = self.next_report?;
        let at = self.last_timestamp_at?;
        if now < next {
            return None;
        }
        self.next_report = Some(now + REPORT_INTERVAL);
        let elapsed = now.saturating_duration_since(at).as_secs_f64();
        Some(SenderReport {
            ssrc,
            ntp_time: ntp_time(now),
            rtp_time: self
                .last_timestamp
                .wrapping_add((elapsed * f64::from(clock_rate)) as u32),
            packet_count: self.packets,
            octet_count: self.octets,
            ..Default::default()
        })
    }
}

/// Wall-clock time of `at` in NTP format (RFC 3550 §4: 32.32 seconds since 1900).
fn ntp_time(at: Instant) -> u64 {
    const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
    let wall = SystemTime::now()
        .checked_sub(Instant::now().saturating_duration_since(at))
        .unwrap_or_else(SystemTime::now);
    let since_unix = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_unix.as_secs() + NTP_UNIX_OFFSET;
    let fraction = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
    (seconds << 32) | fraction
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtp::Header;
    use rtc::shared::marshal::Unmarshal;
    use rtc::srtp::protection_profile::ProtectionProfile;

    fn packet(seq: u16, timestamp: u32, len: usize) -> Packet {
        Packet {
            header: Header {
                version: 2,
                payload_type: 102,
                sequence_number: seq,
                timestamp,
                ssrc: 7,
                ..Default::default()
            },
            payload: bytes::Bytes::from(vec![1u8; len]),
        }
    }

    /// A sealing egress and the receiving side's context, on the same keys.
    fn egress_and_receiver() -> (DirectEgress, Context) {
        let provider = rtc::crypto::default_provider().expect("provider");
        let keys = MasterKeys {
            profile: ProtectionProfile::AeadAes128Gcm,
            key: vec![3; 16],
            salt: vec![5; 12],
        };
        let egress = DirectEgress::new(&keys, provider.crypto()).expect("egress");
        let receiver = Context::new(
            &keys.key,
            &keys.salt,
            keys.profile,
            None,
            None,
            provider.crypto(),
        )
        .expect("receiver");
        (egress, receiver)
    }

    /// What `seal` produces, the receiving side's context opens to the packet.
    #[test]
    fn sealed_packets_open_with_the_same_keys() {
        let (mut egress, mut receiver) = egress_and_receiver();
        for seq in [65534, 65535, 0, 1] {
            let sent = packet(seq, 1000, 300);
            let datagram = egress.seal(&sent).expect("sealed");
            assert_eq!(datagram.len(), sent.marshal_size() + 16, "GCM tag added");
            let opened = receiver.decrypt_rtp(&datagram).expect("authentic");
            assert_eq!(&opened[..], &sent.marshal().expect("marshal")[..]);
        }
    }

    /// A stamped packet carries the transport-wide number under the leg's
    /// id, and only that extension; the packet itself is left as it came.
    #[test]
    fn stamped_packets_carry_the_legs_extension_only() {
        let (mut egress, mut receiver) = egress_and_receiver();
        for (seq, number) in [(10u16, 0u16), (11, 0x1234), (12, 65535)] {
            let mut sent = packet(seq, 1000, 300);
            let datagram = egress
                .seal_stamped(&mut sent, Some((7, number)))
                .expect("sealed");
            assert!(!sent.header.extension && sent.header.extensions.is_empty());
            let opened = receiver.decrypt_rtp(&datagram).expect("authentic");
            let got = Packet::unmarshal(&mut &opened[..]).expect("rtp");
            assert_eq!(got.header.extensions.len(), 1);
            assert_eq!(
                got.header.get_extension(7).as_deref(),
                Some(&number.to_be_bytes()[..])
            );
            assert_eq!(got.payload, sent.payload);
            assert_eq!(got.header.sequence_number, seq);
        }
    }

    /// A capture time set on a video packet (a relay link's leg) goes out
    /// beside the stamp, stamped or not, and reads back as it was.
    #[test]
    fn a_capture_time_goes_out_beside_the_stamp() {
        let (mut egress, mut receiver) = egress_and_receiver();
        let ntp = 0x0102_0304_0506_0708u64;
        let mut sent = packet(30, 1000, 300);
        set_capture_time(&mut sent, 4, ntp);
        let datagram = egress
            .seal_stamped(&mut sent, Some((7, 11)))
            .expect("sealed");
        let opened = receiver.decrypt_rtp(&datagram).expect("authentic");
        let got = Packet::unmarshal(&mut &opened[..]).expect("rtp");
        assert_eq!(
            crate::link::capture_time::read_capture_time(&got, 4),
            Some(ntp)
        );
        assert_eq!(
            got.header.get_extension(7).as_deref(),
            Some(&11u16.to_be_bytes()[..])
        );
        let mut unstamped = packet(31, 4000, 300);
        set_capture_time(&mut unstamped, 4, ntp + 1);
        let datagram = egress.seal(&unstamped).expect("sealed");
        let opened = receiver.decrypt_rtp(&datagram).expect("authentic");
        let got = Packet::unmarshal(&mut &opened[..]).expect("rtp");
        assert_eq!(
            crate::link::capture_time::read_capture_time(&got, 4),
            Some(ntp + 1)
        );
    }

    /// An audio level set on the packet goes out beside the stamp, under
    /// its own id, and the next stamped packet carries the stamp only.
    #[test]
    fn a_level_goes_out_beside_the_stamp() {
        let (mut egress, mut receiver) = egress_and_receiver();
        let mut sent = packet(20, 1000, 80);
        set_audio_level(&mut sent, 3, 42);
        let datagram = egress
            .seal_stamped(&mut sent, Some((7, 9)))
            .expect("sealed");
        let opened = receiver.decrypt_rtp(&datagram).expect("authentic");
        let got = Packet::unmarshal(&mut &opened[..]).expect("rtp");
        assert_eq!(
            got.header.get_extension(7).as_deref(),
            Some(&9u16.to_be_bytes()[..])
        );
        assert_eq!(crate::link::audio_level::read_level(&got, 3), Some(42));
        let mut plain = packet(21, 1960, 80);
        let datagram = egress
            .seal_stamped(&mut plain, Some((7, 10)))
            .expect("sealed");
        let opened = receiver.decrypt_rtp(&datagram).expect("authentic");
        let got = Packet::unmarshal(&mut &opened[..]).expect("rtp");
        assert_eq!(
            got.header.extensions.len(),
            1,
            "{:?}",
            got.header.extensions
        );
        // Without a stamp (no TWCC negotiated), the level alone.
        let mut unstamped = packet(22, 2920, 80);
        set_audio_level(&mut unstamped, 3, 127);
        let datagram = egress.seal_stamped(&mut unstamped, None).expect("sealed");
        let opened = receiver.decrypt_rtp(&datagram).expect("authentic");
        let got = Packet::unmarshal(&mut &opened[..]).expect("rtp");
        assert_eq!(crate::link::audio_level::read_level(&got, 3), Some(127));
    }

    #[test]
    fn history_finds_recent_packets_only() {
        let now = Instant::now();
        let mut history = SentHistory::default();
        assert!(history.resend(1, now).is_none());
        for seq in 0..=(HISTORY_PACKETS as u16 + 10) {
            history.push(now, packet(seq, 0, 1), None);
        }
        let newest = HISTORY_PACKETS as u16 + 10;
        let resent = history
            .resend(newest, now)
            .map(|r| r.packet.header.sequence_number);
        assert_eq!(resent, Some(newest));
        assert!(history.resend(11, now).is_some(), "oldest kept");
        assert!(history.resend(10, now).is_none(), "overwritten");
    }

    #[test]
    fn a_packet_is_resent_once_per_interval() {
        let t0 = Instant::now();
        let mut history = SentHistory::default();
        history.push(t0, packet(5, 0, 1), None);
        assert_eq!(history.resend(5, t0).map(|r| r.again), Some(false));
        assert!(
            history.resend(5, t0 + Duration::from_millis(5)).is_none(),
            "too soon"
        );
        assert_eq!(
            history.resend(5, t0 + RESEND_MIN_INTERVAL).map(|r| r.again),
            Some(true),
            "again later, marked as a repeat (the leg sends it on both paths)"
        );
        assert!(history.resend(6, t0).is_none(), "never sent");
    }

    #[test]
    fn resends_are_limited_per_track() {
        let t0 = Instant::now();
        let mut history = SentHistory::default();
        for seq in 0..HISTORY_PACKETS as u16 {
            history.push(t0, packet(seq, 0, 1), None);
        }
        // A subscriber NACKing everything at once gets the burst, no more.
        let burst = (0..HISTORY_PACKETS as u16)
            .filter(|&seq| history.resend(seq, t0).is_some())
            .count();
        assert_eq!(burst, RESEND_BURST as usize);
        // Then the rate: 100 ms later, 40 more.
        let later = t0 + Duration::from_millis(100);
        let refilled = (0..HISTORY_PACKETS as u16)
            .filter(|&seq| history.resend(seq, later).is_some())
            .count();
        assert_eq!(refilled, (RESEND_RATE * 0.1) as usize);
    }

    /// Large packets: the byte budget (a share of what the track sends)
    /// binds long before the packet rate does.
    #[test]
    fn resent_bytes_are_a_share_of_the_send_rate() {
        let t0 = Instant::now();
        let mut history = SentHistory::default();
        // 1 s of a 1.2 MB/s track: 1,000 packets of 1,200 bytes.
        let mut now = t0;
        for seq in 0..1000u16 {
            now = t0 + Duration::from_millis(u64::from(seq));
            history.push(now, packet(seq, u32::from(seq / 10), 1200), None);
        }
        let resent = (500..1000u16)
            .filter(|&seq| history.resend(seq, now).is_some())
            .count();
        // The burst: a quarter second of the share of ~1.2 MB/s.
        let share_burst = 1_200_000.0 * crate::link::nack::RESEND_SHARE * 0.25 / 1212.0;
        assert!(
            (resent as f64) <= share_burst * 1.3,
            "{resent} resends > {share_burst:.0}"
        );
        assert!(resent > 0);
    }

    #[test]
    /// Before, a packet from before the latest keyframe was refused; with a
    /// keyframe every 2 s, a loss in the round trip before one then cost the
    /// frames up to it (a freeze): docs/PERFORMANCE.md §6.
    fn packets_before_the_latest_keyframe_are_resent_too() {
        let t0 = Instant::now();
        let mut history = SentHistory::default();
        history.push(t0, packet(1, 100, 10), None);
        let mut idr = packet(2, 200, 10);
        idr.payload = bytes::Bytes::from_static(&[0x65, 0x88, 0, 0]);
        history.push(t0, idr, None);
        history.push(t0, packet(3, 200, 10), None);
        assert!(history.resend(1, t0).is_some(), "behind the keyframe");
        assert!(history.resend(2, t0).is_some());
        assert!(history.resend(3, t0).is_some());
        assert!(
            history
                .resend(3, t0 + RESEND_MAX_AGE + Duration::from_millis(30))
                .is_none(),
            "too old"
        );
    }

    #[test]
    fn reports_count_and_extrapolate_the_clock() {
        let t0 = Instant::now();
        let mut report = SendReport::default();
        assert!(
            report.due(t0 + REPORT_INTERVAL, 7, 90_000).is_none(),
            "nothing sent"
        );
        report.on_sent(t0, &packet(1, 9_000, 100));
        report.on_sent(t0 + Duration::from_millis(1), &packet(2, 9_000, 50));
        assert!(
            report
                .due(t0 + Duration::from_millis(500), 7, 90_000)
                .is_none()
        );
        let sr = report
            .due(t0 + REPORT_INTERVAL, 7, 90_000)
            .expect("due after the interval");
        assert_eq!((sr.ssrc, sr.packet_count, sr.octet_count), (7, 2, 150));
        // The frame went out at t0 (its first packet): 1 s later the clock is
        // 90,000 ticks on.
        assert_eq!(sr.rtp_time, 9_000 + 90_000);
        assert!(
            report.due(t0 + REPORT_INTERVAL, 7, 90_000).is_none(),
            "once per interval"
        );
    }

    #[test]
    fn ntp_time_is_seconds_since_1900() {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let ntp = ntp_time(Instant::now()) >> 32;
        assert!((ntp - 2_208_988_800).abs_diff(unix) <= 1);
    }
}
