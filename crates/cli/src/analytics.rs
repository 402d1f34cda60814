//! `gatehouse heatmap`, `offenders`, `alerts`, `rules` and `scan`.

use std::path::PathBuf;
use std::process::ExitCode;

use gatehouse_core::{
    AlertFilter, AlertState, ChartTheme, ColourScale, Console, Error, HeatmapKind, HeatmapQuery,
    OffenderQuery, SnoozeRequest, Window,
};
use serde_json::json;

use crate::{print_json, printable, runtime};

#[derive(Debug, clap::Args)]
pub struct HeatmapArgs {
    /// weekday-hour, addresses (top addresses x time) or instances (instances x day).
    #[arg(long, default_value = "weekday-hour")]
    kind: String,
    /// day (by hour), week, month or quarter.
    #[arg(long, default_value = "month")]
    window: String,
    #[arg(long)]
    instance: Option<String>,
    /// Service profile: sekha, rae, jelmore, jupyter, radicale, or an operator's.
    #[arg(long)]
    service: Option<String>,
    /// light or dark colours.
    #[arg(long, default_value = "light")]
    theme: String,
    /// Colours by count: log (a few failures stay visible beside thousands) or linear.
    #[arg(long, default_value = "log")]
    scale: String,
    /// Write the chart as SVG to FILE (`-` for standard output).
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Write the chart as PNG to FILE.
    #[arg(long, value_name = "FILE")]
    png: Option<PathBuf>,
    /// Pull new events from every agent first.
    #[arg(long)]
    sync: bool,
}

