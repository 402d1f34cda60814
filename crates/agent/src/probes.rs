//! The agent's own requests to the service, remembered so that the lines they make in the
//! service's logs are known as the agent's: a compliance probe's missing and wrong keys, a
//! rotation's key check, the health checks after a restart, the rate-limit burst. Without
//! this, every `checks run` would put a dozen failed sign-ins from the agent's own address on
//! the timeline and into detection.
//!
//! Each activity opens a window ([`ProbeLog::begin`]) before its first request and closes it
//! when dropped. Its requests carry the window's nonce (`gh-probe-` and 32 hex digits, drawn
//! from the system's random source) where services and proxies log it: the `User-Agent`
//! (nginx, Caddy, Jelmore's `Request started`), `X-Correlation-ID` (Jelmore's `request_id` and
//! `correlation_id` on every line about the request) and `X-Request-ID`. A line is the agent's
//! ([`ProbeLog::is_own`]) if:
//!
//! 1. it holds the nonce of a window this agent opened: nobody else can write one (it is
//!    unknown until the agent has sent it, and a line holding it is matched only against
//!    windows this process opened); or
//! 2. it comes from the service's own logs (never the proxy's), carries no nonce because the
//!    service logs none of the headers (RAE's lines, uvicorn's access line; a line that names
//!    its request by an id that is not a nonce is someone else's), is about a
//!    request (a sign-in, a request, a refusal; not a warning the service logs of its own
//!    accord), names no client or one the agent's request
//!    could have (loopback, the burst's documentation address), names no path or the path
//!    the window asked for, and is dated within the window (with a little slack for the
//!    service's clock, and up to three seconds after it for lines the agent had to date itself
//!    when it read them), while the window has lines left: at most two per request it sent,
//!    in each log (a service may log a refusal twice, as RAE does).
//!
//! Rule 2 is a matter of timing and could take a request from someone else for the agent's,
//! within the window and its slack; the count bounds that to as many lines as the agent's own
//! requests could have made, so a burst of someone else's failures in that time is counted. Only the service's own logs are judged by it: the
//! proxy's log, where the client address can be trusted and from which the console counts
//! failed sign-ins when an instance has one, is judged by rule 1 alone.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Mutex, PoisonError};

use gatehouse_events::{parse_address, Kind, Outcome, Source};

use crate::clock::Clock;

/// What every nonce starts with, so a line is searched for one only if it holds this.
pub const NONCE_PREFIX: &str = "gh-probe-";
/// The rate-limit burst's `X-Forwarded-For` (TEST-NET-1): a service that logs the first
/// entry of that header names it as the client of the agent's requests.
pub const PROBE_FORWARDED_FOR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// Windows are remembered this long after they close: logs are read four times a second,
/// but an agent may catch up on a log later.
const KEEP_US: i64 = 10 * 60 * 1_000_000;
/// At most this many windows are remembered (a burst opens one, not one per request).
const MOST_WINDOWS: usize = 4096;
/// How far a line dated by the service may be from the window: its clock is the host's, and
/// it dates a line while it handles the request.
const SERVICE_SLACK_US: i64 = 500_000;
/// How late after the window a line dated by the agent (when it read the line) may be read:
/// logs are read four times a second, and a service flushes its output in its own time.
const READ_SLACK_US: i64 = 3_000_000;
/// Fields by which a service names the request a line is about (Jelmore's): a line naming
/// one that is not a nonce is about someone else's request, whatever its timing.
const REQUEST_ID_FIELDS: [&str; 2] = ["\"request_id\":", "\"correlation_id\":"];

/// The windows of the agent's own requests, shared by whatever sends requests to the service
/// and by the event buffer that judges each line.
#[derive(Debug)]
pub struct ProbeLog {
    windows: Mutex<VecDeque<Window>>,
    clock: Clock,
}

#[derive(Debug, Clone)]
struct Window {
    nonce: String,
    /// The path asked for, without a query or a trailing slash.
    path: String,
    start_us: i64,
    end_us: Option<i64>,
    /// How many requests the window's activity sends (one, unless it says otherwise).
    requests: u32,
    /// Lines rule 2 took as this window's, in the service's log and in its access log.
    claimed: [u32; 2],
    /// Its requests present no key (a liveness or health probe of an open endpoint) or were
    /// accepted (a rotation's check of the new key): no failed sign-in can be theirs, so rule 2
    /// takes none for them.
    keyless: bool,
}

/// Lines rule 2 may take as the agent's, per request and log.
const LINES_PER_REQUEST: u32 = 2;

