//! Rotating a key in the service's config as a transaction: check the file is as the console
//! last saw it, keep a backup, write the new config atomically, restart the service, verify
//! against the service itself (the new key is accepted on the protected endpoint, the old one
//! refused), and otherwise put the backup back, restart and check the old key works again.
//!
//! A journal in the state directory records a rotation under way; an agent that starts and
//! finds one was interrupted mid-way, so it rolls back and says so.

use std::path::{Path, PathBuf};

use gatehouse_events::profile::{ConfigFormat, Role};
use gatehouse_protocol::{codes, RotateOutcome, RotateRequest, RotationStatus};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::fsutil::{self, Access};
use crate::service::files::{fingerprint, no_dir, replace_value, value_of};
use crate::service::Service;
use crate::state::StateDir;

/// Outcomes kept for the console to ask about, newest last.
const OUTCOMES_KEPT: usize = 50;
/// Backups of a config kept after a committed rotation (each holds a retired key).
const BACKUPS_KEPT: usize = 3;

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

/// The whole transaction. A refusal before anything changed is an error; everything
/// after is an outcome, committed or rolled back.
pub async fn rotate(
    service: &Service<'_>,
    state: &StateDir,
    request: &RotateRequest,
    now: i64,
) -> Result<RotateOutcome, ApiError> {
    if state.rotation_journal().exists() {
        return Err(ApiError::conflict(
            codes::CANNOT_ROTATE,
            "another rotation is under way on this host",
        ));
    }
    let dir = service
        .dir()
        .ok_or_else(|| ApiError::conflict(codes::CANNOT_ROTATE, no_dir("the service's config")))?;
    let file = service.file_holding(&request.name).ok_or_else(|| {
        ApiError::conflict(
            codes::CANNOT_ROTATE,
            format!(
                "the {} profile has no key named {}",
                service.profile.name, request.name
            ),
        )
    })?;
    let path = dir.join(&file.path);
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
    let old = value_of(file, &text, &request.name).ok_or_else(|| {
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
    if request.new_key.len() < service.profile.keys.min_length
        || request
            .new_key
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\'))
    {
        return Err(ApiError::conflict(
            codes::CANNOT_ROTATE,
            format!(
                "the new key must be at least {} characters, without quotes, backslashes or spaces",
                service.profile.keys.min_length
            ),
        ));
    }
    let new_text = replace_value(&text, file, &request.name, &request.new_key);
    // Read the result back as the service would: exactly the new key, or nothing is done.
    if value_of(file, &new_text, &request.name).as_deref() != Some(request.new_key.as_str())
        || (file.format == ConfigFormat::TomlRootKey && new_text.parse::<toml::Table>().is_err())
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
    let owner = owner_of(&path);
    if let Err(e) = fsutil::write_atomic_with(&backup, text.as_bytes(), owner)
        .and_then(|()| write_journal(state, &journal))
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
    if let Err(e) = fsutil::write_atomic_with(&path, new_text.as_bytes(), owner) {
        outcome.error = Some(format!(
            "cannot write {}: {e}; the config and the service are unchanged",
            path.display()
        ));
        return Ok(finish(state, outcome));
    }
    outcome.steps.push(format!(
        "wrote the new {} to {} (mode 0600)",
        request.name,
        path.display()
    ));
    let restart_started = std::time::Instant::now();
    let restarted = service.restart().await;
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
                match (service.accepts(&request.new_key).await, service.accepts(&old).await) {
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
            roll_back(service, &journal, &old, &mut outcome).await;
        }
    }
    Ok(finish(state, outcome))
}

async fn roll_back(
    service: &Service<'_>,
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
                ..owner_of(&journal.file)
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
    match service.restart().await {
        Ok(()) => {
            outcome
                .steps
                .push("restarted the service with the previous config".into());
            let works = service.accepts(old).await.unwrap_or(false);
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
}

/// At start: a journal left behind means the agent stopped mid-rotation. The new key's
/// fate is unknown to the console, so the previous config is put back.
pub async fn recover(service: &Service<'_>, state: &StateDir, now: i64) -> Option<RotateOutcome> {
    let text = std::fs::read_to_string(state.rotation_journal()).ok()?;
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
            service.dir()?;
            let file = service.file_holding(&journal.name)?;
            value_of(file, &backup, &journal.name)
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
    roll_back(service, &journal, &old, &mut outcome).await;
    tracing::warn!(name = %journal.name, rolled_back = outcome.rolled_back, "interrupted rotation rolled back");
    Some(finish(state, outcome))
}

/// What became of the rotation to `fingerprint` (the new key's), or of the latest.
pub fn status(state: &StateDir, fingerprint: Option<&str>) -> RotationStatus {
    let in_progress = std::fs::read_to_string(state.rotation_journal())
        .ok()
        .and_then(|t| serde_json::from_str::<Journal>(&t).ok())
        .is_some_and(|j| fingerprint.is_none_or(|f| f == j.new_fingerprint));
    let all = outcomes(state);
    let outcome = match fingerprint {
        Some(f) => all.into_iter().rev().find(|o| o.new_fingerprint == f),
        None => all.into_iter().last(),
    };
    RotationStatus {
        in_progress,
        outcome,
    }
}

fn outcomes(state: &StateDir) -> Vec<RotateOutcome> {
    std::fs::read_to_string(state.rotation_outcomes())
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// Record the outcome, and only then end the journal: until the outcome is on disk, a
/// restarted agent still knows a rotation was under way.
fn finish(state: &StateDir, outcome: RotateOutcome) -> RotateOutcome {
    let mut all = outcomes(state);
    all.push(outcome.clone());
    let excess = all.len().saturating_sub(OUTCOMES_KEPT);
    all.drain(..excess);
    let written = serde_json::to_vec(&all)
        .map_err(std::io::Error::other)
        .and_then(|bytes| fsutil::write_atomic(&state.rotation_outcomes(), &bytes));
    match written {
        Ok(()) => {
            let _ = std::fs::remove_file(state.rotation_journal());
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot record the rotation outcome; the journal is kept")
        }
    }
    tracing::info!(name = %outcome.name, committed = outcome.committed, rolled_back = outcome.rolled_back, "rotation finished");
    outcome
}

fn owner_of(path: &Path) -> Access {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(path) {
        Ok(meta) => Access::owned(0o600, meta.uid(), meta.gid()),
        Err(_) => Access::PRIVATE,
    }
}

fn write_journal(state: &StateDir, journal: &Journal) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(journal).map_err(std::io::Error::other)?;
    fsutil::write_atomic(&state.rotation_journal(), &bytes)
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

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
}
