//! The console's schedule: one task per job, so a slow compliance run never holds up the
//! pull of new events.

use std::time::Duration;

use gatehouse_core::schedule::{run, Intervals};
use gatehouse_core::{ComplianceQuery, EventFilter};

use crate::lab::{start_agent_config, Lab};
use crate::support::append;

fn failed_line(ip: &str, at: time::OffsetDateTime) -> String {
    let f = time::macros::format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
    );
    let at = at.format(&f).expect("time");
    format!("{ip} - - [{at}] \"POST /mcp/tools/memory_stats HTTP/1.1\" 401 40 \"-\" \"curl/8\"\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_keep_arriving_while_a_slow_compliance_run_goes_on() {
    let lab = Lab::new();
    // A "service" that accepts connections and never answers: every probe of the checks run
    // waits for its timeout, so the run takes many seconds.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let service = format!("http://{}/health", silent.local_addr().expect("addr"));
    std::fs::create_dir_all(&lab.agents).expect("agents dir");
    let log = lab.agents.join("proxy.log");
    append(&log, "");
    let (dir, code) = lab.init_agent("slow-1", lab.now());
    let agent = start_agent_config(
        gatehouse_agent::AgentConfig::for_test(dir)
            .with_service_url(service)
            .with_logs(vec![gatehouse_agent::tail::LogConfig::file(
                log.clone(),
                gatehouse_events::Format::NginxCombined,
                gatehouse_events::Source::Proxy,
            )]),
    )
    .await;
    lab.add("slow-1", &agent, &code).await.expect("enrolled");

    let intervals = Intervals {
        sync: Duration::from_millis(200),
        // The checks start at once and then take their time.
        checks_after: Duration::ZERO,
        ..Intervals::default()
    };
    let schedule = tokio::spawn(run(lab.console.clone(), intervals, |_| {}));
    // Let the checks run start before the lines are written.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for n in 1..=3 {
        append(
            &log,
            &failed_line(&format!("203.0.113.{n}"), time::OffsetDateTime::now_utc()),
        );
    }

    let checks_done = || {
        lab.console
            .compliance
            .compliance(&ComplianceQuery::default())
            .expect("compliance")
            .instances
            .first()
            .and_then(|i| i.last_run)
            .is_some()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let arrived = loop {
        let events = lab
            .console
            .timeline
            .events(&EventFilter::default(), None, 100)
            .expect("events");
        let failed = events
            .events
            .iter()
            .filter(|e| e.status == Some(401))
            .count();
        if failed == 3 {
            break true;
        }
        if checks_done() || std::time::Instant::now() > deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        arrived,
        "the three failed sign-ins were pulled by the schedule before its slow checks run \
         ended: sync is a job of its own"
    );
    assert!(
        !checks_done(),
        "and the checks run was indeed still going on when they arrived"
    );
    schedule.abort();
    agent.stop().await;
}
