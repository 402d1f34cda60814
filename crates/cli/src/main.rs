//! `gatehouse`: the console without a window. Every capability of the desktop app is here too,
//! so it can be scripted, run on a server and tested without a display.

/// `println!` for a pipe that may close early (`gatehouse events | head`): when the reader has
/// gone, the program ends quietly instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        // Whatever host text a line holds, no bidi, invisible or control character reaches
        // the terminal as itself (fields are also escaped one by one with `printable`, which
        // shows a line break as an escape too).
        let line = format!($($arg)*);
        if let Err(e) = writeln!(
            std::io::stdout().lock(),
            "{}",
            gatehouse_core::escape::visible_lines(&line)
        ) {
            $crate::output_failed(&e);
        }
    }};
}

/// `eprintln!` that never panics: with `2>&1 | head` standard error is a closed pipe too, and
/// a message that cannot be shown is dropped rather than turned into a crash.
macro_rules! tell {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod analytics;
mod checks;
mod incident;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gatehouse_core::{
    AddInstance, Console, DataDir, Error, InstanceView, IpcError, KeychainState, Theme, Vault,
};
use serde_json::json;

#[derive(Debug, Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "Gatehouse security console, headless"
)]
struct Cli {
    /// Data directory (default: $GATEHOUSE_DATA_DIR, then the OS convention).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Version, data directory, database and log locations.
    Info,
    /// Check the data directory, database and OS keychain; exits 1 if something needs fixing.
    Doctor,
    /// What needs attention across the fleet, worst first.
    Overview,
    /// Show or change preferences.
    Settings {
        #[command(subcommand)]
        action: Option<SettingsAction>,
    },
    /// Enroll, list, refresh, renew, revoke and remove instances.
    Instance {
        #[command(subcommand)]
        action: InstanceAction,
    },
    /// The timeline: events from every instance, newest first, with the window's filters.
    Events(EventsArgs),
    /// A heatmap of failed sign-ins, as text, SVG or PNG.
    Heatmap(analytics::HeatmapArgs),
    /// The addresses with the most failed sign-ins.
    Offenders(analytics::OffenderArgs),
    /// Alerts raised by the detection rules: list, acknowledge, resolve.
    Alerts {
        #[command(subcommand)]
        action: Option<analytics::AlertsAction>,
    },
    /// The detection rules and allowlist.
    Rules {
        /// Put back the rules from the services' guides.
        #[arg(long)]
        reset: bool,
    },
    /// Parse a log file and run the detection rules over it, without a console.
    Scan(analytics::ScanArgs),
    /// Rotate a service key: a new key is written, the service restarted and the key verified
    /// on the host, or everything is put back.
    Rotate {
        /// The instance (omit with --due).
        #[arg(required_unless_present = "due")]
        instance: Option<String>,
        /// The key's variable or name, as `gatehouse credentials` lists it (mcp_api_key,
        /// API_KEY, API_KEY_CLIENT).
        #[arg(required_unless_present = "due")]
        name: Option<String>,
        /// Every key that is overdue, due within 30 days or weak, across the fleet, four at a
        /// time.
        #[arg(long, conflicts_with_all = ["instance", "name"])]
        due: bool,
        /// Go ahead (without it, only say what would change).
        #[arg(long)]
        yes: bool,
        /// Print the new key once, to hand to the service's clients.
        #[arg(long)]
        show_key: bool,
    },
    /// Incidents: open from an alert or by hand, run the playbook's actions, collect
    /// evidence, write the post-incident report.
    Incident {
        #[command(subcommand)]
        action: incident::IncidentAction,
    },
    /// The console's own audit log: every operator action, hash-chained with an HMAC key
    /// from the keychain.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Compliance checklists: run the automated checks, list items, export the report, and
    /// sign off, attach evidence to or waive items.
    Checks {
        #[command(subcommand)]
        action: checks::ChecksAction,
    },
    /// Run the console's jobs headless until stopped (Ctrl-C or SIGTERM): pull events every
    /// second, contact the fleet every minute, renew certificates and warn of due credentials
    /// every 15 minutes, run the compliance checks hourly.
    Serve,
    /// Every credential known (keys by fingerprint, certificates, the fleet CA), with its age
    /// and when it is due.
    Credentials {
        #[command(subcommand)]
        action: Option<CredentialsAction>,
    },
}

