//! Command line: clap flags (raw) → validated configs, in two steps.
//!
//! `main` only parses and dispatches; everything that can be wrong with a flag is
//! reported here with the flag's name, before any socket is opened.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

use crate::auth::{self, AppRegistry};
#[cfg(feature = "client")]
use crate::bot::{BotConfig, BotMeasure};
#[cfg(feature = "client")]
use crate::client::Credential;
#[cfg(feature = "client")]
use crate::media::AudioProfile;
use crate::media::VideoProfile;
use crate::protocol::IceServer;
#[cfg(feature = "client")]
use crate::protocol::{AppId, RoomId};
use crate::server::{Limits, ServerConfig};

/// huddle: self-hosted real-time audio/video.
#[derive(Debug, Parser)]
#[command(name = "huddle", version, about)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to run; without one, the desktop app (or `demo` when built without
    /// the `app` feature).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Desktop-app flags (no subcommand).
    #[command(flatten)]
    pub app: AppArgs,
    /// Log level: `error`, `warn`, `info`, `debug`, `trace` or `off` (for
    /// huddle; other crates log warnings and worse), or a full filter such as
    /// `huddle=debug,webrtc=info`. Overrides `RUST_LOG`.
    #[arg(long, global = true, value_parser = parse_log_level)]
    pub log_level: Option<String>,
}

fn parse_log_level(spec: &str) -> Result<String, String> {
    crate::logging::filter_for(spec)
        .map(|_| spec.to_owned())
        .map_err(|e| e.to_string())
}

/// Flags of the desktop app (`huddle` with no subcommand).
#[derive(Debug, Args, Default)]
pub struct AppArgs {
    /// Kiosk: fullscreen, no lobby, watch-only, rejoin forever. Needs --server,
    /// --room, --user and credentials. Exit: hold Escape 2 s, or triple-click
    /// the top-left corner.
    #[arg(long, requires_all = ["server", "room", "user"])]
    pub kiosk: bool,
    /// Broadcast console: program/preview monitors, tally marks, layouts,
    /// Remove / Dismiss. Joins with a director signature: --app-key signs one
    /// locally; a --signature-url must hand one out (`&director=1`).
    #[arg(long, conflicts_with = "kiosk")]
    pub console: bool,
    /// Open the lobby instead of joining the embedded demo room.
    #[arg(long, conflicts_with = "kiosk")]
    pub lobby: bool,
    /// Signalling URL to join (default: the embedded server).
    #[arg(long)]
    pub server: Option<String>,
    /// Room to join.
    #[arg(long)]
    pub room: Option<String>,
    /// User id.
    #[arg(long)]
    pub user: Option<String>,
    /// Display name (default: the name last typed in the lobby; a kiosk: the user id).
    #[arg(long)]
    pub name: Option<String>,
    /// App id (with --server).
    #[arg(long)]
    pub app_id: Option<String>,
    /// App key, to sign locally.
    #[arg(long, conflicts_with = "signature_url")]
    pub app_key: Option<String>,
    /// Signature server: `GET URL?appid=&roomid=&userid=`.
    #[arg(long)]
    pub signature_url: Option<String>,
    /// X-AUTH-TOKEN for --signature-url.
    #[arg(long, requires = "signature_url")]
    pub auth_token: Option<String>,
    /// Join as a player (watch only). Kiosk always does.
    #[arg(long)]
    pub player: bool,
    /// Show the fps overlay (toggle with F12); fps is logged every 5 s anyway.
    #[arg(long)]
    pub debug_overlay: bool,
    /// Window size, e.g. 1280x720.
    #[arg(long, value_parser = parse_size)]
    pub window_size: Option<[f32; 2]>,
    /// TURN servers for the app's media links (seed `setTurnServer`);
    /// without them the app uses those the room server hands out.
    #[command(flatten)]
    pub turn: TurnArgs,
    /// Send and receive media only through a TURN relay.
    #[arg(long)]
    pub relay_only: bool,
    /// Open the stream debugger (plots, signalling log, SDP) in the room;
    /// toggle it with F9.
    #[arg(long)]
    pub debug: bool,
    /// Record the stream debugger's data (plots, signalling log, links) to
    /// FILE, rewritten every 5 s and when the room is left; open it with
    /// `huddle inspect FILE`.
    #[arg(long, value_name = "FILE")]
    pub record_debug: Option<PathBuf>,
    /// X-AUTH-TOKEN for the stream debugger's Server tab (the server's
    /// `GET /rooms/{id}`); also editable in the tab.
    #[arg(long, value_name = "T")]
    pub server_token: Option<String>,
}

fn parse_size(s: &str) -> Result<[f32; 2], String> {
    let (w, h) = s.split_once('x').ok_or("use WIDTHxHEIGHT, e.g. 1280x720")?;
    let w: f32 = w.parse().map_err(|_| "bad width")?;
    let h: f32 = h.parse().map_err(|_| "bad height")?;
    if !(w >= 200.0 && h >= 150.0) {
        return Err("at least 200x150".into());
    }
    Ok([w, h])
}

impl AppArgs {
    /// Whether any app flag was given.
    pub fn any(&self) -> bool {
        self.kiosk
            || self.console
            || self.lobby
            || self.server.is_some()
            || self.room.is_some()
            || self.user.is_some()
    }

