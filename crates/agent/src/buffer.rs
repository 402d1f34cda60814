//! The agent's event buffer: SQLite in the state directory, a monotonic sequence per event,
//! bounded in size. When it must drop the oldest events it says so with a `gap` event, and
//! the page it serves names the oldest sequence it still holds, so the console can tell
//! exactly what it missed. Nothing is lost silently.
//!
//! Tail offsets (and, for a unit's journal, the cursor of the last entry read) are stored with
//! the events they produced, in one transaction: after a crash or restart, reading resumes
//! exactly where the last committed batch ended.

use std::path::Path;

use std::sync::Arc;

use gatehouse_events::{Kind, Outcome, Source};
use gatehouse_protocol::{flags, EventsPage, WireEvent};
use rusqlite::{params, Connection, OptionalExtension};

use crate::probes::{ProbeLog, Seen};

/// Where a log file was read up to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Position {
    /// Identity of the file (inode on Unix) the offset belongs to.
    pub file_id: u64,
    pub offset: u64,
    /// The file's first bytes (at most 256) when it was read: a restarted agent tells by them
    /// that the file was truncated and written again while it was not reading.
    pub head: Vec<u8>,
    /// A file rotated away by rename and not yet read to its end: its identity and where
    /// reading it stopped, so a restarted agent finishes it instead of losing its tail.
    pub rotated: Option<(u64, u64)>,
}

#[derive(Debug)]
pub struct Buffer {
    conn: Connection,
    capacity: u64,
    /// The agent's own requests: lines about them are flagged `PROBE` as they are appended.
    probes: Option<Arc<ProbeLog>>,
    /// Why the last append failed, until one succeeds (a full disk, above all): the lines
    /// it held are read again from the stored position, and `/v1/info` says so meanwhile.
    write_problem: Option<String>,
    /// Woken after each append that stored events: a console's request waiting for them.
    arrivals: Arc<tokio::sync::Notify>,
}

impl Buffer {
    /// Open (creating) the buffer at `path`, holding at most `capacity` events.
    pub fn open(path: &Path, capacity: u64) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS events (
                 seq        INTEGER PRIMARY KEY AUTOINCREMENT,
                 time_us    INTEGER NOT NULL,
                 source     TEXT NOT NULL,
                 kind       TEXT NOT NULL,
                 outcome    TEXT NOT NULL,
                 actor      TEXT,
                 key_prefix TEXT,
                 ip         TEXT,
                 method     TEXT,
                 path       TEXT,
                 status     INTEGER,
                 message    TEXT,
                 raw        TEXT NOT NULL,
                 flags      INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS positions (
                 path    TEXT PRIMARY KEY NOT NULL,
                 file_id INTEGER NOT NULL,
                 offset  INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS journal_cursors (
                 log    TEXT PRIMARY KEY NOT NULL,
                 cursor TEXT NOT NULL
             );",
        )?;
        // Columns added after the first release: a buffer from an older agent gains them.
        for (column, decl) in [
            ("head", "BLOB"),
            ("rotated_id", "INTEGER"),
            ("rotated_offset", "INTEGER"),
        ] {
            let present: bool = conn.query_row(
                "SELECT COUNT(*) > 0 FROM pragma_table_info('positions') WHERE name = ?1",
                [column],
                |r| r.get(0),
            )?;
            if !present {
                conn.execute_batch(&format!("ALTER TABLE positions ADD COLUMN {column} {decl}"))?;
            }
        }
        Ok(Buffer {
            conn,
            capacity: capacity.max(2),
            probes: None,
            write_problem: None,
            arrivals: Arc::default(),
        })
    }

    /// What wakes after events are stored (see `Agent::events_waiting`).
    pub fn arrivals(&self) -> Arc<tokio::sync::Notify> {
        self.arrivals.clone()
    }

    /// Flag the lines about the agent's own requests (see [`ProbeLog`]) from now on.
    pub fn judge_probes(&mut self, probes: Arc<ProbeLog>) {
        self.probes = Some(probes);
    }

