//! Shutting the server down ends every session cleanly: clients are told why
//! (client-banned, reason 3), links close, and `Server::run` returns.

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
        }
    }
}
