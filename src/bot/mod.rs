//! The headless bot: joins a room, publishes test media and/or subscribes to
//! everything, and prints one line per second per received stream.
//!
//! It is both a tool (`huddle bot`) and the harness the tests and benchmarks use:
//! [`run`] returns a [`BotReport`] with the totals it printed. Several bots run in
//! one process and one tokio runtime (`--count N`); each is an ordinary
//! [`Client`], so what the bot measures is what an application gets.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::client::{
    Client, ClientResult, ConnectionState, Credential, JoinConfig, LatencySummary, LocalStream,
    RemoteReport, RemoteStream, RoomEvent, SendRateStats, SubscribeOptions,
    stats::{FreezeTracker, ReceptionReport, latency_summary},
};
use crate::media::{
    AudioProfile, I420Frame, MediaError, SyntheticAudio, SyntheticVideo, VideoProfile, VideoSource,
    stamp_height,
};
use crate::protocol::{AppId, LeaveReason, Role, RoomId, StreamId, UserId};

mod notice;
pub mod record;
#[cfg(feature = "devices")]
mod screen;

/// How often each bot drains its event channel.
const EVENT_POLL: Duration = Duration::from_millis(20);

/// What a bot run does.
#[derive(Debug, Clone)]
pub struct BotConfig {
    /// Signalling URL.
    pub server_url: String,
    /// App id.
    pub app_id: AppId,
    /// Signature source (an app key to sign locally, or a fixed signature).
    pub credential: Credential,
    /// Room to join.
    pub room_id: RoomId,
    /// User id; with `count > 1` bots are `<user>-1 .. <user>-N`.
    pub user_id: String,
    /// Publish the synthetic pattern + tone.
    pub publish: bool,
    /// Subscribe to every stream in the room.
    pub subscribe: bool,
    /// Bots in this process.
    pub count: usize,
    /// Stop after this long (`None`: until Ctrl-C / the shutdown future).
    pub duration: Option<Duration>,
    /// Print JSON lines instead of text.
    pub json: bool,
    /// Print per-second lines at all (tests turn this off).
    pub print: bool,
    /// Video profile when publishing.
    pub video_profile: VideoProfile,
    /// Audio profile when publishing.
    pub audio_profile: AudioProfile,
    /// Tone frequency when publishing.
    pub tone_hz: f32,
    /// Tone amplitude, a fraction of full scale (`--tone-level`; top-N rooms
    /// of bots at different loudness).
    pub tone_level: f32,
    /// Measurement knobs (benchmarks); all off by default.
    pub measure: BotMeasure,
    /// TURN servers and relay policy of every bot's links (`--turn`,
    /// `--relay-only`); none by default.
    pub turn: crate::client::TurnConfig,
    /// Stream state detection interval for subscriptions (seed 001
    /// `enableStreamStateDetection`); `None` turns it off. Interruptions and
    /// recoveries are printed as lines like the stats.
    pub stream_state_interval: Option<Duration>,
    /// An audio file mixed into the published audio (seed
    /// `startAudioMixing`; `--mix-file`), from the moment it is published.
    pub mix: Option<crate::client::AudioMixOption>,
    /// Interval of the seed's `rtc-stats` event (`--rtc-stats-ms`), printed
    /// as a line each time; `None` (the default) leaves it off. With `--json`
    /// every bot also prints, once a second, a `stats` line with what the
    /// SDK's `get*Stats` calls return, under the seed's field names.
    pub rtc_stats_interval: Option<Duration>,
    /// Rooms each publishing bot relays its stream into once published
    /// (cross-room co-hosting, `--relay-room`, at most 3), signed with the
    /// bot's credential for each room.
    pub relay_rooms: Vec<RoomId>,
    /// Share this screen or window too (`--screen`), as a presentation
    /// stream beside the pattern (or alone, without `publish`).
    #[cfg(feature = "devices")]
    pub screen: Option<crate::media::devices::ScreenCaptureConfig>,
}

impl BotConfig {
    /// Whether the bot shares a screen (`--screen`).
    fn shares_screen(&self) -> bool {
        #[cfg(feature = "devices")]
        return self.screen.is_some();
        #[cfg(not(feature = "devices"))]
        false
    }

