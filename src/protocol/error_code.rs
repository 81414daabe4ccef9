//! Numeric error codes and leave reasons shared by server, client and SDK users.
//!
//! Why this exists: every layer of huddle (auth, signalling, SFU, client SDK) reports
//! failures to the application with the *same* numeric codes the SparkRTC Web SDK
//! documents (seed 001, Table 3-13 "Error code description"), so that an app written
//! against that manual can branch on the numbers it already knows. Leave reasons
//! (seed 001, Table 3-6) are carried by `peer-leave` / `client-banned` style events.
//!
//! Invariants:
//! - Each [`ErrorCode`] variant has exactly one numeric code, one stable class-member
//!   name (`RTC_ERR_CODE_*`) and one description; all three come from a single table
//!   (the `error_codes!` invocation below), so they cannot drift apart. Codes are
//!   unique (checked by a unit test).
//! - On the wire (serde) both enums are plain JSON numbers (`u32`). Deserializing an
//!   unknown number is an error rather than a silent fallback.
//! - Table 3-13 lists `RTC_ERR_CODE_SUCCESS = 0`; it is kept as [`ErrorCode::Success`]
//!   for completeness of the mapping, even though no error value should carry it.
//! - 90100030 / 90100031 are **not** rows of Table 3-13; the seed only shows them in
//!   the `signature-expired` event example (`'signature expired'` /
//!   `'signature invalid'`). They are included as [`ErrorCode::SignatureExpired`] and
//!   [`ErrorCode::SignatureInvalid`] because access authentication needs them.
//! - huddle-specific codes are in the range `91000000..=91999999`, which the seed
//!   does not use: 91000101..=91000103 for simulcast layers (`protocol::layers`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Implements `Serialize`/`Deserialize` as a bare `u32` via `code()` / `from_code()`.
macro_rules! serde_as_u32 {
    ($ty:ident, $what:literal) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_u32(self.code())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let n = u32::deserialize(deserializer)?;
                $ty::from_code(n).ok_or_else(|| {
                    serde::de::Error::custom(format_args!(concat!("unknown ", $what, " {}"), n))
                })
            }
        }
    };
}

/// Defines [`ErrorCode`] and its lookup functions from one table of
/// `Variant = code, "RTC_ERR_CODE_NAME", "description";` rows.
macro_rules! error_codes {
    ($( $variant:ident = $code:literal, $name:literal, $desc:literal; )*) => {
        /// A SparkRTC-compatible error code (seed 001, Table 3-13, plus the two
        /// signature codes from the `signature-expired` event).
        ///
        /// Serialized as the bare number, e.g. `90000005`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $(
                #[doc = concat!("`", $name, "` = ", stringify!($code), ": ", $desc, ".")]
                $variant,
            )*
        }

        impl ErrorCode {
            /// Every defined code, in ascending numeric order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The numeric code, e.g. `90000005` for [`ErrorCode::InvalidParameter`].
            pub const fn code(self) -> u32 {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            /// Looks up a numeric code; `None` if the number is not a defined code.
            pub fn from_code(code: u32) -> Option<Self> {
                match code {
                    $($code => Some(ErrorCode::$variant),)*
                    _ => None,
                }
            }

            /// The stable class-member name, e.g. `"RTC_ERR_CODE_INVALID_PARAMETER"`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $name,)*
                }
            }

            /// The seed's short English description, e.g. `"invalid parameter"`.
            pub const fn description(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $desc,)*
                }
            }
        }
    };
}

