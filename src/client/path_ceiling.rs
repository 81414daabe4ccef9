//! What the path showed it carries: the application-side bound around GCC's
//! estimate on a narrow uplink (issue 10 §1).
//!
//! Why this exists: rtc-interceptor 0.21.1's `Gcc` reacts to a 500 kbit/s
//! `tc tbf` uplink with its loss half only. It cuts deep (to ~150 kbit/s, a
//! third of the path), then climbs 28 %/s with no bound by what arrives, back
//! into loss, again and again: a rung change and a lost keyframe every few
//! seconds (docs/PERFORMANCE.md, "Issue 10 §1"). libwebrtc bounds both sides
//! by the acknowledged rate; so does this, outside GCC:
//!
//! ```text
//!            congestion (loss, or a standing queue while probing)
//!   Open ──────────────────────────────────────▶ Holding { C = acked rate }
//!    ▲                                              │ total = BACKOFF × C, whatever
//!    │ C ≥ OPEN_FACTOR × the C congestion showed    │ GCC says (DRAIN × C while a
//!    │                                              │ standing queue of DRAIN_QUEUE_MS
//!    │                                              │ is left); still losing after
//!    │                                              │ REEVALUATE: C = acked again
//!    │                                              ▼ after HOLD
//!    └──────────────────────────────────────────  Probing { C }
//!             with probe padding (a link with RTX): total = BACKOFF × C, and
//!             padding up to PADDED_PROBE_LIMIT × C; without: total = max(GCC's,
//!             BACKOFF × C) ≤ PROBE_LIMIT × C, risen at the caller's 15 %/s.
//!             C = max(C, what arrives); loss or a standing queue while above
//!             BACKOFF × C → Holding (the padding stops at once)
//! ```
//!
//! A probe with padding ([`crate::link::probe_padding`]) asks nothing more of
//! the encoders: if the path is still capped, what the probe costs is padding
//! in the bottleneck's queue for the guard's reaction time, not pictures lost
//! or a picture size the path cannot carry; the media rises only as C does.
//!
//! While a path drops what it is sent beyond its capacity, what arrives (the
//! acknowledged rate, [`crate::link::acked_rate`]) *is* its capacity, so C is
//! measured, not guessed from the rate that was being sent.
//!
//! Invariants:
//! * Only a sender that fills its target can learn the path from what
//!   arrives: while the link sends less than [`APP_LIMITED`] of the total
//!   (a plain picture, a muted stream) no congestion is taken, and an open
//!   path stays open (a publisher on a good path never steps down here).
//! * Loss without a rise before it is congestion only when it is heavy
//!   ([`COLLAPSE_LOSS`]): random loss at a steady rate sets no ceiling.
//! * The standing queue is read only while probing above a ceiling the path
//!   already showed: it ends a probe before the bottleneck's queue is full.
//! * Pure: every instant is an argument.

use std::time::{Duration, Instant};

use crate::link::congestion::EstimateSnapshot;

/// The share of a shown capacity the total keeps to while holding.
/// 0.8 rather than libwebrtc's 0.85: the encoder overshoots its target on
/// noise by ~10 % (openh264 without frame skipping), and the 1 s acknowledged
/// rate still reads a little high through a token bucket's burst.
pub const BACKOFF: f64 = 0.8;

/// While holding, a standing queue at least this long is the collapse's
/// queue still in the bottleneck: the total drops to [`DRAIN`] × C until it
/// is gone. At [`BACKOFF`] the queue drains at a fifth of the capacity: the
/// 400 ms a 500 kbit/s `tc tbf` holds (its 200 ms of latency plus its 15 KB
/// bucket) took 3 s, the subscriber's video standing still the whole time
/// (docs/PERFORMANCE.md, issue 10 §1).
pub const DRAIN_QUEUE_MS: f64 = 100.0;

/// The share of C the total keeps to while a collapse's queue drains.
pub const DRAIN: f64 = 0.5;

