//! The rate ladder: what a publisher encodes for a given video budget.
//!
//! Why this exists: send-side congestion control (issue 10 §1) yields one
//! number, the bitrate the uplink carries. The encoder has three knobs, and
//! this module decides them in the order the issue asks for: the H.264 target
//! bitrate first, then the frame rate, then the resolution, stepping down the
//! seed's profile table (Table 3-10) and back up with hysteresis.
//!
//! Everything here is pure: the time is an argument, nothing reads a clock,
//! so a trajectory is reproducible in a unit test.
//!
//! Invariants:
//! * Rung 0 is the publisher's own size, frame rate and profile bitrate range;
//!   each rung below needs strictly less bitrate (`min_bps` decreases).
//! * Down-steps are immediate (as many rungs as the budget demands): a path
//!   that cannot carry the rung is queueing now. Up-steps go one rung at a
//!   time, only after the budget has covered the next rung's minimum times
//!   [`UP_HYSTERESIS`] for [`UP_HOLD`] without a break, so an estimate hovering
//!   at a boundary cannot flap between two rungs.
//! * The bitrate handed to the encoder stays within the rung's range; what the
//!   budget cannot pay for below the last rung is enforced by [`FrameBudget`],
//!   which drops whole frames before encoding rather than let a queue grow.

use std::time::{Duration, Instant};

use super::profile::{VIDEO_PROFILES, VideoProfile};

/// An up-step needs the budget at this multiple of the next rung's minimum.
pub const UP_HYSTERESIS: f64 = 1.2;

/// ... held this long without a break.
pub const UP_HOLD: Duration = Duration::from_secs(1);

/// The reduced frame rate of a resolution, as a fraction of the full one: the
/// frame-rate step the ladder takes before it gives up resolution. 4/5 keeps
/// a 15 fps profile at 12 fps, the floor of issue 10's benchmark.
pub const REDUCED_FPS_NUM: u32 = 4;
/// Denominator of the reduced frame rate (see [`REDUCED_FPS_NUM`]).
pub const REDUCED_FPS_DEN: u32 = 5;

/// Frame-rate divisors of the smallest resolution once the budget is below
/// everything else (a path that is collapsing): 1/2 and 1/3 of the full rate.
const COLLAPSE_DIVISORS: [u32; 2] = [2, 3];

/// A lower resolution joins the ladder only when its area is at most this
/// fraction of the rung above (so 720p steps to 540p, not to 630p).
const MAX_AREA_RATIO: f64 = 0.6;

/// One step of the ladder: a picture size, a frame rate and the bitrate range
/// the encoder may use there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rung {
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// Frames per second sent.
    pub frame_rate: u32,
    /// The least bitrate this rung is worth encoding at, bit/s.
    pub min_bps: u32,
    /// The most it needs, bit/s.
    pub max_bps: u32,
}

/// What the ladder decided: the rung and the bitrate within it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LadderDecision {
    /// Index into [`RateLadder::rungs`] (0 = full profile).
    pub rung: usize,
    /// Picture width to encode.
    pub width: u32,
    /// Picture height to encode.
    pub height: u32,
    /// Frames per second to encode.
    pub frame_rate: u32,
    /// H.264 target bitrate, bit/s.
    pub bitrate_bps: u32,
}

/// The rungs of one publication and where it stands on them.
#[derive(Clone, Debug)]
pub struct RateLadder {
    rungs: Vec<Rung>,
    current: usize,
    /// Since when the budget has covered the rung above (with hysteresis).
    up_since: Option<Instant>,
}

fn scale_bps(bps: u32, num: u32, den: u32) -> u32 {
    u32::try_from(u64::from(bps) * u64::from(num) / u64::from(den.max(1))).unwrap_or(u32::MAX)
}

fn same_aspect(a: (u32, u32), b: (u32, u32)) -> bool {
    let (x, y) = (
        u64::from(a.0) * u64::from(b.1),
        u64::from(b.0) * u64::from(a.1),
    );
    x.abs_diff(y) * 100 <= x.max(y)
}

