//! Pulling events from agents into the timeline: per instance, scheduled and on demand, with
//! back-off while an agent is down, and a visible sync state.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use gatehouse_protocol as protocol;
use gatehouse_store::events::Pulled;

use super::Timeline;
use crate::{Error, Result};

/// Pages pulled from one agent per sync, so one busy agent cannot hold up the others; the
/// next sync carries on where this one stopped.
const MAX_PAGES_PER_SYNC: usize = 20;
/// Back-off after failures: 5 s doubling to 5 minutes.
const BACKOFF_START: Duration = Duration::from_secs(5);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// When each failing instance may be tried again.
#[derive(Debug, Default)]
pub(super) struct Backoff {
    next_try: HashMap<String, (u32, Instant)>,
}

impl Backoff {
    fn ready(&self, name: &str, now: Instant) -> bool {
        self.next_try.get(name).is_none_or(|(_, at)| now >= *at)
    }

    fn failed(&mut self, name: &str, now: Instant) {
        let failures = self.next_try.get(name).map_or(0, |(n, _)| *n) + 1;
        let delay = BACKOFF_START
            .saturating_mul(1 << failures.min(10).saturating_sub(1))
            .min(BACKOFF_MAX);
        self.next_try
            .insert(name.to_owned(), (failures, now + delay));
    }

    fn succeeded(&mut self, name: &str) {
        self.next_try.remove(name);
    }
}

impl Timeline {
    /// The instances a follower should run for now: enrolled, not revoked, and not waiting
    /// out a back-off after failed pulls.
    pub fn followable(&self) -> Result<Vec<String>> {
        let now = Instant::now();
        let backoff = self
            .backoff
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(self
            .ctx
            .db()
            .instances()
            .all()?
            .into_iter()
            .filter(|r| r.revoked_at.is_none() && backoff.ready(&r.name, now))
            .map(|r| r.name)
            .collect())
    }

    /// Follow one instance: ask its agent to answer as soon as it has events after the
    /// stored position (or after `wait`), then pull them, so a line reaches the console
    /// within the agent's poll of its logs, not at the next scheduled pull. The wait holds no
    /// lock: "Sync now" and the CLI pull meanwhile as usual. Returns how many were stored.
    pub async fn follow_instance(&self, name: &str, wait: Duration) -> Result<u64> {
        let waited = async {
            let record = self.ctx.instance(name)?;
            if record.revoked_at.is_some() {
                return Err(Error::InstanceRevoked(name.to_owned()));
            }
            let after = self.ctx.events().sync_state(name)?.map_or(0, |s| s.after);
            let agent = self.ctx.agent(&record).await?;
            agent.events_waiting(after, 1, wait).await?;
            Ok(())
        }
        .await;
        if let Err(e) = waited {
            self.backoff
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .failed(name, Instant::now());
            // Shown as the instance's sync state, as a failed pull is.
            self.ctx
                .events()
                .record_sync_failure(name, &e.to_string())?;
            return Err(e);
        }
        self.sync_instance(name).await
    }

    /// Pull new events from one instance's agent. Returns how many were stored.
    pub async fn sync_instance(&self, name: &str) -> Result<u64> {
        // One pull per instance at a time (the schedule, "Sync now", a CLI run in the same
        // process): two would read the same position and count rollups twice.
        let lock = {
            let mut locks = self
                .pulling
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            locks.entry(name.to_owned()).or_default().clone()
        };
        let _pulling = lock.lock().await;
        let result = self.pull(name).await;
        let now = Instant::now();
        let mut backoff = self
            .backoff
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &result {
            Ok(_) => backoff.succeeded(name),
            Err(e) => {
                backoff.failed(name, now);
                drop(backoff);
                self.ctx
                    .events()
                    .record_sync_failure(name, &e.to_string())?;
            }
        }
        result
    }

