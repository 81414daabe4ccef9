//! Audio mixing (seed 001 `startAudioMixing` and its family): a local audio
//! file played into the published audio, mixed with the microphone or
//! replacing it.
//!
//! ```text
//!  microphone (or any AudioSource) ─▶ MixingSource::next_frame ─▶ encoder
//!                                        ▲ + file samples × volume
//!  AudioMixing (handle, any thread) ─────┘  start / pause / seek / volume
//! ```
//!
//! [`mixable`] wraps a stream's audio source once, when the stream is made;
//! the handle then starts and stops files at any time, before or after
//! publishing. The source stays the same object, so switching the
//! microphone underneath (a `SwitchableAudio` inside) does not disturb a
//! file that is playing. The file is decoded on the audio thread, 20 ms at
//! a time, as frames are asked for.
//!
//! With [`AudioMixOption::play_locally`] the same samples (at the mixing
//! volume) also go out on [`AudioMixing::local_playback`], 20 ms frames on a
//! bounded channel that the application hands to its speaker playout
//! (`media::devices::AudioPlayout::add_stream`), so the user hears the music
//! too. Off by default; when nobody drains the channel, frames are dropped.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use super::audio_file::AudioFile;
use super::screen_audio::{self, ScreenAudioFeed};
use super::{AudioFrame, AudioSource, MediaError, Result};

/// What to play, and how (seed `AudioMixOption`).
#[derive(Debug, Clone, PartialEq)]
pub struct AudioMixOption {
    /// The file (WAV, MP3, FLAC, Ogg/Vorbis, AAC in MP4).
    pub file_path: PathBuf,
    /// Where to start in the file.
    pub start_time: Duration,
    /// Replace the microphone instead of mixing with it.
    pub replace: bool,
    /// Play again and again until stopped (then `repeat_count` must be 0).
    pub loop_forever: bool,
    /// Extra times to play after the first (0: once).
    pub repeat_count: u32,
    /// Also play the file on this device's speaker, through
    /// [`AudioMixing::local_playback`] (not in the seed's `AudioMixOption`;
    /// the seed's Web SDK plays it in the page). Off by default.
    pub play_locally: bool,
}

impl AudioMixOption {
    /// Plays `file_path` once from its start, mixed with the microphone.
    pub fn new(file_path: impl Into<PathBuf>) -> Self {
        Self {
            file_path: file_path.into(),
            start_time: Duration::ZERO,
            replace: false,
            loop_forever: false,
            repeat_count: 0,
            play_locally: false,
        }
    }
}

/// What happened to the mixed file (seed `audio-mixing-played`,
/// `audio-mixing-finished`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MixingEvent {
    /// A file started playing.
    Played,
    /// The file played to its end (not sent for `stop` or `pause`).
    Finished,
}

/// Events kept for a reader that does not read; past this the newest are
/// dropped.
pub const MIXING_EVENT_CAPACITY: usize = 16;

/// 20 ms frames queued for local playback (200 ms, as much as the playout's
/// own queue keeps ahead). When full (nobody plays them, or the speaker is
/// behind) the newest frame is dropped: the published audio never waits.
pub const LOCAL_PLAYBACK_CAPACITY: usize = 10;

struct Player {
    file: AudioFile,
    option: AudioMixOption,
    paused: bool,
    repeats_left: u32,
}

struct Shared {
    player: Option<Player>,
    /// A screen share's background audio bound to this stream
    /// (`screen_audio`), and whether it replaces the microphone.
    screen: Option<(ScreenAudioFeed, bool)>,
    /// 0.0 ..= 1.0 (seed level 0 ..= 100).
    volume: f32,
    events: Sender<MixingEvent>,
    /// Where the file's samples go for local playback.
    local: Sender<AudioFrame>,
}

/// Controls the file mixed into one stream's audio. Cheap to clone.
#[derive(Clone)]
pub struct AudioMixing {
    shared: Arc<Mutex<Shared>>,
    events: Receiver<MixingEvent>,
    local: Receiver<AudioFrame>,
    rate: u32,
}

impl std::fmt::Debug for AudioMixing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioMixing")
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

/// The audio source that mixes; replaces the stream's own.
pub struct MixingSource {
    inner: Box<dyn AudioSource>,
    shared: Arc<Mutex<Shared>>,
    scratch: Vec<f32>,
}

