//! A log line as an event for the buffer, the agent's own events about a log, and when a log
//! that could not be read is tried again: shared by the file follower (`tail.rs`) and the
//! journal follower (`journal.rs`).

use std::time::{Duration, Instant};

use gatehouse_events::{Format, Kind, Outcome, Source, MAX_LINE};
use gatehouse_protocol::{flags, WireEvent};

use crate::config::LogConfig;

/// A line time this far ahead of the agent's clock is flagged and replaced by the time read.
const FUTURE_SLACK_US: i64 = 5 * 60 * 1_000_000;

/// When a log that could not be read is tried again: 1 s after the first failure, doubling
/// to at most 5 minutes.
#[derive(Debug)]
pub struct Backoff {
    delay: Duration,
    next: Instant,
}

impl Backoff {
    const FIRST: Duration = Duration::from_secs(1);
    const MOST: Duration = Duration::from_secs(300);

    pub fn start() -> Backoff {
        Backoff {
            delay: Backoff::FIRST,
            next: Instant::now() + Backoff::FIRST,
        }
    }

    /// Whether it is time to try again.
    pub fn due(&self) -> bool {
        Instant::now() >= self.next
    }

    /// Another failure: wait twice as long.
    pub fn again(&mut self) {
        self.delay = (self.delay * 2).min(Backoff::MOST);
        self.next = Instant::now() + self.delay;
    }
}

