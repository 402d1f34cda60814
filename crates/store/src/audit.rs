//! `audit_log`: the console's own audit log, each row chained to the one before by an HMAC
//! (computed by the console; this table only keeps rows in order).

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use ts_rs::TS;

use crate::Result;

pub(crate) const CREATE: &str = "CREATE TABLE audit_log (
         id     INTEGER PRIMARY KEY,
         at_us  INTEGER NOT NULL,
         actor  TEXT NOT NULL,
         action TEXT NOT NULL,
         target TEXT NOT NULL,
         detail TEXT NOT NULL,
         mac    TEXT NOT NULL
     ) STRICT;";

/// Each row names the generation of the key that made its MAC.
pub(crate) const KEY_GENERATION: &str =
    "ALTER TABLE audit_log ADD COLUMN key_gen INTEGER NOT NULL DEFAULT 1;";

/// One row of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct AuditEntry {
    #[ts(type = "number")]
    pub id: i64,
    #[ts(type = "number")]
    pub at_us: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub mac: String,
    /// The generation of the key that made `mac` (1 for the first key).
    pub key_gen: u32,
}

const COLUMNS: &str = "id, at_us, actor, action, target, detail, mac, key_gen";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        id: r.get(0)?,
        at_us: r.get(1)?,
        actor: r.get(2)?,
        action: r.get(3)?,
        target: r.get(4)?,
        detail: r.get(5)?,
        mac: r.get(6)?,
        key_gen: r.get(7)?,
    })
}

#[derive(Debug, Clone, Copy)]
pub struct Audit<'a>(pub(crate) &'a Connection);

impl Audit<'_> {
    /// The newest row.
    pub fn last(&self) -> Result<Option<AuditEntry>> {
        Ok(self
            .0
            .query_row(
                &format!("SELECT {COLUMNS} FROM audit_log ORDER BY id DESC LIMIT 1"),
                [],
                row,
            )
            .optional()?)
    }

    /// The row with this id.
    pub fn get(&self, id: i64) -> Result<Option<AuditEntry>> {
        Ok(self
            .0
            .query_row(
                &format!("SELECT {COLUMNS} FROM audit_log WHERE id = ?1"),
                [id],
                row,
            )
            .optional()?)
    }

    /// Whether any row has this action and target.
    pub fn has(&self, action: &str, target: &str) -> Result<bool> {
        Ok(self
            .0
            .query_row(
                "SELECT 1 FROM audit_log WHERE action = ?1 AND target = ?2 LIMIT 1",
                params![action, target],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    pub fn append(&self, entry: &AuditEntry) -> Result<()> {
        self.0.execute(
            "INSERT INTO audit_log (id, at_us, actor, action, target, detail, mac, key_gen)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                entry.id,
                entry.at_us,
                entry.actor,
                entry.action,
                entry.target,
                entry.detail,
                entry.mac,
                entry.key_gen
            ],
        )?;
        Ok(())
    }

    /// The newest `limit` rows, newest first.
    pub fn newest(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        let mut stmt = self.0.prepare(&format!(
            "SELECT {COLUMNS} FROM audit_log ORDER BY id DESC LIMIT ?1"
        ))?;
        let rows = stmt.query_map([limit], row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every row, oldest first, handed to `visit` one at a time; `visit` returns false to
    /// stop.
    pub fn each(&self, mut visit: impl FnMut(AuditEntry) -> bool) -> Result<()> {
        let mut stmt = self
            .0
            .prepare(&format!("SELECT {COLUMNS} FROM audit_log ORDER BY id"))?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            if !visit(row(r)?) {
                break;
            }
        }
        Ok(())
    }
}
