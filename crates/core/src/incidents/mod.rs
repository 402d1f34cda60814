//! Incidents: started from an alert, an offender or by hand, each with its context (instances,
//! addresses, a time window), a severity, a status and an owner, the playbook of its service
//! (`playbooks/*.toml`, from the guides), and a log where every note, decision and action
//! lands with its verified result. Actions run on the agents as transactions (block and
//! unblock an address, restart, rotate a key), and every one is also on the timeline and in
//! the audit log.

use std::net::IpAddr;
use std::path::Path;
use std::sync::OnceLock;

use gatehouse_events::Outcome;
use gatehouse_protocol::{
    BlockList, BlockRequest, BlockResult, RestartResult, RestoreRequest, RestoreResult, Snapshot,
    Snapshots, UnblockRequest,
};
use gatehouse_store::incidents::{EntryKind, NewEntry, NewIncident};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::analytics::{Analytics, Severity};
use crate::context::Ctx;
use crate::guides;
use crate::lock;
use crate::rotation::{operator, Rotation};
use crate::timeline::Timeline;
use crate::{Error, EventFilter, Result, TimelineEvent};

/// How long a block lasts unless the operator says otherwise.
pub const DEFAULT_BLOCK_SECS: u64 = 3600;

/// A playbook from one service's guide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    pub name: String,
    pub title: String,
    pub guide: String,
    pub steps: Vec<PlaybookStep>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct PlaybookStep {
    pub id: String,
    pub title: String,
    /// What to look at.
    pub look: String,
    /// What to decide.
    pub decide: String,
    pub actions: Vec<ActionKind>,
}

/// The one-click actions a step can offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    ShowEvents,
    ShowWrites,
    BlockIp,
    UnblockIp,
    RotateKey,
    RestartService,
    SnapshotDatabase,
    RestoreDatabase,
    EvidenceBundle,
    Report,
}

pub fn playbooks() -> &'static [Playbook] {
    static PLAYBOOKS: OnceLock<Vec<Playbook>> = OnceLock::new();
    PLAYBOOKS.get_or_init(|| {
        [
            include_str!("../../../../playbooks/sekha.toml"),
            include_str!("../../../../playbooks/rae.toml"),
            include_str!("../../../../playbooks/jelmore.toml"),
            include_str!("../../../../playbooks/jupyter.toml"),
            include_str!("../../../../playbooks/radicale.toml"),
            include_str!("../../../../playbooks/generic.toml"),
        ]
        .iter()
        // Compiled in and parsed by the unit tests below.
        .map(|text| toml::from_str(text).expect("built-in playbooks parse"))
        .collect()
    })
}

pub fn playbook(name: &str) -> Option<&'static Playbook> {
    playbooks().iter().find(|p| p.name == name)
}

pub use gatehouse_store::incidents::{Incident, IncidentEntry, IncidentStatus};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct IncidentView {
    pub incident: Incident,
    pub playbook: Option<Playbook>,
    /// Why the playbook is not the service's own ("no playbook of its own: the generic
    /// one"), or why its file could not be read.
    pub playbook_notice: Option<String>,
    pub log: Vec<IncidentEntry>,
    /// Failed sign-ins from the incident's addresses on its instances in its window.
    #[ts(type = "number")]
    pub failed_attempts: u64,
    /// The filter that shows the incident's events in the timeline.
    pub events: EventFilter,
    /// What a restart (or a restore, which restarts) of the incident's service destroys, as
    /// its profile says (RAE in lite mode keeps its memories in memory only); for the
    /// confirmations of those actions.
    pub restart_loses_data: Option<String>,
}

/// Where in the console an incident was opened from (an alert has its own command).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum IncidentOrigin {
    /// Typed in: the incidents view's form or the CLI.
    #[default]
    Hand,
    /// An offender's "Incident…" (its address, the instances it hit, its window).
    Offender,
    /// A timeline preset's events (a heatmap cell, say).
    Timeline,
}

/// What the operator gives to open an incident.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, TS)]
pub struct OpenIncident {
    /// Where it was opened from, as the incident says ("from the offenders list").
    pub origin: IncidentOrigin,
    pub title: String,
    pub severity: Severity,
    pub instances: Vec<String>,
    pub ips: Vec<String>,
    #[ts(type = "number")]
    pub from_us: i64,
    #[ts(type = "number")]
    pub to_us: i64,
}

