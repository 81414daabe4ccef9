//! How a kiosk follows the room's program without a black flash.
//!
//! When the director puts a new source on air, the kiosk keeps showing what
//! is on air now until every new on-air video has decoded a frame (its
//! subscription started at a keyframe, so that frame is whole; a source
//! back from standby counts only frames after its resume, which start at a
//! keyframe too: `session/standby.rs`), then cuts.
//! A source that never delivers (a muted camera, a stalled link) does not
//! hold the cut back longer than [`CUT_DEADLINE`]. Leaving the program
//! (off air) cuts at once: the whole room is already on screen.
//!
//! States: `Steady` (what is shown is the program) and `Cueing` (a new
//! program waits for its first frames, the old one stays on screen).

use std::time::{Duration, Instant};

use crate::client::{Program, StreamId};

/// The longest a cut waits for the new sources' first frames.
pub const CUT_DEADLINE: Duration = Duration::from_secs(2);

/// Where a follower stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cue {
    /// The program on screen is the room's.
    Steady,
    /// `next` waits for its first frames since `since`.
    Cueing { next: Program, since: Instant },
}

/// The program a kiosk shows, one cut behind the room's.
#[derive(Debug, Clone)]
pub struct ProgramFollower {
    shown: Program,
    cue: Cue,
}

impl Default for ProgramFollower {
    fn default() -> Self {
        Self {
            shown: Program::off(),
            cue: Cue::Steady,
        }
    }
}

impl ProgramFollower {
    /// What is on screen.
    pub fn shown(&self) -> &Program {
        &self.shown
    }

    /// Whether a cut waits for first frames.
    pub fn is_cueing(&self) -> bool {
        matches!(self.cue, Cue::Cueing { .. })
    }

    /// Follows `room` (the room's program now); `ready` says whether a
    /// stream has a decoded frame to show. Returns whether the shown program
    /// changed.
    pub fn update(
        &mut self,
        room: &Program,
        ready: impl Fn(StreamId) -> bool,
        now: Instant,
    ) -> bool {
        if *room == self.shown {
            self.cue = Cue::Steady;
            return false;
        }
        let since = match &self.cue {
            Cue::Cueing { next, since } if next == room => *since,
            _ => now,
        };
        let all_ready = room.streams.iter().all(|s| ready(*s));
        if room.is_off() || all_ready || now.saturating_duration_since(since) >= CUT_DEADLINE {
            self.shown = room.clone();
            self.cue = Cue::Steady;
            true
        } else {
            self.cue = Cue::Cueing {
                next: room.clone(),
                since,
            };
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_once_the_new_source_has_a_frame() {
        let t0 = Instant::now();
        let mut f = ProgramFollower::default();
        let a = Program::single(StreamId(1));
        assert!(f.update(&a, |_| true, t0));
        assert_eq!(f.shown(), &a);
        let b = Program::single(StreamId(2));
        // No frame of 2 yet: 1 stays on screen.
        assert!(!f.update(&b, |s| s == StreamId(1), t0));
        assert_eq!(f.shown(), &a);
        assert!(f.is_cueing());
        assert!(!f.update(&b, |s| s == StreamId(1), t0 + Duration::from_millis(500)));
        // Its first frame decoded: cut.
        assert!(f.update(&b, |_| true, t0 + Duration::from_millis(600)));
        assert_eq!(f.shown(), &b);
        assert!(!f.is_cueing());
    }

    #[test]
    fn a_silent_source_cannot_hold_the_cut_forever() {
        let t0 = Instant::now();
        let mut f = ProgramFollower::default();
        let b = Program::single(StreamId(2));
        assert!(!f.update(&b, |_| false, t0));
        assert!(!f.update(&b, |_| false, t0 + CUT_DEADLINE - Duration::from_millis(1)));
        assert!(f.update(&b, |_| false, t0 + CUT_DEADLINE));
        assert_eq!(f.shown(), &b);
    }

    #[test]
    fn off_air_cuts_at_once_and_a_new_cue_restarts_the_clock() {
        let t0 = Instant::now();
        let mut f = ProgramFollower::default();
        let a = Program::single(StreamId(1));
        f.update(&a, |_| true, t0);
        assert!(f.update(&Program::off(), |_| false, t0));
        let b = Program::single(StreamId(2));
        let c = Program::single(StreamId(3));
        f.update(&b, |_| false, t0);
        // The director changed its mind: the wait starts again for c.
        assert!(!f.update(&c, |_| false, t0 + Duration::from_millis(1900)));
        assert!(!f.update(&c, |_| false, t0 + Duration::from_millis(3000)));
        assert!(f.update(&c, |_| false, t0 + Duration::from_millis(3900)));
    }
}
