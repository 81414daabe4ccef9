//! Raw (uncompressed) media frames shared by every part of the media pipeline.
//!
//! Why this exists: sources, codecs, analysis and the client SDK all need one
//! agreed-upon in-memory layout, so no module has to guess strides.
//!
//! Invariants:
//! * [`I420Frame`] planes are *tightly packed*: the Y plane has stride `width`
//!   and `height` rows; U and V have stride `(width + 1) / 2` and
//!   `(height + 1) / 2` rows. [`I420Frame::is_consistent`] checks this.
//! * [`AudioFrame`] samples are interleaved signed 16-bit PCM, so
//!   `samples.len()` is always a multiple of `channels`.

/// Duration of one audio frame in milliseconds (the Opus/WebRTC default).
pub const AUDIO_FRAME_MS: u32 = 20;

/// Number of samples *per channel* in one [`AUDIO_FRAME_MS`] frame at `sample_rate`.
#[must_use]
pub const fn samples_per_frame(sample_rate: u32) -> usize {
    (sample_rate as usize * AUDIO_FRAME_MS as usize) / 1000
}

/// A planar YUV 4:2:0 picture with tightly packed planes (see module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct I420Frame {
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
    /// Luma plane, `width * height` bytes, stride `width`.
    pub y: Vec<u8>,
    /// Cb plane, `chroma_width() * chroma_height()` bytes.
    pub u: Vec<u8>,
    /// Cr plane, `chroma_width() * chroma_height()` bytes.
    pub v: Vec<u8>,
}

/// Studio-range (BT.601 "limited") luma value for black.
pub const LUMA_BLACK: u8 = 16;
/// Studio-range luma value for white.
pub const LUMA_WHITE: u8 = 235;
/// Neutral (grey) chroma value.
pub const CHROMA_NEUTRAL: u8 = 128;

impl I420Frame {
    /// Creates a black frame (studio-range black: Y = 16, U = V = 128).
    #[must_use]
    pub fn new_black(width: u32, height: u32) -> Self {
        let luma = width as usize * height as usize;
        let chroma = Self::chroma_len_for(width, height);
        Self {
            width,
            height,
            y: vec![LUMA_BLACK; luma],
            u: vec![CHROMA_NEUTRAL; chroma],
            v: vec![CHROMA_NEUTRAL; chroma],
        }
    }

    /// Width of the chroma planes: `(width + 1) / 2`.
    #[must_use]
    pub const fn chroma_width(&self) -> u32 {
        self.width.div_ceil(2)
    }

    /// Height of the chroma planes: `(height + 1) / 2`.
    #[must_use]
    pub const fn chroma_height(&self) -> u32 {
        self.height.div_ceil(2)
    }

    /// Bytes in one chroma plane for a `width` x `height` picture.
    #[must_use]
    pub const fn chroma_len_for(width: u32, height: u32) -> usize {
        width.div_ceil(2) as usize * height.div_ceil(2) as usize
    }

    /// True when the plane lengths match `width`/`height` (the packing invariant).
    #[must_use]
    pub fn is_consistent(&self) -> bool {
        let chroma = Self::chroma_len_for(self.width, self.height);
        self.y.len() == self.width as usize * self.height as usize
            && self.u.len() == chroma
            && self.v.len() == chroma
    }

    /// Resizes the planes (keeping the allocation where possible) to `width` x `height`.
    ///
    /// Pixel contents after a size change are unspecified (but initialised).
    pub fn resize(&mut self, width: u32, height: u32) {
        self.width = width;
        self.height = height;
        let chroma = Self::chroma_len_for(width, height);
        self.y.resize(width as usize * height as usize, LUMA_BLACK);
        self.u.resize(chroma, CHROMA_NEUTRAL);
        self.v.resize(chroma, CHROMA_NEUTRAL);
    }
}

/// A block of interleaved signed 16-bit PCM audio.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioFrame {
    /// Samples per second (per channel).
    pub sample_rate: u32,
    /// Number of interleaved channels.
    pub channels: u16,
    /// Interleaved samples; length is a multiple of `channels`.
    pub samples: Vec<i16>,
}

impl AudioFrame {
    /// Creates [`AUDIO_FRAME_MS`] of silence.
    #[must_use]
    pub fn silence(sample_rate: u32, channels: u16) -> Self {
        Self {
            sample_rate,
            channels,
            samples: vec![0; samples_per_frame(sample_rate) * channels as usize],
        }
    }

    /// Number of samples per channel.
    #[must_use]
    pub fn samples_per_channel(&self) -> usize {
        if self.channels == 0 {
            0
        } else {
            self.samples.len() / self.channels as usize
        }
    }

    /// Duration of this frame in microseconds (0 if `sample_rate` is 0).
    #[must_use]
    pub fn duration_us(&self) -> u64 {
        if self.sample_rate == 0 {
            0
        } else {
            self.samples_per_channel() as u64 * 1_000_000 / u64::from(self.sample_rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn black_frame_is_packed() {
        let f = I420Frame::new_black(161, 91);
        assert!(f.is_consistent());
        assert_eq!(f.u.len(), 81 * 46);
        assert_eq!(f.chroma_width(), 81);
    }

    #[test]
    fn audio_frame_sizes() {
        let f = AudioFrame::silence(48_000, 2);
        assert_eq!(f.samples.len(), 960 * 2);
        assert_eq!(f.samples_per_channel(), 960);
        assert_eq!(f.duration_us(), 20_000);
    }
}
