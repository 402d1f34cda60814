//! The service's files under `service_dir`: the config files its profile names, which key
//! each one holds and how the service reads it (a string at the root of a TOML document, or a
//! dotenv variable), how to put a new value where the service will read it, and its SQLite
//! database. The credential inventory, the key checks, rotation and the evidence all read
//! keys through here, so they agree on what the service sees.
//!
//! The service's account owns `service_dir` and may swap any file in it for a link, a device
//! or a FIFO: a config file is opened through a handle on `service_dir` with no link followed
//! below it ([`open_config`]), and read only if it is a regular file, at most
//! `fsutil::CONFIG_MAX` bytes ([`read_config`]).

use std::path::{Path, PathBuf};

use gatehouse_events::profile::{ConfigFile, ConfigFormat, EVERY_USER};
use gatehouse_events::{KeyPath, Profile};

use super::{htpasswd, structured, Service};
use crate::fsutil::{self, Dir, Facts, Regular};

/// What to say when `service_dir` is not set and `what` is needed.
pub fn no_dir(what: &str) -> String {
    format!("service_dir is not set in the agent's config, so {what} cannot be found")
}

impl<'a> Service<'a> {
    /// The service's working directory, if configured.
    pub fn dir(&self) -> Option<&'a Path> {
        self.settings.dir.as_deref()
    }

    /// Every config file entry of the profile with its path (see [`config_files`]).
    pub fn config_files(&self) -> Option<Vec<(PathBuf, &'a ConfigFile)>> {
        Some(config_files(self.profile, self.dir()?))
    }

    /// The distinct config file paths, sorted.
    pub fn config_paths(&self) -> Option<Vec<PathBuf>> {
        let mut paths: Vec<PathBuf> = self
            .config_files()?
            .into_iter()
            .map(|(path, _)| path)
            .collect();
        paths.sort();
        paths.dedup();
        Some(paths)
    }

    /// The profile's config file entry that holds the key `name`.
    pub fn file_holding(&self, name: &str) -> Option<&'a ConfigFile> {
        self.profile
            .config_files
            .iter()
            .find(|file| holds(file, name))
    }

    /// The service's SQLite database file.
    pub fn database(&self) -> Result<PathBuf, String> {
        let db = self.profile.database.as_ref().ok_or_else(|| {
            format!(
                "the {} profile names no database ([database] with path and format = \"sqlite\"), so there is nothing the agent can snapshot; if its data is in a database server, back that up with its own tools",
                self.profile.display_name
            )
        })?;
        if db.format != "sqlite" {
            return Err(format!(
                "only SQLite databases are snapshotted, not {}",
                db.format
            ));
        }
        let dir = self.dir().ok_or_else(|| no_dir("the database"))?;
        Ok(dir.join(&db.path))
    }
}

/// Every config file entry of the profile with its path under `dir`, in the profile's order
/// (one file may hold several keys and appear more than once).
pub fn config_files<'p>(profile: &'p Profile, dir: &Path) -> Vec<(PathBuf, &'p ConfigFile)> {
    profile
        .config_files
        .iter()
        .map(|file| (dir.join(&file.path), file))
        .collect()
}

/// The config file at `relative` (as the profile names it) below `dir`, opened without
/// following a link below `dir`: a regular file, with its facts.
pub fn open_config(dir: &Path, relative: &str) -> std::io::Result<Regular> {
    let shown = dir.join(relative);
    let (parent, name) = fsutil::split(Path::new(relative))?;
    Dir::open(dir)?
        .subdir(parent)?
        .open_regular(name)?
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{}: no such file", shown.display()),
            )
        })
}

/// The text of the config file at `relative` below `dir` (see [`open_config`]), at most
/// `fsutil::CONFIG_MAX` bytes, and its facts.
pub fn read_config(dir: &Path, relative: &str) -> std::io::Result<(String, Facts)> {
    let mut regular = open_config(dir, relative)?;
    let shown = dir.join(relative);
    let bytes = regular
        .read_all(fsutil::CONFIG_MAX)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", shown.display())))?;
    let text = String::from_utf8(bytes).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is not UTF-8 text", shown.display()),
        )
    })?;
    Ok((text, regular.facts))
}

