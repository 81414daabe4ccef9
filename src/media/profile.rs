//! Named video and audio profiles from seed 001 (SparkRTC), Tables 3-10 and 3-9.
//!
//! Why this exists: the CLI, bot and client all accept a profile *name*
//! (`"360p_2"`, `"standard"`) and need the same resolution/frame-rate/bitrate
//! numbers. Invariants: the tables are copied verbatim from the seed (same row
//! order), names are unique, the defaults are `360p_2` and `standard` as the
//! seed specifies for an unset/invalid profile.

/// One row of seed Table 3-10: resolution, frame rate and bitrate range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VideoProfile {
    /// Profile name as used in the API, e.g. `"360p_2"`.
    pub name: &'static str,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second.
    pub frame_rate: u32,
    /// Minimum bitrate in kbit/s.
    pub min_bitrate_kbps: u32,
    /// Maximum bitrate in kbit/s.
    pub max_bitrate_kbps: u32,
}

const fn vp(
    name: &'static str,
    width: u32,
    height: u32,
    min_bitrate_kbps: u32,
    max_bitrate_kbps: u32,
) -> VideoProfile {
    VideoProfile {
        name,
        width,
        height,
        frame_rate: 15,
        min_bitrate_kbps,
        max_bitrate_kbps,
    }
}

/// All rows of seed Table 3-10, in table order.
pub const VIDEO_PROFILES: &[VideoProfile] = &[
    vp("90p_1", 160, 90, 64, 110),
    vp("90p_2", 120, 90, 64, 110),
    vp("120p_1", 160, 120, 64, 120),
    vp("120p_2", 120, 120, 64, 110),
    vp("180p_1", 320, 180, 80, 320),
    vp("180p_2", 240, 180, 80, 170),
    vp("180p_3", 180, 180, 64, 130),
    vp("240p_1", 320, 240, 100, 400),
    vp("240p_2", 240, 240, 80, 320),
    vp("270p_1", 480, 270, 160, 600),
    vp("300p_1", 400, 300, 200, 500),
    vp("360p_1", 640, 360, 200, 800),
    vp("360p_2", 480, 360, 200, 700),
    vp("360p_3", 360, 360, 150, 600),
    vp("450p_1", 800, 450, 300, 950),
    vp("480p_1", 640, 480, 250, 900),
    vp("480p_2", 480, 480, 200, 800),
    vp("540p_1", 960, 540, 400, 1000),
    vp("630p_1", 1120, 630, 450, 1150),
    vp("720p_1", 1280, 720, 500, 1500),
    vp("720p_2", 960, 720, 450, 1100),
    vp("1080p_1", 1920, 1080, 600, 2000),
    vp("1080p_2", 1440, 1080, 550, 1700),
];

/// Name of the default video profile (seed: used when unset or invalid).
pub const DEFAULT_VIDEO_PROFILE: &str = "360p_2";

/// The default row, kept as a constant so `Default` needs no lookup.
const DEFAULT_VIDEO: VideoProfile = vp("360p_2", 480, 360, 200, 700);

impl VideoProfile {
    /// Looks a profile up by its exact name (e.g. `"720p_1"`).
    #[must_use]
    pub fn by_name(name: &str) -> Option<&'static VideoProfile> {
        VIDEO_PROFILES.iter().find(|p| p.name == name)
    }

    /// Minimum bitrate in bit/s.
    #[must_use]
    pub const fn min_bitrate_bps(&self) -> u32 {
        self.min_bitrate_kbps * 1000
    }

    /// Maximum bitrate in bit/s.
    #[must_use]
    pub const fn max_bitrate_bps(&self) -> u32 {
        self.max_bitrate_kbps * 1000
    }
}

impl Default for VideoProfile {
    /// `360p_2`: 480x360 @ 15 fps, 200-700 kbit/s.
    fn default() -> Self {
        DEFAULT_VIDEO
    }
}

/// One row of seed Table 3-9: audio sampling rate, channels and bitrate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AudioProfile {
    /// Profile name: `"low"`, `"standard"` or `"high"`.
    pub name: &'static str,
    /// Sampling rate in Hz.
    pub sample_rate: u32,
    /// Number of channels.
    pub channels: u16,
    /// Bitrate in kbit/s.
    pub bitrate_kbps: u32,
}

/// All rows of seed Table 3-9, in table order.
pub const AUDIO_PROFILES: &[AudioProfile] = &[
    AudioProfile {
        name: "low",
        sample_rate: 16_000,
        channels: 1,
        bitrate_kbps: 24,
    },
    DEFAULT_AUDIO,
    AudioProfile {
        name: "high",
        sample_rate: 48_000,
        channels: 1,
        bitrate_kbps: 128,
    },
];

/// Name of the default audio profile.
pub const DEFAULT_AUDIO_PROFILE: &str = "standard";

const DEFAULT_AUDIO: AudioProfile = AudioProfile {
    name: "standard",
    sample_rate: 48_000,
    channels: 1,
    bitrate_kbps: 40,
};

impl AudioProfile {
    /// Looks a profile up by its exact name.
    #[must_use]
    pub fn by_name(name: &str) -> Option<&'static AudioProfile> {
        AUDIO_PROFILES.iter().find(|p| p.name == name)
    }

    /// Bitrate in bit/s.
    #[must_use]
    pub const fn bitrate_bps(&self) -> u32 {
        self.bitrate_kbps * 1000
    }
}

impl Default for AudioProfile {
    /// `standard`: 48 kHz, mono, 40 kbit/s.
    fn default() -> Self {
        DEFAULT_AUDIO
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_3_10_complete_and_unique() {
        assert_eq!(VIDEO_PROFILES.len(), 23);
        for (i, a) in VIDEO_PROFILES.iter().enumerate() {
            assert!(a.min_bitrate_kbps < a.max_bitrate_kbps, "{}", a.name);
            assert!(a.width % 2 == 0 && a.height % 2 == 0, "{}", a.name);
            for b in &VIDEO_PROFILES[i + 1..] {
                assert_ne!(a.name, b.name);
            }
        }
        let p = VideoProfile::by_name("1080p_2");
        assert_eq!(p.map(|p| (p.width, p.height)), Some((1440, 1080)));
        assert!(VideoProfile::by_name("nope").is_none());
    }

    #[test]
    fn defaults() {
        let v = VideoProfile::default();
        assert_eq!(
            (v.name, v.width, v.height, v.frame_rate),
            ("360p_2", 480, 360, 15)
        );
        assert_eq!((v.min_bitrate_kbps, v.max_bitrate_kbps), (200, 700));
        assert_eq!(VideoProfile::by_name(DEFAULT_VIDEO_PROFILE), Some(&v));
        let a = AudioProfile::default();
        assert_eq!((a.sample_rate, a.channels, a.bitrate_kbps), (48_000, 1, 40));
        assert_eq!(
            AudioProfile::by_name("low").map(|p| p.sample_rate),
            Some(16_000)
        );
        assert_eq!(
            AudioProfile::by_name("high").map(|p| p.bitrate_kbps),
            Some(128)
        );
    }
}
