//! Network quality, the actor's side: every
//! [`NETWORK_QUALITY_INTERVAL`](crate::client::network_quality::NETWORK_QUALITY_INTERVAL)
//! it samples what its links measured since the last time and sends
//! [`RoomEvent::NetworkQuality`] (the grading is
//! [`crate::client::network_quality`]).
//!
//! * Uplink: over every publication, the worst of the server's RTCP receiver
//!   reports (loss in its last interval, RTT, jitter of audio when there is
//!   audio) and of the congestion estimate against what the stream wants.
//! * Downlink: over every subscription, the loss since the previous sample
//!   (from the RFC 3550 counts), the jitter of what arrives (audio when
//!   there is audio) and the link's ICE round trip.

use std::collections::BTreeMap;

use super::Session;
use crate::client::RoomEvent;
use crate::client::network_quality::{LinkSample, quality, window_loss};
use crate::protocol::StreamId;

/// What the previous sample saw of each subscription: cumulative (lost,
/// expected) over both media.
#[derive(Debug, Default)]
pub(super) struct QualityState {
    previous: BTreeMap<StreamId, (u64, u64)>,
}

/// The worst (largest) of two optional figures.
fn worst(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// The smallest of two optional figures.
fn least(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Session {
    /// One network-quality tick.
    pub(super) async fn emit_network_quality(&mut self) {
        let disconnected = self.reconnecting.is_some();
        let mut up = LinkSample {
            active: !self.publications.is_empty(),
            disconnected,
            ..LinkSample::default()
        };
        for p in self.publications.values() {
            let reports = p.link.rtcp_stats().all();
            let has_audio = reports.iter().any(|r| r.clock_rate == Some(48_000));
            for r in reports.iter().filter(|r| r.reports > 0) {
                up.loss = worst(up.loss, Some(r.fraction_lost));
                up.rtt_ms = worst(up.rtt_ms, r.rtt_ms);
                if !has_audio || r.clock_rate == Some(48_000) {
                    up.jitter_ms = worst(up.jitter_ms, r.jitter_ms);
                }
            }
            let send = p.pipeline.send_rate();
            let wanted = send
                .cap_bps
                .map_or(send.wanted_bps, |cap| cap.min(send.wanted_bps));
            if let Some(estimate) = send.estimate_bps
                && wanted > 0
            {
                let ratio = estimate / f64::from(wanted);
                up.estimate_ratio = least(up.estimate_ratio, Some(ratio));
            }
        }

        let mut down = LinkSample {
            disconnected,
            ..LinkSample::default()
        };
        let mut seen = BTreeMap::new();
        for (stream_id, s) in &self.subscriptions {
            let st = s.stream.stats();
            let (video, audio) = (st.video_reception, st.audio_reception);
            if video.received + audio.received == 0 {
                continue; // nothing arrived yet: says nothing about the path
            }
            down.active = true;
            let now = (video.lost + audio.lost, video.expected + audio.expected);
            let before = self
                .quality
                .previous
                .get(stream_id)
                .copied()
                .unwrap_or((0, 0));
            seen.insert(*stream_id, now);
            down.loss = worst(down.loss, window_loss(before, now));
            let jitter = if audio.received > 0 {
                audio.jitter_ms
            } else {
                video.jitter_ms
            };
            down.jitter_ms = worst(down.jitter_ms, Some(jitter));
            down.rtt_ms = worst(down.rtt_ms, s.link.counters().await.ice_rtt_ms);
        }
        self.quality.previous = seen;
        self.emit(RoomEvent::NetworkQuality {
            uplink: quality(&up),
            downlink: quality(&down),
        });
    }
}
