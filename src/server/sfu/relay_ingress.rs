//! The ingress of a stream relayed from another node (issue 15 §2): this
//! node is the *player* of the owner node's stream (it offers `recvonly`
//! audio and video to the owner's WHEP endpoint, `server::cluster::relay`
//! carries the offer and answer), and what arrives is handed to this node's
//! egress hub exactly as a local publisher's packets are: the same
//! [`PublishedMedia`] forwarder, so RTP goes on as it came (no re-encode)
//! and local subscribers' keyframe requests become PLIs on this link, which
//! the owner's hub turns into a PLI to the publisher.
//!
//! The stream's media here ([`Sfu::relay_media`]) and its link
//! ([`RelayIngress`]) live apart: the media lives as long as the stream is
//! mirrored (local subscription legs hang on it), a link only while some
//! local leg watches and until it fails; a new link feeds the same media,
//! so local subscribers get video again without subscribing again (their
//! legs' rewriters see a new source SSRC and carry on, `sfu::rewrite`).
//!
//! A layered stream comes over one link per layer (a WHEP play of that
//! layer): each link's video is pinned to its layer slot here, and of the
//! links' identical audio only one link's is forwarded
//! ([`RelayIngress::carry_audio`]).
//!
//! Invariant: at most one open [`RelayIngress`] per relayed stream (per
//! layer of a layered one) per node (`cluster::relay` closes one before it
//! opens the next).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};

use webrtc::peer_connection::RTCPeerConnectionState;

use super::media::RelayedTrack;
use super::{PublishedMedia, Sfu, SfuError, Tasks, link_failed, spawn_counted};
use crate::link::{LinkError, LinkSignal, LinkSignals, PeerLink};

/// One relay link from the owner node, feeding a relayed stream's media.
pub struct RelayIngress {
    link: PeerLink,
    media: Arc<PublishedMedia>,
    /// Set when the link failed or closed under us (the media stays open).
    failed: Arc<AtomicBool>,
    /// Whether its audio is forwarded (one link of a layered stream's).
    audio: Arc<AtomicBool>,
    _tasks: Tasks,
}

impl Sfu {
    /// The local media of a relayed stream: what the room's stream entry
    /// holds and local subscribers' legs read; links feed it
    /// ([`Sfu::relay_ingress`]). Closing it ends the local legs.
    pub fn relay_media(&self) -> Result<Arc<PublishedMedia>, SfuError> {
        let hub = self.hub()?;
        let id = self
            .next_media
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(PublishedMedia::new(
            id,
            Arc::clone(&self.metrics),
            hub.media_input(),
        ))
    }

    /// Builds one relay link into `media`: a `recvonly` audio + video offer
    /// (candidates gathered) for the owner node's WHEP endpoint; packets
    /// flow into `media` once the answer is applied. `layer`: the layer
    /// slot here of the video the link plays (one link per layer of a
    /// layered stream); such a link's audio is forwarded only once
    /// [`RelayIngress::carry_audio`] says so, a link without a layer's at
    /// once.
    pub async fn relay_ingress(
        &self,
        media: &Arc<PublishedMedia>,
        layer: Option<u8>,
    ) -> Result<(RelayIngress, String), SfuError> {
        let policy = crate::link::ice::IcePolicy {
            advertised_ip: self.public_ip,
            ..Default::default()
        };
        let (link, signals) = PeerLink::with_policy(self.ip, &policy)
            .await
            .map_err(SfuError::Internal)?;
        for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
            let init = RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                streams: vec![],
                send_encodings: vec![],
            };
            if let Err(e) = link.pc().add_transceiver_from_kind(kind, Some(init)).await {
                link.close().await;
                return Err(SfuError::Internal(LinkError::Rtc {
                    what: "adding a relay transceiver",
                    detail: e.to_string(),
                }));
            }
        }
        let offer = match link.create_offer().await {
            Ok(offer) => offer,
            Err(e) => {
                link.close().await;
                return Err(SfuError::Internal(e));
            }
        };
        let failed = Arc::new(AtomicBool::new(false));
        let audio = Arc::new(AtomicBool::new(layer.is_none()));
        let relayed = RelayedTrack {
            layer,
            audio: Arc::clone(&audio),
        };
        let task = spawn_counted(
            &self.metrics,
            relay_signals(
                signals,
                Arc::clone(media),
                relayed,
                Arc::clone(&failed),
                Arc::clone(&self.metrics),
            ),
        );
        Ok((
            RelayIngress {
                link,
                media: Arc::clone(media),
                failed,
                audio,
                _tasks: Tasks(vec![task]),
            },
            offer,
        ))
    }
}

