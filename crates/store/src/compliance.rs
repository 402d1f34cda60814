//! The compliance tables: the last answer of each check per instance (`compliance_checks`),
//! each instance's last run (`compliance_runs`), per item its owner, due date, sign-off and the
//! state its checks had at the last run (`compliance_items`, to notice drift), and every
//! item's evidence, waivers and history.

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::{words, Result};

/// The keys whose rotation fixes a failed check (10).
pub(crate) const FIXES: &str =
    "ALTER TABLE compliance_checks ADD COLUMN fixes TEXT NOT NULL DEFAULT '[]';";

pub(crate) const CREATE: &str = "CREATE TABLE compliance_checks (
         instance   TEXT NOT NULL,
         check_id   TEXT NOT NULL,
         status     TEXT NOT NULL CHECK (status IN ('pass', 'fail', 'unknown')),
         summary    TEXT NOT NULL,
         evidence   TEXT NOT NULL,
         checked_at INTEGER NOT NULL,
         PRIMARY KEY (instance, check_id)
     ) STRICT;
     CREATE TABLE compliance_runs (
         instance TEXT PRIMARY KEY,
         at       INTEGER NOT NULL,
         problem  TEXT
     ) STRICT;
     CREATE TABLE compliance_items (
         instance      TEXT NOT NULL,
         item          TEXT NOT NULL,
         owner         TEXT,
         due_at        INTEGER,
         signed_off_at INTEGER,
         signed_off_by TEXT,
         last_state    TEXT,
         last_pass_at  INTEGER,
         PRIMARY KEY (instance, item)
     ) STRICT;
     CREATE TABLE compliance_evidence (
         id       INTEGER PRIMARY KEY,
         instance TEXT NOT NULL,
         item     TEXT NOT NULL,
         at       INTEGER NOT NULL,
         actor    TEXT NOT NULL,
         kind     TEXT NOT NULL CHECK (kind IN ('note', 'link', 'file')),
         text     TEXT NOT NULL,
         sha256   TEXT,
         size     INTEGER
     ) STRICT;
     CREATE INDEX compliance_evidence_by_item ON compliance_evidence (instance, item);
     CREATE TABLE compliance_waivers (
         id          INTEGER PRIMARY KEY,
         instance    TEXT NOT NULL,
         item        TEXT NOT NULL,
         kind        TEXT NOT NULL CHECK (kind IN ('not_applicable', 'accepted_risk')),
         reason      TEXT NOT NULL,
         approved_by TEXT NOT NULL,
         created_at  INTEGER NOT NULL,
         created_by  TEXT NOT NULL,
         expires_at  INTEGER NOT NULL,
         ended_at    INTEGER,
         ended_why   TEXT
     ) STRICT;
     CREATE INDEX compliance_waivers_by_item ON compliance_waivers (instance, item);
     CREATE TABLE compliance_history (
         id       INTEGER PRIMARY KEY,
         instance TEXT NOT NULL,
         item     TEXT NOT NULL,
         at       INTEGER NOT NULL,
         kind     TEXT NOT NULL,
         state    TEXT,
         detail   TEXT NOT NULL,
         actor    TEXT NOT NULL
     ) STRICT;
     CREATE INDEX compliance_history_by_item ON compliance_history (instance, item, at);";

words! {
    /// Where an item stands, in words shown everywhere the same.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, TS)]
    #[serde(rename_all = "snake_case")]
    pub enum ItemState {
        /// Automated: a check failed.
        Fail = "fail",
        /// Manual: never done, or due again.
        Due = "due",
        /// Automated: not checked yet, or a check could not run.
        Unknown = "unknown",
        Waived = "waived",
        /// Manual: signed off and not yet due again.
        Done = "done",
        /// Automated: every check passed.
        Pass = "pass",
    }
}

words! {
    /// One check's answer.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
    #[serde(rename_all = "snake_case")]
    pub enum CheckState {
        Pass = "pass",
        Fail = "fail",
        Unknown = "unknown",
    }
}

words! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
    #[serde(rename_all = "snake_case")]
    pub enum EvidenceKind {
        Note = "note",
        Link = "link",
        File = "file",
    }
}

words! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
    #[serde(rename_all = "snake_case")]
    pub enum WaiverKind {
        NotApplicable = "not_applicable",
        AcceptedRisk = "accepted_risk",
    }
}

impl WaiverKind {
    /// As a person says it.
    pub fn words(self) -> &'static str {
        match self {
            WaiverKind::NotApplicable => "not applicable",
            WaiverKind::AcceptedRisk => "accepted risk",
        }
    }
}

