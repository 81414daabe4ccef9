//! Receive-side statistics of one remote stream, as the bot prints them and the
//! UI shows them.
//!
//! Counters are updated by the RTP task and the decode thread, and read once a
//! second by whoever displays them, so they sit behind one short-held mutex. The
//! latency sample buffer is bounded ([`LATENCY_SAMPLES`]): percentiles describe the
//! most recent samples, and memory stays flat however long a stream runs.

use std::collections::VecDeque;
use std::time::Instant;

use serde::Serialize;

/// Most recent glass-to-glass samples kept for percentiles.
pub const LATENCY_SAMPLES: usize = 20_000;

/// Counters of one subscribed stream.
#[derive(Debug, Clone, Default)]
pub struct StreamStats {
    /// Video RTP packets received.
    pub video_packets: u64,
    /// Audio RTP packets received.
    pub audio_packets: u64,
    /// RTP payload + header bytes received, both media.
    pub bytes: u64,
    /// Packets missing from the sequence (both media), counted from gaps.
    pub packets_lost: u64,
    /// Video frames decoded.
    pub frames_decoded: u64,
    /// Video frames dropped before decoding (decoder behind, or a broken frame).
    pub frames_dropped: u64,
    /// Audio frames decoded (20 ms each).
    pub audio_frames_decoded: u64,
    /// Size of the last decoded frame.
    pub last_size: Option<(u32, u32)>,
    /// Frame number read back from the last decoded picture's stamp.
    pub last_frame_no: Option<u32>,
    /// Frames whose stamp went backwards or repeated (should stay 0).
    pub out_of_order_frames: u64,
    /// When the subscription was requested.
    pub subscribed_at: Option<Instant>,
    /// When the first frame was decoded.
    pub first_frame_at: Option<Instant>,
    /// Recent glass-to-glass latencies in microseconds (capture stamp → decoded).
    latencies_us: VecDeque<u64>,
}

/// Percentiles of recent glass-to-glass latency.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Samples the figures are computed from.
    pub samples: usize,
    /// Median, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
}

impl StreamStats {
    /// Records one decoded frame's glass-to-glass latency.
    pub fn record_latency(&mut self, latency_us: u64) {
        if self.latencies_us.len() == LATENCY_SAMPLES {
            self.latencies_us.pop_front();
        }
        self.latencies_us.push_back(latency_us);
    }

    /// Percentiles over the recorded samples, `None` before the first.
    pub fn latency(&self) -> Option<LatencySummary> {
        latency_summary(self.latencies_us.iter().copied())
    }

    /// Removes and returns the samples recorded so far (for interval reports).
    pub fn take_latencies(&mut self) -> Vec<u64> {
        self.latencies_us.drain(..).collect()
    }
}

/// Percentiles (nearest-rank) of a set of microsecond samples.
pub fn latency_summary(samples: impl IntoIterator<Item = u64>) -> Option<LatencySummary> {
    let mut sorted: Vec<u64> = samples.into_iter().collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_unstable();
    let pick = |q: f64| {
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted.get(rank - 1).copied().unwrap_or_default() as f64 / 1000.0
    };
    Some(LatencySummary {
        samples: sorted.len(),
        p50_ms: pick(0.50),
        p90_ms: pick(0.90),
        p99_ms: pick(0.99),
        max_ms: sorted.last().copied().unwrap_or_default() as f64 / 1000.0,
    })
}

/// Counts RTP sequence gaps for one SSRC, handling 16-bit wrap-around and
/// reordering (a late packet is not counted as a loss twice, nor as negative).
#[derive(Debug, Default, Clone)]
pub struct SequenceTracker {
    highest: Option<u16>,
}

impl SequenceTracker {
    /// Feeds one sequence number; returns how many packets it shows were skipped.
    pub fn push(&mut self, seq: u16) -> u64 {
        let Some(highest) = self.highest else {
            self.highest = Some(seq);
            return 0;
        };
        let delta = seq.wrapping_sub(highest);
        if delta == 0 || delta >= 0x8000 {
            // Duplicate or older than the highest seen: reordering, not loss.
            return 0;
        }
        self.highest = Some(seq);
        u64::from(delta - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_gaps_wrap_and_ignore_reordering() {
        let mut t = SequenceTracker::default();
        assert_eq!(t.push(65_534), 0);
        assert_eq!(t.push(65_535), 0);
        assert_eq!(t.push(2), 2); // 0 and 1 missing across the wrap
        assert_eq!(t.push(1), 0); // late arrival
        assert_eq!(t.push(3), 0);
        assert_eq!(t.push(3), 0);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let s = latency_summary((1..=100).map(|ms| ms * 1000)).unwrap();
        assert_eq!(s.samples, 100);
        assert_eq!(s.p50_ms, 50.0);
        assert_eq!(s.p90_ms, 90.0);
        assert_eq!(s.p99_ms, 99.0);
        assert_eq!(s.max_ms, 100.0);
        assert!(latency_summary(std::iter::empty()).is_none());
    }

    #[test]
    fn latency_buffer_is_bounded() {
        let mut stats = StreamStats::default();
        for i in 0..(LATENCY_SAMPLES as u64 + 10) {
            stats.record_latency(i);
        }
        assert_eq!(stats.latency().unwrap().samples, LATENCY_SAMPLES);
    }
}
