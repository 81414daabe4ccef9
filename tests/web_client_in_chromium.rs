//! The server's own web page in a real browser: headless Chromium (fake
//! camera and microphone, no network but loopback, no STUN) opens `/`,
//! joins with the page's form and talks to native clients of the SDK in the
//! same room, as a user would.
//!
//! The browser side is read from the page itself: `huddle.summary()` reports
//! what its tiles show, from `getStats` (`framesDecoded`, `totalAudioEnergy`)
//! and the room events it handled. Buttons are clicked as a user clicks
//! them. Needs Chromium (`common::skip` without it; CI installs it).
#![cfg(feature = "client")]

mod common;

use std::time::Duration;

use common::chromium::{Chromium, Page};
use common::*;
use huddle::client::{Client, DropReason, FrameOutcome, RoomEvent, SubscribeOptions};
use huddle::protocol::{LayerChoice, LeaveReason, StreamId};
use huddle::server::ServerConfig;
use serde_json::Value;

/// Media waits: the browser starts, gathers, encodes and decodes on a busy
/// 2-core machine.
const MEDIA_TIMEOUT: Duration = Duration::from_secs(30);
/// Signalling waits (a click and the event it causes).
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames each side must decode of the other's video.
const FRAMES: u64 = 30;

const SUMMARY: &str = "window.huddle ? huddle.summary() : null";

fn page_url(server: &TestServer, query: &str) -> String {
    format!("{}/?{query}", server.url.replacen("ws://", "http://", 1))
}

async fn click(browser: &mut Chromium, page: &Page, id: &str) {
    let clicked = browser
        .eval(
            page,
            &format!(
                "(() => {{ const b = document.getElementById('{id}'); if (b.disabled) return false; b.click(); return true; }})()"
            ),
        )
        .await;
    assert_eq!(clicked, Value::Bool(true), "#{id} is disabled");
}

/// The summary of the remote tile of `user`'s stream, once `check` holds.
async fn wait_remote(
    browser: &mut Chromium,
    page: &Page,
    what: &str,
    timeout: Duration,
    user: &str,
    mut check: impl FnMut(&Value) -> bool,
) -> Value {
    browser
        .wait_for(page, timeout, what, SUMMARY, |s| {
            s["remote"]
                .as_array()?
                .iter()
                .find(|t| t["userId"] == user)
                .filter(|t| check(t))
                .cloned()
        })
        .await
}

/// The first stream `user` publishes, as `client` hears of it.
async fn stream_of(client: &Client, user: &str) -> StreamId {
    wait_event(
        client,
        MEDIA_TIMEOUT,
        &format!("{user}'s stream"),
        |e| match e {
            RoomEvent::StreamAdded(s) if s.user_id.0 == user => Some(s.stream_id),
            _ => None,
        },
    )
    .await
}

