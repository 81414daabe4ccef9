//! Real devices: cameras, microphones and speakers (feature `devices`).
//!
//! Why this exists: the synthetic sources prove the pipeline; people need their
//! own camera, microphone and speakers. This module adapts them to the same
//! [`VideoSource`](super::VideoSource)/[`AudioSource`](super::AudioSource)
//! traits, and plays remote audio through one mixing output stream.
//!
//! ```text
//!  camera (nokhwa/V4L) ─▶ capture thread: decode + I420 ─▶ bounded(2) ─▶ CameraSource::next_frame
//!  mic (cpal callback) ─▶ ring (f32, drop when full) ─▶ mic thread: resample 48 kHz mono,
//!                                                      20 ms frames ─▶ bounded (drop oldest) ─▶ next_frame
//!  X11 screen/window ─▶ screen thread: GetImage, scale + I420 ─▶ bounded(2) ─▶ ScreenSource::next_frame
//!  remote streams ─▶ playout thread: jitter buffers ─▶ mix ─▶ resample ─▶ ring ─▶ cpal callback
//! ```
//!
//! * [`camera`]: [`CameraSource`]. [`microphone`]: [`MicrophoneSource`].
//!   [`playout`]: [`AudioPlayout`]. [`mixer`]: the pure jitter-buffer/mixing
//!   logic it runs (no device, unit-tested). [`convert`]: pixel formats to I420.
//!   [`watch`]: hot-plug, by polling the lists on a worker thread.
//!   [`screen`]: [`ScreenSource`], a screen or window shared (X11 through
//!   [`x11`]).
//!
//! Invariants:
//! * Audio goes through cpal's PulseAudio host when a server is reachable
//!   ([`audio_host`]): it is pure Rust and works where the ALSA→pulse plugin
//!   does not. Otherwise cpal's default host (ALSA).
//! * cpal callbacks never block or allocate: they only move samples through
//!   preallocated lock-free rings ([`rtrb`]). Everything else runs on threads
//!   owned by the source/playout, which also own the (not necessarily `Send`)
//!   cpal streams and nokhwa cameras, and end when those are dropped.
//! * Device lists are sorted (name, then id), never in hash order.
//! * Missing devices are [`MediaError::DeviceUnavailable`] with a seed code;
//!   callers fall back to the synthetic sources.

pub mod camera;
pub mod convert;
pub mod microphone;
pub mod mixer;
pub mod playout;
pub mod screen;
pub mod watch;
pub mod x11;

pub use camera::{CameraConfig, CameraSource};
pub use microphone::MicrophoneSource;
pub use mixer::{JitterBuffer, SPEAKING_THRESHOLD};
pub use playout::AudioPlayout;
pub use screen::{
    CaptureEnded, CaptureTarget, ScreenCaptureConfig, ScreenSource, is_screen_share_supported,
    list_screens, list_windows,
};
pub use watch::{DeviceChange, DeviceKind, DeviceState, DeviceWatcher, WatchConfig};

use cpal::traits::{DeviceTrait, HostTrait};

use super::{MediaError, MissingDevice, Result};

/// One selectable device.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DeviceInfo {
    /// Stable id to open it with (cpal: `"pulseaudio:<name>"`; camera: V4L index).
    pub id: String,
    /// Human-readable name for pickers.
    pub name: String,
    /// Whether this is the system default (audio only; cameras: the first one).
    pub is_default: bool,
}

/// The cpal host to use: PulseAudio when a server is reachable, else the default.
///
/// Connecting to PulseAudio waits up to 2 s (cpal's own timeout) when the
/// socket exists but the server hangs; call this off UI threads.
#[must_use]
pub fn audio_host() -> cpal::Host {
    if cpal::available_hosts().contains(&cpal::HostId::PulseAudio)
        && let Ok(host) = cpal::host_from_id(cpal::HostId::PulseAudio)
    {
        return host;
    }
    cpal::default_host()
}

/// Whether a PulseAudio server answers (what the device tests need).
#[must_use]
pub fn pulseaudio_available() -> bool {
    cpal::available_hosts().contains(&cpal::HostId::PulseAudio)
        && cpal::host_from_id(cpal::HostId::PulseAudio).is_ok()
}

/// Cameras, sorted by name then id. An empty list is not an error.
///
/// # Errors
/// [`MediaError::Device`] when the camera backend cannot be queried.
pub fn list_cameras() -> Result<Vec<DeviceInfo>> {
    let cameras = camera::query_cameras()?;
    let mut list: Vec<DeviceInfo> = cameras
        .iter()
        .enumerate()
        .map(|(i, info)| DeviceInfo {
            id: info.index().as_string(),
            name: info.human_name(),
            is_default: i == 0,
        })
        .collect();
    list.sort();
    Ok(list)
}

/// Microphones (on PulseAudio: sources, monitors of sinks included), sorted.
///
/// # Errors
/// [`MediaError::Device`] when the audio host cannot list devices.
pub fn list_microphones() -> Result<Vec<DeviceInfo>> {
    let host = audio_host();
    let default = host.default_input_device().and_then(|d| d.id().ok());
    let devices = host
        .input_devices()
        .map_err(|e| MediaError::Device(format!("listing microphones: {e}")))?;
    Ok(describe(devices, default.as_ref()))
}

