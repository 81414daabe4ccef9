//! The Timeline tab: one stream's received frames as marks on a time axis
//! (x = first packet's arrival, height = size; keyframes, dropped and
//! pending frames in their own colours), gaps in the sequence numbers as red
//! ticks under the axis, freezes as shaded spans; hover names a frame, a
//! click selects it and lists its RTP packets beside the axis. Live it
//! scrolls with the clock; Pause holds it still.

use egui::{Align2, Color32, FontId, Pos2, Rect, Sense, Stroke, StrokeKind, vec2};

use super::Debugger;
use super::timeline::StreamTimeline;
use crate::client::FrameRecord;
use crate::client::PacketRecord;
use crate::client::frame_log::FrameOutcome;

/// A decoded delta frame.
pub const FRAME_COLOR: Color32 = Color32::from_rgb(90, 160, 255);
/// A keyframe.
pub const KEYFRAME_COLOR: Color32 = Color32::from_rgb(255, 170, 0);
/// A frame that was not decoded.
pub const DROPPED_COLOR: Color32 = Color32::from_rgb(230, 60, 60);
/// A frame still on its way to the decoder.
pub const PENDING_COLOR: Color32 = Color32::from_rgb(150, 150, 150);
/// Sequence gaps (ticks under the axis).
const GAP_COLOR: Color32 = Color32::from_rgb(255, 70, 70);
/// Freezes (spans behind the marks).
const FREEZE_FILL: Color32 = Color32::from_rgba_premultiplied(120, 30, 30, 90);

/// Time windows offered, seconds.
const WINDOWS: [(f64, &str); 3] = [(5.0, "5 s"), (15.0, "15 s"), (60.0, "60 s")];
/// Height of the axis drawing at most.
const CANVAS_MAX_HEIGHT: f32 = 280.0;
/// Height kept under the axis for the hovered frame's line.
const HOVER_LINE: f32 = 20.0;
/// Narrower than this, the packet list goes under the axis, not beside it.
const SIDE_BY_SIDE: f32 = 620.0;

/// A mark as drawn in the last pass (tests read them back).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DrawnMark {
    /// The frame's index.
    pub index: u64,
    /// The bar's rectangle on screen.
    pub rect: Rect,
    /// Its fill.
    pub color: Color32,
}

/// What the tab remembers between passes.
#[derive(Debug, Clone)]
pub struct TimelineState {
    /// The stream shown (`None`: the first).
    pub stream: Option<u64>,
    /// Seconds shown.
    pub window_s: f64,
    /// Paused: the right edge (s) held still.
    pub paused_at: Option<f64>,
    /// The selected frame: (stream id, frame index).
    pub selected: Option<(u64, u64)>,
    /// The right edge (s) drawn in the last pass.
    pub drawn_until: Option<f64>,
    /// The marks drawn in the last pass.
    pub drawn: Vec<DrawnMark>,
}

impl Default for TimelineState {
    fn default() -> Self {
        Self {
            stream: None,
            window_s: WINDOWS[0].0,
            paused_at: None,
            selected: None,
            drawn_until: None,
            drawn: Vec::new(),
        }
    }
}