    /// One quiet publishing bot (360p_2, default audio, a 440 Hz tone) that runs
    /// until stopped; change fields with struct update syntax.
    pub fn publisher(
        server_url: impl Into<String>,
        app_id: AppId,
        credential: Credential,
        room_id: RoomId,
        user_id: impl Into<String>,
    ) -> Self {
        Self {
            server_url: server_url.into(),
            app_id,
            credential,
            room_id,
            user_id: user_id.into(),
            publish: true,
            subscribe: false,
            count: 1,
            duration: None,
            json: false,
            print: false,
            video_profile: VideoProfile::by_name("360p_2")
                .copied()
                .unwrap_or(crate::media::VIDEO_PROFILES[0]),
            audio_profile: AudioProfile::default(),
            tone_hz: 440.0,
            tone_level: 0.5,
            measure: BotMeasure::default(),
            turn: crate::client::TurnConfig::default(),
            stream_state_interval: Some(crate::client::DEFAULT_DETECTION_INTERVAL),
            mix: None,
            rtc_stats_interval: None,
            relay_rooms: Vec::new(),
            #[cfg(feature = "devices")]
            screen: None,
        }
    }
}

/// Knobs the benchmarks use; the defaults change nothing.
#[derive(Debug, Clone, Default)]
pub struct BotMeasure {
    /// Publish at this frame rate instead of the profile's (the seed's profiles
    /// are all 15 fps).
    pub fps: Option<u32>,
    /// Receive-only: subscriptions count packets, gaps, loss and jitter but do
    /// not decode (`JoinConfig::decode`).
    pub no_decode: bool,
    /// Wait this long between one bot's join and the next one's.
    pub join_interval: Option<Duration>,
    /// Write the run's [`BotSummary`] as JSON to this file at the end.
    pub summary_path: Option<PathBuf>,
    /// Add pseudo-random noise below the stamp so the encoder actually spends
    /// the profile's bitrate (the plain pattern compresses to a fraction of it).
    pub noise: bool,
    /// Cap the published stream at this many kbit/s
    /// (`Client::set_network_bandwidth`).
    pub max_bandwidth_kbps: Option<u32>,
    /// Publish in simulcast layers: these profiles below the video profile
    /// (`--layers`, `LocalStream::with_lower_resolutions`).
    pub lower_layers: Vec<VideoProfile>,
    /// The layer every subscription asks for (`--resolution`: a
    /// resolutionId or `auto`); `None`: the largest.
    pub resolution: Option<crate::protocol::LayerChoice>,
}

/// The synthetic pattern with fresh luma noise below its stamp every frame, so
/// that the encoder runs at its bitrate cap (load tests want realistic packet
/// rates). The stamp rows are left alone: latency still reads back.
struct NoisyVideo {
    inner: SyntheticVideo,
    state: u64,
}

impl VideoSource for NoisyVideo {
    fn size(&self) -> (u32, u32) {
        self.inner.size()
    }

    fn frame_rate(&self) -> u32 {
        self.inner.frame_rate()
    }

    fn next_frame(&mut self) -> Result<Option<I420Frame>, MediaError> {
        let Some(mut frame) = self.inner.next_frame()? else {
            return Ok(None);
        };
        let skip =
            stamp_height(frame.width, frame.height).unwrap_or(0) as usize * frame.width as usize;
        if let Some(luma) = frame.y.get_mut(skip..) {
            for chunk in luma.chunks_mut(8) {
                // xorshift64: cheap, and different every frame.
                self.state ^= self.state << 13;
                self.state ^= self.state >> 7;
                self.state ^= self.state << 17;
                for (px, byte) in chunk.iter_mut().zip(self.state.to_le_bytes()) {
                    *px = px.saturating_add(byte >> 3);
                }
            }
        }
        Ok(Some(frame))
    }
}

