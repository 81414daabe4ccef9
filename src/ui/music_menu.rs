//! The room bar's "Music" menu: plays an audio file into what we publish
//! (seed `startAudioMixing` and family), mixed with the microphone or
//! instead of it, with pause, seek, volume and loop, and optionally on our
//! own speaker too.

use std::time::Duration;

use crate::client::{AudioMixOption, AudioMixing};

use super::room_view::RoomAction;

/// What the menu remembers between passes (egui memory).
#[derive(Clone, Default)]
struct Draft {
    path: String,
    replace: bool,
    looping: bool,
    /// Also play it on our speaker (`AudioMixOption::play_locally`).
    play_here: bool,
    volume: u32,
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}

/// Draws the menu button and, when open, its controls.
pub fn show(ui: &mut egui::Ui, mixing: &AudioMixing, actions: &mut Vec<RoomAction>) {
    let label = if mixing.is_playing() {
        "Music ♪"
    } else {
        "Music"
    };
    ui.menu_button(label, |ui| {
        let id = ui.make_persistent_id("music-menu");
        let mut draft = ui.data(|d| d.get_temp::<Draft>(id)).unwrap_or(Draft {
            volume: 100,
            ..Draft::default()
        });
        ui.label("Audio file (WAV, MP3, FLAC, Ogg, AAC/M4A)");
        ui.add(
            egui::TextEdit::singleline(&mut draft.path)
                .hint_text("/path/to/music.mp3")
                .desired_width(260.0),
        );
        ui.checkbox(&mut draft.replace, "instead of my microphone");
        ui.checkbox(&mut draft.looping, "loop");
        ui.checkbox(&mut draft.play_here, "play it on my speaker too");
        ui.horizontal(|ui| {
            if ui.button("Play").clicked() {
                let option = AudioMixOption {
                    replace: draft.replace,
                    loop_forever: draft.looping,
                    play_locally: draft.play_here,
                    ..AudioMixOption::new(draft.path.trim())
                };
                if let Err(e) = mixing.start(option) {
                    actions.push(RoomAction::Notice(format!(
                        "Cannot play that file ({}): {e}",
                        e.seed_code()
                    )));
                }
            }
            let playing = mixing.is_playing();
            let started = mixing.position().is_some();
            if ui
                .add_enabled(
                    started,
                    egui::Button::new(if playing { "Pause" } else { "Resume" }),
                )
                .clicked()
            {
                if playing {
                    mixing.pause();
                } else {
                    mixing.resume();
                }
            }
            if ui.add_enabled(started, egui::Button::new("Stop")).clicked() {
                mixing.stop();
            }
        });
        if ui
            .add(egui::Slider::new(&mut draft.volume, 0..=100).text("volume"))
            .changed()
        {
            mixing.set_volume(draft.volume).ok(); // 0..=100 by the slider
        }
        if let Some(at) = mixing.position() {
            let total = mixing.duration();
            ui.horizontal(|ui| {
                ui.label(format!(
                    "{} / {}",
                    clock(at),
                    total.map_or_else(|| "?".into(), clock)
                ));
                if let Some(total) = total {
                    let mut secs = at.as_secs_f32();
                    let slider =
                        egui::Slider::new(&mut secs, 0.0..=total.as_secs_f32()).show_value(false);
                    if ui.add(slider).drag_stopped() {
                        mixing.set_position(Duration::from_secs_f32(secs)).ok();
                    }
                }
            });
            ui.ctx().request_repaint_after(Duration::from_millis(250));
        }
        ui.data_mut(|d| d.insert_temp(id, draft));
    });
}
