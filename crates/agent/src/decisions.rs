//! What the agent decided on its own (`decisions.sqlite3` in its state directory): each
//! block, alert, allowlisted firing and block put back after drift, with the lines that
//! caused it, numbered so a console pulls what it has not seen (`GET /v1/decisions`).
//! Bounded: the oldest go first past [`CAPACITY`].

use std::path::Path;

use gatehouse_protocol::{Decision, DecisionKind, DecisionsPage, Enforced};
use rusqlite::{params, Connection, OptionalExtension};

/// Decisions kept.
pub const CAPACITY: i64 = 20_000;

#[derive(Debug)]
pub struct Decisions {
    conn: Connection,
}

impl Decisions {
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS decisions (
                 id             INTEGER PRIMARY KEY AUTOINCREMENT,
                 time_us        INTEGER NOT NULL,
                 kind           TEXT NOT NULL,
                 rule_id        TEXT NOT NULL,
                 rule_name      TEXT NOT NULL,
                 ip             TEXT NOT NULL,
                 policy_version INTEGER NOT NULL,
                 count          INTEGER NOT NULL,
                 ttl_secs       INTEGER,
                 until          INTEGER,
                 previous       INTEGER NOT NULL,
                 enforced       TEXT NOT NULL,
                 verified       INTEGER NOT NULL,
                 note           TEXT NOT NULL,
                 lines          TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS decisions_ip ON decisions (ip, time_us);",
        )?;
        Ok(Decisions { conn })
    }

    /// Store `d` (its id is assigned here) and return its id.
    pub fn record(&self, d: &Decision) -> rusqlite::Result<u64> {
        let lines = serde_json::to_string(&d.lines).unwrap_or_else(|_| "[]".into());
        self.conn
            .prepare_cached(
                "INSERT INTO decisions (time_us, kind, rule_id, rule_name, ip, policy_version,
                     count, ttl_secs, until, previous, enforced, verified, note, lines)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?
            .execute(params![
                d.time_us,
                d.kind.as_str(),
                d.rule_id,
                d.rule_name,
                d.ip,
                d.policy_version as i64,
                d.count as i64,
                d.ttl_secs,
                d.until,
                d.previous_blocks,
                d.enforced.as_str(),
                d.verified,
                d.note,
                lines,
            ])?;
        let id = self.conn.last_insert_rowid();
        self.conn
            .prepare_cached("DELETE FROM decisions WHERE id <= ?1")?
            .execute([id - CAPACITY])?;
        Ok(id as u64)
    }

    /// Blocks of `ip` decided at or after `since_us`: a repeat offender's earlier bans.
    pub fn blocks_since(&self, ip: &str, since_us: i64) -> rusqlite::Result<u32> {
        self.conn
            .prepare_cached(
                "SELECT COUNT(*) FROM decisions WHERE ip = ?1 AND time_us >= ?2 AND kind = 'block'",
            )?
            .query_row(params![ip, since_us], |r| r.get(0))
    }

    /// Decisions after `after`, oldest first.
    pub fn page(&self, after: u64, limit: u32) -> rusqlite::Result<DecisionsPage> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, time_us, kind, rule_id, rule_name, ip, policy_version, count, ttl_secs,
                    until, previous, enforced, verified, note, lines
             FROM decisions WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let decisions = stmt
            .query_map(params![after as i64, limit], |r| {
                let lines: String = r.get(14)?;
                Ok(Decision {
                    id: r.get::<_, i64>(0)? as u64,
                    time_us: r.get(1)?,
                    kind: DecisionKind::from_word(&r.get::<_, String>(2)?),
                    rule_id: r.get(3)?,
                    rule_name: r.get(4)?,
                    ip: r.get(5)?,
                    policy_version: r.get::<_, i64>(6)? as u64,
                    count: r.get::<_, i64>(7)? as u64,
                    ttl_secs: r.get(8)?,
                    until: r.get(9)?,
                    previous_blocks: r.get(10)?,
                    enforced: if r.get::<_, String>(11)? == Enforced::Firewall.as_str() {
                        Enforced::Firewall
                    } else {
                        Enforced::Nowhere
                    },
                    verified: r.get(12)?,
                    note: r.get(13)?,
                    lines: serde_json::from_str(&lines).unwrap_or_default(),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let head: i64 = self
            .conn
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'decisions'",
                [],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        Ok(DecisionsPage {
            decisions,
            head: head as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(ip: &str, time_us: i64, kind: DecisionKind) -> Decision {
        Decision {
            id: 0,
            time_us,
            kind,
            rule_id: "brute-force".into(),
            rule_name: "Brute force".into(),
            ip: ip.into(),
            policy_version: 4,
            count: 5,
            ttl_secs: Some(600),
            until: Some(time_us / 1_000_000 + 600),
            previous_blocks: 0,
            enforced: Enforced::Firewall,
            verified: true,
            note: "blocked".into(),
            lines: vec!["a line".into(), "another".into()],
        }
    }

    #[test]
    fn decisions_come_back_in_order_with_their_lines_and_earlier_blocks_are_counted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Decisions::open(&dir.path().join("d.sqlite3")).expect("open");
        let first = store
            .record(&decision("192.0.2.7", 1_000_000, DecisionKind::Block))
            .expect("record");
        store
            .record(&decision("192.0.2.7", 2_000_000, DecisionKind::Alert))
            .expect("record");
        store
            .record(&decision("192.0.2.7", 3_000_000, DecisionKind::Block))
            .expect("record");
        store
            .record(&decision("192.0.2.8", 3_000_000, DecisionKind::Block))
            .expect("record");
        assert_eq!(
            store.blocks_since("192.0.2.7", 0).expect("count"),
            2,
            "two blocks of this address; the alert and the other address do not count"
        );
        assert_eq!(
            store.blocks_since("192.0.2.7", 2_000_000).expect("count"),
            1,
            "blocks before the memory's start are forgotten"
        );
        let page = store.page(first, 10).expect("page");
        assert_eq!(page.head, 4, "the head is the last id given");
        assert_eq!(
            page.decisions.iter().map(|d| d.id).collect::<Vec<_>>(),
            vec![2, 3, 4],
            "only what follows the console's cursor, oldest first"
        );
        assert_eq!(
            page.decisions[0].kind,
            DecisionKind::Alert,
            "each decision comes back as the kind it was kept as"
        );
        assert_eq!(
            page.decisions[1].lines,
            vec!["a line".to_owned(), "another".to_owned()],
            "the lines that caused a decision travel with it"
        );
    }
}