impl RateLadder {
    /// The ladder of a source of `width` x `height` at `frame_rate` fps
    /// published with `profile`'s bitrate range: the full rung, then for each
    /// smaller Table 3-10 size of the same aspect ratio (each at most
    /// [`MAX_AREA_RATIO`] of the one above) its full and reduced frame rate,
    /// and at the bottom the collapse frame rates.
    #[must_use]
    pub fn new(width: u32, height: u32, frame_rate: u32, profile: &VideoProfile) -> Self {
        let frame_rate = frame_rate.max(1);
        let mut sizes = vec![(
            width,
            height,
            profile.min_bitrate_bps(),
            profile.max_bitrate_bps(),
        )];
        let mut smaller: Vec<&VideoProfile> = VIDEO_PROFILES
            .iter()
            .filter(|p| p.width < width && p.height < height)
            .filter(|p| same_aspect((p.width, p.height), (width, height)))
            .collect();
        smaller.sort_by_key(|p| std::cmp::Reverse(p.width * p.height));
        for p in smaller {
            let Some(&(w, h, min, _)) = sizes.last() else {
                break;
            };
            let ratio = f64::from(p.width * p.height) / f64::from(w * h);
            if ratio <= MAX_AREA_RATIO && p.min_bitrate_bps() < min {
                sizes.push((p.width, p.height, p.min_bitrate_bps(), p.max_bitrate_bps()));
            }
        }
        let reduced = (frame_rate * REDUCED_FPS_NUM / REDUCED_FPS_DEN).max(1);
        let mut candidates = Vec::new();
        for &(w, h, min, max) in &sizes {
            candidates.push((w, h, frame_rate, min, max));
            if reduced < frame_rate {
                candidates.push((w, h, reduced, scale_bps(min, reduced, frame_rate), min));
            }
        }
        if let Some(&(w, h, min, _)) = sizes.last() {
            for divisor in COLLAPSE_DIVISORS {
                let fps = (frame_rate / divisor).max(1);
                candidates.push((w, h, fps, scale_bps(min, 1, divisor), min));
            }
        }
        let mut rungs: Vec<Rung> = Vec::new();
        for (width, height, frame_rate, min_bps, max_bps) in candidates {
            // A rung that needs no less than the one above is never reached on
            // the way down (the one above still fits): leave it out.
            if rungs.last().is_some_and(|above| min_bps >= above.min_bps) {
                continue;
            }
            // Never ask more of a lower rung than the one above needs at least.
            let max_bps = rungs
                .last()
                .map_or(max_bps, |above| max_bps.min(above.min_bps))
                .max(min_bps);
            rungs.push(Rung {
                width,
                height,
                frame_rate,
                min_bps,
                max_bps,
            });
        }
        Self {
            rungs,
            current: 0,
            up_since: None,
        }
    }

    /// Every rung, top first.
    #[must_use]
    pub fn rungs(&self) -> &[Rung] {
        &self.rungs
    }

    /// The rung in use.
    #[must_use]
    pub fn current(&self) -> usize {
        self.current
    }

    /// Decides the rung and bitrate for a video budget of `budget_bps` at
    /// `now`: down at once while the rung's minimum exceeds the budget; up one
    /// rung once the budget has covered that rung's minimum ×
    /// [`UP_HYSTERESIS`] for [`UP_HOLD`].
    pub fn decide(&mut self, budget_bps: u32, now: Instant) -> LadderDecision {
        self.decide_probing(budget_bps, budget_bps, now)
    }

    /// [`Self::decide`] while the rate control probes a narrow path: the rung
    /// follows `rung_budget_bps` (what the path has shown it carries), the
    /// bitrate `budget_bps` (what is being tried), up to the full rung's
    /// maximum. A probe thus raises the bitrate of the pictures being sent,
    /// which costs no keyframe, and a rung (a new picture size: a keyframe)
    /// changes only for a rate the path has carried.
    pub fn decide_probing(
        &mut self,
        budget_bps: u32,
        rung_budget_bps: u32,
        now: Instant,
    ) -> LadderDecision {
        let rung_budget = rung_budget_bps.min(budget_bps);
        let last = self.rungs.len().saturating_sub(1);
        let mut stepped_down = false;
        while self.current < last && self.rung().min_bps > rung_budget {
            self.current += 1;
            stepped_down = true;
        }
        if stepped_down {
            self.up_since = None;
        } else if let Some(above) = self.current.checked_sub(1).and_then(|i| self.rungs.get(i)) {
            let needed = f64::from(above.min_bps) * UP_HYSTERESIS;
            if f64::from(rung_budget) >= needed {
                let since = *self.up_since.get_or_insert(now);
                if now.saturating_duration_since(since) >= UP_HOLD {
                    self.current -= 1;
                    // The next step up waits its own hold.
                    self.up_since = None;
                }
            } else {
                self.up_since = None;
            }
        }
        let rung = self.rung();
        let most = if budget_bps > rung_budget {
            self.rungs.first().map_or(rung.max_bps, |top| top.max_bps)
        } else {
            rung.max_bps
        };
        LadderDecision {
            rung: self.current,
            width: rung.width,
            height: rung.height,
            frame_rate: rung.frame_rate,
            bitrate_bps: budget_bps.clamp(rung.min_bps, most.max(rung.min_bps)),
        }
    }

