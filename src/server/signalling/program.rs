//! The session's side of the broadcast console (issue 14 §2): the director
//! requests `set-program`, `remove-user` and `dismiss-room`.
//!
//! Each checks, in this order: the session joined (90100001), its
//! signature in force carries the director grant (90100022), then the
//! request against the room (`room/program.rs`). A refused request changes
//! nothing; the room and everyone's media carry on.

use super::{RequestError, Session};
use crate::auth::Grant;
use crate::protocol::{Program, Reply, UserId};
use crate::server::room::DirectorError;

impl Session {
    /// The caller's room and user id if it is a director, else 90100022.
    fn director(
        &self,
        what: &'static str,
    ) -> Result<(crate::protocol::RoomId, UserId), RequestError> {
        let joined = self.joined()?;
        if joined.grant != Grant::Director {
            return Err(DirectorError::NotDirector(what).into());
        }
        crate::server::cluster::relay::check_director(&self.shared, &joined.room_id)?;
        Ok((joined.room_id.clone(), joined.me.user_id.clone()))
    }

    /// `set-program`: the room's program becomes `program`, announced to all.
    pub(super) fn set_program(&mut self, program: Program) -> Result<Reply, RequestError> {
        let (room_id, me) = self.director("set the program")?;
        self.shared
            .rooms
            .set_program(&room_id, self.id, &me, program.clone())?;
        tracing::info!(
            session = self.id.0,
            layout = program.layout.name(),
            streams = ?program.streams,
            "program set"
        );
        Ok(Reply::Ok)
    }

    /// `remove-user`: `user_id` leaves with reason 9.
    pub(super) fn remove_user(&mut self, user_id: UserId) -> Result<Reply, RequestError> {
        let (room_id, _) = self.director("remove a user")?;
        self.shared.rooms.remove_user(&room_id, self.id, &user_id)?;
        tracing::info!(session = self.id.0, user = %user_id, "removed a user");
        Ok(Reply::Ok)
    }

    /// `dismiss-room`: everyone else is kicked with reason 10 now; the
    /// caller's own session ends the same way once this reply is out
    /// (`on_frame`).
    pub(super) fn dismiss_room(&mut self) -> Result<Reply, RequestError> {
        let (room_id, _) = self.director("dismiss the room")?;
        self.shared.rooms.dismiss(&room_id, self.id)?;
        tracing::info!(session = self.id.0, room = %room_id, "dismissed the room");
        Ok(Reply::Ok)
    }
}
