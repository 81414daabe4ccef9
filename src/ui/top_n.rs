//! Top-N audio in the app (seed `enableTopThreeAudioMode`,
//! `volume-indicator`): the toggle's state, the three slots' playout, and
//! who the indicator says is speaking (the speaking borders follow it while
//! the mode is on).
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

/// Volume (0–100) from which the indicator's talker shows as speaking.
const SPEAKING_VOLUME: u8 = 10;

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

    /// Whether the indicator named `user` speaking lately.
    pub fn is_speaking(&self, user: &UserId, now: Instant) -> bool {
        self.speakers.get(user).is_some_and(|(volume, at)| {
            *volume >= SPEAKING_VOLUME && now.saturating_duration_since(*at) < SPEAKING_HOLD
        })
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
                    volume: 60,
                },
                UserVolume {
                    user_id: UserId("b".into()),
                    volume: 2,
                },
            ],
            t0,
        );
        assert!(mode.is_speaking(&user, t0 + Duration::from_millis(600)));
        assert!(!mode.is_speaking(&UserId("b".into()), t0));
        assert!(!mode.is_speaking(&user, t0 + SPEAKING_HOLD));
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
