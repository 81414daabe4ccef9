//! Connections that never finish their HTTP request are closed after the
//! header timeout (slowloris), and connections past the per-address cap are
//! refused at accept and counted, while ordinary clients carry on. Issue 9,
//! item 6.
#![cfg(feature = "client")]

mod common;

use std::time::{Duration, Instant};

use common::*;
use huddle::protocol::{Reply, ServerMessage};
use huddle::server::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes `stream` (end of stream or reset), within
/// `limit`; returns how long that took from `since`.
async fn closed_by_server(stream: &mut TcpStream, since: Instant, limit: Duration) -> Duration {
    let mut buf = [0u8; 1024];
    let deadline = since + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => panic!("the server did not close the connection within {limit:?}"),
            Ok(Ok(0) | Err(_)) => return since.elapsed(),
            Ok(Ok(_)) => {} // e.g. an error response; keep reading to the end
        }
    }
}

async fn ping(client: &mut RawSocket, id: u64) {
    client
        .send(&format!(r#"{{"id":{id},"type":"ping"}}"#))
        .await;
    assert!(matches!(
        client.recv().await,
        ServerMessage::Reply {
            reply: Reply::Pong,
            ..
        }
    ));
}

fn addr(server: &TestServer) -> String {
    server.url.trim_start_matches("ws://").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_never_finish_their_request_are_closed_after_the_header_timeout() {
    const HEADER_TIMEOUT: Duration = Duration::from_millis(400);
    let mut config = ServerConfig::new(test_apps());
    config.limits.header_timeout = HEADER_TIMEOUT;
    let server = start_server_with(config).await;
    let mut client = RawSocket::connect(&server).await;

    let opened = Instant::now();
    let mut silent = TcpStream::connect(addr(&server)).await.expect("connect");
    let mut half = TcpStream::connect(addr(&server)).await.expect("connect");
    half.write_all(b"GET /ws HTTP/1.1\r\nHost: huddle\r\nUpgrade: websocket\r\n")
        .await
        .expect("half a request");
    wait_for(Duration::from_secs(5), "three connections open", || {
        (server.server.metrics().connections == 3).then_some(())
    })
    .await;

    // Meanwhile an upgraded client is not affected.
    ping(&mut client, 1).await;
    for (what, stream) in [("silent", &mut silent), ("half a request", &mut half)] {
        let after = closed_by_server(stream, opened, HEADER_TIMEOUT * 10).await;
        assert!(
            after >= HEADER_TIMEOUT,
            "{what}: closed after {after:?}, before the {HEADER_TIMEOUT:?} timeout"
        );
    }
    wait_for(
        Duration::from_secs(5),
        "only the client's connection left",
        || (server.server.metrics().connections == 1).then_some(()),
    )
    .await;
    // A WebSocket session outlives the header timeout: the timeout is for the
    // request head only. (Here a wait is the point: nothing may happen.)
    tokio::time::sleep(HEADER_TIMEOUT * 2).await;
    ping(&mut client, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_address_cap_refuses_the_next_connection_and_counts_it() {
    let mut config = ServerConfig::new(test_apps());
    config.limits.max_connections_per_ip = 3;
    let server = start_server_with(config).await;

    let mut client = RawSocket::connect(&server).await;
    let mut idle = Vec::new();
    for _ in 0..2 {
        idle.push(TcpStream::connect(addr(&server)).await.expect("connect"));
    }
    wait_for(Duration::from_secs(5), "three connections open", || {
        (server.server.metrics().connections == 3).then_some(())
    })
    .await;

    // The kernel completes the handshake; the server closes it at once.
    let opened = Instant::now();
    let mut fourth = TcpStream::connect(addr(&server)).await.expect("connect");
    closed_by_server(&mut fourth, opened, Duration::from_secs(5)).await;
    let m = server.server.metrics();
    assert_eq!((m.connections, m.connections_refused), (3, 1));
    // A WebSocket client past the cap fails its upgrade.
    assert!(tokio_tungstenite::connect_async(&server.url).await.is_err());
    assert_eq!(server.server.metrics().connections_refused, 2);

    // The connections already open carry on...
    ping(&mut client, 1).await;
    // ...and a closed one frees its place.
    idle.pop();
    wait_for(Duration::from_secs(5), "a place to free up", || {
        (server.server.metrics().connections == 2).then_some(())
    })
    .await;
    let mut http = TcpStream::connect(addr(&server)).await.expect("connect");
    http.write_all(b"GET /metrics.json HTTP/1.1\r\nHost: huddle\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), http.read_to_string(&mut response))
        .await
        .expect("a response")
        .expect("read");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#""connectionsRefused":2"#), "{response}");
    assert!(response.contains(r#""connections":3"#), "{response}");
}
