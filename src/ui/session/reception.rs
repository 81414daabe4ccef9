//! Which remote streams the session receives, applied: everything (the
//! desktop room, the console) or only what is on air, the rest on standby
//! (a kiosk; the plan is `console::reception`, the pauses `standby.rs`). Subscriptions and unsubscriptions run as SDK calls
//! in the background; a stream is never subscribed while its unsubscription
//! is in flight (the two calls could reach the SDK in either order), it is
//! looked at again when that reply comes.

use std::collections::BTreeSet;

use crate::client::{ClientResult, Program, StreamId, SubscribeOptions};
use crate::ui::console::reception::{Reception, ReceptionPlan};

use super::{RoomSession, SessionReply, send_reply};

impl RoomSession {
    /// Receives only the on-air streams from now on ([`Reception::OnAir`],
    /// a kiosk), or everything.
    pub fn set_reception(&mut self, reception: Reception) {
        self.reception = reception;
        self.apply_reception_plan();
    }

    /// The program on screen changed (a kiosk's cut): streams that left it
    /// are unsubscribed.
    pub fn on_program_shown(&mut self, shown: &Program) {
        if *shown != self.shown {
            self.shown = shown.clone();
            self.reconcile_reception();
        }
    }

    /// Whether a stream announced now is received.
    pub(super) fn wants_stream(&self, id: StreamId) -> bool {
        !self.unsubscribing.contains(&id)
            && self
                .reception
                .wants_new(id, &self.program.program, &self.shown)
    }

    /// Brings a kiosk's subscriptions to what is on air; nothing changes
    /// for a session receiving everything (it subscribes as streams come).
    pub(super) fn reconcile_reception(&mut self) {
        if self.reception == Reception::OnAir {
            self.apply_reception_plan();
        }
    }

    fn apply_reception_plan(&mut self) {
        let held: BTreeSet<StreamId> = self
            .tiles
            .keys()
            .chain(&self.subscribing)
            .chain(&self.unsubscribing)
            .copied()
            .collect();
        self.flows.retain(|id| held.contains(&id));
        let announced = self
            .streams
            .values()
            .filter(|s| s.user_id != self.me)
            .map(|s| s.stream_id);
        let plan = ReceptionPlan::new(
            self.reception,
            announced,
            &held,
            &self.flows.paused(),
            &self.program.program,
            &self.shown,
        );
        for id in plan.subscribe {
            self.start_subscribe(id);
        }
        // Resumes first: the cut waits on them, the pauses on nothing.
        for id in plan.resume {
            self.start_resume(id);
        }
        for id in plan.pause {
            self.start_pause(id);
        }
        for id in plan.unsubscribe {
            // One still subscribing is looked at again when its reply comes.
            if self.tiles.remove(&id).is_some() {
                self.flows.forget(id);
                self.start_unsubscribe(id);
            }
        }
    }

    /// Subscribes to `id` in the background ([`SessionReply::Subscribed`]).
    pub(super) fn start_subscribe(&mut self, id: StreamId) {
        if !self.subscribing.insert(id) {
            return;
        }
        let client = self.client.clone();
        let tx = self.replies_tx.clone();
        let ctx = self.ctx.clone();
        self.rt.spawn(async move {
            let result = client.subscribe(id, SubscribeOptions::default()).await;
            send_reply(&tx, &ctx, SessionReply::Subscribed(id, Box::new(result)));
        });
    }

    fn start_unsubscribe(&mut self, id: StreamId) {
        tracing::info!("stream {}: off air, unsubscribing", id.0);
        self.unsubscribing.insert(id);
        let client = self.client.clone();
        let tx = self.replies_tx.clone();
        let ctx = self.ctx.clone();
        self.rt.spawn(async move {
            let stop = SubscribeOptions {
                audio: true,
                video: true,
            };
            let result = client.unsubscribe(id, stop).await;
            send_reply(&tx, &ctx, SessionReply::Unsubscribed(id, result));
        });
    }

    /// An unsubscription finished: the stream may be wanted again by now.
    pub(super) fn on_unsubscribed(&mut self, id: StreamId, result: ClientResult<()>) {
        self.unsubscribing.remove(&id);
        if let Err(e) = result {
            // A stream that went away meanwhile has no subscription left.
            if self.streams.contains_key(&id) {
                tracing::warn!("stream {}: unsubscribing failed: {e}", id.0);
            }
        }
        self.reconcile_reception();
    }
}