/// How long the total holds at [`BACKOFF`] × C before probing again. With the
/// caller's 15 %/s rise and the ladder's holds, a lifted cap is back at the
/// full profile within ~12 s (the issue asks for 15).
pub const HOLD: Duration = Duration::from_secs(4);

/// While holding, loss this long after the ceiling was set means the path is
/// narrower still: C is measured again. Sooner, the loss is the queue that
/// the backoff is draining.
pub const REEVALUATE: Duration = Duration::from_secs(3);

/// Heavy loss ([`COLLAPSE_LOSS`]) this long after the ceiling was set: the
/// path is still overloaded, measure again. The first reading of a collapse
/// reads high (its second of arrivals still holds the rate before it).
pub const REEVALUATE_COLLAPSE: Duration = Duration::from_secs(1);

/// Loss this heavy (over the last window) is congestion even with no rise
/// before it: a sender over the path's capacity (GCC's own "decrease" band).
pub const COLLAPSE_LOSS: f64 = 0.10;

/// Loss above this shortly after a rise, or while probing, is the probe's
/// doing (GCC's "hold" band).
pub const LOSS: f64 = rtc::interceptor::GCC_LOW_LOSS;

/// A rise this recent is blamed for loss.
pub const RISE_BLAME: Duration = Duration::from_secs(2);

/// A standing queue this long while probing above [`BACKOFF`] × C ends the probe.
pub const QUEUE_GUARD_MS: f64 = 30.0;

/// Below this share of the total sent, the sender is application-limited.
pub const APP_LIMITED: f64 = 0.6;

/// While probing, C follows what arrives without congestion; once it is
/// this much above what congestion last showed, the path is wider now (the
/// cap was lifted). Above what a token bucket's burst reads over one second
/// on the bench's path (15 KB: +120 kbit/s on ~450); on a much narrower
/// bucketed path a burst can still open it, and the next probe's congestion
/// closes it again.
pub const OPEN_FACTOR: f64 = 1.4;

/// A probe asks at most this much more than C until the path opens.
pub const PROBE_LIMIT: f64 = 1.2;

/// A probe made of padding sends at most this much more than C. Lower than
/// [`PROBE_LIMIT`]: through a token bucket (15 KB in the bench) the
/// acknowledged rate reads high for a second, C follows it and the probe
/// with it, so 1.2 × C grew to 1.4 × the path before its queue showed
/// (70-170 ms of it, each time a second of late frames). The path still
/// opens, a probe or two later.
pub const PADDED_PROBE_LIMIT: f64 = 1.1;

/// Where the path stands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PathState {
    /// Nothing learnt: the estimate rules.
    Open,
    /// Congestion showed the path carries `ceiling_bps`: the total stays at
    /// [`BACKOFF`] × it until [`HOLD`] after `since`.
    Holding {
        /// The acknowledged rate when congestion was seen, bit/s.
        ceiling_bps: u32,
        /// When it was seen.
        since: Instant,
    },
    /// After the hold: the total may rise above [`BACKOFF`] × C again, and
    /// never falls below it (however deep GCC cut) until congestion.
    Probing {
        /// The last capacity shown, bit/s.
        ceiling_bps: u32,
    },
}

/// The bound itself: a [`PathState`] and when the total last rose.
#[derive(Debug, Clone, Copy)]
pub struct PathCeiling {
    state: PathState,
    last_rise: Option<Instant>,
    /// C as congestion last showed it (Probing raises C as more arrives).
    shown_bps: u32,
    /// Times the media met congestion: the path entered (or re-entered)
    /// [`PathState::Holding`] other than at the end of a padded probe.
    congestions: u64,
    /// What the link fills to with probe padding, decided with the last
    /// total, bit/s (0: no padding).
    probe_bps: u32,
    /// This hold began with the media over the path (not a padded probe's
    /// end): its queue is drained at [`DRAIN`].
    drain: bool,
    /// While the last total was a drain's: the hold it drains towards
    /// ([`BACKOFF`] × C within the limit), which the rung keeps to.
    draining_to: Option<u32>,
}

