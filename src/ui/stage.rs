//! The stage: where tiles go. Grid (balanced, last row centred) or active
//! speaker (the pinned tile, else whoever speaks loudest, large; the rest in
//! a filmstrip below). Clicking a tile pins it (spotlight); the self view can
//! float as a movable thumbnail instead of taking a grid cell.

use egui::{Rect, Vec2, vec2};

use crate::client::StreamId;

use super::audio_tap::AudioTap;
use super::render::ObjectFit;
use super::session::{Phase, RoomSession};
use super::widgets::{NetMark, TileOverlays, VideoTile, grid_layout};

/// Space between tiles, points.
pub const GAP: f32 = 8.0;
/// Tile aspect the layouts aim for.
pub const TILE_ASPECT: f32 = 16.0 / 9.0;
/// Key of the local tile (remote tiles use the stream id + 1; also their
/// GPU textures' key).
pub const LOCAL_KEY: u64 = 0;
/// Size of the floating self view.
const THUMBNAIL: Vec2 = vec2(224.0, 126.0);

/// How the stage arranges tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// Everyone equal.
    #[default]
    Grid,
    /// One large (pinned or speaking), the rest in a filmstrip.
    Speaker,
}

impl Layout {
    /// Name on the toolbar.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Grid => "Grid",
            Layout::Speaker => "Speaker",
        }
    }

    /// The other one.
    pub fn toggled(self) -> Self {
        match self {
            Layout::Grid => Layout::Speaker,
            Layout::Speaker => Layout::Grid,
        }
    }
}

/// Stage state that outlives a pass.
#[derive(Debug, Clone, Default)]
pub struct StageState {
    /// Chosen layout.
    pub layout: Layout,
    /// Pinned tile key (spotlight): shown large whatever the layout.
    pub pinned: Option<u64>,
    /// The self view floats as a thumbnail instead of taking a cell.
    pub self_thumbnail: bool,
    /// The last main tile of the speaker layout (kept through silences).
    last_main: Option<u64>,
    /// Kiosk: the room's program as shown, one cut behind (`console`).
    pub program: super::console::ProgramFollower,
}

/// One tile to draw, from plain data.
struct StageTile<'a> {
    key: u64,
    user: &'a str,
    tile: VideoTile<'a>,
    audio: Option<(StreamId, &'a AudioTap)>,
}

/// What the stage needs from the room view's options.
pub struct StageOptions {
    /// Object fit.
    pub fit: ObjectFit,
    /// Mirror the self view.
    pub mirror_local: bool,
    /// Kiosk: no self tile, no sliders, no pinning.
    pub kiosk: bool,
    /// Why the last join failed, shown while joining again.
    pub retry_note: Option<String>,
}