/// Machine-readable totals of a run, over every bot of the process.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BotSummary {
    /// Bots in the process.
    pub bots: usize,
    /// Subscriptions held at the end.
    pub subscriptions: usize,
    /// Video RTP packets received, all subscriptions.
    pub video_packets: u64,
    /// Audio RTP packets received.
    pub audio_packets: u64,
    /// Packets expected from the sequence numbers (RFC 3550 A.3), both media.
    pub expected_packets: u64,
    /// Expected − received, both media.
    pub lost_packets: u64,
    /// `lost_packets / expected_packets`.
    pub loss_fraction: f64,
    /// Largest interarrival jitter of any subscription's video, ms.
    pub max_video_jitter_ms: f64,
    /// Video frames decoded, all subscriptions.
    pub frames_decoded: u64,
    /// Video frames dropped before decoding (broken or decoder behind).
    pub frames_dropped: u64,
    /// Keyframe requests (PLI) sent, all subscriptions.
    pub keyframe_requests: u64,
    /// Lost audio frames rebuilt from Opus in-band FEC, all subscriptions.
    pub audio_frames_recovered: u64,
    /// Lost audio frames concealed without FEC data.
    pub audio_frames_concealed: u64,
    /// Video freezes (WebRTC's definition, see `FreezeTracker`), all subscriptions.
    pub freeze_count: u64,
    /// Their total duration, ms.
    pub freeze_total_ms: f64,
    /// The longest freeze of any subscription, ms.
    pub longest_freeze_ms: f64,
    /// Glass-to-glass latency over every decoded frame of the run.
    pub latency: Option<LatencySummary>,
    /// Join → first decoded frame, percentiles over the subscriptions.
    pub join_to_first_frame: Option<LatencySummary>,
    /// Join → first decoded frame of each subscription that got one, ms.
    pub join_to_first_frame_ms: Vec<f64>,
    /// Publisher side: RTT, loss and jitter the server reported last, per track.
    pub publish_reports: Vec<RemoteReport>,
    /// Publisher side: the last congestion-control figures of each publishing
    /// bot (uplink estimate, targets, rung).
    pub send_rates: Vec<SendRateStats>,
}

impl BotSummary {
    fn from_report(report: &BotReport, bots: usize) -> Self {
        let mut s = Self {
            bots,
            subscriptions: report.streams.len(),
            latency: report.latency(),
            join_to_first_frame: latency_summary(
                report
                    .join_to_first_frame_ms
                    .iter()
                    .map(|ms| (ms * 1000.0) as u64),
            ),
            join_to_first_frame_ms: report.join_to_first_frame_ms.clone(),
            publish_reports: report.publish_reports.clone(),
            send_rates: report.send_rates.clone(),
            ..Self::default()
        };
        for line in &report.streams {
            s.video_packets += line.video_packets;
            s.audio_packets += line.audio_packets;
            s.frames_decoded += line.frames_decoded;
            s.frames_dropped += line.frames_dropped;
            s.keyframe_requests += line.keyframe_requests;
            s.audio_frames_recovered += line.audio_frames_recovered;
            s.audio_frames_concealed += line.audio_frames_concealed;
            s.freeze_count += line.freezes.count;
            s.freeze_total_ms += line.freezes.total_ms;
            s.longest_freeze_ms = s.longest_freeze_ms.max(line.freezes.longest_ms);
            for r in [&line.video_reception, &line.audio_reception] {
                s.expected_packets += r.expected;
                s.lost_packets += r.lost;
            }
            s.max_video_jitter_ms = s.max_video_jitter_ms.max(line.video_reception.jitter_ms);
        }
        if s.expected_packets > 0 {
            s.loss_fraction = s.lost_packets as f64 / s.expected_packets as f64;
        }
        s
    }
}

/// One line of the per-second report (also the JSON line).
#[derive(Debug, Clone, Serialize)]
pub struct StreamReport {
    /// The receiving bot.
    pub bot: String,
    /// The stream.
    pub stream_id: u64,
    /// Its publisher.
    pub publisher: String,
    /// Frames decoded per second over the interval.
    pub fps: f64,
    /// Received kbit/s over the interval.
    pub kbps: f64,
    /// Frames decoded so far.
    pub frames_decoded: u64,
    /// Frames dropped before decoding so far.
    pub frames_dropped: u64,
    /// Keyframe requests sent so far.
    pub keyframe_requests: u64,
    /// Video freezes so far.
    pub freezes: FreezeTracker,
    /// The video playout delay at the end of the interval, ms.
    pub playout_delay_ms: f64,
    /// Video packets repaired (NACK) so far.
    pub video_repaired: u64,
    /// Video packets given up on so far.
    pub video_given_up: u64,
    /// Of those, packets that came later than the wait.
    pub video_late: u64,
    /// Lost audio frames rebuilt from in-band FEC so far.
    pub audio_frames_recovered: u64,
    /// Lost audio frames concealed so far.
    pub audio_frames_concealed: u64,
    /// Audio frames decoded so far.
    pub audio_frames_decoded: u64,
    /// Packets lost so far (sequence gaps).
    pub packets_lost: u64,
    /// Video RTP packets received so far.
    pub video_packets: u64,
    /// Audio RTP packets received so far.
    pub audio_packets: u64,
    /// Video loss and jitter (RFC 3550) so far.
    pub video_reception: ReceptionReport,
    /// Audio loss and jitter so far.
    pub audio_reception: ReceptionReport,
    /// Decoded picture size.
    pub width: u32,
    /// Decoded picture size.
    pub height: u32,
    /// Glass-to-glass latency over the interval.
    pub latency: Option<LatencySummary>,
    /// Join → first decoded frame, ms (only on the first line that has it).
    pub join_to_first_frame_ms: Option<f64>,
}

