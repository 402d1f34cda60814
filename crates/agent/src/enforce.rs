//! The agent's own response, console open or not: every failed sign-in the agent buffers goes
//! through the policy's rules (the detector the console runs too, `gatehouse-detect`), and a
//! rule that fires does what the policy says for it: record it, or block the address in the
//! host firewall for a time that grows for a repeat offender. Every decision is kept with the
//! lines that caused it (`decisions.rs`) for the console to pull.
//!
//! What is never blocked: an address on the policy's allowlist or the host's `never_block`
//! (the firewall also accepts these before any drop), the console's address, loopback. An
//! address the service only read from a header (`X-Forwarded-For`) is not this host's peer:
//! the firewall cannot stop it, and the decision says so instead of claiming a block.
//!
//! Only per-address rules (brute force, key spraying) act here: the whole-instance ones
//! (distributed, baseline) need the fleet's history, which the console keeps.

use std::sync::Arc;
use std::time::Duration;

use gatehouse_detect::{allowlist, rules_for, Attempt, Detector, Firing, Response, Rule};
use gatehouse_events::Source;
use gatehouse_protocol::{
    self as protocol, flags, BlockRequest, Decision, DecisionKind, Enforced, WireEvent,
};

use crate::agent::Agent;
use crate::policy::Running;

/// Longest wait between rounds when nothing wakes the enforcer.
const IDLE: Duration = Duration::from_secs(1);

/// Judge new events as they are buffered, until the task is aborted.
pub async fn run(agent: Arc<Agent>) {
    let arrivals = agent.arrivals();
    // History before the agent started was judged then (or by the console).
    let mut cursor = match agent.events(0, 1) {
        Ok(page) => page.head,
        Err(e) => {
            tracing::error!(error = %e.message, "the enforcer cannot read the buffer");
            0
        }
    };
    let mut judge = Judge::new(agent.clone());
    loop {
        let woken = arrivals.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        loop {
            match agent.failures_after(cursor) {
                Ok((failures, next)) => {
                    let more = next != cursor && failures.len() == crate::buffer::FAILURES_AT_ONCE;
                    cursor = next;
                    if !failures.is_empty() {
                        judge.events(&failures).await;
                    }
                    if !more {
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e.message, "the enforcer cannot read the buffer");
                    break;
                }
            }
        }
        judge.fleet_blocks().await;
        let _ = tokio::time::timeout(IDLE, woken).await;
    }
}

/// The detector and what it needs between rounds.
struct Judge {
    agent: Arc<Agent>,
    detector: Detector,
    /// The policy generation the detector's windows belong to.
    generation: u64,
    /// The generation whose fleet-wide blocks were applied.
    blocks_applied: Option<u64>,
    /// The log whose failures count (the proxy's, else the access log's, else the service's),
    /// as the console counts them.
    counting: Option<Source>,
    /// The last lines of each address's failures, across batches: what a decision keeps.
    recent: std::collections::HashMap<String, std::collections::VecDeque<String>>,
    /// Addresses this enforcer blocked, and until when (microseconds): lines that still
    /// arrive from one (read before the block took, or forwarded) are no new offence.
    blocked_until: std::collections::HashMap<String, i64>,
}

/// Addresses whose recent lines are kept before starting afresh, and the bytes kept of each
/// line: addresses and lines are chosen by whoever sends the requests, so what is kept is
/// bounded (here to about 40 MB).
const MAX_RECENT: usize = 5_000;
const LINE_KEPT: usize = 400;

impl Judge {
    fn new(agent: Arc<Agent>) -> Self {
        let counting = agent.settings().logs().ok().and_then(|logs| {
            [Source::Proxy, Source::Access, Source::Service]
                .into_iter()
                .find(|s| logs.iter().any(|l| l.source == *s))
        });
        Judge {
            generation: agent.policy_generation(),
            agent,
            detector: Detector::new(),
            blocks_applied: None,
            counting,
            recent: std::collections::HashMap::new(),
            blocked_until: std::collections::HashMap::new(),
        }
    }

