//! htpasswd files, as Apache's `htpasswd` writes them and services with HTTP Basic sign-in
//! read them (Radicale, many reverse proxies): one `user:hash` line per user, blank lines and
//! `#` comments ignored. The file holds a hash of the password, never the password; the
//! password a rotation writes is known here only while it is written, and afterwards only
//! by its fingerprint (see [`Hashed`]).

use std::ops::Range;
use std::path::PathBuf;

use gatehouse_events::Profile;
use serde::{Deserialize, Serialize};

use crate::fsutil;
use crate::state::StateDir;

/// bcrypt's cost for a hash this agent writes: 2^10 rounds, about 50 ms a sign-in on a small
/// host (the service checks it on every request it authenticates).
pub const COST: u32 = 10;

/// The highest cost a hash is checked at (a candidate weak password against the hash). A
/// file the service's account can write may carry a hash of cost 31, which would take days;
/// above this, the check is not made and says so.
pub const MAX_CHECK_COST: u32 = 12;

/// bcrypt reads at most this many bytes of a password; a longer one would be cut silently.
pub const MAX_PASSWORD: usize = 72;

/// The hash `user`'s line holds in `text`, with the bytes that spell it (for a rewrite that
/// changes nothing else). The first line for a user is the one that counts, as Apache's
/// `htpasswd -v` and `mod_authn_file` read it.
pub fn find(text: &str, user: &str) -> Option<(String, Range<usize>)> {
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        if let Some((name, hash)) = entry(body) {
            if name == user {
                let at = start + name.len() + 1;
                return Some((hash.to_owned(), at..at + hash.len()));
            }
        }
        start += line.len();
    }
    None
}

/// Every user and hash in `text`, each user once (its first line), in the file's order.
pub fn entries(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some((name, hash)) = entry(line.trim_end_matches('\r')) {
            if !name.is_empty() && !out.iter().any(|(n, _)| n == name) {
                out.push((name.to_owned(), hash.to_owned()));
            }
        }
    }
    out
}

/// A line's user and hash, if it is an entry (not blank, not a comment).
fn entry(line: &str) -> Option<(&str, &str)> {
    let trimmed = line.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return None;
    }
    line.split_once(':')
}

/// `text` with `user`'s hash replaced by `hash`, every other byte as it was; `None` if the
/// file has no line for `user`.
pub fn replace(text: &str, user: &str, hash: &str) -> Option<String> {
    let (_, span) = find(text, user)?;
    let mut out = String::with_capacity(text.len() + hash.len());
    out.push_str(&text[..span.start]);
    out.push_str(hash);
    out.push_str(&text[span.end..]);
    Some(out)
}

/// A bcrypt hash of `password` in the `$2y$` form Apache's `htpasswd -B` writes.
pub fn hash(password: &str) -> Result<String, String> {
    if password.len() > MAX_PASSWORD {
        return Err(format!(
            "bcrypt reads only the first {MAX_PASSWORD} bytes of a password; this one has {}",
            password.len()
        ));
    }
    bcrypt::hash_with_result(password, COST)
        .map(|parts| parts.format_for_version(bcrypt::Version::TwoY))
        .map_err(|e| format!("cannot hash the new password: {e}"))
}

/// How an htpasswd line keeps its password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `$2y$`, `$2b$`, `$2a$`: what a rotation writes.
    Bcrypt,
    /// `{SHA}`: unsalted SHA-1, base64.
    Sha1,
    /// A hash of another kind (`$apr1$`, htpasswd's default; `$1$`, `$5$`, `$6$`, `$argon2`):
    /// a hash, but not one checked here.
    Other(&'static str),
    /// No known hash: the password itself. Radicale (`htpasswd_encryption = autodetect`, its
    /// default) then compares it as plain text, so whoever reads the file has it.
    Plain,
}

/// How `value`, a user's entry, keeps the password.
pub fn scheme(value: &str) -> Scheme {
    let bcrypt = ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|p| value.starts_with(p))
        && value.len() == 60;
    if bcrypt {
        return Scheme::Bcrypt;
    }
    if value.starts_with("{SHA}") {
        return Scheme::Sha1;
    }
    for (prefix, name) in [
        ("$apr1$", "apr1 (MD5)"),
        ("$1$", "MD5-crypt"),
        ("$5$", "SHA-256-crypt"),
        ("$6$", "SHA-512-crypt"),
        ("$argon2", "Argon2"),
    ] {
        if value.starts_with(prefix) {
            return Scheme::Other(name);
        }
    }
    Scheme::Plain
}

/// Whether `password` is the one `hash` was made from: `None` when that cannot be told here
/// (a scheme not checked here, or a bcrypt hash too costly to check, see [`MAX_CHECK_COST`]).
/// A plain-text entry is compared as the service compares it.
pub fn verify(password: &str, hash: &str) -> Option<bool> {
    match scheme(hash) {
        Scheme::Bcrypt => {
            let cost: u32 = hash.get(4..6)?.parse().ok()?;
            if cost > MAX_CHECK_COST {
                return None;
            }
            bcrypt::verify(password, hash).ok()
        }
        Scheme::Sha1 => {
            use base64::Engine as _;
            let digest =
                ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, password.as_bytes());
            let spelled = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
            Some(hash["{SHA}".len()..] == spelled)
        }
        Scheme::Plain => Some(password == hash),
        Scheme::Other(_) => None,
    }
}

/// Whether `hash` was made from a published password: one of the profile's known weak keys or
/// a config file's default, each tried against it (at most [`MAX_CHECK_COST`]).
pub fn published(profile: &Profile, hash: &str) -> bool {
    profile
        .keys
        .known_weak
        .iter()
        .chain(
            profile
                .config_files
                .iter()
                .filter_map(|f| f.default.as_ref()),
        )
        .any(|weak| verify(weak, hash) == Some(true))
}

