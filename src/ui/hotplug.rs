//! Devices plugged in or out while the app runs: the catalog the pickers
//! show follows, and a device in use that disappears is replaced (the
//! system default if real devices remain, else the synthetic stand-in),
//! with a notice saying so. Listing runs on the watcher's thread
//! (`media::devices::watch`), never on the UI thread.

use super::devices::{DEFAULT_ID, DeviceCatalog, DeviceEntry, SYNTHETIC_ID};
use super::session::DeviceKind;

/// A change as the app handles it (the `devices` feature's
/// `DeviceChange`, reduced to what the catalog needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Which picker.
    pub kind: DeviceKind,
    /// The device.
    pub entry: DeviceEntry,
    /// Appeared (`true`) or disappeared (`false`).
    pub added: bool,
}

/// What the app must do after a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaction {
    /// Tell the user.
    pub notice: String,
    /// Switch this kind of device to this id (the one in use is gone).
    pub switch_to: Option<(DeviceKind, String)>,
}

impl DeviceCatalog {
    fn list_mut(&mut self, kind: DeviceKind) -> &mut Vec<DeviceEntry> {
        match kind {
            DeviceKind::Camera => &mut self.cameras,
            DeviceKind::Microphone => &mut self.microphones,
            DeviceKind::Speaker => &mut self.speakers,
        }
    }

    /// Applies `change` to the pickers' lists; `in_use` is the id the app
    /// uses now for that kind. Returns what the app should do.
    pub fn apply(&mut self, change: &Change, in_use: &str) -> Reaction {
        let list = self.list_mut(change.kind);
        let is_real = |d: &DeviceEntry| d.id != SYNTHETIC_ID && d.id != DEFAULT_ID;
        let what = match change.kind {
            DeviceKind::Camera => "camera",
            DeviceKind::Microphone => "microphone",
            DeviceKind::Speaker => "speaker",
        };
        if change.added {
            if !list.iter().any(|d| d.id == change.entry.id) {
                if !list.iter().any(is_real) {
                    list.insert(
                        0,
                        DeviceEntry {
                            id: DEFAULT_ID.into(),
                            label: "system default".into(),
                        },
                    );
                }
                // Real devices sit between "system default" and the
                // synthetic entry, in label order.
                let at = list
                    .iter()
                    .position(|d| {
                        d.id == SYNTHETIC_ID || (is_real(d) && d.label > change.entry.label)
                    })
                    .unwrap_or(list.len());
                list.insert(at, change.entry.clone());
            }
            return Reaction {
                notice: format!("New {what}: {} (choose it in Devices)", change.entry.label),
                switch_to: None,
            };
        }
        list.retain(|d| d.id != change.entry.id);
        let any_real = list.iter().any(is_real);
        if !any_real {
            list.retain(|d| d.id != DEFAULT_ID);
        }
        let replacement = if any_real { DEFAULT_ID } else { SYNTHETIC_ID };
        if in_use == change.entry.id {
            let instead = match (change.kind, any_real) {
                (_, true) => "the system default".to_owned(),
                (DeviceKind::Camera, false) => "the synthetic test pattern".to_owned(),
                (DeviceKind::Microphone, false) => "the synthetic tone".to_owned(),
                (DeviceKind::Speaker, false) => "no speaker".to_owned(),
            };
            Reaction {
                notice: format!(
                    "The {what} {} was unplugged: using {instead}",
                    change.entry.label
                ),
                switch_to: Some((change.kind, replacement.to_owned())),
            }
        } else {
            Reaction {
                notice: format!("The {what} {} was unplugged", change.entry.label),
                switch_to: None,
            }
        }
    }
}

/// Watches devices (feature `devices`); without it, nothing changes.
pub struct Hotplug {
    #[cfg(feature = "devices")]
    watch: Option<(
        crate::media::devices::DeviceWatcher,
        crossbeam_channel::Receiver<crate::media::devices::DeviceChange>,
    )>,
}

