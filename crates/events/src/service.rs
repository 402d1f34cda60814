//! The services' own logs: Sekha's `tracing` text, RAE's and Jelmore's structlog JSON.

use std::borrow::Cow;

use crate::{classify_status, json, parse_rfc3339, utf8, Kind, Outcome, Parsed, Unparsed};

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
pub fn structlog(line: &[u8]) -> Result<Parsed<'_>, Unparsed> {
    let mut fields = StructlogFields::default();
    json::for_each_field(line, |key, value| match key {
        "event" => fields.event = value.text(),
        "level" => fields.level = value.text(),
        "timestamp" => fields.timestamp = value.text(),
        "key_prefix" => fields.key_prefix = value.text(),
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
        "invalid_api_key"
        | "authentication_required_no_credentials"
        | "internal_jwt_verification_failed"
        | "Invalid API key"
        | "Missing API key" => (Kind::Auth, Outcome::Failure),
        "internal_jwt_verification_succeeded" | "API key authenticated" => {
            (Kind::Auth, Outcome::Success)
        }
        "Request completed" => fields
            .status_code
            .map_or((Kind::Request, Outcome::Info), classify_status),
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
    parsed.ip = fields.client_ip.or(fields.client);
    parsed.method = fields.method;
    parsed.path = fields.path;
    parsed.status = fields.status_code;
    parsed.message = Some(event);
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
    fn rae_wrong_key_gives_two_failed_auth_lines() {
        for line in [
            br#"{"provided_key": "***", "event": "invalid_api_key", "level": "warning", "logger": "apps.memory_api.security.auth", "timestamp": "2026-11-23T02:36:30.930620Z"}"#.as_slice(),
            br#"{"event": "authentication_required_no_credentials", "level": "warning", "logger": "apps.memory_api.security.auth", "timestamp": "2026-11-23T02:36:30.930942Z"}"#.as_slice(),
        ] {
            let p = Format::Structlog.parse(line).expect("parses");
            assert_eq!((p.kind, p.outcome), (Kind::Auth, Outcome::Failure), "both RAE lines are failed authentications");
            assert_eq!(p.key_prefix, None, "RAE masks the key; nothing to keep");
            assert_eq!(p.ip, None, "RAE logs no client address");
        }
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
            (p.kind, p.status, p.method.as_deref()),
            (Kind::Auth, Some(401), Some("GET")),
            "a completed request with 401 is a failed authentication"
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
