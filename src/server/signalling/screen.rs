//! Screen sharing on the server: a user publishes at most one presentation
//! stream (`publish` with `isScreen`) beside its camera streams.
//!
//! Why this exists: the seed has a code for "the number of desktop sharing
//! streams exceeds the maximum" (90100250); a second share of the same user
//! is a client bug, not something to forward. The check reads the session's
//! own publications from the room registry, so it needs no state of its own.

use super::{RequestError, Session};
use crate::protocol::RoomId;

/// Presentation streams one user may publish at once.
pub(super) const MAX_SCREEN_STREAMS_PER_USER: usize = 1;

impl Session {
    /// Refuses a screen publication when the caller already shares one.
    pub(super) fn check_screen_limit(&self, room_id: &RoomId) -> Result<(), RequestError> {
        let shared = self
            .publications
            .keys()
            .filter(|id| {
                self.shared
                    .rooms
                    .stream(room_id, **id)
                    .is_ok_and(|(info, _)| info.is_screen)
            })
            .count();
        if shared >= MAX_SCREEN_STREAMS_PER_USER {
            return Err(RequestError::TooManyScreens(MAX_SCREEN_STREAMS_PER_USER));
        }
        Ok(())
    }
}
