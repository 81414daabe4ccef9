//! Synthetic moving test picture with a machine-readable timing stamp.
//!
//! Why this exists: end-to-end tests and the bot must measure video latency
//! and frame loss through a real H.264 encode → network → decode path. Each
//! picture therefore carries a [`Stamp`] (frame number + capture time in µs
//! since the UNIX epoch) drawn as large black/white cells in the luma plane,
//! plus moving content (colour bars and a sliding box) so the encoder sees
//! realistic motion, and a human-readable frame counter.
//!
//! Stamp encoding (invariants, shared by [`TestPattern`] and [`read_stamp`]):
//! * 120 bits, MSB first: 8-bit sync byte `0xB2`, `frame_no` (u32 BE),
//!   `capture_time_us` (u64 BE), CRC-16/CCITT-FALSE (BE) of the 12 payload bytes.
//! * Each bit is a square cell of `cell = clamp(width / 40, 4, 32)` pixels,
//!   laid out row-major from the top-left corner, `cols = width / cell` per row,
//!   so the layout depends only on the frame width (and the height check).
//!   A 1 bit is luma 235, a 0 bit luma 16; chroma under the stamp is neutral.
//! * Cells are aligned to the 4x4 transform grid, and readers average only the
//!   inner half of each cell, so deblocking and quantisation ringing at cell
//!   edges do not flip bits. Surviving 480x360 @ 200 kbit/s is unit-tested.
//! * Minimum size: the stamp is drawn only when its height (`rows * cell`) is
//!   at most half the picture height; otherwise it is omitted and
//!   [`read_stamp`] returns `None`. Every Table 3-10 size fits (the tightest,
//!   120x90, uses 30x4 cells of 4 px = 16 px); in general width >= 64 and
//!   height >= 2 * stamp height are needed (e.g. 64x64).

use super::frame::{CHROMA_NEUTRAL, I420Frame, LUMA_BLACK, LUMA_WHITE};
use std::time::{SystemTime, UNIX_EPOCH};

/// Sync byte that starts every stamp.
const SYNC: u8 = 0xB2;
/// Total stamp bits: sync + frame_no + capture time + CRC-16.
const STAMP_BYTES: usize = 1 + 4 + 8 + 2;
const STAMP_BITS: u32 = (STAMP_BYTES * 8) as u32;
const MIN_CELL: u32 = 4;
const MAX_CELL: u32 = 32;
/// Luma threshold between a 0 cell (16) and a 1 cell (235).
const THRESHOLD: u32 = 126;

/// What a stamped frame says about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Stamp {
    /// Sequence number assigned by the source (0 for the first frame).
    pub frame_no: u32,
    /// Capture time in microseconds since the UNIX epoch.
    pub capture_time_us: u64,
}

/// Microseconds since the UNIX epoch from the system clock (0 if the clock is
/// before 1970).
#[must_use]
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Cell geometry of the stamp for one picture size.
#[derive(Clone, Copy, Debug)]
struct Layout {
    cell: u32,
    cols: u32,
    rows: u32,
}

fn layout(width: u32, height: u32) -> Option<Layout> {
    let cell = (width / 40).clamp(MIN_CELL, MAX_CELL);
    let cols = width / cell;
    if cols == 0 {
        return None;
    }
    let rows = STAMP_BITS.div_ceil(cols);
    if rows * cell > height / 2 {
        return None;
    }
    Some(Layout { cell, cols, rows })
}

/// Height in pixels of the stamp band at the top of a `width` x `height`
/// picture, or `None` when the picture is too small to carry a stamp.
/// Content below this band is free-moving test content.
#[must_use]
pub fn stamp_height(width: u32, height: u32) -> Option<u32> {
    layout(width, height).map(|l| l.rows * l.cell)
}

/// CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF).
fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

