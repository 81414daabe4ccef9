//! Stream state detection and mute events, the actor's side: samples each
//! subscription for [`StreamStateDetector`] on the detection tick, and turns
//! `stream-updated` into the seed's mute events.

use std::time::{Duration, Instant};

use super::Session;
use crate::client::RoomEvent;
use crate::client::media_status::{self, MuteChange};
use crate::client::stream_state::FlowChange;
use crate::protocol::{StreamId, StreamInfo};

impl Session {
    /// Turns detection on (`Some(interval)`) or off; off, the tick does not
    /// run.
    pub(super) fn set_stream_state_detection(&mut self, interval: Option<Duration>) {
        self.detector.set_interval(interval);
    }

    /// One detection tick: samples every subscription's decoded frames (or,
    /// for a receive-only client, its video packets) and announces the
    /// transitions.
    pub(super) fn detect_stream_states(&mut self) {
        self.detector
            .retain(|id| self.subscriptions.contains_key(&id));
        let now = Instant::now();
        let mut changes = Vec::new();
        for (stream_id, subscription) in &self.subscriptions {
            let info = self.streams.get(stream_id);
            let expected = info.is_some_and(|i| i.video.is_some() && !i.video_muted)
                && self.detector.video_forwarded(*stream_id);
            let decode = self.decode;
            let frames = subscription.stream.with_stats(|s| {
                if decode {
                    s.frames_decoded
                } else {
                    s.video_packets
                }
            });
            if let Some(change) = self.detector.observe(*stream_id, expected, frames, now) {
                changes.push((*stream_id, change));
            }
        }
        for (stream_id, change) in changes {
            let Some((user_id, is_screen)) = self
                .streams
                .get(&stream_id)
                .map(|i| (i.user_id.clone(), i.is_screen))
            else {
                continue;
            };
            self.emit(match change {
                FlowChange::Interrupted => RoomEvent::StreamInterrupted {
                    stream_id,
                    user_id,
                    is_screen,
                },
                FlowChange::Recovered => RoomEvent::StreamRecovered {
                    stream_id,
                    user_id,
                    is_screen,
                },
            });
        }
    }

    /// The server forwards video of `stream_id` (`stream-subscribed`), or not.
    pub(super) fn on_video_forwarded(&mut self, stream_id: StreamId, video: bool) {
        self.detector.set_video_forwarded(stream_id, video);
        // Also forgets ended subscriptions while the tick does not run.
        self.detector
            .retain(|id| self.subscriptions.contains_key(&id));
    }

    /// `stream-updated`: the seed's mute events for what changed since the
    /// stream's last announcement, after [`RoomEvent::StreamUpdated`].
    pub(super) fn emit_mute_changes(&self, before: Option<&StreamInfo>, after: &StreamInfo) {
        let Some(identity) = &self.identity else {
            return;
        };
        for change in media_status::changes(before, after) {
            let event = match change {
                MuteChange::Audio(true) => RoomEvent::MuteAudio,
                MuteChange::Audio(false) => RoomEvent::UnmuteAudio,
                MuteChange::Video(true) => RoomEvent::MuteVideo,
                MuteChange::Video(false) => RoomEvent::UnmuteVideo,
            };
            let muted = matches!(change, MuteChange::Audio(true) | MuteChange::Video(true));
            self.emit(event(media_status::notify_info(
                &identity.room_id,
                after,
                muted,
            )));
        }
    }
}
