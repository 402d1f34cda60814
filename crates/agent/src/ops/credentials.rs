//! The service's credentials as its config files hold them, described without their values:
//! a fingerprint, a length, the file and when it changed.
//!
//! What the inventory offers is what a rotation can do:
//! - a key the file does not hold where the service reads it (absent, or inside a TOML table
//!   where Sekha ignores it) is listed with the fingerprint of the published default the
//!   service then uses, as weak: rotating it writes a new key where the service reads it
//!   (Sekha's key moves to the root, RAE's missing `SECRET_KEY` is set);
//! - a variable the service reads as a key by mistake (Jelmore's `API_KEY_HEADER`) is not a
//!   key to rotate: it is a problem whose fix is removing it;
//! - a key that a variable of the service's environment overrides is said, since rotating the
//!   file's would not change the key in use.

use std::path::Path;

use gatehouse_events::profile::{ConfigFormat, Role};
use gatehouse_events::Profile;
use gatehouse_protocol::{CredentialsReport, HostCredential};

use gatehouse_pki::Fingerprints;
use gatehouse_protocol::RenamedFingerprint;

use crate::service::files::{self, KeyProblem};
use crate::service::htpasswd::{self, Hashed};
use crate::service::Service;

/// The inventory of the service beside the agent: its files, and what its process's
/// environment overrides.
pub fn of_service(service: &Service<'_>) -> CredentialsReport {
    let mut report = inventory(
        service.profile,
        service.dir(),
        &service.fingerprints,
        service.hashed(),
    );
    if let Ok(found) = service.found_keys() {
        for key in found.keys.iter().filter(|k| !k.in_use()) {
            if let Some(by) = &key.overridden_by {
                report.problems.push(format!(
                    "{by} wins over {} in {}: rotating the file's key would not change the key the service uses; change it where the service's environment is set (its unit's Environment= or EnvironmentFile=)",
                    key.name,
                    key.place()
                ));
            }
        }
    }
    report
}

/// Each credential's fingerprint in the form `before` and in `after`, from one reading of
/// the files: how the console carries what it knew of a key over to a new fingerprint key.
/// A password this agent wrote as a hash was known by the password's fingerprint; under the
/// new key it is known by the hash's (the password is not here to fingerprint again).
pub fn renamed(
    service: &Service<'_>,
    before: &Fingerprints,
    after: &Fingerprints,
    known: &Hashed,
) -> Vec<RenamedFingerprint> {
    let (found, _) = scan(service.profile, service.dir());
    found
        .into_iter()
        .map(|f| RenamedFingerprint {
            before: fingerprint(before, known, &f),
            after: after.of(&f.value),
            name: f.name,
        })
        .collect()
}

/// The fingerprint the console knows a credential by (see [`Hashed`]).
fn fingerprint(fingerprints: &Fingerprints, known: &Hashed, found: &Found) -> String {
    let of_value = fingerprints.of(&found.value);
    if !found.hashed {
        return of_value;
    }
    known
        .password_of(&of_value)
        .map_or(of_value.clone(), |(password, _)| password.to_owned())
}

/// Read every credential the profile names from the files under `service_dir`.
pub fn inventory(
    profile: &Profile,
    service_dir: Option<&Path>,
    fingerprints: &Fingerprints,
    known: &Hashed,
) -> CredentialsReport {
    let (found, problems) = scan(profile, service_dir);
    CredentialsReport {
        credentials: found
            .into_iter()
            .map(|f| HostCredential {
                role: f.role.into(),
                fingerprint: fingerprint(fingerprints, known, &f),
                // A hashed password's length is known only for one this agent wrote (0: not
                // known; it is then not judged by its length).
                length: if f.hashed {
                    known
                        .password_of(&fingerprints.of(&f.value))
                        .map_or(0, |(_, length)| length)
                } else {
                    f.value.len() as u32
                },
                file_modified: f.modified,
                weak: f.weak
                    || (f.hashed
                        && known.password_of(&fingerprints.of(&f.value)).is_some_and(
                            |(_, length)| (length as usize) < profile.keys.min_length,
                        )),
                file_digest: fingerprints.of(f.text.as_bytes()),
                file: f.file,
                name: f.name,
            })
            .collect(),
        problems,
    }
}

/// A key as read from its file, value and all; never leaves this module.
struct Found {
    role: &'static str,
    name: String,
    file: String,
    value: zeroize::Zeroizing<String>,
    /// `value` is a hash of the secret (an htpasswd password).
    hashed: bool,
    modified: i64,
    weak: bool,
    text: std::rc::Rc<zeroize::Zeroizing<String>>,
}

