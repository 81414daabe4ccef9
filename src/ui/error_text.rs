//! Errors as the user reads them: one sentence that says what to do, the
//! lobby field it concerns, and the seed code plus the raw detail kept for a
//! "Details" click (issue 16 §4).
//!
//! [`human`] matches every [`ErrorCode`] with no wildcard, so a code added to
//! `protocol::error_code` does not compile until it has a sentence here.
//! Codes the app cannot meet (server-internal, MCU, mixing) share one line.

use crate::client::ClientError;
use crate::protocol::ErrorCode;

/// The lobby field an error is about (shown next to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorField {
    /// Server address.
    Server,
    /// App id.
    AppId,
    /// App key (or signature).
    AppKey,
    /// Signature URL / X-AUTH-TOKEN.
    SignatureUrl,
    /// Room id.
    Room,
    /// User id.
    UserId,
    /// Display name.
    Name,
    /// Camera / microphone / speaker pickers.
    Devices,
    /// Nothing in particular (shown under the Join button).
    General,
}

/// An error ready to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HumanError {
    /// One sentence, says what to do.
    pub sentence: String,
    /// Where to show it in the lobby.
    pub field: ErrorField,
    /// The seed code (shown under "Details").
    pub code: ErrorCode,
    /// The raw detail (shown under "Details").
    pub detail: String,
}

impl HumanError {
    /// "90100031 RTC_ERR_CODE_SIGNATURE_INVALID: <detail>", for the Details line.
    pub fn details(&self) -> String {
        format!("{} {}: {}", self.code.code(), self.code.name(), self.detail)
    }
}

/// The human form of a code and the detail that came with it. The detail
/// only refines a code the seed shares between causes (90100031 is both a
/// wrong key and an unknown app id; the server's detail tells which).
pub fn human(code: ErrorCode, detail: &str) -> HumanError {
    use ErrorCode as E;
    use ErrorField as F;
    let (sentence, field) = match code {
        E::SignatureInvalid if detail.contains("unknown app id") => (
            "This server does not know this app id — check the App id.",
            F::AppId,
        ),
        E::SignatureInvalid if detail.contains("12 h ahead") => (
            "The signature is valid for too long (over 12 hours) or this computer's clock is wrong.",
            F::AppKey,
        ),
        E::SignatureInvalid => (
            "The app key does not match this app id — check the key.",
            F::AppKey,
        ),
        E::SignatureExpired => (
            "The signature has expired — get a fresh one (or sign with the app key).",
            F::AppKey,
        ),
        E::WebsocketConnectError | E::WsNotSupported => (
            "Cannot reach the server — check the address and that the server is running.",
            F::Server,
        ),
        E::WebsocketConnectTimeout | E::WaitRspTimeout | E::WaitConfigFail => (
            "The server did not answer in time — check the address or try again.",
            F::Server,
        ),
        E::WebsocketNotConnected
        | E::WebsocketNotOpen
        | E::WebsocketInterrupted
        | E::WebsocketReconnectTimeout => (
            "The connection to the server was lost — join again.",
            F::Server,
        ),
        E::RegionNotCovered => (
            "The service is not available from here — try another server.",
            F::Server,
        ),
        E::VersionNotCompatible => (
            "This app and the server speak different protocol versions — update one of them.",
            F::Server,
        ),
        E::AlreadyJoined => (
            "This user id is already in the room — pick another user id.",
            F::UserId,
        ),
        E::OverloadRoomCapacity | E::AnchorNumberOutOfRange | E::DesktopNumberOutOfRange => {
            ("The room is full — try later or another room.", F::Room)
        }
        E::RoomNotExist | E::RoomIdle | E::RoomTypeNotMatch => {
            ("That room is not available — check the room id.", F::Room)
        }
        E::KickedUser | E::KickUserFail => ("You were removed from the room.", F::General),
        E::TooManyResolutions | E::UnknownResolution | E::ResolutionExists => (
            "That video resolution (simulcast layer) is not available for this stream.",
            F::General,
        ),
        E::RoleNoPermission | E::RoleChangedFail | E::NotSupportSwitchRole => (
            "Your role does not allow that — join on stage (joiner) first.",
            F::General,
        ),
        E::RequestFrequently => (
            "Too many requests at once — wait a moment and try again.",
            F::General,
        ),
        E::InvalidParameter | E::InvalidCtrlParameter => (
            "The server refused a value — check the room id, user id and name.",
            F::General,
        ),
        E::InvalidOperation | E::StatusError => (
            "That is not possible right now — wait until the join has finished.",
            F::General,
        ),
        E::NoAvailableDevices
        | E::NotSupportEnumerateDevices
        | E::NoAvailableVideoInputDevices
        | E::CaptureDeviceNotFound => (
            "No camera found — pick another camera (a test picture is used meanwhile).",
            F::Devices,
        ),
        E::NoAvailableAudioInputDevices => {
            ("No microphone found — pick another microphone.", F::Devices)
        }
        E::NoAvailableAudioOutputDevices | E::PlayNotAllowed => {
            ("No speaker found — pick another speaker.", F::Devices)
        }
        E::CapturePermissionDenied | E::CaptureDeviceNotReadable | E::CaptureOverConstrained => (
            "The device is busy or not allowed — close other apps using it or pick another one.",
            F::Devices,
        ),
        E::SubscribedUserConnectError => (
            "No media path (TURN relay) to the server — check the TURN settings.",
            F::Server,
        ),
        E::RtcSdkError | E::AnswerSdpInvalid | E::MediaUpstreamUnsupported => (
            "The media connection could not be set up — try joining again.",
            F::General,
        ),
        E::InvalidEncoding | E::AudioLevelNotMatch => (
            "Audio or video could not be encoded or decoded — try another device.",
            F::Devices,
        ),
        E::PublishResponseFail
        | E::StreamAlreadyPushed
        | E::InvalidPushed
        | E::ApplyToPushStreamFail
        | E::InvalidSsrc
        | E::ApplySsrcFail => (
            "Your camera and microphone could not be sent — try joining again.",
            F::General,
        ),
        E::InvalidSubscribedInfo | E::TopnSubModeFault => (
            "Someone's video could not be received — it may have just ended.",
            F::General,
        ),
        E::NoSfuResource | E::NoMcuResource => (
            "The server has no room for more media right now — try later.",
            F::Server,
        ),
        E::JoinRoomFail | E::SaveUserError | E::FetchUserError | E::UpdateUserError => (
            "The server could not add you to the room — try again.",
            F::General,
        ),
        E::StopAudioFail | E::StopVideoFail => {
            ("Muting did not reach the server — try again.", F::General)
        }
        // Server-internal codes and features the app does not use.
        E::Success
        | E::InternalException
        | E::SendToRtcctrlFail
        | E::RtcctrlException
        | E::InvalidRequestBody
        | E::InvalidResponse
        | E::InternalError
        | E::InvalidRequest
        | E::SaveRoomError
        | E::UpdateRoomError
        | E::SfuFail
        | E::RequestSfuFail
        | E::CtrlToAcsFail
        | E::McuFail
        | E::CreatePushTaskFail
        | E::MixTaskExists
        | E::MixTaskNotExists
        | E::MixUserEmpty
        | E::NotSupportMix
        | E::SendToMcuFail
        | E::RedirectModeNotMatch
        | E::NoEffectResponse
        | E::SfuCtrlException
        | E::CloudInternalError => (
            "The server had an internal problem — try again; if it persists, tell its operator.",
            F::General,
        ),
    };
    HumanError {
        sentence: sentence.to_owned(),
        field,
        code,
        detail: detail.to_owned(),
    }
}

