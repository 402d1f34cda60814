//! Processes a test starts, stopped when the test ends, however it ends.

use std::path::PathBuf;
use std::process::Child;

/// A child process, killed (and reaped) when dropped.
#[derive(Debug)]
pub struct Owned(pub Child);

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A service started through `demo/restart_fixture.sh`. When this is dropped, the process
/// its pid file names then is stopped: the agent may have restarted the service since, and
/// that new process belongs to the test too.
#[derive(Debug)]
pub struct PidFile(pub PathBuf);

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.0) {
            let _ = std::process::Command::new("kill").arg(pid.trim()).status();
        }
    }
}
