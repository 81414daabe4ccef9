//! Cross-room co-hosting (issue 15 §1): does a relayed stream cost more than a
//! local one? Starts `huddle serve` on 127.0.0.1 in its own process; every
//! client runs in this process.
//!
//! ```sh
//! cargo build --bin huddle --example cross_room_relay
//! target/debug/examples/cross_room_relay [--huddle target/debug/huddle] [--subscribers 10] [--window 10] [--rounds 2]
//! ```
//!
//! A publisher in room A sends the synthetic pattern (360p_2) and a tone, and
//! relays its stream into room B. Then:
//!
//! 1. **latency**: one decoding subscriber in A and one in B watch the same
//!    stream at the same time; glass-to-glass latency (the frame's drawn
//!    capture time to its decode, one clock) p50/p99 over the window.
//! 2. **CPU per forwarded packet**, measured on the server process only
//!    (`/proc/<pid>/stat` utime+stime over `forwardedPackets` of
//!    `/metrics.json`): `subscribers` receive-only clients (no decoding) in A
//!    (local), then the same number in B (relayed); `rounds` times, the
//!    order swapped every other round.
//!
//! Prints a markdown table. Linux only.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use huddle::client::{
    Client, Credential, JoinConfig, LocalStream, RemoteStream, StreamId, SubscribeOptions,
};
use huddle::media::{AudioProfile, VideoProfile};
use huddle::protocol::{AppId, Role, RoomId, UserId};

const APP_ID: &str = "bench";
const APP_KEY: &str = "bench-key-0123456789abcdef";
const SETTLE: Duration = Duration::from_secs(4);

type Error = Box<dyn std::error::Error>;

/// The `huddle serve` child; killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.child.kill().ok(); // already gone: nothing to stop
        self.child.wait().ok();
    }
}

