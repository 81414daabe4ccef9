//! Playout mixing logic: per-stream jitter buffers, volumes, level meters and
//! a soft clipper. Pure (no device, no clock): [`super::AudioPlayout`] calls
//! [`Mixer::render`] once per 20 ms block; tests call it directly.
//!
//! Why a jitter buffer: decoded remote audio arrives in network bursts while
//! the speaker consumes at its own steady clock. Each stream waits until
//! [`JITTER_TARGET_FRAMES`] are queued before playing, conceals an empty
//! buffer with silence (and re-buffers), and drops the oldest frames when the
//! queue grows past [`JITTER_MAX_FRAMES`] (sender clock faster, or a burst),
//! so latency stays bounded.
//!
//! Invariants: every stream is 48 kHz mono 20 ms ([`MIX_RATE`], [`MIX_BLOCK`])
//! inside the mixer (other channel counts are downmixed, other rates dropped
//! and counted); the mixed output is always within (-1, 1); streams are kept
//! in a `BTreeMap`, so mixing and listing order is the id order.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crossbeam_channel::{Receiver, TryRecvError};

use crate::media::{AudioFrame, samples_per_frame};

/// Sample rate inside the mixer (the pipeline's decoded rate).
pub const MIX_RATE: u32 = 48_000;
/// Samples in one mixed 20 ms block at [`MIX_RATE`], mono.
pub const MIX_BLOCK: usize = samples_per_frame(MIX_RATE);
/// Frames (20 ms each) a stream buffers before it starts or resumes playing: 60 ms.
pub const JITTER_TARGET_FRAMES: usize = 3;
/// Most frames a stream may hold (160 ms). A push beyond this drops the
/// oldest frames down to [`JITTER_TARGET_FRAMES`]: late audio is worth less
/// than low latency.
pub const JITTER_MAX_FRAMES: usize = 8;
/// Level (RMS, fraction of full scale) at or above which a stream counts as speaking.
pub const SPEAKING_THRESHOLD: f32 = 0.01;
/// Per-block decay of the level meter when the signal falls (about -2 dB per
/// 20 ms: a word's end stays "speaking" for ~200 ms instead of flickering).
pub const LEVEL_DECAY: f32 = 0.8;
/// Most volume for a stream or the master (+6 dB).
pub const MAX_VOLUME: f32 = 2.0;

/// Counters of one jitter buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Blocks played from real audio.
    pub played: u64,
    /// Blocks filled with silence because the buffer was empty or re-buffering.
    pub concealed: u64,
    /// Frames dropped because the buffer was too deep.
    pub dropped: u64,
    /// Frames rejected for a sample rate other than [`MIX_RATE`].
    pub rejected: u64,
}

/// A bounded queue of 20 ms mono frames with prefill and overflow trimming.
#[derive(Debug)]
pub struct JitterBuffer {
    frames: VecDeque<Vec<f32>>,
    /// Spent frame buffers, reused so steady-state pushes do not allocate.
    spare: Vec<Vec<f32>>,
    /// False while (re)buffering up to the target.
    playing: bool,
    stats: JitterStats,
}

impl Default for JitterBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl JitterBuffer {
    /// An empty buffer (re-buffering until [`JITTER_TARGET_FRAMES`] arrive).
    #[must_use]
    pub fn new() -> Self {
        Self {
            frames: VecDeque::with_capacity(JITTER_MAX_FRAMES + 1),
            spare: Vec::with_capacity(JITTER_MAX_FRAMES + 1),
            playing: false,
            stats: JitterStats::default(),
        }
    }

    /// Queues a decoded frame (downmixed to mono; padded or cut to 20 ms).
    pub fn push(&mut self, frame: &AudioFrame) {
        if frame.sample_rate != MIX_RATE || frame.channels == 0 {
            self.stats.rejected += 1;
            return;
        }
        if self.frames.len() >= JITTER_MAX_FRAMES {
            while self.frames.len() >= JITTER_TARGET_FRAMES {
                if let Some(old) = self.frames.pop_front() {
                    self.spare.push(old);
                }
                self.stats.dropped += 1;
            }
        }
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        let ch = usize::from(frame.channels);
        let scale = 1.0 / (f32::from(i16::MAX) + 1.0) / ch as f32;
        buf.extend(
            frame
                .samples
                .chunks_exact(ch)
                .map(|c| c.iter().map(|&s| f32::from(s)).sum::<f32>() * scale),
        );
        buf.resize(MIX_BLOCK, 0.0);
        self.frames.push_back(buf);
    }

