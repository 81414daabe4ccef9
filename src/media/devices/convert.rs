//! Camera pixel formats to [`I420Frame`]: packed YUYV, NV12, grey, RGB/BGR,
//! and a nearest-neighbour I420 scaler.
//!
//! Why this exists: cameras deliver YUYV or MJPEG (decoded to RGB) at the size
//! they support; the encoder wants tightly packed I420 at the published size.
//! The conversions run on the capture thread and write into a caller-owned
//! frame (resized, so steady state does not allocate).
//!
//! Colour: BT.601 studio range ("limited": Y 16–235, chroma 16–240), what
//! webcams produce and what the H.264 path and [`super::super::pattern`] use.
//! Chroma is averaged over each 2x2 block; odd edges repeat the last pixel.

use crate::media::{I420Frame, MediaError, Result};

/// Byte order of a packed 3-byte pixel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RgbOrder {
    /// R, G, B.
    Rgb,
    /// B, G, R.
    Bgr,
}

fn check_len(data: &[u8], need: usize, what: &str) -> Result<()> {
    if data.len() < need {
        return Err(MediaError::FrameMismatch(format!(
            "{what}: {} bytes, need {need}",
            data.len()
        )));
    }
    Ok(())
}

fn check_size(width: u32, height: u32) -> Result<()> {
    if width == 0 || height == 0 {
        return Err(MediaError::InvalidDimensions {
            width,
            height,
            reason: "camera frame is empty",
        });
    }
    Ok(())
}

/// BT.601 studio-range luma of an RGB pixel.
#[must_use]
pub fn rgb_to_y(r: u8, g: u8, b: u8) -> u8 {
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    ((66 * r + 129 * g + 25 * b + 128) >> 8)
        .wrapping_add(16)
        .clamp(0, 255) as u8
}

/// BT.601 studio-range (Cb, Cr) of an RGB pixel (inputs may be 2x2 sums ×1/4 upstream).
#[must_use]
pub fn rgb_to_uv(r: i32, g: i32, b: i32) -> (u8, u8) {
    let u = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128;
    let v = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128;
    (u.clamp(0, 255) as u8, v.clamp(0, 255) as u8)
}

/// Packed 8-bit RGB (or BGR) rows, `stride` bytes apart, to I420 in `out`.
///
/// # Errors
/// [`MediaError::FrameMismatch`] when `data` is too short.
pub fn rgb_to_i420(
    data: &[u8],
    width: u32,
    height: u32,
    stride: usize,
    order: RgbOrder,
    out: &mut I420Frame,
) -> Result<()> {
    check_size(width, height)?;
    let (w, h) = (width as usize, height as usize);
    check_len(data, stride * (h - 1) + w * 3, "rgb")?;
    out.resize(width, height);
    let px = |x: usize, y: usize| -> (i32, i32, i32) {
        let i = y * stride + x * 3;
        let (a, b, c) = (
            i32::from(data.get(i).copied().unwrap_or(0)),
            i32::from(data.get(i + 1).copied().unwrap_or(0)),
            i32::from(data.get(i + 2).copied().unwrap_or(0)),
        );
        match order {
            RgbOrder::Rgb => (a, b, c),
            RgbOrder::Bgr => (c, b, a),
        }
    };
    fill_i420(out, px);
    Ok(())
}

/// Fills `out`, at its size, from `px(x, y)`: the RGB (0-255 each) of output
/// pixel `(x, y)`. Luma per pixel; chroma averaged over each 2x2 block, the
/// last column and row repeated on odd sizes. Shared by the camera formats
/// here and the X11 capture (`x11.rs`, which scales in `px`).
pub(crate) fn fill_i420(out: &mut I420Frame, px: impl Fn(usize, usize) -> (i32, i32, i32)) {
    let (w, h) = (out.width as usize, out.height as usize);
    if w == 0 || h == 0 {
        return;
    }
    for y in 0..h {
        let row = &mut out.y[y * w..(y + 1) * w];
        for (x, luma) in row.iter_mut().enumerate() {
            let (r, g, b) = px(x, y);
            *luma = rgb_to_y(r as u8, g as u8, b as u8);
        }
    }
    let cw = out.chroma_width() as usize;
    for cy in 0..out.chroma_height() as usize {
        for cx in 0..cw {
            let (mut r, mut g, mut b) = (0, 0, 0);
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let (pr, pg, pb) = px((2 * cx + dx).min(w - 1), (2 * cy + dy).min(h - 1));
                r += pr;
                g += pg;
                b += pb;
            }
            let (u, v) = rgb_to_uv((r + 2) / 4, (g + 2) / 4, (b + 2) / 4);
            out.u[cy * cw + cx] = u;
            out.v[cy * cw + cx] = v;
        }
    }
}

