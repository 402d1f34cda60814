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

/// The first characters of the key a rotation made, as services such as Jelmore log a key
/// they refuse: so failures presenting a replaced key can be told from guessing.
pub(crate) const PREFIXES: &str = "ALTER TABLE rotations ADD COLUMN new_prefix TEXT;";

/// The console process that sends a rotation (pid and start time, where the system tells
/// them): another process settling it can tell whether the sender still runs.
pub(crate) const SENDER: &str = "ALTER TABLE rotations ADD COLUMN sender TEXT;";

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
    #[ts(type = "number")]
    pub id: i64,
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

/// A committed rotation, with what is known of the key it replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub id: i64,
    pub instance: String,
    pub name: String,
    pub old_fingerprint: String,
    pub new_fingerprint: String,
    /// Unix seconds.
    pub started_at: i64,
    /// The replaced key's first characters: known when an earlier rotation from this
    /// console made that key.
    pub old_prefix: Option<String>,
    /// The new key's first characters (rotations recorded before these were kept have none).
    pub new_prefix: Option<String>,
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
    /// The console process sending it, when known.
    pub sender: Option<String>,
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

    /// Keep which console process sends rotation `id`.
    pub fn set_sender(&self, id: i64, sender: &str) -> Result<()> {
        self.0.execute(
            "UPDATE rotations SET sender = ?2 WHERE id = ?1",
            params![id, sender],
        )?;
        Ok(())
    }

    /// Keep the first characters of the key rotation `id` makes.
    pub fn set_new_prefix(&self, id: i64, prefix: &str) -> Result<()> {
        self.0.execute(
            "UPDATE rotations SET new_prefix = ?2 WHERE id = ?1",
            params![id, prefix],
        )?;
        Ok(())
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

    /// The value of `instance`'s `name` known as `before` is now known as `after`, in the
    /// history of finished rotations. A pending rotation keeps the fingerprint its keychain
    /// entry is named by; it is settled by the key's value. Returns the rows renamed.
    pub fn rename(&self, instance: &str, name: &str, before: &str, after: &str) -> Result<usize> {
        let old = self.0.execute(
            "UPDATE rotations SET old_fingerprint = ?4
             WHERE instance = ?1 AND name = ?2 AND old_fingerprint = ?3 AND state != 'pending'",
            params![instance, name, before, after],
        )?;
        let new = self.0.execute(
            "UPDATE rotations SET new_fingerprint = ?4
             WHERE instance = ?1 AND name = ?2 AND new_fingerprint = ?3 AND state != 'pending'",
            params![instance, name, before, after],
        )?;
        Ok(old + new)
    }

    /// Every rotation still pending, oldest first.
    pub fn pending(&self) -> Result<Vec<Pending>> {
        let mut stmt = self.0.prepare(
            "SELECT id, instance, name, new_fingerprint, started_at, sender FROM rotations
             WHERE state = 'pending' ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(Pending {
                id: r.get(0)?,
                instance: r.get(1)?,
                name: r.get(2)?,
                new_fingerprint: r.get(3)?,
                started_at: r.get(4)?,
                sender: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Whether rotations from this console explain `instance`'s `name` changing from `from`
    /// to `to`: one from `from` that made `to`, or a chain of them, each from the key the one
    /// before made (running or committed: two rotations between two inventories), or one
    /// that went back from `from` to `to` (rolled back, failed, or still running). A key set
    /// back by hand to a value an earlier rotation made is not explained by that rotation.
    pub fn explains_change(
        &self,
        instance: &str,
        name: &str,
        from: &str,
        to: &str,
    ) -> Result<bool> {
        // Each step of a chain is a later rotation, so the recursion ends.
        Ok(self.0.query_row(
            "WITH RECURSIVE chain(fingerprint, id) AS (
                 SELECT new_fingerprint, id FROM rotations
                 WHERE instance = ?1 AND name = ?2 AND old_fingerprint = ?3
                   AND state IN ('pending', 'committed')
                 UNION
                 SELECT r.new_fingerprint, r.id FROM rotations r JOIN chain c
                   ON r.old_fingerprint = c.fingerprint AND r.id > c.id
                 WHERE r.instance = ?1 AND r.name = ?2 AND r.state IN ('pending', 'committed')
             )
             SELECT EXISTS (SELECT 1 FROM chain WHERE fingerprint = ?4)
                 OR EXISTS (SELECT 1 FROM rotations WHERE instance = ?1 AND name = ?2
                     AND old_fingerprint = ?4 AND new_fingerprint = ?3
                     AND state IN ('pending', 'rolled_back', 'failed'))",
            params![instance, name, from, to],
            |r| r.get(0),
        )?)
    }

    /// The rotations committed on `instance` since `since` (Unix seconds), newest first, each
    /// with the first characters of the key it replaced when an earlier committed rotation
    /// of the same key made that key.
    pub fn committed_since(&self, instance: &str, since: i64) -> Result<Vec<Committed>> {
        let mut stmt = self.0.prepare_cached(
            "SELECT r.id, r.instance, r.name, r.old_fingerprint, r.new_fingerprint, r.started_at,
                 (SELECT p.new_prefix FROM rotations p
                  WHERE p.instance = r.instance AND p.name = r.name AND p.state = 'committed'
                    AND p.new_fingerprint = r.old_fingerprint AND p.id < r.id
                  ORDER BY p.id DESC LIMIT 1),
                 r.new_prefix
             FROM rotations r
             WHERE r.instance = ?1 AND r.state = 'committed' AND r.started_at >= ?2
             ORDER BY r.started_at DESC, r.id DESC",
        )?;
        let rows = stmt.query_map(params![instance, since], |r| {
            Ok(Committed {
                id: r.get(0)?,
                instance: r.get(1)?,
                name: r.get(2)?,
                old_fingerprint: r.get(3)?,
                new_fingerprint: r.get(4)?,
                started_at: r.get(5)?,
                old_prefix: r.get(6)?,
                new_prefix: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The newest rotations first.
    pub fn history(&self, limit: u32) -> Result<Vec<RotationRecord>> {
        let mut stmt = self.0.prepare(
            "SELECT instance, name, old_fingerprint, new_fingerprint, started_at, finished_at, state, detail, operator, id
             FROM rotations ORDER BY started_at DESC, id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit], |r| {
            Ok(RotationRecord {
                id: r.get(9)?,
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

#[cfg(test)]
mod tests {
    use crate::Db;

    /// Two rotations between two inventories: the console saw the first key and then the
    /// third, and both changes were its own.
    #[test]
    fn a_chain_of_this_console_s_rotations_explains_the_change_and_a_key_set_back_does_not() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&tmp.path().join("db.sqlite3")).expect("opens");
        let rotations = db.rotations();
        for (old, new) in [("k1", "k2"), ("k2", "k3")] {
            let id = rotations
                .start("jup-1", "token", old, new, 100, "operator")
                .expect("start");
            rotations
                .finish(id, super::RotationState::Committed, "", 101)
                .expect("finish");
        }
        assert!(
            rotations
                .explains_change("jup-1", "token", "k1", "k3")
                .expect("query"),
            "k1 to k3 is two rotations of this console"
        );
        assert!(
            rotations
                .explains_change("jup-1", "token", "k2", "k3")
                .expect("query"),
            "one rotation still explains its own change"
        );
        assert!(
            !rotations
                .explains_change("jup-1", "token", "k3", "k1")
                .expect("query"),
            "a key set back by hand to an earlier one is not explained"
        );
        assert!(
            !rotations
                .explains_change("jup-1", "other", "k1", "k3")
                .expect("query"),
            "another key's rotations explain nothing"
        );
    }
}