fn stamp_bytes(stamp: Stamp) -> [u8; STAMP_BYTES] {
    let mut out = [0u8; STAMP_BYTES];
    out[0] = SYNC;
    out[1..5].copy_from_slice(&stamp.frame_no.to_be_bytes());
    out[5..13].copy_from_slice(&stamp.capture_time_us.to_be_bytes());
    let crc = crc16(&out[1..13]);
    out[13..15].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Reads the stamp drawn by [`TestPattern`]; `None` if the frame is too small,
/// malformed, or the sync byte / CRC does not match (e.g. corrupted picture).
#[must_use]
pub fn read_stamp(frame: &I420Frame) -> Option<Stamp> {
    if !frame.is_consistent() {
        return None;
    }
    let l = layout(frame.width, frame.height)?;
    let w = frame.width as usize;
    let margin = l.cell / 4;
    let mut bytes = [0u8; STAMP_BYTES];
    for bit in 0..STAMP_BITS {
        let x0 = (bit % l.cols) * l.cell + margin;
        let y0 = (bit / l.cols) * l.cell + margin;
        let side = l.cell - 2 * margin;
        let mut sum = 0u32;
        for y in y0..y0 + side {
            let row = y as usize * w;
            let start = row + x0 as usize;
            let px = frame.y.get(start..start + side as usize)?;
            sum += px.iter().map(|&p| u32::from(p)).sum::<u32>();
        }
        if sum >= THRESHOLD * side * side {
            bytes[(bit / 8) as usize] |= 0x80 >> (bit % 8);
        }
    }
    if bytes[0] != SYNC {
        return None;
    }
    let crc = u16::from_be_bytes([bytes[13], bytes[14]]);
    if crc != crc16(&bytes[1..13]) {
        return None;
    }
    let mut fno = [0u8; 4];
    fno.copy_from_slice(&bytes[1..5]);
    let mut t = [0u8; 8];
    t.copy_from_slice(&bytes[5..13]);
    Some(Stamp {
        frame_no: u32::from_be_bytes(fno),
        capture_time_us: u64::from_be_bytes(t),
    })
}

/// 3x5 bitmap font for the digits 0-9 (one `u16` per digit, row-major, MSB first of 15 bits).
const DIGITS: [u16; 10] = [
    0b111_101_101_101_111,
    0b010_110_010_010_111,
    0b111_001_111_100_111,
    0b111_001_111_001_111,
    0b101_101_111_001_001,
    0b111_100_111_001_111,
    0b111_100_111_101_111,
    0b111_001_010_010_010,
    0b111_101_111_101_111,
    0b111_101_111_001_111,
];

/// Converts studio-range BT.601 from 8-bit RGB.
fn rgb_to_yuv(r: f32, g: f32, b: f32) -> (u8, u8, u8) {
    let (r, g, b) = (r / 255.0, g / 255.0, b / 255.0);
    let y = 16.0 + 65.481 * r + 128.553 * g + 24.966 * b;
    let u = 128.0 - 37.797 * r - 74.203 * g + 112.0 * b;
    let v = 128.0 + 112.0 * r - 93.786 * g - 18.214 * b;
    let c = |x: f32| x.round().clamp(0.0, 255.0) as u8;
    (c(y), c(u), c(v))
}

/// Generator of stamped, moving test pictures of a fixed size.
///
/// Holds a pre-rendered static background so that [`TestPattern::render_into`]
/// is a copy plus a few small overlays (no per-frame allocation).
#[derive(Clone, Debug)]
pub struct TestPattern {
    background: I420Frame,
    stamp_rows: u32,
    cell: u32,
}

impl TestPattern {
    /// Creates a pattern generator for `width` x `height` pictures.
    ///
    /// Any size is accepted; see the module docs for when the stamp fits.
    #[must_use]
    pub fn new(width: u32, height: u32) -> Self {
        let mut bg = I420Frame::new_black(width, height);
        let stamp_rows = stamp_height(width, height).unwrap_or(0);
        let cell = layout(width, height).map_or(MIN_CELL, |l| l.cell);
        let body = height - stamp_rows;
        let bars_end = stamp_rows + body * 2 / 3;
        const BARS: [(f32, f32, f32); 8] = [
            (191.0, 191.0, 191.0),
            (191.0, 191.0, 0.0),
            (0.0, 191.0, 191.0),
            (0.0, 191.0, 0.0),
            (191.0, 0.0, 191.0),
            (191.0, 0.0, 0.0),
            (0.0, 0.0, 191.0),
            (0.0, 0.0, 0.0),
        ];
        let w = width as usize;
        let cw = bg.chroma_width() as usize;
        for y in stamp_rows..height {
            for x in 0..width {
                let (luma, cb, cr) = if y < bars_end {
                    let idx = (x as usize * BARS.len()) / w.max(1);
                    let (r, g, b) = BARS[idx.min(BARS.len() - 1)];
                    rgb_to_yuv(r, g, b)
                } else {
                    // Horizontal grey ramp in the bottom third.
                    let level = (x * 219 / width.max(1)) as u8;
                    (LUMA_BLACK + level, CHROMA_NEUTRAL, CHROMA_NEUTRAL)
                };
                bg.y[y as usize * w + x as usize] = luma;
                if x % 2 == 0 && y % 2 == 0 {
                    let ci = (y / 2) as usize * cw + (x / 2) as usize;
                    bg.u[ci] = cb;
                    bg.v[ci] = cr;
                }
            }
        }
        Self {
            background: bg,
            stamp_rows,
            cell,
        }
    }

    /// Picture size as `(width, height)`.
    #[must_use]
    pub fn size(&self) -> (u32, u32) {
        (self.background.width, self.background.height)
    }

    /// Renders frame `frame_no` captured at `capture_time_us` into a new frame.
    #[must_use]
    pub fn render(&mut self, frame_no: u32, capture_time_us: u64) -> I420Frame {
        let mut frame = self.background.clone();
        self.draw_overlays(&mut frame, frame_no, capture_time_us);
        frame
    }

    /// Renders into `frame`, reusing its buffers (resized if needed).
    pub fn render_into(&mut self, frame: &mut I420Frame, frame_no: u32, capture_time_us: u64) {
        let (w, h) = self.size();
        if frame.width != w || frame.height != h || !frame.is_consistent() {
            frame.resize(w, h);
        }
        frame.y.copy_from_slice(&self.background.y);
        frame.u.copy_from_slice(&self.background.u);
        frame.v.copy_from_slice(&self.background.v);
        self.draw_overlays(frame, frame_no, capture_time_us);
    }

    fn draw_overlays(&self, frame: &mut I420Frame, frame_no: u32, capture_time_us: u64) {
        self.draw_box(frame, frame_no);
        self.draw_digits(frame, frame_no);
        self.draw_stamp(
            frame,
            Stamp {
                frame_no,
                capture_time_us,
            },
        );
    }

    /// A white box with a black core sliding left to right over the bars.
    fn draw_box(&self, frame: &mut I420Frame, frame_no: u32) {
        let (w, h) = self.size();
        let body = h - self.stamp_rows;
        let side = (body / 3) & !1;
        if side < 4 || side >= w {
            return;
        }
        let step = (w / 60).max(2);
        let travel = w - side;
        let x0 = ((u64::from(frame_no) * u64::from(step)) % u64::from(travel + 1)) as u32;
        let y0 = (self.stamp_rows + (body * 2 / 3).saturating_sub(side) / 2) & !1;
        let core = side / 4;
        fill_rect(frame, x0, y0, side, side, LUMA_WHITE);
        fill_rect(
            frame,
            x0 + core,
            y0 + core,
            side - 2 * core,
            side - 2 * core,
            LUMA_BLACK,
        );
        fill_chroma(frame, x0, y0, side, side);
    }

    /// Decimal frame number in a 3x5 font, bottom-left, for humans.
    fn draw_digits(&self, frame: &mut I420Frame, frame_no: u32) {
        let (w, h) = self.size();
        let scale = (self.cell / 2).max(2);
        let text = frame_no.to_string();
        let glyph_w = 4 * scale;
        let total_w = glyph_w * text.len() as u32 + scale;
        let total_h = 7 * scale;
        if total_h + self.stamp_rows > h || total_w > w {
            return;
        }
        let y0 = h - total_h;
        fill_rect(frame, 0, y0, total_w, total_h, LUMA_BLACK);
        for (i, ch) in text.bytes().enumerate() {
            let glyph = DIGITS[usize::from(ch.saturating_sub(b'0')).min(9)];
            let gx = scale + i as u32 * glyph_w;
            for row in 0..5 {
                for col in 0..3 {
                    let bit = 14 - (row * 3 + col);
                    if glyph & (1 << bit) != 0 {
                        fill_rect(
                            frame,
                            gx + col * scale,
                            y0 + scale + row * scale,
                            scale,
                            scale,
                            LUMA_WHITE,
                        );
                    }
                }
            }
        }
        fill_chroma(frame, 0, y0, total_w, total_h);
    }

    fn draw_stamp(&self, frame: &mut I420Frame, stamp: Stamp) {
        let Some(l) = layout(frame.width, frame.height) else {
            return;
        };
        let bytes = stamp_bytes(stamp);
        // Clear the whole band (including unused cells of the last row).
        fill_rect(frame, 0, 0, frame.width, l.rows * l.cell, LUMA_BLACK);
        fill_chroma(frame, 0, 0, frame.width, l.rows * l.cell);
        for bit in 0..STAMP_BITS {
            if bytes[(bit / 8) as usize] & (0x80 >> (bit % 8)) != 0 {
                let x0 = (bit % l.cols) * l.cell;
                let y0 = (bit / l.cols) * l.cell;
                fill_rect(frame, x0, y0, l.cell, l.cell, LUMA_WHITE);
            }
        }
    }
}

/// Fills a luma rectangle, clipped to the frame.
fn fill_rect(frame: &mut I420Frame, x0: u32, y0: u32, w: u32, h: u32, value: u8) {
    let x1 = x0.saturating_add(w).min(frame.width) as usize;
    let y1 = y0.saturating_add(h).min(frame.height) as usize;
    let stride = frame.width as usize;
    for y in y0 as usize..y1 {
        if let Some(row) = frame.y.get_mut(y * stride + x0 as usize..y * stride + x1) {
            row.fill(value);
        }
    }
}

/// Sets chroma to neutral over a luma-coordinate rectangle, clipped.
fn fill_chroma(frame: &mut I420Frame, x0: u32, y0: u32, w: u32, h: u32) {
    let cw = frame.chroma_width() as usize;
    let ch = frame.chroma_height() as usize;
    let cx0 = (x0 / 2) as usize;
    let cy0 = (y0 / 2) as usize;
    let cx1 = (x0.saturating_add(w).div_ceil(2) as usize).min(cw);
    let cy1 = (y0.saturating_add(h).div_ceil(2) as usize).min(ch);
    if cx0 >= cx1 {
        return;
    }
    for y in cy0..cy1 {
        let range = y * cw + cx0..y * cw + cx1;
        if let Some(row) = frame.u.get_mut(range.clone()) {
            row.fill(CHROMA_NEUTRAL);
        }
        if let Some(row) = frame.v.get_mut(range) {
            row.fill(CHROMA_NEUTRAL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::profile::VIDEO_PROFILES;

    #[test]
    fn stamp_round_trip_all_profiles() {
        for p in VIDEO_PROFILES {
            let mut pat = TestPattern::new(p.width, p.height);
            for (n, t) in [
                (0u32, 0u64),
                (1, 1_700_000_000_123_456),
                (u32::MAX, u64::MAX),
            ] {
                let f = pat.render(n, t);
                assert!(f.is_consistent());
                assert_eq!(
                    read_stamp(&f),
                    Some(Stamp {
                        frame_no: n,
                        capture_time_us: t
                    }),
                    "profile {}",
                    p.name
                );
            }
        }
    }

    #[test]
    fn render_into_matches_render_and_moves() {
        let mut pat = TestPattern::new(480, 360);
        let a = pat.render(5, 42);
        let mut b = I420Frame::new_black(2, 2);
        pat.render_into(&mut b, 5, 42);
        assert_eq!(a, b);
        let c = pat.render(6, 42);
        let band = stamp_height(480, 360).unwrap_or(0) as usize * 480;
        assert_ne!(
            a.y[band..],
            c.y[band..],
            "content below the stamp must move"
        );
    }

    #[test]
    fn corrupted_stamp_rejected() {
        let mut pat = TestPattern::new(480, 360);
        let mut f = pat.render(1234, 987_654_321);
        assert!(read_stamp(&f).is_some());
        // Flip one data cell (bit 20 lies in frame_no) by inverting its pixels.
        let l = layout(480, 360).expect("fits");
        let bit = 20;
        let (x0, y0) = ((bit % l.cols) * l.cell, (bit / l.cols) * l.cell);
        for y in y0..y0 + l.cell {
            for x in x0..x0 + l.cell {
                let p = &mut f.y[(y * 480 + x) as usize];
                *p = if *p > 128 { LUMA_BLACK } else { LUMA_WHITE };
            }
        }
        assert_eq!(read_stamp(&f), None);
        assert_eq!(read_stamp(&I420Frame::new_black(480, 360)), None);
    }

    #[test]
    fn tiny_frames_do_not_panic() {
        for (w, h) in [(0, 0), (1, 1), (2, 2), (16, 16), (63, 40), (64, 64)] {
            let mut pat = TestPattern::new(w, h);
            let f = pat.render(7, 7);
            assert!(f.is_consistent());
            let _ = read_stamp(&f);
        }
        let mut pat = TestPattern::new(64, 64);
        assert!(read_stamp(&pat.render(7, 7)).is_some());
    }

    #[test]
    fn now_is_after_2020() {
        assert!(now_us() > 1_577_836_800_000_000);
    }
}
