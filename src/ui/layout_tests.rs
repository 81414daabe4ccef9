//! Issue 16 §1, §2, §5, §6, §7: the real lobby and room widgets, drawn
//! headless by `egui_kittest` at small and usual window sizes with 1 to 16
//! tiles and a 64-character name, queried through AccessKit: every control
//! inside the window, no two controls on top of each other, sliders inside
//! their tiles, the count equal to the list.

use egui::{Rect, Role, pos2, vec2};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

use super::devices::DeviceCatalog;
use super::lobby::Lobby;
use super::participants;
use super::render::ObjectFit;
use super::room_view::{self, RoomViewOptions};
use super::session::test_support::{FakePeer, fake_room, peers};
use super::settings::Settings;
use super::stage::Layout;

const SIZES: [(f32, f32); 3] = [(640.0, 480.0), (800.0, 600.0), (1280.0, 720.0)];
const TILE_COUNTS: [usize; 5] = [1, 4, 5, 9, 16];

fn long_name() -> String {
    let name = "Maximiliane Alexandrine Wolkenstein-Trostburg von Hohenberg-Auer";
    assert_eq!(name.chars().count(), 64);
    name.to_owned()
}

/// Rects of every node with one of `roles`, with its label.
fn rects(harness: &Harness<'_>, roles: &[Role]) -> Vec<(String, Rect)> {
    roles
        .iter()
        .flat_map(|role| harness.query_all_by_role(*role))
        .map(|n| {
            let label = n.accesskit_node().label().unwrap_or_default();
            (label, n.rect())
        })
        .collect()
}

fn assert_inside(window: Rect, what: &[(String, Rect)], case: &str) {
    for (label, r) in what {
        assert!(
            window.expand(0.5).contains_rect(*r),
            "{case}: {label:?} at {r:?} is outside the window {window:?}"
        );
    }
}

fn assert_apart(what: &[(String, Rect)], case: &str) {
    for (i, (a, ra)) in what.iter().enumerate() {
        for (b, rb) in &what[i + 1..] {
            let overlap = ra.intersect(*rb);
            assert!(
                !(overlap.width() > 0.5 && overlap.height() > 0.5),
                "{case}: {a:?} {ra:?} overlaps {b:?} {rb:?}"
            );
        }
    }
}

#[test]
fn every_room_control_is_reachable_and_nothing_overlaps() {
    let devices = DeviceCatalog::synthetic();
    let settings = Settings::default();
    for (w, h) in SIZES {
        for n in TILE_COUNTS {
            for layout in [Layout::Grid, Layout::Speaker] {
                let case = format!("{w}x{h}, {n} tiles, {layout:?}");
                let room = fake_room(&long_name(), &peers(n - 1, &long_name()));
                let mut options = RoomViewOptions::new(ObjectFit::Contain, true, false);
                options.stage.layout = layout;
                options.participants_open = n == 9;
                let mut harness = Harness::builder().with_size(vec2(w, h)).build_ui(|ui| {
                    room_view::show(ui, &room.session, &devices, &settings, &mut options, 1);
                });
                harness.run_steps(3);
                let window = Rect::from_min_size(pos2(0.0, 0.0), vec2(w, h));
                let controls = rects(&harness, &[Role::Button, Role::CheckBox, Role::ComboBox]);
                assert!(
                    controls.iter().any(|(l, _)| l == "Leave"),
                    "{case}: no Leave button in {controls:?}"
                );
                for wanted in ["Mute mic", "Stop camera", "Devices", "More"] {
                    assert!(
                        controls.iter().any(|(l, _)| l == wanted),
                        "{case}: no {wanted}"
                    );
                }
                assert_inside(window, &controls, &case);
                let tiles = rects(&harness, &[Role::Figure]);
                assert_eq!(tiles.len(), n, "{case}: tiles {tiles:?}");
                assert_inside(window, &tiles, &case);
                // Toolbar controls apart from each other and from the tiles.
                let mut all = controls.clone();
                all.extend(tiles.iter().cloned());
                assert_apart(&all, &case);
                assert_apart(&tiles, &case);
                // Each volume slider sits inside one tile, in its own corner.
                for (_, slider) in rects(&harness, &[Role::Slider]) {
                    assert!(
                        tiles.iter().any(|(_, t)| t.contains_rect(slider)),
                        "{case}: slider {slider:?} not inside a tile"
                    );
                }
                // The self tile shows the name typed in the lobby.
                assert!(
                    tiles.iter().any(|(l, _)| *l == long_name() && n == 1)
                        || tiles.iter().filter(|(l, _)| *l == long_name()).count() == 2,
                    "{case}: {tiles:?}"
                );
            }
        }
    }
}

