//! The services' own logs: Sekha's `tracing` text, RAE's and Jelmore's structlog JSON.

use std::borrow::Cow;

use crate::{access, json, parse_rfc3339, request_outcome, utf8, Kind, Outcome, Parsed, Unparsed};

/// `2026-11-23T02:41:57.390647Z  INFO sekha_controller: 🔒 API authentication enabled`, with
/// ANSI colour codes unless the service ran with NO_COLOR=1. Sekha logs nothing per request.
pub fn sekha_tracing(line: &[u8]) -> Result<Parsed<'_>, Unparsed> {
    let text = utf8(line)?;
    let clean: Cow<'_, str> = if text.contains('\u{1b}') {
        Cow::Owned(strip_ansi(text))
    } else {
        Cow::Borrowed(text)
    };
    let (time, rest) = clean.split_once(char::is_whitespace).ok_or(Unparsed {
        reason: "no timestamp",
    })?;
    let time_us = parse_rfc3339(time.as_bytes()).ok_or(Unparsed {
        reason: "no timestamp",
    })?;
    let rest = rest.trim_start();
    let (level, rest) = rest
        .split_once(' ')
        .ok_or(Unparsed { reason: "no level" })?;
    let outcome = match level {
        "ERROR" => Outcome::Error,
        "WARN" => Outcome::Failure,
        "INFO" | "DEBUG" | "TRACE" => Outcome::Info,
        _ => return Err(Unparsed { reason: "no level" }),
    };
    let (target, message) = rest.split_once(": ").ok_or(Unparsed {
        reason: "no target",
    })?;
    if target.is_empty()
        || !target
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
    {
        return Err(Unparsed {
            reason: "no target",
        });
    }
    let lower = message.to_ascii_lowercase();
    let kind = if [
        "starting",
        "listening",
        "authentication enabled",
        "shutting down",
        "migrat",
        "config",
    ]
    .iter()
    .any(|w| lower.contains(w))
    {
        Kind::Service
    } else {
        Kind::Log
    };
    let mut parsed = Parsed::new(kind, outcome);
    parsed.time_us = Some(time_us);
    parsed.message = Some(match clean {
        Cow::Borrowed(text) => Cow::Borrowed(&text[text.len() - message.len()..]),
        Cow::Owned(_) => Cow::Owned(message.to_owned()),
    });
    Ok(parsed)
}

