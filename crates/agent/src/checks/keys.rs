//! The keys the service uses (a file's, the default it falls back to, or a variable of its
//! process's environment, which wins over both): long and random enough, and none of the
//! published ones. A published key is weak whatever its length and characters: anyone who read
//! the service's repository has it. A key whose characters follow a pattern (a run such as
//! `1234567890`, a repeat, dictionary words) carries far less randomness than its length
//! suggests, and is rated by what it carries.

use gatehouse_protocol::{CheckId, CheckResult};

use super::{fail, pass, unknown, Context};
use crate::service::keys::{Found, FoundKey, Source};

/// The least randomness a key should carry, in bits.
const MIN_KEY_BITS: f64 = 128.0;

/// Words keys are made of when a person makes them up, and that published keys are made of.
const WORDS: &[&str] = &[
    "abc",
    "admin",
    "api",
    "change",
    "changeme",
    "default",
    "demo",
    "dev",
    "example",
    "guest",
    "jelmore",
    "key",
    "keys",
    "letmein",
    "local",
    "mcp",
    "password",
    "prod",
    "production",
    "qwerty",
    "rae",
    "rest",
    "root",
    "sample",
    "secret",
    "sekha",
    "service",
    "team",
    "test",
    "this",
    "token",
    "user",
    "welcome",
    "xyz",
];

pub(super) fn strength(cx: &Context<'_>) -> CheckResult {
    let check = CheckId::KeyStrength;
    let found = match cx.service.found_keys() {
        Ok(found) => found,
        Err(why) => return unknown(check, why, vec![]),
    };
    if found.keys.is_empty() {
        return unknown(
            check,
            "no key was found in the service's config files or its environment",
            vec![found.environment],
        );
    }
    let min = cx.service.profile.keys.min_length;
    let mut weak = Vec::new();
    let mut fixes = Vec::new();
    let mut evidence = Vec::new();
    let mut unknowable = Vec::new();
    for key in &found.keys {
        // A hashed password (htpasswd) shows neither its length nor its randomness: the length
        // is known only for one this agent wrote (a generated key), never guessed.
        let length = cx.service.length_of(key);
        let bits = (!key.hashed).then(|| estimated_bits(&key.value));
        let short = length.is_some_and(|l| l < min);
        let published = cx.service.is_published(key);
        let low = bits.is_some_and(|b| b < MIN_KEY_BITS);
        if key.in_use() && key.hashed && length.is_none() && !published {
            unknowable.push(format!("{} in {}", key.name, short_place(key)));
        }
        if key.in_use() && (short || low || published || key.plaintext) {
            let why = if published {
                "published"
            } else if key.plaintext {
                "kept in plain text (no hash)"
            } else if short {
                "too short"
            } else {
                "predictable"
            };
            weak.push(format!("{} in {}: {why}", key.name, short_place(key)));
            // A variable read as a key by mistake is fixed by removing it, not rotating it.
            if cx.service.profile.not_key(&key.name).is_none() {
                fixes.extend(rotation_fixes(key));
            }
        }
        let measured = match (bits, length) {
            (Some(bits), _) if key.plaintext => format!(
                "a password kept in plain text in the htpasswd file (whoever reads the file has it; the service compares it as it is): {} characters, about {bits:.0} bits",
                key.value.len()
            ),
            (Some(bits), _) => format!(
                "{} characters, about {bits:.0} bits",
                key.value.len()
            ),
            (None, Some(length)) => format!(
                "a password hash; the password this agent wrote has {length} characters"
            ),
            (None, None) => "a password hash this agent did not write: the password's length and randomness cannot be read from it (a rotation makes one that is known)".to_owned(),
        };
        evidence.push(format!(
            "{} ({}): {measured}, fingerprint {}{}{}",
            key.name,
            key.place(),
            cx.service.fingerprint_of(key),
            match (published, short, low) {
                (true, _, _) => " — a published key: weak whatever its length".to_owned(),
                (_, true, _) => format!(" — shorter than the {min} characters required"),
                (_, _, true) => format!(
                    " — less than {MIN_KEY_BITS:.0} bits of randomness (its characters follow a pattern or repeat)"
                ),
                _ => String::new(),
            },
            overridden(key)
        ));
    }
    evidence.push(found.environment);
    if !weak.is_empty() {
        CheckResult {
            fixes,
            ..fail(
                check,
                format!("weak key in use: {}", named(&weak)),
                evidence,
            )
        }
    } else if !unknowable.is_empty() {
        // Passing a password nothing is known of would say more than was checked.
        unknown(
            check,
            format!(
                "the strength of {} cannot be read from a hash (none is a published password); a rotation writes a generated one whose strength is known",
                named(&unknowable)
            ),
            evidence,
        )
    } else {
        pass(
            check,
            format!(
                "every key in use has at least {min} characters and {MIN_KEY_BITS:.0} bits, and none is published"
            ),
            evidence,
        )
    }
}

