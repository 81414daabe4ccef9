//! Local preview without an SDK change: a [`VideoSource`] wrapper that copies
//! each captured picture into a [`VideoSlot`] on its way to the encoder.

use std::sync::Arc;

use crate::client::VideoSlot;
use crate::media::{I420Frame, MediaError, VideoSource};

/// Wraps the camera; the publisher's video thread drives it.
pub struct PreviewSource {
    inner: Box<dyn VideoSource>,
    slot: Arc<VideoSlot>,
}

impl PreviewSource {
    /// Wraps `inner`; pictures also land in `slot`.
    pub fn new(inner: Box<dyn VideoSource>, slot: Arc<VideoSlot>) -> Self {
        Self { inner, slot }
    }
}

impl VideoSource for PreviewSource {
    fn size(&self) -> (u32, u32) {
        self.inner.size()
    }

    fn frame_rate(&self) -> u32 {
        self.inner.frame_rate()
    }

    fn next_frame(&mut self) -> Result<Option<I420Frame>, MediaError> {
        let frame = self.inner.next_frame()?;
        if let Some(f) = &frame {
            // One copy per captured frame; the slot's `on_frame` repaints the UI.
            self.slot.store(f.clone());
        }
        Ok(frame)
    }
}
