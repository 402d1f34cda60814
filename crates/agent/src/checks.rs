//! Compliance checks the agent runs on its host and against its service, each answering
//! pass, fail or unknown with evidence a person can read. No check prints a secret: keys
//! are named by their variable and fingerprint.
//!
//! The probes only read: no check sends a request that changes data. The rate-limit burst
//! goes to the open health endpoint with a documentation-range `X-Forwarded-For`, so a
//! service that keys its limit on that header (Sekha) spends no real client's window on it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use gatehouse_events::profile::ConfigFile;
use gatehouse_pki::ProbeVersions;
use gatehouse_protocol::{
    CheckId, CheckResult, CheckStatus, ChecksReport, ChecksRequest, TlsMinimum,
};

use crate::config::{CheckPolicy, LogConfig};
use crate::error::{root_cause, ConfigError};
use crate::fsutil;
use crate::service::files::{self, fingerprint};
use crate::service::Service;

/// A key presented by the probes: recognisable in the service's own log as Gatehouse's.
const PROBE_KEY: &str = "gatehouse-compliance-probe-not-a-key";
/// How the probes introduce themselves in the service's access log.
const PROBE_USER_AGENT: &str = "gatehouse-agent compliance probe";
/// The origin the CORS probe claims.
const PROBE_ORIGIN: &str = "https://gatehouse-probe.invalid";
/// TEST-NET-1: a rate limit keyed on `X-Forwarded-For` charges the burst to nobody real.
const PROBE_FORWARDED_FOR: &str = "192.0.2.1";
/// The least randomness a key should carry, in bits.
const MIN_KEY_BITS: f64 = 128.0;
/// An HSTS max-age below this (180 days) is too short to protect returning clients.
const MIN_HSTS_SECONDS: u64 = 15_552_000;
/// A certificate expiring sooner than this fails its check.
const MIN_CERT_DAYS: i64 = 14;
/// An access log silent for longer than this is not "recent".
const ACCESS_LOG_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
const BURST_TIME_LIMIT: Duration = Duration::from_secs(15);
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything a check needs to look at.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub service: Service<'a>,
    pub policy: &'a CheckPolicy,
    /// The logs the agent follows, or why there are none.
    pub logs: Result<&'a [LogConfig], &'a ConfigError>,
}