/// Whether the key called `name` belongs in `file`: its one key (or one its key path finds),
/// or a variable with its prefix.
pub fn holds(file: &ConfigFile, name: &str) -> bool {
    match (&file.key, &file.key_prefix) {
        (Some(key), _) if file.format.is_structured() => {
            KeyPath::parse(key).is_ok_and(|path| path.finds(name))
        }
        (Some(key), _) if file.format.is_hashed() && key == EVERY_USER => {
            htpasswd::is_user_name(name)
        }
        (Some(key), _) => key == name,
        (None, Some(prefix)) => name.starts_with(prefix.as_str()),
        (None, None) => false,
    }
}

/// Why a config file yields none of its keys although it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyProblem {
    /// The TOML document has no root-level `key` (and none inside a table either).
    Missing(String),
    /// Not TOML, not a string, or inside a table where the service ignores it.
    Unusable(String),
}

/// The keys (name and value) `text`, the content of `file`, holds as the service reads them.
pub fn keys_in(file: &ConfigFile, text: &str) -> Result<Vec<(String, String)>, KeyProblem> {
    match file.format {
        ConfigFormat::TomlRootKey => {
            let Some(key) = &file.key else {
                return Ok(Vec::new());
            };
            match toml_root_key(text, key) {
                Ok(Some(value)) => Ok(vec![(key.clone(), value)]),
                Ok(None) => Err(KeyProblem::Missing(key.clone())),
                Err(problem) => Err(KeyProblem::Unusable(problem)),
            }
        }
        ConfigFormat::Dotenv => Ok(dotenv(text)
            .into_iter()
            .filter(|(name, _)| holds(file, name))
            .collect()),
        ConfigFormat::Htpasswd => {
            let Some(user) = &file.key else {
                return Ok(Vec::new());
            };
            if user == EVERY_USER {
                let users = htpasswd::entries(text);
                return if users.is_empty() {
                    Err(KeyProblem::Missing("any user".into()))
                } else {
                    Ok(users)
                };
            }
            match htpasswd::find(text, user) {
                Some((hash, _)) => Ok(vec![(user.clone(), hash)]),
                None => Err(KeyProblem::Missing(user.clone())),
            }
        }
        ConfigFormat::Json | ConfigFormat::Yaml | ConfigFormat::Ini => {
            let Some(path) = key_path(file) else {
                return Ok(Vec::new());
            };
            match structured::find(file.format, text, &path) {
                Ok(found) if found.is_empty() => Err(KeyProblem::Missing(path.to_string())),
                Ok(found) => Ok(found.into_iter().map(|f| (f.name, f.value)).collect()),
                Err(problem) => Err(KeyProblem::Unusable(problem)),
            }
        }
    }
}

/// The key path of a JSON, YAML or INI file (checked when the profile was read).
fn key_path(file: &ConfigFile) -> Option<KeyPath> {
    file.key.as_deref().and_then(|key| KeyPath::parse(key).ok())
}

/// The key `name` of a JSON, YAML or INI `file`, found in `text`.
fn structured_key(file: &ConfigFile, text: &str, name: &str) -> Option<structured::Found> {
    let path = key_path(file)?;
    structured::find(file.format, text, &path)
        .ok()?
        .into_iter()
        .find(|f| f.name == name)
}

/// The value of the key `name` in `text`, the content of `file`, as the service reads it
/// (for an htpasswd file, the user's hash).
pub fn value_of(file: &ConfigFile, text: &str, name: &str) -> Option<String> {
    match file.format {
        ConfigFormat::Htpasswd => htpasswd::find(text, name).map(|(hash, _)| hash),
        ConfigFormat::TomlRootKey => toml_root_key(text, name).ok().flatten(),
        ConfigFormat::Dotenv => dotenv(text)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v),
        ConfigFormat::Json | ConfigFormat::Yaml | ConfigFormat::Ini => {
            structured_key(file, text, name).map(|f| f.value)
        }
    }
}

