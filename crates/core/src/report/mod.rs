//! The compliance report: one self-contained HTML page that prints well to PDF (scorecards,
//! a chart, every item's state and evidence), or the same data as JSON.
//!
//! Every string that came from a host or an operator is escaped; the page has no script.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::analytics::Analytics;
use crate::compliance::{
    day, Compliance, ComplianceQuery, ComplianceView, ItemState, ItemView, Scorecard,
};
use crate::context::Ctx;
use crate::incidents::Incidents;
use crate::{EntryKind, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ReportFormat {
    Html,
    Json,
}

impl ReportFormat {
    pub fn extension(self) -> &'static str {
        match self {
            ReportFormat::Html => "html",
            ReportFormat::Json => "json",
        }
    }
}

/// Reports: compliance (HTML that prints to PDF, or JSON) and post-incident.
#[derive(Debug, Clone)]
pub struct Reports {
    ctx: Ctx,
    compliance: Compliance,
    incidents: Incidents,
    /// The incident report's heatmap.
    analytics: Analytics,
}

impl Reports {
    pub(crate) fn new(
        ctx: Ctx,
        compliance: Compliance,
        incidents: Incidents,
        analytics: Analytics,
    ) -> Self {
        Reports {
            ctx,
            compliance,
            incidents,
            analytics,
        }
    }
}

impl Reports {
    /// The compliance report of the whole fleet (or one instance).
    pub fn compliance(&self, query: &ComplianceQuery, format: ReportFormat) -> Result<String> {
        let view = self.compliance.compliance(query)?;
        Ok(match format {
            ReportFormat::Json => {
                let doc = serde_json::json!({
                    "report": "gatehouse-compliance",
                    "generated_at_utc": crate::utc(view.generated_at * 1_000_000),
                    "compliance": view,
                });
                serde_json::to_string_pretty(&doc).unwrap_or_default()
            }
            ReportFormat::Html => html(&view),
        })
    }
}

impl Reports {
    /// Write the report into `dir` (the window's Downloads folder); returns the file's path.
    pub fn compliance_to_dir(&self, format: ReportFormat, dir: &std::path::Path) -> Result<String> {
        let text = self.compliance(&ComplianceQuery::default(), format)?;
        let stamp = crate::utc(self.ctx.unix() * 1_000_000).replace([':', '.'], "-");
        let path = dir.join(format!(
            "gatehouse-compliance-{stamp}.{}",
            format.extension()
        ));
        std::fs::write(&path, text).map_err(|source| crate::Error::WriteFailed {
            path: path.clone(),
            source,
        })?;
        Ok(path.display().to_string())
    }
}

impl Reports {
    /// Write the post-incident report into `dir`; returns the file's path.
    pub fn incident_to_dir(
        &self,
        id: i64,
        markdown: bool,
        dir: &std::path::Path,
    ) -> Result<String> {
        let text = self.incident(id, markdown)?;
        let path = dir.join(format!(
            "gatehouse-incident-{id}.{}",
            if markdown { "md" } else { "html" }
        ));
        std::fs::write(&path, text).map_err(|source| crate::Error::WriteFailed {
            path: path.clone(),
            source,
        })?;
        Ok(path.display().to_string())
    }

