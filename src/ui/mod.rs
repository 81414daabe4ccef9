//! The desktop app (feature `app`): eframe + wgpu on top of the client SDK.
//!
//! ```text
//!  main ─▶ ui::run ─▶ eframe (UI thread)          tokio runtime (owned by main)
//!                      HuddleApp ── spawn ──────▶ SDK calls, embedded server, bot
//!                        ▲  try_recv each pass      │
//!                        └── RoomEvent / SessionReply (bounded) ◀┘
//!  VideoSlot (decode thread) ──▶ render::YuvCallback (prepare: upload, paint: draw)
//! ```
//!
//! Depends on `client`, `media`, `server` (embedded) and `bot` (demo
//! publisher); nothing depends on `ui`. The UI thread never blocks: SDK calls
//! are spawned onto the runtime and answer over channels drained each pass.
//! Widgets in [`widgets`] take plain data only.

mod app;
mod audio_tap;
mod console;
pub mod debugger;
mod device_preview;
mod devices;
mod embedded;
mod error_text;
mod fps;
mod hidden_exit;
mod hotplug;
mod launch;
mod lobby;
mod mix_playback;
mod music_menu;
mod net_sampler;
mod participants;
mod preview_source;
mod remote_tile;
pub mod render;
mod room_view;
mod session;
mod settings;
mod shortcuts;
mod signature;
mod speaking;
mod stage;
mod toolbar;
mod top_n;
pub mod widgets;

#[cfg(test)]
mod failed_join_tests;
#[cfg(test)]
mod layout_tests;
#[cfg(test)]
mod room_features_tests;
#[cfg(test)]
mod snapshot_tests;

pub use app::HuddleApp;
pub use embedded::{DEMO_ROOM, EmbeddedServer};
pub use launch::{AppMode, AppOptions, DebugOptions, JoinTarget, ServerChoice, SignatureSource};
pub use settings::Settings;

/// Why the app could not run.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// The embedded server could not bind.
    #[error("embedded server: {0}")]
    Embedded(#[from] std::io::Error),
    /// eframe could not open the window or the GPU.
    #[error("window: {0}")]
    Window(String),
    /// No X11 or Wayland display to open a window on.
    #[error(
        "no display (DISPLAY / WAYLAND_DISPLAY unset): run `huddle demo` for the headless \
         demo, `huddle serve` for a server, or start the app inside a desktop session \
         (or under `xvfb-run`)"
    )]
    NoDisplay,
    /// `huddle inspect FILE`: the file is not a session the debugger saved.
    #[error("{0}")]
    DebugFile(#[from] debugger::file::DebugFileError),
}

/// [`UiError::NoDisplay`] when there is no display to open a window on.
pub fn require_display() -> Result<(), UiError> {
    let has_display = ["DISPLAY", "WAYLAND_DISPLAY", "WAYLAND_SOCKET"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
    if has_display {
        Ok(())
    } else {
        Err(UiError::NoDisplay)
    }
}

/// Opens the window and runs until it closes. Call on the main thread, outside
/// the runtime (`rt` keeps running the SDK meanwhile).
pub fn run(rt: &tokio::runtime::Runtime, options: AppOptions) -> Result<(), UiError> {
    let has_display = ["DISPLAY", "WAYLAND_DISPLAY", "WAYLAND_SOCKET"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
    if !has_display {
        return Err(UiError::NoDisplay);
    }
    let handle = rt.handle().clone();
    // The demo bot starts when the app first joins the embedded demo room
    // (`HuddleApp::start`), so joining a remote server costs no encoder.
    let embedded = if options.embedded_server {
        Some(EmbeddedServer::start(&handle)?)
    } else {
        None
    };
    let kiosk = matches!(options.mode, AppMode::Kiosk(_));
    let size = options.window_size.unwrap_or([1280.0, 720.0]);
    let mut viewport = egui::ViewportBuilder::default()
        .with_title("huddle")
        .with_app_id("huddle")
        .with_inner_size(size);
    if kiosk {
        viewport = viewport
            .with_fullscreen(true)
            .with_decorations(false)
            .with_position([0.0, 0.0]);
    }
    let native = eframe::NativeOptions {
        viewport,
        renderer: eframe::Renderer::Wgpu,
        ..Default::default()
    };
    eframe::run_native(
        "huddle",
        native,
        Box::new(move |cc| Ok(Box::new(HuddleApp::new(cc, handle, options, embedded)))),
    )
    .map_err(|e| UiError::Window(e.to_string()))
}
