//! `gatehouse-agent`: the daemon beside each service instance. A thin command line over the
//! library: `init` makes the identity and prints the enrollment code, `run` hands over to
//! `app::run` (after writing what the agent can do to its state directory), `check-config`
//! resolves a config and says what it configures and what the agent can do, `setup` sets the
//! agent up beside a service unit (`setup.rs`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use gatehouse_agent::state::StateDir;
use gatehouse_agent::{app, fsutil, grants, initialise, setup, AgentConfig, ConfigError, Settings};
use gatehouse_pki::Fingerprint;
use ring::rand::{SecureRandom, SystemRandom};

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
    /// Create the agent's key and print a one-time enrollment code for the console.
    Init {
        #[arg(long, default_value = "/etc/gatehouse-agent/agent.toml")]
        config: PathBuf,
        /// How long the code stays valid, in minutes.
        #[arg(long, default_value_t = 15)]
        ttl_minutes: u64,
        /// Replace an existing enrollment (the current certificate stops working).
        #[arg(long)]
        force: bool,
        /// Also write the code to this file (mode 0600), for scripts.
        #[arg(long, value_name = "FILE")]
        code_file: Option<PathBuf>,
    },
    /// Serve the API over mutual TLS until SIGTERM or Ctrl-C.
    Run {
        #[arg(long, default_value = "/etc/gatehouse-agent/agent.toml")]
        config: PathBuf,
    },
    /// Validate a config file, print what it configures and what the agent can do: as root,
    /// what the running agent found at its start; as the agent's user, tried now.
    CheckConfig {
        #[arg(long, default_value = "/etc/gatehouse-agent/agent.toml")]
        config: PathBuf,
        /// Try each capability now, as this process, even as root.
        #[arg(long)]
        probe: bool,
    },
    /// Set the agent up beside a service's systemd unit (as root): write its config, grant
    /// exactly what its actions need (unit drop-in, ACL, polkit rule), start it, print what it
    /// can do and the enrollment code.
    Setup {
        /// The service profile: sekha, rae, jelmore, jupyter, or one in --profiles-dir.
        #[arg(long)]
        profile: String,
        /// The service's systemd unit (default: the profile's name, e.g. sekha.service).
        #[arg(long)]
        unit: Option<String>,
        /// The service's working directory (default: the unit's WorkingDirectory=).
        #[arg(long)]
        service_dir: Option<PathBuf>,
        /// The account the service runs as (default: the unit's User=).
        #[arg(long)]
        service_user: Option<String>,
        /// Write a hardened unit for the service that runs COMMAND (systemd ExecStart=
        /// syntax), for services that ship none; needs --service-dir and --service-user.
        #[arg(long, value_name = "COMMAND")]
        write_unit: Option<String>,
        /// Environment for the written unit, KEY=VALUE (repeatable).
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// Where the agent listens for the console.
        #[arg(long, default_value = "0.0.0.0:7443")]
        listen: std::net::SocketAddr,
        /// The service's port on 127.0.0.1 (default: the profile's).
        #[arg(long)]
        port: Option<u16>,
        #[arg(long, default_value = "/etc/gatehouse-agent/agent.toml")]
        config: PathBuf,
        /// Operator-written profiles.
        #[arg(long)]
        profiles_dir: Option<PathBuf>,
        /// Also write the enrollment code to this file (mode 0600).
        #[arg(long, value_name = "FILE")]
        code_file: Option<PathBuf>,
        /// Replace a config or unit that differs, and enroll again (a new code).
        #[arg(long)]
        force: bool,
    },
}

fn main() -> ExitCode {
    rustls::crypto::ring::default_provider()
        .install_default()
        .ok();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Init {
            config,
            ttl_minutes,
            force,
            code_file,
        } => init(&config, ttl_minutes, force, code_file),
        Command::Run { config } => run(&config),
        Command::CheckConfig { config, probe } => check_config(&config, probe),
        Command::Setup {
            profile,
            unit,
            service_dir,
            service_user,
            write_unit,
            env,
            listen,
            port,
            config,
            profiles_dir,
            code_file,
            force,
        } => {
            let options = setup::Options {
                profile,
                unit,
                service_dir,
                service_user,
                write_unit,
                env,
                listen,
                port,
                config,
                profiles_dir,
                code_file,
                force,
            };
            match setup::run(&options) {
                Ok(true) => Ok(()),
                Ok(false) => return ExitCode::from(1),
                Err(e) => Err(e),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let text = format!("{e:#}");
            if text.starts_with("error[") {
                eprintln!("{text}");
            } else {
                eprintln!("error: {text}");
            }
            ExitCode::from(2)
        }
    }
}

