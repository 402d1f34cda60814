//! A fleet made with the pki crate, and an agent serving it on loopback.

use std::net::SocketAddr;
use std::path::Path;

use gatehouse_agent::state::{FleetIdentity, StateDir};
use gatehouse_pki::{self as pki, FleetCa, Issued, KeyPem, Serial, Validity};
use time::{Duration, OffsetDateTime};

pub use gatehouse_testkit::{start_agent, start_agent_config, Running};

pub const INSTANCE: &str = "alpha";

pub fn serial(n: u8) -> Serial {
    Serial::from_random([n; 16])
}

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// A fresh fleet and its enrolled agent serving on loopback; the directory lives as long as
/// the returned guard.
pub async fn serve_fleet() -> (tempfile::TempDir, Fleet, Running) {
    let dir = tempfile::tempdir().expect("tempdir");
    let fleet = Fleet::new();
    fleet.write_agent_state(dir.path());
    let agent = start_agent(dir.path()).await;
    (dir, fleet, agent)
}

pub struct Fleet {
    pub ca: FleetCa,
    pub agent_key: KeyPem,
    pub agent_cert: Issued,
}

impl Fleet {
    pub fn new() -> Self {
        pki::install_provider();
        let ca = FleetCa::generate(Validity::starting(now(), Duration::days(365)), serial(1))
            .expect("fleet CA");
        let agent_key = KeyPem::generate().expect("agent key");
        let csr = agent_key.agent_csr(INSTANCE).expect("csr");
        let agent_cert = ca
            .sign_agent_csr(
                &csr,
                INSTANCE,
                Validity::starting(now(), pki::CERT_LIFETIME),
                serial(2),
            )
            .expect("agent cert");
        Fleet {
            ca,
            agent_key,
            agent_cert,
        }
    }

    /// A console client certificate from this fleet's CA.
    pub fn client(&self, instance: &str, validity: Validity, n: u8) -> (Issued, KeyPem) {
        self.ca
            .issue_console_client(instance, validity, serial(n))
            .expect("client cert")
    }

    /// Write the agent's state as enrollment would have.
    pub fn write_agent_state(&self, dir: &Path) {
        let state = StateDir::new(dir);
        state.ensure().expect("state dir");
        state
            .write_fleet(&FleetIdentity {
                instance: INSTANCE.into(),
                ca_pem: self.ca.cert_pem(),
                cert_pem: self.agent_cert.pem.clone(),
                key_pem: self.agent_key.expose().to_owned(),
            })
            .expect("write fleet.json");
    }
}

/// The console's TLS config for this fleet's agent, with a client certificate.
pub fn console_config(fleet: &Fleet, cert_pem: &str, key: &KeyPem) -> rustls::ClientConfig {
    pki::console_client_config(
        &fleet.ca.cert_pem(),
        INSTANCE,
        cert_pem,
        key,
        std::sync::Arc::new(std::sync::RwLock::new(gatehouse_pki::RevocationList::new())),
    )
    .expect("client config")
}

/// An HTTPS client for the agent with any rustls config, reaching it under its fleet name.
pub fn client(config: rustls::ClientConfig, addr: SocketAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .resolve(&pki::agent_name(INSTANCE).expect("name"), addr)
        .timeout(std::time::Duration::from_secs(10))
        .no_proxy()
        .build()
        .expect("client")
}

pub fn info_url(addr: SocketAddr) -> String {
    format!(
        "https://{}:{}/v1/info",
        pki::agent_name(INSTANCE).expect("name"),
        addr.port()
    )
}