/// Where an evidence bundle went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct BundleResult {
    pub path: String,
    pub files: u32,
    /// The manifest: `sha256sum -c MANIFEST.sha256` in the folder checks it.
    pub manifest: String,
}

fn bad(field: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidInput {
        field,
        reason: reason.into(),
    }
}

/// Incidents and the actions their playbooks offer.
#[derive(Debug, Clone)]
pub struct Incidents {
    ctx: Ctx,
    /// Alerts to open from, and the allowlist a block must respect.
    analytics: Analytics,
    /// The rotation step.
    rotation: Rotation,
    /// The window's events.
    timeline: Timeline,
}

impl Incidents {
    pub(crate) fn new(
        ctx: Ctx,
        analytics: Analytics,
        rotation: Rotation,
        timeline: Timeline,
    ) -> Self {
        Incidents {
            ctx,
            analytics,
            rotation,
            timeline,
        }
    }
}

impl Incidents {
    /// Open an incident by hand, from an offender or from the timeline.
    pub fn open_incident(&self, input: &OpenIncident) -> Result<Incident> {
        let source = match input.origin {
            IncidentOrigin::Hand => "by hand".to_owned(),
            IncidentOrigin::Offender => match input.ips.as_slice() {
                [ip] => format!("from the offenders list ({ip})"),
                _ => "from the offenders list".to_owned(),
            },
            IncidentOrigin::Timeline => "from the timeline".to_owned(),
        };
        self.insert_incident(input, &source)
    }

    /// Open an incident from an alert: its instance, its address, and its window with an
    /// hour before it.
    pub fn incident_from_alert(&self, alert_id: i64) -> Result<Incident> {
        let alert = self.analytics.alert(alert_id)?;
        let ips: Vec<String> = alert
            .subject
            .iter()
            .filter(|s| s.parse::<IpAddr>().is_ok())
            .cloned()
            .collect();
        let input = OpenIncident {
            origin: IncidentOrigin::Hand,
            // Named by its address too: two brute forces on one instance are two incidents.
            title: match ips.as_slice() {
                [ip] => format!("{} on {} from {ip}", alert.rule_name, alert.instance),
                [] => format!("{} on {}", alert.rule_name, alert.instance),
                [first, rest @ ..] => format!(
                    "{} on {} from {first} and {} more",
                    alert.rule_name,
                    alert.instance,
                    rest.len()
                ),
            },
            severity: alert.severity,
            instances: vec![alert.instance.clone()],
            ips,
            from_us: alert.first_us - 3_600_000_000,
            // A minute past the last event: a window's end is exclusive.
            to_us: (alert.last_us + 60_000_000).max(self.ctx.micros()),
        };
        self.insert_incident(&input, &format!("from alert {alert_id}"))
    }

    fn insert_incident(&self, input: &OpenIncident, source: &str) -> Result<Incident> {
        let title = input.title.trim();
        if title.is_empty() {
            return Err(bad("title", "give the incident a title"));
        }
        if input.instances.is_empty() {
            return Err(bad(
                "instances",
                "an incident concerns at least one instance",
            ));
        }
        let mut profile = None;
        for name in &input.instances {
            let record = self.ctx.instance(name)?;
            profile.get_or_insert((record.profile, record.guides.playbook));
        }
        for ip in &input.ips {
            ip.parse::<IpAddr>()
                .map_err(|_| bad("ips", format!("{ip:?} is not an IP address")))?;
        }
        if input.from_us >= input.to_us {
            return Err(bad("window", "the window must end after it starts"));
        }
        let now = self.ctx.micros();
        self.ctx.audit(
            "incident_open",
            &input.instances.join(", "),
            &format!("{source}: {title}"),
        )?;
        // The playbook is chosen now, by the first instance's profile; a file that does not
        // read yet is still named, so the incident shows why once it is opened.
        let chosen = profile
            .as_ref()
            .map(|(p, named)| guides::playbook_for(&self.ctx.data_dir, p, named.as_deref()));
        let first_step = chosen
            .as_ref()
            .and_then(|c| guides::playbook(&self.ctx.data_dir, &c.name).ok())
            .and_then(|p| p.steps.first().map(|s| s.id.clone()));
        let id = self.ctx.db().incidents().insert(&NewIncident {
            title,
            severity: input.severity,
            source,
            instances: &input.instances,
            ips: &input.ips,
            from_us: input.from_us,
            to_us: input.to_us,
            opened_us: now,
            playbook: chosen.as_ref().map(|c| c.name.as_str()),
            step: first_step.as_deref(),
        })?;
        self.log_incident(
            id,
            EntryKind::Opened,
            // After the entry's kind: "opened by hand: …", "opened from alert 12: …".
            &format!("{source}: {title}"),
            None,
            &[],
        )?;
        for instance in &input.instances {
            self.ctx.timeline_note(
                instance,
                Outcome::Info,
                &format!("Incident {id} opened: {title}"),
            );
        }
        self.incident_record(id)
    }

