//! Rotating a key in the service's config as a transaction: check the file is as the console
//! last saw it, keep a backup, write the new config atomically, restart the service, verify
//! against the service itself (the new key is accepted on the protected endpoint, the old one
//! refused), and otherwise put the backup back, restart and check the old key works again.
//!
//! A journal in the state directory records a rotation under way; an agent that starts and
//! finds one was interrupted mid-way, so it rolls back and says so.
//!
//! The service's account owns the config and its directory and may swap any file there for a
//! link at any moment, so the config is read and written only through a handle on its
//! directory (no link followed, a regular file with one name, bounded in size; see
//! `fsutil`), and the backup is kept in the agent's own state directory
//! (`rotation-backups/`, mode 0700), never beside the config. The journal records the
//! backup's SHA-256; a rollback puts back only a regular file the agent owns with that hash,
//! with the owner and mode the config had. A config the agent cannot give back to its owner
//! is never written.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use gatehouse_events::profile::{ConfigFormat, Role};
use gatehouse_protocol::{codes, RotateOutcome, RotateRequest, RotationStatus};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::fsutil::{self, Access, Dir};
use crate::service::files::{self, no_dir, replace_value, value_of};
use crate::service::htpasswd::{self, Hashed};
use crate::service::listener;
use crate::service::Service;
use crate::state::StateDir;

/// The longest new key accepted: four times a 256-bit key in hex.
const NEW_KEY_MAX: usize = 256;

/// Outcomes kept for the console to ask about, newest last.
const OUTCOMES_KEPT: usize = 50;
/// Backups of a config kept after a committed rotation (each holds a retired key).
const BACKUPS_KEPT: usize = 3;

