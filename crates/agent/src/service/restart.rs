//! Restarting the service: its restart command, run with a time limit and its error output
//! kept for the message, then its health endpoint awaited.

use std::process::Output;
use std::time::Duration;

use super::Service;

impl Service<'_> {
    /// Run the restart command, then wait for the health endpoint to answer 2xx, all within
    /// the restart timeout (each).
    pub async fn restart(&self) -> Result<(), String> {
        let command = &self.settings.restart_command;
        let within = self.settings.restart_timeout;
        let output = run(command, within).await?;
        if !output.status.success() {
            let said = String::from_utf8_lossy(&output.stderr);
            let last = said.lines().last().unwrap_or("").trim();
            return Err(format!(
                "{} exited with {}{}",
                command
                    .first()
                    .map_or("the restart command", String::as_str),
                output.status,
                if last.is_empty() {
                    String::new()
                } else {
                    format!(": {last}")
                }
            ));
        }
        let health = self
            .settings
            .url
            .as_deref()
            .ok_or("no service_url is configured, so the restart cannot be checked")?;
        self.await_health(health, within).await
    }
}

/// Run `command` with no input, its error output captured, killed if it outlives `within`
/// or if the caller goes away (an abandoned rotation leaves no restart running).
async fn run(command: &[String], within: Duration) -> Result<Output, String> {
    let (program, args) = command
        .split_first()
        .ok_or("the restart command is empty")?;
    let running = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(within, running)
        .await
        .map_err(|_| {
            format!(
                "{} did not finish within {} s",
                command.join(" "),
                within.as_secs()
            )
        })?
        .map_err(|e| format!("cannot run {}: {e}", command.join(" ")))
}
