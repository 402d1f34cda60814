//! Following logs: rotation, restarts and bad input never lose or duplicate a line.

use std::io::Write;
use std::path::Path;

use gatehouse_agent::buffer::Buffer;
use gatehouse_agent::tail::{LogConfig, Tailer};
use gatehouse_events::{Format, Kind};
use gatehouse_protocol::{flags, WireEvent};

const NOW_US: i64 = 1_795_401_717_000_000;

fn nginx(n: usize) -> String {
    format!("203.0.113.{n} - - [23/Nov/2026:02:41:57 +0000] \"POST /mcp/tools/memory_stats HTTP/1.1\" 401 35 \"-\" \"curl/8\"\n")
}

fn append(path: &Path, text: &[u8]) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open for append");
    file.write_all(text).expect("append");
}

fn setup(dir: &Path, format: Format) -> (Buffer, LogConfig) {
    let buffer = Buffer::open(&dir.join("events.sqlite3"), 100_000).expect("buffer");
    let config = LogConfig::file(
        dir.join("access.log"),
        format,
        gatehouse_events::Source::Proxy,
    );
    (buffer, config)
}

fn all(buffer: &Buffer) -> Vec<WireEvent> {
    buffer.page(0, 5000).expect("page").events
}

/// The client addresses of the access-log events, in order: which lines were read.
fn ips(buffer: &Buffer) -> Vec<String> {
    all(buffer)
        .into_iter()
        .filter(|e| e.source == gatehouse_events::Source::Proxy)
        .filter_map(|e| e.ip)
        .collect()
}

fn expected(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|n| format!("203.0.113.{n}")).collect()
}

#[test]
fn rotation_by_rename_loses_and_repeats_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut buffer, config) = setup(tmp.path(), Format::NginxCombined);
    let log = config.path().expect("a file").to_owned();
    append(&log, (0..3).map(nginx).collect::<String>().as_bytes());
    let mut tailer = Tailer::new(config, &buffer).expect("tailer");
    tailer.poll(&mut buffer, NOW_US).expect("poll");
    // logrotate renames; the service keeps writing to the old file until it reopens.
    std::fs::rename(&log, tmp.path().join("access.log.1")).expect("rename");
    append(&tmp.path().join("access.log.1"), nginx(3).as_bytes());
    append(&log, (4..6).map(nginx).collect::<String>().as_bytes());
    for _ in 0..3 {
        tailer.poll(&mut buffer, NOW_US).expect("poll");
    }
    assert_eq!(
        ips(&buffer),
        expected(0..6),
        "the old file is drained before the new one is read"
    );
}

#[test]
fn copytruncate_is_read_again_from_the_start_and_said() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut buffer, config) = setup(tmp.path(), Format::NginxCombined);
    let log = config.path().expect("a file").to_owned();
    append(&log, (0..3).map(nginx).collect::<String>().as_bytes());
    let mut tailer = Tailer::new(config, &buffer).expect("tailer");
    tailer.poll(&mut buffer, NOW_US).expect("poll");
    // A line the service had not finished when logrotate copied and truncated the file.
    append(&log, nginx(9).trim_end().as_bytes());
    tailer.poll(&mut buffer, NOW_US).expect("poll");
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&log)
        .expect("truncate");
    append(&log, (3..5).map(nginx).collect::<String>().as_bytes());
    for _ in 0..3 {
        tailer.poll(&mut buffer, NOW_US).expect("poll");
    }
    let mut want = expected(0..3);
    want.push("203.0.113.9".into());
    want.extend(expected(3..5));
    assert_eq!(
        ips(&buffer),
        want,
        "the unfinished line is kept, and lines after the truncation are read once"
    );
    assert!(
        all(&buffer)
            .iter()
            .any(|e| e.source == gatehouse_events::Source::Agent
                && e.message
                    .as_deref()
                    .is_some_and(|m| m.contains("copytruncate"))),
        "the truncation is visible on the timeline"
    );
}

