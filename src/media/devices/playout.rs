//! [`AudioPlayout`]: one cpal output stream that plays every remote stream.
//!
//! ```text
//!  handle (any thread, never blocks) ─commands: bounded(PLAYOUT_COMMAND_CAPACITY)─┐
//!  remote streams' Receiver<AudioFrame> ───────────────────────────────────────────┤
//!                                                                                  ▼
//!  huddle-playout thread (owns the stream): Mixer::render (jitter, volume, meters, clip)
//!        → resample 48 kHz → device rate, copy to each channel → ring (PLAYOUT_RING_MS)
//!  cpal callback: drain ring (silence when empty, counted); no locks, no allocation
//! ```
//!
//! Latency budget, remote frame to speaker: jitter target 60 ms + ring
//! (starts at [`PLAYOUT_TARGET_MS`] + two device periods, 120 ms) + device
//! buffer (2 × 40 ms on PulseAudio). The tests measure ~250 ms from a volume
//! change to the null sink's monitor, capture included.
//!
//! Invariants: the mixer runs on the wall clock (one block per 20 ms, with
//! bounded catch-up), so remote frames leave their jitter buffers steadily
//! however the device pulls; it mixes early only when the ring is about to
//! run dry, and never queues more than [`PLAYOUT_TARGET_MS`] plus the device's
//! largest request (within [`PLAYOUT_RING_MS`]). Volumes and meters are
//! atomics the handle reads and writes without waiting for the mixer;
//! dropping the handle stops the thread and closes the stream.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, StreamTrait};
use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};

use super::mixer::{AtomicF32, MAX_VOLUME, MIX_RATE, Mixer, SPEAKING_THRESHOLD, StreamControl};
use super::{Direction, audio_host, device_error, find_audio_device, pick_config};
use crate::media::resample::MonoResampler;
use crate::media::{AUDIO_FRAME_MS, AudioFrame, MediaError, Result};

/// Commands queued from the handle to the playout thread. When full (the
/// thread is stuck), `add_stream`/`remove_stream` fail instead of blocking.
pub const PLAYOUT_COMMAND_CAPACITY: usize = 64;
/// Size of the mixer → callback ring, in ms of device audio. The mixer never
/// writes past it; when empty the callback plays silence.
pub const PLAYOUT_RING_MS: u32 = 200;
/// How much mixed audio the thread keeps queued for the device, on top of
/// the largest request one device callback has made (PulseAudio asks for up
/// to two periods at once when its buffer runs low).
pub const PLAYOUT_TARGET_MS: u32 = 40;
/// Device period asked for, in ms. PulseAudio double-buffers it (80 ms in the
/// server). Measured on the 2-core CI machine under load with the null sink:
/// 10 ms gave server underruns (15–30 ms gaps every ~40 ms) and 20 ms a ~2 s
/// stall at start; 40 ms played clean from the first block.
const PLAYOUT_PERIOD_MS: u32 = 40;
/// Longest wait for the audio server to create the stream.
const STREAM_BUILD_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the playout thread tops the ring up.
const PLAYOUT_POLL: Duration = Duration::from_millis(5);
/// Most 20 ms blocks mixed per poll (so stream commands are never starved).
const PLAYOUT_MAX_BLOCKS_PER_POLL: usize = 10;
/// Blocks of mixing credit the wall clock may bank (80 ms): how far the mixer
/// catches up at once after its own thread was descheduled.
const PLAYOUT_CATCH_UP_BLOCKS: f64 = 4.0;
/// How long `open` waits for the device thread to start the stream.
const PLAYOUT_OPEN_TIMEOUT: Duration = Duration::from_secs(10);

enum Command {
    Add {
        id: String,
        rx: Receiver<AudioFrame>,
        control: Arc<StreamControl>,
    },
    Remove(String),
}

/// Plays and mixes remote audio streams on one output device.
pub struct AudioPlayout {
    commands: Sender<Command>,
    /// The handle's view of the streams (for volumes and meters); the mixer
    /// holds the same controls. Locked only briefly, never across I/O.
    controls: Mutex<BTreeMap<String, Arc<StreamControl>>>,
    master: Arc<AtomicF32>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    underruns: Arc<AtomicU64>,
    name: String,
    device_rate: u32,
    device_channels: u16,
}

