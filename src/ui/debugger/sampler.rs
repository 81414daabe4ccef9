//! Feeds the debugger from the SDK, once a second: the client's
//! [`StatsReport`] (the same figures `rtc-stats` and the `get…Stats` calls
//! give: there is no second stats path) and each link's selected ICE pair.
//!
//! A task on the runtime asks the SDK and hands each sample to the UI over a
//! bounded channel (the UI drains it each pass); it ends when the UI drops
//! its [`Sampler`].

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TrySendError};
use tokio::runtime::Handle;

use super::history::{History, Metric};
use crate::client::{Client, SelectedPair, StatsReport};

/// How often the SDK is asked.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// Samples waiting for the UI (sampler task → UI). When full (the window is
/// hidden and not drained), the newest sample is dropped: the plot gets a gap.
const SAMPLE_CAPACITY: usize = 8;
/// The selected pairs are asked for every this many samples.
const PAIR_EVERY: u64 = 5;

/// One sample.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Seconds since the sampler started.
    pub t: f64,
    /// The client's statistics.
    pub report: StatsReport,
    /// Selected ICE pair per stream (each stream has its own link), when
    /// asked this time.
    pub pairs: Option<Vec<(u64, SelectedPair)>>,
}

/// The running sampler; dropping it stops the task.
pub struct Sampler {
    rx: Receiver<Sample>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    /// Starts asking `client` every [`SAMPLE_INTERVAL`]; `wake` runs after
    /// each sample (the UI's repaint).
    pub fn start(rt: &Handle, client: Client, wake: impl Fn() + Send + 'static) -> Self {
        let (tx, rx) = crossbeam_channel::bounded(SAMPLE_CAPACITY);
        let task = rt.spawn(async move {
            let start = Instant::now();
            let mut tick = tokio::time::interval(SAMPLE_INTERVAL);
            for n in 0u64.. {
                tick.tick().await;
                let Ok(report) = client.stats_report().await else {
                    continue; // not in a room (yet, or any more)
                };
                let pairs = if n % PAIR_EVERY == 0 {
                    Some(selected_pairs(&client, &report).await)
                } else {
                    None
                };
                let sample = Sample {
                    t: start.elapsed().as_secs_f64(),
                    report,
                    pairs,
                };
                match tx.try_send(sample) {
                    Ok(()) => wake(),
                    Err(TrySendError::Full(_)) => {}
                    Err(TrySendError::Disconnected(_)) => break,
                }
            }
        });
        Self { rx, task }
    }

