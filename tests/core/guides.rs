//! Any self-hosted service, by writing files: an agent whose profile the console does not
//! know gets the generic checklist and playbook, with a notice; a checklist file in the
//! console's data directory is used for its service, and a mistake in it is named.

use std::path::Path;

use gatehouse_core::guides::{GENERIC_CHECKLIST_NOTICE, GENERIC_PLAYBOOK_NOTICE};
use gatehouse_core::{
    Burst, ComplianceQuery, EventFilter, InstanceCompliance, OpenIncident, Severity,
};
use time::OffsetDateTime;

use crate::lab::{start_agent_config, Lab, Running};
use crate::support::{contains, files_below};

/// An agent for the operator-written profile "memo" (in its own `profiles_dir`), enrolled
/// as `name`.
async fn memo(lab: &Lab, name: &str) -> Running {
    let profiles = lab.agents.join("profiles");
    std::fs::create_dir_all(&profiles).expect("profiles dir");
    let log = lab.agents.join("memo.log");
    std::fs::write(&log, "").expect("log");
    let profile = include_str!("../../profiles/sekha.toml")
        .replace("name = \"sekha\"", "name = \"memo\"")
        .replace("/var/log/sekha/sekha.log", &log.display().to_string())
        .replace("journal_unit = \"sekha.service\"\n", "")
        // Memo's profile names no guides: the console looks for them by its name.
        .replace(
            "[guides]\nchecklist = \"sekha\"\nplaybook = \"sekha\"\n",
            "",
        );
    assert!(
        !profile.contains("[guides]"),
        "the memo profile names no guides"
    );
    std::fs::write(profiles.join("memo.toml"), profile).expect("profile");
    let (dir, code) = lab.init_agent(name, OffsetDateTime::now_utc());
    let mut config = gatehouse_agent::AgentConfig::for_test(dir).with_profile("memo");
    config.profiles_dir = Some(profiles);
    let agent = start_agent_config(config).await;
    let view = lab.add(name, &agent, &code).await.expect("enrolled");
    assert_eq!(
        view.profile, "memo",
        "the console knows the instance by the agent's profile name"
    );
    agent
}

/// Every offender on `instance` today, after one more sync of its agent's events.
async fn offenders_now(lab: &Lab, instance: &str) -> Vec<gatehouse_core::Offender> {
    lab.console
        .timeline
        .sync_instance(instance)
        .await
        .expect("sync");
    lab.console
        .analytics
        .offenders(&gatehouse_core::OffenderQuery {
            window: gatehouse_core::Window::Day,
            instance: Some(instance.into()),
            ..Default::default()
        })
        .expect("offenders")
}

/// The failed sign-ins counted from `ip` on `instance` today, after one more sync.
async fn failures_from(lab: &Lab, instance: &str, ip: &str) -> u64 {
    offenders_now(lab, instance)
        .await
        .into_iter()
        .find(|o| o.ip == ip)
        .map_or(0, |o| o.failures)
}

/// An incident opened by hand on `instance` over the last hour.
fn incident_by_hand(
    lab: &Lab,
    instance: &str,
    title: &str,
    severity: Severity,
    ip: Option<&str>,
) -> gatehouse_core::Incident {
    let now_us = (lab.now().unix_timestamp_nanos() / 1000) as i64;
    lab.console
        .incidents
        .open_incident(&OpenIncident {
            origin: gatehouse_core::IncidentOrigin::Hand,
            title: title.into(),
            severity,
            instances: vec![instance.into()],
            ips: ip.into_iter().map(Into::into).collect(),
            from_us: now_us - 3_600_000_000,
            to_us: now_us,
        })
        .expect("incident")
}

fn compliance_of(lab: &Lab, name: &str) -> InstanceCompliance {
    lab.console
        .compliance
        .compliance(&ComplianceQuery {
            instance: Some(name.into()),
            filter: None,
        })
        .expect("view")
        .instances
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("{name} is in the compliance view"))
}

