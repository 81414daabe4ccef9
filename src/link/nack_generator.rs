//! The receive side of bounded NACK: asks for a missing packet as soon as a
//! gap shows, and again only after a round trip, a few times at most.
//!
//! rtc-interceptor 0.21.1's generator asks on a fixed 100 ms tick for every
//! packet missing from its log, until it arrives: on average 50 ms late the
//! first time, and forever on a path that cannot carry the repairs. This one
//! (like libwebrtc's `NackRequester`):
//!
//! * sends a NACK within [`TICK`] of the gap, not on the next 100 ms tick;
//! * asks again only after [`NackGenerator::retry_interval`] (the round trip
//!   it measured from its own NACKs, Karn's rule: only packets asked for once),
//!   at most [`NACKS_PER_PACKET`] times; a NACK that asks again goes out
//!   [`REPEAT_COPIES`] times (the first NACK or its resend was lost: one more
//!   loss would cost another round trip, and a NACK is a few dozen bytes);
//! * forgets packets older than [`MISSING_MAX_AGE`], and keeps at most
//!   [`MISSING_MAX`] missing per stream (a longer outage asks for the newest
//!   only: the receiver needs a keyframe then anyway).
//!
//! On a link that negotiated RTX ([`super::rtx`]) it also sees each RTX
//! packet before rtc maps it back to its stream: a repair of a packet it
//! misses counts as that packet arriving (and goes on); anything else on an
//! RTX SSRC (malformed, a probe, a repair of nothing) is dropped here and
//! counted in the link's [`RtxCounters`]. The RTX stream's own sequence
//! numbers are never NACKed.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::interceptor::{AttributedPacket, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::{
    TransportLayerNack, nack_pairs_from_sequence_numbers,
};
use rtc::sansio::Protocol;
use rtc::shared::TransportContext;
use rtc::shared::error::Error;

use super::rtx::{self, RtxCounters, RtxVerdict};

/// Times one missing packet is asked for.
pub const NACKS_PER_PACKET: u8 = 3;

/// Copies of a NACK that asks for a packet again (its first NACK or the
/// resend was lost): the sender answers the first copy and refuses the
/// second as just resent (`RESEND_MIN_INTERVAL` in `link::nack` and the
/// egress hub).
pub const REPEAT_COPIES: usize = 2;

/// How often missing packets are looked at while any are.
pub const TICK: Duration = Duration::from_millis(10);

/// Missing packets tracked per stream.
pub const MISSING_MAX: usize = 256;

/// A packet missing longer than this is no longer asked for.
pub const MISSING_MAX_AGE: Duration = Duration::from_millis(1000);

/// Round trip assumed before one was measured.
const INITIAL_RTT: Duration = Duration::from_millis(100);

/// Bounds of the retry interval.
const MIN_RETRY: Duration = Duration::from_millis(20);
const MAX_RETRY: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy)]
struct Missing {
    since: Instant,
    asked_at: Option<Instant>,
    asked: u8,
}

#[derive(Debug, Default)]
struct RemoteStream {
    /// Highest extended sequence number received.
    highest: Option<u64>,
    missing: BTreeMap<u64, Missing>,
}

impl RemoteStream {
    fn extend(&self, seq: u16) -> u64 {
        match self.highest {
            None => (1u64 << 32) | u64::from(seq),
            Some(h) => h.saturating_add_signed(i64::from(seq.wrapping_sub(h as u16) as i16)),
        }
    }
}

/// See the module docs; sits in the library's `Slot::NackGenerator`.
pub struct NackGenerator {
    sender_ssrc: u32,
    streams: HashMap<u32, RemoteStream>,
    /// Smoothed round trip from NACK to repair.
    rtt: Option<Duration>,
    next_tick: Option<Instant>,
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
    /// RTX SSRC → the SSRC of the stream it repairs.
    rtx: HashMap<u32, u32>,
    rtx_counters: Arc<RtxCounters>,
}

impl Default for NackGenerator {
    fn default() -> Self {
        Self::with_rtx_counters(Arc::default())
    }
}

impl NackGenerator {
    /// A generator that counts the RTX packets it sees in `counters`.
    pub fn with_rtx_counters(counters: Arc<RtxCounters>) -> Self {
        Self {
            sender_ssrc: rand::random(),
            streams: HashMap::new(),
            rtt: None,
            next_tick: None,
            read: VecDeque::new(),
            write: VecDeque::new(),
            rtx: HashMap::new(),
            rtx_counters: counters,
        }
    }