/// logrotate's copytruncate at speed: lines land after the agent's last read and before the
/// truncation, and the new file grows past where reading stopped before the next poll. The
/// lines are read from the copy (`access.log.1`), the truncation is noticed by the file's
/// first bytes, and nothing is lost or stored twice.
#[test]
fn copytruncate_between_polls_loses_nothing_written_before_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut buffer, config) = setup(tmp.path(), Format::NginxCombined);
    let log = config.path().expect("a file").to_owned();
    // Distinct first lines, as real logs have (each line carries its own time).
    let line = |n: usize, minute: usize| {
        format!("203.0.113.{n} - - [23/Nov/2026:02:{minute:02}:57 +0000] \"POST /mcp/tools/memory_stats HTTP/1.1\" 401 35 \"-\" \"curl/8\"\n")
    };
    append(
        &log,
        (0..3).map(|n| line(n, 1)).collect::<String>().as_bytes(),
    );
    let mut tailer = Tailer::new(config, &buffer).expect("tailer");
    tailer.poll(&mut buffer, NOW_US).expect("poll");
    // Written after that read, with the last one unfinished when the copy is made.
    append(
        &log,
        (3..6).map(|n| line(n, 1)).collect::<String>().as_bytes(),
    );
    append(&log, line(6, 1).trim_end().as_bytes());
    std::fs::copy(&log, tmp.path().join("access.log.1")).expect("logrotate copies");
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&log)
        .expect("and truncates");
    // The service writes on, past the old offset, before the agent polls again.
    append(
        &log,
        (7..20).map(|n| line(n, 2)).collect::<String>().as_bytes(),
    );
    for _ in 0..3 {
        tailer.poll(&mut buffer, NOW_US).expect("poll");
    }
    assert_eq!(
        ips(&buffer),
        expected(0..20),
        "every line once, in order: those before the truncation from the copy"
    );
    let said: Vec<String> = all(&buffer)
        .into_iter()
        .filter(|e| e.source == gatehouse_events::Source::Agent)
        .filter_map(|e| e.message)
        .collect();
    assert!(
        said.iter()
            .any(|m| m.contains("copytruncate") && m.contains("access.log.1")),
        "the truncation and where the lines came from are on the timeline: {said:?}"
    );
}

/// Without a copy to read from, the truncation still says that lines may be missing.
#[test]
fn copytruncate_without_a_copy_says_lines_may_be_missing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut buffer, config) = setup(tmp.path(), Format::NginxCombined);
    let log = config.path().expect("a file").to_owned();
    append(&log, (0..3).map(nginx).collect::<String>().as_bytes());
    let mut tailer = Tailer::new(config, &buffer).expect("tailer");
    tailer.poll(&mut buffer, NOW_US).expect("poll");
    append(&log, nginx(3).as_bytes());
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&log)
        .expect("truncate");
    tailer.poll(&mut buffer, NOW_US).expect("poll");
    assert!(
        all(&buffer)
            .iter()
            .any(|e| e.source == gatehouse_events::Source::Agent
                && e.message
                    .as_deref()
                    .is_some_and(|m| m.contains("may be missing"))),
        "a possible loss is said, not hidden"
    );
}

#[test]
fn a_restart_resumes_where_reading_stopped_even_mid_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut buffer, config) = setup(tmp.path(), Format::NginxCombined);
    let log = config.path().expect("a file").to_owned();
    append(&log, (0..2).map(nginx).collect::<String>().as_bytes());
    let half = nginx(2);
    append(&log, &half.as_bytes()[..20]);
    {
        let mut tailer = Tailer::new(config.clone(), &buffer).expect("tailer");
        tailer.poll(&mut buffer, NOW_US).expect("poll");
    }
    // The agent is down while the service writes on.
    drop(buffer);
    append(&log, &half.as_bytes()[20..]);
    append(&log, nginx(3).as_bytes());
    let mut buffer = Buffer::open(&tmp.path().join("events.sqlite3"), 100_000).expect("reopen");
    let mut tailer = Tailer::new(config, &buffer).expect("tailer after restart");
    tailer.poll(&mut buffer, NOW_US).expect("poll");
    assert_eq!(
        ips(&buffer),
        expected(0..4),
        "no line lost or doubled across the restart"
    );
}

