//! File system helpers: the agent's one atomic writer, its one bounded reader, and the path
//! walk both use.
//!
//! The service's account owns the service's directory and files and can swap any of them for
//! a link at any moment; other local users can do the same wherever they can write. So the
//! agent never resolves a path through a link someone else could have made:
//!
//! - A path is walked one component at a time from a directory handle (`openat` with
//!   `O_NOFOLLOW`). A symbolic link on the way is followed only when it sits in a directory
//!   that only root or the agent's own user can change (`/var/run -> /run`); the last
//!   component is never followed.
//! - A file is read only if it is a regular file (not a device, a FIFO or a directory), and
//!   through a size limit ([`read_limited`], [`Dir::read`]): a config swapped for
//!   `/dev/zero` or a FIFO is refused, not read.
//! - Everything the agent writes that must never be seen half-written (its identity, the
//!   enrollment code file, the service's config during a rotation, the rotation journal and
//!   outcomes, a restored database) goes through [`Dir::write_atomic`]: a temporary file
//!   created in the directory handle (`O_CREAT | O_EXCL`, mode 0600), written, given its mode
//!   and then its owner (a failure is an error, never ignored), flushed, renamed within the same handle
//!   (`renameat`), and the directory flushed. A reader sees the old content or the new, never
//!   half; the rename replaces whatever entry is there (a link is replaced, not followed).

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

/// The most bytes of a service config file the agent reads.
pub const CONFIG_MAX: u64 = 1 << 20;
/// The most bytes of one of the agent's own state files it reads.
pub const STATE_MAX: u64 = 16 << 20;
/// The most symbolic links one path walk follows.
const MAX_LINKS: u32 = 40;

/// Who may read a file written by [`Dir::write_atomic`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// Permission bits.
    pub mode: u32,
    /// Give the file this owner and group (only root, or a holder of `CAP_CHOWN`, can give a
    /// file away; if that fails, nothing is written).
    pub owner: Option<(u32, u32)>,
}

impl Access {
    /// Mode 0600, owned by the agent.
    pub const PRIVATE: Access = Access {
        mode: 0o600,
        owner: None,
    };

    /// Mode `mode`, owned by `uid` and `gid` (a service's file stays the service's own).
    pub fn owned(mode: u32, uid: u32, gid: u32) -> Self {
        Access {
            mode,
            owner: Some((uid, gid)),
        }
    }
}

/// What the handle of an open file says about it (never what its path says now).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub uid: u32,
    pub gid: u32,
    /// Permission bits with the set-id and sticky bits.
    pub mode: u32,
    pub size: u64,
    pub nlink: u64,
    pub dev: u64,
    pub ino: u64,
    pub modified: Option<std::time::SystemTime>,
}

impl Facts {
    /// When it was last changed, in Unix seconds.
    pub fn modified_secs(&self) -> Option<i64> {
        self.modified.and_then(unix_secs)
    }

    fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Facts {
            uid: meta.uid(),
            gid: meta.gid(),
            mode: meta.mode() & 0o7777,
            size: meta.len(),
            nlink: meta.nlink(),
            dev: meta.dev(),
            ino: meta.ino(),
            modified: meta.modified().ok(),
        }
    }
}

/// A regular file opened without following a link, and its facts.
#[derive(Debug)]
pub struct Regular {
    pub file: File,
    pub facts: Facts,
}

impl Regular {
    /// Its whole content, refused if larger than `limit`.
    pub fn read_all(&mut self, limit: u64) -> std::io::Result<Vec<u8>> {
        if self.facts.size > limit {
            return Err(too_large(limit));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(self.facts.size).unwrap_or(0));
        (&self.file).take(limit + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > limit {
            // It grew while being read.
            return Err(too_large(limit));
        }
        Ok(bytes)
    }
}

fn too_large(limit: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("larger than the {limit} bytes the agent reads of such a file"),
    )
}

/// A directory opened by walking its path (see the module's documentation). Files are
/// opened, read, written and removed by name through it, so what happens is decided by the
/// directory the walk reached, whatever its path leads to later.
#[derive(Debug)]
pub struct Dir {
    fd: File,
    path: PathBuf,
}

