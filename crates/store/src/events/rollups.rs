//! Failed-authentication rollups: written as events arrive (per hour, instance, log and
//! address; per hour, instance and log; per address and key prefix), and every read of them
//! (heatmaps, offenders, the detector's baseline and counting log), so their meaning lives in
//! one place.

use gatehouse_events::Source;
use rusqlite::params;

use super::{EventStore, HashMap, HOUR_US};
use crate::Result;

/// A string the store holds (an address, an instance name, a key prefix), by its id: what the
/// rollups are keyed by. [`EventStore::string`] gives its text back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StringId(i64);

/// Which instances a read covers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scope<'a> {
    pub instance: Option<&'a str>,
    /// `Some` when filtering by service: the instances running it.
    pub service_instances: Option<&'a [String]>,
}

/// One address's failed attempts on one instance in one hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressHour {
    pub ip: StringId,
    pub instance: StringId,
    pub hour: i64,
    pub failures: u64,
    pub first_us: i64,
    pub last_us: i64,
    /// Of `failures`, those whose address was the service's report of a header a client
    /// chose (X-Forwarded-For): the address may be forged.
    pub spoofable: u64,
}

/// The order in which an instance's logs are preferred for counting attempts.
const COUNTING_PREFERENCE: [Source; 3] = [Source::Proxy, Source::Access, Source::Service];

/// One instance's attempts are counted from `source` over `from_hour..until_hour`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Counting {
    pub instance: i64,
    pub source: i64,
    pub from_hour: i64,
    pub until_hour: i64,
}

/// How a table records time, for [`counting_clause`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TimeColumn {
    /// `hour`: UTC hours since the epoch (the rollups).
    Hour,
    /// `time_us` (the events).
    Micros,
}

