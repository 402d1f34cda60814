//! What the agent can do on its host, found by trying each thing the way its actions do it,
//! with the process's own user, groups, capabilities and sandbox: reported by `/v1/info` and
//! `gatehouse-agent check-config`, written to the state directory at start (where `setup`
//! reads it), and checked before an action so that one lacking a grant is refused at once,
//! naming the grant, instead of failing half-way.
//!
//! Each probe changes nothing: a file is opened, not read for the console; the write probe
//! creates an empty file in the service's directory, gives it to the service's account and
//! removes it (exactly the steps of a rotation's write, through the same writer); the restart
//! probe asks systemd to restart the unit in a job mode it refuses after authorizing the
//! caller ("isolate", valid only for starting), so polkit's answer is known and nothing is
//! restarted; the firewall probe lists nftables' tables.
//!
//! The grants themselves and why each is the narrowest that works: ARCHITECTURE.md, "The
//! agent's privileges".

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gatehouse_protocol::Capability;

use crate::config::{LogConfig, LogOrigin, Settings};
use crate::fsutil::{self, Access, Dir};
use crate::service::account::uid_of;

/// How long a probe's command may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `/v1/info` reuses a report.
const REPORT_FRESH: Duration = Duration::from_secs(300);
/// The name of the file the write probe creates and removes in the service's directory.
const PROBE_FILE: &str = ".gatehouse-agent-probe";

/// An action the console may ask for, and what it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The credential inventory.
    ReadConfig,
    Rotate,
    Restart,
    Snapshot,
    Restore,
    Block,
}

/// Try everything the agent may be asked to do.
pub fn probe(settings: &Settings) -> Vec<Capability> {
    let mut out = Vec::new();
    if let Ok(logs) = settings.logs() {
        for log in logs {
            out.push(read_log(log));
        }
    }
    out.extend(read_config(settings));
    out.push(write_config(settings));
    out.push(restart(settings));
    out.push(snapshot(settings));
    out.push(restore(settings));
    out.push(block(settings));
    out.push(service_environment(settings));
    out
}

/// Why `action` cannot be done for lack of a grant, found by trying what it needs; `Ok` when
/// nothing it needs is refused for lack of privilege (anything else, such as a file that is
/// not there, is the action's own to report, in its own words).
pub fn require(settings: &Settings, action: Action) -> Result<(), String> {
    let needed: Vec<Capability> = match action {
        Action::ReadConfig => read_config(settings),
        Action::Rotate => {
            let mut needed = read_config(settings);
            needed.push(write_config(settings));
            needed.push(restart(settings));
            needed
        }
        Action::Restart => vec![restart(settings)],
        Action::Snapshot => vec![snapshot(settings)],
        Action::Restore => vec![snapshot(settings), restore(settings), restart(settings)],
        Action::Block => vec![block(settings)],
    };
    match needed.into_iter().find(|c| !c.ok && is_privilege(&c.why)) {
        Some(lacking) => Err(lacking.why),
        None => Ok(()),
    }
}

/// The last report, reused for a while by `/v1/info` (a probe runs commands).
#[derive(Debug, Default)]
pub struct Reports {
    last: Mutex<Option<(Instant, Vec<Capability>)>>,
}

impl Reports {
    /// The report, probing again if the last one is older than five minutes.
    pub fn current(&self, settings: &Settings) -> Vec<Capability> {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match last.as_ref() {
            Some((at, report)) if at.elapsed() < REPORT_FRESH => report.clone(),
            _ => {
                let report = probe(settings);
                *last = Some((Instant::now(), report.clone()));
                report
            }
        }
    }

    /// Probe now and keep the report.
    pub fn refresh(&self, settings: &Settings) -> Vec<Capability> {
        let report = probe(settings);
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *last = Some((Instant::now(), report.clone()));
        report
    }
}

/// The state directory's copy of the report the running agent made at start, for `setup`
/// and `check-config` run beside it.
pub fn report_path(state_dir: &Path) -> PathBuf {
    state_dir.join("capabilities.json")
}

/// A report as one line per capability: `restart: no, because …`.
pub fn render(report: &[Capability]) -> String {
    report
        .iter()
        .map(|c| {
            format!(
                "{}: {}, {}\n",
                c.name,
                if c.ok { "yes" } else { "no" },
                if c.ok {
                    c.why.clone()
                } else {
                    format!("because {}", c.why)
                }
            )
        })
        .collect()
}

/// A failure that a grant would fix (as opposed to a file that is not there yet).
fn is_privilege(why: &str) -> bool {
    const SIGNS: [&str; 8] = [
        "ermission denied",
        "ot permitted",
        "ead-only file system",
        "nteractive authentication required",
        "ccess denied",
        "CAP_",
        "needs the systemd-journal group",
        "polkit",
    ];
    SIGNS.iter().any(|sign| why.contains(sign))
}

