//! Signature expiry of a joined session (seed 001 `signature-expired`,
//! `renewSignature`).
//!
//! A join's signature carries `ctime`, the Unix second after which it is no
//! longer valid. A session does not outlive it: [`ServerConfig::signature_expiry_notice`]
//! before `ctime` the client is told (`signature-expired`, 90100030), and once
//! `ctime` has passed without a `renew-signature` (or a `switch-role`, which
//! carries a fresh signature too) the session is removed with leave reason 6.
//!
//! [`SignatureClock`] is the sans-IO part: it takes the time as an argument and
//! says what is due when. The session's loop sleeps until it is due
//! (`Session::expiry_due`, [`until`]) and then handles the step
//! (`Session::on_expiry`); `renew-signature` is `Session::renew_signature`.
//! Cross-room relays keep a clock each (`cross_room.rs`): the session sleeps
//! until the earliest step of all, and a relay's expiry ends that relay only.
//!
//! Invariants: a renewal always moves the clock back to [`ExpiryState::Valid`]
//! with the new `ctime`, so a renewed signature gets its own warning; each
//! `ctime` is warned about at most once; a session is never expired before its
//! `ctime` has passed (the check `now ≤ ctime` of a join is inclusive).
//!
//! [`ServerConfig::signature_expiry_notice`]: crate::server::ServerConfig::signature_expiry_notice

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::WebSocket;

use super::{Flow, Joined, RequestError, Session, unix_now};
use crate::auth;
use crate::protocol::{ErrorCode, Event, LeaveReason, Reply, ServerMessage};

/// Where a session's signature stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExpiryState {
    /// Not yet within the notice period: nothing said.
    Valid,
    /// The client was told; the session ends at `ctime` unless renewed.
    Warned,
}

/// What is due next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExpiryStep {
    /// Tell the client (`signature-expired`, 90100030) that `ctime` is near.
    Warn {
        /// The expiry the client is told about.
        ctime: u64,
    },
    /// `ctime` has passed without a renewal: remove the session (reason 6).
    Expire,
}

/// The expiry of one session's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SignatureClock {
    ctime: u64,
    state: ExpiryState,
}

impl SignatureClock {
    /// A clock for a signature that expires at `ctime` (Unix seconds).
    pub(crate) fn new(ctime: u64) -> Self {
        Self {
            ctime,
            state: ExpiryState::Valid,
        }
    }

    /// A verified new signature replaces the old one, whatever its `ctime`.
    /// One with the same `ctime` changes nothing: it was warned about already
    /// (a client renewing within the same second must not be warned again,
    /// and renew again, in a loop).
    pub(crate) fn renew(&mut self, ctime: u64) {
        if ctime != self.ctime {
            *self = Self::new(ctime);
        }
    }

    /// The next step and when it is due, as a time since the Unix epoch:
    /// the warning `notice` before `ctime` (at once if that is already past),
    /// the expiry once second `ctime` is over.
    pub(crate) fn next(&self, notice: Duration) -> (Duration, ExpiryStep) {
        let expires = Duration::from_secs(self.ctime.saturating_add(1));
        match self.state {
            ExpiryState::Valid => (
                Duration::from_secs(self.ctime).saturating_sub(notice),
                ExpiryStep::Warn { ctime: self.ctime },
            ),
            ExpiryState::Warned => (expires, ExpiryStep::Expire),
        }
    }

    /// The step `next` announced is done (or due at `now`, since the epoch):
    /// returns it, or `None` when it is not due yet.
    pub(crate) fn fire(&mut self, now: Duration, notice: Duration) -> Option<ExpiryStep> {
        let (due, step) = self.next(notice);
        if now < due {
            return None;
        }
        if let ExpiryStep::Warn { .. } = step {
            self.state = ExpiryState::Warned;
        }
        Some(step)
    }
}

/// Now, as a time since the Unix epoch (the clock signatures are made on).
pub(crate) fn unix_time() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

/// Completes at `due` (a time since the Unix epoch, as [`SignatureClock::next`]
/// gives it), or never when there is nothing due. The wall clock is read once:
/// a clock step while waiting delays or hastens the step by as much, and
/// [`SignatureClock::fire`] checks again when it wakes.
pub(crate) async fn until(due: Option<Duration>) {
    match due {
        Some(due) => tokio::time::sleep(due.saturating_sub(unix_time())).await,
        None => std::future::pending().await,
    }
}

impl Session {
    /// Checks a fresh signature of the caller (a `switch-role`'s, a
    /// `renew-signature`'s) exactly as `join` does: same fields, same codes.
    pub(super) fn verify_fresh(
        &self,
        ctime: u64,
        signature: &str,
    ) -> Result<(&Joined, auth::Grant), RequestError> {
        let joined = self.joined()?;
        let grant = auth::verify_grant(
            &self.shared.config.apps,
            joined.app_id.as_str(),
            joined.room_id.as_str(),
            joined.me.user_id.as_str(),
            ctime,
            signature,
            unix_now(),
        )?;
        Ok((joined, grant))
    }

