//! Checklists that check themselves. Templates are data (`checklists/*.toml`, from the
//! services' guides); automated items are decided by checks the agents run (and the key's
//! age, from the rotation inventory); manual items have an owner, a due date, evidence and a
//! sign-off, and come back when their cadence says; waivers expire; an automated item that
//! passed and now fails re-opens, raises an alert and lands on the timeline.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use std::time::Duration;

use gatehouse_events::Outcome;
use gatehouse_protocol::{CheckId, CheckResult, CheckStatus, ChecksRequest, TlsMinimum};
use gatehouse_store::compliance::{NewEvidence, NewWaiver};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::analytics::Analytics;
use crate::context::Ctx;
use crate::guides;
use crate::rotation::{operator, Rotation};
use crate::{CredentialKind, Error, InstanceRecord, Result};

/// The burst of the rate-limit check spends a service's window: on a schedule, at most daily.
const RATE_LIMIT_EVERY: i64 = 24 * 3600;
/// The longest a waiver may run before someone looks again.
const MAX_WAIVER: i64 = 2 * 365 * 86_400;
const SETTING_TLS_MINIMUM: &str = "compliance_tls_minimum";

/// A checklist taken from one service's guide.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub name: String,
    pub title: String,
    pub guide: String,
    pub items: Vec<TemplateItem>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateItem {
    pub id: String,
    pub section: String,
    pub text: String,
    pub source: String,
    pub cadence: Cadence,
    #[serde(default)]
    pub checks: Vec<Check>,
    #[serde(default)]
    pub why: Option<String>,
}

/// How often an item is due: manual items come back this long after their sign-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Cadence {
    Once,
    Daily,
    Weekly,
    Monthly,
    Quarterly,
    Yearly,
}

impl Cadence {
    pub fn seconds(self) -> Option<i64> {
        const DAY: i64 = 86_400;
        match self {
            Cadence::Once => None,
            Cadence::Daily => Some(DAY),
            Cadence::Weekly => Some(7 * DAY),
            Cadence::Monthly => Some(30 * DAY),
            Cadence::Quarterly => Some(91 * DAY),
            Cadence::Yearly => Some(365 * DAY),
        }
    }
}

/// A check deciding an automated item: one the agent runs, or the key's age (the console's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub enum Check {
    Agent(CheckId),
    KeyAge,
}

impl TryFrom<String> for Check {
    type Error = String;
    fn try_from(name: String) -> std::result::Result<Self, String> {
        if name == "key_age" {
            return Ok(Check::KeyAge);
        }
        serde_json::from_value(serde_json::Value::String(name.clone()))
            .map(Check::Agent)
            .map_err(|_| format!("unknown check {name:?}"))
    }
}

impl Check {
    pub fn name(self) -> String {
        match self {
            Check::KeyAge => "key_age".into(),
            Check::Agent(id) => serde_json::to_value(id)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
        }
    }
}

/// The built-in templates, parsed once.
pub fn templates() -> &'static [Template] {
    static TEMPLATES: OnceLock<Vec<Template>> = OnceLock::new();
    TEMPLATES.get_or_init(|| {
        [
            include_str!("../../../../checklists/sekha.toml"),
            include_str!("../../../../checklists/rae.toml"),
            include_str!("../../../../checklists/jelmore.toml"),
            include_str!("../../../../checklists/jupyter.toml"),
            include_str!("../../../../checklists/radicale.toml"),
            include_str!("../../../../checklists/generic.toml"),
        ]
        .iter()
        // Compiled in and parsed by the unit tests below: a broken template fails the build's
        // tests, never an operator's console.
        .map(|text| toml::from_str(text).expect("built-in checklist templates parse"))
        .collect()
    })
}

pub fn template(name: &str) -> Option<&'static Template> {
    templates().iter().find(|t| t.name == name)
}

pub use gatehouse_store::compliance::{
    CheckState, CheckView, Evidence, EvidenceKind, HistoryEntry, HistoryKind, ItemState, Waiver,
    WaiverKind,
};

/// What the operator asks for when waiving an item.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, TS)]
pub struct WaiverInput {
    pub kind: WaiverKind,
    pub reason: String,
    pub approved_by: String,
    #[ts(type = "number")]
    pub expires_at: i64,
}

/// Evidence the operator attaches: a note, a link, or a file (by path, hashed here).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, TS)]
pub struct EvidenceInput {
    pub kind: EvidenceKind,
    /// The note, the URL, or the file's path.
    pub text: String,
}

