//! The SFU: receives each publisher's RTP on an ingress link and forwards it to
//! every subscriber's egress leg, untouched but for the header fields that must
//! match the egress leg (see [`rewrite`]).
//!
//! One peer connection per publish and one per subscription. Publishers get a
//! webrtc-rs `PeerConnection` each ([`IngressLink`]); their packets go to the
//! egress [`hub`] ([`media`]). Subscriptions are legs of the hub
//! ([`EgressLink`]): sans-IO `rtc` cores driven by one thread on one shared
//! UDP socket, whose media the hub seals itself.
//!
//! Imports inside run one way: `mod.rs` → `hub` → `media`, `rewrite`,
//! `error`; nothing here imports `server::room` (links report through the
//! leaf `server::inbox`).
//!
//! The session that created a link owns it and closes it; every task a link
//! spawns is aborted when the link is closed or dropped, and every link and
//! task is counted in [`Metrics`], so leaks show up in tests.

pub mod downlink;
pub mod downlink_gcc;
mod downlink_loss;
mod error;
mod hub;
pub mod layers;
mod media;
pub mod padding;
pub mod probe;
mod relay_ingress;
pub mod rewrite;
mod rid_layers;
pub mod topn;
mod topn_link;
pub(crate) mod wanted;

use std::net::IpAddr;
use std::sync::Arc;

use tokio::task::JoinHandle;
use webrtc::peer_connection::RTCPeerConnectionState;

pub(crate) use downlink_loss::announce as announce_downlink_loss;
pub use error::SfuError;
pub use hub::{LegCounters, LegPhase, LegSnapshot};
pub use media::{
    IngressPacket, KEYFRAME_MIN_INTERVAL, PublishedMedia, RECORDING_CAPACITY, RecordedPacket,
};
pub use relay_ingress::RelayIngress;
pub use topn_link::TopNLink;
pub(crate) use wanted::announce as announce_layers_wanted;

use super::inbox::{LinkState, SessionInbox};
use super::metrics::{GaugeGuard, Metrics};
use crate::link::{LinkError, LinkSignal, LinkSignals, PeerLink};
use crate::protocol::{IceCandidate, LinkId};

/// Builds links. One per server.
pub struct Sfu {
    ip: IpAddr,
    /// Named in candidates instead of `ip` (a 1:1 NAT), see [`Sfu::advertising`].
    public_ip: Option<IpAddr>,
    metrics: Arc<Metrics>,
    /// Started on first use; lives as long as the SFU or its last leg.
    hub: std::sync::Mutex<Option<hub::Hub>>,
    /// The next [`PublishedMedia::id`] (the hub's key for a stream).
    next_media: std::sync::atomic::AtomicU64,
}

/// Tasks of a link, aborted when it is closed or dropped.
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// A publisher's link: receives one stream.
pub struct IngressLink {
    link: PeerLink,
    media: Arc<PublishedMedia>,
    _tasks: Tasks,
    _counted: GaugeGuard,
}

impl IngressLink {
    /// Adds a trickled candidate from the client.
    pub async fn add_candidate(&self, candidate: IceCandidate) -> Result<(), SfuError> {
        self.link
            .add_candidate(candidate)
            .await
            .map_err(SfuError::Candidate)
    }

    /// Restarts ICE with the publisher's restart offer (new credentials):
    /// returns the answer, with our new credentials. The stream, its
    /// forwarding and DTLS/SRTP carry on.
    pub async fn restart_ice(&self, offer: String) -> Result<String, SfuError> {
        let current = self.link.pc().remote_description().await.map(|d| d.sdp);
        let now = current.as_deref().and_then(crate::link::ice_ufrag);
        match crate::link::ice_ufrag(&offer) {
            None => Err(SfuError::PublishOffer(LinkError::InvalidSdp(
                "the restart offer has no a=ice-ufrag".into(),
            ))),
            Some(ufrag) if Some(ufrag) == now => {
                Err(SfuError::PublishOffer(LinkError::InvalidSdp(
                    "the offer does not restart ICE: its ice-ufrag is the current one".into(),
                )))
            }
            Some(_) => self
                .link
                .answer(offer)
                .await
                .map_err(SfuError::PublishOffer),
        }
    }

