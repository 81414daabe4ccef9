//! The signature formula and its verification.
//!
//! Invariants: [`sign`] is a pure function of its inputs; [`verify`] compares MACs
//! in constant time and reports [`AuthError::Expired`] only for signatures that are
//! otherwise genuine (so a client may react by renewing, not by giving up).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use thiserror::Error;

use super::AppRegistry;
use super::grant::Grant;
use crate::protocol::ErrorCode;

type HmacSha256 = Hmac<Sha256>;

/// Longest accepted signature validity: `ctime` may be at most this far after `now`
/// (seed 001, Table 4-1: "maximum: < 12 hours").
pub const MAX_SIGNATURE_LIFETIME_SECS: u64 = 12 * 60 * 60;

/// Validity used when a caller does not choose one (seed 001, Table 4-1: "recommended:
/// 2 hours").
pub const DEFAULT_SIGNATURE_LIFETIME_SECS: u64 = 2 * 60 * 60;

/// Why a join signature was rejected by [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    /// The `app_id` is not in the server's [`AppRegistry`]. Retrying with the same app
    /// id never helps; the server's app configuration (or the client's) is wrong.
    #[error("unknown app id {app_id:?}")]
    UnknownApp {
        /// The app id the client presented.
        app_id: String,
    },
    /// The signature is genuine but its expiry `ctime` is in the past. Retrying helps
    /// after fetching a fresh signature (the seed's `renewSignature` flow).
    #[error("signature expired at {ctime} (now {now})")]
    Expired {
        /// The expiry the signature was made for, Unix seconds.
        ctime: u64,
        /// The server's clock when checking, Unix seconds.
        now: u64,
    },
    /// The signature is genuine but `ctime` lies more than
    /// [`MAX_SIGNATURE_LIFETIME_SECS`] in the future. Retrying only helps with a
    /// signature made for a shorter validity (or after fixing a skewed clock).
    #[error("signature expiry {ctime} is more than 12 h ahead of now ({now})")]
    TooFarAhead {
        /// The expiry the signature was made for, Unix seconds.
        ctime: u64,
        /// The server's clock when checking, Unix seconds.
        now: u64,
    },
    /// The signature does not match the app key and the signed fields (wrong key,
    /// different room/user/ctime, or not hex at all). Retrying the same request never
    /// helps.
    #[error("signature invalid")]
    InvalidSignature,
}

impl AuthError {
    /// The wire error code for this failure.
    ///
    /// The seed defines exactly two signature codes (`signature-expired` event):
    /// 90100030 "signature expired", used for [`AuthError::Expired`] because the
    /// client can recover by renewing, and 90100031 "signature invalid", used for
    /// everything else since none of those is curable by renewing the same way and
    /// the seed gives no finer code.
    pub fn code(&self) -> ErrorCode {
        match self {
            AuthError::Expired { .. } => ErrorCode::SignatureExpired,
            AuthError::UnknownApp { .. }
            | AuthError::TooFarAhead { .. }
            | AuthError::InvalidSignature => ErrorCode::SignatureInvalid,
        }
    }
}

/// The content string that is signed: `app_id+room_id+user_id+ctime`, and
/// `+director` for a director signature ([`Grant`]).
fn content(app_id: &str, room_id: &str, user_id: &str, ctime: u64, grant: Grant) -> String {
    format!("{app_id}+{room_id}+{user_id}+{ctime}{}", grant.suffix())
}

/// Raw HMAC-SHA256 of the content string keyed with `app_key`.
fn mac_bytes(
    app_key: &str,
    app_id: &str,
    room_id: &str,
    user_id: &str,
    ctime: u64,
    grant: Grant,
) -> [u8; 32] {
    // HMAC accepts keys of any length, so this never takes the error branch; an empty
    // MAC would still never verify against a genuine one.
    match HmacSha256::new_from_slice(app_key.as_bytes()) {
        Ok(mut mac) => {
            mac.update(content(app_id, room_id, user_id, ctime, grant).as_bytes());
            mac.finalize().into_bytes().into()
        }
        Err(_) => [0; 32],
    }
}

