//! One stream's media, in arrival order, into its MP4 file on the room clock.
//!
//! Each track's first packets are held while its start settles
//! ([`super::TrackClock`]), then written in the order they came; after that
//! every packet goes straight through. At most [`super::clock::SETTLE_PACKETS`]
//! packets per track are held. Both recorders (the server's and
//! `huddle record`'s) feed their files through this.

use std::collections::VecDeque;
use std::time::Instant;

use super::{
    AUDIO_CLOCK_RATE, Mp4Recorder, RecordResult, RecordingSummary, RoomClock, TrackClock,
    VIDEO_CLOCK_RATE,
};

/// A video event held while the video track settles.
enum Video {
    Unit { extended: i64, annexb: Vec<u8> },
    Lost,
}

/// An [`Mp4Recorder`] fed in arrival order.
pub struct StreamRecorder {
    recorder: Mp4Recorder,
    video_clock: TrackClock,
    audio_clock: TrackClock,
    held_video: VecDeque<Video>,
    held_audio: VecDeque<(i64, Vec<u8>)>,
}

impl StreamRecorder {
    /// Writes into `recorder`, counting from `clock`'s origin.
    pub fn new(recorder: Mp4Recorder, clock: RoomClock) -> Self {
        Self {
            recorder,
            video_clock: clock.track(VIDEO_CLOCK_RATE),
            audio_clock: clock.track(AUDIO_CLOCK_RATE),
            held_video: VecDeque::new(),
            held_audio: VecDeque::new(),
        }
    }

    /// One whole H.264 access unit (Annex B) with its RTP timestamp, its last
    /// packet arrived `at`.
    pub fn video(&mut self, rtp: u32, at: Instant, annexb: &[u8]) -> RecordResult<()> {
        let extended = self.video_clock.observe(rtp, at);
        if self.video_clock.settled() && self.held_video.is_empty() {
            let ticks = self.video_clock.place(extended);
            return self.recorder.push_video(ticks, annexb);
        }
        self.held_video.push_back(Video::Unit {
            extended,
            annexb: annexb.to_vec(),
        });
        self.release_video()
    }

    /// A video unit was lost (see [`Mp4Recorder::video_lost`]); kept in order
    /// with the units held before it.
    pub fn video_lost(&mut self) {
        if self.held_video.is_empty() {
            self.recorder.video_lost();
        } else {
            self.held_video.push_back(Video::Lost);
        }
    }

    /// One Opus packet with its RTP timestamp, arrived `at`.
    pub fn audio(&mut self, rtp: u32, at: Instant, packet: &[u8]) -> RecordResult<()> {
        let extended = self.audio_clock.observe(rtp, at);
        if self.audio_clock.settled() && self.held_audio.is_empty() {
            let ticks = self.audio_clock.place(extended);
            return self.recorder.push_audio(ticks, packet);
        }
        self.held_audio.push_back((extended, packet.to_vec()));
        self.release_audio()
    }

    /// The video track waits for a keyframe (request one, rate-limited). True
    /// from the start, while the first units are held: a recording mostly
    /// starts inside a group of pictures.
    pub fn wants_keyframe(&self) -> bool {
        self.recorder.wants_keyframe()
    }

    /// Writes what is held and closes the file (see [`Mp4Recorder::finish`]).
    pub fn finish(mut self) -> RecordResult<RecordingSummary> {
        self.video_clock.settle_now();
        self.audio_clock.settle_now();
        self.release_video()?;
        self.release_audio()?;
        self.recorder.finish()
    }

    fn release_video(&mut self) -> RecordResult<()> {
        if !self.video_clock.settled() {
            return Ok(());
        }
        while let Some(event) = self.held_video.pop_front() {
            match event {
                Video::Unit { extended, annexb } => {
                    let ticks = self.video_clock.place(extended);
                    self.recorder.push_video(ticks, &annexb)?;
                }
                Video::Lost => self.recorder.video_lost(),
            }
        }
        Ok(())
    }

    fn release_audio(&mut self) -> RecordResult<()> {
        if !self.audio_clock.settled() {
            return Ok(());
        }
        while let Some((extended, packet)) = self.held_audio.pop_front() {
            let ticks = self.audio_clock.place(extended);
            self.recorder.push_audio(ticks, &packet)?;
        }
        Ok(())
    }
}
