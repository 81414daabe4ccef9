//! Rejoin delays for kiosk mode: doubling from [`FIRST_DELAY`] up to [`MAX_DELAY`].

use std::time::Duration;

/// First retry delay.
pub const FIRST_DELAY: Duration = Duration::from_millis(500);
/// Longest retry delay.
pub const MAX_DELAY: Duration = Duration::from_secs(5);

/// Exponential backoff.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    /// The delay before the next attempt; each call doubles it.
    pub fn next_delay(&mut self) -> Duration {
        let d = FIRST_DELAY.saturating_mul(1 << self.failures.min(8));
        self.failures = self.failures.saturating_add(1);
        d.min(MAX_DELAY)
    }

    /// A join worked: start over.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn doubles_then_caps_then_resets() {
        let mut b = Backoff::default();
        assert_eq!(b.next_delay(), FIRST_DELAY);
        assert_eq!(b.next_delay(), FIRST_DELAY * 2);
        for _ in 0..20 {
            assert!(b.next_delay() <= MAX_DELAY);
        }
        b.reset();
        assert_eq!(b.next_delay(), FIRST_DELAY);
    }
}