fn write_file(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).expect("dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_service_gets_the_generic_checklist_and_playbook_with_a_notice() {
    let lab = Lab::new();
    let _agent = memo(&lab, "memo-1").await;

    let run = lab
        .console
        .compliance
        .run_checks(None, Burst::Always)
        .await
        .expect("checks run");
    assert!(run.errors.is_empty(), "the agent answers: {:?}", run.errors);
    assert_eq!(
        run.instances, 1,
        "an instance of a service the console has no checklist for is still checked"
    );
    // The generic checklist asks for every check the agent has, and the key's age.
    assert_eq!(
        run.checks,
        gatehouse_protocol::CheckId::ALL.len() as u32 + 1,
        "every agent check and key_age are answered"
    );
    assert_eq!(
        run.notices,
        [format!("memo-1: {GENERIC_CHECKLIST_NOTICE}")],
        "the run says the checklist is the generic one"
    );

    let view = compliance_of(&lab, "memo-1");
    assert_eq!(view.problem, None, "nothing is wrong with the checklist");
    assert_eq!(
        view.notice.as_deref(),
        Some(GENERIC_CHECKLIST_NOTICE),
        "the instance's checklist says it is the generic one"
    );
    assert_eq!(view.template, "Generic service checklist", "by its title");
    for id in [
        "keys.file-modes",
        "keys.strong",
        "transport.tls",
        "access.auth-refuses",
        "ops.backups",
        "ops.firewall",
    ] {
        let item = view
            .items
            .iter()
            .find(|i| i.id == id)
            .unwrap_or_else(|| panic!("{id} is on the generic checklist"));
        assert!(
            item.automated && !item.checks.is_empty(),
            "{id} is decided by the checks that ran: {} {:?}",
            item.state_text,
            item.checks
        );
    }
    assert!(
        view.items.iter().any(|i| !i.automated),
        "and has manual items too"
    );

    let incident = incident_by_hand(
        &lab,
        "memo-1",
        "Keys tried against memo",
        Severity::High,
        Some("203.0.113.9"),
    );
    assert_eq!(
        incident.step.as_deref(),
        Some("detection"),
        "on the generic playbook's first step"
    );
    let view = lab.console.incidents.incident(incident.id).expect("view");
    let playbook = view.playbook.expect("an incident on memo has a playbook");
    assert_eq!(playbook.name, "generic", "the generic playbook");
    let steps: Vec<&str> = playbook.steps.iter().map(|s| s.id.as_str()).collect();
    for step in ["containment", "eradication", "recovery", "post_incident"] {
        assert!(
            steps.contains(&step),
            "the generic playbook has {step}: {steps:?}"
        );
    }
    assert_eq!(
        view.playbook_notice.as_deref(),
        Some(GENERIC_PLAYBOOK_NOTICE),
        "the incident says the playbook is the generic one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checklist_file_in_the_data_dir_is_used_and_a_misspelt_check_is_named() {
    let lab = Lab::new();
    let _agent = memo(&lab, "memo-2").await;
    let checklists = lab.data.join("checklists");
    let file = write_file(
        &checklists,
        "memo.toml",
        r#"name = "memo"
title = "Memo checklist"
guide = "Memo's operations notes"

[[items]]
id = "keys.default"
section = "Keys"
text = "No published key is in use"
source = "Memo notes › Keys"
cadence = "once"
checks = ["default_key"]

[[items]]
id = "ops.review"
section = "Operations"
text = "Access is reviewed"
source = "Memo notes › Operations"
cadence = "monthly"
"#,
    );

    let run = lab
        .console
        .compliance
        .run_checks(Some("memo-2"), Burst::Always)
        .await
        .expect("checks run");
    assert!(run.errors.is_empty(), "the agent answers: {:?}", run.errors);
    assert_eq!(
        (run.instances, run.checks),
        (1, 1),
        "only the one check the file asks for is run"
    );
    assert!(
        run.notices.is_empty(),
        "memo has a checklist of its own: {:?}",
        run.notices
    );
    let view = compliance_of(&lab, "memo-2");
    assert_eq!(view.template, "Memo checklist", "the file's checklist");
    assert_eq!(view.notice, None, "no notice: it is the service's own");
    let ids: Vec<&str> = view.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["keys.default", "ops.review"], "the file's items");
    assert_eq!(
        view.items[0].checks.len(),
        1,
        "the automated item has its check's answer: {:?}",
        view.items[0]
    );

    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(&file, text.replace("default_key", "defualt_key")).expect("break it");
    let view = compliance_of(&lab, "memo-2");
    let problem = view.problem.expect("a broken file is a problem");
    assert!(
        problem.contains(&file.display().to_string()) && problem.contains("defualt_key"),
        "the problem names the file and the misspelt check: {problem}"
    );
    assert!(
        view.items.is_empty(),
        "no items from a file that is refused"
    );
    let run = lab
        .console
        .compliance
        .run_checks(Some("memo-2"), Burst::Always)
        .await
        .expect("the run itself completes");
    assert!(
        run.errors.len() == 1 && run.errors[0].contains("defualt_key"),
        "the run fails for the instance, naming the check: {:?}",
        run.errors
    );
}

