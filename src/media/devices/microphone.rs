//! [`MicrophoneSource`]: a cpal input stream as a live [`AudioSource`] of
//! 48 kHz mono 20 ms frames.
//!
//! ```text
//!  cpal callback: downmix to mono f32 ─▶ ring (MIC_RING_MS; full: samples dropped, counted)
//!  huddle-mic thread (owns the stream): ring ─▶ resample to 48 kHz ─▶ 20 ms i16 frames
//!        ─▶ bounded(MIC_FRAME_CAPACITY; full: oldest dropped) ─▶ next_frame (blocks)
//! ```
//!
//! Invariants: the callback neither blocks nor allocates; `next_frame` never
//! waits much longer than a frame: past [`MIC_SILENCE_GRACE`] without audio it
//! returns silence on the 20 ms clock, so a stalled device cannot stall
//! publishing. The thread ends when the source is dropped.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, StreamTrait};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use super::{Direction, audio_host, device_error, find_audio_device, pick_config};
use crate::media::resample::MonoResampler;
use crate::media::source::AudioSource;
use crate::media::{AUDIO_FRAME_MS, AudioFrame, MediaError, Result, samples_per_frame};

/// Sample rate of produced frames.
pub const MIC_RATE: u32 = 48_000;
/// 20 ms frames queued between the mic thread and `next_frame` (200 ms).
/// Mic thread → publisher; when full the oldest frame is dropped, so a slow
/// consumer hears the present, not a growing backlog.
pub const MIC_FRAME_CAPACITY: usize = 10;
/// Device audio the callback → mic thread ring holds, in ms. When full the
/// callback drops new samples (the thread stalled) and counts them.
pub const MIC_RING_MS: u32 = 500;
/// How late past its 20 ms slot a frame may be before `next_frame` returns
/// silence instead (devices deliver in bursts of 10–40 ms).
pub const MIC_SILENCE_GRACE: Duration = Duration::from_millis(60);
/// Device period asked for, in ms (PulseAudio's default is 2 s chunks).
const MIC_PERIOD_MS: u32 = 10;
/// How long `open` waits for the device thread to start the stream.
const MIC_OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the audio server to create the stream.
const STREAM_BUILD_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the mic thread drains the ring.
const MIC_POLL: Duration = Duration::from_millis(5);

/// A live microphone: each `next_frame` returns the next captured 20 ms at
/// 48 kHz mono, blocking until it is there.
pub struct MicrophoneSource {
    rx: Receiver<AudioFrame>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Why the stream failed, once it has.
    failure: Arc<Mutex<Option<String>>>,
    /// When the next frame is due on the 20 ms clock (for silence on stalls).
    next_due: Option<Instant>,
    name: String,
    device_rate: u32,
    silent_frames: u64,
    overflow: Arc<AtomicU64>,
}

/// What the mic thread reports once the stream is (or is not) running.
type Opened = Result<(String, u32)>;

