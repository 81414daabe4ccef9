//! Sources whose device can be replaced while they run (the seeds'
//! `LocalStream.switchDevice`): a publisher keeps one [`SwitchableVideo`] /
//! [`SwitchableAudio`] for the life of the stream, and the UI hands a new
//! camera or microphone to its [`SourceSwitch`]. The media thread picks the new
//! source up before its next frame, so nothing is renegotiated and the encoder
//! keeps its settings; the old device is closed on the media thread too.
//!
//! The replacement must produce the same picture size (video) or sample rate
//! and channel count (audio) as the source it replaces — the encoder was set up
//! for them — and [`SourceSwitch::switch_to`] refuses anything else at once.
//! Cameras in [`super::devices`] scale to the size asked for, so a camera
//! opened for the same profile always fits.
//!
//! The wrappers always report `is_live() == true` and pace a non-live inner
//! source (the synthetic pattern or tone) themselves, so switching between a
//! device (which blocks on its own clock) and a generator keeps the frame rate.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::{AUDIO_FRAME_MS, AudioFrame, AudioSource, I420Frame, MediaError, VideoSource};

/// Hands replacement sources to a running [`SwitchableVideo`] or
/// [`SwitchableAudio`]. Cheap to clone; never blocks.
pub struct SourceSwitch<S: ?Sized> {
    tx: Sender<Box<S>>,
    /// What a replacement must match: `(width, height)` or `(rate, channels)`.
    shape: (u32, u32),
    kind: &'static str,
}

impl<S: ?Sized> Clone for SourceSwitch<S> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            shape: self.shape,
            kind: self.kind,
        }
    }
}

impl<S: ?Sized> std::fmt::Debug for SourceSwitch<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceSwitch")
            .field("kind", &self.kind)
            .field("shape", &self.shape)
            .finish()
    }
}

impl<S: ?Sized> SourceSwitch<S> {
    fn send(&self, shape: (u32, u32), source: Box<S>) -> Result<(), MediaError> {
        if shape != self.shape {
            return Err(MediaError::FrameMismatch(format!(
                "the new {} gives {}x{}, the stream needs {}x{}",
                self.kind, shape.0, shape.1, self.shape.0, self.shape.1
            )));
        }
        // Unbounded: the media thread drains it every frame and keeps the
        // newest, so a user clicking through a list costs nothing.
        self.tx
            .send(source)
            .map_err(|_| MediaError::Device(format!("the {} is no longer running", self.kind)))
    }
}

impl SourceSwitch<dyn VideoSource> {
    /// Replaces the camera from the next frame on.
    ///
    /// # Errors
    /// [`MediaError::FrameMismatch`] when `source` has another picture size;
    /// [`MediaError::Device`] when the stream has stopped.
    pub fn switch_to(&self, source: Box<dyn VideoSource>) -> Result<(), MediaError> {
        self.send(source.size(), source)
    }
}

impl SourceSwitch<dyn AudioSource> {
    /// Replaces the microphone from the next 20 ms frame on.
    ///
    /// # Errors
    /// [`MediaError::FrameMismatch`] when `source` has another sample rate or
    /// channel count; [`MediaError::Device`] when the stream has stopped.
    pub fn switch_to(&self, source: Box<dyn AudioSource>) -> Result<(), MediaError> {
        self.send((source.sample_rate(), u32::from(source.channels())), source)
    }
}

/// Keeps a non-live source at its nominal rate.
#[derive(Debug)]
struct Pacer {
    interval: Duration,
    due: Option<Instant>,
}

impl Pacer {
    fn new(interval: Duration) -> Self {
        Self {
            interval,
            due: None,
        }
    }

    /// Sleeps until the next slot (generators), or just notes the time (live
    /// sources block on their own clock). Falls back to "now" after a stall so
    /// a long pause does not cause a burst.
    fn wait(&mut self, live: bool) {
        let now = Instant::now();
        let due = match self.due {
            Some(due) if !live && due > now => {
                std::thread::sleep(due - now);
                due
            }
            Some(due) if now.saturating_duration_since(due) < self.interval * 4 => due,
            _ => now,
        };
        self.due = Some(due + self.interval);
    }
}

fn newest<S: ?Sized>(rx: &Receiver<Box<S>>) -> Option<Box<S>> {
    rx.try_iter().last()
}

/// A camera that can be switched while publishing.
pub struct SwitchableVideo {
    current: Box<dyn VideoSource>,
    rx: Receiver<Box<dyn VideoSource>>,
    size: (u32, u32),
    frame_rate: u32,
    pacer: Pacer,
}

impl SwitchableVideo {
    /// Wraps `initial`; the switch accepts sources of the same size.
    pub fn new(initial: Box<dyn VideoSource>) -> (Self, SourceSwitch<dyn VideoSource>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let size = initial.size();
        let frame_rate = initial.frame_rate().max(1);
        let switch = SourceSwitch {
            tx,
            shape: size,
            kind: "camera",
        };
        let source = Self {
            current: initial,
            rx,
            size,
            frame_rate,
            pacer: Pacer::new(Duration::from_secs_f64(1.0 / f64::from(frame_rate))),
        };
        (source, switch)
    }
}

