//! The eframe app: lobby ⇄ room, kiosk restarts, toasts and the debug overlay.
//!
//! A dropped connection is the SDK's to recover (`RECONNECTING`, then back);
//! a kiosk only starts over when its session ended for good: its first join
//! failed, or it was removed.
//!
//! Per frame: `logic` drains the session's channels (it also runs while the
//! window is hidden), `ui` draws and collects actions, which are applied after
//! the pass. Nothing here blocks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

use crate::client::{Backoff, Credential, JoinConfig, LocalStream, VideoSlot};
use crate::media::{AudioProfile, SwitchableAudio, SwitchableVideo, VideoProfile};
use crate::protocol::{AppId, Role, RoomId, UserId};

use super::device_preview::{DevicePreview, LevelMeter, MeteredAudio};
use super::devices::DeviceCatalog;
use super::embedded::{DEMO_ROOM, EmbeddedServer};
use super::fps::FpsCounter;
use super::hidden_exit::HiddenExit;
use super::launch::{AppMode, AppOptions, JoinTarget, ServerChoice, SignatureSource};
use super::lobby::Lobby;
use super::room_view::{self, RoomAction, RoomViewOptions};
use super::session::{
    CredentialSource, DeviceKind, LocalMedia, Phase, RoomSession, VIDEO_REPAINT_DELAY,
};
use super::settings::Settings;
use super::widgets::Toasts;

/// While in a room, look at the SDK's event channel at least this often even
/// when no video arrives (the SDK does not wake the UI for events).
const EVENT_POLL: Duration = Duration::from_millis(250);
/// How long signatures made from an app key stay valid.
const SIGNATURE_LIFETIME: Duration = Duration::from_secs(2 * 3600);
/// Profile of the local camera.
const LOCAL_PROFILE: &str = "360p_2";

/// The profile the local camera is opened and published at.
fn local_video_profile() -> VideoProfile {
    VideoProfile::by_name(LOCAL_PROFILE)
        .copied()
        .unwrap_or(crate::media::VIDEO_PROFILES[0])
}

enum Screen {
    Lobby(Box<Lobby>),
    Room(Box<RoomSession>),
}

/// How often a kiosk re-checks its connection when nothing else wakes it.
const KIOSK_WATCHDOG: std::time::Duration = std::time::Duration::from_millis(500);

/// How long a kiosk's SDK keeps reconnecting after a drop: a kiosk never
/// gives up on its room.
const KIOSK_RECONNECT_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// A kiosk whose session ended for good (its first join failed, or it was
/// removed) starts it again.
enum KioskRestart {
    /// The session is up, or joining.
    Watching,
    /// Starting again at this time.
    At(Instant),
}

/// The app.
pub struct HuddleApp {
    rt: Handle,
    options: AppOptions,
    embedded: Option<EmbeddedServer>,
    devices: DeviceCatalog,
    hotplug: super::hotplug::Hotplug,
    settings: Settings,
    screen: Screen,
    last_target: Option<JoinTarget>,
    restart: KioskRestart,
    /// Delays between kiosk restarts: the SDK's reconnection backoff.
    restart_backoff: Backoff,
    toasts: Toasts,
    view: RoomViewOptions,
    fps: FpsCounter,
    hidden_exit: HiddenExit,
    debug_overlay: bool,
    /// The lobby's camera picture and microphone level (joiner role only).
    preview: Option<DevicePreview>,
    /// App key and X-AUTH-TOKEN typed in the lobby: kept while the app runs
    /// (a failed join or Leave does not make the user type them again),
    /// never saved.
    secrets: (String, String),
    /// Keyboard help and About.
    overlays: super::shortcuts::Overlays,
    /// The window title last set.
    title: String,
    /// The stream debugger of the room we are in (`debugger/`); kept while
    /// it is open or records.
    debugger: Option<super::debugger::Debugger>,
    /// The debugger panel is shown (`--debug`, F9, More ▸ Stream debugger).
    debugger_open: bool,
}

