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
use gatehouse_detect::{Policy, PolicyBlock};
use gatehouse_events::Outcome;
use gatehouse_pki::PolicyKey;
use gatehouse_protocol::{self as protocol, Decision, DecisionKind, Enforced};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::analytics::alerts::stored_detection;
use crate::context::Ctx;
use crate::{Error, Result};
use gatehouse_store::decisions::DecisionRecord;

/// The keychain entry of the console's policy signing key (Ed25519, PKCS#8).
pub(crate) const POLICY_KEY: &str = "policy.key";
const VERSION_SETTING: &str = "policy_version";
/// Addresses blocked fleet-wide by the operator (`PolicyBlock`s, JSON).
const FLEET_BLOCKS: &str = "fleet_blocks";
/// Allowlist entries with an end (`TemporaryAllow`s, JSON).
const TEMPORARY_ALLOW: &str = "allowlist_temporary";
/// Decisions kept per instance (the newest).
const DECISIONS_KEPT: u32 = 100_000;
/// How far past this console's policy version an agent's may be for the console to follow it
/// (a database restored from an older backup).
const MAX_VERSION_GAP: u64 = 100_000;
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

/// An allowlist entry with an end, and why it was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct TemporaryAllow {
    pub entry: String,
    /// Unix seconds.
    pub until: i64,
    pub reason: String,
}

fn read_list<T: serde::de::DeserializeOwned>(ctx: &Ctx, key: &str) -> Result<Vec<T>> {
    Ok(ctx
        .db()
        .settings()
        .get(key)?
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default())
}

fn write_list<T: Serialize>(ctx: &Ctx, key: &str, list: &[T]) -> Result<()> {
    let json = serde_json::to_string(list).unwrap_or_else(|_| "[]".into());
    ctx.db().settings().set(key, &json)?;
    Ok(())
}

/// The temporary allowlist entries still running at `now`.
pub(crate) fn temporary_allowlist(ctx: &Ctx, now: i64) -> Result<Vec<TemporaryAllow>> {
    Ok(read_list::<TemporaryAllow>(ctx, TEMPORARY_ALLOW)?
        .into_iter()
        .filter(|t| t.until > now)
        .collect())
}

/// The fleet-wide blocks still running at `now`.
fn fleet_blocks(ctx: &Ctx, now: i64) -> Result<Vec<PolicyBlock>> {
    Ok(read_list::<PolicyBlock>(ctx, FLEET_BLOCKS)?
        .into_iter()
        .filter(|b| b.until > now)
        .collect())
}

