//! The console's event store: every instance's events in one timeline.
//!
//! A SQLite file of its own (`events.sqlite3`), so a large ingest never blocks the fleet or
//! settings. Built for tens of millions of rows and a million inserts a second:
//! - `events` is a `WITHOUT ROWID` table keyed by `(time_us, instance, seq)`: one B-tree per
//!   event, appended near its right edge, time-ordered for the timeline, and the key is the
//!   event's stable identity and paging cursor. There is no per-row secondary index;
//! - strings (addresses, paths, actors, key prefixes, messages, sources) are interned into
//!   `strings` and rows hold integers; a cache keeps the mapping in memory;
//! - filters prune by hour: `hour_terms` records which hours contain each string and each
//!   kind/outcome (one row per distinct pair per batch), so a filtered page scans only the
//!   hours that can match, newest first;
//! - raw lines are kept compactly: one LZ4-compressed block per ingested page, read only for
//!   the detail panel and exports;
//! - free-text search uses FTS5 over the distinct strings (updated only when a new string
//!   appears), so ingest does not tokenize every line;
//! - failed authentications are rolled up by hour as events arrive (per instance and log
//!   source, with and without the client address, and per address and key prefix), so
//!   heatmaps, offenders and the baseline never scan events.
//!
//! One failed sign-in is often logged three times: by the proxy, by the service's access log
//! and by the service itself (RAE even writes two lines for one wrong key). Counting all of
//! them would triple every figure, so an *attempt* is counted from one log per instance, the
//! first it has of proxy, access, service: the proxy's access log is the one with a client
//! address that can be trusted (service-facts: the services do not log one). The other logs
//! still add what only they know, such as Jelmore's key prefixes.

use std::collections::BTreeSet;

// Randomly seeded and fast: the keys are strings from hosts, which must not be able to force
// collisions, and hashing them is a large share of ingest.
type HashMap<K, V> = crate::FastMap<K, V>;
type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
use std::path::Path;

use gatehouse_events::{Kind, Outcome};
use gatehouse_protocol::WireEvent;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::Result;

const HOUR_US: i64 = 3_600_000_000;
/// Rows bound into one INSERT statement (14 parameters each, far below SQLite's limit).
const ROWS_PER_INSERT: usize = 500;

