//! Service profiles: what Gatehouse knows about a kind of service, as data.
//!
//! The built-in profiles live in `profiles/*.toml` at the top of the repository and are
//! compiled in; an operator adds a service by writing another file with the same schema.

use std::path::Path;

use serde::Deserialize;

use crate::keypath::{KeyPath, Segment};
use crate::{Kind, LineFormat, Outcome, Parsed, Source};

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
    /// The checklist and playbook, by name; without them the console uses one named as the
    /// profile, else the generic ones, and says so.
    #[serde(default)]
    pub guides: Option<Guides>,
    /// The service's own database, where incident response can snapshot and restore it.
    #[serde(default)]
    pub database: Option<Database>,
    /// The requests that change data (`[[writes]]`), and which of them destroy it: an
    /// incident's "writes and deletes" counts requests that match one of these and succeeded,
    /// not every POST (a refused POST changed nothing; a search is a POST that only reads).
    #[serde(default)]
    pub writes: Vec<WriteRoute>,
}

/// `[[writes]]`: one request that changes the service's data.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteRoute {
    pub method: String,
    /// The path as the service routes it; `{name}` stands for one path segment.
    pub path: String,
    /// It removes data (a delete, a prune), rather than adding or changing it.
    #[serde(default)]
    pub destructive: bool,
    /// Whether it answers without a key (Sekha's `/api/v1`, RAE's `/v2/memories`).
    #[serde(default)]
    pub open: bool,
    #[serde(default)]
    pub note: Option<String>,
}

impl WriteRoute {
    /// Whether a request `method path` (a query string is ignored, a trailing `/` too) is
    /// this route.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        if !self.method.eq_ignore_ascii_case(method) {
            return false;
        }
        let path = path.split(['?', '#']).next().unwrap_or("");
        let mut want = self.path.trim_end_matches('/').split('/');
        let mut got = path.trim_end_matches('/').split('/');
        loop {
            match (want.next(), got.next()) {
                (None, None) => return true,
                (Some(w), Some(g)) if w.starts_with('{') && w.ends_with('}') && !g.is_empty() => {}
                (Some(w), Some(g)) if w == g => {}
                _ => return false,
            }
        }
    }
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
    /// A JSON document; `key` is a key path (see [`KeyPath`]).
    Json,
    /// A YAML document (its first); `key` is a key path.
    Yaml,
    /// An INI file as Python's `configparser` reads it; `key` is `section.key`.
    Ini,
    /// An htpasswd file (`user:hash` lines, as Apache's `htpasswd` writes them); `key` is
    /// the user whose password is the secret. The file holds only a hash of it: a rotation
    /// writes a bcrypt hash of the new password, and the service is asked with HTTP Basic
    /// as that user (`[auth] basic_user`).
    Htpasswd,
}

impl ConfigFormat {
    /// Whether the file holds a hash of the secret rather than the secret.
    pub fn is_hashed(self) -> bool {
        self == ConfigFormat::Htpasswd
    }

    /// Whether `key` is a key path into a document rather than a name.
    pub fn is_structured(self) -> bool {
        matches!(
            self,
            ConfigFormat::Json | ConfigFormat::Yaml | ConfigFormat::Ini
        )
    }
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
    /// The one key holding the secret (in JSON, YAML and INI files a key path, which may
    /// name a list of keys: `clients[*].secret`)...
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
    /// The service reads the file at each use (Radicale its htpasswd file at each sign-in),
    /// so a new key takes effect without a restart: a rotation restarts nothing.
    #[serde(default)]
    pub reread: bool,
    #[serde(default)]
    pub note: Option<String>,
}

/// An environment variable the service reads a key from. In the service's process
/// environment it wins over every config file (the three services read it last).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    pub name: String,
    pub role: Role,
    /// The config key it takes the place of (`SEKHA__MCP_API_KEY` for `mcp_api_key`); without
    /// one, the key of the same name (a dotenv variable is also an environment variable).
    #[serde(default)]
    pub overrides: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}