    /// Writes the next block into `out` (silence when concealing); returns
    /// whether it was real audio.
    pub fn pop_into(&mut self, out: &mut [f32]) -> bool {
        if !self.playing && self.frames.len() >= JITTER_TARGET_FRAMES {
            self.playing = true;
        }
        let frame = if self.playing {
            self.frames.pop_front()
        } else {
            None
        };
        let Some(frame) = frame else {
            // Empty while playing: an underrun; wait for the target again.
            self.playing = false;
            out.fill(0.0);
            self.stats.concealed += 1;
            return false;
        };
        for (o, s) in out
            .iter_mut()
            .zip(frame.iter().chain(std::iter::repeat(&0.0)))
        {
            *o = *s;
        }
        self.spare.push(frame);
        self.stats.played += 1;
        true
    }

    /// Frames queued now.
    #[must_use]
    pub fn depth(&self) -> usize {
        self.frames.len()
    }

    /// Counters so far.
    #[must_use]
    pub fn stats(&self) -> JitterStats {
        self.stats
    }
}

/// An `f32` in an atomic, for values the UI thread reads or writes while the
/// mixer runs (volume, level).
#[derive(Debug, Default)]
pub struct AtomicF32(AtomicU32);

impl AtomicF32 {
    /// A cell holding `v`.
    #[must_use]
    pub fn new(v: f32) -> Self {
        Self(AtomicU32::new(v.to_bits()))
    }
    /// The value now.
    #[must_use]
    pub fn get(&self) -> f32 {
        f32::from_bits(self.0.load(Ordering::Relaxed))
    }
    /// Replaces the value.
    pub fn set(&self, v: f32) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }
}

/// What the playout handle and the mixer share for one stream.
#[derive(Debug)]
pub struct StreamControl {
    /// Gain, `0.0..=MAX_VOLUME` (1.0 = unchanged).
    pub volume: AtomicF32,
    /// Meter: RMS of the stream before volume, with [`LEVEL_DECAY`] fall-off.
    pub level: AtomicF32,
    /// Blocks concealed with silence (see [`JitterStats::concealed`]).
    pub concealed: AtomicU64,
    /// Frames dropped for depth (see [`JitterStats::dropped`]).
    pub dropped: AtomicU64,
}

impl Default for StreamControl {
    fn default() -> Self {
        Self {
            volume: AtomicF32::new(1.0),
            level: AtomicF32::new(0.0),
            concealed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }
}

struct MixStream {
    /// `None` once the sender is gone (the stream then plays out what it holds).
    rx: Option<Receiver<AudioFrame>>,
    jitter: JitterBuffer,
    control: Arc<StreamControl>,
}

/// Mixes any number of streams into 48 kHz mono blocks.
pub struct Mixer {
    streams: BTreeMap<String, MixStream>,
    master: Arc<AtomicF32>,
    scratch: Vec<f32>,
}

impl Mixer {
    /// An empty mixer whose master gain is read from `master`.
    #[must_use]
    pub fn new(master: Arc<AtomicF32>) -> Self {
        Self {
            streams: BTreeMap::new(),
            master,
            scratch: vec![0.0; MIX_BLOCK],
        }
    }

    /// Adds (or replaces) stream `id`, pulling frames from `rx`.
    pub fn add(&mut self, id: String, rx: Receiver<AudioFrame>, control: Arc<StreamControl>) {
        self.streams.insert(
            id,
            MixStream {
                rx: Some(rx),
                jitter: JitterBuffer::new(),
                control,
            },
        );
    }

    /// Removes stream `id`; false if it was not there.
    pub fn remove(&mut self, id: &str) -> bool {
        self.streams.remove(id).is_some()
    }

    /// Stream ids, in order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.streams.keys().map(String::as_str)
    }

    /// Jitter counters of stream `id`.
    #[must_use]
    pub fn stats(&self, id: &str) -> Option<JitterStats> {
        self.streams.get(id).map(|s| s.jitter.stats())
    }

