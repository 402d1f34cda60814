//! The credential inventory and rotation calendar: every credential Gatehouse knows (the
//! services' keys as the agents report them, by fingerprint; the agent and console
//! certificates; the fleet CA), how old it is, and when it is due under its policy.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use gatehouse_pki as pki;
use gatehouse_protocol::CredentialsReport;
use gatehouse_store::rotations::Pending;
use serde::Serialize;
use ts_rs::TS;

use crate::context::Ctx;
use crate::lock;
use crate::{Error, Result, Status};

type Duration = std::time::Duration;

const DAY: i64 = 86_400;
/// Key rotation period when the operator has not set one: the guides' "quarterly".
pub const DEFAULT_KEY_DAYS: u32 = 90;
/// The fleet CA is flagged this long before it expires.
pub const CA_WARNING_DAYS: i64 = 90;
/// Desktop warnings this many days before a due date, once each.
pub const WARN_DAYS: [i64; 3] = [30, 7, 1];

/// What a credential is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    ApiKey,
    JwtSecret,
    AgentCertificate,
    ClientCertificate,
    FleetCa,
}

/// One credential, described without its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct Credential {
    /// Stable: `instance/api_key/API_KEY_ADMIN`, `instance/agent_certificate`, `fleet_ca`.
    pub id: String,
    pub instance: Option<String>,
    pub kind: CredentialKind,
    /// The variable or key holding it, or what the certificate is for.
    pub name: String,
    /// Where it lives: a config file on the host, the console's keychain.
    pub location: String,
    pub fingerprint: String,
    /// Unix seconds. Keys: set at this time or earlier (the file's last change, or when
    /// Gatehouse first saw this value); certificates: issued.
    #[ts(type = "number | null")]
    pub set_at: Option<i64>,
    /// When Gatehouse last saw it change (a rotation or renewal), if it has.
    #[ts(type = "number | null")]
    pub last_rotation: Option<i64>,
    #[ts(type = "number | null")]
    pub expires_at: Option<i64>,
    /// When it should be rotated or renewed next.
    #[ts(type = "number | null")]
    pub due_at: Option<i64>,
    pub policy: String,
    pub status: Status,
    pub status_text: String,
    /// A known default or published value, or too short.
    pub weak: bool,
}

/// An instance whose credentials could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct InventoryProblem {
    pub instance: String,
    pub message: String,
}

/// Everything the Rotation view shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct CredentialInventory {
    /// Soonest due first; those without a due date last.
    pub credentials: Vec<Credential>,
    pub problems: Vec<InventoryProblem>,
    /// Key rotation period per instance, where the operator changed it.
    #[ts(type = "Record<string, number>")]
    pub key_days: BTreeMap<String, u32>,
    #[ts(type = "number")]
    pub checked_at: i64,
}

/// A desktop warning that a credential is due soon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueNotice {
    pub credential: Credential,
    /// The warning threshold reached: 30, 7 or 1 days ahead (0: overdue).
    pub days: i64,
}

/// How often a key of an instance with a `days` period is rotated, in words.
fn key_policy(days: u32) -> String {
    if days == DEFAULT_KEY_DAYS {
        "every 90 days (the guides: quarterly)".into()
    } else {
        format!("every {days} days (set for this instance)")
    }
}

fn status_of(now: i64, due: Option<i64>, weak: bool) -> (Status, String) {
    let Some(due) = due else {
        return (Status::Unknown, "no due date".into());
    };
    let days = (due - now).div_euclid(DAY);
    if due <= now {
        let overdue = format!(
            "overdue by {} day{}",
            -days,
            if days == -1 { "" } else { "s" }
        );
        // A weak value is the more urgent reason: anyone may hold it.
        let text = if weak {
            format!("weak value, and {overdue}: rotate it now")
        } else {
            overdue
        };
        (Status::Failing, text)
    } else if weak {
        (Status::Failing, "weak value: rotate it now".into())
    } else if days < 30 {
        (
            Status::Warning,
            format!("due in {days} day{}", if days == 1 { "" } else { "s" }),
        )
    } else {
        (Status::Ok, format!("due in {days} days"))
    }
}

/// Certificates renew themselves: only a renewal that has not happened needs the operator.
fn renewal_status(now: i64, due: i64) -> (Status, String) {
    let days = (due - now).div_euclid(DAY);
    if due + DAY < now {
        (
            Status::Failing,
            format!(
                "renewal overdue by {} days: check the agent is reachable",
                (now - due).div_euclid(DAY)
            ),
        )
    } else if due <= now {
        (Status::Ok, "renews at the next check".into())
    } else {
        (
            Status::Ok,
            format!(
                "renews itself in {days} day{}",
                if days == 1 { "" } else { "s" }
            ),
        )
    }
}

fn short(fingerprint: &pki::Fingerprint) -> String {
    fingerprint
        .to_string()
        .replace(':', "")
        .to_lowercase()
        .chars()
        .take(16)
        .collect()
}

/// Credentials (service keys by fingerprint, certificates, the fleet CA), when each is due,
/// and key rotation as a transaction on the host.
#[derive(Debug, Clone)]
pub struct Rotation {
    ctx: Ctx,
    /// The last credential inventory, for the first screen (reading it asks every agent).
    last_inventory: Arc<Mutex<Option<CredentialInventory>>>,
    /// Rotations this console is sending right now: never settled (cancelled) from here.
    in_flight: Arc<Mutex<Vec<i64>>>,
}

/// How long a rotation whose sender cannot be asked about is taken to be on its way: far
/// longer than a request takes to reach an agent once a console has noted it.
const SENDING_GRACE_SECS: i64 = 10;

/// The console process that sends a rotation: its pid and start time on Linux, so another
/// process can tell whether it still runs (a pid alone may be reused). Elsewhere unknown.
mod process {
    /// This process.
    pub(super) fn this() -> Option<String> {
        let pid = std::process::id();
        started(pid).map(|at| format!("{pid}:{at}"))
    }

