//! Cross-room co-hosting (seed 001 chapter 1 "Cross-room"): a joiner relays
//! one of its published streams into up to three more rooms
//! ([`MAX_CROSS_ROOMS`] in all), where it is a player member carrying that
//! stream. Its own room stays the one it is a joiner in (one joiner role at a
//! time, seed FAQ 2).
//!
//! No media is copied: the other room's stream entry holds the same
//! `Arc<PublishedMedia>` as the streamer's room, so a subscriber there gets an
//! egress-hub leg fed by the same ingress track (one upload, no re-encoding).
//!
//! Each relay has its own [`SessionInbox`], read by a small forwarding task:
//! the other room's events reach the client wrapped in `cross-room` (tagged
//! with the room), `StreamGone` goes to the session as it is (stream ids are
//! unique server-wide), and a kick of the relay member (the same user id
//! joined that room itself, or the relay fell behind) becomes
//! [`SessionEvent::CrossRoomEnded`]: that relay ends, the session goes on.
//!
//! Each relay keeps its room's signature clock: it is warned about and runs
//! out like a join's (`expiry.rs`), but ending it ends only that relay
//! (reason 6); `renew-signature` with the room's id renews it.
//!
//! Invariants: a relay exists only while its stream is one of the session's
//! publications (unpublishing, a failed publish link or a switch to player
//! ends its relays, and the client gets `cross-room-relay-stopped`); the
//! session's teardown ends every relay.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::task::JoinHandle;

use std::time::Duration;

use axum::extract::ws::WebSocket;

use super::expiry::{ExpiryStep, SignatureClock, unix_time};
use super::{Flow, RequestError, Session, unix_now};
use crate::auth;
use crate::protocol::{
    ErrorCode, Event, LeaveReason, MAX_CROSS_ROOMS, Reply, Role, RoomId, ServerMessage, StreamId,
    StreamInfo, UserInfo,
};
use crate::server::inbox::{SessionEvent, SessionInbox, SessionInboxReceiver};
use crate::server::metrics::GaugeGuard;
use crate::server::room::cross_room::RelayEntry;
use crate::server::sfu::PublishedMedia;

/// Why a cross-room request was refused (besides the join's own errors:
/// signature, room limits, already in the room).
#[derive(Debug, thiserror::Error)]
pub enum CrossRoomError {
    /// A fifth room (seed RTC.32000032, "The maximum number of rooms that a
    /// user can join has been reached"). Retry after stopping a relay.
    #[error(
        "RTC.32000032: a stream can be in at most {MAX_CROSS_ROOMS} rooms (its own and {} relays)",
        MAX_CROSS_ROOMS - 1
    )]
    TooManyRooms,
    /// The stream is not one the caller publishes. Not retryable.
    #[error("stream {0} is not published by you")]
    NoSuchStream(StreamId),
    /// `stop-cross-room-relay` for a room with no relay of the caller.
    #[error("no cross-room relay into room {0}")]
    NoRelay(RoomId),
}

impl CrossRoomError {
    /// The seed code.
    pub fn code(&self) -> ErrorCode {
        match self {
            CrossRoomError::TooManyRooms => ErrorCode::AnchorNumberOutOfRange,
            CrossRoomError::NoSuchStream(_) => ErrorCode::InvalidSubscribedInfo,
            CrossRoomError::NoRelay(_) => ErrorCode::InvalidOperation,
        }
    }
}

/// One relay of the session into another room.
struct Relay {
    stream_id: StreamId,
    /// The room's signature: it runs out as a join's does (`expiry.rs`),
    /// renewed by `renew-signature` with this `roomId`.
    signature: SignatureClock,
    /// Reads the relay's inbox into the session's.
    forwarder: JoinHandle<()>,
    _running: GaugeGuard,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.forwarder.abort();
    }
}

/// A session's relays, by room.
#[derive(Default)]
pub(super) struct CrossRooms {
    relays: BTreeMap<RoomId, Relay>,
}

