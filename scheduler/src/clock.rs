//! Wall-clock time for the scheduler. Fire times are wall-clock instants (cron is about the
//! calendar), sleeps are tokio timers; the virtual clock ties the two together so that tests
//! under tokio's paused clock see the calendar advance with it.

use jiff::{SignedDuration, Timestamp};

/// Where "now" comes from.
#[derive(Clone, Copy, Debug)]
pub enum Clock {
    /// The system clock.
    System,
    /// `origin` at the tokio instant `start`, advancing with tokio's clock (which tests pause
    /// and advance at will).
    Virtual {
        origin: Timestamp,
        start: tokio::time::Instant,
    },
}

impl Clock {
    /// A virtual clock reading `origin` now.
    pub fn starting_at(origin: Timestamp) -> Self {
        Clock::Virtual {
            origin,
            start: tokio::time::Instant::now(),
        }
    }

    /// The current wall-clock time.
    pub fn now(&self) -> Timestamp {
        match self {
            Clock::System => Timestamp::now(),
            Clock::Virtual { origin, start } => {
                let elapsed =
                    SignedDuration::try_from(start.elapsed()).unwrap_or(SignedDuration::MAX);
                origin.checked_add(elapsed).unwrap_or(Timestamp::MAX)
            }
        }
    }

    /// How long until `at` (zero when it passed).
    pub fn until(&self, at: Timestamp) -> std::time::Duration {
        std::time::Duration::try_from(at.duration_since(self.now())).unwrap_or_default()
    }
}