/// Remove ANSI escape sequences (`ESC [ … letter`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.clone().next() == Some('[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// One structlog JSON object: RAE (`invalid_api_key`, `authentication_required_no_credentials`,
/// `internal_jwt_verification_*`) and Jelmore (`Invalid API key` with `key_prefix`,
/// `Missing API key`, `API key authenticated`, `Request completed`).
///
/// One failed request is one failed sign-in, however many lines the service writes about it:
/// - Jelmore writes `Invalid API key` (or `Missing API key`) and then `Request completed` with
///   status 401 for the same request (they share `request_id`): the first is the failed
///   sign-in, the second a request that failed.
/// - RAE writes `invalid_api_key` and then `authentication_required_no_credentials` for one
///   wrong key (its `verify_token` tries the key, then gives up with the second line; a
///   missing key gives only the second; a Bearer token that fails gives
///   `internal_jwt_verification_failed` instead): the last line is the failed sign-in, the
///   first a detail of it (the request may still pass with a Bearer token).
///
/// Under systemd or compose, uvicorn's own lines share the stream (stdout and stderr
/// together): they are read here too, see [`uvicorn_in_stream`].
pub fn structlog(line: &[u8]) -> Result<Parsed<'_>, Unparsed> {
    if line.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return uvicorn_in_stream(line);
    }
    let mut fields = StructlogFields::default();
    json::for_each_field(line, |key, value| match key {
        "event" => fields.event = value.text(),
        "level" => fields.level = value.text(),
        "timestamp" => fields.timestamp = value.text(),
        // Jelmore logs the first 10 characters of a refused key, and the placeholder
        // `short_key` for a key of 10 or fewer: that says nothing of which key it was (every
        // short key reads the same), so it is no prefix.
        "key_prefix" => fields.key_prefix = value.text().filter(|p| p != "short_key"),
        "key_name" => fields.key_name = value.text(),
        "user_id" => fields.user_id = value.text(),
        "client" => fields.client = value.text(),
        "client_ip" => fields.client_ip = value.text(),
        "method" => fields.method = value.text(),
        "path" => fields.path = value.text(),
        "status_code" => fields.status_code = value.status(),
        _ => {}
    })
    .ok_or(Unparsed {
        reason: "not a structlog JSON line",
    })?;
    let event = fields.event.ok_or(Unparsed {
        reason: "no event field",
    })?;
    let (kind, outcome) = match event.as_ref() {
        "authentication_required_no_credentials"
        | "internal_jwt_verification_failed"
        | "Invalid API key"
        | "Missing API key" => (Kind::Auth, Outcome::Failure),
        // A detail of the failed sign-in the next line reports (see above).
        "invalid_api_key" => (Kind::Log, Outcome::Failure),
        "internal_jwt_verification_succeeded" | "API key authenticated" => {
            (Kind::Auth, Outcome::Success)
        }
        // The request the authentication line before it already reported.
        "Request completed" => (
            Kind::Request,
            fields.status_code.map_or(Outcome::Info, request_outcome),
        ),
        "Rate limit exceeded" => (Kind::RateLimit, Outcome::Failure),
        "security_settings" | "API keys loaded" | "startup" | "shutdown" => {
            (Kind::Service, Outcome::Info)
        }
        _ => (
            Kind::Log,
            match fields.level.as_deref() {
                Some("error" | "critical" | "exception") => Outcome::Error,
                Some("warning" | "warn") => Outcome::Failure,
                _ => Outcome::Info,
            },
        ),
    };
    let mut parsed = Parsed::new(kind, outcome);
    if let Some(time) = &fields.timestamp {
        parsed.time_us = Some(parse_rfc3339(time.as_bytes()).ok_or(Unparsed {
            reason: "unreadable timestamp",
        })?);
    }
    parsed.actor = fields.key_name.or(fields.user_id);
    parsed.key_prefix = fields.key_prefix;
    // Jelmore's client/client_ip is the first X-Forwarded-For entry: spoofable, kept as said.
    parsed.set_client(fields.client_ip.or(fields.client));
    parsed.method = fields.method;
    parsed.path = fields.path;
    parsed.status = fields.status_code;
    parsed.message = Some(event);
    Ok(parsed)
}

/// A line of uvicorn's own in the service's stream: `LEVEL:     message`. An access line is a
/// request, never a sign-in (the service's JSON line about the same request says how its
/// authentication went, and one request is counted once); a server message (started, shutting
/// down) is the service's; other messages are logs. Anything else (a plain `print`) is not
/// understood.
fn uvicorn_in_stream(line: &[u8]) -> Result<Parsed<'_>, Unparsed> {
    let not_ours = Unparsed {
        reason: "not a structlog JSON line",
    };
    let text = utf8(line)?;
    let (level, message) = text.split_once(':').ok_or(not_ours)?;
    let outcome = match level {
        "INFO" | "DEBUG" | "TRACE" => Outcome::Info,
        "WARNING" => Outcome::Failure,
        "ERROR" | "CRITICAL" => Outcome::Error,
        _ => return Err(not_ours),
    };
    if let Ok(mut request) = access::uvicorn_text(text) {
        request.kind = Kind::Request;
        request.outcome = request.status.map_or(Outcome::Info, request_outcome);
        return Ok(request);
    }
    let message = message.trim();
    if message.is_empty() || message.contains('\u{1b}') {
        return Err(not_ours);
    }
    let server = [
        "Started server process",
        "Waiting for application startup",
        "Application startup complete",
        "Uvicorn running on",
        "Shutting down",
        "Waiting for application shutdown",
        "Application shutdown complete",
        "Finished server process",
    ];
    let kind = if server.iter().any(|s| message.starts_with(s)) {
        Kind::Service
    } else {
        Kind::Log
    };
    let mut parsed = Parsed::new(kind, outcome);
    parsed.message = Some(Cow::Borrowed(message));
    Ok(parsed)
}