    /// Whether the process `sender` names still runs; None when that cannot be told.
    pub(super) fn alive(sender: &str) -> Option<bool> {
        let (pid, at) = sender.split_once(':')?;
        let pid: u32 = pid.parse().ok()?;
        started(std::process::id())?;
        Some(started(pid).as_deref() == Some(at))
    }

    /// When process `pid` started (clock ticks since boot: `/proc/PID/stat`, field 22).
    #[cfg(target_os = "linux")]
    fn started(pid: u32) -> Option<String> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name, in parentheses, may hold spaces: fields count from its end.
        let after = stat.rsplit_once(')')?.1;
        after.split_whitespace().nth(19).map(str::to_owned)
    }

    #[cfg(not(target_os = "linux"))]
    fn started(_pid: u32) -> Option<String> {
        None
    }
}

/// A rotation this console is sending; it stops counting as such when dropped, however the
/// sending ends (an answer, an error, or the future dropped).
struct InFlight {
    list: Arc<Mutex<Vec<i64>>>,
    id: i64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        lock(&self.list).retain(|x| *x != self.id);
    }
}

impl Rotation {
    pub(crate) fn new(ctx: Ctx) -> Self {
        Rotation {
            ctx,
            last_inventory: Arc::default(),
            in_flight: Arc::default(),
        }
    }