    /// Validates the flags into the app's options.
    #[cfg(feature = "app")]
    pub fn into_options(self) -> anyhow::Result<crate::ui::AppOptions> {
        use crate::protocol::Role;
        use crate::ui::{AppMode, AppOptions, JoinTarget, ServerChoice, SignatureSource};
        let explicit = self.server.is_some();
        let target = if self.lobby {
            None
        } else {
            let room = self.room.unwrap_or_else(|| crate::ui::DEMO_ROOM.into());
            let user = self.user.unwrap_or_else(|| "me".into());
            for (flag, v) in [("--room", &room), ("--user", &user)] {
                if !auth::validate_id(v) {
                    bail!("{flag} must match [A-Za-z0-9_-]{{1,64}}");
                }
            }
            let server = match self.server {
                None => ServerChoice::Local,
                Some(url) if url.starts_with("ws://") || url.starts_with("wss://") => {
                    ServerChoice::Url(url)
                }
                Some(url) => bail!("--server must be a ws:// URL, got {url:?}"),
            };
            let signature = match (self.app_key, self.signature_url) {
                (Some(key), None) => SignatureSource::AppKey(key),
                (None, Some(url)) => SignatureSource::Url {
                    url,
                    token: self.auth_token.unwrap_or_default(),
                },
                _ if !explicit => SignatureSource::AppKey(String::new()),
                _ => bail!("with --server give --app-key, or --signature-url"),
            };
            let app_id = match self.app_id {
                Some(id) if auth::validate_id(&id) => id,
                Some(_) => bail!("--app-id must match [A-Za-z0-9_-]{{1,64}}"),
                None if explicit => bail!("with --server give --app-id"),
                None => String::new(),
            };
            Some(JoinTarget {
                server,
                app_id,
                room,
                // Empty: the app uses the name remembered from the lobby
                // (or, in a kiosk, the user id).
                user_name: self.name.unwrap_or_default(),
                user_id: user,
                role: if self.player || self.kiosk {
                    Role::Player
                } else {
                    Role::Joiner
                },
                signature,
            })
        };
        let mode = match (self.kiosk, target) {
            (true, Some(t)) => AppMode::Kiosk(t),
            (true, None) => bail!("--kiosk needs --server, --room and --user"),
            (false, target) => AppMode::Desktop { target },
        };
        let turn = crate::client::TurnConfig {
            servers: self.turn.into_servers()?,
            relay_only: self.relay_only,
        };
        turn.check()
            .map_err(|e| anyhow::anyhow!("--relay-only/--turn: {e}"))?;
        Ok(AppOptions {
            turn,
            embedded_server: !self.kiosk,
            mode,
            debug_overlay: self.debug_overlay,
            window_size: self.window_size,
            debug: crate::ui::DebugOptions {
                open: self.debug,
                record_to: self.record_debug,
                server_token: self.server_token.unwrap_or_default(),
            },
            console: self.console,
        })
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the room server (signalling + SFU).
    Serve(ServeArgs),
    /// Print a join signature and its ctime.
    Sign(SignArgs),
    /// Check this machine (codecs, audio devices, cameras, display, GPU)
    /// and optionally a server; exits 1 when something blocks huddle.
    Check(CheckArgs),
    /// Run headless bots that publish and/or subscribe and print live stats.
    #[cfg(feature = "client")]
    Bot(BotArgs),
    /// One process: a server with a dev app, a publishing bot and a subscribing bot.
    #[cfg(feature = "client")]
    Demo(DemoArgs),
    /// Record every stream of a room into MP4 files (H.264 + Opus, one file
    /// per stream, one room clock) as a player that subscribes to them.
    #[cfg(feature = "client")]
    Record(RecordArgs),
    /// Open a stream-debugger session file (`Save session…`,
    /// `--record-debug FILE`) offline, with the debugger's views.
    #[cfg(feature = "app")]
    Inspect(InspectArgs),
}

/// `huddle inspect` flags.
#[cfg(feature = "app")]
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The session file.
    pub file: PathBuf,
    /// Window size, e.g. 1280x720.
    #[arg(long, value_parser = parse_size)]
    pub window_size: Option<[f32; 2]>,
}

/// `huddle record` flags.
#[cfg(feature = "client")]
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Signalling URL.
    #[arg(long, default_value = "ws://127.0.0.1:7880")]
    pub server: String,
    /// Room to record.
    #[arg(long)]
    pub room: String,
    /// The recorder's user id.
    #[arg(long, default_value = "recorder")]
    pub user: String,
    /// Directory for the files (`<room>-<publisher>-<stream>.mp4`).
    #[arg(long)]
    pub out: PathBuf,
    /// Stop after this many seconds (default: Ctrl-C).
    #[arg(long)]
    pub duration: Option<f64>,
    #[command(flatten)]
    /// App id and signature source.
    pub credentials: CredentialArgs,
}

#[cfg(feature = "client")]
impl RecordArgs {
    /// Validates the flags.
    pub fn into_config(self) -> anyhow::Result<crate::bot::record::RecordConfig> {
        if !auth::validate_id(&self.room) {
            bail!("--room must match [A-Za-z0-9_-]{{1,64}}");
        }
        if !auth::validate_id(&self.user) {
            bail!("--user must match [A-Za-z0-9_-]{{1,64}}");
        }
        let credential = match (
            self.credentials.app_key,
            self.credentials.signature,
            self.credentials.ctime,
        ) {
            (Some(key), None, None) => Credential::AppKey {
                key,
                valid_for: Duration::from_secs(auth::DEFAULT_SIGNATURE_LIFETIME_SECS),
            },
            (None, Some(signature), Some(ctime)) => Credential::Signature { ctime, signature },
            _ => bail!("give --app-key, or --signature with --ctime"),
        };
        let duration = match self.duration {
            Some(secs) if !(secs > 0.0 && secs.is_finite()) => {
                bail!("--duration must be a positive number of seconds")
            }
            Some(secs) => Some(Duration::from_secs_f64(secs)),
            None => None,
        };
        Ok(crate::bot::record::RecordConfig {
            server_url: self.server,
            app_id: AppId(self.credentials.app_id),
            credential,
            room_id: RoomId(self.room),
            user_id: crate::protocol::UserId(self.user),
            out_dir: self.out,
            duration,
        })
    }
}

/// `huddle serve` flags.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address for HTTP/WebSocket.
    #[arg(long, default_value = "127.0.0.1:7880")]
    pub listen: SocketAddr,
    /// TOML config: `[[apps]] id/key`, `signature_token`, `cors_origins`, `node_id`, `rtc_ip`,
    /// `public_ip`, `[[ice_servers]] urls/username/credential`, `tls_cert`, `tls_key`, `[limits]`,
    /// `redis`, `public_url`, `cluster_ttl_secs`, `relay_subscribers`, `balance_margin`,
    /// `relay_credential_secs`, `relay_ca`.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// An app id to accept (with --app-key), in addition to the config file's.
    #[arg(long, requires = "app_key")]
    pub app_id: Option<String>,
    /// The key of --app-id.
    #[arg(long, requires = "app_id")]
    pub app_key: Option<String>,
    /// Require this X-AUTH-TOKEN on GET /signature.
    #[arg(long)]
    pub signature_token: Option<String>,
    /// Let web pages of this origin call GET /signature and WHIP/WHEP (CORS), e.g.
    /// `https://meet.example.com`, or `*`; repeatable. Adds to the config
    /// file's `cors_origins`.
    #[arg(long = "cors-origin")]
    pub cors_origins: Vec<String>,
    /// This server's name (the `node` label of every /metrics series);
    /// default: the host name.
    #[arg(long)]
    pub node_id: Option<String>,
    /// IP address the SFU binds its UDP sockets to.
    #[arg(long)]
    pub rtc_ip: Option<IpAddr>,
    /// Serve https:// and wss:// on --listen with this PEM certificate chain
    /// (with --tls-key); browsers need it for the camera on any host but
    /// localhost.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Public IP advertised in the SFU's ICE candidates instead of --rtc-ip
    /// (a server behind a 1:1 NAT; ports are kept).
    #[arg(long)]
    pub public_ip: Option<IpAddr>,
    /// TURN/STUN server handed to clients in `joined`, e.g.
    /// `turn:turn.example.org:3478?transport=udp` (repeatable; replaces the
    /// config file's `[[ice_servers]]`).
    #[command(flatten)]
    pub turn: TurnArgs,
    /// Maximum users per room.
    #[arg(long)]
    pub max_users_per_room: Option<usize>,
    /// Maximum rooms.
    #[arg(long)]
    pub max_rooms: Option<usize>,
    /// Seconds before a session's signature expires that its client is told
    /// (`signature-expired`) and may renew it (default 60).
    #[arg(long)]
    pub signature_expiry_notice_secs: Option<u64>,
    /// Let joiners record their room (`start-recording`) into MP4 files
    /// under this directory; recording is off without it.
    #[arg(long)]
    pub record_dir: Option<PathBuf>,
    /// Run as one node of several coordinated through this Redis
    /// (`redis://host:port`): rooms are claimed there and joins for a room
    /// on another node are redirected to it. Without it: a single node.
    #[arg(long)]
    pub redis: Option<String>,
    /// With --redis: the signalling URL clients reach this node at
    /// (`ws://host:port`, `wss://…`); default: the --listen address.
    #[arg(long)]
    pub public_url: Option<String>,
    /// With --redis: seconds a node's registration and room claims live
    /// without a refresh, which bounds how long a dead node's rooms stay
    /// unreachable (default 10).
    #[arg(long)]
    pub cluster_ttl_secs: Option<u64>,
    /// With --redis: serve players (role 2) of rooms owned by another node
    /// here, with one relay link per stream from the owner, instead of
    /// redirecting them (joiners are still redirected).
    #[arg(long)]
    pub relay_subscribers: bool,
    /// With --redis: a new room goes to the live node with the fewest users
    /// when this node has more than this many users more than it (0: always
    /// the least loaded). Without it, a new room stays on the node its first
    /// join reached.
    #[arg(long, value_name = "USERS")]
    pub balance_margin: Option<usize>,
    /// With --relay-subscribers: seconds a relay's node credential is valid
    /// (its mirror renews it at half of that; default 39600, 11 h; 2 to
    /// 43200).
    #[arg(long)]
    pub relay_credential_secs: Option<u64>,
    /// With --relay-subscribers: PEM file of the CAs trusted for owner nodes
    /// whose URL is wss:// (default: the system's, /etc/ssl/certs).
    #[arg(long)]
    pub relay_ca: Option<PathBuf>,
}