impl HuddleApp {
    /// Builds the app inside eframe's creation hook.
    pub fn new(
        cc: &eframe::CreationContext<'_>,
        rt: Handle,
        options: AppOptions,
        embedded: Option<EmbeddedServer>,
    ) -> Self {
        if !super::render::install(cc.wgpu_render_state.as_ref()) {
            tracing::warn!("no wgpu render state: video tiles stay blank");
        }
        let devices = DeviceCatalog::probe();
        let settings = Settings::load();
        let kiosk = matches!(options.mode, AppMode::Kiosk(_));
        let mut view = RoomViewOptions::new(
            // Kiosk ignores the desktop settings file: seed default `contain`.
            if kiosk {
                super::render::ObjectFit::Contain
            } else {
                settings.object_fit
            },
            settings.mirror_local,
            kiosk,
        );
        view.synthetic_note = devices.synthetic_note();
        if options.console {
            view.console = Some(super::console::ConsoleState::default());
        }
        view.push_to_talk = settings.push_to_talk;
        if !kiosk {
            view.stage.layout = settings.layout;
            view.stage.self_thumbnail = settings.self_thumbnail;
            view.participants_open = settings.participants_open;
        }
        let first = match &options.mode {
            AppMode::Desktop { target } => target.clone(),
            AppMode::Kiosk(target) => Some(target.clone()),
        };
        let mut app = Self {
            rt,
            debug_overlay: options.debug_overlay,
            options,
            embedded,
            devices,
            hotplug: super::hotplug::Hotplug::start(),
            screen: Screen::Lobby(Box::new(Lobby::new(settings.clone()))),
            settings,
            last_target: None,
            restart: KioskRestart::Watching,
            restart_backoff: Backoff::default(),
            toasts: Toasts::default(),
            view,
            fps: FpsCounter::default(),
            hidden_exit: HiddenExit::default(),
            preview: None,
            secrets: (String::new(), String::new()),
            overlays: Default::default(),
            title: String::new(),
            debugger: None,
            debugger_open: false,
        };
        app.debugger_open = app.options.debug.open;
        if let Some(target) = first {
            app.start(&cc.egui_ctx, target);
        }
        app
    }

    fn is_kiosk(&self) -> bool {
        matches!(self.options.mode, AppMode::Kiosk(_))
    }

    /// Starts joining `target` (never blocks: the join runs on the runtime).
    fn start(&mut self, ctx: &egui::Context, mut target: JoinTarget) {
        // No --name: the desktop uses the name remembered from the lobby, so
        // the self tile shows a name, not a user id (issue 16 §6).
        if target.user_name.is_empty() && !self.is_kiosk() {
            target.user_name = self.settings.user_name.clone();
        }
        let (server_url, app_id, credential) = match &target.server {
            ServerChoice::Local => match &mut self.embedded {
                Some(e) => {
                    if target.room == DEMO_ROOM {
                        e.ensure_bot(&self.rt);
                    }
                    (
                        e.url.clone(),
                        e.app_id.clone(),
                        CredentialSource::Ready(e.credential()),
                    )
                }
                None => {
                    self.toasts.push(
                        "This app runs without its built-in server — give a ws:// address.".into(),
                    );
                    return;
                }
            },
            ServerChoice::Url(url) => (url.clone(), target.app_id.clone(), credential_of(&target)),
        };
        let credential = if self.options.console {
            super::console::director_credential(credential)
        } else {
            credential
        };
        let config = JoinConfig {
            server_url,
            app_id: AppId(app_id),
            room_id: RoomId(target.room.clone()),
            user_id: UserId(target.user_id.clone()),
            user_name: target.user_name.clone(),
            role: target.role,
            // Replaced by the session once resolved.
            credential: Credential::Signature {
                ctime: 0,
                signature: String::new(),
            },
            decode: true,
            reconnect_window: if self.is_kiosk() {
                KIOSK_RECONNECT_WINDOW
            } else {
                crate::client::DEFAULT_RECONNECT_WINDOW
            },
        };
        let publish = (target.role == Role::Joiner).then(|| self.local_media());
        self.preview = None;
        let mut session = RoomSession::join(
            &self.rt,
            ctx,
            config,
            credential,
            publish,
            self.devices.clone(),
            self.settings.speaker.clone(),
            self.options.turn.clone(),
        );
        if self.is_kiosk() {
            // A kiosk receives only what is on air (`console::reception`).
            session.set_reception(super::console::reception::Reception::OnAir);
        }
        // Always on (bounded): a debugger opened later still shows every link's SDP.
        session.client().signal_log().set_enabled(true);
        self.debugger = None; // the previous room's (writes its record file)
        self.screen = Screen::Room(Box::new(session));
        let room = target.room.clone();
        // Before the debugger: its Server tab reads the target's server.
        self.last_target = Some(target);
        if self.debugger_open || self.options.debug.record_to.is_some() {
            self.debugger = self.start_debugger(ctx, &room);
        }
    }