impl Context<'_> {
    /// Run the requested checks, one after another (the burst must not overlap the auth
    /// probes, or a limited service would answer them 429).
    pub async fn run(&self, request: &ChecksRequest, now: i64) -> ChecksReport {
        let mut results = Vec::with_capacity(request.checks.len());
        let mut public: Option<PublicProbe> = None;
        for &check in &request.checks {
            let result = match check {
                CheckId::ConfigFileMode => self.file_modes(),
                CheckId::KeyStrength => self.key_strength(),
                CheckId::DefaultKey => self.default_key(),
                CheckId::TlsVersions | CheckId::TlsCertificate | CheckId::Hsts | CheckId::Cors => {
                    if public.is_none() {
                        public = Some(self.probe_public().await);
                    }
                    match &public {
                        Some(p) => p.result(check, request.tls_minimum, now),
                        None => unknown(check, "the public endpoint was not probed", vec![]),
                    }
                }
                CheckId::AuthRefuses => self.auth_refuses().await,
                CheckId::BearerBypass => self.bearer_bypass().await,
                CheckId::DataEndpointsProtected => self.data_endpoints().await,
                CheckId::RateLimit => self.rate_limit().await,
                CheckId::AccessLogRecent => self.access_log(),
                CheckId::Backups => self.backups(),
                CheckId::Firewall => self.firewall().await,
            };
            results.push(result);
        }
        ChecksReport {
            results,
            checked_at: now,
        }
    }

    fn config_files(&self) -> Result<Vec<(PathBuf, &ConfigFile)>, String> {
        self.service
            .config_files()
            .ok_or_else(|| files::no_dir("the service's files"))
    }

    fn file_modes(&self) -> CheckResult {
        let check = CheckId::ConfigFileMode;
        let Some(paths) = self.service.config_paths() else {
            return unknown(check, files::no_dir("the service's files"), vec![]);
        };
        let owner_uid = match &self.policy.service_user {
            Some(user) => match uid_of(user) {
                Some(uid) => Some((user.clone(), uid)),
                None => {
                    return unknown(
                        check,
                        format!("the service user {user} is not in /etc/passwd"),
                        vec![],
                    )
                }
            },
            None => None,
        };
        let mut evidence = Vec::new();
        let mut failing = 0;
        for path in &paths {
            match fsutil::owner_and_mode(path) {
                Ok((uid, mode)) => {
                    let mut problems = Vec::new();
                    if mode & 0o077 != 0 {
                        problems.push("readable or writable by others than its owner");
                    }
                    if let Some((_, want)) = &owner_uid {
                        if uid != *want {
                            problems.push("not owned by the service user");
                        }
                    }
                    if !problems.is_empty() {
                        failing += 1;
                    }
                    evidence.push(format!(
                        "{}: mode {:04o}, owner uid {uid}{}",
                        path.display(),
                        mode & 0o7777,
                        if problems.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", problems.join(", "))
                        }
                    ));
                }
                Err(e) => evidence.push(format!("{}: cannot be read ({e})", path.display())),
            }
        }
        if owner_uid.is_none() {
            evidence.push(
                "no service_user is set in [checks], so ownership was not compared".to_owned(),
            );
        }
        if failing > 0 {
            fail(
                check,
                format!("{failing} config file(s) are not mode 0600 for the service user"),
                evidence,
            )
        } else if evidence.iter().any(|e| e.contains("cannot be read")) {
            unknown(check, "a config file could not be read", evidence)
        } else {
            pass(check, "config files are mode 0600", evidence)
        }
    }

    /// Every key the profile names, as its files hold it; a file's missing key appears with
    /// its default value if the service falls back to one.
    fn keys(&self) -> Result<Vec<FoundKey>, String> {
        let mut found = Vec::new();
        for (path, file) in self.config_files()? {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let shown = path.display().to_string();
            // Inside a table or absent: the service does not see it.
            let values = files::keys_in(file, &text).unwrap_or_default();
            if values.is_empty() {
                if let (Some(key), Some(default)) = (&file.key, &file.default) {
                    found.push(FoundKey {
                        name: key.clone(),
                        file: shown.clone(),
                        value: default.clone(),
                        defaulted: true,
                    });
                }
            }
            for (name, value) in values {
                found.push(FoundKey {
                    name,
                    file: shown.clone(),
                    value,
                    defaulted: false,
                });
            }
        }
        Ok(found)
    }

    fn key_strength(&self) -> CheckResult {
        let check = CheckId::KeyStrength;
        let keys = match self.keys() {
            Ok(keys) => keys,
            Err(why) => return unknown(check, why, vec![]),
        };
        if keys.is_empty() {
            return unknown(
                check,
                "no key was found in the service's config files",
                vec![],
            );
        }
        let min = self.service.profile.keys.min_length;
        let mut weak = 0;
        let mut evidence = Vec::new();
        for key in &keys {
            let bits = estimated_bits(&key.value);
            let short = key.value.len() < min;
            let low = bits < MIN_KEY_BITS;
            if short || low {
                weak += 1;
            }
            evidence.push(format!(
                "{} ({}{}): {} characters, about {:.0} bits, fingerprint {}{}",
                key.name,
                key.file,
                if key.defaulted {
                    ", not set: the default applies"
                } else {
                    ""
                },
                key.value.len(),
                bits,
                fingerprint(&key.value),
                match (short, low) {
                    (true, _) => format!(" — shorter than the {min} characters required"),
                    (false, true) => format!(" — less than {MIN_KEY_BITS:.0} bits of randomness"),
                    _ => String::new(),
                }
            ));
        }
        if weak > 0 {
            fail(
                check,
                format!("{weak} key(s) are too short or too predictable"),
                evidence,
            )
        } else {
            pass(
                check,
                format!("every key has at least {min} characters and {MIN_KEY_BITS:.0} bits"),
                evidence,
            )
        }
    }

    fn default_key(&self) -> CheckResult {
        let check = CheckId::DefaultKey;
        let keys = match self.keys() {
            Ok(keys) => keys,
            Err(why) => return unknown(check, why, vec![]),
        };
        let mut evidence = Vec::new();
        for key in &keys {
            let known = self.service.profile.keys.known_weak.contains(&key.value)
                || self
                    .service
                    .profile
                    .config_files
                    .iter()
                    .any(|f| f.default.as_deref() == Some(key.value.as_str()));
            if key.defaulted {
                evidence.push(format!(
                    "{} is not set in {}: {} uses its published default",
                    key.name, key.file, self.service.profile.display_name
                ));
            } else if known {
                evidence.push(format!(
                    "{} in {} is a published default or known key (fingerprint {})",
                    key.name,
                    key.file,
                    fingerprint(&key.value)
                ));
            }
        }
        if self.service.profile.name == "jelmore" {
            // Jelmore reads every API_KEY_* variable as a key, so its own compose file's
            // API_KEY_HEADER=X-API-Key makes that literal string a valid key.
            if let Some(header) = keys.iter().find(|k| k.name == "API_KEY_HEADER") {
                if !evidence.iter().any(|e| e.starts_with("API_KEY_HEADER")) {
                    evidence.push(format!(
                        "API_KEY_HEADER in {} is read as a key named \"header\"",
                        header.file
                    ));
                }
            }
        }
        if evidence.is_empty() {
            pass(
                check,
                "no default or published key is in use",
                vec![format!(
                    "{} key(s) compared with the profile's known keys",
                    keys.len()
                )],
            )
        } else {
            fail(
                check,
                "a default or published key is in use: anyone who read the docs has it",
                evidence,
            )
        }
    }

    async fn probe_public(&self) -> PublicProbe {
        let Some(url) = self.policy.public_url.clone() else {
            return PublicProbe::NotConfigured;
        };
        let parsed = match reqwest::Url::parse(&url) {
            Ok(parsed) => parsed,
            Err(e) => return PublicProbe::Broken(format!("public_url {url}: {e}")),
        };
        if parsed.scheme() != "https" {
            return PublicProbe::PlainHttp(url);
        }
        let host = parsed.host_str().unwrap_or("localhost").to_owned();
        let port = parsed.port_or_known_default().unwrap_or(443);
        let tls13 = handshake(&host, port, ProbeVersions::Tls13Only).await;
        let tls12 = handshake(&host, port, ProbeVersions::Tls12Only).await;
        let cert_not_after = tls13
            .as_ref()
            .ok()
            .or(tls12.as_ref().ok())
            .and_then(|h| h.not_after);
        let headers = probe_http(&url).await;
        PublicProbe::Probed(Box::new(Probed {
            url,
            tls13: tls13.map(|_| ()),
            tls12: tls12.map(|_| ()),
            cert_not_after,
            headers,
        }))
    }

    fn base_url(&self) -> Result<String, String> {
        self.service.origin().unwrap_or_else(|| {
            Err("no service_url is configured, so the service cannot be probed".into())
        })
    }

    /// The protected endpoint's status for a request with `header` (or none).
    async fn protected_status(&self, header: Option<(&str, String)>) -> Result<u16, String> {
        let probe = &self.service.profile.probes.protected;
        let mut headers = vec![("user-agent", PROBE_USER_AGENT.to_owned())];
        headers.extend(header);
        let (request, url) =
            self.service
                .protected_request(&self.base_url()?, headers, PROBE_TIMEOUT)?;
        request
            .send()
            .await
            .map(|r| r.status().as_u16())
            .map_err(|e| format!("{} {url}: {}", probe.method, root_cause(&e)))
    }

    async fn auth_refuses(&self) -> CheckResult {
        let check = CheckId::AuthRefuses;
        let probe = &self.service.profile.probes.protected;
        let target = format!("{} {}", probe.method, probe.path);
        let missing = self.protected_status(None).await;
        let wrong = self
            .protected_status(Some((
                self.service.profile.auth.header.as_str(),
                format!("{}{PROBE_KEY}", self.service.profile.auth.scheme),
            )))
            .await;
        let (missing, wrong) = match (missing, wrong) {
            (Ok(m), Ok(w)) => (m, w),
            (Err(e), _) | (_, Err(e)) => {
                return unknown(check, "the service did not answer", vec![e])
            }
        };
        let evidence = vec![
            format!("{target} without a key: {missing}"),
            format!("{target} with a wrong key: {wrong}"),
        ];
        let refused = |s: u16| matches!(s, 400 | 401 | 403);
        match (refused(missing), refused(wrong)) {
            (true, true) => pass(
                check,
                "the protected endpoint refuses a missing and a wrong key",
                evidence,
            ),
            _ => {
                let mut evidence = evidence;
                if let Some(note) = &self.service.profile.auth.note {
                    evidence.push(format!("profile: {note}"));
                }
                fail(
                    check,
                    "the protected endpoint answers without a valid key: authentication is off",
                    evidence,
                )
            }
        }
    }

    async fn bearer_bypass(&self) -> CheckResult {
        let check = CheckId::BearerBypass;
        let probe = &self.service.profile.probes.protected;
        let target = format!("{} {}", probe.method, probe.path);
        match self
            .protected_status(Some(("authorization", format!("Bearer {PROBE_KEY}"))))
            .await
        {
            Ok(status @ (400 | 401 | 403)) => pass(
                check,
                "an arbitrary Bearer token is refused",
                vec![format!(
                    "{target} with Authorization: Bearer <made-up token>: {status}"
                )],
            ),
            Ok(status) => fail(
                check,
                "an arbitrary Bearer token is accepted: anyone can call the protected API",
                vec![format!(
                    "{target} with Authorization: Bearer <made-up token>: {status}"
                )],
            ),
            Err(e) => unknown(check, "the service did not answer", vec![e]),
        }
    }

    async fn data_endpoints(&self) -> CheckResult {
        let check = CheckId::DataEndpointsProtected;
        let base = match self.base_url() {
            Ok(base) => base,
            Err(why) => return unknown(check, why, vec![]),
        };
        let paths = &self.service.profile.probes.unprotected_data;
        if paths.is_empty() {
            return pass(
                check,
                "the profile names no data endpoint that answers without a key",
                vec![],
            );
        }
        let (mut open, mut refused) = (0, 0);
        let mut evidence = Vec::new();
        for path in paths {
            let url = format!("{base}{path}");
            // GET only: a probe never calls anything that could change data.
            match self
                .service
                .http
                .get(&url)
                .timeout(PROBE_TIMEOUT)
                .send()
                .await
            {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let word = match status {
                        200..=299 => {
                            open += 1;
                            " (open)"
                        }
                        401 | 403 => {
                            refused += 1;
                            " (refused)"
                        }
                        // 404, 405 and the like say nothing about protection.
                        _ => " (neither open nor refused)",
                    };
                    evidence.push(format!("GET {path} without a key: {status}{word}"));
                }
                Err(e) => evidence.push(format!("GET {path}: {}", root_cause(&e))),
            }
        }
        if open > 0 {
            fail(
                check,
                format!("{open} endpoint(s) answer without a key; restrict them at the proxy"),
                evidence,
            )
        } else if refused < paths.len() {
            unknown(
                check,
                "some endpoints neither answered nor refused a request without a key",
                evidence,
            )
        } else {
            pass(
                check,
                "every data endpoint refuses a request without a key",
                evidence,
            )
        }
    }

    async fn rate_limit(&self) -> CheckResult {
        let check = CheckId::RateLimit;
        let base = match self.base_url() {
            Ok(base) => base,
            Err(why) => return unknown(check, why, vec![]),
        };
        let limit_status = self
            .service
            .profile
            .rate_limit
            .as_ref()
            .and_then(|r| r.status)
            .unwrap_or(429);
        let url = format!("{base}{}", self.service.profile.probes.open.path);
        let burst = self.policy.rate_limit_burst;
        let started = Instant::now();
        let mut sent = 0u32;
        let mut limited_at = None;
        let mut errors = 0u32;
        // Eight at a time: fast enough to beat a per-second limit, gentle on the service.
        'burst: while sent < burst && started.elapsed() < BURST_TIME_LIMIT {
            let batch = (burst - sent).min(8);
            let mut tasks = Vec::with_capacity(batch as usize);
            for _ in 0..batch {
                let request = self
                    .service
                    .http
                    .get(&url)
                    .header("x-forwarded-for", PROBE_FORWARDED_FOR)
                    .header("user-agent", PROBE_USER_AGENT)
                    .timeout(PROBE_TIMEOUT)
                    .send();
                tasks.push(request);
            }
            for result in futures_join(tasks).await {
                sent += 1;
                match result {
                    Ok(status) if status == limit_status => {
                        limited_at = Some(sent);
                        break 'burst;
                    }
                    Ok(_) => {}
                    Err(()) => errors += 1,
                }
            }
        }
        let took = started.elapsed().as_millis();
        let mut evidence = vec![format!(
            "{sent} GET {} in {took} ms with X-Forwarded-For {PROBE_FORWARDED_FOR}{}",
            self.service.profile.probes.open.path,
            if errors > 0 {
                format!(", {errors} failed")
            } else {
                String::new()
            }
        )];
        if let Some(note) = self
            .service
            .profile
            .rate_limit
            .as_ref()
            .and_then(|r| r.note.clone())
        {
            evidence.push(format!("profile: {note}"));
        }
        match limited_at {
            Some(n) => pass(
                check,
                format!("answered {limit_status} after {n} requests"),
                evidence,
            ),
            None if errors == sent => unknown(check, "the service did not answer", evidence),
            None => fail(
                check,
                format!(
                    "no {limit_status} after {sent} requests: nothing slows a brute force down"
                ),
                evidence,
            ),
        }
    }

    fn access_log(&self) -> CheckResult {
        let check = CheckId::AccessLogRecent;
        let logs = match self.logs {
            Ok(logs) => logs,
            Err(e) => return unknown(check, e.to_string(), vec![]),
        };
        let access: Vec<_> = logs
            .iter()
            .filter(|l| matches!(l.source.as_str(), "proxy" | "access"))
            .collect();
        if access.is_empty() {
            return fail(
                check,
                "no access log is configured: failed sign-ins have no client address",
                vec![],
            );
        }
        let mut evidence = Vec::new();
        let mut recent = 0;
        for log in access {
            match std::fs::metadata(&log.path).and_then(|m| m.modified()) {
                Ok(modified) => {
                    let age = SystemTime::now()
                        .duration_since(modified)
                        .unwrap_or_default();
                    if age <= ACCESS_LOG_MAX_AGE {
                        recent += 1;
                    }
                    evidence.push(format!(
                        "{} ({}): last written {} ago",
                        log.path.display(),
                        log.source,
                        human(age)
                    ));
                }
                Err(e) => evidence.push(format!("{} ({}): {e}", log.path.display(), log.source)),
            }
        }
        if recent > 0 {
            pass(
                check,
                "access logging is on and written within a day",
                evidence,
            )
        } else {
            fail(
                check,
                "no access log has been written in the last day",
                evidence,
            )
        }
    }

    fn backups(&self) -> CheckResult {
        let check = CheckId::Backups;
        let Some(dir) = &self.policy.backup_dir else {
            return unknown(
                check,
                "no backup_dir is set in the agent's [checks], so backups cannot be looked at",
                vec![],
            );
        };
        let max_age = self.policy.backup_max_age;
        let newest = match newest_file(dir) {
            Ok(Some(newest)) => newest,
            Ok(None) => {
                return fail(
                    check,
                    "no backup exists",
                    vec![format!("{} is empty", dir.display())],
                )
            }
            Err(e) => {
                return fail(
                    check,
                    "the backup folder cannot be read",
                    vec![format!("{}: {e}", dir.display())],
                )
            }
        };
        let (path, modified, size) = newest;
        let age = SystemTime::now()
            .duration_since(modified)
            .unwrap_or_default();
        let kind = match content_kind(&path) {
            Ok(kind) => kind,
            Err(e) => {
                return unknown(
                    check,
                    "the newest backup cannot be read",
                    vec![format!("{}: {e}", path.display())],
                )
            }
        };
        let evidence = vec![
            format!(
                "newest: {} ({size} bytes), written {} ago",
                path.display(),
                human(age)
            ),
            format!("content: {}", kind.describe()),
        ];
        if age > max_age {
            fail(
                check,
                format!("the newest backup is older than {}", human(max_age)),
                evidence,
            )
        } else if !kind.encrypted() {
            fail(check, "the newest backup is not encrypted", evidence)
        } else {
            pass(check, "a recent, encrypted backup exists", evidence)
        }
    }

    async fn firewall(&self) -> CheckResult {
        let check = CheckId::Firewall;
        let command = &self.policy.firewall_command;
        let Some((program, args)) = command.split_first() else {
            return unknown(check, "firewall_command is empty", vec![]);
        };
        let output = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::process::Command::new(program)
                .args(args)
                .kill_on_drop(true)
                .output(),
        )
        .await;
        let shown = command.join(" ");
        let output = match output {
            Ok(Ok(output)) => output,
            Ok(Err(e)) => return unknown(check, format!("{shown} could not run: {e}"), vec![]),
            Err(_) => return unknown(check, format!("{shown} did not finish in 10 s"), vec![]),
        };
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
            return unknown(
                check,
                format!("{shown} failed (the agent needs CAP_NET_ADMIN to read the ruleset)"),
                vec![stderr],
            );
        }
        match input_policy(&output.stdout) {
            Ok(chains) if chains.is_empty() => fail(
                check,
                "no input chain: the host accepts all incoming traffic",
                vec![format!("{shown}: no base chain on the input hook")],
            ),
            Ok(chains) => {
                let evidence: Vec<String> = chains
                    .iter()
                    .map(|c| {
                        format!(
                            "{} {}: policy {}, {} rule(s)",
                            c.table, c.name, c.policy, c.rules
                        )
                    })
                    .collect();
                if chains.iter().any(|c| c.policy == "drop") {
                    pass(
                        check,
                        "incoming traffic is dropped unless a rule accepts it",
                        evidence,
                    )
                } else {
                    fail(
                        check,
                        "the input policy accepts: incoming traffic is allowed by default",
                        evidence,
                    )
                }
            }
            Err(e) => unknown(
                check,
                format!("{shown} printed something that is not a ruleset"),
                vec![e],
            ),
        }
    }
}

