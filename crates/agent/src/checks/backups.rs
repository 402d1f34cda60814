//! The service's backups (`[checks] backup_dir`): the newest is recent and encrypted, told
//! by its first bytes (gpg, age, openssl enc, or ciphertext-random) rather than its name.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use gatehouse_protocol::{CheckId, CheckResult};

use super::{fail, human, pass, unknown, Context};

/// `now`: Unix seconds.
pub(super) fn recent_and_encrypted(cx: &Context<'_>, now: i64) -> CheckResult {
    let check = CheckId::Backups;
    let Some(dir) = &cx.policy.backup_dir else {
        return unknown(
            check,
            "no backup_dir is set in the agent's [checks], so backups cannot be looked at",
            vec![],
        );
    };
    let max_age = cx.policy.backup_max_age;
    let newest = match newest_file(dir) {
        Ok(Some(newest)) => newest,
        Ok(None) => {
            return fail(
                check,
                "no backup exists",
                vec![format!("{} is empty", dir.display())],
            )
        }
        Err(e) => {
            return fail(
                check,
                "the backup folder cannot be read",
                vec![format!("{}: {e}", dir.display())],
            )
        }
    };
    let (path, modified, size) = newest;
    let age = crate::clock::age(now, modified);
    let kind = match content_kind(&path) {
        Ok(kind) => kind,
        Err(e) => {
            return unknown(
                check,
                "the newest backup cannot be read",
                vec![format!("{}: {e}", path.display())],
            )
        }
    };
    let evidence = vec![
        format!(
            "newest: {} ({size} bytes), written {} ago",
            path.display(),
            human(age)
        ),
        format!("content: {}", kind.describe()),
    ];
    if age > max_age {
        fail(
            check,
            format!("the newest backup is older than {}", human(max_age)),
            evidence,
        )
    } else if !kind.encrypted() {
        fail(check, "the newest backup is not encrypted", evidence)
    } else {
        pass(check, "a recent, encrypted backup exists", evidence)
    }
}

#[derive(Debug, PartialEq, Eq)]
enum ContentKind {
    OpenPgp,
    Age,
    OpensslEnc,
    /// No known plain format, and as random as ciphertext.
    Random,
    Sqlite,
    Gzip,
    Other,
}

impl ContentKind {
    fn encrypted(&self) -> bool {
        matches!(
            self,
            ContentKind::OpenPgp | ContentKind::Age | ContentKind::OpensslEnc | ContentKind::Random
        )
    }

    fn describe(&self) -> &'static str {
        match self {
            ContentKind::OpenPgp => "an OpenPGP encrypted message (gpg)",
            ContentKind::Age => "an age encrypted file",
            ContentKind::OpensslEnc => "an openssl enc file (salted)",
            ContentKind::Random => {
                "random-looking bytes of no plain format (encrypted, for example SQLCipher)"
            }
            ContentKind::Sqlite => "a plain SQLite database (readable by anyone who gets the file)",
            ContentKind::Gzip => "gzip-compressed, not encrypted",
            ContentKind::Other => "readable content, not encrypted",
        }
    }
}

fn content_kind(path: &Path) -> std::io::Result<ContentKind> {
    use std::io::Read;
    let mut head = Vec::with_capacity(4096);
    crate::fsutil::open_regular(path)?
        .file
        .take(4096)
        .read_to_end(&mut head)?;
    Ok(classify(&head))
}

fn classify(head: &[u8]) -> ContentKind {
    if head.starts_with(b"-----BEGIN PGP MESSAGE-----") {
        return ContentKind::OpenPgp;
    }
    if head.starts_with(b"age-encryption.org/v1")
        || head.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----")
    {
        return ContentKind::Age;
    }
    if head.starts_with(b"Salted__") {
        return ContentKind::OpensslEnc;
    }
    if head.starts_with(b"SQLite format 3\0") {
        return ContentKind::Sqlite;
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        return ContentKind::Gzip;
    }
    // An OpenPGP binary message opens with a public-key or symmetric-key encrypted session
    // key packet (tags 1 and 3), in the old or the new packet format.
    if let Some(&first) = head.first() {
        let tag = if first & 0xC0 == 0xC0 {
            Some(first & 0x3F)
        } else if first & 0xC0 == 0x80 {
            Some((first >> 2) & 0x0F)
        } else {
            None
        };
        if matches!(tag, Some(1 | 3)) {
            return ContentKind::OpenPgp;
        }
    }
    if head.len() >= 512 && byte_entropy(head) > 7.5 {
        return ContentKind::Random;
    }
    ContentKind::Other
}

fn byte_entropy(bytes: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[b as usize] += 1;
    }
    let n = bytes.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

fn newest_file(dir: &Path) -> std::io::Result<Option<(PathBuf, SystemTime, u64)>> {
    let mut newest: Option<(PathBuf, SystemTime, u64)> = None;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if !meta.is_file() {
            continue;
        }
        let modified = meta.modified()?;
        if newest.as_ref().is_none_or(|(_, t, _)| modified > *t) {
            newest = Some((entry.path(), modified, meta.len()));
        }
    }
    Ok(newest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_contents_are_told_apart_by_their_first_bytes() {
        assert_eq!(
            classify(b"SQLite format 3\0rest"),
            ContentKind::Sqlite,
            "a plain database is readable"
        );
        assert_eq!(
            classify(&[0x1f, 0x8b, 8, 0]),
            ContentKind::Gzip,
            "compression is not encryption"
        );
        assert_eq!(
            classify(&[0x85, 0x01, 0x0c]),
            ContentKind::OpenPgp,
            "gpg --encrypt opens with a public-key session packet"
        );
        assert_eq!(
            classify(&[0x8c, 0x0d, 0x04]),
            ContentKind::OpenPgp,
            "gpg --symmetric opens with a symmetric session packet"
        );
        assert_eq!(
            classify(&[0xc3, 0x2e, 0x05]),
            ContentKind::OpenPgp,
            "new packet format too"
        );
        assert_eq!(
            classify(b"Salted__12345678"),
            ContentKind::OpensslEnc,
            "openssl enc"
        );
        assert_eq!(
            classify(b"age-encryption.org/v1\n-> X25519"),
            ContentKind::Age,
            "age"
        );
        assert_eq!(
            classify(&b"plain text dump\n".repeat(64)),
            ContentKind::Other,
            "a text dump is readable"
        );
        let random: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert_eq!(
            classify(&random),
            ContentKind::Random,
            "ciphertext without a header looks random"
        );
    }
}