    pub fn incidents(&self) -> Result<Vec<Incident>> {
        Ok(self.ctx.db().incidents().all()?)
    }

    fn incident_record(&self, id: i64) -> Result<Incident> {
        self.ctx
            .db()
            .incidents()
            .get(id)?
            .ok_or_else(|| Error::NotFound {
                what: "incident",
                name: id.to_string(),
            })
    }

    /// An incident with its playbook, its log and how many failed sign-ins it covers.
    pub fn incident(&self, id: i64) -> Result<IncidentView> {
        let incident = self.incident_record(id)?;
        let (stored, log) = {
            let store = self.ctx.db();
            (
                store.incidents().playbook(id)?,
                store.incidents().entries(id)?,
            )
        };
        let events = self.incident_filter(&incident, true);
        let mut failed_attempts = 0;
        for instance in &incident.instances {
            let ips: Vec<Option<String>> = if incident.ips.is_empty() {
                vec![None]
            } else {
                incident.ips.iter().cloned().map(Some).collect()
            };
            for ip in ips {
                let filter = EventFilter {
                    instance: Some(instance.clone()),
                    ip,
                    ..events.clone()
                };
                failed_attempts += self.timeline.count(&filter)?;
            }
        }
        // What a restart destroys is the service's: as the built-in profile of the first
        // instance's name says, else as its agent said (an operator's profile the console
        // has never seen). The playbook column names a playbook, which may be the generic one.
        let first = incident
            .instances
            .first()
            .and_then(|name| self.ctx.instance(name).ok());
        let said = first
            .as_ref()
            .and_then(|record| record.restart_loses_data.clone());
        let profile = first
            .map(|record| record.profile)
            .or_else(|| stored.clone());
        // A built-in profile's own words win: an agent cannot talk a known warning away.
        let builtin = profile
            .as_deref()
            .and_then(gatehouse_events::Profile::builtin)
            .and_then(std::result::Result::ok);
        let restart_loses_data = match builtin {
            Some(p) => p.restart.loses_data,
            None => said,
        };
        let (playbook, playbook_notice) = match stored {
            None => (None, None),
            Some(stored) => {
                // Incidents opened before playbooks were chosen by [guides] stored the
                // profile's name: choosing again from it finds the same playbook.
                let chosen = guides::playbook_for(&self.ctx.data_dir, &stored, None);
                let notice = chosen.notice.clone().or_else(|| {
                    (chosen.name == guides::GENERIC)
                        .then(|| guides::GENERIC_PLAYBOOK_NOTICE.to_owned())
                });
                match guides::playbook(&self.ctx.data_dir, &chosen.name) {
                    Ok(p) => (Some(p), notice),
                    Err(e) => (None, Some(e.to_string())),
                }
            }
        };
        Ok(IncidentView {
            incident,
            playbook,
            playbook_notice,
            log,
            failed_attempts,
            events,
            restart_loses_data,
        })
    }

    /// The timeline filter of an incident: its window, its first instance and address (the
    /// timeline filters one of each), failed sign-ins only when `attempts`.
    fn incident_filter(&self, incident: &Incident, attempts: bool) -> EventFilter {
        EventFilter {
            from_us: Some(incident.from_us),
            to_us: Some(incident.to_us.max(self.ctx.micros())),
            instance: incident.instances.first().cloned(),
            ip: incident.ips.first().cloned(),
            attempts,
            ..EventFilter::default()
        }
    }

