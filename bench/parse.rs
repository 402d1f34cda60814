//! Parse throughput per format on generated logs, one core: 1,000,000 nginx combined lines
//! (about 10 % failed logins from a few addresses), 1,000,000 structlog JSON lines in
//! Jelmore's shape, and the same counts for nginx JSON and Sekha's tracing text; and the
//! nginx log again through a `format = "pattern"` regular expression, as a profile for a
//! service with its own log format would give it.
//!
//!     cargo run --release -p gatehouse-events --example parse [lines]
//!
//! Also writes the nginx log to `target/bench/access.log` for the comparisons that read a
//! file (fail2ban-regex, grep).

use std::io::Write;
use std::time::Instant;

use gatehouse_events::{Format, Kind, LineFormat, Outcome};

#[path = "lcg.rs"]
mod lcg;
use lcg::Lcg;

const PATHS: &[&str] = &[
    "/api/v1/conversations",
    "/mcp/tools/memory_store",
    "/mcp/tools/memory_search",
    "/health",
    "/v2/memories/search",
    "/api/v1/v1/sessions",
];
const AGENTS: &[&str] = &["curl/8.5.0", "python-requests/2.32.3", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"];

fn nginx_combined(n: usize, rng: &mut Lcg) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 130);
    for i in 0..n {
        let attack = rng.next() % 10 == 0;
        let ip = if attack {
            format!("203.0.113.{}", 1 + rng.next() % 4)
        } else {
            format!(
                "10.{}.{}.{}",
                rng.next() % 8,
                rng.next() % 256,
                1 + rng.next() % 254
            )
        };
        let status = if attack {
            401
        } else {
            [200, 200, 200, 201, 204, 304, 404][(rng.next() % 7) as usize]
        };
        let second = i / 20;
        writeln!(
            out,
            "{ip} - - [23/Nov/2026:{:02}:{:02}:{:02} +0000] \"{} {} HTTP/1.1\" {status} {} \"-\" \"{}\"",
            (second / 3600) % 24,
            (second / 60) % 60,
            second % 60,
            if rng.next() % 3 == 0 { "GET" } else { "POST" },
            PATHS[(rng.next() % PATHS.len() as u64) as usize],
            rng.next() % 5000,
            AGENTS[(rng.next() % AGENTS.len() as u64) as usize]
        )
        .expect("write to memory");
    }
    out
}

fn structlog(n: usize, rng: &mut Lcg) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 290);
    for i in 0..n {
        let micros = i * 50;
        let ts = format!(
            "2026-11-23T{:02}:{:02}:{:02}.{:06}Z",
            (micros / 3_600_000_000) % 24,
            (micros / 60_000_000) % 60,
            (micros / 1_000_000) % 60,
            micros % 1_000_000
        );
        let path = PATHS[(rng.next() % PATHS.len() as u64) as usize];
        match rng.next() % 10 {
            0 => writeln!(out, r#"{{"path": "{path}", "key_prefix": "k{:09}", "client": "203.0.113.{}", "event": "Invalid API key", "correlation_id": "c2df{:08x}", "request_id": "c2df{:08x}", "timestamp": "{ts}", "level": "warning"}}"#, rng.next() % 1_000_000_000, 1 + rng.next() % 4, rng.next(), rng.next()),
            1..=4 => writeln!(out, r#"{{"path": "{path}", "key_name": "client", "permissions": ["read", "write"], "client": "10.0.0.{}", "event": "API key authenticated", "correlation_id": "c2df{:08x}", "request_id": "c2df{:08x}", "timestamp": "{ts}", "level": "info"}}"#, 1 + rng.next() % 254, rng.next(), rng.next()),
            _ => writeln!(out, r#"{{"method": "GET", "path": "{path}", "status_code": 200, "duration_ms": {}.{:02}, "client_ip": "10.0.0.{}", "event": "Request completed", "correlation_id": "c2df{:08x}", "request_id": "c2df{:08x}", "timestamp": "{ts}", "level": "info"}}"#, rng.next() % 40, rng.next() % 100, 1 + rng.next() % 254, rng.next(), rng.next()),
        }
        .expect("write to memory");
    }
    out
}

fn nginx_json(n: usize, rng: &mut Lcg) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 220);
    for i in 0..n {
        let second = i / 20;
        let status = if rng.next() % 10 == 0 { 401 } else { 200 };
        writeln!(out, r#"{{"time":"2026-11-23T{:02}:{:02}:{:02}+00:00","remote_addr":"10.0.{}.{}","request_method":"GET","request_uri":"{}","status":{status},"body_bytes_sent":{},"request_time":0.00{},"http_user_agent":"{}"}}"#,
            (second / 3600) % 24, (second / 60) % 60, second % 60, rng.next() % 256, 1 + rng.next() % 254, PATHS[(rng.next() % PATHS.len() as u64) as usize], rng.next() % 5000, rng.next() % 10, AGENTS[(rng.next() % AGENTS.len() as u64) as usize]).expect("write");
    }
    out
}

