//! Following logs: appended lines become events in the buffer.
//!
//! Rotation by rename: the old file is read to its end before the new one is opened at its
//! start. Rotation by copytruncate: a file shorter than the offset reached is read again from
//! its start. A file that disappears is reported once and followed again when it returns.
//!
//! The position stored with each batch carries the file's first bytes and, while a renamed
//! file is still read, that file's identity and offset. A restarted agent (killed, say) finds
//! a log rotated away while it was down, or while it was still reading it, beside the log by
//! its identity (`access.log.1`, `access.log.2`, ...) and reads it to its end; a log truncated
//! while it was down is told by its first bytes, even when written past the old offset again.
//! `tests/cli/faults.rs` counts every line across kills and rotations.
//! Every line becomes an event: one that no parser understands is kept as `unparsed` with its
//! raw text; invalid UTF-8, over-long lines and times from the future are flagged.
//!
//! A log may sit where the service's account can swap it for a link: a log is opened without
//! following a link and read only if it is a regular file (`fsutil::open_regular`); anything
//! else is said once and treated as missing until a regular file is back.
//!
//! A log the agent cannot read (no permission, not a regular file, an I/O error) is reported
//! once, naming it and the reason, in the agent's log and as an event, and tried again with
//! back-off (1 s, doubling, at most every 5 minutes) rather than on every poll; the agent says
//! so again when it can read it.
//!
//! A unit's journal is followed by [`crate::journal`], in the same loop.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use gatehouse_events::{Kind, MAX_LINE};
use gatehouse_protocol::WireEvent;

use crate::buffer::{Buffer, Position};
use crate::clock::Clock;
pub use crate::config::LogConfig;
use crate::config::LogOrigin;
use crate::journal::JournalTailer;
use crate::logevent::{event, marker, Backoff};

/// How often the followed logs are read.
const TAIL_EVERY: Duration = Duration::from_millis(250);
/// Most bytes read from one file in one poll, so one busy log cannot starve the others.
const CHUNK: usize = 4 << 20;
/// After a rename, the old file is still read until it has been idle this long: a service
/// writes to it until it is told to reopen its log.
const DRAIN_IDLE_US: i64 = 5_000_000;
/// How many bytes of a log's start are kept to tell, on every poll, that it was truncated and
/// written again (copytruncate), even when it has grown past where reading stopped.
const HEAD: usize = 256;
/// The most of a rotated copy read to recover what was written before a copytruncate.
const COPY_MOST: u64 = 256 << 20;

/// Follow `logs` into `buffer` until `stop` is set, each from where the buffer says reading
/// stopped. Blocking: run it on a thread of its own.
pub fn follow(logs: &[LogConfig], buffer: &Mutex<Buffer>, clock: &Clock, stop: &AtomicBool) {
    // SQLite rolls back a transaction interrupted by a panic; the buffer stays usable.
    let lock = || buffer.lock().unwrap_or_else(PoisonError::into_inner);
    let mut followers: Vec<Follower> = Vec::new();
    for log in logs {
        let made = match &log.origin {
            LogOrigin::File(_) => Tailer::new(log.clone(), &lock()).map(Follower::File),
            LogOrigin::Journal(unit) => {
                JournalTailer::new(unit.clone(), log.clone(), &lock()).map(Follower::Journal)
            }
        };
        match made {
            Ok(follower) => followers.push(follower),
            Err(e) => {
                tracing::error!(log = %log.name(), error = %e, "cannot follow log")
            }
        }
    }
    let wake = Wake::new(logs);
    while !stop.load(Ordering::Relaxed) {
        let now_us = clock.micros();
        for follower in &mut followers {
            // Errors are reported and retried inside each follower, with back-off.
            let _ = match follower {
                Follower::File(tailer) => tailer.poll(&mut lock(), now_us),
                Follower::Journal(journal) => journal.poll(&mut lock(), now_us),
            };
        }
        wake.wait(TAIL_EVERY);
    }
    // Dropping a journal follower stops its journalctl.
    drop(followers);
}