pub(super) fn defaults(cx: &Context<'_>) -> CheckResult {
    let check = CheckId::DefaultKey;
    let Found { keys, environment } = match cx.service.found_keys() {
        Ok(found) => found,
        Err(why) => return unknown(check, why, vec![]),
    };
    let profile = cx.service.profile;
    let mut evidence = Vec::new();
    let mut in_use = Vec::new();
    let mut fixes = Vec::new();
    for key in &keys {
        let line = if let Some(not_key) = profile.not_key(&key.name) {
            Some(format!(
                "{} in {} is read as a key although it is not one: {}",
                key.name,
                key.place(),
                not_key.fix
            ))
        } else if let Source::Default { file, why } = &key.source {
            Some(format!(
                "{} is not set where {} reads it in {} ({why}): it uses its published default",
                key.name,
                profile.display_name,
                file.display()
            ))
        } else if cx.service.is_published(key) {
            Some(format!(
                "{} in {} is a published default or known key (fingerprint {})",
                key.name,
                key.place(),
                cx.service.fingerprint_of(key)
            ))
        } else {
            None
        };
        if let Some(line) = line {
            if key.in_use() {
                in_use.push(format!("{} in {}", key.name, short_place(key)));
                if profile.not_key(&key.name).is_none() {
                    fixes.extend(rotation_fixes(key));
                }
            }
            evidence.push(format!("{line}{}", overridden(key)));
        }
    }
    evidence.push(environment);
    if in_use.is_empty() {
        evidence.insert(
            0,
            format!(
                "{} key(s) compared with the profile's published keys",
                keys.len()
            ),
        );
        pass(check, "no default or published key is in use", evidence)
    } else {
        CheckResult {
            fixes,
            ..fail(
                check,
                format!(
                    "a default or published key is in use, which anyone who read the docs has: {}",
                    named(&in_use)
                ),
                evidence,
            )
        }
    }
}

/// The key a rotation fixes, when one does: a key in a file is replaced there, and a key the
/// service falls back to is written where it reads it (Sekha's moves to the root, RAE's unset
/// `SECRET_KEY` is set). A key the environment sets is not the file's to change.
fn rotation_fixes(key: &FoundKey) -> Option<String> {
    match key.source {
        Source::File(_) | Source::Default { .. } if key.in_use() => Some(key.name.clone()),
        _ => None,
    }
}

/// Where a key was found, short enough for a summary: the file's name, or the environment.
fn short_place(key: &FoundKey) -> String {
    let name = |path: &std::path::Path| {
        path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    };
    match &key.source {
        Source::File(path) => name(path),
        Source::Default { file, .. } => format!("{} (unset)", name(file)),
        Source::Environment { .. } => "the service's environment".to_owned(),
    }
}

/// The first few of `items`, and how many more (the evidence lists them all).
pub(super) fn named(items: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut text = items
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if items.len() > SHOWN {
        text.push_str(&format!("; and {} more", items.len() - SHOWN));
    }
    text
}

fn overridden(key: &FoundKey) -> String {
    key.overridden_by
        .as_deref()
        .map(|by| format!(" (not in use: {by} wins over it)"))
        .unwrap_or_default()
}

