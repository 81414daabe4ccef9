//! A subscriber's top-N audio link (seed 001 `enableTopThreeAudioMode`): one
//! leg of the egress hub carrying the room's loudest talkers on
//! [`topn::SLOTS`](super::topn::SLOTS) audio tracks, and its
//! `volume-indicator` events (see [`super::topn`] for how they are picked).
//!
//! The session owns the link. It adds every audio stream of the room (but
//! its own user's) as a source, and follows `stream-added` /
//! `stream-removed` with [`TopNLink::add_source`] / [`TopNLink::remove_source`].

use std::sync::Arc;

use super::hub::{self, SourceChange, TopNLeg};
use super::topn::TopNConfig;
use super::{PublishedMedia, Sfu, SfuError};
use crate::protocol::{IceCandidate, LinkId, UserId};
use crate::server::inbox::SessionInbox;

/// A top-N leg of the egress hub. Dropping it without [`TopNLink::close`]
/// still closes the leg.
pub struct TopNLink {
    hub: hub::Hub,
    leg: hub::LegId,
    /// Set by [`TopNLink::close`].
    closed: bool,
}

impl Sfu {
    /// Creates a top-N leg (no sources yet) and returns it with its SDP offer.
    pub async fn subscribe_top_n(
        &self,
        link_id: LinkId,
        config: TopNConfig,
        inbox: SessionInbox,
    ) -> Result<(TopNLink, String), SfuError> {
        let hub = self.hub()?;
        let (leg, offer) = hub
            .create(hub::CreateLeg {
                link_id,
                source: hub::LegSource::TopN(Box::new(TopNLeg::new(config))),
                stream_label: format!("huddle-top-n-{link_id}"),
                video: false,
                audio: false,
                want_audio: true,
                want_video: false,
                inbox,
                counted: self.metrics.peer_connections.enter(),
                remote_offer: None,
                aes_cm: false,
                #[cfg(test)]
                keys_unrecognised: false,
            })
            .await?;
        Ok((
            TopNLink {
                hub,
                leg,
                closed: false,
            },
            offer,
        ))
    }
}

impl TopNLink {
    /// Applies the subscriber's answer; forwarding starts once it connects.
    pub async fn apply_answer(&self, answer: String) -> Result<(), SfuError> {
        self.hub.apply_answer(self.leg, answer).await
    }

    /// Adds a trickled candidate from the client.
    pub async fn add_candidate(&self, candidate: IceCandidate) -> Result<(), SfuError> {
        self.hub.add_candidate(self.leg, candidate).await
    }

    /// Adds a stream's audio, published by `user`, to the talkers heard.
    pub async fn add_source(&self, media: &Arc<PublishedMedia>, user: UserId) {
        self.hub
            .change_top_n_source(self.leg, SourceChange::Add(Arc::clone(media), user))
            .await;
    }

    /// Removes a stream ([`PublishedMedia::id`]) from the talkers heard.
    pub async fn remove_source(&self, media: u64) {
        self.hub
            .change_top_n_source(self.leg, SourceChange::Remove(media))
            .await;
    }

    /// Closes the leg; returns once the hub has dropped it.
    pub async fn close(mut self) {
        self.hub.close(self.leg).await;
        self.closed = true;
    }
}

impl Drop for TopNLink {
    fn drop(&mut self) {
        if !self.closed {
            self.hub.close_soon(self.leg);
        }
    }
}
