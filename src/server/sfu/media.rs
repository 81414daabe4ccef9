//! A published stream's media inside the SFU: the ingress tracks, the egress
//! tracks they fan out to, and the keyframe requester.
//!
//! The fan-out lists are read by one forwarding task per ingress track and
//! changed by sessions subscribing and unsubscribing. Each list sits behind a
//! `std::sync::Mutex` held only to copy the `Arc`s out into the task's reusable
//! buffer.
//!
//! The forwarding task never awaits a subscriber. Each [`EgressTrack`] has a
//! bounded queue ([`EGRESS_QUEUE_CAPACITY`]) drained by its own writer task,
//! which does the `write_rtp` awaits (the library's driver channel blocks when
//! that subscriber's connection is behind). The forwarder rewrites the header
//! and `try_send`s; when a subscriber's queue is full the packet is dropped for
//! that subscriber only, before its sequence number is rewritten, so the
//! subscriber sees an honest gap (loss) and the others are not held up.
//!
//! Keyframe requests (PLI, RFC 4585 §6.3.1) go to the publisher at most once per
//! [`KEYFRAME_MIN_INTERVAL`]: requests in between are coalesced into one sent at
//! the end of the interval, so a subscriber that joins right after another still
//! gets its keyframe. A request is dropped instead when a keyframe has passed
//! through since it was made (the forwarder spots IDR/SPS NAL units), so one
//! subscriber's redundant requests don't hold up the next subscriber's.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp::Packet;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::{Notify, mpsc};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use super::hub::HubPacket;
use super::rewrite::Rewriter;
use crate::server::metrics::Metrics;

/// Minimum time between two PLIs sent to one publisher.
pub const KEYFRAME_MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Packets queued per egress track, forwarding task → that track's writer task
/// (about 1.5 s of 720p video). When full, new packets for that track are
/// dropped (counted in [`EgressTrack::dropped`]): the subscriber is behind, and
/// the others must not wait for it.
pub const EGRESS_QUEUE_CAPACITY: usize = 256;

/// Packets a writer task takes off its queue per wake-up.
const WRITE_BATCH: usize = 32;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here is a push/retain/clone: state stays consistent
    // even if a panic poisoned the lock.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One egress track: where a subscriber receives one kind of a stream.
///
/// Owns the sending half of the track's queue; its writer task ends once the
/// last `Arc<EgressTrack>` is gone and the queue is drained.
pub struct EgressTrack {
    queue: mpsc::Sender<Packet>,
    rewriter: Mutex<Rewriter>,
    enabled: AtomicBool,
    dropped: AtomicU64,
}

impl EgressTrack {
    /// An egress track writing with the leg's SSRC and payload type; starts its
    /// writer task (counted in the stream's metrics).
    pub fn new(
        track: Arc<TrackLocalStaticRTP>,
        ssrc: u32,
        payload_type: u8,
        enabled: bool,
        media: &PublishedMedia,
    ) -> Self {
        let (queue, packets) = mpsc::channel(EGRESS_QUEUE_CAPACITY);
        let metrics = Arc::clone(&media.metrics);
        let guard = metrics.tasks.enter();
        tokio::spawn(async move {
            let _guard = guard;
            write_loop(track, packets, metrics).await;
        });
        Self {
            queue,
            rewriter: Mutex::new(Rewriter::new(ssrc, payload_type)),
            enabled: AtomicBool::new(enabled),
            dropped: AtomicU64::new(0),
        }
    }

    /// Packets dropped because this track's queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Starts or stops forwarding to this track.
    pub fn set_enabled(&self, enabled: bool) {
        let was = self.enabled.swap(enabled, Ordering::AcqRel);
        if was && !enabled {
            lock(&self.rewriter).pause();
        }
    }

    /// Whether packets are forwarded.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    /// Rewrites a copy of `packet` and queues it for the writer task; never
    /// waits. Returns whether it was queued.
    fn forward(&self, packet: &Packet) -> bool {
        if !self.enabled() {
            return false;
        }
        match self.queue.try_reserve() {
            Ok(permit) => {
                // The ingress header's extensions were stripped once by the
                // forwarder, so this clone only bumps the payload's refcount.
                let mut packet = packet.clone();
                lock(&self.rewriter).rewrite(&mut packet);
                permit.send(packet);
                true
            }
            Err(mpsc::error::TrySendError::Full(())) => {
                if self
                    .dropped
                    .fetch_add(1, Ordering::Relaxed)
                    .is_multiple_of(1000)
                {
                    tracing::debug!("egress queue full: dropping (subscriber behind)");
                }
                false
            }
            // The writer ended: the egress leg is closing; its owner removes it.
            Err(mpsc::error::TrySendError::Closed(())) => false,
        }
    }
}

