//! A screen share's background audio, sent through the camera stream's
//! audio (seed 001 `bindScreenAudio2RelatedStream`).
//!
//! The screen audio is a live capture source the user chooses (typically a
//! PulseAudio monitor, `pulseaudio:SINK.monitor`, of a sink where the shared
//! application plays). Mixing the monitor of the *speakers* would send every
//! remote participant's voice back to them (echo): the source must be a sink
//! that does not carry the call, e.g. a null sink the shared application is
//! moved to (`pactl load-module module-null-sink sink_name=share`).
//!
//! ```text
//!  huddle-screen-audio thread: source.next_frame (blocks, 20 ms)
//!        ─▶ bounded(SCREEN_AUDIO_CAPACITY; full: oldest dropped)
//!  camera's MixingSource::next_frame (on the microphone's clock)
//!        ─▶ try_recv one frame ─▶ added to the microphone's (or replaces it)
//! ```
//!
//! Invariants: the camera's audio never waits for the screen audio (a frame
//! that is not there is silence); a backlog never builds up (the oldest
//! frames go); the thread ends when the feed is dropped or the source ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, TrySendError};

use super::{AudioFrame, AudioSource, MediaError, Result};

/// 20 ms frames queued between the capture thread and the mixing stage
/// (100 ms). Capture thread → mixer; when full the oldest frame is dropped,
/// so the screen audio stays as live as the microphone.
pub const SCREEN_AUDIO_CAPACITY: usize = 5;

/// A live source read on its own thread, for the mixing stage to take from
/// without waiting.
pub struct ScreenAudioFeed {
    frames: Receiver<AudioFrame>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ScreenAudioFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScreenAudioFeed").finish_non_exhaustive()
    }
}

impl ScreenAudioFeed {
    /// Starts reading `source` (its frames must be at `rate`).
    ///
    /// # Errors
    /// [`MediaError::InvalidParameter`] for a source at another rate;
    /// [`MediaError::Device`] when the thread cannot start.
    pub fn start(mut source: Box<dyn AudioSource>, rate: u32) -> Result<Self> {
        if source.sample_rate() != rate {
            return Err(MediaError::InvalidParameter(format!(
                "the screen audio is at {} Hz, the stream at {rate} Hz",
                source.sample_rate()
            )));
        }
        let (tx, frames) = crossbeam_channel::bounded(SCREEN_AUDIO_CAPACITY);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stop, drop_rx) = (Arc::clone(&stop), frames.clone());
            std::thread::Builder::new()
                .name("huddle-screen-audio".into())
                .spawn(move || {
                    while !stop.load(Ordering::Acquire) {
                        let frame = match source.next_frame() {
                            Ok(Some(frame)) => frame,
                            Ok(None) => break,
                            Err(e) => {
                                tracing::warn!("screen audio stopped: {e}");
                                break;
                            }
                        };
                        if let Err(TrySendError::Full(frame)) = tx.try_send(frame) {
                            drop_rx.try_recv().ok(); // the oldest goes
                            tx.try_send(frame).ok(); // room now, unless raced: dropped
                        }
                    }
                })
                .map_err(|e| MediaError::Device(format!("cannot start the screen audio: {e}")))?
        };
        Ok(Self {
            frames,
            stop,
            thread: Some(thread),
        })
    }

    /// The next captured frame, if one is there (never waits).
    pub fn try_frame(&self) -> Option<AudioFrame> {
        self.frames.try_recv().ok()
    }
}

impl Drop for ScreenAudioFeed {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // The thread ends after its current frame (≤ 20 ms for a live
        // source); not joined, so the audio thread never waits for it.
        self.thread.take();
    }
}

/// Adds `screen` (its first channel) into `frame`, sample by sample on each
/// of `frame`'s channels, saturating.
pub fn add_into(frame: &mut AudioFrame, screen: &AudioFrame) {
    let out_channels = usize::from(frame.channels.max(1));
    let in_channels = usize::from(screen.channels.max(1));
    let out = frame.samples.chunks_mut(out_channels);
    let input = screen.samples.chunks(in_channels);
    for (o, i) in out.zip(input) {
        let add = i32::from(i.first().copied().unwrap_or(0));
        for s in o {
            *s = (i32::from(*s) + add).clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{SyntheticAudio, dominant_frequency};

    #[test]
    fn adds_saturating_on_every_channel() {
        let mut frame = AudioFrame {
            sample_rate: 48_000,
            channels: 2,
            samples: vec![100, 200, 32_000, 32_000],
        };
        let screen = AudioFrame {
            sample_rate: 48_000,
            channels: 1,
            samples: vec![5, 1_000],
        };
        add_into(&mut frame, &screen);
        assert_eq!(frame.samples, [105, 205, 32_767, 32_767]);
    }

    #[test]
    fn a_feed_delivers_the_source_and_refuses_another_rate() {
        let tone = SyntheticAudio::new(660.0, 48_000, 1);
        let feed = ScreenAudioFeed::start(Box::new(tone), 48_000).expect("starts");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let frame = loop {
            if let Some(f) = feed.try_frame() {
                break f;
            }
            assert!(std::time::Instant::now() < deadline, "no frame");
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        let hz = dominant_frequency(&frame.samples, 1, 48_000).expect("a tone");
        assert!((hz - 660.0).abs() < 60.0, "{hz} Hz");
        let other = SyntheticAudio::new(660.0, 16_000, 1);
        let err = ScreenAudioFeed::start(Box::new(other), 48_000).expect_err("another rate");
        assert_eq!(err.seed_code(), 90_000_005);
    }
}