impl Hotplug {
    /// Starts watching (a worker thread polls every 2 s).
    pub fn start() -> Self {
        #[cfg(feature = "devices")]
        {
            use crate::media::devices::{DeviceWatcher, WatchConfig};
            let watch = DeviceWatcher::start(WatchConfig::default())
                .map_err(|e| tracing::warn!("no device hot-plug: {e}"))
                .ok();
            Self { watch }
        }
        #[cfg(not(feature = "devices"))]
        Self {}
    }

    /// The changes since the last call (add/remove only; a new system
    /// default needs nothing: "system default" follows it when opened).
    pub fn changes(&self) -> Vec<Change> {
        #[cfg(feature = "devices")]
        {
            use crate::media::devices::{DeviceKind as Kind, DeviceState};
            let Some((_, rx)) = &self.watch else {
                return Vec::new();
            };
            rx.try_iter()
                .filter_map(|c| {
                    let added = match c.state {
                        DeviceState::Added => true,
                        DeviceState::Removed => false,
                        DeviceState::BecameDefault => return None,
                    };
                    Some(Change {
                        kind: match c.kind {
                            Kind::Camera => DeviceKind::Camera,
                            Kind::Microphone => DeviceKind::Microphone,
                            Kind::Speaker => DeviceKind::Speaker,
                        },
                        entry: DeviceEntry {
                            id: c.device.id,
                            label: c.device.name,
                        },
                        added,
                    })
                })
                .collect()
        }
        #[cfg(not(feature = "devices"))]
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str) -> DeviceEntry {
        DeviceEntry {
            id: id.into(),
            label: format!("Cam {id}"),
        }
    }

    fn change(id: &str, added: bool) -> Change {
        Change {
            kind: DeviceKind::Camera,
            entry: entry(id),
            added,
        }
    }

    fn ids(list: &[DeviceEntry]) -> Vec<&str> {
        list.iter().map(|d| d.id.as_str()).collect()
    }

    #[test]
    fn a_first_camera_brings_system_default_and_goes_before_synthetic() {
        let mut catalog = DeviceCatalog::synthetic();
        let r = catalog.apply(&change("b", true), SYNTHETIC_ID);
        assert_eq!(ids(&catalog.cameras), [DEFAULT_ID, "b", SYNTHETIC_ID]);
        assert_eq!(r.switch_to, None);
        assert!(r.notice.contains("Cam b"), "{}", r.notice);
        catalog.apply(&change("a", true), SYNTHETIC_ID);
        assert_eq!(ids(&catalog.cameras), [DEFAULT_ID, "a", "b", SYNTHETIC_ID]);
        catalog.apply(&change("a", true), SYNTHETIC_ID);
        assert_eq!(catalog.cameras.len(), 4, "added once");
    }

    #[test]
    fn the_camera_in_use_unplugged_is_replaced() {
        let mut catalog = DeviceCatalog::synthetic();
        catalog.apply(&change("a", true), SYNTHETIC_ID);
        catalog.apply(&change("b", true), SYNTHETIC_ID);
        // Another camera remains: the system default takes over.
        let r = catalog.apply(&change("a", false), "a");
        assert_eq!(r.switch_to, Some((DeviceKind::Camera, DEFAULT_ID.into())));
        assert!(r.notice.contains("unplugged"), "{}", r.notice);
        // The last one: the synthetic pattern, and no "system default".
        let r = catalog.apply(&change("b", false), "b");
        assert_eq!(r.switch_to, Some((DeviceKind::Camera, SYNTHETIC_ID.into())));
        assert!(r.notice.contains("synthetic test pattern"), "{}", r.notice);
        assert_eq!(ids(&catalog.cameras), [SYNTHETIC_ID]);
        // Unplugging a camera not in use switches nothing.
        catalog.apply(&change("c", true), SYNTHETIC_ID);
        let r = catalog.apply(&change("c", false), SYNTHETIC_ID);
        assert_eq!(r.switch_to, None);
    }
}