/// A browser and a native client in one room: each decodes the other's
/// video, the browser hears the native tone, follows its rename, and each
/// sees the other's mute;
/// the browser sees the native client leave, and a native watcher sees the
/// browser leave. Saves a screenshot of the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_browser_and_a_native_client_see_and_hear_each_other() {
    const TEST: &str = "a_browser_and_a_native_client_see_and_hear_each_other";
    let Some(mut browser) = Chromium::start_or_skip(TEST, &[]).await else {
        return;
    };
    let server = start_server().await;
    let (native, _) = join(&server, "web-call", "native").await;
    let native_stream = native.publish(synthetic(440.0)).await.expect("publish");
    let (watcher, _) = join(&server, "web-call", "watcher").await;

    let page = browser
        .open(&page_url(
            &server,
            &format!("app={APP_ID}&room=web-call&user=browser&name=Browser"),
        ))
        .await;
    browser
        .wait_for(&page, EVENT_TIMEOUT, "the page's script", SUMMARY, |s| {
            (s["state"] == "idle").then_some(())
        })
        .await;
    click(&mut browser, &page, "join").await;

    // The native client watches the browser.
    let browser_stream = stream_of(&native, "browser").await;
    let remote = native
        .subscribe(browser_stream, SubscribeOptions::default())
        .await
        .expect("subscribe to the browser");

    // The browser decodes the native video and hears its tone.
    let tile = wait_remote(
        &mut browser,
        &page,
        "the browser decodes the native video and hears its audio",
        MEDIA_TIMEOUT,
        "native",
        |t| {
            t["media"]["video"]["frames"].as_u64() >= Some(FRAMES)
                && t["media"]["audio"]["totalAudioEnergy"].as_f64() > Some(0.0)
        },
    )
    .await;
    assert_eq!(tile["media"]["video"]["codec"], "H264", "{tile:#}");
    assert_eq!(tile["media"]["audio"]["codec"], "opus", "{tile:#}");
    assert_eq!(tile["userName"], "native (test)", "{tile:#}");
    println!("browser's tile of the native stream: {tile}");

    // The native client decodes the browser's video (Chromium's H.264) and audio.
    let stats = wait_for(MEDIA_TIMEOUT, "native decodes the browser", || {
        let s = remote.stats();
        (s.frames_decoded >= FRAMES && s.audio_frames_decoded >= 50).then_some(s)
    })
    .await;
    println!(
        "native decoded {} frames ({:?}) and {} audio frames of the browser",
        stats.frames_decoded, stats.last_size, stats.audio_frames_decoded
    );
    // Both subscriptions would resend as RTX (RFC 4588): Chromium's answer
    // keeps it, as the SDK's does (`GET /rooms/{id}`, docs/protocol.md).
    let (status, room) = http_get_json(&server, "/rooms/web-call").await;
    assert_eq!(status, 200, "{room:#}");
    for user in ["browser", "native"] {
        let link = room["links"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["kind"] == "subscription" && l["userId"] == user)
            .unwrap_or_else(|| panic!("{user}'s subscription in {room:#}"));
        assert_eq!(link["rtx"], true, "{user}'s subscription: {link:#}");
    }
    let summary = browser.eval(&page, SUMMARY).await;
    let local = &summary["local"];
    assert_eq!(local["media"]["video"]["codec"], "H264", "{summary:#}");

    // While both are in the call: the README's picture.
    let png = browser.screenshot(&page).await;
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("web_client_call.png");
    std::fs::write(&path, &png).expect("write screenshot");
    println!("screenshot: {}", path.display());

    // The tile's stats line, the device pickers (filled once the camera is
    // allowed: Chromium's fake devices), and Silence for one tile.
    let shown = browser
        .eval(
            &page,
            &format!(
                "(() => {{ const t = document.querySelector('.tile[data-stream-id=\"{}\"]'); \
                 t.querySelector('.silence').click(); \
                 return {{ stats: t.querySelector('.stats').textContent, silenced: t.querySelector('video').muted, \
                 cameras: document.getElementById('camera').options.length, \
                 mics: document.getElementById('mic').options.length }}; }})()",
                native_stream.0
            ),
        )
        .await;
    let stats = shown["stats"].as_str().unwrap_or_default();
    assert!(
        stats.contains("H264 480×360") && stats.contains("fps") && stats.contains("opus"),
        "{shown}"
    );
    assert_eq!(shown["silenced"], true, "{shown}");
    // "default" and "no camera" plus at least one device of each kind.
    assert!(
        shown["cameras"].as_u64() >= Some(3) && shown["mics"].as_u64() >= Some(3),
        "{shown}"
    );

    // The native client renames itself: the browser's tile follows.
    native
        .change_user_name("Native Renamed")
        .await
        .expect("rename");
    wait_remote(
        &mut browser,
        &page,
        "the browser shows the new name",
        EVENT_TIMEOUT,
        "native",
        |t| t["userName"] == "Native Renamed",
    )
    .await;
    let caption = browser
        .eval(
            &page,
            &format!(
                "document.querySelector('.tile[data-stream-id=\"{}\"] .name').textContent",
                native_stream.0
            ),
        )
        .await;
    assert_eq!(caption, "Native Renamed");

    // The native client mutes its microphone: the browser's tile says so.
    native
        .set_muted(native_stream, true, false)
        .await
        .expect("mute");
    wait_remote(
        &mut browser,
        &page,
        "the browser shows the native mute",
        EVENT_TIMEOUT,
        "native",
        |t| t["audioMuted"] == true && t["videoMuted"] == false,
    )
    .await;
    let badge = browser
        .eval(
            &page,
            &format!(
                "document.querySelector('.tile[data-stream-id=\"{}\"] .mic-off').hidden",
                native_stream.0
            ),
        )
        .await;
    assert_eq!(badge, Value::Bool(false), "the mic-off badge shows");

    // The browser mutes its microphone, then its camera: the native client hears of each.
    click(&mut browser, &page, "mute-mic").await;
    wait_event(
        &native,
        EVENT_TIMEOUT,
        "the browser's mic mute",
        |e| match e {
            RoomEvent::StreamUpdated(s) if s.stream_id == browser_stream => {
                (s.audio_muted && !s.video_muted).then_some(())
            }
            _ => None,
        },
    )
    .await;
    click(&mut browser, &page, "mute-camera").await;
    wait_event(
        &native,
        EVENT_TIMEOUT,
        "the browser's camera mute",
        |e| match e {
            RoomEvent::StreamUpdated(s) if s.stream_id == browser_stream => {
                (s.audio_muted && s.video_muted).then_some(())
            }
            _ => None,
        },
    )
    .await;

    // The native client leaves: its tile goes.
    native.leave().await.expect("leave");
    browser
        .wait_for(
            &page,
            EVENT_TIMEOUT,
            "the native tile and user to go",
            "(() => { const s = huddle.summary(); return { remote: s.remote.length, \
             tiles: document.querySelectorAll('#grid .tile:not(.local)').length, \
             native: s.users.some(u => u.userId === 'native') }; })()",
            |v| (v["remote"] == 0 && v["tiles"] == 0 && v["native"] == false).then_some(()),
        )
        .await;

    // The browser leaves: the watcher sees it go as a user who left (0).
    click(&mut browser, &page, "leave").await;
    wait_event(
        &watcher,
        EVENT_TIMEOUT,
        "the browser's leave",
        |e| match e {
            RoomEvent::PeerLeave { user_id, reason } if user_id.0 == "browser" => Some(*reason),
            _ => None,
        },
    )
    .await
    .eq(&LeaveReason::UserExit)
    .then_some(())
    .expect("left as a user exit");
    let end = browser.eval(&page, SUMMARY).await;
    assert_eq!(end["state"], "left", "{end:#}");
    assert_eq!(end["errors"], serde_json::json!([]), "{end:#}");
}

