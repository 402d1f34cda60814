//! Snapshots of the service's SQLite database (Sekha's `sekha.db`) with SQLite's online
//! backup, consistent while the service writes, kept in the agent's state directory (mode
//! 0600, the newest ten); and restoring one: a safety snapshot of the current database first,
//! then the chosen snapshot put in the database's place, the service restarted and its
//! health checked.
//!
//! The service's account owns the database's directory and may swap the database for a link
//! at any moment, so the database is used only if it is a regular file with one name, owned
//! by the service's account, opened with `SQLITE_OPEN_NOFOLLOW` (no link anywhere in its
//! path); a restore never writes into the existing file: the snapshot is copied into a new
//! file created in the directory's handle, given the database's owner and mode, and renamed
//! over it there (`renameat`), and the old database's journal files are removed.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gatehouse_protocol::{codes, RestoreRequest, RestoreResult, Snapshot, Snapshots};

use crate::error::{ApiError, ConfigError};
use crate::fsutil::{self, Access, Dir, Facts};
use crate::service::Service;
use crate::state::StateDir;

const KEPT: usize = 10;
/// The files SQLite keeps beside a database: stale ones would be applied to the restored file.
const SIDE_FILES: [&str; 3] = ["-wal", "-shm", "-journal"];

fn refuse(message: impl Into<String>) -> ApiError {
    ApiError::conflict(codes::CANNOT_RESTORE, message)
}

/// The service's database file, or why there is none to snapshot (no profile, a database
/// server rather than a file, no `service_dir`).
pub fn locate(service: &Result<Service<'_>, &ConfigError>) -> Result<PathBuf, ApiError> {
    service
        .as_ref()
        .map_err(|e| refuse(e.to_string()))?
        .database()
        .map_err(refuse)
}

