//! A subscriber's downlink estimate from its TWCC feedback, sans-IO
//! (issue 10 §2): what `auto` ([`super::downlink::AutoLayer`]) weighs the
//! layers against on a leg whose subscriber returns transport-wide feedback.
//!
//! Inputs are send/arrival pairs (`hub::twcc`), one batch per feedback
//! packet (every 50-100 ms from browsers and webrtc-rs). Three signals come
//! out of them:
//!
//! * **rtc-interceptor's GCC** ([`Gcc`], not rewritten here): its delay half
//!   (Kalman-filtered delay gradient, overuse detector, AIMD) and its loss
//!   half, combined by `min`;
//! * **the acknowledged rate**: the bytes the subscriber reports received
//!   over the last [`ACK_WINDOW`] of its own clock;
//! * **the standing queue**: each packet's one-way delay relative to the
//!   first (send clock vs the subscriber's clock: the offset cancels), minus
//!   the lowest seen within [`BASE_WINDOW`]. The least delayed packet of a
//!   feedback batch stands for the batch, so a keyframe burst that queues
//!   briefly and drains does not count, a queue that stays does.
//!
//! The estimate is `min(GCC, own)`, never below [`BACKOFF`] × the
//! acknowledged rate (what the path is delivering now cannot be too much for
//! it: GCC's loss half, cut again at every lossy feedback, otherwise fell to
//! its 50 kbit/s floor while the path carried 300, and `auto` paused a video
//! whose smallest layer fitted). `own` is:
//!
//! * queue above [`QUEUE_HIGH`]: the path is full **before it loses**: the
//!   acknowledged rate × [`BACKOFF`] (what got through, less room for the
//!   queue to drain);
//! * queue below [`QUEUE_LOW`] and loss below [`LOSS_LOW`]: grows from
//!   `max(own, acknowledged)` by [`GROWTH_PER_SEC`] (no probing: a larger
//!   layer is tried when the estimate says it fits, and a queue building
//!   behind it takes the estimate back down within a feedback or two);
//! * in between: holds.
//!
//! A probe that passed (`super::probe`: padding brought the leg to a larger
//! layer's rate and the path carried it without a queue) sets a floor under
//! the estimate, GCC's half included (its additive climb after a backoff
//! takes 10 s and more to find a path that grew): the acknowledged rate of
//! the probe, until a queue or loss shows again.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rtc::interceptor::{BandwidthEstimator, Gcc, PacketReport};

/// Standing queue (ms) above which the downlink is taken as full.
pub const QUEUE_HIGH: f64 = 60.0;
/// Standing queue (ms) below which it is taken as having room.
pub const QUEUE_LOW: f64 = 15.0;
/// Loss fraction (of 1) up to which growth goes on.
pub const LOSS_LOW: f64 = 0.02;
/// What of the acknowledged rate the estimate keeps when the queue builds.
pub const BACKOFF: f64 = 0.85;
/// Growth of `own` per second while the queue is empty.
pub const GROWTH_PER_SEC: f64 = 1.15;
/// Window of the acknowledged rate (subscriber's clock).
pub const ACK_WINDOW: Duration = Duration::from_millis(1000);
/// How long the lowest one-way delay is remembered as the empty-path one.
pub const BASE_WINDOW: Duration = Duration::from_secs(30);

/// Bounds of the estimate (bit/s), and where GCC starts.
const MIN_BPS: f64 = 50_000.0;
const MAX_BPS: f64 = 20_000_000.0;
const INITIAL_BPS: f64 = 2_000_000.0;

/// Arrivals kept for the acknowledged rate (≥ [`ACK_WINDOW`] of a leg at
/// 2,000 packets/s).
const ARRIVALS_MAX: usize = 4096;

/// One downlink's estimate (module docs).
pub struct DownlinkGcc {
    gcc: Gcc,
    /// `(arrival, bytes)` of arrived packets, oldest first.
    arrivals: VecDeque<(Duration, u32)>,
    /// The first arrived packet's departure and arrival: the origin of the
    /// relative one-way delays.
    origin: Option<(Instant, Duration)>,
    /// Lowest relative delay (ms) of each second, newest last.
    base: VecDeque<(Instant, f64)>,
    /// Standing queue (ms), smoothed.
    queue_ms: f64,
    /// Loss of the last batch (of 1).
    loss: f64,
    own_bps: Option<f64>,
    acked_bps: f64,
    updated: Option<Instant>,
    /// Feedback batches taken.
    batches: u64,
    /// What a passed probe found the path to carry (bit/s), until a queue or
    /// loss shows.
    probed_bps: Option<f64>,
    /// After a failed probe: the estimate before it, kept until the probe's
    /// queue has drained (`super::probe::DRAIN`).
    held: Option<(f64, Instant)>,
}