/// Whether a marker says lines may be missing.
fn says_missing(buffer: &Buffer) -> Vec<String> {
    all(buffer)
        .into_iter()
        .filter(|e| e.source == gatehouse_events::Source::Agent)
        .filter_map(|e| e.message)
        .filter(|m| m.contains("may be missing"))
        .collect()
}

/// A restart of the agent: its tailer gone with everything it held in memory, the buffer
/// closed and opened again.
fn restart(dir: &Path, buffer: Buffer, config: &LogConfig) -> (Buffer, Tailer) {
    drop(buffer);
    let buffer = Buffer::open(&dir.join("events.sqlite3"), 100_000).expect("reopen");
    let tailer = Tailer::new(config.clone(), &buffer).expect("tailer after restart");
    (buffer, tailer)
}

/// The agent is down (killed) while logrotate renames the log. It used to start the new file
/// and say lines may be missing: the rest of the old one was lost (1,280 lines in a fault
/// run). The old file is found beside the log by its identity and read to its end first.
#[test]
fn a_log_renamed_while_the_agent_was_down_is_read_to_its_end_where_logrotate_put_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut buffer, config) = setup(tmp.path(), Format::NginxCombined);
    let log = config.path().expect("a file").to_owned();
    append(&log, (0..3).map(nginx).collect::<String>().as_bytes());
    {
        let mut tailer = Tailer::new(config.clone(), &buffer).expect("tailer");
        tailer.poll(&mut buffer, NOW_US).expect("poll");
    }
    append(&log, (3..6).map(nginx).collect::<String>().as_bytes());
    std::fs::rename(&log, tmp.path().join("access.log.1")).expect("rename");
    append(&log, (6..8).map(nginx).collect::<String>().as_bytes());
    let (mut buffer, mut tailer) = restart(tmp.path(), buffer, &config);
    for _ in 0..3 {
        tailer.poll(&mut buffer, NOW_US).expect("poll");
    }
    assert_eq!(
        ips(&buffer),
        expected(0..8),
        "the old file's rest, then the new file, each line once"
    );
    assert!(
        says_missing(&buffer).is_empty(),
        "nothing was missed, so nothing is said missing: {:?}",
        says_missing(&buffer)
    );
}

/// An inode number is reused once its file is deleted: the file found under the number the
/// position names must also start as the one read did, or it is not read on from the old
/// offset (that would take in another file's middle); the gap is said instead.
#[test]
fn a_file_that_only_shares_the_old_inode_number_is_not_read_on() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut buffer, config) = setup(tmp.path(), Format::NginxCombined);
    let log = config.path().expect("a file").to_owned();
    append(&log, (0..3).map(nginx).collect::<String>().as_bytes());
    {
        let mut tailer = Tailer::new(config.clone(), &buffer).expect("tailer");
        tailer.poll(&mut buffer, NOW_US).expect("poll");
    }
    let rotated = tmp.path().join("access.log.1");
    std::fs::rename(&log, &rotated).expect("rename");
    // The same inode, other content: as a deleted file's number given to a new one.
    std::fs::write(&rotated, (40..50).map(nginx).collect::<String>()).expect("rewrite");
    append(&log, nginx(7).as_bytes());
    let (mut buffer, mut tailer) = restart(tmp.path(), buffer, &config);
    tailer.poll(&mut buffer, NOW_US).expect("poll");
    let mut want = expected(0..3);
    want.push("203.0.113.7".into());
    assert_eq!(
        ips(&buffer),
        want,
        "nothing read from the unrelated file; the new log from its start"
    );
    assert_eq!(
        says_missing(&buffer).len(),
        1,
        "and the possible gap is said: {:?}",
        says_missing(&buffer)
    );
}

