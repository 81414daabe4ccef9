//! Padding-only packets dropped at the forwarding, their numbers closed up,
//! sans-IO.
//!
//! A browser pads its RTP streams to probe its uplink (Chromium pads its
//! smallest simulcast layer at ~360 packets/s): packets with the P bit set
//! and nothing left once the padding is removed (RFC 3550 §5.1). Forwarded,
//! every subscriber of that layer gets them, sealed and sent one by one, for
//! nothing. The hub drops them once per ingress packet, before the fan-out
//! ([`SeqSkip::admit`]), and renumbers the stream so the numbers it dropped
//! leave no gap: a subscriber would take a gap for loss and NACK it.
//!
//! The renumbering is mediasoup's `SeqManager` idea: a packet's number goes
//! down by the count of numbers dropped below it, so it holds whatever the
//! order packets arrive in:
//!
//! * a media packet that arrives late (reordered, or a publisher's
//!   retransmission) is counted against the drops below *its* number, so it
//!   gets the number it would have had in order, and a copy gets the same
//!   number again (each leg's `Rewriter` then drops the copy);
//! * only padding above every number seen so far is dropped as such: a
//!   padding packet that arrives late finds its number already left as a
//!   hole by the media after it, so it is forwarded into that hole (else the
//!   subscriber would NACK a number nothing answers); a copy of a dropped
//!   padding packet is dropped;
//! * the dropped numbers are remembered over the last [`WINDOW`] numbers; a
//!   packet older than that is dropped as stale (the leg's `Rewriter`
//!   drops one that old too);
//! * another SSRC (a relayed stream's link reopened) starts afresh: the
//!   legs' rewriters see the new source and continue their own numbering.
//!
//! Subscribers' NACKs need no mapping back: each leg keeps what it sent
//! under the numbers it sent (`hub::direct::SentHistory`).
//!
//! The cost on the fan-out path: per ingress packet one check of the P bit
//! and the payload's length; while nothing was ever dropped on a stream
//! nothing more; after that a subtraction (packets in order: the latest
//! drop is below them) or a binary search over the remembered drops.
//!
//! What `rtc` 0.21.1 leaves us: it parses the packet before the SFU sees it
//! and strips the padding (`rtc::rtp::Packet::unmarshal`), and rejects a
//! packet whose padding length exceeds its payload (`ErrShortPacket`), so
//! such a packet never reaches the forwarding (see the tests).

use std::collections::VecDeque;

use rtc::rtp::Packet;

/// How many of the latest ingress numbers the dropped ones are remembered
/// over (as the leg's `Rewriter` remembers the numbers it wrote).
pub const WINDOW: u64 = crate::server::sfu::rewrite::WINDOW;

/// Whether a packet carries nothing but padding (RFC 3550 §5.1: the P bit
/// set, and no payload once the padding is removed).
pub fn is_padding_only(packet: &Packet) -> bool {
    packet.header.padding && packet.payload.is_empty()
}

/// What to do with one ingress packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Forward it under this sequence number.
    Forward(u16),
    /// Padding only: dropped, its number closed up.
    Padding,
    /// Older than the [`WINDOW`], or a media packet under a number dropped as
    /// padding: not forwarded.
    Stale,
}

/// Drops padding-only packets of one RTP stream and closes up their numbers.
#[derive(Debug, Clone, Default)]
pub struct SeqSkip {
    /// The stream's SSRC and the highest number seen, extended (wraps
    /// counted), once a packet was seen.
    highest: Option<(u32, u64)>,
    /// Extended numbers dropped as padding within the [`WINDOW`] below
    /// `highest`, ascending.
    dropped: VecDeque<u64>,
    /// Numbers dropped as padding before the window (every one of them below
    /// every packet still forwarded), wrapping.
    dropped_before: u64,
}