impl Server {
    fn start(huddle: &str) -> Result<Self, Error> {
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let child = Command::new(huddle)
            .args([
                "serve",
                "--listen",
                &addr.to_string(),
                "--app-id",
                APP_ID,
                "--app-key",
                APP_KEY,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let server = Self { child, addr };
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.get("/healthz").is_err() {
            if Instant::now() > deadline {
                return Err("the server did not start".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }

    fn get(&self, path: &str) -> Result<String, Error> {
        let mut tcp = TcpStream::connect(self.addr)?;
        write!(tcp, "GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n")?;
        let mut text = String::new();
        tcp.read_to_string(&mut text)?;
        Ok(text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or("")
            .to_owned())
    }

    fn metric(&self, name: &str) -> Result<u64, Error> {
        let json: serde_json::Value = serde_json::from_str(&self.get("/metrics.json")?)?;
        json[name]
            .as_u64()
            .ok_or_else(|| format!("no {name}").into())
    }

    /// CPU seconds the server process has used (user + system).
    fn cpu_seconds(&self) -> Result<f64, Error> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = fields.get(11).unwrap_or(&"0").parse::<u64>()?
            + fields.get(12).unwrap_or(&"0").parse::<u64>()?;
        Ok(ticks as f64 / 100.0) // USER_HZ
    }

    fn join_config(&self, room: &str, user: &str, role: Role, decode: bool) -> JoinConfig {
        JoinConfig {
            server_url: format!("ws://{}", self.addr),
            app_id: AppId(APP_ID.into()),
            room_id: RoomId(room.into()),
            user_id: UserId(user.into()),
            user_name: String::new(),
            role,
            credential: key(),
            decode,
            reconnect_window: huddle::client::DEFAULT_RECONNECT_WINDOW,
        }
    }
}

fn key() -> Credential {
    Credential::AppKey {
        key: APP_KEY.into(),
        valid_for: Duration::from_secs(3600),
    }
}

async fn watcher(
    server: &Server,
    room: &str,
    user: &str,
    stream: StreamId,
    decode: bool,
) -> Result<(Client, RemoteStream), Error> {
    let client = Client::new();
    client
        .join(server.join_config(room, user, Role::Player, decode))
        .await?;
    let remote = client
        .subscribe(stream, SubscribeOptions::default())
        .await?;
    Ok((client, remote))
}

/// Server CPU µs per forwarded packet over `window`, and packets/s.
async fn cpu_window(server: &Server, window: Duration) -> Result<(f64, f64), Error> {
    tokio::time::sleep(SETTLE).await;
    let (cpu0, fwd0, t0) = (
        server.cpu_seconds()?,
        server.metric("forwardedPackets")?,
        Instant::now(),
    );
    tokio::time::sleep(window).await;
    let cpu = server.cpu_seconds()? - cpu0;
    let fwd = server.metric("forwardedPackets")? - fwd0;
    Ok((
        cpu * 1e6 / fwd.max(1) as f64,
        fwd as f64 / t0.elapsed().as_secs_f64(),
    ))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    let mut huddle = "target/debug/huddle".to_owned();
    let mut subscribers = 10usize;
    let mut window = Duration::from_secs(10);
    let mut rounds = 2usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or("a flag without its value")?;
        match arg.as_str() {
            "--huddle" => huddle = value,
            "--subscribers" => subscribers = value.parse()?,
            "--window" => window = Duration::from_secs(value.parse()?),
            "--rounds" => rounds = value.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    let server = Server::start(&huddle)?;
    let publisher = Client::new();
    publisher
        .join(server.join_config("bench-a", "streamer", Role::Joiner, true))
        .await?;
    let stream = publisher
        .publish(LocalStream::synthetic(
            VideoProfile::default(),
            AudioProfile::default(),
            440.0,
        ))
        .await?;
    publisher
        .start_cross_room_relay(RoomId("bench-b".into()), stream, key())
        .await?;

    // 1. Latency: one decoding watcher in each room, side by side.
    let (local_c, local) = watcher(&server, "bench-a", "local", stream, true).await?;
    let (relay_c, relayed) = watcher(&server, "bench-b", "relayed", stream, true).await?;
    tokio::time::sleep(SETTLE + window).await;
    let (l, r) = (local.stats(), relayed.stats());
    let (Some(ll), Some(rl)) = (l.latency(), r.latency()) else {
        return Err("no latency samples (nothing decoded?)".into());
    };
    println!("| latency | frames decoded | p50 ms | p90 ms | p99 ms |\n|---|---|---|---|---|");
    println!(
        "| local (room A) | {} | {:.1} | {:.1} | {:.1} |",
        l.frames_decoded, ll.p50_ms, ll.p90_ms, ll.p99_ms
    );
    println!(
        "| relayed (room B) | {} | {:.1} | {:.1} | {:.1} |",
        r.frames_decoded, rl.p50_ms, rl.p90_ms, rl.p99_ms
    );
    local_c.leave().await?;
    relay_c.leave().await?;

    // 2. Server CPU per forwarded packet: N receive-only watchers, local then relayed.
    let mut rows = Vec::new();
    let rooms = [
        ("local (room A)", "bench-a"),
        ("relayed (room B)", "bench-b"),
    ];
    // Alternate the order so that warm-up and load drift hit both alike.
    let order: Vec<_> = (0..rounds)
        .flat_map(|r| {
            if r % 2 == 0 {
                [rooms[0], rooms[1]]
            } else {
                [rooms[1], rooms[0]]
            }
        })
        .collect();
    for (label, room) in order {
        let mut clients = Vec::new();
        for i in 0..subscribers {
            clients.push(watcher(&server, room, &format!("w{i}"), stream, false).await?);
        }
        let (us, pps) = cpu_window(&server, window).await?;
        rows.push((label, us, pps));
        for (c, _) in clients {
            c.leave().await?;
        }
    }
    println!(
        "\n| {subscribers} receive-only watchers | forwarded packets/s | server CPU µs per forwarded packet |\n|---|---|---|"
    );
    for (label, us, pps) in rows {
        println!("| {label} | {pps:.0} | {us:.1} |");
    }
    println!(
        "\ningressTracks at the end: {} (the streamer's audio + video, read once)",
        server.metric("ingressTracks")?
    );
    publisher.leave().await?;
    Ok(())
}
