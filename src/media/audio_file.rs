//! A local audio file as a stream of mono samples at the pipeline's rate
//! (feature `client`): WAV, MP3, FLAC, Ogg/Vorbis and AAC in MP4, decoded
//! by symphonia, downmixed to mono and resampled by rubato
//! ([`MonoResampler`]). What audio mixing ([`super::mixing`]) plays.
//!
//! Decoding happens on the caller's thread a packet at a time, as samples
//! are asked for: no thread, no whole-file buffer.

use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, Decoder, DecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader, SeekMode, SeekTo};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;
use symphonia::core::units::Time;

use super::resample::MonoResampler;
use super::{MediaError, Result};

/// Why a file cannot be played (carries the seed code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioFileProblem {
    /// No such file, or it cannot be opened (seed `INVALID_PARAMETER`,
    /// 90000005: the path is wrong).
    Unopenable,
    /// It opens but holds no audio huddle can decode (seed
    /// `INVALID_ENCODING`, 90100218).
    NotAudio,
}

impl AudioFileProblem {
    /// The seed error code. `media` does not import `protocol`; keep in sync
    /// with `protocol::ErrorCode` (tests/audio_mixing.rs checks).
    #[must_use]
    pub const fn seed_code(self) -> u32 {
        match self {
            Self::Unopenable => 90_000_005,
            Self::NotAudio => 90_100_218,
        }
    }
}

impl std::fmt::Display for AudioFileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Unopenable => "audio file cannot be opened",
            Self::NotAudio => "not an audio file huddle can decode",
        })
    }
}

fn problem(problem: AudioFileProblem, detail: impl Into<String>) -> MediaError {
    MediaError::AudioFile {
        problem,
        detail: detail.into(),
    }
}

/// An open audio file.
pub struct AudioFile {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn Decoder>,
    track_id: u32,
    /// The file's own rate.
    source_rate: u32,
    /// The rate samples come out at.
    out_rate: u32,
    resampler: MonoResampler,
    /// Decoded, resampled samples not yet read.
    ready: VecDeque<f32>,
    /// Samples (at `out_rate`) read since the start of the file.
    position: u64,
    duration: Option<Duration>,
    ended: bool,
}

impl std::fmt::Debug for AudioFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioFile")
            .field("source_rate", &self.source_rate)
            .field("out_rate", &self.out_rate)
            .field("duration", &self.duration)
            .finish_non_exhaustive()
    }
}

