//! The debugger on a real room: an in-process server, its demo bot
//! publishing H.264 + Opus, and a client that subscribes, drawn headless
//! with `egui_kittest`. The plots move as the seconds pass, and the Links
//! tab shows the subscription link's SDP as it went over the wire.

use std::time::{Duration, Instant};

use egui::vec2;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

use super::Debugger;
use super::history::Metric;
use super::links;
use super::server_view::ServerState;
use crate::client::{Client, JoinConfig, RemoteStream, RoomEvent, SubscribeOptions};
use crate::protocol::{AppId, Role, RoomId, StreamId, UserId};
use crate::ui::embedded::{DEMO_ROOM, EmbeddedServer};

/// Longest wait for each condition.
const DEADLINE: Duration = Duration::from_secs(60);

struct Room {
    rt: tokio::runtime::Runtime,
    server: EmbeddedServer,
    client: Client,
    _stream: RemoteStream,
}

/// Joins the embedded demo room as a player and subscribes to the bot.
fn real_room() -> Room {
    real_room_with_token(None)
}

/// [`real_room`] on a server whose HTTP API wants `token`.
fn real_room_with_token(token: Option<&str>) -> Room {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut server =
        EmbeddedServer::start_with_token(rt.handle(), token.map(str::to_owned)).expect("server");
    server.ensure_bot(rt.handle());
    let client = {
        let _guard = rt.enter();
        Client::new()
    };
    // As the app does at join: the log is on before the first frame.
    client.signal_log().set_enabled(true);
    let config = JoinConfig {
        server_url: server.url.clone(),
        app_id: AppId(server.app_id.clone()),
        room_id: RoomId(DEMO_ROOM.into()),
        user_id: UserId("debugger-test".into()),
        user_name: "Debugger test".into(),
        role: Role::Player,
        credential: server.credential(),
        decode: true,
        reconnect_window: crate::client::DEFAULT_RECONNECT_WINDOW,
    };
    let joined = rt.block_on(client.join(config)).expect("join");
    let mut stream_id: Option<StreamId> = joined.streams.first().map(|s| s.stream_id);
    let start = Instant::now();
    while stream_id.is_none() {
        assert!(start.elapsed() < DEADLINE, "the demo bot never published");
        if let Ok(RoomEvent::StreamAdded(info)) =
            client.events().recv_timeout(Duration::from_millis(200))
        {
            stream_id = Some(info.stream_id);
        }
    }
    let stream = rt
        .block_on(client.subscribe(stream_id.expect("stream"), SubscribeOptions::default()))
        .expect("subscribe");
    Room {
        rt,
        server,
        client,
        _stream: stream,
    }
}