/// Computes the join signature: lower-case hex of HMAC-SHA256 keyed with `app_key`
/// over `app_id + "+" + room_id + "+" + user_id + "+" + ctime` (ctime in decimal).
///
/// `ctime` is the time the signature **expires**, in Unix seconds.
pub fn sign(app_key: &str, app_id: &str, room_id: &str, user_id: &str, ctime: u64) -> String {
    sign_grant(app_key, app_id, room_id, user_id, ctime, Grant::Member)
}

/// Computes a signature that carries `grant`: [`sign`]'s for
/// [`Grant::Member`], the director signature (content + `+director`) for
/// [`Grant::Director`].
pub fn sign_grant(
    app_key: &str,
    app_id: &str,
    room_id: &str,
    user_id: &str,
    ctime: u64,
    grant: Grant,
) -> String {
    hex::encode(mac_bytes(app_key, app_id, room_id, user_id, ctime, grant))
}

/// Checks a join signature against the registry at time `now_unix` (Unix seconds).
///
/// Order: unknown app, then the signature itself (constant-time; hex of either case is
/// accepted), then `ctime` against `now_unix` (expired if `ctime < now_unix`, too far
/// ahead if `ctime > now_unix + 12 h`). Checking the MAC before the time means
/// [`AuthError::Expired`] is only ever reported for genuine signatures.
pub fn verify(
    registry: &AppRegistry,
    app_id: &str,
    room_id: &str,
    user_id: &str,
    ctime: u64,
    signature: &str,
    now_unix: u64,
) -> Result<(), AuthError> {
    verify_grant(
        registry, app_id, room_id, user_id, ctime, signature, now_unix,
    )
    .map(|_| ())
}