    /// The inventory as last read, without asking the agents.
    pub fn last_inventory(&self) -> Option<CredentialInventory> {
        self.last_inventory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Rotation {
    /// The rotation period of API keys on `instance`, in days.
    fn key_days(&self) -> Result<BTreeMap<String, u32>> {
        Ok(match self.ctx.db().settings().get("rotation_key_days")? {
            Some(json) => serde_json::from_str(&json).unwrap_or_default(),
            None => BTreeMap::new(),
        })
    }

    /// Set how often the API keys of `instance` are due for rotation, or go back to the
    /// guides' 90 days with `None`.
    pub fn set_key_rotation_days(&self, instance: &str, days: Option<u32>) -> Result<()> {
        self.ctx.instance(instance)?;
        if let Some(days) = days {
            if !(1..=730).contains(&days) {
                return Err(Error::InvalidInput {
                    field: "days",
                    reason: format!("a rotation period must be 1 to 730 days, not {days}"),
                });
            }
        }
        let mut all = self.key_days()?;
        match days {
            Some(days) => all.insert(instance.to_owned(), days),
            None => all.remove(instance),
        };
        let json = serde_json::to_string(&all).unwrap_or_else(|_| "{}".into());
        self.ctx.audit(
            "rotation_policy",
            instance,
            &match days {
                Some(days) => format!("API keys every {days} days"),
                None => "API keys every 90 days (default)".into(),
            },
        )?;
        Ok(self.ctx.db().settings().set("rotation_key_days", &json)?)
    }

    /// Ask every agent for its service's credentials and describe every credential known.
    pub async fn credentials(&self) -> Result<CredentialInventory> {
        use futures_util::stream::{self, StreamExt};
        if let Err(e) = self.resolve_pending_rotations().await {
            tracing::warn!(error = %e, "pending rotations could not be settled first");
        }
        let now = self.ctx.unix();
        let records: Vec<_> = self
            .ctx
            .db()
            .instances()
            .all()?
            .into_iter()
            .filter(|r| r.revoked_at.is_none())
            .collect();
        let reports: Vec<(String, Result<CredentialsReport>)> = stream::iter(records.clone())
            .map(|r| async move {
                let report = self.host_credentials(&r).await;
                (r.name, report)
            })
            .buffer_unordered(crate::REFRESH_CONCURRENCY)
            .collect()
            .await;
        let key_days = self.key_days()?;
        let mut credentials = Vec::new();
        let mut problems = Vec::new();
        for (instance, report) in reports {
            let days = key_days.get(&instance).copied().unwrap_or(DEFAULT_KEY_DAYS);
            let report = match report {
                Ok(report) => report,
                Err(e) => {
                    // An agent out of reach does not make its keys disappear: they are listed
                    // as last reported, still coming due.
                    for k in self.ctx.db().credentials().last_known(&instance)? {
                        let due = k.first_seen + i64::from(days) * DAY;
                        let (status, status_text) = status_of(now, Some(due), false);
                        credentials.push(Credential {
                            id: format!("{instance}/last_known/{}", k.name),
                            instance: Some(instance.clone()),
                            kind: if k.name.contains("jwt") {
                                CredentialKind::JwtSecret
                            } else {
                                CredentialKind::ApiKey
                            },
                            location: format!(
                                "as the agent last reported it ({}); the agent cannot be reached now",
                                crate::timeline::utc(k.last_seen.saturating_mul(1_000_000))
                            ),
                            name: k.name,
                            fingerprint: k.fingerprint,
                            set_at: Some(k.first_seen),
                            last_rotation: k.changed.then_some(k.first_seen),
                            expires_at: None,
                            due_at: Some(due),
                            policy: key_policy(days),
                            status,
                            status_text,
                            weak: false,
                        });
                    }
                    problems.push(InventoryProblem {
                        instance,
                        message: e.to_string(),
                    });
                    continue;
                }
            };
            problems.extend(report.problems.into_iter().map(|message| InventoryProblem {
                instance: instance.clone(),
                message,
            }));
            for c in report.credentials {
                let (first_seen, changed) = self.seen(&instance, &c.name, &c.fingerprint, now)?;
                let set_at = if c.file_modified > 0 {
                    first_seen.min(c.file_modified)
                } else {
                    first_seen
                };
                let due = set_at + i64::from(days) * DAY;
                let (status, status_text) = status_of(now, Some(due), c.weak);
                credentials.push(Credential {
                    id: format!("{instance}/{}/{}", c.role, c.name),
                    instance: Some(instance.clone()),
                    kind: if c.role == "jwt_secret" {
                        CredentialKind::JwtSecret
                    } else {
                        CredentialKind::ApiKey
                    },
                    name: c.name,
                    location: c.file,
                    fingerprint: c.fingerprint,
                    set_at: Some(set_at),
                    last_rotation: changed,
                    expires_at: None,
                    due_at: Some(due),
                    policy: key_policy(days),
                    status,
                    status_text,
                    weak: c.weak,
                });
            }
        }
        for r in &records {
            for (kind, name, pem, location) in [
                (
                    CredentialKind::AgentCertificate,
                    "agent certificate",
                    &r.agent_cert_pem,
                    "the agent's state directory on the host",
                ),
                (
                    CredentialKind::ClientCertificate,
                    "console client certificate",
                    &r.client_cert_pem,
                    "this console (key in the OS keychain)",
                ),
            ] {
                if let Ok(cert) = pki::parse_cert(pem) {
                    let due = cert.validity.renew_at_unix();
                    let (status, status_text) = renewal_status(now, due);
                    let id_kind = if kind == CredentialKind::AgentCertificate {
                        "agent_certificate"
                    } else {
                        "client_certificate"
                    };
                    credentials.push(Credential {
                        id: format!("{}/{id_kind}", r.name),
                        instance: Some(r.name.clone()),
                        kind,
                        name: name.into(),
                        location: location.into(),
                        fingerprint: short(&cert.fingerprint),
                        set_at: Some(cert.validity.not_before_unix()),
                        last_rotation: None,
                        expires_at: Some(cert.validity.not_after_unix()),
                        due_at: Some(due),
                        policy: "renewed automatically at two thirds of its life".into(),
                        status,
                        status_text,
                        weak: false,
                    });
                }
            }
        }
        if let Some(pem) = self.ctx.db().instances().fleet_ca_cert()? {
            if let Ok(cert) = pki::parse_cert(&pem) {
                let expires = cert.validity.not_after_unix();
                let due = expires - CA_WARNING_DAYS * DAY;
                let (status, status_text) = status_of(now, Some(due), false);
                credentials.push(Credential {
                    id: "fleet_ca".into(),
                    instance: None,
                    kind: CredentialKind::FleetCa,
                    name: "fleet certificate authority".into(),
                    location: "this console (key in the OS keychain)".into(),
                    fingerprint: short(&cert.fingerprint),
                    set_at: Some(cert.validity.not_before_unix()),
                    last_rotation: None,
                    expires_at: Some(expires),
                    due_at: Some(due),
                    policy: format!("replace {CA_WARNING_DAYS} days before it expires"),
                    status,
                    status_text,
                    weak: false,
                });
            }
        }
        credentials.sort_by_key(|c| (c.due_at.unwrap_or(i64::MAX), c.id.clone()));
        let inventory = CredentialInventory {
            credentials,
            problems,
            key_days,
            checked_at: now,
        };
        *self
            .last_inventory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(inventory.clone());
        Ok(inventory)
    }

    /// The fingerprint this fleet gives `value`: which key a client holds, told without
    /// showing it, in the form agents that took the fleet's key report.
    pub fn fingerprint_of(&self, value: &str) -> Result<String> {
        Ok(self.ctx.fingerprint_key()?.of(value.as_bytes()))
    }

    /// Rotations run from this console, newest first.
    pub fn rotation_history(&self, limit: u32) -> Result<Vec<RotationRecord>> {
        Ok(self.ctx.db().rotations().history(limit)?)
    }

    /// When this value was first seen, and when the key last changed to a new value (if
    /// Gatehouse saw an older one). A change is put on the timeline.
    fn seen(
        &self,
        instance: &str,
        name: &str,
        fingerprint: &str,
        now: i64,
    ) -> Result<(i64, Option<i64>)> {
        let seen = self
            .ctx
            .db()
            .credentials()
            .seen(instance, name, fingerprint, now)?;
        let (first_seen, older) = (seen.first_seen, seen.previous);
        // A change this console's rotations do not explain: someone changed the key on the
        // host, to a new value or back to an earlier one.
        if let Some(from) = &seen.changed_from {
            let ours =
                self.ctx
                    .db()
                    .rotations()
                    .explains_change(instance, name, from, fingerprint)?;
            if !ours {
                self.ctx.record_action(
                    instance,
                    gatehouse_events::Outcome::Info,
                    &format!("{name} changed on the host (fingerprint {from} → {fingerprint})."),
                );
            }
        }
        Ok((first_seen, older.map(|_| first_seen)))
    }

    /// Credentials reaching 30, 7 or 1 days before their due date (or overdue) that have not
    /// been warned about at that threshold yet. Each is marked, so it is told once.
    pub async fn due_warnings(&self) -> Result<Vec<DueNotice>> {
        let inventory = self.credentials().await?;
        let now = inventory.checked_at;
        let mut notices = Vec::new();
        for credential in inventory.credentials {
            let Some(due) = credential.due_at else {
                continue;
            };
            let automatic = matches!(
                credential.kind,
                CredentialKind::AgentCertificate | CredentialKind::ClientCertificate
            );
            if automatic && credential.status != Status::Failing {
                // Renewed on a clock by the console; the operator hears only of a failure.
                continue;
            }
            let left = due - now;
            let Some(days) = WARN_DAYS
                .iter()
                .copied()
                .chain([0])
                .filter(|d| left <= d * DAY)
                .min()
            else {
                continue;
            };
            let fresh = self
                .ctx
                .db()
                .credentials()
                .warn_once(&credential.id, due, days, now)?;
            if fresh {
                notices.push(DueNotice { credential, days });
            }
        }
        Ok(notices)
    }
}

/// What a rotation will do, for the operator to confirm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct RotationPreview {
    pub instance: String,
    pub name: String,
    pub file: String,
    pub fingerprint: String,
    /// What changes for the service and its clients.
    pub impact: String,
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct RotationResult {
    pub instance: String,
    pub name: String,
    pub committed: bool,
    pub rolled_back: bool,
    pub old_key_works: Option<bool>,
    /// What happened on the host, in order.
    pub steps: Vec<String>,
    pub error: Option<String>,
    pub old_fingerprint: String,
    pub new_fingerprint: String,
    /// Milliseconds the host spent restarting the service and waiting for it.
    #[ts(type = "number")]
    pub restart_ms: u64,
    /// Shown on the service: the new key accepted, the old refused (not possible for a
    /// signing secret, which is only shown to come back healthy).
    pub verified: bool,
}

pub use gatehouse_store::rotations::{RotationRecord, RotationState};

/// One key of a bulk rotation: its result, or why it could not start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct BulkItem {
    pub instance: String,
    pub name: String,
    pub result: Option<RotationResult>,
    /// Refused before anything changed (unreachable agent, config edited by hand).
    pub error: Option<String>,
}

/// A new key and what it is for (`NAME on INSTANCE`).
pub type LabelledKey = (String, crate::Sensitive<String>);

/// Keys rotated at once in a bulk rotation.
pub const BULK_CONCURRENCY: usize = 4;

/// The keychain entry of a service key Gatehouse set, and of one being set.
fn key_entry(instance: &str, name: &str) -> String {
    format!("instance/{instance}/key/{name}")
}

/// A rotation's new key until the host says what became of it: one entry per rotation (by
/// the new key's fingerprint), so settling one can never remove another's key.
fn pending_entry(instance: &str, name: &str, new_fingerprint: &str) -> String {
    format!("instance/{instance}/key/{name}.pending.{new_fingerprint}")
}

/// The one pending entry per key that consoles kept before.
fn legacy_pending_entry(instance: &str, name: &str) -> String {
    format!("instance/{instance}/key/{name}.pending")
}

/// Who is at the console: the OS account running it.
pub(crate) fn operator() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .or_else(|_| std::env::var("USERNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(account_of_process)
        .unwrap_or_else(|| "unknown".into())
}

/// The account the process runs as, when the environment does not say (a service manager,
/// a test driver): the real uid from `/proc`, named by `/etc/passwd`.
#[cfg(target_os = "linux")]
fn account_of_process() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_owned();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        (fields.nth(1)? == uid).then(|| name.to_owned())
    })
}

