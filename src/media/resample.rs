//! Streaming mono resampler over rubato, fed arbitrary-sized blocks.
//!
//! Why this exists: devices and audio files run at their own rate (44.1 kHz
//! is common) while the pipeline is 48 kHz; rubato's FFT resampler wants fixed-size chunks.
//! This keeps the remainder between calls. Equal rates pass through untouched.
//! Runs on device and media threads, never in a cpal callback (it may
//! allocate).

use rubato::{FftFixedInOut, Resampler};

use crate::media::{MediaError, Result};

/// Input chunk asked of rubato, in milliseconds (rubato rounds it to fit the ratio).
const CHUNK_MS: usize = 10;

/// Mono resampler from `from` Hz to `to` Hz.
pub(crate) struct MonoResampler {
    /// `None` when the rates are equal (pass-through).
    inner: Option<FftFixedInOut<f32>>,
    /// Input not yet resampled (less than one chunk after each `push`).
    pending: Vec<f32>,
    /// rubato's output buffer, one channel.
    out: Vec<Vec<f32>>,
}

impl MonoResampler {
    /// A resampler from `from` to `to` Hz.
    pub(crate) fn new(from: u32, to: u32) -> Result<Self> {
        if from == 0 || to == 0 {
            return Err(MediaError::InvalidParameter(format!(
                "resample {from} Hz -> {to} Hz"
            )));
        }
        if from == to {
            return Ok(Self {
                inner: None,
                pending: Vec::new(),
                out: Vec::new(),
            });
        }
        let chunk = (from as usize * CHUNK_MS / 1000).max(1);
        let inner = FftFixedInOut::<f32>::new(from as usize, to as usize, chunk, 1)
            .map_err(|e| MediaError::InvalidParameter(format!("resampler: {e}")))?;
        let out = vec![vec![0.0; inner.output_frames_max()]];
        Ok(Self {
            pending: Vec::with_capacity(inner.input_frames_max() * 2),
            inner: Some(inner),
            out,
        })
    }

    /// Resamples `input` and appends what is ready to `output`.
    pub(crate) fn push(&mut self, input: &[f32], output: &mut Vec<f32>) {
        let Some(inner) = self.inner.as_mut() else {
            output.extend_from_slice(input);
            return;
        };
        self.pending.extend_from_slice(input);
        let mut used = 0;
        loop {
            let need = inner.input_frames_next();
            let Some(chunk) = self.pending.get(used..used + need) else {
                break;
            };
            match inner.process_into_buffer(&[chunk], &mut self.out, None) {
                Ok((consumed, produced)) => {
                    used += consumed;
                    if let Some(out) = self.out.first().and_then(|o| o.get(..produced)) {
                        output.extend_from_slice(out);
                    }
                }
                Err(e) => {
                    // Cannot happen with buffers sized from the resampler itself;
                    // drop the input rather than loop forever.
                    tracing::warn!("resampler: {e}");
                    used = self.pending.len();
                    break;
                }
            }
        }
        self.pending.drain(..used);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::dominant_frequency;

    #[test]
    fn resamples_44k1_to_48k_keeping_pitch() {
        let mut r = MonoResampler::new(44_100, 48_000).expect("resampler");
        let input: Vec<f32> = (0..44_100)
            .map(|i| (std::f32::consts::TAU * 523.0 * i as f32 / 44_100.0).sin() * 0.5)
            .collect();
        let mut out = Vec::new();
        // Odd block sizes, as a device delivers them.
        for block in input.chunks(333) {
            r.push(block, &mut out);
        }
        let expected = 48_000.0;
        assert!(
            (out.len() as f32 - expected).abs() < 1_000.0,
            "{} samples out",
            out.len()
        );
        let pcm: Vec<i16> = out.iter().map(|&s| (s * 32767.0) as i16).collect();
        let f = dominant_frequency(&pcm[2_000..], 1, 48_000).unwrap_or(0.0);
        assert!((f - 523.0).abs() < 1.0, "{f} Hz");
    }

    #[test]
    fn equal_rates_pass_through() {
        let mut r = MonoResampler::new(48_000, 48_000).expect("resampler");
        let mut out = Vec::new();
        r.push(&[0.1, 0.2, 0.3], &mut out);
        assert_eq!(out, vec![0.1, 0.2, 0.3]);
    }
}