/// The cluster part of `huddle serve` (`--redis`, `--public-url`,
/// `--cluster-ttl-secs`, `--relay-subscribers`, `--balance-margin` or their
/// `huddle.toml` keys); `None` without Redis.
fn cluster_config(
    redis: Option<String>,
    public_url: Option<String>,
    ttl_secs: Option<u64>,
    relay_subscribers: bool,
    balance_margin: Option<usize>,
) -> anyhow::Result<Option<crate::server::cluster::ClusterConfig>> {
    use crate::server::cluster::keys::Placement;
    let Some(redis) = redis else {
        if public_url.is_some()
            || ttl_secs.is_some()
            || relay_subscribers
            || balance_margin.is_some()
        {
            bail!(
                "public_url, cluster_ttl_secs, relay_subscribers and balance_margin need redis (a cluster of nodes)"
            );
        }
        return Ok(None);
    };
    let mut cluster = crate::server::cluster::ClusterConfig::new(redis);
    cluster.public_url = public_url;
    cluster.relay_subscribers = relay_subscribers;
    if let Some(margin) = balance_margin {
        cluster.placement = Placement::LeastUsers { margin };
    }
    if let Some(secs) = ttl_secs {
        cluster.ttl = Duration::from_secs(secs);
    }
    cluster.check().map_err(|e| anyhow::anyhow!(e))?;
    Ok(Some(cluster))
}

/// `huddle check` flags.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Also check that the signalling server at this URL answers
    /// (`ws://host:port` or `wss://…`).
    #[arg(long)]
    pub server: Option<String>,
}

impl CheckArgs {
    /// The check's configuration.
    pub fn into_config(self) -> anyhow::Result<crate::check::CheckConfig> {
        if let Some(url) = &self.server
            && !(url.starts_with("ws://") || url.starts_with("wss://"))
        {
            bail!("--server must be a ws:// or wss:// URL, got {url:?}");
        }
        Ok(crate::check::CheckConfig {
            server: self.server,
        })
    }
}

/// TURN/STUN server flags (`serve` hands them out, `bot` uses them).
#[derive(Debug, Args, Default)]
pub struct TurnArgs {
    /// A `turn:host:port?transport=udp` or `stun:host:port` URL (repeatable).
    #[arg(long = "turn", value_name = "URL")]
    pub urls: Vec<String>,
    /// User name for the --turn servers.
    #[arg(long, requires = "urls")]
    pub turn_user: Option<String>,
    /// Credential (password) for the --turn servers.
    #[arg(long, requires = "urls")]
    pub turn_credential: Option<String>,
}

impl TurnArgs {
    /// One [`IceServer`] with every URL, or none; checked (flag names in the error).
    pub fn into_servers(self) -> anyhow::Result<Vec<IceServer>> {
        if self.urls.is_empty() {
            return Ok(Vec::new());
        }
        let server = IceServer {
            urls: self.urls,
            username: self.turn_user.unwrap_or_default(),
            credential: self.turn_credential.unwrap_or_default(),
        };
        server
            .check()
            .map_err(|e| anyhow::anyhow!("--turn: {e} (--turn-user, --turn-credential)"))?;
        Ok(vec![server])
    }
}

/// `huddle sign` flags.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// App id.
    #[arg(long)]
    pub app_id: String,
    /// App key.
    #[arg(long)]
    pub app_key: String,
    /// Room id.
    #[arg(long)]
    pub room: String,
    /// User id.
    #[arg(long)]
    pub user: String,
    /// Validity, e.g. `2h`, `30m` (at most 12h).
    #[arg(long, default_value = "2h", value_parser = humantime::parse_duration)]
    pub expires_in: Duration,
    /// A director signature: the user may set the room's program, remove
    /// users and dismiss the room (the broadcast console).
    #[arg(long)]
    pub director: bool,
}

/// Credentials shared by `bot`.
#[derive(Debug, Args)]
pub struct CredentialArgs {
    /// App id.
    #[arg(long)]
    pub app_id: String,
    /// App key, to sign locally.
    #[arg(long, conflicts_with = "signature")]
    pub app_key: Option<String>,
    /// A ready signature (with --ctime).
    #[arg(long, requires = "ctime")]
    pub signature: Option<String>,
    /// Expiry of --signature, Unix seconds.
    #[arg(long, requires = "signature")]
    pub ctime: Option<u64>,
}

