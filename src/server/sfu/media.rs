//! A published stream's media inside the SFU: its ingress tracks, the
//! forwarder that hands their packets to the egress hub, and the keyframe
//! requester.
//!
//! One forwarding task per ingress track strips the header extensions once
//! and hands each packet to the hub ([`IngressPacket`]) with `try_send`: it
//! never waits, and while no leg subscribes to a kind (the hub keeps the
//! counts, [`PublishedMedia::set_subscribers`]) it hands nothing over.
//!
//! Keyframe requests (PLI, RFC 4585 §6.3.1) go to the publisher at most once per
//! [`KEYFRAME_MIN_INTERVAL`]: requests in between are coalesced into one sent at
//! the end of the interval, so a subscriber that joins right after another still
//! gets its keyframe. A request is dropped instead when a keyframe has passed
//! through since it was made (the forwarder spots IDR/SPS NAL units), so one
//! subscriber's redundant requests don't hold up the next subscriber's. An
//! urgent request (an `auto` leg that stepped down under congestion and
//! shows nothing until the smaller layer's keyframe, or lost it: `hub::auto`)
//! cuts that wait short: it goes [`KEYFRAME_URGENT_INTERVAL`] after the last
//! PLI.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp::Packet;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::{Notify, mpsc};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::PeerConnection;

use super::rid_layers::{RidLayer, RidLayers};
use crate::link::counters::LinkCounters;
use crate::protocol::LinkId;
use crate::protocol::layers::MAX_RESOLUTIONS;
use crate::server::metrics::Metrics;

/// Minimum time between two PLIs sent to one publisher. Half a second: a
/// subscriber on a lossy path whose keyframe arrived damaged asks again, and
/// at 1 s it stayed frozen for up to two intervals (issue 10, measured in
/// docs/PERFORMANCE.md); a keyframe more per second costs the publisher less
/// than a subscriber frozen for seconds.
pub const KEYFRAME_MIN_INTERVAL: Duration = Duration::from_millis(500);

/// The wait after a PLI for an urgent request (module docs): a leg waiting on
/// it shows no video meanwhile.
pub const KEYFRAME_URGENT_INTERVAL: Duration = Duration::from_millis(150);

/// One ingress RTP packet for the egress hub to fan out.
pub struct IngressPacket {
    /// [`PublishedMedia::id`] of the stream.
    pub media: u64,
    /// Video (else audio).
    pub video: bool,
    /// The packet, header extensions already stripped.
    pub packet: Packet,
    /// Video: the picture's capture time (NTP 32.32) from the publisher's
    /// `link::capture_time` extension; 0 when it has none.
    pub capture_ntp: u64,
    /// Video: the simulcast layer's slot (`protocol::layers`; 0 on a stream
    /// without layers). Audio: 0.
    pub layer: u8,
    /// The RFC 6464 level the publisher measured (audio with the extension
    /// negotiated; read before stripping), for top-N legs.
    pub audio_level: Option<u8>,
}

/// One ingress RTP packet for a server-side recording (forwarder → the
/// recording's writer thread, `server::recording`).
pub struct RecordedPacket {
    /// Video (else audio).
    pub video: bool,
    /// When the forwarder received it.
    pub at: Instant,
    /// The packet, header extensions stripped.
    pub packet: Packet,
}

/// Packets queued for a recording's writer: about 2 s of video and audio.
/// When full the packet is dropped; the writer sees the sequence gap and
/// waits for the next keyframe.
pub const RECORDING_CAPACITY: usize = 1024;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here is a take/replace/clone: state stays
    // consistent even if a panic poisoned the lock.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A publisher's video track of one layer slot and its SSRC (a PLI target).
type IngressVideo = (Arc<dyn TrackRemote>, u32);

