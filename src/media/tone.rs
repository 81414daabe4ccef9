//! Continuous-phase sine tone generator (the synthetic microphone).
//!
//! Why this exists: audio end-to-end tests publish a known frequency and check
//! it on the far side with [`super::analysis::dominant_frequency`].
//! Invariants: every call to [`ToneSource::next_frame`] yields exactly
//! [`super::AUDIO_FRAME_MS`] of audio; the phase carries over between frames (no
//! clicks at frame boundaries); all channels carry the same signal.

use super::frame::{AudioFrame, samples_per_frame};
use std::f64::consts::TAU;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// A tone's amplitude that can change while it plays (a talker getting
/// louder, in top-N tests and benchmarks). Cheap to clone; all clones share
/// one value, a fraction of full scale in `0..=1`.
#[derive(Clone, Debug)]
pub struct ToneLevel(Arc<AtomicU32>);

impl ToneLevel {
    /// A level starting at `amplitude` (clamped to `0..=1`).
    #[must_use]
    pub fn new(amplitude: f32) -> Self {
        Self(Arc::new(AtomicU32::new(
            amplitude.clamp(0.0, 1.0).to_bits(),
        )))
    }

    /// Sets the amplitude from the next frame on.
    pub fn set(&self, amplitude: f32) {
        self.0
            .store(amplitude.clamp(0.0, 1.0).to_bits(), Ordering::Relaxed);
    }

    /// The amplitude now.
    #[must_use]
    pub fn get(&self) -> f32 {
        f32::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// Generates 20 ms frames of a sine wave.
#[derive(Clone, Debug)]
pub struct ToneSource {
    freq_hz: f64,
    sample_rate: u32,
    channels: u16,
    amplitude: f64,
    /// Overrides `amplitude` frame by frame when set.
    level: Option<ToneLevel>,
    /// Phase in cycles, kept in `[0, 1)` to avoid precision loss over time.
    phase: f64,
}

impl ToneSource {
    /// Creates a tone of `freq_hz` at `amplitude` (fraction of full scale,
    /// clamped to `0..=1`). `channels` of 0 is treated as 1.
    #[must_use]
    pub fn new(freq_hz: f32, sample_rate: u32, channels: u16, amplitude: f32) -> Self {
        Self {
            freq_hz: f64::from(freq_hz),
            sample_rate,
            channels: channels.max(1),
            amplitude: f64::from(amplitude.clamp(0.0, 1.0)),
            level: None,
            phase: 0.0,
        }
    }

    /// The same tone with its amplitude read from `level` at every frame.
    #[must_use]
    pub fn with_level(mut self, level: ToneLevel) -> Self {
        self.level = Some(level);
        self
    }

    /// Sample rate in Hz.
    #[must_use]
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Number of interleaved channels.
    #[must_use]
    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Produces the next [`super::AUDIO_FRAME_MS`] of the tone.
    pub fn next_frame(&mut self) -> AudioFrame {
        let n = samples_per_frame(self.sample_rate);
        let ch = usize::from(self.channels);
        let mut samples = Vec::with_capacity(n * ch);
        let step = if self.sample_rate == 0 {
            0.0
        } else {
            self.freq_hz / f64::from(self.sample_rate)
        };
        let amplitude = self
            .level
            .as_ref()
            .map_or(self.amplitude, |l| f64::from(l.get()));
        let scale = amplitude * f64::from(i16::MAX);
        for _ in 0..n {
            let s = ((self.phase * TAU).sin() * scale).round() as i16;
            samples.extend(std::iter::repeat_n(s, ch));
            self.phase = (self.phase + step).fract();
        }
        AudioFrame {
            sample_rate: self.sample_rate,
            channels: self.channels,
            samples,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_20ms_and_continuous() {
        let mut t = ToneSource::new(1000.0, 48_000, 2, 0.5);
        let a = t.next_frame();
        let b = t.next_frame();
        assert_eq!(a.samples.len(), 960 * 2);
        assert_eq!(a.samples[0], a.samples[1]);
        // 1 kHz at 48 kHz has period 48 samples; 960 is a multiple, so frame b == frame a.
        assert_eq!(a, b);
        let peak = a.samples.iter().map(|s| s.unsigned_abs()).max();
        assert_eq!(peak, Some(16_384));
    }

    #[test]
    fn a_shared_level_changes_the_next_frame() {
        let level = ToneLevel::new(0.1);
        let mut t = ToneSource::new(1000.0, 48_000, 1, 0.5).with_level(level.clone());
        let peak = |f: AudioFrame| f.samples.iter().map(|s| s.unsigned_abs()).max();
        assert_eq!(peak(t.next_frame()), Some(3277));
        level.set(0.5);
        assert_eq!(peak(t.next_frame()), Some(16_384));
    }
}
