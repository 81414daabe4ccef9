//! Hot-plug: which cameras, microphones and speakers appeared, disappeared
//! or became the default (seed `camera-changed`,
//! `recording-device-changed`, `playback-device-changed`).
//!
//! Neither V4L nor cpal tells us when a device comes or goes, so a worker
//! thread lists them every [`WatchConfig::interval`] and reports the
//! difference from the previous list ([`diff`], pure and unit-tested).
//! Listing talks to the audio server and V4L and can take a while: it never
//! runs on the caller's (UI) thread. The thread ends when the
//! [`DeviceWatcher`] is dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use super::DeviceInfo;

/// Which list a device is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// A camera (seed `camera-changed`).
    Camera,
    /// A microphone (seed `recording-device-changed`).
    Microphone,
    /// A speaker (seed `playback-device-changed`).
    Speaker,
}

impl DeviceKind {
    /// The seed's event name for a change of this kind.
    pub fn seed_event(self) -> &'static str {
        match self {
            DeviceKind::Camera => "camera-changed",
            DeviceKind::Microphone => "recording-device-changed",
            DeviceKind::Speaker => "playback-device-changed",
        }
    }
}

/// What happened to a device (the seed's `state`: ADD / REMOVE, and a new
/// default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceState {
    /// It appeared.
    Added,
    /// It is gone.
    Removed,
    /// It is the system default now.
    BecameDefault,
}

/// One change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceChange {
    /// Which list.
    pub kind: DeviceKind,
    /// What happened.
    pub state: DeviceState,
    /// The device (for `Removed`: as it was last listed).
    pub device: DeviceInfo,
}

/// The changes from `before` to `after` (both lists of one kind): removed
/// devices first, then added ones, then a new default; each in list order.
/// Devices are matched by id.
pub fn diff(kind: DeviceKind, before: &[DeviceInfo], after: &[DeviceInfo]) -> Vec<DeviceChange> {
    let has = |list: &[DeviceInfo], id: &str| list.iter().any(|d| d.id == id);
    let change = |state, device: &DeviceInfo| DeviceChange {
        kind,
        state,
        device: device.clone(),
    };
    let mut changes: Vec<DeviceChange> = before
        .iter()
        .filter(|d| !has(after, &d.id))
        .map(|d| change(DeviceState::Removed, d))
        .collect();
    changes.extend(
        after
            .iter()
            .filter(|d| !has(before, &d.id))
            .map(|d| change(DeviceState::Added, d)),
    );
    let default = |list: &[DeviceInfo]| list.iter().find(|d| d.is_default).map(|d| d.id.clone());
    if let Some(new_default) = default(after)
        && default(before) != Some(new_default.clone())
        && has(before, &new_default)
        && let Some(device) = after.iter().find(|d| d.id == new_default)
    {
        changes.push(change(DeviceState::BecameDefault, device));
    }
    changes
}

/// How the watcher polls.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// Time between two listings.
    pub interval: Duration,
    /// Watch cameras (V4L).
    pub cameras: bool,
    /// Watch microphones and speakers (the audio host).
    pub audio: bool,
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(2),
            cameras: true,
            audio: true,
        }
    }
}

/// Changes waiting to be read; past this the oldest are dropped (a reader
/// that stopped reading must not grow memory).
pub const WATCH_CHANNEL_CAPACITY: usize = 64;

/// Runs the polling thread; dropping it stops the thread (within one
/// interval).
pub struct DeviceWatcher {
    stop: Arc<AtomicBool>,
    baseline: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DeviceWatcher {
    /// Starts a worker thread that lists the devices once (the baseline: no
    /// change is reported for devices present then; see
    /// [`DeviceWatcher::is_watching`]) and then polls. Changes arrive on the
    /// returned channel. Returns at once.
    ///
    /// # Errors
    /// The thread could not be spawned.
    pub fn start(config: WatchConfig) -> std::io::Result<(Self, Receiver<DeviceChange>)> {
        let (tx, rx) = crossbeam_channel::bounded(WATCH_CHANNEL_CAPACITY);
        let stop = Arc::new(AtomicBool::new(false));
        let baseline = Arc::new(AtomicBool::new(false));
        let (stopped, listed) = (Arc::clone(&stop), Arc::clone(&baseline));
        let overflow = rx.clone();
        let thread = std::thread::Builder::new()
            .name("device-watch".into())
            .spawn(move || poll(&config, &tx, &overflow, &stopped, &listed))?;
        Ok((
            Self {
                stop,
                baseline,
                thread: Some(thread),
            },
            rx,
        ))
    }
}

impl DeviceWatcher {
    /// Whether the first listing is done: from then on every change is
    /// reported.
    pub fn is_watching(&self) -> bool {
        self.baseline.load(Ordering::Acquire)
    }
}

impl Drop for DeviceWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            thread.join().ok();
        }
    }
}