/// A config error as the operator sees it: `error[code]: message`.
fn config_error(e: &ConfigError) -> anyhow::Error {
    anyhow::anyhow!("error[{}]: {e}", e.code())
}

fn check_config(path: &std::path::Path, probe: bool) -> anyhow::Result<()> {
    let cfg = AgentConfig::load(path).map_err(|e| config_error(&e))?;
    let settings = Settings::resolve(&cfg);
    let logs = settings.logs().map_err(config_error)?;
    gatehouse_agent::say!(
        "ok: listen {} · profile {} · state {}",
        cfg.listen,
        cfg.profile,
        cfg.state_dir.display()
    );
    let mut warnings = settings.warnings();
    match settings.profile() {
        Ok(profile) => {
            let origin = cfg
                .profiles_dir
                .as_ref()
                .map(|dir| dir.join(format!("{}.toml", cfg.profile)))
                .filter(|path| path.is_file())
                .map_or_else(|| "built in".to_owned(), |path| path.display().to_string());
            gatehouse_agent::say!(
                "   profile {} ({}; {origin}): {}",
                profile.name,
                profile.display_name,
                if profile.multiple_keys {
                    "takes several keys at once"
                } else {
                    "takes one key at a time"
                }
            );
            match &profile.guides {
                Some(g) => gatehouse_agent::say!("   checklist {} · playbook {}", g.checklist, g.playbook),
                None => gatehouse_agent::say!(
                    "   no [guides]: the console uses a checklist and playbook named {}, else its generic ones",
                    profile.name
                ),
            }
            // Each config file read as the agent will read it, values never shown.
            let report = gatehouse_agent::credentials::inventory(
                profile,
                settings.service.dir.as_deref(),
                &gatehouse_pki::Fingerprints::unkeyed(),
                &Default::default(),
            );
            for key in &report.credentials {
                // A password the file holds only as a hash (htpasswd) has no length to say.
                let hashed = profile
                    .config_files
                    .iter()
                    .any(|f| f.format.is_hashed() && key.file.ends_with(f.path.as_str()));
                let length = if hashed {
                    "a password hash".to_owned()
                } else {
                    format!("{} characters", key.length)
                };
                gatehouse_agent::say!(
                    "   key {} in {} ({length}{})",
                    key.name,
                    key.file,
                    if key.weak { ", weak" } else { "" }
                );
            }
            warnings.extend(report.problems);
        }
        Err(e) => warnings.push(e.to_string()),
    }
    gatehouse_agent::say!(
        "   restart: {} (allowed {} s)",
        settings.service.restart_command.join(" "),
        settings.service.restart_timeout.as_secs()
    );
    for log in logs {
        // Each file tried now, as the agent will open it.
        let read = match log.path() {
            Some(path) => match std::fs::File::open(path).and_then(|f| f.metadata()) {
                Ok(meta) => format!(", readable, {} bytes", meta.len()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                Err(e) => format!(", cannot be read: {e}"),
            },
            None => String::new(),
        };
        gatehouse_agent::say!(
            "   follows {} ({}, {}{read})",
            log.name(),
            log.format.name(),
            log.source
        );
    }
    for warning in warnings {
        gatehouse_agent::say!("warning: {warning}");
    }
    gatehouse_agent::say!();
    let uid = fsutil::agent_uid();
    if uid == 0 && !probe {
        let report = grants::report_path(&cfg.state_dir);
        match std::fs::read_to_string(&report) {
            Ok(text) => {
                let capabilities: Vec<gatehouse_protocol::Capability> =
                    serde_json::from_str(&text).with_context(|| format!("reading {}", report.display()))?;
                gatehouse_agent::say!("What the running agent can do (each tried at its start; {}):", report.display());
                gatehouse_agent::say!("{}", indent(&grants::render(&capabilities)).trim_end_matches('\n'));
            }
            Err(_) => gatehouse_agent::say!(
                "The agent has not run with this state directory yet, and root can do what the agent's user may not: start it (systemctl start gatehouse-agent), or run `gatehouse-agent setup`, then ask again (--probe tries as root)."
            ),
        }
    } else {
        gatehouse_agent::say!("What this process (uid {uid}) can do, each tried now:");
        gatehouse_agent::say!(
            "{}",
            indent(&grants::render(&grants::probe(&settings))).trim_end_matches('\n')
        );
    }
    Ok(())
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("   {l}\n")).collect()
}

