//! The console screen (`huddle --console`): the program monitor (big), the
//! sources (small, with tally marks, profile and level), the layout
//! picker, the host's own camera and microphone, and the participants with
//! Remove / Dismiss.
//!
//! Taking a source follows the chosen layout: single puts it on air at
//! once; side by side and 2×2 add it to (or take it from) what is on air,
//! and send once the pick fits the layout (two, or one to four).

use std::sync::Arc;

use egui::{Color32, RichText, Stroke, StrokeKind, vec2};

use crate::client::{Program, ProgramLayout, Role, StreamId, VideoSlot};
use crate::media::VIDEO_PROFILES;
use crate::protocol::VideoInfo;
use crate::ui::devices::DeviceCatalog;
use crate::ui::participants;
use crate::ui::room_view::{RoomAction, RoomViewOptions};
use crate::ui::session::{DirectorAction, Phase, RoomSession};
use crate::ui::settings::Settings;
use crate::ui::stage::{LOCAL_KEY, TILE_ASPECT};
use crate::ui::widgets::VideoTile;

use super::program_view;

/// Red of the on-air tally.
const ON_AIR: Color32 = Color32::from_rgb(220, 40, 40);
/// Amber of a source picked for a layout that is not complete yet.
const CUED: Color32 = Color32::from_rgb(230, 170, 30);
/// Height of a source's picture in the strip.
const SOURCE_H: f32 = 72.0;

/// What the console keeps between passes.
#[derive(Debug, Clone)]
pub struct ConsoleState {
    /// The layout the next take goes to.
    pub layout: ProgramLayout,
    /// Sources picked for side by side / 2×2 that do not fill it yet.
    pub picks: Vec<StreamId>,
    /// "Dismiss room" was clicked once: ask again.
    pub confirm_dismiss: bool,
}

impl Default for ConsoleState {
    /// One source at a time, nothing picked.
    fn default() -> Self {
        Self {
            layout: ProgramLayout::Single,
            picks: Vec::new(),
            confirm_dismiss: false,
        }
    }
}

impl ConsoleState {
    /// The program a click on `source` asks for, if it is complete.
    pub fn take(&mut self, on_air: &Program, source: StreamId) -> Option<Program> {
        let layout = self.layout;
        match layout {
            ProgramLayout::Off => None,
            ProgramLayout::Single => Some(Program::single(source)),
            ProgramLayout::SideBySide | ProgramLayout::Quad => {
                let mut picks = if self.picks.is_empty() && on_air.layout == layout {
                    on_air.streams.clone()
                } else {
                    std::mem::take(&mut self.picks)
                };
                if let Some(i) = picks.iter().position(|s| *s == source) {
                    picks.remove(i);
                } else {
                    picks.push(source);
                    // The oldest pick makes room.
                    while picks.len() > layout.capacity() {
                        picks.remove(0);
                    }
                }
                if layout.accepts(picks.len()) {
                    self.picks.clear();
                    Some(Program {
                        layout,
                        streams: picks,
                    })
                } else {
                    self.picks = picks;
                    None
                }
            }
        }
    }
}

/// One source of the strip, from plain data.
struct Source<'a> {
    id: StreamId,
    key: u64,
    name: &'a str,
    slot: Option<&'a Arc<VideoSlot>>,
    profile: String,
    /// 0..=1 on a dB scale (the toolbar meter's).
    level: f32,
    audio_muted: bool,
    video_muted: bool,
}

/// A stream's video profile (seed Table 3-10) with its size and rate; the
/// size and rate alone when no row matches (a screen profile, Table 3-11).
pub fn profile_of(video: Option<VideoInfo>) -> String {
    match video {
        None => "audio only".to_owned(),
        Some(v) => VIDEO_PROFILES
            .iter()
            .find(|p| p.width == v.width && p.height == v.height && p.frame_rate == v.frame_rate)
            .map_or_else(
                || format!("{}x{} {} fps", v.width, v.height, v.frame_rate),
                |p| format!("{} · {}x{} {} fps", p.name, v.width, v.height, v.frame_rate),
            ),
    }
}

