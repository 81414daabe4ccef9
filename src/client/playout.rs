//! The video playout delay: hands whole access units to the decoder at a
//! steady pace, each at its RTP timestamp plus a target delay, so that a
//! frame held for a retransmission and released late does not show as a
//! freeze followed by a burst.
//!
//! The reorder buffer ([`super::jitter`]) holds the packets behind a gap until
//! the NACKed packet arrives, about one round trip. Without a playout delay
//! every such hold is a pause between decoded frames as long as the repair
//! (a freeze by WebRTC's definition once it exceeds ~180 ms at 30 fps), then
//! the held frames decode at once. libwebrtc's answer (`VCMTiming`, the
//! jitter estimator adding the RTT once frames have been NACKed) is a target
//! delay that absorbs the repair: every frame renders at
//!
//! ```text
//! render_at = epoch + rtp_time + base_transit + current_delay
//! ```
//!
//! where `base_transit` is the smallest transit (arrival − RTP time) seen in
//! the last [`PlayoutConfig::transit_window`]: the frames that came straight
//! through. A frame that arrives after its render time (a repair slower than
//! the delay, or network jitter) goes to the decoder at once.
//!
//! The delay is only paid where repairs happen: the caller sets the target
//! from the repairs the reorder buffer measured ([`PlayoutBuffer::set_target`]),
//! zero on a clean link. The current delay moves towards the target at a
//! bounded rate of media time ([`PlayoutConfig::rise_per_s`],
//! [`PlayoutConfig::fall_per_s`]), so a change of delay plays as slightly
//! slower or faster video rather than a jump; a frame later than its render
//! time lifts the current delay by its lateness, up to the target (as
//! libwebrtc's `UpdateCurrentDelay`).
//!
//! Sans-IO: units, their RTP timestamps and the time go in, units come out at
//! their render time; the RTP task wakes at [`PlayoutBuffer::deadline`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// Bounds of the playout delay.
#[derive(Debug, Clone, Copy)]
pub struct PlayoutConfig {
    /// The largest target delay, whatever repairs take. 350 ms: the
    /// glass-to-glass budget is 400 ms (issue 10 §5), and at 500 ms a
    /// collapse's slow repairs (the bottleneck's queue in each round trip)
    /// held every picture half a second late for the ten seconds the
    /// repairs are remembered after it (docs/PERFORMANCE.md, issue 10 §1).
    /// A link with a 100 ms round trip asks about 300 (2.5 × its repairs
    /// plus the margin), under it.
    pub max_delay: Duration,
    /// The target is this many times the typical (first-try) repair time,
    /// plus the margin: 2.5 covers a repair that needed a second NACK (1 +
    /// 1.25 round trips).
    pub repair_factor: f64,
    /// Added to the scaled repair time to make the target.
    pub margin: Duration,
    /// How fast the current delay may grow, in seconds of delay per second
    /// of media (0.3: frames play up to 30 % slower while it grows).
    pub rise_per_s: f64,
    /// How fast it may shrink (frames play that much faster).
    pub fall_per_s: f64,
    /// The base transit is the smallest of this recent window.
    pub transit_window: Duration,
    /// Units waiting for their render time; one more is released at once.
    pub max_units: usize,
}

impl Default for PlayoutConfig {
    fn default() -> Self {
        Self {
            max_delay: Duration::from_millis(350),
            repair_factor: 2.5,
            margin: Duration::from_millis(30),
            rise_per_s: 0.3,
            fall_per_s: 0.1,
            transit_window: Duration::from_secs(3),
            // 2 s at 30 fps: far above any delay the target allows.
            max_units: 60,
        }
    }
}

/// RTP video clock, ticks per millisecond.
const TICKS_PER_MS: f64 = 90.0;

/// A render time further ahead than this past the target means the sender's
/// timestamps jumped (a new source, a restart): the clock starts again.
const RESYNC_AHEAD: Duration = Duration::from_secs(1);

/// See the module docs.
#[derive(Debug)]
pub struct PlayoutBuffer {
    config: PlayoutConfig,
    /// Units in decode order with their render time.
    queue: VecDeque<(Instant, u32, Bytes)>,
    /// The clock's origin: the first unit's arrival.
    epoch: Option<Instant>,
    /// Last RTP timestamp seen and its extension to 64 bits.
    last_ts: u32,
    ts_ext: i64,
    /// Extended RTP timestamp of the last unit pushed (paces the delay's change).
    last_media_ms: Option<f64>,
    /// Recent (arrival, transit ms), a sliding-window minimum (transit
    /// increasing from front to back).
    transits: VecDeque<(Instant, f64)>,
    target: Duration,
    current_ms: f64,
    last_render: Option<Instant>,
}

