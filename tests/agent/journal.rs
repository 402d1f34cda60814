//! Following a unit's journal: entries become events, the cursor is stored with them, a
//! restart neither loses nor repeats an entry, and a journal that cannot be read is named
//! once. journalctl is stood in for by a small program that speaks its arguments and JSON
//! over a file of entries; the real journal is followed in the systemd test
//! (`tests/systemd/run.sh`).

use std::io::Write;
use std::path::{Path, PathBuf};

use gatehouse_agent::buffer::Buffer;
use gatehouse_agent::journal::JournalTailer;
use gatehouse_agent::{JournalUnit, LogConfig};
use gatehouse_events::{Format, Kind};
use gatehouse_protocol::WireEvent;

const NOW_US: i64 = 1_795_401_717_000_000;

/// A stand-in for `journalctl -o json --follow [--cursor=C] _SYSTEMD_UNIT=U`: prints the
/// entries of `$JOURNAL` (one JSON object a line) from the one whose cursor is C (or all),
/// then follows the file. `$JOURNAL_STDERR` is written to standard error first.
const FAKE: &str = r#"#!/usr/bin/env python3
import json, os, select, sys, time
args = sys.argv[1:]
cursor = next((a.split("=", 1)[1] for a in args if a.startswith("--cursor=")), None)
unit = next((a.split("=", 1)[1] for a in args if a.startswith("_SYSTEMD_UNIT=")), None)
journal = os.path.join(os.path.dirname(os.path.abspath(__file__)), "journal.jsonl")
said = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stderr.txt")
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "args.txt"), "a") as f:
    f.write(" ".join(args) + "\n")
if os.path.exists(said):
    sys.stderr.write(open(said).read()); sys.stderr.flush()
started = cursor is None
seen = 0
deadline = time.time() + 20
while time.time() < deadline:
    lines = open(journal).read().splitlines() if os.path.exists(journal) else []
    for line in lines[seen:]:
        entry = json.loads(line)
        if entry.get("_SYSTEMD_UNIT") != unit:
            continue
        if not started:
            # journalctl seeks to the cursor's place: the entry itself if it is still there.
            if entry["__SEQ"] >= int(cursor.split("seq=")[1]):
                started = True
            else:
                continue
        out = {k: v for k, v in entry.items() if not k.startswith("_SYSTEMD") and k != "__SEQ"}
        sys.stdout.write(json.dumps(out) + "\n"); sys.stdout.flush()
    seen = len(lines)
    if "--follow" not in args:
        break
    # select, not time.sleep: under libfaketime (scripts/test-dates.sh) Python's absolute
    # clock_nanosleep fails with EINVAL.
    select.select([], [], [], 0.02)
"#;

struct Journal {
    dir: tempfile::TempDir,
    seq: u64,
}

impl Journal {
    fn new() -> Journal {
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = dir.path().join("journalctl");
        std::fs::write(&fake, FAKE).expect("write the stand-in");
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        Journal { dir, seq: 0 }
    }

    fn program(&self) -> PathBuf {
        self.dir.path().join("journalctl")
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("journal.jsonl")
    }

    /// journald receives a line from `unit`; Sekha's are ANSI-coloured, so journalctl
    /// writes them as arrays of bytes.
    fn write(&mut self, unit: &str, message: &str) {
        self.seq += 1;
        let bytes: Vec<u8> = message.bytes().collect();
        let entry = serde_json::json!({
            "__CURSOR": format!("s=abc;seq={}", self.seq),
            "__REALTIME_TIMESTAMP": format!("{}", 1_795_400_000_000_000u64 + self.seq),
            "MESSAGE": bytes,
            "_SYSTEMD_UNIT": unit,
            "__SEQ": self.seq,
        });
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path())
            .expect("open the journal");
        writeln!(file, "{entry}").expect("append");
    }

    /// journald vacuums everything up to `seq`.
    fn vacuum_through(&self, seq: u64) {
        let text = std::fs::read_to_string(self.path()).expect("journal");
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| {
                serde_json::from_str::<serde_json::Value>(l).expect("json")["__SEQ"]
                    .as_u64()
                    .expect("seq")
                    > seq
            })
            .collect();
        std::fs::write(self.path(), kept.join("\n") + "\n").expect("rewrite");
    }
}

fn sekha_line(n: usize) -> String {
    format!("\x1b[2m2026-11-23T02:41:{n:02}.390647Z\x1b[0m \x1b[32m INFO\x1b[0m \x1b[2msekha_controller\x1b[0m\x1b[2m:\x1b[0m line {n}")
}

fn config() -> (JournalUnit, LogConfig) {
    let unit = JournalUnit::parse("sekha.service").expect("a unit name");
    let log = LogConfig::journal(
        unit.clone(),
        Format::SekhaTracing,
        gatehouse_events::Source::Service,
    );
    (unit, log)
}

fn service_lines(buffer: &Buffer) -> Vec<String> {
    all(buffer)
        .into_iter()
        .filter(|e| e.source == gatehouse_events::Source::Service)
        .filter_map(|e| e.message)
        .collect()
}

fn all(buffer: &Buffer) -> Vec<WireEvent> {
    buffer.page(0, 5000).expect("page").events
}

