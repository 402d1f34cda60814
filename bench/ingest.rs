//! The console's event store: end-to-end ingest rate with the timeline's indexes in place, and
//! the timeline's first page at N stored events (default 10,000,000), with and without filters.
//!
//!     cargo run --release -p gatehouse-core --example ingest [events]

use std::time::Instant;

use gatehouse_core::events::{EventStore, Pulled};
use gatehouse_core::EventFilter;
use gatehouse_events::{Kind, Outcome, Source};
use gatehouse_protocol::WireEvent;

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
    "/metrics",
];
const START_US: i64 = 1_795_000_000_000_000;

fn page(rng: &mut Lcg, first_seq: u64, n: usize) -> Vec<WireEvent> {
    (0..n as u64)
        .map(|i| {
            let seq = first_seq + i;
            let attack = rng.next() % 10 == 0;
            // A few attackers and CLIENTS regular clients (2,000 by default: a busy
            // self-hosted service); more distinct addresses mean more rollup and term rows.
            let ip = if attack { format!("203.0.113.{}", 1 + rng.next() % 4) } else { let c = rng.next() % clients(); format!("10.{}.{}.{}", c / 50_000, (c / 200) % 250, 1 + c % 200) };
            let status = if attack { 401 } else { 200 };
            WireEvent {
                seq,
                time_us: START_US + seq as i64 * 50_000,
                source: Source::Proxy,
                kind: if attack { Kind::Auth } else { Kind::Request },
                outcome: if attack { Outcome::Failure } else { Outcome::Success },
                actor: None,
                key_prefix: None,
                ip: Some(ip.clone()),
                method: Some(if rng.next() % 3 == 0 { "GET" } else { "POST" }.into()),
                path: Some(PATHS[(rng.next() % PATHS.len() as u64) as usize].into()),
                status: Some(status),
                message: None,
                raw: format!("{ip} - - [23/Nov/2026:02:41:57 +0000] \"POST /mcp/tools/memory_stats HTTP/1.1\" {status} 35 \"-\" \"curl/8.5.0\""),
                flags: 0,
            }
        })
        .collect()
}

fn clients() -> u64 {
    std::env::var("CLIENTS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(2000)
}

fn median_ms(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let total: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000_000);
    let tmp = tempfile::tempdir()?;
    let mut store = EventStore::open(&tmp.path().join("events.sqlite3"))?;
    let mut rng = Lcg(42);
    let page_size: usize = std::env::var("PAGE")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(5000);

    // Generate outside the clock: the agent sends pages ready-made.
    let mut seq = 1;
    let mut first_million = Vec::new();
    while seq <= 1_000_000.min(total) {
        first_million.push(page(&mut rng, seq, page_size));
        seq += page_size as u64;
    }
    // As the sync engine commits: up to 20 pages of 5,000 per transaction.
    let started = Instant::now();
    let mut after = 0;
    for pages in first_million.chunks(20) {
        let batch: Vec<Pulled> = pages
            .iter()
            .map(|p| {
                let pulled = Pulled {
                    events: p.clone(),
                    after,
                    dropped: 0,
                };
                after = p.last().map_or(after, |e| e.seq);
                pulled
            })
            .collect();
        store.ingest("sekha-prod", &batch, 0)?;
    }
    let rate = after as f64 / started.elapsed().as_secs_f64();
    println!("ingest: {after} events in {:.2} s = {:.0} events/s (pages of {page_size}, 20 pages per transaction; indexes, rollups, raw lines)", started.elapsed().as_secs_f64(), rate);
    drop(first_million);

    while seq <= total {
        let mut batch = Vec::new();
        for _ in 0..20 {
            if seq > total {
                break;
            }
            let p = page(&mut rng, seq, page_size);
            let next = p.last().map_or(after, |e| e.seq);
            batch.push(Pulled {
                events: p,
                after,
                dropped: 0,
            });
            after = next;
            seq += page_size as u64;
        }
        store.ingest("sekha-prod", &batch, 0)?;
    }
    let size = std::fs::metadata(tmp.path().join("events.sqlite3"))?.len();
    println!(
        "stored: {} events, database {:.0} MB ({:.0} bytes per event)",
        store.count()?,
        size as f64 / 1e6,
        size as f64 / store.count()? as f64
    );

    let cases = [
        ("no filter", EventFilter::default()),
        (
            "instance",
            EventFilter {
                instance: Some("sekha-prod".into()),
                ..Default::default()
            },
        ),
        (
            "failed auth",
            EventFilter {
                kind: Some(Kind::Auth),
                outcome: Some(Outcome::Failure),
                ..Default::default()
            },
        ),
        (
            "one address",
            EventFilter {
                ip: Some("203.0.113.2".into()),
                ..Default::default()
            },
        ),
        (
            "path prefix",
            EventFilter {
                path: Some("/mcp/".into()),
                ..Default::default()
            },
        ),
        (
            "free text",
            EventFilter {
                text: Some("203.0.113.3".into()),
                ..Default::default()
            },
        ),
        (
            "last hour",
            EventFilter {
                from_us: Some(START_US + total as i64 * 50_000 - 3_600_000_000),
                ..Default::default()
            },
        ),
    ];
    println!(
        "first page (200 events) at {} stored events, median of 21:",
        store.count()?
    );
    for (name, filter) in cases {
        let mut samples = Vec::new();
        let mut found = 0;
        for _ in 0..21 {
            let t = Instant::now();
            let page = store.page(&filter, &[], None, 200)?;
            samples.push(t.elapsed().as_secs_f64() * 1000.0);
            found = page.events.len();
        }
        println!(
            "  {name:<12} {:>8.2} ms  ({found} events)",
            median_ms(samples)
        );
    }
    Ok(())
}