/// A rotation under way, as the journal records it.
#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    name: String,
    /// The config file, as the operator is shown it.
    file: PathBuf,
    /// The config's path below `service_dir`, as the profile names it.
    #[serde(default)]
    relative: Option<PathBuf>,
    /// The backup, in the state directory's `rotation-backups/`.
    backup: PathBuf,
    /// SHA-256 of the backup: a rollback puts back nothing else. A journal without it was
    /// written by an agent that kept backups beside the config, where the service's account
    /// could swap them; it is not rolled back automatically.
    #[serde(default)]
    backup_sha256: Option<String>,
    old_fingerprint: String,
    new_fingerprint: String,
    /// The config's permission bits before the rotation, put back on rollback.
    #[serde(default)]
    mode: Option<u32>,
    /// The config's owner and group before the rotation, put back on rollback.
    #[serde(default)]
    owner: Option<(u32, u32)>,
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
    if let Some(not_key) = service.profile.not_key(&request.name) {
        return Err(ApiError::conflict(
            codes::CANNOT_ROTATE,
            format!("{}; nothing was changed", not_key.fix),
        ));
    }
    let file = service.file_holding(&request.name).ok_or_else(|| {
        ApiError::conflict(
            codes::CANNOT_ROTATE,
            format!(
                "the {} profile has no key named {}",
                service.profile.name, request.name
            ),
        )
    })?;
    let relative = PathBuf::from(&file.path);
    let path = dir.join(&relative);
    let unreadable = |e: std::io::Error| {
        ApiError::conflict(
            codes::CONFIG_CHANGED,
            format!("cannot read {}: {e}", path.display()),
        )
    };
    let (config_dir, config_name) = config_place(dir, &relative).map_err(unreadable)?;
    let mut config = config_dir
        .open_regular(&config_name)
        .map_err(unreadable)?
        .ok_or_else(|| unreadable(std::io::ErrorKind::NotFound.into()))?;
    if config.facts.nlink != 1 {
        return Err(ApiError::conflict(
            codes::CANNOT_ROTATE,
            format!(
                "{} has other hard links, so it may be another file's content; nothing was changed. Make it a file of its own.",
                path.display()
            ),
        ));
    }
    let text = config
        .read_all(fsutil::CONFIG_MAX)
        .and_then(|bytes| {
            String::from_utf8(bytes)
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
        })
        .map_err(unreadable)?;
    let facts = config.facts;
    drop(config);
    if service.fingerprints.of(&text) != request.expected_file_digest {
        return Err(ApiError::conflict(
            codes::CONFIG_CHANGED,
            format!(
                "{} changed since the console last read it (edited by hand?); nothing was changed. Check the inventory again, then rotate.",
                path.display()
            ),
        ));
    }
    // A key the file does not hold where the service reads it (absent, or written inside a
    // TOML table) means the service uses its published default: rotating it is the fix, and
    // writes the new key where the service reads it.
    let old = value_of(file, &text, &request.name)
        .or_else(|| file.default.clone().filter(|_| file.key.is_some()))
        .ok_or_else(|| {
            ApiError::conflict(
                codes::CONFIG_CHANGED,
                format!("{} no longer holds {}", path.display(), request.name),
            )
        })?;
    // A password in an htpasswd file is held as its hash: the console knows it by the
    // password's fingerprint when this agent wrote the hash (see `htpasswd::Hashed`).
    let hashed = file.format.is_hashed();
    let old_fingerprint = if hashed {
        let of_hash = service.fingerprints.of(&old);
        Hashed::load(state)
            .ok()
            .and_then(|known| known.password_of(&of_hash).map(|(p, _)| p.to_owned()))
            .unwrap_or(of_hash)
    } else {
        service.fingerprints.of(&old)
    };
    if old_fingerprint != request.expected_fingerprint {
        return Err(ApiError::conflict(
            codes::CONFIG_CHANGED,
            format!(
                "{} in {} is not the value the console saw; nothing was changed",
                request.name,
                path.display()
            ),
        ));
    }
    check_new_key(&request.new_key, &service.profile.keys)?;
    // A password file is no key a variable of the environment overrides.
    if !hashed {
        environment_allows(service, &request.name, &old)?;
    }
    // What the file will hold: the new key, or for a password in an htpasswd file its hash.
    let written = if hashed {
        htpasswd::hash(&request.new_key).map_err(|e| {
            ApiError::conflict(codes::CANNOT_ROTATE, format!("{e}; nothing was changed"))
        })?
    } else {
        request.new_key.clone()
    };
    let new_text = replace_value(&text, file, &request.name, &written);
    // Read the result back as the service would: exactly the new key (a hash the new
    // password verifies against), or nothing is done.
    if value_of(file, &new_text, &request.name).as_deref() != Some(written.as_str())
        || (hashed && htpasswd::verify(&request.new_key, &written) != Some(true))
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
        old_fingerprint,
        new_fingerprint: service.fingerprints.of(&request.new_key),
        steps: Vec::new(),
        error: None,
        rolled_back: false,
        old_key_works: None,
        backup: None,
        finished_at: now,
        restart_ms: 0,
        verified: false,
    };
    let backup_name = format!(
        "{}.{now}-{}.bak",
        config_name.to_string_lossy(),
        &outcome.new_fingerprint[..8.min(outcome.new_fingerprint.len())]
    );
    let backups = state.rotation_backups();
    let backup = backups.as_ref().map_or_else(
        |_| state.root().join("rotation-backups").join(&backup_name),
        |b| b.path().join(&backup_name),
    );
    let journal = Journal {
        name: request.name.clone(),
        file: path.clone(),
        relative: Some(relative.clone()),
        backup: backup.clone(),
        backup_sha256: Some(fsutil::sha256_hex(text.as_bytes())),
        old_fingerprint: outcome.old_fingerprint.clone(),
        new_fingerprint: outcome.new_fingerprint.clone(),
        mode: Some(facts.mode),
        owner: Some((facts.uid, facts.gid)),
    };
    // Backup and journal first: from here on, an interrupted agent can put things back.
    let kept = backups.and_then(|backups| {
        backups
            .write_atomic(OsStr::new(&backup_name), text.as_bytes(), Access::PRIVATE)
            .and_then(|()| write_journal(state, &journal))
            .inspect_err(|_| {
                let _ = backups.remove(OsStr::new(&backup_name));
            })
    });
    if let Err(e) = kept {
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
    // Which password the new hash stands for is noted before the hash is written, so the
    // inventory never shows a hash this agent wrote as one it does not know.
    if hashed {
        let length = u32::try_from(request.new_key.chars().count()).unwrap_or(u32::MAX);
        if let Err(e) = Hashed::remember(
            state,
            service.fingerprints.of(&written),
            outcome.new_fingerprint.clone(),
            length,
        ) {
            let _ = fsutil::remove_if_present(&state.rotation_journal());
            let _ = fsutil::remove_if_present(&backup);
            return Err(ApiError::conflict(
                codes::CANNOT_ROTATE,
                format!(
                    "cannot note which password the new hash stands for in the state directory: {e}; nothing was changed"
                ),
            ));
        }
    }
    // The service's own file stays its own; if it cannot be given back, nothing is written.
    // The write is atomic, so a failed one changed nothing: a refusal, like those above.
    // Readable by its owner only; for a password file, a read grant to the file's group alone
    // (0640: a packaged Radicale reads its root-owned users file through its group) is kept,
    // or the service could no longer read it. Anything wider is not.
    let mode = if hashed && facts.mode & 0o044 == 0o040 {
        0o640
    } else {
        0o600
    };
    if let Err(e) = config_dir.write_atomic(
        &config_name,
        new_text.as_bytes(),
        Access::owned(mode, facts.uid, facts.gid),
    ) {
        let _ = fsutil::remove_if_present(&state.rotation_journal());
        let _ = fsutil::remove_if_present(&backup);
        if hashed {
            let _ = Hashed::forget_one(state, &service.fingerprints.of(&written));
        }
        return Err(ApiError::conflict(
            codes::CANNOT_ROTATE,
            format!("cannot write {}: {e}; nothing was changed", path.display()),
        ));
    }
    outcome.steps.push(if hashed {
        format!(
            "wrote a bcrypt hash of {}'s new password to {} (mode {mode:04o})",
            request.name,
            path.display()
        )
    } else {
        format!(
            "wrote the new {} to {} (mode {mode:04o})",
            request.name,
            path.display()
        )
    });
    let restart_started = std::time::Instant::now();
    // A file the service reads at each use (an htpasswd file Radicale reads at each sign-in)
    // takes effect without a restart, which would only cut its clients off.
    let restarted = if file.reread {
        Ok(Vec::new())
    } else {
        service.restart().await
    };
    outcome.restart_ms += restart_started.elapsed().as_millis() as u64;
    let verified = match restarted {
        Err(e) => Err(e),
        Ok(done) => {
            outcome.steps.extend(done);
            outcome.steps.push(if file.reread {
                format!(
                    "no restart: the service reads {} at each use",
                    path.display()
                )
            } else {
                "restarted the service; its own process answers its liveness probe".into()
            });
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
                // The new key goes only to the service's own process; the old one is never
                // sent anywhere again: that it is refused follows from nothing the service
                // reads holding it any more.
                let user = hashed.then_some(request.name.as_str());
                match service.accepts_as(&request.new_key, user).await {
                    Ok((true, pid)) => old_key_gone(service, &old, pid).map(|how| {
                        outcome.steps.push(format!(
                            "verified: the service's own process accepts the new key; the old key was not sent anywhere: {how}"
                        ));
                    }),
                    Ok((false, _)) => Err("the service refuses the new key (is the key set elsewhere, such as an environment variable that wins over the file?)".to_owned()),
                    Err(e) => Err(format!("cannot check the new key: {e}")),
                }
            }
        }
    };
    match verified {
        Ok(()) => {
            outcome.committed = true;
            outcome.verified = file.role != Role::JwtSecret;
            // Backups hold retired keys: keep the last few, for a rollback by hand.
            prune_backups(state, &config_name, BACKUPS_KEPT);
        }
        Err(e) => {
            outcome.error = Some(e);
            roll_back(service, state, &journal, &old, &mut outcome).await;
            // The backup now holds the config in place again: no more is kept of it than
            // after a commit.
            prune_backups(state, &config_name, BACKUPS_KEPT);
        }
    }
    Ok(finish(state, outcome))
}