#[derive(Debug, Subcommand)]
enum AuditAction {
    /// Recompute the chain; exits 1 and names the first broken link if a row was edited,
    /// removed or added without the key, or if a break was recorded (the log was found cut
    /// back by the keychain's head or by an agent).
    Verify,
    /// Start a new generation of the log's HMAC key; the old one stays in the keychain so its
    /// rows stay verifiable (without it they read as unverifiable, not as tampered).
    RotateKey,
    /// The newest rows.
    List {
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

#[derive(Debug, Subcommand)]
enum CredentialsAction {
    /// Set how often an instance's API keys are due for rotation.
    Policy {
        instance: String,
        /// Days between rotations.
        #[arg(long, conflicts_with = "default")]
        days: Option<u32>,
        /// Back to the guides' 90 days.
        #[arg(long)]
        default: bool,
    },
    /// Rotations run from this console: key, fingerprints, who, when, outcome.
    History {
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

#[derive(Debug, clap::Args)]
struct EventsArgs {
    /// Pull new events from every agent first.
    #[arg(long)]
    sync: bool,
    /// Only events this recent: 15m, 1h, 24h, 7d.
    #[arg(long, value_name = "AGE")]
    since: Option<String>,
    /// Only events at or after this instant (RFC 3339).
    #[arg(long)]
    from: Option<String>,
    /// Only events before this instant (RFC 3339).
    #[arg(long)]
    to: Option<String>,
    #[arg(long)]
    instance: Option<String>,
    /// Service profile: sekha, rae, jelmore, jupyter, radicale, or an operator's.
    #[arg(long)]
    service: Option<String>,
    /// auth, request, rate_limit, service, log, unparsed, gap, console.
    #[arg(long)]
    kind: Option<String>,
    /// success, failure, error, info.
    #[arg(long)]
    outcome: Option<String>,
    #[arg(long)]
    ip: Option<String>,
    #[arg(long)]
    key_prefix: Option<String>,
    /// Path prefix.
    #[arg(long)]
    path: Option<String>,
    /// Free text: every word must match an address, path, actor, key or message.
    #[arg(long)]
    text: Option<String>,
    /// Most events shown as a table (CSV and JSON Lines export everything that matches).
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// table, csv or jsonl.
    #[arg(long, default_value = "table")]
    format: String,
}

#[derive(Debug, Subcommand)]
enum InstanceAction {
    /// Enroll the agent at ADDRESS. The code `gatehouse-agent init` printed is read from
    /// --code-file or standard input, never from the command line.
    Add {
        #[arg(long)]
        name: String,
        /// host:port of the agent.
        #[arg(long)]
        address: String,
        /// File holding the enrollment code (default: read standard input).
        #[arg(long, value_name = "FILE")]
        code_file: Option<PathBuf>,
        /// Service profile (default: what the agent reports).
        #[arg(long, default_value = "")]
        profile: String,
    },
    /// Every instance with its status.
    List,
    /// Contact one instance (or all) now.
    Refresh { name: Option<String> },
    /// Renew every certificate past two thirds of its life.
    Renew,
    /// Revoke an instance: its agent refuses this console's certificate at once.
    Revoke { name: String },
    /// Remove an instance and its secrets from the keychain (revoking it first).
    Remove { name: String },
}

#[derive(Debug, Subcommand)]
enum SettingsAction {
    /// Set the colour theme: system, light or dark.
    Theme { theme: String },
    /// Set the time zone of charts (an IANA name such as Europe/Berlin), or `system`.
    TimeZone { zone: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(error) => {
            let ipc = IpcError::from(error);
            if cli.json {
                tell!("{}", json!({"code": ipc.code, "message": ipc.message}));
            } else {
                tell!("error[{}]: {}", ipc.code.as_str(), ipc.message);
            }
            ExitCode::FAILURE
        }
    }
}

/// Standard output failed: a closed pipe ends the program as SIGPIPE would (status 141),
/// anything else is reported.
pub(crate) fn output_failed(error: &std::io::Error) -> ! {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(141);
    }
    tell!("error[output]: cannot write to standard output: {error}");
    std::process::exit(1);
}

/// Standard output for long writes (exports): a reader that goes away ends the program as
/// SIGPIPE would, instead of surfacing as an error of the export.
pub(crate) struct Stdout(std::io::StdoutLock<'static>);

impl Stdout {
    pub(crate) fn lock() -> Self {
        Self(std::io::stdout().lock())
    }
}

impl std::fmt::Debug for Stdout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stdout")
    }
}

impl std::io::Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf).inspect_err(|e| output_failed(e))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush().inspect_err(|e| output_failed(e))
    }
}