impl Default for PathCeiling {
    fn default() -> Self {
        Self {
            state: PathState::Open,
            last_rise: None,
            shown_bps: 0,
            congestions: 0,
            probe_bps: 0,
            drain: false,
            draining_to: None,
        }
    }
}

fn backoff(ceiling_bps: u32) -> u32 {
    (f64::from(ceiling_bps) * BACKOFF) as u32
}

impl PathCeiling {
    /// Where the path stands now.
    #[must_use]
    pub fn state(&self) -> PathState {
        self.state
    }

    /// How many times the media met congestion so far: the encoder drops
    /// what it had run ahead of its budget at each (`FrameBudget::clear`).
    /// The end of a padded probe is not counted: the queue it left is
    /// padding's, and stops with it.
    #[must_use]
    pub fn congestions(&self) -> u64 {
        self.congestions
    }

    /// The capacity last shown, bit/s, if any.
    #[must_use]
    pub fn ceiling_bps(&self) -> Option<u32> {
        match self.state {
            PathState::Open => None,
            PathState::Holding { ceiling_bps, .. } | PathState::Probing { ceiling_bps } => {
                Some(ceiling_bps)
            }
        }
    }

    /// What the rung (the picture size) may be chosen for, out of `total`:
    /// no more than [`BACKOFF`] × the capacity last shown, so a probe raises
    /// the bitrate of the pictures being sent and a new size (a keyframe)
    /// comes only once the path has carried more.
    /// A drain (a second or so) does not move the rung: the picture size
    /// stays the one the hold pays for, and the frame budget drops frames
    /// meanwhile (a rung down and back up would be two new sizes, two
    /// keyframes).
    #[must_use]
    pub fn rung_total(&self, total: u32) -> u32 {
        match (self.ceiling_bps(), self.draining_to) {
            (None, _) => total,
            (Some(_), Some(hold)) => hold,
            (Some(c), None) => total.min(backoff(c)),
        }
    }

    /// What the path showed it carries, as a total ([`BACKOFF`] × C), while
    /// it is known: the caller's slow rise (which guards against a climbing
    /// estimate) need not apply below it.
    #[must_use]
    pub fn carried_bps(&self) -> Option<u32> {
        self.ceiling_bps().map(backoff)
    }

    /// What the link should send in all (bit/s) with the total the last
    /// [`PathCeiling::bound`] returned, the media's shortfall padded: while
    /// probing on a link that can pad, [`PADDED_PROBE_LIMIT`] × C (within the
    /// cap and the profile); else 0.
    #[must_use]
    pub fn probe_bps(&self) -> u32 {
        self.probe_bps
    }

    /// The total (bit/s) at `now`: `allowed` is GCC's estimate bounded by the
    /// cap and the profile, `limit` the cap and the profile alone, `previous`
    /// the total decided last, `link` what the link measured; `can_pad`
    /// whether the link can send probe padding ([`PathCeiling::probe_bps`]).
    pub fn bound(
        &mut self,
        allowed: u32,
        limit: u32,
        previous: Option<u32>,
        link: Option<&EstimateSnapshot>,
        can_pad: bool,
        now: Instant,
    ) -> u32 {
        self.step(previous, link, now);
        let probe = |c: u32| ((f64::from(c) * PROBE_LIMIT) as u32).min(limit);
        let bounded = match self.state {
            PathState::Open => allowed,
            PathState::Holding { ceiling_bps, .. }
                if self.drain
                    && link
                        .and_then(|l| l.queue_ms)
                        .is_some_and(|q| q >= DRAIN_QUEUE_MS) =>
            {
                ((f64::from(ceiling_bps) * DRAIN) as u32).min(limit)
            }
            PathState::Holding { ceiling_bps, .. } => backoff(ceiling_bps).min(limit),
            PathState::Probing { ceiling_bps } if can_pad => backoff(ceiling_bps).min(limit),
            PathState::Probing { ceiling_bps } => {
                allowed.max(backoff(ceiling_bps)).min(probe(ceiling_bps))
            }
        };
        self.draining_to = match self.state {
            PathState::Holding { ceiling_bps, .. } if bounded < backoff(ceiling_bps).min(limit) => {
                Some(backoff(ceiling_bps).min(limit))
            }
            _ => None,
        };
        self.probe_bps = match self.state {
            // The link pads what the media leaves of it, packet by packet
            // (`link::probe_padding`): not a rate computed here from a
            // measured media rate, which lags a keyframe by its window.
            PathState::Probing { ceiling_bps } if can_pad => {
                ((f64::from(ceiling_bps) * PADDED_PROBE_LIMIT) as u32).min(limit)
            }
            _ => 0,
        };
        if previous.is_some_and(|p| u64::from(bounded) * 100 > u64::from(p) * 101) {
            self.last_rise = Some(now);
        }
        bounded
    }

