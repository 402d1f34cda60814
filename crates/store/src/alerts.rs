//! `alerts`: what the detection rules (and compliance drift) raised. One row per attack, with
//! a facet per rule that fired on it (`alert_facets`) and its addresses (`alert_addresses`);
//! its state is the operator's.

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

/// One alert, many rules: what each rule saw of the alert's attack, the addresses it
/// involves, and the rotation a notice is about. Alerts raised before this keep their one
/// rule as their one facet.
pub(crate) const FACETS: &str = "CREATE TABLE alert_facets (
         alert_id   INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
         rule_id    TEXT NOT NULL,
         rule_name  TEXT NOT NULL,
         kind       TEXT NOT NULL,
         severity   TEXT NOT NULL,
         first_us   INTEGER NOT NULL,
         last_us    INTEGER NOT NULL,
         count      INTEGER NOT NULL,
         distinct_n INTEGER NOT NULL,
         detail     TEXT NOT NULL,
         PRIMARY KEY (alert_id, rule_id)
     ) STRICT;
     CREATE TABLE alert_addresses (
         alert_id INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
         address  TEXT NOT NULL,
         PRIMARY KEY (alert_id, address)
     ) STRICT, WITHOUT ROWID;
     ALTER TABLE alerts ADD COLUMN rotation_id INTEGER;
     CREATE INDEX alerts_by_kind ON alerts (kind, instance, state);
     INSERT INTO alert_facets (alert_id, rule_id, rule_name, kind, severity, first_us, last_us,
             count, distinct_n, detail)
         SELECT id, rule_id, rule_name, kind, severity, first_us, last_us, count, distinct_n, detail
         FROM alerts WHERE kind != 'compliance';
     INSERT INTO alert_addresses (alert_id, address)
         SELECT id, subject FROM alerts
         WHERE subject IS NOT NULL AND kind IN ('brute_force', 'key_spraying');";

/// A rule silenced on one instance for a while, with the operator's reason; what it would
/// have raised meanwhile is counted, not alerted.
pub(crate) const SNOOZES: &str = "CREATE TABLE alert_snoozes (
         rule_id    TEXT NOT NULL,
         instance   TEXT NOT NULL,
         until_us   INTEGER NOT NULL,
         reason     TEXT NOT NULL,
         created_us INTEGER NOT NULL,
         held       INTEGER NOT NULL DEFAULT 0,
         PRIMARY KEY (rule_id, instance)
     ) STRICT;";

/// A rule snoozed on an instance: until when, why, and how many firings it held back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct Snooze {
    pub rule_id: String,
    pub instance: String,
    #[ts(type = "number")]
    pub until_us: i64,
    pub reason: String,
    #[ts(type = "number")]
    pub created_us: i64,
    /// Firings of the rule on the instance while it was snoozed (none raised an alert).
    #[ts(type = "number")]
    pub held: u64,
}

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

/// What one rule saw of an alert's attack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct AlertFacet {
    pub rule_id: String,
    pub rule_name: String,
    /// The rule's kind: `brute_force`, `key_spraying`, `distributed`, `baseline_jump`.
    pub kind: String,
    pub severity: Severity,
    #[ts(type = "number")]
    pub first_us: i64,
    #[ts(type = "number")]
    pub last_us: i64,
    /// Failures the rule counted.
    #[ts(type = "number")]
    pub count: u64,
    /// Distinct keys (key spraying) or addresses (distributed, baseline) in its window.
    #[ts(type = "number")]
    pub distinct: u64,
    /// One sentence: what the rule saw.
    pub detail: String,
}

/// An alert: one attack on one instance (from one address, or from many for a distributed
/// attack), with a facet per rule that fired on it; or a notice (history found late, clients
/// still using a rotated key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct Alert {
    #[ts(type = "number")]
    pub id: i64,
    pub rule_id: String,
    pub rule_name: String,
    /// The kind of the first rule that fired: `brute_force`, `key_spraying`, `distributed`,
    /// `baseline_jump`; or `compliance`, `history` (found in events that arrived late),
    /// `stale_key` (clients still using a key a rotation replaced).
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
    /// What each rule saw, in the order they fired.
    pub facets: Vec<AlertFacet>,
    /// The addresses involved (at most [`MAX_ADDRESSES`]).
    pub addresses: Vec<String>,
    /// The rotation a `stale_key` notice is about.
    #[ts(type = "number | null")]
    pub rotation_id: Option<i64>,
}

/// Addresses kept per alert; the facets' counts say how many there were.
pub const MAX_ADDRESSES: usize = 1000;

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
    pub rotation_id: Option<i64>,
}

/// What changes of an alert when its attack goes on or another rule joins it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertUpdate<'a> {
    pub rule_name: &'a str,
    pub severity: Severity,
    pub first_us: i64,
    pub last_us: i64,
    pub count: u64,
    pub detail: &'a str,
}

const COLUMNS: &str = "id, rule_id, rule_name, kind, severity, instance, subject, first_us, last_us, count, detail, state, state_at, created_us, rotation_id";