impl Session {
    /// `start-cross-room-relay`: checks in the order role, ids, limits,
    /// stream, signature (exactly as a join's), then enters the room.
    pub(super) async fn start_cross_room_relay(
        &mut self,
        room_id: RoomId,
        stream_id: StreamId,
        ctime: u64,
        signature: &str,
    ) -> Result<Reply, RequestError> {
        let joined = self.joined()?;
        if !joined.me.role.can_publish() {
            return Err(RequestError::RoleNoPermission(
                joined.me.role,
                "relay a stream into another room",
            ));
        }
        if !auth::validate_id(room_id.as_str()) {
            return Err(RequestError::InvalidParameter(
                "roomId must match [A-Za-z0-9_-]{1,64}".into(),
            ));
        }
        if room_id == joined.room_id || self.cross_rooms.relays.contains_key(&room_id) {
            return Err(crate::server::room::RoomError::AlreadyInRoom {
                room: room_id,
                user: joined.me.user_id.clone(),
            }
            .into());
        }
        if self.cross_rooms.relays.len() + 1 >= MAX_CROSS_ROOMS {
            return Err(CrossRoomError::TooManyRooms.into());
        }
        if !self.publications.contains_key(&stream_id) {
            return Err(CrossRoomError::NoSuchStream(stream_id).into());
        }
        let (stream, media) = self.shared.rooms.stream(&joined.room_id, stream_id)?;
        auth::verify(
            &self.shared.config.apps,
            joined.app_id.as_str(),
            room_id.as_str(),
            joined.me.user_id.as_str(),
            ctime,
            signature,
            unix_now(),
        )?;
        let me = UserInfo {
            role: Role::Player,
            ..joined.me.clone()
        };
        let (inbox, receiver) = SessionInbox::new();
        let limits = &self.shared.config.limits;
        let outcome = self.shared.rooms.join_relay(
            &room_id,
            RelayEntry {
                me,
                session: self.id,
                inbox,
                stream,
                media,
            },
            limits.max_rooms,
            limits.max_users_per_room,
        )?;
        let forwarder = tokio::spawn(forward(room_id.clone(), receiver, self.inbox_tx.clone()));
        let running = self.shared.metrics.cross_room_relays.enter();
        self.cross_rooms.relays.insert(
            room_id.clone(),
            Relay {
                stream_id,
                signature: SignatureClock::new(ctime),
                forwarder,
                _running: running,
            },
        );
        tracing::info!(session = self.id.0, room = %room_id, stream = stream_id.0, "cross-room relay started");
        Ok(Reply::CrossRoomRelayStarted {
            room_id,
            stream_id,
            users: outcome.users,
            streams: outcome.streams,
        })
    }

    /// `stop-cross-room-relay`: leaves that room (reason 0).
    pub(super) async fn stop_cross_room_relay(
        &mut self,
        room_id: RoomId,
    ) -> Result<Reply, RequestError> {
        self.joined()?;
        if !self.cross_rooms.relays.contains_key(&room_id) {
            return Err(CrossRoomError::NoRelay(room_id).into());
        }
        self.end_relay(&room_id, LeaveReason::UserExit).await;
        Ok(Reply::Ok)
    }

    /// Leaves the relay's room and forgets the relay; the stream it relayed,
    /// `None` if there was none.
    async fn end_relay(&mut self, room_id: &RoomId, reason: LeaveReason) -> Option<StreamId> {
        let relay = self.cross_rooms.relays.remove(room_id)?;
        let stream_id = relay.stream_id;
        let Some(joined) = &self.joined else {
            return Some(stream_id);
        };
        // The subscriptions to that room's streams end with the relay.
        let gone: Vec<StreamId> = self
            .subscriptions
            .keys()
            .copied()
            .filter(|id| self.shared.rooms.stream(room_id, *id).is_ok())
            .filter(|id| self.shared.rooms.stream(&joined.room_id, *id).is_err())
            .collect();
        self.shared
            .rooms
            .leave(room_id, &joined.me.user_id, self.id, reason);
        for stream_id in gone {
            if let Some(sub) = self.subscriptions.remove(&stream_id) {
                sub.link.close().await;
            }
        }
        drop(relay);
        tracing::info!(session = self.id.0, room = %room_id, "cross-room relay ended");
        Some(stream_id)
    }

