//! The seed's statistics, the actor's side: gathers every link's counters
//! and every pipeline's figures into a [`StatsReport`]
//! (`Client::get_*_stats`), and emits `rtc-stats` on its own tick while
//! [`crate::client::Client::enable_rtc_stats`] has it on.

use std::time::{Duration, Instant};

use super::Session;
use crate::client::RoomEvent;
use crate::client::rtc_stats::{
    AllLocalVideoStats, AllRemoteVideoStats, LocalAudioStats, LocalVideoStats, MediaType, MeterKey,
    Meters, RemoteAudioStats, RemoteVideoStats, RtcStatsInfo, StatsReport, merge_local_audio,
    merge_remote_audio,
};
use crate::link::rtcp_stats::RemoteReport;
use crate::protocol::UserId;

/// `rtc-stats` state of one client: off until enabled.
#[derive(Debug, Default)]
pub(super) struct RtcStatsState {
    /// The event's interval while on.
    pub(super) interval: Option<Duration>,
    /// Rates of every counter the reports show.
    meters: Meters,
}

/// Where a stream's own counters come from: the SFU's RTCP report about an
/// SSRC, matched to the outbound stream by SSRC.
fn report_for(reports: &[RemoteReport], ssrc: u32) -> Option<&RemoteReport> {
    reports.iter().find(|r| r.ssrc == ssrc)
}

impl Session {
    /// Turns `rtc-stats` on (`Some(interval)`) or off.
    pub(super) fn set_rtc_stats(&mut self, interval: Option<Duration>) {
        self.rtc_stats.interval = interval;
    }

    /// One `rtc-stats` tick: the event, while in a room.
    pub(super) async fn emit_rtc_stats(&mut self) {
        if self.identity.is_none() || self.reconnecting.is_some() {
            return;
        }
        let report = self.stats_report().await;
        self.emit(RoomEvent::RtcStats(report.rtc_stats));
    }