/// Media of one published stream.
pub struct PublishedMedia {
    id: u64,
    /// The egress hub's input.
    hub: mpsc::Sender<IngressPacket>,
    /// Hub legs subscribed to (video, audio), kept by the hub: the forwarder
    /// only hands packets of a kind to the hub while some leg wants them.
    subscribers: [AtomicUsize; 2],
    /// Packets the hub's full queue refused.
    hub_dropped: AtomicU64,
    /// The publisher's video track of each layer slot and its SSRC, once it
    /// arrived (PLI target).
    ingress_video: Mutex<[Option<IngressVideo>; MAX_RESOLUTIONS]>,
    /// The `resolutionId` of each layer slot (`protocol::layers`), fixed at
    /// publish; empty for a stream without layers (one video track, slot 0).
    layers: Mutex<Vec<String>>,
    keyframe: Notify,
    /// An urgent request (module docs) wakes the wait after a PLI.
    urgent: Notify,
    /// Clock origin of the two timestamps below.
    epoch: Instant,
    /// µs since `epoch` of the latest keyframe request, per layer slot (0: none).
    last_request_us: [AtomicU64; MAX_RESOLUTIONS],
    /// µs since `epoch` of the latest keyframe forwarded, per layer slot (0: none).
    last_keyframe_us: [AtomicU64; MAX_RESOLUTIONS],
    /// RTP bytes received of each layer slot's video (rates for `auto`).
    layer_bytes: [AtomicU64; MAX_RESOLUTIONS],
    closed: AtomicBool,
    closed_notify: Notify,
    metrics: Arc<Metrics>,
    /// The audio level extension's negotiated id on the ingress link (0:
    /// not negotiated), see [`PublishedMedia::set_audio_level_ext`].
    audio_level_ext: AtomicU8,
    /// The capture time extension's negotiated id (0: not negotiated).
    capture_time_ext: AtomicU8,
    /// A server-side recording of this stream (at most one).
    recorder: Mutex<Option<crossbeam_channel::Sender<RecordedPacket>>>,
    /// The publish link carrying it, for its counters (`GET /rooms/{id}`).
    /// Weak: the session owns the link, and closing it must free it.
    ingress_link: OnceLock<(LinkId, Weak<dyn PeerConnection>)>,
    /// Whether the publish link's answer kept RTX, and the RTX packets it
    /// received (`link::rtx`: repairs, and probe padding dropped).
    ingress_rtx: OnceLock<(bool, Arc<crate::link::rtx::RtxCounters>)>,
    /// PLIs sent to the publisher for this stream (webrtc-rs's stats do
    /// not count what `write_rtcp` sends).
    plis_sent: AtomicU64,
    /// The layers some leg wants (`super::wanted`).
    wanted: super::wanted::LayersWanted,
    /// Its subscribers' audio loss (`super::downlink_loss`).
    downlink_loss: super::downlink_loss::DownlinkLoss,
}

