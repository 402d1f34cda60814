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
//!
//! The code is split the same way: [`ingest`] (one transaction per sync round), `interner`
//! (strings to ids and back), [`query`] (the timeline's pages and raw lines), [`rollups`] (the
//! failed-authentication rollups: written at ingest and read for heatmaps, offenders and
//! detection, in one place) and `sync` (each instance's sync position).

mod ingest;
mod interner;
pub mod query;
pub mod rollups;
mod sync;

use std::path::Path;

use crate::{Error, Result};
use gatehouse_events::{Kind, Outcome, Source};
use gatehouse_protocol::WireEvent;
use rusqlite::Connection;

pub use query::{Cursor, EventFilter, EventPage, TimelineEvent};
pub use rollups::{Scope, StringId};
pub use sync::SyncState;

// Randomly seeded and fast: the keys are strings from hosts, which must not be able to force
// collisions, and hashing them is a large share of ingest.
pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub(crate) type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// Microseconds in an hour: rollups and the hour index are by UTC hour.
pub const HOUR_US: i64 = 3_600_000_000;
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
        failures   INTEGER NOT NULL DEFAULT 0,
        unparsed   INTEGER NOT NULL DEFAULT 0
    );
";

/// The event store's own schema version (`PRAGMA user_version` of `events.sqlite3`).
const EVENTS_SCHEMA_VERSION: i64 = 4;

/// Version 4: each instance's count of lines no format understood, kept as they are stored
/// (the fleet shows it), counted once from the events already stored.
const UNPARSED_COLUMN: &str =
    "ALTER TABLE sync_state ADD COLUMN unparsed INTEGER NOT NULL DEFAULT 0;";
const UNPARSED_BACKFILL: &str = "
    UPDATE sync_state SET unparsed = (
        SELECT COUNT(*) FROM events
        WHERE kind = 5 /* Kind::Unparsed */ AND instance = (SELECT id FROM strings WHERE value = sync_state.instance)
    );";

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
        spoofable INTEGER NOT NULL DEFAULT 0,
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
";
/// The rollups counted from the events, leaving out the agent's own probes (flag 32).
const AUTH_ROLLUPS: &str = "
    INSERT INTO auth_hourly (hour, instance, source, ip, failures, first_us, last_us)
        SELECT time_us / 3600000000, instance, source, COALESCE(ip, 0), COUNT(*), MIN(time_us), MAX(time_us)
        FROM events WHERE kind = 0 AND outcome = 1 AND (flags & 32) = 0 GROUP BY 1, 2, 3, 4;
    INSERT INTO auth_totals (hour, instance, source, failures)
        SELECT hour, instance, source, SUM(failures) FROM auth_hourly GROUP BY 1, 2, 3;
    INSERT INTO auth_keys (ip, key_prefix, instance, hour, failures)
        SELECT ip, key_prefix, instance, time_us / 3600000000, COUNT(*)
        FROM events WHERE kind = 0 AND outcome = 1 AND (flags & 32) = 0
          AND ip IS NOT NULL AND key_prefix IS NOT NULL
        GROUP BY 1, 2, 3, 4;
";

/// Version 3: the rollups counted again without the agent's own probes.
const PROBES_OUT: &str = "
    DELETE FROM auth_hourly;
    DELETE FROM auth_totals;
    DELETE FROM auth_keys;
";

/// Version 2: how many of each address-hour's failures carried an address a client chose
/// (the agent's `IP_SPOOFABLE` flag), counted again from the events.
const SPOOFABLE_COLUMN: &str = "
    ALTER TABLE auth_hourly ADD COLUMN spoofable INTEGER NOT NULL DEFAULT 0;
";
const SPOOFABLE_BACKFILL: &str = "
    UPDATE auth_hourly SET spoofable = s.n FROM (
        SELECT time_us / 3600000000 AS hour, instance, source, COALESCE(ip, 0) AS ip, COUNT(*) AS n
        FROM events WHERE kind = 0 AND outcome = 1 AND (flags & 16) != 0 AND (flags & 32) = 0
        GROUP BY 1, 2, 3, 4
    ) AS s
    WHERE auth_hourly.hour = s.hour AND auth_hourly.instance = s.instance
      AND auth_hourly.source = s.source AND auth_hourly.ip = s.ip;
";

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
    raw_cache: Option<query::RawBlock>,
}

