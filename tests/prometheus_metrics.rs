//! `GET /metrics` is what a Prometheus server scrapes: the text exposition
//! format, checked by Prometheus' own `promtool check metrics` (Debian
//! package `prometheus`), with the same values as `GET /metrics.json`.
#![cfg(feature = "client")]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use huddle::server::config::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One GET; returns the response head and body.
async fn get(server: &TestServer, path: &str) -> (String, String) {
    let addr = server.url.trim_start_matches("ws://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("send");
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_string(&mut response))
        .await
        .expect("a response")
        .expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("head and body");
    (head.to_owned(), body.to_owned())
}

/// The value of the sample `name{node="<node>"}` in `text`.
fn sample(text: &str, name: &str, node: &str) -> f64 {
    let prefix = format!("{name}{{node=\"{node}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {text}"))
        .parse()
        .expect("a number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_and_match_the_json() {
    const TEST: &str = "metrics_pass_promtool_and_match_the_json";
    let mut config = ServerConfig::new(test_apps());
    config.node_id = "node-7".into();
    let server = start_server_with(config).await;
    let mut alice = RawSocket::connect(&server).await;
    alice.joined("room-prom", "alice").await;
    let mut bob = RawSocket::connect(&server).await;
    bob.joined("room-prom", "bob").await;

    let (head, text) = get(&server, "/metrics").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert_eq!(sample(&text, "huddle_rooms", "node-7"), 1.0);
    assert_eq!(sample(&text, "huddle_users", "node-7"), 2.0);
    assert_eq!(sample(&text, "huddle_sessions", "node-7"), 2.0);
    assert_eq!(
        sample(&text, "huddle_forwarded_packets_total", "node-7"),
        0.0
    );

    let (_, json) = get(&server, "/metrics.json").await;
    let json: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(json["users"], 2, "{json}");
    assert_eq!(json["forwardedBytes"], 0, "{json}");

    let Ok(mut promtool) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        skip(
            TEST,
            "promtool (Debian package prometheus) is not installed",
        );
        return;
    };
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let out = promtool.wait_with_output().expect("promtool ran");
    assert!(
        out.status.success(),
        "promtool check metrics refused /metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