    /// Stops forwarding and closes the peer connection.
    pub async fn close(self) {
        self.media.close();
        self.link.close().await;
    }
}

/// What a subscriber asked of its link.
#[derive(Debug, Clone, Copy)]
struct Want {
    /// `subscribe`'s audio and video.
    audio: bool,
    video: bool,
    /// `pause-subscription`: forward nothing, keep the link.
    paused: bool,
}

impl Want {
    fn new(audio: bool, video: bool) -> Self {
        Self {
            audio,
            video,
            paused: false,
        }
    }

    /// What the hub forwards (audio, video).
    fn forwarded(self) -> (bool, bool) {
        (self.audio && !self.paused, self.video && !self.paused)
    }
}

/// A subscriber's link: one leg of the egress hub, sending one remote stream.
pub struct EgressLink {
    hub: hub::Hub,
    leg: hub::LegId,
    media: Arc<PublishedMedia>,
    has_video: bool,
    has_audio: bool,
    /// What the subscriber wants forwarded, and whether it paused it all.
    want: std::sync::Mutex<Want>,
    /// Set by [`EgressLink::close`]; otherwise dropping closes the leg.
    closed: bool,
}

impl Drop for EgressLink {
    fn drop(&mut self) {
        if !self.closed {
            self.hub.close_soon(self.leg);
        }
    }
}

fn spawn_counted(
    metrics: &Metrics,
    future: impl std::future::Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    let guard = metrics.tasks.enter();
    tokio::spawn(async move {
        let _guard = guard;
        future.await;
    })
}

impl Sfu {
    /// An SFU binding its links to `ip`.
    pub fn new(ip: IpAddr, metrics: Arc<Metrics>) -> Self {
        Self {
            ip,
            public_ip: None,
            metrics,
            hub: std::sync::Mutex::new(None),
            next_media: std::sync::atomic::AtomicU64::new(1),
        }
    }

    /// Links name `public_ip` in their candidates instead of the bound
    /// address, ports kept (`ServerConfig::public_ip`).
    pub fn advertising(mut self, public_ip: Option<IpAddr>) -> Self {
        self.public_ip = public_ip;
        self
    }

