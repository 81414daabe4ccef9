//! The room's control bar. It wraps onto more rows in a narrow window, so
//! every control stays reachable; the status line wraps last (a long error
//! never pushes a button out, issue 16 §1).

use super::devices::{DeviceCatalog, DeviceEntry};
use super::render::ObjectFit;
use super::room_view::{RoomAction, RoomViewOptions};
use super::session::{DeviceKind, Phase, RoomSession, SessionAction};
use super::settings::Settings;

/// Draws the bar.
pub fn show(
    ui: &mut egui::Ui,
    session: &RoomSession,
    devices: &DeviceCatalog,
    settings: &Settings,
    options: &mut RoomViewOptions,
    people: usize,
    actions: &mut Vec<RoomAction>,
) {
    ui.add_space(4.0);
    ui.horizontal_wrapped(|ui| {
        media_buttons(ui, session, options, actions);
        ui.separator();
        if ui
            .selectable_label(options.participants_open, format!("People ({people})"))
            .on_hover_text("everyone in the room, watchers included (P)")
            .clicked()
        {
            options.participants_open = !options.participants_open;
        }
        let layout = options.stage.layout;
        if ui
            .button(format!("Layout: {}", layout.name()))
            .on_hover_text("grid or active speaker (L); click a tile to pin it")
            .clicked()
        {
            options.stage.layout = layout.toggled();
        }
        device_menu(ui, session, devices, settings, actions);
        if session.local.is_some() {
            super::screen_share::toolbar(ui, session, &devices.microphones, actions);
        }
        if let Some(mixing) = session.local.as_ref().and_then(|l| l.mixing.as_ref()) {
            super::music_menu::show(ui, mixing, actions);
        }
        more_menu(ui, session, options, actions);
        if matches!(session.phase, Phase::Joined) {
            role_button(ui, session, actions);
            if let Some(on) = session.top_n.toggle(ui) {
                actions.push(RoomAction::TopN(on));
            }
        }
        if ui
            .button("Leave")
            .on_hover_text("leave the room (Ctrl+W)")
            .clicked()
        {
            actions.push(RoomAction::Leave);
        }
        if matches!(session.phase, Phase::Failed(_) | Phase::Disconnected(_))
            && ui.button("Rejoin").clicked()
        {
            actions.push(RoomAction::Rejoin);
        }
        ui.separator();
        let status = match &session.phase {
            Phase::Joining => "Joining…".to_owned(),
            Phase::Joined => match people {
                1 => "Only you in the room".to_owned(),
                n => format!("{n} in the room"),
            },
            Phase::Failed(e) | Phase::Disconnected(e) => e.clone(),
        };
        ui.add(egui::Label::new(status).wrap());
        if let (Some(note), Some(_)) = (options.synthetic_note, &session.local) {
            ui.add(egui::Label::new(egui::RichText::new(note).weak()).wrap());
        }
    });
    ui.add_space(2.0);
}

/// Mic and camera buttons with the mic meter (also the console's local source).
pub(super) fn media_buttons(
    ui: &mut egui::Ui,
    session: &RoomSession,
    options: &RoomViewOptions,
    actions: &mut Vec<RoomAction>,
) {
    let Some(local) = &session.local else {
        ui.weak("Watching (no camera or microphone)");
        return;
    };
    let ready = local.stream_id.is_some();
    let (mic, mic_hint) = if local.audio_muted {
        let hint = if options.push_to_talk {
            "unmute your microphone (M); or hold Space to talk"
        } else {
            "unmute your microphone (M)"
        };
        ("Unmute mic", hint)
    } else {
        ("Mute mic", "mute your microphone (M)")
    };
    let (cam, cam_hint) = if local.video_muted {
        ("Start camera", "send your camera again (V)")
    } else {
        ("Stop camera", "stop sending your camera (V)")
    };
    if ui
        .add_enabled(ready, egui::Button::new(mic))
        .on_hover_text(mic_hint)
        .on_disabled_hover_text("wait until your stream is published")
        .clicked()
    {
        actions.push(RoomAction::Session(SessionAction::ToggleMic));
    }
    ui.label("Mic");
    let level = if local.audio_muted {
        0.0
    } else {
        local.meter.fraction()
    };
    ui.add(egui::ProgressBar::new(level).desired_width(48.0))
        .on_hover_text("your microphone level: it moves when you speak");
    if ui
        .add_enabled(ready, egui::Button::new(cam))
        .on_hover_text(cam_hint)
        .on_disabled_hover_text("wait until your stream is published")
        .clicked()
    {
        actions.push(RoomAction::Session(SessionAction::ToggleCamera));
    }
}

/// Less used settings: fit, mirror, self view, name, help, about.
fn more_menu(
    ui: &mut egui::Ui,
    session: &RoomSession,
    options: &mut RoomViewOptions,
    actions: &mut Vec<RoomAction>,
) {
    ui.menu_button("More", |ui| {
        ui.label("Picture fit");
        for fit in ObjectFit::ALL {
            ui.radio_value(&mut options.fit, fit, fit.name());
        }
        ui.separator();
        if session.local.is_some() {
            ui.checkbox(&mut options.mirror_local, "Mirror my picture");
            ui.checkbox(
                &mut options.stage.self_thumbnail,
                "Self view as a movable thumbnail",
            )
            .on_hover_text("S");
            ui.checkbox(&mut options.push_to_talk, "Hold Space to talk while muted");
            ui.separator();
        }
        if ui.button("Stream debugger (F9)").clicked() {
            actions.push(RoomAction::ToggleDebugger);
            ui.close();
        }
        if ui.button("Keyboard shortcuts (F1)").clicked() {
            actions.push(RoomAction::Help);
            ui.close();
        }
        if ui.button("About huddle").clicked() {
            actions.push(RoomAction::About);
            ui.close();
        }
    });
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

/// Camera / microphone / speaker pickers while in the room (also the console's).
pub(super) fn device_menu(
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
    })
    .response
    .on_hover_text("camera, microphone and speaker");
}
