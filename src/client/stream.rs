//! Local and remote streams (seed 001 `LocalStream` / `RemoteStream`).
//!
//! A [`LocalStream`] is a description plus its sources; publishing hands it to
//! the room-session actor, which starts its media threads. A [`RemoteStream`] is
//! the receiving end of a subscription: the latest decoded picture in a
//! [`VideoSlot`] (late frames overwrite, never queue), decoded audio in a bounded
//! channel that drops the oldest when the reader falls behind, and live stats.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::media::mixing::{self, AudioMixing};
use crate::media::{
    AudioFrame, AudioProfile, AudioSource, I420Frame, SyntheticAudio, SyntheticVideo, VideoProfile,
    VideoSource,
};
use crate::protocol::{StreamId, StreamInfo};

use super::stats::StreamStats;

/// Decoded audio frames buffered per remote stream (20 ms each: 1 s). When full,
/// the oldest frame is dropped: playout must stay live, not fall behind.
pub const REMOTE_AUDIO_CAPACITY: usize = 50;

/// A stream to publish: its sources and encoding profiles.
pub struct LocalStream {
    pub(crate) video: Option<Box<dyn VideoSource>>,
    pub(crate) audio: Option<Box<dyn AudioSource>>,
    pub(crate) video_profile: VideoProfile,
    pub(crate) audio_profile: AudioProfile,
    /// Shared with the video capture thread: see [`FramePause`].
    pub(crate) video_paused: Arc<AtomicBool>,
    /// Mixes audio files into `audio` (seed `startAudioMixing`).
    mixing: Option<AudioMixing>,
    /// Cap on what this stream sends, bit/s (seed `setNetworkBandwidth`, per
    /// stream); [`crate::client::Client::set_network_bandwidth`] overrides it.
    pub(crate) max_bandwidth_bps: Option<u32>,
    /// A screen share (seed `createStream({screen: true})`): published with
    /// `isScreen`, encoded as screen content (`screen` module).
    pub(crate) is_screen: bool,
    /// Simulcast layers below the top one (seed `addResolution` before
    /// publishing, `protocol::layers`); empty: one encoding.
    pub(crate) lower_resolutions: Vec<VideoProfile>,
}

/// Stops and restarts a [`LocalStream`]'s pictures without telling anyone, as
/// a camera that stalls would: while paused, captured pictures are dropped
/// before encoding, the stream stays published and unmuted, and subscribers
/// that detect stream state see it interrupted. Resuming starts with a
/// keyframe. Cheap to clone; from [`LocalStream::frame_pause`].
#[derive(Debug, Clone)]
pub struct FramePause(Arc<AtomicBool>);

impl FramePause {
    /// Pauses (`true`) or resumes (`false`) the stream's pictures.
    pub fn set_paused(&self, paused: bool) {
        self.0.store(paused, Ordering::Release);
    }