impl Dir {
    /// Open the directory at `path` (relative paths from the working directory).
    pub fn open(path: &Path) -> std::io::Result<Dir> {
        Ok(Dir {
            fd: sys::walk_dir(None, path, true).map_err(|e| context(e, path))?,
            path: path.to_owned(),
        })
    }

    /// A directory below this one, by a relative path of plain names; no link is followed
    /// (a directory that can hold the service's files is the service account's to change).
    pub fn subdir(&self, relative: &Path) -> std::io::Result<Dir> {
        let shown = self.path.join(relative);
        plain_relative(relative).map_err(|e| context(e, &shown))?;
        Ok(Dir {
            fd: sys::walk_dir(Some(&self.fd), relative, false).map_err(|e| context(e, &shown))?,
            path: shown,
        })
    }

    /// The directory `name` in this one, created with mode 0700 if it is not there.
    pub fn private_subdir(&self, name: &str) -> std::io::Result<Dir> {
        sys::mkdir(&self.fd, OsStr::new(name), 0o700)
            .map_err(|e| context(e, &self.path.join(name)))?;
        self.subdir(Path::new(name))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory's own facts (its owner, for one).
    pub fn facts(&self) -> std::io::Result<Facts> {
        Ok(Facts::of(&self.fd.metadata()?))
    }

    /// The regular file `name` in this directory, or `None` if there is none. A link, a
    /// device, a FIFO or a directory is an error that says what it is.
    pub fn open_regular(&self, name: &OsStr) -> std::io::Result<Option<Regular>> {
        let shown = self.path.join(name);
        match sys::open_regular(&self.fd, name) {
            Ok(regular) => Ok(Some(regular)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(context(e, &shown)),
        }
    }

    /// The whole of the regular file `name`, refused if larger than `limit`.
    pub fn read(&self, name: &OsStr, limit: u64) -> std::io::Result<Vec<u8>> {
        let shown = self.path.join(name);
        let mut regular = sys::open_regular(&self.fd, name).map_err(|e| context(e, &shown))?;
        regular.read_all(limit).map_err(|e| context(e, &shown))
    }

    /// Replace `name` with `bytes`, atomically (see the module's documentation).
    pub fn write_atomic(&self, name: &OsStr, bytes: &[u8], access: Access) -> std::io::Result<()> {
        self.write_atomic_from(name, &mut &bytes[..], access)
    }

    /// Replace `name` with what `from` yields, atomically.
    pub fn write_atomic_from(
        &self,
        name: &OsStr,
        from: &mut dyn Read,
        access: Access,
    ) -> std::io::Result<()> {
        let shown = self.path.join(name);
        plain_name(name).map_err(|e| context(e, &shown))?;
        let (tmp_name, mut tmp) =
            sys::create_temp(&self.fd, name).map_err(|e| context(e, &shown))?;
        let written = (|| {
            std::io::copy(from, &mut tmp)?;
            tmp.flush()?;
            // The mode while the file is still the agent's: once given away, only root (or
            // CAP_FOWNER) may change it, and an agent with only CAP_CHOWN could not.
            sys::chmod(&tmp, access.mode)?;
            if let Some((uid, gid)) = access.owner {
                sys::chown(&tmp, uid, gid).map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("cannot give the new file to uid {uid}, gid {gid}: {e}"),
                    )
                })?;
                // A change of owner clears set-id bits: put them back, or fail if the agent
                // may not (the file is never left with another mode than asked).
                if sys::mode(&tmp)? != access.mode & 0o7777 {
                    sys::chmod(&tmp, access.mode)?;
                }
            }
            tmp.sync_all()?;
            sys::rename(&self.fd, &tmp_name, name)
        })();
        if let Err(e) = written {
            let _ = sys::unlink(&self.fd, &tmp_name);
            return Err(context(e, &shown));
        }
        // The rename is durable only once the directory entry is.
        sys::sync_dir(&self.fd).map_err(|e| context(e, &self.path))
    }

    /// Remove the entry `name` (a link is removed, never followed); one that is not there is
    /// already removed.
    pub fn remove(&self, name: &OsStr) -> std::io::Result<()> {
        match sys::unlink(&self.fd, name) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(context(e, &self.path.join(name)))
            }
            _ => Ok(()),
        }
    }

    /// The names in this directory with the facts of each entry itself (a link's own, never
    /// its target's).
    pub fn entries(&self) -> std::io::Result<Vec<(OsString, Facts, bool)>> {
        sys::entries(&self.fd).map_err(|e| context(e, &self.path))
    }
}

