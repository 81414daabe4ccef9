//! Which streams a kiosk receives (issue 14 §2, §4): only what is on air
//! flows; the room's other sources wait on standby.
//!
//! A kiosk shows the program, so receiving the other sources only costs the
//! room's bandwidth and the kiosk's decoders. But a cut to a source the
//! kiosk does not hold waits for a whole new subscription (peer connection,
//! ICE, DTLS, the publisher's keyframe): over the 1 s on a loaded
//! machine. So a kiosk keeps up to [`STANDBY_MAX`] sources subscribed with
//! their subscriptions *paused* (`pause-subscription`: the link stays up,
//! the server forwards nothing), and a cut resumes one: a keyframe over a
//! link that is already there. Off air it shows the whole room, so
//! everything flows. The cut stays clean because a change first *resumes*
//! (or adds) the new sources (the [`ProgramFollower`] keeps the old program
//! on screen until their first frames after the resume decode) and only the
//! cut *pauses* the old ones:
//!
//! * flowing = every announced stream while the room is off air, else the
//!   room's program plus the program on screen (one cut behind);
//! * held = the flowing ones plus standby ones up to [`STANDBY_MAX`] in all
//!   (those already held first, then by stream id); the rest are not
//!   subscribed;
//! * while the screen still shows the whole room (off air → on air, before
//!   the cut), nothing is paused or dropped: the grid stays whole until the
//!   cut.
//!
//! [`ReceptionPlan::new`] is pure: the session feeds it what it holds, which
//! of those are paused, and what the room and the screen show, and applies
//! the plan.
//!
//! [`ProgramFollower`]: super::ProgramFollower

use std::collections::BTreeSet;

use crate::client::{Program, StreamId};

/// How many sources a kiosk holds at most, flowing and on standby together
/// (more only when more are on air or on screen). Each costs a peer
/// connection kept up (ICE consent checks, RTCP: well under 1 kbit/s) and
/// nothing else while paused.
pub const STANDBY_MAX: usize = 8;

/// Which remote streams a session receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reception {
    /// Every announced stream (a desktop room, the console).
    #[default]
    Everything,
    /// Only the on-air streams flow, everything while off air; up to
    /// [`STANDBY_MAX`] sources are held paused for a quick cut (a kiosk).
    OnAir,
}

/// What to change in a session's subscriptions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceptionPlan {
    /// Announced, to be held, not held: subscribe (a standby one is paused
    /// once its subscription is there).
    pub subscribe: Vec<StreamId>,
    /// Held, no longer to be held: unsubscribe.
    pub unsubscribe: Vec<StreamId>,
    /// Held and flowing, now on standby: pause.
    pub pause: Vec<StreamId>,
    /// Held and paused, now wanted: resume.
    pub resume: Vec<StreamId>,
}

