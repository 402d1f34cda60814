//! Log lines to normalized events.
//!
//! Every supported format has a parser here: the services' own logs (Sekha's tracing text,
//! RAE's and Jelmore's structlog JSON, uvicorn's access line) and the reverse proxies' access
//! logs (nginx combined and JSON, Caddy JSON). A parser borrows from the line and allocates
//! only where the line has JSON escapes, so the agent can parse millions of lines a second.
//! A line no parser understands is an error value, never a panic: the caller keeps it as an
//! `unparsed` event with its raw text.

mod access;
mod json;
pub mod profile;
mod service;
mod time;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

pub use crate::profile::{Profile, ProfileError};
pub use crate::time::{parse_nginx_time, parse_rfc3339};

/// Longest line kept whole; longer lines are cut here and flagged.
pub const MAX_LINE: usize = 64 * 1024;

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An authentication decision: a key or token accepted or refused.
    Auth,
    /// A request seen by an access log.
    Request,
    /// A request refused for its rate.
    RateLimit,
    /// The service itself: start-up, configuration, shutdown.
    Service,
    /// Any other line the service logged.
    Log,
    /// A line no parser understood, kept with its raw text.
    Unparsed,
    /// Events were lost here (a buffer overflowed); never silent.
    Gap,
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
    Error,
    Info,
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
    pub ip: Option<Cow<'a, str>>,
    pub method: Option<Cow<'a, str>>,
    pub path: Option<Cow<'a, str>>,
    pub status: Option<u16>,
    /// A short description: the structlog event, the tracing message.
    pub message: Option<Cow<'a, str>>,
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
        }
    }
}

/// Why a line was not understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unparsed {
    pub reason: &'static str,
}

impl Format {
    /// Every supported format.
    pub const ALL: [Format; 6] = [
        Format::SekhaTracing,
        Format::Structlog,
        Format::UvicornAccess,
        Format::NginxCombined,
        Format::NginxJson,
        Format::CaddyJson,
    ];

    /// Parse one line (without its newline).
    pub fn parse(self, line: &[u8]) -> Result<Parsed<'_>, Unparsed> {
        if line.len() > MAX_LINE {
            return Err(Unparsed {
                reason: "line longer than 64 KiB",
            });
        }
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

fn utf8(bytes: &[u8]) -> Result<&str, Unparsed> {
    std::str::from_utf8(bytes).map_err(|_| Unparsed {
        reason: "not valid UTF-8",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            Format::Structlog.parse(&long).expect_err("too long").reason,
            "line longer than 64 KiB",
            "the reason is kept for the unparsed event"
        );
    }
}
