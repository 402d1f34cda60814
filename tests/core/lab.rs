//! A console with a movable clock and its own keychain service, and agents on loopback.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_agent::state::StateDir;
use gatehouse_core::{AddInstance, Clock, Console, DataDir, Vault};
use gatehouse_pki as pki;
use time::OffsetDateTime;

use crate::support::{require_secret_service, unique_service};

pub use gatehouse_testkit::{start_agent, start_agent_at, start_agent_config, Running};

/// A console with its own data directory, keychain service and movable clock.
pub struct Lab {
    _tmp: tempfile::TempDir,
    pub data: PathBuf,
    pub agents: PathBuf,
    pub console: Console,
    now: Arc<Mutex<OffsetDateTime>>,
}

impl Lab {
    pub fn new() -> Self {
        require_secret_service();
        pki::install_provider();
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("console");
        let agents = tmp.path().join("agents");
        let now = Arc::new(Mutex::new(OffsetDateTime::now_utc()));
        let clock_now = now.clone();
        let clock = Clock::from_fn(move || {
            let now = *clock_now.lock().expect("clock");
            jiff::Timestamp::from_nanosecond(now.unix_timestamp_nanos())
                .expect("the lab's clock is within jiff's range")
        });
        let console = Console::open_with_clock(
            DataDir::at(&data),
            Vault::new(unique_service("fleet")),
            clock,
        )
        .expect("console");
        Lab {
            _tmp: tmp,
            data,
            agents,
            console,
            now,
        }
    }

    /// Sync until `want` events are stored (an agent reads its logs every 250 ms).
    pub async fn sync_until(&self, name: &str, want: u64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut total = 0;
        while total < want {
            total += self
                .console
                .timeline
                .sync_instance(name)
                .await
                .expect("sync");
            assert!(
                std::time::Instant::now() < deadline,
                "{total} of {want} events synced within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The console as it would be after a restart: the same data directory and keychain
    /// service, nothing kept in memory.
    pub fn restarted(&self) -> Console {
        Console::open(
            DataDir::at(&self.data),
            Vault::new(self.console.vault().service()),
        )
        .expect("the console opens again")
    }

    /// The fingerprint this lab's fleet gives `value` (keyed with its fingerprint key).
    pub fn fingerprint(&self, value: &str) -> String {
        self.console
            .rotation
            .fingerprint_of(value)
            .expect("the fleet's fingerprint key")
    }

    /// The console's "now".
    pub fn now(&self) -> OffsetDateTime {
        *self.now.lock().expect("clock")
    }

    pub fn set_clock(&self, at: OffsetDateTime) {
        *self.now.lock().expect("clock") = at;
    }

    /// `gatehouse-agent init` for a new agent; returns its state dir and code.
    pub fn init_agent(&self, name: &str, issued_at: OffsetDateTime) -> (PathBuf, String) {
        let dir = self.agents.join(name);
        let (code, _) = gatehouse_agent::initialise(
            &StateDir::new(&dir),
            issued_at,
            Duration::from_secs(15 * 60),
            [name.len() as u8; 20],
        )
        .expect("agent init");
        (dir, code.to_string())
    }

    pub async fn agent(&self, name: &str) -> (Running, String) {
        let (dir, code) = self.init_agent(name, OffsetDateTime::now_utc());
        (start_agent(&dir).await, code)
    }

    /// An initialised agent that follows `log` (nginx combined) with a bounded buffer.
    pub async fn agent_following(
        &self,
        name: &str,
        log: &std::path::Path,
        capacity: u64,
    ) -> (Running, String) {
        let (dir, code) = self.init_agent(name, OffsetDateTime::now_utc());
        let agent = start_agent_config(gatehouse_agent::AgentConfig {
            buffer_capacity: capacity,
            ..gatehouse_agent::AgentConfig::for_test(dir).with_logs(vec![
                gatehouse_agent::tail::LogConfig::file(
                    log.to_owned(),
                    gatehouse_events::Format::NginxCombined,
                    gatehouse_events::Source::Proxy,
                ),
            ])
        })
        .await;
        (agent, code)
    }

    pub async fn add(
        &self,
        name: &str,
        agent: &Running,
        code: &str,
    ) -> gatehouse_core::Result<gatehouse_core::InstanceView> {
        self.add_at(name, &agent.addr.to_string(), code).await
    }

    /// Enroll whatever answers at `address` (an agent, or something posing as one).
    pub async fn add_at(
        &self,
        name: &str,
        address: &str,
        code: &str,
    ) -> gatehouse_core::Result<gatehouse_core::InstanceView> {
        self.console
            .fleet
            .add_instance(AddInstance {
                name: name.into(),
                address: address.into(),
                code: code.into(),
                profile: String::new(),
            })
            .await
    }

    /// What `secret-tool` finds for a name under this console's keychain service.
    pub fn keychain_lookup(&self, name: &str) -> Vec<u8> {
        Command::new("secret-tool")
            .args([
                "lookup",
                "service",
                self.console.vault().service(),
                "username",
                name,
            ])
            .output()
            .expect("secret-tool runs")
            .stdout
    }

    /// Nothing of a failed enrollment may remain.
    pub fn assert_nothing_left(&self, name: &str) {
        assert!(
            self.console.fleet.instances().expect("list").is_empty(),
            "no partial instance may be left in the database"
        );
        assert!(
            self.keychain_lookup(&format!("instance/{name}/client.key"))
                .is_empty(),
            "no client key may be left in the keychain"
        );
    }
}
