//! [`ScreenSource`]: a screen or one window of an X11 display as a live
//! [`VideoSource`] (seed `createStream({screen: true})`,
//! `isScreenShareSupported`).
//!
//! ```text
//!  huddle-screen thread (owns the X connection), every 1/frame_rate s:
//!     GetImage of the area → scale to the sent size + I420 (one pass)
//!     → bounded(SCREEN_FRAME_CAPACITY; full: oldest dropped) → next_frame (blocks)
//! ```
//!
//! Invariants: the sent size is fixed when the capture opens (the area
//! fitted into the [`ScreenProfile`], aspect kept, never scaled up); a
//! window resized later is scaled into it. The thread paces itself against a
//! monotonic clock, so `is_live()` is true and the publisher does not pace
//! again. A window that goes away ends the source (`Ok(None)`): the stream
//! stops sending pictures, and the SDK unpublishes it and emits
//! `RoomEvent::ScreenSharingStopped` (the seed's `screen-sharing-stopped`).
//! No display is [`MissingDevice::Display`] (90100024), an unknown window or
//! screen [`MissingDevice::NotFound`] (90100019); nothing here panics.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use super::x11::{Area, ScreenInfo, WindowInfo, X11Display};
use crate::media::source::VideoSource;
use crate::media::{I420Frame, MediaError, Result, ScreenProfile};

/// Captured frames queued between the capture thread and `next_frame`.
/// Capture → publisher; when full the oldest is dropped (latency over completeness).
pub const SCREEN_FRAME_CAPACITY: usize = 2;

/// How long `next_frame` waits for the capture thread before it repeats the
/// last picture (an X server that stalls must not stall publishing).
pub const SCREEN_STALL: Duration = Duration::from_secs(1);

/// What to share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureTarget {
    /// A whole monitor, by its index in [`list_screens`] (0: the primary).
    Screen(u32),
    /// One top-level window, by its X id (see [`list_windows`]).
    Window(u32),
}

impl std::str::FromStr for CaptureTarget {
    type Err = MediaError;

    /// `screen`, `screen:N`, or `window:ID` (decimal or `0x` hex, as
    /// `xwininfo` prints it).
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            MediaError::InvalidParameter(format!(
                "{s:?} is not a capture target (screen, screen:N, window:ID)"
            ))
        };
        let number = |n: &str| -> Result<u32> {
            match n.strip_prefix("0x").or_else(|| n.strip_prefix("0X")) {
                Some(hex) => u32::from_str_radix(hex, 16).map_err(|_| bad()),
                None => n.parse().map_err(|_| bad()),
            }
        };
        match s.split_once(':') {
            None if s == "screen" => Ok(Self::Screen(0)),
            Some(("screen", n)) => Ok(Self::Screen(number(n)?)),
            Some(("window", n)) => Ok(Self::Window(number(n)?)),
            _ => Err(bad()),
        }
    }
}

/// What a [`ScreenSource`] captures and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScreenCaptureConfig {
    /// The X display (`":0"`); `None` is the one `DISPLAY` names, the X
    /// convention every X client follows.
    pub display: Option<String>,
    /// The screen or window.
    pub target: CaptureTarget,
    /// Largest size, frame rate and bitrate (seed Table 3-11).
    pub profile: ScreenProfile,
}

impl ScreenCaptureConfig {
    /// Sets the profile by its Table 3-11 name (seed `setScreenProfile`);
    /// call it before opening the capture.
    ///
    /// # Errors
    /// An unknown name is [`MediaError::InvalidParameter`] (90000005) and
    /// the profile stays as it was. (The seed falls back to `720p` silently;
    /// huddle says so instead.)
    pub fn set_screen_profile(&mut self, name: &str) -> Result<()> {
        let profile = ScreenProfile::by_name(name).ok_or_else(|| {
            MediaError::InvalidParameter(format!(
                "screen profile {name:?} is not one of 720p, 1080p"
            ))
        })?;
        self.profile = *profile;
        Ok(())
    }
}

/// Whether screen sharing works here (seed `isScreenShareSupported`): an X
/// display answers and its pixels are readable. Connects, so it takes a
/// moment when the display hangs; call it off UI threads.
#[must_use]
pub fn is_screen_share_supported(display: Option<&str>) -> bool {
    X11Display::connect(display).is_ok()
}