/// A service added by a profile file on its host alone (`demo/profiles/notes.toml`: a list
/// of tokens in a JSON config): the console knows it by the agent's profile even when told
/// another at enrollment (and says so), and its facts come from the agent, not from a
/// built-in profile the console does not have: a token of the list is one of several keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_added_by_files_is_known_by_the_agent_s_profile_and_facts() {
    let lab = Lab::new();
    let service = lab.agents.join("notes-service");
    write_file(
        &service,
        "config.json",
        "{\"auth\": {\"tokens\": [{\"token\": \"first-token-0123456789-abcdefghijklmn\"}, \
         {\"token\": \"second-token-0123456789-abcdefghijklm\"}]}, \
         \"signing_secret\": \"signing-secret-0123456789-abcdefghij\"}\n",
    );
    let (dir, code) = lab.init_agent("notes-1", OffsetDateTime::now_utc());
    let mut config = gatehouse_agent::AgentConfig::for_test(dir)
        .with_profile("notes")
        .with_service_dir(&service);
    config.profiles_dir = Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../demo/profiles"));
    let agent = start_agent_config(config).await;
    let view = lab
        .console
        .fleet
        .add_instance(gatehouse_core::AddInstance {
            name: "notes-1".into(),
            address: agent.addr.to_string(),
            code: code.clone(),
            profile: "sekha".into(),
        })
        .await
        .expect("enrolled");
    assert_eq!(
        view.profile, "notes",
        "the agent's profile is the truth, not the one chosen at enrollment"
    );
    let said = lab
        .console
        .timeline
        .events(
            &EventFilter {
                instance: Some("notes-1".into()),
                text: Some("Enrolled".into()),
                ..Default::default()
            },
            None,
            10,
        )
        .expect("timeline");
    assert!(
        said.events
            .iter()
            .any(|e| e.message.as_deref().is_some_and(|m| {
                m.contains("You chose profile sekha, but the agent runs notes")
            })),
        "the different choice is said where the enrollment is recorded: {:?}",
        said.events
    );
    let preview = lab
        .console
        .rotation
        .rotation_preview("notes-1", "auth.tokens[1].token")
        .await
        .expect("a token found by its key path is previewed");
    assert!(
        preview.impact.contains("its other keys keep working")
            && !preview.impact.contains("the service's one key"),
        "the agent's profile says the service takes several keys: {}",
        preview.impact
    );
    assert!(
        preview.file.ends_with("config.json"),
        "the token is in the JSON config: {}",
        preview.file
    );
}