words! {
    /// What a line of an item's history records.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
    #[serde(rename_all = "snake_case")]
    pub enum HistoryKind {
        /// A run of the checks decided it.
        Check = "check",
        /// It passed before and fails now.
        Reopened = "reopened",
        Signoff = "signoff",
        Evidence = "evidence",
        Owner = "owner",
        Waiver = "waiver",
        WaiverEnded = "waiver_ended",
        WaiverExpired = "waiver_expired",
    }
}

/// One check's last answer for an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct CheckView {
    pub check: String,
    pub status: CheckState,
    pub summary: String,
    pub evidence: Vec<String>,
    #[ts(type = "number")]
    pub checked_at: i64,
    /// Keys whose rotation fixes what failed (by name, as the inventory lists them).
    pub fixes: Vec<String>,
}

/// Evidence attached to an item. A file is recorded by name, size and SHA-256; its content
/// stays where the operator keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct Evidence {
    #[ts(type = "number")]
    pub id: i64,
    #[ts(type = "number")]
    pub at: i64,
    pub actor: String,
    pub kind: EvidenceKind,
    pub text: String,
    pub sha256: Option<String>,
    #[ts(type = "number | null")]
    pub size: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct Waiver {
    #[ts(type = "number")]
    pub id: i64,
    pub kind: WaiverKind,
    pub reason: String,
    pub approved_by: String,
    #[ts(type = "number")]
    pub created_at: i64,
    #[ts(type = "number")]
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct HistoryEntry {
    #[ts(type = "number")]
    pub at: i64,
    pub kind: HistoryKind,
    pub state: Option<ItemState>,
    pub detail: String,
    pub actor: String,
}

/// What the console keeps about one item of one instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemRecord {
    pub owner: Option<String>,
    pub due_at: Option<i64>,
    pub signed_off_at: Option<i64>,
    pub signed_off_by: Option<String>,
    /// What its checks said at the last run.
    pub last_state: Option<ItemState>,
}

/// A waiver's row, as it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWaiver<'a> {
    pub kind: WaiverKind,
    pub reason: &'a str,
    pub approved_by: &'a str,
    pub expires_at: i64,
    pub created_by: &'a str,
}

/// Evidence's row, as it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvidence<'a> {
    pub at: i64,
    pub actor: &'a str,
    pub kind: EvidenceKind,
    pub text: &'a str,
    pub sha256: Option<&'a str>,
    pub size: Option<i64>,
}

#[derive(Debug, Clone, Copy)]
pub struct Compliance<'a>(pub(crate) &'a Connection);