/// Totals of a whole run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BotReport {
    /// Per received stream, final counters, by bot then stream id.
    pub streams: Vec<StreamReport>,
    /// All glass-to-glass samples of the run (µs), for percentiles over the run.
    #[serde(skip)]
    pub latencies_us: Vec<u64>,
    /// Join → first frame of every subscription that got a frame, ms.
    pub join_to_first_frame_ms: Vec<f64>,
    /// What the server last reported (RTCP RR) about each published track.
    pub publish_reports: Vec<RemoteReport>,
    /// The last congestion-control figures of each publishing bot.
    pub send_rates: Vec<SendRateStats>,
}

impl BotReport {
    /// Percentiles over the whole run.
    pub fn latency(&self) -> Option<LatencySummary> {
        latency_summary(self.latencies_us.iter().copied())
    }
}

struct Subscribed {
    stream: RemoteStream,
    publisher: String,
    last_frames: u64,
    last_bytes: u64,
    first_frame_reported: bool,
    /// Frames decoded when last looked at, and since when that count holds:
    /// a video gap (`video-resumed` lines).
    seen_frames: u64,
    seen_since: Instant,
}

/// A pause in decoded video at least this long is reported when it ends
/// (`video-resumed`, JSON output).
const VIDEO_GAP: Duration = Duration::from_millis(500);

struct Bot {
    name: String,
    client: Client,
    /// The stream this bot publishes, if it does.
    published: Option<StreamId>,
    /// Latest RTCP receiver-report figures about what it publishes.
    publish_reports: Vec<RemoteReport>,
    /// Latest congestion-control figures of what it publishes.
    send_rate: Option<SendRateStats>,
    /// When `send_rate` was read, for the sent rate over the interval.
    send_rate_at: Option<Instant>,
    joined_at: Instant,
    subscriptions: BTreeMap<StreamId, Subscribed>,
    report: BotReport,
    /// The layer its subscriptions ask for (`BotMeasure::resolution`).
    resolution: Option<crate::protocol::LayerChoice>,
}

/// Runs the configured bots until `duration` passes or `stop` completes; returns
/// the totals.
pub async fn run(
    config: BotConfig,
    stop: impl std::future::Future<Output = ()>,
) -> ClientResult<BotReport> {
    let count = config.count.max(1);
    let mut bots = Vec::with_capacity(count);
    for i in 1..=count {
        if i > 1
            && let Some(gap) = config.measure.join_interval
        {
            tokio::time::sleep(gap).await;
        }
        let name = if count == 1 {
            config.user_id.clone()
        } else {
            format!("{}-{i}", config.user_id)
        };
        bots.push(start_bot(&config, name).await?);
    }
    let deadline = config.duration.map(|d| tokio::time::Instant::now() + d);
    let mut tick = tokio::time::interval(EVENT_POLL);
    let mut last_report = Instant::now();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = &mut stop => break,
        }
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            break;
        }
        for bot in &mut bots {
            bot.poll_events(&config).await;
            bot.watch_video_gaps(&config);
        }
        let elapsed = last_report.elapsed();
        if elapsed >= Duration::from_secs(1) {
            last_report = Instant::now();
            for bot in &mut bots {
                bot.refresh_publish_reports(&config).await;
                bot.report_interval(&config, elapsed);
                bot.print_stats(&config).await;
            }
        }
    }
    let mut total = BotReport::default();
    for mut bot in bots {
        bot.report_interval(
            &BotConfig {
                print: false,
                ..config.clone()
            },
            Duration::from_secs(1),
        );
        for sub in bot.subscriptions.values() {
            total.streams.push(final_report(&bot.name, sub));
        }
        total.latencies_us.append(&mut bot.report.latencies_us);
        total.publish_reports.append(&mut bot.publish_reports);
        total.send_rates.extend(bot.send_rate.take());
        total
            .join_to_first_frame_ms
            .append(&mut bot.report.join_to_first_frame_ms);
        bot.client.leave().await.ok(); // leaving a room that already closed is fine
    }
    if let Some(path) = &config.measure.summary_path {
        let summary = BotSummary::from_report(&total, count);
        let json = serde_json::to_string_pretty(&summary).unwrap_or_default();
        if let Err(e) = std::fs::write(path, json) {
            tracing::warn!("cannot write the summary to {}: {e}", path.display());
        }
    }
    Ok(total)
}

