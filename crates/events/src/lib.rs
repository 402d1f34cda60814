//! Log lines to normalized events.
//!
//! Every supported format has a parser here: the services' own logs (Sekha's tracing text,
//! RAE's and Jelmore's structlog JSON, uvicorn's access line) and the reverse proxies' access
//! logs (nginx combined and JSON, Caddy JSON). A parser borrows from the line and allocates
//! only where the line has JSON escapes, so the agent can parse millions of lines a second.
//! A line no parser understands is an error value, never a panic: the caller keeps it as an
//! `unparsed` event with its raw text.

mod access;
mod address;
mod json;
pub mod keypath;
pub mod pattern;
pub mod profile;
mod service;
mod time;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

pub use crate::address::parse_address;
pub use crate::keypath::KeyPath;
pub use crate::pattern::Pattern;
pub use crate::profile::{Profile, ProfileError};
pub use crate::time::{parse_nginx_time, parse_rfc3339};

/// Longest line kept whole; longer lines are cut here and flagged.
pub const MAX_LINE: usize = 64 * 1024;

/// An enum whose values have one word each, used everywhere the value is stored, sent or
/// shown: the agent's buffer, the wire, the console's store, the UI (its TypeScript is
/// generated from these types), the CLI.
macro_rules! vocabulary {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "ts", derive(ts_rs::TS))]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value's word.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }

            /// The value a word names.
            pub fn from_word(word: &str) -> Option<Self> {
                match word { $($word => Some($name::$variant),)+ _ => None }
            }

            /// The words, for messages: "a, b or c".
            pub fn words() -> String {
                let all: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                match all.split_last() {
                    Some((last, [])) => (*last).to_owned(),
                    Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                    None => String::new(),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownWord;

            fn from_str(word: &str) -> Result<Self, UnknownWord> {
                $name::from_word(word).ok_or_else(|| UnknownWord {
                    what: stringify!($name),
                    word: word.to_owned(),
                    expected: $name::words(),
                })
            }
        }
    };
}

/// A word that names no value of a vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownWord {
    pub what: &'static str,
    pub word: String,
    /// The words that would do.
    pub expected: String,
}

impl std::fmt::Display for UnknownWord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} is not one of {}", self.word, self.expected)
    }
}

impl std::error::Error for UnknownWord {}

vocabulary! {
    /// What an event is about.
    pub enum Kind {
        /// An authentication decision: a key or token accepted or refused.
        Auth = "auth",
        /// A request seen by an access log.
        Request = "request",
        /// A request refused for its rate.
        RateLimit = "rate_limit",
        /// The service itself: start-up, configuration, shutdown.
        Service = "service",
        /// Any other line the service logged.
        Log = "log",
        /// A line no parser understood, kept with its raw text.
        Unparsed = "unparsed",
        /// Events were lost here (a buffer overflowed); never silent.
        Gap = "gap",
        /// Something the console itself did (an enrollment, a rotation, a block).
        Console = "console",
    }
}

vocabulary! {
    /// How it ended.
    pub enum Outcome {
        Success = "success",
        Failure = "failure",
        Error = "error",
        Info = "info",
    }
}

vocabulary! {
    /// Which log an event came from. A failed sign-in is often logged by several; it is
    /// counted from the first an instance has of proxy, access, service.
    pub enum Source {
        /// The reverse proxy's access log (the one client address that can be trusted).
        Proxy = "proxy",
        /// The service's own access log (uvicorn).
        Access = "access",
        /// The service's application log.
        Service = "service",
        /// The agent's own markers (a gap).
        Agent = "agent",
        /// The console's own actions.
        Console = "console",
    }
}

vocabulary! {
    /// How bad a finding is: a detection rule's firing, an alert, an incident.
    pub enum Severity {
        Low = "low",
        Medium = "medium",
        High = "high",
    }
}

impl Source {
    /// The source a followed log is written as: `proxy`, `access` or `service` (the agent's
    /// and the console's own events are read from no log).
    pub fn for_log(word: &str) -> Result<Source, String> {
        match word.parse::<Source>() {
            Ok(source @ (Source::Proxy | Source::Access | Source::Service)) => Ok(source),
            Ok(_) => Err(format!(
                "source {word:?} is for Gatehouse's own events; a log is proxy, access or service"
            )),
            Err(_) => Err(format!(
                "source {word:?} is not one of proxy, access or service"
            )),
        }
    }
}

/// The formats a log source can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Sekha: `tracing` fmt text, ANSI colours unless NO_COLOR.
    SekhaTracing,
    /// RAE and Jelmore: one structlog JSON object per line.
    Structlog,
    /// uvicorn's access line: `INFO:     127.0.0.1:58196 - "GET /health HTTP/1.1" 200 OK`.
    UvicornAccess,
    /// nginx `combined`.
    NginxCombined,
    /// nginx with a JSON `log_format` (see `profiles/README.md` for the fields).
    NginxJson,
    /// Caddy's JSON access log.
    CaddyJson,
}

