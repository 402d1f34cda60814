//! The agent's protection against fail2ban (and CrowdSec), side by side in one run on one log.
//!
//! `protect ban`: time to ban, from the write of the failed sign-in that crosses the threshold
//! (the fifth within ten minutes from one address) to the address in the host firewall's drop
//! set.
//!
//! `protect cost`: each daemon's CPU (% of one core) and peak RSS while 2,000 lines a second
//! arrive for `--seconds` (default 30): 95 % good requests from 200 addresses, 5 % failed
//! sign-ins from 20 attackers (each banned once it crosses the threshold). CrowdSec (Debian's
//! `crowdsec`, its default nginx collection, detection only, no bouncer) reads the same log
//! when installed.
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
//!     bench/agent_cost.sh [--seconds 30]

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

/// CrowdSec with Debian's config and hub, reading `log` only, its local API inside this
/// namespace, nothing sent anywhere. None if it is not installed.
fn crowdsec(dir: &Path, log: &Path) -> Option<Kill> {
    if !Path::new("/etc/crowdsec/config.yaml").exists() {
        return None;
    }
    let base = std::fs::read_to_string("/etc/crowdsec/config.yaml").expect("crowdsec config");
    let acquis = dir.join("acquis.yaml");
    std::fs::write(
        &acquis,
        format!(
            "filenames:\n  - {}\nlabels:\n  type: nginx\n",
            log.display()
        ),
    )
    .expect("acquis");
    std::fs::create_dir_all(dir.join("acquis.d")).expect("acquis.d");
    let mut config = String::new();
    let mut skip = false;
    for line in base.lines() {
        // No central API (this machine is offline, and nothing leaves the benchmark).
        if line.trim_start().starts_with("online_client:") {
            skip = true;
            continue;
        }
        if skip && line.starts_with("      ") {
            continue;
        }
        skip = false;
        let line = match line.trim_start() {
            l if l.starts_with("daemonize:") => "  daemonize: false".to_owned(),
            l if l.starts_with("log_dir:") => format!("  log_dir: {}", dir.display()),
            l if l.starts_with("acquisition_path:") => {
                format!("  acquisition_path: {}", acquis.display())
            }
            l if l.starts_with("acquisition_dir:") => {
                format!("  acquisition_dir: {}", dir.join("acquis.d").display())
            }
            l if l.starts_with("enabled: true") => "  enabled: false".to_owned(),
            _ => line.to_owned(),
        };
        config.push_str(&line);
        config.push('\n');
    }
    let path = dir.join("crowdsec.yaml");
    std::fs::write(&path, config).expect("crowdsec.yaml");
    let child = Command::new("crowdsec")
        .arg("-c")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("crowdsec.out")).expect("out"))
        .spawn()
        .ok()?;
    std::thread::sleep(Duration::from_secs(3));
    Some(Kill(child))
}

/// CPU ticks (user + system) of a process and its threads, and its peak RSS in KiB.
fn usage(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command's closing parenthesis: state is field 3; utime and stime are 14, 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = fields
        .get(11)
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (ticks, hwm)
}

fn good_line(ip: &str) -> String {
    let f = time::macros::format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
    );
    let at = time::OffsetDateTime::now_utc().format(&f).expect("time");
    format!("{ip} - - [{at}] \"GET /api/v1/memories?page=2 HTTP/1.1\" 200 1532 \"-\" \"sekha-client/1.4\"\n")
}

fn cost() {
    let seconds: u64 = arg("--seconds", "30").parse().expect("--seconds N");
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("access.log");
    std::fs::write(&log, "").expect("log");
    let agent = agent(dir.path(), &log);
    // `--alone`: the agent only (to profile it).
    let alone = std::env::args().any(|a| a == "--alone");
    let f2b = (!alone).then(|| fail2ban(dir.path(), &log, &arg("--backend", "auto")));
    let cs = if alone {
        None
    } else {
        crowdsec(dir.path(), &log)
    };
    std::thread::sleep(Duration::from_secs(2));
    let mut procs: Vec<(String, u32)> = vec![("gatehouse-agent".into(), agent.0.id())];
    if let Some(f2b) = &f2b {
        procs.push(("fail2ban-server".into(), f2b.0.id()));
    }
    if let Some(cs) = &cs {
        procs.push(("crowdsec".into(), cs.0.id()));
    }
    let tick = Duration::from_millis(10);
    let per_tick = 20;
    let mut rng = lcg::Lcg(0x636f_7374);
    let started = Instant::now();
    let warm = Duration::from_secs(5);
    let mut before: Option<(Instant, Vec<u64>)> = None;
    let mut next = started;
    let mut written = 0u64;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("log");
    while started.elapsed() < warm + Duration::from_secs(seconds) {
        if before.is_none() && started.elapsed() >= warm {
            before = Some((
                Instant::now(),
                procs.iter().map(|(_, pid)| usage(*pid).0).collect(),
            ));
        }
        let mut chunk = String::new();
        for _ in 0..per_tick {
            let n = rng.next();
            if n % 20 == 0 {
                chunk.push_str(&line(&format!("198.51.100.{}", n / 20 % 20 + 1)));
            } else {
                chunk.push_str(&good_line(&format!("10.1.{}.{}", n % 4, n / 4 % 50 + 1)));
            }
        }
        file.write_all(chunk.as_bytes()).expect("write");
        written += per_tick;
        next += tick;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    let (t0, ticks0) = before.expect("measured");
    let elapsed = t0.elapsed().as_secs_f64();
    let hz = 100.0; // USER_HZ on Linux
    println!(
        "cost while {:.0} lines a second arrive ({written} lines; measured over {seconds} s after a 5 s warm-up):",
        written as f64 / started.elapsed().as_secs_f64()
    );
    println!("{:<20} {:>14} {:>16}", "", "CPU (% core)", "peak RSS (MiB)");
    for ((name, pid), t0) in procs.iter().zip(ticks0) {
        let (t1, hwm) = usage(*pid);
        println!(
            "{name:<20} {:>14.1} {:>16.1}",
            (t1.saturating_sub(t0)) as f64 / hz / elapsed * 100.0,
            hwm as f64 / 1024.0
        );
    }
    if cs.is_none() {
        println!("crowdsec: not installed (apt install crowdsec), not measured");
    }
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("cost") {
        return cost();
    }
    ban();
}

fn ban() {
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
