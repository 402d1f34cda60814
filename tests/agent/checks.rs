//! Compliance checks against the fixture services of all three profiles set up to pass and
//! to fail, a real nginx with TLS 1.3-only and TLS 1.2 configurations for the TLS, HSTS and
//! CORS checks, real gpg output for the backup check, and nftables in a network namespace
//! for the firewall check.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use gatehouse_agent::Agent;
use gatehouse_agent::{AgentConfig, CheckSettings};
use gatehouse_protocol::{CheckId, CheckResult, CheckStatus, ChecksRequest, TlsMinimum};

use crate::ports::{free_port, wait_listening};

fn demo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../demo")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A fixture service started for one test, stopped when dropped.
struct Service {
    tmp: tempfile::TempDir,
    port: u16,
    child: Child,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    fn start(profile: &str, files: &[(&str, &str, u32)], extra: &[&str]) -> Service {
        Service::start_with_env(profile, files, extra, &[])
    }

    /// As `start`, with variables in the service's environment (as a unit's `Environment=`).
    fn start_with_env(
        profile: &str,
        files: &[(&str, &str, u32)],
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Service {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("service");
        std::fs::create_dir_all(&dir).expect("dir");
        for (name, text, mode) in files {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("config");
            set_mode(&path, *mode);
        }
        let port = free_port();
        let child = Command::new("python3")
            .arg(demo_dir().join("fixture_service.py"))
            .args(["--profile", profile, "--port", &port.to_string()])
            .arg("--workdir")
            .arg(&dir)
            .arg("--log")
            .arg(tmp.path().join("service.log"))
            .args(extra)
            .envs(env.iter().copied())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the fixture");
        wait_listening(port);
        Service { tmp, port, child }
    }

    fn dir(&self) -> PathBuf {
        self.tmp.path().join("service")
    }

    fn config(&self, profile: &str, checks: CheckSettings) -> AgentConfig {
        // A state directory per agent: one service can be checked by several configs.
        let state_dir = self.tmp.path().join(format!(
            "agent-{}",
            AGENTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        AgentConfig::for_test(state_dir)
            .with_profile(profile)
            .with_service_url(format!("http://127.0.0.1:{}/health", self.port))
            .with_service_dir(self.dir())
            .with_checks(checks)
    }
}

static AGENTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn boot(config: AgentConfig) -> Agent {
    gatehouse_pki::install_provider();
    gatehouse_agent::initialise(
        &gatehouse_agent::state::StateDir::new(&config.state_dir),
        time::OffsetDateTime::now_utc(),
        Duration::from_secs(900),
        [7; 20],
    )
    .expect("agent init");
    Agent::load(config).expect("agent")
}

async fn run(agent: &Agent, checks: &[CheckId], tls_minimum: TlsMinimum) -> Vec<CheckResult> {
    let report = agent
        .checks(ChecksRequest {
            checks: checks.to_vec(),
            tls_minimum,
        })
        .await
        .expect("checks run");
    assert_eq!(
        report.results.len(),
        checks.len(),
        "every check asked for answers, in order"
    );
    report.results
}

fn expect(results: &[CheckResult], case: &str, want: &[(CheckId, CheckStatus)]) {
    for (check, status) in want {
        let got = results
            .iter()
            .find(|r| r.check == *check)
            .unwrap_or_else(|| panic!("{case}: {check:?} was run"));
        assert_eq!(
            got.status, *status,
            "{case}: {check:?} should be {status:?}: {} {:?}",
            got.summary, got.evidence
        );
        assert!(
            !got.summary.is_empty(),
            "{case}: {check:?} says what it found"
        );
    }
}

const STRONG_A: &str = "kJ8dF3mN9pQ2wR5tY7uH0jK3lM6nP9qS2vT5wX8zA1b";
const STRONG_B: &str = "Zq4Xv1Lw8Rt3Ny6Pm2Ks9Hd5Gf7Jb0Cc4Ve1Ua8Oi3E";

const SERVICE_CHECKS: [CheckId; 7] = [
    CheckId::ConfigFileMode,
    CheckId::KeyStrength,
    CheckId::DefaultKey,
    CheckId::AuthRefuses,
    CheckId::BearerBypass,
    CheckId::DataEndpointsProtected,
    CheckId::RateLimit,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_checks_pass_and_fail_as_each_profile_is_configured() {
    use CheckId::*;
    use CheckStatus::{Fail, Pass};
    let me = String::from_utf8(Command::new("id").arg("-un").output().expect("id").stdout)
        .expect("utf-8")
        .trim()
        .to_owned();
    let hardened_sekha = format!("mcp_api_key = \"{STRONG_A}\"\n[server]\nport = 8080\n");
    let weak_sekha = format!("[server]\nmcp_api_key = \"{STRONG_A}\"\n");
    let hardened_rae =
        format!("API_KEY={STRONG_A}\nSECRET_KEY={STRONG_B}\nENABLE_API_KEY_AUTH=true\n");
    let hardened_jelmore =
        format!("API_KEY_ADMIN={STRONG_A}\nAPI_KEY_CLIENT={STRONG_B}\nPOSTGRES_PASSWORD=x\n");
    let weak_jelmore = format!(
        "API_KEY_ADMIN=admin123\nAPI_KEY_CLIENT={STRONG_B}\nAPI_KEY_HEADER=X-API-Key\nPOSTGRES_PASSWORD=x\n"
    );
    struct Case<'a> {
        name: &'a str,
        profile: &'a str,
        file: (&'a str, &'a str, u32),
        extra: &'a [&'a str],
        user: Option<String>,
        want: Vec<(CheckId, CheckStatus)>,
        /// A key whose rotation the check offers as the fix of what failed.
        fixes: Vec<(CheckId, &'a str)>,
    }
    let cases = [
        Case {
            name: "Sekha hardened",
            profile: "sekha",
            file: ("config.toml", &hardened_sekha, 0o600),
            extra: &["--rate-limit", "20"],
            user: Some(me.clone()),
            want: vec![
                (ConfigFileMode, Pass),
                (KeyStrength, Pass),
                (DefaultKey, Pass),
                (AuthRefuses, Pass),
                (BearerBypass, Pass),
                // Sekha's /api/v1/* is open whatever its config says: only a proxy rule helps.
                (DataEndpointsProtected, Fail),
                (RateLimit, Pass),
            ],
            fixes: vec![],
        },
        Case {
            name: "Sekha with its key inside [server], world-readable, no effective limit",
            profile: "sekha",
            file: ("config.toml", &weak_sekha, 0o644),
            extra: &["--rate-limit", "100000"],
            user: None,
            want: vec![
                (ConfigFileMode, Fail),
                (DefaultKey, Fail),
                (AuthRefuses, Pass),
                (RateLimit, Fail),
            ],
            fixes: vec![(DefaultKey, "mcp_api_key")],
        },
        Case {
            name: "RAE hardened",
            profile: "rae",
            file: (".env", &hardened_rae, 0o600),
            extra: &[],
            user: None,
            want: vec![
                (ConfigFileMode, Pass),
                (KeyStrength, Pass),
                (DefaultKey, Pass),
                (AuthRefuses, Pass),
                // With JWT auth off (its default), any Bearer token gets in.
                (BearerBypass, Fail),
                (DataEndpointsProtected, Fail),
                // ENABLE_RATE_LIMITING is not wired in RAE.
                (RateLimit, Fail),
            ],
            fixes: vec![],
        },
        Case {
            name: "RAE as shipped (auth off, default keys)",
            profile: "rae",
            file: (".env", "LOG_LEVEL=info\n", 0o640),
            extra: &[],
            user: None,
            want: vec![
                (ConfigFileMode, Fail),
                (KeyStrength, Fail),
                (DefaultKey, Fail),
                (AuthRefuses, Fail),
                (BearerBypass, Fail),
            ],
            fixes: vec![(DefaultKey, "SECRET_KEY"), (KeyStrength, "SECRET_KEY")],
        },
        Case {
            name: "Jelmore hardened",
            profile: "jelmore",
            file: (".env", &hardened_jelmore, 0o600),
            extra: &[],
            user: Some(me.clone()),
            want: vec![
                (ConfigFileMode, Pass),
                (KeyStrength, Pass),
                (DefaultKey, Pass),
                (AuthRefuses, Pass),
                (BearerBypass, Pass),
                (DataEndpointsProtected, Fail),
                (RateLimit, Fail),
            ],
            fixes: vec![],
        },
        Case {
            name: "Jelmore with API_KEY_HEADER and a short admin key, owned by someone else",
            profile: "jelmore",
            file: (".env", &weak_jelmore, 0o600),
            extra: &[],
            user: Some("nobody".into()),
            want: vec![
                (ConfigFileMode, Fail),
                (KeyStrength, Fail),
                (DefaultKey, Fail),
                (AuthRefuses, Pass),
            ],
            fixes: vec![(KeyStrength, "API_KEY_ADMIN")],
        },
    ];
    for case in cases {
        let service = Service::start(case.profile, &[case.file], case.extra);
        let agent = boot(service.config(
            case.profile,
            CheckSettings {
                service_user: case.user.clone(),
                ..CheckSettings::default()
            },
        ));
        let results = run(&agent, &SERVICE_CHECKS, TlsMinimum::Tls13).await;
        expect(&results, case.name, &case.want);
        for (check, key) in &case.fixes {
            let r = results
                .iter()
                .find(|r| r.check == *check)
                .expect("the check ran");
            assert!(
                r.fixes.iter().any(|f| f == key),
                "{}: {check:?} offers rotating {key} as the fix (a key the service falls back \
                 to is written where it reads it): {:?}",
                case.name,
                r.fixes
            );
        }
        for r in &results {
            assert!(
                r.status == Fail || r.fixes.is_empty(),
                "{}: a check that did not fail offers no fix: {r:?}",
                case.name
            );
            assert!(
                !r.fixes.iter().any(|f| f == "API_KEY_HEADER"),
                "{}: API_KEY_HEADER is not a key; its fix is removing it, never a rotation",
                case.name
            );
        }
        for r in results.iter().filter(|r| {
            r.status == Fail && matches!(r.check, ConfigFileMode | KeyStrength | DefaultKey)
        }) {
            assert!(
                r.summary.contains(case.file.0),
                "{}: {:?}'s summary names the file (and key) at fault, so the row says what to fix: {}",
                case.name,
                r.check,
                r.summary
            );
        }
        let text = serde_json::to_string(&results).expect("json");
        for secret in [STRONG_A, STRONG_B, "admin123"] {
            assert!(
                !text.contains(secret),
                "{}: no key value appears in the evidence",
                case.name
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_evidence_names_what_was_seen() {
    let weak = "API_KEY_ADMIN=admin123\nAPI_KEY_HEADER=X-API-Key\n";
    let service = Service::start("jelmore", &[(".env", weak, 0o644)], &[]);
    let agent = boot(service.config("jelmore", CheckSettings::default()));
    let results = run(
        &agent,
        &[
            CheckId::ConfigFileMode,
            CheckId::DefaultKey,
            CheckId::AuthRefuses,
        ],
        TlsMinimum::Tls13,
    )
    .await;
    let evidence = |i: usize| results[i].evidence.join("\n");
    assert!(
        evidence(0).contains("mode 0644") && evidence(0).contains(".env"),
        "the file and its mode are named: {}",
        evidence(0)
    );
    assert!(
        evidence(1).contains("API_KEY_HEADER"),
        "the variable that made a published key valid is named: {}",
        evidence(1)
    );
    assert!(
        evidence(2).contains("GET /api/v1/v1/sessions without a key: 401"),
        "the probe and the service's answer are shown: {}",
        evidence(2)
    );
}

/// Published keys are weak whatever their length and characters, and a key set in the
/// service's environment is the one it uses, whatever its files say.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_keys_fail_from_a_file_or_the_environment() {
    use CheckId::{DefaultKey, KeyStrength};
    use CheckStatus::{Fail, Pass};
    let keys = [KeyStrength, DefaultKey];
    // install.sh's key, written where Sekha reads it (at the root).
    let install_sh = "mcp_api_key = \"sk-dev-12345678901234567890123456789012\"\n";
    let sekha = Service::start("sekha", &[("config.toml", install_sh, 0o600)], &[]);
    let results = run(
        &boot(sekha.config("sekha", CheckSettings::default())),
        &keys,
        TlsMinimum::Tls13,
    )
    .await;
    expect(
        &results,
        "install.sh's key at the root",
        &[(KeyStrength, Fail), (DefaultKey, Fail)],
    );
    assert!(
        results[0]
            .evidence
            .iter()
            .any(|e| e.contains("a published key")),
        "a published key is weak whatever its length: {:?}",
        results[0].evidence
    );
    drop(sekha);

    // A strong key in the file, and the built-in default in the service's environment.
    let strong = format!("mcp_api_key = \"{STRONG_A}\"\n");
    let sekha = Service::start_with_env(
        "sekha",
        &[("config.toml", &strong, 0o600)],
        &[],
        &[("SEKHA__MCP_API_KEY", "dev_default_key_change_me_1234567890")],
    );
    let results = run(
        &boot(sekha.config("sekha", CheckSettings::default())),
        &keys,
        TlsMinimum::Tls13,
    )
    .await;
    expect(
        &results,
        "the default in the environment beats a strong file key",
        &[(KeyStrength, Fail), (DefaultKey, Fail)],
    );
    assert!(
        results.iter().all(|r| r.fixes.is_empty()),
        "a key the environment sets is not the file's to rotate: no rotation is offered: {results:?}"
    );
    let said = format!("{:?}\n{:?}", results[0].evidence, results[1].evidence);
    assert!(
        said.contains("SEKHA__MCP_API_KEY in the environment of the service's process (pid")
            && said.contains("wins over it"),
        "the evidence says which source wins: {said}"
    );
    drop(sekha);

    // The strong key alone passes: the environment was read and sets nothing.
    let sekha = Service::start("sekha", &[("config.toml", &strong, 0o600)], &[]);
    let results = run(
        &boot(sekha.config("sekha", CheckSettings::default())),
        &keys,
        TlsMinimum::Tls13,
    )
    .await;
    expect(
        &results,
        "a strong key and nothing in the environment",
        &[(KeyStrength, Pass), (DefaultKey, Pass)],
    );
    assert!(
        results[0]
            .evidence
            .iter()
            .any(|e| e.contains("was read: it sets none of the key variables")),
        "no false positive, and the environment was looked at: {:?}",
        results[0].evidence
    );
}

/// Jelmore echoes any Origin with credentials allowed, on plain HTTP too: a CORS check that
/// skips plain HTTP misses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_is_checked_on_a_plain_http_public_url() {
    let env = format!("API_KEY_ADMIN={STRONG_A}\nPOSTGRES_PASSWORD=x\n");
    let jelmore = Service::start("jelmore", &[(".env", &env, 0o600)], &[]);
    let agent = boot(jelmore.config(
        "jelmore",
        CheckSettings {
            public_url: Some(format!("http://127.0.0.1:{}/health", jelmore.port)),
            ..CheckSettings::default()
        },
    ));
    let results = run(&agent, &[CheckId::Cors, CheckId::Hsts], TlsMinimum::Tls13).await;
    expect(
        &results,
        "Jelmore on plain HTTP",
        &[
            (CheckId::Cors, CheckStatus::Fail),
            (CheckId::Hsts, CheckStatus::Fail),
        ],
    );
    assert!(
        results[0].summary.contains("credentials"),
        "an echoed origin with credentials is named as such: {}",
        results[0].summary
    );
    let rae = Service::start(
        "rae",
        &[(".env", "ALLOWED_ORIGINS=[\"https://app.example\"]\n", 0o600)],
        &[],
    );
    let agent = boot(rae.config(
        "rae",
        CheckSettings {
            public_url: Some(format!("http://127.0.0.1:{}/health", rae.port)),
            ..CheckSettings::default()
        },
    ));
    let results = run(&agent, &[CheckId::Cors], TlsMinimum::Tls13).await;
    expect(
        &results,
        "RAE allowing one origin, on plain HTTP",
        &[(CheckId::Cors, CheckStatus::Pass)],
    );
}

/// A compliance run sends a missing key, a wrong key and a made-up Bearer token, and a burst:
/// every line those requests make in the service's log is flagged as the agent's own, and a
/// failed sign-in from someone else right after is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lines_a_checks_run_makes_are_flagged_as_probes() {
    use gatehouse_events::{Format, Kind, Outcome};
    use gatehouse_protocol::flags;
    let cases = [
        (
            "jelmore",
            ".env",
            format!("API_KEY_ADMIN={STRONG_A}\nPOSTGRES_PASSWORD=x\n"),
        ),
        (
            "rae",
            ".env",
            format!("API_KEY={STRONG_A}\nENABLE_API_KEY_AUTH=true\n"),
        ),
    ];
    for (profile, file, text) in cases {
        let service = Service::start(profile, &[(file, &text, 0o600)], &[]);
        let log = service.tmp.path().join("service.log");
        let mut config = service.config(
            profile,
            CheckSettings {
                rate_limit_burst: Some(16),
                ..CheckSettings::default()
            },
        );
        config.logs = vec![gatehouse_agent::LogConfig::file(
            log,
            Format::Structlog,
            gatehouse_events::Source::Service,
        )];
        let agent = std::sync::Arc::new(boot(config));
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
        run(
            &agent,
            &[
                CheckId::AuthRefuses,
                CheckId::BearerBypass,
                CheckId::DataEndpointsProtected,
                CheckId::RateLimit,
            ],
            TlsMinimum::Tls13,
        )
        .await;
        // Someone else's wrong key, from an address of their own (Jelmore logs the first
        // X-Forwarded-For entry; RAE logs no address, so it comes once the probes are past).
        if profile == "rae" {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        let (header, wrong) = ("x-api-key", "someone-elses-wrong-key");
        let status = reqwest::Client::new()
            .get(format!(
                "http://127.0.0.1:{}{}",
                service.port,
                if profile == "rae" {
                    "/v2/compliance/circuit-breakers"
                } else {
                    "/api/v1/v1/sessions"
                }
            ))
            .header(header, wrong)
            .header("x-forwarded-for", "203.0.113.50")
            .send()
            .await
            .expect("the service answers")
            .status();
        assert_eq!(status.as_u16(), 401, "{profile}: the outsider is refused");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let failures = loop {
            let page = agent.events(0, 5000).expect("events");
            let failures: Vec<_> = page
                .events
                .into_iter()
                .filter(|e| e.kind == Kind::Auth && e.outcome == Outcome::Failure)
                .collect();
            if failures.iter().any(|e| e.flags & flags::PROBE == 0) {
                break failures;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{profile}: the outsider's failure is read within 10 s: {failures:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let (probes, others): (Vec<_>, Vec<_>) =
            failures.iter().partition(|e| e.flags & flags::PROBE != 0);
        // Jelmore refuses all three (a missing key, a wrong key, a made-up Bearer token); RAE
        // with JWT auth off lets the Bearer token in.
        let refused = if profile == "rae" { 2 } else { 3 };
        assert_eq!(
            probes.len(),
            refused,
            "{profile}: every failed sign-in the probes made is flagged, each once: {failures:#?}"
        );
        assert_eq!(
            others.len(),
            1,
            "{profile}: only the outsider's failed sign-in counts: {others:#?}"
        );
        let _ = stop.send(());
        serving.await.expect("served").expect("served cleanly");
    }
}

/// nginx on loopback serving TLS with a certificate made for the test.
struct Nginx {
    _tmp: tempfile::TempDir,
    child: Child,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // TERM, not KILL: the master then stops its workers too.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn cert(dir: &Path, name: &str, days: i64) -> (PathBuf, PathBuf) {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(days);
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("cert");
    let (c, k) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, cert.pem()).expect("cert file");
    std::fs::write(&k, key.serialize_pem()).expect("key file");
    (c, k)
}

/// Two TLS servers: `strict` (TLS 1.3 only, HSTS for a year, a 90-day certificate) in front
/// of Sekha, and `loose` (TLS 1.2 and 1.3, no HSTS, a certificate expiring in 5 days) in
/// front of RAE, whose CORS answers `*`.
fn nginx(strict_port: u16, sekha: u16, loose_port: u16, rae: u16) -> Nginx {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("tmp")).expect("tmp");
    let (strict_crt, strict_key) = cert(dir, "strict", 90);
    let (loose_crt, loose_key) = cert(dir, "loose", 5);
    let user = if is_root() { "user root;" } else { "" };
    let d = dir.display();
    let conf = format!(
        r#"{user}
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 64; }}
http {{
  client_body_temp_path {d}/tmp/body;
  proxy_temp_path {d}/tmp/proxy;
  fastcgi_temp_path {d}/tmp/fastcgi;
  uwsgi_temp_path {d}/tmp/uwsgi;
  scgi_temp_path {d}/tmp/scgi;
  access_log off;
  server {{
    listen 127.0.0.1:{strict_port} ssl;
    ssl_certificate {strict_crt};
    ssl_certificate_key {strict_key};
    ssl_protocols TLSv1.3;
    add_header Strict-Transport-Security "max-age=31536000; includeSubDomains" always;
    location / {{ proxy_pass http://127.0.0.1:{sekha}; }}
  }}
  server {{
    listen 127.0.0.1:{loose_port} ssl;
    ssl_certificate {loose_crt};
    ssl_certificate_key {loose_key};
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {{ proxy_pass http://127.0.0.1:{rae}; }}
  }}
}}
"#,
        strict_crt = strict_crt.display(),
        strict_key = strict_key.display(),
        loose_crt = loose_crt.display(),
        loose_key = loose_key.display(),
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).expect("nginx.conf");
    let child = Command::new("nginx")
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx runs (scripts/setup.sh installs it)");
    wait_listening(strict_port);
    wait_listening(loose_port);
    Nginx { _tmp: tmp, child }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_hsts_and_cors_are_checked_on_a_real_nginx() {
    use CheckId::{Cors, Hsts, TlsCertificate, TlsVersions};
    use CheckStatus::{Fail, Pass};
    let sekha_config = format!("mcp_api_key = \"{STRONG_A}\"\n");
    let sekha = Service::start("sekha", &[("config.toml", &sekha_config, 0o600)], &[]);
    let rae = Service::start("rae", &[(".env", "API_KEY=x\n", 0o600)], &[]);
    let (strict_port, loose_port) = (free_port(), free_port());
    let _nginx = nginx(strict_port, sekha.port, loose_port, rae.port);
    let public = [TlsVersions, TlsCertificate, Hsts, Cors];

    let strict = boot(sekha.config(
        "sekha",
        CheckSettings {
            public_url: Some(format!("https://localhost:{strict_port}/health")),
            ..CheckSettings::default()
        },
    ));
    let results = run(&strict, &public, TlsMinimum::Tls13).await;
    expect(
        &results,
        "TLS 1.3 only, HSTS, no CORS",
        &[
            (TlsVersions, Pass),
            (TlsCertificate, Pass),
            (Hsts, Pass),
            (Cors, Pass),
        ],
    );
    assert!(
        results[0]
            .evidence
            .iter()
            .any(|e| e.starts_with("TLS 1.2: refused")),
        "the refused version is shown: {:?}",
        results[0].evidence
    );

    let loose = boot(rae.config(
        "rae",
        CheckSettings {
            public_url: Some(format!("https://localhost:{loose_port}/health")),
            ..CheckSettings::default()
        },
    ));
    let results = run(&loose, &public, TlsMinimum::Tls13).await;
    expect(
        &results,
        "TLS 1.2 offered, no HSTS, CORS *, certificate ending in 5 days",
        &[
            (TlsVersions, Fail),
            (TlsCertificate, Fail),
            (Hsts, Fail),
            (Cors, Fail),
        ],
    );
    let results = run(&loose, &[TlsVersions], TlsMinimum::Tls12).await;
    expect(
        &results,
        "TLS 1.2 allowed by policy",
        &[(TlsVersions, Pass)],
    );

    let plain = boot(sekha.config(
        "sekha",
        CheckSettings {
            public_url: Some(format!("http://127.0.0.1:{}/health", sekha.port)),
            ..CheckSettings::default()
        },
    ));
    let results = run(&plain, &[TlsVersions, Hsts], TlsMinimum::Tls12).await;
    expect(&results, "plain HTTP", &[(TlsVersions, Fail), (Hsts, Fail)]);
}

/// Set `path`'s modification time to `hours` before now, as this process tells the time. A
/// file just written is stamped by the kernel's clock, which a test run under libfaketime does
/// not move; the agent compares with its own clock, so "fresh" files are stamped too (0).
fn backdate(path: &Path, hours: u64) {
    let file = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open");
    file.set_modified(SystemTime::now() - Duration::from_secs(hours * 3600))
        .expect("set mtime");
}

/// A service's own log whose format names each request's client (a pattern with an `ip`
/// capture, as Jupyter Server's refusals are read) is an access log; one that names none is
/// not, whatever else it says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_log_that_names_clients_is_an_access_log() {
    use CheckStatus::{Fail, Pass};
    let sekha = Service::start(
        "sekha",
        &[("config.toml", "mcp_api_key = \"x\"\n", 0o600)],
        &[],
    );
    let own = sekha.tmp.path().join("service.log");
    std::fs::write(&own, "W 403 GET /api from 203.0.113.9\n").expect("log");
    backdate(&own, 0);
    let with = |pattern: &str| {
        let mut config = sekha.config("sekha", CheckSettings::default());
        config.logs = vec![serde_json::from_value(serde_json::json!({
            "path": own, "format": "pattern", "pattern": pattern, "source": "service"
        }))
        .expect("log config")];
        boot(config)
    };
    let naming = with(r"^W (?P<status>\d+) (?P<method>\S+) (?P<path>\S+) from (?P<ip>\S+)$");
    expect(
        &run(&naming, &[CheckId::AccessLogRecent], TlsMinimum::Tls13).await,
        "a service log naming clients, written now",
        &[(CheckId::AccessLogRecent, Pass)],
    );
    let silent = with(r"^W (?P<status>\d+) (?P<message>.*)$");
    let results = run(&silent, &[CheckId::AccessLogRecent], TlsMinimum::Tls13).await;
    expect(
        &results,
        "a service log naming no client",
        &[(CheckId::AccessLogRecent, Fail)],
    );
    assert!(
        results[0].summary.contains("no access log"),
        "says there is none: {}",
        results[0].summary
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_must_be_recent_and_encrypted_and_the_access_log_recent() {
    use CheckStatus::{Fail, Pass, Unknown};
    let sekha = Service::start(
        "sekha",
        &[("config.toml", "mcp_api_key = \"x\"\n", 0o600)],
        &[],
    );
    let backups = sekha.tmp.path().join("backups");
    std::fs::create_dir_all(&backups).expect("backups");
    let access = sekha.tmp.path().join("access.log");
    std::fs::write(
        &access,
        "127.0.0.1 - - [23/Nov/2026:10:00:00 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"x\"\n",
    )
    .expect("log");
    backdate(&access, 0);
    let mut config = sekha.config(
        "sekha",
        CheckSettings {
            backup_dir: Some(backups.clone()),
            ..CheckSettings::default()
        },
    );
    config.logs = vec![serde_json::from_value(serde_json::json!({
        "path": access, "format": "nginx_combined", "source": "proxy"
    }))
    .expect("log config")];
    let agent = boot(config);
    let checks = [CheckId::Backups, CheckId::AccessLogRecent];

    let results = run(&agent, &checks, TlsMinimum::Tls13).await;
    expect(
        &results,
        "no backup yet, fresh access log",
        &[(CheckId::Backups, Fail), (CheckId::AccessLogRecent, Pass)],
    );

    // A real gpg --symmetric file.
    let plain = backups.join("sekha.db");
    std::fs::write(&plain, b"SQLite format 3\0 and pages of conversations").expect("db");
    let gnupg = tempfile::tempdir().expect("gnupg home");
    set_mode(gnupg.path(), 0o700);
    let encrypted = backups.join("sekha-2026-11-23.db.gpg");
    let status = Command::new("gpg")
        .env("GNUPGHOME", gnupg.path())
        .args([
            "--batch",
            "--yes",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "backup-passphrase",
            "--symmetric",
            "-o",
        ])
        .arg(&encrypted)
        .arg(&plain)
        .stderr(Stdio::null())
        .status()
        .expect("gpg runs (scripts/setup.sh installs it)");
    assert!(status.success(), "gpg encrypts the backup");
    backdate(&encrypted, 0);
    backdate(&plain, 24 * 30);
    let results = run(&agent, &checks, TlsMinimum::Tls13).await;
    expect(&results, "a fresh gpg backup", &[(CheckId::Backups, Pass)]);
    assert!(
        results[0].evidence.iter().any(|e| e.contains("OpenPGP")),
        "the evidence says how it is encrypted: {:?}",
        results[0].evidence
    );

    backdate(&encrypted, 72);
    backdate(&access, 48);
    let results = run(&agent, &checks, TlsMinimum::Tls13).await;
    expect(
        &results,
        "the newest backup three days old, the access log silent for two",
        &[(CheckId::Backups, Fail), (CheckId::AccessLogRecent, Fail)],
    );

    std::fs::write(
        backups.join("sekha-2026-11-24.db"),
        b"SQLite format 3\0 plain pages",
    )
    .expect("plain");
    backdate(&backups.join("sekha-2026-11-24.db"), 0);
    let results = run(&agent, &checks, TlsMinimum::Tls13).await;
    expect(
        &results,
        "a fresh but plain SQLite copy",
        &[(CheckId::Backups, Fail)],
    );
    assert!(
        results[0].summary.contains("not encrypted"),
        "says why: {}",
        results[0].summary
    );

    let nowhere = boot(sekha.config("sekha", CheckSettings::default()));
    let results = run(&nowhere, &[CheckId::Backups], TlsMinimum::Tls13).await;
    expect(
        &results,
        "no backup_dir configured",
        &[(CheckId::Backups, Unknown)],
    );
}

/// A network namespace made for the test, deleted after.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_firewall_policy_is_read_from_nftables_in_a_network_namespace() {
    if !is_root() {
        eprintln!("the firewall check test needs root to make a network namespace; not run");
        return;
    }
    let ns = Netns(format!("gh-fw-{}", std::process::id()));
    let made = Command::new("ip")
        .args(["netns", "add", &ns.0])
        .status()
        .expect("ip");
    assert!(made.success(), "the test makes its namespace");
    let nft = |script: &str| {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns.0, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("nft");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(script.as_bytes())
            .expect("script");
        assert!(child.wait().expect("nft").success(), "nft loads: {script}");
    };
    let sekha = Service::start(
        "sekha",
        &[("config.toml", "mcp_api_key = \"x\"\n", 0o600)],
        &[],
    );
    let command = |ns: &str| {
        ["ip", "netns", "exec", ns, "nft", "-j", "list", "ruleset"]
            .map(str::to_owned)
            .to_vec()
    };
    let agent = boot(sekha.config(
        "sekha",
        CheckSettings {
            firewall_command: Some(command(&ns.0)),
            ..CheckSettings::default()
        },
    ));
    let check = [CheckId::Firewall];

    let results = run(&agent, &check, TlsMinimum::Tls13).await;
    expect(
        &results,
        "an empty ruleset",
        &[(CheckId::Firewall, CheckStatus::Fail)],
    );

    nft("table inet filter {\n chain input { type filter hook input priority 0; policy accept; }\n}\n");
    let results = run(&agent, &check, TlsMinimum::Tls13).await;
    expect(
        &results,
        "an accepting input policy",
        &[(CheckId::Firewall, CheckStatus::Fail)],
    );

    nft("flush ruleset\ntable inet filter {\n chain input { type filter hook input priority 0; policy drop;\n  iif lo accept\n  tcp dport 443 accept\n }\n}\n");
    let results = run(&agent, &check, TlsMinimum::Tls13).await;
    expect(
        &results,
        "a dropping input policy",
        &[(CheckId::Firewall, CheckStatus::Pass)],
    );
    assert!(
        results[0]
            .evidence
            .iter()
            .any(|e| e.contains("policy drop, 2 rule(s)")),
        "the chain, its policy and its rules are shown: {:?}",
        results[0].evidence
    );

    let missing = boot(sekha.config(
        "sekha",
        CheckSettings {
            firewall_command: Some(command("gh-fw-no-such-namespace")),
            ..CheckSettings::default()
        },
    ));
    let results = run(&missing, &check, TlsMinimum::Tls13).await;
    expect(
        &results,
        "a ruleset that cannot be read",
        &[(CheckId::Firewall, CheckStatus::Unknown)],
    );
}