    /// Mixes the next 20 ms into `out` (resized to [`MIX_BLOCK`]): pulls what
    /// each stream's channel holds, plays one block per stream, applies
    /// volumes and the master gain, updates meters, soft-clips.
    pub fn render(&mut self, out: &mut Vec<f32>) {
        out.clear();
        out.resize(MIX_BLOCK, 0.0);
        for stream in self.streams.values_mut() {
            if let Some(rx) = &stream.rx {
                // At most a buffer's worth per block: the jitter buffer trims the rest.
                for _ in 0..=JITTER_MAX_FRAMES {
                    match rx.try_recv() {
                        Ok(frame) => stream.jitter.push(&frame),
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => {
                            stream.rx = None;
                            break;
                        }
                    }
                }
            }
            stream.jitter.pop_into(&mut self.scratch);
            let rms = rms(&self.scratch);
            let control = &stream.control;
            control
                .level
                .set(rms.max(control.level.get() * LEVEL_DECAY));
            let stats = stream.jitter.stats();
            control.concealed.store(stats.concealed, Ordering::Relaxed);
            control.dropped.store(stats.dropped, Ordering::Relaxed);
            let volume = control.volume.get().clamp(0.0, MAX_VOLUME);
            if volume > 0.0 {
                for (o, s) in out.iter_mut().zip(&self.scratch) {
                    *o += s * volume;
                }
            }
        }
        let master = self.master.get().clamp(0.0, MAX_VOLUME);
        for o in out.iter_mut() {
            *o = soft_clip(*o * master);
        }
    }
}

/// RMS of `samples` (fraction of full scale).
#[must_use]
pub fn rms(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32).sqrt()
}

