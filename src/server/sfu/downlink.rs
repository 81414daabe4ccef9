//! `auto` layer choice for one subscriber, sans-IO (issue 10 §2): which
//! simulcast layer fits the subscriber's downlink.
//!
//! **With TWCC** (a leg whose subscriber returns transport-wide feedback,
//! [`super::downlink_gcc`]): the estimate is the TWCC one, which comes down
//! when the queue on the path builds, before it loses; the rules below for
//! fitting, stepping and holding are the same.
//!
//! **Without TWCC, loss-based.** The issue asks for a transport-wide-cc
//! estimate of each egress leg's downlink (GCC over TWCC feedback); the hub
//! does not number its egress packets yet, so this estimate is made from what
//! the hub already sees: the subscriber's RTCP receiver reports (the fraction
//! of video packets lost since the previous one, about once a second) and the
//! bytes the hub sent the leg. It cannot step down *before* the path fills,
//! only once the loss shows it did:
//!
//! * loss ≥ [`LOSS_HIGH`]: the path carried about what got through, so the
//!   estimate becomes `sent × (1 − loss) × 0.85`;
//! * loss ≤ [`LOSS_LOW`]: the estimate grows to `max(estimate, sent) ×`
//!   [`GROWTH`] per report (it does not probe: it only lets a larger layer be
//!   tried);
//! * in between it holds;
//! * the report right after a change still counts the loss and rate of the
//!   layer before it (receiver reports cover the second before them): it may
//!   not lower the estimate, and decides nothing.
//!
//! A step up that is followed by a step down within [`FAILED_UP_WINDOW`]
//! failed: the hold before the next step up doubles (up to [`MAX_UP_HOLD`]),
//! so a capped subscriber does not keep knocking on the layer above.
//!
//! A layer fits when its rate (measured at the ingress, smoothed) plus what
//! else the leg carries (audio, overhead: `sent` minus the current layer's
//! rate) is within the estimate. The choice steps down at once, and up one
//! layer at a time, only when the larger layer fits with [`UP_MARGIN`] to spare and the last change
//! is [`UP_HOLD`] old (hysteresis). When not even the smallest layer fits,
//! the subscriber's video pauses (audio never yields to video), and resumes
//! when the smallest fits again.
//!
//! **Probing (with TWCC).** When the next layer up does not fit the
//! estimate and the choice has stood [`PROBE_AFTER`], `auto` asks for a probe
//! ([`AutoLayer::probe_request`]): the hub pads the leg up to that layer's
//! rate (`super::probe`) while the video stays where it is, and a probe that
//! passes lifts the estimate so the step up follows at the next report.
//! On such a leg a step up waits for a passed probe.

use std::time::{Duration, Instant};

use crate::protocol::layers::MAX_RESOLUTIONS;

/// Fraction lost (of 1) from which the path is taken as full.
pub const LOSS_HIGH: f64 = 0.08;
/// Fraction lost (of 1) up to which the path is taken as having room.
pub const LOSS_LOW: f64 = 0.02;
/// A larger layer must fit this many times over to step up to it.
pub const UP_MARGIN: f64 = 1.15;
/// How long a choice stands before a step up.
pub const UP_HOLD: Duration = Duration::from_secs(4);
/// The longest hold after failed step ups.
pub const MAX_UP_HOLD: Duration = Duration::from_secs(32);
/// A step down this soon after a step up makes the step up a failure.
pub const FAILED_UP_WINDOW: Duration = Duration::from_secs(5);
/// Growth of the estimate per report without loss.
pub const GROWTH: f64 = 1.15;
/// After a change, reports within this long may not lower the estimate.
const SETTLE: Duration = Duration::from_millis(1500);
/// How long the smallest layer is held after a change before loss may pause
/// the video (a larger layer never pauses: it steps down to the smallest):
/// the loss reported just after a step down is still the larger layer's
/// (its packets queued or dropped ahead of the smaller one's keyframe), so
/// pausing then would stop a layer that was never tried. It counts from
/// the switch (the smaller layer's first keyframe forwarded, which can take
/// a keyframe lost on the path and asked for again), not from the decision:
/// while the switch waits the smallest layer has not been tried at all.
pub const PAUSE_GRACE: Duration = Duration::from_secs(3);