impl MicrophoneSource {
    /// Opens a microphone: the default input for `None`, else the device with
    /// that id or name (see [`super::list_microphones`]; PulseAudio monitor
    /// sources such as `"pulseaudio:huddle_null.monitor"` work too).
    ///
    /// Blocks up to a few seconds while the audio server answers: call it off
    /// UI threads.
    ///
    /// # Errors
    /// [`MediaError::DeviceUnavailable`] when there is no such device,
    /// [`MediaError::Device`] when it cannot be opened.
    pub fn open(device: Option<&str>) -> Result<Self> {
        let (tx, rx) = crossbeam_channel::bounded(MIC_FRAME_CAPACITY);
        let (opened_tx, opened_rx) = crossbeam_channel::bounded::<Opened>(1);
        let stop = Arc::new(AtomicBool::new(false));
        let failure = Arc::new(Mutex::new(None));
        let overflow = Arc::new(AtomicU64::new(0));
        let wanted = device.map(str::to_owned);
        let thread = {
            let (stop, failure, overflow, drop_rx) = (
                Arc::clone(&stop),
                Arc::clone(&failure),
                Arc::clone(&overflow),
                rx.clone(),
            );
            std::thread::Builder::new()
                .name("huddle-mic".into())
                .spawn(move || {
                    mic_thread(
                        wanted.as_deref(),
                        &tx,
                        &drop_rx,
                        &opened_tx,
                        &stop,
                        &failure,
                        &overflow,
                    );
                })
                .map_err(|e| MediaError::Device(format!("cannot start the mic thread: {e}")))?
        };
        let mut source = Self {
            rx,
            stop,
            thread: Some(thread),
            failure,
            next_due: None,
            name: String::new(),
            device_rate: 0,
            silent_frames: 0,
            overflow,
        };
        match opened_rx.recv_timeout(MIC_OPEN_TIMEOUT) {
            Ok(Ok((name, rate))) => {
                source.name = name;
                source.device_rate = rate;
                Ok(source)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => {
                // The thread is stuck in the device; detach it rather than
                // block here joining it (it ends once the device answers).
                source.stop.store(true, Ordering::Release);
                source.thread.take();
                Err(MediaError::Device(
                    "microphone did not start in time".into(),
                ))
            }
        }
    }

    /// The device's display name.
    #[must_use]
    pub fn device_name(&self) -> &str {
        &self.name
    }

    /// The device's own sample rate (resampled to [`MIC_RATE`]).
    #[must_use]
    pub fn device_rate(&self) -> u32 {
        self.device_rate
    }

    /// Silence frames returned because the device was late.
    #[must_use]
    pub fn silent_frames(&self) -> u64 {
        self.silent_frames
    }

    /// Device samples dropped because the mic thread fell behind.
    #[must_use]
    pub fn overflow_samples(&self) -> u64 {
        self.overflow.load(Ordering::Relaxed)
    }
}

impl AudioSource for MicrophoneSource {
    fn sample_rate(&self) -> u32 {
        MIC_RATE
    }

    fn channels(&self) -> u16 {
        1
    }

    fn is_live(&self) -> bool {
        true
    }

    fn next_frame(&mut self) -> Result<Option<AudioFrame>> {
        let slot = Duration::from_millis(u64::from(AUDIO_FRAME_MS));
        let now = Instant::now();
        let due = *self.next_due.get_or_insert(now + slot);
        match self.rx.recv_deadline(due + MIC_SILENCE_GRACE) {
            Ok(frame) => {
                // Back on the device's clock.
                self.next_due = Some(Instant::now().max(due) + slot);
                Ok(Some(frame))
            }
            Err(RecvTimeoutError::Timeout) => {
                self.next_due = Some(due + slot);
                self.silent_frames += 1;
                Ok(Some(AudioFrame::silence(MIC_RATE, 1)))
            }
            Err(RecvTimeoutError::Disconnected) => {
                let why = self
                    .failure
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take()
                    .unwrap_or_else(|| "microphone stream ended".into());
                Err(MediaError::Device(why))
            }
        }
    }
}

impl Drop for MicrophoneSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            // Ends within MIC_POLL; the stream closes with it.
            thread.join().ok();
        }
    }
}

