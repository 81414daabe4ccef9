//! The signalling protocol: JSON text frames over one WebSocket per client.
//!
//! This module is the contract between [`crate::server`] and [`crate::client`]:
//! message types, ids, error codes, limits and the protocol version. It is serde
//! only: no sockets, no tokio. `docs/protocol.md` describes the format with
//! examples; keep the two in step.
//!
//! Parsing and building live together here ([`parse_client_message`],
//! [`encode`]) so both ends agree on limits and on the error a bad frame gets.

pub mod error_code;
pub mod ice_server;
pub mod ids;
pub mod layers;
pub mod message;
pub mod program;

pub use error_code::{ErrorCode, LeaveReason};
pub use ice_server::IceServer;
pub use ids::{AppId, LinkId, RequestId, RoomId, StreamId, UserId};
pub use layers::{LayerChoice, LayerError, VideoResolution};
pub use message::{
    ClientMessage, ErrorReply, Event, IceCandidate, RecordedFile, Reply, Request, Role,
    ServerMessage, StreamInfo, UserInfo, UserVolume, VideoInfo,
};
pub use program::{Program, ProgramError, ProgramLayout};

/// Bumped on any incompatible change to the messages; a join with another version
/// is refused with 90100240 (`VersionNotCompatible`).
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest text frame either side accepts, in bytes. An SDP offer with two media
/// sections and host candidates is ~3 KiB; 64 KiB leaves room without letting a
/// client make the server buffer megabytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// How many rooms one streamer's stream can be in at once with cross-room
/// co-hosting (seed 001 chapter 1: "A maximum of four rooms"): its own room
/// and three it relays into.
pub const MAX_CROSS_ROOMS: usize = 4;

/// Why a client frame could not be turned into a [`ClientMessage`].
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The frame is larger than [`MAX_MESSAGE_BYTES`]. Not retryable as sent.
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Size of the frame.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The frame is not JSON, or not a JSON object. Not retryable as sent.
    #[error("malformed JSON: {0}")]
    Malformed(String),
    /// The frame is a JSON object without a known `type`.
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    /// The `type` is known but a field is missing or has the wrong type/value.
    #[error("invalid {kind} message: {detail}")]
    InvalidFields {
        /// The message type.
        kind: String,
        /// What serde said.
        detail: String,
    },
    /// A binary frame; the protocol is text only.
    #[error("binary frames are not part of the protocol")]
    Binary,
}

impl ProtocolError {
    /// The seed error code a client gets for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            ProtocolError::TooLarge { .. }
            | ProtocolError::Malformed(_)
            | ProtocolError::Binary => ErrorCode::InvalidRequestBody,
            ProtocolError::UnknownType(_) => ErrorCode::InvalidRequest,
            ProtocolError::InvalidFields { .. } => ErrorCode::InvalidParameter,
        }
    }
}

/// The message types a client may send, for telling "unknown type" from "bad fields".
const REQUEST_KINDS: &[&str] = &[
    "join",
    "resume",
    "leave",
    "publish",
    "unpublish",
    "update-stream",
    "subscribe",
    "unsubscribe",
    "pause-subscription",
    "answer",
    "candidate",
    "request-keyframe",
    "switch-role",
    "change-user-name",
    "ping",
    "renew-signature",
    "enable-top-n-audio",
    "restart-ice",
    "start-recording",
    "stop-recording",
    "add-resolution",
    "remove-resolution",
    "set-program",
    "remove-user",
    "dismiss-room",
    "start-cross-room-relay",
    "stop-cross-room-relay",
];

/// Parses one client frame. On failure also returns the request id when the frame
/// had a readable one, so the error reply can be correlated.
pub fn parse_client_message(
    text: &str,
) -> Result<ClientMessage, (Option<RequestId>, ProtocolError)> {
    if text.len() > MAX_MESSAGE_BYTES {
        return Err((
            None,
            ProtocolError::TooLarge {
                size: text.len(),
                limit: MAX_MESSAGE_BYTES,
            },
        ));
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| (None, ProtocolError::Malformed(e.to_string())))?;
    let Some(object) = value.as_object() else {
        return Err((
            None,
            ProtocolError::Malformed("expected a JSON object".into()),
        ));
    };
    let id = object.get("id").and_then(|v| v.as_u64()).map(RequestId);
    let kind = object
        .get("type")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    if !REQUEST_KINDS.contains(&kind) {
        return Err((id, ProtocolError::UnknownType(kind.to_owned())));
    }
    let kind = kind.to_owned();
    serde_json::from_value(value).map_err(|e| {
        (
            id,
            ProtocolError::InvalidFields {
                kind,
                detail: e.to_string(),
            },
        )
    })
}

