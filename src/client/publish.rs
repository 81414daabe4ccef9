//! Publishing: capture threads that read a [`LocalStream`]'s sources, encoders
//! on the media pool, and the tasks that packetize samples onto the publish leg.
//!
//! ```text
//!  video capture thread: source ─SerialQueue (2)─▶ media pool: H.264 encode ─┐ bounded (drop + keyframe when full)
//!  audio capture thread: source ─SerialQueue (10, urgent)─▶ pool: Opus encode ─┤
//!                                                                            ▼
//!  writer tasks (tokio): write_sample → TrackLocalStaticSample → RTP
//!  feedback task: PLI/FIR from the SFU → force a keyframe
//!  rate task: uplink estimate → rung, bitrates ([`super::congestion`])
//! ```
//!
//! The video encode step follows the rate control's decision on every frame:
//! it leaves frames out to reach the rung's frame rate, drops a frame when
//! encoded video has run ahead of its budget, scales the picture to the rung's
//! size (a new size starts a new encoder, so a keyframe) and retunes the
//! encoder's bitrate and frame rate in place.
//!
//! Synthetic sources are paced by the capture threads against a monotonic
//! clock (no drift from sleep overshoot); live sources (`is_live()`: cameras,
//! microphones) block in `next_frame` on the device clock and are not paced
//! again here. A capture thread needs its own thread because a device read
//! blocks; encoding does not, so it shares [`crate::media::pool`] with every
//! decoder. The threads end when the stop flag is set;
//! [`PublishPipeline::stop`] sets it and joins them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::media::Sample;
use rtc::rtp::extension::HeaderExtension;
use rtc::rtp::extension::audio_level_extension::AudioLevelExtension;
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};

use super::congestion::{RateControl, SendRateStats, rate_task};
use super::stream::LocalStream;
use crate::link::congestion::SendEstimate;
use crate::media::pool::SerialQueue;
use crate::media::rate_ladder::{Decimator, FrameBudget, RateLadder};
use crate::media::scale::Scaler;
use crate::media::{
    AudioFrame, AudioSource, H264Encoder, H264EncoderConfig, I420Frame, OpusEncoder, VideoSource,
};

/// Encoded video frames queued between the encode thread and the writer task.
/// When full the frame is dropped and the next one is forced to be a keyframe:
/// the network side is behind, and latency matters more than completeness.
pub const ENCODED_VIDEO_CAPACITY: usize = 4;

/// Encoded 20 ms audio packets queued between the encode thread and the writer
/// task (200 ms). When full the packet is dropped.
pub const ENCODED_AUDIO_CAPACITY: usize = 10;

/// RFC 6464 level of silence: no voice bit.
const SILENT_LEVEL: u8 = 127;

/// One encoded frame for a track.
pub(crate) struct Encoded {
    pub(crate) data: Bytes,
    pub(crate) duration: Duration,
    pub(crate) captured: Instant,
    /// RFC 6464 level of the PCM encoded (audio only), sent in the audio
    /// level header extension (`link::audio_level`).
    pub(crate) level: Option<u8>,
    /// An H.264 keyframe (written first among a picture's layers).
    pub(crate) keyframe: bool,
}

/// A published track's sending side.
pub(crate) struct TrackOut {
    pub(crate) track: Arc<TrackLocalStaticSample>,
    pub(crate) ssrc: u32,
    pub(crate) payload_type: u8,
}

