//! Issue 11 §1 for the web client: the server's page in headless Chromium
//! keeps the `resumeToken` of `joined`; when its WebSocket drops (a TCP
//! proxy between the browser and the server cuts every connection, without
//! a close frame) it shows RECONNECTING, resumes within the window and
//! carries on: a native client in the room sees no `peer-leave` and decodes
//! the browser's video again, and the browser decodes the native video
//! again. When the server no longer knows the token (the window ran out
//! while the proxy refused connections), the page joins again and publishes
//! and subscribes again by itself.
//!
//! Needs Chromium and a network interface besides loopback (see
//! tests/README.md), like `web_client_in_chromium.rs`.
#![cfg(feature = "client")]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::chromium::{Chromium, Page};
use common::*;
use huddle::client::{Client, RoomEvent, SubscribeOptions};
use huddle::protocol::StreamId;
use huddle::server::ServerConfig;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const MEDIA_TIMEOUT: Duration = Duration::from_secs(30);
const FRAMES: u64 = 30;
const SUMMARY: &str = "window.huddle ? huddle.summary() : null";

/// A TCP proxy to the server that can cut every connection through it at
/// once (both sides just see the stream end) and refuse new ones for a
/// while (`refusing`).
struct CutProxy {
    addr: SocketAddr,
    cut: watch::Sender<u64>,
    refusing: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl CutProxy {
    async fn start(target: &str) -> Self {
        let target: SocketAddr = target
            .trim_start_matches("ws://")
            .parse()
            .expect("ws://ip:port");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (cut, _) = watch::channel(0u64);
        let (refusing, refusing_rx) = watch::channel(false);
        let cuts = cut.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if *refusing_rx.borrow() {
                    continue; // dropped: the browser's connect fails
                }
                let mut cut = cuts.subscribe();
                cut.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {} // both sockets dropped here
                    }
                });
            }
        });
        Self {
            addr,
            cut,
            refusing,
            task,
        }
    }

    fn cut_all(&self) {
        self.cut.send_modify(|n| *n += 1);
    }

    fn refuse(&self, on: bool) {
        self.refusing.send_replace(on);
    }
}

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

/// The browser's frames decoded of `user`'s stream.
fn frames_of(summary: &Value, user: &str) -> Option<u64> {
    summary["remote"]
        .as_array()?
        .iter()
        .find(|t| t["userId"] == user)?["media"]["video"]["frames"]
        .as_u64()
}

