//! Memory per idle WebSocket connection: starts `huddle serve` on
//! 127.0.0.1:0, opens N WebSocket connections that never join, and reports
//! the server's resident memory (VmRSS) before and after.
//!
//! ```sh
//! cargo build --bin huddle --example ws_idle_memory
//! target/debug/examples/ws_idle_memory [--huddle target/debug/huddle] [--connections 2000]
//! ```
//!
//! The server gets a config that lifts the per-address connection cap and the
//! idle timeout (every connection comes from 127.0.0.1 and sends nothing).
//! Linux only (reads `/proc/<pid>/status`).

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Error = Box<dyn std::error::Error>;

fn rss_kib(pid: u32) -> Result<u64, Error> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS".into())
}

/// `GET /metrics.json` → the `sessions` count.
async fn sessions(addr: &str) -> Result<u64, Error> {
    let mut http = tokio::net::TcpStream::connect(addr).await?;
    http.write_all(b"GET /metrics.json HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = String::new();
    http.read_to_string(&mut response).await?;
    let body = response.split("\r\n\r\n").nth(1).ok_or("no body")?;
    let metrics: serde_json::Value = serde_json::from_str(body)?;
    metrics["sessions"]
        .as_u64()
        .ok_or_else(|| "no sessions".into())
}

async fn wait_for_sessions(addr: &str, n: u64) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while sessions(addr).await? != n {
        if Instant::now() > deadline {
            return Err(format!("the server never reached {n} sessions").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let mut huddle = "target/debug/huddle".to_owned();
    let mut n: u64 = 2000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--huddle" => huddle = args.next().ok_or("--huddle PATH")?,
            "--connections" => n = args.next().ok_or("--connections N")?.parse()?,
            _ => return Err(format!("unknown argument {arg}").into()),
        }
    }
    let config = std::env::temp_dir().join(format!("ws_idle_memory-{}.toml", std::process::id()));
    std::fs::write(
        &config,
        "[limits]\nmax_connections = 100000\nmax_connections_per_ip = 100000\nidle_timeout_secs = 3600\n",
    )?;
    let mut child = Command::new(&huddle)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--app-id",
            "bench",
            "--app-key",
            "bench-key",
        ])
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {huddle}: {e}"))?;
    let pid = child.id();
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let mut lines = std::io::BufReader::new(stderr).lines();
    let url = loop {
        let line = lines.next().ok_or("huddle serve exited")??;
        if let Some((_, url)) = line.split_once("listening on ") {
            break url.trim().to_owned();
        }
    };
    // Keep draining stderr so the server never blocks on it.
    std::thread::spawn(move || for _ in lines {});
    let addr = url.trim_start_matches("ws://").to_owned();

    // One connection first, so what the first one initialises is in the baseline.
    let mut sockets = vec![tokio_tungstenite::connect_async(&url).await?.0];
    wait_for_sessions(&addr, 1).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_kib(pid)?;
    for _ in 0..n {
        sockets.push(tokio_tungstenite::connect_async(&url).await?.0);
    }
    wait_for_sessions(&addr, n + 1).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(pid)?;
    let per = (after.saturating_sub(before)) as f64 / n as f64;
    println!(
        "{n} idle WebSocket connections: server VmRSS {before} KiB -> {after} KiB, +{} KiB, {per:.1} KiB per connection",
        after.saturating_sub(before)
    );
    drop(sockets);
    child.kill().ok(); // exiting anyway
    child.wait().ok();
    std::fs::remove_file(&config).ok();
    Ok(())
}