impl PlayoutBuffer {
    /// An empty buffer at zero delay.
    pub fn new(config: PlayoutConfig) -> Self {
        Self {
            config,
            queue: VecDeque::new(),
            epoch: None,
            last_ts: 0,
            ts_ext: 0,
            last_media_ms: None,
            transits: VecDeque::new(),
            target: Duration::ZERO,
            current_ms: 0.0,
            last_render: None,
        }
    }

    /// Sets the target delay from the time a first-try repair takes on this
    /// link (zero: none lately): [`PlayoutConfig::repair_factor`] times it
    /// plus the margin, within [`PlayoutConfig::max_delay`].
    pub fn set_target(&mut self, repair: Duration) {
        self.target = if repair.is_zero() {
            Duration::ZERO
        } else {
            (repair.mul_f64(self.config.repair_factor) + self.config.margin)
                .min(self.config.max_delay)
        };
    }

    /// The target delay.
    pub fn target(&self) -> Duration {
        self.target
    }

    /// The delay frames are played with now.
    pub fn current(&self) -> Duration {
        Duration::from_secs_f64(self.current_ms / 1e3)
    }

    /// Units waiting for their render time.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no unit waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Takes one whole access unit with RTP timestamp `timestamp`, complete at `now`.
    pub fn push(&mut self, unit: Bytes, timestamp: u32, now: Instant) {
        let epoch = *self.epoch.get_or_insert(now);
        if self.last_media_ms.is_none() {
            self.last_ts = timestamp;
            self.ts_ext = i64::from(timestamp);
        } else {
            self.ts_ext += i64::from(timestamp.wrapping_sub(self.last_ts) as i32);
            self.last_ts = timestamp;
        }
        let media_ms = self.ts_ext as f64 / TICKS_PER_MS;
        let arrival_ms = now.saturating_duration_since(epoch).as_secs_f64() * 1e3;
        let transit = arrival_ms - media_ms;

        // The delay moves towards the target at its bounded rate of media time.
        let elapsed_media = self
            .last_media_ms
            .map_or(0.0, |last| (media_ms - last).clamp(0.0, 1000.0));
        self.last_media_ms = Some(media_ms);
        let target_ms = self.target.as_secs_f64() * 1e3;
        if self.current_ms < target_ms {
            let step = elapsed_media * self.config.rise_per_s;
            self.current_ms = (self.current_ms + step).min(target_ms);
        } else {
            let step = elapsed_media * self.config.fall_per_s;
            self.current_ms = (self.current_ms - step).max(target_ms);
        }

        // The base transit: the smallest in the window (sliding minimum).
        while self.transits.back().is_some_and(|&(_, t)| t >= transit) {
            self.transits.pop_back();
        }
        self.transits.push_back((now, transit));
        while self
            .transits
            .front()
            .is_some_and(|&(at, _)| now.saturating_duration_since(at) > self.config.transit_window)
        {
            self.transits.pop_front();
        }
        let mut base = self.transits.front().map_or(transit, |&(_, t)| t);

        let mut render_ms = media_ms + base + self.current_ms;
        if render_ms - arrival_ms > (self.config.max_delay + RESYNC_AHEAD).as_secs_f64() * 1e3 {
            // The timestamps jumped ahead: start the clock again from this unit.
            self.transits.clear();
            self.transits.push_back((now, transit));
            base = transit;
            render_ms = media_ms + base + self.current_ms;
        }
        let late_ms = arrival_ms - render_ms;
        if late_ms > 0.0 && self.current_ms < target_ms {
            // Late anyway: the delay it showed is paid, keep it (up to the target).
            self.current_ms = (self.current_ms + late_ms).min(target_ms);
        }
        let mut render_at = epoch + Duration::from_secs_f64(render_ms.max(0.0) / 1e3);
        // Decode order is kept: never before the unit ahead of it.
        if let Some(last) = self.last_render {
            render_at = render_at.max(last);
        }
        self.last_render = Some(render_at);
        self.queue.push_back((render_at, timestamp, unit));
    }