fn capability(name: impl Into<String>, result: Result<String, String>) -> Capability {
    let (ok, why) = match result {
        Ok(why) => (true, why),
        Err(why) => (false, why),
    };
    Capability {
        name: name.into(),
        ok,
        why,
    }
}

/// The agent's user, for messages.
fn agent_user() -> String {
    let uid = fsutil::agent_uid();
    let passwd =
        fsutil::read_text(Path::new("/etc/passwd"), fsutil::CONFIG_MAX).unwrap_or_default();
    passwd
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            (fields.nth(1)? == uid.to_string()).then(|| name.to_owned())
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

fn read_log(log: &LogConfig) -> Capability {
    let name = format!("read_log:{}", log.name());
    match &log.origin {
        LogOrigin::File(path) => capability(
            name,
            match fsutil::open_regular(path) {
                Ok(_) => Ok(format!("{} opens for reading", path.display())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
                    "{} does not exist (yet); it is followed once it appears",
                    path.display()
                )),
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(format!(
                    "{e}: the agent's user ({}) may not read it; a group that may (adm for nginx's logs), an ACL, or CAP_DAC_READ_SEARCH would let it",
                    agent_user()
                )),
                Err(e) => Err(e.to_string()),
            },
        ),
        LogOrigin::Journal(unit) => capability(name, read_system_journal(unit.as_str())),
    }
}

