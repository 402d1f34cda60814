//! Snapshots of the service's SQLite database (Sekha's `sekha.db`) with SQLite's online
//! backup, consistent while the service writes, kept in the agent's state directory (mode
//! 0600, the newest ten); and restoring one: a safety snapshot of the current database first,
//! the chosen snapshot copied in with the same online backup, the service restarted and its
//! health checked.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gatehouse_protocol::{codes, RestoreRequest, RestoreResult, Snapshot, Snapshots};

use crate::error::{ApiError, ConfigError};
use crate::fsutil;
use crate::service::Service;
use crate::state::StateDir;

const KEPT: usize = 10;

fn refuse(message: impl Into<String>) -> ApiError {
    ApiError::conflict(codes::CANNOT_RESTORE, message)
}

/// The service's database file, or why there is none to snapshot (no profile, a database
/// server rather than a file, no `service_dir`).
pub fn locate(service: Result<Service<'_>, &ConfigError>) -> Result<PathBuf, ApiError> {
    service
        .map_err(|e| refuse(e.to_string()))?
        .database()
        .map_err(refuse)
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

/// Take a snapshot of `db`; pruning to the newest ten never removes `protect` (the snapshot
/// a restore is about to use).
pub fn take(
    db: &Path,
    state: &StateDir,
    now: i64,
    label: &str,
    protect: Option<&str>,
) -> Result<Snapshot, ApiError> {
    if !db.is_file() {
        return Err(refuse(format!("{} does not exist", db.display())));
    }
    let dir = state.snapshots();
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
    backup(db, &partial).map_err(refuse)?;
    let _ = fsutil::set_mode(&partial, 0o600);
    std::fs::rename(&partial, &path).map_err(|e| ApiError::internal("keeping the snapshot", e))?;
    prune(&dir, protect);
    describe(&path, now).map_err(|e| ApiError::internal("reading the snapshot", e))
}

/// Snapshot the service's database now.
pub async fn snapshot(
    service: Result<Service<'_>, &ConfigError>,
    state: &StateDir,
    now: i64,
) -> Result<Snapshot, ApiError> {
    let db = locate(service);
    let state = state.clone();
    let snapshot = tokio::task::spawn_blocking(move || take(&db?, &state, now, "snapshot", None))
        .await
        .map_err(|e| ApiError::internal("the snapshot task", e))??;
    tracing::info!(name = %snapshot.name, size = snapshot.size, "database snapshot taken");
    Ok(snapshot)
}

/// The snapshots kept, and the database they are of (or why there is none).
pub fn list(db: &Result<PathBuf, ApiError>, state: &StateDir) -> Snapshots {
    let database = match db {
        Ok(db) => db.display().to_string(),
        Err(e) => e.message.clone(),
    };
    let mut snapshots: Vec<Snapshot> = std::fs::read_dir(state.snapshots())
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
                .and_then(fsutil::unix_secs)
                .unwrap_or(0);
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
pub fn existing(state: &StateDir, name: &str) -> Result<PathBuf, ApiError> {
    if name.contains(['/', '\\']) || name.contains("..") || !name.ends_with(".sqlite3") {
        return Err(ApiError::bad_request(format!(
            "{name:?} is not a snapshot name"
        )));
    }
    let from = state.snapshots().join(name);
    if !from.is_file() {
        return Err(refuse(format!("there is no snapshot {name}")));
    }
    Ok(from)
}

/// Restore snapshot `request.name`: a safety snapshot of the database as it is, the chosen
/// one copied over it (online backup), the service restarted and its health checked. A name
/// that is not a snapshot changes nothing.
pub async fn restore(
    service: Result<Service<'_>, &ConfigError>,
    state: &StateDir,
    request: &RestoreRequest,
    now: i64,
) -> Result<RestoreResult, ApiError> {
    let db = locate(service);
    let (state_dir, name) = (state.clone(), request.name.clone());
    let (safety, restored) = tokio::task::spawn_blocking(move || {
        // Nothing is touched for a snapshot that is not there.
        existing(&state_dir, &name)?;
        let db = db?;
        let safety = take(&db, &state_dir, now, "before-restore", Some(&name))?;
        let restored =
            existing(&state_dir, &name).and_then(|from| backup(&from, &db).map_err(refuse));
        Ok::<_, ApiError>((safety, restored))
    })
    .await
    .map_err(|e| ApiError::internal("the restore task", e))??;
    let mut steps = vec![format!(
        "safety snapshot {} ({} bytes)",
        safety.name, safety.size
    )];
    if let Err(e) = restored {
        return Ok(RestoreResult {
            ok: false,
            safety_snapshot: Some(safety.name),
            steps,
            error: Some(format!("the database was left as it was: {}", e.message)),
        });
    }
    steps.push(format!(
        "{} copied into the database (SQLite online backup)",
        request.name
    ));
    let service = service.map_err(|e| ApiError::conflict(codes::CANNOT_ROTATE, e.to_string()))?;
    Ok(match service.restart().await {
        Ok(()) => {
            steps.push("verified: the service restarted and answers its health check".into());
            tracing::warn!(snapshot = %request.name, "database restored");
            RestoreResult {
                ok: true,
                safety_snapshot: Some(safety.name),
                steps,
                error: None,
            }
        }
        Err(e) => RestoreResult {
            ok: false,
            safety_snapshot: Some(safety.name.clone()),
            steps,
            error: Some(format!(
                "{e}; the database before the restore is in {}",
                safety.name
            )),
        },
    })
}

fn describe(path: &Path, created_at: i64) -> std::io::Result<Snapshot> {
    let bytes = std::fs::read(path)?;
    Ok(Snapshot {
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        size: bytes.len() as u64,
        sha256: fsutil::sha256_hex(&bytes),
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
