//! The fleet: the CA, enrollment, the mutual-TLS link to each agent, refresh, renewal,
//! revocation and removal.
//!
//! Keychain entries: `fleet-ca.key` (the CA's private key) and `instance/<name>/client.key`
//! (the console's private key for that instance's agent). Certificates are public and live in
//! the database.

use std::sync::{Arc, Mutex, PoisonError};

use gatehouse_agent_client::Enrollment;
use gatehouse_pki::{self as pki, FleetCa, KeyPem, Serial, Validity};
use gatehouse_protocol::{self as protocol, EnrollmentCode};
use gatehouse_store::instances::{Contact, InstanceRecord};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::console::Status;
use crate::context::{client_key_name, Ctx};
use crate::{Error, Result, Sensitive};

const CA_KEY: &str = "fleet-ca.key";
const CA_LIFETIME_SECS: i64 = 5 * 365 * 86_400;
/// Agents contacted at once by a fleet-wide refresh.
pub const REFRESH_CONCURRENCY: usize = 16;

/// What the operator enters to enroll an instance.
#[derive(Clone, Deserialize, TS)]
pub struct AddInstance {
    pub name: String,
    /// `host:port` of the agent.
    pub address: String,
    /// The code `gatehouse-agent init` printed.
    pub code: String,
    /// Service profile, e.g. `sekha`; taken from the agent when empty.
    #[serde(default)]
    pub profile: String,
}

impl Drop for AddInstance {
    fn drop(&mut self) {
        // The code is single use, but until it is spent it enrolls whoever holds it.
        zeroize::Zeroize::zeroize(&mut self.code);
    }
}

impl std::fmt::Debug for AddInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddInstance")
            .field("name", &self.name)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// An instance as the Fleet view shows it.
#[derive(Debug, Clone, Serialize, TS)]
pub struct InstanceView {
    pub name: String,
    pub address: String,
    pub profile: String,
    pub status: Status,
    /// One line saying why the status is what it is.
    pub status_text: String,
    pub error_code: Option<String>,
    pub host: Option<String>,
    pub agent_version: Option<String>,
    pub service_health: Option<String>,
    pub service_detail: Option<String>,
    /// Unix seconds.
    #[ts(type = "number | null")]
    pub last_contact: Option<i64>,
    #[ts(type = "number")]
    pub cert_not_after: i64,
    #[ts(type = "number")]
    pub cert_renew_at: i64,
    pub revoked: bool,
}

/// Outcome of a fleet-wide refresh.
#[derive(Debug, Clone, Serialize, TS)]
pub struct RefreshSummary {
    pub reached: u32,
    pub failed: u32,
    pub instances: Vec<InstanceView>,
}

/// The fleet: enrolled instances and the mutual-TLS link to each.
#[derive(Debug, Clone)]
pub struct Fleet {
    ctx: Ctx,
    /// Two enrollments at once must not each create a CA.
    ca_lock: Arc<Mutex<()>>,
}

impl Fleet {
    pub(crate) fn new(ctx: Ctx) -> Self {
        Fleet {
            ctx,
            ca_lock: Arc::default(),
        }
    }

    /// Every enrolled instance, by name.
    pub fn instances(&self) -> Result<Vec<InstanceView>> {
        let now = self.ctx.unix();
        let records = self.ctx.db().instances().all()?;
        records.iter().map(|r| view(r, now)).collect()
    }

    pub fn instance(&self, name: &str) -> Result<InstanceView> {
        let record = self.ctx.instance(name)?;
        view(&record, self.ctx.unix())
    }

