//! The bot's lines for room events worth a line of their own: stream state
//! (`stream-interrupted`, `stream-recovered`), mute changes and signature
//! expiry. Text for people, or one JSON object per line with `--json`.

use crate::client::{MediaStatusNotifyInfo, RoomEvent};

/// The line `bot` prints for `event`, or `None` for events it does not print.
pub(super) fn line(bot: &str, event: &RoomEvent, json: bool) -> Option<String> {
    let (kind, fields) = describe(event)?;
    Some(if json {
        let mut object = serde_json::json!({ "bot": bot, "event": kind });
        if let (Some(object), serde_json::Value::Object(fields)) =
            (object.as_object_mut(), fields.clone())
        {
            object.extend(fields);
        }
        object.to_string()
    } else {
        let details: Vec<String> = fields
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("{bot}: {kind} {}", details.join(" "))
    })
}

/// The seed's event name and its fields.
fn describe(event: &RoomEvent) -> Option<(&'static str, serde_json::Value)> {
    let mute = |kind, m: &MediaStatusNotifyInfo| {
        Some((
            kind,
            serde_json::json!({
                "room_id": m.room_id.0, "user_id": m.user_id.0, "stream_id": m.stream_id.0,
                "status": m.status.code(), "reason": m.reason.code(),
            }),
        ))
    };
    match event {
        RoomEvent::StreamInterrupted {
            stream_id,
            user_id,
            is_screen,
        } => Some((
            "stream-interrupted",
            serde_json::json!({ "stream_id": stream_id.0, "user_id": user_id.0, "is_screen": is_screen }),
        )),
        RoomEvent::StreamRecovered {
            stream_id,
            user_id,
            is_screen,
        } => Some((
            "stream-recovered",
            serde_json::json!({ "stream_id": stream_id.0, "user_id": user_id.0, "is_screen": is_screen }),
        )),
        RoomEvent::SignatureExpired {
            code,
            ctime,
            renewing,
            ..
        } => Some((
            "signature-expired",
            serde_json::json!({ "code": code.code(), "ctime": ctime, "renewing": renewing }),
        )),
        RoomEvent::RtcStats(stats) => Some(("rtc-stats", serde_json::json!({ "stats": stats }))),
        RoomEvent::NetworkQuality { uplink, downlink } => Some((
            "network-quality",
            serde_json::json!({
                "uplinkNetworkQuality": uplink.code(),
                "downlinkNetworkQuality": downlink.code(),
            }),
        )),
        RoomEvent::MuteAudio(m) => mute("mute-audio", m),
        RoomEvent::UnmuteAudio(m) => mute("unmute-audio", m),
        RoomEvent::MuteVideo(m) => mute("mute-video", m),
        RoomEvent::UnmuteVideo(m) => mute("unmute-video", m),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{StreamId, UserId};

    #[test]
    fn interruption_lines_in_text_and_json() {
        let event = RoomEvent::StreamInterrupted {
            stream_id: StreamId(7),
            user_id: UserId("alice".into()),
            is_screen: false,
        };
        let json: serde_json::Value =
            serde_json::from_str(&line("b-1", &event, true).expect("a line")).expect("JSON");
        assert_eq!(json["event"], "stream-interrupted");
        assert_eq!(json["bot"], "b-1");
        assert_eq!(json["stream_id"], 7);
        assert_eq!(json["user_id"], "alice");
        let text = line("b-1", &event, false).expect("a line");
        assert!(text.starts_with("b-1: stream-interrupted"), "{text}");
        assert!(text.contains("stream_id=7"), "{text}");
        assert!(
            line(
                "b-1",
                &RoomEvent::PeerJoin(crate::protocol::UserInfo {
                    user_id: UserId("x".into()),
                    user_name: String::new(),
                    role: crate::protocol::Role::Joiner,
                }),
                true
            )
            .is_none()
        );
    }
}