const FACET_COLUMNS: &str =
    "rule_id, rule_name, kind, severity, first_us, last_us, count, distinct_n, detail";

fn facet_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AlertFacet> {
    let severity: String = r.get(3)?;
    Ok(AlertFacet {
        rule_id: r.get(0)?,
        rule_name: r.get(1)?,
        kind: r.get(2)?,
        severity: parse_word(3, &severity, Severity::from_word)?,
        first_us: r.get(4)?,
        last_us: r.get(5)?,
        count: r.get::<_, i64>(6)? as u64,
        distinct: r.get::<_, i64>(7)? as u64,
        detail: r.get(8)?,
    })
}

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
        facets: Vec::new(),
        addresses: Vec::new(),
        rotation_id: r.get(14)?,
    })
}

#[derive(Debug, Clone, Copy)]
pub struct Alerts<'a>(pub(crate) &'a Connection);

impl Alerts<'_> {
    /// The unresolved alert of one of `kinds` about `subject` on `instance` whose last event
    /// is at or after `since_us`: the attack a firing joins.
    pub fn open_attack(
        &self,
        kinds: &[&str],
        instance: &str,
        subject: Option<&str>,
        since_us: i64,
    ) -> Result<Option<i64>> {
        let kinds = serde_json::to_string(kinds).unwrap_or_else(|_| "[]".into());
        Ok(self
            .0
            .query_row(
                "SELECT id FROM alerts WHERE instance = ?1 AND subject IS ?2
                 AND kind IN (SELECT value FROM json_each(?3))
                 AND state != 'resolved' AND last_us >= ?4 ORDER BY last_us DESC, id DESC LIMIT 1",
                params![instance, subject, kinds, since_us],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The unresolved alert of `kind` on `instance` raised at or after `since_us` (a
    /// summary still being gathered).
    pub fn open_of_kind(&self, kind: &str, instance: &str, since_us: i64) -> Result<Option<i64>> {
        Ok(self
            .0
            .query_row(
                "SELECT id FROM alerts WHERE kind = ?1 AND instance = ?2
                 AND state != 'resolved' AND created_us >= ?3 ORDER BY id DESC LIMIT 1",
                params![kind, instance, since_us],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The unresolved alert of `kind` about rotation `rotation_id`.
    pub fn open_for_rotation(&self, kind: &str, rotation_id: i64) -> Result<Option<i64>> {
        Ok(self
            .0
            .query_row(
                "SELECT id FROM alerts WHERE kind = ?1 AND rotation_id = ?2
                 AND state != 'resolved' ORDER BY id DESC LIMIT 1",
                params![kind, rotation_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Write what one rule saw of an alert (added, or replacing what it saw before).
    pub fn put_facet(&self, alert_id: i64, facet: &AlertFacet) -> Result<()> {
        self.0.execute(
            "INSERT INTO alert_facets (alert_id, rule_id, rule_name, kind, severity, first_us,
                 last_us, count, distinct_n, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (alert_id, rule_id) DO UPDATE SET rule_name = excluded.rule_name,
                 kind = excluded.kind, severity = excluded.severity,
                 first_us = excluded.first_us, last_us = excluded.last_us,
                 count = excluded.count, distinct_n = excluded.distinct_n,
                 detail = excluded.detail",
            params![
                alert_id,
                facet.rule_id,
                facet.rule_name,
                facet.kind,
                facet.severity.as_str(),
                facet.first_us,
                facet.last_us,
                facet.count as i64,
                facet.distinct as i64,
                facet.detail
            ],
        )?;
        Ok(())
    }

    /// An alert's facets, in the order they were first written.
    pub fn facets(&self, alert_id: i64) -> Result<Vec<AlertFacet>> {
        let mut stmt = self.0.prepare_cached(&format!(
            "SELECT {FACET_COLUMNS} FROM alert_facets WHERE alert_id = ?1 ORDER BY rowid"
        ))?;
        let rows = stmt.query_map([alert_id], facet_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Add addresses to an alert, up to [`MAX_ADDRESSES`] in all; returns how many it holds.
    pub fn add_addresses(&self, alert_id: i64, addresses: &[&str]) -> Result<usize> {
        let mut held = self.address_count(alert_id)?;
        let mut stmt = self.0.prepare_cached(
            "INSERT OR IGNORE INTO alert_addresses (alert_id, address) VALUES (?1, ?2)",
        )?;
        for address in addresses {
            if held >= MAX_ADDRESSES {
                break;
            }
            held += stmt.execute(params![alert_id, address])?;
        }
        Ok(held)
    }

    fn address_count(&self, alert_id: i64) -> Result<usize> {
        Ok(self.0.query_row(
            "SELECT COUNT(*) FROM alert_addresses WHERE alert_id = ?1",
            [alert_id],
            |r| r.get::<_, i64>(0),
        )? as usize)
    }

    /// An alert's addresses, in address order.
    pub fn addresses(&self, alert_id: i64) -> Result<Vec<String>> {
        let mut stmt = self.0.prepare_cached(
            "SELECT address FROM alert_addresses WHERE alert_id = ?1 ORDER BY address",
        )?;
        let rows = stmt.query_map([alert_id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The attack goes on, or another rule joined it: its totals and sentence.
    pub fn update(&self, id: i64, update: &AlertUpdate<'_>) -> Result<()> {
        self.0.execute(
            "UPDATE alerts SET rule_name = ?2, severity = ?3, first_us = ?4, last_us = ?5,
                 count = ?6, detail = ?7 WHERE id = ?1",
            params![
                id,
                update.rule_name,
                update.severity.as_str(),
                update.first_us,
                update.last_us,
                update.count as i64,
                update.detail
            ],
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
                 first_us, last_us, count, distinct_n, detail, created_us, rotation_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
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
                new.created_us,
                new.rotation_id
            ],
        )?;
        let id = self.0.last_insert_rowid();
        self.get(id)?
            .ok_or(crate::Error::Sqlite(rusqlite::Error::QueryReturnedNoRows))
    }

    /// An alert with its facets and addresses.
    fn complete(&self, mut alert: Alert) -> Result<Alert> {
        alert.facets = self.facets(alert.id)?;
        alert.addresses = self.addresses(alert.id)?;
        Ok(alert)
    }

    pub fn get(&self, id: i64) -> Result<Option<Alert>> {
        let alert = self
            .0
            .query_row(
                &format!("SELECT {COLUMNS} FROM alerts WHERE id = ?1"),
                [id],
                row,
            )
            .optional()?;
        alert.map(|a| self.complete(a)).transpose()
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
        let alerts: Vec<Alert> = rows.collect::<rusqlite::Result<_>>()?;
        alerts.into_iter().map(|a| self.complete(a)).collect()
    }

    /// Set an alert's state; false when there is no such alert.
    pub fn set_state(&self, id: i64, state: AlertState, at_us: i64) -> Result<bool> {
        Ok(self.0.execute(
            "UPDATE alerts SET state = ?2, state_at = ?3 WHERE id = ?1",
            params![id, state, at_us],
        )? > 0)
    }

    /// Set many alerts' state in one transaction: all of them or, on an error, none. Returns
    /// the ids that exist (and were set), in the order given.
    pub fn set_states(&self, ids: &[i64], state: AlertState, at_us: i64) -> Result<Vec<i64>> {
        let tx = self.0.unchecked_transaction()?;
        let mut set = Vec::with_capacity(ids.len());
        {
            let mut update =
                tx.prepare_cached("UPDATE alerts SET state = ?2, state_at = ?3 WHERE id = ?1")?;
            for &id in ids {
                if update.execute(params![id, state, at_us])? > 0 {
                    set.push(id);
                }
            }
        }
        tx.commit()?;
        Ok(set)
    }

    /// Snooze a rule on an instance (again: the new end, reason and count replace the old).
    pub fn snooze(&self, snooze: &Snooze) -> Result<()> {
        self.0.execute(
            "INSERT INTO alert_snoozes (rule_id, instance, until_us, reason, created_us, held)
             VALUES (?1, ?2, ?3, ?4, ?5, 0)
             ON CONFLICT (rule_id, instance) DO UPDATE SET until_us = excluded.until_us,
                 reason = excluded.reason, created_us = excluded.created_us, held = 0",
            params![
                snooze.rule_id,
                snooze.instance,
                snooze.until_us,
                snooze.reason,
                snooze.created_us
            ],
        )?;
        Ok(())
    }

    /// End a snooze; false when there was none.
    pub fn unsnooze(&self, rule_id: &str, instance: &str) -> Result<bool> {
        Ok(self.0.execute(
            "DELETE FROM alert_snoozes WHERE rule_id = ?1 AND instance = ?2",
            params![rule_id, instance],
        )? > 0)
    }

    /// The snoozes still running at `now_us`, the soonest to end first.
    pub fn snoozes(&self, now_us: i64) -> Result<Vec<Snooze>> {
        let mut stmt = self.0.prepare_cached(
            "SELECT rule_id, instance, until_us, reason, created_us, held FROM alert_snoozes
             WHERE until_us > ?1 ORDER BY until_us, rule_id, instance",
        )?;
        let rows = stmt.query_map([now_us], |r| {
            Ok(Snooze {
                rule_id: r.get(0)?,
                instance: r.get(1)?,
                until_us: r.get(2)?,
                reason: r.get(3)?,
                created_us: r.get(4)?,
                held: r.get::<_, i64>(5)? as u64,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Whether `rule_id` is snoozed on `instance` at `now_us`; if so, and the firing is a
    /// new one (not an attack going on), it is counted on the snooze.
    pub fn hold(&self, rule_id: &str, instance: &str, now_us: i64, new: bool) -> Result<bool> {
        Ok(self.0.execute(
            "UPDATE alert_snoozes SET held = held + ?4
             WHERE rule_id = ?1 AND instance = ?2 AND until_us > ?3",
            params![rule_id, instance, now_us, i64::from(new)],
        )? > 0)
    }
}
