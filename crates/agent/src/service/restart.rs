//! Restarting the service: its restart command, run with a time limit and its output kept,
//! then its liveness probe awaited. While the agent waits it listens to what the service says
//! (the restart command's output, the lines its own log gains, the journal of its systemd
//! unit), so that
//!
//! - a start that fails in a way the profile knows (`[[restart.recover]]`, such as Sekha's
//!   `UNIQUE constraint failed: seaql_migrations.version` on every start with an existing
//!   database) is recognised by those words alone, fixed, and started once more;
//! - a service that does not come back is reported with its own words, not as a timeout.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use gatehouse_events::profile::Recovery;

use super::listener::NoAnswer;
use super::Service;
use crate::fsutil::{self, Dir};
use crate::state::StateDir;

/// The most bytes of the service's log read for what it said after a restart.
const WORDS_MAX: u64 = 64 << 10;
/// The most lines of what the service said quoted in a message.
const WORDS_QUOTED: usize = 8;
/// How often the agent listens to the service while it waits for the liveness probe.
const LISTEN_EVERY: Duration = Duration::from_secs(1);
/// How long the journal may take to answer.
const JOURNAL_TIMEOUT: Duration = Duration::from_secs(5);

/// Why one start did not bring the service back, and what it said meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NotBack {
    reason: String,
    words: Vec<String>,
}

impl NotBack {
    fn describe(&self) -> String {
        if self.words.is_empty() {
            return format!(
                "{}; the service said nothing (no output from the restart command, no new line in its own log or journal)",
                self.reason
            );
        }
        let start = self.words.len().saturating_sub(WORDS_QUOTED);
        format!(
            "{}; the service said: {}",
            self.reason,
            self.words[start..].join(" | ")
        )
    }

    /// The profile's known failure these words are, if any.
    fn known<'p>(&self, recoveries: &'p [Recovery]) -> Option<&'p Recovery> {
        recoveries
            .iter()
            .find(|r| self.words.iter().any(|w| w.contains(&r.when)))
    }
}

