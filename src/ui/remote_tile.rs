//! UI-side state of one subscribed remote stream.

use std::time::Instant;

use crate::client::{RemoteStream, StreamInfo};

use super::audio_tap::AudioTap;
use super::net_sampler::NetSampler;
use super::widgets::NetMark;

/// A subscribed stream and what the UI keeps about it.
pub struct RemoteTile {
    /// The receiving end.
    pub stream: RemoteStream,
    /// Latest announced info (mute flags change with `StreamUpdated`).
    pub info: StreamInfo,
    /// Level meter + playout; `None` for video-only streams or if the thread
    /// could not start.
    pub audio: Option<AudioTap>,
    net: NetSampler,
    /// Latest network figures.
    pub mark: Option<NetMark>,
    /// No frame for the detection interval (`StreamInterrupted`) and not
    /// recovered since.
    pub interrupted: bool,
}

impl RemoteTile {
    /// Wraps a fresh subscription.
    pub fn new(stream: RemoteStream, audio: Option<AudioTap>) -> Self {
        let info = stream.info().clone();
        Self {
            stream,
            info,
            audio,
            net: NetSampler::default(),
            mark: None,
            interrupted: false,
        }
    }

    /// Refreshes the network mark (once a second).
    pub fn sample(&mut self, now: Instant) {
        let stream = &self.stream;
        self.mark = self.net.update(now, || stream.stats());
    }

    /// RMS level of the latest audio.
    pub fn level(&self) -> f32 {
        self.audio.as_ref().map_or(0.0, |a| a.shared().level())
    }
}
