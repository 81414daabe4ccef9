//! `GET /` is the web client's page for a browser and the WebSocket for a
//! client that asks for one: plain GETs get the page and its script and
//! style, upgrades on `/` and `/ws` get a session, and a broken upgrade gets
//! the upgrade's refusal, not the page.
#![cfg(feature = "client")]

mod common;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends one raw HTTP/1.1 request; returns the whole response.
async fn http(server: &TestServer, request_head: &str) -> String {
    let addr = server.url.trim_start_matches("ws://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(format!("{request_head}Host: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("send");
    let mut response = Vec::new();
    tcp.read_to_end(&mut response).await.expect("read");
    String::from_utf8_lossy(&response).into_owned()
}

fn head(response: &str) -> String {
    response
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_gets_the_page_and_its_script_and_style() {
    let server = start_server().await;
    let page = http(&server, "GET / HTTP/1.1\r\n").await;
    let page_head = head(&page);
    assert!(page_head.starts_with("http/1.1 200"), "{page_head}");
    assert!(page_head.contains("content-type: text/html"), "{page_head}");
    assert!(
        page_head.contains("content-security-policy: default-src 'none'; script-src 'self'"),
        "{page_head}"
    );
    assert!(
        page.contains(r#"<script src="/web/huddle.js"></script>"#),
        "{page}"
    );
    // A query string (the page's own parameters) changes nothing.
    let with_query = http(&server, "GET /?room=r&user=u&autojoin=1 HTTP/1.1\r\n").await;
    assert!(
        head(&with_query).starts_with("http/1.1 200"),
        "{with_query}"
    );

    for (path, kind, marker) in [
        ("/web/huddle.js", "text/javascript", "PROTOCOL_VERSION = 1"),
        ("/web/huddle.css", "text/css", ".tile"),
    ] {
        let response = http(&server, &format!("GET {path} HTTP/1.1\r\n")).await;
        let response_head = head(&response);
        assert!(
            response_head.starts_with("http/1.1 200"),
            "{path}: {response_head}"
        );
        assert!(
            response_head.contains(&format!("content-type: {kind}")),
            "{path}: {response_head}"
        );
        assert!(response.contains(marker), "{path} is not the asset");
    }
    let missing = http(&server, "GET /web/nothing.js HTTP/1.1\r\n").await;
    assert!(head(&missing).starts_with("http/1.1 404"), "{missing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_on_both_routes_still_join_and_a_broken_upgrade_gets_no_page() {
    let server = start_server().await;
    for path in ["/", "/ws"] {
        let mut socket = RawSocket::connect_url(&format!("{}{path}", server.url)).await;
        socket
            .joined("web-routes", &format!("u{}", path.len()))
            .await;
    }
    // An upgrade without Sec-WebSocket-Key: refused as an upgrade (4xx), not a page.
    let broken = http(
        &server,
        "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n",
    )
    .await;
    let broken_head = head(&broken);
    assert!(broken_head.starts_with("http/1.1 4"), "{broken_head}");
    assert!(!broken.contains("<html"), "{broken}");
    // And the server carries on.
    let mut after = RawSocket::connect(&server).await;
    after.joined("web-routes", "after").await;
}