/// The policy as of now: the rules, the allowlist with the temporary entries still running,
/// and the fleet-wide blocks.
pub(crate) fn current(ctx: &Ctx) -> Result<Policy> {
    let detection = stored_detection(ctx)?;
    let now = ctx.unix();
    let mut allowlist = detection.allowlist;
    allowlist.extend(temporary_allowlist(ctx, now)?.into_iter().map(|t| t.entry));
    Ok(Policy {
        version: version(ctx)?,
        issued_at: now,
        rules: detection.rules,
        allowlist,
        recidive: Default::default(),
        blocks: fleet_blocks(ctx, now)?,
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
            // This console's database is older than the policy it once signed (restored from
            // a backup): go on past it. Not by any amount an agent claims: a hostile agent
            // could otherwise push the fleet's version to the end of its range.
            if v - wanted > MAX_VERSION_GAP {
                return Ok(of(
                    running,
                    Some(format!(
                        "the agent says it runs policy version {v}, far past this console's {wanted}: not followed; enroll the agent again if it is yours"
                    )),
                ));
            }
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
    let after = if page.head < after {
        ctx.db().decisions().forget(instance)?;
        0
    } else {
        after
    };
    let fresh: Vec<&Decision> = page.decisions.iter().filter(|d| d.id > after).collect();
    let Some(last) = fresh.last().map(|d| d.id) else {
        return Ok(0);
    };
    for d in &fresh {
        let record = record_of(instance, d);
        {
            let db = ctx.db();
            db.decisions().put(&record)?;
            if d.kind == DecisionKind::Block && d.verified {
                if let Some(until) = d.until {
                    db.blocks()
                        .placed(instance, &d.ip, d.time_us.div_euclid(1_000_000), until)?;
                }
            }
        }
        let outcome = match (&d.kind, d.verified) {
            (DecisionKind::Block, true) | (DecisionKind::Drift, true) => Outcome::Success,
            (DecisionKind::Block, false) | (DecisionKind::Drift, false) => Outcome::Failure,
            _ => Outcome::Info,
        };
        ctx.record_alert(instance, outcome, &sentence(d));
    }
    ctx.db().decisions().prune(instance, DECISIONS_KEPT)?;
    record_summary(ctx, instance, &fresh, now_us)?;
    ctx.db().settings().set(&key, &last.to_string())?;
    Ok(fresh.len())
}

fn record_of(instance: &str, d: &Decision) -> DecisionRecord {
    DecisionRecord {
        instance: instance.to_owned(),
        agent_id: i64::try_from(d.id).unwrap_or(i64::MAX),
        time_us: d.time_us,
        kind: d.kind.as_str().to_owned(),
        rule_name: d.rule_name.clone(),
        ip: d.ip.clone(),
        ttl_secs: d.ttl_secs.map(i64::from),
        until: d.until,
        enforced: d.enforced.as_str().to_owned(),
        verified: d.verified,
        note: d.note.clone(),
        lines: d.lines.clone(),
    }
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

/// Where an address stands on one instance, asked live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct BlockedHere {
    pub instance: String,
    pub blocked: bool,
    pub expires_in_secs: Option<u64>,
    /// Why the instance could not be asked.
    pub error: Option<String>,
}

/// "Why is this address blocked?": where it is blocked now, every decision about it with the
/// lines behind it, and what would keep it from being blocked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct WhyBlocked {
    pub ip: String,
    pub instances: Vec<BlockedHere>,
    pub decisions: Vec<DecisionRecord>,
    /// The allowlist entry that covers it, if one does (then no agent blocks it).
    pub allowlisted_by: Option<String>,
    /// The operator's fleet-wide block of it, if any.
    pub fleet_block: Option<PolicyBlock>,
}

/// What one instance did with a fleet action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct InstanceOutcome {
    pub instance: String,
    pub ok: bool,
    pub message: String,
}

/// An unblock: everywhere or on one instance, and an optional temporary allowlist entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct UnblockAddress {
    pub ip: String,
    /// None: every instance.
    pub instance: Option<String>,
    /// Allowlist the address for this many hours (agents then never block it), with a reason.
    pub allow_hours: Option<u32>,
    pub reason: String,
}

/// A block of one address on every instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct FleetBlockRequest {
    pub ip: String,
    pub ttl_secs: u32,
    pub reason: String,
}

/// The agents' protection, as the operator acts on it: the policy overview, why an address
/// is blocked, unblocking, and blocking across the fleet.
#[derive(Debug, Clone)]
pub struct Protection {
    ctx: Ctx,
    incidents: crate::Incidents,
}

fn bad(field: &'static str, reason: String) -> Error {
    Error::InvalidInput { field, reason }
}

impl Protection {
    pub(crate) fn new(ctx: Ctx, incidents: crate::Incidents) -> Self {
        Protection { ctx, incidents }
    }

    /// The policy and which version each agent runs.
    pub fn policy_overview(&self) -> Result<PolicyOverview> {
        overview(&self.ctx)
    }

    fn instances(&self, only: Option<&str>) -> Result<Vec<String>> {
        let all: Vec<String> = self
            .ctx
            .db()
            .instances()
            .all()?
            .into_iter()
            .filter(|r| r.revoked_at.is_none())
            .map(|r| r.name)
            .collect();
        match only {
            Some(name) if all.iter().any(|n| n == name) => Ok(vec![name.to_owned()]),
            Some(name) => Err(Error::InstanceNotFound(name.to_owned())),
            None => Ok(all),
        }
    }

