//! The config resolved once at start: the profile parsed, the logs chosen, every default
//! applied. Subsystems get their own part and never look at the file config or re-read the
//! profile on a request.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gatehouse_events::Profile;

use super::file::{profile_logs, AgentConfig, LogConfig};
use crate::error::ConfigError;

/// How long the service has to answer its health check after a restart, by default.
const RESTART_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest a restart may be given, whatever the config says.
const RESTART_TIMEOUT_MAX: Duration = Duration::from_secs(3600);
/// How old the newest backup may be, by default: a daily backup and a spare.
const BACKUP_MAX_AGE_HOURS: u64 = 48;
/// Requests the rate-limit check sends in its burst, by default, and at most.
const RATE_LIMIT_BURST: u32 = 150;
const RATE_LIMIT_BURST_MAX: u32 = 1000;

/// Everything the agent runs with, resolved from an [`AgentConfig`].
#[derive(Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    /// The profile's name as configured (what `/v1/info` reports).
    pub profile_name: String,
    pub state_dir: PathBuf,
    pub buffer_capacity: u64,
    /// The parsed profile. An unknown one does not stop the agent (it can still follow the
    /// logs it is given and answer the console); each request that needs it says why not.
    profile: Result<Arc<Profile>, ConfigError>,
    /// The config's `[[logs]]`, else the profile's sources (empty if there is no profile).
    logs: Vec<LogConfig>,
    /// `logs` are the profile's defaults, not the config's own.
    logs_from_profile: bool,
    /// The restart command is the profile's default, not the config's own.
    restart_from_profile: bool,
    pub service: ServiceSettings,
    pub firewall: FirewallPolicy,
    pub checks: CheckPolicy,
}

/// How to reach, find and restart the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSettings {
    /// Its open health endpoint as configured (`service_url`): its origin is where the
    /// profile's endpoints are.
    pub url: Option<String>,
    /// What says the service's API answers: the profile's liveness probe at the origin of
    /// `service_url`, or `service_url` itself when the profile names none.
    pub liveness: Option<Liveness>,
    /// The logs the service itself writes (source `service`): where a restart looks for what
    /// the service said when it did not come back.
    pub output_logs: Vec<PathBuf>,
    /// Its working directory, where the profile's config files are.
    pub dir: Option<PathBuf>,
    /// The config's restart command, else the profile's.
    pub restart_command: Vec<String>,
    /// How long a restart may take to answer the health check again (capped at an hour).
    pub restart_timeout: Duration,
    /// The account the service runs as (`[checks] service_user`); without one, the owner of
    /// the service's files.
    pub user: Option<String>,
}

/// A request that says whether the service's API answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Liveness {
    pub method: String,
    pub url: String,
    pub body: Option<String>,
}

impl Liveness {
    /// The profile's liveness probe at the origin of `service_url`, or else `service_url`.
    fn resolve(url: Option<&str>, profile: Option<&Profile>) -> Option<Liveness> {
        let url = url?;
        let probe = profile.and_then(|p| p.probes.liveness.as_ref());
        let origin = reqwest::Url::parse(url)
            .ok()
            .map(|u| u.origin().ascii_serialization())
            .filter(|o| o != "null");
        match (probe, origin) {
            (Some(probe), Some(origin)) => Some(Liveness {
                method: probe.method.clone(),
                url: format!("{origin}{}", probe.path),
                body: probe.body.clone(),
            }),
            _ => Some(Liveness {
                method: "GET".into(),
                url: url.to_owned(),
                body: None,
            }),
        }
    }
}

/// How addresses are blocked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallPolicy {
    /// How to run nft.
    pub nft_command: Vec<String>,
    /// Addresses and networks never blocked, added to the console's own allowlist.
    pub never_block: Vec<String>,
}

/// What the compliance checks look at beyond the profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckPolicy {
    pub public_url: Option<String>,
    pub service_user: Option<String>,
    pub backup_dir: Option<PathBuf>,
    pub backup_max_age: Duration,
    /// The command that prints the ruleset as JSON (may be empty, which the check reports).
    pub firewall_command: Vec<String>,
    /// Requests in the rate-limit burst, 1 to 1000.
    pub rate_limit_burst: u32,
}

