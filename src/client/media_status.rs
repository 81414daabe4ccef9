//! Mute notifications (seed 001 `mute-audio`, `unmute-audio`, `mute-video`,
//! `unmute-video` with `MediaStatusNotifyInfo`).
//!
//! The server announces a publisher's mute state only as a whole
//! [`StreamInfo`] in `stream-updated`. [`changes`] compares it with the
//! previous announcement and says which of the seed's four events it amounts
//! to: none when nothing changed, up to two when audio and video changed at
//! once (audio first).

use crate::protocol::{RoomId, StreamId, StreamInfo, UserId};

/// Whether a remote user's medium can be received (seed `MediaStatusAction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaStatusAction {
    /// Media assets are available (seed value 1).
    Available,
    /// Media assets are unavailable (seed value 2).
    Unavailable,
}

impl MediaStatusAction {
    /// The seed's numeric value.
    pub const fn code(self) -> u8 {
        match self {
            MediaStatusAction::Available => 1,
            MediaStatusAction::Unavailable => 2,
        }
    }
}

/// Why a medium's status changed (seed `MediaStatusReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaStatusReason {
    /// The media is offline (seed value 0). Not produced from mute changes.
    Offline,
    /// The media is muted (seed value 1).
    Muted,
    /// The media is not muted (seed value 2).
    NotMuted,
}

impl MediaStatusReason {
    /// The seed's numeric value.
    pub const fn code(self) -> u8 {
        match self {
            MediaStatusReason::Offline => 0,
            MediaStatusReason::Muted => 1,
            MediaStatusReason::NotMuted => 2,
        }
    }
}

/// What a mute event carries (seed `MediaStatusNotifyInfo`), plus the stream
/// it is about (a user may publish several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaStatusNotifyInfo {
    /// The room.
    pub room_id: RoomId,
    /// The publisher.
    pub user_id: UserId,
    /// The stream whose medium changed.
    pub stream_id: StreamId,
    /// Available after an unmute, unavailable after a mute.
    pub status: MediaStatusAction,
    /// Muted or not muted.
    pub reason: MediaStatusReason,
}

/// Which medium changed, and which way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MuteChange {
    /// `mute-audio` (true) or `unmute-audio` (false).
    Audio(bool),
    /// `mute-video` (true) or `unmute-video` (false).
    Video(bool),
}

/// The mute changes from `before` to `after` (the same stream), audio first.
/// A stream seen for the first time (`before` is `None`) changes nothing: its
/// state came with `stream-added`.
pub(crate) fn changes(before: Option<&StreamInfo>, after: &StreamInfo) -> Vec<MuteChange> {
    let Some(before) = before else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if before.audio_muted != after.audio_muted {
        out.push(MuteChange::Audio(after.audio_muted));
    }
    if before.video_muted != after.video_muted {
        out.push(MuteChange::Video(after.video_muted));
    }
    out
}

/// The notification for `change` of `stream` in `room_id`.
pub(crate) fn notify_info(
    room_id: &RoomId,
    stream: &StreamInfo,
    muted: bool,
) -> MediaStatusNotifyInfo {
    let (status, reason) = if muted {
        (MediaStatusAction::Unavailable, MediaStatusReason::Muted)
    } else {
        (MediaStatusAction::Available, MediaStatusReason::NotMuted)
    };
    MediaStatusNotifyInfo {
        room_id: room_id.clone(),
        user_id: stream.user_id.clone(),
        stream_id: stream.stream_id,
        status,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(audio_muted: bool, video_muted: bool) -> StreamInfo {
        StreamInfo {
            stream_id: StreamId(7),
            user_id: UserId("bob".into()),
            audio: true,
            video: None,
            audio_muted,
            video_muted,
            is_screen: false,
            resolutions: Vec::new(),
        }
    }

    #[test]
    fn only_what_changed_is_reported_audio_first() {
        let s = stream;
        assert_eq!(changes(Some(&s(false, false)), &s(false, false)), vec![]);
        assert_eq!(
            changes(Some(&s(false, false)), &s(true, false)),
            vec![MuteChange::Audio(true)]
        );
        assert_eq!(
            changes(Some(&s(true, false)), &s(false, true)),
            vec![MuteChange::Audio(false), MuteChange::Video(true)]
        );
        assert_eq!(changes(None, &s(true, true)), vec![]);
    }

    #[test]
    fn mute_is_unavailable_muted_and_unmute_is_available_not_muted() {
        let room = RoomId("r".into());
        let muted = notify_info(&room, &stream(true, false), true);
        assert_eq!((muted.status.code(), muted.reason.code()), (2, 1));
        let unmuted = notify_info(&room, &stream(false, false), false);
        assert_eq!((unmuted.status.code(), unmuted.reason.code()), (1, 2));
        assert_eq!(unmuted.user_id, UserId("bob".into()));
    }
}
