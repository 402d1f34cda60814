//! Offenders: the client addresses with the most failed sign-ins, with what they tried, where,
//! when, and whether it is getting worse.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use gatehouse_store::events::{EventStore, Scope, StringId};

use super::alerts::{allowlisted, AlertFilter};
use super::heatmap::{window_hours, Window};
use super::Analytics;
use crate::Result;

/// Buckets of an offender's trend over the window.
pub const TREND_BUCKETS: usize = 8;
/// Key prefixes listed per offender (the count covers all of them).
const PREFIXES_LISTED: usize = 10;

/// Which offenders to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct OffenderQuery {
    pub window: Window,
    pub instance: Option<String>,
    pub service: Option<String>,
    /// At most this many, most failures first (default 100).
    pub limit: Option<u32>,
    /// Skip this many first: the next page.
    pub offset: Option<u32>,
    /// Only addresses containing this (any case; part of an IPv4 or IPv6 address).
    pub address: Option<String>,
}

/// One page of offenders, and how many addresses failed in the window in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct OffenderPage {
    pub offenders: Vec<Offender>,
    /// The rank of the first, from 0.
    pub offset: u32,
    #[ts(type = "number")]
    pub total: u64,
}

/// One client address and what it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct Offender {
    pub ip: String,
    #[ts(type = "number")]
    pub failures: u64,
    /// Distinct key prefixes tried (from services that log them, such as Jelmore).
    pub distinct_keys: u32,
    /// Up to ten of them, most tried first.
    pub key_prefixes: Vec<String>,
    /// Instances it failed against.
    pub instances: Vec<String>,
    #[ts(type = "number")]
    pub first_us: i64,
    #[ts(type = "number")]
    pub last_us: i64,
    /// Failures in equal parts of the window, oldest first.
    #[ts(type = "Array<number>")]
    pub trend: Vec<u64>,
    /// `rising`, `falling`, `steady`, `new` or `quiet`, from the last quarter of the window
    /// against the one before.
    pub direction: String,
    pub allowlisted: bool,
    /// Blocked on a host firewall by Gatehouse.
    pub blocked: bool,
    /// Unresolved alerts about it.
    pub open_alerts: u32,
    /// Every failure counted for it came with an address the service took from a header a
    /// client chose (X-Forwarded-For): someone else may have put it there.
    pub spoofable: bool,
}

fn direction(trend: &[u64]) -> &'static str {
    let n = trend.len();
    let recent: u64 = trend[n - n / 4..].iter().sum();
    let before: u64 = trend[n - n / 2..n - n / 4].iter().sum();
    match (before, recent) {
        (_, 0) => "quiet",
        (0, _) => "new",
        (b, r) if r * 2 > b * 3 => "rising",
        (b, r) if r * 3 < b * 2 => "falling",
        _ => "steady",
    }
}

/// The top offenders in `first..=last`, assembled from the rollups.
fn offender_rows(
    store: &EventStore,
    scope: &Scope<'_>,
    (first, last): (i64, i64),
    matching: Option<&str>,
    offset: usize,
    limit: usize,
) -> Result<(Vec<Offender>, u64)> {
    let (top, total) = store.top_addresses_page(scope, first, last, matching, offset, limit)?;
    if top.is_empty() {
        return Ok((Vec::new(), total));
    }
    let ids: Vec<StringId> = top.iter().map(|(ip, _)| *ip).collect();
    let mut by_ip: HashMap<StringId, Offender> = HashMap::new();
    for (ip, failures) in &top {
        by_ip.insert(
            *ip,
            Offender {
                ip: store.string(*ip).unwrap_or("?").to_owned(),
                failures: *failures,
                distinct_keys: 0,
                key_prefixes: Vec::new(),
                instances: Vec::new(),
                first_us: i64::MAX,
                last_us: i64::MIN,
                trend: vec![0; TREND_BUCKETS],
                direction: String::new(),
                allowlisted: false,
                blocked: false,
                open_alerts: 0,
                spoofable: false,
            },
        );
    }
    let mut spoofable: HashMap<StringId, (u64, u64)> = HashMap::new();
    let span = (last - first + 1).max(1);
    for row in store.address_hours(scope, &ids, first, last)? {
        let Some(o) = by_ip.get_mut(&row.ip) else {
            continue;
        };
        let name = store.string(row.instance).unwrap_or("?");
        if !o.instances.iter().any(|i| i == name) {
            o.instances.push(name.to_owned());
        }
        o.first_us = o.first_us.min(row.first_us);
        o.last_us = o.last_us.max(row.last_us);
        let bucket = ((row.hour - first) * TREND_BUCKETS as i64 / span) as usize;
        o.trend[bucket.min(TREND_BUCKETS - 1)] += row.failures;
        let counts = spoofable.entry(row.ip).or_default();
        counts.0 += row.failures;
        counts.1 += row.spoofable;
    }
    for (ip, (failures, forged)) in spoofable {
        if let Some(o) = by_ip.get_mut(&ip) {
            o.spoofable = failures > 0 && forged == failures;
        }
    }
    // Key prefixes come from every log that names them, not only the counting one.
    for (ip, key, _) in store.key_prefixes(scope, &ids, first, last)? {
        if let Some(o) = by_ip.get_mut(&ip) {
            o.distinct_keys += 1;
            if o.key_prefixes.len() < PREFIXES_LISTED {
                o.key_prefixes
                    .push(store.string(key).unwrap_or("?").to_owned());
            }
        }
    }
    let mut out: Vec<Offender> = top
        .iter()
        .filter_map(|(ip, _)| by_ip.remove(ip))
        .map(|mut o| {
            o.instances.sort();
            o.direction = direction(&o.trend).to_owned();
            o
        })
        .collect();
    out.sort_by(|a, b| b.failures.cmp(&a.failures).then(a.ip.cmp(&b.ip)));
    Ok((out, total))
}