    /// Writes and deletes on the incident's instances in its window, newest first: the
    /// requests the instance's profile names as changing data (`[[writes]]`; a POST that only
    /// reads, as Sekha's MCP tools are, is not one) that the service did not refuse. A profile
    /// that names none counts every POST, PUT, PATCH and DELETE.
    pub fn incident_writes(&self, id: i64) -> Result<Vec<TimelineEvent>> {
        let incident = self.incident_record(id)?;
        let mut out = Vec::new();
        for instance in &incident.instances {
            let profile = self
                .ctx
                .instance(instance)
                .ok()
                .and_then(|r| gatehouse_events::Profile::builtin(&r.profile))
                .and_then(|p| p.ok())
                .filter(|p| !p.writes.is_empty());
            let is_write = |e: &TimelineEvent| match (&profile, e.method.as_deref()) {
                (Some(p), Some(method)) => {
                    p.write_route(method, e.path.as_deref().unwrap_or(""))
                        .is_some()
                        && e.status.is_none_or(|s| s < 400)
                }
                (None, method) => matches!(method, Some("POST" | "PUT" | "PATCH" | "DELETE")),
                (Some(_), None) => false,
            };
            let filter = EventFilter {
                from_us: Some(incident.from_us),
                to_us: Some(incident.to_us.max(self.ctx.micros())),
                instance: Some(instance.clone()),
                ..EventFilter::default()
            };
            let mut cursor = None;
            loop {
                let page = self.timeline.events(&filter, cursor.as_ref(), 1000)?;
                out.extend(page.events.into_iter().filter(is_write));
                match page.next {
                    Some(next) if out.len() < 10_000 => cursor = Some(next),
                    _ => break,
                }
            }
        }
        out.sort_by_key(|e| std::cmp::Reverse(e.time_us));
        Ok(out)
    }

    /// The incident's events, oldest first: on its instances in its window, and only its
    /// addresses' if it names any. At most `limit`, the newest; the flag says more were left out.
    pub fn incident_events(&self, id: i64, limit: u32) -> Result<(Vec<TimelineEvent>, bool)> {
        let incident = self.incident_record(id)?;
        let ips: Vec<Option<String>> = if incident.ips.is_empty() {
            vec![None]
        } else {
            incident.ips.iter().cloned().map(Some).collect()
        };
        let mut out = Vec::new();
        let mut more = false;
        for instance in &incident.instances {
            for ip in &ips {
                let filter = EventFilter {
                    from_us: Some(incident.from_us),
                    to_us: Some(incident.to_us),
                    instance: Some(instance.clone()),
                    ip: ip.clone(),
                    ..EventFilter::default()
                };
                let page = self.timeline.events(&filter, None, limit)?;
                more |= page.next.is_some();
                out.extend(page.events);
            }
        }
        out.sort_by_key(|e| std::cmp::Reverse((e.time_us, e.seq)));
        out.dedup_by(|a, b| (a.time_us, a.seq, &a.instance) == (b.time_us, b.seq, &b.instance));
        if out.len() > limit as usize {
            out.truncate(limit as usize);
            more = true;
        }
        out.reverse();
        Ok((out, more))
    }

    /// Add a note or a decision to the incident's log.
    pub fn incident_note(&self, id: i64, decision: bool, text: &str) -> Result<IncidentView> {
        self.incident_record(id)?;
        let text = text.trim();
        if text.is_empty() {
            return Err(bad("note", "the note is empty"));
        }
        self.ctx.audit(
            if decision {
                "incident_decision"
            } else {
                "incident_note"
            },
            &format!("incident {id}"),
            text,
        )?;
        self.log_incident(
            id,
            if decision {
                EntryKind::Decision
            } else {
                EntryKind::Note
            },
            text,
            None,
            &[],
        )?;
        self.incident(id)
    }

