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
    ErrorCode, Event, LeaveReason, Reply, Request, RoomId, StreamId, StreamInfo, UserId, UserInfo,
};

/// Where a relay stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RelayState {
    /// The server relays the stream into the room.
    Running,
    /// The server ended it because the stream's publish link failed (it
    /// said so before this client noticed): it starts again when the
    /// stream is published again ([`Session::relay_again`]), and ends for
    /// good, told to the application, if it is not.
    Suspended,
}

/// One relay into another room.
struct CrossRoom {
    /// The own stream relayed.
    stream_id: StreamId,
    state: RelayState,
    /// What signs for the room (to relay again after a rejoin).
    credential: Credential,
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
                stream_id,
                state: RelayState::Running,
                credential: credential.clone(),
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
    /// A stop of a stream the room no longer carries from here (a late one
    /// of the id a republished stream had) is ignored. A stop because the
    /// link of a stream still published here failed suspends the relay
    /// until the stream is published again (`relay_again`).
    pub(super) async fn on_cross_room_stopped(
        &mut self,
        room_id: RoomId,
        reason: LeaveReason,
        stream_id: Option<StreamId>,
    ) {
        let Some(room) = self.cross_rooms.rooms.get_mut(&room_id) else {
            return; // stopped here already
        };
        if stream_id.is_some_and(|s| s != room.stream_id) {
            tracing::debug!(room = %room_id, "late stop of a relay started again; ignored");
            return;
        }
        if reason == LeaveReason::UserExit && self.publications.contains_key(&room.stream_id) {
            tracing::info!(room = %room_id, "relay stopped by its link's failure; suspended");
            room.state = RelayState::Suspended;
            let streams: Vec<StreamId> = room.streams.keys().copied().collect();
            for stream_id in streams {
                if let Some(s) = self.subscriptions.remove(&stream_id) {
                    close_subscription(s).await;
                }
            }
            return;
        }
        self.forget_cross_room(&room_id).await;
        self.emit(RoomEvent::CrossRoomRelayStopped { room_id, reason });
    }

    /// `stream_id` will not be published again (unpublished, or publishing
    /// it again failed): its suspended relays end, told to the application.
    pub(super) async fn end_suspended_relays_of(&mut self, stream_id: StreamId) {
        let ended: Vec<RoomId> = self
            .cross_rooms
            .rooms
            .iter()
            .filter(|(_, r)| r.stream_id == stream_id && r.state == RelayState::Suspended)
            .map(|(room_id, _)| room_id.clone())
            .collect();
        for room_id in ended {
            self.forget_cross_room(&room_id).await;
            self.emit(RoomEvent::CrossRoomRelayStopped {
                room_id,
                reason: LeaveReason::UserExit,
            });
        }
    }

    /// `renew-signature` for a room relayed into: with the given pair, which
    /// then signs for the room (to relay again after a rejoin).
    pub(super) async fn renew_cross_room_signature(
        &mut self,
        room_id: RoomId,
        ctime: u64,
        signature: String,
    ) -> ClientResult<()> {
        let signal = self.signal()?;
        if !self.cross_rooms.rooms.contains_key(&room_id) {
            return Err(ClientError::InvalidOperation(format!(
                "no cross-room relay into room {room_id}"
            )));
        }
        let reply = signal
            .request(Request::RenewSignature {
                ctime,
                signature: signature.clone(),
                room_id: Some(room_id.clone()),
            })
            .await?;
        if !matches!(reply, Reply::Ok) {
            return Err(super::unexpected(&reply));
        }
        if let Some(room) = self.cross_rooms.rooms.get_mut(&room_id)
            && let Credential::Signature { .. } = room.credential
        {
            room.credential = Credential::Signature { ctime, signature };
        }
        Ok(())
    }