/// One item of one instance's checklist, with everything known about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct ItemView {
    pub instance: String,
    pub id: String,
    pub section: String,
    pub text: String,
    pub source: String,
    pub why: Option<String>,
    pub cadence: Cadence,
    pub automated: bool,
    pub state: ItemState,
    /// A sentence on why it is in that state.
    pub state_text: String,
    pub checks: Vec<CheckView>,
    pub owner: Option<String>,
    #[ts(type = "number | null")]
    pub due_at: Option<i64>,
    pub overdue: bool,
    #[ts(type = "number | null")]
    pub signed_off_at: Option<i64>,
    pub signed_off_by: Option<String>,
    pub evidence: Vec<Evidence>,
    pub waiver: Option<Waiver>,
    /// It passed before and fails now.
    pub reopened: bool,
}

/// Counts of items by state, and the share done.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, TS)]
pub struct Scorecard {
    pub total: u32,
    pub passing: u32,
    pub failing: u32,
    pub due: u32,
    pub unknown: u32,
    pub waived: u32,
    /// passing out of the items not waived, in whole percent.
    pub score: u32,
}

impl Scorecard {
    fn add(&mut self, state: ItemState) {
        self.total += 1;
        match state {
            ItemState::Pass | ItemState::Done => self.passing += 1,
            ItemState::Fail => self.failing += 1,
            ItemState::Due => self.due += 1,
            ItemState::Unknown => self.unknown += 1,
            ItemState::Waived => self.waived += 1,
        }
    }

