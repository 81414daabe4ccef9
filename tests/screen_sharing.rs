//! Issue 14 §3, screen sharing: a window with known content on a private
//! Xvfb display is shared through the SFU and a subscriber's decoded frames
//! show it; the share is an auxiliary stream of the same user, beside its
//! camera, marked `isScreen`. Bad input gets numbered errors while the room
//! carries on: a second share of the same user (90100250), a window that is
//! not there (90100019), a display that is not there (90100024).
//!
//! Needs Xvfb (skips outside CI without it, fails on CI).
#![cfg(feature = "client")]
#![cfg(feature = "devices")]

mod common;
mod gui;

use std::time::Duration;

use huddle::client::{LocalStream, RoomEvent, SubscribeOptions};
use huddle::media::devices::{
    CaptureTarget, ScreenCaptureConfig, ScreenSource, list_screens, list_windows,
};
use huddle::media::{ScreenProfile, VideoSource};
use huddle::protocol::ErrorCode;

use common::x11_window::{TITLE, TestWindow, rgb_at, shows_quadrants};

/// The shared window's size and where it sits on the 1280x720 screen.
const WINDOW: (u16, u16) = (640, 360);
const WINDOW_AT: (i16, i16) = (200, 120);

fn xvfb_or_skip(test: &str) -> bool {
    if std::path::Path::new("/usr/bin/Xvfb").exists() {
        return true;
    }
    common::skip(test, "/usr/bin/Xvfb not installed (apt-get install xvfb)");
    false
}

fn window_config(display: &gui::Display, id: u32) -> ScreenCaptureConfig {
    ScreenCaptureConfig {
        display: Some(display.name.clone()),
        target: CaptureTarget::Window(id),
        profile: ScreenProfile::default(),
    }
}

/// The capture alone: the display's screen and window lists, and a window
/// captured at its own size with its colours, before any network.
#[test]
fn a_window_is_captured_with_its_content() {
    if !xvfb_or_skip("a_window_is_captured_with_its_content") {
        return;
    }
    let display = gui::Display::start();
    let window = TestWindow::open(&display.name, WINDOW_AT, WINDOW);
    let name = Some(display.name.as_str());
    assert!(huddle::client::is_screen_share_supported(name));
    let screens = list_screens(name).expect("screens");
    assert_eq!(screens.len(), 1, "{screens:?}");
    assert_eq!(
        (screens[0].width as usize, screens[0].height as usize),
        gui::SCREEN
    );
    let windows = list_windows(name).expect("windows");
    let listed = windows
        .iter()
        .find(|w| w.id == window.id)
        .expect("the window is listed");
    assert_eq!(
        (listed.title.as_str(), listed.width, listed.height),
        (TITLE, WINDOW.0, WINDOW.1)
    );

    let mut source = ScreenSource::open(&window_config(&display, window.id)).expect("open");
    assert_eq!(source.size(), (u32::from(WINDOW.0), u32::from(WINDOW.1)));
    assert!(source.is_live());
    let frame = source.next_frame().expect("frame").expect("a picture");
    shows_quadrants(&frame).expect("the captured window");

    // The whole screen at 720p: the window's quadrants sit where the window is.
    let whole = ScreenCaptureConfig {
        target: CaptureTarget::Screen(0),
        ..window_config(&display, 0)
    };
    let mut screen = ScreenSource::open(&whole).expect("open the screen");
    assert_eq!(screen.size(), (1280, 720));
    let frame = screen.next_frame().expect("frame").expect("a picture");
    let red = rgb_at(&frame, WINDOW_AT.0 as usize + 20, WINDOW_AT.1 as usize + 20);
    assert!(red[0] > 180 && red[1] < 80 && red[2] < 80, "{red:?}");

    // Bad input: numbered errors, nothing opened.
    let Err(e) = ScreenSource::open(&window_config(&display, 0x7fff_fff0)) else {
        panic!("opened a window that is not there");
    };
    assert_eq!(
        e.seed_code(),
        ErrorCode::CaptureDeviceNotFound.code(),
        "{e}"
    );
    let Err(e) = ScreenSource::open(&ScreenCaptureConfig {
        target: CaptureTarget::Screen(7),
        ..window_config(&display, 0)
    }) else {
        panic!("opened a screen that is not there");
    };
    assert_eq!(
        e.seed_code(),
        ErrorCode::CaptureDeviceNotFound.code(),
        "{e}"
    );
    let mut config = window_config(&display, window.id);
    let e = config
        .set_screen_profile("4k")
        .expect_err("no such profile");
    assert_eq!(e.seed_code(), ErrorCode::InvalidParameter.code());
    assert_eq!(config.profile, ScreenProfile::default(), "unchanged");

    // The window closes: the capture ends by itself (seed
    // `screen-sharing-stopped`): `next_frame` says so and the flag is set.
    let ended = source.ended_flag();
    assert!(!ended.is_ended());
    window.destroy();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut frames_after = 0;
    while source.next_frame().expect("no error: it ends").is_some() {
        frames_after += 1;
        assert!(
            std::time::Instant::now() < deadline,
            "the capture went on {frames_after} frames after its window closed"
        );
    }
    assert!(ended.is_ended(), "ended by itself");
    eprintln!("the capture ended {frames_after} frames after the window closed");
    drop(source);
    assert!(ended.is_ended(), "the flag outlives the source");
    // A source stopped by its owner has not ended by itself.
    let stopped = screen.ended_flag();
    drop(screen);
    assert!(!stopped.is_ended());
}

