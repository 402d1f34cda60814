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
    // 1: settings and the instance registry the fleet builds on.
    "CREATE TABLE settings (
         key   TEXT PRIMARY KEY NOT NULL,
         value TEXT NOT NULL
     ) STRICT;
     CREATE TABLE instances (
         id         INTEGER PRIMARY KEY,
         name       TEXT NOT NULL UNIQUE,
         address    TEXT NOT NULL,
         profile    TEXT NOT NULL,
         created_at INTEGER NOT NULL
     ) STRICT;",
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
