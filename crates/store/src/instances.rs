//! `fleet_ca`, `instances`, `revoked_serials`: the fleet CA's certificate, the enrolled
//! instances with what their agents last said, and the serials this console revoked.
//! Certificates are public; their keys live in the keychain. Serials and expiry dates are read
//! from the PEM when needed rather than stored twice.

use rusqlite::{params, Connection, OptionalExtension};

use crate::Result;

pub(crate) const CREATE: &str = "CREATE TABLE fleet_ca (
         id         INTEGER PRIMARY KEY CHECK (id = 1),
         cert_pem   TEXT NOT NULL,
         created_at INTEGER NOT NULL
     ) STRICT;
     CREATE TABLE instances (
         id              INTEGER PRIMARY KEY,
         name            TEXT NOT NULL UNIQUE,
         address         TEXT NOT NULL,
         profile         TEXT NOT NULL,
         created_at      INTEGER NOT NULL,
         agent_cert_pem  TEXT NOT NULL,
         client_cert_pem TEXT NOT NULL,
         revoked_at      INTEGER,
         last_attempt    INTEGER,
         last_contact    INTEGER,
         last_error_code TEXT,
         last_error      TEXT,
         agent_version   TEXT,
         host            TEXT,
         service_health  TEXT,
         service_detail  TEXT
     ) STRICT;
     CREATE TABLE revoked_serials (
         serial     TEXT PRIMARY KEY NOT NULL,
         instance   TEXT NOT NULL,
         revoked_at INTEGER NOT NULL
     ) STRICT;";

pub(crate) const GUIDES: &str = "ALTER TABLE instances ADD COLUMN checklist TEXT;
     ALTER TABLE instances ADD COLUMN playbook TEXT;";

pub(crate) const LOSES_DATA: &str = "ALTER TABLE instances ADD COLUMN restart_loses_data TEXT;";

const SELECT: &str = "SELECT name, address, profile, created_at, agent_cert_pem,
        client_cert_pem, revoked_at, last_attempt, last_contact, last_error_code, last_error,
        agent_version, host, service_health, service_detail, checklist, playbook,
        restart_loses_data
     FROM instances";

/// An enrolled instance as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRecord {
    pub name: String,
    pub address: String,
    pub profile: String,
    pub created_at: i64,
    pub agent_cert_pem: String,
    pub client_cert_pem: String,
    pub revoked_at: Option<i64>,
    pub last_attempt: Option<i64>,
    pub last_contact: Option<i64>,
    pub last_error_code: Option<String>,
    pub last_error: Option<String>,
    pub contact: Contact,
    /// The checklist and playbook the agent's profile names (`[guides]`), as it last said.
    pub guides: Guides,
    /// What a restart of the service destroys, as the agent's profile last said (an
    /// operator's profile the console has never seen included).
    pub restart_loses_data: Option<String>,
}

/// The checklist and playbook an agent's profile names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Guides {
    pub checklist: Option<String>,
    pub playbook: Option<String>,
}

/// What the agent said the last time it was reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contact {
    pub agent_version: Option<String>,
    pub host: Option<String>,
    pub service_health: Option<String>,
    pub service_detail: Option<String>,
}

impl InstanceRecord {
    /// A new record, before any contact.
    pub fn new(
        name: &str,
        address: &str,
        profile: &str,
        created_at: i64,
        agent_cert_pem: String,
        client_cert_pem: String,
    ) -> Self {
        InstanceRecord {
            name: name.to_owned(),
            address: address.to_owned(),
            profile: profile.to_owned(),
            created_at,
            agent_cert_pem,
            client_cert_pem,
            revoked_at: None,
            last_attempt: None,
            last_contact: None,
            last_error_code: None,
            last_error: None,
            contact: Contact::default(),
            guides: Guides::default(),
            restart_loses_data: None,
        }
    }

    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(InstanceRecord {
            name: row.get(0)?,
            address: row.get(1)?,
            profile: row.get(2)?,
            created_at: row.get(3)?,
            agent_cert_pem: row.get(4)?,
            client_cert_pem: row.get(5)?,
            revoked_at: row.get(6)?,
            last_attempt: row.get(7)?,
            last_contact: row.get(8)?,
            last_error_code: row.get(9)?,
            last_error: row.get(10)?,
            contact: Contact {
                agent_version: row.get(11)?,
                host: row.get(12)?,
                service_health: row.get(13)?,
                service_detail: row.get(14)?,
            },
            guides: Guides {
                checklist: row.get(15)?,
                playbook: row.get(16)?,
            },
            restart_loses_data: row.get(17)?,
        })
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Instances<'a>(pub(crate) &'a Connection);

