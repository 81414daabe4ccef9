//! The seed's statistics (seed 001 `getTransportStats`, `getLocalAudioStats`,
//! `getLocalVideoStats`, `getRemoteAudioStats`, `getRemoteVideoStats`,
//! `enableRtcStats`, `rtc-stats`), with the seed's field names.
//!
//! Every figure comes from a real counter: what webrtc-rs counts per RTP
//! stream and per transport (`get_stats`: packets, bytes, NACK and PLI
//! counts), what the SFU reports back in RTCP receiver reports (RTT, loss,
//! jitter: [`crate::link::rtcp_stats`]), what the subscription's RTP task and
//! decoder count ([`super::stats::StreamStats`]) and what congestion control
//! decided ([`super::congestion::SendRateStats`]: estimate, target, the rung
//! the encoder runs at, frames encoded and sent). The session gathers them
//! (`session/stats.rs`); this module holds the types and the pure arithmetic.
//!
//! Units, as the seed gives them: bytes, packets, bit rates in kbit/s, frame
//! rates in frames/s, RTT and jitter in ms, loss rates as a fraction 0..1.
//!
//! Rates (bit rate, frame rate) are differences of counters over time. Each
//! stream has a [`RateMeter`] that keeps its previous sample: a rate is taken
//! over at least [`MIN_RATE_WINDOW`] (a query sooner than that returns the
//! rate of the last full window), so the figures do not depend on how often
//! an application asks.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::protocol::{StreamId, UserId};

/// Shortest and longest `rtc-stats` interval
/// ([`super::Client::enable_rtc_stats`]). Outside it the call fails with
/// 90000005 (`INVALID_PARAMETER`).
pub const RTC_STATS_INTERVAL_RANGE: RangeInclusive<Duration> =
    Duration::from_millis(200)..=Duration::from_secs(60);

/// Rates are taken over at least this long.
pub const MIN_RATE_WINDOW: Duration = Duration::from_millis(500);

/// Network transmission statistics of the client (seed `TransportStats`),
/// over all its media links.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransportStats {
    /// Bytes sent on every link (media, RTCP, ICE, DTLS).
    pub bytes_sent: u64,
    /// Bytes received on every link.
    pub bytes_received: u64,
    /// Datagrams sent.
    pub packets_sent: u64,
    /// Datagrams received.
    pub packets_received: u64,
    /// Output bit rate, kbit/s.
    pub send_bitrate: f64,
    /// Input bit rate, kbit/s.
    pub recv_bitrate: f64,
    /// Round-trip time to the server, ms: from RTCP sender/receiver reports
    /// of what this client publishes, else from ICE's consent checks.
    /// `None` before either has measured one.
    pub rtt: Option<f64>,
    /// The uplink estimate (GCC over TWCC feedback), kbit/s, summed over
    /// publications; `None` without one.
    pub available_send_bandwidth: Option<f64>,
    /// What the encoders target, kbit/s, summed over publications.
    pub target_bitrate: Option<f64>,
}

/// Statistics of local audio that has been sent (seed `LocalAudioStats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalAudioStats {
    /// RTP bytes sent (payload).
    pub bytes_sent: u64,
    /// RTP packets sent.
    pub packets_sent: u64,
    /// Sent bit rate, kbit/s.
    pub bitrate: f64,
    /// Packets the server reports lost (RTCP RR cumulative).
    pub packets_lost: i64,
    /// Loss rate the server reports for its last report interval, 0..1.
    pub pkt_loss_rate: f64,
    /// RTT from RTCP, ms.
    pub rtt: Option<f64>,
    /// Interarrival jitter the server measures, ms.
    pub jitter: Option<f64>,
    /// NACKs received.
    pub nack_count: u64,
}

/// Statistics of one sent video stream (seed `LocalVideoStats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalVideoStats {
    /// The published stream.
    pub stream_id: u64,
    /// RTP bytes sent (payload).
    pub bytes_sent: u64,
    /// RTP packets sent.
    pub packets_sent: u64,
    /// Frames the encoder produced.
    pub frames_encoded: u64,
    /// Encoded frames handed to the link.
    pub frames_sent: u64,
    /// Frames left out before encoding (frame-rate rung, bit budget).
    pub frames_dropped: u64,
    /// Width the encoder runs at now.
    pub frame_width: u32,
    /// Height the encoder runs at now.
    pub frame_height: u32,
    /// Sent frame rate, frames/s.
    pub frame_rate: f64,
    /// Sent bit rate, kbit/s.
    pub bitrate: f64,
    /// What the video encoder targets now, kbit/s.
    pub target_bitrate: f64,
    /// Packets the server reports lost (RTCP RR cumulative).
    pub packets_lost: i64,
    /// Loss rate the server reports for its last report interval, 0..1.
    pub pkt_loss_rate: f64,
    /// RTT from RTCP, ms.
    pub rtt: Option<f64>,
    /// Interarrival jitter the server measures, ms.
    pub jitter: Option<f64>,
    /// NACKs received.
    pub nack_count: u64,
    /// Keyframe requests (PLI) received.
    pub pli_count: u64,
}

