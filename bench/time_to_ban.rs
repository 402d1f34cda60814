//! Time to ban, side by side with fail2ban, in one run on one log: from the write of the
//! failed sign-in that crosses the threshold (the fifth within ten minutes from one address)
//! to the address in the host firewall's drop set.
//!
//! Both run at once in the network namespace this program is started in (`bench/time_to_ban.sh`
//! makes one): `gatehouse-agent run` (release build) with a signed policy whose brute-force rule
//! blocks for 10 minutes, and Debian's `fail2ban-server` with an equivalent jail on the same
//! log (`maxretry = 5`, `findtime = 600`, `banaction = nftables-multiport`). `nft monitor`
//! reports each element added to a set as it happens; each trial's address is new. Trials are
//! randomly spaced (the same schedule for both, fixed seed), since fail2ban's latency depends
//! on the time since its previous ban. The agent's figure is the element added; its decision
//! (kept after the block is read back from the set) follows within milliseconds.
//!
//!     bench/time_to_ban.sh [--trials 30] [--backend auto|polling|pyinotify]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[path = "lcg.rs"]
mod lcg;

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

fn line(ip: &str) -> String {
    let f = time::macros::format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
    );
    let at = time::OffsetDateTime::now_utc().format(&f).expect("time");
    format!("{ip} - - [{at}] \"POST /api/v1/login HTTP/1.1\" 401 35 \"-\" \"bench/1\"\n")
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("log");
    f.write_all(text.as_bytes()).expect("write");
    f.flush().expect("flush");
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn agent(dir: &Path, log: &Path) -> Kill {
    use gatehouse_agent::state::StateDir;
    let state = dir.join("agent");
    gatehouse_pki::install_provider();
    gatehouse_agent::initialise(
        &StateDir::new(&state),
        time::OffsetDateTime::now_utc(),
        Duration::from_secs(900),
        [7; 20],
    )
    .expect("agent init");
    // The policy a console would have sent: brute force blocks for 10 minutes.
    let key =
        gatehouse_pki::PolicyKey::from_pkcs8(&gatehouse_pki::PolicyKey::generate().expect("key"))
            .expect("key");
    let mut rules = gatehouse_detect::default_rules();
    for rule in &mut rules {
        if rule.id == "brute-force" {
            rule.response = gatehouse_detect::Response::Block { ttl_secs: 600 };
        }
    }
    let policy = gatehouse_detect::Policy {
        version: 1,
        issued_at: 0,
        rules,
        allowlist: vec![],
        recidive: Default::default(),
        blocks: vec![],
    };
    let text = serde_json::to_string(&policy).expect("json");
    let dir_state = StateDir::new(&state);
    dir_state
        .write_policy(&gatehouse_protocol::SignedPolicy {
            signature: key.sign(text.as_bytes()),
            policy: text,
            key: key.public_hex(),
        })
        .expect("policy");
    dir_state.write_policy_key(&key.public_hex()).expect("key");
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:17443\"\nprofile = \"sekha\"\nstate_dir = \"{}\"\n\n[[logs]]\npath = \"{}\"\nformat = \"nginx_combined\"\nsource = \"access\"\n",
            state.display(),
            log.display()
        ),
    )
    .expect("config");
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/gatehouse-agent");
    Kill(
        Command::new(bin)
            .args(["run", "--config"])
            .arg(&config)
            .env("GATEHOUSE_AGENT_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("agent.log")).expect("log"))
            .spawn()
            .expect("gatehouse-agent (cargo build --release -p gatehouse-agent)"),
    )
}