/// The running threads and tasks of one published stream.
pub(crate) struct PublishPipeline {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Shared with the video thread: pause sending (mute) without stopping capture.
    pub(crate) video_muted: Arc<AtomicBool>,
    /// Shared with the audio thread.
    pub(crate) audio_muted: Arc<AtomicBool>,
    /// Set once the publish leg is connected: samples written before DTLS is up
    /// would be dropped by the library (with a warning each), so the writers drop
    /// them here instead.
    connected: Arc<AtomicBool>,
    force_keyframe: Arc<AtomicBool>,
    /// Listens for keyframe requests on the video track's current link;
    /// replaced when the stream moves to a new link ([`PublishPipeline::relink`]).
    feedback: Option<tokio::task::JoinHandle<()>>,
    /// What congestion control decided, shared with the encoders.
    rate: RateControl,
    /// The current link's uplink estimate, read by the rate task.
    estimate: tokio::sync::watch::Sender<Option<SendEstimate>>,
    /// Whether each simulcast layer slot is sent (`layers.rs`; slot 0 is
    /// the top layer, the `video` track). One entry per layer; empty
    /// without layers.
    pub(crate) layer_active: Vec<Arc<AtomicBool>>,
    /// Set when the video source ended by itself (not stopped): a closed
    /// shared window (`session/screen_end.rs`).
    source_ended: Arc<AtomicBool>,
    /// Whether some subscriber wants each simulcast layer slot (the server's
    /// `layers-wanted`; `session/layers.rs`): a layer is encoded while it is
    /// active and wanted. Slot 0's entry is never turned off.
    layer_wanted: Vec<Arc<AtomicBool>>,
    /// Video frames written per layer slot.
    layer_sent: Arc<[AtomicU64; 3]>,
}

impl PublishPipeline {
    /// Starts threads for the stream's sources, writing to the given tracks,
    /// with encoders following `estimate` (the publish link's) under
    /// `cap_bps`. When the video source ends by itself, `on_end` is
    /// notified ([`PublishPipeline::source_ended`] says which).
    pub(crate) fn start(
        stream: LocalStream,
        video: Option<TrackOut>,
        audio: Option<TrackOut>,
        estimate: Option<SendEstimate>,
        cap_bps: Option<u32>,
        lower_layers: Vec<(crate::media::VideoProfile, TrackOut)>,
        on_end: Arc<tokio::sync::Notify>,
    ) -> Result<Self, crate::media::MediaError> {
        let stop = Arc::new(AtomicBool::new(false));
        let source_ended = Arc::new(AtomicBool::new(false));
        let force_keyframe = Arc::new(AtomicBool::new(true));
        let video_muted = Arc::new(AtomicBool::new(false));
        let audio_muted = Arc::new(AtomicBool::new(false));
        let connected = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let mut tasks = Vec::new();
        let mut feedback = None;
        let LocalStream {
            video: video_source,
            audio: audio_source,
            video_profile,
            audio_profile,
            video_paused,
            max_bandwidth_bps,
            is_screen,
            // The mixing handle is the application's; the source mixes through it.
            ..
        } = stream;
        let cap_bps = cap_bps.or(max_bandwidth_bps);
        let ladder = video_source
            .as_ref()
            .filter(|_| video.is_some())
            .map(|source| {
                let (width, height) = source.size();
                RateLadder::new(width, height, source.frame_rate(), &video_profile)
            });
        let rate = RateControl::new(
            ladder.as_ref().map(|l| (l, &video_profile)),
            audio_source
                .as_ref()
                .filter(|_| audio.is_some())
                .map(|_| &audio_profile),
            cap_bps,
        );
        let (estimate, estimate_rx) = tokio::sync::watch::channel(estimate);
        tasks.push(tokio::spawn(rate_task(rate.clone(), estimate_rx, ladder)));

        let mut layer_active = Vec::new();
        let mut layer_wanted = Vec::new();
        let layer_sent: Arc<[AtomicU64; 3]> = Arc::default();
        if let (Some(source), Some(out)) = (video_source, video) {
            let mut lower = Vec::new();
            let mut lower_outs = Vec::new();
            if !lower_layers.is_empty() {
                layer_active.push(Arc::new(AtomicBool::new(true)));
                layer_wanted.push(Arc::new(AtomicBool::new(true)));
            }
            for (profile, out) in lower_layers {
                let active = Arc::new(AtomicBool::new(true));
                layer_active.push(Arc::clone(&active));
                let wanted = Arc::new(AtomicBool::new(true));
                layer_wanted.push(Arc::clone(&wanted));
                lower.push(super::layers::lower_layer(
                    &profile,
                    source.frame_rate(),
                    &out,
                    [active, wanted],
                    &mut tasks,
                ));
                lower_outs.push(out);
            }
            let top_active = layer_active.first().cloned();
            let (width, height) = source.size();
            let encoder = H264Encoder::with_config(H264EncoderConfig {
                content: super::screen::content(is_screen),
                ..H264EncoderConfig::new(
                    width,
                    height,
                    source.frame_rate(),
                    video_profile.max_bitrate_bps(),
                )
            })?;
            let (tx, rx) = mpsc::channel(ENCODED_VIDEO_CAPACITY * (1 + lower.len()));
            let (stop_t, kf, rate_t) =
                (Arc::clone(&stop), Arc::clone(&force_keyframe), rate.clone());
            let held = [Arc::clone(&video_muted), video_paused];
            let (stopped, ended) = (Arc::clone(&stop), Arc::clone(&source_ended));
            threads.push(
                std::thread::Builder::new()
                    .name("huddle-video-enc".into())
                    .spawn(move || {
                        let layers = Layers { top_active, lower };
                        video_thread(source, encoder, tx, stop_t, kf, held, rate_t, layers);
                        if !stopped.load(Ordering::Acquire) {
                            // Not stopped by us: the source ended by itself.
                            ended.store(true, Ordering::Release);
                            on_end.notify_one();
                        }
                    })
                    .map_err(|e| crate::media::MediaError::Device(e.to_string()))?,
            );
            feedback = Some(tokio::spawn(feedback_task(
                Arc::clone(&out.track),
                Arc::clone(&force_keyframe),
            )));
            let sent = Some(rate.clone());
            let outs = std::iter::once(out).chain(lower_outs).collect();
            tasks.push(tokio::spawn(writer_task(
                outs,
                rx,
                Arc::clone(&connected),
                sent,
                Some(Arc::clone(&layer_sent)),
            )));
        }
        if let (Some(source), Some(out)) = (audio_source, audio) {
            let encoder = OpusEncoder::new(
                source.sample_rate(),
                source.channels(),
                audio_profile.bitrate_bps(),
            )?;
            let (tx, rx) = mpsc::channel(ENCODED_AUDIO_CAPACITY);
            let (stop_t, muted, rate_t) =
                (Arc::clone(&stop), Arc::clone(&audio_muted), rate.clone());
            threads.push(
                std::thread::Builder::new()
                    .name("huddle-audio-enc".into())
                    .spawn(move || audio_thread(source, encoder, tx, stop_t, muted, rate_t))
                    .map_err(|e| crate::media::MediaError::Device(e.to_string()))?,
            );
            tasks.push(tokio::spawn(writer_task(
                vec![out],
                rx,
                Arc::clone(&connected),
                None,
                None,
            )));
        }
        Ok(Self {
            stop,
            threads,
            tasks,
            video_muted,
            audio_muted,
            connected,
            force_keyframe,
            feedback,
            rate,
            estimate,
            layer_active,
            source_ended,
            layer_wanted,
            layer_sent,
        })
    }