#[cfg(not(target_os = "linux"))]
fn account_of_process() -> Option<String> {
    None
}

/// How a service's keys are written, as its profile says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyEncoding {
    /// Unpadded base64url: 43 characters for 256 bits.
    Base64Url,
    /// Lower-case hex: 64 characters for 256 bits.
    Hex,
}

impl KeyEncoding {
    fn from_word(word: Option<&str>) -> KeyEncoding {
        match word {
            Some("hex") => KeyEncoding::Hex,
            _ => KeyEncoding::Base64Url,
        }
    }
}

/// Longest key the agent takes.
const MAX_KEY_CHARS: usize = 256;

/// At least 256 random bits in `encoding`, and at least `min_length` characters (as the
/// agent checks it).
fn generate_key(encoding: KeyEncoding, min_length: usize) -> Result<crate::Sensitive<String>> {
    use ring::rand::SecureRandom;
    let min_length = min_length.min(MAX_KEY_CHARS);
    let bytes_for = |chars: usize| match encoding {
        KeyEncoding::Base64Url => (chars * 6).div_ceil(8),
        KeyEncoding::Hex => chars.div_ceil(2),
    };
    let mut bytes = vec![0u8; bytes_for(min_length).max(32)];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::Keychain {
            detail: "the system's random number generator failed".into(),
        })?;
    let mut out = String::with_capacity(bytes.len() * 2);
    match encoding {
        KeyEncoding::Base64Url => {
            const ALPHABET: &[u8; 64] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            for chunk in bytes.chunks(3) {
                let n = chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b))
                    << (8 * (3 - chunk.len()));
                for i in 0..=chunk.len() {
                    out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
                }
            }
        }
        KeyEncoding::Hex => {
            const DIGITS: &[u8; 16] = b"0123456789abcdef";
            for b in &bytes {
                out.push(char::from(DIGITS[usize::from(b >> 4)]));
                out.push(char::from(DIGITS[usize::from(b & 15)]));
            }
        }
    }
    out.truncate(MAX_KEY_CHARS);
    bytes.fill(0);
    Ok(crate::Sensitive::new(out))
}

const ROTATE_TIMEOUT: Duration = Duration::from_secs(300);

