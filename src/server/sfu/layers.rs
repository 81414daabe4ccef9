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
//! **A step down under congestion** ([`LayerSelect::step_down_now`]: `auto`
//! stepped down because the path queues or loses) does not keep the larger
//! layer flowing until the switch point: it finishes the picture in flight
//! (a picture cut short cannot be decoded) and then forwards nothing of the
//! current layer until the target's keyframe. The subscriber's picture
//! freezes for the time that keyframe takes (a round trip to the publisher
//! and its encoder), and the queue on the path drains meanwhile. Keeping the
//! larger layer flowing kept the queue full until the switch, the smaller
//! layer's keyframe was often lost in it, loss went on, and `auto` paused the
//! video (issue 10 §2, docs/PERFORMANCE.md "B's early pause"). The switch is
//! the same as any other: at a keyframe of a later capture than the last
//! picture forwarded, sequence numbers and timestamps going on from the last
//! written.
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

/// How long after a step down under congestion completed a keyframe request
/// from the subscriber is still urgent: the switch's keyframe may have been
/// lost in the queue it was meant to avoid (`media::KEYFRAME_URGENT_INTERVAL`).
pub const URGENT_AFTER_CUT: std::time::Duration = std::time::Duration::from_secs(2);

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
    /// A step down under congestion waits: the current layer's next
    /// pictures are not forwarded (module docs).
    cut: bool,
    /// When the current layer became current (its first keyframe
    /// forwarded); `None` before the first switch.
    switched_at: Option<Instant>,
    /// That switch ended a cut (a step down under congestion).
    switched_from_cut: bool,
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
            cut: false,
            switched_at: None,
            switched_from_cut: false,
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

    /// Whether a step down under congestion waits for its keyframe: the
    /// current layer is not forwarded meanwhile.
    pub fn cut(&self) -> bool {
        self.cut
    }

    /// When the current layer became current (the first keyframe of it
    /// forwarded after a switch); `None` if it was the first layer.
    pub fn switched_at(&self) -> Option<Instant> {
        self.switched_at
    }

    /// Whether the subscriber's keyframe requests are urgent: a step down
    /// under congestion waits for its keyframe (nothing is shown meanwhile),
    /// or completed within [`URGENT_AFTER_CUT`] (its keyframe may have been
    /// lost on the path).
    pub fn starved(&self, now: Instant) -> bool {
        self.cut
            || (self.switched_from_cut
                && self
                    .switched_at
                    .is_some_and(|at| now.saturating_duration_since(at) < URGENT_AFTER_CUT))
    }

    /// Wants `layer`. Before anything was forwarded it is current at once
    /// (the leg starts on a keyframe anyway). Returns whether a switch now
    /// waits for a keyframe of `layer` (the caller asks for one). The current
    /// layer flows until the switch.
    pub fn set_target(&mut self, layer: u8) -> bool {
        if layer != self.target {
            self.deferrals = 0;
        }
        self.target = layer;
        self.cut = false;
        if self.last_forwarded.is_none() {
            self.current = layer;
        }
        self.target != self.current
    }

    /// Wants `layer`, a smaller one, because the path cannot carry the
    /// current one: the picture in flight is finished, then nothing of the
    /// current layer is forwarded until the switch (module docs). Returns
    /// whether a switch waits, as [`LayerSelect::set_target`].
    pub fn step_down_now(&mut self, layer: u8) -> bool {
        let waits = self.set_target(layer);
        self.cut = waits;
        waits
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
        if layer == self.current && self.cut {
            // Only the picture in flight is finished. A later one means the
            // one in flight is over, whatever of it was lost; the target's
            // keyframe must be of a later capture than it.
            return match &mut self.picture {
                Some(p) if p.timestamp == timestamp && !p.complete => {
                    p.complete |= marker;
                    self.last_forwarded = Some(now);
                    Admit::Forward
                }
                Some(p) => {
                    p.complete = true;
                    Admit::Drop
                }
                None => Admit::Drop,
            };
        }
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
        self.switched_from_cut = self.cut;
        self.cut = false;
        self.switched_at = Some(now);
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

    #[test]
    fn a_step_down_under_congestion_finishes_the_picture_then_stops_the_layer() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let part = |timestamp, captured, marker| PacketInfo {
            timestamp,
            captured,
            marker,
        };
        let mut s = LayerSelect::new(0);
        assert_eq!(s.admit(0, part(100, 10, true), P, t0), Admit::Forward);
        assert_eq!(s.admit(0, part(200, 11, false), P, ms(66)), Admit::Forward);
        assert!(s.step_down_now(2), "a switch waits");
        assert!(s.cut() && s.starved(ms(67)));
        assert_eq!(
            s.admit(0, part(200, 11, true), P, ms(67)),
            Admit::Forward,
            "the picture in flight is finished"
        );
        assert_eq!(
            s.admit(0, part(300, 12, true), P, ms(133)),
            Admit::Drop,
            "the next picture of the larger layer is not forwarded"
        );
        assert_eq!(
            s.admit(2, pk(5000, 11), IDR, ms(134)),
            Admit::Defer,
            "a keyframe of the last capture forwarded would show it twice"
        );
        assert_eq!(s.admit(0, part(400, 13, true), P, ms(200)), Admit::Drop);
        // Frozen since 67 ms: the timestamps go on by the wall-clock gap.
        assert_eq!(
            s.admit(2, pk(9000, 14), IDR, ms(227)),
            Admit::Switch {
                gap_ticks: 160 * 90
            }
        );
        assert_eq!((s.current(), s.cut()), (2, false));
        assert_eq!(s.switched_at(), Some(ms(227)));
        assert!(s.starved(ms(1000)), "its keyframe may be lost on the path");
        assert!(!s.starved(ms(227) + URGENT_AFTER_CUT));
        assert_eq!(s.admit(2, pk(9000, 14), P, ms(228)), Admit::Forward);
        assert_eq!(s.admit(0, part(500, 15, true), IDR, ms(266)), Admit::Drop);
    }

    #[test]
    fn a_step_down_under_congestion_is_undone_by_a_new_target() {
        let t0 = Instant::now();
        let mut s = LayerSelect::new(0);
        assert_eq!(s.admit(0, pk(100, 10), P, t0), Admit::Forward);
        assert!(s.step_down_now(2));
        assert!(!s.set_target(0), "back to the current layer: nothing waits");
        assert!(!s.cut());
        assert_eq!(
            s.admit(0, pk(200, 11), P, t0 + Duration::from_millis(66)),
            Admit::Forward
        );
        assert!(!s.starved(t0 + Duration::from_millis(66)));
    }

    /// A model of B's downlink in `benches/simulcast.sh`: a tail-drop queue
    /// of 200 ms at 300 kbit/s, full of the 640x360 layer (800 kbit/s: 15
    /// pictures/s of 6 packets of 1100 bytes) when `auto` steps down; the
    /// 160x90 layer's keyframe (3 packets of 1000 bytes) comes 150 ms later.
    /// Returns how many of the keyframe's packets the queue took, and when
    /// the last of them left it (ms after the step down).
    fn step_down_through_a_full_queue(step: fn(&mut LayerSelect, u8) -> bool) -> (usize, u64) {
        const DRAIN_BYTES_PER_MS: u64 = 300_000 / 8 / 1000;
        const LIMIT_BYTES: u64 = DRAIN_BYTES_PER_MS * 200;
        const STEP_AT: u64 = 1010;
        const KEYFRAME_AT: u64 = STEP_AT + 150;
        let t0 = Instant::now();
        let mut s = LayerSelect::new(0);
        let mut queued = 0u64;
        let offer = |queued: &mut u64, bytes: u64| {
            let taken = *queued + bytes <= LIMIT_BYTES;
            if taken {
                *queued += bytes;
            }
            taken
        };
        let mut keyframe = (0, 0);
        for ms in 0..KEYFRAME_AT + 100 {
            queued = queued.saturating_sub(DRAIN_BYTES_PER_MS);
            let now = t0 + Duration::from_millis(ms);
            if ms == STEP_AT {
                step(&mut s, 2);
            }
            let picture = ms * 15 / 1000;
            if ms == 0 || picture != (ms - 1) * 15 / 1000 {
                for n in 0..6 {
                    let info = PacketInfo {
                        timestamp: 100 + picture as u32 * 6000,
                        captured: ms + 1,
                        marker: n == 5,
                    };
                    if s.admit(0, info, P, now) == Admit::Forward {
                        offer(&mut queued, 1100);
                    }
                }
            }
            if ms == KEYFRAME_AT {
                for n in 0..3 {
                    let info = PacketInfo {
                        timestamp: 50_000,
                        captured: ms + 1,
                        marker: n == 2,
                    };
                    let admitted = s.admit(2, info, IDR, now);
                    assert!(
                        matches!(admitted, Admit::Switch { .. } | Admit::Forward),
                        "{admitted:?}"
                    );
                    if offer(&mut queued, 1000) {
                        keyframe = (keyframe.0 + 1, ms - STEP_AT + queued / DRAIN_BYTES_PER_MS);
                    }
                }
            }
        }
        keyframe
    }

    #[test]
    fn a_step_down_under_congestion_gets_the_smaller_keyframe_through_the_queue() {
        let (taken, shown_after_ms) = step_down_through_a_full_queue(LayerSelect::step_down_now);
        assert_eq!(taken, 3, "the queue drained for the keyframe");
        assert!(
            shown_after_ms < 300,
            "the keyframe left the queue {shown_after_ms} ms after the step down"
        );
    }

    /// The same step down with the larger layer flowing until the switch
    /// (`set_target`, a voluntary change; before the fix also a step down
    /// under congestion): the keyframe meets a full queue and is lost.
    #[test]
    fn a_switch_that_keeps_the_larger_layer_flowing_loses_the_keyframe_in_a_full_queue() {
        let (taken, _) = step_down_through_a_full_queue(LayerSelect::set_target);
        assert!(taken < 3, "{taken} of 3 keyframe packets queued");
    }
}