    /// Where reading `path` stopped, if it was ever read.
    pub fn position(&self, path: &str) -> rusqlite::Result<Option<Position>> {
        self.conn
            .query_row(
                "SELECT file_id, offset, head, rotated_id, rotated_offset FROM positions
                 WHERE path = ?1",
                [path],
                |row| {
                    let rotated_id: Option<i64> = row.get(3)?;
                    let rotated_offset: Option<i64> = row.get(4)?;
                    Ok(Position {
                        file_id: row.get::<_, i64>(0)? as u64,
                        offset: row.get::<_, i64>(1)? as u64,
                        head: row.get::<_, Option<Vec<u8>>>(2)?.unwrap_or_default(),
                        rotated: rotated_id
                            .zip(rotated_offset)
                            .map(|(id, offset)| (id as u64, offset as u64)),
                    })
                },
            )
            .optional()
    }

    /// The cursor of the last journal entry read for `log`, if it was ever read.
    pub fn cursor(&self, log: &str) -> rusqlite::Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT cursor FROM journal_cursors WHERE log = ?1",
                [log],
                |row| row.get(0),
            )
            .optional()
    }

    /// Append events and record the position reached, atomically. Drops the oldest events
    /// (leaving a gap marker) if the buffer would exceed its capacity.
    pub fn append(
        &mut self,
        events: &[WireEvent],
        path: &str,
        position: Position,
        now_us: i64,
    ) -> rusqlite::Result<()> {
        self.append_at(events, Reached::File(path, &position), now_us)
    }

    /// Append events and record the journal cursor reached (`None`: no entry read yet),
    /// atomically, as [`append`](Self::append) does for a file.
    pub fn append_journal(
        &mut self,
        events: &[WireEvent],
        log: &str,
        cursor: Option<&str>,
        now_us: i64,
    ) -> rusqlite::Result<()> {
        self.append_at(events, Reached::Journal(log, cursor), now_us)
    }

    /// Append events of the agent's own (what it did on the host, not read from a log).
    pub fn append_marks(&mut self, events: &[WireEvent], now_us: i64) -> rusqlite::Result<()> {
        self.append_at(events, Reached::Nothing, now_us)
    }

    /// Why the last append failed, if the last one did.
    pub fn write_problem(&self) -> Option<&str> {
        self.write_problem.as_deref()
    }

    fn append_at(
        &mut self,
        events: &[WireEvent],
        reached: Reached<'_>,
        now_us: i64,
    ) -> rusqlite::Result<()> {
        let result = self.try_append(events, reached, now_us);
        if result.is_ok() && !events.is_empty() {
            self.arrivals.notify_waiters();
        }
        self.write_problem = match &result {
            Ok(()) => None,
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DiskFull =>
            {
                Some(
                    "the disk holding the agent's state directory is full; lines are read again \
                     from where storing stopped once there is room"
                        .into(),
                )
            }
            Err(e) => Some(format!(
                "the agent's event buffer cannot be written ({e}); lines are read again from \
                 where storing stopped once it can be"
            )),
        };
        result
    }

    fn try_append(
        &mut self,
        events: &[WireEvent],
        reached: Reached<'_>,
        now_us: i64,
    ) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO events (time_us, source, kind, outcome, actor, key_prefix, ip, method,
                                     path, status, message, raw, flags)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?;
            for e in events {
                let own = self.probes.as_ref().is_some_and(|p| {
                    p.is_own(&Seen {
                        source: e.source,
                        kind: e.kind,
                        outcome: e.outcome,
                        ip: e.ip.as_deref(),
                        path: e.path.as_deref(),
                        time_us: e.time_us,
                        dated_by_agent: e.flags & flags::TIME_FROM_AGENT != 0,
                        raw: &e.raw,
                    })
                });
                let flags = e.flags | if own { flags::PROBE } else { 0 };
                insert.execute(params![
                    e.time_us,
                    e.source.as_str(),
                    e.kind.as_str(),
                    e.outcome.as_str(),
                    e.actor,
                    e.key_prefix,
                    e.ip,
                    e.method,
                    e.path,
                    e.status,
                    e.message,
                    e.raw,
                    flags
                ])?;
            }
            match reached {
                Reached::File(path, position) => {
                    tx.execute(
                        "INSERT INTO positions (path, file_id, offset, head, rotated_id, rotated_offset)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT(path) DO UPDATE SET file_id = excluded.file_id,
                             offset = excluded.offset, head = excluded.head,
                             rotated_id = excluded.rotated_id, rotated_offset = excluded.rotated_offset",
                        params![
                            path,
                            position.file_id as i64,
                            position.offset as i64,
                            position.head,
                            position.rotated.map(|(id, _)| id as i64),
                            position.rotated.map(|(_, offset)| offset as i64)
                        ],
                    )?;
                }
                Reached::Journal(log, Some(cursor)) => {
                    tx.execute(
                        "INSERT INTO journal_cursors (log, cursor) VALUES (?1, ?2)
                         ON CONFLICT(log) DO UPDATE SET cursor = excluded.cursor",
                        params![log, cursor],
                    )?;
                }
                Reached::Journal(_, None) | Reached::Nothing => {}
            }
            // Sequence numbers are contiguous (only a prefix is ever deleted), so the count is
            // their span: two index lookups instead of a scan of millions of rows. Each in a
            // subquery of its own: SQLite reads a lone MIN or MAX from the index, but MIN and MAX
            // in one SELECT scan the whole table.
            let count: i64 = tx.query_row(
                "SELECT COALESCE((SELECT MAX(seq) FROM events) - (SELECT MIN(seq) FROM events) + 1, 0)",
                [],
                |r| r.get(0),
            )?;
            let excess = count - self.capacity as i64;
            if excess > 0 {
                // Room for the marker too.
                let dropped = excess + 1;
                let (first, last): (i64, i64) = tx.query_row(
                    "SELECT MIN(seq), MAX(seq) FROM (SELECT seq FROM events ORDER BY seq LIMIT ?1)",
                    [dropped],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                tx.execute("DELETE FROM events WHERE seq <= ?1", [last])?;
                tx.execute(
                    "INSERT INTO events (time_us, source, kind, outcome, message, raw, flags)
                     VALUES (?1, 'agent', 'gap', 'error', ?2, '', 0)",
                    params![
                        now_us,
                        format!("The agent's buffer was full: {dropped} events (seq {first} to {last}) were dropped before the console read them.")
                    ],
                )?;
            }
        }
        tx.commit()
    }

    /// The failed sign-ins after `after` (at most [`FAILURES_AT_ONCE`]), and where to go on
    /// from: the head, or the last one returned when there were more. What the agent's own
    /// rules read; only those rows are made into events.
    pub fn failures(&self, after: u64) -> rusqlite::Result<(Vec<WireEvent>, u64)> {
        let head = self.head()?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, time_us, source, kind, outcome, actor, key_prefix, ip, method, path,
                    status, message, raw, flags
             FROM events WHERE seq > ?1 AND seq <= ?2 AND kind = 'auth' AND outcome = 'failure'
             ORDER BY seq LIMIT ?3",
        )?;
        let events = stmt
            .query_map(
                params![after as i64, head as i64, FAILURES_AT_ONCE as i64],
                row_event,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let next = match events.last() {
            Some(last) if events.len() == FAILURES_AT_ONCE => last.seq,
            _ => head,
        };
        Ok((events, next))
    }

    /// The highest sequence number given (it survives deletes: AUTOINCREMENT keeps it).
    fn head(&self) -> rusqlite::Result<u64> {
        Ok(self
            .conn
            .prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'events'")?
            .query_row([], |r| r.get::<_, i64>(0))
            .optional()?
            .unwrap_or(0) as u64)
    }

    /// Events after `after`, oldest first, at most `limit`, and never more than fits in a
    /// response body (`MAX_BODY`): the page ends early and the console asks again.
    pub fn page(&self, after: u64, limit: u32) -> rusqlite::Result<EventsPage> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, time_us, source, kind, outcome, actor, key_prefix, ip, method, path,
                    status, message, raw, flags
             FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let events = stmt
            .query_map(params![after as i64, limit], row_event)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut budget = PAGE_BYTES;
        let events: Vec<WireEvent> = events
            .into_iter()
            .take_while(|e| {
                let size = approximate_json_size(e);
                let fits = size <= budget;
                budget = budget.saturating_sub(size);
                fits
            })
            .collect();
        // The sequence's high-water mark survives deletes (AUTOINCREMENT keeps it).
        let head: i64 = self
            .conn
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
                [],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        let oldest: Option<i64> = self
            .conn
            .query_row("SELECT MIN(seq) FROM events", [], |r| r.get(0))?;
        Ok(EventsPage {
            events,
            head: head as u64,
            oldest: oldest.map_or(head as u64 + 1, |s| s as u64),
        })
    }
}

