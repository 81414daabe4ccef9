//! Sessions whose connection dropped, kept for their client to take back.
//!
//! A joined session gets a resume token (128 random bits, hex) in its `joined`
//! reply and registers it here with its app, room and user. When its socket
//! fails (a read error or end of stream without a close frame), the session
//! does not leave its room: it parks for the resume window
//! ([`Limits::resume_window`](super::Limits::resume_window)) with its
//! publications, subscriptions and their links as they are, and the others
//! see nothing (no `peer-leave`, its streams stay listed). A `resume` request
//! on a new connection claims it here: the new connection's socket is handed
//! over ([`Handoff`]) to the parked session's task, which answers `resumed` on
//! it and carries on. A session whose window runs out unregisters its token
//! and leaves with reason 7.
//!
//! Invariants: a token maps to exactly one live session task; it is removed
//! (under this registry's lock) before that task tears its session down, so a
//! claim either reaches a task that will read it or is refused as unknown. A
//! claim whose app, room or user differs from the token's is refused and
//! changes nothing of the session it names. The lock is never held across an
//! `.await`.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use axum::extract::ws::WebSocket;
use tokio::sync::mpsc;

use crate::protocol::{AppId, ErrorCode, RequestId, RoomId, UserId};

/// Hex digits of a resume token (128 bits).
pub const TOKEN_HEX_DIGITS: usize = 32;

/// Capacity of a session's handoff channel (claiming connection → session).
/// One: a second claim while one is in flight is refused as unknown.
pub(crate) const HANDOFF_CAPACITY: usize = 1;

/// A new, unguessable resume token: 128 bits from the thread-local CSPRNG,
/// as 32 lower-case hex digits.
pub fn new_token() -> String {
    let bits: u128 = rand::random();
    format!("{bits:032x}")
}

/// Whether `token` has a token's syntax (32 lower-case hex digits).
pub fn token_syntax_ok(token: &str) -> bool {
    token.len() == TOKEN_HEX_DIGITS
        && token
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A new connection's socket, handed to the session it resumes, with the id
/// of the `resume` request the session answers on it.
pub(crate) struct Handoff {
    pub(crate) socket: WebSocket,
    pub(crate) id: RequestId,
}

/// Why a `resume` was refused.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    /// The token is not a token (length, characters). Not retryable as sent.
    #[error("resumeToken must be {TOKEN_HEX_DIGITS} lower-case hex digits")]
    Syntax,
    /// No session holds this token: its window ran out, it left, or the
    /// server restarted. Not retryable: join again.
    #[error("no session to resume with this token (expired, left, or the server restarted)")]
    Unknown,
    /// The token belongs to another app, room or user. Not retryable.
    #[error("the resume token was not issued to this app, room and user")]
    NotYours,
}

impl ResumeError {
    /// The seed error code for this refusal.
    pub fn code(&self) -> ErrorCode {
        match self {
            ResumeError::Syntax => ErrorCode::InvalidParameter,
            ResumeError::Unknown => ErrorCode::WebsocketReconnectTimeout,
            ResumeError::NotYours => ErrorCode::SignatureInvalid,
        }
    }
}

/// Who a token was issued to, and how to reach its session.
struct Entry {
    app_id: AppId,
    room_id: RoomId,
    user_id: UserId,
    handoff: mpsc::Sender<Handoff>,
}

/// What a `resume` presents.
pub(crate) struct Claim<'a> {
    pub(crate) app_id: &'a AppId,
    pub(crate) room_id: &'a RoomId,
    pub(crate) user_id: &'a UserId,
    pub(crate) token: &'a str,
}

/// Every live session's resume token.
#[derive(Default)]
pub(crate) struct Resumes {
    inner: Mutex<HashMap<String, Entry>>,
}

impl Resumes {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // Every mutation is a single insert/remove: the map is intact.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a session's token (again, after it was unregistered at the
    /// end of a window that a claim still caught).
    pub(crate) fn register(
        &self,
        token: &str,
        app_id: AppId,
        room_id: RoomId,
        user_id: UserId,
        handoff: mpsc::Sender<Handoff>,
    ) {
        self.lock().insert(
            token.to_owned(),
            Entry {
                app_id,
                room_id,
                user_id,
                handoff,
            },
        );
    }

    /// Removes a token; its session can no longer be claimed.
    pub(crate) fn unregister(&self, token: &str) {
        self.lock().remove(token);
    }

    /// Hands `handoff` to the session `claim` names. On refusal the socket
    /// comes back with the reason, and no session was touched.
    pub(crate) fn claim(
        &self,
        claim: &Claim<'_>,
        handoff: Handoff,
    ) -> Result<(), (ResumeError, Box<Handoff>)> {
        if !token_syntax_ok(claim.token) {
            return Err((ResumeError::Syntax, Box::new(handoff)));
        }
        let sessions = self.lock();
        let Some(entry) = sessions.get(claim.token) else {
            return Err((ResumeError::Unknown, Box::new(handoff)));
        };
        if entry.app_id != *claim.app_id
            || entry.room_id != *claim.room_id
            || entry.user_id != *claim.user_id
        {
            return Err((ResumeError::NotYours, Box::new(handoff)));
        }
        entry.handoff.try_send(handoff).map_err(|e| {
            // Full: another claim is in flight; closed: the session is ending.
            let handoff = match e {
                mpsc::error::TrySendError::Full(h) | mpsc::error::TrySendError::Closed(h) => h,
            };
            (ResumeError::Unknown, Box::new(handoff))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_128_bit_hex_and_differ() {
        let a = new_token();
        let b = new_token();
        assert!(token_syntax_ok(&a), "{a}");
        assert!(token_syntax_ok(&b), "{b}");
        assert_ne!(a, b);
    }

    #[test]
    fn token_syntax_is_strict() {
        assert!(!token_syntax_ok(""));
        assert!(!token_syntax_ok(&"a".repeat(31)));
        assert!(!token_syntax_ok(&"a".repeat(33)));
        assert!(!token_syntax_ok(&"A".repeat(32)));
        assert!(!token_syntax_ok(&"g".repeat(32)));
        assert!(token_syntax_ok(&"0123456789abcdef".repeat(2)));
    }
}