struct FoundKey {
    name: String,
    file: String,
    value: String,
    /// Not set: the service's default applies.
    defaulted: bool,
}

enum PublicProbe {
    NotConfigured,
    Broken(String),
    PlainHttp(String),
    Probed(Box<Probed>),
}

struct Probed {
    url: String,
    tls13: Result<(), String>,
    tls12: Result<(), String>,
    cert_not_after: Option<i64>,
    headers: Result<Headers, String>,
}

struct Headers {
    status: u16,
    hsts: Option<String>,
    /// `Access-Control-Allow-Origin` on a GET and on a preflight, from the probe origin.
    cors_get: Option<String>,
    cors_preflight: Option<String>,
}

impl PublicProbe {
    fn result(&self, check: CheckId, minimum: TlsMinimum, now: i64) -> CheckResult {
        let p = match self {
            PublicProbe::NotConfigured => {
                return unknown(
                    check,
                    "no public_url is set in the agent's [checks], so the public endpoint cannot be probed",
                    vec![],
                )
            }
            PublicProbe::Broken(why) => return unknown(check, why.clone(), vec![]),
            PublicProbe::PlainHttp(url) => {
                return match check {
                    CheckId::Cors => unknown(check, "the public endpoint is plain HTTP", vec![url.clone()]),
                    _ => fail(
                        check,
                        "the public endpoint is plain HTTP: keys cross the network in clear text",
                        vec![url.clone()],
                    ),
                }
            }
            PublicProbe::Probed(p) => p,
        };
        match check {
            CheckId::TlsVersions => p.versions(minimum),
            CheckId::TlsCertificate => match p.cert_not_after {
                Some(not_after) => {
                    let days = (not_after - now) / 86_400;
                    let shown = time::OffsetDateTime::from_unix_timestamp(not_after)
                        .map(|t| t.date().to_string())
                        .unwrap_or_default();
                    let evidence = vec![format!("{}: certificate valid until {shown}", p.url)];
                    if not_after <= now {
                        fail(check, "the certificate has expired", evidence)
                    } else if days < MIN_CERT_DAYS {
                        fail(
                            check,
                            format!("the certificate expires in {days} days"),
                            evidence,
                        )
                    } else {
                        pass(
                            check,
                            format!("the certificate is valid for {days} more days"),
                            evidence,
                        )
                    }
                }
                None => unknown(check, "no TLS handshake succeeded", vec![p.url.clone()]),
            },
            CheckId::Hsts => match &p.headers {
                Ok(h) => {
                    let evidence = vec![format!(
                        "GET {}: {}, Strict-Transport-Security: {}",
                        p.url,
                        h.status,
                        h.hsts.as_deref().unwrap_or("(absent)")
                    )];
                    match h.hsts.as_deref().and_then(hsts_max_age) {
                        Some(age) if age >= MIN_HSTS_SECONDS => {
                            pass(check, format!("HSTS is sent with max-age {age}"), evidence)
                        }
                        Some(age) => fail(
                            check,
                            format!("HSTS max-age {age} is under 180 days"),
                            evidence,
                        ),
                        None => fail(check, "no Strict-Transport-Security header", evidence),
                    }
                }
                Err(e) => unknown(check, "the public endpoint did not answer", vec![e.clone()]),
            },
            CheckId::Cors => match &p.headers {
                Ok(h) => {
                    let evidence = vec![
                        format!(
                            "GET with Origin {PROBE_ORIGIN}: Access-Control-Allow-Origin {}",
                            h.cors_get.as_deref().unwrap_or("(absent)")
                        ),
                        format!(
                            "OPTIONS preflight from {PROBE_ORIGIN}: Access-Control-Allow-Origin {}",
                            h.cors_preflight.as_deref().unwrap_or("(absent)")
                        ),
                    ];
                    let loose = |v: &Option<String>| {
                        v.as_deref()
                            .is_some_and(|v| v.trim() == "*" || v.trim() == PROBE_ORIGIN)
                    };
                    if loose(&h.cors_get) || loose(&h.cors_preflight) {
                        fail(check, "any web page may call this API from a browser (CORS allows every origin)", evidence)
                    } else {
                        pass(check, "CORS does not allow an arbitrary origin", evidence)
                    }
                }
                Err(e) => unknown(check, "the public endpoint did not answer", vec![e.clone()]),
            },
            other => unknown(other, "not a check of the public endpoint", vec![]),
        }
    }
}