/// `huddle bot` flags.
#[derive(Debug, Args)]
pub struct BotArgs {
    /// Signalling URL.
    #[arg(long, default_value = "ws://127.0.0.1:7880")]
    pub server: String,
    /// Room to join.
    #[arg(long)]
    pub room: String,
    /// User id (with --count N: `<user>-1..<user>-N`).
    #[arg(long)]
    pub user: String,
    /// Publish the test pattern and tone.
    #[arg(long)]
    pub publish: bool,
    /// Subscribe to every stream in the room.
    #[arg(long)]
    pub subscribe: bool,
    /// Bots in this process.
    #[arg(long, default_value_t = 1)]
    pub count: usize,
    /// Stop after this many seconds.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Print JSON lines.
    #[arg(long)]
    pub json: bool,
    /// Video profile (seed 001 Table 3-10), e.g. 360p_2, 480p_1, 720p_1.
    #[arg(long, default_value = "360p_2")]
    pub profile: String,
    /// Audio profile (Table 3-9): low, standard, high.
    #[arg(long, default_value = "standard")]
    pub audio_profile: String,
    /// Tone frequency, Hz.
    #[arg(long, default_value_t = 440.0)]
    pub tone: f32,
    /// Tone amplitude, a fraction of full scale 0..=1 (loudness for top-N audio).
    #[arg(long, default_value_t = 0.5)]
    pub tone_level: f32,
    /// Publish at this frame rate instead of the profile's 15 fps.
    #[arg(long)]
    pub fps: Option<u32>,
    /// Receive-only: count packets, loss and jitter without decoding (load tests).
    #[arg(long)]
    pub no_decode: bool,
    /// Seconds between successive bots' joins (with --count).
    #[arg(long)]
    pub join_interval: Option<f64>,
    /// Write a JSON summary of the run to this file.
    #[arg(long)]
    pub summary: Option<PathBuf>,
    /// Publish the pattern with noise, so video runs at the profile's bitrate.
    #[arg(long)]
    pub noise: bool,
    /// TURN servers for the bots' media links (seed `setTurnServer`).
    #[command(flatten)]
    pub turn: TurnArgs,
    /// Send and receive media only through a --turn relay.
    #[arg(long)]
    pub relay_only: bool,
    /// Seconds without a video frame before a subscribed stream is reported
    /// interrupted (stream state detection); 0 turns it off.
    #[arg(long, default_value_t = 3)]
    pub stream_state_interval: u64,
    /// Print the seed's `rtc-stats` event (every stream's bit rate, frame
    /// rate, RTT, jitter and loss rate) every this many ms (200..=60000);
    /// 0 (the default) leaves it off.
    #[arg(long, default_value_t = 0)]
    pub rtc_stats_ms: u64,
    /// Mix this audio file (WAV, MP3, FLAC, Ogg/Vorbis, AAC in MP4) into the
    /// published audio (seed startAudioMixing).
    #[arg(long, requires = "publish")]
    pub mix_file: Option<PathBuf>,
    /// With --mix-file: replace the tone instead of mixing with it.
    #[arg(long, requires = "mix_file")]
    pub mix_replace: bool,
    /// With --mix-file: play it again and again.
    #[arg(long, requires = "mix_file")]
    pub mix_loop: bool,
    /// Relay the published stream into this other room as well (cross-room
    /// co-hosting, seed 001 ch. 1); repeat for up to 3 rooms. The bot's
    /// credential signs for each.
    #[arg(long, value_name = "ROOM", requires = "publish")]
    pub relay_room: Vec<String>,
    /// Cap what the published stream sends at this many kbit/s (seed
    /// `setNetworkBandwidth`; 100..=51200), below the uplink estimate.
    #[arg(long, value_name = "KBPS")]
    pub max_bandwidth: Option<u32>,
    /// Share a screen or window of an X display too (seed
    /// createStream({screen: true})): `screen`, `screen:N` (a monitor) or
    /// `window:ID` (an X window id, as xwininfo prints it).
    #[cfg(feature = "devices")]
    #[arg(long, value_name = "TARGET")]
    pub screen: Option<String>,
    /// With --screen: the presentation profile (seed Table 3-11): 720p, 1080p.
    #[cfg(feature = "devices")]
    #[arg(long, default_value = "720p", requires = "screen")]
    pub screen_profile: String,
    /// With --screen: the X display to capture (default: $DISPLAY).
    #[cfg(feature = "devices")]
    #[arg(long, requires = "screen")]
    pub display: Option<String>,
    /// Publish in simulcast layers: the --profile plus these smaller
    /// profiles, comma-separated, largest first (at most 2), e.g.
    /// `--layers 180p_1,90p_1`.
    #[arg(long, value_delimiter = ',', value_name = "PROFILES")]
    pub layers: Vec<String>,
    /// Which layer of a layered stream to receive: a resolutionId (the
    /// publisher's profile name, e.g. 180p_1) or `auto` (the server picks).
    /// Default: the largest.
    #[arg(long, value_name = "ID")]
    pub resolution: Option<String>,
    /// Credentials.
    #[command(flatten)]
    pub credentials: CredentialArgs,
}

/// `huddle demo` flags.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Address for the embedded server.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Stop after this many seconds.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Video profile of the publishing bot.
    #[arg(long, default_value = "360p_2")]
    pub profile: String,
    /// Print JSON lines.
    #[arg(long)]
    pub json: bool,
}

/// Parsed `huddle.toml`, besides the apps (which [`AppRegistry`] reads).
/// An unknown key is an error naming it: a misspelt limit must not be
/// silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ServeFile {
    /// `[[apps]]`: read by [`AppRegistry::from_toml_str`], only allowed here.
    #[allow(dead_code)]
    apps: Option<toml::Value>,
    signature_token: Option<String>,
    cors_origins: Vec<String>,
    node_id: Option<String>,
    rtc_ip: Option<IpAddr>,
    public_ip: Option<IpAddr>,
    ice_servers: Vec<IceServer>,
    shutdown_grace_secs: Option<u64>,
    signature_expiry_notice_secs: Option<u64>,
    record_dir: Option<PathBuf>,
    redis: Option<String>,
    public_url: Option<String>,
    cluster_ttl_secs: Option<u64>,
    relay_subscribers: Option<bool>,
    balance_margin: Option<usize>,
    relay_credential_secs: Option<u64>,
    relay_ca: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    limits: LimitsFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct LimitsFile {
    max_rooms: Option<usize>,
    max_users_per_room: Option<usize>,
    requests_per_second: Option<u32>,
    request_burst: Option<u32>,
    idle_timeout_secs: Option<u64>,
    send_timeout_secs: Option<u64>,
    header_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    max_connections_per_ip: Option<usize>,
    resume_window_secs: Option<u64>,
}

/// A validated server configuration, and whether a dev app was generated.
pub struct ServeConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The server config.
    pub server: ServerConfig,
    /// True when no app was configured and a dev app was made up.
    pub dev_app: bool,
}