    /// Why `ip` is blocked: asked of every instance now, with every decision kept about it.
    pub async fn why_blocked(&self, ip: &str) -> Result<WhyBlocked> {
        use futures_util::stream::{self, StreamExt};
        let ip = canonical(ip)?;
        // Decisions pulled now, so the answer is as fresh as the agents'.
        let names = self.instances(None)?;
        let asked: Vec<BlockedHere> = stream::iter(names)
            .map(|name| {
                let ip = ip.clone();
                async move {
                    let answer = async {
                        let record = self.ctx.instance(&name)?;
                        let agent = self.ctx.agent(&record).await?;
                        if let Err(e) = pull_decisions(&self.ctx, &name, &agent, true).await {
                            tracing::warn!(instance = %name, error = %e, "decisions not pulled");
                        }
                        Ok::<_, Error>(agent.blocked().await?)
                    };
                    match tokio::time::timeout(std::time::Duration::from_secs(10), answer).await {
                        Ok(Ok(list)) => {
                            let here = list.blocked.iter().find(|b| b.ip == ip);
                            BlockedHere {
                                instance: name,
                                blocked: here.is_some(),
                                expires_in_secs: here.map(|b| b.expires_in_secs),
                                error: None,
                            }
                        }
                        Ok(Err(e)) => BlockedHere {
                            instance: name,
                            blocked: false,
                            expires_in_secs: None,
                            error: Some(e.to_string()),
                        },
                        Err(_) => BlockedHere {
                            instance: name,
                            blocked: false,
                            expires_in_secs: None,
                            error: Some("the agent did not answer within 10 s".into()),
                        },
                    }
                }
            })
            .buffer_unordered(crate::REFRESH_CONCURRENCY)
            .collect()
            .await;
        let mut instances = asked;
        instances.sort_by(|a, b| a.instance.cmp(&b.instance));
        let now = self.ctx.unix();
        let mut allow = stored_detection(&self.ctx)?.allowlist;
        allow.extend(
            temporary_allowlist(&self.ctx, now)?
                .into_iter()
                .map(|t| t.entry),
        );
        let parsed: std::net::IpAddr = ip
            .parse()
            .map_err(|_| bad("ip", format!("{ip:?} is not an IP address")))?;
        let allowlisted_by = allow
            .into_iter()
            .find(|e| gatehouse_detect::allowlist::covers(e, parsed));
        let fleet_block = fleet_blocks(&self.ctx, now)?
            .into_iter()
            .find(|b| b.ip == ip);
        let decisions = self.ctx.db().decisions().about(&ip, 200)?;
        Ok(WhyBlocked {
            ip,
            instances,
            decisions,
            allowlisted_by,
            fleet_block,
        })
    }

