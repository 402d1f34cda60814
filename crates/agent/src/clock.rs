//! Time, passed in: the agent asks its [`Clock`] (kept by [`crate::agent::Agent`]), so tests
//! can move time (a certificate expiring, a backup growing old) without waiting. Nothing else
//! in the agent reads the wall clock; elapsed time (`Instant`) is not a date and is not here.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The time now, in Unix microseconds.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> i64 + Send + Sync>);

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Self {
        Clock(Arc::new(|| {
            match SystemTime::now().duration_since(UNIX_EPOCH) {
                Ok(since) => i64::try_from(since.as_micros()).unwrap_or(i64::MAX),
                // A clock set before 1970 reads as the epoch rather than failing.
                Err(_) => 0,
            }
        }))
    }

    /// Any source of time in Unix microseconds, e.g. a value a test moves forward.
    pub fn from_fn(f: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        Clock(Arc::new(f))
    }

    /// Unix microseconds, as events are stamped.
    pub fn micros(&self) -> i64 {
        (self.0)()
    }

    /// Unix seconds.
    pub fn unix(&self) -> i64 {
        self.micros().div_euclid(1_000_000)
    }

    /// The time now as a date, for what is written with one (an enrollment code's expiry).
    pub fn date_time(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::from_unix_timestamp(self.unix())
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    }
}

/// How long before `now` (Unix seconds) a file time is; zero for one in the future.
pub fn age(now: i64, then: SystemTime) -> Duration {
    let then = crate::fsutil::unix_secs(then).unwrap_or(0);
    Duration::from_secs(u64::try_from(now.saturating_sub(then)).unwrap_or(0))
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Clock({})", self.micros())
    }
}