    fn step(&mut self, previous: Option<u32>, link: Option<&EstimateSnapshot>, now: Instant) {
        let Some(link) = link else { return };
        let (Some(acked), Some(sent), Some(loss), Some(previous)) =
            (link.acked_bps, link.sent_bps, link.recent_loss, previous)
        else {
            return;
        };
        if sent < f64::from(previous) * APP_LIMITED {
            // What arrives says nothing about the path: leave it as it was,
            // but a hold still ends.
            if let PathState::Holding { ceiling_bps, since } = self.state
                && now.saturating_duration_since(since) >= HOLD
            {
                self.state = PathState::Probing { ceiling_bps };
            }
            return;
        }
        // What arrived cannot exceed what was sent; over a second it can read
        // so through a token bucket's burst.
        let acked = acked.min(sent).max(0.0).min(f64::from(u32::MAX)) as u32;
        let risen = self
            .last_rise
            .is_some_and(|at| now.saturating_duration_since(at) <= RISE_BLAME);
        let congested = loss > COLLAPSE_LOSS || (loss > LOSS && risen);
        let state = self.state;
        self.state = match state {
            PathState::Open if congested => PathState::Holding {
                ceiling_bps: acked,
                since: now,
            },
            PathState::Open => PathState::Open,
            PathState::Holding { ceiling_bps, since } => {
                let held = now.saturating_duration_since(since);
                if (loss > LOSS && held >= REEVALUATE)
                    || (loss > COLLAPSE_LOSS && held >= REEVALUATE_COLLAPSE)
                {
                    PathState::Holding {
                        ceiling_bps: acked.min(ceiling_bps),
                        since: now,
                    }
                } else if held >= HOLD {
                    PathState::Probing { ceiling_bps }
                } else {
                    self.state
                }
            }
            PathState::Probing { ceiling_bps } => {
                let above = previous > backoff(ceiling_bps) || self.probe_bps > 0;
                let queued = link.queue_ms.is_some_and(|q| q >= QUEUE_GUARD_MS);
                if loss > COLLAPSE_LOSS || (above && (loss > LOSS || queued)) {
                    PathState::Holding {
                        ceiling_bps: acked,
                        since: now,
                    }
                } else {
                    // Carried without congestion: the path carries at least
                    // that much (a capacity read low while the queue drained
                    // comes back up here).
                    let ceiling_bps = ceiling_bps.max(acked);
                    if f64::from(ceiling_bps) >= f64::from(self.shown_bps) * OPEN_FACTOR {
                        PathState::Open
                    } else {
                        PathState::Probing { ceiling_bps }
                    }
                }
            }
        };
        if let PathState::Holding { since, .. } = self.state
            && since == now
        {
            // The padding asked with the last total was going out: this is
            // the probe's end, not the media's congestion.
            let probe_end = matches!(state, PathState::Probing { .. }) && self.probe_bps > 0;
            if !probe_end {
                self.congestions += 1;
            }
            if !matches!(state, PathState::Holding { .. }) {
                self.drain = !probe_end;
            }
        }
        // A fresh congestion sets what the path showed; a hold measured
        // again (REEVALUATE) may read low while its queue drains, and keeps it.
        if let PathState::Holding { ceiling_bps, .. } = self.state
            && !matches!(state, PathState::Holding { .. })
        {
            self.shown_bps = ceiling_bps;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(acked: f64, sent: f64, loss: f64, queue_ms: f64) -> EstimateSnapshot {
        EstimateSnapshot {
            acked_bps: Some(acked),
            sent_bps: Some(sent),
            recent_loss: Some(loss),
            queue_ms: Some(queue_ms),
            ..EstimateSnapshot::default()
        }
    }

    /// A path that just collapsed at `t0`: 1.6 Mbit/s sent into 500 kbit/s,
    /// 480 arrived, two thirds lost, `queue_ms` standing.
    fn collapsed(queue_ms: f64, can_pad: bool, t0: Instant) -> PathCeiling {
        let mut path = PathCeiling::default();
        let lossy = link(480_000.0, 1_600_000.0, 0.66, queue_ms);
        path.bound(
            1_000_000,
            1_800_000,
            Some(1_600_000),
            Some(&lossy),
            can_pad,
            t0,
        );
        path
    }

    #[test]
    fn a_collapse_holds_the_total_under_what_arrived_not_under_gcc() {
        let t0 = Instant::now();
        let mut path = PathCeiling::default();
        // 1.6 Mbit/s into a 500 kbit/s path: two thirds lost, 480 arrive.
        let lossy = link(480_000.0, 1_600_000.0, 0.66, 150.0);
        let total = path.bound(
            1_000_000,
            1_800_000,
            Some(1_600_000),
            Some(&lossy),
            false,
            t0,
        );
        assert_eq!(
            total, 240_000,
            "DRAIN × what arrived while its queue stands"
        );
        assert_eq!(path.ceiling_bps(), Some(480_000));
        assert_eq!(path.congestions(), 1);
        // GCC cuts to 150 kbit/s: the hold stays at 384.
        let ms = Duration::from_millis;
        let drained = link(400_000.0, 408_000.0, 0.0, 0.0);
        let t = t0 + ms(800);
        assert_eq!(
            path.bound(150_000, 1_800_000, Some(408_000), Some(&drained), false, t),
            384_000
        );
        // Loss that lingers while the queue drains does not lower it ...
        let lingering = link(400_000.0, 408_000.0, 0.05, 60.0);
        assert_eq!(
            path.bound(
                150_000,
                1_800_000,
                Some(408_000),
                Some(&lingering),
                false,
                t0 + ms(1000)
            ),
            384_000
        );
        // ... loss well after the backoff does: the path is narrower.
        let narrower = link(300_000.0, 408_000.0, 0.25, 200.0);
        assert_eq!(
            path.bound(
                150_000,
                1_800_000,
                Some(408_000),
                Some(&narrower),
                false,
                t0 + ms(3100)
            ),
            150_000,
            "DRAIN × 300 while the queue stands"
        );
        assert_eq!(path.ceiling_bps(), Some(300_000));
        // A cap below bounds it too.
        assert_eq!(
            path.bound(
                150_000,
                200_000,
                Some(255_000),
                Some(&drained),
                false,
                t0 + ms(3200)
            ),
            200_000
        );
    }

    #[test]
    fn a_collapse_read_high_is_measured_again_after_a_second_of_heavy_loss() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut path = PathCeiling::default();
        // The first second of arrivals still holds the rate before the cap.
        // (Queues under DRAIN_QUEUE_MS here: this is about C, not the drain.)
        let first = link(870_000.0, 1_200_000.0, 0.5, 90.0);
        assert_eq!(
            path.bound(
                1_000_000,
                1_800_000,
                Some(1_540_000),
                Some(&first),
                false,
                t0
            ),
            696_000
        );
        let still = link(450_000.0, 700_000.0, 0.2, 90.0);
        let at = |path: &mut PathCeiling, link: &EstimateSnapshot, t| {
            path.bound(300_000, 1_800_000, Some(696_000), Some(link), false, t)
        };
        assert_eq!(at(&mut path, &still, t0 + ms(500)), 696_000, "too soon");
        // Light loss a second on is the queue draining: not yet.
        let light = link(450_000.0, 700_000.0, 0.05, 90.0);
        assert_eq!(at(&mut path, &light, t0 + ms(1100)), 696_000);
        // Heavy loss a second on: what arrives now.
        assert_eq!(at(&mut path, &still, t0 + ms(1200)), 360_000);
        assert_eq!(path.ceiling_bps(), Some(450_000));
        assert_eq!(path.congestions(), 2);
    }

    #[test]
    fn after_the_hold_it_probes_and_a_standing_queue_ends_the_probe() {
        let t0 = Instant::now();
        let mut path = collapsed(150.0, false, t0);
        let clean = link(400_000.0, 408_000.0, 0.0, 0.0);
        let t1 = t0 + HOLD;
        // Probing: GCC's estimate rules again, but never below the floor.
        assert_eq!(
            path.bound(550_000, 1_800_000, Some(408_000), Some(&clean), false, t1),
            550_000
        );
        // ... up to PROBE_LIMIT × C.
        assert_eq!(
            path.bound(900_000, 1_800_000, Some(550_000), Some(&clean), false, t1),
            576_000
        );
        assert!(matches!(path.state(), PathState::Probing { .. }));
        assert_eq!(
            path.bound(200_000, 1_800_000, Some(408_000), Some(&clean), false, t1),
            384_000
        );
        // Above the floor, a standing queue: back to BACKOFF × what arrives.
        let queued = link(470_000.0, 520_000.0, 0.0, QUEUE_GUARD_MS + 5.0);
        let total = path.bound(
            700_000,
            1_800_000,
            Some(520_000),
            Some(&queued),
            false,
            t1 + Duration::from_secs(1),
        );
        assert_eq!(total, 376_000);
        assert!(matches!(path.state(), PathState::Holding { .. }));
    }

    /// A collapse's queue drains at DRAIN × C, then the hold is BACKOFF × C;
    /// a queue while probing is the probe's (it ends it), not a drain.
    #[test]
    fn a_collapses_queue_drains_at_half_the_capacity() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut path = PathCeiling::default();
        let lossy = link(480_000.0, 1_600_000.0, 0.66, 400.0);
        let bound = |path: &mut PathCeiling, queue: f64, t| {
            let l = link(240_000.0, 250_000.0, 0.0, queue);
            path.bound(1_000_000, 1_800_000, Some(240_000), Some(&l), true, t)
        };
        assert_eq!(
            path.bound(
                1_000_000,
                1_800_000,
                Some(1_600_000),
                Some(&lossy),
                true,
                t0
            ),
            240_000
        );
        assert_eq!(bound(&mut path, 300.0, t0 + ms(500)), 240_000);
        assert_eq!(
            path.rung_total(240_000),
            384_000,
            "the rung keeps to the hold"
        );
        assert_eq!(path.carried_bps(), Some(384_000));
        assert_eq!(bound(&mut path, DRAIN_QUEUE_MS, t0 + ms(900)), 240_000);
        assert_eq!(
            bound(&mut path, DRAIN_QUEUE_MS - 1.0, t0 + ms(1000)),
            384_000
        );
        assert_eq!(path.rung_total(300_000), 300_000);
        assert_eq!(bound(&mut path, 0.0, t0 + ms(2000)), 384_000);
        assert_eq!(
            path.ceiling_bps(),
            Some(480_000),
            "draining measures nothing"
        );
        assert_eq!(path.congestions(), 1);
        // A padded probe that ends on a queue: a hold at BACKOFF, no drain,
        // and no congestion of the media (the encoder keeps its savings).
        let t1 = t0 + HOLD + ms(100);
        let clean = link(384_000.0, 390_000.0, 0.0, 0.0);
        path.bound(1_000_000, 1_800_000, Some(384_000), Some(&clean), true, t1);
        assert!(path.probe_bps() > 0);
        let queued = link(500_000.0, 560_000.0, 0.0, 120.0);
        assert_eq!(
            path.bound(
                1_000_000,
                1_800_000,
                Some(384_000),
                Some(&queued),
                true,
                t1 + ms(300)
            ),
            400_000
        );
        assert!(matches!(path.state(), PathState::Holding { .. }));
        assert_eq!(path.congestions(), 1);
    }