    /// Lift the block on `request.ip` on one instance or every one (each audited), drop it
    /// from the fleet-wide blocks, and optionally allowlist it for some hours.
    pub async fn unblock(&self, request: &UnblockAddress) -> Result<Vec<InstanceOutcome>> {
        let ip = canonical(&request.ip)?;
        let now = self.ctx.unix();
        let mut changed_policy = false;
        if request.instance.is_none() {
            let mut blocks: Vec<PolicyBlock> = read_list(&self.ctx, FLEET_BLOCKS)?;
            let before = blocks.len();
            blocks.retain(|b| b.ip != ip && b.until > now);
            if blocks.len() != before {
                write_list(&self.ctx, FLEET_BLOCKS, &blocks)?;
                changed_policy = true;
            }
        }
        if let Some(hours) = request.allow_hours {
            if !(1..=24 * 90).contains(&hours) || request.reason.trim().is_empty() {
                return Err(bad(
                    "allow",
                    "a temporary allowlist entry lasts 1 hour to 90 days and needs a reason".into(),
                ));
            }
            let until = now + i64::from(hours) * 3600;
            self.ctx.audit(
                "allowlist_temporary",
                "fleet",
                &format!("allowlist {ip} until {until}: {}", request.reason.trim()),
            )?;
            let mut list: Vec<TemporaryAllow> = read_list(&self.ctx, TEMPORARY_ALLOW)?;
            list.retain(|t| t.until > now && t.entry != ip);
            list.push(TemporaryAllow {
                entry: ip.clone(),
                until,
                reason: request.reason.trim().to_owned(),
            });
            write_list(&self.ctx, TEMPORARY_ALLOW, &list)?;
            changed_policy = true;
        }
        if changed_policy {
            bump(&self.ctx)?;
        }
        let mut out = Vec::new();
        for name in self.instances(request.instance.as_deref())? {
            let outcome = match self.incidents.unblock_ip(&name, &ip).await {
                Ok(result) => InstanceOutcome {
                    instance: name.clone(),
                    ok: !result.blocked,
                    message: result.steps.join("; "),
                },
                Err(e) => InstanceOutcome {
                    instance: name.clone(),
                    ok: false,
                    message: e.to_string(),
                },
            };
            // The agents learn of the allowlist entry and the dropped fleet block now.
            if changed_policy {
                if let Ok(record) = self.ctx.instance(&name) {
                    if let Ok(agent) = self.ctx.agent(&record).await {
                        link_policy(&self.ctx, &name, &agent).await;
                    }
                }
            }
            out.push(outcome);
        }
        Ok(out)
    }

    /// Block `request.ip` on every instance now (each verified, each audited) and add it to
    /// the policy, so every agent keeps enforcing it while the console is closed, and one
    /// linked later applies it too.
    pub async fn block_everywhere(
        &self,
        request: &FleetBlockRequest,
    ) -> Result<Vec<InstanceOutcome>> {
        let ip = canonical(&request.ip)?;
        if request.reason.trim().is_empty() {
            return Err(bad(
                "reason",
                "say why the address is blocked everywhere".into(),
            ));
        }
        if !(60..=gatehouse_detect::MAX_BLOCK_SECS).contains(&request.ttl_secs) {
            return Err(bad("ttl", "a block lasts 1 minute to 30 days".into()));
        }
        let now = self.ctx.unix();
        let until = now + i64::from(request.ttl_secs);
        self.ctx.audit(
            "fleet_block",
            "fleet",
            &format!(
                "block {ip} on every instance until {until}: {}",
                request.reason.trim()
            ),
        )?;
        let mut blocks: Vec<PolicyBlock> = read_list(&self.ctx, FLEET_BLOCKS)?;
        blocks.retain(|b| b.ip != ip && b.until > now);
        blocks.push(PolicyBlock {
            ip: ip.clone(),
            until,
            reason: request.reason.trim().to_owned(),
        });
        write_list(&self.ctx, FLEET_BLOCKS, &blocks)?;
        bump(&self.ctx)?;
        let mut out = Vec::new();
        for name in self.instances(None)? {
            let outcome = match self
                .incidents
                .block_ip(&name, &ip, u64::from(request.ttl_secs), true)
                .await
            {
                Ok(result) => InstanceOutcome {
                    instance: name.clone(),
                    ok: result.blocked,
                    message: result.steps.last().cloned().unwrap_or_default(),
                },
                Err(e) => InstanceOutcome {
                    instance: name.clone(),
                    ok: false,
                    message: e.to_string(),
                },
            };
            if let Ok(record) = self.ctx.instance(&name) {
                if let Ok(agent) = self.ctx.agent(&record).await {
                    link_policy(&self.ctx, &name, &agent).await;
                }
            }
            out.push(outcome);
        }
        Ok(out)
    }
}

/// The address as the agents spell it (an IPv4 address written as IPv6 is the IPv4 one).
fn canonical(ip: &str) -> Result<String> {
    ip.trim()
        .parse::<std::net::IpAddr>()
        .map(|a| a.to_canonical().to_string())
        .map_err(|_| bad("ip", format!("{:?} is not an IP address", ip.trim())))
}

