//! Compliance checks the agent runs on its host and against its service, each answering
//! pass, fail or unknown with evidence a person can read. No check prints a secret: keys
//! are named by their variable and fingerprint.
//!
//! The probes only read: no check sends a request that changes data. The rate-limit burst
//! goes to the open health endpoint with a documentation-range `X-Forwarded-For`, so a
//! service that keys its limit on that header (Sekha) spends no real client's window on it.

mod backups;
mod files;
mod firewall;
mod http;
mod keys;
mod logs;
mod public;

use std::time::Duration;

use gatehouse_protocol::{CheckId, CheckResult, CheckStatus, ChecksReport, ChecksRequest};

use crate::config::{CheckPolicy, LogConfig};
use crate::error::ConfigError;
use crate::service::Service;

/// How long one probe request may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything a check needs to look at.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub service: Service<'a>,
    pub policy: &'a CheckPolicy,
    /// The logs the agent follows, or why there are none.
    pub logs: Result<&'a [LogConfig], &'a ConfigError>,
}

/// Run the requested checks, one after another (the burst must not overlap the auth probes,
/// or a limited service would answer them 429).
pub async fn run(cx: &Context<'_>, request: &ChecksRequest, now: i64) -> ChecksReport {
    let mut results = Vec::with_capacity(request.checks.len());
    let mut public: Option<public::PublicProbe> = None;
    for &check in &request.checks {
        let result = match check {
            CheckId::ConfigFileMode => files::modes(cx),
            CheckId::KeyStrength => keys::strength(cx),
            CheckId::DefaultKey => keys::defaults(cx),
            CheckId::TlsVersions | CheckId::TlsCertificate | CheckId::Hsts | CheckId::Cors => {
                if public.is_none() {
                    public = Some(public::probe(cx).await);
                }
                match &public {
                    Some(p) => p.result(check, request.tls_minimum, now),
                    None => unknown(check, "the public endpoint was not probed", vec![]),
                }
            }
            CheckId::AuthRefuses => http::auth_refuses(cx).await,
            CheckId::BearerBypass => http::bearer_bypass(cx).await,
            CheckId::DataEndpointsProtected => http::data_endpoints(cx).await,
            CheckId::RateLimit => http::rate_limit(cx).await,
            CheckId::AccessLogRecent => logs::access_log(cx, now),
            CheckId::Backups => backups::recent_and_encrypted(cx, now),
            CheckId::Firewall => firewall::input_policy_drops(cx).await,
        };
        results.push(result);
    }
    ChecksReport {
        results,
        checked_at: now,
    }
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
        fixes: Vec::new(),
    }
}
