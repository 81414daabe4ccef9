//! Presentation (screen sharing) profiles from seed 001, Table 3-11, and the
//! seed's custom `RTCScreenProfile`.
//!
//! Why this exists: a shared screen is text and still pictures, so the seed
//! gives it its own table: high resolution, low frame rate (15 fps) and one
//! bitrate per row, unlike the camera table's range (Table 3-10,
//! [`super::profile`]). The publisher needs a [`VideoProfile`] for its rate
//! ladder; [`ScreenProfile::video_profile`] makes one.
//!
//! Invariants: the table is copied verbatim from the seed (same row order);
//! the default is `720p`, as the seed says for an unset profile; a custom
//! profile is checked ([`ScreenProfile::custom`]) before it is used.

use super::MediaError;
use super::profile::VideoProfile;

/// One presentation profile: the largest picture sent, its frame rate and
/// the bitrate the encoder aims at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ScreenProfile {
    /// `"720p"`, `"1080p"`, or `"custom"` for an `RTCScreenProfile`.
    pub name: &'static str,
    /// Largest width sent; a smaller window is sent at its own size.
    pub width: u32,
    /// Largest height sent.
    pub height: u32,
    /// Frames per second captured and sent.
    pub frame_rate: u32,
    /// Target bitrate, kbit/s.
    pub bitrate_kbps: u32,
}

/// Seed Table 3-11, in table order.
pub const SCREEN_PROFILES: &[ScreenProfile] = &[
    DEFAULT_SCREEN,
    ScreenProfile {
        name: "1080p",
        width: 1920,
        height: 1080,
        frame_rate: 15,
        bitrate_kbps: 2000,
    },
];

/// Name of the default presentation profile (seed: used when unset).
pub const DEFAULT_SCREEN_PROFILE: &str = "720p";

const DEFAULT_SCREEN: ScreenProfile = ScreenProfile {
    name: "720p",
    width: 1280,
    height: 720,
    frame_rate: 15,
    bitrate_kbps: 1200,
};

/// Bounds of a custom profile: what OpenH264 encodes (3840x2160) and a frame
/// rate a screen needs (1–30 fps); bitrate 100 kbit/s – 10 Mbit/s.
const CUSTOM_MAX: (u32, u32) = (3840, 2160);
const CUSTOM_FPS: std::ops::RangeInclusive<u32> = 1..=30;
const CUSTOM_KBPS: std::ops::RangeInclusive<u32> = 100..=10_000;