impl Settings {
    /// Parse the profile and apply every default, once.
    pub fn resolve(config: &AgentConfig) -> Settings {
        let profile = config.service_profile().map(Arc::new);
        let logs = if !config.logs.is_empty() {
            config.logs.clone()
        } else {
            profile.as_deref().map(profile_logs).unwrap_or_default()
        };
        // An operator-written profile may name a path no file can have (a NUL byte): such a
        // log is not followed, and so never reported.
        let logs = logs
            .into_iter()
            .filter(|log| {
                let named = log.path().is_none_or(crate::fsutil::is_file_name);
                if !named {
                    tracing::error!(
                        path = ?log.path(),
                        "a log path with a NUL byte or none at all is not followed"
                    );
                }
                named
            })
            .map(|mut log| {
                // What counts as a failed sign-in is the service's, whichever file says
                // where its logs are.
                if let Ok(profile) = &profile {
                    log.sign_ins = profile.auth.sign_ins();
                    // A key presented in the URL is in every access line that logs it.
                    log.redact_query = profile.auth.query.clone();
                }
                log
            })
            .collect::<Vec<_>>();
        let restart_command = match (&config.restart_command, &profile) {
            (Some(command), _) => command.clone(),
            (None, Ok(profile)) => profile.restart.command.clone(),
            (None, Err(_)) => Vec::new(),
        };
        let logs_from_profile = config.logs.is_empty();
        let restart_from_profile = config.restart_command.is_none();
        let checks = &config.checks;
        let liveness = Liveness::resolve(config.service_url.as_deref(), profile.as_deref().ok());
        let output_logs = logs
            .iter()
            .filter(|log| log.source == gatehouse_events::Source::Service)
            .filter_map(|log| log.path().map(Path::to_path_buf))
            .collect();
        Settings {
            listen: config.listen,
            profile_name: config.profile.clone(),
            state_dir: config.state_dir.clone(),
            buffer_capacity: config.buffer_capacity,
            profile,
            logs,
            logs_from_profile,
            restart_from_profile,
            service: ServiceSettings {
                url: config.service_url.clone(),
                liveness,
                output_logs,
                dir: config.service_dir.clone(),
                restart_command,
                restart_timeout: config
                    .restart_timeout_secs
                    .map_or(RESTART_TIMEOUT, Duration::from_secs)
                    .min(RESTART_TIMEOUT_MAX),
                user: checks.service_user.clone(),
            },
            firewall: FirewallPolicy {
                nft_command: config
                    .firewall
                    .nft_command
                    .clone()
                    .unwrap_or_else(|| vec!["nft".into()]),
                never_block: config.firewall.never_block.clone(),
            },
            checks: CheckPolicy {
                public_url: checks.public_url.clone(),
                service_user: checks.service_user.clone(),
                backup_dir: checks.backup_dir.clone(),
                backup_max_age: Duration::from_secs(
                    3600u64.saturating_mul(
                        checks.backup_max_age_hours.unwrap_or(BACKUP_MAX_AGE_HOURS),
                    ),
                ),
                firewall_command: checks.firewall_command.clone().unwrap_or_else(|| {
                    ["nft", "-j", "list", "ruleset"].map(str::to_owned).to_vec()
                }),
                rate_limit_burst: checks
                    .rate_limit_burst
                    .unwrap_or(RATE_LIMIT_BURST)
                    .clamp(1, RATE_LIMIT_BURST_MAX),
            },
        }
    }

    /// The service's profile, or why there is none.
    pub fn profile(&self) -> Result<&Profile, &ConfigError> {
        self.profile.as_deref()
    }

