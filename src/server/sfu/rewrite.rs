//! Per-egress RTP header rewriting, sans-IO.
//!
//! Every forwarded packet gets the leg's SSRC and payload type (webrtc 0.21.1
//! drops packets whose SSRC or payload type are not the egress leg's), and
//! loses its header extensions: their ids were negotiated on the ingress leg
//! and mean nothing (or something else) on the egress leg.
//!
//! Sequence numbers are made contiguous per egress: when forwarding of a track
//! is paused (unsubscribe video, keep audio) and later resumed, the subscriber
//! must not see the pause as thousands of lost packets. Gaps that come from the
//! publisher (real loss upstream) pass through as gaps.
//!
//! **Invariant: an egress sequence number is never written twice.** The hub
//! seals every packet with the leg's one SRTP key, and the nonce is made of
//! the SSRC, the rollover counter and the sequence number: two different
//! packets under one number would reuse a nonce (and the subscriber's replay
//! check would drop the second anyway). So:
//!
//! * a resumed segment continues after the *highest* number written, not the
//!   last (a late retransmission may have been the last);
//! * a packet older than the first packet of the current segment (a straggler
//!   from before the pause) is dropped;
//! * a packet whose number was already written (a publisher's retransmission
//!   of a packet that had arrived after all), or that is older than the
//!   [`WINDOW`] of numbers remembered, is dropped.
//!
//! Timestamps pass through, plus an offset that is 0 until the leg switches
//! to another simulcast layer ([`Rewriter::switch_source`]): then they go on
//! from the last one written, so the subscriber sees one continuous stream.
//!
//! Retransmissions *to the subscriber* (answers to its NACKs) resend the very
//! packet that was written, same number, same bytes: not a second packet.

use rtc::rtp::Packet;

/// How many of the latest egress sequence numbers are remembered as written.
/// A packet older than that is too late to be of use and is dropped.
pub const WINDOW: u64 = 1024;

const WINDOW_WORDS: usize = (WINDOW / 64) as usize;

/// Rewrites forwarded packets for one egress track.
#[derive(Debug, Clone)]
pub struct Rewriter {
    ssrc: u32,
    payload_type: u8,
    /// Added (wrapping) to every ingress sequence number.
    seq_offset: u16,
    /// The highest egress sequence number written, extended (wraps counted),
    /// once something was.
    highest: Option<u64>,
    /// Bit `i` (word `i / 64`, bit `i % 64`) set: `highest - i` was written.
    written: [u64; WINDOW_WORDS],
    /// Ingress sequence number of the first packet of the current segment.
    anchor: Option<u16>,
    /// The next packet follows a pause: re-anchor the offset on it.
    resync: bool,
    /// Added (wrapping) to every ingress timestamp.
    ts_offset: u32,
    /// The timestamp of the last packet written.
    last_ts: u32,
    /// The next packet starts another source (a simulcast layer) this many
    /// clock ticks after the last one written: rebase `ts_offset` on it.
    rebase: Option<u32>,
    /// The ingress SSRC of the packets written lately ([`Rewriter::source_changed`]).
    source: Option<u32>,
}

impl Rewriter {
    /// A rewriter to the given egress SSRC and payload type.
    pub fn new(ssrc: u32, payload_type: u8) -> Self {
        Self {
            ssrc,
            payload_type,
            seq_offset: 0,
            highest: None,
            written: [0; WINDOW_WORDS],
            anchor: None,
            resync: true,
            ts_offset: 0,
            last_ts: 0,
            rebase: None,
            source: None,
        }
    }

    /// Records the ingress SSRC of the next packet; `true` when it differs
    /// from the one before and no switch is pending already: the stream's
    /// source was replaced under the leg (a node relay's link reopened,
    /// `sfu::relay_ingress`), with its own sequence numbers and timestamps,
    /// and the caller calls [`Rewriter::switch_source`].
    pub fn source_changed(&mut self, ssrc: u32) -> bool {
        let changed = self.source.is_some_and(|s| s != ssrc) && !self.resync;
        self.source = Some(ssrc);
        changed
    }

    /// The next packet comes from another RTP stream of the same source (a
    /// simulcast layer switch, at its keyframe), `gap_ticks` after the last
    /// one written: sequence numbers go on after the highest written and
    /// timestamps from the last one written plus the gap.
    pub fn switch_source(&mut self, gap_ticks: u32) {
        self.resync = true;
        if self.highest.is_some() {
            self.rebase = Some(gap_ticks.max(1));
        }
    }

    /// Marks a pause: the next packet continues right after the highest one
    /// written.
    pub fn pause(&mut self) {
        self.resync = true;
    }

