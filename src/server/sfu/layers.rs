//! Which simulcast layer one egress leg forwards, and when it switches, sans-IO.
//!
//! A layered stream's video arrives as up to three RTP streams (one per
//! layer slot, `protocol::layers`); each leg forwards one of them on its one
//! video track. A switch takes effect on the first packet of a keyframe of
//! the target layer (the caller asks the publisher for one): until then the
//! current layer keeps flowing, so the subscriber never waits on a picture it
//! cannot decode. The mediasoup `SimulcastConsumer` does the same.
//!
//! Layers are separate encoders with unrelated RTP clocks, so which of their
//! pictures are the same capture is not in the RTP header. huddle's
//! publishers stamp each video packet with its capture time
//! (`link::capture_time`, the same value on every layer of one capture): a
//! target keyframe captured no later than the current layer's latest
//! picture is passed over ([`Admit::Defer`]: the caller asks for the next
//! keyframe), since switching there would show a capture twice or go back.
//! Without capture times (a browser's simulcast) arrival times stand in: the
//! layers of one capture reach the SFU within milliseconds of each other, and
//! captures are 33 ms (30 fps) or more apart, so a target keyframe within
//! [`SAME_FRAME_WINDOW`] of the current layer's latest picture is passed
//! over. (mediasoup lines layers up with the publisher's sender reports; that
//! would need the ingress to hand its SRs to the hub.)
//!
//! A switch also waits for the current layer's picture to be complete (its
//! marker bit forwarded): cutting a picture short would cost the subscriber
//! a frame it cannot decode.
//!
//! Without capture times both waits can last forever: a browser encodes the
//! layers of one capture back to back and its pacer interleaves their packets,
//! so the target's keyframe may always arrive right after, or in the middle
//! of, the current layer's picture of the same capture (a browser's switch
//! to its smallest layer timed out after 30 s that way). So there, after
//! [`MAX_DEFERRALS`] keyframes passed over, the next one is taken: the
//! subscriber sees one capture twice, or drops the one picture cut short,
//! and goes on from the keyframe.
//!
//! On the switch the leg's [`super::rewrite::Rewriter`] continues sequence
//! numbers after the highest written and rebases timestamps to go on from the
//! last one written by the wall-clock time in between
//! ([`Admit::Switch::gap_ticks`]): the subscriber's decoder sees one stream
//! whose pictures change size at a keyframe, not a new stream.
//!
//! Per packet this costs two compares (and the keyframe check of a packet of
//! the target layer while a switch waits): no allocation.

use std::time::Instant;

use super::media::starts_h264_keyframe;
use crate::protocol::layers::MAX_RESOLUTIONS;

/// The video clock (RFC 6184 §8.2.1: 90 kHz).
const VIDEO_CLOCK_HZ: u64 = 90_000;

/// Pictures of two layers arriving closer than this are taken for the same
/// capture (module docs): well under a 30 fps frame interval, well over the
/// spread between the layers' encoders.
pub const SAME_FRAME_WINDOW: std::time::Duration = std::time::Duration::from_millis(20);

/// Target keyframes passed over, without capture times, before one is taken
/// as it comes (module docs).
pub const MAX_DEFERRALS: u8 = 2;

/// What to do with one video packet on one leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Another layer's: not for this leg.
    Drop,
    /// A keyframe of the target layer of the same capture as the current
    /// layer's latest picture: not used (see the module docs); ask for
    /// another keyframe of the target.
    Defer,
    /// The current layer's: forward.
    Forward,
    /// The first packet of a keyframe of the target layer: it is the current
    /// layer from now on; rebase the rewriter, then forward.
    Switch {
        /// 90 kHz ticks since the last video packet forwarded (at least 1).
        gap_ticks: u32,
    },
}

/// A picture of the current layer, as far as it was forwarded.
#[derive(Debug, Clone, Copy)]
struct Picture {
    timestamp: u32,
    /// When its first packet arrived.
    arrived: Instant,
    /// Its capture time (0: unknown).
    captured: u64,
    /// Its last packet (marker bit) was forwarded.
    complete: bool,
}

/// One video packet as [`LayerSelect::admit`] needs it.
#[derive(Debug, Clone, Copy)]
pub struct PacketInfo {
    /// RTP timestamp.
    pub timestamp: u32,
    /// The picture's capture time (`link::capture_time`); 0 when unknown.
    pub captured: u64,
    /// RTP marker bit: the picture's last packet.
    pub marker: bool,
}

/// One leg's layer: the one forwarded and the one wanted.
#[derive(Debug, Clone)]
pub struct LayerSelect {
    current: u8,
    target: u8,
    /// When the last video packet was forwarded; `None` before the first.
    last_forwarded: Option<Instant>,
    /// The current layer's latest picture.
    picture: Option<Picture>,
    /// RTP timestamp of the target keyframe passed over: its other packets
    /// are passed over too.
    deferred: Option<u32>,
    /// Target keyframes passed over since the target was set.
    deferrals: u8,
    /// The RTP timestamp of the latest packet seen of each layer: a switch
    /// happens only on the first packet of a picture (a keyframe's IDR
    /// slice without the parameter sets before it cannot be decoded).
    seen: [Option<u32>; MAX_RESOLUTIONS],
}

