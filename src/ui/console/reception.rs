//! Which streams a kiosk receives (issue 14 §2): only what is on air.
//!
//! A kiosk shows the program, so receiving the other sources only costs the
//! room's bandwidth and the kiosk's decoders. Off air it shows the whole
//! room, so it receives everything. The cut stays clean because a change
//! first *adds* the new sources (the [`ProgramFollower`] keeps the old
//! program on screen until their first frames decode) and only the cut
//! *removes* the old ones:
//!
//! * wanted = every announced stream while the room is off air, else the
//!   room's program plus the program on screen (one cut behind);
//! * while the screen still shows the whole room (off air → on air, before
//!   the cut), nothing is dropped either: the grid stays whole until the cut.
//!
//! [`ReceptionPlan::new`] is pure: the session feeds it what it holds and
//! what the room and the screen show, and applies the plan.
//!
//! [`ProgramFollower`]: super::ProgramFollower

use std::collections::BTreeSet;

use crate::client::{Program, StreamId};

/// Which remote streams a session receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reception {
    /// Every announced stream (a desktop room, the console).
    #[default]
    Everything,
    /// Only the on-air streams, everything while off air (a kiosk).
    OnAir,
}

/// What to change in a session's subscriptions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceptionPlan {
    /// Announced, wanted, not held: subscribe.
    pub subscribe: Vec<StreamId>,
    /// Held, no longer wanted: unsubscribe.
    pub unsubscribe: Vec<StreamId>,
}

impl Reception {
    /// Whether a newly announced stream is received at once. `room` is the
    /// room's program now.
    pub fn wants_new(self, id: StreamId, room: &Program, shown: &Program) -> bool {
        match self {
            Reception::Everything => true,
            Reception::OnAir => {
                room.is_off() || room.streams.contains(&id) || shown.streams.contains(&id)
            }
        }
    }
}

impl ReceptionPlan {
    /// The changes that bring `held` (subscribed or subscribing) to what
    /// `reception` wants, given the `announced` streams (ours excluded),
    /// the room's program and the program on screen.
    pub fn new(
        reception: Reception,
        announced: impl IntoIterator<Item = StreamId>,
        held: &BTreeSet<StreamId>,
        room: &Program,
        shown: &Program,
    ) -> Self {
        let announced: BTreeSet<StreamId> = announced.into_iter().collect();
        let wanted: BTreeSet<StreamId> = announced
            .iter()
            .copied()
            .filter(|id| reception.wants_new(*id, room, shown))
            .collect();
        // Before the first cut to a program the screen shows the room: keep it whole.
        let keep_all = reception == Reception::Everything || shown.is_off();
        Self {
            subscribe: wanted.difference(held).copied().collect(),
            unsubscribe: if keep_all {
                Vec::new()
            } else {
                held.difference(&wanted).copied().collect()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ProgramLayout;

    const A: StreamId = StreamId(1);
    const B: StreamId = StreamId(2);
    const C: StreamId = StreamId(3);

    fn held(ids: &[StreamId]) -> BTreeSet<StreamId> {
        ids.iter().copied().collect()
    }

    #[test]
    fn a_kiosk_joining_a_show_receives_only_the_program() {
        let room = Program::single(B);
        let plan = ReceptionPlan::new(
            Reception::OnAir,
            [A, B, C],
            &held(&[]),
            &room,
            &Program::off(),
        );
        assert_eq!(plan.subscribe, [B]);
        assert!(plan.unsubscribe.is_empty());
        // The desktop room receives everything.
        let plan = ReceptionPlan::new(
            Reception::Everything,
            [A, B, C],
            &held(&[]),
            &room,
            &Program::off(),
        );
        assert_eq!(plan.subscribe, [A, B, C]);
    }

    #[test]
    fn a_change_adds_the_new_source_first_and_drops_the_old_at_the_cut() {
        let (a, b) = (Program::single(A), Program::single(B));
        // The director put B on air; A is still on screen.
        let plan = ReceptionPlan::new(Reception::OnAir, [A, B, C], &held(&[A]), &b, &a);
        assert_eq!(plan.subscribe, [B]);
        assert!(plan.unsubscribe.is_empty(), "A stays until the cut");
        // Cut to B: A goes.
        let plan = ReceptionPlan::new(Reception::OnAir, [A, B, C], &held(&[A, B]), &b, &b);
        assert!(plan.subscribe.is_empty());
        assert_eq!(plan.unsubscribe, [A]);
        let plan = ReceptionPlan::new(Reception::OnAir, [A, B, C], &held(&[B]), &b, &b);
        assert_eq!(plan, ReceptionPlan::default());
    }

    #[test]
    fn off_air_receives_the_room_and_the_first_cut_trims_it() {
        let quad = Program {
            layout: ProgramLayout::Quad,
            streams: vec![C, A],
        };
        let off = Program::off();
        // Off air: everything, nothing dropped.
        let plan = ReceptionPlan::new(Reception::OnAir, [A, B, C], &held(&[A]), &off, &quad);
        assert_eq!(plan.subscribe, [B, C]);
        assert!(plan.unsubscribe.is_empty());
        // On air again, the screen still on the room: the grid stays whole.
        let plan = ReceptionPlan::new(Reception::OnAir, [A, B, C], &held(&[A, B, C]), &quad, &off);
        assert_eq!(plan, ReceptionPlan::default(), "the grid stays whole");
        // The cut: B (off the program) goes.
        let plan = ReceptionPlan::new(Reception::OnAir, [A, B, C], &held(&[A, B, C]), &quad, &quad);
        assert_eq!(plan.unsubscribe, [B]);
        // A stream gone from the room is not subscribed (the session drops
        // its tile when it is removed).
        let plan = ReceptionPlan::new(Reception::OnAir, [A], &held(&[]), &quad, &quad);
        assert_eq!(plan.subscribe, [A]);
    }
}