/// The acceptance of a service added with files only: the notes fixture (tokens in a JSON
/// config, its own log format declared as a pattern in `demo/profiles/notes.toml`) gets events
/// from its own log, failed sign-ins counted per address and key prefix, one brute-force alert,
/// a rotation of one token of the list from the console (kept in the keychain, accepted by the
/// service, the other token still working), checks with a checklist, and an incident with
/// steps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_added_by_files_alone_is_watched_rotated_checked_and_handled() {
    let lab = Lab::new();
    let service = lab.agents.join("notes-svc");
    let (first, second) = (
        "first-token-that-stays-0123456789-abcd",
        "second-token-to-rotate-0123456789-abcd",
    );
    write_file(
        &service,
        "config.json",
        &format!(
            "{{\n  \"auth\": {{\"tokens\": [{{\"token\": \"{first}\"}}, {{\"token\": \"{second}\"}}]}},\n  \"signing_secret\": \"signing-secret-0123456789-abcdefghij\"\n}}\n"
        ),
    );
    let (agent, pid, port) = fixture_instance(&lab, "notes-1", "notes", &service, "/health").await;

    // Six wrong tokens from one address, as its own log records them.
    let client = reqwest::Client::new();
    for i in 0..6 {
        let status = client
            .get(format!("http://127.0.0.1:{port}/api/notes"))
            .header("X-Forwarded-For", "203.0.113.77")
            .bearer_auth(format!("guess{i}-0123456789"))
            .send()
            .await
            .expect("the fixture answers")
            .status();
        assert_eq!(status.as_u16(), 401, "a wrong token is refused");
    }
    lab.set_clock(OffsetDateTime::now_utc() + time::Duration::seconds(5));
    lab.sync_until("notes-1", 6).await;
    let offenders = lab
        .console
        .analytics
        .offenders(&gatehouse_core::OffenderQuery {
            window: gatehouse_core::Window::Day,
            instance: Some("notes-1".into()),
            ..Default::default()
        })
        .expect("offenders");
    let offender = offenders
        .iter()
        .find(|o| o.ip == "203.0.113.77")
        .unwrap_or_else(|| panic!("the address is an offender: {offenders:?}"));
    assert_eq!(
        (offender.failures, offender.distinct_keys),
        (6, 6),
        "each line of its own format is a failed sign-in with the token's first characters"
    );
    let alerts = lab
        .console
        .analytics
        .alerts(&gatehouse_core::AlertFilter::default())
        .expect("alerts");
    assert!(
        alerts.len() == 1
            && alerts[0].subject.as_deref() == Some("203.0.113.77")
            && alerts[0].instance == "notes-1",
        "one alert about the address: {alerts:#?}"
    );

    let (result, new_key) = lab
        .console
        .rotation
        .rotate_key("notes-1", "auth.tokens[1].token")
        .await
        .expect("the rotation runs");
    assert!(
        result.committed && result.error.is_none(),
        "the token found by its key path is rotated: {result:?}"
    );
    let new_key = new_key.expect("the new token is handed over once");
    let accepts = |token: String| {
        let client = client.clone();
        async move {
            client
                .get(format!("http://127.0.0.1:{port}/api/notes"))
                .bearer_auth(token)
                .send()
                .await
                .expect("the fixture answers")
                .status()
                .is_success()
        }
    };
    assert!(
        accepts(new_key.expose().clone()).await,
        "the service takes the new token"
    );
    assert!(!accepts(second.into()).await, "and refuses the old one");
    assert!(
        accepts(first.into()).await,
        "the other token of the list still works"
    );
    let text = std::fs::read_to_string(service.join("config.json")).expect("config");
    assert!(
        text.contains(first)
            && text.contains("signing-secret-0123456789")
            && !text.contains(second),
        "only the rotated token changed in the JSON config: {text}"
    );

    let run = lab
        .console
        .compliance
        .run_checks(Some("notes-1"), Burst::Always)
        .await
        .expect("checks run");
    assert!(
        run.errors.is_empty() && run.instances == 1 && run.checks > 1,
        "the service is checked against a checklist: {run:?}"
    );
    let view = compliance_of(&lab, "notes-1");
    assert!(
        view.items
            .iter()
            .any(|i| i.automated && !i.checks.is_empty()),
        "the checklist's items are decided by the checks: {view:?}"
    );

    let incident = incident_by_hand(
        &lab,
        "notes-1",
        "Tokens tried against notes",
        Severity::High,
        Some("203.0.113.77"),
    );
    let view = lab.console.incidents.incident(incident.id).expect("view");
    let playbook = view.playbook.expect("an incident on notes has a playbook");
    assert!(
        playbook.steps.len() >= 4,
        "with steps to follow: {:?}",
        playbook.steps
    );
    drop(agent);
    drop(pid);
}