/// One row of `events` (the columns `page` selects, in order) as the event it stores.
fn row_event(row: &rusqlite::Row<'_>) -> rusqlite::Result<WireEvent> {
    Ok(WireEvent {
        seq: row.get::<_, i64>(0)? as u64,
        time_us: row.get(1)?,
        // A word an older agent took from its config is the service's.
        source: Source::from_word(&row.get::<_, String>(2)?).unwrap_or(Source::Service),
        kind: vocabulary(3, &row.get::<_, String>(3)?, Kind::from_word)?,
        outcome: vocabulary(4, &row.get::<_, String>(4)?, Outcome::from_word)?,
        actor: row.get(5)?,
        key_prefix: row.get(6)?,
        ip: row.get(7)?,
        method: row.get(8)?,
        path: row.get(9)?,
        status: row.get(10)?,
        message: row.get(11)?,
        raw: row.get(12)?,
        flags: row.get(13)?,
    })
}

/// The most failed sign-ins [`Buffer::failures`] returns at once.
pub const FAILURES_AT_ONCE: usize = 20_000;

/// How far a log was read, stored with the events read up to there.
#[derive(Debug, Clone, Copy)]
enum Reached<'a> {
    File(&'a str, &'a Position),
    Journal(&'a str, Option<&'a str>),
    /// Events of the agent's own, read from no log.
    Nothing,
}