impl Probed {
    fn versions(&self, minimum: TlsMinimum) -> CheckResult {
        let check = CheckId::TlsVersions;
        let line = |name: &str, r: &Result<(), String>| match r {
            Ok(()) => format!("{name}: offered"),
            Err(e) => format!("{name}: refused ({e})"),
        };
        let mut evidence = vec![
            format!("{}", self.url),
            line("TLS 1.3", &self.tls13),
            line("TLS 1.2", &self.tls12),
        ];
        evidence.push(
            "TLS 1.0 and 1.1 are not probed: the agent's TLS library does not speak them".into(),
        );
        match (minimum, self.tls13.is_ok(), self.tls12.is_ok()) {
            (_, false, false) => unknown(check, "no TLS handshake succeeded", evidence),
            (TlsMinimum::Tls13, true, false) => pass(check, "only TLS 1.3 is offered", evidence),
            (TlsMinimum::Tls13, _, true) => fail(
                check,
                "TLS 1.2 is offered where the policy asks for TLS 1.3 only",
                evidence,
            ),
            (TlsMinimum::Tls12, _, _) => pass(check, "TLS 1.2 or newer is offered", evidence),
        }
    }
}

struct Handshake {
    not_after: Option<i64>,
}

async fn handshake(host: &str, port: u16, versions: ProbeVersions) -> Result<Handshake, String> {
    let config = gatehouse_pki::probe_client_config(versions).map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| format!("{host}: {e}"))?;
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| format!("connect {host}:{port}: {e}"))?;
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let not_after = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|der| gatehouse_pki::cert_info(der).ok())
            .map(|info| info.validity.not_after.unix_timestamp());
        Ok(Handshake { not_after })
    };
    tokio::time::timeout(PROBE_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| Err("no answer within 5 s".into()))
}

