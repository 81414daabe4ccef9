//! The ingress of a stream relayed from another node (issue 15 §2): this
//! node is the *player* of the owner node's stream (it offers `recvonly`
//! audio and video to the owner's WHEP endpoint, `server::cluster::relay`
//! carries the offer and answer), and what arrives is handed to this node's
//! egress hub exactly as a local publisher's packets are: the same
//! [`PublishedMedia`] forwarder, so RTP goes on as it came (no re-encode)
//! and local subscribers' keyframe requests become PLIs on this link, which
//! the owner's hub turns into a PLI to the publisher.
//!
//! Invariant: one [`RelayIngress`] per relayed stream per node; its media
//! lives exactly as long as it (closing or dropping it closes the media, so
//! the local subscription legs of the stream end).

use std::sync::Arc;

use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};

use super::{PublishedMedia, Sfu, SfuError, Tasks, link_failed, spawn_counted};
use crate::link::{LinkError, LinkSignal, LinkSignals, PeerLink};

/// One relayed stream's link from the owner node and its local media.
pub struct RelayIngress {
    link: PeerLink,
    media: Arc<PublishedMedia>,
    _tasks: Tasks,
}

impl Sfu {
    /// Builds the relay link of one stream: a `recvonly` audio + video
    /// offer (candidates gathered) for the owner node's WHEP endpoint, and
    /// the media that local subscribers read once the answer is applied.
    pub async fn relay_ingress(&self) -> Result<(RelayIngress, String), SfuError> {
        let hub = self.hub()?;
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
        let id = self
            .next_media
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let media = PublishedMedia::new(id, Arc::clone(&self.metrics), hub.media_input());
        let task = spawn_counted(
            &self.metrics,
            relay_signals(signals, Arc::clone(&media), Arc::clone(&self.metrics)),
        );
        Ok((
            RelayIngress {
                link,
                media,
                _tasks: Tasks(vec![task]),
            },
            offer,
        ))
    }
}

impl RelayIngress {
    /// The stream's media on this node (what the room's stream entry holds).
    pub fn media(&self) -> &Arc<PublishedMedia> {
        &self.media
    }

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

    /// Whether the link failed or closed under us.
    pub fn is_closed(&self) -> bool {
        self.media.is_closed()
    }

    /// Stops forwarding (local legs of the stream end) and closes the link.
    pub async fn close(self) {
        self.media.close();
        self.link.close().await;
    }
}

/// Hands the arriving tracks to the forwarder; closes the media when the
/// link fails, so the relay sees it ([`RelayIngress::is_closed`]).
async fn relay_signals(
    mut signals: LinkSignals,
    media: Arc<PublishedMedia>,
    metrics: Arc<super::Metrics>,
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
            LinkSignal::State(state) if link_failed(state) => {
                media.close();
                break;
            }
            // Candidates are in the offer (gathered before it was sent).
            LinkSignal::Candidate(_) | LinkSignal::State(_) => {}
        }
    }
}
