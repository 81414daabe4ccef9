//! Probing a subscriber's downlink before `auto` steps up, sans-IO
//! (issue 10 §2).
//!
//! Without probes the only way to learn that a larger layer fits is to send
//! it: the estimate grows blindly while the queue stays flat, and a step up
//! that does not fit costs seconds on a layer that stalls. A probe asks the
//! path the same question with padding: the video stays on its layer, and
//! the leg sends RTX padding-only packets (RFC 4588 §4, on the RTX SSRC, as
//! browsers do; receivers drop them) on top of it so the leg carries the
//! larger layer's rate for [`PROBE_DURATION`]. Its TWCC feedback then says
//! whether the path carried it:
//!
//! * it did (no standing queue and no loss for the whole probe):
//!   [`ProbeOutcome::Passed`] with the target, which the downlink estimate
//!   takes as a floor until a queue builds (`super::downlink_gcc`), so
//!   `auto` steps up at its next report. A path that could not carry the
//!   target would have queued; the acknowledged rate is not the measure,
//!   as the feedback of a loaded receiver misses packets (measured: 275 of
//!   476 kbit/s acknowledged with no queue);
//! * a queue builds or packets are lost: the probe stops at that feedback
//!   ([`ProbeOutcome::Failed`]); the padding was extra packets, so the
//!   video lost nothing but some queueing delay. The wait before the next
//!   probe doubles from [`FIRST_BACKOFF`] up to [`MAX_BACKOFF`], and a
//!   passed probe resets it.
//!
//! Why two seconds and not a short cluster: a policer with a burst (the
//! benchmark's `tc tbf` holds 15 KB) lets a short cluster through at any
//! rate, so a short probe passes on a path that then stalls the layer.
//!
//! ```text
//!  Idle{not_before} ──start (auto wants a layer the estimate lacks)──▶ Probing
//!  Probing ──feedback: queue or loss──▶ Idle{now + backoff, doubled}   (Failed)
//!  Probing ──PROBE_DURATION clean──▶ Idle{now + FIRST_BACKOFF}             (Passed)
//! ```

use std::time::{Duration, Instant};

use super::downlink_gcc::{DownlinkEstimate, LOSS_LOW, QUEUE_LOW};

/// How long a probe holds the target rate.
pub const PROBE_DURATION: Duration = Duration::from_secs(2);
/// The wait after a passed probe, and the first after a failed one.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(2);
/// The longest wait after failed probes.
pub const MAX_BACKOFF: Duration = Duration::from_secs(4);
/// How often padding goes out during a probe.
pub const PACE: Duration = Duration::from_millis(10);
/// A probe's target over the rate the layer above needs (the padding's
/// pacing and the feedback's window blur the acknowledged rate).
pub const TARGET_HEADROOM: f64 = 1.1;
/// Padding bytes per packet (the most an RTP padding count can say).
pub const PADDING_BYTES: usize = 255;
/// After a failed probe, how long its queue is given to drain: `auto`
/// decides nothing and the estimate keeps what it was before the probe
/// (the padding stops at once; the queue it left is no news about the
/// video).
pub const DRAIN: Duration = Duration::from_millis(1500);
/// Most padding packets sent in one pace step (a late timer does not burst).
const MAX_PACKETS_PER_STEP: usize = 8;

/// What a probe found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ProbeOutcome {
    /// The path carried the target (bit/s) without a queue.
    Passed(f64),
    /// A queue built, packets were lost, or the rate fell short.
    Failed,
}

/// Where the prober is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    /// Not probing; the next probe may start at `not_before`.
    Idle { not_before: Option<Instant> },
    /// Padding the leg up to `target_bps`.
    Probing {
        target_bps: f64,
        /// Padding rate on top of the media (bit/s).
        pad_bps: f64,
        started: Instant,
        /// When padding was last paced out.
        paced: Instant,
        /// Padding bytes owed but not yet sent (under one packet).
        owed: f64,
    },
}

/// One leg's probes (module docs).
#[derive(Debug, Clone)]
pub struct Prober {
    state: State,
    backoff: Duration,
    /// Probes started (tests).
    pub started: u64,
    /// Probes passed.
    pub passed: u64,
    /// Probes failed.
    pub failed: u64,
    /// A probe passed and no change or failure came after it.
    passed_recently: bool,
    /// The estimate when the running or last probe started (bit/s).
    before_bps: f64,
    /// When the last probe failed.
    failed_at: Option<Instant>,
}

impl Default for Prober {
    fn default() -> Self {
        Self {
            state: State::Idle { not_before: None },
            backoff: FIRST_BACKOFF,
            started: 0,
            passed: 0,
            failed: 0,
            passed_recently: false,
            before_bps: 0.0,
            failed_at: None,
        }
    }
}