/// An RMS level as the meters show it: −60 dB..0 dB over 0..1.
fn meter(level: f32) -> f32 {
    if level <= 0.0 {
        0.0
    } else {
        ((20.0 * level.log10() + 60.0) / 60.0).clamp(0.0, 1.0)
    }
}

/// Every source: the remote streams by id, then ours once published.
fn sources(session: &RoomSession) -> Vec<Source<'_>> {
    let mut out: Vec<Source<'_>> = session
        .tiles
        .iter()
        .map(|(id, t)| Source {
            id: *id,
            key: id.0.wrapping_add(1),
            name: session.name_of(&t.info.user_id),
            slot: t.info.video.map(|_| t.stream.video()),
            profile: profile_of(t.info.video),
            level: if t.info.audio_muted {
                0.0
            } else {
                meter(t.level())
            },
            audio_muted: t.info.audio_muted,
            video_muted: t.info.video_muted,
        })
        .collect();
    if let Some(local) = &session.local
        && let Some(id) = local.stream_id
    {
        let (video, audio) = local.profiles();
        out.push(Source {
            id,
            key: LOCAL_KEY,
            name: session.my_name(),
            slot: Some(&local.slot),
            profile: format!(
                "{} · {}x{} {} fps · {}",
                video.name, video.width, video.height, video.frame_rate, audio.name
            ),
            level: if local.audio_muted {
                0.0
            } else {
                local.meter.fraction()
            },
            audio_muted: local.audio_muted,
            video_muted: local.video_muted,
        });
    }
    out
}

/// Draws the console; returns what the host did.
pub fn show(
    ui: &mut egui::Ui,
    session: &RoomSession,
    devices: &DeviceCatalog,
    settings: &Settings,
    options: &mut RoomViewOptions,
    console: &mut ConsoleState,
    pass: u64,
) -> Vec<RoomAction> {
    let mut actions = Vec::new();
    let on_air = session.program.program.clone();
    egui::Panel::top("console-bar").show(ui, |ui| {
        top_bar(ui, session, console, &on_air, &mut actions);
    });
    let people = participants::roster(session);
    let width = (ui.available_width() * 0.3).clamp(150.0, 240.0);
    egui::Panel::right("console-people")
        .resizable(false)
        .default_size(width)
        .show(ui, |ui| {
            people_panel(ui, session, &people, console, &mut actions);
        });
    egui::Panel::bottom("console-sources").show(ui, |ui| {
        ui.add_space(4.0);
        ui.horizontal_wrapped(|ui| {
            super::super::toolbar::media_buttons(ui, session, options, &mut actions);
            super::super::toolbar::device_menu(ui, session, devices, settings, &mut actions);
            if let Some(mixing) = session.local.as_ref().and_then(|l| l.mixing.as_ref()) {
                super::super::music_menu::show(ui, mixing, &mut actions);
            }
        });
        ui.add_space(2.0);
        egui::ScrollArea::horizontal()
            .id_salt("console-source-strip")
            .show(ui, |ui| {
                ui.horizontal(|ui| {
                    for source in sources(session) {
                        source_card(ui, source, &on_air, console, pass, &mut actions);
                    }
                    if session.tiles.is_empty() && session.local.is_none() {
                        ui.weak("No sources yet: nobody publishes.");
                    }
                });
            });
        ui.add_space(4.0);
    });
    egui::CentralPanel::default()
        .frame(
            egui::Frame::new()
                .fill(Color32::from_gray(12))
                .inner_margin(6.0),
        )
        .show(ui, |ui| {
            let head = if on_air.is_off() {
                "PROGRAM · off air".to_owned()
            } else {
                format!("PROGRAM · {}", layout_name(on_air.layout))
            };
            ui.label(RichText::new(head).color(ON_AIR).strong());
            let area = ui.available_rect_before_wrap();
            if on_air.is_off() {
                ui.centered_and_justified(|ui| {
                    ui.add(egui::Label::new("Nothing on air: take a source below.").wrap());
                });
            } else {
                program_view::show(ui, session, &on_air, area, options.fit, pass);
            }
        });
    actions
}

