//! `bindScreenAudio2RelatedStream` (seed 001 §3.5.5): a screen share's
//! background audio goes out through the audio of the same user's camera
//! stream (a screen share has no audio track of its own).
//!
//! The screen audio is a capture device the user chooses, not "the system's
//! sound": on Linux a PulseAudio monitor (`pulseaudio:SINK.monitor`) of a
//! sink that does NOT carry the call, e.g. a null sink the shared
//! application plays into. The monitor of the speakers would send every
//! remote participant's voice back to them (echo); huddle cannot take them
//! out of it, so it does not offer that. It is mixed in the camera stream's
//! mixing stage ([`crate::media::mixing`], the one that mixes audio files),
//! with the microphone or instead of it (`mute_main_stream_audio`).
//!
//! Refusals change nothing and are numbered: the screen stream is not a
//! published screen share of this client (90100001), the bind stream is not
//! published by it (90100001), has no audio or is itself a screen share
//! (90000005); the device is missing (90100019) or cannot be opened
//! (90100020) ([`ClientError::Device`]).

use super::{Client, ClientError, ClientResult, RoomCommand};
use crate::media::{AudioMixing, AudioSource};
use crate::protocol::StreamId;

/// A binding as the actor gets it.
pub(crate) struct ScreenAudioBinding {
    pub(crate) screen: StreamId,
    pub(crate) bind: StreamId,
    pub(crate) source: Box<dyn AudioSource>,
    pub(crate) mute_main_stream_audio: bool,
}

/// What the actor knows of one of its publications, for the checks.
pub(crate) struct PublishedAudio<'a> {
    pub(crate) is_screen: bool,
    /// The stream's mixing stage; `None` without audio.
    pub(crate) mixing: Option<&'a AudioMixing>,
}

/// The checks, in the order the seed's caution lists them; returns the bind
/// stream's mixing stage.
pub(crate) fn check<'a>(
    binding: &ScreenAudioBinding,
    screen: Option<PublishedAudio<'a>>,
    bind: Option<PublishedAudio<'a>>,
) -> ClientResult<&'a AudioMixing> {
    match screen {
        Some(s) if s.is_screen => {}
        Some(_) => {
            return Err(ClientError::InvalidOperation(format!(
                "stream {} is not a screen share: only a presentation stream binds its audio",
                binding.screen
            )));
        }
        None => {
            return Err(ClientError::InvalidOperation(format!(
                "stream {} is not a screen share this client publishes",
                binding.screen
            )));
        }
    }
    let Some(bind_stream) = bind else {
        return Err(ClientError::InvalidOperation(format!(
            "the bind stream {} is not published by this client",
            binding.bind
        )));
    };
    if bind_stream.is_screen {
        return Err(ClientError::InvalidParameter(format!(
            "the bind stream {} is a screen share, not a camera stream",
            binding.bind
        )));
    }
    bind_stream.mixing.ok_or_else(|| {
        ClientError::InvalidParameter(format!(
            "the bind stream {} has no audio to carry the screen audio",
            binding.bind
        ))
    })
}

impl Client {
    /// Sends the screen share `screen`'s background audio, captured from
    /// `source`, through the audio of our camera stream `bind` (seed
    /// `bindScreenAudio2RelatedStream`); with `mute_main_stream_audio` the
    /// microphone is left out and only the screen audio is sent. Subscribers
    /// hear it on `bind`'s audio. A second call replaces the binding; it
    /// ends with either stream.
    ///
    /// `source` must be a capture that does not carry the call (module
    /// docs). Open a device with [`Client::open_screen_audio`].
    pub async fn bind_screen_audio(
        &self,
        screen: StreamId,
        bind: StreamId,
        source: Box<dyn AudioSource>,
        mute_main_stream_audio: bool,
    ) -> ClientResult<()> {
        let binding = ScreenAudioBinding {
            screen,
            bind,
            source,
            mute_main_stream_audio,
        };
        self.call(|tx| RoomCommand::BindScreenAudio(Box::new(binding), tx))
            .await
    }

    /// Stops sending `bind`'s screen audio (the microphone comes back).
    pub async fn unbind_screen_audio(&self, bind: StreamId) -> ClientResult<()> {
        self.call(|tx| RoomCommand::UnbindScreenAudio(bind, tx))
            .await
    }
}

#[cfg(feature = "devices")]
impl Client {
    /// Opens the capture device `device` (an id or name from
    /// `media::devices::list_microphones`, e.g.
    /// `"pulseaudio:share.monitor"`) as a screen audio source, off the
    /// async threads.
    ///
    /// # Errors
    /// [`ClientError::Device`]: 90100019 when there is no such device,
    /// 90100005 without any audio input, 90100020 when it cannot be opened.
    pub async fn open_screen_audio(device: &str) -> ClientResult<Box<dyn AudioSource>> {
        let device = device.to_owned();
        let opened = tokio::task::spawn_blocking(move || {
            crate::media::devices::MicrophoneSource::open(Some(&device))
        })
        .await
        .map_err(|e| ClientError::Media(format!("the device thread failed: {e}")))?;
        match opened {
            Ok(source) => Ok(Box::new(source)),
            Err(e) => Err(ClientError::from_device(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::SyntheticAudio;
    use crate::protocol::ErrorCode;

    fn binding() -> ScreenAudioBinding {
        ScreenAudioBinding {
            screen: StreamId(2),
            bind: StreamId(1),
            source: Box::new(SyntheticAudio::new(880.0, 48_000, 1)),
            mute_main_stream_audio: false,
        }
    }

    #[test]
    fn only_a_screen_share_binds_into_a_camera_stream_with_audio() {
        let (_, mixing) =
            crate::media::mixing::mixable(Box::new(SyntheticAudio::new(440.0, 48_000, 1)));
        let b = binding();
        let screen = || {
            Some(PublishedAudio {
                is_screen: true,
                mixing: None,
            })
        };
        let camera = || {
            Some(PublishedAudio {
                is_screen: false,
                mixing: Some(&mixing),
            })
        };
        assert!(check(&b, screen(), camera()).is_ok());
        let code = |r: ClientResult<&AudioMixing>| r.err().map(|e| e.code());
        // Not a screen share, or not ours: 90100001.
        assert_eq!(
            code(check(&b, camera(), camera())),
            Some(ErrorCode::InvalidOperation)
        );
        assert_eq!(
            code(check(&b, None, camera())),
            Some(ErrorCode::InvalidOperation)
        );
        // The bind stream not published: 90100001.
        assert_eq!(
            code(check(&b, screen(), None)),
            Some(ErrorCode::InvalidOperation)
        );
        // A screen share or a stream without audio to carry it: 90000005.
        assert_eq!(
            code(check(&b, screen(), screen())),
            Some(ErrorCode::InvalidParameter)
        );
        let silent = Some(PublishedAudio {
            is_screen: false,
            mixing: None,
        });
        assert_eq!(
            code(check(&b, screen(), silent)),
            Some(ErrorCode::InvalidParameter)
        );
    }
}
