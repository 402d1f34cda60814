//! Structured logs to a daily rolling file in the data directory.
//!
//! The level comes from `GATEHOUSE_LOG` (an `EnvFilter` directive such as `debug` or
//! `gatehouse_core=trace`), `info` by default. Secrets never reach a log: they only exist as
//! [`crate::Sensitive`], whose `Debug` redacts.

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{Builder, Rotation};
use tracing_subscriber::EnvFilter;

use crate::{DataDir, Error, Result};

/// Environment variable holding the log filter.
pub const LOG_ENV: &str = "GATEHOUSE_LOG";

/// How many daily files are kept.
const KEEP_FILES: usize = 14;

/// Keeps the background log writer alive; logs are flushed when it drops.
#[derive(Debug)]
pub struct LogGuard(#[allow(dead_code, reason = "held only for its Drop")] WorkerGuard);

/// Install the global subscriber writing to `<data dir>/logs/<component>.YYYY-MM-DD.log`.
///
/// Calling it again in the same process is harmless: the first subscriber stays.
pub fn init(data_dir: &DataDir, component: &str) -> Result<LogGuard> {
    let dir = data_dir.logs();
    let appender = Builder::new()
        .rotation(Rotation::DAILY)
        .filename_prefix(component)
        .filename_suffix("log")
        .max_log_files(KEEP_FILES)
        .build(&dir)
        .map_err(|e| Error::Logging {
            path: dir.clone(),
            detail: e.to_string(),
        })?;
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new("info"));
    // try_init fails only when a subscriber is already installed, which is fine.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init();
    Ok(LogGuard(guard))
}
