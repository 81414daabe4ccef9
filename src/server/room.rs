//! The room registry: who is in which room and which streams they publish.
//!
//! One `std::sync::Mutex` guards all rooms. It is never held across an `.await`:
//! every method takes the lock, changes the maps, collects the messages to send,
//! and delivers them with `try_send` after the change is complete. Delivery never
//! blocks, so a slow client can't stall a room; a client whose inbox is full is
//! told to close (its socket is behind by
//! [`SESSION_INBOX_CAPACITY`](super::inbox::SESSION_INBOX_CAPACITY) messages).
//!
//! Invariants: a room exists iff it has a member; a stream belongs to exactly one
//! member of the same room, and is removed with it. Members are keyed by user id
//! but owned by a [`SessionId`], so a session that was replaced by a newer one with
//! the same user id can never remove its successor.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

mod program;

pub use program::DirectorError;
pub(crate) mod cross_room;
pub mod inspect;
mod mirror;

use super::inbox::{Refused, SessionEvent, SessionId, SessionInbox};
use super::sfu::PublishedMedia;
use crate::protocol::{
    ErrorCode, Event, LeaveReason, Program, Role, RoomId, ServerMessage, StreamId, StreamInfo,
    UserId, UserInfo,
};

struct Member {
    session: SessionId,
    info: UserInfo,
    inbox: SessionInbox,
}

struct PublishedStream {
    info: StreamInfo,
    owner: SessionId,
    media: Arc<PublishedMedia>,
    /// A stream relayed from another room (`cross_room`): its media belongs
    /// to the publisher's own room, so removing it here must not close it.
    relayed: bool,
}

impl PublishedStream {
    /// Ends the media with the stream, unless it is only relayed here.
    fn close_media(&self) {
        if !self.relayed {
            self.media.close();
        }
    }
}

#[derive(Default)]
struct Room {
    members: BTreeMap<UserId, Member>,
    streams: BTreeMap<StreamId, PublishedStream>,
    /// What is on air (`program.rs`); only ever names streams in `streams`.
    program: Program,
}

impl Room {
    /// Queues `message` for every member except `except`.
    fn broadcast(&self, except: SessionId, event: &Event, out: &mut Outbox) {
        for member in self.members.values().filter(|m| m.session != except) {
            out.push(
                member.inbox.clone(),
                SessionEvent::Send(Box::new(ServerMessage::Event {
                    event: event.clone(),
                })),
            );
        }
    }
}

/// Messages collected under the lock, delivered after it is released.
#[derive(Default)]
struct Outbox {
    events: Vec<(SessionInbox, SessionEvent)>,
    kicks: Vec<(SessionInbox, LeaveReason)>,
}

impl Outbox {
    fn push(&mut self, to: SessionInbox, event: SessionEvent) {
        self.events.push((to, event));
    }

    fn kick(&mut self, to: SessionInbox, reason: LeaveReason) {
        self.kicks.push((to, reason));
    }

    fn deliver(self) {
        for (inbox, reason) in self.kicks {
            inbox.kick(reason);
        }
        for (inbox, event) in self.events {
            if let Err(Refused::Full) = inbox.try_send(event) {
                // The session is a full inbox behind its room: end it. Its
                // teardown removes it from the room and tells the others.
                tracing::warn!("session inbox full; closing the slow session");
                inbox.kick(LeaveReason::ServerException);
            }
            // A closed inbox means the session already ended: nothing to tell it.
        }
    }
}

/// What a successful join returns.
#[derive(Debug)]
pub struct JoinOutcome {
    /// Everyone else in the room, sorted by user id.
    pub users: Vec<UserInfo>,
    /// Streams published in the room, sorted by id.
    pub streams: Vec<StreamInfo>,
    /// What is on air.
    pub program: Program,
}

/// Why a room operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    /// The room is at its member limit. Retry later.
    #[error("room {room} is full ({limit} users)")]
    RoomFull {
        /// The room.
        room: RoomId,
        /// The limit.
        limit: usize,
    },
    /// The server is at its room limit. Retry later.
    #[error("the server holds its maximum of {0} rooms")]
    TooManyRooms(usize),
    /// No such stream in the caller's room. Not retryable.
    #[error("stream {0} does not exist in this room")]
    NoSuchStream(StreamId),
    /// The stream is not the caller's. Not retryable.
    #[error("stream {0} is not yours")]
    NotOwner(StreamId),
    /// The caller is no longer in its room (it was replaced). Not retryable.
    #[error("not in a room")]
    NotJoined,
    /// A cross-room relay into a room where the user already is (seed
    /// RTC.32000033, "Do not join the same room repeatedly"). Not retryable.
    #[error("user {user} is already in room {room}")]
    AlreadyInRoom {
        /// The room.
        room: RoomId,
        /// The user.
        user: UserId,
    },
}