    /// Rewrites `packet` in place for the egress leg. Returns `false` (and
    /// leaves the packet as it was) when it must not be sent: see the module
    /// docs.
    pub fn rewrite(&mut self, packet: &mut Packet) -> bool {
        let ingress = packet.header.sequence_number;
        if self.resync {
            self.resync = false;
            let next = self.highest.map_or(ingress, |h| (h as u16).wrapping_add(1));
            self.seq_offset = next.wrapping_sub(ingress);
            self.anchor = Some(ingress);
        }
        if self
            .anchor
            .is_some_and(|anchor| (ingress.wrapping_sub(anchor) as i16) < 0)
        {
            return false; // from before this segment began
        }
        let out = ingress.wrapping_add(self.seq_offset);
        if !self.mark_written(out) {
            return false;
        }
        let header = &mut packet.header;
        if let Some(gap) = self.rebase.take() {
            self.ts_offset = self
                .last_ts
                .wrapping_add(gap)
                .wrapping_sub(header.timestamp);
        }
        header.timestamp = header.timestamp.wrapping_add(self.ts_offset);
        self.last_ts = header.timestamp;
        header.sequence_number = out;
        header.ssrc = self.ssrc;
        header.payload_type = self.payload_type;
        header.extension = false;
        header.extension_profile = 0;
        header.extensions.clear();
        true
    }

    /// Records `out` as written; `false` if it was already, or is too old.
    fn mark_written(&mut self, out: u16) -> bool {
        let Some(highest) = self.highest else {
            // Start far from 0 so that older numbers stay positive.
            self.highest = Some((1 << 32) + u64::from(out));
            self.written = [0; WINDOW_WORDS];
            self.set(0);
            return true;
        };
        let delta = i64::from(out.wrapping_sub(highest as u16) as i16);
        if delta > 0 {
            self.shift(delta as u64);
            self.highest = Some(highest + delta as u64);
            self.set(0);
            return true;
        }
        let age = delta.unsigned_abs();
        if age >= WINDOW || self.is_set(age) {
            return false;
        }
        self.set(age);
        true
    }

    fn set(&mut self, age: u64) {
        self.written[(age / 64) as usize] |= 1 << (age % 64);
    }

    fn is_set(&self, age: u64) -> bool {
        self.written[(age / 64) as usize] & (1 << (age % 64)) != 0
    }

