//! The service's keys as its config files hold them (a missing key counts with the default
//! the service falls back to): long and random enough, and none of the published defaults.

use std::path::PathBuf;

use gatehouse_events::profile::ConfigFile;
use gatehouse_protocol::{CheckId, CheckResult};

use super::{fail, pass, unknown, Context};
use crate::service::files::{self, fingerprint};

/// The least randomness a key should carry, in bits.
const MIN_KEY_BITS: f64 = 128.0;

pub(super) fn strength(cx: &Context<'_>) -> CheckResult {
    let check = CheckId::KeyStrength;
    let keys = match keys(cx) {
        Ok(keys) => keys,
        Err(why) => return unknown(check, why, vec![]),
    };
    if keys.is_empty() {
        return unknown(
            check,
            "no key was found in the service's config files",
            vec![],
        );
    }
    let min = cx.service.profile.keys.min_length;
    let mut weak = 0;
    let mut evidence = Vec::new();
    for key in &keys {
        let bits = estimated_bits(&key.value);
        let short = key.value.len() < min;
        let low = bits < MIN_KEY_BITS;
        if short || low {
            weak += 1;
        }
        evidence.push(format!(
            "{} ({}{}): {} characters, about {:.0} bits, fingerprint {}{}",
            key.name,
            key.file,
            if key.defaulted {
                ", not set: the default applies"
            } else {
                ""
            },
            key.value.len(),
            bits,
            fingerprint(&key.value),
            match (short, low) {
                (true, _) => format!(" — shorter than the {min} characters required"),
                (false, true) => format!(" — less than {MIN_KEY_BITS:.0} bits of randomness"),
                _ => String::new(),
            }
        ));
    }
    if weak > 0 {
        fail(
            check,
            format!("{weak} key(s) are too short or too predictable"),
            evidence,
        )
    } else {
        pass(
            check,
            format!("every key has at least {min} characters and {MIN_KEY_BITS:.0} bits"),
            evidence,
        )
    }
}

pub(super) fn defaults(cx: &Context<'_>) -> CheckResult {
    let check = CheckId::DefaultKey;
    let keys = match keys(cx) {
        Ok(keys) => keys,
        Err(why) => return unknown(check, why, vec![]),
    };
    let mut evidence = Vec::new();
    for key in &keys {
        let known = cx.service.profile.keys.known_weak.contains(&key.value)
            || cx
                .service
                .profile
                .config_files
                .iter()
                .any(|f| f.default.as_deref() == Some(key.value.as_str()));
        if key.defaulted {
            evidence.push(format!(
                "{} is not set in {}: {} uses its published default",
                key.name, key.file, cx.service.profile.display_name
            ));
        } else if known {
            evidence.push(format!(
                "{} in {} is a published default or known key (fingerprint {})",
                key.name,
                key.file,
                fingerprint(&key.value)
            ));
        }
    }
    if cx.service.profile.name == "jelmore" {
        // Jelmore reads every API_KEY_* variable as a key, so its own compose file's
        // API_KEY_HEADER=X-API-Key makes that literal string a valid key.
        if let Some(header) = keys.iter().find(|k| k.name == "API_KEY_HEADER") {
            if !evidence.iter().any(|e| e.starts_with("API_KEY_HEADER")) {
                evidence.push(format!(
                    "API_KEY_HEADER in {} is read as a key named \"header\"",
                    header.file
                ));
            }
        }
    }
    if evidence.is_empty() {
        pass(
            check,
            "no default or published key is in use",
            vec![format!(
                "{} key(s) compared with the profile's known keys",
                keys.len()
            )],
        )
    } else {
        fail(
            check,
            "a default or published key is in use: anyone who read the docs has it",
            evidence,
        )
    }
}

struct FoundKey {
    name: String,
    file: String,
    value: String,
    /// Not set: the service's default applies.
    defaulted: bool,
}

fn config_files<'a>(cx: &Context<'a>) -> Result<Vec<(PathBuf, &'a ConfigFile)>, String> {
    cx.service
        .config_files()
        .ok_or_else(|| files::no_dir("the service's files"))
}

/// Every key the profile names, as its files hold it; a file's missing key appears with
/// its default value if the service falls back to one.
fn keys(cx: &Context<'_>) -> Result<Vec<FoundKey>, String> {
    let mut found = Vec::new();
    let dir = cx
        .service
        .dir()
        .ok_or_else(|| files::no_dir("the service's files"))?;
    for (path, file) in config_files(cx)? {
        let (text, _) = files::read_config(dir, &file.path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let shown = path.display().to_string();
        // Inside a table or absent: the service does not see it.
        let values = files::keys_in(file, &text).unwrap_or_default();
        if values.is_empty() {
            if let (Some(key), Some(default)) = (&file.key, &file.default) {
                found.push(FoundKey {
                    name: key.clone(),
                    file: shown.clone(),
                    value: default.clone(),
                    defaulted: true,
                });
            }
        }
        for (name, value) in values {
            found.push(FoundKey {
                name,
                file: shown.clone(),
                value,
                defaulted: false,
            });
        }
    }
    Ok(found)
}

/// Shannon entropy of the key's characters times its length: a rough upper bound on the
/// randomness in it, good at catching repeated or dictionary-like keys.
fn estimated_bits(value: &str) -> f64 {
    let bytes = value.as_bytes();
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[b as usize] += 1;
    }
    let n = bytes.len() as f64;
    let per_char: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum();
    per_char * n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_randomness_separates_generated_keys_from_patterns() {
        let generated = "kJ8dF3mN9pQ2wR5tY7uH0jK3lM6nP9qS2vT5wX8zA1b";
        assert!(
            estimated_bits(generated) > MIN_KEY_BITS,
            "a 43-character base64 key from the guide is strong enough"
        );
        assert!(
            estimated_bits(&"ab".repeat(20)) < MIN_KEY_BITS,
            "a long key of two repeated letters is not"
        );
        assert_eq!(estimated_bits(""), 0.0, "an empty key has no randomness");
    }
}
