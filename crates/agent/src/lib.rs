//! The Gatehouse agent: runs beside one service instance and answers the console over mutual
//! TLS. Enrollment pins a temporary certificate by fingerprint and trades a one-time token
//! for a fleet certificate; from then on only the fleet CA is trusted, both ways.

pub mod agent;
pub mod buffer;
pub mod checks;
pub mod config;
pub mod error;
pub mod fsutil;
pub mod identity;
pub mod ops;
pub mod server;
pub mod service;
pub mod state;
pub mod tail;

pub use agent::{initialise, new_enrollment, Agent, ApiError, Channel};
pub use config::{AgentConfig, CheckSettings, ConfigError, FirewallSettings, LogConfig, Settings};

/// The credential inventory and key fingerprints, where the console's tests find them.
pub mod credentials {
    pub use crate::ops::credentials::inventory;
    pub use crate::service::files::fingerprint;
}
