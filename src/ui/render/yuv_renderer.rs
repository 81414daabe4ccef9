//! GPU state for drawing I420 tiles, stored in egui-wgpu's `callback_resources`.
//!
//! One pipeline and sampler for all tiles; per tile three `R8Unorm` plane
//! textures, a uniform buffer and a bind group. Invariants: textures are
//! reallocated only when the picture size changes, planes are uploaded only when
//! the slot's generation changed, and tiles not drawn for [`STALE_AFTER_PASSES`]
//! egui passes are freed.

use std::collections::HashMap;

use crate::media::I420Frame;

use super::uniforms::YuvUniforms;

/// Tiles not prepared for this many egui passes lose their textures.
pub const STALE_AFTER_PASSES: u64 = 120;

/// Pipeline + per-tile textures; lives in `egui_wgpu::CallbackResources`.
pub struct YuvRenderer {
    pipeline: wgpu::RenderPipeline,
    bind_group_layout: wgpu::BindGroupLayout,
    sampler: wgpu::Sampler,
    /// Whether the target is sRGB (the shader then linearises).
    pub(super) srgb_target: bool,
    tiles: HashMap<u64, TileGpu>,
    /// Plane uploads so far (for the debug overlay).
    pub uploads: u64,
}

/// One tile's GPU objects.
pub(super) struct TileGpu {
    size: (u32, u32),
    planes: [wgpu::Texture; 3],
    uniforms: wgpu::Buffer,
    pub(super) bind_group: wgpu::BindGroup,
    /// `VideoSlot::generation` of the uploaded picture.
    pub(super) generation: u64,
    last_pass: u64,
}

impl YuvRenderer {
    /// Compiles `shaders/yuv.wgsl` and builds the pipeline for `target_format`.
    pub fn new(device: &wgpu::Device, target_format: wgpu::TextureFormat) -> Self {
        let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("huddle yuv"),
            source: wgpu::ShaderSource::Wgsl(include_str!("../../../shaders/yuv.wgsl").into()),
        });
        let plane = |binding| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::FRAGMENT,
            ty: wgpu::BindingType::Texture {
                sample_type: wgpu::TextureSampleType::Float { filterable: true },
                view_dimension: wgpu::TextureViewDimension::D2,
                multisampled: false,
            },
            count: None,
        };
        let bind_group_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("huddle yuv"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::VERTEX_FRAGMENT,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
                plane(1),
                plane(2),
                plane(3),
                wgpu::BindGroupLayoutEntry {
                    binding: 4,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
                    count: None,
                },
            ],
        });
        let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("huddle yuv"),
            bind_group_layouts: &[Some(&bind_group_layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("huddle yuv"),
            layout: Some(&layout),
            vertex: wgpu::VertexState {
                module: &shader,
                entry_point: Some("vs_main"),
                compilation_options: Default::default(),
                buffers: &[],
            },
            fragment: Some(wgpu::FragmentState {
                module: &shader,
                entry_point: Some("fs_main"),
                compilation_options: Default::default(),
                targets: &[Some(target_format.into())],
            }),
            primitive: wgpu::PrimitiveState::default(),
            depth_stencil: None,
            multisample: wgpu::MultisampleState::default(),
            multiview_mask: None,
            cache: None,
        });
        let sampler = device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("huddle yuv"),
            mag_filter: wgpu::FilterMode::Linear,
            min_filter: wgpu::FilterMode::Linear,
            ..Default::default()
        });
        Self {
            pipeline,
            bind_group_layout,
            sampler,
            srgb_target: target_format.is_srgb(),
            tiles: HashMap::new(),
            uploads: 0,
        }
    }

    /// The pipeline.
    pub(super) fn pipeline(&self) -> &wgpu::RenderPipeline {
        &self.pipeline
    }

    /// The tile's GPU objects, if it has been prepared.
    pub(super) fn tile(&self, key: u64) -> Option<&TileGpu> {
        self.tiles.get(&key)
    }

    /// Makes sure tile `key` has textures of `frame`'s size, uploads its planes
    /// if `generation` is new, and writes its uniforms.
    pub(super) fn prepare_tile(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        key: u64,
        pass: u64,
        frame: Option<(&I420Frame, u64)>,
        uniforms: &YuvUniforms,
    ) {
        if let Some((frame, generation)) = frame {
            let size = (frame.width, frame.height);
            let fresh = self.tiles.get(&key).is_none_or(|t| t.size != size);
            if fresh {
                let tile = self.create_tile(device, size);
                self.tiles.insert(key, tile);
            }
            if let Some(tile) = self.tiles.get_mut(&key)
                && (fresh || tile.generation != generation)
            {
                upload_planes(queue, &tile.planes, frame);
                tile.generation = generation;
                self.uploads += 1;
            }
        }
        if let Some(tile) = self.tiles.get_mut(&key) {
            tile.last_pass = pass;
            queue.write_buffer(&tile.uniforms, 0, bytemuck::bytes_of(uniforms));
        }
        self.tiles
            .retain(|_, t| t.last_pass + STALE_AFTER_PASSES >= pass);
    }

    fn create_tile(&self, device: &wgpu::Device, (width, height): (u32, u32)) -> TileGpu {
        let (cw, ch) = chroma_size(width, height);
        let texture = |label, w, h| {
            device.create_texture(&wgpu::TextureDescriptor {
                label: Some(label),
                size: wgpu::Extent3d {
                    width: w,
                    height: h,
                    depth_or_array_layers: 1,
                },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format: wgpu::TextureFormat::R8Unorm,
                usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
                view_formats: &[],
            })
        };
        let planes = [
            texture("huddle y", width, height),
            texture("huddle u", cw, ch),
            texture("huddle v", cw, ch),
        ];
        let uniforms = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("huddle yuv uniforms"),
            size: std::mem::size_of::<YuvUniforms>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let views: Vec<_> = planes
            .iter()
            .map(|t| t.create_view(&wgpu::TextureViewDescriptor::default()))
            .collect();
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("huddle yuv"),
            layout: &self.bind_group_layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: uniforms.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::TextureView(&views[0]),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: wgpu::BindingResource::TextureView(&views[1]),
                },
                wgpu::BindGroupEntry {
                    binding: 3,
                    resource: wgpu::BindingResource::TextureView(&views[2]),
                },
                wgpu::BindGroupEntry {
                    binding: 4,
                    resource: wgpu::BindingResource::Sampler(&self.sampler),
                },
            ],
        });
        TileGpu {
            size: (width, height),
            planes,
            uniforms,
            bind_group,
            generation: u64::MAX,
            last_pass: 0,
        }
    }
}

fn chroma_size(width: u32, height: u32) -> (u32, u32) {
    (width.div_ceil(2), height.div_ceil(2))
}

/// Copies the three planes. `I420Frame` planes are tightly packed (stride ==
/// width), and `write_texture` has no row alignment rule, so each plane goes in
/// one call; a strided source would copy row by row instead.
fn upload_planes(queue: &wgpu::Queue, planes: &[wgpu::Texture; 3], frame: &I420Frame) {
    if !frame.is_consistent() {
        return;
    }
    let (cw, ch) = chroma_size(frame.width, frame.height);
    let sizes = [(frame.width, frame.height), (cw, ch), (cw, ch)];
    let data: [&[u8]; 3] = [&frame.y, &frame.u, &frame.v];
    for ((texture, (w, h)), bytes) in planes.iter().zip(sizes).zip(data) {
        queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            bytes,
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(w),
                rows_per_image: Some(h),
            },
            wgpu::Extent3d {
                width: w,
                height: h,
                depth_or_array_layers: 1,
            },
        );
    }
}
