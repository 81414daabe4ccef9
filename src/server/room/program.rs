//! A director's powers over a room (issue 14 §2): its program, removing a
//! user (leave reason 9) and dismissing the room (reason 10).
//!
//! Same discipline as the rest of [`Rooms`]: change under the lock, collect
//! what to tell whom in an [`Outbox`], deliver after. Who may call these is
//! the session's business (its signature's [`Grant`](crate::auth::Grant));
//! here the room only keeps its invariants: the program names only streams
//! published in the room (a stream that goes takes itself off air, announced
//! like any change), and a removed user is gone, with its streams, before
//! anyone hears of it.

use super::{Outbox, Room, RoomError, Rooms, SessionId};
use crate::protocol::{
    ErrorCode, Event, LeaveReason, Program, ProgramError, RoomId, ServerMessage, StreamId, UserId,
};
use crate::server::inbox::SessionEvent;

/// Why a director's request was refused. None is retryable as sent.
#[derive(Debug, thiserror::Error)]
pub enum DirectorError {
    /// The caller's signature carries no director grant (90100022).
    #[error("only a director may {0}: join with a director signature")]
    NotDirector(&'static str),
    /// The program does not fit its layout, names a stream twice (90000005),
    /// or names a stream not published in the room (90100213).
    #[error(transparent)]
    Program(#[from] ProgramError),
    /// No such user in the room (90100222, "kick user fail").
    #[error("user {0} is not in this room")]
    NoSuchUser(UserId),
    /// A director asked to remove itself (90100001): leave instead.
    #[error("cannot remove yourself; leave the room instead")]
    RemoveSelf,
    /// The caller is no longer in its room (90100001).
    #[error(transparent)]
    Room(#[from] RoomError),
}

impl DirectorError {
    /// The seed error code for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            DirectorError::NotDirector(_) => ErrorCode::RoleNoPermission,
            DirectorError::Program(ProgramError::UnknownStream(_)) => {
                ErrorCode::InvalidSubscribedInfo
            }
            DirectorError::Program(_) => ErrorCode::InvalidParameter,
            DirectorError::NoSuchUser(_) => ErrorCode::KickUserFail,
            DirectorError::RemoveSelf => ErrorCode::InvalidOperation,
            DirectorError::Room(e) => e.code(),
        }
    }
}

impl Room {
    /// Queues `event` for every member, the caller included.
    pub(super) fn broadcast_all(&self, event: &Event, out: &mut Outbox) {
        for member in self.members.values() {
            out.push(
                member.inbox.clone(),
                SessionEvent::Send(Box::new(ServerMessage::Event {
                    event: event.clone(),
                })),
            );
        }
    }

    /// Whether `session` is still the member it joined as.
    fn has_session(&self, session: SessionId) -> bool {
        self.members.values().any(|m| m.session == session)
    }
}

impl Rooms {
    /// Puts `program` on air and tells every member (`program-changed`),
    /// after checking it against the room's streams. Setting the program the
    /// room already has announces nothing.
    pub fn set_program(
        &self,
        room_id: &RoomId,
        session: SessionId,
        by: &UserId,
        program: Program,
    ) -> Result<(), DirectorError> {
        let mut out = Outbox::default();
        {
            let mut rooms = self.lock();
            let room = rooms.get_mut(room_id).ok_or(RoomError::NotJoined)?;
            if !room.has_session(session) {
                return Err(RoomError::NotJoined.into());
            }
            program.check(|id| room.streams.contains_key(&id))?;
            if room.program == program {
                return Ok(());
            }
            room.program = program.clone();
            let event = Event::ProgramChanged {
                program,
                by: Some(by.clone()),
            };
            room.broadcast_all(&event, &mut out);
        }
        out.deliver();
        Ok(())
    }

    /// `gone` is no longer published: if it was on air, the program loses it
    /// and everyone hears of the new one (no `by`).
    pub(super) fn take_off_air(room: &mut Room, gone: StreamId, out: &mut Outbox) {
        if let Some(program) = room.program.without(gone) {
            room.program = program.clone();
            room.broadcast_all(&Event::ProgramChanged { program, by: None }, out);
        }
    }

    /// Removes `user_id` from the room at a director's request: its streams
    /// are removed and announced, the others see it leave with reason 9, and
    /// its session is kicked with reason 9 (it tells its client
    /// `client-banned`).
    pub fn remove_user(
        &self,
        room_id: &RoomId,
        session: SessionId,
        user_id: &UserId,
    ) -> Result<(), DirectorError> {
        let mut out = Outbox::default();
        {
            let mut rooms = self.lock();
            let room = rooms.get_mut(room_id).ok_or(RoomError::NotJoined)?;
            if !room.has_session(session) {
                return Err(RoomError::NotJoined.into());
            }
            let Some(target) = room.members.get(user_id) else {
                return Err(DirectorError::NoSuchUser(user_id.clone()));
            };
            if target.session == session {
                return Err(DirectorError::RemoveSelf);
            }
            let Some(target) = room.members.remove(user_id) else {
                return Err(DirectorError::NoSuchUser(user_id.clone()));
            };
            out.kick(target.inbox.clone(), LeaveReason::UserRemoved);
            Self::remove_streams_of(room, target.session, &mut out);
            room.broadcast(
                target.session,
                &Event::PeerLeave {
                    user_id: user_id.clone(),
                    reason: LeaveReason::UserRemoved,
                },
                &mut out,
            );
        }
        out.deliver();
        Ok(())
    }

    /// Ends the room: every member but the caller is kicked with reason 10
    /// (the caller's session ends itself the same way after replying) and
    /// every stream closed. The room is gone at once: a join
    /// after this starts a new, empty room.
    pub fn dismiss(&self, room_id: &RoomId, session: SessionId) -> Result<(), DirectorError> {
        let mut out = Outbox::default();
        {
            let mut rooms = self.lock();
            let room = rooms.get(room_id).ok_or(RoomError::NotJoined)?;
            if !room.has_session(session) {
                return Err(RoomError::NotJoined.into());
            }
            let Some(room) = rooms.remove(room_id) else {
                return Err(RoomError::NotJoined.into());
            };
            for stream in room.streams.values() {
                stream.close_media();
            }
            // The caller ends itself once its reply is out (its session's
            // flow), so the reply cannot lose the race with its own kick.
            for member in room.members.values().filter(|m| m.session != session) {
                out.kick(member.inbox.clone(), LeaveReason::RoomDismissed);
            }
        }
        out.deliver();
        Ok(())
    }
}