    fn finish(&mut self) {
        let counted = self.total - self.waived;
        self.score = (self.passing * 100).checked_div(counted).unwrap_or(100);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct InstanceCompliance {
    pub instance: String,
    pub profile: String,
    pub template: String,
    pub guide: String,
    /// Why this is not the service's own checklist ("no checklist of its own: the generic
    /// one"), when it is not.
    pub notice: Option<String>,
    pub scorecard: Scorecard,
    pub items: Vec<ItemView>,
    #[ts(type = "number | null")]
    pub last_run: Option<i64>,
    /// Why the instance has no checklist, or its last run failed.
    pub problem: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct ComplianceView {
    pub fleet: Scorecard,
    pub instances: Vec<InstanceCompliance>,
    #[ts(type = "number")]
    pub generated_at: i64,
    /// The oldest TLS version the public endpoints may offer: "1.2" or "1.3".
    pub tls_minimum: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ItemFilter {
    Failing,
    Due,
    Waived,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, TS)]
pub struct ComplianceQuery {
    pub instance: Option<String>,
    pub filter: Option<ItemFilter>,
}

/// What a run of the automated checks did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, TS)]
pub struct CheckRun {
    pub instances: u32,
    pub checks: u32,
    /// `instance: item` for every item that passed before and fails now.
    pub reopened: Vec<String>,
    /// Instances whose checks could not run, and why.
    pub errors: Vec<String>,
    /// `instance: notice` for every instance checked against a checklist not its own.
    pub notices: Vec<String>,
}

/// Whether a run includes the rate-limit burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Burst {
    /// Run by hand: every check.
    Always,
    /// On a schedule: the burst at most once a day per instance.
    Daily,
}

/// Checklists that check themselves.
#[derive(Debug, Clone)]
pub struct Compliance {
    ctx: Ctx,
    /// The key-age check reads the credential inventory.
    rotation: Rotation,
    /// Drift raises an alert.
    analytics: Analytics,
}

impl Compliance {
    pub(crate) fn new(ctx: Ctx, rotation: Rotation, analytics: Analytics) -> Self {
        Compliance {
            ctx,
            rotation,
            analytics,
        }
    }
}

impl Compliance {
    /// Run the automated checks on one instance or all, store the answers, and re-open (with
    /// an alert and a timeline entry) every item that passed before and fails now.
    pub async fn run_checks(&self, instance: Option<&str>, burst: Burst) -> Result<CheckRun> {
        let now = self.ctx.unix();
        let records: Vec<InstanceRecord> = self
            .ctx
            .db()
            .instances()
            .all()?
            .into_iter()
            .filter(|r| r.revoked_at.is_none() && instance.is_none_or(|i| i == r.name))
            .collect();
        if let Some(name) = instance {
            if records.is_empty() {
                return Err(Error::InstanceNotFound(name.to_owned()));
            }
        }
        let tls_minimum = self.tls_minimum()?;
        let mut run = CheckRun::default();
        let mut inventory = None;
        for record in records {
            let chosen = guides::checklist_for(
                &self.ctx.data_dir,
                &record.profile,
                record.guides.checklist.as_deref(),
            );
            let template = match guides::checklist(&self.ctx.data_dir, &chosen.name) {
                Ok(template) => template,
                Err(e) => {
                    run.errors.push(format!("{}: {e}", record.name));
                    self.ctx
                        .db()
                        .compliance()
                        .set_run(&record.name, Some(&e.to_string()), now)?;
                    continue;
                }
            };
            if let Some(notice) = &chosen.notice {
                run.notices.push(format!("{}: {notice}", record.name));
            }
            let wanted: BTreeSet<Check> = template
                .items
                .iter()
                .flat_map(|i| i.checks.iter().copied())
                .collect();
            let mut agent_checks: Vec<CheckId> = wanted
                .iter()
                .filter_map(|c| match c {
                    Check::Agent(id) => Some(*id),
                    Check::KeyAge => None,
                })
                .collect();
            if burst == Burst::Daily {
                let last = self
                    .ctx
                    .db()
                    .compliance()
                    .last_checked(&record.name, &Check::Agent(CheckId::RateLimit).name())?;
                if last.is_some_and(|t| now - t < RATE_LIMIT_EVERY) {
                    agent_checks.retain(|c| *c != CheckId::RateLimit);
                }
            }
            let mut results: Vec<Answer> = Vec::new();
            let request = ChecksRequest {
                checks: agent_checks,
                tls_minimum,
            };
            let report = match self.ctx.agent(&record).await {
                Ok(agent) => agent
                    .checks(&request, Duration::from_secs(90))
                    .await
                    .map_err(Error::from),
                Err(e) => Err(e),
            };
            match report {
                Ok(report) => {
                    results.extend(report.results.into_iter().map(Answer::from));
                }
                Err(e) => {
                    run.errors.push(format!("{}: {e}", record.name));
                    self.ctx
                        .db()
                        .compliance()
                        .set_run(&record.name, Some(&e.to_string()), now)?;
                    continue;
                }
            }
            if wanted.contains(&Check::KeyAge) {
                if inventory.is_none() {
                    inventory = Some(self.rotation.credentials().await?);
                }
                if let Some(inv) = &inventory {
                    results.push(key_age(inv, &record.name));
                }
            }
            run.instances += 1;
            run.checks += results.len() as u32;
            {
                let store = self.ctx.db();
                let compliance = store.compliance();
                for answer in &results {
                    compliance.store_answer(
                        &record.name,
                        &CheckView {
                            check: answer.name.clone(),
                            status: answer.status,
                            summary: answer.summary.clone(),
                            evidence: answer.evidence.clone(),
                            checked_at: now,
                            fixes: answer.fixes.clone(),
                        },
                    )?;
                }
                compliance.set_run(&record.name, None, now)?;
            }
            for text in self.note_drift(&record, &template, now)? {
                run.reopened.push(format!("{}: {text}", record.name));
            }
        }
        Ok(run)
    }

    /// Every instance's checklist as it stands now (waivers that ran out are ended first).
    pub fn compliance(&self, query: &ComplianceQuery) -> Result<ComplianceView> {
        let now = self.ctx.unix();
        self.expire_waivers(now)?;
        let mut fleet = Scorecard::default();
        let mut instances = Vec::new();
        // Bound first: a guard in the `for` expression would be held for the whole loop.
        let records = self.ctx.db().instances().all()?;
        for record in records {
            if query.instance.as_ref().is_some_and(|i| *i != record.name) {
                continue;
            }
            let chosen = guides::checklist_for(
                &self.ctx.data_dir,
                &record.profile,
                record.guides.checklist.as_deref(),
            );
            let template = match guides::checklist(&self.ctx.data_dir, &chosen.name) {
                Ok(template) => template,
                Err(e) => {
                    instances.push(InstanceCompliance {
                        instance: record.name.clone(),
                        profile: record.profile.clone(),
                        template: String::new(),
                        guide: String::new(),
                        notice: chosen.notice,
                        scorecard: Scorecard::default(),
                        items: Vec::new(),
                        last_run: None,
                        problem: Some(e.to_string()),
                    });
                    continue;
                }
            };
            let (last_run, problem) = self.ctx.db().compliance().run(&record.name)?;
            let mut scorecard = Scorecard::default();
            let mut items = Vec::new();
            for item in &template.items {
                let view = self.item_view(&record.name, item, now)?;
                scorecard.add(view.state);
                fleet.add(view.state);
                let keep = match query.filter {
                    None => true,
                    Some(ItemFilter::Failing) => view.state == ItemState::Fail,
                    Some(ItemFilter::Due) => view.state == ItemState::Due,
                    Some(ItemFilter::Waived) => view.state == ItemState::Waived,
                };
                if keep {
                    items.push(view);
                }
            }
            scorecard.finish();
            instances.push(InstanceCompliance {
                instance: record.name.clone(),
                profile: record.profile.clone(),
                template: template.title.clone(),
                guide: template.guide.clone(),
                notice: chosen.notice,
                scorecard,
                items,
                last_run,
                problem,
            });
        }
        fleet.finish();
        Ok(ComplianceView {
            fleet,
            instances,
            generated_at: now,
            tls_minimum: match self.tls_minimum()? {
                TlsMinimum::Tls12 => "1.2".into(),
                TlsMinimum::Tls13 => "1.3".into(),
            },
        })
    }

    /// One item's history, newest first.
    pub fn item_history(&self, instance: &str, item: &str) -> Result<Vec<HistoryEntry>> {
        self.item(instance, item)?;
        Ok(self.ctx.db().compliance().history(instance, item)?)
    }

    /// Give an item an owner and a due date (either may be cleared).
    pub fn assign_item(
        &self,
        instance: &str,
        item: &str,
        owner: Option<&str>,
        due_at: Option<i64>,
    ) -> Result<ItemView> {
        let template_item = self.item(instance, item)?;
        let owner = owner.map(str::trim).filter(|o| !o.is_empty());
        let now = self.ctx.unix();
        let detail = match (owner, due_at) {
            (Some(o), Some(d)) => format!("owner {o}, due {}", day(d)),
            (Some(o), None) => format!("owner {o}, no due date"),
            (None, Some(d)) => format!("no owner, due {}", day(d)),
            (None, None) => "owner and due date cleared".into(),
        };
        self.audit(HistoryKind::Owner, instance, item, &detail)?;
        self.ctx
            .db()
            .compliance()
            .assign(instance, item, owner, due_at)?;
        self.history(instance, item, now, HistoryKind::Owner, None, &detail)?;
        self.item_view(instance, &template_item, now)
    }

    /// Sign off a manual item as done now; it comes back when its cadence says.
    pub fn sign_off_item(&self, instance: &str, item: &str, note: &str) -> Result<ItemView> {
        let template_item = self.item(instance, item)?;
        if !template_item.checks.is_empty() {
            return Err(Error::InvalidInput {
                field: "item",
                reason: "an automated item is decided by its checks; waive it if it does not apply"
                    .into(),
            });
        }
        let now = self.ctx.unix();
        let who = operator();
        let detail = match template_item.cadence.seconds() {
            Some(s) => format!("signed off; due again {}", day(now + s)),
            None => "signed off".into(),
        };
        self.audit(HistoryKind::Signoff, instance, item, &detail)?;
        self.ctx
            .db()
            .compliance()
            .sign_off(instance, item, now, &who)?;
        let note = note.trim();
        if !note.is_empty() {
            self.ctx.db().compliance().add_evidence(
                instance,
                item,
                &NewEvidence {
                    at: now,
                    actor: &who,
                    kind: EvidenceKind::Note,
                    text: note,
                    sha256: None,
                    size: None,
                },
            )?;
        }
        self.history(
            instance,
            item,
            now,
            HistoryKind::Signoff,
            Some(ItemState::Done),
            &detail,
        )?;
        self.ctx.timeline_note(
            instance,
            Outcome::Success,
            &format!("Compliance: \"{}\" signed off by {who}", template_item.text),
        );
        self.item_view(instance, &template_item, now)
    }

    /// Attach evidence: a note, an http(s) link, or a file recorded by its SHA-256.
    pub fn add_item_evidence(
        &self,
        instance: &str,
        item: &str,
        input: &EvidenceInput,
    ) -> Result<ItemView> {
        let template_item = self.item(instance, item)?;
        let now = self.ctx.unix();
        let text = input.text.trim();
        let bad = |reason: &str| Error::InvalidInput {
            field: "evidence",
            reason: reason.into(),
        };
        let (text, sha, size) = match input.kind {
            EvidenceKind::Note if text.is_empty() => return Err(bad("the note is empty")),
            EvidenceKind::Note => (text.to_owned(), None, None),
            EvidenceKind::Link => {
                let url = reqwest::Url::parse(text)
                    .map_err(|e| bad(&format!("{text:?} is not a link: {e}")))?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(bad("a link must start with https:// or http://"));
                }
                (url.to_string(), None, None)
            }
            EvidenceKind::File => {
                let path = std::path::Path::new(text);
                let (sha, size) = sha256_file(path)
                    .map_err(|e| bad(&format!("cannot read {}: {e}", path.display())))?;
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| text.to_owned());
                (name, Some(sha), Some(size))
            }
        };
        let detail = match &sha {
            Some(sha) => format!("file {text} (SHA-256 {sha})"),
            None => format!("{}: {text}", input.kind.as_str()),
        };
        self.audit(HistoryKind::Evidence, instance, item, &detail)?;
        self.ctx.db().compliance().add_evidence(
            instance,
            item,
            &NewEvidence {
                at: now,
                actor: &operator(),
                kind: input.kind,
                text: &text,
                sha256: sha.as_deref(),
                size,
            },
        )?;
        self.history(instance, item, now, HistoryKind::Evidence, None, &detail)?;
        self.item_view(instance, &template_item, now)
    }

