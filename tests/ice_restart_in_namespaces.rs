//! Issue 11 §1 as a user lives it: a client (in its own network namespace)
//! whose UDP is dropped long enough for ICE to go disconnected while its
//! WebSocket stays up, or whose address changes under it, gets its media
//! back through ICE restarts of its links (`restart-ice`), both ways, with
//! the same stream id, and nobody sees it leave. Runs `benches/ice_restart.sh`
//! (one round per mode) with the `huddle` binary of this build.
//!
//! Needs root (namespaces), `ip`, `nft` and `jq` (`.ci/setup.sh`).
#![cfg(feature = "client")]

mod common;

use std::path::PathBuf;
use std::process::Command;

const TEST: &str = "ice_restart_in_namespaces";

fn tools_or_skip() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        common::skip(TEST, "network namespaces need root");
        return false;
    }
    for tool in ["ip", "nft", "jq"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            common::skip(TEST, &format!("{tool} is not installed (.ci/setup.sh)"));
            return false;
        }
    }
    true
}

/// Runs one round of `mode` and returns the script's JSON result.
fn run(mode: &str) -> serde_json::Value {
    let out =
        std::env::temp_dir().join(format!("huddle-ice-restart-{mode}-{}", std::process::id()));
    std::fs::create_dir_all(&out).expect("temp dir");
    let output = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/benches/ice_restart.sh"
        ))
        .args(["1", mode])
        .env("HUDDLE", env!("CARGO_BIN_EXE_huddle"))
        .env("OUT", &out)
        .output()
        .expect("run benches/ice_restart.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let logs = || {
        ["client.log", "serve.log"]
            .iter()
            .map(|f| {
                let text = std::fs::read_to_string(PathBuf::from(&out).join(f)).unwrap_or_default();
                let lines: Vec<&str> = text
                    .lines()
                    .filter(|l| {
                        l.contains("restart") || l.contains("reconnect") || l.contains("resum")
                    })
                    .collect();
                format!("--- {f}:\n{}", lines.join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let result: serde_json::Value = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| {
            panic!(
                "no JSON result; stdout: {stdout}\nstderr: {}\n{}",
                String::from_utf8_lossy(&output.stderr),
                logs()
            )
        });
    eprintln!("{stdout}");
    let context = format!("{result}\n{}", logs());
    let number = |key: &str| result[key].as_i64().unwrap_or(-1);
    let back = |key: &str| {
        result[key]
            .as_array()
            .and_then(|a| a.first())
            .and_then(|v| v.as_i64())
            .unwrap_or(-1)
    };
    assert!(
        back("subscriptionBackMs") >= 0,
        "the client's subscription never decoded again: {context}"
    );
    assert!(
        back("publicationBackMs") >= 0,
        "the observer never decoded the client again: {context}"
    );
    assert!(
        number("clientRestartsConnected") >= 1,
        "no ICE restart connected: {context}"
    );
    assert!(
        number("serverRestartRequests") >= 1,
        "the server served no restart-ice: {context}"
    );
    assert_eq!(
        number("peerLeaveOfClient"),
        0,
        "someone saw the client leave: {context}"
    );
    assert_eq!(
        number("clientStreamIds"),
        1,
        "the client's stream was republished: {context}"
    );
    std::fs::remove_dir_all(&out).ok(); // a leftover temp dir is harmless
    result
}

/// UDP dropped 8 s, TCP untouched: ICE disconnects and comes back by ICE
/// restarts alone; the WebSocket never dropped, so the session never went
/// RECONNECTING.
#[test]
fn udp_dropped_long_enough_for_ice_to_disconnect_comes_back_by_ice_restart() {
    if !tools_or_skip() {
        return;
    }
    let result = run("drop");
    assert_eq!(result["reconnects"].as_i64(), Some(0), "{result}");
}

/// The client's address changes (and its WebSocket dies with the old one):
/// the session resumes, and its links come back by ICE restarts on new
/// sockets and candidates, not by new links.
#[test]
fn a_client_whose_address_changes_gets_its_links_back_by_ice_restart() {
    if !tools_or_skip() {
        return;
    }
    run("move");
}
