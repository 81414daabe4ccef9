//! The session's side of `bindScreenAudio2RelatedStream`
//! (`client::screen_audio`): check the two publications, hand the source to
//! the bind stream's mixing stage, and end the binding with the screen
//! share (its unpublishing, or its capture ending).

use super::super::screen_audio::{self, PublishedAudio, ScreenAudioBinding};
use super::super::{ClientError, ClientResult};
use super::Session;
use crate::protocol::StreamId;

impl Session {
    pub(super) fn bind_screen_audio(&mut self, binding: ScreenAudioBinding) -> ClientResult<()> {
        let view = |id: StreamId| {
            self.publications.get(&id).map(|p| PublishedAudio {
                is_screen: p.is_screen,
                mixing: p.mixing.as_ref(),
            })
        };
        let mixing = screen_audio::check(&binding, view(binding.screen), view(binding.bind))?;
        mixing
            .bind_screen_audio(binding.source, binding.mute_main_stream_audio)
            .map_err(|e| ClientError::InvalidParameter(e.to_string()))?;
        if let Some(p) = self.publications.get_mut(&binding.bind) {
            p.screen_audio_of = Some(binding.screen);
        }
        tracing::info!(
            screen = %binding.screen,
            bind = %binding.bind,
            mute_main = binding.mute_main_stream_audio,
            "screen audio bound"
        );
        Ok(())
    }

    pub(super) fn unbind_screen_audio(&mut self, bind: StreamId) -> ClientResult<()> {
        let p = self.publications.get_mut(&bind).ok_or_else(|| {
            ClientError::InvalidOperation(format!("stream {bind} is not published by this client"))
        })?;
        if let Some(mixing) = &p.mixing {
            mixing.unbind_screen_audio();
        }
        p.screen_audio_of = None;
        Ok(())
    }

    /// The screen share `screen` is gone: its audio stops too.
    pub(super) fn screen_audio_ended(&mut self, screen: StreamId) {
        for p in self.publications.values_mut() {
            if p.screen_audio_of == Some(screen) {
                if let Some(mixing) = &p.mixing {
                    mixing.unbind_screen_audio();
                }
                p.screen_audio_of = None;
            }
        }
    }
}
