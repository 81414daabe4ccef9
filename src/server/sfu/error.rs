//! Why the SFU could not set up or change a link.

use crate::link::LinkError;
use crate::protocol::ErrorCode;

/// Why the SFU could not set up or change a link.
#[derive(Debug, thiserror::Error)]
pub enum SfuError {
    /// The publisher's offer was unusable. Not retryable with the same offer.
    #[error("invalid publish offer: {0}")]
    PublishOffer(LinkError),
    /// The subscriber's answer was unusable. Not retryable with the same answer.
    #[error("invalid answer: {0}")]
    Answer(LinkError),
    /// A player's offer (WHEP) was unusable. Not retryable with the same
    /// offer.
    #[error("invalid play offer: {0}")]
    PlayOffer(LinkError),
    /// A trickled candidate was unusable.
    #[error("invalid candidate: {0}")]
    Candidate(LinkError),
    /// An ICE restart the link cannot take now: its first offer is not
    /// answered yet, or it failed. Retry after the answer; a failed link is
    /// gone (publish or subscribe again).
    #[error("cannot restart ICE: {0}")]
    Restart(String),
    /// Creating a peer connection failed (e.g. no UDP port). Retryable.
    #[error("SFU failure: {0}")]
    Internal(LinkError),
}

impl SfuError {
    /// The seed error code for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            SfuError::PublishOffer(_) => ErrorCode::InvalidPushed,
            SfuError::Answer(_) => ErrorCode::AnswerSdpInvalid,
            SfuError::PlayOffer(_) => ErrorCode::InvalidParameter,
            SfuError::Candidate(_) => ErrorCode::InvalidParameter,
            SfuError::Restart(_) => ErrorCode::InvalidOperation,
            SfuError::Internal(_) => ErrorCode::SfuFail,
        }
    }
}
