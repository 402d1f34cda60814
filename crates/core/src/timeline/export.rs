//! Exporting the timeline's current filter as CSV or JSON Lines, for the window (to the
//! Downloads folder) and the CLI (to standard output).

use std::io::Write;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use gatehouse_store::events::{EventFilter, TimelineEvent};

use super::Timeline;
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    Csv,
    Jsonl,
}

impl ExportFormat {
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Jsonl => "jsonl",
        }
    }
}

const CSV_HEADER: &str = "time_utc,instance,source,kind,outcome,ip,method,path,status,actor,key_prefix,message,flags,raw";

impl Timeline {
    /// Write every event matching `filter` (newest first) to `out`. Returns how many.
    pub fn export_events(
        &self,
        filter: &EventFilter,
        format: ExportFormat,
        out: &mut dyn Write,
    ) -> Result<u64> {
        let io = |source: std::io::Error| Error::WriteFailed {
            path: "the export".into(),
            source,
        };
        if format == ExportFormat::Csv {
            writeln!(out, "{CSV_HEADER}").map_err(io)?;
        }
        let mut cursor = None;
        let mut written = 0;
        loop {
            let page = self.events(filter, cursor.as_ref(), 1000)?;
            for event in &page.events {
                let raw = self.raw(&event.instance, event.seq)?.unwrap_or_default();
                match format {
                    ExportFormat::Csv => writeln!(out, "{}", csv_row(event, &raw)).map_err(io)?,
                    ExportFormat::Jsonl => {
                        let line = serde_json::json!({
                            "time_utc": utc(event.time_us), "time_us": event.time_us,
                            "instance": event.instance, "source": event.source, "kind": event.kind,
                            "outcome": event.outcome, "ip": event.ip, "method": event.method,
                            "path": event.path, "status": event.status, "actor": event.actor,
                            "key_prefix": event.key_prefix, "message": event.message,
                            "flags": event.flags, "raw": raw,
                        });
                        writeln!(out, "{line}").map_err(io)?;
                    }
                }
                written += 1;
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        out.flush().map_err(io)?;
        Ok(written)
    }
}

/// Where an export was written.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ExportResult {
    pub path: String,
    #[ts(type = "number")]
    pub events: u64,
}

impl Timeline {
    /// Export to a new file in `dir` (the Downloads folder, for the window), named by time.
    pub fn export_to_dir(
        &self,
        filter: &EventFilter,
        format: ExportFormat,
        dir: &std::path::Path,
    ) -> Result<ExportResult> {
        let stamp = utc(self.ctx.unix() * 1_000_000).replace([':', '.'], "-");
        let path = dir.join(format!("gatehouse-events-{stamp}.{}", format.extension()));
        let file = std::fs::File::create(&path).map_err(|source| Error::WriteFailed {
            path: path.clone(),
            source,
        })?;
        let mut out = std::io::BufWriter::new(file);
        let events = self.export_events(filter, format, &mut out)?;
        Ok(ExportResult {
            path: path.display().to_string(),
            events,
        })
    }
}

/// RFC 3339 UTC with microseconds.
pub fn utc(time_us: i64) -> String {
    jiff::Timestamp::from_microsecond(time_us)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string())
        .unwrap_or_else(|_| time_us.to_string())
}

fn csv_row(e: &TimelineEvent, raw: &str) -> String {
    let fields = [
        utc(e.time_us),
        e.instance.clone(),
        e.source.to_string(),
        e.kind.as_str().to_owned(),
        e.outcome.as_str().to_owned(),
        e.ip.clone().unwrap_or_default(),
        e.method.clone().unwrap_or_default(),
        e.path.clone().unwrap_or_default(),
        e.status.map(|s| s.to_string()).unwrap_or_default(),
        e.actor.clone().unwrap_or_default(),
        e.key_prefix.clone().unwrap_or_default(),
        e.message.clone().unwrap_or_default(),
        e.flags.to_string(),
        raw.to_owned(),
    ];
    fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",")
}

/// Quote a field when needed; a leading `=`, `+`, `-`, `@`, tab or carriage return is
/// prefixed with `'` so a log line cannot become a formula when the file is opened in a
/// spreadsheet.
fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain", "plain text is left alone");
        assert_eq!(csv_field("a,b"), "\"a,b\"", "a comma forces quotes");
        assert_eq!(
            csv_field("say \"hi\""),
            "\"say \"\"hi\"\"\"",
            "quotes are doubled inside quotes"
        );
        assert_eq!(
            csv_field("=HYPERLINK(\"x\")"),
            "\"'=HYPERLINK(\"\"x\"\")\"",
            "a log line must not become a formula"
        );
        assert_eq!(
            csv_field("-1"),
            "'-1",
            "a leading minus could start a formula"
        );
        assert_eq!(
            csv_field("\t=1"),
            "'\t=1",
            "a leading tab is a formula vector too"
        );
    }

    #[test]
    fn utc_has_microseconds() {
        assert_eq!(
            utc(1_795_401_717_390_647),
            "2026-11-23T02:41:57.390647Z",
            "RFC 3339 UTC with microseconds"
        );
    }
}