#[derive(Default)]
struct StructlogFields<'a> {
    event: Option<Cow<'a, str>>,
    level: Option<Cow<'a, str>>,
    timestamp: Option<Cow<'a, str>>,
    key_prefix: Option<Cow<'a, str>>,
    key_name: Option<Cow<'a, str>>,
    user_id: Option<Cow<'a, str>>,
    client: Option<Cow<'a, str>>,
    client_ip: Option<Cow<'a, str>>,
    method: Option<Cow<'a, str>>,
    path: Option<Cow<'a, str>>,
    status_code: Option<u16>,
}

#[cfg(test)]
mod tests {
    use crate::{Format, Kind, Outcome};

    #[test]
    fn sekha_line_with_ansi_colours() {
        let line = "\u{1b}[2m2026-11-23T02:41:57.390647Z\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m \u{1b}[2msekha_controller\u{1b}[0m\u{1b}[2m:\u{1b}[0m 🔒 API authentication enabled";
        let p = Format::SekhaTracing
            .parse(line.as_bytes())
            .expect("parses once colours are stripped");
        assert_eq!(
            p.time_us,
            Some(1_795_401_717_390_647),
            "the microseconds survive the ANSI codes"
        );
        assert_eq!(
            (p.kind, p.outcome),
            (Kind::Service, Outcome::Info),
            "a start-up message is a service event"
        );
        assert_eq!(
            p.message.as_deref(),
            Some("🔒 API authentication enabled"),
            "the message is kept without the colour codes"
        );
    }

    #[test]
    fn sekha_line_without_colours_borrows() {
        let line = b"2026-11-23T02:41:58.000001Z ERROR sea_orm_migration::migrator: UNIQUE constraint failed: seaql_migrations.version";
        let p = Format::SekhaTracing.parse(line).expect("parses");
        assert_eq!(p.outcome, Outcome::Error, "ERROR lines are errors");
        assert!(
            matches!(p.message, Some(std::borrow::Cow::Borrowed(_))),
            "no allocation without ANSI"
        );
    }

    #[test]
    fn rae_wrong_key_lines_carry_no_key_and_no_client() {
        for line in [
            br#"{"provided_key": "***", "event": "invalid_api_key", "level": "warning", "logger": "apps.memory_api.security.auth", "timestamp": "2026-11-23T02:36:30.930620Z"}"#.as_slice(),
            br#"{"event": "authentication_required_no_credentials", "level": "warning", "logger": "apps.memory_api.security.auth", "timestamp": "2026-11-23T02:36:30.930942Z"}"#.as_slice(),
        ] {
            let p = Format::Structlog.parse(line).expect("parses");
            assert_eq!(p.outcome, Outcome::Failure, "both RAE lines are about a failure");
            assert_eq!(p.key_prefix, None, "RAE masks the key; nothing to keep");
            assert_eq!(p.ip, None, "RAE logs no client address");
        }
    }

    #[test]
    fn jelmore_s_short_key_placeholder_is_no_prefix() {
        let line = br#"{"path": "/api/v1/v1/sessions", "key_prefix": "short_key", "client": "203.0.113.3", "event": "Invalid API key", "request_id": "c2df", "timestamp": "2026-11-23T02:33:23.190201Z", "level": "warning"}"#;
        let p = Format::Structlog.parse(line).expect("parses");
        assert_eq!(
            (p.kind, p.outcome),
            (Kind::Auth, Outcome::Failure),
            "still a failed sign-in"
        );
        assert_eq!(
            p.key_prefix, None,
            "every key of 10 characters or fewer is logged as short_key: three different short \
             keys must not read as one key retried (a client with an old key) nor as one key \
             tried (no spraying)"
        );
    }