impl Default for DownlinkGcc {
    fn default() -> Self {
        Self {
            gcc: Gcc::new(INITIAL_BPS, MIN_BPS, MAX_BPS),
            arrivals: VecDeque::new(),
            origin: None,
            base: VecDeque::new(),
            queue_ms: 0.0,
            loss: 0.0,
            own_bps: None,
            acked_bps: 0.0,
            updated: None,
            batches: 0,
            probed_bps: None,
            held: None,
        }
    }
}

/// What the estimator says now (logs, tests, `auto`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DownlinkEstimate {
    /// The estimate `auto` uses (bit/s).
    pub bps: f64,
    /// GCC's target (bit/s).
    pub gcc_bps: f64,
    /// GCC's delay half (bit/s).
    pub gcc_delay_bps: f64,
    /// The acknowledged rate (bit/s).
    pub acked_bps: f64,
    /// The standing queue (ms).
    pub queue_ms: f64,
    /// Loss of the last feedback batch (of 1).
    pub loss: f64,
}

impl DownlinkGcc {
    /// Takes one feedback's reports (in send order) at `now`.
    pub fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        if reports.is_empty() {
            return;
        }
        self.batches += 1;
        self.gcc.on_reports(now, reports);
        let mut lowest: Option<f64> = None;
        let mut lost = 0usize;
        for r in reports {
            let (true, Some(arrival)) = (r.arrived, r.arrival) else {
                lost += usize::from(!r.arrived);
                continue;
            };
            if self.arrivals.len() == ARRIVALS_MAX {
                self.arrivals.pop_front();
            }
            self.arrivals.push_back((arrival, r.size as u32));
            let (sent0, arrived0) = *self.origin.get_or_insert((r.departure, arrival));
            let sent = signed_ms(r.departure, sent0);
            let arrived = arrival.as_secs_f64() * 1000.0 - arrived0.as_secs_f64() * 1000.0;
            let delay = arrived - sent;
            lowest = Some(lowest.map_or(delay, |l: f64| l.min(delay)));
        }
        self.loss = lost as f64 / reports.len() as f64;
        if let Some(lowest) = lowest {
            self.note_base(now, lowest);
            let base = self
                .base
                .iter()
                .map(|(_, d)| *d)
                .fold(f64::INFINITY, f64::min);
            let queue = (lowest - base).max(0.0);
            // Smoothed over a few feedbacks: a receiver that stalls for a
            // moment (a busy CPU) delays one batch, a full path every batch.
            self.queue_ms = 0.7 * self.queue_ms + 0.3 * queue;
        }
        self.acked_bps = self.acked_rate();
        let dt = self
            .updated
            .map_or(0.0, |at| now.saturating_duration_since(at).as_secs_f64());
        self.updated = Some(now);
        let own = match self.own_bps {
            _ if self.queue_ms > QUEUE_HIGH && self.acked_bps > 0.0 => {
                let backed = self.acked_bps * BACKOFF;
                self.own_bps.map_or(backed, |o| o.min(backed))
            }
            Some(o) if self.queue_ms > QUEUE_LOW || self.loss > LOSS_LOW => o,
            o => o.unwrap_or(0.0).max(self.acked_bps) * GROWTH_PER_SEC.powf(dt.min(1.0)),
        };
        self.own_bps = Some(own.clamp(MIN_BPS, MAX_BPS));
        if self.queue_ms > QUEUE_LOW || self.loss > LOSS_LOW {
            self.probed_bps = None;
        }
    }

    /// A probe failed: its padding made the queue, not the video. The
    /// estimate keeps `before_bps` (what it was when the probe started)
    /// until `until`, and its own half at least that.
    pub fn probe_failed(&mut self, before_bps: f64, until: Instant) {
        self.held = Some((before_bps, until));
        self.own_bps = self.own_bps.map(|o| o.max(before_bps));
    }

    /// A probe found the path to carry `bps`: the estimate's floor until a
    /// queue or loss shows.
    pub fn probe_passed(&mut self, bps: f64) {
        // `own` follows the acknowledged rate up by itself while the queue
        // is flat; GCC's half is what the floor lifts.
        self.probed_bps = Some(bps.clamp(MIN_BPS, MAX_BPS));
    }

    /// Keeps the lowest delay of each second within [`BASE_WINDOW`].
    fn note_base(&mut self, now: Instant, delay: f64) {
        match self.base.back_mut() {
            Some((at, d)) if now.saturating_duration_since(*at) < Duration::from_secs(1) => {
                *d = d.min(delay);
            }
            _ => self.base.push_back((now, delay)),
        }
        while self
            .base
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > BASE_WINDOW)
        {
            self.base.pop_front();
        }
    }

    /// Bytes arrived over the last [`ACK_WINDOW`] of the subscriber's clock,
    /// per second (over less while the leg is younger than that).
    fn acked_rate(&mut self) -> f64 {
        let Some(&(latest, _)) = self.arrivals.back() else {
            return 0.0;
        };
        let from = latest.saturating_sub(ACK_WINDOW);
        while self.arrivals.front().is_some_and(|(at, _)| *at < from) {
            self.arrivals.pop_front();
        }
        let Some(&(oldest, _)) = self.arrivals.front() else {
            return 0.0;
        };
        let span = latest
            .saturating_sub(oldest)
            .max(Duration::from_millis(200));
        let bytes: u64 = self.arrivals.iter().map(|(_, b)| u64::from(*b)).sum();
        bytes as f64 * 8.0 / span.as_secs_f64().max(ACK_WINDOW.as_secs_f64() / 4.0)
    }

    /// The estimate, once feedback came.
    pub fn estimate(&self) -> Option<DownlinkEstimate> {
        let own = self.own_bps?;
        let gcc_bps = self.gcc.target_bitrate();
        Some(DownlinkEstimate {
            bps: own
                .min(gcc_bps)
                .max(self.acked_bps * BACKOFF)
                .max(self.probed_bps.unwrap_or(0.0))
                .max(self.held_bps()),
            gcc_bps,
            gcc_delay_bps: self.gcc.delay_based_bitrate(),
            acked_bps: self.acked_bps,
            queue_ms: self.queue_ms,
            loss: self.loss,
        })
    }

    /// The estimate held after a failed probe, while it holds (as of the
    /// last feedback).
    fn held_bps(&self) -> f64 {
        match (self.held, self.updated) {
            (Some((bps, until)), Some(now)) if now < until => bps,
            _ => 0.0,
        }
    }

    /// Whether the queue says the path is full now.
    pub fn congested(&self) -> bool {
        self.queue_ms > QUEUE_HIGH
    }

    /// Feedback batches taken so far.
    pub fn batches(&self) -> u64 {
        self.batches
    }
}