async fn start_bot(config: &BotConfig, name: String) -> ClientResult<Bot> {
    let client = Client::new();
    client.set_turn_server(config.turn.clone()).await?;
    if let Some(interval) = config.stream_state_interval {
        client.enable_stream_state_detection(true, interval).await?;
    }
    if let Some(interval) = config.rtc_stats_interval {
        client.enable_rtc_stats(true, interval).await?;
    }
    let joined_at = Instant::now();
    let info = client
        .join(JoinConfig {
            server_url: config.server_url.clone(),
            app_id: config.app_id.clone(),
            room_id: config.room_id.clone(),
            user_id: UserId(name.clone()),
            user_name: format!("bot {name}"),
            role: if config.publish || config.shares_screen() {
                Role::Joiner
            } else {
                Role::Player
            },
            credential: config.credential.clone(),
            decode: !config.measure.no_decode,
            reconnect_window: crate::client::DEFAULT_RECONNECT_WINDOW,
        })
        .await?;
    let mut bot = Bot {
        name,
        client,
        published: None,
        publish_reports: Vec::new(),
        send_rate: None,
        send_rate_at: None,
        joined_at,
        subscriptions: BTreeMap::new(),
        report: BotReport::default(),
        resolution: None,
    };
    if config.publish {
        let mut video_profile = config.video_profile;
        if let Some(fps) = config.measure.fps {
            video_profile.frame_rate = fps;
        }
        let stream = if config.measure.noise {
            let video = NoisyVideo {
                inner: SyntheticVideo::new(
                    video_profile.width,
                    video_profile.height,
                    video_profile.frame_rate,
                ),
                state: 0x9e37_79b9_7f4a_7c15,
            };
            let audio = SyntheticAudio::from_tone(crate::media::ToneSource::new(
                config.tone_hz,
                config.audio_profile.sample_rate,
                config.audio_profile.channels,
                config.tone_level,
            ));
            LocalStream::new(
                Some(Box::new(video)),
                Some(Box::new(audio)),
                video_profile,
                config.audio_profile,
            )
        } else {
            let video = SyntheticVideo::new(
                video_profile.width,
                video_profile.height,
                video_profile.frame_rate,
            );
            let tone = crate::media::ToneSource::new(
                config.tone_hz,
                config.audio_profile.sample_rate,
                config.audio_profile.channels,
                config.tone_level,
            );
            LocalStream::new(
                Some(Box::new(video)),
                Some(Box::new(SyntheticAudio::from_tone(tone))),
                video_profile,
                config.audio_profile,
            )
        };
        if let Some(kbps) = config.measure.max_bandwidth_kbps {
            bot.client.set_network_bandwidth(Some(kbps)).await?;
        }
        if let (Some(option), Some(mixing)) = (&config.mix, stream.audio_mixing()) {
            // A file that cannot be played ends the bot with its code.
            mixing
                .start(option.clone())
                .map_err(|e| crate::client::ClientError::Server {
                    code: crate::protocol::ErrorCode::from_code(e.seed_code())
                        .unwrap_or(crate::protocol::ErrorCode::InvalidParameter),
                    message: format!("--mix-file: {e}"),
                })?;
        }
        let stream = stream.with_lower_resolutions(config.measure.lower_layers.clone());
        let stream_id = bot.client.publish(stream).await?;
        bot.published = Some(stream_id);
        for room_id in &config.relay_rooms {
            // A refused relay ends the bot with its code, like a refused join.
            let relay = bot
                .client
                .start_cross_room_relay(room_id.clone(), stream_id, config.credential.clone())
                .await?;
            tracing::info!(bot = %bot.name, room = %relay.room_id, users = relay.users.len(), "relaying into another room");
        }
    }
    #[cfg(feature = "devices")]
    if let Some(screen) = &config.screen {
        let stream_id = screen::share(&bot.client, screen).await?;
        tracing::info!(
            "bot {}: sharing {:?} as stream {stream_id}",
            bot.name,
            screen.target
        );
    }
    bot.resolution = config.measure.resolution.clone();
    if config.subscribe {
        for stream in info.streams {
            bot.subscribe(stream.stream_id, stream.user_id.0).await;
        }
    }
    Ok(bot)
}

