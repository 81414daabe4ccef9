//! A screen share whose capture ended by itself (the shared window was
//! closed, the display went away): the session unpublishes it, so its
//! subscribers get `stream-removed`, and tells the application once with
//! [`RoomEvent::ScreenSharingStopped`] (seed 001 `screen-sharing-stopped`).
//! An explicit `unpublish` stops the capture first, so it is not reported.

use super::super::RoomEvent;
use super::{Session, close_publication};
use crate::protocol::{Request, StreamId};

impl Session {
    /// Some publication's video source ended by itself: unpublish each
    /// screen share that did.
    pub(super) async fn on_capture_ended(&mut self) {
        let ended: Vec<StreamId> = self
            .publications
            .iter()
            .filter(|(_, p)| p.is_screen && p.pipeline.source_ended())
            .map(|(id, _)| *id)
            .collect();
        for stream_id in ended {
            let Some(publication) = self.publications.remove(&stream_id) else {
                continue;
            };
            close_publication(publication).await;
            self.screen_audio_ended(stream_id);
            match self.signal() {
                Ok(signal) => {
                    if let Err(e) = signal.request(Request::Unpublish { stream_id }).await {
                        tracing::warn!("unpublishing ended screen share {stream_id}: {e}");
                    }
                }
                // Reconnecting: the stream is not published again.
                Err(e) => tracing::info!("ended screen share {stream_id} not unpublished: {e}"),
            }
            self.emit(RoomEvent::ScreenSharingStopped { stream_id });
        }
    }
}
