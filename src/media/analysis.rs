//! Signal analysis for audio checks: dominant frequency and RMS level.
//!
//! Why this exists: tests and the bot verify received audio by measuring the
//! frequency of a known tone after Opus encode/decode and the network.
//!
//! Method ([`dominant_frequency`]): downmix to mono, remove DC, apply a Hann
//! window, zero-padded radix-2 FFT (at least 2x the input length) to find the
//! peak bin, then refine by golden-section search of the windowed signal's
//! DTFT magnitude within ±1 bin. For a 1 s clean tone the result is accurate
//! to a few mHz; cost is one FFT plus ~40 O(n) DTFT evaluations.

use std::f64::consts::PI;

/// RMS level of `samples` as a fraction of full scale (0 = silence, 1 = full-scale square).
#[must_use]
pub fn rms_level(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (sum / samples.len() as f64).sqrt() / 32768.0;
    rms.min(1.0) as f32
}

/// The RFC 6464 audio level of `samples` (§3, as libwebrtc measures it): the
/// RMS relative to full scale in −dBov, rounded, 0 (loudest) to 127
/// (silence or quieter). Publishers send it in the audio level extension.
#[must_use]
pub fn audio_level_dbov(samples: &[i16]) -> u8 {
    let rms = f64::from(rms_level(samples));
    if rms <= 0.0 {
        return 127;
    }
    (-20.0 * rms.log10()).round().clamp(0.0, 127.0) as u8
}

/// Frequency in Hz of the strongest spectral peak of interleaved `samples`,
/// or `None` for empty/silent input or invalid `channels`/`sample_rate`.
#[must_use]
pub fn dominant_frequency(samples: &[i16], channels: u16, sample_rate: u32) -> Option<f32> {
    let ch = usize::from(channels);
    if ch == 0 || sample_rate == 0 {
        return None;
    }
    let n = samples.len() / ch;
    if n < 4 {
        return None;
    }
    // Downmix, remove DC, window.
    let mut x: Vec<f64> = samples
        .chunks_exact(ch)
        .map(|c| c.iter().map(|&s| f64::from(s)).sum::<f64>() / ch as f64)
        .collect();
    let mean = x.iter().sum::<f64>() / n as f64;
    for (i, v) in x.iter_mut().enumerate() {
        let w = 0.5 - 0.5 * (2.0 * PI * i as f64 / (n - 1) as f64).cos();
        *v = (*v - mean) * w;
    }
    let size = (2 * n).next_power_of_two();
    let mut re = vec![0.0; size];
    let mut im = vec![0.0; size];
    re[..n].copy_from_slice(&x);
    fft(&mut re, &mut im);
    let (peak_bin, peak_mag) = (1..size / 2)
        .map(|k| (k, re[k] * re[k] + im[k] * im[k]))
        .fold(
            (0, 0.0),
            |best, cur| if cur.1 > best.1 { cur } else { best },
        );
    if peak_bin == 0 || peak_mag <= 1e-9 {
        return None;
    }
    // Refine: maximise |DTFT| over normalised frequency (cycles/sample).
    let bin = 1.0 / size as f64;
    let mut lo = (peak_bin as f64 - 1.0) * bin;
    let mut hi = (peak_bin as f64 + 1.0) * bin;
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let mut a = hi - g * (hi - lo);
    let mut b = lo + g * (hi - lo);
    let mut fa = dtft_power(&x, a);
    let mut fb = dtft_power(&x, b);
    for _ in 0..40 {
        if fa < fb {
            lo = a;
            a = b;
            fa = fb;
            b = lo + g * (hi - lo);
            fb = dtft_power(&x, b);
        } else {
            hi = b;
            b = a;
            fb = fa;
            a = hi - g * (hi - lo);
            fa = dtft_power(&x, a);
        }
    }
    Some((0.5 * (lo + hi) * f64::from(sample_rate)) as f32)
}

