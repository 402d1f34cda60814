//! `alerts`: what the detection rules (and compliance drift) raised. One row per episode; its
//! state is the operator's.

use gatehouse_events::Severity;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::{parse_word, words, Result};

pub(crate) const CREATE: &str = "CREATE TABLE alerts (
         id         INTEGER PRIMARY KEY,
         rule_id    TEXT NOT NULL,
         rule_name  TEXT NOT NULL,
         kind       TEXT NOT NULL,
         severity   TEXT NOT NULL,
         instance   TEXT NOT NULL,
         subject    TEXT,
         first_us   INTEGER NOT NULL,
         last_us    INTEGER NOT NULL,
         count      INTEGER NOT NULL,
         distinct_n INTEGER NOT NULL,
         detail     TEXT NOT NULL,
         state      TEXT NOT NULL DEFAULT 'new' CHECK (state IN ('new', 'acknowledged', 'resolved')),
         state_at   INTEGER,
         created_us INTEGER NOT NULL
     ) STRICT;
     CREATE INDEX alerts_by_subject ON alerts (rule_id, instance, subject, state);
     CREATE INDEX alerts_by_time ON alerts (last_us);";

words! {
    /// Where an alert stands.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
    #[serde(rename_all = "snake_case")]
    pub enum AlertState {
        New = "new",
        Acknowledged = "acknowledged",
        Resolved = "resolved",
    }
}

/// An alert: one episode of one rule on one instance (and address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct Alert {
    #[ts(type = "number")]
    pub id: i64,
    pub rule_id: String,
    pub rule_name: String,
    /// `brute_force`, `key_spraying`, `distributed`, `baseline_jump`, `compliance`.
    pub kind: String,
    pub severity: Severity,
    pub instance: String,
    /// The address, for per-address rules (the item, for compliance drift).
    pub subject: Option<String>,
    #[ts(type = "number")]
    pub first_us: i64,
    #[ts(type = "number")]
    pub last_us: i64,
    #[ts(type = "number")]
    pub count: u64,
    /// One sentence: what happened.
    pub detail: String,
    pub state: AlertState,
    #[ts(type = "number | null")]
    pub state_at: Option<i64>,
    #[ts(type = "number")]
    pub created_us: i64,
}

/// Which alerts to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct AlertFilter {
    /// Only alerts in this state; `None` lists new and acknowledged ones.
    pub state: Option<AlertState>,
    /// Every state, resolved included.
    pub all: bool,
    pub instance: Option<String>,
    pub subject: Option<String>,
}

/// A new alert's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlert<'a> {
    pub rule_id: &'a str,
    pub rule_name: &'a str,
    pub kind: &'a str,
    pub severity: Severity,
    pub instance: &'a str,
    pub subject: Option<&'a str>,
    pub first_us: i64,
    pub last_us: i64,
    pub count: u64,
    pub distinct: u64,
    pub detail: &'a str,
    pub created_us: i64,
}

const COLUMNS: &str = "id, rule_id, rule_name, kind, severity, instance, subject, first_us, last_us, count, detail, state, state_at, created_us";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Alert> {
    let severity: String = r.get(4)?;
    Ok(Alert {
        id: r.get(0)?,
        rule_id: r.get(1)?,
        rule_name: r.get(2)?,
        kind: r.get(3)?,
        severity: parse_word(4, &severity, Severity::from_word)?,
        instance: r.get(5)?,
        subject: r.get(6)?,
        first_us: r.get(7)?,
        last_us: r.get(8)?,
        count: r.get::<_, i64>(9)? as u64,
        detail: r.get(10)?,
        state: r.get(11)?,
        state_at: r.get(12)?,
        created_us: r.get(13)?,
    })
}

#[derive(Debug, Clone, Copy)]
pub struct Alerts<'a>(pub(crate) &'a Connection);