impl AudioFile {
    /// Opens `path` to be read as mono samples at `out_rate` Hz.
    ///
    /// # Errors
    /// [`MediaError::AudioFile`]: [`AudioFileProblem::Unopenable`] for a
    /// missing or unreadable file, [`AudioFileProblem::NotAudio`] for one
    /// without a decodable audio track.
    pub fn open(path: &Path, out_rate: u32) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| {
            problem(
                AudioFileProblem::Unopenable,
                format!("{}: {e}", path.display()),
            )
        })?;
        if file.metadata().is_ok_and(|m| m.is_dir()) {
            return Err(problem(
                AudioFileProblem::Unopenable,
                format!("{} is a directory", path.display()),
            ));
        }
        let not_audio = |e: &dyn std::fmt::Display| {
            problem(
                AudioFileProblem::NotAudio,
                format!("{}: {e}", path.display()),
            )
        };
        let stream = MediaSourceStream::new(Box::new(file), Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let probed = symphonia::default::get_probe()
            .format(
                &hint,
                stream,
                &FormatOptions {
                    enable_gapless: true,
                    ..Default::default()
                },
                &MetadataOptions::default(),
            )
            .map_err(|e| not_audio(&e))?;
        let format = probed.format;
        let track = format
            .tracks()
            .iter()
            .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
            .ok_or_else(|| not_audio(&"no audio track"))?;
        let params = track.codec_params.clone();
        let source_rate = params
            .sample_rate
            .ok_or_else(|| not_audio(&"no sample rate"))?;
        let decoder = symphonia::default::get_codecs()
            .make(&params, &DecoderOptions::default())
            .map_err(|e| not_audio(&e))?;
        let duration = params
            .n_frames
            .map(|n| Duration::from_secs_f64(n as f64 / f64::from(source_rate)));
        Ok(Self {
            track_id: track.id,
            format,
            decoder,
            source_rate,
            out_rate,
            resampler: MonoResampler::new(source_rate, out_rate)?,
            ready: VecDeque::new(),
            position: 0,
            duration,
            ended: false,
        })
    }

    /// The file's length, when its container says (most do).
    #[must_use]
    pub fn duration(&self) -> Option<Duration> {
        self.duration
    }

    /// How far into the file reading has come.
    #[must_use]
    pub fn position(&self) -> Duration {
        Duration::from_secs_f64(self.position as f64 / f64::from(self.out_rate))
    }

    /// Whether every sample has been read.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.ended && self.ready.is_empty()
    }

    /// Continues from `at` (clamped to the duration).
    ///
    /// # Errors
    /// [`AudioFileProblem::NotAudio`] when the file cannot seek there.
    pub fn seek(&mut self, at: Duration) -> Result<()> {
        let at = self.duration.map_or(at, |d| at.min(d));
        let seeked = self
            .format
            .seek(
                SeekMode::Accurate,
                SeekTo::Time {
                    time: Time::new(at.as_secs(), f64::from(at.subsec_nanos()) / 1e9),
                    track_id: Some(self.track_id),
                },
            )
            .map_err(|e| problem(AudioFileProblem::NotAudio, format!("seek: {e}")))?;
        self.decoder.reset();
        self.resampler = MonoResampler::new(self.source_rate, self.out_rate)?;
        self.ready.clear();
        self.ended = false;
        // Where the reader actually landed, in output samples.
        self.position = seeked.actual_ts * u64::from(self.out_rate) / u64::from(self.source_rate);
        Ok(())
    }

    /// Appends up to `count` samples to `out`; fewer only at the end of the
    /// file. Returns how many were appended.
    ///
    /// # Errors
    /// [`AudioFileProblem::NotAudio`] when the file turns out to be damaged
    /// beyond single bad packets (which are skipped).
    pub fn read(&mut self, count: usize, out: &mut Vec<f32>) -> Result<usize> {
        while self.ready.len() < count && !self.ended {
            self.decode_packet()?;
        }
        let n = count.min(self.ready.len());
        out.extend(self.ready.drain(..n));
        self.position += n as u64;
        Ok(n)
    }

    fn decode_packet(&mut self) -> Result<()> {
        let packet = match self.format.next_packet() {
            Ok(p) => p,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                self.ended = true;
                return Ok(());
            }
            Err(SymphoniaError::ResetRequired) => {
                self.ended = true;
                return Ok(());
            }
            Err(e) => return Err(problem(AudioFileProblem::NotAudio, e.to_string())),
        };
        if packet.track_id() != self.track_id {
            return Ok(());
        }
        let decoded = match self.decoder.decode(&packet) {
            Ok(d) => d,
            // One damaged packet: skip it, as players do.
            Err(SymphoniaError::DecodeError(e)) => {
                tracing::debug!("audio file: skipping a damaged packet: {e}");
                return Ok(());
            }
            Err(e) => return Err(problem(AudioFileProblem::NotAudio, e.to_string())),
        };
        let spec = *decoded.spec();
        let channels = spec.channels.count().max(1);
        let mut samples = SampleBuffer::<f32>::new(decoded.capacity() as u64, spec);
        samples.copy_interleaved_ref(decoded);
        let mono: Vec<f32> = samples
            .samples()
            .chunks(channels)
            .map(|frame| frame.iter().sum::<f32>() / channels as f32)
            .collect();
        let mut resampled = Vec::with_capacity(mono.len() * 2);
        self.resampler.push(&mono, &mut resampled);
        self.ready.extend(resampled);
        Ok(())
    }
}