/// Speakers (on PulseAudio: sinks), sorted.
///
/// # Errors
/// [`MediaError::Device`] when the audio host cannot list devices.
pub fn list_speakers() -> Result<Vec<DeviceInfo>> {
    let host = audio_host();
    let default = host.default_output_device().and_then(|d| d.id().ok());
    let devices = host
        .output_devices()
        .map_err(|e| MediaError::Device(format!("listing speakers: {e}")))?;
    Ok(describe(devices, default.as_ref()))
}

fn describe(
    devices: impl Iterator<Item = cpal::Device>,
    default: Option<&cpal::DeviceId>,
) -> Vec<DeviceInfo> {
    let mut list: Vec<DeviceInfo> = devices
        .filter_map(|d| {
            let id = d.id().ok()?;
            let name = d
                .description()
                .map(|desc| desc.name().to_owned())
                .unwrap_or_else(|_| id.id().to_owned());
            Some(DeviceInfo {
                is_default: Some(&id) == default,
                id: id.to_string(),
                name,
            })
        })
        .collect();
    list.sort();
    list
}

/// Direction of an audio device lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Input,
    Output,
}

/// Finds an audio device: the default for `None`, else by id (`"host:name"`
/// as in [`DeviceInfo::id`], or the bare device name) or by display name.
pub(crate) fn find_audio_device(
    host: &cpal::Host,
    direction: Direction,
    wanted: Option<&str>,
) -> Result<cpal::Device> {
    let missing = match direction {
        Direction::Input => MissingDevice::AudioInput,
        Direction::Output => MissingDevice::AudioOutput,
    };
    let host_name = host.id().name();
    let Some(wanted) = wanted else {
        let device = match direction {
            Direction::Input => host.default_input_device(),
            Direction::Output => host.default_output_device(),
        };
        return device.ok_or_else(|| MediaError::DeviceUnavailable {
            kind: missing,
            detail: format!("no default device on the {host_name} host"),
        });
    };
    let devices: Vec<cpal::Device> = match direction {
        Direction::Input => host.input_devices().map(Iterator::collect),
        Direction::Output => host.output_devices().map(Iterator::collect),
    }
    .map_err(|e| MediaError::Device(format!("listing devices on {host_name}: {e}")))?;
    if devices.is_empty() {
        return Err(MediaError::DeviceUnavailable {
            kind: missing,
            detail: format!("the {host_name} host has none"),
        });
    }
    let matches = |d: &cpal::Device| {
        d.id()
            .is_ok_and(|id| id.to_string() == wanted || id.id() == wanted)
            || d.description().is_ok_and(|desc| desc.name() == wanted)
    };
    devices
        .into_iter()
        .find(matches)
        .ok_or_else(|| MediaError::DeviceUnavailable {
            kind: MissingDevice::NotFound,
            detail: format!("no device {wanted:?} on the {host_name} host"),
        })
}

/// Maps a cpal error: a device or host that is not there is
/// [`MediaError::DeviceUnavailable`] (callers fall back), anything else
/// [`MediaError::Device`].
pub(crate) fn device_error(e: &cpal::Error, direction: Direction, what: &str) -> MediaError {
    match e.kind() {
        cpal::ErrorKind::DeviceNotAvailable | cpal::ErrorKind::HostUnavailable => {
            MediaError::DeviceUnavailable {
                kind: match direction {
                    Direction::Input => MissingDevice::AudioInput,
                    Direction::Output => MissingDevice::AudioOutput,
                },
                detail: format!("{what}: {e}"),
            }
        }
        _ => MediaError::Device(format!("{what}: {e}")),
    }
}

/// Picks a stream config for `device`: its default rate and channel count, in
/// f32 or i16 (the formats the callbacks here handle), with a fixed period of
/// about `period_ms` where the host allows it.
pub(crate) fn pick_config(
    device: &cpal::Device,
    direction: Direction,
    period_ms: u32,
) -> Result<(cpal::StreamConfig, cpal::SampleFormat)> {
    let default = match direction {
        Direction::Input => device.default_input_config(),
        Direction::Output => device.default_output_config(),
    }
    .map_err(|e| device_error(&e, direction, "default stream config"))?;
    let rate = default.sample_rate();
    let channels = default.channels();
    let format = match default.sample_format() {
        cpal::SampleFormat::F32 => cpal::SampleFormat::F32,
        cpal::SampleFormat::I16 => cpal::SampleFormat::I16,
        other => {
            let ranges: Vec<cpal::SupportedStreamConfigRange> = match direction {
                Direction::Input => device.supported_input_configs().map(Iterator::collect),
                Direction::Output => device.supported_output_configs().map(Iterator::collect),
            }
            .map_err(|e| MediaError::Device(format!("supported stream configs: {e}")))?;
            [cpal::SampleFormat::F32, cpal::SampleFormat::I16]
                .into_iter()
                .find(|f| {
                    ranges.iter().any(|r| {
                        r.sample_format() == *f
                            && r.channels() == channels
                            && (r.min_sample_rate()..=r.max_sample_rate()).contains(&rate)
                    })
                })
                .ok_or_else(|| {
                    MediaError::Device(format!("device format {other} unsupported (need f32/i16)"))
                })?
        }
    };
    let period = rate * period_ms / 1000;
    let buffer_size = match default.buffer_size() {
        cpal::SupportedBufferSize::Range { min, max } if (*min..=*max).contains(&period) => {
            cpal::BufferSize::Fixed(period)
        }
        _ => cpal::BufferSize::Default,
    };
    let config = cpal::StreamConfig {
        channels,
        sample_rate: rate,
        buffer_size,
    };
    Ok((config, format))
}