/// The checklist and playbook an operator's profile names in `[guides]` are the ones its
/// instances get, whatever the profile is called: the agent says which, and the console
/// follows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checklist_and_playbook_the_agent_s_profile_names_are_used() {
    let lab = Lab::new();
    let profiles = lab.agents.join("profiles");
    std::fs::create_dir_all(&profiles).expect("profiles dir");
    let log = lab.agents.join("memo.log");
    std::fs::write(&log, "").expect("log");
    let profile = include_str!("../../profiles/sekha.toml")
        .replace("name = \"sekha\"", "name = \"memo\"")
        .replace("/var/log/sekha/sekha.log", &log.display().to_string())
        .replace("journal_unit = \"sekha.service\"\n", "")
        .replace(
            "[guides]\nchecklist = \"sekha\"\nplaybook = \"sekha\"\n",
            "[guides]\nchecklist = \"jelmore\"\nplaybook = \"jelmore\"\n",
        );
    assert!(
        profile.contains("checklist = \"jelmore\""),
        "the profile names Jelmore's guides"
    );
    std::fs::write(profiles.join("memo.toml"), profile).expect("profile");
    let (dir, code) = lab.init_agent("memo-g", OffsetDateTime::now_utc());
    let mut config = gatehouse_agent::AgentConfig::for_test(dir).with_profile("memo");
    config.profiles_dir = Some(profiles);
    let _agent = start_agent_config(config).await;
    lab.add("memo-g", &_agent, &code).await.expect("enrolled");
    let view = compliance_of(&lab, "memo-g");
    assert_eq!(
        (view.template.as_str(), view.notice.as_deref()),
        ("Jelmore security tasks", None),
        "the checklist the agent's profile names, without a notice"
    );
    let incident = incident_by_hand(&lab, "memo-g", "Memo", Severity::Low, None);
    let view = lab.console.incidents.incident(incident.id).expect("view");
    assert_eq!(
        view.playbook.map(|p| p.title),
        Some("Jelmore security incident checklist".to_owned()),
        "and the playbook it names"
    );
}

/// What a restart destroys, as an operator's profile says it (`[restart] loses_data`), reaches
/// the incident's restart step: the console has never seen the profile, so it keeps what the
/// agent said (a built-in profile's name alone would say nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_profile_s_restart_warning_reaches_the_incident() {
    let lab = Lab::new();
    let profiles = lab.agents.join("profiles");
    std::fs::create_dir_all(&profiles).expect("profiles dir");
    let log = lab.agents.join("ledger.log");
    std::fs::write(&log, "").expect("log");
    let warning = "Restart forgets the ledger's open drafts: save them first.";
    let profile = include_str!("../../profiles/sekha.toml")
        .replace("name = \"sekha\"", "name = \"ledger\"")
        .replace("/var/log/sekha/sekha.log", &log.display().to_string())
        .replace("journal_unit = \"sekha.service\"\n", "")
        .replacen(
            "[restart]\n",
            &format!("[restart]\nloses_data = {warning:?}\n"),
            1,
        );
    assert!(profile.contains(warning), "the test's profile says it");
    std::fs::write(profiles.join("ledger.toml"), profile).expect("profile");
    let (dir, code) = lab.init_agent("ledger-1", OffsetDateTime::now_utc());
    let mut config = gatehouse_agent::AgentConfig::for_test(dir).with_profile("ledger");
    config.profiles_dir = Some(profiles);
    let agent = start_agent_config(config).await;
    lab.add("ledger-1", &agent, &code).await.expect("enrolled");
    let incident = incident_by_hand(&lab, "ledger-1", "Ledger", Severity::Low, None);
    let view = lab.console.incidents.incident(incident.id).expect("view");
    assert_eq!(
        view.restart_loses_data.as_deref(),
        Some(warning),
        "the incident warns of what a restart destroys, as the agent's profile says"
    );
}

