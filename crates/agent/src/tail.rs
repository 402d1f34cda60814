//! Following log files: appended lines become events in the buffer.
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

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use gatehouse_events::{Format, Kind, Outcome, MAX_LINE};
use gatehouse_protocol::flags;

use crate::buffer::{Buffer, NewEvent, Position};
use crate::clock::Clock;
pub use crate::config::LogConfig;

/// How often the followed logs are read.
const TAIL_EVERY: Duration = Duration::from_millis(250);
/// Most bytes read from one file in one poll, so one busy log cannot starve the others.
const CHUNK: usize = 4 << 20;
/// After a rename, the old file is still read until it has been idle this many polls (5 s):
/// a service writes to it until it is told to reopen its log.
const DRAIN_IDLE_POLLS: u32 = 20;
/// A line time this far ahead of the agent's clock is flagged and replaced by the time read.
const FUTURE_SLACK_US: i64 = 5 * 60 * 1_000_000;

/// Follow `logs` into `buffer` until `stop` is set, each from where the buffer says reading
/// stopped. Blocking: run it on a thread of its own.
pub fn follow(logs: &[LogConfig], buffer: &Mutex<Buffer>, clock: &Clock, stop: &AtomicBool) {
    // SQLite rolls back a transaction interrupted by a panic; the buffer stays usable.
    let lock = || buffer.lock().unwrap_or_else(PoisonError::into_inner);
    let mut tailers: Vec<Tailer> = Vec::new();
    for log in logs {
        match Tailer::new(log.clone(), &lock()) {
            Ok(t) => tailers.push(t),
            Err(e) => {
                tracing::error!(path = %log.path.display(), error = %e, "cannot follow log")
            }
        }
    }
    while !stop.load(Ordering::Relaxed) {
        let now_us = clock.micros();
        for tailer in &mut tailers {
            if let Err(e) = tailer.poll(&mut lock(), now_us) {
                tracing::warn!(error = %e, "reading a log failed; retrying");
            }
        }
        std::thread::sleep(TAIL_EVERY);
    }
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
    /// Set once the log was found to be something other than a regular file.
    refused_reported: bool,
    resumed: Option<Position>,
    /// The position last written to the buffer.
    committed: Option<Position>,
    /// The file a rename rotated away, still being read.
    draining: Option<Drain>,
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
        let key = config.path.display().to_string();
        let resumed = buffer.position(&key)?;
        Ok(Tailer {
            config,
            key,
            file: None,
            offset: 0,
            partial: Vec::new(),
            discarding: false,
            missing_reported: false,
            refused_reported: false,
            resumed,
            committed: None,
            draining: None,
        })
    }

    /// Read what was appended since the last poll into `buffer`. Returns how many events
    /// were added.
    pub fn poll(&mut self, buffer: &mut Buffer, now_us: i64) -> std::io::Result<usize> {
        let mut events = Vec::new();
        // Lines still written to a rotated-away file come before the new file's.
        self.drain(&mut events, now_us)?;
        if self.file.is_none() {
            self.open(&mut events, now_us)?;
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
        let file = match crate::fsutil::open_regular(&self.config.path) {
            Ok(regular) => regular.file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.report_missing(events, now_us);
                return Ok(());
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::InvalidInput
                ) =>
            {
                // A link or something other than a file: never read, said once.
                if !self.refused_reported {
                    self.refused_reported = true;
                    let message = format!("The log is not read: {e}.");
                    events.push(self.marker(now_us, Kind::Log, &message));
                }
                return Ok(());
            }
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
        self.refused_reported = false;
        self.file = Some((file, id));
        Ok(())
    }

    fn check_rotation(&mut self, events: &mut Vec<NewEvent>, now_us: i64) -> std::io::Result<()> {
        let Some((_, id)) = &self.file else {
            return Ok(());
        };
        // The entry itself: a log swapped for a link is a new file (and refused when opened).
        match std::fs::symlink_metadata(&self.config.path) {
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
                // The unfinished last line before the truncation will never be finished.
                if !self.partial.is_empty() && !self.discarding {
                    let line = std::mem::take(&mut self.partial);
                    events.push(self.event(&line, 0, now_us));
                }
                self.offset = 0;
                self.partial.clear();
                self.discarding = false;
                events.push(self.marker(now_us, Kind::Log, "The log was truncated in place (copytruncate); reading it again from the start."));
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

    fn event(&self, line: &[u8], mut flag_bits: u32, now_us: i64) -> NewEvent {
        let line = if line.len() > MAX_LINE {
            flag_bits |= flags::TRUNCATED;
            // Cut on a character boundary, so the cut itself does not look like bad UTF-8.
            let mut end = MAX_LINE;
            while end > MAX_LINE - 4 && line[end] & 0b1100_0000 == 0b1000_0000 {
                end -= 1;
            }
            &line[..end]
        } else {
            line
        };
        let raw = String::from_utf8_lossy(line);
        if matches!(raw, std::borrow::Cow::Owned(_)) {
            flag_bits |= flags::INVALID_UTF8;
        }
        let parsed = if flag_bits & flags::TRUNCATED != 0 {
            Err(gatehouse_events::Unparsed {
                reason: "line longer than 64 KiB",
            })
        } else {
            self.config.format.parse(line)
        };
        match parsed {
            Ok(p) => {
                let time_us = match p.time_us {
                    // A time from the future would sit at the top of the timeline for ever.
                    Some(t) if t > now_us + FUTURE_SLACK_US => {
                        flag_bits |= flags::FROM_THE_FUTURE | flags::TIME_FROM_AGENT;
                        now_us
                    }
                    Some(t) => t,
                    None => {
                        flag_bits |= flags::TIME_FROM_AGENT;
                        now_us
                    }
                };
                if self.config.format == Format::Structlog && p.ip.is_some() {
                    flag_bits |= flags::IP_SPOOFABLE;
                }
                if p.address_unreadable {
                    flag_bits |= flags::ADDRESS_UNREADABLE;
                }
                NewEvent {
                    time_us,
                    source: self.config.source.clone(),
                    kind: p.kind,
                    outcome: p.outcome,
                    actor: p.actor.map(Into::into),
                    key_prefix: p.key_prefix.map(Into::into),
                    ip: p.ip.map(Into::into),
                    method: p.method.map(Into::into),
                    path: p.path.map(Into::into),
                    status: p.status,
                    message: p.message.map(Into::into),
                    raw: raw.into_owned(),
                    flags: flag_bits,
                }
            }
            Err(unparsed) => NewEvent {
                time_us: now_us,
                source: self.config.source.clone(),
                kind: Kind::Unparsed,
                outcome: Outcome::Info,
                actor: None,
                key_prefix: None,
                ip: None,
                method: None,
                path: None,
                status: None,
                message: Some(unparsed.reason.to_owned()),
                raw: raw.into_owned(),
                flags: flag_bits | flags::TIME_FROM_AGENT,
            },
        }
    }

    fn marker(&self, now_us: i64, kind: Kind, message: &str) -> NewEvent {
        NewEvent {
            time_us: now_us,
            source: "agent".into(),
            kind,
            outcome: Outcome::Info,
            actor: None,
            key_prefix: None,
            ip: None,
            method: None,
            path: Some(self.key.clone()),
            status: None,
            message: Some(message.to_owned()),
            raw: String::new(),
            flags: 0,
        }
    }
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
