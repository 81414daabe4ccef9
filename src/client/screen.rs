//! Screen sharing in the SDK (seed 001 `createStream({screen: true})`,
//! `setScreenProfile`, `isScreenShareSupported`).
//!
//! A screen share is a [`LocalStream`] like a camera's, published beside it
//! by the same [`super::Client`] (an *auxiliary* stream of the user: the
//! seed's `getType` "auxiliary"). What differs:
//! * `publish` carries `isScreen: true`; every subscriber's
//!   [`crate::protocol::StreamInfo::is_screen`] says so, as do
//!   `stream-interrupted` / `stream-recovered` (the seed's `UserList.isScreen`).
//!   The server allows one per user (else 90100250).
//! * It is encoded as screen content (OpenH264 `SCREEN_CONTENT_REAL_TIME`,
//!   [`VideoContent::Screen`]) at a Table 3-11 profile ([`ScreenProfile`]):
//!   high resolution, 15 fps. Congestion control lowers the bitrate, then the
//!   frame rate, and only then the size, as for a camera.
//! * It has no audio track. The seed's `bindScreenAudio2RelatedStream`
//!   sends the screen's background sound through the *camera* stream's
//!   audio: [`super::Client::bind_screen_audio`] (`screen_audio.rs`) does,
//!   from a capture device the user chooses, mixed in the camera stream's
//!   mixing stage ([`crate::media::mixing`]) with the microphone or instead
//!   of it. Not "the system's sound": the monitor of the speakers would send
//!   every remote participant's voice back to them (echo), so the source is
//!   meant to be a sink that does not carry the call (a PulseAudio null sink
//!   the shared application plays into, its `.monitor` captured).

use crate::media::{AudioProfile, ScreenProfile, VideoContent, VideoSource};

use super::stream::LocalStream;

/// The encoder content type of a stream (camera or screen).
pub(super) const fn content(is_screen: bool) -> VideoContent {
    if is_screen {
        VideoContent::Screen
    } else {
        VideoContent::Camera
    }
}

impl LocalStream {
    /// A presentation stream (seed `createStream({screen: true})`) of a
    /// screen or window `source` (e.g. `media::devices::ScreenSource`) at
    /// `profile` (seed `setScreenProfile`: the source was opened at it;
    /// [`ScreenProfile::default`] is the seed's `720p`). Video only.
    pub fn screen(source: Box<dyn VideoSource>, profile: ScreenProfile) -> Self {
        let mut stream = Self::new(
            Some(source),
            None,
            profile.video_profile(),
            AudioProfile::default(),
        );
        stream.is_screen = true;
        stream
    }

    /// Whether this is a presentation stream ([`LocalStream::screen`]).
    pub fn is_screen(&self) -> bool {
        self.is_screen
    }
}

/// Opening screen captures (feature `devices`): what the seed's
/// `HRTC.isScreenShareSupported` and `createStream({screen: true})` do.
#[cfg(feature = "devices")]
mod capture {
    use crate::media::MediaError;
    use crate::media::devices::{ScreenCaptureConfig, ScreenSource};

    use super::LocalStream;

    /// Whether screen sharing works on this machine (seed
    /// `isScreenShareSupported`): the X display `display` (or the one
    /// `DISPLAY` names, for `None`) answers with readable pixels.
    #[must_use]
    pub fn is_screen_share_supported(display: Option<&str>) -> bool {
        crate::media::devices::is_screen_share_supported(display)
    }

    impl LocalStream {
        /// Opens the screen or window of `config` and makes a presentation
        /// stream of it at `config.profile`.
        ///
        /// # Errors
        /// [`MediaError::seed_code`] says why: 90100024 without a display,
        /// 90100019 for a window or screen that is not there.
        pub fn open_screen(config: &ScreenCaptureConfig) -> Result<Self, MediaError> {
            let source = ScreenSource::open(config)?;
            Ok(Self::screen(Box::new(source), config.profile))
        }
    }
}

#[cfg(feature = "devices")]
pub use capture::is_screen_share_supported;