/// The agent is killed just after it noticed a rename, while it still reads the old file
/// (the service had not reopened its log yet). The old file's position is stored with the new
/// one's, so the restarted agent reads on in it; it used to lose those lines silently.
#[test]
fn a_kill_while_a_renamed_log_is_still_read_loses_none_of_its_lines() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut buffer, config) = setup(tmp.path(), Format::NginxCombined);
    let log = config.path().expect("a file").to_owned();
    let rotated = tmp.path().join("access.log.1");
    append(&log, (0..3).map(nginx).collect::<String>().as_bytes());
    {
        let mut tailer = Tailer::new(config.clone(), &buffer).expect("tailer");
        tailer.poll(&mut buffer, NOW_US).expect("poll");
        std::fs::rename(&log, &rotated).expect("rename");
        append(&log, nginx(6).as_bytes());
        tailer
            .poll(&mut buffer, NOW_US)
            .expect("the rename is noticed");
        // The service still writes to the old file; the agent dies before reading it.
        append(&rotated, (3..6).map(nginx).collect::<String>().as_bytes());
    }
    // logrotate moves it on meanwhile.
    std::fs::rename(&rotated, tmp.path().join("access.log.2")).expect("shift");
    let (mut buffer, mut tailer) = restart(tmp.path(), buffer, &config);
    append(&log, nginx(7).as_bytes());
    for _ in 0..3 {
        tailer.poll(&mut buffer, NOW_US).expect("poll");
    }
    let mut got = ips(&buffer);
    got.sort();
    assert_eq!(got, expected(0..8), "every line once, the old file's too");
    assert!(
        says_missing(&buffer).is_empty(),
        "nothing was missed: {:?}",
        says_missing(&buffer)
    );
}

/// The agent is down while logrotate copies and truncates the log, and the service writes
/// the file past where reading stopped before the agent is back. The restarted agent used to
/// read on from the old offset, in the middle of other lines; it tells the truncation by the
/// file's first bytes, stored with the position, and reads the lost rest from the copy.
#[test]
fn a_log_truncated_and_written_again_while_the_agent_was_down_is_read_from_its_start() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut buffer, config) = setup(tmp.path(), Format::NginxCombined);
    let log = config.path().expect("a file").to_owned();
    append(&log, (0..3).map(nginx).collect::<String>().as_bytes());
    {
        let mut tailer = Tailer::new(config.clone(), &buffer).expect("tailer");
        tailer.poll(&mut buffer, NOW_US).expect("poll");
    }
    append(&log, (3..5).map(nginx).collect::<String>().as_bytes());
    std::fs::copy(&log, tmp.path().join("access.log.1")).expect("copy");
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&log)
        .expect("truncate");
    append(&log, (10..20).map(nginx).collect::<String>().as_bytes());
    let (mut buffer, mut tailer) = restart(tmp.path(), buffer, &config);
    for _ in 0..2 {
        tailer.poll(&mut buffer, NOW_US).expect("poll");
    }
    let mut want = expected(0..5);
    want.extend(expected(10..20));
    assert_eq!(
        ips(&buffer),
        want,
        "the copy's rest, then the truncated file from its start, each line once"
    );
}