    /// With probe padding the pictures never pay for a probe: the total stays
    /// at BACKOFF × C, the padding lifts what is sent to PADDED_PROBE_LIMIT × C; a
    /// standing queue stops it at once; padding that arrives raises C and
    /// opens the path.
    #[test]
    fn a_probe_with_padding_keeps_the_pictures_under_the_ceiling() {
        let t0 = Instant::now();
        let mut path = collapsed(90.0, true, t0);
        assert_eq!(path.probe_bps(), 0, "no padding while holding");
        let clean = |acked: f64, sent: f64| link(acked, sent, 0.0, 0.0);
        let t1 = t0 + HOLD;
        // GCC says 900: the pictures stay at 0.8 × 480, the link pads what
        // they leave of 1.1 × 480.
        let total = path.bound(
            900_000,
            1_800_000,
            Some(384_000),
            Some(&clean(300_000.0, 308_000.0)),
            true,
            t1,
        );
        assert_eq!(total, 384_000);
        assert_eq!(path.probe_bps(), 528_000, "the link fills to 1.1 × 480");
        // Within the cap and the profile.
        path.bound(
            900_000,
            500_000,
            Some(384_000),
            Some(&clean(470_000.0, 576_000.0)),
            true,
            t1,
        );
        assert_eq!(path.probe_bps(), 500_000);
        // A standing queue while padding: hold again, padding off, although
        // the total itself never went above BACKOFF × C.
        let mut queued = path;
        let total = queued.bound(
            900_000,
            1_800_000,
            Some(384_000),
            Some(&link(490_000.0, 560_000.0, 0.0, QUEUE_GUARD_MS + 5.0)),
            true,
            t1 + Duration::from_millis(500),
        );
        assert!(matches!(queued.state(), PathState::Holding { .. }));
        assert_eq!(total, 392_000);
        assert_eq!(queued.probe_bps(), 0);
        // The padding arrives (the cap was lifted): C follows what arrives,
        // the pictures with it (0.8 × C), and 1.4 × 480 opens the path.
        let s = Duration::from_secs;
        let total = path.bound(
            900_000,
            1_800_000,
            Some(384_000),
            Some(&clean(576_000.0, 576_000.0)),
            true,
            t1 + s(1),
        );
        assert_eq!(path.ceiling_bps(), Some(576_000));
        assert_eq!(total, 460_800);
        assert_eq!(path.probe_bps(), 633_600);
        path.bound(
            900_000,
            1_800_000,
            Some(460_800),
            Some(&clean(690_000.0, 690_000.0)),
            true,
            t1 + s(2),
        );
        assert_eq!(path.state(), PathState::Open);
        assert_eq!(path.probe_bps(), 0, "an open path is not probed");
        // A link that cannot pad probes with the total, no padding.
        let mut plain = collapsed(90.0, false, t0);
        let total = plain.bound(
            900_000,
            1_800_000,
            Some(384_000),
            Some(&clean(380_000.0, 388_000.0)),
            false,
            t1,
        );
        assert_eq!(total, 576_000);
        assert_eq!(plain.probe_bps(), 0);
    }

