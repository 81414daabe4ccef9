//! Screen sharing in the app: the toolbar's "Share screen" menu (a monitor
//! or a window of the X display the app runs on), the state of our own share,
//! and which tile a remote share takes on the stage.
//!
//! Invariants: listing what can be shared connects to the X server, so it
//! runs on a worker thread, started when the menu opens, and the menu shows
//! its result on a later pass (the UI thread never waits on X). Our share is
//! one [`ShareState`]; the SDK work (open the capture, publish, unpublish)
//! runs on the runtime (`session/screen.rs`). A remote share is shown large
//! with `contain` fit (text must not be cropped) unless a tile is pinned.
//!
//! "Screen audio" in the menu (seed `bindScreenAudio2RelatedStream`): a
//! capture device whose sound goes out with our camera stream's audio, or
//! instead of the microphone ("only the screen's sound"). The menu says to
//! pick the monitor of a sink that does not carry the call (a null sink the
//! shared application plays into): the speakers' monitor would echo
//! everyone back (`client::screen_audio`).

use std::sync::{Arc, Mutex};

use crate::client::StreamId;

use super::room_view::RoomAction;
use super::session::RoomSession;

/// What to share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
// Without screen capture (no feature `devices`) the menu lists nothing.
#[cfg_attr(not(feature = "devices"), allow(dead_code))]
pub enum ShareSource {
    /// A monitor, by index (0: the primary).
    Screen(u32),
    /// A top-level window, by X id.
    Window(u32),
}

/// One entry of the menu.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareChoice {
    /// What it shares.
    pub source: ShareSource,
    /// What the menu says.
    pub label: String,
    /// The screen audio to send with our camera stream, if any.
    pub audio: Option<ScreenAudioChoice>,
}

/// A screen audio picked in the menu.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScreenAudioChoice {
    /// The capture device (a microphone id, e.g. `pulseaudio:share.monitor`).
    pub device: String,
    /// Send only the screen audio, not the microphone.
    pub mute_microphone: bool,
}

/// Our own share.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ShareState {
    /// Not sharing.
    #[default]
    Off,
    /// Opening the capture and publishing it (label of the choice).
    Starting(String),
    /// Published.
    Sharing {
        /// The presentation stream.
        stream_id: StreamId,
        /// What is shared.
        label: String,
    },
}

/// The menu's list of what can be shared.
#[derive(Clone, Debug, Default)]
enum Listing {
    #[default]
    NotListed,
    Running,
    Listed(Result<Vec<ShareChoice>, String>),
}

/// The app's screen-sharing state (one per room session).
#[derive(Debug, Default)]
pub struct ScreenShare {
    /// Our share.
    pub state: ShareState,
    /// Filled by the listing thread.
    listing: Arc<Mutex<Listing>>,
    /// The menu's screen audio pick (device id, empty for none; only the
    /// screen's sound); the menu edits it while drawing.
    audio: Arc<Mutex<ScreenAudioChoice>>,
}

