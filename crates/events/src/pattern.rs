//! A log format given as a regular expression with named captures, for a service whose log
//! is in none of the built-in formats (`format = "pattern"` in a profile's log source).
//!
//! The expression is compiled once, when the profile is read; an expression that does not
//! compile, or that names a capture Gatehouse does not know, refuses the profile. A line the
//! expression does not match is unparsed (kept with its raw text, and counted), as in every
//! other format.

use std::borrow::Cow;
use std::sync::Arc;

use crate::{classify_status, utf8, Kind, Outcome, Parsed, Unparsed};

/// The captures a pattern may name, and what each holds.
pub const CAPTURES: &[(&str, &str)] = &[
    ("time", "when, read with time_format"),
    ("ip", "the client's address"),
    ("user", "who: a user or key name"),
    ("key_prefix", "the first characters of the key presented"),
    ("status", "the HTTP status"),
    ("method", "the HTTP method"),
    ("path", "the request's path"),
    (
        "outcome",
        "an authentication decision: success, failure or error",
    ),
    ("message", "a short description"),
];

/// How the `time` capture is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    /// `2026-11-23T02:41:57.390647Z`, with an offset or `Z` (the default).
    Rfc3339,
    /// nginx's `$time_local`: `23/Nov/2026:02:41:57 +0000`.
    Nginx,
    /// Seconds since the epoch, with an optional fraction: `1795401717.390`.
    Unix,
    /// Milliseconds since the epoch.
    UnixMs,
}

impl TimeFormat {
    pub const WORDS: &'static str = "rfc3339, nginx, unix or unix_ms";

    pub fn from_word(word: &str) -> Option<TimeFormat> {
        match word {
            "rfc3339" => Some(TimeFormat::Rfc3339),
            "nginx" => Some(TimeFormat::Nginx),
            "unix" => Some(TimeFormat::Unix),
            "unix_ms" => Some(TimeFormat::UnixMs),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TimeFormat::Rfc3339 => "rfc3339",
            TimeFormat::Nginx => "nginx",
            TimeFormat::Unix => "unix",
            TimeFormat::UnixMs => "unix_ms",
        }
    }

    fn read(self, text: &str) -> Option<i64> {
        match self {
            TimeFormat::Rfc3339 => crate::parse_rfc3339(text.as_bytes()),
            TimeFormat::Nginx => crate::parse_nginx_time(text.as_bytes()),
            TimeFormat::Unix => {
                let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
                if whole.is_empty()
                    || !whole.bytes().all(|b| b.is_ascii_digit())
                    || !frac.bytes().all(|b| b.is_ascii_digit())
                {
                    return None;
                }
                let seconds: i64 = whole.parse().ok()?;
                let mut micros = 0i64;
                for i in 0..6 {
                    micros =
                        micros * 10 + frac.as_bytes().get(i).map_or(0, |d| i64::from(d - b'0'));
                }
                seconds.checked_mul(1_000_000)?.checked_add(micros)
            }
            TimeFormat::UnixMs => {
                if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                text.parse::<i64>().ok()?.checked_mul(1000)
            }
        }
    }
}

/// Capture group indexes, by the names in [`CAPTURES`].
#[derive(Debug, Clone, Copy, Default)]
struct Slots {
    time: Option<usize>,
    ip: Option<usize>,
    user: Option<usize>,
    key_prefix: Option<usize>,
    status: Option<usize>,
    method: Option<usize>,
    path: Option<usize>,
    outcome: Option<usize>,
    message: Option<usize>,
}

/// A compiled pattern format.
#[derive(Debug)]
pub struct Pattern {
    source: String,
    time_format: TimeFormat,
    regex: regex::Regex,
    slots: Slots,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source && self.time_format == other.time_format
    }
}

impl Eq for Pattern {}

/// The longest pattern accepted, and the most memory its compiled form may take: a pattern
/// is written by an operator, but it is compiled by the agent, as root.
const MAX_PATTERN: usize = 4096;
const MAX_COMPILED: usize = 2 * 1024 * 1024;