impl Bot {
    async fn subscribe(&mut self, stream_id: StreamId, publisher: String) {
        match self
            .client
            .subscribe(stream_id, SubscribeOptions::default())
            .await
        {
            Ok(stream) => {
                if let Some(choice) = self.resolution.clone()
                    && !stream.info().resolutions.is_empty()
                    && let Err(e) = self.client.set_resolution(stream_id, choice).await
                {
                    tracing::warn!(bot = %self.name, stream = stream_id.0, "--resolution: {e}");
                }
                self.subscriptions.insert(
                    stream_id,
                    Subscribed {
                        stream,
                        publisher,
                        last_frames: 0,
                        last_bytes: 0,
                        first_frame_reported: false,
                        seen_frames: 0,
                        seen_since: Instant::now(),
                    },
                );
            }
            Err(e) => {
                tracing::warn!(bot = %self.name, stream = stream_id.0, "subscribe failed: {e}")
            }
        }
    }

    async fn poll_events(&mut self, config: &BotConfig) {
        while let Ok(event) = self.client.events().try_recv() {
            match event {
                RoomEvent::StreamAdded(info) if config.subscribe => {
                    self.subscribe(info.stream_id, info.user_id.0).await;
                }
                RoomEvent::StreamRemoved { stream_id, .. } => {
                    self.subscriptions.remove(&stream_id);
                }
                RoomEvent::ClientBanned { reason } => {
                    tracing::warn!(bot = %self.name, "removed from the room: {reason}");
                }
                RoomEvent::ConnectionStateChanged {
                    previous,
                    current,
                    reason,
                } => self.print_connection_state(config, previous, current, reason),
                RoomEvent::PeerLeave { user_id, reason } if config.print => {
                    print_peer_leave(&self.name, &user_id.0, reason, config.json);
                }
                RoomEvent::LocalStreamRepublished {
                    previous,
                    stream_id,
                } if self.published == Some(previous) => {
                    self.published = Some(stream_id);
                }
                RoomEvent::Error { code, message } => {
                    tracing::warn!(bot = %self.name, "error {}: {message}", code.code());
                }
                event => {
                    if config.print
                        && let Some(line) = notice::line(&self.name, &event, config.json)
                    {
                        writeln!(std::io::stdout().lock(), "{line}").ok(); // closed stdout is fine
                    }
                }
            }
        }
    }

    /// Prints the end of each pause in decoded video of at least
    /// [`VIDEO_GAP`] (JSON output only): when and how long, to the poll
    /// interval.
    fn watch_video_gaps(&mut self, config: &BotConfig) {
        for (stream_id, sub) in &mut self.subscriptions {
            let frames = sub.stream.with_stats(|s| s.frames_decoded);
            if frames == sub.seen_frames {
                continue;
            }
            let gap = sub.seen_since.elapsed();
            if config.print && config.json && sub.seen_frames > 0 && gap >= VIDEO_GAP {
                let line = serde_json::json!({
                    "bot": self.name, "event": "video-resumed", "streamId": stream_id.0,
                    "gapMs": gap.as_millis() as u64, "atMs": crate::media::now_us() / 1000,
                });
                writeln!(std::io::stdout().lock(), "{line}").ok(); // closed stdout is fine
            }
            sub.seen_frames = frames;
            sub.seen_since = Instant::now();
        }
    }

    /// Prints a connection state change (seed `connection-state-changed`).
    fn print_connection_state(
        &self,
        config: &BotConfig,
        previous: ConnectionState,
        current: ConnectionState,
        reason: Option<LeaveReason>,
    ) {
        tracing::info!(bot = %self.name, "connection {} -> {}", previous.name(), current.name());
        if !config.print {
            return;
        }
        let at_ms = crate::media::now_us() / 1000;
        if config.json {
            let line = serde_json::json!({
                "bot": self.name, "event": "connection-state-changed",
                "prevState": previous.name(), "curState": current.name(),
                "reason": reason.map(LeaveReason::code), "atMs": at_ms,
            });
            writeln!(std::io::stdout().lock(), "{line}").ok(); // closed stdout is fine
        } else {
            let reason = reason.map(|r| format!(" (reason {r})")).unwrap_or_default();
            let text = format!(
                "{}: connection {} -> {}{reason}",
                self.name,
                previous.name(),
                current.name()
            );
            writeln!(std::io::stdout().lock(), "{text}").ok(); // closed stdout is fine
        }
    }