    async fn events(&mut self, events: &[WireEvent]) {
        let Some(running) = self.agent.policy() else {
            return;
        };
        if self.generation != self.agent.policy_generation() {
            // New rules: their windows start empty.
            self.detector = Detector::new();
            self.generation = self.agent.policy_generation();
        }
        let rules: Vec<&Rule> =
            rules_for(&running.policy.rules, &self.agent.settings().profile_name)
                .into_iter()
                .filter(|r| r.response != Response::Off)
                .filter(|r| {
                    matches!(
                        r.detection,
                        gatehouse_detect::Detection::BruteForce { .. }
                            | gatehouse_detect::Detection::KeySpraying { .. }
                    )
                })
                .collect();
        if rules.is_empty() {
            return;
        }
        // The buffer hands over failed sign-ins only.
        let mut failures: Vec<&WireEvent> = events
            .iter()
            // The agent's own probes are Gatehouse's, not an attack.
            .filter(|e| e.flags & flags::PROBE == 0)
            .filter(|e| e.ip.is_some())
            .collect();
        if failures.is_empty() {
            return;
        }
        failures.sort_by_key(|e| e.time_us);
        if self.recent.len() > MAX_RECENT {
            self.recent.clear();
        }
        for e in &failures {
            if let Some(ip) = e.ip.as_deref() {
                let lines = self.recent.entry(ip.to_owned()).or_default();
                if lines.len() == protocol::MAX_DECISION_LINES {
                    lines.pop_front();
                }
                lines.push_back(clip(&e.raw));
            }
        }
        let attempts: Vec<Attempt<'_>> = failures
            .iter()
            .map(|e| Attempt {
                time_us: e.time_us,
                ip: e.ip.as_deref(),
                key_prefix: e.key_prefix.as_deref(),
                counted: Some(e.source) == self.counting,
            })
            .collect();
        let firings = self.detector.observe("here", &rules, &attempts, 0.0);
        let now_us = self.agent.clock().micros();
        self.blocked_until.retain(|_, until| *until > now_us);
        for firing in firings.into_iter().filter(|f| f.new) {
            let Some(rule) = rules.iter().find(|r| r.id == firing.rule_id) else {
                continue;
            };
            let Some(ip) = firing.subject.clone() else {
                continue;
            };
            if self.blocked_until.contains_key(&ip) {
                if self.agent.still_blocked(&ip) {
                    // Still blocked: nothing new to decide.
                    self.detector.forget(&ip);
                    continue;
                }
                // Lifted early (an unblock): this is a new offence.
                self.blocked_until.remove(&ip);
            }
            let theirs: Vec<&&WireEvent> = failures
                .iter()
                .filter(|e| e.ip.as_deref() == Some(ip.as_str()))
                .collect();
            let lines: Vec<String> = self
                .recent
                .get(&ip)
                .map(|l| l.iter().cloned().collect())
                .unwrap_or_default();
            let forwarded =
                !theirs.is_empty() && theirs.iter().all(|e| e.flags & flags::IP_SPOOFABLE != 0);
            let decision = self
                .decide(&running, rule, &firing, &ip, forwarded, lines)
                .await;
            if decision.enforced == Enforced::Firewall {
                // Blocked: what comes after the block is a new offence.
                self.detector.forget(&ip);
                self.recent.remove(&ip);
                if let Some(until) = decision.until {
                    if self.blocked_until.len() > MAX_RECENT {
                        self.blocked_until.clear();
                    }
                    self.blocked_until
                        .insert(ip.clone(), until.saturating_mul(1_000_000));
                }
            }
            self.agent.record_decision(decision);
        }
    }

