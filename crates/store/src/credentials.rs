//! `credentials_seen` and `rotation_warnings`: every key value an agent reported (by
//! fingerprint) with when it was first and last seen, and the due-date warnings already
//! given.

use rusqlite::{params, Connection, OptionalExtension};

use crate::Result;

pub(crate) const CREATE: &str = "CREATE TABLE credentials_seen (
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
     ) STRICT;";

/// What [`Credentials::seen`] learned about a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// When this value was first reported.
    pub first_seen: i64,
    /// The value seen before it, if any.
    pub previous: Option<String>,
    /// This report is the first of this value.
    pub new: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a>(pub(crate) &'a Connection);

impl Credentials<'_> {
    /// Record that `instance`'s `name` holds the value `fingerprint` at `now`.
    pub fn seen(&self, instance: &str, name: &str, fingerprint: &str, now: i64) -> Result<Seen> {
        let new = self.0.execute(
            "INSERT OR IGNORE INTO credentials_seen (instance, name, fingerprint, first_seen, last_seen)
             VALUES (?1, ?2, ?3, ?4, ?4)",
            params![instance, name, fingerprint, now],
        )? == 1;
        self.0.execute(
            "UPDATE credentials_seen SET last_seen = ?4 WHERE instance = ?1 AND name = ?2 AND fingerprint = ?3",
            params![instance, name, fingerprint, now],
        )?;
        let first_seen: i64 = self.0.query_row(
            "SELECT first_seen FROM credentials_seen WHERE instance = ?1 AND name = ?2 AND fingerprint = ?3",
            params![instance, name, fingerprint],
            |r| r.get(0),
        )?;
        let previous: Option<String> = self
            .0
            .query_row(
                "SELECT fingerprint FROM credentials_seen WHERE instance = ?1 AND name = ?2
                 AND fingerprint != ?3 ORDER BY last_seen DESC LIMIT 1",
                params![instance, name, fingerprint],
                |r| r.get(0),
            )
            .optional()?;
        Ok(Seen {
            first_seen,
            previous,
            new,
        })
    }

    /// Mark the warning `days` before `due_at` given; false when it was given before.
    pub fn warn_once(&self, credential: &str, due_at: i64, days: i64, now: i64) -> Result<bool> {
        Ok(self.0.execute(
            "INSERT OR IGNORE INTO rotation_warnings (credential, due_at, days, warned_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![credential, due_at, days, now],
        )? == 1)
    }
}