error_codes! {
    Success = 0, "RTC_ERR_CODE_SUCCESS", "success";
    RtcSdkError = 90000001, "RTC_ERR_CODE_RTC_SDK_ERROR", "sdk internal error";
    WaitRspTimeout = 90000004, "RTC_ERR_CODE_WAIT_RSP_TIMEOUT", "message response timeout";
    InvalidParameter = 90000005, "RTC_ERR_CODE_INVALID_PARAMETER", "invalid parameter";
    InvalidOperation = 90100001, "RTC_ERR_CODE_INVALID_OPERATION", "illegal operation";
    NotSupportEnumerateDevices = 90100002, "RTC_ERR_CODE_NOT_SUPPORT_ENUMERATE_DEVICES", "not support enumerate devices";
    NoAvailableDevices = 90100003, "RTC_ERR_CODE_NO_AVAILABLE_DEVICES", "no available devices";
    NoAvailableVideoInputDevices = 90100004, "RTC_ERR_CODE_NO_AVAILABLE_VIDEO_INPUT_DEVICES", "no available video input devices";
    NoAvailableAudioInputDevices = 90100005, "RTC_ERR_CODE_NO_AVAILABLE_AUDIO_INPUT_DEVICES", "no available audio input devices";
    NoAvailableAudioOutputDevices = 90100006, "RTC_ERR_CODE_NO_AVAILABLE_AUDIO_OUTPUT_DEVICES", "no available audio output devices";
    StatusError = 90100007, "RTC_ERR_CODE_STATUS_ERROR", "room status error";
    WebsocketNotConnected = 90100008, "RTC_ERR_CODE_WEBSOCKET_NOT_CONNECTED", "websocket connection state is not \"CONNECTED\"";
    WaitConfigFail = 90100009, "RTC_ERR_CODE_WAIT_CONFIG_FAIL", "wait server config fail";
    PublishResponseFail = 90100010, "RTC_ERR_CODE_PUBLISH_RESPONSE_FAIL", "publish response fail";
    RegionNotCovered = 90100011, "RTC_ERR_CODE_REGION_NOT_COVERED", "current region is not covered, service unavailable";
    WebsocketConnectTimeout = 90100012, "RTC_ERR_CODE_WEBSOCKET_CONNECT_TIMEOUT", "websocket connect timeout";
    WebsocketReconnectTimeout = 90100013, "RTC_ERR_CODE_WEBSOCKET_RECONNECT_TIMEOUT", "websocket reconnect timeout";
    WebsocketNotOpen = 90100014, "RTC_ERR_CODE_WEBSOCKET_NOT_OPEN", "websocket is not open";
    WebsocketInterrupted = 90100015, "RTC_ERR_CODE_WEBSOCKET_INTERRUPTED", "websocket connection state is idle, interrupt operation";
    WebsocketConnectError = 90100016, "RTC_ERR_CODE_WEBSOCKET_CONNECT_ERROR", "websocket connect error";
    CapturePermissionDenied = 90100017, "RTC_ERR_CODE_CAPTURE_PERMISSION_DENIED", "capture failed, permission denied";
    CaptureOverConstrained = 90100018, "RTC_ERR_CODE_CAPTURE_OVER_CONSTRAINED", "capture failed, Constraint parameter invalid";
    CaptureDeviceNotFound = 90100019, "RTC_ERR_CODE_CAPTURE_DEVICE_NOT_FOUND", "capture failed, requested device not found";
    CaptureDeviceNotReadable = 90100020, "RTC_ERR_CODE_CAPTURE_DEVICE_NOT_READABLE", "capture failed, maybe device is occupied by other application";
    PlayNotAllowed = 90100021, "RTC_ERR_CODE_PLAY_NOT_ALLOWED", "the user didn't interact with the document first, please trigger by gesture";
    RoleNoPermission = 90100022, "RTC_ERR_CODE_ROLE_NO_PERMISSION", "the user role have no permission to operate";
    AnswerSdpInvalid = 90100023, "RTC_ERR_CODE_ANSWER_SDP_INVALID", "the answer sdp is invalid";
    MediaUpstreamUnsupported = 90100024, "RTC_ERR_CODE_MEDIA_UPSTREAM_UNSUPPORTED", "the upstream media is not supported";
    // Not rows of Table 3-13: these two come from the `signature-expired` event
    // example in seed 001 (section 3.2, ErrorInfo). Names follow the table's pattern.
    SignatureExpired = 90100030, "RTC_ERR_CODE_SIGNATURE_EXPIRED", "signature expired";
    SignatureInvalid = 90100031, "RTC_ERR_CODE_SIGNATURE_INVALID", "signature invalid";
    InternalException = 90100104, "RTC_ERR_CODE_INTERNAL_EXCEPTION", "server internal exception";
    SendToRtcctrlFail = 90100105, "RTC_ERR_CODE_SEND_TO_RTCCTRL_FAIL", "server internal exception";
    RtcctrlException = 90100106, "RTC_ERR_CODE_RTCCTRL_EXCEPTION", "server internal exception";
    WsNotSupported = 90100107, "RTC_ERR_CODE_WS_NOT_SUPPORTED", "websocket is unsupported";
    RequestFrequently = 90100108, "RTC_ERR_CODE_REQUEST_FREQUENTLY", "request too frequently";
    InvalidRequestBody = 90100109, "RTC_ERR_CODE_INVALID_REQUEST_BODY", "server internal exception";
    InvalidResponse = 90100110, "RTC_ERR_CODE_INVALID_RESPONSE", "server internal exception";
    InternalError = 90100199, "RTC_ERR_CODE_INTERNAL_ERROR", "server internal exception";
    InvalidCtrlParameter = 90100201, "RTC_ERR_CODE_INVALID_CTRL_PARAMETER", "request parameter is invalid";
    InvalidRequest = 90100202, "RTC_ERR_CODE_INVALID_REQUEST", "server internal exception";
    JoinRoomFail = 90100203, "RTC_ERR_CODE_JOIN_ROOM_FAIL", "join room fail";
    AlreadyJoined = 90100204, "RTC_ERR_CODE_ALREADY_JOINED", "joined already";
    NoSfuResource = 90100205, "RTC_ERR_CODE_NO_SFU_RESOURCE", "server internal exception";
    InvalidSsrc = 90100206, "RTC_ERR_CODE_INVALID_SSRC", "invalid ssrc";
    StreamAlreadyPushed = 90100207, "RTC_ERR_CODE_STREAM_ALREADY_PUSHED", "stream is pushed already";
    SaveUserError = 90100208, "RTC_ERR_CODE_SAVE_USER_ERROR", "save user fail";
    UpdateUserError = 90100209, "RTC_ERR_CODE_UPDATE_USER_ERROR", "update user fail";
    FetchUserError = 90100210, "RTC_ERR_CODE_FETCH_USER_ERROR", "fetch user fail";
    SaveRoomError = 90100211, "RTC_ERR_CODE_SAVE_ROOM_ERROR", "save room fail";
    UpdateRoomError = 90100212, "RTC_ERR_CODE_UPDATE_ROOM_ERROR", "update room fail";
    InvalidSubscribedInfo = 90100213, "RTC_ERR_CODE_INVALID_SUBSCRIBED_INFO", "invalid subscribe info";
    InvalidPushed = 90100214, "RTC_ERR_CODE_INVALID_PUSHED", "invalid push stream";
    SfuFail = 90100215, "RTC_ERR_CODE_SFU_FAIL", "server internal exception";
    RequestSfuFail = 90100216, "RTC_ERR_CODE_REQUEST_SFU_FAIL", "server internal exception";
    OverloadRoomCapacity = 90100217, "RTC_ERR_CODE_OVERLOAD_ROOM_CAPACITY", "overload room capacity";
    InvalidEncoding = 90100218, "RTC_ERR_CODE_INVALID_ENCODING", "invalid encoding";
    ApplySsrcFail = 90100220, "RTC_ERR_CODE_APPLY_SSRC_FAIL", "apply ssrc fail";
    CtrlToAcsFail = 90100221, "RTC_ERR_CODE_CTRL_TO_ACS_FAIL", "server internal exception";
    KickUserFail = 90100222, "RTC_ERR_CODE_KICK_USER_FAIL", "kick user fail";
    ApplyToPushStreamFail = 90100223, "RTC_ERR_CODE_APPLY_TO_PUSH_STREAM_FAIL", "apply to push stream fail";
    RoomIdle = 90100224, "RTC_ERR_CODE_ROOM_IDLE", "room is released";
    KickedUser = 90100225, "RTC_ERR_CODE_KICKED_USER", "user has been kicked out";
    SubscribedUserConnectError = 90100226, "RTC_ERR_CODE_SUBSCRIBED_USER_CONNECT_ERROR", "subscribed user connected error";
    RoomNotExist = 90100227, "RTC_ERR_CODE_ROOM_NOT_EXIST", "room is not exist";
    McuFail = 90100228, "RTC_ERR_CODE_MCU_FAIL", "server internal exception";
    RoleChangedFail = 90100229, "RTC_ERR_CODE_ROLE_CHANGED_FAIL", "role is unchanged";
    NoMcuResource = 90100230, "RTC_ERR_CODE_NO_MCU_RESOURCE", "no available resources";
    CreatePushTaskFail = 90100231, "RTC_ERR_CODE_CREATE_PUSH_TASK_FAIL", "server internal exception";
    MixTaskExists = 90100232, "RTC_ERR_CODE_MIX_TASK_EXISTS", "the task is exist";
    MixTaskNotExists = 90100233, "RTC_ERR_CODE_MIX_TASK_NOT_EXISTS", "the task is not exist";
    MixUserEmpty = 90100234, "RTC_ERR_CODE_MIX_USER_EMPTY", "no available users";
    StopAudioFail = 90100235, "RTC_ERR_CODE_STOP_AUDIO_FAIL", "stop audio fail";
    StopVideoFail = 90100236, "RTC_ERR_CODE_STOP_VIDEO_FAIL", "stop video fail";
    RoomTypeNotMatch = 90100237, "RTC_ERR_CODE_ROOM_TYPE_NOT_MATCH", "room mode is not matched";
    AudioLevelNotMatch = 90100238, "RTC_ERR_CODE_AUDIO_LEVEL_NOT_MATCH", "audio level is not matched";
    NotSupportMix = 90100239, "RTC_ERR_CODE_NOT_SUPPORT_MIX", "unsupported operation";
    VersionNotCompatible = 90100240, "RTC_ERR_CODE_VERSION_NOT_COMPATIBLE", "not matched";
    NotSupportSwitchRole = 90100241, "RTC_ERR_CODE_NOT_SUPPORT_SWITCH_ROLE", "switch role is unsupported";
    SendToMcuFail = 90100242, "RTC_ERR_CODE_SEND_TO_MCU_FAIL", "server internal exception";
    RedirectModeNotMatch = 90100243, "RTC_ERR_CODE_REDIRECT_MODE_NOT_MATCH", "unsupported operation";
    AnchorNumberOutOfRange = 90100246, "RTC_ERR_CODE_ANCHOR_NUMBER_OUT_OF_RANGE", "the number of anchors has reached the maximum";
    TopnSubModeFault = 90100247, "RTC_ERR_CODE_TOPN_SUB_MODE_FAULT", "topn invalid parameters";
    NoEffectResponse = 90100248, "RTC_ERR_CODE_NO_EFFECT_RESPONSE", "server internal exception";
    SfuCtrlException = 90100249, "RTC_ERR_CODE_SFU_CTRL_EXCEPTION", "server internal exception";
    DesktopNumberOutOfRange = 90100250, "RTC_ERR_CODE_DESKTOP_NUMBER_OUT_OF_RANGE", "the number of desktop streams has reached the maximum";
    CloudInternalError = 90100299, "RTC_ERR_CODE_CLOUD_INTERNAL_ERROR", "server internal error";
    // huddle's own (range 91000000..=91999999), simulcast layers (issue 10 §2,
    // `protocol::layers`): the seed's dual stream has no codes of its own.
    TooManyResolutions = 91000101, "RTC_ERR_CODE_TOO_MANY_RESOLUTIONS", "a stream carries at most 3 resolutions";
    UnknownResolution = 91000102, "RTC_ERR_CODE_UNKNOWN_RESOLUTION", "the stream has no such resolution";
    ResolutionExists = 91000103, "RTC_ERR_CODE_RESOLUTION_EXISTS", "the stream carries this resolution already";
}