/// What the agent can do here, tried at start: in its log (each lack a warning) and in its
/// state directory, where `setup` and `check-config` read it.
fn report_capabilities(cfg: &AgentConfig) {
    let settings = Settings::resolve(cfg);
    let report = grants::probe(&settings);
    for capability in &report {
        if capability.ok {
            tracing::info!(capability = %capability.name, why = %capability.why, "can");
        } else {
            tracing::warn!(capability = %capability.name, why = %capability.why, "cannot");
        }
    }
    let path = grants::report_path(&cfg.state_dir);
    match serde_json::to_vec_pretty(&report) {
        Ok(json) => {
            if let Err(e) = fsutil::write_atomic(&path, &json) {
                tracing::error!(path = %path.display(), error = %e, "cannot keep the capability report");
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot encode the capability report"),
    }
}

fn init(
    config: &std::path::Path,
    ttl_minutes: u64,
    force: bool,
    code_file: Option<PathBuf>,
) -> anyhow::Result<()> {
    let cfg = AgentConfig::load(config).map_err(|e| config_error(&e))?;
    let state = StateDir::new(&cfg.state_dir);
    state
        .ensure()
        .with_context(|| format!("creating {}", cfg.state_dir.display()))?;
    if state.fleet()?.is_some() && !force {
        anyhow::bail!(
            "this agent is already enrolled; `init --force` replaces its identity (the console \
             must then enroll it again)"
        );
    }
    let now = gatehouse_agent::clock::Clock::system().date_time();
    let ttl = Duration::from_secs(ttl_minutes.max(1) * 60);
    let mut random = [0u8; 20];
    SystemRandom::new()
        .fill(&mut random)
        .map_err(|_| anyhow::anyhow!("the system random number generator failed"))?;
    let (code, fingerprint) = initialise(&state, now, ttl, random)?;
    if let Some(path) = code_file {
        fsutil::write_atomic(&path, format!("{code}\n").as_bytes())
            .with_context(|| format!("writing the enrollment code to {}", path.display()))?;
    }
    let expires = now + time::Duration::seconds(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
    print_code(&cfg, &code.to_string(), &fingerprint, expires);
    Ok(())
}

/// The enrollment code alone on standard output (so `init > code.txt` saves exactly it), and
/// what to do with it on standard error.
fn print_code(
    cfg: &AgentConfig,
    code: &str,
    fingerprint: &Fingerprint,
    expires: time::OffsetDateTime,
) {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    let expires = expires
        .format(&format)
        .unwrap_or_else(|_| expires.to_string());
    eprintln!(
        "Gatehouse agent initialised (profile {}, listening on {}).",
        cfg.profile, cfg.listen
    );
    eprintln!();
    eprintln!("Enrollment code, single use, valid until {expires} (on standard output):");
    eprintln!();
    gatehouse_agent::say!("{code}");
    eprintln!();
    eprintln!("In Gatehouse choose Add instance and paste it, or on the console machine run");
    eprintln!(
        "    gatehouse instance add --name <name> --address <this host>:{} < code.txt",
        cfg.listen.port()
    );
    eprintln!("(`gatehouse-agent init > code.txt` saves the code alone.)");
    eprintln!();
    eprintln!("The console checks this agent's certificate fingerprint, which is");
    eprintln!("    {fingerprint}");
}

fn run(config: &std::path::Path) -> anyhow::Result<()> {
    let cfg = AgentConfig::load(config).map_err(|e| config_error(&e))?;
    init_logging();
    // Beside the start, not before it: the probes run commands, and SIGTERM must find the
    // agent's handler in place from the first moment.
    let probed = cfg.clone();
    std::thread::spawn(move || report_capabilities(&probed));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(app::run(cfg, shutdown_signal()))
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GATEHOUSE_AGENT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn shutdown_signal() {
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
        () = ctrl_c => {},
        () = term => {},
    }
}