/// What ends the reader's wait: a followed file written, created or renamed into place
/// (inotify on the files' directories, names filtered), or [`TAIL_EVERY`] at the latest. A
/// line is read within about a millisecond of its write instead of up to 250 ms later. Rounds
/// are at least [`MIN_ROUND`] apart, so a flood of writes is read in batches, not one
/// transaction per write. Where inotify is missing (not Linux, or no watch left) it sleeps.
struct Wake {
    #[cfg(target_os = "linux")]
    inotify: Option<(
        rustix::fd::OwnedFd,
        std::collections::HashSet<std::ffi::OsString>,
    )>,
}

/// The shortest time between two reading rounds.
const MIN_ROUND: Duration = Duration::from_millis(10);

impl Wake {
    fn new(logs: &[LogConfig]) -> Self {
        #[cfg(target_os = "linux")]
        {
            Wake {
                inotify: Self::watch(logs)
                    .map_err(
                        |e| tracing::info!(error = %e, "no inotify: logs are read every 250 ms"),
                    )
                    .ok()
                    .flatten(),
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = logs;
            Wake {}
        }
    }

    #[cfg(target_os = "linux")]
    fn watch(
        logs: &[LogConfig],
    ) -> std::io::Result<
        Option<(
            rustix::fd::OwnedFd,
            std::collections::HashSet<std::ffi::OsString>,
        )>,
    > {
        use rustix::fs::inotify;
        let mut names = std::collections::HashSet::new();
        let mut dirs = std::collections::BTreeSet::new();
        for log in logs {
            if let LogOrigin::File(path) = &log.origin {
                if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
                    dirs.insert(if dir.as_os_str().is_empty() {
                        std::path::Path::new(".")
                    } else {
                        dir
                    });
                    names.insert(name.to_owned());
                }
            }
        }
        if names.is_empty() {
            return Ok(None);
        }
        let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)?;
        for dir in dirs {
            // A directory not there yet is followed by the 250 ms rounds.
            let _ = inotify::add_watch(
                &fd,
                dir,
                inotify::WatchFlags::MODIFY
                    | inotify::WatchFlags::CREATE
                    | inotify::WatchFlags::MOVED_TO
                    | inotify::WatchFlags::CLOSE_WRITE,
            );
        }
        Ok(Some((fd, names)))
    }

    /// Wait until a followed file changes, at most `longest`.
    fn wait(&self, longest: Duration) {
        let started = std::time::Instant::now();
        std::thread::sleep(MIN_ROUND);
        #[cfg(target_os = "linux")]
        if let Some((fd, names)) = &self.inotify {
            use rustix::event::{poll, PollFd, PollFlags, Timespec};
            use rustix::fs::inotify;
            use std::os::unix::ffi::OsStrExt;
            let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
            loop {
                // What arrived already (during the round or the pause) counts.
                let mut relevant = false;
                let mut reader = inotify::Reader::new(fd, &mut buf);
                while let Ok(event) = reader.next() {
                    relevant |= event
                        .file_name()
                        .is_none_or(|n| names.contains(std::ffi::OsStr::from_bytes(n.to_bytes())));
                }
                if relevant {
                    return;
                }
                let Some(left) = longest.checked_sub(started.elapsed()) else {
                    return;
                };
                let timeout = Timespec {
                    tv_sec: left.as_secs() as i64,
                    tv_nsec: i64::from(left.subsec_nanos()),
                };
                let mut fds = [PollFd::new(fd, PollFlags::IN)];
                match poll(&mut fds, Some(&timeout)) {
                    Ok(0) => return,
                    Ok(_) => continue,
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(_) => break,
                }
            }
        }
        std::thread::sleep(longest.saturating_sub(started.elapsed()));
    }
}

enum Follower {
    File(Tailer),
    Journal(JournalTailer),
}

