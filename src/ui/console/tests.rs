//! Issue 14 §4: the real console and kiosk widgets, drawn headless by
//! `egui_kittest`, in one room of a real server on loopback with two real
//! publishers (synthetic camera + tone): clicking a source on the console
//! puts it on air and the kiosk cuts to exactly that within 1 s (read back
//! from the kiosk's drawn tiles and the program it shows); a layout of two
//! follows the same way; a console without a director signature shows the
//! numbered refusal and nothing changes. The kiosk holds the off-air
//! sources on standby (paused subscriptions): a cut to one opens no new
//! link and shows nothing from before its pause, and they carry no media.

use std::time::{Duration, Instant};

use egui::{Role, vec2};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

use crate::auth::AppRegistry;
use crate::client::{
    Client, Credential, JoinConfig, LocalStream, Program, ProgramLayout, StreamId, UserId,
};
use crate::media::{AudioProfile, VideoProfile};
use crate::protocol::{AppId, RoomId};
use crate::server::{Server, ServerConfig};
use crate::ui::devices::DeviceCatalog;
use crate::ui::render::ObjectFit;
use crate::ui::room_view::{self, RoomAction, RoomViewOptions};
use crate::ui::session::test_support::{APP, KEY};
use crate::ui::session::{CredentialSource, Phase, RoomSession};
use crate::ui::settings::Settings;

use super::ConsoleState;

const ROOM: &str = "show";
const WAIT: Duration = Duration::from_secs(20);

/// A server on loopback with publishers in [`ROOM`].
struct Show {
    rt: tokio::runtime::Runtime,
    url: String,
    /// Their handles keep them in the room.
    _publishers: Vec<Client>,
    /// Anna's, Ben's (and Cleo's) streams.
    streams: Vec<StreamId>,
}

impl Show {
    /// Anna's and Ben's streams.
    fn pair(&self) -> [StreamId; 2] {
        [self.streams[0], self.streams[1]]
    }
}

/// The publishers, in the order they publish.
const PEOPLE: [(&str, &str, f32); 3] = [
    ("anna", "Anna", 440.0),
    ("ben", "Ben", 660.0),
    ("cleo", "Cleo", 880.0),
];

/// Anna and Ben publish.
fn show() -> Show {
    show_of(&PEOPLE[..2])
}

fn show_of(people: &[(&str, &str, f32)]) -> Show {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut apps = AppRegistry::new();
    apps.insert(APP.to_owned(), KEY.to_owned());
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let url = format!("ws://{}", listener.local_addr().expect("addr"));
    rt.spawn(Server::new(ServerConfig::new(apps)).run(listener, std::future::pending()));
    let mut publishers = Vec::new();
    let mut streams = Vec::new();
    for &(user, name, tone) in people {
        let config = join_config(&url, user, name, app_key(), crate::client::Role::Joiner);
        let (client, id) = rt.block_on(async {
            let client = Client::new();
            client.join(config).await.expect("publisher joins");
            let stream =
                LocalStream::synthetic(VideoProfile::default(), AudioProfile::default(), tone);
            let id = client.publish(stream).await.expect("publish");
            (client, id)
        });
        publishers.push(client);
        streams.push(id);
    }
    Show {
        rt,
        url,
        _publishers: publishers,
        streams,
    }
}

fn app_key() -> Credential {
    Credential::AppKey {
        key: KEY.into(),
        valid_for: Duration::from_secs(600),
    }
}

fn join_config(
    url: &str,
    user: &str,
    name: &str,
    credential: Credential,
    role: crate::client::Role,
) -> JoinConfig {
    JoinConfig {
        server_url: url.to_owned(),
        app_id: AppId(APP.into()),
        room_id: RoomId(ROOM.into()),
        user_id: UserId(user.into()),
        user_name: name.into(),
        role,
        credential,
        decode: true,
        reconnect_window: Duration::from_secs(5),
    }
}

/// One app window: its session, view options and what the user did.
struct Desk {
    session: RoomSession,
    options: RoomViewOptions,
    devices: DeviceCatalog,
    settings: Settings,
}