impl Service<'_> {
    /// Run the restart command, then wait for the liveness probe to answer, all within the
    /// restart timeout (each). A start that fails with words the profile knows is fixed and
    /// tried once more. Returns what was done beyond a plain restart, for the record.
    pub async fn restart(&self) -> Result<Vec<String>, String> {
        let mut done = Vec::new();
        if let Some(said) = settle_earlier(self.state, self.settings.restart_timeout).await {
            tracing::warn!("{said}");
            done.push(said);
        }
        let mut recovered = false;
        loop {
            let failed = match self.start_once().await {
                Ok(()) => return Ok(done),
                Err(failed) => failed,
            };
            let recovery = (!recovered)
                .then(|| failed.known(&self.profile.restart.recover))
                .flatten();
            let Some(recovery) = recovery else {
                return Err(failed.describe());
            };
            recovered = true;
            let cannot = |e: String| {
                format!(
                    "{}; the known fix ({}) cannot be applied: {e}",
                    failed.describe(),
                    recovery.sql
                )
            };
            let db = self.database().map_err(cannot)?;
            let account = self.account().map_err(cannot)?;
            let sql = recovery.sql.clone();
            let ran = {
                let db = db.clone();
                tokio::task::spawn_blocking(move || run_sql(&db, account, &sql))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r)
            };
            if let Err(e) = ran {
                return Err(format!(
                    "{}; the known fix ({} on {}) could not be applied: {e}",
                    failed.describe(),
                    recovery.sql,
                    db.display()
                ));
            }
            tracing::warn!(failure = %recovery.when, "the service's start failed in a known way; fixed, starting it again");
            done.push(format!(
                "the start failed with \"{}\"{}; ran `{}` on {} and started it again",
                recovery.when,
                recovery
                    .note
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default(),
                recovery.sql,
                db.display()
            ));
        }
    }

    /// One start: the command, then the liveness probe, listening to the service meanwhile.
    async fn start_once(&self) -> Result<(), NotBack> {
        let command = &self.settings.restart_command;
        let within = self.settings.restart_timeout;
        let listening = Listening::start(
            &self.settings.output_logs,
            unit(command),
            self.probes.now_us(),
        );
        let output = run(command, within, self.state)
            .await
            .map_err(|reason| NotBack {
                reason,
                words: Vec::new(),
            })?;
        let mut said = lines(&output.stderr);
        said.extend(lines(&output.stdout));
        if !output.status.success() {
            said.extend(listening.words().await);
            return Err(NotBack {
                reason: format!(
                    "{} exited with {}",
                    command
                        .first()
                        .map_or("the restart command", String::as_str),
                    output.status
                ),
                words: said,
            });
        }
        let liveness = self.settings.liveness.as_ref().ok_or_else(|| NotBack {
            reason: "no service_url is configured, so the restart cannot be checked".into(),
            words: Vec::new(),
        })?;
        let deadline = tokio::time::Instant::now() + within;
        let mut next_listen = tokio::time::Instant::now() + LISTEN_EVERY;
        // The old process may still answer for a moment: give the restart time to take.
        tokio::time::sleep(Duration::from_millis(300)).await;
        loop {
            match self.live(liveness).await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(NoAnswer::NotTheService(why)) => {
                    return Err(NotBack {
                        reason: format!("the service is not back: {why}"),
                        words: said,
                    })
                }
                Err(NoAnswer::Unchecked(why)) | Err(NoAnswer::Unreachable(why)) => {
                    return Err(NotBack {
                        reason: format!("the restart cannot be checked: {why}"),
                        words: said,
                    })
                }
            }
            let now = tokio::time::Instant::now();
            if now >= next_listen || now >= deadline {
                next_listen = now + LISTEN_EVERY;
                let mut words = said.clone();
                words.extend(listening.words().await);
                let heard = NotBack {
                    reason: String::new(),
                    words,
                };
                // A start that failed in a known way will not answer: no need to wait on.
                if now >= deadline || heard.known(&self.profile.restart.recover).is_some() {
                    return Err(NotBack {
                        reason: format!(
                            "the service did not answer {} {} within {} s of the restart",
                            liveness.method,
                            liveness.url,
                            within.as_secs()
                        ),
                        words: heard.words,
                    });
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Where the service's words since a restart are: its own logs from where they ended when
/// the restart began, and the journal of its unit since then.
struct Listening {
    logs: Vec<(PathBuf, Option<(u64, u64)>)>,
    unit: Option<String>,
    since: i64,
}

impl Listening {
    fn start(logs: &[PathBuf], unit: Option<String>, now_us: i64) -> Self {
        Listening {
            logs: logs
                .iter()
                .map(|path| {
                    let end = fsutil::open_regular(path)
                        .ok()
                        .map(|r| (r.facts.ino, r.facts.size));
                    (path.clone(), end)
                })
                .collect(),
            unit,
            since: now_us / 1_000_000,
        }
    }

    /// What the service has said since: new lines of its logs, then its journal's.
    async fn words(&self) -> Vec<String> {
        let mut words = Vec::new();
        for (path, end) in &self.logs {
            words.extend(appended(path, *end));
        }
        if let Some(unit) = &self.unit {
            words.extend(journal(unit, self.since).await);
        }
        words
    }
}

/// The lines `path` gained after `end` (its inode and size then); all of it (its last 64 KiB)
/// if it was replaced or truncated since.
fn appended(path: &Path, end: Option<(u64, u64)>) -> Vec<String> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut log) = fsutil::open_regular(path) else {
        return Vec::new();
    };
    let from = match end {
        Some((ino, size)) if ino == log.facts.ino && size <= log.facts.size => size,
        _ => 0,
    };
    let from = from.max(log.facts.size.saturating_sub(WORDS_MAX));
    let mut bytes = Vec::new();
    if log.file.seek(SeekFrom::Start(from)).is_err()
        || (&log.file).take(WORDS_MAX).read_to_end(&mut bytes).is_err()
    {
        return Vec::new();
    }
    lines(&bytes)
}

/// The journal of `unit` since `since` (Unix seconds), if there is one to read.
async fn journal(unit: &str, since: i64) -> Vec<String> {
    let running = tokio::process::Command::new("journalctl")
        .args([
            "--no-pager",
            "--quiet",
            "--output=cat",
            "--lines=200",
            "--unit",
        ])
        .arg(unit)
        .arg(format!("--since=@{since}"))
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(JOURNAL_TIMEOUT, running).await {
        Ok(Ok(output)) if output.status.success() => lines(&output.stdout),
        _ => Vec::new(),
    }
}

/// The systemd unit a `systemctl restart <unit>` command restarts.
fn unit(command: &[String]) -> Option<String> {
    let restart = command.iter().position(|w| w == "restart")?;
    let systemctl = command[..restart]
        .iter()
        .any(|w| w == "systemctl" || w.ends_with("/systemctl"));
    match &command[restart + 1..] {
        [unit] if systemctl && !unit.starts_with('-') => Some(unit.clone()),
        _ => None,
    }
}

/// The non-empty lines of `bytes`, as text a person can read (colours and other control
/// characters removed: what a service prints is not trusted to be harmless).
fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(readable)
        .filter(|l| !l.is_empty())
        .collect()
}