    /// The post-incident report: Markdown, or HTML that prints well to PDF (with the
    /// heatmap of the incident's addresses over its window).
    pub fn incident(&self, id: i64, markdown: bool) -> Result<String> {
        let view = self.incidents.incident(id)?;
        let i = &view.incident;
        let when = |us: i64| minute(us.div_euclid(1_000_000));
        let status = serde_json::to_value(i.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let actions: Vec<&crate::IncidentEntry> = view
            .log
            .iter()
            .filter(|e| e.kind == EntryKind::Action)
            .collect();
        let decisions: Vec<&crate::IncidentEntry> = view
            .log
            .iter()
            .filter(|e| e.kind == EntryKind::Decision)
            .collect();
        let writes = self.incidents.incident_writes(id)?;
        let (events, more_events) = self.incidents.incident_events(id, REPORT_EVENTS)?;
        let event_line = |e: &crate::TimelineEvent| -> (String, String, String) {
            let what = [e.method.as_deref(), e.path.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            let what = match (what.is_empty(), e.message.as_deref()) {
                (true, Some(message)) => message.to_owned(),
                (false, Some(message)) => format!("{what} · {message}"),
                _ => what,
            };
            (
                format!("{} {}", e.kind.as_str(), e.outcome.as_str()),
                e.ip.clone().unwrap_or_else(|| "-".into()),
                match e.status {
                    Some(status) => format!("{status} {what}"),
                    None => what,
                },
            )
        };
        let events_note = if more_events {
            format!(
                "The {} newest of more in the window; the timeline lists them all.",
                events.len()
            )
        } else {
            format!("{} event(s) in the window.", events.len())
        };
        if markdown {
            let mut out = String::new();
            let _ = writeln!(out, "# Incident {}: {}\n", i.id, md(&i.title));
            let _ = writeln!(out, "| | |\n|---|---|");
            let _ = writeln!(out, "| Status | {status} |");
            let _ = writeln!(out, "| Severity | {} |", i.severity.as_str());
            let _ = writeln!(out, "| Owner | {} |", md(i.owner.as_deref().unwrap_or("-")));
            let _ = writeln!(out, "| Opened | {} |", md(&i.source));
            let _ = writeln!(out, "| Instances | {} |", md(&i.instances.join(", ")));
            let _ = writeln!(
                out,
                "| Addresses | {} |",
                if i.ips.is_empty() {
                    "-".into()
                } else {
                    i.ips.join(", ")
                }
            );
            let _ = writeln!(out, "| Window | {} to {} |", when(i.from_us), when(i.to_us));
            let _ = writeln!(
                out,
                "| Failed sign-ins in the window | {} |",
                view.failed_attempts
            );
            let _ = writeln!(
                out,
                "| Writes and deletes in the window | {} |\n",
                writes.len()
            );
            let _ = writeln!(out, "## Decisions\n");
            if decisions.is_empty() {
                let _ = writeln!(out, "None recorded.\n");
            }
            for d in &decisions {
                let _ = writeln!(
                    out,
                    "- {} ({}, {})",
                    md(&d.text),
                    md(&d.actor),
                    when(d.at_us)
                );
            }
            let _ = writeln!(out, "\n## Actions and their verified results\n");
            if actions.is_empty() {
                let _ = writeln!(out, "None.\n");
            }
            for a in &actions {
                let verdict = match a.ok {
                    Some(true) => "verified",
                    Some(false) => "NOT verified",
                    None => "-",
                };
                let _ = writeln!(
                    out,
                    "- **{}**: {verdict} ({}, {})",
                    md(&a.text),
                    md(&a.actor),
                    when(a.at_us)
                );
                for step in &a.steps {
                    let _ = writeln!(out, "  - {}", md(step));
                }
            }
            let _ = writeln!(out, "\n## Events\n\n{events_note}\n");
            if !events.is_empty() {
                let _ = writeln!(
                    out,
                    "| Time (UTC) | Instance | Event | Address | Request or message |\n|---|---|---|---|---|"
                );
            }
            for e in &events {
                let (what, ip, line) = event_line(e);
                let _ = writeln!(
                    out,
                    "| {} | {} | {what} | {} | {} |",
                    second(e.time_us),
                    md(&e.instance),
                    md(&ip),
                    md(&line)
                );
            }
            let _ = writeln!(out, "\n## Incident log\n");
            for e in &view.log {
                let _ = writeln!(
                    out,
                    "- {} {} ({}): {}",
                    when(e.at_us),
                    e.kind,
                    md(&e.actor),
                    md(&e.text)
                );
            }
            return Ok(out);
        }
        let mut out = String::new();
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Incident {} report</title><style>{STYLE}</style></head><body>",
            i.id
        );
        let _ = write!(
            out,
            "<h1>Incident {}: {}</h1><p class=\"meta\">Gatehouse · post-incident report · {status} · severity {}</p>",
            i.id,
            esc(&i.title),
            i.severity.as_str()
        );
        out.push_str("<table><tbody>");
        for (k, v) in [
            ("Owner", i.owner.clone().unwrap_or_else(|| "-".into())),
            ("Opened", i.source.clone()),
            ("Instances", i.instances.join(", ")),
            (
                "Addresses",
                if i.ips.is_empty() {
                    "-".into()
                } else {
                    i.ips.join(", ")
                },
            ),
            (
                "Window",
                format!("{} to {}", when(i.from_us), when(i.to_us)),
            ),
            (
                "Failed sign-ins in the window",
                view.failed_attempts.to_string(),
            ),
            ("Writes and deletes in the window", writes.len().to_string()),
        ] {
            let _ = write!(out, "<tr><th>{k}</th><td>{}</td></tr>", esc(&v));
        }
        out.push_str("</tbody></table>");
        if let Some(instance) = i.instances.first() {
            // The smallest of the charts' windows that holds the incident's, ending with it.
            let span = i.to_us - i.from_us;
            let window = [
                crate::Window::Day,
                crate::Window::Week,
                crate::Window::Month,
            ]
            .into_iter()
            .find(|w| span <= w.days() * 86_400_000_000)
            .unwrap_or(crate::Window::Quarter);
            let query = crate::HeatmapQuery {
                kind: crate::HeatmapKind::AddressTime,
                window,
                instance: Some(instance.clone()),
                ..crate::HeatmapQuery::default()
            };
            if let Ok(chart) = self.analytics.heatmap_until(&query, i.to_us) {
                let _ = write!(
                    out,
                    "<h2>Failed sign-ins on {}, top addresses, the {} to {}</h2><div class=\"chart\">",
                    esc(instance),
                    match window {
                        crate::Window::Day => "24 hours".to_owned(),
                        w => format!("{} days", w.days()),
                    },
                    when(i.to_us)
                );
                out.push_str(&chart.svg);
                out.push_str("</div>");
            }
        }
        let _ = write!(
            out,
            "<h2>Events</h2><p class=\"small\">{}</p>",
            esc(&events_note)
        );
        if !events.is_empty() {
            out.push_str("<table class=\"events\"><thead><tr><th>Time (UTC)</th><th>Instance</th><th>Event</th><th>Address</th><th>Request or message</th></tr></thead><tbody>");
            for e in &events {
                let (what, ip, line) = event_line(e);
                let _ = write!(
                    out,
                    "<tr><td class=\"small\" style=\"white-space:nowrap\">{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                    second(e.time_us),
                    esc(&e.instance),
                    esc(&what),
                    esc(&ip),
                    esc(&line)
                );
            }
            out.push_str("</tbody></table>");
        }
        out.push_str("<h2>Decisions</h2><ul>");
        if decisions.is_empty() {
            out.push_str("<li>None recorded.</li>");
        }
        for d in &decisions {
            let _ = write!(
                out,
                "<li>{} <span class=\"small\">({}, {})</span></li>",
                esc(&d.text),
                esc(&d.actor),
                when(d.at_us)
            );
        }
        out.push_str("</ul><h2>Actions and their verified results</h2><table><thead><tr><th style=\"width:8em\">Result</th><th>Action</th></tr></thead><tbody>");
        for a in &actions {
            let (icon, word, class) = match a.ok {
                Some(true) => ("✔", "verified", "ok"),
                Some(false) => ("✖", "not verified", "bad"),
                None => ("?", "-", "unknown"),
            };
            let _ = write!(
                out,
                "<tr><td class=\"state {class}\">{icon} {word}</td><td><div class=\"item-text\">{}</div><div class=\"small\">{} · {}</div><ul class=\"evidence\">",
                esc(&a.text),
                esc(&a.actor),
                when(a.at_us)
            );
            for step in &a.steps {
                let _ = write!(out, "<li>{}</li>", esc(step));
            }
            out.push_str("</ul></td></tr>");
        }
        out.push_str("</tbody></table><h2>Incident log</h2><table><tbody>");
        for e in &view.log {
            let _ = write!(
                out,
                "<tr><td class=\"small\" style=\"white-space:nowrap\">{}</td><td>{}</td><td>{} <span class=\"small\">({})</span></td></tr>",
                when(e.at_us),
                esc(e.kind.as_str()),
                esc(&e.text),
                esc(&e.actor)
            );
        }
        out.push_str("</tbody></table></body></html>\n");
        Ok(out)
    }
}

use crate::escape::html as esc;
use crate::escape::markdown as md;

/// Events listed in an incident report, the newest of its window.
const REPORT_EVENTS: u32 = 200;

/// A time to the second, in UTC, from microseconds.
fn second(us: i64) -> String {
    jiff::Timestamp::from_second(us.div_euclid(1_000_000))
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|_| "-".into())
}

