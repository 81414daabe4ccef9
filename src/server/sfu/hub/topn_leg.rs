//! What a top-N leg adds to a leg: its sources (every audio stream of the
//! room but the subscriber's own), the mix that picks who is heard
//! ([`crate::server::sfu::topn`]), each slot's timeline, and the
//! `volume-indicator` it sends its session.
//!
//! A top-N leg offers [`SLOTS`] audio tracks and no video. It sits in the
//! fan-out audio list of every source while it is `Connected` (like any leg:
//! see `fanout`), so every source's packets reach [`TopNLeg::route`], which
//! drops those of talkers without a slot. Sources come and go by
//! [`SourceChange`] commands from the subscriber's session, which follows the
//! room's `stream-added`/`stream-removed`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use crate::protocol::{Event, ServerMessage, UserId, UserVolume};
use crate::server::inbox::{SessionEvent, SessionInbox};
use crate::server::sfu::media::PublishedMedia;
use crate::server::sfu::topn::{Routed, SLOTS, SlotClock, TopNConfig, TopNMix};

/// A change of a top-N leg's sources.
pub enum SourceChange {
    /// A stream's audio joins the mix, published by this user.
    Add(Arc<PublishedMedia>, UserId),
    /// A stream ([`PublishedMedia::id`]) leaves the mix.
    Remove(u64),
}

/// The top-N part of a leg.
pub struct TopNLeg {
    mix: TopNMix,
    /// The sources' media, by id (to join their fan-out lists on connect).
    media: BTreeMap<u64, Arc<PublishedMedia>>,
    clocks: [SlotClock; SLOTS],
}

impl TopNLeg {
    /// A top-N leg's state, without sources yet.
    pub fn new(config: TopNConfig) -> Self {
        Self {
            mix: TopNMix::new(config),
            media: BTreeMap::new(),
            clocks: Default::default(),
        }
    }

    /// Applies a change; returns the media to add to the fan-out (a new
    /// source), or the id to remove from it.
    pub fn change(&mut self, change: SourceChange) -> Result<Arc<PublishedMedia>, u64> {
        match change {
            SourceChange::Add(media, user) => {
                self.mix.add_source(media.id(), user);
                self.media.insert(media.id(), Arc::clone(&media));
                Ok(media)
            }
            SourceChange::Remove(id) => {
                self.mix.remove_source(id);
                self.media.remove(&id);
                Err(id)
            }
        }
    }

    /// The sources' media.
    pub fn sources(&self) -> impl Iterator<Item = &Arc<PublishedMedia>> {
        self.media.values()
    }

    /// Where a packet of `media` goes, and its egress timestamp on that
    /// slot's timeline (see [`SlotClock`]).
    pub fn route(
        &mut self,
        media: u64,
        level: Option<u8>,
        timestamp: u32,
        now: Instant,
    ) -> Option<(Routed, u32)> {
        let routed = self.mix.on_packet(media, level, now)?;
        let clock = self.clocks.get_mut(routed.slot)?;
        Some((routed, clock.map(timestamp, routed.switched, now)))
    }

    /// Sends `volume-indicator` to the session when one is due.
    pub fn indicate(&mut self, now: Instant, inbox: &SessionInbox) {
        let Some(speakers) = self.mix.indicator(now) else {
            return;
        };
        let event = Event::VolumeIndicator {
            user_volume_infos: speakers
                .into_iter()
                .map(|(user_id, volume)| UserVolume { user_id, volume })
                .collect(),
        };
        // A full inbox gets its session kicked by the room's next message;
        // a lost indicator is replaced 500 ms later.
        inbox
            .try_send(SessionEvent::Send(Box::new(ServerMessage::Event { event })))
            .ok();
    }
}
