//! The Gatehouse agent: runs beside one service instance and answers the console over mutual
//! TLS. Enrollment pins a temporary certificate by fingerprint and trades a one-time token
//! for a fleet certificate; from then on only the fleet CA is trusted, both ways.

/// A line on standard output for the command line (`check-config`, `init`, `setup`): a reader
/// that went away (`| head`) ends the program quietly, with the status SIGPIPE gives (141),
/// instead of a panic.
#[macro_export]
macro_rules! say {
    () => { $crate::say!("") };
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(141);
            }
            eprintln!("error: cannot write to standard output: {e}");
            std::process::exit(1);
        }
    }};
}

pub mod agent;
pub mod api;
pub mod app;
pub mod buffer;
pub mod checks;
pub mod clock;
pub mod config;
pub mod error;
pub mod fsutil;
pub mod grants;
pub mod identity;
pub mod journal;
pub mod logevent;
pub mod ops;
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