impl RoomError {
    /// The seed error code for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            RoomError::RoomFull { .. } => ErrorCode::OverloadRoomCapacity,
            RoomError::TooManyRooms(_) => ErrorCode::NoSfuResource,
            RoomError::NoSuchStream(_) => ErrorCode::InvalidSubscribedInfo,
            RoomError::NotOwner(_) => ErrorCode::InvalidOperation,
            RoomError::NotJoined => ErrorCode::InvalidOperation,
            RoomError::AlreadyInRoom { .. } => ErrorCode::AlreadyJoined,
        }
    }
}

/// All rooms of a server.
#[derive(Default)]
pub struct Rooms {
    inner: Mutex<HashMap<RoomId, Room>>,
}

impl Rooms {
    fn lock(&self) -> MutexGuard<'_, HashMap<RoomId, Room>> {
        // A panic while holding the lock leaves maps that are still consistent
        // (every mutation is a single insert/remove), so recover from poisoning.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of rooms and of users in them.
    pub fn counts(&self) -> (usize, usize) {
        let rooms = self.lock();
        (rooms.len(), rooms.values().map(|r| r.members.len()).sum())
    }

    /// Tells every member of every room `event` (the cluster's nodes,
    /// `cluster`). Delivered like any room event: a full inbox is kicked.
    pub fn tell_everyone(&self, event: &Event) {
        let mut out = Outbox::default();
        for room in self.lock().values() {
            for member in room.members.values() {
                out.push(
                    member.inbox.clone(),
                    SessionEvent::Send(Box::new(ServerMessage::Event {
                        event: event.clone(),
                    })),
                );
            }
        }
        out.deliver();
    }