/// Draws the tab.
pub fn show(ui: &mut egui::Ui, dbg: &mut Debugger) {
    let live = dbg.is_live();
    let started = dbg.data.started_unix_ms;
    let timelines = &dbg.data.timeline;
    let state = &mut dbg.panel.timeline;
    let Some(current) = state
        .stream
        .filter(|s| timelines.contains_key(s))
        .or_else(|| timelines.keys().next().copied())
    else {
        state.drawn.clear();
        ui.label("No video frames yet (frames appear once a video stream is received).");
        return;
    };
    let Some(timeline) = timelines.get(&current) else {
        return;
    };
    ui.horizontal_wrapped(|ui| {
        egui::ComboBox::new("timeline-stream", "stream")
            .selected_text(stream_name(current, timeline))
            .width(200.0)
            .show_ui(ui, |ui| {
                for (id, t) in timelines {
                    if ui
                        .selectable_label(*id == current, stream_name(*id, t))
                        .clicked()
                    {
                        state.stream = Some(*id);
                    }
                }
            });
        for (seconds, label) in WINDOWS {
            ui.selectable_value(&mut state.window_s, seconds, label);
        }
        if live {
            let text = if state.paused_at.is_some() {
                "Resume"
            } else {
                "Pause"
            };
            if ui.button(text).clicked() {
                state.paused_at = match state.paused_at {
                    Some(_) => None,
                    None => state.drawn_until,
                };
            }
        }
    });
    legend(ui);
    let hi = state.paused_at.unwrap_or_else(|| {
        let last = timeline
            .frames
            .back()
            .map_or(0.0, |f| timeline.seconds(started, f.first_arrival_us));
        if live {
            // The clock, so a stalled stream shows as empty space.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            (now.saturating_sub(started) as f64 / 1e3).max(last)
        } else {
            last
        }
    });
    let selected = state
        .selected
        .filter(|(s, _)| *s == current)
        .and_then(|(_, i)| timeline.frames.iter().find(|f| f.index == i));
    let width = ui.available_width();
    let height = ui.available_height();
    if selected.is_some() && width >= SIDE_BY_SIDE {
        let side = (width * 0.38).clamp(240.0, 360.0);
        ui.horizontal_top(|ui| {
            // Canvas, spacing, separator, spacing, side: never wider than
            // the panel (a resizable panel would grow to fit, pass by pass).
            let used = side + 2.0 * ui.spacing().item_spacing.x + 16.0;
            let canvas = vec2(width - used, height.min(CANVAS_MAX_HEIGHT) - HOVER_LINE);
            let clicked = ui
                .vertical(|ui| axis(ui, state, timeline, started, hi, canvas))
                .inner;
            ui.separator();
            ui.vertical(|ui| {
                ui.set_max_width(side);
                details(ui, selected, timeline, started, height);
            });
            select(state, current, clicked);
        });
    } else {
        let canvas_h = if selected.is_some() {
            (height * 0.45).min(CANVAS_MAX_HEIGHT)
        } else {
            height.min(CANVAS_MAX_HEIGHT)
        };
        let clicked = axis(
            ui,
            state,
            timeline,
            started,
            hi,
            vec2(width, canvas_h - HOVER_LINE),
        );
        if selected.is_some() {
            ui.separator();
            details(ui, selected, timeline, started, ui.available_height());
        }
        select(state, current, clicked);
    }
}

fn select(state: &mut TimelineState, stream: u64, clicked: Option<Option<u64>>) {
    match clicked {
        Some(Some(index)) => state.selected = Some((stream, index)),
        Some(None) => state.selected = None,
        None => {}
    }
}

fn stream_name(id: u64, t: &StreamTimeline) -> String {
    format!("video #{id} ({})", t.user)
}

fn legend(ui: &mut egui::Ui) {
    ui.horizontal_wrapped(|ui| {
        for (color, text) in [
            (KEYFRAME_COLOR, "keyframe"),
            (FRAME_COLOR, "frame"),
            (DROPPED_COLOR, "dropped"),
            (PENDING_COLOR, "pending"),
            (GAP_COLOR, "seq gap (under the axis)"),
            (FREEZE_FILL, "freeze"),
        ] {
            // Swatches painted, not glyphs: the bundled font has no "■".
            let (rect, _) = ui.allocate_exact_size(vec2(10.0, 10.0), Sense::hover());
            ui.painter().rect_filled(rect, 1.0, color);
            ui.weak(text);
        }
        ui.weak("· height = size");
    });
}

