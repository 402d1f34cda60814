//! Following a systemd unit's journal: what the unit's own processes wrote (standard output,
//! standard error, the journal API), each message parsed with the log's format like a line of
//! a file, committed to the buffer with the cursor of the last entry read in one transaction.
//! After a restart, reading starts at that cursor (`journalctl --cursor`), whose own entry is
//! skipped: nothing is lost and nothing read twice. If the journal no longer holds that entry
//! (vacuumed while the agent was stopped), the agent says so with an event.
//!
//! The journal is read by `journalctl -o json --follow` as a child process, not by a reader
//! of journal files in Rust: journalctl is the reference reader, present wherever journald
//! is, and follows the file format's versions (compact mode, keyed hashes, three
//! compressions), rotation, vacuuming and the permission rules; a second reader of those
//! files would be the agent's to keep in step with systemd. It runs with the agent's
//! credentials, so it reads what the agent may read and nothing more. The match is
//! `_SYSTEMD_UNIT=<unit>`, a field journald sets itself from the writer's cgroup: the service
//! cannot write entries that look like another unit's, and systemd's own messages about the
//! unit (started, stopped) are not the service's lines.
//!
//! A journal the agent cannot read (journalctl missing, not allowed to read the system
//! journal, ended) is reported once, naming the unit and the reason, and tried again with
//! back-off, as a file is (`tail.rs`).

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::Read;
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use gatehouse_events::Kind;
use serde::Deserialize;

use crate::buffer::Buffer;
use crate::config::{JournalUnit, LogConfig};
use crate::logevent::{event, marker, Backoff};

/// Most bytes read from journalctl in one poll.
const CHUNK: usize = 4 << 20;
/// The longest line of journalctl's JSON kept: a 64 KiB message as an array of byte values.
const MAX_JSON_LINE: usize = 512 << 10;
/// Different warnings from journalctl reported, at most (each once).
const WARNINGS_KEPT: usize = 10;
/// A journalctl that has run this long without failing has recovered.
const RECOVERED_AFTER: Duration = Duration::from_secs(10);
/// How long a one-off read of the journal may take.
const ONE_OFF_TIMEOUT: Duration = Duration::from_secs(10);

/// The program that reads the journal.
pub const JOURNALCTL: &str = "journalctl";

/// Follows one unit's journal into the buffer.
#[derive(Debug)]
pub struct JournalTailer {
    log: LogConfig,
    unit: JournalUnit,
    key: String,
    program: OsString,
    running: Option<Running>,
    /// The cursor of the last entry stored with its event.
    cursor: Option<String>,
    failing: Option<Backoff>,
    warned: BTreeSet<String>,
}

#[derive(Debug)]
struct Running {
    child: Child,
    stdout: ChildStdout,
    stderr: ChildStderr,
    partial: Vec<u8>,
    discarding: bool,
    err_partial: Vec<u8>,
    /// The cursor journalctl started from: its entry comes first and was stored already.
    from: Option<String>,
    started: Instant,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One line of `journalctl -o json`.
#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "__CURSOR")]
    cursor: String,
    /// Microseconds since the epoch when journald received it, as a decimal string.
    #[serde(rename = "__REALTIME_TIMESTAMP", default)]
    realtime: Option<String>,
    #[serde(rename = "MESSAGE", default)]
    message: Option<Message>,
}

/// journalctl writes a field as a string when it is printable UTF-8, else as an array of
/// byte values (Sekha's ANSI colours make its lines arrays); a field given twice is an array
/// of those.
#[derive(Deserialize)]
#[serde(untagged)]
enum Message {
    Text(String),
    Bytes(Vec<u8>),
    Many(Vec<serde_json::Value>),
}

impl Message {
    fn into_bytes(self) -> Vec<u8> {
        match self {
            Message::Text(text) => text.into_bytes(),
            Message::Bytes(bytes) => bytes,
            Message::Many(values) => match values.into_iter().next() {
                Some(serde_json::Value::String(text)) => text.into_bytes(),
                Some(value) => serde_json::from_value::<Vec<u8>>(value).unwrap_or_default(),
                None => Vec::new(),
            },
        }
    }
}