/// Local video statistics of one user (seed `AllLocalVideoStats`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AllLocalVideoStats {
    /// Every published camera stream.
    pub main_stream: Vec<LocalVideoStats>,
    /// The screen share (huddle publishes none yet: always `None`).
    pub sub_stream: Option<LocalVideoStats>,
}

/// Statistics of received audio (seed `RemoteAudioStats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteAudioStats {
    /// RTP bytes received (payload + 12-byte header).
    pub bytes_received: u64,
    /// RTP packets received.
    pub packets_received: u64,
    /// Packets missing from the sequence (RFC 3550 A.3).
    pub packets_lost: u64,
    /// `packetsLost` over the packets expected, 0..1.
    pub pkt_loss_rate: f64,
    /// Interarrival jitter (RFC 3550 A.8), ms.
    pub jitter: f64,
    /// Received bit rate, kbit/s.
    pub bitrate: f64,
}

/// Statistics of one received video stream (seed `RemoteVideoStats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteVideoStats {
    /// The subscribed stream.
    pub stream_id: u64,
    /// RTP bytes received (payload + 12-byte header).
    pub bytes_received: u64,
    /// RTP packets received.
    pub packets_received: u64,
    /// Packets missing from the sequence (RFC 3550 A.3).
    pub packets_lost: u64,
    /// `packetsLost` over the packets expected, 0..1.
    pub pkt_loss_rate: f64,
    /// Frames decoded.
    pub frames_decoded: u64,
    /// Frames dropped before decoding.
    pub frames_dropped: u64,
    /// Width of the last decoded frame.
    pub frame_width: u32,
    /// Height of the last decoded frame.
    pub frame_height: u32,
    /// Decoded frame rate, frames/s.
    pub frame_rate: f64,
    /// Received bit rate, kbit/s.
    pub bitrate: f64,
    /// Interarrival jitter (RFC 3550 A.8), ms.
    pub jitter: f64,
    /// NACKs sent.
    pub nack_count: u64,
    /// Keyframe requests (PLI) sent.
    pub pli_count: u64,
    /// Video freezes so far.
    pub freeze_count: u64,
    /// Packets that filled a gap late (NACK retransmissions, reordering).
    pub packets_repaired: u64,
    /// RTX packets (RFC 4588 retransmissions on their own stream) that
    /// repaired a missing packet.
    pub rtx_packets_received: u64,
    /// RTX packets dropped: malformed, padding probes, or repairing nothing
    /// missing (duplicates).
    pub rtx_packets_dropped: u64,
    /// Time spent decoding so far, ms (WebRTC `totalDecodeTime`).
    pub total_decode_time_ms: f64,
    /// Glass-to-glass latency of the last decoded frame, ms, for streams
    /// carrying huddle's stamped test pattern; `None` otherwise.
    pub glass_to_glass_ms: Option<f64>,
}

/// Remote video statistics of one user (seed `AllRemoteVideoStats`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AllRemoteVideoStats {
    /// Every subscribed camera stream of the user.
    pub main_stream: Vec<RemoteVideoStats>,
    /// The user's screen share (none yet: always `None`).
    pub sub_stream: Option<RemoteVideoStats>,
}

/// Audio or video (seed `MediaType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaType {
    /// Audio.
    Audio,
    /// Video.
    Video,
}

/// One entry of the `rtc-stats` event (seed `rtcStatsInfo`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RtcStatsInfo {
    /// The stream's user.
    pub user_id: UserId,
    /// Its display name.
    pub user_name: String,
    /// The stream.
    pub stream_id: u64,
    /// Received (`true`) or sent (`false`).
    pub is_remote: bool,
    /// The seed's `ContentType`: `main` for a camera stream (huddle has no
    /// other kind yet).
    pub stream_type: &'static str,
    /// Audio or video.
    pub media_type: MediaType,
    /// kbit/s.
    pub bitrate: f64,
    /// frames/s (0 for audio).
    pub frame_rate: f64,
    /// RTT to the server, ms; only local streams have one (seed).
    pub rtt: Option<f64>,
    /// Jitter, ms (for a local stream, as the server measures it).
    pub jitter: Option<f64>,
    /// Loss rate, 0..1 (for a local stream, as the server reports it).
    pub pkt_loss_rate: f64,
}