#[test]
fn hostile_lines_are_kept_flagged_and_good_lines_after_them_still_parse() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut buffer, mut config) = setup(tmp.path(), Format::Structlog);
    config.source = gatehouse_events::Source::Service;
    let log = config.path().expect("a file").to_owned();
    let good = br#"{"path": "/api/v1/v1/sessions", "key_prefix": "wrong_key_", "client": "203.0.113.9", "event": "Invalid API key", "timestamp": "2026-11-23T02:33:23.190201Z", "level": "warning"}"#;
    let future =
        br#"{"event": "Invalid API key", "timestamp": "2099-01-01T00:00:00Z", "level": "warning"}"#;
    let mut text = Vec::new();
    text.extend_from_slice(b"\xff\xfe broken utf-8\n");
    text.extend_from_slice(&vec![b'x'; 1 << 20]);
    text.push(b'\n');
    text.extend_from_slice(b"nul\0bytes\0here\n");
    text.extend_from_slice(br#"{"event": "Invalid API key", "timest"#);
    text.push(b'\n');
    text.extend_from_slice(b"\x1b[31mred\x1b[0m\n");
    text.extend_from_slice(future);
    text.push(b'\n');
    text.extend_from_slice(good);
    text.push(b'\n');
    append(&log, &text);
    let mut tailer = Tailer::new(config, &buffer).expect("tailer");
    for _ in 0..3 {
        tailer
            .poll(&mut buffer, NOW_US)
            .expect("poll never fails on content");
    }
    let events = all(&buffer);
    assert_eq!(
        events.len(),
        7,
        "every line is an event, none dropped: {events:#?}"
    );
    let unparsed = events.iter().filter(|e| e.kind == Kind::Unparsed).count();
    assert_eq!(unparsed, 5, "five lines are kept as unparsed and counted");
    assert!(
        events[0].flags & flags::INVALID_UTF8 != 0,
        "invalid UTF-8 is flagged"
    );
    assert!(
        events[1].flags & flags::TRUNCATED != 0,
        "the 1 MiB line is cut and flagged"
    );
    assert!(
        events[1].raw.len() <= gatehouse_events::MAX_LINE,
        "and kept compact"
    );
    assert!(
        events[5].flags & flags::FROM_THE_FUTURE != 0,
        "a line from 2099 is flagged"
    );
    let last = &events[6];
    assert_eq!(
        (last.kind, last.key_prefix.as_deref()),
        (Kind::Auth, Some("wrong_key_")),
        "the good line still parses"
    );
    assert!(
        last.flags & flags::IP_SPOOFABLE != 0,
        "Jelmore's client address is marked spoofable"
    );
}

#[test]
fn a_file_that_disappears_is_reported_once_and_followed_when_it_returns() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut buffer, config) = setup(tmp.path(), Format::NginxCombined);
    let log = config.path().expect("a file").to_owned();
    let mut tailer = Tailer::new(config, &buffer).expect("tailer");
    for _ in 0..3 {
        tailer
            .poll(&mut buffer, NOW_US)
            .expect("a missing file is not an error");
    }
    let markers = all(&buffer)
        .iter()
        .filter(|e| e.source == gatehouse_events::Source::Agent)
        .count();
    assert_eq!(markers, 1, "reported once, not on every poll");
    append(&log, nginx(7).as_bytes());
    tailer.poll(&mut buffer, NOW_US).expect("poll");
    tailer.poll(&mut buffer, NOW_US).expect("poll");
    assert_eq!(ips(&buffer), expected(7..8), "read once it exists");
}