/// Reads just the `id` of a client frame, without building the request: for
/// answering a frame that will not be run (one refused by the rate limiter).
/// `None` when the frame is over [`MAX_MESSAGE_BYTES`], is not a JSON object,
/// or has no `id` that is a `u64`, the cases where [`parse_client_message`]
/// reports no id either.
pub fn peek_request_id(text: &str) -> Option<RequestId> {
    /// Every other field is skipped without being kept.
    #[derive(serde::Deserialize)]
    struct IdOnly {
        id: Option<u64>,
    }
    if text.len() > MAX_MESSAGE_BYTES {
        return None;
    }
    serde_json::from_str::<IdOnly>(text).ok()?.id.map(RequestId)
}

/// Serialises a message for the wire. Our message types cannot fail to serialise
/// (no maps with non-string keys, no non-finite floats), so this returns a string.
pub fn encode<T: serde::Serialize>(message: &T) -> String {
    // serde_json only fails for unsupported map keys or non-finite floats, neither
    // of which our message types contain.
    serde_json::to_string(message).unwrap_or_else(|e| {
        format!(r#"{{"type":"error","id":null,"code":90000001,"message":"encode failed: {e}"}}"#)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_round_trips_with_camel_case_fields() {
        let msg = ClientMessage {
            id: RequestId(1),
            request: Request::Join {
                protocol_version: PROTOCOL_VERSION,
                app_id: "app".into(),
                room_id: "room".into(),
                user_id: "alice".into(),
                user_name: "Alice".into(),
                role: Role::Player,
                ctime: 1_700_000_000,
                signature: "ab".into(),
            },
        };
        let text = encode(&msg);
        assert!(text.contains(r#""type":"join""#), "{text}");
        assert!(text.contains(r#""roomId":"room""#), "{text}");
        assert!(text.contains(r#""role":2"#), "{text}");
        assert_eq!(parse_client_message(&text).unwrap(), msg);
    }

    #[test]
    fn unit_requests_parse() {
        let msg = parse_client_message(r#"{"id":9,"type":"ping"}"#).unwrap();
        assert_eq!(msg.request, Request::Ping);
        assert_eq!(msg.id, RequestId(9));
    }

    #[test]
    fn errors_keep_the_request_id_and_their_code() {
        let (id, err) = parse_client_message(r#"{"id":4,"type":"dance"}"#).unwrap_err();
        assert_eq!(id, Some(RequestId(4)));
        assert_eq!(err.code(), ErrorCode::InvalidRequest);

        let (id, err) = parse_client_message(r#"{"id":5,"type":"subscribe"}"#).unwrap_err();
        assert_eq!(id, Some(RequestId(5)));
        assert_eq!(err.code(), ErrorCode::InvalidParameter);

        let (id, err) = parse_client_message("{nope").unwrap_err();
        assert_eq!(id, None);
        assert_eq!(err.code(), ErrorCode::InvalidRequestBody);

        let big = format!(
            r#"{{"id":1,"type":"ping","pad":"{}"}}"#,
            "x".repeat(MAX_MESSAGE_BYTES)
        );
        let (_, err) = parse_client_message(&big).unwrap_err();
        assert!(matches!(err, ProtocolError::TooLarge { .. }));
    }

    #[test]
    fn the_id_is_read_alone_where_the_parser_would_read_it() {
        assert_eq!(
            peek_request_id(r#"{"id":7,"type":"publish","sdp":{"deep":[1,2,{"x":null}]}}"#),
            Some(RequestId(7))
        );
        assert_eq!(
            peek_request_id(r#"{"type":"ping","id":8}"#),
            Some(RequestId(8))
        );
        assert_eq!(
            peek_request_id(r#"{"id":9,"type":"teleport"}"#),
            Some(RequestId(9))
        );
        for no_id in [
            "{nope",
            "[1,2]",
            r#"{"type":"ping"}"#,
            r#"{"id":"7","type":"ping"}"#,
            r#"{"id":-1,"type":"ping"}"#,
            r#"{"id":1.5,"type":"ping"}"#,
        ] {
            assert_eq!(peek_request_id(no_id), None, "{no_id}");
            assert_eq!(
                parse_client_message(no_id).err().and_then(|(id, _)| id),
                None,
                "{no_id}"
            );
        }
        let big = format!(
            r#"{{"id":1,"type":"ping","pad":"{}"}}"#,
            "x".repeat(MAX_MESSAGE_BYTES)
        );
        assert_eq!(peek_request_id(&big), None);
    }

    #[test]
    fn top_n_messages_have_their_wire_shapes() {
        let msg =
            parse_client_message(r#"{"id":7,"type":"enable-top-n-audio","enable":true}"#).unwrap();
        assert_eq!(msg.request, Request::EnableTopNAudio { enable: true });
        let text = encode(&ServerMessage::Event {
            event: Event::VolumeIndicator {
                user_volume_infos: vec![super::UserVolume {
                    user_id: UserId("alice".into()),
                    volume: 78,
                }],
            },
        });
        assert_eq!(
            text,
            r#"{"type":"event","event":{"type":"volume-indicator","userVolumeInfos":[{"userId":"alice","volume":78}]}}"#
        );
    }

    #[test]
    fn cross_room_messages_have_their_wire_shapes() {
        let msg = parse_client_message(
            r#"{"id":4,"type":"start-cross-room-relay","roomId":"b","streamId":7,"ctime":9,"signature":"ab"}"#,
        )
        .unwrap();
        assert_eq!(
            msg.request,
            Request::StartCrossRoomRelay {
                room_id: RoomId("b".into()),
                stream_id: StreamId(7),
                ctime: 9,
                signature: "ab".into(),
            }
        );
        let msg = parse_client_message(r#"{"id":5,"type":"stop-cross-room-relay","roomId":"b"}"#)
            .unwrap();
        assert_eq!(
            msg.request,
            Request::StopCrossRoomRelay {
                room_id: RoomId("b".into())
            }
        );
        let msg = parse_client_message(
            r#"{"id":7,"type":"pause-subscription","streamId":3,"paused":true}"#,
        )
        .unwrap();
        assert_eq!(
            msg.request,
            Request::PauseSubscription {
                stream_id: StreamId(3),
                paused: true
            }
        );
        let (id, e) = parse_client_message(r#"{"id":8,"type":"pause-subscription","streamId":3}"#)
            .unwrap_err();
        assert_eq!(
            (id, e.code()),
            (Some(RequestId(8)), ErrorCode::InvalidParameter)
        );
        // A known type with a field missing is a bad parameter, not an unknown type.
        let (id, e) =
            parse_client_message(r#"{"id":6,"type":"start-cross-room-relay","roomId":"b"}"#)
                .unwrap_err();
        assert_eq!(
            (id, e.code()),
            (Some(RequestId(6)), ErrorCode::InvalidParameter)
        );
        let event = ServerMessage::Event {
            event: Event::CrossRoom {
                room_id: RoomId("b".into()),
                event: Box::new(Event::PeerLeave {
                    user_id: UserId("carol".into()),
                    reason: LeaveReason::UserExit,
                }),
            },
        };
        let text = encode(&event);
        assert_eq!(
            text,
            r#"{"type":"event","event":{"type":"cross-room","roomId":"b","event":{"type":"peer-leave","userId":"carol","reason":0}}}"#
        );
        assert_eq!(serde_json::from_str::<ServerMessage>(&text).unwrap(), event);
        let stopped = encode(&ServerMessage::Event {
            event: Event::CrossRoomRelayStopped {
                room_id: RoomId("b".into()),
                reason: LeaveReason::Banned,
                stream_id: Some(StreamId(3)),
            },
        });
        assert_eq!(
            stopped,
            r#"{"type":"event","event":{"type":"cross-room-relay-stopped","roomId":"b","reason":5,"streamId":3}}"#
        );
        // From a server that did not send the stream id yet.
        let old: ServerMessage = serde_json::from_str(
            r#"{"type":"event","event":{"type":"cross-room-relay-stopped","roomId":"b","reason":6}}"#,
        )
        .unwrap();
        assert!(matches!(
            old,
            ServerMessage::Event {
                event: Event::CrossRoomRelayStopped {
                    stream_id: None,
                    reason: LeaveReason::SignatureExpired,
                    ..
                }
            }
        ));
    }

    #[test]
    fn recording_messages_have_their_wire_shapes() {
        let msg = parse_client_message(r#"{"id":3,"type":"start-recording"}"#).unwrap();
        assert_eq!(
            msg.request,
            Request::StartRecording {
                stream_id: None,
                record_id: None,
            }
        );
        let msg = parse_client_message(
            r#"{"id":3,"type":"start-recording","streamId":7,"recordId":-42}"#,
        )
        .unwrap();
        assert_eq!(
            msg.request,
            Request::StartRecording {
                stream_id: Some(StreamId(7)),
                record_id: Some(-42),
            }
        );
        for text in [
            r#"{"id":3,"type":"start-recording","recordId":"x"}"#,
            r#"{"id":3,"type":"start-recording","recordId":2147483648}"#,
            r#"{"id":3,"type":"stop-recording"}"#,
        ] {
            let (id, err) = parse_client_message(text).unwrap_err();
            assert_eq!(id, Some(RequestId(3)), "{text}");
            assert_eq!(err.code(), ErrorCode::InvalidParameter, "{text}");
        }
        let text = encode(&ServerMessage::Reply {
            id: RequestId(4),
            reply: Reply::RecordingStopped {
                record_id: 42,
                files: vec![RecordedFile {
                    stream_id: StreamId(7),
                    path: "/rec/42/r-u-7.mp4".into(),
                    video_frames: 150,
                    audio_packets: 500,
                }],
            },
        });
        assert_eq!(
            text,
            r#"{"type":"reply","id":4,"result":"recording-stopped","recordId":42,"files":[{"streamId":7,"path":"/rec/42/r-u-7.mp4","videoFrames":150,"audioPackets":500}]}"#
        );
    }

    #[test]
    fn renewal_messages_have_their_wire_shapes() {
        let msg = parse_client_message(
            r#"{"id":6,"type":"renew-signature","ctime":1700003600,"signature":"ab"}"#,
        )
        .unwrap();
        assert_eq!(
            msg.request,
            Request::RenewSignature {
                ctime: 1_700_003_600,
                signature: "ab".into(),
                room_id: None,
            }
        );
        let msg = parse_client_message(
            r#"{"id":7,"type":"renew-signature","ctime":5,"signature":"cd","roomId":"other"}"#,
        )
        .unwrap();
        assert_eq!(
            msg.request,
            Request::RenewSignature {
                ctime: 5,
                signature: "cd".into(),
                room_id: Some(RoomId("other".into())),
            }
        );
        for text in [
            r#"{"id":6,"type":"renew-signature","signature":"ab"}"#,
            r#"{"id":6,"type":"renew-signature","ctime":1}"#,
            r#"{"id":6,"type":"renew-signature","ctime":-1,"signature":"ab"}"#,
        ] {
            let (id, err) = parse_client_message(text).unwrap_err();
            assert_eq!(id, Some(RequestId(6)), "{text}");
            assert_eq!(err.code(), ErrorCode::InvalidParameter, "{text}");
        }
        let text = encode(&ServerMessage::Event {
            event: Event::SignatureExpired {
                code: ErrorCode::SignatureExpired,
                message: "soon".into(),
                ctime: 1_700_003_600,
            },
        });
        assert_eq!(
            text,
            r#"{"type":"event","event":{"type":"signature-expired","code":90100030,"message":"soon","ctime":1700003600}}"#
        );
    }

    #[test]
    fn restart_ice_messages_have_their_wire_shapes() {
        let msg = parse_client_message(r#"{"id":7,"type":"restart-ice","linkId":5,"sdp":"v=0"}"#)
            .unwrap();
        assert_eq!(
            msg.request,
            Request::RestartIce {
                link_id: LinkId(5),
                sdp: Some("v=0".into()),
            }
        );
        let msg = parse_client_message(r#"{"id":8,"type":"restart-ice","linkId":5}"#).unwrap();
        assert_eq!(
            msg.request,
            Request::RestartIce {
                link_id: LinkId(5),
                sdp: None,
            }
        );
        for text in [
            r#"{"id":9,"type":"restart-ice"}"#,
            r#"{"id":9,"type":"restart-ice","linkId":"5"}"#,
            r#"{"id":9,"type":"restart-ice","linkId":5,"sdp":7}"#,
        ] {
            let (id, err) = parse_client_message(text).unwrap_err();
            assert_eq!(id, Some(RequestId(9)), "{text}");
            assert_eq!(err.code(), ErrorCode::InvalidParameter, "{text}");
        }
        let text = encode(&ServerMessage::Reply {
            id: RequestId(7),
            reply: Reply::IceRestarted {
                link_id: LinkId(5),
                sdp: "v=0".into(),
            },
        });
        assert_eq!(
            text,
            r#"{"type":"reply","id":7,"result":"ice-restarted","linkId":5,"sdp":"v=0"}"#
        );
    }

    #[test]
    fn role_and_name_messages_have_their_wire_shapes() {
        let msg = parse_client_message(
            r#"{"id":3,"type":"switch-role","role":2,"ctime":1700000000,"signature":"ab"}"#,
        )
        .unwrap();
        assert_eq!(
            msg.request,
            Request::SwitchRole {
                role: Role::Player,
                ctime: 1_700_000_000,
                signature: "ab".into(),
            }
        );
        let msg =
            parse_client_message(r#"{"id":4,"type":"change-user-name","userName":"Al"}"#).unwrap();
        assert_eq!(
            msg.request,
            Request::ChangeUserName {
                user_name: "Al".into()
            }
        );
        // Every field is required: a missing one is 90000005 under the request's id.
        for text in [
            r#"{"id":5,"type":"switch-role","ctime":1,"signature":"ab"}"#,
            r#"{"id":5,"type":"switch-role","role":0,"signature":"ab"}"#,
            r#"{"id":5,"type":"switch-role","role":0,"ctime":1}"#,
            r#"{"id":5,"type":"switch-role","role":1,"ctime":1,"signature":"ab"}"#,
            r#"{"id":5,"type":"change-user-name"}"#,
            r#"{"id":5,"type":"change-user-name","userName":7}"#,
        ] {
            let (id, err) = parse_client_message(text).unwrap_err();
            assert_eq!(id, Some(RequestId(5)), "{text}");
            assert_eq!(err.code(), ErrorCode::InvalidParameter, "{text}");
        }

        let text = encode(&ServerMessage::Reply {
            id: RequestId(3),
            reply: Reply::RoleSwitched { role: Role::Player },
        });
        assert_eq!(
            text,
            r#"{"type":"reply","id":3,"result":"role-switched","role":2}"#
        );
        let text = encode(&ServerMessage::Event {
            event: Event::PeerRoleChanged {
                user_id: "alice".into(),
                role: Role::Joiner,
            },
        });
        assert_eq!(
            text,
            r#"{"type":"event","event":{"type":"peer-role-changed","userId":"alice","role":0}}"#
        );
        let text = encode(&ServerMessage::Event {
            event: Event::RemoteUserNameChanged {
                user_id: "alice".into(),
                user_name: "Al".into(),
            },
        });
        assert_eq!(
            text,
            r#"{"type":"event","event":{"type":"remote-user-name-changed","userId":"alice","userName":"Al"}}"#
        );
    }

    #[test]
    fn role_rejects_unknown_codes() {
        let text = r#"{"id":1,"type":"join","protocolVersion":1,"appId":"a","roomId":"r","userId":"u","role":1,"ctime":1,"signature":"s"}"#;
        let (_, err) = parse_client_message(text).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidParameter);
    }

    #[test]
    fn server_messages_are_tagged() {
        let reply = ServerMessage::Reply {
            id: RequestId(3),
            reply: Reply::Published {
                stream_id: StreamId(7),
                link_id: LinkId(2),
                sdp: "v=0".into(),
            },
        };
        let text = encode(&reply);
        assert!(text.contains(r#""type":"reply""#), "{text}");
        assert!(text.contains(r#""result":"published""#), "{text}");
        let back: ServerMessage = serde_json::from_str(&text).unwrap();
        assert_eq!(back, reply);

        let event = ServerMessage::Event {
            event: Event::PeerLeave {
                user_id: "bob".into(),
                reason: LeaveReason::Banned,
            },
        };
        let text = encode(&event);
        assert!(text.contains(r#""type":"peer-leave""#), "{text}");
        assert!(text.contains(r#""reason":5"#), "{text}");
        assert_eq!(serde_json::from_str::<ServerMessage>(&text).unwrap(), event);

        let err = ServerMessage::Error(ErrorReply {
            id: Some(RequestId(1)),
            code: ErrorCode::RoleNoPermission,
            message: "players cannot publish".into(),
        });
        let text = encode(&err);
        assert!(text.contains(r#""code":90100022"#), "{text}");
        assert_eq!(serde_json::from_str::<ServerMessage>(&text).unwrap(), err);
    }
}