    /// The egress hub, started on first use.
    fn hub(&self) -> Result<hub::Hub, SfuError> {
        let mut hub = self.hub.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hub) = hub.as_ref() {
            return Ok(hub.clone());
        }
        let started =
            hub::Hub::start(self.ip, self.public_ip, Arc::clone(&self.metrics)).map_err(|e| {
                SfuError::Internal(LinkError::Rtc {
                    what: "starting the egress hub",
                    detail: e.to_string(),
                })
            })?;
        *hub = Some(started.clone());
        Ok(started)
    }

    /// Every subscription leg of the egress hub with its counters (none
    /// before the hub started).
    pub async fn legs_snapshot(&self) -> Vec<LegSnapshot> {
        let hub = self.hub.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match hub {
            Some(hub) => hub.snapshot().await,
            None => Vec::new(),
        }
    }

    /// Answers a publisher's offer. Returns the link, the stream's media (to
    /// register in the room) and the SDP answer.
    pub async fn publish(
        &self,
        link_id: LinkId,
        offer: String,
        inbox: SessionInbox,
    ) -> Result<(IngressLink, Arc<PublishedMedia>, String), SfuError> {
        let hub = self.hub()?;
        let policy = crate::link::ice::IcePolicy {
            advertised_ip: self.public_ip,
            ..Default::default()
        };
        let (link, signals) = PeerLink::ingress(self.ip, &policy, &offer)
            .await
            .map_err(SfuError::Internal)?;
        let counted = self.metrics.peer_connections.enter();
        let answer = match link.answer(offer).await {
            Ok(answer) => answer,
            Err(e) => {
                link.close().await;
                return Err(SfuError::PublishOffer(e));
            }
        };
        let id = self
            .next_media
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let media = PublishedMedia::new(id, Arc::clone(&self.metrics), hub.media_input());
        media.set_ingress_link(link_id, link.pc());
        media.set_ingress_rtx(crate::link::rtx::in_sdp(&answer), link.rtx_counters());
        media.set_audio_level_ext(crate::link::audio_level::ext_id_in_sdp(&answer));
        media.set_capture_time_ext(crate::link::capture_time::ext_id_in_sdp(&answer));
        let task = spawn_counted(
            &self.metrics,
            ingress_signals(
                link_id,
                signals,
                Arc::clone(&media),
                inbox,
                Arc::clone(&self.metrics),
            ),
        );
        Ok((
            IngressLink {
                link,
                media: Arc::clone(&media),
                _tasks: Tasks(vec![task]),
                _counted: counted,
            },
            media,
            answer,
        ))
    }

    /// Creates a subscription leg for `media` and returns it with the SDP offer.
    pub async fn subscribe(
        &self,
        link_id: LinkId,
        media: &Arc<PublishedMedia>,
        stream: &crate::protocol::StreamInfo,
        want_audio: bool,
        want_video: bool,
        inbox: SessionInbox,
    ) -> Result<(EgressLink, String), SfuError> {
        let hub = self.hub()?;
        let (leg, offer) = hub
            .create(hub::CreateLeg {
                link_id,
                source: hub::LegSource::Stream(Arc::clone(media)),
                stream_label: format!("huddle-{link_id}"),
                video: stream.video.is_some(),
                audio: stream.audio,
                want_audio,
                want_video,
                inbox,
                counted: self.metrics.peer_connections.enter(),
                remote_offer: None,
                aes_cm: false,
                #[cfg(test)]
                keys_unrecognised: false,
            })
            .await?;
        Ok((
            EgressLink {
                hub,
                leg,
                media: Arc::clone(media),
                has_video: stream.video.is_some(),
                has_audio: stream.audio,
                want: std::sync::Mutex::new(Want::new(want_audio, want_video)),
                closed: false,
            },
            offer,
        ))
    }
}

impl Sfu {
    /// Answers a player's offer (WHEP) with a subscription leg for `media`:
    /// the same hub leg as [`Sfu::subscribe`], made from the other side of
    /// the negotiation. `video`/`audio` say which of the stream's tracks the
    /// offer asked for (at least one); `aes_cm` offers AES-CM SRTP too, for
    /// a player without AES-GCM (its leg then sends through its core).
    /// Returns the link and the SDP answer; forwarding starts once the leg
    /// connects.
    #[allow(clippy::too_many_arguments)]
    pub async fn play(
        &self,
        link_id: LinkId,
        media: &Arc<PublishedMedia>,
        video: bool,
        audio: bool,
        aes_cm: bool,
        offer: String,
        inbox: SessionInbox,
    ) -> Result<(EgressLink, String), SfuError> {
        let hub = self.hub()?;
        let (leg, answer) = hub
            .create(hub::CreateLeg {
                link_id,
                source: hub::LegSource::Stream(Arc::clone(media)),
                stream_label: format!("huddle-{link_id}"),
                video,
                audio,
                want_audio: audio,
                want_video: video,
                inbox,
                counted: self.metrics.peer_connections.enter(),
                remote_offer: Some(offer),
                aes_cm,
                #[cfg(test)]
                keys_unrecognised: false,
            })
            .await?;
        // The fan-out asks the publisher for a keyframe once the leg connects.
        Ok((
            EgressLink {
                hub,
                leg,
                media: Arc::clone(media),
                has_video: video,
                has_audio: audio,
                want: std::sync::Mutex::new(Want::new(audio, video)),
                closed: false,
            },
            answer,
        ))
    }
}

fn link_failed(state: RTCPeerConnectionState) -> bool {
    matches!(
        state,
        RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
    )
}

