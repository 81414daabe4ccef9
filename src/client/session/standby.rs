//! Pausing and resuming a subscription (`pause-subscription`, protocol.md
//! §3c): the link stays up while the server forwards nothing, so resuming
//! costs a keyframe, not a new peer connection (a kiosk's standby for the
//! room's off-air sources, issue 14 §4).
//!
//! Invariant: after a resume the stream's video shows again only from a
//! keyframe. The server forwards from wherever the publisher is, and the
//! sequence numbers go on without a gap, so the first pictures after a
//! resume would otherwise decode against a reference from before the pause
//! (a smeared, stale picture). The receiver is told before the request goes
//! out (nothing flows before the server handles it) and drops every
//! picture until a keyframe, asking for one itself too.

use std::sync::atomic::Ordering;

use super::super::{ClientError, ClientResult};
use super::Session;
use crate::protocol::{Request, StreamId};

impl Session {
    pub(super) async fn pause_subscription(
        &mut self,
        stream_id: StreamId,
        paused: bool,
    ) -> ClientResult<()> {
        let signal = self.signal()?;
        let sub = self.subscriptions.get(&stream_id).ok_or_else(|| {
            ClientError::InvalidOperation(format!("not subscribed to stream {stream_id}"))
        })?;
        if !paused {
            sub.receiver.resumed.store(true, Ordering::Release);
        }
        signal
            .request(Request::PauseSubscription { stream_id, paused })
            .await?;
        if let Some(sub) = self.subscriptions.get_mut(&stream_id) {
            sub.paused = paused;
        }
        Ok(())
    }
}