impl EnvVar {
    /// The config key this variable takes the place of.
    pub fn key(&self) -> &str {
        self.overrides.as_deref().unwrap_or(&self.name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPolicy {
    pub min_length: usize,
    /// How a generated key is written: `base64url` (unpadded) or `hex`.
    pub encoding: String,
    /// Defaults and published keys that must never be in use: the service's built-in
    /// default and every key its own docs, samples and install scripts print. A published key
    /// is weak whatever its length or the mix of its characters.
    #[serde(default)]
    pub known_weak: Vec<String>,
    /// Variables the service reads as keys although they are not keys (`[[keys.not_keys]]`):
    /// a finding whose fix is to remove them, never a key to rotate.
    #[serde(default)]
    pub not_keys: Vec<NotKey>,
}

/// A variable that is read as a key by mistake.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotKey {
    pub name: String,
    /// Why it is not a key and what to do, for a person.
    pub fix: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    /// How a client presents the key: a header (`header`, with `scheme` before the key), a
    /// query parameter (`query`), a cookie (`cookie`), or HTTP Basic with the key as the
    /// password of `basic_user`. Exactly one is given.
    #[serde(default)]
    pub header: String,
    /// Prefix before the key in the header value, e.g. `Bearer ` (case-sensitive).
    #[serde(default)]
    pub scheme: String,
    /// `?<query>=KEY` on the request. A key in a URL reaches access logs: the agent writes
    /// this parameter's value as `[redacted]` in every line it reads.
    #[serde(default)]
    pub query: Option<String>,
    /// `Cookie: <cookie>=KEY`.
    #[serde(default)]
    pub cookie: Option<String>,
    /// `Authorization: Basic` with `basic_user:KEY`.
    #[serde(default)]
    pub basic_user: Option<String>,
    #[serde(default)]
    pub missing: Option<Answer>,
    #[serde(default)]
    pub malformed: Option<Answer>,
    #[serde(default)]
    pub wrong: Option<Answer>,
    /// Where a refusal is a sign-in that failed: path prefixes (a login form's `/login`, an
    /// API's `/api/`). A refusal of any other path in an access log (a page that wants a
    /// session, a static file behind the same proxy) is a refused request, never a failed
    /// sign-in. Empty: every path.
    #[serde(default)]
    pub sign_in_paths: Vec<String>,
    #[serde(default)]
    pub note: Option<String>,
}

/// A key as a request carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    Header { name: String, value: String },
    Query { name: String, value: String },
}

/// In an htpasswd file's `key` and in `[auth] basic_user`: every user (the one whose
/// password it is).
pub const EVERY_USER: &str = "*";

/// The user a check presents a made-up password as, when `basic_user` is every user: one no
/// service has, so a refusal is a refusal.
pub const PROBE_USER: &str = "gatehouse-probe";

impl Auth {
    /// `key` as a client presents it to this service.
    pub fn present(&self, key: &str) -> Presented {
        self.present_as(key, None)
    }

    /// `key` as `user` presents it, where the key is a user's password (`basic_user = "*"`);
    /// otherwise as [`present`](Self::present).
    pub fn present_as(&self, key: &str, user: Option<&str>) -> Presented {
        use base64::Engine as _;
        if let Some(name) = &self.query {
            return Presented::Query {
                name: name.clone(),
                value: key.to_owned(),
            };
        }
        if let Some(name) = &self.cookie {
            return Presented::Header {
                name: "Cookie".into(),
                value: format!("{name}={key}"),
            };
        }
        if let Some(basic) = &self.basic_user {
            let user = match (basic.as_str(), user) {
                (EVERY_USER, Some(user)) => user,
                (EVERY_USER, None) => PROBE_USER,
                (named, _) => named,
            };
            let pair = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{key}"));
            return Presented::Header {
                name: "Authorization".into(),
                value: format!("Basic {pair}"),
            };
        }
        Presented::Header {
            name: self.header.clone(),
            value: format!("{}{key}", self.scheme),
        }
    }

    /// How the key is presented, for a person: "the Authorization header (Bearer )",
    /// "the query parameter token".
    pub fn describe(&self) -> String {
        match (&self.query, &self.cookie, &self.basic_user) {
            (Some(q), _, _) => format!("the query parameter {q}"),
            (_, Some(c), _) => format!("the cookie {c}"),
            (_, _, Some(u)) if u == EVERY_USER => "HTTP Basic as the password of its user".into(),
            (_, _, Some(u)) => format!("HTTP Basic as the password of {u}"),
            _ => format!("the {} header", self.header),
        }
    }

    fn check(&self) -> Result<(), String> {
        let given = [
            !self.header.is_empty(),
            self.query.is_some(),
            self.cookie.is_some(),
            self.basic_user.is_some(),
        ]
        .iter()
        .filter(|g| **g)
        .count();
        if given != 1 {
            return Err("[auth] gives exactly one of header, query, cookie or basic_user".into());
        }
        if !self.scheme.is_empty() && self.header.is_empty() {
            return Err("[auth] scheme goes with header".into());
        }
        // Characters a URL and a cookie carry as they are: what the agent redacts is then
        // spelt in the log as written here.
        let bad = |name: &str| {
            name.is_empty()
                || name.len() > 64
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._~-".contains(c))
        };
        match (&self.query, &self.cookie, &self.basic_user) {
            (Some(n), _, _) | (_, Some(n), _) if bad(n) => {
                Err(format!("[auth] {n:?} is not a parameter or cookie name"))
            }
            (_, _, Some(u)) if u.is_empty() || u.contains(':') => {
                Err("[auth] basic_user is a user name without ':'".into())
            }
            _ => Ok(()),
        }
    }

    /// Which statuses in an access log are failed sign-ins, as these answers say.
    pub fn sign_ins(&self) -> SignIns {
        let status = |a: &Option<Answer>| a.as_ref().map(|a| a.status);
        let (missing, wrong, malformed) = (
            status(&self.missing),
            status(&self.wrong),
            status(&self.malformed),
        );
        SignIns {
            anonymous: missing.filter(|m| Some(*m) != wrong && Some(*m) != malformed),
            wrong: wrong.filter(|w| (400..=499).contains(w)),
            paths: self.sign_in_paths.clone().into(),
        }
    }
}

/// Which HTTP statuses in an access log are failed sign-ins for one service. By default 401
/// and 403 are; a profile whose `[auth] missing` answer has a status that neither its `wrong`
/// nor its `malformed` answer has says that status is a visitor without a key (a page
/// reloaded, a crawler): a refused request, never a failed sign-in, so it cannot add up to a
/// brute force. Its `wrong` answer's status (a 4xx) is a failed sign-in whatever it is. A
/// status that both a missing and a wrong key get cannot be told apart in an access log and
/// stays a failed sign-in.
/// With `[auth] sign_in_paths`, only refusals of those paths are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignIns {
    anonymous: Option<u16>,
    wrong: Option<u16>,
    paths: std::sync::Arc<[String]>,
}