/// A signature pasted into the page works as one from `/signature`; a wrong
/// one is refused with its number, and the room carries on. A server that
/// guards `/signature` with a token serves the page's request only with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_joins_with_a_pasted_signature_or_a_token() {
    const TEST: &str = "the_page_joins_with_a_pasted_signature_or_a_token";
    let Some(mut browser) = Chromium::start_or_skip(TEST, &[]).await else {
        return;
    };
    let mut config = ServerConfig::new(test_apps());
    config.signature_token = Some("s3cret".into());
    let server = start_server_with(config).await;
    let (native, _) = join(&server, "web-sig", "native").await;
    let joined_state = |s: &Value| (s["state"] == "joined").then_some(());
    let error_code = |s: &Value| {
        s["errors"]
            .as_array()
            .and_then(|e| e.first())
            .map(|e| e["code"].clone())
    };
    let no_media = "camera=none&mic=none";

    // A wrong pasted signature: 90100031, shown on the page.
    let ctime = huddle::auth::now_unix() + 600;
    let wrong = huddle::auth::sign("not-the-key", APP_ID, "web-sig", "pasted", ctime);
    let page = browser
        .open(&page_url(
            &server,
            &format!("app={APP_ID}&room=web-sig&user=pasted&signature={wrong}&ctime={ctime}&{no_media}&autojoin=1"),
        ))
        .await;
    let code = browser
        .wait_for(&page, EVENT_TIMEOUT, "the refusal", SUMMARY, error_code)
        .await;
    assert_eq!(code, 90100031);
    let shown = browser
        .eval(&page, "document.getElementById('error').textContent")
        .await;
    assert!(
        shown.as_str().is_some_and(|t| t.contains("90100031")),
        "{shown}"
    );

    // The right one joins.
    let right = huddle::auth::sign(APP_KEY, APP_ID, "web-sig", "pasted", ctime);
    let page = browser
        .open(&page_url(
            &server,
            &format!("app={APP_ID}&room=web-sig&user=pasted&signature={right}&ctime={ctime}&{no_media}&autojoin=1"),
        ))
        .await;
    browser
        .wait_for(
            &page,
            EVENT_TIMEOUT,
            "a pasted-signature join",
            SUMMARY,
            joined_state,
        )
        .await;
    wait_event(
        &native,
        EVENT_TIMEOUT,
        "the pasted user's join",
        |e| match e {
            RoomEvent::PeerJoin(u) if u.user_id.0 == "pasted" => Some(()),
            _ => None,
        },
    )
    .await;

    // From /signature without the token: 401 with 90000005, shown; with it: joined.
    let page = browser
        .open(&page_url(
            &server,
            &format!("app={APP_ID}&room=web-sig&user=tokened&{no_media}&autojoin=1"),
        ))
        .await;
    let code = browser
        .wait_for(
            &page,
            EVENT_TIMEOUT,
            "the token refusal",
            SUMMARY,
            error_code,
        )
        .await;
    assert_eq!(code, 90000005);
    browser
        .eval(
            &page,
            "document.getElementById('token').value = 's3cret'; \
             document.getElementById('sig-server').checked = true; true",
        )
        .await;
    click(&mut browser, &page, "join").await;
    browser
        .wait_for(&page, EVENT_TIMEOUT, "a token join", SUMMARY, joined_state)
        .await;
    wait_event(
        &native,
        EVENT_TIMEOUT,
        "the token user's join",
        |e| match e {
            RoomEvent::PeerJoin(u) if u.user_id.0 == "tokened" => Some(()),
            _ => None,
        },
    )
    .await;
    native.leave().await.ok(); // the test is over either way
}