/// Rules and an allowlist to try before saving them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ReplayRequest {
    pub rules: Vec<gatehouse_detect::Rule>,
    pub allowlist: Vec<String>,
}

/// What one rule would have done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct RuleReplay {
    pub rule_id: String,
    pub rule_name: String,
    /// Episodes it would have fired (alerts in the console).
    pub firings: u32,
    /// Distinct addresses those were about.
    pub addresses: u32,
    /// Blocks the agents would have made (per-address rules that block).
    pub blocks: u32,
    /// A few of the firings: instance, address (empty for the whole instance), when, failures.
    pub examples: Vec<ReplayExample>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ReplayExample {
    pub instance: String,
    pub ip: String,
    #[ts(type = "number")]
    pub first_us: i64,
    #[ts(type = "number")]
    pub count: u64,
}

/// What the allowlist would have kept quiet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct AllowReplay {
    pub entry: String,
    /// Failed sign-ins from addresses it covers.
    #[ts(type = "number")]
    pub failures: u64,
    /// Firings that would have happened without the allowlist and do not with it.
    pub firings_suppressed: u32,
}

/// The rules and allowlist run over the stored failed sign-ins of the last 30 days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ReplayReport {
    #[ts(type = "number")]
    pub from_us: i64,
    #[ts(type = "number")]
    pub to_us: i64,
    #[ts(type = "number")]
    pub failures: u64,
    /// Whether the failures read were cut at [`REPLAY_MOST`].
    pub capped: bool,
    pub rules: Vec<RuleReplay>,
    pub allowlist: Vec<AllowReplay>,
}

/// The most stored failures a replay reads.
pub const REPLAY_MOST: usize = 1_000_000;
const REPLAY_DAYS: i64 = 30;

/// One instance's failures, oldest first: time, address, key prefix, counted.
type Failures = Vec<(i64, Option<String>, Option<String>, bool)>;

impl Protection {
    /// What `request`'s rules would have fired and blocked, and what its allowlist would have
    /// suppressed, over the failed sign-ins stored for the last 30 days.
    pub async fn replay(&self, request: ReplayRequest) -> Result<ReplayReport> {
        for rule in &request.rules {
            rule.validate().map_err(|reason| bad("rules", reason))?;
        }
        for entry in &request.allowlist {
            gatehouse_detect::allowlist::check(entry).map_err(|reason| bad("allowlist", reason))?;
        }
        let ctx = self.ctx.clone();
        tokio::task::spawn_blocking(move || replay(&ctx, &request))
            .await
            .map_err(|e| bad("rules", format!("the replay stopped: {e}")))?
    }
}