/// What this agent knows of the passwords it wrote as hashes: for each hash's fingerprint,
/// the fingerprint and length of the password (both under the fleet's fingerprint key, so
/// the console knows the password by the same fingerprint as any other key). Kept in the
/// state directory (0600); nothing in it reveals a password. A hash written by someone else
/// is unknown here, and is reported by its own fingerprint.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hashed {
    entries: Vec<HashedEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct HashedEntry {
    hash: String,
    password: String,
    length: u32,
}

/// Hashes remembered at most: one per rotation, the oldest forgotten first.
const REMEMBERED: usize = 64;

impl Hashed {
    fn path(state: &StateDir) -> PathBuf {
        state.root().join("hashed-secrets.json")
    }

    /// What the state directory holds (nothing yet: empty).
    pub fn load(state: &StateDir) -> std::io::Result<Hashed> {
        match fsutil::read_optional(&Self::path(state))? {
            Some(text) => serde_json::from_str(&text).map_err(|e| {
                std::io::Error::other(format!("{}: {e}", Self::path(state).display()))
            }),
            None => Ok(Hashed::default()),
        }
    }

    /// The password's fingerprint and length for the hash fingerprinted `hash`, if this agent
    /// wrote it.
    pub fn password_of(&self, hash: &str) -> Option<(&str, u32)> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.hash == hash)
            .map(|e| (e.password.as_str(), e.length))
    }

    /// Remember a hash written for a password, and keep it in the state directory (before the
    /// file holding the hash is written, so a hash in a file is never one this agent forgot).
    pub fn remember(
        state: &StateDir,
        hash: String,
        password: String,
        length: u32,
    ) -> std::io::Result<()> {
        let mut known = Hashed::load(state).unwrap_or_default();
        known.entries.retain(|e| e.hash != hash);
        known.entries.push(HashedEntry {
            hash,
            password,
            length,
        });
        let excess = known.entries.len().saturating_sub(REMEMBERED);
        known.entries.drain(..excess);
        fsutil::write_atomic(&Self::path(state), &serde_json::to_vec_pretty(&known)?)
    }

    /// Forget everything: the fingerprint key changed, and a password's fingerprint under the
    /// new key cannot be made without the password.
    pub fn forget(state: &StateDir) -> std::io::Result<()> {
        match std::fs::remove_file(Self::path(state)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_s_hash_is_found_and_replaced_without_touching_the_rest() {
        let text = "# users\r\nalice:$2y$05$old\r\nbob:{SHA}xyz\r\n\r\nalice2:$apr1$x\r\n";
        let (hash, span) = find(text, "alice").expect("alice has a line");
        assert_eq!(hash, "$2y$05$old", "the hash, without the line end");
        assert_eq!(&text[span], "$2y$05$old", "and the bytes that spell it");
        assert_eq!(
            replace(text, "alice", "$2y$10$new").as_deref(),
            Some("# users\r\nalice:$2y$10$new\r\nbob:{SHA}xyz\r\n\r\nalice2:$apr1$x\r\n"),
            "only alice's hash changes: comments, other users, CRLF stay"
        );
        assert_eq!(find(text, "ali"), None, "a user is matched whole");
        assert_eq!(find("#alice:x\n", "alice"), None, "a comment is no entry");
        assert_eq!(
            find("alice:first\nalice:second\n", "alice").map(|(h, _)| h),
            Some("first".to_owned()),
            "the first line for a user counts, as htpasswd -v reads it"
        );
        assert_eq!(
            entries(text),
            vec![
                ("alice".to_owned(), "$2y$05$old".to_owned()),
                ("bob".to_owned(), "{SHA}xyz".to_owned()),
                ("alice2".to_owned(), "$apr1$x".to_owned())
            ],
            "every user, without comments or blank lines"
        );
        assert_eq!(replace(text, "carol", "h"), None, "no line, no rewrite");
    }

    #[test]
    fn a_written_hash_verifies_and_a_costly_one_is_not_checked() {
        let hashed = hash("correct-horse-battery-staple-1").expect("hashes");
        assert!(
            hashed.starts_with("$2y$10$"),
            "written as htpasswd -B writes it: {hashed}"
        );
        assert_eq!(
            verify("correct-horse-battery-staple-1", &hashed),
            Some(true)
        );
        assert_eq!(verify("wrong", &hashed), Some(false), "another is refused");
        let costly = hashed.replacen("$10$", "$31$", 1);
        assert_eq!(
            verify("correct-horse-battery-staple-1", &costly),
            None,
            "a hash of cost 31 would take days to check: it is not tried"
        );
        // `htpasswd -nbs carol password1`
        let sha = "{SHA}44rSFJQ9qtHWTBAvrsKd5K/p2j0=";
        assert_eq!(scheme(sha), Scheme::Sha1);
        assert_eq!(verify("password1", sha), Some(true), "{{SHA}} is checked");
        assert_eq!(verify("password2", sha), Some(false));
        assert_eq!(
            scheme("password1"),
            Scheme::Plain,
            "no hash: the password itself"
        );
        assert_eq!(verify("password1", "password1"), Some(true));
        assert_eq!(
            scheme("$apr1$x$y"),
            Scheme::Other("apr1 (MD5)"),
            "htpasswd's default is a hash, not checked here"
        );
        assert_eq!(verify("x", "$apr1$x$y"), None, "so it is not known");
        assert!(
            hash(&"a".repeat(73)).is_err(),
            "a password bcrypt would cut is refused"
        );
    }
}
