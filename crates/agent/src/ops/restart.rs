//! Restarting the service on the console's request, reported step by step.

use gatehouse_protocol::RestartResult;

use crate::service::Service;

/// Restart the service and wait for its liveness probe; a failure is an answer, not an error.
pub async fn restart(service: &Service<'_>) -> RestartResult {
    let started = std::time::Instant::now();
    let outcome = service.restart().await;
    let restart_ms = started.elapsed().as_millis() as u64;
    let mut steps = vec!["ran the restart command".to_owned()];
    match outcome {
        Ok(done) => {
            steps.extend(done);
            steps.push(format!(
                "verified: the service answers its liveness probe ({restart_ms} ms)"
            ));
            tracing::warn!(restart_ms, "service restarted");
            RestartResult {
                ok: true,
                steps,
                error: None,
                restart_ms,
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "service restart failed");
            RestartResult {
                ok: false,
                steps,
                error: Some(e),
                restart_ms,
            }
        }
    }
}
