//! Top-N audio (issue 12 §2): what it costs the SFU and how fast it follows a
//! talker.
//!
//! `cargo bench --bench top_n --no-default-features --features client`
//! (release profile), optionally followed by
//! `-- [talkers] [listeners] [window_s] [rounds]` (default `20 20 10 10`).
//!
//! The SFU is the `huddle serve` binary of this build, in its own process on
//! 127.0.0.1; every client runs in this process. `talkers` clients publish
//! audio only (a tone each, amplitudes 3 dB apart, so the loudest three are
//! clear). Then, for `window_s` each, measured on the server process only
//! (`/proc/<pid>/stat` utime+stime, `forwardedPackets` of `/metrics.json`):
//!
//! 1. **all**: `listeners` clients subscribe to the audio of every talker
//!    (receive-only, no decoding): talkers × listeners egress tracks.
//! 2. **top-N**: `listeners` clients enable top-N audio instead
//!    (receive-only): three slots each, the SFU choosing per packet.
//!
//! and then, with the top-N listeners still there:
//!
//! 3. **indicator latency**: `rounds` times, a quiet talker's tone goes from
//!    its level to full scale; the time until the first listener's
//!    `volume-indicator` names it is recorded (the talker is then made quiet
//!    again and leaves the indicator before the next round).
//!
//! Prints a markdown table and writes JSON to
//! `$BENCH_OUT/top_n.json` (default `target/bench-results`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use huddle::client::{
    Client, Credential, JoinConfig, LocalStream, RoomEvent, StreamId, SubscribeOptions, TopNAudio,
};
use huddle::media::{AudioProfile, SyntheticAudio, ToneLevel, ToneSource, VideoProfile};
use huddle::protocol::{AppId, Role, RoomId, UserId};

const APP_ID: &str = "bench";
const APP_KEY: &str = "bench-key-0123456789abcdef";
const ROOM: &str = "top-n-bench";
/// Loudest talker's amplitude; each next one 3 dB quieter.
const LOUDEST: f32 = 0.5;
/// Settling time before a measurement window.
const SETTLE: Duration = Duration::from_secs(4);

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

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
    fn start() -> BenchResult<Self> {
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let child = Command::new(env!("CARGO_BIN_EXE_huddle"))
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

    fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// A GET's body (HTTP/1.0, so the server closes after it).
    fn get(&self, path: &str) -> BenchResult<String> {
        let mut tcp = TcpStream::connect(self.addr)?;
        write!(tcp, "GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n")?;
        let mut text = String::new();
        tcp.read_to_string(&mut text)?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        Ok(body.to_owned())
    }

    fn forwarded_packets(&self) -> BenchResult<u64> {
        let json: serde_json::Value = serde_json::from_str(&self.get("/metrics.json")?)?;
        json["forwardedPackets"]
            .as_u64()
            .ok_or_else(|| "no forwardedPackets".into())
    }

    /// CPU seconds the server process has used (user + system).
    fn cpu_seconds(&self) -> BenchResult<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        // Fields after the command name, which is in parentheses.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = fields.get(11).unwrap_or(&"0").parse::<u64>()?
            + fields.get(12).unwrap_or(&"0").parse::<u64>()?;
        // USER_HZ is 100 on every Linux the project runs on.
        Ok(ticks as f64 / 100.0)
    }
}

fn join_config(server: &Server, user: &str, decode: bool) -> JoinConfig {
    JoinConfig {
        server_url: server.url(),
        app_id: AppId(APP_ID.into()),
        room_id: RoomId(ROOM.into()),
        user_id: UserId(user.into()),
        user_name: String::new(),
        role: Role::Joiner,
        credential: Credential::AppKey {
            key: APP_KEY.into(),
            valid_for: Duration::from_secs(3600),
        },
        decode,
        reconnect_window: huddle::client::DEFAULT_RECONNECT_WINDOW,
    }
}

fn talker_stream(tone_hz: f32, level: &ToneLevel) -> LocalStream {
    let profile = AudioProfile::default();
    let tone = ToneSource::new(tone_hz, profile.sample_rate, profile.channels, 0.0)
        .with_level(level.clone());
    LocalStream::new(
        None,
        Some(Box::new(SyntheticAudio::from_tone(tone))),
        VideoProfile::default(),
        profile,
    )
}

/// One measurement window on the server.
#[derive(serde::Serialize)]
struct Window {
    mode: &'static str,
    seconds: f64,
    server_cpu_s: f64,
    forwarded_packets: u64,
    ingress_packets_estimate: u64,
}

impl Window {
    fn us_per_forwarded(&self) -> f64 {
        self.server_cpu_s * 1e6 / self.forwarded_packets.max(1) as f64
    }
    fn us_per_ingress(&self) -> f64 {
        self.server_cpu_s * 1e6 / self.ingress_packets_estimate.max(1) as f64
    }
}

async fn measure(
    server: &Server,
    mode: &'static str,
    talkers: usize,
    window: Duration,
) -> BenchResult<Window> {
    tokio::time::sleep(SETTLE).await;
    let (cpu0, fwd0, t0) = (
        server.cpu_seconds()?,
        server.forwarded_packets()?,
        Instant::now(),
    );
    tokio::time::sleep(window).await;
    let (cpu1, fwd1, seconds) = (
        server.cpu_seconds()?,
        server.forwarded_packets()?,
        t0.elapsed().as_secs_f64(),
    );
    Ok(Window {
        mode,
        seconds,
        server_cpu_s: cpu1 - cpu0,
        forwarded_packets: fwd1 - fwd0,
        // 50 packets/s (20 ms Opus) per talker.
        ingress_packets_estimate: (talkers as f64 * 50.0 * seconds) as u64,
    })
}

