//! The room: a responsive grid of tiles (remote streams, then the local
//! preview) and, outside kiosk mode, the control bar.

use egui::{Rect, vec2};

use super::audio_tap::SPEAKING_LEVEL;
use super::devices::{DeviceCatalog, DeviceEntry};
use super::render::ObjectFit;
use super::session::{DeviceKind, Phase, RoomSession, SessionAction};
use super::settings::Settings;
use super::widgets::{VideoTile, grid_layout};

/// Space between tiles, points.
const GAP: f32 = 8.0;
/// Tile aspect the grid aims for.
const TILE_ASPECT: f32 = 16.0 / 9.0;
/// Key of the local preview's GPU textures (remote tiles use the stream id + 1).
const LOCAL_KEY: u64 = 0;

/// View options that outlive a session.
#[derive(Debug, Clone)]
pub struct RoomViewOptions {
    /// Object fit for every tile.
    pub fit: ObjectFit,
    /// Mirror the local preview.
    pub mirror_local: bool,
    /// Kiosk: no controls, no self tile.
    pub kiosk: bool,
    /// Which capture devices are synthetic stand-ins, if any (shown in the bar).
    pub synthetic_note: Option<&'static str>,
}

/// What the user did in the room view.
#[derive(Debug, Clone, PartialEq)]
pub enum RoomAction {
    /// For the session.
    Session(SessionAction),
    /// Switch a device (by catalog id) while in the room.
    Device(DeviceKind, String),
    /// Leave (back to the lobby).
    Leave,
    /// Join the same room again.
    Rejoin,
    /// Change our display name in the room.
    Rename(String),
    /// Switch our role: joiner (on stage, publishing) or player (watching).
    SwitchRole(crate::client::Role),
    /// Something to tell the user (an audio file that cannot play).
    Notice(String),
    /// Hear only the three loudest talkers (top-N audio), or everyone.
    TopN(bool),
}

/// Draws the room; returns the actions to apply after the pass.
pub fn show(
    ui: &mut egui::Ui,
    session: &RoomSession,
    devices: &DeviceCatalog,
    settings: &Settings,
    options: &mut RoomViewOptions,
    pass: u64,
) -> Vec<RoomAction> {
    let mut actions = Vec::new();
    if !options.kiosk {
        egui::Panel::bottom("controls").show(ui, |ui| {
            ui.horizontal(|ui| {
                controls(ui, session, options, &mut actions);
                ui.separator();
                device_menu(ui, session, devices, settings, &mut actions);
                if let Some(mixing) = session.local.as_ref().and_then(|l| l.mixing.as_ref()) {
                    super::music_menu::show(ui, mixing, &mut actions);
                }
            });
        });
    }
    egui::CentralPanel::default()
        .frame(egui::Frame::new().fill(egui::Color32::from_gray(12)))
        .show(ui, |ui| tiles(ui, session, options, pass, &mut actions));
    actions
}