/// The word and icon of a state, the same as in the window.
fn badge(state: ItemState) -> (&'static str, &'static str, &'static str) {
    match state {
        ItemState::Pass => ("✔", "pass", "ok"),
        ItemState::Done => ("✔", "done", "ok"),
        ItemState::Fail => ("✖", "fail", "bad"),
        ItemState::Due => ("●", "due", "warn"),
        ItemState::Unknown => ("?", "unknown", "unknown"),
        ItemState::Waived => ("–", "waived", "waived"),
    }
}

const STYLE: &str = r#"
:root { --ok: #1a7f37; --bad: #c62828; --warn: #9a6700; --unknown: #57606a; --waived: #6e40c9; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font: 11pt/1.45 "DejaVu Sans", system-ui, sans-serif; color: #1f2328; margin: 2em auto; max-width: 60em; padding: 0 1.5em; }
h1 { font-size: 1.6em; margin: 0 0 .2em; }
h2 { font-size: 1.25em; margin: 1.6em 0 .4em; border-bottom: 2px solid var(--line); padding-bottom: .2em; }
h3 { font-size: 1em; margin: 1.2em 0 .3em; color: #57606a; text-transform: uppercase; letter-spacing: .04em; }
.meta { color: #57606a; margin: 0 0 1em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35em .5em; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: .85em; color: #57606a; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.state { white-space: nowrap; font-weight: 600; }
.ok { color: var(--ok); } .bad { color: var(--bad); } .warn { color: var(--warn); }
.unknown { color: var(--unknown); } .waived { color: var(--waived); }
.item-text { font-weight: 600; }
.small { font-size: .85em; color: #57606a; }
ul.evidence { margin: .2em 0 0; padding-left: 1.2em; font-size: .85em; }
ul.evidence li { word-break: break-word; }
code { font: .9em "DejaVu Sans Mono", monospace; }
.chart { margin: .5em 0 1em; }
.chart svg { max-width: 100%; height: auto; }
table.events td { font-size: .85em; word-break: break-word; }
@media print {
  body { margin: 0; max-width: none; font-size: 9.5pt; }
  h2 { break-after: avoid; }
  tr, .instance-head { break-inside: avoid; }
  section.instance { break-before: page; }
  * { print-color-adjust: exact; -webkit-print-color-adjust: exact; }
}
"#;

fn html(view: &ComplianceView) -> String {
    let mut out = String::new();
    let generated = minute(view.generated_at);
    let _ = writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Gatehouse compliance report, {}</title><style>{STYLE}</style></head><body>",
        esc(&day(view.generated_at))
    );
    let _ = writeln!(
        out,
        "<h1>Compliance report</h1><p class=\"meta\">Gatehouse · generated {} · {} instance(s) · \
         public endpoints must offer TLS {} or newer</p>",
        esc(&generated),
        view.instances.len(),
        esc(&view.tls_minimum)
    );
    out.push_str("<h2>Scorecard</h2>\n<table><thead><tr><th>Instance</th><th>Checklist</th>\
        <th class=\"num\">Score</th><th class=\"num\">Passing</th><th class=\"num\">Failing</th>\
        <th class=\"num\">Due</th><th class=\"num\">Unknown</th><th class=\"num\">Waived</th><th>Last checked</th></tr></thead><tbody>\n");
    for i in &view.instances {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td>{}<td>{}</td></tr>",
            esc(&i.instance),
            esc(&i.template),
            score_cells(&i.scorecard),
            i.last_run.map(minute).unwrap_or_else(|| "never".into())
        );
    }
    let _ = writeln!(
        out,
        "<tr><th>Fleet</th><th></th>{}<th></th></tr></tbody></table>",
        score_cells(&view.fleet)
            .replace("<td", "<th")
            .replace("</td>", "</th>")
    );
    out.push_str("<div class=\"chart\">");
    out.push_str(&chart(view));
    out.push_str("</div>\n");

    for i in &view.instances {
        let _ = writeln!(
            out,
            "<section class=\"instance\"><h2 class=\"instance-head\">{} <span class=\"small\">{} · {} · score {}%</span></h2>",
            esc(&i.instance),
            esc(&i.profile),
            esc(&i.guide),
            i.scorecard.score
        );
        if let Some(notice) = &i.notice {
            let _ = writeln!(out, "<p class=\"small\">{}</p>", esc(notice));
        }
        if let Some(problem) = &i.problem {
            let _ = writeln!(out, "<p class=\"bad\">{}</p>", esc(problem));
        }
        let mut section = "";
        for item in &i.items {
            if item.section != section {
                if !section.is_empty() {
                    out.push_str("</tbody></table>\n");
                }
                section = &item.section;
                let _ = writeln!(
                    out,
                    "<h3>{}</h3><table><thead><tr><th style=\"width:7em\">State</th><th>Item</th></tr></thead><tbody>",
                    esc(section)
                );
            }
            item_row(&mut out, item);
        }
        if !section.is_empty() {
            out.push_str("</tbody></table>\n");
        }
        out.push_str("</section>\n");
    }
    out.push_str("</body></html>\n");
    out
}

/// A Unix time to the minute, in UTC.
fn minute(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|_| unix.to_string())
}

fn score_cells(s: &Scorecard) -> String {
    format!(
        "<td class=\"num\">{}%</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>",
        s.score, s.passing, s.failing, s.due, s.unknown, s.waived
    )
}

fn item_row(out: &mut String, item: &ItemView) {
    let (icon, word, class) = badge(item.state);
    let _ =
        write!(
        out,
        "<tr><td class=\"state {class}\">{icon} {word}{}</td><td><div class=\"item-text\">{}</div>\
         <div class=\"small\">{} · {} · {}</div><div>{}</div>",
        if item.reopened { "<br><span class=\"small bad\">re-opened</span>" } else { "" },
        esc(&item.text),
        esc(&item.source),
        if item.automated { "automated" } else { "manual" },
        esc(cadence_word(item.cadence)),
        esc(&item.state_text)
    );
    let mut lines: Vec<String> = Vec::new();
    for c in &item.checks {
        lines.push(format!(
            "<b>{}</b> {}: {} <span class=\"small\">({})</span>",
            esc(&c.check),
            esc(c.status.as_str()),
            esc(&c.summary),
            minute(c.checked_at)
        ));
        for e in &c.evidence {
            lines.push(format!("<code>{}</code>", esc(e)));
        }
    }
    if let Some(owner) = &item.owner {
        lines.push(format!("owner: {}", esc(owner)));
    }
    if let Some(due) = item.due_at {
        lines.push(format!(
            "due: {}{}",
            esc(&day(due)),
            if item.overdue {
                " <b class=\"bad\">overdue</b>"
            } else {
                ""
            }
        ));
    }
    for e in &item.evidence {
        let what = match (&e.sha256, e.size) {
            (Some(sha), Some(size)) => format!(
                "file {} ({size} bytes, SHA-256 <code>{}</code>)",
                esc(&e.text),
                esc(sha)
            ),
            _ => esc(&e.text),
        };
        lines.push(format!(
            "evidence, {} by {}: {what}",
            esc(&day(e.at)),
            esc(&e.actor)
        ));
    }
    if let Some(w) = &item.waiver {
        lines.push(format!(
            "waiver #{}: {} until {}, approved by {}: {}",
            w.id,
            match w.kind {
                crate::WaiverKind::NotApplicable => "not applicable",
                crate::WaiverKind::AcceptedRisk => "accepted risk",
            },
            esc(&day(w.expires_at)),
            esc(&w.approved_by),
            esc(&w.reason)
        ));
    }
    if !lines.is_empty() {
        out.push_str("<ul class=\"evidence\">");
        for l in lines {
            let _ = write!(out, "<li>{l}</li>");
        }
        out.push_str("</ul>");
    }
    out.push_str("</td></tr>\n");
}

fn cadence_word(c: crate::Cadence) -> &'static str {
    match c {
        crate::Cadence::Once => "once",
        crate::Cadence::Daily => "daily",
        crate::Cadence::Weekly => "weekly",
        crate::Cadence::Monthly => "monthly",
        crate::Cadence::Quarterly => "quarterly",
        crate::Cadence::Yearly => "yearly",
    }
}

