//! Reads a remote stream's decoded audio: measures its level (for the speaking
//! highlight) and hands it to playout at the tile's volume.
//!
//! `RemoteStream::audio()` is a single-consumer queue, so one reader must do
//! both jobs; this thread is that reader. (Proposal for the SDK: compute the
//! level in the decode thread and keep it in `StreamStats`, so any consumer
//! can read it without owning the queue.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use crate::client::RemoteStream;
use crate::media::rms_level;

use super::devices::AudioPlayout;

/// How long without audio before the level reads 0 (muted, or stream gone).
const SILENCE_AFTER: Duration = Duration::from_millis(150);

/// A level at or above this is "speaking" (RMS, fraction of full scale).
pub const SPEAKING_LEVEL: f32 = 0.01;

/// Levels and volume shared between the tap thread and the UI.
#[derive(Debug)]
pub struct AudioShared {
    /// RMS of the latest 20 ms frame (f32 bits).
    level: AtomicU32,
    /// Playout volume 0..=1 (f32 bits).
    volume: AtomicU32,
    stop: AtomicBool,
}

impl AudioShared {
    /// The latest level.
    pub fn level(&self) -> f32 {
        f32::from_bits(self.level.load(Ordering::Relaxed))
    }

    /// The volume.
    pub fn volume(&self) -> f32 {
        f32::from_bits(self.volume.load(Ordering::Relaxed))
    }

    /// Sets the volume (clamped to 0..=1).
    pub fn set_volume(&self, volume: f32) {
        self.volume
            .store(volume.clamp(0.0, 1.0).to_bits(), Ordering::Relaxed);
    }
}

/// Owns the tap thread; stops it when dropped.
pub struct AudioTap {
    shared: Arc<AudioShared>,
    /// New playouts (speaker switched); the thread takes the newest.
    playouts: crossbeam_channel::Sender<Box<dyn AudioPlayout>>,
}

impl AudioTap {
    /// Starts the reader thread for `stream`.
    pub fn start(
        stream: &RemoteStream,
        mut playout: Box<dyn AudioPlayout>,
        volume: f32,
        repaint: impl Fn() + Send + 'static,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(AudioShared {
            level: AtomicU32::new(0f32.to_bits()),
            volume: AtomicU32::new(volume.clamp(0.0, 1.0).to_bits()),
            stop: AtomicBool::new(false),
        });
        let audio = stream.audio().clone();
        let stream = stream.clone();
        let thread_shared = Arc::clone(&shared);
        let (playouts, new_playouts) = crossbeam_channel::unbounded::<Box<dyn AudioPlayout>>();
        std::thread::Builder::new()
            .name("huddle-audio-tap".into())
            .spawn(move || {
                let s = thread_shared;
                let mut was_speaking = false;
                while !s.stop.load(Ordering::Relaxed) && !stream.is_ended() {
                    let level = match audio.recv_timeout(SILENCE_AFTER) {
                        Ok(frame) => {
                            if let Some(next) = new_playouts.try_iter().last() {
                                playout = next; // the old one leaves its mixer here
                            }
                            playout.play(&frame, s.volume());
                            rms_level(&frame.samples)
                        }
                        Err(crossbeam_channel::RecvTimeoutError::Timeout) => 0.0,
                        Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
                    };
                    s.level.store(level.to_bits(), Ordering::Relaxed);
                    let speaking = level >= SPEAKING_LEVEL;
                    if speaking != was_speaking {
                        was_speaking = speaking;
                        repaint();
                    }
                }
                s.level.store(0f32.to_bits(), Ordering::Relaxed);
            })?;
        Ok(Self { shared, playouts })
    }

    /// Plays through `playout` from the next frame on (speaker switched).
    pub fn set_playout(&self, playout: Box<dyn AudioPlayout>) {
        // Fails only when the thread has ended, and then there is nothing to play.
        self.playouts.send(playout).ok();
    }

    /// Level and volume.
    pub fn shared(&self) -> &AudioShared {
        &self.shared
    }
}

impl Drop for AudioTap {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}