/// Integer codes of kinds and outcomes in the `events` table. Append only: a new kind takes
/// the next code.
/// Whether `table` has `column`: a store created just now has the columns a migration adds
/// (from the schema), an older one not yet.
fn has_column(conn: &Connection, table: &str, column: &str) -> bool {
    conn.prepare(&format!("SELECT {column} FROM {table} LIMIT 0"))
        .is_ok()
}

fn kind_code(kind: Kind) -> i64 {
    match kind {
        Kind::Auth => 0,
        Kind::Request => 1,
        Kind::RateLimit => 2,
        Kind::Service => 3,
        Kind::Log => 4,
        Kind::Unparsed => 5,
        Kind::Gap => 6,
        Kind::Console => 7,
    }
}

fn kind_of(code: i64) -> Option<Kind> {
    Kind::ALL.iter().copied().find(|k| kind_code(*k) == code)
}

fn outcome_code(outcome: Outcome) -> i64 {
    match outcome {
        Outcome::Success => 0,
        Outcome::Failure => 1,
        Outcome::Error => 2,
        Outcome::Info => 3,
    }
}

fn outcome_of(code: i64) -> Option<Outcome> {
    Outcome::ALL
        .iter()
        .copied()
        .find(|o| outcome_code(*o) == code)
}

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
            return Err(Error::SchemaTooNew {
                path: path.to_owned(),
                found: found as u32,
                supported: EVENTS_SCHEMA_VERSION as u32,
            });
        }
        if found < 1 {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(AUTH_SCHEMA)?;
            tx.execute_batch(AUTH_BACKFILL)?;
            tx.execute_batch(AUTH_ROLLUPS)?;
            tx.pragma_update(None, "user_version", 1)?;
            tx.commit()?;
            tracing::info!(
                version = 1,
                "event store migrated: failed-authentication rollups"
            );
        }
        if found < 2 {
            let tx = conn.unchecked_transaction()?;
            if !has_column(&tx, "auth_hourly", "spoofable") {
                tx.execute_batch(SPOOFABLE_COLUMN)?;
            }
            tx.execute_batch(SPOOFABLE_BACKFILL)?;
            tx.pragma_update(None, "user_version", 2)?;
            tx.commit()?;
            tracing::info!(
                version = 2,
                "event store migrated: spoofable addresses counted"
            );
        }
        if found < 3 {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(PROBES_OUT)?;
            tx.execute_batch(AUTH_ROLLUPS)?;
            tx.execute_batch(SPOOFABLE_BACKFILL)?;
            tx.pragma_update(None, "user_version", 3)?;
            tx.commit()?;
            tracing::info!(
                version = 3,
                "event store migrated: the agent's own probes left out of the rollups"
            );
        }
        if found < 4 {
            let tx = conn.unchecked_transaction()?;
            if !has_column(&tx, "sync_state", "unparsed") {
                tx.execute_batch(UNPARSED_COLUMN)?;
            }
            tx.execute_batch(UNPARSED_BACKFILL)?;
            tx.pragma_update(None, "user_version", 4)?;
            tx.commit()?;
            tracing::info!(
                version = 4,
                "event store migrated: unparsed lines counted per instance"
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
            let mut interner = interner::Interner::new(&tx, &mut self.interned, &mut self.names)?;
            let instance_id = interner.intern(instance)?;
            let source = interner.intern(Source::Console.as_str())?;
            let message_id = interner.intern(message)?;
            let outcome = outcome_code(outcome);
            // Several actions in one microsecond (a batch raising alerts, a fixed test
            // clock) take the next free sequence below.
            for step in 0..10_000 {
                let stored = tx.execute(
                    "INSERT OR IGNORE INTO events (time_us, instance, seq, kind, outcome, source, message, flags)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)",
                    rusqlite::params![time_us, instance_id, marker_seq(time_us) - step, kind_code(Kind::Console), outcome, source, message_id],
                )?;
                if stored == 1 {
                    break;
                }
            }
            let hour = time_us.div_euclid(HOUR_US);
            for term in [
                instance_id,
                kind_term(kind_code(Kind::Console)),
                outcome_term(outcome),
                message_id,
            ] {
                tx.execute(
                    "INSERT OR IGNORE INTO hour_terms (term, hour) VALUES (?1, ?2)",
                    rusqlite::params![term, hour],
                )?;
            }
            interner.index_new_strings()?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Learn strings other processes stored (the CLI beside the app, or the reverse).
    pub fn refresh(&mut self) -> Result<()> {
        self.refresh_strings()
    }

    pub fn count(&self) -> Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM events", [], |r| r.get::<_, i64>(0))?
            as u64)
    }
}
