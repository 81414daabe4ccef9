//! The lower simulcast layers of a published stream (`protocol::layers`,
//! issue 10 §2): each its own H.264 encoder, fed the same captured pictures
//! as the top layer, scaled to its size, writing to its own video track (its
//! own SSRC, track id = its `resolutionId`).
//!
//! ```text
//!  video capture thread ─▶ SerialQueue (2) ─▶ media pool, one job per picture:
//!        top layer (publish.rs VideoEncode, rate control), then each lower layer
//!        ─▶ keyframes first ─▶ one video writer task ─▶ each layer's track
//! ```
//!
//! One job encodes every layer of a picture and hands the results to one
//! writer, keyframes first: a subscriber switching layers waits for a
//! keyframe of the target layer that is *not* a picture the current layer
//! has begun to send (`server::sfu::layers`), and with the keyframe sent
//! first, the one the switch asked for is such a picture.
//!
//! A lower layer encodes at its profile's size, frame rate (decimated from
//! the source's) and maximum bitrate; congestion control drives the top layer
//! only. A layer that is not active (removed with `remove_resolution`) skips
//! its pictures and starts again on a keyframe.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::publish::{Encoded, TrackOut, feedback_task};
use crate::media::rate_ladder::Decimator;
use crate::media::scale::Scaler;
use crate::media::{H264Encoder, I420Frame, VideoProfile};

/// Starts a lower layer's keyframe task (pushed to `tasks`) on `out`'s track
/// and returns its encoder. It is encoded while both flags of `[active,
/// wanted]` are on (removed by the publisher; unwatched, `layers-wanted`).
pub(crate) fn lower_layer(
    profile: &VideoProfile,
    source_fps: u32,
    out: &TrackOut,
    [active, wanted]: [Arc<AtomicBool>; 2],
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) -> LayerEncode {
    let force_keyframe = Arc::new(AtomicBool::new(true));
    tasks.push(tokio::spawn(feedback_task(
        Arc::clone(&out.track),
        Arc::clone(&force_keyframe),
    )));
    LayerEncode {
        width: profile.width,
        height: profile.height,
        frame_rate: profile.frame_rate.clamp(1, source_fps.max(1)),
        bitrate_bps: profile.max_bitrate_bps(),
        source_fps: source_fps.max(1),
        encoder: None,
        scaler: Scaler::default(),
        decimator: Decimator::default(),
        force_keyframe,
        active,
        wanted,
        last_sent: None,
    }
}

/// A lower layer's encoding state (runs on the media pool).
pub(crate) struct LayerEncode {
    width: u32,
    height: u32,
    frame_rate: u32,
    bitrate_bps: u32,
    source_fps: u32,
    /// Made on the first picture.
    encoder: Option<H264Encoder>,
    scaler: Scaler,
    decimator: Decimator,
    /// Set by the layer's keyframe requests (PLI), a full writer queue, a
    /// pause.
    pub(crate) force_keyframe: Arc<AtomicBool>,
    active: Arc<AtomicBool>,
    /// Some subscriber watches it (`layers-wanted`).
    wanted: Arc<AtomicBool>,
    last_sent: Option<Instant>,
}

impl LayerEncode {
    /// Encodes one picture for this layer, if the layer is on and the frame
    /// rate keeps it.
    pub(crate) fn encode(&mut self, frame: &I420Frame, captured: Instant) -> Option<Encoded> {
        if !self.active.load(Ordering::Acquire) || !self.wanted.load(Ordering::Acquire) {
            self.force_keyframe.store(true, Ordering::Release);
            return None;
        }
        if !self.decimator.keep(self.source_fps, self.frame_rate) {
            return None;
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
                        return None;
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
                return None;
            }
        };
        if encoded.data.is_empty() {
            return None;
        }
        let interval = Duration::from_secs_f64(1.0 / f64::from(self.frame_rate));
        let duration = self
            .last_sent
            .map_or(interval, |last| captured.saturating_duration_since(last))
            .max(Duration::from_millis(1));
        self.last_sent = Some(captured);
        Some(Encoded {
            data: Bytes::from(encoded.data),
            duration,
            captured,
            level: None,
            keyframe: encoded.keyframe,
        })
    }
}