/// The longest a switch's wait for its keyframe holds off a pause (counted
/// from the decision): a keyframe that never comes must not keep loss from
/// pausing the video for ever.
pub const SWITCH_WAIT_MAX: Duration = Duration::from_secs(5);

/// How long a choice stands before `auto` asks for a probe of the layer
/// above (a probe takes `probe::PROBE_DURATION`, so a passed one ends about
/// when [`UP_HOLD`] does).
pub const PROBE_AFTER: Duration = Duration::from_secs(2);

/// Reports closer together than this are folded into the next one (rates
/// over too short an interval are noise).
const MIN_INTERVAL: Duration = Duration::from_millis(500);

/// What the leg should forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// This layer slot.
    Layer(u8),
    /// No video (not even the smallest layer fits).
    Paused,
}

/// One receiver report's worth of input.
#[derive(Debug, Clone, Copy)]
pub struct Report {
    /// When it arrived.
    pub now: Instant,
    /// RFC 3550 fraction lost of the leg's video (of 256).
    pub fraction_lost: u8,
    /// Bytes the hub sent the leg so far (video and audio).
    pub sent_bytes: u64,
    /// Bytes the publisher sent of each layer so far (0: none yet).
    pub layer_bytes: [u64; MAX_RESOLUTIONS],
    /// The leg's TWCC downlink estimate (bit/s,
    /// [`super::downlink_gcc::DownlinkGcc`]), when its subscriber returns
    /// transport-wide feedback: it replaces the loss-based estimate, and
    /// decisions need no settling (it sees the queue within a feedback).
    pub twcc_bps: Option<f64>,
    /// Of `sent_bytes`, the video's, when counted apart: then what else the
    /// leg carries is measured, not inferred from the layer rates (which
    /// mix two layers while a switch waits for its keyframe).
    pub video_sent_bytes: Option<u64>,
    /// On a leg that probes (`super::probe`): whether a probe passed since
    /// the last change. A step up then waits for one: the estimate's blind
    /// growth alone would step up into a path that cannot carry it.
    pub probe_passed: Option<bool>,
    /// A probe runs, or a failed one's queue drains: the queue is the
    /// padding's, so the choice holds (`super::probe::DRAIN`).
    pub probe_drain: bool,
    /// The leg's switch to the chosen layer waits for its keyframe
    /// (`super::layers`); false when unknown.
    pub switch_waits: bool,
    /// When the leg's current layer became current (its first keyframe
    /// forwarded); `None` when unknown or never switched.
    pub switched_at: Option<Instant>,
}

/// A probe `auto` asks for: pad the leg from what it carries to the target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeRequest {
    /// The rate (bit/s) the leg must carry for the layer above to fit.
    pub target_bps: f64,
    /// What it carries now (bit/s).
    pub carried_bps: f64,
}

/// The estimate and choice of one `auto` subscriber.
#[derive(Debug, Clone)]
pub struct AutoLayer {
    choice: Choice,
    estimate_bps: Option<f64>,
    /// Smoothed rate of each layer (bit/s; 0: not sent).
    layer_bps: [f64; MAX_RESOLUTIONS],
    last: Option<Report>,
    changed_at: Option<Instant>,
    /// The last change was a step up (to a larger layer, or from paused).
    last_was_up: bool,
    /// How long a choice stands before the next step up.
    up_hold: Duration,
    /// The probe wanted after the last report (with TWCC only).
    probe: Option<ProbeRequest>,
}

impl AutoLayer {
    /// Starting on `layer` (the largest: nothing is known yet).
    pub fn new(layer: u8) -> Self {
        Self {
            choice: Choice::Layer(layer),
            estimate_bps: None,
            layer_bps: [0.0; MAX_RESOLUTIONS],
            last: None,
            changed_at: None,
            last_was_up: false,
            up_hold: UP_HOLD,
            probe: None,
        }
    }

    /// The probe the last report asked for: the layer above does not fit
    /// the estimate yet (module docs).
    pub fn probe_request(&self) -> Option<ProbeRequest> {
        self.probe
    }

    /// The choice now.
    pub fn choice(&self) -> Choice {
        self.choice
    }

