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
                 server {{ listen 8080; location / {{ return 200 \"sekha\\n\"; }} }}\n}}\n"
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
        let tmp = self._tmp.path().join("agent");
        gatehouse_pki::install_provider();
        gatehouse_agent::initialise(
            &gatehouse_agent::state::StateDir::new(&tmp),
            time::OffsetDateTime::now_utc(),
            Duration::from_secs(900),
            [9; 20],
        )
        .expect("agent init");
        Agent::load(
            AgentConfig::for_test(tmp).with_firewall(FirewallSettings {
                nft_command: Some(
                    ["ip", "netns", "exec", &self.svc, "nft"]
                        .map(str::to_owned)
                        .to_vec(),
                ),
                never_block: vec!["10.77.9.0/24".into()],
            }),
        )
        .expect("agent")
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