    /// Every statistic now.
    pub(super) async fn stats_report(&mut self) -> StatsReport {
        let now = Instant::now();
        let (me, my_name) = self
            .identity
            .as_ref()
            .map(|i| (i.me.user_id.clone(), i.me.user_name.clone()))
            .unwrap_or_else(|| (UserId(String::new()), String::new()));
        let mut report = StatsReport::default();
        let meters = &mut self.rtc_stats.meters;
        meters.retain_streams(|id, remote| {
            if remote {
                self.subscriptions.contains_key(&id)
            } else {
                self.publications.contains_key(&id)
            }
        });
        let mut rtts = Vec::new();
        let mut ice_rtt = None;
        let (mut estimate, mut target) = (None::<f64>, None::<f64>);
        let transport = &mut report.transport;

        for (stream_id, p) in &self.publications {
            let counters = p.link.counters().await;
            transport.bytes_sent += counters.bytes_sent;
            transport.bytes_received += counters.bytes_received;
            transport.packets_sent += counters.packets_sent;
            transport.packets_received += counters.packets_received;
            ice_rtt = ice_rtt.or(counters.ice_rtt_ms);
            let reports = p.link.rtcp_stats().all();
            rtts.extend(reports.iter().filter_map(|r| r.rtt_ms));
            let send = p.pipeline.send_rate();
            if let Some(e) = send.estimate_bps {
                *estimate.get_or_insert(0.0) += e / 1e3;
            }
            *target.get_or_insert(0.0) += f64::from(send.target_bps) / 1e3;
            for out in &counters.outbound {
                let remote = report_for(&reports, out.ssrc).copied().unwrap_or_default();
                let key = MeterKey::Stream {
                    stream_id: *stream_id,
                    remote: false,
                    video: out.video,
                };
                if out.video {
                    let (bitrate, frame_rate) =
                        meters.rate(key, p.published_at, now, out.bytes, send.frames_sent);
                    let stats = LocalVideoStats {
                        stream_id: stream_id.0,
                        bytes_sent: out.bytes,
                        packets_sent: out.packets,
                        frames_encoded: send.frames_encoded,
                        frames_sent: send.frames_sent,
                        frames_dropped: send.frames_decimated + send.frames_dropped_budget,
                        frame_width: send.width,
                        frame_height: send.height,
                        frame_rate,
                        bitrate,
                        target_bitrate: f64::from(send.video_target_bps) / 1e3,
                        packets_lost: i64::from(remote.total_lost),
                        pkt_loss_rate: remote.fraction_lost,
                        rtt: remote.rtt_ms,
                        jitter: remote.jitter_ms,
                        // Whichever counted them (the tap ends NACKs
                        // before the library's stats see them).
                        nack_count: out.nack_count.max(remote.nack_count),
                        pli_count: out.pli_count.max(remote.pli_count),
                    };
                    report.rtc_stats.push(RtcStatsInfo {
                        user_id: me.clone(),
                        user_name: my_name.clone(),
                        stream_id: stream_id.0,
                        is_remote: false,
                        stream_type: "main",
                        media_type: MediaType::Video,
                        bitrate,
                        frame_rate,
                        rtt: remote.rtt_ms,
                        jitter: remote.jitter_ms,
                        pkt_loss_rate: remote.fraction_lost,
                    });
                    report
                        .local_video
                        .entry(me.clone())
                        .or_insert_with(AllLocalVideoStats::default)
                        .main_stream
                        .push(stats);
                } else {
                    let (bitrate, _) = meters.rate(key, p.published_at, now, out.bytes, 0);
                    let stats = LocalAudioStats {
                        bytes_sent: out.bytes,
                        packets_sent: out.packets,
                        bitrate,
                        packets_lost: i64::from(remote.total_lost),
                        pkt_loss_rate: remote.fraction_lost,
                        rtt: remote.rtt_ms,
                        jitter: remote.jitter_ms,
                        nack_count: out.nack_count.max(remote.nack_count),
                    };
                    report.rtc_stats.push(RtcStatsInfo {
                        user_id: me.clone(),
                        user_name: my_name.clone(),
                        stream_id: stream_id.0,
                        is_remote: false,
                        stream_type: "main",
                        media_type: MediaType::Audio,
                        bitrate,
                        frame_rate: 0.0,
                        rtt: remote.rtt_ms,
                        jitter: remote.jitter_ms,
                        pkt_loss_rate: remote.fraction_lost,
                    });
                    match report.local_audio.get_mut(&me) {
                        Some(entry) => merge_local_audio(entry, &stats),
                        None => {
                            report.local_audio.insert(me.clone(), stats);
                        }
                    }
                }
            }
        }

        for (stream_id, s) in &self.subscriptions {
            let counters = s.link.counters().await;
            let rtx = s.link.rtx_count();
            transport.bytes_sent += counters.bytes_sent;
            transport.bytes_received += counters.bytes_received;
            transport.packets_sent += counters.packets_sent;
            transport.packets_received += counters.packets_received;
            ice_rtt = ice_rtt.or(counters.ice_rtt_ms);
            let st = s.stream.stats();
            let start = st.subscribed_at.unwrap_or(now);
            let user = s.stream.info.user_id.clone();
            let user_name = self
                .users
                .get(&user)
                .map(|u| u.user_name.clone())
                .unwrap_or_default();
            let nacks = |video: bool| {
                counters
                    .inbound
                    .iter()
                    .filter(|c| c.video == video)
                    .map(|c| c.nack_count)
                    .sum::<u64>()
            };
            if st.video_packets > 0 {
                let key = MeterKey::Stream {
                    stream_id: *stream_id,
                    remote: true,
                    video: true,
                };
                let frames = if self.decode { st.frames_decoded } else { 0 };
                let (bitrate, frame_rate) = meters.rate(key, start, now, st.video_bytes, frames);
                let reception = st.video_reception;
                let (width, height) = st.last_size.unwrap_or((0, 0));
                let stats = RemoteVideoStats {
                    stream_id: stream_id.0,
                    bytes_received: st.video_bytes,
                    packets_received: st.video_packets,
                    packets_lost: reception.lost,
                    pkt_loss_rate: reception.loss_fraction,
                    frames_decoded: st.frames_decoded,
                    frames_dropped: st.frames_dropped,
                    frame_width: width,
                    frame_height: height,
                    frame_rate,
                    bitrate,
                    jitter: reception.jitter_ms,
                    nack_count: nacks(true),
                    pli_count: st.keyframe_requests,
                    freeze_count: st.freezes.count,
                    packets_repaired: st.video_repaired,
                    rtx_packets_received: rtx.repaired,
                    rtx_packets_dropped: rtx.dropped(),
                    total_decode_time_ms: st.decode_time_us as f64 / 1e3,
                    glass_to_glass_ms: st.last_latency_us.map(|us| us as f64 / 1e3),
                };
                report.rtc_stats.push(RtcStatsInfo {
                    user_id: user.clone(),
                    user_name: user_name.clone(),
                    stream_id: stream_id.0,
                    is_remote: true,
                    stream_type: "main",
                    media_type: MediaType::Video,
                    bitrate,
                    frame_rate,
                    rtt: None,
                    jitter: Some(reception.jitter_ms),
                    pkt_loss_rate: reception.loss_fraction,
                });
                report
                    .remote_video
                    .entry(user.clone())
                    .or_insert_with(AllRemoteVideoStats::default)
                    .main_stream
                    .push(stats);
            }
            if st.audio_packets > 0 {
                let key = MeterKey::Stream {
                    stream_id: *stream_id,
                    remote: true,
                    video: false,
                };
                let (bitrate, _) = meters.rate(key, start, now, st.audio_bytes, 0);
                let reception = st.audio_reception;
                let stats = RemoteAudioStats {
                    bytes_received: st.audio_bytes,
                    packets_received: st.audio_packets,
                    packets_lost: reception.lost,
                    pkt_loss_rate: reception.loss_fraction,
                    jitter: reception.jitter_ms,
                    bitrate,
                };
                report.rtc_stats.push(RtcStatsInfo {
                    user_id: user.clone(),
                    user_name,
                    stream_id: stream_id.0,
                    is_remote: true,
                    stream_type: "main",
                    media_type: MediaType::Audio,
                    bitrate,
                    frame_rate: 0.0,
                    rtt: None,
                    jitter: Some(reception.jitter_ms),
                    pkt_loss_rate: reception.loss_fraction,
                });
                match report.remote_audio.get_mut(&user) {
                    Some(entry) => merge_remote_audio(entry, &stats),
                    None => {
                        report.remote_audio.insert(user, stats);
                    }
                }
            }
        }

        // The transport's counters start with the oldest link.
        let joined = self
            .publications
            .values()
            .map(|p| p.published_at)
            .chain(
                self.subscriptions
                    .values()
                    .filter_map(|s| s.stream.stats().subscribed_at),
            )
            .min()
            .unwrap_or(now);
        let (send_bitrate, _) = meters.rate(
            MeterKey::TransportSent,
            joined,
            now,
            transport.bytes_sent,
            0,
        );
        let (recv_bitrate, _) = meters.rate(
            MeterKey::TransportReceived,
            joined,
            now,
            transport.bytes_received,
            0,
        );
        transport.send_bitrate = send_bitrate;
        transport.recv_bitrate = recv_bitrate;
        transport.rtt = if rtts.is_empty() {
            ice_rtt
        } else {
            Some(rtts.iter().sum::<f64>() / rtts.len() as f64)
        };
        transport.available_send_bandwidth = estimate;
        transport.target_bitrate = target;
        report
    }
}

/// The `rtc-stats` timer: follows the configured interval, and never fires
/// while it is off.
#[derive(Default)]
pub(super) struct RtcStatsTick {
    current: Option<(Duration, tokio::time::Interval)>,
}

impl RtcStatsTick {
    /// Starts, restarts or stops the timer when `interval` differs from the
    /// one it runs at. The first event comes one interval after enabling.
    pub(super) fn follow(&mut self, interval: Option<Duration>) {
        if self.current.as_ref().map(|(d, _)| *d) == interval {
            return;
        }
        self.current = interval.map(|d| {
            let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + d, d);
            // A slow actor skips ticks rather than bursting to catch up.
            timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            (d, timer)
        });
    }

    /// Completes at the next tick; pending forever while off.
    pub(super) async fn tick(&mut self) {
        match &mut self.current {
            Some((_, timer)) => {
                timer.tick().await;
            }
            None => std::future::pending().await,
        }
    }
}
