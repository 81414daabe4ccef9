//! A subscription's encoded media as it arrives, for recording: H.264 access
//! units after the reorder buffer and depacketizer, Opus packets as received.
//! Nothing is decoded or re-encoded on this path.
//!
//! The receive tasks hold a [`TapSlot`] per subscription; it is empty until
//! [`RemoteStream::tap_media`](super::RemoteStream::tap_media) fills it, and
//! costs one uncontended lock per packet while empty. The tap's channel is
//! bounded ([`TAP_CAPACITY`]): when the consumer falls behind, items are
//! dropped and the next video item is preceded by [`TappedMedia::VideoLost`],
//! so a recorder never writes a unit whose references it missed.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

/// Items queued from the receive tasks to the tap's consumer (receive task →
/// recorder). About 4 s of 30 fps video plus 20 ms audio; when full, items
/// are dropped (see the module doc).
pub const TAP_CAPACITY: usize = 512;

/// One item of encoded media.
#[derive(Debug, Clone)]
pub enum TappedMedia {
    /// A whole H.264 access unit (Annex B).
    Video {
        /// Its RTP timestamp (90 kHz).
        rtp_timestamp: u32,
        /// When it was complete.
        at: Instant,
        /// The unit.
        unit: Bytes,
    },
    /// A video unit was lost (a packet given up on, or the tap overflowed):
    /// units up to the next keyframe may not decode.
    VideoLost,
    /// One Opus packet.
    Audio {
        /// Its RTP timestamp (48 kHz).
        rtp_timestamp: u32,
        /// When it arrived.
        at: Instant,
        /// The packet.
        packet: Bytes,
    },
}

/// The receive tasks' end of a tap (shared by one subscription's tasks).
#[derive(Default)]
pub(crate) struct TapSlot {
    sender: Mutex<Option<crossbeam_channel::Sender<TappedMedia>>>,
    /// The consumer asked for a keyframe; cleared when a PLI goes out.
    keyframe_requested: AtomicBool,
    /// An item was dropped: send `VideoLost` before the next video.
    overflowed: AtomicBool,
}

impl TapSlot {
    /// Offers an item to the tap, if there is one.
    pub(crate) fn offer(&self, item: impl FnOnce() -> TappedMedia) {
        let mut sender = self.sender.lock().unwrap_or_else(|e| e.into_inner());
        let Some(tx) = sender.as_ref() else {
            return;
        };
        let item = item();
        if matches!(item, TappedMedia::Video { .. })
            && self.overflowed.swap(false, Ordering::AcqRel)
            && tx.try_send(TappedMedia::VideoLost).is_err()
        {
            self.overflowed.store(true, Ordering::Release);
            return;
        }
        match tx.try_send(item) {
            Ok(()) => {}
            Err(crossbeam_channel::TrySendError::Full(_)) => {
                self.overflowed.store(true, Ordering::Release);
            }
            // The consumer is gone: stop tapping.
            Err(crossbeam_channel::TrySendError::Disconnected(_)) => *sender = None,
        }
    }

    /// Whether the consumer wants a keyframe.
    pub(crate) fn keyframe_requested(&self) -> bool {
        self.keyframe_requested.load(Ordering::Acquire)
    }

    /// A PLI went out.
    pub(crate) fn keyframe_request_sent(&self) {
        self.keyframe_requested.store(false, Ordering::Release);
    }

    /// Connects a new consumer (replacing any earlier one).
    pub(crate) fn connect(self: &std::sync::Arc<Self>) -> MediaTap {
        let (tx, rx) = crossbeam_channel::bounded(TAP_CAPACITY);
        *self.sender.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        MediaTap {
            rx,
            slot: std::sync::Arc::clone(self),
        }
    }
}

/// The consumer's end of a tap: encoded media of one subscription.
/// Dropping it stops the tapping.
pub struct MediaTap {
    rx: crossbeam_channel::Receiver<TappedMedia>,
    slot: std::sync::Arc<TapSlot>,
}

impl MediaTap {
    /// The next item, waiting up to `timeout`. `Disconnected` once the
    /// subscription ended and everything was taken.
    pub fn recv_timeout(
        &self,
        timeout: Duration,
    ) -> Result<TappedMedia, crossbeam_channel::RecvTimeoutError> {
        self.rx.recv_timeout(timeout)
    }

    /// Asks for a keyframe: the receive task sends a PLI (at most every
    /// [`super::subscribe::KEYFRAME_REQUEST_INTERVAL`]).
    pub fn request_keyframe(&self) {
        self.slot.keyframe_requested.store(true, Ordering::Release);
    }
}
