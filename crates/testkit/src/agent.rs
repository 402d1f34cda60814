//! An agent served in-process on a loopback port, for the agent's and the console's tests.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use gatehouse_agent::{app, Agent, AgentConfig};

#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(std::time::Duration::from_secs(15), &mut self.task)
            .await
            .expect("the agent shuts down within its grace period")
            .expect("the server task does not panic")
            .expect("the server ends cleanly");
    }
}

/// Serve the agent whose state is in `state_dir` on a free loopback port.
pub async fn start_agent(state_dir: &Path) -> Running {
    start_agent_with(state_dir, None).await
}

pub async fn start_agent_with(state_dir: &Path, service_url: Option<String>) -> Running {
    let config = AgentConfig::for_test(state_dir.to_owned());
    start_agent_config(match service_url {
        Some(url) => config.with_service_url(url),
        None => config,
    })
    .await
}

/// Serve an agent with any config (its `listen` is replaced by a free loopback port).
pub async fn start_agent_config(config: AgentConfig) -> Running {
    start_agent_at(config, "127.0.0.1:0".parse().expect("addr")).await
}

/// Serve an agent on a given address (an agent started again where it was).
pub async fn start_agent_at(config: AgentConfig, addr: SocketAddr) -> Running {
    let agent = Arc::new(Agent::load(config).expect("agent loads its state"));
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(app::serve(agent, listener, async {
        let _ = rx.await;
    }));
    Running {
        addr,
        stop: Some(tx),
        task,
    }
}