serde_as_u32!(ErrorCode, "error code");

impl fmt::Display for ErrorCode {
    /// Formats as `90000005 RTC_ERR_CODE_INVALID_PARAMETER (invalid parameter)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} ({})",
            self.code(),
            self.name(),
            self.description()
        )
    }
}

/// Defines [`LeaveReason`] from one table of `Variant = code, "description";` rows.
macro_rules! leave_reasons {
    ($( $variant:ident = $code:literal, $desc:literal; )*) => {
        /// Why a user left a room (seed 001, Table 3-6, `HRTCLeaveReason.code`).
        ///
        /// Serialized as the bare number, e.g. `6` for [`LeaveReason::SignatureExpired`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum LeaveReason {
            $(
                #[doc = concat!(stringify!($code), ": ", $desc)]
                $variant,
            )*
        }

        impl LeaveReason {
            /// Every defined reason, in ascending numeric order.
            pub const ALL: &'static [LeaveReason] = &[$(LeaveReason::$variant,)*];

            /// The numeric value carried on the wire.
            pub const fn code(self) -> u32 {
                match self {
                    $(LeaveReason::$variant => $code,)*
                }
            }

            /// Looks up a numeric value; `None` if it is not in Table 3-6.
            pub fn from_code(code: u32) -> Option<Self> {
                match code {
                    $($code => Some(LeaveReason::$variant),)*
                    _ => None,
                }
            }

            /// The seed's description, usable as `HRTCLeaveReason.msg`.
            pub const fn description(self) -> &'static str {
                match self {
                    $(LeaveReason::$variant => $desc,)*
                }
            }
        }
    };
}

