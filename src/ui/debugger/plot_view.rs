//! The Plots tab's small plots, drawn by hand and kept between passes
//! (issue 14 §4: the debugger open must cost at most +20 % over the app).
//!
//! The app repaints at the video's rate (up to ~30 passes a second) while a
//! series changes once a second. So each plot's geometry (outline, grid,
//! the line decimated to its pixel width) is tessellated once into a mesh
//! when its data or its place changes, and every other pass only hands the
//! same `Arc<Mesh>` back to egui. egui_plot, used before, rebuilt the point
//! vector, the fading grid at several levels, both axes' widgets and the
//! line's feathering every pass, for each of up to 16 plots.
//!
//! Each plot is outlined, not filled: lavapipe's cost per pass grows with
//! the pixels covered, and the panel's own background is already there.
//!
//! Invariants: a cached mesh is used only with the exact key it was built
//! for (rect, window, newest sample, pixels per point, theme); a line has at
//! most two points per pixel column (the min and max of the samples in it),
//! so a 15-minute window costs what a 1-minute one does. Text is laid out
//! each pass through egui's galley cache (a font atlas change re-lays it).

use std::collections::HashMap;
use std::sync::Arc;

use egui::epaint::{Mesh, PathShape, RectShape, Tessellator};
use egui::{Align2, Color32, CornerRadius, FontId, Pos2, Rect, Sense, Shape, Stroke, pos2, vec2};

use super::history::{Metric, Ring};

/// The series' line.
pub const LINE_COLOR: Color32 = Color32::from_rgb(230, 110, 90);
/// Room kept left of the plot for the y labels.
const Y_LABELS: f32 = 36.0;
/// Room kept under the plot for the x labels.
const X_LABELS: f32 = 14.0;

/// What a mesh was built for; a change of any of it rebuilds the mesh.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Key {
    rect: Rect,
    lo: f64,
    hi: f64,
    points: usize,
    pixels_per_point: f32,
    dark: bool,
}

/// One plot's geometry, and the labels that go with it.
struct Built {
    key: Key,
    mesh: Arc<Mesh>,
    /// Where the data area is (the labels and the hover line use it).
    area: Rect,
    /// Top of the y axis (the bottom is `y_min`).
    y_max: f64,
    y_min: f64,
}

/// The plots' cache, kept in the panel's state.
#[derive(Default)]
pub struct PlotCache {
    built: HashMap<(String, Metric), Built>,
    /// Meshes built since the cache was made (tests read that a pass with
    /// nothing new builds nothing).
    pub rebuilds: u64,
}

impl std::fmt::Debug for PlotCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlotCache")
            .field("plots", &self.built.len())
            .field("rebuilds", &self.rebuilds)
            .finish()
    }
}

impl Clone for PlotCache {
    /// A clone starts empty: meshes are rebuilt on its first pass.
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl PlotCache {
    /// Draws `ring` (of `metric` in `scope`) between `lo` and `hi` seconds in
    /// a plot `height` points high, as wide as `ui` allows.
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        scope: &str,
        metric: Metric,
        ring: &Ring,
        (lo, hi): (f64, f64),
        height: f32,
    ) {
        let size = vec2(ui.available_width().max(80.0), height);
        let (rect, response) = ui.allocate_exact_size(size, Sense::hover());
        if !ui.is_rect_visible(rect) {
            return; // scrolled away: neither built nor drawn
        }
        let key = Key {
            rect,
            lo,
            hi,
            points: ring.points().len(),
            pixels_per_point: ui.ctx().pixels_per_point(),
            dark: ui.visuals().dark_mode,
        };
        let slot = (scope.to_owned(), metric);
        let built = match self.built.get(&slot) {
            Some(b) if b.key == key => b,
            _ => {
                self.rebuilds += 1;
                let b = build(ui, key, ring);
                self.built.insert(slot.clone(), b);
                match self.built.get(&slot) {
                    Some(b) => b,
                    None => return,
                }
            }
        };
        let painter = ui.painter();
        painter.add(Shape::Mesh(built.mesh.clone()));
        labels(ui, built);
        if let Some(pos) = response.hover_pos() {
            hover(ui, built, ring, pos);
        }
    }

    /// Forgets plots not drawn in a while (another scope was chosen).
    pub fn retain_scope(&mut self, scope: &str) {
        self.built.retain(|(s, _), _| s == scope);
    }
}

