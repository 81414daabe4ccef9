//! How the room and the SFU reach a session: each session's bounded inbox,
//! the events that go into it, and the link events an SFU link reports.
//!
//! A leaf module: it imports only the protocol, so `room`, `sfu` and
//! `signalling` can all depend on it without depending on each other.
//! (`room` imports `sfu` for the media a stream owns; `sfu` imports nothing
//! of `room`; `signalling` imports both.)

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use crate::protocol::{IceCandidate, LeaveReason, LinkId, RoomId, ServerMessage, StreamId};

/// Capacity of each session's inbox (room → session). When full the session is
/// closed: it is not reading its socket fast enough to keep up with its room.
pub const SESSION_INBOX_CAPACITY: usize = 512;

/// Identifies one WebSocket connection for the server's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

/// What the room (or an SFU link) tells a session.
#[derive(Debug)]
pub enum SessionEvent {
    /// Forward this message to the client (boxed: keeps the event small).
    Send(Box<ServerMessage>),
    /// A stream the session may be subscribed to is gone; drop the subscription.
    StreamGone(StreamId),
    /// An SFU link of this session changed state.
    Link(LinkEvent),
    /// A cross-room relay of this session was removed from its room by the
    /// room (the same user id joined it, or the relay fell behind): end it.
    CrossRoomEnded {
        /// The other room.
        room_id: RoomId,
        /// Why the room removed it.
        reason: LeaveReason,
    },
}

/// How the room and the SFU reach a session: a bounded event inbox, plus a
/// separate kick signal that works even when the inbox is full (which is exactly
/// when a slow session must be kicked).
#[derive(Clone, Debug)]
pub struct SessionInbox {
    events: mpsc::Sender<SessionEvent>,
    kick: Arc<watch::Sender<Option<LeaveReason>>>,
}

/// Why [`SessionInbox::try_send`] refused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The session is [`SESSION_INBOX_CAPACITY`] events behind.
    Full,
    /// The session has ended.
    Closed,
}

/// The session's ends of its [`SessionInbox`].
pub struct SessionInboxReceiver {
    /// Events, in order.
    pub events: mpsc::Receiver<SessionEvent>,
    /// Set once when the session must end; the reason goes in `client-banned`.
    pub kick: watch::Receiver<Option<LeaveReason>>,
}

impl SessionInbox {
    /// Whether `other` is a handle to the same session's inbox.
    pub fn same_session(&self, other: &SessionInbox) -> bool {
        Arc::ptr_eq(&self.kick, &other.kick)
    }

    /// A new inbox of [`SESSION_INBOX_CAPACITY`].
    pub fn new() -> (Self, SessionInboxReceiver) {
        let (events, events_rx) = mpsc::channel(SESSION_INBOX_CAPACITY);
        let (kick, kick_rx) = watch::channel(None);
        (
            Self {
                events,
                kick: Arc::new(kick),
            },
            SessionInboxReceiver {
                events: events_rx,
                kick: kick_rx,
            },
        )
    }

    /// Queues an event without waiting; a refused event is dropped.
    pub fn try_send(&self, event: SessionEvent) -> Result<(), Refused> {
        self.events.try_send(event).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Refused::Full,
            mpsc::error::TrySendError::Closed(_) => Refused::Closed,
        })
    }

    /// Reports a state change of one of the session's links. Dropped if the
    /// inbox is full (the session is then being closed for slowness anyway)
    /// or closed (the session ended and closes its links).
    pub fn link_event(&self, link_id: LinkId, state: LinkState) {
        self.try_send(SessionEvent::Link(LinkEvent { link_id, state }))
            .ok();
    }

    /// Tells the session to end with `reason`; the first reason wins.
    pub fn kick(&self, reason: LeaveReason) {
        self.kick.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        });
    }
}

/// What an SFU link tells its session.
#[derive(Debug)]
pub struct LinkEvent {
    /// The link.
    pub link_id: LinkId,
    /// What happened.
    pub state: LinkState,
}

/// Link state changes a session acts on.
#[derive(Debug)]
pub enum LinkState {
    /// A local candidate to trickle to the client.
    Candidate(IceCandidate),
    /// Media can flow.
    Connected,
    /// ICE/DTLS failed or the connection closed: the link is dead.
    Failed,
    /// An `auto` subscription moved to this simulcast layer slot, or paused
    /// its video (`None`): not even the smallest layer fits its downlink.
    Layer(Option<u8>),
}