    /// What in this config will not work as it stands, for `check-config` to say: a log that
    /// does not exist (most often a profile's default path, which is only a guess at where the
    /// service writes), and a default `systemctl restart` of a unit the service does not ship.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        for log in &self.logs {
            let Some(path) = log.path() else { continue };
            if std::fs::symlink_metadata(path).is_err() {
                warnings.push(format!(
                    "{} ({}) does not exist{}",
                    path.display(),
                    log.source,
                    if self.logs_from_profile {
                        ": it is the profile's default; add [[logs]] naming where the service and its proxy really write"
                    } else {
                        ""
                    }
                ));
            }
        }
        if let (true, Ok(profile)) = (self.restart_from_profile, &self.profile) {
            if !profile.restart.unit_shipped {
                warnings.push(format!(
                    "the restart command `{}` is the profile's default: {} ships no such unit, so it works only if you wrote one; otherwise set restart_command",
                    profile.restart.command.join(" "),
                    profile.display_name
                ));
            }
        }
        if self.service.url.is_none() {
            warnings.push(
                "no service_url: the service's health, restarts and the probes cannot be checked"
                    .into(),
            );
        }
        warnings
    }

    /// The logs to follow, or why there are none: no `[[logs]]` and no profile to ask.
    pub fn logs(&self) -> Result<&[LogConfig], &ConfigError> {
        match &self.profile {
            Err(e) if self.logs.is_empty() => Err(e),
            _ => Ok(&self.logs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_applied_once_and_limits_hold() {
        let mut config = AgentConfig::for_test(PathBuf::from("/x"));
        config.restart_timeout_secs = Some(86_400);
        config.checks.rate_limit_burst = Some(0);
        let settings = Settings::resolve(&config);
        assert_eq!(
            settings.service.restart_command,
            ["systemctl", "restart", "sekha"],
            "the profile's restart command without one in the config"
        );
        assert_eq!(
            settings.service.restart_timeout, RESTART_TIMEOUT_MAX,
            "a restart is given an hour at most"
        );
        assert_eq!(
            settings.checks.rate_limit_burst, 1,
            "a burst sends at least one request"
        );
        assert_eq!(
            settings.checks.backup_max_age,
            Duration::from_secs(48 * 3600),
            "two days by default"
        );
        assert_eq!(settings.firewall.nft_command, ["nft"], "nft from PATH");
        assert_eq!(
            settings.logs().expect("sekha is built in").len(),
            config.effective_logs().expect("sekha is built in").len(),
            "the profile's log sources"
        );
    }

    #[test]
    fn liveness_is_the_profile_s_probe_at_the_service_s_origin() {
        let sekha = Settings::resolve(
            &AgentConfig::for_test(PathBuf::from("/x"))
                .with_service_url("http://127.0.0.1:8080/health"),
        );
        assert_eq!(
            sekha.service.liveness.as_ref().map(|l| l.url.as_str()),
            Some("http://127.0.0.1:8080/metrics"),
            "Sekha's /health is 503 without Chroma: its liveness is /metrics"
        );
        let custom = Settings::resolve(
            &AgentConfig::for_test(PathBuf::from("/x"))
                .with_profile("nosuch")
                .with_service_url("http://127.0.0.1:9/ping"),
        );
        assert_eq!(
            custom.service.liveness.map(|l| l.url),
            Some("http://127.0.0.1:9/ping".to_owned()),
            "without a profile, service_url is asked as it is"
        );
    }

    #[test]
    fn an_unknown_profile_is_kept_as_the_reason_and_given_logs_still_followed() {
        let config = AgentConfig::for_test(PathBuf::from("/x")).with_profile("nosuch");
        let settings = Settings::resolve(&config);
        assert_eq!(
            settings.profile().expect_err("no such profile").code(),
            "config_unknown_profile",
            "the reason is kept for the requests that need a profile"
        );
        assert!(
            settings.logs().is_err(),
            "and without [[logs]] there is nothing to follow"
        );
        let logs = vec![LogConfig::file(
            "/var/log/x.log",
            gatehouse_events::Format::NginxCombined,
            gatehouse_events::Source::Proxy,
        )];
        let settings = Settings::resolve(&config.with_logs(logs.clone()));
        assert_eq!(
            settings.logs().expect("given logs"),
            logs.as_slice(),
            "the config's own logs need no profile"
        );
    }
}