/// Packed YUYV 4:2:2 (Y0 U Y1 V), `width * 2` bytes a row, to I420 in `out`
/// (chroma averaged over each pair of rows).
///
/// # Errors
/// [`MediaError::FrameMismatch`] when `data` is too short.
pub fn yuyv_to_i420(data: &[u8], width: u32, height: u32, out: &mut I420Frame) -> Result<()> {
    check_size(width, height)?;
    let (w, h) = (width as usize, height as usize);
    let stride = w.div_ceil(2) * 4;
    check_len(data, stride * h, "yuyv")?;
    out.resize(width, height);
    for y in 0..h {
        let row = &data[y * stride..(y + 1) * stride];
        for x in 0..w {
            out.y[y * w + x] = row[(x / 2) * 4 + (x % 2) * 2];
        }
    }
    let cw = out.chroma_width() as usize;
    for cy in 0..out.chroma_height() as usize {
        let r0 = (2 * cy) * stride;
        let r1 = (2 * cy + 1).min(h - 1) * stride;
        for cx in 0..cw {
            let i = cx * 4;
            let avg = |o: usize| {
                (u16::from(data[r0 + i + o]) + u16::from(data[r1 + i + o])).div_ceil(2) as u8
            };
            out.u[cy * cw + cx] = avg(1);
            out.v[cy * cw + cx] = avg(3);
        }
    }
    Ok(())
}

