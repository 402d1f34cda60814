//! The config file as written: `AgentConfig` and its tables, exactly what serde reads.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use gatehouse_events::profile::SignIns;
use gatehouse_events::{LineFormat, Source};
use serde::Deserialize;

use crate::error::ConfigError;

/// `/etc/gatehouse-agent/agent.toml`, for example:
///
/// ```toml
/// listen = "0.0.0.0:7443"
/// profile = "sekha"
/// state_dir = "/var/lib/gatehouse-agent"
/// service_url = "http://127.0.0.1:8080/health"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Address the mTLS API listens on.
    pub listen: SocketAddr,
    /// Which service profile this agent runs beside (sekha, rae, jelmore, jupyter, or a custom one).
    pub profile: String,
    /// Where the agent keeps its key, certificates and event buffer.
    pub state_dir: PathBuf,
    /// The service's open health endpoint, probed for `/v1/info`.
    #[serde(default)]
    pub service_url: Option<String>,
    /// Logs to follow (`[[logs]]` tables: path, format, source). Without any, the profile's
    /// log sources are followed.
    #[serde(default)]
    pub logs: Vec<LogConfig>,
    /// The service's working directory: the profile's config files (`config.toml`, `.env`)
    /// are read relative to it, for the credential inventory.
    #[serde(default)]
    pub service_dir: Option<PathBuf>,
    /// The command that restarts the service (default: the profile's, such as
    /// `systemctl restart sekha`).
    #[serde(default)]
    pub restart_command: Option<Vec<String>>,
    /// How long the service has to answer its health check after a restart (default 60 s).
    #[serde(default)]
    pub restart_timeout_secs: Option<u64>,
    /// Where operator-written profiles (`<name>.toml`) live, for services beyond the built-in
    /// ones.
    #[serde(default)]
    pub profiles_dir: Option<PathBuf>,
    /// What the compliance checks look at (`[checks]`).
    #[serde(default)]
    pub checks: CheckSettings,
    /// How the agent blocks addresses (`[firewall]`).
    #[serde(default)]
    pub firewall: FirewallSettings,
    /// Most events the buffer holds before it drops the oldest (with a gap marker).
    #[serde(default = "default_capacity")]
    pub buffer_capacity: u64,
}

/// One log the agent follows (`[[logs]]`): a file (`path`) or what a systemd unit's
/// processes wrote to the journal (`journal_unit`), each line parsed with `format`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "LogTable")]
pub struct LogConfig {
    pub origin: LogOrigin,
    /// A built-in format, or a pattern (`format = "pattern"` with `pattern` and
    /// `time_format`), compiled when the config is read.
    pub format: LineFormat,
    /// `service`, `access` or `proxy`.
    pub source: Source,
    /// Which statuses are failed sign-ins where `format` decides by status: the profile's
    /// (`[auth]` answers), set when the settings are resolved; 401 and 403 without one.
    pub sign_ins: SignIns,
    /// The query parameter the service takes its key in (`[auth] query`): its value is
    /// written `[redacted]` in every line read, before anything else sees the line.
    pub redact_query: Option<String>,
}

/// Where a log's lines come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogOrigin {
    /// A file, followed across rotation (`tail.rs`).
    File(PathBuf),
    /// The journal entries a systemd unit's own processes wrote (`journal.rs`).
    Journal(JournalUnit),
}

/// A systemd unit name, checked: the characters systemd allows in one, a type suffix
/// (`.service` is added to a bare name), never starting with `-` (it is passed to
/// `journalctl` as part of a match, but no argument of the agent's may look like an option).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JournalUnit(String);