/// Open the system journal's active file, as journalctl would.
fn read_system_journal(unit: &str) -> Result<String, String> {
    let machine = fsutil::read_text(Path::new("/etc/machine-id"), 4096)
        .map_err(|e| format!("cannot tell the machine id: {e}"))?;
    let machine = machine.trim();
    let mut tried = Vec::new();
    for base in ["/var/log/journal", "/run/log/journal"] {
        let file = Path::new(base).join(machine).join("system.journal");
        match std::fs::File::open(&file) {
            Ok(_) => {
                return Ok(format!(
                    "{} opens for reading, so {unit}'s entries can be followed",
                    file.display()
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tried.push(format!("{}: {e}", file.display())),
        }
    }
    if tried.is_empty() {
        return Err(format!(
            "no system journal was found under /var/log/journal or /run/log/journal for machine {machine}"
        ));
    }
    Err(format!(
        "{}: the agent's user ({}) needs the systemd-journal group to read {unit}'s entries",
        tried.join("; "),
        agent_user()
    ))
}

fn read_config(settings: &Settings) -> Vec<Capability> {
    let Ok(profile) = settings.profile() else {
        return Vec::new();
    };
    let Some(dir) = &settings.service.dir else {
        return vec![capability(
            "read_config",
            Err("no service_dir is configured, so the service's config is not known".into()),
        )];
    };
    let mut paths: Vec<PathBuf> = profile
        .config_files
        .iter()
        .map(|f| dir.join(&f.path))
        .collect();
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .map(|path| {
            let result = match fsutil::read_limited(&path, fsutil::CONFIG_MAX) {
                Ok(_) => Ok(format!("{} can be read", path.display())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
                    "{} does not exist (the service has no such config)",
                    path.display()
                )),
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(format!(
                    "{e}: the agent's user ({}) may not read the service's config; it needs CAP_DAC_READ_SEARCH (or to be given the file)",
                    agent_user()
                )),
                Err(e) => Err(e.to_string()),
            };
            capability(format!("read_config:{}", path.display()), result)
        })
        .collect()
}

/// The directory the rotation writes in and the owner the new file must get.
fn config_place(settings: &Settings) -> Result<(PathBuf, u32, u32), String> {
    let profile = settings.profile().map_err(|e| e.to_string())?;
    let dir = settings
        .service
        .dir
        .as_ref()
        .ok_or("no service_dir is configured")?;
    let file = profile
        .config_files
        .first()
        .ok_or("the profile names no config file")?;
    let path = dir.join(&file.path);
    let (parent, _) = fsutil::split(&path).map_err(|e| e.to_string())?;
    owner_in(parent, Some(&path), settings)
}

/// `dir`, and the owner a file written there for the service gets: `file`'s if it exists,
/// else the service account's (`service_user`, else the directory's owner).
fn owner_in(
    dir: &Path,
    file: Option<&Path>,
    settings: &Settings,
) -> Result<(PathBuf, u32, u32), String> {
    if let Some(facts) = file
        .and_then(|f| fsutil::open_regular(f).ok())
        .map(|r| r.facts)
    {
        return Ok((dir.to_owned(), facts.uid, facts.gid));
    }
    let facts = Dir::open(dir)
        .and_then(|d| d.facts())
        .map_err(|e| format!("cannot open {}: {e}", dir.display()))?;
    let uid = match &settings.service.user {
        Some(user) => uid_of(user).ok_or_else(|| format!("no such user: {user}"))?,
        None => facts.uid,
    };
    Ok((dir.to_owned(), uid, facts.gid))
}

/// Create a file in `dir`, give it to `uid`:`gid` and remove it, as the rotation and the
/// restore do.
fn try_write(dir: &Path, uid: u32, gid: u32) -> Result<String, String> {
    let handle = Dir::open(dir).map_err(|e| format!("cannot open {}: {e}", dir.display()))?;
    let name = std::ffi::OsStr::new(PROBE_FILE);
    let written = handle.write_atomic(name, b"", Access::owned(0o600, uid, gid));
    let _ = handle.remove(name);
    match written {
        Ok(()) => Ok(format!(
            "a file can be created in {} and given to uid {uid}",
            dir.display()
        )),
        Err(e) => {
            let text = e.to_string();
            let fix = if text.contains("Read-only file system") {
                format!(
                    "the agent's sandbox makes {} read-only: its unit needs ReadWritePaths={}",
                    dir.display(),
                    dir.display()
                )
            } else if text.contains("cannot give the new file") {
                format!(
                    "the agent cannot give a file to uid {uid} (the service's account): it needs CAP_CHOWN"
                )
            } else if e.kind() == std::io::ErrorKind::PermissionDenied {
                format!(
                    "the agent's user ({}) may not create files in {}: it needs write access to that directory (an ACL entry u:{}:wx)",
                    agent_user(),
                    dir.display(),
                    agent_user()
                )
            } else {
                String::new()
            };
            Err(if fix.is_empty() {
                text
            } else {
                format!("{text}; {fix}")
            })
        }
    }
}

fn write_config(settings: &Settings) -> Capability {
    capability(
        "rotate",
        config_place(settings).and_then(|(dir, uid, gid)| try_write(&dir, uid, gid)),
    )
}

/// The service's database, if its profile names one.
fn database(settings: &Settings) -> Result<PathBuf, String> {
    let profile = settings.profile().map_err(|e| e.to_string())?;
    let db = profile
        .database
        .as_ref()
        .ok_or_else(|| format!("the {} profile names no SQLite database", profile.name))?;
    let dir = settings
        .service
        .dir
        .as_ref()
        .ok_or("no service_dir is configured")?;
    Ok(dir.join(&db.path))
}

fn snapshot(settings: &Settings) -> Capability {
    capability(
        "snapshot",
        database(settings).and_then(|db| match fsutil::open_regular(&db) {
            Ok(_) => Ok(format!("{} can be read", db.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(format!("{} does not exist (yet)", db.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(format!(
                "{e}: the agent's user ({}) may not read the service's database; it needs CAP_DAC_READ_SEARCH",
                agent_user()
            )),
            Err(e) => Err(e.to_string()),
        }),
    )
}

fn restore(settings: &Settings) -> Capability {
    capability(
        "restore",
        database(settings).and_then(|db| {
            let (parent, _) = fsutil::split(&db).map_err(|e| e.to_string())?;
            let (dir, uid, gid) = owner_in(parent, Some(&db), settings)?;
            try_write(&dir, uid, gid)
        }),
    )
}

/// The unit a `systemctl … restart UNIT` command restarts.
fn restarted_unit(command: &[String]) -> Option<String> {
    let program = Path::new(command.first()?).file_name()?;
    if program != "systemctl" {
        return None;
    }
    let args: Vec<&str> = command[1..]
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
        .collect();
    match args.as_slice() {
        ["restart", unit] => Some(if unit.contains('.') {
            (*unit).to_owned()
        } else {
            format!("{unit}.service")
        }),
        _ => None,
    }
}

fn restart(settings: &Settings) -> Capability {
    let command = &settings.service.restart_command;
    let result = match restarted_unit(command) {
        Some(unit) => try_restart(&unit),
        None if command.is_empty() => Err("no restart command is configured".into()),
        None => Ok(format!(
            "runs {} (not tried: it would restart the service)",
            command.join(" ")
        )),
    };
    capability("restart", result)
}

/// Ask systemd to restart `unit` in job mode "isolate": systemd asks polkit first and only
/// then finds the mode valid only for starting, so the answer says whether the agent may
/// restart the unit, and nothing is restarted.
fn try_restart(unit: &str) -> Result<String, String> {
    let output = run(
        "busctl",
        &[
            "call",
            "--allow-interactive-authorization=no",
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "RestartUnit",
            "ss",
            unit,
            "isolate",
        ],
    )?;
    let said = output.trim();
    if said.contains("Isolate is only valid for start") {
        Ok(format!(
            "systemd allows the agent to restart {unit} (asked without restarting it)"
        ))
    } else if said.contains("not found") || said.contains("not loaded") {
        Err(format!("systemd has no unit {unit}: {said}"))
    } else if said.contains("nteractive authentication required") || said.contains("ccess denied") {
        Err(format!(
            "systemd refused ({said}): the agent's user ({}) needs a polkit rule allowing it to restart {unit} (org.freedesktop.systemd1.manage-units, verb restart, that unit only)",
            agent_user()
        ))
    } else {
        Err(format!("systemd answered: {said}"))
    }
}

fn block(settings: &Settings) -> Capability {
    let command = &settings.firewall.nft_command;
    let result = match command.split_first() {
        None => Err("the nft command is empty".into()),
        Some((program, base)) => {
            let mut args: Vec<&str> = base.iter().map(String::as_str).collect();
            args.extend(["list", "tables"]);
            match run_status(program, &args) {
                Ok((true, _)) => Ok("nftables can be read and changed (nft list tables)".into()),
                Ok((false, said)) if said.contains("ot permitted") => Err(format!(
                    "nft: {}: the agent needs CAP_NET_ADMIN",
                    said.trim()
                )),
                Ok((false, said)) => Err(format!("nft: {}", said.trim())),
                Err(e) => Err(e),
            }
        }
    };
    capability("block", result)
}

/// Reading the service's process environment (to show an old key is no longer in it).
fn service_environment(settings: &Settings) -> Capability {
    let unit = restarted_unit(&settings.service.restart_command);
    let result = match unit {
        None => Err("the service's unit is not known (its restart command is not systemctl restart)".into()),
        Some(unit) => run("systemctl", &["show", "--property=MainPID", "--value", &unit]).and_then(|pid| {
            let pid = pid.trim();
            if pid.is_empty() || pid == "0" {
                return Err(format!("{unit} is not running"));
            }
            match std::fs::read(format!("/proc/{pid}/environ")) {
                Ok(_) => Ok(format!("the environment of {unit}'s process {pid} can be read")),
                Err(e) => Err(format!(
                    "/proc/{pid}/environ: {e}: reading another account's process environment needs CAP_SYS_PTRACE, which the agent is not given (it would let it control any process); a rotation then says the environment was not read"
                )),
            }
        }),
    };
    capability("service_environment", result)
}

/// Run a probe's command; its standard output and error together, or why it did not run.
fn run(program: &str, args: &[&str]) -> Result<String, String> {
    run_status(program, args).map(|(_, said)| said)
}

fn run_status(program: &str, args: &[&str]) -> Result<(bool, String), String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if started.elapsed() > PROBE_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{program} did not answer within {} s",
                    PROBE_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("{program}: {e}")),
        }
    }
    let output = child
        .wait_with_output()
        .map_err(|e| format!("{program}: {e}"))?;
    let mut said = String::from_utf8_lossy(&output.stdout).into_owned();
    said.push_str(&String::from_utf8_lossy(&output.stderr));
    Ok((output.status.success(), said))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_restarted_unit_is_read_off_a_systemctl_command() {
        let unit =
            |c: &[&str]| restarted_unit(&c.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            unit(&["systemctl", "restart", "sekha"]).as_deref(),
            Some("sekha.service"),
            "a bare name is a service"
        );
        assert_eq!(
            unit(&[
                "/usr/bin/systemctl",
                "--no-ask-password",
                "restart",
                "rae.service"
            ])
            .as_deref(),
            Some("rae.service"),
            "options and a full path are allowed"
        );
        assert_eq!(
            unit(&["/opt/restart.sh", "sekha"]),
            None,
            "another program restarts something the agent cannot ask systemd about"
        );
    }

    #[test]
    fn only_a_missing_grant_stops_an_action_before_it_starts() {
        assert!(
            is_privilege("systemd refused (Call failed: Interactive authentication required.)"),
            "polkit's refusal is a missing grant"
        );
        assert!(
            is_privilege("/opt/sekha/config.toml: Permission denied (os error 13): …"),
            "a permission is a missing grant"
        );
        assert!(
            !is_privilege("/opt/sekha/sekha.db does not exist (yet)"),
            "a file that is not there is the action's to report"
        );
    }

    #[test]
    fn a_report_reads_as_sentences() {
        let text = render(&[
            Capability {
                name: "restart".into(),
                ok: false,
                why: "systemd refused".into(),
            },
            Capability {
                name: "block".into(),
                ok: true,
                why: "nft list tables works".into(),
            },
        ]);
        assert_eq!(
            text, "restart: no, because systemd refused\nblock: yes, nft list tables works\n",
            "one line per capability, the reason after it"
        );
    }
}
