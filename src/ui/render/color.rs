//! How YUV samples map to RGB: the colour matrix and the value range.
//!
//! Both are numbered enums because the numbers travel to the GPU as `u32`
//! uniforms and are compared against constants in `shaders/yuv.wgsl`.

/// The YUV → RGB matrix.
///
/// Keep in sync with `MATRIX_*` in shaders/yuv.wgsl.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u32)]
pub enum ColorMatrix {
    /// ITU-R BT.601: SD video; what our synthetic pattern and OpenH264 use.
    #[default]
    Bt601 = 0,
    /// ITU-R BT.709: HD video.
    Bt709 = 1,
}

/// The range the Y/U/V code values span.
///
/// Keep in sync with `RANGE_*` in shaders/yuv.wgsl.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u32)]
pub enum ColorRange {
    /// Studio range: Y in 16..=235, U/V in 16..=240.
    #[default]
    Limited = 0,
    /// Full range: 0..=255.
    Full = 1,
}