    async fn decide(
        &self,
        running: &Running,
        rule: &Rule,
        firing: &Firing,
        ip: &str,
        forwarded: bool,
        lines: Vec<String>,
    ) -> Decision {
        let now_us = self.agent.clock().micros();
        let mut decision = Decision {
            id: 0,
            time_us: now_us,
            kind: DecisionKind::Alert,
            rule_id: rule.id.clone(),
            rule_name: rule.name.clone(),
            ip: ip.to_owned(),
            policy_version: running.policy.version,
            count: firing.count,
            ttl_secs: None,
            until: None,
            previous_blocks: 0,
            enforced: Enforced::Nowhere,
            verified: false,
            note: String::new(),
            lines,
        };
        let what = rule.detection.describe();
        let never = self.never(running);
        if allowlist::allowlisted(&never, ip) {
            decision.kind = DecisionKind::Allowlisted;
            decision.note = format!("{what}, but {ip} is on the allowlist: nothing was done");
            return decision;
        }
        let Response::Block { ttl_secs } = rule.response else {
            decision.note = format!("{what}: recorded (the rule's response is to alert)");
            return decision;
        };
        // Lines read late (the agent was stopped) about an attack already over.
        if now_us - firing.last_us > rule.detection.window_us() {
            decision.note =
                format!("{what}, in lines the agent read after the attack had ended: not blocked");
            return decision;
        }
        let recidive = running.policy.recidive;
        let previous = self
            .agent
            .blocks_since(ip, now_us - i64::from(recidive.memory_secs) * 1_000_000);
        let ttl = recidive.ttl(ttl_secs, previous);
        decision.kind = DecisionKind::Block;
        decision.ttl_secs = Some(ttl);
        decision.previous_blocks = previous;
        if forwarded {
            decision.note = format!(
                "{what}, but {ip} is only known from a header the request carried (X-Forwarded-For): it is not this host's peer, so the host firewall cannot stop it"
            );
            return decision;
        }
        let request = BlockRequest {
            ip: ip.to_owned(),
            ttl_secs: u64::from(ttl),
            never,
        };
        match self.agent.block(request, None).await {
            Ok(result) => {
                decision.enforced = Enforced::Firewall;
                decision.verified = result.blocked;
                decision.until = Some(now_us.div_euclid(1_000_000) + i64::from(ttl));
                let longer = if previous > 0 {
                    format!(
                        " ({previous} earlier block(s) within {}: longer)",
                        gatehouse_detect::duration(recidive.memory_secs)
                    )
                } else {
                    String::new()
                };
                decision.note = format!(
                    "{what}: blocked in the host firewall for {}{longer}. {}",
                    gatehouse_detect::duration(ttl),
                    result.steps.join("; ")
                );
            }
            Err(e) => {
                decision.note = format!("{what}, but the block failed: {}", e.message);
            }
        }
        decision
    }

    /// What is never blocked: the policy's allowlist and the host's `never_block`.
    fn never(&self, running: &Running) -> Vec<String> {
        let mut never = running.policy.allowlist.clone();
        never.extend(self.agent.settings().firewall.never_block.iter().cloned());
        never
    }

    /// Apply the policy's fleet-wide blocks once per policy taken.
    async fn fleet_blocks(&mut self) {
        let Some(running) = self.agent.policy() else {
            return;
        };
        let generation = self.agent.policy_generation();
        if self.blocks_applied == Some(generation) {
            return;
        }
        self.blocks_applied = Some(generation);
        let now = self.agent.clock().unix();
        let never = self.never(&running);
        for block in running.policy.blocks.iter().filter(|b| b.until > now) {
            let ttl = u64::try_from(block.until - now).unwrap_or(1);
            let mut decision = Decision {
                id: 0,
                time_us: self.agent.clock().micros(),
                kind: DecisionKind::Block,
                rule_id: "fleet".into(),
                rule_name: "Blocked fleet-wide".into(),
                ip: block.ip.clone(),
                policy_version: running.policy.version,
                count: 0,
                ttl_secs: u32::try_from(ttl).ok(),
                until: Some(block.until),
                previous_blocks: 0,
                enforced: Enforced::Nowhere,
                verified: false,
                note: String::new(),
                lines: Vec::new(),
            };
            match self
                .agent
                .block(
                    BlockRequest {
                        ip: block.ip.clone(),
                        ttl_secs: ttl,
                        never: never.clone(),
                    },
                    None,
                )
                .await
            {
                Ok(result) => {
                    decision.enforced = Enforced::Firewall;
                    decision.verified = result.blocked;
                    decision.note = format!(
                        "blocked fleet-wide ({}): {}",
                        block.reason,
                        result.steps.join("; ")
                    );
                }
                Err(e) => {
                    decision.note = format!(
                        "blocked fleet-wide ({}), but not here: {}",
                        block.reason, e.message
                    );
                }
            }
            self.agent.record_decision(decision);
        }
    }
}

/// At most [`LINE_KEPT`] bytes of a line, cut at a character boundary, marked when cut.
fn clip(line: &str) -> String {
    if line.len() <= LINE_KEPT {
        return line.to_owned();
    }
    let mut end = LINE_KEPT;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_kept_line_is_cut_at_a_character_and_says_so() {
        let long = "é".repeat(300);
        let kept = super::clip(&long);
        assert!(kept.len() <= super::LINE_KEPT + "…".len(), "bounded");
        assert!(kept.ends_with('…'), "marked as cut");
        assert_eq!(super::clip("short"), "short", "a short line is kept whole");
    }
}