/// The display's monitors, primary first (for a "Share screen" picker).
///
/// # Errors
/// As [`X11Display::connect`]: no display is 90100024.
pub fn list_screens(display: Option<&str>) -> Result<Vec<ScreenInfo>> {
    X11Display::connect(display)?.screens()
}

/// The display's top-level windows with a title, by id.
///
/// # Errors
/// As [`list_screens`].
pub fn list_windows(display: Option<&str>) -> Result<Vec<WindowInfo>> {
    X11Display::connect(display)?.windows()
}

/// Tells whether a [`ScreenSource`] has ended (its window closed or the
/// display went away): the seed's `screen-sharing-stopped`. Cheap to clone;
/// outlives the source (from [`ScreenSource::ended_flag`]).
#[derive(Clone, Debug, Default)]
pub struct CaptureEnded(Arc<AtomicBool>);

impl CaptureEnded {
    /// Whether the capture has ended for good.
    #[must_use]
    pub fn is_ended(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// A live screen or window capture; each `next_frame` blocks until the next
/// picture (at the profile's frame rate).
pub struct ScreenSource {
    rx: Receiver<Result<I420Frame>>,
    ended_flag: CaptureEnded,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    size: (u32, u32),
    frame_rate: u32,
    last: Option<I420Frame>,
    ended: bool,
}

impl ScreenSource {
    /// Connects to the display, checks the target and starts capturing.
    ///
    /// # Errors
    /// [`MediaError::DeviceUnavailable`]: [`crate::media::MissingDevice::Display`]
    /// without a display (90100024), [`crate::media::MissingDevice::NotFound`]
    /// for a window or screen that is not there (90100019);
    /// [`MediaError::Device`] when the display's pixels cannot be read or the
    /// thread cannot start.
    pub fn open(config: &ScreenCaptureConfig) -> Result<Self> {
        let display = X11Display::connect(config.display.as_deref())?;
        let area = match config.target {
            CaptureTarget::Screen(index) => display.screen_area(index)?,
            CaptureTarget::Window(id) => display.window_area(id)?,
        };
        let size = config
            .profile
            .fit(u32::from(area.width), u32::from(area.height));
        let frame_rate = config.profile.frame_rate.max(1);
        // The first picture now, so a display that cannot be read fails the
        // open rather than the stream.
        let mut first = I420Frame::new_black(size.0, size.1);
        display.grab(area, &mut first)?;
        let (tx, rx) = crossbeam_channel::bounded(SCREEN_FRAME_CAPACITY);
        tx.try_send(Ok(first)).ok(); // empty channel: cannot be full
        let stop = Arc::new(AtomicBool::new(false));
        let ended_flag = CaptureEnded::default();
        let thread = {
            let (stop, drop_rx) = (Arc::clone(&stop), rx.clone());
            let ended = ended_flag.clone();
            let interval = Duration::from_secs_f64(1.0 / f64::from(frame_rate));
            std::thread::Builder::new()
                .name("huddle-screen".into())
                .spawn(move || {
                    capture_thread(&display, area, size, interval, &tx, &drop_rx, &stop);
                    if !stop.load(Ordering::Acquire) {
                        ended.0.store(true, Ordering::Release); // not stopped: it ended
                    }
                })
                .map_err(|e| MediaError::Device(format!("cannot start the screen thread: {e}")))?
        };
        Ok(Self {
            rx,
            ended_flag,
            stop,
            thread: Some(thread),
            size,
            frame_rate,
            last: None,
            ended: false,
        })
    }
}

impl ScreenSource {
    /// A handle that says when this capture ends by itself (the window was
    /// closed): the application stops the share then.
    #[must_use]
    pub fn ended_flag(&self) -> CaptureEnded {
        self.ended_flag.clone()
    }
}

impl VideoSource for ScreenSource {
    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn frame_rate(&self) -> u32 {
        self.frame_rate
    }

    fn is_live(&self) -> bool {
        true
    }

    fn next_frame(&mut self) -> Result<Option<I420Frame>> {
        if self.ended {
            return Ok(None);
        }
        match self.rx.recv_timeout(SCREEN_STALL) {
            Ok(Ok(frame)) => {
                self.last = Some(frame.clone());
                Ok(Some(frame))
            }
            Ok(Err(e)) => {
                tracing::info!("screen capture ended: {e}");
                self.end();
                Ok(None)
            }
            Err(RecvTimeoutError::Timeout) => {
                Ok(Some(self.last.clone().unwrap_or_else(|| {
                    I420Frame::new_black(self.size.0, self.size.1)
                })))
            }
            Err(RecvTimeoutError::Disconnected) => {
                self.end();
                Ok(None)
            }
        }
    }
}

impl ScreenSource {
    /// The capture thread said it ended: the flag is set here too, before
    /// `next_frame` reports the end, so whoever sees the end sees the flag
    /// (the thread sets it only after its last send). Not when the owner
    /// stopped it.
    fn end(&mut self) {
        self.ended = true;
        if !self.stop.load(Ordering::Acquire) {
            self.ended_flag.0.store(true, Ordering::Release);
        }
    }
}

impl Drop for ScreenSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            // Ends within one frame interval (plus one GetImage).
            thread.join().ok();
        }
    }
}