fn read_code(file: Option<&PathBuf>) -> gatehouse_core::Result<String> {
    let invalid = |reason: String| Error::InvalidInput {
        field: "enrollment code",
        reason,
    };
    match file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| invalid(format!("cannot read {}: {e}", path.display()))),
        None => {
            let mut code = String::new();
            std::io::stdin()
                .read_to_string(&mut code)
                .map_err(|e| invalid(format!("cannot read standard input: {e}")))?;
            Ok(code)
        }
    }
}

pub(crate) fn runtime() -> gatehouse_core::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::InvalidInput {
            field: "runtime",
            reason: format!("cannot start the async runtime: {e}"),
        })
}

fn print_instances(instances: &[InstanceView], json: bool) {
    if json {
        print_json(&instances);
        return;
    }
    if instances.is_empty() {
        say!("No instances enrolled. Run `gatehouse-agent init` on a host, then `gatehouse instance add`.");
        return;
    }
    say!(
        "{:<8} {:<16} {:<22} {:<8} {:<9} {:<20} WHY",
        "STATUS",
        "NAME",
        "ADDRESS",
        "PROFILE",
        "AGENT",
        "CERT EXPIRES (UTC)"
    );
    for i in instances {
        let expires = time::OffsetDateTime::from_unix_timestamp(i.cert_not_after)
            .map(|t| {
                let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
                t.format(&f).unwrap_or_default()
            })
            .unwrap_or_default();
        say!(
            "{:<8} {:<16} {:<22} {:<8} {:<9} {:<20} {}",
            i.status.as_str(),
            i.name,
            i.address,
            i.profile,
            i.agent_version.as_deref().unwrap_or("-"),
            expires,
            i.status_text
        );
    }
    say!("(as of each instance's last contact; `gatehouse instance refresh` asks them now)");
}

