//! The agent's configuration, in two levels: [`AgentConfig`] is the TOML file as written
//! (serde, unknown keys refused), and [`Settings`] is what the agent runs with, resolved from
//! it once at start: the profile parsed, the logs chosen, each subsystem's part with its
//! defaults applied.

mod file;
mod settings;

pub use file::{AgentConfig, CheckSettings, FirewallSettings, JournalUnit, LogConfig, LogOrigin};
pub use settings::{CheckPolicy, FirewallPolicy, Liveness, ServiceSettings, Settings};

pub use crate::error::ConfigError;