/// Poll until `want` service events are stored (or 10 s pass): journalctl runs on its own.
fn poll_until(tailer: &mut JournalTailer, buffer: &mut Buffer, want: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while service_lines(buffer).len() < want && std::time::Instant::now() < deadline {
        tailer.poll(buffer, NOW_US).expect("poll");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn expected(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|n| format!("line {n}")).collect()
}

#[test]
fn journal_entries_are_parsed_and_a_restart_neither_loses_nor_repeats_one() {
    let mut journal = Journal::new();
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("events.sqlite3");
    for n in 0..3 {
        journal.write("sekha.service", &sekha_line(n));
    }
    journal.write("other.service", "not sekha's");
    let (unit, log) = config();
    let mut buffer = Buffer::open(&db, 100_000).expect("buffer");
    let mut tailer = JournalTailer::new(unit.clone(), log.clone(), &buffer)
        .expect("tailer")
        .with_program(journal.program());
    poll_until(&mut tailer, &mut buffer, 3);
    assert_eq!(
        service_lines(&buffer),
        expected(0..3),
        "the unit's entries, parsed with its format (ANSI colours and all), and no other unit's"
    );
    let first = &all(&buffer)[0];
    assert_eq!(
        first.time_us, 1_795_401_660_390_647,
        "an entry's time is the one in its line"
    );
    // The agent stops; the service writes on.
    drop(tailer);
    drop(buffer);
    for n in 3..5 {
        journal.write("sekha.service", &sekha_line(n));
    }
    let mut buffer = Buffer::open(&db, 100_000).expect("reopen");
    assert!(
        buffer
            .cursor(&log.name())
            .expect("cursor")
            .is_some_and(|c| c.ends_with("seq=3")),
        "the cursor of the last entry stored was kept with it"
    );
    let mut tailer = JournalTailer::new(unit, log, &buffer)
        .expect("tailer after restart")
        .with_program(journal.program());
    poll_until(&mut tailer, &mut buffer, 5);
    for _ in 0..5 {
        tailer.poll(&mut buffer, NOW_US).expect("poll");
    }
    assert_eq!(
        service_lines(&buffer),
        expected(0..5),
        "after the restart: what was written meanwhile, nothing twice"
    );
    assert!(
        all(&buffer)
            .iter()
            .all(|e| e.source != gatehouse_events::Source::Agent),
        "and nothing to report: {:#?}",
        all(&buffer)
    );
    let args = std::fs::read_to_string(journal.dir.path().join("args.txt")).expect("args");
    assert!(
        args.lines()
            .nth(1)
            .is_some_and(|l| l.contains("--cursor=s=abc;seq=3") && l.contains("_SYSTEMD_UNIT=sekha.service")),
        "the second journalctl starts at the stored cursor and matches the unit's own entries: {args}"
    );
}

#[test]
fn entries_vacuumed_while_the_agent_was_stopped_are_said_to_be_missing() {
    let mut journal = Journal::new();
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("events.sqlite3");
    journal.write("sekha.service", &sekha_line(0));
    let (unit, log) = config();
    let mut buffer = Buffer::open(&db, 100_000).expect("buffer");
    let mut tailer = JournalTailer::new(unit.clone(), log.clone(), &buffer)
        .expect("tailer")
        .with_program(journal.program());
    poll_until(&mut tailer, &mut buffer, 1);
    drop(tailer);
    for n in 1..4 {
        journal.write("sekha.service", &sekha_line(n));
    }
    journal.vacuum_through(2);
    let mut tailer = JournalTailer::new(unit, log, &buffer)
        .expect("tailer")
        .with_program(journal.program());
    poll_until(&mut tailer, &mut buffer, 3);
    assert_eq!(
        service_lines(&buffer),
        ["line 0", "line 2", "line 3"],
        "what the journal still holds is read"
    );
    let markers: Vec<_> = all(&buffer)
        .into_iter()
        .filter(|e| e.source == gatehouse_events::Source::Agent)
        .collect();
    assert!(
        markers.len() == 1
            && markers[0]
                .message
                .as_deref()
                .is_some_and(|m| m.contains("no longer holds")),
        "the gap is said once: {markers:#?}"
    );
}

#[test]
fn a_journal_the_agent_may_not_read_is_named_once_with_the_grant_it_needs() {
    let journal = Journal::new();
    std::fs::write(
        journal.dir.path().join("stderr.txt"),
        "No journal files were opened due to insufficient permissions.\n",
    )
    .expect("stderr");
    let tmp = tempfile::tempdir().expect("tempdir");
    let (unit, log) = config();
    let mut buffer = Buffer::open(&tmp.path().join("events.sqlite3"), 100_000).expect("buffer");
    let mut tailer = JournalTailer::new(unit, log, &buffer)
        .expect("tailer")
        .with_program(journal.program());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while all(&buffer).is_empty() && std::time::Instant::now() < deadline {
        tailer.poll(&mut buffer, NOW_US).expect("poll");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for _ in 0..20 {
        tailer.poll(&mut buffer, NOW_US).expect("poll");
    }
    let events = all(&buffer);
    assert_eq!(
        events.len(),
        1,
        "reported once, not on every poll: {events:#?}"
    );
    let message = events[0].message.as_deref().unwrap_or("");
    assert!(
        message.contains("sekha.service") && message.contains("systemd-journal"),
        "the report names the unit and the grant that is missing: {message}"
    );
    assert_eq!(events[0].kind, Kind::Log, "as a log event of the agent's");
}

#[test]
fn a_missing_journalctl_is_reported_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (unit, log) = config();
    let mut buffer = Buffer::open(&tmp.path().join("events.sqlite3"), 100_000).expect("buffer");
    let mut tailer = JournalTailer::new(unit, log, &buffer)
        .expect("tailer")
        .with_program(Path::new("/nonexistent/journalctl"));
    for _ in 0..10 {
        tailer.poll(&mut buffer, NOW_US).expect("poll");
    }
    let events = all(&buffer);
    assert!(
        events.len() == 1
            && events[0]
                .message
                .as_deref()
                .is_some_and(|m| m.contains("/nonexistent/journalctl")),
        "said once, naming the program: {events:#?}"
    );
}