    /// Enroll the agent at `request.address`. Either the instance is enrolled and stored, or
    /// nothing is: no keychain entry, no row, and the agent's code is only spent if it was
    /// accepted.
    pub async fn add_instance(&self, request: AddInstance) -> Result<InstanceView> {
        let name = request.name.trim().to_owned();
        pki::agent_name(&name)?;
        let code: EnrollmentCode =
            request
                .code
                .parse()
                .map_err(|e: protocol::Error| Error::InvalidInput {
                    field: "enrollment code",
                    reason: e.to_string(),
                })?;
        if self.ctx.db().instances().get(&name)?.is_some() {
            return Err(Error::InstanceExists(name));
        }
        let address = request.address.trim().to_owned();
        // Recorded before the code is spent; refused if the audit log cannot be written.
        self.ctx.audit(
            "enroll_requested",
            &name,
            &format!("enroll the agent at {address}"),
        )?;
        let pin = pki::Fingerprint::from_bytes(code.fingerprint);
        let enroll = Enrollment::connect(&address, pin).await?;
        let ca = self.fleet_ca()?;
        let now = self.ctx.unix();
        let csr = enroll
            .csr(&protocol::EnrollCsrRequest {
                token: code.token.clone(),
                instance: name.clone(),
            })
            .await?;

        let validity = Validity::starting_at(now, pki::CERT_LIFETIME_SECS)?;
        let agent_cert = ca.sign_agent_csr(&csr.csr_pem, &name, validity, self.serial()?)?;
        let (client_cert, client_key) = ca.issue_console_client(&name, validity, self.serial()?)?;
        self.ctx.vault.store(
            &client_key_name(&name),
            &Sensitive::new(client_key.expose().as_bytes().to_vec()),
        )?;
        let revoked = self.ctx.db().instances().revoked_serials()?;
        let completed = enroll
            .complete(&protocol::EnrollCompleteRequest {
                token: code.token.clone(),
                cert_pem: agent_cert.pem.clone(),
                ca_pem: ca.cert_pem(),
                revoked,
            })
            .await;
        let info = match completed {
            Ok(info) => info,
            Err(e) => {
                self.forget_client_key(&name);
                return Err(e.into());
            }
        };
        // The agent's profile is the truth: it is what the agent reads keys, logs and checks
        // with. A different choice made here is said, not followed.
        let chosen = request.profile.trim();
        // A name as an agent's config allows one; anything else (a compromised agent's text)
        // is not taken, and the operator's choice, if any, stands.
        let profile = if from_agent(&info.profile) {
            info.profile.clone()
        } else if from_agent(chosen) {
            chosen.to_owned()
        } else {
            "unknown".to_owned()
        };
        let differs = (!chosen.is_empty() && chosen != profile).then(|| {
            format!(
                " You chose profile {chosen}, but the agent runs {profile}: Gatehouse follows the \
                 agent (its agent.toml's profile says which)."
            )
        });
        let record = InstanceRecord::new(
            &name,
            &address,
            &profile,
            now,
            agent_cert.pem,
            client_cert.pem,
        );
        let mut record = record;
        record.guides = guides_of(&info);
        record.restart_loses_data = loses_data_of(&info);
        if let Err(e) = self.ctx.db().instances().insert(&record) {
            self.forget_client_key(&name);
            return Err(e.into());
        }
        tracing::info!(instance = %name, %address, "instance enrolled");
        self.ctx.events().forget_instance(&name)?;
        self.ctx.record_action(
            &name,
            gatehouse_events::Outcome::Success,
            &format!(
                "Enrolled the agent at {address} (profile {profile}).{}",
                differs.as_deref().unwrap_or("")
            ),
        );
        // The first contact over the new mutual-TLS link; its result shows in the view.
        self.refresh_instance(&name).await
    }

    /// Contact one agent over mutual TLS and record what it says (or why it could not).
    pub async fn refresh_instance(&self, name: &str) -> Result<InstanceView> {
        self.contact(name).await?;
        self.instance(name)
    }