    /// Change an incident's status, owner or current playbook step.
    pub fn update_incident(
        &self,
        id: i64,
        status: Option<IncidentStatus>,
        owner: Option<&str>,
        step: Option<&str>,
    ) -> Result<IncidentView> {
        let incident = self.incident_record(id)?;
        let now = self.ctx.micros();
        let owner = owner.map(str::trim);
        let mut change = Vec::new();
        change.extend(status.map(|s| format!("status {}", s.as_str())));
        change.extend(owner.map(|o| format!("owner {o:?}")));
        change.extend(step.map(|s| format!("step {s:?}")));
        if !change.is_empty() {
            self.ctx.audit(
                "incident_update",
                &format!("incident {id}"),
                &change.join(", "),
            )?;
        }
        if let Some(status) = status {
            let closed =
                matches!(status, IncidentStatus::Resolved | IncidentStatus::Closed).then_some(now);
            self.ctx.db().incidents().set_status(id, status, closed)?;
            self.log_incident(
                id,
                EntryKind::Status,
                &format!("status: {}", status.as_str()),
                None,
                &[],
            )?;
            for instance in &incident.instances {
                self.ctx.timeline_note(
                    instance,
                    Outcome::Info,
                    &format!("Incident {id} {}", status.as_str()),
                );
            }
        }
        if let Some(owner) = owner {
            self.ctx
                .db()
                .incidents()
                .set_owner(id, (!owner.is_empty()).then_some(owner))?;
            self.log_incident(id, EntryKind::Status, &format!("owner: {owner}"), None, &[])?;
        }
        if let Some(step) = step {
            self.ctx.db().incidents().set_step(id, step)?;
            self.log_incident(id, EntryKind::Step, &format!("on to: {step}"), None, &[])?;
        }
        self.incident(id)
    }

    /// Block an address on an instance's host firewall for `ttl_secs`, verified there. The
    /// console's allowlist is refused here and sent along; the agent also refuses the
    /// address the console connects from. An address known only from a header a client
    /// chose is refused unless `spoofable_confirmed` (a second confirmation).
    pub async fn block_ip(
        &self,
        instance: &str,
        ip: &str,
        ttl_secs: u64,
        spoofable_confirmed: bool,
    ) -> Result<BlockResult> {
        let record = self.ctx.instance(instance)?;
        ip.parse::<IpAddr>()
            .map_err(|_| bad("ip", format!("{ip:?} is not an IP address")))?;
        let never = self.analytics.detection()?.allowlist;
        if crate::allowlisted(&never, ip) {
            return Err(bad(
                "ip",
                format!(
                    "{ip} is on the allowlist in Settings: take it off first if it must be blocked"
                ),
            ));
        }
        let spoofable = self.analytics.spoofable(instance, ip)?;
        if spoofable && !spoofable_confirmed {
            return Err(Error::SpoofableAddress {
                ip: ip.to_owned(),
                instance: instance.to_owned(),
            });
        }
        self.ctx.audit(
            "block_requested",
            instance,
            &format!("block {ip} for {ttl_secs} s"),
        )?;
        let result = self
            .ctx
            .agent(&record)
            .await?
            .block(&BlockRequest {
                ip: ip.to_owned(),
                ttl_secs,
                never,
            })
            .await?;
        let now = self.ctx.unix();
        self.ctx
            .db()
            .blocks()
            .placed(instance, &result.ip, now, now + ttl_secs as i64)?;
        self.ctx.record_action(
            instance,
            Outcome::Success,
            &format!(
                "Blocked {ip} for {ttl_secs} s: {}",
                result.steps.last().cloned().unwrap_or_default()
            ),
        );
        Ok(result)
    }

    pub async fn unblock_ip(&self, instance: &str, ip: &str) -> Result<BlockResult> {
        let record = self.ctx.instance(instance)?;
        self.ctx
            .audit("unblock_requested", instance, &format!("unblock {ip}"))?;
        let result = self
            .ctx
            .agent(&record)
            .await?
            .unblock(&UnblockRequest { ip: ip.to_owned() })
            .await?;
        self.ctx
            .db()
            .blocks()
            .lifted(instance, &result.ip, self.ctx.unix())?;
        self.ctx
            .record_action(instance, Outcome::Success, &format!("Unblocked {ip}"));
        Ok(result)
    }

    /// Addresses blocked on an instance's host, with the time left.
    pub async fn blocked(&self, instance: &str) -> Result<BlockList> {
        let record = self.ctx.instance(instance)?;
        Ok(self.ctx.agent(&record).await?.blocked().await?)
    }