/// `a - b` in milliseconds, negative when `a` is earlier.
fn signed_ms(a: Instant, b: Instant) -> f64 {
    if a >= b {
        a.duration_since(b).as_secs_f64() * 1000.0
    } else {
        -(b.duration_since(a).as_secs_f64() * 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;

    /// A sender at `send_kbps` in 1,000-byte packets over a path of
    /// `path_kbps` with a FIFO queue of `queue_ms`; feedback every 100 ms.
    struct Path {
        est: DownlinkGcc,
        t0: Instant,
        /// Sender time (ms).
        now_ms: f64,
        /// When the path's queue drains (ms, path clock = sender clock + 20).
        busy_until: f64,
        id: u64,
    }

    impl Path {
        fn new() -> Self {
            Self {
                est: DownlinkGcc::default(),
                t0: Instant::now(),
                now_ms: 0.0,
                busy_until: 0.0,
                id: 0,
            }
        }

        /// 100 ms at `send_kbps` on a `path_kbps` path with `queue_ms` of
        /// buffer; returns the estimate after the feedback.
        fn step(&mut self, send_kbps: f64, path_kbps: f64, queue_ms: f64) -> DownlinkEstimate {
            let packets = (send_kbps * 100.0 / 8000.0).round().max(1.0) as u64;
            let gap = 100.0 / packets as f64;
            let service = 8000.0 / path_kbps; // ms per 1,000-byte packet
            let reports: Vec<PacketReport> = (0..packets)
                .map(|i| {
                    let sent = self.now_ms + i as f64 * gap;
                    let start = self.busy_until.max(sent);
                    let arrived = start - sent <= queue_ms;
                    if arrived {
                        self.busy_until = start + service;
                    }
                    self.id += 1;
                    PacketReport {
                        ssrc: 1,
                        id: self.id,
                        rtp_sequence_number: 0,
                        is_twcc: true,
                        twcc_sequence_number: self.id as u16,
                        size: 1000,
                        arrived,
                        departure: self.t0 + Duration::from_secs_f64(sent / 1000.0),
                        arrival: arrived
                            .then(|| Duration::from_secs_f64((start + service + 20.0) / 1000.0)),
                        ecn: Ecn::NotEct,
                    }
                })
                .collect();
            self.now_ms += 100.0;
            let now = self.t0 + Duration::from_secs_f64(self.now_ms / 1000.0);
            self.est.on_reports(now, &reports);
            self.est.estimate().expect("feedback came")
        }
    }

    #[test]
    fn a_queue_building_brings_the_estimate_below_the_path_before_loss() {
        let mut path = Path::new();
        for _ in 0..20 {
            path.step(200.0, 1000.0, 200.0);
        }
        let roomy = path.step(200.0, 1000.0, 200.0);
        assert!(roomy.queue_ms < QUEUE_LOW, "{roomy:?}");
        assert!(roomy.bps > 200_000.0, "room: {roomy:?}");
        // Now 500 kbit/s into 300: the 200 ms queue fills in ~0.3 s.
        let mut down = None;
        for step in 1..=10 {
            let e = path.step(500.0, 300.0, 200.0);
            if e.bps < 300_000.0 {
                down = Some((step, e));
                break;
            }
        }
        let (step, e) = down.expect("the estimate came down");
        assert!(
            e.loss == 0.0,
            "before any loss: {e:?} after {step} feedbacks"
        );
        assert!(e.bps > 150_000.0, "near what the path carries: {e:?}");
    }

    #[test]
    fn a_flat_queue_lets_the_estimate_grow_and_loss_holds_it() {
        let mut path = Path::new();
        let first = path.step(100.0, 10_000.0, 200.0).bps;
        let mut e = first;
        for _ in 0..30 {
            e = path.step(100.0, 10_000.0, 200.0).bps;
        }
        assert!(e > first * 1.5, "grew: {first} -> {e}");
        // Shallow buffer: loss without a queue; `own` holds (GCC's loss half
        // may lower it).
        let before = path.est.own_bps.expect("own");
        path.step(2000.0, 1000.0, 1.0);
        let after = path.est.own_bps.expect("own");
        assert!(after <= before, "{before} -> {after}");
    }

    /// A passed probe lifts the estimate over GCC's slow climb; the first
    /// queue takes the floor away.
    #[test]
    fn a_passed_probe_is_a_floor_until_a_queue_shows() {
        let mut path = Path::new();
        for _ in 0..20 {
            path.step(200.0, 1000.0, 200.0);
        }
        let before = path.step(200.0, 1000.0, 200.0).bps;
        path.est.probe_passed(900_000.0);
        let after = path.est.estimate().expect("estimate").bps;
        assert!(after >= 900_000.0, "{before} -> {after}");
        path.step(200.0, 1000.0, 200.0);
        assert!(path.est.estimate().expect("estimate").bps >= 900_000.0);
        let mut queued = None;
        for _ in 0..20 {
            let e = path.step(1500.0, 300.0, 400.0);
            if e.queue_ms > QUEUE_LOW {
                queued = Some(e);
                break;
            }
        }
        let e = queued.expect("a queue built");
        assert!(e.bps < 900_000.0, "the floor is gone: {e:?}");
    }

    /// 800 kbit/s into a 300 kbit/s path that drops what does not fit: GCC's
    /// loss half falls far below what the path delivers, the estimate does
    /// not (a leg whose smallest layer fits is not paused).
    #[test]
    fn loss_does_not_take_the_estimate_below_what_gets_through() {
        let mut path = Path::new();
        for _ in 0..20 {
            path.step(200.0, 1000.0, 200.0);
        }
        let mut lowest = f64::MAX;
        let mut last = None;
        for _ in 0..50 {
            let e = path.step(800.0, 300.0, 30.0);
            lowest = lowest.min(e.bps);
            last = Some(e);
        }
        let e = last.expect("estimates");
        assert!(e.loss > 0.3, "the path drops: {e:?}");
        assert!(e.gcc_bps < 150_000.0, "GCC's loss half went low: {e:?}");
        assert!(e.acked_bps > 250_000.0, "the path delivers ~300: {e:?}");
        assert!(
            lowest > 200_000.0,
            "the estimate fell to {lowest} while the path delivered ~300 kbit/s: {e:?}"
        );
    }

    #[test]
    fn no_feedback_no_estimate() {
        let mut est = DownlinkGcc::default();
        assert!(est.estimate().is_none());
        est.on_reports(Instant::now(), &[]);
        assert!(est.estimate().is_none());
        assert_eq!(est.batches(), 0);
    }
}
