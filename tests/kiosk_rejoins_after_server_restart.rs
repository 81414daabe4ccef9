//! Kiosk mode rejoins on its own when the server goes away and comes back on
//! the same port: `huddle serve` as a child process is killed and restarted;
//! the kiosk must reappear as a room member (server `/metrics` users).
//!
//! Skips, saying why, when Xvfb/ImageMagick are missing (fails on CI).
#![cfg(feature = "app")]

mod common;
mod gui;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const APP_ID: &str = "kiosk-app";
const APP_KEY: &str = "kiosk-key";

fn serve(addr: &str) -> gui::KillOnDrop {
    gui::KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_huddle"))
            .args([
                "serve",
                "--listen",
                addr,
                "--app-id",
                APP_ID,
                "--app-key",
                APP_KEY,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start huddle serve"),
    )
}

fn users(addr: &str) -> Option<u64> {
    let body = gui::http_get(addr, "/metrics")?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v.get("users")?.as_u64()
}

fn wait_users(addr: &str, want: u64, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if users(addr) == Some(want) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "server never saw {want} user(s) (last: {:?})",
            users(addr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn kiosk_rejoins_after_the_server_restarts() {
    if !gui::tools_or_skip("kiosk_rejoins_after_the_server_restarts") {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let url = format!("ws://{addr}");
    let mut server = serve(&addr);

    let display = gui::Display::start();
    let _app = gui::KillOnDrop(display.launch_huddle(&[
        "--kiosk",
        "--server",
        &url,
        "--room",
        "lobby",
        "--user",
        "wall",
        "--app-id",
        APP_ID,
        "--app-key",
        APP_KEY,
        "--window-size",
        "1280x720",
    ]));
    let first = wait_users(&addr, 1, Duration::from_secs(60));
    eprintln!("kiosk joined after {first:?}");

    // Server "crash": kill it, leave it down a moment, start a new one.
    server.0.kill().expect("kill server");
    server.0.wait().ok();
    std::thread::sleep(Duration::from_secs(2));
    server = serve(&addr);
    let again = wait_users(&addr, 1, Duration::from_secs(30));
    eprintln!("kiosk rejoined {again:?} after the restart");
    drop(server);
}