impl JournalTailer {
    /// A follower of `unit`'s journal as `log`, resuming after the cursor the buffer holds
    /// for it.
    pub fn new(unit: JournalUnit, log: LogConfig, buffer: &Buffer) -> rusqlite::Result<Self> {
        let key = log.name();
        let cursor = buffer.cursor(&key)?;
        Ok(JournalTailer {
            log,
            unit,
            key,
            program: OsString::from(JOURNALCTL),
            running: None,
            cursor,
            failing: None,
            warned: BTreeSet::new(),
        })
    }

    /// Read the journal with another program taking journalctl's arguments (tests).
    pub fn with_program(mut self, program: impl Into<OsString>) -> Self {
        self.program = program.into();
        self
    }

    /// Store what journalctl wrote since the last poll. Returns how many events were added.
    /// A journal that cannot be read is reported once and tried again with back-off; that is
    /// not an error of the poll.
    pub fn poll(&mut self, buffer: &mut Buffer, now_us: i64) -> std::io::Result<usize> {
        if self.running.is_none() {
            if self.failing.as_ref().is_some_and(|b| !b.due()) {
                return Ok(0);
            }
            match self.start() {
                Ok(running) => self.running = Some(running),
                Err(e) => {
                    let why = format!("cannot run {}: {e}", self.program.to_string_lossy());
                    return Ok(self.fail(buffer, now_us, &why));
                }
            }
        }
        match self.read(buffer, now_us) {
            Ok(added) => Ok(added),
            Err(why) => {
                self.running = None;
                Ok(self.fail(buffer, now_us, &why))
            }
        }
    }