impl RelayIngress {
    /// Applies the owner node's answer; media flows once ICE connects.
    pub async fn apply_answer(&self, answer: String) -> Result<(), SfuError> {
        self.media
            .set_audio_level_ext(crate::link::audio_level::ext_id_in_sdp(&answer));
        self.media
            .set_capture_time_ext(crate::link::capture_time::ext_id_in_sdp(&answer));
        self.link
            .apply_answer(answer)
            .await
            .map_err(SfuError::PublishOffer)
    }

    /// Forwards this link's audio (`true`) or drops it: of a layered
    /// stream's links, one carries the stream's audio.
    pub fn carry_audio(&self, carry: bool) {
        self.audio.store(carry, Ordering::Release);
    }

    /// Whether this link's audio is forwarded.
    pub fn carries_audio(&self) -> bool {
        self.audio.load(Ordering::Acquire)
    }

    /// Whether the link failed or closed under us (ICE or DTLS failure, ICE
    /// disconnected, the owner closed it): it carries nothing any more.
    pub fn is_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// What arrived on the link so far: every byte of the transport (RTP,
    /// RTCP, ICE, DTLS), and whether any RTP did. The relay's watchdog
    /// (`cluster::relay`, `Heard`) tells a path that died silently from
    /// these: once RTP came, the owner's hub sends a sender report every
    /// second for as long as the link lives, whatever its publisher sends.
    pub async fn received(&self) -> (u64, bool) {
        let counters = crate::link::counters::read(self.link.pc().as_ref()).await;
        let rtp = counters.inbound.iter().any(|s| s.packets > 0);
        (counters.bytes_received, rtp)
    }

    /// Closes the link; the media stays open (local legs carry on, waiting
    /// for the next link's packets).
    pub async fn close(self) {
        self.link.close().await;
    }
}

/// Hands the arriving tracks to the forwarder; flags the link failed when it
/// fails, so the relay sees it ([`RelayIngress::is_failed`]).
async fn relay_signals(
    mut signals: LinkSignals,
    media: Arc<PublishedMedia>,
    relayed: RelayedTrack,
    failed: Arc<AtomicBool>,
    metrics: Arc<super::Metrics>,
) {
    let mut forwarders = Tasks(Vec::new());
    while let Some(signal) = signals.recv().await {
        match signal {
            LinkSignal::Track(track) => {
                let media = Arc::clone(&media);
                forwarders.0.push(spawn_counted(
                    &metrics,
                    media.forward_relayed(track, relayed.clone()),
                ));
            }
            // Disconnected: nothing (not even an ICE keepalive answer) came
            // for the agent's disconnected timeout (5 s). A client's link
            // may come back from that; a relay link is reopened at once
            // instead of waiting the 25 s more ICE takes to fail it.
            LinkSignal::State(state)
                if link_failed(state) || state == RTCPeerConnectionState::Disconnected =>
            {
                failed.store(true, Ordering::Release);
                break;
            }
            // Candidates are in the offer (gathered before it was sent).
            LinkSignal::Candidate(_) | LinkSignal::State(_) => {}
        }
    }
    // The signals ended (the link closed): nothing comes any more.
    failed.store(true, Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::metrics::Metrics;
    use std::time::{Duration, Instant};

    /// A link whose other side goes away is flagged failed (what the
    /// mirror tends on), and the stream's media here outlives it: a second
    /// link feeds the same media, so local legs never see the stream end.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_link_whose_owner_goes_away_is_flagged_and_the_media_outlives_it() {
        let ip = std::net::IpAddr::from([127, 0, 0, 1]);
        let sfu = Sfu::new(ip, Arc::new(Metrics::default()));
        let media = sfu.relay_media().expect("relay media");
        let (first, offer) = sfu.relay_ingress(&media, None).await.expect("a link");
        assert!(offer.contains("a=recvonly"), "{offer}");
        // The owner's side: a peer that answers, connects, then goes away.
        let (owner, _owner_signals) = PeerLink::new(ip).await.expect("the owner's side");
        let answer = owner.answer(offer).await.expect("an answer");
        first
            .apply_answer(answer)
            .await
            .expect("the answer applies");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !first.link.ice_connected() {
            assert!(Instant::now() < deadline, "the link never connected");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!first.is_failed());
        owner.close().await;
        let gone = Instant::now();
        let deadline = gone + Duration::from_secs(60);
        while !first.is_failed() {
            assert!(
                Instant::now() < deadline,
                "the link is never flagged failed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!(
            "relay link flagged failed {:?} after its owner's side closed",
            gone.elapsed()
        );
        assert!(!media.is_closed(), "the media outlives its link");
        first.close().await;
        let (second, _) = sfu.relay_ingress(&media, None).await.expect("another link");
        assert!(!second.is_failed());
        second.close().await;
        assert!(!media.is_closed(), "closing a link leaves the media open");
        media.close();
    }
}