/// How far back a block looks for the failures that name its address.
const SPOOFABLE_LOOKBACK_HOURS: i64 = 30 * 24;

impl Analytics {
    /// Whether every failure an instance counted for `ip` in the last 30 days came with an
    /// address a client chose (X-Forwarded-For reported by the service): a block of it may
    /// cut off someone whose address an attacker wrote there. False when nothing names it.
    pub fn spoofable(&self, instance: &str, ip: &str) -> Result<bool> {
        let mut events = self.ctx.events();
        events.refresh()?;
        let Some(id) = events.string_id(ip) else {
            return Ok(false);
        };
        let hour = self.ctx.micros().div_euclid(3_600_000_000);
        let scope = Scope {
            instance: Some(instance),
            service_instances: None,
        };
        let rows = events.address_hours(&scope, &[id], hour - SPOOFABLE_LOOKBACK_HOURS, hour)?;
        let failures: u64 = rows.iter().map(|r| r.failures).sum();
        let forged: u64 = rows.iter().map(|r| r.spoofable).sum();
        Ok(failures > 0 && forged == failures)
    }

    /// The addresses with the most failed sign-ins in the window.
    pub fn offenders(&self, query: &OffenderQuery) -> Result<Vec<Offender>> {
        Ok(self.offender_page(query)?.offenders)
    }

    /// A page of the addresses with the most failed sign-ins in the window, and how many
    /// there are in all ("100 of 157").
    pub fn offender_page(&self, query: &OffenderQuery) -> Result<OffenderPage> {
        let service_instances: Option<Vec<String>> = match &query.service {
            Some(service) => Some(
                self.ctx
                    .db()
                    .instances()
                    .all()?
                    .into_iter()
                    .filter(|r| &r.profile == service)
                    .map(|r| r.name)
                    .collect(),
            ),
            None => None,
        };
        let scope = Scope {
            instance: query.instance.as_deref(),
            service_instances: service_instances.as_deref(),
        };
        let tz = crate::preferences::time_zone(&self.ctx)?;
        let now_us = self.ctx.micros();
        let (first, last) = window_hours(query.window, now_us, &tz);
        let limit = query.limit.unwrap_or(100).clamp(1, 10_000) as usize;
        let offset = query.offset.unwrap_or(0);
        let matching = query
            .address
            .as_deref()
            .map(|a| a.trim().to_ascii_lowercase())
            .filter(|a| !a.is_empty());
        let (mut rows, total) = {
            let mut events = self.ctx.events();
            events.refresh()?;
            offender_rows(
                &events,
                &scope,
                (first, last),
                matching.as_deref(),
                offset as usize,
                limit,
            )?
        };
        let allowlist = self.detection()?.allowlist;
        let open = self.alerts(&AlertFilter::default())?;
        // The blocks this console placed that are still in force.
        let blocked: std::collections::HashSet<String> = self
            .ctx
            .db()
            .blocks()
            .active(self.ctx.unix())?
            .into_iter()
            .collect();
        for o in &mut rows {
            o.allowlisted = allowlisted(&allowlist, &o.ip);
            o.blocked = blocked.contains(&o.ip);
            o.open_alerts = open
                .iter()
                .filter(|a| a.subject.as_deref() == Some(o.ip.as_str()))
                .count() as u32;
        }
        Ok(OffenderPage {
            offenders: rows,
            offset,
            total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_compares_the_last_quarter_with_the_one_before() {
        assert_eq!(direction(&[0, 0, 0, 0, 1, 1, 5, 5]), "rising", "10 after 2");
        assert_eq!(
            direction(&[0, 0, 0, 0, 5, 5, 1, 1]),
            "falling",
            "2 after 10"
        );
        assert_eq!(direction(&[0, 0, 0, 0, 3, 3, 3, 3]), "steady", "6 after 6");
        assert_eq!(
            direction(&[9, 9, 0, 0, 0, 0, 2, 0]),
            "new",
            "nothing in the quarter before"
        );
        assert_eq!(
            direction(&[9, 9, 9, 9, 9, 9, 0, 0]),
            "quiet",
            "nothing lately"
        );
    }
}
