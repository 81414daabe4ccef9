//! The room: the control bar ([`super::toolbar`]), the participants panel
//! ([`super::participants`]) and the stage of tiles ([`super::stage`]).
//! This file only puts them together; each has its own module.

use super::devices::DeviceCatalog;
use super::participants;
use super::render::ObjectFit;
use super::session::{DeviceKind, RoomSession, SessionAction};
use super::settings::Settings;
use super::shortcuts;
use super::stage::{self, StageOptions, StageState};

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
    /// Layout, pin and self view.
    pub stage: StageState,
    /// The participants panel is open.
    pub participants_open: bool,
    /// Hold Space to talk while muted.
    pub push_to_talk: bool,
    /// Space is held for push-to-talk.
    pub ptt_held: bool,
    /// Kiosk: why the last join failed, shown while it joins again.
    pub retry_note: Option<String>,
    /// The broadcast console replaces the room view (`huddle --console`).
    pub console: Option<super::console::ConsoleState>,
}

impl RoomViewOptions {
    /// Options with the given fit and mirror; everything else at rest.
    pub fn new(fit: ObjectFit, mirror_local: bool, kiosk: bool) -> Self {
        Self {
            fit,
            mirror_local,
            kiosk,
            synthetic_note: None,
            stage: StageState::default(),
            participants_open: false,
            push_to_talk: true,
            ptt_held: false,
            retry_note: None,
            console: None,
        }
    }
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
    /// Open the keyboard shortcut help.
    Help,
    /// Open About.
    About,
    /// Fullscreen on/off.
    ToggleFullscreen,
    /// Open or close the stream debugger (F9).
    ToggleDebugger,
    /// A director's request from the broadcast console.
    Direct(super::session::DirectorAction),
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
    if let Some(mut console) = options.console.take() {
        let actions =
            super::console::view::show(ui, session, devices, settings, options, &mut console, pass);
        options.console = Some(console);
        return actions;
    }
    let mut actions = Vec::new();
    if !options.kiosk {
        shortcuts::room_keys(
            ui.ctx(),
            session.local.as_ref().map(|l| l.audio_muted),
            options.push_to_talk,
            &mut options.ptt_held,
            &mut options.stage,
            &mut options.participants_open,
            &mut actions,
        );
        let people = participants::roster(session);
        egui::Panel::bottom("controls").show(ui, |ui| {
            super::toolbar::show(
                ui,
                session,
                devices,
                settings,
                options,
                people.len(),
                &mut actions,
            );
        });
        if options.participants_open {
            let width = (ui.available_width() * 0.35).clamp(140.0, 260.0);
            egui::Panel::right("people")
                .resizable(true)
                .default_size(width)
                .show(ui, |ui| {
                    participants::show(ui, session, &people, &mut actions)
                });
        }
    }
    let stage_options = StageOptions {
        fit: options.fit,
        mirror_local: options.mirror_local,
        kiosk: options.kiosk,
        retry_note: options.retry_note.clone(),
    };
    egui::CentralPanel::default()
        .frame(egui::Frame::new().fill(egui::Color32::from_gray(12)))
        .show(ui, |ui| {
            stage::show(ui, session, &stage_options, &mut options.stage, pass);
        });
    actions
}
