//! The service's credentials as its config files hold them, described without their values:
//! a fingerprint, a length, the file and when it changed.

use std::path::Path;

use gatehouse_events::profile::Role;
use gatehouse_events::Profile;
use gatehouse_protocol::{CredentialsReport, HostCredential};

use crate::service::files::{self, fingerprint, KeyProblem};

/// Read every credential the profile names from the files under `service_dir`.
pub fn inventory(profile: &Profile, service_dir: Option<&Path>) -> CredentialsReport {
    let mut report = CredentialsReport {
        credentials: Vec::new(),
        problems: Vec::new(),
    };
    let Some(dir) = service_dir else {
        report
            .problems
            .push(files::no_dir("the service's config files"));
        return report;
    };
    for (path, file) in files::config_files(profile, dir) {
        let shown = path.display().to_string();
        let (text, facts) = match files::read_config(dir, &file.path) {
            Ok(read) => read,
            Err(e) => {
                report.problems.push(format!("cannot read {shown}: {e}"));
                continue;
            }
        };
        let modified = facts.modified_secs().unwrap_or(0);
        let role = match file.role {
            Role::ApiKey => "api_key",
            Role::JwtSecret => "jwt_secret",
        };
        let found = match files::keys_in(file, &text) {
            Ok(found) => found,
            Err(KeyProblem::Missing(key)) => {
                report
                    .problems
                    .push(format!("{shown} has no root-level {key}"));
                Vec::new()
            }
            Err(KeyProblem::Unusable(problem)) => {
                report.problems.push(format!("{shown}: {problem}"));
                Vec::new()
            }
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