    /// Sync every instance that is not revoked and not backing off, a few at a time.
    pub async fn sync_all(&self) -> Result<u64> {
        Ok(self.sync_all_reporting().await?.events)
    }

    /// [`sync_all`](Self::sync_all), saying which instances could not be pulled and why
    /// (each is also kept in its sync state, for the window and `overview`).
    pub async fn sync_all_reporting(&self) -> Result<SyncReport> {
        use futures_util::stream::{self, StreamExt};
        let names = self.followable()?;
        let counts: Vec<(String, Result<u64>)> = stream::iter(names)
            .map(|name| async move {
                let count = self.sync_instance(&name).await;
                (name, count)
            })
            .buffer_unordered(crate::REFRESH_CONCURRENCY)
            .collect()
            .await;
        // One agent's failure is recorded in its sync state; it does not fail the others.
        let mut report = SyncReport::default();
        for (instance, count) in counts {
            match count {
                Ok(n) => report.events += n,
                Err(e) => {
                    tracing::warn!(%instance, error = %e, "events could not be pulled");
                    report.failed.push(SyncFailure {
                        instance,
                        message: e.to_string(),
                    });
                }
            }
        }
        report.failed.sort_by(|a, b| a.instance.cmp(&b.instance));
        Ok(report)
    }

    async fn pull(&self, name: &str) -> Result<u64> {
        let record = self.ctx.instance(name)?;
        if record.revoked_at.is_some() {
            return Err(Error::InstanceRevoked(name.to_owned()));
        }
        let mut after = self.ctx.events().sync_state(name)?.map_or(0, |s| s.after);
        let mut batch: Vec<Pulled> = Vec::new();
        let agent = self.ctx.agent(&record).await?;
        for _ in 0..MAX_PAGES_PER_SYNC {
            let page = agent.events(after, protocol::MAX_EVENTS_PAGE).await?;
            if page.head < after {
                // The agent's buffer was recreated (re-initialised host): start again from 0.
                batch.clear();
                after = 0;
                self.ctx.events().forget_instance(name)?;
                self.ctx.record_action(
                    name,
                    gatehouse_events::Outcome::Info,
                    "The agent's event sequence restarted (its buffer was recreated); reading it from the start.",
                );
                continue;
            }
            // A page ends at a count or at the body cap; the head says whether more remain.
            let more = page.events.last().is_some_and(|e| e.seq < page.head);
            let dropped = page.oldest.saturating_sub(after + 1);
            let next_after = page.events.last().map_or(after, |e| e.seq);
            batch.push(Pulled {
                events: page.events,
                after,
                dropped,
            });
            after = next_after;
            if !more {
                break;
            }
        }
        let stored = batch.iter().map(|p| p.events.len() as u64).sum();
        let now_us = self.ctx.micros();
        let stored_before = self.ctx.events().ingest(name, &batch, now_us)?;
        // The events are stored whatever the rules make of them.
        if let Err(e) = self
            .analytics
            .detect(name, &record.profile, &batch, stored_before)
        {
            tracing::error!(instance = name, error = %e, "detection failed on a synced batch");
        }
        // The audit log's newest row, kept beside the instance (see crate::audit). The events
        // are stored whatever becomes of it.
        if let Err(e) = crate::audit::anchor(&self.ctx, name, &agent).await {
            tracing::warn!(instance = name, error = %e, "the audit log could not be anchored");
        }
        // The policy after a change, and what the agent decided on its own since last time.
        crate::protection::link_policy(&self.ctx, name, &agent).await;
        if let Err(e) = crate::protection::pull_decisions(&self.ctx, name, &agent, false).await {
            tracing::warn!(instance = name, error = %e, "the agent's decisions could not be pulled");
        }
        Ok(stored)
    }
}

/// What one pull from every agent brought, and which could not be pulled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Events stored.
    pub events: u64,
    pub failed: Vec<SyncFailure>,
}

/// An instance whose events could not be pulled, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncFailure {
    pub instance: String,
    pub message: String,
}
