//! Helpers shared by the core tests.

use std::path::Path;

/// A keychain service name unique to this test run, so parallel tests and reruns never see
/// each other's entries.
pub fn unique_service(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("Gatehouse test {tag} {}-{nanos}", std::process::id())
}

/// Fails (with the reason) unless the test harness provides a real Secret Service.
pub fn require_secret_service() {
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "keychain tests need a real Secret Service: run them through scripts/test.sh, which \
         starts gnome-keyring under dbus-run-session"
    );
}

/// Every file below `dir`, read whole.
pub fn files_below(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.push((path, bytes));
            }
        }
    }
    out
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Append `text` to a log file, as a service writing it would.
pub fn append(path: &Path, text: &str) {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .expect("append to the log");
}

/// A service started through `demo/restart_fixture.sh`. When this is dropped, however the
/// test ends, the process its pid file names then is stopped: the agent may have restarted
/// the service since, and that new process belongs to the test too.
#[derive(Debug)]
pub struct PidFile(pub std::path::PathBuf);

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.0) {
            let _ = std::process::Command::new("kill").arg(pid.trim()).status();
        }
    }
}

/// Set `path`'s modification time to `at`. A file just written carries the kernel's clock,
/// which libfaketime (the suite's "another date" runs) does not move; files whose age matters
/// are stamped with the time the test passes in.
pub fn stamp(path: &Path, at: time::OffsetDateTime) {
    let file = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open to stamp");
    file.set_modified(at.into()).expect("set mtime");
}