    fn start(&self) -> std::io::Result<Running> {
        let mut command = Command::new(&self.program);
        command.args([
            "--output=json",
            "--output-fields=MESSAGE",
            "--all",
            "--follow",
            "--no-tail",
            "--no-pager",
        ]);
        if let Some(cursor) = &self.cursor {
            command.arg(format!("--cursor={cursor}"));
        }
        command
            .arg(format!("_SYSTEMD_UNIT={}", self.unit))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn()?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other(
                "journalctl's output could not be captured",
            ));
        };
        for fd in [stdout_fd(&stdout), stderr_fd(&stderr)] {
            let flags = rustix::fs::fcntl_getfl(fd)?;
            rustix::fs::fcntl_setfl(fd, flags | rustix::fs::OFlags::NONBLOCK)?;
        }
        Ok(Running {
            child,
            stdout,
            stderr,
            partial: Vec::new(),
            discarding: false,
            err_partial: Vec::new(),
            from: self.cursor.clone(),
            started: Instant::now(),
        })
    }

    /// Read and store what is there; `Err` says why journalctl must be started again.
    fn read(&mut self, buffer: &mut Buffer, now_us: i64) -> Result<usize, String> {
        let Some(running) = self.running.as_mut() else {
            return Ok(0);
        };
        let (chunk, ended) = read_available(&mut running.stdout, CHUNK)
            .map_err(|e| format!("reading journalctl's output failed: {e}"))?;
        let (said, _) = read_available(&mut running.stderr, 64 << 10)
            .map_err(|e| format!("reading journalctl's errors failed: {e}"))?;
        running.err_partial.extend_from_slice(&said);
        let mut complaints = Vec::new();
        while let Some(end) = memchr::memchr(b'\n', &running.err_partial) {
            let line: Vec<u8> = running.err_partial.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line).trim().to_owned();
            if !line.is_empty() {
                complaints.push(line);
            }
        }
        let mut events = Vec::new();
        let mut cursor = None;
        let mut rest = &chunk[..];
        while let Some(end) = memchr::memchr(b'\n', rest) {
            let piece = &rest[..end];
            rest = &rest[end + 1..];
            if running.discarding {
                running.discarding = false;
                continue;
            }
            let line = if running.partial.is_empty() {
                piece.to_vec()
            } else {
                let mut line = std::mem::take(&mut running.partial);
                line.extend_from_slice(piece);
                line
            };
            if line.is_empty() {
                continue;
            }
            match serde_json::from_slice::<Entry>(&line) {
                Ok(entry) => {
                    if let Some(from) = running.from.take() {
                        if entry.cursor == from {
                            // Stored before the agent stopped.
                            continue;
                        }
                        events.push(marker(
                            &self.key,
                            now_us,
                            Kind::Log,
                            &format!(
                                "The journal no longer holds the entry of {} the agent last read (vacuumed or rotated away while the agent was not reading); entries written in between may be missing.",
                                self.unit
                            ),
                        ));
                    }
                    let logged_us = entry.realtime.as_deref().and_then(|t| t.parse().ok());
                    let message = entry.message.map(Message::into_bytes).unwrap_or_default();
                    events.push(event(&self.log, &message, 0, now_us, logged_us));
                    cursor = Some(entry.cursor);
                }
                Err(e) => {
                    // Not journalctl's JSON: kept as it is, never dropped.
                    let mut unparsed = event(&self.log, &line, 0, now_us, None);
                    unparsed.kind = Kind::Unparsed;
                    unparsed.message = Some(format!(
                        "journalctl wrote a line that is not a journal entry: {e}"
                    ));
                    events.push(unparsed);
                }
            }
        }
        if !running.discarding {
            running.partial.extend_from_slice(rest);
            if running.partial.len() > MAX_JSON_LINE {
                running.partial.clear();
                running.discarding = true;
                events.push(marker(
                    &self.key,
                    now_us,
                    Kind::Log,
                    "journalctl wrote an entry longer than the agent reads; it was skipped.",
                ));
            }
        }
        let denied = complaints.iter().find(|line| {
            line.contains("insufficient permissions")
                || line.contains("not seeing messages from other users")
        });
        let denied = denied.map(|line| {
            format!(
                "the agent may not read the system journal, so not {}'s entries (journalctl: {line}); its user needs the systemd-journal group, which `gatehouse-agent setup` grants",
                self.unit
            )
        });
        for line in complaints.iter().filter(|l| {
            !l.starts_with("Hint:")
                && !l.starts_with("Users in groups")
                && !l.starts_with("Pass -q")
        }) {
            if denied.is_none()
                && self.warned.len() < WARNINGS_KEPT
                && self.warned.insert(line.clone())
            {
                tracing::warn!(log = %self.key, said = %line, "journalctl warns");
                events.push(marker(
                    &self.key,
                    now_us,
                    Kind::Log,
                    &format!("journalctl: {line}"),
                ));
            }
        }
        let added = events.len();
        if !events.is_empty() || cursor.is_some() {
            buffer
                .append_journal(
                    &events,
                    &self.key,
                    cursor.as_deref().or(self.cursor.as_deref()),
                    now_us,
                )
                .map_err(|e| format!("cannot store the journal's entries: {e}"))?;
            if cursor.is_some() {
                self.cursor = cursor;
            }
        }
        if let Some(why) = denied {
            return Err(why);
        }
        if ended {
            let status = running
                .child
                .wait()
                .map(|s| s.to_string())
                .unwrap_or_else(|e| e.to_string());
            let said = complaints
                .last()
                .map_or(String::new(), |l| format!(": {l}"));
            return Err(format!("journalctl ended ({status}){said}"));
        }
        if self.failing.is_some() && running.started.elapsed() >= RECOVERED_AFTER {
            self.failing = None;
            tracing::info!(log = %self.key, "the journal is read again");
        }
        Ok(added)
    }

    /// Report a failure once per streak and schedule the next try. Returns the events added.
    fn fail(&mut self, buffer: &mut Buffer, now_us: i64, why: &str) -> usize {
        match &mut self.failing {
            Some(backoff) => {
                backoff.again();
                0
            }
            None => {
                self.failing = Some(Backoff::start());
                tracing::warn!(
                    log = %self.key,
                    error = %why,
                    "cannot read the unit's journal; trying again with back-off (at most every 5 minutes)"
                );
                let message = format!(
                    "The journal of {} cannot be read: {why}. The agent tries again, less and less often (at most every 5 minutes), and says when it can read it.",
                    self.unit
                );
                let marker = marker(&self.key, now_us, Kind::Log, &message);
                match buffer.append_journal(&[marker], &self.key, self.cursor.as_deref(), now_us) {
                    Ok(()) => 1,
                    Err(e) => {
                        tracing::error!(log = %self.key, error = %e, "cannot store an event");
                        0
                    }
                }
            }
        }
    }
}

