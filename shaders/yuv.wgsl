// I420 → RGB for one video tile.
//
// Three R8Unorm planes (Y full size, U and V half size) are sampled with one
// linear sampler; the vertex stage makes a quad from the vertex index, so there
// is no vertex buffer. Object-fit and mirroring are a scale on the quad
// (contain) and on the texture coordinates (cover, mirror); see
// `src/ui/render/uniforms.rs`, which fills `Uniforms`.

// Keep in sync with `ColorMatrix` in src/ui/render/color.rs.
const MATRIX_BT601: u32 = 0u;
const MATRIX_BT709: u32 = 1u;

// Keep in sync with `ColorRange` in src/ui/render/color.rs.
const RANGE_LIMITED: u32 = 0u;
const RANGE_FULL: u32 = 1u;

// Keep in sync with `YuvUniforms` in src/ui/render/uniforms.rs (std140-compatible:
// vec2s first, then the u32s, padded to 16 bytes).
struct Uniforms {
    // Quad size as a fraction of the callback rect, in NDC half-extents (1 = fill).
    quad_scale: vec2<f32>,
    // Texture-coordinate span around the centre (1 = whole picture; < 1 crops;
    // negative x mirrors).
    uv_scale: vec2<f32>,
    matrix: u32,
    range: u32,
    // 1 when the render target is sRGB and the output must be linearised.
    linear_output: u32,
    // 1 dims the picture (muted camera).
    dim: u32,
};

@group(0) @binding(0) var<uniform> u: Uniforms;
@group(0) @binding(1) var plane_y: texture_2d<f32>;
@group(0) @binding(2) var plane_u: texture_2d<f32>;
@group(0) @binding(3) var plane_v: texture_2d<f32>;
@group(0) @binding(4) var plane_sampler: sampler;

struct VertexOut {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec2<f32>,
};

@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> VertexOut {
    // Two triangles: (0,0) (1,0) (0,1) / (0,1) (1,0) (1,1).
    var corners = array<vec2<f32>, 6>(
        vec2<f32>(0.0, 0.0), vec2<f32>(1.0, 0.0), vec2<f32>(0.0, 1.0),
        vec2<f32>(0.0, 1.0), vec2<f32>(1.0, 0.0), vec2<f32>(1.0, 1.0),
    );
    let c = corners[index];
    var out: VertexOut;
    let ndc = vec2<f32>(c.x * 2.0 - 1.0, 1.0 - c.y * 2.0) * u.quad_scale;
    out.position = vec4<f32>(ndc, 0.0, 1.0);
    out.uv = (c - vec2<f32>(0.5, 0.5)) * u.uv_scale + vec2<f32>(0.5, 0.5);
    return out;
}

fn srgb_to_linear(c: vec3<f32>) -> vec3<f32> {
    let low = c / 12.92;
    let high = pow((c + vec3<f32>(0.055)) / 1.055, vec3<f32>(2.4));
    return select(high, low, c <= vec3<f32>(0.04045));
}

@fragment
fn fs_main(in: VertexOut) -> @location(0) vec4<f32> {
    var y = textureSample(plane_y, plane_sampler, in.uv).r;
    var cb = textureSample(plane_u, plane_sampler, in.uv).r - 0.5;
    var cr = textureSample(plane_v, plane_sampler, in.uv).r - 0.5;
    if (u.range == RANGE_LIMITED) {
        y = (y - 16.0 / 255.0) * (255.0 / 219.0);
        cb = cb * (255.0 / 224.0);
        cr = cr * (255.0 / 224.0);
    }
    var rgb: vec3<f32>;
    if (u.matrix == MATRIX_BT709) {
        rgb = vec3<f32>(
            y + 1.5748 * cr,
            y - 0.187324 * cb - 0.468124 * cr,
            y + 1.8556 * cb,
        );
    } else {
        rgb = vec3<f32>(
            y + 1.402 * cr,
            y - 0.344136 * cb - 0.714136 * cr,
            y + 1.772 * cb,
        );
    }
    rgb = clamp(rgb, vec3<f32>(0.0), vec3<f32>(1.0));
    if (u.dim == 1u) {
        rgb = rgb * 0.35;
    }
    if (u.linear_output == 1u) {
        rgb = srgb_to_linear(rgb);
    }
    return vec4<f32>(rgb, 1.0);
}
