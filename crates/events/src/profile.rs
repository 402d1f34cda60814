//! Service profiles: what Gatehouse knows about a kind of service, as data.
//!
//! The built-in profiles live in `profiles/*.toml` at the top of the repository and are
//! compiled in; an operator adds a service by writing another file with the same schema.

use std::path::Path;

use serde::Deserialize;

use crate::Format;

/// One service's profile. Unknown keys are errors: a typo must not silently drop a setting.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub default_port: u16,
    /// Whether several keys can be valid at once (rotation can overlap) or exactly one.
    pub multiple_keys: bool,
    #[serde(default)]
    pub config_files: Vec<ConfigFile>,
    #[serde(default)]
    pub env: Vec<EnvVar>,
    pub keys: KeyPolicy,
    pub auth: Auth,
    pub probes: Probes,
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    pub logs: Vec<LogSource>,
    pub restart: Restart,
    pub guides: Guides,
    /// The service's own database, where incident response can snapshot and restore it.
    #[serde(default)]
    pub database: Option<Database>,
}

/// `[database]`: a SQLite file, relative to the service's working directory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    pub path: String,
    /// Only `sqlite`: snapshots use SQLite's online backup, consistent while it runs.
    pub format: String,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigFormat {
    /// A key at the root of a TOML file (never inside a table).
    TomlRootKey,
    /// `KEY=value` lines.
    Dotenv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    ApiKey,
    JwtSecret,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub path: String,
    pub format: ConfigFormat,
    /// The one key holding the secret...
    #[serde(default)]
    pub key: Option<String>,
    /// ...or a prefix: every key starting with it is one (Jelmore's `API_KEY_*`).
    #[serde(default)]
    pub key_prefix: Option<String>,
    pub role: Role,
    /// The value the service uses when the key is absent: a published default, so a
    /// missing key is as bad as a default one.
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    pub name: String,
    pub role: Role,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPolicy {
    pub min_length: usize,
    /// How a generated key is written: `base64url` (unpadded) or `hex`.
    pub encoding: String,
    /// Defaults and published keys that must never be in use.
    #[serde(default)]
    pub known_weak: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    pub header: String,
    /// Prefix before the key in the header value, e.g. `Bearer ` (case-sensitive).
    pub scheme: String,
    #[serde(default)]
    pub missing: Option<Answer>,
    #[serde(default)]
    pub malformed: Option<Answer>,
    #[serde(default)]
    pub wrong: Option<Answer>,
    #[serde(default)]
    pub note: Option<String>,
}

/// What the service answers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probes {
    /// An endpoint that must refuse a missing or wrong key.
    pub protected: Probe,
    /// An endpoint that answers without a key (health).
    pub open: Probe,
    /// Data endpoints that answer without a key although they should not.
    #[serde(default)]
    pub unprotected_data: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub body: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSource {
    /// `service`, `access` or `proxy`: where in the chain the log is written.
    pub source: String,
    pub format: Format,
    pub path: String,
    /// The systemd unit whose journal holds these lines when the service runs as that unit
    /// (logging to standard output, as Sekha does): followed instead of `path` where the unit
    /// is installed.
    #[serde(default)]
    pub journal_unit: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Restart {
    pub command: Vec<String>,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guides {
    pub checklist: String,
    pub playbook: String,
}

/// A profile that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileError {
    pub name: String,
    pub message: String,
}

impl std::fmt::Display for ProfileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "profile {}: {}", self.name, self.message)
    }
}

impl std::error::Error for ProfileError {}

const BUILTIN: &[(&str, &str)] = &[
    ("sekha", include_str!("../../../profiles/sekha.toml")),
    ("rae", include_str!("../../../profiles/rae.toml")),
    ("jelmore", include_str!("../../../profiles/jelmore.toml")),
];

