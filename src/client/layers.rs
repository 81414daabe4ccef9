//! The lower simulcast layers of a published stream (`protocol::layers`,
//! issue 10 §2): each its own H.264 encoder on the media pool, fed the same
//! captured pictures as the top layer, scaled to its size, writing to its own
//! video track (its own SSRC, track id = its `resolutionId`).
//!
//! ```text
//!  video capture thread ─┬─ top layer: publish.rs VideoEncode (rate control)
//!                        └─ each lower layer: SerialQueue (2) ─▶ pool: scale + H.264 ─▶ writer task
//! ```
//!
//! A lower layer encodes at its profile's size, frame rate (decimated from
//! the source's) and maximum bitrate; congestion control drives the top layer
//! only. A layer that is not active (removed with `remove_resolution`) skips
//! its pictures and starts again on a keyframe.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::publish::{ENCODED_VIDEO_CAPACITY, Encoded, TrackOut, feedback_task, writer_task};
use crate::media::pool::SerialQueue;
use crate::media::rate_ladder::Decimator;
use crate::media::scale::Scaler;
use crate::media::{H264Encoder, I420Frame, VideoProfile};

/// Raw pictures queued for one lower layer's encoder (dropped when full).
const RAW_LAYER_CAPACITY: usize = 2;

/// One lower layer, as the capture thread sees it.
pub(crate) struct LowerLayer {
    queue: SerialQueue<(I420Frame, Instant)>,
    active: Arc<AtomicBool>,
    force_keyframe: Arc<AtomicBool>,
}

impl LowerLayer {
    /// Hands a captured picture to the layer's encoder, unless the layer is
    /// off. The copy is the price of encoding one picture several times.
    pub(crate) fn push(&self, frame: &I420Frame, captured: Instant) {
        if !self.active.load(Ordering::Acquire) {
            self.force_keyframe.store(true, Ordering::Release);
            return;
        }
        if self.queue.try_push((frame.clone(), captured)).is_err() {
            tracing::trace!("layer encoder behind; picture dropped");
        }
    }

    /// The pictures are held (mute, pause): start again on a keyframe.
    pub(crate) fn hold(&self) {
        self.force_keyframe.store(true, Ordering::Release);
    }
}

/// Starts a lower layer's encoder and its writer and keyframe tasks (pushed
/// to `tasks`), writing to `out`. `active` turns it on and off.
pub(crate) fn start_lower_layer(
    profile: &VideoProfile,
    source_fps: u32,
    out: TrackOut,
    active: Arc<AtomicBool>,
    connected: Arc<AtomicBool>,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) -> LowerLayer {
    let force_keyframe = Arc::new(AtomicBool::new(true));
    let (tx, rx) = mpsc::channel(ENCODED_VIDEO_CAPACITY);
    let mut encode = LayerEncode {
        width: profile.width,
        height: profile.height,
        frame_rate: profile.frame_rate.clamp(1, source_fps.max(1)),
        bitrate_bps: profile.max_bitrate_bps(),
        source_fps: source_fps.max(1),
        encoder: None,
        scaler: Scaler::default(),
        decimator: Decimator::default(),
        force_keyframe: Arc::clone(&force_keyframe),
        tx,
        last_sent: None,
    };
    tasks.push(tokio::spawn(feedback_task(
        Arc::clone(&out.track),
        Arc::clone(&force_keyframe),
    )));
    tasks.push(tokio::spawn(writer_task(out, rx, connected, None)));
    LowerLayer {
        queue: SerialQueue::new(RAW_LAYER_CAPACITY, move |(frame, captured)| {
            encode.encode(&frame, captured);
        }),
        active,
        force_keyframe,
    }
}

/// A lower layer's encoding state (runs on the media pool).
struct LayerEncode {
    width: u32,
    height: u32,
    frame_rate: u32,
    bitrate_bps: u32,
    source_fps: u32,
    /// Made on the first picture.
    encoder: Option<H264Encoder>,
    scaler: Scaler,
    decimator: Decimator,
    force_keyframe: Arc<AtomicBool>,
    tx: mpsc::Sender<Encoded>,
    last_sent: Option<Instant>,
}

impl LayerEncode {
    fn encode(&mut self, frame: &I420Frame, captured: Instant) {
        if !self.decimator.keep(self.source_fps, self.frame_rate) {
            return;
        }
        let encoder = match &mut self.encoder {
            Some(encoder) => encoder,
            None => {
                match H264Encoder::new(self.width, self.height, self.frame_rate, self.bitrate_bps) {
                    Ok(encoder) => self.encoder.insert(encoder),
                    Err(e) => {
                        tracing::warn!(
                            "H.264 encoder for layer {}x{}: {e}",
                            self.width,
                            self.height
                        );
                        return;
                    }
                }
            }
        };
        let picture = if (frame.width, frame.height) == (self.width, self.height) {
            frame
        } else {
            self.scaler.scale(frame, self.width, self.height)
        };
        let keyframe = self.force_keyframe.swap(false, Ordering::AcqRel);
        let encoded = match encoder.encode(picture, keyframe) {
            Ok(encoded) => encoded,
            Err(e) => {
                tracing::warn!("H.264 layer encode failed: {e}");
                self.force_keyframe.store(true, Ordering::Release);
                return;
            }
        };
        if encoded.data.is_empty() {
            return;
        }
        let interval = Duration::from_secs_f64(1.0 / f64::from(self.frame_rate));
        let duration = self
            .last_sent
            .map_or(interval, |last| captured.saturating_duration_since(last))
            .max(Duration::from_millis(1));
        self.last_sent = Some(captured);
        let sample = Encoded {
            data: Bytes::from(encoded.data),
            duration,
            captured,
            level: None,
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(sample) {
            self.force_keyframe.store(true, Ordering::Release);
        }
    }
}