/// NV12 (Y plane, then interleaved UV at half resolution) to I420 in `out`.
///
/// # Errors
/// [`MediaError::FrameMismatch`] when `data` is too short.
pub fn nv12_to_i420(data: &[u8], width: u32, height: u32, out: &mut I420Frame) -> Result<()> {
    check_size(width, height)?;
    let (w, h) = (width as usize, height as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    check_len(data, w * h + cw * ch * 2, "nv12")?;
    out.resize(width, height);
    out.y.copy_from_slice(&data[..w * h]);
    let uv = &data[w * h..w * h + cw * ch * 2];
    for (i, pair) in uv.chunks_exact(2).enumerate() {
        out.u[i] = pair[0];
        out.v[i] = pair[1];
    }
    Ok(())
}

/// 8-bit grey to I420 in `out` (neutral chroma).
///
/// # Errors
/// [`MediaError::FrameMismatch`] when `data` is too short.
pub fn gray_to_i420(data: &[u8], width: u32, height: u32, out: &mut I420Frame) -> Result<()> {
    check_size(width, height)?;
    let n = width as usize * height as usize;
    check_len(data, n, "gray")?;
    out.resize(width, height);
    // Full-range grey to studio range.
    for (o, &g) in out.y.iter_mut().zip(&data[..n]) {
        *o = (16 + (u32::from(g) * 219 + 127) / 255) as u8;
    }
    out.u.fill(128);
    out.v.fill(128);
    Ok(())
}

/// Scales `src` to `dst`'s size (nearest neighbour); copies when equal.
pub fn scale_i420(src: &I420Frame, dst: &mut I420Frame) {
    if (src.width, src.height) == (dst.width, dst.height) {
        dst.clone_from(src);
        return;
    }
    let plane = |s: &[u8], sw: usize, sh: usize, d: &mut [u8], dw: usize, dh: usize| {
        for y in 0..dh {
            let sy = (y * sh / dh.max(1)).min(sh.saturating_sub(1));
            for x in 0..dw {
                let sx = (x * sw / dw.max(1)).min(sw.saturating_sub(1));
                d[y * dw + x] = s.get(sy * sw + sx).copied().unwrap_or(16);
            }
        }
    };
    let (sw, sh) = (src.width as usize, src.height as usize);
    let (dw, dh) = (dst.width as usize, dst.height as usize);
    plane(&src.y, sw, sh, &mut dst.y, dw, dh);
    let (scw, sch) = (src.chroma_width() as usize, src.chroma_height() as usize);
    let (dcw, dch) = (dst.chroma_width() as usize, dst.chroma_height() as usize);
    plane(&src.u, scw, sch, &mut dst.u, dcw, dch);
    plane(&src.v, scw, sch, &mut dst.v, dcw, dch);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid_rgb(w: u32, h: u32, rgb: [u8; 3]) -> Vec<u8> {
        rgb.repeat((w * h) as usize)
    }

    #[test]
    fn rgb_primaries_map_to_bt601_studio_range() {
        let mut f = I420Frame::new_black(2, 2);
        for (rgb, yuv) in [
            ([255, 255, 255], (235, 128, 128)),
            ([0, 0, 0], (16, 128, 128)),
            ([255, 0, 0], (82, 90, 240)),
            ([0, 255, 0], (145, 54, 34)),
            ([0, 0, 255], (41, 240, 110)),
        ] {
            rgb_to_i420(&solid_rgb(5, 3, rgb), 5, 3, 15, RgbOrder::Rgb, &mut f).expect("convert");
            assert!(f.is_consistent());
            assert_eq!((f.width, f.height), (5, 3));
            let got = (f.y[7], f.u[0], f.v[5]);
            let close = |a: u8, b: u8| a.abs_diff(b) <= 1;
            assert!(
                close(got.0, yuv.0) && close(got.1, yuv.1) && close(got.2, yuv.2),
                "{rgb:?} -> {got:?}, want {yuv:?}"
            );
        }
        let bgr = solid_rgb(2, 2, [0, 0, 255]);
        rgb_to_i420(&bgr, 2, 2, 6, RgbOrder::Bgr, &mut f).expect("convert");
        assert!(f.v[0] >= 239, "BGR red has Cr {}", f.v[0]);
    }

    #[test]
    fn yuyv_nv12_gray_convert() {
        // 4x2 YUYV: luma ramps, chroma differs per row (averaged).
        let data = [
            10, 100, 20, 200, 30, 110, 40, 210, //
            50, 120, 60, 220, 70, 130, 80, 230,
        ];
        let mut f = I420Frame::new_black(1, 1);
        yuyv_to_i420(&data, 4, 2, &mut f).expect("yuyv");
        assert_eq!(f.y, [10, 20, 30, 40, 50, 60, 70, 80]);
        assert_eq!(f.u, [110, 120]);
        assert_eq!(f.v, [210, 220]);
        assert!(yuyv_to_i420(&data[..10], 4, 2, &mut f).is_err());

        let nv12 = [1, 2, 3, 4, 5, 6, 7, 8, 50, 60, 51, 61];
        nv12_to_i420(&nv12, 4, 2, &mut f).expect("nv12");
        assert_eq!(
            (f.u.as_slice(), f.v.as_slice()),
            (&[50, 51][..], &[60, 61][..])
        );

        gray_to_i420(&[0, 255, 128, 0], 2, 2, &mut f).expect("gray");
        assert_eq!(f.y, [16, 235, 126, 16]);
        assert!(gray_to_i420(&[0; 4], 0, 2, &mut f).is_err());
    }

    #[test]
    fn scale_nearest_keeps_packing() {
        let mut src = I420Frame::new_black(4, 4);
        src.y.iter_mut().enumerate().for_each(|(i, v)| *v = i as u8);
        let mut dst = I420Frame::new_black(2, 2);
        scale_i420(&src, &mut dst);
        assert!(dst.is_consistent());
        assert_eq!(dst.y, [0, 2, 8, 10]);
        let mut up = I420Frame::new_black(7, 5);
        scale_i420(&src, &mut up);
        assert!(up.is_consistent());
        assert_eq!(up.y[0], 0);
    }
}
