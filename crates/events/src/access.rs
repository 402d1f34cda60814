//! Access logs: nginx (combined and JSON), Caddy (JSON), uvicorn.
//!
//! Reverse-proxy logs are where client addresses come from: the services rarely log a client
//! IP that can be trusted on a failed login.

use std::borrow::Cow;

use memchr::memchr;
use serde::Deserialize;

use crate::{classify_status, json, parse_nginx_time, parse_rfc3339, utf8, Parsed, Unparsed};

const fn bad(reason: &'static str) -> Unparsed {
    Unparsed { reason }
}

/// `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"`
pub fn nginx_combined(line: &[u8]) -> Result<Parsed<'_>, Unparsed> {
    let line = utf8(line)?;
    let bytes = line.as_bytes();
    let ip_end = memchr(b' ', bytes).ok_or(bad("no client address"))?;
    let open = memchr(b'[', bytes).ok_or(bad("no [time]"))?;
    let close = open + memchr(b']', &bytes[open..]).ok_or(bad("no [time]"))?;
    let time_us = parse_nginx_time(&bytes[open + 1..close]).ok_or(bad("unreadable time"))?;
    let rest = bytes.get(close + 1..).ok_or(bad("truncated"))?;
    if !rest.starts_with(b" \"") {
        return Err(bad("no quoted request"));
    }
    let request_start = close + 3;
    // nginx writes a `"` inside the request as \x22, so the next quote ends it.
    let request_end =
        request_start + memchr(b'"', &bytes[request_start..]).ok_or(bad("unterminated request"))?;
    let status_text = bytes
        .get(request_end + 2..request_end + 5)
        .ok_or(bad("no status"))?;
    let status = three_digits(status_text).ok_or(bad("no status"))?;
    let (method, path) = split_request(&line[request_start..request_end]);
    let (kind, outcome) = classify_status(status);
    let mut parsed = Parsed::new(kind, outcome);
    parsed.time_us = Some(time_us);
    parsed.set_client(Some(Cow::Borrowed(&line[..ip_end])));
    parsed.method = method.map(Cow::Borrowed);
    parsed.path = path.map(Cow::Borrowed);
    parsed.status = Some(status);
    Ok(parsed)
}

/// `INFO:     127.0.0.1:58196 - "GET /health HTTP/1.1" 200 OK` (no timestamp).
pub fn uvicorn(line: &[u8]) -> Result<Parsed<'_>, Unparsed> {
    uvicorn_text(utf8(line)?)
}

/// An uvicorn access line, already known to be text.
pub(crate) fn uvicorn_text(line: &str) -> Result<Parsed<'_>, Unparsed> {
    let (_level, rest) = line.split_once(':').ok_or(bad("no level"))?;
    let rest = rest.trim_start();
    let (client, rest) = rest.split_once(" - \"").ok_or(bad("not an access line"))?;
    let (request, rest) = rest.split_once("\" ").ok_or(bad("unterminated request"))?;
    let status =
        three_digits(rest.as_bytes().get(..3).ok_or(bad("no status"))?).ok_or(bad("no status"))?;
    // host:port, where the host may itself contain colons (IPv6).
    let ip = client.rsplit_once(':').map_or(client, |(host, _port)| host);
    let (method, path) = split_request(request);
    let (kind, outcome) = classify_status(status);
    let mut parsed = Parsed::new(kind, outcome);
    parsed.set_client(Some(Cow::Borrowed(ip)));
    parsed.method = method.map(Cow::Borrowed);
    parsed.path = path.map(Cow::Borrowed);
    parsed.status = Some(status);
    Ok(parsed)
}

/// nginx with Gatehouse's JSON `log_format` (documented in `profiles/README.md`); the
/// names nginx variables are usually given are accepted too.
pub fn nginx_json(line: &[u8]) -> Result<Parsed<'_>, Unparsed> {
    let (mut time, mut ip, mut method, mut path, mut status) = (None, None, None, None, None);
    json::for_each_field(line, |key, value| match key {
        "time" | "time_iso8601" => time = value.text(),
        "remote_addr" | "remote_ip" => ip = value.text(),
        "request_method" | "method" => method = value.text(),
        "request_uri" | "uri" => path = value.text(),
        "status" => status = value.status(),
        _ => {}
    })
    .ok_or(bad("not nginx JSON"))?;
    let status = status.ok_or(bad("no status"))?;
    let time = time.ok_or(bad("no time"))?;
    let (kind, outcome) = classify_status(status);
    let mut parsed = Parsed::new(kind, outcome);
    parsed.time_us = Some(parse_rfc3339(time.as_bytes()).ok_or(bad("unreadable time"))?);
    parsed.set_client(Some(ip.ok_or(bad("no client address"))?));
    parsed.method = method;
    parsed.path = path;
    parsed.status = Some(status);
    Ok(parsed)
}

#[derive(Deserialize)]
struct Caddy<'a> {
    ts: f64,
    #[serde(borrow)]
    request: CaddyRequest<'a>,
    status: u16,
}

