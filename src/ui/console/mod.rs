//! The broadcast console (issue 14 §2, `huddle --console`) and the kiosk's
//! side of it.
//!
//! * [`view`]: the console screen: program monitor, sources with tally
//!   marks, layout picker, local source controls, participants with
//!   Remove / Dismiss. Its requests go through
//!   [`RoomSession::direct`](super::session::RoomSession::direct).
//! * [`kiosk`]: a kiosk shows exactly what is on air, cut at the new
//!   sources' first decoded frames ([`follower`]).
//! * [`program_view`]: draws a program in its layout; both share it.
//! * [`reception`]: a kiosk receives only the on-air streams (all of them
//!   off air) and holds up to 8 others on standby (paused subscriptions),
//!   resuming a new source before the cut and pausing the old after.

pub mod follower;
pub mod kiosk;
pub mod program_view;
pub mod reception;
pub mod view;

pub use follower::ProgramFollower;
pub use view::ConsoleState;

use crate::client::Credential;

use super::session::CredentialSource;

/// The console signs as a director: an app key makes director signatures,
/// a signature URL is asked for one (`director=1`, `GET /signature`); a
/// fixed signature is used as it is.
pub fn director_credential(source: CredentialSource) -> CredentialSource {
    match source {
        CredentialSource::Ready(Credential::AppKey { key, valid_for }) => {
            CredentialSource::Ready(Credential::DirectorKey { key, valid_for })
        }
        CredentialSource::Fetch { url, token } if !url.contains("director=") => {
            let sep = if url.contains('?') { '&' } else { '?' };
            CredentialSource::Fetch {
                url: format!("{url}{sep}director=1"),
                token,
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests;