/// Refuse, before anything changes, to rotate a key that a variable of the service's process
/// environment overrides with another value: the file is not where the service gets its key,
/// so the new key would be refused and the restart wasted. (A variable holding the file's
/// own value, as `set -a; . ./.env` or `EnvironmentFile=` give, follows the file.)
fn environment_allows(service: &Service<'_>, name: &str, old: &str) -> Result<(), ApiError> {
    let Ok(found) = service.found_keys() else {
        return Ok(());
    };
    let overrides = |variable: &str| {
        variable == name
            || service
                .profile
                .env
                .iter()
                .any(|e| e.name == variable && e.key() == name)
    };
    let winner = found.keys.iter().find(|k| {
        matches!(k.source, crate::service::keys::Source::Environment { .. })
            && overrides(&k.name)
            && k.value != old
    });
    match winner {
        Some(env) => Err(ApiError::conflict(
            codes::CANNOT_ROTATE,
            format!(
                "{} in {} holds another key and wins over {name} in the config file, so a new key there would not be used; nothing was changed. Change the key where the service's environment is set (its unit's Environment= or EnvironmentFile=), or remove the variable.",
                env.name,
                env.place()
            ),
        )),
        None => Ok(()),
    }
}

/// Why the service no longer takes `old` (without presenting it): none of its config files
/// holds it, nor does the environment of its process `pid` (when that can be read).
fn old_key_gone(service: &Service<'_>, old: &str, pid: Option<u32>) -> Result<String, String> {
    let dir = service
        .dir()
        .ok_or_else(|| no_dir("the service's config"))?;
    for file in &service.profile.config_files {
        let text = match files::read_config(dir, &file.path) {
            Ok((text, _)) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(format!("cannot read the config back: {e}")),
        };
        if let Some((name, _)) = files::keys_in(file, &text)
            .unwrap_or_default()
            .into_iter()
            .find(|(_, value)| value == old)
        {
            return Err(format!(
                "{} still holds the old key in {name}, so the service still accepts it",
                file.path
            ));
        }
    }
    let environment = match pid.map(|pid| (pid, listener::environment_holding(pid, old))) {
        Some((pid, Ok(names))) if names.is_empty() => {
            format!("nor does the environment of the service's process (pid {pid})")
        }
        Some((pid, Ok(names))) => {
            return Err(format!(
                "the environment of the service's process (pid {pid}) still holds the old key in {}, so the service still accepts it",
                names.join(", ")
            ))
        }
        Some((_, Err(e))) => format!(
            "its environment could not be read ({e}), so the old key's refusal there was not probed"
        ),
        None => "the service's process could not be found, so its environment was not read and the old key's refusal there was not probed".into(),
    };
    Ok(format!("no config file holds it any more; {environment}"))
}

