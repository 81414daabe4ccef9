//! `pause-subscription` (protocol.md §3c, issue 14 §4): a subscriber keeps a
//! subscription's link up (ICE, DTLS, the leg in the hub) while nothing is
//! forwarded on it, and resumes it later with a keyframe. A kiosk holds the
//! room's off-air sources so, and a cut to one costs a keyframe, not a new
//! peer connection.
//!
//! Pausing is orthogonal to what `subscribe` asked for: a paused
//! subscription forwards nothing whatever its audio and video say, and
//! resumes with them. Pausing what is paused (or resuming what flows)
//! changes nothing. `stream-subscribed` follows each change with what is
//! forwarded now (`audio` and `video` false while paused).

use super::{RequestError, Session};
use crate::protocol::{Reply, StreamId};

impl Session {
    pub(super) fn pause_subscription(
        &mut self,
        stream_id: StreamId,
        paused: bool,
    ) -> Result<Reply, RequestError> {
        self.joined()?;
        let sub = self.subscription(stream_id)?;
        if sub.link.is_paused() != paused {
            sub.link.set_paused(paused);
            self.push_subscribed(stream_id, sub);
        }
        Ok(Reply::Ok)
    }
}
