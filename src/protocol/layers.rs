//! Simulcast layers ("resolutions", seed 001 dual stream: `addResolution`,
//! `removeResolution`, subscribe `resolutionIds`; issue 10 §2).
//!
//! A published stream may carry up to [`MAX_RESOLUTIONS`] encodings of its one
//! video source, each a [`VideoResolution`] named by a `resolutionId`. The
//! publisher lists them in `publish` from the largest to the smallest; their
//! order there is each layer's *slot* (0 = the top), fixed for the life of the
//! stream. A layer's RTP arrives on its own SSRC: the video track whose id (the
//! `msid` track id, huddle's SDK) or RTP stream id (`a=rid`, a browser's
//! `sendEncodings`) equals the `resolutionId`.
//!
//! Invariants kept by [`check_resolutions`]: at most three, ids unique and of
//! RID syntax (RFC 8851 §10: alphanumeric, `-`, `_`; here at most
//! [`MAX_RESOLUTION_ID_LEN`] bytes), sizes strictly decreasing, each within the
//! limits of a plain `VideoInfo`. A subscriber asks for one of them by id, or
//! for [`AUTO_RESOLUTION`] (the server picks).

use serde::{Deserialize, Serialize};

use super::error_code::ErrorCode;

/// Most encodings one stream carries (issue 10: up to 3).
pub const MAX_RESOLUTIONS: usize = 3;

/// Longest `resolutionId`, in bytes (Chrome refuses longer rids).
pub const MAX_RESOLUTION_ID_LEN: usize = 16;

/// The `resolutionId` a subscriber sends to let the server choose the layer.
pub const AUTO_RESOLUTION: &str = "auto";

/// One encoding of a stream's video (seed `RTCVideoProfileInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoResolution {
    /// The layer's name, unique in its stream (huddle's SDK uses the seed
    /// profile name, e.g. `"720p_1"`).
    pub resolution_id: String,
    /// Encoded width in pixels.
    pub width: u32,
    /// Encoded height in pixels.
    pub height: u32,
    /// Nominal frame rate.
    pub frame_rate: u32,
}

impl VideoResolution {
    /// Pixels per picture (the order of layers).
    pub fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

/// What a subscriber wants of a layered stream's video.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LayerChoice {
    /// The largest layer the stream carries (no `resolutionId`: the seed's
    /// default, "the video with the highest resolution").
    #[default]
    Top,
    /// The server picks the best layer that fits the subscriber's downlink
    /// (`"auto"`).
    Auto,
    /// This `resolutionId`.
    Fixed(String),
}

impl LayerChoice {
    /// Reads a subscribe's `resolutionId`.
    pub fn from_wire(id: Option<&str>) -> Self {
        match id {
            None => LayerChoice::Top,
            Some(AUTO_RESOLUTION) => LayerChoice::Auto,
            Some(id) => LayerChoice::Fixed(id.to_owned()),
        }
    }

    /// The `resolutionId` to send.
    pub fn to_wire(&self) -> Option<String> {
        match self {
            LayerChoice::Top => None,
            LayerChoice::Auto => Some(AUTO_RESOLUTION.to_owned()),
            LayerChoice::Fixed(id) => Some(id.clone()),
        }
    }
}

/// Why a list of layers or a layer change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayerError {
    /// More than [`MAX_RESOLUTIONS`] layers (91000101). Not retryable as sent.
    #[error("a stream carries at most {MAX_RESOLUTIONS} resolutions, {0} asked")]
    TooMany(usize),
    /// The stream has no layer of this id (91000102): not published with it,
    /// or removed.
    #[error("the stream has no resolution {0:?}")]
    Unknown(String),
    /// The layer is there already (91000103): a duplicate in `publish`, or an
    /// `add-resolution` of an active one.
    #[error("the stream carries resolution {0:?} already")]
    Exists(String),
    /// A malformed layer (90000005): bad id syntax, size or order.
    #[error("invalid resolution: {0}")]
    Invalid(String),
}