#[derive(Debug, clap::Args)]
pub struct OffenderArgs {
    /// day, week, month or quarter.
    #[arg(long, default_value = "week")]
    window: String,
    #[arg(long)]
    instance: Option<String>,
    #[arg(long)]
    service: Option<String>,
    #[arg(long, default_value_t = 25)]
    limit: u32,
    /// Only addresses containing this (part of an IPv4 or IPv6 address, any case).
    #[arg(long)]
    address: Option<String>,
    /// Pull new events from every agent first.
    #[arg(long)]
    sync: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum AlertsAction {
    /// Open alerts (new and acknowledged), newest activity first.
    List {
        /// Resolved ones too.
        #[arg(long)]
        all: bool,
        /// Only alerts in this state: new, acknowledged, resolved.
        #[arg(long)]
        state: Option<String>,
        /// Pull new events from every agent (and run the rules) first.
        #[arg(long)]
        sync: bool,
    },
    /// Acknowledge alerts: someone is on it. Name them, or choose every open alert from an
    /// address, of a rule or on an instance.
    Ack(Selection),
    /// Resolve alerts (named, or chosen as for `ack`).
    Resolve(Selection),
    /// Reopen resolved or acknowledged alerts (named, or chosen as for `ack`).
    Reopen(Selection),
    /// Snooze a detection rule on one instance: its firings there raise no alert until the
    /// snooze ends (they are counted on it). The reason goes to the audit log.
    Snooze {
        /// The rule's id, as `gatehouse rules` lists it.
        rule: String,
        instance: String,
        /// How long, in hours (1 to 720).
        #[arg(long, default_value_t = 24)]
        hours: u32,
        #[arg(long)]
        reason: String,
    },
    /// End a rule's snooze on an instance now.
    Unsnooze { rule: String, instance: String },
    /// The snoozes running now.
    Snoozes,
}

/// Which alerts: their ids, or every one from an address, of a rule and on an instance
/// (together, all must match).
#[derive(Debug, clap::Args)]
pub struct Selection {
    ids: Vec<i64>,
    /// Every alert about this address.
    #[arg(long, value_name = "ADDRESS")]
    source: Option<String>,
    /// Every alert a rule raised or joined (its id, as `gatehouse rules` lists it).
    #[arg(long)]
    rule: Option<String>,
    /// Every alert on this instance.
    #[arg(long)]
    instance: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// The log file to read.
    file: PathBuf,
    /// Its format: nginx_combined, nginx_json, caddy_json, structlog, sekha_tracing,
    /// uvicorn_access.
    #[arg(long, default_value = "nginx_combined")]
    format: String,
    /// Run the rules for this service profile (default: the every-instance rules).
    #[arg(long, default_value = "")]
    service: String,
}

/// `2026-11-23T02:41:57` from a time in microseconds (the whole text if it is not that long).
fn minute(time_us: i64) -> String {
    let text = gatehouse_core::utc(time_us);
    text.get(..19).map(str::to_owned).unwrap_or(text)
}

fn kind(word: &str) -> gatehouse_core::Result<HeatmapKind> {
    match word {
        "weekday-hour" | "weekday_hour" => Ok(HeatmapKind::WeekdayHour),
        "addresses" | "address_time" => Ok(HeatmapKind::AddressTime),
        "instances" | "instance_day" => Ok(HeatmapKind::InstanceDay),
        other => Err(Error::InvalidInput {
            field: "kind",
            reason: format!("{other:?} is not weekday-hour, addresses or instances"),
        }),
    }
}

/// Pull new events from every agent; an agent that could not be reached is said on stderr
/// (what is shown is then only what was pulled before).
pub(crate) fn sync(console: &Console) -> gatehouse_core::Result<()> {
    gatehouse_pki::install_provider();
    let report = runtime()?.block_on(console.timeline.sync_all_reporting())?;
    for failure in &report.failed {
        eprintln!(
            "warning: no new events from {}: {}",
            failure.instance, failure.message
        );
    }
    Ok(())
}

pub fn heatmap(console: &Console, args: &HeatmapArgs, as_json: bool) -> gatehouse_core::Result<()> {
    if args.sync {
        sync(console)?;
    }
    let theme = match args.theme.as_str() {
        "light" => ChartTheme::Light,
        "dark" => ChartTheme::Dark,
        other => {
            return Err(Error::InvalidInput {
                field: "theme",
                reason: format!("{other:?} is not light or dark"),
            })
        }
    };
    let scale = match args.scale.as_str() {
        "log" => ColourScale::Log,
        "linear" => ColourScale::Linear,
        other => {
            return Err(Error::InvalidInput {
                field: "scale",
                reason: format!("{other:?} is not log or linear"),
            })
        }
    };
    let query = HeatmapQuery {
        kind: kind(&args.kind)?,
        window: args.window.parse::<Window>()?,
        instance: args.instance.clone(),
        service: args.service.clone(),
        theme,
        scale,
    };
    let map = console.analytics.heatmap(&query)?;
    let write = |path: &PathBuf, bytes: &[u8]| -> gatehouse_core::Result<()> {
        if path.as_os_str() == "-" {
            use std::io::Write;
            return std::io::stdout()
                .write_all(bytes)
                .map_err(|e| Error::InvalidInput {
                    field: "svg",
                    reason: format!("cannot write to standard output: {e}"),
                });
        }
        std::fs::write(path, bytes).map_err(|e| Error::InvalidInput {
            field: "output",
            reason: format!("cannot write {}: {e}", path.display()),
        })
    };
    if let Some(path) = &args.svg {
        write(path, map.svg.as_bytes())?;
    }
    if let Some(path) = &args.png {
        write(path, &gatehouse_core::render_png(&map, theme)?)?;
    }
    if args.svg.as_ref().is_some_and(|p| p.as_os_str() == "-") {
        return Ok(());
    }
    if as_json {
        let mut value = serde_json::to_value(&map).unwrap_or_default();
        if let Some(object) = value.as_object_mut() {
            object.remove("svg");
        }
        print_json(&value);
        return Ok(());
    }
    say!("{}", map.title);
    say!("{}", map.subtitle);
    let mut busiest: Vec<_> = map.cells.iter().filter(|c| c.count > 0).collect();
    busiest.sort_by_key(|c| std::cmp::Reverse(c.count));
    if busiest.is_empty() {
        say!("No failed sign-ins in this window.");
    }
    for cell in busiest.iter().take(10) {
        say!("{:>8}  {}", cell.count, printable(&cell.label));
    }
    for (flag, path) in [("SVG", &args.svg), ("PNG", &args.png)] {
        if let Some(path) = path {
            say!("{flag} written to {}", path.display());
        }
    }
    Ok(())
}

pub fn offenders(
    console: &Console,
    args: &OffenderArgs,
    as_json: bool,
) -> gatehouse_core::Result<()> {
    if args.sync {
        sync(console)?;
    }
    let page = console.analytics.offender_page(&OffenderQuery {
        window: args.window.parse()?,
        instance: args.instance.clone(),
        service: args.service.clone(),
        limit: Some(args.limit),
        offset: None,
        address: args.address.clone(),
    })?;
    let (rows, total) = (page.offenders, page.total);
    if as_json {
        print_json(&rows);
        return Ok(());
    }
    if rows.is_empty() {
        match &args.address {
            Some(part) => say!(
                "No address containing \"{}\" failed to sign in in this window.",
                printable(part)
            ),
            None => say!("No failed sign-ins from a known address in this window."),
        }
        return Ok(());
    }
    say!(
        "{:<39} {:>8} {:>5} {:<9} {:<20} {:<20} {:<7} INSTANCES",
        "ADDRESS",
        "FAILURES",
        "KEYS",
        "TREND",
        "FIRST SEEN (UTC)",
        "LAST SEEN (UTC)",
        "ALERTS"
    );
    let shown = rows.len();
    for o in rows {
        let mark = if o.allowlisted { " (allowlisted)" } else { "" };
        say!(
            "{:<39} {:>8} {:>5} {:<9} {:<20} {:<20} {:<7} {}{mark}",
            printable(&o.ip),
            o.failures,
            o.distinct_keys,
            o.direction,
            minute(o.first_us),
            minute(o.last_us),
            o.open_alerts,
            printable(&o.instances.join(", "))
        );
    }
    if total > shown as u64 {
        say!("{shown} of {total} addresses, most failures first; --limit {total} lists them all.");
    }
    Ok(())
}

pub fn alerts(
    console: &Console,
    action: Option<&AlertsAction>,
    as_json: bool,
) -> gatehouse_core::Result<ExitCode> {
    let (selection, state) = match action {
        None => return list(console, false, None, false, as_json),
        Some(AlertsAction::List { all, state, sync }) => {
            return list(console, *all, state.as_deref(), *sync, as_json)
        }
        Some(AlertsAction::Ack(selection)) => (selection, AlertState::Acknowledged),
        Some(AlertsAction::Resolve(selection)) => (selection, AlertState::Resolved),
        Some(AlertsAction::Reopen(selection)) => (selection, AlertState::New),
        Some(AlertsAction::Snooze {
            rule,
            instance,
            hours,
            reason,
        }) => {
            let snooze = console.analytics.snooze_rule(&SnoozeRequest {
                rule_id: rule.clone(),
                instance: instance.clone(),
                hours: *hours,
                reason: reason.clone(),
            })?;
            if as_json {
                print_json(&snooze);
            } else {
                say!(
                    "Rule {} is snoozed on {} until {}: it raises no alert there until then.",
                    printable(&snooze.rule_id),
                    printable(&snooze.instance),
                    minute(snooze.until_us)
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        Some(AlertsAction::Unsnooze { rule, instance }) => {
            console.analytics.unsnooze_rule(rule, instance)?;
            if as_json {
                print_json(&json!({ "rule_id": rule, "instance": instance, "snoozed": false }));
            } else {
                say!(
                    "Rule {} alerts on {} again.",
                    printable(rule),
                    printable(instance)
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        Some(AlertsAction::Snoozes) => {
            let snoozes = console.analytics.snoozes()?;
            if as_json {
                print_json(&snoozes);
            } else if snoozes.is_empty() {
                say!("No rule is snoozed.");
            }
            if !as_json {
                for s in &snoozes {
                    say!(
                        "{:<18} {:<14} until {}  held {:<4} {}",
                        printable(&s.rule_id),
                        printable(&s.instance),
                        minute(s.until_us),
                        s.held,
                        printable(&s.reason)
                    );
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    let ids = chosen(console, selection, state)?;
    if ids.is_empty() {
        say!("No alert matches; nothing was changed.");
        return Ok(ExitCode::SUCCESS);
    }
    let marked = console.analytics.set_alerts_state(&ids, state)?;
    if as_json {
        print_json(&marked);
        return Ok(ExitCode::SUCCESS);
    }
    match marked.alerts.as_slice() {
        [one] => say!("Alert {} is now {}.", one.id, one.state.as_str()),
        many => say!(
            "{} alerts are now {}: {}.",
            many.len(),
            state.as_str(),
            many.iter()
                .map(|a| a.id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
    for id in &marked.missing {
        eprintln!("There is no alert {id}; it was left out.");
    }
    Ok(ExitCode::SUCCESS)
}

/// The ids a selection names: as given, or every matching alert (open ones, or every state
/// when reopening).
fn chosen(
    console: &Console,
    selection: &Selection,
    state: AlertState,
) -> gatehouse_core::Result<Vec<i64>> {
    let by_filter =
        selection.source.is_some() || selection.rule.is_some() || selection.instance.is_some();
    match (selection.ids.is_empty(), by_filter) {
        (false, false) => return Ok(selection.ids.clone()),
        (true, false) => {
            return Err(Error::InvalidInput {
                field: "ids",
                reason: "name alerts by id, or choose them with --source, --rule or --instance"
                    .into(),
            })
        }
        (false, true) => {
            return Err(Error::InvalidInput {
                field: "ids",
                reason: "name alerts by id or choose them with --source, --rule or --instance, \
                         not both"
                    .into(),
            })
        }
        (true, true) => {}
    }
    let alerts = console.analytics.alerts(&AlertFilter {
        all: state == AlertState::New,
        instance: selection.instance.clone(),
        ..Default::default()
    })?;
    Ok(alerts
        .into_iter()
        .filter(|a| a.state != state)
        .filter(|a| {
            selection.source.as_deref().is_none_or(|ip| {
                a.subject.as_deref() == Some(ip) || a.addresses.iter().any(|x| x == ip)
            })
        })
        .filter(|a| {
            selection
                .rule
                .as_deref()
                .is_none_or(|rule| a.rule_id == rule || a.facets.iter().any(|f| f.rule_id == rule))
        })
        .map(|a| a.id)
        .collect())
}

fn list(
    console: &Console,
    all: bool,
    state: Option<&str>,
    with_sync: bool,
    as_json: bool,
) -> gatehouse_core::Result<ExitCode> {
    if with_sync {
        sync(console)?;
    }
    let alerts = console.analytics.alerts(&AlertFilter {
        state: state
            .map(|s| if s == "ack" { "acknowledged" } else { s })
            .map(str::parse)
            .transpose()?,
        all,
        ..Default::default()
    })?;
    if as_json {
        print_json(&alerts);
        return Ok(ExitCode::SUCCESS);
    }
    if alerts.is_empty() {
        say!("No open alerts.");
    }
    for a in &alerts {
        say!(
            "#{:<5} {:<12} {:<6} {:<14} {:<16} {}",
            a.id,
            a.state.as_str(),
            a.severity.as_str(),
            printable(&a.instance),
            minute(a.last_us),
            printable(&a.detail)
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn rules(console: &Console, reset: bool, as_json: bool) -> gatehouse_core::Result<()> {
    let detection = if reset {
        console.analytics.reset_detection()?
    } else {
        console.analytics.detection()?
    };
    if as_json {
        print_json(&detection);
        return Ok(());
    }
    for rule in &detection.rules {
        let scope = if rule.services.is_empty() {
            "every service".to_owned()
        } else {
            rule.services.join(", ")
        };
        say!(
            "{:<3} {:<18} {:<6} {:<16} {}",
            if rule.enabled { "on" } else { "off" },
            rule.id,
            rule.severity.as_str(),
            scope,
            rule.detection.describe()
        );
    }
    say!(
        "allowlist: {}",
        if detection.allowlist.is_empty() {
            "(empty)".to_owned()
        } else {
            detection.allowlist.join(", ")
        }
    );
    Ok(())
}

/// Parse and detect over a log file without a console: for checking a log by hand and for
/// the comparison with fail2ban.
pub fn scan(args: &ScanArgs, as_json: bool) -> gatehouse_core::Result<()> {
    let format: gatehouse_events::Format =
        serde_json::from_value(json!(args.format)).map_err(|_| Error::InvalidInput {
            field: "format",
            reason: format!("{:?} is not a known log format", args.format),
        })?;
    let started = std::time::Instant::now();
    let rules = gatehouse_core::detect::default_rules();
    let applied = gatehouse_core::detect::rules_for(&rules, &args.service);
    let report = gatehouse_core::detect::scan(&args.file, format, &applied, "scanned log")
        .map_err(|e| Error::InvalidInput {
            field: "file",
            reason: format!("cannot read {}: {e}", args.file.display()),
        })?;
    let seconds = started.elapsed().as_secs_f64();
    let mut addresses: Vec<&str> = report
        .firings
        .iter()
        .filter_map(|f| f.subject.as_deref())
        .collect();
    addresses.sort_unstable();
    addresses.dedup();
    if as_json {
        print_json(&json!({
            "lines": report.lines, "unparsed": report.unparsed, "failures": report.failures,
            "alerts": report.firings.len(), "alerted_addresses": addresses, "seconds": seconds,
        }));
        return Ok(());
    }
    say!(
        "{} lines, {} unparsed, {} failed sign-ins, {} alerts in {:.3} s",
        report.lines,
        report.unparsed,
        report.failures,
        report.firings.len(),
        seconds
    );
    for f in &report.firings {
        say!(
            "{:<14} {:<39} {:>8} failures from {} to {}",
            f.rule_id,
            printable(f.subject.as_deref().unwrap_or("(instance)")),
            f.count,
            gatehouse_core::utc(f.first_us),
            gatehouse_core::utc(f.last_us)
        );
    }
    Ok(())
}

pub fn credentials(console: &Console, as_json: bool) -> gatehouse_core::Result<ExitCode> {
    gatehouse_pki::install_provider();
    let inventory = runtime()?.block_on(console.rotation.credentials())?;
    if as_json {
        print_json(&inventory);
        return Ok(ExitCode::SUCCESS);
    }
    if inventory.credentials.is_empty() && inventory.problems.is_empty() {
        say!("No credentials known yet: enroll an instance first.");
    }
    let day = |t: Option<i64>| {
        t.map(|t| {
            let text = minute(t.saturating_mul(1_000_000));
            text.get(..10).map(str::to_owned).unwrap_or(text)
        })
        .unwrap_or_else(|| "-".into())
    };
    say!(
        "{:<8} {:<14} {:<19} {:<26} {:<16} {:<11} {:<11} WHY",
        "STATUS",
        "INSTANCE",
        "KIND",
        "NAME",
        "FINGERPRINT",
        "SET ON",
        "DUE"
    );
    for c in &inventory.credentials {
        say!(
            "{:<8} {:<14} {:<19} {:<26} {:<16} {:<11} {:<11} {}",
            c.status.as_str(),
            printable(c.instance.as_deref().unwrap_or("-")),
            serde_json::to_value(c.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            printable(&c.name),
            c.fingerprint,
            day(c.set_at),
            day(c.due_at),
            c.status_text
        );
    }
    for p in &inventory.problems {
        say!(
            "problem  {}: {}",
            printable(&p.instance),
            printable(&p.message)
        );
    }
    Ok(if inventory.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub fn rotate(
    console: &Console,
    instance: &str,
    name: &str,
    yes: bool,
    show_key: bool,
    as_json: bool,
) -> gatehouse_core::Result<ExitCode> {
    gatehouse_pki::install_provider();
    let rt = runtime()?;
    let preview = rt.block_on(console.rotation.rotation_preview(instance, name))?;
    if !yes {
        if as_json {
            print_json(&preview);
        } else {
            say!(
                "Rotate {} on {} (fingerprint {}):",
                preview.name,
                preview.instance,
                preview.fingerprint
            );
            say!("{}", preview.impact);
            say!("Run again with --yes to go ahead (and --show-key to print the new key once).");
        }
        return Ok(ExitCode::FAILURE);
    }
    let (result, key) = rt.block_on(console.rotation.rotate_key(instance, name))?;
    if as_json {
        let mut value = serde_json::to_value(&result).unwrap_or_default();
        if let (Some(object), Some(key), true) = (value.as_object_mut(), &key, show_key) {
            object.insert("new_key".into(), json!(key.expose()));
        }
        print_json(&value);
    } else {
        for step in &result.steps {
            say!("  {}", printable(step));
        }
        if result.committed {
            say!(
                "Rotated {} on {}: {} -> {}.",
                name,
                instance,
                result.old_fingerprint,
                result.new_fingerprint
            );
            match (&key, show_key) {
                (Some(key), true) => say!("New key (shown once): {}", key.expose()),
                _ => {
                    // The key is handed over now or read from the keychain later: say where.
                    let entry = format!("instance/{instance}/key/{name}");
                    say!(
                        "The new key is in the OS keychain under service {:?}, account {:?}{} (rotate with --show-key to have it printed here).",
                        console.vault().service(),
                        entry,
                        if cfg!(target_os = "linux") {
                            // Quoted for the shell, whatever the names hold.
                            let quoted = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
                            format!(
                                "; `secret-tool lookup service {} username {}` prints it",
                                quoted(console.vault().service()),
                                quoted(&entry)
                            )
                        } else {
                            String::new()
                        }
                    )
                }
            }
        } else {
            say!(
                "Not rotated: {}",
                printable(result.error.as_deref().unwrap_or("unknown"))
            );
        }
    }
    Ok(if result.committed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `gatehouse rotate --due`: every key that needs it, with progress and a summary.
pub fn rotate_due(
    console: &Console,
    yes: bool,
    show_key: bool,
    as_json: bool,
) -> gatehouse_core::Result<ExitCode> {
    use gatehouse_core::{CredentialKind, Status};
    gatehouse_pki::install_provider();
    let rt = runtime()?;
    let inventory = rt.block_on(console.rotation.credentials())?;
    let targets: Vec<(String, String)> = inventory
        .credentials
        .iter()
        .filter(|c| matches!(c.kind, CredentialKind::ApiKey | CredentialKind::JwtSecret))
        .filter(|c| matches!(c.status, Status::Failing | Status::Warning))
        .filter_map(|c| c.instance.clone().map(|i| (i, c.name.clone())))
        .collect();
    if targets.is_empty() {
        say!("No key is due within 30 days, overdue or weak.");
        return Ok(ExitCode::SUCCESS);
    }
    if !yes {
        say!(
            "These {} keys would be rotated (each service restarts):",
            targets.len()
        );
        for (instance, name) in &targets {
            say!("  {name} on {}", printable(instance));
        }
        say!("Run again with --yes to go ahead.");
        return Ok(ExitCode::FAILURE);
    }
    let (items, keys) = rt.block_on(console.rotation.rotate_many(
        &targets,
        gatehouse_core::BULK_CONCURRENCY,
        |done, total| tell!("[{done}/{total}] done"),
    ));
    if as_json {
        print_json(&items);
    } else {
        for item in &items {
            let what = match (&item.result, &item.error) {
                (Some(r), _) if r.committed => "rotated and verified".to_owned(),
                (Some(r), _) if r.rolled_back => format!(
                    "rolled back: {}{}",
                    r.error.as_deref().unwrap_or(""),
                    if r.old_key_works == Some(true) {
                        " (the old key works)"
                    } else {
                        ""
                    }
                ),
                (Some(r), _) => format!("not rotated: {}", r.error.as_deref().unwrap_or("")),
                (None, Some(e)) => format!("not started: {e}"),
                (None, None) => "not started".into(),
            };
            say!(
                "{:<26} {:<16} {}",
                printable(&item.name),
                printable(&item.instance),
                printable(&what)
            );
        }
        let committed = items
            .iter()
            .filter(|i| i.result.as_ref().is_some_and(|r| r.committed))
            .count();
        say!("{committed} of {} rotated.", items.len());
        if show_key {
            for (label, key) in &keys {
                say!("New key for {label} (shown once): {}", key.expose());
            }
        }
    }
    Ok(if keys.len() == items.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
