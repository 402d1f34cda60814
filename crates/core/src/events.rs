//! The console's event store: every instance's events in one timeline.
//!
//! A SQLite file of its own (`events.sqlite3`), so a large ingest never blocks the fleet or
//! settings. Designed for millions of rows:
//! - strings (addresses, paths, actors, key prefixes, messages, sources) are interned into
//!   `strings` and rows hold integers; a cache keeps the mapping in memory;
//! - raw lines live in a side table keyed by the event id, read only for the detail panel
//!   and exports;
//! - indexes serve the timeline's pages: by time, by instance and time, by address and time;
//! - free-text search uses FTS5 over the distinct strings (updated only when a new string
//!   appears), so ingest does not tokenize every line;
//! - hourly rollups (instance, address, kind, outcome, hour) are kept as events arrive, so
//!   heatmaps never scan raw events.

use std::collections::HashMap;
use std::path::Path;

use gatehouse_events::{Kind, Outcome};
use gatehouse_protocol::WireEvent;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::Result;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS strings (
        id    INTEGER PRIMARY KEY,
        value TEXT NOT NULL UNIQUE
    );
    CREATE VIRTUAL TABLE IF NOT EXISTS strings_fts USING fts5(
        value, content='strings', content_rowid='id'
    );
    CREATE TABLE IF NOT EXISTS events (
        id         INTEGER PRIMARY KEY,
        time_us    INTEGER NOT NULL,
        instance   INTEGER NOT NULL,
        agent_seq  INTEGER NOT NULL,
        kind       INTEGER NOT NULL,
        outcome    INTEGER NOT NULL,
        source     INTEGER NOT NULL,
        ip         INTEGER,
        path       INTEGER,
        actor      INTEGER,
        key_prefix INTEGER,
        method     INTEGER,
        status     INTEGER,
        message    INTEGER,
        flags      INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS events_time ON events(time_us, id);
    CREATE INDEX IF NOT EXISTS events_instance_time ON events(instance, time_us);
    CREATE INDEX IF NOT EXISTS events_ip_time ON events(ip, time_us) WHERE ip IS NOT NULL;
    CREATE TABLE IF NOT EXISTS raw (
        id   INTEGER PRIMARY KEY,
        line TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS rollup_hourly (
        hour     INTEGER NOT NULL,
        instance INTEGER NOT NULL,
        ip       INTEGER NOT NULL,
        kind     INTEGER NOT NULL,
        outcome  INTEGER NOT NULL,
        count    INTEGER NOT NULL,
        PRIMARY KEY (hour, instance, ip, kind, outcome)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS sync_state (
        instance   TEXT PRIMARY KEY NOT NULL,
        after      INTEGER NOT NULL,
        events     INTEGER NOT NULL DEFAULT 0,
        gaps       INTEGER NOT NULL DEFAULT 0,
        last_sync  INTEGER,
        last_error TEXT,
        failures   INTEGER NOT NULL DEFAULT 0
    );
";

/// One event as the timeline shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct TimelineEvent {
    #[ts(type = "number")]
    pub id: i64,
    /// Microseconds since the epoch.
    #[ts(type = "number")]
    pub time_us: i64,
    pub instance: String,
    pub source: String,
    pub kind: String,
    pub outcome: String,
    pub ip: Option<String>,
    pub path: Option<String>,
    pub actor: Option<String>,
    pub key_prefix: Option<String>,
    pub method: Option<String>,
    pub status: Option<u16>,
    pub message: Option<String>,
    pub flags: u32,
}

/// The timeline's filters; every field narrows, empty means all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, TS)]
#[serde(default)]
pub struct EventFilter {
    /// Microseconds, inclusive.
    #[ts(type = "number | null")]
    pub from_us: Option<i64>,
    /// Microseconds, exclusive.
    #[ts(type = "number | null")]
    pub to_us: Option<i64>,
    pub instance: Option<String>,
    /// Service profile: the instances running it.
    pub service: Option<String>,
    pub kind: Option<String>,
    pub outcome: Option<String>,
    pub ip: Option<String>,
    pub key_prefix: Option<String>,
    /// Path prefix.
    pub path: Option<String>,
    /// Free text: words matched against addresses, paths, actors, keys and messages.
    pub text: Option<String>,
}

/// Where a page ends, to ask for the next (older) one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, TS)]
pub struct Cursor {
    #[ts(type = "number")]
    pub time_us: i64,
    #[ts(type = "number")]
    pub id: i64,
}

/// A page of the timeline, newest first.
#[derive(Debug, Clone, Serialize, TS)]
pub struct EventPage {
    pub events: Vec<TimelineEvent>,
    /// Pass back to get the next older page; absent at the end.
    pub next: Option<Cursor>,
}

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
}

/// The event store.
#[derive(Debug)]
pub struct EventStore {
    conn: Connection,
    interned: HashMap<String, i64>,
    names: HashMap<i64, String>,
}

/// Integer codes of kinds and outcomes in the `events` table. Append only.
fn kind_code(kind: Kind) -> i64 {
    match kind {
        Kind::Auth => 0,
        Kind::Request => 1,
        Kind::RateLimit => 2,
        Kind::Service => 3,
        Kind::Log => 4,
        Kind::Unparsed => 5,
        Kind::Gap => 6,
    }
}

const KIND_WORDS: [&str; 8] = [
    "auth",
    "request",
    "rate_limit",
    "service",
    "log",
    "unparsed",
    "gap",
    "console",
];
/// The console's own actions (enrollments, revocations, rotations, blocks).
pub const CONSOLE_KIND: i64 = 7;

fn outcome_code(outcome: Outcome) -> i64 {
    match outcome {
        Outcome::Success => 0,
        Outcome::Failure => 1,
        Outcome::Error => 2,
        Outcome::Info => 3,
    }
}

const OUTCOME_WORDS: [&str; 4] = ["success", "failure", "error", "info"];

impl EventStore {
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "cache_size", -65_536)?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.execute_batch(SCHEMA)?;
        let mut store = EventStore {
            conn,
            interned: HashMap::new(),
            names: HashMap::new(),
        };
        store.load_strings()?;
        Ok(store)
    }

    fn load_strings(&mut self) -> Result<()> {
        let mut stmt = self.conn.prepare("SELECT id, value FROM strings")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (id, value) = row?;
            self.names.insert(id, value.clone());
            self.interned.insert(value, id);
        }
        Ok(())
    }

    /// Store a page pulled from `instance`'s agent and advance its sync state, atomically.
    /// `dropped` is how many events the agent lost before they were read (from the page's
    /// `oldest`); a gap event records them.
    pub fn ingest(
        &mut self,
        instance: &str,
        events: &[WireEvent],
        after: u64,
        dropped: u64,
        now_us: i64,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        let mut new_strings: Vec<(i64, String)> = Vec::new();
        {
            let mut intern_stmt = tx.prepare_cached("INSERT INTO strings (value) VALUES (?1)")?;
            let mut intern = |value: &str| -> rusqlite::Result<i64> {
                if let Some(id) = self.interned.get(value) {
                    return Ok(*id);
                }
                intern_stmt.execute([value])?;
                let id = tx.last_insert_rowid();
                self.interned.insert(value.to_owned(), id);
                self.names.insert(id, value.to_owned());
                new_strings.push((id, value.to_owned()));
                Ok(id)
            };
            let instance_id = intern(instance)?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO events (time_us, instance, agent_seq, kind, outcome, source, ip, path,
                                     actor, key_prefix, method, status, message, flags)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?;
            let mut insert_raw = tx.prepare_cached("INSERT INTO raw (id, line) VALUES (?1, ?2)")?;
            let mut rollups: HashMap<(i64, i64, i64, i64), i64> = HashMap::new();
            let opt = |v: &Option<String>,
                       intern: &mut dyn FnMut(&str) -> rusqlite::Result<i64>|
             -> rusqlite::Result<Option<i64>> {
                v.as_deref().map(intern).transpose()
            };
            if dropped > 0 {
                let message = intern(&format!(
                    "{dropped} events were dropped by the agent before the console read them."
                ))?;
                let source = intern("agent")?;
                insert.execute(params![
                    now_us,
                    instance_id,
                    after as i64,
                    kind_code(Kind::Gap),
                    outcome_code(Outcome::Error),
                    source,
                    None::<i64>,
                    None::<i64>,
                    None::<i64>,
                    None::<i64>,
                    None::<i64>,
                    None::<i64>,
                    message,
                    0
                ])?;
            }
            for e in events {
                let source = intern(&e.source)?;
                let ip = opt(&e.ip, &mut intern)?;
                let path = opt(&e.path, &mut intern)?;
                let actor = opt(&e.actor, &mut intern)?;
                let key_prefix = opt(&e.key_prefix, &mut intern)?;
                let method = opt(&e.method, &mut intern)?;
                let message = opt(&e.message, &mut intern)?;
                let (kind, outcome) = (kind_code(e.kind), outcome_code(e.outcome));
                insert.execute(params![
                    e.time_us,
                    instance_id,
                    e.seq as i64,
                    kind,
                    outcome,
                    source,
                    ip,
                    path,
                    actor,
                    key_prefix,
                    method,
                    e.status,
                    message,
                    e.flags
                ])?;
                if !e.raw.is_empty() {
                    insert_raw.execute(params![tx.last_insert_rowid(), e.raw])?;
                }
                let hour = e.time_us.div_euclid(3_600_000_000);
                *rollups
                    .entry((hour, ip.unwrap_or(0), kind, outcome))
                    .or_default() += 1;
            }
            let mut rollup = tx.prepare_cached(
                "INSERT INTO rollup_hourly (hour, instance, ip, kind, outcome, count) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT DO UPDATE SET count = count + excluded.count",
            )?;
            for ((hour, ip, kind, outcome), count) in rollups {
                rollup.execute(params![hour, instance_id, ip, kind, outcome, count])?;
            }
            let mut fts =
                tx.prepare_cached("INSERT INTO strings_fts (rowid, value) VALUES (?1, ?2)")?;
            for (id, value) in &new_strings {
                fts.execute(params![id, value])?;
            }
            let last = events.last().map_or(after, |e| e.seq);
            tx.execute(
                "INSERT INTO sync_state (instance, after, events, gaps, last_sync, last_error, failures)
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL, 0)
                 ON CONFLICT(instance) DO UPDATE SET after = excluded.after,
                     events = events + excluded.events, gaps = gaps + excluded.gaps,
                     last_sync = excluded.last_sync, last_error = NULL, failures = 0",
                params![instance, last as i64, events.len() as i64, dropped as i64, now_us],
            )?;
        }
        // A failed transaction leaves interned ids in the cache that were rolled back; forget
        // them by reloading (rare).
        match tx.commit() {
            Ok(()) => Ok(()),
            Err(e) => {
                self.interned.clear();
                self.names.clear();
                self.load_strings()?;
                Err(e.into())
            }
        }
    }

    /// Record something the console itself did (an enrollment, a revocation, a rotation).
    pub fn record_action(
        &mut self,
        instance: &str,
        outcome: Outcome,
        message: &str,
        time_us: i64,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        let mut ids = Vec::new();
        for value in [instance, "console", message] {
            let id = match self.interned.get(value) {
                Some(id) => *id,
                None => {
                    tx.execute("INSERT INTO strings (value) VALUES (?1)", [value])?;
                    let id = tx.last_insert_rowid();
                    tx.execute(
                        "INSERT INTO strings_fts (rowid, value) VALUES (?1, ?2)",
                        params![id, value],
                    )?;
                    self.interned.insert(value.to_owned(), id);
                    self.names.insert(id, value.to_owned());
                    id
                }
            };
            ids.push(id);
        }
        tx.execute(
            "INSERT INTO events (time_us, instance, agent_seq, kind, outcome, source, message, flags)
             VALUES (?1, ?2, 0, ?3, ?4, ?5, ?6, 0)",
            params![time_us, ids[0], CONSOLE_KIND, outcome_code(outcome), ids[1], ids[2]],
        )?;
        tx.commit()?;
        Ok(())
    }

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
                "SELECT instance, after, events, gaps, last_sync, last_error, failures FROM sync_state WHERE instance = ?1",
                [instance],
                sync_row,
            )
            .optional()?)
    }

    pub fn sync_states(&self) -> Result<Vec<SyncState>> {
        let mut stmt = self.conn.prepare(
            "SELECT instance, after, events, gaps, last_sync, last_error, failures FROM sync_state ORDER BY instance",
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

    /// A page of events matching `filter`, newest first, older than `before`.
    pub fn page(
        &self,
        filter: &EventFilter,
        instances_of_service: &[String],
        before: Option<Cursor>,
        limit: u32,
    ) -> Result<EventPage> {
        let limit = limit.clamp(1, 1000);
        let mut sql = String::from(
            "SELECT id, time_us, instance, source, kind, outcome, ip, path, actor, key_prefix, method, status, message, flags FROM events",
        );
        let mut clauses: Vec<String> = Vec::new();
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        let id_of = |value: &str| self.interned.get(value).copied().unwrap_or(-1);
        if let Some(from) = filter.from_us {
            clauses.push("time_us >= ?".into());
            args.push(from.into());
        }
        if let Some(to) = filter.to_us {
            clauses.push("time_us < ?".into());
            args.push(to.into());
        }
        if let Some(instance) = &filter.instance {
            clauses.push("instance = ?".into());
            args.push(id_of(instance).into());
        }
        if filter.service.is_some() {
            let ids: Vec<String> = instances_of_service
                .iter()
                .map(|i| id_of(i).to_string())
                .collect();
            clauses.push(format!(
                "instance IN ({})",
                if ids.is_empty() {
                    "-1".to_owned()
                } else {
                    ids.join(",")
                }
            ));
        }
        if let Some(kind) = &filter.kind {
            let code = KIND_WORDS
                .iter()
                .position(|w| w == kind)
                .map_or(-1, |p| p as i64);
            clauses.push("kind = ?".into());
            args.push(code.into());
        }
        if let Some(outcome) = &filter.outcome {
            let code = OUTCOME_WORDS
                .iter()
                .position(|w| w == outcome)
                .map_or(-1, |p| p as i64);
            clauses.push("outcome = ?".into());
            args.push(code.into());
        }
        if let Some(ip) = &filter.ip {
            clauses.push("ip = ?".into());
            args.push(id_of(ip).into());
        }
        if let Some(prefix) = &filter.key_prefix {
            clauses.push(
                "key_prefix IN (SELECT id FROM strings WHERE value >= ? AND value < ?)".into(),
            );
            args.push(prefix.clone().into());
            args.push(format!("{prefix}\u{10FFFF}").into());
        }
        if let Some(path) = &filter.path {
            clauses.push("path IN (SELECT id FROM strings WHERE value >= ? AND value < ?)".into());
            args.push(path.clone().into());
            args.push(format!("{path}\u{10FFFF}").into());
        }
        if let Some(text) = filter
            .text
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            // Each word must match one of the event's strings (address, path, actor, key,
            // message, method): find the matching strings first, then the events. A word is
            // a phrase prefix, so "198.51" finds 198.51.100.4 and "memory_store" finds
            // /mcp/tools/memory_store.
            for word in text.split_whitespace() {
                let quoted = format!("\"{}\"*", word.replace('"', "\"\""));
                let mut stmt = self.conn.prepare_cached(
                    "SELECT rowid FROM strings_fts WHERE strings_fts MATCH ?1 LIMIT 5000",
                )?;
                let ids: Vec<String> = stmt
                    .query_map([quoted], |r| r.get::<_, i64>(0))?
                    .map(|id| id.map(|id| id.to_string()))
                    .collect::<rusqlite::Result<_>>()?;
                let list = if ids.is_empty() {
                    "-1".to_owned()
                } else {
                    ids.join(",")
                };
                clauses.push(format!(
                    "(ip IN ({list}) OR path IN ({list}) OR actor IN ({list}) OR key_prefix IN ({list}) \
                     OR message IN ({list}) OR method IN ({list}) OR instance IN ({list}))"
                ));
            }
        }
        if let Some(cursor) = before {
            clauses.push("(time_us, id) < (?, ?)".into());
            args.push(cursor.time_us.into());
            args.push(cursor.id.into());
        }
        if !clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&clauses.join(" AND "));
        }
        sql.push_str(" ORDER BY time_us DESC, id DESC LIMIT ?");
        args.push(i64::from(limit).into());
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let name = |id: Option<i64>| id.and_then(|id| self.names.get(&id).cloned());
        let events = stmt
            .query_map(rusqlite::params_from_iter(args), |r| {
                Ok(TimelineEvent {
                    id: r.get(0)?,
                    time_us: r.get(1)?,
                    instance: name(r.get(2)?).unwrap_or_default(),
                    source: name(r.get(3)?).unwrap_or_default(),
                    kind: KIND_WORDS
                        .get(r.get::<_, i64>(4)? as usize)
                        .copied()
                        .unwrap_or("unparsed")
                        .to_owned(),
                    outcome: OUTCOME_WORDS
                        .get(r.get::<_, i64>(5)? as usize)
                        .copied()
                        .unwrap_or("info")
                        .to_owned(),
                    ip: name(r.get(6)?),
                    path: name(r.get(7)?),
                    actor: name(r.get(8)?),
                    key_prefix: name(r.get(9)?),
                    method: name(r.get(10)?),
                    status: r.get(11)?,
                    message: name(r.get(12)?),
                    flags: r.get(13)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let next = (events.len() == limit as usize)
            .then(|| {
                events.last().map(|e| Cursor {
                    time_us: e.time_us,
                    id: e.id,
                })
            })
            .flatten();
        Ok(EventPage { events, next })
    }

    /// The raw line of one event, as read on the host.
    pub fn raw(&self, id: i64) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT line FROM raw WHERE id = ?1", [id], |r| r.get(0))
            .optional()?)
    }

    /// Failed authentications per hour from the rollups (for analytics and tests).
    pub fn failed_auth_by_hour(&self, instance: &str) -> Result<Vec<(i64, i64)>> {
        let Some(id) = self.interned.get(instance) else {
            return Ok(Vec::new());
        };
        let mut stmt = self.conn.prepare(
            "SELECT hour, SUM(count) FROM rollup_hourly WHERE instance = ?1 AND kind = 0 AND outcome = 1 GROUP BY hour ORDER BY hour",
        )?;
        let rows = stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn count(&self) -> Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM events", [], |r| r.get::<_, i64>(0))?
            as u64)
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
    })
}
