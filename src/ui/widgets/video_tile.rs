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
    /// egui pass number (frees textures of tiles gone).
    pub pass: u64,
}

impl Widget for VideoTile<'_> {
    fn ui(self, ui: &mut Ui) -> Response {
        let (rect, response) = ui.allocate_exact_size(self.size, Sense::click());
        if !ui.is_rect_visible(rect) {
            return response;
        }
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 6.0, Color32::from_gray(24));
        let has_frame = self.slot.is_some_and(|s| s.generation() > 0);
        match self.slot {
            Some(slot) if has_frame => {
                painter.add(egui_wgpu::Callback::new_paint_callback(
                    rect,
                    YuvCallback {
                        key: self.key,
                        slot: Arc::clone(slot),
                        tile_size: [rect.width(), rect.height()],
                        fit: self.fit,
                        mirror: self.mirror,
                        dim: self.video_muted,
                        matrix: ColorMatrix::Bt601,
                        range: ColorRange::Limited,
                        pass: self.pass,
                    },
                ));
            }
            _ => {
                let text = if self.video_muted || self.slot.is_none() {
                    "no video"
                } else {
                    "waiting for video…"
                };
                painter.text(
                    rect.center(),
                    Align2::CENTER_CENTER,
                    text,
                    FontId::proportional(16.0),
                    Color32::from_gray(160),
                );
            }
        }
        if self.video_muted && has_frame {
            painter.text(
                rect.center(),
                Align2::CENTER_CENTER,
                "camera off",
                FontId::proportional(18.0),
                Color32::WHITE,
            );
        }
        if self.interrupted && !self.video_muted {
            paint_interrupted(&painter, rect);
        }
        self.paint_label(&painter, rect);
        if let Some(net) = self.net {
            paint_net(&painter, rect, net);
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

impl VideoTile<'_> {
    /// Name and mute badges, centred along the bottom edge: the corners hold
    /// the volume slider and, in the test pattern, the frame counter.
    fn paint_label(&self, painter: &egui::Painter, rect: Rect) {
        let mut text = self.label.to_owned();
        if let Some(note) = self.note {
            text.push_str(" · ");
            text.push_str(note);
        }
        let name = painter.layout_no_wrap(text, FontId::proportional(14.0), Color32::WHITE);
        let badges: Vec<_> = [(self.audio_muted, "MIC OFF"), (self.video_muted, "CAM OFF")]
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, badge)| {
                painter.layout_no_wrap(badge.into(), FontId::proportional(11.0), Color32::WHITE)
            })
            .collect();
        let width = name.size().x
            + 8.0
            + badges.iter().map(|g| g.size().x + 8.0 + 4.0).sum::<f32>()
            + if badges.is_empty() { 0.0 } else { 2.0 };
        let pos = egui::pos2(
            (rect.center().x - width / 2.0).max(rect.left() + 4.0) + 4.0,
            rect.bottom() - 8.0 - name.size().y,
        );
        let bg = Rect::from_min_size(pos - vec2(4.0, 2.0), name.size() + vec2(8.0, 4.0));
        painter.rect_filled(bg, 4.0, Color32::from_black_alpha(160));
        painter.galley(pos, name, Color32::WHITE);
        let mut x = bg.right() + 6.0;
        for g in badges {
            let r = Rect::from_min_size(
                egui::pos2(x, bg.center().y - g.size().y / 2.0 - 2.0),
                g.size() + vec2(8.0, 4.0),
            );
            painter.rect_filled(r, 4.0, BADGE);
            painter.galley(r.min + vec2(4.0, 2.0), g, Color32::WHITE);
            x = r.right() + 4.0;
        }
    }
}

/// "video interrupted" across the top of the tile, over the frozen picture.
fn paint_interrupted(painter: &egui::Painter, rect: Rect) {
    let galley = painter.layout_no_wrap(
        "video interrupted".into(),
        FontId::proportional(13.0),
        Color32::WHITE,
    );
    let pos = egui::pos2(rect.left() + 8.0, rect.top() + 8.0);
    let bg = Rect::from_min_size(pos, galley.size() + vec2(8.0, 4.0));
    painter.rect_filled(bg, 4.0, BADGE);
    painter.galley(pos + vec2(4.0, 2.0), galley, Color32::WHITE);
}

fn paint_net(painter: &egui::Painter, rect: Rect, net: NetMark) {
    let bars = net.bars();
    let colour = match bars {
        3 => SPEAKING,
        2 => Color32::from_rgb(230, 180, 40),
        _ => BADGE,
    };
    let text = net.text();
    let galley = painter.layout_no_wrap(text, FontId::proportional(11.0), Color32::WHITE);
    let right_top = rect.right_top() + vec2(-8.0, 8.0);
    let bars_w = 3.0 * 5.0;
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
    fn an_interrupted_tile_says_so_unless_its_camera_is_off() {
        assert!(texts(true, false).iter().any(|t| t == "video interrupted"));
        assert!(!texts(false, false).iter().any(|t| t == "video interrupted"));
        assert!(
            !texts(true, true).iter().any(|t| t == "video interrupted"),
            "a muted camera is not interrupted"
        );
    }
}