impl Prober {
    /// Whether a probe runs.
    pub fn probing(&self) -> bool {
        matches!(self.state, State::Probing { .. })
    }

    /// Whether a probe passed since the last [`Prober::cancel`] (a layer
    /// change) with no failed one after it.
    pub fn passed_since_change(&self) -> bool {
        self.passed_recently
    }

    /// Whether a probe runs or the queue of a failed one drains: `auto`
    /// decides nothing then.
    pub fn draining(&self, now: Instant) -> bool {
        self.probing() || self.failed_at.is_some_and(|at| now < at + DRAIN)
    }

    /// The estimate when the last probe started (bit/s).
    pub fn before_bps(&self) -> f64 {
        self.before_bps
    }

    /// `auto` would step up to a layer that needs `target_bps` on the leg,
    /// which carries `carried_bps` now; `estimate` is the downlink's: starts
    /// a probe unless one runs, the wait after the last is not over, or the
    /// path shows a queue or loss already (a probe would only add to it).
    /// Returns whether it started.
    pub fn start(
        &mut self,
        now: Instant,
        target_bps: f64,
        carried_bps: f64,
        estimate: &DownlinkEstimate,
    ) -> bool {
        let State::Idle { not_before } = self.state else {
            return false;
        };
        let quiet = estimate.queue_ms < QUEUE_LOW / 2.0 && estimate.loss == 0.0;
        if not_before.is_some_and(|t| now < t) || target_bps <= carried_bps || !quiet {
            return false;
        }
        self.before_bps = estimate.bps;
        self.started += 1;
        self.state = State::Probing {
            target_bps,
            pad_bps: target_bps - carried_bps,
            started: now,
            paced: now,
            owed: 0.0,
        };
        true
    }

    /// When [`Prober::padding_due`] wants calling next.
    pub fn next_due(&self) -> Option<Instant> {
        match self.state {
            State::Probing { paced, .. } => Some(paced + PACE),
            State::Idle { .. } => None,
        }
    }

    /// How many padding packets of [`PADDING_BYTES`] to send at `now`.
    pub fn padding_due(&mut self, now: Instant) -> usize {
        let State::Probing {
            pad_bps,
            paced,
            owed,
            ..
        } = &mut self.state
        else {
            return 0;
        };
        let elapsed = now.saturating_duration_since(*paced).min(4 * PACE);
        *paced = now;
        *owed += *pad_bps / 8.0 * elapsed.as_secs_f64();
        let packets = ((*owed / PADDING_BYTES as f64) as usize).min(MAX_PACKETS_PER_STEP);
        *owed = (*owed - (packets * PADDING_BYTES) as f64).max(0.0);
        packets
    }

    /// The leg's downlink estimate after a feedback: ends the probe when it
    /// has an outcome.
    pub fn on_feedback(
        &mut self,
        now: Instant,
        estimate: &DownlinkEstimate,
    ) -> Option<ProbeOutcome> {
        let State::Probing {
            target_bps,
            started,
            ..
        } = self.state
        else {
            return None;
        };
        let troubled = estimate.queue_ms > QUEUE_LOW || estimate.loss > LOSS_LOW;
        let over = now.saturating_duration_since(started) >= PROBE_DURATION;
        let outcome = if troubled {
            ProbeOutcome::Failed
        } else if !over {
            return None;
        } else {
            // Clean for the whole probe: the path carried what was sent (a
            // queue would have built otherwise). The acknowledged rate can
            // fall short of it when feedback misses packets (seen under
            // load), so it is not the measure.
            ProbeOutcome::Passed(target_bps)
        };
        self.passed_recently = matches!(outcome, ProbeOutcome::Passed(_));
        self.failed_at = (outcome == ProbeOutcome::Failed).then_some(now);
        let wait = match outcome {
            ProbeOutcome::Passed(_) => {
                self.passed += 1;
                self.backoff = FIRST_BACKOFF;
                FIRST_BACKOFF
            }
            ProbeOutcome::Failed => {
                self.failed += 1;
                let wait = self.backoff;
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                wait
            }
        };
        self.state = State::Idle {
            not_before: Some(now + wait),
        };
        Some(outcome)
    }