/// About how many bits of randomness `value` carries, read as a person would guess it: runs
/// (`1234567890`, `aaaa`, `zyx`), repeats of what came before, and dictionary words cost
/// little; every other character costs the logarithm of the alphabet the key draws on. Good at
/// telling a generated key from a made-up one; no proof of randomness.
fn estimated_bits(value: &str) -> f64 {
    let chars: Vec<char> = value.chars().collect();
    if chars.is_empty() {
        return 0.0;
    }
    let pool = if chars.iter().all(char::is_ascii_hexdigit) {
        // A hex key (Jupyter's tokens): sixteen symbols, whatever letters it happens to hold.
        4.0
    } else {
        let has = |f: fn(&char) -> bool| chars.iter().any(f);
        let mut pool = 0.0;
        if has(char::is_ascii_lowercase) {
            pool += 26.0;
        }
        if has(char::is_ascii_uppercase) {
            pool += 26.0;
        }
        if has(char::is_ascii_digit) {
            pool += 10.0;
        }
        if has(|c| !c.is_ascii_alphanumeric()) {
            pool += 33.0;
        }
        f64::log2(pool)
    };
    let word_bits = f64::log2(WORDS.len() as f64) + 1.0;
    let lower: Vec<char> = chars.iter().map(|c| c.to_ascii_lowercase()).collect();
    let mut bits = 0.0;
    let mut i = 0;
    while i < chars.len() {
        let run = run_len(&chars[i..]);
        let repeat = repeat_len(&chars, i);
        let word = WORDS
            .iter()
            .map(|w| w.chars().collect::<Vec<_>>())
            .filter(|w| lower[i..].starts_with(w))
            .map(|w| w.len())
            .max()
            .unwrap_or(0);
        let best = run.max(repeat).max(word);
        if best >= 3 {
            bits += if best == word {
                word_bits
            } else if best == repeat {
                f64::log2(i as f64 + 1.0) + f64::log2(best as f64)
            } else {
                pool + f64::log2(best as f64)
            };
            i += best;
        } else {
            bits += pool;
            i += 1;
        }
    }
    bits
}

/// How long the run starting at `chars[0]` is: each character one more, one less or the same
/// as the one before (`123`, `cba`, `xxxx`).
fn run_len(chars: &[char]) -> usize {
    if chars.len() < 2 {
        return chars.len();
    }
    let step = chars[1] as i64 - chars[0] as i64;
    if step.abs() > 1 {
        return 1;
    }
    1 + chars
        .windows(2)
        .take_while(|w| w[1] as i64 - w[0] as i64 == step)
        .count()
}

/// The longest stretch starting at `at` that already appeared before it.
fn repeat_len(chars: &[char], at: usize) -> usize {
    (0..at)
        .map(|start| {
            chars[start..]
                .iter()
                .zip(&chars[at..])
                .take_while(|(a, b)| a == b)
                .count()
                .min(at - start)
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_randomness_separates_generated_keys_from_patterns() {
        let generated = "kJ8dF3mN9pQ2wR5tY7uH0jK3lM6nP9qS2vT5wX8zA1b";
        assert!(
            estimated_bits(generated) > MIN_KEY_BITS,
            "a 43-character base64 key from the guide is strong enough: {}",
            estimated_bits(generated)
        );
        assert!(
            estimated_bits(&"ab".repeat(20)) < MIN_KEY_BITS,
            "a long key of two repeated letters is not"
        );
        assert_eq!(estimated_bits(""), 0.0, "an empty key has no randomness");
        // A hex token of 256 bits (Jupyter's), as `secrets.token_hex(32)` makes one.
        let hex = "5ae76093d1c8f24b90e3a7156c2d8e4f0b1a39c7d6e5f48213b0c9d7a6e5f4c3";
        let bits = estimated_bits(hex);
        assert!(
            (200.0..=256.0).contains(&bits),
            "a 64-digit hex key carries at most 256 bits, not the 323 a wider alphabet gives: {bits}"
        );
    }

    /// An entropy estimate over the characters rated Sekha's built-in default at 159 bits;
    /// read as a person would guess it, it is a handful of words and a run of digits.
    #[test]
    fn keys_that_follow_a_pattern_are_weak_whatever_their_length() {
        for key in [
            "dev_default_key_change_me_1234567890",
            "dev_api_key_12345678901234567890123456789012",
            "sk-dev-12345678901234567890123456789012",
            "rest_key_xyz7890123456789xyz7890123456789",
            "change-this-secret-key-in-production",
            "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF",
            "Zz9Zz9Zz9Zz9Zz9Zz9Zz9Zz9Zz9Zz9Zz9Zz9Zz9Zz9",
        ] {
            let bits = estimated_bits(key);
            assert!(
                bits < MIN_KEY_BITS,
                "{key} follows a pattern: about {bits:.0} bits"
            );
        }
        for key in [
            "Zq4Xv1Lw8Rt3Ny6Pm2Ks9Hd5Gf7Jb0Cc4Ve1Ua8Oi3E",
            "r3OZqKx0_Lq-4mW8vT2yHc9NbJ6eFs1dPg7uAi5kXw0",
        ] {
            assert!(
                estimated_bits(key) > MIN_KEY_BITS,
                "{key} is random-looking: {}",
                estimated_bits(key)
            );
        }
    }
}