    /// The downlink estimate (bit/s), once there is one.
    pub fn estimate_bps(&self) -> Option<f64> {
        self.estimate_bps
    }

    /// Takes a receiver report; returns the new choice when it changes.
    pub fn on_report(&mut self, report: Report) -> Option<Choice> {
        self.probe = None;
        let Some(last) = self.last else {
            self.last = Some(report);
            return None;
        };
        let dt = report.now.saturating_duration_since(last.now);
        if dt < MIN_INTERVAL {
            return None;
        }
        self.last = Some(report);
        let secs = dt.as_secs_f64();
        let rate = |now: u64, then: u64| now.saturating_sub(then) as f64 * 8.0 / secs;
        for (slot, smoothed) in self.layer_bps.iter_mut().enumerate() {
            let r = rate(report.layer_bytes[slot], last.layer_bytes[slot]);
            *smoothed = if *smoothed == 0.0 || r == 0.0 {
                r
            } else {
                0.5 * *smoothed + 0.5 * r
            };
        }
        let sent = rate(report.sent_bytes, last.sent_bytes);
        let loss = f64::from(report.fraction_lost) / 256.0;
        let settling = report.twcc_bps.is_none()
            && self
                .changed_at
                .is_some_and(|at| report.now.saturating_duration_since(at) < SETTLE);
        let estimate = match (report.twcc_bps, self.estimate_bps) {
            (Some(twcc), _) => twcc,
            (None, Some(e)) if settling && loss > LOSS_LOW => e,
            (None, _) if loss >= LOSS_HIGH => sent * (1.0 - loss) * 0.85,
            (None, Some(e)) if loss > LOSS_LOW => e,
            (None, e) => e.unwrap_or(0.0).max(sent) * GROWTH,
        };
        self.estimate_bps = Some(estimate);
        if settling || report.probe_drain {
            // Its rates mix the layer before the change with this one; or
            // the queue is a probe's padding.
            return None;
        }
        let current_video = match self.choice {
            Choice::Layer(slot) => self
                .layer_bps
                .get(usize::from(slot))
                .copied()
                .unwrap_or(0.0),
            Choice::Paused => 0.0,
        };
        let other = match (report.video_sent_bytes, last.video_sent_bytes) {
            (Some(now), Some(then)) => (sent - rate(now, then)).max(0.0),
            _ => (sent - current_video).max(0.0),
        };
        let fits = |slot: usize, margin: f64| {
            let r = self.layer_bps[slot];
            r > 0.0 && (r + other) * margin <= estimate
        };
        let since_change = self
            .changed_at
            .map(|at| report.now.saturating_duration_since(at));
        let hold_over = since_change.is_none_or(|d| d >= self.up_hold);
        self.probe = match self.choice {
            Choice::Layer(slot) if report.twcc_bps.is_some() && loss <= LOSS_LOW => {
                // The layer above does not fit, or fits but waits for a
                // passed probe.
                let up = usize::from(slot).checked_sub(1).filter(|&s| {
                    self.layer_bps[s] > 0.0
                        && (!fits(s, UP_MARGIN) || report.probe_passed == Some(false))
                        && since_change.is_none_or(|d| d >= PROBE_AFTER)
                });
                up.map(|s| ProbeRequest {
                    target_bps: (self.layer_bps[s] + other)
                        * UP_MARGIN
                        * super::probe::TARGET_HEADROOM,
                    carried_bps: sent,
                })
            }
            // Paused with a clean path: probe for the smallest layer. With
            // only audio flowing the estimate grows from the audio's rate at
            // 15 %/s, which kept video paused for 7 s after a cap had
            // already made room for the smallest layer.
            Choice::Paused
                if report.twcc_bps.is_some()
                    && loss <= LOSS_LOW
                    && since_change.is_none_or(|d| d >= PROBE_AFTER) =>
            {
                (0..MAX_RESOLUTIONS)
                    .rev()
                    .find(|&s| self.layer_bps[s] > 0.0)
                    .filter(|&s| !fits(s, UP_MARGIN) || report.probe_passed == Some(false))
                    .map(|s| ProbeRequest {
                        target_bps: (self.layer_bps[s] + other)
                            * UP_MARGIN
                            * super::probe::TARGET_HEADROOM,
                        carried_bps: sent,
                    })
            }
            _ => None,
        };
        let next = match self.choice {
            Choice::Layer(slot) => {
                let slot = usize::from(slot);
                // One layer up at a time: each step is a try.
                let up = slot.checked_sub(1).filter(|&s| {
                    hold_over && report.probe_passed != Some(false) && fits(s, UP_MARGIN)
                });
                if let Some(up) = up {
                    Choice::Layer(up as u8)
                } else if self.layer_bps[slot] == 0.0 || fits(slot, 1.0) {
                    Choice::Layer(slot as u8)
                } else {
                    // Down to the largest that fits, else pause; with TWCC
                    // a queue alone (no loss) keeps the smallest layer:
                    // audio and the smallest video are what the estimate
                    // was measured with. Only the smallest layer pauses, and
                    // not within PAUSE_GRACE of stepping down to it: a larger
                    // one steps down to it first. (A resume that fails
                    // pauses again at once.)
                    let smallest = (slot..MAX_RESOLUTIONS)
                        .rev()
                        .find(|&s| self.layer_bps[s] > 0.0)
                        .unwrap_or(slot);
                    let grace = slot != smallest
                        || (!self.last_was_up && self.in_pause_grace(&report, since_change));
                    let pause = if grace || (report.twcc_bps.is_some() && loss <= LOSS_LOW) {
                        Choice::Layer(smallest as u8)
                    } else {
                        Choice::Paused
                    };
                    (slot + 1..MAX_RESOLUTIONS)
                        .find(|&s| fits(s, 1.0))
                        .map_or(pause, |s| Choice::Layer(s as u8))
                }
            }
            Choice::Paused => (0..MAX_RESOLUTIONS)
                .rev()
                .filter(|&s| self.layer_bps[s] > 0.0)
                .take_while(|&s| fits(s, UP_MARGIN))
                .last()
                .map_or(Choice::Paused, |s| Choice::Layer(s as u8)),
        };
        if next == self.choice {
            if self.last_was_up && since_change.is_some_and(|d| d >= 2 * FAILED_UP_WINDOW) {
                self.up_hold = UP_HOLD; // the last step up held
            }
            return None;
        }
        let up = match (self.choice, next) {
            (Choice::Paused, _) => true,
            (Choice::Layer(from), Choice::Layer(to)) => to < from,
            (Choice::Layer(_), Choice::Paused) => false,
        };
        if !up && self.last_was_up && since_change.is_some_and(|d| d < FAILED_UP_WINDOW) {
            self.up_hold = (self.up_hold * 2).min(MAX_UP_HOLD);
        }
        self.last_was_up = up;
        self.choice = next;
        self.changed_at = Some(report.now);
        Some(next)
    }
}

