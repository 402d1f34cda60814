//! The timeline's pages (newest first, pruned by hour through `hour_terms`) and raw lines.

use std::collections::BTreeSet;

use gatehouse_events::{Kind, Outcome, Source};
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::rollups::{counting_clause, TimeColumn};
use super::{
    kind_code, kind_of, kind_term, outcome_code, outcome_of, outcome_term, EventStore, HOUR_US,
};
use crate::{Error, Result};

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
    /// Which log: `proxy`, `access`, `service`, `agent`, `console`.
    pub source: Source,
    pub kind: Kind,
    pub outcome: Outcome,
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
    pub kind: Option<Kind>,
    pub outcome: Option<Outcome>,
    pub ip: Option<String>,
    /// Key prefix, matched as a prefix.
    pub key_prefix: Option<String>,
    /// Path prefix.
    pub path: Option<String>,
    /// Free text: every word must match an address, path, actor, key, message or method.
    pub text: Option<String>,
    /// Which log.
    pub source: Option<Source>,
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

/// Strings an event must have one of, to prune hours: ids, or a subquery that selects them.
pub(super) enum Terms {
    Ids(Vec<i64>),
    Query(&'static str, Vec<rusqlite::types::Value>),
}

#[derive(Debug)]
pub(super) struct RawBlock {
    instance: i64,
    first_seq: i64,
    last_seq: i64,
    lines: Vec<String>,
}

impl EventStore {
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
        if let Some(kind) = filter.kind {
            let code = kind_code(kind);
            column_in("kind", &[code], &mut clauses);
            term_sets.push(Terms::Ids(vec![kind_term(code)]));
        }
        if let Some(outcome) = filter.outcome {
            let code = outcome_code(outcome);
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
            column_in("source", &[id_of(source.as_str())], &mut clauses);
        }
        if filter.attempts {
            let periods = self.counting_sources()?;
            let (kind, outcome) = (kind_code(Kind::Auth), outcome_code(Outcome::Failure));
            // The agent's own requests are never an attempt (as in the rollups).
            clauses.push(format!(
                "kind = {kind} AND outcome = {outcome} AND (flags & {probe}) = 0 AND ({})",
                counting_clause(&periods, TimeColumn::Micros),
                probe = gatehouse_protocol::flags::PROBE
            ));
            term_sets.push(Terms::Ids(vec![kind_term(kind)]));
            term_sets.push(Terms::Ids(vec![outcome_term(outcome)]));
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
            // A word an older agent took from its config is the service's.
            source: name(r.get(3)?)
                .and_then(|w| Source::from_word(&w))
                .unwrap_or(Source::Service),
            kind: code(4, r.get(4)?, kind_of)?,
            outcome: code(5, r.get(5)?, outcome_of)?,
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
            let text = lz4_flex::decompress_size_prepended(&data).map_err(|e| {
                Error::Damaged(format!(
                    "the raw lines of {instance} around event {seq} cannot be read back ({e})"
                ))
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
}

/// A stored integer code read back: one no build writes is damage, reported rather than
/// guessed.
fn code<T>(column: usize, code: i64, of: fn(i64) -> Option<T>) -> rusqlite::Result<T> {
    of(code).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Integer,
            format!("{code} is not a code Gatehouse writes here").into(),
        )
    })
}
