//! Alerts: the detection rules run over every synced batch, firings become alerts the operator
//! acknowledges and resolves, and new alerts reach the desktop through a rate-limited hook.
//!
//! One attack is one alert: firings of different rules about the same address on the same
//! instance in overlapping windows (or, for a distributed attack, about the whole instance)
//! are facets of one open alert. Firings about events that arrived late are one history
//! summary per sync, never notified; failures a recent rotation explains are its
//! "clients still use the old key" notice (see [`super::stale`]).

use std::collections::HashMap;
use std::sync::Mutex;

use gatehouse_events::{Kind, Outcome};
use gatehouse_protocol::WireEvent;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use gatehouse_store::alerts::{AlertFacet, AlertUpdate, Alerts, NewAlert};
use gatehouse_store::events::{Pulled, HOUR_US};
use gatehouse_store::rotations::Committed;

use super::detect::{self, Attempt, Detector, Firing, Rule};
use super::stale;
use super::Analytics;
use crate::context::Ctx;
use crate::lock;
use crate::{Error, Result};

pub use gatehouse_store::alerts::{Alert, AlertFilter, AlertState, Snooze};

/// Whom an alert about this firing is about: the address for per-address rules; for a jump
/// above the baseline, the address behind at least half of it; else the whole instance.
fn subject_of<'f>(rule: &Rule, f: &'f Firing) -> Option<&'f str> {
    match rule.detection {
        detect::Detection::BaselineJump { .. } => {
            let total: u64 = f.addresses.iter().map(|(_, n)| n).sum();
            f.addresses
                .first()
                .filter(|(_, n)| total > 0 && n * 2 >= total)
                .map(|(ip, _)| ip.as_str())
        }
        _ => f.subject.as_deref(),
    }
}

fn facet_of(rule: &Rule, f: &Firing, detail: String) -> AlertFacet {
    AlertFacet {
        rule_id: rule.id.clone(),
        rule_name: rule.name.clone(),
        kind: rule.detection.word().to_owned(),
        severity: rule.severity,
        first_us: f.first_us,
        last_us: f.last_us,
        count: f.count,
        distinct: f.distinct,
        detail,
    }
}

/// An attack alert's totals from its facets: the rules' names, the highest severity, the
/// span, the largest count (the rules count the same failures), and their sentences.
fn summarise(alerts: &Alerts<'_>, id: i64) -> Result<()> {
    let facets = alerts.facets(id)?;
    let Some(first) = facets.first() else {
        return Ok(());
    };
    let names: Vec<&str> = facets.iter().map(|x| x.rule_name.as_str()).collect();
    let spoofable = facets.iter().any(|x| x.detail.ends_with(SPOOFABLE_NOTE));
    let mut detail = facets
        .iter()
        .map(|x| x.detail.trim_end_matches(SPOOFABLE_NOTE))
        .collect::<Vec<_>>()
        .join(" ");
    if spoofable {
        detail.push_str(SPOOFABLE_NOTE);
    }
    alerts.update(
        id,
        &AlertUpdate {
            rule_name: &names.join(" + "),
            severity: facets
                .iter()
                .map(|x| x.severity)
                .max()
                .unwrap_or(first.severity),
            first_us: facets
                .iter()
                .map(|x| x.first_us)
                .min()
                .unwrap_or(first.first_us),
            last_us: facets
                .iter()
                .map(|x| x.last_us)
                .max()
                .unwrap_or(first.last_us),
            count: facets.iter().map(|x| x.count).max().unwrap_or(first.count),
            detail: &detail,
        },
    )?;
    Ok(())
}

/// A moment, in UTC to the minute.
fn span_point(us: i64) -> String {
    jiff::Timestamp::from_microsecond(us)
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|_| format!("{us} µs"))
}

/// From when to when.
fn span_text(first_us: i64, last_us: i64) -> String {
    format!("{} to {}", span_point(first_us), span_point(last_us))
}

/// A length of time, in the largest unit that fits.
fn duration_text(us: i64) -> String {
    let mins = us.max(0) / 60_000_000;
    match mins {
        0..=119 => format!("{mins} min"),
        120..=2879 => format!("{} hours", mins / 60),
        _ => format!("{} days", mins / 1440),
    }
}

/// Up to `max` items, then how many more.
fn list_text(items: &[String], max: usize) -> String {
    let mut text = items
        .iter()
        .take(max)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > max {
        text.push_str(&format!(" and {} more", items.len() - max));
    }
    if text.is_empty() {
        text.push_str("no address");
    }
    text
}

/// Many alerts marked at once: each as it is now, and the ids no alert has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct AlertsMarked {
    pub alerts: Vec<Alert>,
    #[ts(type = "number[]")]
    pub missing: Vec<i64>,
}

/// Snooze a detection rule on one instance: for how many hours (1 to 720) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct SnoozeRequest {
    pub rule_id: String,
    pub instance: String,
    pub hours: u32,
    pub reason: String,
}

/// The longest snooze: 30 days. Longer is a rule to change, not to snooze.
pub const MAX_SNOOZE_HOURS: u32 = 720;

