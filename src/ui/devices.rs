//! Where media comes from and goes to. Today: the synthetic camera and tone,
//! and no playout.
//!
//! TODO(devices): the `devices` feature (camera via nokhwa, microphone and
//! speaker via cpal, `media::devices`) plugs in here: [`DeviceCatalog::probe`]
//! lists real devices, [`DeviceCatalog::open_camera`]/`open_microphone` return
//! them as `VideoSource`/`AudioSource`, and [`DeviceCatalog::open_playout`]
//! returns a speaker sink. The lobby pickers and the room view already go
//! through this type only.

use crate::media::{
    AudioFrame, AudioProfile, AudioSource, SyntheticAudio, SyntheticVideo, VideoProfile,
    VideoSource,
};

/// Plays one remote stream's decoded audio (one per remote stream, on that
/// stream's audio-tap thread).
pub trait AudioPlayout: Send {
    /// Plays a 20 ms frame at `volume` (0 = silent, 1 = as received).
    fn play(&mut self, frame: &AudioFrame, volume: f32);
}

/// A playout that discards audio (no speaker yet).
pub struct NullPlayout;

impl AudioPlayout for NullPlayout {
    fn play(&mut self, _frame: &AudioFrame, _volume: f32) {}
}

/// A device as a picker shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEntry {
    /// Stable id (saved in settings).
    pub id: String,
    /// What the user sees.
    pub label: String,
}

/// The devices the pickers offer.
#[derive(Debug, Clone)]
pub struct DeviceCatalog {
    /// Cameras; the synthetic pattern is always last.
    pub cameras: Vec<DeviceEntry>,
    /// Microphones; the synthetic tone is always last.
    pub microphones: Vec<DeviceEntry>,
    /// Speakers; "none" is always last.
    pub speakers: Vec<DeviceEntry>,
}

/// Id of the synthetic camera/microphone/no-speaker entries.
pub const SYNTHETIC_ID: &str = "synthetic";

impl DeviceCatalog {
    /// Lists devices. TODO(devices): enumerate real ones (off the UI thread).
    pub fn probe() -> Self {
        let entry = |label: &str| DeviceEntry {
            id: SYNTHETIC_ID.into(),
            label: label.into(),
        };
        Self {
            cameras: vec![entry("synthetic test pattern")],
            microphones: vec![entry("synthetic tone")],
            speakers: vec![entry("none (no playout)")],
        }
    }

    /// Whether only synthetic sources exist (the UI says so).
    pub fn synthetic_only(&self) -> bool {
        self.cameras.iter().all(|d| d.id == SYNTHETIC_ID)
            && self.microphones.iter().all(|d| d.id == SYNTHETIC_ID)
    }

    /// Opens camera `id`. TODO(devices): real cameras; today always synthetic.
    pub fn open_camera(&self, _id: &str, profile: &VideoProfile) -> Box<dyn VideoSource> {
        Box::new(SyntheticVideo::new(
            profile.width,
            profile.height,
            profile.frame_rate,
        ))
    }

    /// Opens microphone `id`. TODO(devices): real microphones.
    pub fn open_microphone(&self, _id: &str, profile: &AudioProfile) -> Box<dyn AudioSource> {
        Box::new(SyntheticAudio::new(
            440.0,
            profile.sample_rate,
            profile.channels,
        ))
    }

    /// Opens speaker `id` for one remote stream. TODO(devices): cpal playout.
    pub fn open_playout(&self, _id: &str) -> Box<dyn AudioPlayout> {
        Box::new(NullPlayout)
    }
}