/// Owns the cpal stream; moves ring → resampler → frames until `stop`.
fn mic_thread(
    wanted: Option<&str>,
    tx: &Sender<AudioFrame>,
    drop_rx: &Receiver<AudioFrame>,
    opened: &Sender<Opened>,
    stop: &AtomicBool,
    failure: &Arc<Mutex<Option<String>>>,
    overflow: &Arc<AtomicU64>,
) {
    let ring_failed = Arc::new(AtomicBool::new(false));
    let started = start_stream(wanted, overflow, &ring_failed, failure);
    let (stream, mut consumer, name, rate) = match started {
        Ok(s) => s,
        Err(e) => {
            opened.send(Err(e)).ok(); // open() gave up waiting: nobody to tell
            return;
        }
    };
    let mut resampler = match MonoResampler::new(rate, MIC_RATE) {
        Ok(r) => r,
        Err(e) => {
            opened.send(Err(e)).ok();
            return;
        }
    };
    opened.send(Ok((name, rate))).ok();
    let frame_len = samples_per_frame(MIC_RATE);
    let mut input = Vec::with_capacity(consumer.buffer().capacity());
    let mut out = Vec::with_capacity(frame_len * 4);
    while !stop.load(Ordering::Acquire) {
        if ring_failed.load(Ordering::Acquire) {
            break; // the error callback recorded why; next_frame reports it
        }
        input.clear();
        if let Ok(chunk) = consumer.read_chunk(consumer.slots()) {
            let (a, b) = chunk.as_slices();
            input.extend_from_slice(a);
            input.extend_from_slice(b);
            chunk.commit_all();
        }
        resampler.push(&input, &mut out);
        let mut used = 0;
        while let Some(block) = out.get(used..used + frame_len) {
            used += frame_len;
            let frame = AudioFrame {
                sample_rate: MIC_RATE,
                channels: 1,
                samples: block
                    .iter()
                    .map(|&s| (s * 32768.0).clamp(-32768.0, 32767.0) as i16)
                    .collect(),
            };
            match tx.try_send(frame) {
                Ok(()) => {}
                Err(TrySendError::Full(frame)) => {
                    // Consumer behind: drop the oldest, keep the newest.
                    drop_rx.try_recv().ok();
                    tx.try_send(frame).ok(); // racing consumer made room: either way fine
                }
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
        out.drain(..used);
        std::thread::sleep(MIC_POLL);
    }
    drop(stream);
}

type Started = (cpal::Stream, rtrb::Consumer<f32>, String, u32);

fn start_stream(
    wanted: Option<&str>,
    overflow: &Arc<AtomicU64>,
    ring_failed: &Arc<AtomicBool>,
    failure: &Arc<Mutex<Option<String>>>,
) -> Result<Started> {
    let host = audio_host();
    let device = find_audio_device(&host, Direction::Input, wanted)?;
    let name = device
        .description()
        .map(|d| d.name().to_owned())
        .unwrap_or_else(|_| wanted.unwrap_or("default").to_owned());
    let (config, format) = pick_config(&device, Direction::Input, MIC_PERIOD_MS)?;
    let rate = config.sample_rate;
    let ring_len = (rate * MIC_RING_MS / 1000) as usize;
    let (producer, consumer) = rtrb::RingBuffer::<f32>::new(ring_len);
    let on_error = {
        let (failed, slot) = (Arc::clone(ring_failed), Arc::clone(failure));
        move |e: cpal::Error| {
            // Error path only: allocating/locking here is acceptable.
            if let Ok(mut s) = slot.lock() {
                *s = Some(format!("microphone stream failed: {e}"));
            }
            failed.store(true, Ordering::Release);
        }
    };
    let stream = match format {
        cpal::SampleFormat::I16 => {
            build_input::<i16>(&device, &config, producer, overflow, on_error)
        }
        _ => build_input::<f32>(&device, &config, producer, overflow, on_error),
    }?;
    stream
        .play()
        .map_err(|e| MediaError::Device(format!("starting the microphone: {e}")))?;
    Ok((stream, consumer, name, rate))
}

fn build_input<T>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    mut producer: rtrb::Producer<f32>,
    overflow: &Arc<AtomicU64>,
    on_error: impl FnMut(cpal::Error) + Send + 'static,
) -> Result<cpal::Stream>
where
    T: cpal::SizedSample,
    f32: cpal::FromSample<T>,
{
    let channels = usize::from(config.channels.max(1));
    let scale = 1.0 / channels as f32;
    let overflow = Arc::clone(overflow);
    let callback = move |data: &[T], _: &cpal::InputCallbackInfo| {
        for frame in data.chunks_exact(channels) {
            let mono = frame
                .iter()
                .map(|&s| <f32 as cpal::FromSample<T>>::from_sample_(s))
                .sum::<f32>()
                * scale;
            if producer.push(mono).is_err() {
                overflow.fetch_add(1, Ordering::Relaxed);
            }
        }
    };
    device
        .build_input_stream::<T, _, _>(*config, callback, on_error, Some(STREAM_BUILD_TIMEOUT))
        .map_err(|e| device_error(&e, Direction::Input, "opening the microphone"))
}