    /// Whether the pictures are paused.
    pub fn is_paused(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

impl LocalStream {
    /// A stream from the given sources. At least one must be present to publish.
    pub fn new(
        video: Option<Box<dyn VideoSource>>,
        audio: Option<Box<dyn AudioSource>>,
        video_profile: VideoProfile,
        audio_profile: AudioProfile,
    ) -> Self {
        let (audio, mixing) = match audio {
            Some(source) => {
                let (source, mixing) = mixing::mixable(source);
                (Some(Box::new(source) as Box<dyn AudioSource>), Some(mixing))
            }
            None => (None, None),
        };
        Self {
            video,
            audio,
            video_profile,
            audio_profile,
            video_paused: Arc::new(AtomicBool::new(false)),
            mixing,
            max_bandwidth_bps: None,
            is_screen: false,
            lower_resolutions: Vec::new(),
        }
    }

    /// Sends the video in simulcast layers (seed `addResolution` before
    /// publishing; issue 10 §2): the source's own size (named by the stream's
    /// video profile, its `resolutionId`) plus each of `lower`, smaller and
    /// smaller, at most 2 (3 layers in all). Subscribers pick a layer by
    /// `resolutionId` (the profile name) or let the server pick (`auto`).
    #[must_use]
    pub fn with_lower_resolutions(mut self, lower: Vec<VideoProfile>) -> Self {
        self.lower_resolutions = lower;
        self
    }

    /// The layers this stream publishes, largest first; empty for one
    /// encoding.
    pub fn resolutions(&self) -> Vec<crate::protocol::VideoResolution> {
        let Some(video) = self
            .video
            .as_ref()
            .filter(|_| !self.lower_resolutions.is_empty())
        else {
            return Vec::new();
        };
        let (width, height) = video.size();
        let top = crate::protocol::VideoResolution {
            resolution_id: self.video_profile.name.to_owned(),
            width,
            height,
            frame_rate: video.frame_rate(),
        };
        std::iter::once(top)
            .chain(
                self.lower_resolutions
                    .iter()
                    .map(|p| crate::protocol::VideoResolution {
                        resolution_id: p.name.to_owned(),
                        width: p.width,
                        height: p.height,
                        frame_rate: p.frame_rate.min(video.frame_rate()).max(1),
                    }),
            )
            .collect()
    }

    /// Caps what this stream sends (audio + video) at `kbps` kbit/s, below
    /// whatever the uplink estimate allows; clamped to
    /// [`super::congestion::MIN_NETWORK_BANDWIDTH_KBPS`]..=[`super::congestion::MAX_NETWORK_BANDWIDTH_KBPS`].
    #[must_use]
    pub fn with_max_bandwidth_kbps(mut self, kbps: u32) -> Self {
        let kbps = kbps.clamp(
            super::congestion::MIN_NETWORK_BANDWIDTH_KBPS,
            super::congestion::MAX_NETWORK_BANDWIDTH_KBPS,
        );
        self.max_bandwidth_bps = Some(kbps * 1000);
        self
    }

    /// Plays audio files into this stream's audio (seed `startAudioMixing`,
    /// `pauseAudioMixing`, `setAudioMixingPosition`…, events
    /// `audio-mixing-played` / `audio-mixing-finished`): mixed with the
    /// microphone, or replacing it. Take the handle before publishing; it
    /// works before and after. `None` for a stream without audio.
    pub fn audio_mixing(&self) -> Option<AudioMixing> {
        self.mixing.clone()
    }

    /// A handle that pauses this stream's pictures while it is published
    /// (before or after publishing; the handle outlives the stream).
    pub fn frame_pause(&self) -> FramePause {
        FramePause(Arc::clone(&self.video_paused))
    }

    /// The synthetic test pattern and a sine tone at `tone_hz`, at the given
    /// profiles. The pattern carries frame number and capture time in its pixels.
    pub fn synthetic(
        video_profile: VideoProfile,
        audio_profile: AudioProfile,
        tone_hz: f32,
    ) -> Self {
        let video = SyntheticVideo::new(
            video_profile.width,
            video_profile.height,
            video_profile.frame_rate,
        );
        let audio = SyntheticAudio::new(tone_hz, audio_profile.sample_rate, audio_profile.channels);
        Self::new(
            Some(Box::new(video)),
            Some(Box::new(audio)),
            video_profile,
            audio_profile,
        )
    }

    /// Whether the stream has video.
    pub fn has_video(&self) -> bool {
        self.video.is_some()
    }

    /// Whether the stream has audio.
    pub fn has_audio(&self) -> bool {
        self.audio.is_some()
    }
}

/// The latest decoded picture of a remote stream, shared between the decode
/// thread (writer) and the renderer (reader).
#[derive(Default)]
pub struct VideoSlot {
    frame: Mutex<Option<I420Frame>>,
    /// Bumped on every new frame, so a reader can tell whether anything changed.
    generation: AtomicU64,
    #[allow(clippy::type_complexity)]
    on_frame: Mutex<Option<Box<dyn Fn() + Send>>>,
}

impl VideoSlot {
    fn lock_frame(&self) -> MutexGuard<'_, Option<I420Frame>> {
        // The slot holds plain data; a panic mid-write leaves at worst a stale frame.
        self.frame.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the picture (decode thread).
    pub fn store(&self, frame: I420Frame) {
        *self.lock_frame() = Some(frame);
        self.generation.fetch_add(1, Ordering::Release);
        if let Some(callback) = self
            .on_frame
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            callback();
        }
    }

    /// Counter of stored frames; compare with a previous value to skip unchanged
    /// frames.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A copy of the latest picture.
    pub fn latest(&self) -> Option<I420Frame> {
        self.lock_frame().clone()
    }

    /// Runs `f` on the latest picture without copying it. Keep `f` short: the
    /// decode thread waits for it.
    pub fn with_latest<R>(&self, f: impl FnOnce(Option<&I420Frame>) -> R) -> R {
        f(self.lock_frame().as_ref())
    }

    /// Called after each stored frame (e.g. `egui::Context::request_repaint`).
    pub fn set_on_frame(&self, callback: impl Fn() + Send + 'static) {
        *self.on_frame.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(callback));
    }
}

/// The receiving end of a subscription.
#[derive(Clone)]
pub struct RemoteStream {
    pub(crate) info: StreamInfo,
    pub(crate) video: Arc<VideoSlot>,
    pub(crate) audio_rx: crossbeam_channel::Receiver<AudioFrame>,
    pub(crate) stats: Arc<Mutex<StreamStats>>,
    pub(crate) ended: Arc<AtomicBool>,
    pub(crate) tap: Arc<super::media_tap::TapSlot>,
    pub(crate) frames: super::FrameLog,
}

impl RemoteStream {
    /// Taps the subscription's encoded media (H.264 access units, Opus
    /// packets) as it arrives, for recording without re-encoding. A new tap
    /// replaces an earlier one; dropping it stops the tapping.
    pub fn tap_media(&self) -> super::MediaTap {
        self.tap.connect()
    }

    /// Its received video frames and their RTP packets, while the client's
    /// [`super::FrameLogs`] are enabled (the stream debugger's timeline).
    pub fn frame_log(&self) -> &super::FrameLog {
        &self.frames
    }

    /// The stream's id.
    pub fn id(&self) -> StreamId {
        self.info.stream_id
    }

    /// What the publisher announced.
    pub fn info(&self) -> &StreamInfo {
        &self.info
    }

    /// The latest decoded picture.
    pub fn video(&self) -> &Arc<VideoSlot> {
        &self.video
    }

    /// Decoded audio, 20 ms frames, oldest first.
    pub fn audio(&self) -> &crossbeam_channel::Receiver<AudioFrame> {
        &self.audio_rx
    }

    /// A copy of the stats now.
    pub fn stats(&self) -> StreamStats {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Runs `f` with the stats locked (e.g. to take latency samples).
    pub fn with_stats<R>(&self, f: impl FnOnce(&mut StreamStats) -> R) -> R {
        f(&mut self.stats.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether the subscription has ended (unsubscribed, stream removed, left).
    pub fn is_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }
}