/// A browser without H.264 (emulated: its capabilities lose every H.264
/// codec) is told so plainly and publishes its microphone only; the server
/// takes that stream and a native client hears it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_without_h264_is_told_and_publishes_audio_only() {
    const TEST: &str = "a_browser_without_h264_is_told_and_publishes_audio_only";
    const NO_H264: &str = "(() => { const real = RTCRtpSender.getCapabilities.bind(RTCRtpSender); \
        RTCRtpSender.getCapabilities = (kind) => { const c = real(kind); \
        if (c && kind === 'video') c.codecs = c.codecs.filter(x => x.mimeType.toLowerCase() !== 'video/h264'); \
        return c; }; })();";
    let Some(mut browser) = Chromium::start_or_skip(TEST, &[]).await else {
        return;
    };
    let server = start_server().await;
    let (native, _) = join(&server, "web-vp8", "native").await;
    let page = browser
        .open_with_script(
            &page_url(
                &server,
                &format!("app={APP_ID}&room=web-vp8&user=old&autojoin=1"),
            ),
            Some(NO_H264),
        )
        .await;
    let stream = wait_event(
        &native,
        MEDIA_TIMEOUT,
        "the browser's stream",
        |e| match e {
            RoomEvent::StreamAdded(s) if s.user_id.0 == "old" => Some(s.clone()),
            _ => None,
        },
    )
    .await;
    assert!(stream.audio && stream.video.is_none(), "{stream:?}");
    let notice = browser
        .eval(&page, "document.getElementById('notice').textContent")
        .await;
    assert!(
        notice
            .as_str()
            .is_some_and(|t| t.contains("cannot send H.264")),
        "{notice}"
    );
    let remote = native
        .subscribe(stream.stream_id, SubscribeOptions::default())
        .await
        .expect("subscribe");
    wait_for(MEDIA_TIMEOUT, "native hears the browser", || {
        (remote.stats().audio_frames_decoded >= 50).then_some(())
    })
    .await;
    let summary = browser.eval(&page, SUMMARY).await;
    assert_eq!(summary["errors"], serde_json::json!([]), "{summary:#}");
    native.leave().await.ok(); // the test is over either way
}

