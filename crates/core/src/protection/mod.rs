//! The agents' own protection, seen from the console: the policy each agent enforces while
//! the console is closed, signed with a key only this console holds (in the keychain), and
//! what the agents decided on their own, pulled onto the timeline and into the alerts.
//!
//! The policy is the detection settings (rules with their responses, allowlist) with a
//! version that grows with every change (`policy_version` in the settings). Each link hands
//! its agent the policy once, and again after every change; an agent that runs a newer
//! version signed by this console (a console whose database was restored) moves the version
//! past it.

use std::collections::HashMap;
use std::sync::PoisonError;

use gatehouse_agent_client::Agent;
use gatehouse_detect::Policy;
use gatehouse_events::Outcome;
use gatehouse_pki::PolicyKey;
use gatehouse_protocol::{self as protocol, Decision, DecisionKind, Enforced};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::analytics::alerts::stored_detection;
use crate::context::Ctx;
use crate::{Error, Result};

/// The keychain entry of the console's policy signing key (Ed25519, PKCS#8).
pub(crate) const POLICY_KEY: &str = "policy.key";
const VERSION_SETTING: &str = "policy_version";
/// Decisions are pulled at most this often per instance (they also come with "Sync now").
const DECISIONS_EVERY_US: i64 = 5_000_000;

/// Which policy an agent runs, as last heard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct AgentPolicy {
    pub instance: String,
    /// None: no policy yet, or the agent could not be asked.
    pub version: Option<u64>,
    pub rules: u32,
    pub blocking_rules: u32,
    /// Why a blocking rule cannot block on that host.
    pub cannot_block: Option<String>,
    /// Why the policy could not be handed over, if so.
    pub error: Option<String>,
}

/// The policy this console hands out and which one each agent runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct PolicyOverview {
    pub version: u64,
    pub agents: Vec<AgentPolicy>,
}

#[derive(Debug, Default)]
pub(crate) struct PolicyLinks {
    key: Option<std::sync::Arc<PolicyKey>>,
    /// The version each linked agent is known to run.
    sent: HashMap<String, u64>,
    status: HashMap<String, AgentPolicy>,
    decisions_pulled_us: HashMap<String, i64>,
}

fn links(ctx: &Ctx) -> std::sync::MutexGuard<'_, PolicyLinks> {
    ctx.policies.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The console's policy key, from the keychain; made on first use.
fn policy_key(ctx: &Ctx) -> Result<std::sync::Arc<PolicyKey>> {
    let mut state = links(ctx);
    if let Some(key) = &state.key {
        return Ok(key.clone());
    }
    let bytes = match ctx.vault.load(POLICY_KEY) {
        Ok(bytes) => bytes,
        Err(Error::SecretNotFound { .. }) => {
            let fresh = PolicyKey::generate()?;
            let bytes = crate::Sensitive::new(fresh.to_vec());
            ctx.vault.store(POLICY_KEY, &bytes)?;
            bytes
        }
        Err(e) => return Err(e),
    };
    let key = std::sync::Arc::new(PolicyKey::from_pkcs8(bytes.expose())?);
    state.key = Some(key.clone());
    Ok(key)
}

fn version(ctx: &Ctx) -> Result<u64> {
    Ok(ctx
        .db()
        .settings()
        .get(VERSION_SETTING)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(1))
}

fn set_version(ctx: &Ctx, version: u64) -> Result<()> {
    ctx.db()
        .settings()
        .set(VERSION_SETTING, &version.to_string())?;
    Ok(())
}

/// A change to what the policy is made of: the next link hands out a new version.
pub(crate) fn bump(ctx: &Ctx) -> Result<()> {
    set_version(ctx, version(ctx)? + 1)
}

/// The policy as of now.
pub(crate) fn current(ctx: &Ctx) -> Result<Policy> {
    let detection = stored_detection(ctx)?;
    Ok(Policy {
        version: version(ctx)?,
        issued_at: ctx.unix(),
        rules: detection.rules,
        allowlist: detection.allowlist,
        recidive: Default::default(),
        blocks: Vec::new(),
    })
}

fn sign(ctx: &Ctx, policy: &Policy) -> Result<protocol::SignedPolicy> {
    let key = policy_key(ctx)?;
    let text = serde_json::to_string(policy).map_err(|e| Error::InvalidInput {
        field: "policy",
        reason: format!("the policy cannot be written: {e}"),
    })?;
    Ok(protocol::SignedPolicy {
        signature: key.sign(text.as_bytes()),
        key: key.public_hex(),
        policy: text,
    })
}

