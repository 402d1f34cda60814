//! [`Console`]: the composition root. It opens the databases and the keychain once and hands
//! each domain the narrow handles it works with; the window's commands and the CLI call the
//! domains (`console.fleet`, `console.rotation`, ...). Only the first screen's summary, which
//! reads every domain, lives here.

use serde::Serialize;
use ts_rs::TS;

use crate::analytics::Analytics;
use crate::audit::AuditLog;
use crate::compliance::Compliance;
use crate::context::Ctx;
use crate::fleet::Fleet;
use crate::incidents::Incidents;
use crate::preferences::Preferences;
use crate::report::Reports;
use crate::rotation::Rotation;
use crate::timeline::Timeline;
use crate::vault::{KeychainState, KeychainStatus};
use crate::{Clock, DataDir, Result, Vault};

/// The console: one handle per domain, over the same data directory, databases, keychain and
/// clock.
#[derive(Debug, Clone)]
pub struct Console {
    ctx: Ctx,
    pub preferences: Preferences,
    pub fleet: Fleet,
    pub timeline: Timeline,
    pub analytics: Analytics,
    pub rotation: Rotation,
    pub compliance: Compliance,
    pub incidents: Incidents,
    /// The agents' own protection: their policy, why an address is blocked, fleet blocks.
    pub protection: crate::protection::Protection,
    pub reports: Reports,
    pub audit: AuditLog,
}

/// The console's views, as the UI and the overview name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum View {
    Fleet,
    Timeline,
    Heatmaps,
    Rotation,
    Compliance,
    Incidents,
    Settings,
}

/// The one status vocabulary used everywhere; the UI pairs each with a word and an icon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Warning,
    Failing,
    Unknown,
}

impl Status {
    /// The word shown next to the status icon, and in the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Failing => "failing",
            Status::Unknown => "unknown",
        }
    }
}

/// One thing that needs the operator's attention, shown on the first screen.
#[derive(Debug, Clone, Serialize, TS)]
pub struct Attention {
    pub view: View,
    pub status: Status,
    pub title: String,
    pub detail: String,
}

/// The first screen's summary across all views.
#[derive(Debug, Clone, Serialize, TS)]
pub struct Overview {
    pub instances: u32,
    pub keychain: KeychainStatus,
    pub attention: Vec<Attention>,
}

impl Console {
    /// Create the data directory if needed and open the databases.
    pub fn open(data_dir: DataDir, vault: Vault) -> Result<Self> {
        Console::open_with_clock(data_dir, vault, Clock::system())
    }

    /// [`Console::open`] with a clock of the caller's choosing.
    pub fn open_with_clock(data_dir: DataDir, vault: Vault, clock: Clock) -> Result<Self> {
        let dir = data_dir.root().to_owned();
        let ctx = Ctx::open(data_dir, vault, clock).map_err(|e| e.explain_disk(&dir))?;
        let preferences = Preferences::new(ctx.clone());
        let fleet = Fleet::new(ctx.clone());
        let analytics = Analytics::new(ctx.clone());
        let timeline = Timeline::new(ctx.clone(), analytics.clone());
        let rotation = Rotation::new(ctx.clone());
        let compliance = Compliance::new(ctx.clone(), rotation.clone(), analytics.clone());
        let incidents = Incidents::new(
            ctx.clone(),
            analytics.clone(),
            rotation.clone(),
            timeline.clone(),
        );
        let reports = Reports::new(
            ctx.clone(),
            compliance.clone(),
            incidents.clone(),
            analytics.clone(),
        );
        let audit = AuditLog::new(ctx.clone());
        let protection = crate::protection::Protection::new(ctx.clone(), incidents.clone());
        Ok(Console {
            ctx,
            preferences,
            fleet,
            timeline,
            analytics,
            rotation,
            compliance,
            incidents,
            protection,
            reports,
            audit,
        })
    }

    pub fn data_dir(&self) -> &DataDir {
        &self.ctx.data_dir
    }

    pub fn vault(&self) -> &Vault {
        &self.ctx.vault
    }

    pub fn clock(&self) -> &Clock {
        &self.ctx.clock
    }

