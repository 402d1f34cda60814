//! Heatmaps, offenders and alerts: counting from the right log, buckets in the operator's
//! time zone across DST, SVG snapshots, and rules firing from lines written on a host.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use gatehouse_core::events::{EventStore, Pulled};
use gatehouse_core::{
    build_heatmap, time_zone, AlertFilter, AlertState, ChartTheme, EventFilter, HeatmapKind,
    HeatmapQuery, OffenderQuery, Window,
};
use gatehouse_events::{Kind, Outcome};
use gatehouse_protocol::WireEvent;

use crate::lab::{start_agent_config, Lab};
use crate::support::append;

const HOUR: i64 = 3_600_000_000;

fn failure(seq: u64, time_us: i64, source: &str, ip: Option<&str>) -> WireEvent {
    WireEvent {
        seq,
        time_us,
        source: source.parse().expect("a source word"),
        kind: Kind::Auth,
        outcome: Outcome::Failure,
        actor: None,
        key_prefix: None,
        ip: ip.map(Into::into),
        method: Some("GET".into()),
        path: Some("/api/v1/v1/sessions".into()),
        status: Some(401),
        message: None,
        raw: format!("line {seq}"),
        flags: 0,
    }
}

fn store_with(instance: &str, events: Vec<WireEvent>) -> (tempfile::TempDir, EventStore) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut store = EventStore::open(&tmp.path().join("events.sqlite3")).expect("store");
    store
        .ingest(
            instance,
            &[Pulled {
                events,
                after: 0,
                dropped: 0,
            }],
            0,
        )
        .expect("ingest");
    (tmp, store)
}

/// 2026-11-01 is a Sunday; New York falls back from EDT to EST at 06:00 UTC, so local
/// 01:00-02:00 happens twice (05:00 and 06:00 UTC).
const FALL_BACK_0500_UTC: i64 = 1_793_509_200_000_000;

#[test]
fn buckets_follow_the_time_zone_across_a_dst_change() {
    let events = vec![
        failure(
            1,
            FALL_BACK_0500_UTC + HOUR / 2,
            "proxy",
            Some("203.0.113.9"),
        ),
        failure(
            2,
            FALL_BACK_0500_UTC + HOUR + HOUR / 2,
            "proxy",
            Some("203.0.113.9"),
        ),
        failure(
            3,
            FALL_BACK_0500_UTC + 3 * HOUR,
            "proxy",
            Some("198.51.100.4"),
        ),
    ];
    let (_tmp, store) = store_with("alpha", events);
    let tz = time_zone(Some("America/New_York"));
    let now = FALL_BACK_0500_UTC + 2 * 24 * HOUR;
    let fleet = vec![("alpha".to_owned(), "sekha".to_owned())];
    let weekly = build_heatmap(
        &store,
        &HeatmapQuery {
            kind: HeatmapKind::WeekdayHour,
            window: Window::Week,
            ..Default::default()
        },
        &fleet,
        now,
        &tz,
    )
    .expect("heatmap");
    let cell = |row: u32, column: u32| {
        weekly
            .cells
            .iter()
            .find(|c| c.row == row && c.column == column)
            .expect("every cell is listed")
    };
    let repeated = cell(6, 1);
    assert_eq!(
        repeated.count, 2,
        "both failures happened at 01:xx local time on Sunday (EDT, then EST): {}",
        repeated.label
    );
    assert_eq!(
        repeated.filter.hours.as_ref().map(Vec::len),
        Some(2),
        "the repeated local hour is two UTC hours"
    );
    assert_eq!(cell(6, 3).count, 1, "05:00 UTC + 3 h is 03:00 EST");
    assert_eq!(weekly.total, 3, "every failure is in one cell");
    assert!(
        weekly.subtitle.contains("America/New_York"),
        "the chart states its time zone: {}",
        weekly.subtitle
    );

    // The cell's filter shows exactly the events it counts.
    let page = store
        .page(&repeated.filter, &[], None, 100)
        .expect("page of the cell");
    assert_eq!(
        page.events.len(),
        2,
        "the timeline shows the cell's two events"
    );

    // By day, 1 November has 25 hours in New York.
    let daily = build_heatmap(
        &store,
        &HeatmapQuery {
            kind: HeatmapKind::InstanceDay,
            window: Window::Week,
            ..Default::default()
        },
        &fleet,
        now,
        &tz,
    )
    .expect("heatmap");
    let nov1 = daily
        .columns
        .iter()
        .position(|c| c == "1 Nov")
        .expect("a column for 1 November") as u32;
    let day = daily
        .cells
        .iter()
        .find(|c| c.row == 0 && c.column == nov1)
        .expect("cell");
    assert_eq!(day.count, 3, "all three failures fell on local 1 November");
    assert_eq!(
        day.filter.hours.as_ref().map(Vec::len),
        Some(25),
        "the day DST ends has 25 hours"
    );
}

