//! The lobby's live preview: the picked camera's picture and the picked
//! microphone's level, before joining.
//!
//! Two preview threads read the sources (the UI thread never touches a
//! device). Joining does not open the devices a second time: the lobby hands
//! the preview over ([`DevicePreview::hand_over`]), the threads stop and pass
//! their open sources on, and the publisher's media threads continue reading
//! them. That matters for cameras, which most drivers let only one reader open.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use crossbeam_channel::Receiver;

use crate::client::VideoSlot;
use crate::media::{
    AudioFrame, AudioProfile, AudioSource, I420Frame, MediaError, SwitchableAudio, SwitchableVideo,
    SyntheticAudio, SyntheticVideo, VideoProfile, VideoSource, rms_level,
};

use super::devices::DeviceCatalog;

/// How long a publisher waits for the preview to pass a source on.
const HANDOVER_WAIT: Duration = Duration::from_secs(2);

/// Level of the latest 20 ms of a microphone, shared with the UI.
#[derive(Debug, Default)]
pub struct LevelMeter(AtomicU32);

impl LevelMeter {
    /// RMS of the latest frame, 0..=1 of full scale.
    pub fn level(&self) -> f32 {
        f32::from_bits(self.0.load(Ordering::Relaxed))
    }

    fn set(&self, level: f32) {
        self.0.store(level.to_bits(), Ordering::Relaxed);
    }

    /// The level as a meter fraction 0..=1: -60 dBFS → 0, 0 dBFS → 1.
    pub fn fraction(&self) -> f32 {
        let level = self.level();
        if level <= 0.0 {
            return 0.0;
        }
        ((20.0 * level.log10() + 60.0) / 60.0).clamp(0.0, 1.0)
    }
}

/// An audio source that keeps a [`LevelMeter`] up to date.
pub struct MeteredAudio {
    inner: Box<dyn AudioSource>,
    meter: Arc<LevelMeter>,
}

impl MeteredAudio {
    /// Wraps `inner`.
    pub fn new(inner: Box<dyn AudioSource>, meter: Arc<LevelMeter>) -> Self {
        Self { inner, meter }
    }
}

impl AudioSource for MeteredAudio {
    fn sample_rate(&self) -> u32 {
        self.inner.sample_rate()
    }
    fn channels(&self) -> u16 {
        self.inner.channels()
    }
    fn is_live(&self) -> bool {
        self.inner.is_live()
    }
    fn next_frame(&mut self) -> Result<Option<AudioFrame>, MediaError> {
        let frame = self.inner.next_frame()?;
        self.meter
            .set(frame.as_ref().map_or(0.0, |f| rms_level(&f.samples)));
        Ok(frame)
    }
}

/// The running preview of one camera and one microphone.
pub struct DevicePreview {
    camera_id: String,
    microphone_id: String,
    /// The camera's picture.
    pub slot: Arc<VideoSlot>,
    /// The microphone's level.
    pub meter: Arc<LevelMeter>,
    stop: Arc<AtomicBool>,
    video_back: Receiver<Box<dyn VideoSource>>,
    audio_back: Receiver<Box<dyn AudioSource>>,
    video_profile: VideoProfile,
    /// The microphone's `(sample rate, channels)`, known before it opens.
    audio_shape: (u32, u16),
}