/// In a call, the browser renames itself and switches to watching only and
/// back, as a native client sees it: the new name; `stream-removed` then the
/// role change; the role change back and a new stream it decodes. A name the
/// server refuses (over 256 bytes) is shown with its number and changes
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_renames_itself_and_switches_role_in_the_call() {
    const TEST: &str = "the_browser_renames_itself_and_switches_role_in_the_call";
    let Some(mut browser) = Chromium::start_or_skip(TEST, &[]).await else {
        return;
    };
    let server = start_server().await;
    let (native, _) = join(&server, "web-role", "native").await;
    let page = browser
        .open(&page_url(
            &server,
            &format!("app={APP_ID}&room=web-role&user=browser&name=Before&autojoin=1"),
        ))
        .await;
    let first = stream_of(&native, "browser").await;

    let set_name = |name: &str| {
        format!(
            "document.getElementById('new-name').value = {}; true",
            serde_json::to_string(name).expect("a string")
        )
    };
    browser.eval(&page, &set_name("After")).await;
    click(&mut browser, &page, "rename").await;
    wait_event(
        &native,
        EVENT_TIMEOUT,
        "the browser's new name",
        |e| match e {
            RoomEvent::RemoteUserNameChanged { user_id, user_name } if user_id.0 == "browser" => {
                Some(user_name.clone())
            }
            _ => None,
        },
    )
    .await
    .eq("After")
    .then_some(())
    .expect("renamed to After");

    // 200 × "é" is 400 bytes of UTF-8: refused with 90000005, name kept.
    browser.eval(&page, &set_name(&"é".repeat(200))).await;
    click(&mut browser, &page, "rename").await;
    let refused = browser
        .wait_for(&page, EVENT_TIMEOUT, "the refused rename", SUMMARY, |s| {
            s["errors"].as_array()?.first().cloned()
        })
        .await;
    assert_eq!(refused["code"], 90000005, "{refused}");
    let summary = browser.eval(&page, SUMMARY).await;
    assert_eq!(
        (
            summary["state"].as_str(),
            summary["me"]["userName"].as_str()
        ),
        (Some("joined"), Some("After")),
        "{summary:#}"
    );

    // To player: the stream goes first, then the role changes.
    click(&mut browser, &page, "switch-role").await;
    wait_event(
        &native,
        EVENT_TIMEOUT,
        "the browser's stream removed",
        |e| match e {
            RoomEvent::StreamRemoved { stream_id, .. } if *stream_id == first => Some(()),
            RoomEvent::PeerRoleChanged { user_id, .. } if user_id.0 == "browser" => {
                panic!("the role changed before the stream was removed")
            }
            _ => None,
        },
    )
    .await;
    wait_event(
        &native,
        EVENT_TIMEOUT,
        "the browser is a player",
        |e| match e {
            RoomEvent::PeerRoleChanged { user_id, role } if user_id.0 == "browser" => {
                Some(*role == huddle::protocol::Role::Player)
            }
            _ => None,
        },
    )
    .await
    .then_some(())
    .expect("a player");
    browser
        .wait_for(&page, EVENT_TIMEOUT, "no local stream", SUMMARY, |s| {
            (s["local"].is_null() && s["me"]["role"] == 2).then_some(())
        })
        .await;

    // Back to joiner: a new stream, which the native client decodes.
    click(&mut browser, &page, "switch-role").await;
    let second = stream_of(&native, "browser").await;
    assert_ne!(second, first);
    let remote = native
        .subscribe(second, SubscribeOptions::default())
        .await
        .expect("subscribe");
    wait_for(MEDIA_TIMEOUT, "native decodes the new stream", || {
        (remote.stats().frames_decoded >= 10).then_some(())
    })
    .await;
    native.leave().await.ok(); // the test is over either way
}

