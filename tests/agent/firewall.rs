//! Blocking an address for real: network namespaces made by the test (a service with nginx,
//! an attacker and a good client), nftables inside the service's namespace. Before the block
//! the attacker reaches the service; after it the attacker cannot and the good client still
//! can; unblocking and the TTL running out give the attacker its access back.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use gatehouse_agent::Agent;
use gatehouse_agent::{AgentConfig, FirewallSettings};
use gatehouse_protocol::BlockRequest;

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn sh(args: &[&str]) {
    let status = Command::new(args[0])
        .args(&args[1..])
        .status()
        .expect("runs");
    assert!(status.success(), "{} succeeds", args.join(" "));
}

/// Three namespaces: `svc` (10.77.1.1 towards the attacker, 10.77.2.1 towards the good
/// client) running nginx, `atk` (10.77.1.2) and `good` (10.77.2.2). All deleted on drop.
struct Lab {
    svc: String,
    atk: String,
    good: String,
    nginx: Option<Child>,
    _tmp: tempfile::TempDir,
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut nginx) = self.nginx.take() {
            let _ = Command::new("kill").arg(nginx.id().to_string()).status();
            let _ = nginx.wait();
        }
        for ns in [&self.svc, &self.atk, &self.good] {
            let _ = Command::new("ip").args(["netns", "delete", ns]).status();
        }
    }
}