/// SQL selecting the rows counted as attempts: `(instance = .. AND source = .. AND <time in
/// its period>) OR ...`, from integer ids and hours only (never text from hosts). Matches
/// nothing when there are no periods.
pub(super) fn counting_clause(periods: &[Counting], time: TimeColumn) -> String {
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

/// One address's failures in one hour of one log, in a batch.
#[derive(Debug, Clone, Copy)]
struct Tally {
    failures: i64,
    first_us: i64,
    last_us: i64,
    /// Failures whose address was a header a client chose.
    spoofable: i64,
}

/// One batch's failed authentications, aggregated before they are written.
#[derive(Default)]
pub(super) struct AuthRollups {
    /// (hour, source, ip or 0) -> its tally.
    by_address: HashMap<(i64, i64, i64), Tally>,
    /// (ip, key prefix, hour) -> failures.
    keys: HashMap<(i64, i64, i64), i64>,
}

impl AuthRollups {
    pub(super) fn add(
        &mut self,
        hour: i64,
        source: i64,
        ip: Option<i64>,
        key: Option<i64>,
        time_us: i64,
        spoofable: bool,
    ) {
        let entry = self
            .by_address
            .entry((hour, source, ip.unwrap_or(0)))
            .or_insert(Tally {
                failures: 0,
                first_us: time_us,
                last_us: time_us,
                spoofable: 0,
            });
        entry.failures += 1;
        entry.first_us = entry.first_us.min(time_us);
        entry.last_us = entry.last_us.max(time_us);
        entry.spoofable += i64::from(spoofable);
        if let (Some(ip), Some(key)) = (ip, key) {
            *self.keys.entry((ip, key, hour)).or_default() += 1;
        }
    }

    pub(super) fn write(
        self,
        tx: &rusqlite::Transaction<'_>,
        instance: i64,
    ) -> rusqlite::Result<()> {
        let mut hourly = tx.prepare_cached(
            "INSERT INTO auth_hourly (hour, instance, source, ip, failures, first_us, last_us, spoofable)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT DO UPDATE SET failures = failures + excluded.failures,
                 first_us = MIN(first_us, excluded.first_us), last_us = MAX(last_us, excluded.last_us),
                 spoofable = spoofable + excluded.spoofable",
        )?;
        let mut totals: HashMap<(i64, i64), i64> = HashMap::default();
        for ((hour, source, ip), t) in self.by_address {
            hourly.execute(params![
                hour,
                instance,
                source,
                ip,
                t.failures,
                t.first_us,
                t.last_us,
                t.spoofable
            ])?;
            *totals.entry((hour, source)).or_default() += t.failures;
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

impl EventStore {
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
    pub(super) fn counting_sources(&self) -> Result<Vec<Counting>> {
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
                .position(|p| p.as_str() == name)
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

    /// The log `instance`'s new events are counted from (its best log so far).
    pub fn counting_source(&self, instance: &str) -> Result<Option<String>> {
        let Some(&id) = self.interned.get(instance) else {
            return Ok(None);
        };
        Ok(self
            .counting_sources()?
            .into_iter()
            .find(|c| c.instance == id && c.until_hour == i64::MAX)
            .and_then(|c| self.names.get(&c.source).cloned()))
    }

    /// `instance`'s average failed attempts per hour over `first..=last` (counting log).
    pub fn mean_hourly_failures(&self, instance: &str, first: i64, last: i64) -> Result<f64> {
        let Some(&id) = self.interned.get(instance) else {
            return Ok(0.0);
        };
        let periods: Vec<Counting> = self
            .counting_sources()?
            .into_iter()
            .filter(|c| c.instance == id)
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

    /// The id of a stored string.
    pub fn string_id(&self, value: &str) -> Option<StringId> {
        self.interned.get(value).copied().map(StringId)
    }

    /// The text of a string id.
    pub fn string(&self, id: StringId) -> Option<&str> {
        self.names.get(&id.0).map(String::as_str)
    }

    /// Failed attempts per (hour, instance) in `first..=last`, from the counting logs.
    pub fn attempts_by_hour(
        &self,
        scope: &Scope<'_>,
        first: i64,
        last: i64,
    ) -> Result<Vec<(i64, StringId, u64)>> {
        let pairs = self.counting_sources_in(scope)?;
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT hour, instance, failures FROM auth_totals WHERE hour BETWEEN ?1 AND ?2 AND ({})",
            counting_clause(&pairs, TimeColumn::Hour)
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([first, last], |r| {
            Ok((r.get(0)?, StringId(r.get(1)?), r.get::<_, i64>(2)? as u64))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The addresses with the most failed attempts in `first..=last`, most first.
    pub fn top_addresses(
        &self,
        scope: &Scope<'_>,
        first: i64,
        last: i64,
        limit: usize,
    ) -> Result<Vec<(StringId, u64)>> {
        Ok(self
            .top_addresses_page(scope, first, last, None, 0, limit)?
            .0)
    }

    /// Addresses `offset..offset + limit` by failures, most first, and how many addresses
    /// failed in the window in all; only those containing `matching` (lower case) if given.
    pub fn top_addresses_page(
        &self,
        scope: &Scope<'_>,
        first: i64,
        last: i64,
        matching: Option<&str>,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<(StringId, u64)>, u64)> {
        let pairs = self.counting_sources_in(scope)?;
        if pairs.is_empty() {
            return Ok((Vec::new(), 0));
        }
        // Summed in a hash map rather than with GROUP BY: on the hundred thousand rows of a
        // month, SQLite's sorter is most of the cost.
        let sql = format!(
            "SELECT ip, failures FROM auth_hourly WHERE hour BETWEEN ?1 AND ?2 AND ip != 0 AND ({})",
            counting_clause(&pairs, TimeColumn::Hour)
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query([first, last])?;
        let mut totals: HashMap<i64, u64> = HashMap::default();
        while let Some(row) = rows.next()? {
            *totals.entry(row.get(0)?).or_default() += row.get::<_, i64>(1)? as u64;
        }
        let mut top: Vec<(StringId, u64)> = totals
            .into_iter()
            .map(|(ip, n)| (StringId(ip), n))
            .filter(|(ip, _)| {
                matching.is_none_or(|part| {
                    self.string(*ip)
                        .is_some_and(|a| a.to_ascii_lowercase().contains(part))
                })
            })
            .collect();
        let total = top.len() as u64;
        let order = |a: &(StringId, u64), b: &(StringId, u64)| b.1.cmp(&a.1).then(a.0.cmp(&b.0));
        let end = offset.saturating_add(limit);
        if top.len() > end {
            top.select_nth_unstable_by(end, order);
            top.truncate(end);
        }
        top.sort_unstable_by(order);
        Ok((top.split_off(offset.min(top.len())), total))
    }

    /// Failed attempts per (hour, address) for the given addresses.
    pub fn attempts_of_addresses(
        &self,
        scope: &Scope<'_>,
        addresses: &[StringId],
        first: i64,
        last: i64,
    ) -> Result<Vec<(i64, StringId, u64)>> {
        let pairs = self.counting_sources_in(scope)?;
        if pairs.is_empty() || addresses.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT hour, ip, failures FROM auth_hourly
             WHERE hour BETWEEN ?1 AND ?2 AND ip IN ({}) AND ({})",
            id_list(addresses),
            counting_clause(&pairs, TimeColumn::Hour)
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query([first, last])?;
        let mut sums: HashMap<(i64, i64), u64> = HashMap::default();
        while let Some(row) = rows.next()? {
            *sums.entry((row.get(0)?, row.get(1)?)).or_default() += row.get::<_, i64>(2)? as u64;
        }
        Ok(sums
            .into_iter()
            .map(|((h, ip), n)| (h, StringId(ip), n))
            .collect())
    }

    /// The given addresses' failed attempts per instance and hour in `first..=last`, from
    /// the counting logs.
    pub fn address_hours(
        &self,
        scope: &Scope<'_>,
        addresses: &[StringId],
        first: i64,
        last: i64,
    ) -> Result<Vec<AddressHour>> {
        let pairs = self.counting_sources_in(scope)?;
        if pairs.is_empty() || addresses.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT ip, instance, hour, SUM(failures), MIN(first_us), MAX(last_us), SUM(spoofable)
             FROM auth_hourly
             WHERE hour BETWEEN ?1 AND ?2 AND ip IN ({}) AND ({}) GROUP BY ip, instance, hour",
            id_list(addresses),
            counting_clause(&pairs, TimeColumn::Hour)
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([first, last], |r| {
            Ok(AddressHour {
                ip: StringId(r.get(0)?),
                instance: StringId(r.get(1)?),
                hour: r.get(2)?,
                failures: r.get::<_, i64>(3)? as u64,
                first_us: r.get(4)?,
                last_us: r.get(5)?,
                spoofable: r.get::<_, i64>(6)? as u64,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The key prefixes the given addresses tried in `first..=last` (from every log that
    /// names them, not only the counting one), with how often, most tried first.
    pub fn key_prefixes(
        &self,
        scope: &Scope<'_>,
        addresses: &[StringId],
        first: i64,
        last: i64,
    ) -> Result<Vec<(StringId, StringId, u64)>> {
        if addresses.is_empty() {
            return Ok(Vec::new());
        }
        let instance_filter = match self.instance_ids_in(scope) {
            Some(list) if list.is_empty() => "0".to_owned(),
            Some(list) => format!(
                "instance IN ({})",
                list.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            None => "1".to_owned(),
        };
        let sql = format!(
            "SELECT ip, key_prefix, SUM(failures) AS n FROM auth_keys
             WHERE ip IN ({}) AND hour BETWEEN ?1 AND ?2 AND {instance_filter}
             GROUP BY ip, key_prefix ORDER BY n DESC",
            id_list(addresses)
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([first, last], |r| {
            Ok((
                StringId(r.get(0)?),
                StringId(r.get(1)?),
                r.get::<_, i64>(2)? as u64,
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The counting periods of the instances a scope allows.
    fn counting_sources_in(&self, scope: &Scope<'_>) -> Result<Vec<Counting>> {
        let ids = self.instance_ids_in(scope);
        let mut periods = self.counting_sources()?;
        if let Some(ids) = ids {
            periods.retain(|c| ids.contains(&c.instance));
        }
        Ok(periods)
    }

    /// The instance ids a scope allows; `None` for all.
    fn instance_ids_in(&self, scope: &Scope<'_>) -> Option<Vec<i64>> {
        let id = |name: &str| self.interned.get(name).copied();
        let mut ids: Option<Vec<i64>> = None;
        if let Some(instance) = scope.instance {
            ids = Some(id(instance).into_iter().collect());
        }
        if let Some(names) = scope.service_instances {
            let of_service: Vec<i64> = names.iter().filter_map(|n| id(n)).collect();
            ids = Some(match ids {
                Some(prev) => prev
                    .into_iter()
                    .filter(|i| of_service.contains(i))
                    .collect(),
                None => of_service,
            });
        }
        ids
    }
}

/// Ids as an SQL list (integers only, never text from hosts).
fn id_list(ids: &[StringId]) -> String {
    ids.iter()
        .map(|id| id.0.to_string())
        .collect::<Vec<_>>()
        .join(",")
}