    /// Ask the instance's agent how it is and record the answer (or why there was none).
    /// Whether the agent answered.
    async fn contact(&self, name: &str) -> Result<bool> {
        let record = self.ctx.instance(name)?;
        if record.revoked_at.is_some() {
            return Err(Error::InstanceRevoked(name.to_owned()));
        }
        let now = self.ctx.unix();
        match self.fetch_info(&record).await {
            Ok(info) => {
                let guides = guides_of(&info);
                let loses_data = loses_data_of(&info);
                let contact = Contact {
                    agent_version: Some(info.agent_version),
                    host: Some(info.host),
                    service_health: Some(health_word(info.service.health).to_owned()),
                    service_detail: Some(info.service.detail),
                };
                self.ctx
                    .db()
                    .instances()
                    .record_contact(name, now, &contact)?;
                if info.service_profile.is_some() && guides != record.guides {
                    self.ctx.db().instances().set_guides(name, &guides)?;
                }
                if info.service_profile.is_some() && loses_data != record.restart_loses_data {
                    self.ctx
                        .db()
                        .instances()
                        .set_restart_loses_data(name, loses_data.as_deref())?;
                }
                if info.profile != record.profile && from_agent(&info.profile) {
                    // The agent was given another profile since: follow it, and say so.
                    self.ctx.db().instances().set_profile(name, &info.profile)?;
                    self.ctx.record_action(
                        name,
                        gatehouse_events::Outcome::Info,
                        &format!(
                            "The agent now runs profile {} (it was {}): Gatehouse follows the \
                             agent's profile.",
                            info.profile, record.profile
                        ),
                    );
                }
                if let Some(problem) = info.storage_problem {
                    self.ctx.db().instances().record_failure(
                        name,
                        now,
                        "agent_storage",
                        &format!("The agent cannot store its service's log lines: {problem}."),
                    )?;
                    // Reached, but failing: counted as the instance's view shows it.
                    return Ok(false);
                }
            }
            Err(e) => {
                tracing::info!(instance = %name, error = %e, "agent not reached");
                self.ctx.db().instances().record_failure(
                    name,
                    now,
                    e.code().as_str(),
                    &e.to_string(),
                )?;
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Refresh every instance that is not revoked, at most [`REFRESH_CONCURRENCY`] at once.
    pub async fn refresh_all(&self) -> Result<RefreshSummary> {
        use futures_util::stream::{self, StreamExt};
        let names: Vec<String> = self
            .ctx
            .db()
            .instances()
            .all()?
            .into_iter()
            .filter(|r| r.revoked_at.is_none())
            .map(|r| r.name)
            .collect();
        // Each instance's view is read once, at the end, with all the others.
        let results: Vec<Result<bool>> = stream::iter(names)
            .map(|name| async move { self.contact(&name).await })
            .buffer_unordered(REFRESH_CONCURRENCY)
            .collect()
            .await;
        let mut reached = 0;
        let mut failed = 0;
        for result in results {
            match result {
                Ok(true) => reached += 1,
                Ok(false) => failed += 1,
                Err(e) => return Err(e),
            }
        }
        Ok(RefreshSummary {
            reached,
            failed,
            instances: self.instances()?,
        })
    }

    /// Renew every certificate past two thirds of its life: the console's client certificates
    /// locally, agents' certificates through their API. Returns the instances renewed.
    pub async fn renew_due(&self) -> Result<Vec<String>> {
        let now = self.ctx.unix();
        let mut renewed = Vec::new();
        let records = self.ctx.db().instances().all()?;
        for record in records.into_iter().filter(|r| r.revoked_at.is_none()) {
            let due = |pem: &str| pki::parse_cert(pem).map(|c| c.validity.renew_at_unix() <= now);
            // One instance's unreadable certificate or failed renewal must not stop the rest.
            let (client_due, agent_due) = match (
                due(&record.client_cert_pem),
                due(&record.agent_cert_pem),
            ) {
                (Ok(client), Ok(agent)) => (client, agent),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::error!(instance = %record.name, error = %e, "stored certificate unreadable");
                    continue;
                }
            };
            if client_due {
                if let Err(e) = self.renew_client_cert(&record.name) {
                    tracing::warn!(instance = %record.name, error = %e, "client certificate renewal failed");
                    self.ctx.db().instances().record_failure(
                        &record.name,
                        now,
                        e.code().as_str(),
                        &format!("Certificate renewal failed: {e}"),
                    )?;
                    continue;
                }
            }
            if agent_due {
                match self.renew_agent_cert(&record.name).await {
                    Ok(()) => {}
                    Err(e) => {
                        tracing::warn!(instance = %record.name, error = %e, "renewal failed");
                        self.ctx.db().instances().record_failure(
                            &record.name,
                            now,
                            e.code().as_str(),
                            &format!("Certificate renewal failed: {e}"),
                        )?;
                        continue;
                    }
                }
            }
            if client_due || agent_due {
                renewed.push(record.name);
            }
        }
        Ok(renewed)
    }

    /// Revoke an instance: the agent is told to refuse this console's certificate for it at
    /// once, and the console stops trusting the agent's certificate.
    pub async fn revoke_instance(&self, name: &str) -> Result<InstanceView> {
        let record = self.ctx.instance(name)?;
        if record.revoked_at.is_none() {
            self.ctx
                .audit("revoke_requested", name, "revoke the instance")?;
        }
        let serials = vec![
            pki::parse_cert(&record.agent_cert_pem)?.serial.to_string(),
            pki::parse_cert(&record.client_cert_pem)?.serial.to_string(),
        ];
        if record.revoked_at.is_none() {
            // Tell the agent first, while its link still works. If it is unreachable the
            // revocation still holds on this side and the operator is told.
            let mut list = self.ctx.db().instances().revoked_serials()?;
            list.extend(serials.iter().cloned());
            let pushed = self.push_revocations(&record, list).await;
            self.ctx
                .db()
                .instances()
                .revoke(name, &serials, self.ctx.unix())?;
            self.ctx.reload_revocations()?;
            self.drop_client(name);
            if let Err(e) = pushed {
                tracing::warn!(instance = %name, error = %e, "revocation not delivered");
                self.ctx.db().instances().record_failure(
                    name,
                    self.ctx.unix(),
                    e.code().as_str(),
                    &format!(
                        "Revoked here, but the agent could not be told ({e}). It will refuse \
                         this console only once it is reached or re-initialised."
                    ),
                )?;
            }
            tracing::info!(instance = %name, "instance revoked");
            self.ctx.record_action(
                name,
                gatehouse_events::Outcome::Success,
                "Revoked the instance: its agent refuses this console's certificate.",
            );
        }
        self.instance(name)
    }

    /// Remove an instance: its secrets leave the keychain and its records the database. An
    /// instance that is still trusted is revoked first (best effort).
    pub async fn remove_instance(&self, name: &str) -> Result<()> {
        let record = self.ctx.instance(name)?;
        self.ctx.audit(
            "remove_requested",
            name,
            "remove the instance and its key from the keychain",
        )?;
        if record.revoked_at.is_none() {
            self.revoke_instance(name).await?;
        }
        self.ctx.vault.delete(&client_key_name(name))?;
        self.ctx.db().instances().delete(name)?;
        self.drop_client(name);
        tracing::info!(instance = %name, "instance removed");
        self.ctx.record_action(
            name,
            gatehouse_events::Outcome::Success,
            "Removed the instance; its key left the keychain.",
        );
        Ok(())
    }

    /// Round trip of `/v1/info` to one instance over its cached connection (for benchmarks
    /// and the CLI's `instance ping`).
    pub async fn ping(&self, name: &str) -> Result<protocol::Info> {
        let record = self.ctx.instance(name)?;
        self.fetch_info(&record).await
    }

    async fn fetch_info(&self, record: &InstanceRecord) -> Result<protocol::Info> {
        Ok(self.ctx.agent(record).await?.info().await?)
    }

    async fn push_revocations(&self, record: &InstanceRecord, serials: Vec<String>) -> Result<()> {
        Ok(self
            .ctx
            .agent(record)
            .await?
            .set_revocations(serials)
            .await?)
    }

    async fn renew_agent_cert(&self, name: &str) -> Result<()> {
        let record = self.ctx.instance(name)?;
        let agent = self.ctx.agent(&record).await?;
        let csr = agent.renewal_csr().await?;
        let ca = self.fleet_ca()?;
        let validity = Validity::starting_at(self.ctx.unix(), pki::CERT_LIFETIME_SECS)?;
        let issued = ca.sign_agent_csr(&csr.csr_pem, name, validity, self.serial()?)?;
        agent.install_certificate(issued.pem.clone()).await?;
        self.ctx
            .db()
            .instances()
            .set_agent_cert(name, &issued.pem)?;
        tracing::info!(instance = %name, serial = %issued.info.serial, "agent certificate renewed");
        self.ctx.record_action(
            name,
            gatehouse_events::Outcome::Success,
            &format!(
                "Renewed the agent's certificate (serial {}).",
                issued.info.serial
            ),
        );
        Ok(())
    }

    /// New client key and certificate for `name`; needs no agent (it trusts any fleet client
    /// certificate naming its instance).
    fn renew_client_cert(&self, name: &str) -> Result<()> {
        let ca = self.fleet_ca()?;
        let validity = Validity::starting_at(self.ctx.unix(), pki::CERT_LIFETIME_SECS)?;
        let (cert, key) = ca.issue_console_client(name, validity, self.serial()?)?;
        self.ctx.vault.store(
            &client_key_name(name),
            &Sensitive::new(key.expose().as_bytes().to_vec()),
        )?;
        self.ctx.db().instances().set_client_cert(name, &cert.pem)?;
        self.drop_client(name);
        tracing::info!(instance = %name, serial = %cert.info.serial, "client certificate renewed");
        Ok(())
    }

    fn drop_client(&self, name: &str) {
        self.ctx.agents.forget(name);
    }

    fn forget_client_key(&self, name: &str) {
        if let Err(e) = self.ctx.vault.delete(&client_key_name(name)) {
            tracing::error!(instance = %name, error = %e, "could not remove the client key after a failed enrollment");
        }
    }

    /// The fleet CA, created on first use. Its key goes to the keychain before its
    /// certificate is recorded, so a failure leaves no CA without a key.
    fn fleet_ca(&self) -> Result<FleetCa> {
        // Two enrollments at once must not each create a CA: the second would pair its key
        // with the first one's certificate.
        let _creating = self.ca_lock.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cert_pem) = self.ctx.db().instances().fleet_ca_cert()? {
            let key_bytes = self.ctx.vault.load(CA_KEY).map_err(|e| match e {
                Error::SecretNotFound { .. } => Error::Keychain {
                    detail: "the fleet CA's key is missing from the keychain, so no certificate \
                             can be issued or renewed; enroll the agents into a new console \
                             data directory"
                        .into(),
                },
                other => other,
            })?;
            let key_pem =
                String::from_utf8(key_bytes.expose().clone()).map_err(|_| Error::Keychain {
                    detail: "the fleet CA key in the keychain is not text".into(),
                })?;
            return Ok(FleetCa::from_pem(&cert_pem, &KeyPem::from_pem(key_pem)?)?);
        }
        let now = self.ctx.unix();
        let ca = FleetCa::generate(
            Validity::starting_at(now, CA_LIFETIME_SECS)?,
            self.serial()?,
        )?;
        self.ctx.vault.store(
            CA_KEY,
            &Sensitive::new(ca.key_pem().expose().as_bytes().to_vec()),
        )?;
        self.ctx
            .db()
            .instances()
            .set_fleet_ca_cert(&ca.cert_pem(), now)?;
        tracing::info!("fleet CA created");
        Ok(ca)
    }

    fn serial(&self) -> Result<Serial> {
        let mut bytes = [0u8; 16];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| Error::Keychain {
                detail: "the system random number generator failed".into(),
            })?;
        Ok(Serial::from_random(bytes))
    }
}

