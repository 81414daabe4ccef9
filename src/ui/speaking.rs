//! Who is speaking: a level per user in, "speaking" out, with hysteresis so
//! a border does not flicker on every syllable and background noise does not
//! light every tile (issue 16 §7).
//!
//! Input API: [`Speaking::feed`] with a user key and an RMS level (fraction
//! of full scale) each pass, from whatever measures it (the local meter, a
//! remote tile's audio tap, or a server-side volume indication). Output:
//! [`Speaking::is_speaking`] and [`Speaking::loudest`] for the tiles, the
//! participants panel and the active-speaker layout, so all three agree.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A level at or above this starts "speaking" (RMS; about -34 dBFS).
pub const START_LEVEL: f32 = 0.02;
/// Once speaking, a level below this for [`HOLD`] ends it (about -46 dBFS).
pub const STOP_LEVEL: f32 = 0.005;
/// How long a level must stay above [`START_LEVEL`] to start speaking
/// (a click or a cough does not).
pub const ATTACK: Duration = Duration::from_millis(120);
/// How long a quiet level must last to stop speaking (pauses between words
/// keep the mark).
pub const HOLD: Duration = Duration::from_millis(600);

/// One user's detector: an explicit state machine.
#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    /// Quiet.
    Silent,
    /// Loud since this time, not yet for [`ATTACK`].
    Rising(Instant),
    /// Speaking; `quiet_since` is set while the level is below [`STOP_LEVEL`].
    Speaking { quiet_since: Option<Instant> },
}

#[derive(Debug, Clone, Copy)]
struct Detector {
    state: State,
    /// Smoothed level (for "loudest").
    level: f32,
    seen: Instant,
}

impl Detector {
    fn update(&mut self, level: f32, now: Instant) {
        self.level = 0.7 * self.level + 0.3 * level;
        self.seen = now;
        self.state = match self.state {
            State::Silent if level >= START_LEVEL => State::Rising(now),
            State::Silent => State::Silent,
            State::Rising(_) if level < START_LEVEL => State::Silent,
            State::Rising(since) if now.duration_since(since) >= ATTACK => {
                State::Speaking { quiet_since: None }
            }
            s @ State::Rising(_) => s,
            State::Speaking { .. } if level >= STOP_LEVEL => State::Speaking { quiet_since: None },
            State::Speaking { quiet_since: None } => State::Speaking {
                quiet_since: Some(now),
            },
            State::Speaking {
                quiet_since: Some(q),
            } if now.duration_since(q) >= HOLD => State::Silent,
            s @ State::Speaking { .. } => s,
        };
    }
}

/// Speaking state of everyone in the room, by user key.
#[derive(Debug, Default)]
pub struct Speaking {
    users: HashMap<String, Detector>,
}

impl Speaking {
    /// The latest level of `user` (RMS, 0..1), measured at `now`. A muted
    /// user is fed 0.
    pub fn feed(&mut self, user: &str, level: f32, now: Instant) {
        match self.users.get_mut(user) {
            Some(d) => d.update(level, now),
            None => {
                let mut d = Detector {
                    state: State::Silent,
                    level: 0.0,
                    seen: now,
                };
                d.update(level, now);
                self.users.insert(user.to_owned(), d);
            }
        }
    }

    /// Forgets users not fed for [`HOLD`] (they left, or lost their audio).
    pub fn forget_stale(&mut self, now: Instant) {
        self.users
            .retain(|_, d| now.saturating_duration_since(d.seen) < HOLD);
    }

    /// Whether `user` speaks now.
    pub fn is_speaking(&self, user: &str) -> bool {
        self.users
            .get(user)
            .is_some_and(|d| matches!(d.state, State::Speaking { .. }))
    }

    /// The loudest of those speaking, if anyone speaks.
    pub fn loudest(&self) -> Option<&str> {
        self.users
            .iter()
            .filter(|(_, d)| matches!(d.state, State::Speaking { .. }))
            .max_by(|a, b| a.1.level.total_cmp(&b.1.level))
            .map(|(k, _)| k.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEP: Duration = Duration::from_millis(20);

    fn run(s: &mut Speaking, user: &str, level: f32, from: Instant, d: Duration) -> Instant {
        let mut t = from;
        while t < from + d {
            s.feed(user, level, t);
            t += STEP;
        }
        t
    }

    #[test]
    fn speech_marks_only_the_speaker_with_hysteresis() {
        let mut s = Speaking::default();
        let t0 = Instant::now();
        // Alice speaks, Bob has background noise below the start level.
        let mut t = t0;
        for _ in 0..20 {
            s.feed("alice", 0.1, t);
            s.feed("bob", 0.015, t);
            t += STEP;
        }
        assert!(s.is_speaking("alice"));
        assert!(!s.is_speaking("bob"), "noise below the start level");
        assert_eq!(s.loudest(), Some("alice"));
        // A short pause between words keeps the mark.
        let t = run(&mut s, "alice", 0.0, t, HOLD / 2);
        assert!(s.is_speaking("alice"));
        // A level between stop and start keeps it too.
        let t = run(&mut s, "alice", 0.01, t, HOLD * 2);
        assert!(s.is_speaking("alice"));
        // Silence longer than the hold ends it.
        run(&mut s, "alice", 0.0, t, HOLD + STEP * 2);
        assert!(!s.is_speaking("alice"));
    }

    #[test]
    fn a_click_is_not_speech() {
        let mut s = Speaking::default();
        let t0 = Instant::now();
        s.feed("c", 0.5, t0);
        s.feed("c", 0.0, t0 + STEP);
        run(&mut s, "c", 0.0, t0 + STEP, ATTACK * 2);
        assert!(!s.is_speaking("c"));
        assert_eq!(s.loudest(), None);
    }
}