impl ServeArgs {
    /// Validates the flags and reads the config file.
    pub fn into_config(self) -> anyhow::Result<ServeConfig> {
        let (mut apps, file) = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading --config {}", path.display()))?;
                let file: ServeFile = toml::from_str(&text)
                    .with_context(|| format!("parsing --config {}", path.display()))?;
                let apps = if text.contains("[[apps]]") {
                    AppRegistry::from_toml_str(&text)
                        .with_context(|| format!("reading apps of --config {}", path.display()))?
                } else {
                    AppRegistry::new()
                };
                (apps, file)
            }
            None => (AppRegistry::new(), ServeFile::default()),
        };
        if let (Some(id), Some(key)) = (self.app_id, self.app_key) {
            if !auth::validate_id(&id) {
                bail!("--app-id must match [A-Za-z0-9_-]{{1,64}}");
            }
            if key.is_empty() {
                bail!("--app-key must not be empty");
            }
            apps.insert(id, key);
        }
        let dev_app = apps.is_empty();
        if dev_app {
            apps = AppRegistry::dev();
        }
        let mut server = ServerConfig::new(apps);
        server.signature_token = self.signature_token.or(file.signature_token);
        server.cors_origins = file.cors_origins;
        server.cors_origins.extend(self.cors_origins);
        for origin in &server.cors_origins {
            crate::server::cors::check_origin(origin)?;
        }
        if let Some(node_id) = self.node_id.or(file.node_id) {
            if !crate::server::config::valid_node_id(&node_id) {
                bail!("node id {node_id:?} must match [A-Za-z0-9_.-]{{1,64}}");
            }
            server.node_id = node_id;
        }
        if let Some(ip) = self.rtc_ip.or(file.rtc_ip) {
            server.rtc_ip = ip;
        }
        match (
            self.tls_cert.or(file.tls_cert),
            self.tls_key.or(file.tls_key),
        ) {
            (Some(cert), Some(key)) => {
                server.tls = Some(crate::server::tls::TlsConfig::from_pem_files(&cert, &key)?);
            }
            (None, None) => {}
            _ => bail!("tls_cert and tls_key go together: give both or neither"),
        }
        server.public_ip = self.public_ip.or(file.public_ip);
        if let Some(public) = server.public_ip
            && public.is_ipv4() != server.rtc_ip.is_ipv4()
        {
            bail!(
                "public_ip {public} and rtc_ip {} must be of one IP family (a 1:1 NAT maps one to the other)",
                server.rtc_ip
            );
        }
        server.ice_servers = self.turn.into_servers()?;
        if server.ice_servers.is_empty() {
            for (i, s) in file.ice_servers.iter().enumerate() {
                s.check()
                    .map_err(|e| anyhow::anyhow!("ice_servers[{i}] of --config: {e}"))?;
            }
            server.ice_servers = file.ice_servers;
        }
        let d = Limits::default();
        let l = &file.limits;
        server.limits = Limits {
            max_rooms: self.max_rooms.or(l.max_rooms).unwrap_or(d.max_rooms),
            max_users_per_room: self
                .max_users_per_room
                .or(l.max_users_per_room)
                .unwrap_or(d.max_users_per_room),
            requests_per_second: l.requests_per_second.unwrap_or(d.requests_per_second),
            request_burst: l.request_burst.unwrap_or(d.request_burst),
            idle_timeout: l
                .idle_timeout_secs
                .map(Duration::from_secs)
                .unwrap_or(d.idle_timeout),
            send_timeout: l
                .send_timeout_secs
                .map(Duration::from_secs)
                .unwrap_or(d.send_timeout),
            max_streams_per_user: d.max_streams_per_user,
            header_timeout: l
                .header_timeout_secs
                .map(Duration::from_secs)
                .unwrap_or(d.header_timeout),
            max_connections: l.max_connections.unwrap_or(d.max_connections),
            max_connections_per_ip: l.max_connections_per_ip.unwrap_or(d.max_connections_per_ip),
            resume_window: l
                .resume_window_secs
                .map(Duration::from_secs)
                .unwrap_or(d.resume_window),
        };
        if let Some(secs) = file.shutdown_grace_secs {
            server.shutdown_grace = Duration::from_secs(secs);
        }
        if let Some(secs) = self
            .signature_expiry_notice_secs
            .or(file.signature_expiry_notice_secs)
        {
            server.signature_expiry_notice = Duration::from_secs(secs);
        }
        server.record_dir = self.record_dir.or(file.record_dir);
        server.cluster = cluster_config(
            self.redis.or(file.redis),
            self.public_url.or(file.public_url),
            self.cluster_ttl_secs.or(file.cluster_ttl_secs),
            self.relay_subscribers || file.relay_subscribers.unwrap_or(false),
            self.balance_margin.or(file.balance_margin),
        )?;
        if let Some(secs) = self.relay_credential_secs.or(file.relay_credential_secs) {
            let Some(cluster) = &mut server.cluster else {
                bail!("relay_credential_secs needs redis (a cluster of nodes)");
            };
            cluster.relay_credential = Duration::from_secs(secs);
            cluster.check().map_err(|e| anyhow::anyhow!(e))?;
        }
        if let Some(path) = self.relay_ca.or(file.relay_ca) {
            let Some(cluster) = &mut server.cluster else {
                bail!("relay_ca needs redis (a cluster of nodes)");
            };
            let pem =
                std::fs::read(&path).with_context(|| format!("relay_ca {}", path.display()))?;
            cluster.relay_ca_pem = Some(pem);
            cluster.check().map_err(|e| anyhow::anyhow!(e))?;
        }
        let limits = &server.limits;
        for (name, value) in [
            ("max_rooms", limits.max_rooms),
            ("max_users_per_room", limits.max_users_per_room),
            ("max_connections", limits.max_connections),
            ("max_connections_per_ip", limits.max_connections_per_ip),
        ] {
            if value == 0 {
                bail!("{name} must be at least 1");
            }
        }
        for (name, value) in [
            ("idle_timeout_secs", limits.idle_timeout),
            ("send_timeout_secs", limits.send_timeout),
            ("header_timeout_secs", limits.header_timeout),
        ] {
            if value.is_zero() {
                bail!("{name} must be at least 1");
            }
        }
        Ok(ServeConfig {
            listen: self.listen,
            server,
            dev_app,
        })
    }
}

impl SignArgs {
    /// Validates the flags; returns `(signature, ctime)`.
    pub fn sign(&self) -> anyhow::Result<(String, u64)> {
        for (flag, value) in [
            ("--app-id", &self.app_id),
            ("--room", &self.room),
            ("--user", &self.user),
        ] {
            if !auth::validate_id(value) {
                bail!("{flag} must match [A-Za-z0-9_-]{{1,64}}");
            }
        }
        if self.expires_in.as_secs() > auth::MAX_SIGNATURE_LIFETIME_SECS {
            bail!("--expires-in must be at most 12h");
        }
        let ctime = auth::now_unix() + self.expires_in.as_secs();
        let grant = if self.director {
            auth::Grant::Director
        } else {
            auth::Grant::Member
        };
        let signature = auth::sign_grant(
            &self.app_key,
            &self.app_id,
            &self.room,
            &self.user,
            ctime,
            grant,
        );
        Ok((signature, ctime))
    }
}

/// Parses a profile name or fails naming the flag.
pub fn video_profile(name: &str) -> anyhow::Result<VideoProfile> {
    VideoProfile::by_name(name)
        .copied()
        .with_context(|| format!("unknown video profile {name:?} (e.g. 360p_2, 480p_1, 720p_1)"))
}

#[cfg(feature = "client")]
fn audio_profile(name: &str) -> anyhow::Result<AudioProfile> {
    AudioProfile::by_name(name)
        .copied()
        .with_context(|| format!("unknown audio profile {name:?} (low, standard, high)"))
}

