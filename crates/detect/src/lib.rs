//! The detection rules and the streaming detector, one implementation run by the console
//! (alerts) and by each agent (its own response while the console is closed), so a rule means
//! the same thing everywhere. No I/O.
//!
//! The detector is pure: events and a baseline go in, firings come out. Each rule keeps a
//! sliding window per subject (an address on an instance, or an instance). A rule fires once
//! when its window first reaches the threshold; later events of the same episode update that
//! firing instead of raising new ones. The episode ends when the subject has been quiet for a
//! whole window; the next burst is a new alert.
//!
//! [`Policy`] is what the console sends each agent: the rules, what the agent does when each
//! fires ([`Response`]), the allowlist and how repeat offenders are treated ([`Recidive`]).

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

pub mod allowlist;
mod policy;

pub use gatehouse_events::Severity;
pub use policy::{
    duration, Policy, PolicyBlock, Recidive, Response, MAX_BLOCK_SECS, MAX_POLICY_BYTES,
};

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// What a rule looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Detection {
    /// At least `failures` failed sign-ins from one address against one instance within
    /// `window_secs`.
    BruteForce { failures: u32, window_secs: u32 },
    /// At least `prefixes` distinct key prefixes tried by one address against one instance
    /// within `window_secs` (only services that log a prefix, such as Jelmore, show these).
    KeySpraying { prefixes: u32, window_secs: u32 },
    /// At least `addresses` distinct addresses failing against one instance within
    /// `window_secs`.
    Distributed { addresses: u32, window_secs: u32 },
    /// Failed sign-ins on one instance within `window_secs` reach `factor` times the 7-day
    /// average for such a window, and at least `minimum`.
    BaselineJump {
        factor: u32,
        minimum: u32,
        window_secs: u32,
    },
}

impl Detection {
    pub fn window_us(self) -> i64 {
        let secs = match self {
            Detection::BruteForce { window_secs, .. }
            | Detection::KeySpraying { window_secs, .. }
            | Detection::Distributed { window_secs, .. }
            | Detection::BaselineJump { window_secs, .. } => window_secs,
        };
        i64::from(secs) * 1_000_000
    }

    /// The kind's word, as alerts and the CLI name it.
    pub fn word(self) -> &'static str {
        match self {
            Detection::BruteForce { .. } => "brute_force",
            Detection::KeySpraying { .. } => "key_spraying",
            Detection::Distributed { .. } => "distributed",
            Detection::BaselineJump { .. } => "baseline_jump",
        }
    }

    /// What the rule fires on, in words: "5 failed sign-ins from one address within 10 min".
    pub fn describe(self) -> String {
        let within = |secs: u32| {
            if secs % 3600 == 0 {
                format!("{} h", secs / 3600)
            } else if secs % 60 == 0 {
                format!("{} min", secs / 60)
            } else {
                format!("{secs} s")
            }
        };
        match self {
            Detection::BruteForce {
                failures,
                window_secs,
            } => format!(
                "{failures} failed sign-ins from one address within {}",
                within(window_secs)
            ),
            Detection::KeySpraying {
                prefixes,
                window_secs,
            } => format!(
                "{prefixes} different keys tried by one address within {}",
                within(window_secs)
            ),
            Detection::Distributed {
                addresses,
                window_secs,
            } => format!(
                "{addresses} addresses failing within {}",
                within(window_secs)
            ),
            Detection::BaselineJump {
                factor,
                minimum,
                window_secs,
            } => format!(
                "failures within {} reach {factor}× the 7-day usual, and at least {minimum}",
                within(window_secs)
            ),
        }
    }

    /// The level at which the rule fires; for the baseline, given the usual failures per hour.
    fn threshold(self, baseline_per_hour: f64) -> u64 {
        match self {
            Detection::BruteForce { failures, .. } => u64::from(failures),
            Detection::KeySpraying { prefixes, .. } => u64::from(prefixes),
            Detection::Distributed { addresses, .. } => u64::from(addresses),
            Detection::BaselineJump {
                factor,
                minimum,
                window_secs,
            } => {
                let expected = baseline_per_hour * f64::from(window_secs) / 3600.0;
                u64::from(minimum).max((f64::from(factor) * expected).ceil() as u64)
            }
        }
    }

    /// Whether the rule counts distinct items (prefixes, addresses) rather than events.
    fn counts_distinct(self) -> bool {
        matches!(
            self,
            Detection::KeySpraying { .. } | Detection::Distributed { .. }
        )
    }

    /// Whether the window keeps a count per item: distinct prefixes and addresses, and for the
    /// baseline the addresses behind the jump.
    fn keeps_items(self) -> bool {
        !matches!(self, Detection::BruteForce { .. })
    }

    /// Whether a subject is an address (else the instance itself).
    fn per_address(self) -> bool {
        matches!(
            self,
            Detection::BruteForce { .. } | Detection::KeySpraying { .. }
        )
    }
}

