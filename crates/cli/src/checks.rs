//! `gatehouse checks`: run, list and export the compliance checklists, and the manual side
//! (owner, sign-off, evidence, waivers).

use std::path::PathBuf;
use std::process::ExitCode;

use gatehouse_core::{
    Burst, ComplianceQuery, Console, Error, EvidenceInput, EvidenceKind, ItemFilter, ReportFormat,
    WaiverInput, WaiverKind,
};

use crate::{print_json, printable, runtime};

#[derive(Debug, clap::Subcommand)]
pub enum ChecksAction {
    /// Run the automated checks now (every instance, or one), including the rate-limit burst.
    Run { instance: Option<String> },
    /// Every item with its state.
    List {
        instance: Option<String>,
        /// Exit with status 2 when an item fails or is due (1 stays "the command failed").
        #[arg(long)]
        exit_code: bool,
        #[arg(long, conflicts_with_all = ["due", "waived"])]
        failing: bool,
        #[arg(long, conflicts_with = "waived")]
        due: bool,
        #[arg(long)]
        waived: bool,
        /// Show each check's evidence.
        #[arg(long, short)]
        verbose: bool,
    },
    /// The report: HTML that prints well to PDF, or JSON.
    Export {
        #[arg(long, conflicts_with = "json_report")]
        html: Option<PathBuf>,
        #[arg(long = "json-report")]
        json_report: Option<PathBuf>,
        #[arg(long)]
        instance: Option<String>,
    },
    /// An item's history, newest first.
    History { instance: String, item: String },
    /// Give an item an owner and a due date (YYYY-MM-DD).
    Assign {
        instance: String,
        item: String,
        #[arg(long)]
        owner: Option<String>,
        #[arg(long)]
        due: Option<String>,
    },
    /// Sign off a manual item as done now.
    Signoff {
        instance: String,
        item: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Attach evidence: a note, a link, or a file (recorded by its SHA-256).
    Evidence {
        instance: String,
        item: String,
        #[arg(long, conflicts_with_all = ["link", "file"])]
        note: Option<String>,
        #[arg(long, conflicts_with = "file")]
        link: Option<String>,
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Waive an item until a date: not applicable, or an accepted risk.
    Waive {
        instance: String,
        item: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        approved_by: String,
        /// YYYY-MM-DD (UTC); the item counts again from then.
        #[arg(long)]
        until: String,
        /// An accepted risk rather than not applicable.
        #[arg(long)]
        accepted_risk: bool,
    },
    /// End an item's waiver now.
    Unwaive { instance: String, item: String },
    /// The oldest TLS version public endpoints may offer: 1.2 or 1.3.
    Tls { version: String },
}

fn date(text: &str) -> gatehouse_core::Result<i64> {
    let f = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &f)
        .map(|d| d.midnight().assume_utc().unix_timestamp())
        .map_err(|e| Error::InvalidInput {
            field: "date",
            reason: format!("{text:?} is not a date like 2027-01-31: {e}"),
        })
}

pub fn checks(
    console: &Console,
    action: &ChecksAction,
    as_json: bool,
) -> gatehouse_core::Result<ExitCode> {
    match action {
        ChecksAction::Run { instance } => {
            gatehouse_pki::install_provider();
            let run = runtime()?.block_on(
                console
                    .compliance
                    .run_checks(instance.as_deref(), Burst::Always),
            )?;
            if as_json {
                print_json(&run);
            } else {
                if run.instances == 0 && run.errors.is_empty() {
                    say!("No instances enrolled: nothing to check.");
                } else {
                    say!(
                        "Ran {} check(s) on {} instance(s).",
                        run.checks,
                        run.instances
                    );
                }
                for n in &run.notices {
                    say!("note       {}", printable(n));
                }
                for r in &run.reopened {
                    say!("re-opened  {}", printable(r));
                }
                for e in &run.errors {
                    say!("error      {}", printable(e));
                }
            }
            Ok(if run.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        ChecksAction::List {
            instance,
            exit_code,
            failing,
            due,
            waived,
            verbose,
        } => {
            let filter = match (failing, due, waived) {
                (true, _, _) => Some(ItemFilter::Failing),
                (_, true, _) => Some(ItemFilter::Due),
                (_, _, true) => Some(ItemFilter::Waived),
                _ => None,
            };
            let view = console.compliance.compliance(&ComplianceQuery {
                instance: instance.clone(),
                filter,
            })?;
            if as_json {
                print_json(&view);
            } else {
                if view.instances.is_empty() {
                    say!("No instances enrolled: nothing to check.");
                }
                for i in &view.instances {
                    let s = &i.scorecard;
                    say!(
                        "{} ({}): score {}%: {} passing, {} failing, {} due, {} unknown, {} waived",
                        printable(&i.instance),
                        printable(&i.template),
                        s.score,
                        s.passing,
                        s.failing,
                        s.due,
                        s.unknown,
                        s.waived
                    );
                    if let Some(n) = &i.notice {
                        say!("  note: {}", printable(n));
                    }
                    if let Some(p) = &i.problem {
                        say!("  problem: {}", printable(p));
                    }
                    let mut section = "";
                    for item in &i.items {
                        if item.section != section {
                            section = &item.section;
                            say!("  {}", printable(section));
                        }
                        say!(
                            "    {:<8} {:<26} {}: {}",
                            item.state.as_str(),
                            item.id,
                            printable(&item.text),
                            printable(&item.state_text)
                        );
                        // What fixes a failure, whether or not the evidence is shown: each key
                        // once, though several checks may name it.
                        let mut fixes: Vec<&String> = item
                            .checks
                            .iter()
                            .filter(|c| c.status.as_str() == "fail")
                            .flat_map(|c| &c.fixes)
                            .collect();
                        fixes.sort();
                        fixes.dedup();
                        for name in fixes {
                            // A key path's brackets would be a pattern to the shell.
                            let name = if name.contains(['[', ']']) {
                                format!("'{name}'")
                            } else {
                                name.clone()
                            };
                            say!(
                                "             fix: gatehouse rotate {} {} (shows what changes; --yes to run it)",
                                printable(&item.instance),
                                printable(&name)
                            );
                        }
                        if *verbose {
                            for c in &item.checks {
                                say!(
                                    "             {} {}: {}",
                                    c.check,
                                    c.status,
                                    printable(&c.summary)
                                );
                                for e in &c.evidence {
                                    say!("               {}", printable(e));
                                }
                            }
                        }
                    }
                }
            }
            let open = view.fleet.failing + view.fleet.due;
            Ok(if *exit_code && open > 0 {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            })
        }
        ChecksAction::Export {
            html,
            json_report,
            instance,
        } => {
            let (format, path) = match (html, json_report) {
                (Some(p), None) => (ReportFormat::Html, p),
                (None, Some(p)) => (ReportFormat::Json, p),
                _ => {
                    return Err(Error::InvalidInput {
                        field: "export",
                        reason: "give --html FILE or --json-report FILE (`-` for standard output)"
                            .into(),
                    })
                }
            };
            let text = console.reports.compliance(
                &ComplianceQuery {
                    instance: instance.clone(),
                    filter: None,
                },
                format,
            )?;
            if path.as_os_str() == "-" {
                say!("{text}");
            } else {
                std::fs::write(path, text).map_err(|e| Error::InvalidInput {
                    field: "export",
                    reason: format!("cannot write {}: {e}", path.display()),
                })?;
                tell!("Wrote {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        ChecksAction::History { instance, item } => {
            let history = console.compliance.item_history(instance, item)?;
            if as_json {
                print_json(&history);
            } else if history.is_empty() {
                say!("Nothing has happened to this item yet.");
            } else {
                for h in &history {
                    say!(
                        "{} {:<15} {:<8} {} ({})",
                        gatehouse_core::utc(h.at.saturating_mul(1_000_000)),
                        h.kind,
                        h.state.map_or("-", |s| s.as_str()),
                        printable(&h.detail),
                        printable(&h.actor)
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ChecksAction::Assign {
            instance,
            item,
            owner,
            due,
        } => {
            let due = due.as_deref().map(date).transpose()?;
            show(
                console
                    .compliance
                    .assign_item(instance, item, owner.as_deref(), due)?,
                as_json,
            )
        }
        ChecksAction::Signoff {
            instance,
            item,
            note,
        } => show(
            console.compliance.sign_off_item(instance, item, note)?,
            as_json,
        ),
        ChecksAction::Evidence {
            instance,
            item,
            note,
            link,
            file,
        } => {
            let input = match (note, link, file) {
                (Some(n), _, _) => EvidenceInput {
                    kind: EvidenceKind::Note,
                    text: n.clone(),
                },
                (_, Some(l), _) => EvidenceInput {
                    kind: EvidenceKind::Link,
                    text: l.clone(),
                },
                (_, _, Some(f)) => EvidenceInput {
                    kind: EvidenceKind::File,
                    text: f.display().to_string(),
                },
                _ => {
                    return Err(Error::InvalidInput {
                        field: "evidence",
                        reason: "give --note TEXT, --link URL or --file PATH".into(),
                    })
                }
            };
            show(
                console
                    .compliance
                    .add_item_evidence(instance, item, &input)?,
                as_json,
            )
        }
        ChecksAction::Waive {
            instance,
            item,
            reason,
            approved_by,
            until,
            accepted_risk,
        } => {
            let input = WaiverInput {
                kind: if *accepted_risk {
                    WaiverKind::AcceptedRisk
                } else {
                    WaiverKind::NotApplicable
                },
                reason: reason.clone(),
                approved_by: approved_by.clone(),
                expires_at: date(until)?,
            };
            show(
                console.compliance.waive_item(instance, item, &input)?,
                as_json,
            )
        }
        ChecksAction::Unwaive { instance, item } => {
            show(console.compliance.end_waiver(instance, item)?, as_json)
        }
        ChecksAction::Tls { version } => {
            console.compliance.set_tls_minimum(version)?;
            say!("Public endpoints must now offer TLS {version} or newer; run `gatehouse checks run` to recheck.");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn show(item: gatehouse_core::ItemView, as_json: bool) -> gatehouse_core::Result<ExitCode> {
    if as_json {
        print_json(&item);
    } else {
        say!(
            "{} {}: {} ({})",
            item.state.as_str(),
            item.id,
            printable(&item.text),
            printable(&item.state_text)
        );
    }
    Ok(ExitCode::SUCCESS)
}