    /// Ages every remembered number by `by`.
    fn shift(&mut self, by: u64) {
        if by >= WINDOW {
            self.written = [0; WINDOW_WORDS];
            return;
        }
        let words = (by / 64) as usize;
        let bits = by % 64;
        for i in (0..WINDOW_WORDS).rev() {
            let from = i.checked_sub(words);
            let high = from.map_or(0, |f| self.written[f] << bits);
            let carry = match from.and_then(|f| f.checked_sub(1)) {
                Some(prev) if bits > 0 => self.written[prev] >> (64 - bits),
                _ => 0,
            };
            self.written[i] = high | carry;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn packet(seq: u16) -> Packet {
        let mut p = Packet::default();
        p.header.sequence_number = seq;
        p.header.ssrc = 1;
        p.header.payload_type = 96;
        p.header.extension = true;
        p
    }

    /// The egress number of ingress `seq`, or `None` if dropped.
    fn out(r: &mut Rewriter, seq: u16) -> Option<u16> {
        let mut p = packet(seq);
        r.rewrite(&mut p).then_some(p.header.sequence_number)
    }

    #[test]
    fn a_source_switch_continues_numbers_and_timestamps() {
        let mut r = Rewriter::new(9, 96);
        let mut a = packet(100);
        a.header.timestamp = 1_000;
        assert!(r.rewrite(&mut a));
        let mut b = packet(101);
        b.header.timestamp = 4_000;
        assert!(r.rewrite(&mut b));
        r.switch_source(3_000);
        // Another layer: its own numbers and clock.
        let mut c = packet(60_000);
        c.header.timestamp = 777_777;
        assert!(r.rewrite(&mut c));
        assert_eq!(c.header.sequence_number, 102);
        assert_eq!(c.header.timestamp, 7_000);
        let mut d = packet(60_001);
        d.header.timestamp = 777_777 + 3_000;
        assert!(r.rewrite(&mut d));
        assert_eq!(
            (d.header.sequence_number, d.header.timestamp),
            (103, 10_000)
        );
    }

    #[test]
    fn a_replaced_source_goes_on_after_the_highest_written() {
        let mut r = Rewriter::new(77, 96);
        let mut written = Vec::new();
        for seq in 100..105u16 {
            let mut p = packet(seq);
            p.header.timestamp = 9000 + u32::from(seq) * 3000;
            assert!(!r.source_changed(1));
            assert!(r.rewrite(&mut p));
            written.push((p.header.sequence_number, p.header.timestamp));
        }
        // A new link: another SSRC, numbers and timestamps far away.
        let mut p = packet(40_000);
        p.header.ssrc = 2;
        p.header.timestamp = 5;
        assert!(r.source_changed(2));
        r.switch_source(3000);
        assert!(r.rewrite(&mut p));
        let (last_seq, last_ts) = *written.last().expect("written");
        assert_eq!(p.header.sequence_number, last_seq.wrapping_add(1));
        assert_eq!(p.header.timestamp, last_ts.wrapping_add(3000));
        // The same source again is no change.
        assert!(!r.source_changed(2));
    }

    #[test]
    fn rewrites_ssrc_payload_type_and_extensions() {
        let mut r = Rewriter::new(77, 102);
        let mut p = packet(10);
        assert!(r.rewrite(&mut p));
        assert_eq!(p.header.ssrc, 77);
        assert_eq!(p.header.payload_type, 102);
        assert!(!p.header.extension);
        assert_eq!(p.header.sequence_number, 10);
    }

    #[test]
    fn pause_keeps_sequence_contiguous_and_upstream_gaps_pass() {
        let mut r = Rewriter::new(1, 1);
        let written: Vec<_> = [100u16, 101, 103].iter().map(|&s| out(&mut r, s)).collect();
        assert_eq!(written, vec![Some(100), Some(101), Some(103)]); // loss of 102 stays visible
        r.pause();
        assert_eq!(out(&mut r, 5000), Some(104));
        assert_eq!(out(&mut r, 5001), Some(105));
    }

    #[test]
    fn wraps_around() {
        let mut r = Rewriter::new(1, 1);
        assert_eq!(out(&mut r, 65_535), Some(65_535));
        r.pause();
        assert_eq!(out(&mut r, 7), Some(0));
        assert_eq!(out(&mut r, 8), Some(1));
    }

    /// Issue 9: a retransmission of an old packet arriving just before a
    /// pause was the *last* number written; the resumed segment started right
    /// after it, on numbers already used.
    #[test]
    fn a_resume_continues_after_the_highest_number_not_the_last() {
        let mut r = Rewriter::new(1, 1);
        for seq in (100..=103).chain(105..=110) {
            out(&mut r, seq);
        }
        assert_eq!(out(&mut r, 105), None, "a copy of 105: already written");
        assert_eq!(out(&mut r, 104), Some(104), "late but never written");
        r.pause();
        assert_eq!(out(&mut r, 900), Some(111));
    }

    /// Issue 9: a straggler from before the pause, arriving after the resume,
    /// was mapped into the new segment's range below its first packet, on a
    /// number the old segment had used.
    #[test]
    fn a_straggler_from_before_the_pause_is_dropped() {
        let mut r = Rewriter::new(1, 1);
        for seq in 100..=110 {
            out(&mut r, seq);
        }
        r.pause();
        assert_eq!(out(&mut r, 200), Some(111));
        assert_eq!(out(&mut r, 199), None, "older than the segment's first");
        assert_eq!(out(&mut r, 201), Some(112));
    }

    #[test]
    fn numbers_older_than_the_window_are_dropped() {
        let mut r = Rewriter::new(1, 1);
        out(&mut r, 0);
        out(&mut r, WINDOW as u16 + 5);
        assert_eq!(out(&mut r, 3), None, "older than the window");
        assert_eq!(
            out(&mut r, 10),
            Some(10),
            "inside the window, never written"
        );
    }

    /// A small deterministic PRNG (xorshift) for the property test.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Issue 9 (nonce reuse): whatever the publisher's packets do around
    /// pauses and resumes (reordering, retransmissions, stragglers, wrap),
    /// no egress (rollover, sequence number) is ever written twice, and each
    /// written number carries one ingress packet.
    #[test]
    fn no_egress_number_is_ever_written_twice() {
        for seed in 1..=200u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut r = Rewriter::new(1, 1);
            // Egress numbers extended by counting wraps, as SRTP's ROC does.
            let mut roc_seq: HashMap<u64, u16> = HashMap::new();
            let mut highest: Option<u64> = None;
            let mut ingress: u16 = rng.next() as u16;
            let mut recent: Vec<u16> = Vec::new();
            for _ in 0..3_000 {
                let seq = match rng.below(10) {
                    // A retransmission or a late packet from up to 300 back.
                    0 | 1 if !recent.is_empty() => {
                        recent[recent.len() - 1 - rng.below(recent.len().min(300) as u64) as usize]
                    }
                    // Upstream loss: skip a few.
                    2 => {
                        ingress = ingress.wrapping_add(1 + rng.below(5) as u16);
                        ingress
                    }
                    _ => {
                        ingress = ingress.wrapping_add(1);
                        ingress
                    }
                };
                recent.push(seq);
                if rng.below(100) == 0 {
                    r.pause();
                    // The publisher goes on while paused.
                    ingress = ingress.wrapping_add(rng.below(3_000) as u16);
                }
                let Some(o) = out(&mut r, seq) else { continue };
                let ext = match highest {
                    None => (1 << 32) + u64::from(o),
                    Some(h) => (h as i64 + i64::from(o.wrapping_sub(h as u16) as i16)) as u64,
                };
                highest = Some(highest.map_or(ext, |h| h.max(ext)));
                if let Some(previous) = roc_seq.insert(ext, seq) {
                    panic!(
                        "seed {seed}: egress {o} written twice (ingress {previous}, then {seq})"
                    );
                }
            }
        }
    }
}