/// The console's name for a layout.
pub fn layout_name(layout: ProgramLayout) -> &'static str {
    match layout {
        ProgramLayout::Off => "Off air",
        ProgramLayout::Single => "Single",
        ProgramLayout::SideBySide => "Side by side",
        ProgramLayout::Quad => "2×2",
    }
}

fn top_bar(
    ui: &mut egui::Ui,
    session: &RoomSession,
    console: &mut ConsoleState,
    on_air: &Program,
    actions: &mut Vec<RoomAction>,
) {
    ui.add_space(4.0);
    ui.horizontal_wrapped(|ui| {
        ui.strong("Broadcast console");
        ui.separator();
        ui.label("Layout:");
        for layout in [
            ProgramLayout::Single,
            ProgramLayout::SideBySide,
            ProgramLayout::Quad,
        ] {
            if ui
                .selectable_label(console.layout == layout, layout_name(layout))
                .clicked()
            {
                console.layout = layout;
                console.picks.clear();
            }
        }
        if ui
            .add_enabled(!on_air.is_off(), egui::Button::new("Off air"))
            .on_hover_text("take everything off air: kiosks show the whole room")
            .clicked()
        {
            console.picks.clear();
            actions.push(RoomAction::Direct(DirectorAction::SetProgram(
                Program::off(),
            )));
        }
        ui.separator();
        if !console.picks.is_empty() {
            let need = console
                .layout
                .capacity()
                .saturating_sub(console.picks.len());
            ui.label(RichText::new(format!("pick {need} more")).color(CUED));
        }
        let (text, colour) = match (&session.phase, session.program.director) {
            (Phase::Joined, true) => ("Director".to_owned(), Color32::from_rgb(90, 200, 120)),
            (Phase::Joined, false) => ("Not a director: changes will be refused".to_owned(), CUED),
            (Phase::Joining, _) => ("Joining…".to_owned(), Color32::GRAY),
            (Phase::Failed(e) | Phase::Disconnected(e), _) => (e.clone(), ON_AIR),
        };
        ui.add(egui::Label::new(RichText::new(text).color(colour)).wrap());
        if matches!(session.phase, Phase::Failed(_) | Phase::Disconnected(_))
            && ui.button("Rejoin").clicked()
        {
            actions.push(RoomAction::Rejoin);
        }
        if ui.button("Leave").clicked() {
            actions.push(RoomAction::Leave);
        }
    });
    if let Some(refusal) = &session.program.refusal {
        let line = match &refusal.details {
            Some(details) => format!("{} ({details})", refusal.text),
            None => refusal.text.clone(),
        };
        ui.add(egui::Label::new(RichText::new(line).color(ON_AIR)).wrap());
    }
    ui.add_space(2.0);
}

fn source_card(
    ui: &mut egui::Ui,
    source: Source<'_>,
    on_air: &Program,
    console: &mut ConsoleState,
    pass: u64,
    actions: &mut Vec<RoomAction>,
) {
    let live = on_air.is_on_air(source.id);
    let cued = console.picks.contains(&source.id);
    let width = SOURCE_H * TILE_ASPECT;
    ui.vertical(|ui| {
        ui.set_width(width);
        let tile = VideoTile {
            key: source.key,
            slot: source.slot,
            label: source.name,
            note: None,
            audio_muted: source.audio_muted,
            video_muted: source.video_muted,
            interrupted: false,
            speaking: false,
            net: None,
            fit: crate::ui::render::ObjectFit::Contain,
            mirror: false,
            size: vec2(width, SOURCE_H),
            with_volume: false,
            pass,
        };
        let response = ui.add(tile).on_hover_text(if live {
            "on air"
        } else {
            "click to put on air"
        });
        // The tally: red on air, amber picked for an incomplete layout.
        let tally = if live {
            Some(ON_AIR)
        } else if cued {
            Some(CUED)
        } else {
            None
        };
        if let Some(colour) = tally {
            ui.painter().rect_stroke(
                response.rect,
                3.0,
                Stroke::new(3.0, colour),
                StrokeKind::Inside,
            );
        }
        if response.clicked()
            && let Some(program) = console.take(on_air, source.id)
        {
            actions.push(RoomAction::Direct(DirectorAction::SetProgram(program)));
        }
        let state = if live {
            RichText::new("ON AIR").color(ON_AIR).strong()
        } else if cued {
            RichText::new("CUED").color(CUED)
        } else {
            RichText::new("preview").weak()
        };
        ui.add(egui::Label::new(state).truncate());
        ui.add(egui::Label::new(RichText::new(&source.profile).small()).truncate());
        ui.add(
            egui::ProgressBar::new(source.level)
                .desired_width(width)
                .desired_height(6.0),
        )
        .on_hover_text("audio level");
    });
}