    #[test]
    fn what_arrived_counts_no_more_than_what_was_sent() {
        let t0 = Instant::now();
        let mut path = PathCeiling::default();
        // A token bucket let a burst through: 620 kbit/s "arrived" of 520 sent.
        let burst = link(620_000.0, 520_000.0, 0.3, 0.0);
        let total = path.bound(700_000, 1_800_000, Some(520_000), Some(&burst), false, t0);
        assert_eq!(path.ceiling_bps(), Some(520_000));
        assert_eq!(total, 416_000);
    }

    #[test]
    fn a_probe_well_past_the_ceiling_opens_the_path() {
        let t0 = Instant::now();
        let mut path = collapsed(150.0, false, t0);
        let t1 = t0 + HOLD;
        let clean = |sent: f64| link(sent, sent, 0.0, 0.0);
        path.bound(
            600_000,
            1_800_000,
            Some(408_000),
            Some(&clean(408_000.0)),
            false,
            t1,
        );
        assert!(matches!(path.state(), PathState::Probing { .. }));
        // The target ran ahead to 1.2 × 480, the encoder sends 480: no
        // proof, still probing, and the probe asks no more than 1.2 × C.
        let s = Duration::from_secs;
        let asked = path.bound(
            900_000,
            1_800_000,
            Some(720_000),
            Some(&clean(480_000.0)),
            false,
            t1 + s(3),
        );
        assert_eq!(asked, 576_000);
        assert!(matches!(path.state(), PathState::Probing { .. }));
        let mut at = |acked: f64, secs: u64| {
            path.bound(
                900_000,
                1_800_000,
                Some(720_000),
                Some(&clean(acked)),
                false,
                t1 + s(secs),
            );
            path.state()
        };
        // 600 arrive (a token bucket's burst, or a wider path): C follows.
        assert_eq!(
            at(600_000.0, 4),
            PathState::Probing {
                ceiling_bps: 600_000
            }
        );
        assert_eq!(
            at(480_000.0, 5),
            PathState::Probing {
                ceiling_bps: 600_000
            }
        );
        // The cap was lifted: 1.4 × 480 arrives.
        assert_eq!(at(680_000.0, 6), PathState::Open);
        assert_eq!(
            path.bound(
                100_000,
                1_800_000,
                Some(720_000),
                Some(&clean(720_000.0)),
                false,
                t1 + s(9)
            ),
            100_000,
            "GCC rules again"
        );
    }

