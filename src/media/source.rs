//! Source traits for video/audio producers, plus the synthetic implementations.
//!
//! Why this exists: the client SDK publishes from "a source" and must not care
//! whether it is a camera, a microphone or a test generator. Real devices can
//! implement these traits later without touching the publisher.
//!
//! Invariants / contract:
//! * Sources are `Send` so a publisher thread can own them.
//! * `next_frame` returns `Ok(None)` when the source has ended for good.
//! * Pacing is the caller's job for synthetic sources: they return a frame
//!   immediately on every call, so the caller must call them every
//!   `1 / frame_rate` seconds (video) or every [`super::AUDIO_FRAME_MS`]
//!   (audio). A real device implementation (see `media::devices`) instead
//!   blocks in `next_frame` until data is available and says so with
//!   `is_live() == true`; callers must not add their own pacing to those.

use super::MediaError;
use super::frame::{AudioFrame, I420Frame};
use super::pattern::{TestPattern, now_us};
use super::tone::ToneSource;

/// A producer of raw video frames (camera, screen, test pattern).
pub trait VideoSource: Send {
    /// Picture size `(width, height)` of produced frames.
    fn size(&self) -> (u32, u32);
    /// Nominal frames per second.
    fn frame_rate(&self) -> u32;
    /// Next frame; `Ok(None)` once the source has ended.
    ///
    /// # Errors
    /// Device failures ([`MediaError::Device`]).
    fn next_frame(&mut self) -> Result<Option<I420Frame>, MediaError>;
    /// True when the source paces itself: `next_frame` blocks until the device
    /// has a frame, so the caller must not sleep between calls. False (the
    /// default) for generators that return at once and rely on the caller.
    fn is_live(&self) -> bool {
        false
    }
}

/// A producer of raw audio frames (microphone, tone generator).
pub trait AudioSource: Send {
    /// Sample rate of produced frames in Hz.
    fn sample_rate(&self) -> u32;
    /// Number of interleaved channels.
    fn channels(&self) -> u16;
    /// Next [`super::AUDIO_FRAME_MS`] frame; `Ok(None)` once the source has ended.
    ///
    /// # Errors
    /// Device failures ([`MediaError::Device`]).
    fn next_frame(&mut self) -> Result<Option<AudioFrame>, MediaError>;
    /// True when the source paces itself (a microphone: `next_frame` blocks
    /// until 20 ms have been captured); see [`VideoSource::is_live`].
    fn is_live(&self) -> bool {
        false
    }
}

/// Test-pattern video: each frame is stamped with a running frame number
/// (starting at 0) and the wall-clock capture time ([`now_us`]) at the moment
/// `next_frame` is called.
#[derive(Clone, Debug)]
pub struct SyntheticVideo {
    pattern: TestPattern,
    frame_rate: u32,
    next_no: u32,
    limit: Option<u32>,
}

impl SyntheticVideo {
    /// Creates an endless synthetic source of `width` x `height` at `frame_rate` fps.
    #[must_use]
    pub fn new(width: u32, height: u32, frame_rate: u32) -> Self {
        Self {
            pattern: TestPattern::new(width, height),
            frame_rate,
            next_no: 0,
            limit: None,
        }
    }

    /// Ends the source after `frames` frames (for finite tests).
    #[must_use]
    pub fn with_frame_limit(mut self, frames: u32) -> Self {
        self.limit = Some(frames);
        self
    }

    /// Frame number that the next call to `next_frame` will stamp.
    #[must_use]
    pub fn next_frame_no(&self) -> u32 {
        self.next_no
    }

    /// Renders the next frame into `frame` (no allocation); returns the
    /// stamped frame number, or `None` once the frame limit is reached.
    pub fn next_frame_into(&mut self, frame: &mut I420Frame) -> Option<u32> {
        if self.limit.is_some_and(|l| self.next_no >= l) {
            return None;
        }
        let no = self.next_no;
        self.pattern.render_into(frame, no, now_us());
        self.next_no = self.next_no.wrapping_add(1);
        Some(no)
    }
}

impl VideoSource for SyntheticVideo {
    fn size(&self) -> (u32, u32) {
        self.pattern.size()
    }

    fn frame_rate(&self) -> u32 {
        self.frame_rate
    }

    fn next_frame(&mut self) -> Result<Option<I420Frame>, MediaError> {
        let (w, h) = self.pattern.size();
        let mut frame = I420Frame::new_black(w, h);
        Ok(self.next_frame_into(&mut frame).map(|_| frame))
    }
}

/// Sine-tone audio source (endless).
#[derive(Clone, Debug)]
pub struct SyntheticAudio {
    tone: ToneSource,
}

impl SyntheticAudio {
    /// Creates a tone source of `freq_hz` at half full scale.
    #[must_use]
    pub fn new(freq_hz: f32, sample_rate: u32, channels: u16) -> Self {
        Self {
            tone: ToneSource::new(freq_hz, sample_rate, channels, 0.5),
        }
    }

    /// Wraps an existing tone generator.
    #[must_use]
    pub fn from_tone(tone: ToneSource) -> Self {
        Self { tone }
    }
}

impl AudioSource for SyntheticAudio {
    fn sample_rate(&self) -> u32 {
        self.tone.sample_rate()
    }

    fn channels(&self) -> u16 {
        self.tone.channels()
    }

    fn next_frame(&mut self) -> Result<Option<AudioFrame>, MediaError> {
        Ok(Some(self.tone.next_frame()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::pattern::read_stamp;

    #[test]
    fn synthetic_video_counts_and_stamps() {
        let mut src: Box<dyn VideoSource> =
            Box::new(SyntheticVideo::new(320, 240, 15).with_frame_limit(3));
        assert_eq!(src.size(), (320, 240));
        let before = now_us();
        for n in 0..3 {
            let f = src.next_frame().expect("ok").expect("frame");
            let s = read_stamp(&f).expect("stamp");
            assert_eq!(s.frame_no, n);
            assert!(s.capture_time_us >= before && s.capture_time_us <= now_us());
        }
        assert!(src.next_frame().expect("ok").is_none());
        assert!(
            !src.is_live(),
            "synthetic sources rely on the caller's pacing"
        );
    }

    #[test]
    fn synthetic_audio_frames() {
        let mut src: Box<dyn AudioSource> = Box::new(SyntheticAudio::new(440.0, 48_000, 1));
        let f = src.next_frame().expect("ok").expect("frame");
        assert_eq!(
            (f.sample_rate, f.channels, f.samples.len()),
            (48_000, 1, 960)
        );
    }
}
