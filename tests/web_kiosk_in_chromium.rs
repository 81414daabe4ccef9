//! Issue 14 §2 and §3 in the browser: the server's page as a kiosk
//! (`?kiosk=1`) in headless Chromium (loopback only, no STUN, `iceServers:
//! []`) follows the room's program that a director (an SDK client with a
//! director signature) sets, and shows a shared screen whole with a label.
//!
//! Three native publishers with pictures of different sizes (a 480x360
//! camera, a 640x360 camera, a 1280x720 screen share), so the size a video
//! element decodes tells which stream it plays. The page's state is read
//! with `huddle.summary()`: the program it shows, the streams it receives,
//! and for each visible tile the stream id, the decoded size and frame count,
//! the `object-fit` in force and the screen label. Needs Chromium
//! (`common::skip` without it; CI installs it).
#![cfg(feature = "client")]

mod common;

use std::time::{Duration, Instant};

use common::chromium::{Chromium, Page};
use common::*;
use huddle::client::{Client, Credential, LocalStream, Program, ProgramLayout, Role, StreamId};
use huddle::media::{AudioProfile, ScreenProfile, SyntheticVideo, VideoProfile};
use serde_json::{Value, json};

/// The browser starts, gathers, subscribes and decodes on a busy machine.
const MEDIA_TIMEOUT: Duration = Duration::from_secs(30);
const ROOM: &str = "web-show";
const SUMMARY: &str = "window.huddle ? huddle.summary() : null";

/// The visible tiles once they are exactly `expected` (stream ids in their
/// places), each decoding (a frame at the size its publisher sends), and
/// the page receiving only `receiving`.
async fn wait_showing(
    browser: &mut Chromium,
    page: &Page,
    what: &str,
    expected: &[(StreamId, u64)],
    receiving: &[StreamId],
) -> Vec<Value> {
    let mut receiving: Vec<u64> = receiving.iter().map(|s| s.0).collect();
    receiving.sort_unstable();
    browser
        .wait_for(page, MEDIA_TIMEOUT, what, SUMMARY, |s| {
            let kiosk = &s["kiosk"];
            let visible = kiosk["visible"].as_array()?;
            let mut subscribed: Vec<u64> = kiosk["subscribed"]
                .as_array()?
                .iter()
                .filter_map(Value::as_u64)
                .collect();
            subscribed.sort_unstable();
            let shows = visible.len() == expected.len()
                && visible.iter().zip(expected).all(|(tile, (id, width))| {
                    tile["streamId"] == json!(id.0)
                        && tile["videoWidth"] == json!(width)
                        && tile["frames"].as_u64() > Some(0)
                });
            (shows && subscribed == receiving && kiosk["cueing"] == false).then(|| visible.clone())
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_web_kiosk_follows_the_program_and_shows_screens_whole() {
    const TEST: &str = "the_web_kiosk_follows_the_program_and_shows_screens_whole";
    let Some(mut browser) = Chromium::start_or_skip(TEST, &[]).await else {
        return;
    };
    let server = start_server().await;
    // Two cameras of different shapes and a presenter's screen.
    let (cam_a, _) = join(&server, ROOM, "cam-a").await;
    let a = cam_a.publish(synthetic(440.0)).await.expect("A publishes");
    let (cam_b, _) = join(&server, ROOM, "cam-b").await;
    let wide = *VideoProfile::by_name("360p_1").expect("profile");
    let b = cam_b
        .publish(LocalStream::synthetic(wide, AudioProfile::default(), 660.0))
        .await
        .expect("B publishes");
    let (presenter, _) = join(&server, ROOM, "presenter").await;
    let profile = ScreenProfile::default();
    let size = profile.video_profile();
    let source = SyntheticVideo::new(size.width, size.height, size.frame_rate);
    let screen = presenter
        .publish(LocalStream::screen(Box::new(source), profile))
        .await
        .expect("the screen share publishes");

    let director = Client::new();
    let info = director
        .join(huddle::client::JoinConfig {
            credential: Credential::DirectorKey {
                key: APP_KEY.into(),
                valid_for: Duration::from_secs(600),
            },
            ..join_config(&server, ROOM, "host", Role::Player)
        })
        .await
        .expect("the director joins");
    assert!(info.director, "a director signature");
    director
        .set_program(Program::single(a))
        .await
        .expect("A on air");

    let url = format!(
        "{}/?app={APP_ID}&room={ROOM}&user=hall&role=2&kiosk=1&autojoin=1",
        server.url.replacen("ws://", "http://", 1)
    );
    let page = browser.open(&url).await;
    // It joined with A on air: it shows A and receives nothing else.
    let shown = wait_showing(&mut browser, &page, "the kiosk on A", &[(a, 480)], &[a]).await;
    println!("on A: {shown:?}");
    let summary = browser.eval(&page, SUMMARY).await;
    assert_eq!(summary["state"], "joined", "{summary:#}");
    assert_eq!(summary["kiosk"]["shown"]["layout"], "single", "{summary:#}");

    // B on air: the page subscribes B, cuts at its first frame, drops A.
    director
        .set_program(Program::single(b))
        .await
        .expect("B on air");
    let switched = Instant::now();
    wait_showing(&mut browser, &page, "the kiosk on B", &[(b, 640)], &[b]).await;
    println!(
        "the kiosk on B alone {:?} after the change",
        switched.elapsed()
    );

    // The screen beside A: the screen whole (`contain`) and labelled, the
    // camera filling its cell.
    let pair = Program {
        layout: ProgramLayout::SideBySide,
        streams: vec![screen, a],
    };
    director.set_program(pair).await.expect("the pair on air");
    let tiles = wait_showing(
        &mut browser,
        &page,
        "the kiosk on the screen and A",
        &[(screen, u64::from(size.width)), (a, 480)],
        &[screen, a],
    )
    .await;
    assert_eq!(tiles[0]["objectFit"], "contain", "{tiles:?}");
    assert_eq!(tiles[0]["screenLabel"], "screen", "{tiles:?}");
    assert_eq!(tiles[1]["objectFit"], "cover", "{tiles:?}");
    assert_eq!(tiles[1]["screenLabel"], false, "{tiles:?}");
    let (w0, w1) = (tiles[0]["width"].as_f64(), tiles[1]["width"].as_f64());
    assert!(
        w0.zip(w1)
            .is_some_and(|(l, r)| (l - r).abs() < 2.0 && l > 100.0),
        "side by side: two cells of one width, {tiles:?}"
    );

    // The README's picture of a web kiosk.
    let png = browser.screenshot(&page).await;
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("web_kiosk_side_by_side.png");
    std::fs::write(&path, &png).expect("write screenshot");
    println!("screenshot: {}", path.display());

    // Off air: the whole room again.
    director.set_program(Program::off()).await.expect("off air");
    let mut all = [(a, 480), (b, 640), (screen, u64::from(size.width))];
    all.sort_by_key(|(id, _)| id.0);
    let ids: Vec<StreamId> = all.iter().map(|(id, _)| *id).collect();
    wait_showing(&mut browser, &page, "the kiosk off air", &all, &ids).await;
    let summary = browser.eval(&page, SUMMARY).await;
    assert!(
        summary["errors"].as_array().is_some_and(Vec::is_empty),
        "{summary:#}"
    );
    drop((cam_a, cam_b, presenter, director));
}
