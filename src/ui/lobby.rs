//! The lobby: where to join, as whom, signed how, with which devices.

use crate::auth;
use crate::protocol::Role;

use super::audio_tap::SPEAKING_LEVEL;
use super::device_preview::DevicePreview;
use super::devices::{DeviceCatalog, DeviceEntry};
use super::render::ObjectFit;
use super::widgets::VideoTile;

/// Key of the lobby preview's GPU textures (room tiles use 0 and id + 1).
const PREVIEW_KEY: u64 = u64::MAX;
use super::launch::{JoinTarget, ServerChoice, SignatureSource};
use super::settings::Settings;

/// Lobby form state.
pub struct Lobby {
    /// The remembered fields being edited.
    pub settings: Settings,
    /// App key (not saved).
    pub app_key: String,
    /// X-AUTH-TOKEN (not saved).
    pub auth_token: String,
    error: Option<String>,
}

impl Lobby {
    /// A lobby prefilled from `settings`.
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            app_key: String::new(),
            auth_token: String::new(),
            error: None,
        }
    }

    /// Draws the form; returns a target when Join was pressed with valid input.
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        devices: &DeviceCatalog,
        preview: Option<&DevicePreview>,
        pass: u64,
    ) -> Option<JoinTarget> {
        let mut join = false;
        ui.vertical_centered(|ui| {
            ui.add_space(24.0);
            ui.heading("huddle");
            ui.add_space(12.0);
        });
        let s = &mut self.settings;
        egui::Grid::new("lobby")
            .num_columns(2)
            .spacing([12.0, 8.0])
            .show(ui, |ui| {
                ui.label("Server");
                ui.add(
                    egui::TextEdit::singleline(&mut s.server).hint_text("local or ws://host:7880"),
                );
                ui.end_row();
                let local = s.server.trim() == "local";
                ui.label("Room");
                ui.text_edit_singleline(&mut s.room);
                ui.end_row();
                ui.label("User id");
                ui.text_edit_singleline(&mut s.user_id);
                ui.end_row();
                ui.label("Name");
                ui.text_edit_singleline(&mut s.user_name);
                ui.end_row();
                ui.label("Role");
                ui.horizontal(|ui| {
                    ui.radio_value(&mut s.player, false, "joiner (camera + microphone)");
                    ui.radio_value(&mut s.player, true, "player (watch only)");
                });
                ui.end_row();
                if !local {
                    ui.label("App id");
                    ui.text_edit_singleline(&mut s.app_id);
                    ui.end_row();
                    ui.label("Signature");
                    ui.horizontal(|ui| {
                        ui.radio_value(&mut s.use_signature_url, false, "app key (sign here)");
                        ui.radio_value(&mut s.use_signature_url, true, "signature URL");
                    });
                    ui.end_row();
                    if s.use_signature_url {
                        ui.label("Signature URL");
                        ui.text_edit_singleline(&mut s.signature_url);
                        ui.end_row();
                        ui.label("X-AUTH-TOKEN");
                        ui.add(egui::TextEdit::singleline(&mut self.auth_token).password(true));
                        ui.end_row();
                    } else {
                        ui.label("App key");
                        ui.add(egui::TextEdit::singleline(&mut self.app_key).password(true));
                        ui.end_row();
                    }
                }
                device_picker(ui, "Camera", &mut s.camera, &devices.cameras);
                device_picker(ui, "Microphone", &mut s.microphone, &devices.microphones);
                device_picker(ui, "Speaker", &mut s.speaker, &devices.speakers);
            });
        if let Some(note) = devices.synthetic_note() {
            ui.label(note);
        }
        if let Some(preview) = preview {
            ui.add_space(8.0);
            show_preview(ui, preview, self.settings.mirror_local, pass);
        }
        ui.add_space(12.0);
        if ui.button("  Join  ").clicked() || ui.input(|i| i.key_pressed(egui::Key::Enter)) {
            join = true;
        }
        if let Some(e) = &self.error {
            ui.colored_label(egui::Color32::LIGHT_RED, e);
        }
        if !join {
            return None;
        }
        match self.target() {
            Ok(t) => {
                self.error = None;
                if let Err(e) = self.settings.save() {
                    tracing::warn!("settings not saved: {e}");
                }
                Some(t)
            }
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }

    fn target(&self) -> Result<JoinTarget, String> {
        let s = &self.settings;
        let server = match s.server.trim() {
            "local" | "" => ServerChoice::Local,
            url if url.starts_with("ws://") || url.starts_with("wss://") => {
                ServerChoice::Url(url.to_owned())
            }
            _ => return Err("server must be `local` or a ws:// URL".into()),
        };
        for (name, v) in [("room", &s.room), ("user id", &s.user_id)] {
            if !auth::validate_id(v) {
                return Err(format!("{name}: use 1-64 of A-Z a-z 0-9 _ -"));
            }
        }
        if !auth::validate_user_name(&s.user_name) {
            return Err("name is too long".into());
        }
        let signature = if s.use_signature_url {
            SignatureSource::Url {
                url: s.signature_url.trim().to_owned(),
                token: self.auth_token.clone(),
            }
        } else {
            SignatureSource::AppKey(self.app_key.clone())
        };
        if server != ServerChoice::Local {
            if !auth::validate_id(&s.app_id) {
                return Err("app id: use 1-64 of A-Z a-z 0-9 _ -".into());
            }
            if matches!(&signature, SignatureSource::AppKey(k) if k.is_empty()) {
                return Err("give the app key or a signature URL".into());
            }
        }
        Ok(JoinTarget {
            server,
            app_id: s.app_id.clone(),
            room: s.room.clone(),
            user_id: s.user_id.clone(),
            user_name: s.user_name.clone(),
            role: if s.player { Role::Player } else { Role::Joiner },
            signature,
        })
    }
}

/// The picked camera's picture and the picked microphone's level.
fn show_preview(ui: &mut egui::Ui, preview: &DevicePreview, mirror: bool, pass: u64) {
    ui.add(VideoTile {
        key: PREVIEW_KEY,
        slot: Some(&preview.slot),
        label: "preview",
        note: None,
        audio_muted: false,
        video_muted: false,
        interrupted: false,
        speaking: preview.meter.level() >= SPEAKING_LEVEL,
        net: None,
        fit: ObjectFit::Contain,
        mirror,
        size: egui::vec2(320.0, 180.0),
        pass,
    });
    ui.horizontal(|ui| {
        ui.label("Microphone");
        ui.add(egui::ProgressBar::new(preview.meter.fraction()).desired_width(260.0));
    });
    // The meter moves with the microphone, not only with pictures.
    ui.ctx()
        .request_repaint_after(std::time::Duration::from_millis(50));
}

fn device_picker(ui: &mut egui::Ui, label: &str, picked: &mut String, entries: &[DeviceEntry]) {
    ui.label(label);
    let shown = entries
        .iter()
        .find(|d| d.id == *picked)
        .or(entries.first())
        .map_or("none", |d| d.label.as_str());
    egui::ComboBox::from_id_salt(label)
        .selected_text(shown)
        .show_ui(ui, |ui| {
            for d in entries {
                ui.selectable_value(picked, d.id.clone(), &d.label);
            }
        });
    ui.end_row();
}