/// Seconds between the x axis' ticks for a window.
fn tick_step(window_s: f64) -> f64 {
    if window_s <= 60.0 {
        10.0
    } else if window_s <= 300.0 {
        60.0
    } else {
        180.0
    }
}

fn build(ui: &egui::Ui, key: Key, ring: &Ring) -> Built {
    let visuals = ui.visuals();
    let rect = key.rect;
    let area = Rect::from_min_max(
        pos2(rect.left() + Y_LABELS, rect.top() + 4.0),
        pos2(rect.right() - 4.0, rect.bottom() - X_LABELS),
    );
    let (lo, hi) = (key.lo, key.hi.max(key.lo + 1.0));
    let in_window = ring.points().iter().filter(|p| p[0] >= lo && p[0] <= hi);
    let (mut y_min, mut y_max) = (0.0f64, 0.0f64);
    for p in in_window.clone() {
        y_min = y_min.min(p[1]);
        y_max = y_max.max(p[1]);
    }
    if y_max - y_min < 1e-9 {
        y_max = y_min + 1.0;
    }
    let y_max = y_max * 1.05;
    let x_of = |t: f64| area.left() + ((t - lo) / (hi - lo)) as f32 * area.width();
    let y_of = |v: f64| area.bottom() - ((v - y_min) / (y_max - y_min)) as f32 * area.height();
    // An outline, not a filled background: on a software renderer every
    // pixel filled each pass costs, and a dozen plot backgrounds would
    // cover a quarter of the window a second time.
    let grid = Stroke::new(1.0, visuals.widgets.noninteractive.bg_stroke.color);
    let mut shapes = vec![Shape::Rect(RectShape::stroke(
        area,
        CornerRadius::ZERO,
        grid,
        egui::StrokeKind::Inside,
    ))];
    // A faint grid: the middle and top of the y axis, the x ticks.
    for v in [y_min + (y_max - y_min) / 2.0, y_max / 1.05] {
        let y = y_of(v);
        shapes.push(Shape::line_segment(
            [pos2(area.left(), y), pos2(area.right(), y)],
            grid,
        ));
    }
    let step = tick_step(hi - lo);
    let mut tick = (lo / step).ceil() * step;
    while tick <= hi {
        let x = x_of(tick);
        shapes.push(Shape::line_segment(
            [pos2(x, area.top()), pos2(x, area.bottom())],
            grid,
        ));
        tick += step;
    }
    let axis = Stroke::new(1.0, visuals.weak_text_color());
    shapes.push(Shape::line_segment(
        [area.left_bottom(), area.right_bottom()],
        axis,
    ));
    let line = decimate(in_window, area.width() as usize, x_of, y_of);
    if line.len() >= 2 {
        shapes.push(Shape::Path(PathShape::line(
            line,
            Stroke::new(1.5, LINE_COLOR),
        )));
    } else if let Some(p) = line.first() {
        shapes.push(Shape::circle_filled(*p, 1.5, LINE_COLOR));
    }
    let mut options = ui.ctx().tessellation_options(|o| *o);
    // No anti-aliasing fringe: a fringe triples a line's triangles, and a
    // software rasterizer pays for each one every pass.
    options.feathering = false;
    // Untextured shapes only: no font atlas size or discs needed.
    let mut tessellator = Tessellator::new(key.pixels_per_point, options, [1, 1], Vec::new());
    let mut mesh = Mesh::default();
    for shape in shapes {
        tessellator.tessellate_shape(shape, &mut mesh);
    }
    Built {
        key,
        mesh: Arc::new(mesh),
        area,
        y_max,
        y_min,
    }
}