/// A string key at the root of a TOML document; a key of that name inside a table is a
/// problem worth saying (Sekha ignores it there).
pub fn toml_root_key(text: &str, key: &str) -> Result<Option<String>, String> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| format!("not valid TOML: {}", e.message()))?;
    match table.get(key) {
        Some(toml::Value::String(value)) => Ok(Some(value.clone())),
        Some(_) => Err(format!("{key} is not a string")),
        None => {
            let nested = table
                .iter()
                .find(|(_, v)| v.as_table().is_some_and(|t| t.contains_key(key)))
                .map(|(name, _)| name.clone());
            match nested {
                Some(section) => Err(format!(
                    "{key} is inside [{section}], where the service ignores it; it must be at the root"
                )),
                None => Ok(None),
            }
        }
    }
}

/// `KEY=value` lines (with optional `export `, quotes and comments), last one winning.
pub fn dotenv(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = strip_export(line);
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let value = match value.chars().next() {
            Some(q @ ('"' | '\'')) => value[1..].split(q).next().unwrap_or("").to_owned(),
            _ => value.split(" #").next().unwrap_or("").trim().to_owned(),
        };
        let name = name.trim().to_owned();
        out.retain(|(n, _)| n != &name);
        out.push((name, value));
    }
    out
}

/// A dotenv line without its `export` keyword (and the blanks after it).
fn strip_export(line: &str) -> &str {
    match line.strip_prefix("export") {
        Some(rest) if rest.starts_with([' ', '\t']) => rest.trim_start(),
        _ => line,
    }
}