    /// Judges (and counts) an RTX packet for the stream `primary`; a repair
    /// counts as its original arriving.
    fn on_rtx(&mut self, primary: u32, packet: &rtc::rtp::Packet, now: Instant) -> RtxVerdict {
        let verdict = match rtx::osn(packet) {
            Err(verdict) => verdict,
            Ok(osn) => match self.streams.get(&primary) {
                Some(stream)
                    if stream.highest.is_some()
                        && stream.missing.contains_key(&stream.extend(osn)) =>
                {
                    RtxVerdict::Repair(osn)
                }
                _ => RtxVerdict::Unrequested,
            },
        };
        if let RtxVerdict::Repair(osn) = verdict {
            self.on_arrival(primary, osn, now, true);
        }
        self.rtx_counters.count(verdict);
        verdict
    }

    /// How long after a NACK the same packet is asked for again: the measured
    /// NACK-to-repair time plus a quarter and a tick.
    pub fn retry_interval(&self) -> Duration {
        let rtt = self.rtt.unwrap_or(INITIAL_RTT);
        (rtt + rtt / 4 + TICK).clamp(MIN_RETRY, MAX_RETRY)
    }

    /// The measured NACK-to-repair round trip, if any repair was seen.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    fn on_rtp(&mut self, ssrc: u32, seq: u16, now: Instant) {
        self.on_arrival(ssrc, seq, now, false);
    }

    /// A packet of stream `ssrc` arrived (`rtx`: as an RTX repair).
    fn on_arrival(&mut self, ssrc: u32, seq: u16, now: Instant, rtx: bool) {
        let Some(stream) = self.streams.get_mut(&ssrc) else {
            return;
        };
        let ext = stream.extend(seq);
        let Some(highest) = stream.highest else {
            stream.highest = Some(ext);
            return;
        };
        if ext > highest {
            let first = (highest + 1).max(ext.saturating_sub(MISSING_MAX as u64));
            for gap in first..ext {
                stream.missing.insert(
                    gap,
                    Missing {
                        since: now,
                        asked_at: None,
                        asked: 0,
                    },
                );
            }
            while stream.missing.len() > MISSING_MAX {
                stream.missing.pop_first();
            }
            stream.highest = Some(ext);
            if !stream.missing.is_empty() {
                // Ask at once (the next poll of the timeout).
                self.next_tick = Some(now);
            }
        } else if let Some(m) = stream.missing.remove(&ext) {
            match m.asked_at {
                Some(asked_at) if m.asked == 1 => {
                    let sample = now.saturating_duration_since(asked_at);
                    self.rtt = Some(match self.rtt {
                        None => sample,
                        Some(rtt) => rtt + sample / 8 - rtt / 8,
                    });
                }
                _ if m.asked > 1 => tracing::debug!(
                    ssrc,
                    seq,
                    asked = m.asked,
                    rtx,
                    missing_ms = now.saturating_duration_since(m.since).as_millis() as u64,
                    "nack: repaired after asking again"
                ),
                _ => {}
            }
        }
    }

    fn generate(&mut self, now: Instant) {
        let retry = self.retry_interval();
        for (&ssrc, stream) in &mut self.streams {
            stream.missing.retain(|&seq, m| {
                let keep = now.saturating_duration_since(m.since) <= MISSING_MAX_AGE
                    && !(m.asked >= NACKS_PER_PACKET
                        && m.asked_at
                            .is_some_and(|t| now.saturating_duration_since(t) >= retry));
                if !keep {
                    tracing::debug!(
                        ssrc,
                        seq = seq as u16,
                        asked = m.asked,
                        missing_ms = now.saturating_duration_since(m.since).as_millis() as u64,
                        retry_ms = retry.as_millis() as u64,
                        "nack: stopped asking"
                    );
                }
                keep
            });
            let mut repeats = false;
            let due: Vec<u16> = stream
                .missing
                .iter_mut()
                .filter(|(_, m)| {
                    m.asked < NACKS_PER_PACKET
                        && m.asked_at
                            .is_none_or(|t| now.saturating_duration_since(t) >= retry)
                })
                .map(|(&seq, m)| {
                    m.asked += 1;
                    m.asked_at = Some(now);
                    repeats |= m.asked > 1;
                    seq as u16
                })
                .collect();
            if due.is_empty() {
                continue;
            }
            // A repeated ask means the first NACK or its resend was lost:
            // the repeat goes out twice (a few dozen bytes), so losing one
            // copy does not cost another round trip.
            for _ in 0..if repeats { REPEAT_COPIES } else { 1 } {
                let nack = TransportLayerNack {
                    sender_ssrc: self.sender_ssrc,
                    media_ssrc: ssrc,
                    nacks: nack_pairs_from_sequence_numbers(&due),
                };
                self.write.push_back(TaggedPacket {
                    now,
                    transport: TransportContext::default(),
                    message: AttributedPacket::new(Packet::Rtcp(vec![Box::new(nack)])),
                });
            }
        }
        let waiting = self.streams.values().any(|s| !s.missing.is_empty());
        self.next_tick = waiting.then(|| now + TICK);
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for NackGenerator {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        if let Packet::Rtp(packet) = &msg.message.packet {
            let ssrc = packet.header.ssrc;
            match self.rtx.get(&ssrc) {
                Some(&primary) => match self.on_rtx(primary, packet, msg.now) {
                    RtxVerdict::Repair(_) => {}
                    // A probe goes on to the TWCC receiver, which reports
                    // its arrival to the sender's estimate (else a probe
                    // reads as lost); rtc drops it after the interceptors
                    // (an RTX packet without an OSN). Counted.
                    RtxVerdict::Probe => {}
                    _ => return Ok(()), // dropped (counted)
                },
                None => self.on_rtp(ssrc, packet.header.sequence_number, msg.now),
            }
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        if self.next_tick.is_some_and(|t| now >= t) {
            self.generate(now);
        }
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.next_tick
    }
}

impl Interceptor for NackGenerator {
    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        if self.rtx.contains_key(&info.ssrc) {
            // The RTX stream, bound in its own right after its primary: its
            // sequence numbers are the sender's business, not NACKed.
            return;
        }
        if let (Some(rtx), Some(_)) = (info.ssrc_rtx, info.payload_type_rtx) {
            self.rtx.insert(rtx, info.ssrc);
        }
        let nack = info
            .rtcp_feedback
            .iter()
            .any(|fb| fb.typ == "nack" && fb.parameter.is_empty());
        if nack {
            self.streams.insert(info.ssrc, RemoteStream::default());
        }
    }

    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        self.streams.remove(&info.ssrc);
        self.rtx
            .retain(|&rtx, &mut primary| primary != info.ssrc && rtx != info.ssrc);
    }

    fn bind_local_stream(&mut self, _: &StreamInfo) {}

    fn unbind_local_stream(&mut self, _: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generator() -> NackGenerator {
        let mut g = NackGenerator::default();
        g.streams.insert(7, RemoteStream::default());
        g
    }

    /// Sequence numbers NACKed by what the generator wrote at `now`, each
    /// NACK's list once (a repeat's copies are checked to be equal).
    fn nacked(g: &mut NackGenerator, now: Instant) -> Vec<u16> {
        let copies = nacks(g, now);
        assert!(copies.windows(2).all(|w| w[0] == w[1]), "{copies:?}");
        copies.into_iter().next().unwrap_or_default()
    }

    /// The sequence numbers of each NACK the generator wrote at `now`.
    fn nacks(g: &mut NackGenerator, now: Instant) -> Vec<Vec<u16>> {
        g.handle_timeout(now).expect("timeout");
        let mut out = Vec::new();
        while let Some(msg) = g.poll_write() {
            if let Packet::Rtcp(packets) = msg.message.packet {
                for p in packets {
                    let nack = p
                        .as_any()
                        .downcast_ref::<TransportLayerNack>()
                        .expect("a NACK");
                    out.push(
                        nack.nacks
                            .iter()
                            .flat_map(|pair| pair.packet_list())
                            .collect(),
                    );
                }
            }
        }
        out
    }

    /// The first ask goes out once; a repeat (the NACK or the resend was
    /// lost) goes out [`REPEAT_COPIES`] times; a NACK mixing a repeat and a
    /// first ask too.
    #[test]
    fn a_repeated_nack_goes_out_twice() {
        let t0 = Instant::now();
        let mut g = generator();
        g.on_rtp(7, 10, t0);
        g.on_rtp(7, 12, t0); // 11 missing
        assert_eq!(nacks(&mut g, t0), [vec![11]], "first ask: once");
        let retry = g.retry_interval();
        g.on_rtp(7, 14, t0 + retry); // 13 missing
        assert_eq!(
            nacks(&mut g, t0 + retry),
            vec![vec![11, 13]; REPEAT_COPIES],
            "11 asked again: twice"
        );
        g.on_rtp(7, 11, t0 + retry * 2);
        assert_eq!(
            nacks(&mut g, t0 + retry * 2),
            vec![vec![13]; REPEAT_COPIES],
            "13 asked again"
        );
    }

    #[test]
    fn a_gap_is_nacked_at_once_then_after_a_round_trip_a_few_times() {
        let t0 = Instant::now();
        let mut g = generator();
        g.on_rtp(7, 65_534, t0);
        g.on_rtp(7, 1, t0); // 65535 and 0 missing
        assert_eq!(g.poll_timeout(), Some(t0), "asks at once");
        assert_eq!(nacked(&mut g, t0), [65_535, 0]);
        let retry = g.retry_interval();
        assert!(
            nacked(&mut g, t0 + retry - TICK).is_empty(),
            "not before a round trip"
        );
        let mut at = t0;
        for _ in 1..NACKS_PER_PACKET {
            at += retry;
            assert_eq!(nacked(&mut g, at), [65_535, 0]);
        }
        at += retry;
        assert!(
            nacked(&mut g, at).is_empty(),
            "asked {NACKS_PER_PACKET} times"
        );
        assert_eq!(g.poll_timeout(), None, "nothing left to ask for");
    }

    /// A packet repaired after one NACK measures the round trip, which then
    /// paces the retries.
    #[test]
    fn the_retry_interval_follows_the_measured_round_trip() {
        let t0 = Instant::now();
        let mut g = generator();
        g.on_rtp(7, 10, t0);
        g.on_rtp(7, 12, t0);
        assert_eq!(nacked(&mut g, t0), [11]);
        g.on_rtp(7, 11, t0 + Duration::from_millis(300));
        assert_eq!(g.rtt(), Some(Duration::from_millis(300)));
        assert_eq!(g.retry_interval(), Duration::from_millis(300 + 75) + TICK);
        assert_eq!(g.poll_timeout().map(|t| t > t0), Some(true));
    }

    #[test]
    fn missing_packets_are_bounded_in_number_and_age() {
        let t0 = Instant::now();
        let mut g = generator();
        g.on_rtp(7, 0, t0);
        g.on_rtp(7, 5000, t0);
        let asked = nacked(&mut g, t0);
        assert_eq!(asked.len(), MISSING_MAX);
        assert_eq!(asked.first(), Some(&(5000 - MISSING_MAX as u16)));
        assert!(
            nacked(&mut g, t0 + MISSING_MAX_AGE + TICK).is_empty(),
            "too old"
        );
        assert_eq!(g.poll_timeout(), None);
    }

    fn rtp(ssrc: u32, seq: u16, payload: &'static [u8], now: Instant) -> TaggedPacket {
        TaggedPacket {
            now,
            transport: TransportContext::default(),
            message: AttributedPacket::new(Packet::Rtp(rtc::rtp::Packet {
                header: rtc::rtp::Header {
                    version: 2,
                    ssrc,
                    sequence_number: seq,
                    ..Default::default()
                },
                payload: bytes::Bytes::from_static(payload),
            })),
        }
    }

    /// Stream 7 with its RTX stream 8: a repair of a missing packet goes on
    /// and counts as the packet; a malformed one, a duplicate and an OSN
    /// never missing are dropped and counted; the RTX stream's own
    /// sequence numbers are never NACKed.
    #[test]
    fn rtx_repairs_go_through_and_anything_else_on_rtx_is_dropped_and_counted() {
        let counters = Arc::new(RtxCounters::default());
        let mut g = NackGenerator::with_rtx_counters(Arc::clone(&counters));
        g.streams.insert(7, RemoteStream::default());
        g.rtx.insert(8, 7);
        let t0 = Instant::now();
        let read = |g: &mut NackGenerator, msg: TaggedPacket| {
            g.handle_read(msg).expect("read");
            g.poll_read().is_some()
        };
        assert!(read(&mut g, rtp(7, 10, &[1], t0)));
        assert!(read(&mut g, rtp(7, 13, &[1], t0))); // 11, 12 missing
        assert_eq!(nacked(&mut g, t0), [11, 12]);
        // RTX sequence 500, then 502: a gap in the RTX stream, not NACKed.
        assert!(read(&mut g, rtp(8, 500, &[0, 11, 0xAA], t0)), "repairs 11");
        assert!(!read(&mut g, rtp(8, 502, &[0, 11, 0xAA], t0)), "11 again");
        assert!(
            !read(&mut g, rtp(8, 503, &[0x7F, 0, 0xAA], t0)),
            "OSN never missing"
        );
        assert!(!read(&mut g, rtp(8, 504, &[12], t0)), "no room for an OSN");
        let retry = g.retry_interval();
        assert_eq!(nacked(&mut g, t0 + retry), [12], "only 12 is still missing");
        assert_eq!(
            counters.get(),
            super::rtx::RtxCount {
                repaired: 1,
                probes: 0,
                malformed: 1,
                unrequested: 2,
            }
        );
        // The original stream goes on undisturbed.
        assert!(read(&mut g, rtp(7, 14, &[1], t0)));
        assert!(
            g.streams
                .get(&7)
                .is_some_and(|s| s.highest == Some((1 << 32) | 14))
        );
    }
}
