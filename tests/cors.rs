//! `GET /signature` from a web page on another origin (CORS): only the
//! configured origins get the headers a browser needs; nothing is allowed
//! by default.
#![cfg(feature = "client")]

mod common;

use common::*;
use huddle::server::config::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends one raw HTTP/1.1 request to the test server; returns the response
/// head, lower-cased.
async fn http(server: &TestServer, request_head: &str) -> String {
    let addr = server.url.trim_start_matches("ws://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(format!("{request_head}Host: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("send");
    let mut response = Vec::new();
    tcp.read_to_end(&mut response).await.expect("read");
    let text = String::from_utf8_lossy(&response).to_lowercase();
    text.split("\r\n\r\n").next().unwrap_or_default().to_owned()
}

fn signature_get(origin: &str) -> String {
    format!(
        "GET /signature?appid={APP_ID}&roomid=r&userid=u HTTP/1.1\r\nOrigin: {origin}\r\nX-AUTH-TOKEN: t\r\n"
    )
}

fn preflight(origin: &str) -> String {
    format!(
        "OPTIONS /signature HTTP/1.1\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: x-auth-token\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_configured_origins_may_fetch_signatures() {
    let mut config = ServerConfig::new(test_apps());
    config.signature_token = Some("t".into());
    config.cors_origins = vec!["https://meet.example.com".into()];
    let server = start_server_with(config).await;

    let allowed = http(&server, &signature_get("https://meet.example.com")).await;
    assert!(allowed.starts_with("http/1.1 200"), "{allowed}");
    assert!(
        allowed.contains("access-control-allow-origin: https://meet.example.com"),
        "{allowed}"
    );
    let preflight_ok = http(&server, &preflight("https://meet.example.com")).await;
    assert!(preflight_ok.starts_with("http/1.1 200"), "{preflight_ok}");
    assert!(
        preflight_ok.contains("access-control-allow-headers: x-auth-token"),
        "{preflight_ok}"
    );
    assert!(
        preflight_ok.contains("access-control-allow-methods: get"),
        "{preflight_ok}"
    );

    // Another origin: the reply carries no CORS header, so a browser keeps
    // it from the page.
    for head in [
        signature_get("https://evil.example"),
        preflight("https://evil.example"),
    ] {
        let other = http(&server, &head).await;
        assert!(!other.contains("access-control-allow-origin"), "{other}");
    }
    // The token is still required of an allowed origin.
    let no_token = http(
        &server,
        &format!(
            "GET /signature?appid={APP_ID}&roomid=r&userid=u HTTP/1.1\r\nOrigin: https://meet.example.com\r\n"
        ),
    )
    .await;
    assert!(no_token.starts_with("http/1.1 401"), "{no_token}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_origin_is_allowed_by_default() {
    let mut config = ServerConfig::new(test_apps());
    config.signature_token = Some("t".into());
    let server = start_server_with(config).await;
    let reply = http(&server, &signature_get("https://meet.example.com")).await;
    assert!(reply.starts_with("http/1.1 200"), "{reply}");
    assert!(!reply.contains("access-control-allow-origin"), "{reply}");
}