/// Whoever sends a request writes part of the proxy's log line: an address field that is no
/// address must never become an offender or a block target, and a line dated years ahead
/// must not sit on top of the timeline for ever.
#[test]
fn hostile_addresses_are_dropped_and_flagged_and_future_times_replaced() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut buffer, config) = setup(tmp.path(), Format::NginxCombined);
    let log = config.path().expect("a file").to_owned();
    let line = |client: &str, when: &str| {
        format!("{client} - - [{when}] \"POST /mcp/tools/memory_stats HTTP/1.1\" 401 35 \"-\" \"curl/8\"\n")
    };
    let mut text = String::new();
    text.push_str(&line("999.999.999.999", "23/Nov/2026:02:41:57 +0000"));
    text.push_str(&line("<svg/onload=alert(1)>", "23/Nov/2026:02:41:57 +0000"));
    text.push_str(&line("\u{feff}203.0.113.5", "23/Nov/2026:02:41:57 +0000"));
    text.push_str(&line("203.0.113.6", "01/Jan/2099:00:00:00 +0000"));
    append(&log, text.as_bytes());
    let mut tailer = Tailer::new(config, &buffer).expect("tailer");
    tailer.poll(&mut buffer, NOW_US).expect("poll");
    let events = all(&buffer);
    assert_eq!(events.len(), 4, "every line is kept: {events:#?}");
    for bad in &events[..2] {
        assert_eq!(
            (bad.kind, bad.ip.as_deref()),
            (Kind::Auth, None),
            "the failed request is kept without an address: {}",
            bad.raw
        );
        assert!(
            bad.flags & flags::ADDRESS_UNREADABLE != 0,
            "and flagged as having an unreadable one: {}",
            bad.raw
        );
        assert!(
            bad.raw.contains("POST /mcp"),
            "the raw line is kept as evidence"
        );
    }
    assert_eq!(
        events[2].ip.as_deref(),
        Some("203.0.113.5"),
        "a byte-order mark is not part of the address"
    );
    assert_eq!(
        events[2].flags & flags::ADDRESS_UNREADABLE,
        0,
        "and the address is readable"
    );
    let future = &events[3];
    assert!(
        future.flags & flags::FROM_THE_FUTURE != 0,
        "a line dated 2099 is flagged"
    );
    assert_eq!(
        future.time_us, NOW_US,
        "and carries the time it was read instead of its own"
    );
    assert!(
        future.flags & flags::TIME_FROM_AGENT != 0,
        "which says the time is the agent's"
    );
}

#[test]
fn a_log_that_cannot_be_read_is_named_once_and_tried_again_with_back_off() {
    if rustix::process::geteuid().as_raw() != 0 {
        eprintln!("this test needs root to make a file another account owns; not run");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let (buffer, config) = setup(tmp.path(), Format::NginxCombined);
    let log = config.path().expect("a file").to_owned();
    append(&log, nginx(1).as_bytes());
    // The service's log, as a service writes it: mode 0600, its own account's.
    std::os::unix::fs::chown(&log, Some(64_000), Some(64_000)).expect("chown");
    std::fs::set_permissions(&log, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    // The agent as its own user without a read grant: capabilities are per thread, so only
    // this thread loses the ones that bypass file permissions.
    let buffer = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let mut buffer = buffer;
                let mut caps = rustix::thread::capabilities(None).expect("capabilities");
                caps.effective -= rustix::thread::CapabilitySet::DAC_OVERRIDE
                    | rustix::thread::CapabilitySet::DAC_READ_SEARCH;
                rustix::thread::set_capabilities(None, caps).expect("drop the read bypass");
                let mut tailer = Tailer::new(config, &buffer).expect("tailer");
                for _ in 0..8 {
                    tailer
                        .poll(&mut buffer, NOW_US)
                        .expect("a log that cannot be read is not an error of the poll");
                }
                buffer
            })
            .join()
            .expect("the reading thread")
    });
    let markers: Vec<_> = all(&buffer)
        .into_iter()
        .filter(|e| e.source == gatehouse_events::Source::Agent)
        .collect();
    assert_eq!(
        markers.len(),
        1,
        "reported once, not on every poll (the agent once said it four times a second): {markers:#?}"
    );
    let message = markers[0].message.as_deref().unwrap_or("");
    assert!(
        message.contains(&log.display().to_string()) && message.contains("ermission denied"),
        "the report names the file and the reason: {message}"
    );
    assert!(
        message.contains("tries again"),
        "and says it is tried again: {message}"
    );
    assert!(
        ips(&buffer).is_empty(),
        "nothing of a file the agent may not read is read"
    );
}