async fn roll_back(
    service: &Service<'_>,
    state: &StateDir,
    journal: &Journal,
    old: &str,
    outcome: &mut RotateOutcome,
) {
    let restored = match service.dir() {
        Some(dir) => put_back(dir, state, journal),
        None => Err(no_dir("the service's config")),
    };
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
    // The hash the rotation wrote is gone from the file: what it stood for is forgotten.
    if let Ok(known) = Hashed::load(state) {
        let written: Vec<String> = known
            .hashes_for(&journal.new_fingerprint)
            .map(str::to_owned)
            .collect();
        for hash in written {
            let _ = Hashed::forget_one(state, &hash);
        }
    }
    let reread = service
        .file_holding(&journal.name)
        .is_some_and(|f| f.reread);
    let restarted = if reread {
        Ok(vec![format!(
            "no restart: the service reads {} at each use",
            journal.file.display()
        )])
    } else {
        service.restart().await
    };
    match restarted {
        Ok(done) => {
            outcome.steps.extend(done);
            if !reread {
                outcome
                    .steps
                    .push("restarted the service with the previous config".into());
            }
            if service
                .file_holding(&journal.name)
                .is_some_and(|f| f.format.is_hashed())
            {
                // The file holds only the old password's hash: there is no password to try.
                outcome.steps.push(
                    "the old password's hash is back in place; the agent does not know the password itself, so it was not tried"
                        .into(),
                );
                return;
            }
            // The old key is the current one again: it goes to the service's own process only.
            let works = matches!(service.accepts(old).await, Ok((true, _)));
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
    let text = fsutil::read_optional(&state.rotation_journal()).ok()??;
    let journal: Journal = match serde_json::from_str(&text) {
        Ok(j) => j,
        Err(e) => {
            tracing::error!(error = %e, "unreadable rotation journal left as it is");
            return None;
        }
    };
    let old = backup_bytes(state, &journal)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
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
    roll_back(service, state, &journal, &old, &mut outcome).await;
    tracing::warn!(name = %journal.name, rolled_back = outcome.rolled_back, "interrupted rotation rolled back");
    Some(finish(state, outcome))
}

/// What became of the rotation to `fingerprint` (the new key's), or of the latest.
pub fn status(state: &StateDir, fingerprint: Option<&str>) -> RotationStatus {
    let in_progress = fsutil::read_optional(&state.rotation_journal())
        .ok()
        .flatten()
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
        cancelled: false,
    }
}

/// The most cancelled fingerprints kept: a console settles one at a time.
const CANCELLED_KEPT: usize = 64;

fn cancelled_list(state: &StateDir) -> Vec<String> {
    fsutil::read_optional(&state.rotation_cancelled())
        .ok()
        .flatten()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// Cancel the rotation to `fingerprint` unless it is running or finished (see
/// `Agent::cancel_rotation`; the caller holds the one-action lock).
pub fn cancel(state: &StateDir, fingerprint: &str) -> Result<RotationStatus, ApiError> {
    let now = status(state, Some(fingerprint));
    if now.in_progress || now.outcome.is_some() {
        return Ok(now);
    }
    let mut list = cancelled_list(state);
    if !list.iter().any(|f| f == fingerprint) {
        list.push(fingerprint.to_owned());
    }
    let keep = list.len().saturating_sub(CANCELLED_KEPT);
    list.drain(..keep);
    // A list of strings always serializes.
    let text = serde_json::to_string(&list).unwrap_or_default();
    fsutil::write_atomic(&state.rotation_cancelled(), text.as_bytes()).map_err(|e| {
        ApiError::new(
            500,
            codes::CANNOT_ROTATE,
            format!("cannot note the cancellation: {e}"),
        )
    })?;
    Ok(RotationStatus {
        cancelled: true,
        ..now
    })
}

/// Whether a console cancelled the rotation to any of `fingerprints`.
pub fn cancelled(state: &StateDir, fingerprints: &[String]) -> bool {
    let list = cancelled_list(state);
    fingerprints.iter().any(|f| list.contains(f))
}

fn outcomes(state: &StateDir) -> Vec<RotateOutcome> {
    fsutil::read_optional(&state.rotation_outcomes())
        .ok()
        .flatten()
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
            let _ = fsutil::remove_if_present(&state.rotation_journal());
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot record the rotation outcome; the journal is kept")
        }
    }
    tracing::info!(name = %outcome.name, committed = outcome.committed, rolled_back = outcome.rolled_back, "rotation finished");
    outcome
}

