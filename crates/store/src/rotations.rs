//! `rotations`: key rotations run from the console, pending until the agent's outcome is
//! known.

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::{words, Result};

pub(crate) const CREATE: &str = "CREATE TABLE rotations (
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
     ) STRICT;";

words! {
    /// How a rotation stands or ended.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
    #[serde(rename_all = "snake_case")]
    pub enum RotationState {
        /// Sent to the agent; its outcome is not known here yet.
        Pending = "pending",
        Committed = "committed",
        RolledBack = "rolled_back",
        Failed = "failed",
        /// Refused before anything changed.
        Refused = "refused",
    }
}

/// A rotation in the history: which key, from what to what, by whom, when, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct RotationRecord {
    pub instance: String,
    pub name: String,
    pub old_fingerprint: String,
    pub new_fingerprint: String,
    #[ts(type = "number")]
    pub started_at: i64,
    #[ts(type = "number | null")]
    pub finished_at: Option<i64>,
    pub state: RotationState,
    pub detail: String,
    /// The OS account that ran it.
    pub operator: String,
}

/// A rotation still pending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub id: i64,
    pub instance: String,
    pub name: String,
    pub new_fingerprint: String,
    /// Unix seconds.
    pub started_at: i64,
}

#[derive(Debug, Clone, Copy)]
pub struct Rotations<'a>(pub(crate) &'a Connection);

impl Rotations<'_> {
    /// A rotation begins; returns its id.
    pub fn start(
        &self,
        instance: &str,
        name: &str,
        old_fingerprint: &str,
        new_fingerprint: &str,
        now: i64,
        operator: &str,
    ) -> Result<i64> {
        self.0.execute(
            "INSERT INTO rotations (instance, name, old_fingerprint, new_fingerprint, started_at, state, operator)
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6)",
            params![instance, name, old_fingerprint, new_fingerprint, now, operator],
        )?;
        Ok(self.0.last_insert_rowid())
    }

    /// End a pending rotation; false if it was not pending any more (another Gatehouse
    /// process settled it first).
    pub fn finish(&self, id: i64, state: RotationState, detail: &str, now: i64) -> Result<bool> {
        let changed = self.0.execute(
            "UPDATE rotations SET state = ?2, detail = ?3, finished_at = ?4
             WHERE id = ?1 AND state = 'pending'",
            params![id, state, detail, now],
        )?;
        Ok(changed > 0)
    }

    /// Every rotation still pending, oldest first.
    pub fn pending(&self) -> Result<Vec<Pending>> {
        let mut stmt = self.0.prepare(
            "SELECT id, instance, name, new_fingerprint, started_at FROM rotations
             WHERE state = 'pending' ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(Pending {
                id: r.get(0)?,
                instance: r.get(1)?,
                name: r.get(2)?,
                new_fingerprint: r.get(3)?,
                started_at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The newest rotations first.
    pub fn history(&self, limit: u32) -> Result<Vec<RotationRecord>> {
        let mut stmt = self.0.prepare(
            "SELECT instance, name, old_fingerprint, new_fingerprint, started_at, finished_at, state, detail, operator
             FROM rotations ORDER BY started_at DESC, id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit], |r| {
            Ok(RotationRecord {
                instance: r.get(0)?,
                name: r.get(1)?,
                old_fingerprint: r.get(2)?,
                new_fingerprint: r.get(3)?,
                started_at: r.get(4)?,
                finished_at: r.get(5)?,
                state: r.get(6)?,
                detail: r.get(7)?,
                operator: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