    /// Whether the video source ended by itself (a shared window closed),
    /// not stopped by [`PublishPipeline::stop`].
    pub(crate) fn source_ended(&self) -> bool {
        self.source_ended.load(Ordering::Acquire)
    }

    /// Marks lower simulcast layer `slot` wanted by some subscriber or not
    /// (the top layer stays encoded); `false` if there is none.
    pub(crate) fn set_layer_wanted(&self, slot: usize, on: bool) -> bool {
        match self.layer_wanted.get(slot).filter(|_| slot > 0) {
            Some(wanted) => {
                wanted.store(on, Ordering::Release);
                true
            }
            None => false,
        }
    }

    /// Turns simulcast layer `slot` on or off; `false` if there is none.
    pub(crate) fn set_layer_active(&self, slot: usize, on: bool) -> bool {
        match self.layer_active.get(slot) {
            Some(active) => {
                let was = active.swap(on, Ordering::AcqRel);
                if on && !was && slot == 0 {
                    self.force_keyframe.store(true, Ordering::Release);
                }
                true
            }
            None => false,
        }
    }

    /// The stream is about to move to a new link: hold samples until it
    /// connects ([`PublishPipeline::set_connected`]) and let go of the old
    /// link's keyframe requests (the track binds to one link at a time).
    pub(crate) fn unlink(&mut self) {
        self.connected.store(false, Ordering::Release);
        if let Some(task) = self.feedback.take() {
            task.abort();
        }
    }