impl ScreenProfile {
    /// Looks a Table 3-11 profile up by its exact name (`"720p"`, `"1080p"`).
    #[must_use]
    pub fn by_name(name: &str) -> Option<&'static ScreenProfile> {
        SCREEN_PROFILES.iter().find(|p| p.name == name)
    }

    /// The seed's `RTCScreenProfile`: each field absent takes the default
    /// profile's value. `bitrate_bps` is in bit/s, as in the seed.
    ///
    /// # Errors
    /// [`MediaError::InvalidParameter`] (90000005) for a zero or odd size,
    /// one over 3840x2160, a frame rate outside 1–30 or a bitrate outside
    /// 100 kbit/s – 10 Mbit/s.
    pub fn custom(
        width: Option<u32>,
        height: Option<u32>,
        frame_rate: Option<u32>,
        bitrate_bps: Option<u32>,
    ) -> Result<Self, MediaError> {
        let d = DEFAULT_SCREEN;
        let profile = Self {
            name: "custom",
            width: width.unwrap_or(d.width),
            height: height.unwrap_or(d.height),
            frame_rate: frame_rate.unwrap_or(d.frame_rate),
            bitrate_kbps: bitrate_bps.map_or(d.bitrate_kbps, |b| b / 1000),
        };
        let (w, h) = (profile.width, profile.height);
        if w == 0 || h == 0 || w % 2 == 1 || h % 2 == 1 {
            return Err(MediaError::InvalidParameter(format!(
                "screen profile {w}x{h}: width and height must be even and non-zero"
            )));
        }
        if w.max(h) > CUSTOM_MAX.0 || w.min(h) > CUSTOM_MAX.1 {
            return Err(MediaError::InvalidParameter(format!(
                "screen profile {w}x{h} is over 3840x2160"
            )));
        }
        if !CUSTOM_FPS.contains(&profile.frame_rate) {
            return Err(MediaError::InvalidParameter(format!(
                "screen profile frame rate {} not in 1..=30",
                profile.frame_rate
            )));
        }
        if !CUSTOM_KBPS.contains(&profile.bitrate_kbps) {
            return Err(MediaError::InvalidParameter(format!(
                "screen profile bitrate {} kbit/s not in 100..=10000",
                profile.bitrate_kbps
            )));
        }
        Ok(profile)
    }

    /// The size a `width` x `height` capture is sent at: scaled down to fit
    /// this profile's box with its aspect ratio kept (never scaled up), even
    /// and at least 2x2.
    #[must_use]
    pub fn fit(&self, width: u32, height: u32) -> (u32, u32) {
        let (w, h) = (u64::from(width.max(1)), u64::from(height.max(1)));
        let (bw, bh) = (u64::from(self.width), u64::from(self.height));
        let (w, h) = if w <= bw && h <= bh {
            (w, h)
        } else if w * bh >= h * bw {
            (bw, (h * bw / w).max(1))
        } else {
            ((w * bh / h).max(1), bh)
        };
        let even = |v: u64| (u32::try_from(v).unwrap_or(u32::MAX) & !1).max(2);
        (even(w), even(h))
    }

    /// The [`VideoProfile`] the publisher's rate ladder works with: this
    /// profile's size and frame rate, from half the bitrate up to the
    /// bitrate (Table 3-11 gives one number; the half is huddle's floor
    /// before the ladder lowers the frame rate).
    #[must_use]
    pub fn video_profile(&self) -> VideoProfile {
        VideoProfile {
            name: self.name,
            width: self.width,
            height: self.height,
            frame_rate: self.frame_rate,
            min_bitrate_kbps: self.bitrate_kbps / 2,
            max_bitrate_kbps: self.bitrate_kbps,
        }
    }
}

impl Default for ScreenProfile {
    /// `720p`: 1280x720 @ 15 fps, 1200 kbit/s.
    fn default() -> Self {
        DEFAULT_SCREEN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_3_11() {
        assert_eq!(SCREEN_PROFILES.len(), 2);
        let p = ScreenProfile::by_name("1080p").copied();
        assert_eq!(
            p.map(|p| (p.width, p.height, p.frame_rate, p.bitrate_kbps)),
            Some((1920, 1080, 15, 2000))
        );
        let d = ScreenProfile::default();
        assert_eq!(
            (d.name, d.width, d.height, d.frame_rate, d.bitrate_kbps),
            ("720p", 1280, 720, 15, 1200)
        );
        assert_eq!(ScreenProfile::by_name(DEFAULT_SCREEN_PROFILE), Some(&d));
        assert!(ScreenProfile::by_name("720p_1").is_none());
    }

    #[test]
    fn custom_profiles_are_checked() {
        let p = ScreenProfile::custom(Some(800), None, Some(5), Some(500_000)).expect("valid");
        assert_eq!(
            (p.width, p.height, p.frame_rate, p.bitrate_kbps),
            (800, 720, 5, 500)
        );
        for bad in [
            ScreenProfile::custom(Some(801), None, None, None),
            ScreenProfile::custom(Some(0), None, None, None),
            ScreenProfile::custom(Some(7680), Some(4320), None, None),
            ScreenProfile::custom(None, None, Some(0), None),
            ScreenProfile::custom(None, None, Some(60), None),
            ScreenProfile::custom(None, None, None, Some(50_000)),
        ] {
            let e = bad.expect_err("refused");
            assert_eq!(e.seed_code(), 90_000_005, "{e}");
        }
    }

    #[test]
    fn fit_keeps_aspect_and_never_scales_up() {
        let p = ScreenProfile::default();
        assert_eq!(p.fit(1280, 720), (1280, 720));
        assert_eq!(p.fit(1920, 1080), (1280, 720));
        assert_eq!(p.fit(401, 301), (400, 300));
        assert_eq!(p.fit(2560, 1600), (1152, 720));
        assert_eq!(p.fit(3000, 600), (1280, 256));
        assert_eq!(p.fit(1, 1), (2, 2));
        let v = p.video_profile();
        assert_eq!((v.min_bitrate_kbps, v.max_bitrate_kbps), (600, 1200));
    }
}