/// Unmounts the small filesystem a test mounted, however the test ends.
struct SmallDisk(std::path::PathBuf);

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// The agent's disk fills while its service goes on logging: no line is lost (each is read
/// again from the stored position once there is room), none is stored twice, and while it
/// lasts the buffer says why it cannot store (for `/v1/info`, so the console shows it).
#[test]
fn a_full_disk_loses_no_line_and_says_so_until_there_is_room() {
    if rustix::process::geteuid().as_raw() != 0 {
        eprintln!("this test needs root to mount a small tmpfs; not run");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = tmp.path().join("state");
    std::fs::create_dir(&state).expect("state dir");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&state)
        .status()
        .expect("mount");
    assert!(mounted.success(), "a small tmpfs is mounted for the buffer");
    let _disk = SmallDisk(state.clone());
    let mut buffer = Buffer::open(&state.join("events.sqlite3"), 100_000).expect("buffer");
    let config = LogConfig::file(
        tmp.path().join("access.log"),
        Format::NginxCombined,
        gatehouse_events::Source::Proxy,
    );
    let log = config.path().expect("a file").to_owned();
    append(&log, (0..10).map(nginx).collect::<String>().as_bytes());
    let mut tailer = Tailer::new(config, &buffer).expect("tailer");
    tailer.poll(&mut buffer, NOW_US).expect("poll");
    assert_eq!(ips(&buffer), expected(0..10), "read while there is room");

    // Fill the disk, then the service logs on (its log is on another disk).
    let filler_path = state.join("filler");
    let mut filler = std::fs::File::create(&filler_path).expect("filler");
    let chunk = vec![0u8; 4096];
    while filler.write_all(&chunk).is_ok() {}
    drop(filler);
    append(&log, (10..200).map(nginx).collect::<String>().as_bytes());
    for _ in 0..3 {
        tailer
            .poll(&mut buffer, NOW_US)
            .expect("a full disk is not an error of the poll");
    }
    let problem = buffer
        .write_problem()
        .expect("the buffer says it cannot store while the disk is full")
        .to_owned();
    assert!(
        problem.contains("full"),
        "and that the disk is full: {problem}"
    );

    // Room again: everything since the last stored line is read, once.
    std::fs::remove_file(&filler_path).expect("free the disk");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while ips(&buffer).len() < 200 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        tailer.poll(&mut buffer, NOW_US).expect("poll");
    }
    assert_eq!(
        ips(&buffer),
        expected(0..200),
        "every line is stored exactly once, in order, once there is room (the buffer says: {:?})",
        buffer.write_problem()
    );
    assert!(
        buffer.write_problem().is_none(),
        "and the problem is cleared: {:?}",
        buffer.write_problem()
    );
}

/// A runtime shut down while its agent still serves (a test that ends without stopping its
/// agent, a process on its way out) does not wait forever for the log reader's thread: the
/// reader is told to stop when the serving future is dropped. Before, the runtime's drop
/// waited for that thread, which read on until told, and the test hung.
#[test]
fn a_runtime_dropped_under_a_serving_agent_does_not_wait_for_its_log_reader() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("agent");
    gatehouse_pki::install_provider();
    gatehouse_agent::initialise(
        &gatehouse_agent::state::StateDir::new(&state),
        time::OffsetDateTime::now_utc(),
        std::time::Duration::from_secs(900),
        [3; 20],
    )
    .expect("agent init");
    let log = dir.path().join("access.log");
    std::fs::write(&log, "").expect("log");
    let config = gatehouse_agent::AgentConfig::for_test(state).with_logs(vec![LogConfig::file(
        &log,
        Format::NginxCombined,
        gatehouse_events::Source::Access,
    )]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let agent = std::sync::Arc::new(gatehouse_agent::Agent::load(config).expect("agent"));
        let listener = gatehouse_agent::server::bind("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("bind");
        // Serving until the runtime goes: the shutdown signal never comes.
        tokio::spawn(gatehouse_agent::server::serve(
            agent,
            listener,
            std::future::pending::<()>(),
        ));
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    });
    let (done, dropped) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(runtime);
        let _ = done.send(());
    });
    assert!(
        dropped
            .recv_timeout(std::time::Duration::from_secs(30))
            .is_ok(),
        "the runtime shuts down within 30 s instead of waiting forever for the log reader"
    );
}