/// The share end to end: published beside the camera, announced with
/// `isScreen`, decoded by a subscriber with the window's colours; a second
/// share is refused with 90100250 and the first carries on; when its window
/// closes the SDK unpublishes it and says so (`screen-sharing-stopped`), the
/// viewer is told; an explicitly unpublished share is not reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_window_reaches_a_subscriber() {
    if !xvfb_or_skip("a_shared_window_reaches_a_subscriber") {
        return;
    }
    let display = gui::Display::start();
    let window = TestWindow::open(&display.name, WINDOW_AT, WINDOW);
    let server = common::start_server().await;
    let (presenter, _) = common::join(&server, "screen", "presenter").await;
    let camera = presenter
        .publish(common::synthetic(440.0))
        .await
        .expect("camera published");
    let share = LocalStream::open_screen(&window_config(&display, window.id)).expect("capture");
    assert!(share.is_screen() && share.has_video() && !share.has_audio());
    let shared = presenter.publish(share).await.expect("screen published");

    let (viewer, joined) = common::join(&server, "screen", "viewer").await;
    let mine: Vec<_> = joined
        .streams
        .iter()
        .filter(|s| s.user_id.0 == "presenter")
        .collect();
    assert_eq!(mine.len(), 2, "camera and screen of one user: {mine:?}");
    let info = mine
        .iter()
        .find(|s| s.stream_id == shared)
        .expect("the share is listed");
    assert!(info.is_screen, "{info:?}");
    let video = info.video.expect("video");
    assert_eq!(
        (video.width, video.height, video.frame_rate),
        (u32::from(WINDOW.0), u32::from(WINDOW.1), 15)
    );
    let camera_info = mine.iter().find(|s| s.stream_id == camera).expect("camera");
    assert!(!camera_info.is_screen);

    let remote = viewer
        .subscribe(shared, SubscribeOptions::default())
        .await
        .expect("subscribe");
    assert!(remote.info().is_screen);
    let slot = std::sync::Arc::clone(remote.video());
    let mut last = String::new();
    let frame = common::wait_for(Duration::from_secs(20), "the window's colours", || {
        let frame = slot.latest()?;
        match shows_quadrants(&frame) {
            Ok(()) => Some(frame),
            Err(e) => {
                last = e;
                None
            }
        }
    })
    .await;
    assert_eq!(
        (frame.width, frame.height),
        (u32::from(WINDOW.0), u32::from(WINDOW.1))
    );
    eprintln!(
        "decoded {} frames of the share; last mismatch before it matched: {last:?}",
        remote.stats().frames_decoded
    );

    // A second share of the same user: refused, the first goes on.
    let again = LocalStream::open_screen(&window_config(&display, window.id)).expect("capture");
    let e = presenter
        .publish(again)
        .await
        .expect_err("one share per user");
    assert_eq!(e.code(), ErrorCode::DesktopNumberOutOfRange, "{e}");
    let before = remote.stats().frames_decoded;
    let since = std::time::Instant::now();
    common::wait_for(Duration::from_secs(10), "more frames of the share", || {
        (remote.stats().frames_decoded >= before + 10).then_some(())
    })
    .await;
    eprintln!(
        "10 more frames in {:?}; publisher: {:?}",
        since.elapsed(),
        presenter.send_rate(shared).await
    );

    // The window closes (the capture ends without an error): the SDK
    // unpublishes the share by itself and says so once (seed
    // `screen-sharing-stopped`); the viewer is told the stream is gone.
    window.destroy();
    let mut stopped = Vec::new();
    common::wait_event(
        &presenter,
        Duration::from_secs(10),
        "screen-sharing-stopped",
        |e| {
            let RoomEvent::ScreenSharingStopped { stream_id } = e else {
                return None;
            };
            stopped.push(*stream_id);
            Some(())
        },
    )
    .await;
    assert_eq!(stopped, [shared]);
    common::wait_event(&viewer, Duration::from_secs(10), "stream-removed", |e| {
        matches!(e, RoomEvent::StreamRemoved { stream_id, .. } if *stream_id == shared)
            .then_some(())
    })
    .await;
    let e = presenter
        .unpublish(shared)
        .await
        .expect_err("already unpublished by the SDK");
    assert_eq!(e.code(), ErrorCode::InvalidParameter, "{e}");

    // Bad path: a share stopped by its user (explicit unpublish) is not
    // reported, not even when its window closes afterwards.
    let second = TestWindow::open(&display.name, WINDOW_AT, WINDOW);
    let share = LocalStream::open_screen(&window_config(&display, second.id)).expect("capture");
    let again = presenter.publish(share).await.expect("a new share");
    presenter.unpublish(again).await.expect("unpublish");
    second.destroy();
    common::wait_event(&viewer, Duration::from_secs(10), "stream-removed", |e| {
        matches!(e, RoomEvent::StreamRemoved { stream_id, .. } if *stream_id == again).then_some(())
    })
    .await;
    // A round trip through the presenter's session after the window closed:
    // whatever it would have emitted is in its channel by then.
    presenter
        .unpublish(again)
        .await
        .expect_err("already unpublished");
    presenter
        .send_rate(camera)
        .await
        .expect("the camera is still published");
    while let Ok(event) = presenter.events().try_recv() {
        if let RoomEvent::ScreenSharingStopped { stream_id } = event {
            stopped.push(stream_id);
        }
    }
    assert_eq!(stopped, [shared], "only the share that ended by itself");
    // The camera carries on.
    assert!(
        !viewer.events().try_iter().any(
            |e| matches!(e, RoomEvent::StreamRemoved { stream_id, .. } if stream_id == camera)
        ),
        "the camera was not removed"
    );
}