/// Draws the stage into the remaining space.
pub fn show(
    ui: &mut egui::Ui,
    session: &RoomSession,
    options: &StageOptions,
    state: &mut StageState,
    pass: u64,
) {
    if options.kiosk
        && super::console::kiosk::show(ui, session, &mut state.program, options.fit, pass)
    {
        return;
    }
    let area = ui.available_rect_before_wrap();
    let mut tiles = collect(session, options, pass);
    // The self view floats when asked (and when there is anyone else).
    let floating = if state.self_thumbnail && tiles.len() > 1 {
        tiles
            .iter()
            .position(|t| t.key == LOCAL_KEY)
            .map(|i| tiles.remove(i))
    } else {
        None
    };
    if tiles.is_empty() && floating.is_none() {
        let text = match &session.phase {
            Phase::Joined => "Waiting for someone to publish…".to_owned(),
            Phase::Joining => match &options.retry_note {
                Some(problem) => format!("{problem} Trying again…"),
                None => "Joining…".to_owned(),
            },
            // A kiosk a director removed stays out (`app::kiosk_logic`).
            Phase::Disconnected(e)
                if session.program.banned == Some(crate::client::LeaveReason::UserRemoved) =>
            {
                e.clone()
            }
            Phase::Failed(e) | Phase::Disconnected(e) => format!("{e} Reconnecting…"),
        };
        ui.centered_and_justified(|ui| ui.add(egui::Label::new(text).wrap()));
        return;
    }
    if state
        .pinned
        .is_some_and(|p| !tiles.iter().any(|t| t.key == p))
    {
        state.pinned = None; // the pinned one left
    }
    let share = super::screen_share::main_share(session);
    let main = match (state.pinned, state.layout) {
        (Some(p), _) => Some(p),
        // A shared screen takes the large tile (`screen_share.rs`).
        (None, _) if share.is_some() => share,
        (None, Layout::Grid) => None,
        (None, Layout::Speaker) => {
            let speaker = session
                .speaking
                .loudest()
                .and_then(|u| tiles.iter().find(|t| t.user == u && t.key != LOCAL_KEY))
                .map(|t| t.key);
            let kept = state
                .last_main
                .filter(|k| tiles.iter().any(|t| t.key == *k));
            let main = speaker
                .or(kept)
                .or_else(|| tiles.iter().find(|t| t.key != LOCAL_KEY).map(|t| t.key))
                .or(tiles.first().map(|t| t.key));
            state.last_main = main;
            main
        }
    };
    let rects = match main {
        Some(main) if tiles.len() > 1 => speaker_rects(&tiles, main, area),
        _ => grid_rects(tiles.len(), area),
    };
    for (t, rect) in tiles.into_iter().zip(rects) {
        put_tile(ui, t, rect, options, state);
    }
    if let Some(t) = floating {
        let default = area.right_bottom() - THUMBNAIL - vec2(GAP, GAP);
        egui::Area::new(egui::Id::unique("self-view"))
            .default_pos(default)
            .movable(true)
            .constrain_to(area)
            .order(egui::Order::Middle)
            .show(ui.ctx(), |ui| {
                let mut tile = t.tile;
                tile.size = THUMBNAIL;
                ui.add(tile).on_hover_text("your camera; drag to move");
            });
    }
}

fn grid_rects(n: usize, area: Rect) -> Vec<Rect> {
    let layout = grid_layout(n, area.size(), TILE_ASPECT, GAP);
    (0..n).map(|i| layout.rect(area, i, GAP)).collect()
}