/// The database, checked: its directory's handle, its name there and its facts.
pub struct Database {
    path: PathBuf,
    dir: Dir,
    name: OsString,
    facts: Facts,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Database {
    /// Open `path`'s directory and check the database in it: a regular file reached without
    /// a link, with one name, owned by the service's account (`account` gives its uid from
    /// the directory's owner).
    pub fn check(
        path: &Path,
        account: impl FnOnce(u32) -> Result<u32, String>,
    ) -> Result<Database, ApiError> {
        let shown = path.display();
        let (dir, name) = fsutil::split(path).map_err(|e| refuse(e.to_string()))?;
        let dir = Dir::open(dir).map_err(|e| refuse(e.to_string()))?;
        let regular = dir
            .open_regular(name)
            .map_err(|e| refuse(format!("{e}; nothing was changed")))?
            .ok_or_else(|| refuse(format!("{shown} does not exist")))?;
        let facts = regular.facts;
        if facts.nlink != 1 {
            return Err(refuse(format!(
                "{shown} has other hard links, so it may be another file's content; nothing was changed"
            )));
        }
        let owner = dir.facts().map_err(|e| refuse(e.to_string()))?.uid;
        let want = account(owner).map_err(refuse)?;
        if facts.uid != want {
            return Err(refuse(format!(
                "{shown} belongs to uid {}, not the service's account (uid {want}); nothing was changed. Set [checks] service_user if the service runs as another account.",
                facts.uid
            )));
        }
        Ok(Database {
            path: path.to_owned(),
            dir,
            name: name.to_owned(),
            facts,
        })
    }

    /// Put `snapshot` (a file of the agent's) in the database's place: a new file with the
    /// database's owner and mode, renamed over it, and the old database's journal files gone.
    fn replace_with(&self, snapshot: &mut std::fs::File) -> Result<(), String> {
        self.dir
            .write_atomic_from(
                &self.name,
                snapshot,
                Access::owned(self.facts.mode, self.facts.uid, self.facts.gid),
            )
            .map_err(|e| e.to_string())?;
        for suffix in SIDE_FILES {
            let mut side = self.name.clone();
            side.push(suffix);
            self.dir.remove(&side).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Copy `from` into `to` with SQLite's online backup (pages copied in steps, so a writer is
/// never blocked for long). `from` is opened read-only and refused if any part of its path is
/// a link.
fn backup(from: &Path, to: &Path) -> Result<(), String> {
    use rusqlite::OpenFlags;
    let src = rusqlite::Connection::open_with_flags(
        from,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NOFOLLOW
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
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
    db: &Database,
    state: &StateDir,
    now: i64,
    label: &str,
    protect: Option<&str>,
) -> Result<Snapshot, ApiError> {
    let dir = state.snapshots();
    fsutil::ensure_private_dir(&dir)
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
    backup(&db.path, &partial).map_err(refuse)?;
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
    let db = checked(&service)?;
    let state = state.clone();
    let snapshot = tokio::task::spawn_blocking(move || take(&db, &state, now, "snapshot", None))
        .await
        .map_err(|e| ApiError::internal("the snapshot task", e))??;
    tracing::info!(name = %snapshot.name, size = snapshot.size, "database snapshot taken");
    Ok(snapshot)
}

/// The service's database, located and checked.
fn checked(service: &Result<Service<'_>, &ConfigError>) -> Result<Database, ApiError> {
    let path = locate(service)?;
    let service = service.as_ref().map_err(|e| refuse(e.to_string()))?;
    Database::check(&path, |owner| service.account_uid(owner))
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
    if name.contains(['/', '\\', '\0']) || name.contains("..") || !name.ends_with(".sqlite3") {
        return Err(ApiError::bad_request(format!(
            "{name:?} is not a snapshot name"
        )));
    }
    let from = state.snapshots().join(name);
    match fsutil::open_regular(&from) {
        Ok(_) => Ok(from),
        Err(_) => Err(refuse(format!("there is no snapshot {name}"))),
    }
}

/// Restore snapshot `request.name`: a safety snapshot of the database as it is, the chosen
/// one put in its place, the service restarted and its health checked. A name that is not a
/// snapshot, or a database that is not the service's own regular file, changes nothing.
pub async fn restore(
    service: Result<Service<'_>, &ConfigError>,
    state: &StateDir,
    request: &RestoreRequest,
    now: i64,
) -> Result<RestoreResult, ApiError> {
    // Nothing is touched for a snapshot that is not there.
    existing(state, &request.name)?;
    let db = checked(&service)?;
    let (state_dir, name) = (state.clone(), request.name.clone());
    let (safety, restored) = tokio::task::spawn_blocking(move || {
        let safety = take(&db, &state_dir, now, "before-restore", Some(&name))?;
        let restored = existing(&state_dir, &name).and_then(|from| {
            let mut snapshot = fsutil::open_regular(&from)
                .map_err(|e| refuse(e.to_string()))?
                .file;
            db.replace_with(&mut snapshot).map_err(refuse)
        });
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
        "{} put in place of the database (a new file with the database's owner and mode)",
        request.name
    ));
    let service = service.map_err(|e| ApiError::conflict(codes::CANNOT_ROTATE, e.to_string()))?;
    Ok(match service.restart().await {
        Ok(done) => {
            steps.extend(done);
            steps.push("verified: the service restarted and answers its liveness probe".into());
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
    let mut file = fsutil::open_regular(path)?.file;
    let (sha256, size) = fsutil::sha256_hex_of(&mut file)?;
    Ok(Snapshot {
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        size,
        sha256,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_that_is_not_the_service_s_own_regular_file_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let db = tmp.path().join("sekha.db");
        std::fs::write(&db, "").expect("db");
        let me = fsutil::agent_uid();
        assert!(
            Database::check(&db, Ok).is_ok(),
            "a regular file of the directory's owner is the service's database"
        );
        let err = Database::check(&db, |_| Ok(me + 1)).expect_err("another owner");
        assert!(
            err.message.contains("not the service's account"),
            "says why: {}",
            err.message
        );
        std::fs::hard_link(&db, tmp.path().join("other")).expect("link");
        let err = Database::check(&db, Ok).expect_err("a second name");
        assert!(
            err.message.contains("hard links"),
            "says why: {}",
            err.message
        );
        let fifo = tmp.path().join("fifo.db");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .expect("fifo");
        let err = Database::check(&fifo, Ok).expect_err("a FIFO");
        assert!(
            err.message.contains("not a regular file"),
            "says why: {}",
            err.message
        );
        assert!(
            existing(&StateDir::new(tmp.path()), "x\0.sqlite3").is_err(),
            "a NUL byte is no snapshot name"
        );
    }
}