async fn probe_http(url: &str) -> Result<Headers, String> {
    let config =
        gatehouse_pki::probe_client_config(ProbeVersions::Both).map_err(|e| e.to_string())?;
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .no_proxy()
        .timeout(PROBE_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let get = client
        .get(url)
        .header("origin", PROBE_ORIGIN)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {}", root_cause(&e)))?;
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let status = get.status().as_u16();
    let hsts = header(&get, "strict-transport-security");
    let cors_get = header(&get, "access-control-allow-origin");
    let preflight = client
        .request(reqwest::Method::OPTIONS, url)
        .header("origin", PROBE_ORIGIN)
        .header("access-control-request-method", "GET")
        .send()
        .await
        .map_err(|e| format!("OPTIONS {url}: {}", root_cause(&e)))?;
    let cors_preflight = header(&preflight, "access-control-allow-origin");
    Ok(Headers {
        status,
        hsts,
        cors_get,
        cors_preflight,
    })
}

/// Runs the requests together and gives each one's status (or `Err` when it got no answer).
async fn futures_join<F>(requests: Vec<F>) -> Vec<Result<u16, ()>>
where
    F: std::future::Future<Output = reqwest::Result<reqwest::Response>> + Send + 'static,
{
    let handles: Vec<_> = requests.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(match handle.await {
            Ok(Ok(response)) => Ok(response.status().as_u16()),
            _ => Err(()),
        });
    }
    out
}