#[test]
fn spring_forward_leaves_the_missing_hour_empty_and_half_hour_zones_say_so() {
    // 2026-03-08 07:00 UTC: New York jumps from 02:00 EST to 03:00 EDT.
    let jump = 1_772_953_200_000_000;
    let (_tmp, store) = store_with(
        "alpha",
        vec![failure(1, jump + 60_000_000, "proxy", Some("192.0.2.1"))],
    );
    let fleet = vec![("alpha".to_owned(), "rae".to_owned())];
    // The last 24 hours: from 23:00 EST on Saturday to 19:00 EDT on Sunday.
    let map = build_heatmap(
        &store,
        &HeatmapQuery {
            window: Window::Day,
            ..Default::default()
        },
        &fleet,
        jump + 20 * HOUR,
        &time_zone(Some("America/New_York")),
    )
    .expect("heatmap");
    let sunday_two = map
        .cells
        .iter()
        .find(|c| c.row == 6 && c.column == 2)
        .expect("cell");
    assert_eq!(
        sunday_two.filter.hours.as_ref().map(Vec::len),
        Some(0),
        "02:00 did not exist that Sunday, so no UTC hour maps to it"
    );
    assert_eq!(
        map.cells
            .iter()
            .find(|c| c.row == 6 && c.column == 3)
            .map(|c| c.count),
        Some(1),
        "07:01 UTC is 03:01 EDT"
    );

    let kolkata = build_heatmap(
        &store,
        &HeatmapQuery {
            kind: HeatmapKind::AddressTime,
            window: Window::Day,
            ..Default::default()
        },
        &fleet,
        jump + 2 * HOUR,
        &time_zone(Some("Asia/Kolkata")),
    )
    .expect("heatmap");
    assert!(
        kolkata.columns.iter().all(|c| c.ends_with(":30")),
        "in a +05:30 zone hourly columns start at half past: {:?}",
        kolkata.columns
    );
    assert_eq!(kolkata.rows, vec!["192.0.2.1"], "the address is a row");
    assert_eq!(kolkata.total, 1, "counted once");
}

#[test]
fn attempts_are_counted_from_the_proxy_log_when_there_is_one() {
    let t = 1_795_401_600_000_000;
    // One wrong key through a proxy: the proxy, uvicorn and the service each log it.
    let mut events = Vec::new();
    for (i, source) in ["proxy", "access", "service"].iter().enumerate() {
        events.push(failure(i as u64 + 1, t, source, Some("203.0.113.50")));
    }
    let (_tmp, mut store) = store_with("jelmore-1", events);
    // RAE without a proxy: its own log is all there is (and it writes two lines per wrong key).
    store
        .ingest(
            "rae-1",
            &[Pulled {
                events: vec![
                    failure(1, t, "service", None),
                    failure(2, t, "service", None),
                ],
                after: 0,
                dropped: 0,
            }],
            0,
        )
        .expect("ingest");
    let fleet = vec![
        ("jelmore-1".to_owned(), "jelmore".to_owned()),
        ("rae-1".to_owned(), "rae".to_owned()),
    ];
    let map = build_heatmap(
        &store,
        &HeatmapQuery {
            kind: HeatmapKind::InstanceDay,
            window: Window::Day,
            ..Default::default()
        },
        &fleet,
        t + HOUR,
        &time_zone(Some("UTC")),
    )
    .expect("heatmap");
    let of = |row: usize| {
        map.cells
            .iter()
            .filter(|c| c.row as usize == row)
            .map(|c| c.count)
            .sum::<u64>()
    };
    assert_eq!(
        map.rows,
        vec!["jelmore-1", "rae-1"],
        "both instances are rows"
    );
    assert_eq!(
        of(0),
        1,
        "the request Jelmore's proxy, uvicorn and service all logged counts once"
    );
    assert_eq!(
        of(1),
        2,
        "without a proxy, RAE's own lines are what there is to count"
    );
    let jelmore_cell = map
        .cells
        .iter()
        .find(|c| c.row == 0 && c.count == 1)
        .expect("cell");
    let page = store
        .page(&jelmore_cell.filter, &[], None, 10)
        .expect("page");
    assert_eq!(page.events.len(), 1, "the cell opens the one counted event");
    assert_eq!(
        page.events[0].source,
        gatehouse_events::Source::Proxy,
        "from the proxy log"
    );
}