/// What a log line says, as far as telling the agent's own requests goes.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    /// Which log.
    pub source: Source,
    pub kind: Kind,
    pub outcome: Outcome,
    pub ip: Option<&'a str>,
    pub path: Option<&'a str>,
    pub time_us: i64,
    /// The line had no time of its own: `time_us` is when the agent read it.
    pub dated_by_agent: bool,
    pub raw: &'a str,
}

/// One activity's window, open until dropped.
#[derive(Debug)]
pub struct Probe<'a> {
    log: &'a ProbeLog,
    nonce: String,
}

impl ProbeLog {
    /// A log whose windows open and close at the times `clock` gives.
    pub fn new(clock: Clock) -> Self {
        ProbeLog {
            windows: Mutex::default(),
            clock,
        }
    }

    /// The time now, as events are stamped.
    pub fn now_us(&self) -> i64 {
        self.clock.micros()
    }

    /// Open a window for requests to `path` (a path, or a whole URL); it closes when the
    /// returned guard is dropped.
    pub fn begin(&self, path: &str) -> Probe<'_> {
        let nonce = format!("{NONCE_PREFIX}{}", random_hex());
        let now = self.now_us();
        let mut windows = self.lock();
        while windows.len() >= MOST_WINDOWS
            || windows
                .front()
                .and_then(|w| w.end_us)
                .is_some_and(|end| end + KEEP_US < now)
        {
            windows.pop_front();
        }
        windows.push_back(Window {
            nonce: nonce.clone(),
            path: bare_path(path).to_owned(),
            start_us: now,
            end_us: None,
            requests: 1,
            claimed: [0; 2],
            keyless: false,
        });
        Probe { log: self, nonce }
    }

    /// Whether `event` is about a request the agent sent (see the module's documentation).
    pub fn is_own(&self, event: &Seen<'_>) -> bool {
        let mut windows = self.lock();
        if windows.is_empty() {
            return false;
        }
        if let Some(at) = event.raw.find(NONCE_PREFIX) {
            let nonce: String = event.raw[at..]
                .chars()
                .take(NONCE_PREFIX.len() + 32)
                .collect();
            if windows.iter().any(|w| w.nonce == nonce) {
                return true;
            }
        }
        if !timing_may_tell(event) || REQUEST_ID_FIELDS.iter().any(|f| event.raw.contains(f)) {
            return false;
        }
        let (before, after) = if event.dated_by_agent {
            (0, READ_SLACK_US)
        } else {
            (SERVICE_SLACK_US, SERVICE_SLACK_US)
        };
        let path = event.path.map(bare_path);
        let log = usize::from(event.source == Source::Access);
        let failed_sign_in = (event.kind, event.outcome) == (Kind::Auth, Outcome::Failure);
        let taken = windows.iter_mut().find(|w| {
            let end = w.end_us.unwrap_or(i64::MAX);
            !(w.keyless && failed_sign_in)
                && event.time_us >= w.start_us - before
                && event.time_us <= end.saturating_add(after)
                && path.is_none_or(|p| p == w.path)
                && w.claimed[log] < w.requests.saturating_mul(LINES_PER_REQUEST)
        });
        match taken {
            Some(window) => {
                window.claimed[log] += 1;
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Window>> {
        self.windows.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Probe<'_> {
    /// The window's requests present no key, or were accepted (see `Window::keyless`): a
    /// failed sign-in near them in time is someone else's.
    pub fn keyless(&self) {
        if let Some(window) = self
            .log
            .lock()
            .iter_mut()
            .rev()
            .find(|w| w.nonce == self.nonce)
        {
            window.keyless = true;
        }
    }

    /// The window's activity sends `n` requests (a burst), not one.
    pub fn sends(&self, n: u32) {
        if let Some(window) = self
            .log
            .lock()
            .iter_mut()
            .rev()
            .find(|w| w.nonce == self.nonce)
        {
            window.requests = n.max(1);
        }
    }

    /// The nonce this window's requests carry.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// The headers that carry the nonce where services and proxies log it.
    pub fn headers(&self) -> [(&'static str, String); 3] {
        [
            (
                "user-agent",
                format!(
                    "gatehouse-agent/{} (probe {})",
                    env!("CARGO_PKG_VERSION"),
                    self.nonce
                ),
            ),
            ("x-correlation-id", self.nonce.clone()),
            ("x-request-id", self.nonce.clone()),
        ]
    }
}

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        let now = self.log.now_us();
        if let Some(window) = self
            .log
            .lock()
            .iter_mut()
            .rev()
            .find(|w| w.nonce == self.nonce)
        {
            window.end_us = Some(now);
        }
    }
}

/// Rule 2 of the module's documentation, before the time and path: a line from the service's
/// own logs about a request, from no client or one the agent's request could have.
fn timing_may_tell(event: &Seen<'_>) -> bool {
    if !matches!(event.source, Source::Service | Source::Access) {
        return false;
    }
    // A warning or an error the service logs (a dependency down at start) is its own news,
    // whatever it coincides with: only lines about a request are judged by timing.
    let about_a_request = matches!(event.kind, Kind::Auth | Kind::Request | Kind::RateLimit);
    about_a_request
        && event.ip.is_none_or(|ip| {
            parse_address(ip)
                .is_some_and(|ip| ip.is_loopback() || ip == IpAddr::V4(PROBE_FORWARDED_FOR))
        })
}

/// `path` without a scheme and host, a query, a fragment or a trailing slash.
fn bare_path(path: &str) -> &str {
    let path = match path.find("://") {
        Some(scheme) => {
            let rest = &path[scheme + 3..];
            rest.find('/').map_or("/", |slash| &rest[slash..])
        }
        None => path,
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    match path.trim_end_matches('/') {
        "" => "/",
        trimmed => trimmed,
    }
}

fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    // The system's random source does not fail on Linux once booted.
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).is_err() {
        // Were it to, the standard library's per-process random hash keys still make a nonce
        // nobody else has seen before the agent sends it.
        use std::hash::{BuildHasher, Hasher};
        for chunk in bytes.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(chunk.as_ptr() as usize);
            chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Line {
        source: Source,
        kind: Kind,
        ip: Option<&'static str>,
        path: Option<&'static str>,
        raw: String,
        time_us: i64,
        dated_by_agent: bool,
    }

    impl Line {
        fn seen(&self) -> Seen<'_> {
            Seen {
                source: self.source,
                kind: self.kind,
                outcome: Outcome::Failure,
                ip: self.ip,
                path: self.path,
                time_us: self.time_us,
                dated_by_agent: self.dated_by_agent,
                raw: &self.raw,
            }
        }
    }

    fn line(
        source: Source,
        kind: Kind,
        ip: Option<&'static str>,
        path: Option<&'static str>,
        raw: &str,
    ) -> Line {
        Line {
            source,
            kind,
            ip,
            path,
            raw: raw.into(),
            time_us: Clock::system().micros(),
            dated_by_agent: false,
        }
    }

    /// A liveness probe presents no key: a failed sign-in from loopback while it runs (Radicale's
    /// `Failed login attempt from 127.0.0.1`, which names no path) is someone else's, while the
    /// line about the probe's own request is the agent's. Before, such failures right after a
    /// rotation (whose restart polls liveness) vanished from every count.
    #[test]
    fn a_probe_that_presents_no_key_takes_no_failed_sign_in() {
        let log = ProbeLog::new(Clock::system());
        let live = log.begin("/.web/");
        live.keyless();
        let failed = line(
            Source::Service,
            Kind::Auth,
            Some("127.0.0.1"),
            None,
            "Failed login attempt from 127.0.0.1: 'alice' (htpasswd)",
        );
        assert!(
            !log.is_own(&failed.seen()),
            "no failed sign-in comes from a request without a key"
        );
        let request = line(
            Source::Service,
            Kind::Request,
            Some("127.0.0.1"),
            None,
            "GET request for '/.web/' received from 127.0.0.1",
        );
        assert!(
            log.is_own(&request.seen()),
            "its own request line is the agent's"
        );
        drop(live);
    }

    /// Jupyter Server logs no nonce and no time the agent reads: a burst of someone else's
    /// failures from loopback just after a key check must not all pass for the agent's.
    #[test]
    fn timing_takes_no_more_lines_than_the_agent_s_requests_could_make() {
        let log = ProbeLog::new(Clock::system());
        let check = log.begin("/api/status");
        drop(check);
        let refused = |n: usize| {
            let mut l = line(
                Source::Service,
                Kind::Auth,
                Some("127.0.0.1"),
                Some("/api/status"),
                &format!("403 GET /api/status (@127.0.0.1) {n}"),
            );
            l.dated_by_agent = true;
            l
        };
        let own: Vec<bool> = (0..6).map(|n| log.is_own(&refused(n).seen())).collect();
        assert_eq!(
            own,
            [true, true, false, false, false, false],
            "one request makes at most two lines of the agent's; the rest are someone else's"
        );
        let burst = log.begin("/api");
        burst.sends(150);
        drop(burst);
        let quick = |n: usize| {
            let mut l = line(
                Source::Access,
                Kind::RateLimit,
                Some("127.0.0.1"),
                Some("/api"),
                &format!("429 {n}"),
            );
            l.dated_by_agent = true;
            l
        };
        assert!(
            (0..150).all(|n| log.is_own(&quick(n).seen())),
            "a burst's window takes as many lines as it sent requests"
        );
    }

    #[test]
    fn a_line_holding_a_nonce_is_the_agent_s_only_if_the_agent_made_it() {
        let log = ProbeLog::new(Clock::system());
        let probe = log.begin("/api/v1/v1/sessions");
        let ours = format!(
            r#"{{"event": "Invalid API key", "request_id": "{}"}}"#,
            probe.nonce()
        );
        let proxy_line = format!(
            "127.0.0.1 - - [x] \"GET / HTTP/1.1\" 401 1 \"-\" \"gatehouse-agent/0 (probe {})\"",
            probe.nonce()
        );
        drop(probe);
        assert!(
            log.is_own(
                &line(
                    Source::Service,
                    Kind::Auth,
                    Some("203.0.113.9"),
                    None,
                    &ours
                )
                .seen()
            ),
            "the nonce marks the line, whatever address it names"
        );
        assert!(
            log.is_own(
                &line(
                    Source::Proxy,
                    Kind::Auth,
                    Some("127.0.0.1"),
                    Some("/"),
                    &proxy_line
                )
                .seen()
            ),
            "in the proxy's log too"
        );
        let forged = format!("{NONCE_PREFIX}{}", "0".repeat(32));
        assert!(
            !log.is_own(
                &line(
                    Source::Proxy,
                    Kind::Auth,
                    Some("203.0.113.9"),
                    Some("/"),
                    &forged
                )
                .seen()
            ),
            "a made-up nonce marks nothing"
        );
    }

    #[test]
    fn lines_without_a_nonce_are_judged_by_source_client_path_and_time() {
        let log = ProbeLog::new(Clock::system());
        let probe = log.begin("http://127.0.0.1:8000/v2/compliance/circuit-breakers");
        let rae = line(Source::Service, Kind::Auth, None, None, "{}");
        assert!(
            log.is_own(&rae.seen()),
            "RAE's line during the probe, with no client, is the probe's"
        );
        let mut uvicorn = line(
            Source::Service,
            Kind::Request,
            Some("127.0.0.1"),
            Some("/v2/compliance/circuit-breakers?x=1"),
            "INFO: ...",
        );
        uvicorn.dated_by_agent = true;
        assert!(
            log.is_own(&uvicorn.seen()),
            "uvicorn's line for that path from loopback"
        );
        let other_path = line(
            Source::Service,
            Kind::Auth,
            Some("127.0.0.1"),
            Some("/mcp/tools/memory_stats"),
            "x",
        );
        assert!(
            !log.is_own(&other_path.seen()),
            "another path is someone else's request"
        );
        let other_client = line(Source::Service, Kind::Auth, Some("203.0.113.9"), None, "x");
        assert!(
            !log.is_own(&other_client.seen()),
            "another client is someone else"
        );
        let named = line(
            Source::Service,
            Kind::Auth,
            Some("127.0.0.1"),
            None,
            r#"{"event": "Invalid API key", "request_id": "3b40c12f"}"#,
        );
        assert!(
            !log.is_own(&named.seen()),
            "a line naming its request by an id that is not a nonce is someone else's"
        );
        let warning = line(
            Source::Service,
            Kind::Log,
            None,
            None,
            "WARN dependency down",
        );
        assert!(
            !log.is_own(&warning.seen()),
            "a warning the service logs of its own accord is its own, whatever its timing"
        );
        let proxy = line(
            Source::Proxy,
            Kind::Auth,
            Some("127.0.0.1"),
            Some("/v2/compliance/circuit-breakers"),
            "x",
        );
        assert!(
            !log.is_own(&proxy.seen()),
            "the proxy's log is judged by the nonce alone"
        );
        drop(probe);
        let mut late = line(Source::Service, Kind::Auth, None, None, "{}");
        late.time_us += 60 * 1_000_000;
        assert!(
            !log.is_own(&late.seen()),
            "a line long after the window is not the probe's"
        );
        let mut early = line(Source::Service, Kind::Auth, None, None, "{}");
        early.time_us -= 60 * 1_000_000;
        assert!(!log.is_own(&early.seen()), "nor one long before it");
    }

    #[test]
    fn paths_are_compared_bare() {
        assert_eq!(
            bare_path("http://h:1/v2/memories/?a=1"),
            "/v2/memories",
            "URL"
        );
        assert_eq!(bare_path("/health#x"), "/health", "fragment");
        assert_eq!(bare_path("http://h:1"), "/", "the root");
    }
}