/// Stream level and state, for a participant list.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamLevel {
    /// Stream id as given to [`AudioPlayout::add_stream`].
    pub id: String,
    /// Meter (RMS with fall-off), fraction of full scale.
    pub level: f32,
    /// `level >= SPEAKING_THRESHOLD`.
    pub speaking: bool,
    /// Gain applied to the stream.
    pub volume: f32,
}

impl AudioPlayout {
    /// Opens the default output for `None`, else the device with that id or
    /// name (see [`super::list_speakers`]), and starts playing silence.
    ///
    /// Blocks up to a few seconds while the audio server answers: call it off
    /// UI threads.
    ///
    /// # Errors
    /// [`MediaError::DeviceUnavailable`] when there is no such device,
    /// [`MediaError::Device`] when it cannot be opened.
    pub fn open(device: Option<&str>) -> Result<Self> {
        let (commands, commands_rx) = crossbeam_channel::bounded(PLAYOUT_COMMAND_CAPACITY);
        let (opened_tx, opened_rx) = crossbeam_channel::bounded::<Result<(String, u32, u16)>>(1);
        let stop = Arc::new(AtomicBool::new(false));
        let master = Arc::new(AtomicF32::new(1.0));
        let underruns = Arc::new(AtomicU64::new(0));
        let wanted = device.map(str::to_owned);
        let thread = {
            let (stop, master, underruns) = (
                Arc::clone(&stop),
                Arc::clone(&master),
                Arc::clone(&underruns),
            );
            std::thread::Builder::new()
                .name("huddle-playout".into())
                .spawn(move || {
                    playout_thread(
                        wanted.as_deref(),
                        &commands_rx,
                        &opened_tx,
                        &stop,
                        master,
                        &underruns,
                    );
                })
                .map_err(|e| MediaError::Device(format!("cannot start the playout thread: {e}")))?
        };
        let mut playout = Self {
            commands,
            controls: Mutex::new(BTreeMap::new()),
            master,
            stop,
            thread: Some(thread),
            underruns,
            name: String::new(),
            device_rate: 0,
            device_channels: 0,
        };
        match opened_rx.recv_timeout(PLAYOUT_OPEN_TIMEOUT) {
            Ok(Ok((name, rate, channels))) => {
                playout.name = name;
                playout.device_rate = rate;
                playout.device_channels = channels;
                Ok(playout)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => {
                // The thread is stuck in the device; detach it rather than
                // block here joining it (it ends once the device answers).
                playout.stop.store(true, Ordering::Release);
                playout.thread.take();
                Err(MediaError::Device("speaker did not start in time".into()))
            }
        }
    }

    /// Starts playing stream `id` from `rx` (e.g. `RemoteStream::audio().clone()`),
    /// at volume 1. Replaces a stream of the same id.
    ///
    /// # Errors
    /// [`MediaError::Device`] when the playout thread has stopped or is stuck.
    pub fn add_stream(&self, id: &str, rx: Receiver<AudioFrame>) -> Result<()> {
        let control = Arc::new(StreamControl::default());
        self.send(Command::Add {
            id: id.to_owned(),
            rx,
            control: Arc::clone(&control),
        })?;
        self.lock().insert(id.to_owned(), control);
        Ok(())
    }

    /// Stops playing stream `id`; false if it was not playing.
    ///
    /// # Errors
    /// [`MediaError::Device`] when the playout thread has stopped or is stuck.
    pub fn remove_stream(&self, id: &str) -> Result<bool> {
        if self.lock().remove(id).is_none() {
            return Ok(false);
        }
        self.send(Command::Remove(id.to_owned()))?;
        Ok(true)
    }

    /// Sets stream `id`'s gain (clamped to `0.0..=2.0`); false if unknown.
    pub fn set_volume(&self, id: &str, volume: f32) -> bool {
        match self.lock().get(id) {
            Some(control) => {
                control.volume.set(clamp_volume(volume));
                true
            }
            None => false,
        }
    }

    /// Sets the gain applied to the whole mix (clamped to `0.0..=2.0`).
    pub fn set_master_volume(&self, volume: f32) {
        self.master.set(clamp_volume(volume));
    }

    /// The master gain.
    #[must_use]
    pub fn master_volume(&self) -> f32 {
        self.master.get()
    }

    /// Stream `id`'s meter (RMS with fall-off), or `None` if unknown.
    #[must_use]
    pub fn level(&self, id: &str) -> Option<f32> {
        self.lock().get(id).map(|c| c.level.get())
    }

    /// Whether stream `id` is speaking (level ≥ [`SPEAKING_THRESHOLD`]).
    #[must_use]
    pub fn is_speaking(&self, id: &str) -> bool {
        self.level(id).is_some_and(|l| l >= SPEAKING_THRESHOLD)
    }

    /// Every stream's level, volume and speaking flag, sorted by id.
    #[must_use]
    pub fn levels(&self) -> Vec<StreamLevel> {
        self.lock()
            .iter()
            .map(|(id, c)| {
                let level = c.level.get();
                StreamLevel {
                    id: id.clone(),
                    level,
                    speaking: level >= SPEAKING_THRESHOLD,
                    volume: c.volume.get(),
                }
            })
            .collect()
    }

    /// Stream `id`'s (concealed blocks, dropped frames) jitter counters.
    #[must_use]
    pub fn jitter_counters(&self, id: &str) -> Option<(u64, u64)> {
        self.lock().get(id).map(|c| {
            (
                c.concealed.load(Ordering::Relaxed),
                c.dropped.load(Ordering::Relaxed),
            )
        })
    }

    /// Device callbacks that found the ring short (played some silence).
    #[must_use]
    pub fn underruns(&self) -> u64 {
        self.underruns.load(Ordering::Relaxed)
    }

    /// The device's display name.
    #[must_use]
    pub fn device_name(&self) -> &str {
        &self.name
    }

    /// The device's `(sample rate, channels)`.
    #[must_use]
    pub fn device_format(&self) -> (u32, u16) {
        (self.device_rate, self.device_channels)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<StreamControl>>> {
        self.controls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn send(&self, command: Command) -> Result<()> {
        self.commands.try_send(command).map_err(|e| match e {
            TrySendError::Full(_) => MediaError::Device("playout command queue full".into()),
            TrySendError::Disconnected(_) => MediaError::Device("playout stopped".into()),
        })
    }
}

impl Drop for AudioPlayout {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.join().ok(); // ends within PLAYOUT_POLL
        }
    }
}

fn clamp_volume(v: f32) -> f32 {
    if v.is_nan() {
        0.0
    } else {
        v.clamp(0.0, MAX_VOLUME)
    }
}

fn playout_thread(
    wanted: Option<&str>,
    commands: &Receiver<Command>,
    opened: &Sender<Result<(String, u32, u16)>>,
    stop: &AtomicBool,
    master: Arc<AtomicF32>,
    underruns: &Arc<AtomicU64>,
) {
    let callback_max = Arc::new(AtomicUsize::new(0));
    let started = start_stream(wanted, underruns, &callback_max);
    let (stream, mut producer, name, config) = match started {
        Ok(s) => s,
        Err(e) => {
            opened.send(Err(e)).ok(); // open() gave up waiting: nobody to tell
            return;
        }
    };
    let rate = config.sample_rate;
    let channels = usize::from(config.channels.max(1));
    let mut resampler = match MonoResampler::new(MIX_RATE, rate) {
        Ok(r) => r,
        Err(e) => {
            opened.send(Err(e)).ok();
            return;
        }
    };
    opened.send(Ok((name, rate, config.channels))).ok();
    let mut mixer = Mixer::new(master);
    let base_target = (rate * PLAYOUT_TARGET_MS / 1000) as usize * channels;
    let block = (rate * AUDIO_FRAME_MS / 1000) as usize * channels;
    let capacity = producer.buffer().capacity();
    let mut mixed = Vec::new();
    let mut device_mono: Vec<f32> = Vec::new();
    // Mixing is paced by the wall clock (one block per 20 ms, a few blocks of
    // catch-up after this thread was delayed), not by how the device pulls:
    // PulseAudio pulls two periods at once, and following that would take
    // remote frames from the jitter buffers in bursts. The ring absorbs the
    // device's bursts; only when it is about to run dry is a block mixed early.
    let block_time = Duration::from_millis(u64::from(AUDIO_FRAME_MS));
    // Start with silence covering the base target plus two device periods, so
    // the device's first (double) requests do not make the mixer run ahead.
    let prefill = (base_target + 2 * (rate * PLAYOUT_PERIOD_MS / 1000) as usize * channels)
        .min(capacity - block);
    if let Ok(chunk) = producer.write_chunk_uninit(prefill) {
        chunk.fill_from_iter(std::iter::repeat(0.0));
    }
    let mut credit = 0.0f64;
    let mut last = Instant::now();
    while !stop.load(Ordering::Acquire) {
        loop {
            match commands.try_recv() {
                Ok(Command::Add { id, rx, control }) => mixer.add(id, rx, control),
                Ok(Command::Remove(id)) => {
                    mixer.remove(&id);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
        let now = Instant::now();
        credit = (credit + (now - last).as_secs_f64() / block_time.as_secs_f64())
            .min(PLAYOUT_CATCH_UP_BLOCKS);
        last = now;
        // Room for the device's largest request on top of the base target.
        let target = (base_target + callback_max.load(Ordering::Relaxed)).min(capacity - block);
        let mut blocks = 0;
        loop {
            let queued = capacity - producer.slots();
            let starving = queued < block;
            if queued >= target
                || blocks >= PLAYOUT_MAX_BLOCKS_PER_POLL
                || (credit < 1.0 && !starving)
            {
                break;
            }
            blocks += 1;
            credit = (credit - 1.0).max(0.0);
            mixer.render(&mut mixed);
            resampler.push(&mixed, &mut device_mono);
            let frames = (producer.slots() / channels).min(device_mono.len());
            if let Ok(chunk) = producer.write_chunk_uninit(frames * channels) {
                let samples = device_mono
                    .iter()
                    .take(frames)
                    .flat_map(|&s| std::iter::repeat_n(s, channels));
                chunk.fill_from_iter(samples);
            }
            device_mono.drain(..frames);
        }
        std::thread::sleep(PLAYOUT_POLL);
    }
    drop(stream);
}

type Started = (
    cpal::Stream,
    rtrb::Producer<f32>,
    String,
    cpal::StreamConfig,
);

fn start_stream(
    wanted: Option<&str>,
    underruns: &Arc<AtomicU64>,
    callback_max: &Arc<AtomicUsize>,
) -> Result<Started> {
    let host = audio_host();
    let device = find_audio_device(&host, Direction::Output, wanted)?;
    let name = device
        .description()
        .map(|d| d.name().to_owned())
        .unwrap_or_else(|_| wanted.unwrap_or("default").to_owned());
    let (config, format) = pick_config(&device, Direction::Output, PLAYOUT_PERIOD_MS)?;
    let ring_len = (config.sample_rate * PLAYOUT_RING_MS / 1000) as usize
        * usize::from(config.channels.max(1));
    let (producer, consumer) = rtrb::RingBuffer::<f32>::new(ring_len);
    let on_error = |e: cpal::Error| tracing::warn!("speaker stream: {e}");
    let stream = match format {
        cpal::SampleFormat::I16 => build_output::<i16>(
            &device,
            &config,
            consumer,
            underruns,
            callback_max,
            on_error,
        ),
        _ => build_output::<f32>(
            &device,
            &config,
            consumer,
            underruns,
            callback_max,
            on_error,
        ),
    }?;
    stream
        .play()
        .map_err(|e| MediaError::Device(format!("starting the speaker: {e}")))?;
    Ok((stream, producer, name, config))
}

fn build_output<T>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    mut consumer: rtrb::Consumer<f32>,
    underruns: &Arc<AtomicU64>,
    callback_max: &Arc<AtomicUsize>,
    on_error: impl FnMut(cpal::Error) + Send + 'static,
) -> Result<cpal::Stream>
where
    T: cpal::SizedSample + cpal::FromSample<f32>,
{
    let underruns = Arc::clone(underruns);
    let callback_max = Arc::clone(callback_max);
    let callback = move |data: &mut [T], _: &cpal::OutputCallbackInfo| {
        callback_max.fetch_max(data.len(), Ordering::Relaxed);
        let n = consumer.slots().min(data.len());
        let mut filled = 0;
        if let Ok(chunk) = consumer.read_chunk(n) {
            let (a, b) = chunk.as_slices();
            for (d, s) in data.iter_mut().zip(a.iter().chain(b)) {
                *d = T::from_sample(*s);
                filled += 1;
            }
            chunk.commit_all();
        }
        if let Some(rest) = data.get_mut(filled..)
            && !rest.is_empty()
        {
            rest.fill(T::EQUILIBRIUM);
            underruns.fetch_add(1, Ordering::Relaxed);
        }
    };
    device
        .build_output_stream::<T, _, _>(*config, callback, on_error, Some(STREAM_BUILD_TIMEOUT))
        .map_err(|e| device_error(&e, Direction::Output, "opening the speaker"))
}