    /// What needs attention across every view, worst first.
    pub fn overview(&self) -> Result<Overview> {
        let instances = self.ctx.db().instances().count()?;
        let keychain = self.preferences.keychain_status();
        let mut attention = Vec::new();
        match keychain.state {
            KeychainState::Available => {}
            KeychainState::Locked => attention.push(Attention {
                view: View::Settings,
                status: Status::Warning,
                title: "The OS keychain is locked".into(),
                detail: keychain.message.clone(),
            }),
            KeychainState::Unavailable => attention.push(Attention {
                view: View::Settings,
                status: Status::Failing,
                title: "No OS keychain is reachable".into(),
                detail: keychain.message.clone(),
            }),
        }
        if let Some(fault) = self.ctx.audit.fault() {
            attention.push(Attention {
                view: View::Settings,
                status: Status::Failing,
                title: "The audit log cannot be written".into(),
                detail: format!(
                    "{fault}. The last action's outcome is not in the log, and actions are \
                     refused until it can be written again."
                ),
            });
        }
        let instances_now = self.fleet.instances()?;
        let mut named = std::collections::BTreeSet::new();
        for instance in &instances_now {
            if matches!(instance.status, Status::Failing | Status::Warning) {
                named.insert(instance.name.clone());
                attention.push(Attention {
                    view: View::Fleet,
                    status: instance.status,
                    title: format!("{} needs attention", instance.name),
                    detail: instance.status_text.clone(),
                });
            }
        }
        // The last pull of events failed: the agent may be stopped even where the last
        // contact said all was well.
        for state in self.timeline.sync_states()? {
            let (Some(error), true) = (&state.last_error, state.failures > 0) else {
                continue;
            };
            let enrolled = instances_now
                .iter()
                .any(|i| i.name == state.instance && !i.revoked);
            if enrolled && !named.contains(&state.instance) {
                attention.push(Attention {
                    view: View::Fleet,
                    status: Status::Failing,
                    title: format!("No new events from {}", state.instance),
                    detail: format!(
                        "The last {} pull(s) of its events failed: {error}",
                        state.failures
                    ),
                });
            }
        }
        let open = self.analytics.alerts(&crate::AlertFilter {
            state: Some(crate::AlertState::New),
            ..Default::default()
        })?;
        if let Some(latest) = open.first() {
            let high = open.iter().any(|a| a.severity == crate::Severity::High);
            attention.push(Attention {
                view: View::Heatmaps,
                status: if high {
                    Status::Failing
                } else {
                    Status::Warning
                },
                // One alert is itself; of many, the detail is only the latest's, and says so.
                title: if open.len() == 1 {
                    format!("New alert: {} on {}", latest.rule_name, latest.instance)
                } else {
                    format!("{} new alerts, not yet acknowledged", open.len())
                },
                detail: if open.len() == 1 {
                    latest.detail.clone()
                } else {
                    format!("Latest: {}", latest.detail)
                },
            });
        }
        if let Some(inventory) = self.rotation.last_inventory() {
            let failing: Vec<&crate::Credential> = inventory
                .credentials
                .iter()
                .filter(|c| c.status == Status::Failing)
                .collect();
            if let Some(first) = failing.first() {
                attention.push(Attention {
                    view: View::Rotation,
                    status: Status::Failing,
                    title: if failing.len() == 1 {
                        format!(
                            "{}{} needs rotating",
                            first.name,
                            first
                                .instance
                                .as_deref()
                                .map(|i| format!(" on {i}"))
                                .unwrap_or_default()
                        )
                    } else {
                        format!("{} credentials need rotating", failing.len())
                    },
                    detail: first.status_text.clone(),
                });
            }
        }
        let failing = self.compliance.compliance(&crate::ComplianceQuery {
            instance: None,
            filter: Some(crate::ItemFilter::Failing),
        })?;
        let items: Vec<&crate::ItemView> = failing
            .instances
            .iter()
            .flat_map(|i| i.items.iter())
            .collect();
        if let Some(first) = items.iter().find(|i| i.reopened).or(items.first()) {
            let reopened = items.iter().filter(|i| i.reopened).count();
            attention.push(Attention {
                view: View::Compliance,
                status: if reopened > 0 {
                    Status::Failing
                } else {
                    Status::Warning
                },
                title: match (reopened, items.len()) {
                    (0, 1) => format!("\"{}\" fails on {}", first.text, first.instance),
                    (0, n) => format!("{n} checklist items fail"),
                    (1, _) => format!("\"{}\" re-opened on {}", first.text, first.instance),
                    (r, _) => format!("{r} checklist items re-opened"),
                },
                detail: first.state_text.clone(),
            });
        }
        if instances == 0 {
            attention.push(Attention {
                view: View::Fleet,
                status: Status::Unknown,
                title: "No instances enrolled yet".into(),
                detail: "Enroll an instance from the Fleet view, or start the demo fleet to \
                         see Gatehouse at work."
                    .into(),
            });
        }
        attention.sort_by_key(|a| severity_rank(a.status));
        Ok(Overview {
            instances,
            keychain,
            attention,
        })
    }
}

fn severity_rank(status: Status) -> u8 {
    match status {
        Status::Failing => 0,
        Status::Warning => 1,
        Status::Unknown => 2,
        Status::Ok => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_orders_failing_first() {
        let mut statuses = [
            Status::Ok,
            Status::Unknown,
            Status::Failing,
            Status::Warning,
        ];
        statuses.sort_by_key(|s| severity_rank(*s));
        assert_eq!(
            statuses,
            [
                Status::Failing,
                Status::Warning,
                Status::Unknown,
                Status::Ok
            ],
            "the first screen lists the worst first"
        );
    }
}