fn fail2ban(dir: &Path, log: &Path, backend: &str) -> Kill {
    let conf = dir.join("fail2ban");
    let status = Command::new("cp")
        .args(["-r", "/etc/fail2ban"])
        .arg(&conf)
        .status()
        .expect("cp");
    assert!(status.success(), "Debian's fail2ban config is copied");
    // Only the benchmark's jail.
    let _ = std::fs::remove_dir_all(conf.join("jail.d"));
    std::fs::create_dir_all(conf.join("jail.d")).expect("jail.d");
    std::fs::write(
        conf.join("fail2ban.local"),
        format!(
            "[Definition]\nlogtarget = {d}/f2b.log\nsocket = {d}/f2b.sock\npidfile = {d}/f2b.pid\ndbfile = :memory:\n",
            d = dir.display()
        ),
    )
    .expect("fail2ban.local");
    std::fs::write(
        conf.join("filter.d/gatehouse-bench.conf"),
        "[Definition]\nfailregex = ^<HOST> \\S+ \\S+ \\[\\] \"[^\"]*\" 40[13] \ndatepattern = ^[^\\[]*\\[({DATE})\n",
    )
    .expect("filter");
    std::fs::write(
        conf.join("jail.local"),
        format!(
            "[DEFAULT]\nbanaction = nftables-multiport\nbackend = {backend}\n\n[bench]\nenabled = true\nport = 8080\nfilter = gatehouse-bench\nlogpath = {}\nmaxretry = 5\nfindtime = 600\nbantime = 600\n",
            log.display()
        ),
    )
    .expect("jail.local");
    let child = Command::new("fail2ban-server")
        .args(["-f", "-x", "-c"])
        .arg(&conf)
        .arg("-s")
        .arg(dir.join("f2b.sock"))
        .arg("-p")
        .arg(dir.join("f2b.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("fail2ban-server (apt install fail2ban)");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ok = Command::new("fail2ban-client")
            .arg("-c")
            .arg(&conf)
            .arg("-s")
            .arg(dir.join("f2b.sock"))
            .args(["status", "bench"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "fail2ban's jail starts within 30 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Kill(child)
}

fn main() {
    let trials: usize = arg("--trials", "30").parse().expect("--trials N");
    let backend = arg("--backend", "auto");
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("access.log");
    std::fs::write(&log, "").expect("log");

    // Every element added to any set, as it happens.
    let mut monitor = Kill(
        Command::new("nft")
            .args(["monitor", "elements"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("nft monitor"),
    );
    let (seen, added) = mpsc::channel::<(Instant, String)>();
    let out = monitor.0.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if seen.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });

    let _agent = agent(dir.path(), &log);
    let _f2b = fail2ban(dir.path(), &log, &backend);
    std::thread::sleep(Duration::from_secs(2));

    let mut rng = lcg::Lcg(0x7173_6261_6e21);
    let mut gh = Vec::new();
    let mut f2b = Vec::new();
    let mut missed = (0, 0);
    // One warm-up trial (each tool makes its table on its first ban), then the measured ones.
    for trial in 0..=trials {
        let ip = format!("198.18.{}.{}", trial / 250, trial % 250 + 1);
        for _ in 0..4 {
            append(&log, &line(&ip));
        }
        std::thread::sleep(Duration::from_millis(300));
        while added.try_recv().is_ok() {}
        append(&log, &line(&ip));
        let t0 = Instant::now();
        let (mut a, mut b) = (None, None);
        let deadline = t0 + Duration::from_secs(10);
        while (a.is_none() || b.is_none()) && Instant::now() < deadline {
            if let Ok((at, text)) = added.recv_timeout(Duration::from_millis(100)) {
                if !text.contains(&ip) {
                    continue;
                }
                let ms = at.duration_since(t0).as_secs_f64() * 1000.0;
                if text.contains("gatehouse") {
                    a.get_or_insert(ms);
                } else if text.contains("f2b") {
                    b.get_or_insert(ms);
                }
            }
        }
        if trial > 0 {
            match a {
                Some(ms) => gh.push(ms),
                None => missed.0 += 1,
            }
            match b {
                Some(ms) => f2b.push(ms),
                None => missed.1 += 1,
            }
            eprintln!(
                "trial {trial:>3}: gatehouse {:>8} ms, fail2ban {:>8} ms",
                a.map_or("missed".into(), |v| format!("{v:.1}")),
                b.map_or("missed".into(), |v| format!("{v:.1}"))
            );
        }
        // Randomly spaced: 0.5 to 3 s until the next attack.
        std::thread::sleep(Duration::from_millis(500 + rng.next() % 2500));
    }
    for v in [&mut gh, &mut f2b] {
        v.sort_by(f64::total_cmp);
    }
    println!("time to ban over {trials} randomly spaced trials (ms from the fifth failed line written to the address in the drop set):");
    println!(
        "{:<30} {:>9} {:>9} {:>9} {:>7}",
        "", "median", "p90", "worst", "missed"
    );
    for (name, v, miss) in [
        ("gatehouse-agent", &gh, missed.0),
        (&*format!("fail2ban-server ({backend})"), &f2b, missed.1),
    ] {
        if v.is_empty() {
            println!("{name:<30} {:>9} {:>9} {:>9} {miss:>7}", "-", "-", "-");
        } else {
            println!(
                "{name:<30} {:>9.1} {:>9.1} {:>9.1} {miss:>7}",
                percentile(v, 50.0),
                percentile(v, 90.0),
                v[v.len() - 1]
            );
        }
    }
}