    #[test]
    fn random_loss_at_a_steady_rate_and_an_app_limited_sender_set_no_ceiling() {
        let t0 = Instant::now();
        let mut path = PathCeiling::default();
        // 5 % random loss, sending what the target asks, no rise: no ceiling.
        let random = link(950_000.0, 1_000_000.0, 0.05, 0.0);
        for i in 0..50u32 {
            let t = t0 + Duration::from_millis(100) * i;
            assert_eq!(
                path.bound(
                    1_000_000,
                    1_800_000,
                    Some(1_000_000),
                    Some(&random),
                    false,
                    t
                ),
                1_000_000
            );
        }
        assert_eq!(path.state(), PathState::Open);
        // The same loss right after a rise is the rise's doing.
        let mut rising = PathCeiling::default();
        rising.bound(1_100_000, 1_800_000, Some(1_000_000), None, false, t0);
        let t = t0 + Duration::from_millis(500);
        assert_eq!(
            rising.bound(
                1_100_000,
                1_800_000,
                Some(1_100_000),
                Some(&random),
                false,
                t
            ),
            760_000
        );
        // A plain picture sending a tenth of its target, even through heavy
        // loss and a queue: what arrives says nothing about the path.
        let mut plain = PathCeiling::default();
        let app_limited = link(80_000.0, 120_000.0, 0.3, 100.0);
        assert_eq!(
            plain.bound(
                1_500_000,
                1_800_000,
                Some(1_500_000),
                Some(&app_limited),
                false,
                t0
            ),
            1_500_000
        );
        assert_eq!(plain.state(), PathState::Open);
    }
}