impl Pattern {
    /// Compile `pattern`; `time_format` says how its `time` capture is read (default
    /// `rfc3339`). An error says what is wrong, for a person.
    pub fn new(pattern: &str, time_format: Option<&str>) -> Result<Arc<Pattern>, String> {
        if pattern.len() > MAX_PATTERN {
            return Err(format!("pattern is longer than {MAX_PATTERN} characters"));
        }
        let regex = regex::RegexBuilder::new(pattern)
            .size_limit(MAX_COMPILED)
            .build()
            .map_err(|e| format!("pattern does not compile: {e}"))?;
        let mut slots = Slots::default();
        let mut named = 0;
        for (index, name) in regex.capture_names().enumerate() {
            let Some(name) = name else { continue };
            let slot = match name {
                "time" => &mut slots.time,
                "ip" => &mut slots.ip,
                "user" => &mut slots.user,
                "key_prefix" => &mut slots.key_prefix,
                "status" => &mut slots.status,
                "method" => &mut slots.method,
                "path" => &mut slots.path,
                "outcome" => &mut slots.outcome,
                "message" => &mut slots.message,
                other => {
                    let known: Vec<&str> = CAPTURES.iter().map(|(n, _)| *n).collect();
                    return Err(format!(
                        "pattern names the capture {other:?}, which is not one of {}",
                        known.join(", ")
                    ));
                }
            };
            // The regex crate refuses a name used twice, so each slot is set once.
            *slot = Some(index);
            named += 1;
        }
        if named == 0 {
            return Err(
                "pattern names no capture: give at least one of (?P<ip>…), (?P<status>…), (?P<outcome>…)…"
                    .into(),
            );
        }
        let time_format = match time_format {
            None => TimeFormat::Rfc3339,
            Some(word) => TimeFormat::from_word(word).ok_or_else(|| {
                format!("time_format {word:?} is not one of {}", TimeFormat::WORDS)
            })?,
        };
        if slots.time.is_none() && time_format != TimeFormat::Rfc3339 {
            return Err("time_format is given but the pattern has no (?P<time>…) capture".into());
        }
        Ok(Arc::new(Pattern {
            source: pattern.to_owned(),
            time_format,
            regex,
            slots,
        }))
    }

    /// Whether a line's kind and outcome come from its status (it has no `outcome`
    /// capture).
    pub fn decides_by_status(&self) -> bool {
        self.slots.outcome.is_none()
    }

    /// Whether it has an `ip` capture.
    pub fn captures_ip(&self) -> bool {
        self.slots.ip.is_some()
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn time_format(&self) -> TimeFormat {
        self.time_format
    }

    /// Parse one line (length, byte-order mark and UTF-8 are checked by the caller).
    pub(crate) fn parse<'a>(&self, line: &'a [u8]) -> Result<Parsed<'a>, Unparsed> {
        let text = utf8(line)?;
        let caps = self.regex.captures(text).ok_or(Unparsed {
            reason: "the line does not match the pattern",
        })?;
        let get = |slot: Option<usize>| -> Option<&'a str> {
            slot.and_then(|i| caps.get(i))
                .map(|m| &text[m.range()])
                .filter(|s| !s.is_empty())
        };
        let status = match get(self.slots.status) {
            None | Some("-") => None,
            Some(s) => Some(
                s.parse::<u16>()
                    .ok()
                    .filter(|s| (100..=599).contains(s))
                    .ok_or(Unparsed {
                        reason: "the status capture is not an HTTP status",
                    })?,
            ),
        };
        let outcome = get(self.slots.outcome).map(outcome_word);
        let (kind, outcome) = match (status, outcome) {
            // The line says how a sign-in ended: an authentication decision.
            (_, Some(outcome)) => (Kind::Auth, outcome),
            (Some(status), None) => classify_status(status),
            (None, None) => (Kind::Log, Outcome::Info),
        };
        let mut parsed = Parsed::new(kind, outcome);
        parsed.status = status;
        if let Some(t) = get(self.slots.time) {
            parsed.time_us = Some(self.time_format.read(t).ok_or(Unparsed {
                reason: "the time capture does not read with the time_format",
            })?);
        }
        parsed.set_client(get(self.slots.ip).map(Cow::Borrowed));
        parsed.actor = get(self.slots.user)
            .filter(|u| *u != "-")
            .map(Cow::Borrowed);
        parsed.key_prefix = get(self.slots.key_prefix).map(Cow::Borrowed);
        parsed.method = get(self.slots.method).map(Cow::Borrowed);
        parsed.path = get(self.slots.path).map(Cow::Borrowed);
        parsed.message = get(self.slots.message).map(Cow::Borrowed);
        Ok(parsed)
    }
}