/// Draws the axis and its marks; returns `Some(clicked frame)` when the
/// axis was clicked (`Some(None)`: on no mark).
fn axis(
    ui: &mut egui::Ui,
    state: &mut TimelineState,
    timeline: &StreamTimeline,
    started: u64,
    hi: f64,
    size: egui::Vec2,
) -> Option<Option<u64>> {
    let lo = hi - state.window_s;
    let (response, painter) = ui.allocate_painter(size.max(vec2(120.0, 80.0)), Sense::click());
    let rect = response.rect;
    let visuals = ui.visuals();
    painter.rect_filled(rect, 2.0, visuals.extreme_bg_color);
    let font = FontId::proportional(11.0);
    let plot = Rect::from_min_max(rect.min + vec2(4.0, 14.0), rect.max - vec2(4.0, 18.0));
    let x_of = |t: f64| plot.left() + ((t - lo) / (hi - lo)) as f32 * plot.width();
    // Seconds along the axis.
    let step = if state.window_s <= 5.0 {
        1.0
    } else if state.window_s <= 15.0 {
        2.0
    } else {
        10.0
    };
    let mut tick = (lo / step).ceil() * step;
    while tick <= hi {
        let x = x_of(tick);
        if x > plot.right() - 14.0 {
            break; // its label would be cut by the edge
        }
        painter.line_segment(
            [
                Pos2::new(x, plot.bottom()),
                Pos2::new(x, plot.bottom() + 3.0),
            ],
            Stroke::new(1.0, visuals.weak_text_color()),
        );
        painter.text(
            Pos2::new(x, plot.bottom() + 4.0),
            Align2::CENTER_TOP,
            format!("{tick:.0} s"),
            font.clone(),
            visuals.weak_text_color(),
        );
        tick += step;
    }
    painter.line_segment(
        [plot.left_bottom(), plot.right_bottom()],
        Stroke::new(1.0, visuals.weak_text_color()),
    );
    let visible: Vec<&FrameRecord> = timeline
        .frames
        .iter()
        .filter(|f| {
            let t = timeline.seconds(started, f.first_arrival_us);
            t >= lo && t <= hi
        })
        .collect();
    let max_bytes = visible.iter().map(|f| f.bytes).max().unwrap_or(1).max(1);
    painter.text(
        plot.left_top() - vec2(0.0, 12.0),
        Align2::LEFT_TOP,
        format!("{:.1} KB", max_bytes as f64 / 1e3),
        font.clone(),
        visuals.weak_text_color(),
    );
    // Freezes behind the marks.
    for f in &visible {
        if let (Some(ms), Some(shown)) = (f.freeze_ms, f.shown_us) {
            let end = timeline.seconds(started, shown);
            let (a, b) = (
                x_of(end - ms / 1e3).max(plot.left()),
                x_of(end).min(plot.right()),
            );
            if b > a {
                let span =
                    Rect::from_min_max(Pos2::new(a, plot.top()), Pos2::new(b, plot.bottom()));
                painter.rect_filled(span, 0.0, FREEZE_FILL);
                painter.text(
                    span.center_top(),
                    Align2::CENTER_TOP,
                    format!("freeze {ms:.0} ms"),
                    font.clone(),
                    visuals.text_color(),
                );
            }
        }
    }
    let bar_w = (plot.width() / (visible.len().max(1) as f32) * 0.6).clamp(2.0, 8.0);
    state.drawn.clear();
    let selected = state.selected.map(|(_, i)| i);
    for f in &visible {
        let x = x_of(timeline.seconds(started, f.first_arrival_us));
        let h = (f.bytes as f32 / max_bytes as f32 * plot.height()).max(2.0);
        let bar = Rect::from_min_max(
            Pos2::new(x - bar_w / 2.0, plot.bottom() - h),
            Pos2::new(x + bar_w / 2.0, plot.bottom()),
        );
        let color = mark_color(f);
        painter.rect_filled(bar, 0.0, color);
        if selected == Some(f.index) {
            painter.rect_stroke(
                bar.expand(2.0),
                0.0,
                Stroke::new(1.5, visuals.strong_text_color()),
                StrokeKind::Outside,
            );
        }
        if f.gap_before > 0 || f.missing_inside > 0 {
            // A gap: a red triangle under the axis, before the frame.
            let gx = x - bar_w;
            let y = plot.bottom() + 2.0;
            painter.add(egui::Shape::convex_polygon(
                vec![
                    Pos2::new(gx, y),
                    Pos2::new(gx - 4.0, y + 7.0),
                    Pos2::new(gx + 4.0, y + 7.0),
                ],
                GAP_COLOR,
                Stroke::NONE,
            ));
        }
        state.drawn.push(DrawnMark {
            index: f.index,
            rect: bar,
            color,
        });
    }
    state.drawn_until = Some(hi);
    let under = |pos: Pos2| -> Option<u64> {
        state
            .drawn
            .iter()
            .filter(|m| (m.rect.center().x - pos.x).abs() <= bar_w.max(6.0))
            .min_by(|a, b| {
                let da = (a.rect.center().x - pos.x).abs();
                let db = (b.rect.center().x - pos.x).abs();
                da.total_cmp(&db)
            })
            .map(|m| m.index)
    };
    let hovered = response.hover_pos().and_then(under);
    let clicked = response
        .clicked()
        .then(|| response.interact_pointer_pos().and_then(under));
    // The hovered frame in a line under the axis, not a tooltip: a tooltip
    // near the window's edge can land under the pointer and take the click.
    match hovered.and_then(|i| visible.iter().find(|f| f.index == i)) {
        Some(f) => {
            let bar = state.drawn.iter().find(|m| m.index == f.index);
            if let Some(m) = bar {
                painter.rect_stroke(
                    m.rect.expand(1.0),
                    0.0,
                    Stroke::new(1.0, visuals.text_color()),
                    StrokeKind::Outside,
                );
            }
            ui.label(summary(f));
        }
        None => {
            ui.weak("hover a mark: its frame · click: its RTP packets");
        }
    }
    clicked
}