/// A line, understood. Borrowed from the line wherever possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// Microseconds since the Unix epoch (UTC). `None` when the line carries no time (uvicorn
    /// access lines); the reader stamps those with the time it read them.
    pub time_us: Option<i64>,
    pub kind: Kind,
    pub outcome: Outcome,
    /// Who: a key name, a user id.
    pub actor: Option<Cow<'a, str>>,
    /// The first characters of a presented key, as the service logged them.
    pub key_prefix: Option<Cow<'a, str>>,
    /// The client's address, parsed as an IP address and written in its canonical form
    /// (IPv4, or IPv6 without brackets; an IPv4-mapped IPv6 address as its IPv4 address).
    /// Never anything else: see `address_unreadable`.
    pub ip: Option<Cow<'a, str>>,
    pub method: Option<Cow<'a, str>>,
    pub path: Option<Cow<'a, str>>,
    pub status: Option<u16>,
    /// A short description: the structlog event, the tracing message.
    pub message: Option<Cow<'a, str>>,
    /// The line names a client, but what it names is not an IP address (`999.999.999.999`,
    /// markup, a host name): `ip` is `None`, so the text can reach no offender list, alert or
    /// block; it stays in the raw line only. The caller flags the event.
    pub address_unreadable: bool,
    /// `time_us` is when the line was read, not a time the line carries (see
    /// [`Format::parse_read_at`]).
    pub time_from_reader: bool,
}

impl<'a> Parsed<'a> {
    fn new(kind: Kind, outcome: Outcome) -> Self {
        Parsed {
            time_us: None,
            kind,
            outcome,
            actor: None,
            key_prefix: None,
            ip: None,
            method: None,
            path: None,
            status: None,
            message: None,
            address_unreadable: false,
            time_from_reader: false,
        }
    }

    /// Set the client address from a log field: an IP address is kept in its canonical form;
    /// no field, an empty one, `-` or `unknown` is no address; anything else is unreadable.
    fn set_client(&mut self, text: Option<Cow<'a, str>>) {
        let Some(text) = text else { return };
        // Nearly every line: an IPv4 address as written, kept as it is.
        if address::dotted_quad(text.as_bytes()) {
            self.ip = Some(text);
            return;
        }
        if matches!(text.trim(), "" | "-" | "unknown") {
            return;
        }
        match address::canonical(text) {
            Some(ip) => self.ip = Some(ip),
            None => self.address_unreadable = true,
        }
    }
}

/// Why a line was not understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unparsed {
    pub reason: &'static str,
}

impl Format {
    /// Whether it is an access log's format: a line per request, with its client and status.
    pub fn is_access(self) -> bool {
        matches!(
            self,
            Format::UvicornAccess | Format::NginxCombined | Format::NginxJson | Format::CaddyJson
        )
    }

    /// The format's word, as configs and profiles spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::SekhaTracing => "sekha_tracing",
            Format::Structlog => "structlog",
            Format::UvicornAccess => "uvicorn_access",
            Format::NginxCombined => "nginx_combined",
            Format::NginxJson => "nginx_json",
            Format::CaddyJson => "caddy_json",
        }
    }

    /// The built-in format a word names.
    pub fn from_word(word: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str() == word)
    }

    /// Every supported format.
    pub const ALL: [Format; 6] = [
        Format::SekhaTracing,
        Format::Structlog,
        Format::UvicornAccess,
        Format::NginxCombined,
        Format::NginxJson,
        Format::CaddyJson,
    ];

    /// Parse one line (without its newline). A byte-order mark at its start (a file saved by
    /// an editor that adds one) is not part of the line.
    pub fn parse(self, line: &[u8]) -> Result<Parsed<'_>, Unparsed> {
        if line.len() > MAX_LINE {
            return Err(Unparsed {
                reason: "line longer than 64 KiB",
            });
        }
        let line = line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(line);
        match self {
            Format::SekhaTracing => service::sekha_tracing(line),
            Format::Structlog => service::structlog(line),
            Format::UvicornAccess => access::uvicorn(line),
            Format::NginxCombined => access::nginx_combined(line),
            Format::NginxJson => access::nginx_json(line),
            Format::CaddyJson => access::caddy_json(line),
        }
    }
}

/// A log source's format: a built-in one, or a pattern an operator wrote (see
/// [`pattern`]), compiled once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineFormat {
    Builtin(Format),
    Pattern(std::sync::Arc<Pattern>),
}

impl From<Format> for LineFormat {
    fn from(format: Format) -> Self {
        LineFormat::Builtin(format)
    }
}