impl Desk {
    /// Joins as the app does: `console` signs as a director when the
    /// credential is an app key (`director_credential`).
    fn join(show: &Show, user: &str, credential: Credential, console: bool, kiosk: bool) -> Self {
        let mut source = CredentialSource::Ready(credential.clone());
        if console {
            source = super::director_credential(source);
        }
        let session = RoomSession::join(
            show.rt.handle(),
            &egui::Context::default(),
            join_config(
                &show.url,
                user,
                user,
                credential,
                crate::client::Role::Player,
            ),
            source,
            None,
            DeviceCatalog::synthetic(),
            String::new(),
            crate::client::TurnConfig::default(),
        );
        let mut options = RoomViewOptions::new(ObjectFit::Contain, false, kiosk);
        let mut session = session;
        if kiosk {
            // As the app's kiosk: only what is on air.
            session.set_reception(super::reception::Reception::OnAir);
        }
        if console {
            options.console = Some(ConsoleState::default());
        }
        Self {
            session,
            options,
            devices: DeviceCatalog::synthetic(),
            settings: Settings::default(),
        }
    }

    /// One pass as the app makes it: drain the SDK, draw, apply actions.
    fn pass(&mut self, ui: &mut egui::Ui) {
        self.session.poll();
        let pass = ui.ctx().cumulative_pass_nr();
        let actions = room_view::show(
            ui,
            &self.session,
            &self.devices,
            &self.settings,
            &mut self.options,
            pass,
        );
        if self.options.kiosk {
            self.session
                .on_program_shown(self.options.stage.program.shown());
        }
        for action in actions {
            if let RoomAction::Direct(request) = action {
                self.session.direct(request);
            }
        }
    }
}

fn harness(desk: Desk, w: f32, h: f32) -> Harness<'static, Desk> {
    Harness::builder()
        .with_size(vec2(w, h))
        .build_ui_state(|ui, desk: &mut Desk| desk.pass(ui), desk)
}

