//! Rotating a key in the service's config as a transaction: check the file is as the console
//! last saw it, keep a backup, write the new config atomically, restart the service, verify
//! against the service itself (the new key is accepted on the protected endpoint, the old one
//! refused), and otherwise put the backup back, restart and check the old key works again.
//!
//! A journal in the state directory records a rotation under way; an agent that starts and
//! finds one was interrupted mid-way, so it rolls back and says so.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gatehouse_events::profile::{ConfigFile, ConfigFormat, Role};
use gatehouse_events::Profile;
use gatehouse_protocol::{codes, RotateOutcome, RotateRequest};
use serde::{Deserialize, Serialize};

use crate::config::AgentConfig;
use crate::credentials::{dotenv, fingerprint, toml_root_key};
use crate::error::ApiError;
use crate::fsutil::{self, Access};

/// How long the service has to answer its health check after a restart, by default.
const COME_BACK: Duration = Duration::from_secs(60);
const JOURNAL: &str = "rotation.json";
const OUTCOMES: &str = "rotation-outcomes.json";
/// Outcomes kept for the console to ask about, newest last.
const OUTCOMES_KEPT: usize = 50;
/// Backups of a config kept after a committed rotation (each holds a retired key).
const BACKUPS_KEPT: usize = 3;
/// The longest a restart may be given, whatever the config says.
const COME_BACK_MAX: Duration = Duration::from_secs(3600);

/// A rotation under way, as the journal records it.
#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    name: String,
    file: PathBuf,
    backup: PathBuf,
    old_fingerprint: String,
    new_fingerprint: String,
    /// The config's permission bits before the rotation, put back on rollback.
    #[serde(default)]
    mode: Option<u32>,
}

/// The service side of a rotation: where its config is and how to reach and restart it.
#[derive(Debug)]
pub struct Service<'a> {
    pub config: &'a AgentConfig,
    pub profile: Profile,
    pub http: &'a reqwest::Client,
}

