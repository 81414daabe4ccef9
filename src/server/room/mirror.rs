//! What a node relay's mirror (`cluster::relay`) needs of the room registry
//! besides joins, leaves and streams: who is in a room (to tell its local
//! members from the mirrored ones), and ending a mirrored room for everyone
//! when its owner node is gone.

use super::{Outbox, Rooms};
use crate::protocol::{LeaveReason, RoomId};
use crate::server::inbox::SessionId;

impl Rooms {
    /// The sessions of the room's members (none for a room not here).
    pub(crate) fn member_sessions(&self, room_id: &RoomId) -> Vec<SessionId> {
        self.lock()
            .get(room_id)
            .map(|room| room.members.values().map(|m| m.session).collect())
            .unwrap_or_default()
    }

    /// Removes the room and tells every member to leave with `reason` (their
    /// sessions end; clients join again through routing).
    pub(crate) fn kick_all(&self, room_id: &RoomId, reason: LeaveReason) {
        let mut out = Outbox::default();
        {
            let mut rooms = self.lock();
            let Some(room) = rooms.remove(room_id) else {
                return;
            };
            for stream in room.streams.values() {
                stream.close_media();
            }
            for member in room.members.values() {
                out.kick(member.inbox.clone(), reason);
            }
        }
        out.deliver();
    }
}