    /// The video track is bound to its new link: listen for its keyframe
    /// requests there.
    pub(crate) fn relink(
        &mut self,
        video: Option<Arc<TrackLocalStaticSample>>,
        estimate: Option<SendEstimate>,
    ) {
        self.estimate.send_replace(estimate);
        if let Some(track) = video {
            self.feedback = Some(tokio::spawn(feedback_task(
                track,
                Arc::clone(&self.force_keyframe),
            )));
        }
    }

    /// What congestion control decided and what was encoded.
    pub(crate) fn send_rate(&self) -> SendRateStats {
        SendRateStats {
            layer_frames_sent: [0, 1, 2].map(|s| self.layer_sent[s].load(Ordering::Relaxed)),
            ..self.rate.stats()
        }
    }

    /// The server reported its subscribers' worst audio loss (percent):
    /// Opus's FEC follows ([`crate::client::audio_fec`]).
    pub(crate) fn set_downlink_loss(&self, percent: u8) {
        self.rate.set_downlink_loss(percent);
    }

    /// Sets or lifts the cap (bit/s) on what this stream sends.
    pub(crate) fn set_cap(&self, cap_bps: Option<u32>) {
        self.rate.set_cap(cap_bps);
    }

    /// The publish leg connected: start sending, beginning with a keyframe.
    pub(crate) fn set_connected(&self) {
        self.force_keyframe.store(true, Ordering::Release);
        self.connected.store(true, Ordering::Release);
    }

    /// Stops the threads and tasks and waits for the threads to end.
    pub(crate) async fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(task) = self.feedback.take() {
            task.abort();
        }
        for task in self.tasks.drain(..) {
            task.abort();
        }
        let threads = std::mem::take(&mut self.threads);
        // Joining blocks: do it off the async workers. A thread ends within one
        // frame interval of seeing the stop flag.
        tokio::task::spawn_blocking(move || {
            for thread in threads {
                thread.join().ok(); // a panicked media thread has nothing left to clean
            }
        })
        .await
        .ok();
    }
}

impl Drop for PublishPipeline {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Pulls frames from a source at its rate, against a monotonic clock (no drift
/// from sleep overshoot); live sources pace themselves and are not slept for.
struct Paced<'a> {
    start: Instant,
    interval: Duration,
    live: bool,
    stop: &'a AtomicBool,
    n: u32,
}

impl<'a> Paced<'a> {
    fn new(interval: Duration, live: bool, stop: &'a AtomicBool) -> Self {
        Self {
            start: Instant::now(),
            interval,
            live,
            stop,
            n: 0,
        }
    }