/// A new key is data wherever it lands only if it is drawn from the profile's alphabet
/// (base64url, or hex) and has an end: a dotenv file sourced by a shell, a TOML string and a
/// log line give no meaning to these characters.
fn check_new_key(key: &str, policy: &gatehouse_events::profile::KeyPolicy) -> Result<(), ApiError> {
    let (alphabet, allowed): (&str, fn(u8) -> bool) = match policy.encoding.as_str() {
        "hex" => ("hex (0-9, a-f, A-F)", |b| b.is_ascii_hexdigit()),
        _ => ("base64url (A-Z, a-z, 0-9, '-', '_')", |b| {
            b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
        }),
    };
    let min = policy.min_length;
    if key.len() < min || key.len() > NEW_KEY_MAX || !key.bytes().all(allowed) {
        return Err(ApiError::conflict(
            codes::CANNOT_ROTATE,
            format!(
                "the new key must be {min} to {NEW_KEY_MAX} characters of {alphabet}; nothing was changed"
            ),
        ));
    }
    Ok(())
}

/// The directory holding the config at `relative` below `service_dir`, and its name, reached
/// without following a link.
fn config_place(service_dir: &Path, relative: &Path) -> std::io::Result<(Dir, OsString)> {
    let (parent, name) = fsutil::split(relative)?;
    Ok((Dir::open(service_dir)?.subdir(parent)?, name.to_owned()))
}

/// The backup a journal names, if it is a regular file of the agent's own with the content
/// the journal recorded.
fn backup_bytes(state: &StateDir, journal: &Journal) -> Result<Vec<u8>, String> {
    let Some(sha256) = &journal.backup_sha256 else {
        return Err(
            "this rotation was started by an older agent, which kept its backup beside the config where the service's account can change it; it is not put back automatically"
                .into(),
        );
    };
    let name = journal
        .backup
        .file_name()
        .ok_or("the journal names no backup file")?;
    let backups = state.rotation_backups().map_err(|e| e.to_string())?;
    let mut backup = backups
        .open_regular(name)
        .map_err(|e| e.to_string())?
        .ok_or("the backup is gone")?;
    if backup.facts.uid != fsutil::agent_uid() || backup.facts.nlink != 1 {
        return Err("the backup is not a file of the agent's own".into());
    }
    let bytes = backup
        .read_all(fsutil::CONFIG_MAX)
        .map_err(|e| e.to_string())?;
    if fsutil::sha256_hex(&bytes) != *sha256 {
        return Err("the backup changed since it was written".into());
    }
    Ok(bytes)
}