    /// A debugger following the room we are in.
    fn start_debugger(&self, ctx: &egui::Context, room: &str) -> Option<super::debugger::Debugger> {
        let Screen::Room(session) = &self.screen else {
            return None;
        };
        let wake = ctx.clone();
        let mut debugger = super::debugger::Debugger::live(
            &self.rt,
            session.client(),
            room.to_owned(),
            self.options.debug.record_to.clone(),
            move || wake.request_repaint(),
        );
        let url = match self.last_target.as_ref().map(|t| &t.server) {
            Some(ServerChoice::Url(url)) => Some(url.clone()),
            Some(ServerChoice::Local) => self.embedded.as_ref().map(|e| e.url.clone()),
            None => None,
        };
        if let Some(url) = url {
            let ctx = ctx.clone();
            debugger.follow_server(&url, self.options.debug.server_token.clone(), move || {
                ctx.request_repaint()
            });
        }
        Some(debugger)
    }

    /// F9, or More ▸ Stream debugger.
    fn toggle_debugger(&mut self, ctx: &egui::Context) {
        self.debugger_open = !self.debugger_open;
        if self.debugger_open && self.debugger.is_none() {
            let room = self
                .last_target
                .as_ref()
                .map(|t| t.room.clone())
                .unwrap_or_default();
            self.debugger = self.start_debugger(ctx, &room);
        }
    }

    /// Keeps the lobby's preview on the picked camera and microphone.
    fn update_preview(&mut self, ctx: &egui::Context) {
        let Screen::Lobby(lobby) = &self.screen else {
            return;
        };
        let s = &lobby.settings;
        if self.is_kiosk() || s.player {
            self.preview = None;
            return;
        }
        if self
            .preview
            .as_ref()
            .is_some_and(|p| p.shows(&s.camera, &s.microphone))
        {
            return;
        }
        self.preview = None; // closes the old devices first
        let ctx = ctx.clone();
        match DevicePreview::start(
            &self.devices,
            &s.camera,
            &s.microphone,
            local_video_profile(),
            AudioProfile::default(),
            move || ctx.request_repaint_after(VIDEO_REPAINT_DELAY),
        ) {
            Ok(p) => self.preview = Some(p),
            Err(e) => tracing::warn!("device preview: {e}"),
        }
    }

    fn local_media(&mut self) -> LocalMedia {
        let video_profile = local_video_profile();
        let audio_profile = AudioProfile::default();
        let slot = Arc::new(VideoSlot::default());
        // The lobby's preview already has the devices open: continue with them.
        let (camera, mic) = match self.preview.take() {
            Some(p) if p.shows(&self.settings.camera, &self.settings.microphone) => p.hand_over(),
            _ => (
                self.devices
                    .open_camera(&self.settings.camera, &video_profile),
                self.devices
                    .open_microphone(&self.settings.microphone, &audio_profile),
            ),
        };
        let (camera, camera_switch) = SwitchableVideo::new(camera);
        let preview =
            super::preview_source::PreviewSource::new(Box::new(camera), Arc::clone(&slot));
        let (mic, mic_switch) = SwitchableAudio::new(mic);
        let meter = Arc::new(LevelMeter::default());
        let mic = MeteredAudio::new(Box::new(mic), Arc::clone(&meter));
        let stream = LocalStream::new(
            Some(Box::new(preview)),
            Some(Box::new(mic)),
            video_profile,
            audio_profile,
        );
        LocalMedia {
            stream,
            slot,
            camera: camera_switch,
            microphone: mic_switch,
            meter,
            video_profile,
            audio_profile,
            start_audio_muted: self.settings.join_mic_off,
            start_video_muted: self.settings.join_camera_off,
        }
    }