    /// Restart an instance's service and check that it answers.
    pub async fn restart_service(&self, instance: &str) -> Result<RestartResult> {
        let record = self.ctx.instance(instance)?;
        self.ctx
            .audit("restart_requested", instance, "restart the service")?;
        let result = self.ctx.agent(&record).await?.restart().await?;
        self.ctx.record_action(
            instance,
            if result.ok {
                Outcome::Success
            } else {
                Outcome::Failure
            },
            &match &result.error {
                None => format!("Service restarted and answers ({} ms)", result.restart_ms),
                Some(e) => format!("Service restart failed: {e}"),
            },
        );
        Ok(result)
    }

    /// Snapshot an instance's database (SQLite online backup, kept on the host).
    pub async fn snapshot_database(&self, instance: &str) -> Result<Snapshot> {
        let record = self.ctx.instance(instance)?;
        self.ctx
            .audit("snapshot_requested", instance, "snapshot the database")?;
        let snapshot = self.ctx.agent(&record).await?.snapshot().await?;
        self.ctx.record_action(
            instance,
            Outcome::Success,
            &format!(
                "Database snapshot {} ({} bytes, SHA-256 {})",
                snapshot.name, snapshot.size, snapshot.sha256
            ),
        );
        Ok(snapshot)
    }

    /// The snapshots kept on an instance's host, newest first.
    pub async fn snapshots(&self, instance: &str) -> Result<Snapshots> {
        let record = self.ctx.instance(instance)?;
        Ok(self.ctx.agent(&record).await?.snapshots().await?)
    }

    /// Restore a snapshot: the agent takes a safety snapshot first, restores, restarts the
    /// service and checks that it answers.
    pub async fn restore_database(&self, instance: &str, name: &str) -> Result<RestoreResult> {
        let record = self.ctx.instance(instance)?;
        self.ctx.audit(
            "restore_requested",
            instance,
            &format!("restore the database from {name}"),
        )?;
        let result = self
            .ctx
            .agent(&record)
            .await?
            .restore(&RestoreRequest {
                name: name.to_owned(),
            })
            .await?;
        self.ctx.record_action(
            instance,
            if result.ok {
                Outcome::Success
            } else {
                Outcome::Failure
            },
            &match &result.error {
                None => format!("Database restored from {name}; the service answers"),
                Some(e) => format!("Database restore from {name} failed: {e}"),
            },
        );
        Ok(result)
    }

    /// Run one action from an incident and write it into the incident's log: what was done,
    /// whether it worked and its steps. An action refused before it ran (the agent
    /// unreachable, the input invalid) is logged with why, and its error returned.
    async fn run_action<T>(
        &self,
        id: i64,
        what: String,
        action: impl std::future::Future<Output = Result<T>>,
        outcome: impl FnOnce(&T) -> (bool, Vec<String>),
    ) -> Result<T> {
        self.incident_record(id)?;
        match action.await {
            Ok(result) => {
                let (ok, steps) = outcome(&result);
                self.log_incident(id, EntryKind::Action, &what, Some(ok), &steps)?;
                Ok(result)
            }
            Err(e) => {
                self.log_incident(
                    id,
                    EntryKind::Action,
                    &format!("{what}: refused"),
                    Some(false),
                    &[e.to_string()],
                )?;
                Err(e)
            }
        }
    }

    pub async fn incident_snapshot(&self, id: i64, instance: &str) -> Result<IncidentView> {
        self.run_action(
            id,
            format!("snapshot the database on {instance}"),
            self.snapshot_database(instance),
            |s| {
                let line = format!("{} ({} bytes, SHA-256 {})", s.name, s.size, s.sha256);
                (true, vec![line])
            },
        )
        .await?;
        self.incident(id)
    }

    pub async fn incident_restore(
        &self,
        id: i64,
        instance: &str,
        name: &str,
    ) -> Result<IncidentView> {
        self.run_action(
            id,
            format!("restore {name} on {instance}"),
            self.restore_database(instance, name),
            |r| (r.ok, with_error(&r.steps, &r.error)),
        )
        .await?;
        self.incident(id)
    }