    /// Waive an item: not applicable or an accepted risk, with a reason, an approver and an
    /// expiry, after which it counts again.
    pub fn waive_item(&self, instance: &str, item: &str, input: &WaiverInput) -> Result<ItemView> {
        let template_item = self.item(instance, item)?;
        let now = self.ctx.unix();
        let bad = |reason: &str| Error::InvalidInput {
            field: "waiver",
            reason: reason.into(),
        };
        if input.reason.trim().is_empty() {
            return Err(bad("say why the item is waived"));
        }
        if input.approved_by.trim().is_empty() {
            return Err(bad("say who approved the waiver"));
        }
        if input.expires_at <= now {
            return Err(bad("the expiry must be in the future"));
        }
        if input.expires_at > now + MAX_WAIVER {
            return Err(bad(
                "a waiver runs two years at most; renew it when it expires",
            ));
        }
        let detail = format!(
            "waived as {} until {}, approved by {}: {}",
            input.kind.words(),
            day(input.expires_at),
            input.approved_by.trim(),
            input.reason.trim()
        );
        self.audit(HistoryKind::Waiver, instance, item, &detail)?;
        self.ctx.db().compliance().waive(
            instance,
            item,
            &NewWaiver {
                kind: input.kind,
                reason: input.reason.trim(),
                approved_by: input.approved_by.trim(),
                expires_at: input.expires_at,
                created_by: &operator(),
            },
            now,
        )?;
        self.history(
            instance,
            item,
            now,
            HistoryKind::Waiver,
            Some(ItemState::Waived),
            &detail,
        )?;
        self.ctx.timeline_note(
            instance,
            Outcome::Info,
            &format!("Compliance: \"{}\" {detail}", template_item.text),
        );
        self.item_view(instance, &template_item, now)
    }

