//! The desktop app in kiosk mode shows a remote publisher's moving video:
//! server and publishing bot in this process, the built `huddle` binary under
//! a private Xvfb (wgpu on lavapipe), two screenshots a second apart.
//!
//! Skips, saying why, when Xvfb/ImageMagick are missing (fails on CI). Set
//! `HUDDLE_SAVE_SCREENSHOT=1` to refresh `docs/screenshot.png`.
#![cfg(feature = "app")]

mod common;
mod gui;

use std::time::{Duration, Instant};

use huddle::bot::{self};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kiosk_shows_a_moving_remote_picture() {
    if !gui::tools_or_skip("kiosk_shows_a_moving_remote_picture") {
        return;
    }
    let server = common::start_server().await;
    let (stop_bot, bot_stopped) = tokio::sync::oneshot::channel::<()>();
    let bot = tokio::spawn(bot::run(
        common::publishing_bot(&server.url, "screen", "camera-bot", "360p_2", 440.0),
        async {
            bot_stopped.await.ok();
        },
    ));

    let display = gui::Display::start();
    let _app = gui::KillOnDrop(display.launch_huddle(&[
        "--kiosk",
        "--server",
        &server.url,
        "--room",
        "screen",
        "--user",
        "wall",
        "--app-id",
        common::APP_ID,
        "--app-key",
        common::APP_KEY,
        "--window-size",
        "1280x720",
    ]));

    // Both the bot and the kiosk in the room, then give video time to flow.
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.server.metrics().users < 2 {
        assert!(Instant::now() < deadline, "kiosk never joined");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;

    let dir = std::env::temp_dir().join(format!("huddle-shots-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("shot dir");
    let first_path = dir.join("first.png");
    let second_path = dir.join("second.png");
    let first = display.screenshot(&first_path);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let second = display.screenshot(&second_path);

    // One remote stream fills the kiosk; look at the middle of the screen.
    let (w, h) = gui::SCREEN;
    let region = (w / 4, h / 4, w / 2, h / 2);
    let stddev = first.luma_stddev(region.0, region.1, region.2, region.3);
    let changed = first.changed_share(&second, region.0, region.1, region.2, region.3);
    eprintln!(
        "remote tile: luma stddev {stddev:.1}, {:.1}% of pixels changed in 1 s",
        changed * 100.0
    );
    assert!(
        stddev > 10.0,
        "remote tile looks blank (luma stddev {stddev:.1})"
    );
    assert!(
        changed > 0.005,
        "picture did not change in 1 s ({changed:.4})"
    );
    // Read the pattern's stamp back off the screen: a 480x360 (4:3) picture
    // in a 16:9 kiosk with `contain` is 960x720 at x = 160.
    let picture = (160, 0, 960, 720);
    let stamp = |p: &std::path::Path| {
        huddle::media::read_stamp(&gui::frame_from_region(p, picture, (480, 360)))
    };
    let (a, b) = (stamp(&first_path), stamp(&second_path));
    eprintln!("stamps read off the screen: {a:?} then {b:?}");
    let (a, b) = (
        a.expect("first stamp unreadable"),
        b.expect("second stamp unreadable"),
    );
    let advanced = b.frame_no.wrapping_sub(a.frame_no);
    assert!(
        (5..=30).contains(&advanced),
        "frame number advanced by {advanced} in 1 s (15 fps expected)"
    );

    if std::env::var_os("HUDDLE_SAVE_SCREENSHOT").is_some() {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshot.png");
        std::fs::copy(&first_path, docs).expect("save docs/screenshot.png");
    }
    stop_bot.send(()).ok(); // the bot may have stopped already
    bot.await.ok();
}
