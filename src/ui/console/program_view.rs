//! Draws a program: its streams in its layout (one full, two side by side,
//! a 2×2 grid). The console's big program monitor and the kiosk share it,
//! so the kiosk shows exactly what the console shows on air.

use egui::{Rect, Vec2, vec2};

use crate::client::{Program, ProgramLayout};
use crate::ui::render::ObjectFit;
use crate::ui::session::RoomSession;
use crate::ui::stage::{GAP, TILE_ASPECT};
use crate::ui::widgets::VideoTile;

/// The cells of `layout` in `area`, each the largest 16:9 rect that fits
/// its share, centred in it; one per place of the layout.
pub fn cells(layout: ProgramLayout, area: Rect) -> Vec<Rect> {
    let (cols, rows) = match layout {
        ProgramLayout::Off => return Vec::new(),
        ProgramLayout::Single => (1, 1),
        ProgramLayout::SideBySide => (2, 1),
        ProgramLayout::Quad => (2, 2),
    };
    let cell = vec2(
        (area.width() - GAP * (cols - 1) as f32) / cols as f32,
        (area.height() - GAP * (rows - 1) as f32) / rows as f32,
    );
    let fit = fit_aspect(cell);
    // The block of cells as tight as the tiles, centred in the area.
    let block = vec2(
        fit.x * cols as f32 + GAP * (cols - 1) as f32,
        fit.y * rows as f32 + GAP * (rows - 1) as f32,
    );
    let origin = area.center() - block / 2.0;
    let mut out = Vec::with_capacity(cols * rows);
    for row in 0..rows {
        for col in 0..cols {
            let min = origin + vec2(col as f32 * (fit.x + GAP), row as f32 * (fit.y + GAP));
            out.push(Rect::from_min_size(min, fit));
        }
    }
    out
}

/// The largest 16:9 size inside `space`.
fn fit_aspect(space: Vec2) -> Vec2 {
    let w = space.x.min(space.y * TILE_ASPECT).max(1.0);
    vec2(w, w / TILE_ASPECT)
}

/// Draws `program` into `area`; a stream the session has no tile for (not
/// subscribed yet, or gone) leaves its cell dark. Returns the rect of each
/// drawn stream.
pub fn show(
    ui: &mut egui::Ui,
    session: &RoomSession,
    program: &Program,
    area: Rect,
    fit: ObjectFit,
    pass: u64,
) -> Vec<Rect> {
    let mut drawn = Vec::new();
    for (id, rect) in program.streams.iter().zip(cells(program.layout, area)) {
        ui.painter()
            .rect_filled(rect, 4.0, egui::Color32::from_gray(24));
        if let Some(tile) = session.tiles.get(id) {
            let widget = VideoTile {
                key: id.0.wrapping_add(1),
                slot: tile.info.video.map(|_| tile.stream.video()),
                label: session.name_of(&tile.info.user_id),
                note: None,
                audio_muted: tile.info.audio_muted,
                video_muted: tile.info.video_muted,
                interrupted: tile.interrupted,
                speaking: false,
                net: None,
                fit,
                mirror: false,
                size: rect.size(),
                with_volume: false,
                pass,
            };
            ui.put(rect, widget);
            drawn.push(rect);
        } else if let Some(local) = session.local.as_ref().filter(|l| l.stream_id == Some(*id)) {
            let widget = VideoTile {
                key: crate::ui::stage::LOCAL_KEY,
                slot: Some(&local.slot),
                label: session.my_name(),
                note: Some("you"),
                audio_muted: local.audio_muted,
                video_muted: local.video_muted,
                interrupted: false,
                speaking: false,
                net: None,
                fit,
                mirror: false,
                size: rect.size(),
                with_volume: false,
                pass,
            };
            ui.put(rect, widget);
            drawn.push(rect);
        }
    }
    drawn
}

#[cfg(test)]
mod tests {
    use super::*;
    use egui::pos2;

    #[test]
    fn cells_fit_the_area_and_do_not_overlap() {
        let area = Rect::from_min_size(pos2(10.0, 20.0), vec2(800.0, 450.0));
        for layout in ProgramLayout::ALL {
            let cells = cells(layout, area);
            assert_eq!(cells.len(), layout.capacity(), "{layout:?}");
            for (i, a) in cells.iter().enumerate() {
                assert!(area.expand(0.5).contains_rect(*a), "{layout:?} {a:?}");
                assert!((a.width() / a.height() - TILE_ASPECT).abs() < 0.01);
                for b in &cells[i + 1..] {
                    let o = a.intersect(*b);
                    assert!(!(o.width() > 0.5 && o.height() > 0.5), "{layout:?}");
                }
            }
        }
        // One source fills the width of a 16:9 area.
        assert!((cells(ProgramLayout::Single, area)[0].width() - 800.0).abs() < 0.5);
    }
}