impl Reception {
    /// Whether a stream flows (is forwarded and shown). `room` is the
    /// room's program now, `shown` the one on screen.
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
    /// which held ones are `paused` (or being paused), the room's program
    /// and the program on screen.
    pub fn new(
        reception: Reception,
        announced: impl IntoIterator<Item = StreamId>,
        held: &BTreeSet<StreamId>,
        paused: &BTreeSet<StreamId>,
        room: &Program,
        shown: &Program,
    ) -> Self {
        let announced: BTreeSet<StreamId> = announced.into_iter().collect();
        let flowing: BTreeSet<StreamId> = announced
            .iter()
            .copied()
            .filter(|id| reception.wants_new(*id, room, shown))
            .collect();
        let mut kept = flowing.clone();
        if reception == Reception::OnAir {
            // Standby: those already held first (no churn), then by id.
            let mut rest: Vec<StreamId> = announced.difference(&flowing).copied().collect();
            rest.sort_by_key(|id| (!held.contains(id), *id));
            let room_left = STANDBY_MAX.saturating_sub(kept.len());
            kept.extend(rest.into_iter().take(room_left));
        }
        // Before the first cut to a program the screen shows the room: keep it whole.
        let keep_all = reception == Reception::Everything || shown.is_off();
        let standby = |id: &&StreamId| !flowing.contains(id);
        Self {
            subscribe: kept.difference(held).copied().collect(),
            unsubscribe: if keep_all {
                Vec::new()
            } else {
                held.difference(&kept).copied().collect()
            },
            pause: if keep_all {
                Vec::new()
            } else {
                kept.intersection(held)
                    .filter(standby)
                    .filter(|id| !paused.contains(id))
                    .copied()
                    .collect()
            },
            resume: flowing
                .intersection(held)
                .filter(|id| paused.contains(id))
                .copied()
                .collect(),
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

    fn set(ids: &[StreamId]) -> BTreeSet<StreamId> {
        ids.iter().copied().collect()
    }

    fn plan(
        announced: &[StreamId],
        held: &[StreamId],
        paused: &[StreamId],
        room: &Program,
        shown: &Program,
    ) -> ReceptionPlan {
        ReceptionPlan::new(
            Reception::OnAir,
            announced.iter().copied(),
            &set(held),
            &set(paused),
            room,
            shown,
        )
    }

    #[test]
    fn a_kiosk_joining_a_show_holds_the_others_on_standby() {
        let room = Program::single(B);
        // Joined with B on air: everything is subscribed; nothing is paused
        // before the first cut (the grid stays whole until then).
        let p = plan(&[A, B, C], &[], &[], &room, &Program::off());
        assert_eq!(p.subscribe, [A, B, C]);
        assert!(p.unsubscribe.is_empty() && p.pause.is_empty());
        // Cut to B: A and C go on standby.
        let p = plan(&[A, B, C], &[A, B, C], &[], &room, &room);
        assert_eq!(p.pause, [A, C]);
        assert!(p.subscribe.is_empty() && p.unsubscribe.is_empty() && p.resume.is_empty());
        let p = plan(&[A, B, C], &[A, B, C], &[A, C], &room, &room);
        assert_eq!(p, ReceptionPlan::default());
        // The desktop room receives everything, nothing paused.
        let p = ReceptionPlan::new(
            Reception::Everything,
            [A, B, C],
            &set(&[]),
            &set(&[]),
            &room,
            &room,
        );
        assert_eq!(p.subscribe, [A, B, C]);
        assert!(p.pause.is_empty());
    }

    #[test]
    fn a_change_resumes_the_new_source_first_and_pauses_the_old_at_the_cut() {
        let (a, b) = (Program::single(A), Program::single(B));
        // The director put B on air; A is still on screen.
        let p = plan(&[A, B, C], &[A, B, C], &[B, C], &b, &a);
        assert_eq!(p.resume, [B]);
        assert!(p.pause.is_empty(), "A flows until the cut");
        assert!(p.subscribe.is_empty() && p.unsubscribe.is_empty());
        // Cut to B: A goes on standby.
        let p = plan(&[A, B, C], &[A, B, C], &[C], &b, &b);
        assert_eq!(p.pause, [A]);
        assert!(p.resume.is_empty() && p.unsubscribe.is_empty());
    }

    #[test]
    fn standby_is_bounded_and_the_program_always_flows() {
        let ids: Vec<StreamId> = (1..=12).map(StreamId).collect();
        let room = Program::single(StreamId(12));
        let p = plan(&ids, &[], &[], &room, &room);
        // The program plus the 7 smallest ids.
        let mut want: Vec<StreamId> = (1..=7).map(StreamId).collect();
        want.push(StreamId(12));
        assert_eq!(p.subscribe, want);
        // Those already held stay held before others of smaller ids.
        let held: Vec<StreamId> = (5..=12).map(StreamId).collect();
        let p = plan(&ids, &held, &[], &room, &room);
        assert!(p.subscribe.is_empty() && p.unsubscribe.is_empty());
        // Off air: the whole room flows, past the bound.
        let p = plan(&ids, &held, &held[..7], &Program::off(), &room);
        assert_eq!(p.subscribe, (1..=4).map(StreamId).collect::<Vec<_>>());
        assert_eq!(p.resume, held[..7]);
    }

    #[test]
    fn off_air_resumes_the_room_and_the_first_cut_pauses_it() {
        let quad = Program {
            layout: ProgramLayout::Quad,
            streams: vec![C, A],
        };
        let off = Program::off();
        // Off air: everything flows, nothing dropped.
        let p = plan(&[A, B, C], &[A, B], &[B], &off, &quad);
        assert_eq!(p.subscribe, [C]);
        assert_eq!(p.resume, [B]);
        assert!(p.unsubscribe.is_empty() && p.pause.is_empty());
        // On air again, the screen still on the room: the grid stays whole.
        let p = plan(&[A, B, C], &[A, B, C], &[], &quad, &off);
        assert_eq!(p, ReceptionPlan::default(), "the grid stays whole");
        // The cut: B (off the program) goes on standby.
        let p = plan(&[A, B, C], &[A, B, C], &[], &quad, &quad);
        assert_eq!(p.pause, [B]);
        // A stream gone from the room is dropped.
        let p = plan(&[A, C], &[A, B, C], &[B], &quad, &quad);
        assert_eq!(p.unsubscribe, [B]);
    }
}
