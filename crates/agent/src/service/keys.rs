//! The keys the service uses, and where each one comes from. A key is where the service reads
//! it: a config file (a root-level TOML key, a dotenv variable), else the default the service
//! falls back to (a key that is missing, or written where the service ignores it), and over
//! both, a variable in the environment of the service's running process (the three services
//! read the environment last, so it wins). Reading only the files would report the file's key
//! while the service uses another: with `SEKHA__MCP_API_KEY` set to the published default,
//! every file looks fine.

use std::path::PathBuf;

use gatehouse_events::profile::{ConfigFormat, Role};

use super::files::{self, KeyProblem};
use super::htpasswd;
use super::listener;
use super::Service;

/// One key the service reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundKey {
    /// The config key or variable: `mcp_api_key`, `API_KEY_ADMIN`, `SEKHA__MCP_API_KEY`.
    pub name: String,
    pub role: Role,
    /// The key as the file holds it: for a password in an htpasswd file, its hash.
    pub value: String,
    /// Whether `value` is a hash of the secret (see [`htpasswd`](super::htpasswd)).
    pub hashed: bool,
    /// A password an htpasswd file keeps in plain text (no hash): `value` is the password,
    /// and whoever reads the file has it.
    pub plaintext: bool,
    pub source: Source,
    /// What wins over it in the service's environment (it is then not in use).
    pub overridden_by: Option<String>,
}

/// Where a key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A config file holds it, as the service reads it.
    File(PathBuf),
    /// The file does not hold it where the service reads it (absent, or inside a TOML table,
    /// said in `why`): the service's published default applies.
    Default { file: PathBuf, why: String },
    /// The environment of the service's process.
    Environment { pid: u32 },
}

impl FoundKey {
    /// Where it comes from, for a person.
    pub fn place(&self) -> String {
        match &self.source {
            Source::File(path) => path.display().to_string(),
            Source::Default { file, why } => {
                format!("{} ({why}: the default applies)", file.display())
            }
            Source::Environment { pid } => {
                format!("the environment of the service's process (pid {pid})")
            }
        }
    }

    /// Whether the service uses it now.
    pub fn in_use(&self) -> bool {
        self.overridden_by.is_none()
    }
}

/// The service's keys, and what is known of its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub keys: Vec<FoundKey>,
    /// What was learned of the service's environment, for a person: read (and from which
    /// process), or why not.
    pub environment: String,
}

