//! Issue 16, "what users expect": the active-speaker layout follows who
//! speaks, a click pins a tile (spotlight) and Esc unpins it, the self view
//! floats as a thumbnail, keyboard shortcuts and push-to-talk act only
//! outside text fields, F1 opens the shortcut list and About names the
//! version. Drawn headless with `egui_kittest` on fake rooms.

use std::time::{Duration, Instant};

use egui::{Key, Rect, Role, vec2};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

use super::devices::DeviceCatalog;
use super::render::ObjectFit;
use super::room_view::{self, RoomAction, RoomViewOptions};
use super::session::SessionAction;
use super::session::test_support::{FakeRoom, fake_room, peers};
use super::settings::Settings;
use super::shortcuts::Overlays;
use super::stage::Layout;

struct View {
    room: FakeRoom,
    options: RoomViewOptions,
    actions: Vec<RoomAction>,
}

fn harness(room: FakeRoom, options: RoomViewOptions) -> Harness<'static, View> {
    let devices = DeviceCatalog::synthetic();
    let settings = Settings::default();
    Harness::builder()
        .with_size(vec2(1280.0, 720.0))
        .build_ui_state(
            move |ui, view: &mut View| {
                let actions = room_view::show(
                    ui,
                    &view.room.session,
                    &devices,
                    &settings,
                    &mut view.options,
                    1,
                );
                view.actions.extend(actions);
            },
            View {
                room,
                options,
                actions: Vec::new(),
            },
        )
}

fn tile(harness: &Harness<'_, View>, name: &str) -> Rect {
    harness.get_by_role_and_label(Role::Figure, name).rect()
}

fn largest(harness: &Harness<'_, View>) -> String {
    harness
        .query_all_by_role(Role::Figure)
        .max_by(|a, b| a.rect().area().total_cmp(&b.rect().area()))
        .and_then(|n| n.accesskit_node().label())
        .unwrap_or_default()
}

#[test]
fn the_speaker_layout_shows_who_speaks_and_a_click_pins() {
    let mut room = fake_room("Me", &peers(4, "Ann"));
    // Peer 3 (user2) speaks for a while; nobody else does.
    let t0 = Instant::now();
    for i in 0..20 {
        let t = t0 + Duration::from_millis(20 * i);
        room.session.speaking.feed("user2", 0.2, t);
        room.session.speaking.feed("user1", 0.0, t);
    }
    let mut options = RoomViewOptions::new(ObjectFit::Contain, true, false);
    options.stage.layout = Layout::Speaker;
    let mut h = harness(room, options);
    h.run_steps(2);
    assert_eq!(largest(&h), "Peer 3");
    let big = tile(&h, "Peer 3");
    let small = tile(&h, "Peer 2");
    assert!(big.area() > 4.0 * small.area(), "{big:?} vs {small:?}");
    assert!(
        small.top() > big.bottom(),
        "the filmstrip is below the speaker"
    );
    // Pin Peer 4: it takes the large place though Peer 3 speaks.
    h.get_by_role_and_label(Role::Figure, "Peer 4").click();
    h.run_steps(2);
    assert_eq!(largest(&h), "Peer 4");
    // Esc unpins.
    h.key_press(Key::Escape);
    h.run_steps(2);
    assert_eq!(largest(&h), "Peer 3");
    // In the grid, a pin is a spotlight too; without one all are equal.
    h.state_mut().options.stage.layout = Layout::Grid;
    h.run_steps(2);
    let a = tile(&h, "Peer 3");
    let b = tile(&h, "Peer 2");
    assert!((a.area() - b.area()).abs() < 1.0, "grid tiles are equal");
    h.get_by_role_and_label(Role::Figure, "Ann").click();
    h.run_steps(2);
    assert_eq!(largest(&h), "Ann");
}

#[test]
fn the_self_view_floats_as_a_thumbnail() {
    let room = fake_room("Me", &peers(3, "Ann"));
    let mut options = RoomViewOptions::new(ObjectFit::Contain, true, false);
    options.stage.self_thumbnail = true;
    let mut h = harness(room, options);
    h.run_steps(3);
    let me = tile(&h, "Me");
    let peer = tile(&h, "Ann");
    assert!((me.width() - 224.0).abs() < 1.0, "{me:?}");
    assert!(peer.width() > 2.0 * me.width());
    // The three others share the grid: 3 tiles in a row on 1280×720 or 2×2.
    assert_eq!(h.query_all_by_role(Role::Figure).count(), 4);
}

#[test]
fn shortcuts_and_push_to_talk_act_only_outside_text_fields() {
    let mut room = fake_room("Me", &peers(1, "Ann"));
    if let Some(local) = &mut room.session.local {
        local.audio_muted = true;
    }
    let options = RoomViewOptions::new(ObjectFit::Contain, true, false);
    let mut h = harness(room, options);
    h.run_steps(2);
    h.key_press(Key::M);
    h.run_steps(1);
    assert!(
        h.state()
            .actions
            .contains(&RoomAction::Session(SessionAction::ToggleMic))
    );
    h.key_press(Key::L);
    h.key_press(Key::P);
    h.run_steps(1);
    assert_eq!(h.state().options.stage.layout, Layout::Speaker);
    assert!(h.state().options.participants_open);
    h.key_press(Key::F11);
    h.key_press_modifiers(egui::Modifiers::COMMAND, Key::W);
    h.run_steps(1);
    assert!(h.state().actions.contains(&RoomAction::ToggleFullscreen));
    assert!(h.state().actions.contains(&RoomAction::Leave));
    // Push-to-talk: Space held unmutes, released mutes again.
    h.state_mut().actions.clear();
    h.key_down(Key::Space);
    h.run_steps(1);
    assert_eq!(
        h.state().actions,
        vec![RoomAction::Session(SessionAction::SetMicMuted(false))]
    );
    h.key_up(Key::Space);
    h.run_steps(1);
    assert_eq!(
        h.state().actions.last(),
        Some(&RoomAction::Session(SessionAction::SetMicMuted(true)))
    );
    // Typing a name in the participants panel mutes nobody.
    assert!(h.state().options.participants_open);
    h.get_by_label("Your name").click();
    h.run_steps(1);
    assert!(
        h.get_by_label("Your name").is_focused(),
        "the name field has the keyboard"
    );
    h.state_mut().actions.clear();
    h.get_by_label("Your name").type_text("m");
    h.key_press(Key::M);
    h.run_steps(2);
    assert!(
        !h.state()
            .actions
            .iter()
            .any(|a| matches!(a, RoomAction::Session(_))),
        "{:?}",
        h.state().actions
    );
    assert!(h.get_by_label("Your name").is_focused());
}

#[test]
fn f1_lists_the_shortcuts_and_about_names_the_version() {
    let mut h = Harness::builder()
        .with_size(vec2(800.0, 600.0))
        .build_ui_state(
            |ui, overlays: &mut Overlays| {
                overlays.keys(ui.ctx());
                overlays.show(ui.ctx());
            },
            Overlays::default(),
        );
    h.run_steps(1);
    assert!(h.query_by_label("Keyboard shortcuts").is_none());
    h.key_press(Key::F1);
    h.run_steps(2);
    h.get_by_label("Keyboard shortcuts");
    h.get_by_label("talk while muted (push-to-talk)");
    h.key_press(Key::Escape);
    h.run_steps(2);
    assert!(h.query_by_label("Keyboard shortcuts").is_none());
    h.state_mut().about = true;
    h.run_steps(2);
    h.get_by_label(&format!("huddle {}", crate::VERSION));
}
