//! The detection rules and the detector live in `gatehouse-detect`, shared with the agents;
//! this adds [`scan`], which runs them over a whole log file as the console would have.

pub use gatehouse_detect::*;

/// What [`scan`] found in a log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanReport {
    pub lines: u64,
    pub unparsed: u64,
    /// Failed sign-ins (401 and 403 in an access log).
    pub failures: u64,
    pub firings: Vec<Firing>,
}

/// Parse a whole log file with the agent's parser and run `rules` over its failed sign-ins,
/// as the console would have. Every core reads and parses its own part of the file (split at
/// line ends) in chunks, so reading overlaps parsing and the file is never held whole; the
/// rules then see the failures in file order.
pub fn scan(
    path: &std::path::Path,
    format: gatehouse_events::Format,
    rules: &[&Rule],
    instance: &str,
) -> std::io::Result<ScanReport> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    scan_with(path, format, rules, instance, threads, 1 << 20)
}

/// One reader's share: lines, unparsed lines, and failures as (time, address, key prefix).
#[derive(Default)]
struct Part {
    lines: u64,
    unparsed: u64,
    failures: Vec<(i64, String, Option<String>)>,
}

fn scan_with(
    path: &std::path::Path,
    format: gatehouse_events::Format,
    rules: &[&Rule],
    instance: &str,
    threads: usize,
    chunk: usize,
) -> std::io::Result<ScanReport> {
    use std::io::{Read, Seek, SeekFrom};
    let len = std::fs::metadata(path)?.len();
    // Split points: the first line start at or after each even share of the file.
    let mut bounds = vec![0u64];
    {
        let mut file = std::fs::File::open(path)?;
        let mut probe = vec![0u8; 64 * 1024];
        for i in 1..threads as u64 {
            let mut at = (len * i / threads as u64).max(*bounds.last().unwrap_or(&0));
            let boundary = loop {
                if at >= len {
                    break len;
                }
                file.seek(SeekFrom::Start(at))?;
                let n = file.read(&mut probe)?;
                if n == 0 {
                    break len;
                }
                match memchr::memchr(b'\n', &probe[..n]) {
                    Some(p) => break at + p as u64 + 1,
                    None => at += n as u64,
                }
            };
            bounds.push(boundary);
        }
        bounds.push(len);
    }
    let parts: Vec<std::io::Result<Part>> = std::thread::scope(|scope| {
        let handles: Vec<_> = bounds
            .windows(2)
            .map(|w| {
                let (lo, hi) = (w[0], w[1]);
                scope.spawn(move || read_part(path, format, lo, hi, chunk))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("a reader thread failed")))
            })
            .collect()
    });
    let mut report = ScanReport {
        lines: 0,
        unparsed: 0,
        failures: 0,
        firings: Vec::new(),
    };
    let mut detector = Detector::new();
    for part in parts {
        let part = part?;
        report.lines += part.lines;
        report.unparsed += part.unparsed;
        report.failures += part.failures.len() as u64;
        let attempts: Vec<Attempt<'_>> = part
            .failures
            .iter()
            .map(|(time_us, ip, key)| Attempt {
                time_us: *time_us,
                ip: Some(ip.as_str()),
                key_prefix: key.as_deref(),
                counted: true,
            })
            .collect();
        for firing in detector.observe(instance, rules, &attempts, 0.0) {
            match report
                .firings
                .iter_mut()
                .rev()
                .find(|f| f.rule_id == firing.rule_id && f.subject == firing.subject && !firing.new)
            {
                Some(f) => {
                    f.count += firing.added;
                    f.last_us = firing.last_us;
                }
                None => report.firings.push(firing),
            }
        }
    }
    Ok(report)
}

