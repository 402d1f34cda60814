//! The service beside the agent (Sekha, RAE, Jelmore or one an operator profiled), as its
//! profile and the agent's settings describe it: the one adapter every action and check goes
//! through to read its config files, reach it over HTTP and restart it.
//!
//! - [`files`]: its config files under `service_dir`, which key each holds and how to read
//!   and replace it, its database file; [`structured`] finds a key by its path in a JSON,
//!   YAML or INI file and the bytes that spell it; [`htpasswd`] reads and writes a user's
//!   password hash and remembers which password fingerprint each hash it wrote stands for.
//! - [`keys`]: the keys it uses and where each comes from (a file, its default, its
//!   process's environment, which wins).
//! - [`probe`]: its base URL, liveness and the protected endpoint, over one HTTP client.
//! - [`restart`]: running its restart command, then waiting for its liveness probe; a start
//!   that fails in a way the profile knows is fixed and tried once more, and one that does
//!   not come back is reported with what the service itself said.
//! - [`account`]: the account it runs as, which its files and its listener belong to.
//! - [`listener`]: requests over a connection checked to end at the service's own process
//!   (never a key to another local user who took its port), with [`netstat`] reading the
//!   kernel's socket tables.

pub mod account;
pub mod files;
pub mod htpasswd;
pub mod keys;
pub mod listener;
pub mod netstat;
pub mod probe;
pub mod restart;
pub mod structured;

use gatehouse_events::Profile;
use gatehouse_pki::Fingerprints;

use crate::config::ServiceSettings;
use crate::probes::ProbeLog;
use crate::state::StateDir;

/// A view of the service: its parsed profile, its settings, the agent's HTTP client and the
/// log of the agent's own requests (every request to the service opens a window there, so
/// the lines it makes are known as the agent's). Cheap to make; the agent makes one per
/// request from what it resolved at start.
#[derive(Debug, Clone)]
pub struct Service<'a> {
    pub profile: &'a Profile,
    pub settings: &'a ServiceSettings,
    pub http: &'a reqwest::Client,
    pub probes: &'a ProbeLog,
    /// The agent's state directory: where a running restart is noted.
    pub state: &'a StateDir,
    /// How secrets are fingerprinted: with the fleet's key once a console sent it.
    pub fingerprints: Fingerprints,
    /// Which password each hash this agent wrote stands for, read once per view.
    hashed: std::sync::OnceLock<htpasswd::Hashed>,
}

impl<'a> Service<'a> {
    pub fn new(
        profile: &'a Profile,
        settings: &'a ServiceSettings,
        http: &'a reqwest::Client,
        probes: &'a ProbeLog,
        state: &'a StateDir,
        fingerprints: Fingerprints,
    ) -> Self {
        Service {
            profile,
            settings,
            http,
            probes,
            state,
            fingerprints,
            hashed: std::sync::OnceLock::new(),
        }
    }

    /// Which password each hash this agent wrote stands for (see [`htpasswd::Hashed`]).
    pub fn hashed(&self) -> &htpasswd::Hashed {
        self.hashed
            .get_or_init(|| htpasswd::Hashed::load(self.state).unwrap_or_default())
    }
}
