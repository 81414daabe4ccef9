//! A kiosk's standby applied (`console::reception`): which held
//! subscriptions flow and which are paused, with the pause and resume calls
//! in flight, and which of a stream's pictures belong to its flow now.
//!
//! Invariant: a stream counts as showing only from a picture decoded after
//! its last resume (the SDK decodes it from a keyframe sent after the
//! resume), never one from before its pause: a cut waits for that picture
//! ([`RoomSession::shows_fresh_video`]), and the grid draws a paused or
//! resuming stream as a placeholder, not its last picture.
//!
//! One call per stream at a time: a pause and a resume sent together could
//! reach the SDK in either order. The plan is looked at again when the reply
//! comes.

use std::collections::{BTreeMap, BTreeSet};

use crate::client::{ClientResult, StreamId};

use super::{RoomSession, SessionReply, send_reply};

/// Where one held stream stands. A held stream with no entry flows since
/// its subscription began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// The pause request is in flight.
    Pausing,
    /// Paused: the link is up, nothing comes.
    Paused,
    /// The resume request is in flight; pictures after video generation
    /// `from` are the resumed flow's.
    Resuming { from: u64 },
    /// Flowing again since video generation `from`.
    Live { from: u64 },
}

/// The flows of a session's held streams.
#[derive(Debug, Default)]
pub(crate) struct Flows(BTreeMap<StreamId, Flow>);

impl Flows {
    /// Held streams paused or being paused.
    pub(super) fn paused(&self) -> BTreeSet<StreamId> {
        self.0
            .iter()
            .filter(|(_, f)| matches!(f, Flow::Pausing | Flow::Paused))
            .map(|(id, _)| *id)
            .collect()
    }

    /// A pause or resume is in flight.
    fn in_flight(&self, id: StreamId) -> bool {
        matches!(self.0.get(&id), Some(Flow::Pausing | Flow::Resuming { .. }))
    }

    /// The video generation after which pictures are the flow's; `None`
    /// while paused (or pausing).
    fn fresh_after(&self, id: StreamId) -> Option<u64> {
        match self.0.get(&id) {
            None => Some(0),
            Some(Flow::Resuming { from } | Flow::Live { from }) => Some(*from),
            Some(Flow::Pausing | Flow::Paused) => None,
        }
    }

    /// Forgets a stream no longer held.
    pub(super) fn forget(&mut self, id: StreamId) {
        self.0.remove(&id);
    }

    /// Forgets every stream `held` says no.
    pub(super) fn retain(&mut self, held: impl Fn(StreamId) -> bool) {
        self.0.retain(|id, _| held(*id));
    }
}

impl RoomSession {
    /// Whether `id` has a picture of its current flow to show: its video
    /// decoded a frame after its last resume (after its subscription when
    /// never paused), or it has no video.
    pub fn shows_fresh_video(&self, id: StreamId) -> bool {
        let Some(tile) = self.tiles.get(&id) else {
            return false;
        };
        if tile.info.video.is_none() {
            return true;
        }
        self.flows
            .fresh_after(id)
            .is_some_and(|from| tile.stream.video().generation() > from)
    }

    /// Whether `id` is held paused (on standby), the pause confirmed.
    #[cfg(test)]
    pub fn is_on_standby(&self, id: StreamId) -> bool {
        self.flows.0.get(&id) == Some(&Flow::Paused)
    }

    /// Pauses a held, flowing stream (off air: standby).
    pub(super) fn start_pause(&mut self, id: StreamId) {
        if !self.tiles.contains_key(&id) || self.flows.in_flight(id) {
            return; // looked at again when the subscription or the call finishes
        }
        tracing::info!("stream {}: off air, on standby", id.0);
        self.flows.0.insert(id, Flow::Pausing);
        self.spawn_standby(id, true);
    }

    /// Resumes a paused stream (on air again).
    pub(super) fn start_resume(&mut self, id: StreamId) {
        let Some(tile) = self.tiles.get(&id) else {
            return;
        };
        if self.flows.in_flight(id) {
            return;
        }
        tracing::info!("stream {}: on air, resuming", id.0);
        let from = tile.stream.video().generation();
        self.flows.0.insert(id, Flow::Resuming { from });
        self.spawn_standby(id, false);
    }

    fn spawn_standby(&self, id: StreamId, paused: bool) {
        let client = self.client.clone();
        let tx = self.replies_tx.clone();
        let ctx = self.ctx.clone();
        self.rt.spawn(async move {
            let result = if paused {
                client.pause_subscription(id).await
            } else {
                client.resume_subscription(id).await
            };
            send_reply(&tx, &ctx, SessionReply::Standby(id, paused, result));
        });
    }

    /// A pause (`paused`) or resume finished.
    pub(super) fn on_standby(&mut self, id: StreamId, paused: bool, result: ClientResult<()>) {
        let Some(flow) = self.flows.0.get(&id).copied() else {
            return; // no longer held
        };
        if let Err(e) = result
            && self.streams.contains_key(&id)
        {
            // Not retried (it would fail the same way): a failed pause costs
            // bandwidth, a failed resume lets the cut's deadline pass.
            tracing::warn!(
                "stream {}: {} failed: {e}",
                id.0,
                if paused { "pausing" } else { "resuming" }
            );
        }
        let next = match flow {
            Flow::Pausing => Flow::Paused,
            Flow::Resuming { from } => Flow::Live { from },
            other => other,
        };
        self.flows.0.insert(id, next);
        self.reconcile_reception();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_count_only_after_the_last_resume_and_never_while_paused() {
        let (a, b) = (StreamId(1), StreamId(2));
        let mut flows = Flows::default();
        // Never paused: every picture counts.
        assert_eq!(flows.fresh_after(a), Some(0));
        flows.0.insert(a, Flow::Pausing);
        assert!(flows.in_flight(a));
        assert_eq!(flows.fresh_after(a), None, "nothing counts while pausing");
        flows.0.insert(a, Flow::Paused);
        assert!(!flows.in_flight(a));
        assert_eq!(flows.paused(), BTreeSet::from([a]));
        // Resumed at generation 7: picture 7 is from before the pause.
        flows.0.insert(a, Flow::Resuming { from: 7 });
        assert!(flows.in_flight(a) && flows.paused().is_empty());
        assert_eq!(flows.fresh_after(a), Some(7));
        flows.0.insert(a, Flow::Live { from: 7 });
        assert_eq!(flows.fresh_after(a), Some(7));
        flows.0.insert(b, Flow::Paused);
        flows.retain(|id| id == b);
        assert_eq!(
            flows.fresh_after(a),
            Some(0),
            "forgotten: flows since subscribed"
        );
        assert_eq!(flows.paused(), BTreeSet::from([b]));
    }
}
