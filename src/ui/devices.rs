//! Where media comes from and goes to: real cameras, microphones and speakers
//! (feature `devices`, `media::devices`) with the synthetic camera and tone as
//! the fallback whenever a device is missing or fails to open.
//!
//! Opening a device can take seconds (PulseAudio answering, a camera
//! negotiating a mode), and the UI thread must never wait: the sources returned
//! here open their device lazily on the first `next_frame`, which runs on the
//! publisher's media thread, and the playout opens the shared speaker on the
//! first frame it plays, on the stream's audio-tap thread. The lobby pickers and
//! the room view go through this type only.

use super::error_text::Notice;
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

/// Device trouble for the user: a device that failed to open (or died) and was
/// replaced by its synthetic stand-in. Media threads post; the UI drains.
fn notice_channel() -> &'static (
    crossbeam_channel::Sender<Notice>,
    crossbeam_channel::Receiver<Notice>,
) {
    static CHANNEL: std::sync::OnceLock<(
        crossbeam_channel::Sender<Notice>,
        crossbeam_channel::Receiver<Notice>,
    )> = std::sync::OnceLock::new();
    CHANNEL.get_or_init(|| crossbeam_channel::bounded(16))
}

/// Posts a notice: what the user reads, and the raw error behind "Details"
/// (dropped when 16 are already waiting).
pub(crate) fn notify(text: &str, detail: String) {
    tracing::warn!("{text} ({detail})");
    let notice = Notice {
        text: text.to_owned(),
        details: Some(detail),
    };
    notice_channel().0.try_send(notice).ok();
}

/// Notices posted since the last call.
pub fn take_notices() -> Vec<Notice> {
    notice_channel().1.try_iter().collect()
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

/// Id of "the system's default device" (falls back to synthetic when none).
pub const DEFAULT_ID: &str = "default";

impl DeviceCatalog {
    /// Lists devices: the system default first (when real devices exist), then
    /// each device, then the synthetic entry. Enumeration talks to the audio
    /// server and V4L; it is done once, when the app starts.
    pub fn probe() -> Self {
        let (cameras, microphones, speakers) = real::list();
        let with_default = |mut list: Vec<DeviceEntry>, last: Vec<DeviceEntry>| {
            if !list.is_empty() {
                list.insert(
                    0,
                    DeviceEntry {
                        id: DEFAULT_ID.into(),
                        label: "system default".into(),
                    },
                );
            }
            list.extend(last);
            list
        };
        let synthetic = Self::synthetic();
        Self {
            cameras: with_default(cameras, synthetic.cameras),
            microphones: with_default(microphones, synthetic.microphones),
            speakers: with_default(speakers, synthetic.speakers),
        }
    }

    /// Only the synthetic camera and tone, and no speaker (tests; machines
    /// without devices get the same from [`DeviceCatalog::probe`]).
    pub fn synthetic() -> Self {
        let synthetic = |label: &str| DeviceEntry {
            id: SYNTHETIC_ID.into(),
            label: label.into(),
        };
        Self {
            cameras: vec![synthetic("synthetic test pattern")],
            microphones: vec![synthetic("synthetic tone")],
            speakers: vec![synthetic("none (no playout)")],
        }
    }

    /// What the UI says when a kind of capture device is missing (its
    /// synthetic stand-in is used), `None` when camera and microphone exist.
    pub fn synthetic_note(&self) -> Option<&'static str> {
        let none = |list: &[DeviceEntry]| list.iter().all(|d| d.id == SYNTHETIC_ID);
        match (none(&self.cameras), none(&self.microphones)) {
            (true, true) => Some("no camera or microphone found: synthetic test pattern and tone"),
            (true, false) => Some("no camera found: synthetic test pattern"),
            (false, true) => Some("no microphone found: synthetic tone"),
            (false, false) => None,
        }
    }

    fn has_real(list: &[DeviceEntry], id: &str) -> bool {
        id != SYNTHETIC_ID && list.iter().any(|d| d.id != SYNTHETIC_ID)
    }

    /// Opens camera `id` (lazily, see the module docs); synthetic when it is
    /// the synthetic entry, when no camera exists, or when opening fails.
    pub fn open_camera(&self, id: &str, profile: &VideoProfile) -> Box<dyn VideoSource> {
        let synthetic = SyntheticVideo::new(profile.width, profile.height, profile.frame_rate);
        if Self::has_real(&self.cameras, id) {
            real::camera(id, profile, synthetic)
        } else {
            Box::new(synthetic)
        }
    }

    /// Opens microphone `id` (lazily); synthetic tone as the fallback.
    pub fn open_microphone(&self, id: &str, profile: &AudioProfile) -> Box<dyn AudioSource> {
        let synthetic = SyntheticAudio::new(440.0, profile.sample_rate, profile.channels);
        if Self::has_real(&self.microphones, id) {
            real::microphone(id, synthetic)
        } else {
            Box::new(synthetic)
        }
    }

    /// A playout for one remote stream on speaker `id` (opened on first use).
    pub fn open_playout(&self, id: &str) -> Box<dyn AudioPlayout> {
        if Self::has_real(&self.speakers, id) {
            real::playout(id)
        } else {
            Box::new(NullPlayout)
        }
    }
}

