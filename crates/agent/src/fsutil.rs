//! File system helpers, and the agent's one atomic writer.
//!
//! Everything the agent writes that must never be seen half-written (its identity, the
//! enrollment code file, the service's config during a rotation and its backup, the rotation
//! journal and outcomes) goes through [`write_atomic`] or [`write_atomic_with`]: a temporary
//! file in the same directory, its mode (and owner) set before a byte is written, flushed to
//! disk, renamed over the target, and the directory flushed so the rename itself is durable.
//! A reader sees the old content or the new, never half.

use std::io::Write;
use std::path::Path;

/// Who may read a file written by [`write_atomic_with`].
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    /// Permission bits (Unix).
    pub mode: u32,
    /// Give the file the owner and group of this file, when it exists (only root can): a
    /// service's config stays its own after the agent rewrites it.
    pub owner_of: Option<&'a Path>,
}

impl<'a> Access<'a> {
    /// Mode 0600, owned by the agent.
    pub const PRIVATE: Access<'static> = Access {
        mode: 0o600,
        owner_of: None,
    };

    /// Mode 0600, with the owner of `file` (the service's config and its backups stay the
    /// service account's).
    pub fn private_like(file: &'a Path) -> Self {
        Access {
            mode: 0o600,
            owner_of: Some(file),
        }
    }
}

/// Write `bytes` to `path` atomically, readable by the owner only.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, bytes, Access::PRIVATE)
}

/// Write `bytes` to `path` atomically with the given mode and owner.
pub fn write_atomic_with(path: &Path, bytes: &[u8], access: Access<'_>) -> std::io::Result<()> {
    let dir = parent_dir(path);
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        if let Some(meta) = access
            .owner_of
            .and_then(|like| std::fs::metadata(like).ok())
        {
            // Only root can give a file away; otherwise it stays the agent's own. Before the
            // mode, because a change of owner may clear set-id bits.
            let _ = std::os::unix::fs::fchown(tmp.as_file(), Some(meta.uid()), Some(meta.gid()));
        }
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(access.mode))?;
    }
    #[cfg(not(unix))]
    let _ = access;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// The directory a path is in; a bare file name is in the working directory.
fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    // The rename is durable only once the directory entry is.
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// A file's text, or `None` if there is no such file.
pub fn read_optional(path: &Path) -> std::io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Remove a file; one that is not there is already removed.
pub fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(unix)]
pub fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
pub fn set_mode(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

/// A file's permission bits (with the set-id and sticky bits), where the platform has them.
pub fn mode_of(meta: &std::fs::Metadata) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        Some(meta.permissions().mode() & 0o7777)
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// A file's owner uid and full mode.
#[cfg(unix)]
pub fn owner_and_mode(path: &Path) -> std::io::Result<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path)?;
    Ok((meta.uid(), meta.mode()))
}

#[cfg(not(unix))]
pub fn owner_and_mode(_path: &Path) -> std::io::Result<(u32, u32)> {
    Err(std::io::Error::other("file modes are a Unix notion"))
}

/// Seconds since the Unix epoch of a file time; `None` for a time before it.
pub fn unix_secs(time: std::time::SystemTime) -> Option<i64> {
    time.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs() as i64)
}

/// SHA-256 of some bytes, in lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn atomic_writes_are_owner_only_and_replace_whole() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("fleet.json");
        write_atomic(&path, b"first").expect("write");
        write_atomic(&path, b"second").expect("overwrite");
        assert_eq!(
            std::fs::read(&path).expect("read"),
            b"second",
            "the second write replaces the first whole"
        );
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(
            mode, 0o600,
            "key material must be private to the agent's user"
        );
        let leftovers = std::fs::read_dir(tmp.path()).expect("list").count();
        assert_eq!(leftovers, 1, "no temporary files may be left behind");
    }

    #[cfg(unix)]
    #[test]
    fn a_mode_asked_for_is_the_mode_written() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("config.toml");
        std::fs::write(&path, "old").expect("write");
        write_atomic_with(
            &path,
            b"new",
            Access {
                mode: 0o640,
                owner_of: Some(&path),
            },
        )
        .expect("write");
        let meta = std::fs::metadata(&path).expect("meta");
        assert_eq!(mode_of(&meta), Some(0o640), "a rollback puts the mode back");
    }

    #[test]
    fn a_bare_file_name_is_in_the_working_directory() {
        assert_eq!(
            parent_dir(Path::new("code.txt")),
            Path::new("."),
            "not the empty path, which cannot be opened"
        );
        assert_eq!(
            parent_dir(Path::new("/var/lib/gh/fleet.json")),
            Path::new("/var/lib/gh"),
            "a path's own directory otherwise"
        );
    }
}
