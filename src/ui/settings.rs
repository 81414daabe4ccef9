//! Lobby choices remembered between runs, as JSON in
//! `$XDG_CONFIG_HOME/huddle/settings.json` (or `~/.config/huddle/...`).
//!
//! Secrets (app key, X-AUTH-TOKEN) are deliberately not saved.

use std::path::PathBuf;

use super::render::ObjectFit;

/// What the lobby remembers.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Settings {
    /// `local` or a `ws://` URL.
    pub server: String,
    /// App id.
    pub app_id: String,
    /// Room id.
    pub room: String,
    /// User id.
    pub user_id: String,
    /// Display name.
    pub user_name: String,
    /// Watch only (player) instead of joining with camera/microphone.
    pub player: bool,
    /// Sign with a signature server instead of the app key.
    pub use_signature_url: bool,
    /// Signature server endpoint.
    pub signature_url: String,
    /// Picked camera id.
    pub camera: String,
    /// Picked microphone id.
    pub microphone: String,
    /// Picked speaker id.
    pub speaker: String,
    /// How pictures fill tiles.
    pub object_fit: ObjectFit,
    /// Mirror the local preview.
    pub mirror_local: bool,
    /// Join with the microphone muted.
    pub join_mic_off: bool,
    /// Join with the camera off.
    pub join_camera_off: bool,
    /// Hold Space to talk while the microphone is muted.
    pub push_to_talk: bool,
    /// Grid or active speaker.
    pub layout: super::stage::Layout,
    /// The participants panel is open.
    pub participants_open: bool,
    /// The self view floats as a movable thumbnail.
    pub self_thumbnail: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            server: "local".into(),
            app_id: String::new(),
            room: "demo".into(),
            user_id: "me".into(),
            user_name: "Me".into(),
            player: false,
            use_signature_url: false,
            signature_url: "http://127.0.0.1:7880/signature".into(),
            camera: super::devices::DEFAULT_ID.into(),
            microphone: super::devices::DEFAULT_ID.into(),
            speaker: super::devices::DEFAULT_ID.into(),
            object_fit: ObjectFit::Contain,
            mirror_local: true,
            join_mic_off: false,
            join_camera_off: false,
            push_to_talk: true,
            layout: super::stage::Layout::Grid,
            participants_open: false,
            self_thumbnail: false,
        }
    }
}

impl Settings {
    /// Where the file lives.
    pub fn path() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
        Some(base.join("huddle").join("settings.json"))
    }

    /// Reads the file; defaults if missing or unreadable.
    pub fn load() -> Self {
        Self::path()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default()
    }

    /// Writes the file (small; done when joining, not per frame).
    pub fn save(&self) -> std::io::Result<()> {
        let path = Self::path().ok_or_else(|| std::io::Error::other("no config directory"))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text)
    }
}

#[cfg(test)]
mod test {
    use super::Settings;

    #[test]
    fn round_trips_and_tolerates_missing_fields() {
        let s = Settings {
            room: "r1".into(),
            player: true,
            ..Settings::default()
        };
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Settings>(&text).unwrap(), s);
        let partial: Settings = serde_json::from_str(r#"{"room":"x"}"#).unwrap();
        assert_eq!(partial.room, "x");
        assert_eq!(partial.server, "local");
    }
}
