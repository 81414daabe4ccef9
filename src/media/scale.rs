//! Downscaling of [`I420Frame`]s for the lower rungs of the rate ladder.
//!
//! Why this exists: when congestion control steps a publisher down to a
//! smaller Table 3-10 size, the source keeps capturing at its own size and
//! the encoder is fed a scaled copy. The filter is an area average (each
//! output sample is the mean of the source samples its footprint covers), which
//! does not alias when shrinking by large factors the way point or bilinear
//! sampling would, and keeps [`crate::media::pattern`]'s stamp cells readable
//! when the size ratio keeps them on whole pixels (every 16:9 size whose width
//! is a multiple of 40).
//!
//! Invariant: [`Scaler`] allocates only when the sizes change; scaling a
//! stream of equal-sized frames reuses its tables and the output frame.

use super::frame::I420Frame;

/// Source spans per output column or row: `[start, end)` in source samples.
fn spans(src: u32, dst: u32) -> Vec<(usize, usize)> {
    let (src, dst) = (src as usize, dst.max(1) as usize);
    (0..dst)
        .map(|i| {
            let start = i * src / dst;
            let end = ((i + 1) * src / dst).max(start + 1).min(src.max(1));
            (start, end)
        })
        .collect()
}

/// Plane scaling tables for one source size → one output size.
#[derive(Debug, Default)]
struct PlaneTables {
    cols: Vec<(usize, usize)>,
    rows: Vec<(usize, usize)>,
}

impl PlaneTables {
    fn new(sw: u32, sh: u32, dw: u32, dh: u32) -> Self {
        Self {
            cols: spans(sw, dw),
            rows: spans(sh, dh),
        }
    }

    fn scale(&self, src: &[u8], src_stride: usize, dst: &mut [u8]) {
        let dst_stride = self.cols.len();
        for (dy, &(y0, y1)) in self.rows.iter().enumerate() {
            let out = dst.get_mut(dy * dst_stride..(dy + 1) * dst_stride);
            let Some(out) = out else { return };
            for (px, &(x0, x1)) in out.iter_mut().zip(&self.cols) {
                let mut sum = 0u32;
                for y in y0..y1 {
                    let row = src
                        .get(y * src_stride + x0..y * src_stride + x1)
                        .unwrap_or(&[]);
                    sum += row.iter().map(|&v| u32::from(v)).sum::<u32>();
                }
                let n = ((y1 - y0) * (x1 - x0)).max(1) as u32;
                *px = ((sum + n / 2) / n) as u8;
            }
        }
    }
}

/// Scales frames of one size to another, reusing its tables and output.
#[derive(Debug, Default)]
pub struct Scaler {
    key: (u32, u32, u32, u32),
    luma: PlaneTables,
    chroma: PlaneTables,
    out: Option<I420Frame>,
}

impl Scaler {
    /// `frame` scaled to `width` x `height` (both even). The returned frame is
    /// owned by the scaler and overwritten by the next call.
    pub fn scale(&mut self, frame: &I420Frame, width: u32, height: u32) -> &I420Frame {
        let key = (frame.width, frame.height, width, height);
        if self.key != key || self.out.is_none() {
            self.key = key;
            self.luma = PlaneTables::new(frame.width, frame.height, width, height);
            self.chroma = PlaneTables::new(
                frame.chroma_width(),
                frame.chroma_height(),
                width.div_ceil(2),
                height.div_ceil(2),
            );
            self.out = Some(I420Frame::new_black(width, height));
        }
        let out = self
            .out
            .get_or_insert_with(|| I420Frame::new_black(width, height));
        self.luma.scale(&frame.y, frame.width as usize, &mut out.y);
        let cw = frame.chroma_width() as usize;
        self.chroma.scale(&frame.u, cw, &mut out.u);
        self.chroma.scale(&frame.v, cw, &mut out.v);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{TestPattern, read_stamp};

    #[test]
    fn the_stamp_survives_every_16_9_rung() {
        let mut pattern = TestPattern::new(1280, 720);
        let frame = pattern.render(42, 123_456);
        let mut scaler = Scaler::default();
        for (w, h) in [(960, 540), (640, 360), (480, 270), (320, 180), (160, 90)] {
            let out = scaler.scale(&frame, w, h);
            assert_eq!((out.width, out.height), (w, h));
            assert!(out.is_consistent());
            let stamp = read_stamp(out).unwrap_or_else(|| panic!("no stamp at {w}x{h}"));
            assert_eq!((stamp.frame_no, stamp.capture_time_us), (42, 123_456));
        }
    }

    #[test]
    fn area_average_of_a_flat_picture_is_flat() {
        let mut frame = I420Frame::new_black(64, 48);
        frame.y.fill(200);
        frame.u.fill(90);
        let out = Scaler::default().scale(&frame, 22, 14).clone();
        assert!(out.y.iter().all(|&v| v == 200));
        assert!(out.u.iter().all(|&v| v == 90));
        assert!(out.v.iter().all(|&v| v == 128));
    }
}