/// All the statistics at one instant: what the five `get…Stats` calls
/// return, gathered once.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsReport {
    /// `getTransportStats`.
    pub transport: TransportStats,
    /// `getLocalAudioStats`, by user id (this client's own).
    pub local_audio: BTreeMap<UserId, LocalAudioStats>,
    /// `getLocalVideoStats`, by user id.
    pub local_video: BTreeMap<UserId, AllLocalVideoStats>,
    /// `getRemoteAudioStats`, by publisher.
    pub remote_audio: BTreeMap<UserId, RemoteAudioStats>,
    /// `getRemoteVideoStats`, by publisher.
    pub remote_video: BTreeMap<UserId, AllRemoteVideoStats>,
    /// The `rtc-stats` entries, one per stream and medium.
    pub rtc_stats: Vec<RtcStatsInfo>,
}

/// Adds `b` into `a`: one user with several audio streams gets one entry
/// (the seed's map has one per user). Counters and bit rates add up, the loss
/// rate is recomputed from the sums, jitter is the worst.
pub fn merge_remote_audio(a: &mut RemoteAudioStats, b: &RemoteAudioStats) {
    let expected = |s: &RemoteAudioStats| s.packets_received + s.packets_lost;
    let total = expected(a) + expected(b);
    a.bytes_received += b.bytes_received;
    a.packets_received += b.packets_received;
    a.packets_lost += b.packets_lost;
    a.pkt_loss_rate = if total == 0 {
        0.0
    } else {
        a.packets_lost as f64 / total as f64
    };
    a.jitter = a.jitter.max(b.jitter);
    a.bitrate += b.bitrate;
}

/// Adds `b` into `a` (several published streams with audio).
pub fn merge_local_audio(a: &mut LocalAudioStats, b: &LocalAudioStats) {
    a.bytes_sent += b.bytes_sent;
    a.packets_sent += b.packets_sent;
    a.bitrate += b.bitrate;
    a.packets_lost += b.packets_lost;
    a.pkt_loss_rate = a.pkt_loss_rate.max(b.pkt_loss_rate);
    a.rtt = max_option(a.rtt, b.rtt);
    a.jitter = max_option(a.jitter, b.jitter);
    a.nack_count += b.nack_count;
}