    async fn refresh_publish_reports(&mut self, config: &BotConfig) {
        let Some(stream_id) = self.published else {
            return;
        };
        let Ok(reports) = self.client.publish_stats(stream_id).await else {
            return; // unpublished or leaving: nothing to report
        };
        self.publish_reports = reports;
        let previous = self.send_rate.zip(self.send_rate_at);
        self.send_rate = self.client.send_rate(stream_id).await.ok();
        let now = Instant::now();
        self.send_rate_at = Some(now);
        // Encoded kbit/s (audio + video) since the previous reading.
        let sent_kbps = match (previous, self.send_rate) {
            (Some((before, at)), Some(after)) => {
                let bytes = (after.video_bytes + after.audio_bytes)
                    .saturating_sub(before.video_bytes + before.audio_bytes);
                let secs = now.saturating_duration_since(at).as_secs_f64().max(1e-3);
                Some(bytes as f64 * 8.0 / 1000.0 / secs)
            }
            _ => None,
        };
        if !config.print || (self.publish_reports.is_empty() && self.send_rate.is_none()) {
            return;
        }
        let text = if config.json {
            serde_json::json!({
                "bot": self.name, "published_stream": stream_id.0, "remote": self.publish_reports,
                "send_rate": self.send_rate, "sent_kbps": sent_kbps,
            })
            .to_string()
        } else {
            let tracks: Vec<String> = self
                .publish_reports
                .iter()
                .map(|r| {
                    // H.264 runs at 90 kHz, Opus at 48 kHz.
                    let kind = if r.clock_rate == Some(90_000) {
                        "video"
                    } else {
                        "audio"
                    };
                    let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1} ms"));
                    format!(
                        "{kind} rtt {} loss {:.2} % (total {}) jitter {}",
                        ms(r.rtt_ms),
                        r.fraction_lost * 100.0,
                        r.total_lost,
                        ms(r.jitter_ms)
                    )
                })
                .collect();
            let rate = self
                .send_rate
                .map(|r| {
                    format!(
                        " | estimate {} kbit/s target {} kbit/s sent {} kbit/s {}x{}@{}",
                        r.estimate_bps
                            .map_or("-".to_owned(), |e| format!("{:.0}", e / 1e3)),
                        r.target_bps / 1000,
                        sent_kbps.map_or("-".to_owned(), |k| format!("{k:.0}")),
                        r.width,
                        r.height,
                        r.frame_rate
                    )
                })
                .unwrap_or_default();
            format!(
                "{} -> stream {}: {}{rate}",
                self.name,
                stream_id.0,
                tracks.join("; ")
            )
        };
        writeln!(std::io::stdout().lock(), "{text}").ok(); // closed stdout is fine
    }

    /// With `--json`: one `stats` line with every seed statistic (seed
    /// `getTransportStats`, `getLocal*Stats`, `getRemote*Stats`, their field
    /// names).
    async fn print_stats(&self, config: &BotConfig) {
        if !(config.print && config.json) {
            return;
        }
        let Ok(report) = self.client.stats_report().await else {
            return; // leaving: nothing to report
        };
        let line = serde_json::json!({
            "bot": self.name, "event": "stats", "transport": report.transport,
            "localAudio": report.local_audio, "localVideo": report.local_video,
            "remoteAudio": report.remote_audio, "remoteVideo": report.remote_video,
            "atMs": crate::media::now_us() / 1000,
        });
        writeln!(std::io::stdout().lock(), "{line}").ok(); // closed stdout is fine
    }

    fn report_interval(&mut self, config: &BotConfig, elapsed: Duration) {
        let secs = elapsed.as_secs_f64().max(1e-3);
        for (stream_id, sub) in &mut self.subscriptions {
            let (stats, latencies) = sub.stream.with_stats(|s| (s.clone(), s.take_latencies()));
            let latency = latency_summary(latencies.iter().copied());
            self.report.latencies_us.extend_from_slice(&latencies);
            let join_to_first_frame_ms = match (sub.first_frame_reported, stats.first_frame_at) {
                (false, Some(at)) => {
                    sub.first_frame_reported = true;
                    if config.print && config.json {
                        // Wall-clock time of the first decoded frame, for
                        // benchmarks that compare it with other processes'
                        // events (benches/reconnect.sh).
                        let at_ms = (crate::media::now_us() / 1000)
                            .saturating_sub(at.elapsed().as_millis() as u64);
                        let line = serde_json::json!({
                            "bot": self.name, "event": "first-frame",
                            "streamId": stream_id.0, "userId": sub.publisher, "atMs": at_ms,
                        });
                        writeln!(std::io::stdout().lock(), "{line}").ok(); // closed stdout is fine
                    }
                    let ms = at.saturating_duration_since(self.joined_at).as_secs_f64() * 1e3;
                    self.report.join_to_first_frame_ms.push(ms);
                    Some(ms)
                }
                _ => None,
            };
            let (width, height) = stats.last_size.unwrap_or((0, 0));
            let line = StreamReport {
                bot: self.name.clone(),
                stream_id: stream_id.0,
                publisher: sub.publisher.clone(),
                fps: (stats.frames_decoded - sub.last_frames) as f64 / secs,
                kbps: (stats.bytes - sub.last_bytes) as f64 * 8.0 / 1000.0 / secs,
                frames_decoded: stats.frames_decoded,
                frames_dropped: stats.frames_dropped,
                keyframe_requests: stats.keyframe_requests,
                freezes: stats.freezes,
                playout_delay_ms: stats.playout_delay_ms,
                video_repaired: stats.video_repaired,
                video_given_up: stats.video_given_up,
                video_late: stats.video_late,
                audio_frames_recovered: stats.audio_frames_recovered,
                audio_frames_concealed: stats.audio_frames_concealed,
                audio_frames_decoded: stats.audio_frames_decoded,
                packets_lost: stats.packets_lost,
                video_packets: stats.video_packets,
                audio_packets: stats.audio_packets,
                video_reception: stats.video_reception,
                audio_reception: stats.audio_reception,
                width,
                height,
                latency,
                join_to_first_frame_ms,
            };
            sub.last_frames = stats.frames_decoded;
            sub.last_bytes = stats.bytes;
            if config.print {
                print_line(&line, config.json);
            }
        }
    }
}