fn capture_thread(
    display: &X11Display,
    mut area: Area,
    size: (u32, u32),
    interval: Duration,
    tx: &Sender<Result<I420Frame>>,
    drop_rx: &Receiver<Result<I420Frame>>,
    stop: &AtomicBool,
) {
    let start = Instant::now();
    let mut n: u32 = 1; // the first picture was taken by `open`
    while !stop.load(Ordering::Acquire) {
        let deadline = start + interval * n;
        n = n.wrapping_add(1);
        let now = Instant::now();
        if deadline > now {
            std::thread::sleep(deadline - now);
        }
        if stop.load(Ordering::Acquire) {
            break;
        }
        let grabbed = match display.refresh(area) {
            Some(current) => {
                area = current;
                let mut frame = I420Frame::new_black(size.0, size.1);
                display.grab(area, &mut frame).map(|()| frame)
            }
            None => Err(MediaError::DeviceUnavailable {
                kind: crate::media::MissingDevice::NotFound,
                detail: format!("window 0x{:x} is gone", area.drawable),
            }),
        };
        let failed = grabbed.is_err();
        match tx.try_send(grabbed) {
            Ok(()) => {}
            Err(TrySendError::Full(item)) => {
                drop_rx.try_recv().ok(); // drop the oldest
                tx.try_send(item).ok(); // a racing consumer made room: either way fine
            }
            Err(TrySendError::Disconnected(_)) => break,
        }
        if failed {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(
            "screen".parse::<CaptureTarget>().ok(),
            Some(CaptureTarget::Screen(0))
        );
        assert_eq!(
            "screen:1".parse::<CaptureTarget>().ok(),
            Some(CaptureTarget::Screen(1))
        );
        assert_eq!(
            "window:0x1a00007".parse::<CaptureTarget>().ok(),
            Some(CaptureTarget::Window(0x1a0_0007))
        );
        assert_eq!(
            "window:42".parse::<CaptureTarget>().ok(),
            Some(CaptureTarget::Window(42))
        );
        for bad in [
            "",
            "window",
            "window:",
            "window:zz",
            "camera:1",
            "screen:-1",
        ] {
            let e = bad.parse::<CaptureTarget>().expect_err(bad);
            assert_eq!(e.seed_code(), 90_000_005);
        }
    }

    #[test]
    fn no_display_is_a_numbered_error() {
        // A display number out of range (x11rb would overflow on it) is
        // refused before connecting.
        assert!(!is_screen_share_supported(Some(":70000")));
        assert!(!is_screen_share_supported(Some(":59536.0")));
        // A display number nobody serves (no socket): refused at once.
        let display = Some(":59531");
        assert!(!is_screen_share_supported(display));
        let config = ScreenCaptureConfig {
            display: display.map(str::to_owned),
            target: CaptureTarget::Screen(0),
            profile: ScreenProfile::default(),
        };
        let Err(e) = ScreenSource::open(&config) else {
            panic!("opened a display that does not exist");
        };
        assert_eq!(e.seed_code(), 90_100_024, "{e}");
        let e = list_windows(display).expect_err("no display");
        assert_eq!(e.seed_code(), 90_100_024);
    }
}