impl Compliance<'_> {
    /// When `check` last answered for `instance`.
    pub fn last_checked(&self, instance: &str, check: &str) -> Result<Option<i64>> {
        Ok(self
            .0
            .query_row(
                "SELECT checked_at FROM compliance_checks WHERE instance = ?1 AND check_id = ?2",
                params![instance, check],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Keep a check's answer (replacing the one before).
    pub fn store_answer(&self, instance: &str, answer: &CheckView) -> Result<()> {
        self.0.execute(
            "INSERT INTO compliance_checks (instance, check_id, status, summary, evidence, checked_at, fixes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (instance, check_id) DO UPDATE SET status = excluded.status,
               summary = excluded.summary, evidence = excluded.evidence,
               checked_at = excluded.checked_at, fixes = excluded.fixes",
            params![
                instance,
                answer.check,
                answer.status,
                answer.summary,
                // A list of strings always serializes.
                serde_json::to_string(&answer.evidence).unwrap_or_default(),
                answer.checked_at,
                serde_json::to_string(&answer.fixes).unwrap_or_default()
            ],
        )?;
        Ok(())
    }

    /// A check's last answer for `instance`.
    pub fn answer(&self, instance: &str, check: &str) -> Result<Option<CheckView>> {
        Ok(self
            .0
            .query_row(
                "SELECT status, summary, evidence, checked_at, fixes FROM compliance_checks
                 WHERE instance = ?1 AND check_id = ?2",
                params![instance, check],
                |r| {
                    let evidence: String = r.get(2)?;
                    Ok(CheckView {
                        check: check.to_owned(),
                        status: r.get(0)?,
                        summary: r.get(1)?,
                        evidence: serde_json::from_str(&evidence).map_err(|e| {
                            rusqlite::Error::FromSqlConversionFailure(
                                2,
                                rusqlite::types::Type::Text,
                                e.into(),
                            )
                        })?,
                        checked_at: r.get(3)?,
                        // Damage here loses only the offer of a fix, never the answer.
                        fixes: serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or_default(),
                    })
                },
            )
            .optional()?)
    }

    /// Record a run of the checks on `instance`, and why it failed if it did.
    pub fn set_run(&self, instance: &str, problem: Option<&str>, now: i64) -> Result<()> {
        self.0.execute(
            "INSERT INTO compliance_runs (instance, at, problem) VALUES (?1, ?2, ?3)
             ON CONFLICT (instance) DO UPDATE SET at = excluded.at, problem = excluded.problem",
            params![instance, now, problem],
        )?;
        Ok(())
    }

    /// When the checks last ran on `instance`, and why they failed if they did.
    pub fn run(&self, instance: &str) -> Result<(Option<i64>, Option<String>)> {
        Ok(self
            .0
            .query_row(
                "SELECT at, problem FROM compliance_runs WHERE instance = ?1",
                [instance],
                |r| Ok((Some(r.get(0)?), r.get(1)?)),
            )
            .optional()?
            .unwrap_or((None, None)))
    }

    fn ensure_item(&self, instance: &str, item: &str) -> Result<()> {
        self.0.execute(
            "INSERT OR IGNORE INTO compliance_items (instance, item) VALUES (?1, ?2)",
            params![instance, item],
        )?;
        Ok(())
    }

    pub fn item(&self, instance: &str, item: &str) -> Result<ItemRecord> {
        Ok(self
            .0
            .query_row(
                "SELECT owner, due_at, signed_off_at, signed_off_by, last_state FROM compliance_items
                 WHERE instance = ?1 AND item = ?2",
                params![instance, item],
                |r| {
                    Ok(ItemRecord {
                        owner: r.get(0)?,
                        due_at: r.get(1)?,
                        signed_off_at: r.get(2)?,
                        signed_off_by: r.get(3)?,
                        last_state: r.get(4)?,
                    })
                },
            )
            .optional()?
            .unwrap_or_default())
    }

    pub fn assign(
        &self,
        instance: &str,
        item: &str,
        owner: Option<&str>,
        due_at: Option<i64>,
    ) -> Result<()> {
        self.ensure_item(instance, item)?;
        self.0.execute(
            "UPDATE compliance_items SET owner = ?3, due_at = ?4 WHERE instance = ?1 AND item = ?2",
            params![instance, item, owner, due_at],
        )?;
        Ok(())
    }

    pub fn sign_off(&self, instance: &str, item: &str, now: i64, who: &str) -> Result<()> {
        self.ensure_item(instance, item)?;
        self.0.execute(
            "UPDATE compliance_items SET signed_off_at = ?3, signed_off_by = ?4, due_at = NULL
             WHERE instance = ?1 AND item = ?2",
            params![instance, item, now, who],
        )?;
        Ok(())
    }

    /// What an item's checks said at this run (and when it last passed).
    pub fn set_last_state(
        &self,
        instance: &str,
        item: &str,
        state: ItemState,
        now: i64,
    ) -> Result<()> {
        self.ensure_item(instance, item)?;
        self.0.execute(
            "UPDATE compliance_items SET last_state = ?3, last_pass_at = CASE WHEN ?3 = 'pass' THEN ?4 ELSE last_pass_at END
             WHERE instance = ?1 AND item = ?2",
            params![instance, item, state, now],
        )?;
        Ok(())
    }

    pub fn add_evidence(&self, instance: &str, item: &str, new: &NewEvidence<'_>) -> Result<()> {
        self.ensure_item(instance, item)?;
        self.0.execute(
            "INSERT INTO compliance_evidence (instance, item, at, actor, kind, text, sha256, size)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![instance, item, new.at, new.actor, new.kind, new.text, new.sha256, new.size],
        )?;
        Ok(())
    }

    /// An item's evidence, newest first.
    pub fn evidence(&self, instance: &str, item: &str) -> Result<Vec<Evidence>> {
        let mut stmt = self.0.prepare(
            "SELECT id, at, actor, kind, text, sha256, size FROM compliance_evidence
             WHERE instance = ?1 AND item = ?2 ORDER BY at DESC, id DESC",
        )?;
        let rows = stmt.query_map(params![instance, item], |r| {
            Ok(Evidence {
                id: r.get(0)?,
                at: r.get(1)?,
                actor: r.get(2)?,
                kind: r.get(3)?,
                text: r.get(4)?,
                sha256: r.get(5)?,
                size: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Waive an item, ending the waiver it had.
    pub fn waive(&self, instance: &str, item: &str, new: &NewWaiver<'_>, now: i64) -> Result<()> {
        self.ensure_item(instance, item)?;
        let tx = self.0.unchecked_transaction()?;
        tx.execute(
            "UPDATE compliance_waivers SET ended_at = ?3, ended_why = 'replaced'
             WHERE instance = ?1 AND item = ?2 AND ended_at IS NULL",
            params![instance, item, now],
        )?;
        tx.execute(
            "INSERT INTO compliance_waivers (instance, item, kind, reason, approved_by, created_at, expires_at, created_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                instance,
                item,
                new.kind,
                new.reason,
                new.approved_by,
                now,
                new.expires_at,
                new.created_by
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// End an item's waiver now; false when it had none.
    pub fn end_waiver(&self, instance: &str, item: &str, now: i64) -> Result<bool> {
        Ok(self.0.execute(
            "UPDATE compliance_waivers SET ended_at = ?3, ended_why = 'ended'
             WHERE instance = ?1 AND item = ?2 AND ended_at IS NULL",
            params![instance, item, now],
        )? > 0)
    }

    /// Waivers that ran out by `now` and were not ended yet: (instance, item, expired at).
    pub fn lapsed_waivers(&self, now: i64) -> Result<Vec<(String, String, i64)>> {
        let mut stmt = self.0.prepare(
            "SELECT instance, item, expires_at FROM compliance_waivers
             WHERE ended_at IS NULL AND expires_at <= ?1",
        )?;
        let rows = stmt.query_map([now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// End a waiver that ran out, at its expiry.
    pub fn expire_waiver(&self, instance: &str, item: &str) -> Result<()> {
        self.0.execute(
            "UPDATE compliance_waivers SET ended_at = expires_at, ended_why = 'expired'
             WHERE instance = ?1 AND item = ?2 AND ended_at IS NULL",
            params![instance, item],
        )?;
        Ok(())
    }

    /// The waiver in force on an item at `now`.
    pub fn waiver(&self, instance: &str, item: &str, now: i64) -> Result<Option<Waiver>> {
        Ok(self
            .0
            .query_row(
                "SELECT id, kind, reason, approved_by, created_at, expires_at FROM compliance_waivers
                 WHERE instance = ?1 AND item = ?2 AND ended_at IS NULL AND expires_at > ?3
                 ORDER BY id DESC LIMIT 1",
                params![instance, item, now],
                |r| {
                    Ok(Waiver {
                        id: r.get(0)?,
                        kind: r.get(1)?,
                        reason: r.get(2)?,
                        approved_by: r.get(3)?,
                        created_at: r.get(4)?,
                        expires_at: r.get(5)?,
                    })
                },
            )
            .optional()?)
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "one column each; a struct would only move them"
    )]
    pub fn add_history(
        &self,
        instance: &str,
        item: &str,
        at: i64,
        kind: HistoryKind,
        state: Option<ItemState>,
        detail: &str,
        actor: &str,
    ) -> Result<()> {
        self.0.execute(
            "INSERT INTO compliance_history (instance, item, at, kind, state, detail, actor)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![instance, item, at, kind, state, detail, actor],
        )?;
        Ok(())
    }

    /// An item's history, newest first (the last 200 lines).
    pub fn history(&self, instance: &str, item: &str) -> Result<Vec<HistoryEntry>> {
        let mut stmt = self.0.prepare(
            "SELECT at, kind, state, detail, actor FROM compliance_history
             WHERE instance = ?1 AND item = ?2 ORDER BY at DESC, id DESC LIMIT 200",
        )?;
        let rows = stmt.query_map(params![instance, item], |r| {
            Ok(HistoryEntry {
                at: r.get(0)?,
                kind: r.get(1)?,
                state: r.get(2)?,
                detail: r.get(3)?,
                actor: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Whether the item was re-opened and has not passed a check since.
    pub fn reopened(&self, instance: &str, item: &str) -> Result<bool> {
        Ok(self.0.query_row(
            "SELECT EXISTS (SELECT 1 FROM compliance_history h WHERE h.instance = ?1 AND h.item = ?2
               AND h.kind = 'reopened'
               AND NOT EXISTS (SELECT 1 FROM compliance_history l WHERE l.instance = ?1 AND l.item = ?2
                 AND l.kind = 'check' AND l.state = 'pass' AND l.id > h.id))",
            params![instance, item],
            |r| r.get(0),
        )?)
    }
}