impl ScreenShare {
    fn listing(&self) -> Listing {
        self.listing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Test hook: the menu lists `choices` (no X display needed).
    #[cfg(test)]
    pub fn set_listed(&self, choices: Vec<ShareChoice>) {
        *self
            .listing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Listing::Listed(Ok(choices));
    }

    /// Lists the display's screens and windows on a worker thread; the
    /// menu shows them once done.
    fn refresh(&self, ctx: &egui::Context) {
        {
            let mut listing = self
                .listing
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if matches!(*listing, Listing::Running) {
                return;
            }
            *listing = Listing::Running;
        }
        let (slot, ctx) = (Arc::clone(&self.listing), ctx.clone());
        let spawned = std::thread::Builder::new()
            .name("huddle-share-list".into())
            .spawn(move || {
                let listed = list_choices();
                *slot
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Listing::Listed(listed);
                ctx.request_repaint();
            });
        if let Err(e) = spawned {
            *self
                .listing
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                Listing::Listed(Err(format!("cannot list what to share: {e}")));
        }
    }
}

#[cfg(feature = "devices")]
fn list_choices() -> Result<Vec<ShareChoice>, String> {
    use crate::media::devices::{list_screens, list_windows};
    // The display the app itself runs on (`DISPLAY`).
    let human = |e: crate::media::MediaError| format!("{e} (code {})", e.seed_code());
    let mut choices: Vec<ShareChoice> = list_screens(None)
        .map_err(human)?
        .into_iter()
        .map(|s| ShareChoice {
            source: ShareSource::Screen(s.index),
            audio: None,
            label: format!(
                "Screen {} ({}, {}×{})",
                s.index + 1,
                s.name,
                s.width,
                s.height
            ),
        })
        .collect();
    choices.extend(list_windows(None).map_err(human)?.into_iter().map(|w| {
        let mut title: String = w.title.chars().take(40).collect();
        if w.title.chars().count() > 40 {
            title.push('…');
        }
        ShareChoice {
            source: ShareSource::Window(w.id),
            audio: None,
            label: format!("Window: {title}"),
        }
    }));
    Ok(choices)
}

#[cfg(not(feature = "devices"))]
fn list_choices() -> Result<Vec<ShareChoice>, String> {
    Err("this build has no screen capture (feature `devices`)".into())
}

/// The toolbar's "Share screen" menu, or "Stop sharing" while we share.
pub fn toolbar(
    ui: &mut egui::Ui,
    session: &RoomSession,
    microphones: &[super::devices::DeviceEntry],
    actions: &mut Vec<RoomAction>,
) {
    let share = &session.screen_share;
    match &share.state {
        ShareState::Sharing { label, .. } => {
            if ui
                .button("Stop sharing")
                .on_hover_text(format!("stop sharing {label}"))
                .clicked()
            {
                actions.push(RoomAction::StopScreenShare);
            }
        }
        ShareState::Starting(label) => {
            ui.add_enabled(false, egui::Button::new("Sharing…"))
                .on_disabled_hover_text(format!("starting to share {label}"));
        }
        ShareState::Off => {
            // Picking the screen audio must not close the menu; a share
            // (or Escape, or a click outside) does.
            let config = egui::containers::menu::MenuConfig::new()
                .close_behavior(egui::PopupCloseBehavior::CloseOnClickOutside);
            let menu = egui::containers::menu::MenuButton::new("Share screen").config(config);
            let (response, _) = menu.ui(ui, |ui| {
                let listing = share.listing();
                match &listing {
                    Listing::NotListed | Listing::Running => {
                        ui.weak("Looking for screens and windows…");
                    }
                    Listing::Listed(Err(e)) => {
                        ui.add(egui::Label::new(format!("Cannot share: {e}")).wrap());
                    }
                    Listing::Listed(Ok(choices)) if choices.is_empty() => {
                        ui.weak("Nothing to share");
                    }
                    Listing::Listed(Ok(choices)) => {
                        let audio = screen_audio_pick(ui, &share.audio, microphones);
                        for choice in choices {
                            if ui.button(&choice.label).clicked() {
                                let mut choice = choice.clone();
                                choice.audio = audio.clone();
                                actions.push(RoomAction::ShareScreen(choice));
                                ui.close();
                            }
                        }
                    }
                }
                ui.separator();
                if ui.button("Refresh").clicked() {
                    share.refresh(ui.ctx());
                }
                if matches!(listing, Listing::NotListed) {
                    share.refresh(ui.ctx());
                }
            });
            response.on_hover_text("share a screen or a window with the room");
        }
    }
}

/// The menu's "Screen audio" picker; returns the pick for a share started
/// now. `microphones` are the catalog's (the synthetic tone is left out: it
/// is no screen's sound).
fn screen_audio_pick(
    ui: &mut egui::Ui,
    pick: &Mutex<ScreenAudioChoice>,
    microphones: &[super::devices::DeviceEntry],
) -> Option<ScreenAudioChoice> {
    let mut pick = pick
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    ui.label("Screen audio").on_hover_text(
        "sent with your camera's audio: pick the monitor of a sink that does not carry \
         the call (a null sink the shared application plays into); the speakers' \
         monitor would echo everyone back",
    );
    ui.radio_value(&mut pick.device, String::new(), "none");
    for d in microphones
        .iter()
        .filter(|d| d.id != super::devices::SYNTHETIC_ID)
    {
        ui.radio_value(&mut pick.device, d.id.clone(), &d.label);
    }
    if !pick.device.is_empty() {
        ui.checkbox(
            &mut pick.mute_microphone,
            "Only the screen's sound (mute my microphone)",
        );
    }
    ui.separator();
    (!pick.device.is_empty()).then(|| pick.clone())
}

/// The stage key of the remote share to show large (the first by stream
/// id), if any: stage keys are stream id + 1 (`stage::LOCAL_KEY` is 0).
pub fn main_share(session: &RoomSession) -> Option<u64> {
    session
        .tiles
        .iter()
        .find(|(_, tile)| tile.info.is_screen)
        .map(|(id, _)| id.0.wrapping_add(1))
}
