//! Issue 14 §3 in the room view, headless (`egui_kittest`, fake rooms): a
//! remote screen share takes the large tile in the grid layout and a pinned
//! tile still wins; the bar offers "Share screen" to a publisher (not to a
//! watcher) and "Stop sharing" while we share.

use egui::{Role, vec2};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

use super::devices::DeviceCatalog;
use super::render::ObjectFit;
use super::room_view::{self, RoomAction, RoomViewOptions};
use super::screen_share::ShareState;
use super::session::test_support::{FakeRoom, fake_room, peers};
use super::settings::Settings;
use crate::client::StreamId;

struct View {
    room: FakeRoom,
    options: RoomViewOptions,
    actions: Vec<RoomAction>,
}

fn harness(room: FakeRoom) -> Harness<'static, View> {
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
                options: RoomViewOptions::new(ObjectFit::Cover, true, false),
                actions: Vec::new(),
            },
        )
}

fn largest(harness: &Harness<'_, View>) -> String {
    harness
        .query_all_by_role(Role::Figure)
        .max_by(|a, b| a.rect().area().total_cmp(&b.rect().area()))
        .and_then(|n| n.accesskit_node().label())
        .unwrap_or_default()
}

/// Marks `stream` of the fake room as a screen share.
fn share(room: &mut FakeRoom, stream: u64) {
    let id = StreamId(stream);
    if let Some(tile) = room.session.tiles.get_mut(&id) {
        tile.info.is_screen = true;
    }
    if let Some(info) = room.session.streams.get_mut(&id) {
        info.is_screen = true;
    }
}

#[test]
fn a_remote_share_takes_the_large_tile_unless_one_is_pinned() {
    let mut room = fake_room("Me", &peers(3, "Ann"));
    share(&mut room, 2); // Peer 2 shares
    let mut h = harness(room);
    h.run_steps(2);
    assert_eq!(
        largest(&h),
        "Peer 2",
        "the grid layout gives way to a share"
    );
    let tiles = h.query_all_by_role(Role::Figure).count();
    assert_eq!(tiles, 4, "Ann, Peer 2, Peer 3 and me");
    h.get_by_role_and_label(Role::Figure, "Peer 3").click();
    h.run_steps(2);
    assert_eq!(largest(&h), "Peer 3", "a pinned tile wins over the share");
}

#[test]
fn the_bar_offers_sharing_to_publishers_and_stopping_while_sharing() {
    let mut h = harness(fake_room("Me", &peers(1, "Ann")));
    h.run_steps(2);
    assert!(h.query_by_label("Share screen").is_some());
    assert!(h.query_by_label("Stop sharing").is_none());
    h.state_mut().room.session.screen_share.state = ShareState::Sharing {
        stream_id: StreamId(77),
        label: "Window: notes".into(),
    };
    h.run_steps(2);
    assert!(h.query_by_label("Share screen").is_none());
    h.get_by_label("Stop sharing").click();
    h.run_steps(2);
    assert!(
        h.state().actions.contains(&RoomAction::StopScreenShare),
        "{:?}",
        h.state().actions
    );

    // A watcher publishes nothing and has nothing to share.
    let mut room = fake_room("Me", &peers(1, "Ann"));
    room.session.local = None;
    let mut h = harness(room);
    h.run_steps(2);
    assert!(h.query_by_label("Share screen").is_none());
}

/// Issue 14 §3 (seed `bindScreenAudio2RelatedStream`): the menu's "Screen
/// audio" lists the capture devices (not the synthetic tone); the pick and
/// "Only the screen's sound" go with the share, and picking keeps the menu
/// open.
#[test]
fn the_share_menu_sends_the_picked_screen_audio_with_the_share() {
    use super::devices::DeviceEntry;
    use super::screen_share::{ScreenAudioChoice, ShareChoice, ShareSource};

    let room = fake_room("Me", &peers(1, "Ann"));
    let window = ShareChoice {
        source: ShareSource::Window(0x2a),
        label: "Window: slides".into(),
        audio: None,
    };
    room.session.screen_share.set_listed(vec![window.clone()]);
    let mut devices = DeviceCatalog::synthetic();
    devices.microphones.insert(
        0,
        DeviceEntry {
            id: "pulseaudio:share.monitor".into(),
            label: "Monitor of Share".into(),
        },
    );
    let settings = Settings::default();
    let mut h = Harness::builder()
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
                options: RoomViewOptions::new(ObjectFit::Cover, true, false),
                actions: Vec::new(),
            },
        );
    h.run_steps(2);
    h.get_by_label("Share screen").click();
    h.run_steps(2);
    assert!(h.query_by_label("Screen audio").is_some());
    assert!(
        h.query_by_label("synthetic tone").is_none(),
        "the synthetic tone is no screen's sound"
    );
    h.get_by_label("Monitor of Share").click();
    h.run_steps(2);
    h.get_by_label("Only the screen's sound (mute my microphone)")
        .click();
    h.run_steps(2);
    h.get_by_label("Window: slides").click();
    h.run_steps(2);
    let expected = ShareChoice {
        audio: Some(ScreenAudioChoice {
            device: "pulseaudio:share.monitor".into(),
            mute_microphone: true,
        }),
        ..window
    };
    assert_eq!(
        h.state().actions,
        [RoomAction::ShareScreen(expected)],
        "the share carries the screen audio"
    );
    assert!(
        h.query_by_label("Window: slides").is_none(),
        "the share closed the menu"
    );
}
