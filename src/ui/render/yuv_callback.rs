//! The paint callback that draws one video tile: `prepare` uploads, `paint` draws.

use std::sync::Arc;

use crate::client::VideoSlot;

use super::color::{ColorMatrix, ColorRange};
use super::object_fit::ObjectFit;
use super::uniforms::YuvUniforms;
use super::yuv_renderer::YuvRenderer;

/// One tile's draw request for this egui pass.
pub struct YuvCallback {
    /// Stable id of the tile (its GPU textures are kept under it).
    pub key: u64,
    /// Where the latest picture lives.
    pub slot: Arc<VideoSlot>,
    /// Tile size in points (only its aspect ratio matters).
    pub tile_size: [f32; 2],
    /// How the picture fills the tile.
    pub fit: ObjectFit,
    /// Flip horizontally (local preview).
    pub mirror: bool,
    /// Dim the picture (muted camera).
    pub dim: bool,
    /// The colour matrix of the source.
    pub matrix: ColorMatrix,
    /// The value range of the source.
    pub range: ColorRange,
    /// The egui pass number, for freeing textures of tiles no longer drawn.
    pub pass: u64,
}

impl egui_wgpu::CallbackTrait for YuvCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen_descriptor: &egui_wgpu::ScreenDescriptor,
        _egui_encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        let Some(renderer) = resources.get_mut::<YuvRenderer>() else {
            return Vec::new();
        };
        let generation = self.slot.generation();
        self.slot.with_latest(|frame| {
            let picture = frame.map_or([0.0, 0.0], |f| [f.width as f32, f.height as f32]);
            let (quad_scale, mut uv_scale) = self.fit.scales(picture, self.tile_size);
            if self.mirror {
                uv_scale[0] = -uv_scale[0];
            }
            let uniforms = YuvUniforms::new(
                quad_scale,
                uv_scale,
                self.matrix,
                self.range,
                renderer.srgb_target,
                self.dim,
            );
            renderer.prepare_tile(
                device,
                queue,
                self.key,
                self.pass,
                frame.map(|f| (f, generation)),
                &uniforms,
            );
        });
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        render_pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        let Some(renderer) = resources.get::<YuvRenderer>() else {
            return;
        };
        let Some(tile) = renderer.tile(self.key) else {
            return;
        };
        render_pass.set_pipeline(renderer.pipeline());
        render_pass.set_bind_group(0, &tile.bind_group, &[]);
        render_pass.draw(0..6, 0..1);
    }
}