/// The fixture service for `profile` (`demo/fixture_service.py`, restarted by
/// `restart_fixture.sh`) working in `service`, and an agent beside it enrolled as `name`,
/// following the fixture's log in the profile's own format. `notes` is read from
/// `demo/profiles`, as an operator's file; the others are built in.
async fn fixture_instance(
    lab: &Lab,
    name: &str,
    profile: &str,
    service: &Path,
    health: &str,
) -> (Running, crate::support::PidFile, u16) {
    let log = lab.agents.join(format!("{name}.log"));
    let port = crate::ports::free_port();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../demo");
    let pid = crate::support::PidFile(lab.agents.join(format!("{name}.pid")));
    let command = format!(
        "sh {} {} --profile {profile} --port {port} --workdir {} --log {}",
        demo.join("restart_fixture.sh").display(),
        pid.0.display(),
        service.display(),
        log.display()
    );
    let started = std::process::Command::new("sh")
        .args(["-c", &command])
        .status()
        .expect("start");
    assert!(started.success(), "the {profile} fixture starts");
    let (dir, code) = lab.init_agent(name, OffsetDateTime::now_utc());
    let mut config = gatehouse_agent::AgentConfig::for_test(dir)
        .with_profile(profile)
        .with_service_url(format!("http://127.0.0.1:{port}{health}"))
        .with_service_dir(service)
        .with_restart(vec!["sh".into(), "-c".into(), command], 5);
    if profile == "notes" {
        config.profiles_dir = Some(demo.join("profiles"));
    }
    // The profile's own log format (a pattern), at the fixture's log path.
    let format = config.service_profile().expect("the profile").logs[0]
        .format
        .clone();
    config = config.with_logs(vec![gatehouse_agent::tail::LogConfig::file(
        &log,
        format,
        gatehouse_events::Source::Service,
    )]);
    let agent = start_agent_config(config).await;
    lab.add(name, &agent, &code).await.expect("enrolled");
    (agent, pid, port)
}