/// A detection rule, as configured in Settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Rule {
    /// Stable identifier: alerts refer to it.
    pub id: String,
    pub name: String,
    pub detection: Detection,
    /// Service profiles it applies to; empty for every instance. For an instance, a rule
    /// naming its service replaces an every-instance rule of the same kind.
    pub services: Vec<String>,
    pub enabled: bool,
    pub severity: Severity,
    /// Where the default comes from.
    pub basis: String,
    /// What the agent does on its host when the rule fires there, console open or not.
    /// Rules saved before responses existed alert only.
    #[serde(default)]
    pub response: Response,
}

impl Rule {
    /// Check every value; the error is a sentence naming the rule and the value.
    pub fn validate(&self) -> Result<(), String> {
        let bad = |reason: String| Err(format!("rule \"{}\": {reason}", self.name));
        if self.id.trim().is_empty() || self.name.trim().is_empty() {
            return bad("every rule needs an id and a name".into());
        }
        let (threshold, window) = match self.detection {
            Detection::BruteForce {
                failures,
                window_secs,
            } => (failures, window_secs),
            Detection::KeySpraying {
                prefixes,
                window_secs,
            } => (prefixes, window_secs),
            Detection::Distributed {
                addresses,
                window_secs,
            } => (addresses, window_secs),
            Detection::BaselineJump {
                factor,
                minimum,
                window_secs,
            } => {
                if factor < 2 {
                    return bad("the factor must be at least 2".into());
                }
                (minimum, window_secs)
            }
        };
        if let Response::Block { ttl_secs } = self.response {
            if !self.detection.per_address() {
                return bad(
                    "only a rule about one address can block; this one watches the whole instance"
                        .into(),
                );
            }
            if !(60..=MAX_BLOCK_SECS).contains(&ttl_secs) {
                return bad(format!(
                    "a block lasts between 1 minute and 30 days, not {ttl_secs} s"
                ));
            }
        }
        if !(2..=1_000_000).contains(&threshold) {
            return bad(format!(
                "the threshold must be between 2 and 1000000, not {threshold}"
            ));
        }
        if !(10..=7 * 86_400).contains(&window) {
            return bad(format!(
                "the window must be between 10 seconds and 7 days, not {window} s"
            ));
        }
        Ok(())
    }
}