/// Real devices (feature `devices`).
#[cfg(feature = "devices")]
mod real {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};

    use super::{AudioPlayout, DEFAULT_ID, DeviceEntry};
    use crate::media::devices::{self, CameraConfig, CameraSource, MicrophoneSource};
    use crate::media::{
        AudioFrame, AudioSource, I420Frame, MediaError, SyntheticAudio, SyntheticVideo,
        VideoProfile, VideoSource,
    };

    /// Decoded frames queued per remote stream for the shared playout (1 s).
    const PLAYOUT_QUEUE_CAPACITY: usize = 50;

    fn entries(list: Result<Vec<devices::DeviceInfo>, MediaError>) -> Vec<DeviceEntry> {
        list.unwrap_or_default()
            .into_iter()
            .map(|d| DeviceEntry {
                id: d.id,
                label: d.name,
            })
            .collect()
    }

    pub(super) fn list() -> (Vec<DeviceEntry>, Vec<DeviceEntry>, Vec<DeviceEntry>) {
        (
            entries(devices::list_cameras()),
            entries(devices::list_microphones()),
            entries(devices::list_speakers()),
        )
    }

    fn device(id: &str) -> Option<&str> {
        (id != DEFAULT_ID).then_some(id)
    }

    /// Opens the camera on the first frame; the synthetic pattern if it fails.
    struct LazyCamera {
        id: String,
        config: CameraConfig,
        opened: Option<Box<dyn VideoSource>>,
        fallback: Option<SyntheticVideo>,
    }

    impl VideoSource for LazyCamera {
        fn size(&self) -> (u32, u32) {
            (self.config.width, self.config.height)
        }
        fn frame_rate(&self) -> u32 {
            self.config.frame_rate
        }
        fn is_live(&self) -> bool {
            // Asked once, before the first frame: not yet known, so the
            // publisher paces. Pacing at the camera's own rate only sleeps when
            // ahead of schedule, and the synthetic fallback needs it.
            self.opened.as_ref().is_some_and(|s| s.is_live())
        }
        fn next_frame(&mut self) -> Result<Option<I420Frame>, MediaError> {
            if self.opened.is_none() {
                self.opened = Some(match CameraSource::open(device(&self.id), self.config) {
                    Ok(camera) => Box::new(camera),
                    Err(e) => {
                        super::notify(
                            "The camera could not be opened — showing a test picture instead; \
                             pick another camera under Devices.",
                            e.to_string(),
                        );
                        Box::new(self.fallback.take().unwrap_or_else(|| {
                            SyntheticVideo::new(
                                self.config.width,
                                self.config.height,
                                self.config.frame_rate,
                            )
                        }))
                    }
                });
            }
            match self.opened.as_mut() {
                Some(source) => source.next_frame(),
                None => Ok(None),
            }
        }
    }

    pub(super) fn camera(
        id: &str,
        profile: &VideoProfile,
        fallback: SyntheticVideo,
    ) -> Box<dyn VideoSource> {
        Box::new(LazyCamera {
            id: id.to_owned(),
            config: CameraConfig {
                width: profile.width,
                height: profile.height,
                frame_rate: profile.frame_rate,
            },
            opened: None,
            fallback: Some(fallback),
        })
    }

    /// Opens the microphone on the first frame; the synthetic tone if it fails.
    struct LazyMicrophone {
        id: String,
        opened: Option<Box<dyn AudioSource>>,
        fallback: Option<SyntheticAudio>,
    }

    impl AudioSource for LazyMicrophone {
        fn sample_rate(&self) -> u32 {
            48_000
        }
        fn channels(&self) -> u16 {
            1
        }
        fn is_live(&self) -> bool {
            self.opened.as_ref().is_some_and(|s| s.is_live())
        }
        fn next_frame(&mut self) -> Result<Option<AudioFrame>, MediaError> {
            if self.opened.is_none() {
                self.opened = Some(match MicrophoneSource::open(device(&self.id)) {
                    Ok(mic) => Box::new(mic),
                    Err(e) => {
                        super::notify(
                            "The microphone could not be opened — sending a test tone instead; \
                             pick another microphone under Devices.",
                            e.to_string(),
                        );
                        Box::new(
                            self.fallback
                                .take()
                                .unwrap_or_else(|| SyntheticAudio::new(440.0, 48_000, 1)),
                        )
                    }
                });
            }
            match self.opened.as_mut() {
                Some(source) => source.next_frame(),
                None => Ok(None),
            }
        }
    }

    pub(super) fn microphone(id: &str, _profile_fallback: SyntheticAudio) -> Box<dyn AudioSource> {
        // The microphone delivers 48 kHz mono, so the fallback must too: the
        // encoder is set up from `sample_rate`/`channels` before either opens.
        Box::new(LazyMicrophone {
            id: id.to_owned(),
            opened: None,
            fallback: Some(SyntheticAudio::new(440.0, 48_000, 1)),
        })
    }

    /// One mixing playout per speaker, shared by every remote stream.
    type Shared = Mutex<HashMap<String, Option<Arc<devices::AudioPlayout>>>>;

    fn speakers() -> &'static Shared {
        static SPEAKERS: OnceLock<Shared> = OnceLock::new();
        SPEAKERS.get_or_init(Shared::default)
    }

    fn speaker(id: &str) -> Option<Arc<devices::AudioPlayout>> {
        let mut map = speakers().lock().unwrap_or_else(|e| e.into_inner());
        map.entry(id.to_owned())
            .or_insert_with(|| match devices::AudioPlayout::open(device(id)) {
                Ok(p) => Some(Arc::new(p)),
                Err(e) => {
                    super::notify(
                        "No speaker could be opened — you will not hear the others; \
                         pick another speaker under Devices.",
                        e.to_string(),
                    );
                    None
                }
            })
            .clone()
    }

    /// Feeds one remote stream into the shared speaker playout.
    struct DevicePlayout {
        speaker_id: String,
        stream: Option<(
            Arc<devices::AudioPlayout>,
            String,
            crossbeam_channel::Sender<AudioFrame>,
        )>,
        tried: bool,
    }

    impl AudioPlayout for DevicePlayout {
        fn play(&mut self, frame: &AudioFrame, volume: f32) {
            if !self.tried {
                self.tried = true;
                static NEXT: AtomicU64 = AtomicU64::new(1);
                if let Some(playout) = speaker(&self.speaker_id) {
                    let id = format!("remote-{}", NEXT.fetch_add(1, Ordering::Relaxed));
                    let (tx, rx) = crossbeam_channel::bounded(PLAYOUT_QUEUE_CAPACITY);
                    match playout.add_stream(&id, rx) {
                        Ok(()) => self.stream = Some((playout, id, tx)),
                        Err(e) => tracing::warn!("playout: {e}"),
                    }
                }
            }
            if let Some((playout, id, tx)) = &self.stream {
                playout.set_volume(id, volume);
                // Full: the mixer is behind by a second; dropping keeps it live.
                tx.try_send(frame.clone()).ok();
            }
        }
    }

    impl Drop for DevicePlayout {
        fn drop(&mut self) {
            if let Some((playout, id, _)) = self.stream.take() {
                playout.remove_stream(&id).ok(); // the speaker may already be gone
            }
        }
    }

    pub(super) fn playout(id: &str) -> Box<dyn AudioPlayout> {
        Box::new(DevicePlayout {
            speaker_id: id.to_owned(),
            stream: None,
            tried: false,
        })
    }
}