fn controls(
    ui: &mut egui::Ui,
    session: &RoomSession,
    options: &mut RoomViewOptions,
    actions: &mut Vec<RoomAction>,
) {
    if let Some(local) = &session.local {
        let ready = local.stream_id.is_some();
        let mic = if local.audio_muted {
            "Unmute mic"
        } else {
            "Mute mic"
        };
        let cam = if local.video_muted {
            "Start camera"
        } else {
            "Stop camera"
        };
        if ui.add_enabled(ready, egui::Button::new(mic)).clicked() {
            actions.push(RoomAction::Session(SessionAction::ToggleMic));
        }
        if ui.add_enabled(ready, egui::Button::new(cam)).clicked() {
            actions.push(RoomAction::Session(SessionAction::ToggleCamera));
        }
        ui.add(
            egui::ProgressBar::new(if local.audio_muted {
                0.0
            } else {
                local.meter.fraction()
            })
            .desired_width(60.0),
        )
        .on_hover_text("microphone level");
        ui.checkbox(&mut options.mirror_local, "mirror me");
    }
    egui::ComboBox::from_id_salt("fit")
        .selected_text(format!("fit: {}", options.fit.name()))
        .show_ui(ui, |ui| {
            for fit in ObjectFit::ALL {
                ui.selectable_value(&mut options.fit, fit, fit.name());
            }
        });
    if matches!(session.phase, Phase::Joined) {
        name_field(ui, session, actions);
        role_button(ui, session, actions);
        if let Some(on) = session.top_n.toggle(ui) {
            actions.push(RoomAction::TopN(on));
        }
    }
    if ui.button("Leave").clicked() {
        actions.push(RoomAction::Leave);
    }
    ui.separator();
    let status = match &session.phase {
        Phase::Joining => "joining…".to_owned(),
        Phase::Joined => format!("{} others in the room", session.users.len()),
        Phase::Failed(e) | Phase::Disconnected(e) => e.clone(),
    };
    ui.label(status);
    if matches!(session.phase, Phase::Failed(_) | Phase::Disconnected(_))
        && ui.button("Rejoin").clicked()
    {
        actions.push(RoomAction::Rejoin);
    }
    if let (Some(note), Some(_)) = (options.synthetic_note, &session.local) {
        ui.separator();
        ui.weak(note);
    }
}

/// Joiner ⇄ player (seed `switchRole`): "Watch only" stops publishing and
/// leaves the stage; "Join on stage" publishes camera and microphone again.
fn role_button(ui: &mut egui::Ui, session: &RoomSession, actions: &mut Vec<RoomAction>) {
    use crate::client::Role;
    let (label, hint, to) = match session.role {
        Role::Joiner => (
            "Watch only",
            "stop publishing and watch (player role)",
            Role::Player,
        ),
        Role::Player => (
            "Join on stage",
            "publish your camera and microphone (joiner role)",
            Role::Joiner,
        ),
    };
    if ui
        .add_enabled(!session.switching_role, egui::Button::new(label))
        .on_hover_text(hint)
        .clicked()
    {
        actions.push(RoomAction::SwitchRole(to));
    }
}

/// Our name, editable: Enter asks the room to rename us. The draft lives in
/// egui's memory while the field has focus and follows the room's name otherwise.
fn name_field(ui: &mut egui::Ui, session: &RoomSession, actions: &mut Vec<RoomAction>) {
    let id = ui.make_persistent_id("my-name");
    let mut draft = ui
        .data(|d| d.get_temp::<String>(id))
        .unwrap_or_else(|| session.my_name().to_owned());
    let response = ui
        .add(
            egui::TextEdit::singleline(&mut draft)
                .id(id.with("edit"))
                .desired_width(120.0)
                .char_limit(crate::auth::MAX_USER_NAME_LEN),
        )
        .on_hover_text("your name; Enter to change it");
    if response.lost_focus() {
        if ui.input(|i| i.key_pressed(egui::Key::Enter)) {
            actions.push(RoomAction::Rename(draft.trim().to_owned()));
        }
        ui.data_mut(|d| d.remove::<String>(id));
    } else if response.has_focus() {
        ui.data_mut(|d| d.insert_temp(id, draft));
    }
}

/// Camera / microphone / speaker pickers while in the room.
fn device_menu(
    ui: &mut egui::Ui,
    session: &RoomSession,
    devices: &DeviceCatalog,
    settings: &Settings,
    actions: &mut Vec<RoomAction>,
) {
    ui.menu_button("Devices", |ui| {
        let mut pick =
            |ui: &mut egui::Ui, kind, label: &str, current: &str, list: &[DeviceEntry]| {
                ui.label(label);
                // An id the catalog lacks (a device unplugged since) shows as
                // the first entry, as in the lobby.
                let current = list
                    .iter()
                    .find(|d| d.id == current)
                    .or(list.first())
                    .map_or(current, |d| d.id.as_str());
                for d in list {
                    if ui.selectable_label(d.id == current, &d.label).clicked() && d.id != current {
                        actions.push(RoomAction::Device(kind, d.id.clone()));
                        ui.close();
                    }
                }
                ui.separator();
            };
        if session.local.is_some() {
            pick(
                ui,
                DeviceKind::Camera,
                "Camera",
                &settings.camera,
                &devices.cameras,
            );
            pick(
                ui,
                DeviceKind::Microphone,
                "Microphone",
                &settings.microphone,
                &devices.microphones,
            );
        }
        pick(
            ui,
            DeviceKind::Speaker,
            "Speaker",
            session.speaker(),
            &devices.speakers,
        );
    });
}