/// The line through `points` (time order), at most two points per pixel
/// column of `columns`: each column's lowest and highest value, in the
/// order they came, so spikes stay visible however many samples share it.
fn decimate<'a>(
    points: impl Iterator<Item = &'a [f64; 2]>,
    columns: usize,
    x_of: impl Fn(f64) -> f32,
    y_of: impl Fn(f64) -> f32,
) -> Vec<Pos2> {
    let mut out: Vec<Pos2> = Vec::with_capacity(2 * columns.max(1));
    // The column being filled: its x, and its min and max as (order, value).
    let mut column: Option<(i64, [f64; 2], [f64; 2])> = None;
    let flush = |out: &mut Vec<Pos2>, (_, a, b): (i64, [f64; 2], [f64; 2])| {
        let (first, second) = if a[0] <= b[0] { (a, b) } else { (b, a) };
        out.push(pos2(x_of(first[0]), y_of(first[1])));
        if second != first {
            out.push(pos2(x_of(second[0]), y_of(second[1])));
        }
    };
    for p in points {
        let col = x_of(p[0]).floor() as i64;
        column = match column {
            Some((c, min, max)) if c == col => Some((
                c,
                if p[1] < min[1] { *p } else { min },
                if p[1] > max[1] { *p } else { max },
            )),
            other => {
                if let Some(done) = other {
                    flush(&mut out, done);
                }
                Some((col, *p, *p))
            }
        };
    }
    if let Some(done) = column {
        flush(&mut out, done);
    }
    out
}

/// The axes' numbers: the y axis' top and bottom, the x ticks.
fn labels(ui: &egui::Ui, built: &Built) {
    let painter = ui.painter();
    let color = ui.visuals().weak_text_color();
    let font = FontId::proportional(10.0);
    let area = built.area;
    for (v, y) in [(built.y_max, area.top()), (built.y_min, area.bottom())] {
        painter.text(
            pos2(area.left() - 3.0, y),
            Align2::RIGHT_CENTER,
            number(v),
            font.clone(),
            color,
        );
    }
    let (lo, hi) = (built.key.lo, built.key.hi.max(built.key.lo + 1.0));
    let step = tick_step(hi - lo);
    let mut tick = (lo / step).ceil() * step;
    while tick <= hi {
        let x = area.left() + ((tick - lo) / (hi - lo)) as f32 * area.width();
        if x <= area.right() - 12.0 {
            painter.text(
                pos2(x, area.bottom() + 1.0),
                Align2::CENTER_TOP,
                format!("{tick:.0} s"),
                font.clone(),
                color,
            );
        }
        tick += step;
    }
}

/// A value as the y axis shows it.
fn number(v: f64) -> String {
    if v.abs() >= 100.0 || v == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The sample nearest the pointer: a vertical line and its value.
fn hover(ui: &egui::Ui, built: &Built, ring: &Ring, pos: Pos2) {
    let area = built.area;
    if !area.contains(pos) {
        return;
    }
    let (lo, hi) = (built.key.lo, built.key.hi.max(built.key.lo + 1.0));
    let t = lo + f64::from((pos.x - area.left()) / area.width()) * (hi - lo);
    let nearest = ring
        .points()
        .iter()
        .filter(|p| p[0] >= lo && p[0] <= hi)
        .min_by(|a, b| (a[0] - t).abs().total_cmp(&(b[0] - t).abs()));
    let Some(p) = nearest else {
        return;
    };
    let painter = ui.painter();
    let x = area.left() + ((p[0] - lo) / (hi - lo)) as f32 * area.width();
    painter.line_segment(
        [pos2(x, area.top()), pos2(x, area.bottom())],
        Stroke::new(1.0, ui.visuals().text_color()),
    );
    let align = if x > area.center().x {
        Align2::RIGHT_TOP
    } else {
        Align2::LEFT_TOP
    };
    painter.text(
        pos2(x, area.top()),
        align,
        format!(" {:.0} s: {} ", p[0], number(p[1])),
        FontId::proportional(11.0),
        ui.visuals().strong_text_color(),
    );
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn a_long_series_keeps_two_points_per_column_and_its_spikes() {
        // 900 samples over a 100-column plot, one spike in the middle.
        let points: Vec<[f64; 2]> = (0..900)
            .map(|i| [i as f64, if i == 450 { 50.0 } else { 1.0 }])
            .collect();
        let x_of = |t: f64| (t / 9.0) as f32;
        let y_of = |v: f64| -(v as f32);
        let line = decimate(points.iter(), 100, x_of, y_of);
        assert!(line.len() <= 200, "{} points", line.len());
        assert!(line.iter().any(|p| p.y == -50.0), "the spike is kept");
        assert!(line.windows(2).all(|w| w[0].x <= w[1].x), "in time order");
    }

    #[test]
    fn a_short_series_is_drawn_point_for_point() {
        let points: Vec<[f64; 2]> = (0..10).map(|i| [i as f64, i as f64]).collect();
        let line = decimate(points.iter(), 300, |t| t as f32 * 30.0, |v| v as f32);
        assert_eq!(line.len(), 10);
    }
}