/// Forget which policy `instance`'s agent runs (a new link may be a re-enrolled agent).
pub(crate) fn forget_link(ctx: &Ctx, instance: &str) {
    links(ctx).sent.remove(instance);
}

/// Hand `agent` the current policy unless it runs it already; what became of it is kept for
/// Settings. Never fails the caller: an agent older than policies, or one that refuses, is a
/// state to show, not an error of the link.
pub(crate) async fn link_policy(ctx: &Ctx, instance: &str, agent: &Agent) {
    let status = match hand_over(ctx, instance, agent).await {
        Ok(status) => status,
        Err(e) => {
            tracing::warn!(%instance, error = %e, "the agent's policy could not be handed over");
            AgentPolicy {
                instance: instance.to_owned(),
                version: None,
                rules: 0,
                blocking_rules: 0,
                cannot_block: None,
                error: Some(e.to_string()),
            }
        }
    };
    let mut state = links(ctx);
    match status.version {
        Some(v) if status.error.is_none() => {
            state.sent.insert(instance.to_owned(), v);
        }
        _ => {
            state.sent.remove(instance);
        }
    }
    state.status.insert(instance.to_owned(), status);
}

async fn hand_over(ctx: &Ctx, instance: &str, agent: &Agent) -> Result<AgentPolicy> {
    let mut wanted = version(ctx)?;
    if links(ctx).sent.get(instance) == Some(&wanted) {
        if let Some(status) = links(ctx).status.get(instance) {
            return Ok(status.clone());
        }
    }
    let of = |s: protocol::PolicyStatus, error: Option<String>| AgentPolicy {
        instance: instance.to_owned(),
        version: s.version,
        rules: s.rules,
        blocking_rules: s.blocking_rules,
        cannot_block: s.cannot_block,
        error,
    };
    let running = match agent.policy().await {
        Ok(status) => status,
        Err(gatehouse_agent_client::Error::Refused { code, .. })
            if code == protocol::codes::NOT_FOUND =>
        {
            return Ok(of(
                protocol::PolicyStatus::default(),
                Some("the agent is older than policies: it does not protect its host on its own; update it".into()),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let key = policy_key(ctx)?.public_hex();
    if let (Some(v), Some(theirs)) = (running.version, running.key.as_deref()) {
        if theirs != key {
            return Ok(of(
                running,
                Some("the agent runs a policy signed by another console's key: enroll it again from this console to hand it this one".into()),
            ));
        }
        if v == wanted {
            return Ok(of(running, None));
        }
        if v > wanted {
            // This console's database is older than the policy it once signed.
            wanted = v + 1;
            set_version(ctx, wanted)?;
        }
    }
    let policy = current(ctx)?;
    let signed = sign(
        ctx,
        &Policy {
            version: wanted,
            ..policy
        },
    )?;
    match agent.set_policy(&signed).await {
        Ok(status) => {
            tracing::info!(%instance, version = wanted, "policy handed over");
            Ok(of(status, None))
        }
        Err(e) => Ok(of(running, Some(e.to_string()))),
    }
}

/// The policy and which version each agent runs (Settings).
pub(crate) fn overview(ctx: &Ctx) -> Result<PolicyOverview> {
    let version = version(ctx)?;
    let mut agents: Vec<AgentPolicy> = links(ctx).status.values().cloned().collect();
    agents.sort_by(|a, b| a.instance.cmp(&b.instance));
    Ok(PolicyOverview { version, agents })
}

/// Pull what `instance`'s agent decided since last time onto the timeline and, for blocks
/// and drift, into one alert per pull ("while you were away"). At most every few seconds
/// unless `now`.
pub(crate) async fn pull_decisions(
    ctx: &Ctx,
    instance: &str,
    agent: &Agent,
    now: bool,
) -> Result<usize> {
    let now_us = ctx.micros();
    {
        let mut state = links(ctx);
        let last = state.decisions_pulled_us.get(instance).copied();
        if !now && last.is_some_and(|t| now_us - t < DECISIONS_EVERY_US) {
            return Ok(0);
        }
        state
            .decisions_pulled_us
            .insert(instance.to_owned(), now_us);
    }
    let key = format!("decisions_after/{instance}");
    let after: u64 = ctx
        .db()
        .settings()
        .get(&key)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let page = match agent.decisions(after).await {
        Ok(page) => page,
        // An agent older than decisions has none.
        Err(gatehouse_agent_client::Error::Refused { code, .. })
            if code == protocol::codes::NOT_FOUND =>
        {
            return Ok(0)
        }
        Err(e) => return Err(e.into()),
    };
    // A re-initialised agent numbers its decisions from 1 again.
    let after = if page.head < after { 0 } else { after };
    let fresh: Vec<&Decision> = page.decisions.iter().filter(|d| d.id > after).collect();
    let Some(last) = fresh.last().map(|d| d.id) else {
        return Ok(0);
    };
    for d in &fresh {
        let outcome = match (&d.kind, d.verified) {
            (DecisionKind::Block, true) | (DecisionKind::Drift, true) => Outcome::Success,
            (DecisionKind::Block, false) | (DecisionKind::Drift, false) => Outcome::Failure,
            _ => Outcome::Info,
        };
        ctx.record_alert(instance, outcome, &sentence(d));
    }
    record_summary(ctx, instance, &fresh, now_us)?;
    ctx.db().settings().set(&key, &last.to_string())?;
    Ok(fresh.len())
}

/// "The agent blocked 203.0.113.9 for 10 min (Brute force): …"
pub fn sentence(d: &Decision) -> String {
    let ttl = d
        .ttl_secs
        .map(gatehouse_detect::duration)
        .unwrap_or_default();
    match (&d.kind, d.enforced) {
        (DecisionKind::Block, Enforced::Firewall) if d.verified => format!(
            "The agent blocked {} for {ttl} ({}), verified in the host firewall: {}",
            d.ip, d.rule_name, d.note
        ),
        (DecisionKind::Block, _) => format!(
            "The agent decided to block {} ({}) but it is not blocked: {}",
            d.ip, d.rule_name, d.note
        ),
        (DecisionKind::Alert, _) => format!("The agent saw {} ({}): {}", d.ip, d.rule_name, d.note),
        (DecisionKind::Allowlisted, _) => format!(
            "The agent left {} alone ({}): {}",
            d.ip, d.rule_name, d.note
        ),
        (DecisionKind::Drift, _) => format!("Block drifted: {}", d.note),
    }
}

/// One alert gathering a pull's blocks and drift.
fn record_summary(ctx: &Ctx, instance: &str, decisions: &[&Decision], now_us: i64) -> Result<()> {
    let blocks: Vec<&&Decision> = decisions
        .iter()
        .filter(|d| d.kind == DecisionKind::Block)
        .collect();
    let drift = decisions
        .iter()
        .filter(|d| d.kind == DecisionKind::Drift)
        .count();
    if blocks.is_empty() && drift == 0 {
        return Ok(());
    }
    let unenforced = blocks.iter().filter(|d| !d.verified).count();
    let mut addresses: Vec<&str> = blocks.iter().map(|d| d.ip.as_str()).collect();
    addresses.sort_unstable();
    addresses.dedup();
    let mut detail = String::new();
    if !blocks.is_empty() {
        detail.push_str(&format!(
            "The agent blocked {} address(es) on its own: {}.",
            addresses.len(),
            addresses
                .iter()
                .take(10)
                .copied()
                .collect::<Vec<_>>()
                .join(", ")
        ));
        if addresses.len() > 10 {
            detail.push_str(&format!(" And {} more.", addresses.len() - 10));
        }
    }
    if unenforced > 0 {
        detail.push_str(&format!(
            " {unenforced} could not be enforced here; the timeline says why."
        ));
    }
    if drift > 0 {
        detail.push_str(&format!(
            " {drift} time(s) a block went missing from the firewall and was put back."
        ));
    }
    let first_us = decisions.iter().map(|d| d.time_us).min().unwrap_or(now_us);
    let last_us = decisions.iter().map(|d| d.time_us).max().unwrap_or(now_us);
    let store = ctx.db();
    let alerts = store.alerts();
    let alert = alerts.insert(&gatehouse_store::alerts::NewAlert {
        rule_id: "agent",
        rule_name: "Decided by the agent",
        kind: "agent_decisions",
        severity: if drift > 0 || unenforced > 0 {
            gatehouse_events::Severity::High
        } else {
            gatehouse_events::Severity::Medium
        },
        instance,
        subject: None,
        first_us,
        last_us,
        count: decisions.len() as u64,
        distinct: addresses.len() as u64,
        detail: detail.trim(),
        created_us: now_us,
        rotation_id: None,
    })?;
    alerts.add_addresses(alert.id, &addresses)?;
    Ok(())
}
