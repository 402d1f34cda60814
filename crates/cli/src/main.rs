//! `gatehouse`: the console without a window. Every capability of the desktop app is here too,
//! so it can be scripted, run on a server and tested without a display.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gatehouse_core::{Console, DataDir, IpcError, KeychainState, Theme, Vault};
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
                        status_word(item.status),
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
    }
    Ok(ExitCode::SUCCESS)
}

fn status_word(status: gatehouse_core::Status) -> &'static str {
    match status {
        gatehouse_core::Status::Ok => "ok",
        gatehouse_core::Status::Warning => "warning",
        gatehouse_core::Status::Failing => "failing",
        gatehouse_core::Status::Unknown => "unknown",
    }
}

fn print_json(value: &impl serde::Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        // Our DTOs are plain data; serialization cannot fail, but never panic on output.
        Err(e) => eprintln!("error[internal]: cannot render JSON: {e}"),
    }
}