fn sekha(n: usize, rng: &mut Lcg) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 110);
    for i in 0..n {
        let micros = i * 50;
        writeln!(out, "\u{1b}[2m2026-11-23T{:02}:{:02}:{:02}.{:06}Z\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m \u{1b}[2msekha_controller::services\u{1b}[0m\u{1b}[2m:\u{1b}[0m stored memory {} in {} ms",
            (micros / 3_600_000_000) % 24, (micros / 60_000_000) % 60, (micros / 1_000_000) % 60, micros % 1_000_000, rng.next(), rng.next() % 50).expect("write");
    }
    out
}

/// nginx `combined` as a pattern: the same fields the built-in parser reads.
const NGINX_PATTERN: &str = r#"^(?P<ip>\S+) \S+ (?P<user>\S+) \[(?P<time>[^\]]+)\] "(?P<method>[A-Z]+) (?P<path>\S+)[^"]*" (?P<status>\d{3})"#;

fn run(name: &str, format: &LineFormat, data: &[u8]) -> f64 {
    let mut best = f64::MAX;
    let mut counts = (0usize, 0usize, 0usize);
    for _ in 0..3 {
        counts = (0, 0, 0);
        let start = Instant::now();
        // Lines found the way the agent's reader finds them: memchr for the newline.
        let mut line_start = 0;
        for end in memchr::memchr_iter(b'\n', data) {
            let line = &data[line_start..end];
            line_start = end + 1;
            match format.parse(line) {
                Ok(p) if p.kind == Kind::Auth && p.outcome == Outcome::Failure => counts.1 += 1,
                Ok(_) => counts.0 += 1,
                Err(_) => counts.2 += 1,
            }
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    let lines = counts.0 + counts.1 + counts.2;
    let rate = lines as f64 / best;
    println!(
        "  {name:<16} {lines:>9} lines {:>7.1} MB  {:>7.1} ms  {:>6.2} M lines/s  ({} failed auth, {} unparsed)",
        data.len() as f64 / 1e6,
        best * 1000.0,
        rate / 1e6,
        counts.1,
        counts.2
    );
    rate
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mut rng = Lcg(0x5eed);
    let access = nginx_combined(n, &mut rng);
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    if std::fs::create_dir_all(&out).is_ok() {
        let _ = std::fs::write(out.join("access.log"), &access);
    }
    let structlog = structlog(n, &mut rng);
    let json = nginx_json(n, &mut rng);
    let sekha = sekha(n, &mut rng);
    println!("parse throughput, one core, best of 3 (release build):");
    run("nginx combined", &Format::NginxCombined.into(), &access);
    run("structlog JSON", &Format::Structlog.into(), &structlog);
    run("nginx JSON", &Format::NginxJson.into(), &json);
    run("sekha tracing", &Format::SekhaTracing.into(), &sekha);
    let pattern = LineFormat::from_parts("pattern", Some(NGINX_PATTERN), Some("nginx"))
        .expect("the benchmark's pattern compiles");
    run("pattern (nginx)", &pattern, &access);
}
