//! The host's side of an incident's evidence bundle: the last lines of every followed log,
//! and each config file of the service described by SHA-256, mode, size and change time
//! (never its content, which holds the keys).
//!
//! Logs and configs sit where the service's account can swap them for links: each is opened
//! without following a link, and only a regular file is read (through a limit), so nothing
//! the account could not read itself reaches the bundle, not even a hash or a size.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use gatehouse_protocol::{EvidenceReport, FileFacts, LogTail};

use crate::config::LogConfig;
use crate::error::ConfigError;
use crate::fsutil;

/// The most bytes read from the end of one log.
const TAIL_BYTES: u64 = 4 << 20;

/// The last `lines` lines of every followed log (or why there are none), and the facts of
/// each of the service's config files.
pub fn collect(
    logs: Result<&[LogConfig], &ConfigError>,
    config_files: &[PathBuf],
    lines: usize,
    now: i64,
) -> EvidenceReport {
    let mut tails = Vec::new();
    match logs {
        Ok(list) => {
            // The console names files after these paths: one that cannot name a file is never
            // reported (the config and the settings refuse them already).
            for log in list
                .iter()
                .filter(|log| log.path().is_none_or(fsutil::is_file_name))
            {
                let read = match (log.path(), log.journal_unit()) {
                    (Some(path), _) => tail(path, lines),
                    (None, Some(unit)) => crate::journal::recent(unit, lines),
                    (None, None) => Ok(Vec::new()),
                };
                let (lines, error) = match read {
                    // A key the service takes in its URL is redacted here too, as in every
                    // line the agent reads.
                    Ok(lines) => (
                        lines
                            .into_iter()
                            .map(|line| {
                                crate::logevent::redacted(line, log.redact_query.as_deref())
                            })
                            .collect(),
                        None,
                    ),
                    Err(e) => (Vec::new(), Some(e.to_string())),
                };
                tails.push(LogTail {
                    path: log.name(),
                    source: log.source.to_string(),
                    lines,
                    error,
                });
            }
        }
        Err(e) => tails.push(LogTail {
            path: String::new(),
            source: String::new(),
            lines: Vec::new(),
            error: Some(e.to_string()),
        }),
    }
    EvidenceReport {
        logs: tails,
        files: config_files
            .iter()
            .filter(|path| fsutil::is_file_name(path))
            .map(|path| facts(path))
            .collect(),
        collected_at: now,
    }
}

/// The last `n` lines of a file, reading at most [`TAIL_BYTES`] from its end.
fn tail(path: &Path, n: usize) -> std::io::Result<Vec<String>> {
    let regular = fsutil::open_regular(path)?;
    let (mut file, len) = (regular.file, regular.facts.size);
    let start = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    // At most what was there when it was opened, however fast it grows.
    (&mut file).take(len - start).read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut all: Vec<&str> = text.lines().collect();
    if start > 0 && !all.is_empty() {
        // The first line read is a partial one.
        all.remove(0);
    }
    Ok(all[all.len().saturating_sub(n)..]
        .iter()
        .map(|l| (*l).to_owned())
        .collect())
}

fn facts(path: &Path) -> FileFacts {
    let shown = path.display().to_string();
    let refused = |e: std::io::Error| FileFacts {
        path: shown.clone(),
        sha256: None,
        mode: None,
        size: None,
        modified: None,
        error: Some(e.to_string()),
    };
    let mut regular = match fsutil::open_regular(path) {
        Ok(regular) => regular,
        Err(e) => return refused(e),
    };
    let facts = regular.facts;
    let sha256 = match regular.read_all(fsutil::CONFIG_MAX) {
        Ok(bytes) => fsutil::sha256_hex(&bytes),
        Err(e) => return refused(e),
    };
    FileFacts {
        path: shown,
        sha256: Some(sha256),
        mode: Some(facts.mode),
        size: Some(facts.size),
        modified: facts.modified_secs(),
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_is_the_last_lines_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log");
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).expect("log");
        let lines = tail(&path, 3).expect("tail");
        assert_eq!(
            lines,
            ["line 97", "line 98", "line 99"],
            "the newest lines, in order"
        );
        assert_eq!(
            tail(&path, 1000).expect("all").len(),
            100,
            "no more than there are"
        );
    }
}
