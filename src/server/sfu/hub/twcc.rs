//! Transport-wide congestion control on an egress leg, sans-IO (issue 10 §2):
//! the leg's own transport-wide sequence numbers, what was sent under each,
//! and the subscriber's feedback turned into send/arrival pairs for the
//! downlink estimator ([`crate::server::sfu::downlink_gcc`]).
//!
//! * Every packet the hub seals for the leg (video and audio: the number is
//!   transport-wide) takes the next number ([`EgressTwcc::stamp`]), written
//!   into the transport-wide-cc header extension under the id **the leg's
//!   answer** negotiated (never the publisher's: the forwarder and the
//!   [`crate::server::sfu::rewrite::Rewriter`] drop every ingress extension).
//! * `(number → departure, size)` goes into a ring of [`RING`] entries: one
//!   array write per packet, no allocation. Feedback about a number that fell
//!   out of the ring is too late to be of use and is skipped.
//! * A retransmission (an answer to a NACK) goes out with the **same** number
//!   as the packet it repeats: with the same RTP sequence number the SRTP
//!   (AES-GCM) nonce is the same, so the bytes must be too; a second number
//!   would authenticate a second header under one nonce. Its ring entry takes
//!   the resend's departure ([`EgressTwcc::resent`]).
//! * Feedback that contradicts itself (more statuses or deltas than it claims,
//!   numbers never sent) is [`BadFeedback`]: counted by the caller and
//!   ignored, so a broken subscriber cannot move its own estimate, let alone
//!   anyone else's.

use std::time::Instant;

use rtc::interceptor::{PacketReport, convert_twcc};
use rtc::rtcp::transport_feedbacks::transport_layer_cc::{
    PacketStatusChunk, SymbolTypeTcc, TransportLayerCc,
};

/// Numbers remembered per leg (a power of two): about 2 s of a leg carrying
/// 2,000 packets/s, several feedback intervals.
pub const RING: usize = 4096;

/// The RFC 8285 one-byte header extension ids (1..=14).
const ONE_BYTE_IDS: std::ops::RangeInclusive<u8> = 1..=14;

/// Every big-endian `u16`, in order: the 2-byte payload of a TWCC extension is
/// a slice of this (`Bytes::from_static`), so stamping a packet allocates
/// nothing.
static BE_U16: [u8; 2 * 65536] = {
    let mut table = [0u8; 2 * 65536];
    let mut i = 0;
    while i < 65536 {
        table[2 * i] = (i >> 8) as u8;
        table[2 * i + 1] = i as u8;
        i += 1;
    }
    table
};

/// `seq` as a static 2-byte big-endian slice.
pub fn seq_bytes(seq: u16) -> &'static [u8] {
    let at = 2 * usize::from(seq);
    &BE_U16[at..at + 2]
}

/// Why a feedback packet was refused (the caller counts it; nothing else
/// changes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadFeedback {
    /// Its chunks describe a different number of packets than its
    /// `packet_status_count`.
    StatusCount,
    /// It carries fewer or more arrival deltas than packets it says arrived
    /// with one.
    DeltaCount,
    /// It reports a number this leg has not sent yet.
    NeverSent,
    /// It covers more packets than the ring holds.
    TooLong,
}

#[derive(Debug, Clone, Copy)]
struct Sent {
    /// The extended (never wrapping) number; `u64::MAX`: empty.
    number: u64,
    at: Instant,
    size: u32,
}

/// One leg's transport-wide numbering and send history.
pub struct EgressTwcc {
    ext_id: u8,
    /// The next extended number to stamp.
    next: u64,
    ring: Box<[Sent]>,
}

impl EgressTwcc {
    /// For a leg whose answer negotiated the extension under `ext_id`;
    /// `None` if that id does not fit a one-byte header extension.
    pub fn new(ext_id: u16, now: Instant) -> Option<Self> {
        let ext_id = u8::try_from(ext_id)
            .ok()
            .filter(|id| ONE_BYTE_IDS.contains(id))?;
        let empty = Sent {
            number: u64::MAX,
            at: now,
            size: 0,
        };
        Some(Self {
            ext_id,
            next: 0,
            ring: vec![empty; RING].into_boxed_slice(),
        })
    }

    /// The negotiated extension id.
    pub fn ext_id(&self) -> u8 {
        self.ext_id
    }

    /// Numbers a packet of `size` bytes leaving at `now`; returns its number.
    #[inline]
    pub fn stamp(&mut self, now: Instant, size: usize) -> u16 {
        let number = self.next;
        self.next += 1;
        if let Some(slot) = self.ring.get_mut(number as usize & (RING - 1)) {
            *slot = Sent {
                number,
                at: now,
                size: size as u32,
            };
        }
        number as u16
    }

    /// The packet numbered `seq` went out again at `now` (a retransmission
    /// under the same number, see the module docs).
    pub fn resent(&mut self, seq: u16, now: Instant) {
        if let Some(number) = self.extend(seq)
            && let Some(slot) = self.ring.get_mut(number as usize & (RING - 1))
            && slot.number == number
        {
            slot.at = now;
        }
    }

