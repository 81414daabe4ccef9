//! [`CameraSource`]: a nokhwa (V4L on Linux) camera as a live [`VideoSource`].
//!
//! ```text
//!  huddle-camera thread (owns the camera): frame() blocks on the device
//!     → YUYV/NV12/grey direct, MJPEG/RGB via RGB → I420 → scale to the asked size
//!     → bounded(CAMERA_FRAME_CAPACITY; full: oldest dropped) → next_frame (blocks)
//! ```
//!
//! Invariants: frames always have the size asked for (the camera's nearest
//! mode is scaled); a camera that stops delivering for [`CAMERA_STALL`] makes
//! `next_frame` repeat the last picture rather than stall publishing; no
//! camera at all is [`MediaError::DeviceUnavailable`] (seed 90100004) and an
//! unknown id is `NotFound` (90100019), so callers fall back to the synthetic
//! source. The thread ends when the source is dropped (within one frame).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraIndex, CameraInfo, FrameFormat, RequestedFormat,
    RequestedFormatType, Resolution,
};

use super::convert::{RgbOrder, gray_to_i420, nv12_to_i420, rgb_to_i420, scale_i420, yuyv_to_i420};
use crate::media::source::VideoSource;
use crate::media::{I420Frame, MediaError, MissingDevice, Result};

/// Converted frames queued between the capture thread and `next_frame`.
/// Capture → publisher; when full the oldest is dropped (latency over completeness).
pub const CAMERA_FRAME_CAPACITY: usize = 2;
/// How long `next_frame` waits for the camera before repeating the last frame.
pub const CAMERA_STALL: Duration = Duration::from_secs(1);
/// How long `open` waits for the camera to start streaming.
const CAMERA_OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Pixel formats tried, in order, for the asked mode (cheap conversions first).
const PREFERRED_FORMATS: [FrameFormat; 3] =
    [FrameFormat::YUYV, FrameFormat::NV12, FrameFormat::MJPEG];
/// Formats this module converts.
const DECODABLE: &[FrameFormat] = &[
    FrameFormat::YUYV,
    FrameFormat::NV12,
    FrameFormat::MJPEG,
    FrameFormat::GRAY,
    FrameFormat::RAWRGB,
    FrameFormat::RAWBGR,
];

/// What to capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CameraConfig {
    /// Width of produced frames (the camera's nearest mode is scaled to it).
    pub width: u32,
    /// Height of produced frames.
    pub height: u32,
    /// Frames per second asked of the camera.
    pub frame_rate: u32,
}

/// A live camera; each `next_frame` blocks until the camera delivers.
pub struct CameraSource {
    rx: Receiver<Result<I420Frame>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    config: CameraConfig,
    last: Option<I420Frame>,
    name: String,
}

/// Cameras the backend sees (V4L on Linux).
pub(crate) fn query_cameras() -> Result<Vec<CameraInfo>> {
    nokhwa::query(ApiBackend::Auto).map_err(|e| MediaError::Device(format!("listing cameras: {e}")))
}

impl CameraSource {
    /// Opens the first camera for `None`, else the one with that id or name
    /// (see [`super::list_cameras`]), and starts streaming at about `config`.
    ///
    /// Blocks while the camera starts: call it off UI threads.
    ///
    /// # Errors
    /// [`MediaError::DeviceUnavailable`] with [`MissingDevice::VideoInput`]
    /// when there is no camera, [`MissingDevice::NotFound`] for an unknown id;
    /// [`MediaError::Device`] when the camera cannot be opened;
    /// [`MediaError::InvalidDimensions`] for a zero size or frame rate.
    pub fn open(device: Option<&str>, config: CameraConfig) -> Result<Self> {
        if config.width == 0 || config.height == 0 || config.frame_rate == 0 {
            return Err(MediaError::InvalidDimensions {
                width: config.width,
                height: config.height,
                reason: "camera size and frame rate must be non-zero",
            });
        }
        let cameras = query_cameras()?;
        let info = match device {
            None => cameras.first(),
            Some(wanted) => cameras
                .iter()
                .find(|c| c.index().as_string() == wanted || c.human_name() == wanted),
        };
        let Some(info) = info.cloned() else {
            return Err(match device {
                _ if cameras.is_empty() => MediaError::DeviceUnavailable {
                    kind: MissingDevice::VideoInput,
                    detail: "the camera backend found none".into(),
                },
                Some(wanted) => MediaError::DeviceUnavailable {
                    kind: MissingDevice::NotFound,
                    detail: format!("no camera {wanted:?} among {}", cameras.len()),
                },
                None => MediaError::DeviceUnavailable {
                    kind: MissingDevice::VideoInput,
                    detail: "no camera".into(),
                },
            });
        };
        let (tx, rx) = crossbeam_channel::bounded(CAMERA_FRAME_CAPACITY);
        let (opened_tx, opened_rx) = crossbeam_channel::bounded::<Result<()>>(1);
        let stop = Arc::new(AtomicBool::new(false));
        let index = info.index().clone();
        let thread = {
            let (stop, drop_rx) = (Arc::clone(&stop), rx.clone());
            std::thread::Builder::new()
                .name("huddle-camera".into())
                .spawn(move || capture_thread(index, config, &tx, &drop_rx, &opened_tx, &stop))
                .map_err(|e| MediaError::Device(format!("cannot start the camera thread: {e}")))?
        };
        let mut source = Self {
            rx,
            stop,
            thread: Some(thread),
            config,
            last: None,
            name: info.human_name(),
        };
        match opened_rx.recv_timeout(CAMERA_OPEN_TIMEOUT) {
            Ok(Ok(())) => Ok(source),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                // The thread is stuck in the device; detach it rather than
                // block here joining it (it ends once the device answers).
                source.stop.store(true, Ordering::Release);
                source.thread.take();
                Err(MediaError::Device("camera did not start in time".into()))
            }
        }
    }

    /// The camera's display name.
    #[must_use]
    pub fn device_name(&self) -> &str {
        &self.name
    }
}