fn latest_indicator(client: &Client) -> Option<Vec<String>> {
    client
        .events()
        .try_iter()
        .filter_map(|e| match e {
            RoomEvent::VolumeIndicator(v) => Some(v),
            _ => None,
        })
        .last()
        .map(|v| v.into_iter().map(|u| u.user_id.0).collect())
}

/// Waits (≤ 10 s) until `check` holds for a `volume-indicator` of `client`;
/// returns when it came.
async fn until_indicator(client: &Client, check: impl Fn(&[String]) -> bool) -> Option<Instant> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if latest_indicator(client).is_some_and(|users| check(&users)) {
            return Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    None
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> BenchResult<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let talkers = args.first().copied().unwrap_or(20);
    let listeners = args.get(1).copied().unwrap_or(20);
    let window = Duration::from_secs(args.get(2).copied().unwrap_or(10) as u64);
    let rounds = args.get(3).copied().unwrap_or(10);
    let server = Server::start()?;

    let mut levels = Vec::new();
    let mut talker_clients = Vec::new();
    let mut streams: Vec<StreamId> = Vec::new();
    for i in 0..talkers {
        let level = ToneLevel::new(LOUDEST * 10f32.powf(-3.0 * i as f32 / 20.0));
        let client = Client::new();
        client
            .join(join_config(&server, &format!("talker{i}"), true))
            .await?;
        streams.push(
            client
                .publish(talker_stream(200.0 + 40.0 * i as f32, &level))
                .await?,
        );
        levels.push(level);
        talker_clients.push(client);
    }
    let idle = measure(&server, "talkers only", talkers, window).await?;

    // 1. Every listener subscribes to every talker's audio.
    let mut all = Vec::new();
    for l in 0..listeners {
        let client = Client::new();
        client
            .join(join_config(&server, &format!("all{l}"), false))
            .await?;
        let mut subs = Vec::new();
        for &stream in &streams {
            subs.push(
                client
                    .subscribe(
                        stream,
                        SubscribeOptions {
                            audio: true,
                            video: false,
                        },
                    )
                    .await?,
            );
        }
        all.push((client, subs));
    }
    let every = measure(&server, "subscribe to all", talkers, window).await?;
    for (client, _) in all.drain(..) {
        client.leave().await.ok(); // measured already; the server cleans up
    }

    // 2. Every listener in top-N mode.
    let mut top: Vec<(Client, TopNAudio)> = Vec::new();
    for l in 0..listeners {
        let client = Client::new();
        client
            .join(join_config(&server, &format!("top{l}"), false))
            .await?;
        let audio = client
            .enable_top_three_audio_mode(true)
            .await?
            .ok_or("no slots")?;
        top.push((client, audio));
    }
    let top_n = measure(&server, "top-N", talkers, window).await?;

    // 3. Indicator latency: a quiet talker gets loud.
    let observer = &top[0].0;
    let mut latencies_ms = Vec::new();
    for round in 0..rounds {
        let who = talkers - 1 - round % (talkers - 3).max(1);
        let name = format!("talker{who}");
        let quiet = levels[who].get();
        levels[who].set(1.0);
        let louder = Instant::now();
        match until_indicator(observer, |users| users.contains(&name)).await {
            Some(at) => latencies_ms.push(at.duration_since(louder).as_secs_f64() * 1e3),
            None => eprintln!("round {round}: {name} never appeared"),
        }
        levels[who].set(quiet);
        until_indicator(observer, |users| !users.contains(&name)).await;
        // The talker it displaced has its slot back just now: let it hold
        // it past the minimum hold, or the next round measures that hold.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    latencies_ms.sort_by(f64::total_cmp);

    let pct = |p: f64| {
        latencies_ms
            .get(((latencies_ms.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "| mode | server CPU (% of a core) | forwarded pkt/s | µs CPU / forwarded pkt | µs CPU / ingress pkt |"
    );
    println!("|---|---|---|---|---|");
    for w in [&idle, &every, &top_n] {
        let per_forwarded = match w.forwarded_packets {
            0 => "—".to_owned(),
            _ => format!("{:.2}", w.us_per_forwarded()),
        };
        println!(
            "| {} | {:.1} | {:.0} | {per_forwarded} | {:.2} |",
            w.mode,
            w.server_cpu_s / w.seconds * 100.0,
            w.forwarded_packets as f64 / w.seconds,
            w.us_per_ingress(),
        );
    }
    // What forwarding adds to the talkers' own cost, per forwarded packet.
    for w in [&every, &top_n] {
        let added = (w.server_cpu_s / w.seconds - idle.server_cpu_s / idle.seconds) * 1e6;
        println!(
            "{}: {:.2} µs of server CPU per forwarded packet above the talkers-only load",
            w.mode,
            added / (w.forwarded_packets as f64 / w.seconds).max(1.0)
        );
    }
    println!(
        "\nindicator latency over {} rounds: min {:.0} ms, median {:.0} ms, p90 {:.0} ms, max {:.0} ms",
        latencies_ms.len(),
        pct(0.0),
        pct(0.5),
        pct(0.9),
        pct(1.0)
    );

    let out = std::env::var("BENCH_OUT").unwrap_or_else(|_| "target/bench-results".into());
    std::fs::create_dir_all(&out)?;
    let json = serde_json::json!({
        "talkers": talkers,
        "listeners": listeners,
        "window_s": window.as_secs(),
        "windows": [idle, every, top_n],
        "indicator_latency_ms": latencies_ms,
        "cpu": std::fs::read_to_string("/proc/cpuinfo").ok()
            .and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(|l| l.to_owned())),
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
    });
    std::fs::write(
        format!("{out}/top_n.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    for (client, _) in top {
        client.leave().await.ok();
    }
    for client in talker_clients {
        client.leave().await.ok();
    }
    Ok(())
}