#[test]
fn the_count_and_the_list_agree_with_players_included() {
    let mut list = peers(7, "Ann");
    list.push(FakePeer {
        name: "Quiet Watcher".into(),
        publishes: false,
    });
    let room = fake_room("Me", &list);
    let people = participants::roster(&room.session);
    assert_eq!(people.len(), 9, "me + 8 others");
    assert!(
        people
            .iter()
            .any(|p| p.name == "Quiet Watcher" && p.role == crate::client::Role::Player)
    );
    let devices = DeviceCatalog::synthetic();
    let settings = Settings::default();
    let mut options = RoomViewOptions::new(ObjectFit::Contain, true, false);
    options.participants_open = true;
    let mut harness = Harness::builder()
        .with_size(vec2(1280.0, 720.0))
        .build_ui(|ui| {
            room_view::show(ui, &room.session, &devices, &settings, &mut options, 1);
        });
    harness.run_steps(3);
    harness.get_by_role_and_label(Role::Button, "People (9)");
    harness.get_by_label("9 in the room");
    harness.get_by_label("Quiet Watcher");
    // 7 remote tiles + us; the watcher has no tile but is listed.
    assert_eq!(harness.query_all_by_role(Role::Figure).count(), 8);
}

#[test]
fn a_stopped_camera_shows_a_placeholder_and_the_bar_explains_itself() {
    let mut room = fake_room("Me", &peers(1, "Ann"));
    if let Some(local) = &mut room.session.local {
        local.video_muted = true;
    }
    let devices = DeviceCatalog::synthetic();
    let settings = Settings::default();
    let mut options = RoomViewOptions::new(ObjectFit::Contain, true, false);
    let mut harness = Harness::builder()
        .with_size(vec2(1280.0, 720.0))
        .build_ui(|ui| {
            room_view::show(ui, &room.session, &devices, &settings, &mut options, 1);
        });
    harness.run_steps(2);
    harness.get_by_label("Start camera");
    harness.get_by_label("Mic"); // the meter is labelled
    let texts = painted_texts(&harness);
    assert!(texts.iter().any(|t| t == "camera off"), "{texts:?}");
}

