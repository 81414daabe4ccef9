//! Receive-side statistics of one remote stream, as the bot prints them and the
//! UI shows them.
//!
//! Counters are updated by the RTP task and the decode thread, and read once a
//! second by whoever displays them, so they sit behind one short-held mutex. The
//! latency sample buffer is bounded ([`LATENCY_SAMPLES`]): percentiles describe the
//! most recent samples, and memory stays flat however long a stream runs.
//!
//! Loss and interarrival jitter of what is received are computed here, per
//! RFC 3550 appendix A.3 and A.8, from the RTP sequence numbers and timestamps
//! ([`ReceptionTracker`]): webrtc 0.21.1 does not fill them in its stats.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

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
    /// The video share of `bytes`.
    pub video_bytes: u64,
    /// The audio share of `bytes`.
    pub audio_bytes: u64,
    /// Packets missing from the sequence (both media), counted from gaps.
    pub packets_lost: u64,
    /// Video frames decoded.
    pub frames_decoded: u64,
    /// Video frames dropped before decoding (decoder behind, or a broken frame).
    pub frames_dropped: u64,
    /// Audio frames decoded (20 ms each), recovered and concealed ones included.
    pub audio_frames_decoded: u64,
    /// Lost audio frames rebuilt from the next packet's in-band FEC data.
    pub audio_frames_recovered: u64,
    /// Lost audio frames concealed (no FEC data to rebuild them from).
    pub audio_frames_concealed: u64,
    /// Size of the last decoded frame.
    pub last_size: Option<(u32, u32)>,
    /// Frame number read back from the last decoded picture's stamp.
    pub last_frame_no: Option<u32>,
    /// Frames whose stamp went backwards or repeated (should stay 0).
    pub out_of_order_frames: u64,
    /// Loss and jitter of the video RTP received (RFC 3550 A.3/A.8).
    pub video_reception: ReceptionReport,
    /// Loss and jitter of the audio RTP received.
    pub audio_reception: ReceptionReport,
    /// When the subscription was requested.
    pub subscribed_at: Option<Instant>,
    /// When the first frame was decoded.
    pub first_frame_at: Option<Instant>,
    /// Keyframe requests (PLI) this subscriber sent.
    pub keyframe_requests: u64,
    /// Video packets that filled a gap late (NACK repairs, reordering).
    pub video_repaired: u64,
    /// Video packets the reorder buffer gave up waiting for.
    pub video_given_up: u64,
    /// Of those, packets that came after all (later than the wait).
    pub video_late: u64,
    /// Video freezes (pauses between decoded frames), as WebRTC counts them.
    pub freezes: FreezeTracker,
    /// Time spent in the video decoder so far, µs (WebRTC `totalDecodeTime`).
    pub decode_time_us: u64,
    /// The last decoded frame's glass-to-glass latency, µs (stamped streams).
    pub last_latency_us: Option<u64>,
    /// The video playout delay now, ms (`client::playout`: absorbs repairs).
    pub playout_delay_ms: f64,
    /// Recent glass-to-glass latencies in microseconds (capture stamp → decoded).
    latencies_us: VecDeque<u64>,
}

/// Video freezes as the WebRTC stats define them (`freezeCount`,
/// `totalFreezesDuration`): a gap between two decoded frames longer than
/// max(3 × the average gap, average + 150 ms). The average is an exponential
/// mean over the recent gaps, so a stream at any frame rate is judged by its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct FreezeTracker {
    /// Freezes so far.
    pub count: u64,
    /// Their total duration, ms.
    pub total_ms: f64,
    /// The longest, ms.
    pub longest_ms: f64,
    #[serde(skip)]
    last_frame_at: Option<Instant>,
    /// Exponential mean of the gaps between decoded frames, ms.
    #[serde(skip)]
    mean_gap_ms: Option<f64>,
}

impl FreezeTracker {
    /// Records a frame decoded at `now`.
    pub fn on_frame(&mut self, now: Instant) {
        if let Some(last) = self.last_frame_at {
            let gap = now.saturating_duration_since(last).as_secs_f64() * 1e3;
            let mean = self.mean_gap_ms.unwrap_or(gap);
            if self.mean_gap_ms.is_some() && gap > (3.0 * mean).max(mean + 150.0) {
                self.count += 1;
                self.total_ms += gap;
                self.longest_ms = self.longest_ms.max(gap);
            } else {
                // Freezes stay out of the mean: it describes the smooth rate.
                self.mean_gap_ms = Some(mean + (gap - mean) / 16.0);
            }
        }
        self.last_frame_at = Some(now);
    }
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
        self.last_latency_us = Some(latency_us);
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

#[cfg(test)]
mod freeze_tests {
    use super::*;