/// Runs the harness until `done` holds, or fails after [`DEADLINE`].
fn run_until(h: &mut Harness<'_, Debugger>, what: &str, done: impl Fn(&Debugger) -> bool) {
    let start = Instant::now();
    loop {
        h.run_steps(1);
        if done(h.state()) {
            return;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn received_bitrate(d: &Debugger) -> Option<f64> {
    d.data
        .history
        .scopes
        .iter()
        .find(|(name, _)| name.starts_with("received video"))
        .and_then(|(_, s)| s.series.get(&Metric::Bitrate))
        .and_then(|r| r.last())
}

#[test]
fn the_debuggers_plots_move_and_its_links_tab_shows_the_sdp() {
    let room = real_room();
    // The sampler's waker only asks for a repaint; the harness runs anyway.
    let debugger = Debugger::live(
        room.rt.handle(),
        &room.client,
        DEMO_ROOM.into(),
        None,
        || {},
    );
    let mut h = Harness::builder()
        .with_size(vec2(1280.0, 720.0))
        .build_ui_state(
            |ui, d: &mut Debugger| {
                d.poll();
                super::panel::show(ui, d);
            },
            debugger,
        );
    run_until(&mut h, "video bitrate above 0", |d| {
        received_bitrate(d).is_some_and(|kbps| kbps > 0.0) && d.panel.plotted_until.is_some()
    });
    // The default scope is the received video: its plots are drawn.
    let scope = h.get_by_role_and_label(egui::Role::ComboBox, "stream");
    let shown = scope.accesskit_node().value().unwrap_or_default();
    assert!(shown.starts_with("received video #"), "{shown}");
    h.get_by_label_contains("frame rate (fps)");
    let first = h.state().panel.plotted_until.expect("plotted");
    let points = h.state().data.history.total_points();
    run_until(&mut h, "the plots to move by 3 s", |d| {
        d.panel.plotted_until.is_some_and(|t| t >= first + 3.0)
    });
    assert!(h.state().data.history.total_points() > points);
    // Rates of counters need two samples: they are drawn by now.
    h.get_by_label_contains("decode time (ms/frame)");
    h.get_by_label_contains("NACKs (/s)");
    let fps = h
        .state()
        .data
        .history
        .scopes
        .iter()
        .find(|(n, _)| n.starts_with("received video"))
        .and_then(|(_, s)| s.series.get(&Metric::FrameRate))
        .and_then(|r| r.last());
    assert!(fps.is_some_and(|f| f > 1.0), "decoded frame rate {fps:?}");

    // The Links tab: the subscription link's SDP, as logged.
    h.get_by_label("Links").click();
    h.run_steps(2);
    let links = links::links(&h.state().data.signalling);
    let (id, sub) = links
        .iter()
        .find(|(_, l)| l.kind == "subscribe")
        .expect("a subscription link in the log");
    let remote = sub.remote_sdp.clone().expect("the server's offer");
    let local = sub.local_sdp.clone().expect("our answer");
    assert!(remote.contains("m=video") && local.contains("m=video"));
    h.get_by_label_contains(&format!("link {id} · subscribe"));
    // Its ICE/DTLS state changes, as the SDK noted them in the log.
    assert!(
        sub.states.iter().any(|(_, s)| s == "connected"),
        "{:?}",
        sub.states
    );
    h.get_by_label_contains("ICE/DTLS: ");
    h.get_by_label(&super::panel::sdp_text(&remote));
    h.get_by_label(&super::panel::sdp_text(&local));

    // The Signalling tab lists the frames; a click pretty-prints one.
    h.get_by_label_contains("Signalling (").click();
    h.run_steps(2);
    let row = h.get_by_label_contains("reply:subscribe-offer");
    row.click();
    h.run_steps(2);
    h.get_by_label_contains("\"result\": \"subscribe-offer\"");

    // Save session…, then the file offline (`huddle inspect`): the same views.
    let dir = std::env::temp_dir().join(format!("huddle-debugger-gui-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("session.json");
    h.get_by_label("Plots").click();
    h.run_steps(1);
    h.state_mut().panel.save_path = path.display().to_string();
    h.get_by_label("Save session…").click();
    h.run_steps(2);
    h.get_by_label_contains("saved ");
    let saved = super::file::DebugData::load(&path).expect("the saved file reads back");
    let mut offline = Harness::builder()
        .with_size(vec2(800.0, 500.0))
        .build_ui_state(
            |ui, d: &mut Debugger| super::panel::show(ui, d),
            Debugger::offline(saved),
        );
    offline.run_steps(2);
    offline.get_by_label_contains("file · demo");
    offline.get_by_label_contains("bitrate (kbit/s)");
    offline.get_by_label("Links").click();
    offline.run_steps(2);
    offline.get_by_label(&super::panel::sdp_text(&remote));
    assert!(offline.query_by_label("Save session…").is_none());

    // A truncated file is an error before any window opens.
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, &text[..text.len() / 2]).expect("truncate");
    match super::inspect::run(&path, None) {
        Err(crate::ui::UiError::DebugFile(super::file::DebugFileError::Json {
            message, ..
        })) => {
            assert!(message.contains("EOF"), "{message}")
        }
        other => panic!("truncated file: {other:?}"),
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A live debugger of `room` with its Server tab following the room's
/// server with `token`, drawn in a harness.
fn server_harness(room: &Room, token: &str) -> Harness<'static, Debugger> {
    let mut debugger = Debugger::live(
        room.rt.handle(),
        &room.client,
        DEMO_ROOM.into(),
        None,
        || {},
    );
    debugger.follow_server(&room.server.url, token.to_owned(), || {});
    let mut h = Harness::builder()
        .with_size(vec2(1280.0, 720.0))
        .build_ui_state(
            |ui, d: &mut Debugger| {
                d.poll();
                super::panel::show(ui, d);
            },
            debugger,
        );
    h.run_steps(1);
    h.get_by_label("Server").click();
    h.run_steps(1);
    h
}

fn server_view(d: &Debugger) -> Option<&super::server_view::RoomView> {
    match &d.server.as_ref()?.state {
        ServerState::Shown { view, .. } => Some(view),
        _ => None,
    }
}

#[test]
fn the_server_tab_shows_the_servers_view_of_the_room() {
    let room = real_room_with_token(Some("serverview-token"));
    let mut h = server_harness(&room, "serverview-token");
    // The bot's publish link and our subscription both carry packets.
    run_until(&mut h, "the server's links with packets", |d| {
        server_view(d).is_some_and(|v| {
            v.links.len() >= 2
                && v.links.iter().all(|l| l.packets > 0)
                && v.users.iter().any(|u| u.id == "debugger-test")
        })
    });
    // The state polled in the last pass is the one drawn.
    h.run_steps(2);
    let view = server_view(h.state()).expect("shown").clone();
    assert_eq!(view.id, DEMO_ROOM);
    h.get_by_label_contains("user debugger-test · Debugger test · player");
    h.get_by_label_contains("user demo-bot");
    let bot_stream = view
        .streams
        .iter()
        .find(|s| s.publisher == "demo-bot")
        .expect("the bot's stream");
    h.get_by_label_contains(&format!("stream {} · demo-bot · audio", bot_stream.id));
    let sub = view
        .links
        .iter()
        .find(|l| l.kind == "subscription" && l.user_id.as_deref() == Some("debugger-test"))
        .expect("our subscription leg");
    assert!(sub.packets > 0 && sub.bytes > 0, "{sub:?}");
    assert_eq!(sub.stream_id, Some(bot_stream.id));
    // Its row, with every counter, as drawn (an exact label match).
    let text = sub.row();
    h.get_by_label(&text);
    assert!(
        text.starts_with(&format!(
            "link {} · subscription · stream {}",
            sub.link_id, bot_stream.id
        )) && text.contains(&format!("packets {} · bytes {}", sub.packets, sub.bytes))
            && text.contains("NACK ")
            && text.contains("PLI ")
            && text.contains("retransmitted "),
        "{text}"
    );
    // The client's side lists the same link, from its signalling log.
    h.get_by_label_contains(&format!("client link {} · subscribe", sub.link_id));
    // It refreshes: the counters grow on a later fetch.
    let first = sub.packets;
    run_until(&mut h, "a refreshed, larger packet count", |d| {
        server_view(d).is_some_and(|v| {
            v.links
                .iter()
                .any(|l| l.link_id == sub.link_id && l.packets > first)
        })
    });
}

#[test]
fn the_server_tab_shows_a_wrong_token_as_a_numbered_401() {
    let room = real_room_with_token(Some("serverview-token"));
    let mut h = server_harness(&room, "not-the-token");
    run_until(&mut h, "the 401", |d| {
        matches!(
            d.server.as_ref().map(|s| &s.state),
            Some(ServerState::Failed { .. })
        )
    });
    h.run_steps(1);
    h.get_by_label_contains("90000005 ");
    h.get_by_label_contains("(HTTP 401)");
    assert!(server_view(h.state()).is_none());
    // Typing the right token in the tab's field fixes it on the next fetch.
    h.state_mut().server.as_mut().expect("server").token = "serverview-token".into();
    run_until(&mut h, "the room after the right token", |d| {
        server_view(d).is_some_and(|v| v.users.iter().any(|u| u.id == "debugger-test"))
    });
}

/// The Timeline tab's marks of `d` drawn in the last pass, by colour.
fn marks_of(d: &Debugger, color: egui::Color32) -> Vec<super::timeline_view::DrawnMark> {
    let drawn = &d.panel.timeline.drawn;
    drawn.iter().filter(|m| m.color == color).copied().collect()
}

#[test]
fn the_timeline_shows_moving_frames_and_a_clicked_keyframe_lists_its_packets() {
    use super::timeline_view::{FRAME_COLOR, KEYFRAME_COLOR, packet_row, seq_range};
    let room = real_room();
    let debugger = Debugger::live(
        room.rt.handle(),
        &room.client,
        DEMO_ROOM.into(),
        None,
        || {},
    );
    let mut h = Harness::builder()
        .with_size(vec2(1280.0, 720.0))
        .build_ui_state(
            |ui, d: &mut Debugger| {
                d.poll();
                super::panel::show(ui, d);
            },
            debugger,
        );
    h.run_steps(1);
    h.get_by_label("Timeline").click();
    h.run_steps(1);
    // Decoded frames and a keyframe (the bot sends one every 2 s), drawn in
    // their own colours: a keyframe is not a frame.
    run_until(&mut h, "a keyframe and 10 decoded frames drawn", |d| {
        !marks_of(d, KEYFRAME_COLOR).is_empty() && marks_of(d, FRAME_COLOR).len() >= 10
    });
    assert_ne!(KEYFRAME_COLOR, FRAME_COLOR);
    let stream = h.get_by_role_and_label(egui::Role::ComboBox, "stream");
    let shown = stream.accesskit_node().value().unwrap_or_default();
    assert!(
        shown.starts_with("video #") && shown.ends_with("(demo-bot)"),
        "{shown}"
    );
    // The marks move: a frame drawn now is further left a second later.
    let mark = *marks_of(h.state(), FRAME_COLOR).last().expect("a frame");
    let until = h.state().panel.timeline.drawn_until.expect("drawn");
    run_until(&mut h, "the axis to move by 1 s", |d| {
        d.panel
            .timeline
            .drawn_until
            .is_some_and(|t| t >= until + 1.0)
    });
    let moved = h
        .state()
        .panel
        .timeline
        .drawn
        .iter()
        .find(|m| m.index == mark.index)
        .expect("still drawn");
    assert!(
        moved.rect.center().x < mark.rect.center().x - 10.0,
        "{moved:?} vs {mark:?}"
    );
    // Taller marks for larger frames: a keyframe outweighs a delta frame.
    let key = *marks_of(h.state(), KEYFRAME_COLOR)
        .last()
        .expect("a keyframe");
    let frames = marks_of(h.state(), FRAME_COLOR);
    let median_delta = {
        let mut heights: Vec<f32> = frames.iter().map(|m| m.rect.height()).collect();
        heights.sort_by(f32::total_cmp);
        heights[heights.len() / 2]
    };
    assert!(
        key.rect.height() > median_delta,
        "{key:?} vs {median_delta}"
    );

    // Paused, it holds still while frames keep arriving.
    h.get_by_label("Pause").click();
    h.run_steps(1);
    let held = h.state().panel.timeline.drawn_until;
    let drawn = h.state().panel.timeline.drawn.clone();
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(100));
        h.run_steps(1);
    }
    assert_eq!(h.state().panel.timeline.drawn_until, held);
    assert_eq!(h.state().panel.timeline.drawn, drawn);
    h.get_by_label("Resume");

    // A click on the keyframe's mark lists its packets: their seq range is the frame's.
    let key = *marks_of(h.state(), KEYFRAME_COLOR)
        .last()
        .expect("a keyframe");
    let at = key.rect.center();
    h.hover_at(at);
    // The tooltip shows after egui's hover delay.
    let tooltip = format!("keyframe #{} ·", key.index);
    let start = Instant::now();
    while h.query_by_label_contains(&tooltip).is_none() {
        assert!(start.elapsed() < DEADLINE, "no tooltip on hover");
        std::thread::sleep(Duration::from_millis(100));
        h.run_steps(1);
    }
    h.drag_at(at);
    h.run_steps(1);
    h.drop_at(at);
    h.run_steps(2);
    let stream = h.state().panel.timeline.selected.expect("a frame selected");
    assert_eq!(stream.1, key.index);
    let frame = h.state().data.timeline[&stream.0]
        .frames
        .iter()
        .find(|f| f.index == key.index)
        .expect("the frame")
        .clone();
    assert!(frame.keyframe && frame.packets >= 2, "{frame:?}");
    h.get_by_label(&format!("keyframe #{}", frame.index));
    h.get_by_label(&seq_range(&frame));
    let seqs: Vec<u16> = frame.packet_list.iter().map(|p| p.seq).collect();
    assert_eq!(seqs.len(), frame.packets as usize);
    let (lo, hi) = (frame.first_seq, frame.last_seq);
    assert_eq!(seqs.iter().min(), Some(&lo), "{seqs:?}");
    assert_eq!(seqs.iter().max(), Some(&hi), "{seqs:?}");
    assert_eq!(usize::from(hi.wrapping_sub(lo)) + 1, seqs.len());
    for p in frame.packet_list.iter().take(8) {
        h.get_by_label(&packet_row(p, frame.first_arrival_us));
    }
    let last = frame.packet_list.iter().find(|p| p.marker).expect("marker");
    assert_eq!(last.seq, hi);

    // Saved and inspected offline: the same frame, the same packet list.
    let dir = std::env::temp_dir().join(format!("huddle-timeline-gui-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("session.json");
    h.state_mut().panel.save_path = path.display().to_string();
    h.get_by_label("Save session…").click();
    h.run_steps(2);
    let saved = super::file::DebugData::load(&path).expect("the saved file reads back");
    assert!(saved.timeline[&stream.0].frames.contains(&frame));
    let mut offline = Harness::builder()
        .with_size(vec2(800.0, 500.0))
        .build_ui_state(
            |ui, d: &mut Debugger| super::panel::show(ui, d),
            Debugger::offline(saved),
        );
    offline.run_steps(1);
    offline.get_by_label("Timeline").click();
    offline.run_steps(2);
    assert!(offline.query_by_label("Pause").is_none());
    offline.state_mut().panel.timeline.window_s = 60.0;
    offline.state_mut().panel.timeline.selected = Some(stream);
    offline.run_steps(2);
    offline.get_by_label(&seq_range(&frame));
    assert!(!marks_of(offline.state(), KEYFRAME_COLOR).is_empty());
    std::fs::remove_dir_all(&dir).ok();
}

/// Issue 14 §4: the plots' meshes are built when a sample arrives, not on
/// every pass the video causes.
#[test]
fn the_plots_are_rebuilt_only_when_a_sample_arrives() {
    let mut data = super::file::DebugData::new("cache".into());
    let scope = super::sampler::received_video(3, "alice");
    for s in 0..120 {
        let t = f64::from(s);
        for metric in [Metric::Bitrate, Metric::FrameRate, Metric::Jitter] {
            data.history.push(&scope, metric, t, t.sin() + 2.0);
        }
    }
    let mut h = Harness::builder()
        .with_size(vec2(900.0, 600.0))
        .build_ui_state(
            |ui, d: &mut Debugger| super::panel::show(ui, d),
            Debugger::offline(data),
        );
    h.run_steps(3);
    h.get_by_label_contains("jitter (ms)");
    let built = h.state().panel.plots.rebuilds;
    assert_eq!(built % 3, 0, "one mesh per plot: {built}");
    assert!(built >= 3);
    h.run_steps(10);
    assert_eq!(
        h.state().panel.plots.rebuilds,
        built,
        "nothing new, nothing built"
    );
    // A new sample: each of the three plots is built once more.
    for metric in [Metric::Bitrate, Metric::FrameRate, Metric::Jitter] {
        h.state_mut().data.history.push(&scope, metric, 120.0, 5.0);
    }
    h.run_steps(5);
    assert_eq!(h.state().panel.plots.rebuilds, built + 3);
    assert_eq!(h.state().panel.plotted_until, Some(120.0));
}

/// The largest filled rectangle among `shapes` (nested ones included)
/// right of `x`.
fn largest_fill(shapes: impl IntoIterator<Item = egui::Shape>, x: f32) -> f32 {
    shapes
        .into_iter()
        .map(|shape| match shape {
            egui::Shape::Rect(r) if r.fill.a() > 0 && r.rect.left() >= x => r.rect.area(),
            egui::Shape::Vec(inner) => largest_fill(inner, x),
            _ => 0.0,
        })
        .fold(0.0, f32::max)
}

/// Issue 14 §4: docked, the panel leaves its background to the window's
/// clear (`panel::clear_color`, the panel's fill), so a software renderer
/// does not shade half the window a second time each pass: no filled shape
/// of its pass covers more than a sliver of the window.
#[test]
fn the_docked_panel_paints_no_background_of_its_own() {
    let mut data = super::file::DebugData::new("fill".into());
    let scope = super::sampler::received_video(3, "alice");
    for s in 0..60 {
        let t = f64::from(s);
        for metric in [Metric::Bitrate, Metric::FrameRate, Metric::Jitter] {
            data.history.push(&scope, metric, t, t.cos() + 2.0);
        }
    }
    let mut h = Harness::builder()
        .with_size(vec2(1280.0, 720.0))
        .build_ui_state(
            |ui, d: &mut Debugger| super::panel::show_docked(ui, d),
            Debugger::offline(data),
        );
    h.run_steps(3);
    h.get_by_label_contains("jitter (ms)");
    // The panel takes the right half; the harness' own frame (its whole
    // window, from x = 8) is not the panel's.
    let shapes = h.output().shapes.iter().map(|c| c.shape.clone());
    let largest = largest_fill(shapes, 400.0);
    let window = 1280.0 * 720.0;
    assert!(
        largest < window * 0.02,
        "a filled shape of {largest} px² ({:.0} % of the window)",
        largest / window * 100.0
    );
}