/// One listing of the watched kinds; a kind that cannot be listed now is
/// `None` (and not compared).
fn list(config: &WatchConfig) -> [(DeviceKind, Option<Vec<DeviceInfo>>); 3] {
    [
        (
            DeviceKind::Camera,
            config.cameras.then(|| super::list_cameras().ok()).flatten(),
        ),
        (
            DeviceKind::Microphone,
            config
                .audio
                .then(|| super::list_microphones().ok())
                .flatten(),
        ),
        (
            DeviceKind::Speaker,
            config.audio.then(|| super::list_speakers().ok()).flatten(),
        ),
    ]
}

fn poll(
    config: &WatchConfig,
    tx: &Sender<DeviceChange>,
    overflow: &Receiver<DeviceChange>,
    stop: &AtomicBool,
    baseline: &AtomicBool,
) {
    let mut previous = list(config);
    baseline.store(true, Ordering::Release);
    while !stop.load(Ordering::Relaxed) {
        std::thread::park_timeout(config.interval);
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let current = list(config);
        for ((kind, before), (_, after)) in previous.iter().zip(current.iter()) {
            let (Some(before), Some(after)) = (before, after) else {
                continue;
            };
            for change in diff(*kind, before, after) {
                tracing::info!(
                    "{}: {:?} {} ({})",
                    kind.seed_event(),
                    change.state,
                    change.device.name,
                    change.device.id
                );
                if let Err(crossbeam_channel::TrySendError::Full(change)) = tx.try_send(change) {
                    overflow.try_recv().ok(); // drop the oldest
                    tx.try_send(change).ok();
                }
            }
        }
        // A kind that could not be listed keeps its last known list.
        for (slot, fresh) in previous.iter_mut().zip(current) {
            if fresh.1.is_some() {
                *slot = fresh;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(id: &str, is_default: bool) -> DeviceInfo {
        DeviceInfo {
            id: id.into(),
            name: format!("name of {id}"),
            is_default,
        }
    }

    #[test]
    fn nothing_changed_reports_nothing() {
        let list = [device("a", true), device("b", false)];
        assert!(diff(DeviceKind::Speaker, &list, &list).is_empty());
    }

    #[test]
    fn added_removed_and_new_default_are_reported_in_that_order() {
        let before = [device("a", true), device("b", false), device("gone", false)];
        let after = [device("a", false), device("b", true), device("new", false)];
        let changes = diff(DeviceKind::Microphone, &before, &after);
        let got: Vec<(&DeviceState, &str)> = changes
            .iter()
            .map(|c| (&c.state, c.device.id.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (&DeviceState::Removed, "gone"),
                (&DeviceState::Added, "new"),
                (&DeviceState::BecameDefault, "b"),
            ]
        );
        assert!(changes.iter().all(|c| c.kind == DeviceKind::Microphone));
    }

    /// A device that appears already being the default is reported once, as
    /// added; a default that disappears is just removed.
    #[test]
    fn a_new_default_device_is_only_added() {
        let before = [device("a", true)];
        let after = [device("a", false), device("usb", true)];
        let changes = diff(DeviceKind::Speaker, &before, &after);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].state, DeviceState::Added);
        let changes = diff(DeviceKind::Speaker, &after, &[device("a", true)]);
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert_eq!(changes[0].state, DeviceState::Removed);
        assert_eq!(changes[1].state, DeviceState::BecameDefault);
    }
}
