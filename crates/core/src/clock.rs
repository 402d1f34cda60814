//! Time, passed in: the console asks its [`Clock`], so tests can move time (certificates
//! expiring while the laptop was closed, renewal coming due) without waiting. Nothing else in
//! the console reads the wall clock.

use std::fmt;
use std::sync::Arc;

use jiff::Timestamp;

#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> Timestamp + Send + Sync>);

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Self {
        // The one place the console reads the wall clock (tests/rules keeps it so).
        Clock(Arc::new(Timestamp::now))
    }

    /// Any source of time, e.g. a value a test moves forward.
    pub fn from_fn(f: impl Fn() -> Timestamp + Send + Sync + 'static) -> Self {
        Clock(Arc::new(f))
    }

    pub fn now(&self) -> Timestamp {
        (self.0)()
    }

    /// Unix seconds.
    pub fn unix(&self) -> i64 {
        self.now().as_second()
    }

    /// Unix microseconds, as events are stamped.
    pub fn micros(&self) -> i64 {
        self.now().as_microsecond()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Clock({})", self.now())
    }
}
