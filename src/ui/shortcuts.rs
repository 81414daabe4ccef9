//! Keyboard shortcuts, push-to-talk, the help overlay (F1 or ?) and About.
//!
//! Letter keys act only when no text field has the keyboard, so typing a
//! name never mutes anyone.

use super::room_view::RoomAction;
use super::session::SessionAction;
use super::stage::StageState;

/// Every shortcut, as the help overlay lists it.
pub const SHORTCUTS: &[(&str, &str)] = &[
    ("M", "mute / unmute the microphone"),
    ("Space (hold)", "talk while muted (push-to-talk)"),
    ("V", "stop / start the camera"),
    ("L", "switch grid / active-speaker layout"),
    ("P", "show / hide the participants"),
    ("S", "self view as a movable thumbnail"),
    ("Click a tile", "pin it large (spotlight); again to unpin"),
    ("Esc", "unpin; close this help"),
    ("F11", "fullscreen"),
    ("Ctrl+W", "leave the room"),
    ("F1 or ?", "this help"),
    ("F12", "debug overlay"),
];

/// The help and About windows (open in the lobby and the room).
#[derive(Debug, Default, Clone, Copy)]
pub struct Overlays {
    /// The shortcut list is open.
    pub help: bool,
    /// The About window is open.
    pub about: bool,
}

impl Overlays {
    /// F1 / ? toggles the help; Esc closes it.
    pub fn keys(&mut self, ctx: &egui::Context) {
        let typing = ctx.egui_wants_keyboard_input();
        ctx.input(|i| {
            let question = i
                .events
                .iter()
                .any(|e| matches!(e, egui::Event::Text(t) if t == "?"));
            if i.key_pressed(egui::Key::F1) || (!typing && question) {
                self.help = !self.help;
            }
            if i.key_pressed(egui::Key::Escape) {
                self.help = false;
                self.about = false;
            }
        });
    }

    /// Draws whichever is open.
    pub fn show(&mut self, ctx: &egui::Context) {
        egui::Window::new("Keyboard shortcuts")
            .open(&mut self.help)
            .collapsible(false)
            .resizable(false)
            .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
            .show(ctx, |ui| {
                egui::Grid::new("shortcuts")
                    .num_columns(2)
                    .striped(true)
                    .show(ui, |ui| {
                        for (key, what) in SHORTCUTS {
                            ui.strong(*key);
                            ui.label(*what);
                            ui.end_row();
                        }
                    });
            });
        egui::Window::new("About huddle")
            .open(&mut self.about)
            .collapsible(false)
            .resizable(false)
            .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
            .show(ctx, |ui| {
                ui.label(format!("huddle {}", crate::VERSION));
                ui.label("Self-hosted audio and video rooms.");
                ui.label(format!(
                    "Protocol version {}",
                    crate::protocol::PROTOCOL_VERSION
                ));
            });
    }
}

/// In the room: what the keys pressed this pass ask for. `ptt_held` tracks
/// push-to-talk (Space held while the microphone was muted).
pub fn room_keys(
    ctx: &egui::Context,
    mic_muted: Option<bool>,
    push_to_talk: bool,
    ptt_held: &mut bool,
    stage: &mut StageState,
    people_open: &mut bool,
    actions: &mut Vec<RoomAction>,
) {
    if ctx.egui_wants_keyboard_input() {
        return;
    }
    let mic = |a| RoomAction::Session(a);
    ctx.input(|i| {
        let plain = !i.modifiers.ctrl && !i.modifiers.alt && !i.modifiers.command;
        if plain && i.key_pressed(egui::Key::M) && mic_muted.is_some() {
            actions.push(mic(SessionAction::ToggleMic));
        }
        if plain && i.key_pressed(egui::Key::V) && mic_muted.is_some() {
            actions.push(mic(SessionAction::ToggleCamera));
        }
        if plain && i.key_pressed(egui::Key::L) {
            stage.layout = stage.layout.toggled();
        }
        if plain && i.key_pressed(egui::Key::P) {
            *people_open = !*people_open;
        }
        if plain && i.key_pressed(egui::Key::S) {
            stage.self_thumbnail = !stage.self_thumbnail;
        }
        if i.key_pressed(egui::Key::Escape) {
            stage.pinned = None;
        }
        if i.key_pressed(egui::Key::F11) {
            actions.push(RoomAction::ToggleFullscreen);
        }
        if i.modifiers.command && i.key_pressed(egui::Key::W) {
            actions.push(RoomAction::Leave);
        }
        // Push-to-talk: Space down while muted unmutes until it is released.
        if push_to_talk {
            let space = i.key_down(egui::Key::Space);
            match (*ptt_held, space, mic_muted) {
                (false, true, Some(true)) => {
                    *ptt_held = true;
                    actions.push(mic(SessionAction::SetMicMuted(false)));
                }
                (true, false, _) => {
                    *ptt_held = false;
                    actions.push(mic(SessionAction::SetMicMuted(true)));
                }
                _ => {}
            }
        }
    });
}