/// Steps every harness (20 ms apart) until `done` holds, or panics.
fn step_until(
    harnesses: &mut [&mut Harness<'static, Desk>],
    timeout: Duration,
    what: &str,
    mut done: impl FnMut(&mut [&mut Harness<'static, Desk>]) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        for h in harnesses.iter_mut() {
            h.step();
        }
        if done(harnesses) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The names on the video tiles a window draws, in drawing order.
fn tiles(h: &Harness<'_, Desk>) -> Vec<String> {
    h.query_all_by_role(Role::Figure)
        .map(|n| n.accesskit_node().label().unwrap_or_default())
        .collect()
}

/// Both decode both publishers (each has a frame).
fn all_decoding(desk: &Desk) -> bool {
    matches!(desk.session.phase, Phase::Joined)
        && desk.session.tiles.len() == 2
        && desk
            .session
            .tiles
            .values()
            .all(|t| t.stream.video().generation() > 0)
}

fn click_source(h: &mut Harness<'static, Desk>, name: &str) {
    // The strip comes before the program monitor: the first tile so named.
    h.query_all_by_label(name)
        .find(|n| n.accesskit_node().role() == Role::Figure)
        .unwrap_or_else(|| panic!("no source {name} on the console"))
        .click();
}

#[test]
fn the_kiosk_follows_the_console_within_a_second() {
    let show = show();
    let [anna, ben] = show.pair();
    let mut console = harness(
        Desk::join(&show, "host", app_key(), true, false),
        1280.0,
        720.0,
    );
    let mut kiosk = harness(
        Desk::join(&show, "screen", app_key(), false, true),
        1280.0,
        720.0,
    );
    step_until(
        &mut [&mut console, &mut kiosk],
        WAIT,
        "both decoding",
        |h| h.iter().all(|h| all_decoding(h.state())),
    );
    assert!(
        console.state().session.program.director,
        "the console is a director"
    );
    // Off air, the kiosk shows the room.
    assert_eq!(tiles(&kiosk), ["Anna", "Ben"]);

    click_source(&mut console, "Anna");
    let took = step_until(
        &mut [&mut console, &mut kiosk],
        WAIT,
        "the kiosk on Anna",
        |h| {
            let kiosk = &h[1];
            kiosk.state().options.stage.program.shown() == &Program::single(anna)
                && tiles(kiosk) == ["Anna"]
        },
    );
    eprintln!("the kiosk cut to Anna {took:?} after the click");
    assert!(
        took <= Duration::from_secs(1),
        "the kiosk cut after {took:?}"
    );
    // The console hears the same `program-changed` (maybe a pass later).
    step_until(
        &mut [&mut console],
        WAIT,
        "the console's tally on Anna",
        |h| h[0].query_by_label("ON AIR").is_some(),
    );

    // Side by side: Ben then Anna, in that order.
    console.get_by_label("Side by side").click();
    console.run_steps(2);
    click_source(&mut console, "Ben");
    console.run_steps(2);
    assert!(console.query_by_label("pick 1 more").is_some());
    click_source(&mut console, "Anna");
    let pair = Program {
        layout: ProgramLayout::SideBySide,
        streams: vec![ben, anna],
    };
    let took = step_until(
        &mut [&mut console, &mut kiosk],
        WAIT,
        "the kiosk on the pair",
        |h| {
            let kiosk = &h[1];
            kiosk.state().options.stage.program.shown() == &pair && tiles(kiosk) == ["Ben", "Anna"]
        },
    );
    eprintln!("the kiosk cut to the pair {took:?} after the click");
    assert!(
        took <= Duration::from_secs(1),
        "the kiosk cut after {took:?}"
    );

    // Off air: the kiosk shows the whole room again.
    console.get_by_label("Off air").click();
    step_until(
        &mut [&mut console, &mut kiosk],
        WAIT,
        "the kiosk off air",
        |h| h[1].state().options.stage.program.shown().is_off() && tiles(h[1]).len() == 2,
    );
}

/// `user`'s subscription legs as the server lists them (`GET /rooms/{id}`,
/// open without a signature token), by stream id.
fn legs_of(show: &Show, user: &str) -> Vec<Leg> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = show.url.trim_start_matches("ws://").to_owned();
    let response = show.rt.block_on(async move {
        let mut tcp = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        let request =
            format!("GET /rooms/{ROOM} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        tcp.write_all(request.as_bytes()).await.expect("send");
        let mut response = String::new();
        tcp.read_to_string(&mut response).await.expect("read");
        response
    });
    let (head, body) = response.split_once("\r\n\r\n").expect("head and body");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let room: serde_json::Value = serde_json::from_str(body).expect("JSON");
    let mut legs: Vec<Leg> = room["links"]
        .as_array()
        .expect("links")
        .iter()
        .filter(|l| l["kind"] == "subscription" && l["userId"] == user)
        .map(|l| Leg {
            stream: StreamId(l["streamId"].as_u64().expect("stream id")),
            link: l["linkId"].as_u64().expect("link id"),
            bytes: l["bytes"].as_u64().expect("bytes"),
        })
        .collect();
    legs.sort_by_key(|l| l.stream);
    legs
}

/// One subscription leg at the server.
#[derive(Debug, Clone, Copy)]
struct Leg {
    stream: StreamId,
    /// Its link id: a new subscription is a new one.
    link: u64,
    /// RTP bytes forwarded on it so far.
    bytes: u64,
}

/// The (stream, link) pairs of `user`'s legs.
fn links_of(show: &Show, user: &str) -> Vec<(StreamId, u64)> {
    legs_of(show, user)
        .iter()
        .map(|l| (l.stream, l.link))
        .collect()
}

/// The streams a window holds subscriptions (tiles) for.
fn held(h: &Harness<'_, Desk>) -> Vec<StreamId> {
    h.state().session.tiles.keys().copied().collect()
}

fn ids_sorted(streams: &[StreamId]) -> Vec<StreamId> {
    let mut streams = streams.to_vec();
    streams.sort();
    streams
}

/// Anna, Ben and Cleo publish, a director puts Anna on air, and a kiosk
/// joins and cuts to her; Ben and Cleo end on standby (paused).
fn standby_show() -> (Show, Client, Harness<'static, Desk>) {
    let show = show_of(&PEOPLE);
    let [anna, ben, cleo] = [show.streams[0], show.streams[1], show.streams[2]];
    let director = show.rt.block_on(async {
        let director = Client::new();
        let credential = Credential::DirectorKey {
            key: KEY.into(),
            valid_for: Duration::from_secs(600),
        };
        let config = join_config(
            &show.url,
            "host",
            "Host",
            credential,
            crate::client::Role::Player,
        );
        let info = director.join(config).await.expect("the director joins");
        assert!(info.director, "a director signature");
        director
            .set_program(Program::single(anna))
            .await
            .expect("Anna on air");
        director
    });
    let mut kiosk = harness(
        Desk::join(&show, "screen", app_key(), false, true),
        1280.0,
        720.0,
    );
    step_until(
        &mut [&mut kiosk],
        WAIT,
        "the kiosk on Anna, the others on standby",
        |h| {
            let session = &h[0].state().session;
            h[0].state().options.stage.program.shown() == &Program::single(anna)
                && tiles(h[0]) == ["Anna"]
                && session.is_on_standby(ben)
                && session.is_on_standby(cleo)
        },
    );
    (show, director, kiosk)
}

fn set_program(show: &Show, director: &Client, program: Program) {
    show.rt
        .block_on(director.set_program(program))
        .expect("program set");
}

/// The capture time of the picture a tile shows (the synthetic source
/// stamps it into every frame).
fn shown_capture_us(h: &Harness<'_, Desk>, id: StreamId) -> u64 {
    h.state().session.tiles[&id]
        .stream
        .video()
        .with_latest(|f| f.and_then(crate::media::read_stamp))
        .expect("a stamped frame")
        .capture_time_us
}

/// Issue 14 §4: a kiosk holds the room's off-air sources on standby, and a
/// cut to one goes through it: no new subscription (the server's legs keep
/// their link ids), cut within 1 s, and the first picture shown was
/// captured after the change (nothing from before the pause). A 2×2 and off
/// air go the same way.
#[test]
fn a_cut_to_an_off_air_source_goes_through_the_standby() {
    let (show, director, mut kiosk) = standby_show();
    let [anna, ben, cleo] = [show.streams[0], show.streams[1], show.streams[2]];
    let links = links_of(&show, "screen");
    assert_eq!(
        links.iter().map(|l| l.0).collect::<Vec<_>>(),
        ids_sorted(&[anna, ben, cleo]),
        "one leg per source, on air or not"
    );
    // Standby holds: the same legs, Ben and Cleo paused, Anna shown.
    for _ in 0..10 {
        kiosk.step();
        let session = &kiosk.state().session;
        assert!(session.is_on_standby(ben) && session.is_on_standby(cleo));
        assert_eq!(tiles(&kiosk), ["Anna"]);
        assert_eq!(links_of(&show, "screen"), links, "the server's view");
        std::thread::sleep(Duration::from_millis(50));
    }

    let changed_us = crate::media::now_us();
    set_program(&show, &director, Program::single(ben));
    let took = step_until(&mut [&mut kiosk], WAIT, "the kiosk on Ben", |h| {
        h[0].state().options.stage.program.shown() == &Program::single(ben)
            && tiles(h[0]) == ["Ben"]
    });
    eprintln!("the kiosk cut to Ben {took:?} after the change (from standby)");
    assert!(
        took <= Duration::from_secs(1),
        "the kiosk cut after {took:?}"
    );
    let captured = shown_capture_us(&kiosk, ben);
    assert!(
        captured >= changed_us,
        "the cut showed a picture captured {} ms before the change",
        (changed_us - captured) / 1000
    );
    step_until(&mut [&mut kiosk], WAIT, "Anna on standby", |h| {
        h[0].state().session.is_on_standby(anna)
    });
    assert_eq!(links_of(&show, "screen"), links, "no new subscription");
    assert_eq!(held(&kiosk), ids_sorted(&[anna, ben, cleo]));

    let quad = Program {
        layout: ProgramLayout::Quad,
        streams: vec![cleo, anna],
    };
    let changed_us = crate::media::now_us();
    set_program(&show, &director, quad.clone());
    let took = step_until(&mut [&mut kiosk], WAIT, "the kiosk on Cleo and Anna", |h| {
        h[0].state().options.stage.program.shown() == &quad && tiles(h[0]) == ["Cleo", "Anna"]
    });
    eprintln!("the kiosk cut to Cleo and Anna {took:?} after the change (from standby)");
    for id in [cleo, anna] {
        assert!(
            shown_capture_us(&kiosk, id) >= changed_us,
            "a stale picture of {id:?}"
        );
    }
    step_until(&mut [&mut kiosk], WAIT, "Ben on standby", |h| {
        h[0].state().session.is_on_standby(ben)
    });
    assert_eq!(links_of(&show, "screen"), links, "no new subscription");

    // Off air: the whole room flows again, on the same links.
    set_program(&show, &director, Program::off());
    step_until(&mut [&mut kiosk], WAIT, "the kiosk off air", |h| {
        let session = &h[0].state().session;
        h[0].state().options.stage.program.shown().is_off()
            && tiles(h[0]).len() == 3
            && [anna, ben, cleo]
                .iter()
                .all(|id| session.shows_fresh_video(*id))
    });
    assert_eq!(links_of(&show, "screen"), links, "no new subscription");
}

/// Issue 14 §4: off-air sources on standby cost (almost) nothing: over 2 s,
/// the server forwards no media on their legs and the kiosk receives none,
/// while the on-air source flows. Prints the figures.
#[test]
fn off_air_sources_on_standby_receive_almost_no_media() {
    let (show, _director, mut kiosk) = standby_show();
    let [anna, ben, cleo] = [show.streams[0], show.streams[1], show.streams[2]];
    let received =
        |h: &Harness<'_, Desk>, id: StreamId| h.state().session.tiles[&id].stream.stats().bytes;
    // Let pauses in flight land.
    for _ in 0..10 {
        kiosk.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = legs_of(&show, "screen");
    let at_kiosk: Vec<u64> = [anna, ben, cleo]
        .iter()
        .map(|id| received(&kiosk, *id))
        .collect();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        kiosk.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    let secs = start.elapsed().as_secs_f64();
    let after = legs_of(&show, "screen");
    let rate = |bytes: u64| bytes as f64 * 8.0 / secs / 1000.0;
    for (i, id) in [anna, ben, cleo].into_iter().enumerate() {
        let (b, a) = (before[i], after[i]);
        assert_eq!((b.stream, a.stream), (id, id));
        let sent = a.bytes - b.bytes;
        let got = received(&kiosk, id) - at_kiosk[i];
        let role = if id == anna { "on air" } else { "standby" };
        eprintln!(
            "{role} {id:?}: server sent {:.1} kbit/s, kiosk received {:.1} kbit/s",
            rate(sent),
            rate(got)
        );
        if id == anna {
            assert!(
                sent > 10_000 && got > 10_000,
                "the program flows: {sent} B sent, {got} B received"
            );
        } else {
            assert!(
                sent < 1_000 && got < 1_000,
                "{id:?} off air: {sent} B sent, {got} B received"
            );
        }
    }
}

#[test]
fn a_console_without_a_director_signature_shows_the_numbered_refusal() {
    let show = show();
    let [anna, _] = show.pair();
    // Signs as a member: a signature URL that hands out plain signatures
    // gives the console this.
    let mut desk = Desk::join(&show, "intruder", app_key(), false, false);
    desk.options.console = Some(ConsoleState::default());
    let mut console = harness(desk, 1280.0, 720.0);
    let mut kiosk = harness(
        Desk::join(&show, "screen", app_key(), false, true),
        1280.0,
        720.0,
    );
    step_until(
        &mut [&mut console, &mut kiosk],
        WAIT,
        "both decoding",
        |h| h.iter().all(|h| all_decoding(h.state())),
    );
    assert!(!console.state().session.program.director);
    assert!(
        console.query_by_label_contains("Not a director").is_some(),
        "the console says it may not direct"
    );
    click_source(&mut console, "Anna");
    step_until(&mut [&mut console, &mut kiosk], WAIT, "the refusal", |h| {
        h[0].query_by_label_contains("90100022").is_some()
    });
    let refusal = console
        .state()
        .session
        .program
        .refusal
        .clone()
        .expect("kept");
    assert!(
        refusal
            .details
            .as_deref()
            .unwrap_or_default()
            .contains("90100022"),
        "{refusal:?}"
    );
    // Nothing went on air anywhere.
    for _ in 0..10 {
        kiosk.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(kiosk.state().session.program.program.is_off());
    assert!(!console.state().session.program.program.is_on_air(anna));
    assert_eq!(tiles(&kiosk), ["Anna", "Ben"]);
}

#[test]
fn the_console_fits_small_and_usual_windows() {
    use crate::ui::session::test_support::{fake_room, peers};
    let devices = DeviceCatalog::synthetic();
    let settings = Settings::default();
    for (w, h) in [(640.0, 480.0), (800.0, 600.0), (1280.0, 720.0)] {
        let mut room = fake_room(
            "Ada Lovelace",
            &peers(
                5,
                "Maximiliane Alexandrine Wolkenstein-Trostburg von Hohenberg-Auer",
            ),
        );
        room.session.program.director = true;
        room.session.program.program = Program::single(StreamId(1));
        let mut options = RoomViewOptions::new(ObjectFit::Contain, true, false);
        options.console = Some(ConsoleState::default());
        let mut harness = Harness::builder().with_size(vec2(w, h)).build_ui(|ui| {
            room_view::show(ui, &room.session, &devices, &settings, &mut options, 1);
        });
        harness.run_steps(3);
        let window = egui::Rect::from_min_size(egui::pos2(0.0, 0.0), vec2(w, h));
        let controls: Vec<(String, egui::Rect)> =
            [Role::Button, Role::CheckBox, Role::ComboBox, Role::Figure]
                .iter()
                .flat_map(|role| harness.query_all_by_role(*role))
                .map(|n| (n.accesskit_node().label().unwrap_or_default(), n.rect()))
                .collect();
        for wanted in [
            "Single",
            "Side by side",
            "2×2",
            "Off air",
            "Dismiss room",
            "Leave",
        ] {
            assert!(
                controls.iter().any(|(l, _)| l == wanted),
                "{w}x{h}: no {wanted} in {controls:?}"
            );
        }
        assert!(
            controls.iter().filter(|(l, _)| l == "Remove").count() == 5,
            "{w}x{h}: one Remove per other user"
        );
        // Every control inside the window and apart from the others; the
        // program tile inside the window too (source cards may scroll).
        let buttons: Vec<(String, egui::Rect)> = [Role::Button, Role::CheckBox, Role::ComboBox]
            .iter()
            .flat_map(|role| harness.query_all_by_role(*role))
            .map(|n| (n.accesskit_node().label().unwrap_or_default(), n.rect()))
            .collect();
        for (label, r) in &buttons {
            assert!(
                window.expand(0.5).contains_rect(*r),
                "{w}x{h}: {label:?} at {r:?} is cut off"
            );
        }
        for (i, (a, ra)) in buttons.iter().enumerate() {
            for (b, rb) in &buttons[i + 1..] {
                let o = ra.intersect(*rb);
                assert!(
                    !(o.width() > 0.5 && o.height() > 0.5),
                    "{w}x{h}: {a:?} {ra:?} overlaps {b:?} {rb:?}"
                );
            }
        }
        let program_tile = controls
            .iter()
            .filter(|(l, _)| l.starts_with("Maximiliane"))
            .map(|(_, r)| *r)
            .max_by(|a, b| a.area().total_cmp(&b.area()))
            .expect("the program monitor shows the on-air source");
        assert!(
            window.contains_rect(program_tile),
            "{w}x{h}: {program_tile:?}"
        );
    }
}

#[test]
fn remove_and_dismiss_from_the_console() {
    use crate::client::LeaveReason;
    let show = show();
    let mut console = harness(
        Desk::join(&show, "host", app_key(), true, false),
        1280.0,
        720.0,
    );
    let mut kiosk = harness(
        Desk::join(&show, "screen", app_key(), false, true),
        1280.0,
        720.0,
    );
    step_until(
        &mut [&mut console, &mut kiosk],
        WAIT,
        "both decoding",
        |h| h.iter().all(|h| all_decoding(h.state())),
    );
    // The kiosk's row: its Remove button sits on the same line.
    let row = console.get_by_label("screen · audience").rect();
    let remove = console
        .query_all_by_label("Remove")
        .find(|n| (n.rect().center().y - row.center().y).abs() < 6.0)
        .expect("a Remove button on the kiosk's row");
    remove.click();
    step_until(
        &mut [&mut console, &mut kiosk],
        WAIT,
        "the kiosk removed",
        |h| {
            h[1].state().session.program.banned == Some(LeaveReason::UserRemoved)
                && matches!(h[1].state().session.phase, Phase::Disconnected(_))
                && h[1]
                    .query_by_label_contains("The user is removed")
                    .is_some()
        },
    );
    step_until(
        &mut [&mut console],
        WAIT,
        "the kiosk gone from the list",
        |h| h[0].query_by_label("screen · audience").is_none(),
    );

    console.get_by_label("Dismiss room").click();
    console.run_steps(2);
    console.get_by_label("Dismiss now").click();
    step_until(&mut [&mut console], WAIT, "the room dismissed", |h| {
        h[0].state().session.program.banned == Some(LeaveReason::RoomDismissed)
            && matches!(h[0].state().session.phase, Phase::Disconnected(_))
    });
}