#[derive(Debug)]
pub struct Tailer {
    config: LogConfig,
    key: String,
    file: Option<(File, u64)>,
    offset: u64,
    /// The start of a line whose newline has not been written yet.
    partial: Vec<u8>,
    /// Set while skipping the rest of a line already cut at MAX_LINE.
    discarding: bool,
    missing_reported: bool,
    /// Set while the log cannot be read: when to try again.
    failing: Option<Backoff>,
    resumed: Option<Position>,
    /// The position last written to the buffer.
    committed: Option<Position>,
    /// The file a rename rotated away, still being read.
    draining: Option<Drain>,
    /// The first bytes of the open file (at most `HEAD`), as last seen.
    head: Vec<u8>,
}

#[derive(Debug)]
struct Drain {
    file: File,
    /// The file's identity, stored with the position so a restarted agent finds it again.
    id: u64,
    offset: u64,
    partial: Vec<u8>,
    discarding: bool,
    /// When it was first found with nothing new, since it last had something.
    idle_since_us: Option<i64>,
}

impl Tailer {
    /// A tailer that resumes where the buffer says reading stopped.
    pub fn new(config: LogConfig, buffer: &Buffer) -> rusqlite::Result<Self> {
        let key = config.name();
        let resumed = buffer.position(&key)?;
        Ok(Tailer {
            config,
            key,
            file: None,
            offset: 0,
            partial: Vec::new(),
            discarding: false,
            missing_reported: false,
            failing: None,
            resumed,
            committed: None,
            draining: None,
            head: Vec::new(),
        })
    }

    /// The log's file.
    fn path(&self) -> &std::path::Path {
        match &self.config.origin {
            LogOrigin::File(path) => path,
            // `follow` makes a `Tailer` only for files; a journal has no path to open.
            LogOrigin::Journal(_) => std::path::Path::new(""),
        }
    }

    /// Read what was appended since the last poll into `buffer`. Returns how many events
    /// were added. A log that cannot be read is reported once (the agent's log and an event,
    /// both naming it) and tried again with back-off; that is not an error of the poll.
    pub fn poll(&mut self, buffer: &mut Buffer, now_us: i64) -> std::io::Result<usize> {
        if self.failing.as_ref().is_some_and(|b| !b.due()) {
            return Ok(0);
        }
        match self.read_more(buffer, now_us) {
            Ok(added) => {
                if self.failing.take().is_some() {
                    tracing::info!(log = %self.key, "the log is read again");
                }
                Ok(added)
            }
            Err(e) => {
                // Whatever was open is let go: the next try starts from the saved position
                // (a rotated-away file still being read, too).
                self.file = None;
                self.draining = None;
                self.resumed = buffer
                    .position(&self.key)
                    .ok()
                    .flatten()
                    .or_else(|| self.committed.clone());
                self.partial.clear();
                self.discarding = false;
                match &mut self.failing {
                    Some(backoff) => backoff.again(),
                    None => {
                        let backoff = Backoff::start();
                        tracing::warn!(
                            log = %self.key,
                            error = %e,
                            "cannot read the log; trying again with back-off (at most every 5 minutes)"
                        );
                        let message = format!(
                            "The log {} cannot be read: {e}. The agent tries again, less and less often (at most every 5 minutes), and says when it can read it.",
                            self.key
                        );
                        let marker = marker(&self.key, now_us, Kind::Log, &message);
                        let keep = self
                            .committed
                            .clone()
                            .or_else(|| self.resumed.clone())
                            .unwrap_or_default();
                        if let Err(e) = buffer.append(&[marker], &self.key, keep, now_us) {
                            tracing::error!(log = %self.key, error = %e, "cannot store an event");
                        }
                        self.failing = Some(backoff);
                    }
                }
                Ok(0)
            }
        }
    }

