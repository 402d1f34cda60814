//! The agent's life, in order: load (resolve the config, read the state directory) →
//! recover (roll back a rotation a stop interrupted, before anything is served) → tail (follow
//! the logs on a thread of its own) → enforce (the policy's rules over what is read) → serve (the API until the shutdown signal) → stop the
//! tailer → let open connections finish. `main.rs` calls [`run`]; tests and benchmarks that
//! load an [`Agent`] themselves call [`serve`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::agent::Agent;
use crate::api;
use crate::config::AgentConfig;
use crate::enforce;
use crate::tail;

/// How often the blocks the agent made are checked to still be in the firewall.
const REPROVE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Load the agent for `config`, listen where it says, and serve until `shutdown` resolves.
pub async fn run(
    config: AgentConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let agent = Arc::new(Agent::load(config)?);
    let listener = bind(agent.settings().listen).await?;
    tracing::info!(
        listen = %listener.local_addr()?,
        profile = %agent.settings().profile_name,
        enrolled = agent.is_enrolled(),
        "agent started"
    );
    serve(agent, listener, shutdown).await
}

/// Recover, tail and serve a loaded agent until `shutdown` resolves, then stop in order.
pub async fn serve(
    agent: Arc<Agent>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    // A rotation interrupted by a stop is rolled back before anything else is served.
    agent.recover_rotation(agent.clock().unix()).await;
    let tailing = Tailing::start(agent.clone());
    let reproving = tokio::spawn({
        let agent = agent.clone();
        async move {
            let mut every = tokio::time::interval(REPROVE_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                agent.reprove_blocks().await;
            }
        }
    });
    // The policy's rules, run over every failed sign-in as it is buffered.
    let enforcing = tokio::spawn(enforce::run(agent.clone()));
    let served = api::serve(agent.clone(), listener, shutdown).await;
    enforcing.abort();
    reproving.abort();
    tailing.stop().await;
    served?.drain().await;
    // What still runs ends here, as it would with the process: a rotation is rolled back
    // from its journal at the next start.
    agent.end_ops();
    Ok(())
}

/// Bind the configured address.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))
}

/// The log tailer, on a blocking thread of its own. Told to stop when dropped too: a runtime
/// that shuts down while `serve` is still running drops it there, and waits for its blocking
/// threads, which would otherwise be forever.
struct Tailing {
    stop: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Tailing {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Tailing {
    fn start(agent: Arc<Agent>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let task = {
            let stop = stop.clone();
            tokio::task::spawn_blocking(move || {
                let logs = match agent.settings().logs() {
                    Ok(logs) => logs,
                    Err(e) => {
                        tracing::error!(error = %e, "no logs to follow");
                        &[]
                    }
                };
                tail::follow(logs, agent.buffer(), agent.clock(), &stop);
            })
        };
        Tailing {
            stop,
            task: Some(task),
        }
    }

    async fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(task) = self.task.take() {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "the log reader stopped abnormally");
            }
        }
    }
}