/// Clipping protection: linear up to a knee at 0.9, then a tanh curve that
/// approaches but never reaches ±1, so sums of loud streams do not wrap or
/// square off.
#[must_use]
pub fn soft_clip(x: f32) -> f32 {
    const KNEE: f32 = 0.9;
    let a = x.abs();
    if a <= KNEE || a.is_nan() {
        return if a.is_nan() { 0.0 } else { x };
    }
    let y = KNEE + (1.0 - KNEE) * ((a - KNEE) / (1.0 - KNEE)).tanh();
    y.min(0.999_99).copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{ToneSource, dominant_frequency};

    fn tone_frame(t: &mut ToneSource) -> AudioFrame {
        t.next_frame()
    }

    fn to_pcm(block: &[f32]) -> Vec<i16> {
        block.iter().map(|s| (s * 32767.0) as i16).collect()
    }

    #[test]
    fn jitter_prefills_plays_conceals_and_rebuffers() {
        let mut jb = JitterBuffer::new();
        let mut t = ToneSource::new(440.0, MIX_RATE, 1, 0.5);
        let mut out = vec![1.0; MIX_BLOCK];
        // Empty: silence.
        assert!(!jb.pop_into(&mut out));
        assert!(out.iter().all(|&s| s == 0.0));
        // Below target: still buffering.
        jb.push(&tone_frame(&mut t));
        jb.push(&tone_frame(&mut t));
        assert!(!jb.pop_into(&mut out));
        assert_eq!(jb.depth(), 2);
        // Target reached: plays, in order, until empty.
        jb.push(&tone_frame(&mut t));
        for _ in 0..3 {
            assert!(jb.pop_into(&mut out));
            assert!(rms(&out) > 0.3);
        }
        // Underrun: concealed, and one frame is not enough to resume.
        assert!(!jb.pop_into(&mut out));
        jb.push(&tone_frame(&mut t));
        assert!(!jb.pop_into(&mut out));
        let s = jb.stats();
        assert_eq!((s.played, s.concealed, s.dropped), (3, 4, 0));
    }

    #[test]
    fn jitter_drops_oldest_when_too_deep() {
        let mut jb = JitterBuffer::new();
        // Frames carry their index as a DC level, to see which ones survive.
        for i in 0..JITTER_MAX_FRAMES + 1 {
            let v = (i as i16 + 1) * 1000;
            jb.push(&AudioFrame {
                sample_rate: MIX_RATE,
                channels: 1,
                samples: vec![v; MIX_BLOCK],
            });
        }
        assert_eq!(jb.depth(), JITTER_TARGET_FRAMES);
        let mut out = vec![0.0; MIX_BLOCK];
        assert!(jb.pop_into(&mut out));
        // Survivors are the newest: indices MAX-1, MAX (after trimming to target-1, push).
        let first = ((JITTER_MAX_FRAMES - JITTER_TARGET_FRAMES + 2) as f32) * 1000.0 / 32768.0;
        assert!((out[0] - first).abs() < 1e-4, "{} vs {first}", out[0]);
        assert_eq!(
            jb.stats().dropped,
            (JITTER_MAX_FRAMES - JITTER_TARGET_FRAMES + 1) as u64
        );
    }

    #[test]
    fn jitter_downmixes_and_rejects_other_rates() {
        let mut jb = JitterBuffer::new();
        let stereo = AudioFrame {
            sample_rate: MIX_RATE,
            channels: 2,
            samples: [8192i16, 0].repeat(MIX_BLOCK),
        };
        for _ in 0..JITTER_TARGET_FRAMES {
            jb.push(&stereo);
        }
        jb.push(&AudioFrame::silence(44_100, 1));
        assert_eq!(jb.stats().rejected, 1);
        let mut out = vec![0.0; MIX_BLOCK];
        assert!(jb.pop_into(&mut out));
        assert!((out[0] - 0.125).abs() < 1e-6, "{}", out[0]);
    }

    #[test]
    fn mixer_sums_streams_with_volumes_and_meters() {
        let master = Arc::new(AtomicF32::new(1.0));
        let mut mixer = Mixer::new(Arc::clone(&master));
        let (tx_a, rx_a) = crossbeam_channel::bounded(64);
        let (tx_b, rx_b) = crossbeam_channel::bounded(64);
        let (ca, cb) = (
            Arc::new(StreamControl::default()),
            Arc::new(StreamControl::default()),
        );
        mixer.add("b".into(), rx_b, Arc::clone(&cb));
        mixer.add("a".into(), rx_a, Arc::clone(&ca));
        assert_eq!(mixer.ids().collect::<Vec<_>>(), ["a", "b"]);
        let mut ta = ToneSource::new(523.0, MIX_RATE, 1, 0.3);
        let mut tb = ToneSource::new(1200.0, MIX_RATE, 1, 0.3);
        cb.volume.set(0.0); // b is muted locally: inaudible, but its meter still moves.
        let mut out = Vec::new();
        let mut mixed = Vec::new();
        for block in 0..50 {
            tx_a.send(ta.next_frame()).expect("send");
            tx_b.send(tb.next_frame()).expect("send");
            mixer.render(&mut out);
            assert_eq!(out.len(), MIX_BLOCK);
            if block < JITTER_TARGET_FRAMES - 1 {
                assert!(out.iter().all(|&s| s == 0.0), "prefill block {block}");
            } else {
                mixed.extend(to_pcm(&out));
            }
        }
        let f = dominant_frequency(&mixed, 1, MIX_RATE).unwrap_or(0.0);
        assert!((f - 523.0).abs() < 1.0, "{f} Hz");
        let expected = 0.3 / 2f32.sqrt();
        assert!((rms(&out) - expected).abs() < 0.01, "mix rms {}", rms(&out));
        assert!(ca.level.get() >= SPEAKING_THRESHOLD);
        assert!((cb.level.get() - expected).abs() < 0.01);
        // Silence: meters decay below the speaking threshold within ~0.5 s.
        for _ in 0..25 {
            tx_a.send(AudioFrame::silence(MIX_RATE, 1)).expect("send");
            mixer.render(&mut out);
        }
        assert!(ca.level.get() < SPEAKING_THRESHOLD, "{}", ca.level.get());
        // Sender gone: the stream conceals, and stays until removed.
        drop(tx_b);
        mixer.render(&mut out);
        assert!(mixer.stats("b").is_some_and(|s| s.concealed > 0));
        assert!(mixer.remove("b"));
        assert!(!mixer.remove("b"));
    }

    #[test]
    fn loud_sums_are_soft_clipped() {
        let master = Arc::new(AtomicF32::new(MAX_VOLUME));
        let mut mixer = Mixer::new(master);
        let mut senders = Vec::new();
        for i in 0..4 {
            let (tx, rx) = crossbeam_channel::bounded(8);
            let control = Arc::new(StreamControl::default());
            control.volume.set(MAX_VOLUME);
            mixer.add(format!("s{i}"), rx, control);
            senders.push(tx);
        }
        let mut t = ToneSource::new(300.0, MIX_RATE, 1, 1.0);
        let mut out = Vec::new();
        let mut peak = 0.0f32;
        for _ in 0..6 {
            let f = t.next_frame();
            for tx in &senders {
                tx.send(f.clone()).expect("send");
            }
            mixer.render(&mut out);
            peak = out.iter().fold(peak, |p, s| p.max(s.abs()));
        }
        assert!(peak > 0.95 && peak < 1.0, "peak {peak}");
        assert_eq!(soft_clip(0.5), 0.5);
        assert_eq!(soft_clip(-0.5), -0.5);
        assert!(soft_clip(100.0) < 1.0 && soft_clip(-100.0) > -1.0);
        assert_eq!(soft_clip(f32::NAN), 0.0);
        // Monotonic through the knee.
        assert!(soft_clip(0.95) > soft_clip(0.9) && soft_clip(1.5) > soft_clip(0.95));
    }
}
