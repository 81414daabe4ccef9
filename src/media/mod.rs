//! Media: raw frames, synthetic sources, H.264/Opus codecs and signal analysis.
//!
//! Why this exists: the client SDK and the bot need to produce, compress,
//! decompress and check audio/video without knowing codec details. This module
//! is synchronous and self-contained (no tokio, no UI); callers drive pacing.
//!
//! Overview:
//! * [`frame`]: [`I420Frame`] (tightly packed YUV 4:2:0) and [`AudioFrame`]
//!   (interleaved i16 PCM, [`AUDIO_FRAME_MS`] per frame).
//! * [`profile`]: seed 001 video/audio profiles ([`VideoProfile`], [`AudioProfile`]);
//!   [`screen_profile`]: the presentation profiles ([`ScreenProfile`], Table 3-11).
//! * [`rate_ladder`]: bitrate → frame rate → resolution steps for congestion
//!   control; [`scale`]: I420 downscaling for the lower rungs.
//! * [`pattern`]: moving test picture carrying a machine-readable [`Stamp`]
//!   (frame number + capture time) that survives H.264 at low bitrates.
//! * [`tone`]: continuous-phase sine generator; [`analysis`]: frequency/level.
//! * [`h264`]: OpenH264 encoder/decoder (constrained baseline, Annex-B).
//! * [`opus_codec`]: libopus encoder/decoder with packet-loss concealment.
//! * [`source`]: [`VideoSource`]/[`AudioSource`] traits and synthetic impls.
//! * `devices` (feature `devices`): cameras, microphones and speakers (live
//!   sources and the mixing playout), with device enumeration; screens and
//!   windows (X11) to share.
//!
//! Invariant: every fallible operation returns [`MediaError`]; nothing here
//! panics on bad input (corrupt bitstreams, wrong frame sizes).

pub mod analysis;
#[cfg(feature = "client")]
pub mod audio_file;
#[cfg(feature = "devices")]
pub mod devices;
pub mod frame;
#[cfg(feature = "client")]
pub mod h264;
#[cfg(feature = "client")]
pub mod mixing;
#[cfg(feature = "client")]
pub mod opus_codec;
pub mod pattern;
pub mod pool;
pub mod profile;
pub mod rate_ladder;
#[cfg(any(feature = "client", feature = "devices"))]
mod resample;
pub mod scale;
#[cfg(feature = "client")]
pub mod screen_audio;
pub mod screen_profile;
pub mod source;
pub mod switch;
pub mod tone;

pub use analysis::{audio_level_dbov, dominant_frequency, rms_level};
pub use frame::{AUDIO_FRAME_MS, AudioFrame, I420Frame, samples_per_frame};
#[cfg(feature = "client")]
pub use h264::{EncodedVideo, H264Decoder, H264Encoder, H264EncoderConfig, VideoContent};
#[cfg(feature = "client")]
pub use mixing::{AudioMixOption, AudioMixing, MixingEvent};
#[cfg(feature = "client")]
pub use opus_codec::{OpusDecoder, OpusEncoder};
pub use pattern::{Stamp, TestPattern, now_us, read_stamp, stamp_height};
pub use profile::{AUDIO_PROFILES, AudioProfile, VIDEO_PROFILES, VideoProfile};
pub use screen_profile::{SCREEN_PROFILES, ScreenProfile};
pub use source::{AudioSource, SyntheticAudio, SyntheticVideo, VideoSource};
pub use switch::{SourceSwitch, SwitchableAudio, SwitchableVideo};
pub use tone::{ToneLevel, ToneSource};

