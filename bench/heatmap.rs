//! Heatmaps over a large event store: time to count, lay out and draw each chart (SVG) at N
//! stored events (default 10,000,000) spread over the last 30 days.
//!
//!     cargo run --release -p gatehouse-core --example heatmap [events]
//!
//! The traffic: 2,000 regular clients, 1 % of whose requests fail (stale keys), and four
//! attackers sending about 10 % of all requests, all failed; office hours are busier.

use std::time::Instant;

use gatehouse_core::events::{EventStore, Pulled};
use gatehouse_core::{build_heatmap, time_zone, ChartTheme, HeatmapKind, HeatmapQuery, Window};
use gatehouse_events::{Kind, Outcome, Source};
use gatehouse_protocol::WireEvent;

#[path = "lcg.rs"]
mod lcg;
use lcg::Lcg;

const DAY_US: i64 = 86_400_000_000;
const INSTANCES: [&str; 3] = ["sekha-1", "rae-1", "jelmore-1"];

fn main() -> anyhow::Result<()> {
    let total: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000_000);
    let now_us = time::OffsetDateTime::now_utc().unix_timestamp() * 1_000_000;
    let start_us = now_us - 30 * DAY_US;
    let step = (30 * DAY_US) / total as i64;
    let tmp = tempfile::tempdir()?;
    let mut store = EventStore::open(&tmp.path().join("events.sqlite3"))?;
    let mut rng = Lcg(7);
    let started = Instant::now();
    let per_instance = total / INSTANCES.len() as u64;
    let mut failures = 0u64;
    for (n, instance) in INSTANCES.iter().enumerate() {
        let mut seq = 0u64;
        while seq < per_instance {
            let mut pages = Vec::new();
            for _ in 0..20 {
                let events: Vec<WireEvent> = (0..5_000u64)
                    .take_while(|i| seq + i < per_instance)
                    .map(|i| {
                        let s = seq + i + 1;
                        let time_us =
                            start_us + (s as i64 * INSTANCES.len() as i64 + n as i64) * step;
                        let attack = rng.next() % 10 == 0;
                        let stale = !attack && rng.next() % 100 == 0;
                        let ip = if attack {
                            format!("203.0.113.{}", 1 + rng.next() % 4)
                        } else {
                            let c = rng.next() % 2000;
                            format!("10.0.{}.{}", c / 200, 1 + c % 200)
                        };
                        let failed = attack || stale;
                        failures += u64::from(failed);
                        WireEvent {
                            seq: s,
                            time_us,
                            source: Source::Proxy,
                            kind: if failed { Kind::Auth } else { Kind::Request },
                            outcome: if failed {
                                Outcome::Failure
                            } else {
                                Outcome::Success
                            },
                            actor: None,
                            key_prefix: None,
                            ip: Some(ip),
                            method: Some("POST".into()),
                            path: Some("/mcp/tools/memory_search".into()),
                            status: Some(if failed { 401 } else { 200 }),
                            message: None,
                            raw: String::new(),
                            flags: 0,
                        }
                    })
                    .collect();
                if events.is_empty() {
                    break;
                }
                seq += events.len() as u64;
                pages.push(Pulled {
                    after: seq,
                    events,
                    dropped: 0,
                });
            }
            store.ingest(instance, &pages, now_us)?;
        }
    }
    println!(
        "stored {} events ({failures} failed sign-ins) over 30 days in {:.1} s",
        store.count()?,
        started.elapsed().as_secs_f64()
    );
    let fleet: Vec<(String, String)> = INSTANCES
        .iter()
        .zip(["sekha", "rae", "jelmore"])
        .map(|(i, p)| ((*i).to_owned(), p.to_owned()))
        .collect();
    let tz = time_zone(Some("Europe/Berlin"));
    let mut worst: f64 = 0.0;
    for kind in [
        HeatmapKind::WeekdayHour,
        HeatmapKind::AddressTime,
        HeatmapKind::InstanceDay,
    ] {
        for window in [Window::Day, Window::Week, Window::Month, Window::Quarter] {
            let query = HeatmapQuery {
                kind,
                window,
                theme: ChartTheme::Light,
                ..Default::default()
            };
            let mut samples = Vec::new();
            let mut total = 0;
            for _ in 0..15 {
                let t = Instant::now();
                let map = build_heatmap(&store, &query, &fleet, now_us, &tz)?;
                samples.push(t.elapsed().as_secs_f64() * 1000.0);
                total = map.total;
            }
            samples.sort_by(f64::total_cmp);
            let (median, max) = (samples[samples.len() / 2], samples[samples.len() - 1]);
            worst = worst.max(median);
            println!(
                "heatmap {kind:?} {window:?}: median {median:.1} ms, max {max:.1} ms ({total} failures counted)"
            );
        }
    }
    println!("slowest chart (median): {worst:.1} ms (goal: under 50 ms)");
    Ok(())
}