/// Read every credential the profile names from the files under `service_dir`, and what is
/// wrong with them.
fn scan(profile: &Profile, service_dir: Option<&Path>) -> (Vec<Found>, Vec<String>) {
    let mut keys = Vec::new();
    let mut report = CredentialsReport {
        credentials: Vec::new(),
        problems: Vec::new(),
    };
    let Some(dir) = service_dir else {
        report
            .problems
            .push(files::no_dir("the service's config files"));
        return (keys, report.problems);
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
        let (mut found, problem) = match files::keys_in(file, &text) {
            Ok(found) => (found, None),
            Err(KeyProblem::Missing(key)) if file.format == ConfigFormat::TomlRootKey => {
                (Vec::new(), Some(format!("{shown} has no root-level {key}")))
            }
            Err(KeyProblem::Missing(key)) => (Vec::new(), Some(format!("{shown} has no {key}"))),
            Err(KeyProblem::Unusable(problem)) => (Vec::new(), Some(format!("{shown}: {problem}"))),
        };
        match (found.is_empty(), &file.key, &file.default) {
            (true, Some(key), Some(default)) => {
                let said = problem.unwrap_or_else(|| format!("{shown} does not set {key}"));
                report.problems.push(format!(
                    "{said}: {name} uses its published default for {key}. Rotating {key} writes a new key where {name} reads it.",
                    name = profile.display_name
                ));
                found.push((key.clone(), default.clone()));
            }
            _ => report.problems.extend(problem),
        }
        found.retain(|(name, _)| match profile.not_key(name) {
            Some(not_key) => {
                report
                    .problems
                    .push(format!("{name} in {shown}: {}", not_key.fix));
                false
            }
            None => true,
        });
        let text = std::rc::Rc::new(zeroize::Zeroizing::new(text));
        for (name, value) in found {
            // An htpasswd entry that is no hash is the password itself, in plain text: weak
            // whatever it is (whoever reads the file has it).
            let plain = htpasswd::scheme(&value) == htpasswd::Scheme::Plain;
            let hashed = file.format.is_hashed() && !plain;
            let weak = if hashed {
                htpasswd::published(profile, &value)
            } else {
                (file.format.is_hashed() && plain)
                    || value.len() < profile.keys.min_length
                    || profile.is_published(&value)
            };
            keys.push(Found {
                role,
                name,
                file: shown.clone(),
                value: zeroize::Zeroizing::new(value),
                hashed,
                modified,
                weak,
                text: text.clone(),
            });
        }
    }
    (keys, report.problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An htpasswd file (Radicale's users): a bcrypt hash nothing is known of is not weak by
    /// its look, but a password kept in plain text (Radicale's autodetect, its default,
    /// compares such a line as it is) or a hash of a published password is weak: the
    /// documentation's `user1:password1` was reported as fine before.
    #[test]
    fn a_plain_text_or_published_password_in_an_htpasswd_file_is_weak() {
        let dir = tempfile::tempdir().expect("tempdir");
        let strong = htpasswd::hash("a-long-random-password-0123456789").expect("hash");
        std::fs::write(
            dir.path().join("users"),
            format!(
                "alice:{strong}\ncarol:password1\ndave:{{SHA}}44rSFJQ9qtHWTBAvrsKd5K/p2j0=\nerin:a-long-plain-text-password-0123456789\n"
            ),
        )
        .expect("write");
        let radicale = Profile::builtin("radicale")
            .expect("built in")
            .expect("valid");
        let report = inventory(
            &radicale,
            Some(dir.path()),
            &Fingerprints::unkeyed(),
            &Hashed::default(),
        );
        let weak = |name: &str| {
            report
                .credentials
                .iter()
                .find(|c| c.name == name)
                .unwrap_or_else(|| panic!("{name} is listed: {report:?}"))
                .weak
        };
        assert!(!weak("alice"), "a bcrypt hash of no published password");
        assert!(
            weak("carol"),
            "password1 in plain text: published, and readable in the file"
        );
        assert!(
            weak("dave"),
            "a {{SHA}} hash of password1: the published password is tried"
        );
        assert!(
            weak("erin"),
            "a long password kept in plain text is still readable by whoever reads the file"
        );
        let carol = report
            .credentials
            .iter()
            .find(|c| c.name == "carol")
            .expect("carol");
        assert_eq!(
            carol.fingerprint,
            Fingerprints::unkeyed().of("password1"),
            "a plain-text entry is the password: known by its own fingerprint"
        );
        assert!(
            !format!("{report:?}").contains("password1"),
            "and its value is in no report"
        );
    }

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
        let s = inventory(
            &load("sekha"),
            Some(dir.path()),
            &Fingerprints::unkeyed(),
            &Hashed::default(),
        );
        assert_eq!(s.credentials.len(), 1, "Sekha's one key: {s:?}");
        assert!(s.problems.is_empty(), "and nothing wrong: {:?}", s.problems);
        assert_eq!(s.credentials[0].name, "mcp_api_key", "by its TOML key");
        assert_eq!(
            s.credentials[0].fingerprint,
            Fingerprints::unkeyed().of(&sekha),
            "a fingerprint"
        );
        assert!(!s.credentials[0].weak, "40 characters is long enough");
        let j = inventory(
            &load("jelmore"),
            Some(dir.path()),
            &Fingerprints::unkeyed(),
            &Hashed::default(),
        );
        let names: Vec<&str> = j.credentials.iter().map(|c| c.name.as_str()).collect();
        assert!(
            j.problems.is_empty(),
            "no API_KEY_HEADER here, so nothing to say: {:?}",
            j.problems
        );
        assert_eq!(
            names,
            ["API_KEY_ADMIN", "API_KEY_CLIENT"],
            "every API_KEY_ variable, not comments"
        );
        assert!(
            j.credentials[1].weak,
            "the literal X-API-Key is a published value"
        );
        let r = inventory(
            &load("rae"),
            Some(dir.path()),
            &Fingerprints::unkeyed(),
            &Hashed::default(),
        );
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

    /// A finding the console can fix offers the fix: Sekha's key written inside a table (so
    /// its published default applies) and RAE's unset SECRET_KEY are listed as the weak
    /// defaults they are, which a rotation replaces; Jelmore's API_KEY_HEADER is not a key to
    /// rotate at all.
    #[test]
    fn keys_the_service_does_not_read_from_its_file_are_offered_as_the_defaults_in_use() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("config.toml"),
            "[llm_bridge]\nurl = \"x\"\nmcp_api_key = \"dev_api_key_12345678901234567890123456789012\"\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join(".env"),
            "API_KEY=kJ8dF3mN9pQ2wR5tY7uH0jK3lM6nP9qS2vT5wX8zA1b\nAPI_KEY_ADMIN=kJ8dF3mN9pQ2wR5tY7uH0jK3lM6nP9qS2vT5wX8zA1b\nAPI_KEY_HEADER=X-API-Key\n",
        )
        .expect("write");
        let load = |name: &str| Profile::builtin(name).expect("built in").expect("valid");
        let sekha = inventory(
            &load("sekha"),
            Some(dir.path()),
            &Fingerprints::unkeyed(),
            &Hashed::default(),
        );
        let key = &sekha.credentials[0];
        assert_eq!(
            (key.name.as_str(), key.fingerprint.clone(), key.weak),
            (
                "mcp_api_key",
                Fingerprints::unkeyed().of("dev_default_key_change_me_1234567890"),
                true
            ),
            "the key Sekha uses is its built-in default, offered for rotation: {sekha:?}"
        );
        assert!(
            sekha.problems[0].contains("inside [llm_bridge]")
                && sekha.problems[0].contains("Rotating mcp_api_key writes a new key"),
            "the operator is told why and what a rotation does: {:?}",
            sekha.problems
        );
        let rae = inventory(
            &load("rae"),
            Some(dir.path()),
            &Fingerprints::unkeyed(),
            &Hashed::default(),
        );
        let secret = rae
            .credentials
            .iter()
            .find(|c| c.name == "SECRET_KEY")
            .expect("the unset SECRET_KEY is offered");
        assert!(
            secret.weak
                && secret.fingerprint
                    == Fingerprints::unkeyed().of("change-this-secret-key-in-production"),
            "as its published default: {secret:?}"
        );
        let jelmore = inventory(
            &load("jelmore"),
            Some(dir.path()),
            &Fingerprints::unkeyed(),
            &Hashed::default(),
        );
        assert!(
            jelmore
                .credentials
                .iter()
                .all(|c| c.name != "API_KEY_HEADER"),
            "API_KEY_HEADER is not offered as a key: {jelmore:?}"
        );
        assert!(
            jelmore
                .problems
                .iter()
                .any(|p| p.starts_with("API_KEY_HEADER") && p.contains("Remove the variable")),
            "it is a problem whose fix is removing it: {:?}",
            jelmore.problems
        );
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
        let report = inventory(
            &sekha,
            Some(dir.path()),
            &Fingerprints::unkeyed(),
            &Hashed::default(),
        );
        assert!(
            report.credentials.iter().all(|c| c.weak),
            "a key in a table is not the service's key: its default is"
        );
        assert!(
            report.problems[0].contains("inside [server]"),
            "and the operator is told why: {:?}",
            report.problems
        );
        let rae = Profile::builtin("rae").expect("built in").expect("valid");
        let missing = inventory(
            &rae,
            Some(dir.path()),
            &Fingerprints::unkeyed(),
            &Hashed::default(),
        );
        assert!(
            missing.problems.iter().any(|p| p.contains(".env")),
            "a missing .env is named: {:?}",
            missing.problems
        );
        assert!(
            inventory(&rae, None, &Fingerprints::unkeyed(), &Hashed::default()).problems[0]
                .contains("service_dir"),
            "without service_dir the agent says what to set"
        );
    }
}