/// What a page's events may add up to in JSON, leaving room under `MAX_BODY` for the rest.
const PAGE_BYTES: usize = gatehouse_protocol::MAX_BODY * 3 / 4;

/// An upper bound of an event's JSON size: escaping can at most double a string (six bytes
/// for a control character, rare in logs, are covered by the slack in `PAGE_BYTES`).
fn approximate_json_size(e: &WireEvent) -> usize {
    let text = [
        &e.actor,
        &e.key_prefix,
        &e.ip,
        &e.method,
        &e.path,
        &e.message,
    ]
    .iter()
    .map(|v| v.as_deref().map_or(0, str::len))
    .sum::<usize>()
        + e.raw.len()
        + e.source.as_str().len();
    2 * text + 256
}

/// A stored word read back: one no build writes is damage, reported rather than guessed.
fn vocabulary<T>(column: usize, text: &str, parse: fn(&str) -> Option<T>) -> rusqlite::Result<T> {
    parse(text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Text,
            format!("{text:?} is not a word Gatehouse writes here").into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: usize) -> WireEvent {
        WireEvent {
            seq: 0,
            time_us: n as i64,
            source: Source::Proxy,
            kind: Kind::Auth,
            outcome: Outcome::Failure,
            actor: None,
            key_prefix: None,
            ip: Some("203.0.113.7".into()),
            method: None,
            path: None,
            status: Some(401),
            message: None,
            raw: format!("line {n}"),
            flags: 0,
        }
    }

    #[test]
    fn sequences_are_monotonic_and_pages_resume() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut buffer = Buffer::open(&tmp.path().join("events.sqlite3"), 1000).expect("open");
        let events: Vec<_> = (0..10).map(event).collect();
        buffer
            .append(
                &events,
                "/var/log/a",
                Position {
                    file_id: 7,
                    offset: 99,
                    head: b"first line".to_vec(),
                    rotated: Some((6, 4096)),
                },
                0,
            )
            .expect("append");
        let first = buffer.page(0, 4).expect("page");
        assert_eq!(
            first.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [1, 2, 3, 4],
            "limit 4 after 0 gives sequences 1 to 4"
        );
        let next = buffer.page(4, 100).expect("page");
        assert_eq!(
            next.events.first().map(|e| e.seq),
            Some(5),
            "after=4 resumes at 5"
        );
        assert_eq!(
            (next.head, next.oldest),
            (10, 1),
            "the page reports the highest and lowest sequence held"
        );
        assert_eq!(
            buffer.position("/var/log/a").expect("pos"),
            Some(Position {
                file_id: 7,
                offset: 99,
                head: b"first line".to_vec(),
                rotated: Some((6, 4096)),
            }),
            "the position, the file's head and the rotated-away file's position are stored \
             with the events"
        );
    }

    #[test]
    fn a_source_word_an_older_agent_took_from_its_config_is_the_service_s_and_a_bad_kind_is_damage()
    {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("events.sqlite3");
        let mut buffer = Buffer::open(&path, 1000).expect("open");
        buffer.append_marks(&[event(1)], 0).expect("append");
        let db = Connection::open(&path).expect("open beside the agent");
        db.execute("UPDATE events SET source = 'nginx'", [])
            .expect("an older agent's word");
        let page = buffer
            .page(0, 10)
            .expect("an older word does not stop the pages");
        assert_eq!(
            page.events.iter().map(|e| e.source).collect::<Vec<_>>(),
            [Source::Service],
            "read as the service's, so the line is not lost over its word"
        );
        db.execute("UPDATE events SET kind = 'attack'", [])
            .expect("damage the stored kind");
        let err = buffer
            .page(0, 10)
            .expect_err("an event whose kind no build writes must not be sent as another");
        assert!(
            err.to_string()
                .contains("\"attack\" is not a word Gatehouse writes here"),
            "the damaged word is named: {err}"
        );
    }

    #[test]
    fn a_buffer_from_an_older_agent_gains_the_new_position_columns() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("events.sqlite3");
        {
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch(
                "CREATE TABLE positions (path TEXT PRIMARY KEY NOT NULL,
                                         file_id INTEGER NOT NULL, offset INTEGER NOT NULL);
                 INSERT INTO positions VALUES ('/var/log/a', 7, 99);",
            )
            .expect("an older buffer");
        }
        let buffer = Buffer::open(&path, 1000).expect("the older buffer opens");
        assert_eq!(
            buffer.position("/var/log/a").expect("pos"),
            Some(Position {
                file_id: 7,
                offset: 99,
                head: Vec::new(),
                rotated: None,
            }),
            "an older agent's position is read on, with no head and nothing rotated"
        );
    }

    #[test]
    fn a_page_always_fits_in_a_response_body() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut buffer = Buffer::open(&tmp.path().join("events.sqlite3"), 100_000).expect("open");
        let mut events: Vec<_> = (0..5000).map(event).collect();
        for e in &mut events {
            e.raw = "x".repeat(400);
        }
        buffer
            .append(&events, "/x", Position::default(), 0)
            .expect("append");
        let page = buffer.page(0, 5000).expect("page");
        let json = serde_json::to_vec(&page).expect("json");
        assert!(
            json.len() <= gatehouse_protocol::MAX_BODY,
            "{} bytes must fit the body cap",
            json.len()
        );
        assert!(
            page.events.len() < 5000 && !page.events.is_empty(),
            "the page ends early: {}",
            page.events.len()
        );
        assert!(
            page.head > page.events.last().map_or(0, |e| e.seq),
            "and says more remain"
        );
    }

    #[test]
    fn a_journal_cursor_is_stored_with_its_events_or_not_at_all() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut buffer = Buffer::open(&tmp.path().join("events.sqlite3"), 1000).expect("open");
        assert_eq!(
            buffer.cursor("journal:sekha.service").expect("cursor"),
            None,
            "a journal never read has no cursor"
        );
        buffer
            .append_journal(&[event(1)], "journal:sekha.service", Some("s=1;i=2"), 0)
            .expect("append");
        buffer
            .append_journal(&[], "journal:sekha.service", None, 0)
            .expect("a marker-only batch keeps the cursor");
        assert_eq!(
            buffer
                .cursor("journal:sekha.service")
                .expect("cursor")
                .as_deref(),
            Some("s=1;i=2"),
            "the cursor of the last entry stored is kept"
        );
        assert_eq!(
            buffer.page(0, 10).expect("page").events.len(),
            1,
            "and its event with it"
        );
    }

    #[test]
    fn overflow_drops_the_oldest_and_says_so() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut buffer = Buffer::open(&tmp.path().join("events.sqlite3"), 5).expect("open");
        let events: Vec<_> = (0..8).map(event).collect();
        buffer
            .append(&events, "/x", Position::default(), 0)
            .expect("append");
        let page = buffer.page(0, 100).expect("page");
        assert_eq!(page.events.len(), 5, "the capacity holds");
        assert!(
            page.oldest > 1,
            "the page says events before {} are gone",
            page.oldest
        );
        let gap = page.events.last().expect("a marker");
        assert_eq!(gap.kind, Kind::Gap, "the drop leaves a gap marker");
        assert!(
            gap.message
                .as_deref()
                .is_some_and(|m| m.contains("4 events")),
            "the gap marker says how many events were dropped: {gap:?}"
        );
        assert_eq!(page.head, 9, "8 events plus the marker");
    }
}
