//! From a line written on a host to the console's timeline: sync, filters, search, paging,
//! gaps, back-off, and the console's own actions.

use std::time::Duration;

use gatehouse_core::events::EventStore;
use gatehouse_core::{ErrorCode, EventFilter};
use gatehouse_events::{Kind, Outcome};
use gatehouse_protocol::WireEvent;

use crate::lab::Lab;
use crate::support::append;

fn nginx(ip: &str, status: u16, minute: u32) -> String {
    format!("{ip} - - [23/Nov/2026:02:{minute:02}:00 +0000] \"POST /mcp/tools/memory_stats HTTP/1.1\" {status} 35 \"-\" \"curl/8\"\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_written_on_a_host_reach_the_timeline() {
    let lab = Lab::new();
    let log = lab.agents.join("access.log");
    std::fs::create_dir_all(&lab.agents).expect("dir");
    append(
        &log,
        &(0..3)
            .map(|m| nginx("203.0.113.7", 401, m))
            .collect::<String>(),
    );
    append(&log, &nginx("10.0.0.2", 200, 5));
    // Two lines no format understands: kept, and counted per instance.
    append(&log, "\u{1}not an access log line\nGET / half a line\n");
    let (agent, code) = lab.agent_following("alpha", &log, 10_000).await;
    lab.add("alpha", &agent, &code).await.expect("enrolled");
    lab.sync_until("alpha", 6).await;

    let all = lab
        .console
        .timeline
        .events(&EventFilter::default(), None, 100)
        .expect("page");
    // Lines without a time of their own carry the time they were read: newer than the
    // enrollment.
    let parsed: Vec<_> = all
        .events
        .iter()
        .filter(|e| e.kind != Kind::Unparsed)
        .collect();
    assert_eq!(
        parsed[0].kind,
        Kind::Console,
        "the console's own enrollment is on the timeline, newest of the lines understood"
    );
    assert!(
        parsed[0]
            .message
            .as_deref()
            .is_some_and(|m| m.starts_with("Enrolled")),
        "the enrollment is the newest event: {:?}",
        parsed[0]
    );
    let failed = lab
        .console
        .timeline
        .events(
            &EventFilter {
                kind: Some(Kind::Auth),
                outcome: Some(Outcome::Failure),
                ..Default::default()
            },
            None,
            100,
        )
        .expect("page");
    assert_eq!(failed.events.len(), 3, "three failed logins");
    assert!(
        failed
            .events
            .iter()
            .all(|e| e.ip.as_deref() == Some("203.0.113.7") && e.instance == "alpha"),
        "the filter returns only the attacker's failed logins on alpha"
    );
    assert!(
        failed
            .events
            .windows(2)
            .all(|w| w[0].time_us >= w[1].time_us),
        "newest first"
    );
    let raw = lab
        .console
        .timeline
        .raw(&failed.events[0].instance, failed.events[0].seq)
        .expect("raw")
        .expect("kept");
    assert!(
        raw.starts_with("203.0.113.7 - - [23/Nov/2026:02:02:00"),
        "the raw line is kept as read: {raw}"
    );
    let state = lab.console.timeline.sync_states().expect("states");
    assert_eq!(
        (
            state[0].instance.as_str(),
            state[0].events,
            state[0].gaps,
            state[0].unparsed
        ),
        ("alpha", 6, 0, 2),
        "the sync state counts the six events, no gap, and the two lines no format understood"
    );
    let unparsed = lab
        .console
        .timeline
        .events(
            &EventFilter {
                kind: Some(Kind::Unparsed),
                ..Default::default()
            },
            None,
            100,
        )
        .expect("page");
    assert_eq!(
        unparsed.events.len() as u64,
        state[0].unparsed,
        "the count is of the lines the timeline shows as unparsed"
    );
    // Nothing new: a sync stores nothing and repeats nothing.
    assert_eq!(
        lab.console
            .timeline
            .sync_instance("alpha")
            .await
            .expect("sync"),
        0,
        "no duplicates"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_the_agent_had_to_drop_leave_a_visible_gap() {
    let lab = Lab::new();
    std::fs::create_dir_all(&lab.agents).expect("dir");
    let log = lab.agents.join("access.log");
    let (agent, code) = lab.agent_following("alpha", &log, 5).await;
    lab.add("alpha", &agent, &code).await.expect("enrolled");
    // Twenty lines while the console is away: the 5-event buffer overflows.
    append(
        &log,
        &(0..20)
            .map(|m| nginx("203.0.113.8", 401, m))
            .collect::<String>(),
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    lab.console
        .timeline
        .sync_instance("alpha")
        .await
        .expect("sync");
    let gaps = lab
        .console
        .timeline
        .events(
            &EventFilter {
                kind: Some(Kind::Gap),
                ..Default::default()
            },
            None,
            100,
        )
        .expect("page");
    assert!(
        !gaps.events.is_empty(),
        "the loss is on the timeline, never silent"
    );
    let state = &lab.console.timeline.sync_states().expect("states")[0];
    assert!(state.gaps > 0, "and counted in the sync state: {state:?}");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_is_down_backs_off_and_says_why() {
    let lab = Lab::new();
    std::fs::create_dir_all(&lab.agents).expect("dir");
    let log = lab.agents.join("access.log");
    let (agent, code) = lab.agent_following("alpha", &log, 100).await;
    lab.add("alpha", &agent, &code).await.expect("enrolled");
    agent.stop().await;
    let err = lab
        .console
        .timeline
        .sync_instance("alpha")
        .await
        .expect_err("the agent is down");
    assert_eq!(
        err.code(),
        ErrorCode::AgentUnreachable,
        "a closed port is unreachable: {err}"
    );
    let state = &lab.console.timeline.sync_states().expect("states")[0];
    assert_eq!(state.failures, 1, "the failure is visible");
    assert!(
        state
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("Cannot reach")),
        "an unreachable agent is recorded in the sync state: {state:?}"
    );
    lab.console.timeline.sync_all().await.expect("sync all");
    let state = &lab.console.timeline.sync_states().expect("states")[0];
    assert_eq!(
        state.failures, 1,
        "a backing-off agent is not hammered on every round"
    );
}

fn wire(
    seq: u64,
    minute: i64,
    ip: &str,
    kind: Kind,
    outcome: Outcome,
    path: &str,
    key: Option<&str>,
) -> WireEvent {
    WireEvent {
        seq,
        time_us: 1_795_401_600_000_000 + minute * 60_000_000,
        source: gatehouse_events::Source::Proxy,
        kind,
        outcome,
        actor: None,
        key_prefix: key.map(Into::into),
        ip: Some(ip.into()),
        method: Some("POST".into()),
        path: Some(path.into()),
        status: Some(401),
        message: None,
        raw: format!("line {seq}"),
        flags: 0,
    }
}

#[test]
fn filters_search_and_paging_find_exactly_the_right_events() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut store = EventStore::open(&tmp.path().join("events.sqlite3")).expect("store");
    let mut events = Vec::new();
    for i in 0..50u64 {
        let (ip, kind, outcome) = if i % 5 == 0 {
            ("198.51.100.4", Kind::Auth, Outcome::Failure)
        } else {
            ("10.0.0.1", Kind::Request, Outcome::Success)
        };
        let path = if i % 2 == 0 {
            "/mcp/tools/memory_store"
        } else {
            "/api/v1/conversations"
        };
        let key = (i % 5 == 0).then_some("wrong_key_");
        events.push(wire(i + 1, i as i64, ip, kind, outcome, path, key));
    }
    store
        .ingest(
            "alpha",
            &[gatehouse_core::events::Pulled {
                events,
                after: 0,
                dropped: 0,
            }],
            0,
        )
        .expect("ingest");
    let page = |filter: EventFilter| store.page(&filter, &[], None, 1000).expect("page").events;

    assert_eq!(
        page(EventFilter {
            ip: Some("198.51.100.4".into()),
            ..Default::default()
        })
        .len(),
        10,
        "an address filter finds exactly that address's events"
    );
    assert_eq!(
        page(EventFilter {
            key_prefix: Some("wrong".into()),
            ..Default::default()
        })
        .len(),
        10,
        "key prefix filter"
    );
    assert_eq!(
        page(EventFilter {
            path: Some("/api/v1/".into()),
            ..Default::default()
        })
        .len(),
        25,
        "path prefix filter"
    );
    assert_eq!(
        page(EventFilter {
            text: Some("198.51.100".into()),
            ..Default::default()
        })
        .len(),
        10,
        "free text finds addresses"
    );
    assert_eq!(
        page(EventFilter {
            text: Some("memory_store 198.51".into()),
            ..Default::default()
        })
        .len(),
        5,
        "every word must match"
    );
    assert!(
        page(EventFilter {
            text: Some("nothing-like-this".into()),
            ..Default::default()
        })
        .is_empty(),
        "a word nothing contains matches no event"
    );
    let window = EventFilter {
        from_us: Some(1_795_401_600_000_000 + 10 * 60_000_000),
        to_us: Some(1_795_401_600_000_000 + 20 * 60_000_000),
        ..Default::default()
    };
    assert_eq!(page(window).len(), 10, "from is inclusive, to exclusive");
    assert!(
        page(EventFilter {
            instance: Some("beta".into()),
            ..Default::default()
        })
        .is_empty(),
        "unknown instance: nothing"
    );

    // Paging with the cursor visits every event once.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let p = store
            .page(&EventFilter::default(), &[], cursor.as_ref(), 7)
            .expect("page");
        seen.extend(p.events.iter().map(|e| e.seq));
        match p.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        (seen.len(), unique.len()),
        (50, 50),
        "no event twice, none missed"
    );
    let by_hour = store.failed_auth_by_hour("alpha").expect("rollup");
    assert_eq!(
        by_hour.iter().map(|(_, n)| n).sum::<i64>(),
        10,
        "rollups count the failed logins"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_larger_than_one_response_is_pulled_completely() {
    let lab = Lab::new();
    std::fs::create_dir_all(&lab.agents).expect("dir");
    let log = lab.agents.join("access.log");
    // About 4000 lines of 300 bytes: several pages, each cut at the body cap.
    let long_path = format!("/api/v1/conversations/{}", "x".repeat(160));
    let lines: String = (0..4000)
        .map(|n| format!("10.0.{}.{} - - [23/Nov/2026:02:41:57 +0000] \"GET {long_path} HTTP/1.1\" 200 2 \"-\" \"probe\"\n", n / 250, n % 250))
        .collect();
    append(&log, &lines);
    let (agent, code) = lab.agent_following("alpha", &log, 100_000).await;
    lab.add("alpha", &agent, &code).await.expect("enrolled");
    lab.sync_until("alpha", 4000).await;
    let state = &lab.console.timeline.sync_states().expect("states")[0];
    assert_eq!(
        (state.events, state.gaps),
        (4000, 0),
        "every line arrived, none twice: {state:?}"
    );
    agent.stop().await;
}

/// A stopped agent is not silence: the pull says which instance could not be read and why,
/// and the overview (the CLI's first screen) names it even though its last contact said ok.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_from_a_stopped_agent_is_reported_and_reaches_the_overview() {
    let lab = Lab::new();
    let (agent, code) = lab.agent("quiet").await;
    lab.add("quiet", &agent, &code).await.expect("enrolled");
    let report = lab
        .console
        .timeline
        .sync_all_reporting()
        .await
        .expect("sync");
    assert!(
        report.failed.is_empty(),
        "a running agent is pulled: {report:?}"
    );
    agent.stop().await;
    let report = lab
        .console
        .timeline
        .sync_all_reporting()
        .await
        .expect("one agent's failure does not fail the pull");
    assert_eq!(
        report
            .failed
            .iter()
            .map(|f| f.instance.as_str())
            .collect::<Vec<_>>(),
        ["quiet"],
        "the stopped agent is named: {report:?}"
    );
    assert!(
        !report.failed[0].message.is_empty(),
        "with the reason: {report:?}"
    );
    let overview = lab.console.overview().expect("overview");
    assert!(
        overview
            .attention
            .iter()
            .any(|a| a.title.contains("No new events from quiet")),
        "the overview names the agent whose events cannot be pulled: {:?}",
        overview.attention
    );
}