fn max_option(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Which counter a [`RateMeter`] follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MeterKey {
    /// Bytes of every link, sent.
    TransportSent,
    /// Bytes of every link, received.
    TransportReceived,
    /// One stream's medium; `remote` for a subscription.
    Stream {
        /// The stream.
        stream_id: StreamId,
        /// Received rather than sent.
        remote: bool,
        /// Video rather than audio.
        video: bool,
    },
}

/// Bit rate and frame rate of one counter pair, over windows of at least
/// [`MIN_RATE_WINDOW`].
#[derive(Debug, Clone, Copy)]
pub struct RateMeter {
    at: Instant,
    bytes: u64,
    frames: u64,
    kbps: f64,
    fps: f64,
}

impl RateMeter {
    /// A meter whose counters were `bytes` and `frames` at `at` (a stream's
    /// start: zero).
    pub fn new(at: Instant, bytes: u64, frames: u64) -> Self {
        Self {
            at,
            bytes,
            frames,
            kbps: 0.0,
            fps: 0.0,
        }
    }

    /// The counters are `bytes` and `frames` at `now`: returns (kbit/s,
    /// frames/s) over the window since the previous sample, or the previous
    /// window's rates while the current one is shorter than
    /// [`MIN_RATE_WINDOW`]. A counter that went backwards (a stream restarted)
    /// starts a new window.
    pub fn update(&mut self, now: Instant, bytes: u64, frames: u64) -> (f64, f64) {
        let elapsed = now.saturating_duration_since(self.at);
        if bytes < self.bytes || frames < self.frames {
            *self = Self::new(now, bytes, frames);
            return (0.0, 0.0);
        }
        if elapsed >= MIN_RATE_WINDOW {
            let secs = elapsed.as_secs_f64();
            self.kbps = (bytes - self.bytes) as f64 * 8.0 / 1000.0 / secs;
            self.fps = (frames - self.frames) as f64 / secs;
            self.at = now;
            self.bytes = bytes;
            self.frames = frames;
        }
        (self.kbps, self.fps)
    }
}

/// Every meter of a client, by what it follows.
#[derive(Debug, Default)]
pub struct Meters(BTreeMap<MeterKey, RateMeter>);

impl Meters {
    /// Rates of `key`'s counters at `now`; a new meter starts at `start` with
    /// zero counters.
    pub fn rate(
        &mut self,
        key: MeterKey,
        start: Instant,
        now: Instant,
        bytes: u64,
        frames: u64,
    ) -> (f64, f64) {
        self.0
            .entry(key)
            .or_insert_with(|| RateMeter::new(start, 0, 0))
            .update(now, bytes, frames)
    }

    /// Forgets the meters of streams that are gone.
    pub fn retain_streams(&mut self, live: impl Fn(StreamId, bool) -> bool) {
        self.0.retain(|key, _| match key {
            MeterKey::Stream {
                stream_id, remote, ..
            } => live(*stream_id, *remote),
            _ => true,
        });
    }
}

/// Checks an `enableRtcStats` interval.
pub fn check_interval(interval: Duration) -> Result<Duration, String> {
    if RTC_STATS_INTERVAL_RANGE.contains(&interval) {
        Ok(interval)
    } else {
        Err(format!(
            "rtc-stats interval {interval:?} is outside {:?}..={:?}",
            RTC_STATS_INTERVAL_RANGE.start(),
            RTC_STATS_INTERVAL_RANGE.end()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_use_windows_of_at_least_half_a_second() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(t0, 0, 0);
        // 125 000 bytes and 30 frames in 1 s: 1000 kbit/s, 30 fps.
        let (kbps, fps) = m.update(t0 + Duration::from_secs(1), 125_000, 30);
        assert!((kbps - 1000.0).abs() < 1e-6 && (fps - 30.0).abs() < 1e-9);
        // 100 ms later: too short a window, the last rates hold.
        let (kbps, _) = m.update(t0 + Duration::from_millis(1100), 125_100, 31);
        assert!((kbps - 1000.0).abs() < 1e-6);
        // Over the next full window (from 1 s): 62 500 bytes in 1 s.
        let (kbps, fps) = m.update(t0 + Duration::from_secs(2), 187_500, 45);
        assert!((kbps - 500.0).abs() < 1e-6, "{kbps}");
        assert!((fps - 15.0).abs() < 1e-9, "{fps}");
        // A counter that went back starts over.
        assert_eq!(m.update(t0 + Duration::from_secs(3), 10, 0), (0.0, 0.0));
    }

    #[test]
    fn audio_of_one_user_merges_into_one_entry() {
        let mut a = RemoteAudioStats {
            bytes_received: 100,
            packets_received: 90,
            packets_lost: 10,
            pkt_loss_rate: 0.1,
            jitter: 2.0,
            bitrate: 32.0,
        };
        let b = RemoteAudioStats {
            bytes_received: 50,
            packets_received: 100,
            packets_lost: 0,
            pkt_loss_rate: 0.0,
            jitter: 5.0,
            bitrate: 16.0,
        };
        merge_remote_audio(&mut a, &b);
        assert_eq!(
            (a.bytes_received, a.packets_received, a.packets_lost),
            (150, 190, 10)
        );
        assert!((a.pkt_loss_rate - 0.05).abs() < 1e-9);
        assert_eq!((a.jitter, a.bitrate), (5.0, 48.0));
    }

    #[test]
    fn field_names_are_the_seeds() {
        let json = serde_json::to_value(TransportStats::default()).expect("json");
        for key in [
            "bytesSent",
            "bytesReceived",
            "sendBitrate",
            "recvBitrate",
            "rtt",
        ] {
            assert!(json.get(key).is_some(), "{key} missing from {json}");
        }
        let json = serde_json::to_value(LocalVideoStats::default()).expect("json");
        for key in [
            "bytesSent",
            "packetsSent",
            "framesEncoded",
            "framesSent",
            "frameWidth",
            "frameHeight",
        ] {
            assert!(json.get(key).is_some(), "{key} missing from {json}");
        }
        let json = serde_json::to_value(RemoteVideoStats::default()).expect("json");
        for key in [
            "bytesReceived",
            "packetsReceived",
            "packetsLost",
            "framesDecoded",
            "frameWidth",
            "frameHeight",
        ] {
            assert!(json.get(key).is_some(), "{key} missing from {json}");
        }
        let json = serde_json::to_value(AllLocalVideoStats::default()).expect("json");
        assert!(json.get("mainStream").is_some() && json.get("subStream").is_some());
        let info = RtcStatsInfo {
            user_id: UserId("u".into()),
            user_name: "U".into(),
            stream_id: 1,
            is_remote: true,
            stream_type: "main",
            media_type: MediaType::Video,
            bitrate: 1.0,
            frame_rate: 2.0,
            rtt: None,
            jitter: Some(1.0),
            pkt_loss_rate: 0.0,
        };
        let json = serde_json::to_value(info).expect("json");
        for key in [
            "userName",
            "isRemote",
            "streamType",
            "mediaType",
            "bitrate",
            "frameRate",
            "rtt",
            "jitter",
            "pktLossRate",
        ] {
            assert!(json.get(key).is_some(), "{key} missing from {json}");
        }
        assert_eq!(json["mediaType"], "video");
    }

    #[test]
    fn the_interval_is_bounded() {
        assert!(check_interval(Duration::from_secs(1)).is_ok());
        assert!(check_interval(Duration::from_millis(199)).is_err());
        assert!(check_interval(Duration::from_secs(61)).is_err());
        assert!(check_interval(Duration::ZERO).is_err());
    }
}
