//! Turns a stream's cumulative counters into the per-second figures a tile shows.

use std::time::{Duration, Instant};

use crate::client::StreamStats;

use super::widgets::NetMark;

/// How often the figures are recomputed.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// Keeps the previous counters.
#[derive(Debug)]
pub struct NetSampler {
    at: Instant,
    frames: u64,
    packets: u64,
    lost: u64,
    mark: Option<NetMark>,
}

impl Default for NetSampler {
    fn default() -> Self {
        Self {
            at: Instant::now(),
            frames: 0,
            packets: 0,
            lost: 0,
            mark: None,
        }
    }
}

impl NetSampler {
    /// Feeds the stats (call every frame; cheap between samples). Returns the
    /// latest mark.
    pub fn update(&mut self, now: Instant, stats: impl FnOnce() -> StreamStats) -> Option<NetMark> {
        let dt = now.saturating_duration_since(self.at);
        if dt < SAMPLE_EVERY {
            return self.mark;
        }
        let s = stats();
        let packets = s.video_packets + s.audio_packets;
        let (df, dp, dl) = (
            s.frames_decoded.saturating_sub(self.frames),
            packets.saturating_sub(self.packets),
            s.packets_lost.saturating_sub(self.lost),
        );
        let first = self.packets == 0 && self.frames == 0;
        self.at = now;
        self.frames = s.frames_decoded;
        self.packets = packets;
        self.lost = s.packets_lost;
        if !first {
            self.mark = Some(NetMark::receive(
                df as f32 / dt.as_secs_f32(),
                if dp + dl == 0 {
                    0.0
                } else {
                    100.0 * dl as f32 / (dp + dl) as f32
                },
            ));
        }
        self.mark
    }
}