    /// End an item's waiver now.
    pub fn end_waiver(&self, instance: &str, item: &str) -> Result<ItemView> {
        let template_item = self.item(instance, item)?;
        let now = self.ctx.unix();
        self.audit(HistoryKind::WaiverEnded, instance, item, "waiver ended")?;
        if !self.ctx.db().compliance().end_waiver(instance, item, now)? {
            return Err(Error::InvalidInput {
                field: "waiver",
                reason: "this item has no waiver".into(),
            });
        }
        self.history(
            instance,
            item,
            now,
            HistoryKind::WaiverEnded,
            None,
            "waiver ended",
        )?;
        self.item_view(instance, &template_item, now)
    }

    /// The oldest TLS version public endpoints may offer (default 1.3, as Sekha's guide asks).
    pub fn tls_minimum(&self) -> Result<TlsMinimum> {
        Ok(
            match self
                .ctx
                .db()
                .settings()
                .get(SETTING_TLS_MINIMUM)?
                .as_deref()
            {
                Some("1.2") => TlsMinimum::Tls12,
                _ => TlsMinimum::Tls13,
            },
        )
    }

    pub fn set_tls_minimum(&self, version: &str) -> Result<()> {
        match version {
            "1.2" | "1.3" => {
                self.ctx.audit(
                    "compliance_tls_minimum",
                    "fleet",
                    &format!("TLS {version} or newer"),
                )?;
                Ok(self.ctx.db().settings().set(SETTING_TLS_MINIMUM, version)?)
            }
            other => Err(Error::InvalidInput {
                field: "tls_minimum",
                reason: format!("{other:?}: choose 1.2 or 1.3"),
            }),
        }
    }

    fn item(&self, instance: &str, item: &str) -> Result<TemplateItem> {
        let record = self.ctx.instance(instance)?;
        let chosen = guides::checklist_for(
            &self.ctx.data_dir,
            &record.profile,
            record.guides.checklist.as_deref(),
        );
        let template = guides::checklist(&self.ctx.data_dir, &chosen.name)?;
        template
            .items
            .iter()
            .find(|i| i.id == item)
            .cloned()
            .ok_or_else(|| Error::NotFound {
                what: "item",
                name: format!("{item:?} in the {} checklist", template.name),
            })
    }

    fn history(
        &self,
        instance: &str,
        item: &str,
        at: i64,
        kind: HistoryKind,
        state: Option<ItemState>,
        detail: &str,
    ) -> Result<()> {
        self.ctx.db().compliance().add_history(
            instance,
            item,
            at,
            kind,
            state,
            detail,
            &operator(),
        )?;
        Ok(())
    }

    /// What an operator does to an item (not what a check run finds), in the audit log
    /// before it is done.
    fn audit(&self, kind: HistoryKind, instance: &str, item: &str, detail: &str) -> Result<()> {
        self.ctx.audit(
            &format!("compliance_{}", kind.as_str()),
            &format!("{instance}/{item}"),
            detail,
        )
    }

