//! Snapshots of the service's SQLite database (Sekha's `sekha.db`) with SQLite's online
//! backup, consistent while the service writes, kept in the agent's state directory (mode
//! 0600, the newest ten); and restoring one: a safety snapshot of the current database first,
//! the chosen snapshot copied in with the same online backup, the service restarted and its
//! health checked.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gatehouse_protocol::{codes, Snapshot, Snapshots};

use crate::config::AgentConfig;
use crate::error::ApiError;

const DIR: &str = "snapshots";
const KEPT: usize = 10;

fn refuse(message: impl Into<String>) -> ApiError {
    ApiError::conflict(codes::CANNOT_RESTORE, message)
}

/// The service's database file, from the profile and `service_dir`.
pub fn database(config: &AgentConfig) -> Result<PathBuf, ApiError> {
    let profile = config
        .service_profile()
        .map_err(|e| refuse(e.to_string()))?;
    let db = profile.database.ok_or_else(|| {
        refuse(format!(
            "the {} profile names no SQLite database to snapshot (its data lives in a database server: back that up with its own tools)",
            profile.display_name
        ))
    })?;
    if db.format != "sqlite" {
        return Err(refuse(format!(
            "only SQLite databases are snapshotted, not {}",
            db.format
        )));
    }
    let dir = config.service_dir.as_ref().ok_or_else(|| {
        refuse("service_dir is not set in the agent's config, so the database cannot be found")
    })?;
    Ok(dir.join(db.path))
}

fn snapshot_dir(state_dir: &Path) -> PathBuf {
    state_dir.join(DIR)
}

/// Copy `from` into `to` with SQLite's online backup (pages copied in steps, so a writer is
/// never blocked for long).
fn backup(from: &Path, to: &Path) -> Result<(), String> {
    let src =
        rusqlite::Connection::open_with_flags(from, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| format!("open {}: {e}", from.display()))?;
    let mut dst =
        rusqlite::Connection::open(to).map_err(|e| format!("open {}: {e}", to.display()))?;
    dst.busy_timeout(Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    let copy = rusqlite::backup::Backup::new(&src, &mut dst).map_err(|e| format!("backup: {e}"))?;
    copy.run_to_completion(256, Duration::from_millis(5), None)
        .map_err(|e| format!("backup of {}: {e}", from.display()))
}

/// Take a snapshot; pruning to the newest ten never removes `protect` (the snapshot a
/// restore is about to use).
pub fn take(
    config: &AgentConfig,
    state_dir: &Path,
    now: i64,
    label: &str,
    protect: Option<&str>,
) -> Result<Snapshot, ApiError> {
    let db = database(config)?;
    if !db.is_file() {
        return Err(refuse(format!("{} does not exist", db.display())));
    }
    let dir = snapshot_dir(state_dir);
    std::fs::create_dir_all(&dir)
        .map_err(|e| ApiError::internal("creating the snapshot folder", e))?;
    let stamp = time::OffsetDateTime::from_unix_timestamp(now)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .ok()
        })
        .unwrap_or_else(|| now.to_string());
    let mut name = format!("{stamp}-{label}.sqlite3");
    let mut n = 1;
    while dir.join(&name).exists() {
        n += 1;
        name = format!("{stamp}-{label}-{n}.sqlite3");
    }
    let path = dir.join(&name);
    let partial = dir.join(format!(".{name}.partial"));
    backup(&db, &partial).map_err(refuse)?;
    restrict(&partial);
    std::fs::rename(&partial, &path).map_err(|e| ApiError::internal("keeping the snapshot", e))?;
    prune(&dir, protect);
    describe(&path, now).map_err(|e| ApiError::internal("reading the snapshot", e))
}

pub fn list(config: &AgentConfig, state_dir: &Path) -> Snapshots {
    let database = match database(config) {
        Ok(db) => db.display().to_string(),
        Err(e) => e.message,
    };
    let mut snapshots: Vec<Snapshot> = std::fs::read_dir(snapshot_dir(state_dir))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name().to_string_lossy().ends_with(".sqlite3")
                && !e.file_name().to_string_lossy().starts_with('.')
        })
        .filter_map(|e| {
            let created = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs() as i64);
            describe(&e.path(), created).ok()
        })
        .collect();
    snapshots.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.name.cmp(&a.name)));
    Snapshots {
        snapshots,
        database,
    }
}

/// The snapshot file called `name`, if that is a snapshot's name and it exists.
pub fn existing(state_dir: &Path, name: &str) -> Result<PathBuf, ApiError> {
    if name.contains(['/', '\\']) || name.contains("..") || !name.ends_with(".sqlite3") {
        return Err(ApiError::bad_request(format!(
            "{name:?} is not a snapshot name"
        )));
    }
    let from = snapshot_dir(state_dir).join(name);
    if !from.is_file() {
        return Err(refuse(format!("there is no snapshot {name}")));
    }
    Ok(from)
}

/// Copy snapshot `name` over the live database (online backup into it).
pub fn restore_into(config: &AgentConfig, state_dir: &Path, name: &str) -> Result<(), ApiError> {
    let from = existing(state_dir, name)?;
    let db = database(config)?;
    backup(&from, &db).map_err(refuse)
}

fn describe(path: &Path, created_at: i64) -> std::io::Result<Snapshot> {
    let bytes = std::fs::read(path)?;
    Ok(Snapshot {
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        size: bytes.len() as u64,
        sha256: crate::fsutil::sha256_hex(&bytes),
        created_at,
    })
}

fn prune(dir: &Path, protect: Option<&str>) {
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.ends_with(".sqlite3") && Some(name.as_str()) != protect
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    files.sort();
    // The protected one counts towards the ten.
    let keep = KEPT - usize::from(protect.is_some());
    while files.len() > keep {
        let (_, oldest) = files.remove(0);
        let _ = std::fs::remove_file(oldest);
    }
}

#[cfg(unix)]
fn restrict(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

#[cfg(not(unix))]
fn restrict(_path: &Path) {}