impl PartialEq<Format> for LineFormat {
    fn eq(&self, other: &Format) -> bool {
        matches!(self, LineFormat::Builtin(f) if f == other)
    }
}

impl LineFormat {
    /// The word configs and profiles spell the format with: a built-in format's, or
    /// `pattern`.
    pub const PATTERN: &'static str = "pattern";

    /// A format as a config or profile gives it: `format`, and with `format = "pattern"`
    /// its `pattern` and `time_format`. An error says what is wrong, for a person.
    pub fn from_parts(
        format: &str,
        pattern: Option<&str>,
        time_format: Option<&str>,
    ) -> Result<LineFormat, String> {
        if format == Self::PATTERN {
            let pattern = pattern.ok_or("format = \"pattern\" needs a `pattern`")?;
            return Pattern::new(pattern, time_format).map(LineFormat::Pattern);
        }
        let builtin = Format::from_word(format).ok_or_else(|| {
            format!(
                "unknown log format {format:?}: one of {}, or pattern",
                Format::ALL.map(Format::as_str).join(", ")
            )
        })?;
        if pattern.is_some() || time_format.is_some() {
            return Err(format!(
                "`pattern` and `time_format` go with format = \"pattern\", not {format:?}"
            ));
        }
        Ok(LineFormat::Builtin(builtin))
    }

    /// The format's word (`nginx_combined`, `pattern`).
    pub fn name(&self) -> &'static str {
        match self {
            LineFormat::Builtin(f) => f.as_str(),
            LineFormat::Pattern(_) => Self::PATTERN,
        }
    }

    /// Whether the format decides a line's kind and outcome by its HTTP status alone (an
    /// access log; a pattern without an `outcome` capture), so what counts as a failed
    /// sign-in is the profile's to say (see [`profile::SignIns`]).
    pub fn decides_by_status(&self) -> bool {
        match self {
            LineFormat::Builtin(f) => f.is_access(),
            LineFormat::Pattern(p) => p.decides_by_status(),
        }
    }

    /// Whether the format's lines name the client of each request they record (an access
    /// log's, or a pattern with an `ip` capture): where a failed sign-in's address comes from.
    pub fn names_clients(&self) -> bool {
        match self {
            LineFormat::Builtin(f) => f.is_access(),
            LineFormat::Pattern(p) => p.captures_ip(),
        }
    }

    /// The built-in format, if it is one.
    pub fn builtin(&self) -> Option<Format> {
        match self {
            LineFormat::Builtin(f) => Some(*f),
            LineFormat::Pattern(_) => None,
        }
    }

    /// Parse one line, as [`Format::parse`] does.
    pub fn parse<'a>(&self, line: &'a [u8]) -> Result<Parsed<'a>, Unparsed> {
        match self {
            LineFormat::Builtin(f) => f.parse(line),
            LineFormat::Pattern(p) => {
                if line.len() > MAX_LINE {
                    return Err(Unparsed {
                        reason: "line longer than 64 KiB",
                    });
                }
                p.parse(line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(line))
            }
        }
    }

    /// Parse one line read at `read_us`, as [`Format::parse_read_at`] does.
    pub fn parse_read_at<'a>(&self, line: &'a [u8], read_us: i64) -> Result<Parsed<'a>, Unparsed> {
        let mut parsed = self.parse(line)?;
        stamp_read_at(&mut parsed, read_us);
        Ok(parsed)
    }
}

fn stamp_read_at(parsed: &mut Parsed<'_>, read_us: i64) {
    match parsed.time_us {
        Some(t) if t <= read_us.saturating_add(FUTURE_SKEW_US) => {}
        _ => {
            parsed.time_us = Some(read_us);
            parsed.time_from_reader = true;
        }
    }
}

/// How far ahead of the reader's clock a line's own time may be before the time it was read
/// replaces it.
pub const FUTURE_SKEW_US: i64 = 5 * 60 * 1_000_000;

impl Format {
    /// Parse one line read at `read_us` (microseconds since the epoch): a line that carries no
    /// time (uvicorn's access line) or one from beyond [`FUTURE_SKEW_US`] ahead gets `read_us`,
    /// with `time_from_reader` set, so nothing that reads a log file (the agent, `scan`) puts
    /// a line at 1970 or years ahead.
    pub fn parse_read_at(self, line: &[u8], read_us: i64) -> Result<Parsed<'_>, Unparsed> {
        let mut parsed = self.parse(line)?;
        stamp_read_at(&mut parsed, read_us);
        Ok(parsed)
    }
}

/// The outcome of a request by its status, for a line that is about the request and not
/// about its authentication (Jelmore's `Request completed`, uvicorn's line in a stream that
/// also carries the service's own authentication lines): counted once, as a request.
pub fn request_outcome(status: u16) -> Outcome {
    match status {
        500..=599 => Outcome::Error,
        400..=499 => Outcome::Failure,
        _ => Outcome::Success,
    }
}