impl Rotation {
    /// What rotating `name` on `instance` would change.
    pub async fn rotation_preview(&self, instance: &str, name: &str) -> Result<RotationPreview> {
        let record = self.ctx.instance(instance)?;
        self.settle_key(instance, name).await?;
        let report = self.host_credentials(&record).await?;
        let found = report
            .credentials
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| Error::NotFound {
                what: "key",
                name: format!("named {name} on {instance} (its agent reports none)"),
            })?;
        // The agent's profile is the truth (an operator's file the console has never seen);
        // the built-in one of the same name stands in for an agent older than that report.
        let facts = match self.ctx.agent(&record).await?.info().await {
            Ok(info) => info.service_profile,
            Err(e) => {
                tracing::info!(instance, error = %e, "no profile facts from the agent");
                None
            }
        };
        let builtin =
            gatehouse_events::Profile::builtin(&record.profile).and_then(std::result::Result::ok);
        let multiple = match &facts {
            Some(f) => f.multiple_keys,
            None => builtin.as_ref().is_some_and(|p| p.multiple_keys),
        };
        let loses_data = match facts {
            Some(f) => f.loses_data,
            None => builtin.and_then(|p| p.restart.loses_data),
        };
        let mut impact = if found.role == "jwt_secret" {
            format!(
                "{name} signs the service's tokens; it is no key a client presents. It is \
                 replaced in {} and the service restarts: tokens signed with the old secret no \
                 longer verify, so their holders sign in again.",
                found.file
            )
        } else if multiple {
            format!(
                "{name} is replaced in {} and the service restarts. Its clients need the new key at \
                 once; its other keys keep working.",
                found.file
            )
        } else {
            format!(
                "{name} is the service's one key: it is replaced in {} and the service restarts, \
                 cutting over at once. Every client needs the new key as soon as this completes.",
                found.file
            )
        };
        // What a restart destroys, as the service's profile says (RAE in lite mode).
        if let Some(loses) = loses_data.as_deref() {
            impact.push(' ');
            impact.push_str(loses);
        }
        Ok(RotationPreview {
            instance: instance.to_owned(),
            name: name.to_owned(),
            file: found.file.clone(),
            fingerprint: found.fingerprint.clone(),
            impact,
        })
    }

    /// Rotate `name` on `instance`: a new key from the system's random source is kept in the
    /// keychain as pending, the agent writes it, restarts the service and verifies it (or
    /// rolls back); then the keychain holds it as current. Returns what happened and, when it
    /// committed, the new key for the operator to hand to the service's clients.
    pub async fn rotate_key(
        &self,
        instance: &str,
        name: &str,
    ) -> Result<(RotationResult, Option<crate::Sensitive<String>>)> {
        self.resolve_pending_rotations().await?;
        self.rotate_one(instance, name).await
    }

    async fn rotate_one(
        &self,
        instance: &str,
        name: &str,
    ) -> Result<(RotationResult, Option<crate::Sensitive<String>>)> {
        let record = self.ctx.instance(instance)?;
        self.settle_key(instance, name).await?;
        // The agent and the console must fingerprint the new key alike to recognise it.
        let fingerprints = {
            let agent = self.ctx.agent(&record).await?;
            self.ctx.link_fingerprints(&record, &agent).await?
        };
        let report = self.host_credentials(&record).await?;
        let found = report
            .credentials
            .into_iter()
            .find(|c| c.name == name)
            .ok_or_else(|| Error::NotFound {
                what: "key",
                name: format!("named {name} on {instance} (its agent reports none)"),
            })?;
        // The new key is written as the agent's profile says (Jupyter's are hex); the
        // built-in profile of the same name stands in for an agent older than that report.
        let (encoding, min_length) = match self.ctx.agent(&record).await?.info().await {
            Ok(gatehouse_protocol::Info {
                service_profile: Some(facts),
                ..
            }) => (
                KeyEncoding::from_word(facts.key_encoding.as_deref()),
                facts.key_min_length as usize,
            ),
            _ => gatehouse_events::Profile::builtin(&record.profile)
                .and_then(std::result::Result::ok)
                .map_or((KeyEncoding::Base64Url, 0), |p| {
                    (
                        KeyEncoding::from_word(Some(&p.keys.encoding)),
                        p.keys.min_length,
                    )
                }),
        };
        self.ctx.audit(
            "rotate_requested",
            instance,
            &format!("rotate {name} (fingerprint {})", found.fingerprint),
        )?;
        let key = generate_key(encoding, min_length)?;
        let new_fingerprint = fingerprints.of(key.expose().as_bytes());
        let pending = pending_entry(instance, name, &new_fingerprint);
        self.ctx.vault.store(
            &pending,
            &crate::Sensitive::new(key.expose().as_bytes().to_vec()),
        )?;
        let now = self.ctx.unix();
        let id = {
            let store = self.ctx.db();
            let rotations = store.rotations();
            let id = rotations.start(
                instance,
                name,
                &found.fingerprint,
                &new_fingerprint,
                now,
                &operator(),
            )?;
            // What services such as Jelmore log of a refused key: so once this key is
            // replaced in turn, clients still presenting it are told from guessing.
            if let Some(prefix) = key.expose().get(..crate::analytics::stale::PREFIX_LEN) {
                rotations.set_new_prefix(id, prefix)?;
            }
            if let Some(me) = process::this() {
                rotations.set_sender(id, &me)?;
            }
            id
        };
        lock(&self.in_flight).push(id);
        let _sending = InFlight {
            list: self.in_flight.clone(),
            id,
        };
        let mut request = gatehouse_protocol::RotateRequest {
            name: name.to_owned(),
            expected_fingerprint: found.fingerprint.clone(),
            expected_file_digest: found.file_digest.clone(),
            new_key: key.expose().clone(),
        };
        let answer: Result<gatehouse_protocol::RotateOutcome> = match self.ctx.agent(&record).await
        {
            Ok(agent) => agent
                .rotate(&request, ROTATE_TIMEOUT)
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        // The copy of the key in the request, wiped rather than only freed.
        zeroize::Zeroize::zeroize(&mut request.new_key);
        drop(request);
        let outcome = match answer {
            Ok(outcome) => outcome,
            Err(e @ Error::Agent(gatehouse_agent_client::Error::Refused { .. })) => {
                // Refused before anything changed on the host.
                self.ctx.vault.delete(&pending)?;
                self.finish_rotation(id, RotationState::Refused, &e.to_string())?;
                self.ctx.record_action(
                    instance,
                    gatehouse_events::Outcome::Failure,
                    &format!("Rotation of {name} refused, nothing changed: {e}"),
                );
                return Err(e);
            }
            Err(e) => {
                // The outcome is unknown: the key stays pending until the agent says.
                let message = format!(
                    "The agent did not answer ({e}). An agent stopped mid-way rolls back when it starts \
                     again; Gatehouse asks it for the outcome before the next rotation and inventory."
                );
                self.ctx.record_action(
                    instance,
                    gatehouse_events::Outcome::Error,
                    &format!("Rotation of {name}: {message}"),
                );
                return Ok((
                    RotationResult {
                        instance: instance.to_owned(),
                        name: name.to_owned(),
                        committed: false,
                        rolled_back: false,
                        old_key_works: None,
                        steps: Vec::new(),
                        error: Some(message),
                        old_fingerprint: found.fingerprint,
                        new_fingerprint,
                        restart_ms: 0,
                        verified: false,
                    },
                    None,
                ));
            }
        };
        let result = RotationResult {
            instance: instance.to_owned(),
            name: name.to_owned(),
            committed: outcome.committed,
            rolled_back: outcome.rolled_back,
            old_key_works: outcome.old_key_works,
            steps: outcome.steps.clone(),
            error: outcome.error.clone(),
            old_fingerprint: outcome.old_fingerprint.clone(),
            new_fingerprint: outcome.new_fingerprint.clone(),
            restart_ms: outcome.restart_ms,
            verified: outcome.verified,
        };
        if outcome.committed && outcome.new_fingerprint == new_fingerprint {
            self.ctx.vault.store(
                &key_entry(instance, name),
                &crate::Sensitive::new(key.expose().as_bytes().to_vec()),
            )?;
            self.ctx.vault.delete(&pending)?;
            self.finish_rotation(id, RotationState::Committed, &outcome.steps.join("; "))?;
            self.ctx.record_action(
                instance,
                gatehouse_events::Outcome::Success,
                &format!(
                    "Rotated {name} ({} → {}), by {}: {}",
                    outcome.old_fingerprint,
                    outcome.new_fingerprint,
                    operator(),
                    if outcome.verified {
                        // The old key is never presented (it would reach the service again):
                        // what is proven is that nothing the service reads holds it.
                        "the service takes the new key, and no config file or environment it reads holds the old one any more."
                    } else {
                        "the service came back with it (a signing secret cannot be checked on the service)."
                    }
                ),
            );
            Ok((result, Some(key)))
        } else {
            let proven_back = outcome.rolled_back && outcome.old_key_works == Some(true)
                || !outcome.rolled_back
                    && outcome
                        .error
                        .as_deref()
                        .is_some_and(|e| e.contains("unchanged"));
            if !proven_back {
                // The host did not prove it is back on the old key: ask which key it holds
                // before the new one is forgotten.
                match self.host_fingerprint(&record, name).await {
                    Some(fp) if fp == new_fingerprint => {
                        self.ctx.vault.store(
                            &key_entry(instance, name),
                            &crate::Sensitive::new(key.expose().as_bytes().to_vec()),
                        )?;
                        self.ctx.record_action(instance, gatehouse_events::Outcome::Error, &format!("Rotation of {name} failed, but the host holds the new key; it is kept in the keychain as current. Check the service."));
                    }
                    Some(_) => {}
                    None => {
                        // Unknown: keep the pending key for the next look.
                        self.finish_rotation(
                            id,
                            RotationState::Pending,
                            outcome.error.as_deref().unwrap_or(""),
                        )?;
                        return Ok((result, None));
                    }
                }
            }
            self.ctx.vault.delete(&pending)?;
            let state = if outcome.rolled_back {
                RotationState::RolledBack
            } else {
                RotationState::Failed
            };
            let why = outcome.error.clone().unwrap_or_default();
            self.finish_rotation(id, state, &why)?;
            self.ctx.record_action(
                instance,
                gatehouse_events::Outcome::Failure,
                &format!(
                    "Rotation of {name} failed: {why}{}",
                    match outcome.old_key_works {
                        Some(true) => " Rolled back; the old key works.",
                        Some(false) => " Rolled back, but the old key does not work: the service needs attention.",
                        None => "",
                    }
                ),
            );
            Ok((result, None))
        }
    }

    /// Rotate several keys, `concurrency` at a time, telling `progress` after each (done,
    /// total). One failing does not stop the others. Returns each outcome and the new keys
    /// of those that committed (labelled `NAME on INSTANCE`).
    pub async fn rotate_many(
        &self,
        targets: &[(String, String)],
        concurrency: usize,
        progress: impl Fn(usize, usize) + Send + Sync,
    ) -> (Vec<BulkItem>, Vec<LabelledKey>) {
        use futures_util::stream::{self, StreamExt};
        let total = targets.len();
        if let Err(e) = self.resolve_pending_rotations().await {
            tracing::warn!(error = %e, "pending rotations could not be settled first");
        }
        let done = std::sync::atomic::AtomicUsize::new(0);
        let progress = &progress;
        let done = &done;
        // Keys of one instance share its config file and its restarts: one at a time per
        // instance, instances side by side.
        let mut by_instance: Vec<Vec<(String, String)>> = Vec::new();
        for target in targets {
            match by_instance.iter_mut().find(|g| g[0].0 == target.0) {
                Some(group) => group.push(target.clone()),
                None => by_instance.push(vec![target.clone()]),
            }
        }
        let groups: Vec<Vec<(BulkItem, Option<LabelledKey>)>> = stream::iter(by_instance)
            .map(|group| async move {
                let mut out = Vec::with_capacity(group.len());
                for (instance, name) in group {
                    let outcome = self.rotate_one(&instance, &name).await;
                    let finished = done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    progress(finished, total);
                    let label = format!("{name} on {instance}");
                    out.push(match outcome {
                        Ok((result, key)) => (
                            BulkItem {
                                instance,
                                name,
                                result: Some(result),
                                error: None,
                            },
                            key.map(|k| (label, k)),
                        ),
                        Err(e) => (
                            BulkItem {
                                instance,
                                name,
                                result: None,
                                error: Some(e.to_string()),
                            },
                            None,
                        ),
                    });
                }
                out
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        let results: Vec<(BulkItem, Option<LabelledKey>)> = groups.into_iter().flatten().collect();
        let mut items = Vec::with_capacity(results.len());
        let mut keys = Vec::new();
        for (item, key) in results {
            items.push(item);
            keys.extend(key);
        }
        items.sort_by(|a, b| (&a.instance, &a.name).cmp(&(&b.instance, &b.name)));
        (items, keys)
    }

    /// The keys the host holds, by fingerprint.
    async fn host_credentials(&self, record: &crate::InstanceRecord) -> Result<CredentialsReport> {
        let agent = self.ctx.agent(record).await?;
        // Known once the agent took the fleet's key; until then each inventory offers it
        // again, so a hand-over whose answer was lost still carries the history over.
        if let Err(e) = self.ctx.link_fingerprints(record, &agent).await {
            tracing::warn!(instance = %record.name, error = %e, "the agent did not take the fleet's fingerprint key");
        }
        Ok(agent.credentials().await?)
    }

    /// The fingerprint of `name` as the host holds it now, if the agent answers.
    async fn host_fingerprint(&self, record: &crate::InstanceRecord, name: &str) -> Option<String> {
        let report = self.host_credentials(record).await.ok()?;
        report
            .credentials
            .into_iter()
            .find(|c| c.name == name)
            .map(|c| c.fingerprint)
    }

    /// End a pending rotation; false if another Gatehouse process had ended it already.
    fn finish_rotation(&self, id: i64, state: RotationState, detail: &str) -> Result<bool> {
        let now = self.ctx.unix();
        Ok(self.ctx.db().rotations().finish(id, state, detail, now)?)
    }

    /// A pending rotation's new key, from its own keychain entry (or the one entry per key
    /// that consoles before per-rotation entries kept, if it holds this very key).
    fn pending_key(&self, p: &Pending) -> Result<Option<crate::Sensitive<Vec<u8>>>> {
        match self
            .ctx
            .vault
            .load(&pending_entry(&p.instance, &p.name, &p.new_fingerprint))
        {
            Ok(key) => return Ok(Some(key)),
            Err(Error::SecretNotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        match self
            .ctx
            .vault
            .load(&legacy_pending_entry(&p.instance, &p.name))
        {
            Ok(key)
                if self
                    .ctx
                    .fingerprint_matches(&p.new_fingerprint, key.expose()) =>
            {
                Ok(Some(key))
            }
            Ok(_) | Err(Error::SecretNotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn forget_pending_key(&self, p: &Pending) -> Result<()> {
        for entry in [
            pending_entry(&p.instance, &p.name, &p.new_fingerprint),
            legacy_pending_entry(&p.instance, &p.name),
        ] {
            if entry.ends_with(".pending") {
                // The old shared entry goes only if it holds this rotation's key.
                match self.ctx.vault.load(&entry) {
                    Ok(key)
                        if self
                            .ctx
                            .fingerprint_matches(&p.new_fingerprint, key.expose()) => {}
                    _ => continue,
                }
            }
            match self.ctx.vault.delete(&entry) {
                Ok(()) | Err(Error::SecretNotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Rotations whose outcome the console never heard (it or the agent stopped mid-way):
    /// settle each from what its agent says about its very key. A definite answer settles it
    /// at once; no answer at all settles it only once any request still on its way would have
    /// arrived, so a rotation another Gatehouse process is running is never touched.
    pub async fn resolve_pending_rotations(&self) -> Result<()> {
        let pending = self.ctx.db().rotations().pending()?;
        for p in pending {
            self.settle(&p).await?;
        }
        Ok(())
    }

    /// Settle the pending rotations of one key, or refuse: a key waits for its pending
    /// rotation, since two new keys for one name cannot both be the one the keychain holds.
    async fn settle_key(&self, instance: &str, name: &str) -> Result<()> {
        let waiting: Vec<Pending> = self
            .ctx
            .db()
            .rotations()
            .pending()?
            .into_iter()
            .filter(|p| p.instance == instance && p.name == name)
            .collect();
        for p in &waiting {
            if !self.settle(p).await? {
                return Err(Error::RotationPending {
                    instance: instance.to_owned(),
                    name: name.to_owned(),
                    since: crate::utc(p.started_at.saturating_mul(1_000_000)),
                });
            }
        }
        Ok(())
    }

    /// Settle one pending rotation if its agent can say what became of it; true if settled.
    /// A key this console generated is forgotten only once the host has said, for that key,
    /// that it is not in use.
    async fn settle(&self, p: &Pending) -> Result<bool> {
        let Pending {
            id,
            instance,
            name,
            new_fingerprint,
            started_at,
            sender,
        } = p;
        let id = *id;
        let Ok(record) = self.ctx.instance(instance) else {
            self.forget_pending_key(p)?;
            self.finish_rotation(id, RotationState::Failed, "the instance was removed")?;
            return Ok(true);
        };
        let agent = match self.ctx.agent(&record).await {
            Ok(agent) => agent,
            // Still unreachable: ask again next time.
            Err(_) => return Ok(false),
        };
        let Ok(mut status) = agent.rotation(new_fingerprint).await else {
            return Ok(false);
        };
        let sending_here = lock(&self.in_flight).contains(&id);
        // Whether the process that sends it has gone: known where the system says which
        // processes run; otherwise taken as gone once a request would have reached the agent.
        let sender_gone = match sender.as_deref().and_then(process::alive) {
            Some(alive) => !alive,
            None => *started_at < self.ctx.unix() - SENDING_GRACE_SECS,
        };
        if status.outcome.is_none() && !status.in_progress && !sending_here && sender_gone {
            // No record on the agent, and no console is sending it: cancel it there, so a
            // request still on its way is refused and the outcome is definite now, instead
            // of once any such request would have arrived. A rotation another console
            // process is sending right now is left to it.
            // An agent from before cancellation answers an error: then wait as before.
            if let Ok(answer) = agent.cancel_rotation(new_fingerprint).await {
                status = answer;
            }
        }
        if status.in_progress {
            return Ok(false);
        }
        let held = self.host_fingerprint(&record, name).await;
        let key = self.pending_key(p)?;
        // The host holds this rotation's key: by the fingerprint it was started with, or (a
        // rotation from before the agent took the fleet's key) by the key itself.
        let is_new = |fp: &str| {
            fp == new_fingerprint
                || key
                    .as_ref()
                    .is_some_and(|k| self.ctx.fingerprint_matches(fp, k.expose()))
        };
        let committed = match &status.outcome {
            Some(o) => o.committed || held.as_deref().is_some_and(is_new),
            None => match held.as_deref() {
                Some(fp) if is_new(fp) => true,
                // No record and another key on the host: definite once the agent cancelled
                // it, or once a request still on its way would have reached it.
                Some(_) => {
                    let cutoff = self.ctx.unix() - ROTATE_TIMEOUT.as_secs() as i64 - 30;
                    if !status.cancelled && *started_at >= cutoff {
                        return Ok(false);
                    }
                    false
                }
                None => return Ok(false),
            },
        };
        if committed {
            let Some(key) = key else {
                if !self.finish_rotation(
                    id,
                    RotationState::Committed,
                    "completed on the host, but its new key is no longer in this keychain",
                )? {
                    return Ok(true);
                }
                self.ctx.record_action(instance, gatehouse_events::Outcome::Error, &format!("Rotation of {name} completed on the host, but the new key is missing from the keychain: the service's config holds the only copy. Rotate it again to put a key known here in place."));
                return Ok(true);
            };
            self.ctx.vault.store(&key_entry(instance, name), &key)?;
            self.forget_pending_key(p)?;
            if self.finish_rotation(
                id,
                RotationState::Committed,
                "completed while the console was away",
            )? {
                self.ctx.record_action(instance, gatehouse_events::Outcome::Success, &format!("Rotation of {name} had completed on the host; the new key is now the current one in the keychain."));
            }
            return Ok(true);
        }
        self.forget_pending_key(p)?;
        let (state, why) = match &status.outcome {
            Some(o) if o.rolled_back => (
                RotationState::RolledBack,
                o.error.clone().unwrap_or_default(),
            ),
            Some(o) => (RotationState::Failed, o.error.clone().unwrap_or_default()),
            None if status.cancelled => (
                RotationState::Failed,
                "the request never reached the agent (this console or the agent stopped first); \
                 the agent now refuses it, and nothing changed"
                    .to_owned(),
            ),
            None => (
                RotationState::Failed,
                "the agent has no record of it and the host holds another key; nothing changed"
                    .to_owned(),
            ),
        };
        if self.finish_rotation(id, state, &why)? {
            self.ctx.record_action(
                instance,
                gatehouse_events::Outcome::Failure,
                &format!("Rotation of {name} did not complete on the host: {why}"),
            );
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_256_bits_in_the_profile_s_encoding_and_length() {
        let a = generate_key(KeyEncoding::Base64Url, 32).expect("key");
        let b = generate_key(KeyEncoding::Base64Url, 32).expect("key");
        assert_eq!(a.expose().len(), 43, "32 bytes in unpadded base64url");
        assert!(
            a.expose()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "only the base64url alphabet: safe in TOML strings and dotenv lines"
        );
        assert_ne!(a.expose(), b.expose(), "every key is new");
        let hex = generate_key(KeyEncoding::Hex, 32).expect("key");
        assert!(
            hex.expose().len() == 64 && hex.expose().chars().all(|c| c.is_ascii_hexdigit()),
            "32 bytes in hex, for a profile whose keys are hex: {}",
            hex.expose().len()
        );
        let long = generate_key(KeyEncoding::Hex, 100).expect("key");
        assert_eq!(
            long.expose().len(),
            100,
            "as long as the profile's least length"
        );
        let longest = generate_key(KeyEncoding::Base64Url, 10_000).expect("key");
        assert_eq!(
            longest.expose().len(),
            MAX_KEY_CHARS,
            "never longer than the agent takes"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_sender_is_alive_while_its_process_runs() {
        let me = process::this().expect("this process");
        assert_eq!(process::alive(&me), Some(true), "this process runs");
        let (pid, _) = me.split_once(':').expect("pid:start");
        assert_eq!(
            process::alive(&format!("{pid}:0")),
            Some(false),
            "the same pid with another start time is another process (a reused pid)"
        );
        assert_eq!(
            process::alive("4000000000:1"),
            Some(false),
            "no process has this pid"
        );
    }

    #[test]
    fn a_weak_overdue_key_says_it_is_weak_first() {
        let now = 1_000 * DAY;
        assert_eq!(
            status_of(now, Some(now - 235 * DAY), true).1,
            "weak value, and overdue by 235 days: rotate it now",
            "Sekha's sample key, dated by its file, is weak before it is old"
        );
    }

    #[test]
    fn status_words_say_how_long_is_left() {
        let now = 1_000 * DAY;
        assert_eq!(
            status_of(now, Some(now - 3 * DAY), false).1,
            "overdue by 3 days",
            "past due"
        );
        assert_eq!(
            status_of(now, Some(now + 7 * DAY), false).0,
            Status::Warning,
            "within 30 days"
        );
        assert_eq!(
            status_of(now, Some(now + 60 * DAY), false).0,
            Status::Ok,
            "far off"
        );
        assert_eq!(
            status_of(now, Some(now + 60 * DAY), true).0,
            Status::Failing,
            "a weak key is failing whatever its age"
        );
    }
}