fn hsts_max_age(value: &str) -> Option<u64> {
    value.split(';').find_map(|part| {
        let (name, v) = part.trim().split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("max-age")
            .then(|| v.trim().trim_matches('"').parse().ok())?
    })
}

/// Shannon entropy of the key's characters times its length: a rough upper bound on the
/// randomness in it, good at catching repeated or dictionary-like keys.
fn estimated_bits(value: &str) -> f64 {
    let bytes = value.as_bytes();
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[b as usize] += 1;
    }
    let n = bytes.len() as f64;
    let per_char: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum();
    per_char * n
}

#[derive(Debug, PartialEq, Eq)]
enum ContentKind {
    OpenPgp,
    Age,
    OpensslEnc,
    /// No known plain format, and as random as ciphertext.
    Random,
    Sqlite,
    Gzip,
    Other,
}

impl ContentKind {
    fn encrypted(&self) -> bool {
        matches!(
            self,
            ContentKind::OpenPgp | ContentKind::Age | ContentKind::OpensslEnc | ContentKind::Random
        )
    }

    fn describe(&self) -> &'static str {
        match self {
            ContentKind::OpenPgp => "an OpenPGP encrypted message (gpg)",
            ContentKind::Age => "an age encrypted file",
            ContentKind::OpensslEnc => "an openssl enc file (salted)",
            ContentKind::Random => {
                "random-looking bytes of no plain format (encrypted, for example SQLCipher)"
            }
            ContentKind::Sqlite => "a plain SQLite database (readable by anyone who gets the file)",
            ContentKind::Gzip => "gzip-compressed, not encrypted",
            ContentKind::Other => "readable content, not encrypted",
        }
    }
}