    /// The server warned that a relay room's signature runs out: with a key
    /// credential a fresh signature for that room is sent at once (in a
    /// task); the application hears of the warning either way.
    fn on_cross_room_signature_expired(
        &self,
        room_id: &RoomId,
        code: ErrorCode,
        message: String,
        ctime: u64,
    ) -> RoomEvent {
        let renewal = match (
            &self.identity,
            self.signal.clone(),
            self.cross_rooms.rooms.get(room_id),
        ) {
            (Some(identity), Some(signal), Some(room))
                if matches!(
                    room.credential,
                    Credential::AppKey { .. } | Credential::DirectorKey { .. }
                ) =>
            {
                let (fresh, signature) = super::signed(
                    &room.credential,
                    &identity.app_id,
                    room_id,
                    &identity.me.user_id,
                );
                (fresh > ctime).then_some((signal, fresh, signature))
            }
            _ => None,
        };
        let renewing = renewal.is_some();
        if let Some((signal, fresh, signature)) = renewal {
            let events = self.events.clone();
            let room = room_id.clone();
            tokio::spawn(async move {
                let result = signal
                    .request(Request::RenewSignature {
                        ctime: fresh,
                        signature,
                        room_id: Some(room.clone()),
                    })
                    .await;
                if let Err(e) = result {
                    tracing::warn!(room = %room, "automatic relay signature renewal failed: {e}");
                    let event = RoomEvent::Error {
                        code: e.code(),
                        message: format!("automatic signature renewal for room {room} failed: {e}"),
                    };
                    events.try_send(event).ok(); // full: the stop still reaches it
                }
            });
        }
        RoomEvent::SignatureExpired {
            code,
            message,
            ctime,
            renewing,
        }
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
            Event::SignatureExpired {
                code,
                message,
                ctime,
            } => self.on_cross_room_signature_expired(&room_id, code, message, ctime),
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

    /// After a reconnection, relays whose stream was published again under a
    /// new id (`new_ids`: old → new), or every relay when the server lost
    /// the session (`rejoined`: a restarted server knows none), start again
    /// with the new id. The application sees that room's old streams
    /// removed, who left (reason 3) and joined meanwhile, and its streams
    /// now added, all as [`RoomEvent::CrossRoom`]; a relay that cannot start
    /// again ends with [`RoomEvent::CrossRoomRelayStopped`] (reason 3) and
    /// an [`RoomEvent::Error`] with the server's code.
    pub(super) async fn relay_again(
        &mut self,
        new_ids: &BTreeMap<StreamId, StreamId>,
        rejoined: bool,
    ) {
        let again: Vec<RoomId> = self
            .cross_rooms
            .rooms
            .iter()
            .filter(|(_, r)| rejoined || new_ids.contains_key(&r.stream_id))
            .map(|(room_id, _)| room_id.clone())
            .collect();
        for room_id in again {
            let Some(old) = self.cross_rooms.rooms.get(&room_id) else {
                continue;
            };
            let (old_stream, credential) = (old.stream_id, old.credential.clone());
            let old_users: Vec<UserId> = old.users.keys().cloned().collect();
            let old_streams: Vec<StreamInfo> = old.streams.values().cloned().collect();
            self.forget_cross_room(&room_id).await;
            for info in old_streams {
                self.emit_cross(
                    &room_id,
                    RoomEvent::StreamRemoved {
                        stream_id: info.stream_id,
                        user_id: info.user_id,
                    },
                );
            }
            let started = match new_ids.get(&old_stream) {
                Some(new_id) => {
                    self.start_cross_room_relay(room_id.clone(), *new_id, &credential)
                        .await
                }
                None => Err(ClientError::InvalidOperation(format!(
                    "stream {old_stream} is not published any more"
                ))),
            };
            match started {
                Ok(info) => {
                    for user_id in old_users
                        .iter()
                        .filter(|u| !info.users.iter().any(|n| &n.user_id == *u))
                    {
                        self.emit_cross(
                            &room_id,
                            RoomEvent::PeerLeave {
                                user_id: user_id.clone(),
                                reason: LeaveReason::ServiceUnavailable,
                            },
                        );
                    }
                    for user in info
                        .users
                        .iter()
                        .filter(|n| !old_users.contains(&n.user_id))
                    {
                        self.emit_cross(&room_id, RoomEvent::PeerJoin(user.clone()));
                    }
                    for stream in info.streams {
                        self.emit_cross(&room_id, RoomEvent::StreamAdded(stream));
                    }
                }
                Err(e) => {
                    self.emit(RoomEvent::Error {
                        code: e.code(),
                        message: format!("relaying into room {room_id} again: {e}"),
                    });
                    self.emit(RoomEvent::CrossRoomRelayStopped {
                        room_id,
                        reason: LeaveReason::ServiceUnavailable,
                    });
                }
            }
        }
    }

    fn emit_cross(&self, room_id: &RoomId, event: RoomEvent) {
        self.emit(RoomEvent::CrossRoom {
            room_id: room_id.clone(),
            event: Box::new(event),
        });
    }

    /// Forgets every relay (the session left or lost its room).
    pub(super) fn clear_cross_rooms(&mut self) {
        self.cross_rooms.rooms.clear();
    }
}