/// An outcome capture's word: what services write for a sign-in's end.
fn outcome_word(word: &str) -> Outcome {
    const SUCCESS: &[&str] = &[
        "success",
        "succeeded",
        "successful",
        "ok",
        "accepted",
        "allowed",
        "authenticated",
        "pass",
        "passed",
    ];
    const FAILURE: &[&str] = &[
        "failure",
        "failed",
        "fail",
        "denied",
        "refused",
        "rejected",
        "invalid",
        "unauthorized",
        "forbidden",
    ];
    let is = |list: &[&str]| list.iter().any(|w| w.eq_ignore_ascii_case(word));
    if is(SUCCESS) {
        Outcome::Success
    } else if is(FAILURE) {
        Outcome::Failure
    } else if word.eq_ignore_ascii_case("error") {
        Outcome::Error
    } else {
        Outcome::Info
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LineFormat;

    const AUTH: &str = r"^(?P<time>\S+) auth (?P<outcome>\w+) user=(?P<user>\S+) key=(?P<key_prefix>\w+)\S* from (?P<ip>\S+)$";
    const ACCESS: &str = r#"^\[(?P<time>[^\]]+)\] (?P<ip>\S+) "(?P<method>[A-Z]+) (?P<path>\S+)" (?P<status>\d{3}|-)"#;

    fn pattern(p: &str, t: Option<&str>) -> LineFormat {
        LineFormat::Pattern(Pattern::new(p, t).expect("compiles"))
    }

    #[test]
    fn captures_become_the_event_s_fields() {
        let f = pattern(AUTH, None);
        let p = f
            .parse(b"2026-11-23T02:41:57.5Z auth failed user=admin key=sk_live_abc from ::ffff:203.0.113.7")
            .expect("matches");
        assert_eq!(
            (p.kind, p.outcome),
            (Kind::Auth, Outcome::Failure),
            "an outcome capture makes the line a sign-in decision"
        );
        assert_eq!(p.time_us, Some(1_795_401_717_500_000), "rfc3339 by default");
        assert_eq!(p.actor.as_deref(), Some("admin"), "user");
        assert_eq!(p.key_prefix.as_deref(), Some("sk_live_abc"), "key prefix");
        assert_eq!(
            p.ip.as_deref(),
            Some("203.0.113.7"),
            "the address in its canonical form, as every format gives it"
        );
        let ok = f
            .parse(b"2026-11-23T02:41:57Z auth ACCEPTED user=admin key=sk from 203.0.113.7")
            .expect("matches");
        assert_eq!(ok.outcome, Outcome::Success, "outcome words are case-blind");

        let f = pattern(ACCESS, Some("nginx"));
        let p = f
            .parse(br#"[23/Nov/2026:02:41:57 +0000] 198.51.100.4 "POST /api/items" 401 12"#)
            .expect("matches");
        assert_eq!(
            (p.kind, p.outcome, p.status),
            (Kind::Auth, Outcome::Failure, Some(401)),
            "a status is classified as the access logs' are"
        );
        assert_eq!(p.time_us, Some(1_795_401_717_000_000), "nginx time");
        assert_eq!(
            (p.method.as_deref(), p.path.as_deref()),
            (Some("POST"), Some("/api/items")),
            "method and path"
        );
        let p = f
            .parse(br#"[23/Nov/2026:02:41:57 +0000] 198.51.100.4 "GET /health" 200 2"#)
            .expect("matches");
        assert_eq!(
            (p.kind, p.outcome),
            (Kind::Request, Outcome::Success),
            "a 200 is a request"
        );

        let unix = pattern(r"^(?P<time>[\d.]+) (?P<message>.*)$", Some("unix"));
        let p = unix.parse(b"1795401717.25 started").expect("matches");
        assert_eq!(p.time_us, Some(1_795_401_717_250_000), "fractional seconds");
        assert_eq!(
            (p.kind, p.message.as_deref()),
            (Kind::Log, Some("started")),
            "no status or outcome: a log line"
        );
        let ms = pattern(r"^(?P<time>\d+) (?P<message>.*)$", Some("unix_ms"));
        assert_eq!(
            ms.parse(b"1795401717250 x").expect("matches").time_us,
            Some(1_795_401_717_250_000),
            "milliseconds"
        );
    }

    #[test]
    fn lines_that_do_not_fit_are_unparsed_never_a_panic() {
        let f = pattern(ACCESS, Some("nginx"));
        for (line, reason) in [
            (
                &b"something else entirely"[..],
                "the line does not match the pattern",
            ),
            (
                br#"[yesterday] 198.51.100.4 "GET /" 200"#,
                "the time capture does not read with the time_format",
            ),
            (
                br#"[23/Nov/2026:02:41:57 +0000] 198.51.100.4 "GET /" 999"#,
                "the status capture is not an HTTP status",
            ),
            (b"\xff\xfe[", "not valid UTF-8"),
        ] {
            assert_eq!(
                f.parse(line).map(|_| ()).expect_err("refused").reason,
                reason,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
        let p = f
            .parse(br#"[23/Nov/2026:02:41:57 +0000] <script> "GET /" 200"#)
            .expect("matches");
        assert!(
            p.ip.is_none() && p.address_unreadable,
            "text that is not an address never becomes one"
        );
        let long = vec![b'a'; crate::MAX_LINE + 1];
        assert!(f.parse(&long).is_err(), "a line over 64 KiB is refused");
    }

    #[test]
    fn bad_patterns_are_refused_with_the_reason() {
        for (pattern, time_format, wanted) in [
            (r"(?P<ip>\S+", None, "does not compile"),
            (
                r"(?P<address>\S+)",
                None,
                "\"address\", which is not one of time, ip",
            ),
            (r"\S+ \d+", None, "names no capture"),
            (
                r"(?P<time>\S+)",
                Some("strftime"),
                "time_format \"strftime\"",
            ),
            (r"(?P<ip>\S+)", Some("nginx"), "no (?P<time>…) capture"),
        ] {
            let err = Pattern::new(pattern, time_format).expect_err(pattern);
            assert!(err.contains(wanted), "{pattern}: {err}");
        }
        let huge = format!("(?P<ip>{})", "a".repeat(5000));
        assert!(
            Pattern::new(&huge, None).is_err(),
            "an enormous pattern is refused"
        );
    }
}
