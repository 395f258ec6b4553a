//! Wall-clock source. Durations are measured on tokio's clock; timestamps
//! that must agree with providers' (heartbeats) come from a [`Clock`].

use std::fmt::Debug;

use crate::model::Timestamp;

/// A source of wall-clock time. The testkit's world implements it so that
/// simulated heartbeats and the engine's timestamps agree under paused time.
pub trait Clock: Send + Sync + Debug + 'static {
    /// The current wall-clock time.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}
