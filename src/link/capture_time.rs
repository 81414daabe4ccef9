//! The absolute capture time header extension on video
//! (`http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time`, the
//! 8-byte form: a 64-bit NTP timestamp of when the picture was captured).
//!
//! Why: the layers of a simulcast stream are separate encoders with unrelated
//! RTP clocks; the SFU needs to know which of their pictures are the same
//! capture to switch a subscriber from one layer to another without showing a
//! capture twice or going back (`server::sfu::layers`). Publishers stamp every
//! video packet with its picture's capture time; every layer of one capture
//! gets the very same value ([`ntp_of`] is a pure function of the `Instant`).
//! Like the audio level ([`super::audio_level`]), the id is negotiated: the
//! SFU reads it from its answer ([`ext_id_in_sdp`]).

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rtc::rtp::Packet;
use rtc::rtp::extension::HeaderExtension;
use rtc::shared::marshal::{Marshal, MarshalSize};

/// The extension's URI.
pub const ABS_CAPTURE_TIME_URI: &str =
    "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time";

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET_S: u64 = 2_208_988_800;

/// The 8-byte value: NTP 32.32 fixed point, big-endian.
struct AbsCaptureTime(u64);

impl MarshalSize for AbsCaptureTime {
    fn marshal_size(&self) -> usize {
        8
    }
}

impl Marshal for AbsCaptureTime {
    fn marshal_to(&self, buf: &mut [u8]) -> rtc::shared::error::Result<usize> {
        let Some(out) = buf.get_mut(..8) else {
            return Err(rtc::shared::error::Error::BufferTooShort);
        };
        out.copy_from_slice(&self.0.to_be_bytes());
        Ok(8)
    }
}

/// `captured` as NTP 32.32: the same `Instant` always gives the same value
/// (one wall-clock anchor per process).
pub fn ntp_of(captured: Instant) -> u64 {
    static ANCHOR: OnceLock<(Instant, u64)> = OnceLock::new();
    let (at, unix_us) = *ANCHOR.get_or_init(|| {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        (Instant::now(), unix.as_micros() as u64)
    });
    let us = if captured >= at {
        unix_us + captured.duration_since(at).as_micros() as u64
    } else {
        unix_us.saturating_sub(at.duration_since(captured).as_micros() as u64)
    };
    let secs = us / 1_000_000 + NTP_UNIX_OFFSET_S;
    let frac = ((us % 1_000_000) << 32) / 1_000_000;
    (secs << 32) | frac
}

/// The extension for a picture captured at `captured`, mapped to the
/// negotiated id by URI when written.
pub fn extension(captured: Instant) -> HeaderExtension {
    HeaderExtension::Custom {
        uri: ABS_CAPTURE_TIME_URI.into(),
        extension: Box::new(AbsCaptureTime(ntp_of(captured))),
    }
}

/// The id `sdp` negotiates for the extension, if any (one-byte ids 1..=14).
pub fn ext_id_in_sdp(sdp: &str) -> Option<u8> {
    sdp.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("a=extmap:")?;
        let (id, tail) = rest.split_once(' ')?;
        let uri = tail.split_whitespace().next()?;
        if uri != ABS_CAPTURE_TIME_URI {
            return None;
        }
        let id: u8 = id.split('/').next()?.parse().ok()?;
        (1..=14).contains(&id).then_some(id)
    })
}

/// The capture time (NTP 32.32) a packet carries under extension `id`.
pub fn read_capture_time(packet: &Packet, id: u8) -> Option<u64> {
    let payload = packet.header.get_extension(id)?;
    let bytes: [u8; 8] = payload.get(..8)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn one_instant_one_value_and_order_kept() {
        let t = Instant::now();
        assert_eq!(ntp_of(t), ntp_of(t));
        assert!(ntp_of(t + Duration::from_millis(33)) > ntp_of(t));
        let mut buf = [0u8; 8];
        assert_eq!(
            AbsCaptureTime(0x0102_0304_0506_0708)
                .marshal_to(&mut buf)
                .ok(),
            Some(8)
        );
        assert_eq!(buf, [1, 2, 3, 4, 5, 6, 7, 8]);
        let sdp = "a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time\r\n";
        assert_eq!(ext_id_in_sdp(sdp), Some(5));
    }
}
