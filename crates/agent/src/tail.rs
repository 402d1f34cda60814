//! Following logs: appended lines become events in the buffer.
//!
//! Rotation by rename: the old file is read to its end before the new one is opened at its
//! start. Rotation by copytruncate: a file shorter than the offset reached is read again from
//! its start. A file that disappears is reported once and followed again when it returns.
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

use crate::buffer::{Buffer, NewEvent, Position};
use crate::clock::Clock;
pub use crate::config::LogConfig;
use crate::config::LogOrigin;
use crate::journal::JournalTailer;
use crate::logevent::{event, marker, Backoff};

/// How often the followed logs are read.
const TAIL_EVERY: Duration = Duration::from_millis(250);
/// Most bytes read from one file in one poll, so one busy log cannot starve the others.
const CHUNK: usize = 4 << 20;
/// After a rename, the old file is still read until it has been idle this many polls (5 s):
/// a service writes to it until it is told to reopen its log.
const DRAIN_IDLE_POLLS: u32 = 20;
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
    while !stop.load(Ordering::Relaxed) {
        let now_us = clock.micros();
        for follower in &mut followers {
            // Errors are reported and retried inside each follower, with back-off.
            let _ = match follower {
                Follower::File(tailer) => tailer.poll(&mut lock(), now_us),
                Follower::Journal(journal) => journal.poll(&mut lock(), now_us),
            };
        }
        std::thread::sleep(TAIL_EVERY);
    }
    // Dropping a journal follower stops its journalctl.
    drop(followers);
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
    offset: u64,
    partial: Vec<u8>,
    discarding: bool,
    idle_polls: u32,
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
                // Whatever was open is let go: the next try starts from the saved position.
                self.file = None;
                self.resumed = buffer.position(&self.key).ok().flatten().or(self.committed);
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
                        let keep = self.committed.or(self.resumed).unwrap_or_default();
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
            self.open(&mut events, now_us)?;
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
            // No file open: only a marker (missing file) to store; keep the saved position.
            if added > 0 {
                let keep = self.resumed.unwrap_or_default();
                buffer
                    .append(&events, &self.key, keep, now_us)
                    .map_err(std::io::Error::other)?;
            }
            return Ok(added);
        };
        let position = Position {
            file_id: *file_id,
            offset: self.offset - self.partial.len() as u64,
        };
        // An idle poll writes nothing: no transaction, no fsync, four times a second.
        if added > 0 || self.committed != Some(position) {
            buffer
                .append(&events, &self.key, position, now_us)
                .map_err(std::io::Error::other)?;
            self.committed = Some(position);
        }
        Ok(added)
    }

    fn open(&mut self, events: &mut Vec<NewEvent>, now_us: i64) -> std::io::Result<()> {
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
        self.offset = match self.resumed.take() {
            // The same file as before a restart, and it has not shrunk: carry on.
            Some(p) if p.file_id == id && p.offset <= len => p.offset,
            Some(_) => {
                events.push(self.marker(
                    now_us,
                    Kind::Log,
                    "The log was rotated or replaced while the agent was not reading it; lines written in between may be missing.",
                ));
                0
            }
            None => 0,
        };
        self.partial.clear();
        self.discarding = false;
        self.missing_reported = false;
        self.head = read_head(&file)?;
        self.file = Some((file, id));
        Ok(())
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
    fn on_truncation(&mut self, events: &mut Vec<NewEvent>, now_us: i64) {
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

    fn check_rotation(&mut self, events: &mut Vec<NewEvent>, now_us: i64) -> std::io::Result<()> {
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
                if let Some((file, _)) = self.file.take() {
                    if let Some(previous) = self.draining.take() {
                        // Rotated twice within the drain window: finish the older one now.
                        self.finish_drain(previous, events, now_us);
                    }
                    self.draining = Some(Drain {
                        file,
                        offset: self.offset,
                        partial: std::mem::take(&mut self.partial),
                        discarding: std::mem::take(&mut self.discarding),
                        idle_polls: 0,
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

    fn report_missing(&mut self, events: &mut Vec<NewEvent>, now_us: i64) {
        if !self.missing_reported {
            self.missing_reported = true;
            let message = format!(
                "The log file {} is missing; it will be followed again when it reappears.",
                self.key
            );
            events.push(self.marker(now_us, Kind::Log, &message));
        }
    }

    fn lines(&mut self, chunk: &[u8], events: &mut Vec<NewEvent>, now_us: i64) {
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
    fn drain(&mut self, events: &mut Vec<NewEvent>, now_us: i64) -> std::io::Result<()> {
        let Some(mut old) = self.draining.take() else {
            return Ok(());
        };
        let mut chunk = Vec::new();
        old.file.seek(SeekFrom::Start(old.offset))?;
        (&old.file).take(CHUNK as u64).read_to_end(&mut chunk)?;
        old.offset += chunk.len() as u64;
        old.idle_polls = if chunk.is_empty() {
            old.idle_polls + 1
        } else {
            0
        };
        // Split its lines with its own partial-line state.
        std::mem::swap(&mut self.partial, &mut old.partial);
        std::mem::swap(&mut self.discarding, &mut old.discarding);
        self.lines(&chunk, events, now_us);
        std::mem::swap(&mut self.partial, &mut old.partial);
        std::mem::swap(&mut self.discarding, &mut old.discarding);
        if old.idle_polls >= DRAIN_IDLE_POLLS {
            self.finish_drain(old, events, now_us);
        } else {
            self.draining = Some(old);
        }
        Ok(())
    }

    /// The old file's unterminated last line is complete once the file is let go.
    fn finish_drain(&mut self, mut old: Drain, events: &mut Vec<NewEvent>, now_us: i64) {
        if !old.partial.is_empty() && !old.discarding {
            let line = std::mem::take(&mut old.partial);
            events.push(self.event(&line, 0, now_us));
        }
    }

    fn event(&self, line: &[u8], flag_bits: u32, now_us: i64) -> NewEvent {
        event(&self.config, line, flag_bits, now_us, None)
    }

    fn marker(&self, now_us: i64, kind: Kind, message: &str) -> NewEvent {
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