#[test]
fn pages_pulled_twice_are_counted_once() {
    let t = 1_795_401_600_000_000;
    let events: Vec<_> = (1..=4)
        .map(|i| failure(i, t + i as i64, "proxy", Some("203.0.113.5")))
        .collect();
    let (_tmp, mut store) = store_with("sekha-1", events.clone());
    // The app and a CLI run pulled the same pages: the second ingest adds nothing.
    let before = store
        .ingest(
            "sekha-1",
            &[Pulled {
                events,
                after: 0,
                dropped: 0,
            }],
            0,
        )
        .expect("ingest again");
    assert_eq!(before, 4, "the store says which sequence it already had");
    let by_hour = store.failed_auth_by_hour("sekha-1").expect("rollups");
    assert_eq!(
        by_hour.iter().map(|(_, n)| n).sum::<i64>(),
        4,
        "the rollups count each failure once: {by_hour:?}"
    );
}

#[test]
fn adding_a_proxy_log_later_keeps_the_history_counted_before() {
    let t = 1_795_401_600_000_000;
    // Hour 0: only the service log. Hour 5: the proxy log is added, and both see each failure.
    let mut events = vec![
        failure(1, t, "service", None),
        failure(2, t + 60_000_000, "service", None),
    ];
    events.push(failure(3, t + 5 * HOUR, "service", None));
    events.push(failure(4, t + 5 * HOUR, "proxy", Some("198.51.100.8")));
    let (_tmp, store) = store_with("sekha-1", events);
    let by_hour = store.failed_auth_by_hour("sekha-1").expect("rollups");
    assert_eq!(
        by_hour,
        vec![(t / HOUR, 2), (t / HOUR + 5, 1)],
        "before the proxy the service log counts; after, the proxy alone"
    );
}

fn snapshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/core/snapshots")
}

#[test]
fn heatmap_svg_matches_its_snapshot_in_both_themes() {
    let base = 1_795_392_000_000_000; // Monday 2026-11-16 00:00 UTC
    let mut events = Vec::new();
    let mut seq = 0;
    for (day, hour, n, ip) in [
        (0, 9, 3, "198.51.100.4"),
        (0, 14, 40, "203.0.113.9"),
        (2, 3, 120, "203.0.113.9"),
        (4, 22, 7, "192.0.2.33"),
        (6, 12, 1, "198.51.100.4"),
    ] {
        for i in 0..n {
            seq += 1;
            events.push(failure(
                seq,
                base + (day * 24 + hour) * HOUR + i * 1_000_000,
                "proxy",
                Some(ip),
            ));
        }
    }
    let (_tmp, store) = store_with("sekha-1", events);
    let fleet = vec![("sekha-1".to_owned(), "sekha".to_owned())];
    let now = base + 7 * 24 * HOUR - 1;
    for (theme, name) in [
        (ChartTheme::Light, "weekday-light.svg"),
        (ChartTheme::Dark, "weekday-dark.svg"),
    ] {
        let map = build_heatmap(
            &store,
            &HeatmapQuery {
                theme,
                window: Window::Week,
                ..Default::default()
            },
            &fleet,
            now,
            &time_zone(Some("UTC")),
        )
        .expect("heatmap");
        assert_eq!(map.total, 171, "every failure is counted");
        assert_eq!(map.max, 120, "the largest cell");
        assert!(map.svg.starts_with("<svg"), "an SVG document");
        assert!(
            map.svg.contains("Failed sign-ins by weekday and hour"),
            "the title is drawn"
        );
        assert!(map.svg.contains("UTC"), "the time zone is stated");
        assert!(
            !map.svg.contains("<script"),
            "no script in a picture shown in the window"
        );
        let path = snapshot_dir().join(name);
        if std::env::var_os("GATEHOUSE_BLESS").is_some() {
            std::fs::create_dir_all(snapshot_dir()).expect("snapshot dir");
            std::fs::write(&path, &map.svg).expect("write snapshot");
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            expected == map.svg,
            "{name} differs from its snapshot; look at the new picture and rerun with \
             GATEHOUSE_BLESS=1 if it is right"
        );
        let png = gatehouse_core::render_png(&map, theme).expect("png");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG file");
        assert!(png.len() > 4_000, "with content: {} bytes", png.len());
    }
}

