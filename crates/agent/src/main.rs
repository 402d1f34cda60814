//! `gatehouse-agent`: the daemon beside each service instance.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gatehouse_agent::AgentConfig;

#[derive(Debug, Parser)]
#[command(
    name = "gatehouse-agent",
    version,
    about = "Gatehouse's agent for one service instance"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a config file and print what it configures.
    CheckConfig {
        /// Path of the agent's TOML config.
        #[arg(long, default_value = "/etc/gatehouse-agent/agent.toml")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { config } => match AgentConfig::load(&config) {
            Ok(cfg) => {
                println!(
                    "ok: listen {} · profile {} · state {}",
                    cfg.listen,
                    cfg.profile,
                    cfg.state_dir.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error[{}]: {e}", e.code());
                ExitCode::from(2)
            }
        },
    }
}