fn content_kind(path: &Path) -> std::io::Result<ContentKind> {
    use std::io::Read;
    let mut head = Vec::with_capacity(4096);
    std::fs::File::open(path)?
        .take(4096)
        .read_to_end(&mut head)?;
    Ok(classify(&head))
}

fn classify(head: &[u8]) -> ContentKind {
    if head.starts_with(b"-----BEGIN PGP MESSAGE-----") {
        return ContentKind::OpenPgp;
    }
    if head.starts_with(b"age-encryption.org/v1")
        || head.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----")
    {
        return ContentKind::Age;
    }
    if head.starts_with(b"Salted__") {
        return ContentKind::OpensslEnc;
    }
    if head.starts_with(b"SQLite format 3\0") {
        return ContentKind::Sqlite;
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        return ContentKind::Gzip;
    }
    // An OpenPGP binary message opens with a public-key or symmetric-key encrypted session
    // key packet (tags 1 and 3), in the old or the new packet format.
    if let Some(&first) = head.first() {
        let tag = if first & 0xC0 == 0xC0 {
            Some(first & 0x3F)
        } else if first & 0xC0 == 0x80 {
            Some((first >> 2) & 0x0F)
        } else {
            None
        };
        if matches!(tag, Some(1 | 3)) {
            return ContentKind::OpenPgp;
        }
    }
    if head.len() >= 512 && byte_entropy(head) > 7.5 {
        return ContentKind::Random;
    }
    ContentKind::Other
}

fn byte_entropy(bytes: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[b as usize] += 1;
    }
    let n = bytes.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

fn newest_file(dir: &Path) -> std::io::Result<Option<(PathBuf, SystemTime, u64)>> {
    let mut newest: Option<(PathBuf, SystemTime, u64)> = None;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if !meta.is_file() {
            continue;
        }
        let modified = meta.modified()?;
        if newest.as_ref().is_none_or(|(_, t, _)| modified > *t) {
            newest = Some((entry.path(), modified, meta.len()));
        }
    }
    Ok(newest)
}

struct InputChain {
    table: String,
    name: String,
    policy: String,
    rules: usize,
}

/// The base chains on the input hook of an `nft -j list ruleset` document.
fn input_policy(json: &[u8]) -> Result<Vec<InputChain>, String> {
    let doc: serde_json::Value = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    let items = doc
        .get("nftables")
        .and_then(|v| v.as_array())
        .ok_or("no \"nftables\" array")?;
    let mut chains = Vec::new();
    for item in items {
        let Some(chain) = item.get("chain") else {
            continue;
        };
        if chain.get("hook").and_then(|h| h.as_str()) != Some("input") {
            continue;
        }
        let family = chain.get("family").and_then(|v| v.as_str()).unwrap_or("");
        let table = chain.get("table").and_then(|v| v.as_str()).unwrap_or("");
        let name = chain
            .get("name")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned();
        let rules = items
            .iter()
            .filter_map(|i| i.get("rule"))
            .filter(|r| {
                r.get("table").and_then(|v| v.as_str()) == Some(table)
                    && r.get("chain").and_then(|v| v.as_str()) == Some(name.as_str())
                    && r.get("family").and_then(|v| v.as_str()) == Some(family)
            })
            .count();
        chains.push(InputChain {
            table: format!("{family} {table}"),
            name,
            policy: chain
                .get("policy")
                .and_then(|v| v.as_str())
                .unwrap_or("accept")
                .to_owned(),
            rules,
        });
    }
    Ok(chains)
}