fn readable(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // ESC [ ... letter: a colour or a cursor movement.
                if chars.clone().next() == Some('[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if c.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
            }
            '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.trim().to_owned()
}

/// Run the profile's fix on the service's SQLite database: only a regular file with one
/// name, owned by the service's account, opened without following a link.
fn run_sql(db: &Path, account: u32, sql: &str) -> Result<(), String> {
    use rusqlite::OpenFlags;
    let (dir, name) = fsutil::split(db).map_err(|e| e.to_string())?;
    let dir = Dir::open(dir).map_err(|e| e.to_string())?;
    let facts = dir
        .open_regular(name)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{} does not exist", db.display()))?
        .facts;
    if facts.nlink != 1 {
        return Err(format!("{} has other hard links", db.display()));
    }
    if facts.uid != account {
        return Err(format!(
            "{} belongs to uid {}, not the service's account (uid {account})",
            db.display(),
            facts.uid
        ));
    }
    let conn = rusqlite::Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NOFOLLOW
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("open {}: {e}", db.display()))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    conn.execute_batch(sql).map_err(|e| e.to_string())
}

/// The restart command's process, as noted in the state directory while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Running {
    pub pid: i32,
    /// When it started, in clock ticks since boot (`/proc/<pid>/stat`): a pid reused by
    /// another process is not it.
    pub started: u64,
}

/// Note that `pid` runs the restart command (the agent itself does this as it starts one).
pub fn note_running(state: &StateDir, pid: i32) -> std::io::Result<()> {
    let running = Running {
        pid,
        started: start_ticks(pid).unwrap_or(0),
    };
    let text = serde_json::to_vec(&running).map_err(std::io::Error::other)?;
    fsutil::write_atomic(&state.restart_running(), &text)
}

/// A restart command an earlier run of the agent started and did not see end (it was killed
/// meanwhile): wait for it up to `within`, then end its process group, so two starts of the
/// service never race (an orphan holding the port makes every later start fail).
async fn settle_earlier(state: &StateDir, within: Duration) -> Option<String> {
    let path = state.restart_running();
    let text = std::fs::read(&path).ok()?;
    let _ = std::fs::remove_file(&path);
    let running: Running = serde_json::from_slice(&text).ok()?;
    let alive = |r: &Running| r.pid > 0 && start_ticks(r.pid) == Some(r.started);
    if !alive(&running) {
        return None;
    }
    tracing::warn!(
        pid = running.pid,
        "a restart started before the agent was stopped is still running; waiting for it"
    );
    let deadline = tokio::time::Instant::now() + within;
    while alive(&running) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !alive(&running) {
        return Some(format!(
            "waited for the restart an earlier run of the agent started (pid {}) to finish",
            running.pid
        ));
    }
    end_group(running.pid);
    Some(format!(
        "ended the restart an earlier run of the agent started (pid {}), still running after {} s",
        running.pid,
        within.as_secs()
    ))
}