    /// Samples that arrived since the last call.
    pub fn drain(&self) -> impl Iterator<Item = Sample> + '_ {
        self.rx.try_iter()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn selected_pairs(client: &Client, report: &StatsReport) -> Vec<(u64, SelectedPair)> {
    let mut pairs = Vec::new();
    for id in stream_ids(report) {
        if let Ok(Some(pair)) = client.selected_pair(crate::protocol::StreamId(id)).await {
            pairs.push((id, pair));
        }
    }
    pairs
}

fn stream_ids(report: &StatsReport) -> Vec<u64> {
    let mut ids: Vec<u64> = report
        .local_video
        .values()
        .flat_map(|v| v.main_stream.iter().map(|s| s.stream_id))
        .chain(
            report
                .remote_video
                .values()
                .flat_map(|v| v.main_stream.iter().map(|s| s.stream_id)),
        )
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Scope of all links together.
pub const ALL_LINKS: &str = "all links";

/// Scope name of a sent video stream.
pub fn sent_video(stream_id: u64) -> String {
    format!("sent video #{stream_id}")
}

/// Scope name of a received video stream.
pub fn received_video(stream_id: u64, user: &str) -> String {
    format!("received video #{stream_id} ({user})")
}

/// Adds one report's figures to `history` at time `t`.
pub fn record(history: &mut History, t: f64, report: &StatsReport) {
    let tr = &report.transport;
    history.push(
        ALL_LINKS,
        Metric::Bitrate,
        t,
        tr.send_bitrate + tr.recv_bitrate,
    );
    if let Some(rtt) = tr.rtt {
        history.push(ALL_LINKS, Metric::Rtt, t, rtt);
    }
    if let Some(bwe) = tr.available_send_bandwidth {
        history.push(ALL_LINKS, Metric::BandwidthEstimate, t, bwe);
    }
    if let Some(target) = tr.target_bitrate {
        history.push(ALL_LINKS, Metric::TargetBitrate, t, target);
    }
    for all in report.local_video.values() {
        for v in all.main_stream.iter().chain(all.sub_stream.iter()) {
            let s = sent_video(v.stream_id);
            history.push(&s, Metric::Bitrate, t, v.bitrate);
            history.push(&s, Metric::TargetBitrate, t, v.target_bitrate);
            history.push(&s, Metric::FrameRate, t, v.frame_rate);
            history.push(&s, Metric::Width, t, f64::from(v.frame_width));
            history.push(&s, Metric::Height, t, f64::from(v.frame_height));
            if let Some(rtt) = v.rtt {
                history.push(&s, Metric::Rtt, t, rtt);
            }
            if let Some(jitter) = v.jitter {
                history.push(&s, Metric::Jitter, t, jitter);
            }
            history.push(&s, Metric::Loss, t, v.pkt_loss_rate * 100.0);
            history.push_counter(&s, Metric::Nacks, t, v.nack_count as f64);
            history.push_counter(&s, Metric::Plis, t, v.pli_count as f64);
            history.push_counter(&s, Metric::FramesDropped, t, v.frames_dropped as f64);
        }
    }
    for a in report.local_audio.values() {
        let s = "sent audio";
        history.push(s, Metric::Bitrate, t, a.bitrate);
        if let Some(rtt) = a.rtt {
            history.push(s, Metric::Rtt, t, rtt);
        }
        if let Some(jitter) = a.jitter {
            history.push(s, Metric::Jitter, t, jitter);
        }
        history.push(s, Metric::Loss, t, a.pkt_loss_rate * 100.0);
        history.push_counter(s, Metric::Nacks, t, a.nack_count as f64);
    }
    for (user, all) in &report.remote_video {
        for v in all.main_stream.iter().chain(all.sub_stream.iter()) {
            let s = received_video(v.stream_id, &user.0);
            history.push(&s, Metric::Bitrate, t, v.bitrate);
            history.push(&s, Metric::FrameRate, t, v.frame_rate);
            history.push(&s, Metric::Width, t, f64::from(v.frame_width));
            history.push(&s, Metric::Height, t, f64::from(v.frame_height));
            history.push(&s, Metric::Loss, t, v.pkt_loss_rate * 100.0);
            history.push(&s, Metric::Jitter, t, v.jitter);
            history.push_counter(&s, Metric::Nacks, t, v.nack_count as f64);
            history.push_counter(&s, Metric::Plis, t, v.pli_count as f64);
            history.push_counter(&s, Metric::Retransmissions, t, v.packets_repaired as f64);
            history.push_counter(&s, Metric::FramesDropped, t, v.frames_dropped as f64);
            history.push_counter(&s, Metric::Freezes, t, v.freeze_count as f64);
            history.push_ratio(
                &s,
                Metric::DecodeTime,
                t,
                ("decode_ms", v.total_decode_time_ms),
                ("decoded", v.frames_decoded as f64),
            );
            if let Some(ms) = v.glass_to_glass_ms {
                history.push(&s, Metric::GlassToGlass, t, ms);
            }
        }
    }
    for (user, a) in &report.remote_audio {
        let s = format!("received audio ({})", user.0);
        history.push(&s, Metric::Bitrate, t, a.bitrate);
        history.push(&s, Metric::Loss, t, a.pkt_loss_rate * 100.0);
        history.push(&s, Metric::Jitter, t, a.jitter);
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::client::{AllRemoteVideoStats, RemoteVideoStats};
    use crate::protocol::UserId;

    #[test]
    fn a_received_stream_gets_its_own_scope_with_rates_of_its_counters() {
        let mut history = History::default();
        for (t, nacks) in [(0.0, 5), (1.0, 9)] {
            let mut report = StatsReport::default();
            report.remote_video.insert(
                UserId("alice".into()),
                AllRemoteVideoStats {
                    main_stream: vec![RemoteVideoStats {
                        stream_id: 4,
                        bitrate: 800.0,
                        frame_rate: 15.0,
                        frame_width: 640,
                        frame_height: 360,
                        nack_count: nacks,
                        ..Default::default()
                    }],
                    sub_stream: None,
                },
            );
            record(&mut history, t, &report);
        }
        let scope = &history.scopes[&received_video(4, "alice")];
        assert_eq!(scope.series[&Metric::Height].last(), Some(360.0));
        assert_eq!(scope.series[&Metric::Bitrate].points().len(), 2);
        assert_eq!(scope.series[&Metric::Nacks].last(), Some(4.0));
        assert!(history.scopes.contains_key(ALL_LINKS));
    }
}
