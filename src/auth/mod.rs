//! Access authentication (seed 001, chapter 4 "Access Authentication").
//!
//! Why this exists: a client may only join a room with a `signature` that an app
//! server computed from the app's secret `app_key`, so that the key never ships inside
//! client apps. This module owns the signature formula ([`sign`]), its verification at
//! join time ([`verify`]), the set of configured apps ([`AppRegistry`]), the optional
//! HTTP signature-distribution endpoint ([`signature_router`]) and the syntax rules for
//! the ids that take part in the signature ([`validate_id`], [`validate_user_name`]).
//!
//! Invariants:
//! - The signed content is `app_id + "+" + room_id + "+" + user_id + "+" + ctime`
//!   (the seed's sample code; the "+" is a literal character), HMAC-SHA256 keyed with
//!   `app_key`, rendered as lower-case hex. `ctime` is the **expiry** time in Unix
//!   seconds, not the creation time.
//! - A signature is accepted only while `now <= ctime <= now + 12 h` (the seed's
//!   maximum validity) and only after a constant-time comparison.
//! - `app_key`s are never logged or `Debug`-printed.

mod apps;
mod grant;
mod http;
mod signature;

pub use apps::{AppRegistry, ConfigError};
pub use grant::Grant;
pub use http::{ErrorBody, SignatureResponse, signature_router};
pub use signature::{
    AuthError, DEFAULT_SIGNATURE_LIFETIME_SECS, MAX_SIGNATURE_LIFETIME_SECS, sign, sign_grant,
    verify, verify_grant,
};

use std::time::{SystemTime, UNIX_EPOCH};

/// Longest accepted `roomId` / `userId`, in bytes (seed: `string[64]`).
pub const MAX_ID_LEN: usize = 64;

/// Longest accepted `userName`, in bytes of UTF-8 (seed: `string[256]`).
pub const MAX_USER_NAME_LEN: usize = 256;

/// Whether `s` is a valid `roomId` / `userId` (also used for app ids):
/// 1 to 64 characters, each an ASCII letter, digit, `-` or `_` (seed 001, FAQ).
///
/// Because `+` is excluded, the signed string `app+room+user+ctime` is unambiguous.
pub fn validate_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `s` is an acceptable `userName`: at most 256 bytes of UTF-8.
/// The empty string is accepted (the name is optional in the seed).
pub fn validate_user_name(s: &str) -> bool {
    s.len() <= MAX_USER_NAME_LEN
}

/// The current time in Unix seconds (0 if the system clock is before 1970).
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(validate_id("a"));
        assert!(validate_id("Room_1-x"));
        assert!(validate_id(&"a".repeat(64)));
        assert!(!validate_id(&"a".repeat(65)));
        assert!(!validate_id(""));
        assert!(!validate_id("a+b"));
        assert!(!validate_id("a b"));
        assert!(!validate_id("é"));
        assert!(!validate_id("a/b"));
    }

    #[test]
    fn user_names() {
        assert!(validate_user_name(""));
        assert!(validate_user_name("Zoë 🎧"));
        assert!(validate_user_name(&"x".repeat(256)));
        assert!(!validate_user_name(&"x".repeat(257)));
        // 86 three-byte characters = 258 bytes, although only 86 chars.
        assert!(!validate_user_name(&"€".repeat(86)));
    }

    #[test]
    fn clock_is_sane() {
        assert!(now_unix() > 1_600_000_000);
    }
}
