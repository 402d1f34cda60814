//! The Gatehouse agent: runs beside one service instance and answers the console over mutual
//! TLS. Enrollment pins a temporary certificate by fingerprint and trades a one-time token
//! for a fleet certificate; from then on only the fleet CA is trusted, both ways.

/// A line on standard output for the command line (`check-config`, `init`): see
/// [`output::say`].
#[macro_export]
macro_rules! say {
    () => { $crate::output::say(format_args!("")) };
    ($($arg:tt)*) => { $crate::output::say(format_args!($($arg)*)) };
}

pub mod agent;
pub mod api;
pub mod app;
pub mod buffer;
pub mod checks;
pub mod clock;
pub mod config;
pub mod decisions;
pub mod enforce;
pub mod error;
pub mod fsutil;
pub mod grants;
pub mod identity;
pub mod journal;
pub mod logevent;
pub mod ops;
pub mod output;
pub mod policy;
pub mod probes;
pub mod service;
pub mod setup;
pub mod state;
pub mod tail;

pub use agent::Agent;
pub use config::{
    AgentConfig, CheckSettings, ConfigError, FirewallSettings, JournalUnit, LogConfig, LogOrigin,
    Settings,
};
pub use error::ApiError;
pub use identity::{initialise, new_enrollment, Channel};

/// The credential inventory and key fingerprints, where the console's tests find them.
pub mod credentials {
    pub use crate::ops::credentials::inventory;
}

/// Starting a loaded agent, where the console's tests and benchmarks find it:
/// `server::serve` recovers, tails and serves, as `gatehouse-agent run` does.
pub mod server {
    pub use crate::api::PeerAddr;
    pub use crate::app::{bind, serve};
}