    #[test]
    fn jelmore_failed_key_keeps_its_prefix_and_path() {
        let line = br#"{"path": "/api/v1/v1/sessions", "key_prefix": "wrong_key_", "client": "127.0.0.1", "event": "Invalid API key", "correlation_id": "c2df", "request_id": "c2df", "timestamp": "2026-11-23T02:33:23.190201Z", "level": "warning"}"#;
        let p = Format::Structlog.parse(line).expect("parses");
        assert_eq!(
            (p.kind, p.outcome),
            (Kind::Auth, Outcome::Failure),
            "Jelmore's wrong key is a failed authentication"
        );
        assert_eq!(
            p.key_prefix.as_deref(),
            Some("wrong_key_"),
            "the first ten characters Jelmore logged"
        );
        assert_eq!(
            p.ip.as_deref(),
            Some("127.0.0.1"),
            "the client Jelmore logged"
        );
        assert_eq!(
            p.path.as_deref(),
            Some("/api/v1/v1/sessions"),
            "the doubled /api/v1/v1 prefix is kept as logged"
        );
    }

    #[test]
    fn jelmore_success_and_request_completed() {
        let ok = br#"{"path": "/api/v1/v1/sessions", "key_name": "admin", "permissions": ["read", "write", "admin", "delete"], "client": "127.0.0.1", "event": "API key authenticated", "timestamp": "2026-11-23T02:33:23.190201Z", "level": "info"}"#;
        let p = Format::Structlog.parse(ok).expect("parses");
        assert_eq!(
            (p.kind, p.outcome, p.actor.as_deref()),
            (Kind::Auth, Outcome::Success, Some("admin")),
            "an accepted key names its role"
        );
        let done = br#"{"method": "GET", "path": "/api/v1/v1/sessions", "status_code": 401, "duration_ms": 0.59, "client_ip": "127.0.0.1", "event": "Request completed", "timestamp": "2026-11-23T02:33:23.191Z", "level": "info"}"#;
        let p = Format::Structlog.parse(done).expect("parses");
        assert_eq!(
            (p.kind, p.outcome, p.status, p.method.as_deref()),
            (Kind::Request, Outcome::Failure, Some(401), Some("GET")),
            "a completed request with 401 is a failed request: its sign-in was the line before"
        );
    }