/// The most alerts marked in one request (the list shows at most 1,000).
pub const MAX_MARKED: usize = 1000;

/// The detection settings: the rules and the addresses never alerted on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct DetectionSettings {
    pub rules: Vec<Rule>,
    /// Addresses and networks (CIDR) that never raise an alert: monitoring, the operator's
    /// own network.
    pub allowlist: Vec<String>,
}

/// The rule id of compliance drift alerts.
const DRIFT_RULE: &str = "compliance_drift";

/// Said of an alert whose address is known only from a header a client chose.
const SPOOFABLE_NOTE: &str = " The address is the service's report of X-Forwarded-For, which \
    any client can set: it may be forged, and blocking it asks for a second confirmation.";

/// Firings whose last event is older than this by the console's clock are history: an
/// agent catching up, a replayed log. They are summarised, never notified.
pub const LATE_US: i64 = 15 * 60 * 1_000_000;

/// A catch-up's syncs within this long of its summary add to it.
const HISTORY_GATHER_US: i64 = 3_600_000_000;

/// The kind (and rule id) of a history summary.
pub const HISTORY_KIND: &str = "history";

/// The kind (and rule id) of a "clients still use the old key" notice.
pub const STALE_KEY_KIND: &str = "stale_key";

/// The kinds of alert an attack's firings join.
const ATTACK_KINDS: &[&str] = &[
    "brute_force",
    "key_spraying",
    "distributed",
    "baseline_jump",
];

/// At most this many desktop notifications per minute; the rest are summed into the next.
pub const NOTIFICATIONS_PER_MINUTE: usize = 3;

/// Deduplication and rate limiting of desktop notifications: one per new alert, never more
/// than [`NOTIFICATIONS_PER_MINUTE`], and a count of what was held back.
#[derive(Debug, Default)]
pub struct NotificationGate {
    sent: std::collections::VecDeque<i64>,
    held_back: u32,
    notified: std::collections::HashSet<i64>,
}

impl NotificationGate {
    /// Whether to show `alert_id` now, and how many were held back before it.
    pub fn admit(&mut self, alert_id: i64, now_us: i64) -> Option<u32> {
        if !self.notified.insert(alert_id) {
            return None;
        }
        while self.sent.front().is_some_and(|t| now_us - t >= 60_000_000) {
            self.sent.pop_front();
        }
        if self.sent.len() >= NOTIFICATIONS_PER_MINUTE {
            self.held_back += 1;
            return None;
        }
        self.sent.push_back(now_us);
        Some(std::mem::take(&mut self.held_back))
    }
}

/// What the desktop is told about a new alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertNotice {
    pub alert: Alert,
    /// Alerts held back by the rate limit since the last notice.
    pub held_back: u32,
}

type Hook = std::sync::Arc<dyn Fn(AlertNotice) + Send + Sync>;

/// The detector and the desktop hook, owned by the console.
#[derive(Default)]
pub(crate) struct Alerting {
    detector: Mutex<Detector>,
    gate: Mutex<NotificationGate>,
    hook: Mutex<Option<Hook>>,
}

impl std::fmt::Debug for Alerting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerting").finish_non_exhaustive()
    }
}

/// Whether `ip` is in one of `list`'s addresses or CIDR networks.
pub use gatehouse_detect::allowlist::allowlisted;

/// The detection rules and allowlist as stored (the defaults until the operator changes
/// them): what the console's alerts and the agents' policy are made of.
pub(crate) fn stored_detection(ctx: &Ctx) -> Result<DetectionSettings> {
    let store = ctx.db();
    let settings = store.settings();
    let rules = match settings.get("detection_rules")? {
        Some(json) => serde_json::from_str(&json).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "stored detection rules are unreadable; using the defaults");
            detect::default_rules()
        }),
        None => detect::default_rules(),
    };
    let allowlist = match settings.get("allowlist")? {
        Some(json) => serde_json::from_str(&json).unwrap_or_default(),
        None => Vec::new(),
    };
    Ok(DetectionSettings { rules, allowlist })
}

fn validate_allowlist(list: &[String]) -> Result<()> {
    for entry in list {
        gatehouse_detect::allowlist::check(entry).map_err(|reason| Error::InvalidInput {
            field: "allowlist",
            reason,
        })?;
    }
    Ok(())
}

