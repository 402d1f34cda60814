//! Files a test writes. A file just written carries the kernel's clock, which libfaketime
//! (the suite's "another date" runs) does not move: files whose age matters are stamped with
//! the time the test passes in.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Append `text` to `path`, creating it if needed.
pub fn append(path: &Path, text: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open the log to append");
    file.write_all(text.as_bytes()).expect("append to the log");
}

/// Set `path`'s modification time to `at`.
pub fn stamp(path: &Path, at: time::OffsetDateTime) {
    let file = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open to stamp");
    file.set_modified(at.into()).expect("set mtime");
}

/// Every regular file below `dir` with its bytes (for scans for secrets).
pub fn files_below(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    files_below_where(dir, |_, _| true)
}

/// The regular files below `dir` (links not followed: no device, pipe or loop is ever read)
/// that `keep` accepts by their metadata, with their contents. Deciding before reading keeps
/// a scan of a busy temporary directory to the files that matter.
pub fn files_below_where(
    dir: &Path,
    keep: impl Fn(&Path, &std::fs::Metadata) -> bool,
) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() && keep(&path, &meta) {
                if let Ok(bytes) = std::fs::read(&path) {
                    out.push((path, bytes));
                }
            }
        }
    }
    out
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}
