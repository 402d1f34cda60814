//! The console's storage: two SQLite files, and the only code in Gatehouse that runs SQL.
//!
//! - [`Db`] (`gatehouse.sqlite3`): settings, the fleet, alerts, rotations, compliance, the
//!   audit log, incidents and blocks. One module per table (or a few tables that are only
//!   ever used together) holds that table's migrations and a typed handle with its queries;
//!   states are enums, never bare strings.
//! - [`EventStore`] (`events.sqlite3`): every instance's events in one timeline, with the
//!   failed-authentication rollups that heatmaps, offenders and detection read. See
//!   [`events`].
//!
//! Migrations are append-only and tracked by `PRAGMA user_version`: a released migration is
//! never edited, a change is a new entry in [`MIGRATIONS`]. A database written by a newer
//! Gatehouse is refused rather than guessed at.

mod error;
pub mod events;

pub mod alerts;
pub mod audit;
pub mod blocks;
pub mod compliance;
pub mod credentials;
pub mod incidents;
pub mod instances;
pub mod rotations;
pub mod settings;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

pub use error::{Error, Result};
pub use events::EventStore;

/// Each version's statements, from every table it touches; index 0 takes version 0 to 1.
const MIGRATIONS: &[&[&str]] = &[
    // 1: settings, the fleet CA's certificate, enrolled instances and revoked serials.
    &[settings::CREATE, instances::CREATE],
    // 2: alerts raised by the detection rules.
    &[alerts::CREATE],
    // 3: the credential inventory and rotations run from the console.
    &[credentials::CREATE, rotations::CREATE],
    // 4: compliance.
    &[compliance::CREATE],
    // 5: the console's own audit log.
    &[audit::CREATE],
    // 6: incidents and their log, and the blocks the console placed.
    &[incidents::CREATE, blocks::CREATE],
    // 7: the generation of the audit key that made each row's MAC.
    &[audit::KEY_GENERATION],
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// An open connection to the console's main database.
#[derive(Debug)]
pub struct Db {
    conn: Connection,
    path: PathBuf,
}

impl Db {
    /// Open (creating if needed) and migrate the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        // WAL lets the timeline read while sync writes; NORMAL is durable at checkpoints and
        // loses at most the last transactions on power loss, never corrupts.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        let mut db = Db {
            conn,
            path: path.to_owned(),
        };
        db.migrate()?;
        Ok(db)
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

    pub fn settings(&self) -> settings::Settings<'_> {
        settings::Settings(&self.conn)
    }

    pub fn instances(&self) -> instances::Instances<'_> {
        instances::Instances(&self.conn)
    }

    pub fn alerts(&self) -> alerts::Alerts<'_> {
        alerts::Alerts(&self.conn)
    }

    pub fn credentials(&self) -> credentials::Credentials<'_> {
        credentials::Credentials(&self.conn)
    }

    pub fn rotations(&self) -> rotations::Rotations<'_> {
        rotations::Rotations(&self.conn)
    }

    pub fn compliance(&self) -> compliance::Compliance<'_> {
        compliance::Compliance(&self.conn)
    }

    pub fn audit(&self) -> audit::Audit<'_> {
        audit::Audit(&self.conn)
    }

    pub fn incidents(&self) -> incidents::Incidents<'_> {
        incidents::Incidents(&self.conn)
    }

    pub fn blocks(&self) -> blocks::Blocks<'_> {
        blocks::Blocks(&self.conn)
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
        for (index, statements) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            let version = index as u32 + 1;
            let tx = self.conn.transaction()?;
            for sql in *statements {
                tx.execute_batch(sql)?;
            }
            tx.pragma_update(None, "user_version", version)?;
            tx.commit()?;
            tracing::info!(version, "database migrated");
        }
        Ok(())
    }
}

/// A stored enum's text, read back: a value no build writes is damage, never a guess.
pub(crate) fn parse_word<T>(
    column: usize,
    text: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> rusqlite::Result<T> {
    parse(text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Text,
            format!("{text:?} is not a value Gatehouse writes here").into(),
        )
    })
}

/// Words of an enum stored as text: `as_str` and its inverse, from one table.
macro_rules! words {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        $vis enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The word stored in the database and sent over IPC.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }

            /// The value a stored word names.
            pub fn from_word(word: &str) -> Option<Self> {
                match word { $($word => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = gatehouse_events::UnknownWord;

            fn from_str(word: &str) -> std::result::Result<Self, Self::Err> {
                $name::from_word(word).ok_or_else(|| gatehouse_events::UnknownWord {
                    what: stringify!($name),
                    word: word.to_owned(),
                    expected: $name::ALL
                        .iter()
                        .map(|v| v.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }
        }

        impl rusqlite::types::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                let text = value.as_str()?;
                $name::from_word(text).ok_or_else(|| {
                    rusqlite::types::FromSqlError::Other(
                        format!("{text:?} is not a value Gatehouse writes here").into(),
                    )
                })
            }
        }
    };
}
pub(crate) use words;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_migrated_and_in_wal_mode() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&tmp.path().join("db.sqlite3")).expect("opens");
        assert_eq!(
            db.schema_version().expect("version"),
            SCHEMA_VERSION,
            "a new database must be migrated to the latest schema"
        );
        assert_eq!(
            db.journal_mode().expect("mode"),
            "wal",
            "readers must not block the writer"
        );
    }

    #[test]
    fn reopening_keeps_data_and_does_not_rerun_migrations() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("db.sqlite3");
        Db::open(&path)
            .expect("first open")
            .settings()
            .set("theme", "dark")
            .expect("write");
        let db = Db::open(&path).expect("second open must not fail on existing tables");
        assert_eq!(
            db.settings().get("theme").expect("read").as_deref(),
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
        let err = Db::open(&path).expect_err("a newer schema must be refused");
        assert!(
            matches!(err, Error::SchemaTooNew { found, .. } if found == SCHEMA_VERSION + 1),
            "expected SchemaTooNew, got {err:?}"
        );
    }

    #[test]
    fn a_stored_state_no_build_writes_is_damage_not_a_guess() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&tmp.path().join("db.sqlite3")).expect("opens");
        db.conn
            .execute(
                "INSERT INTO rotations (instance, name, old_fingerprint, new_fingerprint, started_at, state)
                 VALUES ('a', 'k', 'o', 'n', 1, 'pending')",
                [],
            )
            .expect("insert");
        // The CHECK constraint keeps SQL from writing others; a hand edit that drops it
        // could, and the read must say so.
        db.conn
            .execute_batch(
                "PRAGMA ignore_check_constraints = ON; UPDATE rotations SET state = 'weird';",
            )
            .expect("hand edit");
        let err = db.rotations().history(10).expect_err("an unknown state");
        assert!(
            err.to_string().contains("weird"),
            "the damaged value is named: {err}"
        );
    }
}