impl Instances<'_> {
    pub fn fleet_ca_cert(&self) -> Result<Option<String>> {
        Ok(self
            .0
            .query_row("SELECT cert_pem FROM fleet_ca WHERE id = 1", [], |row| {
                row.get(0)
            })
            .optional()?)
    }

    pub fn set_fleet_ca_cert(&self, cert_pem: &str, now: i64) -> Result<()> {
        self.0.execute(
            "INSERT INTO fleet_ca (id, cert_pem, created_at) VALUES (1, ?1, ?2)
             ON CONFLICT(id) DO UPDATE SET cert_pem = excluded.cert_pem",
            params![cert_pem, now],
        )?;
        Ok(())
    }

    pub fn insert(&self, record: &InstanceRecord) -> Result<()> {
        self.0.execute(
            "INSERT INTO instances (name, address, profile, created_at, agent_cert_pem,
                                    client_cert_pem, checklist, playbook, restart_loses_data)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                record.name,
                record.address,
                record.profile,
                record.created_at,
                record.agent_cert_pem,
                record.client_cert_pem,
                record.guides.checklist,
                record.guides.playbook,
                record.restart_loses_data
            ],
        )?;
        Ok(())
    }

    // The statements a fleet refresh runs for every instance, every time, are kept prepared
    // (compiling this SELECT cost more than running it).
    pub fn get(&self, name: &str) -> Result<Option<InstanceRecord>> {
        let sql = format!("{SELECT} WHERE name = ?1");
        Ok(self
            .0
            .prepare_cached(&sql)?
            .query_row([name], InstanceRecord::from_row)
            .optional()?)
    }

    /// Every instance, by name.
    pub fn all(&self) -> Result<Vec<InstanceRecord>> {
        let sql = format!("{SELECT} ORDER BY name");
        let mut stmt = self.0.prepare_cached(&sql)?;
        let rows = stmt.query_map([], InstanceRecord::from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn count(&self) -> Result<u32> {
        Ok(self
            .0
            .query_row("SELECT COUNT(*) FROM instances", [], |row| row.get(0))?)
    }

    pub fn set_agent_cert(&self, name: &str, cert_pem: &str) -> Result<()> {
        self.0.execute(
            "UPDATE instances SET agent_cert_pem = ?2 WHERE name = ?1",
            [name, cert_pem],
        )?;
        Ok(())
    }

    pub fn set_client_cert(&self, name: &str, cert_pem: &str) -> Result<()> {
        self.0.execute(
            "UPDATE instances SET client_cert_pem = ?2 WHERE name = ?1",
            [name, cert_pem],
        )?;
        Ok(())
    }

    /// A successful contact: clears the last error.
    pub fn record_contact(&self, name: &str, now: i64, contact: &Contact) -> Result<()> {
        self.0
            .prepare_cached(
                "UPDATE instances SET last_attempt = ?2, last_contact = ?2, last_error_code = NULL,
                    last_error = NULL, agent_version = ?3, host = ?4, service_health = ?5,
                    service_detail = ?6
             WHERE name = ?1",
            )?
            .execute(params![
                name,
                now,
                contact.agent_version,
                contact.host,
                contact.service_health,
                contact.service_detail
            ])?;
        Ok(())
    }

    /// The checklist and playbook the instance's agent's profile names.
    pub fn set_guides(&self, name: &str, guides: &Guides) -> Result<()> {
        self.0.execute(
            "UPDATE instances SET checklist = ?2, playbook = ?3 WHERE name = ?1",
            params![name, guides.checklist, guides.playbook],
        )?;
        Ok(())
    }

    /// What a restart destroys, as the instance's agent's profile says.
    pub fn set_restart_loses_data(&self, name: &str, loses: Option<&str>) -> Result<()> {
        self.0.execute(
            "UPDATE instances SET restart_loses_data = ?2 WHERE name = ?1",
            params![name, loses],
        )?;
        Ok(())
    }

    /// The profile the instance's agent runs, which Gatehouse follows.
    pub fn set_profile(&self, name: &str, profile: &str) -> Result<()> {
        self.0.execute(
            "UPDATE instances SET profile = ?2 WHERE name = ?1",
            params![name, profile],
        )?;
        Ok(())
    }

    /// A failed contact: keeps what was last known, records why this attempt failed.
    pub fn record_failure(&self, name: &str, now: i64, code: &str, message: &str) -> Result<()> {
        self.0
            .prepare_cached(
                "UPDATE instances SET last_attempt = ?2, last_error_code = ?3, last_error = ?4
             WHERE name = ?1",
            )?
            .execute(params![name, now, code, message])?;
        Ok(())
    }

    /// Mark an instance revoked and add its certificates' serials to the revocation list.
    pub fn revoke(&self, name: &str, serials: &[String], now: i64) -> Result<()> {
        let tx = self.0.unchecked_transaction()?;
        tx.execute(
            "UPDATE instances SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
            params![name, now],
        )?;
        for serial in serials {
            tx.execute(
                "INSERT OR IGNORE INTO revoked_serials (serial, instance, revoked_at)
                 VALUES (?1, ?2, ?3)",
                params![serial, name, now],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn delete(&self, name: &str) -> Result<bool> {
        Ok(self
            .0
            .execute("DELETE FROM instances WHERE name = ?1", [name])?
            > 0)
    }

    pub fn revoked_serials(&self) -> Result<Vec<String>> {
        let mut stmt = self
            .0
            .prepare("SELECT serial FROM revoked_serials ORDER BY serial")?;
        let rows = stmt.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