/// An nginx line stamped `second` seconds after `start`.
fn nginx_line(start: time::OffsetDateTime, ip: &str, status: u16, second: u32) -> String {
    let f = time::macros::format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
    );
    let at = (start + time::Duration::seconds(second.into()))
        .format(&f)
        .expect("time");
    format!("{ip} - - [{at}] \"GET /api/v1/v1/sessions HTTP/1.1\" {status} 35 \"-\" \"curl/8\"\n")
}

/// A Jelmore "Invalid API key" line stamped `second` seconds after `start`.
fn jelmore_line(start: time::OffsetDateTime, ip: &str, key: &str, second: u32) -> String {
    let at = (start + time::Duration::seconds(second.into()))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("time");
    format!(
        "{{\"path\": \"/api/v1/v1/sessions\", \"key_prefix\": \"{key}\", \"client\": \"{ip}\", \"event\": \"Invalid API key\", \"timestamp\": \"{at}\", \"level\": \"warning\"}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brute_force_written_on_a_host_raises_one_alert_and_the_offender_shows_it() {
    let lab = Lab::new();
    std::fs::create_dir_all(&lab.agents).expect("dir");
    // The attack began ten minutes before the console's "now": recent enough to be an alarm
    // (older than 15 minutes is history), stamped relative to the lab's clock.
    let start = lab.now() - time::Duration::minutes(10);
    let proxy = lab.agents.join("caddy.log");
    let service = lab.agents.join("jelmore.log");
    // Four failures: below the threshold of five.
    append(
        &proxy,
        &(0..4)
            .map(|s| nginx_line(start, "203.0.113.9", 401, s * 10))
            .collect::<String>(),
    );
    append(&proxy, &nginx_line(start, "10.0.0.2", 200, 45));
    // One wrong key from elsewhere: an offender of its own, far below the brute forcer.
    append(&proxy, &nginx_line(start, "198.51.100.200", 401, 47));
    let (dir, code) = lab.init_agent("jelmore-1", time::OffsetDateTime::now_utc());
    let agent = start_agent_config(
        gatehouse_agent::AgentConfig::for_test(dir)
            .with_profile("jelmore")
            .with_logs(vec![
                gatehouse_agent::tail::LogConfig::file(
                    proxy.clone(),
                    gatehouse_events::Format::NginxCombined,
                    gatehouse_events::Source::Proxy,
                ),
                gatehouse_agent::tail::LogConfig::file(
                    service.clone(),
                    gatehouse_events::Format::Structlog,
                    gatehouse_events::Source::Service,
                ),
            ]),
    )
    .await;
    lab.add("jelmore-1", &agent, &code).await.expect("enrolled");
    let notices = Arc::new(Mutex::new(Vec::new()));
    let seen = notices.clone();
    lab.console
        .analytics
        .on_alert(move |n| seen.lock().expect("notices").push(n));
    lab.sync_until("jelmore-1", 6).await;
    assert!(
        lab.console
            .analytics
            .alerts(&AlertFilter::default())
            .expect("alerts")
            .is_empty(),
        "four failures in ten minutes raise nothing"
    );

    // The fifth, and more of the same burst: one alert, updated.
    append(
        &proxy,
        &(0..6)
            .map(|s| nginx_line(start, "203.0.113.9", 401, 60 + s * 5))
            .collect::<String>(),
    );
    lab.sync_until("jelmore-1", 6).await;
    let alerts = lab
        .console
        .analytics
        .alerts(&AlertFilter::default())
        .expect("alerts");
    assert_eq!(alerts.len(), 1, "one brute force, one alert: {alerts:?}");
    let alert = &alerts[0];
    assert_eq!(
        alert.rule_id, "brute-force",
        "Jelmore uses the general brute-force rule"
    );
    assert_eq!(
        alert.subject.as_deref(),
        Some("203.0.113.9"),
        "about the attacking address"
    );
    assert_eq!(alert.count, 10, "the episode counts all ten failures");
    assert_eq!(alert.state, AlertState::New, "new until the operator acts");
    append(
        &proxy,
        &(0..3)
            .map(|s| nginx_line(start, "203.0.113.9", 401, 100 + s))
            .collect::<String>(),
    );
    lab.sync_until("jelmore-1", 3).await;
    let alerts = lab
        .console
        .analytics
        .alerts(&AlertFilter::default())
        .expect("alerts");
    assert_eq!(alerts.len(), 1, "the burst goes on: still one alert");
    assert_eq!(alerts[0].count, 13, "updated with the new failures");
    assert_eq!(
        notices.lock().expect("notices").len(),
        1,
        "the desktop was told once"
    );

    // Key spraying, seen in the service's own log with the key prefixes.
    append(
        &service,
        &(0..5)
            .map(|i| jelmore_line(start, "198.51.100.23", &format!("guess{i:05}"), 200 + i))
            .collect::<String>(),
    );
    lab.sync_until("jelmore-1", 5).await;
    let spraying = lab
        .console
        .analytics
        .alerts(&AlertFilter {
            subject: Some("198.51.100.23".into()),
            ..Default::default()
        })
        .expect("alerts");
    assert_eq!(
        spraying.len(),
        1,
        "five different keys from one address: {spraying:?}"
    );
    assert_eq!(spraying[0].kind, "key_spraying", "it is key spraying");

    let offenders = lab
        .console
        .analytics
        .offenders(&OffenderQuery {
            window: Window::Day,
            ..Default::default()
        })
        .expect("offenders");
    let top = &offenders[0];
    assert_eq!(
        top.ip, "203.0.113.9",
        "the brute forcer leads: {offenders:?}"
    );
    assert_eq!(top.failures, 13, "counted once each, from the proxy log");
    assert_eq!(top.instances, vec!["jelmore-1"], "the instance it hit");
    assert_eq!(top.open_alerts, 1, "its alert is open");
    assert!(
        !top.spoofable,
        "the proxy saw the connection itself: the address is not a client's claim"
    );
    assert!(
        !offenders.iter().any(|o| o.ip == "10.0.0.2"),
        "a client that signed in is no offender"
    );
    for offset in [0, 1] {
        let page = lab
            .console
            .analytics
            .offender_page(&OffenderQuery {
                window: Window::Day,
                limit: Some(1),
                offset: Some(offset),
                ..Default::default()
            })
            .expect("a page");
        let ips = |list: &[gatehouse_core::Offender]| {
            list.iter().map(|o| o.ip.clone()).collect::<Vec<_>>()
        };
        assert_eq!(
            (ips(&page.offenders), page.offset, page.total),
            (
                ips(&offenders).into_iter().skip(offset as usize).take(1).collect(),
                offset,
                offenders.len() as u64
            ),
            "a page of one from rank {offset} holds the address of that rank and says how many there are in all"
        );
    }
    // The last of them, found by part of its address with a page of one: beyond the first
    // page, and counted alone.
    assert!(
        offenders.len() >= 2,
        "more than one page of one: {offenders:?}"
    );
    let last = &offenders[offenders.len() - 1].ip;
    let part = &last[last.len() - 5..];
    let found = lab
        .console
        .analytics
        .offender_page(&OffenderQuery {
            window: Window::Day,
            limit: Some(1),
            address: Some(format!(" {} ", part.to_uppercase())),
            ..Default::default()
        })
        .expect("a search");
    let containing: Vec<&str> = offenders
        .iter()
        .map(|o| o.ip.as_str())
        .filter(|ip| ip.contains(part))
        .collect();
    assert_eq!(
        (
            found.offenders.iter().map(|o| o.ip.as_str()).collect::<Vec<_>>(),
            found.total
        ),
        (containing[..1].to_vec(), containing.len() as u64),
        "a search for {part:?} finds the addresses containing it, however low they rank, and counts only them"
    );
    let sprayer = lab
        .console
        .analytics
        .offenders(&OffenderQuery {
            window: Window::Day,
            ..Default::default()
        })
        .expect("offenders")
        .into_iter()
        .find(|o| o.ip == "198.51.100.23");
    // The sprayer appears in the service log only; the proxy did not see it in this test, so
    // it has no counted failures and is not an offender by count.
    assert!(
        sprayer.is_none(),
        "offenders are counted from the proxy log: {sprayer:?}"
    );

    // Acknowledge, then resolve; a resolved alert leaves the default list.
    let id = alerts[0].id;
    let acked = lab
        .console
        .analytics
        .set_alert_state(id, AlertState::Acknowledged)
        .expect("ack");
    assert_eq!(acked.state, AlertState::Acknowledged, "acknowledged");
    lab.console
        .analytics
        .set_alert_state(id, AlertState::Resolved)
        .expect("resolve");
    assert!(
        lab.console
            .analytics
            .alerts(&AlertFilter::default())
            .expect("alerts")
            .iter()
            .all(|a| a.id != id),
        "resolved alerts are not in the open list"
    );
    let missing = lab
        .console
        .analytics
        .set_alert_state(9999, AlertState::Resolved)
        .expect_err("no such alert");
    assert_eq!(
        missing.code(),
        gatehouse_core::ErrorCode::AlertNotFound,
        "a clear code"
    );

    // An allowlisted address never alerts.
    let mut detection = lab.console.analytics.detection().expect("detection");
    detection.allowlist = vec!["192.0.2.0/24".into()];
    lab.console
        .analytics
        .set_detection(&detection)
        .expect("saved");
    append(
        &proxy,
        &(0..8)
            .map(|s| nginx_line(start, "192.0.2.77", 401, 300 + s))
            .collect::<String>(),
    );
    lab.sync_until("jelmore-1", 8).await;
    assert!(
        lab.console
            .analytics
            .alerts(&AlertFilter {
                subject: Some("192.0.2.77".into()),
                ..Default::default()
            })
            .expect("alerts")
            .is_empty(),
        "the allowlisted network raises no alert"
    );
    let listed = lab
        .console
        .analytics
        .offenders(&OffenderQuery {
            window: Window::Day,
            ..Default::default()
        })
        .expect("offenders");
    assert!(
        listed.iter().any(|o| o.ip == "192.0.2.77" && o.allowlisted),
        "it is still listed, marked allowlisted"
    );
    let timeline = lab
        .console
        .timeline
        .events(
            &EventFilter {
                kind: Some(Kind::Console),
                text: Some("Alert".into()),
                ..Default::default()
            },
            None,
            50,
        )
        .expect("timeline");
    assert!(
        timeline.events.iter().any(|e| e
            .message
            .as_deref()
            .is_some_and(|m| m.contains("Brute force"))),
        "the alert is on the timeline too"
    );
    agent.stop().await;
}

#[test]
fn detection_settings_are_checked_before_they_are_saved() {
    let lab = Lab::new();
    let mut detection = lab.console.analytics.detection().expect("defaults");
    assert!(
        detection.rules.iter().any(|r| r.id == "brute-force-rae"),
        "the RAE guide's rule is a default"
    );
    detection.allowlist = vec!["not-an-address".into()];
    let err = lab
        .console
        .analytics
        .set_detection(&detection)
        .expect_err("refused");
    assert!(
        err.to_string().contains("not-an-address"),
        "names the bad entry: {err}"
    );
    detection.allowlist.clear();
    detection.rules[0].enabled = false;
    let saved = lab
        .console
        .analytics
        .set_detection(&detection)
        .expect("saved");
    assert!(!saved.rules[0].enabled, "the change is kept");
    let reset = lab.console.analytics.reset_detection().expect("reset");
    assert!(
        reset.rules[0].enabled,
        "reset brings back the guides' rules"
    );
}

/// Jelmore without a proxy: its own log names the client by the first X-Forwarded-For
/// entry, which any client can set. An attacker who writes an innocent address there must
/// not get it blocked with one click: the offender and the alert say the address may be
/// forged, and a block asks for a second confirmation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_a_client_chose_is_marked_and_its_block_needs_a_second_confirmation() {
    let lab = Lab::new();
    std::fs::create_dir_all(&lab.agents).expect("dir");
    let start = lab.now() - time::Duration::minutes(10);
    let service = lab.agents.join("jelmore.log");
    append(
        &service,
        &(0..6)
            .map(|i| jelmore_line(start, "198.51.100.77", "samekey01", i * 20))
            .collect::<String>(),
    );
    let (dir, code) = lab.init_agent("jelmore-2", time::OffsetDateTime::now_utc());
    let agent = start_agent_config(
        gatehouse_agent::AgentConfig::for_test(dir)
            .with_profile("jelmore")
            .with_logs(vec![gatehouse_agent::tail::LogConfig::file(
                service.clone(),
                gatehouse_events::Format::Structlog,
                gatehouse_events::Source::Service,
            )]),
    )
    .await;
    lab.add("jelmore-2", &agent, &code).await.expect("enrolled");
    lab.sync_until("jelmore-2", 6).await;

    let offenders = lab
        .console
        .analytics
        .offenders(&OffenderQuery {
            window: Window::Day,
            ..Default::default()
        })
        .expect("offenders");
    let offender = offenders
        .iter()
        .find(|o| o.ip == "198.51.100.77")
        .unwrap_or_else(|| panic!("the address is an offender: {offenders:?}"));
    assert!(
        offender.spoofable,
        "its every failure came through X-Forwarded-For: {offender:?}"
    );
    let alerts = lab
        .console
        .analytics
        .alerts(&AlertFilter::default())
        .expect("alerts");
    let alert = alerts
        .iter()
        .find(|a| a.subject.as_deref() == Some("198.51.100.77"))
        .unwrap_or_else(|| panic!("six failures raise an alert: {alerts:?}"));
    assert!(
        alert.detail.contains("X-Forwarded-For"),
        "the alert says the address may be forged: {}",
        alert.detail
    );

    let incident = lab
        .console
        .incidents
        .incident_from_alert(alert.id)
        .expect("incident");
    let refused = lab
        .console
        .incidents
        .incident_block(incident.id, "jelmore-2", "198.51.100.77", 600, false)
        .await
        .expect_err("one click does not block an address a client chose");
    assert_eq!(
        refused.code().as_str(),
        "spoofable_address",
        "refused with its own code, so the window asks again: {refused}"
    );
    let requested = lab
        .console
        .audit
        .entries(100)
        .expect("audit")
        .iter()
        .any(|e| e.action == "block_requested");
    assert!(!requested, "nothing was asked of the host");
    let second = lab
        .console
        .incidents
        .incident_block(incident.id, "jelmore-2", "198.51.100.77", 600, true)
        .await;
    assert!(
        !matches!(&second, Err(e) if e.code().as_str() == "spoofable_address"),
        "confirmed a second time, the block goes to the host: {second:?}"
    );
    agent.stop().await;
}

