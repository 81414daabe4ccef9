//! Our screen share's SDK side: open the capture and publish it as a
//! presentation stream (`isScreen`), or unpublish it. The UI part (menu,
//! state, stage) is `ui/screen_share.rs`.

use crate::client::{ClientError, ClientResult, StreamId};
use crate::protocol::ErrorCode;

use super::super::error_text::Notice;
use super::super::screen_share::{ScreenAudioChoice, ShareChoice, ShareSource, ShareState};
use super::{RoomSession, SessionReply, send_reply};

impl RoomSession {
    /// Starts sharing `choice` (the "Share screen" menu); the result comes
    /// back as [`SessionReply::ScreenShared`]. Ignored while a share runs.
    pub fn share_screen(&mut self, choice: ShareChoice) {
        if self.screen_share.state != ShareState::Off {
            return;
        }
        self.screen_share.state = ShareState::Starting(choice.label.clone());
        let (client, tx, ctx) = (
            self.client.clone(),
            self.replies_tx.clone(),
            self.ctx.clone(),
        );
        // The screen audio goes out with our camera stream's audio.
        let camera = self.local.as_ref().and_then(|l| l.stream_id);
        self.rt.spawn(async move {
            let result = open_and_publish(&client, choice.source).await;
            let screen = result.as_ref().ok().copied();
            send_reply(
                &tx,
                &ctx,
                SessionReply::ScreenShared(result.map(|id| (id, choice.label))),
            );
            if let (Some(screen), Some(audio)) = (screen, choice.audio)
                && let Err(e) = bind_audio(&client, screen, camera, audio).await
            {
                send_reply(&tx, &ctx, SessionReply::ScreenAudioFailed(e));
            }
        });
    }

    /// Stops our share ("Stop sharing").
    pub fn stop_screen_share(&mut self) {
        let ShareState::Sharing { stream_id, .. } = std::mem::take(&mut self.screen_share.state)
        else {
            return;
        };
        let (client, tx, ctx) = (
            self.client.clone(),
            self.replies_tx.clone(),
            self.ctx.clone(),
        );
        self.rt.spawn(async move {
            if let Err(e) = client.unpublish(stream_id).await {
                send_reply(&tx, &ctx, SessionReply::ScreenShareStopFailed(e));
            }
        });
    }

    /// The SDK stopped our share because its window was closed (the seed's
    /// `screen-sharing-stopped`; it is unpublished already): the user is told.
    pub(super) fn on_screen_sharing_stopped(&mut self, stream_id: StreamId) {
        if matches!(&self.screen_share.state,
            ShareState::Sharing { stream_id: id, .. } if *id == stream_id)
        {
            self.screen_share.state = ShareState::Off;
            self.errors
                .push("The shared window was closed; sharing stopped.".into());
        }
    }

    /// The share is published, or why not.
    pub(super) fn on_screen_shared(&mut self, result: ClientResult<(StreamId, String)>) {
        match result {
            Ok((stream_id, label)) => {
                self.screen_share.state = ShareState::Sharing { stream_id, label };
            }
            Err(e) => {
                self.screen_share.state = ShareState::Off;
                self.errors.push(Notice::failed("Sharing the screen", &e));
            }
        }
    }
}

/// Opens the picked device and binds it to our camera stream.
#[cfg(feature = "devices")]
async fn bind_audio(
    client: &crate::client::Client,
    screen: StreamId,
    camera: Option<StreamId>,
    audio: ScreenAudioChoice,
) -> ClientResult<()> {
    let camera = camera.ok_or_else(|| {
        ClientError::InvalidOperation("the camera stream is not published yet".into())
    })?;
    let source = crate::client::Client::open_screen_audio(&audio.device).await?;
    client
        .bind_screen_audio(screen, camera, source, audio.mute_microphone)
        .await
}

#[cfg(not(feature = "devices"))]
async fn bind_audio(
    _client: &crate::client::Client,
    _screen: StreamId,
    _camera: Option<StreamId>,
    _audio: ScreenAudioChoice,
) -> ClientResult<()> {
    Err(ClientError::InvalidOperation(
        "this build has no audio capture (feature `devices`)".into(),
    ))
}

#[cfg(feature = "devices")]
async fn open_and_publish(
    client: &crate::client::Client,
    source: ShareSource,
) -> ClientResult<StreamId> {
    use crate::client::LocalStream;
    use crate::media::ScreenProfile;
    use crate::media::devices::{CaptureTarget, ScreenCaptureConfig, ScreenSource};
    let config = ScreenCaptureConfig {
        display: None, // the display the app runs on
        target: match source {
            ShareSource::Screen(index) => CaptureTarget::Screen(index),
            ShareSource::Window(id) => CaptureTarget::Window(id),
        },
        profile: ScreenProfile::default(),
    };
    // Connects to X and reads a first picture: off the async workers.
    let source = tokio::task::spawn_blocking(move || ScreenSource::open(&config))
        .await
        .map_err(|e| ClientError::Media(format!("screen capture task: {e}")))?
        .map_err(|e| ClientError::Server {
            code: ErrorCode::from_code(e.seed_code()).unwrap_or(ErrorCode::InvalidParameter),
            message: e.to_string(),
        })?;
    let stream = LocalStream::screen(Box::new(source), ScreenProfile::default());
    client.publish(stream).await
}

#[cfg(not(feature = "devices"))]
async fn open_and_publish(
    _client: &crate::client::Client,
    _source: ShareSource,
) -> ClientResult<StreamId> {
    Err(ClientError::Server {
        code: ErrorCode::MediaUpstreamUnsupported,
        message: "this build has no screen capture (feature `devices`)".into(),
    })
}