fn describe(rule: &Rule, f: &Firing, baseline_per_hour: f64) -> String {
    let minutes = |us: i64| {
        let secs = us / 1_000_000;
        if secs < 120 {
            format!("{secs} s")
        } else {
            format!("{} min", secs / 60)
        }
    };
    let span = minutes(f.last_us - f.first_us);
    let on = &f.instance;
    match (rule.detection, &f.subject) {
        (detect::Detection::BruteForce { .. }, Some(ip)) => {
            format!(
                "{} failed sign-ins from {ip} against {on} within {span}.",
                f.count
            )
        }
        (detect::Detection::KeySpraying { .. }, Some(ip)) => format!(
            "{ip} tried {} different keys against {on} within {span} ({} failures).",
            f.distinct, f.count
        ),
        (detect::Detection::Distributed { .. }, _) => format!(
            "{} different addresses failed to sign in to {on} within {span} ({} failures).",
            f.distinct, f.count
        ),
        (detect::Detection::BaselineJump { window_secs, .. }, _) => {
            let expected = baseline_per_hour * f64::from(window_secs) / 3600.0;
            let rate = if expected > 0.0 {
                format!(
                    "{:.0} times its 7-day average of {baseline_per_hour:.1} an hour",
                    f.count as f64 / expected
                )
            } else {
                "where it had none in the previous 7 days".to_owned()
            };
            let from = match f.addresses.first() {
                Some((ip, n)) if f.addresses.len() == 1 => format!(", all from {ip} ({n})"),
                Some((ip, n)) => format!(
                    ", most from {ip} ({n}; {} addresses in all)",
                    f.addresses.len()
                ),
                None => String::new(),
            };
            format!(
                "{} failed sign-ins on {on} within {span}, {rate}{from}.",
                f.count
            )
        }
        (_, None) => format!("{} failed sign-ins on {on} within {span}.", f.count),
    }
}

impl Analytics {
    /// The detection rules and allowlist (the defaults until the operator changes them).
    pub fn detection(&self) -> Result<DetectionSettings> {
        stored_detection(&self.ctx)
    }