    /// Jelmore writes two lines for one failed request, and RAE two for one wrong key; each
    /// request must be one failed sign-in, or three wrong keys look like six.
    #[test]
    fn one_failed_request_is_one_failed_sign_in_however_many_lines_it_has() {
        let jelmore = [
            r#"{"path": "/api/v1/v1/sessions", "key_prefix": "wrong_key_", "client": "127.0.0.1", "event": "Invalid API key", "correlation_id": "c2df", "request_id": "c2df", "timestamp": "2026-11-23T02:33:23.190201Z", "level": "warning"}"#,
            r#"{"method": "GET", "path": "/api/v1/v1/sessions", "status_code": 401, "duration_ms": 0.59, "client_ip": "127.0.0.1", "event": "Request completed", "correlation_id": "c2df", "request_id": "c2df", "timestamp": "2026-11-23T02:33:23.191Z", "level": "info"}"#,
            r#"{"path": "/api/v1/v1/sessions", "client": "127.0.0.1", "event": "Missing API key", "correlation_id": "d3e0", "request_id": "d3e0", "timestamp": "2026-11-23T02:33:24Z", "level": "warning"}"#,
            r#"{"method": "GET", "path": "/api/v1/v1/sessions", "status_code": 401, "duration_ms": 0.4, "client_ip": "127.0.0.1", "event": "Request completed", "correlation_id": "d3e0", "request_id": "d3e0", "timestamp": "2026-11-23T02:33:24.001Z", "level": "info"}"#,
            r#"INFO:     127.0.0.1:58196 - "GET /api/v1/v1/sessions HTTP/1.1" 401 Unauthorized"#,
        ];
        let rae = [
            r#"{"provided_key": "***", "event": "invalid_api_key", "level": "warning", "logger": "apps.memory_api.security.auth", "timestamp": "2026-11-23T02:36:30.930620Z"}"#,
            r#"{"event": "authentication_required_no_credentials", "level": "warning", "logger": "apps.memory_api.security.auth", "timestamp": "2026-11-23T02:36:30.930942Z"}"#,
        ];
        let failed_sign_ins = |lines: &[&str]| {
            lines
                .iter()
                .map(|l| Format::Structlog.parse(l.as_bytes()).expect("parses"))
                .filter(|p| p.kind == Kind::Auth && p.outcome == Outcome::Failure)
                .count()
        };
        assert_eq!(
            failed_sign_ins(&jelmore),
            2,
            "two failed requests in Jelmore's stream (with uvicorn's line mixed in) are two failed sign-ins, not five"
        );
        assert_eq!(
            failed_sign_ins(&rae),
            1,
            "one wrong key in RAE's log is one failed sign-in, not two"
        );
    }

    #[test]
    fn uvicorn_lines_in_the_service_stream_are_read() {
        let access = Format::Structlog
            .parse(br#"INFO:     127.0.0.1:58196 - "GET /health HTTP/1.1" 200 OK"#)
            .expect("an access line in the stream");
        assert_eq!(
            (
                access.kind,
                access.outcome,
                access.status,
                access.ip.as_deref()
            ),
            (
                Kind::Request,
                Outcome::Success,
                Some(200),
                Some("127.0.0.1")
            ),
            "an uvicorn access line is a request with its client"
        );
        assert_eq!(
            access.time_us, None,
            "uvicorn writes no time: the reader stamps it"
        );
        let started = Format::Structlog
            .parse(b"INFO:     Started server process [4242]")
            .expect("a server line");
        assert_eq!(started.kind, Kind::Service, "the server's own start line");
        assert!(
            Format::Structlog.parse(b"Loading models...").is_err(),
            "a plain print is not understood, so it is kept as unparsed"
        );
    }

    #[test]
    fn a_client_that_is_not_an_address_is_flagged_and_dropped() {
        let markup = br#"{"path": "/api/v1/v1/sessions", "client": "<svg/onload=alert(1)>", "event": "Missing API key", "timestamp": "2026-11-23T02:33:24Z", "level": "warning"}"#;
        let p = Format::Structlog.parse(markup).expect("still a line");
        assert_eq!(p.ip, None, "markup is no address");
        assert!(p.address_unreadable, "and the line says so");
        assert_eq!(
            (p.kind, p.outcome),
            (Kind::Auth, Outcome::Failure),
            "the failed sign-in itself is kept"
        );
        let unknown = br#"{"path": "/x", "client": "unknown", "event": "Missing API key", "timestamp": "2026-11-23T02:33:24Z", "level": "warning"}"#;
        let p = Format::Structlog.parse(unknown).expect("parses");
        assert!(
            p.ip.is_none() && !p.address_unreadable,
            "Jelmore's own 'unknown' is no address and nothing wrong"
        );
    }

    #[test]
    fn startup_lines_are_service_events() {
        let line = br#"{"key_count": 4, "key_names": ["admin", "client", "readonly", "header"], "event": "API keys loaded", "timestamp": "2026-11-23T02:30:00Z", "level": "info"}"#;
        assert_eq!(
            Format::Structlog.parse(line).expect("parses").kind,
            Kind::Service,
            "a key list at start-up is a service event"
        );
    }
}