/// A mark's colour.
pub fn mark_color(f: &FrameRecord) -> Color32 {
    match f.outcome {
        FrameOutcome::Dropped(_) => DROPPED_COLOR,
        _ if f.keyframe => KEYFRAME_COLOR,
        FrameOutcome::Pending => PENDING_COLOR,
        FrameOutcome::Decoded => FRAME_COLOR,
    }
}

/// One line about a frame (hover).
pub fn summary(f: &FrameRecord) -> String {
    let kind = if f.keyframe { "keyframe" } else { "frame" };
    format!(
        "{kind} #{} · {} B in {} packets · {}",
        f.index,
        f.bytes,
        f.packets,
        outcome_text(f)
    )
}

fn outcome_text(f: &FrameRecord) -> String {
    match f.outcome {
        FrameOutcome::Pending => "pending".to_owned(),
        FrameOutcome::Decoded if f.shown_us.is_some() => "decoded, shown".to_owned(),
        FrameOutcome::Decoded => "decoded, no picture".to_owned(),
        FrameOutcome::Dropped(reason) => format!("dropped: {}", reason.describe()),
    }
}

/// The line naming a frame's sequence range (tests look for it).
pub fn seq_range(f: &FrameRecord) -> String {
    let plural = if f.packets == 1 { "" } else { "s" };
    format!(
        "seq {}–{} · {} packet{plural} · {} missing",
        f.first_seq, f.last_seq, f.packets, f.missing_inside
    )
}

/// One packet's row: its seq, size and arrival after the frame's first.
pub fn packet_row(p: &PacketRecord, first_arrival_us: u64) -> String {
    let after = p.arrival_us as f64 / 1e3 - first_arrival_us as f64 / 1e3;
    let marker = if p.marker { "  M" } else { "" };
    format!("{:>5}  {:>5} B  +{after:.3} ms{marker}", p.seq, p.size)
}

fn details(
    ui: &mut egui::Ui,
    frame: Option<&FrameRecord>,
    timeline: &StreamTimeline,
    started: u64,
    height: f32,
) {
    let Some(f) = frame else {
        return;
    };
    let kind = if f.keyframe { "keyframe" } else { "frame" };
    ui.strong(format!("{kind} #{}", f.index));
    let at = timeline.seconds(started, f.first_arrival_us);
    let lines = [
        format!("RTP timestamp {} · at {at:.3} s", f.rtp_timestamp),
        seq_range(f),
        format!(
            "{} B · arrival spread {:.1} ms",
            f.bytes,
            f.spread_us() as f64 / 1e3
        ),
        outcome_text(f),
    ];
    for line in lines {
        ui.add(egui::Label::new(line).wrap());
    }
    if let Some(us) = f.decode_us {
        ui.label(format!("decode {:.2} ms", f64::from(us) / 1e3));
    }
    if let Some(shown) = f.shown_us {
        let after = shown.saturating_sub(f.first_arrival_us) as f64 / 1e3;
        ui.label(format!("shown {after:.1} ms after its first packet"));
    }
    if let Some(ms) = f.freeze_ms {
        ui.label(format!("ended a freeze of {ms:.0} ms"));
    }
    if f.gap_before > 0 {
        ui.label(format!("{} seq missing before it", f.gap_before));
    }
    if f.late_packets > 0 {
        ui.label(format!("{} packets came too late", f.late_packets));
    }
    ui.separator();
    if f.packet_list.is_empty() {
        ui.weak("its packets are no longer kept");
        return;
    }
    ui.label(egui::RichText::new("  seq   size    arrival").monospace());
    let row_height = ui.text_style_height(&egui::TextStyle::Monospace) + 2.0;
    egui::ScrollArea::vertical()
        .id_salt("timeline-packets")
        .max_height((height - 180.0).max(row_height * 4.0))
        .auto_shrink([false, true])
        .show_rows(ui, row_height, f.packet_list.len(), |ui, range| {
            for p in f.packet_list.get(range).unwrap_or_default() {
                ui.label(egui::RichText::new(packet_row(p, f.first_arrival_us)).monospace());
            }
        });
}