    #[test]
    fn a_long_gap_is_a_freeze_and_steady_frames_are_not() {
        let t0 = Instant::now();
        let mut f = FreezeTracker::default();
        let mut at = t0;
        for _ in 0..30 {
            at += Duration::from_millis(33);
            f.on_frame(at);
        }
        assert_eq!(f.count, 0);
        at += Duration::from_millis(500);
        f.on_frame(at);
        at += Duration::from_millis(33);
        f.on_frame(at);
        assert_eq!(f.count, 1);
        assert!((f.total_ms - 500.0).abs() < 1.0, "{}", f.total_ms);
        assert!((f.longest_ms - 500.0).abs() < 1.0);
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

/// Reception quality of one RTP stream as its receiver sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ReceptionReport {
    /// Packets received (duplicates included, as RFC 3550 counts them).
    pub received: u64,
    /// Packets expected: highest extended sequence number − first + 1.
    pub expected: u64,
    /// Cumulative loss: expected − received, floored at 0.
    pub lost: u64,
    /// `lost / expected` (0 before anything was expected).
    pub loss_fraction: f64,
    /// Interarrival jitter (RFC 3550 A.8), milliseconds.
    pub jitter_ms: f64,
}

/// Computes RFC 3550 loss (A.3) and interarrival jitter (A.8) for one SSRC.
#[derive(Debug, Clone)]
pub struct ReceptionTracker {
    clock_rate: u32,
    origin: Instant,
    /// First extended sequence number.
    base: Option<u64>,
    /// Highest extended sequence number (cycles << 16 | seq).
    max_ext: u64,
    received: u64,
    /// Previous transit time, in RTP clock units.
    last_transit: Option<i64>,
    /// Jitter estimate in RTP clock units, scaled by 16 (A.8's integer form).
    jitter_x16: i64,
}

impl ReceptionTracker {
    /// A tracker for a stream with the given RTP clock rate (Hz).
    pub fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate: clock_rate.max(1),
            origin: Instant::now(),
            base: None,
            max_ext: 0,
            received: 0,
            last_transit: None,
            jitter_x16: 0,
        }
    }

    /// Feeds one packet that arrived now.
    pub fn push(&mut self, seq: u16, rtp_timestamp: u32) {
        self.push_at(seq, rtp_timestamp, self.origin.elapsed());
    }

    /// Feeds one packet that arrived `arrival` after the tracker was created.
    pub fn push_at(&mut self, seq: u16, rtp_timestamp: u32, arrival: Duration) {
        self.received += 1;
        match self.base {
            None => {
                self.base = Some(u64::from(seq));
                self.max_ext = u64::from(seq);
            }
            Some(_) => {
                let max_seq = (self.max_ext & 0xffff) as u16;
                let delta = seq.wrapping_sub(max_seq);
                if delta != 0 && delta < 0x8000 {
                    // Ahead of the highest seen (possibly across a wrap).
                    self.max_ext += u64::from(delta);
                }
            }
        }
        let arrival_units = (arrival.as_secs_f64() * f64::from(self.clock_rate)) as i64;
        // Transit modulo 2^32: the RTP timestamp wraps, and only differences count.
        let transit = arrival_units.wrapping_sub(i64::from(rtp_timestamp));
        if let Some(last) = self.last_transit {
            let d = i64::from((transit.wrapping_sub(last)) as i32).abs();
            self.jitter_x16 += d - ((self.jitter_x16 + 8) >> 4);
        }
        self.last_transit = Some(transit);
    }

    /// The figures so far.
    pub fn report(&self) -> ReceptionReport {
        let expected = self.base.map_or(0, |base| self.max_ext - base + 1);
        let lost = expected.saturating_sub(self.received);
        ReceptionReport {
            received: self.received,
            expected,
            lost,
            loss_fraction: if expected == 0 {
                0.0
            } else {
                lost as f64 / expected as f64
            },
            jitter_ms: (self.jitter_x16 >> 4) as f64 * 1000.0 / f64::from(self.clock_rate),
        }
    }
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
    fn reception_counts_loss_across_wrap() {
        let mut t = ReceptionTracker::new(90_000);
        // 65530..=65535, 0..=9 minus every 4th packet: 16 expected, 4 lost.
        let seqs: Vec<u16> = (65_530u16..=65_535).chain(0..10).collect();
        for (i, &seq) in seqs.iter().enumerate() {
            if i % 4 != 1 {
                t.push_at(seq, i as u32 * 3000, Duration::from_millis(i as u64 * 33));
            }
        }
        let r = t.report();
        assert_eq!((r.expected, r.received, r.lost), (16, 12, 4));
        assert!((r.loss_fraction - 0.25).abs() < 1e-9);
    }

    #[test]
    fn jitter_zero_when_paced_and_tracks_alternating_delay() {
        let mut t = ReceptionTracker::new(90_000);
        for i in 0..200u32 {
            t.push_at(
                i as u16,
                i * 3000,
                Duration::from_micros(u64::from(i) * 33_333),
            );
        }
        assert!(t.report().jitter_ms < 0.1, "{:?}", t.report());
        // Every other packet 10 ms late: |D| = 10 ms each step, J converges to 10 ms.
        let mut t = ReceptionTracker::new(90_000);
        for i in 0..400u32 {
            let late = if i % 2 == 1 { 10_000 } else { 0 };
            t.push_at(
                i as u16,
                i * 3000,
                Duration::from_micros(u64::from(i) * 33_333 + late),
            );
        }
        let j = t.report().jitter_ms;
        assert!((j - 10.0).abs() < 0.5, "{j}");
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
