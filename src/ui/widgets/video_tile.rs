//! One participant's tile: the picture (drawn on the GPU), name, mute marks,
//! speaking highlight and network mark.

use std::sync::Arc;

use egui::{
    Align2, Color32, FontId, Rect, Response, Sense, Stroke, StrokeKind, Ui, Vec2, Widget, vec2,
};

use crate::client::VideoSlot;
use crate::ui::render::{ColorMatrix, ColorRange, ObjectFit, YuvCallback};

use super::NetMark;

const SPEAKING: Color32 = Color32::from_rgb(60, 200, 90);
const BADGE: Color32 = Color32::from_rgb(200, 50, 50);

/// A tile, built from plain data each frame.
pub struct VideoTile<'a> {
    /// Stable id of the tile (keys its GPU textures).
    pub key: u64,
    /// The picture, if the stream has video and the GPU path is up.
    pub slot: Option<&'a Arc<VideoSlot>>,
    /// Name under the picture.
    pub label: &'a str,
    /// Extra line after the name (e.g. "you").
    pub note: Option<&'a str>,
    /// Microphone muted.
    pub audio_muted: bool,
    /// Camera muted.
    pub video_muted: bool,
    /// The video stopped arriving (stream state detection), though not muted.
    pub interrupted: bool,
    /// Audio level above the speaking threshold.
    pub speaking: bool,
    /// Network figures (remote tiles).
    pub net: Option<NetMark>,
    /// Object fit.
    pub fit: ObjectFit,
    /// Mirror horizontally.
    pub mirror: bool,
    /// Size to take.
    pub size: Vec2,
    /// Leave the bottom-right corner free for a volume slider.
    pub with_volume: bool,
    /// egui pass number (frees textures of tiles gone).
    pub pass: u64,
}

/// Where a tile's overlays go: each in its own region, none overlapping,
/// all inside the tile (issue 16 §2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TileOverlays {
    /// Name and mute badges (elided to fit).
    pub name: Rect,
    /// The volume slider, when the tile has one and is wide enough.
    pub volume: Option<Rect>,
    /// Network mark (top right).
    pub net: Rect,
    /// "video interrupted" (top left).
    pub interrupted: Rect,
}

/// Margin between overlays and the tile's edge.
const MARGIN: f32 = 6.0;
/// Height of the bottom row (name, slider).
const ROW: f32 = 22.0;
/// Narrowest tile that still gets a volume slider.
const MIN_VOLUME_TILE: f32 = 150.0;

impl TileOverlays {
    /// The regions for a tile at `tile`, with room for a volume slider if asked.
    pub fn layout(tile: Rect, with_volume: bool) -> Self {
        let bottom = tile.bottom() - MARGIN;
        let volume = (with_volume && tile.width() >= MIN_VOLUME_TILE).then(|| {
            let w = (tile.width() * 0.3).clamp(56.0, 120.0);
            Rect::from_min_max(
                egui::pos2(tile.right() - MARGIN - w, bottom - ROW),
                egui::pos2(tile.right() - MARGIN, bottom),
            )
        });
        let name_right = volume.map_or(tile.right() - MARGIN, |v| v.left() - MARGIN);
        let name = Rect::from_min_max(
            egui::pos2(tile.left() + MARGIN, bottom - ROW),
            egui::pos2(name_right.max(tile.left() + MARGIN), bottom),
        );
        let half = tile.width() / 2.0;
        let top = tile.top() + MARGIN;
        let net = Rect::from_min_max(
            egui::pos2(tile.center().x + MARGIN / 2.0, top),
            egui::pos2(tile.right() - MARGIN, top + 18.0),
        );
        let interrupted = Rect::from_min_max(
            egui::pos2(tile.left() + MARGIN, top),
            egui::pos2(tile.left() + half - MARGIN / 2.0, top + 18.0),
        );
        Self {
            name,
            volume,
            net,
            interrupted,
        }
    }
}

/// Text laid out on one line, cut with "…" at `width`.
fn elided(painter: &egui::Painter, text: String, size: f32, width: f32) -> Arc<egui::Galley> {
    let mut job =
        egui::text::LayoutJob::simple_singleline(text, FontId::proportional(size), Color32::WHITE);
    job.wrap = egui::text::TextWrapping::truncate_at_width(width.max(1.0));
    painter.layout_job(job)
}