/// Texts painted this pass (tile overlays are painted, not widgets).
fn painted_texts(harness: &Harness<'_>) -> Vec<String> {
    harness
        .output()
        .shapes
        .iter()
        .filter_map(|c| match &c.shape {
            egui::Shape::Text(t) => Some(t.galley.text().to_owned()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_long_name_is_cut_with_an_ellipsis_inside_its_tile() {
    let room = fake_room("Me", &peers(8, &long_name()));
    let devices = DeviceCatalog::synthetic();
    let settings = Settings::default();
    let mut options = RoomViewOptions::new(ObjectFit::Contain, true, false);
    let mut harness = Harness::builder()
        .with_size(vec2(800.0, 600.0))
        .build_ui(|ui| {
            room_view::show(ui, &room.session, &devices, &settings, &mut options, 1);
        });
    harness.run_steps(2);
    let tiles = rects(&harness, &[Role::Figure]);
    let shapes = &harness.output().shapes;
    let name = shapes
        .iter()
        .find_map(|c| match &c.shape {
            egui::Shape::Text(t) if t.galley.text().starts_with("Maximiliane") => Some(t),
            _ => None,
        })
        .expect("the long name is painted");
    assert!(
        name.galley.text().ends_with('…') || name.galley.elided,
        "not elided"
    );
    let painted = name.visual_bounding_rect();
    assert!(
        tiles.iter().any(|(_, t)| t.contains_rect(painted)),
        "name {painted:?} not inside any tile {tiles:?}"
    );
}

#[test]
fn the_lobby_join_button_is_reachable_in_small_windows() {
    let devices = DeviceCatalog::synthetic();
    for (w, h) in SIZES {
        let mut lobby = Lobby::new(Settings::default());
        let mut harness = Harness::builder().with_size(vec2(w, h)).build_ui(|ui| {
            lobby.show(ui, &devices, None, 1);
        });
        harness.run_steps(2);
        let window = Rect::from_min_size(pos2(0.0, 0.0), vec2(w, h));
        let join = harness.get_by_role_and_label(Role::Button, "Join").rect();
        assert!(window.contains_rect(join), "{w}x{h}: Join at {join:?}");
        // App id and key are there to be found, even for the built-in server.
        harness.get_by_label("App id");
        harness.get_by_label("App key");
        let buttons = rects(&harness, &[Role::Button]);
        assert_inside(window, &buttons, &format!("lobby {w}x{h}"));
    }
}

#[test]
fn a_long_error_wraps_and_leaves_every_button_in_the_window() {
    let long = format!(
        "The connection to the server was lost. {}",
        "Everything here is a very long explanation of what happened. ".repeat(6)
    );
    let devices = DeviceCatalog::synthetic();
    let settings = Settings::default();
    for (w, h) in SIZES {
        let mut room = fake_room("Me", &peers(3, "Ann"));
        room.session.phase = super::session::Phase::Disconnected(long.clone());
        let mut options = RoomViewOptions::new(ObjectFit::Contain, true, false);
        let mut harness = Harness::builder().with_size(vec2(w, h)).build_ui(|ui| {
            room_view::show(ui, &room.session, &devices, &settings, &mut options, 1);
        });
        harness.run_steps(3);
        let window = Rect::from_min_size(pos2(0.0, 0.0), vec2(w, h));
        let controls = rects(&harness, &[Role::Button, Role::CheckBox]);
        for wanted in ["Leave", "Rejoin", "Devices"] {
            assert!(
                controls.iter().any(|(l, _)| l == wanted),
                "{w}x{h}: {wanted}"
            );
        }
        assert_inside(window, &controls, &format!("{w}x{h} long error"));
        assert_inside(
            window,
            &[("status".into(), harness.get_by_label(&long).rect())],
            &format!("{w}x{h} status"),
        );
    }
}

#[test]
fn the_kiosk_shows_the_human_line_once() {
    let failure = super::error_text::human(
        crate::protocol::ErrorCode::WebsocketConnectError,
        "websocket connect error: IO error: Connection refused (os error 111)",
    );
    let mut room = fake_room("Kiosk", &[]);
    room.session.local = None;
    room.session.phase = super::session::Phase::Failed(failure.sentence.clone());
    let devices = DeviceCatalog::synthetic();
    let settings = Settings::default();
    let mut options = RoomViewOptions::new(ObjectFit::Contain, false, true);
    let mut harness = Harness::builder()
        .with_size(vec2(1280.0, 720.0))
        .build_ui(|ui| {
            room_view::show(ui, &room.session, &devices, &settings, &mut options, 1);
        });
    harness.run_steps(2);
    let lines: Vec<_> = harness
        .query_all_by_label_contains("Cannot reach the server")
        .collect();
    assert_eq!(lines.len(), 1, "shown once");
    assert!(
        harness.query_by_label_contains("90100016").is_none(),
        "no raw code"
    );
    assert!(
        harness.query_by_label_contains("os error").is_none(),
        "no raw detail"
    );
    assert!(
        harness.query_all_by_role(Role::Button).next().is_none(),
        "no controls"
    );
    drop(harness);
    // While it joins again, the same line stays (no flicker to "Joining…").
    room.session.phase = super::session::Phase::Joining;
    options.retry_note = Some(failure.sentence.clone());
    let mut harness = Harness::builder()
        .with_size(vec2(1280.0, 720.0))
        .build_ui(|ui| {
            room_view::show(ui, &room.session, &devices, &settings, &mut options, 1);
        });
    harness.run_steps(2);
    assert_eq!(
        harness
            .query_all_by_label_contains("Cannot reach the server")
            .count(),
        1
    );
}