    fn rung(&self) -> Rung {
        self.rungs.get(self.current).copied().unwrap_or(Rung {
            width: 0,
            height: 0,
            frame_rate: 1,
            min_bps: 0,
            max_bps: 0,
        })
    }
}

/// Keeps `target` of every `source` frames, spread evenly (15 → 12 keeps 4 of
/// each 5). Pure: one call per captured frame.
#[derive(Clone, Debug, Default)]
pub struct Decimator {
    credit: u32,
}

impl Decimator {
    /// Whether to keep this frame of a `source_fps` stream sent at `target_fps`.
    pub fn keep(&mut self, source_fps: u32, target_fps: u32) -> bool {
        let source = source_fps.max(1);
        let target = target_fps.clamp(1, source);
        self.credit += target;
        if self.credit >= source {
            self.credit -= source;
            true
        } else {
            false
        }
    }
}

/// How much encoded video may run ahead of its budget, in seconds of that
/// budget: a keyframe or a burst of motion fits, a sustained overshoot does
/// not. Half a second: what runs ahead leaves at the pacer's 2.5 × the target
/// into the bottleneck, and a 500 kbit/s `tc tbf` with 200 ms of queue holds
/// about 27 KB beyond its rate (issue 10 §1); a second's worth overflowed it.
pub const FRAME_BUDGET_BURST: Duration = Duration::from_millis(500);

/// A token bucket over encoded bytes: the encoder drops a whole frame (before
/// encoding it, so no keyframe is needed) when what it produced has run ahead
/// of the budget by more than [`FRAME_BUDGET_BURST`]. This is what keeps the
/// send queue bounded when the path collapses below the last rung or the
/// encoder overshoots its target: frames are dropped, latency is not added.
#[derive(Clone, Debug)]
pub struct FrameBudget {
    /// Available bits; negative after an overshoot.
    level_bits: f64,
    last: Option<Instant>,
}

impl Default for FrameBudget {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameBudget {
    /// A budget that starts with one burst available.
    #[must_use]
    pub fn new() -> Self {
        Self {
            level_bits: f64::INFINITY,
            last: None,
        }
    }

    fn refill(&mut self, now: Instant, rate_bps: u32) {
        let burst = f64::from(rate_bps) * FRAME_BUDGET_BURST.as_secs_f64();
        let elapsed = self.last.map_or(0.0, |last| {
            now.saturating_duration_since(last).as_secs_f64()
        });
        self.level_bits = (self.level_bits + elapsed * f64::from(rate_bps)).min(burst);
        self.last = Some(now);
    }

    /// Whether a frame may be encoded at `now` under a budget of `rate_bps`.
    pub fn admit(&mut self, now: Instant, rate_bps: u32) -> bool {
        self.refill(now, rate_bps);
        self.level_bits >= 0.0
    }

    /// Gives up what was saved towards a burst (the path just showed
    /// congestion: what runs ahead now only adds to its queue); a debt stays.
    pub fn clear(&mut self) {
        self.level_bits = self.level_bits.min(0.0);
    }

    /// Charges an encoded frame of `bytes`.
    pub fn spend(&mut self, bytes: usize) {
        self.level_bits -= bytes as f64 * 8.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p720() -> &'static VideoProfile {
        VideoProfile::by_name("720p_1").expect("720p_1")
    }

    fn ladder_720() -> RateLadder {
        RateLadder::new(1280, 720, 15, p720())
    }

    #[test]
    fn the_720p_ladder_steps_bitrate_then_fps_then_resolution() {
        let ladder = ladder_720();
        let steps: Vec<_> = ladder
            .rungs()
            .iter()
            .map(|r| (r.width, r.height, r.frame_rate))
            .collect();
        assert_eq!(
            steps,
            vec![
                (1280, 720, 15),
                (1280, 720, 12),
                // 540p at 15 fps needs 400 kbit/s, no less than 720p at 12.
                (960, 540, 12),
                (640, 360, 15),
                (640, 360, 12),
                (480, 270, 12),
                (320, 180, 15),
                (320, 180, 12),
                (160, 90, 12),
                (160, 90, 7),
                (160, 90, 5),
            ]
        );
        for pair in ladder.rungs().windows(2) {
            assert!(pair[1].min_bps < pair[0].min_bps, "{pair:?}");
            assert!(pair[1].max_bps <= pair[0].max_bps, "{pair:?}");
        }
        assert_eq!(ladder.rungs()[0].max_bps, 1_500_000);
        assert_eq!(ladder.rungs()[1].min_bps, 400_000);
    }

