//! The console's clockwork: the jobs that run whether or not anyone is looking (pulling
//! events, contacting the fleet, renewing certificates, warning of due credentials, running
//! the compliance checks). One task per job, so a slow compliance run (up to 90 s per
//! instance) never delays the one-second sync. The window runs it while open; `gatehouse
//! serve` runs it headless.

use std::future::Future;
use std::time::Duration;

use crate::{Burst, Console, DueNotice};

/// How often each job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intervals {
    /// Pull new events from every agent.
    pub sync: Duration,
    /// Contact every agent (health, version).
    pub refresh: Duration,
    /// Renew certificates past two thirds of their life, and warn of due credentials.
    pub renew: Duration,
    /// Run the automated compliance checks (the rate-limit burst at most daily).
    pub checks: Duration,
    /// The first compliance run waits this long: not while the window is opening.
    pub checks_after: Duration,
}

impl Default for Intervals {
    fn default() -> Self {
        Intervals {
            sync: Duration::from_secs(1),
            refresh: Duration::from_secs(60),
            renew: Duration::from_secs(15 * 60),
            checks: Duration::from_secs(60 * 60),
            checks_after: Duration::from_secs(120),
        }
    }
}

/// Run every job until the returned future is dropped. `on_due` is told of each credential
/// reaching a warning threshold (the window shows a desktop notification); it runs on the
/// renewal job's task, so it must not block.
pub async fn run(
    console: Console,
    intervals: Intervals,
    on_due: impl Fn(DueNotice) + Send + Sync + 'static,
) {
    let jobs = vec![
        Box::pin(follow(console.clone(), intervals.sync)),
        every(intervals.refresh, Duration::ZERO, {
            let console = console.clone();
            move || {
                let console = console.clone();
                async move {
                    if let Err(e) = console.fleet.refresh_all().await {
                        tracing::warn!(error = %e, "scheduled refresh failed");
                    }
                    // A rotation the console never heard the end of is settled as soon as
                    // its agent can say, not only when its key is next touched.
                    if let Err(e) = console.rotation.resolve_pending_rotations().await {
                        tracing::warn!(error = %e, "pending rotations could not be settled");
                    }
                }
            }
        }),
        every(intervals.checks, intervals.checks_after, {
            let console = console.clone();
            move || {
                let console = console.clone();
                async move {
                    match console.compliance.run_checks(None, Burst::Daily).await {
                        Ok(run) if !run.reopened.is_empty() => {
                            tracing::warn!(reopened = ?run.reopened, "compliance items re-opened");
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "scheduled compliance checks failed"),
                    }
                }
            }
        }),
        every(intervals.renew, Duration::ZERO, {
            let console = console.clone();
            let on_due = std::sync::Arc::new(on_due);
            move || {
                let console = console.clone();
                let on_due = on_due.clone();
                async move {
                    match console.fleet.renew_due().await {
                        Ok(renewed) if !renewed.is_empty() => {
                            tracing::info!(?renewed, "certificates renewed");
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "scheduled renewal failed"),
                    }
                    match console.rotation.due_warnings().await {
                        Ok(notices) => notices.into_iter().for_each(|n| on_due(n)),
                        Err(e) => {
                            tracing::warn!(error = %e, "checking rotation due dates failed");
                        }
                    }
                }
            }
        }),
    ];
    let tasks: Vec<tokio::task::JoinHandle<()>> = jobs.into_iter().map(tokio::spawn).collect();
    // The tasks end with this future: dropping it (the window closing, Ctrl-C) stops them.
    let _stop = AbortOnDrop(tasks);
    std::future::pending::<()>().await;
}

/// How long an agent holds a follower's pull when it has nothing new.
const FOLLOW_WAIT: Duration = Duration::from_secs(5);

/// A follower per instance: a pull the agent holds until it has new events, so a line reaches
/// the console within the agent's poll of its logs, not at the next pull (`Timeline::
/// follow_instance`). Every `period`, an instance without a follower gets one (a new
/// enrollment, an agent back after its back-off); a follower whose pull fails ends, and the
/// back-off decides when the next starts. An agent that answers at once although asked to
/// wait (older than waiting) is pulled every `period`.
async fn follow(console: Console, period: Duration) {
    let following: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>> =
        std::sync::Arc::default();
    let mut followers = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        while followers.try_join_next().is_some() {}
        let names = match console.timeline.followable() {
            Ok(names) => names,
            Err(e) => {
                tracing::warn!(error = %e, "the instances to follow could not be read");
                continue;
            }
        };
        for name in names {
            if !crate::lock(&following).insert(name.clone()) {
                continue;
            }
            let (console, following) = (console.clone(), following.clone());
            followers.spawn(async move {
                loop {
                    let asked = tokio::time::Instant::now();
                    match console.timeline.follow_instance(&name, FOLLOW_WAIT).await {
                        Ok(0) if asked.elapsed() < FOLLOW_WAIT / 2 => {
                            tokio::time::sleep(period).await;
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(instance = %name, error = %e, "following the agent failed");
                            break;
                        }
                    }
                }
                crate::lock(&following).remove(&name);
            });
        }
    }
}

/// Run `job` every `period` (after `first`), one run at a time: a run that overruns delays the
/// next instead of piling up.
fn every<F, Fut>(period: Duration, first: Duration, job: F) -> Job
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Box::pin(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + first, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            job().await;
        }
    })
}

type Job = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}