impl Alerts<'_> {
    /// The unresolved alert of this rule and subject on `instance` whose last event is at
    /// or after `since_us`: the episode a new firing joins.
    pub fn open_episode(
        &self,
        rule_id: &str,
        instance: &str,
        subject: Option<&str>,
        since_us: i64,
    ) -> Result<Option<i64>> {
        Ok(self
            .0
            .query_row(
                "SELECT id FROM alerts WHERE rule_id = ?1 AND instance = ?2 AND subject IS ?3
                 AND state != 'resolved' AND last_us >= ?4 ORDER BY last_us DESC LIMIT 1",
                params![rule_id, instance, subject, since_us],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// An episode goes on: `added` more events up to `last_us`.
    pub fn extend(&self, id: i64, added: u64, last_us: i64, distinct: u64) -> Result<()> {
        self.0.execute(
            "UPDATE alerts SET count = count + ?2, last_us = MAX(last_us, ?3),
                 distinct_n = MAX(distinct_n, ?4) WHERE id = ?1",
            params![id, added as i64, last_us, distinct as i64],
        )?;
        Ok(())
    }

    /// One more occurrence at `at_us` (compliance drift seen again), with a new sentence.
    pub fn repeat(&self, id: i64, at_us: i64, detail: &str) -> Result<()> {
        self.0.execute(
            "UPDATE alerts SET last_us = ?2, count = count + 1, detail = ?3 WHERE id = ?1",
            params![id, at_us, detail],
        )?;
        Ok(())
    }

    pub fn set_detail(&self, id: i64, detail: &str) -> Result<()> {
        self.0.execute(
            "UPDATE alerts SET detail = ?2 WHERE id = ?1",
            params![id, detail],
        )?;
        Ok(())
    }

    /// The unresolved alert of `rule_id` about `subject` on `instance`, whatever its age.
    pub fn unresolved(&self, rule_id: &str, instance: &str, subject: &str) -> Result<Option<i64>> {
        Ok(self
            .0
            .query_row(
                "SELECT id FROM alerts WHERE rule_id = ?1 AND instance = ?2
                 AND subject = ?3 AND state != 'resolved'",
                params![rule_id, instance, subject],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn insert(&self, new: &NewAlert<'_>) -> Result<Alert> {
        self.0.execute(
            "INSERT INTO alerts (rule_id, rule_name, kind, severity, instance, subject,
                 first_us, last_us, count, distinct_n, detail, created_us)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                new.rule_id,
                new.rule_name,
                new.kind,
                new.severity.as_str(),
                new.instance,
                new.subject,
                new.first_us,
                new.last_us,
                new.count as i64,
                new.distinct as i64,
                new.detail,
                new.created_us
            ],
        )?;
        let id = self.0.last_insert_rowid();
        Ok(self.0.query_row(
            &format!("SELECT {COLUMNS} FROM alerts WHERE id = ?1"),
            [id],
            row,
        )?)
    }

    pub fn get(&self, id: i64) -> Result<Option<Alert>> {
        Ok(self
            .0
            .query_row(
                &format!("SELECT {COLUMNS} FROM alerts WHERE id = ?1"),
                [id],
                row,
            )
            .optional()?)
    }

    /// Alerts, newest activity first (at most 1,000).
    pub fn list(&self, filter: &AlertFilter) -> Result<Vec<Alert>> {
        let mut sql = format!("SELECT {COLUMNS} FROM alerts WHERE 1");
        let mut args: Vec<String> = Vec::new();
        match (filter.state, filter.all) {
            (Some(state), _) => {
                args.push(state.as_str().into());
                sql.push_str(&format!(" AND state = ?{}", args.len()));
            }
            (None, false) => sql.push_str(" AND state != 'resolved'"),
            (None, true) => {}
        }
        if let Some(instance) = &filter.instance {
            args.push(instance.clone());
            sql.push_str(&format!(" AND instance = ?{}", args.len()));
        }
        if let Some(subject) = &filter.subject {
            args.push(subject.clone());
            sql.push_str(&format!(" AND subject = ?{}", args.len()));
        }
        sql.push_str(" ORDER BY last_us DESC, id DESC LIMIT 1000");
        let mut stmt = self.0.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Set an alert's state; false when there is no such alert.
    pub fn set_state(&self, id: i64, state: AlertState, at_us: i64) -> Result<bool> {
        Ok(self.0.execute(
            "UPDATE alerts SET state = ?2, state_at = ?3 WHERE id = ?1",
            params![id, state, at_us],
        )? > 0)
    }
}