fn health_word(health: protocol::Health) -> &'static str {
    match health {
        protocol::Health::Ok => "ok",
        protocol::Health::Warning => "warning",
        protocol::Health::Failing => "failing",
        protocol::Health::Unknown => "unknown",
    }
}

fn view(record: &InstanceRecord, now: i64) -> Result<InstanceView> {
    let cert = pki::parse_cert(&record.agent_cert_pem)?;
    let not_after = cert.validity.not_after_unix();
    let renew_at = cert.validity.renew_at_unix();
    let service = record.contact.service_health.as_deref();
    let (status, status_text) = if record.revoked_at.is_some() {
        (
            Status::Failing,
            "Revoked: the console no longer talks to this agent.".to_owned(),
        )
    } else if let Some(error) = &record.last_error {
        (Status::Failing, error.clone())
    } else if now >= not_after {
        (
            Status::Failing,
            "The agent's certificate has expired.".to_owned(),
        )
    } else if record.last_contact.is_none() {
        (Status::Unknown, "Not contacted yet.".to_owned())
    } else if service == Some("failing") {
        (
            Status::Failing,
            format!(
                "Agent reachable, service failing: {}",
                record
                    .contact
                    .service_detail
                    .as_deref()
                    .unwrap_or("no detail")
            ),
        )
    } else if now >= renew_at + 86_400 {
        (
            Status::Warning,
            "Certificate renewal is overdue.".to_owned(),
        )
    } else if service == Some("ok") {
        (Status::Ok, "Agent and service answer.".to_owned())
    } else {
        (
            Status::Ok,
            format!(
                "Agent answers; service not checked: {}",
                record
                    .contact
                    .service_detail
                    .as_deref()
                    .unwrap_or("no detail")
            ),
        )
    };
    Ok(InstanceView {
        name: record.name.clone(),
        address: record.address.clone(),
        profile: record.profile.clone(),
        status,
        status_text,
        error_code: record.last_error_code.clone(),
        host: record.contact.host.clone(),
        agent_version: record.contact.agent_version.clone(),
        service_health: record.contact.service_health.clone(),
        service_detail: record.contact.service_detail.clone(),
        last_contact: record.last_contact,
        cert_not_after: not_after,
        cert_renew_at: renew_at,
        revoked: record.revoked_at.is_some(),
    })
}

/// What a restart destroys, as the agent's profile says: text an agent sent, shown to the
/// operator as text, kept to one sentence's length.
fn loses_data_of(info: &protocol::Info) -> Option<String> {
    const LONGEST: usize = 400;
    let text = info.service_profile.as_ref()?.loses_data.as_deref()?.trim();
    if text.is_empty() {
        return None;
    }
    Some(match text.char_indices().nth(LONGEST) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    })
}

/// The checklist and playbook the agent's profile names (none from an agent older than
/// that report, or whose profile names none, or names one no file could have).
fn guides_of(info: &protocol::Info) -> gatehouse_store::instances::Guides {
    let facts = info.service_profile.as_ref();
    let named = |name: Option<&String>| name.filter(|n| from_agent(n)).cloned();
    gatehouse_store::instances::Guides {
        checklist: named(facts.and_then(|f| f.checklist.as_ref())),
        playbook: named(facts.and_then(|f| f.playbook.as_ref())),
    }
}

/// Whether a profile or guide name an agent sent is one a config or profile could hold
/// (letters, digits, `-` and `_`, at most 64): the console stores it and shows it.
fn from_agent(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}
