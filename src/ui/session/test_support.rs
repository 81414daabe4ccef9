//! What the session's end-to-end tests share.

use std::time::{Duration, Instant};

use super::RoomSession;

/// The app id the tests' servers accept.
pub const APP: &str = "ui-app";
/// Its key.
pub const KEY: &str = "ui-key";

/// Polls `session` every 20 ms until `check` holds, or panics after `timeout`.
pub fn poll_until(
    session: &mut RoomSession,
    timeout: Duration,
    what: &str,
    mut check: impl FnMut(&mut RoomSession) -> bool,
) {
    let deadline = Instant::now() + timeout;
    loop {
        session.poll();
        if check(session) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}; errors: {:?}",
            session.take_errors()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