/// The directory holding `path` and the last component's name.
pub fn split(path: &Path) -> std::io::Result<(&Path, &OsStr)> {
    let name = match path.components().next_back() {
        Some(Component::Normal(name)) => name,
        _ => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} does not name a file", path.display()),
            ))
        }
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Ok((dir, name))
}

/// Open the regular file at `path`, through its directory (see the module's documentation).
pub fn open_regular(path: &Path) -> std::io::Result<Regular> {
    let (dir, name) = split(path)?;
    Dir::open(dir)?
        .open_regular(name)?
        .ok_or_else(|| context(std::io::ErrorKind::NotFound.into(), path))
}

/// The whole of the regular file at `path`, refused if larger than `limit`.
pub fn read_limited(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let (dir, name) = split(path)?;
    Dir::open(dir)?.read(name, limit)
}

/// The text of the regular file at `path`, refused if larger than `limit` or not UTF-8.
pub fn read_text(path: &Path, limit: u64) -> std::io::Result<String> {
    String::from_utf8(read_limited(path, limit)?).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is not UTF-8 text", path.display()),
        )
    })
}

/// The text of one of the agent's own files, or `None` if there is no such file.
pub fn read_optional(path: &Path) -> std::io::Result<Option<String>> {
    match read_text(path, STATE_MAX) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Write `bytes` to `path` atomically, readable by the owner only.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, bytes, Access::PRIVATE)
}

/// Write `bytes` to `path` atomically with the given mode and owner.
pub fn write_atomic_with(path: &Path, bytes: &[u8], access: Access) -> std::io::Result<()> {
    let (dir, name) = split(path)?;
    Dir::open(dir)?.write_atomic(name, bytes, access)
}

/// Remove a file (a link itself, never its target); one that is not there is already removed.
pub fn remove_if_present(path: &Path) -> std::io::Result<()> {
    let (dir, name) = split(path)?;
    match Dir::open(dir) {
        Ok(dir) => dir.remove(name),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Create a directory the agent alone may enter (and its parents), or make an existing one so.
pub fn ensure_private_dir(path: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(path)?;
    set_mode(path, 0o700)
}

pub fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Seconds since the Unix epoch of a file time; `None` for a time before it.
pub fn unix_secs(time: std::time::SystemTime) -> Option<i64> {
    time.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs() as i64)
}

/// SHA-256 of some bytes, in lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// SHA-256 of everything `from` yields, in lower-case hex, and how many bytes that was.
pub fn sha256_hex_of(from: &mut dyn Read) -> std::io::Result<(String, u64)> {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        context.update(&buf[..n]);
    }
    Ok((hex(context.finish().as_ref()), total))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The agent's effective user id.
pub fn agent_uid() -> u32 {
    sys::euid()
}

/// A path that can name a file: not empty and without a NUL byte (which no Unix path can
/// hold, and which a reader of the agent's reports would choke on).
pub fn is_file_name(path: &Path) -> bool {
    !path.as_os_str().is_empty() && !path.as_os_str().as_encoded_bytes().contains(&0)
}

/// Only plain names: no root, no `..`, nothing empty.
fn plain_relative(relative: &Path) -> std::io::Result<()> {
    let plain = relative.components().count() > 0
        && relative
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if plain {
        Ok(())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "must be a relative path of plain names (no `..`)",
        ))
    }
}

fn plain_name(name: &OsStr) -> std::io::Result<()> {
    let bytes = name.as_encoded_bytes();
    if bytes.is_empty() || bytes == b"." || bytes == b".." || bytes.contains(&b'/') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "is not a plain file name",
        ));
    }
    Ok(())
}

/// The error with the path it is about, unless it names one already.
fn context(e: std::io::Error, path: &Path) -> std::io::Error {
    let shown = path.display().to_string();
    let text = e.to_string();
    if text.contains(&shown) {
        return e;
    }
    std::io::Error::new(e.kind(), format!("{shown}: {text}"))
}