/// The main tile above, the others in one row below (each as large as fits).
fn speaker_rects(tiles: &[StageTile<'_>], main: u64, area: Rect) -> Vec<Rect> {
    let others = tiles.len() - 1;
    let strip_h = (area.height() * 0.2).clamp(48.0, 140.0);
    let strip_w = ((area.width() - GAP * (others as f32 - 1.0)) / others as f32)
        .min(strip_h * TILE_ASPECT)
        .max(1.0);
    let strip_h = strip_w / TILE_ASPECT;
    let main_area =
        Rect::from_min_max(area.min, egui::pos2(area.max.x, area.max.y - strip_h - GAP));
    let main_rect = grid_layout(1, main_area.size(), TILE_ASPECT, GAP).rect(main_area, 0, GAP);
    let row_w = others as f32 * strip_w + (others as f32 - 1.0) * GAP;
    let mut x = area.center().x - row_w / 2.0;
    tiles
        .iter()
        .map(|t| {
            if t.key == main {
                main_rect
            } else {
                let r = Rect::from_min_size(
                    egui::pos2(x, area.max.y - strip_h),
                    vec2(strip_w, strip_h),
                );
                x += strip_w + GAP;
                r
            }
        })
        .collect()
}

fn put_tile(
    ui: &mut egui::Ui,
    t: StageTile<'_>,
    rect: Rect,
    options: &StageOptions,
    state: &mut StageState,
) {
    let mut tile = t.tile;
    tile.size = rect.size();
    tile.with_volume = t.audio.is_some() && !options.kiosk;
    let response = ui.put(rect, tile);
    if options.kiosk {
        return;
    }
    // No tooltip: it would cover the tiles; F1 lists "click a tile: pin".
    let pinned = state.pinned == Some(t.key);
    if response.clicked() {
        state.pinned = if pinned { None } else { Some(t.key) };
    }
    response.context_menu(|ui| {
        if ui.button(if pinned { "Unpin" } else { "Pin" }).clicked() {
            state.pinned = if pinned { None } else { Some(t.key) };
            ui.close();
        }
    });
    if let (Some((id, audio)), Some(slot)) = (t.audio, TileOverlays::layout(rect, true).volume) {
        volume_slider(ui, slot, id, audio);
    }
}

fn collect<'a>(session: &'a RoomSession, options: &StageOptions, pass: u64) -> Vec<StageTile<'a>> {
    let mut out = Vec::new();
    for (id, tile) in &session.tiles {
        let user = tile.info.user_id.0.as_str();
        out.push(StageTile {
            key: id.0.wrapping_add(1),
            user,
            tile: VideoTile {
                key: id.0.wrapping_add(1),
                // A kiosk's source back from standby: no picture from
                // before its pause (`session/standby.rs`).
                slot: tile
                    .info
                    .video
                    .filter(|_| {
                        tile.stream.video().generation() == 0 || session.shows_fresh_video(*id)
                    })
                    .map(|_| tile.stream.video()),
                label: session.name_of(&tile.info.user_id),
                note: tile.info.is_screen.then_some("screen"),
                audio_muted: tile.info.audio_muted,
                video_muted: tile.info.video_muted,
                interrupted: tile.interrupted,
                speaking: session.speaking.is_speaking(user),
                // The stream's own figures, and our downlink's quality.
                net: tile
                    .mark
                    .map(|m| m.with_quality(session.network_quality.map(|q| q.1))),
                // A shared screen is never cropped: its text must stay whole.
                fit: if tile.info.is_screen {
                    ObjectFit::Contain
                } else {
                    options.fit
                },
                mirror: false,
                size: Vec2::ZERO,
                with_volume: false,
                pass,
            },
            audio: tile.audio.as_ref().map(|a| (*id, a)),
        });
    }
    if let (false, Some(local)) = (options.kiosk, &session.local) {
        let me = session.me().0.as_str();
        out.push(StageTile {
            key: LOCAL_KEY,
            user: me,
            tile: VideoTile {
                key: LOCAL_KEY,
                slot: Some(&local.slot),
                label: session.my_name(),
                note: Some("you"),
                audio_muted: local.audio_muted,
                video_muted: local.video_muted,
                interrupted: false,
                speaking: session.speaking.is_speaking(me),
                // Our uplink's quality, once known.
                net: session
                    .network_quality
                    .map(|q| NetMark::default().with_quality(Some(q.0)))
                    .filter(|m| m.quality.is_some()),
                fit: options.fit,
                mirror: options.mirror_local,
                size: Vec2::ZERO,
                with_volume: false,
                pass,
            },
            audio: None,
        });
    }
    out
}

/// The tile's volume, in its own corner region. The value goes straight to
/// the tile's audio tap (an atomic), so it is not an action.
fn volume_slider(ui: &mut egui::Ui, rect: Rect, id: StreamId, audio: &AudioTap) {
    let mut volume = audio.shared().volume();
    let response = ui
        .scope_builder(
            egui::UiBuilder::new().max_rect(rect).id_salt(("vol", id.0)),
            |ui| {
                // The rail takes the region's width: nothing spills out.
                ui.spacing_mut().slider_width = (rect.width() - 4.0).max(8.0);
                ui.add(egui::Slider::new(&mut volume, 0.0..=1.0).show_value(false))
                    .on_hover_text(format!("volume {:.0}%", volume * 100.0))
            },
        )
        .inner;
    if response.changed() {
        audio.shared().set_volume(volume);
    }
}
