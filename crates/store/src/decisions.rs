//! `agent_decisions`: what the agents decided on their own (blocks, records, allowlisted
//! firings, drift), as pulled, so "why is this address blocked?" is answered across the fleet
//! with the lines that caused each decision.

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::Result;

pub(crate) const CREATE: &str = "CREATE TABLE agent_decisions (
         instance   TEXT NOT NULL,
         agent_id   INTEGER NOT NULL,
         time_us    INTEGER NOT NULL,
         kind       TEXT NOT NULL,
         rule_name  TEXT NOT NULL,
         ip         TEXT NOT NULL,
         ttl_secs   INTEGER,
         until      INTEGER,
         enforced   TEXT NOT NULL,
         verified   INTEGER NOT NULL,
         note       TEXT NOT NULL,
         lines      TEXT NOT NULL,
         PRIMARY KEY (instance, agent_id)
     ) STRICT;
     CREATE INDEX agent_decisions_by_ip ON agent_decisions (ip, time_us);";

/// One decision, as the console keeps and shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct DecisionRecord {
    pub instance: String,
    /// The agent's number for it.
    pub agent_id: i64,
    pub time_us: i64,
    /// `block`, `alert`, `allowlisted` or `drift`.
    pub kind: String,
    pub rule_name: String,
    pub ip: String,
    pub ttl_secs: Option<i64>,
    /// Unix seconds.
    pub until: Option<i64>,
    /// `firewall` or `nowhere`.
    pub enforced: String,
    pub verified: bool,
    pub note: String,
    /// The log lines that caused it.
    pub lines: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct Decisions<'a>(pub(crate) &'a Connection);

impl Decisions<'_> {
    /// Keep `d`; one already kept (the same agent number) is left as it is.
    pub fn put(&self, d: &DecisionRecord) -> Result<()> {
        let lines = serde_json::to_string(&d.lines).unwrap_or_else(|_| "[]".into());
        self.0
            .prepare_cached(
                "INSERT OR IGNORE INTO agent_decisions (instance, agent_id, time_us, kind,
                     rule_name, ip, ttl_secs, until, enforced, verified, note, lines)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?
            .execute(params![
                d.instance,
                d.agent_id,
                d.time_us,
                d.kind,
                d.rule_name,
                d.ip,
                d.ttl_secs,
                d.until,
                d.enforced,
                d.verified,
                d.note,
                lines
            ])?;
        Ok(())
    }

    /// Every decision about `ip` on any instance, newest first (at most `limit`).
    pub fn about(&self, ip: &str, limit: u32) -> Result<Vec<DecisionRecord>> {
        let mut stmt = self.0.prepare_cached(
            "SELECT instance, agent_id, time_us, kind, rule_name, ip, ttl_secs, until, enforced,
                    verified, note, lines
             FROM agent_decisions WHERE ip = ?1 ORDER BY time_us DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![ip, limit], |r| {
            let lines: String = r.get(11)?;
            Ok(DecisionRecord {
                instance: r.get(0)?,
                agent_id: r.get(1)?,
                time_us: r.get(2)?,
                kind: r.get(3)?,
                rule_name: r.get(4)?,
                ip: r.get(5)?,
                ttl_secs: r.get(6)?,
                until: r.get(7)?,
                enforced: r.get(8)?,
                verified: r.get(9)?,
                note: r.get(10)?,
                lines: serde_json::from_str(&lines).unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Keep only an instance's newest `keep` decisions (an agent sends what it likes).
    pub fn prune(&self, instance: &str, keep: u32) -> Result<()> {
        self.0
            .prepare_cached(
                "DELETE FROM agent_decisions WHERE rowid IN (
                     SELECT rowid FROM agent_decisions WHERE instance = ?1
                     ORDER BY time_us DESC, agent_id DESC LIMIT -1 OFFSET ?2)",
            )?
            .execute(params![instance, keep])?;
        Ok(())
    }

    /// Forget an instance's decisions (it was removed, or its agent started numbering anew).
    pub fn forget(&self, instance: &str) -> Result<()> {
        self.0.execute(
            "DELETE FROM agent_decisions WHERE instance = ?1",
            [instance],
        )?;
        Ok(())
    }
}