/// Read what a non-blocking pipe holds now, up to `limit` bytes; `true` once it has ended.
fn read_available(from: &mut impl Read, limit: usize) -> std::io::Result<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    while out.len() < limit {
        match from.read(&mut buf) {
            Ok(0) => return Ok((out, true)),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((out, false))
}

fn stdout_fd(out: &ChildStdout) -> std::os::fd::BorrowedFd<'_> {
    use std::os::fd::AsFd;
    out.as_fd()
}

fn stderr_fd(err: &ChildStderr) -> std::os::fd::BorrowedFd<'_> {
    use std::os::fd::AsFd;
    err.as_fd()
}

/// The last `n` messages of `unit`'s journal, oldest first (the evidence bundle).
pub fn recent(unit: &JournalUnit, n: usize) -> std::io::Result<Vec<String>> {
    let entries = one_off(unit, n, JOURNALCTL)?;
    Ok(entries
        .into_iter()
        .map(|e| {
            String::from_utf8_lossy(&e.message.map(Message::into_bytes).unwrap_or_default())
                .into_owned()
        })
        .collect())
}

/// When `unit` last wrote to the journal, if it ever did (the access log check).
pub fn last_written(unit: &JournalUnit) -> std::io::Result<Option<std::time::SystemTime>> {
    let entries = one_off(unit, 1, JOURNALCTL)?;
    Ok(entries
        .last()
        .and_then(|e| e.realtime.as_deref())
        .and_then(|t| t.parse::<u64>().ok())
        .map(|us| std::time::UNIX_EPOCH + Duration::from_micros(us)))
}

/// The last `n` entries of `unit`, read by `program` within [`ONE_OFF_TIMEOUT`].
fn one_off(unit: &JournalUnit, n: usize, program: &str) -> std::io::Result<Vec<Entry>> {
    let mut child = Command::new(program)
        .args([
            "--output=json",
            "--output-fields=MESSAGE",
            "--all",
            "--no-pager",
        ])
        .arg(format!("--lines={}", n.max(1)))
        .arg(format!("_SYSTEMD_UNIT={unit}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot run {program}: {e}")))?;
    let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(std::io::Error::other(
            "journalctl's output could not be captured",
        ));
    };
    let (done, finished) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let read = (&mut stdout)
            .take(64 << 20)
            .read_to_end(&mut out)
            .and_then(|_| (&mut stderr).take(64 << 10).read_to_end(&mut err));
        let _ = done.send(());
        read.map(|_| (out, err))
    });
    if finished.recv_timeout(ONE_OFF_TIMEOUT).is_err() {
        let _ = child.kill();
    }
    let status = child.wait()?;
    let (out, err) = reader
        .join()
        .map_err(|_| std::io::Error::other("reading journalctl's output failed"))??;
    let said = String::from_utf8_lossy(&err);
    if said.contains("insufficient permissions")
        || said.contains("not seeing messages from other users")
    {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "the agent may not read the system journal, so not {unit}'s entries; its user needs the systemd-journal group"
            ),
        ));
    }
    if !status.success() {
        let last = said.lines().last().unwrap_or("").trim().to_owned();
        return Err(std::io::Error::other(format!(
            "journalctl ended ({status}): {last}"
        )));
    }
    Ok(out
        .split(|b| *b == b'\n')
        .filter_map(|line| serde_json::from_slice::<Entry>(line).ok())
        .collect())
}