impl Lab {
    fn new() -> Lab {
        let id = std::process::id() % 100_000;
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut lab = Lab {
            svc: format!("gh-svc-{id}"),
            atk: format!("gh-atk-{id}"),
            good: format!("gh-good-{id}"),
            nginx: None,
            _tmp: tmp,
        };
        for ns in [&lab.svc, &lab.atk, &lab.good] {
            sh(&["ip", "netns", "add", ns]);
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        for (peer, net, a, b) in [
            (&lab.atk, "1", "gh-a0", "gh-a1"),
            (&lab.good, "2", "gh-g0", "gh-g1"),
        ] {
            let (a, b) = (format!("{a}-{id}"), format!("{b}-{id}"));
            // Interface names are at most 15 bytes.
            let (a, b) = (
                a[..a.len().min(15)].to_owned(),
                b[..b.len().min(15)].to_owned(),
            );
            sh(&[
                "ip", "link", "add", &a, "netns", &lab.svc, "type", "veth", "peer", "name", &b,
                "netns", peer,
            ]);
            sh(&[
                "ip",
                "-n",
                &lab.svc,
                "addr",
                "add",
                &format!("10.77.{net}.1/24"),
                "dev",
                &a,
            ]);
            sh(&[
                "ip",
                "-n",
                peer,
                "addr",
                "add",
                &format!("10.77.{net}.2/24"),
                "dev",
                &b,
            ]);
            sh(&["ip", "-n", &lab.svc, "link", "set", &a, "up"]);
            sh(&["ip", "-n", peer, "link", "set", &b, "up"]);
        }
        let dir = lab._tmp.path();
        std::fs::create_dir_all(dir.join("tmp")).expect("tmp");
        let d = dir.display();
        std::fs::write(
            dir.join("nginx.conf"),
            format!(
                "user root;\nworker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
                 events {{ worker_connections 64; }}\nhttp {{\n  client_body_temp_path {d}/tmp/body;\n  \
                 proxy_temp_path {d}/tmp/proxy;\n  fastcgi_temp_path {d}/tmp/fastcgi;\n  uwsgi_temp_path {d}/tmp/uwsgi;\n  \
                 scgi_temp_path {d}/tmp/scgi;\n  access_log {d}/access.log;\n  \
                 server {{ listen 8080; location / {{ return 200 \"sekha\\n\"; }} location /login {{ return 401; }} }}\n}}\n"
            ),
        )
        .expect("nginx.conf");
        lab.nginx = Some(
            Command::new("ip")
                .args(["netns", "exec", &lab.svc, "nginx", "-p"])
                .arg(dir)
                .arg("-c")
                .arg(dir.join("nginx.conf"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("nginx"),
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !lab.reaches(&lab.good.clone(), "10.77.2.1") {
            assert!(
                std::time::Instant::now() < deadline,
                "nginx answers in its namespace within 10 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        lab
    }

    /// Whether `from` gets nginx's answer within 2 s.
    fn reaches(&self, from: &str, to: &str) -> bool {
        Command::new("ip")
            .args(["netns", "exec", from, "timeout", "2", "python3", "-c"])
            .arg(format!(
                "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://{to}:8080/', timeout=1.5).read() == b'sekha\\n' else 1)"
            ))
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn agent(&self) -> Agent {
        Agent::load(self.agent_config()).expect("agent")
    }

    /// Requests to `/login` from `from`: nginx answers each with 401, a failed sign-in in its
    /// access log. Whether the last one got an answer at all.
    fn fail_sign_ins(&self, from: &str, to: &str, n: u32) -> bool {
        Command::new("ip")
            .args(["netns", "exec", from, "timeout", "10", "python3", "-c"])
            .arg(format!(
                "import urllib.request,urllib.error,sys\nok=False\nfor _ in range({n}):\n  try:\n    urllib.request.urlopen('http://{to}:8080/login', timeout=1.5)\n  except urllib.error.HTTPError as e:\n    ok = e.code == 401\n  except Exception:\n    ok = False\nsys.exit(0 if ok else 1)"
            ))
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn access_log(&self) -> std::path::PathBuf {
        self._tmp.path().join("access.log")
    }

    fn agent_config(&self) -> AgentConfig {
        let tmp = self._tmp.path().join("agent");
        if tmp.join("enrollment.json").exists() {
            return self.config_in(tmp);
        }
        gatehouse_pki::install_provider();
        gatehouse_agent::initialise(
            &gatehouse_agent::state::StateDir::new(&tmp),
            time::OffsetDateTime::now_utc(),
            Duration::from_secs(900),
            [9; 20],
        )
        .expect("agent init");
        self.config_in(tmp)
    }

    fn config_in(&self, tmp: std::path::PathBuf) -> AgentConfig {
        AgentConfig::for_test(tmp).with_firewall(FirewallSettings {
            nft_command: Some(
                ["ip", "netns", "exec", &self.svc, "nft"]
                    .map(str::to_owned)
                    .to_vec(),
            ),
            never_block: vec!["10.77.9.0/24".into()],
        })
    }
}

fn request(ip: &str, ttl_secs: u64) -> BlockRequest {
    BlockRequest {
        ip: ip.into(),
        ttl_secs,
        never: vec!["198.51.100.0/24".into()],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_stops_the_attacker_and_spares_the_good_client_until_lifted() {
    if !is_root() {
        eprintln!("the firewall test needs root to make network namespaces; not run");
        return;
    }
    let lab = Lab::new();
    let agent = lab.agent();
    assert!(
        lab.reaches(&lab.atk, "10.77.1.1"),
        "before the block the attacker reaches the service"
    );

    let result = agent
        .block(
            request("10.77.1.2", 600),
            Some("10.77.2.2".parse().expect("ip")),
        )
        .await
        .expect("block");
    assert!(
        result.blocked,
        "the agent reports the block: {:?}",
        result.steps
    );
    assert!(
        result.steps.iter().any(|s| s.starts_with("verified")),
        "and says what it checked: {:?}",
        result.steps
    );
    assert!(
        result.expires_in_secs.is_some_and(|s| s > 500 && s <= 600),
        "with the time left"
    );
    assert!(
        !lab.reaches(&lab.atk, "10.77.1.1"),
        "after the block the attacker cannot reach the service"
    );
    assert!(
        lab.reaches(&lab.good, "10.77.2.1"),
        "and the good client still can"
    );
    let listed = agent.blocked().await.expect("list");
    assert_eq!(
        listed.blocked.len(),
        1,
        "one address is blocked: {listed:?}"
    );

    let lifted = agent.unblock("10.77.1.2").await.expect("unblock");
    assert!(!lifted.blocked, "unblocked: {:?}", lifted.steps);
    assert!(
        lab.reaches(&lab.atk, "10.77.1.1"),
        "after unblocking the attacker reaches the service again"
    );

    // Five seconds: long enough that a slow start of the probe still finds it in place.
    let placed = std::time::Instant::now();
    agent
        .block(request("10.77.1.2", 5), None)
        .await
        .expect("short block");
    assert!(
        !lab.reaches(&lab.atk, "10.77.1.1"),
        "a short block holds while it lasts"
    );
    tokio::time::sleep(Duration::from_millis(5500).saturating_sub(placed.elapsed())).await;
    assert!(
        lab.reaches(&lab.atk, "10.77.1.1"),
        "and lapses by itself when its TTL is up"
    );
    assert!(
        agent.blocked().await.expect("list").blocked.is_empty(),
        "leaving nothing behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_s_own_address_the_allowlist_and_nonsense_are_refused() {
    if !is_root() {
        eprintln!("the firewall test needs root to make network namespaces; not run");
        return;
    }
    let lab = Lab::new();
    let agent = lab.agent();
    let console = Some("10.77.2.2".parse().expect("ip"));
    for (ip, ttl, why) in [
        ("10.77.2.2", 600, "the console connects from"),
        ("198.51.100.9", 600, "allowlist"),
        ("10.77.9.4", 600, "allowlist"),
        ("127.0.0.1", 600, "loopback"),
        ("not-an-ip", 600, "not an IP address"),
        ("10.77.1.2", 0, "1 s to 30 days"),
    ] {
        let refused = agent.block(request(ip, ttl), console).await.expect_err(why);
        let text = refused.message;
        assert!(
            text.contains(why),
            "{ip}: refused and says why ({why}): {text}"
        );
    }
    assert!(
        agent.blocked().await.expect("list").blocked.is_empty(),
        "nothing was blocked"
    );
    let mapped = agent
        .block(
            request("10.77.2.2", 60),
            Some("::ffff:10.77.2.2".parse().expect("ip")),
        )
        .await;
    assert!(
        mapped.is_err(),
        "the console's address is refused however the socket spells it"
    );
    let blocked = agent
        .block(request("::ffff:10.77.1.2", 60), console)
        .await
        .expect("a mapped address");
    assert_eq!(
        blocked.ip, "10.77.1.2",
        "an IPv4-mapped address is blocked as the IPv4 address it is"
    );
    assert!(
        !lab.reaches(&lab.atk, "10.77.1.1"),
        "and the IPv4 client is really cut off"
    );
    agent.unblock("::ffff:10.77.1.2").await.expect("unblock");
    assert!(
        lab.reaches(&lab.atk, "10.77.1.1"),
        "unblocking the same spelling lifts it"
    );
    assert!(
        lab.reaches(&lab.good, "10.77.2.1"),
        "the good client is untouched"
    );
}

/// Runs `nft` in the service's namespace, as another tool on the host would.
fn nft(lab: &Lab, script: &str) {
    let status = Command::new("ip")
        .args(["netns", "exec", &lab.svc, "nft", script])
        .status()
        .expect("nft");
    assert!(status.success(), "nft {script}");
}

/// Blocks are re-proven: one removed from the firewall behind the agent's back (another
/// tool, a flushed ruleset) is put back for the time it has left, and the agent says so on
/// the timeline; a flushed ruleset gets its chain back too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_removed_behind_the_agent_s_back_is_put_back_and_said() {
    if !is_root() {
        eprintln!("the firewall test needs root to make network namespaces; not run");
        return;
    }
    let lab = Lab::new();
    let agent = lab.agent();
    agent
        .block(
            request("10.77.1.2", 600),
            Some("10.77.2.2".parse().expect("ip")),
        )
        .await
        .expect("block");
    assert!(
        agent.reprove_blocks().await.is_empty(),
        "nothing to put back while the block is in place"
    );
    nft(&lab, "delete element inet gatehouse blocked4 { 10.77.1.2 }");
    assert!(
        lab.reaches(&lab.atk, "10.77.1.1"),
        "the block was really removed behind the agent's back"
    );
    let said = agent.reprove_blocks().await;
    assert!(
        said.iter()
            .any(|s| s.contains("10.77.1.2") && s.contains("put back")),
        "the agent says what it put back: {said:?}"
    );
    assert!(
        !lab.reaches(&lab.atk, "10.77.1.1"),
        "and the attacker is cut off again"
    );
    let page = agent.events(0, 100).expect("events");
    assert!(
        page.events
            .iter()
            .any(|e| e.source == gatehouse_events::Source::Agent
                && e.message
                    .as_deref()
                    .is_some_and(|m| m.contains("10.77.1.2") && m.contains("put back"))),
        "the timeline learns it: {:?}",
        page.events
    );

    // The whole ruleset flushed (as a firewall reload does): chain and block come back.
    nft(&lab, "flush ruleset");
    assert!(
        lab.reaches(&lab.atk, "10.77.1.1"),
        "the flush lifted the block"
    );
    let said = agent.reprove_blocks().await;
    assert!(
        said.iter().any(|s| s.contains("chain")),
        "the missing chain is said: {said:?}"
    );
    assert!(
        !lab.reaches(&lab.atk, "10.77.1.1"),
        "and the block holds again after a flushed ruleset"
    );
    agent.unblock("10.77.1.2").await.expect("unblock");
    assert!(
        agent.reprove_blocks().await.is_empty(),
        "a lifted block is not put back"
    );
    assert!(lab.reaches(&lab.atk, "10.77.1.1"), "and stays lifted");
}

/// The allowlist wins in the ruleset itself, not only in the agent's decision: an allowlisted
/// address that lands in a block set anyway (another tool, a stale entry) still gets through,
/// because the chain accepts the allowlist before it drops anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_allowlist_wins_in_the_firewall_itself() {
    if !is_root() {
        eprintln!("the firewall test needs root to make network namespaces; not run");
        return;
    }
    let lab = Lab::new();
    let agent = lab.agent();
    let mut req = request("10.77.1.2", 600);
    req.never.push("10.77.2.0/24".into());
    agent.block(req, None).await.expect("block");
    nft(
        &lab,
        "add element inet gatehouse blocked4 { 10.77.2.2 timeout 600s }",
    );
    assert!(
        lab.reaches(&lab.good, "10.77.2.1"),
        "the allowlisted client gets through although its address is in the block set"
    );
    assert!(
        !lab.reaches(&lab.atk, "10.77.1.1"),
        "while the blocked one does not"
    );
}

/// A policy as a console signs it: brute force (5 failures in 10 min) blocks for 10 min, the
/// good client's network is allowlisted.
fn signed_policy(key: &gatehouse_pki::PolicyKey, version: u64) -> gatehouse_protocol::SignedPolicy {
    let mut rules = gatehouse_detect::default_rules();
    for rule in &mut rules {
        if rule.id == "brute-force" {
            rule.response = gatehouse_detect::Response::Block { ttl_secs: 600 };
        }
    }
    let policy = gatehouse_detect::Policy {
        version,
        issued_at: 0,
        rules,
        allowlist: vec!["10.77.2.0/24".into()],
        recidive: gatehouse_detect::Recidive::default(),
        blocks: vec![],
    };
    let text = serde_json::to_string(&policy).expect("json");
    gatehouse_protocol::SignedPolicy {
        signature: key.sign(text.as_bytes()),
        policy: text,
        key: key.public_hex(),
    }
}

/// Waits (at most 15 s) until the agent has kept a decision matching `want`.
async fn decision(
    agent: &Agent,
    after: u64,
    want: impl Fn(&gatehouse_protocol::Decision) -> bool,
) -> Option<gatehouse_protocol::Decision> {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::time::Instant::now() < deadline {
        let page = agent.decisions(after, 100).expect("decisions");
        if let Some(d) = page.decisions.into_iter().find(|d| want(d)) {
            return Some(d);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// The agent protects its host with no console running: an attacker's failed sign-ins in
/// nginx's log cross the policy's threshold, the agent blocks it in the firewall and proves
/// the block, and the allowlisted good client, failing as often, is never blocked. A second
/// attack after the block is lifted is blocked twice as long.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_console_the_agent_blocks_an_attack_and_spares_the_allowlist() {
    if !is_root() {
        eprintln!("the firewall test needs root to make network namespaces; not run");
        return;
    }
    let lab = Lab::new();
    let config = lab
        .agent_config()
        .with_logs(vec![gatehouse_agent::LogConfig::file(
            lab.access_log(),
            gatehouse_events::Format::NginxCombined,
            gatehouse_events::Source::Access,
        )]);
    let agent = std::sync::Arc::new(Agent::load(config).expect("agent"));
    let console =
        gatehouse_pki::PolicyKey::from_pkcs8(&gatehouse_pki::PolicyKey::generate().expect("key"))
            .expect("key");
    // The console sent its policy earlier; it is closed now. Nothing but the agent runs.
    let status = agent
        .take_policy(&signed_policy(&console, 1))
        .expect("the signed policy is taken");
    assert_eq!(status.blocking_rules, 1, "one rule blocks here: {status:?}");
    assert_eq!(status.cannot_block, None, "and it can: {status:?}");
    let listener = gatehouse_agent::server::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(gatehouse_agent::server::serve(
        agent.clone(),
        listener,
        async move {
            let _ = stopped.await;
        },
    ));
    // Let the tailer open the log before the attack starts.
    tokio::time::sleep(Duration::from_millis(500)).await;

    assert!(
        lab.fail_sign_ins(&lab.good, "10.77.2.1", 8),
        "the good client fails to sign in 8 times (a stale password)"
    );
    assert!(
        lab.fail_sign_ins(&lab.atk, "10.77.1.1", 6),
        "the attacker's first tries get nginx's 401"
    );
    let block = decision(&agent, 0, |d| {
        d.kind == gatehouse_protocol::DecisionKind::Block && d.ip == "10.77.1.2"
    })
    .await
    .expect("the agent blocks the attacker on its own within 15 s");
    assert!(
        block.verified && block.enforced == gatehouse_protocol::Enforced::Firewall,
        "the block is in the host firewall and read back: {block:?}"
    );
    assert_eq!(
        block.ttl_secs,
        Some(600),
        "for the rule's 10 minutes: {block:?}"
    );
    assert!(
        block
            .lines
            .iter()
            .all(|l| l.contains("10.77.1.2") && l.contains("/login"))
            && block.lines.len() >= 5,
        "the decision keeps the lines that caused it: {:?}",
        block.lines
    );
    assert!(
        !lab.reaches(&lab.atk, "10.77.1.1"),
        "the attacker is cut off"
    );
    assert!(
        lab.reaches(&lab.good, "10.77.2.1"),
        "the good client still reaches the service"
    );
    let spared = decision(&agent, 0, |d| d.ip == "10.77.2.2")
        .await
        .expect("the good client's failures crossed the threshold too");
    assert_eq!(
        spared.kind,
        gatehouse_protocol::DecisionKind::Allowlisted,
        "and the allowlist won: {spared:?}"
    );

    // Lifted early, and the attacker comes back: a repeat offender's block is longer.
    agent.unblock("10.77.1.2").await.expect("unblock");
    assert!(lab.reaches(&lab.atk, "10.77.1.1"), "lifted");
    lab.fail_sign_ins(&lab.atk, "10.77.1.1", 6);
    let again = decision(&agent, block.id, |d| {
        d.kind == gatehouse_protocol::DecisionKind::Block && d.ip == "10.77.1.2"
    })
    .await
    .expect("blocked again");
    assert_eq!(
        (again.ttl_secs, again.previous_blocks),
        (Some(1200), 1),
        "twice as long for the second offence: {again:?}"
    );
    assert!(!lab.reaches(&lab.atk, "10.77.1.1"), "cut off again");

    // Someone flushes the ruleset: the agent notices, puts the block back and says so.
    nft(&lab, "flush ruleset");
    assert!(
        lab.reaches(&lab.atk, "10.77.1.1"),
        "the flush lifted the block"
    );
    agent.reprove_blocks().await;
    assert!(
        !lab.reaches(&lab.atk, "10.77.1.1"),
        "the block is back after the flush"
    );
    let drift = decision(&agent, again.id, |d| {
        d.kind == gatehouse_protocol::DecisionKind::Drift
    })
    .await
    .expect("a drift decision");
    assert!(
        drift.note.contains("put back"),
        "the drift says what was put back: {drift:?}"
    );

    let _ = stop.send(());
    serving.await.expect("join").expect("served");
}