fn uid_of(user: &str) -> Option<u32> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == user).then(|| fields.nth(1)?.parse().ok())?
    })
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

fn pass(check: CheckId, summary: impl Into<String>, evidence: Vec<String>) -> CheckResult {
    result(check, CheckStatus::Pass, summary, evidence)
}

fn fail(check: CheckId, summary: impl Into<String>, evidence: Vec<String>) -> CheckResult {
    result(check, CheckStatus::Fail, summary, evidence)
}

fn unknown(check: CheckId, summary: impl Into<String>, evidence: Vec<String>) -> CheckResult {
    result(check, CheckStatus::Unknown, summary, evidence)
}

fn result(
    check: CheckId,
    status: CheckStatus,
    summary: impl Into<String>,
    evidence: Vec<String>,
) -> CheckResult {
    CheckResult {
        check,
        status,
        summary: summary.into(),
        evidence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_randomness_separates_generated_keys_from_patterns() {
        let generated = "kJ8dF3mN9pQ2wR5tY7uH0jK3lM6nP9qS2vT5wX8zA1b";
        assert!(
            estimated_bits(generated) > MIN_KEY_BITS,
            "a 43-character base64 key from the guide is strong enough"
        );
        assert!(
            estimated_bits(&"ab".repeat(20)) < MIN_KEY_BITS,
            "a long key of two repeated letters is not"
        );
        assert_eq!(estimated_bits(""), 0.0, "an empty key has no randomness");
    }

    #[test]
    fn backup_contents_are_told_apart_by_their_first_bytes() {
        assert_eq!(
            classify(b"SQLite format 3\0rest"),
            ContentKind::Sqlite,
            "a plain database is readable"
        );
        assert_eq!(
            classify(&[0x1f, 0x8b, 8, 0]),
            ContentKind::Gzip,
            "compression is not encryption"
        );
        assert_eq!(
            classify(&[0x85, 0x01, 0x0c]),
            ContentKind::OpenPgp,
            "gpg --encrypt opens with a public-key session packet"
        );
        assert_eq!(
            classify(&[0x8c, 0x0d, 0x04]),
            ContentKind::OpenPgp,
            "gpg --symmetric opens with a symmetric session packet"
        );
        assert_eq!(
            classify(&[0xc3, 0x2e, 0x05]),
            ContentKind::OpenPgp,
            "new packet format too"
        );
        assert_eq!(
            classify(b"Salted__12345678"),
            ContentKind::OpensslEnc,
            "openssl enc"
        );
        assert_eq!(
            classify(b"age-encryption.org/v1\n-> X25519"),
            ContentKind::Age,
            "age"
        );
        assert_eq!(
            classify(&b"plain text dump\n".repeat(64)),
            ContentKind::Other,
            "a text dump is readable"
        );
        let random: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert_eq!(
            classify(&random),
            ContentKind::Random,
            "ciphertext without a header looks random"
        );
    }

    #[test]
    fn hsts_max_age_is_read_from_any_position() {
        assert_eq!(
            hsts_max_age("max-age=31536000; includeSubDomains"),
            Some(31_536_000),
            "first"
        );
        assert_eq!(
            hsts_max_age("includeSubDomains; Max-Age=\"600\""),
            Some(600),
            "quoted, later, any case"
        );
        assert_eq!(
            hsts_max_age("includeSubDomains"),
            None,
            "no max-age means no HSTS"
        );
    }

    #[test]
    fn only_base_chains_on_the_input_hook_count() {
        let ruleset = br#"{"nftables":[{"metainfo":{"version":"1.0.6"}},
          {"table":{"family":"inet","name":"filter","handle":1}},
          {"chain":{"family":"inet","table":"filter","name":"input","handle":1,"type":"filter","hook":"input","prio":0,"policy":"drop"}},
          {"chain":{"family":"inet","table":"filter","name":"output","handle":2,"type":"filter","hook":"output","prio":0,"policy":"accept"}},
          {"rule":{"family":"inet","table":"filter","chain":"input","handle":3,"expr":[]}},
          {"rule":{"family":"inet","table":"filter","chain":"input","handle":4,"expr":[]}}]}"#;
        let chains = input_policy(ruleset).expect("a ruleset");
        assert_eq!(
            chains.len(),
            1,
            "the output chain is not about incoming traffic"
        );
        assert_eq!(chains[0].policy, "drop", "the policy is read");
        assert_eq!(chains[0].rules, 2, "the rules of that chain are counted");
        assert!(
            input_policy(br#"{"nftables":[]}"#)
                .expect("empty")
                .is_empty(),
            "an empty ruleset has no input chain"
        );
        assert!(
            input_policy(b"not json").is_err(),
            "garbage is an error, not a pass"
        );
    }
}
