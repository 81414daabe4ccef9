//! Top-N audio on the client (seed 001 `enableTopThreeAudioMode`,
//! `setVolume4TopThree`, `muteAudio4TopThree`): the handle on the loudest
//! talkers the SFU sends, and the playout gain it controls.
//!
//! The SFU sends up to three talkers on one link, each on its own audio
//! track (a *slot*, with its own SSRC; see `server::sfu::topn` for why):
//! the client decodes each slot with its own Opus decoder into its own
//! [`RemoteStream`], which plays like any remote stream. Which user a slot
//! carries changes as talkers get louder or quieter; `volume-indicator`
//! ([`super::RoomEvent::VolumeIndicator`]) says who is heard and how loud.
//!
//! Volume and mute act on the decoded PCM of all three slots at once
//! ([`PlayoutGain`], applied by the decoders), so whatever plays the slots
//! follows without knowing about top-N.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use super::{ClientError, ClientResult, RemoteStream};
use crate::media::AudioFrame;

/// The playout volume of the top-N slots: 0–100 and a mute switch, shared by
/// the handle and the slots' decoders. Default 100, not muted.
#[derive(Debug, Clone)]
pub(crate) struct PlayoutGain(Arc<AtomicU32>);

/// Bit set in the shared value when muted; the volume is in the low bits.
const MUTED: u32 = 1 << 8;

impl Default for PlayoutGain {
    fn default() -> Self {
        Self(Arc::new(AtomicU32::new(100)))
    }
}

impl PlayoutGain {
    fn set_volume(&self, volume: u8) {
        let muted = self.0.load(Ordering::Acquire) & MUTED;
        self.0.store(muted | u32::from(volume), Ordering::Release);
    }

    fn set_muted(&self, muted: bool) {
        if muted {
            self.0.fetch_or(MUTED, Ordering::AcqRel);
        } else {
            self.0.fetch_and(!MUTED, Ordering::AcqRel);
        }
    }

    /// (volume 0–100, muted).
    fn get(&self) -> (u8, bool) {
        let v = self.0.load(Ordering::Acquire);
        ((v & 0xff) as u8, v & MUTED != 0)
    }

    /// Scales a decoded frame: silence when muted, else `volume`% of it.
    pub(crate) fn apply(&self, frame: &mut AudioFrame) {
        match self.get() {
            (100, false) => {}
            (_, true) | (0, _) => frame.samples.fill(0),
            (volume, false) => {
                for s in &mut frame.samples {
                    *s = (i32::from(*s) * i32::from(volume) / 100) as i16;
                }
            }
        }
    }
}

/// The loudest talkers of the room, as the SFU sends them after
/// [`super::Client::enable_top_three_audio_mode`]. Cheap to clone; the slots
/// end when top-N is disabled or the client leaves.
#[derive(Clone)]
pub struct TopNAudio {
    pub(crate) slots: Vec<RemoteStream>,
    pub(crate) gain: PlayoutGain,
}

impl TopNAudio {
    /// The slots (three), each a stream of decoded audio: play them all.
    pub fn slots(&self) -> &[RemoteStream] {
        &self.slots
    }

    /// Sets the playout volume of the top-N audio, 0–100 (seed
    /// `setVolume4TopThree`). A value above 100 is refused (90000005).
    pub fn set_volume(&self, volume: u32) -> ClientResult<()> {
        let volume = u8::try_from(volume)
            .ok()
            .filter(|v| *v <= 100)
            .ok_or_else(|| {
                ClientError::InvalidParameter(format!("volume {volume} is not in 0..=100"))
            })?;
        self.gain.set_volume(volume);
        Ok(())
    }

    /// Mutes (`true`) or unmutes the top-N audio (seed `muteAudio4TopThree`);
    /// the volume is kept.
    pub fn mute(&self, muted: bool) {
        self.gain.set_muted(muted);
    }

    /// The volume (0–100) and whether muted.
    pub fn volume(&self) -> (u8, bool) {
        self.gain.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> AudioFrame {
        AudioFrame {
            sample_rate: 48_000,
            channels: 1,
            samples: vec![1000, -1000],
        }
    }

    #[test]
    fn gain_scales_mutes_and_keeps_the_volume() {
        let gain = PlayoutGain::default();
        let mut f = frame();
        gain.apply(&mut f);
        assert_eq!(f.samples, [1000, -1000]);
        gain.set_volume(50);
        let mut f = frame();
        gain.apply(&mut f);
        assert_eq!(f.samples, [500, -500]);
        gain.set_muted(true);
        let mut f = frame();
        gain.apply(&mut f);
        assert_eq!(f.samples, [0, 0]);
        gain.set_muted(false);
        assert_eq!(gain.get(), (50, false));
    }
}