impl Service<'_> {
    fn config_file(&self, name: &str) -> Result<(&ConfigFile, PathBuf), ApiError> {
        let dir = self.config.service_dir.as_ref().ok_or_else(|| {
            ApiError::conflict(
                codes::CANNOT_ROTATE,
                "service_dir is not set in the agent's config, so the service's config cannot be found",
            )
        })?;
        let file = self
            .profile
            .config_files
            .iter()
            .find(|f| match (&f.key, &f.key_prefix) {
                (Some(key), _) => key == name,
                (None, Some(prefix)) => name.starts_with(prefix.as_str()),
                (None, None) => false,
            })
            .ok_or_else(|| {
                ApiError::conflict(
                    codes::CANNOT_ROTATE,
                    format!("the {} profile has no key named {name}", self.profile.name),
                )
            })?;
        Ok((file, dir.join(&file.path)))
    }

    fn base_url(&self) -> Result<String, String> {
        let url = self
            .config
            .service_url
            .as_deref()
            .ok_or("no service_url is configured, so the service cannot be checked")?;
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("service_url {url}: {e}"))?;
        Ok(parsed.origin().ascii_serialization())
    }

    /// The protected endpoint's answer to `key`: true when accepted.
    async fn accepts(&self, key: &str) -> Result<bool, String> {
        let probe = &self.profile.probes.protected;
        let url = format!("{}{}", self.base_url()?, probe.path);
        let method = reqwest::Method::from_bytes(probe.method.as_bytes())
            .map_err(|e| format!("probe method {}: {e}", probe.method))?;
        let mut request = self
            .http
            .request(method, &url)
            .header(
                self.profile.auth.header.as_str(),
                format!("{}{key}", self.profile.auth.scheme),
            )
            .timeout(Duration::from_secs(10));
        if let Some(body) = &probe.body {
            request = request
                .header("content-type", "application/json")
                .body(body.clone());
        }
        let status = request
            .send()
            .await
            .map_err(|e| format!("{} {url}: {e}", probe.method))?
            .status()
            .as_u16();
        Ok(!matches!(status, 401 | 403))
    }

    /// Run the restart command, then wait for the health endpoint to answer 2xx.
    pub(crate) async fn restart(&self) -> Result<(), String> {
        let command = self
            .config
            .restart_command
            .clone()
            .unwrap_or_else(|| self.profile.restart.command.clone());
        let (program, args) = command
            .split_first()
            .ok_or("the restart command is empty")?;
        let come_back = self
            .config
            .restart_timeout_secs
            .map_or(COME_BACK, Duration::from_secs)
            .min(COME_BACK_MAX);
        let running = tokio::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            // An abandoned rotation (the agent stopping) does not leave a restart running.
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(come_back, running)
            .await
            .map_err(|_| {
                format!(
                    "{} did not finish within {} s",
                    command.join(" "),
                    come_back.as_secs()
                )
            })?
            .map_err(|e| format!("cannot run {}: {e}", command.join(" ")))?;
        if !output.status.success() {
            let said = String::from_utf8_lossy(&output.stderr);
            let last = said.lines().last().unwrap_or("").trim();
            return Err(format!(
                "{} exited with {}{}",
                command
                    .first()
                    .map_or("the restart command", String::as_str),
                output.status,
                if last.is_empty() {
                    String::new()
                } else {
                    format!(": {last}")
                }
            ));
        }
        let health = self
            .config
            .service_url
            .as_deref()
            .ok_or("no service_url is configured, so the restart cannot be checked")?;
        let deadline = tokio::time::Instant::now() + come_back;
        // The old process may still answer for a moment: give the restart time to take.
        tokio::time::sleep(Duration::from_millis(300)).await;
        loop {
            let answer = self
                .http
                .get(health)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "the service did not answer {health} within {} s of the restart",
                    come_back.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The whole transaction. A refusal before anything changed is an error; everything
    /// after is an outcome, committed or rolled back.
    pub async fn rotate(
        &self,
        state_dir: &Path,
        request: &RotateRequest,
        now: i64,
    ) -> Result<RotateOutcome, ApiError> {
        if state_dir.join(JOURNAL).exists() {
            return Err(ApiError::conflict(
                codes::CANNOT_ROTATE,
                "another rotation is under way on this host",
            ));
        }
        let (file, path) = self.config_file(&request.name)?;
        // Through a symlink to the file itself, so the link stays a link.
        let path = std::fs::canonicalize(&path).unwrap_or(path);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            ApiError::conflict(
                codes::CONFIG_CHANGED,
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        if fingerprint(&text) != request.expected_file_digest {
            return Err(ApiError::conflict(
                codes::CONFIG_CHANGED,
                format!(
                    "{} changed since the console last read it (edited by hand?); nothing was changed. Check the inventory again, then rotate.",
                    path.display()
                ),
            ));
        }
        let old = current_value(&text, file, &request.name).ok_or_else(|| {
            ApiError::conflict(
                codes::CONFIG_CHANGED,
                format!("{} no longer holds {}", path.display(), request.name),
            )
        })?;
        if fingerprint(&old) != request.expected_fingerprint {
            return Err(ApiError::conflict(
                codes::CONFIG_CHANGED,
                format!(
                    "{} in {} is not the value the console saw; nothing was changed",
                    request.name,
                    path.display()
                ),
            ));
        }
        if request.new_key.len() < self.profile.keys.min_length
            || request
                .new_key
                .chars()
                .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\'))
        {
            return Err(ApiError::conflict(
                codes::CANNOT_ROTATE,
                format!(
                    "the new key must be at least {} characters, without quotes, backslashes or spaces",
                    self.profile.keys.min_length
                ),
            ));
        }
        let new_text = replace_value(&text, file, &request.name, &request.new_key);
        // Read the result back as the service would: exactly the new key, or nothing is done.
        if current_value(&new_text, file, &request.name).as_deref()
            != Some(request.new_key.as_str())
            || (file.format == ConfigFormat::TomlRootKey
                && new_text.parse::<toml::Table>().is_err())
        {
            return Err(ApiError::conflict(
                codes::CANNOT_ROTATE,
                format!(
                    "{} is laid out in a way the new key cannot be placed in safely; nothing was changed. Rotate it by hand.",
                    path.display()
                ),
            ));
        }
        let mut outcome = RotateOutcome {
            name: request.name.clone(),
            committed: false,
            old_fingerprint: fingerprint(&old),
            new_fingerprint: fingerprint(&request.new_key),
            steps: Vec::new(),
            error: None,
            rolled_back: false,
            old_key_works: None,
            backup: None,
            finished_at: now,
            restart_ms: 0,
            verified: false,
        };
        let backup = path.with_file_name(format!(
            "{}.gatehouse-{now}-{}.bak",
            path.file_name()
                .map_or("config".into(), |n| n.to_string_lossy()),
            &outcome.new_fingerprint[..8.min(outcome.new_fingerprint.len())]
        ));
        let journal = Journal {
            name: request.name.clone(),
            file: path.clone(),
            backup: backup.clone(),
            old_fingerprint: outcome.old_fingerprint.clone(),
            new_fingerprint: outcome.new_fingerprint.clone(),
            mode: std::fs::metadata(&path)
                .ok()
                .as_ref()
                .and_then(fsutil::mode_of),
        };
        // Backup and journal first: from here on, an interrupted agent can put things back.
        if let Err(e) = fsutil::write_atomic_with(
            &backup,
            text.as_bytes(),
            Access {
                mode: 0o600,
                owner_of: Some(&path),
            },
        )
        .and_then(|()| write_journal(state_dir, &journal))
        {
            let _ = std::fs::remove_file(&backup);
            return Err(ApiError::conflict(
                codes::CANNOT_ROTATE,
                format!(
                    "cannot keep a backup of {}: {e}; nothing was changed",
                    path.display()
                ),
            ));
        }
        outcome.backup = Some(backup.display().to_string());
        outcome.steps.push(format!(
            "kept a backup of {} at {}",
            path.display(),
            backup.display()
        ));
        if let Err(e) = fsutil::write_atomic_with(
            &path,
            new_text.as_bytes(),
            Access {
                mode: 0o600,
                owner_of: Some(&path),
            },
        ) {
            outcome.error = Some(format!(
                "cannot write {}: {e}; the config and the service are unchanged",
                path.display()
            ));
            return Ok(finish(state_dir, outcome));
        }
        outcome.steps.push(format!(
            "wrote the new {} to {} (mode 0600)",
            request.name,
            path.display()
        ));
        let restart_started = std::time::Instant::now();
        let restarted = self.restart().await;
        outcome.restart_ms += restart_started.elapsed().as_millis() as u64;
        let verified = match restarted {
            Err(e) => Err(e),
            Ok(()) => {
                outcome
                    .steps
                    .push("restarted the service; it answers its health check".into());
                if file.role == Role::JwtSecret {
                    // A signing secret is not presented as a key: the protected endpoint cannot
                    // tell. The service came back with it; tokens signed with the old one stop
                    // working.
                    outcome.steps.push(
                        "a signing secret cannot be checked on the protected endpoint; tokens signed with the old secret no longer verify"
                            .into(),
                    );
                    Ok(())
                } else {
                    match (self.accepts(&request.new_key).await, self.accepts(&old).await) {
                    (Ok(true), Ok(false)) => Ok(()),
                    (Ok(false), _) => Err("the service refuses the new key (is the key set elsewhere, such as an environment variable that wins over the file?)".to_owned()),
                    (Ok(true), Ok(true)) => Err("the service still accepts the old key".to_owned()),
                    (Err(e), _) | (_, Err(e)) => Err(format!("cannot check the keys: {e}")),
                }
                }
            }
        };
        match verified {
            Ok(()) => {
                if file.role != Role::JwtSecret {
                    outcome
                        .steps
                        .push("verified: the new key is accepted, the old key is refused".into());
                }
                outcome.committed = true;
                outcome.verified = file.role != Role::JwtSecret;
                // Backups hold retired keys: keep the last few, for a rollback by hand.
                prune_backups(&path, BACKUPS_KEPT);
            }
            Err(e) => {
                outcome.error = Some(e);
                self.roll_back(state_dir, &journal, &old, &mut outcome)
                    .await;
            }
        }
        Ok(finish(state_dir, outcome))
    }

    async fn roll_back(
        &self,
        state_dir: &Path,
        journal: &Journal,
        old: &str,
        outcome: &mut RotateOutcome,
    ) {
        let restored = std::fs::read(&journal.backup).and_then(|bytes| {
            fsutil::write_atomic_with(
                &journal.file,
                &bytes,
                Access {
                    mode: journal.mode.unwrap_or(0o600),
                    owner_of: Some(&journal.file),
                },
            )
        });
        if let Err(e) = restored {
            outcome.steps.push(format!(
                "could not put the backup back ({e}); restore {} to {} by hand",
                journal.backup.display(),
                journal.file.display()
            ));
            return;
        }
        outcome.rolled_back = true;
        outcome.steps.push(format!(
            "put the previous config back from {}",
            journal.backup.display()
        ));
        match self.restart().await {
            Ok(()) => {
                outcome
                    .steps
                    .push("restarted the service with the previous config".into());
                let works = self.accepts(old).await.unwrap_or(false);
                outcome.old_key_works = Some(works);
                outcome.steps.push(if works {
                    "verified: the old key works again".into()
                } else {
                    "the old key does not work either: the service needs attention".into()
                });
            }
            Err(e) => {
                outcome.old_key_works = Some(false);
                outcome.steps.push(format!(
                    "the restart with the previous config failed too: {e}"
                ));
            }
        }
        let _ = state_dir;
    }

    /// At start: a journal left behind means the agent stopped mid-rotation. The new key's
    /// fate is unknown to the console, so the previous config is put back.
    pub async fn recover(&self, state_dir: &Path, now: i64) -> Option<RotateOutcome> {
        let text = std::fs::read_to_string(state_dir.join(JOURNAL)).ok()?;
        let journal: Journal = match serde_json::from_str(&text) {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(error = %e, "unreadable rotation journal left as it is");
                return None;
            }
        };
        let old = std::fs::read_to_string(&journal.backup)
            .ok()
            .and_then(|backup| {
                let (file, _) = self.config_file(&journal.name).ok()?;
                current_value(&backup, file, &journal.name)
            })
            .unwrap_or_default();
        let mut outcome = RotateOutcome {
            name: journal.name.clone(),
            committed: false,
            old_fingerprint: journal.old_fingerprint.clone(),
            new_fingerprint: journal.new_fingerprint.clone(),
            steps: vec!["the agent stopped in the middle of this rotation; rolling back".into()],
            error: Some("the agent was interrupted mid-rotation, so it was rolled back".into()),
            rolled_back: false,
            old_key_works: None,
            backup: Some(journal.backup.display().to_string()),
            finished_at: now,
            restart_ms: 0,
            verified: false,
        };
        self.roll_back(state_dir, &journal, &old, &mut outcome)
            .await;
        tracing::warn!(name = %journal.name, rolled_back = outcome.rolled_back, "interrupted rotation rolled back");
        Some(finish(state_dir, outcome))
    }
}

/// What became of the rotation to `fingerprint` (the new key's), or of the latest.
pub fn status(state_dir: &Path, fingerprint: Option<&str>) -> gatehouse_protocol::RotationStatus {
    let in_progress = std::fs::read_to_string(state_dir.join(JOURNAL))
        .ok()
        .and_then(|t| serde_json::from_str::<Journal>(&t).ok())
        .is_some_and(|j| fingerprint.is_none_or(|f| f == j.new_fingerprint));
    let all = outcomes(state_dir);
    let outcome = match fingerprint {
        Some(f) => all.into_iter().rev().find(|o| o.new_fingerprint == f),
        None => all.into_iter().last(),
    };
    gatehouse_protocol::RotationStatus {
        in_progress,
        outcome,
    }
}

fn outcomes(state_dir: &Path) -> Vec<RotateOutcome> {
    std::fs::read_to_string(state_dir.join(OUTCOMES))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// Record the outcome, and only then end the journal: until the outcome is on disk, a
/// restarted agent still knows a rotation was under way.
fn finish(state_dir: &Path, outcome: RotateOutcome) -> RotateOutcome {
    let mut all = outcomes(state_dir);
    all.push(outcome.clone());
    let excess = all.len().saturating_sub(OUTCOMES_KEPT);
    all.drain(..excess);
    let written = serde_json::to_vec(&all)
        .map_err(std::io::Error::other)
        .and_then(|bytes| fsutil::write_atomic(&state_dir.join(OUTCOMES), &bytes));
    match written {
        Ok(()) => {
            let _ = std::fs::remove_file(state_dir.join(JOURNAL));
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot record the rotation outcome; the journal is kept")
        }
    }
    tracing::info!(name = %outcome.name, committed = outcome.committed, rolled_back = outcome.rolled_back, "rotation finished");
    outcome
}

fn write_journal(state_dir: &Path, journal: &Journal) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(journal).map_err(std::io::Error::other)?;
    fsutil::write_atomic(&state_dir.join(JOURNAL), &bytes)
}

/// Remove all but the `keep` newest `<file>.gatehouse-*.bak` beside `file`.
fn prune_backups(file: &Path, keep: usize) {
    let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else {
        return;
    };
    let prefix = format!("{}.gatehouse-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut backups: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(&prefix) && n.ends_with(".bak")
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    backups.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
    for (_, old) in backups.into_iter().skip(keep) {
        if let Err(e) = std::fs::remove_file(&old) {
            tracing::warn!(error = %e, file = %old.display(), "cannot remove an old backup");
        }
    }
}

fn current_value(text: &str, file: &ConfigFile, name: &str) -> Option<String> {
    match file.format {
        ConfigFormat::TomlRootKey => toml_root_key(text, name).ok().flatten(),
        ConfigFormat::Dotenv => dotenv(text)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v),
    }
}

/// A dotenv line without its `export` keyword (and the blanks after it).
pub(crate) fn strip_export(line: &str) -> &str {
    match line.strip_prefix("export") {
        Some(rest) if rest.starts_with([' ', '\t']) => rest.trim_start(),
        _ => line,
    }
}

/// The config text with `name` set to `value`: a TOML key at the root (above any table,
/// where the service reads it), a dotenv line in place. Everything else is kept as it was.
pub fn replace_value(text: &str, file: &ConfigFile, name: &str, value: &str) -> String {
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    match file.format {
        ConfigFormat::TomlRootKey => {
            let root_end = lines
                .iter()
                .position(|l| l.trim_start().starts_with('['))
                .unwrap_or(lines.len());
            let line = format!("{name} = \"{value}\"");
            let existing = lines[..root_end].iter().position(|l| {
                l.trim_start()
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            });
            match existing {
                Some(i) => lines[i] = line,
                None => lines.insert(0, line),
            }
        }
        ConfigFormat::Dotenv => {
            let existing = lines.iter().rposition(|l| {
                strip_export(l.trim_start())
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            });
            match existing {
                Some(i) => {
                    let line = lines[i].trim_start();
                    let export = if strip_export(line).len() < line.len() {
                        "export "
                    } else {
                        ""
                    };
                    lines[i] = format!("{export}{name}={value}");
                }
                None => lines.push(format!("{name}={value}")),
            }
        }
    }
    let mut out = lines.join(newline);
    out.push_str(newline);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_of(profile: &str, name: &str) -> ConfigFile {
        let p = Profile::builtin(profile).expect("built in").expect("valid");
        p.config_files
            .into_iter()
            .find(|f| {
                f.key.as_deref() == Some(name)
                    || f.key_prefix.as_deref().is_some_and(|k| name.starts_with(k))
            })
            .expect("config file")
    }

    #[test]
    fn only_the_newest_backups_are_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("config.toml");
        std::fs::write(&config, "x").expect("config");
        for i in 0..5 {
            std::fs::write(
                dir.path()
                    .join(format!("config.toml.gatehouse-{i}-abcd.bak")),
                "old",
            )
            .expect("backup");
            std::thread::sleep(Duration::from_millis(15));
        }
        std::fs::write(dir.path().join("other.bak"), "not ours").expect("other");
        prune_backups(&config, 3);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "config.toml",
                "config.toml.gatehouse-2-abcd.bak",
                "config.toml.gatehouse-3-abcd.bak",
                "config.toml.gatehouse-4-abcd.bak",
                "other.bak"
            ],
            "the three newest backups stay, and nothing that is not ours is touched"
        );
    }

    #[test]
    fn the_new_key_goes_where_the_service_reads_it_and_nothing_else_moves() {
        let sekha = file_of("sekha", "mcp_api_key");
        let text = "# Sekha\nmcp_api_key = \"old\"\n\n[server]\nport = 8080\n";
        assert_eq!(
            replace_value(text, &sekha, "mcp_api_key", "NEW"),
            "# Sekha\nmcp_api_key = \"NEW\"\n\n[server]\nport = 8080\n",
            "replaced in place at the root"
        );
        let in_table = "[server]\nport = 8080\nmcp_api_key = \"old\"\n";
        let fixed = replace_value(in_table, &sekha, "mcp_api_key", "NEW");
        assert!(
            fixed.starts_with("mcp_api_key = \"NEW\"\n[server]"),
            "a key only inside a table gets a root-level one: {fixed}"
        );
        assert_eq!(
            toml_root_key(&fixed, "mcp_api_key")
                .ok()
                .flatten()
                .as_deref(),
            Some("NEW"),
            "which the root reader sees"
        );
        let jelmore = file_of("jelmore", "API_KEY_CLIENT");
        let env = "API_KEY_ADMIN=a\nexport API_KEY_CLIENT=\"old\"\nPOSTGRES_PASSWORD=pw\n";
        assert_eq!(
            replace_value(env, &jelmore, "API_KEY_CLIENT", "NEW"),
            "API_KEY_ADMIN=a\nexport API_KEY_CLIENT=NEW\nPOSTGRES_PASSWORD=pw\n",
            "only that variable changes"
        );
        let windows = "API_KEY_ADMIN=a\r\nexport\tAPI_KEY_CLIENT=old\r\n";
        assert_eq!(
            replace_value(windows, &jelmore, "API_KEY_CLIENT", "NEW"),
            "API_KEY_ADMIN=a\r\nexport API_KEY_CLIENT=NEW\r\n",
            "CRLF line ends are kept, and `export` with a tab is still the same variable"
        );
        let prefix = "API_KEY=plain\nAPI_KEY_CLIENT=old\n";
        assert_eq!(
            replace_value(prefix, &jelmore, "API_KEY_CLIENT", "NEW"),
            "API_KEY=plain\nAPI_KEY_CLIENT=NEW\n",
            "a variable whose name is a prefix of another is not touched"
        );
    }
}