/// `INSERT OR IGNORE INTO events ... VALUES (...), (...), ...` for `rows` rows.
fn multi_insert_sql(rows: usize) -> String {
    let one = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
    let values = vec![one; rows].join(",");
    format!(
        "INSERT OR IGNORE INTO events (time_us, instance, seq, kind, outcome, source, ip, path,
                                       actor, key_prefix, method, status, message, flags) VALUES {values}"
    )
}

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS strings (
        id    INTEGER PRIMARY KEY,
        value TEXT NOT NULL UNIQUE
    );
    CREATE VIRTUAL TABLE IF NOT EXISTS strings_fts USING fts5(
        value, content='strings', content_rowid='id'
    );
    CREATE TABLE IF NOT EXISTS events (
        time_us    INTEGER NOT NULL,
        instance   INTEGER NOT NULL,
        seq        INTEGER NOT NULL,
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
        flags      INTEGER NOT NULL,
        PRIMARY KEY (time_us, instance, seq)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS hour_terms (
        term INTEGER NOT NULL,
        hour INTEGER NOT NULL,
        PRIMARY KEY (term, hour)
    ) WITHOUT ROWID;
    -- Raw lines of one instance's events first_seq..=last_seq, in order, newline-joined.
    CREATE TABLE IF NOT EXISTS raw_blocks (
        instance  INTEGER NOT NULL,
        first_seq INTEGER NOT NULL,
        last_seq  INTEGER NOT NULL,
        data      BLOB NOT NULL,
        PRIMARY KEY (instance, first_seq)
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

/// The event store's own schema version (`PRAGMA user_version` of `events.sqlite3`).
const EVENTS_SCHEMA_VERSION: i64 = 1;

/// Failed-authentication rollups (version 1). Hours are UTC hours since the epoch; `ip` is
/// a string id, or 0 when the line had no client address.
const AUTH_SCHEMA: &str = "
    DROP TABLE IF EXISTS rollup_hourly;
    CREATE TABLE IF NOT EXISTS auth_hourly (
        hour     INTEGER NOT NULL,
        instance INTEGER NOT NULL,
        source   INTEGER NOT NULL,
        ip       INTEGER NOT NULL,
        failures INTEGER NOT NULL,
        first_us INTEGER NOT NULL,
        last_us  INTEGER NOT NULL,
        PRIMARY KEY (hour, instance, source, ip)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS auth_totals (
        hour     INTEGER NOT NULL,
        instance INTEGER NOT NULL,
        source   INTEGER NOT NULL,
        failures INTEGER NOT NULL,
        PRIMARY KEY (hour, instance, source)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS auth_keys (
        ip         INTEGER NOT NULL,
        key_prefix INTEGER NOT NULL,
        instance   INTEGER NOT NULL,
        hour       INTEGER NOT NULL,
        failures   INTEGER NOT NULL,
        PRIMARY KEY (ip, key_prefix, instance, hour)
    ) WITHOUT ROWID;
    -- Each log an instance has, from the first hour it had an event.
    CREATE TABLE IF NOT EXISTS instance_sources (
        instance   INTEGER NOT NULL,
        source     INTEGER NOT NULL,
        first_hour INTEGER NOT NULL,
        PRIMARY KEY (instance, source)
    ) WITHOUT ROWID;
";

/// Rebuild the version-1 rollups from the events already stored (a store written before
/// they existed).
const AUTH_BACKFILL: &str = "
    INSERT INTO instance_sources (instance, source, first_hour)
        SELECT instance, source, MIN(time_us) / 3600000000 FROM events WHERE kind != 7 AND seq >= 0
        GROUP BY instance, source;
    INSERT INTO auth_hourly (hour, instance, source, ip, failures, first_us, last_us)
        SELECT time_us / 3600000000, instance, source, COALESCE(ip, 0), COUNT(*), MIN(time_us), MAX(time_us)
        FROM events WHERE kind = 0 AND outcome = 1 GROUP BY 1, 2, 3, 4;
    INSERT INTO auth_totals (hour, instance, source, failures)
        SELECT hour, instance, source, SUM(failures) FROM auth_hourly GROUP BY 1, 2, 3;
    INSERT INTO auth_keys (ip, key_prefix, instance, hour, failures)
        SELECT ip, key_prefix, instance, time_us / 3600000000, COUNT(*)
        FROM events WHERE kind = 0 AND outcome = 1 AND ip IS NOT NULL AND key_prefix IS NOT NULL
        GROUP BY 1, 2, 3, 4;
";

/// The order in which an instance's logs are preferred for counting attempts.
const COUNTING_PREFERENCE: [&str; 3] = ["proxy", "access", "service"];

/// One instance's attempts are counted from `source` over `from_hour..until_hour`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counting {
    pub instance: i64,
    pub source: i64,
    pub from_hour: i64,
    pub until_hour: i64,
}

/// How a table records time, for [`counting_clause`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeColumn {
    /// `hour`: UTC hours since the epoch (the rollups).
    Hour,
    /// `time_us` (the events).
    Micros,
}

/// SQL selecting the rows counted as attempts: `(instance = .. AND source = .. AND <time in
/// its period>) OR ...`, from integer ids and hours only (never text from hosts). Matches
/// nothing when there are no periods.
pub(crate) fn counting_clause(periods: &[Counting], time: TimeColumn) -> String {
    if periods.is_empty() {
        return "0".to_owned();
    }
    periods
        .iter()
        .map(|c| {
            let mut clause = format!("(instance = {} AND source = {}", c.instance, c.source);
            let (column, scale) = match time {
                TimeColumn::Hour => ("hour", 1),
                TimeColumn::Micros => ("time_us", HOUR_US),
            };
            if c.from_hour != i64::MIN {
                clause.push_str(&format!(
                    " AND {column} >= {}",
                    c.from_hour.saturating_mul(scale)
                ));
            }
            if c.until_hour != i64::MAX {
                clause.push_str(&format!(
                    " AND {column} < {}",
                    c.until_hour.saturating_mul(scale)
                ));
            }
            clause.push(')');
            clause
        })
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// One event as the timeline shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct TimelineEvent {
    /// Microseconds since the epoch.
    #[ts(type = "number")]
    pub time_us: i64,
    pub instance: String,
    /// The agent's sequence number (negative for markers the console wrote itself).
    #[ts(type = "number")]
    pub seq: i64,
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
    /// Key prefix, matched as a prefix.
    pub key_prefix: Option<String>,
    /// Path prefix.
    pub path: Option<String>,
    /// Free text: every word must match an address, path, actor, key, message or method.
    pub text: Option<String>,
    /// Which log: `proxy`, `access`, `service`, `agent`, `console`.
    pub source: Option<String>,
    /// Only these UTC hours (hours since the epoch): a heatmap cell's exact buckets.
    #[ts(type = "Array<number> | null")]
    pub hours: Option<Vec<i64>>,
    /// Only failed authentications as heatmaps and detection count them: from each
    /// instance's counting log (see the module documentation).
    pub attempts: bool,
}

/// Where a page ends: the last event's key. Pass it back for the next (older) page.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, TS)]
pub struct Cursor {
    #[ts(type = "number")]
    pub time_us: i64,
    pub instance: String,
    #[ts(type = "number")]
    pub seq: i64,
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

/// Strings an event must have one of, to prune hours: ids, or a subquery that selects them.
enum Terms {
    Ids(Vec<i64>),
    Query(&'static str, Vec<rusqlite::types::Value>),
}

/// One page as pulled from an agent: its events, the sequence it was asked for events after,
/// and how many the agent had dropped before them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    pub events: Vec<WireEvent>,
    pub after: u64,
    pub dropped: u64,
}

/// The event store.
#[derive(Debug)]
pub struct EventStore {
    conn: Connection,
    interned: HashMap<String, i64>,
    names: HashMap<i64, String>,
    /// The last raw block read, decompressed: exports and a detail panel stepping through
    /// neighbours read the same block again and again.
    raw_cache: Option<RawBlock>,
}

#[derive(Debug)]
struct RawBlock {
    instance: i64,
    first_seq: i64,
    last_seq: i64,
    lines: Vec<String>,
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

/// `hour_terms` terms for a kind and an outcome: negative, so they never collide with string
/// ids.
fn kind_term(kind: i64) -> i64 {
    -1 - kind
}

fn outcome_term(outcome: i64) -> i64 {
    -100 - outcome
}

/// A time-ordered, unique-enough sequence for markers the console writes itself.
fn marker_seq(time_us: i64) -> i64 {
    -time_us.max(1)
}

impl EventStore {
    pub fn open(path: &Path) -> Result<Self> {
        // The console serializes access behind its own lock, so SQLite's per-call mutexes
        // would only cost time.
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
            | rusqlite::OpenFlags::SQLITE_OPEN_CREATE
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
            | rusqlite::OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Larger pages: fewer B-tree levels and splits for tens of millions of small rows.
        // Takes effect only when the file is created.
        conn.pragma_update(None, "page_size", 16_384)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "cache_size", -65_536)?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.execute_batch(SCHEMA)?;
        let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if found > EVENTS_SCHEMA_VERSION {
            return Err(crate::Error::SchemaTooNew {
                path: path.to_owned(),
                found: found as u32,
                supported: EVENTS_SCHEMA_VERSION as u32,
            });
        }
        if found < 1 {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(AUTH_SCHEMA)?;
            tx.execute_batch(AUTH_BACKFILL)?;
            tx.pragma_update(None, "user_version", 1)?;
            tx.commit()?;
            tracing::info!(
                version = 1,
                "event store migrated: failed-authentication rollups"
            );
        }
        let mut store = EventStore {
            conn,
            interned: HashMap::default(),
            names: HashMap::default(),
            raw_cache: None,
        };
        store.load_strings()?;
        Ok(store)
    }

    fn load_strings(&mut self) -> Result<()> {
        self.refresh_strings()
    }

    /// Learn the strings other processes (the CLI beside the app) added since the cache was
    /// filled: ids only grow, so one indexed query above the highest id known does it.
    fn refresh_strings(&mut self) -> Result<()> {
        let known = self.names.keys().copied().max().unwrap_or(0);
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, value FROM strings WHERE id > ?1")?;
        let rows = stmt.query_map([known], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?;
        for row in rows {
            let (id, value) = row?;
            self.names.insert(id, value.clone());
            self.interned.insert(value, id);
        }
        Ok(())
    }

    /// Store pages pulled from `instance`'s agent and advance its sync state, in one
    /// transaction (one commit per sync round rather than per page is what lets ingest run at
    /// a million events a second).
    ///
    /// Events at or below the sequence already stored for the instance (the same pages pulled
    /// twice, by the app and a CLI at once) are skipped, so nothing is counted twice. Returns
    /// that sequence: the caller's events above it are the new ones.
    pub fn ingest(&mut self, instance: &str, pages: &[Pulled], now_us: i64) -> Result<u64> {
        let result = self.ingest_tx(instance, pages, now_us);
        if result.is_err() {
            // The transaction rolled back; ids interned in it are gone from the database.
            self.interned.clear();
            self.names.clear();
            self.load_strings()?;
        }
        result
    }

    fn ingest_tx(&mut self, instance: &str, pages: &[Pulled], now_us: i64) -> Result<u64> {
        // Immediate: the stored position is read and advanced under one write lock, across
        // processes too.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let stored: u64 = tx
            .query_row(
                "SELECT after FROM sync_state WHERE instance = ?1",
                [instance],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .map_or(0, |a| a.max(0) as u64);
        {
            let mut interner = Interner::new(&tx, &mut self.interned, &mut self.names)?;
            let instance_id = interner.intern(instance)?;
            // Aggregated over the whole batch, written once at the end.
            let mut terms: HashSet<(i64, i64)> = HashSet::default();
            let mut auth = AuthRollups::default();
            // Each source's earliest hour in the batch.
            let mut sources: HashMap<i64, i64> = HashMap::default();
            let mut rows: Vec<rusqlite::types::Value> = Vec::with_capacity(ROWS_PER_INSERT * 14);
            for (page_index, page) in pages.iter().enumerate() {
                if page.dropped > 0 {
                    let message = interner.intern(&format!(
                        "{} events were dropped by the agent before the console read them.",
                        page.dropped
                    ))?;
                    let source = interner.intern("agent")?;
                    let (kind, outcome) = (kind_code(Kind::Gap), outcome_code(Outcome::Error));
                    // One marker per page with a gap; pages of one batch share `now_us`.
                    let seq = marker_seq(now_us) - page_index as i64;
                    tx.execute(
                        "INSERT OR IGNORE INTO events (time_us, instance, seq, kind, outcome, source, message, flags)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)",
                        params![now_us, instance_id, seq, kind, outcome, source, message],
                    )?;
                    let hour = now_us.div_euclid(HOUR_US);
                    terms.extend([
                        (instance_id, hour),
                        (kind_term(kind), hour),
                        (outcome_term(outcome), hour),
                        (message, hour),
                    ]);
                }
                let mut block = String::new();
                let fresh = page.events.partition_point(|e| e.seq <= stored);
                let events = &page.events[fresh..];
                for chunk in events.chunks(ROWS_PER_INSERT) {
                    rows.clear();
                    for e in chunk {
                        let source = interner.intern(&e.source)?;
                        let ip = interner.intern_opt(&e.ip)?;
                        let path = interner.intern_opt(&e.path)?;
                        let actor = interner.intern_opt(&e.actor)?;
                        let key_prefix = interner.intern_opt(&e.key_prefix)?;
                        let method = interner.intern_opt(&e.method)?;
                        let message = interner.intern_opt(&e.message)?;
                        let (kind, outcome) = (kind_code(e.kind), outcome_code(e.outcome));
                        rows.extend([
                            e.time_us.into(),
                            instance_id.into(),
                            (e.seq as i64).into(),
                            kind.into(),
                            outcome.into(),
                            source.into(),
                            ip.into(),
                            path.into(),
                            actor.into(),
                            key_prefix.into(),
                            method.into(),
                            e.status.map(i64::from).into(),
                            message.into(),
                            i64::from(e.flags).into(),
                        ]);
                        let hour = e.time_us.div_euclid(HOUR_US);
                        terms.insert((instance_id, hour));
                        terms.insert((kind_term(kind), hour));
                        terms.insert((outcome_term(outcome), hour));
                        for term in [ip, path, actor, key_prefix, message, method]
                            .into_iter()
                            .flatten()
                        {
                            terms.insert((term, hour));
                        }
                        let first = sources.entry(source).or_insert(hour);
                        *first = (*first).min(hour);
                        if e.kind == Kind::Auth && e.outcome == Outcome::Failure {
                            auth.add(hour, source, ip, key_prefix, e.time_us);
                        }
                        // A line read up to a newline holds none; guard the block's framing.
                        if e.raw.contains('\n') {
                            block.push_str(&e.raw.replace('\n', " "));
                        } else {
                            block.push_str(&e.raw);
                        }
                        block.push('\n');
                    }
                    // Many rows per statement: SQLite's per-statement cost dominates small rows.
                    let mut multi = tx.prepare_cached(&multi_insert_sql(chunk.len()))?;
                    multi.execute(rusqlite::params_from_iter(rows.drain(..)))?;
                }
                if let (Some(first), Some(last)) = (events.first(), events.last()) {
                    tx.execute(
                        "INSERT OR REPLACE INTO raw_blocks (instance, first_seq, last_seq, data) VALUES (?1, ?2, ?3, ?4)",
                        params![instance_id, first.seq as i64, last.seq as i64, lz4_flex::compress_prepend_size(block.as_bytes())],
                    )?;
                }
            }
            let mut term_insert =
                tx.prepare_cached("INSERT OR IGNORE INTO hour_terms (term, hour) VALUES (?1, ?2)")?;
            for (term, hour) in terms {
                term_insert.execute(params![term, hour])?;
            }
            auth.write(&tx, instance_id)?;
            let mut source_insert = tx.prepare_cached(
                "INSERT INTO instance_sources (instance, source, first_hour) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO UPDATE SET first_hour = MIN(first_hour, excluded.first_hour)",
            )?;
            for (source, first_hour) in sources {
                source_insert.execute(params![instance_id, source, first_hour])?;
            }
            interner.index_new_strings()?;
            if let Some(last_page) = pages.last() {
                let last = last_page
                    .events
                    .last()
                    .map_or(last_page.after, |e| e.seq)
                    .max(stored);
                let events: usize = pages
                    .iter()
                    .map(|p| p.events.iter().filter(|e| e.seq > stored).count())
                    .sum();
                let dropped: u64 = pages.iter().map(|p| p.dropped).sum();
                tx.execute(
                    "INSERT INTO sync_state (instance, after, events, gaps, last_sync, last_error, failures)
                     VALUES (?1, ?2, ?3, ?4, ?5, NULL, 0)
                     ON CONFLICT(instance) DO UPDATE SET after = excluded.after,
                         events = events + excluded.events, gaps = gaps + excluded.gaps,
                         last_sync = excluded.last_sync, last_error = NULL, failures = 0",
                    params![instance, last as i64, events as i64, dropped as i64, now_us],
                )?;
            }
        }
        tx.commit()?;
        Ok(stored)
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
        {
            let mut interner = Interner::new(&tx, &mut self.interned, &mut self.names)?;
            let instance_id = interner.intern(instance)?;
            let source = interner.intern("console")?;
            let message_id = interner.intern(message)?;
            let outcome = outcome_code(outcome);
            // Several actions in one microsecond (a batch raising alerts, a fixed test
            // clock) take the next free sequence below.
            for step in 0..10_000 {
                let stored = tx.execute(
                    "INSERT OR IGNORE INTO events (time_us, instance, seq, kind, outcome, source, message, flags)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)",
                    params![time_us, instance_id, marker_seq(time_us) - step, CONSOLE_KIND, outcome, source, message_id],
                )?;
                if stored == 1 {
                    break;
                }
            }
            let hour = time_us.div_euclid(HOUR_US);
            for term in [
                instance_id,
                kind_term(CONSOLE_KIND),
                outcome_term(outcome),
                message_id,
            ] {
                tx.execute(
                    "INSERT OR IGNORE INTO hour_terms (term, hour) VALUES (?1, ?2)",
                    params![term, hour],
                )?;
            }
            interner.index_new_strings()?;
        }
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
        before: Option<&Cursor>,
        limit: u32,
    ) -> Result<EventPage> {
        let limit = limit.clamp(1, 1000) as usize;
        let id_of = |value: &str| self.interned.get(value).copied().unwrap_or(i64::MIN);
        let mut clauses: Vec<String> = Vec::new();
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        // Sets of terms an event must have one of; each prunes hours through hour_terms.
        let mut term_sets: Vec<Terms> = Vec::new();
        let column_in = |column: &str, ids: &[i64], clauses: &mut Vec<String>| {
            let list = ids
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",");
            clauses.push(format!(
                "{column} IN ({})",
                if list.is_empty() { "NULL".into() } else { list }
            ));
        };
        if let Some(instance) = &filter.instance {
            let ids = vec![id_of(instance)];
            column_in("instance", &ids, &mut clauses);
            term_sets.push(Terms::Ids(ids));
        }
        if filter.service.is_some() {
            let ids: Vec<i64> = instances_of_service.iter().map(|i| id_of(i)).collect();
            column_in("instance", &ids, &mut clauses);
            term_sets.push(Terms::Ids(ids));
        }
        if let Some(kind) = &filter.kind {
            let code = KIND_WORDS
                .iter()
                .position(|w| w == kind)
                .map_or(i64::MIN, |p| p as i64);
            column_in("kind", &[code], &mut clauses);
            term_sets.push(Terms::Ids(vec![kind_term(code)]));
        }
        if let Some(outcome) = &filter.outcome {
            let code = OUTCOME_WORDS
                .iter()
                .position(|w| w == outcome)
                .map_or(i64::MIN, |p| p as i64);
            column_in("outcome", &[code], &mut clauses);
            term_sets.push(Terms::Ids(vec![outcome_term(code)]));
        }
        if let Some(ip) = &filter.ip {
            let ids = vec![id_of(ip)];
            column_in("ip", &ids, &mut clauses);
            term_sets.push(Terms::Ids(ids));
        }
        // Prefixes and words select strings with a subquery, however many match.
        const PREFIX: &str = "SELECT id FROM strings WHERE value >= ? AND value < ?";
        for (column, prefix) in [("key_prefix", &filter.key_prefix), ("path", &filter.path)] {
            if let Some(prefix) = prefix {
                let sub_args: Vec<rusqlite::types::Value> =
                    vec![prefix.clone().into(), format!("{prefix}\u{10FFFF}").into()];
                clauses.push(format!("{column} IN ({PREFIX})"));
                args.extend(sub_args.iter().cloned());
                term_sets.push(Terms::Query(PREFIX, sub_args));
            }
        }
        if let Some(text) = filter
            .text
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            // A word is a phrase prefix: "198.51" finds 198.51.100.4, "memory_store" finds
            // /mcp/tools/memory_store.
            const WORD: &str = "SELECT rowid FROM strings_fts WHERE strings_fts MATCH ?";
            const COLUMNS: [&str; 7] = [
                "ip",
                "path",
                "actor",
                "key_prefix",
                "message",
                "method",
                "instance",
            ];
            for word in text.split_whitespace() {
                let quoted: rusqlite::types::Value =
                    format!("\"{}\"*", word.replace('"', "\"\"")).into();
                let any = COLUMNS
                    .iter()
                    .map(|c| format!("{c} IN ({WORD})"))
                    .collect::<Vec<_>>()
                    .join(" OR ");
                clauses.push(format!("({any})"));
                args.extend(std::iter::repeat_n(quoted.clone(), COLUMNS.len()));
                term_sets.push(Terms::Query(WORD, vec![quoted]));
            }
        }
        if let Some(source) = &filter.source {
            column_in("source", &[id_of(source)], &mut clauses);
        }
        if filter.attempts {
            let periods = self.counting_sources()?;
            clauses.push(format!(
                "kind = 0 AND outcome = 1 AND ({})",
                counting_clause(&periods, TimeColumn::Micros)
            ));
            term_sets.push(Terms::Ids(vec![kind_term(0)]));
            term_sets.push(Terms::Ids(vec![outcome_term(1)]));
        }
        let from = filter.from_us.unwrap_or(i64::MIN);
        let mut to = filter.to_us.unwrap_or(i64::MAX);
        if let Some(cursor) = before {
            clauses.push("(time_us, instance, seq) < (?, ?, ?)".into());
            args.push(cursor.time_us.into());
            args.push(id_of(&cursor.instance).into());
            args.push(cursor.seq.into());
            to = to.min(cursor.time_us.saturating_add(1));
        }
        if from >= to {
            return Ok(EventPage {
                events: Vec::new(),
                next: None,
            });
        }
        let filters = if clauses.is_empty() {
            String::new()
        } else {
            format!(" AND {}", clauses.join(" AND "))
        };
        let sql = format!(
            "SELECT time_us, instance, seq, source, kind, outcome, ip, path, actor, key_prefix, method, status, message, flags
             FROM events WHERE time_us >= ? AND time_us < ?{filters}
             ORDER BY time_us DESC, instance DESC, seq DESC LIMIT ?"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut events = Vec::with_capacity(limit);
        let mut run =
            |lo: i64, hi: i64, want: usize, events: &mut Vec<TimelineEvent>| -> Result<()> {
                let mut all: Vec<rusqlite::types::Value> = vec![lo.into(), hi.into()];
                all.extend(args.iter().cloned());
                all.push((want as i64).into());
                let rows = stmt.query_map(rusqlite::params_from_iter(all), |r| self.row(r))?;
                for row in rows {
                    events.push(row?);
                }
                Ok(())
            };
        if term_sets.is_empty() && filter.hours.is_none() {
            run(from, to, limit, &mut events)?;
        } else {
            // Hours that have at least one term of every set, newest first.
            let mut hours: Option<BTreeSet<i64>> = filter.hours.as_ref().map(|h| {
                let (first, last) = (from.div_euclid(HOUR_US), (to - 1).div_euclid(HOUR_US));
                h.iter()
                    .copied()
                    .filter(|h| (first..=last).contains(h))
                    .collect()
            });
            for set in &term_sets {
                let found = self.hours_with_any(
                    set,
                    from.div_euclid(HOUR_US),
                    (to - 1).div_euclid(HOUR_US),
                )?;
                hours = Some(match hours {
                    None => found,
                    Some(h) => h.intersection(&found).copied().collect(),
                });
            }
            for hour in hours.unwrap_or_default().into_iter().rev() {
                let lo = from.max(hour.saturating_mul(HOUR_US));
                let hi = to.min(hour.saturating_add(1).saturating_mul(HOUR_US));
                run(lo, hi, limit - events.len(), &mut events)?;
                if events.len() == limit {
                    break;
                }
            }
        }
        let next = (events.len() == limit)
            .then(|| {
                events.last().map(|e| Cursor {
                    time_us: e.time_us,
                    instance: e.instance.clone(),
                    seq: e.seq,
                })
            })
            .flatten();
        Ok(EventPage { events, next })
    }

    fn row(&self, r: &rusqlite::Row<'_>) -> rusqlite::Result<TimelineEvent> {
        let name = |id: Option<i64>| id.and_then(|id| self.names.get(&id).cloned());
        Ok(TimelineEvent {
            time_us: r.get(0)?,
            instance: name(r.get(1)?).unwrap_or_default(),
            seq: r.get(2)?,
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
    }

    fn hours_with_any(
        &self,
        terms: &Terms,
        first_hour: i64,
        last_hour: i64,
    ) -> Result<BTreeSet<i64>> {
        let mut hours = BTreeSet::new();
        match terms {
            Terms::Ids(ids) => {
                let mut stmt = self.conn.prepare_cached(
                    "SELECT hour FROM hour_terms WHERE term = ?1 AND hour BETWEEN ?2 AND ?3",
                )?;
                for term in ids {
                    for hour in stmt
                        .query_map(params![term, first_hour, last_hour], |r| r.get::<_, i64>(0))?
                    {
                        hours.insert(hour?);
                    }
                }
            }
            Terms::Query(sub, sub_args) => {
                let mut stmt = self.conn.prepare_cached(&format!(
                    "SELECT DISTINCT hour FROM hour_terms WHERE term IN ({sub}) AND hour BETWEEN ? AND ?"
                ))?;
                let mut all = sub_args.clone();
                all.push(first_hour.into());
                all.push(last_hour.into());
                for hour in
                    stmt.query_map(rusqlite::params_from_iter(all), |r| r.get::<_, i64>(0))?
                {
                    hours.insert(hour?);
                }
            }
        }
        Ok(hours)
    }

    /// The raw line of one event, as read on the host.
    pub fn raw(&mut self, instance: &str, seq: i64) -> Result<Option<String>> {
        self.refresh_strings()?;
        let Some(&instance_id) = self.interned.get(instance) else {
            return Ok(None);
        };
        let cached = self
            .raw_cache
            .as_ref()
            .is_some_and(|b| b.instance == instance_id && b.first_seq <= seq && seq <= b.last_seq);
        if !cached {
            let block: Option<(i64, i64, Vec<u8>)> = self
                .conn
                .query_row(
                    "SELECT first_seq, last_seq, data FROM raw_blocks
                     WHERE instance = ?1 AND first_seq <= ?2 ORDER BY first_seq DESC LIMIT 1",
                    params![instance_id, seq],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let Some((first_seq, last_seq, data)) = block.filter(|(_, last, _)| seq <= *last)
            else {
                return Ok(None);
            };
            let text =
                lz4_flex::decompress_size_prepended(&data).map_err(|e| crate::Error::Keychain {
                    detail: format!("a stored raw-line block is damaged: {e}"),
                })?;
            let lines = String::from_utf8_lossy(&text)
                .split('\n')
                .map(str::to_owned)
                .collect();
            self.raw_cache = Some(RawBlock {
                instance: instance_id,
                first_seq,
                last_seq,
                lines,
            });
        }
        Ok(self
            .raw_cache
            .as_ref()
            .and_then(|b| b.lines.get((seq - b.first_seq) as usize))
            .filter(|line| !line.is_empty())
            .cloned())
    }

    /// Failed authentication attempts per hour of one instance, from the rollups.
    pub fn failed_auth_by_hour(&self, instance: &str) -> Result<Vec<(i64, i64)>> {
        let Some(&id) = self.interned.get(instance) else {
            return Ok(Vec::new());
        };
        let periods: Vec<Counting> = self
            .counting_sources()?
            .into_iter()
            .filter(|c| c.instance == id)
            .collect();
        if periods.is_empty() {
            return Ok(Vec::new());
        }
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT hour, failures FROM auth_totals WHERE {} ORDER BY hour",
            counting_clause(&periods, TimeColumn::Hour)
        ))?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Which log each instance's attempts are counted from, and over which hours: its best
    /// log (proxy, access, service) from the hour that log first appeared, the next best
    /// before that, so adding a proxy log later does not hide the history counted before.
    pub(crate) fn counting_sources(&self) -> Result<Vec<Counting>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT instance, source, first_hour FROM instance_sources ORDER BY instance",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let rank = |source: i64| {
            let name = self.names.get(&source).map(String::as_str).unwrap_or("");
            COUNTING_PREFERENCE
                .iter()
                .position(|p| *p == name)
                .unwrap_or(COUNTING_PREFERENCE.len())
        };
        let mut by_instance: std::collections::BTreeMap<i64, Vec<(usize, i64, i64)>> =
            Default::default();
        for (instance, source, first_hour) in rows {
            by_instance
                .entry(instance)
                .or_default()
                .push((rank(source), source, first_hour));
        }
        let mut out = Vec::new();
        for (instance, mut sources) in by_instance {
            sources.sort_unstable();
            let mut until = i64::MAX;
            for (_, source, first_hour) in sources {
                if first_hour < until {
                    out.push(Counting {
                        instance,
                        source,
                        from_hour: first_hour,
                        until_hour: until,
                    });
                    until = first_hour;
                }
            }
            // The earliest period reaches back to the beginning.
            if let Some(last) = out.last_mut() {
                last.from_hour = i64::MIN;
            }
        }
        Ok(out)
    }

    /// The log an instance's new events are counted from (its best log so far).
    pub(crate) fn current_counting_source(&self, instance: i64) -> Result<Option<i64>> {
        Ok(self
            .counting_sources()?
            .into_iter()
            .find(|c| c.instance == instance && c.until_hour == i64::MAX)
            .map(|c| c.source))
    }

    /// An instance's average failed attempts per hour over `first..=last` (counting log).
    pub(crate) fn mean_hourly_failures(&self, instance: i64, first: i64, last: i64) -> Result<f64> {
        let periods: Vec<Counting> = self
            .counting_sources()?
            .into_iter()
            .filter(|c| c.instance == instance)
            .collect();
        if periods.is_empty() {
            return Ok(0.0);
        }
        let total: i64 = self
            .conn
            .prepare_cached(&format!(
                "SELECT COALESCE(SUM(failures), 0) FROM auth_totals
                 WHERE hour BETWEEN ?1 AND ?2 AND ({})",
                counting_clause(&periods, TimeColumn::Hour)
            ))?
            .query_row(params![first, last], |r| r.get(0))?;
        Ok(total as f64 / (last - first + 1).max(1) as f64)
    }

    /// The id of an interned string, if it was ever stored.
    pub(crate) fn string_id(&self, value: &str) -> Option<i64> {
        self.interned.get(value).copied()
    }

    /// The string of an id.
    pub(crate) fn string(&self, id: i64) -> Option<&str> {
        self.names.get(&id).map(String::as_str)
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Learn strings other processes stored (the CLI beside the app, or the reverse).
    pub(crate) fn refresh(&mut self) -> Result<()> {
        self.refresh_strings()
    }

    pub fn count(&self) -> Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM events", [], |r| r.get::<_, i64>(0))?
            as u64)
    }
}

/// One batch's failed authentications, aggregated before they are written.
#[derive(Default)]
struct AuthRollups {
    /// (hour, source, ip or 0) -> (failures, first, last).
    by_address: HashMap<(i64, i64, i64), (i64, i64, i64)>,
    /// (ip, key prefix, hour) -> failures.
    keys: HashMap<(i64, i64, i64), i64>,
}

impl AuthRollups {
    fn add(&mut self, hour: i64, source: i64, ip: Option<i64>, key: Option<i64>, time_us: i64) {
        let entry = self
            .by_address
            .entry((hour, source, ip.unwrap_or(0)))
            .or_insert((0, time_us, time_us));
        entry.0 += 1;
        entry.1 = entry.1.min(time_us);
        entry.2 = entry.2.max(time_us);
        if let (Some(ip), Some(key)) = (ip, key) {
            *self.keys.entry((ip, key, hour)).or_default() += 1;
        }
    }

    fn write(self, tx: &rusqlite::Transaction<'_>, instance: i64) -> rusqlite::Result<()> {
        let mut hourly = tx.prepare_cached(
            "INSERT INTO auth_hourly (hour, instance, source, ip, failures, first_us, last_us)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT DO UPDATE SET failures = failures + excluded.failures,
                 first_us = MIN(first_us, excluded.first_us), last_us = MAX(last_us, excluded.last_us)",
        )?;
        let mut totals: HashMap<(i64, i64), i64> = HashMap::default();
        for ((hour, source, ip), (failures, first, last)) in self.by_address {
            hourly.execute(params![hour, instance, source, ip, failures, first, last])?;
            *totals.entry((hour, source)).or_default() += failures;
        }
        let mut total = tx.prepare_cached(
            "INSERT INTO auth_totals (hour, instance, source, failures) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT DO UPDATE SET failures = failures + excluded.failures",
        )?;
        for ((hour, source), failures) in totals {
            total.execute(params![hour, instance, source, failures])?;
        }
        let mut keys = tx.prepare_cached(
            "INSERT INTO auth_keys (ip, key_prefix, instance, hour, failures) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT DO UPDATE SET failures = failures + excluded.failures",
        )?;
        for ((ip, key, hour), failures) in self.keys {
            keys.execute(params![ip, key, instance, hour, failures])?;
        }
        Ok(())
    }
}

/// Interning within one transaction: new strings are inserted and remembered, and added to
/// the full-text index at the end.
struct Interner<'t, 'c> {
    tx: &'t rusqlite::Transaction<'c>,
    insert: rusqlite::CachedStatement<'t>,
    interned: &'t mut HashMap<String, i64>,
    names: &'t mut HashMap<i64, String>,
    new: Vec<i64>,
}

impl<'t, 'c> Interner<'t, 'c> {
    fn new(
        tx: &'t rusqlite::Transaction<'c>,
        interned: &'t mut HashMap<String, i64>,
        names: &'t mut HashMap<i64, String>,
    ) -> rusqlite::Result<Self> {
        Ok(Interner {
            tx,
            insert: tx.prepare_cached("INSERT OR IGNORE INTO strings (value) VALUES (?1)")?,
            interned,
            names,
            new: Vec::new(),
        })
    }

    fn intern(&mut self, value: &str) -> rusqlite::Result<i64> {
        if let Some(id) = self.interned.get(value) {
            return Ok(*id);
        }
        // Another process may have added it since the cache was filled.
        if self.insert.execute([value])? == 0 {
            let id =
                self.tx
                    .query_row("SELECT id FROM strings WHERE value = ?1", [value], |r| {
                        r.get(0)
                    })?;
            self.interned.insert(value.to_owned(), id);
            self.names.insert(id, value.to_owned());
            return Ok(id);
        }
        let id = self.tx.last_insert_rowid();
        self.interned.insert(value.to_owned(), id);
        self.names.insert(id, value.to_owned());
        self.new.push(id);
        Ok(id)
    }

    fn intern_opt(&mut self, value: &Option<String>) -> rusqlite::Result<Option<i64>> {
        value.as_deref().map(|v| self.intern(v)).transpose()
    }

    fn index_new_strings(&mut self) -> rusqlite::Result<()> {
        let mut fts = self
            .tx
            .prepare_cached("INSERT INTO strings_fts (rowid, value) VALUES (?1, ?2)")?;
        for id in self.new.drain(..) {
            if let Some(value) = self.names.get(&id) {
                fts.execute(params![id, value])?;
            }
        }
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
    })
}
