//! The set of apps the server accepts signatures for (`app_id` → `app_key`).
//!
//! Invariants: every app id loaded from configuration passes
//! [`validate_id`](super::validate_id), ids are unique and keys are non-empty. Keys
//! never appear in `Debug` output or logs.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use rand::Rng;
use serde::Deserialize;
use thiserror::Error;

use super::validate_id;

/// Why an app configuration could not be loaded.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read. Retrying helps only if the cause was transient
    /// (e.g. the file was being replaced); usually the path or permissions are wrong.
    #[error("cannot read app config {path}: {source}")]
    Io {
        /// The file that was being read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid TOML of the expected shape (`[[apps]] id = "…" key = "…"`).
    /// Retrying never helps; fix the file.
    #[error("invalid app config: {0}")]
    Parse(#[from] toml::de::Error),
    /// An app id is not 1–64 characters of `[A-Za-z0-9_-]`. Retrying never helps.
    #[error("invalid app id {0:?}: use 1-64 characters of A-Z a-z 0-9 _ -")]
    InvalidAppId(String),
    /// An app has an empty key. Retrying never helps.
    #[error("app {0:?} has an empty key")]
    EmptyKey(String),
    /// The same app id appears twice. Retrying never helps.
    #[error("app id {0:?} is configured twice")]
    DuplicateApp(String),
    /// The configuration lists no apps, so nobody could ever join. Retrying never
    /// helps; add an `[[apps]]` entry (or run with a development registry).
    #[error("app config lists no [[apps]]")]
    NoApps,
}

/// Top level of the TOML file; other tables/keys are ignored so that the apps can
/// live inside a larger server configuration file.
#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    apps: Vec<AppEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppEntry {
    id: String,
    key: String,
}

/// The apps a server accepts: `app_id` → secret `app_key`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AppRegistry {
    apps: BTreeMap<String, String>,
}

impl fmt::Debug for AppRegistry {
    /// Lists app ids only; keys are secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppRegistry")
            .field("app_ids", &self.apps.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl AppRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry with one freshly generated development app: id `dev-XXXXXXXX`
    /// (8 random hex digits) and a random 32-hex-digit key. Read them back with
    /// [`AppRegistry::iter`] to hand them to local clients.
    pub fn dev() -> Self {
        let mut rng = rand::rng();
        let id = format!("dev-{}", hex::encode(rng.random::<[u8; 4]>()));
        let key = hex::encode(rng.random::<[u8; 16]>());
        let mut registry = Self::new();
        registry.insert(id, key);
        registry
    }

    /// Adds or replaces an app; returns the previous key for that id, if any.
    ///
    /// Unlike the loaders, this does not validate the id; callers that take ids from
    /// users should check [`validate_id`](super::validate_id) first.
    pub fn insert(
        &mut self,
        app_id: impl Into<String>,
        app_key: impl Into<String>,
    ) -> Option<String> {
        self.apps.insert(app_id.into(), app_key.into())
    }

    /// The key of `app_id`, if configured.
    pub fn get(&self, app_id: &str) -> Option<&str> {
        self.apps.get(app_id).map(String::as_str)
    }

    /// Number of configured apps.
    pub fn len(&self) -> usize {
        self.apps.len()
    }

    /// Whether no app is configured.
    pub fn is_empty(&self) -> bool {
        self.apps.is_empty()
    }

    /// All `(app_id, app_key)` pairs, ordered by app id. Handle the keys with care.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.apps
            .iter()
            .map(|(id, key)| (id.as_str(), key.as_str()))
    }

    /// Parses a TOML configuration of the form
    ///
    /// ```toml
    /// [[apps]]
    /// id = "my-app"
    /// key = "0123456789abcdef0123456789abcdef"
    /// ```
    ///
    /// Other top-level keys and tables are ignored; unknown keys inside an
    /// `[[apps]]` entry are rejected (to catch typos such as `kye`).
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let file: ConfigFile = toml::from_str(text)?;
        if file.apps.is_empty() {
            return Err(ConfigError::NoApps);
        }
        let mut registry = Self::new();
        for AppEntry { id, key } in file.apps {
            if !validate_id(&id) {
                return Err(ConfigError::InvalidAppId(id));
            }
            if key.is_empty() {
                return Err(ConfigError::EmptyKey(id));
            }
            if registry.apps.contains_key(&id) {
                return Err(ConfigError::DuplicateApp(id));
            }
            registry.apps.insert(id, key);
        }
        Ok(registry)
    }

    /// Reads and parses a TOML configuration file; see [`AppRegistry::from_toml_str`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_map_operations() {
        let mut r = AppRegistry::new();
        assert!(r.is_empty());
        assert_eq!(r.insert("a", "k1"), None);
        assert_eq!(r.insert("a", "k2").as_deref(), Some("k1"));
        r.insert("b", "k3");
        assert_eq!(r.len(), 2);
        assert_eq!(r.get("a"), Some("k2"));
        assert_eq!(r.get("c"), None);
        assert_eq!(r.iter().collect::<Vec<_>>(), [("a", "k2"), ("b", "k3")]);
    }

    #[test]
    fn dev_app_shape() {
        let r = AppRegistry::dev();
        assert_eq!(r.len(), 1);
        let (id, key) = r.iter().next().unwrap();
        assert!(id.starts_with("dev-") && id.len() == 12, "{id}");
        assert!(validate_id(id));
        assert_eq!(key.len(), 32);
        assert!(
            key.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(AppRegistry::dev(), r, "two dev registries must differ");
    }

    #[test]
    fn debug_hides_keys() {
        let mut r = AppRegistry::new();
        r.insert("app", "supersecret");
        let dbg = format!("{r:?}");
        assert!(dbg.contains("app") && !dbg.contains("supersecret"), "{dbg}");
    }

    #[test]
    fn toml_loading() {
        let r = AppRegistry::from_toml_str(
            "listen = \"0.0.0.0:8080\"\n\
             [[apps]]\nid = \"one\"\nkey = \"k1\"\n\
             [[apps]]\nid = \"two_2\"\nkey = \"k2\"\n",
        )
        .unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r.get("two_2"), Some("k2"));

        let err = |s: &str| AppRegistry::from_toml_str(s).unwrap_err();
        assert!(matches!(err(""), ConfigError::NoApps));
        assert!(matches!(
            err("[[apps]]\nid = \"a\"\n"),
            ConfigError::Parse(_)
        ));
        assert!(matches!(
            err("[[apps]]\nid = \"a\"\nkye = \"k\"\n"),
            ConfigError::Parse(_)
        ));
        assert!(matches!(
            err("[[apps]]\nid = \"a b\"\nkey = \"k\"\n"),
            ConfigError::InvalidAppId(_)
        ));
        assert!(matches!(
            err("[[apps]]\nid = \"a\"\nkey = \"\"\n"),
            ConfigError::EmptyKey(_)
        ));
        assert!(matches!(
            err("[[apps]]\nid = \"a\"\nkey = \"k\"\n[[apps]]\nid = \"a\"\nkey = \"j\"\n"),
            ConfigError::DuplicateApp(_)
        ));
    }

    #[test]
    fn load_from_file() {
        let dir = std::env::temp_dir().join(format!("huddle-auth-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("apps.toml");
        std::fs::write(&path, "[[apps]]\nid = \"x\"\nkey = \"y\"\n").unwrap();
        assert_eq!(AppRegistry::load(&path).unwrap().get("x"), Some("y"));
        assert!(matches!(
            AppRegistry::load(dir.join("missing.toml")),
            Err(ConfigError::Io { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