    #[test]
    fn a_4_3_profile_keeps_its_aspect_ratio() {
        let ladder = RateLadder::new(480, 360, 15, &VideoProfile::default());
        let sizes: Vec<_> = ladder.rungs().iter().map(|r| (r.width, r.height)).collect();
        assert!(sizes.contains(&(320, 240)) && sizes.contains(&(160, 120)));
        assert!(sizes.iter().all(|&(w, h)| w * 3 == h * 4), "{sizes:?}");
    }

    #[test]
    fn within_a_rung_only_the_bitrate_moves() {
        let mut ladder = ladder_720();
        let t = Instant::now();
        let d = ladder.decide(1_200_000, t);
        assert_eq!((d.rung, d.bitrate_bps), (0, 1_200_000));
        let d = ladder.decide(2_000_000, t);
        assert_eq!(
            (d.rung, d.bitrate_bps),
            (0, 1_500_000),
            "the profile's maximum bounds it"
        );
        let d = ladder.decide(520_000, t);
        assert_eq!((d.rung, d.width, d.frame_rate), (0, 1280, 15));
    }

    #[test]
    fn down_steps_are_immediate_and_skip_rungs() {
        let mut ladder = ladder_720();
        let t = Instant::now();
        let d = ladder.decide(450_000, t);
        assert_eq!((d.width, d.frame_rate, d.bitrate_bps), (1280, 12, 450_000));
        let d = ladder.decide(250_000, t);
        assert_eq!((d.width, d.height), (640, 360), "{d:?}");
        let d = ladder.decide(10_000, t);
        assert_eq!((d.width, d.frame_rate), (160, 5), "the bottom rung");
        assert_eq!(
            d.bitrate_bps,
            ladder.rungs().last().map(|r| r.min_bps).unwrap_or(0)
        );
    }

    #[test]
    fn up_steps_wait_for_hysteresis_and_hold() {
        let mut ladder = ladder_720();
        let t0 = Instant::now();
        ladder.decide(450_000, t0);
        assert_eq!(ladder.current(), 1);
        // Just above the full rung's minimum: not enough (needs 1.2 × 500k).
        let d = ladder.decide(550_000, t0 + Duration::from_secs(10));
        assert_eq!(d.rung, 1);
        // Enough, but not yet for UP_HOLD.
        let t1 = t0 + Duration::from_secs(20);
        assert_eq!(ladder.decide(600_000, t1).rung, 1);
        assert_eq!(ladder.decide(600_000, t1 + UP_HOLD / 2).rung, 1);
        // A dip restarts the hold.
        assert_eq!(ladder.decide(590_000, t1 + UP_HOLD * 3 / 4).rung, 1);
        assert_eq!(ladder.decide(600_000, t1 + UP_HOLD).rung, 1);
        assert_eq!(ladder.decide(600_000, t1 + UP_HOLD * 2).rung, 0);
    }

    #[test]
    fn an_estimate_hovering_at_a_boundary_does_not_flap() {
        let mut ladder = ladder_720();
        let t0 = Instant::now();
        let mut changes = 0;
        let mut last = ladder.current();
        for i in 0..200u32 {
            // ±5 % around the full rung's minimum, every 100 ms for 20 s.
            let budget = if i % 2 == 0 { 475_000 } else { 525_000 };
            let d = ladder.decide(budget, t0 + Duration::from_millis(100) * i);
            if d.rung != last {
                changes += 1;
                last = d.rung;
            }
        }
        assert_eq!(changes, 1, "one step down, then it stays");
        assert_eq!(last, 1);
    }

    #[test]
    fn climbs_back_one_rung_per_hold() {
        let mut ladder = ladder_720();
        let t0 = Instant::now();
        ladder.decide(10_000, t0);
        let bottom = ladder.current();
        assert_eq!(bottom, ladder.rungs().len() - 1);
        let mut t = t0;
        let mut path = vec![ladder.current()];
        while ladder.current() > 0 && t < t0 + Duration::from_secs(60) {
            t += Duration::from_millis(100);
            let d = ladder.decide(3_000_000, t);
            if path.last() != Some(&d.rung) {
                path.push(d.rung);
            }
        }
        let expected: Vec<usize> = (0..=bottom).rev().collect();
        assert_eq!(path, expected, "one rung at a time");
        assert!(t - t0 <= UP_HOLD * (bottom as u32 + 1) + Duration::from_millis(200));
    }