    /// Compare each automated item with its state at the last run: a pass turned fail
    /// re-opens it, raises an alert and goes on the timeline.
    fn note_drift(
        &self,
        record: &InstanceRecord,
        template: &Template,
        now: i64,
    ) -> Result<Vec<String>> {
        let mut reopened = Vec::new();
        for item in template.items.iter().filter(|i| !i.checks.is_empty()) {
            let view = self.item_view(&record.name, item, now)?;
            let checked = item_checks_state(&view.checks, item.checks.len());
            let previous = self
                .ctx
                .db()
                .compliance()
                .item(&record.name, &item.id)?
                .last_state;
            if previous == Some(checked) {
                continue;
            }
            self.ctx
                .db()
                .compliance()
                .set_last_state(&record.name, &item.id, checked, now)?;
            let failing: Vec<&CheckView> = view
                .checks
                .iter()
                .filter(|c| c.status == CheckState::Fail)
                .collect();
            let why = failing
                .iter()
                .map(|c| c.summary.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            if previous == Some(ItemState::Pass) && checked == ItemState::Fail {
                let detail = format!("passed before, fails now: {why}");
                self.history(
                    &record.name,
                    &item.id,
                    now,
                    HistoryKind::Reopened,
                    Some(ItemState::Fail),
                    &detail,
                )?;
                self.ctx.record_action(
                    &record.name,
                    Outcome::Failure,
                    &format!("Compliance: \"{}\" re-opened: {why}", item.text),
                );
                self.analytics.raise_compliance_alert(
                    &record.name,
                    &item.id,
                    &format!("\"{}\" fails again: {why}", item.text),
                )?;
                reopened.push(item.text.clone());
            } else {
                if checked == ItemState::Pass {
                    // Its drift alert, if any is open, is over: the item passes again.
                    self.analytics
                        .resolve_compliance_alert(&record.name, &item.id)?;
                }
                let detail = match checked {
                    ItemState::Fail => why,
                    ItemState::Pass => "every check passes".into(),
                    _ => "could not be decided".into(),
                };
                self.history(
                    &record.name,
                    &item.id,
                    now,
                    HistoryKind::Check,
                    Some(checked),
                    &detail,
                )?;
            }
        }
        Ok(reopened)
    }

    fn expire_waivers(&self, now: i64) -> Result<()> {
        let lapsed = self.ctx.db().compliance().lapsed_waivers(now)?;
        for (instance, item, expires_at) in lapsed {
            self.ctx.db().compliance().expire_waiver(&instance, &item)?;
            self.history(
                &instance,
                &item,
                expires_at,
                HistoryKind::WaiverExpired,
                None,
                "the waiver expired: the item counts again",
            )?;
        }
        Ok(())
    }

    fn item_view(&self, instance: &str, item: &TemplateItem, now: i64) -> Result<ItemView> {
        let store = self.ctx.db();
        let compliance = store.compliance();
        let record = compliance.item(instance, &item.id)?;
        let (owner, assigned_due, signed_off_at, signed_off_by) = (
            record.owner,
            record.due_at,
            record.signed_off_at,
            record.signed_off_by,
        );
        let mut checks = Vec::new();
        for check in &item.checks {
            if let Some(found) = compliance.answer(instance, &check.name())? {
                checks.push(found);
            }
        }
        let evidence = compliance.evidence(instance, &item.id)?;
        let waiver = compliance.waiver(instance, &item.id, now)?;
        let reopened = compliance.reopened(instance, &item.id)?;
        drop(store);

        let automated = !item.checks.is_empty();
        let (mut state, mut state_text, due_at) = if automated {
            let state = item_checks_state(&checks, item.checks.len());
            let text = match state {
                ItemState::Pass => "every check passes".to_owned(),
                ItemState::Fail => unique(checks.iter().filter(|c| c.status == CheckState::Fail)),
                _ if checks.len() < item.checks.len() => "not checked yet: run the checks".into(),
                _ => unique(checks.iter().filter(|c| c.status == CheckState::Unknown)),
            };
            (state, text, assigned_due)
        } else {
            let next_due = match (signed_off_at, item.cadence.seconds()) {
                (Some(at), Some(every)) => Some(at + every),
                (Some(_), None) => None,
                (None, _) => assigned_due,
            };
            match signed_off_at {
                Some(at) if next_due.is_none_or(|d| now < d) => (
                    ItemState::Done,
                    format!(
                        "signed off {} by {}{}",
                        day(at),
                        signed_off_by.clone().unwrap_or_default(),
                        next_due
                            .map(|d| format!("; due again {}", day(d)))
                            .unwrap_or_default()
                    ),
                    next_due,
                ),
                Some(at) => (
                    ItemState::Due,
                    format!(
                        "due again since {} (last signed off {})",
                        day(next_due.unwrap_or(at)),
                        day(at)
                    ),
                    next_due,
                ),
                None => (
                    ItemState::Due,
                    match assigned_due {
                        Some(d) => format!("not done yet; due {}", day(d)),
                        None => "not done yet".into(),
                    },
                    assigned_due,
                ),
            }
        };
        if let Some(w) = &waiver {
            state_text = format!(
                "waived as {} until {} ({}; approved by {})",
                w.kind.words(),
                day(w.expires_at),
                w.reason,
                w.approved_by
            );
            state = ItemState::Waived;
        }
        let overdue =
            matches!(state, ItemState::Due | ItemState::Fail) && due_at.is_some_and(|d| d < now);
        Ok(ItemView {
            instance: instance.to_owned(),
            id: item.id.clone(),
            section: item.section.clone(),
            text: item.text.clone(),
            source: item.source.clone(),
            why: item.why.clone(),
            cadence: item.cadence,
            automated,
            state,
            state_text,
            checks,
            owner,
            due_at,
            overdue,
            signed_off_at,
            signed_off_by,
            evidence,
            waiver,
            reopened: reopened && state == ItemState::Fail,
        })
    }
}

/// The checks' summaries, each once (several checks of one probe can say the same thing).
fn unique<'a>(checks: impl Iterator<Item = &'a CheckView>) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for c in checks {
        if !seen.contains(&c.summary.as_str()) {
            seen.push(&c.summary);
        }
    }
    seen.join("; ")
}

