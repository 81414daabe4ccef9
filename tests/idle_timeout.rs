//! A connection that sends nothing for `idle_timeout` is closed, and the others
//! see it leave with reason 7 once its resume window (issue 11) is over; one
//! that keeps pinging stays. Issue 9, item 12.
#![cfg(feature = "client")]

mod common;

use std::time::{Duration, Instant};

use common::*;
use huddle::protocol::{Event, LeaveReason, Reply, ServerMessage};
use huddle::server::ServerConfig;

const IDLE: Duration = Duration::from_millis(600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_closed_after_the_idle_timeout_and_a_pinging_one_stays() {
    let mut config = ServerConfig::new(test_apps());
    config.limits.idle_timeout = IDLE;
    // The closed session is kept this long for a resume (issue 11), then
    // leaves with reason 7.
    config.limits.resume_window = IDLE;
    let server = start_server_with(config).await;

    // Alice pings at a third of the timeout, from a task of her own.
    let mut alice = RawSocket::connect(&server).await;
    alice.joined("room-idle", "alice").await;
    let mut silent = RawSocket::connect(&server).await;
    // Before the join is sent: the server's timer restarts when it reads it.
    let joined_at = Instant::now();
    silent.joined("room-idle", "silent").await;

    let (left_tx, left_rx) = tokio::sync::oneshot::channel();
    let alice_task = tokio::spawn(async move {
        let mut left_tx = Some(left_tx);
        let mut ticker = tokio::time::interval(IDLE / 3);
        for id in 10..10 + 15 {
            ticker.tick().await;
            alice.send(&format!(r#"{{"id":{id},"type":"ping"}}"#)).await;
            alice
                .recv_until(Duration::from_secs(5), "pong", |m| match m {
                    ServerMessage::Event {
                        event: Event::PeerLeave { user_id, reason },
                    } if user_id.as_str() == "silent" => {
                        if let Some(tx) = left_tx.take() {
                            tx.send(*reason).ok();
                        }
                        None
                    }
                    ServerMessage::Reply {
                        reply: Reply::Pong, ..
                    } => Some(()),
                    _ => None,
                })
                .await;
        }
        alice
    });

    // The silent one: a close frame, no earlier than the timeout.
    silent.until_close(IDLE * 10).await;
    let closed_after = joined_at.elapsed();
    assert!(
        closed_after >= IDLE,
        "closed after {closed_after:?}, before {IDLE:?}"
    );
    let reason = tokio::time::timeout(Duration::from_secs(5), left_rx)
        .await
        .expect("alice sees the silent one leave")
        .expect("alice's task alive");
    assert_eq!(reason, LeaveReason::ReconnectTimeout);

    // Alice pinged for 5 timeouts and is still here.
    let mut alice = alice_task.await.expect("alice's pings all answered");
    assert_eq!(server.server.metrics().users, 1);
    alice.send(r#"{"id":99,"type":"ping"}"#).await;
    assert!(matches!(
        alice.recv().await,
        ServerMessage::Reply {
            reply: Reply::Pong,
            ..
        }
    ));
}