    fn read_more(&mut self, buffer: &mut Buffer, now_us: i64) -> std::io::Result<usize> {
        let mut events = Vec::new();
        // Lines still written to a rotated-away file come before the new file's.
        self.drain(&mut events, now_us)?;
        if self.file.is_none() {
            let draining = self.draining.is_some();
            self.open(&mut events, now_us)?;
            if !draining && self.draining.is_some() {
                // A file rotated away while the agent was not reading: its rest comes first.
                self.drain(&mut events, now_us)?;
            }
        }
        if self.file.is_some() && self.truncated()? {
            self.on_truncation(&mut events, now_us);
        }
        if let Some((file, _)) = self.file.as_mut() {
            let mut chunk = Vec::new();
            file.seek(SeekFrom::Start(self.offset))?;
            file.take(CHUNK as u64).read_to_end(&mut chunk)?;
            self.offset += chunk.len() as u64;
            self.lines(&chunk, &mut events, now_us);
            if chunk.is_empty() {
                self.check_rotation(&mut events, now_us)?;
            }
        }
        let added = events.len();
        let Some((_, file_id)) = &self.file else {
            // No file open (the log was renamed and not yet recreated): store what was read,
            // keeping the last position and where the renamed file was read up to.
            if added > 0 {
                let mut keep = self
                    .committed
                    .clone()
                    .or_else(|| self.resumed.clone())
                    .unwrap_or_default();
                if let Some(d) = &self.draining {
                    let at = d.offset - d.partial.len() as u64;
                    if d.id == keep.file_id {
                        // The renamed file is the one the position was in: read on there.
                        keep.offset = at;
                        keep.rotated = None;
                    } else {
                        keep.rotated = Some((d.id, at));
                    }
                }
                buffer
                    .append(&events, &self.key, keep, now_us)
                    .map_err(std::io::Error::other)?;
            }
            return Ok(added);
        };
        let position = Position {
            file_id: *file_id,
            offset: self.offset - self.partial.len() as u64,
            head: self.head.clone(),
            rotated: self
                .draining
                .as_ref()
                .map(|d| (d.id, d.offset - d.partial.len() as u64)),
        };
        // An idle poll writes nothing: no transaction, no fsync, four times a second.
        if added > 0 || self.committed.as_ref() != Some(&position) {
            buffer
                .append(&events, &self.key, position.clone(), now_us)
                .map_err(std::io::Error::other)?;
            self.committed = Some(position);
        }
        Ok(added)
    }