/// Without the `devices` feature only the synthetic sources exist.
#[cfg(not(feature = "devices"))]
mod real {
    use super::{AudioPlayout, DeviceEntry, NullPlayout};
    use crate::media::{AudioSource, SyntheticAudio, SyntheticVideo, VideoProfile, VideoSource};

    pub(super) fn list() -> (Vec<DeviceEntry>, Vec<DeviceEntry>, Vec<DeviceEntry>) {
        (Vec::new(), Vec::new(), Vec::new())
    }
    pub(super) fn camera(
        _: &str,
        _: &VideoProfile,
        fallback: SyntheticVideo,
    ) -> Box<dyn VideoSource> {
        Box::new(fallback)
    }
    pub(super) fn microphone(_: &str, fallback: SyntheticAudio) -> Box<dyn AudioSource> {
        Box::new(fallback)
    }
    pub(super) fn playout(_: &str) -> Box<dyn AudioPlayout> {
        Box::new(NullPlayout)
    }
}

#[cfg(all(test, feature = "devices"))]
mod tests {
    use super::*;

    #[test]
    fn a_microphone_that_cannot_open_falls_back_to_the_tone_and_says_so() {
        let mut mic = real::microphone(
            "pulseaudio:huddle-no-such-source",
            SyntheticAudio::new(440.0, 48_000, 1),
        );
        let frame = mic.next_frame().unwrap().unwrap();
        assert_eq!((frame.sample_rate, frame.channels), (48_000, 1));
        let notices = take_notices();
        assert!(
            notices
                .iter()
                .any(|n| n.text.starts_with("The microphone could not be opened")
                    && n.details.as_deref().is_some_and(|d| !d.is_empty())),
            "{notices:?}"
        );
    }
}