    /// The rooms this server holds now, sorted (the cluster refreshes their
    /// claims, `cluster`).
    pub fn ids(&self) -> Vec<RoomId> {
        let mut ids: Vec<RoomId> = self.lock().keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Whether the room exists here (has a member).
    pub fn exists(&self, room_id: &RoomId) -> bool {
        self.lock().contains_key(room_id)
    }

    /// Adds a member. A member with the same user id is replaced: its session is
    /// kicked with reason 5 and the others see it leave with reason 5 before they
    /// see the newcomer join.
    pub fn join(
        &self,
        room_id: &RoomId,
        session: SessionId,
        info: UserInfo,
        inbox: SessionInbox,
        max_rooms: usize,
        max_users: usize,
    ) -> Result<JoinOutcome, RoomError> {
        let mut out = Outbox::default();
        let result = {
            let mut rooms = self.lock();
            if !rooms.contains_key(room_id) && rooms.len() >= max_rooms {
                return Err(RoomError::TooManyRooms(max_rooms));
            }
            let room = rooms.entry(room_id.clone()).or_default();
            let replacing = room.members.contains_key(&info.user_id);
            if !replacing && room.members.len() >= max_users {
                if room.members.is_empty() {
                    rooms.remove(room_id);
                }
                return Err(RoomError::RoomFull {
                    room: room_id.clone(),
                    limit: max_users,
                });
            }
            if let Some(old) = room.members.remove(&info.user_id) {
                out.kick(old.inbox.clone(), LeaveReason::Banned);
                Self::remove_streams_of(room, old.session, &mut out);
                room.broadcast(
                    old.session,
                    &Event::PeerLeave {
                        user_id: info.user_id.clone(),
                        reason: LeaveReason::Banned,
                    },
                    &mut out,
                );
            }
            room.broadcast(session, &Event::PeerJoin { user: info.clone() }, &mut out);
            let users = room.members.values().map(|m| m.info.clone()).collect();
            let streams = room.streams.values().map(|s| s.info.clone()).collect();
            room.members.insert(
                info.user_id.clone(),
                Member {
                    session,
                    info,
                    inbox,
                },
            );
            JoinOutcome {
                users,
                streams,
                program: room.program.clone(),
            }
        };
        out.deliver();
        Ok(result)
    }

    /// Removes a member and its streams, telling the others. Does nothing if the
    /// session is no longer the member (it was replaced).
    pub fn leave(
        &self,
        room_id: &RoomId,
        user_id: &UserId,
        session: SessionId,
        reason: LeaveReason,
    ) {
        let mut out = Outbox::default();
        {
            let mut rooms = self.lock();
            let Some(room) = rooms.get_mut(room_id) else {
                return;
            };
            if room.members.get(user_id).map(|m| m.session) != Some(session) {
                return;
            }
            room.members.remove(user_id);
            Self::remove_streams_of(room, session, &mut out);
            room.broadcast(
                session,
                &Event::PeerLeave {
                    user_id: user_id.clone(),
                    reason,
                },
                &mut out,
            );
            if room.members.is_empty() {
                rooms.remove(room_id);
            }
        }
        out.deliver();
    }

    /// Removes and announces every stream `session` publishes; returns their ids.
    fn remove_streams_of(room: &mut Room, session: SessionId, out: &mut Outbox) -> Vec<StreamId> {
        let gone: Vec<StreamId> = room
            .streams
            .iter()
            .filter(|(_, s)| s.owner == session)
            .map(|(id, _)| *id)
            .collect();
        for id in &gone {
            if let Some(stream) = room.streams.remove(id) {
                stream.close_media();
                Self::announce_removed(room, session, &stream.info, out);
            }
        }
        gone
    }

    fn announce_removed(room: &mut Room, owner: SessionId, info: &StreamInfo, out: &mut Outbox) {
        let event = Event::StreamRemoved {
            stream_id: info.stream_id,
            user_id: info.user_id.clone(),
        };
        room.broadcast(owner, &event, out);
        for member in room.members.values().filter(|m| m.session != owner) {
            out.push(
                member.inbox.clone(),
                SessionEvent::StreamGone(info.stream_id),
            );
        }
        Self::take_off_air(room, info.stream_id, out);
    }

    /// Gives the caller a new role. A role that may not publish takes the
    /// caller's streams with it: each is removed and announced (`stream-removed`)
    /// before `peer-role-changed`, so no one sees a player with streams. The
    /// role the caller already has changes nothing and announces nothing.
    /// Returns the streams removed, whose links the caller closes.
    pub fn switch_role(
        &self,
        room_id: &RoomId,
        user_id: &UserId,
        session: SessionId,
        role: Role,
    ) -> Result<Vec<StreamId>, RoomError> {
        let mut out = Outbox::default();
        let removed = {
            let mut rooms = self.lock();
            let room = rooms.get_mut(room_id).ok_or(RoomError::NotJoined)?;
            let member = Self::member_mut(room, user_id, session)?;
            if member.info.role == role {
                return Ok(Vec::new());
            }
            member.info.role = role;
            let removed = if role.can_publish() {
                Vec::new()
            } else {
                Self::remove_streams_of(room, session, &mut out)
            };
            room.broadcast(
                session,
                &Event::PeerRoleChanged {
                    user_id: user_id.clone(),
                    role,
                },
                &mut out,
            );
            removed
        };
        out.deliver();
        Ok(removed)
    }

    /// Gives the caller a new display name, announced as
    /// `remote-user-name-changed` unless it is the name it already has.
    pub fn change_user_name(
        &self,
        room_id: &RoomId,
        user_id: &UserId,
        session: SessionId,
        user_name: String,
    ) -> Result<(), RoomError> {
        let mut out = Outbox::default();
        {
            let mut rooms = self.lock();
            let room = rooms.get_mut(room_id).ok_or(RoomError::NotJoined)?;
            let member = Self::member_mut(room, user_id, session)?;
            if member.info.user_name == user_name {
                return Ok(());
            }
            member.info.user_name.clone_from(&user_name);
            room.broadcast(
                session,
                &Event::RemoteUserNameChanged {
                    user_id: user_id.clone(),
                    user_name,
                },
                &mut out,
            );
        }
        out.deliver();
        Ok(())
    }

    /// The member `user_id` if `session` still owns it (it was not replaced).
    fn member_mut<'r>(
        room: &'r mut Room,
        user_id: &UserId,
        session: SessionId,
    ) -> Result<&'r mut Member, RoomError> {
        room.members
            .get_mut(user_id)
            .filter(|m| m.session == session)
            .ok_or(RoomError::NotJoined)
    }

    /// Registers a published stream and announces it.
    pub fn add_stream(
        &self,
        room_id: &RoomId,
        owner: SessionId,
        info: StreamInfo,
        media: Arc<PublishedMedia>,
    ) -> Result<(), RoomError> {
        let mut out = Outbox::default();
        {
            let mut rooms = self.lock();
            let room = rooms.get_mut(room_id).ok_or(RoomError::NotJoined)?;
            if room.members.get(&info.user_id).map(|m| m.session) != Some(owner) {
                return Err(RoomError::NotJoined);
            }
            room.broadcast(
                owner,
                &Event::StreamAdded {
                    stream: info.clone(),
                },
                &mut out,
            );
            room.streams.insert(
                info.stream_id,
                PublishedStream {
                    info,
                    owner,
                    media,
                    relayed: false,
                },
            );
        }
        out.deliver();
        Ok(())
    }

    /// Removes one of the caller's streams and announces it.
    pub fn remove_stream(
        &self,
        room_id: &RoomId,
        owner: SessionId,
        stream_id: StreamId,
    ) -> Result<(), RoomError> {
        let mut out = Outbox::default();
        {
            let mut rooms = self.lock();
            let room = rooms.get_mut(room_id).ok_or(RoomError::NotJoined)?;
            let stream = room
                .streams
                .get(&stream_id)
                .ok_or(RoomError::NoSuchStream(stream_id))?;
            if stream.owner != owner {
                return Err(RoomError::NotOwner(stream_id));
            }
            if let Some(stream) = room.streams.remove(&stream_id) {
                stream.close_media();
                Self::announce_removed(room, owner, &stream.info, &mut out);
            }
        }
        out.deliver();
        Ok(())
    }

    /// Changes a stream's mute state and announces `stream-updated`.
    pub fn update_stream(
        &self,
        room_id: &RoomId,
        owner: SessionId,
        stream_id: StreamId,
        audio_muted: bool,
        video_muted: bool,
    ) -> Result<StreamInfo, RoomError> {
        self.change_stream(room_id, owner, stream_id, |info| {
            info.audio_muted = audio_muted;
            info.video_muted = video_muted;
            Ok::<(), RoomError>(())
        })
    }

    /// Changes one of `owner`'s streams with `change` (simulcast layers,
    /// `signalling/layers.rs`) and announces `stream-updated`; nothing
    /// changes or is announced when `change` refuses.
    pub fn change_stream<E: From<RoomError>>(
        &self,
        room_id: &RoomId,
        owner: SessionId,
        stream_id: StreamId,
        change: impl FnOnce(&mut StreamInfo) -> Result<(), E>,
    ) -> Result<StreamInfo, E> {
        let mut out = Outbox::default();
        let info = {
            let mut rooms = self.lock();
            let room = rooms.get_mut(room_id).ok_or(RoomError::NotJoined)?;
            let stream = room
                .streams
                .get_mut(&stream_id)
                .ok_or(RoomError::NoSuchStream(stream_id))?;
            if stream.owner != owner {
                return Err(RoomError::NotOwner(stream_id).into());
            }
            let mut info = stream.info.clone();
            change(&mut info)?;
            stream.info = info.clone();
            room.broadcast(
                owner,
                &Event::StreamUpdated {
                    stream: info.clone(),
                },
                &mut out,
            );
            info
        };
        out.deliver();
        Ok(info)
    }

    /// The room as `session` (still the member `user_id`) sees it now: itself,
    /// everyone else and every stream. For `resumed`.
    pub fn snapshot(
        &self,
        room_id: &RoomId,
        user_id: &UserId,
        session: SessionId,
    ) -> Result<(UserInfo, JoinOutcome), RoomError> {
        let rooms = self.lock();
        let room = rooms.get(room_id).ok_or(RoomError::NotJoined)?;
        let me = room
            .members
            .get(user_id)
            .filter(|m| m.session == session)
            .ok_or(RoomError::NotJoined)?;
        let users = room
            .members
            .values()
            .filter(|m| m.session != session)
            .map(|m| m.info.clone())
            .collect();
        let streams = room.streams.values().map(|s| s.info.clone()).collect();
        let program = room.program.clone();
        Ok((
            me.info.clone(),
            JoinOutcome {
                users,
                streams,
                program,
            },
        ))
    }

    /// Every stream of the room with its media, sorted by stream id (a
    /// whole-room recording).
    pub fn streams(
        &self,
        room_id: &RoomId,
    ) -> Result<Vec<(StreamInfo, Arc<PublishedMedia>)>, RoomError> {
        let rooms = self.lock();
        let room = rooms.get(room_id).ok_or(RoomError::NotJoined)?;
        let mut streams: Vec<_> = room
            .streams
            .values()
            .map(|s| (s.info.clone(), Arc::clone(&s.media)))
            .collect();
        streams.sort_by_key(|(info, _)| info.stream_id);
        Ok(streams)
    }

    /// Looks up a stream of the room for subscribing.
    pub fn stream(
        &self,
        room_id: &RoomId,
        stream_id: StreamId,
    ) -> Result<(StreamInfo, Arc<PublishedMedia>), RoomError> {
        let rooms = self.lock();
        let room = rooms.get(room_id).ok_or(RoomError::NotJoined)?;
        let stream = room
            .streams
            .get(&stream_id)
            .ok_or(RoomError::NoSuchStream(stream_id))?;
        Ok((stream.info.clone(), Arc::clone(&stream.media)))
    }
}

#[cfg(test)]
mod tests {
    use crate::server::inbox::SessionEvent;

    #[test]
    fn session_event_is_reasonably_sized() {
        // Thousands of these can queue per room; large payloads are boxed.
        assert!(
            std::mem::size_of::<SessionEvent>() <= 96,
            "{}",
            std::mem::size_of::<SessionEvent>()
        );
    }
}