impl DevicePreview {
    /// Opens (lazily, on the preview threads) camera and microphone `ids` at
    /// the profiles the publisher will use; `repaint` is called per picture.
    pub fn start(
        devices: &DeviceCatalog,
        camera_id: &str,
        microphone_id: &str,
        video_profile: VideoProfile,
        audio_profile: AudioProfile,
        repaint: impl Fn() + Send + 'static,
    ) -> std::io::Result<Self> {
        let slot = Arc::new(VideoSlot::default());
        slot.set_on_frame(repaint);
        let meter = Arc::new(LevelMeter::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (video_tx, video_back) = crossbeam_channel::bounded::<Box<dyn VideoSource>>(1);
        let (audio_tx, audio_back) = crossbeam_channel::bounded::<Box<dyn AudioSource>>(1);

        // The switchable wrappers pace generators, so the loops just read.
        let (mut camera, _) = SwitchableVideo::new(devices.open_camera(camera_id, &video_profile));
        let (thread_slot, thread_stop) = (Arc::clone(&slot), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("huddle-preview-video".into())
            .spawn(move || {
                while !thread_stop.load(Ordering::Acquire) {
                    match camera.next_frame() {
                        Ok(Some(frame)) => thread_slot.store(frame),
                        Ok(None) => return,
                        Err(e) => {
                            tracing::warn!("camera preview: {e}");
                            return;
                        }
                    }
                }
                video_tx.send(Box::new(camera)).ok(); // a dropped preview wants nothing back
            })?;

        let (mut mic, _) =
            SwitchableAudio::new(devices.open_microphone(microphone_id, &audio_profile));
        let audio_shape = (mic.sample_rate(), mic.channels());
        let (thread_meter, thread_stop) = (Arc::clone(&meter), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("huddle-preview-audio".into())
            .spawn(move || {
                while !thread_stop.load(Ordering::Acquire) {
                    match mic.next_frame() {
                        Ok(Some(frame)) => thread_meter.set(rms_level(&frame.samples)),
                        Ok(None) => return,
                        Err(e) => {
                            tracing::warn!("microphone preview: {e}");
                            return;
                        }
                    }
                }
                thread_meter.set(0.0);
                audio_tx.send(Box::new(mic)).ok();
            })?;

        Ok(Self {
            camera_id: camera_id.to_owned(),
            microphone_id: microphone_id.to_owned(),
            slot,
            meter,
            stop,
            video_back,
            audio_back,
            video_profile,
            audio_shape,
        })
    }

    /// Whether this preview shows these devices.
    pub fn shows(&self, camera_id: &str, microphone_id: &str) -> bool {
        self.camera_id == camera_id && self.microphone_id == microphone_id
    }

    /// Stops previewing and returns sources that continue with the preview's
    /// open devices (they arrive on the reader's thread within a frame; the
    /// synthetic source stands in if they do not come).
    pub fn hand_over(self) -> (Box<dyn VideoSource>, Box<dyn AudioSource>) {
        self.stop.store(true, Ordering::Release);
        let video_profile = self.video_profile;
        (
            Box::new(HandedVideo {
                rx: self.video_back.clone(),
                inner: None,
                profile: video_profile,
            }),
            Box::new(HandedAudio {
                rx: self.audio_back.clone(),
                inner: None,
                shape: self.audio_shape,
            }),
        )
    }
}

impl Drop for DevicePreview {
    fn drop(&mut self) {
        // The threads see it within a frame and close their devices.
        self.stop.store(true, Ordering::Release);
    }
}

/// The preview's camera, continued by the publisher.
struct HandedVideo {
    rx: Receiver<Box<dyn VideoSource>>,
    inner: Option<Box<dyn VideoSource>>,
    profile: VideoProfile,
}

impl VideoSource for HandedVideo {
    fn size(&self) -> (u32, u32) {
        (self.profile.width, self.profile.height)
    }
    fn frame_rate(&self) -> u32 {
        self.profile.frame_rate
    }
    fn is_live(&self) -> bool {
        true // the preview's wrapper paces
    }
    fn next_frame(&mut self) -> Result<Option<I420Frame>, MediaError> {
        let profile = self.profile;
        let inner = self.inner.get_or_insert_with(|| {
            self.rx.recv_timeout(HANDOVER_WAIT).unwrap_or_else(|_| {
                tracing::warn!("the camera preview did not hand over; synthetic pattern");
                Box::new(
                    SwitchableVideo::new(Box::new(SyntheticVideo::new(
                        profile.width,
                        profile.height,
                        profile.frame_rate,
                    )))
                    .0,
                )
            })
        });
        inner.next_frame()
    }
}

/// The preview's microphone, continued by the publisher.
struct HandedAudio {
    rx: Receiver<Box<dyn AudioSource>>,
    inner: Option<Box<dyn AudioSource>>,
    shape: (u32, u16),
}

impl AudioSource for HandedAudio {
    fn sample_rate(&self) -> u32 {
        self.shape.0
    }
    fn channels(&self) -> u16 {
        self.shape.1
    }
    fn is_live(&self) -> bool {
        true
    }
    fn next_frame(&mut self) -> Result<Option<AudioFrame>, MediaError> {
        let (rate, channels) = self.shape;
        let inner = self.inner.get_or_insert_with(|| {
            self.rx.recv_timeout(HANDOVER_WAIT).unwrap_or_else(|_| {
                tracing::warn!("the microphone preview did not hand over; synthetic tone");
                Box::new(
                    SwitchableAudio::new(Box::new(SyntheticAudio::new(440.0, rate, channels))).0,
                )
            })
        });
        inner.next_frame()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::read_stamp;
    use crate::ui::devices::SYNTHETIC_ID;
    use std::time::Instant;

    fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
        let start = Instant::now();
        while !f() {
            assert!(start.elapsed() < Duration::from_secs(10), "never: {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn the_preview_shows_the_devices_and_hands_the_same_ones_over() {
        let video = *VideoProfile::by_name("180p_1").unwrap();
        let preview = DevicePreview::start(
            &DeviceCatalog::synthetic(),
            SYNTHETIC_ID,
            SYNTHETIC_ID,
            video,
            AudioProfile::default(),
            || {},
        )
        .unwrap();
        assert!(preview.shows(SYNTHETIC_ID, SYNTHETIC_ID));
        assert!(!preview.shows("default", SYNTHETIC_ID));
        wait_until("a picture and a level", || {
            preview.slot.generation() >= 3 && preview.meter.fraction() > 0.5
        });
        let seen = preview
            .slot
            .latest()
            .and_then(|f| read_stamp(&f))
            .unwrap()
            .frame_no;
        let (mut camera, mut mic) = preview.hand_over();
        assert_eq!(camera.size(), (video.width, video.height));
        // The same pattern continues (a newly opened one would restart at 0).
        let next = read_stamp(&camera.next_frame().unwrap().unwrap())
            .unwrap()
            .frame_no;
        assert!(
            next > seen,
            "handed-over camera restarted: {next} after {seen}"
        );
        let frame = mic.next_frame().unwrap().unwrap();
        assert_eq!(
            (mic.sample_rate(), mic.channels()),
            (frame.sample_rate, frame.channels)
        );
    }

    #[test]
    fn the_meter_reads_in_dbfs() {
        let m = LevelMeter::default();
        assert_eq!(m.fraction(), 0.0);
        m.set(1.0);
        assert!((m.fraction() - 1.0).abs() < 1e-6);
        m.set(0.001); // -60 dBFS
        assert!(m.fraction().abs() < 1e-3);
        m.set(0.0316); // about -30 dBFS
        assert!((m.fraction() - 0.5).abs() < 0.01);
    }
}
