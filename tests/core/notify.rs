//! A new alert reaches a real notification daemon (dunst) on a private session bus, and
//! clicking it hands the alert back to the console.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gatehouse_core::{Alert, AlertNotice, AlertState, Severity};

/// Child processes killed when the test ends, however it ends.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn require(tool: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()));
    assert!(
        found,
        "{tool} is needed for the notification test (apt install dunst dbus xvfb; scripts/setup.sh does it)"
    );
}

fn first_line(child: &mut Child, what: &str) -> String {
    let out = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(out)
        .read_line(&mut line)
        .unwrap_or_else(|e| panic!("{what} did not start: {e}"));
    assert!(!line.trim().is_empty(), "{what} printed nothing on start");
    line.trim().to_owned()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "{what} within 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn alert() -> Alert {
    Alert {
        id: 42,
        rule_id: "brute-force".into(),
        rule_name: "Brute force".into(),
        kind: "brute_force".into(),
        severity: Severity::High,
        instance: "sekha-1".into(),
        subject: Some("203.0.113.9".into()),
        first_us: 1_795_401_600_000_000,
        last_us: 1_795_401_660_000_000,
        count: 7,
        detail: "7 failed sign-ins from 203.0.113.9 against sekha-1 within 60 s.".into(),
        state: AlertState::New,
        state_at: None,
        created_us: 1_795_401_660_000_000,
        facets: Vec::new(),
        addresses: vec!["203.0.113.9".into()],
        rotation_id: None,
    }
}

#[test]
fn an_alert_notification_is_sent_on_the_session_bus_and_its_click_opens_the_alert() {
    for tool in ["Xvfb", "dbus-daemon", "dbus-monitor", "dunst", "dunstctl"] {
        require(tool);
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut procs = Procs(Vec::new());

    let mut bus = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--print-address=1"])
        .arg(format!(
            "--address=unix:path={}",
            tmp.path().join("bus").display()
        ))
        .stdout(Stdio::piped())
        .spawn()
        .expect("dbus-daemon");
    let address = first_line(&mut bus, "dbus-daemon");
    procs.0.push(bus);
    let mut x = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "640x480x24",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb");
    let display = format!(":{}", first_line(&mut x, "Xvfb"));
    procs.0.push(x);
    let env = |cmd: &mut Command| {
        cmd.env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("DISPLAY", &display)
            .env("XDG_RUNTIME_DIR", tmp.path())
            .env("XDG_CONFIG_HOME", tmp.path());
    };
    let mut dunst = Command::new("dunst");
    env(&mut dunst);
    procs
        .0
        .push(dunst.stderr(Stdio::null()).spawn().expect("dunst"));
    wait_for("dunst owns org.freedesktop.Notifications", || {
        let mut ask = Command::new("dunstctl");
        env(&mut ask);
        ask.arg("is-paused")
            .stderr(Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let log = tmp.path().join("monitor.log");
    let mut monitor = Command::new("dbus-monitor");
    env(&mut monitor);
    procs.0.push(
        monitor
            .args([
                "--session",
                "type=method_call,interface=org.freedesktop.Notifications,member=Notify",
            ])
            .stdout(std::fs::File::create(&log).expect("monitor log"))
            .spawn()
            .expect("dbus-monitor"),
    );
    wait_for("dbus-monitor is listening", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("NameAcquired") || !t.is_empty())
    });
    // This test runs in a process of its own (nextest), so its environment is its own.
    std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &address);

    let (clicked, opened) = std::sync::mpsc::channel();
    let notice = AlertNotice {
        alert: alert(),
        held_back: 2,
    };
    gatehouse_core::notify::show_alert(&notice, move |id| {
        let _ = clicked.send(id);
    })
    .expect("the notification is accepted by the daemon");

    let monitored = |needle: &str| std::fs::read_to_string(&log).is_ok_and(|t| t.contains(needle));
    wait_for("the Notify call is seen on the bus", || {
        monitored("Gatehouse: Brute force on sekha-1 (high severity)")
    });
    let text = std::fs::read_to_string(&log).expect("monitor log");
    assert!(
        text.contains("member=Notify"),
        "a Notify method call: {text}"
    );
    assert!(
        text.contains("2 more alerts arrived in the last minute"),
        "the body says what the rate limit held back: {text}"
    );
    assert!(
        text.contains("\"default\""),
        "the notification offers its default action: {text}"
    );
    wait_for("dunst shows the notification", || {
        let mut ask = Command::new("dunstctl");
        env(&mut ask);
        ask.arg("count")
            .arg("displayed")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "1")
    });

    // Click it: dunst invokes the default action.
    let mut click = Command::new("dunstctl");
    env(&mut click);
    let status = click
        .args(["action", "0"])
        .status()
        .expect("dunstctl action");
    assert!(status.success(), "dunstctl action ran");
    let id = opened
        .recv_timeout(Duration::from_secs(10))
        .expect("clicking the notification reports back within 10 s");
    assert_eq!(id, 42, "the click opens the alert it was about");
}