    /// The decoder waits for a keyframe and the unit just pushed is one:
    /// the units queued before it cannot be decoded, so they are dropped
    /// (their number is returned, each one's RTP timestamp given to
    /// `on_skip`) and the keyframe is due at once; the
    /// current delay shrinks by the time saved and grows back at its rate.
    /// This shortens the freeze of a keyframe recovery by the playout delay.
    pub fn skip_to_newest(&mut self, now: Instant, mut on_skip: impl FnMut(u32)) -> usize {
        let Some((at, timestamp, unit)) = self.queue.pop_back() else {
            return 0;
        };
        let skipped = self.queue.len();
        for (_, ts, _) in self.queue.drain(..) {
            on_skip(ts);
        }
        let early = at.saturating_duration_since(now);
        self.current_ms = (self.current_ms - early.as_secs_f64() * 1e3).max(0.0);
        let due = at.min(now);
        self.last_render = Some(due);
        self.queue.push_back((due, timestamp, unit));
        skipped
    }

    /// When the next unit is due, if one waits.
    pub fn deadline(&self) -> Option<Instant> {
        self.queue.front().map(|(at, _, _)| *at)
    }

    /// The next unit due by `now` (or pushed out by the bound on waiting
    /// units), with its RTP timestamp.
    pub fn pop(&mut self, now: Instant) -> Option<(u32, Bytes)> {
        let (at, _, _) = self.queue.front()?;
        if *at <= now || self.queue.len() > self.config.max_units {
            return self.queue.pop_front().map(|(_, ts, unit)| (ts, unit));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: Duration = Duration::from_micros(33_333);
    const TICKS: u32 = 3000; // 33.3 ms at 90 kHz

    fn unit(n: u8) -> Bytes {
        Bytes::from(vec![n])
    }

    fn drain(b: &mut PlayoutBuffer, now: Instant) -> Vec<u8> {
        std::iter::from_fn(|| b.pop(now))
            .map(|(_, u)| u[0])
            .collect()
    }

    /// With no target (a clean link), a unit goes out the moment it arrives.
    #[test]
    fn without_a_target_units_pass_at_once() {
        let t0 = Instant::now();
        let mut b = PlayoutBuffer::new(PlayoutConfig::default());
        for i in 0..10u8 {
            let now = t0 + FRAME * u32::from(i);
            b.push(unit(i), 1000 + TICKS * u32::from(i), now);
            assert_eq!(drain(&mut b, now), [i]);
        }
        assert_eq!(b.current(), Duration::ZERO);
    }

    /// A unit held for a repair shorter than the delay comes out on time:
    /// the gaps between released units stay one frame apart, no freeze.
    #[test]
    fn a_repair_within_the_delay_keeps_the_pace() {
        let t0 = Instant::now();
        let mut b = PlayoutBuffer::new(PlayoutConfig {
            rise_per_s: 10.0, // reach the target at once for this test
            ..PlayoutConfig::default()
        });
        b.set_target(Duration::from_millis(60)); // 2.5 × 60 + 30 = 180 ms
        let mut released = Vec::new();
        let repair = Duration::from_millis(140);
        let mut now = t0;
        let end = t0 + FRAME * 40;
        let mut pushed = 0u32;
        while now < end {
            // Frame 20 and the two behind it come out of the reorder buffer
            // together, 140 ms late.
            while pushed < 40 {
                let due = t0 + FRAME * pushed;
                let arrival = if (20..=22).contains(&pushed) {
                    t0 + FRAME * 20 + repair
                } else {
                    due
                };
                if arrival > now {
                    break;
                }
                b.push(unit(pushed as u8), 3000 * pushed, arrival.max(now));
                pushed += 1;
            }
            while let Some((_, u)) = b.pop(now) {
                released.push((u[0], now));
            }
            now += Duration::from_millis(1);
        }
        let numbers: Vec<u8> = released.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, (0..numbers.len() as u8).collect::<Vec<_>>());
        // After the delay is reached (frame 2 on), frames are ~33 ms apart.
        for pair in released[3..].windows(2) {
            let gap = pair[1].1 - pair[0].1;
            assert!(
                gap <= Duration::from_millis(40),
                "frame {} came {gap:?} after the previous",
                pair[1].0
            );
        }
    }

    /// The delay grows towards the target at the bounded rate, not at once.
    #[test]
    fn the_delay_rises_at_its_rate() {
        let t0 = Instant::now();
        let config = PlayoutConfig::default();
        let mut b = PlayoutBuffer::new(config);
        b.set_target(Duration::from_millis(108)); // 2.5 × 108 + 30 = 300 ms
        for i in 0..31u32 {
            b.push(unit(0), TICKS * i, t0 + FRAME * i);
        }
        // One second of media at 0.3 s/s: 300 ms.
        let current = b.current().as_secs_f64();
        assert!((current - 0.3).abs() < 0.01, "current {current}");
        b.set_target(Duration::ZERO);
        for i in 31..62u32 {
            b.push(unit(0), TICKS * i, t0 + FRAME * i);
        }
        let current = b.current().as_secs_f64();
        assert!((current - 0.2).abs() < 0.01, "falls 0.1 s/s: {current}");
    }

    /// A late unit goes out at once, and lifts the delay by its lateness
    /// (up to the target).
    #[test]
    fn a_late_unit_goes_out_at_once_and_lifts_the_delay() {
        let t0 = Instant::now();
        let mut b = PlayoutBuffer::new(PlayoutConfig::default());
        b.set_target(Duration::from_millis(68)); // 2.5 × 68 + 30 = 200 ms
        b.push(unit(0), 0, t0);
        assert_eq!(drain(&mut b, t0), [0]);
        let late = t0 + FRAME + Duration::from_millis(120);
        b.push(unit(1), TICKS, late);
        assert_eq!(drain(&mut b, late), [1]);
        let current = b.current().as_millis();
        // 10 ms grown over the frame, then the 110 ms it came late.
        assert!((119..=121).contains(&current), "current {current} ms");
    }

    /// The target is bounded, and the number of waiting units too.
    #[test]
    fn target_and_queue_are_bounded() {
        let t0 = Instant::now();
        let config = PlayoutConfig {
            max_units: 3,
            rise_per_s: 100.0,
            ..PlayoutConfig::default()
        };
        let mut b = PlayoutBuffer::new(config);
        b.set_target(Duration::from_secs(5));
        assert_eq!(b.target(), config.max_delay);
        // All pushed at once (a burst): they wait, but never more than 3.
        for i in 0..6u32 {
            b.push(unit(i as u8), TICKS * i, t0);
        }
        assert_eq!(drain(&mut b, t0), [0, 1, 2]);
        assert_eq!(b.len(), 3);
        assert!(b.deadline().is_some());
    }

    /// A keyframe the decoder waits for goes out at once, the broken units
    /// before it are dropped, and the delay shrinks by the time saved.
    #[test]
    fn a_needed_keyframe_skips_the_queue() {
        let t0 = Instant::now();
        let mut b = PlayoutBuffer::new(PlayoutConfig::default());
        b.set_target(Duration::from_millis(68)); // 200 ms
        // A second of frames: the delay has grown to its 200 ms target.
        for i in 0..31u32 {
            let at = t0 + FRAME * i;
            b.push(unit(0), TICKS * i, at);
            drain(&mut b, at);
        }
        drain(&mut b, t0 + FRAME * 31 + Duration::from_millis(200));
        assert_eq!(b.current(), Duration::from_millis(200));
        for i in 31..34u32 {
            b.push(unit(i as u8), TICKS * i, t0 + FRAME * i);
        }
        let now = t0 + FRAME * 33;
        assert!(drain(&mut b, now).is_empty(), "held for the delay");
        assert_eq!(b.skip_to_newest(now, |_| {}), 2);
        assert_eq!(drain(&mut b, now), [33]);
        assert!(b.current() < Duration::from_millis(10), "{:?}", b.current());
        // The next unit plays a frame later, not after the old delay.
        b.push(unit(34), TICKS * 34, now + FRAME);
        assert_eq!(drain(&mut b, now + FRAME + Duration::from_millis(40)), [34]);
    }

    /// Timestamps jumping far ahead (a restarted source) do not stall
    /// playout: the clock starts again from the new unit.
    #[test]
    fn a_timestamp_jump_ahead_restarts_the_clock() {
        let t0 = Instant::now();
        let mut b = PlayoutBuffer::new(PlayoutConfig::default());
        b.push(unit(0), 0, t0);
        assert_eq!(drain(&mut b, t0), [0]);
        let t1 = t0 + FRAME;
        b.push(unit(1), 90_000 * 60, t1);
        assert_eq!(drain(&mut b, t1), [1]);
    }
}
