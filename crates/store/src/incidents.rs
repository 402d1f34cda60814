//! `incidents` and `incident_log`: incidents with their context, status, owner and playbook
//! step, and each one's own log of notes, decisions and actions with verified results.

use gatehouse_events::Severity;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::{parse_word, words, Result};

pub(crate) const CREATE: &str = "CREATE TABLE incidents (
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
     CREATE INDEX incident_log_by_incident ON incident_log (incident, at_us);";

words! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
    #[serde(rename_all = "snake_case")]
    pub enum IncidentStatus {
        Open = "open",
        Contained = "contained",
        Resolved = "resolved",
        Closed = "closed",
    }
}

words! {
    /// What a line of an incident's log records.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
    #[serde(rename_all = "snake_case")]
    pub enum EntryKind {
        Opened = "opened",
        Note = "note",
        Decision = "decision",
        Action = "action",
        Status = "status",
        Step = "step",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct Incident {
    #[ts(type = "number")]
    pub id: i64,
    pub title: String,
    pub severity: Severity,
    pub status: IncidentStatus,
    pub owner: Option<String>,
    /// How it was opened, as words that follow "opened": `by hand`, `from alert 12`,
    /// `from the offenders list (203.0.113.5)`, `from the timeline`.
    pub source: String,
    pub instances: Vec<String>,
    pub ips: Vec<String>,
    #[ts(type = "number")]
    pub from_us: i64,
    #[ts(type = "number")]
    pub to_us: i64,
    #[ts(type = "number")]
    pub opened_us: i64,
    #[ts(type = "number | null")]
    pub closed_us: Option<i64>,
    /// The step of the playbook the operator is on.
    pub step: Option<String>,
}

/// One line of an incident's own timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct IncidentEntry {
    #[ts(type = "number")]
    pub id: i64,
    #[ts(type = "number")]
    pub at_us: i64,
    pub actor: String,
    pub kind: EntryKind,
    pub text: String,
    /// For actions: whether the effect was verified.
    pub ok: Option<bool>,
    /// For actions: what was done and checked, in order.
    pub steps: Vec<String>,
}

/// A new incident's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIncident<'a> {
    pub title: &'a str,
    pub severity: Severity,
    pub source: &'a str,
    pub instances: &'a [String],
    pub ips: &'a [String],
    pub from_us: i64,
    pub to_us: i64,
    pub opened_us: i64,
    /// The profile whose playbook it follows.
    pub playbook: Option<&'a str>,
    pub step: Option<&'a str>,
}

/// A new line of an incident's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry<'a> {
    pub at_us: i64,
    pub actor: &'a str,
    pub kind: EntryKind,
    pub text: &'a str,
    pub ok: Option<bool>,
    pub steps: &'a [String],
}

const COLUMNS: &str = "id, title, severity, status, owner, source, instances, ips, from_us, to_us, opened_us, closed_us, step";

/// A list of strings kept as JSON text.
fn list(column: usize, text: &str) -> rusqlite::Result<Vec<String>> {
    serde_json::from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, e.into())
    })
}

fn to_json(list: &[String]) -> String {
    // A list of strings always serializes.
    serde_json::to_string(list).unwrap_or_else(|_| "[]".to_owned())
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Incident> {
    let severity: String = r.get(2)?;
    let instances: String = r.get(6)?;
    let ips: String = r.get(7)?;
    Ok(Incident {
        id: r.get(0)?,
        title: r.get(1)?,
        severity: parse_word(2, &severity, Severity::from_word)?,
        status: r.get(3)?,
        owner: r.get(4)?,
        source: opened(r.get(5)?),
        instances: list(6, &instances)?,
        ips: list(7, &ips)?,
        from_us: r.get(8)?,
        to_us: r.get(9)?,
        opened_us: r.get(10)?,
        closed_us: r.get(11)?,
        step: r.get(12)?,
    })
}

#[derive(Debug, Clone, Copy)]
pub struct Incidents<'a>(pub(crate) &'a Connection);