    /// In the room: switch a device and remember the choice.
    fn switch_device(&mut self, kind: DeviceKind, id: String) {
        let Screen::Room(session) = &mut self.screen else {
            return;
        };
        match session.switch_device(kind, &id) {
            Ok(()) => {
                let setting = match kind {
                    DeviceKind::Camera => &mut self.settings.camera,
                    DeviceKind::Microphone => &mut self.settings.microphone,
                    DeviceKind::Speaker => &mut self.settings.speaker,
                };
                *setting = id;
            }
            Err(e) => self.toasts.push(e),
        }
    }

    /// A lobby showing the room last tried (from the lobby or the command
    /// line), with the secrets of this run.
    fn lobby(&self) -> Lobby {
        let (settings, secrets) = form_of(&self.settings, &self.secrets, self.last_target.as_ref());
        let mut lobby = Lobby::new(settings);
        lobby.app_key = secrets.0;
        lobby.auth_token = secrets.1;
        lobby
    }

    /// Desktop: a join that failed goes back to the lobby, every field as it
    /// was, the problem next to the field it concerns (issue 16 §3).
    fn back_to_lobby_if_failed(&mut self) {
        if self.is_kiosk() {
            return;
        }
        let Screen::Room(session) = &mut self.screen else {
            return;
        };
        let Some(failure) = session.failure.take() else {
            return;
        };
        tracing::info!("join failed: {}", failure.details());
        let (settings, secrets) = form_of(&self.settings, &self.secrets, self.last_target.as_ref());
        let lobby = lobby_after_failure(&settings, &secrets, failure);
        self.debugger = None;
        if let Screen::Room(session) =
            std::mem::replace(&mut self.screen, Screen::Lobby(Box::new(lobby)))
        {
            session.leave();
        }
    }

    /// "room on server — huddle" in a room, "huddle" in the lobby.
    fn update_title(&mut self, ctx: &egui::Context) {
        let title = match (&self.screen, &self.last_target) {
            (Screen::Room(_), Some(t)) => window_title(t),
            _ => "huddle".to_owned(),
        };
        if title != self.title {
            ctx.send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.title = title;
        }
    }

    /// Devices plugged in or out: the pickers follow, a device in use that
    /// is gone is replaced (in the room, and in the settings the lobby and
    /// the next join use).
    fn follow_device_changes(&mut self) {
        for change in self.hotplug.changes() {
            let in_use = match change.kind {
                DeviceKind::Camera => &self.settings.camera,
                DeviceKind::Microphone => &self.settings.microphone,
                DeviceKind::Speaker => &self.settings.speaker,
            }
            .clone();
            let reaction = self.devices.apply(&change, &in_use);
            self.view.synthetic_note = self.devices.synthetic_note();
            self.toasts.push(reaction.notice);
            if let Some((kind, id)) = reaction.switch_to {
                if matches!(self.screen, Screen::Room(_)) {
                    self.switch_device(kind, id);
                } else {
                    match kind {
                        DeviceKind::Camera => self.settings.camera = id,
                        DeviceKind::Microphone => self.settings.microphone = id,
                        DeviceKind::Speaker => self.settings.speaker = id,
                    }
                }
            }
        }
    }

    fn leave_to_lobby(&mut self) {
        self.debugger = None;
        let lobby = Screen::Lobby(Box::new(self.lobby()));
        if let Screen::Room(session) = std::mem::replace(&mut self.screen, lobby) {
            session.leave();
        }
    }