    /// `renew-signature`: a verified signature replaces the session's; a
    /// refused one changes nothing.
    pub(super) fn renew_signature(
        &mut self,
        ctime: u64,
        signature: &str,
        room_id: Option<crate::protocol::RoomId>,
    ) -> Result<Reply, RequestError> {
        if let Some(room_id) = room_id
            && self.joined.as_ref().is_some_and(|j| j.room_id != room_id)
        {
            return self.renew_relay_signature(room_id, ctime, signature);
        }
        let (_, grant) = self.verify_fresh(ctime, signature)?;
        if let Some(joined) = &mut self.joined {
            joined.signature.renew(ctime);
            // The signature in force decides: a plain renewal ends a
            // director's grant, a director renewal gives one.
            joined.grant = grant;
        }
        tracing::debug!(session = self.id.0, ctime, "signature renewed");
        Ok(Reply::Ok)
    }

    /// When the session's signature clock, or a relay's, has a step due
    /// (none before join).
    pub(super) fn expiry_due(&self) -> Option<Duration> {
        let notice = self.shared.config.signature_expiry_notice;
        let own = self.joined.as_ref().map(|j| j.signature.next(notice).0)?;
        Some(
            self.relays_expiry_due(notice)
                .map_or(own, |relays| relays.min(own)),
        )
    }

    /// The signature clock's step is due: warn the client, or end the session
    /// (reason 6) when its signature has run out.
    pub(super) async fn on_expiry(&mut self, socket: &mut WebSocket) -> Flow {
        let notice = self.shared.config.signature_expiry_notice;
        let Some(joined) = &mut self.joined else {
            return Flow::Continue;
        };
        match joined.signature.fire(unix_time(), notice) {
            None => self.on_relays_expiry(socket).await,
            Some(ExpiryStep::Warn { ctime }) => {
                let event = Event::SignatureExpired {
                    code: ErrorCode::SignatureExpired,
                    message: format!("the signature expires at {ctime}; renew it before then"),
                    ctime,
                };
                match self.send(socket, &ServerMessage::Event { event }).await {
                    Ok(()) => self.on_relays_expiry(socket).await,
                    Err(e) => e.into(),
                }
            }
            Some(ExpiryStep::Expire) => {
                tracing::info!(
                    session = self.id.0,
                    "signature expired; removing the session"
                );
                Flow::Ban(LeaveReason::SignatureExpired)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTICE: Duration = Duration::from_secs(60);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn warns_notice_before_ctime_then_expires_after_it() {
        let mut clock = SignatureClock::new(1_000);
        assert_eq!(
            clock.next(NOTICE),
            (secs(940), ExpiryStep::Warn { ctime: 1_000 })
        );
        assert_eq!(clock.fire(secs(939), NOTICE), None);
        assert_eq!(
            clock.fire(secs(940), NOTICE),
            Some(ExpiryStep::Warn { ctime: 1_000 })
        );
        // Warned once: next is the expiry, after second 1000 is over.
        assert_eq!(clock.next(NOTICE), (secs(1_001), ExpiryStep::Expire));
        assert_eq!(clock.fire(secs(1_000), NOTICE), None);
        assert_eq!(
            clock.fire(Duration::from_millis(1_000_999), NOTICE),
            None,
            "ctime itself is still valid"
        );
        assert_eq!(clock.fire(secs(1_001), NOTICE), Some(ExpiryStep::Expire));
    }

    #[test]
    fn a_renewal_starts_over_with_its_own_warning() {
        let mut clock = SignatureClock::new(1_000);
        assert!(clock.fire(secs(950), NOTICE).is_some());
        clock.renew(5_000);
        assert_eq!(clock.fire(secs(1_001), NOTICE), None, "old ctime is gone");
        assert_eq!(
            clock.next(NOTICE),
            (secs(4_940), ExpiryStep::Warn { ctime: 5_000 })
        );
    }

    #[test]
    fn renewing_with_the_same_ctime_is_not_warned_again() {
        let mut clock = SignatureClock::new(1_000);
        assert!(clock.fire(secs(950), NOTICE).is_some());
        clock.renew(1_000);
        assert_eq!(clock.next(NOTICE), (secs(1_001), ExpiryStep::Expire));
    }

    #[test]
    fn a_short_signature_is_warned_about_at_once() {
        let mut clock = SignatureClock::new(30);
        assert_eq!(clock.next(NOTICE).0, Duration::ZERO);
        assert_eq!(
            clock.fire(secs(10), NOTICE),
            Some(ExpiryStep::Warn { ctime: 30 })
        );
        assert_eq!(clock.fire(secs(10), NOTICE), None, "warned only once");
    }
}