impl Widget for VideoTile<'_> {
    fn ui(self, ui: &mut Ui) -> Response {
        let (rect, response) = ui.allocate_exact_size(self.size, Sense::click());
        let label = self.label.to_owned();
        response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Figure, true, &label));
        if !ui.is_rect_visible(rect) {
            return response;
        }
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 6.0, Color32::from_gray(24));
        let has_frame = self.slot.is_some_and(|s| s.generation() > 0);
        match self.slot {
            // A stopped camera shows a placeholder, never a dimmed picture.
            Some(slot) if has_frame && !self.video_muted => {
                painter.add(egui_wgpu::Callback::new_paint_callback(
                    rect,
                    YuvCallback {
                        key: self.key,
                        slot: Arc::clone(slot),
                        tile_size: [rect.width(), rect.height()],
                        fit: self.fit,
                        mirror: self.mirror,
                        dim: false,
                        matrix: ColorMatrix::Bt601,
                        range: ColorRange::Limited,
                        pass: self.pass,
                    },
                ));
            }
            _ if self.video_muted || self.slot.is_none() => {
                paint_placeholder(&painter, rect, self.label, self.video_muted);
            }
            _ => {
                painter.text(
                    rect.center(),
                    Align2::CENTER_CENTER,
                    "waiting for video…",
                    FontId::proportional(16.0),
                    Color32::from_gray(160),
                );
            }
        }
        let overlays = TileOverlays::layout(rect, self.with_volume);
        if self.interrupted && !self.video_muted {
            paint_interrupted(&painter, overlays.interrupted);
        }
        self.paint_label(&painter, overlays.name);
        if let Some(net) = self.net {
            paint_net(&painter, overlays.net, net);
        }
        let stroke = if self.speaking && !self.audio_muted {
            Stroke::new(3.0, SPEAKING)
        } else {
            Stroke::new(1.0, Color32::from_gray(60))
        };
        painter.rect_stroke(rect, 6.0, stroke, StrokeKind::Inside);
        response
    }
}

/// Camera off (or no video at all): the person's initial in a circle.
fn paint_placeholder(painter: &egui::Painter, rect: Rect, name: &str, camera_off: bool) {
    let initial: String = name
        .chars()
        .find(|c| c.is_alphanumeric())
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    let radius = (rect.height() * 0.22).clamp(8.0, 64.0);
    let centre = rect.center() - vec2(0.0, radius * 0.3);
    painter.circle_filled(centre, radius, Color32::from_rgb(70, 90, 140));
    painter.text(
        centre,
        Align2::CENTER_CENTER,
        initial,
        FontId::proportional(radius),
        Color32::WHITE,
    );
    let text = if camera_off { "camera off" } else { "no video" };
    if rect.height() > 4.0 * radius {
        painter.text(
            centre + vec2(0.0, radius + 12.0),
            Align2::CENTER_CENTER,
            text,
            FontId::proportional(13.0),
            Color32::from_gray(170),
        );
    }
}

impl VideoTile<'_> {
    /// Name and mute badges in `area`, the name cut with "…" so the badges
    /// and the area's edges are never crossed.
    fn paint_label(&self, painter: &egui::Painter, area: Rect) {
        let mut text = self.label.to_owned();
        if let Some(note) = self.note {
            text.push_str(" · ");
            text.push_str(note);
        }
        let badges: Vec<_> = [(self.audio_muted, "MIC OFF"), (self.video_muted, "CAM OFF")]
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, badge)| {
                painter.layout_no_wrap(badge.into(), FontId::proportional(11.0), Color32::WHITE)
            })
            .collect();
        let badges_w: f32 = badges.iter().map(|g| g.size().x + 8.0 + 4.0).sum();
        // Badges first: a narrow tile shows them and a shorter name.
        let badges_w = if badges_w + 24.0 > area.width() {
            0.0
        } else {
            badges_w
        };
        let name = elided(painter, text, 14.0, area.width() - 8.0 - badges_w);
        let pos = egui::pos2(area.left() + 4.0, area.center().y - name.size().y / 2.0);
        let bg =
            Rect::from_min_size(pos - vec2(4.0, 2.0), name.size() + vec2(8.0, 4.0)).intersect(area);
        painter.rect_filled(bg, 4.0, Color32::from_black_alpha(160));
        painter.galley(pos, name, Color32::WHITE);
        if badges_w == 0.0 {
            return;
        }
        let mut x = bg.right() + 4.0;
        for g in badges {
            let r = Rect::from_min_size(
                egui::pos2(x, area.center().y - g.size().y / 2.0 - 2.0),
                g.size() + vec2(8.0, 4.0),
            );
            painter.rect_filled(r, 4.0, BADGE);
            painter.galley(r.min + vec2(4.0, 2.0), g, Color32::WHITE);
            x = r.right() + 4.0;
        }
    }
}

