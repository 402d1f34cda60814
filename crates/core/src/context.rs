//! What every domain of the console works with, and nothing more: the two databases, the
//! keychain, the clock, the link to the agents, and the journal where the console's own
//! actions are recorded (the timeline and the audit log). Cheap to clone: every domain holds
//! one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use gatehouse_agent_client::{Agent, AgentClient, Identity, Link};
use gatehouse_events::Outcome;
use gatehouse_pki::{FingerprintKey, Fingerprints, KeyPem, RevocationList, Serial};
use gatehouse_store::instances::InstanceRecord;
use gatehouse_store::{Db, EventStore};

use crate::{Clock, DataDir, Error, Result, Vault};

#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    // rusqlite's Connection is Send but not Sync; calls are short, so one lock each suffices.
    // Never held across an await.
    db: Arc<Mutex<Db>>,
    /// The timeline's events, in a database of their own.
    events: Arc<Mutex<EventStore>>,
    pub vault: Vault,
    pub clock: Clock,
    pub agents: Arc<AgentClient>,
    pub data_dir: Arc<DataDir>,
    /// The audit log's keys, its last fault and the heads agents were sent.
    pub(crate) audit: Arc<crate::audit::AuditState>,
    /// The fleet's fingerprint key once read, and how each link's agent fingerprints.
    fingerprints: Arc<Mutex<FingerprintState>>,
    /// The policy key once read, and which policy each agent runs.
    pub(crate) policies: Arc<Mutex<crate::protection::PolicyLinks>>,
}

#[derive(Debug, Default)]
struct FingerprintState {
    key: Option<FingerprintKey>,
    links: HashMap<String, Fingerprints>,
}

/// The keychain entry of the fleet's key for fingerprints of secrets (32 random bytes).
pub(crate) const FINGERPRINT_KEY: &str = "fingerprint.key";

/// The keychain entry of the console's private key for `instance`'s agent.
pub(crate) fn client_key_name(instance: &str) -> String {
    format!("instance/{instance}/client.key")
}

impl Ctx {
    pub fn open(data_dir: DataDir, vault: Vault, clock: Clock) -> Result<Self> {
        data_dir.ensure()?;
        let db = Db::open(&data_dir.database())?;
        let events = EventStore::open(&data_dir.events_database())?;
        let ctx = Ctx {
            db: Arc::new(Mutex::new(db)),
            events: Arc::new(Mutex::new(events)),
            vault,
            clock,
            agents: Arc::new(AgentClient::new()),
            data_dir: Arc::new(data_dir),
            audit: Arc::default(),
            fingerprints: Arc::default(),
            policies: Arc::default(),
        };
        ctx.reload_revocations()?;
        Ok(ctx)
    }

    pub fn db(&self) -> MutexGuard<'_, Db> {
        // A panic while holding the lock cannot leave the store half-written: every write is a
        // single statement or a transaction, which SQLite rolls back.
        self.db.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn events(&self) -> MutexGuard<'_, EventStore> {
        // Ingest is one transaction per round; a panic mid-way is rolled back by SQLite.
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Unix seconds.
    pub fn unix(&self) -> i64 {
        self.clock.unix()
    }

    /// Unix microseconds.
    pub fn micros(&self) -> i64 {
        self.clock.micros()
    }

    pub fn instance(&self, name: &str) -> Result<InstanceRecord> {
        self.db()
            .instances()
            .get(name)?
            .ok_or_else(|| Error::InstanceNotFound(name.to_owned()))
    }

    /// The mutual-TLS link to an instance's agent: cached, or built with the client key read
    /// from the keychain.
    pub async fn agent(&self, record: &InstanceRecord) -> Result<Agent> {
        let link = Link {
            instance: &record.name,
            address: &record.address,
            client_cert_pem: &record.client_cert_pem,
        };
        if let Some(agent) = self.agents.cached(&link) {
            return Ok(agent);
        }
        let key_bytes = self.vault.load(&client_key_name(&record.name))?;
        let key_pem =
            String::from_utf8(key_bytes.expose().clone()).map_err(|_| Error::Keychain {
                detail: format!("the key for {} in the keychain is not text", record.name),
            })?;
        let identity = Identity {
            key: KeyPem::from_pem(key_pem)?,
            ca_pem: self.ca_cert_pem()?,
        };
        let agent = self.agents.connect(&link, identity).await?;
        // A new link may be to a re-enrolled agent: ask again how it fingerprints.
        self.fingerprint_state().links.remove(&record.name);
        if let Err(e) = self.link_fingerprints(record, &agent).await {
            tracing::warn!(instance = %record.name, error = %e, "the agent did not take the fleet's fingerprint key");
        }
        // A new link may be to a re-enrolled agent: ask again which policy it runs.
        crate::protection::forget_link(self, &record.name);
        crate::protection::link_policy(self, &record.name, &agent).await;
        Ok(agent)
    }