leave_reasons! {
    UserExit = 0, "The user exits the room.";
    ServerException = 1, "A server exception occurs.";
    SfuFault = 2, "The SFU service is faulty.";
    ServiceUnavailable = 3, "The service is unavailable (503).";
    InternalError = 4, "An internal error occurs.";
    Banned = 5, "The user is banned from the room.";
    SignatureExpired = 6, "The signature has expired.";
    ReconnectTimeout = 7, "Reconnection times out.";
    NetworkCheck = 8, "Network check. No error code is required for the UI.";
    UserRemoved = 9, "The user is removed.";
    RoomDismissed = 10, "The room is dismissed.";
}

serde_as_u32!(LeaveReason, "leave reason");

impl fmt::Display for LeaveReason {
    /// Formats as `6 (The signature has expired.)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code(), self.description())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn table_3_13_is_complete() {
        // 84 rows in Table 3-13 (including SUCCESS = 0) + the two signature
        // codes + huddle's three layer codes.
        assert_eq!(ErrorCode::ALL.len(), 89);
        assert_eq!(ErrorCode::ALL.first(), Some(&ErrorCode::Success));
        assert_eq!(ErrorCode::ALL.last(), Some(&ErrorCode::ResolutionExists));
    }

    #[test]
    fn codes_and_names_are_unique_and_sorted() {
        let mut codes = HashSet::new();
        let mut names = HashSet::new();
        for e in ErrorCode::ALL {
            assert!(codes.insert(e.code()), "duplicate code {}", e.code());
            assert!(names.insert(e.name()), "duplicate name {}", e.name());
            assert!(e.name().starts_with("RTC_ERR_CODE_"), "{}", e.name());
            assert!(!e.description().is_empty());
        }
        assert!(ErrorCode::ALL.windows(2).all(|w| w[0].code() < w[1].code()));
    }

    #[test]
    fn code_round_trips() {
        for &e in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_code(e.code()), Some(e));
        }
        assert_eq!(ErrorCode::from_code(1), None);
        assert_eq!(ErrorCode::from_code(90100219), None); // gap in the table
        assert_eq!(ErrorCode::from_code(u32::MAX), None);
    }

    #[test]
    fn spot_checks_against_the_seed() {
        let e = ErrorCode::InvalidParameter;
        assert_eq!(
            (e.code(), e.name(), e.description()),
            (
                90000005,
                "RTC_ERR_CODE_INVALID_PARAMETER",
                "invalid parameter"
            )
        );
        assert_eq!(ErrorCode::RoleNoPermission.code(), 90100022);
        assert_eq!(ErrorCode::SignatureExpired.code(), 90100030);
        assert_eq!(ErrorCode::SignatureInvalid.code(), 90100031);
        assert_eq!(
            ErrorCode::SignatureInvalid.description(),
            "signature invalid"
        );
        assert_eq!(ErrorCode::CloudInternalError.code(), 90100299);
        assert_eq!(
            ErrorCode::WebsocketNotConnected.description(),
            "websocket connection state is not \"CONNECTED\""
        );
        assert_eq!(
            ErrorCode::InvalidParameter.to_string(),
            "90000005 RTC_ERR_CODE_INVALID_PARAMETER (invalid parameter)"
        );
    }

    #[test]
    fn error_code_serde_is_a_number() -> Result<(), serde_json::Error> {
        for &e in ErrorCode::ALL {
            let json = serde_json::to_string(&e)?;
            assert_eq!(json, e.code().to_string());
            assert_eq!(serde_json::from_str::<ErrorCode>(&json)?, e);
        }
        assert!(serde_json::from_str::<ErrorCode>("12345").is_err());
        assert!(serde_json::from_str::<ErrorCode>("\"90000005\"").is_err());
        assert!(serde_json::from_str::<ErrorCode>("-1").is_err());
        Ok(())
    }

    #[test]
    fn leave_reasons_round_trip() -> Result<(), serde_json::Error> {
        assert_eq!(LeaveReason::ALL.len(), 11);
        for (i, &r) in LeaveReason::ALL.iter().enumerate() {
            assert_eq!(r.code() as usize, i, "Table 3-6 is dense 0..=10");
            assert_eq!(LeaveReason::from_code(r.code()), Some(r));
            let json = serde_json::to_string(&r)?;
            assert_eq!(json, i.to_string());
            assert_eq!(serde_json::from_str::<LeaveReason>(&json)?, r);
        }
        assert_eq!(LeaveReason::from_code(11), None);
        assert!(serde_json::from_str::<LeaveReason>("11").is_err());
        assert_eq!(LeaveReason::SignatureExpired.code(), 6);
        assert_eq!(
            LeaveReason::RoomDismissed.description(),
            "The room is dismissed."
        );
        Ok(())
    }
}