/// A bar segment: its name, colour, and the count it shows.
type Part = (&'static str, &'static str, fn(&Scorecard) -> u32);

/// One stacked bar per instance: passing, failing, due, unknown, waived.
fn chart(view: &ComplianceView) -> String {
    const W: i64 = 720;
    const LABEL: i64 = 150;
    const BAR: i64 = 22;
    const GAP: i64 = 10;
    let rows = view.instances.len() as i64;
    let height = 34 + rows * (BAR + GAP);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{height}\" viewBox=\"0 0 {W} {height}\" \
         role=\"img\" aria-label=\"Checklist items by state, per instance\" font-family=\"DejaVu Sans, sans-serif\" font-size=\"12\">"
    );
    let parts: [Part; 5] = [
        ("passing", "#1a7f37", |s| s.passing),
        ("failing", "#c62828", |s| s.failing),
        ("due", "#bf8700", |s| s.due),
        ("unknown", "#8c959f", |s| s.unknown),
        ("waived", "#8250df", |s| s.waived),
    ];
    let mut x = LABEL;
    for (name, colour, _) in parts {
        let _ = write!(
            svg,
            "<rect x=\"{x}\" y=\"4\" width=\"12\" height=\"12\" fill=\"{colour}\"/><text x=\"{}\" y=\"14\">{name}</text>",
            x + 16
        );
        x += 100;
    }
    for (row, i) in view.instances.iter().enumerate() {
        let y = 30 + row as i64 * (BAR + GAP);
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            LABEL - 8,
            y + BAR / 2 + 4,
            esc(&i.instance)
        );
        let total = i64::from(i.scorecard.total.max(1));
        let mut x = LABEL;
        for (name, colour, count) in parts {
            let n = i64::from(count(&i.scorecard));
            if n == 0 {
                continue;
            }
            let w = (W - LABEL - 50) * n / total;
            let _ = write!(
                svg,
                "<rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{BAR}\" fill=\"{colour}\"><title>{n} {name}</title></rect>"
            );
            if w >= 18 {
                let _ = write!(
                    svg,
                    "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#fff\">{n}</text>",
                    x + w / 2,
                    y + BAR / 2 + 4
                );
            }
            x += w;
        }
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\">{}%</text>",
            x + 6,
            y + BAR / 2 + 4,
            i.scorecard.score
        );
    }
    svg.push_str("</svg>");
    svg
}