/// The acceptance of a service whose passwords are in an htpasswd file beside an INI config,
/// with its own log format: the Radicale fixture (as Radicale 3.9 behaves, with the built-in
/// `radicale` profile). Failed sign-ins are counted per address and user from its log, one
/// alert; bob's password is rotated from the console: the file holds a bcrypt hash of the new
/// one (alice's line and the comment untouched), the service takes it with HTTP Basic and
/// refuses the old, and the inventory knows bob's password by the same fingerprint as the
/// console's keychain entry (not the hash's); checks run with Radicale's checklist, and an
/// incident has its playbook.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_with_an_htpasswd_file_is_watched_rotated_checked_and_handled() {
    let lab = Lab::new();
    let service = lab.agents.join("radicale-svc");
    let hash =
        |password: &str| gatehouse_agent::service::htpasswd::hash(password).expect("a bcrypt hash");
    let (alice, bob) = (
        "alice-password-0123456789abc",
        "bob-password-0123456789abcdef",
    );
    write_file(
        &service,
        "config",
        "[server]\nhosts = 127.0.0.1:5232\n\n[auth]\ntype = htpasswd\nhtpasswd_filename = users\nhtpasswd_encryption = bcrypt\n# no sleep after a refusal, for the test's pace\ndelay = 0\n",
    );
    let (alice_line, bob_line) = (
        format!("alice:{}", hash(alice)),
        format!("bob:{}", hash(bob)),
    );
    let users = write_file(
        &service,
        "users",
        &format!("# Radicale users\n{alice_line}\n{bob_line}\n"),
    );
    let (_agent, pid, port) =
        fixture_instance(&lab, "radicale-1", "radicale", &service, "/.web/").await;

    // Five wrong passwords for alice, each with an X-Forwarded-For the client wrote itself:
    // its log names both, and only the socket peer is an address to count.
    let client = reqwest::Client::new();
    let propfind = |user: &str, password: &str, forwarded: Option<&str>| {
        let mut request = client
            .request(
                reqwest::Method::from_bytes(b"PROPFIND").expect("a method"),
                format!("http://127.0.0.1:{port}/"),
            )
            .basic_auth(user, Some(password));
        if let Some(address) = forwarded {
            request = request.header("X-Forwarded-For", address);
        }
        async move {
            request
                .send()
                .await
                .expect("the fixture answers")
                .status()
                .as_u16()
        }
    };
    for i in 0..5 {
        let status = propfind("alice", &format!("guess-{i}"), Some("203.0.113.88")).await;
        assert_eq!(status, 401, "a wrong password is refused");
    }
    lab.set_clock(OffsetDateTime::now_utc() + time::Duration::seconds(5));
    // Synced until the fifth failed login is in (the agent's own probes add lines of their
    // own, so a count of lines says nothing), for at most 10 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let offenders = offenders_now(&lab, "radicale-1").await;
        assert!(
            offenders.iter().all(|o| o.ip != "203.0.113.88"),
            "a forwarded value the client wrote is no address: {offenders:?}"
        );
        let seen = offenders.iter().find(|o| o.ip == "127.0.0.1");
        if seen.is_some_and(|o| o.failures >= 5) || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // And once more after the agent has read its file again: five, not more.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(
        failures_from(&lab, "radicale-1", "127.0.0.1").await,
        5,
        "each failed login is one failed sign-in from the socket peer (its `Login verification failed` line is not a second)"
    );
    let alerts = lab
        .console
        .analytics
        .alerts(&gatehouse_core::AlertFilter::default())
        .expect("alerts");
    assert!(
        alerts
            .iter()
            .any(|a| a.subject.as_deref() == Some("127.0.0.1") && a.instance == "radicale-1"),
        "an alert about the address: {alerts:#?}"
    );

    // Packaged, the users file is root's and Radicale reads it through its group (0640).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    }
    let fixture_pid = std::fs::read_to_string(&pid.0).expect("the fixture's pid");
    let (result, new_key) = lab
        .console
        .rotation
        .rotate_key("radicale-1", "bob")
        .await
        .expect("the rotation runs");
    assert!(
        result.committed && result.error.is_none(),
        "bob's password is rotated: {result:?}"
    );
    assert!(
        result.steps.iter().any(|s| s.starts_with("no restart"))
            && std::fs::read_to_string(&pid.0).expect("pid") == fixture_pid,
        "Radicale reads the file at each sign-in: nothing is restarted (its clients stay connected): {:?}",
        result.steps
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&users)
                .expect("users")
                .permissions()
                .mode()
                & 0o777,
            0o640,
            "the group's read grant is kept, or a packaged Radicale could no longer read its users"
        );
    }
    let new_key = new_key.expect("the new password is handed over once");
    let text = std::fs::read_to_string(&users).expect("users");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.len() == 3
            && lines[0] == "# Radicale users"
            && lines[1] == alice_line
            && lines[2].starts_with("bob:$2y$10$")
            && lines[2] != bob_line,
        "bob's line holds a bcrypt hash of the new password, the rest as it was: {text}"
    );
    let leaks: Vec<_> = files_below(&lab.agents)
        .into_iter()
        .chain(files_below(&lab.data))
        .filter(|(_, bytes)| contains(bytes, new_key.expose().as_bytes()))
        .map(|(path, _)| path)
        .collect();
    assert!(
        leaks.is_empty(),
        "no file of the service, the agent (its state: which hash stands for which fingerprint) or the console holds the new password: {leaks:?}"
    );
    assert_eq!(
        propfind("bob", new_key.expose(), None).await,
        207,
        "the service takes bob's new password"
    );
    assert_eq!(
        propfind("bob", bob, None).await,
        401,
        "and refuses the old one"
    );
    assert_eq!(
        propfind("alice", alice, None).await,
        207,
        "alice's still works"
    );
    // The old password tried just after the rotation is someone's failed sign-in, not the
    // agent's: its check of the new password was accepted, and made no failure.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(
        failures_from(&lab, "radicale-1", "127.0.0.1").await,
        6,
        "the old password right after the rotation counts as the sixth failure"
    );
    let inventory = lab
        .console
        .rotation
        .credentials()
        .await
        .expect("the inventory");
    let listed = inventory
        .credentials
        .iter()
        .find(|c| c.instance.as_deref() == Some("radicale-1") && c.name == "bob")
        .unwrap_or_else(|| panic!("bob is listed: {inventory:?}"));
    assert_eq!(
        listed.fingerprint, result.new_fingerprint,
        "bob's password is known by the fingerprint of the password the console keeps, not of its hash"
    );
    let timeline = lab
        .console
        .timeline
        .events(
            &EventFilter {
                kind: Some(gatehouse_events::Kind::Console),
                text: Some("changed on the host".into()),
                ..Default::default()
            },
            None,
            10,
        )
        .expect("timeline");
    assert!(
        timeline.events.is_empty(),
        "the console does not take its own rotation for a change made on the host: {:?}",
        timeline.events
    );

    let run = lab
        .console
        .compliance
        .run_checks(Some("radicale-1"), Burst::Always)
        .await
        .expect("checks run");
    assert!(
        run.errors.is_empty() && run.instances == 1 && run.checks > 1,
        "the service is checked: {run:?}"
    );
    let view = compliance_of(&lab, "radicale-1");
    assert_eq!(
        (view.template.as_str(), view.notice.as_deref()),
        ("Radicale security checklist", None),
        "with Radicale's own checklist"
    );
    let modes = view
        .items
        .iter()
        .find(|i| i.id == "users.file-modes")
        .expect("the users file's modes are an item");
    #[cfg(unix)]
    if std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&users).expect("users")) == 0 {
        // The file is root's (the test ran as root) and 0640: as packaged.
        assert_eq!(
            modes.state,
            gatehouse_core::ItemState::Pass,
            "a root-owned users file the service's group reads (0640) is as packaged: {modes:?}"
        );
    }
    let incident = incident_by_hand(
        &lab,
        "radicale-1",
        "Passwords tried against Radicale",
        Severity::High,
        Some("127.0.0.1"),
    );
    let view = lab.console.incidents.incident(incident.id).expect("view");
    assert_eq!(
        view.playbook.map(|p| p.title),
        Some("Radicale incident playbook".to_owned()),
        "and its playbook"
    );
}