impl Incidents<'_> {
    pub fn insert(&self, new: &NewIncident<'_>) -> Result<i64> {
        self.0.execute(
            "INSERT INTO incidents (title, severity, status, source, instances, ips, from_us, to_us, opened_us, playbook, step)
             VALUES (?1, ?2, 'open', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                new.title,
                new.severity.as_str(),
                new.source,
                to_json(new.instances),
                to_json(new.ips),
                new.from_us,
                new.to_us,
                new.opened_us,
                new.playbook,
                new.step
            ],
        )?;
        Ok(self.0.last_insert_rowid())
    }

    /// Open incidents first, then the newest.
    pub fn all(&self) -> Result<Vec<Incident>> {
        let mut stmt = self.0.prepare(&format!(
            "SELECT {COLUMNS} FROM incidents ORDER BY (status IN ('resolved', 'closed')), opened_us DESC"
        ))?;
        let rows = stmt.query_map([], row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn get(&self, id: i64) -> Result<Option<Incident>> {
        Ok(self
            .0
            .query_row(
                &format!("SELECT {COLUMNS} FROM incidents WHERE id = ?1"),
                [id],
                row,
            )
            .optional()?)
    }

    /// The profile whose playbook an incident follows.
    pub fn playbook(&self, id: i64) -> Result<Option<String>> {
        Ok(self
            .0
            .query_row("SELECT playbook FROM incidents WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?
            .flatten())
    }

    pub fn set_status(
        &self,
        id: i64,
        status: IncidentStatus,
        closed_us: Option<i64>,
    ) -> Result<()> {
        self.0.execute(
            "UPDATE incidents SET status = ?2, closed_us = ?3 WHERE id = ?1",
            params![id, status, closed_us],
        )?;
        Ok(())
    }

    pub fn set_owner(&self, id: i64, owner: Option<&str>) -> Result<()> {
        self.0.execute(
            "UPDATE incidents SET owner = ?2 WHERE id = ?1",
            params![id, owner],
        )?;
        Ok(())
    }

    pub fn set_step(&self, id: i64, step: &str) -> Result<()> {
        self.0.execute(
            "UPDATE incidents SET step = ?2 WHERE id = ?1",
            params![id, step],
        )?;
        Ok(())
    }

    pub fn set_ips(&self, id: i64, ips: &[String]) -> Result<()> {
        self.0.execute(
            "UPDATE incidents SET ips = ?2 WHERE id = ?1",
            params![id, to_json(ips)],
        )?;
        Ok(())
    }

    /// One line of the incident's log.
    pub fn log(&self, id: i64, entry: &NewEntry<'_>) -> Result<()> {
        self.0.execute(
            "INSERT INTO incident_log (incident, at_us, actor, kind, text, ok, steps) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id,
                entry.at_us,
                entry.actor,
                entry.kind,
                entry.text,
                entry.ok,
                to_json(entry.steps)
            ],
        )?;
        Ok(())
    }

    /// An incident's log, oldest first.
    pub fn entries(&self, id: i64) -> Result<Vec<IncidentEntry>> {
        let mut stmt = self.0.prepare(
            "SELECT id, at_us, actor, kind, text, ok, steps FROM incident_log
             WHERE incident = ?1 ORDER BY at_us, id",
        )?;
        let rows = stmt.query_map([id], |r| {
            let steps: String = r.get(6)?;
            Ok(IncidentEntry {
                id: r.get(0)?,
                at_us: r.get(1)?,
                actor: r.get(2)?,
                kind: r.get(3)?,
                text: r.get(4)?,
                ok: r.get(5)?,
                steps: list(6, &steps)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// An incident's origin as words that follow "opened" (builds before said `alert 12`).
fn opened(source: String) -> String {
    if source.starts_with("alert ") {
        format!("from {source}")
    } else {
        source
    }
}