/// The rules a new console starts with, from the services' security guides.
pub fn default_rules() -> Vec<Rule> {
    let rule = |id: &str, name: &str, detection, services: &[&str], severity, basis: &str| Rule {
        id: id.into(),
        name: name.into(),
        detection,
        services: services.iter().map(|s| (*s).to_owned()).collect(),
        enabled: true,
        severity,
        basis: basis.into(),
        response: Response::Alert,
    };
    vec![
        rule(
            "brute-force",
            "Brute force",
            Detection::BruteForce { failures: 5, window_secs: 600 },
            &[],
            Severity::High,
            "Sekha security guide, Fail2Ban jail: maxretry = 5, findtime = 600. Jelmore's guide names no threshold, so every service without its own rule uses this one.",
        ),
        rule(
            "brute-force-rae",
            "Brute force (RAE)",
            Detection::BruteForce { failures: 10, window_secs: 300 },
            &["rae"],
            Severity::High,
            "RAE security guide, check_brute_force: 10 failed attempts from one address in a 5-minute window.",
        ),
        rule(
            "key-spraying",
            "Key spraying",
            Detection::KeySpraying { prefixes: 5, window_secs: 600 },
            &[],
            Severity::High,
            "Many different keys from one address is guessing, not a client with a stale key.",
        ),
        rule(
            "distributed",
            "Distributed attempts",
            Detection::Distributed { addresses: 20, window_secs: 600 },
            &[],
            Severity::Medium,
            "Many addresses failing against one instance slip under per-address limits.",
        ),
        rule(
            "baseline-jump",
            "Jump above the 7-day baseline",
            Detection::BaselineJump { factor: 5, minimum: 30, window_secs: 3600 },
            &[],
            Severity::Medium,
            "Guides ask for alerts on unusual access patterns: five times the usual hourly failures.",
        ),
    ]
}

/// The rules that apply to an instance running `service`: enabled, and for each kind the
/// service's own rules if it has any, else the every-instance ones.
pub fn rules_for<'r>(rules: &'r [Rule], service: &str) -> Vec<&'r Rule> {
    let enabled = || rules.iter().filter(|r| r.enabled);
    enabled()
        .filter(|r| {
            if r.services.is_empty() {
                !enabled().any(|o| {
                    o.detection.word() == r.detection.word()
                        && o.services.iter().any(|s| s == service)
                })
            } else {
                r.services.iter().any(|s| s == service)
            }
        })
        .collect()
}

/// One failed sign-in, as the detector sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt<'a> {
    pub time_us: i64,
    pub ip: Option<&'a str>,
    pub key_prefix: Option<&'a str>,
    /// From the instance's counting log (see `events`): brute force, distributed and
    /// baseline count these; key spraying reads every log that names a prefix.
    pub counted: bool,
}

/// A rule reaching its threshold, or an episode it already reported going on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firing {
    pub rule_id: String,
    pub instance: String,
    /// The address, for per-address rules.
    pub subject: Option<String>,
    pub first_us: i64,
    pub last_us: i64,
    /// Events in the window when it first fired, plus those since (an episode total).
    pub count: u64,
    /// Events this batch added to an episode already reported; 0 for a new firing.
    pub added: u64,
    /// Distinct prefixes or addresses seen in the window, for those rules.
    pub distinct: u64,
    /// True for the first firing of an episode.
    pub new: bool,
    /// For rules that watch the whole instance (distributed, baseline): the addresses in the
    /// window and their failures, most first (at most [`MAX_FIRING_ADDRESSES`]).
    pub addresses: Vec<(String, u64)>,
}

/// Addresses a firing lists.
pub const MAX_FIRING_ADDRESSES: usize = 1000;

#[derive(Debug, Default)]
struct Track {
    /// (time, item) in the window; item is a prefix or address id for distinct counting.
    window: VecDeque<(i64, u32)>,
    distinct: HashMap<u32, u32>,
    /// Set once fired: the episode's total so far.
    episode: Option<u64>,
    first_us: i64,
    last_us: i64,
}

/// No subject: the rule watches the instance as a whole.
const WHOLE_INSTANCE: u32 = u32::MAX;
/// Distinct strings the detector keeps ids for before it starts afresh.
const MAX_ITEMS: usize = 1_000_000;

/// Sliding windows for every rule, instance and subject.
#[derive(Debug, Default)]
pub struct Detector {
    /// Keyed by (rule, instance, subject) as small ids.
    tracks: FastMap<(u32, u32, u32), Track>,
    /// Small ids for strings: rules, instances, addresses, prefixes.
    items: FastMap<String, u32>,
    /// The strings of `items`, by id.
    names: Vec<String>,
    events_seen: u64,
}

impl Detector {
    pub fn new() -> Self {
        Detector::default()
    }

    fn item(&mut self, value: &str) -> u32 {
        if let Some(id) = self.items.get(value) {
            return *id;
        }
        let id = self.items.len() as u32;
        self.items.insert(value.to_owned(), id);
        self.names.push(value.to_owned());
        id
    }

