//! Top-N audio in the app (seed `enableTopThreeAudioMode`,
//! `volume-indicator`): the toggle's state, the three slots' playout, and
//! who the indicator says is speaking: while the mode is on, the room's
//! speaking detector (`speaking.rs`, so the borders and the active speaker)
//! is fed [`TopNMode::level`] instead of each tile's measured level.
//!
//! While on, the room's own per-stream audio taps play at volume 0 (their
//! level meters keep running) so each voice is heard once, through the
//! slots.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::client::{ClientResult, RemoteStream, TopNAudio, UserId, UserVolume};

use super::audio_tap::AudioTap;

/// A talker named by the indicator counts as speaking this long (three
/// indicators), so one lost event does not blink its border.
const SPEAKING_HOLD: Duration = Duration::from_millis(1500);

/// Where the mode stands.
enum State {
    Off,
    /// The SDK call to turn it on or off is under way.
    Switching {
        to_on: bool,
    },
    /// On: the slots play through these taps.
    On {
        _audio: TopNAudio,
        _taps: Vec<AudioTap>,
    },
}

/// The app's top-N mode.
pub struct TopNMode {
    state: State,
    /// The indicator's talkers and when they were last named.
    speakers: BTreeMap<UserId, (u8, Instant)>,
}

impl Default for TopNMode {
    fn default() -> Self {
        Self {
            state: State::Off,
            speakers: BTreeMap::new(),
        }
    }
}

impl TopNMode {
    /// On (slots playing).
    pub fn is_on(&self) -> bool {
        matches!(self.state, State::On { .. })
    }

    /// Volume of the room's per-stream taps: 0 while the slots play.
    pub fn tile_volume(&self) -> f32 {
        if self.is_on() { 0.0 } else { 1.0 }
    }

    /// Starts switching; `false` when a switch is already under way or the
    /// mode is already where asked.
    pub fn begin(&mut self, on: bool) -> bool {
        let ready = match self.state {
            State::Off => on,
            State::On { .. } => !on,
            State::Switching { .. } => false,
        };
        if ready {
            self.state = State::Switching { to_on: on };
        }
        ready
    }

    /// The SDK call finished; `play` starts a tap for a slot. Returns an
    /// error for the user.
    pub fn finish(
        &mut self,
        result: ClientResult<Option<TopNAudio>>,
        mut play: impl FnMut(&RemoteStream) -> Option<AudioTap>,
    ) -> Result<(), String> {
        let to_on = matches!(self.state, State::Switching { to_on: true });
        self.speakers.clear();
        match result {
            Ok(Some(audio)) => {
                let taps = audio.slots().iter().filter_map(&mut play).collect();
                self.state = State::On {
                    _audio: audio,
                    _taps: taps,
                };
                Ok(())
            }
            Ok(None) => {
                self.state = State::Off;
                Ok(())
            }
            Err(e) => {
                // A failed "on" stays off; a failed "off" is off on our side too.
                self.state = State::Off;
                Err(format!(
                    "top-N audio {} failed: {e}",
                    if to_on { "on" } else { "off" }
                ))
            }
        }
    }

    /// A `volume-indicator` arrived.
    pub fn on_indicator(&mut self, speakers: Vec<UserVolume>, now: Instant) {
        for s in speakers {
            self.speakers.insert(s.user_id, (s.volume, now));
        }
        self.speakers
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < SPEAKING_HOLD);
    }

    /// `user`'s level for the speaking detector while the mode is on: the
    /// indicator's volume back in RMS (0–100 over −90…0 dBov), 0 when the
    /// indicator has not named it lately.
    pub fn level(&self, user: &UserId, now: Instant) -> f32 {
        match self.speakers.get(user) {
            Some((volume, at)) if now.saturating_duration_since(*at) < SPEAKING_HOLD => {
                let dbov = -90.0 * (1.0 - f32::from(*volume) / 100.0);
                10f32.powf(dbov / 20.0)
            }
            _ => 0.0,
        }
    }

    /// The toggle; returns the state asked for when clicked.
    pub fn toggle(&self, ui: &mut egui::Ui) -> Option<bool> {
        let mut on = matches!(
            self.state,
            State::On { .. } | State::Switching { to_on: true }
        );
        let enabled = !matches!(self.state, State::Switching { .. });
        let response = ui
            .add_enabled(enabled, egui::Checkbox::new(&mut on, "loudest 3 only"))
            .on_hover_text("hear only the three loudest talkers (top-N audio)");
        response.changed().then_some(on)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indicator_marks_speakers_for_a_while() {
        let mut mode = TopNMode::default();
        let t0 = Instant::now();
        let user = UserId("a".into());
        mode.on_indicator(
            vec![
                UserVolume {
                    user_id: user.clone(),
                    volume: 80,
                },
                UserVolume {
                    user_id: UserId("b".into()),
                    volume: 2,
                },
            ],
            t0,
        );
        // 80 → −18 dBov → RMS 0.126 (speaking); 2 → −88 dBov (not).
        assert!((mode.level(&user, t0) - 0.126).abs() < 0.001);
        let later = t0 + Duration::from_millis(600);
        assert!(mode.level(&user, later) >= super::super::speaking::START_LEVEL);
        assert!(mode.level(&UserId("b".into()), t0) < super::super::speaking::STOP_LEVEL);
        // Not named for the hold time, or never: 0.
        assert_eq!(mode.level(&user, t0 + SPEAKING_HOLD), 0.0);
        assert_eq!(mode.level(&UserId("c".into()), t0), 0.0);
    }

    #[test]
    fn switching_is_one_at_a_time() {
        let mut mode = TopNMode::default();
        assert!(!mode.begin(false));
        assert!(mode.begin(true));
        assert!(!mode.begin(false));
        assert!(mode.finish(Ok(None), |_| None).is_ok());
        assert!(!mode.is_on());
        assert!(mode.begin(true));
        assert!(
            mode.finish(
                Err(crate::client::ClientError::Disconnected("x".into())),
                |_| None
            )
            .is_err()
        );
        assert!(!mode.is_on());
    }
}