    /// Kiosk: a session that ended for good is started again, after the
    /// SDK's backoff. (Drops never end it: the SDK reconnects.)
    fn kiosk_logic(&mut self, ctx: &egui::Context) {
        let Screen::Room(session) = &self.screen else {
            return;
        };
        let now = Instant::now();
        let ended = matches!(session.phase, Phase::Failed(_) | Phase::Disconnected(_));
        // A director removed this kiosk (reason 9): it stays out, saying so.
        if session.program.banned == Some(crate::client::LeaveReason::UserRemoved) {
            return;
        }
        match self.restart {
            KioskRestart::Watching if ended => {
                // The first delay is zero; a few seconds at most after that.
                let delay = self.restart_backoff.next_delay().max(KIOSK_WATCHDOG);
                tracing::info!("kiosk: joining again in {delay:?}");
                self.restart = KioskRestart::At(now + delay);
            }
            KioskRestart::Watching => {
                if matches!(session.phase, Phase::Joined) {
                    self.restart_backoff = Backoff::default();
                    self.view.retry_note = None;
                }
            }
            KioskRestart::At(at) if now >= at => {
                self.restart = KioskRestart::Watching;
                // The problem stays on screen while joining again (no flicker
                // between it and "Joining…" for the whole outage).
                if let Phase::Failed(problem) | Phase::Disconnected(problem) = &session.phase {
                    self.view.retry_note = Some(problem.clone());
                }
                if let Some(target) = self.last_target.clone() {
                    self.leave_then_start(ctx, target);
                }
            }
            KioskRestart::At(_) => {}
        }
        // Watchdog: a kiosk must notice a finished or failed join even when no
        // producer asks for a repaint (nobody is looking at an empty room).
        ctx.request_repaint_after(KIOSK_WATCHDOG);
    }

    fn leave_then_start(&mut self, ctx: &egui::Context, target: JoinTarget) {
        let lobby = Screen::Lobby(Box::new(self.lobby()));
        if let Screen::Room(session) = std::mem::replace(&mut self.screen, lobby) {
            session.leave();
        }
        self.start(ctx, target);
    }

    fn debug_overlay(&self, ctx: &egui::Context) {
        let tiles = match &self.screen {
            Screen::Room(s) => s.tiles.len(),
            Screen::Lobby(_) => 0,
        };
        egui::Area::new(egui::Id::unique("huddle-debug"))
            .anchor(egui::Align2::RIGHT_BOTTOM, egui::vec2(-8.0, -40.0))
            .order(egui::Order::Foreground)
            .interactable(false)
            .show(ctx, |ui| {
                egui::Frame::popup(ui.style()).show(ui, |ui| {
                    let text = format!("ui {:.1} fps · {tiles} remote", self.fps.fps());
                    ui.add(
                        egui::Label::new(egui::RichText::new(text).monospace())
                            .wrap_mode(egui::TextWrapMode::Extend),
                    );
                });
            });
    }
}