impl JournalUnit {
    pub fn parse(name: &str) -> Result<JournalUnit, String> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || ":_.\\@-".contains(c);
        if name.is_empty()
            || name.len() > 255
            || name.starts_with(['-', '.'])
            || !name.chars().all(allowed)
        {
            return Err(format!(
                "{name:?} is not a systemd unit name (letters, digits and :_.\\@- only, at most 255)"
            ));
        }
        const TYPES: [&str; 11] = [
            ".service",
            ".socket",
            ".target",
            ".device",
            ".mount",
            ".automount",
            ".swap",
            ".path",
            ".timer",
            ".slice",
            ".scope",
        ];
        if TYPES
            .iter()
            .any(|t| name.ends_with(t) && name.len() > t.len())
        {
            Ok(JournalUnit(name.to_owned()))
        } else if name.contains('.') {
            Err(format!(
                "{name:?} does not end in a unit type such as .service"
            ))
        } else {
            Ok(JournalUnit(format!("{name}.service")))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for JournalUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `[[logs]]` as written: exactly one of `path` and `journal_unit`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogTable {
    #[serde(default)]
    path: Option<PathBuf>,
    #[serde(default)]
    journal_unit: Option<String>,
    format: String,
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default)]
    time_format: Option<String>,
    source: String,
}

impl TryFrom<LogTable> for LogConfig {
    type Error = String;

    fn try_from(table: LogTable) -> Result<Self, String> {
        let origin = match (table.path, table.journal_unit) {
            (Some(path), None) => LogOrigin::File(path),
            (None, Some(unit)) => LogOrigin::Journal(JournalUnit::parse(&unit)?),
            (Some(_), Some(_)) => {
                return Err("a [[logs]] entry names either `path` or `journal_unit`, not both".into())
            }
            (None, None) => {
                return Err("a [[logs]] entry needs `path` (a file) or `journal_unit` (a systemd unit's journal)".into())
            }
        };
        let format = LineFormat::from_parts(
            &table.format,
            table.pattern.as_deref(),
            table.time_format.as_deref(),
        )?;
        Ok(LogConfig {
            origin,
            format,
            source: Source::for_log(&table.source)?,
            sign_ins: SignIns::default(),
            redact_query: None,
        })
    }
}

impl LogConfig {
    /// A log file.
    pub fn file(path: impl Into<PathBuf>, format: impl Into<LineFormat>, source: Source) -> Self {
        LogConfig {
            origin: LogOrigin::File(path.into()),
            format: format.into(),
            source,
            sign_ins: SignIns::default(),
            redact_query: None,
        }
    }

    /// A unit's journal.
    pub fn journal(unit: JournalUnit, format: impl Into<LineFormat>, source: Source) -> Self {
        LogConfig {
            origin: LogOrigin::Journal(unit),
            format: format.into(),
            source,
            sign_ins: SignIns::default(),
            redact_query: None,
        }
    }

    /// The file, if the log is one.
    pub fn path(&self) -> Option<&Path> {
        match &self.origin {
            LogOrigin::File(path) => Some(path),
            LogOrigin::Journal(_) => None,
        }
    }

    /// The unit, if the log is its journal.
    pub fn journal_unit(&self) -> Option<&JournalUnit> {
        match &self.origin {
            LogOrigin::Journal(unit) => Some(unit),
            LogOrigin::File(_) => None,
        }
    }

    /// How the log is named in reports and where its position is kept: the file's path, or
    /// `journal:<unit>`.
    pub fn name(&self) -> String {
        match &self.origin {
            LogOrigin::File(path) => path.display().to_string(),
            LogOrigin::Journal(unit) => format!("journal:{unit}"),
        }
    }
}

/// `[firewall]`: blocking addresses with nftables (the agent needs `CAP_NET_ADMIN`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirewallSettings {
    /// How to run nft (default `["nft"]`).
    #[serde(default)]
    pub nft_command: Option<Vec<String>>,
    /// Addresses and networks never blocked, whatever the console asks.
    #[serde(default)]
    pub never_block: Vec<String>,
}