fn item_checks_state(checks: &[CheckView], wanted: usize) -> ItemState {
    if checks.iter().any(|c| c.status == CheckState::Fail) {
        ItemState::Fail
    } else if checks.len() < wanted || checks.iter().any(|c| c.status != CheckState::Pass) {
        ItemState::Unknown
    } else {
        ItemState::Pass
    }
}

/// The instance's keys against their rotation policy, from the credential inventory.
fn key_age(inventory: &crate::CredentialInventory, instance: &str) -> Answer {
    // Past its rotation date; a weak key fails the key checks, not this one.
    let overdue = |c: &&crate::Credential| c.due_at.is_some_and(|due| due <= inventory.checked_at);
    let keys: Vec<_> = inventory
        .credentials
        .iter()
        .filter(|c| {
            c.instance.as_deref() == Some(instance)
                && matches!(c.kind, CredentialKind::ApiKey | CredentialKind::JwtSecret)
        })
        .collect();
    let evidence: Vec<String> = keys
        .iter()
        .map(|c| {
            format!(
                "{} (fingerprint {}): set {}, due {} ({}) — {}",
                c.name,
                c.fingerprint,
                c.set_at.map(day).unwrap_or_else(|| "?".into()),
                c.due_at.map(day).unwrap_or_else(|| "?".into()),
                c.policy,
                c.status_text
            )
        })
        .collect();
    let (status, summary) = if keys.is_empty() {
        (
            CheckState::Unknown,
            "no key of this instance is in the inventory".to_owned(),
        )
    } else if keys.iter().any(&overdue) {
        (
            CheckState::Fail,
            "a key is past its rotation date".to_owned(),
        )
    } else {
        (
            CheckState::Pass,
            "every key is within its rotation period".to_owned(),
        )
    };
    // An overdue key is fixed by rotating it.
    let fixes = keys
        .iter()
        .filter(|c| overdue(c))
        .map(|c| c.name.clone())
        .collect();
    Answer {
        name: Check::KeyAge.name(),
        status,
        summary,
        evidence,
        fixes,
    }
}

/// One check's answer, from an agent or the console.
struct Answer {
    name: String,
    status: CheckState,
    summary: String,
    evidence: Vec<String>,
    fixes: Vec<String>,
}

impl From<CheckResult> for Answer {
    fn from(r: CheckResult) -> Self {
        Answer {
            name: Check::Agent(r.check).name(),
            status: match r.status {
                CheckStatus::Pass => CheckState::Pass,
                CheckStatus::Fail => CheckState::Fail,
                CheckStatus::Unknown => CheckState::Unknown,
            },
            summary: r.summary,
            evidence: r.evidence,
            // An agent's word: kept only when it reads as a key's name or key path
            // (`auth.tokens[1].token`; it is shown as a command to run), at most a few.
            fixes: r
                .fixes
                .into_iter()
                .filter(|name| {
                    !name.is_empty()
                        && name.len() <= 128
                        && name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "_.-[]".contains(c))
                })
                .take(16)
                .collect(),
        }
    }
}

fn sha256_file(path: &std::path::Path) -> std::io::Result<(String, i64)> {
    use std::io::Read;
    if !std::fs::metadata(path)?.is_file() {
        // A device or a pipe could be read forever.
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut file = std::fs::File::open(path)?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0i64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as i64;
        ctx.update(&buf[..n]);
    }
    let hex: String = ctx
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((hex, size))
}