/// A raw `publish` frame with `isScreen` set to `is_screen` (JSON), and a
/// fresh offer (kept open until the reply is in).
async fn raw_publish(
    raw: &mut common::RawSocket,
    id: u64,
    is_screen: &str,
) -> huddle::protocol::ServerMessage {
    let (link, offer) = common::publish_offer(false, true).await;
    let screen = if is_screen.is_empty() {
        String::new()
    } else {
        format!(r#","isScreen":{is_screen}"#)
    };
    raw.send(&format!(
        r#"{{"id":{id},"type":"publish","audio":false,"video":{{"width":640,"height":360,"frameRate":15}},"sdp":{}{screen}}}"#,
        common::json_string(&offer)
    ))
    .await;
    // The answer to this request (the server's candidates may come first).
    let reply = raw
        .recv_until(Duration::from_secs(10), "the publish answer", |m| {
            use huddle::protocol::ServerMessage;
            match m {
                ServerMessage::Reply { id: got, .. } if got.0 == id => Some(m.clone()),
                ServerMessage::Error(e) if e.id.is_some_and(|got| got.0 == id) => Some(m.clone()),
                _ => None,
            }
        })
        .await;
    link.close().await;
    reply
}

/// `isScreen` on the wire, as a client that is not the SDK sends it: a
/// wrong type is 90000005, a second share 90100250, and the session goes on
/// (a camera stream is still published). Needs no display.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn is_screen_bad_input_gets_numbered_errors() {
    let server = common::start_server().await;
    let mut raw = common::RawSocket::connect(&server).await;
    raw.joined("raw-screen", "ada").await;
    let (id, code) = common::expect_error(raw_publish(&mut raw, 2, r#""yes""#).await);
    assert_eq!(
        (id.map(|i| i.0), code),
        (Some(2), ErrorCode::InvalidParameter)
    );
    let published = |m: &huddle::protocol::ServerMessage| {
        matches!(
            m,
            huddle::protocol::ServerMessage::Reply {
                reply: huddle::protocol::Reply::Published { .. },
                ..
            }
        )
    };
    let first = raw_publish(&mut raw, 3, "true").await;
    assert!(published(&first), "{first:?}");
    let (id, code) = common::expect_error(raw_publish(&mut raw, 4, "true").await);
    assert_eq!(
        (id.map(|i| i.0), code),
        (Some(4), ErrorCode::DesktopNumberOutOfRange)
    );
    let camera = raw_publish(&mut raw, 5, "").await;
    assert!(published(&camera), "{camera:?}");
    // The room lists one share and one camera of ada.
    let (viewer, joined) = common::join(&server, "raw-screen", "viewer").await;
    let shares: Vec<bool> = joined.streams.iter().map(|s| s.is_screen).collect();
    assert_eq!(shares, [true, false], "{:?}", joined.streams);
    drop(viewer);
}

/// `huddle bot --screen`: the binary shares the window, a subscriber decodes
/// its colours; a window that is not there ends the bot with 90100019 and a
/// malformed target is refused before it joins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_shares_a_window() {
    if !xvfb_or_skip("the_bot_shares_a_window") {
        return;
    }
    let display = gui::Display::start();
    let window = TestWindow::open(&display.name, WINDOW_AT, WINDOW);
    let server = common::start_server().await;
    let bot = |screen: String| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_huddle"));
        command
            .args(["bot", "--server", &server.url, "--room", "bot-screen"])
            .args(["--user", "presenter", "--app-id", common::APP_ID])
            .args(["--app-key", common::APP_KEY, "--duration", "60"])
            .args(["--screen", &screen, "--display", &display.name])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        command
    };
    for (target, says) in [
        ("window:0x7ffffff0".to_owned(), "90100019"),
        ("window:nope".to_owned(), "--screen"),
    ] {
        let out = tokio::task::spawn_blocking({
            let mut command = bot(target.clone());
            move || command.output().expect("run the bot")
        })
        .await
        .expect("join");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{target}: {stderr}");
        assert!(stderr.contains(says), "{target}: {stderr}");
    }

    let (viewer, _) = common::join(&server, "bot-screen", "viewer").await;
    let _bot = gui::KillOnDrop(
        bot(format!("window:0x{:x}", window.id))
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the bot"),
    );
    let info = common::wait_event(
        &viewer,
        Duration::from_secs(30),
        "the bot's share",
        |e| match e {
            RoomEvent::StreamAdded(info) if info.is_screen => Some(info.clone()),
            _ => None,
        },
    )
    .await;
    assert_eq!(info.user_id.0, "presenter");
    let remote = viewer
        .subscribe(info.stream_id, SubscribeOptions::default())
        .await
        .expect("subscribe");
    let slot = std::sync::Arc::clone(remote.video());
    common::wait_for(Duration::from_secs(20), "the window's colours", || {
        shows_quadrants(&slot.latest()?).ok()
    })
    .await;
}
