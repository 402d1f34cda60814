//! `sync_state`: how far each instance has been read, how many events and gaps, and the
//! last failure.

use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use ts_rs::TS;

use super::EventStore;
use crate::Result;

/// How the pull from one instance is going.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct SyncState {
    pub instance: String,
    /// The last agent sequence number stored.
    #[ts(type = "number")]
    pub after: u64,
    #[ts(type = "number")]
    pub events: u64,
    /// Events the agent dropped before they were read.
    #[ts(type = "number")]
    pub gaps: u64,
    #[ts(type = "number | null")]
    pub last_sync: Option<i64>,
    pub last_error: Option<String>,
    pub failures: u32,
    /// Lines stored as they were because no format understood them.
    #[ts(type = "number")]
    pub unparsed: u64,
}

impl EventStore {
    pub fn record_sync_failure(&self, instance: &str, error: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO sync_state (instance, after, last_error, failures, last_sync) VALUES (?1, 0, ?2, 1, NULL)
             ON CONFLICT(instance) DO UPDATE SET last_error = excluded.last_error, failures = failures + 1",
            params![instance, error],
        )?;
        Ok(())
    }

    pub fn sync_state(&self, instance: &str) -> Result<Option<SyncState>> {
        Ok(self
            .conn
            .query_row(
                "SELECT instance, after, events, gaps, last_sync, last_error, failures, unparsed FROM sync_state WHERE instance = ?1",
                [instance],
                sync_row,
            )
            .optional()?)
    }

    pub fn sync_states(&self) -> Result<Vec<SyncState>> {
        let mut stmt = self.conn.prepare(
            "SELECT instance, after, events, gaps, last_sync, last_error, failures, unparsed FROM sync_state ORDER BY instance",
        )?;
        let rows = stmt.query_map([], sync_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Forget an instance's sync position (its agent was enrolled anew).
    pub fn forget_instance(&self, instance: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM sync_state WHERE instance = ?1", [instance])?;
        Ok(())
    }
}

fn sync_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SyncState> {
    Ok(SyncState {
        instance: r.get(0)?,
        after: r.get::<_, i64>(1)? as u64,
        events: r.get::<_, i64>(2)? as u64,
        gaps: r.get::<_, i64>(3)? as u64,
        last_sync: r.get(4)?,
        last_error: r.get(5)?,
        failures: r.get(6)?,
        unparsed: r.get::<_, i64>(7)? as u64,
    })
}
