//! The participants panel: everyone in the room, players (watch only)
//! included, with role, mute states, network mark and speaking mark. The
//! toolbar's count is the length of the same list, so they always agree
//! (issue 16 §5).

use crate::client::Role;

use super::room_view::RoomAction;
use super::session::{Phase, RoomSession};
use super::widgets::NetMark;

/// Whether someone sends a kind of media, and muted or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaState {
    /// Sending, not muted.
    On,
    /// Sending, muted.
    Muted,
    /// Not sending this kind (a player, or a video-only stream).
    Absent,
}

/// One row of the panel.
#[derive(Debug, Clone, PartialEq)]
pub struct Participant {
    /// User id.
    pub user_id: String,
    /// Display name (the user id when empty).
    pub name: String,
    /// Joiner or player.
    pub role: Role,
    /// This is us.
    pub is_me: bool,
    /// Microphone.
    pub audio: MediaState,
    /// Camera.
    pub video: MediaState,
    /// Receive figures of their video (remote only).
    pub net: Option<NetMark>,
    /// Speaking now (the same detector as the tiles).
    pub speaking: bool,
}

fn state(sends: bool, muted: bool) -> MediaState {
    match (sends, muted) {
        (false, _) => MediaState::Absent,
        (true, true) => MediaState::Muted,
        (true, false) => MediaState::On,
    }
}

/// Everyone in the room: us first, then the others by name.
pub fn roster(session: &RoomSession) -> Vec<Participant> {
    let me = session.me();
    let mut list = vec![Participant {
        user_id: me.0.clone(),
        name: session.my_name().to_owned(),
        role: session.role,
        is_me: true,
        audio: session
            .local
            .as_ref()
            .map_or(MediaState::Absent, |l| state(true, l.audio_muted)),
        video: session
            .local
            .as_ref()
            .map_or(MediaState::Absent, |l| state(true, l.video_muted)),
        // Our uplink's quality, once known.
        net: session
            .network_quality
            .map(|q| NetMark::default().with_quality(Some(q.0)))
            .filter(|m| m.quality.is_some()),
        speaking: session.speaking.is_speaking(&me.0),
    }];
    let mut others: Vec<Participant> = session
        .users
        .values()
        .filter(|u| u.user_id != *me)
        .map(|u| {
            let streams: Vec<_> = session
                .streams
                .values()
                .filter(|s| s.user_id == u.user_id)
                .collect();
            let audio = streams
                .iter()
                .find(|s| s.audio)
                .map_or(MediaState::Absent, |s| state(true, s.audio_muted));
            let video = streams
                .iter()
                .find(|s| s.video.is_some())
                .map_or(MediaState::Absent, |s| state(true, s.video_muted));
            let net = session
                .tiles
                .values()
                .find(|t| t.info.user_id == u.user_id)
                .and_then(|t| t.mark)
                .map(|m| m.with_quality(session.network_quality.map(|q| q.1)));
            Participant {
                user_id: u.user_id.0.clone(),
                name: session.name_of(&u.user_id).to_owned(),
                role: u.role,
                is_me: false,
                audio,
                video,
                net,
                speaking: session.speaking.is_speaking(&u.user_id.0),
            }
        })
        .collect();
    others.sort_by_key(|p| p.name.to_lowercase());
    list.extend(others);
    list
}

/// Draws the panel's contents (the caller owns the side panel); renaming
/// ourselves is an action.
pub fn show(
    ui: &mut egui::Ui,
    session: &RoomSession,
    people: &[Participant],
    actions: &mut Vec<RoomAction>,
) {
    ui.heading(format!("People ({})", people.len()));
    if matches!(session.phase, Phase::Joined) {
        name_field(ui, session, actions);
    }
    ui.separator();
    egui::ScrollArea::vertical()
        .auto_shrink(false)
        .show(ui, |ui| {
            for p in people {
                row(ui, p);
            }
        });
}

fn row(ui: &mut egui::Ui, p: &Participant) {
    ui.horizontal(|ui| {
        let (dot, hint) = if p.speaking {
            (egui::Color32::from_rgb(60, 200, 90), "speaking")
        } else {
            (egui::Color32::from_gray(70), "not speaking")
        };
        let (rect, _) = ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
        ui.painter().circle_filled(rect.center(), 4.0, dot);
        let mut name = p.name.clone();
        if p.is_me {
            name.push_str(" (you)");
        }
        ui.add(egui::Label::new(name).truncate())
            .on_hover_text(format!("user id {} · {hint}", p.user_id));
    });
    ui.horizontal_wrapped(|ui| {
        ui.add_space(14.0);
        let role = match p.role {
            Role::Joiner => "on stage",
            Role::Player => "watching",
        };
        ui.weak(role);
        for (what, s) in [("mic", p.audio), ("cam", p.video)] {
            match s {
                MediaState::On => {
                    ui.small(format!("{what} on"));
                }
                MediaState::Muted => {
                    ui.colored_label(egui::Color32::LIGHT_RED, format!("{what} off"));
                }
                MediaState::Absent => {}
            }
        }
        if let Some(net) = p.net {
            let (text, colour) = match net.bars() {
                3 => ("network good", egui::Color32::from_rgb(60, 200, 90)),
                2 => ("network fair", egui::Color32::from_rgb(230, 180, 40)),
                1 => ("network poor", egui::Color32::LIGHT_RED),
                _ => ("disconnected", egui::Color32::LIGHT_RED),
            };
            ui.colored_label(colour, text).on_hover_text(net.text());
        }
    });
    ui.add_space(4.0);
}

/// Our name, editable: Enter asks the room to rename us. The draft lives in
/// egui's memory while the field has focus and follows the room's name otherwise.
fn name_field(ui: &mut egui::Ui, session: &RoomSession, actions: &mut Vec<RoomAction>) {
    let id = ui.make_persistent_id("my-name");
    let mut draft = ui
        .data(|d| d.get_temp::<String>(id))
        .unwrap_or_else(|| session.my_name().to_owned());
    let label = ui.label("Your name");
    let response = ui
        .add(
            egui::TextEdit::singleline(&mut draft)
                .id(id.with("edit"))
                .desired_width(ui.available_width().min(220.0))
                .char_limit(crate::auth::MAX_USER_NAME_LEN),
        )
        .labelled_by(label.id)
        .on_hover_text("Enter to change it");
    if response.lost_focus() {
        if ui.input(|i| i.key_pressed(egui::Key::Enter)) {
            actions.push(RoomAction::Rename(draft.trim().to_owned()));
        }
        ui.data_mut(|d| d.remove::<String>(id));
    } else if response.has_focus() {
        ui.data_mut(|d| d.insert_temp(id, draft));
    }
}