/// Drains one egress track's queue into its peer connection.
async fn write_loop(
    track: Arc<TrackLocalStaticRTP>,
    mut packets: mpsc::Receiver<Packet>,
    metrics: Arc<Metrics>,
) {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    while packets.recv_many(&mut batch, WRITE_BATCH).await > 0 {
        let mut written = 0;
        for packet in batch.drain(..) {
            // An error means the egress leg is closing; its owner removes it.
            if track.write_rtp(packet).await.is_ok() {
                written += 1;
            }
        }
        metrics
            .forwarded_packets
            .fetch_add(written, Ordering::Relaxed);
    }
}

/// The subscribers of one ingress track.
#[derive(Default)]
struct Fanout {
    sinks: Mutex<Vec<Arc<EgressTrack>>>,
}

/// Ids of published streams, unique for the process's life.
static NEXT_MEDIA_ID: AtomicU64 = AtomicU64::new(1);

/// Media of one published stream.
pub struct PublishedMedia {
    id: u64,
    video: Fanout,
    audio: Fanout,
    /// The egress hub's input, when subscriptions are hub legs.
    hub: Option<mpsc::Sender<HubPacket>>,
    /// Hub legs subscribed to (video, audio): the forwarder only hands packets
    /// of a kind to the hub while some leg wants them.
    hub_legs: [AtomicUsize; 2],
    /// Packets the hub's full queue refused.
    hub_dropped: AtomicU64,
    /// The publisher's video track and its SSRC, once it arrived (PLI target).
    ingress_video: Mutex<Option<(Arc<dyn TrackRemote>, u32)>>,
    keyframe: Notify,
    /// Clock origin of the two timestamps below.
    epoch: Instant,
    /// µs since `epoch` of the latest keyframe request (0: none).
    last_request_us: AtomicU64,
    /// µs since `epoch` of the latest keyframe forwarded (0: none).
    last_keyframe_us: AtomicU64,
    closed: AtomicBool,
    closed_notify: Notify,
    metrics: Arc<Metrics>,
}

impl PublishedMedia {
    pub(crate) fn new(metrics: Arc<Metrics>, hub: Option<mpsc::Sender<HubPacket>>) -> Arc<Self> {
        let media = Arc::new(Self {
            id: NEXT_MEDIA_ID.fetch_add(1, Ordering::Relaxed),
            hub,
            hub_legs: [AtomicUsize::new(0), AtomicUsize::new(0)],
            hub_dropped: AtomicU64::new(0),
            video: Fanout::default(),
            audio: Fanout::default(),
            ingress_video: Mutex::new(None),
            keyframe: Notify::new(),
            epoch: Instant::now(),
            last_request_us: AtomicU64::new(0),
            last_keyframe_us: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            closed_notify: Notify::new(),
            metrics,
        });
        let task = Arc::clone(&media);
        let guard = media.metrics.tasks.enter();
        tokio::spawn(async move {
            let _guard = guard;
            task.keyframe_loop().await;
        });
        media
    }

    /// This stream's id (the egress hub's key for it).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Counts hub legs subscribing (`+1`) or leaving (`-1`) `kind`.
    pub(crate) fn hub_legs_changed(&self, kind: RtpCodecKind, delta: isize) {
        let slot = &self.hub_legs[usize::from(kind != RtpCodecKind::Video)];
        if delta > 0 {
            slot.fetch_add(1, Ordering::AcqRel);
        } else {
            slot.fetch_sub(1, Ordering::AcqRel);
        }
    }

    fn fanout(&self, kind: RtpCodecKind) -> &Fanout {
        match kind {
            RtpCodecKind::Video => &self.video,
            _ => &self.audio,
        }
    }

    /// Adds a subscriber's track.
    pub fn add_sink(&self, kind: RtpCodecKind, sink: Arc<EgressTrack>) {
        if !self.is_closed() {
            lock(&self.fanout(kind).sinks).push(sink);
        }
    }

    /// Removes a subscriber's track.
    pub fn remove_sink(&self, kind: RtpCodecKind, sink: &Arc<EgressTrack>) {
        lock(&self.fanout(kind).sinks).retain(|s| !Arc::ptr_eq(s, sink));
    }

    fn now_us(&self) -> u64 {
        // +1 keeps 0 free to mean "never".
        self.epoch.elapsed().as_micros() as u64 + 1
    }

    /// Asks the publisher for a keyframe (rate-limited, coalesced).
    pub fn request_keyframe(&self) {
        self.last_request_us.store(self.now_us(), Ordering::Release);
        self.keyframe.notify_one();
    }