/// A Unix time as its UTC date.
pub(crate) fn day(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| t.strftime("%Y-%m-%d").to_string())
        .unwrap_or_else(|_| unix.to_string())
}

/// The templates' items by id, for the report and the CLI.
pub fn items_by_id(template: &Template) -> BTreeMap<&str, &TemplateItem> {
    template.items.iter().map(|i| (i.id.as_str(), i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, due_at: i64, weak: bool) -> crate::Credential {
        crate::Credential {
            id: format!("sekha-1/api_key/{name}"),
            instance: Some("sekha-1".into()),
            kind: CredentialKind::ApiKey,
            name: name.into(),
            location: "/srv/sekha/config.toml".into(),
            fingerprint: "9f86d081884c7d65".into(),
            set_at: Some(due_at - 90 * 86_400),
            last_rotation: None,
            expires_at: None,
            due_at: Some(due_at),
            policy: "every 90 days".into(),
            status: if weak {
                crate::Status::Failing
            } else {
                crate::Status::Ok
            },
            status_text: if weak {
                "weak value: rotate it now".into()
            } else {
                "due later".into()
            },
            weak,
        }
    }

    #[test]
    fn key_age_fails_only_for_a_key_past_its_date_and_offers_rotating_it() {
        let now = 1_800_000_000;
        let inventory = |credentials| crate::CredentialInventory {
            credentials,
            problems: Vec::new(),
            key_days: Default::default(),
            checked_at: now,
        };
        let weak_only = key_age(
            &inventory(vec![key("mcp_api_key", now + 90 * 86_400, true)]),
            "sekha-1",
        );
        assert_eq!(
            weak_only.status,
            CheckState::Pass,
            "a weak key that is not due does not fail the age check (the key checks say it is \
             weak): {}",
            weak_only.summary
        );
        let overdue = key_age(
            &inventory(vec![
                key("mcp_api_key", now - 86_400, false),
                key("other", now + 86_400, false),
            ]),
            "sekha-1",
        );
        assert_eq!(
            (
                overdue.status,
                overdue.summary.as_str(),
                overdue.fixes.as_slice()
            ),
            (
                CheckState::Fail,
                "a key is past its rotation date",
                &["mcp_api_key".to_owned()][..]
            ),
            "an overdue key fails, and rotating it is the fix"
        );
    }

    #[test]
    fn the_built_in_templates_parse_and_hold_the_guides_lists() {
        let names: Vec<&str> = templates().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            ["sekha", "rae", "jelmore", "jupyter", "radicale", "generic"],
            "one template per built-in profile, and the generic one"
        );
        let sections = |name: &str| -> BTreeSet<String> {
            template(name)
                .expect("template")
                .items
                .iter()
                .map(|i| i.section.clone())
                .collect()
        };
        for (name, wanted) in [
            (
                "sekha",
                ["Pre-deployment", "Post-deployment", "Ongoing maintenance"].as_slice(),
            ),
            (
                "rae",
                ["Development", "Deployment", "Operations"].as_slice(),
            ),
            (
                "jelmore",
                ["Daily", "Weekly", "Monthly", "Quarterly"].as_slice(),
            ),
        ] {
            let have = sections(name);
            for section in wanted {
                assert!(
                    have.contains(*section),
                    "{name} has the guide's {section} list: {have:?}"
                );
            }
        }
        for t in templates() {
            let mut ids = BTreeSet::new();
            for item in &t.items {
                assert!(
                    ids.insert(&item.id),
                    "{}: item ids are unique ({})",
                    t.name,
                    item.id
                );
            }
            assert!(
                t.items.iter().any(|i| i.checks.is_empty())
                    && t.items.iter().any(|i| !i.checks.is_empty()),
                "{}: has both manual and automated items",
                t.name
            );
        }
    }

    #[test]
    fn unknown_check_names_are_refused() {
        let bad = "name='x'\ntitle='x'\nguide='x'\n[[items]]\nid='a'\nsection='s'\ntext='t'\nsource='s'\ncadence='once'\nchecks=['tls_vresions']\n";
        let err = toml::from_str::<Template>(bad).expect_err("a misspelt check");
        assert!(
            err.to_string().contains("tls_vresions"),
            "names the bad check: {err}"
        );
    }

    #[test]
    fn the_score_counts_what_is_not_waived() {
        let mut card = Scorecard::default();
        for s in [
            ItemState::Pass,
            ItemState::Done,
            ItemState::Fail,
            ItemState::Due,
            ItemState::Waived,
        ] {
            card.add(s);
        }
        card.finish();
        assert_eq!(
            (card.total, card.passing, card.waived),
            (5, 2, 1),
            "each state is counted"
        );
        assert_eq!(card.score, 50, "2 of the 4 items not waived are done");
    }
}