impl SignIns {
    /// Kind and outcome of `status` in an access log (see [`crate::classify_status`]).
    pub fn classify(&self, status: u16) -> (Kind, Outcome) {
        if Some(status) == self.wrong {
            (Kind::Auth, Outcome::Failure)
        } else if Some(status) == self.anonymous {
            (Kind::Request, Outcome::Failure)
        } else {
            crate::classify_status(status)
        }
    }

    /// Classify a line `format` decided by its status again, by these answers. A line that
    /// says itself how a sign-in ended (a service's own log, a pattern's `outcome`) is kept.
    pub fn apply(&self, format: &LineFormat, parsed: &mut Parsed<'_>) {
        if !format.decides_by_status() {
            return;
        }
        if let Some(status) = parsed.status {
            (parsed.kind, parsed.outcome) = self.classify(status);
        }
        let elsewhere = !self.paths.is_empty()
            && !parsed.path.as_deref().is_some_and(|path| {
                let path = request_path(path);
                self.paths.iter().any(|p| under(&path, &request_path(p)))
            });
        if elsewhere && (parsed.kind, parsed.outcome) == (Kind::Auth, Outcome::Failure) {
            parsed.kind = Kind::Request;
        }
    }
}

/// A request's path as a server routes it, lower-cased, for matching `sign_in_paths`: the
/// client writes it, so `//login`, `/./login`, `/LOGIN`, `/%6Cogin` and
/// `http://host/login` are all `/login` (else a brute force could pass as refused requests).
/// Without the query; `.` and `..` segments resolved, empty ones dropped, unreserved
/// characters decoded.
fn request_path(raw: &str) -> String {
    let raw = match raw.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => raw,
    };
    let raw = raw.split(['?', '#']).next().unwrap_or_default();
    let bytes = raw.as_bytes();
    let mut decoded = String::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                let c = char::from((h * 16 + l) as u8);
                if c.is_ascii_alphanumeric() || "-._~".contains(c) {
                    decoded.push(c);
                    i += 3;
                    continue;
                }
            }
        }
        decoded.push(char::from(bytes[i]));
        i += 1;
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut path = format!("/{}", segments.join("/"));
    if decoded.ends_with('/') && !segments.is_empty() {
        path.push('/');
    }
    path.to_ascii_lowercase()
}

/// Whether `path` is `prefix` or below it, segment by segment (`/login` is not under
/// `/log`; `/api/v1` is under `/api/`).
fn under(path: &str, prefix: &str) -> bool {
    path == prefix.trim_end_matches('/')
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'))
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
    /// An endpoint that answers without a key (health); the rate-limit burst goes there.
    pub open: Probe,
    /// The endpoint that says the service's API answers, for the Fleet view's health and for
    /// the check that a restart brought the service back. A health endpoint that also judges
    /// the service's dependencies is not one (Sekha's `/health` is 503 while Chroma is down
    /// although its API works). Without it, `service_url` is asked as it is.
    #[serde(default)]
    pub liveness: Option<Probe>,
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
#[serde(try_from = "LogSourceTable")]
pub struct LogSource {
    /// `service`, `access` or `proxy`: where in the chain the log is written.
    pub source: Source,
    /// A built-in format, or `format = "pattern"` with `pattern` (a regular expression with
    /// named captures) and `time_format`, compiled when the profile is read.
    pub format: LineFormat,
    pub path: String,
    /// The systemd unit whose journal holds these lines when the service runs as that unit
    /// (logging to standard output, as Sekha does): followed instead of `path` where the unit
    /// is installed.
    #[serde(default)]
    pub journal_unit: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}

/// `[[logs]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogSourceTable {
    source: String,
    format: String,
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default)]
    time_format: Option<String>,
    path: String,
    #[serde(default)]
    journal_unit: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

impl TryFrom<LogSourceTable> for LogSource {
    type Error = String;

