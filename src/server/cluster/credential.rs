//! The node credential of a relay (`relay`): an ordinary join signature
//! made with the app's key (every node of a cluster holds the apps' keys),
//! and its renewal on the mirror's long-lived session at the owner.
//!
//! A signature's `ctime` is its expiry, at most 12 h ahead
//! (`auth::MAX_SIGNATURE_LIFETIME_SECS`), and a session does not outlive
//! it (docs/protocol.md §3 "Signature expiry and renewal"): the owner warns
//! the mirror's session (`signature-expired`, its notice before `ctime`) and
//! removes it at `ctime` (reason 6), which would end the mirror and send
//! the node's players away. So the mirror renews its credential
//! (`renew-signature`) when half its lifetime has passed, and at once when
//! the owner warns first; a refused or unanswered renewal is tried again
//! [`RETRY`] later, until `ctime`. Relay links (WHEP plays) hold no
//! session clock: their signature is checked once, at `POST`.
//!
//! [`Renewal`] is the sans-IO part: it takes the time and says when to
//! renew and with which request id; the mirror's task sends it.

use std::time::Duration;

use tokio::time::Instant;

use crate::protocol::{AppId, RequestId, RoomId, UserId};

/// How long a node credential lives by default: under the 12 h a server
/// accepts (`relay_credential_secs`).
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(11 * 3600);
/// The shortest lifetime configurable: a renewal every second.
pub const MIN_LIFETIME: Duration = Duration::from_secs(2);
/// How long after a refused or unanswered renewal the next try goes.
const RETRY: Duration = Duration::from_secs(1);
/// Request ids of renewals start here (the join was 1).
const FIRST_ID: u64 = 1000;

/// The node credential for a user of a room.
pub(crate) struct Credential {
    pub(crate) app_id: AppId,
    pub(crate) key: String,
    /// How long a signature made now stays valid.
    pub(crate) lifetime: Duration,
}

impl Credential {
    /// A signature for `user` in `room_id`, valid for the lifetime from now:
    /// `(ctime, signature)`.
    pub(crate) fn sign(&self, room_id: &RoomId, user: &UserId) -> (u64, String) {
        let ctime = crate::auth::now_unix() + self.lifetime.as_secs();
        let signature = crate::auth::sign(
            &self.key,
            self.app_id.as_str(),
            room_id.as_str(),
            user.as_str(),
            ctime,
        );
        (ctime, signature)
    }
}

/// When the mirror's session renews its credential, as a state machine:
///
/// ```text
///  Idle{at} ──at passed, or the owner warned──▶ Sent{id} ──ok──▶ Idle{now + lifetime/2}
///     ▲                                            │ error / no answer within RETRY × 5
///     └──────────────── Idle{now + RETRY} ◀────────┘
/// ```
#[derive(Debug)]
pub(crate) struct Renewal {
    lifetime: Duration,
    state: RenewalState,
    next_id: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RenewalState {
    /// The next renewal is due at `at`.
    Idle { at: Instant },
    /// A renewal went out as request `id` at `sent`.
    Sent { id: RequestId, sent: Instant },
}

/// What a reply to a renewal meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Not a reply to a renewal.
    NotMine,
    /// Accepted.
    Renewed,
    /// Refused: tried again soon.
    Refused,
}

impl Renewal {
    /// The credential of a session just joined with a signature made now.
    pub(crate) fn new(lifetime: Duration, now: Instant) -> Self {
        Self {
            lifetime,
            state: RenewalState::Idle {
                at: now + lifetime / 2,
            },
            next_id: FIRST_ID,
        }
    }

    /// When to look again ([`Renewal::due`]).
    pub(crate) fn wake_at(&self) -> Instant {
        match self.state {
            RenewalState::Idle { at } => at,
            RenewalState::Sent { sent, .. } => sent + RETRY * 5,
        }
    }

    /// The owner warned that the signature expires soon: renew now unless
    /// a renewal is out.
    pub(crate) fn warned(&mut self, now: Instant) {
        if let RenewalState::Idle { at } = &mut self.state {
            *at = (*at).min(now);
        }
    }

    /// The request id to send a renewal with, if one is due at `now` (an
    /// unanswered one counts as refused).
    pub(crate) fn due(&mut self, now: Instant) -> Option<RequestId> {
        if now < self.wake_at() {
            return None;
        }
        let id = RequestId(self.next_id);
        self.next_id += 1;
        self.state = RenewalState::Sent { id, sent: now };
        Some(id)
    }

    /// A reply (`ok`) or error to request `id`.
    pub(crate) fn answered(&mut self, id: RequestId, ok: bool, now: Instant) -> Answer {
        match self.state {
            RenewalState::Sent { id: sent, .. } if sent == id => {
                let after = if ok { self.lifetime / 2 } else { RETRY };
                self.state = RenewalState::Idle { at: now + after };
                if ok { Answer::Renewed } else { Answer::Refused }
            }
            _ => Answer::NotMine,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn renewals_come_at_half_life_on_a_warning_and_again_after_a_refusal() {
        let t0 = Instant::now();
        let mut renewal = Renewal::new(Duration::from_secs(10), t0);
        assert_eq!(renewal.due(t0 + Duration::from_secs(4)), None);
        let first = renewal
            .due(t0 + Duration::from_secs(5))
            .expect("due at half life");
        // Out: nothing more until answered (or given up on).
        assert_eq!(renewal.due(t0 + Duration::from_secs(6)), None);
        // Another request's reply is not this one's.
        assert_eq!(
            renewal.answered(RequestId(1), true, t0 + Duration::from_secs(6)),
            Answer::NotMine
        );
        assert_eq!(
            renewal.answered(first, true, t0 + Duration::from_secs(6)),
            Answer::Renewed
        );
        assert_eq!(renewal.due(t0 + Duration::from_secs(10)), None);
        // The owner warns first: renewed at once.
        renewal.warned(t0 + Duration::from_secs(7));
        let second = renewal
            .due(t0 + Duration::from_secs(7))
            .expect("due when warned");
        assert_ne!(first, second);
        // Refused: again a second later.
        assert_eq!(
            renewal.answered(second, false, t0 + Duration::from_secs(7)),
            Answer::Refused
        );
        assert_eq!(renewal.due(t0 + Duration::from_millis(7500)), None);
        let third = renewal.due(t0 + Duration::from_secs(8)).expect("retried");
        // Unanswered: given up on and sent again after RETRY × 5.
        assert_eq!(renewal.due(t0 + Duration::from_secs(12)), None);
        assert!(
            renewal
                .due(t0 + Duration::from_secs(13))
                .is_some_and(|id| id != third)
        );
    }
}