/// `[checks]`: where the compliance checks look, beyond what the profile says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSettings {
    /// The service's public address as clients reach it (usually the reverse proxy, for
    /// example `https://sekha.example.org/`), for the TLS, HSTS and CORS checks.
    #[serde(default)]
    pub public_url: Option<String>,
    /// The account the service runs as: its config files must belong to it.
    #[serde(default)]
    pub service_user: Option<String>,
    /// Where the service's backups are written, for the backup check.
    #[serde(default)]
    pub backup_dir: Option<PathBuf>,
    /// How old the newest backup may be, in hours (default 48: a daily backup and a spare).
    #[serde(default)]
    pub backup_max_age_hours: Option<u64>,
    /// The command that prints the firewall ruleset as JSON (default `nft -j list ruleset`).
    #[serde(default)]
    pub firewall_command: Option<Vec<String>>,
    /// Most requests the rate-limit check sends in its burst (default 150).
    #[serde(default)]
    pub rate_limit_burst: Option<u32>,
}

fn default_capacity() -> u64 {
    2_000_000
}

/// Where systemd looks for unit files, most specific first.
const UNIT_DIRS: [&str; 5] = [
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// The log sources a profile names. A source with a `journal_unit` is that unit's journal
/// when the unit is installed (the service runs under systemd and logs to its journal), and
/// its file otherwise.
pub(super) fn profile_logs(profile: &gatehouse_events::Profile) -> Vec<LogConfig> {
    profile_logs_with(profile, |unit| {
        UNIT_DIRS.iter().any(|dir| {
            Path::new(dir)
                .join(unit.as_str())
                .symlink_metadata()
                .is_ok()
        })
    })
}

fn profile_logs_with(
    profile: &gatehouse_events::Profile,
    installed: impl Fn(&JournalUnit) -> bool,
) -> Vec<LogConfig> {
    profile
        .logs
        .iter()
        .map(|log| {
            let unit = log
                .journal_unit
                .as_deref()
                .and_then(|u| JournalUnit::parse(u).ok())
                .filter(&installed);
            match unit {
                Some(unit) => LogConfig::journal(unit, log.format.clone(), log.source),
                None => LogConfig::file(&log.path, log.format.clone(), log.source),
            }
        })
        .collect()
}

impl AgentConfig {
    /// A config for tests: listening on a free loopback port, beside Sekha, defaults
    /// elsewhere (as a file naming only `listen`, `profile` and `state_dir` would give).
    pub fn for_test(state_dir: PathBuf) -> AgentConfig {
        AgentConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            profile: "sekha".into(),
            state_dir,
            service_url: None,
            logs: Vec::new(),
            service_dir: None,
            restart_command: None,
            restart_timeout_secs: None,
            profiles_dir: None,
            checks: CheckSettings::default(),
            firewall: FirewallSettings::default(),
            buffer_capacity: default_capacity(),
        }
    }

    pub fn with_profile(mut self, profile: impl Into<String>) -> Self {
        self.profile = profile.into();
        self
    }

    /// The service's health endpoint (`service_url`).
    pub fn with_service_url(mut self, url: impl Into<String>) -> Self {
        self.service_url = Some(url.into());
        self
    }

    /// The service's working directory (`service_dir`).
    pub fn with_service_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.service_dir = Some(dir.into());
        self
    }

    /// How the service is restarted, and how long it has to answer again.
    pub fn with_restart(mut self, command: Vec<String>, timeout_secs: u64) -> Self {
        self.restart_command = Some(command);
        self.restart_timeout_secs = Some(timeout_secs);
        self
    }

    pub fn with_logs(mut self, logs: Vec<LogConfig>) -> Self {
        self.logs = logs;
        self
    }

    pub fn with_checks(mut self, checks: CheckSettings) -> Self {
        self.checks = checks;
        self
    }

    pub fn with_firewall(mut self, firewall: FirewallSettings) -> Self {
        self.firewall = firewall;
        self
    }

    /// The service profile: an operator-written one in `profiles_dir`, else the built-in one.
    /// Parsed once at start, by [`Settings::resolve`](super::Settings::resolve).
    pub fn service_profile(&self) -> Result<gatehouse_events::Profile, ConfigError> {
        let unknown = |detail: String| ConfigError::UnknownProfile {
            profile: self.profile.clone(),
            detail,
        };
        let custom = self
            .profiles_dir
            .as_ref()
            .map(|dir| dir.join(format!("{}.toml", self.profile)))
            .filter(|path| path.is_file());
        match custom {
            Some(path) => {
                gatehouse_events::Profile::load(&path).map_err(|e| ConfigError::ProfileFile {
                    detail: e.message,
                    path,
                })
            }
            None => gatehouse_events::Profile::builtin(&self.profile)
                .ok_or_else(|| unknown("no such built-in profile".into()))?
                .map_err(|e| unknown(e.to_string())),
        }
    }

    /// The logs to follow: the config's own `[[logs]]`, or else its profile's log sources
    /// (an operator-written profile in `profiles_dir` first, then the built-in one).
    pub fn effective_logs(&self) -> Result<Vec<LogConfig>, ConfigError> {
        if !self.logs.is_empty() {
            return Ok(self.logs.clone());
        }
        Ok(profile_logs(&self.service_profile()?))
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = crate::fsutil::read_text(path, crate::fsutil::CONFIG_MAX).map_err(|source| {
            ConfigError::Read {
                path: path.to_owned(),
                source,
            }
        })?;
        Self::parse(&text, path)
    }

    /// The first path field that cannot name a file (a NUL byte, or nothing at all).
    fn unnamable_path(&self) -> Option<String> {
        let named = |p: &Path| crate::fsutil::is_file_name(p);
        if !named(&self.state_dir) {
            return Some("state_dir".into());
        }
        for (field, path) in [
            ("service_dir", &self.service_dir),
            ("profiles_dir", &self.profiles_dir),
            ("checks.backup_dir", &self.checks.backup_dir),
        ] {
            if path.as_deref().is_some_and(|p| !named(p)) {
                return Some(field.into());
            }
        }
        self.logs
            .iter()
            .position(|log| log.path().is_some_and(|p| !named(p)))
            .map(|i| format!("logs[{i}].path"))
    }

    /// Parse config text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: AgentConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
        if let Some(field) = config.unnamable_path() {
            return Err(ConfigError::Parse {
                path: path.to_owned(),
                detail: format!("{field} holds a NUL byte or is empty: no file can have that name"),
            });
        }
        let valid_name = !config.profile.is_empty()
            && config
                .profile
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_name {
            return Err(ConfigError::BadProfile {
                path: path.to_owned(),
                profile: config.profile,
            });
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_events::{Format, Kind, Outcome};

    #[test]
    fn parses_a_minimal_config() {
        let config = AgentConfig::parse(
            "listen = \"127.0.0.1:7443\"\nprofile = \"sekha\"\nstate_dir = \"/var/lib/gh\"\n",
            Path::new("agent.toml"),
        )
        .expect("valid config parses");
        assert_eq!(config.listen.port(), 7443, "listen address is kept");
        assert_eq!(config.profile, "sekha", "the profile name is kept");
    }

    #[test]
    fn unknown_keys_are_errors_not_ignored() {
        // Sekha's own config silently ignores misplaced keys; ours refuses them.
        let err = AgentConfig::parse(
            "listen = \"127.0.0.1:7443\"\nprofile = \"sekha\"\nstate_dir = \"/x\"\nlisten_port = 1\n",
            Path::new("agent.toml"),
        )
        .expect_err("a typo must not be ignored");
        assert_eq!(err.code(), "config_invalid", "a typo is a config error");
        assert!(
            err.to_string().contains("listen_port"),
            "names the bad key: {err}"
        );
    }

    #[test]
    fn a_log_source_is_one_of_the_three_words_and_a_wrong_one_is_named() {
        let config = |source: &str| {
            AgentConfig::parse(
                &format!(
                    "listen = \"127.0.0.1:7443\"\nprofile = \"sekha\"\nstate_dir = \"/x\"\n\n\
                     [[logs]]\npath = \"/var/log/nginx/access.log\"\nformat = \"nginx_combined\"\n\
                     source = \"{source}\"\n"
                ),
                Path::new("agent.toml"),
            )
        };
        let proxy = config("proxy").expect("proxy is a log source");
        assert_eq!(
            proxy.logs.first().map(|l| l.source),
            Some(Source::Proxy),
            "the word is read as the source it names"
        );
        let typo = config("nginx").expect_err("a word that names no source");
        assert!(
            typo.to_string()
                .contains("\"nginx\" is not one of proxy, access or service"),
            "the wrong word and the right ones are named: {typo}"
        );
        let own = config("console").expect_err("a log cannot pass for the console's own events");
        assert!(
            own.to_string().contains("for Gatehouse's own events"),
            "says why the console's word is refused: {own}"
        );
    }

    #[test]
    fn without_logs_the_profile_says_what_to_follow() {
        let config = AgentConfig::parse(
            "listen = \"127.0.0.1:7443\"\nprofile = \"rae\"\nstate_dir = \"/x\"\n",
            Path::new("agent.toml"),
        )
        .expect("parses");
        let logs = config.effective_logs().expect("rae is built in");
        let formats: Vec<_> = logs.iter().map(|l| l.format.clone()).collect();
        assert_eq!(
            formats,
            [Format::Structlog, Format::NginxJson],
            "RAE's service log and its proxy's JSON log"
        );
    }

    #[test]
    fn a_log_in_a_format_of_its_own_is_read_by_its_pattern() {
        let text = r#"listen = "127.0.0.1:7443"
profile = "memo"
state_dir = "/x"

[[logs]]
path = "/srv/memo/auth.log"
format = "pattern"
pattern = '^\[(?P<time>[^\]]+)\] (?P<outcome>\w+) key=(?P<key_prefix>\w+) ip=(?P<ip>\S+)$'
time_format = "nginx"
source = "service"
"#;
        let config = AgentConfig::parse(text, Path::new("agent.toml")).expect("parses");
        let logs = config.effective_logs().expect("its own [[logs]]");
        assert_eq!(logs[0].format.name(), "pattern", "the pattern format");
        let parsed = logs[0]
            .format
            .parse(b"[23/Nov/2026:02:41:57 +0000] refused key=sk_live ip=203.0.113.7")
            .expect("the compiled pattern reads the service's line");
        assert_eq!(
            (parsed.kind, parsed.outcome, parsed.ip.as_deref()),
            (Kind::Auth, Outcome::Failure, Some("203.0.113.7")),
            "a refused key from its address: {parsed:?}"
        );
        let unknown = text.replace("(?P<outcome>", "(?P<verdict>");
        let err = AgentConfig::parse(&unknown, Path::new("agent.toml")).expect_err("refused");
        assert!(
            err.to_string().contains("\"verdict\""),
            "an unknown capture refuses the config, by name: {err}"
        );
    }

    #[test]
    fn an_operator_written_profile_is_used_and_an_unknown_one_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let custom = include_str!("../../../../profiles/sekha.toml")
            .replace("name = \"sekha\"", "name = \"memo\"")
            .replace("/var/log/sekha/sekha.log", "/srv/memo/memo.log")
            .replace("journal_unit = \"sekha.service\"\n", "");
        std::fs::write(dir.path().join("memo.toml"), custom).expect("write profile");
        let text = format!(
            "listen = \"127.0.0.1:7443\"\nprofile = \"memo\"\nstate_dir = \"/x\"\nprofiles_dir = \"{}\"\n",
            dir.path().display()
        );
        let config = AgentConfig::parse(&text, Path::new("agent.toml")).expect("parses");
        let logs = config
            .effective_logs()
            .expect("the custom profile is found");
        assert_eq!(
            logs[0].path(),
            Some(Path::new("/srv/memo/memo.log")),
            "its own log path"
        );
        let unknown = AgentConfig::parse(
            "listen = \"127.0.0.1:7443\"\nprofile = \"nosuch\"\nstate_dir = \"/x\"\n",
            Path::new("agent.toml"),
        )
        .expect("parses");
        let err = unknown.effective_logs().expect_err("nothing to follow");
        assert_eq!(
            err.code(),
            "config_unknown_profile",
            "an unknown profile without [[logs]] is refused: {err}"
        );
        std::fs::write(
            dir.path().join("memo.toml"),
            "name = \"memo\"\nmultiple_keys = maybe\n",
        )
        .expect("write a broken profile");
        let err = config
            .effective_logs()
            .expect_err("a profile file that does not parse");
        let text = err.to_string();
        assert!(
            text.contains("memo.toml: the profile cannot be read")
                && !text.contains("neither built in"),
            "a profile file that is there but wrong is named with its error, not called missing: {text}"
        );
    }

    #[test]
    fn the_test_config_is_what_a_minimal_file_gives() {
        let parsed = AgentConfig::parse(
            "listen = \"127.0.0.1:0\"\nprofile = \"sekha\"\nstate_dir = \"/x\"\n",
            Path::new("agent.toml"),
        )
        .expect("parses");
        assert_eq!(
            AgentConfig::for_test(PathBuf::from("/x")),
            parsed,
            "for_test adds nothing a file would not say"
        );
    }

    #[test]
    fn a_log_is_a_file_or_a_unit_s_journal_never_both_nor_neither() {
        let base = "listen = \"127.0.0.1:7443\"\nprofile = \"sekha\"\nstate_dir = \"/x\"\n";
        let journal = AgentConfig::parse(
            &format!("{base}[[logs]]\njournal_unit = \"sekha\"\nformat = \"sekha_tracing\"\nsource = \"service\"\n"),
            Path::new("agent.toml"),
        )
        .expect("a journal log parses");
        assert_eq!(
            journal.logs[0].journal_unit().map(JournalUnit::as_str),
            Some("sekha.service"),
            "a bare unit name is a service"
        );
        assert_eq!(
            journal.logs[0].name(),
            "journal:sekha.service",
            "its name in reports"
        );
        for (case, table) in [
            ("both", "path = \"/x.log\"\njournal_unit = \"a.service\"\n"),
            ("neither", ""),
            ("an option", "journal_unit = \"--all\"\n"),
            ("a match", "journal_unit = \"a.service _UID=0\"\n"),
            ("no unit type", "journal_unit = \"a.txt\"\n"),
        ] {
            let text = format!(
                "{base}[[logs]]\n{table}format = \"sekha_tracing\"\nsource = \"service\"\n"
            );
            let err = AgentConfig::parse(&text, Path::new("agent.toml")).expect_err("refused");
            assert_eq!(
                err.code(),
                "config_invalid",
                "{case}: a config error: {err}"
            );
        }
    }

    #[test]
    fn a_profile_s_log_is_its_unit_s_journal_where_the_unit_is_installed() {
        let profile = gatehouse_events::Profile::builtin("sekha")
            .expect("built in")
            .expect("parses");
        let installed = profile_logs_with(&profile, |unit| unit.as_str() == "sekha.service");
        assert_eq!(
            installed[0].journal_unit().map(JournalUnit::as_str),
            Some("sekha.service"),
            "Sekha run as a unit logs to its journal"
        );
        assert_eq!(
            installed[1].path(),
            Some(Path::new("/var/log/nginx/sekha.access.log")),
            "its proxy still logs to a file"
        );
        let not = profile_logs_with(&profile, |_| false);
        assert_eq!(
            not[0].path(),
            Some(Path::new("/var/log/sekha/sekha.log")),
            "without the unit, the file"
        );
    }

    #[test]
    fn profile_names_cannot_escape_the_profile_directory() {
        let err = AgentConfig::parse(
            "listen = \"127.0.0.1:7443\"\nprofile = \"../etc\"\nstate_dir = \"/x\"\n",
            Path::new("agent.toml"),
        )
        .expect_err("a path in the profile name must be refused");
        assert_eq!(
            err.code(),
            "config_bad_profile",
            "the profile name is refused for its characters"
        );
    }
}