impl Profile {
    /// The names of the profiles compiled in.
    pub fn builtin_names() -> impl Iterator<Item = &'static str> {
        BUILTIN.iter().map(|(name, _)| *name)
    }

    /// A compiled-in profile by name.
    pub fn builtin(name: &str) -> Option<Result<Profile, ProfileError>> {
        BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, text)| Profile::parse(text, n))
    }

    /// A profile file written by an operator.
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ProfileError {
            name: name.clone(),
            message: e.to_string(),
        })?;
        Profile::parse(&text, &name)
    }

    /// Parse and check a profile's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Profile, ProfileError> {
        let error = |message: String| ProfileError {
            name: origin.to_owned(),
            message,
        };
        let profile: Profile = toml::from_str(text).map_err(|e| error(e.to_string()))?;
        for file in &profile.config_files {
            if file.key.is_some() == file.key_prefix.is_some() {
                return Err(error(format!(
                    "{}: give exactly one of key or key_prefix",
                    file.path
                )));
            }
        }
        if profile.logs.is_empty() {
            return Err(error("a profile needs at least one log source".into()));
        }
        if profile.restart.command.is_empty() {
            return Err(error("restart.command is empty".into()));
        }
        if !["base64url", "hex"].contains(&profile.keys.encoding.as_str()) {
            return Err(error(format!(
                "keys.encoding must be base64url or hex, not {}",
                profile.keys.encoding
            )));
        }
        Ok(profile)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin(name: &str) -> Profile {
        Profile::builtin(name).expect("compiled in").expect("valid")
    }

    #[test]
    fn every_builtin_profile_is_valid() {
        let names: Vec<_> = Profile::builtin_names().collect();
        assert_eq!(
            names,
            ["sekha", "rae", "jelmore"],
            "the three built-in profiles, in order"
        );
        for name in names {
            assert_eq!(builtin(name).name, name, "file and name agree");
        }
    }

    #[test]
    fn profiles_match_how_the_services_really_behave() {
        let sekha = builtin("sekha");
        assert!(!sekha.multiple_keys, "Sekha enforces exactly one key");
        assert_eq!(sekha.auth.scheme, "Bearer ", "case-sensitive Bearer prefix");
        assert!(
            sekha
                .keys
                .known_weak
                .contains(&"dev_default_key_change_me_1234567890".to_owned()),
            "Sekha's built-in default key is known as weak"
        );
        assert_eq!(
            sekha.config_files[0].format,
            ConfigFormat::TomlRootKey,
            "Sekha's key is a root-level TOML key"
        );
        assert!(
            sekha.env.iter().any(|e| e.name == "SEKHA__MCP_API_KEY"),
            "the double-underscore variable is the one that works"
        );
        assert!(
            sekha
                .probes
                .unprotected_data
                .iter()
                .any(|p| p.starts_with("/api/v1/")),
            "Sekha's open /api/v1 data endpoints are listed"
        );

        let rae = builtin("rae");
        assert!(
            rae.keys.known_weak.contains(&"secret".to_owned()),
            "RAE's default key"
        );
        assert_eq!(
            rae.auth.header, "X-API-Key",
            "RAE's key travels in X-API-Key"
        );
        assert!(
            rae.probes
                .unprotected_data
                .contains(&"/v2/memories".to_owned()),
            "RAE's /v2/memories is open even with auth on"
        );

        let jelmore = builtin("jelmore");
        assert!(jelmore.multiple_keys, "every API_KEY_* is valid at once");
        assert_eq!(
            jelmore.config_files[0].key_prefix.as_deref(),
            Some("API_KEY_"),
            "Jelmore's keys are the API_KEY_* family"
        );
        assert!(
            jelmore.keys.known_weak.contains(&"X-API-Key".to_owned()),
            "the literal header name bug"
        );
        assert_eq!(
            jelmore.probes.protected.path, "/api/v1/v1/sessions",
            "the doubled prefix"
        );
        assert!(
            jelmore
                .logs
                .iter()
                .any(|l| l.format == Format::UvicornAccess),
            "Jelmore's uvicorn access log is a source"
        );
    }

    #[test]
    fn mistakes_in_a_profile_are_named() {
        let sekha = include_str!("../../../profiles/sekha.toml");
        let typo = sekha.replace("multiple_keys", "multiple_key");
        let err = Profile::parse(&typo, "custom.toml").expect_err("unknown key");
        assert!(
            err.message.contains("multiple_key"),
            "multiple_keys misspelt is refused: {err}"
        );
        let both = sekha.replace(
            "key = \"mcp_api_key\"",
            "key = \"mcp_api_key\"\nkey_prefix = \"X\"",
        );
        let err = Profile::parse(&both, "custom.toml").expect_err("ambiguous key");
        assert!(
            err.message.contains("exactly one of key or key_prefix"),
            "a profile naming both key and key_prefix is refused with the rule: {err}"
        );
        let bad_format = sekha.replace("format = \"sekha_tracing\"", "format = \"syslog\"");
        assert!(
            Profile::parse(&bad_format, "custom.toml").is_err(),
            "unknown log format"
        );
    }
}