impl AutoLayer {
    /// Whether a step down to the smallest layer is still too fresh for loss
    /// to pause it: within [`PAUSE_GRACE`] of the decision, while the switch
    /// waits for its keyframe (up to [`SWITCH_WAIT_MAX`]), and within
    /// [`PAUSE_GRACE`] of the switch when it came after the decision.
    fn in_pause_grace(&self, report: &Report, since_change: Option<Duration>) -> bool {
        let Some(since_change) = since_change else {
            return false;
        };
        let switched_since = match (report.switched_at, self.changed_at) {
            (Some(switched), Some(changed)) if switched >= changed => {
                Some(report.now.saturating_duration_since(switched))
            }
            _ => None,
        };
        since_change < PAUSE_GRACE
            || (report.switch_waits && since_change < SWITCH_WAIT_MAX)
            || switched_since.is_some_and(|d| d < PAUSE_GRACE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Publisher layers at 800, 300 and 100 kbit/s; the subscriber's path
    /// carries `path` kbit/s: what was sent beyond it is lost.
    struct Sim {
        auto: AutoLayer,
        now: Instant,
        sent: u64,
        layers: [u64; 3],
    }

    const LAYER_KBPS: [u64; 3] = [800, 300, 100];
    const AUDIO_KBPS: u64 = 50;

    impl Sim {
        fn new() -> Self {
            let mut sim = Sim {
                auto: AutoLayer::new(0),
                now: Instant::now(),
                sent: 0,
                layers: [0; 3],
            };
            sim.auto.on_report(sim.report(0));
            sim
        }

        fn report(&self, fraction_lost: u8) -> Report {
            Report {
                now: self.now,
                fraction_lost,
                sent_bytes: self.sent,
                layer_bytes: self.layers,
                twcc_bps: None,
                video_sent_bytes: None,
                probe_passed: None,
                probe_drain: false,
                switch_waits: false,
                switched_at: None,
            }
        }

        /// One second on a path of `path` kbit/s.
        fn second(&mut self, path: u64) -> Choice {
            self.now += Duration::from_secs(1);
            for (bytes, kbps) in self.layers.iter_mut().zip(LAYER_KBPS) {
                *bytes += kbps * 125;
            }
            let video = match self.auto.choice() {
                Choice::Layer(s) => LAYER_KBPS[usize::from(s)],
                Choice::Paused => 0,
            };
            let offered = video + AUDIO_KBPS;
            self.sent += offered * 125;
            let lost = offered.saturating_sub(path) as f64 / offered as f64;
            self.auto.on_report(self.report((lost * 256.0) as u8));
            self.auto.choice()
        }
    }

    #[test]
    fn a_capped_path_gets_a_layer_that_fits_and_the_top_comes_back() {
        let mut sim = Sim::new();
        for _ in 0..5 {
            assert_eq!(sim.second(10_000), Choice::Layer(0), "room to spare");
        }
        // 30 s behind 400 kbit/s: the top (800 + 50) does not fit, the middle
        // (300 + 50) does. Without probing the estimate only learns by trying
        // the top again, ever more rarely (the hold doubles).
        let capped: Vec<_> = (0..30).map(|_| sim.second(400)).collect();
        let on_top = capped.iter().filter(|c| **c == Choice::Layer(0)).count();
        let fitting = capped
            .iter()
            .filter(|c| matches!(c, Choice::Layer(1 | 2)))
            .count();
        assert!(on_top <= 6, "{on_top} s on the top layer: {capped:?}");
        assert!(
            fitting >= 22,
            "{fitting} s on a layer that fits: {capped:?}"
        );
        assert!(
            matches!(capped.last(), Some(Choice::Layer(1 | 2))),
            "{capped:?}"
        );
        let mut back = None;
        for s in 1..=60 {
            if sim.second(10_000) == Choice::Layer(0) {
                back = Some(s);
                break;
            }
        }
        // At most the longest hold after failures, plus the estimate's growth.
        assert!(
            back.is_some_and(|s| s <= 40),
            "back on top after {back:?} s"
        );
    }

    #[test]
    fn nothing_fits_pauses_video_and_it_resumes() {
        let mut sim = Sim::new();
        let mut choice = Choice::Layer(0);
        for _ in 0..10 {
            choice = sim.second(120);
        }
        assert_eq!(choice, Choice::Paused, "100 + 50 does not fit 120");
        let mut resumed = None;
        for s in 1..=30 {
            if let Choice::Layer(l) = sim.second(10_000) {
                resumed = Some((s, l));
                break;
            }
        }
        assert!(resumed.is_some(), "video resumes once the path recovers");
    }

    /// With TWCC: a step down that waits for the smaller layer's keyframe
    /// still carries the old layer; what else the leg carries is measured
    /// (audio), so the smaller layer is kept rather than paused. A queue
    /// without loss never pauses the video.
    #[test]
    fn with_twcc_a_waiting_switch_and_a_queue_alone_do_not_pause() {
        let t0 = Instant::now();
        let mut auto = AutoLayer::new(0);
        let report = |secs: u64, estimate: f64| {
            let layers = LAYER_KBPS.map(|k| k * 125 * secs);
            Report {
                now: t0 + Duration::from_secs(secs),
                fraction_lost: 0,
                // Still the old top layer (800) + audio, as the switch waits.
                sent_bytes: (800 + AUDIO_KBPS) * 125 * secs,
                layer_bytes: layers,
                twcc_bps: Some(estimate),
                video_sent_bytes: Some(800 * 125 * secs),
                probe_passed: None,
                probe_drain: false,
                switch_waits: false,
                switched_at: None,
            }
        };
        auto.on_report(report(0, 2e6));
        for secs in 1..=6 {
            auto.on_report(report(secs, 250_000.0));
            assert_ne!(auto.choice(), Choice::Paused, "second {secs}");
        }
        assert_eq!(auto.choice(), Choice::Layer(2), "100 + 50 fits 250");
        for secs in 7..=10 {
            auto.on_report(report(secs, 100_000.0));
        }
        assert_eq!(auto.choice(), Choice::Layer(2), "no loss: no pause");
    }

    /// On a leg that probes, the estimate's growth alone does not step up:
    /// a passed probe does.
    #[test]
    fn with_probes_a_step_up_waits_for_a_passed_probe() {
        let t0 = Instant::now();
        let report = |secs: u64, passed: bool| {
            let layers = LAYER_KBPS.map(|k| k * 125 * secs);
            Report {
                now: t0 + Duration::from_secs(secs),
                fraction_lost: 0,
                sent_bytes: (300 + AUDIO_KBPS) * 125 * secs,
                layer_bytes: layers,
                twcc_bps: Some(2e6),
                video_sent_bytes: Some(300 * 125 * secs),
                probe_passed: Some(passed),
                probe_drain: false,
                switch_waits: false,
                switched_at: None,
            }
        };
        let mut auto = AutoLayer::new(1);
        auto.on_report(report(0, false));
        for secs in 1..=10 {
            auto.on_report(report(secs, false));
            assert_eq!(auto.choice(), Choice::Layer(1), "second {secs}");
        }
        assert!(
            auto.probe_request().is_some(),
            "the top fits the estimate: a probe is asked for"
        );
        auto.on_report(report(11, true));
        assert_eq!(auto.choice(), Choice::Layer(0), "the probe passed");
    }

    /// Paused on a clean path whose estimate has not grown back to the
    /// smallest layer yet: a probe for that layer is asked for, and video
    /// resumes when it passes (the hub then floors the estimate at the
    /// probe's target).
    #[test]
    fn paused_video_probes_for_the_smallest_layer() {
        let t0 = Instant::now();
        let report = |secs: u64, estimate: f64, lost: u8, video_kbps: u64| {
            let layers = LAYER_KBPS.map(|k| k * 125 * secs);
            Report {
                now: t0 + Duration::from_secs(secs),
                fraction_lost: lost,
                sent_bytes: (video_kbps + AUDIO_KBPS) * 125 * secs,
                layer_bytes: layers,
                twcc_bps: Some(estimate),
                video_sent_bytes: Some(video_kbps * 125 * secs),
                probe_passed: None,
                probe_drain: false,
                switch_waits: false,
                switched_at: None,
            }
        };
        let mut auto = AutoLayer::new(2);
        auto.on_report(report(0, 2e6, 0, 100));
        for secs in 1..=6 {
            auto.on_report(report(secs, 60_000.0, 60, 100));
        }
        assert_eq!(auto.choice(), Choice::Paused, "nothing fits, loss");
        assert!(auto.probe_request().is_none(), "no probe into loss");
        auto.on_report(report(7, 80_000.0, 0, 0));
        let mut asked = None;
        for secs in 8..=12 {
            auto.on_report(report(secs, 80_000.0, 0, 0));
            if let Some(probe) = auto.probe_request() {
                asked = Some(probe);
                break;
            }
        }
        let probe = asked.expect("a clean path asks for a probe while paused");
        let smallest = LAYER_KBPS[2] as f64 * 1000.0;
        assert!(
            probe.target_bps > smallest,
            "the probe covers the smallest layer: {probe:?}"
        );
        assert_eq!(auto.choice(), Choice::Paused, "the probe runs first");
    }

    /// Loss right after a step down is the larger layer's: the smallest
    /// layer is tried for PAUSE_GRACE before loss that goes on pauses it.
    #[test]
    fn loss_just_after_a_step_down_tries_the_smallest_layer_before_pausing() {
        let t0 = Instant::now();
        let mut auto = AutoLayer::new(0);
        let report = |ms: u64, estimate: f64, lost: u8| {
            let secs = ms / 1000;
            let layers = LAYER_KBPS.map(|k| k * 125 * secs);
            Report {
                now: t0 + Duration::from_millis(ms),
                fraction_lost: lost,
                sent_bytes: (800 + AUDIO_KBPS) * 125 * secs,
                layer_bytes: layers,
                twcc_bps: Some(estimate),
                video_sent_bytes: Some(800 * 125 * secs),
                probe_passed: None,
                probe_drain: false,
                switch_waits: false,
                switched_at: None,
            }
        };
        auto.on_report(report(0, 2e6, 0));
        auto.on_report(report(1000, 120_000.0, 60));
        assert_eq!(
            auto.choice(),
            Choice::Layer(2),
            "down to the smallest, not paused"
        );
        auto.on_report(report(2000, 90_000.0, 60));
        assert_eq!(auto.choice(), Choice::Layer(2), "within the grace");
        for ms in [3000, 4000, 5000] {
            auto.on_report(report(ms, 90_000.0, 60));
        }
        assert_eq!(auto.choice(), Choice::Paused, "loss went on: paused");
    }

    /// The grace counts from the switch, not the decision: a step down whose
    /// smaller keyframe came 1.5 s late (lost on the path, asked for again)
    /// gets PAUSE_GRACE on that layer before loss pauses it. On main's rule
    /// (from the decision) it paused 1.5 s after the switch.
    #[test]
    fn the_pause_grace_counts_from_the_switch_not_the_decision() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut auto = AutoLayer::new(0);
        let report = |ms: u64, lost: u8, waits: bool, switched: Option<u64>| {
            let secs = ms / 1000;
            let layers = LAYER_KBPS.map(|k| k * 125 * secs);
            Report {
                now: at(ms),
                fraction_lost: lost,
                sent_bytes: (100 + AUDIO_KBPS) * 125 * secs,
                layer_bytes: layers,
                twcc_bps: Some(if ms == 0 { 2e6 } else { 90_000.0 }),
                video_sent_bytes: Some(100 * 125 * secs),
                probe_passed: None,
                probe_drain: false,
                switch_waits: waits,
                switched_at: switched.map(at),
            }
        };
        auto.on_report(report(0, 0, false, None));
        auto.on_report(report(1000, 60, false, None));
        assert_eq!(auto.choice(), Choice::Layer(2), "down to the smallest");
        auto.on_report(report(2000, 60, true, None));
        assert_eq!(auto.choice(), Choice::Layer(2), "the switch waits");
        for ms in [3000, 4000, 5000] {
            auto.on_report(report(ms, 60, false, Some(2500)));
            assert_eq!(
                auto.choice(),
                Choice::Layer(2),
                "{ms} ms: within PAUSE_GRACE of the switch at 2500 ms"
            );
        }
        auto.on_report(report(6000, 60, false, Some(2500)));
        assert_eq!(auto.choice(), Choice::Paused, "loss went on: paused");
    }

    /// A keyframe that never comes holds off a pause for SWITCH_WAIT_MAX only.
    #[test]
    fn a_switch_that_never_completes_does_not_hold_off_a_pause_for_ever() {
        let t0 = Instant::now();
        let mut auto = AutoLayer::new(0);
        let report = |ms: u64, lost: u8| {
            let secs = ms / 1000;
            Report {
                now: t0 + Duration::from_millis(ms),
                fraction_lost: lost,
                sent_bytes: (100 + AUDIO_KBPS) * 125 * secs,
                layer_bytes: LAYER_KBPS.map(|k| k * 125 * secs),
                twcc_bps: Some(if ms == 0 { 2e6 } else { 90_000.0 }),
                video_sent_bytes: Some(100 * 125 * secs),
                probe_passed: None,
                probe_drain: false,
                switch_waits: ms > 0,
                switched_at: None,
            }
        };
        auto.on_report(report(0, 0));
        auto.on_report(report(1000, 60));
        assert_eq!(auto.choice(), Choice::Layer(2));
        for ms in [2000, 3000, 4000, 5000] {
            auto.on_report(report(ms, 60));
            assert_eq!(auto.choice(), Choice::Layer(2), "{ms} ms: the switch waits");
        }
        auto.on_report(report(7000, 60));
        assert_eq!(auto.choice(), Choice::Paused, "waited past SWITCH_WAIT_MAX");
    }
}