/// Wraps `inner` so that files can be mixed into it; returns the source to
/// publish and its handle.
pub fn mixable(inner: Box<dyn AudioSource>) -> (MixingSource, AudioMixing) {
    let (tx, rx) = crossbeam_channel::bounded(MIXING_EVENT_CAPACITY);
    let (local_tx, local_rx) = crossbeam_channel::bounded(LOCAL_PLAYBACK_CAPACITY);
    let shared = Arc::new(Mutex::new(Shared {
        player: None,
        screen: None,
        volume: 1.0,
        events: tx,
        local: local_tx,
    }));
    let rate = inner.sample_rate();
    (
        MixingSource {
            inner,
            shared: Arc::clone(&shared),
            scratch: Vec::new(),
        },
        AudioMixing {
            shared,
            events: rx,
            local: local_rx,
            rate,
        },
    )
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // Plain data: consistent even if a holder panicked.
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

fn invalid(detail: String) -> MediaError {
    MediaError::InvalidParameter(detail)
}

impl AudioMixing {
    /// Starts playing `option.file_path` (seed `startAudioMixing`), in place
    /// of any file playing now. The file is opened here.
    ///
    /// # Errors
    /// [`MediaError::AudioFile`] (90000005 / 90100218) for a file that cannot
    /// be opened or decoded, [`MediaError::InvalidParameter`] for `loop`
    /// with a `repeat_count` or a `start_time` past the end. The stream's
    /// audio carries on as it was.
    pub fn start(&self, option: AudioMixOption) -> Result<()> {
        if option.loop_forever && option.repeat_count != 0 {
            return Err(invalid(
                "loop_forever needs repeat_count 0 (seed AudioMixOption)".into(),
            ));
        }
        let mut file = AudioFile::open(&option.file_path, self.rate)?;
        if let Some(d) = file.duration()
            && option.start_time > d
        {
            return Err(invalid(format!(
                "start_time {:?} is past the file's end ({d:?})",
                option.start_time
            )));
        }
        if !option.start_time.is_zero() {
            file.seek(option.start_time)?;
        }
        let mut shared = lock(&self.shared);
        shared.player = Some(Player {
            file,
            repeats_left: option.repeat_count,
            option,
            paused: false,
        });
        shared.events.try_send(MixingEvent::Played).ok(); // reader behind: dropped
        Ok(())
    }

    /// Stops the file (seed `stopAudioMixing`); no `Finished` event.
    pub fn stop(&self) {
        lock(&self.shared).player = None;
    }

    /// Pauses the file (seed `pauseAudioMixing`). With `replace`, the stream
    /// stays silent meanwhile (the microphone does not come back by itself).
    pub fn pause(&self) {
        if let Some(p) = lock(&self.shared).player.as_mut() {
            p.paused = true;
        }
    }

    /// Resumes a paused file where it was (seed `resumeAudioMixing`).
    pub fn resume(&self) {
        if let Some(p) = lock(&self.shared).player.as_mut() {
            p.paused = false;
        }
    }

    /// Whether a file is playing (started, not paused, not finished).
    pub fn is_playing(&self) -> bool {
        lock(&self.shared)
            .player
            .as_ref()
            .is_some_and(|p| !p.paused)
    }

    /// The file's length (seed `getAudioMixingDuration`); `None` without a
    /// file, or when its container does not say.
    pub fn duration(&self) -> Option<Duration> {
        lock(&self.shared)
            .player
            .as_ref()
            .and_then(|p| p.file.duration())
    }

    /// How far the file has played (seed `getAudioMixingCurrentPosition`).
    pub fn position(&self) -> Option<Duration> {
        lock(&self.shared)
            .player
            .as_ref()
            .map(|p| p.file.position())
    }

    /// Jumps to `position` (seed `setAudioMixingPosition`).
    ///
    /// # Errors
    /// [`MediaError::InvalidOperation`]-like [`MediaError::InvalidParameter`]
    /// without a file or past its end.
    pub fn set_position(&self, position: Duration) -> Result<()> {
        let mut shared = lock(&self.shared);
        let player = shared
            .player
            .as_mut()
            .ok_or_else(|| invalid("no audio file is mixing".into()))?;
        if let Some(d) = player.file.duration()
            && position > d
        {
            return Err(invalid(format!(
                "position {position:?} is past the file's end ({d:?})"
            )));
        }
        player.file.seek(position)
    }

    /// Sets the file's volume (seed `setAudioMixingVolume`): 0 silent, 100
    /// as recorded.
    ///
    /// # Errors
    /// [`MediaError::InvalidParameter`] above 100.
    pub fn set_volume(&self, level: u32) -> Result<()> {
        if level > 100 {
            return Err(invalid(format!("volume {level} is not within 0..=100")));
        }
        lock(&self.shared).volume = level as f32 / 100.0;
        Ok(())
    }

    /// Sends a screen share's background audio through this stream's audio
    /// (seed `bindScreenAudio2RelatedStream`): `source` (a live capture the
    /// user chose, see [`super::screen_audio`] for the echo caveat) is mixed
    /// with the microphone, or replaces it with `mute_main_stream_audio`.
    /// Replaces a source bound before. Files still mix on top.
    ///
    /// # Errors
    /// [`MediaError::InvalidParameter`] for a source at another sample rate
    /// than the stream's; nothing changes then.
    pub fn bind_screen_audio(
        &self,
        source: Box<dyn AudioSource>,
        mute_main_stream_audio: bool,
    ) -> Result<()> {
        let feed = ScreenAudioFeed::start(source, self.rate)?;
        lock(&self.shared).screen = Some((feed, mute_main_stream_audio));
        Ok(())
    }

    /// Stops sending the screen audio (the microphone comes back).
    pub fn unbind_screen_audio(&self) {
        lock(&self.shared).screen = None;
    }

    /// Whether a screen audio is bound.
    pub fn has_screen_audio(&self) -> bool {
        lock(&self.shared).screen.is_some()
    }

    /// The events ([`MixingEvent`]).
    pub fn events(&self) -> &Receiver<MixingEvent> {
        &self.events
    }

    /// What a file started with [`AudioMixOption::play_locally`] plays on
    /// this device: mono 20 ms frames at the stream's rate, at the mixing
    /// volume, while it plays (none while paused or without the option).
    /// Hand it to the speaker playout
    /// (`media::devices::AudioPlayout::add_stream`); the channel ends when
    /// the stream and every handle are gone.
    pub fn local_playback(&self) -> Receiver<AudioFrame> {
        self.local.clone()
    }
}

impl MixingSource {
    /// The file (mixed or replacing), then the bound screen audio (the
    /// microphone silenced first when the binding says so).
    fn mix(&mut self, frame: &mut AudioFrame) {
        let screen = {
            let shared = lock(&self.shared);
            shared.screen.as_ref().map(|(feed, mute_main)| {
                if *mute_main {
                    frame.samples.fill(0);
                }
                feed.try_frame()
            })
        };
        self.mix_file(frame);
        if let Some(Some(screen)) = screen {
            screen_audio::add_into(frame, &screen);
        }
    }

    /// Mixes the file's next samples into `frame` (or replaces them).
    fn mix_file(&mut self, frame: &mut AudioFrame) {
        let channels = usize::from(frame.channels.max(1));
        let wanted = frame.samples.len() / channels;
        let mut shared = lock(&self.shared);
        let volume = shared.volume;
        let Shared {
            player,
            events,
            local,
            ..
        } = &mut *shared;
        let Some(p) = player.as_mut() else {
            return;
        };
        let replace = p.option.replace;
        let play_locally = p.option.play_locally && !p.paused;
        self.scratch.clear();
        if !p.paused {
            while self.scratch.len() < wanted {
                let need = wanted - self.scratch.len();
                match p.file.read(need, &mut self.scratch) {
                    Ok(n) if n < need && p.file.is_finished() => {
                        let again = p.option.loop_forever || p.repeats_left > 0;
                        if again && p.file.seek(Duration::ZERO).is_ok() {
                            p.repeats_left = p.repeats_left.saturating_sub(1);
                            if n == 0 && p.file.is_finished() {
                                break; // an empty file: nothing to loop
                            }
                        } else {
                            events.try_send(MixingEvent::Finished).ok();
                            *player = None;
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!("audio mixing stopped: {e}");
                        *player = None;
                        break;
                    }
                }
            }
        }
        if play_locally && !self.scratch.is_empty() {
            // The last piece of a file is padded to a whole frame.
            let mut samples = vec![0i16; wanted];
            for (out, s) in samples.iter_mut().zip(&self.scratch) {
                *out = (s * volume * f32::from(i16::MAX))
                    .round()
                    .clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16;
            }
            let local_frame = AudioFrame {
                sample_rate: frame.sample_rate,
                channels: 1,
                samples,
            };
            local.try_send(local_frame).ok(); // full or nobody listening: dropped
        }
        if replace {
            frame.samples.fill(0);
        }
        for (i, s) in self.scratch.iter().enumerate() {
            let add = s * volume * f32::from(i16::MAX);
            for sample in frame.samples[i * channels..(i + 1) * channels].iter_mut() {
                *sample = (f32::from(*sample) + add)
                    .round()
                    .clamp(f32::from(i16::MIN), f32::from(i16::MAX))
                    as i16;
            }
        }
    }
}

impl AudioSource for MixingSource {
    fn sample_rate(&self) -> u32 {
        self.inner.sample_rate()
    }

    fn channels(&self) -> u16 {
        self.inner.channels()
    }

    fn is_live(&self) -> bool {
        self.inner.is_live()
    }

    fn next_frame(&mut self) -> Result<Option<AudioFrame>> {
        let Some(mut frame) = self.inner.next_frame()? else {
            return Ok(None);
        };
        self.mix(&mut frame);
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::dominant_frequency;

    /// A 16-bit PCM WAV of `segments` (Hz, seconds) at `rate`, mono.
    pub fn wav(rate: u32, segments: &[(f32, f32)]) -> Vec<u8> {
        let mut pcm = Vec::new();
        for &(hz, secs) in segments {
            let n = (secs * rate as f32) as usize;
            for i in 0..n {
                let v = (std::f32::consts::TAU * hz * i as f32 / rate as f32).sin() * 0.5;
                pcm.extend_from_slice(&((v * 32767.0) as i16).to_le_bytes());
            }
        }
        let mut out = Vec::new();
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(36 + pcm.len() as u32).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes()); // PCM
        out.extend_from_slice(&1u16.to_le_bytes()); // mono
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&(rate * 2).to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&16u16.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&(pcm.len() as u32).to_le_bytes());
        out.extend_from_slice(&pcm);
        out
    }

    fn temp(name: &str, bytes: &[u8]) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "huddle-mix-{}-{}-{name}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::write(&path, bytes).expect("write");
        path
    }

    /// Silence at 48 kHz, `channels` channels, endless.
    struct Silence(u16);

    impl AudioSource for Silence {
        fn sample_rate(&self) -> u32 {
            48_000
        }
        fn channels(&self) -> u16 {
            self.0
        }
        fn next_frame(&mut self) -> Result<Option<AudioFrame>> {
            Ok(Some(AudioFrame::silence(48_000, self.0)))
        }
    }

    /// `n` frames (20 ms) of the mixed source, first channel.
    fn take(source: &mut MixingSource, n: usize) -> Vec<i16> {
        let channels = usize::from(source.channels());
        (0..n)
            .flat_map(|_| {
                let f = source.next_frame().expect("ok").expect("frame");
                f.samples.into_iter().step_by(channels).collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn a_file_is_mixed_resampled_paused_sought_and_finishes() {
        // 44.1 kHz file: 1 s of 1 kHz then 1 s of 1.6 kHz.
        let path = temp("two.wav", &wav(44_100, &[(1000.0, 1.0), (1600.0, 1.0)]));
        let (mut source, mixing) = mixable(Box::new(Silence(2)));
        assert_eq!(take(&mut source, 2), vec![0; 1920], "silence before");
        mixing.start(AudioMixOption::new(&path)).expect("starts");
        assert_eq!(mixing.events().try_recv(), Ok(MixingEvent::Played));
        let d = mixing.duration().expect("a WAV knows its length");
        assert!((d.as_secs_f64() - 2.0).abs() < 0.01, "{d:?}");
        let first = take(&mut source, 25); // 0.5 s
        let hz = dominant_frequency(&first, 1, 48_000).expect("a tone");
        assert!((hz - 1000.0).abs() < 15.0, "{hz} Hz");
        mixing.pause();
        assert!(!mixing.is_playing());
        assert!(
            take(&mut source, 5).iter().all(|&s| s == 0),
            "paused: silent"
        );
        let at = mixing.position().expect("position");
        assert!((at.as_secs_f64() - 0.5).abs() < 0.03, "{at:?}");
        mixing.resume();
        mixing
            .set_position(Duration::from_millis(1200))
            .expect("seek");
        let later = take(&mut source, 20);
        let hz = dominant_frequency(&later, 1, 48_000).expect("a tone");
        assert!((hz - 1600.0).abs() < 15.0, "{hz} Hz after the seek");
        mixing.set_volume(0).expect("volume");
        assert!(take(&mut source, 2).iter().all(|&s| s == 0), "volume 0");
        mixing.set_volume(100).expect("volume");
        // The rest of the file, then silence and Finished.
        take(&mut source, 30);
        assert_eq!(mixing.events().try_recv(), Ok(MixingEvent::Finished));
        assert!(mixing.position().is_none(), "nothing mixing after the end");
        assert!(take(&mut source, 2).iter().all(|&s| s == 0));
        std::fs::remove_file(path).ok();
    }

    #[test]
    fn replace_silences_the_microphone_and_repeat_plays_again() {
        let path = temp("short.wav", &wav(48_000, &[(800.0, 0.2)]));
        let tone = crate::media::SyntheticAudio::new(300.0, 48_000, 1);
        let (mut source, mixing) = mixable(Box::new(tone));
        let mut option = AudioMixOption::new(&path);
        option.replace = true;
        option.repeat_count = 1;
        mixing.start(option).expect("starts");
        // Two plays of 0.2 s: 20 frames, all the file's tone, no 300 Hz.
        let heard = take(&mut source, 20);
        let hz = dominant_frequency(&heard, 1, 48_000).expect("a tone");
        assert!((hz - 800.0).abs() < 15.0, "{hz} Hz");
        take(&mut source, 2);
        let events: Vec<_> = mixing.events().try_iter().collect();
        assert_eq!(events, [MixingEvent::Played, MixingEvent::Finished]);
        // After the end the microphone is back.
        let after = take(&mut source, 10);
        assert!((dominant_frequency(&after, 1, 48_000).expect("a tone") - 300.0).abs() < 15.0);
        std::fs::remove_file(path).ok();
    }

    #[test]
    fn play_locally_sends_the_file_to_local_playback_and_only_then() {
        let path = temp("local.wav", &wav(48_000, &[(700.0, 1.0)]));
        let tone = crate::media::SyntheticAudio::new(300.0, 48_000, 2);
        let (mut source, mixing) = mixable(Box::new(tone));
        let local = mixing.local_playback();
        // Off by default: the file is published, nothing plays locally.
        mixing.start(AudioMixOption::new(&path)).expect("starts");
        take(&mut source, 10);
        assert!(
            local.try_recv().is_err(),
            "played locally without the option"
        );
        // On: the file alone (not the microphone), mono, at the volume.
        let mut option = AudioMixOption::new(&path);
        option.play_locally = true;
        mixing.start(option).expect("starts");
        mixing.set_volume(50).expect("volume");
        take(&mut source, 10);
        let frames: Vec<AudioFrame> = local.try_iter().collect();
        assert_eq!(frames.len(), 10);
        assert!(
            frames
                .iter()
                .all(|f| f.channels == 1 && f.sample_rate == 48_000)
        );
        let pcm: Vec<i16> = frames.into_iter().flat_map(|f| f.samples).collect();
        let hz = dominant_frequency(&pcm, 1, 48_000).expect("a tone");
        assert!((hz - 700.0).abs() < 15.0, "{hz} Hz played locally");
        let peak = pcm.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        // 0.5 of full scale in the file, × 0.5 volume.
        assert!((7_000..=9_500).contains(&peak), "peak {peak}");
        // Paused: nothing plays locally; stopped: nothing either.
        mixing.pause();
        take(&mut source, 5);
        assert!(local.try_recv().is_err(), "played while paused");
        mixing.stop();
        take(&mut source, 5);
        assert!(local.try_recv().is_err(), "played after stop");
        // Nobody draining: the queue stays bounded.
        mixing.resume();
        let mut option = AudioMixOption::new(&path);
        option.play_locally = true;
        mixing.start(option).expect("starts");
        take(&mut source, 40);
        assert_eq!(local.len(), LOCAL_PLAYBACK_CAPACITY);
        std::fs::remove_file(path).ok();
    }

    #[test]
    fn bad_files_and_options_are_refused_and_change_nothing() {
        let (mut source, mixing) = mixable(Box::new(Silence(1)));
        let missing = mixing
            .start(AudioMixOption::new("/no/such/file.mp3"))
            .expect_err("missing");
        assert_eq!(missing.seed_code(), 90_000_005, "{missing}");
        let text = temp("notes.wav", b"this is not audio at all, just text");
        let not_audio = mixing.start(AudioMixOption::new(&text)).expect_err("text");
        assert_eq!(not_audio.seed_code(), 90_100_218, "{not_audio}");
        let good = temp("ok.wav", &wav(48_000, &[(500.0, 0.5)]));
        let mut looping = AudioMixOption::new(&good);
        looping.loop_forever = true;
        looping.repeat_count = 2;
        assert_eq!(
            mixing
                .start(looping)
                .expect_err("loop + repeat")
                .seed_code(),
            90_000_005
        );
        let mut late = AudioMixOption::new(&good);
        late.start_time = Duration::from_secs(5);
        assert!(mixing.start(late).is_err());
        assert!(mixing.set_volume(101).is_err());
        assert!(mixing.set_position(Duration::ZERO).is_err(), "no file");
        assert!(mixing.events().try_recv().is_err(), "nothing started");
        assert!(
            take(&mut source, 2).iter().all(|&s| s == 0),
            "audio goes on"
        );
        std::fs::remove_file(text).ok();
        std::fs::remove_file(good).ok();
    }
}
