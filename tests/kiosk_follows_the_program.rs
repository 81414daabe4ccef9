//! Issue 14 §4 with the real binary: a kiosk (`huddle --kiosk` under a
//! private Xvfb, wgpu on lavapipe) follows the room's program, read back off
//! its screen. Two bots publish pictures of different shapes (4:3 and
//! 16:9), so a screenshot tells which one is on screen: the 4:3 one leaves
//! dark bars left and right, the 16:9 one fills the screen (their stamps are
//! read in the matching place and logged). A director (an SDK client with a director
//! signature) puts A on air, then B: every screenshot begun 1 s or more after
//! the switch shows B, and no screenshot shows neither (no black flash).
//! The kiosk receives only the on-air stream and holds B on standby (a
//! paused subscription), so the second includes resuming B
//! (`ui::console::reception`).
//!
//! Skips, saying why, when Xvfb/ImageMagick are missing (fails on CI).
#![cfg(feature = "client")]
#![cfg(feature = "app")]

mod common;
mod gui;

use std::path::Path;
use std::time::{Duration, Instant};

use huddle::bot;
use huddle::client::{Client, Credential, Program, RoomEvent};

/// A 480x360 (4:3) picture in the 16:9 screen with `contain`: 960x720 at x = 160.
const FOUR_THREE: (usize, usize, usize, usize) = (160, 0, 960, 720);
/// A 640x360 (16:9) picture fills it.
const SIXTEEN_NINE: (usize, usize, usize, usize) = (0, 0, 1280, 720);
/// Left of the 4:3 picture: dark bars for A, picture for B.
const LEFT_BAND: (usize, usize, usize, usize) = (8, 40, 140, 640);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// A's 4:3 picture with its stamp, dark bars beside it.
    A,
    /// B's 16:9 picture, edge to edge, with its stamp.
    B,
    /// Neither: an empty or black screen, or a picture without a stamp.
    Neither,
}

fn look(display: &gui::Display, path: &Path) -> (Seen, Instant) {
    let started = Instant::now();
    let screen = display.screenshot(path);
    let (x, y, w, h) = LEFT_BAND;
    let band = screen.luma_stddev(x, y, w, h);
    // The middle of the screen, inside either picture.
    let middle = screen.luma_stddev(400, 120, 480, 400);
    // Stamps (top rows, bottom-left number) are read where no toast can be:
    // a toast sits in the top-right corner, so the stamp is only a check when
    // it reads at all; the picture's shape decides.
    let seen = match (band < 3.0, band > 10.0, middle > 10.0) {
        (true, _, true) => Seen::A,
        (_, true, true) => Seen::B,
        _ => Seen::Neither,
    };
    let stamp = match seen {
        Seen::A => huddle::media::read_stamp(&gui::frame_from_region(path, FOUR_THREE, (480, 360))),
        Seen::B => {
            huddle::media::read_stamp(&gui::frame_from_region(path, SIXTEEN_NINE, (640, 360)))
        }
        Seen::Neither => None,
    };
    eprintln!("left band {band:.1}, middle {middle:.1}: {seen:?}, stamp {stamp:?}");
    (seen, started)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_kiosk_shows_what_the_director_puts_on_air() {
    if !gui::tools_or_skip("the_kiosk_shows_what_the_director_puts_on_air") {
        return;
    }
    let server = common::start_server().await;
    let room = "on-air";
    let mut stops = Vec::new();
    for (user, profile) in [("cam-a", "360p_2"), ("cam-b", "360p_1")] {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        stops.push(stop);
        tokio::spawn(bot::run(
            common::publishing_bot(&server.url, room, user, profile, 440.0),
            async {
                stopped.await.ok();
            },
        ));
    }
    let director = Client::new();
    let info = director
        .join(huddle::client::JoinConfig {
            credential: Credential::DirectorKey {
                key: common::APP_KEY.into(),
                valid_for: Duration::from_secs(600),
            },
            ..common::join_config(&server, room, "host", huddle::client::Role::Player)
        })
        .await
        .expect("director joins");
    assert!(info.director);
    // The bots may have published before the director joined: take the
    // streams from `joined` too.
    let mut a = info
        .streams
        .iter()
        .find(|s| s.video.is_some_and(|v| v.width == 480))
        .map(|s| s.stream_id);
    let mut b = info
        .streams
        .iter()
        .find(|s| s.video.is_some_and(|v| v.width == 640))
        .map(|s| s.stream_id);
    let (a, b) = common::wait_for(Duration::from_secs(30), "both cameras published", || {
        for e in director.events().try_iter() {
            if let RoomEvent::StreamAdded(s) = e {
                match s.video.map(|v| v.width) {
                    Some(480) => a = Some(s.stream_id),
                    Some(640) => b = Some(s.stream_id),
                    _ => {}
                }
            }
        }
        a.zip(b)
    })
    .await;

    director
        .set_program(Program::single(a))
        .await
        .expect("A on air");
    let display = gui::Display::start();
    let _kiosk = gui::KillOnDrop(display.launch_huddle(&[
        "--kiosk",
        "--server",
        &server.url,
        "--room",
        room,
        "--user",
        "hall",
        "--app-id",
        common::APP_ID,
        "--app-key",
        common::APP_KEY,
        "--window-size",
        "1280x720",
    ]));
    let dir = std::env::temp_dir().join(format!("huddle-program-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("shot dir");
    let path = dir.join("kiosk.png");
    common::wait_for(Duration::from_secs(60), "the kiosk showing A alone", || {
        let (seen, _) = look(&display, &path);
        eprintln!("before the switch: {seen:?}");
        (seen == Seen::A).then_some(())
    })
    .await;
    // The kiosk receives only what is on air (A), B on standby: B resumes
    // when it goes on air, so the second it has includes B's keyframe.

    director
        .set_program(Program::single(b))
        .await
        .expect("B on air");
    let switched = Instant::now();
    let mut shots = Vec::new();
    loop {
        let (seen, started) = look(&display, &path);
        let at = started.saturating_duration_since(switched);
        eprintln!("{at:?} after the switch: {seen:?}");
        shots.push((at, seen));
        if seen == Seen::Neither {
            std::fs::copy(&path, std::env::temp_dir().join("kiosk-neither.png")).ok();
        }
        assert_ne!(
            seen,
            Seen::Neither,
            "a screenshot begun {at:?} after the switch shows neither picture (a black flash?)"
        );
        if seen == Seen::B {
            break;
        }
        assert!(
            at < Duration::from_secs(1),
            "a screenshot begun {at:?} after the switch still shows A"
        );
    }
    // And it stays on B.
    for _ in 0..3 {
        let (seen, started) = look(&display, &path);
        assert_eq!(seen, Seen::B, "{:?} after the switch", started - switched);
    }
    eprintln!("screenshots after the switch: {shots:?}");
    let _ = std::fs::remove_dir_all(&dir);
    drop(stops);
}