    /// Block from an incident: the result lands in its log, the address joins its context.
    pub async fn incident_block(
        &self,
        id: i64,
        instance: &str,
        ip: &str,
        ttl_secs: u64,
        spoofable_confirmed: bool,
    ) -> Result<IncidentView> {
        self.run_action(
            id,
            format!("block {ip} on {instance} for {ttl_secs} s"),
            self.block_ip(instance, ip, ttl_secs, spoofable_confirmed),
            |r| (r.blocked, r.steps.clone()),
        )
        .await?;
        let incident = self.incident_record(id)?;
        if !incident.ips.iter().any(|i| i == ip) {
            let mut ips = incident.ips;
            ips.push(ip.to_owned());
            self.ctx.db().incidents().set_ips(id, &ips)?;
        }
        self.incident(id)
    }

    pub async fn incident_unblock(
        &self,
        id: i64,
        instance: &str,
        ip: &str,
    ) -> Result<IncidentView> {
        self.run_action(
            id,
            format!("unblock {ip} on {instance}"),
            self.unblock_ip(instance, ip),
            |r| (!r.blocked, r.steps.clone()),
        )
        .await?;
        self.incident(id)
    }

    pub async fn incident_restart(&self, id: i64, instance: &str) -> Result<IncidentView> {
        self.run_action(
            id,
            format!("restart the service on {instance}"),
            self.restart_service(instance),
            |r| (r.ok, with_error(&r.steps, &r.error)),
        )
        .await?;
        self.incident(id)
    }

    /// Rotate a key from an incident (the verified rotation transaction).
    pub async fn incident_rotate(
        &self,
        id: i64,
        instance: &str,
        name: &str,
    ) -> Result<(IncidentView, Option<crate::Sensitive<String>>)> {
        let (_, key) = self
            .run_action(
                id,
                format!("rotate {name} on {instance}"),
                self.rotation.rotate_key(instance, name),
                |(r, _)| (r.committed, with_error(&r.steps, &r.error)),
            )
            .await?;
        Ok((self.incident(id)?, key))
    }