fn people_panel(
    ui: &mut egui::Ui,
    session: &RoomSession,
    people: &[participants::Participant],
    console: &mut ConsoleState,
    actions: &mut Vec<RoomAction>,
) {
    ui.add_space(4.0);
    ui.strong(format!("Participants ({})", people.len()));
    ui.separator();
    let director = session.program.director && matches!(session.phase, Phase::Joined);
    egui::ScrollArea::vertical()
        .id_salt("console-people-list")
        .auto_shrink([false, true])
        .max_height((ui.available_height() - 64.0).max(40.0))
        .show(ui, |ui| {
            for p in people {
                ui.horizontal(|ui| {
                    let role = match p.role {
                        Role::Joiner => "on stage",
                        Role::Player => "audience",
                    };
                    if !p.is_me {
                        let remove = ui
                            .add_enabled(director, egui::Button::new("Remove").small())
                            .on_hover_text(format!("remove {} from the room", p.name));
                        if remove.clicked() {
                            actions.push(RoomAction::Direct(DirectorAction::RemoveUser(
                                crate::client::UserId(p.user_id.clone()),
                            )));
                        }
                    }
                    let name = if p.is_me {
                        format!("{} (you)", p.name)
                    } else {
                        p.name.clone()
                    };
                    ui.add(egui::Label::new(format!("{name} · {role}")).truncate());
                });
            }
        });
    ui.separator();
    if console.confirm_dismiss {
        ui.label("End the show for everyone?");
        ui.horizontal(|ui| {
            if ui.button("Dismiss now").clicked() {
                console.confirm_dismiss = false;
                actions.push(RoomAction::Direct(DirectorAction::DismissRoom));
            }
            if ui.button("Cancel").clicked() {
                console.confirm_dismiss = false;
            }
        });
    } else if ui
        .add_enabled(director, egui::Button::new("Dismiss room"))
        .on_hover_text("end the room: everyone leaves (reason 10)")
        .clicked()
    {
        console.confirm_dismiss = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_follow_the_chosen_layout() {
        let (a, b, c) = (StreamId(1), StreamId(2), StreamId(3));
        let mut console = ConsoleState {
            layout: ProgramLayout::Single,
            ..Default::default()
        };
        let off = Program::off();
        assert_eq!(console.take(&off, a), Some(Program::single(a)));
        console.layout = ProgramLayout::SideBySide;
        // One pick is not a pair yet; the second completes it.
        assert_eq!(console.take(&off, a), None);
        assert_eq!(console.picks, vec![a]);
        let pair = console.take(&off, b).unwrap();
        assert_eq!(pair.streams, vec![a, b]);
        assert!(console.picks.is_empty());
        // On air side by side: a third source replaces the oldest.
        assert_eq!(console.take(&pair, c).unwrap().streams, vec![b, c]);
        console.layout = ProgramLayout::Quad;
        let one = console.take(&off, c).unwrap();
        assert_eq!(one.streams, vec![c]);
        let two = console.take(&one, a).unwrap();
        assert_eq!(two.streams, vec![c, a]);
        // Clicking an on-air source of a 2×2 takes it out.
        assert_eq!(console.take(&two, c).unwrap().streams, vec![a]);
    }

    #[test]
    fn profiles_are_named_from_the_seed_table() {
        let v = |width, height, frame_rate| {
            Some(VideoInfo {
                width,
                height,
                frame_rate,
            })
        };
        assert_eq!(profile_of(v(480, 360, 15)), "360p_2 · 480x360 15 fps");
        assert_eq!(profile_of(v(1920, 1080, 5)), "1920x1080 5 fps");
        assert_eq!(profile_of(None), "audio only");
    }
}