    /// Whether the stream was unpublished.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Stops all forwarding; the forwarding and keyframe tasks end.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        lock(&self.video.sinks).clear();
        lock(&self.audio.sinks).clear();
        lock(&self.ingress_video).take();
        self.closed_notify.notify_waiters();
        // Wake the keyframe loop so it sees `closed`.
        self.keyframe.notify_one();
    }

    async fn keyframe_loop(&self) {
        loop {
            self.keyframe.notified().await;
            if self.is_closed() {
                return;
            }
            let requested = self.last_request_us.load(Ordering::Acquire);
            if self.last_keyframe_us.load(Ordering::Acquire) >= requested {
                continue; // a keyframe went by after the request: it is answered
            }
            let target = lock(&self.ingress_video).clone();
            if let Some((track, ssrc)) = target {
                let pli = PictureLossIndication {
                    sender_ssrc: 0,
                    media_ssrc: ssrc,
                };
                if track.write_rtcp(vec![Box::new(pli)]).await.is_ok() {
                    self.metrics
                        .keyframe_requests
                        .fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(KEYFRAME_MIN_INTERVAL).await;
            }
        }
    }

    /// Forwards one ingress track's packets to its fan-out until the track ends
    /// or the stream is closed.
    pub(crate) async fn forward(self: Arc<Self>, track: Arc<dyn TrackRemote>) {
        let kind = track.kind().await;
        if kind == RtpCodecKind::Video {
            let ssrc = track.ssrcs().await.first().copied().unwrap_or(0);
            *lock(&self.ingress_video) = Some((Arc::clone(&track), ssrc));
            // Subscribers that arrived before the track did are waiting for one.
            self.request_keyframe();
        }
        let mut sinks: Vec<Arc<EgressTrack>> = Vec::new();
        loop {
            let event = tokio::select! {
                event = track.poll() => event,
                () = self.closed_notify.notified() => None,
            };
            let Some(event) = event else { break };
            if self.is_closed() {
                break;
            }
            let TrackRemoteEvent::OnRtpPacket(mut packet) = event else {
                continue;
            };
            if kind == RtpCodecKind::Video && starts_h264_keyframe(&packet.payload) {
                self.last_keyframe_us
                    .store(self.now_us(), Ordering::Release);
            }
            // Every egress leg strips them (see `Rewriter`); doing it once here
            // makes the per-subscriber clones allocation-free.
            packet.header.extension = false;
            packet.header.extension_profile = 0;
            packet.header.extensions.clear();
            let video = kind == RtpCodecKind::Video;
            if let Some(hub) = &self.hub
                && self.hub_legs[usize::from(!video)].load(Ordering::Acquire) > 0
            {
                let packet = HubPacket {
                    media: self.id,
                    video,
                    packet: packet.clone(),
                };
                if hub.try_send(packet).is_err()
                    && self
                        .hub_dropped
                        .fetch_add(1, Ordering::Relaxed)
                        .is_multiple_of(1000)
                {
                    tracing::debug!("egress hub queue full: dropping (hub behind)");
                }
            }
            sinks.extend(lock(&self.fanout(kind).sinks).iter().cloned());
            for sink in &sinks {
                sink.forward(&packet);
            }
            // Don't keep removed subscribers' tracks alive until the next packet.
            sinks.clear();
        }
    }
}

/// Whether an H.264 RTP payload (RFC 6184) begins a keyframe: an IDR slice or an
/// SPS, alone, first in a STAP-A, or at the start of an FU-A.
pub(crate) fn starts_h264_keyframe(payload: &[u8]) -> bool {
    const IDR: u8 = 5;
    const SPS: u8 = 7;
    const STAP_A: u8 = 24;
    const FU_A: u8 = 28;
    let Some(&first) = payload.first() else {
        return false;
    };
    let key = |nal_type: u8| nal_type == IDR || nal_type == SPS;
    match first & 0x1f {
        STAP_A => payload.get(3).is_some_and(|b| key(b & 0x1f)),
        FU_A => payload
            .get(1)
            .is_some_and(|b| b & 0x80 != 0 && key(b & 0x1f)),
        nal_type => key(nal_type),
    }
}

#[cfg(test)]
mod tests {
    use super::starts_h264_keyframe;

    #[test]
    fn spots_keyframes_in_every_packetization() {
        assert!(starts_h264_keyframe(&[0x67, 0x42])); // SPS
        assert!(starts_h264_keyframe(&[0x65, 0x88])); // IDR
        assert!(!starts_h264_keyframe(&[0x41, 0x9a])); // non-IDR slice
        assert!(starts_h264_keyframe(&[0x78, 0x00, 0x0a, 0x67])); // STAP-A with SPS first
        assert!(!starts_h264_keyframe(&[0x78, 0x00, 0x0a, 0x41]));
        assert!(starts_h264_keyframe(&[0x7c, 0x85])); // FU-A start of IDR
        assert!(!starts_h264_keyframe(&[0x7c, 0x05])); // FU-A middle of IDR
        assert!(!starts_h264_keyframe(&[0x7c, 0x81])); // FU-A start of non-IDR
        assert!(!starts_h264_keyframe(&[]));
    }
}