/// A store written before addresses were marked spoofable counts them again from its events
/// when it is opened, so old Jelmore failures are not shown as trustworthy.
#[test]
fn a_store_from_before_spoofable_counts_is_backfilled_from_its_events() {
    let at = 1_795_401_600_000_000;
    let forged = |seq| WireEvent {
        flags: gatehouse_protocol::flags::IP_SPOOFABLE,
        ..failure(seq, at + seq as i64, "service", Some("198.51.100.77"))
    };
    let (tmp, store) = store_with(
        "jelmore-1",
        vec![
            forged(1),
            forged(2),
            failure(3, at + 3, "service", Some("203.0.113.9")),
        ],
    );
    drop(store);
    let path = tmp.path().join("events.sqlite3");
    {
        // As the previous version left it: no column, schema version 1.
        let db = rusqlite::Connection::open(&path).expect("db");
        db.execute_batch("ALTER TABLE auth_hourly DROP COLUMN spoofable; PRAGMA user_version = 1;")
            .expect("downgrade");
    }
    let store = EventStore::open(&path).expect("the store opens and migrates");
    let scope = gatehouse_core::events::Scope::default();
    let ids: Vec<_> = ["198.51.100.77", "203.0.113.9"]
        .iter()
        .map(|ip| store.string_id(ip).expect("interned"))
        .collect();
    let hour = at / HOUR;
    let rows = store
        .address_hours(&scope, &ids, hour - 1, hour + 1)
        .expect("rollups");
    let of = |ip: usize| {
        rows.iter()
            .find(|r| r.ip == ids[ip])
            .map(|r| (r.failures, r.spoofable))
    };
    assert_eq!(
        of(0),
        Some((2, 2)),
        "both forged failures are counted again: {rows:?}"
    );
    assert_eq!(of(1), Some((1, 0)), "the other is not spoofable: {rows:?}");
}