async fn ingress_signals(
    link_id: LinkId,
    mut signals: LinkSignals,
    media: Arc<PublishedMedia>,
    inbox: SessionInbox,
    metrics: Arc<Metrics>,
) {
    let mut forwarders = Tasks(Vec::new());
    while let Some(signal) = signals.recv().await {
        match signal {
            LinkSignal::Track(track) => {
                let media = Arc::clone(&media);
                forwarders
                    .0
                    .push(spawn_counted(&metrics, media.forward(track)));
            }
            LinkSignal::Candidate(c) => inbox.link_event(link_id, LinkState::Candidate(c)),
            LinkSignal::State(RTCPeerConnectionState::Connected) => {
                inbox.link_event(link_id, LinkState::Connected);
            }
            LinkSignal::State(state) if link_failed(state) => {
                inbox.link_event(link_id, LinkState::Failed);
                break;
            }
            LinkSignal::State(_) => {}
        }
    }
    // Dropping `forwarders` aborts the forwarding tasks.
}

impl EgressLink {
    fn want(&self) -> std::sync::MutexGuard<'_, Want> {
        // Plain flags: consistent even after a panic elsewhere.
        self.want.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies the subscriber's answer; forwarding starts once the leg connects.
    pub async fn apply_answer(&self, answer: String) -> Result<(), SfuError> {
        self.hub.apply_answer(self.leg, answer).await
    }

    /// Offers an ICE restart on this leg; returns the offer, to be answered
    /// with [`EgressLink::apply_answer`].
    pub async fn restart_ice(&self) -> Result<String, SfuError> {
        self.hub.restart_ice(self.leg).await
    }

    /// Which media are forwarded now (audio, video): none while paused.
    pub fn forwarding(&self) -> (bool, bool) {
        let (audio, video) = self.want().forwarded();
        (audio && self.has_audio, video && self.has_video)
    }

    /// Which media the subscriber asked for (audio, video), paused or not.
    pub fn wanted(&self) -> (bool, bool) {
        let want = *self.want();
        (want.audio && self.has_audio, want.video && self.has_video)
    }

    /// Whether the subscription is paused ([`EgressLink::set_paused`]).
    pub fn is_paused(&self) -> bool {
        self.want().paused
    }

    /// Starts/stops forwarding audio and video (while paused: once resumed).
    pub fn set_forwarding(&self, audio: bool, video: bool) {
        self.change(|w| {
            w.audio = audio;
            w.video = video;
        });
    }

    /// Pauses the subscription (nothing forwarded, the link stays up: a
    /// kiosk's standby) or resumes what it asked for, video with a keyframe.
    pub fn set_paused(&self, paused: bool) {
        self.change(|w| w.paused = paused);
    }

    fn change(&self, edit: impl FnOnce(&mut Want)) {
        let (before, after) = {
            let mut want = self.want();
            let before = want.forwarded();
            edit(&mut want);
            (before, want.forwarded())
        };
        let (audio, video) = after;
        self.hub.set_forwarding(self.leg, audio, video);
        if video && !before.1 {
            // The subscriber's decoder starts again: it needs a keyframe.
            self.media.request_keyframe();
        }
    }

    /// Asks the publisher for a keyframe on this subscriber's behalf.
    pub fn request_keyframe(&self) {
        self.media.request_keyframe();
    }

    /// Forwards simulcast layer `slot` of the stream (`protocol::layers`)
    /// from its next keyframe on, asking the publisher for one; with `auto`
    /// the hub chooses from then on, starting there (`downlink`).
    pub fn set_layer(&self, slot: u8, auto: bool) {
        let target = if auto {
            hub::LayerTarget::Auto(slot)
        } else {
            hub::LayerTarget::Slot(slot)
        };
        self.hub.set_layer(self.leg, target);
    }

    /// Adds a trickled candidate from the client.
    pub async fn add_candidate(&self, candidate: IceCandidate) -> Result<(), SfuError> {
        self.hub.add_candidate(self.leg, candidate).await
    }

    /// Stops forwarding and closes the peer connection.
    pub async fn close(mut self) {
        self.hub.close(self.leg).await;
        self.closed = true;
    }
}