/// The running restart command's group, ended when dropped unless it finished.
struct GroupGuard<'a> {
    pid: Option<i32>,
    state: &'a StateDir,
}

impl Drop for GroupGuard<'_> {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            end_group(pid);
        }
        let _ = std::fs::remove_file(self.state.restart_running());
    }
}

/// End a process group the agent started (its restart command and whatever it spawned).
fn end_group(pid: i32) {
    #[cfg(target_os = "linux")]
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = pid;
}

/// When process `pid` started, in clock ticks since boot; `None` if there is no such process.
fn start_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    // Field 3 (state) is the first after it; field 22 (starttime) the twentieth.
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        // A zombie has finished; only its parent's wait is missing.
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// Run `command` with no input, its output captured, in a process group of its own noted in
/// the state directory; the group is ended if it outlives `within` or if the caller goes away
/// (an abandoned rotation leaves no restart running).
async fn run(command: &[String], within: Duration, state: &StateDir) -> Result<Output, String> {
    let (program, args) = command
        .split_first()
        .ok_or("the restart command is empty")?;
    let mut child = tokio::process::Command::new(program);
    child
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    // A group of its own, so what it starts can be ended with it.
    #[cfg(unix)]
    child.process_group(0);
    let child = child
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", command.join(" ")))?;
    let pid = child.id().and_then(|p| i32::try_from(p).ok());
    if let Some(pid) = pid {
        if let Err(e) = note_running(state, pid) {
            tracing::warn!(error = %e, "cannot note the running restart");
        }
    }
    // Ends the command's group if this restart is given up: its time is up, or the agent
    // stops while it runs (the future is dropped); nothing it started is left behind.
    let mut running = GroupGuard { pid, state };
    let result = tokio::time::timeout(within, child.wait_with_output()).await;
    if result.is_ok() {
        running.pid = None;
    }
    drop(running);
    result
        .map_err(|_| {
            format!(
                "{} did not finish within {} s",
                command.join(" "),
                within.as_secs()
            )
        })?
        .map_err(|e| format!("cannot run {}: {e}", command.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_service_prints_is_made_readable() {
        assert_eq!(
            lines(b"\x1b[31mError:\x1b[0m UNIQUE constraint failed: seaql_migrations.version\r\n\n\x07bell\n"),
            ["Error: UNIQUE constraint failed: seaql_migrations.version", "bell"],
            "colours, carriage returns, bells and empty lines go"
        );
    }

    #[test]
    fn a_systemctl_restart_names_its_unit() {
        let words = |w: &[&str]| w.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            unit(&words(&["systemctl", "restart", "sekha"])).as_deref(),
            Some("sekha"),
            "the journal to read is the unit's"
        );
        assert_eq!(
            unit(&words(&[
                "/usr/bin/systemctl",
                "--user",
                "restart",
                "rae.service"
            ]))
            .as_deref(),
            Some("rae.service"),
            "with options and a full path"
        );
        assert_eq!(
            unit(&words(&["sh", "-c", "x"])),
            None,
            "a script has no unit"
        );
    }

    #[test]
    fn only_the_known_words_trigger_a_fix() {
        let recover = [Recovery {
            when: "UNIQUE constraint failed: seaql_migrations.version".into(),
            sql: "DELETE FROM seaql_migrations;".into(),
            note: None,
        }];
        let heard = |words: &[&str]| NotBack {
            reason: "r".into(),
            words: words.iter().map(|w| (*w).to_owned()).collect(),
        };
        assert!(
            heard(&["Error: UNIQUE constraint failed: seaql_migrations.version"])
                .known(&recover)
                .is_some(),
            "Sekha's own message"
        );
        assert!(
            heard(&[
                "Error: database is locked",
                "UNIQUE constraint failed: conversations.id"
            ])
            .known(&recover)
            .is_none(),
            "any other failure is reported, not fixed"
        );
        assert!(
            heard(&[]).describe().contains("said nothing"),
            "silence is said too"
        );
    }
}