impl PublishedMedia {
    /// The media of a stream the egress hub knows as `id` (unique per
    /// `Sfu`), whose packets go to `hub`.
    pub(crate) fn new(
        id: u64,
        metrics: Arc<Metrics>,
        hub: mpsc::Sender<IngressPacket>,
    ) -> Arc<Self> {
        let media = Arc::new(Self {
            id,
            hub,
            subscribers: [AtomicUsize::new(0), AtomicUsize::new(0)],
            hub_dropped: AtomicU64::new(0),
            ingress_video: Mutex::new([None, None, None]),
            layers: Mutex::new(Vec::new()),
            keyframe: Notify::new(),
            urgent: Notify::new(),
            epoch: Instant::now(),
            last_request_us: Default::default(),
            last_keyframe_us: Default::default(),
            layer_bytes: Default::default(),
            closed: AtomicBool::new(false),
            closed_notify: Notify::new(),
            metrics,
            audio_level_ext: AtomicU8::new(0),
            capture_time_ext: AtomicU8::new(0),
            recorder: Mutex::new(None),
            ingress_link: OnceLock::new(),
            ingress_rtx: OnceLock::new(),
            plis_sent: AtomicU64::new(0),
            wanted: Default::default(),
            downlink_loss: Default::default(),
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

    /// The id the ingress link negotiated for the RFC 6464 audio level
    /// extension (`link::audio_level::ext_id_in_sdp` of its answer); the
    /// forwarder reads each audio packet's level under it.
    pub(crate) fn set_audio_level_ext(&self, id: Option<u8>) {
        self.audio_level_ext
            .store(id.unwrap_or(0), Ordering::Release);
    }

    /// Names the publish link that carries this stream (set once).
    pub(crate) fn set_ingress_link(&self, link_id: LinkId, pc: &Arc<dyn PeerConnection>) {
        // Err: already set; a stream has one publish link for its life.
        self.ingress_link.set((link_id, Arc::downgrade(pc))).ok();
    }

    /// Whether the publish link negotiated RTX (`kept`) and its RTX counters.
    pub(crate) fn set_ingress_rtx(&self, kept: bool, counters: Arc<crate::link::rtx::RtxCounters>) {
        // Err: already set; a stream has one publish link for its life.
        self.ingress_rtx.set((kept, counters)).ok();
    }

    /// Whether the publish link negotiated RTX, and what RTX it received so
    /// far (all zero for a stream without one).
    pub fn ingress_rtx(&self) -> (bool, crate::link::rtx::RtxCount) {
        self.ingress_rtx
            .get()
            .map_or((false, Default::default()), |(kept, c)| (*kept, c.get()))
    }

    /// The publish link's id and its counters now; `None` for a stream
    /// without one (relayed, or its link is gone).
    pub async fn ingress_counters(&self) -> Option<(LinkId, LinkCounters)> {
        let (link_id, pc) = self.ingress_link.get()?;
        let pc = pc.upgrade()?;
        Some((*link_id, crate::link::counters::read(pc.as_ref()).await))
    }

    /// PLIs the SFU sent the publisher for this stream so far.
    pub fn plis_sent(&self) -> u64 {
        self.plis_sent.load(Ordering::Relaxed)
    }

    /// The id the ingress link negotiated for the capture time extension
    /// (`link::capture_time`); the forwarder reads each video packet's
    /// capture time under it.
    pub(crate) fn set_capture_time_ext(&self, id: Option<u8>) {
        self.capture_time_ext
            .store(id.unwrap_or(0), Ordering::Release);
    }

    /// The hub's count of legs subscribed to this stream's video and audio.
    pub(crate) fn set_subscribers(&self, video: usize, audio: usize) {
        self.subscribers[0].store(video, Ordering::Release);
        self.subscribers[1].store(audio, Ordering::Release);
    }

    /// The hub's counts of legs subscribed to (video, audio).
    pub(crate) fn subscriber_counts(&self) -> (usize, usize) {
        (
            self.subscribers[0].load(Ordering::Acquire),
            self.subscribers[1].load(Ordering::Acquire),
        )
    }

    fn now_us(&self) -> u64 {
        // +1 keeps 0 free to mean "never".
        self.epoch.elapsed().as_micros() as u64 + 1
    }

    /// Names the stream's layer slots (`resolutionId`s, largest first);
    /// before its tracks arrive.
    pub(crate) fn set_layers(&self, ids: Vec<String>) {
        *lock(&self.layers) = ids;
    }

    /// The `resolutionId` of each layer slot; empty without layers.
    pub fn layers(&self) -> Vec<String> {
        lock(&self.layers).clone()
    }

    /// The slot of layer `id`, if the stream was published with it.
    pub fn layer_slot(&self, id: &str) -> Option<u8> {
        lock(&self.layers)
            .iter()
            .position(|l| l == id)
            .and_then(|p| u8::try_from(p).ok())
    }

    /// The layer of a packet on SSRC `ssrc` of a multi-rid `track`: looked up
    /// by its rid the first time, when the layer also becomes that slot's PLI
    /// target and its waiting subscribers get a keyframe asked for.
    async fn rid_layer(
        &self,
        map: &mut RidLayers,
        track: &Arc<dyn TrackRemote>,
        ssrc: u32,
    ) -> RidLayer {
        if let Some(layer) = map.get(ssrc) {
            return layer;
        }
        let rid = track.rid(ssrc).await.map(|r| r.to_string());
        let layer = map.learn(ssrc, rid.as_deref(), |id| self.layer_slot(id));
        match layer {
            RidLayer::Slot(slot) => {
                if let Some(target) = lock(&self.ingress_video).get_mut(usize::from(slot)) {
                    *target = Some((Arc::clone(track), ssrc));
                }
                self.request_keyframe_on(slot);
            }
            RidLayer::Ignored => {
                tracing::debug!(ssrc, rid = ?rid, "RTP stream of no declared resolution: ignored");
            }
        }
        layer
    }

    /// RTP bytes received of each layer slot's video so far.
    pub fn layer_bytes(&self) -> [u64; MAX_RESOLUTIONS] {
        [0, 1, 2].map(|slot| self.layer_bytes[slot].load(Ordering::Relaxed))
    }

    /// Counts `bytes` of RTP received on layer `slot` (the rates `auto`
    /// weighs).
    pub(crate) fn count_layer_bytes(&self, slot: u8, bytes: u64) {
        if let Some(count) = self.layer_bytes.get(usize::from(slot)) {
            count.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// Asks the publisher for a keyframe on every layer (rate-limited,
    /// coalesced).
    pub fn request_keyframe(&self) {
        let now = self.now_us();
        for slot in &self.last_request_us {
            slot.store(now, Ordering::Release);
        }
        self.keyframe.notify_one();
    }

    /// Asks the publisher for a keyframe on one layer (a subscriber switches
    /// to it, or lost it).
    pub fn request_keyframe_on(&self, layer: u8) {
        if let Some(slot) = self.last_request_us.get(usize::from(layer)) {
            slot.store(self.now_us(), Ordering::Release);
            self.keyframe.notify_one();
        }
    }

    /// Asks the publisher for a keyframe on one layer that a subscriber
    /// waits on with no video (module docs): sent
    /// [`KEYFRAME_URGENT_INTERVAL`] after the last PLI rather than
    /// [`KEYFRAME_MIN_INTERVAL`].
    pub fn request_keyframe_urgently_on(&self, layer: u8) {
        self.request_keyframe_on(layer);
        self.urgent.notify_waiters();
    }

    /// Leg `link` needs the layer slots of `mask` (bit `n`: slot `n`;
    /// `super::wanted::leg_wants`).
    pub(crate) fn want_layers(&self, link: LinkId, mask: u8) {
        self.wanted.set(link, mask);
    }

    /// The layer slots some leg needs now (bit `n`: slot `n`), without the
    /// top layer's standing bit: what a relay node pulls from the owner.
    pub(crate) fn watched_layers(&self) -> u8 {
        self.wanted.watched()
    }

    /// Leg `link` ended: it wants no layer.
    pub(crate) fn unwant_layers(&self, link: LinkId) {
        self.wanted.remove(link);
    }

    /// The wanted layers' bit set (bit `n`: slot `n`), as it changes.
    pub(crate) fn wanted_changes(&self) -> tokio::sync::watch::Receiver<u8> {
        self.wanted.subscribe()
    }

    /// Resolves once the stream is closed.
    pub(crate) async fn closed(&self) {
        let notified = self.closed_notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.is_closed() {
            return;
        }
        notified.await;
    }

    /// Starts handing this stream's packets to a recording; `None` when one
    /// records it already.
    pub(crate) fn start_recording(&self) -> Option<crossbeam_channel::Receiver<RecordedPacket>> {
        let mut recorder = lock(&self.recorder);
        if recorder.is_some() || self.is_closed() {
            return None;
        }
        let (tx, rx) = crossbeam_channel::bounded(RECORDING_CAPACITY);
        *recorder = Some(tx);
        Some(rx)
    }

    /// Stops handing packets to the recording: its writer drains and ends.
    pub(crate) fn stop_recording(&self) {
        lock(&self.recorder).take();
    }

    /// Its subscribers' audio loss, as their legs report it.
    pub(crate) fn downlink_loss(&self) -> &super::downlink_loss::DownlinkLoss {
        &self.downlink_loss
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
        *lock(&self.ingress_video) = [None, None, None];
        self.stop_recording();
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
            // Each layer is its own encoder: ask only those whose request
            // no keyframe has answered yet.
            let tracks = lock(&self.ingress_video).clone();
            let mut sent = false;
            for (slot, target) in tracks.into_iter().enumerate() {
                let requested = self.last_request_us[slot].load(Ordering::Acquire);
                if requested == 0
                    || self.last_keyframe_us[slot].load(Ordering::Acquire) >= requested
                {
                    continue; // a keyframe went by after the request: it is answered
                }
                let Some((track, ssrc)) = target else {
                    continue;
                };
                let pli = PictureLossIndication {
                    sender_ssrc: 0,
                    media_ssrc: ssrc,
                };
                if track.write_rtcp(vec![Box::new(pli)]).await.is_ok() {
                    self.plis_sent.fetch_add(1, Ordering::Relaxed);
                    self.metrics
                        .keyframe_requests
                        .fetch_add(1, Ordering::Relaxed);
                }
                sent = true;
            }
            if sent {
                let sent_at = tokio::time::Instant::now();
                tokio::select! {
                    () = tokio::time::sleep(KEYFRAME_MIN_INTERVAL) => {}
                    () = self.urgent.notified() => {
                        tokio::time::sleep_until(sent_at + KEYFRAME_URGENT_INTERVAL).await;
                    }
                }
            }
        }
    }

    /// Forwards one ingress track's packets to its fan-out until the track ends
    /// or the stream is closed.
    pub(crate) async fn forward(self: Arc<Self>, track: Arc<dyn TrackRemote>) {
        self.forward_from(track, None).await;
    }

    /// Forwards one track of a relay link (`relay_ingress`): its video is
    /// the layer the link plays, its audio only while the link carries the
    /// stream's audio ([`RelayedTrack`]).
    pub(crate) async fn forward_relayed(
        self: Arc<Self>,
        track: Arc<dyn TrackRemote>,
        relayed: RelayedTrack,
    ) {
        self.forward_from(track, Some(relayed)).await;
    }

    async fn forward_from(
        self: Arc<Self>,
        track: Arc<dyn TrackRemote>,
        relayed: Option<RelayedTrack>,
    ) {
        let _track = self.metrics.ingress_tracks.enter();
        let kind = track.kind().await;
        let mut layer = 0u8;
        // A browser's simulcast: one track, a layer per rid (`rid_layers`).
        let mut rid_layers: Option<RidLayers> = None;
        // The RTP timestamp of each layer's latest keyframe.
        let mut keyframe_ts: [Option<u32>; MAX_RESOLUTIONS] = [None; MAX_RESOLUTIONS];
        if kind == RtpCodecKind::Video {
            let ssrc = track.ssrcs().await.first().copied().unwrap_or(0);
            if let Some(slot) = relayed.as_ref().and_then(|r| r.layer) {
                // A relay link plays one layer of the owner's stream.
                layer = slot;
            } else if !lock(&self.layers).is_empty() {
                // A layer is the track named by its resolutionId: its RTP
                // stream ids (a browser's `sendEncodings` rids, each SSRC a
                // layer) or its track id (huddle's SDK, a track per layer).
                if track.rid(ssrc).await.is_some() {
                    rid_layers = Some(RidLayers::default());
                } else {
                    let id = track.track_id().await.to_string();
                    match self.layer_slot(&id) {
                        Some(slot) => layer = slot,
                        None => {
                            tracing::debug!(track = %id, "video track of no declared resolution: ignored");
                            return;
                        }
                    }
                }
            }
            if rid_layers.is_none() {
                if let Some(slot) = lock(&self.ingress_video).get_mut(usize::from(layer)) {
                    *slot = Some((Arc::clone(&track), ssrc));
                }
                // Subscribers that arrived before the track did are waiting for one.
                self.request_keyframe_on(layer);
            }
        }
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
            if kind != RtpCodecKind::Video
                && relayed
                    .as_ref()
                    .is_some_and(|r| !r.audio.load(Ordering::Acquire))
            {
                continue; // another link of the stream carries its audio
            }
            if let Some(map) = rid_layers.as_mut() {
                match self.rid_layer(map, &track, packet.header.ssrc).await {
                    RidLayer::Slot(slot) => layer = slot,
                    RidLayer::Ignored => continue,
                }
            }
            // Padding is no part of the layer's rate (`auto` weighs it): the
            // hub drops it (`super::padding`).
            if kind == RtpCodecKind::Video && !super::padding::is_padding_only(&packet) {
                self.count_layer_bytes(layer, 12 + packet.payload.len() as u64);
            }
            // A keyframe answers the requests made before its FIRST packet:
            // later packets of it (an IDR's FU-A start after the STAP-A of
            // its parameter sets) must not, or a request made because the
            // hub passed this very keyframe over (`sfu::layers`, Defer) reads
            // as answered and no keyframe is asked for again (a browser's
            // switch to its smallest layer then waited forever).
            if kind == RtpCodecKind::Video
                && starts_h264_keyframe(&packet.payload)
                && keyframe_ts[usize::from(layer)].replace(packet.header.timestamp)
                    != Some(packet.header.timestamp)
            {
                self.last_keyframe_us[usize::from(layer)].store(self.now_us(), Ordering::Release);
            }
            let audio_level = match self.audio_level_ext.load(Ordering::Acquire) {
                0 => None,
                _ if kind == RtpCodecKind::Video => None,
                id => crate::link::audio_level::read_level(&packet, id),
            };
            let capture_ntp = match self.capture_time_ext.load(Ordering::Acquire) {
                0 => 0,
                _ if kind != RtpCodecKind::Video => 0,
                id => crate::link::capture_time::read_capture_time(&packet, id).unwrap_or(0),
            };
            // Every egress leg strips them (see `Rewriter`); doing it once here
            // makes the per-subscriber clones allocation-free.
            packet.header.extension = false;
            packet.header.extension_profile = 0;
            packet.header.extensions.clear();
            let video = kind == RtpCodecKind::Video;
            // A recording keeps the top layer only.
            if let Some(tx) = lock(&self.recorder).as_ref().filter(|_| layer == 0) {
                // Full: the writer is behind and sees the gap; nothing waits.
                tx.try_send(RecordedPacket {
                    video,
                    at: Instant::now(),
                    packet: packet.clone(),
                })
                .ok();
            }
            if self.subscribers[usize::from(!video)].load(Ordering::Acquire) == 0 {
                continue;
            }
            let packet = IngressPacket {
                media: self.id,
                video,
                packet,
                capture_ntp,
                layer,
                audio_level,
            };
            if self.hub.try_send(packet).is_err()
                && self
                    .hub_dropped
                    .fetch_add(1, Ordering::Relaxed)
                    .is_multiple_of(1000)
            {
                tracing::debug!("egress hub queue full: dropping (hub behind)");
            }
        }
    }
}

/// How a relay link's track feeds a relayed stream's media
/// (`relay_ingress`): a layered stream comes over one link per layer, each
/// with the stream's audio, of which one link's is forwarded.
#[derive(Debug, Clone)]
pub(crate) struct RelayedTrack {
    /// The layer slot the link's video is (`None`: found as for a
    /// publisher's track: slot 0 for a stream without layers).
    pub(crate) layer: Option<u8>,
    /// Whether the link's audio is forwarded now.
    pub(crate) audio: Arc<AtomicBool>,
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
