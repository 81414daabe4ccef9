//! The in-process room server (and its demo bot) that `huddle` with no
//! arguments joins, so the app shows something with no setup.

use std::time::Duration;

use tokio::sync::oneshot;

use crate::auth::AppRegistry;
use crate::bot::{self, BotConfig};
use crate::client::Credential;
use crate::protocol::{AppId, RoomId};
use crate::server::{Server, ServerConfig};

/// Room the embedded demo uses.
pub const DEMO_ROOM: &str = "demo";

/// A running embedded server; stops (with its bot) when dropped.
pub struct EmbeddedServer {
    /// `ws://127.0.0.1:port`.
    pub url: String,
    /// The generated dev app.
    pub app_id: String,
    /// Its key (never leaves the process).
    pub app_key: String,
    stop: Option<oneshot::Sender<()>>,
    bot_stop: Option<oneshot::Sender<()>>,
}

impl EmbeddedServer {
    /// Binds `127.0.0.1:0` and serves on `rt`. Startup only: blocks on the bind.
    pub fn start(rt: &tokio::runtime::Handle) -> std::io::Result<Self> {
        Self::start_with_token(rt, None)
    }

    /// As [`Self::start`], with `GET /signature` and `GET /rooms` guarded by
    /// `token` (X-AUTH-TOKEN) when given.
    pub fn start_with_token(
        rt: &tokio::runtime::Handle,
        token: Option<String>,
    ) -> std::io::Result<Self> {
        let mut config = ServerConfig::new(AppRegistry::dev());
        config.signature_token = token;
        let (app_id, app_key) = config
            .apps
            .iter()
            .next()
            .map(|(id, key)| (id.to_owned(), key.to_owned()))
            .ok_or_else(|| std::io::Error::other("dev app missing"))?;
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let server = Server::new(config);
        rt.spawn(async move {
            let shutdown = async {
                stopped.await.ok(); // dropped sender also means stop
            };
            if let Err(e) = server.run(listener, shutdown).await {
                tracing::error!("embedded server stopped: {e}");
            }
        });
        tracing::info!("embedded server on ws://{addr}, app {app_id}");
        Ok(Self {
            url: format!("ws://{addr}"),
            app_id,
            app_key,
            stop: Some(stop),
            bot_stop: None,
        })
    }

    /// A credential for the dev app.
    pub fn credential(&self) -> Credential {
        Credential::AppKey {
            key: self.app_key.clone(),
            valid_for: Duration::from_secs(2 * 3600),
        }
    }

    /// Starts the publishing bot (`demo-bot`, 360p_2, a 330 Hz tone) in room
    /// [`DEMO_ROOM`], so there is a remote tile to see; once per process.
    pub fn ensure_bot(&mut self, rt: &tokio::runtime::Handle) {
        if self.bot_stop.is_some() {
            return;
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let config = BotConfig {
            tone_hz: 330.0,
            ..BotConfig::publisher(
                self.url.clone(),
                AppId(self.app_id.clone()),
                self.credential(),
                RoomId(DEMO_ROOM.into()),
                "demo-bot",
            )
        };
        rt.spawn(async move {
            let stop = async {
                stopped.await.ok(); // dropped sender also means stop
            };
            if let Err(e) = bot::run(config, stop).await {
                tracing::warn!("demo bot stopped: {e}");
            }
        });
        self.bot_stop = Some(stop);
    }
}

impl Drop for EmbeddedServer {
    fn drop(&mut self) {
        // The receivers may be gone already (task ended); nothing to do then.
        if let Some(tx) = self.bot_stop.take() {
            tx.send(()).ok();
        }
        if let Some(tx) = self.stop.take() {
            tx.send(()).ok();
        }
    }
}