impl SeqSkip {
    /// Takes the next ingress packet of the stream: its SSRC, its number,
    /// and whether it is padding only ([`is_padding_only`]).
    pub fn admit(&mut self, ssrc: u32, seq: u16, padding: bool) -> Verdict {
        let Some((ssrc_seen, highest)) = self.highest.filter(|(s, _)| *s == ssrc) else {
            // The first packet, or another source: start afresh. Far from 0
            // so that older numbers stay positive.
            *self = Self::default();
            let ext = (1 << 32) + u64::from(seq);
            self.highest = Some((ssrc, ext));
            return self.above_all(ext, padding);
        };
        let delta = i64::from(seq.wrapping_sub(highest as u16) as i16);
        let ext = highest.wrapping_add_signed(delta);
        if delta > 0 {
            self.highest = Some((ssrc_seen, ext));
            let floor = ext.saturating_sub(WINDOW);
            while self.dropped.front().is_some_and(|&d| d <= floor) {
                self.dropped.pop_front();
                self.dropped_before = self.dropped_before.wrapping_add(1);
            }
            return self.above_all(ext, padding);
        }
        if delta.unsigned_abs() >= WINDOW {
            return Verdict::Stale;
        }
        // At or below the highest: reordered, or a copy.
        let below = self.dropped.partition_point(|&d| d < ext);
        if self.dropped.get(below) == Some(&ext) {
            // A copy of dropped padding is dropped; media under that number
            // cannot be placed (a misbehaving publisher).
            return if padding {
                Verdict::Padding
            } else {
                Verdict::Stale
            };
        }
        // Media, or padding into the hole media after it left.
        self.out(ext, below)
    }

    /// A packet above every one seen: padding is dropped, media numbered.
    fn above_all(&mut self, ext: u64, padding: bool) -> Verdict {
        if padding {
            self.dropped.push_back(ext);
            return Verdict::Padding;
        }
        self.out(ext, self.dropped.len())
    }