impl MediaError {
    /// The seed error code for this error. `media` does not import
    /// `protocol`; keep in sync with `protocol::ErrorCode`.
    #[must_use]
    pub fn seed_code(&self) -> u32 {
        match self {
            Self::DeviceUnavailable { kind, .. } => kind.seed_code(),
            #[cfg(feature = "client")]
            Self::AudioFile { problem, .. } => problem.seed_code(),
            // INVALID_PARAMETER
            Self::InvalidParameter(_) | Self::InvalidDimensions { .. } => 90_000_005,
            // CAPTURE_DEVICE_NOT_READABLE
            Self::Device(_) => 90_100_020,
            // INVALID_ENCODING
            Self::FrameMismatch(_)
            | Self::H264Encode(_)
            | Self::H264Decode(_)
            | Self::Opus { .. } => 90_100_218,
        }
    }
}

/// Errors produced by the media module.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// Width/height are zero, odd where the codec needs even, or too large.
    #[error("invalid dimensions {width}x{height}: {reason}")]
    InvalidDimensions {
        /// Requested width.
        width: u32,
        /// Requested height.
        height: u32,
        /// Why they were rejected.
        reason: &'static str,
    },
    /// A frame's size/format does not match what the encoder was created for,
    /// or its planes violate the packing invariant.
    #[error("frame mismatch: {0}")]
    FrameMismatch(String),
    /// A numeric parameter (bitrate, sample rate, channels, ...) is out of range.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// The H.264 encoder failed to initialise or to encode a frame.
    #[error("h264 encoder: {0}")]
    H264Encode(String),
    /// The H.264 decoder rejected the bitstream; callers should request a keyframe.
    #[error("h264 decoder: {0}")]
    H264Decode(String),
    /// libopus failed to initialise, encode or decode.
    #[error("opus {op}: {message}")]
    Opus {
        /// Which operation failed (e.g. `"encode"`).
        op: &'static str,
        /// libopus' description of the failure.
        message: String,
    },
    /// A capture device (camera/microphone) or the speaker failed while
    /// opening or running. Retrying may help (the device was busy or unplugged).
    #[error("device: {0}")]
    Device(String),
    /// No usable device: none of that kind exists, the requested one is not
    /// there, or the audio server is unreachable. Not worth retrying until the
    /// devices change; callers fall back to the synthetic sources.
    #[error("{kind}: {detail}")]
    DeviceUnavailable {
        /// What is missing (carries the seed error code).
        kind: MissingDevice,
        /// What was looked for, and where.
        detail: String,
    },
    /// An audio file to mix cannot be played (carries the seed code).
    #[cfg(feature = "client")]
    #[error("{problem}: {detail}")]
    AudioFile {
        /// What is wrong with it.
        problem: audio_file::AudioFileProblem,
        /// Which file, and what the decoder said.
        detail: String,
    },
}

/// Which device is missing in [`MediaError::DeviceUnavailable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissingDevice {
    /// No camera at all (seed `NoAvailableVideoInputDevices`, 90100004).
    VideoInput,
    /// No microphone at all (seed `NoAvailableAudioInputDevices`, 90100005).
    AudioInput,
    /// No speaker at all (seed `NoAvailableAudioOutputDevices`, 90100006).
    AudioOutput,
    /// Devices exist but not the requested id (seed `CaptureDeviceNotFound`, 90100019).
    NotFound,
    /// No display to capture a screen from (no X server, or none reachable):
    /// screen sharing is not supported here (seed `MediaUpstreamUnsupported`,
    /// 90100024, the seed's "does not support media capture").
    Display,
}

impl MissingDevice {
    /// The seed error code for this case. `media` does not import `protocol`;
    /// keep in sync with `protocol::ErrorCode` (tests/devices_missing.rs checks).
    #[must_use]
    pub const fn seed_code(self) -> u32 {
        match self {
            Self::VideoInput => 90_100_004,
            Self::AudioInput => 90_100_005,
            Self::AudioOutput => 90_100_006,
            Self::NotFound => 90_100_019,
            Self::Display => 90_100_024,
        }
    }
}

impl std::fmt::Display for MissingDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::VideoInput => "no available video input devices",
            Self::AudioInput => "no available audio input devices",
            Self::AudioOutput => "no available audio output devices",
            Self::NotFound => "capture device not found",
            Self::Display => "no display to capture",
        })
    }
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, MediaError>;