impl Default for LayerSelect {
    fn default() -> Self {
        Self::new(0)
    }
}

impl LayerSelect {
    /// Forwarding `layer` from the start.
    pub fn new(layer: u8) -> Self {
        Self {
            current: layer,
            target: layer,
            last_forwarded: None,
            picture: None,
            deferred: None,
            deferrals: 0,
            seen: [None; MAX_RESOLUTIONS],
        }
    }

    /// The layer forwarded now.
    pub fn current(&self) -> u8 {
        self.current
    }

    /// The layer wanted (equal to [`LayerSelect::current`] unless a switch
    /// waits for its keyframe).
    pub fn target(&self) -> u8 {
        self.target
    }

    /// Wants `layer`. Before anything was forwarded it is current at once
    /// (the leg starts on a keyframe anyway). Returns whether a switch now
    /// waits for a keyframe of `layer` (the caller asks for one).
    pub fn set_target(&mut self, layer: u8) -> bool {
        if layer != self.target {
            self.deferrals = 0;
        }
        self.target = layer;
        if self.last_forwarded.is_none() {
            self.current = layer;
        }
        self.target != self.current
    }

    /// Decides about one video packet of `layer` with payload `payload`,
    /// arrived `now`.
    pub fn admit(&mut self, layer: u8, packet: PacketInfo, payload: &[u8], now: Instant) -> Admit {
        let PacketInfo {
            timestamp,
            captured,
            marker,
        } = packet;
        let first_of_picture = match self.seen.get_mut(usize::from(layer)) {
            Some(seen) => seen.replace(timestamp) != Some(timestamp),
            None => false,
        };
        if layer == self.current {
            match &mut self.picture {
                Some(p) if p.timestamp == timestamp => p.complete |= marker,
                _ => {
                    self.picture = Some(Picture {
                        timestamp,
                        arrived: now,
                        captured,
                        complete: marker,
                    });
                }
            }
            self.last_forwarded = Some(now);
            return Admit::Forward;
        }
        if layer != self.target
            || !first_of_picture
            || self.deferred == Some(timestamp)
            || !starts_h264_keyframe(payload)
        {
            return Admit::Drop;
        }
        let stale = self.picture.is_some_and(|p| {
            if captured != 0 && p.captured != 0 {
                return captured <= p.captured || !p.complete;
            }
            // Arrival times only: bounded (module docs).
            self.deferrals < MAX_DEFERRALS
                && (now.saturating_duration_since(p.arrived) < SAME_FRAME_WINDOW || !p.complete)
        });
        if stale {
            self.deferred = Some(timestamp);
            self.deferrals = self.deferrals.saturating_add(1);
            return Admit::Defer;
        }
        self.current = layer;
        self.deferred = None;
        self.deferrals = 0;
        self.picture = Some(Picture {
            timestamp,
            arrived: now,
            captured,
            complete: marker,
        });
        let gap = self.last_forwarded.map_or(1, |last| {
            let micros = now.saturating_duration_since(last).as_micros() as u64;
            (micros * VIDEO_CLOCK_HZ / 1_000_000).clamp(1, u64::from(u32::MAX / 2)) as u32
        });
        self.last_forwarded = Some(now);
        Admit::Switch { gap_ticks: gap }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const IDR: &[u8] = &[0x65, 0x88];

    /// A one-packet picture.
    fn pk(timestamp: u32, captured: u64) -> PacketInfo {
        PacketInfo {
            timestamp,
            captured,
            marker: true,
        }
    }
    const P: &[u8] = &[0x41, 0x9a];

    #[test]
    fn switches_on_a_keyframe_of_the_target_only() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut s = LayerSelect::new(0);
        assert_eq!(s.admit(0, pk(100, 0), P, t0), Admit::Forward);
        assert_eq!(
            s.admit(1, pk(900, 0), IDR, ms(40)),
            Admit::Drop,
            "not wanted"
        );
        assert!(s.set_target(1), "a switch waits");
        assert_eq!(
            s.admit(1, pk(900, 0), P, ms(40)),
            Admit::Drop,
            "not a keyframe"
        );
        assert_eq!(
            s.admit(0, pk(200, 0), P, ms(66)),
            Admit::Forward,
            "the current layer flows meanwhile"
        );
        assert_eq!(
            s.admit(1, pk(7000, 0), IDR, ms(106)),
            Admit::Switch { gap_ticks: 3600 }
        );
        assert_eq!(s.current(), 1);
        assert_eq!(
            s.admit(0, pk(300, 0), IDR, ms(107)),
            Admit::Drop,
            "the old layer stops"
        );
        assert_eq!(s.admit(1, pk(7000, 0), P, ms(108)), Admit::Forward);
    }