    /// The extended number of the latest sent number that reads `seq`.
    fn extend(&self, seq: u16) -> Option<u64> {
        let last = self.next.checked_sub(1)?;
        let back = (last as u16).wrapping_sub(seq);
        last.checked_sub(u64::from(back))
    }

    /// The subscriber's feedback as send/arrival pairs, in send order
    /// (numbers no longer in the ring are skipped). Arrivals are on the
    /// subscriber's clock, comparable across its reports.
    pub fn on_feedback(
        &self,
        feedback: &TransportLayerCc,
    ) -> Result<Vec<PacketReport>, BadFeedback> {
        let count = usize::from(feedback.packet_status_count);
        if count > RING {
            return Err(BadFeedback::TooLong);
        }
        check_counts(feedback, count)?;
        let acks = convert_twcc(feedback);
        if acks.len() < count {
            return Err(BadFeedback::StatusCount);
        }
        let Some(base) = self.extend(feedback.base_sequence_number) else {
            return Err(BadFeedback::NeverSent);
        };
        if count > 0 && base + count as u64 > self.next {
            return Err(BadFeedback::NeverSent);
        }
        let mut reports = Vec::with_capacity(count);
        // The last run may be longer than the count says: only `count` count.
        for (offset, ack) in acks.iter().take(count).enumerate() {
            let number = base + offset as u64;
            let Some(sent) = self
                .ring
                .get(number as usize & (RING - 1))
                .filter(|s| s.number == number)
            else {
                continue; // fell out of the ring: too old to matter
            };
            reports.push(PacketReport {
                ssrc: feedback.media_ssrc,
                id: number,
                rtp_sequence_number: 0,
                is_twcc: true,
                twcc_sequence_number: ack.sequence_number,
                size: sent.size as usize,
                arrived: ack.arrived,
                departure: sent.at,
                arrival: ack.arrival,
                ecn: ack.ecn,
            });
        }
        Ok(reports)
    }
}

