//! Issue 16: snapshots of the real lobby and room widgets, rendered by
//! `egui_kittest` on wgpu (Mesa's lavapipe on CI, as in `.ci/setup.sh`) and
//! compared with `tests/snapshots/*.png` (egui_kittest's default threshold).
//! `UPDATE_SNAPSHOTS=1 cargo test --lib snapshot_tests` rewrites them after
//! an intended change; look at them before committing. Video tiles show their
//! placeholders here (no frames): the Xvfb tests cover the picture path.

use egui::vec2;
use egui_kittest::Harness;

use super::devices::DeviceCatalog;
use super::lobby::Lobby;
use super::render::ObjectFit;
use super::room_view::{self, RoomViewOptions};
use super::session::test_support::{fake_room, peers};
use super::settings::Settings;
use super::stage::Layout;

/// Whether a Vulkan driver is installed (lavapipe: Debian `mesa-vulkan-drivers`,
/// installed by `.ci/setup.sh`). Without one the test is skipped, saying so,
/// except on CI (`CI` set), where that fails: the same rule as `tests/common::skip`.
fn vulkan_or_skip(test: &str) -> bool {
    let has_icd = std::fs::read_dir("/usr/share/vulkan/icd.d")
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    if has_icd {
        return true;
    }
    let reason = "no Vulkan driver (apt-get install mesa-vulkan-drivers libvulkan1)";
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    assert!(!ci, "{test}: {reason}");
    eprintln!("SKIP {test}: {reason}");
    false
}

#[test]
fn lobby_at_800x600() {
    if !vulkan_or_skip("lobby_at_800x600") {
        return;
    }
    let devices = DeviceCatalog::synthetic();
    let mut lobby = Lobby::new(Settings {
        server: "ws://rtc.example:7880".into(),
        app_id: "team-app".into(),
        user_name: "Ada Lovelace".into(),
        ..Settings::default()
    });
    lobby.error = Some(super::error_text::human(
        crate::protocol::ErrorCode::SignatureInvalid,
        "signature invalid",
    ));
    let mut harness = Harness::builder()
        .wgpu()
        .with_size(vec2(800.0, 600.0))
        .build_ui(|ui| {
            lobby.show(ui, &devices, None, 1);
        });
    harness.run_steps(2);
    harness.snapshot("lobby_800x600_wrong_key");
}

fn room(name: &str, w: f32, h: f32, n: usize, layout: Layout, panel: bool) {
    if !vulkan_or_skip(name) {
        return;
    }
    let room = fake_room(
        "Ada Lovelace",
        &peers(
            n - 1,
            "Maximiliane Alexandrine Wolkenstein-Trostburg von Hohenberg-Auer",
        ),
    );
    let devices = DeviceCatalog::synthetic();
    let settings = Settings::default();
    let mut options = RoomViewOptions::new(ObjectFit::Contain, true, false);
    options.stage.layout = layout;
    options.participants_open = panel;
    let mut harness = Harness::builder()
        .wgpu()
        .with_size(vec2(w, h))
        .build_ui(|ui| {
            room_view::show(ui, &room.session, &devices, &settings, &mut options, 1);
        });
    harness.run_steps(3);
    harness.snapshot(name);
}

#[test]
fn room_9_tiles_at_800x600() {
    room("room_9_grid_800x600", 800.0, 600.0, 9, Layout::Grid, false);
}

#[test]
fn room_5_tiles_at_640x480() {
    room("room_5_grid_640x480", 640.0, 480.0, 5, Layout::Grid, false);
}

#[test]
fn room_speaker_layout_with_participants_at_1280x720() {
    room(
        "room_speaker_people_1280x720",
        1280.0,
        720.0,
        6,
        Layout::Speaker,
        true,
    );
}