/// The config text with `name` set to `value`: a TOML key at the root (above any table,
/// where the service reads it; a copy inside a table, which the service ignores, is removed),
/// a dotenv line in place, the bytes of a JSON, YAML or INI value (the text unchanged if the
/// key is not there, or not written so that it can be replaced in place). Everything else is
/// kept as it was. In an htpasswd file, `value` is the user's new hash.
pub fn replace_value(text: &str, file: &ConfigFile, name: &str, value: &str) -> String {
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    match file.format {
        ConfigFormat::Htpasswd => {
            return htpasswd::replace(text, name, value).unwrap_or_else(|| text.to_owned());
        }
        ConfigFormat::TomlRootKey => {
            let root_end = lines
                .iter()
                .position(|l| l.trim_start().starts_with('['))
                .unwrap_or(lines.len());
            let line = format!("{name} = \"{value}\"");
            let defines = |l: &String| {
                l.trim_start()
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            };
            // A copy inside a table is ignored by the service; the key moves to the root.
            let mut i = root_end;
            while i < lines.len() {
                if defines(&lines[i]) {
                    lines.remove(i);
                } else {
                    i += 1;
                }
            }
            let existing = lines[..root_end].iter().position(defines);
            match existing {
                Some(i) => lines[i] = line,
                None => lines.insert(0, line),
            }
        }
        ConfigFormat::Dotenv => {
            let existing = lines.iter().rposition(|l| {
                strip_export(l.trim_start())
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            });
            match existing {
                Some(i) => {
                    let line = lines[i].trim_start();
                    let export = if strip_export(line).len() < line.len() {
                        "export "
                    } else {
                        ""
                    };
                    lines[i] = format!("{export}{name}={value}");
                }
                None => lines.push(format!("{name}={value}")),
            }
        }
        ConfigFormat::Json | ConfigFormat::Yaml | ConfigFormat::Ini => {
            return match structured_key(file, text, name).and_then(|f| f.span) {
                Some(span) => structured::replace(file.format, text, span, value),
                None => text.to_owned(),
            };
        }
    }
    let mut out = lines.join(newline);
    out.push_str(newline);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_of(profile: &str, name: &str) -> ConfigFile {
        let p = Profile::builtin(profile).expect("built in").expect("valid");
        p.config_files
            .into_iter()
            .find(|f| holds(f, name))
            .expect("config file")
    }

    #[test]
    fn the_new_key_goes_where_the_service_reads_it_and_nothing_else_moves() {
        let sekha = file_of("sekha", "mcp_api_key");
        let text = "# Sekha\nmcp_api_key = \"old\"\n\n[server]\nport = 8080\n";
        assert_eq!(
            replace_value(text, &sekha, "mcp_api_key", "NEW"),
            "# Sekha\nmcp_api_key = \"NEW\"\n\n[server]\nport = 8080\n",
            "replaced in place at the root"
        );
        let in_table = "[server]\nport = 8080\nmcp_api_key = \"old\"\n";
        let fixed = replace_value(in_table, &sekha, "mcp_api_key", "NEW");
        assert_eq!(
            fixed, "mcp_api_key = \"NEW\"\n[server]\nport = 8080\n",
            "a key only inside a table moves to the root, where the service reads it"
        );
        assert_eq!(
            toml_root_key(&fixed, "mcp_api_key")
                .ok()
                .flatten()
                .as_deref(),
            Some("NEW"),
            "which the root reader sees"
        );
        let jelmore = file_of("jelmore", "API_KEY_CLIENT");
        let env = "API_KEY_ADMIN=a\nexport API_KEY_CLIENT=\"old\"\nPOSTGRES_PASSWORD=pw\n";
        assert_eq!(
            replace_value(env, &jelmore, "API_KEY_CLIENT", "NEW"),
            "API_KEY_ADMIN=a\nexport API_KEY_CLIENT=NEW\nPOSTGRES_PASSWORD=pw\n",
            "only that variable changes"
        );
        let windows = "API_KEY_ADMIN=a\r\nexport\tAPI_KEY_CLIENT=old\r\n";
        assert_eq!(
            replace_value(windows, &jelmore, "API_KEY_CLIENT", "NEW"),
            "API_KEY_ADMIN=a\r\nexport API_KEY_CLIENT=NEW\r\n",
            "CRLF line ends are kept, and `export` with a tab is still the same variable"
        );
        let prefix = "API_KEY=plain\nAPI_KEY_CLIENT=old\n";
        assert_eq!(
            replace_value(prefix, &jelmore, "API_KEY_CLIENT", "NEW"),
            "API_KEY=plain\nAPI_KEY_CLIENT=NEW\n",
            "a variable whose name is a prefix of another is not touched"
        );
    }

    #[test]
    fn a_file_holds_its_key_or_the_variables_with_its_prefix() {
        let jelmore = file_of("jelmore", "API_KEY_CLIENT");
        let env =
            "API_KEY_ADMIN=a\nexport API_KEY_CLIENT=b\n# API_KEY_OLD=c\nPOSTGRES_PASSWORD=pw\n";
        assert_eq!(
            keys_in(&jelmore, env),
            Ok(vec![
                ("API_KEY_ADMIN".to_owned(), "a".to_owned()),
                ("API_KEY_CLIENT".to_owned(), "b".to_owned())
            ]),
            "every API_KEY_ variable, not comments or other variables"
        );
        let sekha = file_of("sekha", "mcp_api_key");
        assert_eq!(
            keys_in(&sekha, "[server]\nport = 1\n"),
            Err(KeyProblem::Missing("mcp_api_key".into())),
            "a TOML file without the key says so"
        );
        assert!(
            matches!(
                keys_in(&sekha, "[server]\nmcp_api_key = \"x\"\n"),
                Err(KeyProblem::Unusable(p)) if p.contains("inside [server]")
            ),
            "and a key inside a table is a problem the service would not see"
        );
    }
}