fn replay(ctx: &Ctx, request: &ReplayRequest) -> Result<ReplayReport> {
    use gatehouse_events::{Kind, Outcome};
    let to_us = ctx.micros();
    let from_us = to_us - REPLAY_DAYS * 86_400 * 1_000_000;
    let instances: Vec<(String, String)> = ctx
        .db()
        .instances()
        .all()?
        .into_iter()
        .map(|r| (r.name, r.profile))
        .collect();
    let mut read = 0usize;
    let mut capped = false;
    let mut per_instance: Vec<(String, String, Failures)> = Vec::new();
    for (instance, profile) in instances {
        let mut events = ctx.events();
        events.refresh()?;
        let counting = events.counting_source(&instance)?;
        let filter = gatehouse_store::events::EventFilter {
            from_us: Some(from_us),
            to_us: Some(to_us),
            instance: Some(instance.clone()),
            kind: Some(Kind::Auth),
            outcome: Some(Outcome::Failure),
            ..Default::default()
        };
        let mut failures: Failures = Vec::new();
        let mut before = None;
        loop {
            let page = events.page(&filter, &[], before.as_ref(), 1000)?;
            for e in &page.events {
                if e.flags & protocol::flags::PROBE != 0 {
                    continue;
                }
                failures.push((
                    e.time_us,
                    e.ip.clone(),
                    e.key_prefix.clone(),
                    counting.as_deref() == Some(e.source.as_str()),
                ));
            }
            read += page.events.len();
            if read >= REPLAY_MOST {
                capped = true;
                break;
            }
            match page.next {
                Some(next) => before = Some(next),
                None => break,
            }
        }
        drop(events);
        failures.reverse();
        per_instance.push((instance, profile, failures));
        if capped {
            break;
        }
    }
    let run = |allow: &[String]| {
        let mut detector = gatehouse_detect::Detector::new();
        let mut firings: Vec<gatehouse_detect::Firing> = Vec::new();
        for (instance, profile, failures) in &per_instance {
            let rules = gatehouse_detect::rules_for(&request.rules, profile);
            let attempts: Vec<gatehouse_detect::Attempt<'_>> = failures
                .iter()
                .filter(|(_, ip, _, _)| {
                    ip.as_deref()
                        .is_none_or(|ip| !gatehouse_detect::allowlist::allowlisted(allow, ip))
                })
                .map(|(time_us, ip, key, counted)| gatehouse_detect::Attempt {
                    time_us: *time_us,
                    ip: ip.as_deref(),
                    key_prefix: key.as_deref(),
                    counted: *counted,
                })
                .collect();
            for chunk in attempts.chunks(10_000) {
                firings.extend(
                    detector
                        .observe(instance, &rules, chunk, 0.0)
                        .into_iter()
                        .filter(|f| f.new),
                );
            }
        }
        firings
    };
    let with = run(&request.allowlist);
    let without = if request.allowlist.is_empty() {
        Vec::new()
    } else {
        run(&[])
    };
    let rules = request
        .rules
        .iter()
        .map(|rule| {
            let mine: Vec<&gatehouse_detect::Firing> =
                with.iter().filter(|f| f.rule_id == rule.id).collect();
            let mut addresses: Vec<&str> =
                mine.iter().filter_map(|f| f.subject.as_deref()).collect();
            addresses.sort_unstable();
            addresses.dedup();
            let blocks = match rule.response {
                gatehouse_detect::Response::Block { .. } => {
                    mine.iter().filter(|f| f.subject.is_some()).count()
                }
                _ => 0,
            };
            RuleReplay {
                rule_id: rule.id.clone(),
                rule_name: rule.name.clone(),
                firings: u32::try_from(mine.len()).unwrap_or(u32::MAX),
                addresses: u32::try_from(addresses.len()).unwrap_or(u32::MAX),
                blocks: u32::try_from(blocks).unwrap_or(u32::MAX),
                examples: mine
                    .iter()
                    .rev()
                    .take(5)
                    .map(|f| ReplayExample {
                        instance: f.instance.clone(),
                        ip: f.subject.clone().unwrap_or_default(),
                        first_us: f.first_us,
                        count: f.count,
                    })
                    .collect(),
            }
        })
        .collect();
    let allowlist = request
        .allowlist
        .iter()
        .map(|entry| {
            let covered = |ip: &str| {
                ip.parse::<std::net::IpAddr>()
                    .is_ok_and(|a| gatehouse_detect::allowlist::covers(entry, a))
            };
            let failures = per_instance
                .iter()
                .flat_map(|(_, _, f)| f)
                .filter(|(_, ip, _, _)| ip.as_deref().is_some_and(covered))
                .count() as u64;
            let suppressed = without
                .iter()
                .filter(|f| f.subject.as_deref().is_some_and(covered))
                .count();
            AllowReplay {
                entry: entry.clone(),
                failures,
                firings_suppressed: u32::try_from(suppressed).unwrap_or(u32::MAX),
            }
        })
        .collect();
    Ok(ReplayReport {
        from_us,
        to_us,
        failures: per_instance.iter().map(|(_, _, f)| f.len() as u64).sum(),
        capped,
        rules,
        allowlist,
    })
}
