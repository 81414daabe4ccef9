//! The session actor's side of cross-room co-hosting: starting and stopping
//! relays, and following the other rooms' events (`super::super::cross_room`).
//!
//! A child module of `session`, working on the actor's state: the relays by
//! room, each with that room's users and streams as last heard, so that a
//! subscription to another room's stream gets its [`StreamInfo`] and ends
//! when that stream or the relay ends.

use std::collections::BTreeMap;

use super::{ClientError, ClientResult, Credential, RoomEvent, Session, close_subscription};
use crate::client::cross_room::CrossRoomInfo;
use crate::protocol::{
    Event, LeaveReason, Reply, Request, RoomId, StreamId, StreamInfo, UserId, UserInfo,
};

/// One relay into another room.
struct CrossRoom {
    users: BTreeMap<UserId, UserInfo>,
    streams: BTreeMap<StreamId, StreamInfo>,
}

/// The session's relays, by room.
#[derive(Default)]
pub(super) struct CrossRooms {
    rooms: BTreeMap<RoomId, CrossRoom>,
}

impl CrossRooms {
    /// A stream of another room, for a subscription's info.
    pub(super) fn stream(&self, stream_id: StreamId) -> Option<StreamInfo> {
        self.rooms
            .values()
            .find_map(|room| room.streams.get(&stream_id).cloned())
    }
}

impl Session {
    pub(super) async fn start_cross_room_relay(
        &mut self,
        room_id: RoomId,
        stream_id: StreamId,
        credential: &Credential,
    ) -> ClientResult<CrossRoomInfo> {
        let signal = self.signal()?;
        let identity = self.identity()?;
        let (ctime, signature) =
            super::signed(credential, &identity.app_id, &room_id, &identity.me.user_id);
        let reply = signal
            .request(Request::StartCrossRoomRelay {
                room_id,
                stream_id,
                ctime,
                signature,
            })
            .await?;
        let Reply::CrossRoomRelayStarted {
            room_id,
            stream_id,
            users,
            streams,
        } = reply
        else {
            return Err(super::unexpected(&reply));
        };
        self.cross_rooms.rooms.insert(
            room_id.clone(),
            CrossRoom {
                users: users
                    .iter()
                    .map(|u| (u.user_id.clone(), u.clone()))
                    .collect(),
                streams: streams.iter().map(|s| (s.stream_id, s.clone())).collect(),
            },
        );
        Ok(CrossRoomInfo {
            room_id,
            stream_id,
            users,
            streams,
        })
    }

    pub(super) async fn stop_cross_room_relay(&mut self, room_id: RoomId) -> ClientResult<()> {
        let signal = self.signal()?;
        if !self.cross_rooms.rooms.contains_key(&room_id) {
            return Err(ClientError::InvalidOperation(format!(
                "no cross-room relay into room {room_id}"
            )));
        }
        signal
            .request(Request::StopCrossRoomRelay {
                room_id: room_id.clone(),
            })
            .await?;
        self.forget_cross_room(&room_id).await;
        Ok(())
    }

    /// Drops a relay's room and the subscriptions to its streams (the server
    /// has closed their links).
    async fn forget_cross_room(&mut self, room_id: &RoomId) {
        let Some(room) = self.cross_rooms.rooms.remove(room_id) else {
            return;
        };
        for stream_id in room.streams.keys() {
            if let Some(s) = self.subscriptions.remove(stream_id) {
                close_subscription(s).await;
            }
        }
    }

    /// The server ended a relay by itself (`cross-room-relay-stopped`).
    pub(super) async fn on_cross_room_stopped(&mut self, room_id: RoomId, reason: LeaveReason) {
        self.forget_cross_room(&room_id).await;
        self.emit(RoomEvent::CrossRoomRelayStopped { room_id, reason });
    }

    /// An event of another room (`cross-room`): kept, then passed up as the
    /// same [`RoomEvent`] the own room's would be, tagged with the room.
    pub(super) async fn on_cross_room_event(&mut self, room_id: RoomId, event: Event) {
        let Some(room) = self.cross_rooms.rooms.get_mut(&room_id) else {
            return; // a late event of a relay already stopped
        };
        let event = match event {
            Event::PeerJoin { user } => {
                room.users.insert(user.user_id.clone(), user.clone());
                RoomEvent::PeerJoin(user)
            }
            Event::PeerLeave { user_id, reason } => {
                room.users.remove(&user_id);
                RoomEvent::PeerLeave { user_id, reason }
            }
            Event::StreamAdded { stream } => {
                room.streams.insert(stream.stream_id, stream.clone());
                RoomEvent::StreamAdded(stream)
            }
            Event::StreamRemoved { stream_id, user_id } => {
                room.streams.remove(&stream_id);
                if let Some(s) = self.subscriptions.remove(&stream_id) {
                    close_subscription(s).await;
                }
                RoomEvent::StreamRemoved { stream_id, user_id }
            }
            Event::StreamUpdated { stream } => {
                room.streams.insert(stream.stream_id, stream.clone());
                RoomEvent::StreamUpdated(stream)
            }
            Event::PeerRoleChanged { user_id, role } => {
                if let Some(user) = room.users.get_mut(&user_id) {
                    user.role = role;
                }
                RoomEvent::PeerRoleChanged { user_id, role }
            }
            Event::RemoteUserNameChanged { user_id, user_name } => {
                if let Some(user) = room.users.get_mut(&user_id) {
                    user.user_name.clone_from(&user_name);
                }
                RoomEvent::RemoteUserNameChanged { user_id, user_name }
            }
            other => {
                tracing::debug!(room = %room_id, "cross-room event not passed up: {other:?}");
                return;
            }
        };
        self.emit(RoomEvent::CrossRoom {
            room_id,
            event: Box::new(event),
        });
    }

    /// Forgets every relay (the session left or lost its room).
    pub(super) fn clear_cross_rooms(&mut self) {
        self.cross_rooms.rooms.clear();
    }
}
