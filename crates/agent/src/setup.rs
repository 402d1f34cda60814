//! `gatehouse-agent setup`: one command on the host that sets the agent up beside one service
//! unit. It writes the agent's config, grants exactly what the agent's actions need for that
//! service (a systemd drop-in for the agent's unit, an ACL on the service's directory, a polkit
//! rule for that one unit), initialises the agent, starts it, and prints what the running
//! agent found it can and cannot do (`grants.rs`: each grant tried), then the enrollment code
//! alone on the last line (and in `--code-file`).
//!
//! It can also write a hardened unit for the service itself (none of Sekha, RAE and Jelmore
//! ships one). Everything it writes is listed in its output; `apt purge gatehouse-agent` takes
//! the agent's grants back (the ACLs from `/etc/gatehouse-agent/granted-dirs`).

/// A line on standard output (see [`crate::output::say`]).
macro_rules! say {
    () => { crate::output::say(format_args!("")) };
    ($($arg:tt)*) => { crate::output::say(format_args!($($arg)*)) };
}

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use gatehouse_events::Profile;
use gatehouse_protocol::Capability;

use crate::config::{AgentConfig, JournalUnit};
use crate::fsutil::{self, Access};
use crate::grants;

/// The agent's own account, as the package creates it.
pub const AGENT_USER: &str = "gatehouse-agent";
/// The agent's unit, as the package installs it.
pub const AGENT_UNIT: &str = "gatehouse-agent.service";
const STATE_DIR: &str = "/var/lib/gatehouse-agent";
const DROP_IN_DIR: &str = "/etc/systemd/system/gatehouse-agent.service.d";
const DROP_IN: &str = "50-setup.conf";
const POLKIT_DIR: &str = "/etc/polkit-1/rules.d";
const GRANTED_DIRS: &str = "/etc/gatehouse-agent/granted-dirs";
/// How long the agent has to start and report what it can do.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What `setup` is asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub profile: String,
    pub unit: Option<String>,
    pub service_dir: Option<PathBuf>,
    pub service_user: Option<String>,
    /// Write a unit for the service that runs this command (systemd `ExecStart=` syntax).
    pub write_unit: Option<String>,
    pub env: Vec<String>,
    pub listen: SocketAddr,
    pub port: Option<u16>,
    pub config: PathBuf,
    pub profiles_dir: Option<PathBuf>,
    pub code_file: Option<PathBuf>,
    pub force: bool,
}

/// What setup found the service to be.
#[derive(Debug)]
struct Service {
    profile: Profile,
    unit: JournalUnit,
    dir: PathBuf,
    user: String,
    uid: u32,
}