/// Read `lo..hi` of the file in chunks and parse every line; a line cut by a chunk's end is
/// carried into the next.
fn read_part(
    path: &std::path::Path,
    format: gatehouse_events::Format,
    lo: u64,
    hi: u64,
    chunk: usize,
) -> std::io::Result<Part> {
    use gatehouse_events::{Kind, Outcome, MAX_LINE};
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(lo))?;
    let mut part = Part::default();
    let mut last_time = 0;
    let mut one = |line: &[u8], part: &mut Part| {
        if line.is_empty() {
            return;
        }
        part.lines += 1;
        match format.parse(line) {
            Ok(p) => {
                last_time = p.time_us.unwrap_or(last_time);
                if p.kind == Kind::Auth && p.outcome == Outcome::Failure {
                    if let Some(ip) = p.ip {
                        part.failures.push((
                            last_time,
                            ip.into_owned(),
                            p.key_prefix.map(|k| k.into_owned()),
                        ));
                    }
                }
            }
            Err(_) => part.unparsed += 1,
        }
    };
    let mut buf = vec![0u8; chunk + MAX_LINE + 1];
    let mut carry = 0;
    let mut left = hi - lo;
    while left > 0 {
        let want = chunk.min(left as usize);
        file.read_exact(&mut buf[carry..carry + want])?;
        left -= want as u64;
        let filled = carry + want;
        let end = match memchr::memrchr(b'\n', &buf[..filled]) {
            Some(p) => p + 1,
            // No line end yet: keep reading, unless the line is already longer than any line
            // is kept whole, in which case it is one unparsed line.
            None if filled > MAX_LINE => {
                one(&buf[..filled], &mut part);
                carry = 0;
                continue;
            }
            None => {
                carry = filled;
                continue;
            }
        };
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', &buf[..end]) {
            one(&buf[start..nl], &mut part);
            start = nl + 1;
        }
        buf.copy_within(end..filled, 0);
        carry = filled - end;
    }
    // The last line of the file, without a line end.
    one(&buf[..carry], &mut part);
    Ok(part)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(detection: Detection) -> Rule {
        Rule {
            id: "r".into(),
            name: "r".into(),
            detection,
            services: vec![],
            enabled: true,
            severity: Severity::High,
            basis: String::new(),
            response: Response::Alert,
        }
    }

    #[test]
    fn a_scan_reads_every_line_whatever_the_chunks_and_readers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("access.log");
        let mut text = String::new();
        for i in 0..500 {
            let (ip, status) = if i % 5 == 0 {
                ("203.0.113.9", 401)
            } else {
                ("10.0.0.1", 200)
            };
            text.push_str(&format!(
                "{ip} - - [23/Nov/2026:02:{:02}:{:02} +0000] \"GET /x HTTP/1.1\" {status} 1 \"-\" \"c\"\n",
                i / 60 % 60,
                i % 60
            ));
        }
        text.push_str("not a log line\n");
        text.push_str(
            "203.0.113.9 - - [23/Nov/2026:03:00:00 +0000] \"GET /x HTTP/1.1\" 401 1 \"-\" \"c\"",
        );
        std::fs::write(&path, &text).expect("write");
        let rule = rule(Detection::BruteForce {
            failures: 5,
            window_secs: 600,
        });
        let format = gatehouse_events::Format::NginxCombined;
        let whole = scan_with(&path, format, &[&rule], "x", 1, 1 << 20).expect("scan");
        assert_eq!(
            whole.lines, 502,
            "every line, the last one without a line end too"
        );
        assert_eq!(whole.unparsed, 1, "the odd line is counted");
        assert_eq!(whole.failures, 101, "100 failures plus the last line");
        assert_eq!(whole.firings.len(), 1, "one episode");
        assert_eq!(whole.firings[0].count, 100, "of 100 failures");
        for (threads, chunk) in [(2, 37), (3, 100), (4, 4096), (7, 1)] {
            let split = scan_with(&path, format, &[&rule], "x", threads, chunk).expect("scan");
            assert_eq!(
                (split.lines, split.unparsed, split.failures),
                (whole.lines, whole.unparsed, whole.failures),
                "{threads} readers with {chunk}-byte chunks see the same lines"
            );
            assert_eq!(
                split.firings.len(),
                1,
                "one brute-force episode whatever the split"
            );
            assert_eq!(
                split.firings[0].count, 100,
                "counting every failure of it; the last, an hour later, is on its own"
            );
        }
    }
}
