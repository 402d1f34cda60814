//! Fleet benchmark: N agent processes on loopback (default 100), enrolled by one console.
//!
//! Prints the round trip of `/v1/info` over an established connection (p50, p99 over 1,000
//! calls), the time of a fresh mutual-TLS handshake plus first request, and the time to
//! refresh the whole fleet with bounded concurrency. Needs a Secret Service; run it through
//! `bench/fleet.sh`, which builds in release mode and provides one.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gatehouse_core::{AddInstance, Console, DataDir, Vault, REFRESH_CONCURRENCY};
use gatehouse_pki as pki;

struct Agents(Vec<Child>);

impl Drop for Agents {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn agent_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("exe");
    // target/<profile>/examples/fleet -> target/<profile>/gatehouse-agent
    let path = exe
        .parent()
        .and_then(Path::parent)
        .map(|p| p.join("gatehouse-agent"))
        .expect("target dir");
    assert!(
        path.is_file(),
        "build gatehouse-agent first: {}",
        path.display()
    );
    path
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let count: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100);
    gatehouse_core::install_crypto_provider();
    let tmp = tempfile::tempdir()?;
    let agent = agent_binary();

    let mut children = Agents(Vec::new());
    let mut endpoints = Vec::new();
    for i in 0..count {
        let dir = tmp.path().join(format!("agent-{i:03}"));
        std::fs::create_dir_all(&dir)?;
        let port = free_port();
        let config = dir.join("agent.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\nprofile = \"sekha\"\nstate_dir = \"{}\"\n",
                dir.join("state").display()
            ),
        )?;
        let code_file = dir.join("code");
        let init = Command::new(&agent)
            .args(["init", "--config"])
            .arg(&config)
            .arg("--code-file")
            .arg(&code_file)
            .stdout(Stdio::null())
            .status()?;
        anyhow::ensure!(init.success(), "agent init failed");
        children.0.push(
            Command::new(&agent)
                .args(["run", "--config"])
                .arg(&config)
                .stderr(Stdio::null())
                .spawn()?,
        );
        endpoints.push((
            format!("agent-{i:03}"),
            format!("127.0.0.1:{port}"),
            std::fs::read_to_string(code_file)?,
        ));
    }
    for (_, address, _) in &endpoints {
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(address).is_err() {
            anyhow::ensure!(Instant::now() < deadline, "{address} did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    let console = Console::open(
        DataDir::at(tmp.path().join("console")),
        Vault::new("Gatehouse bench"),
    )?;
    let started = Instant::now();
    for (name, address, code) in &endpoints {
        console
            .fleet
            .add_instance(AddInstance {
                name: name.clone(),
                address: address.clone(),
                code: code.clone(),
                profile: String::new(),
            })
            .await?;
    }
    let enroll_total = started.elapsed();

    // Round trip over an established connection.
    let first = &endpoints[0].0;
    console.fleet.ping(first).await?;
    let mut rtts = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let t = Instant::now();
        console.fleet.ping(first).await?;
        rtts.push(t.elapsed());
    }
    rtts.sort();

    // A fresh handshake each time: a new client, so a new TCP and TLS 1.3 connection.
    let db = gatehouse_core::Db::open(&tmp.path().join("console/gatehouse.sqlite3"))?;
    let ca_pem = db
        .instances()
        .fleet_ca_cert()?
        .ok_or_else(|| anyhow::anyhow!("the fleet CA was made at the first enrollment"))?;
    let client_pem = db
        .instances()
        .get(first)?
        .ok_or_else(|| anyhow::anyhow!("the instance was enrolled"))?
        .client_cert_pem;
    let key = console
        .vault()
        .load(&format!("instance/{first}/client.key"))?;
    let key = pki::KeyPem::from_pem(String::from_utf8(key.expose().clone())?)?;
    let address: std::net::SocketAddr = endpoints[0].1.parse()?;
    let mut fresh = Vec::with_capacity(200);
    for _ in 0..200 {
        let config =
            pki::console_client_config(&ca_pem, first, &client_pem, &key, Default::default())?;
        let t = Instant::now();
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(config)
            .resolve(&pki::agent_name(first)?, address)
            .no_proxy()
            .build()?;
        let response = client
            .get(format!(
                "https://{}:{}/v1/info",
                pki::agent_name(first)?,
                address.port()
            ))
            .send()
            .await?;
        anyhow::ensure!(response.status().is_success(), "fresh request failed");
        response.bytes().await?;
        fresh.push(t.elapsed());
    }
    fresh.sort();

    // The whole fleet, as the scheduler does it.
    let mut refreshes = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let summary = console.fleet.refresh_all().await?;
        refreshes.push(t.elapsed());
        anyhow::ensure!(summary.failed == 0, "{} agents not reached", summary.failed);
    }
    let cold_console = Console::open(
        DataDir::at(tmp.path().join("console")),
        Vault::new("Gatehouse bench"),
    )?;
    let t = Instant::now();
    cold_console.fleet.refresh_all().await?;
    let cold = t.elapsed();
    refreshes.sort();

    println!("fleet benchmark: {count} agent processes on loopback, release build");
    println!(
        "  enrollment, one after another:   {:8.1} ms total, {:.1} ms per agent",
        ms(enroll_total),
        ms(enroll_total) / count as f64
    );
    println!(
        "  /v1/info round trip (1000 calls, established connection): p50 {:.3} ms, p99 {:.3} ms",
        ms(percentile(&rtts, 0.5)),
        ms(percentile(&rtts, 0.99))
    );
    println!(
        "  fresh mTLS handshake + first request (200): p50 {:.3} ms, p99 {:.3} ms",
        ms(percentile(&fresh, 0.5)),
        ms(percentile(&fresh, 0.99))
    );
    println!(
        "  refresh all {count} (concurrency {REFRESH_CONCURRENCY}): warm median {:.1} ms (min {:.1}, max {:.1}); cold (new console, new connections) {:.1} ms",
        ms(refreshes[refreshes.len() / 2]),
        ms(refreshes[0]),
        ms(refreshes[refreshes.len() - 1]),
        ms(cold)
    );
    for (name, _, _) in &endpoints {
        let _ = console
            .vault()
            .delete(&format!("instance/{name}/client.key"));
    }
    let _ = console.vault().delete("fleet-ca.key");
    Ok(())
}
