//! The room side of cross-room co-hosting (seed 001 chapter 1 "Cross-room"):
//! a streamer of one room entering another as a player that carries its
//! relayed stream.
//!
//! A relay is an ordinary member plus an ordinary stream entry, so everything
//! that works on members and streams (subscribe, leave, replacement by a join
//! of the same user id, `snapshot`) works on it unchanged. Two things differ:
//! the stream entry is `relayed` (removing it does not close the media, which
//! belongs to the publisher's own room), and the member's inbox is the relay's
//! own (`signalling/cross_room.rs`), so a kick of this member (the same user
//! joining the room itself) ends the relay, not the streamer's session.
//!
//! Invariant: the member and its relayed stream enter the room in one critical
//! section (`peer-join`, then `stream-added`), and leave in one (`leave`:
//! `stream-removed`, then `peer-leave`), so nobody sees the relay member
//! without its stream.

use std::sync::Arc;

use super::{JoinOutcome, Member, Outbox, PublishedStream, RoomError, Rooms};
use crate::protocol::{Event, RoomId, StreamInfo, UserInfo};
use crate::server::inbox::{SessionId, SessionInbox};
use crate::server::sfu::PublishedMedia;

/// What a relay brings into the other room.
pub struct RelayEntry {
    /// The streamer as the other room sees it (a player).
    pub me: UserInfo,
    /// The session relaying (the streamer's own session).
    pub session: SessionId,
    /// The relay's own inbox: its events reach the session tagged with the room.
    pub inbox: SessionInbox,
    /// The relayed stream, as published in the streamer's room.
    pub stream: StreamInfo,
    /// Its media: the same ingress tracks the streamer's room reads.
    pub media: Arc<PublishedMedia>,
}

impl Rooms {
    /// Adds a relay member and its stream to `room_id`, announcing both.
    /// Refused without any change when the user is already a member
    /// ([`RoomError::AlreadyInRoom`]: unlike a join, a relay never replaces
    /// anyone) or a room or user limit is reached. Returns the room as the
    /// relay sees it (everyone else, every other stream).
    pub fn join_relay(
        &self,
        room_id: &RoomId,
        entry: RelayEntry,
        max_rooms: usize,
        max_users: usize,
    ) -> Result<JoinOutcome, RoomError> {
        let RelayEntry {
            me,
            session,
            inbox,
            stream,
            media,
        } = entry;
        let mut out = Outbox::default();
        let outcome = {
            let mut rooms = self.lock();
            if !rooms.contains_key(room_id) && rooms.len() >= max_rooms {
                return Err(RoomError::TooManyRooms(max_rooms));
            }
            let room = rooms.entry(room_id.clone()).or_default();
            if room.members.contains_key(&me.user_id) {
                return Err(RoomError::AlreadyInRoom {
                    room: room_id.clone(),
                    user: me.user_id,
                });
            }
            if room.members.len() >= max_users {
                if room.members.is_empty() {
                    rooms.remove(room_id);
                }
                return Err(RoomError::RoomFull {
                    room: room_id.clone(),
                    limit: max_users,
                });
            }
            let users = room.members.values().map(|m| m.info.clone()).collect();
            let streams = room.streams.values().map(|s| s.info.clone()).collect();
            room.broadcast(session, &Event::PeerJoin { user: me.clone() }, &mut out);
            room.broadcast(
                session,
                &Event::StreamAdded {
                    stream: stream.clone(),
                },
                &mut out,
            );
            room.members.insert(
                me.user_id.clone(),
                Member {
                    session,
                    info: me,
                    inbox,
                },
            );
            room.streams.insert(
                stream.stream_id,
                PublishedStream {
                    info: stream,
                    owner: session,
                    media,
                    relayed: true,
                },
            );
            JoinOutcome {
                users,
                streams,
                program: room.program.clone(),
            }
        };
        out.deliver();
        Ok(outcome)
    }
}
