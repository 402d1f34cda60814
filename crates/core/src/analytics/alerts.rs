//! Alerts: the detection rules run over every synced batch, firings become alerts the operator
//! acknowledges and resolves, and new alerts reach the desktop through a rate-limited hook.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use gatehouse_events::{Kind, Outcome};
use gatehouse_protocol::WireEvent;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use gatehouse_store::alerts::NewAlert;
use gatehouse_store::events::{Pulled, HOUR_US};

use super::detect::{self, Attempt, Detector, Firing, Rule};
use super::Analytics;
use crate::{Error, Result};

pub use gatehouse_store::alerts::{Alert, AlertFilter, AlertState};

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

/// Alerts whose last event is older than this when raised get no notification.
const STALE_FOR_NOTIFICATION_US: i64 = 3_600_000_000;

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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether `ip` is in one of `list`'s addresses or CIDR networks.
pub fn allowlisted(list: &[String], ip: &str) -> bool {
    let Ok(ip) = ip.parse::<IpAddr>() else {
        return false;
    };
    list.iter().any(|entry| match entry.split_once('/') {
        None => entry.parse::<IpAddr>().is_ok_and(|a| a == ip),
        Some((net, bits)) => match (net.parse::<IpAddr>(), bits.parse::<u32>()) {
            (Ok(IpAddr::V4(n)), Ok(bits)) if bits <= 32 => match ip {
                IpAddr::V4(a) => {
                    let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                    u32::from(a) & mask == u32::from(n) & mask
                }
                IpAddr::V6(_) => false,
            },
            (Ok(IpAddr::V6(n)), Ok(bits)) if bits <= 128 => match ip {
                IpAddr::V6(a) => {
                    let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                    u128::from(a) & mask == u128::from(n) & mask
                }
                IpAddr::V4(_) => false,
            },
            _ => false,
        },
    })
}

fn validate_allowlist(list: &[String]) -> Result<()> {
    for entry in list {
        let (net, bits) = match entry.split_once('/') {
            Some((net, bits)) => (net, Some(bits)),
            None => (entry.as_str(), None),
        };
        let max = match net.parse::<IpAddr>() {
            Ok(IpAddr::V4(_)) => 32,
            Ok(IpAddr::V6(_)) => 128,
            Err(_) => {
                return Err(Error::InvalidInput {
                    field: "allowlist",
                    reason: format!(
                        "\"{entry}\" is not an address or a network such as 192.0.2.0/24"
                    ),
                })
            }
        };
        if let Some(bits) = bits {
            if !bits.parse::<u32>().is_ok_and(|b| b <= max) {
                return Err(Error::InvalidInput {
                    field: "allowlist",
                    reason: format!("\"{entry}\": the prefix length must be 0 to {max}"),
                });
            }
        }
    }
    Ok(())
}

fn describe(rule: &Rule, f: &Firing) -> String {
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
        (detect::Detection::BaselineJump { factor, .. }, _) => format!(
            "{} failed sign-ins on {on} within {span}: at least {factor} times its 7-day average.",
            f.count
        ),
        (_, None) => format!("{} failed sign-ins on {on} within {span}.", f.count),
    }
}

impl Analytics {
    /// The detection rules and allowlist (the defaults until the operator changes them).
    pub fn detection(&self) -> Result<DetectionSettings> {
        let store = self.ctx.db();
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

    /// Replace the rules and allowlist, after checking every value.
    pub fn set_detection(&self, detection: &DetectionSettings) -> Result<DetectionSettings> {
        for rule in &detection.rules {
            rule.validate()?;
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
        self.detection()
    }

    /// Called with each new alert that passes the rate limit (the app shows a desktop
    /// notification).
    pub fn on_alert(&self, hook: impl Fn(AlertNotice) + Send + Sync + 'static) {
        *lock(&self.alerting.hook) = Some(std::sync::Arc::new(hook));
    }

    /// Run the rules over a batch just stored for `instance`.
    /// Only events above `stored_before` are new (see `EventStore::ingest`).
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
        if failures.is_empty() {
            return Ok(());
        }
        let settings = self.detection()?;
        let rules = detect::rules_for(&settings.rules, profile);
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
            .filter(|e| {
                e.ip.as_deref()
                    .is_none_or(|ip| !allowlisted(&settings.allowlist, ip))
            })
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
        for firing in firings {
            let Some(rule) = rules.iter().find(|r| r.id == firing.rule_id) else {
                continue;
            };
            let spoofable = firing
                .subject
                .as_deref()
                .is_some_and(|ip| forged.get(ip).copied().unwrap_or(false));
            if let Some(alert) = self.record_firing(rule, &firing, spoofable)? {
                self.ctx.record_action(
                    instance,
                    Outcome::Failure,
                    &format!("Alert {}: {} {}", alert.id, rule.name, alert.detail),
                );
                tracing::warn!(alert = alert.id, rule = %rule.id, instance, subject = ?alert.subject, "alert raised");
                let now_us = self.ctx.micros();
                // Notifications are for what is happening now: an alert about events an agent
                // is only catching up on is listed, not pushed to the desktop.
                if now_us - alert.last_us > STALE_FOR_NOTIFICATION_US {
                    continue;
                }
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
        }
        Ok(())
    }

    /// Store a firing (`spoofable`: its subject is known only from a header a client chose):
    /// a new alert (returned), or an update of the episode's alert. A new
    /// firing joins an unresolved alert of the same rule and subject whose last event is
    /// within the rule's window (the console restarted mid-episode).
    fn record_firing(&self, rule: &Rule, f: &Firing, spoofable: bool) -> Result<Option<Alert>> {
        let describe = |rule: &Rule, f: &Firing| {
            let mut detail = describe(rule, f);
            if spoofable {
                detail.push_str(SPOOFABLE_NOTE);
            }
            detail
        };
        let store = self.ctx.db();
        let alerts = store.alerts();
        let window = rule.detection.window_us();
        let open = alerts.open_episode(
            &rule.id,
            &f.instance,
            f.subject.as_deref(),
            f.first_us - window,
        )?;
        match open {
            Some(id) => {
                let added = if f.new { f.count } else { f.added };
                alerts.extend(id, added, f.last_us, f.distinct)?;
                let alert = alerts.get(id)?.ok_or(Error::AlertNotFound(id))?;
                let detail = describe(
                    rule,
                    &Firing {
                        count: alert.count,
                        first_us: alert.first_us,
                        last_us: alert.last_us,
                        ..f.clone()
                    },
                );
                alerts.set_detail(id, &detail)?;
                Ok(None)
            }
            // No open alert: a new episode, or one whose alert the operator resolved while it
            // went on; either way the operator hears about it.
            None => Ok(Some(alerts.insert(&NewAlert {
                rule_id: &rule.id,
                rule_name: &rule.name,
                kind: rule.detection.word(),
                severity: rule.severity,
                instance: &f.instance,
                subject: f.subject.as_deref(),
                first_us: f.first_us,
                last_us: f.last_us,
                count: f.count,
                distinct: f.distinct,
                detail: &describe(rule, f),
                created_us: self.ctx.micros(),
            })?)),
        }
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
