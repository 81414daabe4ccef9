//! Read-only views of the rooms for `GET /rooms` and `GET /rooms/{id}`
//! (`server::rooms_api`): copies taken under the lock, so the HTTP handler
//! can read link counters (which awaits) without holding it.

use std::sync::Arc;

use super::Rooms;
use crate::protocol::{RoomId, StreamInfo, UserInfo};
use crate::server::inbox::SessionInbox;
use crate::server::sfu::PublishedMedia;

/// One room in the list: its id and how many users and streams it holds.
#[derive(Debug, Clone)]
pub struct RoomSummary {
    /// The room.
    pub id: RoomId,
    /// Members (relays of other rooms' streamers included).
    pub users: usize,
    /// Published streams (relayed ones included).
    pub streams: usize,
}

/// One member as the inspection sees it.
pub struct InspectedUser {
    /// Who it is.
    pub info: UserInfo,
    /// Its session's inbox: the subscription legs reporting to it are its.
    pub inbox: SessionInbox,
}

/// One stream as the inspection sees it.
pub struct InspectedStream {
    /// What the room announces about it.
    pub info: StreamInfo,
    /// Its media (publish link counters, the hub's key for its legs).
    pub media: Arc<PublishedMedia>,
    /// Relayed from another room (`cross_room`): its publish link lives there.
    pub relayed: bool,
}

/// A copy of one room.
pub struct RoomInspection {
    /// Members, sorted by user id.
    pub users: Vec<InspectedUser>,
    /// Streams, sorted by stream id.
    pub streams: Vec<InspectedStream>,
}

impl Rooms {
    /// Every room, sorted by id.
    pub fn summaries(&self) -> Vec<RoomSummary> {
        let rooms = self.lock();
        let mut list: Vec<_> = rooms
            .iter()
            .map(|(id, room)| RoomSummary {
                id: id.clone(),
                users: room.members.len(),
                streams: room.streams.len(),
            })
            .collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        list
    }

    /// A copy of `room_id`'s members and streams; `None` if no such room.
    pub fn inspect(&self, room_id: &RoomId) -> Option<RoomInspection> {
        let rooms = self.lock();
        let room = rooms.get(room_id)?;
        Some(RoomInspection {
            users: room
                .members
                .values()
                .map(|m| InspectedUser {
                    info: m.info.clone(),
                    inbox: m.inbox.clone(),
                })
                .collect(),
            streams: room
                .streams
                .values()
                .map(|s| InspectedStream {
                    info: s.info.clone(),
                    media: Arc::clone(&s.media),
                    relayed: s.relayed,
                })
                .collect(),
        })
    }
}
