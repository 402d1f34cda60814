//! `gatehouse incident`: open, follow and close incidents, run their actions, collect
//! evidence and write the post-incident report.

use std::path::PathBuf;
use std::process::ExitCode;

use gatehouse_core::{Console, Error, IncidentStatus, IncidentView, OpenIncident, Severity};

use crate::{print_json, printable, runtime};

#[derive(Debug, clap::Subcommand)]
pub enum IncidentAction {
    /// Open an incident from an alert, or by hand.
    Open {
        /// Start from this alert: its instance, address and window.
        #[arg(long, conflicts_with_all = ["title", "instance"])]
        alert: Option<i64>,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        instance: Vec<String>,
        #[arg(long)]
        ip: Vec<String>,
        /// The window: this many hours back from now.
        #[arg(long, default_value_t = 24)]
        hours: i64,
        /// low, medium or high.
        #[arg(long, default_value = "medium")]
        severity: String,
    },
    /// Every incident, open ones first.
    List,
    /// One incident: its context, playbook step by step, and its log.
    Show { id: i64 },
    /// Add a note (or, with --decision, a decision) to the incident's log.
    Note {
        id: i64,
        text: String,
        #[arg(long)]
        decision: bool,
    },
    /// Set the status (open, contained, resolved, closed), the owner or the playbook step.
    Update {
        id: i64,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        owner: Option<String>,
        #[arg(long)]
        step: Option<String>,
    },
    /// Block an address on an instance's host firewall, verified, for --ttl seconds.
    Block {
        id: i64,
        instance: String,
        ip: String,
        #[arg(long, default_value_t = gatehouse_core::incidents::DEFAULT_BLOCK_SECS)]
        ttl: u64,
        #[arg(long)]
        yes: bool,
        /// Block even if the address is known only from X-Forwarded-For (which any client
        /// can set): the second confirmation the window asks for.
        #[arg(long)]
        spoofable_ok: bool,
    },
    Unblock {
        id: i64,
        instance: String,
        ip: String,
    },
    /// Restart the instance's service and check that it answers.
    Restart {
        id: i64,
        instance: String,
        #[arg(long)]
        yes: bool,
    },
    /// Rotate a key (the verified rotation), recorded in the incident.
    Rotate {
        id: i64,
        instance: String,
        name: String,
        #[arg(long)]
        yes: bool,
        /// Print the new key once, to hand to the service's clients.
        #[arg(long)]
        show_key: bool,
    },
    /// Snapshot the instance's database (SQLite online backup, kept on the host).
    Snapshot { id: i64, instance: String },
    /// The addresses blocked on the instance's host, with the time left.
    Blocked { instance: String },
    /// The snapshots kept on the instance's host.
    Snapshots { instance: String },
    /// Restore a snapshot: a safety snapshot first, then restart and check the service.
    Restore {
        id: i64,
        instance: String,
        name: String,
        #[arg(long)]
        yes: bool,
    },
    /// Collect an evidence bundle (logs, config file hashes and modes, events, manifest).
    Evidence {
        id: i64,
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// The post-incident report, Markdown or HTML (`-` for standard output).
    Report {
        id: i64,
        #[arg(long, conflicts_with = "html")]
        markdown: Option<PathBuf>,
        #[arg(long)]
        html: Option<PathBuf>,
    },
}

fn needs_yes(yes: bool, what: &str) -> gatehouse_core::Result<()> {
    if yes {
        Ok(())
    } else {
        Err(Error::InvalidInput {
            field: "yes",
            reason: format!("{what}: add --yes to confirm"),
        })
    }
}

pub fn incident(
    console: &Console,
    action: &IncidentAction,
    as_json: bool,
) -> gatehouse_core::Result<ExitCode> {
    gatehouse_pki::install_provider();
    let view = match action {
        IncidentAction::Open {
            alert,
            title,
            instance,
            ip,
            hours,
            severity,
        } => {
            let incident = match alert {
                Some(alert) => console.incidents.incident_from_alert(*alert)?,
                None => {
                    let now = console.clock().micros();
                    console.incidents.open_incident(&OpenIncident {
                        origin: gatehouse_core::IncidentOrigin::Hand,
                        title: title.clone().unwrap_or_default(),
                        severity: match severity.as_str() {
                            "low" => Severity::Low,
                            "high" => Severity::High,
                            "medium" => Severity::Medium,
                            other => {
                                return Err(Error::InvalidInput {
                                    field: "severity",
                                    reason: format!("{other:?}: choose low, medium or high"),
                                })
                            }
                        },
                        instances: instance.clone(),
                        ips: ip.clone(),
                        from_us: now - hours.max(&1) * 3_600_000_000,
                        to_us: now,
                    })?
                }
            };
            console.incidents.incident(incident.id)?
        }
        IncidentAction::List => {
            let list = console.incidents.incidents()?;
            if as_json {
                print_json(&list);
            } else if list.is_empty() {
                say!("No incidents. Open one with `gatehouse incident open --alert N`.");
            } else {
                for i in &list {
                    say!(
                        "{:>4} {:<10} {:<7} {} ({})",
                        i.id,
                        word(i.status),
                        i.severity.as_str(),
                        printable(&i.title),
                        i.instances.join(", ")
                    );
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        IncidentAction::Show { id } => console.incidents.incident(*id)?,
        IncidentAction::Note { id, text, decision } => {
            console.incidents.incident_note(*id, *decision, text)?
        }
        IncidentAction::Update {
            id,
            status,
            owner,
            step,
        } => {
            let status = match status.as_deref() {
                None => None,
                Some("open") => Some(IncidentStatus::Open),
                Some("contained") => Some(IncidentStatus::Contained),
                Some("resolved") => Some(IncidentStatus::Resolved),
                Some("closed") => Some(IncidentStatus::Closed),
                Some(other) => {
                    return Err(Error::InvalidInput {
                        field: "status",
                        reason: format!("{other:?}: choose open, contained, resolved or closed"),
                    })
                }
            };
            console
                .incidents
                .update_incident(*id, status, owner.as_deref(), step.as_deref())?
        }
        IncidentAction::Block {
            id,
            instance,
            ip,
            ttl,
            yes,
            spoofable_ok,
        } => {
            needs_yes(
                *yes,
                &format!("block {ip} on {instance}'s host for {ttl} s"),
            )?;
            runtime()?.block_on(console.incidents.incident_block(
                *id,
                instance,
                ip,
                *ttl,
                *spoofable_ok,
            ))?
        }
        IncidentAction::Unblock { id, instance, ip } => {
            runtime()?.block_on(console.incidents.incident_unblock(*id, instance, ip))?
        }
        IncidentAction::Restart { id, instance, yes } => {
            needs_yes(*yes, &format!("restart the service on {instance}"))?;
            runtime()?.block_on(console.incidents.incident_restart(*id, instance))?
        }
        IncidentAction::Rotate {
            id,
            instance,
            name,
            yes,
            show_key,
        } => {
            needs_yes(
                *yes,
                &format!("rotate {name} on {instance}: its clients need the new key"),
            )?;
            let (view, key) =
                runtime()?.block_on(console.incidents.incident_rotate(*id, instance, name))?;
            if let (Some(key), true, false) = (&key, *show_key, as_json) {
                say!("New key (shown once): {}", key.expose());
            }
            view
        }
        IncidentAction::Snapshot { id, instance } => {
            runtime()?.block_on(console.incidents.incident_snapshot(*id, instance))?
        }
        IncidentAction::Blocked { instance } => {
            let list = runtime()?.block_on(console.incidents.blocked(instance))?;
            if as_json {
                print_json(&list);
            } else if list.blocked.is_empty() {
                say!("Nothing is blocked on {instance}'s host.");
            } else {
                for b in &list.blocked {
                    say!("{:<40} {} s left", b.ip, b.expires_in_secs);
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        IncidentAction::Snapshots { instance } => {
            let list = runtime()?.block_on(console.incidents.snapshots(instance))?;
            if as_json {
                print_json(&list);
            } else {
                say!("database: {}", printable(&list.database));
                for s in &list.snapshots {
                    say!("{}  {} bytes  sha256 {}", s.name, s.size, s.sha256);
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        IncidentAction::Restore {
            id,
            instance,
            name,
            yes,
        } => {
            needs_yes(
                *yes,
                &format!("replace the database on {instance} with {name} and restart the service"),
            )?;
            runtime()?.block_on(console.incidents.incident_restore(*id, instance, name))?
        }
        IncidentAction::Evidence { id, out } => {
            let bundle = runtime()?.block_on(console.incidents.evidence_bundle(*id, out))?;
            if as_json {
                print_json(&bundle);
            } else {
                say!(
                    "{} files in {} (check with: cd it && sha256sum -c MANIFEST.sha256)",
                    bundle.files,
                    bundle.path
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        IncidentAction::Report { id, markdown, html } => {
            let (text, path) = match (markdown, html) {
                (Some(p), None) => (console.reports.incident(*id, true)?, p),
                (None, Some(p)) => (console.reports.incident(*id, false)?, p),
                _ => {
                    return Err(Error::InvalidInput {
                        field: "report",
                        reason: "give --markdown FILE or --html FILE (`-` for standard output)"
                            .into(),
                    })
                }
            };
            if path.as_os_str() == "-" {
                say!("{text}");
            } else {
                std::fs::write(path, text).map_err(|e| Error::InvalidInput {
                    field: "report",
                    reason: format!("cannot write {}: {e}", path.display()),
                })?;
                tell!("Wrote {}", path.display());
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    show(&view, as_json);
    let failed = view
        .log
        .last()
        .is_some_and(|e| e.kind == gatehouse_core::EntryKind::Action && e.ok == Some(false));
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn word(status: IncidentStatus) -> &'static str {
    match status {
        IncidentStatus::Open => "open",
        IncidentStatus::Contained => "contained",
        IncidentStatus::Resolved => "resolved",
        IncidentStatus::Closed => "closed",
    }
}

fn show(view: &IncidentView, as_json: bool) {
    if as_json {
        print_json(view);
        return;
    }
    let i = &view.incident;
    say!(
        "Incident {}: {} [{}, {}]",
        i.id,
        printable(&i.title),
        word(i.status),
        i.severity.as_str()
    );
    say!(
        "  instances: {}   addresses: {}",
        i.instances.join(", "),
        if i.ips.is_empty() {
            "-".into()
        } else {
            i.ips.join(", ")
        }
    );
    say!(
        "  window: {} to {}   failed sign-ins: {}",
        gatehouse_core::utc(i.from_us),
        gatehouse_core::utc(i.to_us),
        view.failed_attempts
    );
    if let Some(playbook) = &view.playbook {
        say!("  playbook: {}", printable(&playbook.title));
        for step in &playbook.steps {
            let here = i.step.as_deref() == Some(step.id.as_str());
            say!(
                "  {} {}: {}",
                if here { ">" } else { " " },
                step.title,
                step.decide
            );
        }
    }
    if let Some(notice) = &view.playbook_notice {
        say!("  note: {}", printable(notice));
    }
    for e in &view.log {
        let verdict = match e.ok {
            Some(true) => " [verified]",
            Some(false) => " [FAILED]",
            None => "",
        };
        say!(
            "  {} {:<8} {}{verdict} ({})",
            gatehouse_core::utc(e.at_us),
            e.kind,
            printable(&e.text),
            printable(&e.actor)
        );
        for step in &e.steps {
            say!("      {}", printable(step));
        }
    }
}