impl VideoSource for SwitchableVideo {
    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn frame_rate(&self) -> u32 {
        self.frame_rate
    }

    fn is_live(&self) -> bool {
        true // paced here, whatever the inner source is
    }

    fn next_frame(&mut self) -> Result<Option<I420Frame>, MediaError> {
        if let Some(next) = newest(&self.rx) {
            self.current = next; // the old device closes here, on this thread
        }
        self.pacer.wait(self.current.is_live());
        self.current.next_frame()
    }
}

/// A microphone that can be switched while publishing.
pub struct SwitchableAudio {
    current: Box<dyn AudioSource>,
    rx: Receiver<Box<dyn AudioSource>>,
    sample_rate: u32,
    channels: u16,
    pacer: Pacer,
}

impl SwitchableAudio {
    /// Wraps `initial`; the switch accepts sources of the same rate and channels.
    pub fn new(initial: Box<dyn AudioSource>) -> (Self, SourceSwitch<dyn AudioSource>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let (sample_rate, channels) = (initial.sample_rate(), initial.channels());
        let switch = SourceSwitch {
            tx,
            shape: (sample_rate, u32::from(channels)),
            kind: "microphone",
        };
        let source = Self {
            current: initial,
            rx,
            sample_rate,
            channels,
            pacer: Pacer::new(Duration::from_millis(u64::from(AUDIO_FRAME_MS))),
        };
        (source, switch)
    }
}

impl AudioSource for SwitchableAudio {
    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    fn channels(&self) -> u16 {
        self.channels
    }

    fn is_live(&self) -> bool {
        true
    }

    fn next_frame(&mut self) -> Result<Option<AudioFrame>, MediaError> {
        if let Some(next) = newest(&self.rx) {
            self.current = next;
        }
        self.pacer.wait(self.current.is_live());
        self.current.next_frame()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{SyntheticAudio, SyntheticVideo, dominant_frequency, read_stamp};

    #[test]
    fn a_switched_camera_delivers_from_the_next_frame() {
        let first = SyntheticVideo::new(320, 240, 30);
        let (mut video, switch) = SwitchableVideo::new(Box::new(first));
        let a = video.next_frame().unwrap().unwrap();
        let b = video.next_frame().unwrap().unwrap();
        // The pattern's stamp counts frames: 0, 1, ...
        let frame_no = |f: &I420Frame| read_stamp(f).map(|s| s.frame_no);
        assert_eq!((frame_no(&a), frame_no(&b)), (Some(0), Some(1)));
        // A fresh pattern starts again at 0: that is the new source speaking.
        switch
            .switch_to(Box::new(SyntheticVideo::new(320, 240, 30)))
            .unwrap();
        let c = video.next_frame().unwrap().unwrap();
        assert_eq!(frame_no(&c), Some(0));
    }

    #[test]
    fn a_camera_of_another_size_is_refused_and_the_old_one_keeps_going() {
        let (mut video, switch) = SwitchableVideo::new(Box::new(SyntheticVideo::new(320, 240, 30)));
        let err = switch
            .switch_to(Box::new(SyntheticVideo::new(640, 480, 30)))
            .unwrap_err();
        assert!(matches!(err, MediaError::FrameMismatch(_)), "{err}");
        let f = video.next_frame().unwrap().unwrap();
        assert_eq!((f.width, f.height), (320, 240));
    }

    #[test]
    fn a_switched_microphone_delivers_the_new_tone() {
        let (mut audio, switch) =
            SwitchableAudio::new(Box::new(SyntheticAudio::new(440.0, 48_000, 1)));
        let mut pcm = Vec::new();
        for _ in 0..25 {
            pcm.extend(audio.next_frame().unwrap().unwrap().samples);
        }
        assert!((dominant_frequency(&pcm, 1, 48_000).unwrap() - 440.0).abs() < 5.0);
        switch
            .switch_to(Box::new(SyntheticAudio::new(880.0, 48_000, 1)))
            .unwrap();
        pcm.clear();
        for _ in 0..25 {
            pcm.extend(audio.next_frame().unwrap().unwrap().samples);
        }
        assert!((dominant_frequency(&pcm, 1, 48_000).unwrap() - 880.0).abs() < 5.0);
        let err = switch
            .switch_to(Box::new(SyntheticAudio::new(440.0, 16_000, 1)))
            .unwrap_err();
        assert!(matches!(err, MediaError::FrameMismatch(_)), "{err}");
    }

    #[test]
    fn generators_are_paced_at_their_rate() {
        let (mut video, _switch) =
            SwitchableVideo::new(Box::new(SyntheticVideo::new(160, 120, 50)));
        let start = Instant::now();
        for _ in 0..6 {
            video.next_frame().unwrap().unwrap();
        }
        // Five intervals of 20 ms at least (the first frame is immediate).
        assert!(
            start.elapsed() >= Duration::from_millis(100),
            "{:?}",
            start.elapsed()
        );
    }
}