    fn try_from(t: LogSourceTable) -> Result<Self, String> {
        let format =
            LineFormat::from_parts(&t.format, t.pattern.as_deref(), t.time_format.as_deref())
                .map_err(|e| format!("logs {}: {e}", t.path))?;
        Ok(LogSource {
            source: Source::for_log(&t.source).map_err(|e| format!("logs {}: {e}", t.path))?,
            format,
            path: t.path,
            journal_unit: t.journal_unit,
            note: t.note,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Restart {
    /// The default restart command. None of the three services ships a systemd unit, so
    /// `systemctl restart <name>` assumes one the operator wrote (`unit_shipped = false`).
    pub command: Vec<String>,
    /// Whether the service itself ships what `command` needs (a unit, a script).
    #[serde(default)]
    pub unit_shipped: bool,
    #[serde(default)]
    pub note: Option<String>,
    /// Ways a start is known to fail, each recognised by what the service says and fixed
    /// before it is started again, once (`[[restart.recover]]`).
    #[serde(default)]
    pub recover: Vec<Recovery>,
    /// What a restart destroys, for the operator to read before confirming one (a rotation
    /// or an incident restart): RAE in lite mode keeps every memory in memory only.
    #[serde(default)]
    pub loses_data: Option<String>,
    /// `NAME=value` settings of the service's environment under which `loses_data` holds
    /// (any one); empty: always.
    #[serde(default)]
    pub loses_data_when: Vec<String>,
}

/// A start failure the agent knows how to fix.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recovery {
    /// Text the service writes (on stderr, to the journal, to its log) when a start fails
    /// this way; nothing else triggers the fix.
    pub when: String,
    /// SQL run on the profile's `[database]` before the service is started again.
    pub sql: String,
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
    ("jupyter", include_str!("../../../profiles/jupyter.toml")),
    ("radicale", include_str!("../../../profiles/radicale.toml")),
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
            if file.format.is_structured() {
                let Some(key) = &file.key else {
                    return Err(error(format!(
                        "{}: a JSON, YAML or INI file names its key by a key path (key), not key_prefix",
                        file.path
                    )));
                };
                let path = KeyPath::parse(key).map_err(|e| error(format!("{}: {e}", file.path)))?;
                if file.format == ConfigFormat::Ini
                    && !matches!(path.segments(), [Segment::Key(_), Segment::Key(_)])
                {
                    return Err(error(format!(
                        "{}: an INI key is section.key, not {key}",
                        file.path
                    )));
                }
            }
            if file.format.is_hashed() {
                let user = file.key.as_deref().unwrap_or_default();
                if user.is_empty() || user.contains([':', '\n', '\r']) {
                    return Err(error(format!(
                        "{}: an htpasswd file names its user (key, a name without `:`), or \"*\" for every user",
                        file.path
                    )));
                }
                if file.role != Role::ApiKey {
                    return Err(error(format!(
                        "{}: an htpasswd password is a credential (role = \"api_key\")",
                        file.path
                    )));
                }
                if profile.keys.min_length > 72 {
                    return Err(error(format!(
                        "{}: bcrypt reads at most 72 bytes of a password, so keys.min_length cannot be {}",
                        file.path, profile.keys.min_length
                    )));
                }
                let basic = profile.auth.basic_user.as_deref();
                if basic != Some(EVERY_USER) && basic != Some(user) {
                    return Err(error(format!(
                        "{}: a password in an htpasswd file is checked with HTTP Basic as its user: set [auth] basic_user = \"*\" (the user whose password it is){}",
                        file.path,
                        if user == EVERY_USER {
                            String::new()
                        } else {
                            format!(" or {user:?}")
                        }
                    )));
                }
            }
        }
        if profile.logs.is_empty() {
            return Err(error("a profile needs at least one log source".into()));
        }
        profile.auth.check().map_err(error)?;
        if profile.restart.command.is_empty() {
            return Err(error("restart.command is empty".into()));
        }
        if !["base64url", "hex"].contains(&profile.keys.encoding.as_str()) {
            return Err(error(format!(
                "keys.encoding must be base64url or hex, not {}",
                profile.keys.encoding
            )));
        }
        let sqlite = profile
            .database
            .as_ref()
            .is_some_and(|db| db.format == "sqlite");
        for recovery in &profile.restart.recover {
            if recovery.when.trim().is_empty() {
                return Err(error(
                    "restart.recover needs the text the failure is recognised by (when)".into(),
                ));
            }
            if !sqlite {
                return Err(error(
                    "restart.recover runs SQL on the service's database: give a [database] of format sqlite".into(),
                ));
            }
        }
        if let Some(bad) = profile
            .restart
            .loses_data_when
            .iter()
            .find(|s| !s.contains('='))
        {
            return Err(error(format!(
                "restart.loses_data_when entries are NAME=value, not {bad}"
            )));
        }
        Ok(profile)
    }

    /// The write route `method path` is, if any (see [`WriteRoute`]).
    pub fn write_route(&self, method: &str, path: &str) -> Option<&WriteRoute> {
        self.writes.iter().find(|w| w.matches(method, path))
    }

    /// Whether `name` is read as a key by mistake (see [`NotKey`]).
    pub fn not_key(&self, name: &str) -> Option<&NotKey> {
        self.keys.not_keys.iter().find(|n| n.name == name)
    }

    /// Whether `value` is a published key: a known default or sample, or a config file's
    /// default.
    pub fn is_published(&self, value: &str) -> bool {
        self.keys.known_weak.iter().any(|w| w == value)
            || self
                .config_files
                .iter()
                .any(|f| f.default.as_deref() == Some(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Format;

    fn builtin(name: &str) -> Profile {
        Profile::builtin(name).expect("compiled in").expect("valid")
    }

    #[test]
    fn every_builtin_profile_is_valid() {
        let names: Vec<_> = Profile::builtin_names().collect();
        assert_eq!(
            names,
            ["sekha", "rae", "jelmore", "jupyter", "radicale"],
            "the built-in profiles, in order"
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
                .any(|l| l.source == Source::Service && l.format == Format::Structlog),
            "Jelmore's stdout (structlog with uvicorn's lines mixed in) is a source"
        );
    }

    #[test]
    fn liveness_is_a_probe_that_says_the_api_answers() {
        let sekha = builtin("sekha");
        assert_eq!(
            sekha.probes.liveness.as_ref().map(|p| p.path.as_str()),
            Some("/metrics"),
            "Sekha's /health is 503 while Chroma is down: /metrics says its API answers"
        );
        for name in ["rae", "jelmore"] {
            assert!(
                builtin(name).probes.liveness.is_some(),
                "{name} names its liveness probe"
            );
        }
    }

    #[test]
    fn sekha_s_restart_bug_is_recovered_only_by_its_own_words() {
        let sekha = builtin("sekha");
        let recovery = &sekha.restart.recover[0];
        assert_eq!(
            recovery.when, "UNIQUE constraint failed: seaql_migrations.version",
            "recognised by the message Sekha writes on stderr"
        );
        assert_eq!(
            recovery.sql, "DELETE FROM seaql_migrations;",
            "the known fix, on its database"
        );
        for name in Profile::builtin_names() {
            assert!(
                !builtin(name).restart.unit_shipped,
                "{name} ships no systemd unit: the default restart command assumes one"
            );
        }
        let no_db = include_str!("../../../profiles/rae.toml").replace(
            "[guides]",
            "[[restart.recover]]\nwhen = \"x\"\nsql = \"DELETE FROM t;\"\n\n[guides]",
        );
        let err = Profile::parse(&no_db, "custom.toml").expect_err("SQL with no database");
        assert!(
            err.message.contains("[database]"),
            "a recovery needs a database to run on: {err}"
        );
    }

    #[test]
    fn published_keys_and_variables_that_are_not_keys_are_data() {
        let sekha = builtin("sekha");
        for published in [
            "dev_default_key_change_me_1234567890",
            "dev_api_key_12345678901234567890123456789012",
            "sk-dev-12345678901234567890123456789012",
        ] {
            assert!(
                sekha.is_published(published),
                "{published} is printed in Sekha's own files"
            );
        }
        let rae = builtin("rae");
        assert!(
            rae.is_published("change-this-secret-key-in-production"),
            "a config file's default counts as published"
        );
        let jelmore = builtin("jelmore");
        assert!(
            jelmore
                .not_key("API_KEY_HEADER")
                .is_some_and(|n| n.fix.contains("Remove")),
            "API_KEY_HEADER is a finding to remove, not a key"
        );
        assert!(
            jelmore.not_key("API_KEY_ADMIN").is_none(),
            "the real keys are keys"
        );
        assert!(
            rae.restart
                .loses_data
                .as_deref()
                .is_some_and(|s| s.starts_with("Restart loses every memory unless")),
            "RAE's lite mode loses its memories on restart, and the profile says so"
        );
    }

    #[test]
    fn write_routes_name_what_changes_data() {
        let sekha = builtin("sekha");
        let delete = sekha
            .write_route("DELETE", "/api/v1/conversations/4f1c?x=1")
            .expect("a delete is a write");
        assert!(delete.destructive && delete.open, "destructive, and open");
        assert!(
            sekha
                .write_route("POST", "/mcp/tools/memory_store")
                .is_some_and(|w| !w.destructive),
            "storing a memory writes"
        );
        for read in [
            ("POST", "/mcp/tools/memory_search"),
            ("POST", "/mcp/tools/memory_stats"),
            ("GET", "/api/v1/conversations"),
            ("DELETE", "/api/v1/conversations"),
        ] {
            assert!(
                sekha.write_route(read.0, read.1).is_none(),
                "{read:?} changes nothing"
            );
        }
        let rae = builtin("rae");
        assert!(
            rae.write_route("POST", "/v2/memories").is_some(),
            "RAE's open memory write, with or without its trailing slash"
        );
        let jelmore = builtin("jelmore");
        assert!(
            jelmore
                .write_route("DELETE", "/api/v1/v1/sessions/abc")
                .is_some_and(|w| w.destructive),
            "deleting a Jelmore session destroys it"
        );
    }

    #[test]
    fn a_log_source_can_be_a_pattern_compiled_with_the_profile() {
        let rae = include_str!("../../../profiles/rae.toml");
        let custom = rae.replace(
            "format = \"structlog\"",
            "format = \"pattern\"\npattern = '^(?P<time>\\S+) (?P<outcome>\\w+) (?P<ip>\\S+)$'",
        );
        assert_ne!(custom, rae, "the test changed the profile");
        let profile = Profile::parse(&custom, "custom.toml").expect("a pattern source is valid");
        let source = profile
            .logs
            .iter()
            .find(|l| l.format.name() == "pattern")
            .expect("the pattern source");
        let parsed = source
            .format
            .parse(b"2026-11-23T02:41:57Z denied 203.0.113.7")
            .expect("the compiled pattern parses its line");
        assert_eq!(
            (parsed.kind, parsed.outcome, parsed.ip.as_deref()),
            (Kind::Auth, Outcome::Failure, Some("203.0.113.7")),
            "the profile's pattern reads the service's own line"
        );

        let unknown = custom.replace("(?P<outcome>", "(?P<result>");
        let err = Profile::parse(&unknown, "custom.toml").expect_err("unknown capture");
        assert!(
            err.to_string().contains("custom.toml") && err.message.contains("\"result\""),
            "the file and the capture are named: {err}"
        );
        let broken = custom.replace("(?P<ip>\\S+)$", "(?P<ip>\\S+$");
        let err = Profile::parse(&broken, "custom.toml").expect_err("does not compile");
        assert!(
            err.message.contains("pattern does not compile"),
            "a pattern that does not compile is refused: {err}"
        );
        let stray = rae.replace(
            "format = \"structlog\"",
            "format = \"structlog\"\ntime_format = \"unix\"",
        );
        let err = Profile::parse(&stray, "custom.toml").expect_err("stray time_format");
        assert!(
            err.message.contains("go with format = \"pattern\""),
            "time_format on a built-in format is refused: {err}"
        );
    }

    #[test]
    fn what_counts_as_a_failed_sign_in_follows_the_profile_s_answers() {
        let nginx = LineFormat::Builtin(Format::NginxCombined);
        let line = |status: u16| {
            format!(
                r#"203.0.113.7 - - [23/Nov/2026:02:41:57 +0000] "GET /app HTTP/1.1" {status} 1 "-" "x""#
            )
        };
        let seen = |sign_ins: &SignIns, status: u16| {
            let text = line(status);
            let mut parsed = nginx.parse(text.as_bytes()).expect("parses");
            sign_ins.apply(&nginx, &mut parsed);
            (parsed.kind, parsed.outcome)
        };
        let failed = (Kind::Auth, Outcome::Failure);
        let refused = (Kind::Request, Outcome::Failure);
        for name in Profile::builtin_names() {
            let sign_ins = builtin(name).auth.sign_ins();
            assert_eq!(
                seen(&sign_ins, 401),
                failed,
                "{name}: a missing and a wrong key are both 401, so 401 stays a failed sign-in"
            );
            assert_eq!(seen(&sign_ins, 403), failed, "{name}: 403 as before");
            assert_eq!(
                seen(&sign_ins, 400),
                refused,
                "{name}: a 400 is not a sign-in (Sekha's malformed header is one among many)"
            );
        }

        let sekha = include_str!("../../../profiles/sekha.toml");
        let anonymous_403 = sekha
            .replace("missing = { status = 401,", "missing = { status = 403,")
            .replace("malformed = { status = 400,", "malformed = { status = 401,");
        assert_ne!(anonymous_403, sekha, "the test changed the profile");
        let sign_ins = Profile::parse(&anonymous_403, "portal.toml")
            .expect("valid")
            .auth
            .sign_ins();
        assert_eq!(
            seen(&sign_ins, 403),
            refused,
            "a service that answers visitors without a key 403: a reload is no brute force"
        );
        assert_eq!(seen(&sign_ins, 401), failed, "a wrong key still is");

        let hidden = sekha.replace("wrong = { status = 401,", "wrong = { status = 404,");
        let sign_ins = Profile::parse(&hidden, "hidden.toml")
            .expect("valid")
            .auth
            .sign_ins();
        assert_eq!(
            seen(&sign_ins, 404),
            failed,
            "a service that answers a wrong key 404: that 404 is a failed sign-in"
        );

        let own = Format::Structlog;
        let mut parsed = own
            .parse(br#"{"event": "Request completed", "status_code": 401, "path": "/x", "method": "GET", "timestamp": "2026-11-23T02:41:57Z"}"#)
            .expect("parses");
        let before = (parsed.kind, parsed.outcome);
        Profile::parse(&anonymous_403, "portal.toml")
            .expect("valid")
            .auth
            .sign_ins()
            .apply(&LineFormat::Builtin(own), &mut parsed);
        assert_eq!(
            (parsed.kind, parsed.outcome),
            before,
            "a service's own log line is classified by what it says, not re-read by status"
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

    /// Radicale 3.9's own lines, as the real server wrote them: one failed sign-in per failed
    /// login, from the socket peer (never the forwarded value, which the client writes), the user named; the
    /// verification line before it and every other line are messages.
    #[test]
    fn radicale_s_log_lines_are_read_as_the_real_server_writes_them() {
        let profile = builtin("radicale");
        let format = &profile.logs[0].format;
        let read = |line: &str| {
            let p = format.parse(line.as_bytes()).expect("every line is read");
            (
                p.kind,
                p.outcome,
                p.ip.map(|s| s.into_owned()),
                p.actor.map(|s| s.into_owned()),
                p.time_us,
            )
        };
        let failed = read("[2026-12-07 21:24:21 +0000] [13719/Thread-5 (process_request_thread)] [WARNING] Failed login attempt from 198.51.100.4 (forwarded for '203.0.113.9'): 'alice' (htpasswd)");
        assert_eq!(
            (failed.0, failed.1, failed.2.as_deref(), failed.3.as_deref()),
            (Kind::Auth, Outcome::Failure, Some("198.51.100.4"), Some("alice")),
            "a failed login, from the socket peer (the forwarded value is the client's to write), for alice"
        );
        assert_eq!(
            failed.4,
            crate::parse_rfc3339(b"2026-12-07T21:24:21Z"),
            "at the time it says"
        );
        let direct = read("[2026-12-07 22:24:18 +0100] [13719/Thread-2 (process_request_thread)] [WARNING] Failed login attempt from 127.0.0.1: 'alice' (htpasswd)");
        assert_eq!(
            (direct.2.as_deref(), direct.4),
            (
                Some("127.0.0.1"),
                crate::parse_rfc3339(b"2026-12-07T21:24:18Z")
            ),
            "without a proxy, the peer; the offset is applied"
        );
        // A client writes X-Forwarded-For, and Radicale writes it back as Python's repr: a
        // quote, a trailing space, a chain or words of its own must neither move the address
        // nor turn the failed login into a message (which would hide it from every count).
        for forwarded in [
            "'203.0.113.9, 198.51.100.7'",
            r#""', 198.51.100.7""#,
            "'198.51.100.7 '",
            r#""6.6.6.6'): 'bob' (htpasswd)""#,
            "'x) (forwarded for 6.6.6.6'",
        ] {
            let line = format!("[2026-12-07 21:24:22 +0000] [13719/Thread-6 (process_request_thread)] [WARNING] Failed login attempt from 192.0.2.10 (forwarded for {forwarded}): 'alice' (htpasswd)");
            let (kind, outcome, ip, ..) = read(&line);
            assert_eq!(
                (kind, outcome, ip.as_deref()),
                (Kind::Auth, Outcome::Failure, Some("192.0.2.10")),
                "a failed sign-in from the peer whatever the client forwarded: {forwarded}"
            );
        }
        let v6 = read("[2026-12-07 21:26:29 +0000] [15377/Thread-3 (process_request_thread)] [WARNING] Failed login attempt from ::1: 'alice' (htpasswd)");
        assert_eq!(v6.2.as_deref(), Some("::1"), "an IPv6 peer");
        let quoted = read(
            r#"[2026-12-07 21:26:29 +0000] [15377/Thread-3 (process_request_thread)] [WARNING] Failed login attempt from 127.0.0.1: "o'brien" (htpasswd)"#,
        );
        assert_eq!(quoted.3.as_deref(), Some("o'brien"), "a user with a quote");
        let ok = read("[2026-12-07 21:24:19 +0000] [13719/Thread-3 (process_request_thread)] [INFO] Successful login: 'alice' (htpasswd)");
        assert_eq!(
            (ok.0, ok.1, ok.2, ok.3.as_deref()),
            (Kind::Auth, Outcome::Success, None, Some("alice")),
            "a success names the user, no address"
        );
        for line in [
            "[2026-12-07 21:24:21 +0000] [13719/Thread-5 (process_request_thread)] [WARNING] Login verification failed for user: 'alice' (htpasswd/bcrypt/BCRYPT)",
            "[2026-12-07 21:24:03 +0000] [13719] [INFO] Radicale server ready",
            "[2026-12-07 21:24:21 +0000] [13719/Thread-5 (process_request_thread)] [INFO] GET request for '/alice/' received from 127.0.0.1 (forwarded for '203.0.113.9') HTTP/1.1",
        ] {
            let (kind, outcome, ..) = read(line);
            assert!(
                kind != Kind::Auth && outcome != Outcome::Failure,
                "not a sign-in: {line}"
            );
        }
    }

    /// A password in an htpasswd file is checked with HTTP Basic as its user: a profile that
    /// says otherwise is refused with the rule; `*` is every user, each presenting its own.
    #[test]
    fn an_htpasswd_password_is_checked_as_its_user() {
        let radicale = include_str!("../../../profiles/radicale.toml");
        let profile = Profile::parse(radicale, "radicale.toml").expect("the built-in profile");
        assert!(
            profile.config_files[0].format.is_hashed(),
            "Radicale's users file holds hashes"
        );
        let basic = |user: Option<&str>| match profile.auth.present_as("pw", user) {
            Presented::Header { value, .. } => value,
            other => panic!("HTTP Basic is a header: {other:?}"),
        };
        use base64::Engine as _;
        let pair = |text: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(text)
            )
        };
        assert_eq!(
            basic(Some("bob")),
            pair("bob:pw"),
            "as the user whose password it is"
        );
        assert_eq!(
            basic(None),
            pair(&format!("{PROBE_USER}:pw")),
            "a check's made-up password goes as a user no service has"
        );
        for (from, to, why) in [
            (
                "basic_user = \"*\"",
                "header = \"Authorization\"",
                "needs basic_user",
            ),
            ("key = \"*\"", "key = \"a:b\"", "a user name has no ':'"),
            (
                "role = \"api_key\"\n# Read again",
                "role = \"jwt_secret\"\n# Read again",
                "a password is a credential",
            ),
        ] {
            let text = radicale.replacen(from, to, 1);
            assert_ne!(text, radicale, "the test changes the profile ({why})");
            assert!(
                Profile::parse(&text, "custom.toml").is_err(),
                "refused: {why}"
            );
        }
        let named = radicale
            .replacen("key = \"*\"", "key = \"alice\"", 1)
            .replacen("basic_user = \"*\"", "basic_user = \"bob\"", 1);
        let err = Profile::parse(&named, "custom.toml").expect_err("alice's password as bob");
        assert!(
            err.message.contains("basic_user = \"*\"") && err.message.contains("\"alice\""),
            "the rule and the user are named: {err}"
        );
    }

    #[test]
    fn a_key_is_presented_in_a_header_a_query_a_cookie_or_as_a_basic_password() {
        let with = |auth: &str| {
            let text = include_str!("../../../profiles/sekha.toml")
                .replace("header = \"Authorization\"\nscheme = \"Bearer \"", auth);
            Profile::parse(&text, "custom.toml")
        };
        let present = |auth: &str| with(auth).expect("valid [auth]").auth.present("KEY");
        assert_eq!(
            present("header = \"X-API-Key\""),
            Presented::Header {
                name: "X-API-Key".into(),
                value: "KEY".into()
            },
            "a header, as the built-in profiles have it"
        );
        assert_eq!(
            present("query = \"token\""),
            Presented::Query {
                name: "token".into(),
                value: "KEY".into()
            },
            "a query parameter"
        );
        assert_eq!(
            present("cookie = \"session\""),
            Presented::Header {
                name: "Cookie".into(),
                value: "session=KEY".into()
            },
            "a cookie"
        );
        assert_eq!(
            present("basic_user = \"gatehouse\""),
            Presented::Header {
                name: "Authorization".into(),
                // base64("gatehouse:KEY")
                value: "Basic Z2F0ZWhvdXNlOktFWQ==".into()
            },
            "HTTP Basic, the key as the user's password"
        );
        for (auth, says) in [
            ("header = \"A\"\nquery = \"t\"", "exactly one of"),
            ("note = \"none\"", "exactly one of"),
            ("query = \"t&x\"", "not a parameter or cookie name"),
            ("query = \"a+b\"", "not a parameter or cookie name"),
            ("basic_user = \"a:b\"", "without ':'"),
            (
                "query = \"t\"\nscheme = \"Bearer \"",
                "scheme goes with header",
            ),
        ] {
            let err = with(auth).expect_err(auth);
            assert!(err.message.contains(says), "{auth:?}: {err}");
        }
    }

    /// Jupyter Server's own lines, as jupyter-server 2.21.1 wrote them when tried: a refusal
    /// is a failed sign-in from the socket peer, the line before it a message, an accepted
    /// request (DEBUG level) a success, a ?token= value stays as the server wrote it.
    #[test]
    fn jupyter_lines_read_as_the_real_server_writes_them() {
        let jupyter = builtin("jupyter");
        let format = &jupyter.logs[0].format;
        let refused = format
            .parse(b"[W 2026-12-07 18:06:57.179 ServerApp] 403 GET /api/status (@127.0.0.1) 0.52ms referer=None")
            .expect("a refusal line parses");
        assert_eq!(
            (
                refused.kind,
                refused.outcome,
                refused.status,
                refused.ip.as_deref(),
                refused.path.as_deref()
            ),
            (
                Kind::Auth,
                Outcome::Failure,
                Some(403),
                Some("127.0.0.1"),
                Some("/api/status")
            ),
            "a 403 from the peer: {refused:?}"
        );
        let query = format
            .parse(b"[W 2026-12-07 18:06:57.279 ServerApp] 403 GET /api/status?token=[secret] (@10.0.0.8) 0.52ms referer=None")
            .expect("parses");
        assert_eq!(
            query.path.as_deref(),
            Some("/api/status?token=[secret]"),
            "the server hides the token itself"
        );
        let said = format
            .parse(b"[W 2026-12-07 18:06:57.179 ServerApp] wrote error: 'Forbidden'")
            .expect("a message line parses");
        assert_eq!(
            (said.kind, said.message.as_deref()),
            (Kind::Log, Some("wrote error: 'Forbidden'")),
            "kept as a message, not unparsed"
        );
        let accepted = format
            .parse(b"[D 2026-12-08 03:08:23.244 ServerApp] 200 GET /api/status (2af12b9aeba34a55808b4dbb93cd8d5e@127.0.0.1) 1.16ms")
            .expect("an accepted request parses");
        assert_eq!(
            (accepted.outcome, accepted.actor.as_deref()),
            (Outcome::Success, Some("2af12b9aeba34a55808b4dbb93cd8d5e")),
            "a success, by the user the server made for the token"
        );
        let terminal = format
            .parse(b"[W 2026-12-07 18:07:01.002 TerminalsExtensionApp] 403 GET /api/terminals (@127.0.0.1) 0.40ms referer=None")
            .expect("another logger's refusal parses");
        assert_eq!(terminal.status, Some(403), "whichever logger writes it");
        assert_eq!(
            jupyter.auth.sign_ins().classify(403),
            (Kind::Auth, Outcome::Failure),
            "a missing and a wrong token both get 403: it stays a failed sign-in"
        );
    }
}
