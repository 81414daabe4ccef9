//! The per-tile uniform block of `shaders/yuv.wgsl`.

use super::color::{ColorMatrix, ColorRange};

/// Mirrors `struct Uniforms` in shaders/yuv.wgsl; keep in sync. 32 bytes, no
/// implicit padding (two `vec2<f32>` then four `u32`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct YuvUniforms {
    /// Quad half-extents in NDC (1 = the whole callback rect).
    pub quad_scale: [f32; 2],
    /// Sampled share of the picture; negative x mirrors.
    pub uv_scale: [f32; 2],
    /// [`ColorMatrix`] as `u32`.
    pub matrix: u32,
    /// [`ColorRange`] as `u32`.
    pub range: u32,
    /// 1 when the target is sRGB (the shader then linearises its output).
    pub linear_output: u32,
    /// 1 dims the picture.
    pub dim: u32,
}

impl YuvUniforms {
    /// Builds the block.
    pub fn new(
        quad_scale: [f32; 2],
        uv_scale: [f32; 2],
        matrix: ColorMatrix,
        range: ColorRange,
        linear_output: bool,
        dim: bool,
    ) -> Self {
        Self {
            quad_scale,
            uv_scale,
            matrix: matrix as u32,
            range: range as u32,
            linear_output: u32::from(linear_output),
            dim: u32::from(dim),
        }
    }
}

#[cfg(test)]
mod test {
    use super::YuvUniforms;

    #[test]
    fn uniform_block_is_32_bytes() {
        // WGSL lays the struct out as 2×vec2<f32> + 4×u32 = 32 bytes.
        assert_eq!(std::mem::size_of::<YuvUniforms>(), 32);
    }
}