    /// Waits for the next slot and returns the source's next frame; `None`
    /// once stop is requested or the source ended or failed (logged).
    fn next<T>(
        &mut self,
        what: &str,
        read: impl FnOnce() -> Result<Option<T>, crate::media::MediaError>,
    ) -> Option<T> {
        let deadline = self.start + self.interval * self.n;
        self.n = self.n.wrapping_add(1);
        let now = Instant::now();
        if !self.live && deadline > now {
            std::thread::sleep(deadline - now);
        }
        if self.stop.load(Ordering::Acquire) {
            return None;
        }
        read().unwrap_or_else(|e| {
            tracing::warn!("{what} source failed: {e}");
            None
        })
    }
}

/// Raw pictures queued for the encoder on the media pool. When full the
/// picture is dropped before encoding (the encoder never saw it, so no
/// keyframe is needed).
const RAW_VIDEO_CAPACITY: usize = 2;

/// Raw 20 ms audio frames queued for the Opus encoder on the media pool (200 ms).
const RAW_AUDIO_CAPACITY: usize = 10;

/// The simulcast side of the capture thread: whether the top layer is sent,
/// and the lower layers' encoders (`layers.rs`).
struct Layers {
    top_active: Option<Arc<AtomicBool>>,
    lower: Vec<super::layers::LayerEncode>,
}

/// Captures pictures at the source's rate and hands them to the encoder on the
/// media pool; ends on stop or when the source ends.
#[allow(clippy::too_many_arguments)]
fn video_thread(
    mut source: Box<dyn VideoSource>,
    encoder: H264Encoder,
    tx: mpsc::Sender<(usize, Encoded)>,
    stop: Arc<AtomicBool>,
    force_keyframe: Arc<AtomicBool>,
    // Muted, or paused (`FramePause`): either holds the pictures back.
    held: [Arc<AtomicBool>; 2],
    rate: RateControl,
    layers: Layers,
) {
    let source_fps = source.frame_rate().max(1);
    let interval = Duration::from_secs_f64(1.0 / f64::from(source_fps));
    let live = source.is_live();
    let mut frames = Paced::new(interval, live, &stop);
    let config = *encoder.config();
    let mut video = VideoEncode {
        keyframe_interval_s: config.keyframe_interval / config.frame_rate.max(1),
        encoder,
        force_keyframe: Arc::clone(&force_keyframe),
        interval,
        rate,
        source_fps,
        scaler: Scaler::default(),
        decimator: Decimator::default(),
        budget: FrameBudget::new(),
        congestions: 0,
        last_sent: None,
    };
    let Layers {
        top_active,
        mut lower,
    } = layers;
    let lower_keyframes: Vec<_> = lower
        .iter()
        .map(|l| Arc::clone(&l.force_keyframe))
        .collect();
    // Every layer of a picture in one job, handed to the one writer
    // keyframes first (`layers.rs`).
    let encode = SerialQueue::new(
        RAW_VIDEO_CAPACITY,
        move |(frame, captured, top): (I420Frame, Instant, bool)| {
            let mut out = Vec::with_capacity(1 + lower.len());
            if top && let Some(encoded) = video.encode(&frame, captured) {
                out.push((0, encoded));
            }
            for (i, layer) in lower.iter_mut().enumerate() {
                if let Some(encoded) = layer.encode(&frame, captured) {
                    out.push((i + 1, encoded));
                }
            }
            out.sort_by_key(|(_, encoded)| !encoded.keyframe);
            for (slot, encoded) in out {
                if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send((slot, encoded)) {
                    // Behind: drop this frame; the decoder needs a keyframe to recover.
                    let flag = match slot {
                        0 => Some(&video.force_keyframe),
                        s => lower.get(s - 1).map(|l| &l.force_keyframe),
                    };
                    if let Some(flag) = flag {
                        flag.store(true, Ordering::Release);
                    }
                }
                // Closed: the stream is stopping; the capture loop ends on the stop flag.
            }
        },
    );
    while let Some(frame) = frames.next("video", || source.next_frame()) {
        let captured = Instant::now();
        if held.iter().any(|h| h.load(Ordering::Acquire)) {
            force_keyframe.store(true, Ordering::Release);
            for flag in &lower_keyframes {
                flag.store(true, Ordering::Release);
            }
            continue;
        }
        let top = top_active
            .as_ref()
            .is_none_or(|a| a.load(Ordering::Acquire));
        if !top {
            force_keyframe.store(true, Ordering::Release);
        }
        if encode.try_push((frame, captured, top)).is_err() {
            tracing::trace!("video encoder behind; picture dropped");
        }
    }
}

/// The H.264 side of a published track (runs on the media pool).
/// Seconds between periodic keyframes of an encoder made while the path
/// has shown a ceiling (`VideoTarget::narrow`; normally
/// `media::h264::DEFAULT_KEYFRAME_INTERVAL_S`). A keyframe of a busy 640x360
/// picture is some 15 KB, a third of a second of a 400 kbit/s path: at 2 s
/// the frame budget dropped 4-7 frames after most of them (docs/PERFORMANCE.md,
/// issue 10 §1). Subscribers that need one sooner ask (PLI).
pub const NARROW_KEYFRAME_INTERVAL_S: u32 = 10;

struct VideoEncode {
    encoder: H264Encoder,
    force_keyframe: Arc<AtomicBool>,
    interval: Duration,
    rate: RateControl,
    source_fps: u32,
    scaler: Scaler,
    decimator: Decimator,
    budget: FrameBudget,
    /// The rate control's congestion count when last seen.
    congestions: u64,
    /// Capture instant of the last frame sent, for RTP timestamp spacing.
    last_sent: Option<Instant>,
    /// Seconds between periodic keyframes on an open path (0: none).
    keyframe_interval_s: u32,
}

/// `frame`'s size scaled as the rung's size is to the full rung's (the source
/// may have switched to another size), even and at least 2x2.
fn rung_size(frame: (u32, u32), top: (u32, u32), rung: (u32, u32)) -> (u32, u32) {
    if frame == top || top.0 == 0 || top.1 == 0 {
        return if top.0 == 0 { frame } else { rung };
    }
    let scale = |f: u32, r: u32, t: u32| {
        let v = u64::from(f) * u64::from(r) / u64::from(t);
        (u32::try_from(v).unwrap_or(f).min(f) & !1).max(2)
    };
    (scale(frame.0, rung.0, top.0), scale(frame.1, rung.1, top.1))
}

impl VideoEncode {
    fn encode(&mut self, frame: &I420Frame, captured: Instant) -> Option<Encoded> {
        let (mut size, mut frame_rate, mut bitrate) = (
            (frame.width, frame.height),
            self.source_fps,
            self.encoder.bitrate(),
        );
        let mut keyframe_interval_s = self.keyframe_interval_s;
        if let Some(target) = self.rate.video() {
            if target.narrow && keyframe_interval_s > 0 {
                keyframe_interval_s = keyframe_interval_s.max(NARROW_KEYFRAME_INTERVAL_S);
            }
            frame_rate = target.decision.frame_rate.clamp(1, self.source_fps);
            if !self.decimator.keep(self.source_fps, frame_rate) {
                self.rate.count_decimated();
                return None;
            }
            if target.congestions != self.congestions {
                // The path just showed congestion: nothing runs ahead now.
                self.congestions = target.congestions;
                self.budget.clear();
            }
            if !self.budget.admit(captured, target.budget_bps) {
                // Dropped before encoding: the encoder never saw it, no keyframe needed.
                self.rate.count_budget_drop();
                return None;
            }
            size = rung_size(
                size,
                target.top,
                (target.decision.width, target.decision.height),
            );
            bitrate = target.decision.bitrate_bps;
        }
        let picture = if size == (frame.width, frame.height) {
            frame
        } else {
            self.scaler.scale(frame, size.0, size.1)
        };
        if size != self.encoder.size() {
            // A new size (a source switch, or a ladder rung): a new stream of
            // pictures, starting with a keyframe.
            let config = H264EncoderConfig {
                width: size.0,
                height: size.1,
                frame_rate,
                bitrate_bps: bitrate,
                keyframe_interval: frame_rate.saturating_mul(keyframe_interval_s),
                ..*self.encoder.config()
            };
            match H264Encoder::with_config(config) {
                Ok(encoder) => self.encoder = encoder,
                Err(e) => {
                    tracing::warn!("H.264 encoder for {}x{}: {e}", size.0, size.1);
                    return None;
                }
            }
        } else {
            if let Err(e) = self.encoder.set_frame_rate(frame_rate) {
                tracing::debug!("H.264 frame rate {frame_rate}: {e}");
            }
            let current = self.encoder.bitrate();
            // Small moves are noise in the estimate: retune on 3 % or more.
            if bitrate.abs_diff(current) * 100 >= current * 3
                && let Err(e) = self.encoder.set_bitrate(bitrate)
            {
                tracing::debug!("H.264 bitrate {bitrate}: {e}");
            }
        }
        let keyframe = self.force_keyframe.swap(false, Ordering::AcqRel);
        let encoded = match self.encoder.encode(picture, keyframe) {
            Ok(encoded) => encoded,
            Err(e) => {
                tracing::warn!("H.264 encode failed: {e}");
                self.force_keyframe.store(true, Ordering::Release);
                return None;
            }
        };
        if encoded.data.is_empty() {
            return None; // rate control skipped this frame
        }
        self.budget.spend(encoded.data.len());
        self.rate.count_video(encoded.data.len());
        // The gap since the previous frame sent: frames left out by the
        // ladder or the budget must not slow the RTP clock down.
        let duration = self
            .last_sent
            .map_or(self.interval, |last| {
                captured.saturating_duration_since(last)
            })
            .max(Duration::from_millis(1));
        self.last_sent = Some(captured);
        Some(Encoded {
            data: Bytes::from(encoded.data),
            duration,
            captured,
            level: None,
            keyframe: encoded.keyframe,
        })
    }
}

/// Captures 20 ms frames and hands them to the Opus encoder on the media pool.
fn audio_thread(
    mut source: Box<dyn AudioSource>,
    mut encoder: OpusEncoder,
    tx: mpsc::Sender<(usize, Encoded)>,
    stop: Arc<AtomicBool>,
    muted: Arc<AtomicBool>,
    rate: RateControl,
) {
    let interval = Duration::from_millis(u64::from(crate::media::AUDIO_FRAME_MS));
    let live = source.is_live();
    let mut frames = Paced::new(interval, live, &stop);
    let mut bitrate = 0;
    // What the encoder was created with (`OpusEncoder::new`).
    let mut expected_loss = crate::client::audio_fec::expected_loss_percent(None, None);
    let encode = SerialQueue::new(
        RAW_AUDIO_CAPACITY,
        move |(frame, captured): (AudioFrame, Instant)| {
            let target = rate.audio_bps();
            if target != bitrate && target > 0 {
                match encoder.set_bitrate(target) {
                    Ok(()) => bitrate = target,
                    Err(e) => tracing::debug!("Opus bitrate {target}: {e}"),
                }
            }
            let loss = rate.audio_expected_loss();
            if loss != expected_loss {
                match encoder.set_expected_loss(loss) {
                    Ok(()) => expected_loss = loss,
                    Err(e) => tracing::debug!("Opus expected loss {loss} %: {e}"),
                }
            }
            let level = crate::media::audio_level_dbov(&frame.samples);
            let packet = match encoder.encode(&frame) {
                Ok(packet) => packet,
                Err(e) => {
                    tracing::warn!("Opus encode failed: {e}");
                    return;
                }
            };
            rate.count_audio(packet.len());
            let sample = Encoded {
                data: Bytes::from(packet),
                duration: interval,
                captured,
                level: Some(level),
                keyframe: false,
            };
            tx.try_send((0, sample)).ok(); // full: the network side is behind; closed: stopping
        },
    );
    while let Some(frame) = frames.next("audio", || source.next_frame()) {
        if muted.load(Ordering::Acquire) {
            continue;
        }
        if encode.try_push((frame, Instant::now())).is_err() {
            tracing::trace!("audio encoder behind; frame dropped");
        }
    }
}

/// Writes encoded samples to the track once the link is connected; counts
/// each video frame written in `sent` (the seed's `framesSent`).
pub(crate) async fn writer_task(
    outs: Vec<TrackOut>,
    mut rx: mpsc::Receiver<(usize, Encoded)>,
    connected: Arc<AtomicBool>,
    sent: Option<RateControl>,
    layer_sent: Option<Arc<[AtomicU64; 3]>>,
) {
    while let Some((slot, encoded)) = rx.recv().await {
        if !connected.load(Ordering::Acquire) {
            continue;
        }
        let Some(out) = outs.get(slot) else {
            continue;
        };
        let sample = Sample {
            data: encoded.data,
            duration: encoded.duration,
            ..Sample::new(encoded.captured)
        };
        // Mapped to the negotiated id by URI; left out when not negotiated.
        // Audio carries its level, video its capture time (simulcast layers
        // are lined up by it, `link::capture_time`).
        let extension = match encoded.level {
            Some(level) => HeaderExtension::AudioLevel(AudioLevelExtension {
                level,
                voice: level < SILENT_LEVEL,
            }),
            None => crate::link::capture_time::extension(encoded.captured),
        };
        if let Err(e) = out
            .track
            .write_sample(
                out.ssrc,
                out.payload_type,
                &sample,
                std::slice::from_ref(&extension),
            )
            .await
        {
            tracing::debug!("write_sample: {e}");
        } else {
            if let Some(sent) = sent.as_ref().filter(|_| slot == 0) {
                sent.count_sent();
            }
            if let Some(count) = layer_sent.as_ref().and_then(|l| l.get(slot)) {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Turns keyframe requests from the SFU into a forced keyframe.
pub(crate) async fn feedback_task(
    track: Arc<TrackLocalStaticSample>,
    force_keyframe: Arc<AtomicBool>,
) {
    while let Some(event) = track.poll().await {
        let TrackLocalEvent::OnRtcpPacket(packets) = event else {
            continue;
        };
        if packets.iter().any(|p| {
            let any = p.as_any();
            any.is::<rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication>()
                || any.is::<rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest>()
        }) {
            force_keyframe.store(true, Ordering::Release);
        }
    }
}