impl eframe::App for HuddleApp {
    /// eframe's default, except while the debugger is docked in a room: its
    /// panel's fill, which the panel leaves to the clear (`panel::clear_color`).
    fn clear_color(&self, visuals: &egui::Visuals) -> [f32; 4] {
        if self.debugger_open && self.debugger.is_some() && matches!(self.screen, Screen::Room(_)) {
            super::debugger::panel::clear_color(visuals)
        } else {
            egui::Color32::from_rgba_unmultiplied(12, 12, 12, 180).to_normalized_gamma_f32()
        }
    }

    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        for notice in super::devices::take_notices() {
            self.toasts.push_with(notice.text, notice.details);
        }
        self.follow_device_changes();
        if let Some(debugger) = &mut self.debugger {
            debugger.poll();
        }
        if let Screen::Room(session) = &mut self.screen {
            session.poll();
            for e in session.take_errors() {
                self.toasts.push_with(e.text, e.details);
            }
            ctx.request_repaint_after(EVENT_POLL);
        }
        self.back_to_lobby_if_failed();
        self.update_title(ctx);
        if self.is_kiosk() {
            self.kiosk_logic(ctx);
            if self.hidden_exit.update(ctx) {
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        let now = Instant::now();
        if let Some(fps) = self.fps.tick(now) {
            let tiles = match &self.screen {
                Screen::Room(s) => s.tiles.len(),
                Screen::Lobby(_) => 0,
            };
            tracing::info!("ui: {fps:.1} fps, {tiles} remote tiles");
        }
        if ctx.input(|i| i.key_pressed(egui::Key::F12)) {
            self.debug_overlay = !self.debug_overlay;
        }
        if !self.is_kiosk()
            && matches!(self.screen, Screen::Room(_))
            && ctx.input(|i| i.key_pressed(egui::Key::F9))
        {
            self.toggle_debugger(&ctx);
        }
        let pass = ctx.cumulative_pass_nr();
        self.update_preview(&ctx);
        if !self.is_kiosk() {
            self.overlays.keys(&ctx);
        }
        let mut actions = Vec::new();
        let mut join = None;
        match &mut self.screen {
            Screen::Lobby(lobby) => {
                join = lobby.show(ui, &self.devices, self.preview.as_ref(), pass);
            }
            Screen::Room(session) => {
                if self.debugger_open
                    && let Some(debugger) = &mut self.debugger
                {
                    super::debugger::panel::show_docked(ui, debugger);
                }
                actions = room_view::show(
                    ui,
                    session,
                    &self.devices,
                    &self.settings,
                    &mut self.view,
                    pass,
                );
                if self.view.kiosk {
                    // After a cut the old sources are unsubscribed.
                    session.on_program_shown(self.view.stage.program.shown());
                }
            }
        }
        self.toasts.show(&ctx);
        self.overlays.show(&ctx);
        if self.debug_overlay {
            self.debug_overlay(&ctx);
        }
        // Apply what the user did, after the pass.
        if let Some(target) = join {
            if let Screen::Lobby(lobby) = &self.screen {
                self.settings = lobby.settings.clone();
                self.secrets = (lobby.app_key.clone(), lobby.auth_token.clone());
                self.view.push_to_talk = self.settings.push_to_talk;
            }
            self.start(&ctx, target);
        }
        for action in actions {
            match action {
                RoomAction::Session(a) => {
                    if let Screen::Room(session) = &mut self.screen {
                        session.apply(a);
                    }
                }
                RoomAction::Device(kind, id) => self.switch_device(kind, id),
                RoomAction::TopN(on) => {
                    if let Screen::Room(session) = &mut self.screen {
                        session.set_top_n(on);
                    }
                }
                RoomAction::Rename(name) => {
                    if let Screen::Room(session) = &mut self.screen {
                        session.rename(name);
                    }
                }
                RoomAction::SwitchRole(role) => {
                    let wanted = matches!(&self.screen,
                        Screen::Room(s) if s.role != role && !s.switching_role);
                    if wanted {
                        // Devices open only for a switch that will happen.
                        let publish = role.can_publish().then(|| self.local_media());
                        if let Screen::Room(session) = &mut self.screen {
                            session.switch_role(role, publish);
                        }
                    }
                }
                RoomAction::ShareScreen(choice) => {
                    if let Screen::Room(session) = &mut self.screen {
                        session.share_screen(choice);
                    }
                }
                RoomAction::StopScreenShare => {
                    if let Screen::Room(session) = &mut self.screen {
                        session.stop_screen_share();
                    }
                }
                RoomAction::Notice(text) => self.toasts.push(text),
                RoomAction::Direct(request) => {
                    if let Screen::Room(session) = &mut self.screen {
                        session.direct(request);
                    }
                }
                RoomAction::Help => self.overlays.help = true,
                RoomAction::About => self.overlays.about = true,
                RoomAction::ToggleFullscreen => {
                    let full = ctx.input(|i| i.viewport().fullscreen.unwrap_or(false));
                    ctx.send_viewport_cmd(egui::ViewportCommand::Fullscreen(!full));
                }
                RoomAction::ToggleDebugger => self.toggle_debugger(&ctx),
                RoomAction::Leave => self.leave_to_lobby(),
                RoomAction::Rejoin => {
                    if let Some(target) = self.last_target.clone() {
                        self.leave_then_start(&ctx, target);
                    }
                }
            }
        }
        self.settings.object_fit = self.view.fit;
        self.settings.mirror_local = self.view.mirror_local;
        self.settings.push_to_talk = self.view.push_to_talk;
        self.settings.layout = self.view.stage.layout;
        self.settings.self_thumbnail = self.view.stage.self_thumbnail;
        self.settings.participants_open = self.view.participants_open;
    }

    fn on_exit(&mut self) {
        if let Screen::Room(_) = &self.screen {
            self.leave_to_lobby();
        }
        if !self.is_kiosk()
            && let Err(e) = self.settings.save()
        {
            tracing::warn!("settings not saved: {e}");
        }
    }
}

/// How a join to a `ws://` server proves who it is.
pub fn credential_of(target: &JoinTarget) -> CredentialSource {
    match &target.signature {
        SignatureSource::AppKey(key) => CredentialSource::Ready(Credential::AppKey {
            key: key.clone(),
            valid_for: SIGNATURE_LIFETIME,
        }),
        SignatureSource::Url { url, token } => CredentialSource::Fetch {
            url: url.clone(),
            token: token.clone(),
        },
    }
}

/// The lobby's fields for the room last tried: `target` (from the lobby or
/// the command line) over the remembered settings, so nothing has to be
/// typed again (issue 16 §3).
pub fn form_of(
    settings: &Settings,
    secrets: &(String, String),
    target: Option<&JoinTarget>,
) -> (Settings, (String, String)) {
    let mut s = settings.clone();
    let mut secrets = secrets.clone();
    let Some(t) = target else {
        return (s, secrets);
    };
    s.server = match &t.server {
        ServerChoice::Local => "local".to_owned(),
        ServerChoice::Url(url) => url.clone(),
    };
    if !t.app_id.is_empty() {
        s.app_id = t.app_id.clone();
    }
    s.room = t.room.clone();
    s.user_id = t.user_id.clone();
    if !t.user_name.is_empty() {
        s.user_name = t.user_name.clone();
    }
    s.player = t.role == Role::Player;
    match &t.signature {
        SignatureSource::AppKey(key) if !key.is_empty() => {
            s.use_signature_url = false;
            secrets.0 = key.clone();
        }
        SignatureSource::AppKey(_) => {}
        SignatureSource::Url { url, token } => {
            s.use_signature_url = true;
            s.signature_url = url.clone();
            secrets.1 = token.clone();
        }
    }
    (s, secrets)
}

/// The lobby a failed join returns to: the fields as they were when Join
/// was pressed (settings and this run's secrets) and the problem.
pub fn lobby_after_failure(
    settings: &Settings,
    secrets: &(String, String),
    failure: super::error_text::HumanError,
) -> Lobby {
    let mut lobby = Lobby::new(settings.clone());
    lobby.app_key = secrets.0.clone();
    lobby.auth_token = secrets.1.clone();
    lobby.error = Some(failure);
    lobby
}

/// The window title for a room: where you are, at a glance (issue 16 §6).
pub fn window_title(target: &JoinTarget) -> String {
    let server = match &target.server {
        ServerChoice::Local => "this computer".to_owned(),
        ServerChoice::Url(url) => url
            .trim_start_matches("wss://")
            .trim_start_matches("ws://")
            .trim_end_matches('/')
            .to_owned(),
    };
    format!("{} on {server} — huddle", target.room)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_title_names_the_room_and_the_server() {
        let target = JoinTarget {
            server: ServerChoice::Url("ws://rtc.example:7880".into()),
            app_id: "a".into(),
            room: "standup".into(),
            user_id: "me".into(),
            user_name: "Me".into(),
            role: Role::Joiner,
            signature: SignatureSource::AppKey("k".into()),
        };
        assert_eq!(
            window_title(&target),
            "standup on rtc.example:7880 — huddle"
        );
    }

    #[test]
    fn a_command_line_join_that_failed_fills_the_lobby_with_what_was_tried() {
        let target = JoinTarget {
            server: ServerChoice::Url("ws://127.0.0.1:7992".into()),
            app_id: "walk".into(),
            room: "r".into(),
            user_id: "ada".into(),
            user_name: String::new(),
            role: Role::Joiner,
            signature: SignatureSource::AppKey("wrong".into()),
        };
        let remembered = Settings::default();
        let (s, secrets) = form_of(&remembered, &(String::new(), String::new()), Some(&target));
        assert_eq!(s.server, "ws://127.0.0.1:7992");
        assert_eq!(
            (s.app_id.as_str(), s.room.as_str(), s.user_id.as_str()),
            ("walk", "r", "ada")
        );
        assert_eq!(
            s.user_name, remembered.user_name,
            "no --name: the remembered one"
        );
        assert_eq!(secrets.0, "wrong");
        assert!(!s.use_signature_url && !s.player);
    }
}