    /// `ext` less the drops below it (`below` of them in the window).
    fn out(&self, ext: u64, below: usize) -> Verdict {
        let skipped = self.dropped_before.wrapping_add(below as u64);
        Verdict::Forward(ext.wrapping_sub(skipped) as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use rtc::shared::marshal::Unmarshal;
    use std::collections::HashMap;

    const SSRC: u32 = 7;

    /// Feeds `(seq, padding)` in order; the verdicts.
    fn run(skip: &mut SeqSkip, input: &[(u16, bool)]) -> Vec<Verdict> {
        input
            .iter()
            .map(|&(seq, padding)| skip.admit(SSRC, seq, padding))
            .collect()
    }

    use Verdict::{Forward, Padding, Stale};

    #[test]
    fn padding_in_order_leaves_no_gap() {
        let mut s = SeqSkip::default();
        let v = run(
            &mut s,
            &[
                (10, false),
                (11, true),
                (12, true),
                (13, false),
                (14, false),
                (15, true),
                (16, false),
            ],
        );
        assert_eq!(
            v,
            [
                Forward(10),
                Padding,
                Padding,
                Forward(11),
                Forward(12),
                Padding,
                Forward(13)
            ]
        );
    }

    #[test]
    fn nothing_dropped_changes_nothing() {
        let mut s = SeqSkip::default();
        let v = run(&mut s, &[(100, false), (102, false), (101, false)]);
        assert_eq!(v, [Forward(100), Forward(102), Forward(101)]);
    }

    /// Media that arrives after padding numbered above it is counted only
    /// against the drops below its own number.
    #[test]
    fn reordered_media_gets_the_number_it_would_have_had() {
        let mut s = SeqSkip::default();
        let v = run(
            &mut s,
            &[
                (10, false),
                (12, true),
                (13, false),
                (11, false), // late, below the padding
                (15, false),
                (14, true), // late padding
            ],
        );
        // 13 went out as 12 (one drop below it), 15 as 14: 13 is a hole,
        // which the late padding 14 fills (in order it would have been
        // dropped and 15 sent as 13).
        assert_eq!(
            v,
            [
                Forward(10),
                Padding,
                Forward(12),
                Forward(11),
                Forward(14),
                Forward(13)
            ]
        );
    }

    /// A publisher's retransmission of media gets the number of the first
    /// copy (the leg's rewriter then drops it); a copy of dropped padding is
    /// dropped again.
    #[test]
    fn retransmitted_packets_keep_their_numbers() {
        let mut s = SeqSkip::default();
        let v = run(
            &mut s,
            &[
                (1, false),
                (2, true),
                (3, false),
                (4, true),
                (5, false),
                (3, false),
                (2, true),
                (5, false),
                (4, true),
            ],
        );
        assert_eq!(
            v,
            [
                Forward(1),
                Padding,
                Forward(2),
                Padding,
                Forward(3),
                Forward(2),
                Padding,
                Forward(3),
                Padding
            ]
        );
    }

    #[test]
    fn wraps_around() {
        let mut s = SeqSkip::default();
        let v = run(
            &mut s,
            &[
                (65_533, false),
                (65_534, true),
                (65_535, true),
                (0, false),
                (1, true),
                (2, false),
                (65_535, true), // a late copy, across the wrap
            ],
        );
        assert_eq!(
            v,
            [
                Forward(65_533),
                Padding,
                Padding,
                Forward(65_534),
                Padding,
                Forward(65_535),
                Padding
            ]
        );
        // Thousands of drops later the numbers still run on, across wraps.
        let mut next = 65_535u16;
        let mut seq = 2u16;
        for i in 0..200_000u32 {
            seq = seq.wrapping_add(1);
            let padding = i % 3 != 0;
            let v = s.admit(SSRC, seq, padding);
            if padding {
                assert_eq!(v, Padding);
            } else {
                next = next.wrapping_add(1);
                assert_eq!(v, Forward(next), "at {i}");
            }
        }
    }

    #[test]
    fn older_than_the_window_is_stale() {
        let mut s = SeqSkip::default();
        run(&mut s, &[(0, false), (1, true), (WINDOW as u16 + 5, false)]);
        assert_eq!(s.admit(SSRC, 2, false), Stale);
        assert_eq!(
            s.admit(SSRC, 10, false),
            Forward(9),
            "inside: one drop below"
        );
    }

    #[test]
    fn another_source_starts_afresh() {
        let mut s = SeqSkip::default();
        run(&mut s, &[(100, false), (101, true), (102, false)]);
        assert_eq!(s.admit(SSRC + 1, 40_000, false), Forward(40_000));
        assert_eq!(s.admit(SSRC + 1, 40_001, true), Padding);
        assert_eq!(s.admit(SSRC + 1, 40_002, false), Forward(40_001));
    }

    /// A small deterministic PRNG (xorshift).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Whatever the order and the copies, each media packet gets the number
    /// it has in the stream with the padding taken out, and no padding packet
    /// above the numbers seen is forwarded.
    #[test]
    fn media_numbers_are_the_stream_without_its_padding() {
        for seed in 1..=100u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let start = rng.next() as u16;
            // The stream as sent: which numbers are padding, and each media
            // packet's number without the padding.
            let n = 5_000u32;
            let padding: Vec<bool> = (0..n).map(|_| rng.next().is_multiple_of(3)).collect();
            let mut expected = HashMap::new();
            let mut media = 0u16;
            for (i, &p) in padding.iter().enumerate() {
                if !p {
                    expected.insert(i as u32, start.wrapping_add(media));
                    media = media.wrapping_add(1);
                }
            }
            // As it arrives: neighbours swapped (reordering) and copies
            // from up to 100 back (retransmissions), never a padding packet
            // late past media after it (checked separately above).
            let mut order: Vec<u32> = (0..n).collect();
            for i in 1..order.len() {
                let (a, b) = (order[i - 1] as usize, order[i] as usize);
                if rng.next().is_multiple_of(8) && !padding[a] && !padding[b] {
                    order.swap(i - 1, i);
                }
            }
            let mut arrivals = Vec::new();
            for (k, &i) in order.iter().enumerate() {
                arrivals.push(i);
                if k > 100 && rng.next().is_multiple_of(10) {
                    arrivals.push(order[k - 1 - (rng.next() % 100) as usize]);
                }
            }
            let mut s = SeqSkip::default();
            for &i in &arrivals {
                let seq = start.wrapping_add(i as u16);
                let v = s.admit(SSRC, seq, padding[i as usize]);
                match (padding[i as usize], v) {
                    (true, Padding) => {}
                    (false, Forward(out)) => {
                        assert_eq!(out, expected[&i], "seed {seed}: packet {i}");
                    }
                    other => panic!("seed {seed}: packet {i}: {other:?}"),
                }
            }
        }
    }

    /// `rtc` strips the padding when it parses a packet (so padding only is
    /// an empty payload with the P bit), and rejects a padding length
    /// larger than the payload before the SFU sees the packet.
    #[test]
    fn rtc_strips_padding_and_rejects_a_padding_length_past_the_payload() {
        let header = [0xa0u8, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 7]; // V=2, P=1
        let mut only = header.to_vec();
        only.extend([0, 0, 0, 4]);
        let parsed = Packet::unmarshal(&mut Bytes::from(only)).expect("padding only");
        assert!(is_padding_only(&parsed));
        let mut media = header.to_vec();
        media.extend([0x41, 0x9a, 0, 2]);
        let parsed = Packet::unmarshal(&mut Bytes::from(media)).expect("media with padding");
        assert!(!is_padding_only(&parsed));
        assert_eq!(&parsed.payload[..], &[0x41, 0x9a]);
        let mut bad = header.to_vec();
        bad.extend([0, 0, 0, 9]);
        assert!(Packet::unmarshal(&mut Bytes::from(bad)).is_err());
    }
}