fn run(cli: &Cli) -> gatehouse_core::Result<ExitCode> {
    if let Command::Scan(args) = &cli.command {
        analytics::scan(args, cli.json)?;
        return Ok(ExitCode::SUCCESS);
    }
    let data_dir = DataDir::resolve(cli.data_dir.as_deref())?;
    let root = data_dir.root().to_owned();
    data_dir.ensure()?;
    let _log =
        gatehouse_core::logging::init(&data_dir, "cli").map_err(|e| e.explain_disk(&root))?;
    let console = match Console::open(data_dir, Vault::from_env()) {
        Ok(console) => console,
        // Doctor diagnoses what it can without the database: that is when it is needed most.
        Err(e) if matches!(cli.command, Command::Doctor) => {
            let keychain = Vault::from_env().status();
            if cli.json {
                print_json(&json!({
                    "data_dir": root.display().to_string(),
                    "database": {"code": e.code().as_str(), "message": e.to_string()},
                    "keychain": keychain,
                    "healthy": false,
                }));
            } else {
                say!("ok       data dir {}", root.display());
                say!("failing  database: {e}");
                match keychain.state {
                    KeychainState::Available => say!(
                        "ok       keychain: {} (service \"{}\")",
                        keychain.backend,
                        keychain.service
                    ),
                    KeychainState::Locked => say!("warning  keychain: {}", keychain.message),
                    KeychainState::Unavailable => say!("failing  keychain: {}", keychain.message),
                }
            }
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e),
    };
    match &cli.command {
        Command::Info => {
            let info = console.preferences.app_info()?;
            if cli.json {
                print_json(&info);
            } else {
                say!("Gatehouse {} ({})", info.version, info.platform);
                say!("data dir  {}", info.data_dir);
                say!(
                    "database  {} (schema v{})",
                    info.database,
                    info.schema_version
                );
                say!("logs      {}", info.log_dir);
            }
        }
        Command::Doctor => {
            let info = console.preferences.app_info()?;
            let keychain = console.preferences.keychain_status();
            let healthy = keychain.state == KeychainState::Available;
            if cli.json {
                print_json(&json!({"info": info, "keychain": keychain, "healthy": healthy}));
            } else {
                say!("ok       data dir {}", info.data_dir);
                say!("ok       database schema v{}", info.schema_version);
                match keychain.state {
                    KeychainState::Available => say!(
                        "ok       keychain: {} (service \"{}\")",
                        keychain.backend,
                        keychain.service
                    ),
                    KeychainState::Locked => say!("warning  keychain: {}", keychain.message),
                    KeychainState::Unavailable => {
                        say!("failing  keychain: {}", keychain.message)
                    }
                }
            }
            if !healthy {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Overview => {
            let overview = console.overview()?;
            if cli.json {
                print_json(&overview);
            } else {
                say!("{} instance(s) enrolled", overview.instances);
                for item in &overview.attention {
                    // A line about alerts says where they all are.
                    let more = if item.view == gatehouse_core::View::Heatmaps
                        && item.title.contains("new alert")
                    {
                        " (`gatehouse alerts` lists them)"
                    } else {
                        ""
                    };
                    say!(
                        "{:<8} {:<10} {}: {}{more}",
                        item.status.as_str(),
                        format!("{:?}", item.view).to_lowercase(),
                        printable(&item.title),
                        printable(&item.detail)
                    );
                }
            }
        }
        Command::Settings { action } => {
            let settings = match action {
                None => console.preferences.settings()?,
                Some(SettingsAction::Theme { theme }) => {
                    console.preferences.set_theme(theme.parse::<Theme>()?)?
                }
                Some(SettingsAction::TimeZone { zone }) => console
                    .preferences
                    .set_time_zone(Some(zone.as_str()).filter(|z| *z != "system"))?,
            };
            if cli.json {
                print_json(&settings);
            } else {
                say!("theme      {}", settings.theme.as_str());
                say!(
                    "time zone  {}{}",
                    settings.effective_time_zone,
                    if settings.time_zone.is_none() {
                        " (system)"
                    } else {
                        ""
                    }
                );
            }
        }
        Command::Instance { action } => return instance(&console, action, cli.json),
        Command::Events(args) => events(&console, args, cli.json)?,
        Command::Heatmap(args) => analytics::heatmap(&console, args, cli.json)?,
        Command::Offenders(args) => analytics::offenders(&console, args, cli.json)?,
        Command::Alerts { action } => {
            return analytics::alerts(&console, action.as_ref(), cli.json)
        }
        Command::Rules { reset } => analytics::rules(&console, *reset, cli.json)?,
        Command::Rotate {
            due: true,
            yes,
            show_key,
            ..
        } => return analytics::rotate_due(&console, *yes, *show_key, cli.json),
        Command::Rotate {
            instance: Some(instance),
            name: Some(name),
            yes,
            show_key,
            ..
        } => return analytics::rotate(&console, instance, name, *yes, *show_key, cli.json),
        Command::Rotate { .. } => {
            return Err(Error::InvalidInput {
                field: "rotate",
                reason: "name an instance and a key, or use --due".into(),
            })
        }
        Command::Credentials {
            action: Some(CredentialsAction::History { limit }),
        } => {
            let history = console.rotation.rotation_history(*limit)?;
            if cli.json {
                print_json(&history);
            } else if history.is_empty() {
                say!("No rotation has been run from this console yet.");
            } else {
                for r in &history {
                    say!(
                        "{} {:<11} {:<26} {:<14} {} -> {} by {} {}",
                        gatehouse_core::utc(r.started_at.saturating_mul(1_000_000)),
                        r.state,
                        printable(&r.name),
                        printable(&r.instance),
                        r.old_fingerprint,
                        r.new_fingerprint,
                        printable(&r.operator),
                        printable(&r.detail)
                    );
                }
            }
        }
        Command::Credentials { action } => {
            if let Some(CredentialsAction::Policy {
                instance,
                days,
                default,
            }) = action
            {
                if days.is_none() && !default {
                    return Err(Error::InvalidInput {
                        field: "days",
                        reason: "give --days N, or --default for the guides' 90 days".into(),
                    });
                }
                console.rotation.set_key_rotation_days(instance, *days)?;
            }
            return analytics::credentials(&console, cli.json);
        }
        Command::Checks { action } => return checks::checks(&console, action, cli.json),
        Command::Incident { action } => return incident::incident(&console, action, cli.json),
        Command::Audit {
            action: AuditAction::Verify,
        } => {
            let verdict = console.audit.verify()?;
            if cli.json {
                print_json(&verdict);
            } else if verdict.intact {
                say!(
                    "The audit log is intact: {} rows, every link verified (key generation {}).",
                    verdict.rows,
                    verdict.key_generation
                );
                if verdict.unverifiable > 0 {
                    say!(
                        "{} rows were signed by an earlier key this keychain no longer holds; \
                         they cannot be checked.",
                        verdict.unverifiable
                    );
                }
            } else {
                say!(
                    "The audit log is broken at row {}: {}",
                    verdict.first_broken.unwrap_or_default(),
                    verdict.problem.as_deref().unwrap_or("")
                );
            }
            return Ok(if verdict.intact {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        Command::Audit {
            action: AuditAction::RotateKey,
        } => {
            let generation = console.audit.rotate_key()?;
            if cli.json {
                print_json(&json!({ "key_generation": generation }));
            } else {
                say!("The audit log is now signed by key generation {generation}.");
            }
        }
        Command::Audit {
            action: AuditAction::List { limit },
        } => {
            let log = console.audit.entries(*limit)?;
            if cli.json {
                print_json(&log);
            } else if log.is_empty() {
                say!("Nothing in the audit log yet.");
            } else {
                for e in &log {
                    say!(
                        "{:>6} {} {:<12} {:<24} {:<20} {}",
                        e.id,
                        gatehouse_core::utc(e.at_us),
                        printable(&e.actor),
                        printable(&e.action),
                        printable(&e.target),
                        printable(&e.detail)
                    );
                }
            }
        }
        Command::Serve => serve(&console)?,
        // Handled before the console is opened.
        Command::Scan(_) => {}
    }
    Ok(ExitCode::SUCCESS)
}

fn serve(console: &Console) -> gatehouse_core::Result<()> {
    gatehouse_pki::install_provider();
    let rt = runtime()?;
    let instances = console.fleet.instances()?.len();
    say!("Gatehouse is running its schedule over {instances} instance(s); Ctrl-C stops it.");
    rt.block_on(async {
        let jobs = gatehouse_core::schedule::run(
            console.clone(),
            gatehouse_core::schedule::Intervals::default(),
            |notice| {
                tell!(
                    "due: {} ({})",
                    printable(&notice.credential.name),
                    printable(&notice.credential.status_text)
                );
            },
        );
        tokio::select! {
            () = jobs => {}
            () = stop_signal() => {}
        }
    });
    say!("Stopped.");
    Ok(())
}

/// Ctrl-C, or SIGTERM where there is one (a service manager stopping it).
async fn stop_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

fn instance(
    console: &Console,
    action: &InstanceAction,
    json: bool,
) -> gatehouse_core::Result<ExitCode> {
    gatehouse_pki::install_provider();
    let rt = runtime()?;
    match action {
        InstanceAction::Add {
            name,
            address,
            code_file,
            profile,
        } => {
            let code = read_code(code_file.as_ref())?;
            let view = rt.block_on(console.fleet.add_instance(AddInstance {
                name: name.clone(),
                address: address.clone(),
                code,
                profile: profile.clone(),
            }))?;
            print_instances(std::slice::from_ref(&view), json);
        }
        InstanceAction::List => print_instances(&console.fleet.instances()?, json),
        InstanceAction::Refresh { name: Some(name) } => {
            let view = rt.block_on(console.fleet.refresh_instance(name))?;
            print_instances(std::slice::from_ref(&view), json);
            if view.error_code.is_some() {
                return Ok(ExitCode::FAILURE);
            }
        }
        InstanceAction::Refresh { name: None } => {
            let summary = rt.block_on(console.fleet.refresh_all())?;
            print_instances(&summary.instances, json);
            if summary.failed > 0 {
                return Ok(ExitCode::FAILURE);
            }
        }
        InstanceAction::Renew => {
            let renewed = rt.block_on(console.fleet.renew_due())?;
            if json {
                print_json(&renewed);
            } else if renewed.is_empty() {
                say!("No certificate is due for renewal.");
            } else {
                say!("Renewed: {}", renewed.join(", "));
            }
        }
        InstanceAction::Revoke { name } => {
            let view = rt.block_on(console.fleet.revoke_instance(name))?;
            print_instances(std::slice::from_ref(&view), json);
        }
        InstanceAction::Remove { name } => {
            rt.block_on(console.fleet.remove_instance(name))?;
            if json {
                print_json(&json!({"removed": name}));
            } else {
                say!("Removed {name}; its secrets have left the keychain.");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn events(console: &Console, args: &EventsArgs, json: bool) -> gatehouse_core::Result<()> {
    let invalid = |field: &'static str, reason: String| Error::InvalidInput { field, reason };
    let instant =
        |field: &'static str, text: &Option<String>| -> gatehouse_core::Result<Option<i64>> {
            text.as_deref()
                .map(|t| {
                    gatehouse_events::parse_rfc3339(t.as_bytes()).ok_or_else(|| {
                        invalid(
                            field,
                            format!("{t:?} is not an RFC 3339 time like 2026-11-23T02:00:00Z"),
                        )
                    })
                })
                .transpose()
        };
    let mut from_us = instant("from", &args.from)?;
    if let Some(age) = &args.since {
        let bad = || invalid("since", format!("{age:?} is not an age like 15m, 1h or 7d"));
        let unit = age.chars().last().ok_or_else(bad)?;
        let number: i64 = age[..age.len() - unit.len_utf8()]
            .parse()
            .map_err(|_| bad())?;
        let scale = match unit {
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let seconds = number
            .checked_mul(scale)
            .filter(|s| *s >= 0)
            .ok_or_else(bad)?;
        let now_us = console.clock().micros();
        let since = now_us.saturating_sub(seconds.saturating_mul(1_000_000));
        from_us = Some(from_us.unwrap_or(i64::MIN).max(since));
    }
    let filter = gatehouse_core::EventFilter {
        from_us,
        to_us: instant("to", &args.to)?,
        instance: args.instance.clone(),
        service: args.service.clone(),
        kind: args.kind.as_deref().map(str::parse).transpose()?,
        outcome: args.outcome.as_deref().map(str::parse).transpose()?,
        ip: args.ip.clone(),
        key_prefix: args.key_prefix.clone(),
        path: args.path.clone(),
        text: args.text.clone(),
        ..Default::default()
    };
    if args.sync {
        analytics::sync(console)?;
    }
    let format = match args.format.as_str() {
        "table" => None,
        "csv" => Some(gatehouse_core::ExportFormat::Csv),
        "jsonl" => Some(gatehouse_core::ExportFormat::Jsonl),
        other => {
            return Err(invalid(
                "format",
                format!("{other:?} is not table, csv or jsonl"),
            ))
        }
    };
    let page = match format {
        // --json is the table as data: the same page, --limit honoured.
        None if json => {
            let page = console.timeline.events(&filter, None, args.limit)?;
            print_json(&page);
            return Ok(());
        }
        None => console.timeline.events(&filter, None, args.limit)?,
        Some(format) => {
            let mut out = Stdout::lock();
            console.timeline.export_events(&filter, format, &mut out)?;
            std::io::Write::flush(&mut out).ok();
            return Ok(());
        }
    };
    if page.events.is_empty() {
        say!("No events match. Enroll an instance, or pull new events with --sync.");
    }
    for e in &page.events {
        // Host-controlled text never reaches the terminal raw: no escape sequences.
        say!(
            "{} {:<14} {:<8} {:<7} {:<15} {:<4} {:<30} {}",
            gatehouse_core::utc(e.time_us),
            printable(&e.instance),
            e.kind,
            e.outcome,
            printable(e.ip.as_deref().unwrap_or("-")),
            e.status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            printable(e.path.as_deref().unwrap_or("-")),
            printable(
                e.message
                    .as_deref()
                    .or(e.key_prefix.as_deref())
                    .unwrap_or("")
            )
        );
    }
    if page.next.is_some() {
        say!("… more events match; raise --limit or export with --format csv");
    }
    Ok(())
}

/// Host text for the terminal: control characters (ESC and the like), bidi overrides and
/// invisible characters shown as `<U+XXXX>` escapes, as the window and the reports show them.
pub(crate) fn printable(text: &str) -> String {
    gatehouse_core::escape::visible(text).into_owned()
}

pub(crate) fn print_json(value: &impl serde::Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => {
            use std::io::Write as _;
            if let Err(e) = writeln!(
                std::io::stdout().lock(),
                "{}",
                gatehouse_core::escape::json(&text)
            ) {
                output_failed(&e);
            }
        }
        // Our DTOs are plain data; serialization cannot fail, but never panic on output.
        Err(e) => tell!("error[internal]: cannot render JSON: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn json_keeps_host_text_exact_without_showing_an_override() {
        let value = serde_json::json!({ "path": "/x\u{202e}yek\u{7f}" });
        let text = serde_json::to_string_pretty(&value).expect("json");
        let shown = gatehouse_core::escape::json(&text);
        assert!(
            !shown.contains('\u{202e}') && !shown.contains('\u{7f}'),
            "no override or DEL reaches the terminal: {shown}"
        );
        let back: serde_json::Value = serde_json::from_str(&shown).expect("still JSON");
        assert_eq!(
            back, value,
            "a program reading the output gets the same text"
        );
    }

    #[test]
    fn host_text_cannot_send_escape_sequences_to_the_terminal() {
        let hostile = "/x\u{1b}]0;pwned\u{7}\u{1b}[2J";
        let shown = printable(hostile);
        assert!(
            !shown.chars().any(char::is_control),
            "no control character survives: {shown:?}"
        );
        assert!(
            shown.contains("<U+001B>"),
            "it is shown as an escape instead: {shown}"
        );
        assert_eq!(
            printable("/x\u{202e}yek"),
            "/x<U+202E>yek",
            "a right-to-left override cannot reverse the console's words after it"
        );
        assert_eq!(
            printable("/api/v1/é"),
            "/api/v1/é",
            "ordinary text is untouched"
        );
    }
}
