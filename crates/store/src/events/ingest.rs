//! Ingest: pages pulled from an agent, stored in one transaction with their hour index, raw
//! blocks, rollups and the instance's new sync position.

use gatehouse_events::{Kind, Outcome, Source};
use rusqlite::{params, OptionalExtension};

use super::interner::Interner;
use super::rollups::AuthRollups;
use super::{
    kind_code, kind_term, marker_seq, outcome_code, outcome_term, EventStore, HashMap, HashSet,
    Pulled, HOUR_US,
};
use crate::Result;

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

impl EventStore {
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
                    let source = interner.intern(Source::Agent.as_str())?;
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
                        let source = interner.intern(e.source.as_str())?;
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
                        // The agent's own probes stay on the timeline but out of the
                        // failed-sign-in rollups (heatmaps, offenders, baselines).
                        if e.kind == Kind::Auth
                            && e.outcome == Outcome::Failure
                            && e.flags & gatehouse_protocol::flags::PROBE == 0
                        {
                            let spoofable = e.flags & gatehouse_protocol::flags::IP_SPOOFABLE != 0;
                            auth.add(hour, source, ip, key_prefix, e.time_us, spoofable);
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
                let fresh = || {
                    pages
                        .iter()
                        .flat_map(|p| p.events.iter().filter(|e| e.seq > stored))
                };
                let events = fresh().count();
                let unparsed = fresh().filter(|e| e.kind == Kind::Unparsed).count();
                let dropped: u64 = pages.iter().map(|p| p.dropped).sum();
                tx.execute(
                    "INSERT INTO sync_state (instance, after, events, gaps, last_sync, last_error, failures, unparsed)
                     VALUES (?1, ?2, ?3, ?4, ?5, NULL, 0, ?6)
                     ON CONFLICT(instance) DO UPDATE SET after = excluded.after,
                         events = events + excluded.events, gaps = gaps + excluded.gaps,
                         last_sync = excluded.last_sync, last_error = NULL, failures = 0,
                         unparsed = unparsed + excluded.unparsed",
                    params![instance, last as i64, events as i64, dropped as i64, now_us, unparsed as i64],
                )?;
            }
        }
        tx.commit()?;
        Ok(stored)
    }
}
