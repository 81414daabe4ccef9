//! Issue 11 §1: the SDK gets back into its room by itself. A WebSocket cut
//! without a close frame (a TCP proxy in the test drops it) is resumed: same
//! session, same stream ids, media uninterrupted, nobody sees a leave. A
//! server killed (`kill -9`) and started again on the same port is joined
//! again: the publisher publishes again, the subscriber is subscribed again
//! and decodes frames.
#![cfg(feature = "client")]

mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use huddle::client::{Client, ConnectionState, RoomEvent, SubscribeOptions};
use huddle::protocol::StreamId;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A TCP proxy to `target` that can cut every connection through it at once,
/// without a WebSocket close: both sides just see the stream end.
struct CutProxy {
    url: String,
    cut: watch::Sender<u64>,
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
        let url = format!("ws://{}", listener.local_addr().expect("addr"));
        let (cut, _) = watch::channel(0u64);
        let cuts = cut.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
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
        Self { url, cut, task }
    }

    fn cut_all(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

/// States the client went through, drained from its events, and whether
/// `check` found anything it refuses.
fn drain(client: &Client, states: &mut Vec<ConnectionState>, mut check: impl FnMut(&RoomEvent)) {
    while let Ok(event) = client.events().try_recv() {
        if let RoomEvent::ConnectionStateChanged { current, .. } = &event {
            states.push(*current);
        }
        check(&event);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_websocket_cut_without_close_is_resumed_and_nobody_sees_a_leave() {
    let server = start_server().await;
    let proxy = CutProxy::start(&server.url).await;
    let mut alice_config =
        join_config(&server, "room-cut", "alice", huddle::protocol::Role::Joiner);
    alice_config.server_url = proxy.url.clone();
    let mut bob_config = join_config(&server, "room-cut", "bob", huddle::protocol::Role::Joiner);
    bob_config.server_url = proxy.url.clone();

    let alice = Client::new();
    alice.join(alice_config).await.expect("alice joins");
    let stream_id = alice.publish(synthetic(440.0)).await.expect("publish");
    alice
        .set_muted(stream_id, true, false)
        .await
        .expect("mute audio");
    let bob = Client::new();
    bob.join(bob_config).await.expect("bob joins");
    let remote = bob
        .subscribe(stream_id, SubscribeOptions::default())
        .await
        .expect("subscribe");
    wait_for(Duration::from_secs(10), "frames before the cut", || {
        (remote.stats().frames_decoded > 5).then_some(())
    })
    .await;

    let (mut alice_states, mut bob_states) = (Vec::new(), Vec::new());
    let refuse_leaves = |who: &'static str| {
        move |event: &RoomEvent| {
            assert!(
                !matches!(
                    event,
                    RoomEvent::PeerLeave { .. } | RoomEvent::StreamRemoved { .. }
                ),
                "{who} saw {event:?}"
            );
        }
    };
    drain(&alice, &mut alice_states, refuse_leaves("alice"));
    drain(&bob, &mut bob_states, refuse_leaves("bob"));
    alice_states.clear();
    bob_states.clear();

    let before = remote.stats().last_frame_no.expect("a stamped frame");
    proxy.cut_all();
    let cut_at = Instant::now();
    wait_for(Duration::from_secs(15), "both back to CONNECTED", || {
        drain(&alice, &mut alice_states, refuse_leaves("alice"));
        drain(&bob, &mut bob_states, refuse_leaves("bob"));
        let back = |states: &[ConnectionState]| {
            states.contains(&ConnectionState::Reconnecting)
                && states.last() == Some(&ConnectionState::Connected)
        };
        (back(&alice_states) && back(&bob_states)).then_some(())
    })
    .await;
    eprintln!("both resumed {:?} after the cut", cut_at.elapsed());
    assert_eq!(
        alice_states,
        [ConnectionState::Reconnecting, ConnectionState::Connected]
    );
    assert_eq!(
        bob_states,
        [ConnectionState::Reconnecting, ConnectionState::Connected]
    );
    assert_eq!(bob.connection_state(), ConnectionState::Connected);

    // The same stream, still arriving on the same subscription, in order.
    wait_for(Duration::from_secs(10), "frames after the gap", || {
        (remote.stats().last_frame_no? > before + 30).then_some(())
    })
    .await;
    assert_eq!(remote.stats().out_of_order_frames, 0);
    assert!(!remote.is_ended());
    // Requests work again, on the same ids; the mute state is as it was.
    alice
        .set_muted(stream_id, true, false)
        .await
        .expect("the stream keeps its id");
    let (carol, info) = join(&server, "room-cut", "carol").await;
    let stream = info
        .streams
        .iter()
        .find(|s| s.stream_id == stream_id)
        .expect("the stream is still listed under its id");
    assert!(stream.audio_muted && !stream.video_muted, "{stream:?}");
    let users: Vec<&str> = info.users.iter().map(|u| u.user_id.as_str()).collect();
    assert_eq!(users, ["alice", "bob"]);
    assert_eq!(server.server.metrics().users, 3);

    // A second cut, right away: resumed again.
    bob_states.clear();
    proxy.cut_all();
    wait_for(Duration::from_secs(15), "bob back again", || {
        drain(&bob, &mut bob_states, refuse_leaves("bob"));
        (bob_states.last() == Some(&ConnectionState::Connected)).then_some(())
    })
    .await;
    drain(&alice, &mut alice_states, refuse_leaves("alice"));
    drop(carol);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reconnecting_gives_up_after_its_window_with_reason_7() {
    let server = start_server().await;
    let proxy = CutProxy::start(&server.url).await;
    let mut config = join_config(&server, "room-gone", "bob", huddle::protocol::Role::Joiner);
    config.server_url = proxy.url.clone();
    config.reconnect_window = Duration::from_secs(2);
    let bob = Client::new();
    bob.join(config).await.expect("join");
    // The proxy goes away for good: every attempt is refused.
    drop(proxy);
    let started = Instant::now();
    let reason = wait_event(&bob, Duration::from_secs(10), "DISCONNECTED", |e| match e {
        RoomEvent::ConnectionStateChanged {
            current: ConnectionState::Disconnected,
            reason,
            ..
        } => Some(*reason),
        _ => None,
    })
    .await;
    assert_eq!(
        reason,
        Some(huddle::protocol::LeaveReason::ReconnectTimeout)
    );
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // Requests say why they fail, and leave is still fine.
    assert!(bob.me().await.is_err());
    bob.leave().await.expect("leave");
}

/// A port on 127.0.0.1 held for the whole test, for two servers in turn
/// (as in `kiosk_rejoins_after_server_restart.rs`: bound with
/// `SO_REUSEADDR`, never listening).
fn reserve_port() -> (tokio::net::TcpSocket, SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind 127.0.0.1:0");
    let addr = socket.local_addr().expect("local addr");
    (socket, addr)
}

struct Serve(std::process::Child);

impl Drop for Serve {
    fn drop(&mut self) {
        self.0.kill().ok(); // already gone: fine
        self.0.wait().ok();
    }
}

/// `huddle serve` on `addr`, once it accepts connections.
async fn serve(addr: SocketAddr) -> Serve {
    let child = Command::new(env!("CARGO_BIN_EXE_huddle"))
        .args([
            "serve",
            "--listen",
            &addr.to_string(),
            "--app-id",
            APP_ID,
            "--app-key",
            APP_KEY,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start huddle serve");
    let serve = Serve(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "huddle serve never listened");
        tokio::time::sleep(Duration::from_millis(20)).await; // poll interval
    }
    serve
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_the_server_is_killed_and_restarted_everyone_is_back_with_media() {
    let (_port, addr) = reserve_port();
    let url = format!("ws://{addr}");
    let mut server = serve(addr).await;
    let config = |user: &str| huddle::client::JoinConfig {
        server_url: url.clone(),
        app_id: huddle::protocol::AppId(APP_ID.into()),
        room_id: huddle::protocol::RoomId("room-restart".into()),
        user_id: huddle::protocol::UserId(user.into()),
        user_name: user.into(),
        role: huddle::protocol::Role::Joiner,
        credential: huddle::client::Credential::AppKey {
            key: APP_KEY.into(),
            valid_for: Duration::from_secs(3600),
        },
        decode: true,
        reconnect_window: Duration::from_secs(30),
    };
    let alice = Client::new();
    alice.join(config("alice")).await.expect("alice joins");
    let old_id = alice.publish(synthetic(440.0)).await.expect("publish");
    let bob = Client::new();
    bob.join(config("bob")).await.expect("bob joins");
    let old_remote = bob
        .subscribe(old_id, SubscribeOptions::default())
        .await
        .expect("subscribe");
    wait_for(Duration::from_secs(10), "frames before the kill", || {
        (old_remote.stats().frames_decoded > 5).then_some(())
    })
    .await;
    while bob.events().try_recv().is_ok() {}
    while alice.events().try_recv().is_ok() {}

    server.0.kill().expect("kill -9 the server");
    server.0.wait().ok();
    wait_event(&bob, Duration::from_secs(15), "bob RECONNECTING", |e| {
        matches!(
            e,
            RoomEvent::ConnectionStateChanged {
                current: ConnectionState::Reconnecting,
                ..
            }
        )
        .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await; // down for a while: attempts fail
    server = serve(addr).await;
    let up = Instant::now();

    // Alice: back, her stream published again under a new id.
    let new_id: StreamId = wait_event(
        &alice,
        Duration::from_secs(20),
        "republished",
        |e| match e {
            RoomEvent::LocalStreamRepublished {
                previous,
                stream_id,
            } if *previous == old_id => Some(*stream_id),
            _ => None,
        },
    )
    .await;
    assert_eq!(alice.connection_state(), ConnectionState::Connected);
    // Her encoders follow the new link's uplink estimate: its TWCC feedback
    // keeps coming (the closed link's would stay where it stopped).
    let first = alice
        .send_rate(new_id)
        .await
        .expect("send rate")
        .feedback_reports;
    let mut latest = first;
    let deadline = Instant::now() + Duration::from_secs(10);
    while latest <= first + 5 {
        assert!(
            Instant::now() < deadline,
            "no new TWCC feedback on the republished link ({first} → {latest})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        latest = alice
            .send_rate(new_id)
            .await
            .expect("send rate")
            .feedback_reports;
    }
    // Bob: back, the old stream removed, the new one added and subscribed.
    let mut removed_old = false;
    let mut states = Vec::new();
    wait_for(Duration::from_secs(20), "bob sees the new stream", || {
        while let Ok(event) = bob.events().try_recv() {
            match event {
                RoomEvent::StreamRemoved { stream_id, .. } if stream_id == old_id => {
                    removed_old = true
                }
                RoomEvent::ConnectionStateChanged { current, .. } => states.push(current),
                RoomEvent::StreamAdded(info) if info.stream_id == new_id => return Some(()),
                _ => {}
            }
        }
        None
    })
    .await;
    assert!(removed_old, "bob was not told the old stream is gone");
    assert!(old_remote.is_ended());
    assert_eq!(
        states.last(),
        Some(&ConnectionState::Connected),
        "{states:?}"
    );
    // The SDK subscribed again by itself: subscribing now hands back that
    // subscription, and it decodes.
    let remote = bob
        .subscribe(new_id, SubscribeOptions::default())
        .await
        .expect("subscribe to the new stream");
    wait_for(Duration::from_secs(10), "frames after the restart", || {
        (remote.stats().frames_decoded > 5).then_some(())
    })
    .await;
    eprintln!(
        "bob decodes again {:?} after the server came back",
        up.elapsed()
    );
    drop(server);
}