/// [`verify`], telling which [`Grant`] the signature carries: it is checked
/// against both forms (each comparison in constant time).
pub fn verify_grant(
    registry: &AppRegistry,
    app_id: &str,
    room_id: &str,
    user_id: &str,
    ctime: u64,
    signature: &str,
    now_unix: u64,
) -> Result<Grant, AuthError> {
    let key = registry.get(app_id).ok_or_else(|| AuthError::UnknownApp {
        app_id: app_id.to_owned(),
    })?;
    let presented = hex::decode(signature).map_err(|_| AuthError::InvalidSignature)?;
    let mut granted = None;
    for grant in Grant::ALL {
        let expected = mac_bytes(key, app_id, room_id, user_id, ctime, grant);
        if bool::from(expected.as_slice().ct_eq(presented.as_slice())) {
            granted = Some(grant);
        }
    }
    let Some(grant) = granted else {
        return Err(AuthError::InvalidSignature);
    };
    if ctime < now_unix {
        return Err(AuthError::Expired {
            ctime,
            now: now_unix,
        });
    }
    if ctime > now_unix.saturating_add(MAX_SIGNATURE_LIFETIME_SECS) {
        return Err(AuthError::TooFarAhead {
            ctime,
            now: now_unix,
        });
    }
    Ok(grant)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";
    const APP: &str = "dev-1a2b3c4d";
    const NOW: u64 = 1_700_000_000;
    const CTIME: u64 = 1_700_003_600;

    fn registry() -> AppRegistry {
        let mut r = AppRegistry::new();
        r.insert(APP, KEY);
        r
    }

    /// Vectors computed independently with Python:
    /// `hmac.new(key.encode(), msg.encode(), hashlib.sha256).hexdigest()`.
    #[test]
    fn sign_matches_independent_vectors() {
        assert_eq!(
            sign(KEY, APP, "room_1", "alice", CTIME),
            "7c120d4e4fd20a0d84a2a0465f83a05ebba9d8f12e2833fd48392eaf265518df"
        );
        assert_eq!(
            sign("secret", "app", "r", "u", 0),
            "2a6f519c2605e3ae4522403670b8477de7b72eea811dff2c657975675496ac6b"
        );
    }

    #[test]
    fn verify_accepts_genuine() {
        let sig = sign(KEY, APP, "room_1", "alice", CTIME);
        assert_eq!(
            verify(&registry(), APP, "room_1", "alice", CTIME, &sig, NOW),
            Ok(())
        );
        let upper = sig.to_ascii_uppercase();
        assert_eq!(
            verify(&registry(), APP, "room_1", "alice", CTIME, &upper, NOW),
            Ok(())
        );
        // Boundaries are inclusive: valid at ctime itself and at exactly now + 12 h.
        assert_eq!(
            verify(&registry(), APP, "room_1", "alice", CTIME, &sig, CTIME),
            Ok(())
        );
        let far = NOW + MAX_SIGNATURE_LIFETIME_SECS;
        let sig = sign(KEY, APP, "room_1", "alice", far);
        assert_eq!(
            verify(&registry(), APP, "room_1", "alice", far, &sig, NOW),
            Ok(())
        );
    }

    #[test]
    fn verify_rejections() {
        let r = registry();
        let sig = sign(KEY, APP, "room_1", "alice", CTIME);
        let err = verify(&r, "nope", "room_1", "alice", CTIME, &sig, NOW);
        assert_eq!(
            err,
            Err(AuthError::UnknownApp {
                app_id: "nope".into()
            })
        );

        for (room, user, ctime, s) in [
            ("room_2", "alice", CTIME, sig.as_str()),
            ("room_1", "bob", CTIME, sig.as_str()),
            ("room_1", "alice", CTIME + 1, sig.as_str()),
            ("room_1", "alice", CTIME, &sig[..62]),
            ("room_1", "alice", CTIME, ""),
            ("room_1", "alice", CTIME, "zz"),
        ] {
            assert_eq!(
                verify(&r, APP, room, user, ctime, s, NOW),
                Err(AuthError::InvalidSignature),
                "{room} {user} {ctime} {s}"
            );
        }
        let wrong_key = sign("other-key", APP, "room_1", "alice", CTIME);
        assert_eq!(
            verify(&r, APP, "room_1", "alice", CTIME, &wrong_key, NOW),
            Err(AuthError::InvalidSignature)
        );

        assert_eq!(
            verify(&r, APP, "room_1", "alice", CTIME, &sig, CTIME + 1),
            Err(AuthError::Expired {
                ctime: CTIME,
                now: CTIME + 1
            })
        );
        let far = NOW + MAX_SIGNATURE_LIFETIME_SECS + 1;
        let sig = sign(KEY, APP, "room_1", "alice", far);
        assert_eq!(
            verify(&r, APP, "room_1", "alice", far, &sig, NOW),
            Err(AuthError::TooFarAhead {
                ctime: far,
                now: NOW
            })
        );
        // An expired *and* forged signature is reported as invalid, not expired.
        assert_eq!(
            verify(&r, APP, "room_1", "alice", 5, &sig, NOW),
            Err(AuthError::InvalidSignature)
        );
    }

    /// Vector computed independently with Python over
    /// `"dev-1a2b3c4d+room_1+alice+1700003600+director"`.
    #[test]
    fn director_signatures_are_told_apart() {
        let r = registry();
        let director = sign_grant(KEY, APP, "room_1", "alice", CTIME, Grant::Director);
        assert_eq!(
            director,
            "3c6c415363be37b3dc7ceb507ad625f72a7b77d076606f9ee4720f6a70d6042a"
        );
        assert_eq!(
            verify_grant(&r, APP, "room_1", "alice", CTIME, &director, NOW),
            Ok(Grant::Director)
        );
        let member = sign(KEY, APP, "room_1", "alice", CTIME);
        assert_eq!(
            verify_grant(&r, APP, "room_1", "alice", CTIME, &member, NOW),
            Ok(Grant::Member)
        );
        // A director signature for someone else grants nothing.
        assert_eq!(
            verify_grant(&r, APP, "room_1", "bob", CTIME, &director, NOW),
            Err(AuthError::InvalidSignature)
        );
        assert_eq!(
            verify_grant(&r, APP, "room_1", "alice", CTIME, &director, CTIME + 1),
            Err(AuthError::Expired {
                ctime: CTIME,
                now: CTIME + 1
            })
        );
    }

    #[test]
    fn error_codes() {
        assert_eq!(
            AuthError::Expired { ctime: 1, now: 2 }.code().code(),
            90100030
        );
        assert_eq!(AuthError::InvalidSignature.code().code(), 90100031);
        assert_eq!(
            AuthError::UnknownApp {
                app_id: String::new()
            }
            .code(),
            ErrorCode::SignatureInvalid
        );
        assert_eq!(
            AuthError::TooFarAhead { ctime: 1, now: 2 }.code(),
            ErrorCode::SignatureInvalid
        );
    }
}