    fn open(&mut self, events: &mut Vec<WireEvent>, now_us: i64) -> std::io::Result<()> {
        let file = match crate::fsutil::open_regular(self.path()) {
            Ok(regular) => regular.file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.report_missing(events, now_us);
                return Ok(());
            }
            // No permission, a link, something other than a regular file: never read,
            // reported once by `poll`, tried again with back-off.
            Err(e) => return Err(e),
        };
        let id = file_id(&file)?;
        let len = file.metadata()?.len();
        let head = read_head(&file)?;
        self.partial.clear();
        self.discarding = false;
        self.missing_reported = false;
        self.offset = 0;
        let resumed = self.resumed.take();
        // A file rotated away by rename and not read to its end when reading stopped: read on
        // in it, wherever logrotate has moved it since.
        if let Some((rotated, offset)) = resumed
            .as_ref()
            .and_then(|p| p.rotated.filter(|(id, _)| *id != p.file_id))
        {
            if !self.resume_drain(rotated, offset, &[], events, now_us) {
                events.push(self.marker(
                    now_us,
                    Kind::Log,
                    "A log rotated away before the agent had read it to its end is gone; lines written to it last may be missing.",
                ));
            }
        }
        match resumed {
            None => {}
            Some(p) if p.file_id == id => {
                let common = p.head.len().min(head.len());
                if p.offset <= len && p.head[..common] == head[..common] {
                    // The same file as before, neither shrunk nor written anew: carry on.
                    self.offset = p.offset;
                } else {
                    // Truncated in place while the agent was not reading (copytruncate), and
                    // perhaps written past the old position again: as if seen on a poll.
                    self.file = Some((file, id));
                    self.offset = p.offset;
                    self.head = p.head;
                    self.on_truncation(events, now_us);
                    return Ok(());
                }
            }
            // Another file: the one being read was rotated away while the agent was not
            // reading. Its rest is read where logrotate put it, before the new file; if it is
            // gone, that is said.
            Some(p) if self.resume_drain(p.file_id, p.offset, &p.head, events, now_us) => {}
            Some(_) => {
                events.push(self.marker(
                    now_us,
                    Kind::Log,
                    "The log was rotated or replaced while the agent was not reading it; lines written in between may be missing.",
                ));
            }
        }
        self.head = head;
        self.file = Some((file, id));
        Ok(())
    }

    /// Read on from `offset` in the file `id`, rotated away from the log by rename: found
    /// beside the log under a name that starts with the log's (`access.log.1`,
    /// `access.log-20261207`). A file still being read that way is finished first. Whether
    /// the file was found with at least `offset` bytes.
    fn resume_drain(
        &mut self,
        id: u64,
        offset: u64,
        head: &[u8],
        events: &mut Vec<WireEvent>,
        now_us: i64,
    ) -> bool {
        let Some(file) = self.rotated_file(id) else {
            return false;
        };
        if file.metadata().map_or(true, |m| m.len() < offset) {
            return false;
        }
        // An inode number is reused once its file is deleted: the file must also start as the
        // one read did, when that is known.
        let starts = read_head(&file).unwrap_or_default();
        let common = starts.len().min(head.len());
        if starts[..common] != head[..common] {
            return false;
        }
        if self.draining.is_some() {
            // Two rotations while the agent was not reading: the older file to its end now.
            loop {
                let before = self.draining.as_ref().map(|d| d.offset);
                if self.drain(events, now_us).is_err() {
                    break;
                }
                let after = self.draining.as_ref().map(|d| d.offset);
                if after.is_none() || after == before {
                    break;
                }
            }
            if let Some(older) = self.draining.take() {
                self.finish_drain(older, events, now_us);
            }
        }
        self.draining = Some(Drain {
            file,
            id,
            offset,
            partial: Vec::new(),
            discarding: false,
            idle_since_us: None,
        });
        true
    }

    /// The file `id` beside the log, under a name that starts with the log's; a regular file
    /// opened without following a link, as the log itself is.
    fn rotated_file(&self, id: u64) -> Option<File> {
        if id == 0 {
            return None;
        }
        let path = self.path();
        let name = path.file_name()?.to_string_lossy().into_owned();
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => std::path::Path::new("."),
        };
        // Compressed copies (logrotate's compress) are not the file that was being read.
        const COMPRESSED: [&str; 5] = [".gz", ".xz", ".zst", ".bz2", ".lz4"];
        for entry in std::fs::read_dir(dir).ok()?.flatten() {
            let entry_name = entry.file_name().to_string_lossy().into_owned();
            if entry_name == name
                || !entry_name.starts_with(&name)
                || COMPRESSED.iter().any(|c| entry_name.ends_with(c))
            {
                continue;
            }
            let candidate = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&candidate) else {
                continue;
            };
            if !meta.is_file() || metadata_id(&meta) != id {
                continue;
            }
            if let Ok(regular) = crate::fsutil::open_regular(&candidate) {
                if file_id(&regular.file).ok() == Some(id) {
                    return Some(regular.file);
                }
            }
        }
        None
    }

    /// Whether the open file was truncated since the last poll: shorter than where reading
    /// stopped, or its first bytes are not what they were (truncated and written past that
    /// point again between two polls).
    fn truncated(&mut self) -> std::io::Result<bool> {
        let Some((file, _)) = &self.file else {
            return Ok(false);
        };
        if file.metadata()?.len() < self.offset {
            return Ok(true);
        }
        let head = read_head(file)?;
        let common = head.len().min(self.head.len());
        if head[..common] != self.head[..common] {
            return Ok(true);
        }
        if head.len() > self.head.len() {
            self.head = head;
        }
        Ok(false)
    }

    /// The file was truncated in place. What was written after the last read and before the
    /// truncation is in the copy logrotate made (`<log>.1`) if it made one: read it from there
    /// when the copy starts as this file did, then start the file again from 0. Otherwise say
    /// that those lines may be missing.
    fn on_truncation(&mut self, events: &mut Vec<WireEvent>, now_us: i64) {
        let before = events.len();
        let copy = {
            let mut name = self.path().as_os_str().to_owned();
            name.push(".1");
            std::path::PathBuf::from(name)
        };
        let recovered = crate::fsutil::open_regular(&copy).ok().and_then(|regular| {
            let len = regular.facts.size;
            let mut file = regular.file;
            let head = read_head(&file).ok()?;
            let common = head.len().min(self.head.len());
            (len >= self.offset && common > 0 && head[..common] == self.head[..common])
                .then_some(())?;
            let mut rest = Vec::new();
            file.seek(SeekFrom::Start(self.offset)).ok()?;
            file.take(COPY_MOST).read_to_end(&mut rest).ok()?;
            Some(rest)
        });
        let message = match recovered {
            Some(rest) => {
                self.lines(&rest, events, now_us);
                format!(
                    "The log was truncated in place (copytruncate); {} line(s) written since the last read were read from {}, and the log is read again from the start.",
                    events.len() - before + usize::from(!self.partial.is_empty() && !self.discarding),
                    copy.display()
                )
            }
            None => format!(
                "The log was truncated in place (copytruncate) and reading it again from the start; lines written between the last read and the truncation may be missing (no copy at {} that starts as the log did).",
                copy.display()
            ),
        };
        // The unfinished last line before the truncation will never be finished.
        if !self.partial.is_empty() && !self.discarding {
            let line = std::mem::take(&mut self.partial);
            events.push(self.event(&line, 0, now_us));
        }
        self.offset = 0;
        self.partial.clear();
        self.discarding = false;
        self.head.clear();
        if let Some((file, _)) = &self.file {
            self.head = read_head(file).unwrap_or_default();
        }
        events.push(self.marker(now_us, Kind::Log, &message));
    }

    fn check_rotation(&mut self, events: &mut Vec<WireEvent>, now_us: i64) -> std::io::Result<()> {
        let Some((_, id)) = &self.file else {
            return Ok(());
        };
        // The entry itself: a log swapped for a link is a new file (and refused when opened).
        match std::fs::symlink_metadata(self.path()) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Renamed away and not yet recreated: keep reading the old file meanwhile.
                self.report_missing(events, now_us);
                Ok(())
            }
            Err(e) => Err(e),
            Ok(meta) if metadata_id(&meta) != *id => {
                // Renamed and recreated: the new file starts at 0; the old one is kept and
                // read until it falls silent (the service may not have reopened yet).
                if let Some((file, old_id)) = self.file.take() {
                    if let Some(previous) = self.draining.take() {
                        // Rotated twice within the drain window: finish the older one now.
                        self.finish_drain(previous, events, now_us);
                    }
                    self.draining = Some(Drain {
                        file,
                        id: old_id,
                        offset: self.offset,
                        partial: std::mem::take(&mut self.partial),
                        discarding: std::mem::take(&mut self.discarding),
                        idle_since_us: None,
                    });
                }
                self.resumed = None;
                self.open(events, now_us)
            }
            Ok(meta) if meta.len() < self.offset => {
                self.on_truncation(events, now_us);
                Ok(())
            }
            Ok(_) => Ok(()),
        }
    }

    fn report_missing(&mut self, events: &mut Vec<WireEvent>, now_us: i64) {
        if !self.missing_reported {
            self.missing_reported = true;
            let message = format!(
                "The log file {} is missing; it will be followed again when it reappears.",
                self.key
            );
            events.push(self.marker(now_us, Kind::Log, &message));
        }
    }

    fn lines(&mut self, chunk: &[u8], events: &mut Vec<WireEvent>, now_us: i64) {
        let mut rest = chunk;
        while let Some(newline) = memchr::memchr(b'\n', rest) {
            let piece = &rest[..newline];
            rest = &rest[newline + 1..];
            if self.discarding {
                self.discarding = false;
                continue;
            }
            if self.partial.is_empty() {
                events.push(self.event(strip_cr(piece), 0, now_us));
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(piece);
                events.push(self.event(strip_cr(&line), 0, now_us));
            }
        }
        if !self.discarding {
            self.partial.extend_from_slice(rest);
            if self.partial.len() > MAX_LINE {
                // Keep the line's start (cut and flagged by `event`), skip the rest of it.
                let line = std::mem::take(&mut self.partial);
                events.push(self.event(&line, 0, now_us));
                self.discarding = true;
            }
        }
    }

    /// Read what was appended to the rotated-away file; let it go once idle long enough.
    fn drain(&mut self, events: &mut Vec<WireEvent>, now_us: i64) -> std::io::Result<()> {
        let Some(mut old) = self.draining.take() else {
            return Ok(());
        };
        let mut chunk = Vec::new();
        let read = old
            .file
            .seek(SeekFrom::Start(old.offset))
            .and_then(|_| (&old.file).take(CHUNK as u64).read_to_end(&mut chunk));
        if let Err(e) = read {
            // Kept: the next poll tries it again, or a restart resumes it from its position.
            self.draining = Some(old);
            return Err(e);
        }
        old.offset += chunk.len() as u64;
        old.idle_since_us = if chunk.is_empty() {
            old.idle_since_us.or(Some(now_us))
        } else {
            None
        };
        // Split its lines with its own partial-line state.
        std::mem::swap(&mut self.partial, &mut old.partial);
        std::mem::swap(&mut self.discarding, &mut old.discarding);
        self.lines(&chunk, events, now_us);
        std::mem::swap(&mut self.partial, &mut old.partial);
        std::mem::swap(&mut self.discarding, &mut old.discarding);
        if old
            .idle_since_us
            .is_some_and(|t| now_us - t >= DRAIN_IDLE_US)
        {
            self.finish_drain(old, events, now_us);
        } else {
            self.draining = Some(old);
        }
        Ok(())
    }

    /// The old file's unterminated last line is complete once the file is let go.
    fn finish_drain(&mut self, mut old: Drain, events: &mut Vec<WireEvent>, now_us: i64) {
        if !old.partial.is_empty() && !old.discarding {
            let line = std::mem::take(&mut old.partial);
            events.push(self.event(&line, 0, now_us));
        }
    }

    fn event(&self, line: &[u8], flag_bits: u32, now_us: i64) -> WireEvent {
        event(&self.config, line, flag_bits, now_us, None)
    }

    fn marker(&self, now_us: i64, kind: Kind, message: &str) -> WireEvent {
        marker(&self.key, now_us, kind, message)
    }
}

/// The first bytes of `file` (at most `HEAD`), read without moving its cursor's meaning:
/// every read seeks first.
fn read_head(mut file: &File) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(HEAD);
    file.seek(SeekFrom::Start(0))?;
    file.take(HEAD as u64).read_to_end(&mut head)?;
    Ok(head)
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(unix)]
fn metadata_id(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.ino()
}

#[cfg(not(unix))]
fn metadata_id(_meta: &std::fs::Metadata) -> u64 {
    // The agent targets Linux; elsewhere rotation by rename is seen as truncation.
    0
}

fn file_id(file: &File) -> std::io::Result<u64> {
    Ok(metadata_id(&file.metadata()?))
}
