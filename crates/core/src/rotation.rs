//! The credential inventory and rotation calendar: every credential Gatehouse knows (the
//! services' keys as the agents report them, by fingerprint; the agent and console
//! certificates; the fleet CA), how old it is, and when it is due under its policy.

use std::collections::BTreeMap;

use gatehouse_pki as pki;
use gatehouse_protocol::{paths, CredentialsReport};
use rusqlite::params;
use serde::Serialize;
use ts_rs::TS;

use crate::{Console, Error, Result, Status};

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

fn status_of(now: i64, due: Option<i64>, weak: bool) -> (Status, String) {
    let Some(due) = due else {
        return (Status::Unknown, "no due date".into());
    };
    let days = (due - now).div_euclid(DAY);
    if due <= now {
        (
            Status::Failing,
            format!(
                "overdue by {} day{}",
                -days,
                if days == -1 { "" } else { "s" }
            ),
        )
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

fn short(fingerprint: &pki::Fingerprint) -> String {
    fingerprint
        .to_string()
        .replace(':', "")
        .to_lowercase()
        .chars()
        .take(16)
        .collect()
}

impl Console {
    /// The rotation period of API keys on `instance`, in days.
    fn key_days(&self) -> Result<BTreeMap<String, u32>> {
        Ok(match self.store().setting("rotation_key_days")? {
            Some(json) => serde_json::from_str(&json).unwrap_or_default(),
            None => BTreeMap::new(),
        })
    }

    /// Set how often the API keys of `instance` are due for rotation, or go back to the
    /// guides' 90 days with `None`.
    pub fn set_key_rotation_days(&self, instance: &str, days: Option<u32>) -> Result<()> {
        self.instance_record(instance)?;
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
        self.store().set_setting("rotation_key_days", &json)?;
        Ok(())
    }

    /// Ask every agent for its service's credentials and describe every credential known.
    pub async fn credentials(&self) -> Result<CredentialInventory> {
        use futures_util::stream::{self, StreamExt};
        let now = self.now().unix_timestamp();
        let records: Vec<_> = self
            .store()
            .instances()?
            .into_iter()
            .filter(|r| r.revoked_at.is_none())
            .collect();
        let reports: Vec<(String, Result<CredentialsReport>)> = stream::iter(records.clone())
            .map(|r| async move {
                let report = self
                    .agent_get::<CredentialsReport>(&r, paths::CREDENTIALS)
                    .await;
                (r.name, report)
            })
            .buffer_unordered(crate::REFRESH_CONCURRENCY)
            .collect()
            .await;
        let key_days = self.key_days()?;
        let mut credentials = Vec::new();
        let mut problems = Vec::new();
        for (instance, report) in reports {
            let report = match report {
                Ok(report) => report,
                Err(e) => {
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
            let days = key_days.get(&instance).copied().unwrap_or(DEFAULT_KEY_DAYS);
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
                    policy: if days == DEFAULT_KEY_DAYS {
                        "every 90 days (the guides: quarterly)".into()
                    } else {
                        format!("every {days} days (set for this instance)")
                    },
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
                    let due = cert.validity.renew_at().unix_timestamp();
                    let (status, status_text) = status_of(now, Some(due), false);
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
                        set_at: Some(cert.validity.not_before.unix_timestamp()),
                        last_rotation: None,
                        expires_at: Some(cert.validity.not_after.unix_timestamp()),
                        due_at: Some(due),
                        policy: "renewed automatically at two thirds of its life".into(),
                        status,
                        status_text,
                        weak: false,
                    });
                }
            }
        }
        if let Some(pem) = self.store().fleet_ca_cert()? {
            if let Ok(cert) = pki::parse_cert(&pem) {
                let expires = cert.validity.not_after.unix_timestamp();
                let due = expires - CA_WARNING_DAYS * DAY;
                let (status, status_text) = status_of(now, Some(due), false);
                credentials.push(Credential {
                    id: "fleet_ca".into(),
                    instance: None,
                    kind: CredentialKind::FleetCa,
                    name: "fleet certificate authority".into(),
                    location: "this console (key in the OS keychain)".into(),
                    fingerprint: short(&cert.fingerprint),
                    set_at: Some(cert.validity.not_before.unix_timestamp()),
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
        Ok(CredentialInventory {
            credentials,
            problems,
            key_days,
            checked_at: now,
        })
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
        let (first_seen, older, inserted) = {
            let store = self.store();
            let conn = store.conn();
            let inserted = conn.execute(
                "INSERT OR IGNORE INTO credentials_seen (instance, name, fingerprint, first_seen, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?4)",
                params![instance, name, fingerprint, now],
            )? == 1;
            conn.execute(
                "UPDATE credentials_seen SET last_seen = ?4 WHERE instance = ?1 AND name = ?2 AND fingerprint = ?3",
                params![instance, name, fingerprint, now],
            )?;
            let first_seen: i64 = conn.query_row(
                "SELECT first_seen FROM credentials_seen WHERE instance = ?1 AND name = ?2 AND fingerprint = ?3",
                params![instance, name, fingerprint],
                |r| r.get(0),
            )?;
            let older: Option<String> = conn
                .query_row(
                    "SELECT fingerprint FROM credentials_seen WHERE instance = ?1 AND name = ?2
                     AND fingerprint != ?3 ORDER BY last_seen DESC LIMIT 1",
                    params![instance, name, fingerprint],
                    |r| r.get(0),
                )
                .ok();
            (first_seen, older, inserted)
        };
        if inserted {
            if let Some(previous) = &older {
                self.record_action(
                    instance,
                    gatehouse_events::Outcome::Info,
                    &format!(
                        "{name} changed on the host (fingerprint {previous} → {fingerprint})."
                    ),
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
            let fresh = self.store().conn().execute(
                "INSERT OR IGNORE INTO rotation_warnings (credential, due_at, days, warned_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![credential.id, due, days, now],
            )? == 1;
            if fresh {
                notices.push(DueNotice { credential, days });
            }
        }
        Ok(notices)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