/// |X(f)|² of `x` at normalised frequency `f` (cycles/sample), via a rotating phasor.
fn dtft_power(x: &[f64], f: f64) -> f64 {
    let (s, c) = (-2.0 * PI * f).sin_cos();
    let (mut pr, mut pi) = (1.0f64, 0.0f64);
    let (mut sr, mut si) = (0.0, 0.0);
    for (i, &v) in x.iter().enumerate() {
        sr += v * pr;
        si += v * pi;
        let nr = pr * c - pi * s;
        pi = pr * s + pi * c;
        pr = nr;
        if i % 4096 == 4095 {
            // Re-normalise to stop magnitude drift.
            let m = (pr * pr + pi * pi).sqrt();
            pr /= m;
            pi /= m;
        }
    }
    sr * sr + si * si
}

/// In-place iterative radix-2 FFT; `re.len()` must be a power of two equal to `im.len()`.
fn fft(re: &mut [f64], im: &mut [f64]) {
    let n = re.len();
    if n < 2 || im.len() != n || !n.is_power_of_two() {
        return;
    }
    let bits = n.trailing_zeros();
    for i in 0..n {
        let j = i.reverse_bits() >> (usize::BITS - bits);
        if j > i {
            re.swap(i, j);
            im.swap(i, j);
        }
    }
    let mut len = 2;
    while len <= n {
        let ang = -2.0 * PI / len as f64;
        let (ws, wc) = ang.sin_cos();
        for start in (0..n).step_by(len) {
            let (mut wr, mut wi) = (1.0f64, 0.0f64);
            for k in 0..len / 2 {
                let a = start + k;
                let b = a + len / 2;
                let tr = re[b] * wr - im[b] * wi;
                let ti = re[b] * wi + im[b] * wr;
                re[b] = re[a] - tr;
                im[b] = im[a] - ti;
                re[a] += tr;
                im[a] += ti;
                let nr = wr * wc - wi * ws;
                wi = wr * ws + wi * wc;
                wr = nr;
            }
        }
        len <<= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_level_is_minus_dbov() {
        assert_eq!(audio_level_dbov(&[]), 127);
        assert_eq!(audio_level_dbov(&[0; 960]), 127);
        // Full-scale square: 0 dBov; half of it: −6 dBov.
        assert_eq!(audio_level_dbov(&[i16::MIN; 960]), 0);
        assert_eq!(audio_level_dbov(&[16_384; 960]), 6);
        // A sine at half scale has RMS 0.354: −9 dBov.
        let sine: Vec<i16> = (0..960)
            .map(|i| ((i as f64 * 0.1).sin() * 16_384.0) as i16)
            .collect();
        assert_eq!(audio_level_dbov(&sine), 9);
    }
    use crate::media::tone::ToneSource;

    fn tone(freq: f32, rate: u32, ch: u16, ms: u32) -> Vec<i16> {
        let mut t = ToneSource::new(freq, rate, ch, 0.5);
        (0..ms / 20).flat_map(|_| t.next_frame().samples).collect()
    }

    #[test]
    fn clean_tones_are_exact() {
        for (f, rate, ch) in [
            (440.0, 48_000, 1),
            (1000.0, 48_000, 2),
            (997.3, 16_000, 1),
            (50.0, 48_000, 1),
        ] {
            let s = tone(f, rate, ch, 1000);
            let t0 = std::time::Instant::now();
            let got = dominant_frequency(&s, ch, rate).unwrap_or(0.0);
            eprintln!("{f} Hz @ {rate}: {got} Hz in {:?}", t0.elapsed());
            assert!((got - f).abs() < 0.05, "{f} Hz -> {got}");
        }
    }

    #[test]
    fn silence_and_bad_input() {
        assert_eq!(dominant_frequency(&[0; 4800], 1, 48_000), None);
        assert_eq!(dominant_frequency(&[], 1, 48_000), None);
        assert_eq!(dominant_frequency(&[1, 2, 3], 0, 48_000), None);
        assert_eq!(rms_level(&[]), 0.0);
        assert!((rms_level(&[i16::MIN; 10]) - 1.0).abs() < 1e-6);
        let s = tone(440.0, 48_000, 1, 1000);
        assert!((rms_level(&s) - 0.5 / 2f32.sqrt()).abs() < 0.01);
    }
}