    fn fingerprint_state(&self) -> MutexGuard<'_, FingerprintState> {
        self.fingerprints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The fleet's key for fingerprints of secrets, from the keychain; made on first use.
    pub fn fingerprint_key(&self) -> Result<FingerprintKey> {
        // Held while the keychain is read or written, so two first uses make one key.
        let mut state = self.fingerprint_state();
        if let Some(key) = &state.key {
            return Ok(key.clone());
        }
        let key = match self.vault.load(FINGERPRINT_KEY) {
            Ok(bytes) => {
                let bytes: [u8; 32] =
                    bytes
                        .expose()
                        .as_slice()
                        .try_into()
                        .map_err(|_| Error::Keychain {
                            detail: format!(
                                "the keychain entry {FINGERPRINT_KEY} is not a 32-byte key"
                            ),
                        })?;
                FingerprintKey::from_bytes(bytes)
            }
            Err(Error::SecretNotFound { .. }) => {
                let mut bytes = [0u8; 32];
                ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
                    .map_err(|_| Error::Keychain {
                        detail: "the system's random source failed".into(),
                    })?;
                self.vault
                    .store(FINGERPRINT_KEY, &crate::Sensitive::new(bytes.to_vec()))?;
                FingerprintKey::from_bytes(bytes)
            }
            Err(e) => return Err(e),
        };
        state.key = Some(key.clone());
        Ok(key)
    }

    /// Whether `fingerprint` (keyed, or unkeyed from before keys) is `value`'s.
    pub fn fingerprint_matches(&self, fingerprint: &str, value: &[u8]) -> bool {
        let form = match self.fingerprint_key() {
            Ok(key) => Fingerprints::keyed(key),
            Err(_) => Fingerprints::unkeyed(),
        };
        form.matches(fingerprint, value)
    }

    /// How `record`'s agent fingerprints secrets. An agent that does not hold the fleet's key
    /// is handed it first, and what this console knew of each of its keys (when first seen,
    /// the rotation history) is carried over to the keyed fingerprint it reports from then
    /// on. An agent older than keyed fingerprints keeps the unkeyed form.
    pub async fn link_fingerprints(
        &self,
        record: &InstanceRecord,
        agent: &Agent,
    ) -> Result<Fingerprints> {
        if let Some(form) = self.fingerprint_state().links.get(&record.name) {
            return Ok(form.clone());
        }
        let key = self.fingerprint_key()?;
        let form = match agent.set_fingerprint_key(&key).await {
            Ok(reply) => {
                let db = self.db();
                for r in reply.renamed.iter().filter(|r| r.before != r.after) {
                    db.credentials()
                        .rename(&record.name, &r.name, &r.before, &r.after)?;
                    db.rotations()
                        .rename(&record.name, &r.name, &r.before, &r.after)?;
                }
                Fingerprints::keyed(key)
            }
            Err(gatehouse_agent_client::Error::Refused { code, .. })
                if code == gatehouse_protocol::codes::NOT_FOUND =>
            {
                Fingerprints::unkeyed()
            }
            Err(e) => return Err(e.into()),
        };
        self.fingerprint_state()
            .links
            .insert(record.name.clone(), form.clone());
        Ok(form)
    }

    pub fn ca_cert_pem(&self) -> Result<String> {
        self.db()
            .instances()
            .fleet_ca_cert()?
            .ok_or_else(|| Error::Keychain {
                detail: "the fleet CA certificate is missing from the database".into(),
            })
    }

    /// The serials this console revoked, handed to the verifiers of every link.
    pub fn reload_revocations(&self) -> Result<()> {
        let list: RevocationList = self
            .db()
            .instances()
            .revoked_serials()?
            .iter()
            .map(|s| s.parse::<Serial>())
            .collect::<std::result::Result<_, _>>()?;
        self.agents.set_revocations(list);
        Ok(())
    }

    /// Put one of the console's own actions on the timeline and in the audit log.
    pub fn record_action(&self, instance: &str, outcome: Outcome, message: &str) {
        self.record(instance, outcome, "console", message);
    }

    /// An alert the console's detection raised, on the timeline and in the audit log, by
    /// Gatehouse rather than by the operator.
    pub fn record_alert(&self, instance: &str, outcome: Outcome, message: &str) {
        self.record(instance, outcome, crate::audit::ALERT_RAISED, message);
    }

    fn record(&self, instance: &str, outcome: Outcome, action: &str, message: &str) {
        let now_us = self.micros();
        if let Err(e) = self
            .events()
            .record_action(instance, outcome, message, now_us)
        {
            tracing::error!(error = %e, "could not record the action on the timeline");
        }
        // The action has happened; its request is already in the log. An outcome that
        // cannot be written is shown (the overview's attention) until a row is written again.
        if let Err(e) = self.audit(action, instance, message) {
            tracing::error!(error = %e, "could not append the outcome to the audit log");
            let detail = match e {
                Error::AuditUnavailable { detail } => detail,
                other => other.to_string(),
            };
            self.audit.set_fault(Some(detail));
        }
    }

    /// Put an operator action on the instance's timeline only, for an action whose audit row
    /// was written before it acted.
    pub fn timeline_note(&self, instance: &str, outcome: Outcome, message: &str) {
        if let Err(e) = self
            .events()
            .record_action(instance, outcome, message, self.micros())
        {
            tracing::error!(error = %e, "could not record the action on the timeline");
        }
    }

    /// Append an operator action to the audit log (see [`crate::audit`]); operator actions
    /// call it before they act, and do not act if it fails ([`crate::Error::AuditUnavailable`]).
    pub fn audit(&self, action: &str, target: &str, detail: &str) -> Result<()> {
        crate::audit::append(self, action, target, detail)
    }
}
