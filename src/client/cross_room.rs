//! Cross-room co-hosting as the SDK shows it (seed 001 chapter 1
//! "Cross-room"): what [`super::Client::start_cross_room_relay`] returns.
//!
//! The relay itself runs in the server (protocol.md "Cross-room
//! co-hosting"): the client uploads its stream once, to its own room, and the
//! server hands the same packets to the other rooms' subscribers. The other
//! rooms' happenings arrive as [`super::RoomEvent::CrossRoom`], carrying the
//! same events the own room's do; their streams are subscribed to with
//! [`super::Client::subscribe`] like the own room's.

use crate::protocol::{RoomId, StreamId, StreamInfo, UserInfo};

/// A relay into another room, as it started.
#[derive(Debug, Clone, PartialEq)]
pub struct CrossRoomInfo {
    /// The other room.
    pub room_id: RoomId,
    /// The stream relayed there.
    pub stream_id: StreamId,
    /// Its users then (this client not included), sorted by id.
    pub users: Vec<UserInfo>,
    /// Its streams then (the relayed one not included): subscribe to them
    /// like the own room's.
    pub streams: Vec<StreamInfo>,
}