/// The event for one line of `log`. Its time is the line's own, else `logged_us` (when the
/// journal received it), else the agent's clock (flagged).
pub fn event(
    log: &LogConfig,
    line: &[u8],
    mut flag_bits: u32,
    now_us: i64,
    logged_us: Option<i64>,
) -> WireEvent {
    let redacted = log
        .redact_query
        .as_deref()
        .and_then(|name| redact_query(line, name));
    let line = redacted.as_deref().unwrap_or(line);
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
        log.format.parse(line)
    };
    let fallback = |flag_bits: &mut u32| match logged_us {
        Some(t) => t,
        None => {
            *flag_bits |= flags::TIME_FROM_AGENT;
            now_us
        }
    };
    match parsed {
        Ok(mut p) => {
            log.sign_ins.apply(&log.format, &mut p);
            let time_us = match p.time_us {
                // A time from the future would sit at the top of the timeline for ever.
                Some(t) if t > now_us + FUTURE_SLACK_US => {
                    flag_bits |= flags::FROM_THE_FUTURE | flags::TIME_FROM_AGENT;
                    now_us
                }
                Some(t) => t,
                None => fallback(&mut flag_bits),
            };
            if log.format == Format::Structlog && p.ip.is_some() {
                flag_bits |= flags::IP_SPOOFABLE;
            }
            if p.address_unreadable {
                flag_bits |= flags::ADDRESS_UNREADABLE;
            }
            WireEvent {
                seq: 0,
                time_us,
                source: log.source,
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
        Err(unparsed) => WireEvent {
            seq: 0,
            time_us: fallback(&mut flag_bits),
            source: log.source,
            kind: Kind::Unparsed,
            outcome: Outcome::Info,
            actor: None,
            key_prefix: None,
            ip: None,
            method: None,
            path: None,
            status: None,
            // Which format it was read as, and what did not fit: enough to fix the config.
            // (A pattern's own reason says so already.)
            message: Some(match log.format.builtin() {
                Some(format) => format!(
                    "does not fit the {} format: {}",
                    format.as_str(),
                    unparsed.reason
                ),
                None => unparsed.reason.to_owned(),
            }),
            raw: raw.into_owned(),
            flags: flag_bits,
        },
    }
}

/// `line` (a log line as text, for the evidence bundle) with the key the service takes as
/// the query parameter `name` redacted, as [`redact_query`] does.
pub fn redacted(line: String, name: Option<&str>) -> String {
    match name.and_then(|name| redact_query(line.as_bytes(), name)) {
        Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        None => line,
    }
}

/// `line` with the value of every `name=` after `?`, `&`, `;`, `&amp;` or `\u0026` (as JSON
/// logs write `&`) written `[redacted]` (up to the next `&`, `;`, `#`, blank, quote, `\` or
/// end), if it has any.
fn redact_query(line: &[u8], name: &str) -> Option<Vec<u8>> {
    let needle = format!("{name}=");
    let mut out: Option<Vec<u8>> = None;
    let mut from = 0;
    let mut copied = 0;
    while let Some(at) = memchr::memmem::find(&line[from..], needle.as_bytes()).map(|i| i + from) {
        let value = at + needle.len();
        from = value;
        let before = &line[..at];
        let separated = matches!(before.last(), Some(b'?' | b'&' | b';'))
            || before.ends_with(b"\\u0026")
            || before.ends_with(b"&amp;");
        if !separated {
            continue;
        }
        let end = line[value..]
            .iter()
            .position(|b| matches!(b, b'&' | b';' | b'#' | b' ' | b'\t' | b'"' | b'\'' | b'\\'))
            .map_or(line.len(), |i| value + i);
        let out = out.get_or_insert_with(|| Vec::with_capacity(line.len()));
        out.extend_from_slice(&line[copied..value]);
        out.extend_from_slice(b"[redacted]");
        copied = end;
        from = end;
    }
    let mut out = out?;
    out.extend_from_slice(&line[copied..]);
    Some(out)
}

/// An event of the agent's own about the log named `key`.
pub fn marker(key: &str, now_us: i64, kind: Kind, message: &str) -> WireEvent {
    WireEvent {
        seq: 0,
        time_us: now_us,
        source: Source::Agent,
        kind,
        outcome: Outcome::Info,
        actor: None,
        key_prefix: None,
        ip: None,
        method: None,
        path: Some(key.to_owned()),
        status: None,
        message: Some(message.to_owned()),
        raw: String::new(),
        flags: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_in_the_query_is_redacted_before_anything_reads_the_line() {
        let mut log = LogConfig::file(
            "/var/log/nginx/access.log",
            Format::NginxCombined,
            Source::Proxy,
        );
        log.redact_query = Some("token".into());
        let line = b"203.0.113.9 - - [07/Dec/2026:10:00:00 +0000] \"GET /api/notes?x=1&token=s3cret-KEY-value&y=2 HTTP/1.1\" 401 24 \"-\" \"curl\" ?mytoken=keep";
        let e = event(&log, line, 0, 0, None);
        assert!(
            !e.raw.contains("s3cret") && !e.path.as_deref().unwrap_or("").contains("s3cret"),
            "the key is in neither the raw line nor the path: {e:?}"
        );
        assert!(
            e.raw.contains("?x=1&token=[redacted]&y=2") && e.raw.ends_with("?mytoken=keep"),
            "only that parameter's value is replaced, not a longer name ending in it: {}",
            e.raw
        );
        assert_eq!(
            (e.kind, e.outcome, e.status),
            (Kind::Auth, Outcome::Failure, Some(401)),
            "the line is still read for what it says"
        );
        for spelt in [
            "{\"uri\": \"/api?x=1\\u0026token=s3cret\"}",
            "<a href=\"/api?x=1&amp;token=s3cret\">",
            "GET /api;token=s3cret HTTP/1.1",
        ] {
            let out = redacted(spelt.to_owned(), Some("token"));
            assert!(
                !out.contains("s3cret") && out.contains("token=[redacted]"),
                "redacted as JSON, HTML and ; separators spell it too: {out}"
            );
        }
        log.redact_query = None;
        assert!(
            event(&log, line, 0, 0, None).raw.contains("s3cret"),
            "without a query key nothing is changed"
        );
    }

    #[test]
    fn a_pattern_line_is_an_event_and_a_line_it_does_not_match_is_kept() {
        let format = gatehouse_events::LineFormat::from_parts(
            "pattern",
            Some(r"^\[(?P<time>[^\]]+)\] (?P<outcome>\w+) key=(?P<key_prefix>\w+) ip=(?P<ip>\S+)$"),
            Some("nginx"),
        )
        .expect("compiles");
        let log = LogConfig::file("/srv/memo/auth.log", format, Source::Service);
        let e = event(
            &log,
            b"[23/Nov/2026:02:41:57 +0000] refused key=sk_live ip=203.0.113.7",
            0,
            1_795_401_800_000_000,
            None,
        );
        assert_eq!(
            (e.kind, e.outcome, e.ip.as_deref(), e.key_prefix.as_deref()),
            (
                Kind::Auth,
                Outcome::Failure,
                Some("203.0.113.7"),
                Some("sk_live")
            ),
            "a refused key from its address: {e:?}"
        );
        assert_eq!(e.time_us, 1_795_401_717_000_000, "the line's own time");
        let other = event(&log, b"memo 1.2 starting", 0, 7, None);
        assert_eq!(
            (other.kind, other.message.as_deref(), other.raw.as_str()),
            (
                Kind::Unparsed,
                Some("the line does not match the pattern"),
                "memo 1.2 starting"
            ),
            "a line the pattern does not match is kept, unparsed, with its text"
        );
        let nginx = LogConfig::file(
            "/var/log/nginx/access.log",
            Format::NginxCombined,
            Source::Proxy,
        );
        let garbled = event(&nginx, b"upstream said: nothing", 0, 7, None);
        assert_eq!(
            (garbled.kind, garbled.message.as_deref()),
            (
                Kind::Unparsed,
                Some("does not fit the nginx_combined format: no [time]")
            ),
            "a line a built-in format cannot read says which format and what did not fit"
        );
    }

    #[test]
    fn the_profile_says_which_statuses_of_the_config_s_logs_are_failed_sign_ins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let portal = include_str!("../../../profiles/sekha.toml")
            .replace("name = \"sekha\"", "name = \"portal\"")
            .replace("missing = { status = 401,", "missing = { status = 403,")
            .replace("malformed = { status = 400,", "malformed = { status = 401,");
        std::fs::write(dir.path().join("portal.toml"), portal).expect("profile");
        let log = |profile: &str| {
            let mut config = crate::config::AgentConfig::for_test(std::path::PathBuf::from("/x"))
                .with_profile(profile)
                .with_logs(vec![LogConfig::file(
                    "/srv/proxy.log",
                    Format::NginxCombined,
                    Source::Proxy,
                )]);
            config.profiles_dir = Some(dir.path().to_owned());
            crate::config::Settings::resolve(&config)
                .logs()
                .expect("its [[logs]]")[0]
                .clone()
        };
        let event = |log: &LogConfig, status: u16| {
            let line = format!(
                r#"203.0.113.7 - - [23/Nov/2026:02:41:57 +0000] "GET / HTTP/1.1" {status} 1 "-" "x""#
            );
            let e = event(log, line.as_bytes(), 0, 1_795_401_800_000_000, None);
            (e.kind, e.outcome)
        };
        let portal = log("portal");
        assert_eq!(
            event(&portal, 403),
            (Kind::Request, Outcome::Failure),
            "the portal answers visitors without a key 403: refused requests, not sign-ins"
        );
        assert_eq!(
            event(&portal, 401),
            (Kind::Auth, Outcome::Failure),
            "its wrong-key answer is a failed sign-in"
        );
        let sekha = log("sekha");
        assert_eq!(
            event(&sekha, 403),
            (Kind::Auth, Outcome::Failure),
            "for Sekha a 403 stays a failed sign-in"
        );
    }

    /// `[auth] sign_in_paths`: a refusal is a failed sign-in only on those paths; a page
    /// elsewhere that wants a session (behind the same proxy) is a refused request, so a
    /// visitor reloading it five times is no brute force.
    #[test]
    fn a_refusal_is_a_failed_sign_in_only_where_the_profile_says_sign_ins_are() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wiki = include_str!("../../../profiles/sekha.toml")
            .replace("name = \"sekha\"", "name = \"wiki\"")
            .replace(
                "[auth]\n",
                "[auth]\nsign_in_paths = [\"/login\", \"/api/\"]\n",
            );
        assert!(
            wiki.contains("sign_in_paths"),
            "the test's profile has the paths"
        );
        std::fs::write(dir.path().join("wiki.toml"), wiki).expect("profile");
        let mut config = crate::config::AgentConfig::for_test(std::path::PathBuf::from("/x"))
            .with_profile("wiki")
            .with_logs(vec![LogConfig::file(
                "/srv/proxy.log",
                Format::NginxCombined,
                Source::Proxy,
            )]);
        config.profiles_dir = Some(dir.path().to_owned());
        let log = crate::config::Settings::resolve(&config)
            .logs()
            .expect("its [[logs]]")[0]
            .clone();
        let event = |path: &str| {
            let line = format!(
                r#"203.0.113.7 - - [23/Nov/2026:02:41:57 +0000] "POST {path} HTTP/1.1" 401 1 "-" "x""#
            );
            let e = event(&log, line.as_bytes(), 0, 1_795_401_800_000_000, None);
            (e.kind, e.outcome)
        };
        assert_eq!(
            event("/login"),
            (Kind::Auth, Outcome::Failure),
            "a refused sign-in form is a failed sign-in"
        );
        assert_eq!(
            event("/api/v1/pages"),
            (Kind::Auth, Outcome::Failure),
            "so is a refused API key"
        );
        assert_eq!(
            event("/wiki/Private"),
            (Kind::Request, Outcome::Failure),
            "a page that wants a session is a refused request"
        );
        // The client writes the path: spellings a server routes to the sign-in form are the
        // sign-in form (else a brute force passes as refused requests).
        for path in [
            "//login",
            "/./login",
            "/LOGIN",
            "/%6Cogin",
            "/x/../login",
            "http://wiki.example/login",
            "/login?next=/",
            "/api//v1/pages",
        ] {
            assert_eq!(
                event(path),
                (Kind::Auth, Outcome::Failure),
                "{path} is the sign-in form"
            );
        }
        assert_eq!(
            event("/login-help"),
            (Kind::Request, Outcome::Failure),
            "a path that merely starts with the same letters is not"
        );
    }
}