/// Set the agent up. Returns whether every grant it made works.
pub fn run(options: &Options) -> anyhow::Result<bool> {
    if fsutil::agent_uid() != 0 {
        bail!("setup writes system files (the agent's unit drop-in, a polkit rule, ACLs): run it as root");
    }
    let (agent_uid, agent_gid) = account(AGENT_USER).with_context(|| {
        format!("the {AGENT_USER} account does not exist: install the gatehouse-agent package first (it creates it)")
    })?;
    let profile = load_profile(options)?;
    let unit = JournalUnit::parse(options.unit.as_deref().unwrap_or(&profile.name))
        .map_err(|e| anyhow::anyhow!("--unit: {e}"))?;
    let mut did: Vec<String> = Vec::new();

    if let Some(command) = &options.write_unit {
        let dir = options
            .service_dir
            .clone()
            .context("--write-unit needs --service-dir (the service's working directory)")?;
        let user = options
            .service_user
            .clone()
            .context("--write-unit needs --service-user (the account the service runs as)")?;
        let (_, gid) = account(&user).with_context(|| format!("no such user: {user}"))?;
        let text = service_unit(
            &profile,
            &unit,
            &dir,
            &user,
            &group_name(gid),
            command,
            &options.env,
        )?;
        let path = Path::new("/etc/systemd/system").join(unit.as_str());
        if write_if_changed(
            &path,
            &text,
            0o644,
            (0, 0),
            options.force,
            "the service's unit",
        )? {
            did.push(format!(
                "wrote a hardened unit for the service: {}",
                path.display()
            ));
        }
        systemctl(&["daemon-reload"])?;
        systemctl(&["enable", "--now", "--quiet", unit.as_str()])?;
        did.push(format!("enabled and started {unit}"));
    }
    let service = resolve_service(profile, unit, options)?;

    // The agent's config.
    let config = agent_config(&service, options)?;
    AgentConfig::parse(&config, &options.config)
        .map_err(|e| anyhow::anyhow!("setup made a config the agent refuses (a bug): {e}"))?;
    if let Some(parent) = options.config.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    if write_if_changed(
        &options.config,
        &config,
        0o640,
        (0, agent_gid),
        options.force,
        "the agent's config",
    )? {
        did.push(format!(
            "wrote the agent's config {} (root:{AGENT_USER}, mode 0640)",
            options.config.display()
        ));
    }

    // The grants.
    let write_dirs = write_dirs(&service);
    let drop_in = drop_in(&service, &write_dirs, agent_journal(&config));
    std::fs::create_dir_all(DROP_IN_DIR).with_context(|| format!("creating {DROP_IN_DIR}"))?;
    let drop_in_path = Path::new(DROP_IN_DIR).join(DROP_IN);
    write_if_changed(
        &drop_in_path,
        &drop_in,
        0o644,
        (0, 0),
        true,
        "the agent's unit drop-in",
    )?;
    did.push(format!(
        "granted in {}: {}",
        drop_in_path.display(),
        drop_in
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains('='))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    for dir in &write_dirs {
        let entry = format!("u:{AGENT_USER}:wx");
        run_checked("setfacl", &["-m", &entry, &dir.display().to_string()])?;
        did.push(format!(
            "granted {AGENT_USER} write and search on {} (ACL {entry}), to put a new config or database in place",
            dir.display()
        ));
    }
    record_granted_dirs(&write_dirs, agent_gid)?;
    let rule_path =
        Path::new(POLKIT_DIR).join(format!("50-gatehouse-agent-{}.rules", service.unit));
    std::fs::create_dir_all(POLKIT_DIR).with_context(|| format!("creating {POLKIT_DIR}"))?;
    write_if_changed(
        &rule_path,
        &polkit_rule(&service.unit),
        0o644,
        (0, 0),
        true,
        "the polkit rule",
    )?;
    did.push(format!(
        "allowed {AGENT_USER} to restart {} and nothing else through polkit: {}",
        service.unit,
        rule_path.display()
    ));

    // The agent's identity.
    let state = crate::state::StateDir::new(STATE_DIR);
    let enrolled = state.fleet().ok().flatten().is_some();
    let code = if enrolled && !options.force {
        did.push("kept the agent's enrollment (it is enrolled; --force makes a new code)".into());
        None
    } else {
        Some(initialise(&options.config, agent_uid, options.force)?)
    };

    // Start it and read what it found.
    let _ = std::fs::remove_file(grants::report_path(Path::new(STATE_DIR)));
    systemctl(&["daemon-reload"])?;
    systemctl(&["enable", "--quiet", AGENT_UNIT])?;
    systemctl(&["restart", AGENT_UNIT])?;
    did.push(format!("enabled and (re)started {AGENT_UNIT}"));
    for line in &did {
        say!("setup: {line}");
    }
    let report = await_report()?;
    say!();
    say!("What the agent can do, each tried by the running agent:");
    for line in grants::render(&report).lines() {
        say!("  {line}");
    }
    let lacking: Vec<&Capability> = report
        .iter()
        .filter(|c| !c.ok && c.name != "service_environment")
        .filter(|c| grants_fix(&c.why))
        .collect();
    if !lacking.is_empty() {
        say!();
        say!(
            "setup: {} grant(s) do not work yet; see above",
            lacking.len()
        );
    }
    if let Some(code) = code {
        if let Some(file) = &options.code_file {
            fsutil::write_atomic(file, format!("{code}\n").as_bytes())
                .with_context(|| format!("writing the enrollment code to {}", file.display()))?;
        }
        say!();
        say!(
            "Enrollment code (single use, 15 minutes; paste it into Add instance, or `gatehouse instance add --name NAME --address HOST:{} < code.txt`){}:",
            options.listen.port(),
            options
                .code_file
                .as_ref()
                .map_or(String::new(), |f| format!(", also in {}", f.display()))
        );
        say!("{code}");
    }
    Ok(lacking.is_empty())
}

/// A failure a grant of setup's should have fixed.
fn grants_fix(why: &str) -> bool {
    [
        "ermission denied",
        "ot permitted",
        "ead-only",
        "uthentication required",
        "ccess denied",
        "CAP_",
        "systemd-journal",
    ]
    .iter()
    .any(|s| why.contains(s))
}

fn load_profile(options: &Options) -> anyhow::Result<Profile> {
    let mut probe = AgentConfig::for_test(PathBuf::from(STATE_DIR)).with_profile(&options.profile);
    probe.profiles_dir = options.profiles_dir.clone();
    probe
        .service_profile()
        .map_err(|e| anyhow::anyhow!("--profile: {e}"))
}

/// The service as the options and its unit say.
fn resolve_service(
    profile: Profile,
    unit: JournalUnit,
    options: &Options,
) -> anyhow::Result<Service> {
    let shown = systemctl_show(unit.as_str(), &["LoadState", "User", "WorkingDirectory"])?;
    let field = |k: &str| {
        shown
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    if field("LoadState") != "loaded" {
        bail!(
            "systemd has no unit {unit} (LoadState={}): name the service's unit with --unit, or let setup write one with --write-unit COMMAND",
            field("LoadState")
        );
    }
    let dir = match &options.service_dir {
        Some(dir) => dir.clone(),
        None => {
            let wd = field("WorkingDirectory");
            let wd = wd.trim_start_matches(['!', '~', '-']);
            if wd.is_empty() {
                bail!("{unit} has no WorkingDirectory=: give the service's directory with --service-dir");
            }
            PathBuf::from(wd)
        }
    };
    let meta = std::fs::metadata(&dir)
        .with_context(|| format!("the service's directory {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let user = match &options.service_user {
        Some(user) => user.clone(),
        None if !field("User").is_empty() => field("User"),
        None => {
            use std::os::unix::fs::MetadataExt;
            user_name(meta.uid()).unwrap_or_else(|| meta.uid().to_string())
        }
    };
    let (uid, _) = account(&user).with_context(|| format!("no such user: {user}"))?;
    if uid == 0 {
        bail!("the service runs as root: the agent is meant to be beside a service with an account of its own");
    }
    Ok(Service {
        profile,
        unit,
        dir,
        user,
        uid,
    })
}

/// The directories where the agent must create files: the config's and the database's.
fn write_dirs(service: &Service) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = service
        .profile
        .config_files
        .iter()
        .map(|f| service.dir.join(&f.path))
        .chain(
            service
                .profile
                .database
                .iter()
                .map(|d| service.dir.join(&d.path)),
        )
        .filter_map(|p| p.parent().map(Path::to_owned))
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// A log format as a config spells it: its `format` line, and a pattern's `pattern` and
/// `time_format`; each line starts with `lead` (`# ` for a commented-out entry).
fn format_lines(format: &gatehouse_events::LineFormat, lead: &str) -> String {
    let q = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let mut text = format!("{lead}format = {}\n", q(format.name()));
    if let gatehouse_events::LineFormat::Pattern(p) = format {
        text.push_str(&format!("{lead}pattern = {}\n", q(p.as_str())));
        text.push_str(&format!(
            "{lead}time_format = {}\n",
            q(p.time_format().as_str())
        ));
    }
    text
}

/// Whether the config follows a journal.
fn agent_journal(config: &str) -> bool {
    config.contains("journal_unit = ")
}

/// The agent's config for `service`.
fn agent_config(service: &Service, options: &Options) -> anyhow::Result<String> {
    let q = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let profile = &service.profile;
    let port = options.port.unwrap_or(profile.default_port);
    let mut text =
        format!(
        "# Written by `gatehouse-agent setup` for {unit} (profile {name}). Run setup again after\n\
         # changing it by hand, so the grants match what it names.\n\
         listen = {listen}\n\
         profile = {profile_name}\n\
         state_dir = {state}\n\
         service_url = {url}\n\
         service_dir = {dir}\n\
         restart_command = [\"systemctl\", \"--no-ask-password\", \"restart\", {unit_q}]\n",
        unit = service.unit,
        name = profile.name,
        listen = q(&options.listen.to_string()),
        profile_name = q(&options.profile),
        state = q(STATE_DIR),
        url = q(&format!("http://127.0.0.1:{port}{}", profile.probes.open.path)),
        dir = q(&service.dir.display().to_string()),
        unit_q = q(service.unit.as_str()),
    );
    if let Some(dir) = &options.profiles_dir {
        text.push_str(&format!(
            "profiles_dir = {}\n",
            q(&dir.display().to_string())
        ));
    }
    // The service's own log is its unit's journal; the profile's other logs are files.
    let mut service_log_done = false;
    for log in &profile.logs {
        if log.source == gatehouse_events::Source::Service && !service_log_done {
            service_log_done = true;
            text.push_str(&format!(
                "\n[[logs]]\njournal_unit = {}\n{}source = \"service\"\n",
                q(service.unit.as_str()),
                format_lines(&log.format, ""),
            ));
        } else if Path::new(&log.path).exists() {
            text.push_str(&format!(
                "\n[[logs]]\npath = {}\n{}source = {}\n",
                q(&log.path),
                format_lines(&log.format, ""),
                q(log.source.as_str())
            ));
        } else {
            text.push_str(&format!(
                "\n# Not there on this host when setup ran; uncomment once it is:\n# [[logs]]\n# path = {}\n{}# source = {}\n",
                q(&log.path),
                format_lines(&log.format, "# "),
                q(log.source.as_str())
            ));
        }
    }
    text.push_str(&format!(
        "\n[checks]\nservice_user = {}\n",
        q(&service.user)
    ));
    Ok(text)
}

/// The agent unit's drop-in: exactly the grants the actions on `service` need.
fn drop_in(service: &Service, write_dirs: &[PathBuf], journal: bool) -> String {
    let mut text = format!(
        "# Written by `gatehouse-agent setup` for {unit} (uid {uid}). The grants the agent's actions\n\
         # on it need, each checked by the agent at start (`gatehouse-agent check-config`):\n\
         #  - read the service's 0600 config and its database: CAP_DAC_READ_SEARCH\n\
         #  - give a replaced config or database back to {user}: CAP_CHOWN\n\
         #  - create the replacement in the service's directory: ReadWritePaths (plus an ACL)\n",
        unit = service.unit,
        uid = service.uid,
        user = service.user,
    );
    if journal {
        text.push_str("#  - follow the unit's journal: the systemd-journal group\n");
    }
    text.push_str("[Service]\n");
    if journal {
        text.push_str("SupplementaryGroups=systemd-journal\n");
    }
    for dir in write_dirs {
        text.push_str(&format!("ReadWritePaths={}\n", dir.display()));
    }
    text.push_str("AmbientCapabilities=CAP_DAC_READ_SEARCH CAP_CHOWN\n");
    text.push_str("CapabilityBoundingSet=CAP_DAC_READ_SEARCH CAP_CHOWN\n");
    text
}

/// A polkit rule: the agent's user may restart `unit`, and nothing else.
fn polkit_rule(unit: &JournalUnit) -> String {
    let unit = unit.as_str().replace('\\', "\\\\");
    format!(
        "// Written by `gatehouse-agent setup`: the Gatehouse agent may restart {unit}, only that\n\
         // unit and only restart (its key rotation, restore and incident restart need it).\n\
         polkit.addRule(function(action, subject) {{\n\
         \x20   if (action.id == \"org.freedesktop.systemd1.manage-units\" &&\n\
         \x20       action.lookup(\"unit\") == \"{unit}\" &&\n\
         \x20       action.lookup(\"verb\") == \"restart\" &&\n\
         \x20       subject.user == \"{AGENT_USER}\") {{\n\
         \x20       return polkit.Result.YES;\n\
         \x20   }}\n\
         }});\n"
    )
}

/// A hardened unit for the service: its own user, its directory the only place it writes,
/// its output to the journal.
fn service_unit(
    profile: &Profile,
    unit: &JournalUnit,
    dir: &Path,
    user: &str,
    group: &str,
    command: &str,
    env: &[String],
) -> anyhow::Result<String> {
    if command.contains('\n') {
        bail!("--write-unit: the command must be one line");
    }
    for pair in env {
        if !pair.contains('=') || pair.contains('\n') {
            bail!("--env {pair:?}: give KEY=VALUE on one line");
        }
    }
    let mut environment = String::new();
    if profile.name == "sekha" {
        // Sekha colours its log lines unless told not to.
        environment.push_str("Environment=NO_COLOR=1\n");
    }
    for pair in env {
        environment.push_str(&format!("Environment=\"{}\"\n", pair.replace('"', "\\\"")));
    }
    let mut pre = String::new();
    if profile.name == "sekha" && Path::new("/usr/bin/sqlite3").exists() {
        // Sekha's known restart bug: a second start on an existing sekha.db exits with
        // "UNIQUE constraint failed: seaql_migrations.version" unless that table is cleared.
        // Quiet, so its complaint on a first start (no such table yet) is not in the
        // service's journal among Sekha's own lines.
        pre.push_str(&format!(
            "ExecStartPre=-/bin/sh -c 'exec /usr/bin/sqlite3 \"$$0\" \"DELETE FROM seaql_migrations;\" 2>/dev/null' {}\n",
            dir.join("sekha.db").display()
        ));
    }
    Ok(format!(
        "# Written by `gatehouse-agent setup`: {display} ({description}) as {unit}, hardened.\n\
         [Unit]\n\
         Description={display}\n\
         After=network-online.target\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         Type=exec\n\
         User={user}\n\
         Group={group}\n\
         WorkingDirectory={dir}\n\
         {environment}{pre}ExecStart={command}\n\
         Restart=on-failure\n\
         RestartSec=2\n\
         StandardOutput=journal\n\
         StandardError=journal\n\
         # journald's default limit (10,000 lines in 30 s) would drop lines of a burst of\n\
         # failed sign-ins; the journal's size limits still hold.\n\
         LogRateLimitIntervalSec=0\n\
         UMask=0077\n\
         NoNewPrivileges=yes\n\
         ProtectSystem=strict\n\
         ReadWritePaths={dir}\n\
         ProtectHome=yes\n\
         PrivateTmp=yes\n\
         PrivateDevices=yes\n\
         ProtectKernelTunables=yes\n\
         ProtectKernelModules=yes\n\
         ProtectKernelLogs=yes\n\
         ProtectControlGroups=yes\n\
         ProtectClock=yes\n\
         ProtectHostname=yes\n\
         RestrictSUIDSGID=yes\n\
         RestrictNamespaces=yes\n\
         RestrictRealtime=yes\n\
         LockPersonality=yes\n\
         SystemCallArchitectures=native\n\
         CapabilityBoundingSet=\n\
         RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        display = profile.display_name,
        description = profile.description,
        dir = dir.display(),
        unit = unit,
    ))
}

/// Write `text` to `path` unless it holds it already; a different file there is replaced only
/// with `force`. Returns whether it wrote.
fn write_if_changed(
    path: &Path,
    text: &str,
    mode: u32,
    owner: (u32, u32),
    force: bool,
    what: &str,
) -> anyhow::Result<bool> {
    match std::fs::read_to_string(path) {
        Ok(existing) if existing == text => {
            fsutil::write_atomic_with(path, text.as_bytes(), Access::owned(mode, owner.0, owner.1))
                .with_context(|| format!("writing {}", path.display()))?;
            return Ok(false);
        }
        Ok(_) if !force => bail!(
            "{} exists and differs from what setup would write for {what}: --force replaces it",
            path.display()
        ),
        _ => {}
    }
    fsutil::write_atomic_with(path, text.as_bytes(), Access::owned(mode, owner.0, owner.1))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(true)
}

/// Add the directories to the list purge takes the ACLs back from.
fn record_granted_dirs(dirs: &[PathBuf], agent_gid: u32) -> anyhow::Result<()> {
    let mut all: Vec<String> = std::fs::read_to_string(GRANTED_DIRS)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    all.extend(dirs.iter().map(|d| d.display().to_string()));
    all.sort();
    all.dedup();
    let text = all.join("\n") + "\n";
    fsutil::write_atomic_with(
        Path::new(GRANTED_DIRS),
        text.as_bytes(),
        Access::owned(0o640, 0, agent_gid),
    )
    .with_context(|| format!("writing {GRANTED_DIRS}"))
}

/// `gatehouse-agent init` as the agent's user; the code it wrote.
fn initialise(config: &Path, agent_uid: u32, force: bool) -> anyhow::Result<String> {
    let exe = std::env::current_exe().context("finding this program")?;
    let code_file = Path::new(STATE_DIR).join("enrollment-code.txt");
    std::fs::create_dir_all(STATE_DIR).with_context(|| format!("creating {STATE_DIR}"))?;
    std::os::unix::fs::chown(STATE_DIR, Some(agent_uid), None)
        .with_context(|| format!("giving {STATE_DIR} to {AGENT_USER}"))?;
    let mut command = Command::new("runuser");
    command
        .args(["-u", AGENT_USER, "--"])
        .arg(&exe)
        .args(["init", "--config"])
        .arg(config)
        .arg("--code-file")
        .arg(&code_file);
    if force {
        command.arg("--force");
    }
    let output = command.output().context("running runuser")?;
    if !output.status.success() {
        bail!(
            "gatehouse-agent init failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let code = fsutil::read_text(&code_file, 4096).context("reading the enrollment code")?;
    let _ = std::fs::remove_file(&code_file);
    Ok(code.trim().to_owned())
}

/// Wait for the restarted agent's report of what it can do.
fn await_report() -> anyhow::Result<Vec<Capability>> {
    let path = grants::report_path(Path::new(STATE_DIR));
    let started = Instant::now();
    while started.elapsed() < START_TIMEOUT {
        if let Ok(text) = std::fs::read_to_string(&path) {
            if let Ok(report) = serde_json::from_str(&text) {
                return Ok(report);
            }
        }
        let failed = Command::new("systemctl")
            .args(["is-failed", "--quiet", AGENT_UNIT])
            .status()
            .is_ok_and(|s| s.success());
        if failed {
            let status = Command::new("systemctl")
                .args(["status", "--no-pager", "--lines=5", AGENT_UNIT])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            bail!("{AGENT_UNIT} failed to start:\n{status}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!(
        "{AGENT_UNIT} did not report what it can do within {} s (see journalctl -u {AGENT_UNIT})",
        START_TIMEOUT.as_secs()
    )
}

fn systemctl(args: &[&str]) -> anyhow::Result<()> {
    run_checked("systemctl", args)
}

fn run_checked(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !output.status.success() {
        bail!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// `systemctl show UNIT -p …` as name and value pairs.
fn systemctl_show(unit: &str, properties: &[&str]) -> anyhow::Result<Vec<(String, String)>> {
    let mut command = Command::new("systemctl");
    command.arg("show");
    for p in properties {
        command.arg(format!("--property={p}"));
    }
    let output = command
        .arg(unit)
        .output()
        .context("running systemctl show")?;
    if !output.status.success() {
        bail!(
            "systemctl show {unit} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

/// A user's uid and primary gid from `/etc/passwd`.
fn account(user: &str) -> Option<(u32, u32)> {
    let passwd = fsutil::read_text(Path::new("/etc/passwd"), fsutil::CONFIG_MAX).ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&user) && fields.len() > 3)
            .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))?
    })
}

fn user_name(uid: u32) -> Option<String> {
    let passwd = fsutil::read_text(Path::new("/etc/passwd"), fsutil::CONFIG_MAX).ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.get(2) == Some(&uid.to_string().as_str())).then(|| fields[0].to_owned())
    })
}

fn group_name(gid: u32) -> String {
    let groups = fsutil::read_text(Path::new("/etc/group"), fsutil::CONFIG_MAX).unwrap_or_default();
    groups
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.get(2) == Some(&gid.to_string().as_str())).then(|| fields[0].to_owned())
        })
        .unwrap_or_else(|| gid.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_format_is_written_back_whole() {
        let format = gatehouse_events::LineFormat::from_parts(
            "pattern",
            Some(r#"^(?P<time>\d+) (?P<ip>\S+) "(?P<path>[^"]*)" '(?P<status>\d+)'$"#),
            Some("unix"),
        )
        .expect("compiles");
        let text = format!(
            "listen = \"127.0.0.1:7443\"\nprofile = \"memo\"\nstate_dir = \"/x\"\n\n[[logs]]\npath = \"/x.log\"\n{}source = \"service\"\n",
            format_lines(&format, "")
        );
        let config = AgentConfig::parse(&text, Path::new("agent.toml"))
            .unwrap_or_else(|e| panic!("the written config parses: {e}\n{text}"));
        assert_eq!(
            config.logs[0].format, format,
            "the pattern and its time_format survive quoting: {text}"
        );
        let commented = format_lines(&format, "# ");
        assert!(
            commented.lines().all(|l| l.starts_with("# ")),
            "a commented-out entry comments every line: {commented}"
        );
    }

    fn sekha() -> Service {
        Service {
            profile: Profile::builtin("sekha")
                .expect("built in")
                .expect("parses"),
            unit: JournalUnit::parse("sekha.service").expect("unit"),
            dir: PathBuf::from("/opt/sekha"),
            user: "sekha".into(),
            uid: 990,
        }
    }

    fn options() -> Options {
        Options {
            profile: "sekha".into(),
            unit: None,
            service_dir: None,
            service_user: None,
            write_unit: None,
            env: Vec::new(),
            listen: "0.0.0.0:7443".parse().expect("address"),
            port: None,
            config: PathBuf::from("/etc/gatehouse-agent/agent.toml"),
            profiles_dir: None,
            code_file: None,
            force: false,
        }
    }

    #[test]
    fn the_config_follows_the_unit_s_journal_and_restarts_only_that_unit() {
        let text = agent_config(&sekha(), &options()).expect("config");
        let config =
            AgentConfig::parse(&text, Path::new("agent.toml")).expect("the agent accepts it");
        assert_eq!(
            config.logs[0].journal_unit().map(JournalUnit::as_str),
            Some("sekha.service"),
            "the service's log is its unit's journal: {text}"
        );
        assert_eq!(
            config.restart_command.as_deref(),
            Some(
                &["systemctl", "--no-ask-password", "restart", "sekha.service"].map(String::from)[..]
            ),
            "the restart names the unit the polkit rule allows, and never asks for a password"
        );
        assert_eq!(
            config.service_url.as_deref(),
            Some("http://127.0.0.1:8080/health"),
            "the profile's port and open endpoint"
        );
    }

    #[test]
    fn the_drop_in_grants_only_what_the_actions_need() {
        let service = sekha();
        let dirs = write_dirs(&service);
        assert_eq!(
            dirs,
            [PathBuf::from("/opt/sekha")],
            "config and database share a directory"
        );
        let text = drop_in(&service, &dirs, true);
        let settings: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            settings,
            [
                "[Service]",
                "SupplementaryGroups=systemd-journal",
                "ReadWritePaths=/opt/sekha",
                "AmbientCapabilities=CAP_DAC_READ_SEARCH CAP_CHOWN",
                "CapabilityBoundingSet=CAP_DAC_READ_SEARCH CAP_CHOWN",
            ],
            "no capability beyond reading and giving files back, no path beyond the service's directory"
        );
    }

    #[test]
    fn the_polkit_rule_names_one_unit_one_verb_and_the_agent_s_user() {
        let rule = polkit_rule(&JournalUnit::parse("sekha.service").expect("unit"));
        for needle in [
            "action.lookup(\"unit\") == \"sekha.service\"",
            "action.lookup(\"verb\") == \"restart\"",
            "subject.user == \"gatehouse-agent\"",
            "org.freedesktop.systemd1.manage-units",
        ] {
            assert!(rule.contains(needle), "the rule holds {needle}: {rule}");
        }
    }

    #[test]
    fn a_written_unit_runs_the_service_as_its_own_user_writing_only_its_directory() {
        let service = sekha();
        let unit = service_unit(
            &service.profile,
            &service.unit,
            &service.dir,
            "sekha",
            "sekha",
            "/opt/sekha/bin/sekha-controller start --port 8080",
            &["RUST_LOG=info".into()],
        )
        .expect("unit");
        for needle in [
            "User=sekha\n",
            "WorkingDirectory=/opt/sekha\n",
            "ReadWritePaths=/opt/sekha\n",
            "ProtectSystem=strict\n",
            "NoNewPrivileges=yes\n",
            "Environment=NO_COLOR=1\n",
            "Environment=\"RUST_LOG=info\"\n",
            "StandardOutput=journal\n",
        ] {
            assert!(unit.contains(needle), "the unit holds {needle:?}: {unit}");
        }
        assert!(
            service_unit(
                &service.profile,
                &service.unit,
                &service.dir,
                "sekha",
                "sekha",
                "a\nExecStartPre=/bin/evil",
                &[]
            )
            .is_err(),
            "a command cannot smuggle in another directive"
        );
    }
}
