//! `gatehouse`: the console without a window. Every capability of the desktop app is here too,
//! so it can be scripted, run on a server and tested without a display.

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(error) => {
            let ipc = IpcError::from(error);
            if cli.json {
                eprintln!("{}", json!({"code": ipc.code, "message": ipc.message}));
            } else {
                eprintln!("error[{}]: {}", ipc.code.as_str(), ipc.message);
            }
            ExitCode::FAILURE
        }
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

fn runtime() -> gatehouse_core::Result<tokio::runtime::Runtime> {
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
        println!("No instances enrolled. Run `gatehouse-agent init` on a host, then `gatehouse instance add`.");
        return;
    }
    println!(
        "{:<8} {:<16} {:<22} {:<8} {:<9} {:<20} WHY",
        "STATUS", "NAME", "ADDRESS", "PROFILE", "AGENT", "CERT EXPIRES (UTC)"
    );
    for i in instances {
        let expires = time::OffsetDateTime::from_unix_timestamp(i.cert_not_after)
            .map(|t| {
                let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
                t.format(&f).unwrap_or_default()
            })
            .unwrap_or_default();
        println!(
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
}

fn run(cli: &Cli) -> gatehouse_core::Result<ExitCode> {
    let data_dir = DataDir::resolve(cli.data_dir.as_deref())?;
    data_dir.ensure()?;
    let _log = gatehouse_core::logging::init(&data_dir, "cli")?;
    let console = Console::open(data_dir, Vault::from_env())?;
    match &cli.command {
        Command::Info => {
            let info = console.app_info()?;
            if cli.json {
                print_json(&info);
            } else {
                println!("Gatehouse {} ({})", info.version, info.platform);
                println!("data dir  {}", info.data_dir);
                println!(
                    "database  {} (schema v{})",
                    info.database, info.schema_version
                );
                println!("logs      {}", info.log_dir);
            }
        }
        Command::Doctor => {
            let info = console.app_info()?;
            let keychain = console.keychain_status();
            let healthy = keychain.state == KeychainState::Available;
            if cli.json {
                print_json(&json!({"info": info, "keychain": keychain, "healthy": healthy}));
            } else {
                println!("ok       data dir {}", info.data_dir);
                println!("ok       database schema v{}", info.schema_version);
                match keychain.state {
                    KeychainState::Available => println!(
                        "ok       keychain: {} (service \"{}\")",
                        keychain.backend, keychain.service
                    ),
                    KeychainState::Locked => println!("warning  keychain: {}", keychain.message),
                    KeychainState::Unavailable => {
                        println!("failing  keychain: {}", keychain.message)
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
                println!("{} instance(s) enrolled", overview.instances);
                for item in &overview.attention {
                    println!(
                        "{:<8} {:<10} {}: {}",
                        item.status.as_str(),
                        format!("{:?}", item.view).to_lowercase(),
                        item.title,
                        item.detail
                    );
                }
            }
        }
        Command::Settings { action } => {
            let settings = match action {
                None => console.settings()?,
                Some(SettingsAction::Theme { theme }) => {
                    console.set_theme(theme.parse::<Theme>()?)?
                }
            };
            if cli.json {
                print_json(&settings);
            } else {
                println!("theme  {}", settings.theme.as_str());
            }
        }
        Command::Instance { action } => return instance(&console, action, cli.json),
    }
    Ok(ExitCode::SUCCESS)
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
            let view = rt.block_on(console.add_instance(AddInstance {
                name: name.clone(),
                address: address.clone(),
                code,
                profile: profile.clone(),
            }))?;
            print_instances(std::slice::from_ref(&view), json);
        }
        InstanceAction::List => print_instances(&console.instances()?, json),
        InstanceAction::Refresh { name: Some(name) } => {
            let view = rt.block_on(console.refresh_instance(name))?;
            print_instances(std::slice::from_ref(&view), json);
            if view.error_code.is_some() {
                return Ok(ExitCode::FAILURE);
            }
        }
        InstanceAction::Refresh { name: None } => {
            let summary = rt.block_on(console.refresh_all())?;
            print_instances(&summary.instances, json);
            if summary.failed > 0 {
                return Ok(ExitCode::FAILURE);
            }
        }
        InstanceAction::Renew => {
            let renewed = rt.block_on(console.renew_due())?;
            if json {
                print_json(&renewed);
            } else if renewed.is_empty() {
                println!("No certificate is due for renewal.");
            } else {
                println!("Renewed: {}", renewed.join(", "));
            }
        }
        InstanceAction::Revoke { name } => {
            let view = rt.block_on(console.revoke_instance(name))?;
            print_instances(std::slice::from_ref(&view), json);
        }
        InstanceAction::Remove { name } => {
            rt.block_on(console.remove_instance(name))?;
            if json {
                print_json(&json!({"removed": name}));
            } else {
                println!("Removed {name}; its secrets have left the keychain.");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_json(value: &impl serde::Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        // Our DTOs are plain data; serialization cannot fail, but never panic on output.
        Err(e) => eprintln!("error[internal]: cannot render JSON: {e}"),
    }
}
