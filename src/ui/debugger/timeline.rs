//! The frame timeline's data: each received video stream's frames as the
//! SDK's frame log (`client::frame_log`) reported them, pulled a few times a
//! second by a live debugger, saved in the session file and checked when a
//! file is read.
//!
//! Invariants: a stream's frames are in index order, at most
//! [`FRAME_LOG_CAPACITY`] of them (the SDK's own bound); a pull replaces the
//! copies of frames that can still change.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::client::frame_log::FRAME_LOG_CAPACITY;
use crate::client::{FrameLog, FrameLogs, FrameRecord};

/// How often a live debugger pulls the frame logs.
pub const PULL_EVERY: Duration = Duration::from_millis(200);

/// One stream's frames.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamTimeline {
    /// The publisher.
    pub user: String,
    /// When the SDK's log started, Unix ms: frame times count from it.
    pub epoch_unix_ms: u64,
    /// Frames, oldest first.
    pub frames: VecDeque<FrameRecord>,
}

impl StreamTimeline {
    /// Takes in a pull: frames from the first one's index on replace what
    /// was there; the oldest go beyond the bound.
    pub fn merge(&mut self, frames: Vec<FrameRecord>) {
        let Some(first) = frames.first().map(|f| f.index) else {
            return;
        };
        while self.frames.back().is_some_and(|f| f.index >= first) {
            self.frames.pop_back();
        }
        self.frames.extend(frames);
        let excess = self.frames.len().saturating_sub(FRAME_LOG_CAPACITY);
        self.frames.drain(..excess);
    }

    /// Seconds from `started_unix_ms` (the session's start) to `us` of this
    /// stream's log.
    pub fn seconds(&self, started_unix_ms: u64, us: u64) -> f64 {
        (self.epoch_unix_ms as f64 - started_unix_ms as f64) / 1e3 + us as f64 / 1e6
    }

    /// Checks a timeline read from a file: frames in increasing index order,
    /// each consistent with itself; the oldest beyond the bound are dropped.
    pub fn check(&mut self) -> Result<(), String> {
        let excess = self.frames.len().saturating_sub(FRAME_LOG_CAPACITY);
        self.frames.drain(..excess);
        let mut last: Option<u64> = None;
        for f in &self.frames {
            if last.is_some_and(|l| f.index <= l) {
                return Err(format!(
                    "frame {} listed after frame {}",
                    f.index,
                    last.unwrap_or_default()
                ));
            }
            last = Some(f.index);
            if f.last_arrival_us < f.first_arrival_us {
                return Err(format!("frame {}: last packet before the first", f.index));
            }
            if f.packet_list.len() > f.packets as usize {
                return Err(format!(
                    "frame {}: {} packets listed, {} counted",
                    f.index,
                    f.packet_list.len(),
                    f.packets
                ));
            }
        }
        Ok(())
    }
}

/// Pulls the SDK's frame logs into a debugger's timelines.
pub struct Puller {
    logs: FrameLogs,
    /// Where to ask each log next (by stream id).
    cursors: BTreeMap<u64, u64>,
    last: Option<Instant>,
}

impl Puller {
    /// Switches the client's frame logs on and follows them.
    pub fn start(logs: FrameLogs) -> Self {
        logs.set_enabled(true);
        Self {
            logs,
            cursors: BTreeMap::new(),
            last: None,
        }
    }

    /// Pulls what is new into `timelines`, at most every [`PULL_EVERY`]
    /// (`force`: now).
    pub fn pull(&mut self, timelines: &mut BTreeMap<u64, StreamTimeline>, force: bool) {
        if !force && self.last.is_some_and(|t| t.elapsed() < PULL_EVERY) {
            return;
        }
        self.last = Some(Instant::now());
        for log in self.logs.all() {
            self.pull_one(&log, timelines);
        }
    }

    fn pull_one(&mut self, log: &FrameLog, timelines: &mut BTreeMap<u64, StreamTimeline>) {
        let id = log.stream_id().0;
        let cursor = self.cursors.get(&id).copied().unwrap_or(0);
        let batch = log.since(cursor);
        if batch.frames.is_empty() {
            return;
        }
        self.cursors.insert(id, batch.next);
        timelines
            .entry(id)
            .or_insert_with(|| StreamTimeline {
                user: log.user().to_owned(),
                epoch_unix_ms: log.epoch_unix_ms(),
                frames: VecDeque::new(),
            })
            .merge(batch.frames);
    }
}

impl Drop for Puller {
    fn drop(&mut self) {
        // Nobody reads them any more: back to one atomic load per packet.
        self.logs.set_enabled(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::frame_log::FrameOutcome;

    fn frame(index: u64) -> FrameRecord {
        FrameRecord {
            index,
            rtp_timestamp: index as u32 * 3000,
            first_seq: index as u16 * 2,
            last_seq: index as u16 * 2 + 1,
            packets: 2,
            bytes: 2400,
            keyframe: index == 0,
            first_arrival_us: index * 33_333,
            last_arrival_us: index * 33_333 + 500,
            outcome: FrameOutcome::Pending,
            decode_us: None,
            shown_us: None,
            freeze_ms: None,
            late_packets: 0,
            missing_inside: 0,
            gap_before: 0,
            packet_list: Vec::new(),
        }
    }

    #[test]
    fn a_pull_replaces_the_frames_that_could_change() {
        let mut t = StreamTimeline::default();
        t.merge((0..10).map(frame).collect());
        let mut settled = frame(8);
        settled.outcome = FrameOutcome::Decoded;
        t.merge(vec![settled.clone(), frame(9), frame(10)]);
        let indices: Vec<u64> = t.frames.iter().map(|f| f.index).collect();
        assert_eq!(indices, (0..=10).collect::<Vec<_>>());
        assert_eq!(t.frames[8], settled);
        t.merge((11..(FRAME_LOG_CAPACITY as u64 + 20)).map(frame).collect());
        assert_eq!(t.frames.len(), FRAME_LOG_CAPACITY);
        assert!(t.check().is_ok());
    }

    #[test]
    fn a_malformed_timeline_is_refused_with_the_frame_named() {
        let mut t = StreamTimeline::default();
        t.frames.extend([frame(3), frame(2)]);
        assert_eq!(t.check(), Err("frame 2 listed after frame 3".into()));
        let mut bad = frame(4);
        bad.last_arrival_us = 1;
        let mut t = StreamTimeline::default();
        t.frames.push_back(bad);
        assert!(
            t.check()
                .is_err_and(|e| e.contains("last packet before the first"))
        );
    }
}