    /// Ends every relay of `stream_id` (it was unpublished, its link failed,
    /// the caller became a player) and queues `cross-room-relay-stopped`
    /// (reason 0) for the client, behind what the room sent.
    pub(super) async fn end_relays_of(&mut self, stream_id: StreamId) {
        let rooms: Vec<RoomId> = self
            .cross_rooms
            .relays
            .iter()
            .filter(|(_, r)| r.stream_id == stream_id)
            .map(|(room, _)| room.clone())
            .collect();
        for room_id in rooms {
            self.end_relay(&room_id, LeaveReason::UserExit).await;
            let event = Event::CrossRoomRelayStopped {
                room_id,
                reason: LeaveReason::UserExit,
                stream_id: Some(stream_id),
            };
            // Full or closed: the session is being ended anyway.
            self.inbox_tx
                .try_send(SessionEvent::Send(Box::new(ServerMessage::Event { event })))
                .ok();
        }
    }

    /// A relayed stream's mute state changed: the other rooms see
    /// `stream-updated` too.
    pub(super) fn update_relays_of(
        &self,
        stream_id: StreamId,
        audio_muted: bool,
        video_muted: bool,
    ) {
        for (room_id, relay) in &self.cross_rooms.relays {
            if relay.stream_id == stream_id {
                // Gone meanwhile (replaced there): its end is on the way.
                self.shared
                    .rooms
                    .update_stream(room_id, self.id, stream_id, audio_muted, video_muted)
                    .ok();
            }
        }
    }

    /// Ends every relay: the session is ending (`reason` is its leave reason).
    pub(super) async fn end_all_relays(&mut self, reason: LeaveReason) {
        let rooms: Vec<RoomId> = self.cross_rooms.relays.keys().cloned().collect();
        for room_id in rooms {
            self.end_relay(&room_id, reason).await;
        }
    }

    /// The room removed a relay member ([`SessionEvent::CrossRoomEnded`]):
    /// end that relay; what to tell the client, if it was still running.
    pub(super) async fn cross_room_ended(
        &mut self,
        room_id: RoomId,
        reason: LeaveReason,
    ) -> Option<ServerMessage> {
        let stream_id = self.end_relay(&room_id, reason).await?;
        Some(ServerMessage::Event {
            event: Event::CrossRoomRelayStopped {
                room_id,
                reason,
                stream_id: Some(stream_id),
            },
        })
    }

    /// `renew-signature` with a `roomId` the session relays into: a verified
    /// signature for that room replaces the relay's; a refused one changes
    /// nothing (the relay still ends at its old `ctime`).
    pub(super) fn renew_relay_signature(
        &mut self,
        room_id: RoomId,
        ctime: u64,
        signature: &str,
    ) -> Result<Reply, RequestError> {
        let joined = self.joined()?;
        if !self.cross_rooms.relays.contains_key(&room_id) {
            return Err(CrossRoomError::NoRelay(room_id).into());
        }
        auth::verify(
            &self.shared.config.apps,
            joined.app_id.as_str(),
            room_id.as_str(),
            joined.me.user_id.as_str(),
            ctime,
            signature,
            unix_now(),
        )?;
        if let Some(relay) = self.cross_rooms.relays.get_mut(&room_id) {
            relay.signature.renew(ctime);
        }
        tracing::debug!(session = self.id.0, room = %room_id, ctime, "relay signature renewed");
        Ok(Reply::Ok)
    }

    /// When the earliest relay signature has a step due (see `expiry.rs`).
    pub(super) fn relays_expiry_due(&self, notice: Duration) -> Option<Duration> {
        self.cross_rooms
            .relays
            .values()
            .map(|r| r.signature.next(notice).0)
            .min()
    }

    /// Relay signatures whose step is due: a warning goes to the client as
    /// that room's `signature-expired` (wrapped in `cross-room`); a signature
    /// that ran out ends its relay (reason 6) and the client gets
    /// `cross-room-relay-stopped`. The own room and other relays carry on.
    pub(super) async fn on_relays_expiry(&mut self, socket: &mut WebSocket) -> Flow {
        for event in self.relays_expiry_events().await {
            if let Err(e) = self.send(socket, &ServerMessage::Event { event }).await {
                return e.into();
            }
        }
        Flow::Continue
    }