    /// Collect an evidence bundle into a new folder under `dir`: each instance's recent log
    /// lines and config file facts, the incident's events, its log, and a SHA-256 manifest.
    pub async fn evidence_bundle(&self, id: i64, dir: &Path) -> Result<BundleResult> {
        let incident = self.incident_record(id)?;
        let stamp = crate::utc(self.ctx.micros()).replace([':', '.'], "-");
        let folder = dir.join(format!("gatehouse-incident-{id}-{stamp}"));
        let io = |source: std::io::Error, path: &Path| Error::WriteFailed {
            path: path.to_owned(),
            source,
        };
        std::fs::create_dir_all(&folder).map_err(|e| io(e, &folder))?;
        // Each file's name and SHA-256, hashed from the bytes written (not read back).
        let mut written: Vec<(String, String)> = Vec::new();
        let mut write = |name: &str, bytes: &[u8]| -> Result<()> {
            let path = folder.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io(e, parent))?;
            }
            std::fs::write(&path, bytes).map_err(|e| io(e, &path))?;
            let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
            let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
            written.push((name.to_owned(), hex));
            Ok(())
        };
        let view = self.incident(id)?;
        write(
            "incident.json",
            serde_json::to_string_pretty(&serde_json::json!({
                "incident": view.incident, "log": view.log, "failed_attempts": view.failed_attempts,
            }))
            .unwrap_or_default()
            .as_bytes(),
        )?;
        // One instance's failure (unreachable, a hostile answer, a file that cannot be
        // written) is recorded in PROBLEMS.txt; the bundle goes on with the others.
        // A lock, not a RefCell: the bundle's future crosses threads (the window's async runtime).
        let problems = std::sync::Mutex::new(Vec::new());
        for (i, instance) in incident.instances.iter().enumerate() {
            // Named by index: an instance name or a path an agent reports never becomes a
            // file name (a NUL byte, a slash, `..`).
            let dir = format!("instance-{}", i + 1);
            let mut one = |name: &str, bytes: &[u8]| {
                if let Err(e) = write(&format!("{dir}/{name}"), bytes) {
                    lock(&problems).push(format!("{instance}: {e}"));
                }
            };
            one("instance.txt", format!("{instance}\n").as_bytes());
            let report = match self.ctx.instance(instance) {
                Ok(record) => match self.ctx.agent(&record).await {
                    Ok(agent) => agent.evidence(1000).await.map_err(Error::from),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            match report {
                Ok(report) => {
                    let mut index = String::new();
                    for (n, log) in report.logs.iter().enumerate() {
                        let name = format!("logs/{}.log", n + 1);
                        let text = match &log.error {
                            Some(e) => format!("# {:?}: {e}\n", log.path),
                            None => {
                                let mut text = log.lines.join("\n");
                                text.push('\n');
                                text
                            }
                        };
                        index.push_str(&format!("{name}\t{:?}\n", log.path));
                        one(&name, text.as_bytes());
                    }
                    one("logs/index.txt", index.as_bytes());
                    let files: String = report
                        .files
                        .iter()
                        .map(|f| match &f.error {
                            Some(e) => format!("{:?}  error: {e}\n", f.path),
                            None => format!(
                                "{:?}  sha256 {}  mode {:04o}  {} bytes  modified {}\n",
                                f.path,
                                f.sha256.as_deref().unwrap_or("-"),
                                f.mode.unwrap_or(0),
                                f.size.unwrap_or(0),
                                f.modified
                                    .map(|t| crate::utc(t.saturating_mul(1_000_000)))
                                    .unwrap_or_default()
                            ),
                        })
                        .collect();
                    one("config-files.txt", files.as_bytes());
                }
                Err(e) => lock(&problems).push(format!("{instance}: {e}")),
            }
            let filter = EventFilter {
                from_us: Some(incident.from_us),
                to_us: Some(incident.to_us.max(self.ctx.micros())),
                instance: Some(instance.clone()),
                ..EventFilter::default()
            };
            let mut events = Vec::new();
            match self
                .timeline
                .export_events(&filter, crate::ExportFormat::Jsonl, &mut events)
            {
                Ok(_) => one("events.jsonl", &events),
                Err(e) => {
                    lock(&problems).push(format!("{instance}: the events could not be read: {e}"))
                }
            }
        }
        let problems = problems
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !problems.is_empty() {
            write("PROBLEMS.txt", problems.join("\n").as_bytes())?;
        }
        let manifest: String = written
            .iter()
            .map(|(name, hex)| format!("{hex}  {name}\n"))
            .collect();
        let manifest_path = folder.join("MANIFEST.sha256");
        std::fs::write(&manifest_path, &manifest).map_err(|e| io(e, &manifest_path))?;
        let files = written.len() as u32;
        let steps = vec![format!(
            "{files} files and MANIFEST.sha256 in {}",
            folder.display()
        )];
        self.log_incident(
            id,
            EntryKind::Action,
            "collect an evidence bundle",
            Some(problems.is_empty()),
            &steps,
        )?;
        self.ctx
            .audit("incident_evidence", &format!("incident {id}"), &steps[0])?;
        Ok(BundleResult {
            path: folder.display().to_string(),
            files,
            manifest: manifest_path.display().to_string(),
        })
    }

    fn log_incident(
        &self,
        id: i64,
        kind: EntryKind,
        text: &str,
        ok: Option<bool>,
        steps: &[String],
    ) -> Result<()> {
        self.ctx.db().incidents().log(
            id,
            &NewEntry {
                at_us: self.ctx.micros(),
                actor: &operator(),
                kind,
                text,
                ok,
                steps,
            },
        )?;
        Ok(())
    }
}

/// An action's steps, and its error last if it failed.
fn with_error(steps: &[String], error: &Option<String>) -> Vec<String> {
    steps.iter().chain(error).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_playbooks_follow_the_guides() {
        let steps = |name: &str| -> Vec<String> {
            playbook(name)
                .expect("playbook")
                .steps
                .iter()
                .map(|s| s.id.clone())
                .collect()
        };
        assert_eq!(
            steps("sekha"),
            [
                "detection",
                "containment",
                "eradication",
                "recovery",
                "post_incident"
            ],
            "Sekha's five steps"
        );
        assert_eq!(steps("rae").len(), 5, "RAE's five phases");
        assert_eq!(steps("jelmore").len(), 4, "Jelmore's four-step checklist");
        for p in playbooks() {
            assert!(
                p.steps
                    .iter()
                    .any(|s| s.actions.contains(&ActionKind::BlockIp)),
                "{}: containment can block an address",
                p.name
            );
            assert!(
                p.steps
                    .iter()
                    .all(|s| !s.look.is_empty() && !s.decide.is_empty()),
                "{}: every step says what to look at and what to decide",
                p.name
            );
        }
    }
}