    /// Stops a probe without an outcome (the leg changed layer, or left
    /// `auto`).
    pub fn cancel(&mut self, now: Instant) {
        self.passed_recently = false;
        if self.probing() {
            self.state = State::Idle {
                not_before: Some(now + FIRST_BACKOFF),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet() -> DownlinkEstimate {
        estimate(150_000.0, 0.0, 0.0)
    }

    fn estimate(acked_bps: f64, queue_ms: f64, loss: f64) -> DownlinkEstimate {
        DownlinkEstimate {
            bps: acked_bps,
            gcc_bps: acked_bps,
            gcc_delay_bps: acked_bps,
            acked_bps,
            queue_ms,
            loss,
        }
    }

    #[test]
    fn pads_at_the_difference_and_passes_when_the_path_carries_it() {
        let t0 = Instant::now();
        let mut p = Prober::default();
        assert!(p.start(t0, 500_000.0, 150_000.0, &quiet()));
        assert!(
            !p.start(t0, 500_000.0, 150_000.0, &quiet()),
            "one at a time"
        );
        // 350 kbit/s of padding over one second, paced every 10 ms.
        let mut packets = 0;
        for ms in (10..=1000).step_by(10) {
            packets += p.padding_due(t0 + Duration::from_millis(ms));
        }
        let bps = (packets * PADDING_BYTES * 8) as f64;
        assert!((330_000.0..=350_000.0).contains(&bps), "{bps}");
        let at = |ms| t0 + Duration::from_millis(ms);
        assert_eq!(
            p.on_feedback(at(1000), &estimate(480_000.0, 2.0, 0.0)),
            None
        );
        assert_eq!(
            p.on_feedback(at(2000), &estimate(480_000.0, 2.0, 0.0)),
            Some(ProbeOutcome::Passed(500_000.0))
        );
        assert!(p.passed_since_change());
        assert!(!p.probing());
        assert_eq!(p.padding_due(at(2010)), 0, "no padding once over");
        assert!(
            !p.start(at(3000), 900_000.0, 480_000.0, &quiet()),
            "the wait"
        );
        assert!(p.start(at(4000), 900_000.0, 480_000.0, &quiet()));
        p.cancel(at(4100));
        assert!(!p.passed_since_change(), "a change forgets it");
    }

    #[test]
    fn a_queue_ends_the_probe_at_once_and_the_wait_doubles() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut p = Prober::default();
        assert!(p.start(t0, 500_000.0, 150_000.0, &quiet()));
        assert_eq!(
            p.on_feedback(at(300), &estimate(300_000.0, 40.0, 0.0)),
            Some(ProbeOutcome::Failed)
        );
        assert_eq!(p.next_due(), None, "no more padding");
        assert!(!p.start(at(2000), 500_000.0, 150_000.0, &quiet()));
        assert!(
            p.start(at(2300), 500_000.0, 150_000.0, &quiet()),
            "after 2 s"
        );
        assert_eq!(
            p.on_feedback(at(2400), &estimate(300_000.0, 0.0, 0.1)),
            Some(ProbeOutcome::Failed),
            "loss"
        );
        assert!(
            !p.start(at(6300), 500_000.0, 150_000.0, &quiet()),
            "then 4 s"
        );
        assert!(p.start(at(6400), 500_000.0, 150_000.0, &quiet()));
        assert_eq!(
            p.on_feedback(at(6500), &estimate(200_000.0, 80.0, 0.0)),
            Some(ProbeOutcome::Failed),
        );
        assert!(
            !p.start(at(10_400), 500_000.0, 150_000.0, &quiet()),
            "at most 4 s"
        );
        assert!(
            p.start(at(10_500), 500_000.0, 150_000.0, &quiet()),
            "at most 4 s"
        );
        assert_eq!((p.started, p.passed, p.failed), (4, 0, 3));
    }

    #[test]
    fn no_probe_into_a_queue_and_a_failed_one_drains() {
        let t0 = Instant::now();
        let mut p = Prober::default();
        assert!(!p.start(t0, 500_000.0, 150_000.0, &estimate(150_000.0, 30.0, 0.0)));
        assert!(!p.start(t0, 500_000.0, 150_000.0, &estimate(150_000.0, 0.0, 0.05)));
        assert!(p.start(t0, 500_000.0, 150_000.0, &quiet()));
        assert!(p.draining(t0));
        let failed = t0 + Duration::from_millis(500);
        p.on_feedback(failed, &estimate(300_000.0, 40.0, 0.0));
        assert!(p.draining(failed + DRAIN / 2));
        assert!(!p.draining(failed + DRAIN));
        assert_eq!(p.before_bps(), 150_000.0);
    }

    #[test]
    fn a_late_timer_does_not_burst() {
        let t0 = Instant::now();
        let mut p = Prober::default();
        assert!(p.start(t0, 10_000_000.0, 0.0, &quiet()));
        assert!(p.padding_due(t0 + Duration::from_secs(1)) <= MAX_PACKETS_PER_STEP);
    }
}
