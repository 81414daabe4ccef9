//! Stream state detection (seed 001 `enableStreamStateDetection`,
//! `stream-interrupted`, `stream-recovered`).
//!
//! A subscribed remote video that should be flowing (the server forwards its
//! video and the publisher has not muted it) but delivers no decodable frame
//! for the detection interval is *interrupted*; it *recovers* when frames flow
//! again. The detector is sans-IO: the session feeds it, at a steady tick,
//! each subscription's frame counter, whether video is expected, and the time,
//! and it answers with the transitions to announce.
//!
//! Invariants: each stream is in exactly one [`FlowState`]; `Interrupted` is
//! announced once per interruption and always followed by `Recovered` before
//! the next `Interrupted`, unless the stream stops being watched (muted,
//! video no longer forwarded, unsubscribed, detection off), which ends the
//! interruption silently: a muted video is not "interrupted".

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::protocol::StreamId;

/// Shortest and longest detection interval (the seed's range, `[1, 60]` s).
pub const DETECTION_INTERVAL_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(60);

/// The interval the seed recommends (3 s).
pub const DEFAULT_DETECTION_INTERVAL: Duration = Duration::from_secs(3);

/// How often the session samples its subscriptions while detection is on.
pub(crate) const DETECTION_TICK: Duration = Duration::from_millis(200);

/// Where one watched stream stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlowState {
    /// Video is expected; the last new frame (or the start of watching) was
    /// at `since`.
    Flowing { since: Instant },
    /// No frame for the interval; announced.
    Interrupted,
}

#[derive(Debug, Clone, Copy)]
struct Watch {
    state: FlowState,
    frames: u64,
}

/// A transition to announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlowChange {
    /// No decodable frame for the interval (`stream-interrupted`).
    Interrupted,
    /// Frames flow again after an interruption (`stream-recovered`).
    Recovered,
}

/// The detector of one client: off until [`StreamStateDetector::set_interval`].
#[derive(Debug, Default)]
pub(crate) struct StreamStateDetector {
    interval: Option<Duration>,
    watched: BTreeMap<StreamId, Watch>,
    /// Subscriptions whose video the server forwards (`stream-subscribed`).
    forwarded: BTreeSet<StreamId>,
}

impl StreamStateDetector {
    /// Turns detection on with `interval`, or off (`None`). Turning it on or
    /// changing the interval starts every stream's clock over.
    pub(crate) fn set_interval(&mut self, interval: Option<Duration>) {
        self.interval = interval;
        self.watched.clear();
    }

    /// Whether detection is on.
    pub(crate) fn enabled(&self) -> bool {
        self.interval.is_some()
    }

    /// One sample of `stream`: its count of decoded frames so far, and whether
    /// video should be flowing now. Returns the transition to announce, if any.
    pub(crate) fn observe(
        &mut self,
        stream: StreamId,
        expected: bool,
        frames: u64,
        now: Instant,
    ) -> Option<FlowChange> {
        let interval = self.interval?;
        if !expected {
            self.watched.remove(&stream);
            return None;
        }
        let Some(watch) = self.watched.get_mut(&stream) else {
            self.watched.insert(
                stream,
                Watch {
                    state: FlowState::Flowing { since: now },
                    frames,
                },
            );
            return None;
        };
        if frames != watch.frames {
            watch.frames = frames;
            let was = std::mem::replace(&mut watch.state, FlowState::Flowing { since: now });
            return (was == FlowState::Interrupted).then_some(FlowChange::Recovered);
        }
        match watch.state {
            FlowState::Flowing { since } if now.duration_since(since) >= interval => {
                watch.state = FlowState::Interrupted;
                Some(FlowChange::Interrupted)
            }
            FlowState::Flowing { .. } | FlowState::Interrupted => None,
        }
    }

    /// The server forwards `stream`'s video now (`true`), or no longer.
    pub(crate) fn set_video_forwarded(&mut self, stream: StreamId, video: bool) {
        if video {
            self.forwarded.insert(stream);
        } else {
            self.forwarded.remove(&stream);
        }
    }

    /// Whether the server said it forwards `stream`'s video.
    pub(crate) fn video_forwarded(&self, stream: StreamId) -> bool {
        self.forwarded.contains(&stream)
    }

    /// Forgets streams that are no longer subscribed.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(StreamId) -> bool) {
        self.watched.retain(|id, _| keep(*id));
        self.forwarded.retain(|id| keep(*id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: StreamId = StreamId(7);

    fn detector() -> StreamStateDetector {
        let mut d = StreamStateDetector::default();
        d.set_interval(Some(Duration::from_secs(1)));
        d
    }

    #[test]
    fn off_by_default() {
        let mut d = StreamStateDetector::default();
        let t = Instant::now();
        assert_eq!(d.observe(S, true, 0, t), None);
        assert_eq!(d.observe(S, true, 0, t + Duration::from_secs(10)), None);
    }

    #[test]
    fn interrupted_after_the_interval_without_frames_then_recovered() {
        let mut d = detector();
        let t = Instant::now();
        assert_eq!(d.observe(S, true, 10, t), None);
        assert_eq!(d.observe(S, true, 20, t + Duration::from_millis(500)), None);
        // Last frame at 0.5 s: not yet 1 s without one at 1.4 s.
        assert_eq!(
            d.observe(S, true, 20, t + Duration::from_millis(1400)),
            None
        );
        assert_eq!(
            d.observe(S, true, 20, t + Duration::from_millis(1500)),
            Some(FlowChange::Interrupted)
        );
        assert_eq!(
            d.observe(S, true, 20, t + Duration::from_secs(5)),
            None,
            "once"
        );
        assert_eq!(
            d.observe(S, true, 21, t + Duration::from_secs(6)),
            Some(FlowChange::Recovered)
        );
        assert_eq!(d.observe(S, true, 22, t + Duration::from_secs(6)), None);
    }

    #[test]
    fn a_muted_stream_is_not_interrupted_and_unmuting_starts_the_clock_over() {
        let mut d = detector();
        let t = Instant::now();
        assert_eq!(d.observe(S, true, 5, t), None);
        for s in 1..10 {
            assert_eq!(d.observe(S, false, 5, t + Duration::from_secs(s)), None);
        }
        assert_eq!(d.observe(S, true, 5, t + Duration::from_secs(10)), None);
        assert_eq!(
            d.observe(S, true, 5, t + Duration::from_millis(10_900)),
            None
        );
        assert_eq!(
            d.observe(S, true, 5, t + Duration::from_secs(11)),
            Some(FlowChange::Interrupted)
        );
    }

    #[test]
    fn never_a_frame_is_an_interruption() {
        let mut d = detector();
        let t = Instant::now();
        assert_eq!(d.observe(S, true, 0, t), None);
        assert_eq!(
            d.observe(S, true, 0, t + Duration::from_secs(1)),
            Some(FlowChange::Interrupted)
        );
    }
}