impl VideoSource for CameraSource {
    fn size(&self) -> (u32, u32) {
        (self.config.width, self.config.height)
    }

    fn frame_rate(&self) -> u32 {
        self.config.frame_rate
    }

    fn is_live(&self) -> bool {
        true
    }

    fn next_frame(&mut self) -> Result<Option<I420Frame>> {
        match self.rx.recv_timeout(CAMERA_STALL) {
            Ok(Ok(frame)) => {
                self.last = Some(frame.clone());
                Ok(Some(frame))
            }
            Ok(Err(e)) => Err(e),
            Err(RecvTimeoutError::Timeout) => {
                tracing::debug!("camera stalled; repeating the last frame");
                Ok(Some(self.last.clone().unwrap_or_else(|| {
                    I420Frame::new_black(self.config.width, self.config.height)
                })))
            }
            Err(RecvTimeoutError::Disconnected) => {
                Err(MediaError::Device("camera capture ended".into()))
            }
        }
    }
}

impl Drop for CameraSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            // Ends after the frame it is waiting for (one frame interval).
            thread.join().ok();
        }
    }
}

fn open_camera(index: &CameraIndex, config: CameraConfig) -> Result<nokhwa::Camera> {
    let resolution = Resolution::new(config.width, config.height);
    let mut last_error = String::new();
    for format in PREFERRED_FORMATS {
        let wanted = CameraFormat::new(resolution, format, config.frame_rate);
        let request =
            RequestedFormat::with_formats(RequestedFormatType::Closest(wanted), DECODABLE);
        match nokhwa::Camera::new(index.clone(), request) {
            Ok(camera) => return Ok(camera),
            Err(e) => last_error = e.to_string(),
        }
    }
    // No mode near the asked one in a preferred format: take any it has.
    let request = RequestedFormat::with_formats(
        RequestedFormatType::HighestFrameRate(config.frame_rate),
        DECODABLE,
    );
    nokhwa::Camera::new(index.clone(), request).map_err(|e| {
        MediaError::Device(format!(
            "opening camera {index}: {e} (before: {last_error})"
        ))
    })
}

fn capture_thread(
    index: CameraIndex,
    config: CameraConfig,
    tx: &Sender<Result<I420Frame>>,
    drop_rx: &Receiver<Result<I420Frame>>,
    opened: &Sender<Result<()>>,
    stop: &AtomicBool,
) {
    let mut camera = match open_camera(&index, config).and_then(|mut c| {
        c.open_stream()
            .map_err(|e| MediaError::Device(format!("starting camera {index}: {e}")))?;
        Ok(c)
    }) {
        Ok(c) => c,
        Err(e) => {
            opened.send(Err(e)).ok(); // open() gave up waiting: nobody to tell
            return;
        }
    };
    opened.send(Ok(())).ok();
    let mut native = I420Frame::new_black(config.width, config.height);
    let mut rgb = Vec::new();
    while !stop.load(Ordering::Acquire) {
        let converted = camera
            .frame()
            .map_err(|e| MediaError::Device(format!("camera frame: {e}")))
            .and_then(|buffer| convert_buffer(&buffer, &mut rgb, &mut native))
            .map(|()| {
                let mut out = I420Frame::new_black(config.width, config.height);
                scale_i420(&native, &mut out);
                out
            });
        let failed = converted.is_err();
        match tx.try_send(converted) {
            Ok(()) => {}
            Err(TrySendError::Full(item)) => {
                drop_rx.try_recv().ok(); // drop the oldest
                tx.try_send(item).ok(); // racing consumer made room: either way fine
            }
            Err(TrySendError::Disconnected(_)) => break,
        }
        if failed {
            break;
        }
    }
    camera.stop_stream().ok(); // closing anyway
}

/// Converts one camera buffer into `out` (at the camera's size).
fn convert_buffer(buffer: &nokhwa::Buffer, rgb: &mut Vec<u8>, out: &mut I420Frame) -> Result<()> {
    let res = buffer.resolution();
    let (w, h) = (res.width(), res.height());
    let data = buffer.buffer();
    match buffer.source_frame_format() {
        FrameFormat::YUYV => yuyv_to_i420(data, w, h, out),
        FrameFormat::NV12 => nv12_to_i420(data, w, h, out),
        FrameFormat::GRAY => gray_to_i420(data, w, h, out),
        FrameFormat::RAWRGB => rgb_to_i420(data, w, h, w as usize * 3, RgbOrder::Rgb, out),
        FrameFormat::RAWBGR => rgb_to_i420(data, w, h, w as usize * 3, RgbOrder::Bgr, out),
        FrameFormat::MJPEG => {
            rgb.resize(w as usize * h as usize * 3, 0);
            buffer
                .decode_image_to_buffer::<RgbFormat>(rgb)
                .map_err(|e| MediaError::Device(format!("MJPEG decode: {e}")))?;
            rgb_to_i420(rgb, w, h, w as usize * 3, RgbOrder::Rgb, out)
        }
    }
}