/// Jupyter Server's token is hex, as its own generated tokens are, and its agent takes no
/// other: the console writes the new token in the encoding the agent's profile names, and the
/// service takes it (a base64url key was refused by the agent before, so no Jupyter token
/// could be rotated from the console).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jupyter_token_is_rotated_from_the_console_in_the_profile_s_encoding() {
    let lab = Lab::new();
    let service = lab.agents.join("jupyter-svc");
    let old = "a1b2c3d4".repeat(6);
    write_file(
        &service,
        "jupyter_server_config.json",
        &format!("{{\"ServerApp\": {{\"root_dir\": \"/srv\"}}, \"IdentityProvider\": {{\"token\": \"{old}\"}}}}\n"),
    );
    let (_agent, _pid, port) =
        fixture_instance(&lab, "jupyter-1", "jupyter", &service, "/api").await;
    let (result, new_key) = lab
        .console
        .rotation
        .rotate_key("jupyter-1", "IdentityProvider.token")
        .await
        .expect("the rotation runs");
    assert!(
        result.committed && result.error.is_none(),
        "the token is rotated: {result:?}"
    );
    let new_key = new_key.expect("the new token is handed over once");
    assert!(
        new_key.expose().len() >= 32 && new_key.expose().chars().all(|c| c.is_ascii_hexdigit()),
        "a hex token, as the profile says"
    );
    let status = |token: String| async move {
        reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/api/status"))
            .header("Authorization", format!("token {token}"))
            .send()
            .await
            .expect("the fixture answers")
            .status()
            .as_u16()
    };
    assert_eq!(
        status(new_key.expose().clone()).await,
        200,
        "the new token works"
    );
    assert_eq!(status(old).await, 403, "the old one is refused");
}
