//! Where the console keeps its data.
//!
//! Order of precedence: an explicit directory (the `--data-dir` flag), then the
//! `GATEHOUSE_DATA_DIR` environment variable, then the OS convention
//! (`$XDG_DATA_HOME/gatehouse` on Linux, `~/Library/Application Support/dev.gatehouse.Gatehouse`
//! on macOS, `%APPDATA%\gatehouse\Gatehouse\data` on Windows). Tests and the demo always pass
//! their own directory, so they never touch an operator's real data.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Environment variable that overrides the data directory.
pub const DATA_DIR_ENV: &str = "GATEHOUSE_DATA_DIR";

/// The console's data directory and the files inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Resolve the data directory (see the module docs for the order) without creating it.
    pub fn resolve(explicit: Option<&Path>) -> Result<Self> {
        if let Some(dir) = explicit {
            return Ok(DataDir::at(dir));
        }
        if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|v| !v.is_empty()) {
            return Ok(DataDir::at(PathBuf::from(dir)));
        }
        directories::ProjectDirs::from("dev", "gatehouse", "Gatehouse")
            .map(|dirs| DataDir::at(dirs.data_dir()))
            .ok_or(Error::NoDataDir)
    }

    pub fn at(root: impl Into<PathBuf>) -> Self {
        DataDir { root: root.into() }
    }

    /// Create the directory (and its `logs/`) if missing, readable by the owner only.
    pub fn ensure(&self) -> Result<()> {
        for dir in [self.root.clone(), self.logs()] {
            std::fs::create_dir_all(&dir).map_err(|source| Error::DataDir {
                path: dir.clone(),
                source,
            })?;
            restrict_to_owner(&dir)?;
        }
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn database(&self) -> PathBuf {
        self.root.join("gatehouse.sqlite3")
    }

    /// The timeline's events, apart from the rest so large ingests never block it.
    pub fn events_database(&self) -> PathBuf {
        self.root.join("events.sqlite3")
    }

    /// Where the window's exports go: the user's Downloads folder, or `exports/` in the data
    /// directory on a system without one.
    pub fn downloads(&self) -> PathBuf {
        directories::UserDirs::new()
            .and_then(|dirs| dirs.download_dir().map(PathBuf::from))
            .filter(|dir| dir.is_dir())
            .unwrap_or_else(|| {
                let dir = self.root().join("exports");
                let _ = std::fs::create_dir_all(&dir);
                dir
            })
    }

    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
}

#[cfg(unix)]
fn restrict_to_owner(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|source| {
        Error::DataDir {
            path: dir.to_owned(),
            source,
        }
    })
}

#[cfg(not(unix))]
fn restrict_to_owner(_dir: &Path) -> Result<()> {
    // On Windows the per-user profile folders already carry an owner-only ACL.
    Ok(())
}

/// Whether the filesystem holding `dir` has (next to) no room left for an unprivileged
/// writer. Unknown (another platform, a failed query) reads as not full.
pub fn disk_is_full(dir: &Path) -> bool {
    /// Less than this is full: SQLite's shared-memory file alone takes 32 KiB.
    const ROOM: u64 = 64 << 10;
    #[cfg(unix)]
    {
        match rustix::fs::statvfs(dir) {
            Ok(fs) => fs.f_bavail.saturating_mul(fs.f_frsize) < ROOM,
            Err(_) => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (dir, ROOM);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_directory_wins() {
        let dir = DataDir::resolve(Some(Path::new("/tmp/explicit"))).expect("explicit resolves");
        assert_eq!(
            dir.root(),
            Path::new("/tmp/explicit"),
            "the --data-dir flag must beat env and OS defaults"
        );
        assert_eq!(
            dir.database(),
            Path::new("/tmp/explicit/gatehouse.sqlite3"),
            "the database lives in the data directory"
        );
    }

    #[cfg(unix)]
    #[test]
    fn ensure_creates_owner_only_directories() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = DataDir::at(tmp.path().join("nested/data"));
        dir.ensure().expect("ensure creates the tree");
        for path in [dir.root().to_owned(), dir.logs()] {
            let mode = std::fs::metadata(&path)
                .expect("exists")
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(
                mode,
                0o700,
                "{} must be private to the operator",
                path.display()
            );
        }
    }
}