    #[test]
    fn a_cleared_frame_budget_gives_no_burst() {
        let t0 = Instant::now();
        let rate = 300_000;
        let mut b = FrameBudget::new();
        assert!(b.admit(t0, rate));
        // Cleared: a frame of 4 frames' worth goes, the next ones wait for
        // what it took (2500 bytes a frame at 15 fps).
        b.clear();
        assert!(b.admit(t0, rate), "an empty budget still admits");
        b.spend(10_000);
        let frame = Duration::from_millis(66);
        let admitted = (1..=4).filter(|i| b.admit(t0 + frame * *i, rate)).count();
        assert_eq!(admitted, 0, "paid back over 4 frames");
        assert!(b.admit(t0 + frame * 5, rate));
        // A debt is not forgiven.
        b.spend(10_000);
        b.clear();
        assert!(!b.admit(t0 + frame * 6, rate));
    }

    #[test]
    fn a_probe_raises_the_bitrate_not_the_rung() {
        let mut ladder = ladder_720();
        let t0 = Instant::now();
        // The path showed 316 kbit/s of video: 640x360 at 15 fps.
        let d = ladder.decide_probing(316_000, 316_000, t0);
        assert_eq!((d.width, d.frame_rate, d.bitrate_bps), (640, 15, 316_000));
        // Probing at 560 kbit/s for 10 s: the same rung (no keyframe), at the
        // probe's bitrate, past the rung's own maximum (320 kbit/s).
        for i in 1..=100u32 {
            let d = ladder.decide_probing(560_000, 316_000, t0 + Duration::from_millis(100) * i);
            assert_eq!((d.width, d.height, d.bitrate_bps), (640, 360, 560_000));
        }
        // Not past the full rung's maximum.
        let d = ladder.decide_probing(3_000_000, 316_000, t0 + Duration::from_secs(11));
        assert_eq!(d.bitrate_bps, 1_500_000);
        // Shown to carry more: the rung follows, one hold at a time.
        let d = ladder.decide_probing(560_000, 560_000, t0 + Duration::from_secs(12));
        assert_eq!(
            (d.width, d.bitrate_bps),
            (640, 320_000),
            "within the rung: its maximum"
        );
        let d = ladder.decide_probing(560_000, 560_000, t0 + Duration::from_secs(12) + UP_HOLD);
        assert_eq!((d.width, d.frame_rate), (960, 12));
    }

    #[test]
    fn decimator_keeps_the_target_rate_evenly() {
        let mut d = Decimator::default();
        let kept: Vec<bool> = (0..15).map(|_| d.keep(15, 12)).collect();
        assert_eq!(kept.iter().filter(|k| **k).count(), 12);
        // Never two drops in a row at 12 of 15.
        assert!(kept.windows(2).all(|w| w[0] || w[1]));
        let mut d = Decimator::default();
        assert!((0..30).all(|_| d.keep(15, 15)));
        assert!((0..30).all(|_| d.keep(15, 40)), "no more than the source");
        let mut d = Decimator::default();
        assert_eq!((0..15).filter(|_| d.keep(15, 5)).count(), 5);
    }

    #[test]
    fn frame_budget_drops_under_a_sustained_overshoot_only() {
        let t0 = Instant::now();
        let frame = Duration::from_millis(66);
        let rate = 300_000;
        // On budget: 300 kbit/s at 15 fps is 2500 bytes a frame.
        let mut b = FrameBudget::new();
        let mut t = t0;
        for _ in 0..300 {
            assert!(b.admit(t, rate));
            b.spend(2_400);
            t += frame;
        }
        // A keyframe of 6 frames' worth fits in the burst.
        assert!(b.admit(t, rate));
        b.spend(15_000);
        t += frame;
        assert!(b.admit(t, rate));
        // Twice the budget, sustained: frames get dropped, about half of them.
        let mut b = FrameBudget::new();
        let mut t = t0;
        let mut dropped = 0;
        for _ in 0..300 {
            if b.admit(t, rate) {
                b.spend(5_000);
            } else {
                dropped += 1;
            }
            t += frame;
        }
        assert!((130..=170).contains(&dropped), "{dropped}");
    }
}