/// A message for a toast: the human line, and the code and detail behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// What the user reads.
    pub text: String,
    /// Code and raw detail, one click away.
    pub details: Option<String>,
}

impl Notice {
    /// "`what` failed: <human sentence>", with the SDK error as details.
    pub fn failed(what: &str, e: &ClientError) -> Self {
        let h = from_client(e);
        Self {
            text: format!("{what} failed: {}", h.sentence),
            details: Some(h.details()),
        }
    }
}

impl From<String> for Notice {
    fn from(text: String) -> Self {
        Self {
            text,
            details: None,
        }
    }
}

impl From<&str> for Notice {
    fn from(text: &str) -> Self {
        text.to_owned().into()
    }
}

impl From<HumanError> for Notice {
    fn from(h: HumanError) -> Self {
        Self {
            details: Some(h.details()),
            text: h.sentence,
        }
    }
}

/// The human form of an SDK error.
pub fn from_client(e: &ClientError) -> HumanError {
    human(e.code(), &e.to_string())
}

/// The human form of a failed signature fetch (no seed code of its own: the
/// join never reached the server; 90100031 is what a missing signature means).
pub fn from_signature_fetch(e: &super::signature::SignatureError) -> HumanError {
    use super::signature::SignatureError as S;
    let sentence = match e {
        S::BadUrl => "The signature URL must look like http://host:port/signature.",
        S::Io(_) => "Cannot reach the signature server — check the signature URL.",
        S::Status { .. } => "The signature server refused — check the X-AUTH-TOKEN and app id.",
        S::Body(_) => "The signature server's answer is unreadable — check the signature URL.",
    };
    HumanError {
        sentence: sentence.to_owned(),
        field: ErrorField::SignatureUrl,
        code: ErrorCode::SignatureInvalid,
        detail: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_one_sentence_without_the_raw_code() {
        for &code in ErrorCode::ALL {
            let h = human(code, "detail");
            assert!(h.sentence.ends_with('.'), "{code:?}: {}", h.sentence);
            assert!(!h.sentence.contains(&code.code().to_string()), "{code:?}");
            assert!(h.details().contains(&code.code().to_string()));
            assert!(h.details().contains("detail"));
        }
    }

    #[test]
    fn join_failures_point_at_their_field() {
        let wrong_key = human(ErrorCode::SignatureInvalid, "signature invalid");
        assert_eq!(wrong_key.field, ErrorField::AppKey);
        let unknown = human(ErrorCode::SignatureInvalid, "unknown app id \"x\"");
        assert_eq!(unknown.field, ErrorField::AppId);
        let down = from_client(&ClientError::Connect("Connection refused".into()));
        assert_eq!(down.field, ErrorField::Server);
        assert!(down.sentence.starts_with("Cannot reach the server"));
    }
}
