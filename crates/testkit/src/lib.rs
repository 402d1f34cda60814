//! What the test suites share, in one place: an agent served in-process on loopback
//! ([`agent`]), loopback ports ([`ports`]), files written and stamped with the time a test
//! passes in ([`files`]), processes a test starts, stopped however it ends ([`process`]), and a
//! compromised agent answering what a test chooses ([`rogue`]).

pub mod agent;
pub mod files;
pub mod ports;
pub mod process;
pub mod rogue;

pub use agent::{start_agent, start_agent_at, start_agent_config, start_agent_with, Running};
pub use ports::{free_port, wait_listening};
pub use rogue::{start_rogue, Rogue};