    /// Replace the rules and allowlist, after checking every value.
    pub fn set_detection(&self, detection: &DetectionSettings) -> Result<DetectionSettings> {
        for rule in &detection.rules {
            rule.validate().map_err(|reason| Error::InvalidInput {
                field: "rules",
                reason,
            })?;
        }
        let mut ids: Vec<&str> = detection.rules.iter().map(|r| r.id.as_str()).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err(Error::InvalidInput {
                field: "rules",
                reason: "two rules share an id".into(),
            });
        }
        validate_allowlist(&detection.allowlist)?;
        self.ctx.audit(
            "detection_settings",
            "fleet",
            &format!(
                "{} rules, allowlist: {}",
                detection.rules.len(),
                detection.allowlist.join(", ")
            ),
        )?;
        {
            let store = self.ctx.db();
            store
                .settings()
                .set("detection_rules", &to_json(&detection.rules))?;
            store
                .settings()
                .set("allowlist", &to_json(&detection.allowlist))?;
        }
        crate::protection::bump(&self.ctx)?;
        tracing::info!(rules = detection.rules.len(), "detection settings changed");
        self.detection()
    }

    /// Put back the rules from the guides.
    pub fn reset_detection(&self) -> Result<DetectionSettings> {
        self.ctx.audit(
            "detection_settings",
            "fleet",
            "rules reset to the guides' defaults",
        )?;
        self.ctx.db().settings().delete("detection_rules")?;
        crate::protection::bump(&self.ctx)?;
        self.detection()
    }

    /// Called with each new alert that passes the rate limit (the app shows a desktop
    /// notification).
    pub fn on_alert(&self, hook: impl Fn(AlertNotice) + Send + Sync + 'static) {
        *lock(&self.alerting.hook) = Some(std::sync::Arc::new(hook));
    }

    /// Run the rules over a batch just stored for `instance`.
    /// Only events above `stored_before` are new (see `EventStore::ingest`).
    ///
    /// Failures a recent rotation explains become its notice; the rest go through the rules.
    /// Firings about the same address (or, for the whole instance, the same attack) join one
    /// open alert. Firings whose events are all older than [`LATE_US`] are history: they are
    /// gathered into one summary per sync and never notified.
    pub(crate) fn detect(
        &self,
        instance: &str,
        profile: &str,
        batch: &[Pulled],
        stored_before: u64,
    ) -> Result<()> {
        let mut failures: Vec<&WireEvent> = batch
            .iter()
            .flat_map(|p| &p.events)
            .filter(|e| e.seq > stored_before)
            .filter(|e| e.kind == Kind::Auth && e.outcome == Outcome::Failure)
            // The agent's own probes (compliance checks, the old key tried after a rotation)
            // are Gatehouse's, not an attack.
            .filter(|e| e.flags & gatehouse_protocol::flags::PROBE == 0)
            .collect();
        // Logs are read side by side, so a batch interleaves them: the windows want time order.
        failures.sort_by_key(|e| e.time_us);
        let Some(earliest) = failures.first().map(|e| e.time_us) else {
            return Ok(());
        };
        let now_us = self.ctx.micros();
        let rotations = self.ctx.db().rotations().committed_since(
            instance,
            (earliest - stale::AFTER_ROTATION_US).div_euclid(1_000_000),
        )?;
        let (explained, uses) = stale::explain(&failures, &rotations);
        for use_ in &uses {
            self.record_stale_key(instance, &rotations[use_.rotation], use_)?;
        }
        let settings = self.detection()?;
        let rules = detect::rules_for(&settings.rules, profile);
        // The allowlist, with the temporary entries still running.
        let mut allow = settings.allowlist.clone();
        allow.extend(
            crate::protection::temporary_allowlist(&self.ctx, now_us.div_euclid(1_000_000))?
                .into_iter()
                .map(|t| t.entry),
        );
        if rules.is_empty() {
            return Ok(());
        }
        let (counting, baseline) = {
            let mut events = self.ctx.events();
            events.refresh()?;
            let counting = events.counting_source(instance)?;
            let last_hour = failures
                .iter()
                .map(|e| e.time_us)
                .max()
                .unwrap_or(0)
                .div_euclid(HOUR_US);
            let baseline = events.mean_hourly_failures(instance, last_hour - 168, last_hour - 1)?;
            (counting, baseline)
        };
        let attempts: Vec<Attempt<'_>> = failures
            .iter()
            .zip(&explained)
            .filter(|(_, explained)| !**explained)
            .map(|(e, _)| *e)
            .filter(|e| e.ip.as_deref().is_none_or(|ip| !allowlisted(&allow, ip)))
            .map(|e| Attempt {
                time_us: e.time_us,
                ip: e.ip.as_deref(),
                key_prefix: e.key_prefix.as_deref(),
                counted: counting.as_deref() == Some(e.source.as_str()),
            })
            .collect();
        // Addresses every failure of this batch took from a header a client chose.
        let mut forged: HashMap<&str, bool> = HashMap::new();
        for e in &failures {
            if let Some(ip) = e.ip.as_deref() {
                let all = forged.entry(ip).or_insert(true);
                *all &= e.flags & gatehouse_protocol::flags::IP_SPOOFABLE != 0;
            }
        }
        let firings = lock(&self.alerting.detector).observe(instance, &rules, &attempts, baseline);
        let mut history: Vec<(&Rule, Firing)> = Vec::new();
        for firing in firings {
            let Some(rule) = rules.iter().copied().find(|r| r.id == firing.rule_id) else {
                continue;
            };
            // Snoozed here by the operator: counted on the snooze, never raised.
            if self
                .ctx
                .db()
                .alerts()
                .hold(&rule.id, instance, now_us, firing.new)?
            {
                continue;
            }
            // Over before the console heard of it: history, not an alarm.
            if now_us - firing.last_us > LATE_US {
                history.push((rule, firing));
                continue;
            }
            let spoofable = firing
                .subject
                .as_deref()
                .is_some_and(|ip| forged.get(ip).copied().unwrap_or(false));
            let Some(alert) = self.record_firing(rule, &firing, spoofable, baseline)? else {
                continue;
            };
            self.ctx.record_alert(
                instance,
                Outcome::Failure,
                &format!("Alert {}: {} {}", alert.id, rule.name, alert.detail),
            );
            tracing::warn!(alert = alert.id, rule = %rule.id, instance, subject = ?alert.subject, "alert raised");
            let admitted = lock(&self.alerting.gate).admit(alert.id, now_us);
            if let Some(held_back) = admitted {
                // Called without the lock held; the hook must not block (the app hands
                // the notification to a thread of its own).
                let hook = lock(&self.alerting.hook).clone();
                if let Some(hook) = hook {
                    hook(AlertNotice { alert, held_back });
                }
            }
        }
        if !history.is_empty() {
            self.record_history(instance, &history, now_us)?;
        }
        Ok(())
    }

    /// Store a live firing (`spoofable`: its address is known only from a header a client
    /// chose): a new alert (returned), or a facet of the open alert about the same attack.
    /// A firing joins an unresolved attack alert on the same instance about the same address
    /// (none, for the whole instance) whose last event is within the rule's window.
    fn record_firing(
        &self,
        rule: &Rule,
        f: &Firing,
        spoofable: bool,
        baseline: f64,
    ) -> Result<Option<Alert>> {
        let subject = subject_of(rule, f);
        let addresses: Vec<&str> = match subject {
            Some(ip) => vec![ip],
            None => f.addresses.iter().map(|(ip, _)| ip.as_str()).collect(),
        };
        let sentence = |f: &Firing| {
            let mut detail = describe(rule, f, baseline);
            if spoofable {
                detail.push_str(SPOOFABLE_NOTE);
            }
            detail
        };
        let mut joined_as = None;
        let result = {
            let store = self.ctx.db();
            let alerts = store.alerts();
            let open = alerts.open_attack(
                ATTACK_KINDS,
                &f.instance,
                subject,
                f.first_us - rule.detection.window_us(),
            )?;
            match open {
                Some(id) => {
                    let before = alerts
                        .facets(id)?
                        .into_iter()
                        .find(|x| x.rule_id == rule.id);
                    let facet = match &before {
                        Some(old) => {
                            let added = if f.new { f.count } else { f.added };
                            let grown = Firing {
                                count: old.count + added,
                                first_us: old.first_us.min(f.first_us),
                                last_us: old.last_us.max(f.last_us),
                                distinct: old.distinct.max(f.distinct),
                                ..f.clone()
                            };
                            facet_of(rule, &grown, sentence(&grown))
                        }
                        None => facet_of(rule, f, sentence(f)),
                    };
                    alerts.put_facet(id, &facet)?;
                    alerts.add_addresses(id, &addresses)?;
                    summarise(&alerts, id)?;
                    if before.is_none() {
                        joined_as = Some((id, facet.detail));
                    }
                    None
                }
                // No open alert: a new attack, or one whose alert the operator resolved while
                // it went on; either way the operator hears about it.
                None => {
                    let detail = sentence(f);
                    let alert = alerts.insert(&NewAlert {
                        rule_id: &rule.id,
                        rule_name: &rule.name,
                        kind: rule.detection.word(),
                        severity: rule.severity,
                        instance: &f.instance,
                        subject,
                        first_us: f.first_us,
                        last_us: f.last_us,
                        count: f.count,
                        distinct: f.distinct,
                        detail: &detail,
                        created_us: self.ctx.micros(),
                        rotation_id: None,
                    })?;
                    alerts.put_facet(alert.id, &facet_of(rule, f, detail))?;
                    alerts.add_addresses(alert.id, &addresses)?;
                    Some(
                        alerts
                            .get(alert.id)?
                            .ok_or(Error::AlertNotFound(alert.id))?,
                    )
                }
            }
        };
        if let Some((id, detail)) = joined_as {
            self.ctx.record_alert(
                &f.instance,
                Outcome::Failure,
                &format!("Alert {id} is also {}: {detail}", rule.name),
            );
        }
        Ok(result)
    }

    /// Gather the firings of events that arrived late into the instance's history summary:
    /// one alert per sync (joining the summary of a catch-up still going on), never notified.
    fn record_history(
        &self,
        instance: &str,
        firings: &[(&Rule, Firing)],
        now_us: i64,
    ) -> Result<()> {
        let created = {
            let store = self.ctx.db();
            let alerts = store.alerts();
            let open = alerts.open_of_kind(HISTORY_KIND, instance, now_us - HISTORY_GATHER_US)?;
            let id = match open {
                Some(id) => id,
                None => {
                    alerts
                        .insert(&NewAlert {
                            rule_id: HISTORY_KIND,
                            rule_name: "Found in history",
                            kind: HISTORY_KIND,
                            severity: detect::Severity::Low,
                            instance,
                            subject: None,
                            first_us: firings[0].1.first_us,
                            last_us: firings[0].1.last_us,
                            count: 0,
                            distinct: 0,
                            detail: "Found in history.",
                            created_us: now_us,
                            rotation_id: None,
                        })?
                        .id
                }
            };
            let mut facets = alerts.facets(id)?;
            for (rule, f) in firings {
                let addresses: Vec<&str> = match &f.subject {
                    Some(ip) => vec![ip.as_str()],
                    None => f.addresses.iter().map(|(ip, _)| ip.as_str()).collect(),
                };
                alerts.add_addresses(id, &addresses)?;
                let added = if f.new { f.count } else { f.added };
                match facets.iter_mut().find(|x| x.rule_id == rule.id) {
                    Some(facet) => {
                        facet.count += added;
                        facet.first_us = facet.first_us.min(f.first_us);
                        facet.last_us = facet.last_us.max(f.last_us);
                        facet.distinct = facet.distinct.max(f.distinct);
                    }
                    None => facets.push(AlertFacet {
                        rule_id: rule.id.clone(),
                        rule_name: rule.name.clone(),
                        kind: rule.detection.word().to_owned(),
                        severity: rule.severity,
                        first_us: f.first_us,
                        last_us: f.last_us,
                        count: added,
                        distinct: f.distinct,
                        detail: String::new(),
                    }),
                }
            }
            let addresses = alerts.addresses(id)?;
            for facet in &mut facets {
                facet.detail = format!(
                    "{}: {} failed sign-ins, {}.",
                    facet.rule_name,
                    facet.count,
                    span_text(facet.first_us, facet.last_us)
                );
                alerts.put_facet(id, facet)?;
            }
            let first = facets.iter().map(|x| x.first_us).min().unwrap_or(now_us);
            let last = facets.iter().map(|x| x.last_us).max().unwrap_or(now_us);
            let detail = format!(
                "Found in history: {} Addresses: {}. It was over before Gatehouse received it \
                 ({} after its last event), so no notification was sent.",
                facets
                    .iter()
                    .map(|x| x.detail.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                list_text(&addresses, 10),
                duration_text(now_us - last),
            );
            alerts.update(
                id,
                &AlertUpdate {
                    rule_name: "Found in history",
                    severity: facets
                        .iter()
                        .map(|x| x.severity)
                        .max()
                        .unwrap_or(detect::Severity::Low),
                    first_us: first,
                    last_us: last,
                    count: facets.iter().map(|x| x.count).max().unwrap_or(0),
                    detail: &detail,
                },
            )?;
            open.is_none().then_some((id, detail))
        };
        if let Some((id, detail)) = created {
            self.ctx
                .record_alert(instance, Outcome::Info, &format!("Alert {id}: {detail}"));
            tracing::info!(alert = id, instance, "history summary raised");
        }
        Ok(())
    }

    /// Record failures a rotation explains on its notice: "clients still use the old key",
    /// one per rotation, with the addresses still using it. Never notified.
    fn record_stale_key(
        &self,
        instance: &str,
        rotation: &Committed,
        found: &stale::StaleUse,
    ) -> Result<()> {
        let now_us = self.ctx.micros();
        let (rule_id, rule_name) = if found.confirmed {
            ("old-key", "The replaced key")
        } else {
            ("old-key-unconfirmed", "Probably the replaced key")
        };
        let created = {
            let store = self.ctx.db();
            let alerts = store.alerts();
            let open = alerts.open_for_rotation(STALE_KEY_KIND, rotation.id)?;
            let id = match open {
                Some(id) => id,
                None => {
                    alerts
                        .insert(&NewAlert {
                            rule_id: STALE_KEY_KIND,
                            rule_name: "Clients still use the old key",
                            kind: STALE_KEY_KIND,
                            severity: detect::Severity::Low,
                            instance,
                            subject: Some(&rotation.name),
                            first_us: found.first_us,
                            last_us: found.last_us,
                            count: 0,
                            distinct: 0,
                            detail: "Clients still use the old key.",
                            created_us: now_us,
                            rotation_id: Some(rotation.id),
                        })?
                        .id
                }
            };
            let addresses: Vec<&str> = found.addresses.iter().map(String::as_str).collect();
            alerts.add_addresses(id, &addresses)?;
            let before = alerts
                .facets(id)?
                .into_iter()
                .find(|x| x.rule_id == rule_id);
            let (count, first, last) = match &before {
                Some(b) => (
                    b.count + found.count,
                    b.first_us.min(found.first_us),
                    b.last_us.max(found.last_us),
                ),
                None => (found.count, found.first_us, found.last_us),
            };
            let prefixes: Vec<String> = found.prefixes.iter().map(|p| format!("{p}…")).collect();
            let detail = if found.confirmed {
                format!(
                    "{count} failed sign-ins presented the key {} that rotation {} replaced \
                     (its first characters, {}, match).",
                    rotation.name,
                    rotation.id,
                    prefixes.join(", ")
                )
            } else {
                format!(
                    "{count} failed sign-ins since rotation {} of {}, each address retrying a \
                     single key ({}). The rotation history keeps only the replaced key's \
                     fingerprint ({}), not its first characters, so this is matched by time \
                     and by one key being retried, not by the key itself.",
                    rotation.id,
                    rotation.name,
                    prefixes.join(", "),
                    rotation.old_fingerprint
                )
            };
            alerts.put_facet(
                id,
                &AlertFacet {
                    rule_id: rule_id.to_owned(),
                    rule_name: rule_name.to_owned(),
                    kind: STALE_KEY_KIND.to_owned(),
                    severity: detect::Severity::Low,
                    first_us: first,
                    last_us: last,
                    count,
                    distinct: found.prefixes.len() as u64,
                    detail,
                },
            )?;
            let facets = alerts.facets(id)?;
            let everyone = alerts.addresses(id)?;
            let started = span_point(rotation.started_at.saturating_mul(1_000_000));
            let detail = format!(
                "Clients still use the key {} that was current until rotation {} on {started}: \
                 {} still present it. {} They need the new key; these failures are not \
                 counted as attacks.",
                rotation.name,
                rotation.id,
                list_text(&everyone, 10),
                facets
                    .iter()
                    .map(|x| x.detail.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            alerts.update(
                id,
                &AlertUpdate {
                    rule_name: "Clients still use the old key",
                    severity: detect::Severity::Low,
                    first_us: facets.iter().map(|x| x.first_us).min().unwrap_or(first),
                    last_us: facets.iter().map(|x| x.last_us).max().unwrap_or(last),
                    count: facets.iter().map(|x| x.count).sum(),
                    detail: &detail,
                },
            )?;
            open.is_none().then_some((id, detail))
        };
        if let Some((id, detail)) = created {
            self.ctx
                .record_alert(instance, Outcome::Info, &format!("Alert {id}: {detail}"));
        }
        Ok(())
    }

    /// Resolve the open compliance alert about `item` on `instance`, if there is one: the item
    /// passes again. Said on the timeline and in the audit log, like a hand resolution.
    pub(crate) fn resolve_compliance_alert(&self, instance: &str, item: &str) -> Result<()> {
        let Some(id) = self
            .ctx
            .db()
            .alerts()
            .unresolved(DRIFT_RULE, instance, item)?
        else {
            return Ok(());
        };
        self.ctx.audit(
            "alert_state",
            instance,
            &format!("alert {id} marked resolved: {item} passes again"),
        )?;
        self.ctx
            .db()
            .alerts()
            .set_state(id, AlertState::Resolved, self.ctx.micros())?;
        self.ctx.timeline_note(
            instance,
            Outcome::Info,
            &format!("Alert {id} resolved: the item passes again."),
        );
        Ok(())
    }

    /// Raise (or join the open one of) a compliance alert: an item that passed and now
    /// fails. Notified like a detection alert.
    pub(crate) fn raise_compliance_alert(
        &self,
        instance: &str,
        item: &str,
        detail: &str,
    ) -> Result<Alert> {
        let now_us = self.ctx.micros();
        let alert = {
            let store = self.ctx.db();
            let alerts = store.alerts();
            let id = match alerts.unresolved(DRIFT_RULE, instance, item)? {
                Some(id) => {
                    alerts.repeat(id, now_us, detail)?;
                    id
                }
                None => {
                    alerts
                        .insert(&NewAlert {
                            rule_id: DRIFT_RULE,
                            rule_name: "Compliance drift",
                            kind: "compliance",
                            severity: detect::Severity::Medium,
                            instance,
                            subject: Some(item),
                            first_us: now_us,
                            last_us: now_us,
                            count: 1,
                            distinct: 0,
                            detail,
                            created_us: now_us,
                            rotation_id: None,
                        })?
                        .id
                }
            };
            alerts.get(id)?.ok_or(Error::AlertNotFound(id))?
        };
        if let Some(held_back) = lock(&self.alerting.gate).admit(alert.id, now_us) {
            let hook = lock(&self.alerting.hook).clone();
            if let Some(hook) = hook {
                hook(AlertNotice {
                    alert: alert.clone(),
                    held_back,
                });
            }
        }
        Ok(alert)
    }

    /// Alerts, newest activity first.
    pub fn alerts(&self, filter: &AlertFilter) -> Result<Vec<Alert>> {
        Ok(self.ctx.db().alerts().list(filter)?)
    }

    pub fn alert(&self, id: i64) -> Result<Alert> {
        self.ctx
            .db()
            .alerts()
            .get(id)?
            .ok_or(Error::AlertNotFound(id))
    }

    /// Acknowledge, resolve or reopen many alerts at once (a selection, every alert from one
    /// address, every alert of one rule): one audit row and one transaction for all of them,
    /// one timeline entry per instance. Ids no alert has are returned, not an error, unless no
    /// id is known at all.
    pub fn set_alerts_state(&self, ids: &[i64], state: AlertState) -> Result<AlertsMarked> {
        if ids.is_empty() || ids.len() > MAX_MARKED {
            return Err(Error::InvalidInput {
                field: "ids",
                reason: format!("choose between 1 and {MAX_MARKED} alerts"),
            });
        }
        let mut unique: Vec<i64> = Vec::with_capacity(ids.len());
        for &id in ids {
            if !unique.contains(&id) {
                unique.push(id);
            }
        }
        let found: Vec<Alert> = {
            let store = self.ctx.db();
            let alerts = store.alerts();
            unique
                .iter()
                .map(|&id| alerts.get(id))
                .collect::<std::result::Result<Vec<_>, _>>()?
                .into_iter()
                .flatten()
                .collect()
        };
        let missing: Vec<i64> = unique
            .iter()
            .copied()
            .filter(|id| !found.iter().any(|a| a.id == *id))
            .collect();
        if found.is_empty() {
            return Err(Error::AlertNotFound(unique[0]));
        }
        let mut instances: Vec<&str> = found.iter().map(|a| a.instance.as_str()).collect();
        instances.sort_unstable();
        instances.dedup();
        let numbers = |alerts: &[&Alert]| {
            alerts
                .iter()
                .map(|a| a.id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let all: Vec<&Alert> = found.iter().collect();
        self.ctx.audit(
            "alert_state",
            &instances.join(", "),
            &format!("alerts {} marked {}", numbers(&all), state.as_str()),
        )?;
        let now_us = self.ctx.micros();
        let ids: Vec<i64> = found.iter().map(|a| a.id).collect();
        self.ctx.db().alerts().set_states(&ids, state, now_us)?;
        for instance in &instances {
            let here: Vec<&Alert> = found.iter().filter(|a| a.instance == *instance).collect();
            let message = if here.len() == 1 {
                format!("Alert {} marked {}.", here[0].id, state.as_str())
            } else {
                format!("Alerts {} marked {}.", numbers(&here), state.as_str())
            };
            self.ctx.timeline_note(instance, Outcome::Info, &message);
        }
        let alerts = {
            let store = self.ctx.db();
            let table = store.alerts();
            ids.iter()
                .map(|&id| table.get(id))
                .collect::<std::result::Result<Vec<_>, _>>()?
                .into_iter()
                .flatten()
                .collect()
        };
        Ok(AlertsMarked { alerts, missing })
    }

    /// Snooze a detection rule on one instance: until it ends, the rule's firings there raise
    /// no alert and no notification; they are counted on the snooze. Snoozing again replaces
    /// the end and the reason.
    pub fn snooze_rule(&self, request: &SnoozeRequest) -> Result<Snooze> {
        let reason = request.reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(Error::InvalidInput {
                field: "reason",
                reason: "say why the rule is snoozed (at most 500 characters); the audit log \
                         keeps it"
                    .into(),
            });
        }
        if !(1..=MAX_SNOOZE_HOURS).contains(&request.hours) {
            return Err(Error::InvalidInput {
                field: "hours",
                reason: format!(
                    "snooze for 1 to {MAX_SNOOZE_HOURS} hours (30 days); for longer, change \
                     or turn off the rule"
                ),
            });
        }
        let detection = self.detection()?;
        let Some(rule) = detection.rules.iter().find(|r| r.id == request.rule_id) else {
            return Err(Error::NotFound {
                what: "detection rule",
                name: request.rule_id.clone(),
            });
        };
        if self.ctx.db().instances().get(&request.instance)?.is_none() {
            return Err(Error::InstanceNotFound(request.instance.clone()));
        }
        let now_us = self.ctx.micros();
        let snooze = Snooze {
            rule_id: rule.id.clone(),
            instance: request.instance.clone(),
            until_us: now_us + i64::from(request.hours) * 3_600_000_000,
            reason: reason.to_owned(),
            created_us: now_us,
            held: 0,
        };
        let hours = if request.hours == 1 {
            "1 hour".to_owned()
        } else {
            format!("{} hours", request.hours)
        };
        self.ctx.audit(
            "rule_snoozed",
            &request.instance,
            &format!("{} snoozed for {hours}: {reason}", rule.id),
        )?;
        self.ctx.db().alerts().snooze(&snooze)?;
        self.ctx.timeline_note(
            &request.instance,
            Outcome::Info,
            &format!(
                "Rule \"{}\" snoozed for {hours}: {reason}. Its firings here raise no alert \
                 until then.",
                rule.name
            ),
        );
        Ok(snooze)
    }

    /// End a rule's snooze on an instance before its time.
    pub fn unsnooze_rule(&self, rule_id: &str, instance: &str) -> Result<()> {
        let running = self
            .snoozes()?
            .into_iter()
            .any(|s| s.rule_id == rule_id && s.instance == instance);
        if !running {
            return Err(Error::NotFound {
                what: "snooze",
                name: format!("{rule_id} on {instance}"),
            });
        }
        self.ctx.audit(
            "rule_unsnoozed",
            instance,
            &format!("{rule_id} snooze ended"),
        )?;
        self.ctx.db().alerts().unsnooze(rule_id, instance)?;
        self.ctx.timeline_note(
            instance,
            Outcome::Info,
            &format!("Rule {rule_id} alerts again (snooze ended by hand)."),
        );
        Ok(())
    }

    /// The snoozes still running, the soonest to end first.
    pub fn snoozes(&self) -> Result<Vec<Snooze>> {
        Ok(self.ctx.db().alerts().snoozes(self.ctx.micros())?)
    }

    /// Acknowledge, resolve or reopen an alert.
    pub fn set_alert_state(&self, id: i64, state: AlertState) -> Result<Alert> {
        let now_us = self.ctx.micros();
        let before = self.alert(id)?;
        self.ctx.audit(
            "alert_state",
            &before.instance,
            &format!("alert {id} marked {}", state.as_str()),
        )?;
        if !self.ctx.db().alerts().set_state(id, state, now_us)? {
            return Err(Error::AlertNotFound(id));
        }
        let alert = self.alert(id)?;
        self.ctx.timeline_note(
            &alert.instance,
            Outcome::Info,
            &format!("Alert {id} marked {}.", state.as_str()),
        );
        Ok(alert)
    }
}

fn to_json<T: Serialize>(value: &T) -> String {
    // Plain data (strings, numbers, unit enums) always serializes.
    serde_json::to_string(value).unwrap_or_else(|_| "[]".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_notifies_each_alert_once_and_at_most_three_a_minute() {
        let mut gate = NotificationGate::default();
        let s = 1_000_000;
        assert_eq!(gate.admit(1, 0), Some(0), "the first alert is shown");
        assert_eq!(
            gate.admit(1, s),
            None,
            "the same alert is never shown twice"
        );
        assert_eq!(gate.admit(2, 2 * s), Some(0), "a second alert is shown");
        assert_eq!(gate.admit(3, 3 * s), Some(0), "a third is shown");
        assert_eq!(
            gate.admit(4, 4 * s),
            None,
            "a fourth within the minute is held back"
        );
        assert_eq!(gate.admit(5, 5 * s), None, "and a fifth");
        assert_eq!(
            gate.admit(6, 61 * s),
            Some(2),
            "once the minute has passed, the next says how many were held back"
        );
    }

    #[test]
    fn allowlist_matches_addresses_and_networks() {
        let list = vec![
            "192.0.2.10".to_owned(),
            "198.51.100.0/24".into(),
            "2001:db8::/32".into(),
        ];
        assert!(allowlisted(&list, "192.0.2.10"), "an exact address");
        assert!(!allowlisted(&list, "192.0.2.11"), "a neighbour is not");
        assert!(allowlisted(&list, "198.51.100.77"), "inside a /24");
        assert!(!allowlisted(&list, "198.51.101.1"), "outside it");
        assert!(
            allowlisted(&list, "2001:db8:1::5"),
            "inside an IPv6 network"
        );
        assert!(
            !allowlisted(&list, "not an address"),
            "garbage never matches"
        );
        assert!(
            validate_allowlist(&["10.0.0.0/33".into()]).is_err(),
            "a /33 is refused"
        );
        assert!(
            validate_allowlist(&["example.com".into()]).is_err(),
            "a name is refused"
        );
    }
}
