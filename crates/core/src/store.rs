//! The console's SQLite store: versioned migrations, WAL, and typed accessors.
//!
//! The schema version lives in `PRAGMA user_version`. Migrations are append-only: a released
//! migration is never edited, a change is a new entry in [`MIGRATIONS`]. A database written by
//! a newer Gatehouse is refused rather than guessed at.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};

use crate::{Error, Result};

/// Each entry upgrades the schema by one version; index 0 takes version 0 to 1.
const MIGRATIONS: &[&str] = &[
    // 1: settings, the fleet CA's certificate, enrolled instances and revoked serials.
    // Certificates are public; their keys live in the keychain. Serials and expiry dates are
    // read from the PEM when needed rather than stored twice.
    "CREATE TABLE settings (
         key   TEXT PRIMARY KEY NOT NULL,
         value TEXT NOT NULL
     ) STRICT;
     CREATE TABLE fleet_ca (
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
     ) STRICT;",
    // 2: alerts raised by the detection rules. One row per episode; its state is the
    // operator's (new, acknowledged, resolved).
    "CREATE TABLE alerts (
         id         INTEGER PRIMARY KEY,
         rule_id    TEXT NOT NULL,
         rule_name  TEXT NOT NULL,
         kind       TEXT NOT NULL,
         severity   TEXT NOT NULL,
         instance   TEXT NOT NULL,
         subject    TEXT,
         first_us   INTEGER NOT NULL,
         last_us    INTEGER NOT NULL,
         count      INTEGER NOT NULL,
         distinct_n INTEGER NOT NULL,
         detail     TEXT NOT NULL,
         state      TEXT NOT NULL DEFAULT 'new' CHECK (state IN ('new', 'acknowledged', 'resolved')),
         state_at   INTEGER,
         created_us INTEGER NOT NULL
     ) STRICT;
     CREATE INDEX alerts_by_subject ON alerts (rule_id, instance, subject, state);
     CREATE INDEX alerts_by_time ON alerts (last_us);",
    // 3: the credential inventory. Each value an agent reported (by fingerprint) with when it
    // was first and last seen, and the due-date warnings already given.
    "CREATE TABLE credentials_seen (
         instance    TEXT NOT NULL,
         name        TEXT NOT NULL,
         fingerprint TEXT NOT NULL,
         first_seen  INTEGER NOT NULL,
         last_seen   INTEGER NOT NULL,
         PRIMARY KEY (instance, name, fingerprint)
     ) STRICT;
     CREATE TABLE rotation_warnings (
         credential TEXT NOT NULL,
         due_at     INTEGER NOT NULL,
         days       INTEGER NOT NULL,
         warned_at  INTEGER NOT NULL,
         PRIMARY KEY (credential, due_at, days)
     ) STRICT;
     -- Rotations run from the console: pending until the agent's outcome is known.
     CREATE TABLE rotations (
         id              INTEGER PRIMARY KEY,
         instance        TEXT NOT NULL,
         name            TEXT NOT NULL,
         old_fingerprint TEXT NOT NULL,
         new_fingerprint TEXT NOT NULL,
         started_at      INTEGER NOT NULL,
         finished_at     INTEGER,
         state           TEXT NOT NULL CHECK (state IN ('pending', 'committed', 'rolled_back', 'failed', 'refused')),
         detail          TEXT NOT NULL DEFAULT '',
         operator        TEXT NOT NULL DEFAULT ''
     ) STRICT;",
    // 4: compliance. The last answer of each check per instance; per item its owner, due
    // date, sign-off and the state its checks had at the last run (to notice drift); the
    // evidence, waivers and history of every item.
    "CREATE TABLE compliance_checks (
         instance   TEXT NOT NULL,
         check_id   TEXT NOT NULL,
         status     TEXT NOT NULL CHECK (status IN ('pass', 'fail', 'unknown')),
         summary    TEXT NOT NULL,
         evidence   TEXT NOT NULL,
         checked_at INTEGER NOT NULL,
         PRIMARY KEY (instance, check_id)
     ) STRICT;
     CREATE TABLE compliance_runs (
         instance TEXT PRIMARY KEY,
         at       INTEGER NOT NULL,
         problem  TEXT
     ) STRICT;
     CREATE TABLE compliance_items (
         instance      TEXT NOT NULL,
         item          TEXT NOT NULL,
         owner         TEXT,
         due_at        INTEGER,
         signed_off_at INTEGER,
         signed_off_by TEXT,
         last_state    TEXT,
         last_pass_at  INTEGER,
         PRIMARY KEY (instance, item)
     ) STRICT;
     CREATE TABLE compliance_evidence (
         id       INTEGER PRIMARY KEY,
         instance TEXT NOT NULL,
         item     TEXT NOT NULL,
         at       INTEGER NOT NULL,
         actor    TEXT NOT NULL,
         kind     TEXT NOT NULL CHECK (kind IN ('note', 'link', 'file')),
         text     TEXT NOT NULL,
         sha256   TEXT,
         size     INTEGER
     ) STRICT;
     CREATE INDEX compliance_evidence_by_item ON compliance_evidence (instance, item);
     CREATE TABLE compliance_waivers (
         id          INTEGER PRIMARY KEY,
         instance    TEXT NOT NULL,
         item        TEXT NOT NULL,
         kind        TEXT NOT NULL CHECK (kind IN ('not_applicable', 'accepted_risk')),
         reason      TEXT NOT NULL,
         approved_by TEXT NOT NULL,
         created_at  INTEGER NOT NULL,
         created_by  TEXT NOT NULL,
         expires_at  INTEGER NOT NULL,
         ended_at    INTEGER,
         ended_why   TEXT
     ) STRICT;
     CREATE INDEX compliance_waivers_by_item ON compliance_waivers (instance, item);
     CREATE TABLE compliance_history (
         id       INTEGER PRIMARY KEY,
         instance TEXT NOT NULL,
         item     TEXT NOT NULL,
         at       INTEGER NOT NULL,
         kind     TEXT NOT NULL,
         state    TEXT,
         detail   TEXT NOT NULL,
         actor    TEXT NOT NULL
     ) STRICT;
     CREATE INDEX compliance_history_by_item ON compliance_history (instance, item, at);",
    // 5: the console's own audit log, each row chained to the one before by an HMAC.
    "CREATE TABLE audit_log (
         id     INTEGER PRIMARY KEY,
         at_us  INTEGER NOT NULL,
         actor  TEXT NOT NULL,
         action TEXT NOT NULL,
         target TEXT NOT NULL,
         detail TEXT NOT NULL,
         mac    TEXT NOT NULL
     ) STRICT;",
    // 6: incidents and their own log (notes, decisions, actions with verified results), and
    // the blocks the console placed (for the offenders' "blocked" column).
    "CREATE TABLE incidents (
         id        INTEGER PRIMARY KEY,
         title     TEXT NOT NULL,
         severity  TEXT NOT NULL,
         status    TEXT NOT NULL CHECK (status IN ('open', 'contained', 'resolved', 'closed')),
         owner     TEXT,
         source    TEXT NOT NULL,
         instances TEXT NOT NULL,
         ips       TEXT NOT NULL,
         from_us   INTEGER NOT NULL,
         to_us     INTEGER NOT NULL,
         opened_us INTEGER NOT NULL,
         closed_us INTEGER,
         playbook  TEXT,
         step      TEXT
     ) STRICT;
     CREATE TABLE incident_log (
         id       INTEGER PRIMARY KEY,
         incident INTEGER NOT NULL REFERENCES incidents (id),
         at_us    INTEGER NOT NULL,
         actor    TEXT NOT NULL,
         kind     TEXT NOT NULL,
         text     TEXT NOT NULL,
         ok       INTEGER,
         steps    TEXT NOT NULL
     ) STRICT;
     CREATE INDEX incident_log_by_incident ON incident_log (incident, at_us);
     CREATE TABLE blocks (
         id         INTEGER PRIMARY KEY,
         instance   TEXT NOT NULL,
         ip         TEXT NOT NULL,
         blocked_at INTEGER NOT NULL,
         expires_at INTEGER NOT NULL,
         lifted_at  INTEGER
     ) STRICT;
     CREATE INDEX blocks_by_ip ON blocks (ip, expires_at);",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// An open connection to the console's database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Open (creating if needed) and migrate the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        // WAL lets the timeline read while sync writes; NORMAL is durable at checkpoints and
        // loses at most the last transactions on power loss, never corrupts.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        let mut store = Store {
            conn,
            path: path.to_owned(),
        };
        store.migrate()?;
        Ok(store)
    }

    /// The schema version on disk after opening.
    pub fn schema_version(&self) -> Result<u32> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |row| row.get(0))?)
    }

    pub fn journal_mode(&self) -> Result<String> {
        Ok(self
            .conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))?)
    }

    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |row| {
                row.get(0)
            })
            .optional()?)
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }

    pub fn delete_setting(&self, key: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM settings WHERE key = ?1", [key])?;
        Ok(())
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn fleet_ca_cert(&self) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT cert_pem FROM fleet_ca WHERE id = 1", [], |row| {
                row.get(0)
            })
            .optional()?)
    }

    pub fn set_fleet_ca_cert(&self, cert_pem: &str, now: i64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO fleet_ca (id, cert_pem, created_at) VALUES (1, ?1, ?2)
             ON CONFLICT(id) DO UPDATE SET cert_pem = excluded.cert_pem",
            rusqlite::params![cert_pem, now],
        )?;
        Ok(())
    }

    pub fn insert_instance(&self, record: &InstanceRecord) -> Result<()> {
        self.conn.execute(
            "INSERT INTO instances (name, address, profile, created_at, agent_cert_pem,
                                    client_cert_pem)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            rusqlite::params![
                record.name,
                record.address,
                record.profile,
                record.created_at,
                record.agent_cert_pem,
                record.client_cert_pem
            ],
        )?;
        Ok(())
    }

    pub fn instance(&self, name: &str) -> Result<Option<InstanceRecord>> {
        let sql = format!("{INSTANCE_SELECT} WHERE name = ?1");
        Ok(self
            .conn
            .query_row(&sql, [name], InstanceRecord::from_row)
            .optional()?)
    }

    pub fn instances(&self) -> Result<Vec<InstanceRecord>> {
        let sql = format!("{INSTANCE_SELECT} ORDER BY name");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([], InstanceRecord::from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn set_agent_cert(&self, name: &str, cert_pem: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE instances SET agent_cert_pem = ?2 WHERE name = ?1",
            [name, cert_pem],
        )?;
        Ok(())
    }

    pub fn set_client_cert(&self, name: &str, cert_pem: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE instances SET client_cert_pem = ?2 WHERE name = ?1",
            [name, cert_pem],
        )?;
        Ok(())
    }

    /// A successful contact: clears the last error.
    pub fn record_contact(&self, name: &str, now: i64, contact: &Contact) -> Result<()> {
        self.conn.execute(
            "UPDATE instances SET last_attempt = ?2, last_contact = ?2, last_error_code = NULL,
                    last_error = NULL, agent_version = ?3, host = ?4, service_health = ?5,
                    service_detail = ?6
             WHERE name = ?1",
            rusqlite::params![
                name,
                now,
                contact.agent_version,
                contact.host,
                contact.service_health,
                contact.service_detail
            ],
        )?;
        Ok(())
    }

    /// A failed contact: keeps what was last known, records why this attempt failed.
    pub fn record_failure(&self, name: &str, now: i64, code: &str, message: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE instances SET last_attempt = ?2, last_error_code = ?3, last_error = ?4
             WHERE name = ?1",
            rusqlite::params![name, now, code, message],
        )?;
        Ok(())
    }

    /// Mark an instance revoked and add its certificates' serials to the revocation list.
    pub fn revoke_instance(&mut self, name: &str, serials: &[String], now: i64) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE instances SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
            rusqlite::params![name, now],
        )?;
        for serial in serials {
            tx.execute(
                "INSERT OR IGNORE INTO revoked_serials (serial, instance, revoked_at)
                 VALUES (?1, ?2, ?3)",
                rusqlite::params![serial, name, now],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn delete_instance(&self, name: &str) -> Result<bool> {
        Ok(self
            .conn
            .execute("DELETE FROM instances WHERE name = ?1", [name])?
            > 0)
    }

    pub fn revoked_serials(&self) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT serial FROM revoked_serials ORDER BY serial")?;
        let rows = stmt.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn instance_count(&self) -> Result<u32> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM instances", [], |row| row.get(0))?)
    }

    fn migrate(&mut self) -> Result<()> {
        let found = self.schema_version()?;
        if found > SCHEMA_VERSION {
            return Err(Error::SchemaTooNew {
                path: self.path.clone(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            let version = index as u32 + 1;
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", version)?;
            tx.commit()?;
            tracing::info!(version, "database migrated");
        }
        Ok(())
    }
}

const INSTANCE_SELECT: &str = "SELECT name, address, profile, created_at, agent_cert_pem,
        client_cert_pem, revoked_at, last_attempt, last_contact, last_error_code, last_error,
        agent_version, host, service_health, service_detail
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
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_migrated_and_in_wal_mode() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&tmp.path().join("db.sqlite3")).expect("opens");
        assert_eq!(
            store.schema_version().expect("version"),
            SCHEMA_VERSION,
            "a new database must be migrated to the latest schema"
        );
        assert_eq!(
            store.journal_mode().expect("mode"),
            "wal",
            "readers must not block the writer"
        );
    }

    #[test]
    fn reopening_keeps_data_and_does_not_rerun_migrations() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("db.sqlite3");
        Store::open(&path)
            .expect("first open")
            .set_setting("theme", "dark")
            .expect("write");
        let store = Store::open(&path).expect("second open must not fail on existing tables");
        assert_eq!(
            store.setting("theme").expect("read").as_deref(),
            Some("dark"),
            "settings must survive a restart"
        );
    }

    #[test]
    fn refuses_a_database_from_a_newer_version() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("db.sqlite3");
        let conn = Connection::open(&path).expect("raw open");
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .expect("set version");
        drop(conn);
        let err = Store::open(&path).expect_err("a newer schema must be refused");
        assert!(
            matches!(err, Error::SchemaTooNew { found, .. } if found == SCHEMA_VERSION + 1),
            "expected SchemaTooNew, got {err:?}"
        );
    }
}