/// The system calls, through rustix (the workspace forbids `unsafe`). The agent runs on
/// Linux hosts; the calls are POSIX but for `O_PATH`.
mod sys {
    use std::ffi::{OsStr, OsString};
    use std::fs::File;
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Component, Path};

    use rustix::fs::{AtFlags, FileType, Mode, OFlags};
    use rustix::io::Errno;

    use super::{Facts, Regular, MAX_LINKS};

    pub fn euid() -> u32 {
        rustix::process::geteuid().as_raw()
    }

    /// Search-only handles while walking, where the platform has them (no read permission
    /// is needed to pass through a directory).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    const PASS: OFlags = OFlags::PATH;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    const PASS: OFlags = OFlags::RDONLY;

    enum Step {
        Root,
        Parent,
        Name(OsString),
    }

    fn steps(path: &Path, out: &mut Vec<Step>) {
        // Pushed in reverse: the walk pops from the end.
        let mut ahead = Vec::new();
        for component in path.components() {
            match component {
                Component::RootDir | Component::Prefix(_) => ahead.push(Step::Root),
                Component::CurDir => {}
                Component::ParentDir => ahead.push(Step::Parent),
                Component::Normal(name) => ahead.push(Step::Name(name.to_owned())),
            }
        }
        out.extend(ahead.into_iter().rev());
    }

    fn open_root() -> std::io::Result<File> {
        Ok(File::from(rustix::fs::openat(
            rustix::fs::CWD,
            "/",
            PASS | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?))
    }

    /// A link may be followed only where nobody but root and the agent could have made it.
    fn trusted(dir: &File) -> std::io::Result<bool> {
        use std::os::unix::fs::MetadataExt;
        let meta = dir.metadata()?;
        Ok((meta.uid() == 0 || meta.uid() == euid()) && meta.mode() & 0o022 == 0)
    }

    /// Walk `path` (from `start`, or from the working directory or the root) to a directory.
    /// `links`: whether a link in a trusted directory may be followed.
    pub fn walk_dir(start: Option<&File>, path: &Path, links: bool) -> std::io::Result<File> {
        let mut todo = Vec::new();
        steps(path, &mut todo);
        let mut current = match (path.has_root(), start) {
            (true, _) => open_root()?,
            (false, Some(start)) => start.try_clone()?,
            (false, None) => File::from(rustix::fs::openat(
                rustix::fs::CWD,
                ".",
                PASS | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?),
        };
        let mut followed = 0;
        while let Some(step) = todo.pop() {
            let name = match step {
                Step::Root => {
                    current = open_root()?;
                    continue;
                }
                Step::Parent => OsString::from(".."),
                Step::Name(name) => name,
            };
            let opened = rustix::fs::openat(
                &current,
                name.as_os_str(),
                PASS | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            );
            match opened {
                Ok(fd) => current = File::from(fd),
                Err(Errno::LOOP | Errno::NOTDIR) => {
                    let stat =
                        rustix::fs::statat(&current, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)?;
                    if FileType::from_raw_mode(stat.st_mode) != FileType::Symlink {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::NotADirectory,
                            format!("{} is not a directory", name.to_string_lossy()),
                        ));
                    }
                    if !links || !trusted(&current)? {
                        return Err(link_refused(&name));
                    }
                    followed += 1;
                    if followed > MAX_LINKS {
                        return Err(Errno::LOOP.into());
                    }
                    let target = rustix::fs::readlinkat(&current, name.as_os_str(), Vec::new())?;
                    steps(Path::new(OsStr::from_bytes(target.as_bytes())), &mut todo);
                }
                Err(e) => return Err(e.into()),
            }
        }
        // A readable handle, so the directory can be listed and flushed; search-only if the
        // agent may only pass through it.
        match rustix::fs::openat(
            &current,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => Ok(File::from(fd)),
            Err(Errno::ACCESS) => Ok(current),
            Err(e) => Err(e.into()),
        }
    }

    fn link_refused(name: &OsStr) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{} is a symbolic link where others than root could have made it; the agent \
                 does not follow it (name the file itself)",
                name.to_string_lossy()
            ),
        )
    }

    pub fn open_regular(dir: &File, name: &OsStr) -> std::io::Result<Regular> {
        // Non-blocking, so a FIFO put in the file's place cannot hang the open.
        let fd = rustix::fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::LOOP => link_refused(name),
            e => e.into(),
        })?;
        let file = File::from(fd);
        let meta = file.metadata()?;
        if !meta.file_type().is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "{} is not a regular file ({}); the agent reads only regular files",
                    name.to_string_lossy(),
                    kind(&meta.file_type())
                ),
            ));
        }
        Ok(Regular {
            file,
            facts: Facts::of(&meta),
        })
    }

    fn kind(t: &std::fs::FileType) -> &'static str {
        use std::os::unix::fs::FileTypeExt;
        if t.is_dir() {
            "a directory"
        } else if t.is_symlink() {
            "a symbolic link"
        } else if t.is_fifo() {
            "a FIFO"
        } else if t.is_char_device() || t.is_block_device() {
            "a device"
        } else if t.is_socket() {
            "a socket"
        } else {
            "not a file"
        }
    }

    pub fn create_temp(dir: &File, name: &OsStr) -> std::io::Result<(OsString, File)> {
        use ring::rand::SecureRandom;
        let random = ring::rand::SystemRandom::new();
        let mut last = None;
        for _ in 0..8 {
            let mut bytes = [0u8; 6];
            random
                .fill(&mut bytes)
                .map_err(|_| std::io::Error::other("the system random number generator failed"))?;
            let mut tmp = OsString::from(".");
            tmp.push(name);
            tmp.push(format!(".{}.tmp", super::hex(&bytes)));
            match rustix::fs::openat(
                dir,
                tmp.as_os_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            ) {
                Ok(fd) => return Ok((tmp, File::from(fd))),
                Err(Errno::EXIST) => last = Some(Errno::EXIST),
                Err(e) => return Err(e.into()),
            }
        }
        Err(last.unwrap_or(Errno::EXIST).into())
    }

    pub fn chown(file: &File, uid: u32, gid: u32) -> std::io::Result<()> {
        Ok(rustix::fs::fchown(
            file,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        )?)
    }

    pub fn mode(file: &File) -> std::io::Result<u32> {
        use std::os::unix::fs::MetadataExt;
        Ok(file.metadata()?.mode() & 0o7777)
    }

    pub fn chmod(file: &File, mode: u32) -> std::io::Result<()> {
        Ok(rustix::fs::fchmod(file, Mode::from_raw_mode(mode))?)
    }

    pub fn rename(dir: &File, from: &OsStr, to: &OsStr) -> std::io::Result<()> {
        Ok(rustix::fs::renameat(dir, from, dir, to)?)
    }

    pub fn unlink(dir: &File, name: &OsStr) -> std::io::Result<()> {
        Ok(rustix::fs::unlinkat(dir, name, AtFlags::empty())?)
    }

    pub fn mkdir(dir: &File, name: &OsStr, mode: u32) -> std::io::Result<()> {
        match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(mode)) {
            Ok(()) | Err(Errno::EXIST) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub fn sync_dir(dir: &File) -> std::io::Result<()> {
        match rustix::fs::fsync(dir) {
            // A search-only handle cannot be flushed; the file system still orders the rename.
            Ok(()) | Err(Errno::BADF) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub fn entries(dir: &File) -> std::io::Result<Vec<(OsString, Facts, bool)>> {
        let fd = rustix::fs::openat(
            dir,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut out = Vec::new();
        for entry in rustix::fs::Dir::read_from(&fd)? {
            let entry = entry?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes()).to_owned();
            if name == "." || name == ".." {
                continue;
            }
            // The entry itself, not where a link leads.
            let Ok(fd) = rustix::fs::openat(
                &fd,
                name.as_os_str(),
                PASS | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) else {
                continue;
            };
            let meta = File::from(fd).metadata()?;
            out.push((name, Facts::of(&meta), meta.file_type().is_file()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_mode_asked_for_is_the_mode_written() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("config.toml");
        std::fs::write(&path, "old").expect("write");
        let facts = open_regular(&path).expect("open").facts;
        write_atomic_with(&path, b"new", Access::owned(0o640, facts.uid, facts.gid))
            .expect("write");
        let written = open_regular(&path).expect("open").facts;
        assert_eq!(written.mode, 0o640, "a rollback puts the mode back");
    }

    #[test]
    fn a_write_replaces_a_link_instead_of_writing_through_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, "precious").expect("victim");
        let path = tmp.path().join("config.toml");
        std::os::unix::fs::symlink(&victim, &path).expect("link");
        write_atomic(&path, b"new").expect("write");
        assert_eq!(
            std::fs::read_to_string(&victim).expect("victim"),
            "precious",
            "the link's target is never written"
        );
        assert!(
            !std::fs::symlink_metadata(&path)
                .expect("meta")
                .file_type()
                .is_symlink(),
            "the link itself was replaced by a regular file"
        );
    }

    #[test]
    fn only_regular_files_are_read_and_only_up_to_the_limit() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let link = tmp.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &link).expect("link");
        let err = read_limited(&link, 1024).expect_err("a link is not followed");
        assert!(
            err.to_string().contains("symbolic link"),
            "and says why: {err}"
        );
        let err = read_limited(Path::new("/dev/zero"), 1024).expect_err("a device is not read");
        assert!(
            err.to_string().contains("not a regular file"),
            "and says why: {err}"
        );
        let big = tmp.path().join("big");
        File::create(&big)
            .and_then(|f| f.set_len(4096))
            .expect("big");
        let err = read_limited(&big, 1024).expect_err("too large");
        assert!(err.to_string().contains("larger than"), "says why: {err}");
        assert_eq!(
            read_limited(&big, 4096).expect("at the limit").len(),
            4096,
            "a file of exactly the limit is read"
        );
        assert!(
            read_optional(&tmp.path().join("absent"))
                .expect("absent")
                .is_none(),
            "an absent optional file is None, not an error"
        );
    }

    #[test]
    fn links_are_followed_only_where_root_alone_could_make_them() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let real = tmp.path().join("real");
        std::fs::create_dir(&real).expect("real");
        std::fs::write(real.join("file"), "content").expect("file");
        std::os::unix::fs::symlink(&real, tmp.path().join("via")).expect("link");
        // Made by the agent's own user in a directory only it can write: followed.
        assert_eq!(
            read_limited(&tmp.path().join("via/file"), 100).expect("trusted link"),
            b"content",
            "a link in a directory only the agent can change is followed"
        );
        let open = tmp.path().join("open");
        std::fs::create_dir(&open).expect("open");
        set_mode(&open, 0o777).expect("mode");
        std::os::unix::fs::symlink(&real, open.join("via")).expect("link");
        let err = read_limited(&open.join("via/file"), 100)
            .expect_err("a link anyone could have made is not followed");
        assert!(err.to_string().contains("symbolic link"), "says why: {err}");
        // Below a directory handle, no link is followed at all.
        let dir = Dir::open(tmp.path()).expect("dir");
        assert!(
            dir.subdir(Path::new("via")).is_err(),
            "inside a service's directory a link is never followed"
        );
        assert!(
            dir.subdir(Path::new("../etc")).is_err(),
            "and `..` cannot climb out"
        );
    }

    #[test]
    fn a_bare_file_name_is_in_the_working_directory() {
        assert_eq!(
            split(Path::new("code.txt")).expect("split").0,
            Path::new("."),
            "not the empty path, which cannot be opened"
        );
        assert_eq!(
            split(Path::new("/var/lib/gh/fleet.json")).expect("split").0,
            Path::new("/var/lib/gh"),
            "a path's own directory otherwise"
        );
        assert!(split(Path::new("/")).is_err(), "the root names no file");
    }

    #[test]
    fn a_path_with_a_nul_byte_is_no_file_name() {
        assert!(is_file_name(Path::new("/var/log/a.log")), "a path is");
        assert!(
            !is_file_name(Path::new("/var/log/a\0b.log")),
            "a NUL byte cannot be in a path"
        );
        assert!(!is_file_name(Path::new("")), "nor can a path be empty");
    }
}