/// Kind and outcome of an HTTP status seen in an access log.
pub fn classify_status(status: u16) -> (Kind, Outcome) {
    match status {
        401 | 403 => (Kind::Auth, Outcome::Failure),
        429 => (Kind::RateLimit, Outcome::Failure),
        500..=599 => (Kind::Request, Outcome::Error),
        400..=499 => (Kind::Request, Outcome::Failure),
        _ => (Kind::Request, Outcome::Success),
    }
}

/// The line as text (checked with SIMD: a log line is mostly ASCII, and this runs for every
/// line read).
fn utf8(bytes: &[u8]) -> Result<&str, Unparsed> {
    simdutf8::basic::from_utf8(bytes).map_err(|_| Unparsed {
        reason: "not valid UTF-8",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// uvicorn's access line has no time of its own: read without one, every window of a scan
    /// of such a file was in 1970.
    #[test]
    fn a_line_without_a_time_or_from_the_future_gets_the_time_it_was_read() {
        let read = 1_795_401_717_000_000;
        let uvicorn = Format::UvicornAccess
            .parse_read_at(
                br#"INFO:     203.0.113.7:40000 - "GET /api/v1/v1/sessions HTTP/1.1" 401 Unauthorized"#,
                read,
            )
            .expect("parses");
        assert_eq!(
            (uvicorn.time_us, uvicorn.time_from_reader),
            (Some(read), true),
            "the time it was read, flagged as such"
        );
        let future = Format::NginxCombined
            .parse_read_at(
                br#"203.0.113.7 - - [01/Jan/2099:00:00:00 +0000] "GET / HTTP/1.1" 401 1 "-" "x""#,
                read,
            )
            .expect("parses");
        assert_eq!(
            (future.time_us, future.time_from_reader),
            (Some(read), true),
            "a time years ahead is replaced too"
        );
        let own = Format::NginxCombined
            .parse_read_at(
                br#"203.0.113.7 - - [23/Nov/2026:02:41:57 +0000] "GET / HTTP/1.1" 401 1 "-" "x""#,
                read,
            )
            .expect("parses");
        assert_eq!(
            (own.time_us, own.time_from_reader),
            (Some(1_795_401_717_000_000), false),
            "a line's own time is kept"
        );
    }

    #[test]
    fn hostile_lines_are_unparsed_never_a_panic() {
        let long = vec![b'a'; MAX_LINE + 1];
        let cases: Vec<(&[u8], &str)> = vec![
            (b"\xff\xfe not utf-8", "invalid UTF-8"),
            (&long, "a line over 64 KiB"),
            (b"2026-11-23T02:41:57Z INFO x: \0\0\0", "NUL bytes"),
            (
                br#"{"event": "Invalid API key", "timestamp": "2026-11-23T"#,
                "truncated JSON",
            ),
            (b"", "an empty line"),
            (b"\x1b[31m\x1b[0m", "only ANSI escapes"),
        ];
        for format in Format::ALL {
            for (line, what) in &cases {
                // Any result is acceptable except a panic; most must be refused.
                let result = format.parse(line);
                if *what != "NUL bytes" {
                    assert!(result.is_err(), "{format:?} must refuse {what}");
                }
            }
        }
        let pattern = LineFormat::from_parts(
            "pattern",
            Some(r"^(?P<time>\S+) (?P<ip>\S+) (?P<status>\d+)$"),
            None,
        )
        .expect("compiles");
        for (line, what) in &cases {
            assert!(pattern.parse(line).is_err(), "a pattern must refuse {what}");
        }
        assert_eq!(
            Format::Structlog.parse(&long).expect_err("too long").reason,
            "line longer than 64 KiB",
            "the reason is kept for the unparsed event"
        );
    }

    #[test]
    fn format_words_are_the_ones_configs_use() {
        for format in Format::ALL {
            let word = serde_json::to_value(format).expect("serialises");
            assert_eq!(
                word.as_str(),
                Some(format.as_str()),
                "{format:?}: as_str and serde agree"
            );
            assert_eq!(
                LineFormat::from_parts(format.as_str(), None, None),
                Ok(LineFormat::Builtin(format)),
                "{format:?} is read back from its word"
            );
        }
        let err = LineFormat::from_parts("syslog", None, None).expect_err("unknown");
        assert!(
            err.contains("syslog") && err.contains("or pattern"),
            "an unknown format names itself and the choices: {err}"
        );
        let err = LineFormat::from_parts("pattern", None, None).expect_err("no pattern");
        assert!(err.contains("needs a `pattern`"), "{err}");
    }
}
