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
    /// The value reported last before this report, when it was another: the key changed,
    /// whether to a value never seen or back to an earlier one.
    pub changed_from: Option<String>,
}

/// A key as its agent last reported it: for each name, the value seen most recently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastKnown {
    pub name: String,
    pub fingerprint: String,
    pub first_seen: i64,
    pub last_seen: i64,
    /// Another value was seen for this name before.
    pub changed: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a>(pub(crate) &'a Connection);

impl Credentials<'_> {
    /// The keys of `instance` as last reported, one per name, by name.
    pub fn last_known(&self, instance: &str) -> Result<Vec<LastKnown>> {
        let mut stmt = self.0.prepare_cached(
            "SELECT name, fingerprint, first_seen, last_seen,
                    (SELECT COUNT(*) FROM credentials_seen o
                      WHERE o.instance = c.instance AND o.name = c.name) > 1
             FROM credentials_seen c
             WHERE instance = ?1
               AND fingerprint = (SELECT fingerprint FROM credentials_seen l
                                   WHERE l.instance = c.instance AND l.name = c.name
                                   ORDER BY last_seen DESC, rowid DESC LIMIT 1)
             ORDER BY name",
        )?;
        let rows = stmt.query_map([instance], |r| {
            Ok(LastKnown {
                name: r.get(0)?,
                fingerprint: r.get(1)?,
                first_seen: r.get(2)?,
                last_seen: r.get(3)?,
                changed: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Record that `instance`'s `name` holds the value `fingerprint` at `now`.
    pub fn seen(&self, instance: &str, name: &str, fingerprint: &str, now: i64) -> Result<Seen> {
        // The value reported last (sightings are kept by the second: two values reported within
        // one second are told apart by their first sighting, then arbitrarily).
        let current: Option<String> = self
            .0
            .query_row(
                "SELECT fingerprint FROM credentials_seen WHERE instance = ?1 AND name = ?2
                 ORDER BY last_seen DESC, first_seen DESC LIMIT 1",
                params![instance, name],
                |r| r.get(0),
            )
            .optional()?;
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
            changed_from: current.filter(|c| c != fingerprint),
        })
    }

    /// The value of `instance`'s `name` known as `before` is now known as `after` (the agent
    /// took the fleet's fingerprint key): its history carries over. If `after` was recorded
    /// already (the key was seen in its new form first), the two records become one that
    /// keeps the earlier first sighting. Returns the records carried over.
    pub fn rename(&self, instance: &str, name: &str, before: &str, after: &str) -> Result<usize> {
        if before == after {
            return Ok(0);
        }
        let tx = self.0.unchecked_transaction()?;
        tx.execute(
            "UPDATE credentials_seen AS a
             SET first_seen = MIN(a.first_seen, b.first_seen), last_seen = MAX(a.last_seen, b.last_seen)
             FROM credentials_seen AS b
             WHERE a.instance = ?1 AND a.name = ?2 AND a.fingerprint = ?4
               AND b.instance = ?1 AND b.name = ?2 AND b.fingerprint = ?3",
            params![instance, name, before, after],
        )?;
        let renamed = tx.execute(
            "UPDATE OR IGNORE credentials_seen SET fingerprint = ?4
             WHERE instance = ?1 AND name = ?2 AND fingerprint = ?3",
            params![instance, name, before, after],
        )?;
        let merged = tx.execute(
            "DELETE FROM credentials_seen WHERE instance = ?1 AND name = ?2 AND fingerprint = ?3",
            params![instance, name, before],
        )?;
        tx.commit()?;
        Ok(renamed + merged)
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