#[derive(Deserialize)]
struct CaddyRequest<'a> {
    #[serde(borrow, default)]
    client_ip: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    remote_ip: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    uri: Option<Cow<'a, str>>,
}

/// Caddy's access log: `{"ts":…, "request":{"client_ip":…, "method":…, "uri":…}, "status":…}`.
pub fn caddy_json(line: &[u8]) -> Result<Parsed<'_>, Unparsed> {
    let record: Caddy<'_> =
        serde_json::from_slice(line).map_err(|_| bad("not a Caddy access log line"))?;
    if !record.ts.is_finite() {
        return Err(bad("unreadable time"));
    }
    let (kind, outcome) = classify_status(record.status);
    let mut parsed = Parsed::new(kind, outcome);
    parsed.time_us = Some((record.ts * 1e6).round() as i64);
    // client_ip honours Caddy's trusted_proxies; remote_ip is the TCP peer.
    parsed.set_client(
        record
            .request
            .client_ip
            .filter(|ip| !ip.is_empty())
            .or(record.request.remote_ip),
    );
    parsed.method = record.request.method;
    parsed.path = record.request.uri;
    parsed.status = Some(record.status);
    Ok(parsed)
}

fn three_digits(s: &[u8]) -> Option<u16> {
    match s {
        [a, b, c] if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

/// `GET /path HTTP/1.1` into method and path; anything else (a probe sending garbage) has
/// neither.
fn split_request(request: &str) -> (Option<&str>, Option<&str>) {
    // Spaces found byte by byte (splitting a `str` on a char searches for it as UTF-8): the
    // method is a few capital letters, then memchr finds the end of the path.
    let bytes = request.as_bytes();
    let Some(method_end) = bytes.iter().position(|&b| !b.is_ascii_uppercase()) else {
        return (None, None);
    };
    if method_end == 0 || bytes[method_end] != b' ' {
        return (None, None);
    }
    let path_start = method_end + 1;
    let path_end = memchr(b' ', &bytes[path_start..]).map_or(bytes.len(), |i| path_start + i);
    // Both ends are at ASCII bytes, so on character boundaries.
    (
        Some(&request[..method_end]),
        Some(&request[path_start..path_end]),
    )
}

#[cfg(test)]
mod tests {
    use crate::{Format, Kind, Outcome};

    #[test]
    fn nginx_combined_failed_login() {
        let line = br#"203.0.113.7 - - [23/Nov/2026:02:41:57 +0000] "POST /mcp/tools/memory_stats HTTP/1.1" 401 35 "-" "curl/8.5.0""#;
        let p = Format::NginxCombined.parse(line).expect("parses");
        assert_eq!(
            (p.kind, p.outcome),
            (Kind::Auth, Outcome::Failure),
            "401 is a failed authentication"
        );
        assert_eq!(
            p.ip.as_deref(),
            Some("203.0.113.7"),
            "the client address comes from the proxy"
        );
        assert_eq!(
            p.method.as_deref(),
            Some("POST"),
            "the method comes from the request line"
        );
        assert_eq!(
            p.path.as_deref(),
            Some("/mcp/tools/memory_stats"),
            "the path comes from the request line"
        );
        assert_eq!(p.status, Some(401), "the status is read");
        assert_eq!(
            p.time_us,
            Some(1_795_401_717_000_000),
            "the local time with its offset is the instant in UTC"
        );
    }

    #[test]
    fn nginx_combined_with_a_garbage_request_keeps_status_and_ip() {
        let line =
            br#"198.51.100.9 - - [23/Nov/2026:02:41:57 +0000] "\x16\x03\x01\x00" 400 157 "-" "-""#;
        let p = Format::NginxCombined
            .parse(line)
            .expect("still an access line");
        assert_eq!(
            p.status,
            Some(400),
            "the status of a garbage request is kept"
        );
        assert_eq!(
            p.method, None,
            "a TLS hello sent to the HTTP port has no method"
        );
        assert_eq!(
            p.ip.as_deref(),
            Some("198.51.100.9"),
            "the client address of a garbage request is kept"
        );
    }

    /// A log line is written by whoever sends the request: what stands where the client
    /// address belongs must be an address before it can become an offender or a block.
    #[test]
    fn hostile_client_fields_never_become_addresses() {
        let bad = br#"999.999.999.999 - - [23/Nov/2026:02:41:57 +0000] "POST /mcp/tools/memory_stats HTTP/1.1" 401 35 "-" "curl/8.5.0""#;
        let p = Format::NginxCombined.parse(bad).expect("the line is kept");
        assert_eq!(p.ip, None, "999.999.999.999 is no address");
        assert!(
            p.address_unreadable,
            "and the line says its address is unreadable"
        );
        assert_eq!(
            (p.kind, p.status),
            (Kind::Auth, Some(401)),
            "the request itself is still read"
        );
        let bom = "\u{feff}203.0.113.7 - - [23/Nov/2026:02:41:57 +0000] \"GET / HTTP/1.1\" 401 1 \"-\" \"x\"";
        let p = Format::NginxCombined.parse(bom.as_bytes()).expect("parses");
        assert_eq!(
            p.ip.as_deref(),
            Some("203.0.113.7"),
            "a byte-order mark at the start of the line is not part of the address"
        );
        let markup = br#"{"time":"2026-11-23T02:41:57+00:00","remote_addr":"<svg/onload=alert(1)>","status":401}"#;
        let p = Format::NginxJson.parse(markup).expect("kept");
        assert!(
            p.ip.is_none() && p.address_unreadable,
            "markup in remote_addr is no address"
        );
        let caddy = br#"{"ts":1795401717.5,"request":{"client_ip":"999.1.1.1","method":"GET","uri":"/"},"status":401}"#;
        let p = Format::CaddyJson.parse(caddy).expect("kept");
        assert!(
            p.ip.is_none() && p.address_unreadable,
            "a client_ip that does not parse is no address"
        );
        let v6 = Format::UvicornAccess
            .parse(br#"INFO:     [2001:DB8::7]:40000 - "GET / HTTP/1.1" 401 Unauthorized"#)
            .expect("parses");
        assert_eq!(
            v6.ip.as_deref(),
            Some("2001:db8::7"),
            "IPv6 in brackets is one canonical address"
        );
    }

    #[test]
    fn nginx_combined_rejects_other_lines() {
        for bad in [
            &b""[..],
            b"hello world",
            b"1.2.3.4 - - [bad time] \"GET / HTTP/1.1\" 200 1",
            b"1.2.3.4 - - [23/Nov/2026:02:41:57 +0000] \"GET / HTTP/1.1\" 2",
        ] {
            assert!(
                Format::NginxCombined.parse(bad).is_err(),
                "a truncated or malformed access line is refused: {:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn uvicorn_access_line() {
        let p = Format::UvicornAccess
            .parse(br#"INFO:     127.0.0.1:58196 - "GET /api/v1/v1/sessions HTTP/1.1" 401 Unauthorized"#)
            .expect("parses");
        assert_eq!(
            (p.kind, p.status),
            (Kind::Auth, Some(401)),
            "a 401 in an uvicorn line is a failed authentication"
        );
        assert_eq!(
            p.ip.as_deref(),
            Some("127.0.0.1"),
            "the port is not part of the address"
        );
        assert_eq!(
            p.time_us, None,
            "uvicorn writes no time; the reader stamps it"
        );
        let v6 = Format::UvicornAccess
            .parse(br#"INFO:     ::1:40000 - "GET /health HTTP/1.1" 200 OK"#)
            .expect("IPv6 parses");
        assert_eq!(
            v6.ip.as_deref(),
            Some("::1"),
            "an IPv6 client keeps its colons, loses its port"
        );
    }

    #[test]
    fn nginx_json_line() {
        let line = br#"{"time":"2026-11-23T02:41:57+00:00","remote_addr":"203.0.113.7","request_method":"GET","request_uri":"/v2/compliance/circuit-breakers","status":429,"body_bytes_sent":46,"http_user_agent":"python-requests/2.32"}"#;
        let p = Format::NginxJson.parse(line).expect("parses");
        assert_eq!(
            (p.kind, p.outcome),
            (Kind::RateLimit, Outcome::Failure),
            "429 is rate limiting"
        );
        assert_eq!(
            p.path.as_deref(),
            Some("/v2/compliance/circuit-breakers"),
            "the request URI is the path"
        );
        let quoted = br#"{"time":"2026-11-23T02:41:57+00:00","remote_addr":"::1","status":"200"}"#;
        assert_eq!(
            Format::NginxJson
                .parse(quoted)
                .expect("quoted status")
                .status,
            Some(200),
            "a status written as a string is read too"
        );
    }

    #[test]
    fn json_escapes_are_decoded() {
        let line = br#"{"time":"2026-11-23T02:41:57Z","remote_addr":"203.0.113.7","request_uri":"/a\"b\u00e9","status":404}"#;
        let p = Format::NginxJson.parse(line).expect("parses");
        assert_eq!(
            p.path.as_deref(),
            Some("/a\"bé"),
            "escapes become the characters they stand for"
        );
    }

    #[test]
    fn caddy_json_line() {
        let line = br#"{"level":"info","ts":1795401717.390647,"logger":"http.log.access.log0","msg":"handled request","request":{"remote_ip":"10.0.0.2","remote_port":"51234","client_ip":"203.0.113.7","proto":"HTTP/2.0","method":"GET","host":"api.example","uri":"/api/v1/v1/sessions","headers":{"User-Agent":["curl/8"]}},"bytes_read":0,"duration":0.0012,"size":31,"status":403}"#;
        let p = Format::CaddyJson.parse(line).expect("parses");
        assert_eq!(
            p.ip.as_deref(),
            Some("203.0.113.7"),
            "client_ip is preferred over the proxy peer"
        );
        assert_eq!(
            p.time_us,
            Some(1_795_401_717_390_647),
            "Caddy's float seconds become microseconds"
        );
        assert_eq!(
            (p.kind, p.status),
            (Kind::Auth, Some(403)),
            "a 403 is a failed authentication"
        );
    }
}