/// The same user opens the page twice: the second tab replaces the first
/// (seed reason 5), and the first says so and leaves the call; the second
/// stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_tab_of_the_same_user_replaces_the_first_and_it_says_so() {
    const TEST: &str = "a_second_tab_of_the_same_user_replaces_the_first_and_it_says_so";
    let Some(mut browser) = Chromium::start_or_skip(TEST, &[]).await else {
        return;
    };
    let server = start_server().await;
    let url = page_url(
        &server,
        &format!("app={APP_ID}&room=web-twice&user=ann&camera=none&mic=none&autojoin=1"),
    );
    let joined = |s: &Value| (s["state"] == "joined").then_some(());
    let first = browser.open(&url).await;
    browser
        .wait_for(
            &first,
            EVENT_TIMEOUT,
            "the first tab joins",
            SUMMARY,
            joined,
        )
        .await;
    let second = browser.open(&url).await;
    browser
        .wait_for(
            &second,
            EVENT_TIMEOUT,
            "the second tab joins",
            SUMMARY,
            joined,
        )
        .await;
    let end = browser
        .wait_for(
            &first,
            EVENT_TIMEOUT,
            "the first tab is replaced",
            SUMMARY,
            |s| (s["state"] == "left").then(|| s.clone()),
        )
        .await;
    let error = browser
        .eval(&first, "document.getElementById('error').textContent")
        .await;
    assert!(
        error.as_str().is_some_and(|t| t.contains("replaced")),
        "{error} {end:#}"
    );
    let status = browser
        .eval(&first, "document.getElementById('status').textContent")
        .await;
    assert_eq!(status, "disconnected", "{end:#}");
    let still = browser.eval(&second, SUMMARY).await;
    assert_eq!(still["state"], "joined", "{still:#}");
}

