//! `huddle check` (seed `checkSystemRequirements`) and `--log-level` (seed
//! `setLogLevel`), as a user runs them.
#![cfg(feature = "client")]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn huddle(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_huddle"))
        .args(args)
        .output()
        .expect("huddle runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_codecs_and_a_server_that_answers() {
    let server = start_server().await;
    let url = server.url.clone();
    let out = tokio::task::spawn_blocking(move || huddle(&["check", "--server", &url]))
        .await
        .expect("joined");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    for line in [
        "ok      H.264: OpenH264 720p: encode",
        "ok      Opus: ",
        "ok      signalling server: ws://127.0.0.1:",
    ] {
        assert!(stdout.contains(line), "no {line:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("BLOCKER"), "{stdout}");
}

#[test]
fn check_fails_when_the_server_does_not_answer() {
    // A port nothing listens on: bound, then closed by dropping it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let out = huddle(&["check", "--server", &format!("ws://127.0.0.1:{port}")]);
    let stdout = text(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("BLOCKER signalling server: ws://127.0.0.1:"),
        "{stdout}"
    );
    assert!(
        text(&out.stderr).contains("blocks huddle"),
        "{}",
        text(&out.stderr)
    );
    // Bad input: not a ws:// URL.
    let out = huddle(&["check", "--server", "http://127.0.0.1:1"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--server must be a ws://"),
        "{}",
        text(&out.stderr)
    );
}

/// Lines `huddle serve` writes to stderr until it says it is listening,
/// plus what follows within `settle`.
fn serve_stderr(extra: &[&str], settle: Duration) -> Vec<String> {
    let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut child = Command::new(env!("CARGO_BIN_EXE_huddle"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("huddle serve starts");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut settle_until = deadline;
    while Instant::now() < settle_until {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(50)) {
            if line.contains("listening on") {
                settle_until = Instant::now() + settle;
            }
            lines.push(line);
        }
    }
    child.kill().ok();
    child.wait().ok();
    assert!(
        lines.iter().any(|l| l.contains("listening on")),
        "huddle serve {extra:?} never said it was listening: {lines:#?}"
    );
    lines
}

#[test]
fn log_level_filters_what_serve_prints_and_nonsense_is_refused() {
    let warned = |lines: &[String]| {
        lines
            .iter()
            .any(|l| l.contains("WARN") && l.contains("/signature"))
    };
    // By default the open /signature endpoint is warned about...
    let lines = serve_stderr(&[], Duration::from_secs(1));
    assert!(warned(&lines), "{lines:#?}");
    // ...at --log-level error it is not.
    let lines = serve_stderr(&["--log-level", "error"], Duration::from_secs(1));
    assert!(!warned(&lines), "{lines:#?}");
    let out = huddle(&["serve", "--log-level", "loud"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("log level \"loud\""), "{stderr}");
}