/// "video interrupted" across the top of the tile, over the frozen picture.
fn paint_interrupted(painter: &egui::Painter, area: Rect) {
    let galley = elided(
        painter,
        "video interrupted".into(),
        13.0,
        area.width() - 8.0,
    );
    let pos = area.min;
    let bg = Rect::from_min_size(pos, galley.size() + vec2(8.0, 4.0));
    painter.rect_filled(bg, 4.0, BADGE);
    painter.galley(pos + vec2(4.0, 2.0), galley, Color32::WHITE);
}

fn paint_net(painter: &egui::Painter, area: Rect, net: NetMark) {
    let bars = net.bars();
    let colour = match bars {
        3 => SPEAKING,
        2 => Color32::from_rgb(230, 180, 40),
        _ => BADGE,
    };
    let bars_w = 3.0 * 5.0;
    let room = area.width() - bars_w - 14.0;
    let full = net.text();
    // A narrow tile keeps the bars and the frame rate (or the level), not
    // half a sentence.
    let text = if painter
        .layout_no_wrap(full.clone(), FontId::proportional(11.0), Color32::WHITE)
        .size()
        .x
        > room
    {
        match (net.fps, net.quality_label()) {
            (Some(fps), _) => format!("{fps:.0} fps"),
            (None, Some(label)) => format!("net {label}"),
            (None, None) => String::new(),
        }
    } else {
        full
    };
    let galley = elided(painter, text, 11.0, room);
    let right_top = area.right_top();
    let bg = Rect::from_min_max(
        egui::pos2(right_top.x - galley.size().x - bars_w - 14.0, right_top.y),
        egui::pos2(right_top.x, right_top.y + galley.size().y + 4.0),
    );
    painter.rect_filled(bg, 4.0, Color32::from_black_alpha(160));
    for i in 0..3u8 {
        let h = 4.0 + 3.0 * f32::from(i);
        let x = bg.min.x + 4.0 + f32::from(i) * 5.0;
        let bar = Rect::from_min_max(
            egui::pos2(x, bg.max.y - 2.0 - h),
            egui::pos2(x + 3.0, bg.max.y - 2.0),
        );
        let c = if i < bars {
            colour
        } else {
            Color32::from_gray(80)
        };
        painter.rect_filled(bar, 0.0, c);
    }
    painter.galley(
        egui::pos2(bg.min.x + bars_w + 8.0, bg.min.y + 2.0),
        galley,
        Color32::WHITE,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts a tile paints, laid out headless.
    fn texts(interrupted: bool, video_muted: bool) -> Vec<String> {
        let ctx = egui::Context::default();
        let mut output = ctx.run_ui(egui::RawInput::default(), |ui| {
            ui.add(VideoTile {
                key: 1,
                slot: None,
                label: "bob",
                note: None,
                audio_muted: false,
                video_muted,
                interrupted,
                speaking: false,
                net: None,
                fit: ObjectFit::Contain,
                mirror: false,
                size: vec2(320.0, 180.0),
                with_volume: false,
                pass: 0,
            });
        });
        // Nothing uploads the font atlas here.
        output.textures_delta.clear();
        output
            .shapes
            .iter()
            .filter_map(|clipped| match &clipped.shape {
                egui::Shape::Text(text) => Some(text.galley.text().to_owned()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn overlays_stay_inside_the_tile_and_apart() {
        for w in [120.0, 160.0, 250.0, 420.0, 1280.0] {
            let tile = Rect::from_min_size(egui::pos2(10.0, 20.0), vec2(w, w * 9.0 / 16.0));
            let o = TileOverlays::layout(tile, true);
            let mut all = vec![o.name, o.net, o.interrupted];
            all.extend(o.volume);
            for (i, a) in all.iter().enumerate() {
                assert!(tile.contains_rect(*a), "w={w}: {a:?} outside {tile:?}");
                for b in &all[i + 1..] {
                    assert!(!a.intersects(*b), "w={w}: {a:?} overlaps {b:?}");
                }
            }
        }
    }

    #[test]
    fn an_interrupted_tile_says_so_unless_its_camera_is_off() {
        assert!(texts(true, false).iter().any(|t| t == "video interrupted"));
        assert!(!texts(false, false).iter().any(|t| t == "video interrupted"));
        assert!(
            !texts(true, true).iter().any(|t| t == "video interrupted"),
            "a muted camera is not interrupted"
        );
    }
}
