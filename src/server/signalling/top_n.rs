//! The session's side of top-N audio (seed `enableTopThreeAudioMode`,
//! `volume-indicator`): the `enable-top-n-audio` request, and keeping the
//! link's sources in step with the room.
//!
//! A session holds at most one top-N link. Its sources are every audio
//! stream of the room not published by the session's own user: the streams
//! there when it is enabled, then each `stream-added` / `stream-removed` the
//! room sends this session (they pass through [`Session::follow_top_n`]
//! before going to the client, so the link and the client see the same room).
//! Adding a source twice changes nothing, so a stream that is both in the
//! snapshot and announced right after is harmless.

use std::collections::BTreeMap;

use super::{RequestError, Session};
use crate::protocol::{Event, LinkId, Reply, ServerMessage, StreamId, StreamInfo};
use crate::server::sfu::TopNLink;
use crate::server::sfu::topn::TopNConfig;

/// The session's top-N link and the sources it was given.
pub(super) struct TopN {
    pub(super) link_id: LinkId,
    pub(super) link: TopNLink,
    /// Stream → the hub's media id of it (`stream-removed` comes after the
    /// room forgot the stream).
    sources: BTreeMap<StreamId, u64>,
}

impl Session {
    /// `enable-top-n-audio`: `true` creates the link (an offer for the
    /// client) with the room's audio streams as sources; `false` closes it.
    pub(super) async fn enable_top_n(&mut self, enable: bool) -> Result<Reply, RequestError> {
        let joined = self.joined()?;
        if !enable {
            if let Some(top_n) = self.top_n.take() {
                top_n.link.close().await;
            }
            return Ok(Reply::Ok);
        }
        if self.top_n.is_some() {
            return Err(RequestError::InvalidOperation(
                "top-N audio is already enabled; disable it first".into(),
            ));
        }
        let (room_id, me) = (joined.room_id.clone(), joined.me.user_id.clone());
        let link_id = self.shared.next_link_id();
        let (link, sdp) = self
            .shared
            .sfu
            .subscribe_top_n(link_id, TopNConfig::default(), self.inbox_tx.clone())
            .await?;
        let mut top_n = TopN {
            link_id,
            link,
            sources: BTreeMap::new(),
        };
        let streams = self
            .shared
            .rooms
            .snapshot(&room_id, &me, self.id)
            .map(|(_, outcome)| outcome.streams)
            .unwrap_or_default();
        for stream in streams.iter().filter(|s| s.audio && s.user_id != me) {
            self.add_top_n_source(&mut top_n, stream).await;
        }
        self.top_n = Some(top_n);
        Ok(Reply::TopNOffer { link_id, sdp })
    }

    async fn add_top_n_source(&self, top_n: &mut TopN, stream: &StreamInfo) {
        let Some(joined) = &self.joined else { return };
        // Gone already: its `stream-removed` is on its way.
        if let Ok((info, media)) = self.shared.rooms.stream(&joined.room_id, stream.stream_id) {
            top_n.link.add_source(&media, info.user_id).await;
            top_n.sources.insert(stream.stream_id, media.id());
        }
    }

    /// Follows the room's streams with the top-N link's sources: called with
    /// every message the room sends this session, before the client gets it.
    pub(super) async fn follow_top_n(&mut self, message: &ServerMessage) {
        let Some(mut top_n) = self.top_n.take() else {
            return;
        };
        match message {
            ServerMessage::Event {
                event: Event::StreamAdded { stream },
            } if stream.audio
                && self
                    .joined
                    .as_ref()
                    .is_some_and(|j| j.me.user_id != stream.user_id) =>
            {
                self.add_top_n_source(&mut top_n, stream).await;
            }
            ServerMessage::Event {
                event: Event::StreamRemoved { stream_id, .. },
            } => {
                if let Some(media) = top_n.sources.remove(stream_id) {
                    top_n.link.remove_source(media).await;
                }
            }
            _ => {}
        }
        self.top_n = Some(top_n);
    }

    /// The top-N link, if `link_id` is it.
    pub(super) fn top_n_link(&self, link_id: LinkId) -> Option<&TopNLink> {
        self.top_n
            .as_ref()
            .filter(|t| t.link_id == link_id)
            .map(|t| &t.link)
    }

    /// Drops the top-N link if `link_id` is it (it failed); returns whether.
    pub(super) async fn drop_top_n(&mut self, link_id: LinkId) -> bool {
        if self.top_n_link(link_id).is_none() {
            return false;
        }
        if let Some(top_n) = self.top_n.take() {
            top_n.link.close().await;
        }
        true
    }
}
