//! Shutting the server down ends every session cleanly: clients are told why
//! (client-banned, reason 3), links close, and `Server::run` returns only once
//! every session has said goodbye.
#![cfg(feature = "client")]

mod common;

use std::time::Duration;

use common::*;
use huddle::client::{ConnectionState, RoomEvent, SubscribeOptions};
use huddle::protocol::LeaveReason;
use huddle::server::{Server, ServerConfig};
use tokio::net::TcpListener;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_tells_clients_and_returns() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}", listener.local_addr().expect("addr"));
    let server = Server::new(ServerConfig::new(test_apps()));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(server.clone().run(listener, async {
        stop_rx.await.ok();
    }));
    let handle = TestServerRef { url };

    let alice = huddle::client::Client::new();
    alice.join(handle.config("alice")).await.expect("join");
    let stream_id = alice.publish(synthetic(440.0)).await.expect("publish");
    let bob = huddle::client::Client::new();
    bob.join(handle.config("bob")).await.expect("join");
    let remote = bob
        .subscribe(stream_id, SubscribeOptions::default())
        .await
        .expect("subscribe");
    wait_for(Duration::from_secs(10), "media", || {
        (remote.stats().frames_decoded > 3).then_some(())
    })
    .await;

    stop_tx.send(()).expect("server still running");
    let reason = wait_event(&bob, Duration::from_secs(5), "client-banned", |e| match e {
        RoomEvent::ClientBanned { reason } => Some(*reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, LeaveReason::ServiceUnavailable);
    wait_event(
        &alice,
        Duration::from_secs(5),
        "disconnected",
        |e| match e {
            RoomEvent::ConnectionStateChanged {
                current: ConnectionState::Disconnected,
                ..
            } => Some(()),
            _ => None,
        },
    )
    .await;
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .expect("run returns after shutdown")
        .expect("task")
        .expect("serve");
    let m = server.metrics();
    assert_eq!((m.sessions, m.rooms, m.peer_connections), (0, 0, 0));
}

struct TestServerRef {
    url: String,
}

impl TestServerRef {
    fn config(&self, user: &str) -> huddle::client::JoinConfig {
        huddle::client::JoinConfig {
            server_url: self.url.clone(),
            app_id: APP_ID.into(),
            room_id: "room-down".into(),
            user_id: user.into(),
            user_name: user.into(),
            role: huddle::protocol::Role::Joiner,
            credential: huddle::client::Credential::AppKey {
                key: APP_KEY.into(),
                valid_for: Duration::from_secs(600),
            },
            decode: true,
            // These clients see the server go away for good: no reconnecting.
            reconnect_window: Duration::ZERO,
        }
    }
}

/// Issue 9, item 5: `run` must not return while sessions are still saying
/// goodbye. The server runs on a runtime of its own that is dropped the moment
/// `run` returns, as a process exits after `main`'s `run`: a session still
/// running then is cancelled, and its client gets neither `client-banned` nor a
/// close frame. Media flows on two subscriptions while the server stops.
#[test]
fn run_returns_only_after_every_session_said_goodbye_with_media_flowing() {
    for round in 0..3 {
        shutdown_round(round);
    }
}

fn shutdown_round(round: usize) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("non-blocking");
    let url = format!("ws://{}", listener.local_addr().expect("addr"));
    let server = Server::new(ServerConfig::new(test_apps()));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server_thread = {
        let server = server.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("server runtime");
            let result = runtime.block_on(async {
                let listener = TcpListener::from_std(listener)?;
                server
                    .clone()
                    .run(listener, async {
                        stop_rx.await.ok();
                    })
                    .await
            });
            let sessions_left = server.metrics().sessions;
            drop(runtime); // what exiting the process does to tasks still running
            (result, sessions_left)
        })
    };

    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("client runtime");
    clients.block_on(async {
        let handle = TestServerRef { url: url.clone() };
        let alice = huddle::client::Client::new();
        alice.join(handle.config("alice")).await.expect("join");
        let stream_id = alice.publish(synthetic(440.0)).await.expect("publish");
        let carol = huddle::client::Client::new();
        carol.join(handle.config("carol")).await.expect("join");
        let remote = carol
            .subscribe(stream_id, SubscribeOptions::default())
            .await
            .expect("subscribe");

        // Bob subscribes over a raw socket, so we can see his close frame.
        let mut bob = RawSocket::connect_url(&url).await;
        bob.joined("room-down", "bob").await;
        let (link_id, offer) = bob.subscribe_offer(2, stream_id).await;
        let (bob_link, mut bob_signals) = huddle::link::PeerLink::new([127, 0, 0, 1].into())
            .await
            .expect("peer connection");
        let answer = bob_link.answer(offer).await.expect("answer");
        bob.send(&format!(
            r#"{{"id":3,"type":"answer","linkId":{},"sdp":{}}}"#,
            link_id.0,
            json_string(&answer)
        ))
        .await;
        let mut dave = RawSocket::connect_url(&url).await;
        dave.joined("room-down", "dave").await;

        wait_for(Duration::from_secs(15), "media at carol", || {
            (remote.stats().frames_decoded > 3).then_some(())
        })
        .await;
        tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(signal) = bob_signals.recv().await {
                if let huddle::link::LinkSignal::State(
                    webrtc::peer_connection::RTCPeerConnectionState::Connected,
                ) = signal
                {
                    return;
                }
            }
            panic!("bob's link ended before it connected");
        })
        .await
        .expect("bob's link connects");
        let forwarded = server.metrics().forwarded_packets;
        wait_for(Duration::from_secs(10), "media flowing", || {
            (server.metrics().forwarded_packets > forwarded + 50).then_some(())
        })
        .await;

        stop_tx.send(()).expect("server still running");
        for (name, socket) in [("bob", &mut bob), ("dave", &mut dave)] {
            socket
                .until_shutdown_goodbye(&format!("round {round}: {name}"))
                .await;
        }
        for (name, client) in [("alice", &alice), ("carol", &carol)] {
            let reason = wait_event(client, Duration::from_secs(10), name, |e| match e {
                RoomEvent::ClientBanned { reason } => Some(*reason),
                _ => None,
            })
            .await;
            assert_eq!(
                reason,
                LeaveReason::ServiceUnavailable,
                "round {round}: {name}"
            );
        }
        bob_link.close().await;
    });
    let (result, sessions_left) = server_thread.join().expect("server thread");
    result.expect("serve");
    assert_eq!(
        sessions_left, 0,
        "round {round}: run returned with sessions still open"
    );
}