    #[test]
    fn a_keyframe_of_the_same_capture_is_passed_over() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut s = LayerSelect::new(0);
        assert_eq!(s.admit(0, pk(100, 0), P, t0), Admit::Forward);
        assert!(s.set_target(1));
        // Frame 2 of the current layer, then the target's keyframe of that
        // same capture 5 ms later: passed over, all its packets.
        assert_eq!(s.admit(0, pk(200, 0), P, ms(66)), Admit::Forward);
        assert_eq!(
            s.admit(0, pk(200, 0), P, ms(70)),
            Admit::Forward,
            "same picture"
        );
        assert_eq!(s.admit(1, pk(5000, 0), IDR, ms(71)), Admit::Defer);
        assert_eq!(
            s.admit(1, pk(5000, 0), IDR, ms(100)),
            Admit::Drop,
            "its IDR part"
        );
        assert_eq!(s.current(), 0);
        // The next keyframe, of a later capture, is taken.
        assert_eq!(s.admit(0, pk(300, 0), P, ms(133)), Admit::Forward);
        assert!(matches!(
            s.admit(1, pk(8000, 0), IDR, ms(200)),
            Admit::Switch { .. }
        ));
    }

    #[test]
    fn capture_times_decide_when_known() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut s = LayerSelect::new(0);
        assert_eq!(s.admit(0, pk(100, 10), P, t0), Admit::Forward);
        assert!(s.set_target(1));
        // Arrives 40 ms later but is the same capture: passed over.
        assert_eq!(s.admit(1, pk(5000, 10), IDR, ms(40)), Admit::Defer);
        assert_eq!(s.admit(0, pk(200, 11), P, ms(66)), Admit::Forward);
        // Arrives 2 ms after the current picture but is a later capture.
        assert!(matches!(
            s.admit(1, pk(9000, 12), IDR, ms(68)),
            Admit::Switch { .. }
        ));
    }

    #[test]
    fn a_picture_is_not_cut_short() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut s = LayerSelect::new(0);
        let first = PacketInfo {
            marker: false,
            ..pk(100, 10)
        };
        assert_eq!(s.admit(0, first, P, t0), Admit::Forward);
        assert!(s.set_target(1));
        assert_eq!(
            s.admit(1, pk(5000, 11), IDR, ms(40)),
            Admit::Defer,
            "mid-picture"
        );
        assert_eq!(
            s.admit(0, pk(100, 10), P, ms(41)),
            Admit::Forward,
            "its last packet"
        );
        assert!(matches!(
            s.admit(1, pk(9000, 12), IDR, ms(90)),
            Admit::Switch { .. }
        ));
    }

    /// A browser's simulcast (no capture times) whose target keyframes keep
    /// arriving mid-picture or right after the current layer's picture of
    /// the same capture: after MAX_DEFERRALS the next one is taken (it was
    /// passed over forever: a switch timed out after 30 s).
    #[test]
    fn without_capture_times_a_switch_is_passed_over_a_bounded_number_of_times() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut s = LayerSelect::new(0);
        assert!(!s.set_target(0));
        assert_eq!(s.admit(0, pk(100, 0), P, t0), Admit::Forward);
        assert!(s.set_target(2));
        let mut at = 0;
        for round in 0..u32::from(MAX_DEFERRALS) {
            at += 100;
            // The current layer's picture starts, the target's keyframe of the
            // same capture arrives in the middle of it.
            let start = PacketInfo {
                marker: false,
                ..pk(1000 + round * 9000, 0)
            };
            assert_eq!(s.admit(0, start, P, ms(at)), Admit::Forward);
            assert_eq!(
                s.admit(2, pk(50_000 + round * 9000, 0), IDR, ms(at + 3)),
                Admit::Defer,
                "deferral {round}"
            );
        }
        at += 100;
        let start = PacketInfo {
            marker: false,
            ..pk(90_000, 0)
        };
        assert_eq!(s.admit(0, start, P, ms(at)), Admit::Forward);
        assert!(
            matches!(
                s.admit(2, pk(99_000, 0), IDR, ms(at + 3)),
                Admit::Switch { .. }
            ),
            "taken after {MAX_DEFERRALS} deferrals"
        );
        assert_eq!(s.current(), 2);
        // A new target starts counting again.
        assert!(s.set_target(0));
        assert_eq!(s.admit(2, pk(100_000, 0), P, ms(at + 40)), Admit::Forward);
        assert_eq!(s.admit(0, pk(3000, 0), IDR, ms(at + 42)), Admit::Defer);
    }

    #[test]
    fn a_leg_that_forwarded_nothing_starts_on_its_target() {
        let mut s = LayerSelect::new(0);
        assert!(!s.set_target(2));
        assert_eq!(s.current(), 2);
        assert_eq!(s.admit(2, pk(1, 0), P, Instant::now()), Admit::Forward);
    }
}