fn final_report(bot: &str, sub: &Subscribed) -> StreamReport {
    let stats = sub.stream.stats();
    let (width, height) = stats.last_size.unwrap_or((0, 0));
    StreamReport {
        bot: bot.to_owned(),
        stream_id: sub.stream.id().0,
        publisher: sub.publisher.clone(),
        fps: 0.0,
        kbps: 0.0,
        frames_decoded: stats.frames_decoded,
        frames_dropped: stats.frames_dropped,
        keyframe_requests: stats.keyframe_requests,
        freezes: stats.freezes,
        playout_delay_ms: stats.playout_delay_ms,
        video_repaired: stats.video_repaired,
        video_given_up: stats.video_given_up,
        video_late: stats.video_late,
        audio_frames_recovered: stats.audio_frames_recovered,
        audio_frames_concealed: stats.audio_frames_concealed,
        audio_frames_decoded: stats.audio_frames_decoded,
        packets_lost: stats.packets_lost,
        video_packets: stats.video_packets,
        audio_packets: stats.audio_packets,
        video_reception: stats.video_reception,
        audio_reception: stats.audio_reception,
        width,
        height,
        latency: None,
        join_to_first_frame_ms: None,
    }
}

/// Prints that a remote user left (`peer-leave`), with the reason.
fn print_peer_leave(bot: &str, user_id: &str, reason: LeaveReason, json: bool) {
    if json {
        let line = serde_json::json!({
            "bot": bot, "event": "peer-leave", "userId": user_id, "reason": reason.code(),
            "atMs": crate::media::now_us() / 1000,
        });
        writeln!(std::io::stdout().lock(), "{line}").ok(); // closed stdout is fine
    } else {
        writeln!(
            std::io::stdout().lock(),
            "{bot}: {user_id} left (reason {reason})"
        )
        .ok(); // closed stdout is fine
    }
}

fn print_line(line: &StreamReport, json: bool) {
    let text = if json {
        serde_json::to_string(line).unwrap_or_default()
    } else {
        let latency = line
            .latency
            .map(|l| format!("latency p50 {:.1} ms p99 {:.1} ms", l.p50_ms, l.p99_ms))
            .unwrap_or_else(|| "latency -".to_owned());
        let first = line
            .join_to_first_frame_ms
            .map(|ms| format!(" join->first-frame {ms:.0} ms"))
            .unwrap_or_default();
        format!(
            "{} <- stream {} ({}): {}x{} {:.1} fps {:.0} kbit/s frames {} audio {} lost {} \
             (video loss {:.2} % jitter {:.1} ms) {}{}",
            line.bot,
            line.stream_id,
            line.publisher,
            line.width,
            line.height,
            line.fps,
            line.kbps,
            line.frames_decoded,
            line.audio_frames_decoded,
            line.packets_lost,
            line.video_reception.loss_fraction * 100.0,
            line.video_reception.jitter_ms,
            latency,
            first
        )
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").ok(); // a closed stdout (piped to head) is not an error
}