#[cfg(feature = "client")]
impl BotArgs {
    /// Validates the flags.
    pub fn into_config(self) -> anyhow::Result<BotConfig> {
        #[cfg(feature = "devices")]
        let shares = self.screen.is_some();
        #[cfg(not(feature = "devices"))]
        let shares = false;
        if !self.publish && !self.subscribe && !shares {
            bail!("give --publish, --subscribe or both (or --screen)");
        }
        if !auth::validate_id(&self.room) {
            bail!("--room must match [A-Za-z0-9_-]{{1,64}}");
        }
        if !auth::validate_id(&self.user) || self.user.len() > 56 {
            bail!("--user must match [A-Za-z0-9_-]{{1,56}} (room for the -N suffix)");
        }
        if self.count == 0 || self.count > 1000 {
            bail!("--count must be between 1 and 1000");
        }
        let credential = match (
            self.credentials.app_key,
            self.credentials.signature,
            self.credentials.ctime,
        ) {
            (Some(key), None, None) => Credential::AppKey {
                key,
                valid_for: Duration::from_secs(auth::DEFAULT_SIGNATURE_LIFETIME_SECS),
            },
            (None, Some(signature), Some(ctime)) => Credential::Signature { ctime, signature },
            _ => bail!("give --app-key, or --signature with --ctime"),
        };
        let duration = match self.duration {
            Some(s) if !(s.is_finite() && s > 0.0) => {
                bail!("--duration must be a positive number of seconds")
            }
            Some(s) => Some(Duration::from_secs_f64(s)),
            None => None,
        };
        let turn = crate::client::TurnConfig {
            servers: self.turn.into_servers()?,
            relay_only: self.relay_only,
        };
        turn.check()
            .map_err(|e| anyhow::anyhow!("--relay-only/--turn: {e}"))?;
        if self.relay_room.len() >= crate::protocol::MAX_CROSS_ROOMS {
            bail!(
                "--relay-room: at most {} other rooms",
                crate::protocol::MAX_CROSS_ROOMS - 1
            );
        }
        if let Some(bad) = self.relay_room.iter().find(|r| !auth::validate_id(r)) {
            bail!("--relay-room {bad:?} must match [A-Za-z0-9_-]{{1,64}}");
        }
        if !self.relay_room.is_empty() && !matches!(credential, Credential::AppKey { .. }) {
            bail!("--relay-room needs --app-key: a --signature is made for one room");
        }
        #[cfg(feature = "devices")]
        let screen = match self.screen {
            None => None,
            Some(target) => {
                let mut config = crate::media::devices::ScreenCaptureConfig {
                    display: self.display,
                    target: target
                        .parse()
                        .map_err(|e| anyhow::anyhow!("--screen: {e}"))?,
                    profile: crate::media::ScreenProfile::default(),
                };
                config
                    .set_screen_profile(&self.screen_profile)
                    .map_err(|e| anyhow::anyhow!("--screen-profile: {e}"))?;
                Some(config)
            }
        };
        Ok(BotConfig {
            relay_rooms: self.relay_room.into_iter().map(RoomId).collect(),
            #[cfg(feature = "devices")]
            screen,
            turn,
            server_url: self.server,
            app_id: AppId(self.credentials.app_id),
            credential,
            room_id: RoomId(self.room),
            user_id: self.user,
            publish: self.publish,
            subscribe: self.subscribe,
            count: self.count,
            duration,
            json: self.json,
            print: true,
            video_profile: video_profile(&self.profile)?,
            audio_profile: audio_profile(&self.audio_profile)?,
            tone_hz: self.tone,
            tone_level: match self.tone_level {
                l if (0.0..=1.0).contains(&l) => l,
                _ => bail!("--tone-level must be 0..=1"),
            },
            measure: BotMeasure {
                fps: match self.fps {
                    Some(f) if !(1..=60).contains(&f) => bail!("--fps must be 1..=60"),
                    f => f,
                },
                no_decode: self.no_decode,
                join_interval: match self.join_interval {
                    Some(s) if !(s.is_finite() && s >= 0.0) => {
                        bail!("--join-interval must be a non-negative number of seconds")
                    }
                    s => s.map(Duration::from_secs_f64),
                },
                summary_path: self.summary,
                noise: self.noise,
                max_bandwidth_kbps: match self.max_bandwidth {
                    Some(k)
                        if !(crate::client::congestion::MIN_NETWORK_BANDWIDTH_KBPS
                            ..=crate::client::congestion::MAX_NETWORK_BANDWIDTH_KBPS)
                            .contains(&k) =>
                    {
                        bail!("--max-bandwidth must be 100..=51200 kbit/s")
                    }
                    k => k,
                },
                lower_layers: self
                    .layers
                    .iter()
                    .map(|name| video_profile(name))
                    .collect::<anyhow::Result<_>>()?,
                resolution: match self.resolution.as_deref() {
                    Some(id) => {
                        if id != crate::protocol::layers::AUTO_RESOLUTION {
                            crate::protocol::layers::check_resolution_id(id)
                                .map_err(|e| anyhow::anyhow!("--resolution: {e}"))?;
                        }
                        Some(crate::protocol::LayerChoice::from_wire(Some(id)))
                    }
                    None => None,
                },
            },
            stream_state_interval: match self.stream_state_interval {
                0 => None,
                secs => {
                    let interval = Duration::from_secs(secs);
                    if !crate::client::DETECTION_INTERVAL_RANGE.contains(&interval) {
                        bail!("--stream-state-interval must be 0 (off) or 1..=60 seconds");
                    }
                    Some(interval)
                }
            },
            rtc_stats_interval: match self.rtc_stats_ms {
                0 => None,
                ms => Some(
                    crate::client::rtc_stats::check_interval(Duration::from_millis(ms))
                        .map_err(|e| anyhow::anyhow!("--rtc-stats-ms: {e}"))?,
                ),
            },
            mix: self.mix_file.map(|path| crate::client::AudioMixOption {
                replace: self.mix_replace,
                loop_forever: self.mix_loop,
                ..crate::client::AudioMixOption::new(path)
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command, ServeFile, cluster_config};
    use std::time::Duration;

    fn parse(args: &[&str]) -> Command {
        Cli::try_parse_from(args)
            .expect("flags parse")
            .command
            .expect("a subcommand")
    }

    #[test]
    fn serve_joins_a_cluster_with_redis_from_flags_or_file() {
        use crate::server::cluster::keys::Placement;
        let Command::Serve(args) = parse(&["huddle", "serve"]) else {
            panic!("not serve");
        };
        assert_eq!(args.into_config().expect("valid").server.cluster, None);
        let Command::Serve(args) = parse(&[
            "huddle",
            "serve",
            "--redis",
            "redis://127.0.0.1:6379",
            "--node-id",
            "n1",
            "--public-url",
            "ws://10.0.0.1:7880",
            "--cluster-ttl-secs",
            "4",
        ]) else {
            panic!("not serve");
        };
        let config = args.into_config().expect("valid").server;
        let cluster = config.cluster.expect("a cluster");
        assert_eq!(config.node_id, "n1");
        assert_eq!(cluster.redis_url, "redis://127.0.0.1:6379");
        assert_eq!(cluster.public_url.as_deref(), Some("ws://10.0.0.1:7880"));
        assert_eq!(cluster.ttl, Duration::from_secs(4));

        assert_eq!(cluster.placement, Placement::Here);

        let file: ServeFile = toml::from_str(
            "redis = \"redis://r:6379\"\npublic_url = \"wss://a.example\"\ncluster_ttl_secs = 6\nrelay_subscribers = true\nbalance_margin = 3\n",
        )
        .expect("a valid file");
        let cluster = cluster_config(
            file.redis,
            file.public_url,
            file.cluster_ttl_secs,
            file.relay_subscribers.unwrap_or(false),
            file.balance_margin,
        )
        .expect("valid")
        .expect("a cluster");
        assert_eq!(cluster.public_url.as_deref(), Some("wss://a.example"));
        assert!(cluster.relay_subscribers);
        assert_eq!(cluster.placement, Placement::LeastUsers { margin: 3 });
        // Bad values are refused, and the cluster keys need redis.
        assert!(cluster_config(Some("http://r".into()), None, None, false, None).is_err());
        assert!(
            cluster_config(
                Some("redis://r".into()),
                Some("http://a".into()),
                None,
                false,
                None
            )
            .is_err()
        );
        assert!(cluster_config(None, None, Some(4), false, None).is_err());
        assert!(cluster_config(None, None, None, true, None).is_err());
        assert!(cluster_config(None, None, None, false, Some(0)).is_err());
        let Err(negative) = Cli::try_parse_from([
            "huddle",
            "serve",
            "--redis",
            "redis://r",
            "--balance-margin=-1",
        ]) else {
            panic!("a negative margin parsed");
        };
        assert!(
            negative.to_string().contains("--balance-margin"),
            "{negative}"
        );
    }

    #[test]
    fn serve_takes_a_relay_credential_lifetime_within_bounds() {
        let serve = |extra: &[&str]| {
            let mut args = vec!["huddle", "serve", "--redis", "redis://127.0.0.1:6379"];
            args.extend_from_slice(extra);
            let Command::Serve(args) = parse(&args) else {
                panic!("not serve");
            };
            args.into_config()
        };
        let cluster = |extra: &[&str]| {
            serve(extra)
                .expect("valid")
                .server
                .cluster
                .expect("a cluster")
        };
        assert_eq!(
            cluster(&[]).relay_credential,
            Duration::from_secs(11 * 3600)
        );
        assert_eq!(
            cluster(&["--relay-subscribers", "--relay-credential-secs", "60"]).relay_credential,
            Duration::from_secs(60)
        );
        // Bad input: under 2 s, over the 12 h a server accepts, or no Redis.
        for bad in ["1", "43201"] {
            let refused = serve(&["--relay-credential-secs", bad])
                .err()
                .expect("refused");
            assert!(
                refused.to_string().contains("relay credential"),
                "{refused}"
            );
        }
        let Command::Serve(args) = parse(&["huddle", "serve", "--relay-credential-secs", "60"])
        else {
            panic!("not serve");
        };
        assert!(args.into_config().is_err());
        // A relay CA file must hold a certificate.
        let dir = std::env::temp_dir().join(format!("huddle-relay2-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let bad = dir.join("bad.pem");
        std::fs::write(&bad, "not a certificate\n").expect("write");
        let refused = serve(&["--relay-ca", bad.to_str().expect("utf-8")])
            .err()
            .expect("refused");
        assert!(refused.to_string().contains("relay CA"), "{refused}");
        assert!(serve(&["--relay-ca", "/nonexistent/ca.pem"]).is_err());
        let good = dir.join("good.pem");
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("a certificate");
        std::fs::write(&good, cert.cert.pem()).expect("write");
        assert!(
            cluster(&["--relay-ca", good.to_str().expect("utf-8")])
                .relay_ca_pem
                .is_some()
        );
        std::fs::remove_dir_all(&dir).ok(); // best effort: a temp dir
    }

    #[test]
    fn serve_takes_turn_servers_and_a_public_ip_from_flags_or_file() {
        let Command::Serve(args) = parse(&[
            "huddle",
            "serve",
            "--public-ip",
            "203.0.113.7",
            "--turn",
            "turn:10.0.0.1:3478?transport=udp",
            "--turn-user",
            "u",
            "--turn-credential",
            "p",
        ]) else {
            panic!("not serve");
        };
        let config = args.into_config().expect("valid").server;
        assert_eq!(config.public_ip, Some([203, 0, 113, 7].into()));
        assert_eq!(config.ice_servers.len(), 1);
        assert_eq!(config.ice_servers[0].username, "u");

        let file: ServeFile = toml::from_str(
            "public_ip = \"198.51.100.1\"\n[[ice_servers]]\n\
             urls = [\"turn:10.0.0.2:3478\"]\nusername = \"a\"\ncredential = \"b\"\n",
        )
        .expect("a valid file");
        assert_eq!(file.public_ip, Some([198, 51, 100, 1].into()));
        assert_eq!(file.ice_servers[0].urls, ["turn:10.0.0.2:3478"]);

        // A public address of the other family cannot stand for rtc_ip.
        let Command::Serve(args) = parse(&["huddle", "serve", "--public-ip", "2001:db8::1"]) else {
            panic!("not serve");
        };
        let e = args.into_config().err().expect("v6 for v4");
        assert!(e.to_string().contains("one IP family"), "{e}");

        // A TURN URL without credentials is refused, naming the flag.
        let Command::Serve(args) = parse(&["huddle", "serve", "--turn", "turn:10.0.0.1"]) else {
            panic!("not serve");
        };
        let e = args.into_config().err().expect("no credentials");
        assert!(e.to_string().contains("--turn"), "{e}");
    }

    #[cfg(feature = "client")]
    #[test]
    fn bot_takes_turn_servers_and_relay_only() {
        let bot = |extra: &[&str]| {
            let mut args = vec![
                "huddle",
                "bot",
                "--room",
                "r",
                "--user",
                "u",
                "--publish",
                "--app-id",
                "a",
                "--app-key",
                "k",
            ];
            args.extend_from_slice(extra);
            let Command::Bot(args) = parse(&args) else {
                panic!("not bot");
            };
            args.into_config()
        };
        let config = bot(&[
            "--turn",
            "turn:127.0.0.1:3478?transport=udp",
            "--turn-user",
            "u",
            "--turn-credential",
            "p",
            "--relay-only",
        ])
        .expect("valid");
        assert!(config.turn.relay_only);
        assert_eq!(config.turn.servers[0].credential, "p");
        assert!(bot(&[]).expect("valid").turn == Default::default());
        let Err(e) = bot(&[
            "--turn",
            "turns:127.0.0.1:5349",
            "--turn-user",
            "u",
            "--turn-credential",
            "p",
        ]) else {
            panic!("turns: is refused");
        };
        assert!(e.to_string().contains("turns:"), "{e}");
    }

    #[cfg(feature = "app")]
    #[test]
    fn the_kiosk_takes_turn_servers_and_relay_only() {
        let cli = Cli::try_parse_from([
            "huddle",
            "--kiosk",
            "--server",
            "wss://rtc.example.org/huddle",
            "--room",
            "r",
            "--user",
            "u",
            "--app-id",
            "a",
            "--app-key",
            "k",
            "--turn",
            "turn:10.0.0.1:3478?transport=udp",
            "--turn-user",
            "u",
            "--turn-credential",
            "p",
            "--relay-only",
        ])
        .expect("flags parse");
        let options = cli.app.into_options().expect("valid");
        assert!(options.turn.relay_only);
        assert_eq!(
            options.turn.servers[0].urls,
            ["turn:10.0.0.1:3478?transport=udp"]
        );
    }

    #[cfg(feature = "app")]
    #[test]
    fn the_console_is_a_desktop_mode_and_not_a_kiosk() {
        let cli = Cli::try_parse_from(["huddle", "--console"]).expect("flags parse");
        assert!(cli.app.any());
        let options = cli.app.into_options().expect("valid");
        assert!(options.console);
        assert!(options.embedded_server, "the demo room by default");
        assert!(Cli::try_parse_from(["huddle", "--console", "--kiosk"]).is_err());
    }

    #[test]
    fn sign_makes_director_signatures_on_request() {
        let sign = |extra: &[&str]| {
            let mut args = vec![
                "huddle",
                "sign",
                "--app-id",
                "a",
                "--app-key",
                "k",
                "--room",
                "r",
                "--user",
                "u",
            ];
            args.extend_from_slice(extra);
            let Command::Sign(args) = parse(&args) else {
                panic!("sign")
            };
            let (signature, ctime) = args.sign().expect("signs");
            let mut apps = crate::auth::AppRegistry::new();
            apps.insert("a", "k");
            crate::auth::verify_grant(
                &apps,
                "a",
                "r",
                "u",
                ctime,
                &signature,
                crate::auth::now_unix(),
            )
            .expect("genuine")
        };
        assert_eq!(sign(&[]), crate::auth::Grant::Member);
        assert_eq!(sign(&["--director"]), crate::auth::Grant::Director);
    }

    #[test]
    fn recording_takes_a_directory_and_record_checks_its_flags() {
        let Command::Serve(args) = parse(&["huddle", "serve", "--record-dir", "/tmp/rec"]) else {
            panic!("serve");
        };
        let config = args.into_config().expect("config");
        assert_eq!(
            config.server.record_dir.as_deref(),
            Some(std::path::Path::new("/tmp/rec"))
        );
        let file: ServeFile = toml::from_str("record_dir = \"/srv/rec\"\n").expect("file");
        assert_eq!(
            file.record_dir.as_deref(),
            Some(std::path::Path::new("/srv/rec"))
        );
        let base = [
            "huddle",
            "record",
            "--room",
            "r",
            "--out",
            "d",
            "--app-id",
            "a",
            "--app-key",
            "k",
        ];
        let Command::Record(args) = parse(&base) else {
            panic!("record");
        };
        let config = args.into_config().expect("record config");
        assert_eq!(config.out_dir, std::path::PathBuf::from("d"));
        assert_eq!(config.duration, None);
        let with = |room: &str, user: &str, duration: &str| {
            let args = [
                "huddle",
                "record",
                "--room",
                room,
                "--user",
                user,
                "--duration",
                duration,
                "--out",
                "d",
                "--app-id",
                "a",
                "--app-key",
                "k",
            ];
            let Command::Record(args) = parse(&args) else {
                panic!("record");
            };
            args.into_config()
        };
        assert!(with("r", "u", "1.5").is_ok());
        for (room, user, duration) in [("r", "u", "0"), ("a b", "u", "1"), ("r", "x/y", "1")] {
            assert!(
                with(room, user, duration).is_err(),
                "{room} {user} {duration}"
            );
        }
    }

    #[test]
    fn the_config_file_refuses_keys_it_does_not_know() {
        let good = "signature_token = \"t\"\nsignature_expiry_notice_secs = 30\n\
                    [[apps]]\nid = \"a\"\nkey = \"k\"\n\
                    [limits]\nmax_connections_per_ip = 10\n";
        let file: ServeFile = toml::from_str(good).expect("a valid file");
        assert_eq!(file.limits.max_connections_per_ip, Some(10));
        assert_eq!(file.signature_expiry_notice_secs, Some(30));
        let typo = "[limits]\nmax_conections_per_ip = 10\n";
        let e = toml::from_str::<ServeFile>(typo).expect_err("a misspelt limit");
        assert!(e.to_string().contains("max_conections_per_ip"), "{e}");
        let stray = "signature_tokn = \"t\"\n";
        let e = toml::from_str::<ServeFile>(stray).expect_err("a misspelt key");
        assert!(e.to_string().contains("signature_tokn"), "{e}");
    }
}

#[cfg(test)]
mod cors_tests {
    use super::ServeArgs;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn config(args: &[&str]) -> anyhow::Result<super::ServeConfig> {
        let mut argv = vec!["huddle"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)?.serve.into_config()
    }

    #[test]
    fn cors_origins_come_from_flags_and_file_and_are_checked() {
        let file = std::env::temp_dir().join(format!(
            "huddle-cors-{}-{}.toml",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::write(&file, "cors_origins = [\"https://a.example\"]\n").expect("write");
        let c = config(&[
            "--config",
            file.to_str().expect("utf-8 path"),
            "--cors-origin",
            "http://127.0.0.1:8080",
        ])
        .expect("valid origins");
        std::fs::remove_file(&file).ok();
        assert_eq!(
            c.server.cors_origins,
            ["https://a.example", "http://127.0.0.1:8080"]
        );
        let e = config(&["--cors-origin", "https://a.example/app"])
            .err()
            .expect("a path is refused");
        assert!(e.to_string().contains("https://a.example/app"), "{e}");
    }
}

#[cfg(test)]
mod tls_tests {
    use super::ServeArgs;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn config(args: &[&str]) -> anyhow::Result<super::ServeConfig> {
        let mut argv = vec!["huddle"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)?.serve.into_config()
    }

    #[test]
    fn a_certificate_needs_its_key_and_files_that_read() {
        assert!(config(&[]).expect("plain").server.tls.is_none());
        let e = config(&["--tls-cert", "c.pem"]).err().expect("no key");
        assert!(e.to_string().contains("--tls-key"), "{e}");
        let e = config(&[
            "--tls-cert",
            "/nonexistent/c.pem",
            "--tls-key",
            "/nonexistent/k.pem",
        ])
        .err()
        .expect("missing files");
        assert!(e.to_string().contains("/nonexistent/c.pem"), "{e}");
        // From the config file, half a pair is refused too.
        let file = std::env::temp_dir().join(format!(
            "huddle-tls-{}-{}.toml",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::write(&file, "tls_cert = \"c.pem\"\n").expect("write");
        let e = config(&["--config", file.to_str().expect("utf-8 path")])
            .err()
            .expect("half a pair");
        std::fs::remove_file(&file).ok();
        assert!(e.to_string().contains("tls_key"), "{e}");
    }
}