    /// Feed one instance's new attempts (in arrival order) through `rules`. `baseline` is the
    /// instance's average failures per hour over the previous 7 days. Returns the firings of
    /// this batch, one per episode.
    pub fn observe(
        &mut self,
        instance: &str,
        rules: &[&Rule],
        attempts: &[Attempt<'_>],
        baseline_per_hour: f64,
    ) -> Vec<Firing> {
        // Prefixes and addresses are chosen by whoever sends the requests: bound the ids.
        // Forgetting the windows costs at most a repeated firing, which joins its open alert.
        if self.items.len() > MAX_ITEMS {
            tracing::warn!(
                items = self.items.len(),
                "detector forgot its windows: too many distinct addresses and keys"
            );
            self.items.clear();
            self.names.clear();
            self.tracks.clear();
        }
        let mut out: Vec<Firing> = Vec::new();
        let instance_id = self.item(instance);
        let ids: Vec<(Option<u32>, Option<u32>)> = attempts
            .iter()
            .map(|a| {
                (
                    a.ip.map(|ip| self.item(ip)),
                    a.key_prefix.map(|k| self.item(k)),
                )
            })
            .collect();
        for rule in rules {
            let window = rule.detection.window_us();
            let rule_id = self.item(&rule.id);
            let threshold = rule.detection.threshold(baseline_per_hour);
            let distinct_counted = rule.detection.counts_distinct();
            let keeps_items = rule.detection.keeps_items();
            for (attempt, &(ip_id, prefix_id)) in attempts.iter().zip(&ids) {
                let item = match rule.detection {
                    Detection::KeySpraying { .. } => match (ip_id, prefix_id) {
                        (Some(_), Some(prefix)) => prefix,
                        _ => continue,
                    },
                    Detection::BruteForce { .. } if attempt.counted && ip_id.is_some() => 0,
                    Detection::Distributed { .. } if attempt.counted => match ip_id {
                        Some(ip) => ip,
                        None => continue,
                    },
                    Detection::BaselineJump { .. } if attempt.counted => {
                        ip_id.unwrap_or(WHOLE_INSTANCE)
                    }
                    _ => continue,
                };
                let (subject, subject_id) = match (rule.detection.per_address(), attempt.ip, ip_id)
                {
                    (true, Some(ip), Some(id)) => (Some(ip), id),
                    _ => (None, WHOLE_INSTANCE),
                };
                let track = self
                    .tracks
                    .entry((rule_id, instance_id, subject_id))
                    .or_default();
                let t = attempt.time_us;
                if !track.window.is_empty() && t <= track.last_us - window {
                    // Older than anything the window still holds (a log backfilled out of
                    // order): it belongs to a period the rules have already judged.
                    continue;
                }
                // Quiet for a whole window: the episode is over.
                if track.episode.is_some() && t - track.last_us > window {
                    *track = Track::default();
                }
                if track.window.is_empty() && track.episode.is_none() {
                    track.first_us = t;
                }
                let at = track.window.partition_point(|(x, _)| *x <= t);
                track.window.insert(at, (t, item));
                if keeps_items {
                    *track.distinct.entry(item).or_default() += 1;
                }
                track.last_us = track.last_us.max(t);
                let horizon = track.last_us - window;
                while let Some(&(old, old_item)) = track.window.front() {
                    if old > horizon {
                        break;
                    }
                    track.window.pop_front();
                    if let Some(n) = track.distinct.get_mut(&old_item) {
                        *n -= 1;
                        if *n == 0 {
                            track.distinct.remove(&old_item);
                        }
                    }
                }
                let level = if distinct_counted {
                    track.distinct.len() as u64
                } else {
                    track.window.len() as u64
                };
                if let Some(total) = track.episode {
                    // The episode ends when the window falls well below the threshold
                    // (half: no flapping at the edge), so a lasting trickle cannot keep one
                    // alert open and swallow the next attack.
                    if level * 2 < threshold {
                        track.episode = None;
                    } else {
                        let total = total + 1;
                        track.episode = Some(total);
                        upsert(&mut out, rule, instance, subject, track, total, false);
                        continue;
                    }
                }
                if level >= threshold {
                    let in_window = track.window.len() as u64;
                    track.episode = Some(in_window);
                    track.first_us = track.window.front().map_or(t, |(first, _)| *first);
                    upsert(&mut out, rule, instance, subject, track, in_window, true);
                }
            }
            // Who is behind a whole-instance firing: the addresses in its window now (read
            // once per batch, not per event).
            if !rule.detection.per_address() {
                if let Some(track) = self.tracks.get(&(rule_id, instance_id, WHOLE_INSTANCE)) {
                    let mut addresses: Vec<(String, u64)> = track
                        .distinct
                        .iter()
                        .filter(|(id, _)| **id != WHOLE_INSTANCE)
                        .filter_map(|(id, n)| {
                            self.names
                                .get(*id as usize)
                                .map(|ip| (ip.clone(), u64::from(*n)))
                        })
                        .collect();
                    addresses.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                    addresses.truncate(MAX_FIRING_ADDRESSES);
                    for f in out.iter_mut().filter(|f| f.rule_id == rule.id) {
                        if f.addresses.is_empty() {
                            f.addresses.clone_from(&addresses);
                        }
                    }
                }
            }
        }
        self.events_seen += attempts.len() as u64;
        if self.events_seen > 100_000 {
            self.events_seen = 0;
            self.forget_quiet(attempts.last().map_or(0, |a| a.time_us), rules);
        }
        out
    }

    /// Drop tracks whose window has emptied, so memory follows the active subjects only.
    fn forget_quiet(&mut self, now_us: i64, rules: &[&Rule]) {
        let longest = rules
            .iter()
            .map(|r| r.detection.window_us())
            .max()
            .unwrap_or(0);
        self.tracks.retain(|_, t| now_us - t.last_us <= longest);
    }

    /// Forget every window about `subject` (an address): once it is blocked, a new episode
    /// needs the threshold reached again by failures after the block, as fail2ban's counter
    /// starts afresh after a ban.
    pub fn forget(&mut self, subject: &str) {
        if let Some(&id) = self.items.get(subject) {
            self.tracks.retain(|key, _| key.2 != id);
        }
    }

    /// Subjects being tracked, for tests and diagnostics.
    pub fn tracked(&self) -> usize {
        self.tracks.len()
    }
}

fn upsert(
    out: &mut Vec<Firing>,
    rule: &Rule,
    instance: &str,
    subject: Option<&str>,
    track: &Track,
    total: u64,
    new: bool,
) {
    // A new episode is always its own firing; an update goes to its episode's, the latest of
    // the rule and subject in this batch.
    if !new {
        if let Some(f) = out
            .iter_mut()
            .rev()
            .find(|f| f.rule_id == rule.id && f.subject.as_deref() == subject)
        {
            if !f.new {
                f.added += total.saturating_sub(f.count);
            }
            f.count = total;
            f.last_us = track.last_us;
            f.distinct = track.distinct.len() as u64;
            return;
        }
    }
    out.push(Firing {
        rule_id: rule.id.clone(),
        instance: instance.to_owned(),
        subject: subject.map(str::to_owned),
        first_us: track.first_us,
        last_us: track.last_us,
        count: total,
        added: if new { 0 } else { 1 },
        distinct: track.distinct.len() as u64,
        new,
        addresses: Vec::new(),
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_rule_reads_as_words() {
        use super::Detection;
        assert_eq!(
            Detection::BruteForce {
                failures: 5,
                window_secs: 600
            }
            .describe(),
            "5 failed sign-ins from one address within 10 min",
            "the CLI lists rules in words, not as JSON"
        );
        assert_eq!(
            Detection::BaselineJump {
                factor: 5,
                minimum: 30,
                window_secs: 3600
            }
            .describe(),
            "failures within 1 h reach 5× the 7-day usual, and at least 30",
            "a window of whole hours reads in hours"
        );
    }

    use super::*;

    const MIN: i64 = 60_000_000;

    fn attempt(minute: f64, ip: &'static str) -> Attempt<'static> {
        Attempt {
            time_us: (minute * MIN as f64) as i64,
            ip: Some(ip),
            key_prefix: None,
            counted: true,
        }
    }

    fn rule(detection: Detection) -> Rule {
        Rule {
            id: "r".into(),
            name: "r".into(),
            detection,
            services: vec![],
            enabled: true,
            severity: Severity::High,
            basis: String::new(),
            response: Response::Alert,
        }
    }

    #[test]
    fn brute_force_fires_on_the_fifth_failure_within_ten_minutes_and_only_once() {
        let r = rule(Detection::BruteForce {
            failures: 5,
            window_secs: 600,
        });
        let mut d = Detector::new();
        // Four failures, a pause longer than the window, then five within 9 minutes.
        let first: Vec<_> = [0.0, 1.0, 2.0, 3.0]
            .iter()
            .map(|m| attempt(*m, "203.0.113.9"))
            .collect();
        assert!(
            d.observe("sekha", &[&r], &first, 0.0).is_empty(),
            "four failures are below the threshold of five"
        );
        let late: Vec<_> = [11.0, 14.0, 16.0, 18.0]
            .iter()
            .map(|m| attempt(*m, "203.0.113.9"))
            .collect();
        assert!(
            d.observe("sekha", &[&r], &late, 0.0).is_empty(),
            "failures at 3 and 11 minutes are not both inside any window that holds five: \
             by 18 minutes only 11, 14, 16, 18 remain"
        );
        let fifth = [attempt(19.0, "203.0.113.9")];
        let fired = d.observe("sekha", &[&r], &fifth, 0.0);
        assert_eq!(
            fired.len(),
            1,
            "the fifth failure within 10 minutes fires: {fired:?}"
        );
        assert!(fired[0].new, "the first firing of an episode is new");
        assert_eq!(fired[0].count, 5, "five failures in the window");
        assert_eq!(
            fired[0].first_us,
            11 * MIN,
            "the episode starts at the window's first failure"
        );
        assert_eq!(
            fired[0].subject.as_deref(),
            Some("203.0.113.9"),
            "per address"
        );
        let more: Vec<_> = (20..30)
            .map(|m| attempt(f64::from(m), "203.0.113.9"))
            .collect();
        let again = d.observe("sekha", &[&r], &more, 0.0);
        assert_eq!(
            again.len(),
            1,
            "the same episode updates, it does not fire again"
        );
        assert!(!again[0].new, "an update is not a new alert");
        assert_eq!(again[0].added, 10, "ten more failures in the episode");
        assert_eq!(again[0].count, 15, "the episode total");
        // Quiet for longer than the window, then a new burst: a new alert.
        let burst: Vec<_> = (0..5)
            .map(|i| attempt(45.0 + f64::from(i), "203.0.113.9"))
            .collect();
        let next = d.observe("sekha", &[&r], &burst, 0.0);
        assert_eq!(
            next.len(),
            1,
            "a burst after a quiet window is a new episode"
        );
        assert!(next[0].new, "and a new alert");
    }

    #[test]
    fn an_episode_ends_when_the_attack_dies_down_and_the_next_is_its_own_alert() {
        let r = rule(Detection::BruteForce {
            failures: 5,
            window_secs: 600,
        });
        let mut d = Detector::new();
        let mut batch: Vec<_> = (0..5)
            .map(|i| attempt(f64::from(i) * 0.1, "192.0.2.5"))
            .collect();
        // A trickle: one failure every six minutes leaves at most two in any window.
        batch.extend((1..=4).map(|i| attempt(f64::from(i) * 6.0, "192.0.2.5")));
        // Then a second burst, still within the window of the last trickle failure.
        batch.extend((0..5).map(|i| attempt(25.0 + f64::from(i) * 0.1, "192.0.2.5")));
        let fired = d.observe("sekha", &[&r], &batch, 0.0);
        assert_eq!(
            fired.len(),
            2,
            "two bursts, two alerts, even in one batch: {fired:?}"
        );
        assert!(fired.iter().all(|f| f.new), "both are new episodes");
        assert_eq!(
            fired[1].first_us,
            18 * MIN,
            "the second starts with the oldest failure in its window (18 minutes)"
        );
    }

    #[test]
    fn late_lines_are_placed_in_time_and_backfilled_history_is_left_alone() {
        let r = rule(Detection::BruteForce {
            failures: 5,
            window_secs: 600,
        });
        let mut d = Detector::new();
        let first: Vec<_> = [20.0, 21.0, 22.0, 23.0]
            .iter()
            .map(|m| attempt(*m, "192.0.2.8"))
            .collect();
        assert!(d.observe("rae", &[&r], &first, 0.0).is_empty(), "four");
        assert!(
            d.observe("rae", &[&r], &[attempt(2.0, "192.0.2.8")], 0.0)
                .is_empty(),
            "a line from 18 minutes earlier is outside the window and does not make five"
        );
        let fired = d.observe("rae", &[&r], &[attempt(19.5, "192.0.2.8")], 0.0);
        assert_eq!(
            fired.len(),
            1,
            "a slightly late line inside the window does"
        );
        assert_eq!(
            fired[0].first_us,
            (19.5 * MIN as f64) as i64,
            "and is placed in time order"
        );
    }

    #[test]
    fn addresses_are_counted_apart_and_uncounted_logs_are_ignored() {
        let r = rule(Detection::BruteForce {
            failures: 3,
            window_secs: 600,
        });
        let mut d = Detector::new();
        let mut attempts = vec![
            attempt(0.0, "198.51.100.1"),
            attempt(0.1, "198.51.100.2"),
            attempt(0.2, "198.51.100.1"),
            attempt(0.3, "198.51.100.2"),
        ];
        // The service's own line for the same request is not counted again.
        let mut duplicate = attempt(0.35, "198.51.100.1");
        duplicate.counted = false;
        attempts.push(duplicate);
        assert!(
            d.observe("rae", &[&r], &attempts, 0.0).is_empty(),
            "two counted failures per address are below three; the uncounted duplicate must not tip it"
        );
        let fired = d.observe("rae", &[&r], &[attempt(0.4, "198.51.100.2")], 0.0);
        assert_eq!(
            fired.len(),
            1,
            "the address with three counted failures fires"
        );
        assert_eq!(
            fired[0].subject.as_deref(),
            Some("198.51.100.2"),
            "the right address"
        );
    }

    #[test]
    fn key_spraying_counts_distinct_prefixes_from_any_log() {
        let r = rule(Detection::KeySpraying {
            prefixes: 3,
            window_secs: 600,
        });
        let mut d = Detector::new();
        let keyed = |m: f64, prefix: &'static str| Attempt {
            time_us: (m * MIN as f64) as i64,
            ip: Some("192.0.2.7"),
            key_prefix: Some(prefix),
            counted: false,
        };
        let same = [
            keyed(0.0, "aaaaaaaaaa"),
            keyed(1.0, "aaaaaaaaaa"),
            keyed(2.0, "aaaaaaaaaa"),
            keyed(2.5, "bbbbbbbbbb"),
        ];
        assert!(
            d.observe("jelmore", &[&r], &same, 0.0).is_empty(),
            "a client retrying one stale key is not spraying: two distinct prefixes"
        );
        let fired = d.observe("jelmore", &[&r], &[keyed(3.0, "cccccccccc")], 0.0);
        assert_eq!(fired.len(), 1, "a third distinct prefix fires");
        assert_eq!(fired[0].distinct, 3, "three prefixes");
    }

    #[test]
    fn distributed_counts_addresses_per_instance() {
        let r = rule(Detection::Distributed {
            addresses: 4,
            window_secs: 300,
        });
        let mut d = Detector::new();
        let ips = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.3", "10.0.0.1"];
        let attempts: Vec<_> = ips
            .iter()
            .enumerate()
            .map(|(i, ip)| attempt(i as f64, ip))
            .collect();
        assert!(
            d.observe("sekha", &[&r], &attempts, 0.0).is_empty(),
            "three distinct addresses are below four"
        );
        let fired = d.observe("sekha", &[&r], &[attempt(4.5, "10.0.0.4")], 0.0);
        assert_eq!(
            fired.len(),
            1,
            "the fourth distinct address within 5 minutes fires"
        );
        assert_eq!(fired[0].subject, None, "the subject is the instance");
    }

    #[test]
    fn baseline_jump_needs_both_the_factor_and_the_minimum() {
        let r = rule(Detection::BaselineJump {
            factor: 5,
            minimum: 10,
            window_secs: 3600,
        });
        let burst: Vec<_> = (0..12).map(|i| attempt(f64::from(i), "10.1.1.1")).collect();
        let mut quiet = Detector::new();
        assert!(
            quiet.observe("rae", &[&r], &burst, 4.0).is_empty(),
            "12 failures in an hour is below 5 x a baseline of 4 per hour"
        );
        let mut usual = Detector::new();
        assert!(
            usual.observe("rae", &[&r], &burst[..9], 2.0).is_empty(),
            "nine failures are below the minimum of ten"
        );
        let fired = usual.observe("rae", &[&r], &burst[9..], 2.0);
        assert_eq!(
            fired.len(),
            1,
            "ten reach 5 x a baseline of 2 and the minimum of 10"
        );
        assert!(fired[0].new, "a new episode");
        assert_eq!(
            fired[0].count, 12,
            "the episode counts every failure of the batch"
        );
    }

    #[test]
    fn a_service_rule_replaces_the_every_instance_rule_of_its_kind() {
        let rules = default_rules();
        let for_rae: Vec<&str> = rules_for(&rules, "rae")
            .iter()
            .map(|r| r.id.as_str())
            .collect();
        assert!(
            for_rae.contains(&"brute-force-rae"),
            "RAE gets its guide's threshold"
        );
        assert!(
            !for_rae.contains(&"brute-force"),
            "and not the general one as well: {for_rae:?}"
        );
        let for_sekha: Vec<&str> = rules_for(&rules, "sekha")
            .iter()
            .map(|r| r.id.as_str())
            .collect();
        assert!(
            for_sekha.contains(&"brute-force"),
            "Sekha uses the fail2ban default"
        );
        assert!(!for_sekha.contains(&"brute-force-rae"), "not RAE's rule");
        for rule in &rules {
            rule.validate().expect("the defaults are valid");
        }
    }

    #[test]
    fn a_forgotten_address_needs_the_threshold_again_and_others_keep_their_windows() {
        let r = rule(Detection::BruteForce {
            failures: 5,
            window_secs: 600,
        });
        let mut d = Detector::new();
        let four: Vec<_> = (0..4)
            .flat_map(|i| [attempt(i as f64 * 0.1, "a"), attempt(i as f64 * 0.1, "b")])
            .collect();
        assert!(
            d.observe("x", &[&r], &four, 0.0).is_empty(),
            "four each: below the threshold"
        );
        d.forget("a");
        let fifth = [attempt(0.5, "a"), attempt(0.5, "b")];
        let fired: Vec<_> = d
            .observe("x", &[&r], &fifth, 0.0)
            .into_iter()
            .filter_map(|f| f.subject)
            .collect();
        assert_eq!(
            fired,
            vec!["b".to_owned()],
            "only the address not forgotten reaches five; the forgotten one starts afresh"
        );
    }

    #[test]
    fn invalid_rules_are_refused_with_the_reason() {
        let mut r = rule(Detection::BruteForce {
            failures: 1,
            window_secs: 600,
        });
        let err = r
            .validate()
            .expect_err("a threshold of 1 fires on every typo");
        assert!(
            err.to_string().contains("threshold"),
            "says which value: {err}"
        );
        r.detection = Detection::BruteForce {
            failures: 5,
            window_secs: 1,
        };
        assert!(
            r.validate()
                .expect_err("one second")
                .to_string()
                .contains("window"),
            "a window under 10 s is refused"
        );
    }
}