fn tiles(
    ui: &mut egui::Ui,
    session: &RoomSession,
    options: &RoomViewOptions,
    pass: u64,
    actions: &mut Vec<RoomAction>,
) {
    let show_local = !options.kiosk && session.local.is_some();
    let n = session.tiles.len() + usize::from(show_local);
    let area = ui.available_rect_before_wrap();
    if n == 0 {
        let text = match &session.phase {
            Phase::Joined => "waiting for someone to publish…".to_owned(),
            Phase::Joining => "joining…".to_owned(),
            Phase::Failed(e) | Phase::Disconnected(e) => format!("{e} — reconnecting"),
        };
        ui.centered_and_justified(|ui| ui.label(text));
        return;
    }
    let layout = grid_layout(n, area.size(), TILE_ASPECT, GAP);
    let now = std::time::Instant::now();
    let mut i = 0;
    for (id, tile) in &session.tiles {
        let rect = layout.rect(area, i, GAP);
        i += 1;
        // In top-N mode the borders follow `volume-indicator`.
        let speaking = if session.top_n.is_on() {
            session.top_n.is_speaking(&tile.info.user_id, now)
        } else {
            tile.level() >= SPEAKING_LEVEL
        };
        let widget = VideoTile {
            key: id.0.wrapping_add(1),
            slot: tile.info.video.map(|_| tile.stream.video()),
            label: session.name_of(&tile.info.user_id),
            note: None,
            audio_muted: tile.info.audio_muted,
            video_muted: tile.info.video_muted,
            interrupted: tile.interrupted,
            speaking,
            net: tile.mark,
            fit: options.fit,
            mirror: false,
            size: rect.size(),
            pass,
        };
        ui.put(rect, widget);
        if let (false, Some(audio)) = (options.kiosk, &tile.audio) {
            volume_slider(ui, rect, *id, audio);
        }
    }
    if let (true, Some(local)) = (show_local, &session.local) {
        let rect = layout.rect(area, i, GAP);
        ui.put(
            rect,
            VideoTile {
                key: LOCAL_KEY,
                slot: Some(&local.slot),
                label: session.my_name(),
                note: Some("you"),
                audio_muted: local.audio_muted,
                video_muted: local.video_muted,
                interrupted: false,
                speaking: !local.audio_muted && local.meter.level() >= SPEAKING_LEVEL,
                net: None,
                fit: options.fit,
                mirror: options.mirror_local,
                size: rect.size(),
                pass,
            },
        );
    }
    let _ = actions; // tiles have no actions yet (e.g. pin); controls do
}

/// A compact volume slider in the tile's bottom-right corner. The value goes
/// straight to the tile's audio tap (an atomic), so it is not an action.
fn volume_slider(
    ui: &mut egui::Ui,
    tile: Rect,
    id: crate::client::StreamId,
    audio: &super::audio_tap::AudioTap,
) {
    let size = vec2(130.0_f32.min(tile.width() * 0.4), 20.0);
    let rect = Rect::from_min_size(tile.right_bottom() - size - vec2(8.0, 8.0), size);
    let mut volume = audio.shared().volume();
    let slider = egui::Slider::new(&mut volume, 0.0..=1.0)
        .show_value(false)
        .text("vol");
    let response = ui
        .scope_builder(
            egui::UiBuilder::new().max_rect(rect).id_salt(("vol", id.0)),
            |ui| ui.add(slider),
        )
        .inner;
    if response.changed() {
        audio.shared().set_volume(volume);
    }
}
