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

/// The most users read from one file: each is a credential to list and to check, and the
/// file is the service account's to write.
pub const MAX_USERS: usize = 1000;

/// Whether `name` is a user name this agent takes from a file (`key = "*"`): letters, digits
/// and `._@+-`, at most 64 (it names a credential in the console and its keychain).
pub fn is_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@+-".contains(&b))
}

/// Every user and hash in `text`, each user once (its first line), in the file's order, at
/// most [`MAX_USERS`]; a line whose user is no user name (see [`is_user_name`]) is left out.
pub fn entries(text: &str) -> Vec<(String, String)> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if out.len() == MAX_USERS {
            break;
        }
        if let Some((name, hash)) = entry(line.trim_end_matches('\r')) {
            if is_user_name(name) && seen.insert(name) {
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

/// Bcrypt rounds (2^cost each) spent trying published passwords against hashes, at most this
/// many a minute: 64 checks at cost 10, about four seconds. The file is the service
/// account's to write, and a thousand users of cost 12 would otherwise take hours.
const ROUNDS_PER_MINUTE: u64 = 64 << 10;

/// Hashes already judged, so a second pass costs nothing (at most this many kept).
const JUDGED_KEPT: usize = 4096;

#[derive(Default)]
struct Tried {
    since: Option<std::time::Instant>,
    rounds: u64,
    judged: std::collections::HashMap<String, bool>,
}

static TRIED: std::sync::Mutex<Option<Tried>> = std::sync::Mutex::new(None);

/// Whether `hash` was made from a published password: one of the profile's known weak keys or
/// a config file's default, each tried against it (bcrypt at most [`MAX_CHECK_COST`]). Within
/// a budget of work a minute (see [`ROUNDS_PER_MINUTE`]): a hash left over is not judged
/// published now, and is tried on a later pass.
pub fn published(profile: &Profile, hash: &str) -> bool {
    let tried = || {
        TRIED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    if let Some(judged) = tried().get_or_insert_with(Tried::default).judged.get(hash) {
        return *judged;
    }
    let candidates: Vec<&String> = profile
        .keys
        .known_weak
        .iter()
        .chain(
            profile
                .config_files
                .iter()
                .filter_map(|f| f.default.as_ref()),
        )
        .collect();
    let per_try = match scheme(hash) {
        Scheme::Bcrypt => hash
            .get(4..6)
            .and_then(|c| c.parse::<u32>().ok())
            .filter(|c| *c <= MAX_CHECK_COST)
            .map_or(0, |c| 1u64 << c),
        _ => 0,
    };
    let rounds = per_try * candidates.len() as u64;
    {
        let mut guard = tried();
        let tried = guard.get_or_insert_with(Tried::default);
        let now = std::time::Instant::now();
        if tried
            .since
            .is_none_or(|since| now.duration_since(since).as_secs() >= 60)
        {
            tried.since = Some(now);
            tried.rounds = 0;
        }
        if tried.rounds + rounds > ROUNDS_PER_MINUTE {
            return false;
        }
        tried.rounds += rounds;
    }
    let found = candidates
        .iter()
        .any(|weak| verify(weak, hash) == Some(true));
    let mut guard = tried();
    let tried = guard.get_or_insert_with(Tried::default);
    if tried.judged.len() >= JUDGED_KEPT {
        tried.judged.clear();
    }
    tried.judged.insert(hash.to_owned(), found);
    found
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

/// Hashes remembered at most: one per rotation, the oldest forgotten first (as many as the
/// users a file may have, four times over).
const REMEMBERED: usize = 4 * MAX_USERS;

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
        // An unreadable file is an error, never overwritten: it holds what every hash this
        // agent wrote stands for.
        let mut known = Hashed::load(state)?;
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

    /// The fingerprints of the hashes written for the password fingerprinted `password`.
    pub fn hashes_for<'a>(&'a self, password: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries
            .iter()
            .filter(move |e| e.password == password)
            .map(|e| e.hash.as_str())
    }

    /// Forget the hash fingerprinted `hash` (its write failed, or was rolled back).
    pub fn forget_one(state: &StateDir, hash: &str) -> std::io::Result<()> {
        let mut known = Hashed::load(state)?;
        let before = known.entries.len();
        known.entries.retain(|e| e.hash != hash);
        if known.entries.len() == before {
            return Ok(());
        }
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

    /// The users file is the service account's to write: a thousand costly hashes must not
    /// hold the agent for hours trying published passwords against each. The work a minute
    /// is bounded; what is left over is tried on a later pass.
    #[test]
    fn a_file_of_costly_hashes_cannot_stall_the_agent() {
        let profile = Profile::builtin("radicale")
            .expect("built in")
            .expect("valid");
        assert!(
            profile.keys.known_weak.len() > 1,
            "several published passwords to try"
        );
        let cheap = bcrypt::hash_with_result("x", 4)
            .expect("hash")
            .format_for_version(bcrypt::Version::TwoY);
        // 200 different hashes of cost 12, each as costly to try as a real one.
        const ALPHABET: &[u8] = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let costly: Vec<String> = (0..200)
            .map(|i| {
                let salt = format!(
                    "{}{}{}",
                    char::from(ALPHABET[i % 64]),
                    char::from(ALPHABET[i / 64]),
                    &cheap[9..29]
                );
                format!("$2y$12${salt}{}", &cheap[29..])
            })
            .collect();
        assert!(costly.iter().all(|h| scheme(h) == Scheme::Bcrypt));
        assert_eq!(
            bcrypt::verify("x", &costly[0]).map_err(|e| e.to_string()),
            Ok(false),
            "each is a well-formed hash bcrypt works through at cost 12"
        );
        for hash in &costly {
            assert!(!published(&profile, hash), "none is a published password");
        }
        let judged = TRIED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map_or(0, |t| t.judged.len());
        assert!(
            judged <= 2,
            "a minute's budget tries two such hashes against every published password, not 200 ({judged})"
        );
    }

    #[test]
    fn which_password_a_written_hash_stands_for_is_kept_and_forgotten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = StateDir::new(dir.path());
        Hashed::remember(&state, "hash-a".into(), "pw-a".into(), 43).expect("kept");
        Hashed::remember(&state, "hash-b".into(), "pw-b".into(), 43).expect("kept");
        let known = Hashed::load(&state).expect("load");
        assert_eq!(known.password_of("hash-a"), Some(("pw-a", 43)));
        assert_eq!(known.hashes_for("pw-b").collect::<Vec<_>>(), ["hash-b"]);
        Hashed::forget_one(&state, "hash-a").expect("forgotten");
        let known = Hashed::load(&state).expect("load");
        assert_eq!(
            known.password_of("hash-a"),
            None,
            "a rolled-back hash is forgotten"
        );
        assert_eq!(
            known.password_of("hash-b"),
            Some(("pw-b", 43)),
            "the others stay"
        );
        std::fs::write(dir.path().join("hashed-secrets.json"), "{not json").expect("damage");
        assert!(
            Hashed::remember(&state, "hash-c".into(), "pw-c".into(), 43).is_err(),
            "a damaged file is an error, never overwritten with what little is known"
        );
    }

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