/// A browser sending simulcast (`?simulcast=1`: one video section with three
/// `sendEncodings` whose rids are the layers' `resolutionId`s, protocol.md §8):
/// the server announces the three layers, takes each rid's RTP stream as its
/// layer, and a native subscriber gets each layer by `resolutionId`, switching
/// between them with no decoder error.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_browsers_simulcast_layers_reach_a_native_subscriber_one_by_one() {
    const TEST: &str = "a_browsers_simulcast_layers_reach_a_native_subscriber_one_by_one";
    let Some(mut browser) = Chromium::start_or_skip(TEST, &[]).await else {
        return;
    };
    let server = start_server().await;
    let (native, _) = join(&server, "web-simulcast", "native").await;
    let page = browser
        .open(&page_url(
            &server,
            &format!(
                "app={APP_ID}&room=web-simulcast&user=browser&mic=none&simulcast=1&autojoin=1"
            ),
        ))
        .await;

    let info = wait_event(
        &native,
        MEDIA_TIMEOUT,
        "the browser's stream",
        |e| match e {
            RoomEvent::StreamAdded(s) if s.user_id.0 == "browser" => Some(s.clone()),
            _ => None,
        },
    )
    .await;
    let layers: Vec<_> = info
        .resolutions
        .iter()
        .map(|r| (r.resolution_id.as_str(), r.width, r.height))
        .collect();
    assert_eq!(
        layers,
        [("720p", 1280, 720), ("360p", 640, 360), ("180p", 320, 180)],
        "the page asks the fake camera for 720p and sends it, its half and its quarter"
    );

    // The frame log tells a decoder error from a frame dropped because the
    // decoder is behind (this busy machine decodes 720p in a debug build).
    native.frame_logs().set_enabled(true);
    let remote = native
        .subscribe(info.stream_id, SubscribeOptions::default())
        .await
        .expect("subscribe to the browser");
    let broken = |from: usize| {
        let log = native.frame_log(info.stream_id);
        let broken: Vec<_> = log
            .iter()
            .skip(from)
            .filter_map(|f| match f.outcome {
                FrameOutcome::Dropped(reason) if reason != DropReason::DecoderBehind => {
                    Some((f.rtp_timestamp, f.keyframe, reason))
                }
                _ => None,
            })
            .collect();
        (log.len(), broken)
    };
    // A layer is told by its decoded width: each is half the one above, and
    // a browser short of CPU scales all of them down alike (Chromium sent
    // 240x135 for "180p" on this loaded machine), so the layer declared
    // `width` wide decodes wider than `width / 2` and at most `width`.
    let decodes = |width: u32, what: &'static str| {
        let remote = &remote;
        let layer =
            move |size: Option<(u32, u32)>| size.is_some_and(|(w, _)| w > width / 2 && w <= width);
        async move {
            let deadline = std::time::Instant::now() + MEDIA_TIMEOUT;
            let first = loop {
                let s = remote.stats();
                if layer(s.last_size) {
                    break s.frames_decoded;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "timed out waiting for {what}: {s:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            wait_for(MEDIA_TIMEOUT, what, || {
                let s = remote.stats();
                (layer(s.last_size) && s.frames_decoded >= first + 10).then_some(())
            })
            .await;
            println!("{what}: decodes {:?}", remote.stats().last_size);
        }
    };
    decodes(1280, "the top layer by default").await;
    // Frames before the subscription's first keyframe may fail to decode;
    // from here on none may (dropped for a decoder that is behind is load).
    let (mut logged, _) = broken(0);
    let mut clean_switches = 0;
    for (choice, width) in [("180p", 320), ("360p", 640), ("720p", 1280), ("180p", 320)] {
        let given_up = remote.stats().video_given_up;
        native
            .set_resolution(info.stream_id, LayerChoice::Fixed(choice.into()))
            .await
            .expect("switch layers");
        decodes(width, choice).await;
        let (now, broken) = broken(logged);
        logged = now;
        // A packet given up on (late on this loaded machine, or lost) breaks
        // the frames up to the next keyframe whatever the switch did: only a
        // switch without one says something about switching.
        let lost = remote.stats().video_given_up - given_up;
        println!("switch to {choice}: {lost} packets given up, broken frames {broken:?}");
        // Without capture times the server may take a keyframe that arrives
        // in the middle of the old layer's picture (after passing over two:
        // `sfu::layers::MAX_DEFERRALS`): that one picture, cut short, is
        // dropped whole. Nothing may fail to decode.
        if lost == 0 {
            let cut = broken
                .iter()
                .filter(|(_, _, why)| *why == DropReason::Incomplete)
                .count();
            assert!(
                cut <= 1 && broken.len() == cut,
                "the switch to {choice} broke no frame but the one it cut short \
                 (rtp timestamp, keyframe, why): {broken:?}; {:?}",
                remote.stats()
            );
            clean_switches += 1;
        }
    }
    assert!(
        clean_switches >= 2,
        "at least 2 of the 4 switches lost no packet: {:?}",
        remote.stats()
    );

    // The page itself sends three encodings, one per rid.
    let summary = browser.eval(&page, SUMMARY).await;
    let rids: Vec<_> = summary["local"]["media"]["layers"]
        .as_array()
        .map(|l| l.iter().filter_map(|l| l["rid"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(rids, ["720p", "360p", "180p"], "{summary:#}");

    // Watched now: the smallest layer (and the largest, always). The page
    // stops encoding the middle one once the server says so
    // (`layers-wanted`, 1 s after the last subscription left it).
    browser
        .wait_for(
            &page,
            MEDIA_TIMEOUT,
            "layers-wanted without 360p",
            SUMMARY,
            |s| (s["local"]["wantedLayers"] == serde_json::json!(["720p", "180p"])).then_some(()),
        )
        .await;
    let frames = |summary: &Value, rid: &str| {
        summary["local"]["media"]["layers"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["rid"] == rid))
            .and_then(|l| l["frames"].as_u64())
            .unwrap_or_default()
    };
    // Stats refresh every second.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let before = browser.eval(&page, SUMMARY).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let after = browser.eval(&page, SUMMARY).await;
    assert_eq!(
        frames(&after, "360p"),
        frames(&before, "360p"),
        "the unwatched layer is not encoded: {after:#}"
    );
    assert!(
        frames(&after, "180p") > frames(&before, "180p"),
        "the watched one is: {after:#}"
    );
}
