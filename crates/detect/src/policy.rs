//! The policy a console sends its agents: what each rule makes the agent do on its host, the
//! allowlist, how repeat offenders are treated and the blocks the operator asked for
//! fleet-wide. Versioned; the console signs it (see `gatehouse_pki::policy`).

use serde::{Deserialize, Serialize};

use crate::{allowlist, Rule};

/// The longest block a rule or the operator may ask for.
pub const MAX_BLOCK_SECS: u32 = 30 * 86_400;
/// The largest policy document an agent reads.
pub const MAX_POLICY_BYTES: usize = 1 << 20;

/// What an agent does on its host when a rule fires there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "HostResponse"))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Response {
    /// Nothing on the host: only an open console alerts.
    Off,
    /// The agent records the firing as a decision the console shows when it connects.
    #[default]
    Alert,
    /// The agent blocks the address for `ttl_secs` (longer for a repeat offender, see
    /// [`Recidive`]) and proves the block is in place.
    Block { ttl_secs: u32 },
}

/// Repeat offenders: each block of an address within `memory_secs` of an earlier one lasts
/// `factor` times the one before, up to `max_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Recidive {
    pub factor: u32,
    pub max_secs: u32,
    pub memory_secs: u32,
}

impl Default for Recidive {
    fn default() -> Self {
        Recidive {
            factor: 2,
            max_secs: 7 * 86_400,
            memory_secs: 30 * 86_400,
        }
    }
}

impl Recidive {
    /// How long a block lasts for an address blocked `previous` times within the memory,
    /// given the rule's `base`: never shorter than the base, never longer than the cap (or
    /// the base, if that is longer).
    pub fn ttl(&self, base: u32, previous: u32) -> u32 {
        let cap = self.max_secs.max(base);
        let mut ttl = u64::from(base);
        for _ in 0..previous.min(64) {
            ttl = ttl.saturating_mul(u64::from(self.factor.max(1)));
            if ttl >= u64::from(cap) {
                return cap;
            }
        }
        u32::try_from(ttl).unwrap_or(cap).min(cap)
    }
}

/// An address the operator blocked on every instance, until `until` (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PolicyBlock {
    pub ip: String,
    pub until: i64,
    pub reason: String,
}

/// Everything an agent enforces while no console is there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Grows with every change; an agent runs only a newer one than it has.
    pub version: u64,
    /// When the console issued it (Unix seconds).
    pub issued_at: i64,
    pub rules: Vec<Rule>,
    pub allowlist: Vec<String>,
    #[serde(default)]
    pub recidive: Recidive,
    #[serde(default)]
    pub blocks: Vec<PolicyBlock>,
}

impl Policy {
    /// Check every value, as the console does before signing and the agent after verifying.
    pub fn validate(&self) -> Result<(), String> {
        if self.version == 0 {
            return Err("a policy's version starts at 1".into());
        }
        let mut ids: Vec<&str> = Vec::with_capacity(self.rules.len());
        for rule in &self.rules {
            rule.validate()?;
            ids.push(&rule.id);
        }
        ids.sort_unstable();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("two rules share the id \"{}\"", w[0]));
        }
        for entry in &self.allowlist {
            allowlist::check(entry)?;
        }
        let r = self.recidive;
        if !(1..=16).contains(&r.factor) || r.max_secs > MAX_BLOCK_SECS || r.memory_secs == 0 {
            return Err(format!(
                "repeat offenders: a factor of 1 to 16, a cap of at most 30 days and a memory of more than nothing, not {} / {} s / {} s",
                r.factor, r.max_secs, r.memory_secs
            ));
        }
        for block in &self.blocks {
            if block.ip.parse::<std::net::IpAddr>().is_err() {
                return Err(format!("\"{}\" is not an address to block", block.ip));
            }
        }
        Ok(())
    }
}

/// "10 min", "1 h", "2 d", "90 s".
pub fn duration(secs: u32) -> String {
    if secs >= 86_400 && secs % 86_400 == 0 {
        format!("{} d", secs / 86_400)
    } else if secs >= 3600 && secs % 3600 == 0 {
        format!("{} h", secs / 3600)
    } else if secs >= 60 && secs % 60 == 0 {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeat_offenders_are_blocked_longer_each_time_up_to_the_cap() {
        let r = Recidive {
            factor: 2,
            max_secs: 86_400,
            memory_secs: 30 * 86_400,
        };
        assert_eq!(r.ttl(3600, 0), 3600, "a first block lasts the rule's time");
        assert_eq!(r.ttl(3600, 1), 7200, "the second twice as long");
        assert_eq!(r.ttl(3600, 3), 28_800, "the fourth eight times");
        assert_eq!(r.ttl(3600, 5), 86_400, "never past the cap");
        assert_eq!(r.ttl(3600, u32::MAX), 86_400, "however many there were");
        assert_eq!(
            r.ttl(2 * 86_400, 3),
            2 * 86_400,
            "a rule asking for more than the cap keeps its own time"
        );
    }

    #[test]
    fn a_policy_with_a_bad_value_is_refused_in_words() {
        let good = Policy {
            version: 3,
            issued_at: 0,
            rules: crate::default_rules(),
            allowlist: vec!["192.0.2.0/24".into()],
            recidive: Recidive::default(),
            blocks: vec![],
        };
        good.validate().expect("the defaults make a valid policy");
        let mut bad = good.clone();
        bad.allowlist.push("nowhere".into());
        assert!(
            bad.validate().expect_err("bad entry").contains("nowhere"),
            "the refusal names the bad allowlist entry"
        );
        let mut bad = good.clone();
        bad.rules[0].response = Response::Block { ttl_secs: 5 };
        assert!(
            bad.validate()
                .expect_err("5 s")
                .contains("between 1 minute"),
            "a block too short to matter is refused"
        );
        let mut bad = good.clone();
        bad.rules.push(bad.rules[0].clone());
        assert!(
            bad.validate().expect_err("dup").contains("share the id"),
            "two rules with one id are refused: alerts and decisions name rules by id"
        );
        let mut bad = good;
        bad.version = 0;
        assert!(bad.validate().is_err(), "version 0 is no version");
    }
}
