//! What the app was asked to do at start, and where a join goes.

use crate::protocol::Role;

/// How the app starts.
#[derive(Debug, Clone)]
pub enum AppMode {
    /// Desktop: join `target` straight away (no args: the embedded server's
    /// room `demo`), lobby after leaving.
    Desktop {
        /// The first room to join; `None` opens the lobby.
        target: Option<JoinTarget>,
    },
    /// Fullscreen, no lobby, subscribe-only, rejoins forever.
    Kiosk(JoinTarget),
}

/// Options from the command line.
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// Desktop or kiosk.
    pub mode: AppMode,
    /// Start the embedded server and its publishing bot (for `local` targets).
    pub embedded_server: bool,
    /// Show the fps/CPU overlay.
    pub debug_overlay: bool,
    /// Window size override (kiosk is fullscreen regardless).
    pub window_size: Option<[f32; 2]>,
    /// TURN servers and relay policy of every join (`--turn`, `--relay-only`).
    pub turn: crate::client::TurnConfig,
    /// The broadcast console (`--console`): the room view becomes the
    /// console and joins sign as a director (issue 14 §2).
    pub console: bool,
    /// The stream debugger, open from the first join (`--debug`).
    pub debug: DebugOptions,
}

/// The stream debugger at start (`--debug`, `--record-debug FILE`).
#[derive(Debug, Clone, Default)]
pub struct DebugOptions {
    /// Open the debugger panel in every room.
    pub open: bool,
    /// Record every session's debugger data to this file (rewritten every
    /// few seconds and when the session ends); implies sampling.
    pub record_to: Option<std::path::PathBuf>,
    /// X-AUTH-TOKEN for the debugger's Server tab (`--server-token`); the
    /// tab's field can change it.
    pub server_token: String,
}

/// Which server to join.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ServerChoice {
    /// The embedded server of this process (its dev app signs locally).
    Local,
    /// A signalling URL, `ws://host:port`.
    Url(String),
}

/// How the join is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureSource {
    /// Sign locally with the app key (dev and trusted setups).
    AppKey(String),
    /// `GET {url}?appid=&roomid=&userid=` with `X-AUTH-TOKEN: token`.
    Url {
        /// The signature endpoint, `http://host:port/signature`.
        url: String,
        /// The X-AUTH-TOKEN value (may be empty).
        token: String,
    },
}

/// A room to join, as the user gave it (the credential is resolved on join).
#[derive(Debug, Clone)]
pub struct JoinTarget {
    /// Server.
    pub server: ServerChoice,
    /// App id (ignored for [`ServerChoice::Local`]).
    pub app_id: String,
    /// Room id.
    pub room: String,
    /// User id.
    pub user_id: String,
    /// Display name.
    pub user_name: String,
    /// Joiner publishes; player only watches.
    pub role: Role,
    /// Signature source (ignored for [`ServerChoice::Local`]).
    pub signature: SignatureSource,
}