/// The chunks describe at least `count` statuses (a run-length or vector
/// chunk may pad past it, no more than one chunk's worth), and there is one
/// delta per packet received with a delta among the first `count`.
fn check_counts(feedback: &TransportLayerCc, count: usize) -> Result<(), BadFeedback> {
    let mut statuses = 0usize;
    let mut with_delta = 0usize;
    for chunk in &feedback.packet_chunks {
        if statuses >= count {
            return Err(BadFeedback::StatusCount); // a chunk past the count
        }
        let mut symbol = |s: SymbolTypeTcc, n: usize| {
            let counted = n.min(count.saturating_sub(statuses));
            if matches!(
                s,
                SymbolTypeTcc::PacketReceivedSmallDelta | SymbolTypeTcc::PacketReceivedLargeDelta
            ) {
                with_delta += counted;
            }
            statuses += n;
        };
        match chunk {
            PacketStatusChunk::RunLengthChunk(run) => {
                symbol(run.packet_status_symbol, usize::from(run.run_length))
            }
            PacketStatusChunk::StatusVectorChunk(vector) => {
                for &s in &vector.symbol_list {
                    symbol(s, 1);
                }
            }
        }
    }
    if statuses < count {
        return Err(BadFeedback::StatusCount);
    }
    if feedback.recv_deltas.len() != with_delta {
        return Err(BadFeedback::DeltaCount);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtcp::transport_feedbacks::transport_layer_cc::{
        RecvDelta, RunLengthChunk, StatusChunkTypeTcc,
    };
    use std::time::Duration;

    fn run(symbol: SymbolTypeTcc, n: u16) -> PacketStatusChunk {
        PacketStatusChunk::RunLengthChunk(RunLengthChunk {
            type_tcc: StatusChunkTypeTcc::RunLengthChunk,
            packet_status_symbol: symbol,
            run_length: n,
        })
    }

    fn delta(us: i64) -> RecvDelta {
        RecvDelta {
            type_tcc_packet: SymbolTypeTcc::PacketReceivedSmallDelta,
            delta: us,
        }
    }

    /// Feedback: `received` packets from `base`, 1 ms apart, then `lost`.
    fn feedback(base: u16, received: u16, lost: u16) -> TransportLayerCc {
        let mut chunks = vec![run(SymbolTypeTcc::PacketReceivedSmallDelta, received)];
        if lost > 0 {
            chunks.push(run(SymbolTypeTcc::PacketNotReceived, lost));
        }
        TransportLayerCc {
            sender_ssrc: 1,
            media_ssrc: 2,
            base_sequence_number: base,
            packet_status_count: received + lost,
            reference_time: 10,
            fb_pkt_count: 0,
            packet_chunks: chunks,
            recv_deltas: (0..received).map(|_| delta(1000)).collect(),
        }
    }

    #[test]
    fn numbers_follow_each_other_and_wrap() {
        let now = Instant::now();
        let mut twcc = EgressTwcc::new(5, now).expect("id fits");
        assert_eq!(twcc.ext_id(), 5);
        let first: Vec<u16> = (0..3).map(|_| twcc.stamp(now, 100)).collect();
        assert_eq!(first, [0, 1, 2]);
        for _ in 3..65536 {
            twcc.stamp(now, 100);
        }
        assert_eq!(twcc.stamp(now, 100), 0, "wraps after 65,535");
        assert_eq!(twcc.extend(0), Some(65536), "the latest 0 is the second");
        assert_eq!(twcc.extend(65535), Some(65535));
        assert!(EgressTwcc::new(0, now).is_none());
        assert!(EgressTwcc::new(15, now).is_none(), "one-byte ids end at 14");
    }

    #[test]
    fn the_payload_table_is_big_endian() {
        assert_eq!(seq_bytes(0), [0, 0]);
        assert_eq!(seq_bytes(0x1234), [0x12, 0x34]);
        assert_eq!(seq_bytes(65535), [0xff, 0xff]);
    }

    #[test]
    fn feedback_pairs_departures_with_arrivals() {
        let t0 = Instant::now();
        let mut twcc = EgressTwcc::new(3, t0).expect("id");
        for i in 0..10u64 {
            twcc.stamp(t0 + Duration::from_millis(i), 1000 + i as usize);
        }
        let reports = twcc.on_feedback(&feedback(2, 4, 2)).expect("well formed");
        assert_eq!(reports.len(), 6);
        let numbers: Vec<u64> = reports.iter().map(|r| r.id).collect();
        assert_eq!(numbers, [2, 3, 4, 5, 6, 7]);
        assert_eq!(reports[0].size, 1002);
        assert_eq!(reports[0].departure, t0 + Duration::from_millis(2));
        assert!(reports[..4].iter().all(|r| r.arrived));
        assert!(
            reports[4..]
                .iter()
                .all(|r| !r.arrived && r.arrival.is_none())
        );
        // 64 ms ticks of the reference, then 1 ms per delta.
        assert_eq!(
            reports[1].arrival,
            Some(Duration::from_millis(640 + 2)),
            "reference + two deltas"
        );
    }

    #[test]
    fn the_ring_forgets_old_numbers() {
        let t0 = Instant::now();
        let mut twcc = EgressTwcc::new(3, t0).expect("id");
        for _ in 0..RING + 10 {
            twcc.stamp(t0, 100);
        }
        // Numbers 0..10 were overwritten by RING..RING+10.
        let reports = twcc.on_feedback(&feedback(5, 10, 0)).expect("well formed");
        let numbers: Vec<u64> = reports.iter().map(|r| r.id).collect();
        assert_eq!(numbers, [10, 11, 12, 13, 14]);
        assert_eq!(twcc.ring.len(), RING, "bounded");
    }

    #[test]
    fn a_resend_moves_the_departure() {
        let t0 = Instant::now();
        let mut twcc = EgressTwcc::new(3, t0).expect("id");
        twcc.stamp(t0, 100);
        let later = t0 + Duration::from_millis(50);
        twcc.resent(0, later);
        let reports = twcc.on_feedback(&feedback(0, 1, 0)).expect("well formed");
        assert_eq!(reports[0].departure, later);
    }

    #[test]
    fn contradictory_feedback_is_refused() {
        let t0 = Instant::now();
        let mut twcc = EgressTwcc::new(3, t0).expect("id");
        for _ in 0..20 {
            twcc.stamp(t0, 100);
        }
        let mut short = feedback(0, 4, 0);
        short.packet_status_count = 9;
        assert_eq!(twcc.on_feedback(&short), Err(BadFeedback::StatusCount));
        let mut deltas = feedback(0, 4, 0);
        deltas.recv_deltas.pop();
        assert_eq!(twcc.on_feedback(&deltas), Err(BadFeedback::DeltaCount));
        let mut extra = feedback(0, 4, 0);
        extra.recv_deltas.push(delta(5));
        assert_eq!(twcc.on_feedback(&extra), Err(BadFeedback::DeltaCount));
        assert_eq!(
            twcc.on_feedback(&feedback(18, 4, 0)),
            Err(BadFeedback::NeverSent),
            "20 and 21 were never sent"
        );
        let mut long = feedback(0, 4, 0);
        long.packet_status_count = u16::MAX;
        assert_eq!(twcc.on_feedback(&long), Err(BadFeedback::TooLong));
        let fresh = EgressTwcc::new(3, t0).expect("id");
        assert_eq!(
            fresh.on_feedback(&feedback(0, 1, 0)),
            Err(BadFeedback::NeverSent)
        );
        // And well-formed feedback still works after all that.
        assert_eq!(twcc.on_feedback(&feedback(0, 4, 0)).map(|r| r.len()), Ok(4));
    }
}
