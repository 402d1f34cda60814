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
pub mod decisions;
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
    // 8: one alert per attack with a facet per rule and its addresses; notices linked to a
    // rotation; the first characters of the key a rotation made.
    &[alerts::FACETS, rotations::PREFIXES],
    // 9: rules snoozed on an instance, with the operator's reason.
    &[alerts::SNOOZES],
    // 10: the keys whose rotation fixes a failed check.
    &[compliance::FIXES],
    // 11: the console process that sends a rotation.
    &[rotations::SENDER],
    // 12: the checklist and playbook the instance's agent's profile names.
    &[instances::GUIDES],
    // 13: what a restart destroys, as the instance's agent's profile says.
    &[instances::LOSES_DATA],
    // 14: what the agents decided on their own, pulled from each.
    &[decisions::CREATE],
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

    pub fn decisions(&self) -> decisions::Decisions<'_> {
        decisions::Decisions(&self.conn)
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

    #[test]
    fn an_alert_from_before_facets_keeps_its_rule_as_its_one_facet() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("db.sqlite3");
        {
            // As version 7 left it: alerts without facets, rotations without prefixes.
            let mut conn = Connection::open(&path).expect("raw open");
            let tx = conn.transaction().expect("tx");
            for statements in &MIGRATIONS[..7] {
                for sql in *statements {
                    tx.execute_batch(sql).expect("old migration");
                }
            }
            tx.execute_batch(
                "INSERT INTO alerts (rule_id, rule_name, kind, severity, instance, subject,
                     first_us, last_us, count, distinct_n, detail, created_us)
                 VALUES ('brute-force', 'Brute force', 'brute_force', 'high', 'sekha-1',
                     '203.0.113.9', 10, 20, 7, 0, '7 failed sign-ins.', 30),
                        ('compliance_drift', 'Compliance drift', 'compliance', 'medium',
                     'sekha-1', 'tls', 10, 20, 1, 0, 'TLS fails.', 30);
                 INSERT INTO rotations (instance, name, old_fingerprint, new_fingerprint,
                     started_at, state) VALUES ('sekha-1', 'k', 'o', 'n', 5, 'committed');
                 PRAGMA user_version = 7;",
            )
            .expect("old rows");
            tx.commit().expect("commit");
        }
        let db = Db::open(&path).expect("migrates from version 7");
        assert_eq!(
            db.schema_version().expect("version"),
            SCHEMA_VERSION,
            "migrated"
        );
        let alerts = db
            .alerts()
            .list(&alerts::AlertFilter::default())
            .expect("list");
        let brute = alerts
            .iter()
            .find(|a| a.kind == "brute_force")
            .expect("the old alert is kept");
        assert_eq!(
            brute.facets.len(),
            1,
            "an old alert shows its one rule as its facet: {brute:?}"
        );
        assert_eq!(
            (brute.facets[0].rule_id.as_str(), brute.facets[0].count),
            ("brute-force", 7),
            "with the rule and count it had"
        );
        assert_eq!(
            brute.addresses,
            ["203.0.113.9"],
            "its address is listed as the attack's address"
        );
        let drift = alerts
            .iter()
            .find(|a| a.kind == "compliance")
            .expect("drift kept");
        assert!(
            drift.facets.is_empty() && drift.addresses.is_empty(),
            "a compliance item is neither a rule's facet nor an address: {drift:?}"
        );
        let committed = db
            .rotations()
            .committed_since("sekha-1", 0)
            .expect("rotations");
        assert_eq!(committed.len(), 1, "the old rotation is read back");
        assert_eq!(
            committed[0].new_prefix, None,
            "a rotation recorded before prefixes were kept has none, and says so"
        );
    }

    #[test]
    fn a_rotation_knows_the_replaced_keys_prefix_when_an_earlier_rotation_made_that_key() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&tmp.path().join("db.sqlite3")).expect("opens");
        let r = db.rotations();
        let first = r.start("j", "api", "fp0", "fp1", 100, "op").expect("start");
        r.set_new_prefix(first, "AAAAAAAAAA").expect("prefix");
        r.finish(first, rotations::RotationState::Committed, "", 101)
            .expect("finish");
        let failed = r.start("j", "api", "fp1", "fpX", 150, "op").expect("start");
        r.set_new_prefix(failed, "XXXXXXXXXX").expect("prefix");
        r.finish(failed, rotations::RotationState::RolledBack, "", 151)
            .expect("finish");
        let second = r.start("j", "api", "fp1", "fp2", 200, "op").expect("start");
        r.set_new_prefix(second, "BBBBBBBBBB").expect("prefix");
        r.finish(second, rotations::RotationState::Committed, "", 201)
            .expect("finish");
        let committed = r.committed_since("j", 0).expect("committed");
        assert_eq!(
            committed.iter().map(|c| c.id).collect::<Vec<_>>(),
            [second, first],
            "committed rotations only, newest first (the rolled-back one made no key current)"
        );
        assert_eq!(
            committed[0].old_prefix.as_deref(),
            Some("AAAAAAAAAA"),
            "the second replaced the key the first made"
        );
        assert_eq!(
            committed[1].old_prefix, None,
            "the first replaced a key this console never made"
        );
    }

    #[test]
    fn a_key_carried_over_to_its_keyed_fingerprint_keeps_its_first_sighting_however_the_answers_came(
    ) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&tmp.path().join("db.sqlite3")).expect("opens");
        let c = db.credentials();
        c.seen("s", "api", "unkeyed", 1_000).expect("seen");
        c.seen("s", "api", "unkeyed", 2_000).expect("seen");
        // The keyed form was recorded before the carry-over arrived (an answer lost, then
        // handed over again).
        c.seen("s", "api", "keyed", 5_000).expect("seen");
        assert_eq!(c.rename("s", "api", "unkeyed", "keyed").expect("rename"), 1);
        let known = c.last_known("s").expect("known");
        assert_eq!(
            known
                .iter()
                .map(|k| (k.fingerprint.as_str(), k.first_seen, k.last_seen))
                .collect::<Vec<_>>(),
            [("keyed", 1_000, 5_000)],
            "one record of the key, first seen when its unkeyed form was, last seen last"
        );
        assert_eq!(
            c.rename("s", "api", "unkeyed", "keyed").expect("again"),
            0,
            "carrying over again changes nothing"
        );
        let seen = c.seen("s", "api", "keyed", 6_000).expect("seen");
        assert_eq!(
            (seen.first_seen, seen.previous, seen.new),
            (1_000, None, false),
            "the key is not taken for a new one, nor its unkeyed self for the key before it"
        );
    }
}
