//! What a node relay's mirror (`cluster::relay`) needs of the room registry
//! besides joins, leaves and streams: who is in a room (to tell its local
//! members from the mirrored ones), the owner's program as it changes, and
//! ending a mirrored room for everyone when its owner node is gone.

use super::{Outbox, Rooms};
use crate::protocol::{Event, LeaveReason, Program, RoomId, UserId};
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

    /// The owner node's program, as its `joined` or `program-changed`
    /// brought it: put on air here unchecked (the owner checked it, and
    /// names the same stream ids) and announced to every member as the
    /// owner announced it, unless the room has it already (a stream that
    /// went took itself off air here first, `take_off_air`, just as on the
    /// owner). Nothing for a room not here.
    pub(crate) fn mirror_program(&self, room_id: &RoomId, program: Program, by: Option<UserId>) {
        let mut out = Outbox::default();
        {
            let mut rooms = self.lock();
            let Some(room) = rooms.get_mut(room_id) else {
                return;
            };
            if room.program == program {
                return;
            }
            room.program = program.clone();
            room.broadcast_all(&Event::ProgramChanged { program, by }, &mut out);
        }
        out.deliver();
    }
}