impl LayerError {
    /// The wire code.
    pub fn code(&self) -> ErrorCode {
        match self {
            LayerError::TooMany(_) => ErrorCode::TooManyResolutions,
            LayerError::Unknown(_) => ErrorCode::UnknownResolution,
            LayerError::Exists(_) => ErrorCode::ResolutionExists,
            LayerError::Invalid(_) => ErrorCode::InvalidParameter,
        }
    }
}

/// Checks a `resolutionId`'s syntax (RFC 8851 `rid-id`, not `auto`).
pub fn check_resolution_id(id: &str) -> Result<(), LayerError> {
    let well_formed = !id.is_empty()
        && id.len() <= MAX_RESOLUTION_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Err(LayerError::Invalid(format!(
            "resolutionId {id:?}: 1 to {MAX_RESOLUTION_ID_LEN} of A-Z a-z 0-9 - _"
        )));
    }
    if id == AUTO_RESOLUTION {
        return Err(LayerError::Invalid(format!(
            "resolutionId {AUTO_RESOLUTION:?} is reserved for the server's choice"
        )));
    }
    Ok(())
}

/// Checks one layer alone: its id and its size.
pub fn check_resolution(r: &VideoResolution) -> Result<(), LayerError> {
    check_resolution_id(&r.resolution_id)?;
    if r.width < 2
        || r.height < 2
        || r.width > 7680
        || r.height > 4320
        || r.frame_rate == 0
        || r.frame_rate > 120
    {
        return Err(LayerError::Invalid(format!(
            "{} is {}x{}@{}: out of range (2x2 up to 7680x4320@120)",
            r.resolution_id, r.width, r.height, r.frame_rate
        )));
    }
    Ok(())
}

/// Checks a publish's layers: see the module's invariants. An empty list is a
/// stream without layers.
pub fn check_resolutions(list: &[VideoResolution]) -> Result<(), LayerError> {
    if list.len() > MAX_RESOLUTIONS {
        return Err(LayerError::TooMany(list.len()));
    }
    for (i, r) in list.iter().enumerate() {
        check_resolution(r)?;
        if list[..i].iter().any(|o| o.resolution_id == r.resolution_id) {
            return Err(LayerError::Exists(r.resolution_id.clone()));
        }
        if let Some(prev) = i.checked_sub(1).and_then(|p| list.get(p))
            && r.pixels() >= prev.pixels()
        {
            return Err(LayerError::Invalid(format!(
                "resolutions go from the largest to the smallest: {} is not smaller than {}",
                r.resolution_id, prev.resolution_id
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(id: &str, width: u32, height: u32) -> VideoResolution {
        VideoResolution {
            resolution_id: id.into(),
            width,
            height,
            frame_rate: 15,
        }
    }

    #[test]
    fn a_ladder_passes_and_bad_ones_get_their_codes() {
        let ladder = [
            r("720p_1", 1280, 720),
            r("360p_2", 480, 360),
            r("180p_1", 320, 180),
        ];
        assert_eq!(check_resolutions(&ladder), Ok(()));
        assert_eq!(check_resolutions(&[]), Ok(()));
        let mut four = ladder.to_vec();
        four.push(r("90p_1", 160, 90));
        assert_eq!(
            check_resolutions(&four).map_err(|e| e.code()),
            Err(ErrorCode::TooManyResolutions)
        );
        let dup = [r("a", 640, 360), r("a", 320, 180)];
        assert_eq!(
            check_resolutions(&dup).map_err(|e| e.code()),
            Err(ErrorCode::ResolutionExists)
        );
        for bad in [
            vec![r("small", 320, 180), r("big", 1280, 720)],
            vec![r("bad id", 320, 180)],
            vec![r("auto", 320, 180)],
            vec![r("", 320, 180)],
            vec![r("x", 0, 180)],
            vec![r("seventeen_chars_x", 320, 180)],
        ] {
            assert_eq!(
                check_resolutions(&bad).map_err(|e| e.code()),
                Err(ErrorCode::InvalidParameter),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn choices_read_from_the_wire() {
        assert_eq!(LayerChoice::from_wire(None), LayerChoice::Top);
        assert_eq!(LayerChoice::from_wire(Some("auto")), LayerChoice::Auto);
        assert_eq!(
            LayerChoice::from_wire(Some("360p_2")),
            LayerChoice::Fixed("360p_2".into())
        );
    }
}
