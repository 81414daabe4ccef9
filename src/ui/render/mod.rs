//! GPU video rendering: I420 pictures → RGB in `shaders/yuv.wgsl`.
//!
//! [`YuvRenderer`] lives in egui-wgpu's callback resources (installed once by
//! [`install`]); each visible tile adds a [`YuvCallback`] to the egui paint list.
//! Nothing here knows about rooms or streams: a tile is a key and a
//! [`VideoSlot`](crate::client::VideoSlot).

mod color;
mod object_fit;
mod uniforms;
mod yuv_callback;
mod yuv_renderer;

pub use color::{ColorMatrix, ColorRange};
pub use object_fit::ObjectFit;
pub use uniforms::YuvUniforms;
pub use yuv_callback::YuvCallback;
pub use yuv_renderer::YuvRenderer;

/// Puts a [`YuvRenderer`] into the egui-wgpu callback resources. Returns false
/// when eframe runs without wgpu (video tiles then show placeholders).
pub fn install(render_state: Option<&egui_wgpu::RenderState>) -> bool {
    let Some(rs) = render_state else {
        return false;
    };
    let renderer = YuvRenderer::new(&rs.device, rs.target_format);
    rs.renderer.write().callback_resources.insert(renderer);
    true
}