/// A browser (through the proxy) and a native client that publish and
/// watch each other, both decoding; returns the browser's stream as the
/// native client knows it and the native subscription to it.
async fn call(
    server: &TestServer,
    proxy: &CutProxy,
    browser: &mut Chromium,
    native: &Client,
    room: &str,
) -> (Page, StreamId, huddle::client::RemoteStream) {
    let page = browser
        .open(&format!(
            "http://{}/?app={APP_ID}&room={room}&user=browser&name=Browser",
            proxy.addr
        ))
        .await;
    browser
        .wait_for(&page, MEDIA_TIMEOUT, "the page's script", SUMMARY, |s| {
            (s["state"] == "idle").then_some(())
        })
        .await;
    browser
        .eval(&page, "document.getElementById('join').click()")
        .await;
    let _ = server;
    let stream = stream_of(native, "browser").await;
    let remote = native
        .subscribe(stream, SubscribeOptions::default())
        .await
        .expect("subscribe to the browser");
    wait_for(MEDIA_TIMEOUT, "native decodes the browser", || {
        (remote.stats().frames_decoded >= FRAMES).then_some(())
    })
    .await;
    browser
        .wait_for(
            &page,
            MEDIA_TIMEOUT,
            "the browser decodes native",
            SUMMARY,
            |s| (frames_of(s, "native")? >= FRAMES).then_some(()),
        )
        .await;
    (page, stream, remote)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_browser_whose_websocket_drops_resumes_and_nobody_sees_it_leave() {
    const TEST: &str = "a_browser_whose_websocket_drops_resumes_and_nobody_sees_it_leave";
    let Some(mut browser) = Chromium::start_or_skip(TEST, &[]).await else {
        return;
    };
    let server = start_server().await;
    let proxy = CutProxy::start(&server.url).await;
    let (native, _) = join(&server, "web-resume", "native").await;
    native.publish(synthetic(440.0)).await.expect("publish");
    let (page, stream, remote) = call(&server, &proxy, &mut browser, &native, "web-resume").await;
    while native.events().try_recv().is_ok() {}

    let before = browser.eval(&page, SUMMARY).await;
    let browser_frames = frames_of(&before, "native").unwrap_or(0);
    proxy.cut_all();
    // The page notices, shows RECONNECTING and resumes.
    browser
        .wait_for(
            &page,
            Duration::from_secs(10),
            "the page resumes",
            SUMMARY,
            |s| (s["reconnects"].as_u64() >= Some(1) && s["state"] == "joined").then_some(()),
        )
        .await;
    let after = browser.eval(&page, SUMMARY).await;
    assert_eq!(after["rejoins"], 0, "resumed, not joined again: {after:#}");
    assert_eq!(
        after["local"]["streamId"], stream.0,
        "same stream id: {after:#}"
    );

    // Media carries on both ways.
    let native_frames = remote.stats().frames_decoded;
    wait_for(MEDIA_TIMEOUT, "native decodes the browser again", || {
        (remote.stats().frames_decoded >= native_frames + FRAMES).then_some(())
    })
    .await;
    browser
        .wait_for(
            &page,
            MEDIA_TIMEOUT,
            "the browser decodes again",
            SUMMARY,
            |s| (frames_of(s, "native")? >= browser_frames + FRAMES).then_some(()),
        )
        .await;
    while let Ok(event) = native.events().try_recv() {
        assert!(
            !matches!(&event, RoomEvent::PeerLeave { user_id, .. } if user_id.0 == "browser")
                && !matches!(&event, RoomEvent::StreamRemoved { stream_id, .. } if *stream_id == stream),
            "native saw the browser go: {event:?}"
        );
    }
    let console = browser.console();
    assert!(!console.contains("Uncaught"), "page errors:\n{console}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_browser_the_server_forgot_joins_again_and_publishes_again() {
    const TEST: &str = "a_browser_the_server_forgot_joins_again_and_publishes_again";
    let Some(mut browser) = Chromium::start_or_skip(TEST, &[]).await else {
        return;
    };
    let mut config = ServerConfig::new(test_apps());
    config.limits.resume_window = Duration::from_secs(1);
    let server = start_server_with(config).await;
    let proxy = CutProxy::start(&server.url).await;
    let (native, _) = join(&server, "web-rejoin", "native").await;
    native.publish(synthetic(440.0)).await.expect("publish");
    let (page, stream, _remote) = call(&server, &proxy, &mut browser, &native, "web-rejoin").await;
    while native.events().try_recv().is_ok() {}

    // Cut, and refuse the browser until the server's window has run out.
    proxy.refuse(true);
    proxy.cut_all();
    wait_event(
        &native,
        Duration::from_secs(10),
        "the browser's session ends",
        |e| match e {
            RoomEvent::PeerLeave { user_id, reason } if user_id.0 == "browser" => Some(*reason),
            _ => None,
        },
    )
    .await;
    let during = browser.eval(&page, SUMMARY).await;
    assert_eq!(during["state"], "reconnecting", "{during:#}");
    proxy.refuse(false);

    let rejoined = browser
        .wait_for(&page, MEDIA_TIMEOUT, "the page joins again", SUMMARY, |s| {
            (s["rejoins"].as_u64() >= Some(1) && s["state"] == "joined").then(|| s.clone())
        })
        .await;
    assert_eq!(rejoined["reconnects"], 1, "{rejoined:#}");
    // It publishes again (a new stream) and the native client decodes it.
    let again = stream_of(&native, "browser").await;
    assert_ne!(again, stream, "a new stream after joining again");
    let remote = native
        .subscribe(again, SubscribeOptions::default())
        .await
        .expect("subscribe to the browser again");
    wait_for(MEDIA_TIMEOUT, "native decodes the browser again", || {
        (remote.stats().frames_decoded >= FRAMES).then_some(())
    })
    .await;
    // And it subscribed again to the native stream by itself.
    browser
        .wait_for(
            &page,
            MEDIA_TIMEOUT,
            "the browser decodes again",
            SUMMARY,
            |s| (frames_of(s, "native")? >= FRAMES).then_some(()),
        )
        .await;
}