    /// Fires the relay clocks that are due and ends the relays whose
    /// signature ran out; what to tell the client.
    pub(super) async fn relays_expiry_events(&mut self) -> Vec<Event> {
        let notice = self.shared.config.signature_expiry_notice;
        let now = unix_time();
        let mut due = Vec::new();
        for (room_id, relay) in &mut self.cross_rooms.relays {
            if let Some(step) = relay.signature.fire(now, notice) {
                due.push((room_id.clone(), step));
            }
        }
        let mut events = Vec::new();
        for (room_id, step) in due {
            match step {
                ExpiryStep::Warn { ctime } => events.push(Event::CrossRoom {
                    room_id,
                    event: Box::new(Event::SignatureExpired {
                        code: ErrorCode::SignatureExpired,
                        message: format!(
                            "the signature for this room expires at {ctime}; renew it before then"
                        ),
                        ctime,
                    }),
                }),
                ExpiryStep::Expire => {
                    tracing::info!(session = self.id.0, room = %room_id, "relay signature expired");
                    let reason = LeaveReason::SignatureExpired;
                    if let Some(stream_id) = self.end_relay(&room_id, reason).await {
                        events.push(Event::CrossRoomRelayStopped {
                            room_id,
                            reason,
                            stream_id: Some(stream_id),
                        });
                    }
                }
            }
        }
        events
    }

    /// A stream of one of the rooms the session relays into (to subscribe to
    /// the other rooms' hosts).
    pub(super) fn cross_room_stream(
        &self,
        stream_id: StreamId,
    ) -> Option<(StreamInfo, Arc<PublishedMedia>)> {
        self.cross_rooms
            .relays
            .keys()
            .find_map(|room| self.shared.rooms.stream(room, stream_id).ok())
    }
}

/// What a relay's forwarder woke up for.
enum Next {
    Event(SessionEvent),
    Kicked(LeaveReason),
    Closed,
}

/// Reads one relay's inbox into the session's until the relay ends.
async fn forward(room_id: RoomId, receiver: SessionInboxReceiver, session: SessionInbox) {
    let SessionInboxReceiver {
        mut events,
        mut kick,
    } = receiver;
    loop {
        let next = tokio::select! {
            // A kick drops the member, and with it the inbox's senders: the
            // kick must win over the closed channel it causes.
            biased;
            kicked = kick.wait_for(Option::is_some) => match kicked {
                Ok(reason) => Next::Kicked((*reason).unwrap_or(LeaveReason::ServerException)),
                Err(_) => Next::Closed,
            },
            event = events.recv() => event.map_or(Next::Closed, Next::Event),
        };
        let event = match next {
            Next::Event(event) => event,
            Next::Kicked(reason) => {
                // Full or closed: the session is ending and ends the relay itself.
                session
                    .try_send(SessionEvent::CrossRoomEnded { room_id, reason })
                    .ok();
                return;
            }
            Next::Closed => {
                // The relay left the room; a kick set just before is still
                // reported.
                let kicked = *kick.borrow();
                if let Some(reason) = kicked {
                    session
                        .try_send(SessionEvent::CrossRoomEnded { room_id, reason })
                        .ok(); // as above
                }
                return;
            }
        };
        let event = match event {
            SessionEvent::Send(message) => match *message {
                ServerMessage::Event { event } => {
                    SessionEvent::Send(Box::new(ServerMessage::Event {
                        event: Event::CrossRoom {
                            room_id: room_id.clone(),
                            event: Box::new(event),
                        },
                    }))
                }
                // Rooms send only events.
                _ => continue,
            },
            SessionEvent::StreamGone(stream_id) => SessionEvent::StreamGone(stream_id),
            // No link reports to a relay's inbox, and a relay has no relays.
            SessionEvent::Link(_) | SessionEvent::CrossRoomEnded { .. } => continue,
        };
        if let Err(crate::server::inbox::Refused::Full) = session.try_send(event) {
            // The session is far behind its rooms: end it, as `Outbox` would.
            session.kick(LeaveReason::ServerException);
            return;
        }
    }
}
