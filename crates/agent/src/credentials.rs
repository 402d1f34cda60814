//! The service's credentials as its config files hold them, described without their values:
//! a fingerprint, a length, the file and when it changed.

use std::path::Path;

use gatehouse_events::profile::{ConfigFormat, Role};
use gatehouse_events::Profile;
use gatehouse_protocol::{CredentialsReport, HostCredential};

/// Read every credential the profile names from the files under `service_dir`.
pub fn inventory(profile: &Profile, service_dir: Option<&Path>) -> CredentialsReport {
    let mut report = CredentialsReport {
        credentials: Vec::new(),
        problems: Vec::new(),
    };
    let Some(dir) = service_dir else {
        report.problems.push(
            "service_dir is not set in the agent's config, so the service's config files cannot be found"
                .into(),
        );
        return report;
    };
    for file in &profile.config_files {
        let path = dir.join(&file.path);
        let shown = path.display().to_string();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                report.problems.push(format!("cannot read {shown}: {e}"));
                continue;
            }
        };
        let modified = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs() as i64);
        let role = match file.role {
            Role::ApiKey => "api_key",
            Role::JwtSecret => "jwt_secret",
        };
        let found: Vec<(String, String)> = match file.format {
            ConfigFormat::TomlRootKey => {
                let Some(key) = &file.key else { continue };
                match toml_root_key(&text, key) {
                    Ok(Some(value)) => vec![(key.clone(), value)],
                    Ok(None) => {
                        report
                            .problems
                            .push(format!("{shown} has no root-level {key}"));
                        Vec::new()
                    }
                    Err(problem) => {
                        report.problems.push(format!("{shown}: {problem}"));
                        Vec::new()
                    }
                }
            }
            ConfigFormat::Dotenv => dotenv(&text)
                .into_iter()
                .filter(|(name, _)| match (&file.key, &file.key_prefix) {
                    (Some(key), _) => name == key,
                    (None, Some(prefix)) => name.starts_with(prefix.as_str()),
                    (None, None) => false,
                })
                .collect(),
        };
        for (name, value) in found {
            let weak = value.len() < profile.keys.min_length
                || profile.keys.known_weak.iter().any(|w| w == &value);
            report.credentials.push(HostCredential {
                role: role.into(),
                name,
                file: shown.clone(),
                fingerprint: fingerprint(&value),
                length: value.len() as u32,
                file_modified: modified,
                weak,
                file_digest: fingerprint(&text),
            });
        }
    }
    report
}

/// The first 16 hex digits of the SHA-256 of a secret.
pub fn fingerprint(value: &str) -> String {
    gatehouse_pki::secret_fingerprint(value.as_bytes())
}

/// A string key at the root of a TOML document; a key of that name inside a table is a
/// problem worth saying (Sekha ignores it there).
pub(crate) fn toml_root_key(text: &str, key: &str) -> Result<Option<String>, String> {
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
pub(crate) fn dotenv(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = crate::rotate::strip_export(line);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_profile_finds_its_keys_and_never_reports_a_value() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sekha = "a".repeat(40);
        std::fs::write(
            dir.path().join("config.toml"),
            format!("mcp_api_key = \"{sekha}\"\n\n[server]\nport = 8080\n"),
        )
        .expect("write");
        std::fs::write(
            dir.path().join(".env"),
            "API_KEY_ADMIN=\"admin-key-admin-key-admin-key-admin\"\nexport API_KEY_CLIENT=X-API-Key\n# API_KEY_OLD=gone\nPOSTGRES_PASSWORD=pw\nAPI_KEY=secret\nSECRET_KEY='change-this-secret-key-in-production'\n",
        )
        .expect("write");
        let load = |name: &str| {
            Profile::builtin(name)
                .expect("built in")
                .expect("valid profile")
        };
        let s = inventory(&load("sekha"), Some(dir.path()));
        assert_eq!(s.credentials.len(), 1, "Sekha's one key: {s:?}");
        assert_eq!(s.credentials[0].name, "mcp_api_key", "by its TOML key");
        assert_eq!(
            s.credentials[0].fingerprint,
            fingerprint(&sekha),
            "a fingerprint"
        );
        assert!(!s.credentials[0].weak, "40 characters is long enough");
        let j = inventory(&load("jelmore"), Some(dir.path()));
        let names: Vec<&str> = j.credentials.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["API_KEY_ADMIN", "API_KEY_CLIENT"],
            "every API_KEY_ variable, not comments"
        );
        assert!(
            j.credentials[1].weak,
            "the literal X-API-Key is a published value"
        );
        let r = inventory(&load("rae"), Some(dir.path()));
        assert_eq!(
            r.credentials.len(),
            2,
            "RAE's API key and JWT secret: {r:?}"
        );
        assert!(
            r.credentials.iter().all(|c| c.weak),
            "'secret' and the default SECRET_KEY are weak"
        );
        let text = serde_json::to_string(&(s, j, r)).expect("json");
        for secret in [
            sekha.as_str(),
            "admin-key-admin-key-admin-key-admin",
            "change-this-secret",
        ] {
            assert!(!text.contains(secret), "no value reaches the report");
        }
    }

    #[test]
    fn a_key_inside_a_table_and_a_missing_file_are_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("config.toml"),
            "[server]\nport = 8080\nmcp_api_key = \"x\"\n",
        )
        .expect("write");
        let sekha = Profile::builtin("sekha").expect("built in").expect("valid");
        let report = inventory(&sekha, Some(dir.path()));
        assert!(
            report.credentials.is_empty(),
            "a key in a table is not the service's key"
        );
        assert!(
            report.problems[0].contains("inside [server]"),
            "and the operator is told why: {:?}",
            report.problems
        );
        let rae = Profile::builtin("rae").expect("built in").expect("valid");
        let missing = inventory(&rae, Some(dir.path()));
        assert!(
            missing.problems.iter().any(|p| p.contains(".env")),
            "a missing .env is named: {:?}",
            missing.problems
        );
        assert!(
            inventory(&rae, None).problems[0].contains("service_dir"),
            "without service_dir the agent says what to set"
        );
    }
}
