//! Key rotation end to end: N Sekha fixture services (default 50), each with an agent on
//! loopback, enrolled in one console with a real keychain. Measures one rotation (median of
//! 5), with and without the service's own restart time, then a bulk rotation of all N.
//!
//!     bench/rotation.sh [N]     (runs this in a private D-Bus session with gnome-keyring)

use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_agent::state::StateDir;
use gatehouse_agent::{agent::Agent, server, AgentConfig};
use gatehouse_core::{AddInstance, Console, DataDir, Vault, BULK_CONCURRENCY};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(50);
    gatehouse_pki::install_provider();
    let tmp = tempfile::tempdir()?;
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let console = Console::open(
        DataDir::at(tmp.path().join("console")),
        Vault::new(format!("Gatehouse rotation bench {}", std::process::id())),
    )?;
    let mut pid_files = Vec::new();
    let mut stops = Vec::new();
    for i in 0..n {
        let name = format!("bench-{i}");
        let dir = tmp.path().join(&name);
        let service = dir.join("service");
        std::fs::create_dir_all(&service)?;
        std::fs::write(
            service.join("config.toml"),
            format!("mcp_api_key = \"{}\"\n", "b".repeat(43)),
        )?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let pid = dir.join("service.pid");
        let command = format!(
            "sh {} {} --profile sekha --port {port} --workdir {} --log {}",
            root.join("demo/restart_fixture.sh").display(),
            pid.display(),
            service.display(),
            dir.join("service.log").display()
        );
        std::process::Command::new("sh")
            .args(["-c", &command])
            .status()?;
        pid_files.push(pid);
        let health = format!("http://127.0.0.1:{port}/health");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !reqwest::get(&health)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            anyhow::ensure!(Instant::now() < deadline, "fixture {i} did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let state = dir.join("agent");
        let (code, _) = gatehouse_agent::initialise(
            &StateDir::new(&state),
            time::OffsetDateTime::now_utc(),
            Duration::from_secs(900),
            [i as u8; 20],
        )?;
        let agent = Arc::new(Agent::load(AgentConfig {
            listen: "127.0.0.1:0".parse()?,
            profile: "sekha".into(),
            state_dir: state,
            service_url: Some(health),
            logs: Vec::new(),
            buffer_capacity: 1000,
            checks: Default::default(),
            firewall: Default::default(),
            profiles_dir: None,
            service_dir: Some(service),
            restart_command: Some(vec!["sh".into(), "-c".into(), command]),
            restart_timeout_secs: Some(30),
        })?);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server::serve(agent, listener, async {
            let _ = rx.await;
        }));
        stops.push(tx);
        console
            .fleet
            .add_instance(AddInstance {
                name,
                address: addr.to_string(),
                code: code.to_string(),
                profile: String::new(),
            })
            .await?;
    }
    println!("{n} Sekha fixtures with agents enrolled");

    let mut total = Vec::new();
    let mut without_restart = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let (result, _key) = console
            .rotation
            .rotate_key("bench-0", "mcp_api_key")
            .await?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        anyhow::ensure!(result.committed, "rotation failed: {:?}", result.error);
        total.push(ms);
        without_restart.push(ms - result.restart_ms as f64);
    }
    println!(
        "one rotation: median {:.0} ms end to end, {:.0} ms excluding the service's restart",
        median(total),
        median(without_restart)
    );

    let targets: Vec<(String, String)> = (0..n)
        .map(|i| (format!("bench-{i}"), "mcp_api_key".to_owned()))
        .collect();
    let started = Instant::now();
    let (items, keys) = console
        .rotation
        .rotate_many(&targets, BULK_CONCURRENCY, |_, _| {})
        .await;
    let secs = started.elapsed().as_secs_f64();
    let committed = items
        .iter()
        .filter(|i| i.result.as_ref().is_some_and(|r| r.committed))
        .count();
    let restart_ms: u64 = items
        .iter()
        .filter_map(|i| i.result.as_ref())
        .map(|r| r.restart_ms)
        .sum();
    println!(
        "bulk rotation of {n} instances ({BULK_CONCURRENCY} at a time): {secs:.1} s, {committed} committed, {} keys handed out; the services' restarts took {:.1} s in all",
        keys.len(),
        restart_ms as f64 / 1000.0
    );
    for tx in stops {
        let _ = tx.send(());
    }
    for pid in pid_files {
        if let Ok(pid) = std::fs::read_to_string(pid) {
            let _ = std::process::Command::new("kill").arg(pid.trim()).status();
        }
    }
    for i in 0..n {
        for entry in [
            format!("instance/bench-{i}/client.key"),
            format!("instance/bench-{i}/key/mcp_api_key"),
        ] {
            let _ = console.vault().delete(&entry);
        }
    }
    let _ = console.vault().delete("fleet-ca.key");
    let _ = console.vault().delete("audit-hmac.key");
    Ok(())
}
