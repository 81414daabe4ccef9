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
use super::error_text::{ErrorField, HumanError};
use super::launch::{JoinTarget, ServerChoice, SignatureSource};
use super::settings::Settings;

/// Lobby form state.
pub struct Lobby {
    /// The remembered fields being edited.
    pub settings: Settings,
    /// App key (not saved to disk; kept while the app runs).
    pub app_key: String,
    /// X-AUTH-TOKEN (not saved to disk; kept while the app runs).
    pub auth_token: String,
    /// The last problem, shown next to the field it concerns.
    pub error: Option<HumanError>,
    details_open: bool,
}

/// Hint of the server field.
const SERVER_HINT: &str = "`local` joins the server built into this app (no app id or key \
                           needed); `ws://host:7880` joins a huddle server";

impl Lobby {
    /// A lobby prefilled from `settings`.
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            app_key: String::new(),
            auth_token: String::new(),
            error: None,
            details_open: false,
        }
    }

    /// Draws the form; returns a target when Join was pressed with valid input.
    /// The Join button sits in a bar along the bottom, so it stays in the
    /// window however small; the form above scrolls.
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        devices: &DeviceCatalog,
        preview: Option<&DevicePreview>,
        pass: u64,
    ) -> Option<JoinTarget> {
        let mut join = false;
        egui::Panel::bottom("lobby-join").show(ui, |ui| {
            ui.add_space(6.0);
            ui.horizontal_wrapped(|ui| {
                join |= ui
                    .add(egui::Button::new("Join").min_size(egui::vec2(96.0, 28.0)))
                    .on_hover_text("join the room (Enter)")
                    .clicked();
                ui.weak("F1: keyboard shortcuts");
            });
            if let Some(e) = self
                .error
                .as_ref()
                .filter(|e| matches!(e.field, ErrorField::General | ErrorField::Devices))
            {
                error_line(ui, e, &mut self.details_open);
            }
            ui.add_space(4.0);
        });
        egui::CentralPanel::default().show(ui, |ui| {
            egui::ScrollArea::vertical()
                .auto_shrink(false)
                .show(ui, |ui| self.form(ui, devices, preview, pass));
        });
        let popup_open = egui::Popup::is_any_open(ui.ctx());
        if !popup_open && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
            join = true;
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

    fn form(
        &mut self,
        ui: &mut egui::Ui,
        devices: &DeviceCatalog,
        preview: Option<&DevicePreview>,
        pass: u64,
    ) {
        ui.vertical_centered(|ui| {
            ui.add_space(12.0);
            ui.heading("huddle");
            ui.add_space(8.0);
        });
        let error = self.error.clone();
        let open = &mut self.details_open;
        let mut error_row = |ui: &mut egui::Ui, field: ErrorField| {
            if let Some(e) = error.as_ref().filter(|e| e.field == field) {
                ui.label("");
                ui.vertical(|ui| error_line(ui, e, open));
                ui.end_row();
            }
        };
        let s = &mut self.settings;
        let field_width = (ui.available_width() - 140.0).clamp(120.0, 320.0);
        egui::Grid::new("lobby")
            .num_columns(2)
            .spacing([12.0, 8.0])
            .show(ui, |ui| {
                let l = ui.label("Server").on_hover_text(SERVER_HINT);
                ui.add(
                    egui::TextEdit::singleline(&mut s.server)
                        .hint_text("local or ws://host:7880")
                        .desired_width(field_width),
                )
                .labelled_by(l.id)
                .on_hover_text(SERVER_HINT);
                ui.end_row();
                error_row(ui, ErrorField::Server);
                let local = matches!(s.server.trim(), "local" | "");
                text_row(
                    ui,
                    "Room",
                    &mut s.room,
                    field_width,
                    "the room to join (letters, digits, _ -)",
                );
                error_row(ui, ErrorField::Room);
                text_row(
                    ui,
                    "User id",
                    &mut s.user_id,
                    field_width,
                    "who you are in the room (unique; letters, digits, _ -)",
                );
                error_row(ui, ErrorField::UserId);
                text_row(
                    ui,
                    "Name",
                    &mut s.user_name,
                    field_width,
                    "the name the others see",
                );
                error_row(ui, ErrorField::Name);
                ui.label("Role");
                ui.horizontal_wrapped(|ui| {
                    ui.radio_value(&mut s.player, false, "joiner (camera + microphone)");
                    ui.radio_value(&mut s.player, true, "player (watch only)");
                });
                ui.end_row();
                if !s.player {
                    ui.label("Join with");
                    ui.horizontal_wrapped(|ui| {
                        ui.checkbox(&mut s.join_mic_off, "microphone off");
                        ui.checkbox(&mut s.join_camera_off, "camera off");
                        ui.checkbox(&mut s.push_to_talk, "hold Space to talk")
                            .on_hover_text("while your microphone is muted, hold Space to speak");
                    });
                    ui.end_row();
                }
                // Always shown, so they can be found; needed for ws:// servers only.
                let remote_hint = if local {
                    "not needed for the built-in server (`local`)"
                } else {
                    "the app id the server knows you by"
                };
                let l = ui
                    .add_enabled(!local, egui::Label::new("App id"))
                    .on_disabled_hover_text(remote_hint);
                ui.add_enabled(
                    !local,
                    egui::TextEdit::singleline(&mut s.app_id).desired_width(field_width),
                )
                .labelled_by(l.id)
                .on_hover_text(remote_hint)
                .on_disabled_hover_text(remote_hint);
                ui.end_row();
                error_row(ui, ErrorField::AppId);
                ui.add_enabled_ui(!local, |ui| ui.label("Signature"));
                ui.add_enabled_ui(!local, |ui| {
                    ui.horizontal_wrapped(|ui| {
                        ui.radio_value(&mut s.use_signature_url, false, "app key (sign here)");
                        ui.radio_value(&mut s.use_signature_url, true, "signature URL");
                    });
                });
                ui.end_row();
                if s.use_signature_url {
                    let l = ui.add_enabled(!local, egui::Label::new("Signature URL"));
                    ui.add_enabled(
                        !local,
                        egui::TextEdit::singleline(&mut s.signature_url).desired_width(field_width),
                    )
                    .labelled_by(l.id);
                    ui.end_row();
                    let l = ui.add_enabled(!local, egui::Label::new("X-AUTH-TOKEN"));
                    ui.add_enabled(
                        !local,
                        egui::TextEdit::singleline(&mut self.auth_token)
                            .password(true)
                            .desired_width(field_width),
                    )
                    .labelled_by(l.id);
                    ui.end_row();
                    error_row(ui, ErrorField::SignatureUrl);
                } else {
                    let l = ui.add_enabled(!local, egui::Label::new("App key"));
                    ui.add_enabled(
                        !local,
                        egui::TextEdit::singleline(&mut self.app_key)
                            .password(true)
                            .desired_width(field_width),
                    )
                    .labelled_by(l.id)
                    .on_hover_text("the secret that signs your join; never saved to disk")
                    .on_disabled_hover_text(remote_hint);
                    ui.end_row();
                }
                error_row(ui, ErrorField::AppKey);
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
    }

    /// The target the form describes, or what to fix first.
    pub fn target(&self) -> Result<JoinTarget, HumanError> {
        let s = &self.settings;
        let server = match s.server.trim() {
            "local" | "" => ServerChoice::Local,
            url if url.starts_with("ws://") || url.starts_with("wss://") => {
                ServerChoice::Url(url.to_owned())
            }
            _ => {
                return Err(invalid(
                    ErrorField::Server,
                    "Type `local` or an address like ws://host:7880.",
                ));
            }
        };
        for (field, name, v) in [
            (ErrorField::Room, "room", &s.room),
            (ErrorField::UserId, "user id", &s.user_id),
        ] {
            if !auth::validate_id(v) {
                return Err(invalid(
                    field,
                    &format!("The {name} takes 1 to 64 letters, digits, _ or -."),
                ));
            }
        }
        if !auth::validate_user_name(&s.user_name) {
            return Err(invalid(ErrorField::Name, "The name is too long."));
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
                return Err(invalid(
                    ErrorField::AppId,
                    "The app id takes 1 to 64 letters, digits, _ or -.",
                ));
            }
            if matches!(&signature, SignatureSource::AppKey(k) if k.is_empty()) {
                return Err(invalid(
                    ErrorField::AppKey,
                    "Type the app key (or choose a signature URL).",
                ));
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

/// A form problem: what to fix, where.
fn invalid(field: ErrorField, sentence: &str) -> HumanError {
    HumanError {
        sentence: sentence.to_owned(),
        field,
        code: crate::protocol::ErrorCode::InvalidParameter,
        detail: sentence.to_owned(),
    }
}

/// One labelled text field row of the form.
fn text_row(ui: &mut egui::Ui, label: &str, value: &mut String, width: f32, hint: &str) {
    let l = ui.label(label).on_hover_text(hint);
    ui.add(egui::TextEdit::singleline(value).desired_width(width))
        .labelled_by(l.id)
        .on_hover_text(hint);
    ui.end_row();
}

/// The human sentence in red, the code and detail behind "Details".
fn error_line(ui: &mut egui::Ui, e: &HumanError, open: &mut bool) {
    ui.add(
        egui::Label::new(egui::RichText::new(&e.sentence).color(egui::Color32::LIGHT_RED)).wrap(),
    );
    let label = if *open { "Hide details" } else { "Details" };
    if ui.small_button(label).clicked() {
        *open = !*open;
    }
    if *open {
        ui.add(egui::Label::new(egui::RichText::new(e.details()).small().monospace()).wrap());
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
        size: egui::vec2(320.0_f32.min(ui.available_width()), 180.0),
        with_volume: false,
        pass,
    });
    ui.horizontal(|ui| {
        ui.label("Microphone");
        ui.add(egui::ProgressBar::new(preview.meter.fraction()).desired_width(160.0))
            .on_hover_text("microphone level: it moves when you speak");
    });
    // The meter moves with the microphone, not only with pictures.
    ui.ctx()
        .request_repaint_after(std::time::Duration::from_millis(50));
}

fn device_picker(ui: &mut egui::Ui, label: &str, picked: &mut String, entries: &[DeviceEntry]) {
    let l = ui.label(label);
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
        })
        .response
        .labelled_by(l.id);
    ui.end_row();
}