/// Put the backup back where the service reads its config, with its owner and mode.
fn put_back(service_dir: &Path, state: &StateDir, journal: &Journal) -> Result<(), String> {
    let bytes = backup_bytes(state, journal)?;
    let relative = journal
        .relative
        .as_deref()
        .ok_or("the journal does not say where the config is")?;
    let (dir, name) = config_place(service_dir, relative).map_err(|e| e.to_string())?;
    dir.write_atomic(
        &name,
        &bytes,
        Access {
            mode: journal.mode.unwrap_or(0o600),
            owner: journal.owner,
        },
    )
    .map_err(|e| e.to_string())
}

fn write_journal(state: &StateDir, journal: &Journal) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(journal).map_err(std::io::Error::other)?;
    fsutil::write_atomic(&state.rotation_journal(), &bytes)
}

/// Remove all but the `keep` newest backups of the config called `name`.
fn prune_backups(state: &StateDir, name: &OsStr, keep: usize) {
    let Ok(dir) = state.rotation_backups() else {
        return;
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let Ok(entries) = dir.entries() else {
        return;
    };
    let mut backups: Vec<(Option<std::time::SystemTime>, OsString)> = entries
        .into_iter()
        .filter(|(n, _, regular)| {
            let n = n.to_string_lossy();
            *regular && n.starts_with(&prefix) && n.ends_with(".bak")
        })
        .map(|(n, facts, _)| (facts.modified, n))
        .collect();
    backups.sort();
    let excess = backups.len().saturating_sub(keep);
    for (_, old) in backups.into_iter().take(excess) {
        if let Err(e) = dir.remove(&old) {
            tracing::warn!(error = %e, "cannot remove an old backup");
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
        let state = StateDir::new(dir.path());
        let backups = state.rotation_backups().expect("backups");
        for i in 0..5 {
            std::fs::write(
                backups.path().join(format!("config.toml.{i}-abcd.bak")),
                "old",
            )
            .expect("backup");
            std::thread::sleep(Duration::from_millis(15));
        }
        std::fs::write(backups.path().join(".env.1-abcd.bak"), "another config's").expect("other");
        prune_backups(&state, OsStr::new("config.toml"), 3);
        let mut left: Vec<String> = std::fs::read_dir(backups.path())
            .expect("dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".env.1-abcd.bak",
                "config.toml.2-abcd.bak",
                "config.toml.3-abcd.bak",
                "config.toml.4-abcd.bak",
            ],
            "the three newest backups stay, and another config's are not touched"
        );
    }

    #[test]
    fn only_the_backup_the_journal_recorded_is_put_back() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let state = StateDir::new(tmp.path().join("state"));
        state.ensure().expect("state");
        let service = tmp.path().join("service");
        std::fs::create_dir(&service).expect("service");
        std::fs::write(service.join("config.toml"), "new = 1\n").expect("config");
        let backups = state.rotation_backups().expect("backups");
        backups
            .write_atomic(
                OsStr::new("config.toml.1-ab.bak"),
                b"old = 1\n",
                Access::PRIVATE,
            )
            .expect("backup");
        let journal = Journal {
            name: "k".into(),
            file: service.join("config.toml"),
            relative: Some("config.toml".into()),
            backup: backups.path().join("config.toml.1-ab.bak"),
            backup_sha256: Some(fsutil::sha256_hex(b"old = 1\n")),
            old_fingerprint: String::new(),
            new_fingerprint: String::new(),
            mode: Some(0o600),
            owner: None,
        };
        std::fs::write(backups.path().join("config.toml.1-ab.bak"), "planted = 1\n")
            .expect("tamper");
        let refused = put_back(&service, &state, &journal).expect_err("a changed backup");
        assert!(refused.contains("changed"), "says why: {refused}");
        let secret = tmp.path().join("secret");
        std::fs::write(&secret, "old = 1\n").expect("secret");
        std::fs::remove_file(backups.path().join("config.toml.1-ab.bak")).expect("rm");
        std::os::unix::fs::symlink(&secret, backups.path().join("config.toml.1-ab.bak"))
            .expect("link");
        let refused = put_back(&service, &state, &journal).expect_err("a link");
        assert!(refused.contains("symbolic link"), "says why: {refused}");
        assert_eq!(
            std::fs::read_to_string(service.join("config.toml")).expect("config"),
            "new = 1\n",
            "nothing was written"
        );
        let old_journal = Journal {
            backup_sha256: None,
            ..journal
        };
        let refused = put_back(&service, &state, &old_journal).expect_err("an old journal");
        assert!(refused.contains("older agent"), "says why: {refused}");
    }
}