/// The agent's own requests (a compliance probe, the old key tried after a rotation) fail
/// sign-in by design: they stay on the timeline, flagged, but never count as failed
/// sign-ins, whether stored now or by a store from before the flag was honoured.
#[test]
fn the_agent_s_own_probes_are_shown_but_never_counted() {
    let at = 1_795_401_600_000_000;
    let probe = |seq| WireEvent {
        flags: gatehouse_protocol::flags::PROBE,
        ..failure(seq, at + seq as i64, "proxy", Some("127.0.0.1"))
    };
    let (tmp, store) = store_with(
        "sekha-1",
        vec![
            probe(1),
            probe(2),
            probe(3),
            failure(4, at + 4, "proxy", Some("203.0.113.9")),
        ],
    );
    let scope = gatehouse_core::events::Scope::default();
    let counted = |store: &EventStore| {
        let ids: Vec<_> = ["127.0.0.1", "203.0.113.9"]
            .iter()
            .map(|ip| store.string_id(ip).expect("interned"))
            .collect();
        let hour = at / HOUR;
        let rows = store
            .address_hours(&scope, &ids, hour - 1, hour + 1)
            .expect("rollups");
        ids.iter()
            .map(|id| {
                rows.iter()
                    .filter(|r| r.ip == *id)
                    .map(|r| r.failures)
                    .sum::<u64>()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        counted(&store),
        [0, 1],
        "the probes count for nothing, the stranger's failure once"
    );
    let page = store
        .page(&EventFilter::default(), &[], None, 10)
        .expect("page");
    assert_eq!(
        page.events
            .iter()
            .filter(|e| e.flags & gatehouse_protocol::flags::PROBE != 0)
            .count(),
        3,
        "the probes are on the timeline, flagged as Gatehouse's own"
    );
    let attempts = store
        .page(
            &EventFilter {
                attempts: true,
                ..Default::default()
            },
            &[],
            None,
            10,
        )
        .expect("page");
    assert_eq!(
        attempts
            .events
            .iter()
            .map(|e| e.ip.as_deref())
            .collect::<Vec<_>>(),
        [Some("203.0.113.9")],
        "failed sign-ins as heatmaps and incidents count them leave the probes out"
    );
    drop(store);
    let path = tmp.path().join("events.sqlite3");
    {
        // As a store of the previous version counted them: every failure in the rollups.
        let db = rusqlite::Connection::open(&path).expect("db");
        db.execute_batch(
            "INSERT INTO auth_hourly (hour, instance, source, ip, failures, first_us, last_us)
                 SELECT hour, instance, source, (SELECT id FROM strings WHERE value = '127.0.0.1'),
                        3, first_us, last_us
                 FROM auth_hourly LIMIT 1;
             PRAGMA user_version = 2;",
        )
        .expect("as before");
        let probes: i64 = db
            .query_row(
                "SELECT SUM(failures) FROM auth_hourly WHERE ip = (SELECT id FROM strings WHERE value = '127.0.0.1')",
                [],
                |r| r.get(0),
            )
            .expect("counted");
        assert_eq!(probes, 3, "the old store counts the probes");
    }
    let store = EventStore::open(&path).expect("the store opens and migrates");
    assert_eq!(
        counted(&store),
        [0, 1],
        "the migration counts the rollups again without the probes"
    );
}

/// A store written before unparsed lines were counted per instance counts them once from its
/// events when it is opened, and goes on counting as lines arrive.
#[test]
fn a_store_from_before_unparsed_counts_is_backfilled_from_its_events() {
    let at = 1_795_401_600_000_000;
    let unparsed = |seq: u64| WireEvent {
        kind: Kind::Unparsed,
        outcome: Outcome::Info,
        ..failure(seq, at + seq as i64, "proxy", None)
    };
    let (tmp, store) = store_with(
        "sekha-1",
        vec![
            unparsed(1),
            failure(2, at + 2, "proxy", Some("203.0.113.9")),
            unparsed(3),
        ],
    );
    assert_eq!(
        store
            .sync_state("sekha-1")
            .expect("state")
            .map(|s| s.unparsed),
        Some(2),
        "counted as stored"
    );
    drop(store);
    let path = tmp.path().join("events.sqlite3");
    {
        // As the previous version left it: no column, schema version 3.
        let db = rusqlite::Connection::open(&path).expect("db");
        db.execute_batch("ALTER TABLE sync_state DROP COLUMN unparsed; PRAGMA user_version = 3;")
            .expect("downgrade");
    }
    let mut store = EventStore::open(&path).expect("the store opens and migrates");
    assert_eq!(
        store
            .sync_state("sekha-1")
            .expect("state")
            .map(|s| s.unparsed),
        Some(2),
        "the two unparsed lines already stored are counted once, the failure is not"
    );
    store
        .ingest(
            "sekha-1",
            &[Pulled {
                events: vec![unparsed(3), unparsed(4)],
                after: 2,
                dropped: 0,
            }],
            0,
        )
        .expect("ingest");
    assert_eq!(
        store
            .sync_state("sekha-1")
            .expect("state")
            .map(|s| s.unparsed),
        Some(3),
        "a new one is added, one already stored is not counted again"
    );
}