impl Service<'_> {
    /// The fingerprint the console knows `key` by: its value's; for a hashed password, the
    /// password's, when this agent wrote the hash (else the hash's own).
    pub fn fingerprint_of(&self, key: &FoundKey) -> String {
        let of_value = self.fingerprints.of(&key.value);
        if !key.hashed {
            return of_value;
        }
        self.hashed()
            .password_of(&of_value)
            .map_or(of_value.clone(), |(p, _)| p.to_owned())
    }

    /// The key's length in characters, if it can be known: a hashed password's only when this
    /// agent wrote it.
    pub fn length_of(&self, key: &FoundKey) -> Option<usize> {
        if !key.hashed {
            return Some(key.value.chars().count());
        }
        self.hashed()
            .password_of(&self.fingerprints.of(&key.value))
            .map(|(_, length)| length as usize)
    }

    /// Whether `key` is a published one: equal to one, or for a hashed password, made from one
    /// (each is tried against the hash).
    pub fn is_published(&self, key: &FoundKey) -> bool {
        if key.hashed {
            // A hash this agent wrote is of a password it generated: none is published.
            self.length_of(key).is_none() && htpasswd::published(self.profile, &key.value)
        } else {
            self.profile.is_published(&key.value)
        }
    }

    /// Every key the profile names, as the service reads it (see the module's
    /// documentation). A config file that cannot be read is an error; an environment that
    /// cannot be read is said in [`Found::environment`].
    pub fn found_keys(&self) -> Result<Found, String> {
        let mut keys = self.file_keys()?;
        let environment = match self
            .listening_pid()
            .and_then(|pid| listener::environment(pid).map(|vars| (pid, vars)))
        {
            Ok((pid, vars)) => {
                let (winning, agreeing) = self.environment_keys(&mut keys, pid, &vars);
                let mut said = format!(
                    "the environment of the service's process (pid {pid}) was read: "
                );
                match (winning.is_empty(), agreeing.is_empty()) {
                    (true, true) => {
                        said.push_str("it sets none of the key variables, so the files decide")
                    }
                    (false, _) => said.push_str(&format!(
                        "{} set there win{} over the files",
                        winning.join(", "),
                        if winning.len() == 1 { "s" } else { "" }
                    )),
                    (true, false) => said.push_str(&format!(
                        "{} set there hold{} the files' values",
                        agreeing.join(", "),
                        if agreeing.len() == 1 { "s" } else { "" }
                    )),
                }
                said
            }
            Err(e) => format!(
                "the environment of the service's process was not read ({e}): a key variable set there would win over these files"
            ),
        };
        Ok(Found { keys, environment })
    }

    /// The keys the config files hold; a key a file does not hold where the service reads it
    /// appears with its default, if the service has one.
    fn file_keys(&self) -> Result<Vec<FoundKey>, String> {
        let dir = self
            .dir()
            .ok_or_else(|| files::no_dir("the service's files"))?;
        let mut found = Vec::new();
        for (path, file) in files::config_files(self.profile, dir) {
            let (text, _) = files::read_config(dir, &file.path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let (values, why) = match files::keys_in(file, &text) {
                Ok(values) => (values, "not set".to_owned()),
                Err(KeyProblem::Missing(key)) => (Vec::new(), format!("no root-level {key}")),
                Err(KeyProblem::Unusable(problem)) => (Vec::new(), problem),
            };
            if values.is_empty() {
                if let (Some(key), Some(default)) = (&file.key, &file.default) {
                    found.push(FoundKey {
                        name: key.clone(),
                        role: file.role,
                        value: default.clone(),
                        hashed: false,
                        plaintext: false,
                        source: Source::Default {
                            file: path.clone(),
                            why,
                        },
                        overridden_by: None,
                    });
                }
            }
            for (name, value) in values {
                let plain = htpasswd::scheme(&value) == htpasswd::Scheme::Plain;
                found.push(FoundKey {
                    name,
                    role: file.role,
                    hashed: file.format.is_hashed() && !plain,
                    plaintext: file.format.is_hashed() && plain,
                    value,
                    source: Source::File(path.clone()),
                    overridden_by: None,
                });
            }
        }
        Ok(found)
    }

    /// Add the key variables set in the environment `vars` of process `pid`, marking the file
    /// keys they win over; the names of those that win with another value, and of those that
    /// hold the file's own (as `EnvironmentFile=` or `set -a; . ./.env` give).
    fn environment_keys(
        &self,
        keys: &mut Vec<FoundKey>,
        pid: u32,
        vars: &[(String, String)],
    ) -> (Vec<String>, Vec<String>) {
        let (mut named, mut agreeing) = (Vec::new(), Vec::new());
        let mut add =
            |keys: &mut Vec<FoundKey>, variable: &str, key: &str, role: Role, value: &str| {
                if keys
                    .iter()
                    .any(|k| k.name == variable && k.source == Source::Environment { pid })
                    || agreeing.iter().any(|a| a == variable)
                {
                    return;
                }
                // The file's own value, exported: the file decides, nothing is overridden.
                if keys.iter().any(|k| {
                    k.name == key && matches!(k.source, Source::File(_)) && k.value == value
                }) {
                    agreeing.push(variable.to_owned());
                    return;
                }
                let winner =
                    format!("{variable} in the environment of the service's process (pid {pid})");
                for file_key in keys.iter_mut().filter(|k| k.name == key) {
                    file_key.overridden_by = Some(winner.clone());
                }
                keys.push(FoundKey {
                    name: variable.to_owned(),
                    role,
                    value: value.to_owned(),
                    hashed: false,
                    plaintext: false,
                    source: Source::Environment { pid },
                    overridden_by: None,
                });
                named.push(variable.to_owned());
            };
        for env in &self.profile.env {
            if let Some((_, value)) = vars.iter().find(|(name, _)| *name == env.name) {
                add(keys, &env.name, env.key(), env.role, value);
            }
        }
        // A dotenv variable is an environment variable: Jelmore reads every API_KEY_* of its
        // environment, so a variable of the family set there is a key too.
        for file in &self.profile.config_files {
            let (ConfigFormat::Dotenv, Some(prefix)) = (file.format, &file.key_prefix) else {
                continue;
            };
            for (name, value) in vars.iter().filter(|(n, _)| n.starts_with(prefix.as_str())) {
                add(keys, name, name, file.role, value);
            }
        }
        (named, agreeing)
    }
}
